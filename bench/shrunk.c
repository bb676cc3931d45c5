/*
** shrunk.c
** A Lua program run in a VM of which another thread has shrunk N blocks
** to another size class (shoal_shrinkremote, MODE 'shrink'): such a block
** keeps its real size in its heap's table, and the owner's frees of the
** blocks of its slab take the slow path, which looks it up under a lock.
** MODE 'keep' is the same host with the same blocks, not shrunk. WHERE is
** what the blocks are: 'mixed', small
** blocks in the heap's first slabs, which hold blocks of every class (see
** lalloc.c); 'class', small blocks in a slab of their class only (the
** host first takes FILLER blocks of that size, enough to fill the first
** slabs); 'large', large blocks (mappings), shrunk to a small size.
** Shoal only.
**
**   shrunk shrink|keep N mixed|class|large SCRIPT [ARGS...]
*/

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

#include "host.h"
#include "shoal.h"

#define OSIZE	1000	/* the blocks' size, then the size they shrink to */
#define OLARGE	100000	/* the size of large ones */
#define NSIZE	40
#define FILLER	256	/* blocks of OSIZE: more than the first slabs hold */



typedef struct Job {
  ShoalHeap *h;
  void **block;
  size_t osize;
  int n, failed;
} Job;

static void *shrinker (void *arg) {
  Job *j = arg;
  for (int i = 0; i < j->n; i++)
    if (shoal_shrinkremote(j->h, j->block[i], j->osize, NSIZE) != j->block[i])
      j->failed = 1;
  return NULL;
}


int main (int argc, char **argv) {
  lua_State *L;
  Job j = {NULL, NULL, OSIZE, 0, 0};
  pthread_t th;
  void *filler[FILLER];
  int nfiller;
  double t0;
  char *end;
  long n = (argc > 4) ? strtol(argv[2], &end, 10) : -1;
  int shrink;
  if (argc < 5 || *end != '\0' || end == argv[2] || n < 0 || n > 1000 ||
      (strcmp(argv[1], "shrink") != 0 && strcmp(argv[1], "keep") != 0) ||
      (strcmp(argv[3], "mixed") != 0 && strcmp(argv[3], "class") != 0 &&
       strcmp(argv[3], "large") != 0)) {
    fprintf(stderr, "usage: shrunk shrink|keep N mixed|class|large SCRIPT "
                    "[ARGS...]  (N from 0 to 1000)\n");
    return 1;
  }
  shrink = (strcmp(argv[1], "shrink") == 0);
  nfiller = (strcmp(argv[3], "class") == 0) ? FILLER : 0;
  if (strcmp(argv[3], "large") == 0) j.osize = OLARGE;
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
    if ((j.block[i] = shoal_alloc(j.h, NULL, 0, j.osize)) == NULL) return 1;
  if (shrink && (pthread_create(&th, NULL, shrinker, &j) != 0 ||
                 pthread_join(th, NULL) != 0 || j.failed)) {
    fprintf(stderr, "shrunk: the remote shrink failed\n");
    return 1;
  }
  lua_createtable(L, argc - 4, 0);  /* arg, as lua.c makes it */
  for (int i = 4; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - 4);
  }
  lua_setglobal(L, "arg");
  t0 = host_now();
  if (luaL_loadfile(L, argv[4]) != LUA_OK) {
    fprintf(stderr, "shrunk: %s\n", lua_tostring(L, -1));
    return 1;
  }
  for (int i = 5; i < argc; i++) lua_pushstring(L, argv[i]);
  if (lua_pcall(L, argc - 5, 0, 0) != LUA_OK) {
    fprintf(stderr, "shrunk: %s\n", lua_tostring(L, -1));
    return 1;
  }
  printf("METRIC run_s %.3f s\n", host_now() - t0);
  for (int i = 0; i < j.n; i++)
    shoal_alloc(j.h, j.block[i], shrink ? NSIZE : j.osize, 0);
  for (int i = 0; i < nfiller; i++) shoal_alloc(j.h, filler[i], OSIZE, 0);
  free(j.block);
  lua_close(L);
  return 0;
}
