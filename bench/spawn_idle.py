#!/usr/bin/env python3
"""Holds N idle processes (forked children blocked in pause()) until stdin closes or a
signal arrives, then kills and reaps them. Prints "ready" once all N exist.

Used by the benchmarks to give node-doctor and its baselines the same process table."""
import os
import signal
import sys


def main() -> None:
    n = int(sys.argv[1])
    pids = []
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            # Child: die with the parent, then sleep until killed.
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            while True:
                signal.pause()
        pids.append(pid)
    print("ready", flush=True)
    try:
        sys.stdin.read()
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in pids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


if __name__ == "__main__":
    main()
