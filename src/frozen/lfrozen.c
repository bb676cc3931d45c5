/*
** lfrozen.c
** Frozen data: a graph of tables, strings and Lua functions taken out of
** the collector (nogc("open", t)) and made read-only, until given back
** (nogc("close", t)) or the VM closes.
**
** A frozen object has FROZENMARK (lshared.h): never white, so never
** marked, traversed, barriered or cleared from weak tables; and it is on no
** list of the collector (never swept) but on its graph's own list, linked
** by 'next'. Everything a frozen object refers to is frozen too, shared,
** or fixed, with one exception: the upvalues of frozen Lua closures, which
** stay assignable and are roots of every collection (markfrozen, lgc.c).
** Frozen bytes leave the collector's accounting, so they set no pace.
*/

#define LUA_CORE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua.h"
#include "lauxlib.h"

#include "lapi.h"
#include "lctype.h"
#include "ldo.h"
#include "ldebug.h"
#include "lfunc.h"
#include "lgc.h"
#include "lmem.h"
#include "llex.h"
#include "lobject.h"
#include "lstate.h"
#include "lstring.h"
#include "ltable.h"
#include "ltm.h"

#include "lshared.h"
#include "lfrozen.h"
#include "shoal.h"


/* a mark only seen while 'freeze' runs (no collection can run meanwhile) */
#define VISITMARK	cast_byte(bitmask(SHAREDBIT) | 6)

typedef struct Graph {
  Table *root;
  GCObject *list;  /* its objects, linked by 'next' */
  size_t n, bytes;
  int sharing;  /* it reaches objects frozen by other graphs */
  struct Graph *next;
} Graph;

typedef struct Frozen {
  Graph *graphs;
  GCObject *orphans;  /* objects of closed graphs that other graphs use */
  size_t norphans, orphanbytes;
  LClosure **cl;  /* frozen Lua closures: their upvalues are roots */
  int ncl, sizecl;
  /* frozen short strings, out of the string table ('strt') so that its
     resizes stay proportional to collectable strings; chained by 'hnext' */
  TString **strs;
  int sizestrs, nstrs;  /* 'sizestrs': 0 or a power of 2 */
} Frozen;


/*
** {======================================================
** Growable arrays (plain malloc: no collection while they grow)
** =======================================================
*/

typedef struct Vec {
  GCObject **o;
  lu_byte *mark;  /* if not NULL: the original mark of each object */
  size_t n, size;
} Vec;


static int push (Vec *v, GCObject *o, lu_byte mark) {
  if (v->n == v->size) {
    size_t n = v->size ? 2 * v->size : 256;
    GCObject **a = realloc(v->o, n * sizeof(GCObject *));
    if (a == NULL) return 0;
    v->o = a;
    if (v->mark != NULL) {
      lu_byte *m = realloc(v->mark, n);
      if (m == NULL) return 0;
      v->mark = m;
    }
    v->size = n;
  }
  if (mark != 0 && v->mark == NULL &&  /* the first mark not 0 */
      (v->mark = calloc(v->size, 1)) == NULL)  /* those before it: 0 */
    return 0;
  if (v->mark != NULL) v->mark[v->n] = mark;
  v->o[v->n++] = o;
  return 1;
}


/* The original mark of object 'i' of 'v' (0 unless recorded). */
#define markof(v,i)	((v)->mark != NULL ? (v)->mark[i] : 0)


static void freevec (Vec *v) {
  free(v->o);
  free(v->mark);
}

/* }====================================================== */


static Frozen *getfrozen (lua_State *L, int create) {
  ShoalVM *vm = create ? shoalP_vm(L) : G(L)->shoal;
  if (vm == NULL) return NULL;
  if (vm->frozen == NULL && create) {
    vm->frozen = calloc(1, sizeof(Frozen));
    if (vm->frozen == NULL) luaD_throw(L, LUA_ERRMEM);
  }
  return vm->frozen;
}


/*
** {======================================================
** Frozen short strings
** =======================================================
*/

/* The frozen short string equal to 'str', or NULL (for internshrstr). */
TString *shoalF_findstr (global_State *g, const char *str, size_t l,
                         unsigned int h) {
  Frozen *fz = (g->shoal != NULL) ? g->shoal->frozen : NULL;
  if (fz == NULL || fz->nstrs == 0) return NULL;
  for (TString *ts = fz->strs[lmod(h, fz->sizestrs)]; ts != NULL;
       ts = ts->u.hnext) {
    if (l == ts->shrlen && memcmp(str, getshrstr(ts), l) == 0) return ts;
  }
  return NULL;
}


/* Room for 'n' more frozen strings (load factor at most 1); 0: no memory. */
static int reservestrs (Frozen *fz, int n) {
  int size = fz->sizestrs ? fz->sizestrs : 256;
  TString **a;
  if (fz->nstrs + n <= fz->sizestrs) return 1;
  while (size < fz->nstrs + n) size *= 2;
  if ((a = calloc(size, sizeof(TString *))) == NULL) return 0;
  for (int i = 0; i < fz->sizestrs; i++) {
    for (TString *ts = fz->strs[i], *next; ts != NULL; ts = next) {
      next = ts->u.hnext;
      ts->u.hnext = a[lmod(ts->hash, size)];
      a[lmod(ts->hash, size)] = ts;
    }
  }
  free(fz->strs);
  fz->strs = a;
  fz->sizestrs = size;
  return 1;
}


/* Move the short string 'ts' from the string table to the frozen ones. */
static void freezestr (lua_State *L, Frozen *fz, TString *ts) {
  TString **list = &fz->strs[lmod(ts->hash, fz->sizestrs)];
  luaS_remove(L, ts);
  ts->u.hnext = *list;
  *list = ts;
  fz->nstrs++;
}


/* Move the short string 'ts' back to the string table (it has room). */
static void thawstr (lua_State *L, Frozen *fz, TString *ts) {
  stringtable *tb = &G(L)->strt;
  TString **p = &fz->strs[lmod(ts->hash, fz->sizestrs)];
  while (*p != ts) p = &(*p)->u.hnext;
  *p = ts->u.hnext;
  fz->nstrs--;
  p = &tb->hash[lmod(ts->hash, tb->size)];
  ts->u.hnext = *p;
  *p = ts;
  tb->nuse++;
}

/* }====================================================== */


int shoalF_closures (global_State *g, LClosure *const **cl) {
  Frozen *fz = (g->shoal != NULL) ? g->shoal->frozen : NULL;
  if (fz == NULL) return 0;
  *cl = fz->cl;
  return fz->ncl;
}


static size_t objsize (GCObject *o) {
  switch (o->tt) {
    case LUA_VSHRSTR: return sizelstring(gco2ts(o)->shrlen);
    case LUA_VLNGSTR: return sizelstring(gco2ts(o)->u.lnglen);
    case LUA_VTABLE: {
      Table *t = gco2t(o);
      return sizeof(Table) + luaH_realasize(t) * sizeof(TValue) +
             (isdummy(t) ? 0 : sizenode(t) * sizeof(Node));
    }
    case LUA_VLCL: return sizeLclosure(gco2lcl(o)->nupvalues);
    case LUA_VPROTO: {
      Proto *p = gco2p(o);
      return sizeof(Proto) + p->sizecode * sizeof(Instruction) +
             p->sizep * sizeof(Proto *) + p->sizek * sizeof(TValue) +
             p->sizelineinfo * sizeof(ls_byte) +
             p->sizeabslineinfo * sizeof(AbsLineInfo) +
             p->sizelocvars * sizeof(LocVar) +
             p->sizeupvalues * sizeof(Upvaldesc);
    }
    default: lua_assert(0); return 0;
  }
}


/*
** {======================================================
** Children of an object, as the collector would traverse them
** =======================================================
*/

typedef struct Child {  /* how a child hangs from its parent, for paths */
  const TValue *key;  /* the key a value is under; NULL if none */
  const char *what;  /* else "(key)", "(metatable)", "(prototype)" */
} Child;

typedef int (*Visit) (void *ud, GCObject *parent, GCObject *o, Child how);


/* Call 'f' on every collectable child of 'o'; stops when 'f' returns 0. */
static int children (GCObject *o, Visit f, void *ud) {
  Child how = {NULL, NULL};
  int i;
#define VISIT(x,k,w)	{ how.key = (k); how.what = (w); \
                          if ((x) != NULL && !f(ud, o, (x), how)) return 0; }
#define VISITV(v,k,w)	{ if (iscollectable(v)) VISIT(gcvalue(v), k, w) }
  switch (o->tt) {
    case LUA_VTABLE: {
      Table *t = gco2t(o);
      unsigned int asize = luaH_realasize(t);
      if (t->metatable) VISIT(obj2gco(t->metatable), NULL, "(metatable)");
      for (unsigned int u = 0; u < asize; u++) {
        TValue k;
        setivalue(&k, (lua_Integer)u + 1);
        VISITV(&t->array[u], &k, NULL);
      }
      for (i = 0; i < (int)sizenode(t); i++) {
        Node *n = gnode(t, i);
        if (!isempty(gval(n))) {
          TValue k;
          k.value_ = n->u.key_val;  /* as getnodekey */
          k.tt_ = n->u.key_tt;
          VISITV(&k, NULL, "(key)");
          VISITV(gval(n), &k, NULL);
        }
      }
      break;
    }
    case LUA_VLCL:
      VISIT(obj2gco(gco2lcl(o)->p), NULL, "(prototype)");
      break;
    case LUA_VPROTO: {
      Proto *p = gco2p(o);
      if (p->source) VISIT(obj2gco(p->source), NULL, "(prototype)");
      for (i = 0; i < p->sizek; i++) VISITV(&p->k[i], NULL, "(prototype)");
      for (i = 0; i < p->sizeupvalues; i++)
        if (p->upvalues[i].name) VISIT(obj2gco(p->upvalues[i].name), NULL, "(prototype)");
      for (i = 0; i < p->sizep; i++) VISIT(obj2gco(p->p[i]), NULL, "(prototype)");
      for (i = 0; i < p->sizelocvars; i++)
        if (p->locvars[i].varname) VISIT(obj2gco(p->locvars[i].varname), NULL, "(prototype)");
      break;
    }
    default: break;  /* strings: no children */
  }
#undef VISIT
#undef VISITV
  return 1;
}

/* }====================================================== */


/*
** {======================================================
** Freezing
** =======================================================
*/

typedef struct Freeze {
  lua_State *L;
  Vec seen;  /* every object touched, with its original mark */
  Vec stack;  /* objects to traverse */
  int sharing;  /* reached an object frozen by another graph */
  GCObject *bad;  /* the object refused */
  const char *why;  /* and why */
  int nomem;
} Freeze;


static const char *refusal (lua_State *L, GCObject *o, lu_byte mark) {
  switch (o->tt) {
    case LUA_VUSERDATA: return "userdata";
    case LUA_VTHREAD: return "a thread";
    case LUA_VCCL: return "a C function with upvalues";
    case LUA_VTABLE: {
      Table *mt = gco2t(o)->metatable;
      if (mt != NULL) {
        if (!notm(luaH_getshortstr(mt, G(L)->tmname[TM_GC])))
          return "a table with __gc";
        if (!notm(luaH_getshortstr(mt, G(L)->tmname[TM_MODE])))
          return "a table with __mode";
      }
      if (testbit(mark, FINALIZEDBIT))  /* its __gc was removed since */
        return "a table with a finalizer";
      return NULL;
    }
    default: return NULL;
  }
}


/* Is 'o' out of this graph: shared, fixed, or frozen already? */
static int outside (Freeze *fr, GCObject *o) {
  if (isshared(o)) return 1;
  if (isfrozen(o)) {
    fr->sharing = 1;
    return 1;
  }
  /* a gray string is a fixed one (strings are never in gray lists) */
  return (o->tt == LUA_VSHRSTR || o->tt == LUA_VLNGSTR) && isgray(o);
}


static int visit (void *ud, GCObject *parent, GCObject *o, Child how) {
  Freeze *fr = ud;
  (void)parent; (void)how;
  if (o->marked == VISITMARK || outside(fr, o)) return 1;
  if ((fr->why = refusal(fr->L, o, o->marked)) != NULL) {
    fr->bad = o;
    return 0;
  }
  if (!push(&fr->seen, o, o->marked) || !push(&fr->stack, o, 0)) {
    fr->nomem = 1;
    return 0;
  }
  o->marked = VISITMARK;
  return 1;
}


static void restore (Freeze *fr) {
  for (size_t i = 0; i < fr->seen.n; i++)
    fr->seen.o[i]->marked = markof(&fr->seen, i);
}


/*
** The path from the root to 'bad', as Lua would write it ("t.items[3]"):
** a breadth-first search, so the shortest.
*/
typedef struct Path {
  Freeze *fr;
  Vec queue;  /* objects reached, in order */
  int *parent;  /* index in 'queue' of each one's parent */
  TValue *key;  /* the key each one is under (nil: 'what' says) */
  const char **what;
  size_t size;
  int found;
  size_t at;  /* index of the object being expanded */
} Path;

#define PATHMARK	cast_byte(bitmask(SHAREDBIT) | 5)

static int reach (void *ud, GCObject *parent, GCObject *o, Child how) {
  Path *p = ud;
  (void)parent;
  if (o->marked == PATHMARK || (o != p->fr->bad && outside(p->fr, o)))
    return 1;
  if (o->marked != VISITMARK &&  /* first touched here: keep its mark */
      !push(&p->fr->seen, o, o->marked))
    return 0;
  if (p->queue.n == p->size) {
    size_t n = p->size ? 2 * p->size : 256;
    int *pa = realloc(p->parent, n * sizeof(int));
    TValue *k = pa ? realloc(p->key, n * sizeof(TValue)) : NULL;
    const char **w = k ? realloc(p->what, n * sizeof(char *)) : NULL;
    if (pa) p->parent = pa;
    if (k) p->key = k;
    if (w == NULL) return 0;
    p->what = w;
    p->size = n;
  }
  if (!push(&p->queue, o, 0)) return 0;
  p->parent[p->queue.n - 1] = (int)p->at;
  if (how.key) p->key[p->queue.n - 1] = *how.key;
  else setnilvalue(&p->key[p->queue.n - 1]);
  p->what[p->queue.n - 1] = how.what;
  o->marked = PATHMARK;
  if (o == p->fr->bad) {
    p->found = 1;
    return 0;
  }
  return 1;
}


static int isname (const char *s, size_t l) {
  if (l == 0 || !(lislalpha(*s) || *s == '_')) return 0;
  for (size_t i = 1; i < l; i++)
    if (!(lislalnum(s[i]) || s[i] == '_')) return 0;
  return 1;
}


/* Write step 'i' of 'p' into 'b' (room for 'size'); its length. */
static int step (Path *p, size_t i, char *b, size_t size) {
  const TValue *k = &p->key[i];
  if (ttisnil(k)) return snprintf(b, size, "%s", p->what[i]);
  else if (ttisstring(k)) {
    const char *s = getstr(tsvalue(k));
    size_t l = tsslen(tsvalue(k));
    if (isname(s, l) && tsvalue(k)->extra == 0)
      return snprintf(b, size, ".%s", s);
    return snprintf(b, size, "[\"%.*s\"]", (int)(l > 40 ? 40 : l), s);
  }
  else if (ttisinteger(k))
    return snprintf(b, size, "[" LUA_INTEGER_FMT "]", ivalue(k));
  else if (ttisfloat(k))
    return snprintf(b, size, "[" LUA_NUMBER_FMT "]", fltvalue(k));
  else if (ttisboolean(k))
    return snprintf(b, size, "[%s]", ttistrue(k) ? "true" : "false");
  return snprintf(b, size, "[%s]", ttypename(ttype(k)));
}


/*
** The path of the last object of 'p' from the root, into 'buff': "t" and
** each step; a long one keeps its start and its end around "...".
*/
static void writepath (Path *p, char *buff, size_t size) {
  enum { HEAD = 80, TAIL = 160 };
  size_t n = 0, len = 1, cap = 64, k;
  int *chain = malloc(cap * sizeof(int));
  char tail[TAIL + 1];
  snprintf(buff, size, "t");
  for (int i = (int)p->queue.n - 1; i > 0 && chain != NULL; i = p->parent[i]) {
    if (n == cap) {
      int *c = realloc(chain, 2 * cap * sizeof(int));
      if (c == NULL) break;
      chain = c;
      cap *= 2;
    }
    chain[n++] = i;
  }
  if (chain == NULL) return;
  for (k = n; k > 0 && len < HEAD; ) {  /* the head, forward from the root */
    char s[64];
    int l = step(p, chain[--k], s, sizeof s);
    if (len + l >= size) break;
    memcpy(buff + len, s, l + 1);
    len += l;
  }
  if (k > 0) {  /* the rest: as much of its end as fits */
    size_t t = TAIL;
    tail[t] = '\0';
    for (size_t j = 0; j < k; j++) {
      char s[64];
      int l = step(p, chain[j], s, sizeof s);
      if ((size_t)l > t) break;
      t -= l;
      memcpy(tail + t, s, l);
    }
    snprintf(buff + len, size - len, "...%s", tail + t);
  }
  free(chain);
}


static void findpath (Freeze *fr, GCObject *root, char *buff, size_t size) {
  Path p;
  memset(&p, 0, sizeof p);
  p.fr = fr;
  snprintf(buff, size, "t");
  if (root == fr->bad) return;
  if (reach(&p, NULL, root, (Child){NULL, NULL}) && !p.found) {
    for (p.at = 0; p.at < p.queue.n && !p.found; p.at++)
      if (!children(p.queue.o[p.at], reach, &p)) break;
  }
  if (p.found) writepath(&p, buff, size);
  else snprintf(buff, size, "t (no memory to find where)");
  free(p.parent);
  free(p.key);
  free(p.what);
  freevec(&p.queue);
}


static void unlinkgray (global_State *g, GCObject **list) {
  while (*list != NULL) {
    GCObject *o = *list;
    GCObject **next;
    switch (o->tt) {
      case LUA_VTABLE: next = &gco2t(o)->gclist; break;
      case LUA_VLCL: next = &gco2lcl(o)->gclist; break;
      case LUA_VCCL: next = &gco2ccl(o)->gclist; break;
      case LUA_VPROTO: next = &gco2p(o)->gclist; break;
      case LUA_VTHREAD: next = &gco2th(o)->gclist; break;
      case LUA_VUSERDATA: next = &gco2u(o)->gclist; break;
      default: lua_assert(0); return;
    }
    if (o->marked == VISITMARK) *list = *next;  /* remove it */
    else list = next;
  }
  (void)g;
}


/*
** Move every visited object from the collector's lists to graph 'gr'.
*/
/*
** A removed entry keeps its key, which the collector marks dead when it
** traverses the table ('clearkey'). It never traverses a frozen one, and
** the key, not frozen (see 'children'), may go: mark such keys dead now.
*/
static void deadkeys (Table *t) {
  for (int i = 0; i < (int)sizenode(t); i++) {
    Node *n = gnode(t, i);
    if (isempty(gval(n)) && keyiscollectable(n)) setdeadkey(n);
  }
}


static void commit (lua_State *L, Frozen *fz, Graph *gr, Freeze *fr) {
  global_State *g = G(L);
  GCObject **p = &g->allgc;
  size_t n = 0;
  unlinkgray(g, &g->gray);
  unlinkgray(g, &g->grayagain);
  unlinkgray(g, &g->weak);
  unlinkgray(g, &g->allweak);
  unlinkgray(g, &g->ephemeron);
  while (*p != NULL && n < fr->seen.n) {
    GCObject *o = *p;
    if (o->marked != VISITMARK) {
      p = &o->next;
      continue;
    }
    if (g->sweepgc == &o->next) g->sweepgc = p;  /* keep the sweep's place */
    if (g->survival == o) g->survival = o->next;  /* and the generations' */
    if (g->old1 == o) g->old1 = o->next;
    if (g->reallyold == o) g->reallyold = o->next;
    if (g->firstold1 == o) g->firstold1 = o->next;
    *p = o->next;
    o->marked = FROZENMARK;
    o->next = gr->list;
    gr->list = o;
    gr->bytes += objsize(o);
    n++;
    if (o->tt == LUA_VLCL) fz->cl[fz->ncl++] = gco2lcl(o);
    else if (o->tt == LUA_VSHRSTR) freezestr(L, fz, gco2ts(o));
    else if (o->tt == LUA_VTABLE) deadkeys(gco2t(o));
  }
  lua_assert(n == fr->seen.n);
  /* the string table lost the frozen strings: shrink it now, not by one
     halving per major collection (each a pass over the whole table) */
  if (fz->nstrs > 0) {
    int size = g->strt.size;
    while (size > MINSTRTABSIZE && g->strt.nuse < size / 4) size /= 2;
    if (size < g->strt.size) luaS_resize(L, size);
  }
  gr->n = n;
  gr->sharing = fr->sharing;
  /* frozen bytes set no pace */
  g->totalbytes -= (l_mem)gr->bytes;
  g->GCestimate -= (gr->bytes < g->GCestimate) ? gr->bytes : g->GCestimate;
}


static Graph *findgraph (Frozen *fz, const Table *t, Graph ***prev) {
  Graph **p = &fz->graphs;
  for (; *p != NULL && (*p)->root != t; p = &(*p)->next) ;
  if (prev) *prev = p;
  return *p;
}


LUA_API void lua_freeze (lua_State *L, int idx) {
  Freeze fr;
  Frozen *fz;
  Graph *gr;
  GCObject *root;
  size_t ncl = 0;
  char path[300], msg[400];
  luaL_checktype(L, idx, LUA_TTABLE);
  root = obj2gco((Table *)lua_topointer(L, idx));
  if (isfrozen(root)) luaL_error(L, "table is already frozen");
  fz = getfrozen(L, 1);
  gr = calloc(1, sizeof(Graph));
  if (gr == NULL) luaD_throw(L, LUA_ERRMEM);
  memset(&fr, 0, sizeof fr);
  fr.L = L;
  /* from here to 'restore', no allocation in L: no collection may run */
  if (visit(&fr, NULL, root, (Child){NULL, NULL})) {
    while (fr.stack.n > 0) {
      GCObject *o = fr.stack.o[--fr.stack.n];
      if (!children(o, visit, &fr)) break;
    }
  }
  if (fr.bad == NULL && !fr.nomem) {
    size_t nstr = 0;
    for (size_t i = 0; i < fr.seen.n; i++) {
      ncl += (fr.seen.o[i]->tt == LUA_VLCL);
      nstr += (fr.seen.o[i]->tt == LUA_VSHRSTR);
    }
    if (nstr > (size_t)(INT_MAX / 2) - fz->nstrs || !reservestrs(fz, (int)nstr))
      fr.nomem = 1;
    if (fz->ncl + ncl > (size_t)fz->sizecl) {
      size_t n = fz->ncl + ncl + 16;
      LClosure **a = realloc(fz->cl, n * sizeof(LClosure *));
      if (a == NULL) fr.nomem = 1;
      else {
        fz->cl = a;
        fz->sizecl = (int)n;
      }
    }
  }
  if (fr.bad != NULL || fr.nomem) {  /* refused: nothing frozen */
    if (fr.bad != NULL) {
      findpath(&fr, root, path, sizeof path);
      snprintf(msg, sizeof msg, "cannot freeze %s at %s", fr.why, path);
    }
    restore(&fr);
    freevec(&fr.seen);
    freevec(&fr.stack);
    free(gr);
    if (fr.nomem) luaD_throw(L, LUA_ERRMEM);
    luaL_error(L, "%s", msg);
  }
  gr->root = gco2t(root);
  commit(L, fz, gr, &fr);
  gr->next = fz->graphs;
  fz->graphs = gr;
  freevec(&fr.seen);
  freevec(&fr.stack);
}

/* }====================================================== */


/*
** {======================================================
** Thawing
** =======================================================
*/

typedef struct Keep {  /* frozen objects other graphs reach */
  Vec marked;
  int nomem;
} Keep;


static int keepvisit (void *ud, GCObject *parent, GCObject *o, Child how) {
  Keep *k = ud;
  (void)parent; (void)how;
  if (!isfrozen(o) || isblack(o)) return 1;
  if (!push(&k->marked, o, 0)) {
    k->nomem = 1;
    return 0;
  }
  l_setbit(o->marked, BLACKBIT);  /* temporary: cleared before returning */
  return 1;
}


/* Give 'o' back to the collector, consistent with its current phase. */
static void thawobj (lua_State *L, GCObject *o) {
  global_State *g = G(L);
  o->next = g->allgc;
  g->allgc = o;
  if (keepinvariant(g)) {  /* marking (always, in generational mode) */
    /* black: alive this cycle; old in generational mode, where old objects
       refer to old ones (all it refers to was frozen, shared or fixed) */
    o->marked = cast_byte(bitmask(BLACKBIT) |
                          (g->gckind == KGC_GEN ? G_OLD : G_NEW));
    if (o->tt == LUA_VLCL) {  /* but its upvalues may be young or white: */
      LClosure *cl = gco2lcl(o);  /* mark them (a back barrier would leave
                                     an old closure untraversed by young
                                     collections, its young upvalue freed) */
      for (int i = 0; i < cl->nupvalues; i++)
        if (cl->upvals[i] != NULL) luaC_objbarrier(L, cl, cl->upvals[i]);
    }
  }
  else  /* sweeping: white, as a new object */
    o->marked = luaC_white(g);
}


LUA_API void lua_thaw (lua_State *L, int idx) {
  Frozen *fz = getfrozen(L, 0);
  Graph **prev = NULL, *gr, *other;
  Keep keep;
  GCObject *list, *kept = NULL;
  size_t bytes = 0, nkept = 0, keptbytes = 0;
  luaL_checktype(L, idx, LUA_TTABLE);
  gr = (fz != NULL) ? findgraph(fz, (Table *)lua_topointer(L, idx), &prev) : NULL;
  if (gr == NULL) luaL_error(L, "table is not the root of a frozen graph");
  memset(&keep, 0, sizeof keep);
  /* mark what other graphs reach of ours (and of the orphans) */
  for (other = fz->graphs; other != NULL && !keep.nomem; other = other->next) {
    if (other == gr || !other->sharing) continue;
    keepvisit(&keep, NULL, obj2gco(other->root), (Child){NULL, NULL});
    for (size_t i = 0; i < keep.marked.n && !keep.nomem; i++)
      children(keep.marked.o[i], keepvisit, &keep);
  }
  if (keep.nomem) {
    for (size_t i = 0; i < keep.marked.n; i++)
      resetbit(keep.marked.o[i]->marked, BLACKBIT);
    freevec(&keep.marked);
    luaD_throw(L, LUA_ERRMEM);
  }
  /* room in the string table for every frozen string (before any change:
     this may raise a memory error) */
  if (G(L)->strt.nuse + fz->nstrs > G(L)->strt.size) {
    int size = G(L)->strt.size;
    while (size < G(L)->strt.nuse + fz->nstrs && size <= INT_MAX / 4) size *= 2;
    luaS_resize(L, size);
  }
  /* thaw the graph and the orphans, but what others reach stays frozen */
  for (int pass = 0; pass < 2; pass++) {
    list = (pass == 0) ? gr->list : fz->orphans;
    while (list != NULL) {
      GCObject *o = list;
      size_t size = objsize(o);
      list = o->next;
      if (isblack(o)) {
        o->next = kept;
        kept = o;
        nkept++;
        keptbytes += size;
      }
      else {
        bytes += size;
        if (o->tt == LUA_VSHRSTR) thawstr(L, fz, gco2ts(o));
        thawobj(L, o);
      }
    }
  }
  fz->orphans = kept;
  fz->norphans = nkept;
  fz->orphanbytes = keptbytes;
  for (size_t i = 0; i < keep.marked.n; i++)
    resetbit(keep.marked.o[i]->marked, BLACKBIT);
  freevec(&keep.marked);
  /* frozen closures: keep those still frozen */
  int n = 0;
  for (int i = 0; i < fz->ncl; i++)
    if (isfrozen(fz->cl[i])) fz->cl[n++] = fz->cl[i];
  fz->ncl = n;
  G(L)->totalbytes += (l_mem)bytes;
  *prev = gr->next;
  free(gr);
}

/* }====================================================== */


LUA_API int lua_isfrozen (lua_State *L, int idx) {
  switch (lua_type(L, idx)) {
    case LUA_TFUNCTION:
      /* a C function is never frozen: a light one is no object at all
         (lua_topointer gives its code's address), a closure is refused */
      if (lua_iscfunction(L, idx)) return 0;
      /* FALLTHROUGH */
    case LUA_TTABLE: case LUA_TSTRING:
      /* lua_topointer gives the object itself */
      return isfrozen((const GCObject *)lua_topointer(L, idx));
    default:
      return 0;
  }
}


LUA_API void lua_frozenstats (lua_State *L, size_t *count, size_t *bytes) {
  Frozen *fz = getfrozen(L, 0);
  *count = *bytes = 0;
  if (fz == NULL) return;
  for (Graph *gr = fz->graphs; gr != NULL; gr = gr->next) {
    *count += gr->n;
    *bytes += gr->bytes;
  }
  *count += fz->norphans;
  *bytes += fz->orphanbytes;
}


/* Free a frozen object: a short string is in no string table of L's. */
static void freefrozen (lua_State *L, GCObject *o) {
  if (o->tt == LUA_VSHRSTR)
    luaM_freemem(L, o, sizelstring(gco2ts(o)->shrlen));
  else
    luaC_freefrozen(L, o);
}


void shoalF_closestate (lua_State *L) {
  Frozen *fz = getfrozen(L, 0);
  int each = !shoalA_wholesale(L);  /* else the heap goes at once */
  if (fz == NULL) return;
  while (fz->graphs != NULL) {
    Graph *gr = fz->graphs;
    fz->graphs = gr->next;
    G(L)->totalbytes += (l_mem)gr->bytes;  /* freeing counts them out */
    for (GCObject *o = gr->list, *next; o != NULL && each; o = next) {
      next = o->next;
      freefrozen(L, o);
    }
    free(gr);
  }
  G(L)->totalbytes += (l_mem)fz->orphanbytes;
  for (GCObject *o = fz->orphans, *next; o != NULL && each; o = next) {
    next = o->next;
    freefrozen(L, o);
  }
  free(fz->strs);
  free(fz->cl);
  free(fz);
  G(L)->shoal->frozen = NULL;
}


/*
** nogc(op, ...): "open", "close", "len", "count", "isfrozen".
*/
int shoalF_nogc (lua_State *L) {
  static const char *const ops[] = {"open", "close", "len", "count",
                                    "isfrozen", NULL};
  size_t count, bytes;
  Frozen *fz;
  switch (luaL_checkoption(L, 1, NULL, ops)) {
    case 0:
      luaL_checktype(L, 2, LUA_TTABLE);
      luaL_argcheck(L, !lua_isfrozen(L, 2), 2, "table is already frozen");
      lua_settop(L, 2);
      lua_freeze(L, 2);
      return 1;
    case 1:
      luaL_checktype(L, 2, LUA_TTABLE);
      fz = getfrozen(L, 0);
      luaL_argcheck(L, fz != NULL &&
                       findgraph(fz, lua_topointer(L, 2), NULL) != NULL,
                    2, "not the root of a frozen graph");
      lua_settop(L, 2);
      lua_thaw(L, 2);
      return 1;
    case 2:
      lua_frozenstats(L, &count, &bytes);
      lua_pushinteger(L, (lua_Integer)count);
      return 1;
    case 3:
      lua_frozenstats(L, &count, &bytes);
      lua_pushnumber(L, (lua_Number)bytes / 1024);
      return 1;
    default:
      luaL_checkany(L, 2);
      lua_pushboolean(L, lua_isfrozen(L, 2));
      return 1;
  }
}
