#!/usr/bin/env bash
# Every check CI runs (.ci/run -> make test): format, clippy with warnings denied, every
# test (nextest when installed), the doc build, and a check that the tests left the
# working tree as they found it.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}

state() { git status --porcelain=v1 --untracked-files=all 2>/dev/null | sha256sum || true; }
before=$(state)

scripts/ensure-tools.sh
scripts/servers.sh install all   # moto (S3), Azurite (Azure), rclone (WebDAV) for tests/servers.rs
$CARGO fmt --all -- --check
$CARGO clippy --all-targets --quiet -- -D warnings
if command -v cargo-nextest >/dev/null 2>&1; then
  $CARGO nextest run --no-fail-fast --status-level fail --final-status-level slow
else
  $CARGO test --no-fail-fast
fi
$CARGO test --doc --quiet
RUSTDOCFLAGS="-D warnings" $CARGO doc --no-deps --quiet

if [ "$before" != "$(state)" ]; then
  echo "test.sh: the tests changed the working tree:" >&2
  git status --short >&2
  exit 1
fi
echo "test.sh: all checks passed"
