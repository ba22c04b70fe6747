#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what is missing, then formatting,
# lints, and every test (unit, fixture, CLI, and live tests that create real faults; they
# need root). Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked --all-targets
