#!/usr/bin/env bash
# instr.sh LUA ARGS... -- run a Lua program under callgrind and print, for
# benchrun, how many instructions it ran: in all, and inside the lua_Alloc
# (lauxlib's l_alloc or shoal_alloc, with all they call: malloc, free,
# memcpy, the kernel's entry). A count, not a time: whatever else the
# machine is doing, the allocator's count repeats to 0.1% and the rest to 1%
# (the process's random hash seed moves Lua's own work), where times here
# drift by 10-50%.
# Instructions are not time (a cache miss costs a hundred), so these
# figures stand beside the alloc-* times, not in their place.
set -euo pipefail
command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null || {
  echo "instr.sh: needs valgrind (callgrind, callgrind_annotate)" >&2; exit 1; }
[ $# -ge 1 ] || { echo "usage: instr.sh LUA ARGS..." >&2; exit 1; }
out=$(mktemp "${TMPDIR:-/tmp}/instr.XXXXXX")
trap 'rm -f "$out" "$out.log"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$out" "$@" >/dev/null 2>"$out.log" || {
  echo "instr.sh: '$*' failed under valgrind:" >&2; cat "$out.log" >&2; exit 1; }
# "N (P%)  FILE:FUNCTION [OBJECT]", inclusive costs, the largest first
report=$(callgrind_annotate --inclusive=yes --threshold=100 "$out")
total=$(awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}' <<<"$report")
alloc=$(awk '/:(l_alloc|shoal_alloc) \[/ {gsub(",", "", $1); print $1; exit}' <<<"$report")
[ -n "$total" ] && [ -n "$alloc" ] || {
  echo "instr.sh: no l_alloc or shoal_alloc in the profile of '$*'" >&2; exit 1; }
awk -v t="$total" -v a="$alloc" 'BEGIN {
  printf "METRIC instructions %.4f G\n", t / 1e9
  printf "METRIC in_lua_Alloc %.4f G\n", a / 1e9
  printf "METRIC elsewhere %.4f G\n", (t - a) / 1e9
}'
