/*
** lcodecache.h
** The code cache's hooks in Lua's auxiliary library (lauxlib.c, linit.c,
** loadlib.c), which see only the public API.
*/

#ifndef lcodecache_h
#define lcodecache_h

#include "lua.h"

/* stock luaL_loadfilex, which the cache calls to parse */
typedef int (*shoal_Loader) (lua_State *L, const char *filename,
                             const char *mode);

LUAI_FUNC int shoalC_loadfilex (lua_State *L, const char *filename,
                                const char *mode, shoal_Loader load);
/* stock loadlib.c 'readable', which the cache calls for files it lacks */
LUAI_FUNC int shoalC_readable (const char *filename,
                               int (*openable) (const char *filename));
/* loadlib.c's Lua searcher: it loads 'filename', which 'readable' found */
LUAI_FUNC void shoalC_found (const char *filename);
LUAI_FUNC int shoalC_openlib (lua_State *L);

#endif
