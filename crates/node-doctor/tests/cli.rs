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
