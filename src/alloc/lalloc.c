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
** Slabs and medium blocks (over MAXSMALL, at most MAXMEDIUM, or MAXGROWN
** grown in place) share the heap's 1 MB segments (see 'Segment',
** lsegment.c); larger blocks are mapped straight from the OS (llarge.c). What these files share is in
** lheap.h; states on heaps of their own are lheaplib.c's.
*/

#define LUA_CORE
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lua.h"

#include "lheap.h"
#include "lalloc.h"


LUAI_DDEF atomic_int shoalA_keepms = 500;


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

/* the process: 'allinuse' may lag each heap's by FLUSH bytes, so it is
   signed, read clamped at 0; the exact count is the sum over 'heaps' */
static atomic_llong allinuse;
static atomic_size_t allmapped, allpeak;
static ShoalHeap *heaps;  /* every heap, for the process's statistics */
static pthread_mutex_t heapslock = PTHREAD_MUTEX_INITIALIZER;
static ShoalHeap *expiring;  /* where shoal_heapexpire(NULL) is in 'heaps' */


#define FLUSH		((ptrdiff_t)64 * 1024)


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


/*
** The process's count catches up with the heap's (every FLUSH bytes).
** Returns 'b', so that the fast paths end in a jump here, not a call
** (no call: 'shoal_alloc' saves no register).
*/
static NOINLINE void *flush (ShoalHeap *h, void *b) {
  long long all = atomic_fetch_add_explicit(&allinuse, h->unflushed, relaxed) +
                  h->unflushed;
  heappeak(h);
  if (all > 0) raisemax(&allpeak, (size_t)all);
  h->unflushed = 0;
  return b;
}


/*
** The owner's accounting: no atomic read-modify-write on the fast path.
** The heap's highest 'inuse' is kept exactly; the process's count and
** peak catch up every FLUSH bytes of change (see 'shoal_heapstats').
** 'freed' and 'counted' return 1 when that is due ('flush').
*/
static inline int freed (ShoalHeap *h, size_t n) {
  atomic_store_explicit(&h->inuse,
      atomic_load_explicit(&h->inuse, relaxed) - n, relaxed);
  h->unflushed -= (ptrdiff_t)n;
  return l_unlikely(h->unflushed < -FLUSH);
}


static inline int counted (ShoalHeap *h, ptrdiff_t delta) {
  size_t n = atomic_load_explicit(&h->inuse, relaxed) + (size_t)delta;
  atomic_store_explicit(&h->inuse, n, relaxed);
  if (n > atomic_load_explicit(&h->hi, relaxed))
    atomic_store_explicit(&h->hi, n, relaxed);
  h->unflushed += delta;
  return l_unlikely(h->unflushed > FLUSH || h->unflushed < -FLUSH);
}


static inline void countfree (ShoalHeap *h, size_t n) {
  if (freed(h, n)) flush(h, NULL);
}


static inline void count (ShoalHeap *h, ptrdiff_t delta) {
  if (counted(h, delta)) flush(h, NULL);
}


/* 'h' NULL: the process's alone (its spare segments and mappings) */
void shoalA_countmapped (ShoalHeap *h, ptrdiff_t delta) {
  if (h != NULL)
    atomic_fetch_add_explicit(&h->mapped, (size_t)delta, relaxed);
  atomic_fetch_add_explicit(&allmapped, (size_t)delta, relaxed);
}


void shoalA_unmap (ShoalHeap *h, char *p, size_t size) {
  unpoison(p, size);  /* the range may be mapped again, by anyone */
  munmap(p, size);
  shoalA_countmapped(h, -(ptrdiff_t)size);
}


/*
** {======================================================
** Slabs
** =======================================================
*/


static atomic_int failslabs;  /* for tests: new slabs to fail */

void shoalA_failslabs (int n) {
  atomic_store(&failslabs, n);
}


/*
** A fresh slab: the lowest room for one in a segment with slabs, else in
** any segment, else at the bottom of a new one (address space: no page is
** touched until used, but its pages will replace cached ones, and dirty
** ones beyond what the heap may hold: see 'shoalL_makeroom'). '*cold':
** none of its pages was dirty (in memory).
*/
static Slab *mapslab (ShoalHeap *h, int *cold) {
  Segment *sg, *other = NULL;
  int i = -1, j = -1;
  char *p;
  if (injected(&failslabs)) return NULL;
  shoalL_makeroom(h, SLABSIZE, 0);
  pthread_mutex_lock(&h->largelock);
  for (sg = h->segs; sg != NULL; sg = sg->next) {
    if ((i = shoalM_slabroom(sg)) < 0) continue;
    if (sg->nslabs > 0) break;
    if (other == NULL) {
      other = sg;
      j = i;
    }
  }
  if (sg == NULL && (sg = other) != NULL) i = j;
  if (sg == NULL) {
    if ((sg = shoalM_newsegment(h)) == NULL) {
      pthread_mutex_unlock(&h->largelock);
      return NULL;
    }
    i = 0;
  }
  *cold = (shoalM_takepages(h, sg, i, SLABPAGES) == SLABSIZE);
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
  int cold = 0;  /* none of its pages in memory but its header's */
  char *base;
  pthread_mutex_lock(&h->largelock);
  if ((s = h->warm) != NULL) {
    if ((h->warm = s->next) != NULL) h->warm->prev = NULL;
    else h->oldest = NULL;
    h->nwarm--;
  }
  else if ((s = h->cold) != NULL) {
    h->cold = s->next;
    h->ncold--;
    cold = 1;
  }
  pthread_mutex_unlock(&h->largelock);
  if (s != NULL)
    unpoison(blocks(s), SLABSIZE - FIRSTBLOCK);
  else {
    if ((s = mapslab(h, &cold)) == NULL) return NULL;
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
  /* a cold slab's room is faulted in as carved ('growend', 'prefault');
     pages in memory already (a spare segment's, say) are not asked for */
  base = (char *)slabbase(s);
  s->end = base + ((cold && c != MIXED) ? PAGE : SLABSIZE);
  if (c == MIXED) {
    h->mixlo = cold ? base + PAGE : base + SLABSIZE;
    h->mixhi = cold ? base + SLABSIZE : base;
  }
  s->used = 0;
  s->parked = 0;
  s->next = s->prev = NULL;
  s->listed = 0;
  return s;
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
void shoalA_purgeoldest (ShoalHeap *h) {  /* nwarm > 0; under 'largelock' */
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
    shoalA_purgeoldest(h);
  return n;
}

static void purge (ShoalHeap *h, int all) {  /* under 'largelock' */
  long now = all ? 0 : nowms();
  if (now != h->purgetick) {  /* a new tick: a new step */
    h->purgetick = now;
    h->npurged = 0;
  }
  if (all)
    while (h->nwarm > KEEPEMPTY) shoalA_purgeoldest(h);
  else
    h->npurged += purgedue(h, now, KEEPEMPTY, PURGESTEP - h->npurged);
  shoalL_expire(h, now, all);  /* cached mappings and dirty pages too */
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


/* 'b', of class 'c' in a MIXED slab, onto the heap's list of them */
static void pushmixed (ShoalHeap *h, char *b, int c) {
  unpoison(b, sizeof(void *));
  *(void **)b = h->mixfree[c];
  h->mixfree[c] = b;
}


/*
** Room [rest, top) of MIXED slabs (rest aligned to 16; less than MAXSMALL)
** that will not be carved waits as blocks of the largest classes it
** holds, cut as 'carve' cuts: one of 24, 40 or 56 bytes from the top if
** its size is an odd multiple of 8, then multiples of 16 from the bottom.
** At most 8 bytes are lost.
*/
static void keeprest (ShoalHeap *h, char *rest, char *top) {
  if ((size_t)(top - rest) % 16 != 0 && top - rest >= 24) {
    size_t odd = (size_t)(top - rest) < 56 ? (size_t)(top - rest) : 56;
    top -= odd;
    pushmixed(h, top, classof(odd));  /* 24, 40 or 56: a class each */
  }
  while (top - rest >= 16) {
    size_t n = (size_t)(top - rest) < MAXSMALL ? (size_t)(top - rest) : MAXSMALL;
    int c = classof(n);
    if (blocksize(c) > n) c--;  /* 'n' > 64 here: still a multiple of 16 */
    pushmixed(h, rest, c);
    rest += blocksize(c);
  }
}


/*
** [lo, hi) (poisoned, lo aligned to 16) becomes the spare room of MIXED
** slabs; the old spare's rest, less than MAXSMALL (callers replace it only
** by room for a block it cannot hold), waits as blocks ('keeprest').
*/
static void newspare (ShoalHeap *h, char *lo, char *hi) {
  keeprest(h, h->spare, h->spareend);
  h->spare = lo;
  h->spareend = hi;
}


/* Does a freed MIXED block of 'size' bytes become the spare room? */
#define becomesspare(h,size)	\
	((size) >= SPAREMIN && (size) > (size_t)((h)->spareend - (h)->spare))

/*
** A block of a MIXED slab freed: one of SPAREMIN bytes or more becomes
** the spare room that blocks of any class are carved from, in place of a
** smaller spare, whose rest waits as a block of the largest class it
** holds; others wait for their class. So a small VM's garbage of one size
** (a parser's buffers) serves blocks of another.
*/
static void mixedfree (ShoalHeap *h, void *b, int c) {
  size_t size = blocksize(c);
  poison(b, size);
  if (becomesspare(h, size)) newspare(h, b, (char *)b + size);
  else pushmixed(h, b, c);
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


/*
** A MIXED slab's room is faulted in a page ahead of the carving at each
** end (see 'shoalM_populate'): a new VM's first 128 KB come from these
** slabs (a VM requiring Penlight: 3 faults instead of 30). A heap has at
** most a page unused in memory at each end.
*/
static NOINLINE void prefault (ShoalHeap *h, Slab *s) {
  char *base = (char *)slabbase(s), *top = base + SLABSIZE;
  if (s->bump > h->mixlo) {  /* carved past the pages in, bottom up */
    char *to = (char *)pageround((uintptr_t)s->bump) + PAGE;
    if (to > h->mixhi) to = h->mixhi;
    shoalM_populate(h->mixlo, to);
    h->mixlo = to;
  }
  if (s->end < h->mixhi) {  /* top down */
    char *from = (char *)((uintptr_t)s->end & ~(uintptr_t)(PAGE - 1)) - PAGE;
    if (from < h->mixlo) from = h->mixlo;
    shoalM_populate(from, h->mixhi);
    h->mixhi = from;
  }
  if (h->mixlo == h->mixhi) {  /* all in: the checks never fire again */
    h->mixlo = top;
    h->mixhi = base;
  }
}


/*
** A cold class slab's 'end' is a frontier, at first its header's page:
** blocks are carved up to it, and it moves a page past the block that
** meets it, faulting those pages in by one call (see 'shoalM_populate').
** A trim sets it to the slab's end.
*/
static NOINLINE void growend (Slab *s, size_t size) {
  char *top = (char *)slabbase(s) + SLABSIZE;
  char *to = (char *)pageround((uintptr_t)(s->bump + size)) + PAGE;
  if (to > top) to = top;
  shoalM_populate(s->end, to);
  s->end = to;
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
  if (size > (size_t)(h->spareend - h->spare) && h->nruns > 0 &&
      size <= (size_t)(h->runs[h->nruns - 1].hi - h->runs[h->nruns - 1].lo)) {
    h->nruns--;  /* a run a trim parked: its pages fault in as carved */
    newspare(h, h->runs[h->nruns].lo, h->runs[h->nruns].hi);
  }
  if (size <= (size_t)(h->spareend - h->spare)) {
    b = carve(&h->spare, &h->spareend, size);
    unpoison(b, size);
    return b;
  }
  if (s == NULL || s->bump + size > s->end) {
    if (h->nmixed == MAXMIXED || (s = newslab(h, MIXED)) == NULL)
      return NULL;
    if (h->mixed != NULL) {  /* the last slab's rest, as blocks */
      poison(h->mixed->bump, (size_t)(h->mixed->end - h->mixed->bump));
      keeprest(h, h->mixed->bump, h->mixed->end);
      h->mixed->bump = h->mixed->end;
    }
    h->mixed = s;
    h->nmixed++;
  }
  b = carve(&s->bump, &s->end, size);
  if (s->bump > h->mixlo || s->end < h->mixhi) prefault(h, s);
  return b;
}


/*
** A partly used slab's pages that hold free blocks only go back to the OS
** at a trim ('trimslab'). The blocks that meet such a page leave the free
** list, "parked": a page given back reads as zeros, so no block there may
** hold a link. Invariant: a block meeting a page of 'parked' is neither out
** nor in a list; the slab hands them out again (all at once, faulting
** their pages in) only when it has no other block ('unpark'). Page 0,
** with the header, stays. MIXED slabs, whose free blocks are in the
** heap's lists, are trimmed otherwise ('trimmixed').
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
  size_t n = (SLABSIZE - FIRSTBLOCK) / size;  /* blocks it holds */
  size_t handed = (size_t)(s->bump - blocks(s)) / size;
  uint64_t isfree[(MAXBLOCKS + 63) / 64];
  unsigned int out = 1, give;  /* page 0 holds the header */
  void **link;
  s->end = (char *)slabbase(s) + SLABSIZE;  /* past the frontier too */
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


/*
** MIXED slabs' free room at a trim: a run of free bytes (free blocks side
** by side, the spare, the room never carved, the runs parked before) that
** holds a whole page leaves the lists, those pages go back to the OS (but
** a slab's page 0), and the run waits in 'runs' to become the spare again
** ('mixedalloc'). Runs are maximal: each is cut only by bytes not free,
** so a free block lies wholly in one or wholly out of all of them. A run
** parked before lies in one run found now, which is kept (there are at
** most as many as before), merged with what was freed beside it; new
** runs take the slots left. Room free but in none of the lists (a block
** on a slab's remote list, another thread may be writing its link; the
** bytes lost to alignment) counts as not free. A bit per GRAN bytes of
** the slabs tells what is free: every block of a MIXED slab starts and
** ends at a multiple of 8. Owner only.
*/
#define GRAN		8
#define NGRAN		((int)(SLABSIZE / GRAN))
#define PAGEGRANS	((int)(PAGE / GRAN))

typedef uint64_t Grans[MAXMIXED][NGRAN / 64];  /* 2 KB, on the stack */

/* Granules of [b, b + n), in one of the 'm' slabs of 'ms', marked free. */
static void markfree (Slab **ms, int m, Grans isfree, char *b, size_t n) {
  for (int k = 0; k < m; k++) {
    char *base = (char *)slabbase(ms[k]);
    if (n > 0 && slabbase(b) == (uintptr_t)base) {
      int g = (int)((b - base) / GRAN);
      for (int e = g + (int)(n / GRAN); g < e; g++)
        isfree[k][g / 64] |= (uint64_t)1 << (g % 64);
    }
  }
}

/* Is 'b' in one of the 'n' runs of 'r'? */
static int inruns (const Run *r, int n, const char *b) {
  for (int i = 0; i < n; i++)
    if (r[i].lo <= b && b < r[i].hi) return 1;
  return 0;
}

/* The maximal runs of free granules of the 'm' slabs that hold a page */
static int findruns (Slab **ms, int m, Grans isfree, Run *found) {
  int n = 0;
  for (int k = 0; k < m; k++) {
    char *base = (char *)slabbase(ms[k]);
    for (int pg = 1; pg < SLABPAGES; pg++) {
      int lo = pg * PAGEGRANS, hi = lo;
      while (hi < NGRAN && isset(isfree[k], hi)) hi++;
      if (hi - lo < PAGEGRANS) continue;  /* page 'pg' holds a block out */
      while (lo > 0 && isset(isfree[k], lo - 1)) lo--;
      found[n].lo = base + (size_t)lo * GRAN;
      found[n].hi = base + (size_t)hi * GRAN;
      n++;
      pg = hi / PAGEGRANS;  /* the next page that may start a run */
    }
  }
  return n;
}

static void trimmixed (ShoalHeap *h) {
  Slab *ms[MAXMIXED];
  Grans isfree;
  Run found[MAXMIXED * SLABPAGES], old[NRUNS];
  int m = 0, nfound, nold = h->nruns;
  for (Slab *s = h->all; s != NULL; s = s->allnext)
    if (s->cls == MIXED) ms[m++] = s;
  if (m == 0) return;
  memset(isfree, 0, sizeof(isfree));
  for (int c = 0; c < NCLASSES; c++)
    for (void *b = h->mixfree[c]; b != NULL; b = *(void **)b)
      markfree(ms, m, isfree, b, blocksize(c));
  markfree(ms, m, isfree, h->spare, (size_t)(h->spareend - h->spare));
  if (h->mixed != NULL)
    markfree(ms, m, isfree, h->mixed->bump,
             (size_t)(h->mixed->end - h->mixed->bump));
  for (int i = 0; i < nold; i++) {
    old[i] = h->runs[i];
    markfree(ms, m, isfree, old[i].lo, (size_t)(old[i].hi - old[i].lo));
  }
  nfound = findruns(ms, m, isfree, found);
  h->nruns = 0;
  for (int pass = 0; pass < 2; pass++)  /* those holding old runs first */
    for (int i = 0; i < nfound && h->nruns < NRUNS; i++) {
      int hasold = 0;
      for (int j = 0; j < nold; j++)
        hasold |= inruns(&found[i], 1, old[j].lo);
      if (hasold == (pass == 0)) h->runs[h->nruns++] = found[i];
    }
  if (nfound == 0) return;
  for (int c = 0; c < NCLASSES; c++)  /* the runs' blocks out of the lists */
    for (void **link = &h->mixfree[c]; *link != NULL; ) {
      if (inruns(h->runs, h->nruns, *link)) *link = *(void **)*link;
      else link = (void **)*link;
    }
  if (inruns(h->runs, h->nruns, h->spare)) h->spare = h->spareend = NULL;
  if (h->mixed != NULL && inruns(h->runs, h->nruns, h->mixed->bump))
    h->mixed->end = h->mixed->bump;
  for (int i = 0; i < h->nruns; i++) {
    char *lo = h->runs[i].lo, *hi = h->runs[i].hi;
    char *plo = (char *)pageround((uintptr_t)lo);
    char *phi = (char *)((uintptr_t)hi & ~(uintptr_t)(PAGE - 1));
    poison(lo, (size_t)(hi - lo));
    madvise(plo, (size_t)(phi - plo), MADV_DONTNEED);  /* again for old runs */
    /* a spare starts aligned to 16 (see 'carve') */
    h->runs[i].lo = (char *)(((uintptr_t)lo + 15) & ~(uintptr_t)15);
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
      if (s->end < (char *)slabbase(s) + SLABSIZE) {
        growend(s, size);
        continue;
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


/*
** Free a small block unless its slab needs relisting or it becomes the
** spare room (0: slow path, 'smallfree'). It calls nothing, so that
** 'shoal_alloc' saves no register.
*/
static inline int fastfree (ShoalHeap *h, void *b, int c) {
  Slab *s = slabof(b);
  if (s->cls == MIXED) {
    if (becomesspare(h, blocksize(c))) return 0;
    poison(b, blocksize(c));
    pushmixed(h, b, c);
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


/*
** Free a small block: a MIXED slab's by 'mixedfree', else by the fast
** path, else relist or empty its slab.
*/
static void smallfree (ShoalHeap *h, void *b, int c) {
  Slab *s = slabof(b);
  if (s->cls == MIXED) {
    mixedfree(h, b, c);
    return;
  }
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
** The lua_Alloc
** =======================================================
*/

/* A block of 'n' bytes, for 'why' (FORNEW...). */
static void *blockalloc (ShoalHeap *h, size_t n, int why) {
  return (n <= MAXSMALL) ? smallalloc(h, classof(n))
                         : shoalL_largealloc(h, n, why);
}


static void blockfree (ShoalHeap *h, void *b, size_t n) {
  if (n <= MAXSMALL) smallfree(h, b, classof(n));
  else shoalL_largefree(h, b);
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
    if (shoalL_mapget(&h->shrunk, b) == 0)
      return 0;  /* listed, not in 'shrunk' */
    inlist++;
  }
  return atomic_load_explicit(n, relaxed) == count &&
         atomic_load_explicit(unlisted, relaxed) + inlist == count;
}


size_t shoalA_mixedruns (ShoalHeap *h) {
  size_t n = 0;
  for (int i = 0; i < h->nruns; i++)
    n += (size_t)(h->runs[i].hi - h->runs[i].lo);
  return n;
}


int shoalA_parked (ShoalHeap *h) {
  int n = 0;
  for (Slab *s = h->all; s != NULL; s = s->allnext)
    if (s->cls >= 0) n += __builtin_popcount(s->parked);
  return n;
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
  if (!take) real = shoalL_mapget(&h->shrunk, b);
  else if ((real = shoalL_maptake(&h->shrunk, b, NULL)) != 0)
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
  if (shoalL_mapget(&h->shrunk, ptr) == 0) {  /* not noted yet */
    ok = shoalL_mapreserve(h, &h->shrunk) &&
         shoalL_mapput(&h->shrunk, ptr, bsize, NULL) != NULL;
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
  int why = (ptr != NULL) ? ((nsize > osize) ? FORGROWTH : FORNEW)
                          : (osize == LUA_TUSERDATA) ? FORUSERDATA : FORNEW;
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
    if ((b = shoalL_largeresize(h, ptr, nsize, MREMAP_MAYMOVE)) == NULL)
      return NULL;
  }
  else if ((b = blockalloc(h, nsize, why)) == NULL) {
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
    if (!fastfree(h, ptr, oc)) smallfree(h, ptr, oc);
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
        (b = fastnew(h, classof(nsize))) != NULL)
      return counted(h, (ptrdiff_t)nsize) ? flush(h, b) : b;
  }
  else if (nsize == 0) {
    if (osize <= MAXSMALL && !mayshrunk(h, ptr) &&
        fastfree(h, ptr, classof(osize)))
      return freed(h, osize) ? flush(h, NULL) : NULL;
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
  if (bsize > MAXSMALL) shoalL_largefree(h, ptr);
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
** large one gives its tail pages back, or keeps them if it keeps half its
** mapping (shrunk small, it stays a mapping, noted in 'shrunk'); a small one that keeps its class needs nothing; a
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
  if ((bsize = shoalL_maptake(&h->shrunk, ptr, NULL)) == 0) bsize = osize;
  else noteshrunk(h, ptr, bsize, -1);
  large = (bsize > MAXSMALL);  /* a mapping: its tail pages go back */
  if (!(large && nsize > MAXSMALL) &&
      !(!large && classof(bsize) == classof(nsize))) {
    if (!shoalL_mapput(&h->shrunk, ptr, bsize, NULL)) {
      /* no memory to note it down (a block just taken out always finds
         its slot): keep Lua's view as it was */
      pthread_mutex_unlock(&h->largelock);
      return NULL;
    }
    noteshrunk(h, ptr, bsize, 1);
  }
  pthread_mutex_unlock(&h->largelock);
  if (large)  /* tail pages back or kept, in place; a mapping still */
    shoalL_largeresize(h, ptr, nsize, 0);
  atomic_fetch_add_explicit(&h->remotebytes, osize - nsize, relaxed);
  atomic_fetch_sub_explicit(&allinuse, (long long)(osize - nsize), relaxed);
  return ptr;
}

/* }====================================================== */


/*
** {======================================================
** Heaps
** =======================================================
*/


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

int shoalA_pagesfit (void) {
  long n = atomic_load_explicit(&fakepage, relaxed);
  return (n != 0 ? n : sysconf(_SC_PAGESIZE)) == (long)PAGE;
}


ShoalHeap *shoal_heapnew (void) {
  ShoalHeap *h;
  if (!shoalA_pagesfit()) {
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
  while (h->segs != NULL) {  /* every slab at once, to the spares */
    Segment *sg = h->segs;
    h->segs = sg->next;
    shoalM_leaveseg(sg);
  }
  shoalL_leavemaps(h);  /* every mapping, live or cached, to the spares */
  free(h->large.slot);
  free(h->shrunk.slot);
  shoalL_expire(h, 0, 1);
  free(h->cache);
  /* what Lua did not free (a wholesale close) leaves the process's count */
  flush(h, NULL);
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
  shoalM_setpages(sg->used, pageof(sg, p), SLABPAGES, 0);
  sg->nslabs--;
  shoalM_measure(sg);
  poison(p, SLABSIZE);
}


/*
** What 'h' no longer uses back to the OS now; with 'slabs', the free
** pages of partly used slabs and the tails of large blocks too, and the
** cold slabs go back to their segments (those left empty are unmapped): a
** walk over every slab. Owner only: it walks 'all'.
*/
static void trim (ShoalHeap *h, int slabs) {
  Slab *gone = NULL;
  if (atomic_load_explicit(&h->remotes, relaxed) > 0)
    takeallremote(h);  /* slabs emptied by other threads' frees go too */
  if (slabs) {
    pthread_mutex_lock(&h->largelock);
    while (h->nwarm > KEEPEMPTY) shoalA_purgeoldest(h);
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
    trimmixed(h);
  }
  pthread_mutex_lock(&h->largelock);
  while (gone != NULL) {
    Slab *s = gone;
    gone = s->next;
    unslab(h, s);
  }
  if (slabs) shoalL_trimtails(h);
  purge(h, 1);
  pthread_mutex_unlock(&h->largelock);
}


void shoal_heaptrim (ShoalHeap *h) {
  trim(h, 1);
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


void shoalA_purgedelay (int ms) {
  atomic_store(&shoalA_keepms, ms);
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
  shoalL_expire(h, now, 0);
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
  shoalM_dropspares(0);
  shoalL_dropmaps(0);
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


/* }====================================================== */
