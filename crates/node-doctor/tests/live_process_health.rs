//! Live tests of the process-health checks (zombies, pids cgroups, fd leaks, D state, stuck
//! container stops), as root. Each creates the real fault with real processes, cgroups and a
//! real FUSE mount, runs the real binary, asserts the finding names the right pid /
//! container, and undoes the fault through guards that also run when an assertion fails.

#![cfg(feature = "live")]

mod common;
use common::faults::*;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn only(check: &str, window: &str) -> (i32, Value) {
    check_json(&["--only", check, "--window", window])
}

const ZOMBIE_PARENT: &str = r#"
import os, sys, time
n, more = int(sys.argv[1]), int(sys.argv[2])
kids = []
def spawn():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    kids.append(pid)
def state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(") ", 1)[1][0]
for _ in range(n):
    spawn()
while any(state(k) != "Z" for k in kids):
    time.sleep(0.01)
print("ready", flush=True)
for _ in range(more):            # keep making zombies: a growing leak
    spawn()
    time.sleep(0.01)
sys.stdin.readline()
for k in kids:
    os.waitpid(k, 0)
print("reaped", flush=True)
sys.stdin.readline()
"#;

#[test]
fn a_parent_with_30_unreaped_children_is_named_until_it_reaps() {
    assert_root();
    let mut parent = Helper::spawn(Command::new(python3()).args(["-c", ZOMBIE_PARENT, "30", "0"]));
    parent.expect("ready");
    let pid = parent.pid();

    let (code, doc) = only("zombie-processes", "200ms");
    assert_eq!(code, 1, "{doc:#}");
    let found = findings_naming(&doc, "zombie-processes", pid);
    assert_eq!(found.len(), 1, "{doc:#}");
    let f = found[0];
    assert_eq!(f["severity"], "warning");
    let summary = f["summary"].as_str().unwrap();
    assert!(summary.contains(&format!("{pid} (python3)")), "{summary}");
    assert!(summary.contains("30 unreaped zombie children"), "{summary}");
    assert!(summary.contains("steady"), "{summary}");
    assert_eq!(f["subjects"][0]["kind"], "process");
    assert!(f["remedy"].as_str().unwrap().contains("tini"));

    parent.say("reap");
    parent.expect("reaped");
    let (_, doc) = only("zombie-processes", "0");
    assert!(
        findings_naming(&doc, "zombie-processes", pid).is_empty(),
        "{doc:#}"
    );
}

#[test]
fn zombies_that_keep_coming_are_reported_as_growing() {
    assert_root();
    let mut parent =
        Helper::spawn(Command::new(python3()).args(["-c", ZOMBIE_PARENT, "20", "300"]));
    parent.expect("ready");
    let (_, doc) = only("zombie-processes", "500ms");
    let found = findings_naming(&doc, "zombie-processes", parent.pid());
    assert_eq!(found.len(), 1, "{doc:#}");
    let summary = found[0]["summary"].as_str().unwrap();
    assert!(summary.contains("growing (+"), "{summary}");
    let ev = found[0]["evidence"].to_string();
    assert!(ev.contains("earlier sample"), "{ev}");
}

const FORK_UNTIL_EAGAIN: &str = r#"
import os, sys, time
sys.stdin.readline()             # wait to be moved into the cgroup
kids = []
try:
    while True:
        pid = os.fork()
        if pid == 0:
            time.sleep(600)
            os._exit(0)
        kids.append(pid)
except BlockingIOError as e:
    print("eagain", len(kids), e.errno, flush=True)
sys.stdin.readline()
for k in kids:
    os.kill(k, 9)
    os.waitpid(k, 0)
"#;

#[test]
fn a_pod_at_its_pids_max_is_named_with_its_container() {
    assert_root();
    let (rel, pod, id) = container_shaped("pids");
    let cg = make_cgroup(&pids_mount(), &rel);
    std::fs::write(cg.leaf().join("pids.max"), "5").unwrap();
    let mut forker = Helper::python(FORK_UNTIL_EAGAIN);
    cg.add(forker.child.id());
    forker.say("go");
    let line = forker.expect("eagain");
    assert!(line.ends_with(" 11"), "fork failed with EAGAIN: {line}");

    let (code, doc) = only("pid-exhaustion", "200ms");
    assert_eq!(code, 1, "{doc:#}");
    let found: Vec<_> = findings_of(&doc, "pid-exhaustion")
        .into_iter()
        .filter(|f| f["subjects"][0]["container_id"] == id.as_str())
        .collect();
    assert_eq!(found.len(), 1, "{doc:#}");
    let f = found[0];
    assert_eq!(f["severity"], "critical");
    assert_eq!(f["subjects"][0]["kind"], "container");
    assert_eq!(f["subjects"][0]["pod"], pod.as_str());
    assert_eq!(f["subjects"][0]["path"], format!("/{rel}"));
    // The top process by threads is one of the cgroup's members.
    assert!(f["subjects"][1]["pid"].as_i64().is_some(), "{f:#}");
    let summary = f["summary"].as_str().unwrap();
    assert!(summary.contains("uses 5 of pids.max 5"), "{summary}");
    assert!(summary.contains("forks refused"), "{summary}");
    let cause = f["cause"].as_str().unwrap();
    assert!(cause.contains("fork rejected by pids controller"));
    assert!(cause.contains("pthread_create failed"));
    let ev = f["evidence"].to_string();
    assert!(ev.contains("pids.events"), "{ev}");

    // One more refused fork during the window reads as "refusing now".
    let (_, doc) = check_json(&["--only", "pid-exhaustion", "--window", "0"]);
    assert!(
        findings_of(&doc, "pid-exhaustion")
            .iter()
            .any(|f| f["subjects"][0]["container_id"] == id.as_str()),
        "{doc:#}"
    );
    forker.say("done");
}

const FD_HOLDER: &str = r#"
import os, resource, sys, time
soft, target, grow = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "grow"
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, soft))
fds = []
def count():
    return len(os.listdir("/proc/self/fd")) - 1  # listdir's own fd
while count() < target:
    fds.append(os.open("/dev/null", os.O_RDONLY))
print("ready", count(), flush=True)
while grow and len(fds) < soft - 64:
    fds.append(os.open("/dev/null", os.O_RDONLY))
    time.sleep(0.002)
sys.stdin.readline()
"#;

fn fd_holder(soft: u32, target: u32, grow: bool) -> Helper {
    let mut h = Helper::spawn(Command::new(python3()).args([
        "-c",
        FD_HOLDER,
        &soft.to_string(),
        &target.to_string(),
        if grow { "grow" } else { "hold" },
    ]));
    h.expect("ready");
    h
}

#[test]
fn a_process_near_its_nofile_limit_is_named() {
    assert_root();
    let near = fd_holder(256, 250, false);
    let over_80 = fd_holder(256, 210, false);
    let (code, doc) = only("fd-leak", "0");
    assert_eq!(code, 1, "{doc:#}");

    let f = findings_naming(&doc, "fd-leak", near.pid());
    assert_eq!(f.len(), 1, "{doc:#}");
    // 250 of 256 is 97.7 %: past the critical band.
    assert_eq!(f[0]["severity"], "critical");
    let summary = f[0]["summary"].as_str().unwrap();
    assert!(
        summary.contains("holds 250 fds of its limit 256"),
        "{summary}"
    );
    assert!(
        f[0]["evidence"]
            .to_string()
            .contains(&format!("/proc/{}/limits", near.pid()))
    );

    let f = findings_naming(&doc, "fd-leak", over_80.pid());
    assert_eq!(f.len(), 1, "{doc:#}");
    assert_eq!(f[0]["severity"], "warning");
    assert!(f[0]["summary"].as_str().unwrap().contains("holds 210 fds"));
}

#[test]
fn a_process_whose_fds_keep_growing_is_reported_as_growing() {
    assert_root();
    let grower = fd_holder(8192, 16, true);
    let steady = fd_holder(8192, 300, false);
    // Half a second is no trend: by default growth needs two minutes of samples.
    let (_, doc) = only("fd-leak", "500ms");
    assert!(
        findings_naming(&doc, "fd-leak", grower.pid()).is_empty(),
        "{doc:#}"
    );
    let (_, doc) = check_json(&[
        "--only",
        "fd-leak",
        "--window",
        "500ms",
        "--set",
        "fd-leak.growth_window=400ms",
    ]);
    let f = findings_naming(&doc, "fd-leak", grower.pid());
    assert_eq!(f.len(), 1, "{doc:#}");
    let summary = f[0]["summary"].as_str().unwrap();
    assert!(summary.contains("growing:"), "{summary}");
    assert!(f[0]["evidence"].to_string().contains("→"));
    // Many fds, far from its limit, not growing: not a finding.
    assert!(
        findings_naming(&doc, "fd-leak", steady.pid()).is_empty(),
        "{doc:#}"
    );
}

/// `sh -c 'echo $$ > CGROUP/cgroup.procs; exec PROGRAM ARGS'`: the program starts inside
/// the cgroup, before it does anything.
fn spawn_in_cgroup(cgroup: &Path, program: &str, args: &[&str]) -> std::process::Child {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"echo $$ > "$0/cgroup.procs" && exec "$@""#)
        .arg(cgroup)
        .arg(program)
        .args(args);
    cmd.spawn().unwrap()
}

#[test]
fn a_frozen_container_process_with_sigkill_pending_is_stuck_until_thawed() {
    assert_root();
    let _g = serialize();
    let Some(freezer) = freezer_mount() else {
        panic!("this machine kind has the v1 freezer; it is missing");
    };
    let (rel, pod, id) = container_shaped("freezer");
    let mut cg = make_cgroup(&freezer, &rel);
    let child = spawn_in_cgroup(cg.leaf(), "sleep", &["600"]);
    let pid = child.id() as i32;
    cg.children.push(child);
    assert!(wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
    }));
    std::fs::write(cg.leaf().join("freezer.state"), "FROZEN").unwrap();
    assert!(wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(cg.leaf().join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
    }));
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    assert!(wait_until(Duration::from_secs(5), || proc_state(pid) == Some('D')));

    let (code, doc) = check_json(&[
        "--only",
        "d-state-processes",
        "--only",
        "stuck-container-stop",
        "--window",
        "300ms",
    ]);
    assert_eq!(code, 1, "{doc:#}");
    let d = findings_naming(&doc, "d-state-processes", pid);
    assert_eq!(d.len(), 1, "{doc:#}");
    assert_eq!(
        d[0]["severity"], "critical",
        "SIGKILL pending makes it critical"
    );
    let summary = d[0]["summary"].as_str().unwrap();
    assert!(summary.contains("SIGKILL pending"), "{summary}");
    assert!(
        summary.contains(&format!("container {}", &id[..12])),
        "{summary}"
    );
    let ev = d[0]["evidence"].to_string();
    assert!(ev.contains("consecutive samples"), "{ev}");
    assert!(ev.contains(&format!("/proc/{pid}/wchan")), "{ev}");

    let s = findings_naming(&doc, "stuck-container-stop", pid);
    assert_eq!(s.len(), 1, "{doc:#}");
    assert_eq!(s[0]["severity"], "critical");
    assert_eq!(s[0]["subjects"][0]["kind"], "container");
    assert_eq!(s[0]["subjects"][0]["container_id"], id.as_str());
    assert_eq!(s[0]["subjects"][0]["pod"], pod.as_str());

    // Thaw: the pending SIGKILL is delivered, the process dies, the findings clear.
    std::fs::write(cg.leaf().join("freezer.state"), "THAWED").unwrap();
    let mut child = cg.children.pop().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    let (_, doc) = check_json(&[
        "--only",
        "d-state-processes",
        "--only",
        "stuck-container-stop",
        "--window",
        "100ms",
    ]);
    assert!(findings_naming(&doc, "d-state-processes", pid).is_empty());
    assert!(findings_naming(&doc, "stuck-container-stop", pid).is_empty());
}

/// A dead FUSE mount (common/faults.rs) in a temporary directory of its own.
struct TempFuse {
    _fuse: DeadFuse,
    mnt: PathBuf,
    _dir: tempfile::TempDir,
}

impl TempFuse {
    fn mount() -> TempFuse {
        let dir = tempfile::tempdir().unwrap();
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        TempFuse {
            _fuse: DeadFuse::mount_at(&mnt),
            mnt,
            _dir: dir,
        }
    }
}

#[test]
fn a_killed_reader_stuck_on_dead_fuse_is_found_and_check_still_finishes() {
    assert_root();
    let _g = serialize();
    let fuse = TempFuse::mount();
    let (rel, _pod, id) = container_shaped("fuse");
    let mut cg = make_cgroup(&pids_mount(), &rel);
    let target = fuse.mnt.join("anything");
    let reader = spawn_in_cgroup(cg.leaf(), "stat", &[target.to_str().unwrap()]);
    let pid = reader.id() as i32;
    cg.children.push(reader);
    assert!(wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(format!("/proc/{pid}/wchan"))
            .is_ok_and(|w| w == "request_wait_answer")
    }));
    // The runtime's stop: SIGKILL. The request is already with the (dead) daemon, so the
    // reader now waits uninterruptibly with the signal pending.
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    assert!(wait_until(Duration::from_secs(5), || proc_state(pid) == Some('D')));

    // The whole check, every check, with a deadline: it must come back (the scan never
    // reads what a stuck process could block), and name the reader.
    let out = node_doctor()
        .args([
            "check",
            "--format",
            "json",
            "--window",
            "300ms",
            "--deadline",
            "10s",
        ])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = findings_naming(&doc, "d-state-processes", pid);
    assert_eq!(d.len(), 1, "{doc:#}");
    assert!(
        d[0]["summary"]
            .as_str()
            .unwrap()
            .contains("wchan request_wait_answer")
    );
    let ev = d[0]["evidence"].to_string();
    assert!(
        ev.contains("fuse"),
        "the kernel stack shows the FUSE wait: {ev}"
    );
    let s = findings_naming(&doc, "stuck-container-stop", pid);
    assert_eq!(s.len(), 1, "{doc:#}");
    assert_eq!(s[0]["subjects"][0]["container_id"], id.as_str());
    assert!(
        s[0]["remedy"]
            .as_str()
            .unwrap()
            .contains("fuse/connections")
    );

    // Abort the connection (the daemon dies): the reader gets its SIGKILL and goes.
    drop(fuse);
    let mut reader = cg.children.pop().unwrap();
    reader.wait().unwrap();
    let (_, doc) = only("d-state-processes", "100ms");
    assert!(findings_naming(&doc, "d-state-processes", pid).is_empty());
}

#[test]
fn one_sample_cannot_judge_d_state_and_says_so() {
    assert_root();
    let _g = serialize();
    let fuse = TempFuse::mount();
    let mut reader = Command::new("stat")
        .arg(fuse.mnt.join("x"))
        .spawn()
        .unwrap();
    let pid = reader.id() as i32;
    let waiting = wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(format!("/proc/{pid}/wchan"))
            .is_ok_and(|w| w == "request_wait_answer")
    });
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::KILL,
    )
    .ok();
    let stuck = wait_until(Duration::from_secs(5), || proc_state(pid) == Some('D'));
    let (_, doc) = only("d-state-processes", "0");
    drop(fuse);
    let _ = reader.wait();
    assert!(waiting && stuck);
    assert!(findings_of(&doc, "d-state-processes").is_empty(), "{doc:#}");
    let unknown = doc["unknown"].to_string();
    assert!(unknown.contains(&format!("{pid} (stat)")), "{unknown}");
    assert!(unknown.contains("--window"), "{unknown}");
}
