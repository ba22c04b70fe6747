#!/usr/bin/env python3
"""Follow latency: how long after a line is written to a followed file its finding comes out.

Starts `node-doctor logs --source file:kern.log --follow --format json` and, side by side on
the same file, `tail -F -n0 kern.log | grep --line-buffered` (coreutils' tail follows with
inotify: the baseline of a follower that waits on the kernel instead of a timer). Then writes
N matching lines one at a time, each a random 50-400 ms after the previous one (so wake-ups
are not batched), each naming a distinct pid, and times from just before the write() to the
moment each follower's output line naming that pid is read. Reports min, median, p95, max.

Target (issue 12): a new line is matched <= 100 ms after it is written (NPD polls every
500 ms).

    latency.py NODE_DOCTOR_BINARY [N]
"""
import json
import os
import queue
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def reader(stream, out):
    for line in stream:
        out.put((time.perf_counter(), line))


def wait_for(q, needle, timeout=10.0):
    end = time.perf_counter() + timeout
    while True:
        left = end - time.perf_counter()
        if left <= 0:
            raise SystemExit(f"no line with {needle!r} within {timeout} s")
        t, line = q.get(timeout=left)
        if needle in line:
            return t, line


def stats(name, xs):
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
    print(f"  {name:<32} n={len(xs):3d}  min {xs[0]:6.1f} ms  median {statistics.median(xs):6.1f} ms"
          f"  p95 {p95:6.1f} ms  max {xs[-1]:6.1f} ms")


def main():
    binary = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    rnd = random.Random(12)
    with tempfile.TemporaryDirectory() as root:
        log = os.path.join(root, "kern.log")
        open(log, "w").close()
        nd = subprocess.Popen(
            [binary, "logs", "--root", root, "--source", "file:kern.log", "--follow", "--format", "json"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        tail = subprocess.Popen(
            ["sh", "-c", f"exec tail -F -n0 {log} 2>/dev/null | grep --line-buffered 'segfault at'"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1, start_new_session=True)
        qn, qt = queue.Queue(), queue.Queue()
        threading.Thread(target=reader, args=(nd.stdout, qn), daemon=True).start()
        threading.Thread(target=reader, args=(tail.stdout, qt), daemon=True).start()
        try:
            wait_for(qn, '"phase":"start"')
            time.sleep(1.0)  # tail has opened the file and set its watch
            lat_nd, lat_tail = [], []
            with open(log, "a", buffering=1) as w:
                for i in range(n):
                    time.sleep(rnd.uniform(0.05, 0.4))
                    pid = 10000 + i
                    line = f"Nov 22 19:20:17 node-7 kernel: [ 12.0] crashy[{pid}]: segfault at 0 ip 0 sp 0 error 6\n"
                    t0 = time.perf_counter()
                    w.write(line)
                    t1, out = wait_for(qn, f'"pid":{pid}')
                    assert json.loads(out)["type"] == "finding"
                    t2, _ = wait_for(qt, f"crashy[{pid}]")
                    lat_nd.append((t1 - t0) * 1000)
                    lat_tail.append((t2 - t0) * 1000)
            print(f"follow latency over {n} lines, {os.uname().release}, {os.cpu_count()} cores")
            stats("tail -F | grep --line-buffered", lat_tail)
            stats("node-doctor logs --follow", lat_nd)
        finally:
            nd.terminate()
            os.killpg(tail.pid, 15)
            nd.wait(10)
            tail.wait(10)


if __name__ == "__main__":
    main()
