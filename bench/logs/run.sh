#!/usr/bin/env bash
# Log monitor benchmark (issues: log monitor; log rules at ripgrep's speed). Generates a
# syslog-form kernel log of N lines (1% matching lines of several kinds, the rest realistic
# noise), then, side by side in the same run, ROUNDS rounds interleaved:
#
#   1. the default pack: `rg -c` with the union of the pack's patterns (the baseline: the same
#      regex engine family), `rg -c --no-unicode` (ASCII classes, as the rules use), `grep -P
#      -c` (PCRE, the older baseline; GREP=0 skips it), and `node-doctor logs --source
#      file:FILE --format json` (the whole pack, findings with subjects);
#   2. an NPD config of 8 rules (npd-kernel-monitor.json: NPD's kernel-monitor rules over
#      /var/log/kern.log with its filelog `message` extractor): `rg -c` with the 8 patterns,
#      each anchored at the line's end as NPD anchors them (it appends \z), and `node-doctor
#      logs --rules CONFIG --no-default-rules`.
#
# Each comparison checks that the counts agree (node-doctor: the sum of its findings' line
# counts; a line two rules match would count twice), then reports median wall time, CPU and
# peak RSS (bench/run_compare.py). Targets: <= 1x `rg -c` at 200k and 2M lines for both,
# <= 10 MiB peak RSS, constant as the file grows.
#
# Both run twice: on the log's page cache as its writing left it, then on a cache filled by
# readahead (evicted with POSIX_FADV_DONTNEED, read by cat), where rg's mmap takes fewer
# faults (large folios) while a read copies the same either way (docs/performance.md, "The
# NPD config at 2M lines depends on how the log sits in the page cache"). READAHEAD=0
# skips the second.
# Usage: ROUNDS=5 bench/logs/run.sh [LINES...]   (default 200000 2000000)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$here/../..
rounds=${ROUNDS:-5}
command -v rg >/dev/null || { echo "rg (ripgrep) is missing: bash scripts/deps.sh" >&2; exit 1; }
target=${CARGO_TARGET_DIR:-$top/target}
(cd "$top" && cargo build --release -q && cargo build --release -q -p node-doctor-core --example rule_patterns)
bin=$target/release/node-doctor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Group names dropped: PCRE and Rust's regex both refuse a name used twice in one pattern.
pack=$("$target/release/examples/rule_patterns" | sed -e 's/(?P<[a-z_]*>/(/g' -e 's/.*/(?:&)/' | paste -sd'|')
npd=$(python3 -c 'import json,sys; print("|".join("(?:%s)$" % r["pattern"] for r in json.load(open(sys.argv[1]))["rules"]))' "$here/npd-kernel-monitor.json")
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(200000 2000000)
sum_counts='import json,sys; d=json.load(sys.stdin); print(sum(f["log"]["count"] for f in d["findings"]))'
echo "log monitor benchmark on $(uname -r), $(nproc) cores, $(date -u +%F); $("$target/release/examples/rule_patterns" | wc -l) patterns in the default pack; $(rg --version | head -1)"
# Peak RSS depends on the text layout (crates/node-doctor/build.rs): a stale order (names
# gone) or one the build did not apply (not in the file's order) shows here.
python3 "$top/bench/layout/symbol_order.py" --coverage "$bin" "$top/crates/node-doctor/symbol-order.txt"
for n in "${sizes[@]}"; do
  log=$work/kern-$n.log
  python3 "$here/gen_kernlog.py" "$n" "$log"
  sed "s#LOGPATH#kern-$n.log#" "$here/npd-kernel-monitor.json" > "$work/npd-$n.json"
  rg_count=$(rg -c "$pack" "$log" || true)
  nd_count=$({ "$bin" logs --root "$work" --source "file:kern-$n.log" --format json || true; } | python3 -c "$sum_counts")
  echo "N=$n lines, $(du -h "$log" | cut -f1)"
  echo "default pack: matching lines: rg $rg_count, node-doctor $nd_count"
  [ "$rg_count" = "$nd_count" ] || { echo "counts differ" >&2; exit 1; }
  grep_args=()
  if [ "${GREP:-1}" != 0 ]; then
    grep_count=$(grep -P -c "$pack" "$log" || true)
    [ "$grep_count" = "$rg_count" ] || { echo "grep -P counts $grep_count" >&2; exit 1; }
    grep_args=(-- "grep -P" grep -P -c "$pack" "$log")
  fi
  rg_npd=$(rg -c "$npd" "$log" || true)
  nd_npd=$({ "$bin" logs --root "$work" --rules "$work/npd-$n.json" --no-default-rules --format json || true; } | python3 -c "$sum_counts")
  echo "NPD config, 8 rules: matching lines: rg $rg_npd, node-doctor $nd_npd"
  [ "$rg_npd" = "$nd_npd" ] || { echo "counts differ" >&2; exit 1; }
  states=("as written")
  [ "${READAHEAD:-1}" = 0 ] || states+=("read ahead")
  for state in "${states[@]}"; do
    if [ "$state" = "read ahead" ]; then
      # Written back first: dirty pages are not dropped.
      python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$log"
      cat "$log" > /dev/null
    fi
    echo "default pack, page cache $state:"
    python3 "$top/bench/run_compare.py" "$rounds" \
      -- "rg" rg -c "$pack" "$log" \
      -- "rg --no-unicode" rg --no-unicode -c "$pack" "$log" \
      "${grep_args[@]}" \
      -- node-doctor "$bin" logs --root "$work" --source "file:kern-$n.log" --format json --fail-on critical
    echo "NPD config, page cache $state:"
    python3 "$top/bench/run_compare.py" "$rounds" \
      -- "rg" rg -c "$npd" "$log" \
      -- "rg --no-unicode" rg --no-unicode -c "$npd" "$log" \
      -- node-doctor "$bin" logs --root "$work" --rules "$work/npd-$n.json" --no-default-rules --format json --fail-on critical
  done
done
