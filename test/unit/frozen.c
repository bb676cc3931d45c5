/*
** frozen.c
** Frozen data from C: lua_freeze, lua_thaw, lua_isfrozen, lua_frozenstats;
** every C API write to a frozen table raises; frozen bytes leave the
** collector's count; lua_close frees every frozen object (a counting
** allocator must end at zero).
*/

#include <stdlib.h>
#include <string.h>

#include "shoal.h"
#include "lauxlib.h"
#include "lualib.h"

#include "t.h"


/* Each write: the frozen table is at index 1 of the called function. */
static int w_setfield (lua_State *L) { lua_pushinteger(L, 1); lua_setfield(L, 1, "a"); return 0; }
static int w_settable (lua_State *L) { lua_pushstring(L, "k"); lua_pushinteger(L, 1); lua_settable(L, 1); return 0; }
/* the same on a key the table has (the fast path of a present key) */
static int w_setfield_old (lua_State *L) { lua_pushinteger(L, 1); lua_setfield(L, 1, "list"); return 0; }
static int w_settable_old (lua_State *L) { lua_pushstring(L, "list"); lua_pushinteger(L, 1); lua_settable(L, 1); return 0; }
static int w_seti (lua_State *L) { lua_pushinteger(L, 1); lua_seti(L, 1, 1); return 0; }
static int w_rawset (lua_State *L) { lua_pushstring(L, "k"); lua_pushinteger(L, 1); lua_rawset(L, 1); return 0; }
static int w_rawseti (lua_State *L) { lua_pushinteger(L, 1); lua_rawseti(L, 1, 7); return 0; }
static int w_rawsetp (lua_State *L) { lua_pushinteger(L, 1); lua_rawsetp(L, 1, &t_allocated); return 0; }
static int w_setmt (lua_State *L) { lua_newtable(L); lua_setmetatable(L, 1); return 0; }
static int w_unsetmt (lua_State *L) { lua_pushnil(L); lua_setmetatable(L, 1); return 0; }
static int w_setglobal (lua_State *L) { lua_pushinteger(L, 1); lua_setglobal(L, "anything"); return 0; }
/* on a thread at its base level, where no function runs: no position */
static int w_basethread (lua_State *L) {
  lua_State *L1 = lua_newthread(L);
  lua_pushvalue(L, 1);
  lua_xmove(L, L1, 1);
  lua_pushinteger(L1, 1);
  lua_rawseti(L1, 1, 7);  /* raises in L1, which passes it to L */
  return 0;
}
static int do_freeze (lua_State *L) { lua_freeze(L, 1); return 0; }
static int do_thaw (lua_State *L) { lua_thaw(L, 1); return 0; }


static const char *call (lua_State *L, lua_CFunction f) {
  static char msg[200];
  lua_pushcfunction(L, f);
  lua_pushvalue(L, 1);  /* the table under test */
  if (lua_pcall(L, 1, 0, 0) == LUA_OK) return NULL;
  strncpy(msg, lua_tostring(L, -1), sizeof msg - 1);
  lua_pop(L, 1);
  return msg;
}


int main (void) {
  lua_State *L = lua_newstate(t_alloc, NULL);
  size_t count, bytes;
  luaL_openlibs(L);
  T_OK(luaL_dostring(L,
    "local t = {list = {}, meta = setmetatable({}, {__index = {x = 1}})} "
    "for i = 1, 10000 do t.list[i] = {id = i, name = 'item' .. i} end "
    "return t") == LUA_OK);  /* index 1 from here on */
  lua_gc(L, LUA_GCCOLLECT);
  int before = lua_gc(L, LUA_GCCOUNT);
  lua_freeze(L, 1);
  T_EQI(lua_isfrozen(L, 1), 1);
  lua_frozenstats(L, &count, &bytes);
  T_OK(count >= 1 + 1 + 2 + 2 * 10000);  /* t, list, meta and its mt, items and names */
  T_OK(bytes > 10000 * 64);
  lua_gc(L, LUA_GCCOLLECT);
  /* frozen bytes are out of the collector's count (and the string table
     may shrink, its frozen strings gone), within 2 KB */
  T_OK(before - lua_gc(L, LUA_GCCOUNT) >= (int)(bytes / 1024) - 2);
  /* every write from C raises, and the VM stays usable */
  T_EQS(call(L, w_setfield), "attempt to modify a frozen table");
  T_EQS(call(L, w_settable), "attempt to modify a frozen table");
  T_EQS(call(L, w_seti), "attempt to modify a frozen table");
  T_EQS(call(L, w_rawset), "attempt to modify a frozen table");
  T_EQS(call(L, w_rawseti), "attempt to modify a frozen table");
  T_EQS(call(L, w_rawsetp), "attempt to modify a frozen table");
  T_EQS(call(L, w_setmt), "attempt to modify a frozen table");
  T_EQS(call(L, w_unsetmt), "attempt to modify a frozen table");
  T_OK(call(L, w_setglobal) == NULL);  /* the globals are not frozen */
  T_EQS(call(L, w_basethread), "attempt to modify a frozen table");
  T_EQS(call(L, w_setfield_old), "attempt to modify a frozen table");
  T_EQS(call(L, w_settable_old), "attempt to modify a frozen table");
  T_EQI(lua_getfield(L, 1, "list"), LUA_TTABLE);  /* the writes changed nothing */
  lua_pop(L, 1);
  T_EQS(call(L, do_freeze), "table is already frozen");
  lua_getfield(L, 1, "list");
  lua_replace(L, 1);  /* a frozen table that is not a root */
  T_EQS(call(L, do_thaw), "table is not the root of a frozen graph");
  T_EQS(call(L, w_seti), "attempt to modify a frozen table");  /* list[1] is there */
  T_EQS(call(L, w_rawseti), "attempt to modify a frozen table");
  T_OK(luaL_dostring(L, "return 1 + 1") == LUA_OK && lua_tointeger(L, -1) == 2);
  lua_pop(L, 1);
  /* a refused graph: clear error, nothing frozen */
  lua_settop(L, 0);
  T_OK(luaL_dostring(L, "return {ok = {}, bad = {coroutine.create(print)}}") == LUA_OK);
  lua_frozenstats(L, &count, &bytes);
  T_EQS(call(L, do_freeze), "cannot freeze a thread at t.bad[1]");
  size_t count2, bytes2;
  lua_frozenstats(L, &count2, &bytes2);
  T_EQI(count2, count);
  T_EQI(lua_isfrozen(L, 1), 0);
  lua_settop(L, 0);
  /* many graphs, some closed, some still frozen at lua_close */
  for (int i = 0; i < 50; i++) {
    T_OK(luaL_dostring(L, "local t = {} for i = 1, 100 do t[i] = {tostring(i)} end "
                          "t.f = function (x) t_up = x return x end return t") == LUA_OK);
    lua_freeze(L, 1);
    if (i % 2) lua_thaw(L, 1);
    lua_settop(L, 0);
  }
  lua_close(L);
  T_EQI(t_allocated, 0);  /* lua_close freed every frozen object */
  return t_done();
}
