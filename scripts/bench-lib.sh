# Shared by the benchmarks (sourced, not run): a repository config and a measurement.

# new_repo DIR STORE_TOML: a fresh identity and config in DIR (exports in DIR/../exports),
# initialised; exports SNAPDRILL_CONFIG. Needs $BIN.
new_repo() {
  local dir=$1 store_toml=$2 recipient
  mkdir -p "$dir"
  recipient=$("$BIN" keygen -o "$dir/identity.txt" 2>/dev/null)
  cat > "$dir/snapdrill.toml" <<TOML
[repository]
recipients = ["$recipient"]
identity = "identity.txt"
cache_dir = "cache"
state_dir = "state"
$store_toml
[backup]
paths = ["../exports"]
TOML
  export SNAPDRILL_CONFIG=$PWD/$dir/snapdrill.toml
  "$BIN" -q init --create >/dev/null
}

# measure CMD...: run under GNU time; prints "seconds max_rss_kib".
measure() {
  local log
  log=$(mktemp)
  /usr/bin/time -f '%e %M' -o "$log" "$@" >/dev/null
  cat "$log"
  rm -f "$log"
}
