//! The process table: one pass over `/proc/<pid>/` under the host root.
//!
//! Safe on a sick node: `stat`, `status`, `cgroup`, `limits` and the `fd` directory are read
//! for every process, `wchan` and `stack` for D-state ones. These take no lock of the
//! target's address space. `cmdline`, `environ`, `maps` and `smaps` do (`mmap_lock`, through
//! `access_remote_vm`), and a process stuck in D state while holding it makes the reader hang
//! in turn — so the only such read is `cmdline` of a process named `runc` that is not in D
//! state (to recognise `runc init`); nothing else opens them.
//! A process that exits between `readdir` and a read is normal and counted as vanished.

use super::per_pid::for_each_pid;
use super::{HostRoot, Unavailable, parse_with};
use crate::cgroup_path::{CgroupOwner, parse_cgroup_path};
use procfs_core::FromBufRead;
use procfs_core::FromRead;
use procfs_core::process::{LimitValue, Limits, Stat, Status};
use serde::{Deserialize, Serialize};
use std::io;
use std::time::Instant;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Process {
    pub pid: i32,
    pub ppid: i32,
    /// The kernel's `comm` (at most 15 bytes, may contain spaces, parentheses, newlines).
    pub comm: String,
    /// One-letter state from `/proc/PID/stat`: R, S, D, Z, T, t, X, I, P.
    pub state: char,
    /// Start time in clock ticks since boot (`stat` field 22).
    pub start_time_ticks: u64,
    pub uid: u32,
    pub euid: u32,
    pub threads: u64,
    /// Effective capabilities bitmask (`CapEff`).
    pub cap_eff: u64,
    /// Pending signals of the thread (`SigPnd`) and of the whole process (`ShdPnd`).
    pub sig_pending: u64,
    pub shared_sig_pending: u64,
    pub cgroups: Vec<CgroupMembership>,
    #[serde(flatten)]
    pub owner: CgroupOwner,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rlimit_nofile: Option<Rlimit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rlimit_core: Option<Rlimit>,
    /// Entries in `/proc/PID/fd`; absent when the directory could not be listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_fds: Option<u64>,
    /// The pid inside the process's own PID namespace (last `NSpid` entry): 1 for a
    /// container's init.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ns_pid: Option<i32>,
    /// Where a blocked process sleeps in the kernel (`/proc/PID/wchan`), read only for
    /// processes in D state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wchan: Option<String>,
    /// The kernel stack (`/proc/PID/stack`, root only), read only for processes in D state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_stack: Option<Vec<String>>,
    /// The executable's path (`/proc/PID/exe`), read only for runc processes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    /// The first arguments, read only for a process named `runc` that is not in D state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<Vec<String>>,
}

impl Process {
    /// Same process in two samples: pids are reused, start times are not.
    pub fn same_as(&self, other: &Process) -> bool {
        self.pid == other.pid && self.start_time_ticks == other.start_time_ticks
    }

    /// SIGKILL (signal 9, bit 8 of the pending masks) is queued but not yet acted on: the
    /// process is in an uninterruptible sleep that does not check for fatal signals.
    pub fn sigkill_pending(&self) -> bool {
        const SIGKILL_BIT: u64 = 1 << 8;
        (self.sig_pending | self.shared_sig_pending) & SIGKILL_BIT != 0
    }

    /// Uninterruptible sleep (includes TASK_KILLABLE waits, which also show as D).
    pub fn in_d_state(&self) -> bool {
        self.state == 'D'
    }

    /// The cgroup path of this process in the hierarchy that holds `controller`
    /// (a v1 hierarchy listing it, else the v2 path).
    pub fn cgroup_path_for(&self, controller: &str) -> Option<&str> {
        self.cgroups
            .iter()
            .find(|c| c.hierarchy != 0 && c.controllers.split(',').any(|n| n == controller))
            .or_else(|| self.cgroups.iter().find(|c| c.hierarchy == 0))
            .map(|c| c.path.as_str())
    }
}

/// One line of `/proc/PID/cgroup`: hierarchy id (0 for v2), controllers, path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupMembership {
    pub hierarchy: u32,
    /// Comma-separated v1 controllers ("pids", "cpu,cpuacct", "name=systemd"); empty for v2.
    pub controllers: String,
    pub path: String,
}

/// A resource limit; `None` means unlimited (RLIM_INFINITY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

/// How the scan went: how many processes were listed, read, vanished, or left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScanReport {
    pub listed: u64,
    pub read: u64,
    /// Exited between `readdir` and a read of their files: normal churn.
    pub vanished: u64,
    /// Not read because the scan's deadline passed first.
    pub skipped_for_deadline: u64,
    /// Per-process files that could not be read (capped; see `problems_not_kept`).
    pub problems: Vec<Unavailable>,
    pub problems_not_kept: u64,
}

const MAX_PROBLEMS_KEPT: usize = 50;

impl ScanReport {
    fn problem(&mut self, u: Unavailable) {
        if self.problems.len() < MAX_PROBLEMS_KEPT {
            self.problems.push(u);
        } else {
            self.problems_not_kept += 1;
        }
    }
}

/// Lists the numeric entries of `proc/` (processes, not threads).
pub fn list_pids(host: &HostRoot) -> Result<Vec<i32>, Unavailable> {
    let dir = std::fs::read_dir(host.path("proc")).map_err(|e| Unavailable::io("proc", &e))?;
    let mut pids: Vec<i32> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// Reads every process, on a few worker threads with the deadline (see [`super::per_pid`]):
/// a read blocked in the kernel leaves its process out instead of hanging the run.
pub fn scan(host: &HostRoot, deadline: Option<Instant>) -> (Vec<Process>, ScanReport) {
    let mut report = ScanReport::default();
    let pids = match list_pids(host) {
        Ok(p) => p,
        Err(u) => {
            report.problem(u);
            return (Vec::new(), report);
        }
    };
    report.listed = pids.len() as u64;
    let reader = host.clone();
    let run = for_each_pid(pids, deadline, move |pid| {
        let mut r = ScanReport::default();
        let p = read_process(&reader, pid, &mut r).map(Box::new);
        Some((p, r.problems))
    });
    let mut processes = Vec::with_capacity(run.results.len());
    for (p, problems) in run.results {
        for u in problems {
            report.problem(u);
        }
        match p {
            Some(p) => {
                report.read += 1;
                processes.push(*p);
            }
            None => report.vanished += 1,
        }
    }
    report.skipped_for_deadline = run.skipped_for_deadline;
    for reason in run.spawn_errors {
        report.problem(Unavailable {
            path: "proc".into(),
            reason,
        });
    }
    for pid in run.blocked {
        report.problem(Unavailable {
            path: format!("proc/{pid}"),
            reason: "read still blocked at the scan deadline (process left out)".into(),
        });
    }
    processes.sort_unstable_by_key(|p| p.pid);
    (processes, report)
}

/// Why a per-process read failed: the process is gone, or the file is bad.
enum ReadError {
    Vanished,
    Bad(Unavailable),
}

fn vanished(e: &io::Error) -> bool {
    // ENOENT: the /proc/PID directory is gone. ESRCH: the task died while the file was read.
    matches!(e.kind(), io::ErrorKind::NotFound)
        || e.raw_os_error() == Some(rustix::io::Errno::SRCH.raw_os_error())
}

fn read_file(host: &HostRoot, rel: &str) -> Result<Vec<u8>, ReadError> {
    super::read_capped(&host.path(rel), 1 << 20).map_err(|e| {
        if vanished(&e) {
            ReadError::Vanished
        } else {
            ReadError::Bad(Unavailable::io(rel, &e))
        }
    })
}

/// Reads one process, or `None` when it vanished (or its `stat` is unusable, which is
/// recorded as a problem). Optional files that fail leave their field empty.
pub fn read_process(host: &HostRoot, pid: i32, report: &mut ScanReport) -> Option<Process> {
    let stat_rel = format!("proc/{pid}/stat");
    let stat = match read_file(host, &stat_rel) {
        Ok(b) => match parse_with(&stat_rel, &b, |b| Stat::from_read(b)) {
            Ok(s) => s,
            Err(u) => {
                report.problem(u);
                return None;
            }
        },
        Err(ReadError::Vanished) => return None,
        Err(ReadError::Bad(u)) => {
            report.problem(u);
            return None;
        }
    };

    let mut p = Process {
        pid,
        ppid: stat.ppid,
        comm: stat.comm.clone(),
        state: stat.state,
        start_time_ticks: stat.starttime,
        uid: 0,
        euid: 0,
        threads: stat.num_threads.max(0) as u64,
        cap_eff: 0,
        sig_pending: 0,
        shared_sig_pending: 0,
        cgroups: Vec::new(),
        owner: CgroupOwner::default(),
        rlimit_nofile: None,
        rlimit_core: None,
        open_fds: None,
        ns_pid: None,
        wchan: None,
        kernel_stack: None,
        exe: None,
        cmdline: None,
    };

    let status_rel = format!("proc/{pid}/status");
    match read_file(host, &status_rel).and_then(|b| {
        parse_with(&status_rel, &b, |b| Status::from_buf_read(b)).map_err(ReadError::Bad)
    }) {
        Ok(s) => {
            p.uid = s.ruid;
            p.euid = s.euid;
            p.threads = s.threads;
            p.cap_eff = s.capeff;
            p.sig_pending = s.sigpnd;
            p.shared_sig_pending = s.shdpnd;
            p.ns_pid = s.nspid.as_ref().and_then(|v| v.last().copied());
        }
        Err(ReadError::Vanished) => return None,
        Err(ReadError::Bad(u)) => report.problem(u),
    }

    let cgroup_rel = format!("proc/{pid}/cgroup");
    match read_file(host, &cgroup_rel) {
        Ok(b) => {
            p.cgroups = parse_proc_cgroup(&String::from_utf8_lossy(&b));
            p.owner = owner_of(&p.cgroups);
        }
        Err(ReadError::Vanished) => return None,
        Err(ReadError::Bad(u)) => report.problem(u),
    }

    let limits_rel = format!("proc/{pid}/limits");
    match read_file(host, &limits_rel).and_then(|b| {
        parse_with(&limits_rel, &b, |b| Limits::from_buf_read(b)).map_err(ReadError::Bad)
    }) {
        Ok(l) => {
            p.rlimit_nofile = Some(rlimit(&l.max_open_files));
            p.rlimit_core = Some(rlimit(&l.max_core_file_size));
        }
        Err(ReadError::Vanished) => return None,
        Err(ReadError::Bad(u)) => report.problem(u),
    }

    // Zombies have no files left; their fd directory is empty or unreadable.
    let fd_rel = format!("proc/{pid}/fd");
    match std::fs::read_dir(host.path(&fd_rel)) {
        // Entries are fd numbers; anything else (a fixture's placeholder) is not an fd.
        Ok(d) => {
            p.open_fds = Some(
                d.filter_map(|e| e.ok())
                    .filter(|e| {
                        e.file_name()
                            .to_str()
                            .is_some_and(|n| n.parse::<u32>().is_ok())
                    })
                    .count() as u64,
            )
        }
        Err(e) if vanished(&e) => return None,
        Err(e) if p.state != 'Z' => report.problem(Unavailable::io(&fd_rel, &e)),
        Err(_) => {}
    }

    if p.in_d_state() {
        read_blocked_detail(host, &mut p);
    } else if is_runc(&p.comm) {
        read_runc_detail(host, &mut p);
    }
    Some(p)
}

/// `runc` itself, or one of the stages of `runc init` (nsexec renames them
/// `runc:[0:PARENT]`, `runc:[1:CHILD]`, `runc:[2:INIT]`).
pub fn is_runc(comm: &str) -> bool {
    comm == "runc" || comm.starts_with("runc:[")
}

/// For a runc process not in D state: where it sleeps (a `runc init` blocked on a pipe sleeps
/// interruptibly in `pipe_write`), its executable, and — for a plain `runc` — its command line
/// (to tell `runc init` before it renames itself). `cmdline` takes the target's mmap lock,
/// which is why this never runs for a process in D state.
fn read_runc_detail(host: &HostRoot, p: &mut Process) {
    if let Ok(b) = read_file(host, &format!("proc/{}/wchan", p.pid)) {
        let w = String::from_utf8_lossy(&b).trim().to_string();
        if !w.is_empty() && w != "0" {
            p.wchan = Some(w);
        }
    }
    if let Ok(exe) = std::fs::read_link(host.path(&format!("proc/{}/exe", p.pid))) {
        p.exe = Some(exe.to_string_lossy().into_owned());
    }
    if p.comm == "runc"
        && let Ok(b) = read_file(host, &format!("proc/{}/cmdline", p.pid))
    {
        let args: Vec<String> = b
            .split(|&c| c == 0)
            .filter(|a| !a.is_empty())
            .take(8)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        p.cmdline = Some(args);
    }
}

/// For a process in D state: where it sleeps. `wchan` and `stack` are read from the task
/// struct under the task's own lock, not from its address space, so they cannot block on a
/// stuck process the way `cmdline` or `maps` would. Failures leave the fields empty: `stack`
/// needs root, and the process may have woken up.
fn read_blocked_detail(host: &HostRoot, p: &mut Process) {
    if let Ok(b) = read_file(host, &format!("proc/{}/wchan", p.pid)) {
        let w = String::from_utf8_lossy(&b).trim().to_string();
        if !w.is_empty() && w != "0" {
            p.wchan = Some(w);
        }
    }
    if let Ok(b) = read_file(host, &format!("proc/{}/stack", p.pid)) {
        let frames: Vec<String> = String::from_utf8_lossy(&b)
            .lines()
            .map(|l| {
                // "[<0>] request_wait_answer+0x12f/0x240 [fuse]" -> "request_wait_answer+0x12f/0x240 [fuse]"
                l.split_once("] ").map_or(l, |(_, f)| f).trim().to_string()
            })
            .filter(|l| !l.is_empty())
            .take(32)
            .collect();
        if !frames.is_empty() {
            p.kernel_stack = Some(frames);
        }
    }
}

fn rlimit(l: &procfs_core::process::Limit) -> Rlimit {
    let v = |v: &LimitValue| match v {
        LimitValue::Unlimited => None,
        LimitValue::Value(n) => Some(*n),
    };
    Rlimit {
        soft: v(&l.soft_limit),
        hard: v(&l.hard_limit),
    }
}

/// Parses `/proc/PID/cgroup` ("hierarchy:controllers:path" per line; v2 is "0::path").
/// Lines that do not have that shape are skipped: the path may itself contain ':'.
pub fn parse_proc_cgroup(text: &str) -> Vec<CgroupMembership> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.splitn(3, ':');
            let hierarchy = f.next()?.parse().ok()?;
            let controllers = f.next()?.to_string();
            let path = f.next()?.to_string();
            Some(CgroupMembership {
                hierarchy,
                controllers,
                path,
            })
        })
        .collect()
}

/// The container a process belongs to, from the first of its cgroup paths that names one
/// (v2's unified path first: on hybrid hosts runtimes place it the same way).
pub fn owner_of(cgroups: &[CgroupMembership]) -> CgroupOwner {
    let v2 = cgroups.iter().filter(|c| c.hierarchy == 0);
    let v1 = cgroups.iter().filter(|c| c.hierarchy != 0);
    v2.chain(v1)
        .map(|c| parse_cgroup_path(&c.path))
        .find(|o| !o.is_empty())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat_line(comm: &str) -> String {
        format!(
            "4242 ({comm}) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 123456 1000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
        )
    }

    fn parse_stat(comm: &str) -> Stat {
        let line = stat_line(comm);
        parse_with("proc/4242/stat", line.as_bytes(), |b| Stat::from_read(b)).unwrap()
    }

    #[test]
    fn comm_with_parentheses_spaces_and_newline() {
        for comm in [
            "(a) b)",
            "a b c",
            "x) S 1 2 (",
            "line\nbreak",
            "runc:[2:INIT]",
            "123456789012345",
        ] {
            let s = parse_stat(comm);
            assert_eq!(s.comm, comm);
            assert_eq!(s.ppid, 1, "{comm}");
            assert_eq!(s.num_threads, 3, "{comm}");
            assert_eq!(s.starttime, 123456, "{comm}");
        }
    }

    #[test]
    fn garbage_stat_is_malformed_not_a_panic() {
        for bad in [
            "",
            "(",
            ")",
            "(x)",
            "4242 (x",
            "4242 (x) S",
            "\u{0}\u{1}garbage",
            "(a) b) c",
        ] {
            let r = parse_with("proc/1/stat", bad.as_bytes(), |b| Stat::from_read(b));
            let e = r.expect_err(bad);
            assert_eq!(e.path, "proc/1/stat");
            assert!(e.reason.starts_with("malformed"), "{e}");
        }
    }

    #[test]
    fn cgroup_v1_v2_and_hybrid() {
        let v2 = parse_proc_cgroup("0::/kubepods.slice/x.scope\n");
        assert_eq!(
            v2,
            vec![CgroupMembership {
                hierarchy: 0,
                controllers: String::new(),
                path: "/kubepods.slice/x.scope".into()
            }]
        );

        let hybrid = parse_proc_cgroup(
            "9:name=systemd:/\n8:pids:/kubepods/pod5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c/abc\n2:cpu,cpuacct:/\n0::/\n",
        );
        assert_eq!(hybrid.len(), 4);
        assert_eq!(hybrid[2].controllers, "cpu,cpuacct");
        let owner = owner_of(&hybrid);
        assert_eq!(
            owner.pod_uid.as_deref(),
            Some("5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c")
        );
        assert_eq!(owner.container_id.as_deref(), Some("abc"));

        // A path containing ':' (containerd's v2 form) stays whole.
        let colon = parse_proc_cgroup(
            "0::/system.slice/containerd.service/kubepods-pod1.slice:cri-containerd:abc\n",
        );
        assert_eq!(
            colon[0].path,
            "/system.slice/containerd.service/kubepods-pod1.slice:cri-containerd:abc"
        );

        // Garbage lines are skipped, not fatal.
        assert!(parse_proc_cgroup("garbage\n\n:::\n").is_empty());
    }
}
