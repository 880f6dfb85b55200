#!/usr/bin/env bash
# `make bench`: what a long history costs a nightly backup. Builds a repository holding
# HISTORY snapshots (a year of nightlies by default) of a generated export, one file
# changed between nights, then measures one more backup and a `snapshots` listing.
# A backup needs the ciphertext hashes of the chunks it reuses; it reads commits newest
# first and stops once it has them, so its cost should not grow with the history.
#
#   HISTORY=365 SIZE=100MB scripts/bench-history.sh      (BIN=... to measure another build)
set -euo pipefail
cd "$(dirname "$0")/.."
HISTORY=${HISTORY:-365}
SIZE=${SIZE:-100MB}
DATA=${BENCH_DIR:-bench-data}/history

if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=$PWD/target/release/snapdrill
fi

mkdir -p "$DATA"
if [ ! -f "$DATA/exports.$SIZE.done" ]; then
  rm -rf "$DATA/exports"
  scripts/gen-exports.py --out "$DATA/exports" --size "$SIZE" --seed 365
  touch "$DATA/exports.$SIZE.done"
fi
rm -rf "$DATA/repo"
mkdir -p "$DATA/repo"
recipient=$("$BIN" keygen -o "$DATA/repo/identity.txt" 2>/dev/null)
cat > "$DATA/repo/snapdrill.toml" <<TOML
[repository]
recipients = ["$recipient"]
identity = "identity.txt"
cache_dir = "cache"
state_dir = "state"
[[store]]
name = "local"
url = "store"
[backup]
paths = ["../exports"]
TOML
export SNAPDRILL_CONFIG=$PWD/$DATA/repo/snapdrill.toml
"$BIN" -q init >/dev/null

measure() {
  local log
  log=$(mktemp)
  /usr/bin/time -f '%e %M' -o "$log" "$@" >/dev/null
  cat "$log"
  rm -f "$log"
}

start=$(date +%s)
for night in $(seq 1 "$HISTORY"); do
  echo "night $night: calls logged" >"$DATA/exports/nightly-note.txt"
  "$BIN" -q backup >/dev/null
done
built=$(($(date +%s) - start))
echo "night $((HISTORY + 1))" >"$DATA/exports/nightly-note.txt"
read -r b_s b_rss < <(measure "$BIN" -q backup)
read -r l_s l_rss < <(measure "$BIN" -q snapshots)
commits=$(find "$DATA/repo/store/snapshots" -type f | wc -l)
commit_bytes=$(du -cb "$DATA/repo/store/snapshots" | tail -1 | cut -f1)
chunks=$(find "$DATA/repo/store/chunks" -type f | wc -l)
python3 - "$commits" "$commit_bytes" "$chunks" "$built" "$b_s" "$b_rss" "$l_s" "$l_rss" <<'PY'
import sys
commits, cbytes, chunks, built, b, brss, l, lrss = (float(x) for x in sys.argv[1:])
print(f"snapdrill bench-history: {commits:.0f} snapshots ({cbytes/1e6:.1f} MB of commits, "
      f"{cbytes/commits/1e3:.1f} kB each), {chunks:.0f} chunk objects; history built in {built:.0f} s")
print(f"  {'backup after the history (one file changed)':<44} {b:7.2f} s  peak RSS {brss/1024:6.1f} MiB")
print(f"  {'snapshots (reads every commit)':<44} {l:7.2f} s  peak RSS {lrss/1024:6.1f} MiB")
PY
