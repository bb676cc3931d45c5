#!/usr/bin/env bash
# apply-patches.sh TREE -- apply lua/patches/series, in order, to the
# unpacked Lua tree TREE. Any patch that does not apply cleanly stops the build.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
tree=$1
while read -r p; do
  case "$p" in ''|'#'*) continue ;; esac
  if ! patch -d "$tree" -p1 -s -N --no-backup-if-mismatch -r - < "$root/lua/patches/$p"; then
    echo "error: lua/patches/$p does not apply to Lua 5.4.7; fix it in lua/work (make lua-work)" >&2
    exit 1
  fi
done < "$root/lua/patches/series"
