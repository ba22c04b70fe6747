//! Pipes held by processes: which pipe inodes each process has open, who owns each pipe
//! (the uid its buffers are charged to) and how big it is.
//!
//! The kernel charges pipe buffers per user (`pipe->user`, the creator's `user_struct`,
//! fs/pipe.c `account_pipe_buffers`) and exposes no per-user total. Past
//! `fs.pipe-user-pages-soft` a new pipe of an unprivileged user gets 2 pages instead of 16
//! (`too_many_pipe_buffers_soft`), and a process writing more than that blocks — incident 1's
//! `runc init`. This module rebuilds the per-user view: every `pipe:[INODE]` link under
//! `/proc/*/fd` (read by the process scan, in the same pass that counts each process's fds),
//! one entry per inode, sized once through a duplicate of one holder's fd.
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
use std::sync::Arc;
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
    /// Pipes left unsized because the deadline passed first.
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
/// Holders tried in turn for one pipe when the first has closed it or exited meanwhile.
const SIZING_ROUNDS: usize = 3;

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

/// Groups the pipe ends the process scan found by inode and sizes each pipe once, through
/// one holder's fd. `dont_touch` are pids whose fds must not be duplicated (processes in D
/// state). Sizing runs on the per-pid workers with the deadline; a holder that closed the
/// pipe meanwhile hands it to the next one.
pub fn size(
    host: &HostRoot,
    ends: Vec<(u64, PipeEnd)>,
    dont_touch: &HashSet<i32>,
    deadline: Option<Instant>,
) -> PipeScan {
    let mut out = PipeScan::default();
    let mut by_inode: BTreeMap<u64, Pipe> = BTreeMap::new();
    for (inode, end) in ends {
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
    for p in by_inode.values_mut() {
        p.holders.sort_unstable();
    }
    if let Err(why) = sizing_possible(host) {
        out.sizing = "none".into();
        out.why_unsized = Some(why);
        out.pipes = by_inode.into_values().collect();
        return out;
    }

    let candidates = |p: &Pipe| -> Vec<PipeEnd> {
        p.holders
            .iter()
            .filter(|h| !dont_touch.contains(&h.pid))
            .copied()
            .collect()
    };
    let mut fallback = false;
    let mut pending: Vec<(u64, usize)> = by_inode.keys().map(|&i| (i, 0)).collect();
    for _ in 0..SIZING_ROUNDS {
        // This round's holder for each pending pipe, grouped by holder pid.
        let mut work: BTreeMap<i32, Vec<(i32, u64, usize)>> = BTreeMap::new();
        for &(inode, next) in &pending {
            if let Some(h) = candidates(&by_inode[&inode]).get(next) {
                work.entry(h.pid).or_default().push((h.fd, inode, next));
            }
        }
        if work.is_empty() {
            break;
        }
        let pids: Vec<i32> = work.keys().copied().collect();
        let work = Arc::new(work);
        let host_c = host.clone();
        let run = for_each_pid(pids, deadline, move |pid| {
            Some(size_for_pid(&host_c, pid, &work[&pid]))
        });
        pending.clear();
        for results in run.results {
            for (inode, next, result) in results {
                match result {
                    Ok((s, fb)) => {
                        fallback |= fb;
                        let p = by_inode.get_mut(&inode).expect("an inode from the map");
                        p.owner_uid = Some(s.uid);
                        p.size_bytes = Some(s.size);
                        p.buffered_bytes = s.buffered;
                    }
                    Err(e) => {
                        if let SizeError::Failed(u) = e {
                            push_problem(&mut out, u);
                        }
                        pending.push((inode, next + 1));
                    }
                }
            }
        }
        out.skipped_for_deadline += run.skipped_for_deadline;
        for pid in run.blocked {
            push_problem(
                &mut out,
                Unavailable::new(
                    &format!("proc/{pid}/fd"),
                    "still blocked at the scan deadline",
                ),
            );
        }
        if run.skipped_for_deadline > 0 {
            break;
        }
    }

    out.pipes = by_inode.into_values().collect();
    let any_sized = out.pipes.iter().any(|p| p.size_bytes.is_some());
    out.sizing = if fallback {
        "proc-open".into()
    } else if any_sized || out.pipes.is_empty() {
        "pidfd".into()
    } else {
        out.why_unsized = Some("no pipe could be duplicated (see problems)".into());
        "none".into()
    };
    out
}

/// Sizes the pipes `work` assigns to `pid` ((fd, inode, round) each), with one pidfd.
fn size_for_pid(
    host: &HostRoot,
    pid: i32,
    work: &[(i32, u64, usize)],
) -> Vec<(u64, usize, SizeResult)> {
    let mut pidfd = None;
    work.iter()
        .map(|&(fd, inode, round)| (inode, round, size_pipe(host, pid, fd, inode, &mut pidfd)))
        .collect()
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

/// A pipe's size and owner, and whether the /proc fallback read it; or why not.
type SizeResult = Result<(Sized, bool), SizeError>;

enum SizeError {
    /// The process or the fd went away: normal churn.
    Gone,
    Failed(Unavailable),
}

fn size_pipe(
    host: &HostRoot,
    pid: i32,
    fd: i32,
    inode: u64,
    pidfd: &mut Option<Result<OwnedFd, rustix::io::Errno>>,
) -> SizeResult {
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
            Err(e) => Err(fail(pid, fd, "pidfd_getfd", e)),
        },
        Err(Errno::NOSYS) => open_via_proc(host, pid, fd).map(|d| (d, true)),
        Err(Errno::SRCH) => Err(SizeError::Gone),
        Err(e) => Err(fail(pid, fd, "pidfd_open", *e)),
    }?;
    let (file, fallback) = dup;
    let st = rustix::fs::fstat(&file).map_err(|e| fail(pid, fd, "fstat", e))?;
    if st.st_ino != inode {
        return Err(SizeError::Gone); // the fd number was reused for something else
    }
    let size =
        rustix::pipe::fcntl_getpipe_size(&file).map_err(|e| fail(pid, fd, "F_GETPIPE_SZ", e))?;
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

fn fail(pid: i32, fd: i32, what: &str, e: rustix::io::Errno) -> SizeError {
    SizeError::Failed(Unavailable::new(
        &format!("proc/{pid}/fd/{fd}"),
        format!("{what}: {e}"),
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
        e => fail(pid, fd, "open", e),
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
        let (ends, _) = crate::host::processes::pipe_ends(&host, vec![me], None);
        let scan = size(&host, ends, &HashSet::new(), None);
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
