#!/usr/bin/env bash
# Build the Debian package with cargo-deb (installed here when missing): the release binary,
# man pages, completions, systemd units and example configs, staged by scripts/install.sh
# under dist/staging/ as they will lie under /usr. Prints the .deb's path; install it with
# `sudo apt install ./snapdrill_*.deb`.
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}

if ! $CARGO deb --version >/dev/null 2>&1; then
  echo "deb.sh: installing cargo-deb (cargo install --locked cargo-deb)" >&2
  $CARGO install --locked --quiet cargo-deb
fi
rm -rf dist/staging
scripts/install.sh /usr "$PWD/dist/staging" >/dev/null
# The binary is already built and staged: cargo-deb only packs (its asset list is in
# Cargo.toml, [package.metadata.deb]).
$CARGO deb --no-build --output "${DEB_OUTPUT:-$PWD/dist}"
