//! The log monitor against real kernel events caused on this host (a pids cgroup refusing
//! a fork, a memcg OOM kill in a container-shaped cgroup, a core dump over core_pipe_limit,
//! file-max reached by a non-root uid), kmsg followed, and real journal files written by
//! systemd-journal-remote (followed by cursor). Root and packages: `--features live`.
#![cfg(feature = "live")]

mod common;
use common::faults::*;
use common::*;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

const OPEN_UNTIL_ENFILE: &str = r#"
import errno, os, sys
os.setgid(4244)
os.setuid(4244)
fds = []
try:
    while len(fds) < 100000:
        fds.append(os.open("/dev/null", os.O_RDONLY))
    print("never", flush=True)
except OSError as e:
    print("enfile" if e.errno == errno.ENFILE else f"errno {e.errno}", len(fds), flush=True)
"#;

/// kernel-log findings of a one-sample check whose log rule is `rule`.
fn kernel_log(rule: &str) -> Vec<Value> {
    let (_, doc) = check_json(&["--only", "kernel-log", "--window", "0"]);
    findings_of(&doc, "kernel-log")
        .into_iter()
        .filter(|f| f["log"]["rule"] == rule)
        .cloned()
        .collect()
}

fn about(findings: &[Value], key: &str, value: &Value) -> Vec<Value> {
    let doc = serde_json::json!({ "findings": findings });
    findings_about(&doc, "kernel-log", key, value)
        .into_iter()
        .cloned()
        .collect()
}

#[test]
fn a_pids_cgroup_refusing_a_fork_is_named_from_the_kernel_line() {
    assert_root();
    let (cg, rel, pod, id) = refuse_a_fork("logpids");
    assert!(
        std::fs::read_to_string(cg.leaf().join("pids.events")).is_ok_and(|e| e.trim() != "max 0"),
        "the pids controller refused a fork"
    );
    let f = about(
        &kernel_log("pids-fork-rejected"),
        "container_id",
        &Value::from(id.as_str()),
    );
    assert_eq!(f.len(), 1, "the kernel logged the refusal for our cgroup");
    assert_eq!(f[0]["severity"], "critical");
    assert_eq!(f[0]["subjects"][0]["pod"], pod.as_str());
    assert_eq!(f[0]["log"]["reason"], "ForkRejected");
    assert!(
        f[0]["evidence"][0]["observed"]
            .as_str()
            .unwrap()
            .contains(&rel)
    );
}

#[test]
fn a_memcg_oom_kill_names_the_victim_and_its_container() {
    assert_root();
    let base = PathBuf::from("/sys/fs/cgroup/memory");
    let (rel, pod, id) = container_shaped("oom");
    let mut cg = make_cgroup(&base, &rel);
    let leaf = cg.leaf().to_path_buf();
    let pid = oom_kill_in(&mut cg, &leaf, 32 << 20);

    let f = about(&kernel_log("memcg-oom-kill"), "pid", &Value::from(pid));
    assert_eq!(f.len(), 1);
    let s = &f[0]["subjects"][0];
    assert_eq!(s["kind"], "container");
    assert_eq!(s["container_id"], id.as_str());
    assert_eq!(s["pod"], pod.as_str());
    assert!(s["comm"].as_str().unwrap().starts_with("python3"), "{s}");
    assert_eq!(f[0]["log"]["reason"], "OOMKilling");
    // The kernel logs the kill twice (mm/oom_kill.c: the `oom-kill:` summary, then "Memory
    // cgroup out of memory: Killed process"): both lines, one finding.
    assert_eq!(f[0]["log"]["count"], 2, "{:#}", f[0]);
}

#[test]
fn a_crash_over_core_pipe_limit_is_named() {
    assert_root();
    let _g = serialize();
    let dir = tempfile::tempdir().unwrap();
    let handler = dir.path().join("slow-handler");
    std::fs::write(&handler, "#!/bin/sh\ncat > /dev/null\nsleep 2\n").unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&handler).unwrap().permissions(),
        0o755,
    );
    std::fs::set_permissions(
        &handler,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let _pattern = SysctlGuard::set("kernel.core_pattern", &format!("|{} %P", handler.display()));
    let _limit = SysctlGuard::set("kernel.core_pipe_limit", "1");
    let crash = || {
        Command::new("sh")
            .arg("-c")
            .arg("ulimit -c unlimited; kill -SEGV $$")
            .spawn()
            .unwrap()
    };
    let mut first = crash();
    // The first dump's handler is running (it sleeps): the second crash is over the limit.
    assert!(wait_until(Duration::from_secs(5), || pids_with_comm(
        "slow-handler"
    ) > 0));
    let mut second = crash();
    let second_pid = second.id() as i64;
    second.wait().unwrap();
    first.wait().unwrap();

    let f = about(
        &kernel_log("core-pipe-limit"),
        "pid",
        &Value::from(second_pid),
    );
    assert_eq!(
        f.len(),
        1,
        "coredump: {second_pid}(sh): over core_pipe_limit"
    );
    assert_eq!(f[0]["subjects"][0]["comm"], "sh");
    assert_eq!(f[0]["log"]["reason"], "CoreDumpSkipped");
}

fn pids_with_comm(comm: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == comm))
        .count()
}

#[test]
fn file_max_reached_by_a_non_root_uid_is_critical() {
    assert_root();
    let _g = serialize();
    let mut helper = {
        let allocated: u64 = std::fs::read_to_string("/proc/sys/fs/file-nr")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        // fs/file_table.c logs only when the count passes the highest count it last logged
        // at (a static `old_max`, reset at boot): go above any limit reported before.
        let host = node_doctor_host::Host::open("/").unwrap();
        let ring = node_doctor_host::sources::kmsg::read_ring(&*host.kernel);
        let reported_before = ring
            .records
            .iter()
            .filter_map(|r| {
                r.text
                    .strip_prefix("VFS: file-max limit ")?
                    .strip_suffix(" reached")?
                    .parse::<u64>()
                    .ok()
            })
            .max()
            .unwrap_or(0);
        let limit = (allocated + 2000).max(reported_before + 500);
        let _max = SysctlGuard::set("fs.file-max", &limit.to_string());
        let mut h = Helper::python(OPEN_UNTIL_ENFILE);
        let line = h.expect("");
        drop(_max); // restored at once
        assert!(line.starts_with("enfile"), "{line}");
        (h, limit)
    };
    let _ = &mut helper.0;
    // One finding for the rule; its evidence ends with the newest lines, ours among them.
    let f = kernel_log("file-max-reached");
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0]["severity"], "critical");
    let ev = f[0]["evidence"].to_string();
    assert!(
        ev.contains(&format!("VFS: file-max limit {} reached", helper.1)),
        "{ev}"
    );
}

/// Writes journal files the way journald's own tools do: export format through
/// systemd-journal-remote, into `<root>/var/log/journal/<machine-id>/`.
fn journal_root(entries: &[(&str, &str)]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let dir = root
        .path()
        .join("var/log/journal/0123456789abcdef0123456789abcdef");
    std::fs::create_dir_all(&dir).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros();
    let mut export = String::new();
    for (i, (unit, msg)) in entries.iter().enumerate() {
        export.push_str(&format!(
            "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID=0123456789abcdef0123456789abcdef\n\
             _SYSTEMD_UNIT={unit}\n_PID={}\nMESSAGE={msg}\n\n",
            now + i as u128 * 1000,
            1000 + i,
            100 + i
        ));
    }
    let input = root.path().join("export.txt");
    std::fs::write(&input, export).unwrap();
    let st = Command::new("/lib/systemd/systemd-journal-remote")
        .arg("-o")
        .arg(dir.join("remote.journal"))
        .arg(&input)
        .stderr(Stdio::null())
        .status()
        .expect("systemd-journal-remote is installed (scripts/deps.sh)");
    assert!(st.success());
    root
}

fn logs_json(args: &[&str]) -> (i32, Value) {
    let out = node_doctor()
        .arg("logs")
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let doc = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), doc)
}

#[test]
fn journal_files_are_read_by_unit() {
    let root = journal_root(&[
        (
            "kubelet.service",
            r#"E1122 kubelet.go:2359] "Skipping pod synchronization" err="PLEG is not healthy: pleg was last seen active 3m0.5s ago; threshold is 3m0s""#,
        ),
        (
            "containerd.service",
            "runtime/cgo: pthread_create failed: Resource temporarily unavailable",
        ),
        (
            "kubelet.service",
            "I1122 request.go:697] Waited for 1.1s due to client-side throttling, not priority and fairness",
        ),
    ]);
    let r = root.path().to_str().unwrap();
    let (code, doc) = logs_json(&["--root", r, "--source", "journal:kubelet.service"]);
    assert_eq!(code, 1);
    assert_eq!(
        doc["sources"][0]["lines"], 2,
        "only kubelet's entries: {doc:#}"
    );
    let reasons: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["log"]["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, vec!["PLEGNotHealthy", "ClientSideThrottling"]);
    assert_eq!(
        doc["findings"][0]["log"]["source"],
        "journal:kubelet.service"
    );

    let (_, doc) = logs_json(&["--root", r, "--source", "journal:containerd.service"]);
    assert_eq!(doc["findings"][0]["log"]["reason"], "PthreadCreateFailed");
}

/// Causes a refused fork in a fresh container-shaped pids cgroup (the kernel logs it once
/// per cgroup): sh (1 task) starts a sleep in the background under pids.max 1 — dash then
/// gives up with "Cannot fork", which is the point. Returns the guard, the cgroup's path,
/// pod uid and container id.
fn refuse_a_fork(tag: &str) -> (CgroupGuard, String, String, String) {
    let (rel, pod, id) = container_shaped(tag);
    let cg = make_cgroup(&pids_mount(), &rel);
    std::fs::write(cg.leaf().join("pids.max"), "1").unwrap();
    let _ = Command::new("sh")
        .arg("-c")
        .arg(r#"echo $$ > "$0/cgroup.procs"; sleep 1 & wait"#)
        .arg(cg.leaf())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    (cg, rel, pod, id)
}

#[test]
fn following_kmsg_reports_new_kernel_lines_and_looks_back_when_asked() {
    assert_root();
    // Looked back on: an event from just before the follower started.
    let (_before, _, _, before_id) = refuse_a_fork("kmsgback");
    let follower = Spawned::start(&[
        "logs", "--source", "kmsg", "--follow", "--since", "1m", "--format", "json",
    ]);
    let wait_for = |id: &str| -> Value {
        let line = follower
            .until(Duration::from_secs(30), |l| {
                l.contains("\"type\":\"finding\"") && l.contains(id)
            })
            .unwrap_or_else(|| panic!("no finding for {id} within 30 s"));
        let v: Value = serde_json::from_str(&line).unwrap();
        v["data"].clone()
    };
    let f = wait_for(&before_id);
    assert_eq!(f["log"]["reason"], "ForkRejected");
    // Followed: an event after it started.
    let (_after, _, _, after_id) = refuse_a_fork("kmsgnew");
    let f = wait_for(&after_id);
    assert_eq!(f["log"]["source"], "kmsg");
}

#[test]
fn journald_configs_filter_by_syslog_identifier() {
    let root = journal_root(&[
        (
            "kubelet.service",
            "runtime/cgo: pthread_create failed: Resource temporarily unavailable",
        ),
        (
            "containerd.service",
            "runtime/cgo: pthread_create failed: Resource temporarily unavailable",
        ),
    ]);
    // journal_root sets no SYSLOG_IDENTIFIER: an identifier filter finds nothing, by unit finds one.
    let (_, doc) = logs_json(&[
        "--root",
        root.path().to_str().unwrap(),
        "--source",
        "journal-id:kubelet",
    ]);
    assert_eq!(doc["sources"][0]["lines"], 0);
    let (_, doc) = logs_json(&[
        "--root",
        root.path().to_str().unwrap(),
        "--source",
        "journal",
    ]);
    assert_eq!(doc["sources"][0]["lines"], 2);
    // Each daemon that could not create a thread is named, by the journal's _PID and
    // _SYSTEMD_UNIT: two findings.
    let mut who: Vec<(String, i64, u64)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let s = &f["subjects"][0];
            (
                s["unit"].as_str().unwrap().to_string(),
                s["pid"].as_i64().unwrap(),
                f["log"]["count"].as_u64().unwrap(),
            )
        })
        .collect();
    who.sort();
    assert_eq!(
        who,
        vec![
            ("containerd.service".to_string(), 101, 1),
            ("kubelet.service".to_string(), 100, 1)
        ]
    );
}
