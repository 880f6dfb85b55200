#!/usr/bin/env bash
# Install snapdrill under PREFIX (inside DESTDIR when staging a package): the binary, one
# man page per command, bash/zsh/fish completions, the systemd units and an example config.
#
#   scripts/install.sh [PREFIX [DESTDIR]]       (make install PREFIX=/usr/local DESTDIR=)
#
# The binary is $SNAPDRILL_BIN when set (a build you already have), else the release build
# (built here; wherever cargo puts it: CARGO_TARGET_DIR, a shared target dir).
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=${1:-/usr/local}
DESTDIR=${2:-}
CARGO=${CARGO:-cargo}

if [ -z "${SNAPDRILL_BIN:-}" ]; then
  $CARGO build --release --locked --quiet
  # shellcheck source=scripts/cargo-bin.sh
  . scripts/cargo-bin.sh
  SNAPDRILL_BIN=$(cargo_bin release snapdrill)
fi
[ -x "$SNAPDRILL_BIN" ] || { echo "install.sh: no binary at $SNAPDRILL_BIN" >&2; exit 1; }

root="$DESTDIR$PREFIX"
bindir="$PREFIX/bin"
install -d "$root/bin" "$root/share/man/man1" "$root/lib/systemd/system" \
  "$root/share/bash-completion/completions" "$root/share/zsh/site-functions" \
  "$root/share/fish/vendor_completions.d" "$root/share/doc/snapdrill/examples"
install -m 0755 "$SNAPDRILL_BIN" "$root/bin/snapdrill"

# Man pages and completions come from the binary's own command definitions.
pages=$(mktemp -d)
trap 'rm -rf "$pages"' EXIT
"$SNAPDRILL_BIN" manpages "$pages"
for page in "$pages"/*.1; do
  gzip -9n < "$page" > "$root/share/man/man1/$(basename "$page").gz"
  chmod 0644 "$root/share/man/man1/$(basename "$page").gz"
done
"$SNAPDRILL_BIN" completions bash > "$root/share/bash-completion/completions/snapdrill"
"$SNAPDRILL_BIN" completions zsh > "$root/share/zsh/site-functions/_snapdrill"
"$SNAPDRILL_BIN" completions fish > "$root/share/fish/vendor_completions.d/snapdrill.fish"

# systemd units, pointing at the installed binary.
for unit in dist/systemd/*.service dist/systemd/*.timer; do
  sed "s|@BINDIR@|$bindir|g" "$unit" > "$root/lib/systemd/system/$(basename "$unit")"
  chmod 0644 "$root/lib/systemd/system/$(basename "$unit")"
done

install -m 0644 fixtures/configs/jobs.toml "$root/share/doc/snapdrill/examples/snapdrill.toml"
install -m 0644 fixtures/configs/full.toml "$root/share/doc/snapdrill/examples/snapdrill-every-key.toml"
install -m 0644 README.md docs/operations.md "$root/share/doc/snapdrill/"
chmod 0644 "$root"/share/bash-completion/completions/snapdrill "$root"/share/zsh/site-functions/_snapdrill \
  "$root"/share/fish/vendor_completions.d/snapdrill.fish
echo "installed snapdrill into ${DESTDIR}${PREFIX} (units in $PREFIX/lib/systemd/system: systemctl daemon-reload)"
