#!/usr/bin/env bash
# test-patches.sh TARBALL -- the patch series tools: apply-patches.sh applies
# every patch of the series exactly (the last line without a newline, comments
# and blank lines allowed) and refuses a patch that needs fuzz; lua-work.sh
# round-trips the series and never deletes commits not yet exported.
# Works on copies in a temporary root, never on the checkout's lua/work.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
tgz=${1:?usage: test-patches.sh TARBALL}
group=patches
. "$root/test/check.sh"
# a root of our own: the scripts find lua/ beside their own folder
mkroot() {  # mkroot DIR: scripts and the patch series, copied
  mkdir -p "$1/lua" && cp -r "$root/scripts" "$1/" && cp -r "$root/lua/patches" "$1/lua/"
}
unpack() {  # unpack DIR: pristine Lua in DIR
  rm -rf "$1" && mkdir -p "$1" && tar -xzf "$tgz" -C "$1" --strip-components=1
}
last=$(grep -v -e '^#' -e '^[[:space:]]*$' "$root/lua/patches/series" | tail -1)
# the longest line the last patch adds: proof that it was applied
mark=$(grep '^+[^+]' "$root/lua/patches/$last" | cut -c2- |
       awk 'length($0) > length(m) { m = $0 } END { print m }')
marked() { grep -rqF -- "$mark" "$1/src"; }

mkroot "$tmp/r1"
unpack "$tmp/t1"
"$tmp/r1/scripts/apply-patches.sh" "$tmp/t1" > "$tmp/out" 2>&1
check "the series applies" test $? -eq 0
check "its last patch is applied" marked "$tmp/t1"

# a series whose last line has no newline, with a comment and a blank line
{ echo "# a comment"; echo; printf '%s' "$(cat "$root/lua/patches/series")"; } > "$tmp/r1/lua/patches/series"
unpack "$tmp/t2"
"$tmp/r1/scripts/apply-patches.sh" "$tmp/t2" > "$tmp/out" 2>&1
check "series with comments and no final newline applies" test $? -eq 0
check "and its last patch is applied too" marked "$tmp/t2"
cp "$root/lua/patches/series" "$tmp/r1/lua/patches/series"

# a patch whose context no longer matches exactly is refused, not fuzzed in
first=$(grep -v -e '^#' -e '^[[:space:]]*$' "$root/lua/patches/series" | head -1)
ctx=$(grep -m1 '^ [^ ].*[a-z]' "$root/lua/patches/$first")
awk -v c="$ctx" '!done && $0 == c { print c "/* changed */"; done = 1; next } { print }' \
  "$root/lua/patches/$first" > "$tmp/r1/lua/patches/$first"
unpack "$tmp/t3"
"$tmp/r1/scripts/apply-patches.sh" "$tmp/t3" > "$tmp/out" 2>&1
check "a patch that needs fuzz is refused" test $? -ne 0
check "the refusal names the patch" has "$tmp/out" "lua/patches/$first does not apply"
cp "$root/lua/patches/$first" "$tmp/r1/lua/patches/$first"

# lua-work: unpack, export gives the very same patches
mkroot "$tmp/r2"
git() { command git -c user.name=t -c user.email=t@localhost "$@"; }
"$tmp/r2/scripts/lua-work.sh" unpack "$tgz" > "$tmp/out" 2>&1
check "lua-work unpacks" test $? -eq 0
n=$(grep -c -v -e '^#' -e '^[[:space:]]*$' "$root/lua/patches/series")
check "one commit a patch" test "$(git -C "$tmp/r2/lua/work" rev-list --count pristine..HEAD)" = "$n"
"$tmp/r2/scripts/lua-work.sh" export > "$tmp/out" 2>&1
check "export round-trips the series byte for byte" diff -r "$root/lua/patches" "$tmp/r2/lua/patches"

# a commit not yet exported survives a new unpack
echo "/* unexported */" >> "$tmp/r2/lua/work/src/lvm.c"
git -C "$tmp/r2/lua/work" commit -qam "unexported work"
"$tmp/r2/scripts/lua-work.sh" unpack "$tgz" > "$tmp/out" 2>&1
check "unpack over unexported commits succeeds" test $? -eq 0
kept=$(ls -d "$tmp/r2/lua/work."* 2>/dev/null | head -1)
check "the old tree is moved aside" test -n "$kept"
check "with the unexported commit" test "$(git -C "${kept:-/nonexistent}" log -1 --format=%s 2>/dev/null)" = "unexported work"
check "the message says where" has "$tmp/out" "moved to lua/work."
check "the new tree is the series again" test "$(git -C "$tmp/r2/lua/work" rev-list --count pristine..HEAD)" = "$n"

# an up-to-date tree is replaced, nothing moved; uncommitted changes refuse
rm -rf "$tmp/r2/lua/work."*
"$tmp/r2/scripts/lua-work.sh" unpack "$tgz" > "$tmp/out" 2>&1
check "an exported tree is simply replaced" test -z "$(ls -d "$tmp/r2/lua/work."* 2>/dev/null)"
echo "/* uncommitted */" >> "$tmp/r2/lua/work/src/lvm.c"
"$tmp/r2/scripts/lua-work.sh" unpack "$tgz" > "$tmp/out" 2>&1
check "uncommitted changes refuse an unpack" test $? -ne 0
check "and stay" has "$tmp/r2/lua/work/src/lvm.c" "uncommitted"

finish
