#!/usr/bin/env bash
# Writes a format test vector: a tiny repository made by THIS version with a TEST identity.
# Vectors are made once per format version and never edited afterwards (tests/format_vectors.rs
# restores every one of them forever). Usage: scripts/make-format-vector.sh fixtures/vectors/vN
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: make-format-vector.sh fixtures/vectors/vN}
# shellcheck source=scripts/cargo-bin.sh
. scripts/cargo-bin.sh
if [ -z "${BIN:-}" ]; then
  cargo build --quiet
  BIN=$(cargo_bin debug snapdrill)
fi
[ -e "$OUT" ] && { echo "$OUT exists: vectors are never regenerated" >&2; exit 1; }
version=$(basename "$OUT")
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

src=$work/vector
mkdir -p "$src/sub/dir" "$src/emptydir"
printf 'hello, snapdrill\n' > "$src/hello.txt"
: > "$src/empty"
printf 'x' > "$src/one"
printf 'customer_id,name,address\n1,佐藤 健,東京都新宿区西新宿2-8-1\n2,Jane Roe,"1 Main St, Seattle"\n' > "$src/顧客.csv"
printf '{"call_id": 1, "outcome": "resolved"}\n' > "$src/sub/dir/deep.json"
ln -s hello.txt "$src/link"
chmod 0640 "$src/顧客.csv"; chmod 0755 "$src/sub"
find "$src" -exec touch -h -d '2026-11-27 02:30:00.123456789 UTC' {} +

mkdir -p "$OUT"
"$BIN" keygen -o "$OUT/identity.txt" > /dev/null
sed -i '1i # TEST KEY ONLY: published in the snapdrill repository for format test vectors. Never use it for real data.' "$OUT/identity.txt"
cat > "$OUT/snapdrill.toml" <<TOML
# Format test vector $version (TEST KEY ONLY). Restored by tests/format_vectors.rs.
[repository]
recipients = ["$(grep -o 'age1[a-z0-9]*' "$OUT/identity.txt")"]
identity = "identity.txt"
write_key = "$work/write.key"
cache_dir = "$work/cache"
state_dir = "$work/state"

[[store]]
name = "vector"
url = "store"
TOML
export SNAPDRILL_CONFIG=$OUT/snapdrill.toml
"$BIN" -q init --create > /dev/null
# From format 2 on, the snapshot records its job (here named on the command line).
"$BIN" -q backup --job vector --host vector-host --tag vector "$src" > /dev/null
# From format 3 on, objects are encrypted to a read key sealed in `config`; a rekey moves
# them to a new one and re-signs the commit (version 3, manifest `-k<generation>`).
"$BIN" -q rekey > /dev/null
# From format 4 on, the commit names object lists (`lists/`) instead of its chunks; rekey
# writes new lists for the moved chunks and leaves the old one for prune.
sed -i "/^write_key\|^cache_dir\|^state_dir/d" "$OUT/snapdrill.toml"
(cd "$src/.." && find vector -type f -exec sha256sum {} + | LC_ALL=C sort -k2) > "$OUT/expected.sha256"
(cd "$src/.." && find vector -printf '%y %m %p %l\n' | LC_ALL=C sort -k3) > "$OUT/expected-tree.txt"
echo "wrote $OUT"
