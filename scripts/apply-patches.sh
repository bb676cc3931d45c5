#!/usr/bin/env bash
# apply-patches.sh TREE -- apply lua/patches/series, in order, to the
# unpacked Lua tree TREE. Any patch that does not apply exactly (no fuzz:
# a patch that needs it was made against another tree) stops the build.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
tree=$1
command -v patch >/dev/null || { echo "error: the 'patch' program is required (apt-get install patch)" >&2; exit 1; }
while read -r p || [ -n "$p" ]; do  # a last line with no newline counts too
  case "$p" in ''|'#'*) continue ;; esac
  if ! patch -d "$tree" -p1 -s -N -F0 --no-backup-if-mismatch -r - < "$root/lua/patches/$p"; then
    echo "error: lua/patches/$p does not apply to Lua 5.4.7; fix it in lua/work (make lua-work)" >&2
    exit 1
  fi
done < "$root/lua/patches/series"
