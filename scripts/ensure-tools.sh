#!/usr/bin/env bash
# Install the command-line tools the tests, the demo and the benchmark use, when missing:
# the stock `age` and `zstd` (tests prove every object opens with them), `sha256sum`
# (coreutils), `ssh-keygen` (SSH recipients: openssh-client), GNU `time` (peak memory in
# the benchmark), and for the drill-report tests
# `chromium` (the HTML report is rendered headless and screenshot, and printed to PDF), a
# Japanese font (`fonts-noto-cjk`: the Japanese report must render without tofu),
# `pdftotext` (`poppler-utils`: the PDF's text is read back), and `promtool` (from
# `prometheus`: checks the metrics textfiles), `faketime` (the prune test runs prune with its
# clock two days ahead), `systemd-analyze` (systemd) and `man` (man-db) for the install test;
# `python3` (the demo's summary, the test servers' helper), and for the
# test servers (scripts/servers.sh) `python3-venv` (moto) and `npm` (Azurite). Debian
# packages only. Nothing to install: nothing is run, no root or sudo needed. As a user,
# sudo asks for the password on a terminal; without one it must not need it (`sudo -n`).
set -euo pipefail

need=()
command -v age >/dev/null 2>&1 || need+=(age)
command -v zstd >/dev/null 2>&1 || need+=(zstd)
command -v sha256sum >/dev/null 2>&1 || need+=(coreutils)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
command -v python3 >/dev/null 2>&1 || need+=(python3)
[ -x /usr/bin/time ] || need+=(time)
if [ "${1:-}" != "--minimal" ]; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v pdftotext >/dev/null 2>&1 || need+=(poppler-utils)
  command -v fc-list >/dev/null 2>&1 || need+=(fontconfig)
  if ! command -v fc-list >/dev/null 2>&1 || [ -z "$(fc-list :lang=ja 2>/dev/null)" ]; then
    need+=(fonts-noto-cjk)
  fi
  command -v promtool >/dev/null 2>&1 || need+=(prometheus)
  # The prune test moves the pruning process's clock two days ahead with libfaketime.
  command -v faketime >/dev/null 2>&1 || need+=(faketime)
  # scripts/servers.sh installs moto into a venv and Azurite with npm.
  python3 -c 'import ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
  command -v npm >/dev/null 2>&1 || need+=(npm)
  # tests/install.rs: `systemd-analyze verify` on every unit, `man` on the installed pages.
  command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
  command -v man >/dev/null 2>&1 || need+=(man-db)
fi

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

echo "ensure-tools: installing ${need[*]} (Debian packages)" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "ensure-tools: need root (or sudo) to install: ${need[*]}; install them, then run this again" >&2
    exit 1
  fi
  if [ -t 0 ]; then
    sudo="sudo"
    # Ask for the password once, visibly, before the quiet install below.
    sudo -v -p "ensure-tools: sudo password to install ${need[*]}: " || exit 1
  else
    sudo="sudo -n"  # no terminal (CI, cron): fail at once rather than wait for a password
  fi
fi
# Refresh the package index only when an install fails without it (it is slow).
if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null 2>&1; then
  $sudo apt-get update -q >/dev/null
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi
for tool in age zstd sha256sum ssh-keygen; do
  command -v "$tool" >/dev/null 2>&1 || { echo "ensure-tools: $tool is still missing" >&2; exit 1; }
done
