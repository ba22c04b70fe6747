#!/usr/bin/env python3
"""Holds N idle processes (forked children blocked in pause()) until stdin closes or a
signal arrives, then kills and reaps them. Prints "ready" once all N exist.

    spawn_idle.py N [ZOMBIES]

The first ZOMBIES (default 0) of the N children exit at once and are not reaped until the
end: a node with a zombie leak, so the process-health checks have something to group.
With PIPES=K in the environment every idle child creates K pipes and holds both ends.

Used by the benchmarks to give node-doctor and its baselines the same process table."""
import os
import signal
import sys


def main() -> None:
    n = int(sys.argv[1])
    zombies = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    pipes_each = int(os.environ.get("PIPES", "0"))
    pids = []
    for i in range(n):
        pid = os.fork()
        if pid == 0 and i < zombies:
            os._exit(0)
        if pid == 0:
            held = [os.pipe() for _ in range(pipes_each)]  # noqa: F841 (kept open)
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
