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

# machine DIR: what the benchmark ran on ("2 cores, x86_64, ext4"), for the tables.
machine() { echo "$(nproc) cores, $(uname -m), $(df -T "$1" | awk 'NR==2 {print $2}')"; }

# Awk functions over a rounds file read into v[column, row]: its median, least and
# greatest value in a column.
ROUNDS_AWK='
  function med(c,   n, i, j, t, a) { n = NR; for (i = 1; i <= n; i++) a[i] = v[c, i];
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return a[int((n + 1) / 2)] }
  function lo(c,   i, m) { m = v[c, 1]; for (i = 2; i <= NR; i++) if (v[c, i] < m) m = v[c, i]; return m }
  function hi(c,   i, m) { m = v[c, 1]; for (i = 2; i <= NR; i++) if (v[c, i] > m) m = v[c, i]; return m }'
