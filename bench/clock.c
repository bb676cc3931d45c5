/*
** clock.c
** A monotonic clock for benchmarks, as a C module built against the stock
** headers and loaded the same way by both builds: clock.now() in seconds.
*/

#define _POSIX_C_SOURCE 200809L
#include <time.h>

#include "lua.h"
#include "lauxlib.h"


static int clock_now (lua_State *L) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  lua_pushnumber(L, (lua_Number)t.tv_sec + (lua_Number)t.tv_nsec / 1e9);
  return 1;
}


int luaopen_clock (lua_State *L) {
  static const luaL_Reg funcs[] = {{"now", clock_now}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
