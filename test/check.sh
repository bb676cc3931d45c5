# check.sh -- sourced by the shell tests, after setting 'group': a fresh
# folder $tmp (removed on exit); 'check NAME COND...' runs COND and prints
# one "ok"/"not ok" line; 'has FILE TEXT'; 'finish' prints the summary line
# and returns the status the runner reads.
passed=0 failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check() {
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "ok $group: $name"
  else failed=$((failed + 1)); echo "not ok $group: $name"; fi
}
has() { grep -q -- "$2" "$1"; }
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
