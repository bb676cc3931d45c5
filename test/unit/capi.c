/*
** capi.c
** The C API as a host and a C module see it. Built twice, against the stock
** liblua.a and against libshoal.a: both must pass every check, so Shoal stays
** a drop-in for C code written for Lua 5.4.7.
*/

#include <stdlib.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

#include "t.h"


static int c_add (lua_State *L) {
  lua_Integer a = luaL_checkinteger(L, 1);
  lua_Integer b = luaL_optinteger(L, 2, 10);
  lua_pushinteger(L, a + b);
  return 1;
}


static int gc_calls;

static int c_gc (lua_State *L) {
  (void)L;
  gc_calls++;
  return 0;
}


static int c_yielder (lua_State *L) {
  lua_pushinteger(L, lua_tointeger(L, 1) * 2);
  return lua_yield(L, 1);
}


static const char *dostring_error (lua_State *L, const char *code) {
  if (luaL_dostring(L, code) == LUA_OK) return NULL;
  return lua_tostring(L, -1);
}


static void test_stack_and_values (lua_State *L) {
  size_t len;
  int isnum;
  T_EQI(lua_version(L), 504);
  T_EQI(lua_gettop(L), 0);
  lua_pushinteger(L, 42);
  lua_pushnumber(L, 2.5);
  lua_pushlstring(L, "a\0b", 3);
  lua_pushstring(L, "17");
  T_EQI(lua_gettop(L), 4);
  T_EQI(lua_isinteger(L, 1), 1);
  T_EQI(lua_isinteger(L, 2), 0);
  T_OK(lua_tonumber(L, 2) == 2.5);
  T_OK(memcmp(lua_tolstring(L, 3, &len), "a\0b", 3) == 0 && len == 3);
  T_EQI(lua_tointegerx(L, 4, &isnum), 17);
  T_EQI(isnum, 1);
  lua_tointegerx(L, 3, &isnum);
  T_EQI(isnum, 0);
  T_EQI(lua_stringtonumber(L, "0x10"), 5);
  T_EQI(lua_tointeger(L, -1), 16);
  T_EQI(lua_stringtonumber(L, "1e"), 0);
  lua_settop(L, 0);
  lua_pushinteger(L, 7);
  lua_pushinteger(L, 3);
  lua_arith(L, LUA_OPIDIV);
  T_EQI(lua_tointeger(L, -1), 2);
  lua_pushinteger(L, 5);
  T_EQI(lua_compare(L, -2, -1, LUA_OPLT), 1);
  lua_settop(L, 0);
}


static void test_tables (lua_State *L) {
  int n = 0;
  lua_createtable(L, 4, 4);
  for (int i = 1; i <= 4; i++) {
    lua_pushinteger(L, i * i);
    lua_rawseti(L, -2, i);
  }
  lua_pushstring(L, "v");
  lua_setfield(L, -2, "k");
  T_EQI(lua_rawlen(L, -1), 4);
  T_EQI(lua_geti(L, -1, 3), LUA_TNUMBER);
  T_EQI(lua_tointeger(L, -1), 9);
  lua_pop(L, 1);
  T_EQI(lua_getfield(L, -1, "k"), LUA_TSTRING);
  lua_pop(L, 1);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    n++;
    lua_pop(L, 1);
  }
  T_EQI(n, 5);
  lua_setglobal(L, "t");
  T_OK(dostring_error(L, "assert(#t == 4 and t.k == 'v')") == NULL);
  T_EQI(lua_gettop(L), 0);
}


static void test_errors (lua_State *L) {
  const char *msg;
  lua_pushcfunction(L, c_add);
  lua_setglobal(L, "add");
  T_OK(dostring_error(L, "assert(add(1) == 11 and add(1, 2) == 3)") == NULL);
  msg = dostring_error(L, "add('x')");
  T_EQS(msg, "[string \"add('x')\"]:1: "
             "bad argument #1 to 'add' (number expected, got string)");
  lua_pop(L, 1);
  msg = dostring_error(L, "x = ");
  T_EQS(msg, "[string \"x = \"]:1: unexpected symbol near <eof>");
  lua_pop(L, 1);
  msg = dostring_error(L, "local t = nil; return t.x");
  T_EQS(msg, "[string \"local t = nil; return t.x\"]:1: "
             "attempt to index a nil value (local 't')");
  lua_pop(L, 1);
  T_EQI(luaL_loadbufferx(L, "return 1", 8, "=chunk", "b"), LUA_ERRSYNTAX);
  T_EQS(lua_tostring(L, -1), "attempt to load a text chunk (mode is 'b')");
  lua_pop(L, 1);
  T_EQI(luaL_loadfilex(L, "/nonexistent/file.lua", NULL), LUA_ERRFILE);
  T_EQS(lua_tostring(L, -1),
        "cannot open /nonexistent/file.lua: No such file or directory");
  lua_pop(L, 1);
  /* error objects other than strings pass through unchanged */
  T_EQI(luaL_loadstring(L, "error({code = 7})"), LUA_OK);
  T_EQI(lua_pcall(L, 0, 0, 0), LUA_ERRRUN);
  T_EQI(lua_getfield(L, -1, "code"), LUA_TNUMBER);
  T_EQI(lua_tointeger(L, -1), 7);
  lua_settop(L, 0);
  /* the state is still usable after every error above */
  T_OK(dostring_error(L, "return 1 + 1") == NULL);
  T_EQI(lua_tointeger(L, -1), 2);
  lua_settop(L, 0);
}


static void test_userdata_and_refs (lua_State *L) {
  int ref;
  void *u = lua_newuserdatauv(L, 16, 2);
  T_OK(u != NULL);
  lua_pushstring(L, "first");
  T_EQI(lua_setiuservalue(L, -2, 1), 1);
  lua_pushstring(L, "third");
  T_EQI(lua_setiuservalue(L, -2, 3), 0);  /* only two user values */
  T_EQI(lua_getiuservalue(L, -1, 1), LUA_TSTRING);
  lua_pop(L, 1);
  luaL_newmetatable(L, "capi.box");
  lua_pushcfunction(L, c_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  T_OK(luaL_testudata(L, -1, "capi.box") == u);
  ref = luaL_ref(L, LUA_REGISTRYINDEX);
  T_EQI(lua_gettop(L), 0);
  T_EQI(lua_rawgeti(L, LUA_REGISTRYINDEX, ref), LUA_TUSERDATA);
  T_OK(lua_touserdata(L, -1) == u);
  lua_pop(L, 1);
  luaL_unref(L, LUA_REGISTRYINDEX, ref);
  gc_calls = 0;
  lua_gc(L, LUA_GCCOLLECT);
  T_EQI(gc_calls, 1);
}


static void test_coroutines (lua_State *L) {
  int nres;
  lua_State *co = lua_newthread(L);
  lua_pushcfunction(co, c_yielder);
  lua_pushinteger(co, 21);
  T_EQI(lua_resume(co, L, 1, &nres), LUA_YIELD);
  T_EQI(nres, 1);
  T_EQI(lua_tointeger(co, -1), 42);
  lua_pop(co, nres);
  T_EQI(lua_resume(co, L, 0, &nres), LUA_OK);
  T_EQI(lua_status(co), LUA_OK);
  lua_pop(L, 1);
  T_OK(dostring_error(L,
    "local co = coroutine.wrap(function (a) "
    "  local ok, v = pcall(function () return coroutine.yield(a + 1) end) "
    "  return ok and v * 10 end) "
    "assert(co(1) == 2 and co(5) == 50)") == NULL);
}


static void test_gc_and_alloc (void) {
  lua_State *L = lua_newstate(t_alloc, NULL);
  size_t before;
  T_OK(L != NULL);
  luaL_openlibs(L);
  T_OK(lua_gc(L, LUA_GCCOUNT) * 1024 + lua_gc(L, LUA_GCCOUNTB) ==
       (int)t_allocated);
  before = t_allocated;
  T_OK(dostring_error(L, "big = {} for i = 1, 10000 do big[i] = {i} end") == NULL);
  T_OK(t_allocated > before + 10000 * 16);
  T_OK(dostring_error(L, "big = nil") == NULL);
  lua_gc(L, LUA_GCCOLLECT);
  T_OK(t_allocated < before + 4096);
  T_EQI(lua_gc(L, LUA_GCGEN, 0, 0), LUA_GCINC);
  T_EQI(lua_gc(L, LUA_GCINC, 0, 0, 0), LUA_GCGEN);
  T_EQI(lua_gc(L, LUA_GCISRUNNING), 1);
  lua_close(L);
  T_EQI(t_allocated, 0);  /* lua_close frees everything */
}


int main (void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  test_stack_and_values(L);
  test_tables(L);
  test_errors(L);
  test_userdata_and_refs(L);
  test_coroutines(L);
  lua_close(L);
  test_gc_and_alloc();
  return t_done();
}
