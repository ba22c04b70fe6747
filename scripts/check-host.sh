#!/usr/bin/env bash
# Builds node-doctor (release) and diagnoses this machine. Extra arguments go to `check`,
# e.g. scripts/check-host.sh --format json
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
exec ./target/release/node-doctor check "$@"
