#!/usr/bin/env python3
"""Writes a kernel log of N lines in syslog form (`Nov 22 19:20:17 node-7 kernel: [  12.345678] ...`):
1% of them lines the default rules match (OOM kills, hung tasks, refused forks, segfaults,
ext4 errors, conntrack full, over core_pipe_limit, block I/O errors, soft lockups, GPU Xids),
the rest realistic noise from a busy Kubernetes node (veth and bridge churn, audit,
netfilter, mounts, cgroups).

    gen_kernlog.py N OUT
"""
import random
import sys

NOISE = [
    "IPv6: ADDRCONF(NETDEV_CHANGE): veth{h}: link becomes ready",
    "cni0: port {p}(veth{h}) entered blocking state",
    "cni0: port {p}(veth{h}) entered forwarding state",
    "cni0: port {p}(veth{h}) entered disabled state",
    "device veth{h} entered promiscuous mode",
    "device veth{h} left promiscuous mode",
    "eth0: renamed from tmp{h}",
    "audit: type=1400 audit({t}:{n}): apparmor=\"STATUS\" operation=\"profile_load\" profile=\"unconfined\" name=\"cri-containerd.apparmor.d\" pid={n} comm=\"apparmor_parser\"",
    "overlayfs: upper fs does not support RENAME_WHITEOUT.",
    "EXT4-fs (nvme1n1): mounted filesystem with ordered data mode. Opts: (null)",
    "xfs filesystem being mounted at /var/lib/kubelet/pods/{u}/volumes supports timestamps until 2038",
    "nf_conntrack: default automatic helper assignment has been turned off for security reasons",
    "IPVS: rr: TCP 10.96.0.{p}:443 - no destination available",
    "TCP: request_sock_TCP: Possible SYN flooding on port 10250. Sending cookies.",
    "cgroup: cgroup: disabling cgroup2 socket matching due to net_prio or net_cls activation",
    "blk_update_request: operation not supported error, dev loop{p}, sector 0 op 0x9:(WRITE_ZEROES)",
    "kauditd_printk_skb: {p} callbacks suppressed",
    "process 'usr/bin/containerd-shim-runc-v2' launched '/usr/sbin/runc' with NULL argv: empty string added",
    "docker0: port {p}(veth{h}) entered forwarding state",
    "NFSD: Using UMH upcall client tracking operations.",
]

MATCHING = [
    "Out of memory: Killed process {n} (java) total-vm:7517212kB, anon-rss:6291456kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:12528kB oom_score_adj:0",
    "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/kubepods/burstable/pod{u},task_memcg=/kubepods/burstable/pod{u}/{c},task=python3,pid={n},uid=0",
    "INFO: task jbd2/nvme1n1-8:{n} blocked for more than 120 seconds.",
    "cgroup: fork rejected by pids controller in /kubepods/besteffort/pod{u}/{c}",
    "crashy[{n}]: segfault at 0 ip 000055d5c8a4b139 sp 00007ffd4e3c6a60 error 6 in crashy[55d5c8a4b000+1000]",
    "EXT4-fs error (device nvme1n1): ext4_find_entry:1455: inode #2: comm kubelet: reading directory lblock 0",
    "nf_conntrack: nf_conntrack: table full, dropping packet",
    "coredump: {n}(crashy): over core_pipe_limit, skipping core dump",
    "blk_update_request: I/O error, dev sdb, sector {n} op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0",
    "watchdog: BUG: soft lockup - CPU#1 stuck for 23s! [java:{n}]",
    "NVRM: Xid (PCI:0000:3b:00): 79, pid={n}, GPU has fallen off the bus.",
    "Buffer I/O error on dev nvme1n1, logical block {n}, async page read",
]


def main():
    n, out = int(sys.argv[1]), sys.argv[2]
    rnd = random.Random(42)
    hx = lambda k: "".join(rnd.choice("0123456789abcdef") for _ in range(k))
    uid = lambda: f"{hx(8)}-{hx(4)}-4{hx(3)}-8{hx(3)}-{hx(12)}"
    with open(out, "w") as f:
        for i in range(n):
            secs = 1000 + i * 0.01
            stamp = f"Nov 22 {(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d} node-7 kernel: [{secs:12.6f}] "
            tmpl = rnd.choice(MATCHING) if rnd.random() < 0.01 else rnd.choice(NOISE)
            line = tmpl.format(h=hx(8), p=rnd.randint(1, 64), t=int(secs), n=rnd.randint(100, 99999), u=uid(), c=hx(64))
            f.write(stamp + line + "\n")


if __name__ == "__main__":
    main()
