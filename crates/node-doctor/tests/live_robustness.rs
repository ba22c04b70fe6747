//! Live regression tests for the reliability failures of issue 10 that need root: a
//! `/dev/zero`-like device at the kernel log's place, a dead FUSE mount at a watched path,
//! and an unprivileged run. Each makes the real fault on this host, runs the real binary and
//! undoes the fault through guards that also run when an assertion fails.

#![cfg(feature = "live")]

mod common;
#[path = "common/kubelet.rs"]
mod kubelet;
use common::faults::*;
use common::*;
use node_doctor_core::checks::{self, Needs};
use node_doctor_core::model::Kind;
use node_doctor_host::Host;
use node_doctor_host::collect::collect;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A hang regression fails within this instead of at the suite's RUN_LIMIT.
const QUICK: Duration = Duration::from_secs(30);

/// Makes a character device with /dev/zero's numbers (1:5) at `path`: reads of it never end.
fn mknod_zero(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o600),
        rustix::fs::makedev(1, 5),
    )
    .unwrap();
}

/// Guards: a character device (`/dev/zero`-like) at `<root>/dev/kmsg` was read forever. It
/// is refused as not the kernel log device (char 1:11), and the run finishes.
#[test]
fn a_zero_device_at_dev_kmsg_is_refused_as_not_the_kernel_log() {
    assert_root();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("proc")).unwrap();
    mknod_zero(&dir.path().join("dev/kmsg"));
    let out = node_doctor()
        .args([
            "check",
            "--only",
            "kernel-log",
            "--window",
            "0",
            "--format",
            "json",
        ])
        .arg("--root")
        .arg(dir.path())
        .timeout(QUICK)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "nothing else to check: {stderr}"
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reason = doc["unknown"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("not the kernel log device (char 1:11), found char device 1:5"),
        "{reason}"
    );
}

/// Guards: `logs --source file:X` with X a character device read it forever. It fails at
/// once (exit 2), saying the source is not a regular file.
#[test]
fn a_zero_device_as_a_log_file_fails_at_once() {
    assert_root();
    let dir = tempfile::tempdir().unwrap();
    mknod_zero(&dir.path().join("zero"));
    node_doctor()
        .args(["logs", "--source", "file:zero", "--root"])
        .arg(dir.path())
        .timeout(QUICK)
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no source could be read"))
        .stderr(predicates::str::contains("a character device"));
}

/// A host root at a temporary directory: the host's procfs bind-mounted at `<root>/proc`
/// (as `/host/proc` in a DaemonSet, so the mount table is the host's) and a dead FUSE
/// filesystem at `<root>/var/lib/kubelet`. On drop: the FUSE connection is aborted (which
/// frees every probe left blocked on it), everything is unmounted, and the directory is
/// removed only if nothing is mounted below it any more.
struct DeadKubeletRoot {
    fuse: Option<DeadFuse>,
    proc_: PathBuf,
    dir: Option<tempfile::TempDir>,
}

impl DeadKubeletRoot {
    fn new() -> DeadKubeletRoot {
        let dir = tempfile::tempdir().unwrap();
        let proc_ = dir.path().join("proc");
        let kubelet = dir.path().join("var/lib/kubelet");
        std::fs::create_dir(&proc_).unwrap();
        std::fs::create_dir_all(&kubelet).unwrap();
        let mut guard = DeadKubeletRoot {
            fuse: None,
            proc_,
            dir: Some(dir),
        };
        let bound = Command::new("mount")
            .args(["--bind", "/proc"])
            .arg(&guard.proc_)
            .status()
            .unwrap();
        assert!(bound.success(), "bind-mount /proc");
        guard.fuse = Some(DeadFuse::mount_at(&kubelet));
        guard
    }

    fn root(&self) -> &Path {
        self.dir.as_ref().unwrap().path()
    }

    fn abort(&self) {
        if let Some(f) = &self.fuse {
            f.abort();
        }
    }

    /// `node-doctor ARGS --root <this root>`, released if it hangs (see run_or_release).
    fn run(&self, args: &[&str]) -> std::process::Output {
        let mut all: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
        all.extend([std::ffi::OsStr::new("--root"), self.root().as_os_str()]);
        run_or_release(&all, &|| self.abort())
    }
}

/// Runs `node-doctor ARGS` and waits for it to exit, up to QUICK. A process that has not
/// exited by then may be unkillable (a thread in an uninterruptible FUSE wait): `release` is
/// called to abort what holds it, then it is killed and reaped, and the test fails — instead
/// of hanging in `kill` + `wait` as assert_cmd's timeout would.
fn run_or_release(args: &[&std::ffi::OsStr], release: &dyn Fn()) -> std::process::Output {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("node-doctor"))
        .args(args)
        .env_remove("NODE_DOCTOR_ROOT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let reader = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            v
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let end = Instant::now() + QUICK;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > end {
            release();
            let _ = child.kill();
            let _ = child.wait();
            panic!("node-doctor {args:?} did not exit within {QUICK:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    std::process::Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

impl Drop for DeadKubeletRoot {
    fn drop(&mut self) {
        drop(self.fuse.take());
        let _ = Command::new("umount").arg("-l").arg(&self.proc_).status();
        if let Some(dir) = self.dir.take() {
            let left = mounts_below(dir.path());
            if !left.is_empty() {
                // Removing the tree would walk into what is still mounted (the host's /proc).
                eprintln!(
                    "still mounted, not removing {}: {left:?}",
                    dir.path().display()
                );
                let _ = dir.keep();
            }
        }
    }
}

/// Probe processes (`node-doctor __probe ROOT ...`) alive for `root`, with their parent.
fn probe_processes(root: &Path) -> Vec<(i32, i32)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        if args.get(1) == Some(&&b"__probe"[..])
            && args.get(2) == Some(&root.as_os_str().as_encoded_bytes())
        {
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            let ppid = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.split(' ').nth(1)?.parse().ok())
                .unwrap_or(0);
            out.push((pid, ppid));
        }
    }
    out
}

fn unavailable_at<'a>(sample: &'a Value, path: &str) -> &'a Value {
    sample["unavailable"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["path"] == path)
        .unwrap_or_else(|| panic!("{path} unavailable: {sample:#}"))
}

/// Guards: `statvfs` of a dead FUSE mount at a watched path (/var/lib/kubelet) — the
/// classic `df` hang of a sick node. The probe is abandoned at its timeout and reported as
/// timed out; and the command exits: a probe thread stuck in `request_wait_answer` kept the
/// process from ever exiting after it printed its report, so probes run in a child process
/// that is left behind, blocked, instead. A second probe while the first is still blocked
/// reports "still blocked" instead of starting another.
#[test]
fn a_dead_fuse_mount_at_var_lib_kubelet_times_out_and_the_run_exits() {
    assert_root();
    let _g = serialize();
    let fault = DeadKubeletRoot::new();
    let root = fault.root().to_path_buf();

    // Exiting at all is the assertion (a hang fails after QUICK); no timing is asserted.
    let run = |args: &[&str]| fault.run(args);
    let out = run(&[
        "check",
        "--only",
        "disk-pressure",
        "--deadline",
        "5s",
        "--format",
        "json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "/ was measured, so the run checked something: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let unknown = doc["unknown"].to_string();
    assert!(
        unknown.contains("cannot measure /var/lib/kubelet: timed out"),
        "{doc:#}"
    );

    let out = run(&[
        "snapshot",
        "--only",
        "disk-pressure",
        "--deadline",
        "5s",
        "-o",
        "-",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let rec: Value = serde_json::from_slice(&out.stdout).unwrap();
    let u = unavailable_at(&rec["samples"][0], "var/lib/kubelet");
    assert_eq!(u["kind"], "timeout", "{u}");
    // The real fault: each run left its probe blocked on the dead server, not itself.
    let left = probe_processes(&root);
    assert_eq!(left.len(), 2, "{left:?}");
    for (pid, _) in &left {
        let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
        assert_eq!(wchan, "request_wait_answer", "probe {pid}");
    }

    // In process, twice, as an agent would: the second collection does not start another
    // probe while the first is blocked.
    let me = std::process::id() as i32;
    let ours = || {
        probe_processes(&root)
            .into_iter()
            .filter(|(_, ppid)| *ppid == me)
            .count()
    };
    let host = Host::open(&root)
        .unwrap()
        .probe_in_child(assert_cmd::cargo::cargo_bin("node-doctor"));
    let needs = Needs::of(&[checks::by_id("disk-pressure").unwrap()]);
    let kubelet = |s: &node_doctor_core::model::Snapshot| {
        s.unavailable
            .iter()
            .find(|u| u.path == "var/lib/kubelet")
            .cloned()
            .unwrap_or_else(|| panic!("kubelet unavailable: {:#?}", s.unavailable))
    };
    let first = collect(&host, &needs, Some(Instant::now() + Duration::from_secs(5)));
    let u = kubelet(&first);
    assert_eq!(u.kind, Kind::Timeout);
    assert!(u.reason.contains("statvfs did not return"), "{u}");
    assert_eq!(ours(), 1);
    let blocked = node_doctor_host::blocking::blocked_now();
    let second = collect(&host, &needs, Some(Instant::now() + Duration::from_secs(5)));
    let u = kubelet(&second);
    assert_eq!(u.kind, Kind::Timeout);
    assert!(u.reason.contains("still blocked"), "{u}");
    assert_eq!(ours(), 1, "no second probe process");
    // The same key holds for probes on a thread: none is started either.
    let in_thread = Host::open(&root).unwrap();
    let third = collect(
        &in_thread,
        &needs,
        Some(Instant::now() + Duration::from_secs(5)),
    );
    assert!(kubelet(&third).reason.contains("still blocked"));
    assert_eq!(node_doctor_host::blocking::blocked_now(), blocked);
    // The root filesystem was measured all along.
    for s in [&first, &second, &third] {
        assert!(
            s.filesystems
                .iter()
                .flatten()
                .any(|f| f.paths.contains(&"/".to_string())),
            "{:#?}",
            s.filesystems
        );
    }

    // Aborting the connection frees every blocked probe.
    drop(fault);
    assert!(
        wait_until(Duration::from_secs(10), || probe_processes(&root)
            .is_empty()),
        "probes still alive after the abort: {:?}",
        probe_processes(&root)
    );
    assert!(
        wait_until(Duration::from_secs(10), || {
            node_doctor_host::blocking::blocked_now() < blocked
        }),
        "the in-process probe's key is released once it answers"
    );
}

/// Guards: the kubelet's `--config` (kubeadm's `/var/lib/kubelet/config.yaml`) and
/// `--config-dir` under a dead FUSE mount were opened on the collecting thread, and
/// containerd's content store and `/var/log/pods` listed there: a whole `check` hung past
/// its deadline (the agent's collection never came back). Files below FUSE and network
/// mounts are not read; the snapshot says why, and every check finishes.
#[test]
fn a_kubelet_config_on_a_dead_fuse_mount_is_not_read_and_a_full_check_exits() {
    assert_root();
    let _g = serialize();
    let fault = DeadKubeletRoot::new();
    let root = fault.root().to_path_buf();
    // The last --config wins, as in the kubelet's own flag parsing.
    let kubelet = kubelet::FakeKubelet::start(
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n",
        &[
            "--config=/var/lib/kubelet/config.yaml",
            "--config-dir=/var/lib/kubelet/config.d",
        ],
    );
    let run = |args: &[&str]| fault.run(args);
    // Every check, as an SRE runs it: exiting is the assertion (no timing asserted).
    let out = run(&[
        "check",
        "--window",
        "0",
        "--deadline",
        "5s",
        "--format",
        "json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["findings"].is_array(), "{doc:#}");

    let out = run(&[
        "snapshot",
        "--only",
        "kubelet-config",
        "--only",
        "runtime-health",
        "--window",
        "0",
        "--deadline",
        "5s",
        "-o",
        "-",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rec: Value = serde_json::from_slice(&out.stdout).unwrap();
    let k = &rec["samples"][0]["kubelet"];
    assert_eq!(k["pid"], kubelet.pid(), "{k:#}");
    assert_eq!(k["config"]["path"], "/var/lib/kubelet/config.yaml", "{k:#}");
    assert!(k["config"]["text"].is_null(), "{k:#}");
    let err = k["config"]["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("fuse") && err.contains("/var/lib/kubelet"),
        "{k:#}"
    );
    let dir_err = k["drop_ins"][0]["error"].as_str().unwrap_or_default();
    assert!(dir_err.contains("fuse"), "{k:#}");

    drop(kubelet);
    drop(fault);
    assert!(
        wait_until(Duration::from_secs(10), || probe_processes(&root)
            .is_empty()),
        "probes still alive after the abort: {:?}",
        probe_processes(&root)
    );
}

/// Guards: a run as a user who cannot read other users' processes printed "0 findings" as if
/// it had seen everything. It says prominently how many processes it could not inspect; the
/// count is of other users' `fd/` directories refused with EACCES, not of its own.
#[test]
fn an_unprivileged_run_says_prominently_what_it_could_not_see() {
    assert_root();
    const UID: &str = "4242";
    let as_user = |args: &[&str]| {
        let out = assert_cmd::Command::new("setpriv")
            .args([
                &format!("--reuid={UID}"),
                &format!("--regid={UID}"),
                "--clear-groups",
            ])
            .arg(assert_cmd::cargo::cargo_bin("node-doctor"))
            .args(args)
            .env_remove("NODE_DOCTOR_ROOT")
            .timeout(Duration::from_secs(90))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!stderr.contains("panicked"), "{stderr}");
        (out.status.code(), out.stdout, stderr)
    };
    // One process of that user (its fds are readable to it) and one of root (they are not).
    let mut own = Command::new("setpriv")
        .args([
            &format!("--reuid={UID}"),
            &format!("--regid={UID}"),
            "--clear-groups",
        ])
        .args(["sleep", "300"])
        .spawn()
        .unwrap();
    let mut roots = Command::new("sleep").arg("300").spawn().unwrap();
    struct Kill<'a>(&'a mut std::process::Child, &'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            for c in [&mut *self.0, &mut *self.1] {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
    let (own_pid, root_pid) = (own.id() as i32, roots.id() as i32);
    let _kill = Kill(&mut own, &mut roots);
    assert!(wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(format!("/proc/{own_pid}/status"))
            .is_ok_and(|s| s.lines().any(|l| l.starts_with("Uid:") && l.contains(UID)))
    }));

    let note = format!("running as uid {UID}: ");
    let count_in = |line: &str| -> u64 {
        let rest = &line[line.find(&note).unwrap() + note.len()..];
        let (n, tail) = rest.split_once(' ').unwrap();
        assert!(
            tail.starts_with("processes of other users not inspected"),
            "{line}"
        );
        n.parse().unwrap()
    };

    // Human: right under the header, before any finding.
    let (code, stdout, stderr) = as_user(&["check", "--window", "0"]);
    assert!(matches!(code, Some(0 | 1)), "{stderr}");
    let text = String::from_utf8(stdout).unwrap();
    let second = text.lines().nth(1).unwrap_or_default();
    assert!(
        second.starts_with("PARTIAL: ") && second.contains(&note),
        "{text}"
    );
    assert!(count_in(second) > 0, "{second}");

    // JSON: in coverage.notes.
    let (_, stdout, _) = as_user(&["check", "--window", "0", "--format", "json"]);
    let doc: Value = serde_json::from_slice(&stdout).unwrap();
    assert_eq!(doc["coverage"]["complete"], false);
    let notes: Vec<&str> = doc["coverage"]["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .filter(|n| n.contains(&note))
        .collect();
    assert_eq!(notes.len(), 1, "{:#}", doc["coverage"]);
    assert!(count_in(notes[0]) > 0);

    // The count is exactly the processes of other users whose fd/ was refused.
    let (code, stdout, _) = as_user(&["snapshot", "--window", "0", "--only", "fd-leak", "-o", "-"]);
    assert_eq!(code, Some(0));
    let rec: Value = serde_json::from_slice(&stdout).unwrap();
    let s = &rec["samples"][0];
    let processes = s["processes"].as_array().unwrap();
    let find = |pid: i32| processes.iter().find(|p| p["pid"] == pid).unwrap();
    assert!(find(own_pid)["open_fds"].as_u64().is_some_and(|n| n >= 3));
    assert!(find(root_pid)["open_fds"].is_null(), "{}", find(root_pid));
    let others = processes
        .iter()
        .filter(|p| p["euid"] != UID.parse::<u64>().unwrap() && p["state"] != "Z")
        .count() as u64;
    assert_eq!(s["process_scan"]["fds_denied"].as_u64(), Some(others));
    assert!(others > 0);
}
