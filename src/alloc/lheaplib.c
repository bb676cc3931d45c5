/*
** lheaplib.c
** States on heaps of their own (luaL_newstate's and shoal_newstate's), the
** choice of allocator (SHOAL_ALLOC), and require("shoal")'s memory
** functions.
*/

#define LUA_CORE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lua.h"
#include "lauxlib.h"
#include "lstate.h"

#include "lheap.h"
#include "lalloc.h"


/*
** {======================================================
** States on heaps of their own
** =======================================================
*/

/* luaL_newstate's allocator: SHOAL_ALLOC (read once), then
   shoal_defaultalloc */
static atomic_int usealloc;
static pthread_once_t envonce = PTHREAD_ONCE_INIT;

static void readenv (void) {
  const char *e = getenv("SHOAL_ALLOC");
  int on = 1;
  if (e != NULL && strcmp(e, "system") == 0) on = 0;
  else if (e != NULL && *e != '\0' && strcmp(e, "shoal") != 0)
    fprintf(stderr, "shoal: SHOAL_ALLOC must be shoal or system "
                    "(not '%s'); using shoal\n", e);
  if (on && !shoalA_pagesfit())
    fprintf(stderr, "shoal: the allocator needs pages of %zu bytes (this "
                    "system's are %ld); using the C library's\n",
                    PAGE, sysconf(_SC_PAGESIZE));
  atomic_store(&usealloc, on);
}


LUA_API void shoal_defaultalloc (int on) {
  pthread_once(&envonce, readenv);
  atomic_store(&usealloc, on);
}


static lua_State *newstate (lua_Alloc fallback, size_t limit) {
  ShoalHeap *h;
  lua_State *L;
  if (fallback != NULL) {  /* luaL_newstate */
    pthread_once(&envonce, readenv);
    if (!atomic_load(&usealloc) || !shoalA_pagesfit())
      return lua_newstate(fallback, NULL);
  }
  if ((h = shoal_heapnew()) == NULL) return NULL;
  h->limit = limit;
  if ((L = lua_newstate(shoal_alloc, h)) == NULL) {
    shoal_heapfree(h);  /* empty: the failed state freed its blocks */
    return NULL;
  }
  G(L)->ownheap = h;  /* only now: a state failing half made must free its
                         blocks one by one, and not its heap */
  return L;
}


lua_State *shoalA_newstate (lua_Alloc fallback) {
  return newstate(fallback, 0);
}


/*
** Closing L may skip freeing its objects one by one only while shoal_alloc
** on its own heap is still its allocator: a host that wrapped it (with
** lua_setallocf) sees every block freed, as on stock Lua, and the heap
** goes after the last one all the same.
*/
int shoalA_wholesale (lua_State *L) {
  void *ud;
  return G(L)->ownheap != NULL && lua_getallocf(L, &ud) == shoal_alloc &&
         ud == G(L)->ownheap;
}


void shoalA_closed (void *ownheap) {
  if (ownheap != NULL) shoal_heapfree(ownheap);
}


LUA_API lua_State *shoal_newstate (size_t limit) {
  return newstate(NULL, limit);
}


LUA_API ShoalHeap *shoal_heap (lua_State *L) {
  void *ud;
  return (lua_getallocf(L, &ud) == shoal_alloc) ? ud : NULL;
}


LUA_API void shoal_setlimit (lua_State *L, size_t limit) {
  ShoalHeap *h = shoal_heap(L);
  if (h != NULL) h->limit = limit;
}

/* }====================================================== */


/* a size as a Lua integer (a limit set from C may be beyond them) */
static void pushsize (lua_State *L, size_t n) {
  lua_pushinteger(L, n > (size_t)LUA_MAXINTEGER ? LUA_MAXINTEGER
                                                : (lua_Integer)n);
}


/*
** require("shoal").memory([scope]): the VM's heap ("vm", the default) or
** the process's ("process"): {inuse, mapped, peak, limit} in bytes; nil
** for a VM not on a Shoal heap (SHOAL_ALLOC=system).
*/
static int shoal_memory (lua_State *L) {
  static const char *const scopes[] = {"vm", "process", NULL};
  shoal_MemStats st;
  ShoalHeap *h = NULL;
  if (luaL_checkoption(L, 1, "vm", scopes) == 0) {
    if ((h = shoal_heap(L)) == NULL) {
      luaL_pushfail(L);
      return 1;
    }
  }
  shoal_heapstats(h, &st);
  lua_createtable(L, 0, 4);
  pushsize(L, st.inuse);
  lua_setfield(L, -2, "inuse");
  pushsize(L, st.mapped);
  lua_setfield(L, -2, "mapped");
  pushsize(L, st.peak);
  lua_setfield(L, -2, "peak");
  pushsize(L, st.limit);
  lua_setfield(L, -2, "limit");
  return 1;
}


static int shoal_limit (lua_State *L) {
  ShoalHeap *h = shoal_heap(L);
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 0, 1, "limit must not be negative");
  if (h == NULL) return luaL_error(L, "this VM is not on a Shoal heap (SHOAL_ALLOC=system)");
  pushsize(L, h->limit);
  h->limit = (size_t)n;
  return 1;
}


/*
** require("shoal").trim(): the VM gives back to the OS, now, the pages its
** heap holds but does not use (see 'shoal_heaptrim'); a VM about to go
** idle calls it. True, or fail for a VM not on a Shoal heap. Its caller
** is the thread running the VM, so the heap's owner, as a trim needs.
*/
static int shoal_trim (lua_State *L) {
  ShoalHeap *h = shoal_heap(L);
  if (h == NULL)
    luaL_pushfail(L);
  else {
    shoal_heaptrim(h);
    lua_pushboolean(L, 1);
  }
  return 1;
}


int shoalA_openlib (lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"memory", shoal_memory},
    {"setlimit", shoal_limit},
    {"trim", shoal_trim},
    {NULL, NULL}
  };
  luaL_newlib(L, funcs);
  return 1;
}
