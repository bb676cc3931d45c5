/*
** release.c
** The linked libshoal.a is the one shoal.h describes, on Lua 5.4.7.
*/

#include <string.h>

#include "shoal.h"
#include "lauxlib.h"
#include "lualib.h"

#include "t.h"


int main (void) {
  lua_State *L;
  T_EQS(shoal_release(), SHOAL_RELEASE);
  T_OK(strstr(shoal_release(), "Lua 5.4.7") != NULL);
  T_EQS(LUA_RELEASE, "Lua 5.4.7");  /* Lua's own identity is untouched */
  L = luaL_newstate();
  luaL_openlibs(L);
  T_OK(luaL_dostring(L, "return _VERSION") == LUA_OK);
  T_EQS(lua_tostring(L, -1), "Lua 5.4");
  lua_close(L);
  return t_done();
}
