#!/usr/bin/env bash
# Builds node-doctor (release) and diagnoses this machine. Extra arguments go to `check`,
# e.g. scripts/check-host.sh --format json
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p node-doctor
# Wherever cargo puts its build (CARGO_TARGET_DIR, a config file), ask it.
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
exec "$target/release/node-doctor" check "$@"
