# Benchmarks: each runs on stock and Shoal alternately (bench/list);
# results in build/bench/NAME.json and a markdown table, build/bench/results.md.
RUNS ?= 5
B ?=
PIN ?=

$(O)/tools/benchrun: bench/benchrun.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -O2 -Wall -Wextra -o $@ $<

# benchmark hosts, built against each build's library
$(O)/bench/stock/%: bench/%.c bench/host.h $(O)/stock/lib/liblua.a $(O)/stock/include/.stamp
	@mkdir -p $(@D)
	$(CC) $(UNIT_CFLAGS) -I$(O)/stock/include -o $@ $< $(O)/stock/lib/liblua.a $(LIBS)
$(O)/bench/shoal/%: bench/%.c bench/host.h $(O)/shoal/lib/libshoal.a $(O)/shoal/include/.stamp
	@mkdir -p $(@D)
	$(CC) $(UNIT_CFLAGS) -DSHOAL -I$(O)/shoal/include -o $@ $< $(O)/shoal/lib/libshoal.a $(LIBS)

# jemalloc and mimalloc, from Debian's packages, to preload into stock Lua
JEMALLOC_DEB := $(CACHE)/libjemalloc2_5.3.0-1_amd64.deb
MIMALLOC_DEB := $(CACHE)/libmimalloc2.0_2.0.9+ds-2_amd64.deb
$(JEMALLOC_DEB):
	scripts/fetch.sh jemalloc >/dev/null
$(MIMALLOC_DEB):
	scripts/fetch.sh mimalloc >/dev/null
# unpack_deb NAME DEB
define unpack_deb
$(O)/ext/$1/.stamp: | $2
	scripts/fetch.sh $1 >/dev/null
	rm -rf $$(@D) && mkdir -p $$(@D)
	dpkg-deb -x $2 $$(@D)
	touch $$@
endef
$(eval $(call unpack_deb,jemalloc,$(JEMALLOC_DEB)))
$(eval $(call unpack_deb,mimalloc,$(MIMALLOC_DEB)))

# Penlight, from Debian's source package: the code base the 'vms' benchmark loads
$(O)/ext/penlight/.stamp: | $(PENLIGHT_TGZ)
	scripts/fetch.sh penlight >/dev/null
	rm -rf $(@D) && mkdir -p $(@D)
	tar -xzf $(PENLIGHT_TGZ) -C $(@D) --strip-components=1
	touch $@

# C modules for benchmark programs, built against the stock headers and
# loaded the same way by both interpreters
$(O)/bench/modules/%.so: bench/%.c $(O)/stock/include/.stamp
	@mkdir -p $(@D)
	$(CC) $(MOD_CFLAGS) -I$(O)/stock/include -o $@ $<

BENCH_HOSTS := $(O)/bench/stock/vms $(O)/bench/shoal/vms $(O)/bench/modules/clock.so \
               $(O)/bench/stock/closevm $(O)/bench/shoal/closevm $(O)/bench/stock/simplest \
               $(O)/bench/shoal/shrunk $(O)/bench/stock/idle $(O)/bench/shoal/idle \
               $(O)/bench/stock/threads $(O)/bench/shoal/threads \
               $(O)/bench/stock/cycle $(O)/bench/shoal/cycle \
               $(JEMALLOC_DEB) $(MIMALLOC_DEB) $(O)/ext/jemalloc/.stamp $(O)/ext/mimalloc/.stamp

.PHONY: bench
# refused before anything is built: a sanitizer build is not worth timing
ifneq ($(SAN),)
ifneq ($(filter bench,$(MAKECMDGOALS)),)
$(error make bench measures the plain build; drop SAN=$(SAN))
endif
endif
bench: all $(O)/tools/benchrun $(BENCH_HOSTS) $(O)/ext/penlight/.stamp
	O=$(O) RUNS=$(RUNS) B=$(B) PIN=$(PIN) bench/run.sh
