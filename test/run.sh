#!/usr/bin/env bash
# run.sh -- every test group; prints each group's result, then the total
# "N passed, M failed", and exits non-zero on any failure.
# Environment: O (build folder), SAN, VALGRIND=1, LUA_TGZ (pinned tarball).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
O=${O:-build}
O=$(cd "$O" 2>/dev/null && pwd) || { echo "error: no build folder '$O' (run make test)" >&2; exit 1; }
log=$O/test/logs
[ "${SAN:-}" = hardmem ] && export SHOAL_TEST_HARDMEM=1  # tests that can, shrink
rm -rf "$log" && mkdir -p "$log"
total_pass=0 total_fail=0

# under valgrind, Lua interpreters and C tests run through this
vg=()
if [ -n "${VALGRIND:-}" ]; then
  # valgrind's reports go to their own files, so transcripts stay comparable
  vg=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
      "--log-file=$log/valgrind.%p.log")
fi

# group NAME LOGFILE CMD...: run CMD, count from its "N passed, M failed"
# line; a run that crashes or prints no summary (even exiting 0: it may have
# stopped early) counts as one failure.
group() {
  local name=$1 out=$2; shift 2
  "$@" > "$out" 2>&1
  local rc=$? line p f
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -1)
  if [ -n "$line" ]; then
    p=${line%% passed*}; f=${line#*, }; f=${f%% failed}
  else
    p=0 f=1
  fi
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
  if [ "$f" -eq 0 ]; then
    printf '  %-34s %4d passed\n' "$name" "$p"
  else
    printf '  %-34s %4d passed, %d FAILED (exit %d), log: %s\n' "$name" "$p" "$f" "$rc" "$out"
    grep -v '^ok ' "$out" | grep -E 'not ok|rror|Sanitizer|^==[0-9]+==' | head -20 | sed 's/^/      /'
  fi
}

# same NAME A B: one check that two transcripts are identical
same() {
  if cmp -s "$2" "$3"; then
    total_pass=$((total_pass + 1)); printf '  %-34s    1 passed\n' "$1"
  else
    total_fail=$((total_fail + 1)); printf '  %-34s FAILED: stock and shoal differ\n' "$1"
    diff "$2" "$3" | head -20 | sed 's/^/      /'
  fi
}

echo "unit tests (C)"
for t in "$O"/test/stock/* "$O"/test/shoal/*; do
  [ -x "$t" ] || continue
  b=$(basename "$(dirname "$t")")/$(basename "$t")
  group "$b" "$log/unit-${b//\//-}.log" "${vg[@]}" "$t"
done
# the allocator's tests again with every large block a mapping of its own
# (by default those up to 256 KB are pages of the heap's segments)
group "shoal/alloc (mapped)" "$log/unit-shoal-alloc-mapped.log" \
  "${vg[@]}" "$O/test/shoal/alloc" mapped
# the code cache's tests that need the process mode 'trust'
group "shoal/codecache (trust)" "$log/unit-shoal-codecache-trust.log" \
  env SHOAL_CODECACHE=trust "${vg[@]}" "$O/test/shoal/codecache" trust

echo "fetching Lua, applying the patch series"
group "fetch" "$log/fetch.log" test/fetch/test-fetch.sh "$LUA_TGZ"
group "patch series tools" "$log/patches.log" test/patches/test-patches.sh "$LUA_TGZ"
echo "tools"
group "benchmark harness" "$log/benchrun.log" test/bench/test-benchrun.sh "$O/tools/benchrun"

echo "interpreters"
banner() {  # the Shoal interpreter names itself and the Lua it runs on
  local out
  out=$("$O/shoal/bin/lua" -v 2>&1)
  echo "$out"
  if [[ $out == "Shoal "*" on Lua 5.4.7  Copyright (C) 1994-2024 Lua.org, PUC-Rio" ]]; then
    echo "1 passed, 0 failed"
  else
    echo "0 passed, 1 failed"
  fi
}
group "shoal lua -v banner" "$log/banner.log" banner
allocchoice() {  # bin/lua is on Shoal's allocator unless SHOAL_ALLOC=system
  local ok=0 bad=0 out
  local q='io.write(require("shoal").memory() and "shoal" or "system")'
  check() { if [ "$2" = "$3" ]; then ok=$((ok + 1)); else bad=$((bad + 1)); echo "not ok: $1: '$2', expected '$3'"; fi; }
  check default "$(env -u SHOAL_ALLOC "$O/shoal/bin/lua" -e "$q" 2>&1)" shoal
  check shoal "$(SHOAL_ALLOC=shoal "$O/shoal/bin/lua" -e "$q" 2>&1)" shoal
  check system "$(SHOAL_ALLOC=system "$O/shoal/bin/lua" -e "$q" 2>&1)" system
  out=$(SHOAL_ALLOC=jemalloc "$O/shoal/bin/lua" -e "$q" 2>&1)
  check "bad value" "$out" "shoal: SHOAL_ALLOC must be shoal or system (not 'jemalloc'); using shoal
shoal"
  echo "$ok passed, $bad failed"
}
group "SHOAL_ALLOC" "$log/allocchoice.log" allocchoice

echo "compatibility suite (test/compat), Shoal with the code cache on, off and trusting, and on the C library's allocator"
for f in test/compat/*.lua; do
  n=$(basename "$f" .lua)
  [ "$n" = harness ] && continue
  group "stock/$n" "$log/compat-stock-$n.log" env -C test/compat LUA_PATH='./?.lua' \
    "${vg[@]}" "$O/stock/bin/lua" "$n.lua"
  for m in on off trust system; do
    # 'trust' does not look for edits by design, which loadfile.lua checks
    [ "$m" = trust ] && [ "$n" = loadfile ] && continue
    if [ "$m" = system ]; then env=(SHOAL_ALLOC=system); else env=(SHOAL_CODECACHE=$m); fi
    group "shoal[$m]/$n" "$log/compat-shoal-$m-$n.log" env -C test/compat LUA_PATH='./?.lua' \
      "${env[@]}" "${vg[@]}" "$O/shoal/bin/lua" "$n.lua"
    same "same results: $n [$m]" "$log/compat-stock-$n.log" "$log/compat-shoal-$m-$n.log"
  done
done

echo "shared code (test/code), on shoal"
# unprivileged: root reads a file whatever its mode, so root runs this as
# 'nobody', from copies in a fresh folder (the checkout's own folders may be
# closed to other users)
unreadable() {  # unreadable BUILD
  if [ "$(id -u)" != 0 ]; then
    env LUA_PATH='test/compat/?.lua' "$O/$1/bin/lua" test/code/unreadable.lua
    return
  fi
  local d rc
  d=$(mktemp -d) && chmod 755 "$d" &&
    cp "$O/$1/bin/lua" test/code/unreadable.lua test/compat/harness.lua "$d/" || return 1
  (cd "$d" && setpriv --reuid=nobody --regid=nogroup --clear-groups \
     env LUA_PATH='./?.lua' ./lua unreadable.lua)
  rc=$?
  rm -rf "$d"
  return $rc
}
for b in stock shoal; do
  group "$b/unreadable" "$log/code-$b-unreadable.log" unreadable "$b"
done
for f in test/code/*.lua; do
  n=$(basename "$f" .lua)
  [ "$n" = unreadable ] && continue
  group "shoal/$n" "$log/code-$n.log" env LUA_PATH='test/compat/?.lua' \
    "${vg[@]}" "$O/shoal/bin/lua" "$f"
done

echo "frozen data (test/frozen), on shoal, in both collector modes"
for m in incremental generational; do
  group "shoal/frozen [$m]" "$log/frozen-$m.log" env LUA_PATH='test/compat/?.lua' \
    "${vg[@]}" "$O/shoal/bin/lua" test/frozen/frozen.lua $m
done

echo "C module built against stock headers"
for b in stock shoal; do
  LUA_CPATH="$O/test/cmod/?.so" group "$b/cmod" "$log/cmod-$b.log" \
    "${vg[@]}" "$O/$b/bin/lua" test/cmod/cmod_test.lua
done

echo "LPeg 1.1.0 test suite (Debian lua-lpeg), on shoal"
lpeg_suite() (  # test.lua stops at its first failed assert, else prints OK
  cd "$O/ext/lpeg/src" && LUA_CPATH="$O/ext/lpeg/?.so" LUA_PATH="./?.lua" "$@" test.lua &&
    echo "1 passed, 0 failed"
)
group "lpeg test.lua" "$log/lpeg.log" lpeg_suite "${vg[@]}" "$O/shoal/bin/lua"

if [ -n "${VALGRIND:-}" ]; then
  for f in "$log"/valgrind.*.log; do
    [ -s "$f" ] && { echo "valgrind reported (exit 99 above): $f"; head -20 "$f" | sed 's/^/      /'; }
  done
fi

echo
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
