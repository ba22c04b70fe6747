#!/usr/bin/env bash
# Scan benchmark (issues: foundation, core). For N idle processes, times
#   node-doctor check --window 0 --format json      (one sample, all checks)
# against, in the same run,
#   ps -e -o pid,ppid,stat,nlwp,uid,comm            (the baseline)
#   minimal_reader                                  (a C loop reading the same five files
#                                                    per process: the floor)
# and reports medians, peak RSS and the ratios against ps. Target at N=10000: <= 1x ps (the
# C loop's ratio is the goal).
# Usage: bench/scan.sh [N...]   (default 1000 5000 10000); needs a release build.
# ZOMBIES=K makes K of the N processes unreaped zombies (the process-health checks then
# group them and report); default 0.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${NODE_DOCTOR_BIN:-$here/../target/release/node-doctor}
rounds=${ROUNDS:-7}
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 2; }
reader=$(mktemp -d)/minimal_reader
trap 'rm -rf "$(dirname "$reader")"' EXIT
gcc -O2 -o "$reader" "$here/minimal_reader.c"
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(1000 5000 10000)
echo "scan benchmark on $(uname -r), $(nproc) cores, $(date -u +%F)"
for n in "${sizes[@]}"; do
  coproc HOLD { python3 "$here/spawn_idle.py" "$n" "${ZOMBIES:-0}"; }
  read -r _ <&"${HOLD[0]}"
  echo "N=$n idle processes, ${ZOMBIES:-0} of them zombies ($(ls -d /proc/[0-9]* | wc -l) in /proc)"
  python3 "$here/run_compare.py" "$rounds" \
    -- ps ps -e -o pid,ppid,stat,nlwp,uid,comm \
    -- c-reader "$reader" \
    -- node-doctor "$bin" check --window 0 --format json --fail-on critical
  exec {HOLD[1]}>&-
  wait "$HOLD_PID" 2>/dev/null || true
done
