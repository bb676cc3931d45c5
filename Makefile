# Shoal: Lua 5.4.7 (fetched, verified) built twice, stock and patched.
#   make                 build build/stock and build/shoal
#   make test            run every test (SAN=address|thread for sanitizers,
#                        SAN=hardmem for a collection at every GC check,
#                        VALGRIND=1 to run the Lua suites under valgrind)
#   make bench [B=name]  benchmarks, stock against Shoal
#   make lua-work        patched Lua as a git working tree (lua/work)
#   make lua-patches     write lua/work's commits back to lua/patches

SAN ?=
O := build$(if $(SAN),/$(SAN))
CACHE ?= $(or $(SHOAL_CACHE),cache)
export SHOAL_CACHE := $(abspath $(CACHE))

LUA_V := 5.4.7
LUA_TGZ := $(CACHE)/lua-$(LUA_V).tar.gz
LPEG_TGZ := $(CACHE)/lpeg-1.1.0.tar.gz
PENLIGHT_TGZ := $(CACHE)/lua-penlight-1.14.0.tar.gz

CC := gcc
SAN_FLAGS_address := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
SAN_FLAGS_thread := -fsanitize=thread
# not a sanitizer: a full collection at every point where Lua may collect
SAN_FLAGS_hardmem := -DHARDMEMTESTS
ifneq ($(SAN),)
ifeq ($(SAN_FLAGS_$(SAN)),)
$(error SAN must be address, thread or hardmem, not '$(SAN)')
endif
OPT := -O1 -g $(SAN_FLAGS_$(SAN))
else
OPT := -O2
endif

# Both interpreters are built as Debian builds its own: readline when its
# headers are present, and -Wl,-E so C modules resolve the API from lua.
READLINE := $(if $(wildcard /usr/include/readline/readline.h),1)
LUA_CFLAGS := -std=gnu99 $(OPT) -Wall -Wextra -DLUA_COMPAT_5_3 -DLUA_USE_LINUX \
              $(if $(READLINE),-DLUA_USE_READLINE)
SHOAL_CFLAGS := -std=c11 -D_GNU_SOURCE $(OPT) -Wall -Wextra -pthread
LDFLAGS := $(if $(SAN),$(SAN_FLAGS_$(SAN)))
LIBS := -lm -Wl,-E -ldl -pthread $(if $(READLINE),-lreadline)

LUA_CORE := lapi lcode lctype ldebug ldo ldump lfunc lgc llex lmem lobject \
            lopcodes lparser lstate lstring ltable ltm lundump lvm lzio
LUA_LIBS := lauxlib lbaselib lcorolib ldblib liolib lmathlib loadlib loslib \
            lstrlib ltablib lutf8lib linit
LUA_HEADERS := lua.h luaconf.h lualib.h lauxlib.h lua.hpp
SHOAL_DIRS := src src/code src/frozen src/alloc
SHOAL_SRC := $(foreach d,$(SHOAL_DIRS),$(wildcard $(d)/*.c))
SHOAL_INC := $(foreach d,$(SHOAL_DIRS),-I$(d))
PATCHES := $(addprefix lua/patches/,$(shell sed -e '/^[[:space:]]*\#/d' lua/patches/series 2>/dev/null))

.PHONY: all stock shoal test bench clean distclean lua-work lua-patches
all: stock shoal

$(LUA_TGZ):
	scripts/fetch.sh lua >/dev/null
$(LPEG_TGZ):
	scripts/fetch.sh lpeg >/dev/null
$(PENLIGHT_TGZ):
	scripts/fetch.sh penlight >/dev/null

# A tarball named by the user is checked on every make, even with the build
# up to date: a wrong one stops the build instead of going unnoticed.
ifneq ($(LUA_TARBALL),)
.PHONY: lua-tarball
all test-deps lua-work: lua-tarball
lua-tarball:
	scripts/fetch.sh lua >/dev/null
endif

# Sources: the pristine tree, and the same tree with the patch series applied.
# The tarball's content is pinned, so only its absence matters (order-only):
# fetching it again does not rebuild.
$(O)/src/stock/.stamp: | $(LUA_TGZ)
	scripts/fetch.sh lua >/dev/null
	rm -rf $(@D) && mkdir -p $(@D)
	tar -xzf $(LUA_TGZ) -C $(@D) --strip-components=1
	touch $@
$(O)/src/shoal/.stamp: lua/patches/series $(PATCHES) | $(LUA_TGZ)
	scripts/fetch.sh lua >/dev/null
	rm -rf $(@D) && mkdir -p $(@D)
	tar -xzf $(LUA_TGZ) -C $(@D) --strip-components=1
	scripts/apply-patches.sh $(@D)
	touch $@

# No built-in link rule: through the rule below it would "remake" the
# included .d files (lapi.d from lapi.d.o from lapi.d.c).
%: %.o

# build_lua NAME EXTRA_OBJECTS EXTRA_CFLAGS: objects, library, lua, luac, include/
define build_lua
$(O)/obj/$1/%.o: $(O)/src/$1/.stamp
	@mkdir -p $$(@D)
	$$(CC) $$(LUA_CFLAGS) $3 -MMD -MP -c $(O)/src/$1/src/$$*.c -o $$@
-include $(wildcard $(O)/obj/$1/*.d)
$(O)/$1/lib/$4: $(patsubst %,$(O)/obj/$1/%.o,$(LUA_CORE) $(LUA_LIBS)) $2
	@mkdir -p $$(@D)
	rm -f $$@ && ar rcs $$@ $$^
$(O)/$1/bin/lua: $(O)/obj/$1/lua.o $(O)/$1/lib/$4
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LIBS)
$(O)/$1/bin/luac: $(O)/obj/$1/luac.o $(O)/$1/lib/$4
	@mkdir -p $$(@D)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LIBS)
$(O)/$1/include/.stamp: $(O)/src/$1/.stamp $5
	@mkdir -p $$(@D)
	cp $(patsubst %,$(O)/src/$1/src/%,$(LUA_HEADERS)) $5 $$(@D)
	touch $$@
$1: $(O)/$1/bin/lua $(O)/$1/bin/luac $(O)/$1/include/.stamp
endef

SHOAL_OBJ := $(patsubst src/%.c,$(O)/obj/shoal-own/%.o,$(SHOAL_SRC))
$(eval $(call build_lua,stock,,,liblua.a,))
$(eval $(call build_lua,shoal,$(SHOAL_OBJ),-I$(O)/src/shoal/src $(SHOAL_INC),libshoal.a,src/shoal.h))

# Shoal's own files: C11, with Lua's internal headers at hand.
$(O)/obj/shoal-own/%.o: src/%.c $(O)/src/shoal/.stamp
	@mkdir -p $(@D)
	$(CC) $(SHOAL_CFLAGS) -I$(O)/src/shoal/src $(SHOAL_INC) -MMD -MP -c $< -o $@
-include $(SHOAL_OBJ:.o=.d)

# Patch workflow: lua/work is a git tree, one commit per patch over 'pristine'.
lua-work:
	scripts/lua-work.sh unpack "$$(scripts/fetch.sh lua)"
lua-patches:
	scripts/lua-work.sh export

include test/test.mk
include bench/bench.mk

clean:
	rm -rf build
distclean: clean
	rm -rf $(CACHE) lua/work
