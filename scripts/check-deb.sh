#!/usr/bin/env bash
# The package's acceptance on this machine (Debian): build it (make deb), install it with
# apt, open a man page, verify every systemd unit, find the completions — then remove it
# again unless KEEP=1. Needs root or sudo. Not part of `make test` (a release build, and it
# installs into /usr).
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

deb=$(scripts/deb.sh | tail -1)
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$deb" >/dev/null
snapdrill --version
man snapdrill-backup | grep -q -- '--metrics-file'
echo "man snapdrill-backup: ok"
for unit in /usr/lib/systemd/system/snapdrill-*; do
  out=$(systemd-analyze verify "$unit" 2>&1)
  [ -z "$out" ] || { echo "systemd-analyze verify $unit:" >&2; echo "$out" >&2; exit 1; }
  echo "systemd-analyze verify $(basename "$unit"): ok"
done
test -s /usr/share/bash-completion/completions/snapdrill
test -s /usr/share/zsh/vendor-completions/_snapdrill
test -s /usr/share/fish/vendor_completions.d/snapdrill.fish
echo "completions: ok"
if [ "${KEEP:-0}" != 1 ]; then
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q snapdrill >/dev/null
fi
echo "check-deb.sh: $deb installs and works"
