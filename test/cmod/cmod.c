/*
** cmod.c
** A C module built only against the stock headers (build/stock/include):
** both interpreters must load it, which holds only if Shoal keeps the stock
** ABI and exports the API (-Wl,-E).
*/

#include "lua.h"
#include "lauxlib.h"

typedef struct Counter { lua_Integer n; } Counter;


static int counter_new (lua_State *L) {
  Counter *c = lua_newuserdatauv(L, sizeof(Counter), 0);
  c->n = luaL_optinteger(L, 1, 0);
  luaL_setmetatable(L, "cmod.Counter");
  return 1;
}


static int counter_bump (lua_State *L) {
  Counter *c = luaL_checkudata(L, 1, "cmod.Counter");
  c->n += luaL_optinteger(L, 2, 1);
  lua_pushinteger(L, c->n);
  return 1;
}


static int counter_tostring (lua_State *L) {
  Counter *c = luaL_checkudata(L, 1, "cmod.Counter");
  lua_pushfstring(L, "Counter(%I)", (LUAI_UACINT)c->n);
  return 1;
}


static int cmod_concat (lua_State *L) {
  luaL_Buffer b;
  int n = lua_gettop(L);
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; i++) {
    luaL_checkstring(L, i);
    lua_pushvalue(L, i);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  return 1;
}


int luaopen_cmod (lua_State *L) {
  static const luaL_Reg methods[] = {
    {"bump", counter_bump}, {"__tostring", counter_tostring}, {NULL, NULL}
  };
  static const luaL_Reg funcs[] = {
    {"new", counter_new}, {"concat", cmod_concat}, {NULL, NULL}
  };
  luaL_newmetatable(L, "cmod.Counter");
  luaL_setfuncs(L, methods, 0);
  lua_pushvalue(L, -1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
