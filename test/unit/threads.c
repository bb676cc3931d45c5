/*
** threads.c
** Independent VMs on many threads at once: each thread creates, uses and
** closes VMs, loading the same file and its own. Nothing is shared between
** VMs, so results must be exact and ThreadSanitizer silent.
*/

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

#include "t.h"

#define NTHREADS	8
#define NVMS		20

static char shared_file[256];

static const char script[] =
  "local n = ... "
  "local t = {} "
  "for i = 1, 200 do t[i] = string.format('%d:%s', i, string.rep('x', i % 7)) end "
  "local co = coroutine.wrap(function () for i = 1, #t do coroutine.yield(#t[i]) end end) "
  "local sum = 0 "
  "for _ = 1, #t do sum = sum + co() end "
  "collectgarbage() "
  "return sum + n";

typedef struct Job {
  int id;
  int good;  /* VMs that gave the expected results */
  char own_file[256];
} Job;


static long long expected (int n) {
  long long sum = 0;
  for (int i = 1; i <= 200; i++) {
    char buf[32];
    sum += snprintf(buf, sizeof buf, "%d:", i) + i % 7;
  }
  return sum + n;
}


static int run_vm (Job *job, int n) {
  int good = 1;
  lua_State *L = luaL_newstate();
  if (L == NULL) return 0;
  luaL_openlibs(L);
  if (luaL_loadstring(L, script) != LUA_OK) good = 0;
  else {
    lua_pushinteger(L, n);
    good = lua_pcall(L, 1, 1, 0) == LUA_OK && lua_tointeger(L, -1) == expected(n);
  }
  lua_settop(L, 0);
  /* the file every thread loads, then this thread's own file */
  good = good && luaL_dofile(L, shared_file) == LUA_OK &&
         lua_tointeger(L, -1) == 1000;
  good = good && luaL_dofile(L, job->own_file) == LUA_OK &&
         lua_tointeger(L, -1) == job->id;
  lua_close(L);
  return good;
}


static void *worker (void *arg) {
  Job *job = arg;
  for (int i = 0; i < NVMS; i++)
    job->good += run_vm(job, job->id * 100 + i);
  return NULL;
}


int main (void) {
  pthread_t th[NTHREADS];
  Job jobs[NTHREADS];
  char dir[] = "/tmp/shoal-threads-XXXXXX";
  T_OK(mkdtemp(dir) != NULL);
  snprintf(shared_file, sizeof shared_file, "%s/shared.lua", dir);
  t_writefile(shared_file, "local s = 0 for i = 1, 1000 do s = s + 1 end return s");
  for (int i = 0; i < NTHREADS; i++) {
    char text[64];
    jobs[i].id = i;
    jobs[i].good = 0;
    snprintf(jobs[i].own_file, sizeof jobs[i].own_file, "%s/own%d.lua", dir, i);
    snprintf(text, sizeof text, "return %d", i);
    t_writefile(jobs[i].own_file, text);
  }
  for (int i = 0; i < NTHREADS; i++)
    T_EQI(pthread_create(&th[i], NULL, worker, &jobs[i]), 0);
  for (int i = 0; i < NTHREADS; i++) {
    T_EQI(pthread_join(th[i], NULL), 0);
    T_EQI(jobs[i].good, NVMS);
    remove(jobs[i].own_file);
  }
  remove(shared_file);
  remove(dir);
  return t_done();
}
