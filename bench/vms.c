/*
** vms.c
** The multi-VM benchmark: N VMs each open the standard libraries and
** require the same Penlight modules, all kept alive at once, as a server
** with one VM per player would. Built twice (stock liblua.a, libshoal.a).
**
**   vms N PENLIGHT_LUA_DIR MODULE...
**
** Prints METRIC lines for benchrun: per-VM memory after a full collection
** (collectgarbage("count") and process RSS growth / N), per-VM time to
** create the VM and finish the requires, and the whole run's time and RSS.
*/

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

#include "host.h"




static lua_State *newvm (const char *path, char **mods, int nmods) {
  lua_State *L = luaL_newstate();
  if (L == NULL) return NULL;
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_pushstring(L, path);
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
  for (int i = 0; i < nmods; i++) {
    lua_getglobal(L, "require");
    lua_pushstring(L, mods[i]);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
      fprintf(stderr, "vms: require '%s': %s\n", mods[i], lua_tostring(L, -1));
      exit(1);
    }
  }
  lua_gc(L, LUA_GCCOLLECT);
  return L;
}


int main (int argc, char **argv) {
  char path[4096];
  if (argc < 4) {
    fprintf(stderr, "usage: vms N PENLIGHT_LUA_DIR MODULE...\n");
    return 2;
  }
  int n = atoi(argv[1]);
  if (n < 1) {
    fprintf(stderr, "vms: N must be a positive number, not '%s'\n", argv[1]);
    return 2;
  }
  snprintf(path, sizeof path, "%s/?.lua;%s/?/init.lua", argv[2], argv[2]);
  lua_State **vms = calloc(n, sizeof(lua_State *));
  double kb = 0, rss0 = host_rsskb(), t0 = host_now();
  for (int i = 0; i < n; i++) {
    vms[i] = newvm(path, argv + 3, argc - 3);
    if (vms[i] == NULL) {
      fprintf(stderr, "vms: out of memory at VM %d\n", i);
      return 1;
    }
    kb += lua_gc(vms[i], LUA_GCCOUNT) + lua_gc(vms[i], LUA_GCCOUNTB) / 1024.0;
    if ((i + 1) % 250 == 0) fprintf(stderr, "  %d/%d VMs\n", i + 1, n);
  }
  double t1 = host_now(), rss1 = host_rsskb();
  for (int i = 0; i < n; i++) lua_close(vms[i]);
  free(vms);
  printf("METRIC vm_count_kb %.2f KB\n", kb / n);
  printf("METRIC vm_rss_kb %.2f KB\n", (rss1 - rss0) / n);
  printf("METRIC vm_create_ms %.4f ms\n", (t1 - t0) * 1000 / n);
  printf("METRIC total_create_s %.3f s\n", t1 - t0);
  printf("METRIC total_rss_mb %.1f MB\n", rss1 / 1024);
  return 0;
}
