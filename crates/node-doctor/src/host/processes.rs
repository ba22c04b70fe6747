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
use super::pipes::{PipeEnd, pipe_inode};
use super::{HostRoot, Unavailable, parse_with};
use crate::cgroup_path::{CgroupOwner, parse_cgroup_path};
use procfs_core::FromRead;
use procfs_core::process::Stat;
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
    /// A process as `stat` describes it; everything else unknown until read.
    pub fn new(pid: i32, ppid: i32, comm: &str, state: char, start_time_ticks: u64) -> Process {
        Process {
            pid,
            ppid,
            comm: comm.to_string(),
            state,
            start_time_ticks,
            uid: 0,
            euid: 0,
            threads: 1,
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
        }
    }

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

/// What the process scan read.
#[derive(Debug, Default)]
pub struct Scan {
    /// By pid.
    pub processes: Vec<Process>,
    pub report: ScanReport,
    /// The pipes among every process's fds (when asked for), as (inode, holder).
    pub pipe_ends: Vec<(u64, PipeEnd)>,
}

/// Reads every process, on a few worker threads with the deadline (see [`super::per_pid`]):
/// a read blocked in the kernel leaves its process out instead of hanging the run. With
/// `pipe_links`, the fd pass also collects the pipe ends for [`super::pipes::size`].
pub fn scan(host: &HostRoot, deadline: Option<Instant>, pipe_links: bool) -> Scan {
    let mut report = ScanReport::default();
    let pids = match list_pids(host) {
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
    let reader = host.clone();
    let run = for_each_pid(pids, deadline, move |pid| {
        let mut r = ScanReport::default();
        let p = read_process(&reader, pid, pipe_links, &mut r)
            .map(|(p, found)| (Box::new(p), ends_of(pid, found)));
        Some((p, r.problems))
    });
    let mut processes = Vec::with_capacity(run.results.len());
    let mut pipe_ends = Vec::new();
    for (p, problems) in run.results {
        for u in problems {
            report.problem(u);
        }
        match p {
            Some((p, ends)) => {
                report.read += 1;
                processes.push(*p);
                pipe_ends.extend(ends);
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
    Scan {
        processes,
        report,
        pipe_ends,
    }
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

fn classify(rel: &str, e: &io::Error) -> ReadError {
    if vanished(e) {
        ReadError::Vanished
    } else {
        ReadError::Bad(Unavailable::io(rel, e))
    }
}

/// `/proc/PID` opened once; its files are opened relative to it (`openat`), which spares
/// the kernel a path walk from the root for each of them. That is most of the scan's cost
/// besides generating the files' text.
struct ProcDir {
    fd: std::os::fd::OwnedFd,
    pid: i32,
}

impl ProcDir {
    fn open(host: &HostRoot, pid: i32) -> Result<ProcDir, ReadError> {
        use rustix::fs::{Mode, OFlags, open};
        let rel = format!("proc/{pid}");
        open(
            host.path(&rel),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map(|fd| ProcDir { fd, pid })
        .map_err(|e| classify(&rel, &io::Error::from(e)))
    }

    fn rel(&self, name: &str) -> String {
        format!("proc/{}/{name}", self.pid)
    }

    fn open_at(
        &self,
        name: &str,
        flags: rustix::fs::OFlags,
    ) -> Result<std::os::fd::OwnedFd, ReadError> {
        use rustix::fs::{Mode, OFlags, openat};
        openat(&self.fd, name, flags | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| classify(&self.rel(name), &io::Error::from(e)))
    }

    /// A whole file of the process, capped at 1 MiB.
    fn read(&self, name: &str) -> Result<Vec<u8>, ReadError> {
        use std::io::Read;
        let file = std::fs::File::from(self.open_at(name, rustix::fs::OFlags::RDONLY)?);
        // status and limits are ~1.5 KiB: one allocation, no regrowth.
        let mut buf = Vec::with_capacity(4096);
        file.take(1 << 20)
            .read_to_end(&mut buf)
            .map_err(|e| classify(&self.rel(name), &e))?;
        Ok(buf)
    }

    /// Counts the entries of `fd/` that are fd numbers (a fixture's placeholder files are
    /// not) and, when `pipes` is set, reads each link and keeps the pipes as (fd, inode):
    /// one pass over the directory serves the fd count and the pipe scan. `readlinkat` on
    /// the directory's fd spares a path walk per fd.
    fn list_fds(&self, pipes: bool) -> Result<(u64, Vec<(i32, u64)>), ReadError> {
        use rustix::fs::{Dir, OFlags, readlinkat_raw};
        let fd = self.open_at("fd", OFlags::RDONLY | OFlags::DIRECTORY)?;
        let mut dir =
            Dir::read_from(&fd).map_err(|e| classify(&self.rel("fd"), &io::Error::from(e)))?;
        let mut n = 0;
        let mut found = Vec::new();
        let mut link = [0u8; 64];
        while let Some(e) = dir.read() {
            let e = e.map_err(|e| classify(&self.rel("fd"), &io::Error::from(e)))?;
            let name = e.file_name().to_bytes();
            if name.is_empty() || !name.iter().all(u8::is_ascii_digit) {
                continue;
            }
            n += 1;
            if !pipes || found.len() >= MAX_PIPE_FDS_PER_PROCESS {
                continue;
            }
            // A link that fails was closed meanwhile.
            if let Ok(len) = readlinkat_raw(&fd, e.file_name(), &mut link[..])
                && let Some(inode) = pipe_inode(&link[..len.min(link.len())])
                && let Ok(num) = std::str::from_utf8(name).unwrap_or("").parse()
            {
                found.push((num, inode));
            }
        }
        Ok((n, found))
    }

    fn read_link(&self, name: &str) -> Option<String> {
        rustix::fs::readlinkat(&self.fd, name, Vec::new())
            .ok()
            .map(|c| c.to_string_lossy().into_owned())
    }
}

/// Pipe fds looked at per process, so a process with a million pipes cannot stall the scan.
const MAX_PIPE_FDS_PER_PROCESS: usize = 1 << 16;

/// Reads one process, or `None` when it vanished (or its `stat` is unusable, which is
/// recorded as a problem). Optional files that fail leave their field empty. With
/// `pipe_links`, also the pipes among its fds, as (fd, inode).
pub fn read_process(
    host: &HostRoot,
    pid: i32,
    pipe_links: bool,
    report: &mut ScanReport,
) -> Option<(Process, Vec<(i32, u64)>)> {
    let dir = match ProcDir::open(host, pid) {
        Ok(d) => d,
        Err(ReadError::Vanished) => return None,
        Err(ReadError::Bad(u)) => {
            report.problem(u);
            return None;
        }
    };
    let stat_rel = format!("proc/{pid}/stat");
    let stat = match dir.read("stat") {
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

    let mut p = Process::new(pid, stat.ppid, &stat.comm, stat.state, stat.starttime);
    p.threads = stat.num_threads.max(0) as u64;

    let status_rel = format!("proc/{pid}/status");
    match dir.read("status").and_then(|b| {
        parse_status(&String::from_utf8_lossy(&b)).map_err(|why| {
            ReadError::Bad(Unavailable::new(&status_rel, format!("malformed: {why}")))
        })
    }) {
        Ok(s) => {
            p.uid = s.ruid;
            p.euid = s.euid;
            p.threads = s.threads;
            p.cap_eff = s.cap_eff;
            p.sig_pending = s.sig_pending;
            p.shared_sig_pending = s.shared_sig_pending;
            p.ns_pid = s.ns_pid;
        }
        Err(ReadError::Vanished) => return None,
        Err(ReadError::Bad(u)) => report.problem(u),
    }

    match dir.read("cgroup") {
        Ok(b) => {
            p.cgroups = parse_proc_cgroup(&String::from_utf8_lossy(&b));
            p.owner = owner_of(&p.cgroups);
        }
        Err(ReadError::Vanished) => return None,
        Err(ReadError::Bad(u)) => report.problem(u),
    }

    let limits_rel = format!("proc/{pid}/limits");
    match dir.read("limits").and_then(|b| {
        parse_limits(&String::from_utf8_lossy(&b)).map_err(|why| {
            ReadError::Bad(Unavailable::new(&limits_rel, format!("malformed: {why}")))
        })
    }) {
        Ok((nofile, core)) => {
            p.rlimit_nofile = Some(nofile);
            p.rlimit_core = Some(core);
        }
        Err(ReadError::Vanished) => return None,
        Err(ReadError::Bad(u)) => report.problem(u),
    }

    // Zombies have no files left; their fd directory is empty or unreadable.
    let mut pipes = Vec::new();
    match dir.list_fds(pipe_links) {
        Ok((n, found)) => {
            p.open_fds = Some(n);
            pipes = found;
        }
        Err(ReadError::Vanished) => return None,
        Err(ReadError::Bad(u)) if p.state != 'Z' => report.problem(u),
        Err(ReadError::Bad(_)) => {}
    }

    if p.in_d_state() {
        read_blocked_detail(&dir, &mut p);
    } else if is_runc(&p.comm) {
        read_runc_detail(&dir, &mut p);
    }
    Some((p, pipes))
}

/// The pipe ends of `pids` alone (no other file read), for measuring the pipe scan apart
/// from the process scan (`bench/pipes.sh`). Returns the ends and the pids left out at the
/// deadline.
pub fn pipe_ends(
    host: &HostRoot,
    pids: Vec<i32>,
    deadline: Option<Instant>,
) -> (Vec<(u64, PipeEnd)>, u64) {
    let reader = host.clone();
    let run = for_each_pid(pids, deadline, move |pid| {
        let (_, found) = ProcDir::open(&reader, pid).ok()?.list_fds(true).ok()?;
        Some(ends_of(pid, found))
    });
    (run.results.concat(), run.skipped_for_deadline)
}

fn ends_of(pid: i32, found: Vec<(i32, u64)>) -> Vec<(u64, PipeEnd)> {
    found
        .into_iter()
        .map(|(fd, inode)| (inode, PipeEnd { pid, fd }))
        .collect()
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
fn read_runc_detail(dir: &ProcDir, p: &mut Process) {
    p.wchan = read_wchan(dir);
    p.exe = dir.read_link("exe");
    if p.comm == "runc"
        && let Ok(b) = dir.read("cmdline")
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
fn read_wchan(dir: &ProcDir) -> Option<String> {
    let b = dir.read("wchan").ok()?;
    let w = String::from_utf8_lossy(&b).trim().to_string();
    (!w.is_empty() && w != "0").then_some(w)
}

/// For a process in D state: where it sleeps. `wchan` and `stack` are read from the task
/// struct under the task's own lock, not from its address space, so they cannot block on a
/// stuck process the way `cmdline` or `maps` would. Failures leave the fields empty: `stack`
/// needs root, and the process may have woken up.
fn read_blocked_detail(dir: &ProcDir, p: &mut Process) {
    p.wchan = read_wchan(dir);
    if let Ok(b) = dir.read("stack") {
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

/// The fields of `/proc/PID/status` the checks use. Parsed by hand rather than with
/// procfs-core's `Status`, which builds a map of all ~55 lines per process: at 10000
/// processes that map was a fifth of the scan's CPU (measured with perf, bench/scan.sh).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusFields {
    pub ruid: u32,
    pub euid: u32,
    pub threads: u64,
    pub cap_eff: u64,
    pub sig_pending: u64,
    pub shared_sig_pending: u64,
    /// Last `NSpid` entry (absent before 4.1).
    pub ns_pid: Option<i32>,
}

/// Parses `status`; a file missing one of Uid, Threads, SigPnd, ShdPnd, CapEff (a cut or
/// foreign file) is an error naming the field.
pub fn parse_status(text: &str) -> Result<StatusFields, String> {
    let (mut uids, mut threads, mut cap_eff, mut sig, mut shd, mut ns_pid) =
        (None, None, None, None, None, None);
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "Uid" => {
                let mut f = value.split_whitespace().map(|v| v.parse::<u32>().ok());
                uids = Some((f.next().flatten(), f.next().flatten()));
            }
            "Threads" => threads = value.parse::<u64>().ok(),
            "CapEff" => cap_eff = u64::from_str_radix(value, 16).ok(),
            "SigPnd" => sig = u64::from_str_radix(value, 16).ok(),
            "ShdPnd" => shd = u64::from_str_radix(value, 16).ok(),
            "NSpid" => ns_pid = value.split_whitespace().last().and_then(|v| v.parse().ok()),
            _ => {}
        }
    }
    let (ruid, euid) = match uids {
        Some((Some(r), Some(e))) => (r, e),
        _ => return Err("no Uid line".into()),
    };
    Ok(StatusFields {
        ruid,
        euid,
        threads: threads.ok_or("no Threads line")?,
        cap_eff: cap_eff.ok_or("no CapEff line")?,
        sig_pending: sig.ok_or("no SigPnd line")?,
        shared_sig_pending: shd.ok_or("no ShdPnd line")?,
        ns_pid,
    })
}

/// `Max open files` and `Max core file size` from `limits` (fixed-width name column, then
/// soft and hard: a number or "unlimited").
pub fn parse_limits(text: &str) -> Result<(Rlimit, Rlimit), String> {
    let find = |name: &str| -> Result<Rlimit, String> {
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .ok_or_else(|| format!("no {name:?} line"))?;
        let mut f = line.split_whitespace().map(|v| match v {
            "unlimited" => Ok(None),
            n => n
                .parse::<u64>()
                .map(Some)
                .map_err(|_| format!("{name}: {n:?}")),
        });
        let soft = f.next().ok_or_else(|| format!("{name}: no soft limit"))??;
        let hard = f.next().ok_or_else(|| format!("{name}: no hard limit"))??;
        Ok(Rlimit { soft, hard })
    };
    Ok((find("Max open files")?, find("Max core file size")?))
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
    fn status_fields_and_cut_files() {
        let full = "Name:\tsleep\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t1000\t1001\t1001\t1001\n\
                    NSpid:\t4824\t1\nThreads:\t3\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000100\n\
                    CapEff:\t000001fffeffffff\n";
        let s = parse_status(full).unwrap();
        assert_eq!(
            (s.ruid, s.euid, s.threads, s.ns_pid),
            (1000, 1001, 3, Some(1))
        );
        assert_eq!(s.shared_sig_pending, 1 << 8);
        assert_eq!(s.cap_eff, 0x1fffeffffff);
        let cut = &full[..full.find("Threads").unwrap()];
        assert_eq!(parse_status(cut), Err("no Threads line".to_string()));
        assert!(parse_status("garbage").is_err());
    }

    #[test]
    fn limits_fields() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max core file size        0                    unlimited            bytes     \n\
                    Max open files            1024                 524288               files     \n";
        let (nofile, core) = parse_limits(text).unwrap();
        assert_eq!(
            nofile,
            Rlimit {
                soft: Some(1024),
                hard: Some(524288)
            }
        );
        assert_eq!(
            core,
            Rlimit {
                soft: Some(0),
                hard: None
            }
        );
        assert!(parse_limits("not a limits file").is_err());
        assert!(parse_limits("Max open files   lots   1\nMax core file size 0 0\n").is_err());
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
