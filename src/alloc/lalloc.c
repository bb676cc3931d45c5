/*
** lalloc.c
** shoal_alloc: a lua_Alloc made for Lua. Lua gives the size of every block
** it frees or resizes, so small blocks carry no header: each comes from a
** slab (64 KB, aligned, one size class) whose header is found by masking
** the block's address; a heap's first slabs mix every class (see MIXED).
** A heap (one per VM) owns its slabs: closing the VM releases them at
** once, accounting and limits are per heap, and slabs that stay empty go
** back to the OS (see 'purge'). Blocks freed by another thread go onto
** their slab's lock-free 'remote' list, which the owner takes back later;
** blocks shrunk by another thread stay in place (see 'shoal_shrinkremote').
** Slabs and medium blocks (over MAXSMALL, at most MAXMEDIUM) share the
** heap's 1 MB segments (see 'Segment'); larger blocks are mapped straight
** from the OS (see 'largealloc').
*/

#define LUA_CORE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <stdio.h>

#include "lua.h"
#include "lauxlib.h"
#include "lstate.h"

#include "lalloc.h"
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
#define GRAIN		16	/* alignment of slabs' first blocks */
#define STEP		8	/* of the size-class lookup */
#define MAXSMALL	16384	/* largest block from a slab */
#define KEEPEMPTY	4	/* empty slabs a heap always keeps with their pages */
#define PURGESTEP	4	/* empty slabs given back at most per clock tick */
#define EXPIRESTEP	16	/* and per shoal_heapexpire */

/* ms a heap keeps what it no longer uses (empty slabs' pages, dirty pages,
   cached mappings): 500, changed only by tests (shoalA_purgedelay) */
static atomic_int purgedelay = 500;
#define PURGEDELAY	atomic_load_explicit(&purgedelay, memory_order_relaxed)

/*
** Size classes: every STEP bytes up to 64, where Lua's commonest objects
** lie (a table is 56 bytes, an upvalue 40, a Lua closure 32 + 8 an
** upvalue, a short string 25 or more); every 16 up to 128; then four per
** doubling (at most 25% lost to rounding) up to MAXSMALL. A block whose
** size is a multiple of 16 is aligned to 16, as from malloc; the others
** (24, 40, 56) to 8 only, which is all that they can need: a type aligned
** to 16 has a size that is a multiple of 16. Finer classes (every 8 bytes
** to 128, or every 16 to 512) measured no better.
*/
#define NCLASSES	39
static const unsigned short classsize[NCLASSES] = {
  16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256,
  320, 384, 448, 512, 640, 768, 896, 1024, 1280, 1536, 1792, 2048,
  2560, 3072, 3584, 4096, 5120, 6144, 7168, 8192, 10240, 12288, 14336, 16384
};
static unsigned char sizeclass[MAXSMALL / STEP];  /* (n - 1) / STEP -> class */
static pthread_once_t classonce = PTHREAD_ONCE_INIT;

static void makeclasses (void) {
  int c = 0;
  for (int i = 0; i < MAXSMALL / STEP; i++) {
    if ((i + 1) * STEP > classsize[c]) c++;
    sizeclass[i] = (unsigned char)c;
  }
}

#define classof(n)	(sizeclass[((n) - 1) / STEP])	/* n in 1..MAXSMALL */
#define blocksize(c)	((size_t)classsize[c])

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
** 'mixedfree'); the slabs stay the heap's until it is released.
*/
#define MIXED		(-2)
#define MAXMIXED	2
#define SPAREMIN	1024

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

struct ShoalHeap {
  Slab *current[NCLASSES];  /* where the next block of each class comes from */
  void *mixfree[NCLASSES];  /* free blocks of MIXED slabs */
  Slab *partial[NCLASSES];  /* other slabs with free blocks */
  Slab *mixed;  /* the MIXED slab being carved */
  char *spare, *spareend;  /* a freed block of MIXED slabs, carved again */
  int nmixed;  /* MIXED slabs so far */
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
  struct ShoalHeap *hnext, *hprev;  /* in the list of all heaps */
};

/*
** A segment: a mapping that slabs are carved from, bottom up, and medium
** blocks (over MAXSMALL, at most MAXMEDIUM) are taken from, a run of pages
** each, top down. Slabs stay until shoal_heaptrim finds them empty, so
** they go into segments that have slabs already, as long as those have
** room (see 'mapslab'), rather than pin another. A page is 'used' by a
** slab or a medium block; a free page is 'dirty' while it keeps the
** memory of a medium block freed there (see 'expireruns'). The bitmaps
** change under the heap's 'largelock'.
*/
typedef struct Segment {
  struct Segment *next;
  char *base;
  uint64_t used[SEGPAGES / 64];
  uint64_t dirty[SEGPAGES / 64];
  int maxfree, maxdirty;  /* the longest runs of free and of dirty pages */
  int nslabs;  /* carved from it */
  long dirtyat;  /* when its oldest dirty page went dirty, in ms */
} Segment;

/* the process: 'allinuse' may lag each heap's by FLUSH bytes, so it is
   signed, read clamped at 0; the exact count is the sum over 'heaps' */
static atomic_llong allinuse;
static atomic_size_t allmapped, allpeak;
static ShoalHeap *heaps;  /* every heap, for the process's statistics */
static pthread_mutex_t heapslock = PTHREAD_MUTEX_INITIALIZER;
static ShoalHeap *expiring;  /* where shoal_heapexpire(NULL) is in 'heaps' */


#define FLUSH		((ptrdiff_t)64 * 1024)
#define relaxed		memory_order_relaxed
#define NOINLINE	__attribute__((noinline))

/* a - b, or 0: counters read apart from another thread may cross */
#define minus(a,b)	((a) > (b) ? (a) - (b) : 0)

/* For tests: does this call fail? Yes while 'left' failures are to come. */
static int injected (atomic_int *left) {
  if (l_likely(atomic_load_explicit(left, memory_order_relaxed) <= 0))
    return 0;
  atomic_fetch_sub(left, 1);
  return 1;
}

/* Bytes Lua holds in 'h'. */
static size_t heapinuse (ShoalHeap *h) {
  size_t rb = atomic_load_explicit(&h->remotebytes, relaxed);
  return minus(atomic_load_explicit(&h->inuse, relaxed), rb);
}


/* '*p' becomes 'n' if that is higher (any thread). */
static void raisemax (atomic_size_t *p, size_t n) {
  size_t old = atomic_load_explicit(p, relaxed);
  while (n > old && !atomic_compare_exchange_weak(p, &old, n)) ;
}


/*
** The heap's peak: the highest of what was held when last seen and of
** 'hi' less what other threads have freed so far. 'remotebytes' only
** grows, so that is at most what was held when 'inuse' was at 'hi': never
** more than the real peak, and the real peak while no other thread frees.
*/
static size_t heappeak (ShoalHeap *h) {
  size_t rb = atomic_load_explicit(&h->remotebytes, relaxed);
  size_t hi = atomic_load_explicit(&h->hi, relaxed);
  raisemax(&h->peak, minus(hi, rb));
  raisemax(&h->peak, heapinuse(h));
  return atomic_load_explicit(&h->peak, relaxed);
}


/* The process's count catches up with the heap's (every FLUSH bytes). */
static NOINLINE void flush (ShoalHeap *h) {
  long long all = atomic_fetch_add_explicit(&allinuse, h->unflushed, relaxed) +
                  h->unflushed;
  heappeak(h);
  if (all > 0) raisemax(&allpeak, (size_t)all);
  h->unflushed = 0;
}


/*
** The owner's accounting: no atomic read-modify-write on the fast path.
** The heap's highest 'inuse' is kept exactly; the process's count and
** peak catch up every FLUSH bytes of change (see 'shoal_heapstats').
*/
static inline void countfree (ShoalHeap *h, size_t freed) {
  atomic_store_explicit(&h->inuse,
      atomic_load_explicit(&h->inuse, relaxed) - freed, relaxed);
  h->unflushed -= (ptrdiff_t)freed;
  if (l_unlikely(h->unflushed < -FLUSH)) flush(h);
}


static inline void count (ShoalHeap *h, ptrdiff_t delta) {
  size_t n = atomic_load_explicit(&h->inuse, relaxed) + (size_t)delta;
  atomic_store_explicit(&h->inuse, n, relaxed);
  if (n > atomic_load_explicit(&h->hi, relaxed))
    atomic_store_explicit(&h->hi, n, relaxed);
  h->unflushed += delta;
  if (l_unlikely(h->unflushed > FLUSH || h->unflushed < -FLUSH)) flush(h);
}


static void countmapped (ShoalHeap *h, ptrdiff_t delta) {
  atomic_fetch_add_explicit(&h->mapped, (size_t)delta, relaxed);
  atomic_fetch_add_explicit(&allmapped, (size_t)delta, relaxed);
}


static void unmap (ShoalHeap *h, char *p, size_t size) {
  unpoison(p, size);  /* the range may be mapped again, by anyone */
  munmap(p, size);
  countmapped(h, -(ptrdiff_t)size);
}


/*
** {======================================================
** Slabs
** =======================================================
*/

static char *mapat (char *hint, size_t n) {
  char *p = mmap(hint, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  return (p == MAP_FAILED) ? NULL : p;
}


/*
** Map 'n' bytes aligned to SLABSIZE. The kernel maps top down, at the top
** of the highest gap that holds the mapping: most often just below the
** last segment or in a closed VM's segment's place, aligned, so segments
** adjoin and share one entry of the process's address space, not one
** each (the kernel allows some 65,000). An unaligned top is most often of
** a gap that also holds the aligned place just below; failing that, map
** more and cut the rest.
*/
static char *mapaligned (size_t n) {
  char *p = mapat(NULL, n), *s;
  if (p == NULL || (uintptr_t)p % SLABSIZE == 0) return p;
  munmap(p, n);
  s = (char *)((uintptr_t)p & ~(uintptr_t)(SLABSIZE - 1));
  if ((p = mapat(s, n)) == s) return s;  /* the hint was free */
  if (p != NULL) munmap(p, n);
  if ((p = mapat(NULL, n + SLABSIZE)) == NULL) return NULL;
  s = (char *)(((uintptr_t)p + SLABSIZE - 1) & ~(uintptr_t)(SLABSIZE - 1));
  if (s > p) munmap(p, s - p);
  if (s + n < p + n + SLABSIZE) munmap(s + n, p + n + SLABSIZE - (s + n));
  return s;
}


static void makeroom (ShoalHeap *h, size_t n);
static long nowms (void);


/*
** {======================================================
** Segments' pages
** =======================================================
*/

#define isset(a,i)	(((a)[(i) / 64] >> ((i) % 64)) & 1)
#define pageof(sg,b)	((int)(((char *)(b) - (sg)->base) / PAGE))

/* The bits of pages i .. i+n-1 in their word (i % 64 + n <= 64). */
static uint64_t mask (int i, int n) {
  uint64_t ones = (n == 64) ? ~(uint64_t)0 : ((uint64_t)1 << n) - 1;
  return ones << (i % 64);
}

/* Pages from i to the end of its word, at most n. */
static int part (int i, int n) {
  return (64 - i % 64 < n) ? 64 - i % 64 : n;
}


/* Pages i .. i+n-1 of bitmap 'a' set ('on') or cleared. */
static void setpages (uint64_t *a, int i, int n, int on) {
  for (int k; n > 0; i += k, n -= k) {
    k = part(i, n);
    if (on) a[i / 64] |= mask(i, k);
    else a[i / 64] &= ~mask(i, k);
  }
}


static int countpages (const uint64_t *a, int i, int n) {
  int c = 0;
  for (int k; n > 0; i += k, n -= k) {
    k = part(i, n);
    c += __builtin_popcountll(a[i / 64] & mask(i, k));
  }
  return c;
}


/* Are pages i .. i+n-1 of 'sg' there and free? */
static int freepages (const Segment *sg, int i, int n) {
  return i + n <= SEGPAGES && countpages(sg->used, i, n) == 0;
}


/*
** The first of the highest 'n' pages in a row whose bits in 'a' are 'on'
** (1 or 0); -1: none. Words all or none of whose bits are 'on' are
** taken whole.
*/
static int findrun (const uint64_t *a, int on, int n) {
  int run = 0;
  for (int i = SEGPAGES - 1; i >= 0; i--) {
    uint64_t x = on ? a[i / 64] : ~a[i / 64];  /* 1: a page that counts */
    if (i % 64 == 63 && x == 0) {
      run = 0;
      i -= 63;
    }
    else if (i % 64 == 63 && x == ~(uint64_t)0 && run + 64 < n) {
      run += 64;
      i -= 63;
    }
    else if (!((x >> (i % 64)) & 1)) run = 0;
    else if (++run == n) return i;
  }
  return -1;
}


/*
** The longest run of pages whose bits in 'a' are 'on'. In a word, the run
** going on ends at its lowest 0 bit and the next starts above its highest;
** 'y &= y >> 1' shortens every run of 1 bits by one, so it takes as many
** steps to clear 'y' as its longest run has bits.
*/
static int longest (const uint64_t *a, int on) {
  int run = 0, best = 0;
  for (int w = 0; w < SEGPAGES / 64; w++) {
    uint64_t x = on ? a[w] : ~a[w];  /* 1: a page that counts */
    if (x == ~(uint64_t)0) run += 64;
    else {
      int inner = 0;
      for (uint64_t y = x; y != 0; y &= y >> 1) inner++;
      run += __builtin_ctzll(~x);
      if (run > best) best = run;
      if (inner > best) best = inner;
      run = __builtin_clzll(~x);
    }
    if (run > best) best = run;
  }
  return best;
}


/* 'maxfree' and 'maxdirty' again, after pages of 'sg' changed. */
static void measure (Segment *sg) {
  sg->maxfree = longest(sg->used, 0);
  sg->maxdirty = longest(sg->dirty, 1);
}


/* Pages i .. i+n-1 of 'sg' taken; the bytes of them that were not dirty
   (fresh: each will fault when touched). */
static size_t takepages (ShoalHeap *h, Segment *sg, int i, int n) {
  int dirty = countpages(sg->dirty, i, n);
  setpages(sg->used, i, n, 1);
  setpages(sg->dirty, i, n, 0);
  measure(sg);
  atomic_fetch_sub_explicit(&h->dirtybytes, (size_t)dirty * PAGE, relaxed);
  return (size_t)(n - dirty) * PAGE;
}


/*
** Pages i .. i+n-1 of 'sg' freed by a medium block: dirty. The segment's
** clock starts with its first dirty page: a block freed and taken again
** over and over must not keep older dirty pages from going.
*/
static void droppages (ShoalHeap *h, Segment *sg, int i, int n) {
  if (n == 0) return;
  if (sg->maxdirty == 0) sg->dirtyat = nowms();
  setpages(sg->used, i, n, 0);
  setpages(sg->dirty, i, n, 1);
  measure(sg);
  atomic_fetch_add_explicit(&h->dirtybytes, (size_t)n * PAGE, relaxed);
  if (sg->dirtyat + PURGEDELAY < h->runsdue)
    h->runsdue = sg->dirtyat + PURGEDELAY;
  poison(sg->base + (size_t)i * PAGE, (size_t)n * PAGE);
}


/* Dirty pages of 'sg' back to the OS, lowest first (the highest are the
   next taken), until 'want' bytes went; the bytes that went. */
static size_t purgeseg (ShoalHeap *h, Segment *sg, size_t want) {
  size_t gone = 0;
  for (int i = 0; i < SEGPAGES && gone < want; ) {
    int n = 0;
    while (i + n < SEGPAGES && isset(sg->dirty, i + n)) n++;
    if (n == 0) {
      i = (sg->dirty[i / 64] >> (i % 64) == 0) ? (i / 64 + 1) * 64 : i + 1;
      continue;
    }
    madvise(sg->base + (size_t)i * PAGE, (size_t)n * PAGE, MADV_DONTNEED);
    setpages(sg->dirty, i, n, 0);
    gone += (size_t)n * PAGE;
    i += n;
  }
  if (gone > 0) sg->maxdirty = longest(sg->dirty, 1);  /* no page freed */
  atomic_fetch_sub_explicit(&h->dirtybytes, gone, relaxed);
  return gone;
}


/* A new segment, all its pages free (under 'largelock'). */
static Segment *newsegment (ShoalHeap *h) {
  Segment *sg = calloc(1, sizeof(Segment));
  char *p = (sg != NULL) ? mapaligned(SEGSIZE) : NULL;
  if (p == NULL) {
    free(sg);
    return NULL;
  }
  unpoison(p, SEGSIZE);  /* a region unmapped once may come back poisoned */
  sg->base = p;
  sg->maxfree = SEGPAGES;
  sg->next = h->segs;
  h->segs = sg;
  countmapped(h, SEGSIZE);
  return sg;
}


/* 'sg' unmapped if no page of it is used nor dirty. */
static int dropseg (ShoalHeap *h, Segment **p) {
  Segment *sg = *p;
  if (sg->maxfree < SEGPAGES || sg->maxdirty > 0) return 0;
  *p = sg->next;
  unmap(h, sg->base, SEGSIZE);
  free(sg);
  return 1;
}


/*
** The dirty pages of segments whose oldest waited PURGEDELAY ms by 'now'
** back to the OS (all: every one), and segments with no page used nor
** dirty unmapped. Under 'largelock'.
*/
static void expireruns (ShoalHeap *h, long now, int all) {
  long due = LONG_MAX;
  Segment **p = &h->segs, *sg;
  if (!all && now < h->runsdue) return;
  while ((sg = *p) != NULL) {
    if (sg->maxdirty > 0 && (all || now - sg->dirtyat >= PURGEDELAY))
      purgeseg(h, sg, SIZE_MAX);
    if (sg->maxdirty > 0 && sg->dirtyat + PURGEDELAY < due)
      due = sg->dirtyat + PURGEDELAY;
    if (!dropseg(h, p)) p = &sg->next;
  }
  h->runsdue = due;
}

/* }====================================================== */


/* The lowest SLABPAGES free pages of 'sg' a slab may take (aligned), or -1. */
static int slabroom (const Segment *sg) {
  if (sg->maxfree < SLABPAGES) return -1;
  for (int i = 0; i < SEGPAGES; i += SLABPAGES)
    if (freepages(sg, i, SLABPAGES)) return i;
  return -1;
}


static atomic_int failslabs;  /* for tests: new slabs to fail */

void shoalA_failslabs (int n) {
  atomic_store(&failslabs, n);
}


/*
** A fresh slab: the lowest room for one in a segment with slabs, else in
** any segment, else at the bottom of a new one (address space: no page is
** touched until used, but its pages will replace cached ones').
*/
static Slab *mapslab (ShoalHeap *h) {
  Segment *sg, *other = NULL;
  int i = -1, j = -1;
  char *p;
  if (injected(&failslabs)) return NULL;
  makeroom(h, SLABSIZE);
  pthread_mutex_lock(&h->largelock);
  for (sg = h->segs; sg != NULL; sg = sg->next) {
    if ((i = slabroom(sg)) < 0) continue;
    if (sg->nslabs > 0) break;
    if (other == NULL) {
      other = sg;
      j = i;
    }
  }
  if (sg == NULL && (sg = other) != NULL) i = j;
  if (sg == NULL) {
    if ((sg = newsegment(h)) == NULL) {
      pthread_mutex_unlock(&h->largelock);
      return NULL;
    }
    i = 0;
  }
  takepages(h, sg, i, SLABPAGES);
  sg->nslabs++;
  pthread_mutex_unlock(&h->largelock);
  p = sg->base + (size_t)i * PAGE;
  unpoison(p, SLABSIZE);  /* a medium block's pages may have been */
  return slabat((uintptr_t)p);
}


static void unlist (ShoalHeap *h, Slab *s) {
  if (s->prev) s->prev->next = s->next;
  else h->partial[s->cls] = s->next;
  if (s->next) s->next->prev = s->prev;
  s->next = s->prev = NULL;
  s->listed = 0;
}


static void list (ShoalHeap *h, Slab *s) {
  s->prev = NULL;
  s->next = h->partial[s->cls];
  if (s->next) s->next->prev = s;
  h->partial[s->cls] = s;
  s->listed = 1;
}


/* A slab ready for class 'c': a kept empty one, or a new one. */
static Slab *newslab (ShoalHeap *h, int c) {
  Slab *s;
  pthread_mutex_lock(&h->largelock);
  if ((s = h->warm) != NULL) {
    if ((h->warm = s->next) != NULL) h->warm->prev = NULL;
    else h->oldest = NULL;
    h->nwarm--;
  }
  else if ((s = h->cold) != NULL) {
    h->cold = s->next;
    h->ncold--;
  }
  pthread_mutex_unlock(&h->largelock);
  if (s != NULL)
    unpoison(blocks(s), SLABSIZE - FIRSTBLOCK);
  else {
    if ((s = mapslab(h)) == NULL) return NULL;
    memset(s, 0, sizeof(Slab));
    s->heap = h;
    atomic_init(&s->remote, NULL);
    s->allnext = h->all;
    h->all = s;
    h->nslabs++;
  }
  s->cls = c;
  s->free = NULL;
  s->bump = blocks(s);
  s->end = (char *)slabbase(s) + SLABSIZE;
  s->used = 0;
  s->parked = 0;
  s->next = s->prev = NULL;
  s->listed = 0;
  return s;
}


/* A coarse monotonic clock, in ms: read only when a slab changes hands. */
static long nowms (void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
  return (long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}


/*
** The pages of empty slabs (but for the KEEPEMPTY newest) go back to the
** OS once they have stayed empty PURGEDELAY ms, checked whenever a slab
** empties, or all at once when 'all' (a trim). A collector's sweep
** empties slabs that the next cycle fills again: the delay keeps them from
** being faulted in again each cycle. At most PURGESTEP go back per tick
** of the coarse clock: the slabs one sweep emptied would otherwise go back
** in one burst inside a later sweep (73 slabs: a pause of 1-2 ms). Each
** slab's header page stays, until shoal_heaptrim gives the slab back to
** its segment ('unslab').
*/
static void purgeoldest (ShoalHeap *h) {  /* nwarm > 0; under 'largelock' */
  Slab *w = h->oldest;
  if ((h->oldest = w->prev) != NULL) h->oldest->next = NULL;
  else h->warm = NULL;
  h->nwarm--;
  madvise((char *)slabbase(w) + 4096, SLABSIZE - 4096, MADV_DONTNEED);
  w->next = h->cold;
  h->cold = w;
  h->ncold++;
}


/* Up to 'most' empty slabs emptied PURGEDELAY ms before 'now' purged,
   'keep' staying: how many. Under 'largelock'. */
static int purgedue (ShoalHeap *h, long now, int keep, int most) {
  int n = 0;
  for (; n < most && h->nwarm > keep &&
         now - h->oldest->emptiedat >= PURGEDELAY; n++)
    purgeoldest(h);
  return n;
}


static void expire (ShoalHeap *h, long now, int all);

static void purge (ShoalHeap *h, int all) {  /* under 'largelock' */
  long now = all ? 0 : nowms();
  if (now != h->purgetick) {  /* a new tick: a new step */
    h->purgetick = now;
    h->npurged = 0;
  }
  if (all)
    while (h->nwarm > KEEPEMPTY) purgeoldest(h);
  else
    h->npurged += purgedue(h, now, KEEPEMPTY, PURGESTEP - h->npurged);
  expire(h, now, all);  /* and the cached large mappings and dirty pages */
}


/* 's' has no block out: keep it for reuse, with its pages for a while. */
static void emptied (ShoalHeap *h, Slab *s) {
  if (s->listed) unlist(h, s);
  if (h->current[s->cls] == s) h->current[s->cls] = NULL;
  s->cls = EMPTY;
  pthread_mutex_lock(&h->largelock);
  s->emptiedat = nowms();
  s->prev = NULL;
  if ((s->next = h->warm) != NULL) s->next->prev = s;
  else h->oldest = s;
  h->warm = s;
  h->nwarm++;
  purge(h, 0);
  pthread_mutex_unlock(&h->largelock);
}


/*
** A block of a MIXED slab freed: one of SPAREMIN bytes or more becomes
** the spare room that blocks of any class are carved from, in place of a
** smaller spare, whose rest waits as a block of the largest class it
** holds; others wait for their class. So a small VM's garbage of one size
** (a parser's buffers) serves blocks of another.
*/
static void mixedfree (ShoalHeap *h, void *b, int c) {
  size_t size = blocksize(c), left = (size_t)(h->spareend - h->spare);
  if (size >= SPAREMIN && size > left) {  /* 'b' becomes the spare */
    char *rest = h->spare;
    poison(b, size);
    h->spare = b;
    h->spareend = (char *)b + size;
    if (left < blocksize(0)) return;
    b = rest;
    c = classof(left);
    if (blocksize(c) > left) c--;
    unpoison(b, blocksize(c));
  }
  poison((char *)b + sizeof(void *), blocksize(c) - sizeof(void *));
  *(void **)b = h->mixfree[c];
  h->mixfree[c] = b;
}


/*
** Take back the blocks other threads freed in 's'. A block freed into a
** MIXED slab carries its class in its second word.
*/
static void takeremote (ShoalHeap *h, Slab *s) {
  void *b = atomic_exchange_explicit(&s->remote, NULL, memory_order_acquire);
  while (b != NULL) {
    void *next = *(void **)b;
    if (s->cls == MIXED) mixedfree(h, b, (int)((uintptr_t *)b)[1]);
    else {
      *(void **)b = s->free;
      s->free = b;
      s->used--;
    }
    atomic_fetch_sub_explicit(&h->remotes, 1, memory_order_relaxed);
    b = next;
  }
}


/*
** Take back every remote free, of every class (slow path only: before
** taking a new slab), so slabs they emptied serve any class again.
*/
static void takeallremote (ShoalHeap *h) {
  for (Slab *s = h->all; s != NULL; s = s->allnext) {
    if (s->cls != EMPTY &&
        atomic_load_explicit(&s->remote, memory_order_relaxed)) {
      int c = s->cls;
      takeremote(h, s);
      if (c == MIXED) continue;
      if (h->current[c] == s) continue;
      if (s->used == 0) emptied(h, s);
      else if (!s->listed && s->free) list(h, s);
    }
  }
}


/* A block of 'size' bytes from the room [*lo, *hi): those of 24, 40 and
   56 bytes from the top down, so that the others stay aligned to 16. */
static void *carve (char **lo, char **hi, size_t size) {
  if (size % 16 != 0) return *hi -= size;
  *lo += size;
  return *lo - size;
}


/* A block of class 'c' from the MIXED slabs, while they have room. */
static void *mixedalloc (ShoalHeap *h, int c) {
  size_t size = blocksize(c);
  Slab *s = h->mixed;
  void *b;
  if ((b = h->mixfree[c]) != NULL) {
    unpoison(b, size);
    h->mixfree[c] = *(void **)b;
    __builtin_prefetch(h->mixfree[c], 1);
    return b;
  }
  if (size <= (size_t)(h->spareend - h->spare)) {
    b = carve(&h->spare, &h->spareend, size);
    unpoison(b, size);
    return b;
  }
  if (s == NULL || s->bump + size > s->end) {
    if (h->nmixed == MAXMIXED || (s = newslab(h, MIXED)) == NULL)
      return NULL;
    h->mixed = s;
    h->nmixed++;
  }
  return carve(&s->bump, &s->end, size);
}


/*
** A partly used slab's pages that hold free blocks only go back to the OS
** at a trim ('trimslab'). The blocks that meet such a page leave the free
** list, "parked": a page given back reads as zeros, so no block there may
** hold a link. Invariant: a block meeting a page of 'parked' is neither out
** nor in a list; the slab hands them out again (all at once, faulting
** their pages in) only when it has no other block ('unpark'). Page 0,
** with the header, stays. MIXED slabs are not trimmed: their free blocks
** are in the heap's lists.
*/
#define firstpage(i,size)	((FIRSTBLOCK + (i) * (size)) / PAGE)
#define lastpage(i,size)	((FIRSTBLOCK + ((i) + 1) * (size) - 1) / PAGE)
#define MAXBLOCKS	((SLABSIZE - FIRSTBLOCK) / 16)	/* 16: the least class */
_Static_assert(SLABPAGES <= 16, "a slab's pages are bits of 'parked'");

/* The pages that block 'i' of a slab of 'size'-byte blocks meets: a bit each. */
static unsigned int pagesof (size_t i, size_t size) {
  unsigned int first = (unsigned int)firstpage(i, size);
  unsigned int last = (unsigned int)lastpage(i, size);
  return ((2u << last) - 1) & ~((1u << first) - 1);
}


/* The parked blocks of 's' back onto its (empty) free list, lowest first. */
static void unpark (Slab *s) {
  size_t size = blocksize(s->cls), n = (size_t)(s->bump - blocks(s)) / size;
  void **tail = &s->free;
  for (size_t i = 0; i < n; i++) {
    if (pagesof(i, size) & s->parked) {
      char *b = blocks(s) + i * size;
      *tail = b;
      tail = (void **)b;
    }
  }
  *tail = NULL;
  s->parked = 0;
}


/*
** Give back the pages of class slab 's' that hold no block out (its free
** blocks and the room never handed out, which becomes free blocks), and
** park the blocks that meet them. Owner only; a block on the slab's
** remote list counts as out (another thread may be writing its link).
*/
static void trimslab (Slab *s) {
  size_t size = blocksize(s->cls);
  size_t n = (size_t)(s->end - blocks(s)) / size;  /* blocks it holds */
  size_t handed = (size_t)(s->bump - blocks(s)) / size;
  uint64_t isfree[(MAXBLOCKS + 63) / 64];
  unsigned int out = 1, give;  /* page 0 holds the header */
  void **link;
  if ((n - s->used) * size < PAGE) return;  /* too little room to matter */
  memset(isfree, 0, sizeof(isfree));
  for (void *b = s->free; b != NULL; b = *(void **)b) {
    size_t i = (size_t)((char *)b - blocks(s)) / size;
    isfree[i / 64] |= (uint64_t)1 << (i % 64);
  }
  for (size_t i = 0; i < handed; i++)
    if (!(isfree[i / 64] >> (i % 64) & 1) && !(pagesof(i, size) & s->parked))
      out |= pagesof(i, size);
  give = ~out & ~s->parked & ((1u << SLABPAGES) - 1);
  if (give == 0) return;
  s->parked |= give;
  for (link = &s->free; *link != NULL; ) {  /* parked blocks out of the list */
    size_t i = (size_t)((char *)*link - blocks(s)) / size;
    if (pagesof(i, size) & s->parked) *link = *(void **)*link;
    else link = (void **)*link;
  }
  for (size_t i = handed; i < n; i++) {  /* the room never handed out: */
    char *b = blocks(s) + i * size;     /* free blocks, or parked ones */
    poison(b + sizeof(void *), size - sizeof(void *));
    if (!(pagesof(i, size) & s->parked)) {
      *(void **)b = s->free;
      s->free = b;
    }
  }
  s->bump = blocks(s) + n * size;
  for (int pg = 1; pg < SLABPAGES; ) {  /* each run of pages given back */
    int k = 0;
    while (pg + k < SLABPAGES && (give >> (pg + k) & 1)) k++;
    if (k > 0)
      madvise((char *)slabbase(s) + (size_t)pg * PAGE, (size_t)k * PAGE,
              MADV_DONTNEED);
    pg += k + 1;
  }
}


static void *smallalloc (ShoalHeap *h, int c) {
  size_t size = blocksize(c);
  Slab *s = h->current[c];
  void *b;
  if (l_unlikely(h->mixfree[c] != NULL)) return mixedalloc(h, c);
  for (;;) {
    if (s != NULL) {
      if (s->free == NULL && atomic_load_explicit(&s->remote, memory_order_relaxed))
        takeremote(h, s);
      if ((b = s->free) != NULL) {
        unpoison(b, size);
        s->free = *(void **)b;
        break;
      }
      if (s->bump + size <= s->end) {
        b = s->bump;
        s->bump += size;
        break;
      }
      if (s->parked != 0) {  /* its last free blocks: pages to fault in */
        unpark(s);
        continue;
      }
    }
    /* current slab full: a MIXED slab's block, next partial one, or a
       new slab */
    if (h->partial[c] == NULL &&
        atomic_load_explicit(&h->remotes, memory_order_relaxed) > 0)
      takeallremote(h);
    if ((b = mixedalloc(h, c)) != NULL) return b;
    if ((s = h->partial[c]) != NULL) unlist(h, s);
    else if ((s = newslab(h, c)) == NULL) return NULL;
    h->current[c] = s;
  }
  s->used++;
  return b;
}


/* Free a small block unless its slab needs relisting (0: slow path). */
static inline int fastfree (ShoalHeap *h, void *b, int c) {
  Slab *s = slabof(b);
  if (s->cls == MIXED) {
    mixedfree(h, b, c);
    return 1;
  }
  if (h->current[c] == s || (s->used > 1 && s->listed)) {
    poison((char *)b + sizeof(void *), blocksize(c) - sizeof(void *));
    *(void **)b = s->free;
    s->free = b;
    s->used--;
    return 1;
  }
  return 0;
}


/* Free a small block: the fast path, else relist or empty its slab. */
static void smallfree (ShoalHeap *h, void *b, int c) {
  Slab *s = slabof(b);
  if (fastfree(h, b, c)) return;
  /* not its class's current slab, and not listed or its last block out */
  poison((char *)b + sizeof(void *), blocksize(c) - sizeof(void *));
  *(void **)b = s->free;
  s->free = b;
  if (--s->used == 0) emptied(h, s);
  else list(h, s);
}

/* }====================================================== */


/*
** {======================================================
** Large blocks: mapped straight from the OS, page-aligned and without a
** header: the heap's 'large' table maps each block to its mapping's size.
** A freed mapping stays in the heap's cache for PURGEDELAY ms, for
** blocks it can hold or grow into: Lua often frees a part and soon
** allocates one of the same size (the next round's table, string buffer,
** array), and a sweep frees many long strings that are made again.
** 'largelock' guards the table and the cache: blocks may be freed remotely.
** =======================================================
*/

#define pageround(n)	(((n) + PAGE - 1) & ~(PAGE - 1))
#define MAXBLOCK	(SIZE_MAX / 2)  /* larger sizes would wrap in pageround */

#if defined(__SANITIZE_THREAD__)
/*
** ThreadSanitizer does not see mremap (it sees mmap and munmap): pages it
** moved would keep the history of whatever lay there before, and report
** races that are none. Under TSan a block grows in place where the pages
** after it are free, as with mremap, else moves by mmap, copy and munmap.
*/
static void *osremap (void *b, size_t osize, size_t size, int flags) {
  void *p;
  if (size < osize) {  /* in place */
    munmap((char *)b + size, osize - size);
    return b;
  }
  p = mmap((char *)b + osize, size - osize, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (p == (char *)b + osize) return b;  /* in place: the pages after were free */
  if (p != MAP_FAILED) munmap(p, size - osize);  /* a kernel without the flag */
  if (!(flags & MREMAP_MAYMOVE)) return MAP_FAILED;
  p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
           -1, 0);
  if (p == MAP_FAILED) return p;
  memcpy(p, b, osize);
  munmap(b, osize);
  return p;
}
#else
#define osremap(b,osize,size,flags)	mremap(b, osize, size, flags)
#endif

static atomic_int failremaps;  /* for tests: growths to fail (ENOMEM) */

void shoalA_failremaps (int n) {
  atomic_store(&failremaps, n);
}

/* A mapping resized; MAP_FAILED: it stays as it was (growths only). */
static void *remap (void *b, size_t osize, size_t size, int flags) {
  if (size > osize && injected(&failremaps)) {
    errno = ENOMEM;
    return MAP_FAILED;
  }
  return osremap(b, osize, size, flags);
}

#define CACHEMAX	((size_t)64 * 1024 * 1024)  /* bytes kept at most */

static size_t slotof (const AddrMap *m, const char *b) {
  return (size_t)(((uint64_t)(uintptr_t)b * 0x9E3779B97F4A7C15u) >> 32) &
         (m->cap - 1);
}


static atomic_int failmaps;  /* for tests: growths of address maps to fail */

void shoalA_failmaps (int n) {
  atomic_store(&failmaps, n);
}


static int mapput (AddrMap *m, char *b, size_t size, Segment *seg);

/* Room in 'm' for one more entry (kept 3/4 full at most); 0 if no memory. */
static int mapreserve (AddrMap *m) {
  AddrMap old;
  if ((m->n + 1) * 4 <= m->cap * 3) return 1;
  if (injected(&failmaps)) return 0;
  old = *m;
  m->cap = old.cap ? 2 * old.cap : 16;
  m->n = 0;
  if ((m->slot = calloc(m->cap, sizeof(Mapping))) == NULL) {
    *m = old;
    return 0;
  }
  for (size_t i = 0; i < old.cap; i++)  /* room enough: no growth, no failure */
    if (old.slot[i].base != NULL)
      mapput(m, old.slot[i].base, old.slot[i].size, old.slot[i].seg);
  free(old.slot);
  return 1;
}


/* Enter block 'b' with 'size' (in segment 'seg') in 'm'; 0 if no memory. */
static int mapput (AddrMap *m, char *b, size_t size, Segment *seg) {
  size_t i;
  if (!mapreserve(m)) return 0;
  for (i = slotof(m, b); m->slot[i].base != NULL; i = (i + 1) & (m->cap - 1)) ;
  m->slot[i].base = b;
  m->slot[i].size = size;
  m->slot[i].seg = seg;
  m->n++;
  return 1;
}


/* The size of block 'b' in 'm' (0: not there). */
static size_t mapget (const AddrMap *m, const char *b) {
  if (m->n == 0) return 0;
  for (size_t i = slotof(m, b); m->slot[i].base != NULL; i = (i + 1) & (m->cap - 1))
    if (m->slot[i].base == b) return m->slot[i].size;
  return 0;
}


/* Take block 'b' out of 'm': its size (0: it was not there), and its
   segment into '*seg' unless NULL. */
static size_t maptake (AddrMap *m, char *b, Segment **seg) {
  size_t wrap = m->cap - 1, i, j, size;
  if (seg != NULL) *seg = NULL;
  if (m->n == 0) return 0;
  for (i = slotof(m, b); m->slot[i].base != b; i = (i + 1) & wrap)
    if (m->slot[i].base == NULL) return 0;
  size = m->slot[i].size;
  if (seg != NULL) *seg = m->slot[i].seg;
  for (j = i;;) {  /* close the gap: no tombstones */
    size_t k;
    j = (j + 1) & wrap;
    if (m->slot[j].base == NULL) break;
    k = slotof(m, m->slot[j].base);  /* may entry j move back to i? */
    if ((i <= j) ? (k <= i || k > j) : (k <= i && k > j)) {
      m->slot[i] = m->slot[j];
      i = j;
    }
  }
  m->slot[i].base = NULL;
  m->n--;
  return size;
}


/*
** Take entry 'i' out of the cache. The others keep their order, which is
** the order they were freed in ('freedat' never falls): the oldest first.
*/
static Mapping uncache (ShoalHeap *h, int i) {
  Mapping m = h->cache[i];
  h->ncached--;
  memmove(&h->cache[i], &h->cache[i + 1],
          (size_t)(h->ncached - i) * sizeof(Mapping));
  atomic_fetch_sub_explicit(&h->cachebytes, m.size, relaxed);
  return m;
}


/* Unmap the cache's mappings freed PURGEDELAY ms before 'now' (all: every
   one), which come first; the same for segments' dirty pages. */
static void expire (ShoalHeap *h, long now, int all) {
  int n = 0;
  size_t bytes = 0;
  while (n < h->ncached && (all || now - h->cache[n].freedat >= PURGEDELAY)) {
    unmap(h, h->cache[n].base, h->cache[n].size);
    bytes += h->cache[n].size;
    n++;
  }
  if (n > 0) {
    h->ncached -= n;
    memmove(h->cache, h->cache + n, (size_t)h->ncached * sizeof(Mapping));
    atomic_fetch_sub_explicit(&h->cachebytes, bytes, relaxed);
  }
  expireruns(h, now, all);
}


/*
** 'size' bytes of cached pages (or NULL): the smallest cached mapping that
** holds them, whole if of that size, else its head, the rest staying in
** the cache (pages already touched: no fault for them; a block never
** holds pages it does not need). With 'less', when none holds them, the
** largest that does not, for the caller to grow.
*/
static Mapping fromcache (ShoalHeap *h, size_t size, int less) {
  Mapping m = {NULL, 0, 0, NULL};
  int best = -1, below = -1;
  for (int i = 0; i < h->ncached; i++) {
    size_t s = h->cache[i].size;
    if (s < size) {
      if (below < 0 || s > h->cache[below].size) below = i;
    }
    else if (best < 0 || s < h->cache[best].size) best = i;
  }
  if (best < 0) return (less && below >= 0) ? uncache(h, below) : m;
  if (h->cache[best].size == size) return uncache(h, best);
  m = h->cache[best];
  m.size = size;
  h->cache[best].base += size;
  h->cache[best].size -= size;
  atomic_fetch_sub_explicit(&h->cachebytes, size, relaxed);
  return m;
}


/* Unmap the cache's oldest mapping; its size. */
static size_t uncacheoldest (ShoalHeap *h) {
  Mapping m = uncache(h, 0);
  unmap(h, m.base, m.size);
  return m.size;
}


/*
** Before the heap takes 'n' bytes of fresh pages: unmap as many cached
** (oldest first), then give back as many dirty pages, so that its RSS
** does not hold both.
*/
static void makeroom (ShoalHeap *h, size_t n) {
  size_t gone = 0;
  if (atomic_load_explicit(&h->cachebytes, relaxed) == 0 &&
      atomic_load_explicit(&h->dirtybytes, relaxed) == 0)
    return;
  pthread_mutex_lock(&h->largelock);
  while (h->ncached > 0 && gone < n) gone += uncacheoldest(h);
  for (Segment **p = &h->segs, *sg; (sg = *p) != NULL && gone < n; ) {
    if (sg->maxdirty > 0) gone += purgeseg(h, sg, n - gone);
    if (!dropseg(h, p)) p = &sg->next;  /* left empty: it has no reason to stay */
  }
  pthread_mutex_unlock(&h->largelock);
}


/*
** Room for one more entry in the cache, its array made or grown if need
** be (0: full, or no memory for the array).
*/
static int cacheroom (ShoalHeap *h) {
  Mapping *c;
  int n;
  if (h->ncached < h->cachecap) return 1;
  if (h->cachecap >= NCACHED) return 0;
  n = (h->cachecap == 0) ? 8 : 2 * h->cachecap;
  if (n > NCACHED) n = NCACHED;
  if ((c = realloc(h->cache, (size_t)n * sizeof(Mapping))) == NULL) return 0;
  h->cache = c;
  h->cachecap = n;
  return 1;
}


/* Keep a freed mapping in the cache, or unmap it (the cache's oldest
   first) when the cache would hold too much. */
static void tocache (ShoalHeap *h, char *p, size_t size) {
  if (size > CACHEMAX) {  /* never kept: the cache stays as it is */
    unmap(h, p, size);
    return;
  }
  while (h->ncached > 0 &&
         (!cacheroom(h) ||
          atomic_load_explicit(&h->cachebytes, relaxed) + size > CACHEMAX))
    uncacheoldest(h);
  if (!cacheroom(h)) {  /* no array, and no memory to make it */
    unmap(h, p, size);
    return;
  }
  poison(p, size);
  h->cache[h->ncached].base = p;
  h->cache[h->ncached].size = size;
  h->cache[h->ncached].freedat = nowms();
  h->cache[h->ncached].seg = NULL;
  h->ncached++;
  atomic_fetch_add_explicit(&h->cachebytes, size, relaxed);
}


/*
** Before the heap takes 'n' bytes of fresh pages: give back as many in
** kept empty slabs and cached mappings, so that its RSS does not hold both.
*/
static void freshroom (ShoalHeap *h, size_t n) {
  pthread_mutex_lock(&h->largelock);
  for (size_t back = SLABSIZE; back <= n && h->nwarm > KEEPEMPTY;
       back += SLABSIZE)
    purgeoldest(h);
  pthread_mutex_unlock(&h->largelock);
  makeroom(h, n);
}


static atomic_int nomedium;  /* for tests: every large block a mapping */

void shoalA_mediumblocks (int on) {
  atomic_store(&nomedium, !on);
}


/*
** A medium block: the highest run of dirty pages that holds it in the
** heap's segments (newest first), else of free pages, else the top of a
** new segment. Freed, its pages stay dirty for the next (see
** 'expireruns'): unlike a mapping's, they cost no system call and no
** address-space entry of their own, so that thousands of VMs do not run
** into the kernel's limit of those (65,530 by default).
*/
static void *mediumalloc (ShoalHeap *h, size_t size) {
  int n = (int)(size / PAGE), i = -1;
  Segment *sg;
  size_t fresh;
  char *b;
  pthread_mutex_lock(&h->largelock);
  if (!mapreserve(&h->large)) {  /* before a new segment, left empty else */
    pthread_mutex_unlock(&h->largelock);
    return NULL;
  }
  expire(h, nowms(), 0);
  for (sg = h->segs; sg != NULL; sg = sg->next)
    if (sg->maxdirty >= n) {
      i = findrun(sg->dirty, 1, n);
      break;
    }
  if (sg == NULL)
    for (sg = h->segs; sg != NULL; sg = sg->next)
      if (sg->maxfree >= n) {
        i = findrun(sg->used, 0, n);
        break;
      }
  if (sg == NULL) {
    if ((sg = newsegment(h)) == NULL) {
      pthread_mutex_unlock(&h->largelock);
      return NULL;
    }
    i = SEGPAGES - n;
  }
  b = sg->base + (size_t)i * PAGE;
  mapput(&h->large, b, size, sg);  /* cannot fail: room was reserved */
  fresh = takepages(h, sg, i, n);
  pthread_mutex_unlock(&h->largelock);
  if (fresh > 0) freshroom(h, fresh);
  unpoison(b, size);
  return b;
}


static void *largealloc (ShoalHeap *h, size_t n) {
  size_t size = pageround(n);
  Mapping m;
  if (size <= MAXMEDIUM && !atomic_load_explicit(&nomedium, relaxed))
    return mediumalloc(h, size);
  pthread_mutex_lock(&h->largelock);
  expire(h, nowms(), 0);
  m = fromcache(h, size, 1);
  pthread_mutex_unlock(&h->largelock);
  if (m.base != NULL) {
    unpoison(m.base, m.size);
    if (m.size < size) {  /* grown: only the pages it lacks are fresh */
      void *p;
      freshroom(h, size - m.size);
      p = remap(m.base, m.size, size, MREMAP_MAYMOVE);
      if (p != MAP_FAILED) {
        countmapped(h, (ptrdiff_t)(size - m.size));
        m.base = p;
        m.size = size;
      }
      else {  /* memory is short: give it back, then try fresh pages */
        unmap(h, m.base, m.size);
        m.base = NULL;
      }
    }
  }
  if (m.base == NULL) {
    freshroom(h, size);
    m.base = mmap(NULL, size, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m.base == MAP_FAILED) return NULL;
    m.size = size;
    countmapped(h, (ptrdiff_t)size);
  }
  pthread_mutex_lock(&h->largelock);
  if (!mapput(&h->large, m.base, m.size, NULL)) {
    pthread_mutex_unlock(&h->largelock);
    unmap(h, m.base, m.size);
    return NULL;
  }
  pthread_mutex_unlock(&h->largelock);
  return m.base;
}


static void largefree (ShoalHeap *h, void *b) {
  Segment *sg;
  size_t size;
  pthread_mutex_lock(&h->largelock);
  expire(h, nowms(), 0);
  size = maptake(&h->large, b, &sg);
  if (sg != NULL) droppages(h, sg, pageof(sg, b), (int)(size / PAGE));
  else tocache(h, b, size);
  pthread_mutex_unlock(&h->largelock);
}


/*
** A medium block resized, under 'largelock', which it lets go: in place
** when it shrinks or the pages after it are free, else moved (bytes
** copied). NULL: no memory ('flags' 0: it may not move); it stays.
*/
static void *mediumresize (ShoalHeap *h, Segment *sg, char *b, size_t osize,
                           size_t nsize, int flags) {
  size_t size = pageround(nsize), fresh = 0;
  int i = pageof(sg, b), n = (int)(osize / PAGE), m = (int)(size / PAGE);
  void *p;
  if (size <= osize) droppages(h, sg, i + m, n - m);
  else if (size <= MAXMEDIUM && freepages(sg, i + n, m - n))
    fresh = takepages(h, sg, i + n, m - n);
  else {  /* moves */
    mapput(&h->large, b, osize, sg);  /* cannot fail: there was room */
    pthread_mutex_unlock(&h->largelock);
    if (flags == 0 || (p = largealloc(h, nsize)) == NULL) return NULL;
    memcpy(p, b, osize);
    largefree(h, b);
    return p;
  }
  mapput(&h->large, b, size, sg);  /* cannot fail: there was room */
  pthread_mutex_unlock(&h->largelock);
  if (size > osize) {
    unpoison(b + osize, size - osize);
    if (fresh > 0) freshroom(h, fresh);
  }
  return b;
}


/*
** A large block resized large: its pages move, not its bytes ('flags' 0:
** it stays in place). A block that grows into cached pages has its bytes
** copied instead, outside the lock: copying is cheaper than faulting in
** as many fresh pages. NULL: no memory; the block stays as it was.
*/
static void *largeresize (ShoalHeap *h, void *b, size_t nsize, int flags) {
  size_t size = pageround(nsize), osize;
  void *p;
  Mapping m;
  Segment *sg;
  pthread_mutex_lock(&h->largelock);
  osize = maptake(&h->large, b, &sg);
  if (sg != NULL) return mediumresize(h, sg, b, osize, nsize, flags);
  if (size > osize && flags != 0 && (m = fromcache(h, size, 0)).base != NULL) {
    /* meanwhile other threads only take blocks out of 'large' (a shrink
       puts its block back): the room 'b' left stays */
    pthread_mutex_unlock(&h->largelock);
    unpoison(m.base, m.size);
    memcpy(m.base, b, osize);
    pthread_mutex_lock(&h->largelock);
    tocache(h, b, osize);
    mapput(&h->large, m.base, m.size, NULL);  /* cannot fail: there was room */
    pthread_mutex_unlock(&h->largelock);
    return m.base;
  }
  if (size == osize) p = b;
  else if ((p = remap(b, osize, size, flags)) == MAP_FAILED) {
    p = NULL;
    size = osize;
  }
  mapput(&h->large, p ? p : b, size, NULL);  /* cannot fail: there was room */
  pthread_mutex_unlock(&h->largelock);
  if (p != NULL) countmapped(h, (ptrdiff_t)size - (ptrdiff_t)osize);
  return p;
}

/* }====================================================== */


/*
** {======================================================
** The lua_Alloc
** =======================================================
*/

static void *blockalloc (ShoalHeap *h, size_t n) {
  return (n <= MAXSMALL) ? smallalloc(h, classof(n)) : largealloc(h, n);
}


static void blockfree (ShoalHeap *h, void *b, size_t n) {
  if (n <= MAXSMALL) smallfree(h, b, classof(n));
  else largefree(h, b);
}


/*
** A block of real size 'real' entered (+1) or left (-1) 'shrunk', under
** 'largelock'. Lua holds it as a small block. Counted in its slab, so
** that only frees and resizes of that slab's blocks may take the slow
** path; a mapping (a large block shrunk small) has no slab, and is
** counted in the heap. Either keeps NLISTED such blocks in a list that
** the fast paths search, so that only those blocks take the slow path;
** while one did not fit in the list, all of the slab's blocks do (for a
** mapping, the heap's small blocks that start a page, as mappings do).
*/
static void note (atomic_uint *n, atomic_uint *unlisted, _Atomic(void *) *at,
                  void *b, int delta) {
  void *from = (delta > 0) ? NULL : b, *to = (delta > 0) ? b : NULL;
  int i;
  for (i = 0; i < NLISTED; i++)
    if (atomic_load_explicit(&at[i], relaxed) == from) break;
  if (i < NLISTED) atomic_store_explicit(&at[i], to, relaxed);
  else atomic_fetch_add_explicit(unlisted, (unsigned)delta, relaxed);
  atomic_fetch_add_explicit(n, (unsigned)delta, relaxed);
}

static void noteshrunk (ShoalHeap *h, void *b, size_t real, int delta) {
  Slab *s;
  if (real > MAXSMALL)
    note(&h->nmaps, &h->nunlisted, h->shrunkmap, b, delta);
  else {
    s = slabof(b);
    note(&s->nshrunk, &s->nunlisted, s->shrunkat, b, delta);
  }
}

/* Is 'b' maybe one of the blocks of 'at' and 'unlisted'? */
static inline int listed (atomic_uint *unlisted, _Atomic(void *) *at,
                          void *b) {
  if (atomic_load_explicit(unlisted, relaxed) != 0) return 1;
  for (int i = 0; i < NLISTED; i++)
    if (atomic_load_explicit(&at[i], relaxed) == b) return 1;
  return 0;
}

/* Does the set 'n', 'unlisted', 'at' match the 'count' entries of 'shrunk'? */
static int exact (ShoalHeap *h, atomic_uint *n, atomic_uint *unlisted,
                  _Atomic(void *) *at, unsigned count) {
  unsigned inlist = 0;
  for (int i = 0; i < NLISTED; i++) {
    void *b = atomic_load_explicit(&at[i], relaxed);
    if (b == NULL) continue;
    if (mapget(&h->shrunk, b) == 0) return 0;  /* listed, not in 'shrunk' */
    inlist++;
  }
  return atomic_load_explicit(n, relaxed) == count &&
         atomic_load_explicit(unlisted, relaxed) + inlist == count;
}

/* For tests: bytes in the heap's dirty pages. */
size_t shoalA_dirty (ShoalHeap *h) {
  return atomic_load(&h->dirtybytes);
}


int shoalA_parked (ShoalHeap *h) {
  int n = 0;
  for (Slab *s = h->all; s != NULL; s = s->allnext)
    if (s->cls >= 0) n += __builtin_popcount(s->parked);
  return n;
}


/* 'longest' a page at a time: its reference */
static int slowlongest (const uint64_t *a, int on) {
  int run = 0, best = 0;
  for (int i = 0; i < SEGPAGES; i++) {
    run = ((int)isset(a, i) == on) ? run + 1 : 0;
    if (run > best) best = run;
  }
  return best;
}


/*
** For tests: 'rounds' random bitmaps, changed by random runs of pages,
** each checked against a page at a time: 'setpages', 'countpages',
** 'findrun' and 'longest'. The mismatches.
*/
int shoalA_bitmaps (int rounds, unsigned seed) {
  uint64_t a[SEGPAGES / 64], was[SEGPAGES / 64];
  int bad = 0;
  for (int r = 0; r < rounds; r++) {
    int i = rand_r(&seed) % SEGPAGES, n, on = rand_r(&seed) % 2, c = 0;
    int want = -1, run = 0;
    if (r % 64 == 0)  /* runs of all sizes, over words empty or full too */
      for (int w = 0; w < SEGPAGES / 64; w++)
        a[w] = (rand_r(&seed) % 3 == 0) ? 0 : ~(uint64_t)0;
    n = 1 + rand_r(&seed) % ((rand_r(&seed) % 4 == 0) ? SEGPAGES : 8);
    if (n > SEGPAGES - i) n = SEGPAGES - i;
    memcpy(was, a, sizeof(a));
    setpages(a, i, n, on);
    for (int k = 0; k < SEGPAGES; k++) {  /* 'setpages': the run, no more */
      int in = (k >= i && k < i + n);
      if ((int)isset(a, k) != (in ? on : (int)isset(was, k))) bad++;
    }
    i = rand_r(&seed) % SEGPAGES;
    n = 1 + rand_r(&seed) % (SEGPAGES - i);
    for (int k = i; k < i + n; k++) c += (int)isset(a, k);
    if (countpages(a, i, n) != c) bad++;
    n = 1 + rand_r(&seed) % ((rand_r(&seed) % 4 == 0) ? SEGPAGES : 80);
    for (int k = SEGPAGES - 1; k >= 0 && want < 0; k--) {
      run = ((int)isset(a, k) == on) ? run + 1 : 0;
      if (run == n) want = k;
    }
    if (findrun(a, on, n) != want) bad++;
    if (longest(a, on) != slowlongest(a, on)) bad++;
  }
  return bad;
}


/*
** For tests, while no other thread frees or shrinks: are the cache's
** entries in the order they were freed, does 'cachebytes' count them,
** do segments' longest runs and 'dirtybytes' match their pages, are a medium
** block's pages used, and does 'mapped' count exactly the segments, the
** mappings and the cache?
*/
int shoalA_largeexact (ShoalHeap *h) {
  size_t cached = 0, mapped = 0, dirty = 0;
  int ok = 1;
  pthread_mutex_lock(&h->largelock);
  for (int i = 0; i < h->ncached; i++) {
    cached += h->cache[i].size;
    if (i > 0 && h->cache[i].freedat < h->cache[i - 1].freedat) ok = 0;
  }
  for (Segment *sg = h->segs; sg != NULL; sg = sg->next) {
    for (int w = 0; w < SEGPAGES / 64; w++)
      if (sg->used[w] & sg->dirty[w]) ok = 0;  /* a page both */
    if (sg->maxfree != slowlongest(sg->used, 0) ||
        sg->maxdirty != slowlongest(sg->dirty, 1))
      ok = 0;
    for (int i = 0; i < SEGPAGES; i++)
      dirty += isset(sg->dirty, i) ? PAGE : 0;
    mapped += SEGSIZE;
  }
  for (size_t i = 0; i < h->large.cap; i++) {
    Mapping *m = &h->large.slot[i];
    if (m->base == NULL) continue;
    if (m->seg == NULL) mapped += m->size;
    else {
      for (int k = pageof(m->seg, m->base), n = (int)(m->size / PAGE); n > 0;
           k++, n--)
        if (!isset(m->seg->used, k)) ok = 0;  /* a medium block's page */
    }
  }
  pthread_mutex_unlock(&h->largelock);
  return ok && cached == atomic_load(&h->cachebytes) &&
         dirty == atomic_load(&h->dirtybytes) &&
         mapped + cached == atomic_load(&h->mapped);
}


/*
** For tests, while no other thread shrinks: do the counts and lists of
** every slab and of the heap match the entries of 'shrunk'?
*/
int shoalA_shrunkexact (ShoalHeap *h) {
  int ok = 1;
  unsigned maps = 0;
  pthread_mutex_lock(&h->largelock);
  for (size_t i = 0; i < h->shrunk.cap; i++)
    if (h->shrunk.slot[i].base != NULL && h->shrunk.slot[i].size > MAXSMALL)
      maps++;
  ok = exact(h, &h->nmaps, &h->nunlisted, h->shrunkmap, maps);
  for (Slab *s = h->all; s != NULL && ok; s = s->allnext) {
    unsigned count = 0;
    for (size_t i = 0; i < h->shrunk.cap; i++) {
      char *b = h->shrunk.slot[i].base;
      if (b != NULL && h->shrunk.slot[i].size <= MAXSMALL && slabof(b) == s)
        count++;
    }
    ok = exact(h, &s->nshrunk, &s->nunlisted, s->shrunkat, count);
  }
  pthread_mutex_unlock(&h->largelock);
  return ok;
}

/*
** May the block 'b', held as small by Lua, be in 'shrunk'? (Then the slow
** path sees to it.) Mappings first: they have no slab header to read. A
** mapping starts a page; few blocks of slabs do.
*/
static inline int mayshrunk (ShoalHeap *h, void *b) {
  Slab *s;
  if (l_unlikely(atomic_load_explicit(&h->nmaps, relaxed) != 0) &&
      ((uintptr_t)b & (PAGE - 1)) == 0 &&
      listed(&h->nunlisted, h->shrunkmap, b))
    return 1;
  s = slabof(b);
  return l_unlikely(atomic_load_explicit(&s->nshrunk, relaxed) != 0) &&
         listed(&s->nunlisted, s->shrunkat, b);
}

/*
** The size of block 'b', which Lua says is 'n' bytes: more if it was shrunk
** remotely (see 'shoal_shrinkremote'); with 'take', it leaves 'shrunk'.
** Only blocks Lua holds as small are ever in 'shrunk'.
*/
static size_t realsize (ShoalHeap *h, void *b, size_t n, int take) {
  size_t real;
  if (n > MAXSMALL || !mayshrunk(h, b)) return n;
  pthread_mutex_lock(&h->largelock);
  if (!take) real = mapget(&h->shrunk, b);
  else if ((real = maptake(&h->shrunk, b, NULL)) != 0)
    noteshrunk(h, b, real, -1);
  pthread_mutex_unlock(&h->largelock);
  return real ? real : n;
}


/*
** A shrink that found no block of its new size (memory is short): the
** block stays where it is and keeps its size, noted in 'shrunk' as a
** remote shrink leaves it, so that a shrink fails only when even the note
** finds no memory. 'bsize': its size (small or large; Lua's new one is
** small).
*/
static int keepshrunk (ShoalHeap *h, void *ptr, size_t bsize) {
  int ok = 1;
  pthread_mutex_lock(&h->largelock);
  if (mapget(&h->shrunk, ptr) == 0) {  /* not noted yet */
    ok = mapput(&h->shrunk, ptr, bsize, NULL);
    if (ok) noteshrunk(h, ptr, bsize, 1);
  }
  pthread_mutex_unlock(&h->largelock);
  return ok;
}


/* The general path: whatever the fast paths below do not take. */
static NOINLINE void *allocslow (ShoalHeap *h, void *ptr, size_t osize,
                                   size_t nsize) {
  void *b;
  size_t bsize;  /* the block's own size: more than 'osize' if shrunk remotely */
  if (ptr == NULL) osize = 0;  /* 'osize' is then a type tag */
  bsize = (ptr != NULL) ? realsize(h, ptr, osize, 0) : 0;
  if (nsize == 0) {
    if (ptr != NULL) {
      if (bsize != osize) realsize(h, ptr, osize, 1);  /* out of 'shrunk' */
      blockfree(h, ptr, bsize);
      countfree(h, osize);
    }
    return NULL;
  }
  if (h->limit != 0 && nsize > osize &&  /* shrinking never fails */
      nsize - osize > minus(h->limit, heapinuse(h)))
    return NULL;  /* Lua raises "not enough memory" */
  if (nsize > MAXBLOCK) return NULL;  /* more than mmap could give */
  if (ptr != NULL && bsize <= MAXSMALL && nsize <= MAXSMALL &&
      classof(bsize) == classof(nsize))  /* same block will do */
    b = ptr;
  else if (ptr != NULL && bsize > MAXSMALL && nsize > MAXSMALL) {
    if ((b = largeresize(h, ptr, nsize, MREMAP_MAYMOVE)) == NULL)
      return NULL;
  }
  else if ((b = blockalloc(h, nsize)) == NULL) {
    if (ptr == NULL || nsize > osize || !keepshrunk(h, ptr, bsize))
      return NULL;
    count(h, (ptrdiff_t)nsize - (ptrdiff_t)osize);
    return ptr;
  }
  else if (ptr != NULL) {
    memcpy(b, ptr, osize < nsize ? osize : nsize);
    blockfree(h, ptr, bsize);
  }
  if (bsize != osize) realsize(h, ptr, osize, 1);  /* out of 'shrunk' */
  count(h, (ptrdiff_t)nsize - (ptrdiff_t)osize);
  return b;
}


/*
** The fast paths (a new small block, a small block freed, a small block
** resized) stay small so that a call saves few registers; anything else
** goes to 'allocslow'. A new block: a MIXED slab's free one, else one from
** its class's current slab, unless blocks freed remotely wait there (NULL:
** the slow path). A free list's next block is fetched into the cache as
** its head is taken: freed by a sweep long before, it is cold, and Lua
** soon writes the next block of a class (tablechurn 3% faster,
** binarytrees 2%).
*/
static inline void *fastnew (ShoalHeap *h, int c) {
  Slab *s = h->current[c];
  void *b;
  if ((b = h->mixfree[c]) != NULL) {
    unpoison(b, blocksize(c));
    h->mixfree[c] = *(void **)b;
    __builtin_prefetch(h->mixfree[c], 1);
    return b;
  }
  if (s == NULL) return NULL;
  if ((b = s->free) != NULL) {
    unpoison(b, blocksize(c));
    s->free = *(void **)b;
    __builtin_prefetch(s->free, 1);
  }
  else if (s->bump + blocksize(c) <= s->end &&
           atomic_load_explicit(&s->remote, memory_order_relaxed) == NULL) {
    b = s->bump;
    s->bump += blocksize(c);
  }
  else return NULL;
  s->used++;
  return b;
}


/* A small block resized small (a table part growing, often). */
static NOINLINE void *smallresize (ShoalHeap *h, void *ptr, size_t osize,
                                     size_t nsize) {
  int oc = classof(osize), nc = classof(nsize);
  void *b;
  if (mayshrunk(h, ptr)) return allocslow(h, ptr, osize, nsize);
  else if (oc == nc) b = ptr;  /* same block will do */
  else if ((b = fastnew(h, nc)) != NULL) {
    memcpy(b, ptr, osize < nsize ? osize : nsize);
    smallfree(h, ptr, oc);
  }
  else return allocslow(h, ptr, osize, nsize);
  count(h, (ptrdiff_t)nsize - (ptrdiff_t)osize);
  return b;
}


LUA_API void *shoal_alloc (void *ud, void *ptr, size_t osize, size_t nsize) {
  ShoalHeap *h = ud;
  void *b;
  if (ptr == NULL) {
    if (nsize == 0) return NULL;  /* Lua frees NULL (empty parts) often */
    if (nsize <= MAXSMALL && h->limit == 0 &&
        (b = fastnew(h, classof(nsize))) != NULL) {
      count(h, (ptrdiff_t)nsize);
      return b;
    }
  }
  else if (nsize == 0) {
    if (osize <= MAXSMALL && !mayshrunk(h, ptr) &&
        fastfree(h, ptr, classof(osize))) {
      countfree(h, osize);
      return NULL;
    }
  }
  else if (osize <= MAXSMALL && nsize <= MAXSMALL && h->limit == 0)
    return smallresize(h, ptr, osize, nsize);
  return allocslow(h, ptr, osize, nsize);
}


void shoal_freeremote (ShoalHeap *h, void *ptr, size_t size) {
  size_t bsize;
  if (ptr == NULL) return;
  /* counted first: once pushed, the owner may take the block again */
  atomic_fetch_add_explicit(&h->remotebytes, size, relaxed);
  bsize = realsize(h, ptr, size, 1);
  if (bsize > MAXSMALL) largefree(h, ptr);
  else {
    Slab *s = slabof(ptr);
    void *head = atomic_load_explicit(&s->remote, memory_order_relaxed);
    if (s->cls == MIXED) ((uintptr_t *)ptr)[1] = classof(bsize);
    do {
      *(void **)ptr = head;
    } while (!atomic_compare_exchange_weak_explicit(&s->remote, &head, ptr,
                 memory_order_release, memory_order_relaxed));
    atomic_fetch_add_explicit(&h->remotes, 1, memory_order_relaxed);
  }
  atomic_fetch_sub_explicit(&allinuse, (long long)size, relaxed);
}


/*
** Shrink a block of 'h' from a thread that is not running its VM (Lua's
** realloc contract: a shrink never fails). The block stays where it is: a
** large one gives its tail pages back (shrunk small, it stays a mapping,
** noted in 'shrunk'); a small one that keeps its class needs nothing; a
** small one of another class keeps its size, noted in 'shrunk'. Until a
** block so noted is freed or resized the owner's frees and resizes of it
** take the slow path (with all the blocks of its slab, or all small
** blocks that start a page for a mapping, while more than NLISTED are
** noted there: see 'noteshrunk'). A growth is refused (NULL) and changes
** nothing; a shrink to 0 is a free.
*/
LUA_API void *shoal_shrinkremote (ShoalHeap *h, void *ptr, size_t osize,
                                  size_t nsize) {
  size_t bsize;
  int large;
  if (ptr == NULL || nsize > osize) return NULL;
  if (nsize == 0) {
    shoal_freeremote(h, ptr, osize);
    return NULL;
  }
  pthread_mutex_lock(&h->largelock);
  if ((bsize = maptake(&h->shrunk, ptr, NULL)) == 0) bsize = osize;
  else noteshrunk(h, ptr, bsize, -1);
  large = (bsize > MAXSMALL);  /* a mapping: its tail pages go back */
  if (!(large && nsize > MAXSMALL) &&
      !(!large && classof(bsize) == classof(nsize))) {
    if (!mapput(&h->shrunk, ptr, bsize, NULL)) {
      /* no memory to note it down (a block just taken out always finds
         its slot): keep Lua's view as it was */
      pthread_mutex_unlock(&h->largelock);
      return NULL;
    }
    noteshrunk(h, ptr, bsize, 1);
  }
  pthread_mutex_unlock(&h->largelock);
  if (large)  /* tail pages back, in place; a mapping still ('shrunk') */
    largeresize(h, ptr, nsize, 0);
  atomic_fetch_add_explicit(&h->remotebytes, osize - nsize, relaxed);
  atomic_fetch_sub_explicit(&allinuse, (long long)(osize - nsize), relaxed);
  return ptr;
}

/* }====================================================== */


/*
** Pages are PAGE bytes throughout (bitmaps, parked pages, mappings cut and
** given back a page at a time). Where the system's pages are larger,
** madvise and munmap would act on whole pages holding other blocks, so no
** heap is made there: shoal_heapnew fails (ENOTSUP) and luaL_newstate
** uses the C library's allocator.
*/
static atomic_long fakepage;  /* for tests: the system's page size, or 0 */

void shoalA_pagesize (long n) {
  atomic_store(&fakepage, n);
}

static int pagesfit (void) {
  long n = atomic_load_explicit(&fakepage, relaxed);
  return (n != 0 ? n : sysconf(_SC_PAGESIZE)) == (long)PAGE;
}


ShoalHeap *shoal_heapnew (void) {
  ShoalHeap *h;
  if (!pagesfit()) {
    errno = ENOTSUP;
    return NULL;
  }
  pthread_once(&classonce, makeclasses);
  if ((h = calloc(1, sizeof(ShoalHeap))) == NULL) return NULL;
  pthread_mutex_init(&h->largelock, NULL);
  h->runsdue = LONG_MAX;
  pthread_mutex_lock(&heapslock);
  if ((h->hnext = heaps) != NULL) heaps->hprev = h;
  heaps = h;
  pthread_mutex_unlock(&heapslock);
  return h;
}


void shoal_heapfree (ShoalHeap *h) {
  if (h == NULL) return;
  pthread_mutex_lock(&heapslock);
  if (h->hprev) h->hprev->hnext = h->hnext;
  else heaps = h->hnext;
  if (h->hnext) h->hnext->hprev = h->hprev;
  if (expiring == h) expiring = h->hnext;
  pthread_mutex_unlock(&heapslock);
  pthread_mutex_lock(&h->largelock);  /* a shoal_heapexpire(NULL) at it ends first */
  pthread_mutex_unlock(&h->largelock);
  while (h->segs != NULL) {  /* every slab at once */
    Segment *sg = h->segs;
    h->segs = sg->next;
    unpoison(sg->base, SEGSIZE);
    munmap(sg->base, SEGSIZE);
    free(sg);
  }
  for (size_t i = 0; i < h->large.cap; i++)  /* every mapping */
    if (h->large.slot[i].base != NULL && h->large.slot[i].seg == NULL)
      unmap(h, h->large.slot[i].base, h->large.slot[i].size);
  free(h->large.slot);
  free(h->shrunk.slot);
  expire(h, 0, 1);
  free(h->cache);
  /* what Lua did not free (a wholesale close) leaves the process's count */
  flush(h);
  atomic_fetch_sub_explicit(&allinuse, (long long)heapinuse(h), relaxed);
  atomic_fetch_sub_explicit(&allmapped, atomic_load(&h->mapped), relaxed);
  pthread_mutex_destroy(&h->largelock);
  free(h);
}


/*
** Slab 's' (cold: only its header page still there) back to its segment
** as free pages, that medium blocks or new slabs take, and with which
** the segment may go. Under 'largelock'; 's' is in no list.
*/
static void unslab (ShoalHeap *h, Slab *s) {
  char *p = (char *)slabbase(s);
  Segment *sg = h->segs;
  while (!(sg->base <= p && p < sg->base + SEGSIZE)) sg = sg->next;
  madvise(p, PAGE, MADV_DONTNEED);
  setpages(sg->used, pageof(sg, p), SLABPAGES, 0);
  sg->nslabs--;
  measure(sg);
  poison(p, SLABSIZE);
}


/*
** What 'h' no longer uses back to the OS now; with 'slabs', the free
** pages of partly used slabs too, and the cold slabs go back to their
** segments (those left empty are unmapped): a walk over every slab.
** Owner only: it walks 'all'.
*/
static void trim (ShoalHeap *h, int slabs) {
  Slab *gone = NULL;
  if (atomic_load_explicit(&h->remotes, relaxed) > 0)
    takeallremote(h);  /* slabs emptied by other threads' frees go too */
  if (slabs) {
    pthread_mutex_lock(&h->largelock);
    while (h->nwarm > KEEPEMPTY) purgeoldest(h);
    gone = h->cold;
    h->cold = NULL;
    h->ncold = 0;
    pthread_mutex_unlock(&h->largelock);
    for (Slab *s = gone; s != NULL; s = s->next) s->cls = GONE;
    for (Slab **p = &h->all; *p != NULL; ) {
      if ((*p)->cls == GONE) {
        *p = (*p)->allnext;
        continue;
      }
      if ((*p)->cls >= 0) trimslab(*p);
      p = &(*p)->allnext;
    }
  }
  pthread_mutex_lock(&h->largelock);
  while (gone != NULL) {
    Slab *s = gone;
    gone = s->next;
    unslab(h, s);
  }
  purge(h, 1);
  pthread_mutex_unlock(&h->largelock);
}


void shoal_heaptrim (ShoalHeap *h) {
  trim(h, 1);
}


void shoalA_purgedelay (int ms) {
  atomic_store(&purgedelay, ms);
}


/*
** What heap 'h' kept unused PURGEDELAY ms back to the OS, the KEEPEMPTY
** slabs too: they are for the next sweep of a VM at work, and these have
** waited through many. At most EXPIRESTEP slabs a call: the owner may need
** the lock meanwhile (a call gives 1 MB back; a VM that freed 64 MB goes
** back in 64 calls). Under 'largelock'.
*/
static void expireidle (ShoalHeap *h) {
  long now = nowms();
  purgedue(h, now, 0, EXPIRESTEP);
  expire(h, now, 0);
}


/*
** Any thread: heap 'h' (NULL: every heap not busy at that moment) gives
** back what it kept unused for PURGEDELAY ms. The heap's own thread does
** that only as it allocates and frees; a VM gone idle would keep it.
** Over every heap, the system calls are made without 'heapslock', so that
** heaps are made and released meanwhile: the heap at hand is held by its
** 'largelock' (shoal_heapfree waits for it), and 'expiring' tells where
** to go on (shoal_heapfree moves it past the heap it takes out).
*/
void shoal_heapexpire (ShoalHeap *h) {
  static pthread_mutex_t one = PTHREAD_MUTEX_INITIALIZER;  /* for 'expiring' */
  if (h != NULL) {
    pthread_mutex_lock(&h->largelock);
    expireidle(h);
    pthread_mutex_unlock(&h->largelock);
    return;
  }
  if (pthread_mutex_trylock(&one) != 0) return;  /* another thread is at it */
  pthread_mutex_lock(&heapslock);
  for (h = heaps; h != NULL; ) {
    if (pthread_mutex_trylock(&h->largelock) != 0) {  /* its owner's at work */
      h = h->hnext;
      continue;
    }
    expiring = h;
    pthread_mutex_unlock(&heapslock);
    expireidle(h);
    pthread_mutex_lock(&heapslock);
    pthread_mutex_unlock(&h->largelock);
    h = (expiring == h) ? h->hnext : expiring;  /* 'h' gone: its successor */
  }
  expiring = NULL;
  pthread_mutex_unlock(&heapslock);
  pthread_mutex_unlock(&one);
}


void shoal_heaplimit (ShoalHeap *h, size_t limit) {
  h->limit = limit;
}


void shoal_heapstats (ShoalHeap *h, shoal_MemStats *st) {
  if (h == NULL) {  /* the process: the sum over its heaps */
    size_t all = 0;
    pthread_mutex_lock(&heapslock);
    for (ShoalHeap *e = heaps; e != NULL; e = e->hnext)
      all += heapinuse(e);
    pthread_mutex_unlock(&heapslock);
    raisemax(&allpeak, all);
    st->inuse = all;
    st->mapped = atomic_load(&allmapped);
    st->peak = atomic_load(&allpeak);
    st->limit = 0;
  }
  else {
    st->peak = heappeak(h);
    st->inuse = heapinuse(h);
    st->mapped = atomic_load(&h->mapped);
    st->limit = h->limit;
  }
}


/*
** {======================================================
** States on heaps of their own
** =======================================================
*/

/* luaL_newstate's allocator: SHOAL_ALLOC (read once), then
   shoal_defaultalloc */
static atomic_int usealloc;
static pthread_once_t envonce = PTHREAD_ONCE_INIT;

static void readenv (void) {
  const char *e = getenv("SHOAL_ALLOC");
  int on = 1;
  if (e != NULL && strcmp(e, "system") == 0) on = 0;
  else if (e != NULL && *e != '\0' && strcmp(e, "shoal") != 0)
    fprintf(stderr, "shoal: SHOAL_ALLOC must be shoal or system "
                    "(not '%s'); using shoal\n", e);
  if (on && !pagesfit())
    fprintf(stderr, "shoal: the allocator needs pages of %zu bytes (this "
                    "system's are %ld); using the C library's\n",
                    PAGE, sysconf(_SC_PAGESIZE));
  atomic_store(&usealloc, on);
}


LUA_API void shoal_defaultalloc (int on) {
  pthread_once(&envonce, readenv);
  atomic_store(&usealloc, on);
}


static lua_State *newstate (lua_Alloc fallback, size_t limit) {
  ShoalHeap *h;
  lua_State *L;
  if (fallback != NULL) {  /* luaL_newstate */
    pthread_once(&envonce, readenv);
    if (!atomic_load(&usealloc) || !pagesfit())
      return lua_newstate(fallback, NULL);
  }
  if ((h = shoal_heapnew()) == NULL) return NULL;
  h->limit = limit;
  if ((L = lua_newstate(shoal_alloc, h)) == NULL) {
    shoal_heapfree(h);  /* empty: the failed state freed its blocks */
    return NULL;
  }
  G(L)->ownheap = h;  /* only now: a state failing half made must free its
                         blocks one by one, and not its heap */
  return L;
}


lua_State *shoalA_newstate (lua_Alloc fallback) {
  return newstate(fallback, 0);
}


/*
** Closing L may skip freeing its objects one by one only while shoal_alloc
** on its own heap is still its allocator: a host that wrapped it (with
** lua_setallocf) sees every block freed, as on stock Lua, and the heap
** goes after the last one all the same.
*/
int shoalA_wholesale (lua_State *L) {
  void *ud;
  return G(L)->ownheap != NULL && lua_getallocf(L, &ud) == shoal_alloc &&
         ud == G(L)->ownheap;
}


void shoalA_closed (void *ownheap) {
  if (ownheap != NULL) shoal_heapfree(ownheap);
}


/*
** A full collection's trim leaves the slabs alone (see 'trim'): walking
** them all would make its cost grow with the heap, frozen data included
** (frozen-gen's full collection took 1.2 of the floor instead of 1.05),
** and a program collecting in a loop would fault the pages in again each
** time (300 collections of a 10 MB heap: 15% slower).
*/
void shoalA_trim (lua_State *L) {
  ShoalHeap *h = shoal_heap(L);
  if (h != NULL) trim(h, 0);
}


LUA_API lua_State *shoal_newstate (size_t limit) {
  return newstate(NULL, limit);
}


LUA_API ShoalHeap *shoal_heap (lua_State *L) {
  void *ud;
  return (lua_getallocf(L, &ud) == shoal_alloc) ? ud : NULL;
}


LUA_API void shoal_setlimit (lua_State *L, size_t limit) {
  ShoalHeap *h = shoal_heap(L);
  if (h != NULL) h->limit = limit;
}

/* }====================================================== */


/* a size as a Lua integer (a limit set from C may be beyond them) */
static void pushsize (lua_State *L, size_t n) {
  lua_pushinteger(L, n > (size_t)LUA_MAXINTEGER ? LUA_MAXINTEGER
                                                : (lua_Integer)n);
}


/*
** require("shoal").memory([scope]): the VM's heap ("vm", the default) or
** the process's ("process"): {inuse, mapped, peak, limit} in bytes; nil
** for a VM not on a Shoal heap (SHOAL_ALLOC=system).
*/
static int shoal_memory (lua_State *L) {
  static const char *const scopes[] = {"vm", "process", NULL};
  shoal_MemStats st;
  ShoalHeap *h = NULL;
  if (luaL_checkoption(L, 1, "vm", scopes) == 0) {
    if ((h = shoal_heap(L)) == NULL) {
      luaL_pushfail(L);
      return 1;
    }
  }
  shoal_heapstats(h, &st);
  lua_createtable(L, 0, 4);
  pushsize(L, st.inuse);
  lua_setfield(L, -2, "inuse");
  pushsize(L, st.mapped);
  lua_setfield(L, -2, "mapped");
  pushsize(L, st.peak);
  lua_setfield(L, -2, "peak");
  pushsize(L, st.limit);
  lua_setfield(L, -2, "limit");
  return 1;
}


static int shoal_limit (lua_State *L) {
  ShoalHeap *h = shoal_heap(L);
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 0, 1, "limit must not be negative");
  if (h == NULL) return luaL_error(L, "this VM is not on a Shoal heap (SHOAL_ALLOC=system)");
  pushsize(L, h->limit);
  h->limit = (size_t)n;
  return 1;
}


int shoalA_openlib (lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"memory", shoal_memory},
    {"setlimit", shoal_limit},
    {NULL, NULL}
  };
  luaL_newlib(L, funcs);
  return 1;
}
