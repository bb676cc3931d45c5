/*
** shrunk.c
** A Lua program run in a VM of which another thread has shrunk N blocks
** to another size class (shoal_shrinkremote): such a block keeps its real
** size in its heap's table, and the owner's frees of the blocks of its
** slab take the slow path, which looks it up under a lock. N = 0 is the
** same host without them. WHERE is where the blocks lie: 'mixed', in the
** heap's first slabs, which hold blocks of every class (see lalloc.c), or
** 'class', in a slab of their class only (the host first takes FILLER
** blocks of that size, enough to fill the first slabs). Shoal only.
**
**   shrunk N mixed|class SCRIPT [ARGS...]
*/

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"
#include "shoal.h"

#define OSIZE	1000	/* the blocks' size, then the size they shrink to */
#define NSIZE	40
#define FILLER	256	/* blocks of OSIZE: more than the first slabs hold */


static double now (void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}


typedef struct Job { ShoalHeap *h; void **block; int n; int failed; } Job;

static void *shrinker (void *arg) {
  Job *j = arg;
  for (int i = 0; i < j->n; i++)
    if (shoal_shrinkremote(j->h, j->block[i], OSIZE, NSIZE) != j->block[i])
      j->failed = 1;
  return NULL;
}


int main (int argc, char **argv) {
  lua_State *L;
  Job j = {NULL, NULL, 0, 0};
  pthread_t th;
  void *filler[FILLER];
  int nfiller;
  double t0;
  char *end;
  long n = (argc > 3) ? strtol(argv[1], &end, 10) : -1;
  if (argc < 4 || *end != '\0' || n < 0 || n > 1000000 ||
      (strcmp(argv[2], "mixed") != 0 && strcmp(argv[2], "class") != 0)) {
    fprintf(stderr, "usage: shrunk N mixed|class SCRIPT [ARGS...]  "
                    "(N from 0 to 1000000)\n");
    return 1;
  }
  nfiller = (strcmp(argv[2], "class") == 0) ? FILLER : 0;
  if ((L = shoal_newstate(0)) == NULL) {
    fprintf(stderr, "shrunk: no memory\n");
    return 1;
  }
  luaL_openlibs(L);
  j.h = shoal_heap(L);
  j.n = (int)n;
  if ((j.block = calloc(n + 1, sizeof(void *))) == NULL) return 1;
  for (int i = 0; i < nfiller; i++)
    if ((filler[i] = shoal_alloc(j.h, NULL, 0, OSIZE)) == NULL) return 1;
  for (int i = 0; i < j.n; i++)  /* blocks of the VM's heap, as Lua's */
    if ((j.block[i] = shoal_alloc(j.h, NULL, 0, OSIZE)) == NULL) return 1;
  if (pthread_create(&th, NULL, shrinker, &j) != 0 ||
      pthread_join(th, NULL) != 0 || j.failed) {
    fprintf(stderr, "shrunk: the remote shrink failed\n");
    return 1;
  }
  lua_createtable(L, argc - 3, 0);  /* arg, as lua.c makes it */
  for (int i = 3; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - 3);
  }
  lua_setglobal(L, "arg");
  t0 = now();
  if (luaL_loadfile(L, argv[3]) != LUA_OK) {
    fprintf(stderr, "shrunk: %s\n", lua_tostring(L, -1));
    return 1;
  }
  for (int i = 4; i < argc; i++) lua_pushstring(L, argv[i]);
  if (lua_pcall(L, argc - 4, 0, 0) != LUA_OK) {
    fprintf(stderr, "shrunk: %s\n", lua_tostring(L, -1));
    return 1;
  }
  printf("METRIC run_s %.3f s\n", now() - t0);
  for (int i = 0; i < j.n; i++) shoal_alloc(j.h, j.block[i], NSIZE, 0);
  for (int i = 0; i < nfiller; i++) shoal_alloc(j.h, filler[i], OSIZE, 0);
  free(j.block);
  lua_close(L);
  return 0;
}
