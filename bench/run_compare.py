#!/usr/bin/env python3
"""Runs commands side by side, several rounds interleaved, and reports the median wall time
and the peak RSS of each (from wait4's rusage), plus ratios against the first (baseline).

Usage: run_compare.py ROUNDS -- NAME1 CMD1... -- NAME2 CMD2... (first is the baseline)"""
import os
import statistics
import subprocess
import sys
import tempfile
import time


def measure(cmd):
    # Peak RSS comes from GNU time (a small C parent): the kernel carries ru_maxrss across
    # exec, so a child forked straight from Python would report Python's own RSS.
    # Output goes to a real file, not /dev/null: GNU grep notices /dev/null and stops at the
    # first match, which would make the baseline do less work than it does for a user.
    with tempfile.NamedTemporaryFile("r") as out, tempfile.TemporaryFile("w") as sink:
        start = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-q", "-o", out.name, "-f", "%M %U %S %x", *cmd],
                           stdout=sink, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        fields = out.read().split()
    rss_kib, user, system, rc = int(fields[0]), float(fields[1]), float(fields[2]), int(fields[3])
    return wall, rss_kib / 1024.0, user + system, rc if p.returncode == 0 else p.returncode


def main():
    args = sys.argv[1:]
    rounds = int(args.pop(0))
    groups, cur = [], None
    for a in args:
        if a == "--":
            cur = []
            groups.append(cur)
        else:
            cur.append(a)
    named = [(g[0], g[1:]) for g in groups]
    results = {name: [] for name, _ in named}
    for _ in range(rounds):
        for name, cmd in named:
            results[name].append(measure(cmd))
    base = statistics.median(r[0] for r in results[named[0][0]])
    for name, _ in named:
        rs = results[name]
        wall = statistics.median(r[0] for r in rs)
        cpu = statistics.median(r[2] for r in rs)
        rss = max(r[1] for r in rs)
        codes = sorted({r[3] for r in rs})
        print(f"  {name:<14} median {wall*1000:8.1f} ms  cpu {cpu*1000:8.1f} ms  peak RSS {rss:6.1f} MiB"
              f"  ratio {wall/base:5.2f}x  exit {codes}")


if __name__ == "__main__":
    main()
