/*
** lheap.h
** The allocator's insides, shared by its files: lalloc.c (the lua_Alloc,
** small blocks and their slabs, heaps), lsegment.c (segments' pages),
** llarge.c (medium and large blocks) and lheaplib.c (states on heaps of
** their own, require("shoal")). Not for use outside src/alloc.
*/

#ifndef lheap_h
#define lheap_h

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <time.h>

#include "llimits.h"

#include "shoal.h"


#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define poison(p,n)	ASAN_POISON_MEMORY_REGION(p, n)
#define unpoison(p,n)	ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define poison(p,n)	((void)(p), (void)(n))
#define unpoison(p,n)	((void)(p), (void)(n))
#endif


#define SLABSIZE	((size_t)64 * 1024)
#define SEGSIZE		(16 * SLABSIZE)	/* slabs are carved from segments */
#define PAGE		((size_t)4096)
#define SEGPAGES	((int)(SEGSIZE / PAGE))
#define SLABPAGES	((int)(SLABSIZE / PAGE))
#define MAXMEDIUM	((size_t)256 * 1024)	/* largest block of a segment's pages */
/* ... but for one grown there in place, up to half its segment (a
   luaL_Buffer's box that grew past MAXMEDIUM moved to a mapping, its bytes
   copied); larger, a mapping grows by moving pages, not bytes */
#define MAXGROWN	(SEGSIZE / 2)
#define GRAIN		16	/* alignment of slabs' first blocks */
#define STEP		8	/* of the size-class lookup */
#define MAXSMALL	16384	/* largest block from a slab */
#define KEEPEMPTY	4	/* empty slabs a heap always keeps with their pages */
#define HOLDMIN	((size_t)512 * 1024)	/* least it holds for medium and large blocks */
#define HOLDMAX	((size_t)1024 * 1024)	/* most a heap holds unused as it grows */
#define PURGESTEP	4	/* empty slabs given back at most per clock tick */
#define EXPIRESTEP	16	/* and per shoal_heapexpire */


#define NCLASSES	39	/* size classes (see 'classsize') */

#define NLISTED	2	/* blocks in 'shrunk' a slab or a heap lists */

typedef struct Slab {  /* what the fast paths touch comes first: one line */
  void *free;  /* blocks freed by the owner */
  char *bump, *end;  /* space never handed out */
  unsigned int used;  /* blocks out (owner's view: remote frees not yet taken) */
  int cls;  /* size class; EMPTY while empty and cached; MIXED; GONE */
  int listed;  /* on its class's 'partial' list */
  atomic_uint nshrunk;  /* its blocks in the heap's 'shrunk' (see 'noteshrunk') */
  struct ShoalHeap *heap;
  _Atomic(void *) remote;  /* blocks freed by other threads */
  struct Slab *next, *prev;  /* in its class's list of slabs with room */
  struct Slab *allnext;  /* in the heap's list of all its slabs */
  long emptiedat;  /* when it went empty, in ms (see 'purge') */
  atomic_uint nunlisted;  /* of 'nshrunk', those not in 'shrunkat' */
  unsigned int parked;  /* its pages given back with blocks out (see
                           'trimslab'), a bit each */
  _Atomic(void *) shrunkat[NLISTED];  /* the others (NULL: free) */
} Slab;

#define EMPTY		(-1)
#define GONE		(-3)	/* cold, going back to its segment (see 'trim') */
/*
** A heap's first MAXMIXED slabs are MIXED: blocks of every class, carved
** in turn (those of 24, 40 and 56 bytes from the slab's top down), so a
** small VM touches about as many pages as it holds bytes instead of a
** partly used page per class. Their free blocks go onto the heap's
** 'mixfree' lists, but for those of SPAREMIN bytes or more (see
** 'mixedfree'); the slabs stay the heap's until it is released, though a
** trim gives back the pages of their free room, parked as 'runs' (see
** 'trimmixed').
*/
#define MIXED		(-2)
#define MAXMIXED	2
#define SPAREMIN	1024
#define NRUNS		8	/* runs of MIXED slabs' room a heap parks at most */

/*
** A slab's header sits at one of NCOLORS cache-line offsets, chosen by the
** slab's address: headers at the same offset of 64 KB-aligned slabs would
** all fall into the same cache sets and evict each other. Blocks start
** after the last possible header, at FIRSTBLOCK.
*/
#define NCOLORS		16
#define LINE		64
#define FIRSTBLOCK	(((NCOLORS - 1) * LINE + sizeof(Slab) + GRAIN - 1) / GRAIN * GRAIN)
#define slabbase(p)	((uintptr_t)(p) & ~(uintptr_t)(SLABSIZE - 1))
#define slabat(b)	((Slab *)((b) + ((b) / SLABSIZE % NCOLORS) * LINE))
#define slabof(p)	slabat(slabbase(p))
#define blocks(s)	((char *)slabbase(s) + FIRSTBLOCK)

typedef struct Mapping {  /* a large block's, or a cached one */
  char *base;
  size_t size;
  long freedat;  /* in ms, when cached */
  struct Segment *seg;  /* a medium block's segment; NULL: a mapping */
  size_t tail;  /* a live mapping's last bytes, not its block's: the rest of
                   a shrink to half or more (see 'shoalL_largeresize') */
} Mapping;

/*
** Freed large mappings a heap keeps at most: enough for the large blocks
** one collection frees (a sweep frees a cycle's worth at once, then the
** program takes them again one at a time).
*/
#define NCACHED		256

typedef struct AddrMap {  /* block -> size: open addressing, linear probing */
  Mapping *slot;
  size_t n, cap;  /* entries; slots (0 or a power of 2) */
} AddrMap;

typedef struct Run { char *lo, *hi; } Run;  /* bytes [lo, hi) */

struct ShoalHeap {
  Slab *current[NCLASSES];  /* where the next block of each class comes from */
  void *mixfree[NCLASSES];  /* free blocks of MIXED slabs */
  Slab *partial[NCLASSES];  /* other slabs with free blocks */
  Slab *mixed;  /* the MIXED slab being carved */
  char *mixlo, *mixhi;  /* its pages below 'mixlo' and from 'mixhi' up were
                           faulted in (see 'prefault') */
  char *spare, *spareend;  /* room of MIXED slabs carved again: a freed block
                             or a run (see 'newspare') */
  int nmixed;  /* MIXED slabs so far */
  int nruns;  /* in 'runs' */
  Run runs[NRUNS];  /* MIXED slabs' free room given back at a trim (see
                      'trimmixed') */
  int nslabs;  /* slabs carved so far */
  Slab *all;  /* every slab, for releasing them at once */
  /* 'largelock' guards the empty slabs (so that any thread may give their
     pages back, see 'shoal_heapexpire') and what follows down to 'segs' */
  pthread_mutex_t largelock;
  Slab *warm, *oldest;  /* empty slabs with their pages, newest first
                           (linked by 'next' and 'prev') */
  Slab *cold;  /* empty slabs whose pages went back to the OS */
  int nwarm, ncold;
  long purgetick;  /* when the last slabs were given back (see 'purge') */
  int npurged;  /* slabs given back in that tick */
  AddrMap large;  /* live large blocks, and their mappings' sizes */
  AddrMap shrunk;  /* blocks shrunk remotely, and their real sizes */
  atomic_uint nmaps;  /* mappings in 'shrunk' (see 'noteshrunk') */
  atomic_uint nunlisted;  /* those of them not in 'shrunkmap' */
  _Atomic(void *) shrunkmap[NLISTED];  /* the others (NULL: free) */
  Mapping *cache;  /* freed large mappings kept a while (grown on demand) */
  int ncached, cachecap;
  atomic_size_t cachebytes;  /* in 'cache' (read without the lock) */
  /* 'inuse' and 'hi' are written by the owner only (plain stores;
     atomic so that other threads may read them) */
  atomic_size_t inuse;  /* bytes Lua holds, but for remote frees */
  atomic_size_t remotebytes;  /* bytes freed or shrunk away by other threads */
  atomic_size_t hi;  /* highest 'inuse' */
  atomic_size_t peak;  /* of inuse - remotebytes (see 'heappeak'; any
                          thread raises it) */
  ptrdiff_t unflushed;  /* change of 'inuse' not yet in the process's count */
  atomic_size_t mapped;  /* bytes taken from the system */
  size_t limit;  /* 0: none */
  atomic_size_t remotes;  /* remote frees not yet taken back */
  struct Segment *segs;  /* every segment (under 'largelock') */
  atomic_size_t dirtybytes;  /* in dirty pages (written under 'largelock') */
  long runsdue;  /* when a segment's dirty pages may next have waited
                   PURGEDELAY ms (LONG_MAX: none are dirty) */
  atomic_size_t sparebytes;  /* dirty pages of spare segments it took, */
  atomic_long spareuntil;  /* held beside 'mayhold' until then (see
                              'shoalM_newsegment'; both written by the
                              owner only, 'mayhold' zeroing the bytes
                              once due) */
  struct ShoalHeap *hnext, *hprev;  /* in the list of all heaps */
};

/*
** A segment: a mapping that slabs are carved from, bottom up, and medium
** blocks (over MAXSMALL, at most MAXMEDIUM, or MAXGROWN grown in place)
** are taken from, a run of pages each, top down (but for blocks that
** grow: see 'mediumalloc'). Slabs stay
** until shoal_heaptrim finds them empty, so they go into segments that
** have slabs already, as long as those have room (see 'mapslab'), rather
** than pin another. A page is 'used' by a slab or a medium block; a free
** page is 'dirty' while it keeps the memory of a medium block freed
** there, until it has waited PURGEDELAY ms (see 'shoalM_expireruns'). The
** bitmaps change under the heap's 'largelock'.
*/
typedef struct Segment {
  struct Segment *next;
  char *base;
  uint64_t used[SEGPAGES / 64];
  uint64_t dirty[SEGPAGES / 64];
  int maxfree, maxdirty;  /* the longest runs of free and of dirty pages */
  int nslabs;  /* carved from it */
  long due;  /* when its oldest dirty page will have waited PURGEDELAY ms
               (or earlier: taking dirty pages leaves it as it was) */
  uint32_t dirtyat[SEGPAGES];  /* when each dirty page went dirty, in ms
                                  (wrapping: see 'dirtyage') */
} Segment;


#define relaxed		memory_order_relaxed
#define NOINLINE	__attribute__((noinline))

/* a - b, or 0: counters read apart from another thread may cross */
#define minus(a,b)	((a) > (b) ? (a) - (b) : 0)


/* Bytes Lua holds in 'h' (remote frees lower 'remotebytes', not 'inuse'). */
static inline size_t heapinuse (ShoalHeap *h) {
  size_t rb = atomic_load_explicit(&h->remotebytes, memory_order_relaxed);
  return minus(atomic_load_explicit(&h->inuse, memory_order_relaxed), rb);
}

#define isset(a,i)	(((a)[(i) / 64] >> ((i) % 64)) & 1)
#define pageof(sg,b)	((int)(((char *)(b) - (sg)->base) / PAGE))

/* ms page 'i' of 'sg' has been dirty by 'now' (0: stamped later, as
   another CPU read the clock; wraps after 24 days unchecked) */
static inline long dirtyage (const Segment *sg, int i, long now) {
  int32_t age = (int32_t)((uint32_t)now - sg->dirtyat[i]);
  return (age > 0) ? age : 0;
}

#define pageround(n)	(((n) + PAGE - 1) & ~(PAGE - 1))
#define MAXBLOCK	(SIZE_MAX / 2)  /* larger sizes would wrap in pageround */


/* ms a heap keeps what it no longer uses (empty slabs' pages, dirty pages,
   cached mappings): 500, changed only by tests (shoalA_purgedelay) */
LUAI_DDEC(atomic_int shoalA_keepms;)
#define PURGEDELAY	atomic_load_explicit(&shoalA_keepms, memory_order_relaxed)


/* For tests: does this call fail? Yes while 'left' failures are to come. */
static inline int injected (atomic_int *left) {
  if (l_likely(atomic_load_explicit(left, memory_order_relaxed) <= 0))
    return 0;
  atomic_fetch_sub(left, 1);
  return 1;
}


/* 'n' bytes of fresh pages mapped (at 'hint' if free), NULL if none. */
static inline char *mapat (char *hint, size_t n) {
  char *p = mmap(hint, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  return (p == MAP_FAILED) ? NULL : p;
}


/* A coarse monotonic clock, in ms: read only when a slab changes hands. */
static inline long nowms (void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
  return (long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}


/* lalloc.c */
LUAI_FUNC void shoalA_countmapped (ShoalHeap *h, ptrdiff_t delta);
LUAI_FUNC void shoalA_unmap (ShoalHeap *h, char *p, size_t size);
LUAI_FUNC void shoalA_purgeoldest (ShoalHeap *h);
LUAI_FUNC int shoalA_pagesfit (void);

/* lsegment.c (shoalM_, as in mappings): segments' pages (their bitmaps
   change under 'largelock') */
LUAI_FUNC Segment *shoalM_newsegment (ShoalHeap *h);
LUAI_FUNC void shoalM_leaveseg (Segment *sg);
LUAI_FUNC int shoalM_dropspares (int all);
LUAI_FUNC int shoalM_dropseg (ShoalHeap *h, Segment **p);
LUAI_FUNC int shoalM_slabroom (const Segment *sg);
LUAI_FUNC int shoalM_freepages (const Segment *sg, int i, int n);
LUAI_FUNC int shoalM_findrun (const uint64_t *a, int on, int n);
LUAI_FUNC void shoalM_setpages (uint64_t *a, int i, int n, int on);
LUAI_FUNC void shoalM_measure (Segment *sg);
LUAI_FUNC size_t shoalM_takepages (ShoalHeap *h, Segment *sg, int i, int n);
LUAI_FUNC void shoalM_populate (char *lo, char *hi);
LUAI_FUNC void shoalM_droppages (ShoalHeap *h, Segment *sg, int i, int n);
LUAI_FUNC size_t shoalM_purgeseg (ShoalHeap *h, Segment *sg, size_t want);
LUAI_FUNC void shoalM_expireruns (ShoalHeap *h, long now, int all);
LUAI_FUNC int shoalM_slowlongest (const uint64_t *a, int on);

/* llarge.c: blocks over MAXSMALL, and the heap's address maps */
/* what shoalL_largealloc's block is for */
#define FORNEW		0
#define FORGROWTH	1	/* a block moved to be larger */
#define FORUSERDATA	2	/* a full userdata, which C code may use
				   sparsely: its fresh pages fault in as written */
LUAI_FUNC void *shoalL_largealloc (ShoalHeap *h, size_t n, int why);
LUAI_FUNC void shoalL_largefree (ShoalHeap *h, void *b);
LUAI_FUNC void *shoalL_largeresize (ShoalHeap *h, void *b, size_t nsize,
                                    int flags);
LUAI_FUNC void shoalL_expire (ShoalHeap *h, long now, int all);
LUAI_FUNC void shoalL_makeroom (ShoalHeap *h, size_t n, int large);
LUAI_FUNC int shoalL_uncacheall (ShoalHeap *h);
LUAI_FUNC void shoalL_leavemaps (ShoalHeap *h);
LUAI_FUNC int shoalL_dropmaps (int all);
LUAI_FUNC int shoalL_mapfails (void);
LUAI_FUNC void shoalL_trimtails (ShoalHeap *h);
LUAI_FUNC int shoalL_mapreserve (ShoalHeap *h, AddrMap *m);
LUAI_FUNC Mapping *shoalL_mapput (AddrMap *m, char *b, size_t size,
                                  Segment *seg);
LUAI_FUNC size_t shoalL_mapget (const AddrMap *m, const char *b);
LUAI_FUNC size_t shoalL_maptake (AddrMap *m, char *b, Segment **seg);

#endif
