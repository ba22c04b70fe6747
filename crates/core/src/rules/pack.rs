//! The default rule pack: everything node-problem-detector's default kernel and docker
//! monitors detect, plus the lines behind this project's incidents, with named groups so the
//! findings name the pid, command, container and pod.
//!
//! Patterns are unanchored (a match anywhere in the line); each has a test below that feeds
//! it a real line (from the kernel source's format strings, captured where this machine can
//! produce them).

use super::RuleSpec;
use crate::finding::Severity::{Critical, Info, Warning};

const MIN: u64 = 60_000;

/// NPD's systemd-monitor counter: `unit` started 5 times or more within 20 minutes.
fn restart_counter(unit: &str, camel: &str, pattern: &str) -> RuleSpec {
    let reason = format!("Frequent{camel}Restart");
    RuleSpec::event(
        &format!("frequent-{unit}-restart"),
        &reason,
        pattern,
        Warning,
    )
    .condition(&reason)
    .counted(5, 20 * MIN)
    .explain(
        &format!("{unit} restarted 5 times or more within 20 minutes."),
        &format!("`journalctl -u {unit}` for why it exits."),
    )
}

/// The default rules, in the order they are reported when equally severe.
pub fn default_rules() -> Vec<RuleSpec> {
    vec![
        // --- NPD kernel monitor equivalents -------------------------------------------
        RuleSpec::event(
            "oom-kill",
            "OOMKilling",
            r"(?:^|Out of memory: )Killed process (?P<pid>\d+) \((?P<comm>[^)]*)\)",
            Warning,
        )
        .explain(
            "The kernel ran out of memory on the node and killed a process to free some (global OOM).",
            "Find what grew: `dmesg | grep -A20 'invoked oom-killer'`; set memory requests/limits so pods \
             are killed inside their own cgroups before the node runs out; reserve memory for the system \
             (kubelet --system-reserved, --eviction-hard).",
        ),
        RuleSpec::event(
            "memcg-oom-kill",
            "OOMKilling",
            r"oom-kill:constraint=(?P<constraint>\w+),.*?oom_memcg=(?P<oom_memcg>[^,]*),task_memcg=(?P<memcg>[^,]*),task=(?P<comm>[^,]+),pid=(?P<pid>\d+),uid=(?P<uid>\d+)",
            Warning,
        )
        .explain(
            "A memory cgroup hit its limit and the kernel killed the named task inside it: the container \
             uses more memory than its limit allows.",
            "Raise the container's memory limit or fix its growth; `kubectl describe pod` shows OOMKilled \
             restarts. The cgroup in the evidence is the one whose limit was hit (oom_memcg).",
        ),
        RuleSpec::event(
            "task-hung",
            "TaskHung",
            r"task (?P<comm>.+):(?P<pid>\d+) blocked for more than \d+ seconds",
            Warning,
        )
        .explain(
            "The kernel's hung-task detector found a task in uninterruptible sleep (D) for longer than \
             kernel.hung_task_timeout_secs: it waits on I/O or a lock that does not come back.",
            "See d-state-processes for the task's wchan and stack; resolve the storage/NFS/FUSE it waits on.",
        ),
        RuleSpec::event(
            "docker-hung",
            "DockerHung",
            r"task (?P<comm>docker|dockerd):(?P<pid>\d+) blocked for more than \d+ seconds",
            Critical,
        )
        .condition("KernelDeadlock")
        .explain(
            "dockerd itself is stuck in uninterruptible sleep in the kernel; container operations on the \
             node hang.",
            "Find what dockerd waits on (`cat /proc/<pid>/stack`); usually storage. Drain and reboot if it \
             does not recover.",
        ),
        RuleSpec::event(
            "aufs-umount-hung",
            "AUFSUmountHung",
            r"task umount\.aufs:(?P<pid>\d+) blocked for more than \d+ seconds",
            Critical,
        )
        .condition("KernelDeadlock")
        .explain(
            "An aufs unmount is stuck in the kernel (a known aufs deadlock); the runtime cannot clean up containers.",
            "Drain and reboot the node; move off aufs (overlay2).",
        ),
        RuleSpec::event(
            "unregister-netdevice",
            "UnregisterNetDevice",
            r"unregister_netdevice: waiting for (?P<dev>\S+) to become free\. Usage count = \d+",
            Warning,
        )
        .explain(
            "A network device of a deleted pod cannot be freed because something still holds a \
             reference; pod network teardown and creation stall behind it.",
            "Known kernel/CNI bugs; upgrade the kernel. If pods stop starting, drain and reboot.",
        ),
        RuleSpec::event(
            "kernel-oops",
            "KernelOops",
            r"BUG: (?:unable to handle|kernel NULL pointer dereference)|divide error: 0000 \[#\d+\]|Oops: \d+ \[#\d+\]|kernel BUG at \S+",
            Critical,
        )
        .explain(
            "The kernel hit a bug (oops); the task that triggered it was killed and kernel state may be damaged.",
            "Capture `dmesg` around it for the kernel vendor; drain and reboot the node.",
        ),
        RuleSpec::event(
            "ext4-error",
            "Ext4Error",
            r"EXT4-fs error \(device (?P<dev>[^)]+)\)",
            Critical,
        )
        .explain("ext4 found corruption or an I/O failure on the device.", "Check the disk (`smartctl`, cloud volume status); fsck it offline; replace the volume."),
        RuleSpec::event("ext4-warning", "Ext4Warning", r"EXT4-fs warning \(device [^)]+\)", Info)
            .explain("ext4 reported a warning.", "Read the line; usually benign unless repeated."),
        RuleSpec::event(
            "xfs-error",
            "XfsError",
            r"XFS \((?P<dev>[^)]+)\): .*(?:[Ee]rror|[Cc]orruption|[Ss]hut ?down)",
            Critical,
        )
        .explain("XFS found corruption or an I/O error, or shut the filesystem down.", "Check the device; `xfs_repair` offline; replace the volume."),
        RuleSpec::event(
            "io-error",
            "IOError",
            r"Buffer I/O error on dev(?:ice)? \S+|blk_update_request: \S+ error|I/O error, dev \S+",
            Critical,
        )
        .explain("The block layer reported failed I/O to a device.", "Check the disk or cloud volume; move the workload off the node if it repeats."),
        RuleSpec::event("memory-read-error", "MemoryReadError", r"CE memory read error", Warning)
            .explain("A corrected memory error was reported by the hardware.", "Repeated: have the hardware checked; drain the node."),
        RuleSpec::event(
            "cper-hardware-error-fatal",
            "CperHardwareErrorFatal",
            r"\[Hardware Error\]: event severity: fatal",
            Critical,
        )
        .explain("The firmware reported a fatal hardware error (APEI/CPER).", "Drain the node and have the hardware replaced."),
        RuleSpec::event(
            "readonly-filesystem",
            "FilesystemIsReadOnly",
            r"(?i)remounting filesystem read-only",
            Critical,
        )
        .condition("ReadonlyFilesystem")
        .explain(
            "A filesystem hit errors and the kernel remounted it read-only: writes (images, logs, volumes) fail.",
            "Find the device in the line, check it, fsck offline; drain and reboot the node.",
        ),
        // --- NPD docker monitor equivalents --------------------------------------------
        RuleSpec::event(
            "corrupt-docker-image",
            "CorruptDockerImage",
            r"Error trying v2 registry: failed to register layer: rename /var/lib/docker/image/(.+) /var/lib/docker/image/(.+): directory not empty",
            Warning,
        )
        .explain("docker's image store is corrupt: a layer cannot be registered.", "Remove the image (`docker rmi -f`) or wipe /var/lib/docker/image on a drained node."),
        RuleSpec::event(
            "corrupt-docker-overlay2",
            "CorruptDockerOverlay2",
            r"returned error: readlink /var/lib/docker/overlay2.*: invalid argument",
            Warning,
        )
        .condition("CorruptDockerOverlay2")
        .explain("docker's overlay2 store has a broken layer link.", "Drain the node, stop docker, remove the broken layer (or all of /var/lib/docker), restart."),
        RuleSpec::event(
            "docker-container-startup-failure",
            "DockerContainerStartupFailure",
            r"OCI runtime start failed: container process is already dead",
            Warning,
        )
        .explain("A container died between create and start.", "Check the container's logs and exit reason; the node is usually fine."),
        // --- The incidents' lines -----------------------------------------------------
        RuleSpec::event(
            "core-pipe-limit",
            "CoreDumpSkipped",
            r"(?:coredump: |Pid )(?P<pid>\d+)\((?P<comm>[^)]*)\):? over core_pipe_limit",
            Warning,
        )
        .explain(
            "A process crashed while kernel.core_pipe_limit core-dump handlers were already running; its \
             core was skipped (incident 3: a crash loop's dumps piling up behind a slow handler).",
            "Find the crash loop; check the core_pattern handler and kernel.core_pipe_limit.",
        ),
        RuleSpec::event(
            "rlimit-core-1",
            "CoreDumpAborted",
            r"RLIMIT_CORE is set to 1, aborting core|has RLIMIT_CORE set to 1",
            Info,
        )
        .explain(
            "A process crashed with RLIMIT_CORE 1 and a piped core_pattern: the kernel's recursion guard \
             aborted its dump (systemd-coredump sets this for itself).",
            "Usually a crashing core-dump handler; check the core_pattern program.",
        ),
        RuleSpec::event(
            "pids-fork-rejected",
            "ForkRejected",
            r"cgroup: fork rejected by pids controller in (?P<cgroup>\S+)",
            Critical,
        )
        .explain(
            "A cgroup reached its pids.max: fork/clone in it fail with EAGAIN (incident 2a: zombies filled a pod's limit).",
            "See pid-exhaustion and zombie-processes for who holds the pids; fix the leak or raise the pod's limit.",
        ),
        RuleSpec::event(
            "file-max-reached",
            "FileMaxReached",
            r"VFS: file-max limit (?P<limit>\d+) reached",
            Critical,
        )
        .explain(
            "The node ran out of file handles (fs.file-max): every non-root open/socket/pipe fails with ENFILE \
             (incident 4: a runtime daemon leaking connections).",
            "See fd-exhaustion and fd-leak for the holders; stopgap `sysctl -w fs.file-max=<higher>`.",
        ),
        RuleSpec::event(
            "pthread-create-failed",
            "PthreadCreateFailed",
            r"pthread_create failed: (?:Resource temporarily unavailable|No space left on device)|runtime: failed to create new OS thread",
            Critical,
        )
        .explain(
            "A Go program (runtime daemon, kubelet, a container) could not create a thread: PIDs or a pids \
             cgroup limit ran out (incident 2a).",
            "See pid-exhaustion and zombie-processes.",
        ),
        RuleSpec::event(
            "no-space-left",
            "NoSpaceLeftOnDevice",
            r"(?i)no space left on device",
            Warning,
        )
        .explain(
            "A write or allocation failed with ENOSPC: a filesystem is full — or, from runtimes, a kernel \
             limit reported as ENOSPC (inotify watches, pids on old kernels).",
            "See disk-pressure; `df -h; df -i`; check fs.inotify.max_user_watches.",
        ),
        RuleSpec::event(
            "segfault",
            "Segfault",
            r"(?P<comm>[^\s\[]+)\[(?P<pid>\d+)\]: segfault at [0-9a-f]+",
            Info,
        )
        .explain("A process crashed on an invalid memory access.", "Repeated crashes of the same command: look at its logs and core dumps."),
        RuleSpec::event(
            "conntrack-table-full",
            "ConntrackFull",
            r"nf_conntrack: (?:nf_conntrack: )?table full, dropping packet",
            Critical,
        )
        .explain(
            "The connection-tracking table is full: new connections through the node are dropped.",
            "`sysctl net.netfilter.nf_conntrack_count net.netfilter.nf_conntrack_max`; raise the max; find the \
             connection storm (`conntrack -L | awk '{print $5}' | sort | uniq -c | sort -rn | head`).",
        ),
        RuleSpec::event(
            "pleg-not-healthy",
            "PLEGNotHealthy",
            r"PLEG is not healthy: pleg was last seen active (?P<ago>\S+) ago",
            Critical,
        )
        .explain(
            "kubelet's pod lifecycle event generator could not relist containers in time: the runtime is \
             stuck or slow (incident 1: runc init hung on a shrunk pipe) and the node goes NotReady.",
            "See runc-init-hang, pipe-quota, d-state-processes; check the runtime (`crictl ps` hanging?).",
        ),
        RuleSpec::event(
            "kubelet-client-throttling",
            "ClientSideThrottling",
            r"Waited for (?P<wait>\S+) due to client-side throttling",
            Warning,
        )
        .explain(
            "kubelet is throttled by its own API QPS limits (kubeAPIQPS/kubeAPIBurst): status updates and pod \
             starts queue up.",
            "Raise kubeAPIQPS and kubeAPIBurst in the kubelet configuration.",
        ),
        // --- NPD systemd-monitor counters ---------------------------------------------
        restart_counter("kubelet", "Kubelet", r"Started (?:Kubernetes kubelet|kubelet\.service|kubelet:)"),
        restart_counter(
            "containerd",
            "Containerd",
            r"Started (?:containerd container runtime|containerd\.service)",
        ),
        restart_counter(
            "docker",
            "Docker",
            r"Started (?:Docker Application Container Engine|docker\.service)",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::{Matcher, RuleSet};
    use super::*;
    use crate::model::log::LogRecord;

    /// (rule, a real line). Kernel lines follow the kernel's format strings (mm/oom_kill.c,
    /// kernel/hung_task.c, fs/coredump.c, kernel/cgroup/pids.c, fs/file_table.c, ...).
    const LINES: &[(&str, &str)] = &[
        (
            "oom-kill",
            "Out of memory: Killed process 2592 (java) total-vm:7517212kB, anon-rss:6291456kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:12528kB oom_score_adj:0",
        ),
        (
            "oom-kill",
            "Killed process 2592 (java) total-vm:7517212kB, anon-rss:6291456kB, file-rss:0kB",
        ),
        (
            "memcg-oom-kill",
            "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=3f1c9a27d0b4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e,mems_allowed=0,oom_memcg=/kubepods/burstable/pod5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c,task_memcg=/kubepods/burstable/pod5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c/3f1c9a27d0b4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e,task=java,pid=2592,uid=1000",
        ),
        (
            "task-hung",
            "INFO: task kworker/u8:2:1234 blocked for more than 120 seconds.",
        ),
        (
            "docker-hung",
            "INFO: task dockerd:1101 blocked for more than 120 seconds.",
        ),
        (
            "aufs-umount-hung",
            "INFO: task umount.aufs:21568 blocked for more than 120 seconds.",
        ),
        (
            "unregister-netdevice",
            "unregister_netdevice: waiting for eth0 to become free. Usage count = 1",
        ),
        (
            "kernel-oops",
            "BUG: unable to handle kernel NULL pointer dereference at 0000000000000010",
        ),
        (
            "kernel-oops",
            "BUG: kernel NULL pointer dereference, address: 0000000000000010",
        ),
        ("kernel-oops", "divide error: 0000 [#1] SMP PTI"),
        (
            "ext4-error",
            "EXT4-fs error (device nvme1n1): ext4_find_entry:1455: inode #2: comm kubelet: reading directory lblock 0",
        ),
        (
            "ext4-warning",
            "EXT4-fs warning (device sda1): ext4_dx_add_entry:2461: Directory (ino: 1453953) index full, reached max htree level :2",
        ),
        (
            "xfs-error",
            "XFS (dm-0): metadata I/O error in \"xfs_trans_read_buf_map\" at daddr 0x2 len 1 error 5",
        ),
        (
            "io-error",
            "Buffer I/O error on dev nvme1n1, logical block 0, async page read",
        ),
        (
            "io-error",
            "blk_update_request: I/O error, dev sdb, sector 2048 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0",
        ),
        (
            "memory-read-error",
            "CE memory read error on CPU_SrcID#0_Ha#0_Chan#1_DIMM#0",
        ),
        (
            "cper-hardware-error-fatal",
            "{1}[Hardware Error]: event severity: fatal",
        ),
        (
            "readonly-filesystem",
            "EXT4-fs (nvme0n1p1): Remounting filesystem read-only",
        ),
        (
            "corrupt-docker-image",
            "Error trying v2 registry: failed to register layer: rename /var/lib/docker/image/overlay2/layerdb/tmp/write-set-123 /var/lib/docker/image/overlay2/layerdb/sha256/abc: directory not empty",
        ),
        (
            "corrupt-docker-overlay2",
            "Handler for GET /containers/json returned error: readlink /var/lib/docker/overlay2/l/ABCDEF: invalid argument",
        ),
        (
            "docker-container-startup-failure",
            "OCI runtime start failed: container process is already dead: unknown",
        ),
        (
            "core-pipe-limit",
            "coredump: 3345(crashy): over core_pipe_limit, skipping core dump",
        ),
        ("core-pipe-limit", "Pid 3345(crashy) over core_pipe_limit"),
        (
            "rlimit-core-1",
            "coredump: 3346(systemd-coredum): RLIMIT_CORE is set to 1, aborting core",
        ),
        (
            "rlimit-core-1",
            "Process 3346(systemd-coredum) has RLIMIT_CORE set to 1",
        ),
        (
            "pids-fork-rejected",
            "cgroup: fork rejected by pids controller in /kubepods/besteffort/pod1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9/5e4d3c2b1a0f9e8d7c6b5a4938271605f4e3d2c1b0a99887766554433221100f",
        ),
        ("file-max-reached", "VFS: file-max limit 65536 reached"),
        (
            "pthread-create-failed",
            "runtime/cgo: pthread_create failed: Resource temporarily unavailable",
        ),
        (
            "pthread-create-failed",
            "runtime: failed to create new OS thread (have 1029 already; errno=11)",
        ),
        (
            "no-space-left",
            "failed to create shim task: mkdir /run/containerd/io.containerd.runtime.v2.task/k8s.io/abc: no space left on device",
        ),
        (
            "segfault",
            "crashy[3345]: segfault at 0 ip 000055d5c8a4b139 sp 00007ffd4e3c6a60 error 6 in crashy[55d5c8a4b000+1000]",
        ),
        (
            "conntrack-table-full",
            "nf_conntrack: nf_conntrack: table full, dropping packet",
        ),
        (
            "pleg-not-healthy",
            "E1122 19:20:17.123456    1234 kubelet.go:2359] \"Skipping pod synchronization\" err=\"PLEG is not healthy: pleg was last seen active 3m0.5s ago; threshold is 3m0s\"",
        ),
        (
            "kubelet-client-throttling",
            "I1122 19:20:17.123456    1234 request.go:697] Waited for 1.1s due to client-side throttling, not priority and fairness, request: GET:https://10.0.0.1/api/v1/pods",
        ),
        (
            "frequent-kubelet-restart",
            "Started kubelet: The Kubernetes Node Agent.",
        ),
        (
            "frequent-containerd-restart",
            "Started containerd container runtime.",
        ),
        (
            "frequent-docker-restart",
            "Started Docker Application Container Engine.",
        ),
    ];

    #[test]
    fn every_rule_compiles_and_has_a_line() {
        let set = std::sync::Arc::new(RuleSet::compile(default_rules()).unwrap());
        for spec in set.specs() {
            assert!(
                LINES.iter().any(|(r, _)| *r == spec.name),
                "{} has no test line",
                spec.name
            );
            assert!(
                !spec.cause.is_empty() && !spec.remedy.is_empty(),
                "{}",
                spec.name
            );
        }
    }

    #[test]
    fn each_line_matches_its_rule() {
        let set = std::sync::Arc::new(RuleSet::compile(default_rules()).unwrap());
        let names: Vec<String> = set.specs().map(|s| s.name.clone()).collect();
        for (rule, line) in LINES {
            let mut m = Matcher::new(&set);
            let hits: Vec<&str> = m
                .feed(&LogRecord::text(*line))
                .iter()
                .map(|h| names[h.rule].as_str())
                .collect::<Vec<_>>()
                .into_iter()
                .collect();
            assert!(
                hits.contains(rule),
                "{rule} did not match {line:?} (got {hits:?})"
            );
        }
    }

    #[test]
    fn subjects_are_named() {
        let set = std::sync::Arc::new(RuleSet::compile(default_rules()).unwrap());
        let subject = |line: &str, rule: &str| {
            let names: Vec<String> = set.specs().map(|s| s.name.clone()).collect();
            let mut m = Matcher::new(&set);
            m.feed(&LogRecord::text(line))
                .into_iter()
                .find(|h| names[h.rule] == rule)
                .and_then(|h| h.subject)
                .unwrap()
        };
        let s = subject(LINES[2].1, "memcg-oom-kill");
        assert_eq!(
            (s.pid, s.comm.as_deref(), s.uid),
            (Some(2592), Some("java"), Some(1000))
        );
        assert_eq!(
            s.pod.as_deref(),
            Some("5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c")
        );
        let s = subject(LINES[3].1, "task-hung");
        assert_eq!(
            (s.pid, s.comm.as_deref()),
            (Some(1234), Some("kworker/u8:2"))
        );
        let s = subject(LINES[25].1, "pids-fork-rejected");
        assert_eq!(
            s.container_id.as_deref(),
            Some("5e4d3c2b1a0f9e8d7c6b5a4938271605f4e3d2c1b0a99887766554433221100f")
        );
        let s = subject(LINES[30].1, "segfault");
        assert_eq!((s.pid, s.comm.as_deref()), (Some(3345), Some("crashy")));
        let s = subject(LINES[21].1, "core-pipe-limit");
        assert_eq!((s.pid, s.comm.as_deref()), (Some(3345), Some("crashy")));
    }

    #[test]
    fn a_memcg_oom_is_not_also_a_global_one() {
        let set = std::sync::Arc::new(RuleSet::compile(default_rules()).unwrap());
        let names: Vec<String> = set.specs().map(|s| s.name.clone()).collect();
        let mut m = Matcher::new(&set);
        let hits = m.feed(&LogRecord::text(
            "Memory cgroup out of memory: Killed process 2592 (java) total-vm:7517212kB, anon-rss:6291456kB",
        ));
        assert!(hits.iter().all(|h| names[h.rule] != "oom-kill"));
    }
}
