/*
** closevm.c
** The time to close a VM holding about 100 MB of small objects. Built
** against each build: stock makes the VM with luaL_newstate, Shoal with
** shoal_newstate (a heap of its own, released at once).
**
**   closevm [MB]
*/

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

#include "host.h"
#if defined(SHOAL)
#include "shoal.h"
#endif



int main (int argc, char **argv) {
  int mb = (argc > 1) ? atoi(argv[1]) : 100;
#if defined(SHOAL)
  lua_State *L = shoal_newstate(0);
#else
  lua_State *L = luaL_newstate();
#endif
  double t0;
  if (L == NULL || mb < 1) {
    fprintf(stderr, "closevm: %s\n", L ? "MB must be a positive number" : "no memory");
    return 1;
  }
  luaL_openlibs(L);
  lua_pushinteger(L, mb);
  lua_setglobal(L, "MB");
  if (luaL_dostring(L,
      "keep = {} local i = 0 "
      "while collectgarbage('count') < MB * 1024 do "
      "  i = i + 1 keep[i] = {i, {x = i}, 'k' .. i} end") != LUA_OK) {
    fprintf(stderr, "closevm: %s\n", lua_tostring(L, -1));
    return 1;
  }
  printf("METRIC vm_mb %.1f MB\n", lua_gc(L, LUA_GCCOUNT) / 1024.0);
  t0 = host_now();
  lua_close(L);
  printf("METRIC close_ms %.3f ms\n", (host_now() - t0) * 1000);
  return 0;
}
