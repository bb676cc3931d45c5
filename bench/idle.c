/*
** idle.c
** What VMs gone idle keep: N VMs each run a burst of work (small tables
** and strings made and dropped, a 100 KB string now and then, a 1 MB one
** twice) one after the other, then all wait, as a server's VMs wait
** between messages. Built against each build; on Shoal, 'expire' has a
** thread call shoal_heapexpire(NULL) every 100 ms meanwhile, as a host's
** timer would, 'trim' does that too and calls shoal_heaptrim on each VM
** as its burst ends, as a host would when a VM's queue runs empty, and
** 'keep' does neither.
**
**   idle N [keep|expire|trim]
**
** Prints METRIC lines for benchrun: process RSS growth per VM after the
** bursts and after the wait, and the longest shoal_heapexpire and
** shoal_heaptrim calls.
*/

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

#include "host.h"
#if defined(SHOAL)
#include "shoal.h"
#endif



#if defined(SHOAL)
static atomic_int done;
static double longest;  /* ms, of a shoal_heapexpire call */

static void *timer (void *arg) {
  (void)arg;
  while (!atomic_load(&done)) {
    double t0, ms;
    usleep(100 * 1000);
    t0 = host_now();
    shoal_heapexpire(NULL);
    ms = (host_now() - t0) * 1000;
    if (ms > longest) longest = ms;
  }
  return NULL;
}
#endif


int main (int argc, char **argv) {
  int n = (argc > 1) ? atoi(argv[1]) : 0;
  const char *mode = (argc > 2) ? argv[2] : "keep";
  lua_State **vm;
  double rss0;
  int expire = (strcmp(mode, "expire") == 0 || strcmp(mode, "trim") == 0);
  if (n < 1 || (strcmp(mode, "keep") != 0 && !expire)) {
    fprintf(stderr, "usage: idle N [keep|expire|trim]\n");
    return 1;
  }
#if !defined(SHOAL)
  if (expire) {
    fprintf(stderr, "idle: '%s' needs the Shoal build\n", mode);
    return 1;
  }
#endif
  if ((vm = calloc((size_t)n, sizeof(lua_State *))) == NULL) {
    fprintf(stderr, "idle: no memory\n");
    return 1;
  }
  rss0 = host_rsskb();
#if defined(SHOAL)
  int trim = (strcmp(mode, "trim") == 0);
  double trimmost = 0;  /* ms, of a shoal_heaptrim call */
  pthread_t th;
  if (expire && pthread_create(&th, NULL, timer, NULL) != 0) {
    fprintf(stderr, "idle: no thread\n");
    return 1;
  }
#endif
  for (int i = 0; i < n; i++) {
    if ((vm[i] = luaL_newstate()) == NULL) {
      fprintf(stderr, "idle: no memory for VM %d\n", i + 1);
      return 1;
    }
    luaL_openlibs(vm[i]);
    if (luaL_dostring(vm[i], host_burst) != LUA_OK) {
      fprintf(stderr, "idle: VM %d: %s\n", i + 1, lua_tostring(vm[i], -1));
      return 1;
    }
#if defined(SHOAL)
    if (trim) {
      double t0 = host_now(), ms;
      shoal_heaptrim(shoal_heap(vm[i]));
      ms = (host_now() - t0) * 1000;
      if (ms > trimmost) trimmost = ms;
    }
#endif
  }
  printf("METRIC busy_kb %.1f KB\n", (host_rsskb() - rss0) / n);
  usleep(700 * 1000);  /* longer than Shoal keeps what it no longer uses */
  printf("METRIC idle_kb %.1f KB\n", (host_rsskb() - rss0) / n);
#if defined(SHOAL)
  if (expire) {
    atomic_store(&done, 1);
    pthread_join(th, NULL);
    printf("METRIC expire_ms %.3f ms\n", longest);
  }
  if (trim) printf("METRIC trim_ms %.3f ms\n", trimmost);
#endif
  for (int i = 0; i < n; i++) lua_close(vm[i]);
  free(vm);
  return 0;
}
