//! Fixture trees: whole files captured from a real machine, one scenario each
//! (tests/fixtures/*/README.md says what each shows).

mod common;
use common::*;
use node_doctor_core::checks::Report;
use node_doctor_core::config::Config;
use node_doctor_core::finding::{Finding, Severity, SubjectKind};
use node_doctor_core::model::{Hierarchy, Kind, ProcState, Recording, Snapshot};

/// The process-health checks; the scenarios below also run every check (the trees carry
/// their own statvfs answers and kernel ring).
const TREE_CHECKS: &[&str] = &[
    "pid-exhaustion",
    "zombie-processes",
    "fd-exhaustion",
    "fd-leak",
    "d-state-processes",
    "stuck-container-stop",
];

/// The checks that need a kubelet or a container runtime on the node.
const KUBERNETES_CHECKS: &[&str] = &[
    "runtime-health",
    "pleg-unhealthy",
    "image-pull-serialized",
    "kubelet-api-throttling",
    "kubelet-config",
];

#[test]
fn healthy_node_has_zero_findings_and_nothing_unknown() {
    let s = snapshot_of(fixture("healthy"));
    let r = run_checks(std::slice::from_ref(&s), &[]);
    assert_eq!(r.checks_run.len(), node_doctor_core::checks::all().len());
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    // The capture is of a machine without Kubernetes: the kubelet and runtime checks say so
    // (unknown, with why), everything else concludes.
    for u in &r.unknown {
        assert!(KUBERNETES_CHECKS.contains(&u.check.as_str()), "{u:?}");
        assert!(
            u.reason.contains("no kubelet")
                || u.reason.contains("no log of kubelet")
                || u.reason.contains("no container runtime")
                || u.reason.contains("image pulls cannot be seen"),
            "{u:?}"
        );
    }
    assert_eq!(
        r.inconclusive.len(),
        KUBERNETES_CHECKS.len(),
        "{:?}",
        r.inconclusive
    );
    // This machine has no conntrack module loaded: those two sysctls are absent, nothing else.
    assert!(
        s.unavailable
            .iter()
            .all(|u| u.path.starts_with("proc/sys/net/netfilter/")),
        "{:#?}",
        s.unavailable
    );
    let scan = s.process_scan.as_ref().unwrap();
    assert!(scan.problems.is_empty(), "{:#?}", scan.problems);
    assert_eq!(s.process_list().len(), 5);
    assert_eq!(s.sysctl_u64("kernel.pid_max"), Ok(32768));
    assert_eq!(s.host.kernel_release.as_deref(), Some("6.18.44-fc-v657"));
    assert!(s.mounts.as_ref().is_some_and(|m| !m.is_empty()));
    assert!(
        s.cgroups
            .as_ref()
            .unwrap()
            .controllers
            .iter()
            .any(|c| c.name == "memory")
    );
    assert!(s.pressure.memory.is_some());
    assert!(s.meminfo.is_some());
    // The tree's own clock, page size and kernel ring, not the test machine's.
    assert_eq!(s.collected_at_ms, 1_795_356_000_000);
    assert_eq!((s.page_size, s.clock_ticks_per_sec), (4096, 100));
    assert_eq!(s.kernel_log.as_ref().map(|k| k.records.len()), Some(4));
    let fs = s.filesystems.as_ref().unwrap();
    assert_eq!(fs.len(), 1, "only / exists in the tree: {fs:#?}");
    assert_eq!(fs[0].blocks_total, 66_053_021);
}

#[test]
fn captured_nasty_comm_and_container_cgroup() {
    let s = snapshot_of(fixture("healthy"));
    let nasty = s.process(4823).expect("pid 4823");
    assert_eq!(nasty.comm, "(a) b)");
    assert_eq!(nasty.ppid, 4820);
    let ctr = s.process(4824).expect("pid 4824");
    assert_eq!(
        ctr.owner.container_id.as_deref(),
        Some("3f1c9a27d0b4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e")
    );
    assert_eq!(
        ctr.owner.pod_uid.as_deref(),
        Some("5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c")
    );
    let init = s.process(1).expect("pid 1");
    assert_eq!(init.open_fds, Some(250));
    assert_eq!(init.rlimit_nofile.map(|l| l.soft), Some(Some(32768)));
    let kthreadd = s.process(2).expect("pid 2");
    assert_eq!(kthreadd.comm, "kthreadd");
}

#[test]
fn pid_exhaustion_scenario_is_critical_with_top_thread_holders() {
    let s = snapshot_of(fixture("pid-exhaustion"));
    let r = run_checks(std::slice::from_ref(&s), TREE_CHECKS);
    assert_eq!(r.findings.len(), 1, "{:#?}", r.findings);
    let f = &r.findings[0];
    assert_eq!(f.check, "pid-exhaustion");
    assert_eq!(f.severity, Severity::Critical);
    let tasks = f.measure("tasks").unwrap();
    assert_eq!((tasks.value, tasks.limit), (81.0, Some(88.0)), "{f:#?}");
    assert!(
        f.evidence
            .iter()
            .any(|e| e.source == "/proc/sys/kernel/pid_max" && e.observed == "88")
    );
    assert!(!f.subjects.is_empty());
    assert!(f.subjects.iter().all(|s| s.pid.is_some()));
}

#[test]
fn fd_exhaustion_scenario_names_the_top_holder() {
    let s = snapshot_of(fixture("fd-exhaustion"));
    let r = run_checks(std::slice::from_ref(&s), TREE_CHECKS);
    assert_eq!(r.findings.len(), 1, "{:#?}", r.findings);
    let f = &r.findings[0];
    assert_eq!(f.check, "fd-exhaustion");
    assert_eq!(f.severity, Severity::Critical);
    assert_eq!(f.subjects[0].pid, Some(1));
    assert_eq!(f.subjects[0].comm.as_deref(), Some("process_api"));
    assert!(
        f.evidence
            .iter()
            .any(|e| e.source == "/proc/1/fd" && e.observed.contains("250 fds"))
    );
}

#[test]
fn bad_input_is_reported_by_file_and_the_rest_still_runs() {
    let s = snapshot_of(fixture("bad-input"));
    let unavailable: Vec<String> = s.unavailable.iter().map(|u| u.to_string()).collect();
    let scan = s.process_scan.as_ref().unwrap();
    let problems: Vec<String> = scan.problems.iter().map(|u| u.to_string()).collect();
    let has = |list: &[String], needle: &str| list.iter().any(|l| l.starts_with(needle));
    assert!(
        has(&unavailable, "/proc/sys/kernel/threads-max:"),
        "{unavailable:#?}"
    );
    assert!(
        has(&unavailable, "/proc/meminfo: malformed"),
        "{unavailable:#?}"
    );
    assert!(
        has(&unavailable, "/proc/loadavg: malformed"),
        "{unavailable:#?}"
    );
    assert!(
        has(&problems, "/proc/4824/stat: malformed"),
        "{problems:#?}"
    );
    assert!(
        has(&problems, "/proc/4823/status: malformed"),
        "{problems:#?}"
    );
    assert!(has(&problems, "/proc/2/limits: malformed"), "{problems:#?}");
    // pid 15 vanished (empty directory): counted, not a problem.
    assert!(
        !problems.iter().any(|p| p.contains("/proc/15/")),
        "{problems:#?}"
    );
    assert_eq!(scan.vanished, 2, "15 vanished; 4824's stat is unusable");
    let pids: Vec<i32> = s.process_list().iter().map(|p| p.pid).collect();
    assert_eq!(pids, vec![1, 2, 4823]);
    // What could be read is kept: 4823's comm from stat although its status is cut, and
    // what could not is unknown, not root with no signals.
    let cut = s.process(4823).unwrap();
    assert_eq!(cut.comm, "(a) b)");
    assert_eq!((cut.uid, cut.cap_eff, cut.sig_pending), (None, None, None));
    assert!(s.process(2).unwrap().rlimit_nofile.is_none());

    // Checks still run: pid-exhaustion falls back to the scan's thread count.
    let r = run_checks(std::slice::from_ref(&s), TREE_CHECKS);
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    // The one thing that could not be judged: pid 2's fd limit (its limits file is cut).
    assert_eq!(r.unknown.len(), 1, "{:#?}", r.unknown);
    assert_eq!(r.unknown[0].check, "fd-leak");
    assert!(
        r.unknown[0]
            .reason
            .contains("1 processes without a readable /proc/PID/limits")
    );
    assert_eq!(r.checks_run, TREE_CHECKS);
}

#[test]
fn missing_sysctl_makes_its_check_unknown_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // An empty host root: nothing readable at all.
    let s = snapshot_of(dir.path());
    let r = run_checks(std::slice::from_ref(&s), TREE_CHECKS);
    assert!(r.findings.is_empty());
    let reasons: Vec<_> = r
        .unknown
        .iter()
        .map(|u| format!("{}: {}", u.check, u.reason))
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("pid-exhaustion: /proc/sys/kernel/pid_max:")),
        "{reasons:#?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("fd-exhaustion: /proc/sys/fs/file-nr:")),
        "{reasons:#?}"
    );
}

#[test]
fn cli_replays_a_fixture_root_as_json() {
    let root = fixture("pid-exhaustion");
    let (code, doc) = check_json(&[
        "--root",
        root.to_str().unwrap(),
        "--window",
        "0",
        "--only",
        "pid-exhaustion",
    ]);
    assert_eq!(code, 1, "a critical finding exits 1");
    assert_eq!(doc["schema"], "node-doctor.check/v1");
    let f = findings_of(&doc, "pid-exhaustion");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["severity"], "critical");
    let (code, _) = check_json(&[
        "--root",
        fixture("healthy").to_str().unwrap(),
        "--window",
        "0",
        "--only",
        "pid-exhaustion",
    ]);
    assert_eq!(code, 0);
}

/// Two samples of the same tree: what one-shot `check --window` gives on a node where
/// nothing changes in between.
fn two_samples(scenario: &str) -> Vec<Snapshot> {
    let a = snapshot_of(fixture(scenario));
    let mut b = snapshot_of(fixture(scenario));
    b.collected_at_ms = a.collected_at_ms + 1000;
    vec![a, b]
}

fn only<'a>(r: &'a Report, check: &str) -> Vec<&'a Finding> {
    r.findings.iter().filter(|f| f.check == check).collect()
}

const CRON_POD: &str = "8e2b1f3a-4c5d-4e6f-8a7b-9c0d1e2f3a4b";
const CRON_CTR: &str = "9d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f4";
const NFS_POD: &str = "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9";
const NFS_CTR: &str = "5e4d3c2b1a0f9e8d7c6b5a4938271605f4e3d2c1b0a99887766554433221100f";

#[test]
fn kernel_5_4_files_parse() {
    let s = snapshot_of(fixture("kernel-5.4"));
    assert_eq!(s.host.kernel_release.as_deref(), Some("5.4.0-1045-aws"));
    let scan = s.process_scan.as_ref().unwrap();
    assert!(scan.problems.is_empty(), "{:#?}", scan.problems);
    assert_eq!(s.process_list().len(), 70);
    // No PSI on 5.4 by default: said so, not a parse error.
    assert!(s.pressure.memory.is_none());
    assert!(
        s.unavailable
            .iter()
            .any(|u| u.path == "proc/pressure/memory")
    );
    let rsync = s.process(3199).unwrap();
    assert_eq!(rsync.state, ProcState::DiskSleep);
    assert_eq!(rsync.sigkill_pending(), Some(true));
    assert_eq!(rsync.wchan.as_deref(), Some("rpc_wait_bit_killable"));
    assert_eq!(rsync.kernel_stack.as_ref().map(Vec::len), Some(12));
    assert_eq!(rsync.ns_pid, Some(1));
    assert_eq!(rsync.owner.container_id.as_deref(), Some(NFS_CTR));
    // Zombies have no Vm* lines in status and an empty fd directory.
    let z = s.process(4000).unwrap();
    assert_eq!(
        (z.state, z.ppid, z.uid, z.open_fds),
        (ProcState::Zombie, 3101, Some(33), Some(0))
    );
    assert_eq!(
        s.cgroups
            .as_ref()
            .unwrap()
            .v1_mounts
            .get("pids")
            .map(String::as_str),
        Some("/sys/fs/cgroup/pids")
    );
}

#[test]
fn kernel_5_4_zombies_under_a_container_init_and_a_full_pod() {
    let samples = two_samples("kernel-5.4");
    let r = run_checks(&samples, TREE_CHECKS);

    let z = only(&r, "zombie-processes");
    assert_eq!(z.len(), 1, "{z:#?}");
    assert_eq!(z[0].severity, Severity::Warning);
    assert_eq!(z[0].subjects[0].pid, Some(3101));
    assert_eq!(z[0].subjects[0].comm.as_deref(), Some("supercronic"));
    assert_eq!(z[0].subjects[0].container_id.as_deref(), Some(CRON_CTR));
    assert_eq!(z[0].subjects[0].pod.as_deref(), Some(CRON_POD));
    assert_eq!(z[0].measure("zombies").map(|m| m.value), Some(60.0));
    assert_eq!(
        z[0].measure("zombies_earlier").map(|m| m.value),
        Some(60.0),
        "steady"
    );
    assert_eq!(z[0].key, "zombie-processes/process:3101:40100");
    assert!(
        z[0].cause.contains("PID 1 of a container"),
        "{}",
        z[0].cause
    );

    let p = only(&r, "pid-exhaustion");
    assert_eq!(p.len(), 1, "{p:#?}");
    assert_eq!(p[0].severity, Severity::Critical);
    assert_eq!(p[0].subjects[0].kind, SubjectKind::Pod);
    assert_eq!(p[0].subjects[0].pod.as_deref(), Some(CRON_POD));
    assert_eq!(p[0].subjects[1].pid, Some(3101), "top process by threads");
    let pids = p[0].measure("pids").unwrap();
    assert_eq!((pids.value, pids.limit), (96.0, Some(100.0)));
    assert_eq!(p[0].measure("zombies").map(|m| m.value), Some(60.0));
    assert!(
        p[0].evidence
            .iter()
            .any(|e| e.observed.contains("60 of its processes are zombies"))
    );
}

#[test]
fn kernel_5_4_killed_nfs_reader_is_a_stuck_container_stop() {
    // One sample: cannot tell, says so; the stop is a warning.
    let one = snapshot_of(fixture("kernel-5.4"));
    let r = run_checks(std::slice::from_ref(&one), TREE_CHECKS);
    assert!(only(&r, "d-state-processes").is_empty());
    assert!(
        r.unknown
            .iter()
            .any(|u| u.check == "d-state-processes" && u.reason.contains("3199 (rsync)")),
        "{:#?}",
        r.unknown
    );
    let s = only(&r, "stuck-container-stop");
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].severity, Severity::Warning);

    // Two samples: critical, with wchan, stack, container, pod and the shim.
    let r = run_checks(&two_samples("kernel-5.4"), TREE_CHECKS);
    let d = only(&r, "d-state-processes");
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].severity, Severity::Critical);
    assert_eq!(d[0].subjects[0].pid, Some(3199));
    assert!(
        d[0].summary.contains("wchan rpc_wait_bit_killable"),
        "{}",
        d[0].summary
    );
    assert!(d[0].summary.contains("SIGKILL pending"));
    assert!(
        d[0].evidence
            .iter()
            .any(|e| e.source == "/proc/3199/stack" && e.observed.contains("nfs4_proc_getattr"))
    );
    assert_eq!(d[0].subjects[1].container_id.as_deref(), Some(NFS_CTR));

    let s = only(&r, "stuck-container-stop");
    assert_eq!(s.len(), 1, "{s:#?}");
    assert_eq!(s[0].severity, Severity::Critical);
    assert_eq!(s[0].subjects[0].kind, SubjectKind::Container);
    assert_eq!(s[0].subjects[0].container_id.as_deref(), Some(NFS_CTR));
    assert_eq!(s[0].subjects[0].pod.as_deref(), Some(NFS_POD));
    assert!(
        s[0].evidence
            .iter()
            .any(|e| e.observed.contains("3180 (containerd-shim)"))
    );
    assert!(s[0].evidence.iter().any(|e| {
        e.observed
            .contains(&format!("/kubepods/besteffort/pod{NFS_POD}/{NFS_CTR}"))
    }));
}

#[test]
fn a_runtime_daemon_growing_while_a_container_is_stuck_is_named() {
    let mut samples = two_samples("kernel-5.4");
    // dockerd gains 64 fds and 6 threads between samples three minutes apart (incident 4's
    // leak; growth is a claim over fd-leak.growth_window, two minutes by default).
    samples[1].collected_at_ms = samples[0].collected_at_ms + 180_000;
    let d = samples[1]
        .processes
        .as_mut()
        .unwrap()
        .iter_mut()
        .find(|p| p.pid == 1101)
        .unwrap();
    d.open_fds = Some(404);
    d.threads = 67;
    let r = run_checks(&samples, TREE_CHECKS);
    let s = only(&r, "stuck-container-stop");
    assert!(
        s[0].subjects.iter().any(|x| x.pid == Some(1101)),
        "{:#?}",
        s[0]
    );
    assert!(
        s[0].evidence.iter().any(|e| e
            .observed
            .contains("1101 (dockerd), runtime daemon dockerd: fds 340 → 404, threads 61 → 67")),
        "{:#?}",
        s[0].evidence
    );
    let leak = only(&r, "fd-leak");
    assert_eq!(leak.len(), 1, "{leak:#?}");
    assert_eq!(leak[0].subjects[0].pid, Some(1101));
    assert!(leak[0].summary.contains("runtime daemon dockerd"));
    assert_eq!(leak[0].measure("fds").map(|m| m.value), Some(404.0));
    assert_eq!(leak[0].measure("fds_first").map(|m| m.value), Some(340.0));
    assert!(leak[0].cause.contains("incident 4"));
}

const V2_POD: &str = "2a7f9c4e-1d3b-4e8a-9f6c-5b0d7e3a1c92";

#[test]
fn cgroup_v2_pod_at_pids_max_and_container_near_its_own() {
    let s = snapshot_of(fixture("cgroup-v2-pids"));
    let cg = s.cgroups.as_ref().unwrap();
    assert_eq!(cg.v2_mount.as_deref(), Some("/sys/fs/cgroup"));
    assert!(cg.v1_mounts.is_empty());
    // Kept: the pod (limit, refusals) and the container with a limit; not system.slice
    // (no limit, no refusal) nor the container scope under the pod (pids.max "max").
    let kept: Vec<_> = cg
        .pids
        .iter()
        .map(|c| (c.hierarchy.as_str(), c.current, c.max, c.events_max))
        .collect();
    assert_eq!(
        kept,
        vec![("v2", 1024, Some(1024), 37), ("v2", 85, Some(100), 0)]
    );

    let r = run_checks(std::slice::from_ref(&s), TREE_CHECKS);
    let p = only(&r, "pid-exhaustion");
    assert_eq!(p.len(), 2, "{p:#?}");
    assert_eq!(p[0].severity, Severity::Critical);
    assert_eq!(p[0].subjects[0].kind, SubjectKind::Pod);
    assert_eq!(p[0].subjects[0].pod.as_deref(), Some(V2_POD));
    assert_eq!(p[0].subjects[1].pid, Some(7001));
    assert_eq!(p[0].subjects[1].comm.as_deref(), Some("java"));
    assert_eq!(
        p[0].subjects[1].container_id.as_deref(),
        Some("c0ffee1234567890abcdef1234567890abcdef1234567890abcdef1234567890")
    );
    assert_eq!(p[0].measure("forks_refused").map(|m| m.value), Some(37.0));
    assert_eq!(p[1].severity, Severity::Warning);
    assert_eq!(p[1].subjects[0].kind, SubjectKind::Container);
    assert_eq!(
        p[1].subjects[0].container_id.as_deref(),
        Some("aa11bb22cc33dd44ee55ff6600778899aabbccddeeff00112233445566778899")
    );
}

#[test]
fn cgroup_v2_forks_refused_during_the_window_are_critical() {
    let mut samples = two_samples("cgroup-v2-pids");
    // The container near its limit starts refusing forks between the samples.
    let c = samples[1]
        .cgroups
        .as_mut()
        .unwrap()
        .pids
        .iter_mut()
        .find(|c| c.max == Some(100))
        .unwrap();
    c.events_max = 4;
    let r = run_checks(&samples, &["pid-exhaustion"]);
    let p = only(&r, "pid-exhaustion");
    let ctr = p
        .iter()
        .find(|f| f.subjects[0].kind == SubjectKind::Container)
        .unwrap();
    assert_eq!(ctr.severity, Severity::Critical);
    assert!(
        ctr.summary
            .contains("4 forks refused (4 during the window)"),
        "{}",
        ctr.summary
    );
    // The pod's 37 refusals happened before the window and did not grow: usage alone
    // (at its limit) keeps it critical.
    let pod = p
        .iter()
        .find(|f| f.subjects[0].kind == SubjectKind::Pod)
        .unwrap();
    assert_eq!(pod.severity, Severity::Critical);
    assert!(!pod.summary.contains("during the window"));
}

fn incident_1() -> Vec<Snapshot> {
    let path = fixture("incident-1-runc-init").with_file_name("recording.json");
    Recording::from_slice("recording.json", &std::fs::read(path).unwrap())
        .expect("the incident's recording loads")
        .samples
}

#[test]
fn incident_1_runc_init_blocked_on_an_8k_pipe_is_critical() {
    let samples = incident_1();
    let r = run_checks(&samples, &["runc-init-hang", "pipe-quota"]);
    assert!(r.unknown.is_empty(), "{:#?}", r.unknown);

    let h = only(&r, "runc-init-hang");
    assert_eq!(h.len(), 1, "{h:#?}");
    assert_eq!(h[0].severity, Severity::Critical);
    assert_eq!(h[0].subjects[0].pid, Some(5160));
    assert_eq!(h[0].subjects[0].comm.as_deref(), Some("runc:[2:INIT]"));
    assert_eq!(
        h[0].subjects[1].comm.as_deref(),
        Some("containerd-shim"),
        "its parent shim"
    );
    assert_eq!(
        h[0].subjects[2].container_id.as_deref(),
        Some("7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b")
    );
    let summary = &h[0].summary;
    assert!(summary.contains("alive for 10m00s"), "{summary}");
    assert!(summary.contains("wchan pipe_write"), "{summary}");
    assert!(
        summary.contains("shrunk 8192-byte pipe on fd 4,6"),
        "{summary}"
    );
    let ev = |src: &str| {
        h[0].evidence
            .iter()
            .find(|e| e.source == src)
            .map(|e| e.observed.clone())
    };
    assert_eq!(
        ev("/proc/5160/fd/4,6").as_deref(),
        Some("pipe:[41222] 8192 bytes, 8192 buffered")
    );
    assert_eq!(
        ev("runc version").as_deref(),
        Some("package runc 1.0.0~rc10+dfsg2-1 (binary /usr/sbin/runc)")
    );

    let q = only(&r, "pipe-quota");
    assert_eq!(q.len(), 1, "{q:#?}");
    assert_eq!(q[0].severity, Severity::Critical);
    assert_eq!(q[0].subjects[0].uid, Some(0));
    assert_eq!(q[0].key, "pipe-quota/user:0");
    // 65 pipes of 256 pages + one of 2.
    let pages = q[0].measure("pipe_pages").unwrap();
    assert_eq!((pages.value, pages.limit), (16642.0, Some(16384.0)));
    assert_eq!(q[0].measure("pipes").map(|m| m.value), Some(66.0));
    assert_eq!(q[0].measure("shrunk_pipes").map(|m| m.value), Some(1.0));
    assert!(
        q[0].summary.contains("containers 7a6b5c4d3e2f"),
        "{}",
        q[0].summary
    );
}

#[test]
fn a_younger_runc_init_or_a_full_size_pipe_is_less_than_critical() {
    let mut samples = incident_1();
    // The same node with the pipe at full size: still a hang (warning), not the quota's doing.
    for p in &mut samples[0].pipes.as_mut().unwrap().pipes {
        p.size_bytes = Some(65536);
    }
    let r = run_checks(&samples, &["runc-init-hang"]);
    assert_eq!(only(&r, "runc-init-hang")[0].severity, Severity::Warning);
    // With a threshold above its age it is not reported at all.
    let mut cfg = Config::default();
    cfg.set("runc-init-hang.threshold=1h").unwrap();
    let r = run_checks_with(&samples, &["runc-init-hang"], &cfg);
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
}

#[test]
fn the_incident_tree_itself_replays_with_the_pipe_sizes_its_descriptor_records() {
    let s = snapshot_of(fixture("incident-1-runc-init"));
    let scan = s.pipes.as_ref().unwrap();
    assert_eq!(scan.sizing, node_doctor_core::model::Sizing::Fixture);
    assert_eq!(scan.pipes.len(), 66);
    let p = scan.pipes.iter().find(|p| p.inode == 41222).unwrap();
    assert_eq!(
        p.holders.iter().map(|h| (h.pid, h.fd)).collect::<Vec<_>>(),
        vec![(5160, 4), (5160, 6)]
    );
    assert_eq!((p.size_bytes, p.buffered_bytes), (Some(8192), Some(8192)));
    let r = run_checks(std::slice::from_ref(&s), &["pipe-quota", "runc-init-hang"]);
    assert!(r.unknown.is_empty(), "{:#?}", r.unknown);
    assert_eq!(only(&r, "runc-init-hang")[0].severity, Severity::Critical);
    assert_eq!(only(&r, "pipe-quota")[0].severity, Severity::Critical);
}

#[test]
fn a_tree_without_pipe_sizes_finds_the_pipes_but_says_why_it_cannot_size_them() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture("incident-1-runc-init"), dir.path());
    let d = dir.path().join(".node-doctor-fixture.json");
    let mut desc: serde_json::Value = serde_json::from_slice(&std::fs::read(&d).unwrap()).unwrap();
    desc.as_object_mut().unwrap().remove("pipes");
    std::fs::write(&d, serde_json::to_vec(&desc).unwrap()).unwrap();
    let s = snapshot_of(dir.path());
    let scan = s.pipes.as_ref().unwrap();
    assert_eq!(scan.sizing, node_doctor_core::model::Sizing::None);
    assert_eq!(scan.pipes.len(), 66);
    let r = run_checks(std::slice::from_ref(&s), &["pipe-quota"]);
    assert!(r.findings.is_empty());
    assert_eq!(r.inconclusive, vec!["pipe-quota"]);
    assert!(
        r.unknown[0].reason.contains("records no pipe sizes"),
        "{:#?}",
        r.unknown
    );
}

/// The healthy tree with a kubelet filesystem mounted and `statvfs` answers for it: what a
/// full /var/lib/kubelet looks like, checked without root, a tmpfs or this machine's disks.
fn with_kubelet_fs(blocks_avail: u64, files_free: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture("healthy"), dir.path());
    let mi = dir.path().join("proc/1/mountinfo");
    let mut text = std::fs::read_to_string(&mi).unwrap();
    text.push_str(
        "900 27 259:3 / /var/lib/kubelet rw,relatime - xfs /dev/nvme1n1 rw,attr2,inode64\n",
    );
    std::fs::write(&mi, text).unwrap();
    let d = dir.path().join(".node-doctor-fixture.json");
    let mut desc: serde_json::Value = serde_json::from_slice(&std::fs::read(&d).unwrap()).unwrap();
    desc["statvfs"]["/var/lib/kubelet"] = serde_json::json!({
        "block_size": 4096, "blocks": 1000, "blocks_free": blocks_avail, "blocks_avail": blocks_avail,
        "files": 1000, "files_free": files_free
    });
    std::fs::write(&d, serde_json::to_vec(&desc).unwrap()).unwrap();
    dir
}

#[test]
fn disk_pressure_on_a_fixture_names_the_full_kubelet_filesystem() {
    let full = with_kubelet_fs(39, 900);
    let s = snapshot_of(full.path());
    let r = run_checks(std::slice::from_ref(&s), &["disk-pressure"]);
    let d = only(&r, "disk-pressure");
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].severity, Severity::Critical);
    assert_eq!(d[0].key, "disk-pressure/filesystem:/var/lib/kubelet");
    assert_eq!(d[0].subjects[0].path.as_deref(), Some("/var/lib/kubelet"));
    let used = d[0].measure("blocks_used_ratio").unwrap();
    assert!((used.value - 0.961).abs() < 1e-9, "{used:?}");
    assert!(
        d[0].cause.contains("kubelet evicts"),
        "the kubelet role's cause"
    );

    // Inodes only: space left, inodes gone.
    let inodes = with_kubelet_fs(800, 10);
    let r = run_checks(&[snapshot_of(inodes.path())], &["disk-pressure"]);
    let d = only(&r, "disk-pressure");
    assert_eq!(d[0].severity, Severity::Critical);
    assert_eq!(
        d[0].measure("inodes_used_ratio").map(|m| m.value),
        Some(0.99)
    );

    // Healthy: measured, nothing reported.
    let ok = with_kubelet_fs(800, 900);
    let r = run_checks(&[snapshot_of(ok.path())], &["disk-pressure"]);
    assert!(r.findings.is_empty() && r.unknown.is_empty(), "{:#?}", r);
}

#[test]
fn kernel_log_on_a_fixture_ring_names_the_hung_task_and_the_skipped_dump() {
    let s = snapshot_of(fixture("kernel-5.4"));
    assert_eq!(
        s.kernel_log.as_ref().and_then(|k| k.via.as_deref()),
        Some("fixture")
    );
    let r = run_checks(std::slice::from_ref(&s), &["kernel-log"]);
    let reasons: Vec<(&str, Option<i32>)> = only(&r, "kernel-log")
        .iter()
        .map(|f| {
            (
                f.log.as_ref().unwrap().reason.as_str(),
                f.subjects.first().and_then(|s| s.pid),
            )
        })
        .collect();
    assert!(reasons.contains(&("TaskHung", Some(3199))), "{reasons:?}");
    assert!(
        reasons.contains(&("CoreDumpSkipped", Some(4242))),
        "{reasons:?}"
    );
}

// ---- Kubelet and runtime (issue 15) ------------------------------------------------------

/// Incident 1 end to end from its recording: PLEG lines in the kubelet's log, the CRI not
/// answering, a `runc init` on a shrunk pipe and uid 0 over its pipe quota give one causal
/// chain with `pipe-quota` at its root; every container subject names its pod.
#[test]
fn incident_1_is_one_chain_rooted_at_the_pipe_quota_with_pod_names() {
    let samples = incident_1();
    let r = run_checks(&samples, &[]);
    let key = |check: &str| only(&r, check)[0].key.clone();
    let pleg = only(&r, "pleg-unhealthy");
    assert_eq!(pleg.len(), 1, "{pleg:#?}");
    assert_eq!(pleg[0].severity, Severity::Critical);
    assert_eq!(pleg[0].measure("pleg_unhealthy_lines").unwrap().value, 5.0);
    assert!(pleg[0].caused_by.contains(&key("runc-init-hang")));
    assert!(pleg[0].caused_by.contains(&key("runtime-health")));
    let runc = only(&r, "runc-init-hang");
    assert_eq!(runc[0].caused_by, vec![key("pipe-quota")]);
    let quota = only(&r, "pipe-quota");
    assert!(quota[0].caused_by.is_empty(), "the root");
    let chains = node_doctor_core::causes::chains(&r.findings);
    assert!(!chains.is_empty());
    for c in &chains {
        assert_eq!(r.findings[c[0]].check, "pipe-quota", "{chains:?}");
        assert_eq!(r.findings[*c.last().unwrap()].check, "pleg-unhealthy");
    }
    let rt = only(&r, "runtime-health");
    assert_eq!(rt[0].severity, Severity::Critical);
    assert_eq!(rt[0].measure("cri_timeouts").unwrap().value, 1.0);
    // The CRI timed out: the names come from /var/log/pods and /var/log/containers.
    assert_eq!(
        samples[0].workloads.as_ref().map(|w| w.source.as_str()),
        Some("var/log/pods")
    );
    let ctr = runc[0]
        .subjects
        .iter()
        .find(|s| s.kind == SubjectKind::Container)
        .unwrap();
    assert_eq!(ctr.namespace.as_deref(), Some("shop"));
    assert_eq!(ctr.pod_name.as_deref(), Some("cart-7d9f4c-x2x8p"));
    assert_eq!(ctr.container_name.as_deref(), Some("cart"));
    // The kubelet 1.19 of that node ran on the old API defaults.
    let cfg = only(&r, "kubelet-config");
    let qps = cfg
        .iter()
        .find(|f| f.key == "kubelet-config/setting:kubeAPIQPS")
        .unwrap();
    assert_eq!(qps.measure("kube_api_qps").unwrap().value, 5.0);
}

#[test]
fn the_chain_shows_root_first_in_human_output() {
    let root = fixture("incident-1-runc-init");
    let out = node_doctor()
        .args(["check", "--root", root.to_str().unwrap(), "--window", "0"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let chain = text
        .split("Causal chains (root cause first):")
        .nth(1)
        .expect("a chain section")
        .split("\n\n")
        .next()
        .unwrap();
    let first = chain.lines().find(|l| !l.trim().is_empty()).unwrap();
    assert!(first.contains("pipe-quota"), "{chain}");
    let order: Vec<usize> = ["pipe-quota", "runc-init-hang", "pleg-unhealthy"]
        .iter()
        .map(|c| chain.find(c).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{chain}");
    assert!(text.contains("pod shop/cart-7d9f4c-x2x8p"), "{text}");
    assert!(text.contains("caused by: pipe-quota/user:0"));
}

/// The same tree with the runtime answering (a CRI recording with pods and containers):
/// the names come from the CRI, and runtime-health is quiet.
#[test]
fn recorded_cri_answers_name_pods_and_a_healthy_runtime_is_quiet() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture("incident-1-runc-init"), dir.path());
    let d = dir.path().join(".node-doctor-fixture.json");
    let mut desc: serde_json::Value = serde_json::from_slice(&std::fs::read(&d).unwrap()).unwrap();
    let ctr = "7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b";
    desc["cri"] = serde_json::json!({
        "probe": {"endpoint": "/run/containerd/containerd.sock", "chosen_by": "test", "deadline_ms": 2000,
                  "calls": [{"method": "Version", "outcome": "ok", "ms": 1.5},
                            {"method": "Status", "outcome": "ok", "ms": 0.9}],
                  "version": {"version": "0.1.0", "runtime_name": "containerd", "runtime_version": "v1.6.20",
                              "runtime_api_version": "v1"},
                  "conditions": [{"type": "RuntimeReady", "status": true}, {"type": "NetworkReady", "status": true}]},
        "workloads": {"source": "cri",
                      "pods": [{"uid": "0c9d8e7f-6a5b-4c3d-9e2f-1a0b9c8d7e6f", "namespace": "payments",
                                "name": "ledger-0", "sandbox_id": "sb1", "state": "ready"}],
                      "containers": [{"id": ctr, "name": "ledger", "sandbox_id": "sb1", "state": "running"}]}
    });
    std::fs::write(&d, serde_json::to_vec(&desc).unwrap()).unwrap();
    let s = snapshot_of(dir.path());
    let r = run_checks(
        std::slice::from_ref(&s),
        &["runtime-health", "runc-init-hang"],
    );
    assert!(only(&r, "runtime-health").is_empty(), "{:#?}", r.findings);
    assert!(r.unknown.is_empty(), "{:#?}", r.unknown);
    let runc = only(&r, "runc-init-hang");
    let c = runc[0]
        .subjects
        .iter()
        .find(|s| s.kind == SubjectKind::Container)
        .unwrap();
    assert_eq!(
        (
            c.namespace.as_deref(),
            c.pod_name.as_deref(),
            c.container_name.as_deref()
        ),
        (Some("payments"), Some("ledger-0"), Some("ledger"))
    );
}

/// The same kubelet command line and config file on two kubelet versions: the API QPS
/// defaults changed in 1.27 (5/10 → 50/100), so only the older one is reported.
#[test]
fn kubelet_defaults_follow_the_installed_version() {
    for (version, qps) in [("1.26.9-00", Some(5.0)), ("1.28.4-1.1", None)] {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&fixture("incident-1-runc-init"), dir.path());
        let status = dir.path().join("var/lib/dpkg/status");
        let text = std::fs::read_to_string(&status)
            .unwrap()
            .replace("Version: 1.19.7-00", &format!("Version: {version}"));
        std::fs::write(&status, text).unwrap();
        let s = snapshot_of(dir.path());
        assert_eq!(
            s.kubelet.as_ref().and_then(|k| k.version.as_deref()),
            Some(version)
        );
        let r = run_checks(std::slice::from_ref(&s), &["kubelet-config"]);
        let got = only(&r, "kubelet-config")
            .into_iter()
            .find(|f| f.key == "kubelet-config/setting:kubeAPIQPS")
            .map(|f| f.measure("kube_api_qps").unwrap().value);
        assert_eq!(got, qps, "{version}");
    }
}

const JAVA_POD: &str = "6d5c4b3a-2f1e-4d0c-9b8a-7f6e5d4c3b2a";
const JAVA_CTR: &str = "4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a39281706f5e4d3c2b1a0f9";

#[test]
fn kernel_5_4_memory_cgroups_parse_in_5_4_formats() {
    let s = snapshot_of(fixture("kernel-5.4"));
    let cg = s.cgroups.as_ref().unwrap();
    assert_eq!(cg.memory_hierarchy(), Some(Hierarchy::V1));
    assert_eq!(cg.v1_directories.get("memory"), Some(&12));
    let pod = cg
        .memory_cgroup(&format!("/kubepods/burstable/pod{JAVA_POD}"))
        .unwrap();
    assert_eq!(
        (pod.limit_bytes, pod.failcnt),
        (Some(512 << 20), Some(88412))
    );
    // v1 memory.stat has no refault counter before 5.12; major faults are there.
    assert_eq!(pod.stat.workingset_refault, None);
    assert_eq!(pod.stat.pgmajfault, Some(5122));
    let ctr = cg
        .memory_cgroup(&format!("/kubepods/burstable/pod{JAVA_POD}/{JAVA_CTR}"))
        .unwrap();
    assert_eq!(ctr.oom_control.map(|o| o.oom_kill), Some(1));
    assert_eq!(
        pod.oom_control.map(|o| o.oom_kill),
        Some(0),
        "not hierarchical"
    );
    // Unlimited is no limit, not 8 EiB.
    assert_eq!(cg.memory_cgroup("/").unwrap().limit_bytes, None);
    // 5.4's /proc/vmstat: one refault counter.
    assert!(s.vmstat.contains_key("workingset_refault"));
    assert!(!s.vmstat.contains_key("workingset_refault_file"));
    assert!(cg.memory_stat_latency.is_some());
}

#[test]
fn kernel_5_4_pod_limit_oom_kill_and_dying_memcgs_before_5_9() {
    let r = run_checks(
        &two_samples("kernel-5.4"),
        &["oom-kills", "dying-memcgs", "memory-thrashing"],
    );
    let o = only(&r, "oom-kills");
    assert_eq!(o.len(), 1, "{o:#?}");
    assert_eq!(o[0].key, format!("oom-kills/pod:{JAVA_POD}"));
    assert_eq!(o[0].severity, Severity::Warning);
    assert_eq!(o[0].subjects[0].pid, Some(5188));
    assert_eq!(o[0].subjects[0].container_id.as_deref(), Some(JAVA_CTR));
    assert_eq!(o[0].subjects[0].pod.as_deref(), Some(JAVA_POD));
    assert_eq!(o[0].subjects[1].kind, SubjectKind::Pod);
    assert_eq!(o[0].measure("victim_pid").map(|m| m.value), Some(5188.0));
    let used = o[0].measure("usage_bytes").unwrap();
    assert_eq!(used.limit, Some((512u64 << 20) as f64));
    assert!(
        o[0].evidence
            .iter()
            .any(|e| e.source.ends_with("memory.oom_control")
                && e.observed.starts_with("oom_kill 1")),
        "{:#?}",
        o[0].evidence
    );

    let d = only(&r, "dying-memcgs");
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].measure("dying_memcgs").map(|m| m.value), Some(3250.0));
    assert_eq!(d[0].measure("dying_growth").map(|m| m.value), Some(0.0));
    assert!(d[0].cause.contains("5.9"), "{}", d[0].cause);
    assert!(d[0].remedy.contains("5.9+"), "{}", d[0].remedy);

    // Nothing moved between two reads of the same tree; no PSI on 5.4, said so.
    assert!(only(&r, "memory-thrashing").is_empty());
    assert!(
        r.unknown
            .iter()
            .any(|u| u.check == "memory-thrashing" && u.reason.contains("PSI")),
        "{:#?}",
        r.unknown
    );
}

#[test]
fn kernel_5_4_a_v1_cgroup_thrashing_at_its_limit_shows_in_major_faults() {
    let mut samples = two_samples("kernel-5.4");
    let path = format!("/kubepods/burstable/pod{JAVA_POD}");
    let m = samples[1]
        .cgroups
        .as_mut()
        .unwrap()
        .memory
        .as_mut()
        .unwrap()
        .iter_mut()
        .find(|m| m.path == path)
        .unwrap();
    m.failcnt = Some(88412 + 4000);
    m.stat.pgmajfault = Some(5122 + 6000);
    let r = run_checks(&samples, &["memory-thrashing"]);
    let t = only(&r, "memory-thrashing");
    assert_eq!(t.len(), 1, "{t:#?}");
    assert_eq!(t[0].key, format!("memory-thrashing/cgroup:v1:{path}"));
    assert_eq!(t[0].severity, Severity::Critical, "6000/s ≥ 5000/s");
    assert_eq!(t[0].subjects[0].pod.as_deref(), Some(JAVA_POD));
    assert_eq!(
        t[0].measure("refaults_per_sec").map(|m| m.value),
        Some(6000.0)
    );
    assert_eq!(t[0].measure("limit_hits").map(|m| m.value), Some(4000.0));
    assert!(t[0].summary.contains("major faults"), "{}", t[0].summary);
}

const V2M_THRASH_UID: &str = "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
const V2M_THRASH_CTR: &str = "beef00112233445566778899aabbccddeeff00112233445566778899aabbccdd";
const V2M_OOM_UID: &str = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f";
const V2M_OOM_CTR: &str = "f00d112233445566778899aabbccddeeff00112233445566778899aabbccddee";
const V2M_BURST: &str = "/kubepods.slice/kubepods-burstable.slice";

fn v2m_path(uid: &str, ctr: Option<&str>) -> String {
    let pod = format!(
        "{V2M_BURST}/kubepods-burstable-pod{}.slice",
        uid.replace('-', "_")
    );
    match ctr {
        Some(id) => format!("{pod}/cri-containerd-{id}.scope"),
        None => pod,
    }
}

#[test]
fn cgroup_v2_memory_files_parse() {
    let s = snapshot_of(fixture("cgroup-v2-memory"));
    let cg = s.cgroups.as_ref().unwrap();
    assert_eq!(cg.memory_hierarchy(), Some(Hierarchy::V2));
    assert_eq!(
        (cg.v2_dying_descendants, cg.v2_dying_memory),
        (Some(2450), Some(2431))
    );
    let t = cg
        .memory_cgroup(&v2m_path(V2M_THRASH_UID, Some(V2M_THRASH_CTR)))
        .unwrap();
    assert_eq!(
        (t.high_bytes, t.limit_bytes, t.usage_bytes),
        (Some(512 << 20), Some(768 << 20), Some(508 << 20))
    );
    assert_eq!(t.events.map(|e| e.high), Some(52311));
    let p = t.pressure.as_ref().unwrap();
    assert_eq!((p.some.avg10, p.full.map(|f| f.avg10)), (35.2, Some(12.05)));
    assert_eq!(t.stat.workingset_refault, Some(8_812_311));
    assert_eq!(t.stat.pgscan, Some(9_931_023));
    let pod = cg.memory_cgroup(&v2m_path(V2M_OOM_UID, None)).unwrap();
    assert_eq!(pod.events_local.map(|e| (e.oom, e.oom_kill)), Some((2, 0)));
    assert_eq!(pod.events.map(|e| e.oom_kill), Some(2), "hierarchical");
    assert_eq!(
        cg.memory_cgroup(V2M_BURST).unwrap().dying_descendants,
        Some(2400)
    );
    assert!(cg.pod_uids.iter().any(|u| u == V2M_OOM_UID));
    assert!(cg.container_ids.iter().any(|c| c == V2M_THRASH_CTR));
    assert!(!cg.ids_truncated);
}

#[test]
fn cgroup_v2_memory_a_container_thrashing_at_memory_high_not_the_node() {
    let s = snapshot_of(fixture("cgroup-v2-memory"));
    let r = run_checks(std::slice::from_ref(&s), &["memory-thrashing"]);
    assert!(r.unknown.is_empty(), "{:#?}", r.unknown);
    let t = only(&r, "memory-thrashing");
    assert_eq!(t.len(), 1, "{t:#?}");
    let path = v2m_path(V2M_THRASH_UID, Some(V2M_THRASH_CTR));
    assert_eq!(t[0].key, format!("memory-thrashing/cgroup:v2:{path}"));
    assert_eq!(t[0].severity, Severity::Warning);
    assert_eq!(t[0].subjects[0].kind, SubjectKind::Container);
    assert_eq!(
        t[0].subjects[0].container_id.as_deref(),
        Some(V2M_THRASH_CTR)
    );
    assert_eq!(t[0].subjects[0].pod.as_deref(), Some(V2M_THRASH_UID));
    assert_eq!(t[0].subjects[1].pid, Some(7101));
    let some = t[0].measure("psi_some_avg10").unwrap();
    assert!((some.value - 0.352).abs() < 1e-6, "{some:?}");
    let usage = t[0].measure("usage_bytes").unwrap();
    assert_eq!(
        usage.limit,
        Some((512u64 << 20) as f64),
        "memory.high, not max"
    );
    assert!(
        t[0].summary.contains("not short of memory"),
        "{}",
        t[0].summary
    );
}

#[test]
fn cgroup_v2_memory_pod_limit_oom_kills_and_dying_memcgs() {
    let r = run_checks(
        &two_samples("cgroup-v2-memory"),
        &["oom-kills", "dying-memcgs"],
    );
    let o = only(&r, "oom-kills");
    assert_eq!(o.len(), 1, "{o:#?}");
    assert_eq!(o[0].key, format!("oom-kills/pod:{V2M_OOM_UID}"));
    assert_eq!(o[0].measure("kills").map(|m| m.value), Some(2.0));
    assert_eq!(o[0].measure("victim_pid").map(|m| m.value), Some(7195.0));
    assert_eq!(
        o[0].measure("victim_anon_rss_bytes").map(|m| m.value),
        Some(243_712.0 * 1024.0)
    );
    assert_eq!(o[0].subjects[0].container_id.as_deref(), Some(V2M_OOM_CTR));
    assert_eq!(
        o[0].subjects[1].path.as_deref(),
        Some(v2m_path(V2M_OOM_UID, None).as_str())
    );
    assert!(
        o[0].evidence
            .iter()
            .any(|e| e.source.ends_with("memory.events.local")
                && e.observed.starts_with("oom_kill 2")),
        "{:#?}",
        o[0].evidence
    );

    let d = only(&r, "dying-memcgs");
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].severity, Severity::Warning);
    assert_eq!(d[0].measure("dying_memcgs").map(|m| m.value), Some(2431.0));
    // The deepest parent holding nearly all of them: the QoS slice the CronJob runs in.
    assert_eq!(d[0].subjects[1].path.as_deref(), Some(V2M_BURST));
    assert!(
        d[0].evidence
            .iter()
            .any(|e| e.source == "/sys/fs/cgroup/cgroup.stat")
    );
}

const ORPHAN_UID: &str = "8c1f0b5e-3d2a-4f6b-9e7d-1a2b3c4d5e6f";
const LIVE_UID: &str = "5d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a";
const GONE_CTR: &str = "77aa88bb99cc00dd11ee22ff33aa44bb55cc66dd77ee88ff99aa00bb11cc22dd";

#[test]
fn mount_leak_orphaned_pod_gone_container_and_systemd_units() {
    let s = snapshot_of(fixture("mount-leak"));
    let d = s.systemd.as_ref().unwrap();
    assert!(d.is_pid1());
    assert_eq!(d.transient_run_scopes, 300);
    assert_eq!(
        s.kubelet_pods.as_ref().unwrap()[0].uids.as_deref(),
        Some(&[LIVE_UID.to_string()][..])
    );
    let r = run_checks(std::slice::from_ref(&s), &["mount-leak"]);
    assert!(r.unknown.is_empty(), "{:#?}", r.unknown);
    let f = only(&r, "mount-leak");
    let by_key = |k: &str| f.iter().find(|x| x.key == k).copied();
    let pod = by_key(&format!("mount-leak/pod:{ORPHAN_UID}")).expect("the orphan");
    assert_eq!(pod.measure("mounts").map(|m| m.value), Some(1200.0));
    assert_eq!(pod.measure("subpath_mounts").map(|m| m.value), Some(1200.0));
    assert_eq!(pod.measure("pod_dir_exists").map(|m| m.value), Some(0.0));
    assert_eq!(pod.subjects[0].pod.as_deref(), Some(ORPHAN_UID));
    assert!(
        by_key(&format!("mount-leak/pod:{LIVE_UID}")).is_none(),
        "the live pod's volumes"
    );
    let ctr = by_key(&format!("mount-leak/container:{GONE_CTR}")).expect("the gone container");
    assert_eq!(ctr.subjects[0].container_id.as_deref(), Some(GONE_CTR));
    let table = by_key("mount-leak/node").expect("the table");
    assert_eq!(table.severity, Severity::Warning);
    assert_eq!(table.measure("mounts").map(|m| m.value), Some(1223.0));
    assert_eq!(table.measure("mount_units").map(|m| m.value), Some(1221.0));
    assert!(table.cause.contains("systemd"), "{}", table.cause);
    let units = by_key("mount-leak/node:systemd-transient").expect("transient units");
    assert_eq!(
        units.measure("transient_run_scopes").map(|m| m.value),
        Some(300.0)
    );
    assert_eq!(f.len(), 4, "{f:#?}");
}

#[test]
fn a_mount_table_over_the_read_cap_is_the_symptom_not_malformed() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture("healthy"), dir.path());
    let mi = dir.path().join("proc/1/mountinfo");
    let mut text = std::fs::read_to_string(&mi).unwrap();
    let mut i = 0u32;
    while text.len() <= 17 << 20 {
        text.push_str(&format!(
            "{} 27 0:60 / /var/lib/kubelet/pods/leak/{i} rw,relatime shared:1 - tmpfs tmpfs rw,size=1024k\n",
            1000 + i
        ));
        i += 1;
    }
    std::fs::write(&mi, text).unwrap();
    let s = snapshot_of(dir.path());
    assert!(
        s.unavailable
            .iter()
            .any(|u| u.path == "proc/1/mountinfo" && u.kind == Kind::Truncated),
        "{:#?}",
        s.unavailable
    );
    assert!(
        !s.unavailable.iter().any(|u| u.kind == Kind::Malformed),
        "{:#?}",
        s.unavailable
    );
    let read = s.mounts.as_ref().unwrap().len() as f64;
    let r = run_checks(std::slice::from_ref(&s), &["mount-leak"]);
    let f = only(&r, "mount-leak");
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(
        (f[0].severity, f[0].key.as_str()),
        (Severity::Critical, "mount-leak/node")
    );
    assert_eq!(f[0].measure("mounts").map(|m| m.value), Some(read));
    assert!(f[0].summary.contains("read cap"), "{}", f[0].summary);
}

const I3_PYTHON_CTR: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
const I3_PYTHON_POD: &str = "3c9e1f2a-5b7d-4e8f-9a0b-1c2d3e4f5a6b";
const I3_ES_CTR: &str = "e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4";

#[test]
fn incident_3_snapshot_reads_the_coredump_machinery() {
    let s = snapshot_of(fixture("incident-3-coredumps"));
    let cd = s.coredump.as_ref().expect("coredump collected");
    assert_eq!(cd.conf_files.len(), 1);
    assert_eq!(cd.conf_files[0].path, "/etc/systemd/coredump.conf");
    assert!(
        cd.conf_files[0].settings.is_empty(),
        "Debian ships every line commented"
    );
    assert_eq!(cd.handler.as_ref().map(|h| h.exists), Some(true));
    let store = cd
        .stores
        .iter()
        .find(|s| s.path == "/var/lib/systemd/coredump")
        .unwrap();
    assert_eq!((store.files, store.bytes), (3, 3 * (412 << 20)));
    let d = s.deleted_open.as_ref().unwrap();
    assert_eq!(d.filesystems, vec!["/".to_string()]);
    assert_eq!(d.holders.len(), 1);
    assert_eq!((d.holders[0].pid, d.holders[0].fd), (7201, 5));
    assert_eq!(d.holders[0].path, "/var/lib/systemd/coredump/#1573421");
    let py = s.process(7001).unwrap();
    assert_eq!(py.core_dumping, Some(true));
    assert_eq!(py.mem_anon_bytes, Some(3670016 * 1024));
    assert_eq!(py.rlimit_core.map(|r| r.soft), Some(None), "unlimited");
    assert_eq!(py.proc_sys.as_ref().map(|m| m.writable), Some(false));
    let java = s.process(7301).unwrap();
    let ps = java.proc_sys.as_ref().unwrap();
    assert!(ps.writable);
    assert_eq!(ps.writable_at.as_deref(), Some("/proc/sys"));
    assert_eq!(
        s.sysctls.get("vm.max_map_count").map(String::as_str),
        Some("262144")
    );
    let conf = s.sysctl_conf.as_ref().unwrap();
    assert!(
        conf.files
            .iter()
            .any(|f| f.path == "/usr/lib/sysctl.d/50-coredump.conf")
    );
}

#[test]
fn incident_3_every_check_names_its_part() {
    let s = snapshot_of(fixture("incident-3-coredumps"));
    // Incident 3's checks (the tree mounts no memory controller for the memory checks).
    let r = run_checks(
        std::slice::from_ref(&s),
        &[
            "disk-pressure",
            "coredump-to-host",
            "coredump-storm",
            "sysctl-drift",
        ],
    );
    assert!(r.unknown.is_empty(), "{:#?}", r.unknown);

    // disk-pressure: / at 96 %, the 3.5 GiB temporary systemd-coredump holds open named.
    let d = only(&r, "disk-pressure");
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].severity, Severity::Critical);
    assert_eq!(
        d[0].measure("deleted_open_bytes").map(|m| m.value),
        Some(3758096384.0)
    );
    assert_eq!(d[0].subjects[1].pid, Some(7201));
    assert_eq!(d[0].subjects[1].comm.as_deref(), Some("systemd-coredum"));

    // coredump-to-host: the python container can dump 3.5 GiB onto / with 2 GiB free.
    let c = only(&r, "coredump-to-host");
    assert_eq!(c.len(), 2, "{c:#?}");
    assert_eq!(c[0].severity, Severity::Critical);
    assert_eq!(
        c[0].key,
        format!("coredump-to-host/container:{I3_PYTHON_CTR}")
    );
    assert_eq!(
        c[0].subjects[0].container_id.as_deref(),
        Some(I3_PYTHON_CTR)
    );
    assert_eq!(c[0].subjects[0].pod.as_deref(), Some(I3_PYTHON_POD));
    let dump = c[0].measure("dump_bytes").unwrap();
    assert_eq!(
        (dump.value, dump.limit),
        ((3670016u64 * 1024) as f64, Some((2u64 << 30) as f64))
    );
    assert_eq!(
        c[0].measure("max_core_bytes").map(|m| m.value),
        Some((32u64 << 30) as f64)
    );
    // The java container's RLIMIT_CORE 0 does not stop a pipe without %c: 1 GiB of 2.
    assert_eq!(c[1].severity, Severity::Warning);
    assert_eq!(c[1].subjects[0].container_id.as_deref(), Some(I3_ES_CTR));
    assert_eq!(c[1].measure("rlimit_core").map(|m| m.value), Some(0.0));

    // coredump-storm: python's loop, named with its container.
    let st = only(&r, "coredump-storm");
    assert_eq!(st.len(), 1, "{st:#?}");
    assert_eq!(st[0].key, "coredump-storm/command:python");
    assert_eq!(st[0].severity, Severity::Warning);
    assert_eq!(st[0].measure("crashes").map(|m| m.value), Some(7.0));
    assert_eq!(st[0].measure("skipped_dumps").map(|m| m.value), Some(3.0));
    assert_eq!(st[0].measure("stored_dumps").map(|m| m.value), Some(3.0));
    assert_eq!(st[0].measure("dumping_now").map(|m| m.value), Some(1.0));
    let h = st[0].measure("handlers_running").unwrap();
    assert_eq!((h.value, h.limit), (2.0, Some(16.0)));
    assert_eq!(st[0].subjects[0].pid, Some(7001));
    assert_eq!(
        st[0].subjects[1].container_id.as_deref(),
        Some(I3_PYTHON_CTR)
    );

    // sysctl-drift: vm.max_map_count, the privileged java container as the suspect.
    let sd = only(&r, "sysctl-drift");
    assert_eq!(sd.len(), 1, "{sd:#?}");
    assert_eq!(sd[0].key, "sysctl-drift/sysctl:vm.max_map_count");
    let v = sd[0].measure("value").unwrap();
    assert_eq!((v.value, v.limit), (262144.0, Some(65530.0)));
    assert_eq!(sd[0].subjects[1].container_id.as_deref(), Some(I3_ES_CTR));
}

#[test]
fn kernel_5_4_line_over_core_pipe_limit_is_a_storm_of_python() {
    let s = snapshot_of(fixture("kernel-5.4"));
    let r = run_checks(std::slice::from_ref(&s), &["coredump-storm"]);
    let st = only(&r, "coredump-storm");
    assert_eq!(st.len(), 1, "{st:#?}");
    assert_eq!(st[0].subjects[0].comm.as_deref(), Some("python"));
    assert_eq!(st[0].subjects[0].pid, Some(4242));
    assert_eq!(st[0].measure("skipped_dumps").map(|m| m.value), Some(1.0));
    assert_eq!(st[0].severity, Severity::Warning);
}
