#!/usr/bin/env bash
# run.sh -- run the benchmarks of bench/list (only B's if B is set) on stock
# and Shoal, then gather every result into build/bench/results.md.
# Every run is pinned to one CPU (PIN: a number, default the last this
# script may use; PIN=none: no pinning), unless its line says cpus=all.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
O=${O:-build} RUNS=${RUNS:-5} B=${B:-} PIN=${PIN:-last}
mkdir -p build/bench
found= ran=" "
# command BUILD COMMAND: COMMAND with the placeholders of bench/list filled
command() {
  local c=$2
  c=${c//\{lua\}/$O/$1/bin/lua}
  c=${c//\{bin\}/$O/bench/$1}
  c=${c//\{penlight\}/$O/ext/penlight/lua}
  c=${c//\{cpath\}/$O/bench/modules/?.so}
  c=${c//\{jemalloc\}/$O/ext/jemalloc/usr/lib/x86_64-linux-gnu/libjemalloc.so.2}
  c=${c//\{mimalloc\}/$O/ext/mimalloc/usr/lib/x86_64-linux-gnu/libmimalloc.so.2}
  echo "$c"
}
while read -r name cmd; do
  case "$name" in ''|'#'*) continue ;; esac
  # B names a benchmark or a group: B=alloc runs alloc-binarytrees, ...
  [ -n "$B" ] && [ "$B" != "$name" ] && [[ $name != "$B"-* ]] && continue
  found=1
  runs=$RUNS metrics= pin=(-c "$PIN")
  [ "$PIN" = none ] && pin=()
  while :; do  # the line's options, in any order
    if [[ $cmd == counted\ * ]]; then  # counts, not times: one run, METRICs only
      runs=1 metrics=-m cmd=${cmd#counted }
    elif [[ $cmd == runs=* ]]; then  # the line's floor on the runs
      n=${cmd%% *}; n=${n#runs=}; cmd=${cmd#* }
      [[ $n =~ ^[0-9]+$ ]] || { echo "error: $name: bad runs=$n" >&2; exit 1; }
      if (( n > runs )); then runs=$n; fi
    elif [[ $cmd == cpus=all\ * ]]; then  # threads that run side by side
      pin=() cmd=${cmd#cpus=all }
    else
      break
    fi
  done
  variants=()
  if [[ $cmd == *" ; "* ]]; then  # LABEL: COMMAND ; LABEL: COMMAND ...
    while [[ -n $cmd ]]; do
      part=${cmd%% ; *}
      [[ $cmd == *" ; "* ]] && cmd=${cmd#* ; } || cmd=
      label=${part%%:*}
      build=stock; [[ $label == shoal* ]] && build=shoal
      variants+=(-v "$label=$(command $build "${part#*: }")")
    done
  else
    variants=(-v "stock=$(command stock "$cmd")" -v "shoal=$(command shoal "$cmd")")
  fi
  echo "== $name ($runs runs each, alternating)" >&2
  "$O/tools/benchrun" $metrics ${pin[@]+"${pin[@]}"} -n "$name" -r "$runs" -o "build/bench/$name.json" "${variants[@]}"
  ran+="$name "
done < bench/list
if [ -z "$found" ]; then
  echo "error: no benchmark named '$B'; known: $(awk '!/^#/ && NF {printf "%s ", $1}' bench/list)" >&2
  exit 1
fi
# tables left by earlier runs are kept, but say when they were measured
{
  for name in $(awk '!/^#/ && NF {print $1}' bench/list); do
    f=build/bench/$name.md
    [ -e "$f" ] || continue
    if [[ $ran != *" $name "* ]]; then
      echo "_$name: not run this time; from an earlier run, $(date -r "$f" '+%Y-%m-%d %H:%M')_"
      echo
    fi
    cat "$f" && echo
  done
} > build/bench/results.md.tmp
mv build/bench/results.md.tmp build/bench/results.md
echo "results: build/bench/*.json, table: build/bench/results.md" >&2
