/*
** lalloc.h
** The allocator's hooks in Lua's files (lapi.c, lauxlib.c, lgc.c,
** lstate.c, linit.c), which see only the public API, and its hooks for
** tests. (Its insides, shared by its own files, are in lheap.h.)
*/

#ifndef lalloc_h
#define lalloc_h

#include "lua.h"

/* a new state on a heap of its own (or on 'fallback' if SHOAL_ALLOC=system) */
LUAI_FUNC lua_State *shoalA_newstate (lua_Alloc fallback);
/* does L's heap go at once when L closes? */
LUAI_FUNC int shoalA_wholesale (lua_State *L);
/* after lua_close freed its last block: release the heap of its own
   (G(L)->ownheap, or NULL) */
LUAI_FUNC void shoalA_closed (void *ownheap);
/* after a full collection asked for: empty memory back to the OS */
LUAI_FUNC void shoalA_trim (lua_State *L);
LUAI_FUNC int shoalA_openlib (lua_State *L);
/* for tests: do the heap's notes of remotely shrunk blocks add up? */
struct ShoalHeap;
LUAI_FUNC int shoalA_shrunkexact (struct ShoalHeap *h);
/* for tests: do the heap's large blocks, cache and 'mapped' add up? */
LUAI_FUNC int shoalA_largeexact (struct ShoalHeap *h);
/* for tests: the next 'n' growths of large blocks' mappings fail */
LUAI_FUNC void shoalA_failremaps (int n);
/* for tests: the next 'n' mremaps refused, as for a block over two mappings */
LUAI_FUNC void shoalA_splitremaps (int n);
/* for tests: segments' bitmaps' functions against a page at a time, on
   'rounds' random changes; the mismatches */
LUAI_FUNC int shoalA_bitmaps (int rounds, unsigned seed);
/* for tests: bytes in the heap's dirty pages (freed medium blocks') */
LUAI_FUNC size_t shoalA_dirty (struct ShoalHeap *h);
/* for tests: spare segments waiting for a heap (see 'shoalM_leaveseg');
   'drop': unmapped first, so that a test's heap starts on fresh ones */
LUAI_FUNC int shoalA_spares (int drop);
/* for tests: spare mappings waiting, the same way (llarge.c) */
LUAI_FUNC int shoalA_sparemaps (int drop);
/* for tests: pages of the heap's class slabs given back by trims, their
   blocks parked (see 'trimslab') */
LUAI_FUNC int shoalA_parked (struct ShoalHeap *h);
/* for tests: bytes of the runs of the heap's MIXED slabs that trims parked
   (their whole pages given back), waiting to be the spare again (see
   'trimmixed') */
LUAI_FUNC size_t shoalA_mixedruns (struct ShoalHeap *h);
/* for tests: the next 'n' new slabs fail (no memory) */
LUAI_FUNC void shoalA_failslabs (int n);
/* for tests: the next 'n' growths of heaps' address maps fail (no memory) */
LUAI_FUNC void shoalA_failmaps (int n);
/* for tests: the next 'n' fresh mappings (large blocks, segments) fail */
LUAI_FUNC void shoalA_failmmaps (int n);
/* for tests: the next 'n' new segments' headers fail (no memory) at the
   first try, not at the try after the cached memory went back */
LUAI_FUNC void shoalA_failheads (int n);
/* for tests: fresh pages faulted in as written, never ahead (as on a
   kernel without MADV_POPULATE_WRITE: 1), or ahead again (0) */
LUAI_FUNC void shoalA_nopopulate (int on);
/* for tests: how long (ms) a heap keeps memory it no longer uses (500) */
LUAI_FUNC void shoalA_purgedelay (int ms);
/* for tests: large blocks up to MAXMEDIUM (grown: MAXGROWN) from
   segments' pages (1, the default) or all mapped (0) */
LUAI_FUNC void shoalA_mediumblocks (int on);
/* for tests: the system's page size as the allocator sees it (0: the
   real one) */
LUAI_FUNC void shoalA_pagesize (long n);

#endif
