#!/usr/bin/env bash
# fetch.sh NAME -- put the verified tarball of dependency NAME (see deps.list)
# into the cache folder and print its path.
#
# Sources, in order: a tarball the user names (LUA_TARBALL for lua,
# SHOAL_TARBALL_<NAME> for the others); the cache; Debian's source package through
# `apt-get source --download-only` with a private apt state (no root, the
# system's apt setup untouched, the mirror read from the machine's own apt
# sources); the fallback URL. Whatever the source, a tarball whose SHA-256 is
# not the pinned one is refused and never reaches the build.
#
# Environment: SHOAL_CACHE (default: <repo>/cache), SHOAL_DEBIAN_MIRROR
# (overrides the mirror read from apt), SHOAL_DEBIAN_SUITE (default trixie),
# SHOAL_DEBIAN_BINSUITE (default bookworm, the suite of the pinned .deb
# files), SHOAL_FALLBACK_URL_<NAME> (overrides the fallback URL).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
name=${1:?usage: fetch.sh NAME}
cache=${SHOAL_CACHE:-$root/cache}
suite=${SHOAL_DEBIAN_SUITE:-trixie}

say() { printf 'fetch %s: %s\n' "$name" "$*" >&2; }

read -r _ file debpkg debver origfile sha url < <(awk -v n="$name" '$1 == n' "$here/deps.list")
if [ -z "${file:-}" ]; then
  say "unknown dependency (known: $(awk '!/^#/ && NF {printf "%s ", $1}' "$here/deps.list"))"
  exit 2
fi
uname=$(printf '%s' "$name" | tr '[:lower:]' '[:upper:]')
fallback_var=SHOAL_FALLBACK_URL_$uname
url=${!fallback_var:-$url}
user_var=SHOAL_TARBALL_$uname
[ "$name" = lua ] && user_var=LUA_TARBALL
user_tarball=${!user_var:-}

mkdir -p "$cache" || { say "cannot create cache folder $cache"; exit 1; }
dest=$cache/$file
tried=()
tmp='' work=''
# an interrupted fetch leaves no partial file behind
trap 'rm -rf "$dest.tmp.$$" ${tmp:+"$tmp"} ${work:+"$work"}' EXIT
trap 'exit 130' INT TERM HUP

# check FILE: true when FILE has the pinned SHA-256; otherwise says why.
check() {
  local got
  got=$(sha256sum "$1" 2>/dev/null | cut -d' ' -f1)
  [ "$got" = "$sha" ] && return 0
  say "refusing $1: SHA-256 is ${got:-unreadable}, expected $sha (corrupted or not $file)"
  return 1
}

# install FILE: verify FILE, then move it into the cache atomically. The
# cached copy is left as it is (its date too) if it is the same file, so
# naming a tarball again does not make the build out of date.
install_tarball() {
  check "$1" || return 1
  cmp -s "$1" "$dest" && return 0
  cp -f "$1" "$dest.tmp.$$" && mv -f "$dest.tmp.$$" "$dest"
}

# 1. a tarball the user names: if it is wrong, stop; never fall back silently.
if [ -n "$user_tarball" ]; then
  if [ ! -r "$user_tarball" ]; then
    say "$user_var=$user_tarball: no such readable file"; exit 1
  fi
  install_tarball "$user_tarball" || { say "$user_var=$user_tarball was refused"; exit 1; }
  echo "$dest"; exit 0
fi
tried+=("$user_var: not set")

# 2. the cache
if [ -e "$dest" ]; then
  if check "$dest"; then echo "$dest"; exit 0; fi
  rm -f "$dest"
  tried+=("cache $dest: wrong checksum, removed")
else
  tried+=("cache $dest: absent")
fi

# debian_mirror: the first non-security Debian URI of the machine's apt sources.
debian_mirror() {
  if [ -n "${SHOAL_DEBIAN_MIRROR:-}" ]; then echo "$SHOAL_DEBIAN_MIRROR"; return; fi
  {
    for f in /etc/apt/sources.list.d/*.sources; do
      [ -r "$f" ] || continue
      # deb822 stanzas: print the URI of each stanza whose suites are not security ones
      awk 'BEGIN{RS=""; FS="\n"}
           { u=""; s="";
             for (i = 1; i <= NF; i++) {
               if ($i ~ /^URIs:/) { u=$i; sub(/^URIs:[ \t]*/, "", u); sub(/[ \t].*/, "", u) }
               if ($i ~ /^Suites:/) s=$i }
             if (u != "" && s !~ /security/) print u }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [ -r "$f" ] || continue
      awk '$1 == "deb" || $1 == "deb-src" {
             i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
             if ($(i+1) !~ /security/) print $i }' "$f"
    done
  } | grep -m1 -i debian
}

# 3. Debian's source package, with a private apt state under the cache
fetch_debian() {
  command -v apt-get >/dev/null || { tried+=("Debian source $debpkg=$debver: apt-get not found"); return 1; }
  local mirror aptdir opts log
  mirror=$(debian_mirror)
  if [ -z "$mirror" ]; then
    tried+=("Debian source $debpkg=$debver: no Debian mirror in /etc/apt sources (set SHOAL_DEBIAN_MIRROR)")
    return 1
  fi
  # "bin:PKG" in deps.list: a binary package; the pinned SHA-256 is that of
  # bookworm's build, which runs on bookworm's C library and any later one
  local kind=deb-src get=(source --download-only) pkg=$debpkg dsuite=$suite
  aptdir=$cache/apt
  if [[ $debpkg == bin:* ]]; then
    kind=deb get=(download) pkg=${debpkg#bin:} aptdir=$cache/apt-bin
    dsuite=${SHOAL_DEBIAN_BINSUITE:-bookworm}
  fi
  mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial"
  # The tarball's own SHA-256 is pinned, so the archive key is a second check, not the only one.
  if [ -r /usr/share/keyrings/debian-archive-keyring.gpg ]; then
    opts="signed-by=/usr/share/keyrings/debian-archive-keyring.gpg"
  else
    opts="trusted=yes"
  fi
  printf '%s [%s] %s %s main\n' "$kind" "$opts" "$mirror" "$dsuite" > "$aptdir/sources.list"
  local apt=(apt-get -q -o "Dir::Etc::SourceList=$aptdir/sources.list" -o Dir::Etc::SourceParts=/dev/null
             -o "Dir::State::Lists=$aptdir/lists" -o "Dir::Cache=$aptdir/cache"
             -o Acquire::Retries=1 -o Acquire::http::Timeout=30)
  log=$aptdir/last.log
  # one apt run at a time on the private state (make -j fetches in parallel)
  exec 9> "$aptdir/lock"
  flock 9
  say "downloading Debian $kind $pkg=$debver ($dsuite) from $mirror"
  : > "$log"
  # one index download a day, per mirror and suite, serves every dependency
  if [ "$(cat "$aptdir/sources.list.done" 2>/dev/null)" = "$(cat "$aptdir/sources.list")" ] &&
     [ -n "$(find "$aptdir/sources.list.done" -mtime -1 2>/dev/null)" ]; then
    :
  elif "${apt[@]}" update > "$log" 2>&1; then
    cp "$aptdir/sources.list" "$aptdir/sources.list.done"
  else
    tried+=("Debian source $debpkg=$debver from $mirror: apt-get update failed ($(grep -m1 -E '^(E|Err):' "$log"))")
    return 1
  fi
  work=$(mktemp -d "$cache/dl.XXXXXX")
  # Only the orig tarball matters: a mirror missing the .dsc or the Debian
  # diff makes apt-get fail after fetching it, so judge by the tarball itself.
  # A newer Debian revision of the source carries the same orig tarball:
  # when the pinned revision is gone from the suite, take the current one.
  (cd "$work" && "${apt[@]}" "${get[@]}" "$pkg=$debver") >> "$log" 2>&1
  if [ ! -e "$work/$origfile" ] && [ "$kind" = deb-src ]; then
    (cd "$work" && "${apt[@]}" "${get[@]}" "$pkg") >> "$log" 2>&1
  fi
  if [ ! -e "$work/$origfile" ]; then
    tried+=("Debian $kind $pkg=$debver ($dsuite) from $mirror: apt-get ${get[0]} failed ($(grep -m1 -E '^E:' "$log"))")
    rm -rf "$work"; work=''; return 1
  fi
  if ! install_tarball "$work/$origfile"; then
    tried+=("Debian $kind $pkg ($dsuite): $origfile has the wrong checksum")
    rm -rf "$work"; work=''; return 1
  fi
  rm -rf "$work"; work=''
}

# 4. the fallback URL
fetch_url() {
  if [ "$url" = - ]; then tried+=("download: no fallback URL for $name"); return 1; fi
  local err
  tmp=$cache/$file.dl.$$
  say "downloading $url"
  if command -v curl >/dev/null; then
    err=$(curl -fsSL --connect-timeout 20 --max-time 120 -o "$tmp" "$url" 2>&1)
  elif command -v wget >/dev/null; then
    err=$(wget -q -T 30 -O "$tmp" "$url" 2>&1)
  else
    err="neither curl nor wget found"; false
  fi || { tried+=("download $url: ${err:-failed}"); rm -f "$tmp"; return 1; }
  install_tarball "$tmp" || { tried+=("download $url: wrong checksum"); rm -f "$tmp"; return 1; }
  rm -f "$tmp"; tmp=''
}

if fetch_debian || fetch_url; then
  echo "$dest"; exit 0
fi

{
  echo "error: could not get $file (SHA-256 $sha). Tried:"
  for t in "${tried[@]}"; do echo "  - $t"; done
  echo "Supply it by hand: download $file, check its SHA-256, and run"
  echo "  make $user_var=/path/to/$file"
} >&2
exit 1
