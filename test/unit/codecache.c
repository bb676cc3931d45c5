/*
** codecache.c
** Shared code across VMs and threads: the code cache (one parse per file,
** however many threads load it at once), lua_sharefunction and
** lua_clonefunction, string identity between shared constants and strings
** a VM makes at run time, and the freeing of old versions. Run with the
** argument "trust" (and SHOAL_CODECACHE=trust), the tests of that mode.
*/

#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shoal.h"
#include "lauxlib.h"
#include "lualib.h"

#include "t.h"

#define NTHREADS	8
#define NVMS		10

static char dir[] = "/tmp/shoal-codecache-XXXXXX";
static char common[256];
static pthread_barrier_t start;


static lua_State *newvm (void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  return L;
}


/* Run 'code' in L; the integer it returns, or -1 on error (printed). */
static lua_Integer run (lua_State *L, const char *code) {
  lua_Integer r = -1;
  if (luaL_dostring(L, code) == LUA_OK) r = lua_tointeger(L, -1);
  else printf("# error: %s\n", lua_tostring(L, -1));
  lua_settop(L, 0);
  return r;
}


/*
** The library's calls of stat, counted: the link wraps 'stat' (test.mk:
** -Wl,--wrap=stat), so every call in lcodecache.c comes here.
*/
static atomic_long nstats;

int __real_stat (const char *path, struct stat *st);
int __wrap_stat (const char *path, struct stat *st) {
  atomic_fetch_add(&nstats, 1);
  return __real_stat(path, st);
}


static lua_Integer cachestat (lua_State *L, const char *field) {
  char code[128];
  snprintf(code, sizeof code, "return require('shoal.cache').stats().%s", field);
  return run(L, code);
}


typedef struct Job {
  int id;
  int good;
  char own[256];
} Job;


/* Each VM loads the common file and the thread's own, at the same time
   as every other thread, and checks what the code computes. */
static void *worker (void *arg) {
  Job *job = arg;
  pthread_barrier_wait(&start);
  for (int i = 0; i < NVMS; i++) {
    lua_State *L = newvm();
    int ok = 1;
    if (luaL_dofile(L, common) != LUA_OK) ok = 0;
    else {
      lua_pushstring(L, "na");
      lua_pushstring(L, "me");
      lua_concat(L, 2);  /* a key made at run time ... */
      lua_gettable(L, -2);  /* ... finds the constant key of the module */
      ok = lua_tointeger(L, -1) == 42;
      lua_getfield(L, -2, "sum");
      lua_pushinteger(L, job->id);
      ok = ok && lua_pcall(L, 1, 1, 0) == LUA_OK &&
           lua_tointeger(L, -1) == 5050 + job->id;
    }
    lua_settop(L, 0);
    ok = ok && luaL_dofile(L, job->own) == LUA_OK &&
         lua_tointeger(L, -1) == job->id * 3;
    lua_close(L);
    job->good += ok;
  }
  return NULL;
}


static void test_threads (void) {
  pthread_t th[NTHREADS];
  Job jobs[NTHREADS];
  lua_State *L;
  snprintf(common, sizeof common, "%s/common.lua", dir);
  t_writefile(common,
    "local M = {name = 42}\n"
    "function M.sum (x) local s = 0 for i = 1, 100 do s = s + i end return s + x end\n"
    "return M\n");
  pthread_barrier_init(&start, NULL, NTHREADS);
  for (int i = 0; i < NTHREADS; i++) {
    char text[64];
    jobs[i].id = i;
    jobs[i].good = 0;
    snprintf(jobs[i].own, sizeof jobs[i].own, "%s/own%d.lua", dir, i);
    snprintf(text, sizeof text, "local x = %d return x * 3", i);
    t_writefile(jobs[i].own, text);
  }
  for (int i = 0; i < NTHREADS; i++)
    T_EQI(pthread_create(&th[i], NULL, worker, &jobs[i]), 0);
  for (int i = 0; i < NTHREADS; i++) {
    T_EQI(pthread_join(th[i], NULL), 0);
    T_EQI(jobs[i].good, NVMS);
  }
  pthread_barrier_destroy(&start);
  L = newvm();
  T_EQI(cachestat(L, "misses"), 1 + NTHREADS);  /* exactly one parse per file */
  T_EQI(cachestat(L, "hits"), 2 * NTHREADS * NVMS - (1 + NTHREADS));
  T_EQI(cachestat(L, "entries"), 1 + NTHREADS);
  T_EQI(cachestat(L, "retired"), 0);
  lua_close(L);
}


/* An edited file is reloaded; the old version is freed with its last closure. */
static void test_reload (void) {
  char path[256], code[1024];
  lua_State *L = newvm(), *L2 = newvm();
  snprintf(path, sizeof path, "%s/edit.lua", dir);
  t_writefile(path, "return function () return 1 end");
  snprintf(code, sizeof code, "f1 = dofile('%s') return f1()", path);
  T_EQI(run(L, code), 1);
  T_EQI(run(L2, code), 1);  /* L2 holds the first version too */
  t_writefile(path, "return function () return 2 + 0 end");  /* new size */
  snprintf(code, sizeof code, "f2 = dofile('%s') return f2()", path);
  T_EQI(run(L, code), 2);
  T_EQI(cachestat(L, "retired"), 1);  /* version 1: still used by f1 */
  T_EQI(run(L, "f1 = nil return 0"), 0);
  lua_gc(L, LUA_GCCOLLECT);  /* from C: no stale register keeps f1 alive */
  T_EQI(cachestat(L, "retired"), 1);  /* and by L2 */
  lua_close(L2);  /* closing a VM releases what it holds */
  T_EQI(cachestat(L, "retired"), 0);
  T_EQI(run(L, "return f2()"), 2);
  /* reload(path) drops the entry: the next load parses again */
  snprintf(code, sizeof code,
    "local c = require 'shoal.cache' local m = c.stats().misses "
    "assert(c.reload('%s') == 1) dofile('%s') return c.stats().misses - m",
    path, path);
  T_EQI(run(L, code), 1);
  /* generational mode: majors release too */
  snprintf(code, sizeof code,  /* stopped: no collection until we ask */
    "collectgarbage('generational') collectgarbage('stop') f2 = nil "
    "require('shoal.cache').reload('%s') return 0", path);
  T_EQI(run(L, code), 0);
  T_EQI(cachestat(L, "retired"), 1);
  lua_gc(L, LUA_GCRESTART);
  lua_gc(L, LUA_GCCOLLECT);  /* a major collection */
  T_EQI(cachestat(L, "retired"), 0);
  lua_close(L);
}


static int sumup (lua_State *L) {  /* a C function: cannot be shared */
  lua_pushinteger(L, 0);
  return 1;
}


static int share_at_top (lua_State *L) {
  lua_sharefunction(L, 1);
  return 0;
}


static int clone_pointer (lua_State *L) {
  lua_clonefunction(L, lua_touserdata(L, 1));
  return 1;
}


static void test_share_clone (void) {
  lua_State *A = newvm(), *B = newvm();
  const void *fp;
  T_EQI(luaL_loadstring(A,
    "local n = 0\n"
    "return function (k) n = n + 1; return (tag or '') .. k .. n end"), LUA_OK);
  T_EQI(lua_pcall(A, 0, 1, 0), LUA_OK);  /* the inner function, with upvalue n */
  lua_sharefunction(A, -1);
  fp = lua_topointer(A, -1);
  lua_sharefunction(A, -1);  /* sharing twice is harmless */
  lua_setglobal(A, "f");
  lua_clonefunction(B, fp);
  T_EQI(lua_type(B, -1), LUA_TFUNCTION);
  lua_setglobal(B, "g");
  /* a fresh upvalue ('n' is nil: arithmetic error), B's globals as _ENV */
  T_EQI(run(B, "local ok, e = pcall(g, 'x') return ok and 1 or 0"), 0);
  T_EQI(run(A, "return 1"), 1);  /* A's own function still works */
  lua_getglobal(A, "f");
  lua_pushstring(A, "k");
  T_EQI(lua_pcall(A, 1, 1, 0), LUA_OK);
  T_EQS(lua_tostring(A, -1), "k1");
  lua_pop(A, 1);
  /* B's clone runs with B's globals and its own upvalue */
  T_EQI(run(B, "tag = 'B' local name, n = debug.getupvalue(g, 1) "
               "debug.setupvalue(g, 1, 10) "
               "return (name == 'n' and n == nil and g('k') == 'Bk11') and 1 or 0"), 1);
  /* error paths: a clear error, and the VM stays usable */
  lua_pushcfunction(B, share_at_top);
  lua_pushcfunction(B, sumup);
  T_EQI(lua_pcall(B, 1, 0, 0), LUA_ERRRUN);
  T_EQS(lua_tostring(B, -1), "lua_sharefunction: expected a Lua function, got a C function");
  lua_pop(B, 1);
  lua_pushcfunction(B, share_at_top);
  lua_pushinteger(B, 7);
  T_EQI(lua_pcall(B, 1, 0, 0), LUA_ERRRUN);
  T_EQS(lua_tostring(B, -1), "lua_sharefunction: expected a Lua function, got number");
  lua_pop(B, 1);
  lua_pushcfunction(B, clone_pointer);
  lua_getglobal(B, "g");  /* a Lua function, but one that was never shared */
  lua_pushlightuserdata(B, (void *)lua_topointer(B, -1));
  lua_remove(B, -2);
  T_EQI(lua_pcall(B, 1, 1, 0), LUA_ERRRUN);
  T_OK(strstr(lua_tostring(B, -1), "is not a shared function") != NULL);
  lua_pop(B, 1);
  T_EQI(run(B, "return 40 + 2"), 42);
  lua_close(B);
  lua_close(A);  /* closing the owner releases its pin */
}


/* A VM that made a string at run time before shared code with the same
   constant existed gets a private copy, and stays correct. */
static void test_conflict (void) {
  char path[256], code[1024];
  lua_State *early = newvm(), *first = newvm();
  snprintf(path, sizeof path, "%s/conflict.lua", dir);
  t_writefile(path, "return function (t) return t.zq_unique_key_17 end");
  T_EQI(run(early, "T = {} T[string.format('zq_unique_%s_%d', 'key', 17)] = 5 return 0"), 0);
  snprintf(code, sizeof code, "return dofile('%s')(T)", path);
  T_EQI(run(first, "T = {} return 0"), 0);
  T_EQI(run(first, code), 0);  /* 'first' parses and shares it: nil */
  /* the key 'first' makes now is the shared constant itself */
  T_EQI(run(first, "T.zq_unique_key_17 = 6 return 0"), 0);
  T_EQI(run(first, code), 6);
  T_EQI(run(early, code), 5);  /* its own key still matches */
  T_EQI(cachestat(early, "private_copies"), 1);
  lua_close(early);
  lua_close(first);
}


/*
** Sharing a function suspended in a coroutine, then collecting: the
** function keeps running its own prototype (sharing swapped it for the
** shared copy: resuming ran freed code, a crash or an ASan report).
*/
static void test_share_running (void) {
  lua_State *L = newvm(), *co;
  int nres;
  T_EQI(luaL_loadstring(L, "local t = {} for i = 1, 3 do t[i] = i "
                           "coroutine.yield(i) end return #t * 10"), LUA_OK);
  co = lua_newthread(L);
  lua_pushvalue(L, -2);
  lua_xmove(L, co, 1);
  T_EQI(lua_resume(co, L, 0, &nres), LUA_YIELD);  /* inside the chunk */
  lua_pop(co, nres);
  lua_sharefunction(L, -2);
  lua_gc(L, LUA_GCCOLLECT);
  lua_gc(L, LUA_GCCOLLECT);
  T_EQI(lua_resume(co, L, 0, &nres), LUA_YIELD);
  T_EQI(lua_tointeger(co, -1), 2);
  lua_pop(co, nres);
  T_EQI(lua_resume(co, L, 0, &nres), LUA_YIELD);
  lua_pop(co, nres);
  T_EQI(lua_resume(co, L, 0, &nres), LUA_OK);
  T_EQI(lua_tointeger(co, -1), 30);
  lua_close(L);
}


/*
** A function made by a cached file (a prototype nested in the file's
** shared tree), shared and cloned: the clone is that function, not the
** file's main chunk (which it was).
*/
static void test_share_nested (void) {
  char path[256], code[512];
  lua_State *A = newvm(), *B = newvm();
  snprintf(path, sizeof path, "%s/nested.lua", dir);
  t_writefile(path, "ran = (ran or 0) + 1 return function (x) return x * 2 end");
  snprintf(code, sizeof code, "return dofile('%s')", path);
  T_EQI(luaL_dostring(A, code), LUA_OK);  /* cached; the nested function */
  lua_sharefunction(A, -1);
  lua_clonefunction(B, lua_topointer(A, -1));
  lua_setglobal(B, "g");
  T_EQI(run(B, "return g(21)"), 42);
  T_EQI(run(B, "return ran or 0"), 0);  /* the main chunk did not run in B */
  lua_close(B);
  lua_close(A);
}


/*
** A string frozen at run time (it leaves the string table) before shared
** code has it as a constant: the VM gets a private copy, and lookups
** with the constant find the frozen key.
*/
static void test_conflict_frozen (void) {
  char path[256], code[512];
  lua_State *L = newvm();
  lua_Integer before = cachestat(L, "private_copies");
  snprintf(path, sizeof path, "%s/frozenkey.lua", dir);
  t_writefile(path, "local t = ... return t.zq_frozen_key_23");
  T_EQI(run(L, "T = nogc('open', {[('zq_frozen_key_'):rep(1) .. 23] = 7}) return 0"), 0);
  snprintf(code, sizeof code, "return loadfile('%s')(T)", path);
  T_EQI(run(L, code), 7);
  T_EQI(cachestat(L, "private_copies"), before + 1);
  lua_close(L);
}


/*
** A deploy's symlink switched while a file loads: what the cache keeps
** under a path is that path's code. A thread points 'cur' at B and back
** at A without pause; each round clears the cache, loads 'cur/x.lua'
** during the switching, then, with 'cur' -> A for good, loads it again:
** it must be A's code (the parse used to open the name again, and cache
** B's code under A's path in most runs of 300 rounds).
*/
static char curlink[300], curtmp[300];
static atomic_int switching, switchidle;

static void pointcur (const char *to) {
  unlink(curtmp);
  if (symlink(to, curtmp) == 0) rename(curtmp, curlink);
}

/* Releases 'a' and 'b' (folders of 'dir', an x.lua each returning
   'acode', 'bcode'), and the link 'cur' (curlink) pointing at 'a'. */
static void tworeleases (const char *a, const char *acode, const char *b,
                         const char *bcode, const char *cur) {
  const char *name[2] = {a, b}, *code[2] = {acode, bcode};
  char path[300];
  for (int k = 0; k < 2; k++) {
    snprintf(path, sizeof path, "%s/%s", dir, name[k]);
    T_EQI(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/%s/x.lua", dir, name[k]);
    t_writefile(path, code[k]);
  }
  snprintf(curlink, sizeof curlink, "%s/%s", dir, cur);
  snprintf(curtmp, sizeof curtmp, "%s/%s.tmp", dir, cur);
  pointcur(a);
}

static void *switcher (void *arg) {
  (void)arg;
  while (atomic_load(&switching) >= 0) {
    if (atomic_load(&switching) == 0) {
      atomic_store(&switchidle, 1);
      usleep(100);
      continue;
    }
    atomic_store(&switchidle, 0);
    pointcur("B");
    pointcur("A");
  }
  return NULL;
}

static void test_symlink_switch (void) {
  char path[300], code[400];
  lua_State *L = newvm();
  pthread_t th;
  int wrong = 0;
  tworeleases("A", "return 'A'", "B", "return 'B'", "cur");
  snprintf(code, sizeof code, "return dofile('%s/cur/x.lua') == 'A' and 1 or 0", dir);
  T_EQI(pthread_create(&th, NULL, switcher, NULL), 0);
  for (int i = 0; i < 1000 && wrong == 0; i++) {
    T_EQI(run(L, "require('shoal.cache').clear() return 0"), 0);
    atomic_store(&switching, 1);
    snprintf(path, sizeof path, "%s/cur/x.lua", dir);
    if (luaL_loadfile(L, path) == LUA_OK) lua_pop(L, 1);
    else lua_pop(L, 1);  /* the link may be missing for an instant */
    atomic_store(&switching, 0);
    while (!atomic_load(&switchidle)) usleep(50);
    pointcur("A");
    if (run(L, code) != 1) wrong++;
  }
  atomic_store(&switching, -1);
  T_EQI(pthread_join(th, NULL), 0);
  T_EQI(wrong, 0);
  lua_close(L);
}


/*
** A function of a cached file, shared (lua_sharefunction): its pin holds
** the file's version after a reload retired it and the owner's closure is
** gone, until the owner closes; then its pointer is shared no more.
*/
static int clone_light (lua_State *L) {
  lua_clonefunction(L, lua_touserdata(L, 1));
  return 1;
}

static void test_pin_release (void) {
  char path[256], code[512];
  lua_State *A = newvm(), *B = newvm(), *C;
  const void *fp;
  lua_Integer base;
  snprintf(path, sizeof path, "%s/pinned.lua", dir);
  t_writefile(path, "return function (x) return x + 1 end");
  snprintf(code, sizeof code, "return dofile('%s')", path);
  T_EQI(luaL_dostring(A, code), LUA_OK);
  lua_sharefunction(A, -1);
  fp = lua_topointer(A, -1);
  lua_settop(A, 0);
  base = cachestat(B, "retired");
  snprintf(code, sizeof code, "return require('shoal.cache').reload('%s')", path);
  T_EQI(run(B, code), 1);
  lua_gc(A, LUA_GCCOLLECT);
  T_EQI(cachestat(B, "retired"), base + 1);  /* the pin holds it */
  lua_clonefunction(B, fp);
  lua_setglobal(B, "g");
  T_EQI(run(B, "return g(41)"), 42);
  lua_close(B);
  C = newvm();
  T_EQI(cachestat(C, "retired"), base + 1);  /* A's pin still holds it */
  lua_close(A);  /* releases the pin: the version goes */
  T_EQI(cachestat(C, "retired"), base);
  lua_pushcfunction(C, clone_light);
  lua_pushlightuserdata(C, (void *)fp);
  T_EQI(lua_pcall(C, 1, 1, 0), LUA_ERRRUN);  /* its VM closed: not shared */
  T_OK(strstr(lua_tostring(C, -1), "is not a shared function") != NULL);
  lua_close(C);
}


/*
** A shared function lives as long as its VM, though nothing else refers
** to it (here only a weak table); and a function of stripped code (no
** upvalue names) gets the cloning VM's globals as its first upvalue.
*/
static void test_share_kept (void) {
  lua_State *A = newvm(), *B = newvm();
  T_EQI(luaL_dostring(A, "W = setmetatable({}, {__mode = 'v'}) "
                         "W[1] = function () return 7 end return W[1]"), LUA_OK);
  lua_sharefunction(A, -1);
  lua_settop(A, 0);
  lua_gc(A, LUA_GCCOLLECT);
  lua_gc(A, LUA_GCCOLLECT);
  T_EQI(run(A, "return W[1] and W[1]() or -1"), 7);
  T_EQI(luaL_dostring(A, "local f = load(string.dump(load("
                         "'return function () return tag * 2 end'), true))() "
                         "assert(debug.getupvalue(f, 1) == '(no name)') return f"), LUA_OK);
  T_OK(lua_isfunction(A, -1));
  lua_sharefunction(A, -1);
  lua_clonefunction(B, lua_topointer(A, -1));
  lua_setglobal(B, "g");
  T_EQI(run(B, "tag = 21 return g()"), 42);
  lua_close(B);
  lua_close(A);
}


/*
** lua_close runs the finalizers while the VM still holds its shared code
** and its frozen data: a finalizer made by a file whose version was retired
** runs that code, and reads the frozen data it refers to.
*/
static lua_Integer atclose[3];

static int record (lua_State *L) {  /* called by the finalizer */
  atclose[0] = lua_tointeger(L, 1);
  atclose[1] = lua_tointeger(L, 2);
  atclose[2] = cachestat(L, "retired");
  return 0;
}

static void test_close_finalizers (void) {
  char path[256], code[512];
  lua_State *L = newvm();
  lua_Integer copies = cachestat(L, "private_copies"), retired;
  snprintf(path, sizeof path, "%s/fin.lua", dir);
  t_writefile(path, "local fz = nogc('open', {v = 40}) "
    "return setmetatable({}, {__gc = function () record(fz.v + 2, nogc('len')) end})");
  snprintf(code, sizeof code, "obj = dofile('%s') return 0", path);
  T_EQI(run(L, code), 0);
  T_EQI(cachestat(L, "private_copies"), copies);  /* L runs the shared code */
  snprintf(code, sizeof code, "return require('shoal.cache').reload('%s')", path);
  T_EQI(run(L, code), 1);
  retired = cachestat(L, "retired");
  T_OK(retired >= 1);  /* fin.lua's version, retired: only L holds it */
  lua_register(L, "record", record);  /* (after the load: no string clash) */
  lua_close(L);
  T_EQI(atclose[0], 42);  /* the finalizer ran, and read its frozen table */
  T_EQI(atclose[1], 1);  /* the frozen table still there */
  T_EQI(atclose[2], retired);  /* the version still held while it ran */
}


/*
** A file whose last change is old enough that its timestamps tell every
** change (not "racily clean"): a chmod alone changes only its ctime, and
** the next load parses it again (the file made at the start of main has
** settled by now, or shortly).
*/
static char settled[256];

/* Wait until 'path' has settled: its last change 2 s old (RACYSECS). */
static void settle (const char *path) {
  struct stat st;
  T_EQI(stat(path, &st), 0);
  while (time(NULL) - st.st_ctim.tv_sec < 2) usleep(50000);
}

static void test_settled_chmod (void) {
  char code[512];
  lua_State *L = newvm();
  lua_Integer misses;
  settle(settled);
  snprintf(code, sizeof code, "return dofile('%s')", settled);
  T_EQI(run(L, code), 5);  /* parsed: the entry is not racy */
  misses = cachestat(L, "misses");
  T_EQI(run(L, code), 5);
  T_EQI(cachestat(L, "misses"), misses);  /* a hit */
  T_EQI(chmod(settled, 0600), 0);
  T_EQI(run(L, code), 5);
  T_EQI(cachestat(L, "misses"), misses + 1);  /* parsed again */
  lua_close(L);
}


/*
** A reload or clear while another thread parses the file, in mode 'trust'
** (hits never look at the file again): the parse may have read the file
** before the change the reload is for, so it must not be cached. The
** file is replaced by a rename, as deploys do, once the parse has read
** from it (see 'isreading'): the parse keeps reading the old one. The
** files have settled, so no checksum opens them first (see 'isracy').
** 'drop' is the Lua that drops it, '%s' the file's path.
*/
typedef struct Parse {
  const char *path;
  atomic_int done;
  char got[16];
} Parse;

static void *parser (void *arg) {
  Parse *p = arg;
  lua_State *L = newvm();
  if (luaL_dofile(L, p->path) == LUA_OK && lua_isstring(L, -1))
    snprintf(p->got, sizeof p->got, "%s", lua_tostring(L, -1));
  lua_close(L);
  atomic_store(&p->done, 1);
  return NULL;
}

static void writebig (const char *path) {  /* long enough to parse a while */
  FILE *f = fopen(path, "w");
  T_OK(f != NULL);
  if (f == NULL) return;
  fputs("local t = {}\n", f);
  for (int i = 0; i < 500000; i++) fputs("t[#t + 1] = 1\n", f);
  fputs("return 'old'\n", f);
  fclose(f);
}

/*
** Is a file of this process, which /proc/self/fd names 'name', open and
** read from? Read from: past the parse's fstat, which a rename between
** its fopen and its fstat would fail (the unlink changes the file's
** ctime), and the load would then be stock's, of the new file.
*/
static int isreading (const char *name) {
  char link[300], target[PATH_MAX];
  DIR *d = opendir("/proc/self/fd");
  struct dirent *de;
  int found = 0;
  if (d == NULL) return 0;
  while (!found && (de = readdir(d)) != NULL) {
    ssize_t n;
    snprintf(link, sizeof link, "/proc/self/fd/%s", de->d_name);
    n = readlink(link, target, sizeof target - 1);
    if (n > 0) {
      target[n] = '\0';
      if (strcmp(target, name) == 0) {
        long pos = 0;
        FILE *f;
        snprintf(link, sizeof link, "/proc/self/fdinfo/%s", de->d_name);
        if ((f = fopen(link, "r")) != NULL) {
          if (fscanf(f, "pos: %ld", &pos) != 1) pos = 0;
          fclose(f);
        }
        found = pos > 0;
      }
    }
  }
  closedir(d);
  return found;
}

static void test_drop_parsing (const char *path, const char *drop) {
  char tmp[300], code[700], gone[PATH_MAX + 16];
  Parse p = {path, 0, ""};
  pthread_t th;
  int parsing;
  lua_State *L = newvm();
  snprintf(tmp, sizeof tmp, "%s.new", path);
  snprintf(gone, sizeof gone, "%s (deleted)", path);  /* once renamed over */
  T_EQI(pthread_create(&th, NULL, parser, &p), 0);
  while (!isreading(path) && !atomic_load(&p.done)) usleep(50);
  t_writefile(tmp, "return 'new'");
  T_EQI(rename(tmp, path), 0);
  snprintf(code, sizeof code, drop, path);
  T_EQI(run(L, code), 1);  /* the entry being parsed counts */
  parsing = isreading(gone);  /* so it was during the drop: the parse
                                 closes the file before its entry is ready */
  T_EQI(pthread_join(th, NULL), 0);
  T_OK(parsing);  /* else this test tested nothing: the file is too short */
  T_EQS(p.got, "old");  /* the load that came first runs what it read */
  T_EQI(cachestat(L, "entries"), 0);
  snprintf(code, sizeof code, "return dofile('%s') == 'new' and 1 or 0", path);
  T_EQI(run(L, code), 1);
  T_EQI(cachestat(L, "entries"), 1);
  T_EQI(cachestat(L, "retired"), 0);  /* the old parse went with its VM */
  T_EQI(run(L, "return require('shoal.cache').clear()"), 1);
  lua_close(L);
}


/*
** In mode 'trust' a cached file is not checked for edits, but a name that
** leads to another file now (a deploy's symlink switched) loads that file:
** a hit by the name alone must be the file the name leads to. A release
** of hard links to the last one's files (cp -al) is the same files: a hit
** by name finds the entry of the last one's path, and 'reload' of the new
** name drops it (by its inode; the edit made for the reload is loaded).
** A file changed less than 2 s before its parse (racy) is never found by
** its name alone in mode 'trust': a deleted file's inode number, given to
** a new file in the same clock tick, could pass for it.
*/
static void test_trust_switch (void) {
  char code[400], path[300], other[300], reload[400];
  lua_State *L = newvm();
  lua_Integer namehits, hits;
  tworeleases("TA", "return 1", "TB", "return 2", "tcur");
  snprintf(path, sizeof path, "%s/TC", dir);  /* TA's file, hard linked */
  T_EQI(mkdir(path, 0700), 0);
  snprintf(path, sizeof path, "%s/TA/x.lua", dir);
  snprintf(other, sizeof other, "%s/TC/x.lua", dir);
  T_EQI(link(path, other), 0);
  settle(path);
  snprintf(path, sizeof path, "%s/TB/x.lua", dir);
  settle(path);
  snprintf(code, sizeof code, "return dofile('%s/tcur/x.lua')", dir);
  T_EQI(run(L, code), 1);
  namehits = cachestat(L, "name_hits");
  T_EQI(run(L, code), 1);
  T_EQI(cachestat(L, "name_hits"), namehits + 1);  /* found by its name */
  pointcur("TB");
  T_EQI(run(L, code), 2);  /* the file the name leads to now */
  T_EQI(run(L, code), 2);
  T_EQI(cachestat(L, "name_hits"), namehits + 2);
  pointcur("TA");
  T_EQI(run(L, code), 1);  /* the name's entry: of TA's path */
  pointcur("TC");
  T_EQI(run(L, code), 1);
  T_EQI(cachestat(L, "name_hits"), namehits + 3);  /* TA's entry */
  t_writefile(other, "return 3");  /* in place: TA's file too */
  snprintf(reload, sizeof reload,
           "return require('shoal.cache').reload('%s/tcur/x.lua')", dir);
  T_EQI(run(L, reload), 1);  /* TA's entry, by its inode */
  T_EQI(run(L, code), 3);
  snprintf(path, sizeof path, "%s/fresh.lua", dir);
  t_writefile(path, "return 7");
  snprintf(code, sizeof code, "return dofile('%s')", path);
  T_EQI(run(L, code), 7);
  hits = cachestat(L, "hits");
  namehits = cachestat(L, "name_hits");
  T_EQI(run(L, code), 7);  /* racy since its parse, in mode 'trust' */
  T_EQI(cachestat(L, "hits"), hits + 1);
  T_EQI(cachestat(L, "name_hits"), namehits);
  lua_close(L);
}


/*
** require's search asks the cache before opening a file: a module the
** cache holds is found with a stat ('search_hits'), not an open and a
** close; a file never loaded, changed since its parse, or deleted goes the
** stock way, and the search goes on to the next template as in stock Lua.
** package.searchpath too. (A cached file made unreadable is passed over
** as well: test/code/unreadable.lua, run without root.)
*/
static void test_search (void) {
  char a[300], b[300], fa[320], fb[320], req[900], code[2048];
  lua_State *L;
  lua_Integer sh, hits;
  snprintf(a, sizeof a, "%s/sa", dir);
  snprintf(b, sizeof b, "%s/sb", dir);
  T_EQI(mkdir(a, 0700), 0);
  T_EQI(mkdir(b, 0700), 0);
  snprintf(fa, sizeof fa, "%s/m.lua", a);
  snprintf(fb, sizeof fb, "%s/m.lua", b);
  t_writefile(fa, "return 'a'");
  t_writefile(fb, "return 'b'");
  /* a fresh VM each time: require loads once a VM */
  snprintf(req, sizeof req, "package.path = '%s/?.lua;%s/?.lua' "
           "local ok, m = pcall(require, 'm') ", a, b);
  snprintf(code, sizeof code, "%s return ok and m:byte() or -1", req);
  L = newvm();
  sh = cachestat(L, "search_hits");
  T_EQI(run(L, code), 'a');  /* parsed: searched the stock way */
  T_EQI(cachestat(L, "search_hits"), sh);
  lua_close(L);
  L = newvm();
  hits = cachestat(L, "hits");
  T_EQI(run(L, code), 'a');
  T_EQI(cachestat(L, "search_hits"), sh + 1);  /* found without opening */
  T_EQI(cachestat(L, "hits"), hits + 1);
  snprintf(code, sizeof code, "return package.searchpath('m', '%s/?.lua') "
           "== '%s' and 1 or 0", a, fa);
  T_EQI(run(L, code), 1);
  T_EQI(cachestat(L, "search_hits"), sh + 2);
  lua_close(L);
  t_writefile(fa, "return 'c'");  /* same size; racy, so checksummed */
  snprintf(code, sizeof code, "%s return ok and m:byte() or -1", req);
  L = newvm();
  T_EQI(run(L, code), 'c');
  T_EQI(cachestat(L, "search_hits"), sh + 2);  /* changed: the stock way */
  lua_close(L);
  L = newvm();
  T_EQI(run(L, code), 'c');
  T_EQI(cachestat(L, "search_hits"), sh + 3);
  lua_close(L);
  T_EQI(remove(fa), 0);  /* the entry stays; the search must pass it over */
  L = newvm();
  T_EQI(run(L, code), 'b');
  T_EQI(cachestat(L, "search_hits"), sh + 3);
  lua_close(L);
  T_EQI(remove(fb), 0);
  snprintf(code, sizeof code, "%s return not ok and "
           "m:find(\"module 'm' not found:\\n\\tno field package.preload['m']"
           "\\n\\tno file '%s'\\n\\tno file '%s'\\n\", 1, true) and 1 or 0",
           req, fa, fb);
  L = newvm();
  T_EQI(run(L, code), 1);  /* stock Lua's message */
  lua_close(L);
}


/*
** require of a cached module: its search finds the file with a stat, and
** the load takes that stat for its own (one stat, not two). Only the
** searcher's load right after its search does: a package.searchpath
** before a loadfile or a require, the file edited in between, leaves
** each to check the file anew. The files have settled, so that no
** checksum of a racy entry (see 'isracy') would catch the edit instead.
** A name too long to keep costs two stats.
*/
static char founddir[300];

static void test_found (void) {
  char a[PATH_MAX], f[PATH_MAX + 16], code[3 * PATH_MAX];
  lua_State *L;
  long n;
  snprintf(f, sizeof f, "%s/m.lua", founddir);
  settle(f);
  snprintf(f, sizeof f, "%s/m2.lua", founddir);
  settle(f);
  snprintf(code, sizeof code, "package.path = '%s/?.lua' "
           "return require('m'):byte() + require('m2'):byte()", founddir);
  L = newvm();
  T_EQI(run(L, code), 'a' + 'a');  /* parsed */
  lua_close(L);
  L = newvm();
  n = atomic_load(&nstats);
  T_EQI(run(L, code), 'a' + 'a');  /* hits */
  T_EQI(atomic_load(&nstats) - n, 2);
  lua_close(L);
  /* found by package.searchpath, edited (another size), then loaded */
  L = newvm();
  snprintf(code, sizeof code, "package.path = '%s/?.lua' "
           "local p = package.searchpath('m', package.path) "
           "local h = io.open(p, 'w') h:write(\"return 'bb'\") h:close() "
           "return loadfile(p)():byte()", founddir);
  T_EQI(run(L, code), 'b');
  snprintf(code, sizeof code,
           "local p = package.searchpath('m2', package.path) "
           "local h = io.open(p, 'w') h:write(\"return 'cc'\") h:close() "
           "return require('m2'):byte()");
  T_EQI(run(L, code), 'c');
  lua_close(L);
  /* a name of more than 512 bytes */
  snprintf(a, sizeof a, "%s", founddir);
  while (strlen(a) < 560) {
    strcat(a, "/dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd");
    T_EQI(mkdir(a, 0700), 0);
  }
  snprintf(f, sizeof f, "%s/m.lua", a);
  t_writefile(f, "return 'd'");
  snprintf(code, sizeof code, "package.path = '%s/?.lua' "
           "return require('m'):byte()", a);
  L = newvm();
  T_EQI(run(L, code), 'd');
  lua_close(L);
  L = newvm();
  n = atomic_load(&nstats);
  T_EQI(run(L, code), 'd');
  T_EQI(atomic_load(&nstats) - n, 2);  /* the search's, the load's */
  lua_close(L);
}


/* The tests that need the process mode 'trust' (SHOAL_CODECACHE=trust). */
static void trustmain (void) {
  char real[PATH_MAX], big1[PATH_MAX + 16], big2[PATH_MAX + 16];
  lua_State *L = newvm();
  T_EQI(run(L, "return require('shoal.cache').stats().process_mode == "
               "'trust' and 1 or 0"), 1);
  lua_close(L);
  T_OK(realpath(dir, real) != NULL);  /* as /proc/self/fd shows paths */
  snprintf(big1, sizeof big1, "%s/big1.lua", real);
  snprintf(big2, sizeof big2, "%s/big2.lua", real);
  writebig(big1);
  writebig(big2);
  settle(big2);  /* and big1, written before */
  test_drop_parsing(big1, "return require('shoal.cache').reload('%s')");
  test_drop_parsing(big2, "return require('shoal.cache').clear()");
  test_trust_switch();
}


/* The tests in the default process mode. */
static void onmain (void) {
  char path[320];
  snprintf(settled, sizeof settled, "%s/settled.lua", dir);
  t_writefile(settled, "return 5");  /* settles while the others run */
  snprintf(founddir, sizeof founddir, "%s/found", dir);
  T_EQI(mkdir(founddir, 0700), 0);
  snprintf(path, sizeof path, "%s/m.lua", founddir);
  t_writefile(path, "return 'a'");  /* and these */
  snprintf(path, sizeof path, "%s/m2.lua", founddir);
  t_writefile(path, "return 'a'");
  test_threads();
  test_reload();
  test_share_clone();
  test_conflict();
  test_share_running();
  test_share_nested();
  test_conflict_frozen();
  test_symlink_switch();
  test_pin_release();
  test_share_kept();
  test_close_finalizers();
  test_settled_chmod();
  test_search();
  test_found();
}


int main (int argc, char **argv) {
  char cmd[300];
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  if (argc > 1 && strcmp(argv[1], "trust") == 0) trustmain();
  else onmain();
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) printf("# could not remove %s\n", dir);
  return t_done();
}
