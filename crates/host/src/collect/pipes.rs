//! Pipes held by processes: which pipe inodes each process has open, who owns each pipe
//! (the uid its buffers are charged to) and how big it is.
//!
//! The kernel charges pipe buffers per user (`pipe->user`, the creator's `user_struct`,
//! fs/pipe.c `account_pipe_buffers`) and exposes no per-user total. Past
//! `fs.pipe-user-pages-soft` a new pipe of an unprivileged user gets 2 pages instead of 16
//! (`too_many_pipe_buffers_soft`), and a process writing more than that blocks — incident 1's
//! `runc init`. This module rebuilds the per-user view: every `pipe:[INODE]` link under
//! `/proc/*/fd` (read by the process scan, in the same pass that counts each process's fds),
//! one entry per inode, sized once through one holder's fd.
//!
//! Reading another process's pipe without side effects: `pidfd_open` + `pidfd_getfd` gives
//! us a new fd on the same open file (no new reader or writer is registered on the pipe);
//! `fstat` gives the inode's owner, `F_GETPIPE_SZ` its size, `FIONREAD` the bytes waiting.
//! Only when pidfd is unavailable (kernel < 5.6) do we open `/proc/PID/fd/N` read-only and
//! non-blocking, which adds a reader while it is open. Processes in D state are not
//! touched (their links are read, their fds are not duplicated).

use super::per_pid::for_each_pid;
use crate::fs::HostFs;
use crate::kernel::{Kernel, PipeSize, PipeSizer, SizeError};
use node_doctor_core::model::unavailable::push_capped;
use node_doctor_core::model::{Kind, Pipe, PipeEnd, PipeScan, Sizing, Unavailable};
use rustix::io::Errno;
use std::collections::{BTreeMap, HashSet};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

const MAX_HOLDERS: usize = 32;
const MAX_PROBLEMS: usize = 50;
/// Distinct pipes kept at most (a node leaking pipes by the million stays bounded).
pub const MAX_PIPES: usize = 200_000;
/// Holders tried in turn for one pipe when the first has closed it or exited meanwhile.
const SIZING_ROUNDS: usize = 3;

/// Groups the pipe ends the process scan found by inode and sizes each pipe once, through
/// one holder's fd. `dont_touch` are pids whose fds must not be duplicated (processes in D
/// state). Sizing runs on the per-pid workers with the deadline; a holder that closed the
/// pipe meanwhile hands it to the next one.
pub fn size(
    fs: &dyn HostFs,
    kernel: &dyn Kernel,
    ends: Vec<(u64, PipeEnd)>,
    dont_touch: &HashSet<i32>,
    deadline: Option<Instant>,
) -> PipeScan {
    let mut out = PipeScan::default();
    let mut by_inode: BTreeMap<u64, Pipe> = BTreeMap::new();
    for (inode, end) in ends {
        if by_inode.len() >= MAX_PIPES && !by_inode.contains_key(&inode) {
            out.not_kept = out.not_kept.saturating_add(1);
            continue;
        }
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
            p.holders_not_kept = p.holders_not_kept.saturating_add(1);
        }
    }
    for p in by_inode.values_mut() {
        p.holders.sort_unstable();
    }
    let sizer: Arc<dyn PipeSizer> = match kernel.pipe_sizer(fs) {
        Ok(s) => Arc::from(s),
        Err(why) => {
            out.sizing = Sizing::None;
            out.why_unsized = Some(why);
            out.pipes = by_inode.into_values().collect();
            return out;
        }
    };

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
            if let Some(h) = by_inode
                .get(&inode)
                .and_then(|p| candidates(p).get(next).copied())
            {
                work.entry(h.pid).or_default().push((h.fd, inode, next));
            }
        }
        if work.is_empty() {
            break;
        }
        let pids: Vec<i32> = work.keys().copied().collect();
        let work = Arc::new(work);
        let s = sizer.clone();
        let run = for_each_pid(pids, deadline, move |pid| {
            let mine = work.get(&pid)?;
            let fds: Vec<(i32, u64)> = mine.iter().map(|&(fd, inode, _)| (fd, inode)).collect();
            let sized = s.size(pid, &fds);
            Some(
                mine.iter()
                    .zip(sized)
                    .map(|(&(_, inode, round), r)| (inode, round, r))
                    .collect::<Vec<_>>(),
            )
        });
        pending.clear();
        for results in run.results {
            for (inode, next, result) in results {
                match result {
                    Ok(sz) => {
                        fallback |= sz.fallback;
                        if let Some(p) = by_inode.get_mut(&inode) {
                            p.owner_uid = Some(sz.owner_uid);
                            p.size_bytes = Some(sz.size_bytes);
                            p.buffered_bytes = sz.buffered_bytes;
                        }
                    }
                    Err(e) => {
                        if let SizeError::Failed(u) = e {
                            push_capped(
                                &mut out.problems,
                                &mut out.problems_not_kept,
                                MAX_PROBLEMS,
                                u,
                            );
                        }
                        pending.push((inode, next.saturating_add(1)));
                    }
                }
            }
        }
        out.skipped_for_deadline = out
            .skipped_for_deadline
            .saturating_add(run.skipped_for_deadline);
        for pid in run.blocked {
            push_capped(
                &mut out.problems,
                &mut out.problems_not_kept,
                MAX_PROBLEMS,
                Unavailable::timeout(
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
        Sizing::ProcOpen
    } else if any_sized || out.pipes.is_empty() {
        sizer.sizing()
    } else {
        out.why_unsized = Some("no pipe could be duplicated (see problems)".into());
        Sizing::None
    };
    out
}

/// Sizes pipes through `pidfd_getfd` duplicates (falling back to `/proc/PID/fd/N`).
pub struct PidfdSizer {
    proc_root: PathBuf,
}

impl PidfdSizer {
    pub fn new(fs: &dyn HostFs) -> Self {
        Self {
            proc_root: fs.real_path("proc"),
        }
    }
}

impl PipeSizer for PidfdSizer {
    fn size(&self, pid: i32, fds: &[(i32, u64)]) -> Vec<Result<PipeSize, SizeError>> {
        use rustix::process::{Pid, PidfdFlags, pidfd_open};
        // One pidfd for all of the process's pipes.
        let pidfd = Pid::from_raw(pid)
            .ok_or(Errno::SRCH)
            .and_then(|p| pidfd_open(p, PidfdFlags::empty()));
        fds.iter()
            .map(|&(fd, inode)| self.size_one(pid, fd, inode, &pidfd))
            .collect()
    }

    fn sizing(&self) -> Sizing {
        Sizing::Pidfd
    }
}

impl PidfdSizer {
    pub(crate) fn size_one(
        &self,
        pid: i32,
        fd: i32,
        inode: u64,
        pidfd: &Result<OwnedFd, Errno>,
    ) -> Result<PipeSize, SizeError> {
        use rustix::process::{PidfdGetfdFlags, pidfd_getfd};
        let dup = match pidfd {
            Ok(pfd) => match pidfd_getfd(pfd.as_fd(), fd, PidfdGetfdFlags::empty()) {
                Ok(d) => Ok((d, false)),
                Err(Errno::NOSYS) => self.open_via_proc(pid, fd).map(|d| (d, true)),
                Err(Errno::BADF | Errno::SRCH) => Err(SizeError::Gone),
                Err(e) => Err(fail(pid, fd, "pidfd_getfd", e)),
            },
            Err(Errno::NOSYS) => self.open_via_proc(pid, fd).map(|d| (d, true)),
            Err(Errno::SRCH) => Err(SizeError::Gone),
            Err(e) => Err(fail(pid, fd, "pidfd_open", *e)),
        }?;
        let (file, fallback) = dup;
        let st = rustix::fs::fstat(&file).map_err(|e| fail(pid, fd, "fstat", e))?;
        if st.st_ino != inode {
            return Err(SizeError::Gone); // the fd number was reused for something else
        }
        let size = rustix::pipe::fcntl_getpipe_size(&file)
            .map_err(|e| fail(pid, fd, "F_GETPIPE_SZ", e))?;
        let buffered = rustix::io::ioctl_fionread(&file).ok();
        Ok(PipeSize {
            owner_uid: st.st_uid,
            size_bytes: size as u64,
            buffered_bytes: buffered,
            fallback,
        })
    }

    /// Fallback without pidfd: a new read-only, non-blocking open of the pipe through its
    /// `/proc` link. It adds a reader for as long as it is open (a few microseconds).
    fn open_via_proc(&self, pid: i32, fd: i32) -> Result<OwnedFd, SizeError> {
        use rustix::fs::{Mode, OFlags, open};
        open(
            self.proc_root.join(format!("{pid}/fd/{fd}")),
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::NOENT | Errno::SRCH => SizeError::Gone,
            e => fail(pid, fd, "open", e),
        })
    }
}

fn fail(pid: i32, fd: i32, what: &str, e: Errno) -> SizeError {
    SizeError::Failed(Unavailable::new(
        &format!("proc/{pid}/fd/{fd}"),
        if e == Errno::ACCESS || e == Errno::PERM {
            Kind::Denied
        } else {
            Kind::Other
        },
        format!("{what}: {e}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Host;

    #[test]
    fn sizes_our_own_pipe_without_draining_it() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        rustix::io::write(&w, b"hello").unwrap();
        let host = Host::open("/").unwrap();
        let me = std::process::id() as i32;
        let (ends, _) = super::super::processes::pipe_ends(&host.fs, vec![me], None);
        let scan = size(&*host.fs, &*host.kernel, ends, &HashSet::new(), None);
        assert_eq!(scan.sizing, Sizing::Pidfd);
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

    /// Kernels before 5.6 have no pidfd_getfd: the scan opens the `/proc` link instead.
    #[test]
    fn without_pidfd_the_proc_link_is_opened_non_blocking() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        rustix::pipe::fcntl_setpipe_size(&w, 8192).unwrap();
        rustix::io::write(&w, b"abc").unwrap();
        let ino = rustix::fs::fstat(&r).unwrap().st_ino;
        let fs = crate::fs::RealFs::new("/").unwrap();
        let sizer = PidfdSizer::new(&fs);
        let me = std::process::id() as i32;
        let wfd = std::os::fd::AsRawFd::as_raw_fd(&w);
        let s = sizer
            .size_one(me, wfd, ino, &Err(Errno::NOSYS))
            .expect("sized through /proc");
        assert!(s.fallback);
        assert_eq!((s.size_bytes, s.buffered_bytes), (8192, Some(3)));
        let mut buf = [0u8; 8];
        assert_eq!(
            rustix::io::read(&r, &mut buf).unwrap(),
            3,
            "nothing was consumed"
        );
    }
}
