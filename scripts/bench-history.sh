#!/usr/bin/env bash
# `make bench`: what a long history costs a nightly backup. Builds a repository holding
# HISTORY snapshots (a year of nightlies by default) of a generated export, one file
# changed between nights, then measures one more backup and a `snapshots` listing.
# A backup needs the ciphertext hashes of the chunks it reuses; it reads commits newest
# first and stops once it has them, so its cost should not grow with the history.
#
# `audit --deep` verifies every snapshot but reads each unchanged file once.
# Listing commands read every commit; the local commit cache (cache_dir/commits/) makes a
# second listing read only the stores' listings: measured cold and warm.
#
#   HISTORY=365 SIZE=100MB scripts/bench-history.sh      (BIN=... to measure another build)
#   STORE=s3 scripts/bench-history.sh                    (the repository on moto, not a local disk)
set -euo pipefail
cd "$(dirname "$0")/.."
HISTORY=${HISTORY:-365}
SIZE=${SIZE:-100MB}
DATA=${BENCH_DIR:-bench-data}/history

if [ -z "${BIN:-}" ]; then
  # shellcheck source=scripts/cargo-bin.sh
  . scripts/cargo-bin.sh
  cargo build --release --quiet
  BIN=$(cargo_bin release snapdrill)
fi

mkdir -p "$DATA"
if [ ! -f "$DATA/exports.$SIZE.done" ]; then
  rm -rf "$DATA/exports"
  scripts/gen-exports.py --out "$DATA/exports" --size "$SIZE" --seed 365
  touch "$DATA/exports.$SIZE.done"
fi
rm -rf "$DATA/repo"
mkdir -p "$DATA/repo"
STORE=${STORE:-local}
if [ "$STORE" = s3 ]; then
  trap 'scripts/servers.sh stop "$DATA/servers" >/dev/null 2>&1 || true' EXIT
  eval "$(scripts/servers.sh start moto "$DATA/servers" | sed 's/^/S3_/')"
  export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$S3_SECRET_ACCESS_KEY
  store_toml=$(printf '[[store]]\nname = "s3"\nurl = "s3://%s/history"\noptions = { endpoint = "%s", region = "us-east-1", allow_http = "true" }\n' "$S3_BUCKET" "$S3_ENDPOINT")
else
  store_toml=$(printf '[[store]]\nname = "local"\nurl = "store"\n')
fi
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
new_repo "$DATA/repo" "$store_toml"

start=$(date +%s)
for night in $(seq 1 "$HISTORY"); do
  echo "night $night: calls logged" >"$DATA/exports/nightly-note.txt"
  "$BIN" -q backup >/dev/null
done
built=$(($(date +%s) - start))
echo "night $((HISTORY + 1))" >"$DATA/exports/nightly-note.txt"
read -r b_s b_rss < <(measure "$BIN" -q backup)
rm -rf "$DATA/repo/cache/commits"
read -r l_s l_rss < <(measure "$BIN" -q snapshots)
read -r w_s w_rss < <(measure "$BIN" -q snapshots)
read -r d_s d_rss < <(measure "$BIN" -q audit --deep)
"$BIN" snapshots --json >"$DATA/snapshots.json"
commits=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["snapshots"]))' "$DATA/snapshots.json")
commit_bytes=$(find "$DATA/repo/cache/commits" -type f ! -name "*.seen" -printf "%s\n" | awk "{s+=\$1} END {print s}")
python3 - "$STORE" "$commits" "$commit_bytes" "$built" "$b_s" "$b_rss" "$l_s" "$l_rss" "$w_s" "$w_rss" "$d_s" "$d_rss" <<'PY'
import sys
store = sys.argv[1]
commits, cbytes, built, b, brss, l, lrss, w, wrss, d, drss = (float(x) for x in sys.argv[2:])
print(f"snapdrill bench-history ({store} store): {commits:.0f} snapshots ({cbytes/1e6:.1f} MB of commits, "
      f"{cbytes/commits/1e3:.1f} kB each); history built in {built:.0f} s")
print(f"  {'backup after the history (one file changed)':<46} {b:7.2f} s  peak RSS {brss/1024:6.1f} MiB")
print(f"  {'snapshots, commit cache empty (reads every commit)':<46} {l:7.2f} s  peak RSS {lrss/1024:6.1f} MiB")
print(f"  {'snapshots again (commit cache warm)':<46} {w:7.2f} s  peak RSS {wrss/1024:6.1f} MiB")
print(f"  {'audit --deep (every snapshot, identity)':<46} {d:7.2f} s  peak RSS {drss/1024:6.1f} MiB")
PY
