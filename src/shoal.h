/*
** shoal.h
** Shoal: a runtime for many Lua 5.4 VMs in one process.
** Everything here extends the Lua 5.4.7 C API; lua.h is unchanged.
*/

#ifndef shoal_h
#define shoal_h

#include "lua.h"

#define SHOAL_VERSION_MAJOR	"0"
#define SHOAL_VERSION_MINOR	"1"
#define SHOAL_VERSION_NUM	1

#define SHOAL_VERSION	"Shoal " SHOAL_VERSION_MAJOR "." SHOAL_VERSION_MINOR
#define SHOAL_RELEASE	SHOAL_VERSION " on " LUA_RELEASE
#define SHOAL_COPYRIGHT	SHOAL_VERSION " on " LUA_COPYRIGHT


/*
** The release string of the library actually linked: a host built against
** one shoal.h can check it runs with the libshoal.a it expects.
*/
LUA_API const char *(shoal_release) (void);


/*
** Shared code (src/code). A shared function's prototype tree (bytecode,
** constants, debug info) exists once per process and any VM, on any thread,
** can run closures over it.
**
** lua_sharefunction: share the Lua function at 'idx' (a C function, or any
** other value, raises an error). The function stays alive, and clonable,
** until its VM closes.
** lua_clonefunction: push a new closure over the shared function 'fp' (as
** lua_topointer gave it), with fresh upvalues and L's globals as its first
** upvalue, as lua_load does. An 'fp' that lua_sharefunction did not share
** raises an error.
*/
LUA_API void (lua_sharefunction) (lua_State *L, int idx);
LUA_API void (lua_clonefunction) (lua_State *L, const void *fp);



/*
** Frozen data (src/frozen). lua_freeze takes the graph reachable from the
** table at 'idx' out of the collector and makes it read-only (nogc("open")),
** raising an error, with nothing frozen, for what cannot be frozen;
** lua_thaw gives back the graph frozen with that table as root
** (nogc("close")); lua_isfrozen tells whether the value at 'idx' is frozen;
** lua_frozenstats gives the number and the bytes of frozen objects.
*/
LUA_API void (lua_freeze) (lua_State *L, int idx);
LUA_API void (lua_thaw) (lua_State *L, int idx);
LUA_API int (lua_isfrozen) (lua_State *L, int idx);
LUA_API void (lua_frozenstats) (lua_State *L, size_t *count, size_t *bytes);



/*
** The allocator (src/alloc). shoal_alloc is a lua_Alloc whose 'ud' is a
** ShoalHeap: no per-block header, per-heap accounting and limit, memory
** given back to the OS as the heap shrinks. shoal_newstate makes a state
** on a heap of its own, released at once by lua_close, with a limit (0:
** none) beyond which allocations fail as out-of-memory in Lua (no panic
** function, no warning function: set them as needed). luaL_newstate does
** the same by default; with SHOAL_ALLOC=system in the environment (read
** once) or after shoal_defaultalloc(0) it uses the C library's allocator,
** and shoal_defaultalloc(1) brings Shoal's back. shoal_freeremote frees a
** block of a heap from a thread that is not running its VM, and
** shoal_shrinkremote shrinks one (in place, never failing but for want of
** memory to note it; a growth is refused with NULL). The owner must not
** touch a block while another thread frees or shrinks it, and takes a
** shrunk block back (at its new size) only through some synchronisation
** with that thread (a join, a lock, a release/acquire pair). A heap gives
** memory it no longer uses back to the OS after a delay, as it allocates
** and frees; shoal_heapexpire does that from any thread for a heap gone
** idle, not while it is being released (NULL: for every heap not locked
** by its owner at that moment, whatever is released meanwhile), and
** shoal_heaptrim at once, the free pages of partly used slabs and the
** pages a large block kept from a shrink to half or more too, from
** the owner's thread (or any thread while none runs the VM: a host's,
** as a VM goes idle). A heap released leaves its pages, still resident,
** to the next heaps' use for 500 ms (at most 16 MB of segments and 16 MB
** of large blocks' mappings; counted in the process's 'mapped');
** shoal_heapexpire(NULL) gives back those that waited. The allocator
** works in pages of 4 KB: where the system's pages are larger,
** shoal_heapnew and shoal_newstate fail (NULL, errno ENOTSUP) and
** luaL_newstate uses the C library's allocator.
*/
typedef struct ShoalHeap ShoalHeap;

typedef struct shoal_MemStats {
  size_t inuse;  /* bytes the VM holds */
  size_t mapped;  /* bytes taken from the system */
  size_t peak;  /* highest 'inuse' (exact while no other thread frees the
                   heap's blocks, and never above the real one) */
  size_t limit;  /* 0: none */
} shoal_MemStats;

LUA_API void *(shoal_alloc) (void *ud, void *ptr, size_t osize, size_t nsize);
LUA_API ShoalHeap *(shoal_heapnew) (void);
LUA_API void (shoal_heapfree) (ShoalHeap *h);
LUA_API void (shoal_heaplimit) (ShoalHeap *h, size_t limit);
LUA_API void (shoal_heaptrim) (ShoalHeap *h);  /* unused pages to the OS now (owner) */
LUA_API void (shoal_heapexpire) (ShoalHeap *h);  /* any thread (NULL: every heap) */
LUA_API void (shoal_heapstats) (ShoalHeap *h, shoal_MemStats *st);  /* NULL: process */
LUA_API void (shoal_freeremote) (ShoalHeap *h, void *ptr, size_t size);
LUA_API void *(shoal_shrinkremote) (ShoalHeap *h, void *ptr, size_t osize,
                                    size_t nsize);

LUA_API lua_State *(shoal_newstate) (size_t limit);
LUA_API void (shoal_defaultalloc) (int on);
LUA_API ShoalHeap *(shoal_heap) (lua_State *L);  /* NULL: not on a Shoal heap */
LUA_API void (shoal_setlimit) (lua_State *L, size_t limit);

#endif
