//! Helpers shared by the integration tests.
#![allow(dead_code)]

use assert_cmd::Command;
use node_doctor_core::checks::{self, History, Needs, Report};
use node_doctor_core::config::Config;
use node_doctor_core::model::Snapshot;
use node_doctor_host::Host;
use node_doctor_host::collect::collect;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// `tests/fixtures/<scenario>/root` at the top of the repository.
pub fn fixture(scenario: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(scenario)
        .join("root")
}

/// A copy of a scenario's tree, to damage or extend in a test.
pub fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        let t = entry.file_type().unwrap();
        if t.is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_tree(&entry.path(), &dest);
        } else if t.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), &dest).unwrap();
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// A scenario's tree copied into a fresh temporary directory.
pub fn fixture_copy(scenario: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture(scenario), dir.path());
    dir
}

/// Puts a FIFO at `path` (replacing a file there, making missing parents): what a damaged or
/// hostile tree has where a file is expected. Opening it for reading without O_NONBLOCK
/// waits for a writer that never comes.
pub fn mkfifo(path: &Path) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    let _ = std::fs::remove_file(path);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
}

/// Everything every check needs.
pub fn all_needs() -> Needs {
    Needs::of(&checks::all().iter().collect::<Vec<_>>())
}

pub fn snapshot_of(root: impl Into<PathBuf>) -> Snapshot {
    let host = Host::open(root.into()).expect("the root opens");
    collect(&host, &all_needs(), None)
}

/// Runs the named checks (all when empty) over the samples.
pub fn run_checks(samples: &[Snapshot], only: &[&str]) -> Report {
    run_checks_with(samples, only, &Config::default())
}

pub fn run_checks_with(samples: &[Snapshot], only: &[&str], config: &Config) -> Report {
    let defs: Vec<_> = if only.is_empty() {
        checks::all().iter().collect()
    } else {
        only.iter()
            .map(|id| checks::by_id(id).expect("known check"))
            .collect()
    };
    checks::run(&defs, &History::new(samples).expect("samples"), config)
}

/// Longest a `node-doctor` run in a test may take before it is killed (a hang regression
/// fails the test instead of hanging the suite).
pub const RUN_LIMIT: Duration = Duration::from_secs(90);

pub fn node_doctor() -> Command {
    let mut c = Command::cargo_bin("node-doctor").expect("binary built");
    c.timeout(RUN_LIMIT);
    c.env_remove("NODE_DOCTOR_ROOT");
    c
}

/// Runs `node-doctor check ARGS --format json` and returns the exit code and parsed document.
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

/// The value of measure `name` of a JSON finding.
pub fn measure(f: &serde_json::Value, name: &str) -> Option<f64> {
    f["measures"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == name)?["value"]
        .as_f64()
}

/// The limit of measure `name` of a JSON finding.
pub fn measure_limit(f: &serde_json::Value, name: &str) -> Option<f64> {
    f["measures"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == name)?["limit"]
        .as_f64()
}

/// A `node-doctor` that keeps running (`logs --follow`): its stdout lines arrive through a
/// reader thread so every read has a timeout, and it is killed and reaped on drop, also
/// when an assertion fails.
pub struct Spawned {
    pub child: Child,
    lines: mpsc::Receiver<String>,
}

impl Spawned {
    pub fn start(args: &[&str]) -> Spawned {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("node-doctor"))
            .args(args)
            .env_remove("NODE_DOCTOR_ROOT")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn node-doctor");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Spawned { child, lines }
    }

    /// The next line, or `None` when none came within `timeout`.
    pub fn line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Lines until one satisfies `want`, within `timeout` in all.
    pub fn until(&self, timeout: Duration, mut want: impl FnMut(&str) -> bool) -> Option<String> {
        let end = std::time::Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(std::time::Instant::now());
            let line = self.line(left)?;
            if want(&line) {
                return Some(line);
            }
        }
    }

    /// Sends SIGTERM and returns the exit code (killed if it does not exit within 5 s).
    pub fn terminate(&mut self) -> Option<i32> {
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let end = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < end {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Lines still buffered, for a test that terminated the process.
    pub fn rest(&self) -> Vec<String> {
        let mut v = Vec::new();
        while let Some(l) = self.line(Duration::from_millis(200)) {
            v.push(l);
        }
        v
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn assert_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "live tests create real faults and need root"
    );
}

pub mod faults;
