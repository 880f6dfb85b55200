#!/usr/bin/env bash
# `make bench`: how honest a drill's clock is. Timing accuracy depends on the disk and on
# whatever else the machine does, so it is measured here and printed, never asserted by a
# test (`make test` checks the arithmetic exactly instead: tests/drill.rs).
#  1. the RTO a full drill reports vs an outside stopwatch (/usr/bin/time) on the same run;
#  2. a 10 % sample's estimate vs the full drill's measured RTO (medians of RUNS each).
#
#   RUNS=5 FILES=40 FILE_MB=15 scripts/bench-drill.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
FILES=${FILES:-40}
FILE_MB=${FILE_MB:-15}
DATA=${BENCH_DIR:-bench-data}/drill

# shellcheck source=scripts/cargo-bin.sh
. scripts/cargo-bin.sh
cargo build --release --quiet
BIN=$(cargo_bin release snapdrill)

rm -rf "$DATA/repo"
mkdir -p "$DATA"
if [ ! -f "$DATA/exports.$FILES.$FILE_MB.done" ]; then
  rm -rf "$DATA/exports"
  mkdir -p "$DATA/exports"
  for i in $(seq -w 1 "$FILES"); do
    head -c $((FILE_MB * 1000000)) /dev/urandom > "$DATA/exports/calls-$i.bin"
  done
  touch "$DATA/exports.$FILES.$FILE_MB.done"
fi

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
new_repo "$DATA/repo" "$(printf '[[store]]\nname = "local"\nurl = "store"\n')"
"$BIN" -q backup >/dev/null

log=$(mktemp)
trap 'rm -f "$log"' EXIT
pairs=()
for _ in $(seq "$RUNS"); do
  sync # each drill starts with nothing left to write back from the one before
  rm -rf "$DATA/target"
  mkdir -p "$DATA/target"
  rto=$(/usr/bin/time -f '%e' -o "$log" "$BIN" restore-drill --json --target "$DATA/target" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["rto_secs"])')
  pairs+=("$rto $(cat "$log")")
done
estimates=()
for seed in $(seq "$RUNS"); do
  sync
  estimates+=("$("$BIN" restore-drill --json --sample 10% --seed "$seed" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["rto_estimate_secs"])')")
done
rm -rf "$DATA/target"

python3 - "$FILES" "$FILE_MB" "${pairs[*]}" "${estimates[*]}" <<'PY'
import statistics, sys
files, mb = int(sys.argv[1]), int(sys.argv[2])
v = [float(x) for x in sys.argv[3].split()]
rtos, walls = v[0::2], v[1::2]
est = [float(x) for x in sys.argv[4].split()]
print(f"snapdrill drill timing: {files} files x {mb} MB, {len(rtos)} full drills, {len(est)} samples of 10 %")
for r, w in zip(rtos, walls):
    print(f"  full drill: RTO {r:7.3f} s   /usr/bin/time {w:6.2f} s   {abs(w - r) / w * 100:5.1f} % apart")
m_rto, m_est = statistics.median(rtos), statistics.median(est)
print(f"  full drills (s): {' '.join(f'{x:.3f}' for x in rtos)}; spread {min(rtos):.2f}-{max(rtos):.2f} s")
print(f"  10 % sample estimates (s): {' '.join(f'{x:.3f}' for x in est)}")
print(f"  median estimate {m_est:.3f} s vs median full drill {m_rto:.3f} s: {abs(m_est - m_rto) / m_rto * 100:.0f} % apart")
PY
