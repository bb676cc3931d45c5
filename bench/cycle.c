/*
** cycle.c
** VMs made, run and closed one after the other, as a server makes a VM
** for a session or a request and closes it when done: N VMs, each opening
** the standard libraries and running 'small' (2,000 small tables) or
** 'burst' (host.h's, which idle.c runs too: small tables and strings made
** and dropped, ten 100 KB strings, two of 1 MB). Built against each build.
**
**   cycle N small|burst
**
** Prints METRIC lines for benchrun: the time a VM took, made, run and
** closed, and the process's RSS at the end.
*/

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

#include "host.h"


static const char small[] =
  "local t = {} for i = 1, 2000 do t[i] = {i, 'k' .. i} end";


int main (int argc, char **argv) {
  int n = (argc > 1) ? atoi(argv[1]) : 0;
  const char *code = (argc > 2 && strcmp(argv[2], "small") == 0) ? small
                   : (argc > 2 && strcmp(argv[2], "burst") == 0) ? host_burst
                   : NULL;
  double t0;
  if (n < 1 || code == NULL) {
    fprintf(stderr, "usage: cycle N small|burst\n");
    return 1;
  }
  t0 = host_now();
  for (int i = 0; i < n; i++) {
    lua_State *L = luaL_newstate();
    if (L == NULL) {
      fprintf(stderr, "cycle: no memory for VM %d\n", i + 1);
      return 1;
    }
    luaL_openlibs(L);
    if (luaL_dostring(L, code) != LUA_OK) {
      fprintf(stderr, "cycle: VM %d: %s\n", i + 1, lua_tostring(L, -1));
      return 1;
    }
    lua_close(L);
  }
  printf("METRIC vm_ms %.4f ms\n", (host_now() - t0) * 1000 / n);
  printf("METRIC end_rss_mb %.2f MB\n", host_rsskb() / 1024);
  return 0;
}
