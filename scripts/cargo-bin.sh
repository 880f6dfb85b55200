# shellcheck shell=bash
# Sourced by the scripts: where cargo puts its build outputs, whatever the user's cargo
# settings say (CARGO_TARGET_DIR, build.target-dir in a cargo config, a shared target dir).
#
#   . scripts/cargo-bin.sh; BIN=$(cargo_bin debug snapdrill)

# cargo_bin PROFILE NAME: the path of a binary cargo builds (PROFILE: debug or release;
# NAME may be examples/NAME).
cargo_bin() {
  local dir
  dir=$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  printf '%s/%s/%s\n' "$dir" "$1" "$2"
}
