#!/usr/bin/env bash
# lua-work.sh unpack TARBALL | export
#   unpack: lua/work becomes a git tree of pristine Lua (tag 'pristine') with
#           one commit per patch of lua/patches/series, applied in order.
#   export: write every commit after 'pristine' back to lua/patches, one patch
#           per commit (its subject names the file), and rewrite the series.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
work=$root/lua/work
pdir=$root/lua/patches
g() { git -C "$work" -c user.name=shoal -c user.email=shoal@localhost "$@"; }
# patches DIR: lua/work's commits after 'pristine' as patch files in DIR,
# exactly as 'export' writes them (so an unpack can compare them)
patches() { g format-patch -q --no-signature --zero-commit --no-stat -o "$1" pristine..HEAD; }

case "${1:-}" in
unpack)
  tarball=${2:?usage: lua-work.sh unpack TARBALL}
  if [ -d "$work/.git" ] && [ -n "$(g status --porcelain)" ]; then
    echo "error: lua/work has uncommitted changes; commit or discard them first" >&2
    exit 1
  fi
  # commits not yet exported to lua/patches are never lost: a tree whose
  # commits differ from the series is moved aside, not deleted
  if [ -d "$work/.git" ]; then
    tmp=$(mktemp -d)
    if ! patches "$tmp" 2>/dev/null ||
       [ "$(cd "$tmp" && ls)" != "$(grep -v -e '^#' -e '^[[:space:]]*$' "$pdir/series")" ] ||
       ! (cd "$tmp" && for f in *.patch; do [ -e "$f" ] || continue; cmp -s "$f" "$pdir/$f" || exit 1; done); then
      old=$work.$(date +%Y%m%d-%H%M%S)
      mv "$work" "$old"
      echo "lua/work's commits differ from lua/patches: moved to ${old#"$root"/}; to keep them, move it back to lua/work and run 'make lua-patches'" >&2
    fi
    rm -rf "$tmp"
  fi
  rm -rf "$work" && mkdir -p "$work"
  tar -xzf "$tarball" -C "$work" --strip-components=1
  g init -q -b main
  g add -A && g commit -q -m "Lua 5.4.7, pristine" && g tag pristine
  while read -r p || [ -n "$p" ]; do
    case "$p" in ''|'#'*) continue ;; esac
    g am -q --keep-cr "$pdir/$p" || { echo "error: $p does not apply; see 'git -C lua/work am --show-current-patch'" >&2; exit 1; }
  done < "$pdir/series"
  echo "lua/work: pristine + $(g rev-list --count pristine..HEAD) patches; edit, commit (one commit per capability), then 'make lua-patches'"
  ;;
export)
  [ -d "$work/.git" ] || { echo "error: no lua/work; run 'make lua-work' first" >&2; exit 1; }
  if [ -n "$(g status --porcelain --untracked-files=no)" ]; then
    echo "error: lua/work has uncommitted changes; commit them first" >&2
    exit 1
  fi
  tmp=$(mktemp -d)
  patches "$tmp"
  rm -f "$pdir"/*.patch
  : > "$pdir/series"
  for f in "$tmp"/*.patch; do
    [ -e "$f" ] || continue
    mv "$f" "$pdir/"
    basename "$f" >> "$pdir/series"
  done
  rmdir "$tmp"
  echo "lua/patches: $(wc -l < "$pdir/series") patches written"
  ;;
*)
  echo "usage: lua-work.sh unpack TARBALL | export" >&2; exit 2 ;;
esac
