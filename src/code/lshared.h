/*
** lshared.h
** Shared code: objects owned by the process, not by any VM.
** Internal header, included by Lua's own files through the patch series.
*/

#ifndef lshared_h
#define lshared_h

#include "lobject.h"
#include "lstate.h"

#include "lcodecache.h"
#include "lalloc.h"


/*
** Objects out of the collector's reach: shared (owned by the process) and
** frozen (owned by one VM, lfrozen.c). Neither has color bits, so no
** collector ever sees them white (never marked, traversed or barriered);
** neither is on the collector's lists (never swept). Bit 7 of 'marked'
** (TESTBIT, used only by Lua's own test library) tells them apart from a
** VM's fixed objects, and the age bits tell them apart from each other.
** (The collector reads the age of no object it does not own.)
*/
#define SHAREDBIT	7
#define SHAREDMARK	cast_byte(bitmask(SHAREDBIT) | 4)  /* age G_OLD */
#define FROZENMARK	cast_byte(bitmask(SHAREDBIT) | 7)  /* age unused by Lua */
#define isshared(o)	((o)->marked == SHAREDMARK)
#define isfrozen(o)	(((o)->marked & FROZENMARK) == FROZENMARK)


/* strings: process-wide, immutable, never freed before the process ends */
LUAI_FUNC unsigned int shoalS_seed (void);
LUAI_FUNC TString *shoalS_find (const char *str, size_t l, unsigned int h);
LUAI_FUNC TString *shoalS_share (TString *ts);
LUAI_FUNC void shoalS_stats (size_t *count, size_t *bytes);

/* a shared prototype tree: one loaded chunk, freed when no one holds it */
typedef struct Version Version;

/* what a VM holds of shared code; one per global_State, made on demand */
typedef struct Held {
  Version *v;  /* NULL: free slot */
  unsigned int mark;  /* 'cycle' of the last mark that found a closure */
  int conflict;  /* the VM's strings conflict: it runs private copies */
} Held;

typedef struct ShoalVM {
  Held *held;  /* open addressing on 'v' */
  int sizeheld;  /* power of 2, or 0 */
  int nheld;
  unsigned int cycle;  /* number of full marks started so far */
  struct Version *pushing;  /* held whatever the marks (see shoalP_push) */
  int cachemode;  /* SHOAL_CACHE_ON, _EXIST or _OFF */
  struct Pin *pins;  /* functions shared by this VM (lua_sharefunction) */
  struct Frozen *frozen;  /* frozen graphs (lfrozen.c) */
} ShoalVM;

#define SHOAL_CACHE_ON		0
#define SHOAL_CACHE_EXIST	1
#define SHOAL_CACHE_OFF		2

LUAI_FUNC ShoalVM *shoalP_vm (lua_State *L);
LUAI_FUNC Version *shoalP_newversion (lua_State *L, const Proto *p);
LUAI_FUNC void shoalP_ref (Version *v);
LUAI_FUNC void shoalP_unref (Version *v);
LUAI_FUNC void shoalP_setcached (Version *v, int incache);  /* 1: in, 2: retired */
LUAI_FUNC size_t shoalP_size (const Version *v);
LUAI_FUNC void shoalP_push (lua_State *L, Version *v, int env);
LUAI_FUNC void shoalP_stats (size_t *retired, size_t *retiredbytes,
                             size_t *privatecopies);

/* frozen data (lfrozen.c): the closures whose upvalues are roots */
LUAI_FUNC int shoalF_closures (global_State *g, LClosure *const **cl);
LUAI_FUNC TString *shoalF_findstr (global_State *g, const char *str, size_t l,
                                   unsigned int h);
LUAI_FUNC void shoalF_closestate (lua_State *L);

/* hooks from the collector and the state (lgc.c, lstate.c) */
LUAI_FUNC void shoalP_startmark (global_State *g);
LUAI_FUNC void shoalP_markproto (global_State *g, Proto *p);
LUAI_FUNC void shoalP_endmark (global_State *g);
LUAI_FUNC void shoalP_closestate (lua_State *L);

#endif
