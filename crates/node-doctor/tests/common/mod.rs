//! Helpers shared by the integration tests.
#![allow(dead_code)]

use assert_cmd::Command;
use node_doctor::checks::{self, History, Report};
use node_doctor::host::HostRoot;
use node_doctor::snapshot::{CollectOptions, Snapshot, collect};
use std::path::PathBuf;

/// `tests/fixtures/<scenario>/root` at the top of the repository.
pub fn fixture(scenario: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(scenario)
        .join("root")
}

pub fn snapshot_of(root: impl Into<PathBuf>) -> Snapshot {
    collect(&HostRoot::new(root.into()), &CollectOptions::default())
}

/// Runs the named checks (all when empty) over the samples.
pub fn run_checks(samples: &[Snapshot], only: &[&str]) -> Report {
    let defs: Vec<_> = if only.is_empty() {
        checks::all().iter().collect()
    } else {
        only.iter()
            .map(|id| checks::by_id(id).expect("known check"))
            .collect()
    };
    checks::run(&defs, &History::new(samples).expect("samples"), None)
}

pub fn node_doctor() -> Command {
    Command::cargo_bin("node-doctor").expect("binary built")
}

/// Runs `node-doctor ARGS --format json` and returns the exit code and parsed document.
pub fn check_json(args: &[&str]) -> (i32, serde_json::Value) {
    let out = node_doctor()
        .arg("check")
        .args(args)
        .args(["--format", "json"])
        .output()
        .expect("runs");
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), doc)
}

pub fn findings_of<'a>(doc: &'a serde_json::Value, check: &str) -> Vec<&'a serde_json::Value> {
    doc["findings"]
        .as_array()
        .expect("findings array")
        .iter()
        .filter(|f| f["check"] == check)
        .collect()
}

/// Findings of `check` with a subject whose `key` is `value` (`"pid"`, `"container_id"`).
pub fn findings_about<'a>(
    doc: &'a serde_json::Value,
    check: &str,
    key: &str,
    value: &serde_json::Value,
) -> Vec<&'a serde_json::Value> {
    findings_of(doc, check)
        .into_iter()
        .filter(|f| {
            f["subjects"]
                .as_array()
                .is_some_and(|subjects| subjects.iter().any(|s| &s[key] == value))
        })
        .collect()
}

/// Findings of `check` naming the process `pid`.
pub fn findings_naming<'a>(
    doc: &'a serde_json::Value,
    check: &str,
    pid: i32,
) -> Vec<&'a serde_json::Value> {
    findings_about(doc, check, "pid", &serde_json::Value::from(pid))
}

pub fn assert_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "live tests create real faults and need root"
    );
}

/// How many checks `node-doctor check` runs with no `--only`.
pub const ALL_CHECKS: usize = 10;

pub mod faults;
