/*
** alloc.c
** shoal_alloc: random allocations, resizes and frees checked against a
** reference (every byte written is read back intact, and the accounting
** matches); frees and shrinks from another thread, alone and while the
** owner works; limits; memory given back to the OS;
** VMs created and closed in a loop without growth.
*/

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "shoal.h"
#include "lauxlib.h"
#include "lualib.h"

#include "t.h"

/* lalloc.c, for tests: do a heap's notes of remotely shrunk blocks (counts
   and lists per slab and per heap) match its table of them exactly? */
extern int shoalA_shrunkexact (ShoalHeap *h);
extern int shoalA_largeexact (ShoalHeap *h);
extern void shoalA_failremaps (int n);
extern void shoalA_splitremaps (int n);
extern void shoalA_mediumblocks (int on);
extern int shoalA_bitmaps (int rounds, unsigned seed);
extern size_t shoalA_dirty (ShoalHeap *h);
extern int shoalA_spares (int drop);
extern int shoalA_sparemaps (int drop);
extern int shoalA_parked (ShoalHeap *h);
extern size_t shoalA_mixedruns (ShoalHeap *h);
extern void shoalA_failslabs (int n);
extern void shoalA_failmaps (int n);
extern void shoalA_failmmaps (int n);
extern void shoalA_failheads (int n);
extern void shoalA_purgedelay (int ms);
extern void shoalA_pagesize (long n);
extern void shoalA_nopopulate (int on);

/* run as 'alloc mapped': every large block a mapping of its own (else
   those up to 256 KB are pages of the heap's segments: medium blocks) */
static int mapped;

#if !defined(__SANITIZE_THREAD__)  /* (under TSan no check asks) */
/* under valgrind, which preloads its 'vgpreload' libraries */
static int valgrind (void) {
  const char *pre = getenv("LD_PRELOAD");
  return pre != NULL && strstr(pre, "vgpreload") != NULL;
}
#endif

/* sanitizers and valgrind keep shadow memory of their own: RSS tells
   nothing there */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RSS_CHECKS	0
#else
#define RSS_CHECKS	(!valgrind())
#endif

#define NBLOCKS		4000
#define NOPS		300000


static size_t rss_kb (void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL) return 0;
  if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
  fclose(f);
  return (size_t)resident * (size_t)(sysconf(_SC_PAGESIZE) / 1024);
}


/*
** Kept pages and cached mappings wait PURGEDELAY (500 ms) before going back
** to the OS: a check that they are still there holds only if the steps
** before it took less, which a loaded machine need not grant. Such checks
** are made only when the steps took less than SOON ms.
*/
#define SOON		400

static long nowms (void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static uint64_t rnd = 88172645463325252u;
static size_t next (size_t n) {  /* xorshift: deterministic */
  rnd ^= rnd << 13; rnd ^= rnd >> 7; rnd ^= rnd << 17;
  return (size_t)(rnd % n);
}


static int smallonly;  /* randsize: 1 to 256 bytes only */

static size_t randsize (void) {
  if (smallonly) return 1 + next(256);
  switch (next(10)) {
    case 0:  /* medium, large, now and then very large */
      return next(200) == 0 ? 16385 + next(1000000) : 2049 + next(60000);
    case 1: case 2: return 1 + next(2048);
    default: return 1 + next(200);  /* most Lua objects are small */
  }
}


static void fill (unsigned char *p, size_t n, unsigned char tag) {
  for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(tag + i);
}


/* The process's spare segments and mappings unmapped: a test's heaps
   start on fresh ones, not an earlier test's (see test_spares). */
static void nospares (void) {
  shoalA_spares(1);
  shoalA_sparemaps(1);
}

/* 'n' bytes rounded up to whole pages: what a large block maps */
static size_t pageup (size_t n) {
  return (n + 4095) / 4096 * 4096;
}

/* Is the page at 'a' in memory? */
static int inmemory (uintptr_t a) {
  unsigned char v = 0;
  return mincore((void *)(a & ~(uintptr_t)4095), 4096, &v) == 0 && (v & 1);
}

/* Pages of [p, p + n) in memory. */
static int pagesin (const void *p, size_t n) {
  int count = 0;
  for (size_t k = 0; k < n; k += 4096) count += inmemory((uintptr_t)p + k);
  return count;
}

static int intact (const unsigned char *p, size_t n, unsigned char tag) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != (unsigned char)(tag + i)) return 0;
  return 1;
}


/* with a trim every 'trimevery' operations (0: none); the pages trims
   gave back of slabs partly used, and of the MIXED slabs, whose runs
   are found again and merged at each trim ('slots' live blocks at most:
   a few hundred keep them in the MIXED slabs) */
static void test_random (int trimevery, int slots) {
  static unsigned char *block[NBLOCKS];
  static size_t size[NBLOCKS];
  static unsigned char tag[NBLOCKS];
  ShoalHeap *h = shoal_heapnew();
  shoal_MemStats st;
  size_t live = 0;
  int bad = 0, parked = 0, runs = 0;
  for (int op = 0; op < NOPS && !bad; op++) {
    int i = (int)next((size_t)slots);
    if (trimevery > 0 && op % trimevery == 0) {
      shoal_heaptrim(h);
      parked += shoalA_parked(h);
      runs += shoalA_mixedruns(h) > 0;
    }
    if (block[i] == NULL) {  /* allocate */
      size_t n = randsize();
      block[i] = shoal_alloc(h, NULL, 5 /* a type tag */, n);
      if (block[i] == NULL) { bad = 1; break; }
      size[i] = n; tag[i] = (unsigned char)op;
      fill(block[i], n, tag[i]);
      live += n;
    }
    else if (next(2)) {  /* resize, keeping the common prefix */
      size_t n = randsize(), keep = n < size[i] ? n : size[i];
      if (!intact(block[i], size[i], tag[i])) { bad = 2; break; }
      block[i] = shoal_alloc(h, block[i], size[i], n);
      if (block[i] == NULL || !intact(block[i], keep, tag[i])) { bad = 3; break; }
      live += n - size[i];
      size[i] = n; tag[i] = (unsigned char)op;
      fill(block[i], n, tag[i]);
    }
    else {  /* free */
      if (!intact(block[i], size[i], tag[i])) { bad = 4; break; }
      shoal_alloc(h, block[i], size[i], 0);
      live -= size[i];
      block[i] = NULL;
    }
  }
  T_EQI(bad, 0);
  if (trimevery > 0 && !smallonly) T_OK(parked > 0);
  if (trimevery > 0 && smallonly) T_OK(runs > NOPS / trimevery / 4);
  shoal_heapstats(h, &st);
  T_EQI(st.inuse, live);  /* accounting matches the reference */
  T_OK(st.peak >= live && st.mapped >= live);
  for (int i = 0; i < NBLOCKS; i++) {
    if (block[i] != NULL) {
      T_OK(intact(block[i], size[i], tag[i]) || (printf("# block %d\n", i), 0));
      shoal_alloc(h, block[i], size[i], 0);
      block[i] = NULL;
    }
  }
  shoal_heapstats(h, &st);
  T_EQI(st.inuse, 0);
  T_OK(shoalA_largeexact(h));
  shoal_heapfree(h);
}


/* Blocks allocated by the owner, freed by another thread at the same time. */
#define NREMOTE	20000
static void *queue[NREMOTE];
static _Atomic int produced;

/* small, medium, and every 50th block large */
static size_t remotesize (int i) {
  return (i % 50 == 0) ? 20000 + (size_t)i : 48 + (size_t)(i % 3) * 1000;
}


static void *remote_freer (void *arg) {
  ShoalHeap *h = arg;
  for (int i = 0; i < NREMOTE; i++) {
    while (__atomic_load_n(&produced, __ATOMIC_ACQUIRE) <= i) ;  /* wait for block i */
    shoal_freeremote(h, queue[i], remotesize(i));
  }
  return NULL;
}


static void test_remote (void) {
  ShoalHeap *h = shoal_heapnew();
  pthread_t th;
  shoal_MemStats st;
  T_EQI(pthread_create(&th, NULL, remote_freer, h), 0);
  for (int i = 0; i < NREMOTE; i++) {
    size_t n = remotesize(i);
    queue[i] = shoal_alloc(h, NULL, 0, n);
    memset(queue[i], 0xAB, n);
    __atomic_store_n(&produced, i + 1, __ATOMIC_RELEASE);
    if (i % 100 == 0) {  /* the owner goes on allocating meanwhile */
      void *p = shoal_alloc(h, NULL, 0, 48);
      shoal_alloc(h, p, 48, 0);
    }
  }
  T_EQI(pthread_join(th, NULL), 0);
  shoal_heapstats(h, &st);
  T_EQI(st.inuse, 0);
  /* all blocks out at once, all freed by another thread, all again: the
     memory freed remotely serves the second round */
  for (int i = 0; i < NREMOTE; i++)
    queue[i] = shoal_alloc(h, NULL, 0, remotesize(i));
  shoal_heapstats(h, &st);
  size_t mapped = st.mapped;
  __atomic_store_n(&produced, 0, __ATOMIC_RELEASE);
  T_EQI(pthread_create(&th, NULL, remote_freer, h), 0);
  __atomic_store_n(&produced, NREMOTE, __ATOMIC_RELEASE);
  T_EQI(pthread_join(th, NULL), 0);
  for (int i = 0; i < NREMOTE; i++)
    queue[i] = shoal_alloc(h, NULL, 0, remotesize(i));
  shoal_heapstats(h, &st);
  /* less if cached mappings expired meanwhile; 1 MB more at most: what a
     heap may hold unused as it takes fresh pages (the large blocks are
     12 MB) */
  T_OK(st.mapped <= mapped + 1024 * 1024);
  if (st.mapped > mapped + 1024 * 1024)
    printf("# mapped %zu then %zu\n", mapped, st.mapped);
  for (int i = 0; i < NREMOTE; i++)
    shoal_alloc(h, queue[i], remotesize(i), 0);
  T_OK(shoalA_largeexact(h));
  shoal_heapfree(h);
}


/*
** A fresh heap carves blocks of every class from one MIXED slab, and reuses
** them by class, whether freed by the owner or by another thread. A block
** whose size is a multiple of 16 is aligned to 16.
*/
#define NSIZES	27
static const size_t mixsize[NSIZES] = {
  16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256,
  320, 384, 448, 512, 640, 768, 896, 1024, 1280, 1536, 1792, 2048
};
static void *mixblock[NSIZES];

static void *mixed_freer (void *arg) {
  for (int i = 0; i < NSIZES; i++) shoal_freeremote(arg, mixblock[i], mixsize[i]);
  return NULL;
}


static int sameblocks (void *const *old, void *const *now) {
  for (int i = 0; i < NSIZES; i++) if (old[i] != now[i]) return 0;
  return 1;
}


static void test_mixed (void) {
  ShoalHeap *h = shoal_heapnew();
  void *first[NSIZES], *again[NSIZES];
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  pthread_t th;
  shoal_MemStats st;
  for (int i = 0; i < NSIZES; i++) {
    first[i] = mixblock[i] = shoal_alloc(h, NULL, 0, mixsize[i]);
    fill(first[i], mixsize[i], (unsigned char)i);
    if ((uintptr_t)first[i] < lo) lo = (uintptr_t)first[i];
    if ((uintptr_t)first[i] + mixsize[i] > hi) hi = (uintptr_t)first[i] + mixsize[i];
  }
  T_OK(hi - lo < 64 * 1024);  /* one slab, not one per class */
  for (int i = 0; i < NSIZES; i++)
    T_EQI((uintptr_t)first[i] % (mixsize[i] % 16 == 0 ? 16 : 8), 0);
  for (int i = 0; i < NSIZES; i++) T_OK(intact(first[i], mixsize[i], (unsigned char)i));
  /* freed by the owner (largest first), then taken again: the same blocks */
  for (int i = NSIZES - 1; i >= 0; i--) shoal_alloc(h, first[i], mixsize[i], 0);
  for (int i = 0; i < NSIZES; i++) again[i] = mixblock[i] = shoal_alloc(h, NULL, 0, mixsize[i]);
  T_OK(sameblocks(first, again));
  /* freed by another thread: taken back when the owner next needs a block */
  T_EQI(pthread_create(&th, NULL, mixed_freer, h), 0);
  T_EQI(pthread_join(th, NULL), 0);
  shoal_heapstats(h, &st);
  T_EQI(st.inuse, 0);
  for (int i = 0; i < NSIZES; i++) {
    again[i] = shoal_alloc(h, NULL, 0, mixsize[i]);
    fill(again[i], mixsize[i], (unsigned char)(i + 100));
  }
  T_OK(sameblocks(first, again));
  for (int i = 0; i < NSIZES; i++) {
    T_OK(intact(again[i], mixsize[i], (unsigned char)(i + 100)));
    shoal_alloc(h, again[i], mixsize[i], 0);
  }
  shoal_heapfree(h);
}


/*
** Blocks of 24, 40 and 56 bytes (an upvalue is 40, a table 56) take no
** more than that; blocks of the other classes are aligned to 16. N blocks
** outgrow the MIXED slabs, so that most come from a slab of their class.
*/
static void test_classes (void) {
  enum { N = 20000 };
  static const size_t size[] = {24, 40, 56, 48, 200}, room[] = {24, 40, 56, 48, 224};
  void **p = malloc(N * sizeof(void *));
  for (int k = 0; k < 5; k++) {
    ShoalHeap *h = shoal_heapnew();
    int tight = 0, misaligned = 0;
    for (int i = 0; i < N; i++) {
      p[i] = shoal_alloc(h, NULL, 0, size[k]);
      memset(p[i], i, size[k]);
      if (i > 0 && llabs((char *)p[i] - (char *)p[i - 1]) == (long long)room[k])
        tight++;  /* MIXED slabs carve 24, 40 and 56 from the top down */
      if (room[k] % 16 == 0 && (uintptr_t)p[i] % 16 != 0) misaligned++;
    }
    T_OK(tight > N * 9 / 10);
    T_EQI(misaligned, 0);
    for (int i = 0; i < N; i++) shoal_alloc(h, p[i], size[k], 0);
    shoal_heapfree(h);
  }
  free(p);
}


/*
** 'n' blocks of 'size' bytes carved from one slab, the first at 'b':
** are the pages they span in memory (or, if 'off', none but the
** header's), and at most one page more? Nothing writes the blocks, so a
** page in memory is one the allocator asked for.
*/
static void checkahead (ShoalHeap *h, uintptr_t b, size_t size, int n,
                        int off) {
  uintptr_t base = b & ~(uintptr_t)(64 * 1024 - 1), lo = b, hi = b + size;
  int spanin = 1, maxahead = 0, maxin = 0, oneslab = 1;
  for (int i = 0; i < n; i++) {
    int ahead = 0, in = 0;
    if (i > 0) {
      b = (uintptr_t)shoal_alloc(h, NULL, 0, size);
      oneslab &= (b & ~(uintptr_t)(64 * 1024 - 1)) == base;
      if (b < lo) lo = b;
      if (b + size > hi) hi = b + size;
    }
    for (uintptr_t a = base + 4096; a < base + 64 * 1024; a += 4096) {
      int carved = a + 4096 > lo && a < hi;
      if (inmemory(a)) {
        in++;
        ahead += !carved;
      }
      else spanin &= !carved;
    }
    if (ahead > maxahead) maxahead = ahead;
    if (in > maxin) maxin = in;
  }
  T_OK(oneslab);
  T_OK(inmemory(base));  /* the header's */
  if (off) T_EQI(maxin, 0);
  else {
    T_OK(spanin);
    T_EQI(maxahead, 1);  /* a page ahead, never more */
  }
}

/*
** A fresh heap's slabs are faulted in as they are carved, a page ahead:
** its MIXED slab bottom up (64 bytes) and top down (40), and a slab of a
** class (224 bytes), once the MIXED slabs are full. With
** shoalA_nopopulate (a kernel without MADV_POPULATE_WRITE), pages fault
** in only as written.
*/
static void test_prefault (void) {
  for (int off = 0; off <= 1; off++) {
    for (int k = 0; k < 3; k++) {
      static const size_t size[] = {64, 40, 224};
      uintptr_t b, mixed[2] = {0, 0};
      ShoalHeap *h;
      nospares();  /* pages never touched before */
      shoalA_nopopulate(off);
      h = shoal_heapnew();
      b = (uintptr_t)shoal_alloc(h, NULL, 0, size[k]);
      if (k == 2) {  /* past the MIXED slabs: the first block of another */
        for (int m = 0; ; b = (uintptr_t)shoal_alloc(h, NULL, 0, size[k])) {
          uintptr_t sb = b & ~(uintptr_t)(64 * 1024 - 1);
          if (sb == mixed[0] || sb == mixed[1]) continue;
          if (m == 2) break;
          mixed[m++] = sb;
        }
      }
      checkahead(h, b, size[k], k == 2 ? 250 : 500, off);
      shoal_heapfree(h);
    }
  }
  shoalA_nopopulate(0);
}


/*
** The library's calls of madvise that fault pages in, counted: the link
** wraps 'madvise' (test.mk: -Wl,--wrap=madvise).
*/
static atomic_long npopulates;

int __real_madvise (void *addr, size_t len, int advice);
int __wrap_madvise (void *addr, size_t len, int advice) {
  if (advice == 23)  /* MADV_POPULATE_WRITE */
    atomic_fetch_add(&npopulates, 1);
  return __real_madvise(addr, len, advice);
}

/*
** A heap on pages still in memory (the spare segment a closed heap left,
** its blocks written) is not asked for them: its slabs are not cold. On
** fresh pages, the same blocks are.
*/
static void test_prefaultwarm (void) {
  enum { N = 3000 };  /* 192 KB: the MIXED slabs, then a class's */
  void **p = malloc(N * sizeof(void *));
  for (int round = 0; round < 2; round++) {
    ShoalHeap *h;
    long n0;
    if (round == 0) nospares();  /* fresh pages */
    else T_OK(shoalA_spares(0) > 0);  /* the first heap's */
    h = shoal_heapnew();
    n0 = atomic_load(&npopulates);
    for (int i = 0; i < N; i++) {
      p[i] = shoal_alloc(h, NULL, 0, 64);
      memset(p[i], 1, 64);
    }
    if (round == 0) T_OK(atomic_load(&npopulates) > n0);
    else T_EQI(atomic_load(&npopulates) - n0, 0);
    shoal_heapfree(h);
  }
  free(p);
}


/*
** Blocks over 16 KB (medium, or mappings over 256 KB: both kinds in the
** run 'alloc mapped') have their fresh pages faulted in at once, new or
** grown, as Lua writes them whole; but for a full userdata's (Lua gives
** its type as the old size), which C code may use sparsely. With
** shoalA_nopopulate, none are.
*/
static void test_prefaultlarge (void) {
  static const size_t size[] = {64 * 1024, 1024 * 1024};
  for (int off = 0; off <= 1; off++) {
    for (int k = 0; k < 2; k++) {
      size_t n = size[k];
      ShoalHeap *h;
      char *b, *u;
      nospares();  /* pages never touched before */
      shoalA_nopopulate(off);
      h = shoal_heapnew();
      b = shoal_alloc(h, NULL, 0, n);
      u = shoal_alloc(h, NULL, LUA_TUSERDATA, n);
      if (!T_OK(b != NULL && u != NULL)) continue;
      T_EQI(pagesin(b, n), off ? 0 : (int)(n / 4096));
      T_EQI(pagesin(u, n), 0);
      for (int g = 0; g < 2; g++, n += n / 2) {  /* moved, then in place */
        if (!T_OK((b = shoal_alloc(h, b, n, n + n / 2)) != NULL)) break;
        T_EQI(pagesin(b + n, n / 2), off ? 0 : (int)(n / 2 / 4096));
      }
      if (b != NULL) shoal_alloc(h, b, n, 0);
      shoal_alloc(h, u, size[k], 0);
      shoal_heapfree(h);
    }
  }
  shoalA_nopopulate(0);
}


/*
** A block of 1 KB or more freed in a MIXED slab is carved again for small
** blocks of any class: a small VM's parser buffers serve its objects.
*/
static void test_spare (void) {
  ShoalHeap *h = shoal_heapnew();
  char *big = shoal_alloc(h, NULL, 0, 3000), *p[30];
  int inside = 0;
  memset(big, 1, 3000);
  shoal_alloc(h, big, 3000, 0);
  for (int i = 0; i < 30; i++) {
    p[i] = shoal_alloc(h, NULL, 0, 40 + (size_t)(i % 4) * 16);
    memset(p[i], 2, 40 + (size_t)(i % 4) * 16);
    if (p[i] >= big && p[i] < big + 3072) inside++;
  }
  T_EQI(inside, 30);
  for (int i = 0; i < 30; i++) shoal_alloc(h, p[i], 40 + (size_t)(i % 4) * 16, 0);
  shoal_heapfree(h);
}


static void *large_freer (void *arg) {
  void **job = arg;
  shoal_freeremote(job[0], job[1], 90000);
  return NULL;
}


/*
** Blocks over 16 KB are mapped straight from the OS, page-aligned. A freed
** one is kept a while for blocks it can hold or grow into, whoever freed
** it; a trim gives it back. A large block resized keeps its bytes.
*/
static void test_large (void) {
  if (!mapped) return;  /* a mappings' test */
  ShoalHeap *h = shoal_heapnew();
  shoal_MemStats st0, st;
  unsigned char *b, *again;
  void *job[2];
  pthread_t th;
  long t0;
  shoal_heapstats(h, &st0);
  b = shoal_alloc(h, NULL, 0, 100000);
  T_OK(b != NULL && (uintptr_t)b % 4096 == 0);
  fill(b, 100000, 7);
  shoal_heapstats(h, &st);
  T_OK(st.mapped >= st0.mapped + 100000);
  t0 = nowms();
  shoal_alloc(h, b, 100000, 0);
  again = shoal_alloc(h, NULL, 0, 90000);  /* its head; 3 pages stay cached */
  T_OK(again == b || nowms() - t0 >= SOON);
  job[0] = h;
  job[1] = again;
  T_EQI(pthread_create(&th, NULL, large_freer, job), 0);
  T_EQI(pthread_join(th, NULL), 0);
  /* the head grown back in place, into the 3 cached pages after it */
  again = shoal_alloc(h, NULL, 0, 100000);
  T_OK(again == b || nowms() - t0 >= SOON);
  fill(again, 100000, 9);
  again = shoal_alloc(h, again, 100000, 3000000);  /* grows */
  T_OK(again != NULL && intact(again, 100000, 9));
  fill(again, 3000000, 11);
  again = shoal_alloc(h, again, 3000000, 200000);  /* shrinks */
  T_OK(again != NULL && intact(again, 200000, 11));
  again = shoal_alloc(h, again, 200000, 1000);  /* becomes small */
  T_OK(again != NULL && intact(again, 1000, 11));
  shoal_alloc(h, again, 1000, 0);
  /* a cached mapping goes back once it has stayed 500 ms, when a slab
     next empties (the slabs are there first: a new slab would take the
     cache's place at once) */
  {
    enum { N = 5000 };
    void **p = malloc(N * sizeof(void *));
    shoal_MemStats cached, later;
    for (int i = 0; i < N; i++) p[i] = shoal_alloc(h, NULL, 0, 64);
    b = shoal_alloc(h, NULL, 0, 100000);
    shoal_alloc(h, b, 100000, 0);
    shoal_heapstats(h, &cached);
    usleep(600 * 1000);
    for (int i = 0; i < N; i++) shoal_alloc(h, p[i], 64, 0);
    shoal_heapstats(h, &later);
    T_OK(later.mapped + 100000 <= cached.mapped);
    free(p);
  }
  shoal_heaptrim(h);
  shoal_heapstats(h, &st);
  T_EQI(st.inuse, 0);
  T_OK(st.mapped < st0.mapped + 2 * 1024 * 1024);  /* slabs' segment only */
  T_OK(shoalA_largeexact(h));
  shoal_heapfree(h);
}


/*
** Cached pages serve what they can hold: a smaller block takes a cached
** mapping's head and leaves its tail cached for the next; a block that
** grows moves into cached pages, its bytes copied, and leaves its own
** pages cached. (Made only when the steps took less than SOON ms: the
** cache keeps a mapping PURGEDELAY ms.)
*/
static void test_largereuse (void) {
  if (!mapped) return;  /* a mappings' test */
  ShoalHeap *h = shoal_heapnew();
  shoal_MemStats st0, st;
  unsigned char *big, *a, *b, *grown, *again;
  long t0;
  shoal_heapstats(h, &st0);
  big = shoal_alloc(h, NULL, 0, 1000000);
  t0 = nowms();
  shoal_alloc(h, big, 1000000, 0);
  a = shoal_alloc(h, NULL, 0, 100000);  /* the head ... */
  b = shoal_alloc(h, NULL, 0, 100000);  /* ... then the next part */
  T_OK(a != NULL && b != NULL);
  T_OK((a == big && b == big + 102400) || nowms() - t0 >= SOON);
  fill(a, 100000, 21);
  fill(b, 100000, 22);
  shoal_heapstats(h, &st);
  T_OK(st.mapped <= st0.mapped + 1000000 + 4096 || nowms() - t0 >= SOON);
  /* 'a' grows to 600 KB: into the cache's rest (past 'b'), bytes copied */
  t0 = nowms();
  grown = shoal_alloc(h, a, 100000, 600000);
  T_OK(grown != NULL && intact(grown, 100000, 21) && intact(b, 100000, 22));
  T_OK(grown == big + 2 * 102400 || nowms() - t0 >= SOON);
  /* and 'a's own pages wait in the cache */
  again = shoal_alloc(h, NULL, 0, 100000);
  T_OK(again == a || nowms() - t0 >= SOON);
  fill(grown, 600000, 23);
  shoal_alloc(h, again, 100000, 0);
  shoal_alloc(h, b, 100000, 0);
  shoal_alloc(h, grown, 600000, 0);
  shoal_heaptrim(h);
  shoal_heapstats(h, &st);
  T_EQI(st.inuse, 0);
  T_OK(st.mapped <= st0.mapped);
  T_OK(shoalA_largeexact(h));
  shoal_heapfree(h);
}


/*
** A collection frees many large blocks at once, and the program then
** takes as many again one at a time: the cache keeps 256 of them (the
** newest; the others go back at once), so as many blocks come back from
** their pages (with their bytes) and only the rest are fresh.
*/
static void test_cachemany (void) {
  if (!mapped) return;  /* a mappings' test */
  enum { N = 300, KEPT = 256, SIZE = 40000, PAGES = 40960 };
  ShoalHeap *h = shoal_heapnew();
  void *p[N], *q[N];
  shoal_MemStats st0, st;
  int reused = 0, older = 0, ok = 1;
  long t0;
  for (int i = 0; i < N; i++) {
    ok &= (p[i] = shoal_alloc(h, NULL, 0, SIZE)) != NULL;
    if (p[i] != NULL) fill(p[i], SIZE, (unsigned char)(i + 1));
  }
  if (!T_OK(ok)) return;
  shoal_heapstats(h, &st0);
  t0 = nowms();
  for (int i = 0; i < N; i++) shoal_alloc(h, p[i], SIZE, 0);
  shoal_heapstats(h, &st);
  T_OK(st.mapped == st0.mapped - (N - KEPT) * PAGES || nowms() - t0 >= SOON);
  T_OK(shoalA_largeexact(h));
  for (int i = 0; i < N; i++) q[i] = shoal_alloc(h, NULL, 0, SIZE);
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++)
      if (q[i] == p[j] && intact(q[i], SIZE, (unsigned char)(j + 1))) {
        reused++;  /* its pages, not fresh ones at its address */
        older += (j < N - KEPT);
        break;
      }
  shoal_heapstats(h, &st);
  T_OK(reused == KEPT || nowms() - t0 >= SOON);
  T_EQI(older, 0);  /* the oldest went back, though all were freed in one ms */
  T_OK(st.mapped == st0.mapped || nowms() - t0 >= SOON);
  for (int i = 0; i < N; i++) shoal_alloc(h, q[i], SIZE, 0);
  T_OK(shoalA_largeexact(h));
  shoal_heapfree(h);
}


/*
** A block larger than every cached mapping grows the largest: only the
** pages it lacks are fresh, and it starts with that mapping's bytes. A
** smaller block takes a cached mapping's head, the rest staying cached
** however small: a later block grows it. The heap maps no page more than
** its blocks and its cache hold.
*/
static void test_cachegrow (void) {
  if (!mapped) return;  /* a mappings' test */
  ShoalHeap *h = shoal_heapnew();
  shoal_MemStats st0, st;
  unsigned char *a, *b, *c, *d;
  long t0;
  a = shoal_alloc(h, NULL, 0, 40960);  /* 10 pages */
  if (!T_OK(a != NULL)) return;
  fill(a, 40960, 3);
  shoal_heapstats(h, &st0);
  t0 = nowms();
  shoal_alloc(h, a, 40960, 0);  /* cached */
  b = shoal_alloc(h, NULL, 0, 61440);  /* 15 pages: 'a' grown by 5 */
  if (!T_OK(b != NULL)) return;
  T_OK(intact(b, 40960, 3) || nowms() - t0 >= SOON);
  shoal_heapstats(h, &st);
  T_OK(st.mapped == st0.mapped + 20480 || nowms() - t0 >= SOON);
  fill(b, 61440, 4);
  shoal_alloc(h, b, 61440, 0);
  c = shoal_alloc(h, NULL, 0, 57344);  /* 14 pages: b's head, 1 left cached */
  T_OK(c == b || nowms() - t0 >= SOON);
  shoal_heapstats(h, &st);
  T_OK(st.mapped == st0.mapped + 20480 || nowms() - t0 >= SOON);
  d = shoal_alloc(h, NULL, 0, 20480);  /* 5 pages: that one grown by 4 */
  T_OK(c != NULL && d != NULL);
  shoal_heapstats(h, &st);
  T_OK(st.mapped == st0.mapped + 20480 + 16384 || nowms() - t0 >= SOON);
  fill(c, 57344, 5);
  fill(d, 20480, 6);
  T_OK(intact(c, 57344, 5) && intact(d, 20480, 6));
  T_OK(shoalA_largeexact(h));
  /* when growing a cached mapping fails, it goes back and fresh pages
     serve: nothing lost, nothing counted twice */
  shoal_alloc(h, d, 20480, 0);  /* cached */
  shoalA_failremaps(1);
  d = shoal_alloc(h, NULL, 0, 81920);
  shoalA_failremaps(0);
  T_OK(d != NULL && shoalA_largeexact(h));
  if (d != NULL) {
    fill(d, 81920, 7);
    T_OK(intact(d, 81920, 7) && intact(c, 57344, 5));
    shoal_alloc(h, d, 81920, 0);
  }
  shoal_alloc(h, c, 57344, 0);
  T_OK(shoalA_largeexact(h));
  shoal_heapfree(h);
}


/*
** A mapping shrunk to half its size or more keeps the rest as its tail
** (no system call, nothing cached) and grows back into it in place, its
** bytes intact (a page given back would read zero); shrunk to less, or
** trimmed, it gives the tail back at once (cached and given back after a
** delay, tails put a pause of milliseconds into bench/frozen.lua's churn).
** A block over two of the kernel's mappings (grown into a cached mapping
** mapped just after it), which mremap refuses to resize, moves by copy.
*/
static void test_largetail (void) {
  enum { BIG = 1000000, HALF = 600000, SMALL = 300000 };
  const size_t tail = pageup(BIG) - pageup(HALF);
  ShoalHeap *h = shoal_heapnew();
  shoal_MemStats st0, st;
  unsigned char *a, *b;
  void *many[40];
  a = shoal_alloc(h, NULL, 0, BIG);  /* a mapping, medium blocks or not */
  if (!T_OK(a != NULL)) return;
  fill(a, BIG, 31);
  shoal_heapstats(h, &st0);
  b = shoal_alloc(h, a, BIG, HALF);
  T_OK(b == a && intact(b, HALF, 31));
  shoal_heapstats(h, &st);
  T_EQI(st.mapped, st0.mapped);  /* the tail stays */
  T_EQI(st.inuse, st0.inuse - (BIG - HALF));
  T_OK(shoalA_largeexact(h));
  b = shoal_alloc(h, b, HALF, BIG);  /* back into its tail */
  if (!T_OK(b == a && intact(b, BIG, 31))) return;
  shoal_heapstats(h, &st);
  T_EQI(st.mapped, st0.mapped);
  T_OK(shoalA_largeexact(h));
  b = shoal_alloc(h, b, BIG, SMALL);  /* below half: the rest goes */
  T_OK(b != NULL && intact(b, SMALL, 31));
  shoal_heapstats(h, &st);
  T_OK(st.mapped + (BIG - SMALL) - 4096 <= st0.mapped);
  b = shoal_alloc(h, b, SMALL, BIG);  /* fresh pages past SMALL */
  if (!T_OK(b != NULL && intact(b, SMALL, 31))) return;
  fill(b, BIG, 32);
  b = shoal_alloc(h, b, BIG, HALF);
  for (int i = 0; i < 40; i++)  /* the map grows: the tail moves with it */
    many[i] = shoal_alloc(h, NULL, 0, 20000);
  shoal_heapstats(h, &st0);
  shoal_heaptrim(h);  /* the tail goes */
  shoal_heapstats(h, &st);
  T_OK(b != NULL && intact(b, HALF, 32));
  T_EQI(st.mapped, st0.mapped - tail);
  T_OK(shoalA_largeexact(h));
  for (int i = 0; i < 40; i++) shoal_alloc(h, many[i], 20000, 0);
  b = shoal_alloc(h, b, HALF, BIG);
  if (!T_OK(b != NULL && intact(b, HALF, 32))) return;
  /* a block over two of the kernel's mappings (grown into cached pages
     mapped apart), which mremap refuses to resize, moves by copy */
  shoal_heaptrim(h);  /* no cached mapping to move into */
  shoalA_splitremaps(1);
  a = shoal_alloc(h, b, BIG, 2 * BIG);
  shoalA_splitremaps(0);
  T_OK(a != NULL && a != b && intact(a, HALF, 32));
  if (a == NULL) a = b;
  else fill(a, 2 * BIG, 33);
  T_OK(shoalA_largeexact(h));
  shoal_alloc(h, a, a == b ? BIG : 2 * BIG, 0);
  shoal_heapstats(h, &st);
  T_EQI(st.inuse, 0);
  T_OK(shoalA_largeexact(h));
  shoal_heapfree(h);
}


/*
** A large block that cannot grow (its mapping cannot be grown or moved,
** and no cached mapping holds the new size) stays as it was: NULL, its
** bytes intact, usable, and counted as before; Lua raises "not enough
** memory" and goes on.
*/
static void test_largegrowfail (void) {
  if (!mapped) return;  /* a mappings' test */
  nospares();  /* none to give back when the growth fails: no retry */
  ShoalHeap *h = shoal_heapnew();
  lua_State *L;
  shoal_MemStats st0, st;
  unsigned char *a = shoal_alloc(h, NULL, 0, 40960), *b;
  if (!T_OK(a != NULL)) return;
  fill(a, 40960, 8);
  shoal_heapstats(h, &st0);
  shoalA_failremaps(1);
  b = shoal_alloc(h, a, 40960, 200000);
  shoalA_failremaps(0);
  shoal_heapstats(h, &st);
  T_OK(b == NULL && intact(a, 40960, 8));
  T_EQI(st.inuse, st0.inuse);
  T_OK(st.mapped == st0.mapped && shoalA_largeexact(h));
  b = shoal_alloc(h, a, 40960, 200000);  /* and once it can */
  T_OK(b != NULL && intact(b, 40960, 8));
  if (b != NULL) shoal_alloc(h, b, 200000, 0);
  T_OK(shoalA_largeexact(h));
  shoal_heapfree(h);
  L = shoal_newstate(0);
  if (!T_OK(L != NULL)) return;
  luaL_openlibs(L);
  T_OK(luaL_dostring(L, "s = string.rep('x', 100000)") == LUA_OK);
  shoalA_failremaps(1000);
  T_OK(luaL_dostring(L, "local t = {} for i = 1, 100000 do t[i] = i end")
       != LUA_OK && strstr(lua_tostring(L, -1), "not enough memory") != NULL);
  shoalA_failremaps(0);
  lua_settop(L, 0);
  T_OK(luaL_dostring(L, "local t = {} for i = 1, 100000 do t[i] = i end "
                        "return #t + #s") == LUA_OK &&
       lua_tointeger(L, -1) == 200000);
  lua_close(L);
}


/*
** A large block whose growth fails keeps its tail, which a trim gives back
** as before, and gives the cached pages after it that it took to grow
** into back to the cache, which a trim unmaps: before, both stayed in the
** block, out of a trim's reach, until it was freed.
*/
static void test_largegrowkeep (void) {
  enum { BIG = 1000000, HALF = 600000, ONE = 1024 * 1024 };
  const size_t tail = pageup(BIG) - pageup(HALF);
  ShoalHeap *h;
  shoal_MemStats st0, st;
  unsigned char *a, *b, *c, *blk[8];
  int nblk = 0;
  nospares();  /* none to give back when the growth fails: no retry */
  h = shoal_heapnew();
  a = shoal_alloc(h, NULL, 0, BIG);  /* a mapping, medium blocks or not */
  if (!T_OK(a != NULL)) return;
  fill(a, HALF, 21);
  a = shoal_alloc(h, a, BIG, HALF);  /* in place, with a tail */
  shoal_heapstats(h, &st0);
  shoalA_failremaps(1000);
  b = shoal_alloc(h, a, HALF, 2 * BIG);
  shoalA_failremaps(0);
  T_OK(b == NULL && intact(a, HALF, 21) && shoalA_largeexact(h));
  shoal_heaptrim(h);
  shoal_heapstats(h, &st);
  T_EQI(st.mapped, st0.mapped - tail);
  shoal_alloc(h, a, HALF, 0);
  shoal_heapfree(h);
  nospares();
  h = shoal_heapnew();
  b = c = NULL;
  for (int i = 0; i < 8 && b == NULL; i++) {  /* two side by side */
    if ((blk[i] = shoal_alloc(h, NULL, 0, ONE)) == NULL) break;
    nblk = i + 1;
    for (int j = 0; j < i; j++) {
      if (blk[i] + ONE == blk[j]) b = blk[i], c = blk[j];
      else if (blk[j] + ONE == blk[i]) b = blk[j], c = blk[i];
    }
  }
  for (int i = 0; i < nblk; i++)
    if (blk[i] != b && blk[i] != c) shoal_alloc(h, blk[i], ONE, 0);
  shoal_heaptrim(h);  /* those, cached, go */
  if (b != NULL) {  /* the kernel mapped 'b' just below 'c' */
    fill(b, ONE, 22);
    shoal_alloc(h, c, ONE, 0);  /* cached, just after 'b' */
    shoal_heapstats(h, &st0);
    shoalA_failremaps(1000);
    a = shoal_alloc(h, b, ONE, 3 * ONE);  /* takes c's pages, then fails */
    shoalA_failremaps(0);
    T_OK(a == NULL && intact(b, ONE, 22) && shoalA_largeexact(h));
    shoal_heaptrim(h);  /* c's pages, cached again, go */
    shoal_heapstats(h, &st);
    T_EQI(st.mapped, st0.mapped - ONE);
    shoal_alloc(h, b, ONE, 0);
  }
  else
    printf("# two mappings not side by side: a growth into cached pages "
           "not tried\n");
  shoal_heapfree(h);
}


/* The segments' bitmaps, a word at a time, match a page at a time. */
static void test_bitmaps (void) {
  if (mapped) return;
  T_EQI(shoalA_bitmaps(20000, 1), 0);
}


/*
** Blocks over 16 KB up to 256 KB are runs of pages of the heap's segments,
** taken top down, with no mapping of their own. A freed run's pages wait,
** dirty, for the next block; a block grows in place into free pages after
** it, shrinks in place, and moves to a mapping past 256 KB; a trim gives
** the dirty pages back and unmaps a segment left with nothing in it.
*/
static void test_medium (void) {
  ShoalHeap *h;
  shoal_MemStats st0, st;
  unsigned char *a, *b, *c;
  if (mapped) return;  /* a medium blocks' test */
  h = shoal_heapnew();
  shoal_heapstats(h, &st0);
  a = shoal_alloc(h, NULL, 0, 40000);  /* 10 pages: the segment's top */
  b = shoal_alloc(h, NULL, 0, 40000);  /* the 10 below */
  if (!T_OK(a != NULL && b != NULL)) return;
  T_OK((uintptr_t)a % 4096 == 0 && b + 40960 == a);
  shoal_heapstats(h, &st);
  T_OK(st.mapped == st0.mapped + 1024 * 1024);  /* one segment, no more */
  fill(a, 40000, 1);
  fill(b, 40000, 2);
  T_OK(shoalA_largeexact(h));
  /* freed, its pages wait dirty: the next such block takes them */
  shoal_alloc(h, a, 40000, 0);
  T_OK(shoalA_largeexact(h));
  c = shoal_alloc(h, NULL, 0, 40000);
  T_OK(c == a && intact(c, 40000, 1));
  /* 'b' grows into the pages after it, freed: in place */
  shoal_alloc(h, c, 40000, 0);
  c = shoal_alloc(h, b, 40000, 81920);
  T_OK(c == b && c != NULL && intact(c, 40000, 2));
  if (c == NULL) return;
  fill(c, 81920, 3);
  /* shrinks in place; the 15 pages of its tail serve the next block */
  b = shoal_alloc(h, c, 81920, 20000);
  T_OK(b == c && intact(b, 20000, 3));
  a = shoal_alloc(h, NULL, 0, 61440);
  T_OK(a == b + 20480 && shoalA_largeexact(h));
  /* past 256 KB: a mapping of its own, bytes copied */
  c = shoal_alloc(h, b, 20000, 300000);
  T_OK(c != NULL && c != b && intact(c, 20000, 3));
  shoal_heapstats(h, &st);
  T_OK(st.mapped >= st0.mapped + 1024 * 1024 + 300000);
  T_OK(shoalA_largeexact(h));
  shoal_alloc(h, c, 300000, 0);
  shoal_alloc(h, a, 61440, 0);
  shoal_heaptrim(h);
  shoal_heapstats(h, &st);
  T_EQI(st.inuse, 0);
  T_OK(st.mapped == st0.mapped);  /* no slab in the segment: it went */
  T_OK(shoalA_largeexact(h));
  shoal_heapfree(h);
}


/*
** A block that grows (a luaL_Buffer's box: by half at a time, from a small
** block) goes to the bottom of the longest run and grows in place, where
** at the top of its run each growth moved it: in a fresh segment (above
** its slab), then among the dirty pages it left, the longest of two runs.
** A new block still takes the top of its run.
*/
static void test_mediumgrow (void) {
  enum { SMALL = 15552, MB = 1024 * 1024 };
  ShoalHeap *h;
  shoal_MemStats st0, st;
  unsigned char *b, *c, *top, *first = NULL;
  uintptr_t base = 0;  /* the segment's */
  size_t n;
  if (mapped) return;  /* a medium blocks' test */
  nospares();  /* fresh segments, not an earlier test's spares */
  h = shoal_heapnew();
  shoal_heapstats(h, &st0);
  for (int round = 0; round < 2; round++) {
    int moved = 0;
    b = shoal_alloc(h, NULL, 0, SMALL);
    if (!T_OK(b != NULL)) return;
    fill(b, SMALL, 1);
    if (round == 0) base = (uintptr_t)b & ~(uintptr_t)0xffff;  /* a slab's */
    n = SMALL * 3 / 2;
    b = shoal_alloc(h, b, SMALL, n);  /* moved: a medium block */
    if (!T_OK(b != NULL && intact(b, SMALL, 1))) return;
    for (; n * 3 / 2 <= 256 * 1024; n = n * 3 / 2) {
      c = shoal_alloc(h, b, n, n * 3 / 2);
      if (!T_OK(c != NULL)) return;
      moved += (c != b);
      T_OK(intact(c, SMALL, 1));
      b = c;
    }
    T_EQI(moved, 0);
    T_EQI(n, 177147);  /* 44 pages */
    fill(b, n, 2);
    if (round == 0) {
      top = shoal_alloc(h, NULL, 0, 40000);  /* a new block: the top */
      if (!T_OK(top != NULL)) return;
      T_OK((uintptr_t)top + 40960 == base + MB);
      T_OK((uintptr_t)b == base + 65536);  /* just above the slab */
      shoal_heapstats(h, &st);
      T_OK(st.mapped == st0.mapped + MB);  /* one segment */
      first = b;
      shoal_alloc(h, top, 40000, 0);  /* dirty: 10 pages, the highest */
      shoal_alloc(h, b, n, 0);  /* 44 pages, dirty */
    }
    else {
      T_OK(b == first && intact(b, n, 2));  /* the longest dirty run */
      T_OK(shoalA_largeexact(h));
      shoal_alloc(h, b, n, 0);
    }
  }
  shoal_heapstats(h, &st);
  T_EQI(st.inuse, 0);
  shoal_heapfree(h);
  /* the longest dirty run of all segments, not the newest segment's */
  nospares();  /* fresh segments, not an earlier test's spares */
  h = shoal_heapnew();
  {
    enum { M = 262144 };
    unsigned char *d, *m[4], *e;
    int moved = 0;
    d = shoal_alloc(h, NULL, 0, 176000);  /* 43 pages, the top of A */
    for (int i = 0; i < 4; i++)  /* A's room, then a new segment B */
      m[i] = shoal_alloc(h, NULL, 0, M);
    e = shoal_alloc(h, NULL, 0, 40000);  /* 10 pages, the top of B's room */
    if (!T_OK(d != NULL && m[3] != NULL && e != NULL)) return;
    T_OK(m[0] + M == d && e + 40960 == m[3]);  /* A's below d, B's */
    b = shoal_alloc(h, NULL, 0, SMALL);  /* its slab's fresh pages first:
                                            they purge dirty ones */
    if (!T_OK(b != NULL)) return;
    shoal_alloc(h, e, 40000, 0);  /* B: 10 dirty pages */
    shoal_alloc(h, d, 176000, 0);  /* A: 43 */
    for (n = SMALL; n * 3 / 2 <= 176000; n = n * 3 / 2) {
      c = shoal_alloc(h, b, n, n * 3 / 2);
      if (!T_OK(c != NULL)) return;
      moved += (n > SMALL && c != b);
      b = c;
    }
    T_EQI(moved, 0);
    T_OK(b == d && shoalA_largeexact(h));
    shoal_alloc(h, b, n, 0);
    for (int i = 0; i < 4; i++) shoal_alloc(h, m[i], M, 0);
  }
  shoal_heapfree(h);
}


/*
** Medium blocks taken, grown (some past 256 KB), shrunk and freed at
** random in a few segments: after each step the longest runs of free and
** of dirty pages that each segment keeps (updated from the pages that
** changed, measured whole only when the longest may have shrunk) are
** those of its bitmaps.
*/
static void test_mediumruns (void) {
  enum { NB = 24, STEPS = 6000 };
  ShoalHeap *h;
  unsigned char *b[NB] = {NULL};
  size_t size[NB] = {0};
  int bad = 0;
  if (mapped) return;  /* a medium blocks' test */
  h = shoal_heapnew();
  for (int k = 0; k < STEPS && bad == 0; k++) {
    int i = (int)next(NB);
    /* a quarter of them past 256 KB: mappings, or grown in place */
    size_t n = 16385 + next(next(4) ? 256 * 1024 - 16384 : 600000);
    if (b[i] == NULL) {
      if ((b[i] = shoal_alloc(h, NULL, 0, n)) == NULL) bad = 1;
      else fill(b[i], n, (unsigned char)i);
      size[i] = n;
    }
    else if (next(3) == 0) {
      if (!intact(b[i], size[i], (unsigned char)i)) bad = 2;
      shoal_alloc(h, b[i], size[i], 0);
      b[i] = NULL;
    }
    else {  /* a growth or a shrink: in place when it can */
      size_t keep = n < size[i] ? n : size[i];
      unsigned char *c = shoal_alloc(h, b[i], size[i], n);
      if (c == NULL || !intact(c, keep, (unsigned char)i)) bad = 3;
      else {
        fill(c, n, (unsigned char)i);
        b[i] = c;
        size[i] = n;
      }
    }
    if (bad == 0 && !shoalA_largeexact(h)) bad = 4;
  }
  T_EQI(bad, 0);
  for (int i = 0; i < NB; i++)
    if (b[i] != NULL) shoal_alloc(h, b[i], size[i], 0);
  shoal_heapfree(h);
}


/*
** A medium block grows in place past 256 KB, while the pages after it are
** free, up to half its segment (a 300 KB string's box, grown by half at a
** time, moved to a mapping at 266 KB); past that it moves to a mapping.
*/
static void test_mediumpast (void) {
  enum { SMALL = 15552, MB = 1024 * 1024 };
  ShoalHeap *h;
  shoal_MemStats st0, st;
  unsigned char *b, *c;
  size_t n = SMALL * 3 / 2;
  if (mapped) return;  /* a medium blocks' test */
  h = shoal_heapnew();
  shoal_heapstats(h, &st0);
  b = shoal_alloc(h, NULL, 0, SMALL);
  if (!T_OK(b != NULL)) return;
  fill(b, SMALL, 1);
  b = shoal_alloc(h, b, SMALL, n);  /* a medium block, above its slab */
  if (!T_OK(b != NULL)) return;
  for (; n * 3 / 2 <= 512 * 1024; n = n * 3 / 2) {
    c = shoal_alloc(h, b, n, n * 3 / 2);
    if (!T_OK(c != NULL)) return;
    T_OK(c == b && intact(c, SMALL, 1));
    b = c;
  }
  T_EQI(n, 398580);  /* 98 pages: in the segment, no mapping */
  shoal_heapstats(h, &st);
  T_OK(st.mapped == st0.mapped + MB && shoalA_largeexact(h));
  fill(b, n, 2);
  c = shoal_alloc(h, b, n, 600000);  /* past half a segment: a mapping */
  if (!T_OK(c != NULL)) return;
  T_OK(c != b && intact(c, n, 2));
  shoal_heapstats(h, &st);
  T_OK(st.mapped >= st0.mapped + MB + 600000 && shoalA_largeexact(h));
  b = shoal_alloc(h, c, 600000, 0);
  shoal_heapstats(h, &st);
  T_EQI(st.inuse, 0);
  shoal_heapfree(h);
}


/*
** A block growing past MAXMEDIUM takes the largest cached mapping that
** holds it, not the smallest: the rest is room it grows into in place at
** its next growth, where the smallest's rest left it to move again.
*/
static void test_largegrow (void) {
  enum { S1 = 177147, S2 = 265719, S3 = 398577, OTHER = 307225 };
  ShoalHeap *h = shoal_heapnew();
  unsigned char *b, *c, *o, *big;
  long t0;
  b = shoal_alloc(h, NULL, 0, S1);  /* medium or not: the first */
  o = shoal_alloc(h, NULL, 0, OTHER);
  big = shoal_alloc(h, NULL, 0, S3);
  if (!T_OK(b != NULL && o != NULL && big != NULL)) return;
  fill(b, S1, 1);
  t0 = nowms();
  shoal_alloc(h, o, OTHER, 0);  /* both cached */
  shoal_alloc(h, big, S3, 0);
  c = shoal_alloc(h, b, S1, S2);
  if (!T_OK(c != NULL)) return;
  T_OK(intact(c, S1, 1));
  /* the head of the largest (unless the kernel put one right after 'b',
     which it then grows into in place: 'intotail') */
  T_OK(c == big || nowms() - t0 >= SOON ||
       o == b + 180224 || big == b + 180224);
  b = shoal_alloc(h, c, S2, S3);
  if (!T_OK(b != NULL)) return;
  T_OK(b == c || nowms() - t0 >= SOON);  /* into its rest, in place */
  T_OK(intact(b, S1, 1));
  fill(b, S3, 2);
  T_OK(intact(b, S3, 2) && shoalA_largeexact(h));
  shoal_alloc(h, b, S3, 0);
  shoal_heapfree(h);
}


/*
** Where medium blocks and slabs go. A 256 KB block is a medium one, at
** its segment's very top; a byte more is a mapping. A run of free pages
** just the block's size serves it. A dirty run serves before a higher run
** of clean pages, with its bytes still there. A live block keeps its
** segment when the dirty pages beside it expire. Slabs go into segments
** that have slabs while those have room: once, a segment that medium
** blocks had filled to its slabs made the next slab take a new segment,
** which then stayed for good (50 segments, 50 MB mapped, for 2.3 MB of
** blocks in the loop below).
*/
static void test_mediumplace (void) {
  enum { M = 262144, MB = 1024 * 1024 };
  ShoalHeap *h;
  shoal_MemStats st0, st;
  unsigned char *a[4], *b, *c;
  static void *small[150];
  if (mapped) return;
  h = shoal_heapnew();
  shoal_heapstats(h, &st0);
  a[0] = shoal_alloc(h, NULL, 0, M);
  b = shoal_alloc(h, NULL, 0, M + 1);
  shoal_heapstats(h, &st);
  if (!T_OK(a[0] != NULL && b != NULL)) return;
  T_OK((uintptr_t)(a[0] + M) % 65536 == 0);  /* the top: no page above it */
  T_OK(st.mapped == st0.mapped + MB + M + 4096);  /* a segment, a mapping */
  shoal_alloc(h, b, M + 1, 0);
  for (int i = 1; i < 4; i++) a[i] = shoal_alloc(h, NULL, 0, M);
  shoal_heapstats(h, &st);
  T_OK(a[3] != NULL && a[3] + M == a[2] && a[2] + M == a[1]);
  /* the last one just fits: no more; b's mapping stays cached (a heap
     taking fresh pages for a medium block holds 512 KB it does not use) */
  T_OK(st.mapped == st0.mapped + MB + M + 4096);
  for (int i = 0; i < 4; i++) if (a[i] != NULL) fill(a[i], M, (unsigned char)i);
  shoal_alloc(h, a[0], M, 0);
  shoal_heaptrim(h);  /* a[0]'s pages clean, ... */
  shoal_alloc(h, a[2], M, 0);  /* ... a[2]'s dirty, below them */
  c = shoal_alloc(h, NULL, 0, M);
  T_OK(c == a[2] && intact(c, M, 2));
  shoal_alloc(h, c, M, 0);
  shoal_alloc(h, a[3], M, 0);
  shoal_alloc(h, a[1], M, 0);
  b = shoal_alloc(h, NULL, 0, 20000);  /* alone among dirty pages */
  if (!T_OK(b != NULL)) return;
  fill(b, 20000, 9);
  usleep(600 * 1000);
  c = shoal_alloc(h, NULL, 0, 30000);  /* the dirty pages expire */
  shoal_alloc(h, c, 30000, 0);
  T_OK(intact(b, 20000, 9) && shoalA_largeexact(h));
  shoal_alloc(h, b, 20000, 0);
  shoal_heaptrim(h);
  shoal_heapstats(h, &st);
  T_OK(st.mapped == st0.mapped && st.inuse == 0);
  small[0] = shoal_alloc(h, NULL, 0, 100);  /* a slab at a segment's bottom */
  for (int i = 0; i < 4; i++)  /* three blocks above it; a fourth has */
    a[i] = shoal_alloc(h, NULL, 0, M);  /* no room there: a new segment */
  for (int i = 1; i <= 6; i++) {  /* new slabs: into the first segment */
    small[i] = shoal_alloc(h, NULL, 0, 16000);
    T_OK((unsigned char *)small[i] < a[3] + M - MB ||
         (unsigned char *)small[i] >= a[3] + M);
  }
  for (int i = 0; i < 4; i++) shoal_alloc(h, a[i], M, 0);
  for (int i = 0; i <= 6; i++) shoal_alloc(h, small[i], i ? 16000 : 100, 0);
  shoal_heaptrim(h);
  for (int k = 0; k < 50; k++) {  /* medium blocks fill to the slabs, ... */
    void *m[5];
    for (int i = 0; i < 5; i++) m[i] = shoal_alloc(h, NULL, 0, 196608);
    for (int i = 0; i < 3; i++)  /* ... which need a new one */
      small[3 * k + i] = shoal_alloc(h, NULL, 0, 16000);
    for (int i = 0; i < 5; i++) shoal_alloc(h, m[i], 196608, 0);
    shoal_heaptrim(h);
  }
  shoal_heapstats(h, &st);
  T_OK(st.mapped <= st0.mapped + 5 * MB);  /* 52 slabs: 4 segments */
  if (st.mapped > st0.mapped + 5 * MB)
    printf("# 150 blocks of 16000 bytes: %zu KB mapped\n", st.mapped / 1024);
  T_OK(shoalA_largeexact(h));
  for (int i = 0; i < 150; i++) shoal_alloc(h, small[i], 16000, 0);
  shoal_heapfree(h);
}


/*
** A shrink that finds no small block (no memory for a slab) does not
** fail: the block stays in place with its bytes, noted as a remote shrink
** leaves it, and goes back whole when freed at its new size. It once
** failed (NULL), which Lua turns into "not enough memory" or a table
** that keeps its size.
*/
static void test_shrinknomem (void) {
  ShoalHeap *h = shoal_heapnew();
  shoal_MemStats st;
  unsigned char *a, *b;
  a = shoal_alloc(h, NULL, 0, 40000);  /* large: no slab yet */
  if (!T_OK(a != NULL)) return;
  fill(a, 40000, 4);
  shoalA_failslabs(1000);
  b = shoal_alloc(h, a, 40000, 100);
  shoalA_failslabs(0);
  T_OK(b == a && intact(a, 100, 4));
  shoal_heapstats(h, &st);
  T_EQI(st.inuse, 100);
  T_OK(shoalA_shrunkexact(h) && shoalA_largeexact(h));
  shoal_alloc(h, a, 100, 0);
  shoal_heapstats(h, &st);
  T_EQI(st.inuse, 0);
  T_OK(shoalA_shrunkexact(h) && shoalA_largeexact(h));
  shoal_heapfree(h);
}


/*
** With no spare to give back, a fresh heap's first block of 'size' bytes
** while 'fail' injects 'n' failures: NULL, the heap's counts unchanged;
** then, memory again, it works. The heap; the block into '*b'.
*/
static ShoalHeap *nomemthen (void (*fail) (int), int n, size_t size,
                             unsigned char **b) {
  ShoalHeap *h;
  shoal_MemStats st0, st;
  nospares();
  h = shoal_heapnew();
  shoal_heapstats(h, &st0);
  fail(n);
  *b = shoal_alloc(h, NULL, 0, size);
  fail(0);
  T_OK(*b == NULL);
  shoal_heapstats(h, &st);
  T_EQI(st.mapped, st0.mapped);
  T_EQI(st.inuse, st0.inuse);
  T_OK(shoalA_largeexact(h));
  *b = shoal_alloc(h, NULL, 0, size);
  T_OK(*b != NULL);
  return h;
}


/*
** No memory to note a block in the heap's address maps: a new large block
** fails (NULL) and leaves nothing mapped behind it (a new segment once
** stayed, empty, until a later block or a trim took it); a shrink that can
** neither get a slab nor note the block fails and leaves the block intact
** and counted at its old size. With spares waiting, they go back first
** (the memory short may be address space they hold), and it works.
*/
static void test_mapnomem (void) {
  ShoalHeap *h;
  shoal_MemStats st1, st;
  unsigned char *a;
  h = nomemthen(shoalA_failmaps, 1, 40000, &a);
  if (a == NULL) { shoal_heapfree(h); return; }
  shoal_heapstats(h, &st1);
  fill(a, 40000, 5);
  shoalA_failslabs(1000);
  shoalA_failmaps(1000);
  T_OK(shoal_alloc(h, a, 40000, 100) == NULL);
  shoalA_failmaps(0);
  shoalA_failslabs(0);
  shoal_heapstats(h, &st);
  T_EQI(st.inuse, st1.inuse);
  T_OK(intact(a, 40000, 5));
  T_OK(shoalA_shrunkexact(h) && shoalA_largeexact(h));
  shoal_alloc(h, a, 40000, 0);
  shoal_heapstats(h, &st);
  T_EQI(st.inuse, st1.inuse - 40000);
  T_OK(shoalA_shrunkexact(h) && shoalA_largeexact(h));
  shoal_heapfree(h);  /* its segment, a spare */
  T_OK(shoalA_spares(0) + shoalA_sparemaps(0) > 0);
  h = shoal_heapnew();
  shoalA_failmaps(1);
  a = shoal_alloc(h, NULL, 0, 50000);  /* not a spare mapping's size */
  shoalA_failmaps(0);
  T_OK(a != NULL && shoalA_spares(0) + shoalA_sparemaps(0) == 0);
  T_OK(shoalA_largeexact(h));
  shoal_heapfree(h);
}


/*
** No memory for a new segment's header: as when a mapping fails, the
** spare and cached mappings go back first (under RLIMIT_AS it is the C
** library's memory short), and the header is asked for again. Without
** that second try the first small block fails: its heap asks for a slab
** twice (a MIXED slab, then its class's), and both first tries fail.
** (A heap's own cache is no test of it: a new slab makes room first.)
*/
static void test_headnomem (void) {
  ShoalHeap *h;
  unsigned char *a;
  nospares();
  h = shoal_heapnew();
  a = shoal_alloc(h, NULL, 0, 1024 * 1024);  /* a mapping, no segment */
  if (!T_OK(a != NULL)) { shoal_heapfree(h); return; }
  shoal_heapfree(h);  /* the mapping a spare */
  shoalA_spares(1);  /* no spare segment to take instead of a new one */
  if (!T_OK(shoalA_sparemaps(0) == 1)) return;
  h = shoal_heapnew();
  shoalA_failheads(2);
  a = shoal_alloc(h, NULL, 0, 64);  /* a slab: a first segment */
  shoalA_failheads(0);
  T_OK(a != NULL);
  T_EQI(shoalA_sparemaps(0), 0);
  T_OK(shoalA_largeexact(h));
  if (a != NULL) shoal_alloc(h, a, 64, 0);
  shoal_heapfree(h);
  h = nomemthen(shoalA_failheads, 2, 64, &a);  /* nothing to give back */
  if (a != NULL) shoal_alloc(h, a, 64, 0);
  shoal_heapfree(h);
}


/*
** Fresh pages taken for a medium block give back as many cached ones (a
** 1 MB mapping freed: the cache's oldest); a block that takes a freed
** block's dirty pages takes no fresh page, and the cache stays.
*/
static void test_mediumroom (void) {
  enum { MB = 1024 * 1024 };
  ShoalHeap *h;
  shoal_MemStats st0, st;
  void *a, *b, *big;
  if (mapped) return;
  nospares();  /* fresh segments, not an earlier test's spares */
  h = shoal_heapnew();
  shoal_heapstats(h, &st0);
  big = shoal_alloc(h, NULL, 0, MB);
  a = shoal_alloc(h, NULL, 0, 200000);  /* a segment */
  shoal_alloc(h, big, MB, 0);  /* cached */
  shoal_alloc(h, a, 200000, 0);  /* its pages dirty */
  shoal_heapstats(h, &st);
  T_OK(st.mapped == st0.mapped + 2 * MB);
  b = shoal_alloc(h, NULL, 0, 200000);  /* the dirty pages again */
  shoal_heapstats(h, &st);
  T_OK(b == a && st.mapped == st0.mapped + 2 * MB);  /* the cache kept */
  a = shoal_alloc(h, NULL, 0, 200000);  /* fresh pages below it */
  shoal_heapstats(h, &st);
  T_OK(a != NULL && st.mapped == st0.mapped + MB);  /* the cache gave way */
  T_OK(shoalA_largeexact(h));
  shoal_alloc(h, a, 200000, 0);
  shoal_alloc(h, b, 200000, 0);
  shoal_heapfree(h);
}


/*
** Fresh pages give back what the heap holds unused (cached mappings
** first, then dirty pages) only beyond what it may hold: an eighth of its
** use, at most 1 MB, and at least 512 KB for a medium or large block's
** fresh pages; and only as many bytes as come in.
** Here 12 MB of blocks of 49 pages, and freed ones between them (dirty
** runs of 49 pages); a block of 62 pages fits no run: fresh pages. Each
** freed run once went at the next fresh pages, and the next block that
** took them faulted them in again. The use is Lua's: blocks freed by
** other threads count out of it.
*/
static void test_mediumhold (void) {
  enum { N = 60, RUN = 49 * 4096, BIG = 250000, NSMALL = 8192,
         MAPPING = 300000, HOLDMIN = 512 * 1024 };
  ShoalHeap *h;
  shoal_MemStats st0, st;
  void *a[N], *big[3];
  static void *small[NSMALL];
  int got;
  if (mapped) return;
  nospares();  /* fresh segments, not an earlier test's spares */
  h = shoal_heapnew();
  for (int i = 0; i < N; i++)
    if (!T_OK((a[i] = shoal_alloc(h, NULL, 0, 200000)) != NULL)) return;
  shoalA_purgedelay(60 * 1000);  /* no dirty page expires meanwhile */
  /* 2 runs dirty and a cached mapping: less than 1 MB, all kept */
  shoal_alloc(h, a[1], 200000, 0);
  shoal_alloc(h, a[11], 200000, 0);
  T_OK(shoalA_dirty(h) == 2 * RUN);
  big[0] = shoal_alloc(h, NULL, 0, MAPPING);
  shoal_alloc(h, big[0], MAPPING, 0);  /* cached */
  shoal_heapstats(h, &st0);
  big[0] = shoal_alloc(h, NULL, 0, BIG);  /* in a new segment */
  shoal_heapstats(h, &st);
  T_OK(big[0] != NULL && shoalA_dirty(h) == 2 * RUN);
  T_OK(st.mapped == st0.mapped + 1024 * 1024);
  /* 8 runs and the mapping: 1.8 MB, 0.8 over 1 MB: as much as 62 pages
     go, the mapping (74 pages) first */
  for (int i = 21; i < N; i += 10) shoal_alloc(h, a[i], 200000, 0);
  shoal_alloc(h, a[6], 200000, 0);  /* no two of them side by side */
  shoal_alloc(h, a[16], 200000, 0);
  shoal_heapstats(h, &st);
  T_OK(st.inuse / 8 > 1024 * 1024 && shoalA_dirty(h) == 8 * RUN);
  big[1] = shoal_alloc(h, NULL, 0, BIG);
  shoal_heapstats(h, &st);
  T_OK(big[1] != NULL && shoalA_dirty(h) == 8 * RUN);
  T_OK(st.mapped == st0.mapped + 1024 * 1024 - 74 * 4096);
  /* 8 runs: 1.5 MB, 0.5 over 1 MB: 62 dirty pages go, part of a run */
  big[2] = shoal_alloc(h, NULL, 0, BIG);
  T_OK(big[2] != NULL && shoalA_dirty(h) == 8 * RUN - 62 * 4096);
  T_OK(shoalA_largeexact(h));
  for (int i = 0; i < N; i++)
    if (i % 10 != 1 && i != 6 && i != 16) shoal_alloc(h, a[i], 200000, 0);
  for (int i = 0; i < 3; i++) shoal_alloc(h, big[i], BIG, 0);
  shoal_heapfree(h);
  /* the eighth is of what Lua holds: 8 MB of small blocks freed by
     another thread count out (they once kept the hold at 1 MB for good);
     a small heap holds 512 KB */
  nospares();  /* fresh segments, not an earlier test's spares */
  h = shoal_heapnew();
  for (got = 0; got < NSMALL; got++)
    if ((small[got] = shoal_alloc(h, NULL, 0, 1024)) == NULL) break;
  if (!T_OK(got == NSMALL)) return;
  for (int i = 0; i < NSMALL; i++) shoal_freeremote(h, small[i], 1024);
  for (int i = 0; i < 6; i++) a[i] = shoal_alloc(h, NULL, 0, 200000);
  for (int i = 0; i < 6; i += 2) shoal_alloc(h, a[i], 200000, 0);
  shoal_heapstats(h, &st);
  T_OK(st.inuse == 3 * 200000 && shoalA_dirty(h) == 3 * RUN);
  big[0] = shoal_alloc(h, NULL, 0, MAPPING);  /* 76 KB over 512 go */
  T_OK(big[0] != NULL && shoalA_dirty(h) == HOLDMIN);
  T_OK(shoalA_largeexact(h));
  for (int i = 1; i < 6; i += 2) shoal_alloc(h, a[i], 200000, 0);
  shoal_alloc(h, big[0], MAPPING, 0);
  shoal_heapfree(h);
  /* a heap growing by slabs holds an eighth of its use, no floor: a
     slab's 16 fresh pages give back as many dirty ones */
  nospares();  /* fresh segments, not an earlier test's spares */
  h = shoal_heapnew();
  a[0] = shoal_alloc(h, NULL, 0, BIG);  /* 62 pages */
  a[1] = shoal_alloc(h, NULL, 0, 20000);
  shoal_alloc(h, a[0], BIG, 0);
  T_OK(shoalA_dirty(h) == 62 * 4096);
  a[0] = shoal_alloc(h, NULL, 0, 100);  /* the heap's first slab */
  T_OK(a[0] != NULL && shoalA_dirty(h) == (62 - 16) * 4096);
  T_OK(shoalA_largeexact(h));
  shoal_alloc(h, a[0], 100, 0);
  shoal_alloc(h, a[1], 20000, 0);
  shoal_heapfree(h);
  shoalA_purgedelay(500);
}


/*
** A segment's dirty pages go once its oldest waited 500 ms, though a
** block there is freed and taken again every 100 ms (each free once
** restarted the segment's clock, and the 62 older pages stayed for good).
** A segment that gives its dirty pages back for fresh ones and is left
** empty is unmapped at once (it once stayed mapped, and did for good
** while another segment's block churned: each free put the expiry off);
** a run goes back only in part if that is enough.
*/
static void test_mediumage (void) {
  ShoalHeap *h;
  shoal_MemStats st;
  char *a, *c;
  void *s;
  if (mapped) return;
  nospares();  /* fresh segments, not an earlier test's spares */
  h = shoal_heapnew();
  c = shoal_alloc(h, NULL, 0, 20000);  /* the segment's top 5 pages */
  a = shoal_alloc(h, NULL, 0, 250000);  /* the 62 below */
  if (!T_OK(a != NULL && c != NULL)) return;
  shoal_alloc(h, a, 250000, 0);
  T_OK(shoalA_dirty(h) == 62 * 4096);
  for (int k = 0; k < 12; k++) {  /* 1.2 s */
    usleep(100 * 1000);
    shoal_alloc(h, c, 20000, 0);
    c = shoal_alloc(h, NULL, 0, 20000);  /* the same 5 pages */
  }
  T_OK(c != NULL && shoalA_dirty(h) < 62 * 4096);
  if (shoalA_dirty(h) >= 62 * 4096)
    printf("# %zu bytes still dirty\n", shoalA_dirty(h));
  T_OK(shoalA_largeexact(h));
  shoal_alloc(h, c, 20000, 0);
  shoal_heaptrim(h);  /* no segment left */
  {  /* 248 dirty pages in one segment, 62 in a newer one: 1.2 MB, 0.7 over
        what the heap may hold; a mapping of 74 fresh pages gives back the
        newer segment's 62 (it is then unmapped) and 12 of the other's */
    char *x[5];
    for (int i = 0; i < 5; i++) x[i] = shoal_alloc(h, NULL, 0, 250000);
    for (int i = 0; i < 5; i++) shoal_alloc(h, x[i], 250000, 0);
    T_OK(shoalA_dirty(h) == 5 * 62 * 4096);
    s = shoal_alloc(h, NULL, 0, 300000);
    shoal_heapstats(h, &st);
    T_OK(s != NULL && shoalA_dirty(h) == (4 * 62 - 12) * 4096);
    T_OK(st.mapped == 1024 * 1024 + 74 * 4096);  /* one segment, a mapping */
    T_OK(shoalA_largeexact(h));
    shoal_alloc(h, s, 300000, 0);
    shoal_heaptrim(h);
  }
  {  /* a slab emptied expires dirty pages too, with nothing cached */
    void *b[20];
    for (int i = 0; i < 20; i++) b[i] = shoal_alloc(h, NULL, 0, 16000);
    a = shoal_alloc(h, NULL, 0, 200000);
    shoal_alloc(h, a, 200000, 0);
    T_OK(shoalA_dirty(h) > 0);
    usleep(600 * 1000);
    for (int i = 0; i < 20; i++) shoal_alloc(h, b[i], 16000, 0);
    T_OK(shoalA_dirty(h) == 0 && shoalA_largeexact(h));
  }
  shoal_heapfree(h);
}


/*
** The process's mappings (entries of its address space). ThreadSanitizer
** maps shadow memory beside each mapping it sees: 1,318 for 300 VMs.
** Valgrind places mappings itself, not top down as the kernel does: a
** closed VM's segment's place is not taken again.
*/
#if defined(__SANITIZE_THREAD__)
#define MAPS_CHECKS	0
#else
#define MAPS_CHECKS	(!valgrind())
#endif

static int nmaps (void) {
  FILE *f = fopen("/proc/self/maps", "r");
  int c, n = 0;
  if (f == NULL) return 0;
  while ((c = fgetc(f)) != EOF) n += (c == '\n');
  fclose(f);
  return n;
}


/*
** A VM's medium blocks lie in the segment its slabs come from, and its
** segment adjoins the others: 300 VMs, each holding an array of 64 KB and
** a hash part of 48 KB, add fewer than one entry to the address space per
** ten VMs (a mapping per block took 4-5 a VM, a segment apart from the
** others one; the kernel allows 65,530 entries, which 15,000 such VMs
** used up: they then failed with "not enough memory"). VMs opened after
** others closed take their segments' places. Freed blocks' dirty pages go
** back to the OS once they waited 500 ms.
*/
static void test_mediumvmas (void) {
  enum { N = 300 };
  static lua_State *L[N];
  int before, after, ok = 1;
  size_t built, freed;
  if (mapped) return;  /* a medium blocks' test */
  nospares();  /* fresh segments, not an earlier test's spares */
  before = nmaps();
  for (int i = 0; i < N; i++) {
    L[i] = shoal_newstate(0);
    ok &= L[i] != NULL && luaL_dostring(L[i], "t = {} for i = 1, 3000 do "
          "t[i] = i end u = {} for i = 1, 2000 do u[i + 0.5] = i end") == LUA_OK;
  }
  after = nmaps();
  T_OK(ok);
  T_OK(!MAPS_CHECKS || after - before < N / 10);
  if (MAPS_CHECKS && after - before >= N / 10)
    printf("# %d VMs added %d mappings\n", N, after - before);
  built = rss_kb();
  for (int i = 0; i < N && ok; i++) {  /* the blocks freed, the VMs kept */
    lua_pushnil(L[i]);
    lua_setglobal(L[i], "t");
    lua_pushnil(L[i]);
    lua_setglobal(L[i], "u");
    while (!lua_gc(L[i], LUA_GCSTEP, 0)) ;  /* a cycle, not a full */
  }                                          /* collection: no trim */
  usleep(600 * 1000);
  for (int i = 0; i < N && ok; i++)  /* a medium block's allocation looks */
    ok &= luaL_dostring(L[i], "local t = {} for i = 1, 2000 do t[i] = i "
                              "end") == LUA_OK;
  T_OK(ok);
  freed = rss_kb();
  T_OK(!RSS_CHECKS || freed + N * 64 < built);
  if (RSS_CHECKS && freed + N * 64 >= built)
    printf("# rss built %zu KB, after the blocks went %zu KB\n", built, freed);
  for (int i = 0; i < N; i += 2) {  /* every other VM closed, opened again */
    if (L[i] != NULL) lua_close(L[i]);
    L[i] = shoal_newstate(0);
    ok &= L[i] != NULL && luaL_dostring(L[i], "t = {} for i = 1, 3000 do "
                                              "t[i] = i end") == LUA_OK;
  }
  T_OK(ok);
  after = nmaps();
  T_OK(!MAPS_CHECKS || after - before < N / 10);
  if (MAPS_CHECKS && after - before >= N / 10)
    printf("# %d VMs reopened: %d mappings more than before\n", N / 2,
           after - before);
  for (int i = 0; i < N; i++)
    if (L[i] != NULL) lua_close(L[i]);
}


/* Shrinks done by another thread: block, old size, new size, result. */
#define NSHRINK	6
static struct { void *p; size_t o, n; void *r; } shrink[NSHRINK];
static ShoalHeap *shrinkheap;

static void *shrinker (void *arg) {
  (void)arg;
  for (int i = 0; i < NSHRINK; i++)
    shrink[i].r = shoal_shrinkremote(shrinkheap, shrink[i].p, shrink[i].o, shrink[i].n);
  return NULL;
}


/*
** Blocks shrunk by another thread stay in place and keep their bytes;
** the owner then frees or resizes them at Lua's new size, and the heap
** frees what each block really is: a small block of another class, a
** large block now small, a large block that gave its tail pages back.
*/
static void test_shrinkremote (void) {
  static const size_t o[NSHRINK] = {100, 1000, 200000, 100000, 3000, 64},
                      n[NSHRINK] = {97, 40, 50000, 100, 3000, 0};
  shoal_MemStats st, st1;
  pthread_t th;
  unsigned char *again;
  shrinkheap = shoal_heapnew();
  for (int i = 0; i < NSHRINK; i++) {
    shrink[i].p = shoal_alloc(shrinkheap, NULL, 0, o[i]);
    shrink[i].o = o[i];
    shrink[i].n = n[i];
    fill(shrink[i].p, o[i], (unsigned char)i);
  }
  shoal_heapstats(shrinkheap, &st);
  T_EQI(pthread_create(&th, NULL, shrinker, NULL), 0);
  T_EQI(pthread_join(th, NULL), 0);
  for (int i = 0; i < NSHRINK - 1; i++) {  /* in place, bytes intact */
    T_OK(shrink[i].r == shrink[i].p);
    T_OK(intact(shrink[i].p, n[i], (unsigned char)i));
  }
  T_OK(shrink[NSHRINK - 1].r == NULL);  /* shrunk to 0: freed */
  T_OK(shoalA_shrunkexact(shrinkheap));
  shoal_heapstats(shrinkheap, &st1);
  T_EQI(st.inuse - st1.inuse, (100 - 97) + (1000 - 40) + (200000 - 50000) +
                              (100000 - 100) + 0 + 64);
  if (mapped)  /* the large block's tail pages went */
    T_OK(st1.mapped <= st.mapped - 140000);
  else  /* they wait, dirty, in its segment */
    T_OK(shoalA_largeexact(shrinkheap));
  /* a growth is refused and changes nothing */
  T_OK(shoal_shrinkremote(shrinkheap, shrink[4].p, 3000, 4000) == NULL);
  T_OK(intact(shrink[4].p, 3000, 4));
  /* the owner: the 1000-byte block, now 40, grows to 50 ... */
  again = shoal_alloc(shrinkheap, shrink[1].p, 40, 50);
  T_OK(again != NULL && intact(again, 40, 1));
  shoal_alloc(shrinkheap, again, 50, 0);
  /* ... the large block now 100 bytes, freed as what it is ... */
  shoal_alloc(shrinkheap, shrink[3].p, 100, 0);
  /* ... and the rest freed at Lua's sizes */
  shoal_alloc(shrinkheap, shrink[0].p, 97, 0);
  shoal_alloc(shrinkheap, shrink[2].p, 50000, 0);
  shoal_alloc(shrinkheap, shrink[4].p, 3000, 0);
  shoal_heapstats(shrinkheap, &st);
  T_EQI(st.inuse, 0);
  /* a block of 1000 bytes shrunk to 40 by another thread, then freed by
     the owner, went back to its own class: the next 1000 bytes reuse it */
  shrink[0].p = shoal_alloc(shrinkheap, NULL, 0, 1000);
  shrink[0].o = 1000;
  shrink[0].n = 40;
  for (int i = 1; i < NSHRINK; i++) shrink[i].p = NULL;
  T_EQI(pthread_create(&th, NULL, shrinker, NULL), 0);
  T_EQI(pthread_join(th, NULL), 0);
  shoal_alloc(shrinkheap, shrink[0].p, 40, 0);
  T_OK(shoal_alloc(shrinkheap, NULL, 0, 1000) == shrink[0].p);
  shoal_alloc(shrinkheap, shrink[0].p, 1000, 0);
  T_OK(shoalA_shrunkexact(shrinkheap));
  shoal_heapfree(shrinkheap);
}


/*
** All at once: the owner allocates, resizes and frees at random while it
** hands blocks to another thread, which frees some and shrinks others
** (to any size, 0 included) and hands those back; the owner then resizes
** or frees them at their new size. Every byte is checked on each side.
*/
#define NRING		64
#define NSLOTS		1000
#define NCONCOPS	60000

typedef struct Item { unsigned char *p; size_t n; unsigned char tag; } Item;
typedef struct Ring {  /* one producer, one consumer */
  Item item[NRING];
  _Atomic unsigned head, tail;
} Ring;

static Ring toremote, toowner;
static _Atomic int ownerdone, remotebad;

static int ringput (Ring *r, Item it) {
  unsigned t = atomic_load_explicit(&r->tail, memory_order_relaxed);
  if (t - atomic_load_explicit(&r->head, memory_order_acquire) == NRING)
    return 0;  /* full */
  r->item[t % NRING] = it;
  atomic_store_explicit(&r->tail, t + 1, memory_order_release);
  return 1;
}

static int ringget (Ring *r, Item *it) {
  unsigned h = atomic_load_explicit(&r->head, memory_order_relaxed);
  if (h == atomic_load_explicit(&r->tail, memory_order_acquire)) return 0;
  *it = r->item[h % NRING];
  atomic_store_explicit(&r->head, h + 1, memory_order_release);
  return 1;
}

static void *remote_mixer (void *arg) {
  ShoalHeap *h = arg;
  uint64_t r = 0x9E3779B97F4A7C15u;
  Item it;
  for (;;) {
    if (!ringget(&toremote, &it)) {
      if (atomic_load(&ownerdone) &&
          atomic_load(&toremote.head) == atomic_load(&toremote.tail))
        break;
      sched_yield();
      continue;
    }
    r ^= r << 13; r ^= r >> 7; r ^= r << 17;
    if (!intact(it.p, it.n, it.tag)) atomic_fetch_add(&remotebad, 1);
    if (r % 2 == 0) shoal_freeremote(h, it.p, it.n);
    else {
      size_t n = (size_t)(r >> 8) % (it.n + 1);  /* 0 frees */
      void *p = shoal_shrinkremote(h, it.p, it.n, n);
      if (n == 0) continue;
      if (p != it.p) {  /* a shrink stays in place, or notes nothing */
        atomic_fetch_add(&remotebad, 1);
        n = it.n;
      }
      if (!intact(it.p, n, it.tag)) atomic_fetch_add(&remotebad, 1);
      it.n = n;
      while (!ringput(&toowner, it)) sched_yield();  /* the owner drains */
    }
  }
  return NULL;
}

/* Free the blocks the other thread handed back; 0 if one was not intact. */
static int freeback (ShoalHeap *h) {
  Item it;
  int ok = 1;
  while (ringget(&toowner, &it)) {
    if (!intact(it.p, it.n, it.tag)) ok = 0;
    shoal_alloc(h, it.p, it.n, 0);
  }
  return ok;
}

/* Gives back, again and again, what heap 'arg' (if any) and every heap
   keep unused, until told to stop; the count of rounds. */
static atomic_int stopexpiring;
static atomic_long expirecalls;  /* the expirer's rounds so far */

static void *expirer (void *arg) {
  long n = 0;
  while (!atomic_load(&stopexpiring)) {
    if (arg != NULL) shoal_heapexpire(arg);
    shoal_heapexpire(NULL);
    n++;
    atomic_store(&expirecalls, n);
    sched_yield();  /* valgrind runs one thread at a time: let go */
  }
  return (void *)(intptr_t)n;
}

static void test_concurrent (void) {
  static Item slot[NSLOTS];
  ShoalHeap *h = shoal_heapnew();
  shoal_MemStats st;
  pthread_t th, exp;
  void *expires;
  int bad = 0, handed = 0, back = 0;
  Item it;
  shoalA_purgedelay(0);  /* what the expirer thread finds unused goes */
  atomic_store(&stopexpiring, 0);
  T_EQI(pthread_create(&th, NULL, remote_mixer, h), 0);
  T_EQI(pthread_create(&exp, NULL, expirer, h), 0);
  for (int op = 0; op < NCONCOPS && !bad; op++) {
    Item *s = &slot[next(NSLOTS)];
    if (op % 4096 == 0) shoal_heaptrim(h);  /* slabs with blocks out there */
    while (ringget(&toowner, &it)) {  /* shrunk blocks come back */
      Item *to = &slot[next(NSLOTS)];
      if (to->p != NULL) {
        if (!intact(to->p, to->n, to->tag)) bad = 1;
        shoal_alloc(h, to->p, to->n, 0);
      }
      *to = it;
      back++;
    }
    if (s->p == NULL) {
      s->n = randsize();
      s->tag = (unsigned char)op;
      if ((s->p = shoal_alloc(h, NULL, 0, s->n)) == NULL) { bad = 2; break; }
      fill(s->p, s->n, s->tag);
      continue;
    }
    if (!intact(s->p, s->n, s->tag)) { bad = 3; break; }
    switch (next(3)) {
      case 0: {  /* resize, keeping the common prefix */
        size_t n = randsize(), keep = n < s->n ? n : s->n;
        if ((s->p = shoal_alloc(h, s->p, s->n, n)) == NULL ||
            !intact(s->p, keep, s->tag)) { bad = 4; break; }
        s->n = n;
        s->tag = (unsigned char)op;
        fill(s->p, n, s->tag);
        break;
      }
      case 1:  /* free */
        shoal_alloc(h, s->p, s->n, 0);
        s->p = NULL;
        break;
      default:  /* to the other thread, once it has room */
        while (!ringput(&toremote, *s)) {
          if (!freeback(h)) bad = 5;  /* so that it has room too */
          sched_yield();
        }
        s->p = NULL;
        handed++;
    }
  }
  atomic_store(&ownerdone, 1);
  atomic_store(&stopexpiring, 1);
  T_EQI(pthread_join(exp, &expires), 0);
  shoalA_purgedelay(500);
  T_OK((intptr_t)expires > 0);
  for (;;) {  /* until the other thread is done with every block */
    if (!freeback(h)) bad = 7;
    if (atomic_load(&toremote.head) == atomic_load(&toremote.tail)) {
      T_EQI(pthread_join(th, NULL), 0);
      if (!freeback(h)) bad = 7;
      break;
    }
    sched_yield();
  }
  T_EQI(bad, 0);
  T_EQI(atomic_load(&remotebad), 0);
  T_OK(handed > 10000 && back > 100);  /* both sides had work */
  T_OK(shoalA_shrunkexact(h));  /* some blocks shrunk remotely still out */
  for (int i = 0; i < NSLOTS; i++) {
    if (slot[i].p != NULL) {
      if (!intact(slot[i].p, slot[i].n, slot[i].tag)) bad = 6;
      shoal_alloc(h, slot[i].p, slot[i].n, 0);
    }
  }
  T_EQI(bad, 0);
  T_OK(shoalA_shrunkexact(h));
  shoal_heapstats(h, &st);
  T_EQI(st.inuse, 0);
  shoal_heapfree(h);
}


/* luaL_newstate puts states on Shoal heaps unless told otherwise. */
static void test_default (void) {
  lua_State *L = luaL_newstate();
  T_OK(shoal_heap(L) != NULL);
  lua_close(L);
  shoal_defaultalloc(0);
  L = luaL_newstate();
  T_OK(shoal_heap(L) == NULL);
  lua_close(L);
  shoal_defaultalloc(1);
  L = luaL_newstate();
  T_OK(shoal_heap(L) != NULL);
  lua_close(L);
}


/*
** Where the system's pages are not the allocator's 4 KB, no heap is made
** (their madvise would discard neighbours' blocks): shoal_heapnew and
** shoal_newstate fail with ENOTSUP, luaL_newstate falls back to the C
** library's allocator, and the states already made go on.
*/
static void test_pagesize (void) {
  static const long sizes[] = {16384, 65536, 2048};
  lua_State *before = shoal_newstate(0);
  size_t i;
  T_OK(before != NULL);
  luaL_openlibs(before);
  for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    lua_State *L;
    shoalA_pagesize(sizes[i]);
    errno = 0;
    T_OK(shoal_heapnew() == NULL);
    T_EQI(errno, ENOTSUP);
    errno = 0;
    T_OK(shoal_newstate(0) == NULL);
    T_EQI(errno, ENOTSUP);
    L = luaL_newstate();
    T_OK(L != NULL && shoal_heap(L) == NULL);
    if (L != NULL) {
      luaL_openlibs(L);
      T_OK(luaL_dostring(L, "local t = {} for i = 1, 1e4 do t[i] = {i} end "
                            "assert(#t == 1e4)") == LUA_OK);
      lua_close(L);
    }
    T_OK(luaL_dostring(before, "local s = ('x'):rep(1e5) "
                               "assert(#s == 1e5)") == LUA_OK);
  }
  shoalA_pagesize(4096);  /* the allocator's own: heaps again */
  {
    ShoalHeap *h = shoal_heapnew();
    lua_State *L = luaL_newstate();
    T_OK(h != NULL);
    T_OK(L != NULL && shoal_heap(L) != NULL);
    shoal_heapfree(h);
    if (L != NULL) lua_close(L);
  }
  shoalA_pagesize(0);
  lua_close(before);
}


static int grow (lua_State *L) {  /* 10 MB, beyond the other VM's limit */
  if (luaL_dostring(L, "local t = {} for i = 1, 1e5 do t[i] = {i} end") != LUA_OK)
    return lua_error(L);
  return 0;
}


static void test_limit (void) {
  lua_State *L = shoal_newstate(2 * 1024 * 1024), *other = shoal_newstate(0);
  shoal_MemStats st;
  luaL_openlibs(L);
  luaL_openlibs(other);
  T_OK(luaL_loadstring(L, "local t = {} for i = 1, 1e7 do t[i] = {i} end") == LUA_OK);
  T_EQI(lua_pcall(L, 0, 0, 0), LUA_ERRMEM);
  T_EQS(lua_tostring(L, -1), "not enough memory");
  lua_pop(L, 1);
  lua_gc(L, LUA_GCCOLLECT);
  shoal_heapstats(shoal_heap(L), &st);
  T_OK(st.inuse <= 2 * 1024 * 1024);
  T_EQI(st.limit, 2 * 1024 * 1024);
  /* the VM recovers */
  T_OK(luaL_dostring(L, "local t = {} for i = 1, 1000 do t[i] = {i} end return #t") == LUA_OK);
  T_EQI(lua_tointeger(L, -1), 1000);
  lua_pop(L, 1);
  /* from Lua too */
  T_OK(luaL_dostring(L, "local ok, e = pcall(function () local s = string.rep('x', 4 * 2^20) end) "
                        "return (not ok and e == 'not enough memory') and 1 or 0") == LUA_OK);
  T_EQI(lua_tointeger(L, -1), 1);
  lua_pop(L, 1);
  T_OK(luaL_dostring(L, "local m = require('shoal').memory() "
                        "return (m.limit == 2 * 2^20 and m.inuse > 0 and m.peak >= m.inuse and m.mapped > 0) and 1 or 0") == LUA_OK);
  T_EQI(lua_tointeger(L, -1), 1);
  lua_pop(L, 1);
  /* a limit beyond Lua's integers reads as the largest, and comes back */
  shoal_setlimit(L, SIZE_MAX);
  T_OK(luaL_dostring(L, "local s = require('shoal') local prev = s.setlimit(0) "
                        "s.setlimit(prev) return s.memory().limit == math.maxinteger "
                        "and prev == math.maxinteger and 1 or 0") == LUA_OK);
  T_EQI(lua_tointeger(L, -1), 1);
  lua_pop(L, 1);
  /* another VM is not affected */
  lua_pushcfunction(other, grow);
  T_EQI(lua_pcall(other, 0, 0, 0), LUA_OK);
  lua_close(L);
  lua_close(other);
}


/* 190 MB of 64-byte blocks, all freed: how much RSS is left? 'took':
   how long the frees took, in ms. */
static size_t freeall (ShoalHeap *h, void **p, size_t *peak, long *took) {
  enum { N = 3000000, SIZE = 64 };
  for (int i = 0; i < N; i++) {
    p[i] = shoal_alloc(h, NULL, 0, SIZE);
    memset(p[i], 1, SIZE);
  }
  *peak = rss_kb();
  *took = nowms();
  for (int i = 0; i < N; i++) shoal_alloc(h, p[i], SIZE, 0);
  *took = nowms() - *took;
  return rss_kb();
}


#define RSS_SLACK	(16 * 1024)  /* KB: header pages, the kept slabs */
#define TRIM_SLACK	(2 * 1024)  /* KB: the kept slabs, and noise */

/* Blocks past the MIXED slabs' free ones, into two slabs, all freed. */
static void emptyslabs (ShoalHeap *h, void **p) {
  for (int i = 0; i < 5000; i++) p[i] = shoal_alloc(h, NULL, 0, 64);
  for (int i = 0; i < 5000; i++) shoal_alloc(h, p[i], 64, 0);
}


static void test_rss (void) {
  ShoalHeap *h = shoal_heapnew();
  void **p = malloc(3000000 * sizeof(void *));
  size_t before, peak, freed, after;
  long took;
  memset(p, 1, 3000000 * sizeof(void *));  /* its pages resident */
  before = rss_kb();
  /* emptied slabs keep their pages for a while: the next collection
     cycle would fault them in again */
  freed = freeall(h, p, &peak, &took);
  T_OK(!RSS_CHECKS || peak > before + 150 * 1024);
  T_OK(!RSS_CHECKS || took >= SOON || freed > before + 150 * 1024);
  /* a trim gives them back at once, each slab's header page too (about
     6% of the slabs' memory: 12 MB here) */
  shoal_heaptrim(h);
  after = rss_kb();
  T_OK(!RSS_CHECKS || after < before + TRIM_SLACK);
  if (RSS_CHECKS && after >= before + TRIM_SLACK)
    printf("# rss before %zu KB, peak %zu KB, after trim %zu KB\n", before, peak, after);
  /* without a trim, once they have stayed empty a while (500 ms), slabs
     emptied later send them back, a few at a time (PURGESTEP per tick of
     the coarse clock), but for their header pages: a slab emptied sends a
     step back, not all ... */
  freed = freeall(h, p, &peak, &took);
  T_OK(!RSS_CHECKS || took >= SOON || freed > before + 150 * 1024);
  usleep(600 * 1000);
  emptyslabs(h, p);
  after = rss_kb();
  T_OK(!RSS_CHECKS || took >= SOON || after > before + 150 * 1024);
  /* ... and as slabs go on emptying, tick after tick, all go back */
  for (int i = 0; i < 3000 && after >= before + RSS_SLACK; i++) {
    usleep(5000);  /* a new tick of the coarse clock (1 to 10 ms) */
    emptyslabs(h, p);
    after = rss_kb();
  }
  T_OK(!RSS_CHECKS || after < before + RSS_SLACK);
  if (RSS_CHECKS && after >= before + RSS_SLACK)
    printf("# rss before %zu KB, peak %zu KB, after the delay %zu KB\n", before, peak, after);
  free(p);
  shoal_heapfree(h);
}


/* A large block takes the place of kept empty slabs in RSS. */
static void test_largeswap (void) {
  enum { N = 1000000, SIZE = 64, BIG = 32 * 1024 * 1024 };
  ShoalHeap *h = shoal_heapnew();
  void **p = malloc(N * sizeof(void *));
  size_t before, freed, after;
  unsigned char *big;
  memset(p, 1, N * sizeof(void *));
  before = rss_kb();
  for (int i = 0; i < N; i++) {
    p[i] = shoal_alloc(h, NULL, 0, SIZE);
    memset(p[i], 1, SIZE);
  }
  for (int i = 0; i < N; i++) shoal_alloc(h, p[i], SIZE, 0);
  freed = rss_kb();  /* the emptied slabs keep their pages for now */
  big = shoal_alloc(h, NULL, 0, BIG);
  T_OK(big != NULL);
  memset(big, 1, BIG);
  after = rss_kb();
  T_OK(!RSS_CHECKS || freed > before + 50 * 1024);
  T_OK(!RSS_CHECKS || after < freed + 8 * 1024);
  if (RSS_CHECKS && after >= freed + 8 * 1024)
    printf("# rss before %zu KB, freed %zu KB, with the large block %zu KB\n", before, freed, after);
  shoal_alloc(h, big, BIG, 0);
  free(p);
  shoal_heapfree(h);
}


/*
** collectgarbage("collect") gives a VM's emptied memory back at once.
** (Under HARDMEMTESTS every allocation collects: a smaller list, and RSS
** is not checked.)
*/
#if defined(HARDMEMTESTS)
#define NLIST	"2e4"
#define COLLECT_CHECKS	0
#else
#define NLIST	"1e6"
#define COLLECT_CHECKS	RSS_CHECKS
#endif

static void test_collect (void) {
  lua_State *L = shoal_newstate(0);
  size_t before, built, after;
  luaL_openlibs(L);
  before = rss_kb();
  /* a list of small blocks */
  T_OK(luaL_dostring(L, "for i = 1, " NLIST " do t = {t, i} end") == LUA_OK);
  built = rss_kb();
  T_OK(luaL_dostring(L, "t = nil collectgarbage('collect') "
                        "return require('shoal').memory().inuse") == LUA_OK);
  T_OK(lua_tointeger(L, -1) < 1024 * 1024);  /* the list is gone */
  after = rss_kb();
  T_OK(!COLLECT_CHECKS || built > before + 50 * 1024);
  T_OK(!COLLECT_CHECKS || after < before + 8 * 1024);
  if (COLLECT_CHECKS && after >= before + 8 * 1024)
    printf("# rss before %zu KB, built %zu KB, after collect %zu KB\n", before, built, after);
  lua_close(L);
}


static void test_loop (void) {
  size_t r200 = 0, r2000;
  for (int i = 1; i <= 2000; i++) {
    lua_State *L = shoal_newstate(0);
    luaL_openlibs(L);
    if (luaL_dostring(L, "local t = {} for i = 1, 500 do t[i] = tostring(i) .. 'x' end "
                         "nogc('open', {t}) return #t") != LUA_OK ||
        lua_tointeger(L, -1) != 500) {
      T_OK(0);
      lua_close(L);
      break;
    }
    lua_close(L);
    if (i == 200) r200 = rss_kb();
  }
  r2000 = rss_kb();
  T_OK(!RSS_CHECKS || r2000 < r200 + 2048);  /* no growth: VMs give all back */
  if (RSS_CHECKS && r2000 >= r200 + 2048) printf("# rss after 200 VMs %zu KB, after 2000 %zu KB\n", r200, r2000);
  shoal_MemStats st;
  shoal_heapstats(NULL, &st);
  T_EQI(st.inuse, 0);  /* nothing left anywhere in the process */
}


/*
** shoal_newstate with a limit about what a VM needs: NULL or a state
** that works, never a crash (a state that failed half made freed its
** heap twice: ASan and the release build crashed at 1700-3519 bytes).
*/
static void test_newstatelimit (void) {
  int made = 0, failed = 0;
  shoal_MemStats st;
  for (size_t limit = 1000; limit <= 6000; limit += 16) {
    lua_State *L = shoal_newstate(limit);
    if (L == NULL) { failed++; continue; }
    made++;
    lua_pushinteger(L, 42);  /* usable, within its limit */
    T_EQI(lua_tointeger(L, -1), 42);
    lua_close(L);
  }
  T_OK(made > 0 && failed > 0);  /* both sides of the edge were tried */
  shoal_heapstats(NULL, &st);
  T_EQI(st.inuse, 0);
}


/*
** A host wrapping the allocator with lua_setallocf (counting what passes,
** as ltests.c or a stock host's memory counter does) sees every block
** freed at lua_close, and the heap still goes with the state.
*/
typedef struct Wrap { void *ud; lua_Alloc f; size_t held; } Wrap;

static void *wrapalloc (void *ud, void *ptr, size_t osize, size_t nsize) {
  Wrap *w = ud;
  void *b = w->f(w->ud, ptr, osize, nsize);
  if (ptr != NULL && (b != NULL || nsize == 0)) w->held -= osize;
  if (b != NULL) w->held += nsize;
  return b;
}

static void test_wrapped (void) {
  shoal_MemStats st0, st;
  nospares();  /* the process's, counted in its 'mapped' */
  shoal_heapstats(NULL, &st0);
  for (int i = 0; i < 50; i++) {
    lua_State *L = shoal_newstate(0);
    Wrap w;
    w.f = lua_getallocf(L, &w.ud);
    w.held = (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024 +
             (size_t)lua_gc(L, LUA_GCCOUNTB, 0);
    lua_setallocf(L, wrapalloc, &w);
    luaL_openlibs(L);
    T_OK(luaL_dostring(L, "local t = {} for i = 1, 2000 do t[i] = {i, tostring(i)} end") == LUA_OK);
    lua_close(L);
    if (!T_EQI(w.held, 0)) break;  /* every block freed through it */
  }
  T_OK(shoalA_spares(0) > 0);  /* the heaps' segments, for the next heaps */
  nospares();
  shoal_heapstats(NULL, &st);
  T_EQI(st.mapped, st0.mapped);  /* every heap went */
  T_EQI(st.inuse, st0.inuse);
}


/*
** Statistics: the process's 'inuse' is the sum of its heaps' exactly, with
** many small heaps (each used to lag by up to 64 KB); a heap's peak is
** its highest 'inuse', a spike of a few KB included, and never falls.
*/
static void test_stats (void) {
  enum { NH = 200 };
  ShoalHeap *h[NH];
  void *b[NH];
  shoal_MemStats st0, st, hs;
  size_t sum = 0;
  shoal_heapstats(NULL, &st0);
  for (int i = 0; i < NH; i++) {
    h[i] = shoal_heapnew();
    b[i] = shoal_alloc(h[i], NULL, 0, 1000 + (size_t)i);
    sum += 1000 + (size_t)i;
  }
  shoal_heapstats(NULL, &st);
  T_EQI(st.inuse - st0.inuse, sum);
  T_OK(st.peak >= st.inuse);
  {  /* a 3000-byte spike in h[0], then down: the peak keeps it */
    void *spike[3];
    for (int i = 0; i < 3; i++) spike[i] = shoal_alloc(h[0], NULL, 0, 1000);
    for (int i = 0; i < 3; i++) shoal_alloc(h[0], spike[i], 1000, 0);
  }
  shoal_heapstats(h[0], &hs);
  T_EQI(hs.inuse, 1000);
  T_EQI(hs.peak, 4000);
  shoal_alloc(h[0], b[0], 1000, 0);
  shoal_heapstats(h[0], &hs);
  T_EQI(hs.inuse, 0);
  T_EQI(hs.peak, 4000);  /* read again: it does not fall */
  for (int i = 0; i < NH; i++) {
    if (i > 0) shoal_alloc(h[i], b[i], 1000 + (size_t)i, 0);
    shoal_heapfree(h[i]);
  }
  shoal_heapstats(NULL, &st);
  T_EQI(st.inuse, st0.inuse);
  {  /* a large block shrunk small by another thread gives its pages
        back (it kept them all, whatever the heap's limit) */
    ShoalHeap *g = shoal_heapnew();
    unsigned char *p = shoal_alloc(g, NULL, 0, 900000);
    shoal_MemStats before, after;
    fill(p, 900000, 7);
    shoal_heapstats(g, &before);
    T_OK(shoal_shrinkremote(g, p, 900000, 16) == p);
    shoal_heapstats(g, &after);
    T_OK(intact(p, 16, 7));
    T_OK(after.mapped + 880000 <= before.mapped);
    T_EQI(after.inuse, 16);
    p = shoal_alloc(g, p, 16, 40000);  /* the owner grows it again */
    T_OK(p != NULL && intact(p, 16, 7));
    shoal_alloc(g, p, 40000, 0);
    shoal_heapstats(g, &after);
    T_EQI(after.inuse, 0);
    shoal_heapfree(g);
  }
  /* sizes no mapping can hold fail cleanly, limit or not (they wrapped to
     0 pages, which a cached mapping's head then served) */
  h[0] = shoal_heapnew();
  b[0] = shoal_alloc(h[0], NULL, 0, 100000);
  shoal_alloc(h[0], b[0], 100000, 0);  /* its mapping is cached */
  T_OK(shoal_alloc(h[0], NULL, 0, SIZE_MAX) == NULL);
  T_OK(shoal_alloc(h[0], NULL, 0, SIZE_MAX - 100) == NULL);
  shoal_heaplimit(h[0], 1 << 20);
  T_OK(shoal_alloc(h[0], NULL, 0, SIZE_MAX - 100) == NULL);
  shoal_heapstats(h[0], &hs);
  T_EQI(hs.inuse, 0);
  shoal_heapfree(h[0]);
}


static ShoalHeap *trimheap;

/* Pages of 'p[0..n)' in memory, counted once each. */
static int residentpages (void **p, int n) {
  int count = 0;
  uintptr_t last = 0;
  for (int i = 0; i < n; i++) {
    uintptr_t a = (uintptr_t)p[i] & ~(uintptr_t)4095;
    if (a != last) count += inmemory(a);
    last = a;
  }
  return count;
}

static void *freeallremote (void *arg) {
  void **p = arg;
  for (int i = 0; i < 20000; i++) shoal_freeremote(trimheap, p[i], 64);
  return NULL;
}

/* Slabs emptied only by another thread's frees go back at a trim. */
static void test_trimremote (void) {
  void **p = malloc(20000 * sizeof(void *));
  pthread_t th;
  int before, after;
  shoal_MemStats st;
  trimheap = shoal_heapnew();
  for (int i = 0; i < 20000; i++) {
    p[i] = shoal_alloc(trimheap, NULL, 0, 64);
    memset(p[i], 1, 64);
  }
  before = residentpages(p, 20000);
  T_EQI(pthread_create(&th, NULL, freeallremote, p), 0);
  T_EQI(pthread_join(th, NULL), 0);
  shoal_heaptrim(trimheap);
  after = residentpages(p, 20000);
  T_OK(before > 250 && after < before / 2);
  if (after >= before / 2) printf("# resident pages %d before, %d after\n", before, after);
  shoal_heapstats(trimheap, &st);
  T_EQI(st.inuse, 0);
  shoal_heapfree(trimheap);
  free(p);
}


/*
** A trim gives back the pages of partly used slabs that hold no block out.
** The free blocks there come back when their slab has no other: the heap
** takes no new slab for them, and hands none out twice. The blocks out
** stay intact.
*/
static int inslabs (void *b, void *const *slab, int nslab) {
  for (int k = 0; k < nslab; k++)
    if (((uintptr_t)b & ~(uintptr_t)0xFFFF) == (uintptr_t)slab[k]) return 1;
  return 0;
}

/* The slab of 'b' noted among the '*nslab' of 'slab', while fewer than 'max' */
static void noteslab (void *b, void **slab, int *nslab, int max) {
  if (!inslabs(b, slab, *nslab) && *nslab < max)
    slab[(*nslab)++] = (void *)((uintptr_t)b & ~(uintptr_t)0xFFFF);
}

static void test_trimslabs (void) {
  enum { N = 20000, KEEP = 400, MAXSLABS = 64 };
  void **p = malloc(N * sizeof(void *)), **q = malloc(N * sizeof(void *));
  void *slab[MAXSLABS];
  ShoalHeap *h = shoal_heapnew();
  int nslab = 0, before, after, bad = 0, nq = 0, parked;
  if (!T_OK(p != NULL && q != NULL && h != NULL)) return;
  for (int i = 0; i < N; i++) {
    if ((p[i] = shoal_alloc(h, NULL, 0, 64)) == NULL) { bad = 1; break; }
    fill(p[i], 64, (unsigned char)i);
    noteslab(p[i], slab, &nslab, MAXSLABS);
  }
  if (!T_EQI(bad, 0)) return;
  for (int i = 0; i < N; i++)
    if (i % KEEP != 0) shoal_alloc(h, p[i], 64, 0);
  before = residentpages(p, N);
  shoal_heaptrim(h);
  after = residentpages(p, N);
  parked = shoalA_parked(h);
  T_OK(before > 250 && after < before / 2 && parked > 0);
  if (after >= before / 2)
    printf("# resident pages %d before, %d after\n", before, after);
  for (int i = 0; i < N; i += KEEP)
    if (!intact(p[i], 64, (unsigned char)i)) bad = 2;
  shoal_heaptrim(h);  /* again: nothing more to give, nothing lost */
  T_EQI(shoalA_parked(h), parked);
  for (nq = 0; nq < N - N / KEEP; nq++) {  /* as many as were freed */
    if ((q[nq] = shoal_alloc(h, NULL, 0, 64)) == NULL) { bad = 3; break; }
    if (!inslabs(q[nq], slab, nslab)) bad = 4;  /* a new slab */
    fill(q[nq], 64, (unsigned char)(nq * 7 + 3));
  }
  T_EQI(shoalA_parked(h), 0);  /* every slab handed its parked blocks out */
  for (int i = 0; i < N; i += KEEP)
    if (!intact(p[i], 64, (unsigned char)i)) bad = 5;
  for (int i = 0; i < nq; i++)
    if (!intact(q[i], 64, (unsigned char)(i * 7 + 3))) bad = 6;  /* twice */
  T_EQI(bad, 0);
  for (int i = 0; i < nq; i++) shoal_alloc(h, q[i], 64, 0);
  for (int i = 0; i < N; i += KEEP) shoal_alloc(h, p[i], 64, 0);
  shoal_heapfree(h);
  free(p);
  free(q);
}


/* Resident pages of the 'n' 64 KB slabs at 'slab'. */
static int slabpages (void **slab, int n) {
  int count = 0;
  for (int i = 0; i < n; i++) count += pagesin(slab[i], 64 * 1024);
  return count;
}


/*
** A trim gives back the pages of a heap's MIXED slabs (its first two,
** every class in turn) that hold only free blocks, side by side, of any
** class; that room comes back as blocks of any class, each handed out
** once, before the heap takes a new slab. A second trim finds no more.
*/
static void test_trimmixed (void) {
  enum { N = 1200, KEEP = 200, MAXSLABS = 8 };
  static void *p[N], *q[N];
  static size_t size[N];
  void *slab[MAXSLABS];
  ShoalHeap *h = shoal_heapnew();
  int nslab = 0, before, after, bad = 0, inmixed = 0;
  size_t runs;
  if (!T_OK(h != NULL)) return;
  for (int i = 0; i < N; i++) {  /* about 100 KB: the two MIXED slabs */
    size[i] = 16 + (size_t)(i * 37) % 150;
    if ((p[i] = shoal_alloc(h, NULL, 0, size[i])) == NULL) { bad = 1; break; }
    fill(p[i], size[i], (unsigned char)i);
    noteslab(p[i], slab, &nslab, MAXSLABS);
  }
  if (!T_EQI(bad, 0) || !T_OK(nslab <= 2)) return;
  for (int i = 0; i < N; i++)
    if (i % KEEP != 0) shoal_alloc(h, p[i], size[i], 0);
  before = slabpages(slab, nslab);
  shoal_heaptrim(h);
  after = slabpages(slab, nslab);
  runs = shoalA_mixedruns(h);
  T_OK(runs >= 16 * 4096 && after <= before - 16);
  if (runs < 16 * 4096 || after > before - 16)
    printf("# mixed slabs' resident pages %d before, %d after, %zu bytes "
           "parked\n", before, after, runs);
  shoal_heaptrim(h);  /* again: nothing more to give, nothing lost */
  T_EQI(shoalA_mixedruns(h), runs);
  for (int i = 0; i < N; i += KEEP)
    if (!intact(p[i], size[i], (unsigned char)i)) bad = 2;
  for (int i = 0; i < N; i++) {  /* as much again, every block tagged */
    if (i % KEEP == 0) continue;
    if ((q[i] = shoal_alloc(h, NULL, 0, size[i])) == NULL) { bad = 3; break; }
    inmixed += inslabs(q[i], slab, nslab);
    fill(q[i], size[i], (unsigned char)(i * 7 + 3));
  }
  T_OK(shoalA_mixedruns(h) < runs);
  T_OK(inmixed >= (N - N / KEEP) * 9 / 10);  /* no new slab for most */
  for (int i = 0; i < N; i++) {
    if (i % KEEP == 0 && !intact(p[i], size[i], (unsigned char)i)) bad = 4;
    if (i % KEEP != 0 && !intact(q[i], size[i], (unsigned char)(i * 7 + 3)))
      bad = 5;  /* handed out twice */
  }
  T_EQI(bad, 0);
  T_OK(shoalA_largeexact(h));
  shoal_heapfree(h);
}

/*
** Runs parked by a trim grow at the next one with what was freed beside
** them, and merge, so the slots they free take new runs: with 12 free
** stretches apart, a trim parks 8; once the blocks between the first 8
** are freed too, the next trim parks the other 4 as well. As much is
** allocated again from the same slabs, each block once.
*/
static void test_trimruns (void) {
  enum { N = 1800, GROUP = 150, APART = 10, MAXSLABS = 8 };
  static void *p[N];
  void *slab[MAXSLABS];
  ShoalHeap *h = shoal_heapnew();
  int nslab = 0, bad = 0, inmixed = 0, pages1, pages2;
  size_t runs1, runs2;
  if (!T_OK(h != NULL)) return;
  for (int i = 0; i < N; i++) {  /* 115 KB of 64-byte blocks: MIXED slabs */
    if ((p[i] = shoal_alloc(h, NULL, 0, 64)) == NULL) { bad = 1; break; }
    fill(p[i], 64, (unsigned char)i);
    noteslab(p[i], slab, &nslab, MAXSLABS);
  }
  if (!T_EQI(bad, 0) || !T_OK(nslab <= 2)) return;
  for (int i = 0; i < N; i++)  /* 12 stretches of 140 blocks, 10 apart */
    if (i % GROUP >= APART) shoal_alloc(h, p[i], 64, 0);
  shoal_heaptrim(h);
  runs1 = shoalA_mixedruns(h);
  pages1 = slabpages(slab, nslab);
  for (int i = 0; i < 8 * GROUP; i++)  /* what kept the first 8 apart */
    if (i % GROUP < APART && i >= APART) shoal_alloc(h, p[i], 64, 0);
  shoal_heaptrim(h);
  runs2 = shoalA_mixedruns(h);
  pages2 = slabpages(slab, nslab);
  T_OK(runs2 >= runs1 + 4 * (GROUP - APART) * 64);
  T_OK(pages2 <= pages1 - 4 * 2);  /* 2 whole pages in each of the 4 */
  if (runs2 < runs1 + 4 * (GROUP - APART) * 64 || pages2 > pages1 - 8)
    printf("# runs %zu then %zu bytes, resident pages %d then %d\n",
           runs1, runs2, pages1, pages2);
  for (int i = 0; i < N; i++) {  /* as much again, every block tagged */
    if (i < APART || (i % GROUP < APART && i >= 8 * GROUP)) continue;
    if ((p[i] = shoal_alloc(h, NULL, 0, 64)) == NULL) { bad = 2; break; }
    inmixed += inslabs(p[i], slab, nslab);
    fill(p[i], 64, (unsigned char)(i * 7 + 3));
  }
  T_EQI(inmixed, N - APART - 4 * APART);
  for (int i = 0; i < N; i++) {
    int kept = i < APART || (i % GROUP < APART && i >= 8 * GROUP);
    if (!intact(p[i], 64, (unsigned char)(kept ? i : i * 7 + 3))) bad = 3;
  }
  T_EQI(bad, 0);
  T_OK(shoalA_largeexact(h));
  shoal_heapfree(h);
}


/*
** More runs than slots: the runs parked before keep theirs. Two MIXED
** slabs full of 64-byte blocks; the blocks meeting every odd page of one
** slab freed and trimmed (8 runs), then those of the other slab's odd
** pages (8 more): the first 8 stay parked, whichever slab the trim looks
** at first, and all the room is taken again without a new slab.
*/
static int freepages (ShoalHeap *h, void **p, int n, char *slab, int *freed) {
  int count = 0;
  for (int i = 0; i < n; i++) {
    char *b = p[i];
    long pg = (b - slab) / 4096, pgend = (b + 63 - slab) / 4096;
    if (freed[i] || b < slab || b >= slab + 65536) continue;
    if (pg % 2 == 1 || pgend % 2 == 1) {
      shoal_alloc(h, b, 64, 0);
      freed[i] = 1;
      count++;
    }
  }
  return count;
}

static void trimrunsfull (int oldfirst) {
  enum { N = 2014 };
  static void *p[N];
  static int freed[N];
  void *slab[3];  /* room to note a third: there must be none */
  ShoalHeap *h = shoal_heapnew();
  int nslab = 0, bad = 0, nfreed, inmixed = 0;
  if (!T_OK(h != NULL)) return;
  for (int i = 0; i < N; i++) {  /* as many as the two slabs hold */
    freed[i] = 0;
    if ((p[i] = shoal_alloc(h, NULL, 0, 64)) == NULL) { bad = 1; break; }
    noteslab(p[i], slab, &nslab, 3);
  }
  if (!T_EQI(bad, 0) || !T_EQI(nslab, 2)) return;
  for (int i = 0; i < N; i++) fill(p[i], 64, (unsigned char)i);
  nfreed = freepages(h, p, N, (char *)slab[oldfirst], freed);
  shoal_heaptrim(h);
  T_OK(shoalA_mixedruns(h) >= 8 * 4096);
  nfreed += freepages(h, p, N, (char *)slab[!oldfirst], freed);
  shoal_heaptrim(h);
  for (int i = 0; i < N && nfreed > 0; i++) {
    if (!freed[i]) continue;
    if ((p[i] = shoal_alloc(h, NULL, 0, 64)) == NULL) { bad = 2; break; }
    inmixed += inslabs(p[i], slab, 2);
    fill(p[i], 64, (unsigned char)(i * 7 + 3));
  }
  T_EQI(inmixed, nfreed);
  for (int i = 0; i < N; i++)
    if (!intact(p[i], 64, (unsigned char)(freed[i] ? i * 7 + 3 : i))) bad = 3;
  T_EQI(bad, 0);
  shoal_heapfree(h);
}

static void test_trimrunsfull (void) {
  trimrunsfull(0);
  trimrunsfull(1);
}


/*
** A trim gives the slabs gone empty back to their segments, header pages
** and all, and the segments left empty go: a heap that held 20 MB of small
** blocks keeps its mixed slabs and the four empty slabs a heap at work
** keeps (at most a segment each), and its blocks' pages are out of RSS
** but for those. The heap takes blocks as before.
*/
static void test_unslab (void) {
  enum { N = 320000, MB = 1024 * 1024 };
  void **p = malloc(N * sizeof(void *));
  ShoalHeap *h = shoal_heapnew();
  shoal_MemStats st;
  int before, after, bad = 0;
  if (!T_OK(p != NULL && h != NULL)) return;
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < N; i++) {
      if ((p[i] = shoal_alloc(h, NULL, 0, 64)) == NULL) { bad = 1; break; }
      fill(p[i], 64, (unsigned char)(i + round));
    }
    if (!T_EQI(bad, 0)) return;
    for (int i = 0; i < N; i++)
      if (!intact(p[i], 64, (unsigned char)(i + round))) bad = 2;
    T_EQI(bad, 0);
    before = residentpages(p, N);
    for (int i = 0; i < N; i++) shoal_alloc(h, p[i], 64, 0);
    shoal_heaptrim(h);
    after = residentpages(p, N);
    shoal_heapstats(h, &st);
    T_OK(before > 4000 && after < 8 * 16);  /* 16 pages a slab */
    T_OK(st.mapped <= 6 * MB);
    if (after >= 8 * 16 || st.mapped > 6 * MB)
      printf("# resident pages %d, then %d; %zu bytes mapped\n", before, after, st.mapped);
  }
  shoal_heapfree(h);
  free(p);
}

/* a VM keeping one table in 400 of those it made; then they are intact
   and the VM makes as many again */
static const char SPARSEVM[] =
  "t = {} for i = 1, 20000 do t[i] = {i} end "
  "for i = 1, 20000 do if i % 400 ~= 0 then t[i] = nil end end "
  "collectgarbage()";
static const char SPARSEKEPT[] =
  "for i = 1, 20000 do if i % 400 == 0 then assert(t[i][1] == i) end end "
  "for i = 1, 20000 do t[i] = {-i} end "
  "for i = 1, 20000 do assert(t[i][1] == -i) end";

/*
** A host trims a VM's heap (shoal_heaptrim) as the VM goes idle: its
** partly used slabs give pages back, its data stays intact and it goes on
** working. A full collection does not walk the slabs.
*/
static void test_trimvm (void) {
  lua_State *L = shoal_newstate(0);
  luaL_openlibs(L);
  T_OK(luaL_dostring(L, SPARSEVM) == LUA_OK);
  T_EQI(shoalA_parked(shoal_heap(L)), 0);
  shoal_heaptrim(shoal_heap(L));
  T_OK(shoalA_parked(shoal_heap(L)) > 0);
  T_OK(luaL_dostring(L, SPARSEKEPT) == LUA_OK);
  lua_close(L);
}


/*
** From Lua, require("shoal").trim() trims the VM's own heap as the host's
** shoal_heaptrim does (its free pages parked), and returns fail, the VM
** going on, where the VM is on the C library's allocator.
*/
static void test_trimlua (void) {
  lua_State *L = shoal_newstate(0);
  luaL_openlibs(L);
  T_OK(luaL_dostring(L, SPARSEVM) == LUA_OK);
  T_EQI(shoalA_parked(shoal_heap(L)), 0);
  T_OK(luaL_dostring(L, "assert(require('shoal').trim() == true)") == LUA_OK);
  T_OK(shoalA_parked(shoal_heap(L)) > 0);
  T_OK(luaL_dostring(L, SPARSEKEPT) == LUA_OK);
  lua_close(L);
  shoal_defaultalloc(0);
  L = luaL_newstate();
  shoal_defaultalloc(1);
  luaL_openlibs(L);
  T_OK(luaL_dostring(L, "local ok = require('shoal').trim() "
                        "assert(ok == nil and select('#', require('shoal').trim()) == 1) "
                        "return #string.rep('x', 100)") == LUA_OK);
  T_EQI(lua_tointeger(L, -1), 100);
  lua_close(L);
}


/*
** A heap gone idle keeps what it no longer uses (empty slabs' pages, dirty
** pages, a cached mapping) until it allocates or frees again; another
** thread's shoal_heapexpire gives back what waited 500 ms (not before),
** the four empty slabs a heap keeps at work too, 16 empty slabs a call,
** of that heap only, or (NULL) of every heap. The heap goes on as before.
*/
static void *expireheap (void *h) {
  shoal_heapexpire(h);
  return NULL;
}

static void expirefrom (ShoalHeap *h) {  /* from another thread */
  pthread_t th;
  T_EQI(pthread_create(&th, NULL, expireheap, h), 0);
  T_EQI(pthread_join(th, NULL), 0);
}

static void test_heapexpire (void) {
  enum { N = 20000, MB = 1024 * 1024 };
  void **p = malloc(N * sizeof(void *)), *m[4], *big, *o;
  ShoalHeap *h = shoal_heapnew(), *other = shoal_heapnew();
  shoal_MemStats st1, st, ost1, ost;
  int before, first, after, bad = 0;
  long t0 = nowms();
  if (!T_OK(p != NULL && h != NULL && other != NULL)) return;
  for (int i = 0; i < N; i++) {
    p[i] = shoal_alloc(h, NULL, 0, 64);
    fill(p[i], 64, 1);
  }
  for (int k = 0; k < 4; k++) {
    m[k] = shoal_alloc(h, NULL, 0, 100000);
    fill(m[k], 100000, 2);
  }
  big = shoal_alloc(h, NULL, 0, MB);
  o = shoal_alloc(other, NULL, 0, MB);
  fill(big, MB, 3);
  fill(o, MB, 4);
  before = residentpages(p, N);
  for (int i = 0; i < N; i++) shoal_alloc(h, p[i], 64, 0);
  for (int k = 0; k < 4; k++) shoal_alloc(h, m[k], 100000, 0);
  shoal_alloc(h, big, MB, 0);
  shoal_alloc(other, o, MB, 0);
  shoal_heapstats(h, &st1);
  shoal_heapstats(other, &ost1);
  T_OK(shoalA_dirty(h) > 0 || mapped);
  expirefrom(h);  /* too soon: all stays */
  if (nowms() - t0 < SOON) {
    shoal_heapstats(h, &st);
    T_EQI(st.mapped, st1.mapped);
    T_OK(residentpages(p, N) == before && (shoalA_dirty(h) > 0 || mapped));
  }
  usleep(600 * 1000);
  expirefrom(h);  /* 16 empty slabs at most a call: one stays */
  first = residentpages(p, N);
  expirefrom(h);
  /* the first page of each slab stays, and the two MIXED slabs: 63 pages
     of 318; 123 with the four empty slabs kept */
  after = residentpages(p, N);
  T_OK(first > after);
  T_OK(before > 250 && after < before / 4);
  if (after >= before / 4) printf("# resident pages %d before, %d after\n", before, after);
  shoal_heapstats(h, &st);
  T_OK(st.mapped + MB <= st1.mapped && shoalA_dirty(h) == 0);
  T_EQI(st.inuse, 0);
  shoal_heapstats(other, &ost);
  T_EQI(ost.mapped, ost1.mapped);  /* the other heap's is its own */
  expirefrom(NULL);  /* every heap's */
  shoal_heapstats(other, &ost);
  T_OK(ost.mapped + MB <= ost1.mapped);
  T_OK(shoalA_largeexact(h) && shoalA_largeexact(other));
  for (int i = 0; i < N; i++) {  /* the heap goes on */
    p[i] = shoal_alloc(h, NULL, 0, 64);
    fill(p[i], 64, 5);
  }
  big = shoal_alloc(h, NULL, 0, MB);
  if (T_OK(big != NULL)) fill(big, MB, 6);
  for (int i = 0; i < N; i++) bad += !intact(p[i], 64, 5);
  T_EQI(bad, 0);
  T_OK(big == NULL || intact(big, MB, 6));
  shoal_alloc(h, big, MB, 0);
  for (int i = 0; i < N; i++) shoal_alloc(h, p[i], 64, 0);
  shoal_heapstats(h, &st);
  T_EQI(st.inuse, 0);
  shoal_heapfree(h);
  shoal_heapfree(other);
  free(p);
}


/*
** Each dirty page goes back to the OS once it has waited 500 ms, not with
** the oldest of its segment: a block freed 300 ms after another keeps its
** pages when the other's go (they once went together, and the next blocks
** faulted them in again), and they go in turn. (Checks that pages stay
** are made only when they are younger than 450 ms by then.)
*/
static void test_dirtyage (void) {
  enum { PAGES = 25, SIZE = PAGES * 4096 - 400 };
  ShoalHeap *h;
  unsigned char *a, *b, *c;
  long t0, t1;
  if (mapped) return;
  nospares();  /* fresh segments, not an earlier test's spares */
  h = shoal_heapnew();
  c = shoal_alloc(h, NULL, 0, 20000);  /* keeps the segment */
  a = shoal_alloc(h, NULL, 0, SIZE);
  b = shoal_alloc(h, NULL, 0, SIZE);
  if (!T_OK(a != NULL && b != NULL && c != NULL)) return;
  fill(a, SIZE, 1);
  fill(b, SIZE, 2);
  shoal_alloc(h, a, SIZE, 0);
  t0 = nowms();
  usleep(300 * 1000);
  shoal_alloc(h, b, SIZE, 0);
  t1 = nowms();
  T_OK(shoalA_dirty(h) == 2 * PAGES * 4096 || t1 - t0 >= 450);
  usleep(250 * 1000);  /* a's pages waited 550 ms, b's 250 */
  expirefrom(h);
  if (nowms() - t1 < 450) {
    T_OK(shoalA_dirty(h) == PAGES * 4096);
    if (shoalA_dirty(h) != PAGES * 4096)
      printf("# %zu bytes dirty, not %d\n", shoalA_dirty(h), PAGES * 4096);
  }
  T_OK(shoalA_largeexact(h));
  usleep(300 * 1000);
  expirefrom(h);
  T_OK(shoalA_dirty(h) == 0 && shoalA_largeexact(h));
  a = shoal_alloc(h, NULL, 0, SIZE);  /* the heap goes on */
  if (T_OK(a != NULL)) fill(a, SIZE, 3);
  T_OK(a == NULL || intact(a, SIZE, 3));
  shoal_alloc(h, a, SIZE, 0);
  shoal_alloc(h, c, 20000, 0);
  shoal_heapfree(h);
}


/*
** Heaps made, used and released while another thread gives back what
** every heap keeps, with nothing kept waiting: the heap it is at may go
** under it (ASan and TSan see the rest).
*/
static void test_expirechurn (void) {
  enum { LIVE = 8 };
  ShoalHeap *live[LIVE] = {NULL};
  pthread_t th;
  void *calls;
  int bad = 0;
  shoalA_purgedelay(0);
  atomic_store(&stopexpiring, 0);
  atomic_store(&expirecalls, 0);
  T_EQI(pthread_create(&th, NULL, expirer, NULL), 0);
  /* valgrind runs one thread at a time, and may not switch to the
     expirer within 400 rounds: go on until it has run a while */
  for (int round = 0;
       round < 400 || (atomic_load(&expirecalls) < 100 && round < 200000);
       round++) {
    int k = round % LIVE;
    void *b[64], *m, *big;
    if (live[k] != NULL) shoal_heapfree(live[k]);
    live[k] = shoal_heapnew();
    for (int i = 0; i < 64; i++) {
      b[i] = shoal_alloc(live[k], NULL, 0, 1000);
      fill(b[i], 1000, (unsigned char)i);
    }
    m = shoal_alloc(live[k], NULL, 0, 50000);
    big = shoal_alloc(live[k], NULL, 0, 300000);
    for (int i = 0; i < 64; i += 2) {
      bad += !intact(b[i], 1000, (unsigned char)i);
      shoal_alloc(live[k], b[i], 1000, 0);
    }
    shoal_alloc(live[k], m, 50000, 0);  /* kept: dirty pages, */
    shoal_alloc(live[k], big, 300000, 0);  /* a cached mapping */
    for (int i = 1; i < 64; i += 2) bad += !intact(b[i], 1000, (unsigned char)i);
  }
  atomic_store(&stopexpiring, 1);
  T_EQI(pthread_join(th, &calls), 0);
  shoalA_purgedelay(500);
  T_EQI(bad, 0);
  T_OK((intptr_t)calls > 0);
  for (int k = 0; k < LIVE; k++) shoal_heapfree(live[k]);
}


/*
** Two VMs on two threads running into their limits (their tables' parts
** moving by mremap), while a third thread reads every statistic: each
** VM catches its errors, no read sees a heap over its limit or a process
** count gone wild. Under TSan this caught false races: mremap is not seen
** by TSan, so lalloc.c moves pages by mmap and munmap there.
*/
static lua_State *limitvm[2];
static int limitooms[2];
static atomic_int limitdone, limitbad;

static void *limitworker (void *arg) {
  int i = (int)(intptr_t)arg;
  lua_State *L = limitvm[i];
  if (luaL_dostring(L, "local n = 0 for r = 1, 20 do "
        "local ok, e = pcall(function () local t = {} "
        "for i = 1, 1e6 do t[i] = ('x'):rep(i % 64) end end) "
        "if not ok and e == 'not enough memory' then n = n + 1 end "
        "collectgarbage() end return n") == LUA_OK)
    limitooms[i] = (int)lua_tointeger(L, -1);
  return NULL;
}

static void *limitreader (void *arg) {
  (void)arg;
  while (!atomic_load(&limitdone)) {
    shoal_MemStats st;
    for (int i = 0; i < 2; i++) {
      shoal_heapstats(shoal_heap(limitvm[i]), &st);
      if (st.inuse > st.limit || st.peak > st.limit) atomic_store(&limitbad, 1);
    }
    shoal_heapstats(NULL, &st);
    if (st.inuse > ((size_t)1 << 40)) atomic_store(&limitbad, 1);
  }
  return NULL;
}

static void test_limitthreads (void) {
  pthread_t t[3];
  for (int i = 0; i < 2; i++) {
    limitvm[i] = shoal_newstate(0);
    luaL_openlibs(limitvm[i]);
    shoal_setlimit(limitvm[i], 400000);
  }
  T_EQI(pthread_create(&t[2], NULL, limitreader, NULL), 0);
  for (int i = 0; i < 2; i++)
    T_EQI(pthread_create(&t[i], NULL, limitworker, (void *)(intptr_t)i), 0);
  for (int i = 0; i < 2; i++) T_EQI(pthread_join(t[i], NULL), 0);
  atomic_store(&limitdone, 1);
  T_EQI(pthread_join(t[2], NULL), 0);
  T_EQI(limitooms[0], 20);
  T_EQI(limitooms[1], 20);
  T_EQI(atomic_load(&limitbad), 0);
  for (int i = 0; i < 2; i++) lua_close(limitvm[i]);
}


/*
** A heap's limit (shoal_heaplimit): a block that brings 'inuse' to the
** limit exactly is granted, one byte more is not; a small block growing
** within its class is held to it too; blocks freed by another thread make
** room again at once.
*/
static void *limit_freer (void *arg) {
  void **job = arg;
  shoal_freeremote(job[0], job[1], (size_t)(uintptr_t)job[2]);
  return NULL;
}

static void test_heaplimit (void) {
  ShoalHeap *h = shoal_heapnew();
  shoal_MemStats st;
  unsigned char *a, *b;
  void *job[3];
  pthread_t th;
  shoal_heaplimit(h, 100000);
  shoal_heapstats(h, &st);
  T_EQI(st.limit, 100000);
  T_OK(shoal_alloc(h, NULL, 0, 100001) == NULL);
  a = shoal_alloc(h, NULL, 0, 100000);  /* the limit exactly */
  T_OK(a != NULL);
  T_OK(shoal_alloc(h, NULL, 0, 1) == NULL);
  if (a != NULL) shoal_alloc(h, a, 100000, 0);
  /* at the limit, a 10-byte block may not grow to 16 (its class) */
  a = shoal_alloc(h, NULL, 0, 99990);
  b = shoal_alloc(h, NULL, 0, 10);
  if (!T_OK(a != NULL && b != NULL)) {
    shoal_heapfree(h);
    return;
  }
  fill(b, 10, 3);
  T_OK(shoal_alloc(h, b, 10, 16) == NULL);
  T_OK(intact(b, 10, 3));  /* the block stays as it was */
  shoal_heapstats(h, &st);
  T_EQI(st.inuse, 100000);
  shoal_alloc(h, b, 10, 0);
  /* 'a' freed by another thread: its room serves the owner again */
  job[0] = h;
  job[1] = a;
  job[2] = (void *)(uintptr_t)99990;
  T_EQI(pthread_create(&th, NULL, limit_freer, job), 0);
  T_EQI(pthread_join(th, NULL), 0);
  a = shoal_alloc(h, NULL, 0, 99990);
  T_OK(a != NULL);
  shoal_heapstats(h, &st);
  T_EQI(st.inuse, 99990);
  if (a != NULL) shoal_alloc(h, a, 99990, 0);
  shoal_heapfree(h);
}


/*
** A heap's peak is never above the real one: a block freed by another
** thread and one of the same size allocated after it were never held
** together.
*/
static void test_peakremote (void) {
  ShoalHeap *h = shoal_heapnew();
  shoal_MemStats st;
  void *job[3], *b;
  pthread_t th;
  job[0] = h;
  job[1] = shoal_alloc(h, NULL, 0, 1000);
  job[2] = (void *)(uintptr_t)1000;
  T_EQI(pthread_create(&th, NULL, limit_freer, job), 0);
  T_EQI(pthread_join(th, NULL), 0);
  b = shoal_alloc(h, NULL, 0, 1000);
  shoal_heapstats(h, &st);
  T_EQI(st.inuse, 1000);
  T_EQI(st.peak, 1000);
  shoal_alloc(h, b, 1000, 0);
  shoal_heapfree(h);
}


/*
** The process's statistics: its peak catches a spike that came and went
** between two reads, but not memory freed by another thread, nor memory
** of a heap that went with it, counted again; its 'mapped' holds every
** heap's. (The spikes reach past the process's peak so far: mapped, not
** touched; run first, while that peak is low.)
*/
#define MB	((size_t)1024 * 1024)

static void test_processstats (void) {
  ShoalHeap *h = shoal_heapnew(), *g;
  shoal_MemStats st0, st, hs;
  size_t big;
  void *p, *job[3];
  pthread_t th;
  {  /* a spike of small blocks (the fast paths, a new slab every fourth),
        gone before the next read: the process's count must follow them
        (within 64 KB) */
    enum { MAXN = 1024, BS = 16000 };
    static void *b[MAXN];
    size_t n;
    shoal_heapstats(NULL, &st0);
    n = (st0.peak - st0.inuse + 2 * MB) / BS;  /* 2 MB past the peak */
    T_OK(n <= MAXN);
    if (n > MAXN) n = MAXN;
    for (size_t i = 0; i < n; i++) b[i] = shoal_alloc(h, NULL, 0, BS);
    for (size_t i = 0; i < n; i++) shoal_alloc(h, b[i], BS, 0);
    shoal_heapstats(NULL, &st);
    T_OK(st.peak + 64 * 1024 >= st0.inuse + n * BS);
    if (st.peak + 64 * 1024 < st0.inuse + n * BS)
      printf("# peak %zu, held %zu\n", st.peak, st0.inuse + n * BS);
  }
  shoal_heapstats(NULL, &st0);
  big = st0.peak - st0.inuse + 8 * MB;
  p = shoal_alloc(h, NULL, 0, big);  /* a spike, gone before the next read */
  T_OK(p != NULL);
  shoal_alloc(h, p, big, 0);
  shoal_heapstats(NULL, &st);
  T_OK(st.peak >= st0.peak + 4 * MB);
  if (st.peak < st0.peak + 4 * MB) printf("# peak %zu then %zu\n", st0.peak, st.peak);
  st0 = st;
  /* freed by another thread, then as much allocated again: never both */
  job[0] = h;
  job[1] = shoal_alloc(h, NULL, 0, big);
  job[2] = (void *)(uintptr_t)big;
  T_EQI(pthread_create(&th, NULL, limit_freer, job), 0);
  T_EQI(pthread_join(th, NULL), 0);
  p = shoal_alloc(h, NULL, 0, big);
  T_OK(p != NULL);
  shoal_alloc(h, p, big, 0);
  shoal_heapstats(NULL, &st);
  T_OK(st.peak <= st0.peak + MB);
  if (st.peak > st0.peak + MB) printf("# peak %zu then %zu\n", st0.peak, st.peak);
  /* a heap released holding a block, then as much allocated again */
  g = shoal_heapnew();
  T_OK(shoal_alloc(g, NULL, 0, big) != NULL);
  shoal_heapfree(g);
  p = shoal_alloc(h, NULL, 0, big);
  T_OK(p != NULL);
  shoal_heapstats(h, &hs);
  shoal_heapstats(NULL, &st);
  T_OK(st.peak <= st0.peak + MB);
  if (st.peak > st0.peak + MB) printf("# peak %zu then %zu\n", st0.peak, st.peak);
  T_OK(st.mapped >= hs.mapped && hs.mapped >= big);
  {  /* many heaps, each a little short of sending its count on: the
        peak read is still at least what the process holds */
    enum { NH = 40 };
    ShoalHeap *many[NH];
    void *b[NH][4];
    for (int i = 0; i < NH; i++) {
      many[i] = shoal_heapnew();
      for (int k = 0; k < 4; k++) b[i][k] = shoal_alloc(many[i], NULL, 0, 15000);
    }
    shoal_heapstats(NULL, &st);
    T_OK(st.inuse >= st0.inuse + big + NH * 60000);
    T_OK(st.peak >= st.inuse);
    for (int i = 0; i < NH; i++) {
      for (int k = 0; k < 4; k++) shoal_alloc(many[i], b[i][k], 15000, 0);
      shoal_heapfree(many[i]);
    }
  }
  shoal_alloc(h, p, big, 0);
  shoal_heapfree(h);
}


/* Is any byte of [p, p + n) mapped? mincore fails with ENOMEM if none. */
static int ismapped (void *p, size_t n) {
  unsigned char v[64];
  uintptr_t a = (uintptr_t)p & ~(uintptr_t)4095;
  if (n > 64 * 4096) n = 64 * 4096;
  return mincore((void *)a, n, v) == 0 || errno != ENOMEM;
}


/*
** A heap released gives back every mapping: its live large blocks, and
** the freed ones it kept for reuse, go to the process's spares, and from
** there to the OS (here when dropped; else when due); so does lua_close
** with a VM's large string. One larger than all the spares may hold goes
** at once.
*/
static void test_releaselarge (void) {
  ShoalHeap *h;
  lua_State *L;
  void *live, *cached, *huge;
  const char *s;
  nospares();
  h = shoal_heapnew();
  L = shoal_newstate(0);
  live = shoal_alloc(h, NULL, 0, 1000000);
  cached = shoal_alloc(h, NULL, 0, 2000000);
  huge = shoal_alloc(h, NULL, 0, 17 * 1024 * 1024);
  if (!T_OK(live != NULL && cached != NULL && huge != NULL)) return;
  memset(live, 1, 1000000);
  shoal_alloc(h, cached, 2000000, 0);  /* kept for reuse a while */
  T_OK(ismapped(live, 1000000));
  shoal_heapfree(h);
  T_OK(!ismapped(huge, 17 * 1024 * 1024));
  T_EQI(shoalA_sparemaps(0), 2);
  T_OK(ismapped(live, 1000000) && ismapped(cached, 2000000));
  shoalA_sparemaps(1);
  T_OK(!ismapped(live, 1000000));
  T_OK(!ismapped(cached, 2000000));
  luaL_openlibs(L);
  T_OK(luaL_dostring(L, "s = string.rep('x', 3000000) return s") == LUA_OK);
  s = lua_tostring(L, -1);
  T_OK(s != NULL && ismapped((void *)s, 3000000));
  lua_close(L);
  T_OK(shoalA_sparemaps(0) >= 1);
  shoalA_sparemaps(1);
  T_OK(!ismapped((void *)s, 3000000));
}


/*
** The process's scope from Lua: every VM's bytes, and no VM's limit.
*/
static void test_memoryscope (void) {
  lua_State *L = shoal_newstate(4 * 1024 * 1024), *other = shoal_newstate(0);
  luaL_openlibs(L);
  luaL_openlibs(other);
  T_OK(luaL_dostring(other, "big = string.rep('y', 1000000)") == LUA_OK);
  T_OK(luaL_dostring(L, "local s = require('shoal') "
                        "local vm, p = s.memory(), s.memory('process') "
                        "return (vm.limit == 4 * 2^20 and p.limit == 0 and "
                        "p.inuse >= vm.inuse + 1000000 and p.mapped >= vm.mapped + 1000000 "
                        "and p.peak >= p.inuse) and 1 or 0") == LUA_OK);
  T_EQI(lua_tointeger(L, -1), 1);
  lua_pop(L, 1);
  /* a negative limit is refused, and the limit stays */
  T_OK(luaL_dostring(L, "local s = require('shoal') "
                        "local ok, e = pcall(s.setlimit, -1) "
                        "return (not ok and e:find('limit must not be negative', 1, true) "
                        "and s.memory().limit == 4 * 2^20) and 1 or 0") == LUA_OK);
  T_EQI(lua_tointeger(L, -1), 1);
  lua_close(L);
  lua_close(other);
}


/*
** Freed large mappings kept for reuse hold 64 MB at most: a larger one
** goes back at once (and alone), and one that would bring the cache past
** 64 MB sends older ones back first.
*/
static void test_cachebound (void) {
  ShoalHeap *h = shoal_heapnew();
  shoal_MemStats st0, st;
  void *a, *b;
  shoal_heapstats(h, &st0);
  a = shoal_alloc(h, NULL, 0, 100 * MB);
  T_OK(a != NULL);
  shoal_alloc(h, a, 100 * MB, 0);
  shoal_heapstats(h, &st);
  T_EQI(st.mapped, st0.mapped);
  a = shoal_alloc(h, NULL, 0, 40 * MB);
  b = shoal_alloc(h, NULL, 0, 40 * MB);
  T_OK(a != NULL && b != NULL);
  shoal_alloc(h, a, 40 * MB, 0);
  shoal_alloc(h, b, 40 * MB, 0);
  shoal_heapstats(h, &st);
  T_OK(st.mapped <= st0.mapped + 64 * MB);
  T_OK(shoalA_largeexact(h));
  shoal_heapfree(h);
  /* one too large to keep goes back alone: the kept ones stay */
  h = shoal_heapnew();
  shoal_heapstats(h, &st0);
  b = shoal_alloc(h, NULL, 0, 100 * MB);
  a = shoal_alloc(h, NULL, 0, 2 * MB);
  T_OK(a != NULL && b != NULL);
  shoal_alloc(h, a, 2 * MB, 0);  /* kept */
  shoal_alloc(h, b, 100 * MB, 0);
  shoal_heapstats(h, &st);
  T_EQI(st.mapped, st0.mapped + 2 * MB);
  T_OK(shoalA_largeexact(h));
  shoal_heapfree(h);
}


/*
** Blocks freed in slabs other than their class's current one serve new
** blocks: freeing every other block and allocating as many again maps
** nothing more.
*/
static void test_reuse (void) {
  enum { N = 100000 };
  ShoalHeap *h = shoal_heapnew();
  void **p = malloc(N * sizeof(void *));
  shoal_MemStats before, after;
  for (int i = 0; i < N; i++) p[i] = shoal_alloc(h, NULL, 0, 64);
  shoal_heapstats(h, &before);
  for (int i = 1; i < N; i += 2) shoal_alloc(h, p[i], 64, 0);
  for (int i = 1; i < N; i += 2) p[i] = shoal_alloc(h, NULL, 0, 64);
  shoal_heapstats(h, &after);
  T_EQI(after.mapped, before.mapped);
  for (int i = 0; i < N; i++) shoal_alloc(h, p[i], 64, 0);
  free(p);
  shoal_heapfree(h);
}


/*
** Emptied slabs keep their pages PURGEDELAY (500 ms): the next collection
** cycle would fault them in again. (Checked only when the steps took less
** than SOON ms.)
*/
static void test_keepempty (void) {
  enum { N = 12000 };
  ShoalHeap *h = shoal_heapnew();
  void **p = malloc(N * sizeof(void *));
  int before, after;
  long t0 = nowms();
  for (int i = 0; i < N; i++) {
    p[i] = shoal_alloc(h, NULL, 0, 64);
    memset(p[i], 1, 64);
  }
  before = residentpages(p, N);
  for (int i = 0; i < N; i++) shoal_alloc(h, p[i], 64, 0);
  after = residentpages(p, N);
  T_OK(before > 150);
  T_OK(after + 16 > before || nowms() - t0 >= SOON);  /* 15 pages a slab */
  if (after + 16 <= before) printf("# resident pages %d, then %d\n", before, after);
  free(p);
  shoal_heapfree(h);
}


/*
** A freed block of a MIXED slab replacing a smaller spare: the rest of
** that spare is not lost, it serves blocks of the largest classes it
** holds, each of its bytes but 8 at most.
*/
static void test_sparerest (void) {
  static const size_t restsize[] = {56, 896, 96};  /* 1048 bytes: all */
  ShoalHeap *h = shoal_heapnew();
  char *a = shoal_alloc(h, NULL, 0, 1500), *b = shoal_alloc(h, NULL, 0, 3000);
  char *c, *e, *r[3];
  int inside = 0;
  shoal_alloc(h, a, 1500, 0);  /* the spare: 1536 bytes */
  c = shoal_alloc(h, NULL, 0, 400);  /* 448 of them, from the bottom */
  e = shoal_alloc(h, NULL, 0, 40);  /* 40, from the top */
  T_OK(c == a && e == a + 1536 - 40);
  shoal_alloc(h, b, 3000, 0);  /* the new spare; 1048 bytes left over */
  for (int i = 0; i < 3; i++) {
    r[i] = shoal_alloc(h, NULL, 0, restsize[i]);
    inside += r[i] >= c + 448 && r[i] + restsize[i] <= e;
    fill((unsigned char *)r[i], restsize[i], (unsigned char)(i + 1));
  }
  T_EQI(inside, 3);
  T_OK(r[0] + 56 <= r[1] || r[1] + 896 <= r[0]);  /* no two overlap */
  T_OK(r[0] + 56 <= r[2] || r[2] + 96 <= r[0]);
  T_OK(r[1] + 896 <= r[2] || r[2] + 96 <= r[1]);
  for (int i = 0; i < 3; i++) {
    T_OK(intact((unsigned char *)r[i], restsize[i], (unsigned char)(i + 1)));
    shoal_alloc(h, r[i], restsize[i], 0);
  }
  shoal_alloc(h, e, 40, 0);
  shoal_alloc(h, c, 400, 0);
  shoal_heapfree(h);
}


/*
** A block of a MIXED slab shrunk, then freed, by another thread: it goes
** back to its own class, and the next block of its size reuses it.
*/
static void *shrinkfree (void *arg) {
  void **job = arg;
  job[2] = shoal_shrinkremote(job[0], job[1], 1000, 40);
  shoal_freeremote(job[0], job[1], 40);
  return NULL;
}

static void test_shrinkfree (void) {
  ShoalHeap *h = shoal_heapnew();
  void *job[3], *again;
  pthread_t th;
  shoal_MemStats st;
  job[0] = h;
  job[1] = shoal_alloc(h, NULL, 0, 1000);
  T_EQI(pthread_create(&th, NULL, shrinkfree, job), 0);
  T_EQI(pthread_join(th, NULL), 0);
  T_OK(job[2] == job[1]);  /* shrunk in place */
  shoal_heapstats(h, &st);
  T_EQI(st.inuse, 0);
  again = shoal_alloc(h, NULL, 0, 1000);
  T_OK(again == job[1]);
  shoal_alloc(h, again, 1000, 0);
  shoal_heapfree(h);
}


/*
** Many large blocks shrunk small by another thread at once, more than the
** heap keeps track of for its fast paths (see 'noteshrunk'): while they
** live, the owner's frees of small blocks in slabs still go right, and each
** mapping, freed or resized at Lua's new size, goes as what it is.
*/
#define NMAPS		10
#define NSMALLS		300

static void *shrinkmaps (void *arg) {
  void **job = arg;
  for (int i = 0; i < NMAPS; i++)
    if (shoal_shrinkremote(job[0], job[1 + i], 100000, 50) != job[1 + i])
      job[NMAPS + 1] = NULL;
  return NULL;
}

static void test_shrinkmaps (void) {
  ShoalHeap *h = shoal_heapnew();
  void *job[NMAPS + 2];
  unsigned char *small[NSMALLS];
  pthread_t th;
  shoal_MemStats st;
  int bad = 0;
  job[0] = h;
  job[NMAPS + 1] = h;  /* NULL if a shrink did not stay in place */
  for (int i = 0; i < NMAPS; i++) {
    job[1 + i] = shoal_alloc(h, NULL, 0, 100000);
    fill(job[1 + i], 100000, (unsigned char)i);
  }
  for (int i = 0; i < NSMALLS; i++) {
    small[i] = shoal_alloc(h, NULL, 0, 16 + (size_t)i % 200);
    fill(small[i], 16 + (size_t)i % 200, (unsigned char)(i + 100));
  }
  T_EQI(pthread_create(&th, NULL, shrinkmaps, job), 0);
  T_EQI(pthread_join(th, NULL), 0);
  T_OK(job[NMAPS + 1] != NULL);
  T_OK(shoalA_shrunkexact(h));
  /* mappings go, in turn, as fewer and fewer remain; small blocks with them */
  for (int i = 0; i < NMAPS; i++) {
    unsigned char *p = job[1 + i];
    if (!intact(p, 50, (unsigned char)i)) bad++;
    if (i % 2 == 0) {  /* resized at Lua's size: to another small block */
      p = shoal_alloc(h, p, 50, 60);
      if (p == NULL || !intact(p, 50, (unsigned char)i)) bad++;
      if (p != NULL) shoal_alloc(h, p, 60, 0);
    }
    else shoal_alloc(h, p, 50, 0);
    for (int k = i; k < NSMALLS; k += NMAPS) {
      if (!intact(small[k], 16 + (size_t)k % 200, (unsigned char)(k + 100)))
        bad++;
      shoal_alloc(h, small[k], 16 + (size_t)k % 200, 0);
    }
  }
  T_EQI(bad, 0);
  T_OK(shoalA_shrunkexact(h));
  shoal_heapstats(h, &st);
  T_EQI(st.inuse, 0);
  shoal_heapfree(h);
}


/*
** Blocks shrunk twice by another thread, a mapping and a small block: the
** second shrink keeps the first's real size, and the owner frees each at
** Lua's last size as what it really is.
*/
static void *reshrink (void *arg) {
  void **job = arg;
  job[3] = shoal_shrinkremote(job[0], job[1], 100000, 100);
  if (job[3] == job[1]) job[3] = shoal_shrinkremote(job[0], job[1], 100, 50);
  job[4] = shoal_shrinkremote(job[0], job[2], 1000, 100);
  if (job[4] == job[2]) job[4] = shoal_shrinkremote(job[0], job[2], 100, 50);
  return NULL;
}

/* page faults of this thread so far */
static long minflt (void) {
  struct rusage ru;
  getrusage(RUSAGE_THREAD, &ru);
  return ru.ru_minflt;
}

/* 'n' blocks of 64 bytes from 'h', written: the page faults they took */
static long smallround (ShoalHeap *h, unsigned char **p, int n) {
  long f0 = minflt();
  for (int i = 0; i < n; i++)
    if ((p[i] = shoal_alloc(h, NULL, 0, 64)) != NULL)
      fill(p[i], 64, (unsigned char)i);
  return minflt() - f0;
}

/*
** Spare segments: a heap that goes leaves its segments, their pages
** resident, and the next heap takes them rather than faulting fresh pages
** in; the pages it does not take wait as its dirty pages, held beside what
** it may hold until due, then go back. At most 16 wait, each 500 ms at
** most, counted in the process's 'mapped'.
*/
static void test_spares (void) {
  enum { N = 4000, MEDIUM = 100000, NH = 20 };
  static unsigned char *p[N];
  ShoalHeap *h, *hs[NH];
  shoal_MemStats st0, st;
  void *m;
  long fresh, reused;
  int bad = 0;
  nospares();
  shoal_heapstats(NULL, &st0);
  h = shoal_heapnew();
  fresh = smallround(h, p, N);  /* 250 KB in 64-byte blocks */
  m = shoal_alloc(h, NULL, 0, MEDIUM);  /* 25 pages at the top */
  if (!T_OK(h != NULL && p[N - 1] != NULL && m != NULL)) return;
  fill(m, MEDIUM, 7);
  shoal_heapfree(h);  /* its blocks still out: a VM's close */
  T_EQI(shoalA_spares(0), 1);
  T_EQI(shoalA_sparemaps(0), mapped);  /* the medium block, a mapping */
  shoal_heapstats(NULL, &st);
  T_EQI(st.mapped, st0.mapped + MB + mapped * 25 * 4096);  /* the spares */
  h = shoal_heapnew();
  reused = smallround(h, p, N);  /* the same pages, no fault */
  T_EQI(shoalA_spares(0), 0);
  shoal_heapstats(NULL, &st);
  T_EQI(st.mapped, st0.mapped + MB + mapped * 25 * 4096);  /* none fresh */
  T_OK(fresh >= 50 && reused < fresh / 4);
  if (fresh < 50 || reused >= fresh / 4)
    printf("# page faults: %ld fresh, %ld on a spare segment\n", fresh,
           reused);
  T_EQI(shoalA_dirty(h), mapped ? 0 : 25 * 4096);  /* the medium block's */
  T_OK(shoalA_largeexact(h));
  for (int i = 0; i < N; i++) bad += !intact(p[i], 64, (unsigned char)i);
  T_EQI(bad, 0);
  m = shoal_alloc(h, NULL, 0, MEDIUM);  /* the dirty run, no fresh page */
  T_OK(m != NULL && shoalA_dirty(h) == 0 && shoalA_largeexact(h));
  if (m != NULL) shoal_alloc(h, m, MEDIUM, 0);
  usleep(600 * 1000);  /* due: the heap's dirty pages go back */
  shoal_heapexpire(h);
  T_OK(shoalA_dirty(h) == 0 && shoalA_largeexact(h));
  shoal_heapfree(h);
  /* at most 16 wait; the oldest go first */
  for (int i = 0; i < NH; i++) {
    hs[i] = shoal_heapnew();
    if (!T_OK(hs[i] != NULL && shoal_alloc(hs[i], NULL, 0, 64) != NULL))
      return;
  }
  for (int i = 0; i < NH; i++) shoal_heapfree(hs[i]);
  T_EQI(shoalA_spares(0), 16);
  shoal_heapstats(NULL, &st);
  T_EQI(st.mapped, st0.mapped + 16 * MB);
  /* due ones go at shoal_heapexpire(NULL), from any thread */
  usleep(600 * 1000);
  expirefrom(NULL);
  T_EQI(shoalA_spares(0), 0);
  shoal_heapstats(NULL, &st);
  T_EQI(st.mapped, st0.mapped);
  /* a heap whose pages all went back (a trim unmapped its segment) leaves
     no spare */
  h = shoal_heapnew();
  m = shoal_alloc(h, NULL, 0, MEDIUM);
  if (!T_OK(m != NULL)) return;
  shoal_alloc(h, m, MEDIUM, 0);
  shoal_heapexpire(h);  /* too soon: its pages stay */
  shoal_heaptrim(h);  /* now they go, and the segment with them */
  shoal_heapfree(h);
  T_EQI(shoalA_spares(0), 0);
  shoal_heapstats(NULL, &st);
  T_EQI(st.mapped, st0.mapped);
}


/*
** A spare segment's pages that are not resident come to the next heap
** clean, not dirty: a heap's empty slabs whose pages went back to the OS
** stay used in their segment until the heap goes. Counted dirty, they
** made the next heap's medium blocks fault without room made for them.
*/
static void test_sparecold (void) {
  enum { N = 8000, MEDIUM = 60000 };
  static unsigned char *p[N];
  static unsigned char in[MB / 4096];
  ShoalHeap *h;
  char *lo, *hi;  /* the pages the blocks were on: of the one segment */
  void *m;
  size_t dirty;
  long f0, faults;
  int resident = 0;
  nospares();
  shoalA_purgedelay(10);
  h = shoal_heapnew();
  smallround(h, p, N);  /* 500 KB in 64-byte blocks: some 8 slabs */
  if (!T_OK(h != NULL && p[N - 1] != NULL)) {
    shoalA_purgedelay(500);
    return;
  }
  lo = hi = (char *)p[0];
  for (int i = 0; i < N; i++) {
    if ((char *)p[i] < lo) lo = (char *)p[i];
    if ((char *)p[i] + 64 > hi) hi = (char *)p[i] + 64;
  }
  lo = (char *)((uintptr_t)lo & ~(uintptr_t)4095);
  hi = (char *)(((uintptr_t)hi + 4095) & ~(uintptr_t)4095);
  for (int i = 0; i < N; i++) shoal_alloc(h, p[i], 64, 0);
  usleep(30 * 1000);
  shoal_heapexpire(h);  /* the empty slabs' pages (but a few) go back */
  shoalA_purgedelay(500);
  shoal_heapfree(h);
  T_EQI(shoalA_spares(0), 1);
  h = shoal_heapnew();
  p[0] = shoal_alloc(h, NULL, 0, 64);  /* a slab of the spare segment */
  if (!T_OK(h != NULL && p[0] != NULL)) return;
  T_OK((char *)p[0] >= lo && (char *)p[0] < hi);
  if (T_OK(hi - lo <= (ptrdiff_t)MB && mincore(lo, hi - lo, in) == 0))
    for (int i = 0; i < (hi - lo) / 4096; i++) resident += in[i] & 1;
  dirty = shoalA_dirty(h);
  T_OK(dirty > 0 && dirty <= (size_t)resident * 4096);
  if (!(dirty > 0 && dirty <= (size_t)resident * 4096))
    printf("# %zu pages dirty, %d resident\n", dirty / 4096, resident);
  if (!mapped) {  /* a medium block on dirty pages: no fault */
    f0 = minflt();
    m = shoal_alloc(h, NULL, 0, MEDIUM);
    if (m != NULL) fill(m, MEDIUM, 3);
    faults = minflt() - f0;
    T_OK(m != NULL && shoalA_dirty(h) < dirty && faults < MEDIUM / 4096 / 2);
    if (faults >= MEDIUM / 4096 / 2)
      printf("# %ld faults for a medium block on dirty pages\n", faults);
  }
  T_OK(shoalA_largeexact(h));
  shoal_heapfree(h);
}


/*
** Spare mappings: a heap that goes leaves its large blocks' mappings and
** its cached ones to the process, and the next heap's fresh mapping of the
** same size takes one, its pages still resident. At most 16, of 16 MB in
** all, each 500 ms at most. (Fresh pages fault in as written here, not
** at once: shoalA_nopopulate.)
*/
static void test_sparemaps (void) {
  enum { BIG = 1024 * 1024, NH = 20 };
  ShoalHeap *h, *hs[NH];
  shoal_MemStats st0, st;
  unsigned char *a, *b;
  long f0, fresh, reused;
  nospares();
  shoalA_nopopulate(1);
  shoal_heapstats(NULL, &st0);
  h = shoal_heapnew();
  if (!T_OK((a = shoal_alloc(h, NULL, 0, BIG)) != NULL)) return;
  f0 = minflt();
  memset(a, 1, BIG);
  fresh = minflt() - f0;
  shoal_heapfree(h);
  T_EQI(shoalA_sparemaps(0), 1);
  shoal_heapstats(NULL, &st);
  T_EQI(st.mapped, st0.mapped + BIG);  /* the spare, the process's */
  h = shoal_heapnew();
  if (!T_OK((b = shoal_alloc(h, NULL, 0, BIG)) != NULL)) return;
  f0 = minflt();
  memset(b, 2, BIG);
  reused = minflt() - f0;
  T_OK(b == a && shoalA_sparemaps(0) == 0 && shoalA_largeexact(h));
  T_OK(fresh >= 200 && reused < 16);
  if (fresh < 200 || reused >= 16)
    printf("# page faults: %ld fresh, %ld on a spare mapping\n", fresh,
           reused);
  shoal_alloc(h, b, BIG, 0);  /* to the heap's cache, then the spares */
  shoal_heapfree(h);
  T_EQI(shoalA_sparemaps(0), 1);
  h = shoal_heapnew();  /* another size: a fresh mapping, the spare stays */
  if (!T_OK((b = shoal_alloc(h, NULL, 0, 2 * BIG)) != NULL)) return;
  T_OK(b != a && shoalA_sparemaps(0) == 1);
  shoal_heapfree(h);
  T_EQI(shoalA_sparemaps(0), 2);
  /* at most 16, and 16 MB in all: the oldest go first */
  nospares();
  for (int i = 0; i < NH; i++) {
    hs[i] = shoal_heapnew();
    if (!T_OK(hs[i] != NULL && shoal_alloc(hs[i], NULL, 0, BIG) != NULL))
      return;
  }
  for (int i = 0; i < NH; i++) shoal_heapfree(hs[i]);
  T_EQI(shoalA_sparemaps(0), 16);
  for (int i = 0; i < 4; i++) {
    hs[i] = shoal_heapnew();
    if (!T_OK(hs[i] != NULL && shoal_alloc(hs[i], NULL, 0, 5 * BIG) != NULL))
      return;
  }
  for (int i = 0; i < 4; i++) shoal_heapfree(hs[i]);
  T_EQI(shoalA_sparemaps(0), 3);  /* three of 5 MB: no room for a fourth */
  nospares();
  shoal_heapstats(NULL, &st);
  T_EQI(st.mapped, st0.mapped);
  /* due ones go at shoal_heapexpire(NULL) */
  h = shoal_heapnew();
  if (!T_OK(shoal_alloc(h, NULL, 0, BIG) != NULL)) return;
  shoal_heapfree(h);
  usleep(600 * 1000);
  expirefrom(NULL);
  T_EQI(shoalA_sparemaps(0), 0);
  shoal_heapstats(NULL, &st);
  T_EQI(st.mapped, st0.mapped);
  shoalA_nopopulate(0);
}


/* Heaps made, used and freed over and over, on several threads at once,
   their segments and mappings passed from one to the next: every byte
   intact. */
static void *sparechurn (void *arg) {
  size_t bad = 0;
  unsigned seed = (unsigned)(uintptr_t)arg;
  for (int round = 0; round < 60; round++) {
    ShoalHeap *h = shoal_heapnew();
    unsigned char *b[64];
    size_t size[64];
    if (h == NULL) return (void *)1;
    for (int i = 0; i < 64; i++) {
      int kind = rand_r(&seed) % 16;  /* large (of three sizes: some are
                                         taken from the spares), medium,
                                         small */
      size[i] = (kind == 0) ? 300000 * (size_t)(1 + rand_r(&seed) % 3)
              : (kind < 3) ? 16385 + (size_t)(rand_r(&seed) % 100000)
              : 1 + (size_t)(rand_r(&seed) % 2000);
      if ((b[i] = shoal_alloc(h, NULL, 0, size[i])) == NULL) bad++;
      else fill(b[i], size[i], (unsigned char)(i + round));
    }
    for (int i = 0; i < 64; i++)
      if (b[i] != NULL && !intact(b[i], size[i], (unsigned char)(i + round)))
        bad++;
    for (int i = 0; i < 64; i += 2)  /* half freed, half left to the heap */
      if (b[i] != NULL) shoal_alloc(h, b[i], size[i], 0);
    if (!shoalA_largeexact(h)) bad++;
    shoal_heapfree(h);
  }
  return (void *)bad;
}

static void *expireloop (void *arg) {
  atomic_int *stop = arg;
  while (!atomic_load(stop)) {
    shoal_heapexpire(NULL);
    usleep(1000);
  }
  return NULL;
}

static void test_sparethreads (void) {
  enum { NT = 4 };
  pthread_t th[NT], ex;
  atomic_int stop = 0;
  size_t bad = 0;
  shoalA_purgedelay(5);  /* spares due often: taken, dropped, raced */
  T_EQI(pthread_create(&ex, NULL, expireloop, &stop), 0);
  for (int i = 0; i < NT; i++)
    T_EQI(pthread_create(&th[i], NULL, sparechurn, (void *)(uintptr_t)(i + 1)),
          0);
  for (int i = 0; i < NT; i++) {
    void *r;
    T_EQI(pthread_join(th[i], &r), 0);
    bad += (size_t)r;
  }
  atomic_store(&stop, 1);
  T_EQI(pthread_join(ex, NULL), 0);
  shoalA_purgedelay(500);
  T_EQI(bad, 0);
  T_OK(shoalA_spares(0) <= 16 && shoalA_sparemaps(0) <= 16);
}


/*
** 'rounds' strings of 'len' bytes built as a luaL_Buffer builds them: a
** box grown by half at a time and written as it grows, the string made
** from it, the box freed; the strings freed four rounds later, as a
** collection would. The page faults of the last 'counted' rounds.
*/
static long buildstrings (ShoalHeap *h, size_t len, int rounds,
                          int counted) {
  enum { KEEP = 4 };
  unsigned char *live[KEEP] = {NULL};
  long faults = 0;
  int ok = 1;
  for (int r = 0; r < rounds; r++) {
    unsigned char *box = NULL, *str;
    size_t size = 1024, newsize;
    if (r == rounds - counted) faults = minflt();
    while (size < len) {
      newsize = size / 2 * 3;
      if (newsize > len) newsize = len;
      box = shoal_alloc(h, box, box ? size : 0, newsize);
      if (box == NULL) { ok = 0; break; }
      memset(box + (size == 1024 ? 0 : size), r & 0xFF,
             newsize - (size == 1024 ? 0 : size));
      size = newsize;
    }
    str = shoal_alloc(h, NULL, 0, len + 25);
    if (box == NULL || str == NULL) { ok = 0; break; }
    memcpy(str + 24, box, len);
    shoal_alloc(h, box, size, 0);
    if (live[r % KEEP] != NULL) {
      ok &= (live[r % KEEP][24] == (unsigned char)((r - KEEP) & 0xFF));
      shoal_alloc(h, live[r % KEEP], len + 25, 0);
    }
    live[r % KEEP] = str;
  }
  faults = minflt() - faults;
  for (int i = 0; i < KEEP; i++)
    if (live[i] != NULL) shoal_alloc(h, live[i], len + 25, 0);
  T_OK(ok);
  return faults;
}

/*
** A small heap that builds long strings over and over faults in no page
** once warm. It once gave back, for each fresh page it took, pages it was
** about to take again: 64 KB strings faulted 5 pages a round, 300 KB ones
** 225 (a Lua loop of table.concat took 9 and 80 times mimalloc's time).
*/
static void test_rebuild (void) {
  static const size_t lens[] = {20000, 64000, 150000, 300000, 800000};
  for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
    ShoalHeap *h = shoal_heapnew();
    long faults = buildstrings(h, lens[i], 220, 200);
    T_OK(faults <= 20);
    if (faults > 20)
      printf("# strings of %zu bytes: %ld page faults in 200 rounds\n",
             lens[i], faults);
    T_OK(shoalA_largeexact(h));
    shoal_heapfree(h);
  }
}


/*
** A heap holds cached mappings as it takes fresh pages: when a mapping
** fails (a process short of address space), they go back and it is tried
** again, for a new large block, a large block grown, and a new segment.
*/
static void test_mapretry (void) {
  enum { BIG = 400000 };
  const size_t big = pageup(BIG);  /* pages of each size */
  const size_t big2 = pageup(2 * BIG);
  const size_t big4 = pageup(4 * BIG);
  ShoalHeap *h;
  shoal_MemStats st0, st;
  unsigned char *a, *b, *c, *apart;
  nospares();  /* none to give back but the heap's own */
  h = shoal_heapnew();
  shoal_heapstats(h, &st0);
  a = shoal_alloc(h, NULL, 0, BIG);
  apart = shoal_alloc(h, NULL, 0, BIG);  /* neither grows into the other */
  b = shoal_alloc(h, NULL, 0, BIG + 50000);
  shoal_alloc(h, a, BIG, 0);  /* both cached */
  shoal_alloc(h, b, BIG + 50000, 0);
  shoal_heapstats(h, &st0);
  st0.mapped -= big + pageup(BIG + 50000);  /* 'apart' only */
  /* the larger one is grown (mremap: fails), then given back; a fresh
     mapping fails, then the other cached one goes back */
  shoalA_failremaps(1);
  shoalA_failmmaps(1);
  a = shoal_alloc(h, NULL, 0, 2 * BIG);
  shoalA_failremaps(0);
  shoalA_failmmaps(0);
  shoal_heapstats(h, &st);
  T_OK(a != NULL && st.mapped == st0.mapped + big2);
  if (!T_OK(a != NULL)) { shoal_heapfree(h); return; }
  fill(a, 2 * BIG, 41);
  b = shoal_alloc(h, NULL, 0, BIG);
  shoal_alloc(h, b, BIG, 0);  /* cached: too small to grow 'a' into */
  if (b != a + big2) {  /* (else 'a' grows into it in place) */
    shoalA_failremaps(1);  /* mremap fails, the cache goes, it is retried */
    c = shoal_alloc(h, a, 2 * BIG, 4 * BIG);
    shoalA_failremaps(0);
    shoal_heapstats(h, &st);
    T_OK(c != NULL && intact(c, 2 * BIG, 41));
    T_OK(st.mapped == st0.mapped + big4);
    if (c != NULL) a = c;
  }
  else a = shoal_alloc(h, a, 2 * BIG, 4 * BIG);  /* 'b' is cached already */
  if (!T_OK(a != NULL)) { shoal_heapfree(h); return; }
  b = shoal_alloc(h, NULL, 0, BIG);
  shoal_alloc(h, b, BIG, 0);  /* cached */
  shoalA_failmmaps(1);
  b = shoal_alloc(h, NULL, 0, 100);  /* a slab: a new segment */
  shoalA_failmmaps(0);
  shoal_heapstats(h, &st);
  T_OK(b != NULL && st.mapped == st0.mapped + big4 + MB);
  /* nothing to give back: the failure stands, and nothing changes */
  shoalA_failmmaps(2);
  T_OK(shoal_alloc(h, NULL, 0, 2 * MB) == NULL);
  shoalA_failmmaps(0);
  shoal_heapstats(h, &st);
  T_OK(st.mapped == st0.mapped + big4 + MB);
  T_OK(shoalA_largeexact(h));
  if (b != NULL) shoal_alloc(h, b, 100, 0);
  shoal_alloc(h, a, 4 * BIG, 0);
  shoal_alloc(h, apart, BIG, 0);
  shoal_heapfree(h);
}


#define FILLERS		256	/* blocks of 1000 bytes: more than the first slabs hold */
static void *filler[FILLERS];

static void test_reshrink (void) {
  ShoalHeap *h = shoal_heapnew();
  void *job[5];
  pthread_t th;
  shoal_MemStats st;
  for (int i = 0; i < FILLERS; i++)  /* the small block in a slab of its class */
    filler[i] = shoal_alloc(h, NULL, 0, 1000);
  job[0] = h;
  job[1] = shoal_alloc(h, NULL, 0, 100000);
  job[2] = shoal_alloc(h, NULL, 0, 1000);
  fill(job[1], 100000, 1);
  fill(job[2], 1000, 2);
  T_EQI(pthread_create(&th, NULL, reshrink, job), 0);
  T_EQI(pthread_join(th, NULL), 0);
  T_OK(job[3] == job[1] && job[4] == job[2]);  /* in place, both times */
  T_OK(intact(job[1], 50, 1) && intact(job[2], 50, 2));
  T_OK(shoalA_shrunkexact(h));
  shoal_alloc(h, job[1], 50, 0);
  shoal_alloc(h, job[2], 50, 0);
  T_OK(shoalA_shrunkexact(h));
  /* the small block went back to its own class: the next 1000 reuse it */
  T_OK(shoal_alloc(h, NULL, 0, 1000) == job[2]);
  shoal_alloc(h, job[2], 1000, 0);
  for (int i = 0; i < FILLERS; i++) shoal_alloc(h, filler[i], 1000, 0);
  shoal_heapstats(h, &st);
  T_EQI(st.inuse, 0);
  shoal_heapfree(h);
}


int main (int argc, char **argv) {
  mapped = (argc > 1 && strcmp(argv[1], "mapped") == 0);
  shoalA_mediumblocks(!mapped);
  test_processstats();  /* first: the process's peak is still low */
  test_random(0, NBLOCKS);
  test_random(1000, NBLOCKS);  /* slabs trimmed while in use */
  smallonly = 1;
  test_random(100, 600);  /* MIXED slabs trimmed while in use */
  smallonly = 0;
  test_remote();
  test_mixed();
  test_prefault();
  test_prefaultlarge();
  test_prefaultwarm();
  test_classes();
  test_spare();
  test_large();
  test_largereuse();
  test_cachemany();
  test_cachegrow();
  test_largetail();
  test_largegrowfail();
  test_largegrowkeep();
  test_medium();
  test_bitmaps();
  test_mediumage();
  test_mediumhold();
  test_mediumplace();
  test_mediumgrow();
  test_mediumpast();
  test_mediumruns();
  test_largegrow();
  test_mediumroom();
  test_shrinknomem();
  test_mapnomem();
  test_headnomem();
  test_mediumvmas();
  test_shrinkremote();
  test_concurrent();
  if (getenv("SHOAL_ALLOC") == NULL) test_default();
  test_limit();
  test_rss();
  test_largeswap();
  test_collect();
  test_loop();
  test_newstatelimit();
  test_pagesize();
  test_wrapped();
  test_stats();
  test_trimremote();
  test_trimslabs();
  test_trimmixed();
  test_trimruns();
  test_trimrunsfull();
  test_trimvm();
  test_trimlua();
  test_unslab();
  test_heapexpire();
  test_dirtyage();
  test_expirechurn();
  test_limitthreads();
  test_heaplimit();
  test_peakremote();
  test_releaselarge();
  test_memoryscope();
  test_cachebound();
  test_spares();
  test_sparecold();
  test_sparemaps();
  test_sparethreads();
  test_reuse();
  test_keepempty();
  test_sparerest();
  test_shrinkfree();
  test_shrinkmaps();
  test_reshrink();
  test_rebuild();
  test_mapretry();
  return t_done();
}
