#!/usr/bin/env bash
# `make bench`: scale. Two suites, each appending its table to docs/benchmarks.md with the
# machine it ran on:
#
# small  Many small files, side by side with restic (Debian package, installed when
#        missing). A tree of FILES small files (200-1,800 bytes, 100 per folder) is backed
#        up, re-backed up unchanged, and restored by both tools, ROUNDS times alternating;
#        prints each median with peak RSS and the ratio snapdrill/restic.
# history  A long history synthesised quickly (examples/synth_history.rs: real chunks,
#        manifests and signed commits, one per day): SNAPSHOTS snapshots of CHUNKS chunks,
#        NEW_PER_DAY new chunks a day. Measures `snapshots`, `audit`, `audit --deep`,
#        `forget --keep-daily 30` and `prune` (time, peak RSS). restic cannot be given the
#        same history without a year of backups, so this suite has no restic column.
# export The ~300 MB generated export (scripts/gen-exports.py) by snapdrill, by restic and
#        by the bare pipeline `tar | zstd -3 -T0 | age`: full backup and restore, ROUNDS
#        times alternating (big exports must keep their lead while small files catch up).
# big    One file of BIG_BYTES (default 20 GB) generated on the fly as CSV
#        (scripts/gen-csv.c: compressible, never repeating), backed up from a command's
#        output and dumped back to /dev/null verified; beside the same for 300 MB, so that
#        throughput and peak RSS can be compared. The 300 MB case runs SMALL_ROUNDS times
#        (default 5: its peak moves by a few MiB from run to run), the big one BIG_ROUNDS
#        times (default 1), interleaved. Opt-in: it needs ~8 GB of disk and ~10 min.
#
#   scripts/bench-scale.sh                      (20,000 files, 365 x 20,000 chunks: ~8 min)
#   FILES=200000 SUITES=small scripts/bench-scale.sh   (the issue's size: several minutes)
#   FILES=1000000 ROUNDS=1 SUITES=small scripts/bench-scale.sh
#   SNAPSHOTS=100 CHUNKS=5000 SUITES=history scripts/bench-scale.sh
#   SUITES=big scripts/bench-scale.sh           (BIG_BYTES=2000000000 for a quicker look)
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${FILES:-20000}
ROUNDS=${ROUNDS:-3}
SUITES=${SUITES:-export small history}
SNAPSHOTS=${SNAPSHOTS:-365}
CHUNKS=${CHUNKS:-20000}
NEW_PER_DAY=${NEW_PER_DAY:-200}
DATA=${BENCH_DIR:-bench-data}/scale-$FILES
HISTORY_DATA=${BENCH_DIR:-bench-data}/scale-history-${SNAPSHOTS}x$CHUNKS
BIG_BYTES=${BIG_BYTES:-20000000000}
BIG_ROUNDS=${BIG_ROUNDS:-1}
SMALL_ROUNDS=${SMALL_ROUNDS:-5}
BIG_DATA=${BENCH_DIR:-bench-data}/scale-big

# shellcheck source=scripts/cargo-bin.sh
. scripts/cargo-bin.sh
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
  BIN=$(cargo_bin release snapdrill)
fi
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

# goal WHAT VALUE LIMIT [UNIT]: one line of the issue's goals, "met" when VALUE <= LIMIT.
# Collected in GOALS, printed after each suite's table and written with it.
GOALS=""
goal() {
  local line
  line=$(awk -v w="$1" -v v="$2" -v l="$3" -v u="${4:-}" 'BEGIN {
    printf "- %s: %s%s (goal ≤ %s%s) — %s\n", w, v, u, l, u, (v + 0 <= l + 0) ? "met" : "NOT met" }')
  GOALS+="$line"$'\n'
}
with_goals() { # TABLE: the table, then the goal lines gathered since the last call
  TABLE="$1"$'\n\n'"$GOALS"
  GOALS=""
}

history_suite() {
  cargo build --release --quiet --example synth_history
  local synth
  synth=$(dirname "$(cargo_bin release snapdrill)")/examples/synth_history
  rm -rf "$HISTORY_DATA"
  mkdir -p "$HISTORY_DATA/exports"
  echo "placeholder" >"$HISTORY_DATA/exports/readme.txt"
  (cd "$HISTORY_DATA" && new_repo sd '[[store]]
name = "local"
url = "store"
')
  export SNAPDRILL_CONFIG=$PWD/$HISTORY_DATA/sd/snapdrill.toml
  local start built
  start=$(date +%s)
  "$synth" "$SNAPDRILL_CONFIG" "$SNAPSHOTS" "$CHUNKS" "$NEW_PER_DAY"
  built=$(($(date +%s) - start))
  local unique=$((CHUNKS + (SNAPSHOTS - 1) * NEW_PER_DAY)) rows=""
  row() { # what, then the command
    local what=$1 t m
    shift
    sync
    read -r t m < <(measure "$BIN" -q "$@")
    LAST_T=$t
    rows+="| $what | $t s | $((m / 1024)) MiB |"$'\n'
    echo "  $what: $t s, $((m / 1024)) MiB" >&2
    goal "$what over $SNAPSHOTS × $CHUNKS, peak RSS" "$((m / 1024))" 256 " MiB"
  }
  rm -rf "$HISTORY_DATA/sd/cache/commits"
  row "snapshots (commit cache empty)" snapshots
  local history_t=$LAST_T short_t short_unique
  read -r short_t short_unique < <(short_history_snapshots "$synth")
  rows+="| snapshots of $((SNAPSHOTS / 10)) × $CHUNKS ($short_unique unique: a tenth of the references), cache empty | $short_t s | |"$'\n'
  goal "snapshots over $SNAPSHOTS × $CHUNKS, time to $((SNAPSHOTS / 10)) × $CHUNKS with as many distinct objects (10× the references; linear in references would be 10×)" \
    "$(awk -v a="$history_t" -v b="$short_t" 'BEGIN { printf "%.2f", a / b }')" 2 ×
  row "snapshots (commit cache warm)" snapshots
  row "audit" audit
  row "audit --deep" audit --deep
  row "forget --keep-daily 30 --dry-run" forget --keep-daily 30 --dry-run
  row "forget --keep-daily 30" forget --keep-daily 30
  row "prune --grace 0s (collects $((SNAPSHOTS - 30)) snapshots)" prune --yes --grace 0s
  local table
  table=$(
    echo "| $SNAPSHOTS snapshots × $CHUNKS chunks ($unique unique; built in $built s) | time | peak RSS |"
    echo "| --- | --- | --- |"
    printf '%s' "$rows"
  )
  with_goals "$table"
  table=$TABLE
  echo "$table"
  {
    echo
    echo "### Long history, $(date -u +%Y-%m-%d) — $(machine "$HISTORY_DATA")"
    echo
    echo "$table"
  } >> docs/benchmarks.md
}

# Time of `snapshots` (cache empty) over a history ten times shorter with about the same
# distinct objects (SNAPSHOTS/10 snapshots, ten times the new chunks a day): a tenth of
# the references. Time linear in the references would take a tenth of the long
# history's; linear in the distinct objects, about the same. Prints "seconds unique".
short_history_snapshots() { # SYNTH
  local short=$HISTORY_DATA-short t m n=$((SNAPSHOTS / 10)) new=$((NEW_PER_DAY * 10))
  rm -rf "$short"
  mkdir -p "$short/exports"
  (cd "$short" && new_repo sd '[[store]]
name = "local"
url = "store"
' >/dev/null)
  "$1" "$PWD/$short/sd/snapdrill.toml" "$n" "$CHUNKS" "$new" >&2
  rm -rf "$short/sd/cache/commits"
  sync
  read -r t m < <(SNAPDRILL_CONFIG=$PWD/$short/sd/snapdrill.toml measure "$BIN" -q snapshots)
  rm -rf "$short"
  echo "$t $((CHUNKS + (n - 1) * new))"
}

# One round of one size of the big suite: backup of BYTES generated on the fly, then `dump`
# of it to /dev/null (streamed and verified: a restore without the disk). Appends
# "bytes backup_s backup_kib dump_s dump_kib stored_bytes" to $BIG_DATA/rounds-BYTES.txt.
big_round() {
  local bytes=$1 dir=$BIG_DATA/$1 b d
  rm -rf "$dir"
  mkdir -p "$dir/exports"
  (cd "$dir" && new_repo sd '[[store]]
name = "local"
url = "store"
')
  export SNAPDRILL_CONFIG=$PWD/$dir/sd/snapdrill.toml
  sync
  b=$(measure "$BIN" -q backup --stdin-name big.csv --command "$BIG_DATA/gen-csv $bytes")
  sync
  d=$(measure "$BIN" -q dump latest big.csv)
  echo "$bytes $b $d $(du -sb "$dir/sd/store" | awk '{print $1}')" >> "$BIG_DATA/rounds-$bytes.txt"
  rm -rf "$dir"
}

# big_stats BYTES: "bytes backup_s backup_kib dump_s dump_kib stored backup_kib_min
# backup_kib_max dump_kib_min dump_kib_max": medians of the rounds, then the RSS ranges.
big_stats() {
  awk "$ROUNDS_AWK"'
    { for (i = 1; i <= 6; i++) v[i, NR] = $i }
    END { print med(1), med(2), med(3), med(4), med(5), med(6), lo(3), hi(3), lo(5), hi(5) }' \
    "$BIG_DATA/rounds-$1.txt"
}

# A table row for one size: medians, with the peak RSS's range over the rounds.
big_row() { # LABEL ROUNDS STATS...
  local label=$1 rounds=$2
  shift 2
  awk -v what="$label" -v r="$rounds" -v s="$*" 'BEGIN {
    split(s, x, " "); n = x[1]
    printf "| %s (%d rounds) | %.1f s, %.0f MB/s, %d MiB (%d–%d) | %.1f s, %.0f MB/s, %d MiB (%d–%d) | %.2fx |\n",
      what, r, x[2], n / x[2] / 1e6, x[3] / 1024, x[7] / 1024, x[8] / 1024,
      x[4], n / x[4] / 1e6, x[5] / 1024, x[9] / 1024, x[10] / 1024, n / x[6] }'
}

# The big suite: the 300 MB case SMALL_ROUNDS times (its peak RSS moves from run to run
# with how full the budgets happen to be), the big one BIG_ROUNDS times; "unchanged" means
# the big file's median peak is within the 300 MB file's range.
big_suite() {
  mkdir -p "$BIG_DATA"
  cc -O2 -o "$BIG_DATA/gen-csv" scripts/gen-csv.c
  rm -f "$BIG_DATA"/rounds-*.txt
  local i small big label
  label=$(awk -v b="$BIG_BYTES" 'BEGIN {printf "%g GB", b / 1e9}')
  for i in $(seq "$BIG_ROUNDS"); do
    for _ in $(seq $(((SMALL_ROUNDS + BIG_ROUNDS - i) / BIG_ROUNDS))); do big_round 300000000; done
    big_round "$BIG_BYTES"
  done
  small=$(big_stats 300000000)
  big=$(big_stats "$BIG_BYTES")
  local table
  table=$(
    echo "| one file, generated CSV | backup: time, throughput, peak RSS (range) | dump (restore, verified, to /dev/null) | stored ratio |"
    echo "| --- | --- | --- | --- |"
    big_row "300 MB" "$SMALL_ROUNDS" "$small"
    big_row "$label" "$BIG_ROUNDS" "$big"
  )
  # shellcheck disable=SC2086 # two lines of numbers, split into words on purpose
  set -- $small $big
  goal "backup of $label, median peak RSS (the 300 MB file's: $(($3 / 1024)) MiB, at most $(($8 / 1024)))" "$((${13} / 1024))" "$(($8 / 1024))" " MiB"
  goal "dump of $label, median peak RSS (the 300 MB file's: $(($5 / 1024)) MiB, at most $((${10} / 1024)))" "$((${15} / 1024))" "$((${10} / 1024))" " MiB"
  goal "backup of $label, throughput below the 300 MB file's" \
    "$(awk -v a="$1" -v at="$2" -v b="${11}" -v bt="${12}" 'BEGIN {printf "%.1f", 100 * (1 - (b / bt) / (a / at))}')" 10 " %"
  goal "dump of $label, throughput below the 300 MB file's" \
    "$(awk -v a="$1" -v at="$4" -v b="${11}" -v bt="${14}" 'BEGIN {printf "%.1f", 100 * (1 - (b / bt) / (a / at))}')" 10 " %"
  with_goals "$table"
  table=$TABLE
  echo "$table"
  {
    echo
    echo "### One big file, $(date -u +%Y-%m-%d) — $(machine "$BIG_DATA")"
    echo
    echo "$table"
  } >> docs/benchmarks.md
}

ensure_restic() {
  command -v restic >/dev/null 2>&1 && command -v age >/dev/null 2>&1 && return
  echo "bench-scale: installing restic and age (Debian packages)" >&2
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q restic age >/dev/null
}

# The big export (scripts/gen-exports.py, 300 MB) by snapdrill, by restic and by the bare
# pipeline `tar | zstd -3 -T0 | age` (what snapdrill does at the least: no chunking, no
# dedup, no index, one recipient), ROUNDS times alternating; restores by both tools.
export_suite() {
  ensure_restic
  local dir=${BENCH_DIR:-bench-data}/scale-export out=""
  mkdir -p "$dir"
  if [ ! -f "$dir/exports.done" ]; then
    rm -rf "$dir/exports"
    scripts/gen-exports.py --out "$dir/exports" --size 300MB --seed 2026
    touch "$dir/exports.done"
  fi
  tar -cf - -C "$dir" exports | cat >/dev/null
  local recipient
  for _ in $(seq "$ROUNDS"); do
    rm -rf "$dir/sd" "$dir/sd-restored" "$dir/restic" "$dir/restic-restored" "$dir/bare.age"
    (cd "$dir" && new_repo sd '[[store]]
name = "local"
url = "store"
')
    export SNAPDRILL_CONFIG=$PWD/$dir/sd/snapdrill.toml
    recipient=$(grep -o 'age1[0-9a-z]*' "$dir/sd/snapdrill.toml" | head -1)
    export RESTIC_REPOSITORY=$PWD/$dir/restic RESTIC_PASSWORD=bench
    restic init -q >/dev/null
    local sb rb bb sr rr
    sync; sb=$(measure "$BIN" -q backup)
    sync; rb=$(cd "$dir" && measure restic backup -q exports)
    sync; bb=$(measure sh -c "tar -cf - -C '$dir' exports | zstd -q -3 -T0 | age -r $recipient > '$dir/bare.age'")
    sync; sr=$(measure "$BIN" -q restore latest --target "$dir/sd-restored")
    sync; rr=$(measure restic restore -q latest --target "$dir/restic-restored")
    out+="$sb $rb $bb $sr $rr"$'\n'
  done
  printf '%s' "$out" >"$dir/rounds.txt"
  local table
  table=$(awk "$ROUNDS_AWK"'
    { for (i = 1; i <= 10; i++) v[i, NR] = $i }
    END {
      sb = med(1); rb = med(3); bb = med(5); sr = med(7); rr = med(9)
      print "| 300 MB export | snapdrill | restic 0.14 | bare tar \\| zstd -3 -T0 \\| age | snapdrill / restic | snapdrill / bare |"
      print "| --- | --- | --- | --- | --- | --- |"
      printf "| full backup | %.2f s / %d MiB | %.2f s / %d MiB | %.2f s | %.2f× | %.2f× |\n", sb, med(2) / 1024, rb, med(4) / 1024, bb, sb / rb, sb / bb
      printf "| restore (snapdrill: durable) | %.2f s / %d MiB | %.2f s / %d MiB | — | %.2f× | — |\n", sr, med(8) / 1024, rr, med(10) / 1024, sr / rr
      printf "%.2f %.2f %.2f\n", sb / rb, sb / bb, sr / rr > "/dev/stderr"
    }' "$dir/rounds.txt" 2>"$dir/ratios.txt")
  local to_restic to_bare restore_ratio
  read -r to_restic to_bare restore_ratio < "$dir/ratios.txt"
  goal "full backup of the 300 MB export, time to restic's" "$to_restic" 0.3 ×
  goal "full backup of the 300 MB export, time to the bare pipeline's" "$to_bare" 1.4 ×
  goal "restore of the 300 MB export, time to restic's" "$restore_ratio" 0.6 ×
  with_goals "$table"
  table=$TABLE
  echo "$table"
  {
    echo
    echo "### Big export, $(date -u +%Y-%m-%d) — $(machine "$dir") ($ROUNDS rounds, medians)"
    echo
    echo "$table"
  } >> docs/benchmarks.md
}

small_suite() {
ensure_restic

mkdir -p "$DATA"
if [ ! -f "$DATA/tree.done" ]; then
  rm -rf "$DATA/exports"
  python3 - "$DATA/exports" "$FILES" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(14)
for i in range(n):
    d = os.path.join(root, f"d{i // 100:05}")
    if i % 100 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i % 100:03}.csv"), "wb") as f:
        f.write(rng.randbytes(rng.randint(200, 1800)))
PY
  touch "$DATA/tree.done"
fi

# Dirty pages of the previous step (the other tool's writes) are flushed first, so that
# neither tool's syncs pay for the other's writes.
settle() { sync; sleep 2; }

# Every restore goes to a fresh ext4 filesystem (journaled, as on most hosts) made in an
# image file for it, when run as root: this kind of VM's own disk is ext4 without a
# journal, where inodes freed in the last minutes are skipped one by one when new ones are
# allocated — a restore right after the `rm -rf` of another took 3-8 times as long,
# whichever tool ran it, and the ratio depended on the order of the rounds. Without root,
# restores go to folders of their own, removed when the suite ends.
RESTORED=$DATA/restored
rm -rf "$RESTORED"
mkdir -p "$RESTORED"
cleanup_restored() {
  mountpoint -q "$RESTORED" && umount "$RESTORED"
  rm -rf "$RESTORED" "$DATA/restore.img"
}
trap cleanup_restored EXIT
fresh_target() { # NAME: prints the folder to restore into
  if [ "$(id -u)" -ne 0 ] || ! command -v mkfs.ext4 >/dev/null; then
    mktemp -d "$RESTORED/$1-XXXXXX" # empty, and a new one every round
    return
  fi
  mountpoint -q "$RESTORED" && umount "$RESTORED"
  rm -f "$DATA/restore.img"
  truncate -s $((FILES * 16 / 1000 + 2000))M "$DATA/restore.img"
  mkfs.ext4 -q -F -N $((FILES * 2 + 10000)) "$DATA/restore.img"
  mount -o loop "$DATA/restore.img" "$RESTORED"
  echo "$RESTORED/$1"
}

# One round of one tool: backup, unchanged backup, restore, then (snapdrill) a drill that
# verifies every byte and a sampled drill (10 %, verified only). Prints
# "b_s b_kib u_s u_kib r_s r_kib d_s d_kib s_s s_kib".
snapdrill_round() {
  rm -rf "$DATA/sd"
  (cd "$DATA" && new_repo sd '[[store]]
name = "local"
url = "store"
')
  export SNAPDRILL_CONFIG=$PWD/$DATA/sd/snapdrill.toml
  local b u r d s
  settle; b=$(measure "$BIN" -q backup)
  settle; u=$(measure "$BIN" -q backup)
  local target
  target=$(fresh_target sd)
  settle; r=$(measure "$BIN" -q restore latest --target "$target")
  settle; d=$(measure "$BIN" -q restore-drill --verify-only)
  settle; s=$(measure "$BIN" -q restore-drill --verify-only --sample 10%)
  echo "$b $u $r $d $s"
}

restic_round() {
  rm -rf "$DATA/restic"
  export RESTIC_REPOSITORY=$PWD/$DATA/restic RESTIC_PASSWORD=bench
  restic init -q >/dev/null
  local b u r
  settle; b=$(cd "$DATA" && measure restic backup -q exports)
  settle; u=$(cd "$DATA" && measure restic backup -q exports)
  local target
  target=$(fresh_target restic)
  settle; r=$(measure restic restore -q latest --target "$target")
  echo "$b $u $r 0 0 0 0"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Read the tree once first, so that the first tool to run does not pay for a cold page
# cache (through a pipe: GNU tar skips reading when it writes to /dev/null).
tar -cf - -C "$DATA" exports | cat >/dev/null
: > "$DATA/sd.txt"; : > "$DATA/restic.txt"
for _ in $(seq "$ROUNDS"); do
  snapdrill_round >> "$DATA/sd.txt"
  restic_round >> "$DATA/restic.txt"
done

col() { awk -v c="$2" '{print $c}' "$1" | median; }
row() {
  local what=$1 t=$2 m=$3 st sm rt rm
  st=$(col "$DATA/sd.txt" "$t"); sm=$(col "$DATA/sd.txt" "$m")
  rt=$(col "$DATA/restic.txt" "$t"); rm=$(col "$DATA/restic.txt" "$m")
  printf '| %s | %s s / %s MiB | %s s / %s MiB | %s× |\n' "$what" "$st" "$((sm / 1024))" \
    "$rt" "$((rm / 1024))" "$(awk -v a="$st" -v b="$rt" 'BEGIN {printf "%.2f", a / b}')"
}
table=$(
  echo "| $FILES small files | snapdrill: time / peak RSS | restic $(restic version | awk '{print $2}') | time ratio |"
  echo "| --- | --- | --- | --- |"
  row "backup" 1 2
  row "unchanged re-run" 3 4
  if [ "$(id -u)" -eq 0 ]; then
    row "restore to a fresh ext4 (snapdrill: durable)" 5 6
  else
    row "restore (snapdrill: durable)" 5 6
  fi
  printf '| restore-drill --verify-only (snapdrill only) | %s s / %s MiB | — | — |\n' \
    "$(col "$DATA/sd.txt" 7)" "$(($(col "$DATA/sd.txt" 8) / 1024))"
  printf '| restore-drill --verify-only --sample 10%% (snapdrill only) | %s s / %s MiB | — | — |\n' \
    "$(col "$DATA/sd.txt" 9)" "$(($(col "$DATA/sd.txt" 10) / 1024))"
)
ratio() { awk -v a="$(col "$DATA/sd.txt" "$1")" -v b="$(col "$DATA/restic.txt" "$1")" 'BEGIN {printf "%.2f", a / b}'; }
mib() { echo $(($(col "$DATA/sd.txt" "$1") / 1024)); }
goal "restore of $FILES small files, time to restic's" "$(ratio 5)" 0.7 ×
goal "backup of $FILES files, time to restic's" "$(ratio 1)" 0.5 ×
goal "unchanged re-run of $FILES files, time to restic's" "$(ratio 3)" 0.5 ×
goal "backup of $FILES files, peak RSS" "$(mib 2)" 256 " MiB"
goal "unchanged re-run of $FILES files, peak RSS" "$(mib 4)" 256 " MiB"
goal "restore of $FILES files, peak RSS" "$(mib 6)" 256 " MiB"
goal "restore-drill --verify-only of $FILES files, peak RSS" "$(mib 8)" 256 " MiB"
goal "restore-drill --sample 10% of $FILES files, peak RSS" "$(mib 10)" 256 " MiB"
with_goals "$table"
table=$TABLE
echo "$table"
{
  echo
  echo "### Small files, $(date -u +%Y-%m-%d) — $(machine "$DATA") ($ROUNDS rounds, medians)"
  echo
  echo "$table"
} >> docs/benchmarks.md
}

for suite in $SUITES; do
  case $suite in
    small) small_suite ;;
    history) history_suite ;;
    big) big_suite ;;
    export) export_suite ;;
    *) echo "bench-scale: unknown suite '$suite' (small, history, big, export)" >&2; exit 2 ;;
  esac
done
