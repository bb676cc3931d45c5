/*
** lsproto.c
** Shared prototypes: a chunk's prototype tree copied once into memory owned
** by the process (a Version), then run by any number of VMs on any thread.
**
** No VM's collector marks, traverses, sweeps or frees a shared prototype
** (see SHAREDMARK). A Version counts its holders: the code cache, each
** pinned shared function, and each VM that holds closures over it. A VM
** drops its hold at the end of a full mark that found no closure over the
** Version (shoalP_endmark), or when it closes; the last holder frees it.
*/

#define LUA_CORE
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "lua.h"
#include "lauxlib.h"

#include "ldo.h"
#include "lfunc.h"
#include "lgc.h"
#include "llex.h"
#include "lmem.h"
#include "lstring.h"
#include "ltable.h"

#include "lshared.h"
#include "shoal.h"


struct Version {
  atomic_int refs;
  int incache;  /* 0: not cached; 1: a cache entry; 2: retired from the cache */
  Proto *root;
  TString **strs;  /* distinct short strings among the constants */
  int nstrs;
  size_t bytes;  /* size of 'block' */
  char *block;  /* every SProto and array of the tree */
  Version *prev, *next;  /* list of live versions */
};

/* A shared Proto knows its Version. */
typedef struct SProto {
  Version *v;
  Proto p;
} SProto;

#define sproto(pr)	((SProto *)((char *)(pr) - offsetof(SProto, p)))

static pthread_mutex_t live = PTHREAD_MUTEX_INITIALIZER;
static Version *versions;  /* live versions (under 'live') */
static size_t privatecopies;  /* clones made private by a string conflict */


/*
** {======================================================
** Versions: copy, reference counts
** =======================================================
*/

#define ALIGN(n)	(((n) + 15) & ~(size_t)15)

static size_t treesize (const Proto *p) {
  size_t n = ALIGN(sizeof(SProto)) + ALIGN(p->sizek * sizeof(TValue)) +
             ALIGN(p->sizecode * sizeof(Instruction)) +
             ALIGN(p->sizep * sizeof(Proto *)) +
             ALIGN(p->sizeupvalues * sizeof(Upvaldesc)) +
             ALIGN(p->sizelineinfo * sizeof(ls_byte)) +
             ALIGN(p->sizeabslineinfo * sizeof(AbsLineInfo)) +
             ALIGN(p->sizelocvars * sizeof(LocVar));
  for (int i = 0; i < p->sizep; i++) n += treesize(p->p[i]);
  return n;
}


typedef struct Copy {
  Version *v;
  char *next;  /* bump pointer in v->block */
  int nomem;  /* a string could not be shared */
  int sizestrs;
} Copy;


static void copybytes (void *dst, const void *src, size_t n) {
  if (n > 0) memcpy(dst, src, n);  /* empty arrays may be NULL */
}


static void *take (Copy *c, const void *src, size_t size) {
  void *p = c->next;
  c->next += ALIGN(size);
  if (src != NULL) copybytes(p, src, size);
  return p;
}


static TString *sharestr (Copy *c, TString *ts) {
  TString *s;
  if (ts == NULL) return NULL;
  s = shoalS_share(ts);
  if (s == NULL) c->nomem = 1;
  return s;
}


static void addconst (Copy *c, TString *s) {
  Version *v = c->v;
  if (v->nstrs == c->sizestrs) {
    int n = c->sizestrs ? 2 * c->sizestrs : 32;
    TString **a = realloc(v->strs, n * sizeof(TString *));
    if (a == NULL) {
      c->nomem = 1;
      return;
    }
    v->strs = a;
    c->sizestrs = n;
  }
  v->strs[v->nstrs++] = s;
}


static Proto *copyproto (Copy *c, const Proto *s) {
  SProto *sp = take(c, NULL, sizeof(SProto));
  Proto *p = &sp->p;
  int i;
  *p = *s;  /* sizes, counts, line numbers */
  sp->v = c->v;
  p->next = NULL;
  p->marked = SHAREDMARK;
  p->gclist = NULL;
  p->code = take(c, s->code, s->sizecode * sizeof(Instruction));
  p->lineinfo = take(c, s->lineinfo, s->sizelineinfo * sizeof(ls_byte));
  p->abslineinfo = take(c, s->abslineinfo,
                        s->sizeabslineinfo * sizeof(AbsLineInfo));
  p->k = take(c, s->k, s->sizek * sizeof(TValue));
  for (i = 0; i < s->sizek; i++) {
    if (ttisstring(&s->k[i])) {
      TString *ts = sharestr(c, tsvalue(&s->k[i]));
      if (ts == NULL) break;
      p->k[i].value_.gc = obj2gco(ts);
      if (ts->tt == LUA_VSHRSTR) addconst(c, ts);
    }
  }
  p->upvalues = take(c, s->upvalues, s->sizeupvalues * sizeof(Upvaldesc));
  for (i = 0; i < s->sizeupvalues; i++)
    p->upvalues[i].name = sharestr(c, s->upvalues[i].name);
  p->locvars = take(c, s->locvars, s->sizelocvars * sizeof(LocVar));
  for (i = 0; i < s->sizelocvars; i++)
    p->locvars[i].varname = sharestr(c, s->locvars[i].varname);
  p->source = sharestr(c, s->source);
  p->p = take(c, NULL, s->sizep * sizeof(Proto *));
  for (i = 0; i < s->sizep; i++)
    p->p[i] = copyproto(c, s->p[i]);
  return p;
}


static int cmpptr (const void *a, const void *b) {
  const void *x = *(void *const *)a, *y = *(void *const *)b;
  return (x > y) - (x < y);
}


/*
** A new Version holding a copy of the tree of 'p' (a prototype of L's),
** with one reference for the caller; NULL if memory is exhausted.
*/
Version *shoalP_newversion (lua_State *L, const Proto *p) {
  Copy c;
  Version *v = calloc(1, sizeof(Version));
  (void)L;
  if (v == NULL) return NULL;
  v->bytes = treesize(p);
  v->block = malloc(v->bytes);
  if (v->block == NULL) {
    free(v);
    return NULL;
  }
  c.v = v;
  c.next = v->block;
  c.nomem = 0;
  c.sizestrs = 0;
  v->root = copyproto(&c, p);
  if (c.nomem) {
    free(v->strs);
    free(v->block);
    free(v);
    return NULL;
  }
  if (v->nstrs > 0) {  /* keep each constant once */
    int n = 1;
    qsort(v->strs, v->nstrs, sizeof(TString *), cmpptr);
    for (int i = 1; i < v->nstrs; i++)
      if (v->strs[i] != v->strs[n - 1]) v->strs[n++] = v->strs[i];
    v->nstrs = n;
  }
  atomic_init(&v->refs, 1);
  pthread_mutex_lock(&live);
  v->next = versions;
  if (versions) versions->prev = v;
  versions = v;
  pthread_mutex_unlock(&live);
  return v;
}


void shoalP_ref (Version *v) {
  atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
}


void shoalP_unref (Version *v) {
  if (atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) == 1) {
    pthread_mutex_lock(&live);
    if (v->prev) v->prev->next = v->next;
    else versions = v->next;
    if (v->next) v->next->prev = v->prev;
    pthread_mutex_unlock(&live);
    free(v->strs);
    free(v->block);
    free(v);
  }
}


void shoalP_setcached (Version *v, int incache) {
  pthread_mutex_lock(&live);
  v->incache = incache;
  pthread_mutex_unlock(&live);
}


size_t shoalP_size (const Version *v) {
  return v->bytes;
}


void shoalP_stats (size_t *retired, size_t *retiredbytes, size_t *nprivate) {
  *retired = *retiredbytes = 0;
  pthread_mutex_lock(&live);
  for (Version *v = versions; v != NULL; v = v->next) {
    if (v->incache == 2) {
      (*retired)++;
      *retiredbytes += v->bytes;
    }
  }
  *nprivate = privatecopies;
  pthread_mutex_unlock(&live);
}

/* }====================================================== */


/*
** {======================================================
** What a VM holds
** =======================================================
*/

/* L's ShoalVM, made on first use; NULL if there is no memory for it. */
static ShoalVM *getvm (lua_State *L) {
  global_State *g = G(L);
  if (g->shoal == NULL) g->shoal = calloc(1, sizeof(ShoalVM));
  return g->shoal;
}


ShoalVM *shoalP_vm (lua_State *L) {
  ShoalVM *vm = getvm(L);
  if (vm == NULL) luaD_throw(L, LUA_ERRMEM);
  return vm;
}


static Held *findheld (ShoalVM *vm, Version *v) {
  if (vm->sizeheld == 0) return NULL;
  size_t mask = vm->sizeheld - 1;
  for (size_t i = ((size_t)v >> 4) & mask; ; i = (i + 1) & mask) {
    if (vm->held[i].v == v) return &vm->held[i];
    if (vm->held[i].v == NULL) return NULL;
  }
}


static void putheld (ShoalVM *vm, const Held *e) {
  size_t mask = vm->sizeheld - 1, i;
  for (i = ((size_t)e->v >> 4) & mask; vm->held[i].v != NULL; i = (i + 1) & mask) ;
  vm->held[i] = *e;
  vm->nheld++;
}


/* Rebuild the held table with room for 'n' entries, keeping those kept. */
static int rehash (ShoalVM *vm, int n) {
  int size = 8;
  Held *old = vm->held;
  int oldsize = vm->sizeheld;
  while (size < 2 * n) size *= 2;
  Held *h = calloc(size, sizeof(Held));
  if (h == NULL) return 0;
  vm->held = h;
  vm->sizeheld = size;
  vm->nheld = 0;
  for (int i = 0; i < oldsize; i++)
    if (old[i].v != NULL) putheld(vm, &old[i]);
  free(old);
  return 1;
}


static int conflicts (lua_State *L, Version *v);

/*
** L now holds 'v', taking over the caller's reference; NULL if no memory.
** The first hold checks L's strings against the constants of 'v'.
*/
static Held *hold (lua_State *L, ShoalVM *vm, Version *v) {
  Held *h = findheld(vm, v);
  if (h != NULL) {
    h->mark = vm->cycle;
    shoalP_unref(v);  /* L already has its own reference */
    return h;
  }
  if ((vm->nheld + 1) * 2 > vm->sizeheld && !rehash(vm, vm->nheld + 1))
    return NULL;
  Held e = {v, vm->cycle, conflicts(L, v)};
  putheld(vm, &e);
  return findheld(vm, v);
}


/* Called by the collector for each closure over a shared prototype. */
void shoalP_markproto (global_State *g, Proto *p) {
  Held *h = (g->shoal != NULL) ? findheld(g->shoal, sproto(p)->v) : NULL;
  if (h != NULL) h->mark = g->shoal->cycle;
}


/*
** Start of a mark phase. Marks from a cycle that was cut short (a full
** collection abandons the cycle in progress) must not count for this one.
*/
void shoalP_startmark (global_State *g) {
  if (g->shoal != NULL) g->shoal->cycle++;
}


/*
** End of the atomic phase. After a full mark (kind KGC_INC: incremental
** cycles and the major collections of generational mode; young
** collections do not visit old closures), every closure over a held Version
** has marked it, so a Version left unmarked has no closure in this VM.
*/
void shoalP_endmark (global_State *g) {
  ShoalVM *vm = g->shoal;
  Held *old;
  int oldsize, keep = 0;
  if (vm == NULL || g->gckind != KGC_INC) return;
  for (int i = 0; i < vm->sizeheld; i++)
    keep += (vm->held[i].v != NULL && (vm->held[i].mark == vm->cycle ||
                                       vm->held[i].v == vm->pushing));
  if (keep == vm->nheld) return;  /* all in use */
  old = vm->held;
  oldsize = vm->sizeheld;
  vm->held = NULL;  /* build the table of kept entries aside ... */
  vm->sizeheld = 0;
  if (!rehash(vm, keep)) {  /* ... or, without memory, keep all for now */
    vm->held = old;
    vm->sizeheld = oldsize;
    return;
  }
  for (int i = 0; i < oldsize; i++) {
    Held *h = &old[i];
    if (h->v == NULL) continue;
    if (h->mark == vm->cycle || h->v == vm->pushing) putheld(vm, h);
    else shoalP_unref(h->v);  /* no closure over it in this VM */
  }
  free(old);
}


/* }====================================================== */


/*
** {======================================================
** Pinned functions: lua_sharefunction, lua_clonefunction
** =======================================================
*/

typedef struct Pin {
  const void *fp;  /* the shared function, as lua_topointer gives it */
  Version *v;  /* one reference */
  Proto *p;  /* its prototype in 'v' (a nested one, for a function made by
                shared code) */
  struct Pin *next;  /* in the owner VM's list */
  struct Pin *hnext;  /* in the process-wide table */
} Pin;

#define NPINHASH	256
static pthread_mutex_t pinlock = PTHREAD_MUTEX_INITIALIZER;
static Pin *pins[NPINHASH];

#define pinhash(fp)	(((size_t)(fp) >> 4) % NPINHASH)

static Pin *findpin (const void *fp) {
  Pin *p;
  for (p = pins[pinhash(fp)]; p != NULL && p->fp != fp; p = p->hnext) ;
  return p;
}


void shoalP_closestate (lua_State *L) {
  ShoalVM *vm = G(L)->shoal;
  if (vm == NULL) return;
  if (vm->pins != NULL) {
    pthread_mutex_lock(&pinlock);
    for (Pin *p = vm->pins; p != NULL; p = p->next) {
      Pin **pp = &pins[pinhash(p->fp)];
      while (*pp != p) pp = &(*pp)->hnext;
      *pp = p->hnext;
    }
    pthread_mutex_unlock(&pinlock);
    while (vm->pins != NULL) {
      Pin *p = vm->pins;
      vm->pins = p->next;
      shoalP_unref(p->v);
      free(p);
    }
  }
  for (int i = 0; i < vm->sizeheld; i++)
    if (vm->held[i].v != NULL) shoalP_unref(vm->held[i].v);
  free(vm->held);
  free(vm);
  G(L)->shoal = NULL;
}

/* }====================================================== */


/*
** {======================================================
** Closures over shared code
** =======================================================
*/

/*
** Would the constants of 'v' break string identity in L? They would if L
** interned one of them itself before it was shared: L's tables key on its
** own copy, in its string table or among its frozen strings (which left
** the table when frozen). Dead copies count too, as lookups may resurrect
** them.
*/
static int conflicts (lua_State *L, Version *v) {
  stringtable *tb = &G(L)->strt;
  for (int i = 0; i < v->nstrs; i++) {
    TString *s = v->strs[i];
    for (TString *ts = tb->hash[lmod(s->hash, tb->size)]; ts != NULL;
         ts = ts->u.hnext) {
      if (ts->shrlen == s->shrlen &&
          memcmp(getstr(ts), getstr(s), s->shrlen) == 0)
        return 1;
    }
    if (shoalF_findstr(G(L), getstr(s), s->shrlen, s->hash) != NULL)
      return 1;
  }
  return 0;
}


/* Set upvalue 'env' of 'cl' (if it has one) to L's globals. */
static void setglobals (lua_State *L, LClosure *cl, int env) {
  if (env >= 0 && env < cl->nupvalues) {
    const TValue *gt = &hvalue(&G(L)->l_registry)->array[LUA_RIDX_GLOBALS - 1];
    setobj(L, cl->upvals[env]->v.p, gt);
    luaC_barrier(L, cl->upvals[env], gt);
  }
}


static TString *localstr (lua_State *L, Proto *f, TString *s) {
  TString *ts;
  if (s == NULL) return NULL;
  ts = luaS_newlstr(L, getstr(s), tsslen(s));
  luaC_objbarrier(L, f, ts);
  return ts;
}


/*
** Fill 'f' (a new prototype of L's, reachable) with a copy of 's' whose
** strings are L's own. Follows lundump.c: every array is valid for the
** collector before anything else is allocated.
*/
static void localize (lua_State *L, Proto *f, const Proto *s) {
  int i;
  f->numparams = s->numparams;
  f->is_vararg = s->is_vararg;
  f->maxstacksize = s->maxstacksize;
  f->linedefined = s->linedefined;
  f->lastlinedefined = s->lastlinedefined;
  f->source = localstr(L, f, s->source);
  f->code = luaM_newvectorchecked(L, s->sizecode, Instruction);
  f->sizecode = s->sizecode;
  copybytes(f->code, s->code, s->sizecode * sizeof(Instruction));
  f->k = luaM_newvectorchecked(L, s->sizek, TValue);
  f->sizek = s->sizek;
  for (i = 0; i < s->sizek; i++) setnilvalue(&f->k[i]);
  for (i = 0; i < s->sizek; i++) {
    if (ttisstring(&s->k[i])) {
      TString *ts = localstr(L, f, tsvalue(&s->k[i]));
      setsvalue2n(L, &f->k[i], ts);
    }
    else setobj(L, &f->k[i], &s->k[i]);
  }
  f->upvalues = luaM_newvectorchecked(L, s->sizeupvalues, Upvaldesc);
  f->sizeupvalues = s->sizeupvalues;
  for (i = 0; i < s->sizeupvalues; i++) {
    f->upvalues[i] = s->upvalues[i];
    f->upvalues[i].name = NULL;
  }
  for (i = 0; i < s->sizeupvalues; i++)
    f->upvalues[i].name = localstr(L, f, s->upvalues[i].name);
  f->p = luaM_newvectorchecked(L, s->sizep, Proto *);
  f->sizep = s->sizep;
  for (i = 0; i < s->sizep; i++) f->p[i] = NULL;
  for (i = 0; i < s->sizep; i++) {
    f->p[i] = luaF_newproto(L);
    luaC_objbarrier(L, f, f->p[i]);
    localize(L, f->p[i], s->p[i]);
  }
  f->lineinfo = luaM_newvectorchecked(L, s->sizelineinfo, ls_byte);
  f->sizelineinfo = s->sizelineinfo;
  copybytes(f->lineinfo, s->lineinfo, s->sizelineinfo * sizeof(ls_byte));
  f->abslineinfo = luaM_newvectorchecked(L, s->sizeabslineinfo, AbsLineInfo);
  f->sizeabslineinfo = s->sizeabslineinfo;
  copybytes(f->abslineinfo, s->abslineinfo,
            s->sizeabslineinfo * sizeof(AbsLineInfo));
  f->locvars = luaM_newvectorchecked(L, s->sizelocvars, LocVar);
  f->sizelocvars = s->sizelocvars;
  for (i = 0; i < s->sizelocvars; i++) {
    f->locvars[i] = s->locvars[i];
    f->locvars[i].varname = NULL;
  }
  for (i = 0; i < s->sizelocvars; i++)
    f->locvars[i].varname = localstr(L, f, s->locvars[i].varname);
}


static LClosure *pushnewclosure (lua_State *L, int nupvals) {
  LClosure *cl = luaF_newLclosure(L, nupvals);
  setclLvalue2s(L, L->top.p, cl);
  luaD_inctop(L);
  return cl;
}


/*
** Push a closure over 'p' (the root of 'v' or a prototype nested in it)
** onto L, with fresh upvalues and L's globals as upvalue 'env' (0 for a
** main chunk, as lua_load), taking over the caller's reference to 'v'. Where L's strings conflict with the
** constants, the closure gets a private copy of the tree instead.
*/
static void pushproto (lua_State *L, Version *v, Proto *p, int env) {
  ShoalVM *vm;
  LClosure *cl;
  Held *h;
  int conflict;
  if ((vm = getvm(L)) == NULL || (h = hold(L, vm, v)) == NULL) {
    shoalP_unref(v);
    luaD_throw(L, LUA_ERRMEM);
  }
  /* from here on L holds 'v' until a full mark finds no closure over it,
     so errors may be raised. An allocation may run a full collection (an
     emergency) before the closure refers to 'v', so 'v' stays held
     whatever the marks until this returns (if it raises, until the next
     push); 'h' may move at any allocation. */
  vm->pushing = v;
  conflict = h->conflict;
  luaD_checkstack(L, 1);
  if (conflict) {
    cl = pushnewclosure(L, p->sizeupvalues);
    cl->p = luaF_newproto(L);
    luaC_objbarrier(L, cl, cl->p);
    localize(L, cl->p, p);
  }
  else {
    cl = pushnewclosure(L, p->sizeupvalues);
    cl->p = p;  /* shared: no barrier, never white */
  }
  luaF_initupvals(L, cl);
  setglobals(L, cl, env);
  if (conflict) {  /* counted once the closure is made: all above may raise */
    pthread_mutex_lock(&live);
    privatecopies++;
    pthread_mutex_unlock(&live);
  }
  vm->pushing = NULL;  /* the closure marks 'v' now (a private copy needs
                          it no more) */
}


void shoalP_push (lua_State *L, Version *v, int env) {
  pushproto(L, v, v->root, env);
}


static int isluafunction (lua_State *L, int idx) {
  return lua_type(L, idx) == LUA_TFUNCTION && !lua_iscfunction(L, idx);
}


LUA_API void lua_sharefunction (lua_State *L, int idx) {
  LClosure *cl;
  Version *v;
  Pin *pin;
  ShoalVM *vm;
  idx = lua_absindex(L, idx);
  if (!isluafunction(L, idx)) {
    lua_pushfstring(L, "lua_sharefunction: expected a Lua function, got %s",
                    lua_iscfunction(L, idx) ? "a C function" : luaL_typename(L, idx));
    lua_error(L);
  }
  cl = (LClosure *)lua_topointer(L, idx);
  pthread_mutex_lock(&pinlock);
  pin = findpin(cl);
  pthread_mutex_unlock(&pinlock);
  if (pin != NULL) return;  /* shared already */
  vm = shoalP_vm(L);
  /* anchor the closure: a pinned function lives as long as its VM */
  luaL_getsubtable(L, LUA_REGISTRYINDEX, "shoal.pins");
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  pin = malloc(sizeof(Pin));
  if (pin == NULL) luaD_throw(L, LUA_ERRMEM);
  if (isshared(cl->p)) {
    v = sproto(cl->p)->v;
    shoalP_ref(v);
    pin->p = cl->p;
  }
  else {  /* a copy, its reference the pin's; L keeps running its own
             prototype (a frame of it may be running or suspended) */
    v = shoalP_newversion(L, cl->p);
    if (v == NULL) {
      free(pin);
      luaD_throw(L, LUA_ERRMEM);
    }
    pin->p = v->root;
  }
  pin->fp = cl;
  pin->v = v;
  pin->next = vm->pins;
  vm->pins = pin;
  pthread_mutex_lock(&pinlock);
  pin->hnext = pins[pinhash(cl)];
  pins[pinhash(cl)] = pin;
  pthread_mutex_unlock(&pinlock);
}


/* The upvalue named _ENV; without names (stripped code), the first. */
static int envindex (const Proto *p) {
  for (int i = 0; i < p->sizeupvalues; i++) {
    TString *name = p->upvalues[i].name;
    if (name != NULL && strcmp(getstr(name), LUA_ENV) == 0) return i;
  }
  return (p->sizeupvalues > 0 && p->upvalues[0].name == NULL) ? 0 : -1;
}


LUA_API void lua_clonefunction (lua_State *L, const void *fp) {
  Pin *pin;
  Version *v = NULL;
  Proto *p = NULL;
  pthread_mutex_lock(&pinlock);
  pin = findpin(fp);
  if (pin != NULL) {
    v = pin->v;
    p = pin->p;
    shoalP_ref(v);
  }
  pthread_mutex_unlock(&pinlock);
  if (v == NULL) {
    lua_pushfstring(L, "lua_clonefunction: %p is not a shared function "
                       "(see lua_sharefunction)", fp);
    lua_error(L);
  }
  pushproto(L, v, p, envindex(p));
}

/* }====================================================== */
