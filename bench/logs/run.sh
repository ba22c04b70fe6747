#!/usr/bin/env bash
# Log monitor benchmark (issue: log monitor). Generates a kernel log of N lines (1% matching
# lines of several kinds, the rest realistic noise), then, side by side in the same run:
#   grep -P -c '<union of the default pack's patterns>' FILE    (the baseline: PCRE, since
#                                    the patterns use \d; grep -E would silently miscount)
#   node-doctor logs --source file:FILE --format json            (the full default pack,
#                                    findings with subjects)
# and reports medians, peak RSS and the ratio; both must count the same matching lines.
# Targets: no slower than grep -P, <= 10 MiB peak RSS, memory constant as the file grows.
# For reference (the issue's numbers, NPD head built on this machine kind, 200000 lines,
# 25 MB): NPD took ~0.85 s CPU with its 6 stock kernel rules and 2.2 s with a 15-rule pack,
# at 45-64 MiB peak RSS.
# Usage: bench/logs/run.sh [LINES...]   (default 200000 2000000)
set -euo pipefail
# grep -P cannot take the same group name twice: names are dropped for the union.
here=$(cd "$(dirname "$0")" && pwd)
top=$here/../..
rounds=${ROUNDS:-5}
(cd "$top" && cargo build --release -q && cargo build --release -q -p node-doctor-core --example rule_patterns)
bin=$top/target/release/node-doctor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
union=$("$top/target/release/examples/rule_patterns" | sed -e 's/(?P<[a-z_]*>/(/g' -e 's/.*/(?:&)/' | paste -sd'|')
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(200000 2000000)
echo "log monitor benchmark on $(uname -r), $(nproc) cores, $(date -u +%F); $("$top/target/release/examples/rule_patterns" | wc -l) rules"
for n in "${sizes[@]}"; do
  log=$work/kern-$n.log
  python3 "$here/gen_kernlog.py" "$n" "$log"
  grep_count=$(grep -P -c "$union" "$log" || true)
  nd_count=$({ "$bin" logs --root "$work" --source "file:kern-$n.log" --format json || true; } |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(f["log"]["count"] for f in d["findings"]))')
  echo "N=$n lines, $(du -h "$log" | cut -f1); matching lines: grep -P $grep_count, node-doctor $nd_count (a line two rules match counts twice)"
  python3 "$top/bench/run_compare.py" "$rounds" \
    -- "grep -P" grep -P -c "$union" "$log" \
    -- node-doctor "$bin" logs --root "$work" --source "file:kern-$n.log" --format json --fail-on critical
done
