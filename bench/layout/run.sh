#!/usr/bin/env bash
# Regenerates crates/node-doctor/symbol-order.txt, the order in which the linker lays out
# node-doctor's functions in a release build (issue: log rules, peak RSS <= 10 MiB).
#
# Why: a one-shot run executes ~1.5 MiB of the binary's 9 MiB of text, scattered, and every
# page it touches brings its neighbours into the process (the kernel maps 64 KiB around a
# fault, or a large folio whole): before the ordering, 4.4 MiB of text were resident for a
# `logs` run. Laid out together, the code a run executes costs about what it is.
#
# How: build, run real workloads under page_trace.so (LD_PRELOAD: each page of node-doctor's
# text executed, recorded at page granularity), and list the functions of those pages, in
# groups: the `logs` one-shot first, then `check` (and `checks`, `explain`), then the agent
# (metrics only, one scrape). Run as root (check and the agent read the whole host).
# Then rebuild (`cargo build --release`) and measure: bench/logs/run.sh.
# Usage: bench/layout/run.sh
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "run as root: check and the agent read the whole host" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$top/target}
(cd "$top" && cargo build --release -q -p node-doctor)
bin=$target/release/node-doctor
work=$(mktemp -d)
agent_pid=
cleanup() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cc -O2 -shared -fPIC -o "$work/page_trace.so" "$here/page_trace.c"
traced() { # GROUP CMD...: run CMD under the tracer, its traces named after GROUP
  local group=$1 rc=0; shift
  PAGE_TRACE_OUT=$work/$group LD_PRELOAD=$work/page_trace.so "$@" >/dev/null || rc=$?
  # 0 and 1 (findings at or above --fail-on) are runs that did their work; anything else
  # (a crash under the tracer, a renamed flag) would leave a group short, silently.
  [ "$rc" -le 1 ] || { echo "traced run failed ($rc): $*" >&2; exit 1; }
}

python3 "$top/bench/logs/gen_kernlog.py" 200000 "$work/kern.log"
sed "s#LOGPATH#kern.log#" "$top/bench/logs/npd-kernel-monitor.json" > "$work/npd.json"
traced logs "$bin" logs --root "$work" --source file:kern.log --format json
traced logs "$bin" logs --root "$work" --source file:kern.log
traced logs "$bin" logs --root "$work" --rules "$work/npd.json" --no-default-rules --format json
traced logs "$bin" logs

traced check "$bin" check
traced check "$bin" check --format json
traced check "$bin" checks
traced check "$bin" explain pid-exhaustion

get() { python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5).read()' "$1"; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# Not through traced(): $! must be the agent itself, for the TERM.
PAGE_TRACE_OUT=$work/agent LD_PRELOAD=$work/page_trace.so "$bin" agent --no-kubernetes --listen "127.0.0.1:$port" --state-dir "$work/state" \
  >/dev/null 2>&1 &
agent_pid=$!
for _ in $(seq 100); do
  get "http://127.0.0.1:$port/readyz" 2>/dev/null && break
  sleep 0.1
done
sleep 5
get "http://127.0.0.1:$port/metrics"
get "http://127.0.0.1:$port/findings"
kill -TERM "$agent_pid"
rc=0; wait "$agent_pid" || rc=$?
agent_pid=
[ "$rc" = 0 ] || { echo "the traced agent exited with $rc" >&2; exit 1; }

list() { ls "$work"/"$1".* 2>/dev/null | paste -sd, ; }
for g in logs check agent; do
  [ -n "$(list "$g")" ] || { echo "no trace for $g" >&2; exit 1; }
done
python3 "$here/symbol_order.py" "$bin" "$top/crates/node-doctor/symbol-order.txt" \
  "logs=$(list logs)" "check=$(list check)" "agent=$(list agent)"
echo "wrote crates/node-doctor/symbol-order.txt; rebuild with cargo build --release"
