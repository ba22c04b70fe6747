#!/usr/bin/env bash
# Installs what the tests and benchmarks need and this machine lacks. Idempotent: a package
# already installed is not touched, and apt-get runs only when something is missing.
set -euo pipefail

# Debian packages the test suite uses:
#   procps     - ps, the benchmark's baseline and a test helper
#   time       - GNU time, peak RSS in the benchmarks
#   util-linux - mount/umount for the tmpfs filesystems the disk tests make; unshare for
#                the sysctl namespace tests; prlimit for the core dump tests
#   python3    - the benchmark helpers, fixture capture, and the live tests' fault makers
#                (zombie parents, fd holders, the FUSE server that never answers)
#   fuse3      - fusermount3, to unmount the dead FUSE mount the D-state tests make (the
#                test's server speaks /dev/fuse itself; the kernel's fuse module is built in)
#   containerd, runc, busybox-static
#              - a real container for the pipe-quota test (ctr run --rootfs of a busybox
#                rootfs; containerd is started by the test with everything under a temp dir)
#   systemd-journal-remote
#              - writes real journal files from export-format input for the journal tests
#   docker-registry
#              - a real registry on loopback for the slow image pull test (live_cri.rs; the
#                test starts it on a free port with its storage in a temp dir)
#   gcc        - compiles the kubelet-shaped process of the kubelet tests (a program named
#                kubelet that takes real kubelet flags)
#   ripgrep    - rg, the log benchmark's baseline (bench/logs: the same patterns, `rg -c`)
packages=(procps time util-linux python3 fuse3 containerd runc busybox-static systemd-journal-remote docker-registry gcc ripgrep)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# promtool and prometheus (Debian's `prometheus`) for the agent's metrics tests: the package
# is downloaded and unpacked under target/tools, not installed (no server is started by it).
tools=${ND_TOOLS_DIR:-$(cd "$(dirname "$0")/.." && pwd)/target/tools}
if [ ! -x "$tools/prometheus/usr/bin/promtool" ] || [ ! -x "$tools/prometheus/usr/bin/prometheus" ]; then
  echo "unpacking Debian's prometheus (promtool, prometheus) into $tools/prometheus"
  mkdir -p "$tools"
  dl=$(mktemp -d)
  chmod 777 "$dl"
  (cd "$dl" && { apt-get download -qq prometheus 2>/dev/null || { apt-get update -qq && apt-get download -qq prometheus; }; })
  rm -rf "$tools/prometheus"
  dpkg-deb -x "$dl"/prometheus_*.deb "$tools/prometheus"
  rm -rf "$dl"
fi

command -v cargo >/dev/null || { echo "cargo is missing: this machine kind ships a Rust toolchain" >&2; exit 1; }
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt 2>/dev/null || true
