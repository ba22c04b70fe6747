//! Live tests against this machine, as root: real processes, real cgroups, real
//! filesystems. Each test cleans up what it made, also when it fails (guards on drop).

#![cfg(feature = "live")]

mod common;
use common::faults::*;
use common::*;
use node_doctor_core::finding::Severity;
use std::process::Command;

#[test]
fn check_of_this_host_is_valid_json() {
    assert_root();
    let (code, doc) = check_json(&["--window", "200ms"]);
    assert!(code == 0 || code == 1, "exit {code}");
    assert_eq!(doc["schema"], "node-doctor.check/v1");
    assert_eq!(doc["host"]["root"], "/");
    assert_eq!(doc["host"]["samples"], 2);
    assert!(doc["host"]["window_ms"].as_u64().unwrap() >= 200);
    assert!(doc["host"]["processes"].as_u64().unwrap() > 1);
    assert_eq!(
        doc["host"]["checks_run"].as_array().unwrap().len(),
        node_doctor_core::checks::all().len()
    );
    assert!(
        doc["timings"]["collectors"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    );
    for f in doc["findings"].as_array().unwrap() {
        for key in [
            "check", "key", "severity", "summary", "cause", "remedy", "evidence", "subjects",
            "measures",
        ] {
            assert!(f.get(key).is_some(), "finding lacks {key}: {f}");
        }
    }
}

#[test]
fn process_in_a_container_cgroup_shows_its_container_and_pod() {
    assert_root();
    let uid = "0d6f2e1a-1b2c-4d3e-8f4a-5b6c7d8e9f00";
    let id = format!("{:064x}", std::process::id() as u128 * 0x9e3779b97f4a7c15);
    let rel = format!("kubepods/burstable/pod{uid}/{id}");
    let mut guard = make_cgroup(&pids_mount(), &rel);
    let child = Command::new("sleep").arg("60").spawn().unwrap();
    let pid = child.id() as i32;
    guard.children.push(child);
    std::fs::write(
        guard.dirs.last().unwrap().join("cgroup.procs"),
        pid.to_string(),
    )
    .unwrap();

    let s = snapshot_of("/");
    let p = s.process(pid).expect("the child is in the snapshot");
    assert_eq!(p.comm, "sleep");
    assert_eq!(p.owner.container_id.as_deref(), Some(id.as_str()));
    assert_eq!(p.owner.pod_uid.as_deref(), Some(uid));
    assert!(p.cgroups.iter().any(|c| c.path == format!("/{rel}")));
    assert!(p.open_fds.is_some() && p.rlimit_nofile.is_some() && p.rlimit_core.is_some());
}

/// A host root with the host's proc and a tmpfs at `<root>/var/lib/kubelet`.
fn kubelet_tmpfs(options: &str) -> TmpfsRoot {
    tmpfs_root("var/lib/kubelet", options)
}

#[test]
fn full_kubelet_filesystem_is_critical_naming_its_mount() {
    assert_root();
    let fs = kubelet_tmpfs("size=4m");
    let root = fs
        .mount
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    // Healthy first: no finding about it.
    let (_, doc) = check_json(&[
        "--root",
        root.to_str().unwrap(),
        "--window",
        "0",
        "--only",
        "disk-pressure",
    ]);
    assert!(
        findings_of(&doc, "disk-pressure")
            .iter()
            .all(|f| f["subjects"][0]["path"] != "/var/lib/kubelet")
    );

    std::fs::write(
        fs.mount.join("fill"),
        vec![7u8; 4 * 1024 * 1024 - 64 * 1024],
    )
    .unwrap();
    let (code, doc) = check_json(&[
        "--root",
        root.to_str().unwrap(),
        "--window",
        "0",
        "--only",
        "disk-pressure",
    ]);
    assert_eq!(code, 1);
    let ours: Vec<_> = findings_of(&doc, "disk-pressure")
        .into_iter()
        .filter(|f| f["subjects"][0]["path"] == "/var/lib/kubelet")
        .collect();
    assert_eq!(ours.len(), 1, "{doc:#}");
    assert_eq!(ours[0]["severity"], "critical");
    assert!(
        ours[0]["summary"]
            .as_str()
            .unwrap()
            .starts_with("filesystem /var/lib/kubelet (holds /var/lib/kubelet): 9")
    );
    assert!(
        ours[0]["evidence"][2]["observed"]
            .as_str()
            .unwrap()
            .contains("is mounted at /var/lib/kubelet (tmpfs tmpfs)"),
        "{:#}",
        ours[0]
    );
    assert!(
        ours[0]["remedy"]
            .as_str()
            .unwrap()
            .contains("crictl rmi --prune")
    );
}

#[test]
fn inode_exhaustion_is_reported_even_with_space_left() {
    assert_root();
    let fs = kubelet_tmpfs("size=64m,nr_inodes=64");
    for i in 0..60 {
        if std::fs::write(fs.mount.join(format!("f{i}")), b"x").is_err() {
            break;
        }
    }
    let root = fs
        .mount
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let s = snapshot_of(&root);
    let fsu = s
        .filesystems
        .iter()
        .flatten()
        .find(|f| f.paths.contains(&"/var/lib/kubelet".to_string()))
        .expect("kubelet fs measured");
    let finding = node_doctor_core::checks::disk_pressure::assess(fsu, (0.85, 0.95))
        .expect("inodes over the band");
    assert!(finding.severity >= Severity::Warning);
    assert!(
        finding.summary.contains("of inodes used"),
        "{}",
        finding.summary
    );
    assert!(finding.remedy.contains("find "), "{}", finding.remedy);
}

#[test]
fn replay_of_a_live_snapshot_gives_identical_findings() {
    assert_root();
    let fs = kubelet_tmpfs("size=4m");
    std::fs::write(
        fs.mount.join("fill"),
        vec![1u8; 4 * 1024 * 1024 - 32 * 1024],
    )
    .unwrap();
    let root = fs
        .mount
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snap.json");
    node_doctor()
        .args([
            "snapshot",
            "--root",
            root.to_str().unwrap(),
            "--window",
            "0",
            "-o",
            file.to_str().unwrap(),
        ])
        .assert()
        .success();
    let (_, replay) = check_json(&["--from", file.to_str().unwrap()]);
    assert!(
        !findings_of(&replay, "disk-pressure").is_empty(),
        "the replay has a finding to compare"
    );

    // The library over the same recording gives the same findings, field for field.
    let rec =
        node_doctor_core::model::Recording::from_slice("snap.json", &std::fs::read(&file).unwrap())
            .unwrap();
    let report = run_checks(&rec.samples, &[]);
    assert_eq!(
        serde_json::to_value(&report.findings).unwrap(),
        replay["findings"]
    );
}

#[test]
fn processes_exiting_during_the_scan_are_not_errors() {
    assert_root();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = Command::new("true").status();
                n += 1;
            }
            n
        })
    };
    let mut vanished = 0;
    for _ in 0..30 {
        let s = snapshot_of("/");
        let scan = s.process_scan.unwrap();
        vanished += scan.vanished;
        for p in &scan.problems {
            assert!(
                !p.reason.contains("No such file") && !p.reason.contains("No such process"),
                "vanishing reported as a problem: {p}"
            );
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let spawned = churn.join().unwrap();
    assert!(spawned > 0);
    eprintln!("{spawned} short-lived processes, {vanished} seen vanishing mid-scan");
}

#[test]
fn a_passed_deadline_reads_nothing_and_says_nothing_could_be_checked() {
    assert_root();
    let out = node_doctor()
        .args([
            "check",
            "--window",
            "0",
            "--deadline",
            "0s",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "nothing checked is a tool failure, not healthy"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing could be checked"));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["findings"].as_array().unwrap().is_empty());
    let unknown = doc["unknown"].as_array().unwrap();
    assert!(
        unknown
            .iter()
            .all(|u| u["reason"].as_str().unwrap().contains("deadline")),
        "{unknown:#?}"
    );
    assert_eq!(
        doc["coverage"]["inconclusive"].as_array().unwrap().len(),
        node_doctor_core::checks::all().len()
    );
}

/// The scan asks the kernel for limits (prlimit(2)) instead of reading `limits` when the
/// root's procfs is our pid namespace's. A process whose uids and gids are all ours (root's)
/// is always answered by the syscall; another user's only with CAP_SYS_RESOURCE (which root
/// on this machine kind lacks: the scan then reads the file). Either way the snapshot must
/// hold the values `limits` shows, unlimited included.
#[test]
fn limits_by_syscall_and_by_file_are_read_right() {
    assert_root();
    let spawn = |limits: [&str; 2], as_nobody: bool| {
        let mut c = Command::new("prlimit");
        c.args(limits).arg("--");
        if as_nobody {
            c.args([
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
            ]);
        }
        // Killed and reaped on drop.
        let child = Helper::spawn(c.args(["sleep", "60"]));
        let pid = child.child.id() as i32;
        assert!(
            wait_until(std::time::Duration::from_secs(5), || {
                std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c == "sleep\n")
            }),
            "the child did not exec sleep"
        );
        (child, pid)
    };
    let (_root_child, root_pid) = spawn(["--nofile=321:654", "--core=0:unlimited"], false);
    let (_nobody_child, nobody_pid) =
        spawn(["--nofile=123:456", "--core=unlimited:unlimited"], true);
    use node_doctor_core::model::Rlimit;
    let lim = |soft, hard| Rlimit { soft, hard };

    // The seam itself: which way each process is read.
    let fs = node_doctor_host::fs::RealFs::new("/").unwrap();
    use node_doctor_host::fs::HostFs;
    let by_syscall = |pid| fs.open_proc(pid).unwrap().syscall_limits();
    assert_eq!(
        by_syscall(root_pid),
        Some((lim(Some(321), Some(654)), lim(Some(0), None))),
        "root's own process is answered by prlimit"
    );
    let cap_eff = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap();
    const CAP_SYS_RESOURCE: u64 = 1 << 24;
    assert_eq!(
        by_syscall(nobody_pid).is_some(),
        cap_eff & CAP_SYS_RESOURCE != 0,
        "another user's process by prlimit exactly when we hold CAP_SYS_RESOURCE"
    );

    // The scan: the same values whichever way.
    let s = snapshot_of("/");
    let p = s
        .process(root_pid)
        .expect("the root child is in the snapshot");
    assert_eq!(p.rlimit_nofile, Some(lim(Some(321), Some(654))));
    assert_eq!(p.rlimit_core, Some(lim(Some(0), None)));
    let p = s
        .process(nobody_pid)
        .expect("the nobody child is in the snapshot");
    assert_eq!(p.uid, Some(65534));
    assert_eq!(p.rlimit_nofile, Some(lim(Some(123), Some(456))));
    assert_eq!(p.rlimit_core, Some(lim(None, None)));
}
