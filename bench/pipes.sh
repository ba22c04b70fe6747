#!/usr/bin/env bash
# Pipe scan benchmark (issue: pipe quota). N idle processes each holding 2 pipes (both ends,
# 4 fds), then, side by side in the same run:
#   ls -l /proc/[0-9]*/fd      (the baseline: what an SRE runs to find pipes by hand)
#   pipe_scan                  (node-doctor's pipe scan alone: every fd's link read, every
#                               pipe sized once with pidfd_getfd + F_GETPIPE_SZ + FIONREAD)
# Target at N=10000: pipe_scan <= 1x ls's time.
# Usage: bench/pipes.sh [N...]   (default 1000 10000); builds the example in release.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rounds=${ROUNDS:-5}
(cd "$here/.." && cargo build --release -p node-doctor-host --example pipe_scan -q)
bin=$here/../target/release/examples/pipe_scan
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(1000 10000)
echo "pipe scan benchmark on $(uname -r), $(nproc) cores, $(date -u +%F)"
for n in "${sizes[@]}"; do
  coproc HOLD { PIPES=2 python3 "$here/spawn_idle.py" "$n"; }
  read -r _ <&"${HOLD[0]}"
  echo "N=$n processes holding 2 pipes each: $("$bin")"
  python3 "$here/run_compare.py" "$rounds" \
    -- "ls -l" sh -c 'ls -l /proc/[0-9]*/fd >/dev/null 2>&1; exit 0' \
    -- pipe_scan "$bin"
  exec {HOLD[1]}>&-
  wait "$HOLD_PID" 2>/dev/null || true
done
