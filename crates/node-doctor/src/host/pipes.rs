//! Pipes held by processes: which pipe inodes each process has open, who owns each pipe
//! (the uid its buffers are charged to) and how big it is.
//!
//! The kernel charges pipe buffers per user (`pipe->user`, the creator's `user_struct`,
//! fs/pipe.c `account_pipe_buffers`) and exposes no per-user total. Past
//! `fs.pipe-user-pages-soft` a new pipe of an unprivileged user gets 2 pages instead of 16
//! (`too_many_pipe_buffers_soft`), and a process writing more than that blocks — incident 1's
//! `runc init`. This module rebuilds the per-user view: every `pipe:[INODE]` link under
//! `/proc/*/fd`, one entry per inode, sized once through a duplicate of one holder's fd.
//!
//! Reading another process's pipe without side effects: `pidfd_open` + `pidfd_getfd` gives
//! us a new fd on the same open file (no new reader or writer is registered on the pipe);
//! `fstat` gives the inode's owner, `F_GETPIPE_SZ` its size, `FIONREAD` the bytes waiting.
//! Only when pidfd is unavailable (kernel < 5.6) do we open `/proc/PID/fd/N` read-only and
//! non-blocking, which adds a reader while it is open. Processes in D state are not
//! touched (their links are read, their fds are not duplicated).

use super::per_pid::for_each_pid;
use super::{HostRoot, Unavailable};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PipeScan {
    /// How sizes were read: "pidfd", "proc-open" (fallback), or "none".
    pub sizing: String,
    /// Why sizes are missing, when `sizing` is "none".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why_unsized: Option<String>,
    /// One entry per pipe inode, by inode.
    pub pipes: Vec<Pipe>,
    pub processes_scanned: u64,
    pub fds_scanned: u64,
    pub skipped_for_deadline: u64,
    pub problems: Vec<Unavailable>,
    pub problems_not_kept: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipe {
    pub inode: u64,
    /// Owner of the pipe inode (the creator's fsuid): the account its buffers are charged to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// Bytes written and not yet read (FIONREAD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffered_bytes: Option<u64>,
    /// Who has it open, by (pid, fd), both ends; at most `MAX_HOLDERS` kept.
    pub holders: Vec<PipeEnd>,
    #[serde(default)]
    pub holders_not_kept: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PipeEnd {
    pub pid: i32,
    pub fd: i32,
}

const MAX_HOLDERS: usize = 32;
const MAX_PROBLEMS: usize = 50;
/// fds looked at per process, so a process with a million fds cannot stall the scan.
const MAX_FDS_PER_PROCESS: usize = 1 << 16;

/// What one process contributed.
struct Seen {
    fds: u64,
    ends: Vec<(u64, PipeEnd)>,
    sized: Vec<(u64, Sized)>,
    problems: Vec<Unavailable>,
    fallback_used: bool,
}

#[derive(Clone, Copy)]
struct Sized {
    uid: u32,
    size: u64,
    buffered: Option<u64>,
}

/// The pipe sizing the root allows: only the live procfs of our own PID namespace has
/// pids we can open.
fn sizing_possible(host: &HostRoot) -> Result<(), String> {
    let me = std::process::id().to_string();
    match std::fs::read_link(host.path("proc/self")) {
        Ok(p) if p.as_os_str() == me.as_str() => Ok(()),
        Ok(_) => Err("the root's proc is another PID namespace's: pipe sizes need our own".into()),
        Err(_) => Err(
            "the root's proc is not a live procfs (a fixture or copied tree): \
                       pipe sizes can only be read from live fds"
                .into(),
        ),
    }
}

/// Scans the fds of `pids`. `dont_touch` are pids whose fds must not be duplicated
/// (processes in D state).
pub fn scan(
    host: &HostRoot,
    pids: Vec<i32>,
    dont_touch: HashSet<i32>,
    deadline: Option<Instant>,
) -> PipeScan {
    let mut out = PipeScan::default();
    let live = sizing_possible(host);
    if let Err(why) = &live {
        out.why_unsized = Some(why.clone());
    }
    let sized_inodes: Arc<Mutex<HashSet<u64>>> = Arc::default();
    let host_c = host.clone();
    let dont_touch = Arc::new(dont_touch);
    let size_them = live.is_ok();
    let run = for_each_pid(pids, deadline, move |pid| {
        let may_size = size_them && !dont_touch.contains(&pid);
        scan_process(&host_c, pid, may_size, &sized_inodes)
    });

    let mut by_inode: BTreeMap<u64, Pipe> = BTreeMap::new();
    let mut fallback = false;
    let mut any_sized = false;
    for seen in run.results {
        out.processes_scanned += 1;
        out.fds_scanned += seen.fds;
        fallback |= seen.fallback_used;
        for u in seen.problems {
            push_problem(&mut out, u);
        }
        for (inode, end) in seen.ends {
            let p = by_inode.entry(inode).or_insert_with(|| Pipe {
                inode,
                owner_uid: None,
                size_bytes: None,
                buffered_bytes: None,
                holders: Vec::new(),
                holders_not_kept: 0,
            });
            if p.holders.len() < MAX_HOLDERS {
                p.holders.push(end);
            } else {
                p.holders_not_kept += 1;
            }
        }
        for (inode, s) in seen.sized {
            any_sized = true;
            if let Some(p) = by_inode.get_mut(&inode) {
                p.owner_uid = Some(s.uid);
                p.size_bytes = Some(s.size);
                p.buffered_bytes = s.buffered;
            }
        }
    }
    out.skipped_for_deadline = run.skipped_for_deadline;
    for pid in run.blocked {
        push_problem(
            &mut out,
            Unavailable::new(
                &format!("proc/{pid}/fd"),
                "still blocked at the scan deadline",
            ),
        );
    }
    out.pipes = by_inode.into_values().collect();
    for p in &mut out.pipes {
        p.holders.sort_unstable();
    }
    out.sizing = match (live.is_ok(), fallback, any_sized || out.pipes.is_empty()) {
        (false, _, _) => "none",
        (true, true, _) => "proc-open",
        (true, false, true) => "pidfd",
        (true, false, false) => {
            out.why_unsized = Some("no pipe could be duplicated (see problems)".into());
            "none"
        }
    }
    .to_string();
    out
}

fn push_problem(out: &mut PipeScan, u: Unavailable) {
    if out.problems.len() < MAX_PROBLEMS {
        out.problems.push(u);
    } else {
        out.problems_not_kept += 1;
    }
}

/// `pipe:[123]` → 123.
pub fn pipe_inode(link: &[u8]) -> Option<u64> {
    let rest = link.strip_prefix(b"pipe:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(rest).ok()?.parse().ok()
}

fn scan_process(
    host: &HostRoot,
    pid: i32,
    may_size: bool,
    sized_inodes: &Mutex<HashSet<u64>>,
) -> Option<Seen> {
    use rustix::fs::{Dir, Mode, OFlags, open, readlinkat_raw};
    let rel = format!("proc/{pid}/fd");
    // One open of the fd directory, then readlinkat relative to it: no path walk from the
    // root per fd (this loop runs for every fd of every process).
    let Ok(dirfd) = open(
        host.path(&rel),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return None; // gone, a zombie, or a kernel thread: nothing to see
    };
    let Ok(mut dir) = Dir::read_from(&dirfd) else {
        return None;
    };
    let mut seen = Seen {
        fds: 0,
        ends: Vec::new(),
        sized: Vec::new(),
        problems: Vec::new(),
        fallback_used: false,
    };
    let mut pidfd: Option<Result<OwnedFd, rustix::io::Errno>> = None;
    let mut link = [0u8; 64];
    while let Some(Ok(e)) = dir.read() {
        let Some(fd) = e
            .file_name()
            .to_str()
            .ok()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue; // "." and ".."
        };
        seen.fds += 1;
        if seen.fds as usize > MAX_FDS_PER_PROCESS {
            break;
        }
        let Ok(n) = readlinkat_raw(&dirfd, e.file_name(), &mut link[..]) else {
            continue; // closed meanwhile
        };
        let Some(inode) = pipe_inode(&link[..n.min(link.len())]) else {
            continue;
        };
        seen.ends.push((inode, PipeEnd { pid, fd }));
        if !may_size || !claim(sized_inodes, inode) {
            continue;
        }
        match size_pipe(host, pid, fd, inode, &mut pidfd) {
            Ok((s, fallback)) => {
                seen.fallback_used |= fallback;
                seen.sized.push((inode, s));
            }
            Err(SizeError::Gone) => unclaim(sized_inodes, inode),
            Err(SizeError::Failed(why)) => {
                unclaim(sized_inodes, inode);
                seen.problems
                    .push(Unavailable::new(&format!("{rel}/{fd}"), why));
            }
        }
    }
    Some(seen)
}

/// Marks `inode` as being sized by us; false when another holder already did (or does).
fn claim(set: &Mutex<HashSet<u64>>, inode: u64) -> bool {
    set.lock().map(|mut s| s.insert(inode)).unwrap_or(false)
}

/// Lets another holder size it after our attempt failed.
fn unclaim(set: &Mutex<HashSet<u64>>, inode: u64) {
    if let Ok(mut s) = set.lock() {
        s.remove(&inode);
    }
}

enum SizeError {
    /// The process or the fd went away: normal churn.
    Gone,
    Failed(String),
}

fn size_pipe(
    host: &HostRoot,
    pid: i32,
    fd: i32,
    inode: u64,
    pidfd: &mut Option<Result<OwnedFd, rustix::io::Errno>>,
) -> Result<(Sized, bool), SizeError> {
    use rustix::io::Errno;
    use rustix::process::{Pid, PidfdFlags, PidfdGetfdFlags, pidfd_getfd, pidfd_open};
    let pidfd = pidfd.get_or_insert_with(|| {
        let p = Pid::from_raw(pid).ok_or(Errno::SRCH)?;
        pidfd_open(p, PidfdFlags::empty())
    });
    let dup = match pidfd {
        Ok(pfd) => match pidfd_getfd(pfd.as_fd(), fd, PidfdGetfdFlags::empty()) {
            Ok(d) => Ok((d, false)),
            Err(Errno::NOSYS) => open_via_proc(host, pid, fd).map(|d| (d, true)),
            Err(Errno::BADF | Errno::SRCH) => Err(SizeError::Gone),
            Err(e) => Err(SizeError::Failed(format!("pidfd_getfd: {e}"))),
        },
        Err(Errno::NOSYS) => open_via_proc(host, pid, fd).map(|d| (d, true)),
        Err(Errno::SRCH) => Err(SizeError::Gone),
        Err(e) => Err(SizeError::Failed(format!("pidfd_open: {e}"))),
    }?;
    let (file, fallback) = dup;
    let st = rustix::fs::fstat(&file).map_err(|e| SizeError::Failed(format!("fstat: {e}")))?;
    if st.st_ino != inode {
        return Err(SizeError::Gone); // the fd number was reused for something else
    }
    let size = rustix::pipe::fcntl_getpipe_size(&file)
        .map_err(|e| SizeError::Failed(format!("F_GETPIPE_SZ: {e}")))?;
    let buffered = rustix::io::ioctl_fionread(&file).ok();
    Ok((
        Sized {
            uid: st.st_uid,
            size: size as u64,
            buffered,
        },
        fallback,
    ))
}

/// Fallback without pidfd: a new read-only, non-blocking open of the pipe through its
/// `/proc` link. It adds a reader for as long as it is open (a few microseconds).
fn open_via_proc(host: &HostRoot, pid: i32, fd: i32) -> Result<OwnedFd, SizeError> {
    use rustix::fs::{Mode, OFlags, open};
    open(
        host.path(&format!("proc/{pid}/fd/{fd}")),
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        rustix::io::Errno::NOENT | rustix::io::Errno::SRCH => SizeError::Gone,
        e => SizeError::Failed(format!("open: {e}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_links() {
        assert_eq!(pipe_inode(b"pipe:[41222]"), Some(41222));
        assert_eq!(pipe_inode(b"socket:[41222]"), None);
        assert_eq!(pipe_inode(b"pipe:[]"), None);
        assert_eq!(pipe_inode(b"/tmp/pipe:[1]"), None);
    }

    #[test]
    fn sizes_our_own_pipe_without_draining_it() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        rustix::io::write(&w, b"hello").unwrap();
        let host = HostRoot::new("/");
        let me = std::process::id() as i32;
        let scan = scan(&host, vec![me], HashSet::new(), None);
        assert_eq!(scan.sizing, "pidfd");
        let ino = rustix::fs::fstat(&r).unwrap().st_ino;
        let p = scan
            .pipes
            .iter()
            .find(|p| p.inode == ino)
            .expect("our pipe");
        assert_eq!(p.size_bytes, Some(65536));
        assert_eq!(p.buffered_bytes, Some(5));
        assert_eq!(p.owner_uid, Some(rustix::process::geteuid().as_raw()));
        assert_eq!(p.holders.len(), 2, "both ends: {:?}", p.holders);
        let mut buf = [0u8; 8];
        assert_eq!(
            rustix::io::read(&r, &mut buf).unwrap(),
            5,
            "still all there"
        );
    }
}

#[cfg(test)]
mod fallback_tests {
    use super::*;

    /// Kernels before 5.6 have no pidfd_getfd: the scan opens the `/proc` link instead.
    #[test]
    fn without_pidfd_the_proc_link_is_opened_non_blocking() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        rustix::pipe::fcntl_setpipe_size(&w, 8192).unwrap();
        rustix::io::write(&w, b"abc").unwrap();
        let ino = rustix::fs::fstat(&r).unwrap().st_ino;
        let host = HostRoot::new("/");
        let me = std::process::id() as i32;
        let wfd = std::os::fd::AsRawFd::as_raw_fd(&w);
        let mut no_pidfd = Some(Err(rustix::io::Errno::NOSYS));
        let Ok((s, fallback)) = size_pipe(&host, me, wfd, ino, &mut no_pidfd) else {
            panic!("sized through /proc");
        };
        assert!(fallback);
        assert_eq!((s.size, s.buffered), (8192, Some(3)));
        let mut buf = [0u8; 8];
        assert_eq!(
            rustix::io::read(&r, &mut buf).unwrap(),
            3,
            "nothing was consumed"
        );
    }
}
