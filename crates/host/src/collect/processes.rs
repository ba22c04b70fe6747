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
use crate::fs::{HostFs, ProcDir, ProcError};
use crate::parse::process::{parse_limits, parse_proc_cgroup, parse_stat, parse_status};
use node_doctor_core::attribution::owner_of;
use node_doctor_core::model::{Kind, PipeEnd, ProcState, Process, ScanReport, Unavailable};
use std::sync::Arc;
use std::time::Instant;

/// Processes read at most; the rest of a larger table is counted as left out.
pub const MAX_PROCESSES: usize = 100_000;
/// Pipe fds looked at per process, so a process with a million pipes cannot stall the scan.
const MAX_PIPE_FDS_PER_PROCESS: usize = 1 << 16;
/// Cap for one per-process file (`status` is ~1.5 KiB).
const FILE_CAP: usize = 64 << 10;

/// What to read besides stat, status, cgroup and limits.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScanOptions {
    /// List each process's `fd/` (fd counts).
    pub fds: bool,
    /// Also read the fd links and keep the pipes (for the pipe scan).
    pub pipe_links: bool,
}

/// What the process scan read.
#[derive(Debug, Default)]
pub struct Scan {
    /// By pid.
    pub processes: Vec<Process>,
    pub report: ScanReport,
    /// The pipes among every process's fds (when asked for), as (inode, holder).
    pub pipe_ends: Vec<(u64, PipeEnd)>,
}

/// One process's read, sent back from a worker.
struct Read {
    process: Option<Box<Process>>,
    pipes: Vec<(i32, u64)>,
    problems: Vec<Unavailable>,
    fds_denied: bool,
}

/// Reads every process, on a few worker threads with the deadline (see [`super::per_pid`]):
/// a read blocked in the kernel leaves its process out instead of hanging the run.
pub fn scan(fs: &Arc<dyn HostFs>, opts: ScanOptions, deadline: Option<Instant>) -> Scan {
    let mut report = ScanReport::default();
    let mut pids = match fs.list_pids() {
        Ok(p) => p,
        Err(u) => {
            report.problem(u);
            return Scan {
                report,
                ..Scan::default()
            };
        }
    };
    report.listed = pids.len() as u64;
    if pids.len() > MAX_PROCESSES {
        report.skipped_for_cap = pids.len().saturating_sub(MAX_PROCESSES) as u64;
        pids.truncate(MAX_PROCESSES);
    }
    let reader = fs.clone();
    let run = for_each_pid(pids, deadline, move |pid| {
        Some(read_one(&*reader, pid, opts))
    });
    let mut processes = Vec::with_capacity(run.results.len());
    let mut pipe_ends = Vec::new();
    for r in run.results {
        for u in r.problems {
            report.problem(u);
        }
        if r.fds_denied {
            report.fds_denied = report.fds_denied.saturating_add(1);
        }
        match r.process {
            Some(p) => {
                report.read = report.read.saturating_add(1);
                pipe_ends.extend(
                    r.pipes
                        .into_iter()
                        .map(|(fd, inode)| (inode, PipeEnd { pid: p.pid, fd })),
                );
                processes.push(*p);
            }
            None => report.vanished = report.vanished.saturating_add(1),
        }
    }
    report.skipped_for_deadline = run.skipped_for_deadline;
    for reason in run.spawn_errors {
        report.problem(Unavailable::new("proc", Kind::Other, reason));
    }
    for pid in run.blocked {
        report.problem(Unavailable::timeout(
            &format!("proc/{pid}"),
            "read still blocked at the scan deadline (process left out)",
        ));
    }
    processes.sort_unstable_by_key(|p| p.pid);
    Scan {
        processes,
        report,
        pipe_ends,
    }
}

fn read_one(fs: &dyn HostFs, pid: i32, opts: ScanOptions) -> Read {
    let mut r = Read {
        process: None,
        pipes: Vec::new(),
        problems: Vec::new(),
        fds_denied: false,
    };
    let dir = match fs.open_proc(pid) {
        Ok(d) => d,
        Err(ProcError::Vanished) => return r,
        Err(ProcError::Bad(u)) => {
            r.problems.push(u);
            return r;
        }
    };
    if let Some(p) = read_process(&*dir, opts, &mut r) {
        r.process = Some(Box::new(p));
    }
    r
}

/// Reads one process, or `None` when it vanished (or its `stat` is unusable, which is
/// recorded as a problem). Optional files that fail leave their field empty.
fn read_process(dir: &dyn ProcDir, opts: ScanOptions, r: &mut Read) -> Option<Process> {
    let pid = dir.pid();
    let rel = |name: &str| format!("proc/{pid}/{name}");
    let stat = match dir.read("stat", FILE_CAP) {
        Ok(b) => match parse_stat(&String::from_utf8_lossy(&b)) {
            Ok(s) => s,
            Err(e) => {
                r.problems.push(Unavailable::malformed(&rel("stat"), e));
                return None;
            }
        },
        Err(ProcError::Vanished) => return None,
        Err(ProcError::Bad(u)) => {
            r.problems.push(u);
            return None;
        }
    };

    let mut p = Process::new(
        pid,
        stat.ppid,
        &stat.comm,
        ProcState::from_char(stat.state),
        stat.starttime,
    );
    p.threads = stat.num_threads;
    p.cpu_ticks = Some(stat.cpu_ticks);

    match dir.read("status", FILE_CAP) {
        Ok(b) => match parse_status(&String::from_utf8_lossy(&b)) {
            Ok(s) => {
                p.uid = Some(s.ruid);
                p.euid = Some(s.euid);
                p.threads = s.threads;
                p.cap_eff = Some(s.cap_eff);
                p.sig_pending = Some(s.sig_pending);
                p.shared_sig_pending = Some(s.shared_sig_pending);
                p.ns_pid = s.ns_pid;
                p.core_dumping = s.core_dumping;
                p.mem_anon_bytes = s.mem_anon_bytes;
            }
            Err(e) => r.problems.push(Unavailable::malformed(&rel("status"), e)),
        },
        Err(ProcError::Vanished) => return None,
        Err(ProcError::Bad(u)) => r.problems.push(u),
    }

    match dir.read("cgroup", FILE_CAP) {
        Ok(b) => {
            p.cgroups = parse_proc_cgroup(&String::from_utf8_lossy(&b));
            p.owner = owner_of(&p.cgroups);
        }
        Err(ProcError::Vanished) => return None,
        Err(ProcError::Bad(u)) => r.problems.push(u),
    }

    match dir.read("limits", FILE_CAP) {
        Ok(b) => match parse_limits(&String::from_utf8_lossy(&b)) {
            Ok((nofile, core)) => {
                p.rlimit_nofile = Some(nofile);
                p.rlimit_core = Some(core);
            }
            Err(e) => r.problems.push(Unavailable::malformed(&rel("limits"), e)),
        },
        Err(ProcError::Vanished) => return None,
        Err(ProcError::Bad(u)) => r.problems.push(u),
    }

    if opts.fds {
        // Zombies have no files left; their fd directory is empty or unreadable.
        match dir.list_fds(opts.pipe_links, MAX_PIPE_FDS_PER_PROCESS) {
            Ok(l) => {
                p.open_fds = Some(l.count);
                r.pipes = l.pipes;
            }
            Err(ProcError::Vanished) => return None,
            // Another user's fd/ without the capabilities: counted, reported once overall.
            Err(ProcError::Bad(u)) if u.kind == Kind::Denied => r.fds_denied = !p.is_zombie(),
            Err(ProcError::Bad(u)) if !p.is_zombie() => r.problems.push(u),
            Err(ProcError::Bad(_)) => {}
        }
    }

    if p.in_d_state() {
        read_blocked_detail(dir, &mut p);
    } else if is_runc(&p.comm) {
        read_runc_detail(dir, &mut p);
    }
    Some(p)
}

/// The pipe ends of `pids` alone (no other file read), for measuring the pipe scan apart
/// from the process scan (`bench/pipes.sh`). Returns the ends and the pids left out at the
/// deadline.
pub fn pipe_ends(
    fs: &Arc<dyn HostFs>,
    pids: Vec<i32>,
    deadline: Option<Instant>,
) -> (Vec<(u64, PipeEnd)>, u64) {
    let reader = fs.clone();
    let run = for_each_pid(pids, deadline, move |pid| {
        let l = reader
            .open_proc(pid)
            .ok()?
            .list_fds(true, MAX_PIPE_FDS_PER_PROCESS)
            .ok()?;
        Some(
            l.pipes
                .into_iter()
                .map(|(fd, inode)| (inode, PipeEnd { pid, fd }))
                .collect::<Vec<_>>(),
        )
    });
    (run.results.concat(), run.skipped_for_deadline)
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
fn read_runc_detail(dir: &dyn ProcDir, p: &mut Process) {
    p.wchan = read_wchan(dir);
    p.exe = dir.read_link("exe");
    if p.comm == "runc"
        && let Ok(b) = dir.read("cmdline", FILE_CAP)
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

/// The kernel function the task sleeps in; "0" (running) and failures are `None`.
fn read_wchan(dir: &dyn ProcDir) -> Option<String> {
    let b = dir.read("wchan", 4096).ok()?;
    let w = String::from_utf8_lossy(&b).trim().to_string();
    (!w.is_empty() && w != "0").then_some(w)
}

/// For a process in D state: where it sleeps. `wchan` and `stack` are read from the task
/// struct under the task's own lock, not from its address space, so they cannot block on a
/// stuck process the way `cmdline` or `maps` would. Failures leave the fields empty: `stack`
/// needs root, and the process may have woken up.
fn read_blocked_detail(dir: &dyn ProcDir, p: &mut Process) {
    p.wchan = read_wchan(dir);
    if let Ok(b) = dir.read("stack", FILE_CAP) {
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
