//! The process table: one pass over `/proc/<pid>/` under the host root.
//!
//! Safe on a sick node: `stat`, `status`, `cgroup`, `limits` (or, where the seam can, the
//! same two limits by prlimit(2)) and the `fd` directory are read for every process,
//! `wchan` and `stack` for D-state ones. These take no lock of the
//! target's address space. `cmdline`, `environ`, `maps` and `smaps` do (`mmap_lock`, through
//! `access_remote_vm`), and a process stuck in D state while holding it makes the reader hang
//! in turn — so the only such read is `cmdline` of a process named `runc` that is not in D
//! state (to recognise `runc init`); nothing else opens them.
//! A process that exits between `readdir` and a read is normal and counted as vanished.

use super::per_pid::for_each_pid;
use crate::fs::{HostFs, ProcDir, ProcError};
use crate::parse::process::{parse_limits, parse_proc_cgroup, parse_stat, parse_status};
use node_doctor_core::attribution::{CgroupOwner, owner_of};
use node_doctor_core::model::{
    CgroupMembership, Kind, PipeEnd, ProcState, Process, ScanReport, Unavailable,
};
use std::collections::HashMap;
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
    /// Also read the fd links and keep the pipes (for the pipe scan), and note the
    /// processes that may hold open deleted files (for [`super::deleted`]).
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
    /// With the links read: the processes whose links may name an open deleted file, and
    /// those in D state (whose links the deleted-files walk must not read).
    pub deleted_candidates: Option<std::collections::BTreeSet<i32>>,
}

/// One process's read, sent back from a worker.
struct Read {
    process: Option<Box<Process>>,
    pipes: Vec<(i32, u64)>,
    maybe_deleted: bool,
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
    let mut candidates = std::collections::BTreeSet::new();
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
                if r.maybe_deleted || p.in_d_state() {
                    candidates.insert(p.pid);
                }
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
        deleted_candidates: (opts.fds && opts.pipe_links).then_some(candidates),
    }
}

fn read_one(fs: &dyn HostFs, pid: i32, opts: ScanOptions) -> Read {
    let mut r = Read {
        process: None,
        pipes: Vec::new(),
        maybe_deleted: false,
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
    // Asked before `stat` is read through `dir`: that read succeeding proves the pid still
    // named the process `dir` was opened for when prlimit(2) was asked (a pid is not reused
    // while its task exists, and `dir` stays tied to its task).
    let syscall_limits = dir.syscall_limits();
    let stat = match dir.read("stat", FILE_CAP) {
        Ok(b) => match parse_stat(&text_of(&b)) {
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
        Ok(b) => match parse_status(&text_of(&b)) {
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
        Ok(b) => (p.cgroups, p.owner) = memberships(b),
        Err(ProcError::Vanished) => return None,
        Err(ProcError::Bad(u)) => r.problems.push(u),
    }

    if let Some((nofile, core)) = syscall_limits {
        p.rlimit_nofile = Some(nofile);
        p.rlimit_core = Some(core);
    } else {
        read_limits_file(dir, &mut p, r)?;
    }

    if opts.fds {
        // Zombies have no files left; their fd directory is empty or unreadable.
        match dir.list_fds(opts.pipe_links, MAX_PIPE_FDS_PER_PROCESS) {
            Ok(l) => {
                p.open_fds = Some(l.count);
                r.pipes = l.pipes;
                r.maybe_deleted = l.maybe_deleted;
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

/// `limits` read and parsed into `p`; `None` when the process vanished meanwhile.
fn read_limits_file(dir: &dyn ProcDir, p: &mut Process, r: &mut Read) -> Option<()> {
    match dir.read("limits", FILE_CAP) {
        Ok(b) => match parse_limits(&text_of(&b)) {
            Ok((nofile, core)) => {
                p.rlimit_nofile = Some(nofile);
                p.rlimit_core = Some(core);
            }
            Err(e) => r.problems.push(Unavailable::malformed(
                &format!("proc/{}/limits", dir.pid()),
                e,
            )),
        },
        Err(ProcError::Vanished) => return None,
        Err(ProcError::Bad(u)) => r.problems.push(u),
    }
    Some(())
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

/// Distinct `/proc/PID/cgroup` texts remembered per scan worker at most: a host where every
/// process has a cgroup of its own costs a bounded map, not a second copy of every text.
const MEMBERSHIP_CACHE_MAX: usize = 1024;

/// A `cgroup` text's parse: the memberships and the container and pod they name.
type Parsed = (Arc<[CgroupMembership]>, CgroupOwner);

std::thread_local! {
    /// A scan worker's parsed cgroup texts. The workers live for one scan, so does this.
    static MEMBERSHIPS: std::cell::RefCell<HashMap<Vec<u8>, Parsed>> =
        std::cell::RefCell::new(HashMap::new());
}

/// The memberships and owner a `cgroup` text names, parsed once per distinct text: most
/// processes share their cgroup with others (every process of a container, every user
/// process of a session), so the scan shares one parsed copy instead of allocating two
/// strings per hierarchy per process.
fn memberships(text: Vec<u8>) -> Parsed {
    MEMBERSHIPS.with_borrow_mut(|cache| {
        if let Some((m, o)) = cache.get(&text) {
            return (m.clone(), o.clone());
        }
        let m = parse_proc_cgroup(&text_of(&text));
        let o = owner_of(&m);
        if cache.len() >= MEMBERSHIP_CACHE_MAX {
            cache.clear();
        }
        cache.insert(text, (m.clone(), o.clone()));
        (m, o)
    })
}

/// The text of a procfs file: valid UTF-8 borrowed as is (`from_utf8` validates a word at a
/// time; `from_utf8_lossy` goes byte by byte), anything else with replacement characters.
fn text_of(b: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::RealFs;

    fn write_process(root: &std::path::Path, pid: i32, cgroup: &str) {
        let d = root.join(format!("proc/{pid}"));
        std::fs::create_dir_all(&d).unwrap();
        let stat = format!(
            "{pid} (idle) S 1 {pid} {pid} 0 -1 4194560 100 0 0 0 11 22 0 0 20 0 1 0 123456 1000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
        );
        std::fs::write(d.join("stat"), stat).unwrap();
        std::fs::write(d.join("cgroup"), cgroup).unwrap();
        // A missing file reads as a process that exited: the test's own status and limits.
        for f in ["status", "limits"] {
            std::fs::write(d.join(f), std::fs::read(format!("/proc/self/{f}")).unwrap()).unwrap();
        }
    }

    /// Processes with the same `cgroup` text hold one parsed copy (the scan's memory at
    /// 10000 processes), and a different text gets its own, with its own owner.
    #[test]
    fn processes_of_one_cgroup_share_their_parsed_memberships() {
        let dir = tempfile::tempdir().unwrap();
        let shared = "4:memory:/user.slice\n0::/user.slice/session-1.scope\n";
        let pod = "0::/kubepods/burstable/pod5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c/\
                   cri-containerd-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope\n";
        for pid in 1..=3 {
            write_process(dir.path(), pid, shared);
        }
        write_process(dir.path(), 4, pod);
        let fs: Arc<dyn HostFs> = Arc::new(RealFs::new(dir.path()).unwrap());
        let scan = scan(&fs, ScanOptions::default(), None);
        let ps = &scan.processes;
        assert_eq!(ps.len(), 4, "{:?}", scan.report);
        assert!(Arc::ptr_eq(&ps[0].cgroups, &ps[1].cgroups));
        assert!(Arc::ptr_eq(&ps[0].cgroups, &ps[2].cgroups));
        assert_eq!(ps[0].cgroups.len(), 2);
        assert_eq!(ps[0].cgroups[1].path, "/user.slice/session-1.scope");
        assert!(ps[0].owner.is_empty());
        assert!(!Arc::ptr_eq(&ps[0].cgroups, &ps[3].cgroups));
        assert_eq!(
            ps[3].owner.pod_uid.as_deref(),
            Some("5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c")
        );
        assert!(
            ps[3]
                .owner
                .container_id
                .as_deref()
                .is_some_and(|c| c.starts_with("0123"))
        );
    }
}
