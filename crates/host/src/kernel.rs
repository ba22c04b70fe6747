//! The kernel interfaces that are not files: clocks, page size, CLK_TCK, who we are, the
//! kernel log device, and sizing another process's pipes. Behind a trait with a real and a
//! fixture implementation, so a fixture tree replays with its own clock and page size, its
//! own kernel ring and pipe sizes, not the test machine's.

use crate::fs::HostFs;
use node_doctor_core::model::{Kind, Reader, Unavailable};
use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

/// What one read of the kernel log gave.
#[derive(Debug, PartialEq, Eq)]
pub enum KmsgRead {
    /// One record of `n` bytes is in the buffer.
    Record(usize),
    /// Nothing more now.
    Empty,
    /// Our position was overwritten (the ring wrapped): the next read resumes at the oldest
    /// record; the sequence gap says how many were lost.
    Overwritten,
    Failed(String),
}

/// A reader of the kernel's log records (`/dev/kmsg` semantics: one record per read).
pub trait KmsgReader: Send {
    fn read(&mut self, buf: &mut [u8]) -> KmsgRead;
    /// A descriptor to wait on for new records (poll/inotify), when there is one.
    fn pollable(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        None
    }
    /// How the log is read: "kmsg" or "fixture".
    fn via(&self) -> &'static str;
}

/// A pipe's owner, size and fill, read without disturbing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipeSize {
    pub owner_uid: u32,
    pub size_bytes: u64,
    pub buffered_bytes: Option<u64>,
    /// Read through the `/proc/PID/fd/N` fallback (kernels without pidfd_getfd).
    pub fallback: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SizeError {
    /// The process or the fd went away, or the fd number now names another file.
    Gone,
    Failed(Unavailable),
}

/// Sizes the pipes of one process at a time.
pub trait PipeSizer: Send + Sync {
    /// `fds`: (fd, inode) of the pipes to size in `pid`.
    fn size(&self, pid: i32, fds: &[(i32, u64)]) -> Vec<Result<PipeSize, SizeError>>;
    /// How sizes are read (for the snapshot's `sizing`).
    fn sizing(&self) -> node_doctor_core::model::Sizing;
}

pub trait Kernel: Send + Sync {
    /// Wall-clock time, ms since the epoch.
    fn now_ms(&self) -> u64;
    /// Wall-clock time of boot, ms (kmsg stamps records with time since boot).
    fn boot_wall_ms(&self) -> Option<u64>;
    fn page_size(&self) -> u64;
    fn clock_ticks_per_sec(&self) -> u64;
    fn reader(&self) -> Reader;
    fn open_kmsg(&self) -> Result<Box<dyn KmsgReader>, Unavailable>;
    /// A pipe sizer, or why pipes cannot be sized on this root.
    fn pipe_sizer(&self, fs: &dyn HostFs) -> Result<Box<dyn PipeSizer>, String>;
    /// What a fixture tree's CRI socket answers (its descriptor's `cri`), replayed instead
    /// of dialing a socket; `None` on a live host: the socket is asked.
    fn cri_recording(&self) -> Option<node_doctor_core::model::CriRecording> {
        None
    }
    /// Whether sockets under the root may be dialed (not in a fixture tree: a socket file
    /// there answers nothing, and its recording is what the runtime answered).
    fn dials_sockets(&self) -> bool {
        true
    }
}

/// The machine node-doctor runs on.
pub struct RealKernel {
    root: PathBuf,
}

impl RealKernel {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
}

fn realtime_ms() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
    timespec_ms(t)
        .and_then(|ms| u64::try_from(ms).ok())
        .unwrap_or(0)
}

fn timespec_ms(t: rustix::time::Timespec) -> Option<i128> {
    i128::from(t.tv_sec)
        .checked_mul(1000)?
        .checked_add(i128::from(t.tv_nsec) / 1_000_000)
}

/// `/dev/kmsg` is character device 1:11 (drivers/char/mem.c `devlist`).
const KMSG_MAJOR: u32 = 1;
const KMSG_MINOR: u32 = 11;

struct DevKmsg {
    fd: OwnedFd,
}

impl KmsgReader for DevKmsg {
    fn read(&mut self, buf: &mut [u8]) -> KmsgRead {
        loop {
            match rustix::io::read(&self.fd, &mut *buf) {
                Ok(0) | Err(Errno::AGAIN) => return KmsgRead::Empty,
                Ok(n) => return KmsgRead::Record(n),
                Err(Errno::INTR) => continue,
                Err(Errno::PIPE) => return KmsgRead::Overwritten,
                Err(e) => return KmsgRead::Failed(format!("/dev/kmsg: read: {e}")),
            }
        }
    }

    fn pollable(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        Some(self.fd.as_fd())
    }

    fn via(&self) -> &'static str {
        "kmsg"
    }
}

impl Kernel for RealKernel {
    fn now_ms(&self) -> u64 {
        realtime_ms()
    }

    /// Now minus `CLOCK_BOOTTIME` (the clock kmsg stamps with, give or take suspend).
    fn boot_wall_ms(&self) -> Option<u64> {
        use rustix::time::{ClockId, clock_gettime};
        let now = timespec_ms(clock_gettime(ClockId::Realtime))?;
        let up = timespec_ms(clock_gettime(ClockId::Boottime))?;
        u64::try_from(now.checked_sub(up)?).ok()
    }

    fn page_size(&self) -> u64 {
        rustix::param::page_size() as u64
    }

    fn clock_ticks_per_sec(&self) -> u64 {
        rustix::param::clock_ticks_per_second()
    }

    fn reader(&self) -> Reader {
        Reader {
            euid: rustix::process::geteuid().as_raw(),
            pid: rustix::process::getpid().as_raw_nonzero().get(),
        }
    }

    /// Opens `dev/kmsg` under the root without blocking, and only if it is the kernel's log
    /// device: a `/dev/zero`-like device there would otherwise be read forever. Where the
    /// open is refused (a container without `privileged`: the device cgroup), the ring is
    /// read through `klogctl` instead (CAP_SYSLOG), and `via()` says so.
    fn open_kmsg(&self) -> Result<Box<dyn KmsgReader>, Unavailable> {
        match self.open_dev_kmsg() {
            Err(u) if u.kind == Kind::Denied => match crate::klog::Klog::open() {
                Ok(k) => Ok(Box::new(k)),
                Err(e) => Err(Unavailable::new(
                    "dev/kmsg",
                    Kind::Denied,
                    format!("{}; and {e}", u.reason),
                )),
            },
            r => r,
        }
    }

    /// Only the live procfs of our own PID namespace has pids we can open.
    fn pipe_sizer(&self, fs: &dyn HostFs) -> Result<Box<dyn PipeSizer>, String> {
        let me = self.reader().pid.to_string();
        match fs.read_link("proc/self") {
            Ok(p) if p == me => Ok(Box::new(crate::collect::pipes::PidfdSizer::new(fs))),
            Ok(_) => Err("the root's proc is another PID namespace's: pipe sizes need our own".into()),
            Err(_) => Err(
                "the root's proc is not a live procfs (a fixture or copied tree): pipe sizes can only \
                 be read from live fds"
                    .into(),
            ),
        }
    }
}

impl RealKernel {
    fn open_dev_kmsg(&self) -> Result<Box<dyn KmsgReader>, Unavailable> {
        let rel = "dev/kmsg";
        let root = rustix::fs::open(
            &self.root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Unavailable::io(rel, &e.into()))?;
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
        let fd = match rustix::fs::openat2(&root, rel, flags, Mode::empty(), ResolveFlags::IN_ROOT)
        {
            Err(Errno::NOSYS) => rustix::fs::openat(&root, rel, flags, Mode::empty()),
            r => r,
        }
        .map_err(|e| Unavailable::io(rel, &e.into()))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| Unavailable::io(rel, &e.into()))?;
        let is_kmsg = FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice
            && rustix::fs::major(st.st_rdev) == KMSG_MAJOR
            && rustix::fs::minor(st.st_rdev) == KMSG_MINOR;
        if !is_kmsg {
            return Err(Unavailable::new(
                rel,
                Kind::NotRegular,
                format!(
                    "not the kernel log device (char 1:11), found {}: not read",
                    describe_mode(&st)
                ),
            ));
        }
        Ok(Box::new(DevKmsg { fd }))
    }
}

fn describe_mode(st: &rustix::fs::Stat) -> String {
    match FileType::from_raw_mode(st.st_mode) {
        FileType::CharacterDevice => format!(
            "char device {}:{}",
            rustix::fs::major(st.st_rdev),
            rustix::fs::minor(st.st_rdev)
        ),
        FileType::BlockDevice => "a block device".into(),
        FileType::Fifo => "a FIFO".into(),
        FileType::RegularFile => "a regular file".into(),
        FileType::Directory => "a directory".into(),
        FileType::Socket => "a socket".into(),
        _ => "something else".into(),
    }
}
