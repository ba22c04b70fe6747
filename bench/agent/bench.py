#!/usr/bin/env python3
"""The agent's cost and latency, measured on this host, against node-problem-detector's
figures measured on this machine kind (issue 11; NPD itself has no Debian package here):

    NPD idle (one file source)   0.08 % of a core, 35-39 MiB RSS
    NPD detection latency        up to 500 ms for a file (it polls), ~6 ms for kmsg

Targets: idle <= 0.05 % of a core and <= 15 MiB RSS; with 10000 processes <= 2 % of a core
on average; a kmsg line reported <= 10 ms after it is written, a file line <= 100 ms; RSS
flat over a 1-hour soak with a steady stream of matching lines and a flapping fault.

The agent runs as it would in a DaemonSet (default cadences, kmsg + a file source, the
default rule pack, conditions and Events published) against a fake API server on loopback
(this script), which timestamps every Event it receives: latency is measured end to end,
from just before the line is written to the Event's arrival at the API server.

    bench.py NODE_DOCTOR_BINARY idle [SECONDS]         (default 300)
    bench.py NODE_DOCTOR_BINARY procs [SECONDS] [N]    (default 300, 10000)
    bench.py NODE_DOCTOR_BINARY latency [LINES]        (default 40 per source)
    bench.py NODE_DOCTOR_BINARY soak [SECONDS]         (default 3600)

Run as root (the agent reads every process; kmsg lines are written to /dev/kmsg). The kmsg
lines written are `nd-bench-kmsg <n>` (matched only by this bench's own rule).
"""
import http.server
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CLK_TCK = os.sysconf("SC_CLK_TCK")
NODE = "bench-node"


class FakeApi(http.server.ThreadingHTTPServer):
    """Just enough of the API server for the agent: its Node, nodes/status apply, Events."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.events = []  # (arrival time, note)
        self.applies = 0
        self.lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def node(self):
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": NODE, "uid": "00000000-0000-0000-0000-000000000001"},
                "status": {"conditions": []}}

    def do_GET(self):
        self.reply(200, self.node())

    def do_PATCH(self):
        self.body()
        with self.server.lock:
            self.server.applies += 1
        self.reply(200, self.node())

    def do_POST(self):
        t = time.time()
        ev = json.loads(self.body() or b"{}")
        with self.server.lock:
            self.server.events.append((t, ev.get("note", "")))
        self.reply(201, ev)


def kubeconfig(d, port):
    p = os.path.join(d, "kubeconfig")
    with open(p, "w") as f:
        f.write(f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "http://127.0.0.1:{port}"}}}}]
users: [{{name: u, user: {{token: bench}}}}]
contexts: [{{name: x, context: {{cluster: c, user: u}}}}]
current-context: x
""")
    return p


def npd_configs(d, logfile):
    """One NPD rule per source, with the number as `pid` so each line is its own finding."""
    km = os.path.join(d, "bench-kmsg.json")
    fl = os.path.join(d, "bench-file.json")
    rule = lambda tag: [{"type": "temporary", "reason": "BenchLine",
                         "pattern": f"nd-bench-{tag} (?P<pid>\\d+)"}]
    with open(km, "w") as f:
        json.dump({"plugin": "kmsg", "source": "bench-kmsg", "rules": rule("kmsg")}, f)
    with open(fl, "w") as f:
        json.dump({"plugin": "filelog", "logPath": logfile, "source": "bench-file",
                   "rules": rule("file")}, f)
    return km, fl


def config(d, logfile, extra=""):
    km, fl = npd_configs(d, logfile)
    p = os.path.join(d, "agent.toml")
    with open(p, "w") as f:
        f.write(f"""[agent]
{extra}
[logs]
sources = ["kmsg", "file:{logfile}"]
rules = ["{km}", "{fl}"]
default_rules = true
""")
    return p


def agent_env():
    """The environment deploy/daemonset.yaml gives the agent (MALLOC_ARENA_MAX=2); ARENAS=
    overrides it (ARENAS=default: glibc's own, 8 per core)."""
    env = dict(os.environ)
    arenas = os.environ.get("ARENAS", "2")
    if arenas == "default":
        env.pop("MALLOC_ARENA_MAX", None)
    else:
        env["MALLOC_ARENA_MAX"] = arenas
    return env


class Agent:
    def __init__(self, binary, d, api, cfg):
        self.log = open(os.path.join(d, "agent.log"), "w")
        self.proc = subprocess.Popen(
            [binary, "agent", "--node-name", NODE, "--pod-name", "bench",
             "--kubeconfig", kubeconfig(d, api.server_address[1]), "--config", cfg,
             "--state-dir", os.path.join(d, "state"), "--listen", "127.0.0.1:0"],
            stdout=self.log, stderr=subprocess.STDOUT, env=agent_env())
        self.pid = self.proc.pid

    def cpu_ticks(self):
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # utime, stime (fields 14 and 15; children's are 16 and 17: the probe processes).
        return sum(int(x) for x in fields[11:15])

    def status(self, key):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0  # MiB
        return float("nan")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def measure_cpu(agent, seconds):
    t0, c0 = time.monotonic(), agent.cpu_ticks()
    time.sleep(seconds)
    t1, c1 = time.monotonic(), agent.cpu_ticks()
    return 100.0 * (c1 - c0) / CLK_TCK / (t1 - t0)


def start(binary, extra=""):
    d = tempfile.mkdtemp(prefix="nd-bench-agent-")
    logfile = os.path.join(d, "app.log")
    open(logfile, "w").close()
    api = FakeApi()
    threading.Thread(target=api.serve_forever, daemon=True).start()
    agent = Agent(binary, d, api, config(d, logfile, extra))
    return d, logfile, api, agent


def wait_event(api, needle, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        with api.lock:
            for t, note in api.events:
                if needle in note:
                    return t
        time.sleep(0.0005)
    return None


def idle(binary, seconds=300):
    d, _, api, agent = start(binary)
    try:
        time.sleep(40)  # the first evaluations and a first pipe scan
        cpu = measure_cpu(agent, seconds)
        rss, hwm = agent.status("VmRSS"), agent.status("VmHWM")
    finally:
        agent.stop()
    print(f"idle ({seconds} s, default config, kmsg + file source): "
          f"{cpu:.3f} % of a core (NPD 0.08 %: {cpu / 0.08:.2f}x; target <= 0.05 %), "
          f"RSS {rss:.1f} MiB, peak {hwm:.1f} MiB (NPD 35-39 MiB: {rss / 35:.2f}x; target <= 15 MiB)")
    return cpu, rss, hwm


def procs(binary, seconds=300, n=10000):
    holder = subprocess.Popen([sys.executable, os.path.join(HERE, "..", "spawn_idle.py"), str(n)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        d, _, api, agent = start(binary)
        try:
            time.sleep(40)
            cpu = measure_cpu(agent, seconds)
            rss, hwm = agent.status("VmRSS"), agent.status("VmHWM")
        finally:
            agent.stop()
    finally:
        holder.stdin.close()
        holder.wait()
    print(f"{n} extra processes ({seconds} s, default cadences: processes 30 s, fds 60 s, "
          f"pipes 5 min): {cpu:.2f} % of a core (target <= 2 %), RSS {rss:.1f} MiB, peak {hwm:.1f} MiB")
    return cpu, rss, hwm


def write_kmsg(text):
    with open("/dev/kmsg", "w") as f:
        f.write(text + "\n")


def latency(binary, lines=40):
    d, logfile, api, agent = start(binary)
    out = {}
    try:
        time.sleep(15)  # started, Node read, first evaluation done
        for name, write in [("kmsg", write_kmsg), ("file", None)]:
            got = []
            with open(logfile, "a") as lf:
                for i in range(lines):
                    tag = f"nd-bench-{name} {1000000 + i}"
                    time.sleep(random.uniform(0.05, 0.4))
                    t0 = time.time()
                    if write:
                        write(tag)
                    else:
                        lf.write(f"app: {tag}\n")
                        lf.flush()
                    t1 = wait_event(api, tag)
                    if t1 is None:
                        raise SystemExit(f"{name}: no Event for {tag!r} within 10 s (see {d}/agent.log)")
                    got.append((t1 - t0) * 1000.0)
            got.sort()
            out[name] = got
            p95 = got[min(len(got) - 1, int(0.95 * len(got)))]
            print(f"{name} line -> Event at the API server ({lines} lines): median "
                  f"{statistics.median(got):.1f} ms, p95 {p95:.1f} ms, max {got[-1]:.1f} ms "
                  f"(target <= {10 if name == 'kmsg' else 100} ms; NPD {'~6' if name == 'kmsg' else 'up to 500'} ms)")
    finally:
        agent.stop()
    return out


def soak(binary, seconds=3600):
    """A steady stream of matching lines (one a second, kmsg and file alternating) and a
    zombie leak that comes and goes every 2 minutes (a condition that flaps, with Events and
    flight recordings). RSS is sampled every 30 s."""
    d, logfile, api, agent = start(binary, 'interval = "10s"\ncondition_on_warning = true\nclear_after = 2')
    samples = []
    fault = None
    try:
        t_end = time.time() + seconds
        i = 0
        lf = open(logfile, "a")
        next_flip = time.time() + 120
        next_sample = time.time() + 30
        while time.time() < t_end:
            i += 1
            if i % 2:
                write_kmsg(f"nd-bench-kmsg {i}")
            else:
                lf.write(f"app: nd-bench-file {i}\n")
                lf.flush()
            if time.time() >= next_flip:
                next_flip += 120
                if fault is None:
                    fault = subprocess.Popen([sys.executable, os.path.join(HERE, "..", "spawn_idle.py"), "101", "100"],
                                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                else:
                    fault.stdin.close()
                    fault.wait()
                    fault = None
            if time.time() >= next_sample:
                next_sample += 30
                samples.append((time.time(), agent.status("VmRSS")))
            time.sleep(1.0)
        hwm = agent.status("VmHWM")
    finally:
        if fault is not None:
            fault.stdin.close()
            fault.wait()
        agent.stop()
    rss = [r for _, r in samples]
    first, last = statistics.mean(rss[:4]), statistics.mean(rss[-4:])
    with api.lock:
        events = len(api.events)
    print(f"soak ({seconds} s, {i} lines, a fault flapping every 2 min, {events} Events, "
          f"{api.applies} applies): RSS first 2 min {first:.1f} MiB, last 2 min {last:.1f} MiB, "
          f"max {max(rss):.1f} MiB, peak {hwm:.1f} MiB")
    with open(os.path.join(d, "soak-rss.tsv"), "w") as f:
        for t, r in samples:
            f.write(f"{t:.0f}\t{r:.2f}\n")
    print(f"RSS series: {d}/soak-rss.tsv")
    return first, last, max(rss)


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    binary, what, args = sys.argv[1], sys.argv[2], [int(a) for a in sys.argv[3:]]
    {"idle": idle, "procs": procs, "latency": latency, "soak": soak}[what](binary, *args)


if __name__ == "__main__":
    main()
