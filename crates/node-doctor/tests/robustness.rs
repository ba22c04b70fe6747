//! Regression tests for the reliability failures of issue 10, each reproduced on the
//! version before it: a `check` that hung on a FIFO, a read of an endless file, a walk of
//! a huge cgroup tree, a "0 findings, exit 0" when nothing was looked at, a snapshot that
//! replaced a device node. Hermetic: fixture trees copied to temp dirs, no root needed.
//! Each test's comment names the failure it guards (ripgrep's tests/regression.rs style).

mod common;
use common::*;
use predicates::prelude::*;
use serde_json::Value;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::time::Duration;

/// A hang regression fails within this instead of at the suite's RUN_LIMIT.
const QUICK: Duration = Duration::from_secs(20);

/// `snapshot --root ROOT -o -` (one sample of everything) parsed: its last sample.
fn snapshot_stdout(root: &Path) -> Value {
    let out = node_doctor()
        .args(["snapshot", "--window", "0", "-o", "-", "--root"])
        .arg(root)
        .timeout(QUICK)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rec: Value = serde_json::from_slice(&out.stdout).expect("the recording on stdout");
    rec["samples"].as_array().unwrap().last().unwrap().clone()
}

/// The `unavailable` entry of a snapshot sample for `path`.
fn unavailable<'a>(sample: &'a Value, path: &str) -> Option<&'a Value> {
    sample["unavailable"]
        .as_array()?
        .iter()
        .find(|u| u["path"] == path)
}

/// `check --root ROOT --window 0 --format json ARGS` with the quick timeout.
fn check_root(root: &Path, args: &[&str]) -> (i32, Value, String) {
    let out = node_doctor()
        .args(["check", "--window", "0", "--format", "json", "--root"])
        .arg(root)
        .args(args)
        .timeout(QUICK)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let doc = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}); stderr: {stderr}"));
    (out.status.code().unwrap_or(-1), doc, stderr)
}

fn unknown_text(doc: &Value) -> String {
    doc["unknown"].to_string()
}

// ---- Never hang -------------------------------------------------------------------------

/// Guards: `check` hung until killed on a FIFO in place of `proc/loadavg`, of the mount table
/// (`proc/1/mountinfo` and its fallback `proc/self/mountinfo`), or of the dpkg status file —
/// a plain `open` of a FIFO waits for a writer. Each is now refused as not a regular file,
/// recorded with kind `not_regular`, and the run finishes.
#[test]
fn a_fifo_in_place_of_a_host_file_is_refused_not_waited_on() {
    let cases: &[&[&str]] = &[
        &["proc/loadavg"],
        &["proc/1/mountinfo", "proc/self/mountinfo"],
        &["var/lib/dpkg/status"],
    ];
    for fifos in cases {
        let dir = fixture_copy("healthy");
        for rel in *fifos {
            mkfifo(&dir.path().join(rel));
        }
        let sample = snapshot_stdout(dir.path());
        for rel in *fifos {
            let u = unavailable(&sample, rel)
                .unwrap_or_else(|| panic!("{rel} listed as unavailable: {sample:#}"));
            assert_eq!(u["kind"], "not_regular", "{u}");
            assert!(u["reason"].as_str().unwrap().contains("FIFO"), "{u}");
        }
        let (code, doc, stderr) = check_root(dir.path(), &[]);
        assert_eq!(code, 0, "{fifos:?}: {stderr}");
        assert!(!doc["host"]["checks_run"].as_array().unwrap().is_empty());
        if fifos.contains(&"proc/1/mountinfo") {
            // Without a mount table no pids hierarchy was walked: said, not passed over.
            let unknown = unknown_text(&doc);
            assert!(
                unknown.contains("pids cgroups not read") && unknown.contains("proc/1/mountinfo"),
                "{unknown}"
            );
            assert!(unknown.contains("FIFO"), "{unknown}");
        }
    }
}

/// Guards: a FIFO at `dev/kmsg` under a root read as live (no fixture descriptor) — opened
/// for reading it blocked forever; it is now refused as not the kernel log device and the
/// kernel-log check is unknown.
#[test]
fn a_fifo_at_dev_kmsg_makes_kernel_log_unknown_without_hanging() {
    let dir = fixture_copy("healthy");
    // Without its descriptor the tree is read like any root: the kernel log is <root>/dev/kmsg.
    std::fs::remove_file(dir.path().join(".node-doctor-fixture.json")).unwrap();
    mkfifo(&dir.path().join("dev/kmsg"));
    let (code, doc, stderr) = check_root(dir.path(), &["--only", "kernel-log"]);
    assert_eq!(code, 2, "kernel-log alone could check nothing: {stderr}");
    assert!(stderr.contains("nothing could be checked"), "{stderr}");
    let unknown = unknown_text(&doc);
    assert!(
        unknown.contains("kernel-log") && unknown.contains("not the kernel log device"),
        "{unknown}"
    );
    assert!(unknown.contains("FIFO"), "{unknown}");
    assert_eq!(doc["coverage"]["inconclusive"][0], "kernel-log");
}

/// The probe child that `statvfs` of watched paths runs in (so that a probe stuck on a dead
/// FUSE mount cannot keep `check` from exiting; the live test makes that fault): one JSON
/// answer per run, and `check` of a tree read as live measures through it.
#[test]
fn watched_filesystems_are_probed_through_the_probe_child() {
    let dir = fixture_copy("healthy");
    std::fs::remove_file(dir.path().join(".node-doctor-fixture.json")).unwrap();
    std::fs::create_dir_all(dir.path().join("var/lib/kubelet")).unwrap();
    let probe = |kind: &str, path: &str| -> Value {
        let out = node_doctor()
            .arg("__probe")
            .arg(dir.path())
            .args([kind, path])
            .timeout(QUICK)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(out.stdout.iter().filter(|&&b| b == b'\n').count(), 1);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    assert!(probe("p", "/var/lib/kubelet")["Found"]["block_size"].as_u64() > Some(0));
    assert_eq!(probe("p", "/var/lib/docker"), "Missing");
    let (code, doc, stderr) = check_root(dir.path(), &["--only", "disk-pressure"]);
    assert!(matches!(code, 0 | 1), "{stderr}");
    assert!(doc["unknown"].as_array().unwrap().is_empty(), "{doc:#}");
}

// ---- Bounded cost -----------------------------------------------------------------------

/// Guards: a sysctl file that reads endlessly was read whole (5.5 GiB RSS). A 5 GiB sparse
/// `fs.file-nr` is now read up to the sysctl cap, recorded as `truncated`, and fd-exhaustion
/// is unknown instead of judged on a prefix.
#[test]
fn a_huge_sysctl_file_is_truncated_not_read_whole() {
    let dir = fixture_copy("healthy");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join("proc/sys/fs/file-nr"))
        .unwrap();
    f.set_len(5 << 30).unwrap(); // sparse: instant, and no disk used
    drop(f);
    let sample = snapshot_stdout(dir.path());
    let u = unavailable(&sample, "proc/sys/fs/file-nr").expect("file-nr unavailable");
    assert_eq!(u["kind"], "truncated", "{u}");
    assert!(sample["sysctls"].get("fs.file-nr").is_none());

    let (code, doc, stderr) = check_root(
        dir.path(),
        &["--only", "fd-exhaustion", "--only", "pid-exhaustion"],
    );
    assert_eq!(code, 0, "{stderr}");
    let fd: Vec<&Value> = doc["unknown"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["check"] == "fd-exhaustion")
        .collect();
    assert_eq!(fd.len(), 1, "{doc:#}");
    assert!(
        fd[0]["reason"].as_str().unwrap().contains("file-nr")
            && fd[0]["reason"].as_str().unwrap().contains("truncated"),
        "{fd:?}"
    );
    assert!(findings_of(&doc, "fd-exhaustion").is_empty());
    assert_eq!(doc["coverage"]["complete"], false);
}

/// Guards: 200k pids cgroups took 290 s and 616 MiB to walk. The walk stops at its bound,
/// says so (`pids_truncated`, a `truncated` entry naming the mount) and the check reports
/// the blind spot. The collector's bound is 50 000 directories; creating that many takes
/// longer than a test should (and removing them longer still), so the same walk runs here
/// with a bound of 100 over 101 cgroups.
#[test]
fn a_cgroup_tree_past_the_walk_bound_is_truncated_and_said() {
    use node_doctor_core::checks::{self, History};
    use node_doctor_core::config::Config;
    use node_doctor_host::Host;
    use node_doctor_host::collect::{cgroups, mounts};
    let dir = fixture_copy("healthy");
    // The healthy mount table lists a v1 pids hierarchy at /sys/fs/cgroup/pids.
    let pids = dir.path().join("sys/fs/cgroup/pids");
    for i in 0..101 {
        std::fs::create_dir_all(pids.join(format!("pod{i}"))).unwrap();
    }
    let host = Host::open(dir.path()).unwrap();
    let mut s = snapshot_of(dir.path());
    assert_eq!(
        s.cgroups.as_ref().map(|c| c.pids_truncated),
        Some(false),
        "within the real bound"
    );
    assert_eq!(
        s.cgroups
            .as_ref()
            .and_then(|c| c.v1_directories.get("pids")),
        Some(&102)
    );
    let mut unavailable = Vec::new();
    let table = mounts::read(&*host.fs, &mut unavailable);
    let c = cgroups::read_bounded(
        &host.fs,
        table.as_deref(),
        false,
        None,
        100,
        &mut unavailable,
    );
    assert!(c.pids_truncated);
    // A walk cut short counts no directories: a partial count would pass for the whole.
    assert_eq!(c.v1_directories.get("pids"), None);
    let entry = unavailable
        .iter()
        .find(|u| u.kind == node_doctor_core::model::Kind::Truncated)
        .expect("a truncated entry");
    assert_eq!(entry.path, "sys/fs/cgroup/pids");
    assert!(entry.reason.contains("bound on directories"), "{entry}");

    // The check over that snapshot finishes and names the blind spot.
    s.cgroups = Some(c);
    s.unavailable.extend(unavailable);
    let samples = [s];
    let h = History::new(&samples).unwrap();
    let defs = [checks::by_id("pid-exhaustion").unwrap()];
    let report = checks::run(&defs, &h, &Config::default());
    assert!(report.inconclusive.is_empty());
    assert!(
        report
            .unknown
            .iter()
            .any(|u| u.reason.contains("stopped at its bound")),
        "{:?}",
        report.unknown
    );
    let coverage = node_doctor_core::coverage::of(&h, &report);
    assert!(
        coverage
            .notes
            .iter()
            .any(|n| n.contains("sys/fs/cgroup/pids") && n.contains("truncated")),
        "{coverage:?}"
    );
}

// ---- Never say healthy when nothing was looked at ---------------------------------------

/// Guards: `--root` at an empty or a nonexistent directory printed "0 findings" and exited 0.
#[test]
fn a_root_that_is_no_host_is_a_failure_not_a_healthy_node() {
    let empty = tempfile::tempdir().unwrap();
    node_doctor()
        .args(["check", "--root"])
        .arg(empty.path())
        .timeout(QUICK)
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("does not look like a host root"));
    let missing = empty.path().join("nonexistent");
    node_doctor()
        .args(["check", "--root"])
        .arg(&missing)
        .timeout(QUICK)
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("cannot open the host root"))
        .stderr(predicate::str::contains(missing.to_str().unwrap()));
}

/// Guards: `--deadline 0` read nothing and still reported "0 findings", exit 0.
#[test]
fn a_deadline_of_zero_checks_nothing_and_says_so() {
    let (code, doc, stderr) = check_root(&fixture("healthy"), &["--deadline", "0"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("nothing could be checked"), "{stderr}");
    assert!(doc["findings"].as_array().unwrap().is_empty());
    assert_eq!(
        doc["coverage"]["inconclusive"].as_array().unwrap().len(),
        doc["host"]["checks_run"].as_array().unwrap().len()
    );
    assert!(unknown_text(&doc).contains("deadline"), "{doc:#}");
}

/// Guards: a run in which some check could not conclude passed every `--fail-on`.
/// `--fail-on unknown` exits 1 on any unknown; the default still exits 0.
#[test]
fn fail_on_unknown_fails_a_run_with_an_unknown() {
    // On one sample the D-state rsync of the 5.4 node cannot be judged: unknown. fd-exhaustion
    // concludes (no finding), so the run as a whole checked something.
    let args = ["--only", "d-state-processes", "--only", "fd-exhaustion"];
    let (code, doc, _) = check_root(&fixture("kernel-5.4"), &args);
    assert_eq!(code, 0);
    assert!(doc["findings"].as_array().unwrap().is_empty());
    assert_eq!(doc["unknown"][0]["check"], "d-state-processes");
    let mut with = args.to_vec();
    with.extend(["--fail-on", "unknown"]);
    let (code, _, _) = check_root(&fixture("kernel-5.4"), &with);
    assert_eq!(code, 1);
    // A run with nothing unknown passes --fail-on unknown.
    let (code, doc, _) = check_root(
        &fixture("healthy"),
        &[
            "--only",
            "pid-exhaustion",
            "--only",
            "fd-exhaustion",
            "--fail-on",
            "unknown",
        ],
    );
    assert_eq!(code, 0, "{doc:#}");
}

// ---- Never clobber ----------------------------------------------------------------------

fn snapshot_to(out: &Path) -> assert_cmd::assert::Assert {
    node_doctor()
        .args([
            "snapshot",
            "--window",
            "0",
            "--only",
            "fd-exhaustion",
            "--root",
        ])
        .arg(fixture("healthy"))
        .arg("-o")
        .arg(out)
        .timeout(QUICK)
        .assert()
}

fn is_recording(bytes: &[u8]) -> bool {
    node_doctor_core::model::Recording::from_slice("out", bytes).is_ok()
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Guards: `snapshot -o /dev/full` replaced the device node with a regular file and
/// reported success. A device is written through; ENOSPC is a failure (exit 2).
#[test]
fn snapshot_to_dev_full_fails_and_leaves_the_device() {
    let dev_full = Path::new("/dev/full");
    assert!(
        std::fs::metadata(dev_full)
            .unwrap()
            .file_type()
            .is_char_device()
    );
    snapshot_to(dev_full)
        .code(2)
        .stderr(predicate::str::contains("No space left on device"));
    let m = std::fs::symlink_metadata(dev_full).unwrap();
    assert!(
        m.file_type().is_char_device(),
        "/dev/full is still a device"
    );
}

/// `-o -` is standard output: the recording, nothing else, on stdout.
#[test]
fn snapshot_to_dash_writes_stdout() {
    let out = node_doctor()
        .args([
            "snapshot",
            "--window",
            "0",
            "--only",
            "fd-exhaustion",
            "-o",
            "-",
        ])
        .arg("--root")
        .arg(fixture("healthy"))
        .timeout(QUICK)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(is_recording(&out.stdout));
    assert!(!Path::new("-").exists(), "no file named '-'");
}

/// Guards: a symlink given as the output was replaced by a regular file. It is written
/// through: the target gets the snapshot, the link stays a link.
#[test]
fn snapshot_through_a_symlink_writes_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target.json");
    std::fs::write(&target, "old").unwrap();
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink("target.json", &link).unwrap();
    snapshot_to(&link).success();
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("target.json"));
    assert!(is_recording(&std::fs::read(&target).unwrap()));
    assert_eq!(names_in(dir.path()), ["link.json", "target.json"]);
}

/// Guards: an existing `X.tmp` next to the output was silently deleted (it was the fixed
/// temp name). The temp name is now unique; a user's `X.tmp` is left as it was.
#[test]
fn an_existing_tmp_file_next_to_the_output_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("snap.json");
    std::fs::write(dir.path().join("snap.json.tmp"), "mine").unwrap();
    std::fs::write(dir.path().join(".snap.json.tmp"), "mine too").unwrap();
    std::fs::write(&out, "old snapshot").unwrap();
    snapshot_to(&out).success();
    assert!(is_recording(&std::fs::read(&out).unwrap()));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("snap.json.tmp")).unwrap(),
        "mine"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".snap.json.tmp")).unwrap(),
        "mine too"
    );
    assert_eq!(
        names_in(dir.path()),
        [".snap.json.tmp", "snap.json", "snap.json.tmp"]
    );
}

/// Guards: a directory as the output failed but left `X.tmp` behind. It fails (exit 2)
/// before writing anything.
#[test]
fn a_directory_as_output_fails_leaving_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out");
    std::fs::create_dir(&target).unwrap();
    snapshot_to(&target)
        .code(2)
        .stderr(predicate::str::contains("is a directory"));
    assert!(names_in(&target).is_empty());
    assert_eq!(names_in(dir.path()), ["out"]);
}

/// A FIFO without a reader as the output fails at once (ENXIO) instead of blocking in open.
#[test]
fn a_fifo_without_a_reader_as_output_fails_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    snapshot_to(&fifo)
        .code(2)
        .stderr(predicate::str::contains("No such device or address"));
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert_eq!(names_in(dir.path()), ["fifo"]);
}

// ---- First contact ------------------------------------------------------------------------

/// Runs `node-doctor ARGS` with stdout on a new pseudo-terminal; returns what it printed.
fn on_a_tty(args: &[&str], env: &[(&str, &str)]) -> String {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    use std::io::Read;
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().unwrap())
        .unwrap();
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("node-doctor"));
    cmd.args(args)
        .env_remove("NO_COLOR")
        .env_remove("NODE_DOCTOR_ROOT")
        .stdout(slave)
        .stderr(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    drop(cmd); // closes our copy of the slave, so the master reads EIO once the child exits
    let reader = std::thread::spawn(move || {
        let mut f = std::fs::File::from(master);
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match f.read(&mut buf) {
                Ok(0) | Err(_) => break, // EIO: no process holds the slave any more
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        out
    });
    let end = std::time::Instant::now() + QUICK;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("node-doctor on a tty did not finish");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    String::from_utf8_lossy(&reader.join().unwrap()).into_owned()
}

/// Guards: `NO_COLOR` was ignored. On a terminal the human report is coloured unless
/// `NO_COLOR` is set to a non-empty value (no-color.org); off a terminal it never is.
#[test]
fn no_color_and_non_terminals_get_no_ansi_codes() {
    let dir = fixture_copy("healthy");
    std::fs::write(dir.path().join("proc/sys/kernel/pid_max"), "100\n").unwrap(); // a warning
    let root = dir.path().to_str().unwrap();
    let args = [
        "check",
        "--root",
        root,
        "--window",
        "0",
        "--only",
        "pid-exhaustion",
    ];
    let coloured = on_a_tty(&args, &[]);
    assert!(coloured.contains("WARNING"), "{coloured}");
    assert!(
        coloured.contains("\x1b["),
        "a terminal gets colour: {coloured:?}"
    );
    let plain = on_a_tty(&args, &[("NO_COLOR", "1")]);
    assert!(plain.contains("WARNING"), "{plain}");
    assert!(!plain.contains('\x1b'), "NO_COLOR=1: {plain:?}");
    // An empty NO_COLOR does not count (no-color.org).
    assert!(on_a_tty(&args, &[("NO_COLOR", "")]).contains("\x1b["));
    // Not a terminal (a pipe), NO_COLOR unset: no colour either.
    let out = node_doctor()
        .args(args)
        .env_remove("NO_COLOR")
        .timeout(QUICK)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("WARNING") && !text.contains('\x1b'),
        "{text:?}"
    );
}

/// Guards: `--help` did not list the exit codes.
#[test]
fn help_lists_the_exit_codes() {
    for args in [&["--help"][..], &["check", "--help"], &["logs", "--help"]] {
        let out = node_doctor().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("Exit codes:"), "{args:?}: {text}");
        for line in ["  0  ", "  1  ", "  2  "] {
            assert!(
                text.contains(line),
                "{args:?} lists exit code {line:?}: {text}"
            );
        }
        assert!(text.contains("nothing could be checked"), "{text}");
    }
}
