#!/usr/bin/env bash
# Multi-store benchmarks (part of `make bench`):
#  1. one backup to three local stores vs to one (target: <= 1.15x the time of one);
#  2. backup throughput to the S3 server (moto) vs a plain object_store upload of the same
#     bytes (target: >= 80 %), on incompressible data (same bytes on the wire) and on the
#     CSV export (where compression sends fewer bytes).
# Prints what it measured and appends it to docs/benchmarks.md; targets are reported, not
# enforced. BIN=path measures that binary instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${BENCH_DIR:-bench-data}
RUNS=${RUNS:-3}

cargo build --release --quiet --bin snapdrill --example raw_upload
# shellcheck source=scripts/cargo-bin.sh
. scripts/cargo-bin.sh
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
BIN=${BIN:-$(cargo_bin release snapdrill)}
RAW=$(cargo_bin release examples/raw_upload)
[ -f "$DATA/exports.300MB.done" ] || SIZE=300MB scripts/bench.sh >/dev/null
if [ ! -f "$DATA/random/.done" ]; then
  mkdir -p "$DATA/random"
  for i in 1 2 3 4; do head -c 50000000 /dev/urandom > "$DATA/random/part-$i.bin"; done
  touch "$DATA/random/.done"
fi
rm -f "$DATA/random/.done.tmp"

work=$(mktemp -d "${TMPDIR:-/tmp}/snapdrill-bench.XXXXXX")
cleanup() { scripts/servers.sh stop "$work/servers" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
"$BIN" keygen -o "$work/identity.txt" > "$work/recipient" 2>/dev/null

# config NAME STORE_TOML...: a fresh repository config in $work/NAME
config() {
  local name=$1; shift
  mkdir -p "$work/$name"
  { printf '[repository]\nrecipients = ["%s"]\nidentity = "../identity.txt"\ncache_dir = "cache"\nstate_dir = "state"\n' "$(cat "$work/recipient")"
    for s in "$@"; do printf '%s\n' "$s"; done; } > "$work/$name/snapdrill.toml"
  SNAPDRILL_CONFIG=$work/$name/snapdrill.toml "$BIN" -q init --create >/dev/null 2>&1
}
local_store() { printf '[[store]]\nname = "%s"\nurl = "stores/%s"\nsite = "%s"\n' "$1" "$1" "$1"; }
# seconds of a backup of $2 with config $1 (fresh repository each time: every chunk is new)
backup_secs() {
  local start end
  start=$(date +%s.%N)
  SNAPDRILL_CONFIG=$1 "$BIN" -q backup --no-cache "$2" >/dev/null 2>&1
  end=$(date +%s.%N)
  python3 -c "print(f'{$end - $start:.3f}')"
}
best() { sort -n | head -1; }

echo "snapdrill multi-store bench ($RUNS runs each, best shown)"
src=$PWD/$DATA/exports
bytes=$(du -sb "$src" | cut -f1)
one=(); three=()
for r in $(seq "$RUNS"); do
  config "one-$r" "$(local_store a)"
  config "three-$r" "$(local_store a)" "$(local_store b)" "$(local_store c)"
  one+=("$(backup_secs "$work/one-$r/snapdrill.toml" "$src")")
  three+=("$(backup_secs "$work/three-$r/snapdrill.toml" "$src")")
  rm -rf "$work/one-$r/stores" "$work/three-$r/stores"
done
t1=$(printf '%s\n' "${one[@]}" | best); t3=$(printf '%s\n' "${three[@]}" | best)
report=$(python3 - "$bytes" "$t1" "$t3" <<'PY'
import sys
b, t1, t3 = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
r = t3 / t1
print(f"  {b/1e6:.0f} MB export -> 1 local store: {t1:.2f} s ({b/1e6/t1:.0f} MB/s); 3 local stores: {t3:.2f} s ({b/1e6/t3:.0f} MB/s)")
print(f"  three stores / one store = {r:.2f}x (target <= 1.15x: {'meets target' if r <= 1.15 else 'ABOVE target'})")
PY
)
echo "$report"

eval "$(scripts/servers.sh start moto "$work/servers" | sed 's/^/S3_/')"
export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$S3_SECRET_ACCESS_KEY
s3_store() {
  printf '[[store]]\nname = "s3"\nurl = "s3://%s/%s"\nsite = "osaka"\noptions = { endpoint = "%s", region = "us-east-1", allow_http = "true" }\n' \
    "$S3_BUCKET" "$1" "$S3_ENDPOINT"
}
for set in random exports; do
  dir=$PWD/$DATA/$set
  sbytes=$(find "$dir" -type f ! -name '.*' -printf '%s\n' | awk '{s+=$1} END {print s}')
  raw=(); ours=()
  for r in $(seq "$RUNS"); do
    raw+=("$("$RAW" "$dir" "$S3_ENDPOINT" "$S3_BUCKET" "raw-$set-$r" | awk '{print $2}')")
    config "s3-$set-$r" "$(s3_store "snap-$set-$r")"
    ours+=("$(backup_secs "$work/s3-$set-$r/snapdrill.toml" "$dir")")
  done
  tr=$(printf '%s\n' "${raw[@]}" | best); to=$(printf '%s\n' "${ours[@]}" | best)
  lines=$(python3 - "$set" "$sbytes" "$tr" "$to" <<'PY'
import sys
name, b, tr, to = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
raw, ours = b / 1e6 / tr, b / 1e6 / to
r = ours / raw
label = "incompressible" if name == "random" else "CSV export, compressible"
print(f"  S3 (moto), {b/1e6:.0f} MB {label}: plain object_store upload {raw:.0f} MB/s; snapdrill backup {ours:.0f} MB/s of source")
print(f"    snapdrill / plain upload = {r*100:.0f} % (target >= 80 %: {'meets target' if r >= 0.8 else 'BELOW target'})")
PY
)
  echo "$lines"
  report+=$'\n'"$lines"
done

# The same lines, appended to docs/benchmarks.md with the machine they ran on.
{
  echo
  echo "### Several stores, $(date -u +%Y-%m-%d) — $(machine "$DATA") ($RUNS runs, best of each)"
  echo
  printf '%s\n' "$report" | sed 's/^ *//; s/^/- /'
} >> docs/benchmarks.md
