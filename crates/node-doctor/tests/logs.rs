//! The log monitor on files: a file rotated and truncated while followed, NPD configs and
//! their message extraction, `--since` on syslog stamps, the JSON Lines envelope of
//! `--follow`, and bad input (garbage rules, RE2-unsupported patterns, a 1 MiB line, a FIFO
//! where a log file should be). Hermetic: no root, no packages.

mod common;
use common::*;
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// As a uid without CAP_SYS_ADMIN, open files until ENFILE.
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

/// The `data` of the next `finding` line of a follower (source errors and summaries are
/// other line types).
fn next_finding(f: &Spawned) -> Value {
    let line = f
        .until(Duration::from_secs(20), |l| {
            l.contains("\"type\":\"finding\"")
        })
        .expect("a finding line within 20 s");
    let v: Value = serde_json::from_str(&line).unwrap();
    v["data"].clone()
}

fn append(p: &Path, s: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(p)
        .unwrap();
    f.write_all(s.as_bytes()).unwrap();
}

#[test]
fn a_followed_file_is_read_across_rotation_and_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("kern.log");
    std::fs::write(
        &log,
        "before the follower started: EXT4-fs error (device sda1): old\n",
    )
    .unwrap();
    let f = Spawned::start(&[
        "logs",
        "--root",
        dir.path().to_str().unwrap(),
        "--source",
        "file:kern.log",
        "--follow",
        "--format",
        "json",
    ]);
    // The first line is the start summary: sources opened, rules loaded.
    let start: Value = serde_json::from_str(&f.line(Duration::from_secs(20)).unwrap()).unwrap();
    assert_eq!(start["type"], "summary");
    assert_eq!(start["data"]["phase"], "start");
    assert_eq!(start["data"]["sources"][0]["source"], "file:kern.log");

    std::thread::sleep(Duration::from_millis(300));
    append(&log, "VFS: file-max limit 65536 rea");
    std::thread::sleep(Duration::from_millis(300));
    append(&log, "ched\n");
    let x = next_finding(&f);
    assert_eq!(
        x["log"]["reason"], "FileMaxReached",
        "the held partial line, once complete"
    );

    std::fs::rename(&log, dir.path().join("kern.log.1")).unwrap();
    append(&log, "nf_conntrack: table full, dropping packet\n");
    assert_eq!(
        next_finding(&f)["log"]["reason"],
        "ConntrackFull",
        "the new file after rotation"
    );

    std::thread::sleep(Duration::from_millis(300));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    append(&log, "crashy[77]: segfault at 0 ip 0 sp 0 error 6\n");
    let x = next_finding(&f);
    assert_eq!(
        x["log"]["reason"], "Segfault",
        "read again from the start after truncation"
    );
    assert_eq!(x["subjects"][0]["pid"], 77);
}

#[test]
fn follow_reports_source_errors_and_exits_cleanly_with_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    // A FIFO where a log file should be: refused (it would block a reader), reported.
    rustix::fs::mknodat(
        rustix::fs::CWD,
        dir.path().join("pipe.log"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    std::fs::write(dir.path().join("ok.log"), "").unwrap();
    let mut f = Spawned::start(&[
        "logs",
        "--root",
        dir.path().to_str().unwrap(),
        "--source",
        "file:pipe.log",
        "--source",
        "file:ok.log",
        "--follow",
        "--format",
        "json",
    ]);
    let err = f
        .until(Duration::from_secs(20), |l| {
            l.contains("\"type\":\"source_error\"")
        })
        .expect("the FIFO is reported as a source error");
    let err: Value = serde_json::from_str(&err).unwrap();
    assert_eq!(err["data"]["source"], "file:pipe.log");
    assert_eq!(err["data"]["kind"], "not_regular");
    // The other source still works.
    append(
        &dir.path().join("ok.log"),
        "VFS: file-max limit 1 reached\n",
    );
    assert_eq!(next_finding(&f)["log"]["reason"], "FileMaxReached");
    // SIGTERM: a summary line, exit 0, within the grace period.
    assert_eq!(f.terminate(), Some(0));
    let rest = f.rest();
    let last: Value = serde_json::from_str(rest.last().expect("a summary at exit")).unwrap();
    assert_eq!(last["type"], "summary");
    assert_eq!(last["data"]["phase"], "exit");
    assert_eq!(last["data"]["findings"], 1);
}

#[test]
fn a_fifo_or_device_given_as_a_log_file_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        dir.path().join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero")).unwrap();
    for src in ["file:fifo", "file:zero"] {
        node_doctor()
            .args([
                "logs",
                "--root",
                dir.path().to_str().unwrap(),
                "--source",
                src,
            ])
            .timeout(Duration::from_secs(20))
            .assert()
            .code(2)
            .stderr(predicates::str::contains("no source could be read"));
    }
}

#[test]
fn a_1mib_line_and_binary_garbage_do_not_stop_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = vec![b'x'; 1 << 20];
    bytes.extend_from_slice(b"\n\xff\xfe\x00garbage\x01\n");
    bytes.extend_from_slice(b"VFS: file-max limit 100 reached\n");
    std::fs::write(dir.path().join("big.log"), bytes).unwrap();
    let (code, doc) = logs_json(&[
        "--root",
        dir.path().to_str().unwrap(),
        "--source",
        "file:big.log",
    ]);
    assert_eq!(code, 1);
    assert_eq!(doc["sources"][0]["lines"], 3);
    assert_eq!(doc["findings"][0]["log"]["reason"], "FileMaxReached");
}

#[test]
fn npd_configs_run_and_bad_ones_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kern.log"),
        "INFO: task docker:1101 blocked for more than 120 seconds.\n",
    )
    .unwrap();
    let cfg = dir.path().join("kernel-monitor.json");
    std::fs::write(
        &cfg,
        r#"{"plugin": "filelog", "logPath": "kern.log", "pluginConfig": {}, "source": "kernel-monitor",
            "conditions": [{"type": "KernelDeadlock", "reason": "KernelHasNoDeadlock", "message": "kernel has no deadlock"}],
            "rules": [{"type": "permanent", "condition": "KernelDeadlock", "reason": "DockerHung",
                       "pattern": "task docker:\\w+ blocked for more than \\w+ seconds\\."}]}"#,
    )
    .unwrap();
    let root = dir.path().to_str().unwrap();
    let (code, doc) = logs_json(&[
        "--root",
        root,
        "--rules",
        cfg.to_str().unwrap(),
        "--no-default-rules",
    ]);
    assert_eq!(code, 1);
    assert_eq!(
        doc["sources"][0]["source"], "file:kern.log",
        "the config's own source"
    );
    let f = &doc["findings"][0];
    assert_eq!(f["log"]["rule"], "kernel-monitor/DockerHung");
    assert_eq!(f["log"]["condition"], "KernelDeadlock");
    assert_eq!(f["log"]["kind"], "permanent");

    std::fs::write(&cfg, "{ this is not json").unwrap();
    node_doctor()
        .args(["logs", "--root", root, "--rules", cfg.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "kernel-monitor.json: not an NPD log monitor config",
        ));
    std::fs::write(
        &cfg,
        r#"{"plugin": "kmsg", "source": "kernel-monitor", "rules": [{"type": "temporary", "reason": "Backref", "pattern": "(a)\\1"}]}"#,
    )
    .unwrap();
    node_doctor()
        .args(["logs", "--root", root, "--rules", cfg.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("rule \"kernel-monitor/Backref\""))
        .stderr(predicates::str::contains("not valid RE2 syntax"));
}

#[test]
fn npd_filelog_message_extraction_and_rules_bound_to_their_source() {
    let dir = tempfile::tempdir().unwrap();
    // docker's own log format: the message sits inside msg="...".
    std::fs::write(
        dir.path().join("docker.log"),
        "time=\"2026-11-22T19:20:17Z\" level=error msg=\"OCI runtime start failed: container process is already dead: unknown\"\n\
         time=\"2026-11-22T19:20:18Z\" level=info msg=\"all fine\"\n\
         not docker's, skipped though the rule would match: OCI runtime start failed: container process is already dead: unknown\n",
    )
    .unwrap();
    // Another config for another file; both files hold both configs' lines.
    std::fs::write(dir.path().join("kern.log"), "Remounting filesystem read-only\nmsg=\"OCI runtime start failed: container process is already dead: unknown\"\n").unwrap();
    let kern_cfg = dir.path().join("kernel-monitor.json");
    std::fs::write(
        &kern_cfg,
        r#"{"plugin": "filelog", "logPath": "kern.log", "source": "kernel-monitor", "conditions": [{"type": "ReadonlyFilesystem"}],
            "rules": [{"type": "permanent", "condition": "ReadonlyFilesystem", "reason": "FilesystemIsReadOnly", "pattern": "Remounting filesystem read-only"}]}"#,
    )
    .unwrap();
    let cfg = dir.path().join("docker-monitor.json");
    std::fs::write(
        &cfg,
        r#"{"plugin": "filelog", "logPath": "docker.log", "source": "docker-monitor",
            "pluginConfig": {"timestamp": "^time=\"(\\S*)\"", "message": "msg=\"([^\n]*)\"", "timestampFormat": "2006-01-02T15:04:05.999999999-07:00"},
            "conditions": [],
            "rules": [{"type": "temporary", "reason": "DockerContainerStartupFailure",
                       "pattern": "OCI runtime start failed: container process is already dead: unknown"}]}"#,
    )
    .unwrap();
    let root = dir.path().to_str().unwrap();
    let (_, doc) = logs_json(&[
        "--root",
        root,
        "--rules",
        cfg.to_str().unwrap(),
        "--no-default-rules",
    ]);
    assert_eq!(doc["sources"][0]["lines"], 3, "lines read: {doc:#}");
    let f = &doc["findings"][0];
    assert_eq!(
        f["log"]["count"], 1,
        "the line the message regex does not match is no message: {doc:#}"
    );
    assert_eq!(
        f["log"]["rule"],
        "docker-monitor/DockerContainerStartupFailure"
    );
    // NPD anchors at the end of the message: it matched the extracted message, not the raw
    // line (which ends with a quote).
    assert_eq!(
        f["evidence"][0]["observed"],
        "OCI runtime start failed: container process is already dead: unknown"
    );

    // Two configs: each rule reads only its own config's file.
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("docker.log"))
        .unwrap()
        .write_all(b"time=\"x\" msg=\"Remounting filesystem read-only\"\n")
        .unwrap();
    let (_, doc) = logs_json(&[
        "--root",
        root,
        "--rules",
        cfg.to_str().unwrap(),
        "--rules",
        kern_cfg.to_str().unwrap(),
        "--no-default-rules",
    ]);
    let by_source: Vec<(String, String)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["log"]["source"].as_str().unwrap().to_string(),
                f["log"]["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(by_source.len(), 2, "{by_source:?}");
    assert!(by_source.contains(&(
        "file:docker.log".into(),
        "DockerContainerStartupFailure".into()
    )));
    assert!(by_source.contains(&("file:kern.log".into(), "FilesystemIsReadOnly".into())));

    // Sources named on the command line are read by every rule.
    std::fs::write(
        dir.path().join("plain.log"),
        "EXT4-fs (sda1): Remounting filesystem read-only\n",
    )
    .unwrap();
    let (_, doc) = logs_json(&[
        "--root",
        root,
        "--rules",
        kern_cfg.to_str().unwrap(),
        "--no-default-rules",
        "--source",
        "file:plain.log",
    ]);
    assert_eq!(
        doc["findings"][0]["log"]["reason"], "FilesystemIsReadOnly",
        "{doc:#}"
    );
}

#[test]
fn since_filters_syslog_stamped_files() {
    let dir = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now();
    let stamp = |ago_secs: u64| {
        let t = humantime::format_rfc3339_seconds(now - Duration::from_secs(ago_secs)).to_string();
        // 2026-11-22T19:20:17Z -> "Nov 22 19:20:17"
        let months = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let m: usize = t[5..7].parse().unwrap();
        format!("{} {} {}", months[m - 1], &t[8..10], &t[11..19])
    };
    std::fs::write(
        dir.path().join("kern.log"),
        format!(
            "{} node kernel: VFS: file-max limit 1 reached\n{} node kernel: nf_conntrack: table full, dropping packet\n",
            stamp(7200),
            stamp(10)
        ),
    )
    .unwrap();
    let (_, doc) = logs_json(&[
        "--root",
        dir.path().to_str().unwrap(),
        "--source",
        "file:kern.log",
        "--time-format",
        "syslog",
        "--since",
        "1h",
    ]);
    let reasons: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["log"]["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        vec!["ConntrackFull"],
        "the two-hour-old line is left out"
    );
    assert!(doc["findings"][0]["log"]["last_ms"].as_u64().is_some());
}

// --- The misses measured in issue 12, each from a real line. ---

/// The fixture clock: now, and boot a day before.
const NOW_MS: u64 = 1_795_356_000_000;
const BOOT_MS: u64 = NOW_MS - 86_400_000;

/// A fixture root whose kernel ring holds `records`: (seconds before now, text).
fn kmsg_root(records: &[(u64, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let kmsg: Vec<String> = records
        .iter()
        .enumerate()
        .map(|(seq, (ago_s, text))| {
            let usec = (NOW_MS - ago_s * 1000 - BOOT_MS) * 1000;
            format!("6,{seq},{usec},-;{text}")
        })
        .collect();
    let descriptor = serde_json::json!({
        "about": "kernel ring for the log tests",
        "now_ms": NOW_MS,
        "boot_wall_ms": BOOT_MS,
        "kmsg": kmsg,
    });
    std::fs::write(
        dir.path().join(".node-doctor-fixture.json"),
        serde_json::to_vec_pretty(&descriptor).unwrap(),
    )
    .unwrap();
    dir
}

fn config(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.to_str().unwrap().to_string()
}

/// The findings of a JSON document, as (reason, count).
fn reasons(doc: &Value) -> Vec<(String, u64)> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["log"]["reason"].as_str().unwrap().to_string(),
                f["log"]["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

const OOM: &str = "Out of memory: Killed process 2592 (java) total-vm:7517212kB, anon-rss:6291456kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:12528kB oom_score_adj:0";

#[test]
fn npd_configs_sharing_a_source_name_and_not_adjacent_report_once() {
    // NPD's kernel-monitor.json rule, in two kmsg configs of one source name, with a filelog
    // config between them on the command line: the ring is read once, the kill reported once.
    let root = kmsg_root(&[(60, OOM)]);
    let dir = tempfile::tempdir().unwrap();
    let oom = r#"{"type": "temporary", "reason": "OOMKilling", "pattern": "Killed process \\d+ (.+) total-vm:\\d+kB, anon-rss:\\d+kB, file-rss:\\d+kB.*"}"#;
    let a = config(
        dir.path(),
        "kernel-monitor.json",
        &format!(r#"{{"plugin": "kmsg", "source": "kernel-monitor", "rules": [{oom}]}}"#),
    );
    let b = config(
        dir.path(),
        "docker-monitor.json",
        r#"{"plugin": "filelog", "logPath": "docker.log", "source": "docker-monitor", "rules": [{"type": "temporary", "reason": "X", "pattern": "x"}]}"#,
    );
    let c = config(
        dir.path(),
        "kernel-monitor-2.json",
        &format!(
            r#"{{"plugin": "kmsg", "source": "kernel-monitor", "rules": [{oom}, {{"type": "temporary", "reason": "TaskHung", "pattern": "task [\\S ]+:\\w+ blocked for more than \\w+ seconds\\."}}]}}"#
        ),
    );
    std::fs::write(root.path().join("docker.log"), "").unwrap();
    let (code, doc) = logs_json(&[
        "--root",
        root.path().to_str().unwrap(),
        "--rules",
        &a,
        "--rules",
        &b,
        "--rules",
        &c,
        "--no-default-rules",
    ]);
    assert_eq!(code, 1);
    let kmsg: Vec<&Value> = doc["sources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["source"] == "kmsg")
        .collect();
    assert_eq!(kmsg.len(), 1, "{doc:#}");
    assert_eq!(kmsg[0]["lines"], 1);
    assert_eq!(
        reasons(&doc),
        vec![("OOMKilling".to_string(), 1)],
        "{doc:#}"
    );
    assert_eq!(
        doc["findings"][0]["key"],
        "log-monitor/rule:kernel-monitor/OOMKilling"
    );
}

#[test]
fn npd_lookback_leaves_out_what_is_older() {
    // kernel-monitor.json's "lookback": "5m": a hung task 9.5 minutes old is not reported,
    // one a minute old is.
    let root = kmsg_root(&[
        (
            570,
            "INFO: task rsync:3199 blocked for more than 120 seconds.",
        ),
        (
            60,
            "INFO: task rsync:3200 blocked for more than 120 seconds.",
        ),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "kernel-monitor.json",
        r#"{"plugin": "kmsg", "lookback": "5m", "source": "kernel-monitor",
            "rules": [{"type": "temporary", "reason": "TaskHung", "pattern": "task [\\S ]+:\\w+ blocked for more than \\w+ seconds\\."}]}"#,
    );
    let (_, doc) = logs_json(&[
        "--root",
        root.path().to_str().unwrap(),
        "--rules",
        &cfg,
        "--no-default-rules",
    ]);
    assert_eq!(reasons(&doc), vec![("TaskHung".to_string(), 1)], "{doc:#}");
    assert_eq!(
        doc["findings"][0]["log"]["first_ms"].as_u64(),
        Some(NOW_MS - 60_000)
    );
}

#[test]
fn npd_rules_see_kmsg_messages_trimmed() {
    // NPD trims each kmsg message; its end-anchored KernelOops rule then matches the
    // kernel's line with a trailing blank.
    let root = kmsg_root(&[(60, "divide error: 0000 [#1] SMP ")]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "kernel-monitor.json",
        r#"{"plugin": "kmsg", "source": "kernel-monitor",
            "rules": [{"type": "temporary", "reason": "KernelOops", "pattern": "divide error: 0000 \\[#\\d+\\] SMP"}]}"#,
    );
    let (_, doc) = logs_json(&[
        "--root",
        root.path().to_str().unwrap(),
        "--rules",
        &cfg,
        "--no-default-rules",
    ]);
    assert_eq!(
        reasons(&doc),
        vec![("KernelOops".to_string(), 1)],
        "{doc:#}"
    );
}

#[test]
fn syslog_prefixes_are_stripped_so_the_rules_see_the_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kern.log"),
        "Nov 22 19:20:17 node-7 kernel: [  291.583675] Memory cgroup out of memory: Killed process 6775 (python3) total-vm:278712kB, anon-rss:32512kB, file-rss:6720kB, shmem-rss:0kB, UID:0 pgtables:128kB oom_score_adj:0\n\
         kernel: Killed process 2592 (java) total-vm:7517212kB, anon-rss:6291456kB, file-rss:0kB\n",
    )
    .unwrap();
    let root = dir.path().to_str().unwrap();
    let (_, doc) = logs_json(&["--root", root, "--source", "file:kern.log"]);
    let pid_of = |rule: &str| {
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["log"]["rule"] == rule)
            .map(|f| f["subjects"][0]["pid"].clone())
    };
    assert_eq!(pid_of("memcg-oom-kill"), Some(Value::from(6775)), "{doc:#}");
    assert_eq!(pid_of("oom-kill"), Some(Value::from(2592)), "{doc:#}");

    // A rule anchored at the start of the message matches once the prefix is gone, and no
    // longer with --no-strip-prefix.
    let cfg = config(
        dir.path(),
        "anchored.json",
        r#"{"plugin": "filelog", "logPath": "kern.log", "source": "kernel-monitor",
            "rules": [{"type": "temporary", "reason": "OOMKilling", "pattern": "^Memory cgroup out of memory: Killed process \\d+ .*"}]}"#,
    );
    let (_, doc) = logs_json(&["--root", root, "--rules", &cfg, "--no-default-rules"]);
    assert_eq!(
        reasons(&doc),
        vec![("OOMKilling".to_string(), 1)],
        "{doc:#}"
    );
    let (_, doc) = logs_json(&[
        "--root",
        root,
        "--rules",
        &cfg,
        "--no-default-rules",
        "--no-strip-prefix",
    ]);
    assert!(reasons(&doc).is_empty(), "{doc:#}");
}

#[test]
fn refused_forks_are_one_finding_per_pod_listing_its_cgroups() {
    // 18 refusals over 3 pods (6 cgroups each, as the kernel logs each cgroup once): 3
    // findings, each naming its pod and listing its cgroups.
    let dir = tempfile::tempdir().unwrap();
    let mut log = String::new();
    let pods = [
        "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9",
        "2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d",
        "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f",
    ];
    for pod in pods {
        for c in 0..6 {
            log.push_str(&format!(
                "Nov 22 19:20:17 node-7 kernel: [ 12.0] cgroup: fork rejected by pids controller in /kubepods/besteffort/pod{pod}/{c:064x}\n"
            ));
        }
    }
    std::fs::write(dir.path().join("kern.log"), log).unwrap();
    let (_, doc) = logs_json(&[
        "--root",
        dir.path().to_str().unwrap(),
        "--source",
        "file:kern.log",
    ]);
    let f: Vec<&Value> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["log"]["reason"] == "ForkRejected")
        .collect();
    assert_eq!(f.len(), 3, "{doc:#}");
    for (f, pod) in f.iter().zip(pods) {
        assert_eq!(f["subjects"][0]["kind"], "pod");
        assert_eq!(f["subjects"][0]["pod"], pod);
        assert_eq!(f["log"]["count"], 6);
        assert_eq!(measure(f, "cgroups"), Some(6.0));
        assert_eq!(
            f["subjects"].as_array().unwrap().len(),
            7,
            "the pod and its 6 cgroups"
        );
    }
}
