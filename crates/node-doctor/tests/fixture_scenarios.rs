//! Fixture trees: whole files captured from a real machine, one scenario each
//! (tests/fixtures/*/README.md says what each shows).

mod common;
use common::*;
use node_doctor::finding::Severity;

/// Disk usage is measured live even for a fixture root (statvfs cannot be captured), so the
/// fixture scenarios run the checks that read only the tree.
const TREE_CHECKS: &[&str] = &["pid-exhaustion", "fd-exhaustion"];

#[test]
fn healthy_node_has_zero_findings_and_nothing_unknown() {
    let s = snapshot_of(fixture("healthy"));
    let r = run_checks(std::slice::from_ref(&s), TREE_CHECKS);
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert!(r.unknown.is_empty(), "{:#?}", r.unknown);
    // This machine has no conntrack module loaded: those two sysctls are absent, nothing else.
    assert!(
        s.unavailable
            .iter()
            .all(|u| u.path.starts_with("proc/sys/net/netfilter/")),
        "{:#?}",
        s.unavailable
    );
    assert!(
        s.process_scan.problems.is_empty(),
        "{:#?}",
        s.process_scan.problems
    );
    assert_eq!(s.processes.len(), 5);
    assert_eq!(s.sysctl_u64("kernel.pid_max"), Ok(32768));
    assert_eq!(s.host.kernel_release.as_deref(), Some("6.18.44-fc-v657"));
    assert!(s.mounts.as_ref().is_some_and(|m| !m.is_empty()));
    assert!(s.cgroups.controllers.iter().any(|c| c.name == "memory"));
    assert!(s.pressure.memory.is_some());
    assert!(s.meminfo.is_some());
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
    assert!(f.summary.contains("81 of 88"), "{}", f.summary);
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
    let problems: Vec<String> = s
        .process_scan
        .problems
        .iter()
        .map(|u| u.to_string())
        .collect();
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
    assert_eq!(
        s.process_scan.vanished, 2,
        "15 vanished; 4824's stat is unusable"
    );
    let pids: Vec<i32> = s.processes.iter().map(|p| p.pid).collect();
    assert_eq!(pids, vec![1, 2, 4823]);
    // What could be read is kept: 4823's comm from stat although its status is cut.
    assert_eq!(s.process(4823).unwrap().comm, "(a) b)");
    assert!(s.process(2).unwrap().rlimit_nofile.is_none());

    // Checks still run: pid-exhaustion falls back to the scan's thread count.
    let r = run_checks(std::slice::from_ref(&s), TREE_CHECKS);
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert!(r.unknown.is_empty(), "{:#?}", r.unknown);
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
