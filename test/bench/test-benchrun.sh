#!/usr/bin/env bash
# test-benchrun.sh BENCHRUN -- the benchmark harness: medians, ratios of
# medians and ratios paired run by run, from METRIC lines whose values are
# known run by run; bad arguments refused with a message.
set -u
group=benchrun
. "$(dirname "$0")/../check.sh"
br=$1

# a program printing METRIC x VALUE, the next of its VALUES at each run
cat > "$tmp/seq.sh" <<'SH'
f=$1; shift
n=$(( $(cat "$f" 2>/dev/null || echo 0) + 1 )); echo "$n" > "$f"
eval "v=\${$n}"
echo "METRIC x $v u"
SH

# medians 10 and 5 (ratio 0.5); run by run 2, 0.5 and 10 (median 2)
"$br" -m -n t -r 3 -o "$tmp/t.json" -v "base=sh $tmp/seq.sh $tmp/a 1 10 100" \
  -v "other=sh $tmp/seq.sh $tmp/b 2 5 1000" > "$tmp/out" 2>&1
check "runs with METRIC lines" test $? -eq 0
check "ratio of medians" has "$tmp/t.json" '"other/base": {"x": 0.5000}'
check "paired median" has "$tmp/t.json" '"other/base": {"x": 2.0000}'
check "every run kept" has "$tmp/t.json" '"runs": \[2, 5, 1000\]'
# -m reports no time, so no paired time row
check "no time row under -m" bash -c "! grep -q 'paired by run' '$tmp/t.md'"

# without -m: time's ratios paired by run get a row of their own
"$br" -n u -r 3 -o "$tmp/u.json" -v "base=true" -v "other=true" > "$tmp/out" 2>&1
check "runs timed" test $? -eq 0
check "paired time row" grep -Eq '^\| \| time, paired by run \| \| \| [0-9.]+ \|$' "$tmp/u.md"
check "paired time in the JSON" grep -Eq '"other/base": \{"time": [0-9.]+, "peak_rss": [0-9.]+\}' "$tmp/u.json"
# one run: nothing to pair but the ratio itself, no row
"$br" -n v -r 1 -o "$tmp/v.json" -v "base=true" -v "other=true" > "$tmp/out" 2>&1
check "one run: no paired row" bash -c "! grep -q 'paired by run' '$tmp/v.md'"

# a metric missing from a run has no paired ratio (null), not a wrong one
rm -f "$tmp/a" "$tmp/b"
cat > "$tmp/gap.sh" <<'SH'
f=$1; n=$(( $(cat "$f" 2>/dev/null || echo 0) + 1 )); echo "$n" > "$f"
[ "$n" -eq 2 ] || echo "METRIC x $n u"
SH
"$br" -m -n w -r 3 -o "$tmp/w.json" -v "base=sh $tmp/seq.sh $tmp/a 1 2 3" \
  -v "other=sh $tmp/gap.sh $tmp/b" > "$tmp/out" 2>&1
check "a gap: no paired ratio" has "$tmp/w.json" '"other/base": {"x": null}'

# a variant whose metric is 0 in every run: paired ratio 0, not none
rm -f "$tmp/a" "$tmp/b"
"$br" -m -n z -r 3 -o "$tmp/z.json" -v "base=sh $tmp/seq.sh $tmp/a 1 2 3" \
  -v "other=sh $tmp/seq.sh $tmp/b 0 0 0" > "$tmp/out" 2>&1
check "zero: paired ratio 0" bash -c "grep -A1 '\"paired\"' '$tmp/z.json' | grep -q '\"x\": 0.0000'"

# -c: each run pinned to that CPU, reported in the JSON; 'last' is the
# highest CPU benchrun may use (under taskset, the one it was given)
cpus=$(awk '/^Cpus_allowed_list/ {print $2}' /proc/self/status)
last=$(tr ',' '\n' <<<"$cpus" | sed 's/.*-//' | sort -n | tail -1)
cat > "$tmp/cpu.sh" <<'SH'
echo "METRIC cpus $(nproc) n"
echo "METRIC cpu $(awk '/^Cpus_allowed_list/ {print $2}' /proc/self/status) n"
SH
"$br" -m -c last -n p -r 2 -o "$tmp/p.json" -v "base=bash $tmp/cpu.sh" > "$tmp/out" 2>&1
check "-c last runs" test $? -eq 0
check "-c last: one CPU a run" has "$tmp/p.json" '"cpus": {"unit": "n", "median": 1, "runs": \[1, 1\]}'
check "-c last: the last CPU" has "$tmp/p.json" "\"cpu\": {\"unit\": \"n\", \"median\": $last,"
check "-c last: in the JSON" has "$tmp/p.json" "\"cpu\": $last,"
"$br" -m -c 0 -n p -r 1 -o "$tmp/p0.json" -v "base=bash $tmp/cpu.sh" > "$tmp/out" 2>&1
check "-c 0 runs" test $? -eq 0
check "-c 0: CPU 0" has "$tmp/p0.json" '"cpu": {"unit": "n", "median": 0,'
"$br" -m -n p -r 1 -o "$tmp/pn.json" -v "base=bash $tmp/cpu.sh" > "$tmp/out" 2>&1
check "no -c: not pinned" has "$tmp/pn.json" '"cpu": null,'
if [ "$last" -gt 0 ]; then  # more than one CPU: no -c runs on all of them
  check "no -c: every CPU" bash -c "! grep -q '\"cpus\": {\"unit\": \"n\", \"median\": 1,' '$tmp/pn.json'"
fi
for bad in x 1x -1 100000; do
  "$br" -c "$bad" -n x -r 1 -o "$tmp/x.json" -v "base=true" > "$tmp/out" 2>&1
  check "-c $bad refused" test $? -ne 0
  check "-c $bad message" has "$tmp/out" "is not a CPU number or 'last'"
done
taskset -c 0 "$br" -c "$((last + 1))" -n x -r 1 -o "$tmp/x.json" -v "base=true" > "$tmp/out" 2>&1
check "-c a CPU not allowed: refused" test $? -ne 0
check "-c a CPU not allowed: message" has "$tmp/out" "is not one this process may run on"

# bad arguments: a message and a failure, no output file
"$br" -n x -r 0 -o "$tmp/x.json" -v "base=true" > "$tmp/out" 2>&1
check "runs 0 refused" test $? -ne 0
check "runs 0 message" has "$tmp/out" "runs (-r) must be 1 to 100"
"$br" -n x -r 2 -o "$tmp/x.json" -v "nolabel" > "$tmp/out" 2>&1
check "variant without = refused" test $? -ne 0
check "variant message" has "$tmp/out" "is not LABEL=COMMAND"
"$br" -n x -r 2 -o "$tmp/x.txt" -v "base=true" > "$tmp/out" 2>&1
check "output not .json refused" test $? -ne 0
check "no output written" test ! -e "$tmp/x.json"
finish
