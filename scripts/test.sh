#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what is missing, then formatting,
# lints, the hermetic tests (unit, fixture, CLI: no root, no packages, no network; run once
# as root and once more as an unprivileged user), and the live tests that create real
# faults on this host (root; cgroups, sysctls, FUSE, containerd). Exits non-zero on the
# first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy --workspace --all-targets --locked --features node-doctor/live -- -D warnings
# The pure core must build without any IO crate.
if cargo tree -p node-doctor-core -e normal --prefix none | grep -E '^(rustix|sdjournal|procfs-core|procfs|tokio|kube|nix) '; then
  echo "node-doctor-core depends on an IO crate" >&2; exit 1
fi
cargo test --workspace --locked
bash scripts/test-unprivileged.sh
# The live tests: real faults on this host (one test binary at a time: they share sysctls,
# cgroups and mounts; tests/common/faults.rs serializes those within and across binaries).
tools=${ND_TOOLS_DIR:-$PWD/target/tools}
ND_PROMTOOL=$tools/prometheus/usr/bin/promtool ND_PROMETHEUS=$tools/prometheus/usr/bin/prometheus \
  cargo test --locked -p node-doctor --features live
