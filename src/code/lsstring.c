/*
** lsstring.c
** Process-wide shared strings: the string constants of shared code.
**
** Every VM hashes strings with one process seed, so a VM that interns a
** short string first looks in its own table, then here: content equal to a
** shared constant thus gets the shared pointer, and short-string equality
** stays pointer equality. Readers take no lock: slots are written once
** (release) under the writers' mutex, and a grown table replaces the old one
** (which stays allocated, since readers may still be probing it).
** Shared strings are never freed: any VM may hold one in its data.
*/

#define LUA_CORE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"
#include "lstring.h"

#include "lshared.h"


typedef struct STable {
  struct STable *previous;  /* tables replaced by this one, kept for readers */
  size_t size;  /* number of slots, a power of 2 */
  size_t nuse;  /* strings in the table (writers only) */
  _Atomic(uint64_t) *bloom;  /* one bit per hash, 32 bits per string */
  _Atomic(TString *) slot[];  /* open addressing, linear probing */
} STable;

#define MINSIZE		1024
#define bloomwords(t)	((t)->size / 4)
#define bloombit(t,h)	(((size_t)(h) * 2654435761u) & ((t)->size * 16 - 1))

static _Atomic(STable *) current;
static pthread_mutex_t writers = PTHREAD_MUTEX_INITIALIZER;
static size_t nstrings, nbytes;  /* statistics (writers only) */


/*
** The process seed, made once. Built like Lua's own seed (time and
** addresses) so hashes stay randomized between processes.
*/
static unsigned int seed;
static pthread_once_t seedonce = PTHREAD_ONCE_INIT;

static void makeseed (void) {
  uintptr_t buff[4];
  buff[0] = (uintptr_t)time(NULL);
  buff[1] = (uintptr_t)&seed;
  buff[2] = (uintptr_t)&buff;
  buff[3] = (uintptr_t)getpid();
  seed = luaS_hash((const char *)buff, sizeof(buff), (unsigned int)buff[0]);
}

static void preload (void);

/*
** Called by every new state before it makes any string. The first call in
** the process also preloads the strings of a fresh state with the standard
** libraries (metamethod names, reserved words, library names), so every
** later VM finds its own copies of them here and never conflicts with
** shared code that uses them.
*/
unsigned int shoalS_seed (void) {
  static _Thread_local int preloading;  /* the preload's own state */
  static pthread_mutex_t once = PTHREAD_MUTEX_INITIALIZER;
  static atomic_int done;
  pthread_once(&seedonce, makeseed);
  if (!atomic_load_explicit(&done, memory_order_acquire) && !preloading) {
    pthread_mutex_lock(&once);
    if (!atomic_load_explicit(&done, memory_order_relaxed)) {
      preloading = 1;
      preload();
      preloading = 0;
      atomic_store_explicit(&done, 1, memory_order_release);
    }
    pthread_mutex_unlock(&once);
  }
  return seed;
}


static size_t strsize (const TString *ts) {
  return (ts->shrlen != 0xFF) ? ts->shrlen : ts->u.lnglen;
}


static int sameas (const TString *ts, int tt, const char *str, size_t l,
                   unsigned int h) {
  return ts->hash == h && ts->tt == tt && strsize(ts) == l &&
         memcmp(getstr(ts), str, l) == 0;
}


/* 0: 't' holds no string of hash 'h'; 1: it may */
static int inbloom (STable *t, unsigned int h) {
  size_t bit = bloombit(t, h);
  return (atomic_load_explicit(&t->bloom[bit / 64], memory_order_relaxed) >>
          (bit % 64)) & 1;
}


/*
** Out of line: the filter's misses, nearly every new string of a VM, then
** return without saving the registers that the probing needs.
*/
static __attribute__((noinline)) TString *probe (STable *t, int tt,
                                                 const char *str, size_t l,
                                                 unsigned int h) {
  for (size_t i = h & (t->size - 1); ; i = (i + 1) & (t->size - 1)) {
    TString *ts = atomic_load_explicit(&t->slot[i], memory_order_acquire);
    if (ts == NULL) return NULL;
    if (sameas(ts, tt, str, l, h)) return ts;
  }
}


static TString *lookup (STable *t, int tt, const char *str, size_t l,
                        unsigned int h) {
  return inbloom(t, h) ? probe(t, tt, str, l, h) : NULL;
}


/*
** The shared short string equal to 'str', or NULL. Any thread, no lock.
*/
TString *shoalS_find (const char *str, size_t l, unsigned int h) {
  STable *t = atomic_load_explicit(&current, memory_order_acquire);
  return (t == NULL) ? NULL : lookup(t, LUA_VSHRSTR, str, l, h);
}


static void insert (STable *t, TString *ts) {
  size_t bit = bloombit(t, ts->hash), i;
  atomic_fetch_or_explicit(&t->bloom[bit / 64], (uint64_t)1 << (bit % 64),
                           memory_order_relaxed);
  for (i = ts->hash & (t->size - 1); atomic_load_explicit(&t->slot[i],
       memory_order_relaxed) != NULL; i = (i + 1) & (t->size - 1)) ;
  atomic_store_explicit(&t->slot[i], ts, memory_order_release);
  t->nuse++;
}


static STable *newtable (size_t size) {
  STable *t = calloc(1, sizeof(STable) + size * sizeof(t->slot[0]));
  if (t == NULL) return NULL;
  t->size = size;
  t->bloom = calloc(size / 4, sizeof(uint64_t));
  if (t->bloom == NULL) {
    free(t);
    return NULL;
  }
  return t;
}


/* Make room for one more string (load factor at most 1/2). */
static STable *reserve (void) {
  STable *t = atomic_load_explicit(&current, memory_order_relaxed);
  if (t != NULL && (t->nuse + 1) * 2 <= t->size) return t;
  STable *nt = newtable(t ? t->size * 2 : MINSIZE);
  if (nt == NULL) return NULL;
  if (t != NULL) {
    for (size_t i = 0; i < t->size; i++) {
      TString *ts = atomic_load_explicit(&t->slot[i], memory_order_relaxed);
      if (ts != NULL) insert(nt, ts);
    }
  }
  nt->previous = t;
  atomic_store_explicit(&current, nt, memory_order_release);
  return nt;
}


/*
** The shared string with the content of 'ts' (a VM's string, short or
** long), created if needed. NULL only when memory is exhausted.
*/
TString *shoalS_share (TString *ts) {
  TString *s;
  STable *t;
  int tt = ts->tt;
  size_t l = strsize(ts);
  unsigned int h;
  if (isshared(ts)) return ts;
  h = (tt == LUA_VSHRSTR) ? ts->hash : luaS_hash(getstr(ts), l, shoalS_seed());
  pthread_mutex_lock(&writers);
  t = atomic_load_explicit(&current, memory_order_relaxed);
  s = (t == NULL) ? NULL : lookup(t, tt, getstr(ts), l, h);
  if (s == NULL && (t = reserve()) != NULL &&
      (s = malloc(sizelstring(l))) != NULL) {
    s->next = NULL;
    s->tt = cast_byte(tt);
    s->marked = SHAREDMARK;
    s->hash = h;
    if (tt == LUA_VSHRSTR) {
      s->extra = ts->extra;  /* reserved-word number, the same in every VM */
      s->shrlen = ts->shrlen;
      s->u.hnext = NULL;
    }
    else {
      s->extra = 1;  /* hash already computed: no VM ever writes it */
      s->shrlen = 0xFF;
      s->u.lnglen = l;
    }
    memcpy(getstr(s), getstr(ts), l);
    getstr(s)[l] = '\0';
    insert(t, s);
    nstrings++;
    nbytes += sizelstring(l);
  }
  pthread_mutex_unlock(&writers);
  return s;
}


void shoalS_stats (size_t *count, size_t *bytes) {
  pthread_mutex_lock(&writers);
  *count = nstrings;
  *bytes = nbytes;
  pthread_mutex_unlock(&writers);
}


static void preload (void) {
  lua_State *L = luaL_newstate();
  stringtable *tb;
  if (L == NULL) return;  /* no memory: VMs just keep their own copies */
  luaL_openlibs(L);
  tb = &G(L)->strt;
  for (int i = 0; i < tb->size; i++) {
    for (TString *ts = tb->hash[i]; ts != NULL; ts = ts->u.hnext)
      shoalS_share(ts);
  }
  lua_close(L);
}
