/*
** threads.c
** VMs side by side, as a server's thread pool runs them: T threads, each
** running FILE (with ARG as arg[1]) in a VM of its own, all at once.
** Built against each build; luaL_newstate puts each VM on a heap of its
** own on Shoal. What threads of one process cost one another through the
** allocator: its locks, and the TLB flushes that each page given back
** (madvise, munmap) sends to every other CPU running the process.
**
**   threads T FILE [ARG]
*/

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

#define MAXTHREADS	64


typedef struct Job {
  const char *file, *arg;
  int failed;
} Job;


static void *runvm (void *ud) {
  Job *j = (Job *)ud;
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "threads: no memory for a VM\n");
    j->failed = 1;
    return NULL;
  }
  luaL_openlibs(L);
  lua_createtable(L, 1, 0);
  if (j->arg != NULL) {
    lua_pushstring(L, j->arg);
    lua_rawseti(L, -2, 1);
  }
  lua_setglobal(L, "arg");
  if (luaL_dofile(L, j->file) != LUA_OK) {
    fprintf(stderr, "threads: %s\n", luaL_tolstring(L, -1, NULL));
    j->failed = 1;
  }
  lua_close(L);
  return NULL;
}


int main (int argc, char **argv) {
  pthread_t th[MAXTHREADS];
  Job jobs[MAXTHREADS];
  int n, started = 0, failed = 0;
  char *end;
  if (argc < 3 || argc > 4) {
    fprintf(stderr, "usage: threads T FILE [ARG]\n");
    return 1;
  }
  n = (int)strtol(argv[1], &end, 10);
  if (*end != '\0' || n < 1 || n > MAXTHREADS) {
    fprintf(stderr, "threads: T must be 1 to %d, not '%s'\n", MAXTHREADS,
            argv[1]);
    return 1;
  }
  for (int i = 0; i < n; i++) {
    jobs[i].file = argv[2];
    jobs[i].arg = (argc > 3) ? argv[3] : NULL;
    jobs[i].failed = 0;
    if (pthread_create(&th[i], NULL, runvm, &jobs[i]) != 0) {
      fprintf(stderr, "threads: cannot start thread %d\n", i + 1);
      failed = 1;
      break;
    }
    started++;
  }
  for (int i = 0; i < started; i++) {
    pthread_join(th[i], NULL);
    failed |= jobs[i].failed;
  }
  return failed;
}
