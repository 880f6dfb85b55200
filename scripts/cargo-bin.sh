# shellcheck shell=bash
# Sourced by the scripts: where cargo puts its build outputs, whatever the user's cargo
# settings say (CARGO_TARGET_DIR, build.target-dir in a cargo config, a shared target dir).
#
#   . scripts/cargo-bin.sh; BIN=$(cargo_bin debug snapdrill)

# cargo_bin PROFILE NAME: the path of a binary cargo builds (PROFILE: debug or release;
# NAME may be examples/NAME). Asks cargo itself (no python needed on a fresh machine).
cargo_bin() {
  local dir
  dir=$(${CARGO:-cargo} metadata --format-version 1 --no-deps --offline 2>/dev/null \
    || ${CARGO:-cargo} metadata --format-version 1 --no-deps)
  dir=$(printf '%s' "$dir" | sed -n 's/.*"target_directory":"\(\([^"\\]\|\\.\)*\)".*/\1/p' | sed 's/\\\(.\)/\1/g')
  if [ -z "$dir" ]; then
    echo "cargo-bin.sh: cargo metadata did not say where the target directory is" >&2
    return 1
  fi
  printf '%s/%s/%s\n' "$dir" "$1" "$2"
}
