/*
** simplest.c
** Runs a Lua script on the simplest allocator there is: a lua_Alloc that
** only pops and pushes a free list per 16-byte class (last freed, first
** reused) and bumps a pointer. It never gives memory back and keeps no
** count, no limit, no lock: its own work is next to nothing. Large blocks
** (over SMALL) are mapped from the OS, as any allocator's are. Against
** stock Lua on real allocators it shows what part of a program's run time
** is the allocator's own work, and what part is where the blocks land.
**
**   simplest script [args]
*/

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

#define SMALL	16384
#define ARENA		((size_t)8 << 30)	/* reserved, touched as used */
#define PAGE		((size_t)4096)
#define classof(n)	(((n) + 15) / 16)
#define pages(n)	(((n) + PAGE - 1) & ~(PAGE - 1))

static char *top, *end;  /* the arena's untouched part */
static void *freelist[classof(SMALL) + 1];


static void *get (size_t n) {
  if (n > SMALL) {
    void *p = mmap(NULL, pages(n), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return (p == MAP_FAILED) ? NULL : p;
  }
  else {
    size_t c = classof(n);
    void *p = freelist[c];
    if (p != NULL) freelist[c] = *(void **)p;
    else if ((size_t)(end - top) < c * 16) return NULL;
    else {
      p = top;
      top += c * 16;
    }
    return p;
  }
}


static void put (void *p, size_t n) {
  if (n > SMALL) munmap(p, pages(n));
  else {
    *(void **)p = freelist[classof(n)];
    freelist[classof(n)] = p;
  }
}


static void *simplest_alloc (void *ud, void *p, size_t osize, size_t nsize) {
  void *q;
  (void)ud;
  if (p == NULL) osize = 0;  /* then a type tag */
  if (nsize == 0) {
    if (p != NULL) put(p, osize);
    return NULL;
  }
  if (p != NULL && osize <= SMALL && nsize <= SMALL &&
      classof(osize) == classof(nsize))
    return p;
  if (p != NULL && osize > SMALL && nsize > SMALL) {
    q = mremap(p, pages(osize), pages(nsize), MREMAP_MAYMOVE);
    return (q == MAP_FAILED) ? NULL : q;
  }
  if ((q = get(nsize)) != NULL && p != NULL) {
    memcpy(q, p, osize < nsize ? osize : nsize);
    put(p, osize);
  }
  return q;
}


static int panic (lua_State *L) {
  fprintf(stderr, "simplest: panic: %s\n", lua_tostring(L, -1));
  return 0;
}


int main (int argc, char **argv) {
  lua_State *L;
  top = mmap(NULL, ARENA, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (argc < 2 || top == MAP_FAILED) {
    fprintf(stderr, "%s\n", argc < 2 ? "usage: simplest script [args]"
                                     : "simplest: cannot reserve the arena");
    return 1;
  }
  end = top + ARENA;
  if ((L = lua_newstate(simplest_alloc, NULL)) == NULL) return 1;
  lua_atpanic(L, panic);
  lua_gc(L, LUA_GCSTOP);  /* as lua.c does: no collection while opening */
  luaL_openlibs(L);
  lua_createtable(L, argc, 0);  /* 'arg', as lua.c makes it */
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - 1);
  }
  lua_setglobal(L, "arg");
  lua_gc(L, LUA_GCRESTART);  /* then the collector lua.c runs scripts with */
  lua_gc(L, LUA_GCGEN, 0, 0);
  if (luaL_loadfile(L, argv[1]) != LUA_OK ||
      lua_pcall(L, 0, 0, 0) != LUA_OK) {
    fprintf(stderr, "simplest: %s\n", lua_tostring(L, -1));
    return 1;
  }
  lua_close(L);
  return 0;
}
