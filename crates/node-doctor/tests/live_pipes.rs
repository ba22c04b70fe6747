//! Live tests of the pipe scan, pipe-quota and runc-init-hang, as root: the per-user pipe
//! quota really shrinks pipes (fs.pipe-user-pages-soft lowered, restored on drop), a process
//! really blocks writing into an 8 KiB pipe, and another process's pipe is sized without
//! disturbing the pair using it.

#![cfg(feature = "live")]

mod common;
use common::faults::*;
use common::*;
use std::process::Command;
use std::time::Duration;

/// The soft limit the tests lower to: three full pipes (16 pages each) fill it.
const SOFT: &str = "48";

/// As `uid`, create pipes until three come out shrunk, hold them all. Prints
/// "shrunk TOTAL SIZE".
const SHRINK_AS: &str = r#"
import fcntl, os, sys
F_GETPIPE_SZ = 1032
uid = int(sys.argv[1])
os.setgid(uid)
os.setuid(uid)
pipes, shrunk = [], 0
while shrunk < 3:
    r, w = os.pipe()
    pipes.append((r, w))
    if fcntl.fcntl(w, F_GETPIPE_SZ) < 65536:
        shrunk += 1
    if len(pipes) > 1000:
        sys.exit("pipes never shrank")
print("shrunk", len(pipes), fcntl.fcntl(pipes[-1][1], F_GETPIPE_SZ), flush=True)
sys.stdin.readline()
"#;

#[test]
fn a_uid_over_the_soft_limit_gets_shrunk_pipes_and_is_named() {
    assert_root();
    let _g = serialize();
    let _soft = SysctlGuard::set("fs.pipe-user-pages-soft", SOFT);
    let mut holder = Helper::spawn(Command::new(python3()).args(["-c", SHRINK_AS, "4242"]));
    let line = holder.expect("shrunk");
    assert_eq!(
        line, "shrunk 6 8192",
        "4 KiB pages: shrunk pipes are 2 pages"
    );

    let (code, doc) = check_json(&["--only", "pipe-quota", "--window", "0"]);
    assert_eq!(code, 1, "{doc:#}");
    let f: Vec<_> = findings_of(&doc, "pipe-quota")
        .into_iter()
        .filter(|f| f["subjects"][0]["uid"] == 4242)
        .collect();
    assert_eq!(f.len(), 1, "{doc:#}");
    let f = f[0];
    assert_eq!(f["severity"], "critical");
    assert_eq!(f["subjects"][0]["kind"], "user");
    assert!(
        f["subjects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["pid"] == holder.pid()),
        "the holder is named: {f:#}"
    );
    let summary = f["summary"].as_str().unwrap();
    // 3 full pipes (48 pages) + 3 shrunk (2 pages each) = 54 pages.
    assert!(
        summary.contains("uid 4242 holds 54 pipe pages in 6 pipes"),
        "{summary}"
    );
    assert!(
        summary.contains("112.5% of fs.pipe-user-pages-soft 48"),
        "{summary}"
    );
    assert!(
        summary.contains("3 pipes already shrunk to 8192 bytes"),
        "{summary}"
    );
    let ev = f["evidence"].to_string();
    assert!(ev.contains("8192 bytes (2 pages)"), "{ev}");
    assert!(ev.contains(&format!("held by {} (", holder.pid())), "{ev}");
    assert!(
        ev.contains("not counted"),
        "the estimate says what it misses: {ev}"
    );
    holder.say("done");
}

/// A writer child streams numbered records into a pipe; the parent reads and checks every
/// one. "ok N" at the end means nothing was lost, duplicated or reordered.
const PAIR: &str = r#"
import os, select, sys, time
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    i = 0
    try:
        while True:
            os.write(w, b"%08d\n" % i)
            i += 1
            if i % 64 == 0:
                time.sleep(0.0005)
    except BrokenPipeError:
        os._exit(0)
os.close(w)
print("ready", pid, flush=True)
expected, buf = 0, b""
while True:
    ready, _, _ = select.select([r, 0], [], [])
    if 0 in ready:
        break
    buf += os.read(r, 65536)
    while len(buf) >= 9:
        rec, buf = buf[:9], buf[9:]
        if int(rec) != expected:
            print("gap at", expected, rec, flush=True)
            sys.exit(1)
        expected += 1
print("ok", expected, flush=True)
os.close(r)
os.waitpid(pid, 0)
"#;

#[test]
fn sizing_another_process_pipe_leaves_the_pair_working() {
    assert_root();
    let mut pair = Helper::python(PAIR);
    let ready = pair.expect("ready");
    let writer: i32 = ready.split_whitespace().nth(1).unwrap().parse().unwrap();
    let reader = pair.pid();
    for _ in 0..5 {
        let s = snapshot_of("/");
        let scan = s.pipes.as_ref().expect("pipes scanned");
        assert_eq!(scan.sizing, node_doctor_core::model::Sizing::Pidfd);
        let p = scan
            .pipes
            .iter()
            .find(|p| {
                p.holders.iter().any(|h| h.pid == writer)
                    && p.holders.iter().any(|h| h.pid == reader)
            })
            .expect("the pair's pipe, held by both");
        assert_eq!(p.size_bytes, Some(65536));
        assert_eq!(p.owner_uid, Some(0));
        assert!(p.buffered_bytes.is_some_and(|b| b <= 65536));
    }
    pair.say("stop");
    let done = pair.expect("ok");
    let records: u64 = done.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(records > 0, "{done}");
}

/// As `uid`: fill the quota with three full pipes, then make the "bootstrap" pipe (shrunk),
/// rename itself `runc:[2:INIT]` and write 16 KiB into it in one go — the write blocks.
const RUNC_INIT: &str = r#"
import ctypes, fcntl, os, sys
F_GETPIPE_SZ, PR_SET_NAME = 1032, 15
uid = int(sys.argv[1])
os.setgid(uid)
os.setuid(uid)
held = [os.pipe() for _ in range(3)]
r, w = os.pipe()
size = fcntl.fcntl(w, F_GETPIPE_SZ)
ctypes.CDLL(None).prctl(PR_SET_NAME, b"runc:[2:INIT]", 0, 0, 0)
print("blocking", size, r, w, flush=True)
os.write(w, b"x" * 16384)
print("never", flush=True)
"#;

#[test]
fn a_runc_init_blocked_on_a_shrunk_pipe_is_critical() {
    assert_root();
    let _g = serialize();
    let _soft = SysctlGuard::set("fs.pipe-user-pages-soft", SOFT);
    let mut init = Helper::spawn(Command::new(python3()).args(["-c", RUNC_INIT, "4243"]));
    let line = init.expect("blocking");
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f[1], "8192", "{line}");
    let (rfd, wfd) = (f[2], f[3]);
    let pid = init.pid();
    assert!(wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(format!("/proc/{pid}/wchan"))
            .is_ok_and(|w| w.contains("pipe_write"))
    }));
    // Old enough for a 1 s threshold (ages are whole seconds since boot).
    std::thread::sleep(Duration::from_millis(2100));

    let (code, doc) = check_json(&[
        "--only",
        "runc-init-hang",
        "--only",
        "pipe-quota",
        "--window",
        "0",
        "--runc-init-threshold",
        "1s",
    ]);
    assert_eq!(code, 1, "{doc:#}");
    let hang = findings_naming(&doc, "runc-init-hang", pid);
    assert_eq!(hang.len(), 1, "{doc:#}");
    let h = hang[0];
    assert_eq!(h["severity"], "critical");
    assert_eq!(h["subjects"][0]["comm"], "runc:[2:INIT]");
    let summary = h["summary"].as_str().unwrap();
    assert!(
        summary.contains("holds a shrunk 8192-byte pipe"),
        "{summary}"
    );
    assert!(summary.contains(&format!("fd {rfd},{wfd}")), "{summary}");
    assert!(summary.contains("blocked writing"), "{summary}");
    let ev = h["evidence"].to_string();
    assert!(
        ev.contains("8192 bytes, 8192 buffered"),
        "the pipe is full: {ev}"
    );
    assert!(ev.contains("pipe_write"), "{ev}");
    assert!(ev.contains("runc version"), "{ev}");
    // The quota check blames the same account.
    let q = findings_naming(&doc, "pipe-quota", pid);
    assert_eq!(q.len(), 1, "{doc:#}");
    assert_eq!(q[0]["subjects"][0]["uid"], 4243);

    // Under the default 30 s threshold it is not reported yet.
    let (_, doc) = check_json(&["--only", "runc-init-hang", "--window", "0"]);
    assert!(
        findings_naming(&doc, "runc-init-hang", pid).is_empty(),
        "{doc:#}"
    );
}
