#!/usr/bin/env bash
# test-fetch.sh GOOD_TARBALL -- scripts/fetch.sh accepts the pinned tarball
# and refuses corrupted or wrong ones, whatever their source; a refused
# tarball is never built. Needs no network: every remote source is pointed
# at a path that does not exist.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
good=${1:?usage: test-fetch.sh GOOD_TARBALL}
group=fetch
. "$root/test/check.sh"

offline() {  # fetch.sh with every remote source unreachable
  SHOAL_DEBIAN_MIRROR=file:///nonexistent SHOAL_FALLBACK_URL_LUA=file:///nonexistent/lua.tar.gz \
    "$root/scripts/fetch.sh" "$@"
}

# a corrupted copy (one byte changed) and a well-formed tarball of another version
cp "$good" "$tmp/corrupt.tar.gz"
printf 'X' | dd of="$tmp/corrupt.tar.gz" bs=1 seek=1000 conv=notrunc status=none
mkdir -p "$tmp/lua-5.4.6/src" && echo 'LUA_VERSION_RELEASE "5.4.6"' > "$tmp/lua-5.4.6/src/lua.h"
tar -czf "$tmp/lua-5.4.6.tar.gz" -C "$tmp" lua-5.4.6

# the good tarball, named by the user
SHOAL_CACHE=$tmp/c1 LUA_TARBALL=$good offline lua > "$tmp/out" 2> "$tmp/err"
check "LUA_TARBALL with the right tarball is accepted" test $? -eq 0
check "accepted tarball lands in the cache" cmp -s "$good" "$tmp/c1/lua-5.4.7.tar.gz"
check "fetch prints the cached path" has "$tmp/out" "$tmp/c1/lua-5.4.7.tar.gz"

# naming it again leaves the cached copy as it is, date too: no rebuild
touch -d '2020-01-01' "$tmp/c1/lua-5.4.7.tar.gz"
SHOAL_CACHE=$tmp/c1 LUA_TARBALL=$good offline lua > "$tmp/out" 2> "$tmp/err"
check "naming the same tarball again is accepted" test $? -eq 0
check "and leaves the cached copy's date alone" test "$(date -r "$tmp/c1/lua-5.4.7.tar.gz" +%Y)" = 2020

# then the cache alone serves it
SHOAL_CACHE=$tmp/c1 offline lua > "$tmp/out" 2> "$tmp/err"
check "cached tarball is used with no source reachable" test $? -eq 0

for bad in corrupt lua-5.4.6; do
  SHOAL_CACHE=$tmp/c2 LUA_TARBALL=$tmp/$bad.tar.gz offline lua > "$tmp/out" 2> "$tmp/err"
  check "$bad tarball from LUA_TARBALL is refused" test $? -ne 0
  check "$bad: message names the checksum" has "$tmp/err" "expected 9fbf5e28ef86c69858f6d3d34eccc32e911c1a28b4120ff3e84aaa70cfbf1e30"
  check "$bad: nothing is put in the cache" test ! -e "$tmp/c2/lua-5.4.7.tar.gz"
done

SHOAL_CACHE=$tmp/c2 LUA_TARBALL=$tmp/missing.tar.gz offline lua > "$tmp/out" 2> "$tmp/err"
check "missing LUA_TARBALL is an error" test $? -ne 0
check "missing LUA_TARBALL is named" has "$tmp/err" "LUA_TARBALL=$tmp/missing.tar.gz: no such readable file"

# a corrupted cache entry is removed, then every source fails: one clear message
mkdir -p "$tmp/c3" && cp "$tmp/corrupt.tar.gz" "$tmp/c3/lua-5.4.7.tar.gz"
SHOAL_CACHE=$tmp/c3 offline lua > "$tmp/out" 2> "$tmp/err"
check "all sources failing is an error" test $? -ne 0
check "corrupted cache entry is removed" test ! -e "$tmp/c3/lua-5.4.7.tar.gz"
check "message lists the cache" has "$tmp/err" "cache $tmp/c3/lua-5.4.7.tar.gz: wrong checksum, removed"
check "message lists Debian's source package" has "$tmp/err" "Debian source lua5.4=5.4.7-1 from file:///nonexistent"
check "message lists the download" has "$tmp/err" "download file:///nonexistent/lua.tar.gz"
check "message says how to supply it by hand" has "$tmp/err" "make LUA_TARBALL=/path/to/lua-5.4.7.tar.gz"

"$root/scripts/fetch.sh" nosuchdep > "$tmp/out" 2> "$tmp/err"
check "unknown dependency is refused" test $? -eq 2
check "unknown dependency lists the known ones" has "$tmp/err" "known: lua lpeg penlight jemalloc mimalloc"

# the build itself refuses a bad tarball and leaves nothing unpacked
make -s -C "$root" O="$tmp/build" CACHE="$tmp/c4" LUA_TARBALL="$tmp/corrupt.tar.gz" \
  SHOAL_DEBIAN_MIRROR=file:///nonexistent "$tmp/build/src/stock/.stamp" > "$tmp/out" 2> "$tmp/err"
check "make with a corrupted LUA_TARBALL fails" test $? -ne 0
check "make says why" has "$tmp/err" "was refused"
check "nothing is unpacked from a refused tarball" test ! -e "$tmp/build/src/stock/src/lua.h"

finish
