/*
** lcodecache.c
** The code cache: luaL_loadfilex parses a file once per process; later
** loads push a closure over the shared prototype tree (lsproto.c).
**
** Key: the file's canonical path and the name it was loaded by (chunk names
** stay exactly as stock). A name resolves to one path at a time (symlinks
** and the working folder are the process's), so a load that finds its name
** now resolving elsewhere, or nowhere, drops that name's other entries: the
** code of a release a deploy switched away from, of a deleted file. A hit
** is first looked for by the name alone, without resolving it (see
** 'findbyname'). A hit checks the file's identity (device, inode,
** size, mtime, ctime) unless the process mode is 'trust'. One thread parses
** a missing file while the others wait for it. A failed parse is not cached
** and its error is stock Lua's own, as the parse is stock luaL_loadfilex.
** Nor is a parse that a reload or clear dropped while it ran: it may have
** read the file before the change the reload is for (and in mode 'trust'
** nothing else would ever notice).
*/

#define LUA_CORE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lua.h"
#include "lauxlib.h"

#include "ldo.h"
#include "lstate.h"

#include "lshared.h"
#include "shoal.h"


#define MODE_ON		0
#define MODE_OFF	1
#define MODE_TRUST	2

typedef struct Entry {
  char *path;  /* canonical path */
  char *name;  /* file name as given to luaL_loadfilex */
  int loading;  /* a thread is parsing it; 'v' not yet set */
  int stale;  /* dropped while parsed: its version is not to be cached */
  int binary;  /* a precompiled chunk */
  struct stat id;  /* identity when parsed */
  int racy;  /* changed too recently for 'id' to tell all changes */
  uint64_t sum;  /* if racy: checksum of the content */
  Version *v;  /* one reference */
  size_t hash;  /* of 'path' */
  struct Entry *next;  /* in its bucket */
  size_t nhash;  /* of 'name' */
  struct Entry *nnext;  /* in its bucket of 'bynames' */
} Entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t parsed = PTHREAD_COND_INITIALIZER;
static Entry **buckets;  /* chained hash table on the path */
static Entry **bynames;  /* the same entries, on the name */
static size_t nbuckets, nentries;  /* of each; nbuckets: 0 or a power of 2 */
static size_t hits, misses;
static size_t namehits;  /* of 'hits', found by 'findbyname' */
static size_t searchhits;  /* 'readable' answered without opening */


static pthread_once_t modeonce = PTHREAD_ONCE_INIT;
static int pmode;

static void readmode (void) {
  const char *e = getenv("SHOAL_CODECACHE");
  if (e == NULL || *e == '\0' || strcmp(e, "on") == 0) pmode = MODE_ON;
  else if (strcmp(e, "off") == 0) pmode = MODE_OFF;
  else if (strcmp(e, "trust") == 0) pmode = MODE_TRUST;
  else {
    fprintf(stderr, "shoal: SHOAL_CODECACHE must be on, off or trust "
                    "(not '%s'); using on\n", e);
    pmode = MODE_ON;
  }
}


/* The process mode, from SHOAL_CODECACHE (read once). */
static int processmode (void) {
  pthread_once(&modeonce, readmode);
  return pmode;
}


static int sameid (const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
         a->st_size == b->st_size &&
         a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
         a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
         a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
         a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}


/*
** File timestamps are coarse (a clock tick or more): a file changed again
** within the tick of the change 'id' saw keeps its times. So while a file's
** last change is under RACYSECS old, its identity alone does not prove it
** unchanged, and hits also compare a checksum of its content (git calls
** such index entries "racily clean").
*/
#define RACYSECS	2

static int isracy (const struct stat *st) {
  return time(NULL) - st->st_ctim.tv_sec < RACYSECS;
}


/* FNV-1a of the file's content; 0 if it cannot be read. */
static uint64_t checksum (const char *path) {
  unsigned char buff[4096];
  uint64_t h = 14695981039346656037u;
  size_t n;
  FILE *f = fopen(path, "rb");
  if (f == NULL) return 0;
  while ((n = fread(buff, 1, sizeof buff, f)) > 0) {
    for (size_t i = 0; i < n; i++) h = (h ^ buff[i]) * 1099511628211u;
  }
  if (ferror(f)) h = 0;
  fclose(f);
  return h;
}


/* Is the file as entry 'e' parsed it? (Under 'lock'.) */
static int unchanged (Entry *e, const struct stat *st) {
  if (!sameid(&e->id, st)) return 0;
  if (e->racy) {
    if (checksum(e->path) != e->sum) return 0;
    if (!isracy(st)) e->racy = 0;  /* settled: any later change shows in 'id' */
  }
  return 1;
}


static size_t hashpath (const char *path) {
  size_t h = 14695981039346656037u;
  for (; *path; path++) h = (h ^ (unsigned char)*path) * 1099511628211u;
  return h;
}


static Entry *find (const char *path, const char *name) {
  Entry *e = NULL;
  if (nbuckets > 0) {
    size_t h = hashpath(path);
    for (e = buckets[h & (nbuckets - 1)]; e != NULL; e = e->next)
      if (e->hash == h && strcmp(e->path, path) == 0 &&
          strcmp(e->name, name) == 0) break;
  }
  return e;
}


/* Add 'e' (under 'lock'); 0 if the table cannot grow. */
static int link_entry (Entry *e) {
  if (nentries >= nbuckets) {  /* keep chains short */
    size_t n = nbuckets ? 2 * nbuckets : 64;
    Entry **b = calloc(n, sizeof(Entry *)), **bn = calloc(n, sizeof(Entry *));
    if (b == NULL || bn == NULL) {
      free(b);
      free(bn);
      return 0;
    }
    for (size_t i = 0; i < nbuckets; i++) {
      for (Entry *x = buckets[i], *next; x != NULL; x = next) {
        next = x->next;
        x->next = b[x->hash & (n - 1)];
        b[x->hash & (n - 1)] = x;
        x->nnext = bn[x->nhash & (n - 1)];
        bn[x->nhash & (n - 1)] = x;
      }
    }
    free(buckets);
    free(bynames);
    buckets = b;
    bynames = bn;
    nbuckets = n;
  }
  e->hash = hashpath(e->path);
  e->next = buckets[e->hash & (nbuckets - 1)];
  buckets[e->hash & (nbuckets - 1)] = e;
  e->nhash = hashpath(e->name);
  e->nnext = bynames[e->nhash & (nbuckets - 1)];
  bynames[e->nhash & (nbuckets - 1)] = e;
  nentries++;
  return 1;
}


static void unlink_entry (Entry *e) {
  Entry **p = &buckets[e->hash & (nbuckets - 1)];
  while (*p != e) p = &(*p)->next;
  *p = e->next;
  p = &bynames[e->nhash & (nbuckets - 1)];
  while (*p != e) p = &(*p)->nnext;
  *p = e->nnext;
  nentries--;
}


/* Drop a ready entry (under 'lock'); its version lives on while held. */
static void drop (Entry *e) {
  unlink_entry(e);
  shoalP_setcached(e->v, 2);
  shoalP_unref(e->v);
  free(e->path);
  free(e->name);
  free(e);
}


/*
** Drop the ready entries of 'name' but for those of 'path' (all of them
** if NULL): the name resolves to 'path' now (under 'lock').
*/
static void supersede (const char *name, const char *path) {
  if (nbuckets > 0) {
    size_t h = hashpath(name);
    for (Entry *e = bynames[h & (nbuckets - 1)], *next; e != NULL; e = next) {
      next = e->nnext;
      if (e->nhash == h && !e->loading && strcmp(e->name, name) == 0 &&
          (path == NULL || strcmp(e->path, path) != 0))
        drop(e);
    }
  }
}


static int vmmode (lua_State *L) {
  ShoalVM *vm = G(L)->shoal;
  return (vm == NULL) ? SHOAL_CACHE_ON : vm->cachemode;
}


typedef struct Reader {  /* a file as lua_load reads it */
  FILE *f;
  int n;  /* bytes in 'buff' to give before the rest of the file */
  char buff[BUFSIZ];
} Reader;


static const char *readfile (lua_State *P, void *ud, size_t *size) {
  Reader *r = ud;
  (void)P;
  if (r->n > 0) {
    *size = (size_t)r->n;
    r->n = 0;
  }
  else {
    if (feof(r->f)) return NULL;
    *size = fread(r->buff, 1, sizeof(r->buff), r->f);
  }
  return r->buff;
}


/*
** What luaL_loadfilex skips at a file's start: a UTF-8 BOM (a broken one
** loses the bytes read, as there), and a first line starting with '#',
** but for its newline, so that line numbers stay right (not in a binary
** chunk, where it would be a byte of the chunk). 1 if the chunk is
** binary (ESC after those), as luaL_loadfilex decides.
*/
static int startfile (Reader *r) {
  int c = getc(r->f);
  r->n = 0;
  if (c == 0xEF && getc(r->f) == 0xBB && getc(r->f) == 0xBF) c = getc(r->f);
  if (c == '#') {
    do c = getc(r->f); while (c != EOF && c != '\n');
    c = getc(r->f);
    r->buff[r->n++] = '\n';
  }
  if (c == LUA_SIGNATURE[0]) r->n = 0;
  if (c != EOF) r->buff[r->n++] = (char)c;
  return c == LUA_SIGNATURE[0];
}


/*
** Parse the file 'path' (what 'filename' resolved to, stat'ed as 'id') in
** a fresh state, under stock Lua's chunk name for 'filename', and share
** the result in '*v' ('*binary': a precompiled chunk). The parse reads
** the file stat'ed: opening 'filename' again could open another (a
** symlink switched meanwhile, as deploys do). On error, '*msg' is stock Lua's message (malloc'ed).
** Nothing here touches L: the caller must publish its entry before
** anything can throw in L. Status -1: let stock Lua load it, uncached (no
** memory, or the file is not the one stat'ed, or could not be read).
*/
static int parse (const char *filename, const char *path,
                  const struct stat *id, const char *mode,
                  Version **v, int *binary, char **msg) {
  lua_State *P;
  Reader r;
  struct stat st;
  char *chunkname;
  int status;
  *v = NULL;
  *msg = NULL;
  if ((r.f = fopen(path, "r")) == NULL) return -1;
  if (fstat(fileno(r.f), &st) != 0 || !sameid(id, &st) ||
      (chunkname = malloc(strlen(filename) + 2)) == NULL) {
    fclose(r.f);
    return -1;
  }
  chunkname[0] = '@';
  strcpy(chunkname + 1, filename);
  if ((P = luaL_newstate()) == NULL) status = -1;
  else {
    *binary = startfile(&r);
    status = lua_load(P, readfile, &r, chunkname, mode);
    if (ferror(r.f)) status = -1;  /* stock Lua says it could not read */
    else if (status == LUA_OK) {
      const LClosure *cl = clLvalue(s2v(P->top.p - 1));
      *v = shoalP_newversion(P, cl->p);
      if (*v == NULL) status = -1;
    }
    else if ((*msg = strdup(lua_tostring(P, -1))) == NULL) status = -1;
    lua_close(P);
  }
  free(chunkname);
  fclose(r.f);
  return status;
}


static void f_push (lua_State *L, void *v) {
  shoalP_push(L, v, 0);
}


/*
** Push a closure over 'v' (taking over the caller's reference) in
** protected mode, as lua_load builds its closure: a memory error is a
** status with its message pushed, which loadfile returns, not a throw.
*/
static int pushversion (lua_State *L, Version *v) {
  int status = luaD_pcall(L, f_push, v, savestack(L, L->top.p), L->errfunc);
  if (G(L)->shoal != NULL)
    G(L)->shoal->pushing = NULL;  /* a push cut short holds 'v' no more */
  return status;
}


static void f_pushmsg (lua_State *L, void *msg) {
  lua_pushstring(L, msg);
}


/*
** The ready entry of 'name' whose file is the one the name leads to now
** ('st', stat'ed through the name), with the identity it was parsed
** with; NULL: the full way. A hit thus needs no 'realpath', which costs
** a readlink per component of the path (8 a load of Penlight's modules:
** 240 system calls a VM). The whole identity even in mode 'trust': a
** device and inode alone may be another file, as a deleted file's inode
** number is given again. In mode 'trust' the entry must not be racy:
** a file made after a settled entry's parse cannot have its times. (The
** entry may be of another path, a hard link to the same file: same code;
** 'reload' drops it by its inode.) Under 'lock'.
*/
static Entry *findbyname (const char *name, const struct stat *st,
                          int pmode) {
  if (nbuckets > 0) {
    size_t h = hashpath(name);
    for (Entry *e = bynames[h & (nbuckets - 1)]; e != NULL; e = e->nnext)
      if (e->nhash == h && !e->loading && strcmp(e->name, name) == 0 &&
          (pmode == MODE_TRUST ? sameid(&e->id, st) && !e->racy
                               : unchanged(e, st)))  /* 'sameid' first */
        return e;
  }
  return NULL;
}


/*
** The stat by which require's search (loadlib.c's 'readable') last found
** a cached file on this thread. The searcher loads the file it found at
** once ('shoalC_found', then luaL_loadfilex), and that load takes this
** stat for its own: one stat a require of a cached module, not two. A
** file changed in between is loaded as it was when found, as if the
** change had come just after. Any other call of 'readable' or of
** luaL_loadfilex forgets it, so a package.searchpath long before a
** loadfile never stands for the loadfile's check.
*/
#define FOUND_NONE	0
#define FOUND_SEARCHED	1	/* 'readable' had a hit on 'name' */
#define FOUND_LOADING	2	/* and the searcher is loading that file now */

static _Thread_local struct {
  int state;
  struct stat st;
  char name[512];
} found;


/* Push the version of the ready entry 'e' (under 'lock', let go here). */
static int pushhit (lua_State *L, Entry *e, const char *mode) {
  int binary = e->binary;
  Version *v = e->v;
  shoalP_ref(v);
  hits++;
  pthread_mutex_unlock(&lock);
  if (mode != NULL && strchr(mode, binary ? 'b' : 't') == NULL) {
    shoalP_unref(v);
    lua_pushfstring(L, "attempt to load a %s chunk (mode is '%s')",
                    binary ? "binary" : "text", mode);
    return LUA_ERRSYNTAX;  /* as lua_load */
  }
  return pushversion(L, v);
}


int shoalC_loadfilex (lua_State *L, const char *filename, const char *mode,
                      shoal_Loader load) {
  int pmode = processmode(), vmode = vmmode(L), status;
  int known = (found.state == FOUND_LOADING && filename != NULL &&
               strcmp(found.name, filename) == 0);
  char *path, *msg;
  struct stat st;
  Entry *e;
  Version *v;
  found.state = FOUND_NONE;  /* for this load only */
  if (filename == NULL || pmode == MODE_OFF || vmode == SHOAL_CACHE_OFF)
    return load(L, filename, mode);  /* stdin is never cached */
  if (known) st = found.st;  /* the search's hit: a regular file */
  if ((known || stat(filename, &st) == 0) && S_ISREG(st.st_mode)) {
    pthread_mutex_lock(&lock);
    if ((e = findbyname(filename, &st, pmode)) != NULL) {
      namehits++;
      return pushhit(L, e, mode);
    }
    pthread_mutex_unlock(&lock);
  }
  path = realpath(filename, NULL);
  if (path == NULL || stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
    free(path);
    pthread_mutex_lock(&lock);
    supersede(filename, NULL);  /* the name leads to no file now */
    pthread_mutex_unlock(&lock);
    return load(L, filename, mode);  /* stock Lua gives the error */
  }
  pthread_mutex_lock(&lock);
  while ((e = find(path, filename)) != NULL && e->loading)
    pthread_cond_wait(&parsed, &lock);  /* someone is parsing it */
  if (e != NULL && (pmode == MODE_TRUST || unchanged(e, &st))) {
    free(path);
    return pushhit(L, e, mode);
  }
  if (e != NULL) drop(e);  /* the file changed */
  supersede(filename, path);  /* the name led elsewhere before */
  if (vmode == SHOAL_CACHE_EXIST) {
    pthread_mutex_unlock(&lock);
    free(path);
    return load(L, filename, mode);
  }
  e = calloc(1, sizeof(Entry));
  if (e != NULL) {
    e->path = path;
    e->loading = 1;
    e->id = st;
  }
  if (e == NULL || (e->name = strdup(filename)) == NULL || !link_entry(e)) {
    pthread_mutex_unlock(&lock);
    if (e != NULL) free(e->name);
    free(e);
    free(path);
    return load(L, filename, mode);
  }
  misses++;
  pthread_mutex_unlock(&lock);
  e->racy = isracy(&st);
  if (e->racy) e->sum = checksum(path);  /* before the parse reads it */
  status = parse(filename, path, &st, mode, &v, &e->binary, &msg);
  pthread_mutex_lock(&lock);
  if (v != NULL && !e->stale) {
    e->v = v;
    e->loading = 0;
    shoalP_setcached(v, 1);
    shoalP_ref(v);  /* one for the entry, one for L */
  }
  else {  /* not cached: errors are not, nor code that could not be shared,
             nor a dropped parse (this load, older than the drop, runs it;
             those waiting find no entry and start over) */
    if (v != NULL) shoalP_setcached(v, 2);  /* retired at once */
    unlink_entry(e);
    free(e->path);
    free(e->name);
    free(e);
  }
  pthread_cond_broadcast(&parsed);
  pthread_mutex_unlock(&lock);
  if (status == -1)  /* could not parse or share apart: load as stock */
    return load(L, filename, mode);
  if (v != NULL) status = pushversion(L, v);
  else {  /* the message, or a memory error if it does not fit */
    int st = luaD_pcall(L, f_pushmsg, msg, savestack(L, L->top.p),
                        L->errfunc);
    free(msg);
    if (st != LUA_OK) status = st;
  }
  return status;
}


/* Has the name a ready entry? (Under 'lock'.) */
static int named (const char *name) {
  if (nbuckets > 0) {
    size_t h = hashpath(name);
    for (Entry *e = bynames[h & (nbuckets - 1)]; e != NULL; e = e->nnext)
      if (e->nhash == h && !e->loading && strcmp(e->name, name) == 0)
        return 1;
  }
  return 0;
}


/*
** package.searchpath's test (loadlib.c's 'readable'): can 'filename' be
** opened for reading? As stock Lua ('openable' opens and closes it),
** unless the name leads to the very file an entry parsed: this process
** read it then, and a change of its mode, owner or ACL since would have
** changed its ctime, part of the identity. A require of a cached module
** thus costs a stat, not an open and a close. A name with no entry goes
** the stock way at once, with no stat.
*/
int shoalC_readable (const char *filename, int (*openable) (const char *)) {
  int pmode = processmode(), hit = 0;
  struct stat st;
  found.state = FOUND_NONE;
  if (pmode != MODE_OFF) {
    pthread_mutex_lock(&lock);
    hit = named(filename);
    pthread_mutex_unlock(&lock);
  }
  if (!hit) return openable(filename);
  if (stat(filename, &st) != 0)
    return 0;  /* an open would fail too: the same lookup of the path */
  pthread_mutex_lock(&lock);
  hit = S_ISREG(st.st_mode) && findbyname(filename, &st, pmode) != NULL;
  searchhits += hit;
  pthread_mutex_unlock(&lock);
  if (hit && strlen(filename) < sizeof(found.name)) {
    strcpy(found.name, filename);
    found.st = st;
    found.state = FOUND_SEARCHED;
  }
  return hit || openable(filename);
}


/*
** require's Lua searcher is about to load 'filename', which its search
** just found: if by a hit of 'readable', that load may take its stat.
*/
void shoalC_found (const char *filename) {
  found.state = (found.state == FOUND_SEARCHED &&
                 strcmp(found.name, filename) == 0) ? FOUND_LOADING
                                                    : FOUND_NONE;
}


/*
** {======================================================
** Library 'shoal.cache'
** =======================================================
*/

/*
** Drop every entry of 'path' or of the file 'id' (its hard links: a hit
** by name may have found an entry of another of them), every one if
** 'path' is NULL; how many. An entry being parsed goes when its parse
** ends (see 'stale').
*/
static lua_Integer dropall (const char *path, const struct stat *id) {
  lua_Integer n = 0;
  pthread_mutex_lock(&lock);
  for (size_t i = 0; i < nbuckets; i++) {
    for (Entry *e = buckets[i], *next; e != NULL; e = next) {
      next = e->next;
      if (!e->stale && (path == NULL || strcmp(e->path, path) == 0 ||
                        (id != NULL && e->id.st_dev == id->st_dev &&
                         e->id.st_ino == id->st_ino))) {
        if (e->loading) e->stale = 1;
        else drop(e);
        n++;
      }
    }
  }
  pthread_mutex_unlock(&lock);
  return n;
}


static int cache_mode (lua_State *L) {
  static const char *const modes[] = {"on", "exist", "off", NULL};
  ShoalVM *vm = shoalP_vm(L);
  int old = vm->cachemode;
  if (!lua_isnoneornil(L, 1))
    vm->cachemode = luaL_checkoption(L, 1, NULL, modes);
  lua_pushstring(L, modes[old]);
  return 1;
}


static int cache_clear (lua_State *L) {
  lua_pushinteger(L, dropall(NULL, NULL));
  return 1;
}


static int cache_reload (lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  char *path = realpath(name, NULL);
  const char *key = (path != NULL) ? path : name;
  struct stat st;
  lua_Integer n = dropall(key, (stat(key, &st) == 0) ? &st : NULL);
  free(path);
  lua_pushinteger(L, n);
  return 1;
}


static void setfield (lua_State *L, const char *k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}


static int cache_stats (lua_State *L) {
  size_t ready = 0, bytes = 0, nhits, nnamehits, nsearchhits, nmisses;
  size_t retired, rbytes;
  size_t priv, nstr, strbytes;
  static const char *const pmodes[] = {"on", "off", "trust"};
  pthread_mutex_lock(&lock);
  for (size_t i = 0; i < nbuckets; i++) {
    for (Entry *e = buckets[i]; e != NULL; e = e->next) {
      if (!e->loading) {
        ready++;
        bytes += shoalP_size(e->v);
      }
    }
  }
  nhits = hits;
  nnamehits = namehits;
  nsearchhits = searchhits;
  nmisses = misses;
  pthread_mutex_unlock(&lock);
  shoalP_stats(&retired, &rbytes, &priv);
  shoalS_stats(&nstr, &strbytes);
  lua_createtable(L, 0, 12);
  setfield(L, "entries", (lua_Integer)ready);
  setfield(L, "bytes", (lua_Integer)bytes);
  setfield(L, "hits", (lua_Integer)nhits);
  setfield(L, "name_hits", (lua_Integer)nnamehits);
  setfield(L, "search_hits", (lua_Integer)nsearchhits);
  setfield(L, "misses", (lua_Integer)nmisses);
  setfield(L, "retired", (lua_Integer)retired);
  setfield(L, "retired_bytes", (lua_Integer)rbytes);
  setfield(L, "private_copies", (lua_Integer)priv);
  setfield(L, "strings", (lua_Integer)nstr);
  setfield(L, "string_bytes", (lua_Integer)strbytes);
  lua_pushstring(L, pmodes[processmode()]);
  lua_setfield(L, -2, "process_mode");
  return 1;
}


int shoalC_openlib (lua_State *L) {
  static const luaL_Reg funcs[] = {
    {"mode", cache_mode},
    {"clear", cache_clear},
    {"reload", cache_reload},
    {"stats", cache_stats},
    {NULL, NULL}
  };
  luaL_newlib(L, funcs);
  return 1;
}

/* }====================================================== */
