# Benchmarks: each runs on stock and Shoal alternately (bench/list);
# results in build/bench/NAME.json and a markdown table, build/bench/results.md.
RUNS ?= 5
B ?=

$(O)/tools/benchrun: bench/benchrun.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -O2 -Wall -Wextra -o $@ $<

.PHONY: bench
bench: all $(O)/tools/benchrun
ifneq ($(SAN),)
	$(error make bench measures the plain build; drop SAN=$(SAN))
endif
	O=$(O) RUNS=$(RUNS) B=$(B) bench/run.sh
