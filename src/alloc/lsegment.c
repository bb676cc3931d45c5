/*
** lsegment.c
** Segments: 1 MB mappings of a heap that slabs are carved from, bottom up,
** and medium blocks take runs of pages from, top down but for blocks that
** grow (see 'Segment'). A bitmap of used pages and one of dirty pages
** (free, but still holding a freed medium block's memory) per segment,
** read a word at a time; and the process's spare segments, which heaps
** that went left to the next ones.
*/

#define LUA_CORE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "lheap.h"
#include "lalloc.h"


/*
** {======================================================
** Mappings
** =======================================================
*/

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

/* }====================================================== */


/*
** {======================================================
** Segments' pages
** =======================================================
*/

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
void shoalM_setpages (uint64_t *a, int i, int n, int on) {
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
int shoalM_freepages (const Segment *sg, int i, int n) {
  return i + n <= SEGPAGES && countpages(sg->used, i, n) == 0;
}


/*
** The first of the highest 'n' pages in a row whose bits in 'a' are 'on'
** (1 or 0); -1: none. A word at a time, from the top: a run may end in a
** word's top bits, or lie inside it, where 'y' keeps the bits that start
** one ('y &= y >> t' makes a run of s bits one of s + t, t <= s).
*/
int shoalM_findrun (const uint64_t *a, int on, int n) {
  int run = 0;  /* pages 'on' in a row from the bottom of the word above */
  for (int w = SEGPAGES / 64 - 1; w >= 0; w--) {
    uint64_t x = on ? a[w] : ~a[w];  /* 1: a page that counts */
    int top = (~x == 0) ? 64 : __builtin_clzll(~x);  /* 1s from bit 63 */
    if (run + top >= n) return w * 64 + 64 - (n - run);
    if (n < 64) {  /* 'x' has a 0 bit (else 'top' was 64) */
      uint64_t y = x;
      for (int s = 1, t; s < n; s += t) {
        t = (n - s < s) ? n - s : s;
        y &= y >> t;
      }
      if (y != 0) return w * 64 + 63 - __builtin_clzll(y);
    }
    run = (~x == 0) ? run + 64 : __builtin_ctzll(~x);
  }
  return -1;
}


/*
** The longest run of pages whose bits in 'a' are 'on'. In a word, the run
** going on ends at its lowest 0 bit and the next starts above its highest;
** the runs between, taken one by one with 'ctz', only when the bits
** between those two 0 bits could hold a run longer than the best.
*/
static int longest (const uint64_t *a, int on) {
  int run = 0, best = 0;
  for (int w = 0; w < SEGPAGES / 64; w++) {
    uint64_t x = on ? a[w] : ~a[w];  /* 1: a page that counts */
    if (x == ~(uint64_t)0) run += 64;
    else {
      int low = __builtin_ctzll(~x), high = __builtin_clzll(~x);
      run += low;
      if (run > best) best = run;
      if (64 - low - high - 2 > best) {  /* a run between may be longer */
        /* without its lowest and highest runs: bit 63 is 0 */
        uint64_t y = (x >> low << low) & (~(uint64_t)0 >> high);
        while (y != 0) {
          int len;
          y >>= __builtin_ctzll(y);
          len = __builtin_ctzll(~y);
          if (len > best) best = len;
          y >>= len;
        }
      }
      run = high;
    }
    if (run > best) best = run;
  }
  return best;
}


/* 'maxfree' and 'maxdirty' again, after pages of 'sg' changed. */
void shoalM_measure (Segment *sg) {
  sg->maxfree = longest(sg->used, 0);
  sg->maxdirty = longest(sg->dirty, 1);
}


/* The length of the run that pages i .. i+n-1 make, taken as 'on', with
   the pages in a row before and after them whose bits in 'a' are 'on'. */
static int runwith (const uint64_t *a, int on, int i, int n) {
  int lo = i, hi = i + n;
  while (lo > 0) {  /* down from page lo-1, a word at a time */
    int top = (lo - 1) % 64;  /* its bit */
    uint64_t x = (on ? a[(lo - 1) / 64] : ~a[(lo - 1) / 64]) << (63 - top);
    /* pages 'on' from lo-1 down: at most top+1 (0s were shifted in) */
    int k = (~x == 0) ? 64 : __builtin_clzll(~x);
    lo -= k;
    if (k <= top) break;
  }
  while (hi < SEGPAGES) {  /* up from page hi */
    int room = 64 - hi % 64;
    uint64_t x = (on ? a[hi / 64] : ~a[hi / 64]) >> (hi % 64);
    int k = (~x == 0) ? 64 : __builtin_ctzll(~x);  /* at most 'room' */
    hi += k;
    if (k < room) break;
  }
  return hi - lo;
}


/*
** Pages i .. i+n-1 of 'sg' taken; the bytes of them that were not dirty
** (fresh: each will fault when touched). A longest run is measured again
** only when the run the pages came from could have been it: 'longest' on
** both bitmaps, at each growth in place, was 8% of a program building
** 64 KB strings.
*/
size_t shoalM_takepages (ShoalHeap *h, Segment *sg, int i, int n) {
  int dirty = countpages(sg->dirty, i, n);
  int run = runwith(sg->used, 0, i, n);  /* their run of free pages */
  /* every run of dirty pages among them lies in this span */
  int span = (dirty > 0) ? runwith(sg->dirty, 1, i, n) : 0;
  shoalM_setpages(sg->used, i, n, 1);
  shoalM_setpages(sg->dirty, i, n, 0);
  if (run >= sg->maxfree) sg->maxfree = longest(sg->used, 0);
  if (dirty > 0 && span >= sg->maxdirty) sg->maxdirty = longest(sg->dirty, 1);
  atomic_fetch_sub_explicit(&h->dirtybytes, (size_t)dirty * PAGE, relaxed);
  return (size_t)(n - dirty) * PAGE;
}


/*
** Pages i .. i+n-1 of 'sg' freed by a medium block: dirty, each with the
** time it went dirty, so that it goes back to the OS only once it has
** waited PURGEDELAY ms: a segment's clock would give back with its oldest
** page those freed just before, which the next blocks fault in again.
*/
void shoalM_droppages (ShoalHeap *h, Segment *sg, int i, int n) {
  long now;
  if (n == 0) return;
  now = nowms();
  for (int k = i; k < i + n; k++) sg->dirtyat[k] = (uint32_t)now;
  if (sg->maxdirty == 0) sg->due = now + PURGEDELAY;
  shoalM_setpages(sg->used, i, n, 0);
  shoalM_setpages(sg->dirty, i, n, 1);
  {  /* only the runs they joined grew */
    int run = runwith(sg->used, 0, i, n), span = runwith(sg->dirty, 1, i, n);
    if (run > sg->maxfree) sg->maxfree = run;
    if (span > sg->maxdirty) sg->maxdirty = span;
  }
  atomic_fetch_add_explicit(&h->dirtybytes, (size_t)n * PAGE, relaxed);
  if (sg->due < h->runsdue) h->runsdue = sg->due;
  poison(sg->base + (size_t)i * PAGE, (size_t)n * PAGE);
}


/*
** Runs of dirty pages of 'sg' back to the OS, lowest first (the highest
** are the next taken), until 'want' bytes went (the last run's lowest
** pages only: the rest of it stays dirty); the bytes that went.
** With 'due', only the pages that waited PURGEDELAY ms by 'now', and
** '*due' (LONG_MAX on entry) is when the next of the others will have.
*/
static size_t purgeruns (ShoalHeap *h, Segment *sg, size_t want, long now,
                         long *due) {
  size_t gone = 0;
  for (int i = 0; i < SEGPAGES && gone < want; ) {
    int n = 0;
    while (i + n < SEGPAGES && isset(sg->dirty, i + n) &&
           (due == NULL || dirtyage(sg, i + n, now) >= PURGEDELAY))
      n++;
    if ((size_t)n * PAGE > want - gone)
      n = (int)((want - gone + PAGE - 1) / PAGE);
    if (n > 0) {
      madvise(sg->base + (size_t)i * PAGE, (size_t)n * PAGE, MADV_DONTNEED);
      shoalM_setpages(sg->dirty, i, n, 0);
      gone += (size_t)n * PAGE;
      i += n;
    }
    else if (!isset(sg->dirty, i))  /* a clean page, or a word of them */
      i = (sg->dirty[i / 64] >> (i % 64) == 0) ? (i / 64 + 1) * 64 : i + 1;
    else {  /* dirty, and young (only with 'due') */
      long at = now - dirtyage(sg, i, now);
      if (at + PURGEDELAY < *due) *due = at + PURGEDELAY;
      i++;
    }
  }
  if (gone > 0) sg->maxdirty = longest(sg->dirty, 1);  /* no page freed */
  atomic_fetch_sub_explicit(&h->dirtybytes, gone, relaxed);
  return gone;
}


size_t shoalM_purgeseg (ShoalHeap *h, Segment *sg, size_t want) {
  return purgeruns(h, sg, want, 0, NULL);
}


/*
** Spare segments, the process's. A heap that goes leaves its segments
** here, their pages still resident, and a heap's new segment comes from
** here first: a VM made after another closed takes the pages that one
** left rather than faulting fresh ones in (a small VM made and closed in
** a loop faulted in 97 pages each time, and took 1.5 ms against stock's
** 0.5). The pages the heap used or kept dirty come back dirty, stamped
** when it went, so that those the next heap does not take go back to the
** OS as any dirty page does. At most NSPARE wait, each PURGEDELAY ms at
** most: older ones are unmapped at the next hand-over or take, or by
** shoal_heapexpire(NULL). A spare segment counts in the process's
** 'mapped', in no heap's. Lock order: a heap's 'largelock', then
** 'sparelock'.
*/
#define NSPARE		16

static pthread_mutex_t sparelock = PTHREAD_MUTEX_INITIALIZER;
static Segment *spares;  /* newest first; 'due' is when each may go */
static atomic_int nspares;  /* written under 'sparelock' */


static void unmapspares (Segment *sg) {  /* a list taken out of 'spares' */
  while (sg != NULL) {
    Segment *next = sg->next;
    shoalA_unmap(NULL, sg->base, SEGSIZE);
    free(sg);
    sg = next;
  }
}


/* Out of 'spares' (under 'sparelock'): those due by 'now' (all: every
   one), and the oldest beyond 'most'. */
static Segment *sparesdue (long now, int all, int most) {
  Segment **p = &spares, *gone = NULL;
  for (int n = 0; *p != NULL; n++) {
    Segment *sg = *p;
    if (all || n >= most || now >= sg->due) {
      *p = sg->next;
      sg->next = gone;
      gone = sg;
      nspares--;
    }
    else p = &sg->next;
  }
  return gone;
}


/* The newest spare segment, or NULL. */
static Segment *takespare (void) {
  Segment *sg, *gone;
  if (atomic_load_explicit(&nspares, relaxed) == 0) return NULL;
  pthread_mutex_lock(&sparelock);
  gone = sparesdue(nowms(), 0, NSPARE);
  if ((sg = spares) != NULL) {
    spares = sg->next;
    nspares--;
  }
  pthread_mutex_unlock(&sparelock);
  unmapspares(gone);
  return sg;
}


/*
** Segment 'sg' of a heap that goes, to the spares: its resident pages
** become dirty, stamped now, the others clean (the next heap counts them
** fresh, as they will fault). A page used is not always resident: a slab's
** pages given back (cold, parked, a mixed slab's runs) or never touched
** are not, and were the next heap to count them dirty, it would put
** blocks there without making room for them and give them back again
** (mincore, one call: else, every page used or dirty). One with none
** resident is unmapped.
*/
void shoalM_leaveseg (Segment *sg) {
  unsigned char in[SEGPAGES];
  long now = nowms();
  Segment *gone;
  int n = 0, known = (mincore(sg->base, SEGSIZE, in) == 0);
  sg->next = NULL;
  shoalA_countmapped(NULL, SEGSIZE);  /* the heap's count goes with it */
  for (int w = 0; w < SEGPAGES / 64; w++) {
    uint64_t resident = 0;
    for (int i = 0; i < 64; i++)
      resident |= (uint64_t)(!known || (in[w * 64 + i] & 1)) << i;
    sg->dirty[w] = (sg->dirty[w] | sg->used[w]) & resident;
    sg->used[w] = 0;
    n += __builtin_popcountll(sg->dirty[w]);
  }
  if (n == 0) {
    unmapspares(sg);
    return;
  }
  for (int i = 0; i < SEGPAGES; i++) sg->dirtyat[i] = (uint32_t)now;
  sg->maxfree = SEGPAGES;
  sg->maxdirty = longest(sg->dirty, 1);
  sg->nslabs = 0;
  sg->due = now + PURGEDELAY;
  poison(sg->base, SEGSIZE);
  pthread_mutex_lock(&sparelock);
  sg->next = spares;
  spares = sg;
  nspares++;
  gone = sparesdue(now, 0, NSPARE);
  pthread_mutex_unlock(&sparelock);
  unmapspares(gone);
}


/* Spare segments due by now (all: every one) unmapped; how many. */
int shoalM_dropspares (int all) {
  Segment *gone;
  int n = 0;
  if (atomic_load_explicit(&nspares, relaxed) == 0) return 0;
  pthread_mutex_lock(&sparelock);
  gone = sparesdue(nowms(), all, NSPARE);
  pthread_mutex_unlock(&sparelock);
  for (Segment *sg = gone; sg != NULL; sg = sg->next) n++;
  unmapspares(gone);
  return n;
}


/* For tests: spare segments waiting (drop: unmapped first, all of them). */
int shoalA_spares (int drop) {
  if (drop) shoalM_dropspares(1);
  return atomic_load(&nspares);
}


#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE	23	/* Linux 5.14 */
#endif

static atomic_int nopopulate;  /* the kernel lacks MADV_POPULATE_WRITE */

/*
** Pages [lo, hi) (page-aligned) faulted in by one system call, for blocks
** about to be written: here a page fault costs 11 us, a page of such a
** call 7 at two pages a call, 5.5 at sixteen. Only a hint: a page left
** out faults in when written. 'errno' stays as it was: the block is
** there whatever the call did.
*/
void shoalM_populate (char *lo, char *hi) {
  int en = errno;
  if (lo < hi && !atomic_load_explicit(&nopopulate, relaxed) &&
      madvise(lo, (size_t)(hi - lo), MADV_POPULATE_WRITE) != 0 &&
      errno == EINVAL)  /* an advice it does not know */
    atomic_store_explicit(&nopopulate, 1, relaxed);
  errno = en;
}


void shoalA_nopopulate (int on) {
  atomic_store_explicit(&nopopulate, on, relaxed);
}


static atomic_int failheads;  /* for tests: headers to fail at a first try */

void shoalA_failheads (int n) {
  atomic_store(&failheads, n);
}


/*
** A new segment, all its pages free (under 'largelock'): a spare one if
** there is one, its resident pages dirty. The heap holds those beside
** what it may hold, until they are due (see 'mayhold').
*/
Segment *shoalM_newsegment (ShoalHeap *h) {
  Segment *sg = takespare();
  char *p;
  if (sg != NULL) {  /* its pages all went dirty at once: page 0's time */
    size_t n = (size_t)countpages(sg->dirty, 0, SEGPAGES) * PAGE;
    long now = nowms();
    sg->due = now - dirtyage(sg, 0, now) + PURGEDELAY;
    sg->next = h->segs;
    h->segs = sg;
    atomic_fetch_add_explicit(&h->dirtybytes, n, relaxed);
    if (sg->due < h->runsdue) h->runsdue = sg->due;
    if (now >= atomic_load_explicit(&h->spareuntil, relaxed))
      atomic_store_explicit(&h->sparebytes, 0, relaxed);  /* those went */
    atomic_fetch_add_explicit(&h->sparebytes, n, relaxed);
    if (sg->due > atomic_load_explicit(&h->spareuntil, relaxed))
      atomic_store_explicit(&h->spareuntil, sg->due, relaxed);
    shoalA_countmapped(NULL, -(ptrdiff_t)SEGSIZE);  /* the process's alone */
    shoalA_countmapped(h, SEGSIZE);  /* to the heap's, and the process's */
    return sg;
  }
  sg = injected(&failheads) ? NULL : calloc(1, sizeof(Segment));
  if (sg == NULL && shoalL_uncacheall(h) > 0)  /* see 'shoalL_mapreserve' */
    sg = calloc(1, sizeof(Segment));
  p = (sg != NULL && !shoalL_mapfails()) ? mapaligned(SEGSIZE) : NULL;
  if (p == NULL && sg != NULL && shoalL_uncacheall(h) > 0)  /* see 'mapfresh' */
    p = mapaligned(SEGSIZE);
  if (p == NULL) {
    free(sg);
    return NULL;
  }
  unpoison(p, SEGSIZE);  /* a region unmapped once may come back poisoned */
  sg->base = p;
  sg->maxfree = SEGPAGES;
  sg->next = h->segs;
  h->segs = sg;
  shoalA_countmapped(h, SEGSIZE);
  return sg;
}


/* 'sg' unmapped if no page of it is used nor dirty. */
int shoalM_dropseg (ShoalHeap *h, Segment **p) {
  Segment *sg = *p;
  if (sg->maxfree < SEGPAGES || sg->maxdirty > 0) return 0;
  *p = sg->next;
  shoalA_unmap(h, sg->base, SEGSIZE);
  free(sg);
  return 1;
}


/*
** Dirty pages that waited PURGEDELAY ms by 'now' back to the OS (all:
** every one), and segments with no page used nor dirty unmapped. Under
** 'largelock'.
*/
void shoalM_expireruns (ShoalHeap *h, long now, int all) {
  long due = LONG_MAX;
  Segment **p = &h->segs, *sg;
  if (!all && now < h->runsdue) return;
  while ((sg = *p) != NULL) {
    if (sg->maxdirty > 0 && all) shoalM_purgeseg(h, sg, SIZE_MAX);
    else if (sg->maxdirty > 0 && now >= sg->due) {
      sg->due = LONG_MAX;
      purgeruns(h, sg, SIZE_MAX, now, &sg->due);
    }
    if (sg->maxdirty > 0 && sg->due < due) due = sg->due;
    if (!shoalM_dropseg(h, p)) p = &sg->next;
  }
  h->runsdue = due;
}


/* The lowest SLABPAGES free pages of 'sg' a slab may take (aligned), or -1. */
int shoalM_slabroom (const Segment *sg) {
  if (sg->maxfree < SLABPAGES) return -1;
  for (int i = 0; i < SEGPAGES; i += SLABPAGES)
    if (shoalM_freepages(sg, i, SLABPAGES)) return i;
  return -1;
}

/* For tests: bytes in the heap's dirty pages. */
size_t shoalA_dirty (ShoalHeap *h) {
  return atomic_load(&h->dirtybytes);
}


/* 'longest' a page at a time: its reference */
int shoalM_slowlongest (const uint64_t *a, int on) {
  int run = 0, best = 0;
  for (int i = 0; i < SEGPAGES; i++) {
    run = ((int)isset(a, i) == on) ? run + 1 : 0;
    if (run > best) best = run;
  }
  return best;
}


/* 'shoalM_findrun' a page at a time: its reference */
static int slowfindrun (const uint64_t *a, int on, int n) {
  int run = 0;
  for (int i = SEGPAGES - 1; i >= 0; i--) {
    run = ((int)isset(a, i) == on) ? run + 1 : 0;
    if (run == n) return i;
  }
  return -1;
}


/*
** For tests: 'rounds' random bitmaps, changed by random runs of pages,
** each checked against a page at a time: 'shoalM_setpages', 'countpages',
** 'shoalM_findrun', 'longest' and 'runwith'. The mismatches.
*/
int shoalA_bitmaps (int rounds, unsigned seed) {
  uint64_t a[SEGPAGES / 64], was[SEGPAGES / 64];
  int bad = 0;
  for (int r = 0; r < rounds; r++) {
    int i = rand_r(&seed) % SEGPAGES, n, on = rand_r(&seed) % 2, c = 0, want;
    if (r % 64 == 0)  /* runs of all sizes, over words empty or full too */
      for (int w = 0; w < SEGPAGES / 64; w++)
        a[w] = (rand_r(&seed) % 3 == 0) ? 0 : ~(uint64_t)0;
    n = 1 + rand_r(&seed) % ((rand_r(&seed) % 4 == 0) ? SEGPAGES : 8);
    if (n > SEGPAGES - i) n = SEGPAGES - i;
    memcpy(was, a, sizeof(a));
    shoalM_setpages(a, i, n, on);
    for (int k = 0; k < SEGPAGES; k++) {  /* the run set, no more */
      int in = (k >= i && k < i + n);
      if ((int)isset(a, k) != (in ? on : (int)isset(was, k))) bad++;
    }
    i = rand_r(&seed) % SEGPAGES;
    n = 1 + rand_r(&seed) % (SEGPAGES - i);
    for (int k = i; k < i + n; k++) c += (int)isset(a, k);
    if (countpages(a, i, n) != c) bad++;
    n = 1 + rand_r(&seed) % ((rand_r(&seed) % 4 == 0) ? SEGPAGES : 80);
    if (shoalM_findrun(a, on, n) != slowfindrun(a, on, n)) bad++;
    if (longest(a, on) != shoalM_slowlongest(a, on)) bad++;
    i = rand_r(&seed) % SEGPAGES;  /* 'runwith', against a page at a time */
    n = 1 + rand_r(&seed) % (SEGPAGES - i);
    want = n;
    for (int k = i - 1; k >= 0 && (int)isset(a, k) == on; k--) want++;
    for (int k = i + n; k < SEGPAGES && (int)isset(a, k) == on; k++) want++;
    if (runwith(a, on, i, n) != want) bad++;
  }
  /* two runs, the second of about the first's length, inside a word or
     across words: 'longest' must not skip a word's inner run that beats
     the best so far by a page, and 'shoalM_findrun' must find the higher
     run that holds 'n' pages, at its right page, for every 'n' near them */
  for (int i = 0; i < SEGPAGES; i += 5) {
    for (int n = 1; n <= 64 && i + n < SEGPAGES; n++) {
      for (int m = n - 2; m <= n + 2; m++) {
        int j = i + n + 1 + (i + n) % 7;
        if (m < 1 || j + m > SEGPAGES) continue;
        memset(a, 0, sizeof(a));
        shoalM_setpages(a, i, n, 1);
        shoalM_setpages(a, j, m, 1);
        for (int on = 0; on <= 1; on++) {
          if (longest(a, on) != shoalM_slowlongest(a, on)) bad++;
          for (int k = m - 2; k <= m + 2; k++)
            if (k > 0 && shoalM_findrun(a, on, k) != slowfindrun(a, on, k))
              bad++;
        }
      }
    }
  }
  return bad;
}

/* }====================================================== */
