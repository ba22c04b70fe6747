//! The command line: subcommands, exit codes, output forms, bad snapshot files.

mod common;
use common::*;
use predicates::prelude::*;

/// The healthy capture with pid_max rewritten so 81 tasks are 81%: a warning.
fn warning_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture("healthy"), dir.path());
    std::fs::write(dir.path().join("proc/sys/kernel/pid_max"), "100\n").unwrap();
    dir
}

#[test]
fn checks_lists_every_id_with_a_line() {
    let out = node_doctor().arg("checks").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    // The ids are public interface: alerting and scripts match on them.
    for id in [
        "pid-exhaustion",
        "zombie-processes",
        "fd-exhaustion",
        "fd-leak",
        "d-state-processes",
        "stuck-container-stop",
        "pipe-quota",
        "runc-init-hang",
        "kernel-log",
        "disk-pressure",
        "coredump-to-host",
        "coredump-storm",
        "sysctl-drift",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(id) && l.len() > id.len() + 10),
            "{id} missing from:\n{text}"
        );
    }
    assert_eq!(text.lines().count(), node_doctor_core::checks::all().len());
}

#[test]
fn explain_prints_the_knowledge_page() {
    for id in node_doctor_core::checks::all().iter().map(|c| c.id) {
        node_doctor()
            .args(["explain", id])
            .assert()
            .success()
            .stdout(predicate::str::starts_with(format!("# {id}")))
            .stdout(predicate::str::contains("**Cause.**"))
            .stdout(predicate::str::contains("**Evidence read.**"))
            .stdout(predicate::str::contains("**Fix.**"));
    }
    node_doctor()
        .args(["explain", "no-such-check"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown check id"));
}

#[test]
fn unknown_only_id_is_a_tool_failure() {
    node_doctor()
        .args(["check", "--only", "nope", "--window", "0"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("\"nope\""));
}

#[test]
fn fail_on_sets_the_exit_code() {
    let root = warning_root();
    let r = root.path().to_str().unwrap();
    let (code, doc) = check_json(&["--root", r, "--window", "0", "--only", "pid-exhaustion"]);
    assert_eq!(code, 1);
    let f = findings_of(&doc, "pid-exhaustion")[0];
    assert_eq!(f["severity"], "warning");
    assert_eq!(
        (measure(f, "tasks"), measure_limit(f, "tasks")),
        (Some(81.0), Some(100.0))
    );
    assert_eq!(f["key"], "pid-exhaustion/node");
    let (code, _) = check_json(&[
        "--root",
        r,
        "--window",
        "0",
        "--only",
        "pid-exhaustion",
        "--fail-on",
        "critical",
    ]);
    assert_eq!(code, 0);
}

#[test]
fn human_output_groups_counts_and_has_no_colour_off_a_tty() {
    let root = warning_root();
    let out = node_doctor()
        .args([
            "check",
            "--root",
            root.path().to_str().unwrap(),
            "--window",
            "0",
            "--only",
            "pid-exhaustion",
            "--only",
            "fd-exhaustion",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains('\x1b'),
        "no ANSI codes when stdout is not a terminal"
    );
    assert!(
        text.contains("WARNING pid-exhaustion: 81 of 100 task ids in use (81.0%"),
        "{text}"
    );
    assert!(text.contains("  evidence:\n"), "{text}");
    assert!(text.contains("  remedy: "), "{text}");
    let last = text.lines().last().unwrap();
    assert_eq!(
        last,
        "1 finding (0 critical, 1 warning, 0 info), 0 unknown, 2 checks run"
    );
}

#[test]
fn root_comes_from_the_environment_too() {
    let root = warning_root();
    let out = node_doctor()
        .env("NODE_DOCTOR_ROOT", root.path())
        .args([
            "check",
            "--window",
            "0",
            "--only",
            "pid-exhaustion",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["host"]["root"], root.path().to_str().unwrap());
    assert_eq!(findings_of(&doc, "pid-exhaustion").len(), 1);
}

#[test]
fn snapshot_replays_to_the_same_findings() {
    let root = warning_root();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snap.json");
    node_doctor()
        .args([
            "snapshot",
            "--root",
            root.path().to_str().unwrap(),
            "--window",
            "10ms",
            "-o",
            file.to_str().unwrap(),
        ])
        .assert()
        .success();
    let (code_live, live) = check_json(&["--root", root.path().to_str().unwrap(), "--window", "0"]);
    let (code_replay, replay) = check_json(&["--from", file.to_str().unwrap()]);
    assert_eq!(code_live, code_replay);
    // The tree carries its clock and statvfs answers: the replay is the same to the letter.
    assert_eq!(live["findings"], replay["findings"]);
    assert_eq!(live["unknown"], replay["unknown"]);
    assert_eq!(replay["host"]["samples"], 2);
    // Replaying twice is exact, including the host section (all but how long checks took).
    let (_, mut again) = check_json(&["--from", file.to_str().unwrap()]);
    let mut replay = replay;
    for d in [&mut replay, &mut again] {
        d["timings"]["checks"] = serde_json::Value::Null;
    }
    assert_eq!(replay, again);
}

#[test]
fn bad_snapshot_files_fail_clearly_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    node_doctor()
        .args([
            "snapshot",
            "--root",
            fixture("healthy").to_str().unwrap(),
            "--window",
            "0",
            "-o",
            good.to_str().unwrap(),
        ])
        .assert()
        .success();
    let bytes = std::fs::read(&good).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated.json",
            bytes[..bytes.len() / 2].to_vec(),
            "corrupt or truncated",
        ),
        (
            "garbage.json",
            b"\x00\xffnot json at all".to_vec(),
            "corrupt or truncated",
        ),
        (
            "schema.json",
            br#"{"schema":"something/v9","samples":[]}"#.to_vec(),
            "schema \"something/v9\" is not supported",
        ),
        (
            "empty.json",
            br#"{"schema":"node-doctor.snapshot/v1","samples":[]}"#.to_vec(),
            "holds no samples",
        ),
        ("emptyfile.json", Vec::new(), "corrupt or truncated"),
    ];
    for (name, content, msg) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        node_doctor()
            .args(["check", "--from", path.to_str().unwrap()])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(path.to_str().unwrap()))
            .stderr(predicate::str::contains(msg));
    }
    node_doctor()
        .args([
            "check",
            "--from",
            dir.path().join("missing.json").to_str().unwrap(),
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "missing.json: cannot read snapshot",
        ));
}

#[test]
fn bad_durations_are_rejected() {
    node_doctor()
        .args(["check", "--window", "soon"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("soon"));
}

#[test]
fn per_check_settings_from_a_config_file_or_set() {
    let root = warning_root();
    let r = root.path().to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // 81 tasks of 100 warn at the default 0.70; a threshold of 0.85 says fine.
    let toml = dir.path().join("nd.toml");
    std::fs::write(&toml, "[pid-exhaustion]\nwarn = 0.85\ncrit = \"95%\"\n").unwrap();
    let yaml = dir.path().join("nd.yaml");
    std::fs::write(&yaml, "pid-exhaustion:\n  warn: 0.85\n").unwrap();
    let base = ["--root", r, "--window", "0", "--only", "pid-exhaustion"];
    for extra in [
        vec!["--config", toml.to_str().unwrap()],
        vec!["--config", yaml.to_str().unwrap()],
        vec!["--set", "pid-exhaustion.warn=0.85"],
    ] {
        let args: Vec<&str> = base.iter().copied().chain(extra.iter().copied()).collect();
        let (code, doc) = check_json(&args);
        assert_eq!(code, 0, "{extra:?}: {doc:#}");
        assert!(findings_of(&doc, "pid-exhaustion").is_empty(), "{extra:?}");
    }
    // --set after --config wins.
    let (code, _) = check_json(
        &base
            .iter()
            .copied()
            .chain([
                "--config",
                toml.to_str().unwrap(),
                "--set",
                "pid-exhaustion.warn=0.5",
            ])
            .collect::<Vec<_>>(),
    );
    assert_eq!(code, 1);
    // A disabled check is not run.
    let (_, doc) = check_json(&[
        "--root",
        r,
        "--window",
        "0",
        "--set",
        "pid-exhaustion.enabled=false",
    ]);
    assert!(
        !doc["host"]["checks_run"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "pid-exhaustion")
    );
}

#[test]
fn bad_configs_fail_clearly_naming_the_file_and_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &str)] = &[
        (
            "garbage.toml",
            "\u{0}[[[ not toml",
            "garbage.toml: not valid TOML",
        ),
        (
            "typo.toml",
            "[pid-exhastion]\nwarn = 0.8\n",
            "unknown check id \"pid-exhastion\"",
        ),
        (
            "key.toml",
            "[pid-exhaustion]\nwran = 0.8\n",
            "unknown setting \"wran\"",
        ),
        (
            "range.toml",
            "[pid-exhaustion]\nwarn = 7\n",
            "pid-exhaustion.warn",
        ),
        ("list.yaml", "- a\n- b\n", "the top level must be a table"),
    ];
    for (name, text, msg) in cases {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        node_doctor()
            .args(["check", "--window", "0", "--config", p.to_str().unwrap()])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(*msg));
    }
    node_doctor()
        .args(["check", "--window", "0", "--set", "pid-exhaustion.warn"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("expected CHECK.KEY=VALUE"));
    node_doctor()
        .args([
            "check",
            "--window",
            "0",
            "--config",
            dir.path().join("missing.toml").to_str().unwrap(),
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "missing.toml: cannot read the config",
        ));
}

#[test]
fn checks_as_json_list_every_setting_with_its_default() {
    let out = node_doctor()
        .args(["checks", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = doc["checks"].as_array().unwrap();
    assert_eq!(checks.len(), node_doctor_core::checks::all().len());
    let pid = checks.iter().find(|c| c["id"] == "pid-exhaustion").unwrap();
    let warn = pid["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "warn")
        .unwrap();
    assert_eq!(
        (warn["type"].as_str(), warn["default"].as_f64()),
        (Some("ratio"), Some(0.7))
    );
    let runc = checks.iter().find(|c| c["id"] == "runc-init-hang").unwrap();
    let t = runc["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "threshold")
        .unwrap();
    assert_eq!(t["default"], "30s");
    // Every check has the generic settings too.
    assert!(checks.iter().all(|c| {
        c["settings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["key"] == "enabled")
    }));
}

#[test]
fn runc_init_threshold_is_an_alias_of_the_setting() {
    let rec = fixture("incident-1-runc-init").with_file_name("recording.json");
    let rec = rec.to_str().unwrap();
    let (_, doc) = check_json(&["--from", rec, "--only", "runc-init-hang"]);
    assert_eq!(findings_of(&doc, "runc-init-hang").len(), 1);
    for args in [
        vec!["--runc-init-threshold", "1h"],
        vec!["--set", "runc-init-hang.threshold=1h"],
    ] {
        let all: Vec<&str> = ["--from", rec, "--only", "runc-init-hang"]
            .into_iter()
            .chain(args)
            .collect();
        let (_, doc) = check_json(&all);
        assert!(findings_of(&doc, "runc-init-hang").is_empty());
    }
}

#[test]
fn the_log_monitor_has_an_explain_page() {
    node_doctor()
        .args(["explain", "log-monitor"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("# log-monitor"));
}
