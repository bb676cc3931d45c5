/*
** llarge.c
** Blocks over MAXSMALL: medium ones (up to MAXMEDIUM, MAXGROWN grown in
** place) are runs of pages of the heap's segments, larger ones mappings
** of their own; the heap's address maps (block -> size), which also
** note blocks shrunk remotely; and the process's spare mappings, which
** heaps that went left to the next ones.
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
** Large blocks: mapped straight from the OS, page-aligned and without a
** header: the heap's 'large' table maps each block to its mapping's size
** (its tail, a shrink's rest kept, included: see 'shoalL_largeresize').
** A freed mapping stays in the heap's cache for PURGEDELAY ms, for
** blocks it can hold or grow into: Lua often frees a part and soon
** allocates one of the same size (the next round's table, string buffer,
** array), and a sweep frees many long strings that are made again.
** 'largelock' guards the table and the cache: blocks may be freed remotely.
** =======================================================
*/

#if defined(__SANITIZE_THREAD__)
/*
** ThreadSanitizer does not see mremap (it sees mmap and munmap): pages it
** moved would keep the history of whatever lay there before, and report
** races that are none. Under TSan a block grows in place only where the
** pages after it are free, as with mremap; else 'remap' moves it by mmap,
** copy and munmap.
*/
static void *osremap (void *b, size_t osize, size_t size, int flags) {
  void *p = mmap((char *)b + osize, size - osize, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  (void)flags;
  if (p == (char *)b + osize) return b;  /* in place: the pages after were free */
  if (p != MAP_FAILED) munmap(p, size - osize);  /* a kernel without the flag */
  return MAP_FAILED;
}
#else
#define osremap(b,osize,size,flags)	mremap(b, osize, size, flags)
#endif

static atomic_int failremaps;  /* for tests: growths to fail (ENOMEM) */
static atomic_int splitremaps;  /* for tests: mremaps refused (see 'remap') */

void shoalA_failremaps (int n) {
  atomic_store(&failremaps, n);
}

void shoalA_splitremaps (int n) {
  atomic_store(&splitremaps, n);
}

/*
** A mapping resized; MAP_FAILED: it stays as it was (growths only). A
** block may span two of the kernel's mappings (it grew into cached pages
** mapped apart: see 'intotail'), which mremap refuses to resize: such a
** block shrinks by munmap of its tail, and moves by mmap, copy and munmap
** (valgrind, which keeps its own map of mappings, refuses it often).
*/
static void *remap (void *b, size_t osize, size_t size, int flags) {
  void *p;
  if (size < osize) {  /* in place */
    munmap((char *)b + size, osize - size);
    return b;
  }
  if (injected(&failremaps)) {
    errno = ENOMEM;
    return MAP_FAILED;
  }
  p = injected(&splitremaps) ? MAP_FAILED : osremap(b, osize, size, flags);
  if (p != MAP_FAILED || !(flags & MREMAP_MAYMOVE)) return p;
  p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
           -1, 0);
  if (p == MAP_FAILED) return p;
  memcpy(p, b, osize);
  munmap(b, osize);
  return p;
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
      shoalL_mapput(m, old.slot[i].base, old.slot[i].size,
                    old.slot[i].seg)->tail = old.slot[i].tail;
  free(old.slot);
  return 1;
}


/*
** Room for one more entry in 'm', an address map of heap 'h' (under
** 'largelock'); 0 if no memory. As for a mapping (see 'mapfresh'), the
** memory short may be address space that cached and spare mappings hold
** (RLIMIT_AS counts the C library's memory too): they go back, and it is
** tried again.
*/
int shoalL_mapreserve (ShoalHeap *h, AddrMap *m) {
  return mapreserve(m) || (shoalL_uncacheall(h) > 0 && mapreserve(m));
}


/* Enter block 'b' with 'size' (in segment 'seg') in 'm', no tail: its
   entry, NULL if no memory. */
Mapping *shoalL_mapput (AddrMap *m, char *b, size_t size, Segment *seg) {
  size_t i;
  if (!mapreserve(m)) return NULL;
  for (i = slotof(m, b); m->slot[i].base != NULL; i = (i + 1) & (m->cap - 1)) ;
  m->slot[i].base = b;
  m->slot[i].size = size;
  m->slot[i].seg = seg;
  m->slot[i].tail = 0;
  m->n++;
  return &m->slot[i];
}


/* The size of block 'b' in 'm' (0: not there). */
size_t shoalL_mapget (const AddrMap *m, const char *b) {
  if (m->n == 0) return 0;
  for (size_t i = slotof(m, b); m->slot[i].base != NULL; i = (i + 1) & (m->cap - 1))
    if (m->slot[i].base == b) return m->slot[i].size;
  return 0;
}


/* Take block 'b' out of 'm': its entry into '*e' (size 0, segment and
   tail none: it was not there). */
static void maptakeentry (AddrMap *m, char *b, Mapping *e) {
  size_t wrap = m->cap - 1, i, j;
  e->size = e->tail = 0;
  e->seg = NULL;
  if (m->n == 0) return;
  for (i = slotof(m, b); m->slot[i].base != b; i = (i + 1) & wrap)
    if (m->slot[i].base == NULL) return;
  *e = m->slot[i];
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
}


/* Take block 'b' out of 'm': its size (0: it was not there), and its
   segment into '*seg' unless NULL. */
size_t shoalL_maptake (AddrMap *m, char *b, Segment **seg) {
  Mapping e;
  maptakeentry(m, b, &e);
  if (seg != NULL) *seg = e.seg;
  return e.size;
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
   one), which come first; how many. */
static int uncachedue (ShoalHeap *h, long now, int all) {
  int n = 0;
  size_t bytes = 0;
  while (n < h->ncached && (all || now - h->cache[n].freedat >= PURGEDELAY)) {
    shoalA_unmap(h, h->cache[n].base, h->cache[n].size);
    bytes += h->cache[n].size;
    n++;
  }
  if (n > 0) {
    h->ncached -= n;
    memmove(h->cache, h->cache + n, (size_t)h->ncached * sizeof(Mapping));
    atomic_fetch_sub_explicit(&h->cachebytes, bytes, relaxed);
  }
  return n;
}


/* 'uncachedue', then the same for segments' dirty pages. */
void shoalL_expire (ShoalHeap *h, long now, int all) {
  uncachedue(h, now, all);
  shoalM_expireruns(h, now, all);
}


/*
** The first 'size' bytes of cache entry 'i': the whole entry if it holds
** no more, else its head, the rest staying cached (freed when it was).
*/
static Mapping takehead (ShoalHeap *h, int i, size_t size) {
  Mapping m;
  if (h->cache[i].size <= size) return uncache(h, i);
  m = h->cache[i];
  m.size = size;
  h->cache[i].base += size;
  h->cache[i].size -= size;
  atomic_fetch_sub_explicit(&h->cachebytes, size, relaxed);
  return m;
}


/*
** 'size' bytes of cached pages (or NULL): the smallest cached mapping that
** holds them, whole if of that size, else its head, the rest staying in
** the cache (pages already touched: no fault for them; a block never
** holds pages it does not need). For a block that 'grows' (a luaL_Buffer's
** box, by half at a time), the largest instead: its rest is then the room
** the next growth takes in place (see 'intotail'), where the smallest
** left it to grow into another mapping, by a copy. With 'less', when none
** holds them, the largest that does not, for the caller to grow.
*/
static Mapping fromcache (ShoalHeap *h, size_t size, int less, int grows) {
  Mapping m = {NULL, 0, 0, NULL, 0};
  int best = -1, below = -1;
  for (int i = 0; i < h->ncached; i++) {
    size_t s = h->cache[i].size;
    if (s < size) {
      if (below < 0 || s > h->cache[below].size) below = i;
    }
    else if (best < 0 || (grows ? s > h->cache[best].size
                                : s < h->cache[best].size))
      best = i;
  }
  if (best < 0) return (less && below >= 0) ? uncache(h, below) : m;
  return takehead(h, best, size);
}


/* Unmap the cache's oldest mapping; its size. */
static size_t uncacheoldest (ShoalHeap *h) {
  Mapping m = uncache(h, 0);
  shoalA_unmap(h, m.base, m.size);
  return m.size;
}


/*
** What a heap may hold of pages it does not use (cached mappings, dirty
** pages) while it takes fresh pages: an eighth of its use (Lua's, remote
** frees out), at most HOLDMAX; at least HOLDMIN when the fresh pages are
** for a medium or large block ('large'). Holding none gave back a freed
** block's pages for each fresh one, and the next block that took them
** faulted them in again: in a process with threads on other CPUs, each
** madvise interrupts them all to flush their TLBs (stringchurn in two VMs
** on two threads: 1,700 calls a VM, 9% slower). Holding only an eighth
** did the same to a small VM that builds long strings over and over (a
** luaL_Buffer's box and the string it makes: 64 KB ones in 9 times
** mimalloc's time, 300 KB ones in 80 times). A heap growing by
** slabs holds no floor: with one, stringchurn's peak RSS was 0.6% higher.
** Beside that, the dirty pages of the spare segments it took, until they
** are due: else a new heap, which uses next to nothing, would give back
** the pages it took a spare segment for before its next slab took them.
*/
static size_t mayhold (ShoalHeap *h, int large) {
  size_t n = heapinuse(h) / 8;
  size_t spare = atomic_load_explicit(&h->sparebytes, relaxed);
  n = (large && n < HOLDMIN) ? HOLDMIN : (n < HOLDMAX) ? n : HOLDMAX;
  if (spare > 0) {  /* once due, they count no more: no clock read after */
    if (nowms() < atomic_load_explicit(&h->spareuntil, relaxed)) n += spare;
    else atomic_store_explicit(&h->sparebytes, 0, relaxed);
  }
  return n;
}


/* Unmap every cached mapping, and the process's spare segments and
   mappings (under 'largelock'); how many there were. */
int shoalL_uncacheall (ShoalHeap *h) {
  return uncachedue(h, 0, 1) + shoalM_dropspares(1) + shoalL_dropmaps(1);
}


/*
** Before the heap takes 'n' bytes of fresh pages (for a medium or large
** block: 'large'): give back as many of the pages it holds unused beyond
** 'mayhold', cached mappings first (oldest first), then dirty pages, so
** that its RSS grows only once what it holds is down to that. A process
** short of address space (RLIMIT_AS) gets the cached mappings back when
** a mapping fails (see 'mapfresh').
*/
void shoalL_makeroom (ShoalHeap *h, size_t n, int large) {
  size_t keep = mayhold(h, large), want, done = 0;
  if (atomic_load_explicit(&h->cachebytes, relaxed) +
      atomic_load_explicit(&h->dirtybytes, relaxed) <= keep)
    return;
  pthread_mutex_lock(&h->largelock);
  want = minus(atomic_load_explicit(&h->cachebytes, relaxed) +
               atomic_load_explicit(&h->dirtybytes, relaxed), keep);
  if (want > n) want = n;
  while (h->ncached > 0 && done < want) done += uncacheoldest(h);
  for (Segment **p = &h->segs, *sg; (sg = *p) != NULL && done < want; ) {
    if (sg->maxdirty > 0) done += shoalM_purgeseg(h, sg, want - done);
    if (!shoalM_dropseg(h, p))  /* left empty, it has no reason to stay */
      p = &sg->next;
  }
  pthread_mutex_unlock(&h->largelock);
}


/* The tails of the live mappings (see 'shoalL_largeresize') back to the
   OS: a trim. Under 'largelock'. */
void shoalL_trimtails (ShoalHeap *h) {
  for (size_t i = 0; i < h->large.cap; i++) {
    Mapping *m = &h->large.slot[i];
    if (m->base != NULL && m->tail > 0) {
      m->size -= m->tail;
      shoalA_unmap(h, m->base + m->size, m->tail);
      m->tail = 0;
    }
  }
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
    shoalA_unmap(h, p, size);
    return;
  }
  while (h->ncached > 0 &&
         (!cacheroom(h) ||
          atomic_load_explicit(&h->cachebytes, relaxed) + size > CACHEMAX))
    uncacheoldest(h);
  if (!cacheroom(h)) {  /* no array, and no memory to make it */
    shoalA_unmap(h, p, size);
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
** Before the heap takes 'n' bytes of fresh pages for a medium or large
** block: give back as many in empty slabs beyond the KEEPEMPTY newest,
** then what it holds beyond what it may hold ('shoalL_makeroom').
*/
static void freshroom (ShoalHeap *h, size_t n) {
  pthread_mutex_lock(&h->largelock);
  for (size_t back = SLABSIZE; back <= n && h->nwarm > KEEPEMPTY;
       back += SLABSIZE)
    shoalA_purgeoldest(h);
  pthread_mutex_unlock(&h->largelock);
  shoalL_makeroom(h, n, 1);
}


static atomic_int failmmaps;  /* for tests: fresh mappings to fail */

void shoalA_failmmaps (int n) {
  atomic_store(&failmmaps, n);
}

int shoalL_mapfails (void) {
  return injected(&failmmaps);
}


static char *osmap (size_t size) {
  return shoalL_mapfails() ? NULL : mapat(NULL, size);
}


/*
** Spare mappings, the process's, as spare segments are (see lsegment.c):
** a heap that goes leaves its large blocks' and cached mappings here,
** their pages resident, and a new mapping of the same size comes from
** here first, before the heap gives back what it holds for fresh pages
** (a VM that builds a 1 MB string, made just after another that did
** closed, faulted in its 257 pages afresh). At most NSPAREMAPS, of
** SPAREMAPMAX bytes in all, each PURGEDELAY ms at most; counted in the
** process's 'mapped', in no heap's. Lock order: 'largelock', then
** 'maplock'.
*/
#define NSPAREMAPS	16
#define SPAREMAPMAX	((size_t)16 * 1024 * 1024)

static pthread_mutex_t maplock = PTHREAD_MUTEX_INITIALIZER;
static Mapping sparemaps[NSPAREMAPS];  /* oldest first */
static atomic_int nsparemaps;  /* written under 'maplock' */
static size_t sparemapbytes;


/* Out of 'sparemaps' into 'gone' (under 'maplock'): those due by 'now'
   (all: every one), then the oldest until 'room' bytes more fit in a
   free entry; how many. */
static int sparemapsdue (long now, int all, size_t room, Mapping *gone) {
  int n = 0, k = atomic_load_explicit(&nsparemaps, relaxed);
  while (n < k && (all || now - sparemaps[n].freedat >= PURGEDELAY ||
                   (room > 0 && (k - n >= NSPAREMAPS ||
                                 sparemapbytes + room > SPAREMAPMAX)))) {
    gone[n] = sparemaps[n];
    sparemapbytes -= sparemaps[n].size;
    n++;
  }
  if (n > 0) {
    memmove(sparemaps, sparemaps + n, (size_t)(k - n) * sizeof(Mapping));
    atomic_store(&nsparemaps, k - n);
  }
  return n;
}


static void unmapmaps (Mapping *m, int n) {
  for (int i = 0; i < n; i++) shoalA_unmap(NULL, m[i].base, m[i].size);
}


/* Mapping 'b' of 'size' bytes, of a heap that goes, to the spares (the
   heap's count leaves the process's with the heap, as its segments'). */
static void leavemap (char *b, size_t size) {
  Mapping gone[NSPAREMAPS];
  long now;
  int n, k;
  shoalA_countmapped(NULL, (ptrdiff_t)size);
  if (size > SPAREMAPMAX) {
    shoalA_unmap(NULL, b, size);
    return;
  }
  poison(b, size);
  now = nowms();
  pthread_mutex_lock(&maplock);
  n = sparemapsdue(now, 0, size, gone);
  k = atomic_load_explicit(&nsparemaps, relaxed);
  sparemaps[k].base = b;
  sparemaps[k].size = size;
  sparemaps[k].freedat = now;
  sparemapbytes += size;
  atomic_store(&nsparemaps, k + 1);
  pthread_mutex_unlock(&maplock);
  unmapmaps(gone, n);
}


/* A spare mapping of exactly 'size' bytes (the newest), or NULL. */
static char *takesparemap (size_t size) {
  Mapping gone[NSPAREMAPS];
  char *b = NULL;
  int n, k;
  if (atomic_load_explicit(&nsparemaps, relaxed) == 0) return NULL;
  pthread_mutex_lock(&maplock);
  n = sparemapsdue(nowms(), 0, 0, gone);
  k = atomic_load_explicit(&nsparemaps, relaxed);
  for (int i = k - 1; i >= 0; i--) {
    if (sparemaps[i].size != size) continue;
    b = sparemaps[i].base;
    sparemapbytes -= size;
    memmove(&sparemaps[i], &sparemaps[i + 1],
            (size_t)(k - 1 - i) * sizeof(Mapping));
    atomic_store(&nsparemaps, k - 1);
    break;
  }
  pthread_mutex_unlock(&maplock);
  unmapmaps(gone, n);
  if (b != NULL) {
    unpoison(b, size);
    shoalA_countmapped(NULL, -(ptrdiff_t)size);  /* the caller counts it */
  }
  return b;
}


/* Spare mappings due by now (all: every one) unmapped; how many. */
int shoalL_dropmaps (int all) {
  Mapping gone[NSPAREMAPS];
  int n;
  if (atomic_load_explicit(&nsparemaps, relaxed) == 0) return 0;
  pthread_mutex_lock(&maplock);
  n = sparemapsdue(nowms(), all, 0, gone);
  pthread_mutex_unlock(&maplock);
  unmapmaps(gone, n);
  return n;
}


/* For tests: spare mappings waiting (drop: unmapped first, all of them). */
int shoalA_sparemaps (int drop) {
  if (drop) shoalL_dropmaps(1);
  return atomic_load(&nsparemaps);
}


/* Heap 'h' goes: its mappings, live and cached, to the spares. */
void shoalL_leavemaps (ShoalHeap *h) {
  for (size_t i = 0; i < h->large.cap; i++)
    if (h->large.slot[i].base != NULL && h->large.slot[i].seg == NULL)
      leavemap(h->large.slot[i].base, h->large.slot[i].size);
  for (int i = 0; i < h->ncached; i++)
    leavemap(h->cache[i].base, h->cache[i].size);
  h->ncached = 0;
  atomic_store(&h->cachebytes, 0);
}


/*
** A fresh mapping of 'size' bytes, NULL if none. The heap holds cached
** mappings as it takes fresh pages (see 'mayhold'), address space a
** process under RLIMIT_AS may lack: when a mapping fails they go back,
** and it is tried again.
*/
static char *mapfresh (ShoalHeap *h, size_t size) {
  char *p = osmap(size);
  int gone;
  if (p != NULL) return p;
  pthread_mutex_lock(&h->largelock);
  gone = shoalL_uncacheall(h);
  pthread_mutex_unlock(&h->largelock);
  return (gone > 0) ? osmap(size) : NULL;
}


static atomic_int nomedium;  /* for tests: every large block a mapping */

void shoalA_mediumblocks (int on) {
  atomic_store(&nomedium, !on);
}


/*
** 'n' free pages of the heap's segments, dirty ones ('dirty': their
** memory is there, no fault) or any: the highest 'n' pages of the first
** segment (the newest) with a run that holds them; for a block that
** 'grows', the bottom of the longest run of all, the room it may grow
** into in place. Their segment (NULL: none), the first page into '*i'.
*/
static Segment *findpages (ShoalHeap *h, int n, int dirty, int grows,
                           int *i) {
  Segment *best = NULL;
  int most = n - 1;
  for (Segment *sg = h->segs; sg != NULL; sg = sg->next) {
    int len = dirty ? sg->maxdirty : sg->maxfree;
    if (len > most) {
      best = sg;
      most = len;
      if (!grows) break;
    }
  }
  if (best != NULL)  /* a run of 'most' pages is one of the longest: whole */
    *i = shoalM_findrun(dirty ? best->dirty : best->used, dirty,
                        grows ? most : n);
  return best;
}


/*
** A medium block: dirty pages, else free ones, else a new segment's (see
** 'findpages'); at the top of their run, but for a block that grows (a
** block moved to be larger: 'grows'), which goes to the bottom of the
** longest run to grow again in place: a luaL_Buffer's box grows by half,
** again and again, and each move copied it whole. Freed, its pages stay
** dirty for the next (see 'shoalM_expireruns'): unlike a mapping's, they
** cost no system call and no address-space entry of their own, so that
** thousands of VMs do not run into the kernel's limit of those (65,530
** by default).
*/
static void *mediumalloc (ShoalHeap *h, size_t size, int why) {
  int n = (int)(size / PAGE), i = -1, grows = (why == FORGROWTH);
  Segment *sg;
  size_t fresh;
  char *b;
  pthread_mutex_lock(&h->largelock);
  if (!shoalL_mapreserve(h, &h->large)) {  /* before a new segment, left
                                             empty else */
    pthread_mutex_unlock(&h->largelock);
    return NULL;
  }
  shoalL_expire(h, nowms(), 0);
  if ((sg = findpages(h, n, 1, grows, &i)) == NULL &&
      (sg = findpages(h, n, 0, grows, &i)) == NULL) {
    if ((sg = shoalM_newsegment(h)) == NULL) {
      pthread_mutex_unlock(&h->largelock);
      return NULL;
    }
    i = grows ? 0 : SEGPAGES - n;
  }
  b = sg->base + (size_t)i * PAGE;
  shoalL_mapput(&h->large, b, size, sg);  /* cannot fail: room was reserved */
  fresh = shoalM_takepages(h, sg, i, n);
  pthread_mutex_unlock(&h->largelock);
  if (fresh > 0) {
    freshroom(h, fresh);
    if (why != FORUSERDATA) shoalM_populate(b, b + size);
  }
  unpoison(b, size);
  return b;
}


/*
** The cached pages right after block 'b' of 'osize' bytes, up to 'size'
** bytes in all, taken for it to grow into in place; how many (0: none):
** a freed mapping the kernel had put just after it.
*/
static size_t intotail (ShoalHeap *h, char *b, size_t osize, size_t size) {
  for (int i = 0; i < h->ncached; i++) {
    if (h->cache[i].base == b + osize) {
      size_t n = takehead(h, i, size - osize).size;
      unpoison(b + osize, n);
      return n;
    }
  }
  return 0;
}


/*
** A block over MAXSMALL. Lua writes such a block whole or nearly (a
** string, a table's parts, a buffer's box as it fills): its fresh pages
** are faulted in at once (see 'shoalM_populate'), but for a userdata's.
*/
void *shoalL_largealloc (ShoalHeap *h, size_t n, int why) {
  size_t size = pageround(n);
  int grows = (why == FORGROWTH);
  Mapping m;
  if (size <= MAXMEDIUM && !atomic_load_explicit(&nomedium, relaxed))
    return mediumalloc(h, size, why);
  pthread_mutex_lock(&h->largelock);
  shoalL_expire(h, nowms(), 0);
  m = fromcache(h, size, 1, grows);
  if (m.base != NULL && m.size < size)  /* cached pages after it first */
    m.size += intotail(h, m.base, m.size, size);
  pthread_mutex_unlock(&h->largelock);
  if (m.base != NULL) {
    unpoison(m.base, m.size);
    if (m.size < size) {  /* grown: only the pages it lacks are fresh */
      void *p;
      freshroom(h, size - m.size);
      p = remap(m.base, m.size, size, MREMAP_MAYMOVE);
      if (p != MAP_FAILED) {
        shoalA_countmapped(h, (ptrdiff_t)(size - m.size));
        if (why != FORUSERDATA)
          shoalM_populate((char *)p + m.size, (char *)p + size);
        m.base = p;
        m.size = size;
      }
      else {  /* memory is short: give it back, then try fresh pages */
        shoalA_unmap(h, m.base, m.size);
        m.base = NULL;
      }
    }
  }
  if (m.base == NULL) {
    if ((m.base = takesparemap(size)) == NULL) {
      freshroom(h, size);  /* fresh pages: a spare's are not */
      if ((m.base = mapfresh(h, size)) == NULL) return NULL;
      if (why != FORUSERDATA) shoalM_populate(m.base, m.base + size);
    }
    m.size = size;
    shoalA_countmapped(h, (ptrdiff_t)size);
  }
  pthread_mutex_lock(&h->largelock);
  if (!shoalL_mapreserve(h, &h->large)) {
    pthread_mutex_unlock(&h->largelock);
    shoalA_unmap(h, m.base, m.size);
    return NULL;
  }
  shoalL_mapput(&h->large, m.base, m.size, NULL);  /* room was reserved */
  pthread_mutex_unlock(&h->largelock);
  return m.base;
}


void shoalL_largefree (ShoalHeap *h, void *b) {
  Segment *sg;
  size_t size;
  pthread_mutex_lock(&h->largelock);
  shoalL_expire(h, nowms(), 0);
  size = shoalL_maptake(&h->large, b, &sg);
  if (sg != NULL) shoalM_droppages(h, sg, pageof(sg, b), (int)(size / PAGE));
  else tocache(h, b, size);
  pthread_mutex_unlock(&h->largelock);
}


/*
** A medium block resized, under 'largelock', which it lets go: in place
** when it shrinks or the pages after it are free, up to MAXGROWN, else
** moved (bytes copied). NULL: no memory ('flags' 0: it may not move); it
** stays.
*/
static void *mediumresize (ShoalHeap *h, Segment *sg, char *b, size_t osize,
                           size_t nsize, int flags) {
  size_t size = pageround(nsize), fresh = 0;
  int i = pageof(sg, b), n = (int)(osize / PAGE), m = (int)(size / PAGE);
  void *p;
  if (size <= osize) shoalM_droppages(h, sg, i + m, n - m);
  else if (size <= MAXGROWN && shoalM_freepages(sg, i + n, m - n))
    fresh = shoalM_takepages(h, sg, i + n, m - n);
  else {  /* moves */
    shoalL_mapput(&h->large, b, osize, sg);  /* cannot fail: there was room */
    pthread_mutex_unlock(&h->largelock);
    if (flags == 0 || (p = shoalL_largealloc(h, nsize, FORGROWTH)) == NULL)
      return NULL;
    memcpy(p, b, osize);
    shoalL_largefree(h, b);
    return p;
  }
  shoalL_mapput(&h->large, b, size, sg);  /* cannot fail: there was room */
  pthread_mutex_unlock(&h->largelock);
  if (size > osize) {
    unpoison(b + osize, size - osize);
    if (fresh > 0) {
      freshroom(h, fresh);
      shoalM_populate(b + osize, b + size);
    }
  }
  return b;
}


/*
** A large block resized large: its pages move, not its bytes ('flags' 0:
** it stays in place). A block that keeps half its mapping or more keeps
** all of it, the rest as its tail, and grows back into it in place: Lua
** halves its string table at a collection and grows it again as strings
** come (no system call, no fault: stringchurn 3% faster). The tail goes
** back when the block shrinks below half, is freed, or at a trim: not
** after a delay, since giving back pages costs milliseconds in a large
** process and a delay moved that into the program's next steps. A growth
** first takes the cached pages right after it, in place. A block that
** grows into other cached pages has its bytes copied instead, outside the
** lock: copying is cheaper than faulting in as many fresh pages. NULL: no
** memory; the block stays as it was, its tail too, and the cached pages
** it took go back to the cache (else they stayed in the block for good,
** out of a trim's reach).
*/
void *shoalL_largeresize (ShoalHeap *h, void *b, size_t nsize, int flags) {
  size_t size = pageround(nsize), osize, mapsize, tail;
  void *p;
  Mapping m, old;
  Segment *sg;
  pthread_mutex_lock(&h->largelock);
  maptakeentry(&h->large, b, &old);
  osize = mapsize = old.size;
  tail = old.tail;  /* kept, should a growth fail */
  sg = old.seg;
  if (sg != NULL) return mediumresize(h, sg, b, osize, nsize, flags);
  if (size <= osize && size >= osize / 2) {  /* keeps its mapping */
    /* cannot fail: there was room */
    shoalL_mapput(&h->large, b, osize, NULL)->tail = osize - size;
    pthread_mutex_unlock(&h->largelock);
    poison((char *)b + size, osize - size);
    unpoison(b, size);
    return b;
  }
  unpoison(b, osize);  /* its tail too, which it may copy or give back */
  if (size > osize) osize += intotail(h, b, osize, size);
  if (size > osize && flags != 0 &&
      (m = fromcache(h, size, 0, 1)).base != NULL) {
    /* meanwhile other threads only take blocks out of 'large' (a shrink
       puts its block back): the room 'b' left stays */
    pthread_mutex_unlock(&h->largelock);
    unpoison(m.base, m.size);
    memcpy(m.base, b, osize);
    pthread_mutex_lock(&h->largelock);
    tocache(h, b, osize);
    /* cannot fail: there was room */
    shoalL_mapput(&h->large, m.base, m.size, NULL);
    pthread_mutex_unlock(&h->largelock);
    return m.base;
  }
  if (size == osize) p = b;
  else {
    p = remap(b, osize, size, flags);
    if (p == MAP_FAILED && shoalL_uncacheall(h) > 0)  /* see 'mapfresh' */
      p = remap(b, osize, size, flags);
    if (p == MAP_FAILED) {  /* as it was */
      p = NULL;
      if (osize > mapsize) tocache(h, (char *)b + mapsize, osize - mapsize);
      size = osize = mapsize;
      poison((char *)b + mapsize - tail, tail);
    }
  }
  /* cannot fail: there was room */
  shoalL_mapput(&h->large, p ? p : b, size, NULL)->tail = p ? 0 : tail;
  pthread_mutex_unlock(&h->largelock);
  if (p != NULL) {
    shoalA_countmapped(h, (ptrdiff_t)size - (ptrdiff_t)osize);
    if (size > osize) shoalM_populate((char *)p + osize, (char *)p + size);
  }
  return p;
}


/*
** For tests, while no other thread frees or shrinks: are the cache's
** entries in the order they were freed, does 'cachebytes' count them,
** do segments' longest runs and 'dirtybytes' match their pages, do
** blocks use half their mappings or more (tails), is no
** segment due later than a dirty page of it will have waited PURGEDELAY
** ms, nor the heap later than a segment, are a medium block's pages used,
** and does 'mapped' count exactly the segments, the mappings and the
** cache?
*/
int shoalA_largeexact (ShoalHeap *h) {
  size_t cached = 0, mapped = 0, dirty = 0;
  int ok = 1;
  long now;
  pthread_mutex_lock(&h->largelock);
  now = nowms();
  for (int i = 0; i < h->ncached; i++) {
    cached += h->cache[i].size;
    if (i > 0 && h->cache[i].freedat < h->cache[i - 1].freedat) ok = 0;
  }
  for (Segment *sg = h->segs; sg != NULL; sg = sg->next) {
    for (int w = 0; w < SEGPAGES / 64; w++)
      if (sg->used[w] & sg->dirty[w]) ok = 0;  /* a page both */
    if (sg->maxfree != shoalM_slowlongest(sg->used, 0) ||
        sg->maxdirty != shoalM_slowlongest(sg->dirty, 1))
      ok = 0;
    for (int i = 0; i < SEGPAGES; i++) {
      if (!isset(sg->dirty, i)) continue;
      dirty += PAGE;
      if (now - dirtyage(sg, i, now) + PURGEDELAY < sg->due)
        ok = 0;  /* the page would wait longer */
    }
    if (sg->maxdirty > 0 && sg->due < h->runsdue) ok = 0;
    mapped += SEGSIZE;
  }
  for (size_t i = 0; i < h->large.cap; i++) {
    Mapping *m = &h->large.slot[i];
    if (m->base == NULL) continue;
    if (2 * m->tail > m->size || m->tail % PAGE != 0 ||
        (m->tail > 0 && m->seg != NULL))
      ok = 0;  /* a block keeps at least half its mapping */
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

/* }====================================================== */
