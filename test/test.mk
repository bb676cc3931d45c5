# Tests: C unit tests, the fetch script, the compatibility suite on both
# builds, a C module built against stock headers, and LPeg's own test suite.

UNIT_CFLAGS := -std=c11 -D_GNU_SOURCE $(OPT) -Wall -Wextra -pthread -Itest/unit
MOD_CFLAGS := -std=c11 $(OPT) -Wall -Wextra -fPIC -shared

# unit tests built twice (stock and shoal) check that the C API is the same
UNIT_BOTH := capi threads
UNIT_SHOAL := release codecache frozen alloc
UNIT_BIN := $(foreach t,$(UNIT_BOTH),$(O)/test/stock/$t $(O)/test/shoal/$t) \
            $(foreach t,$(UNIT_SHOAL),$(O)/test/shoal/$t)

$(O)/test/stock/%: test/unit/%.c test/unit/t.h $(O)/stock/lib/liblua.a $(O)/stock/include/.stamp
	@mkdir -p $(@D)
	$(CC) $(UNIT_CFLAGS) -I$(O)/stock/include $(LDFLAGS) -o $@ $< $(O)/stock/lib/liblua.a $(LIBS)
$(O)/test/shoal/%: test/unit/%.c test/unit/t.h $(O)/shoal/lib/libshoal.a $(O)/shoal/include/.stamp
	@mkdir -p $(@D)
	$(CC) $(UNIT_CFLAGS) -I$(O)/shoal/include $(LDFLAGS) -o $@ $< $(O)/shoal/lib/libshoal.a $(LIBS)

# codecache counts the library's calls of stat, alloc its madvise's
$(O)/test/shoal/codecache: private LDFLAGS += -Wl,--wrap=stat
$(O)/test/shoal/alloc: private LDFLAGS += -Wl,--wrap=madvise

# the C module sees only the stock headers, and is loaded by both interpreters
$(O)/test/cmod/cmod.so: test/cmod/cmod.c $(O)/stock/include/.stamp
	@mkdir -p $(@D)
	$(CC) $(MOD_CFLAGS) -I$(O)/stock/include -o $@ $<

# LPeg, from Debian's source package, compiled against Shoal's headers
$(O)/ext/lpeg/.stamp: $(O)/shoal/include/.stamp | $(LPEG_TGZ)
	scripts/fetch.sh lpeg >/dev/null
	rm -rf $(@D) && mkdir -p $(@D)/src
	tar -xzf $(LPEG_TGZ) -C $(@D)/src --strip-components=1
	$(CC) -std=gnu99 $(OPT) -fPIC -shared -I$(O)/shoal/include \
	  -o $(@D)/lpeg.so $(@D)/src/lp*.c
	touch $@

.PHONY: test test-deps
test-deps: stock shoal $(UNIT_BIN) $(O)/test/cmod/cmod.so $(O)/ext/lpeg/.stamp \
           $(O)/tools/benchrun
test: test-deps
	O=$(O) SAN=$(SAN) VALGRIND=$(VALGRIND) LUA_TGZ=$(LUA_TGZ) test/run.sh
