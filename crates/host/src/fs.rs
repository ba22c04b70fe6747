//! The one seam to the host's files: every read goes through a [`HostFs`] rooted at the
//! host root (`/` on a node, `/host` in a DaemonSet, a fixture tree in tests). No module
//! spells an absolute `/proc` or `/sys`: paths are relative to the root ("proc/1/stat").
//!
//! Reads are safe on a sick node:
//! - opened `O_NONBLOCK | O_NOCTTY`, and only regular files are read: a FIFO, socket or
//!   device where a file should be is refused ([`Kind::NotRegular`]) instead of blocking
//!   forever or reading endlessly (`/dev/zero` in place of a sysctl);
//! - every read is capped; a file over its cap is [`Kind::Truncated`] (with what was read,
//!   for readers that can use a prefix), never silently cut;
//! - paths resolve inside the root (`openat2` with `RESOLVE_IN_ROOT`): an absolute symlink
//!   in the host's tree points into the host, not into the reader's own container;
//! - calls that can block in the kernel on a dead server (`statvfs`, `lstat` of a FUSE or
//!   NFS mount point) are marked so; callers run them through [`crate::blocking`].

use node_doctor_core::model::{Kind, Rlimit, Unavailable};
use rustix::fs::{Dir, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// Default cap for a whole-file read: procfs and sysfs files are small.
pub const DEFAULT_CAP: usize = 1 << 20;
/// Cap for files that legitimately grow with the host (mountinfo on a node leaking mounts,
/// the dpkg database): past it the file is itself the symptom.
pub const LARGE_CAP: usize = 16 << 20;
/// Cap for one sysctl value.
pub const SYSCTL_CAP: usize = 64 << 10;

/// A directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub kind: EntryKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File,
    Symlink,
    Other,
}

/// A directory's entries (without `.` and `..`), at most the cap asked for.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub entries: Vec<Entry>,
    /// More entries than the cap: the rest were not listed.
    pub truncated: bool,
}

/// `statvfs` of a filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct FsStat {
    pub block_size: u64,
    pub blocks: u64,
    pub blocks_free: u64,
    pub blocks_avail: u64,
    pub files: u64,
    pub files_free: u64,
}

/// Why a per-process read failed: the process is gone (normal churn), or the file is bad.
#[derive(Debug, Clone, PartialEq)]
pub enum ProcError {
    Vanished,
    Bad(Unavailable),
}

/// The pipes and count of a process's `fd/`.
#[derive(Debug, Clone, Default)]
pub struct FdListing {
    /// Entries that are fd numbers.
    pub count: u64,
    /// `pipe:[N]` links as (fd, inode), when asked for.
    pub pipes: Vec<(i32, u64)>,
    /// With the links read: one may be an open deleted file (it ends in " (deleted)", or
    /// was too long to read whole, or links stopped being read at the bound).
    pub maybe_deleted: bool,
}

/// What `lstat` says of a file, for listings that need sizes and times without opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileMeta {
    pub kind: Option<EntryKind>,
    /// Apparent size (`st_size`) and bytes on disk (`st_blocks` × 512).
    pub size: u64,
    pub bytes: u64,
    pub mtime_ms: Option<u64>,
    /// Last status change (`st_ctime`), in ns: unlike the mtime, no call can set it back.
    pub ctime_ns: Option<i128>,
}

/// A deleted file a process still holds open (`fd/N -> /path (deleted)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedFd {
    pub fd: i32,
    /// The path it had (the link text without " (deleted)").
    pub path: String,
    /// `major:minor` of its filesystem.
    pub device: String,
    pub size: u64,
    /// Bytes on disk (`st_blocks` × 512).
    pub bytes: u64,
}

/// A process's open deleted files, and how many fd links were read to find them.
#[derive(Debug, Clone, Default)]
pub struct DeletedFdListing {
    pub files: Vec<DeletedFd>,
    pub links_read: u64,
    /// More fds than the bound: the rest were not looked at.
    pub truncated: bool,
}

/// The suffix the kernel appends to the link of an unlinked file (fs/d_path.c `d_path`).
pub const DELETED_SUFFIX: &str = " (deleted)";

/// `/proc/PID` opened once; its files are read relative to it.
pub trait ProcDir: Send {
    fn pid(&self) -> i32;
    /// A whole file of the process, at most `cap` bytes.
    fn read(&self, name: &str, cap: usize) -> Result<Vec<u8>, ProcError>;
    /// Counts `fd/` entries and, with `pipes`, reads each link and keeps the pipes (at most
    /// `max_links` of them).
    fn list_fds(&self, pipes: bool, max_links: usize) -> Result<FdListing, ProcError>;
    fn read_link(&self, name: &str) -> Option<String>;
    /// `RLIMIT_NOFILE` and `RLIMIT_CORE` asked of the kernel (prlimit(2) with no new limit)
    /// instead of read from the `limits` file, when this seam can: `None` means read the
    /// file. The kernel formats all 16 limits as text for every `limits` read
    /// (fs/proc/base.c `proc_pid_limits`); two syscalls cost about a third of opening and
    /// reading it (bench/limits_read.c). prlimit names the process by pid, so a caller must
    /// confirm afterwards, through this directory, that the process is still the one it
    /// opened (a successful read of its `stat` does: `/proc/PID` stays tied to the task it
    /// was opened for, and a pid is not reused while that task exists).
    fn syscall_limits(&self) -> Option<(Rlimit, Rlimit)> {
        None
    }
    /// The open deleted files among the first `max_links` fds: each link read, and those
    /// ending in " (deleted)" `stat`ed through `fd/N` (which resolves the link to the open
    /// file without opening anything) for their size and device. May block on a dead FUSE
    /// or NFS server like any stat: callers run it on deadline-bounded workers, and `skip`
    /// names the paths not to stat (those under FUSE or network mounts).
    fn deleted_fds(
        &self,
        max_links: usize,
        skip: &dyn Fn(&str) -> bool,
    ) -> Result<DeletedFdListing, ProcError>;
}

/// The host's filesystem, under its root.
pub trait HostFs: Send + Sync {
    /// The root directory, as given.
    fn root(&self) -> &Path;
    /// A regular file, whole, up to `cap` bytes; larger is [`Kind::Truncated`].
    fn read(&self, rel: &str, cap: usize) -> Result<Vec<u8>, Unavailable> {
        match self.read_prefix(rel, cap)? {
            (b, false) => Ok(b),
            (_, true) => Err(Unavailable::truncated(rel, cap)),
        }
    }
    /// A regular file up to `cap` bytes, and whether there was more.
    fn read_prefix(&self, rel: &str, cap: usize) -> Result<(Vec<u8>, bool), Unavailable>;
    fn read_dir(&self, rel: &str, cap: usize) -> Result<Listing, Unavailable>;
    fn read_link(&self, rel: &str) -> Result<String, Unavailable>;
    /// The type of `rel` without following a last symlink. May block on a dead mount.
    fn entry_kind(&self, rel: &str) -> Result<EntryKind, Unavailable>;
    /// May block on a dead FUSE/NFS mount: run it through [`crate::blocking`].
    fn statvfs(&self, rel: &str) -> Result<FsStat, Unavailable>;
    /// The numeric entries of `proc/`, sorted.
    fn list_pids(&self) -> Result<Vec<i32>, Unavailable>;
    fn open_proc(&self, pid: i32) -> Result<Box<dyn ProcDir>, ProcError>;
    /// A regular file opened for reading without blocking (log followers keep it).
    fn open_file(&self, rel: &str) -> Result<std::fs::File, Unavailable>;
    /// Identity (device, inode) and size of a regular file, for followers.
    fn file_identity(&self, rel: &str) -> Result<(u64, u64, u64), Unavailable>;
    /// `lstat` of `rel` (a last symlink not followed), without opening it. May block on a
    /// dead mount.
    fn metadata(&self, rel: &str) -> Result<FileMeta, Unavailable>;
    /// The recorded duration of a timed read of `rel`, for a replayed host (fixture tree);
    /// `None` on a live one, where the read is timed for real.
    fn recorded_latency(&self, _rel: &str) -> Option<std::time::Duration> {
        None
    }
    /// Where `rel` is in the reader's own namespace, for libraries that take a path (the
    /// journal reader). The path has passed no check: prefer the methods above.
    fn real_path(&self, rel: &str) -> PathBuf {
        self.root().join(rel.trim_start_matches('/'))
    }
}

/// Reads `rel` as text (invalid UTF-8 replaced).
pub fn read_string(fs: &dyn HostFs, rel: &str, cap: usize) -> Result<String, Unavailable> {
    fs.read(rel, cap)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// A one-line file (a sysctl), trailing newline trimmed.
pub fn read_trimmed(fs: &dyn HostFs, rel: &str) -> Result<String, Unavailable> {
    read_string(fs, rel, SYSCTL_CAP).map(|s| s.trim_end_matches('\n').to_string())
}

/// `rel` with every symlink along it resolved inside the root, as `RESOLVE_IN_ROOT` resolves
/// the opens above: for the one caller that must hand the kernel a path instead of an fd
/// (connect() of a unix socket, `cri.rs`: there is no connectat). An absolute target starts
/// again from the root — `var/run -> /run` is the host's `/run`, not the reader's own
/// (kubeadm's endpoint is `unix:///var/run/containerd/containerd.sock`); `..` stops at the
/// root. A component that does not exist ends the walk (the rest is kept as written: the
/// caller's own open or connect reports it). More than 40 links (the kernel's MAXSYMLINKS)
/// is ELOOP. Returns the resolved path relative to the root.
pub fn resolve_in_root(fs: &dyn HostFs, rel: &str) -> Result<String, Unavailable> {
    const MAX_LINKS: u32 = 40;
    let mut done: Vec<String> = Vec::new();
    let mut todo: std::collections::VecDeque<String> = rel.split('/').map(str::to_string).collect();
    let mut links = 0u32;
    while let Some(c) = todo.pop_front() {
        match c.as_str() {
            "" | "." => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        done.push(c);
        let path = done.join("/");
        match fs.entry_kind(&path) {
            Ok(EntryKind::Symlink) => {}
            Ok(_) => continue,
            Err(_) => {
                done.extend(todo.drain(..).filter(|c| !c.is_empty() && c != "."));
                break;
            }
        }
        links = links.saturating_add(1);
        if links > MAX_LINKS {
            return Err(Unavailable::new(
                rel,
                Kind::Other,
                format!("more than {MAX_LINKS} symbolic links resolving {rel}"),
            ));
        }
        let target = fs.read_link(&path)?;
        done.pop();
        if target.starts_with('/') {
            done.clear();
        }
        for t in target.split('/').rev() {
            todo.push_front(t.to_string());
        }
    }
    Ok(done.join("/"))
}

fn errno_unavailable(rel: &str, e: Errno) -> Unavailable {
    Unavailable::io(rel, &io::Error::from(e))
}

fn file_type_name(t: FileType) -> &'static str {
    match t {
        FileType::Fifo => "a FIFO",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        FileType::Socket => "a socket",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symlink",
        _ => "not a regular file",
    }
}

/// Reads from `fd` until EOF or `cap` bytes; returns the bytes and whether more remained.
/// With `single_record`, a short read is taken as the end (see below).
pub(crate) fn read_fd_capped(
    fd: impl AsFd,
    cap: usize,
    single_record: bool,
) -> io::Result<(Vec<u8>, bool)> {
    let mut buf: Vec<u8> = Vec::with_capacity(cap.clamp(1, 8192).saturating_add(1));
    let mut chunk = [0u8; 8192];
    loop {
        let n = match rustix::io::read(&fd, &mut chunk[..]) {
            Ok(n) => n,
            Err(Errno::INTR) => continue,
            // O_NONBLOCK on something that has no data now: what we have is all there is.
            Err(Errno::AGAIN) => return Ok((buf, false)),
            Err(e) => return Err(io::Error::from(e)),
        };
        if n == 0 {
            return Ok((buf, false));
        }
        let got = chunk.get(..n).unwrap_or(&[]);
        let room = cap.saturating_sub(buf.len());
        if got.len() > room {
            buf.extend_from_slice(got.get(..room).unwrap_or(&[]));
            return Ok((buf, true));
        }
        buf.extend_from_slice(got);
        // A per-process procfs file (`stat`, `status`, `limits`, `cgroup`, `wchan`, `stack`:
        // seq_file `single_open`, fs/proc/base.c) hands out its whole text in the first read
        // that has room for it, so a short read is its end; skipping the read that would
        // return 0 saves a quarter of the process scan's syscalls. Not so for iterating
        // seq_files (mountinfo stops a read before a record that does not fit), so other
        // files are read to a read of 0.
        if single_record && n < chunk.len() {
            return Ok((buf, false));
        }
    }
}

/// The live filesystem under a root directory.
#[derive(Debug)]
pub struct RealFs {
    root: PathBuf,
    root_fd: OwnedFd,
    /// `proc` under the root, opened once: every process directory is opened relative to it.
    proc_fd: OnceLock<Result<OwnedFd, Errno>>,
    /// Whether pids under that `proc` are pids of our own pid namespace, so prlimit(2) on one
    /// names the same process (see [`RealFs::proc_is_our_pid_namespace`]).
    own_pid_ns: OnceLock<bool>,
}

const READ_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::NONBLOCK)
    .union(OFlags::NOCTTY)
    .union(OFlags::CLOEXEC);

impl RealFs {
    /// Fails when the root is not a directory that can be opened.
    pub fn new(root: impl Into<PathBuf>) -> io::Result<RealFs> {
        let root = root.into();
        let root_fd = rustix::fs::open(
            &root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            io::Error::new(
                io::Error::from(e).kind(),
                format!("{}: {}", root.display(), io::Error::from(e)),
            )
        })?;
        Ok(RealFs {
            root,
            root_fd,
            proc_fd: OnceLock::new(),
            own_pid_ns: OnceLock::new(),
        })
    }

    /// Opens `rel` inside the root: `RESOLVE_IN_ROOT` keeps symlinks inside it (kernels
    /// before 5.6 lack openat2; there it is a plain openat from the root).
    fn open_in_root(&self, rel: &str, flags: OFlags) -> Result<OwnedFd, Errno> {
        let rel = rel.trim_start_matches('/');
        let rel = if rel.is_empty() { "." } else { rel };
        match rustix::fs::openat2(
            &self.root_fd,
            rel,
            flags,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            Err(Errno::NOSYS) => rustix::fs::openat(&self.root_fd, rel, flags, Mode::empty()),
            r => r,
        }
    }

    fn open_regular(&self, rel: &str) -> Result<OwnedFd, Unavailable> {
        let fd = self
            .open_in_root(rel, READ_FLAGS)
            .map_err(|e| errno_unavailable(rel, e))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| errno_unavailable(rel, e))?;
        let t = FileType::from_raw_mode(st.st_mode);
        if t != FileType::RegularFile {
            return Err(Unavailable::not_regular(rel, file_type_name(t)));
        }
        Ok(fd)
    }

    fn proc_fd(&self) -> Result<&OwnedFd, Errno> {
        self.proc_fd
            .get_or_init(|| {
                self.open_in_root("proc", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC)
            })
            .as_ref()
            .map_err(|e| *e)
    }

    /// True when `proc` under the root is a procfs mounted for our own pid namespace (the
    /// node's `/proc`, or a DaemonSet's `/host/proc` with `hostPID: true`), so that a pid read
    /// there names the same process to a syscall taking a pid. `NSpid` in a process's
    /// `status` lists its pid in every namespace from the one the procfs was mounted for down
    /// to its own (fs/proc/array.c `task_state`): one field, our own pid, means the same
    /// namespace. A fixture tree (no procfs) or a container's view of the host's `/proc`
    /// (two fields) is not.
    fn proc_is_our_pid_namespace(&self) -> bool {
        *self.own_pid_ns.get_or_init(|| {
            let Ok(proc_fd) = self.proc_fd() else {
                return false;
            };
            // Only a real procfs: a fixture tree's `proc/self` may be a symlink out of it.
            if !rustix::fs::fstatfs(proc_fd).is_ok_and(|s| s.f_type == rustix::fs::PROC_SUPER_MAGIC)
            {
                return false;
            }
            rustix::fs::openat(proc_fd, "self/status", READ_FLAGS, Mode::empty())
                .ok()
                .and_then(|fd| read_fd_capped(&fd, 64 << 10, true).ok())
                .is_some_and(|(b, _)| nspid_is_only(&b, std::process::id()))
        })
    }
}

/// Set once a security module refused prlimit(2) (EACCES): this process asks no more.
static PRLIMIT_DENIED_BY_LSM: AtomicBool = AtomicBool::new(false);

/// `NSpid:` of a `status` text is exactly `pid`.
fn nspid_is_only(status: &[u8], pid: u32) -> bool {
    let text = String::from_utf8_lossy(status);
    let Some(line) = text.lines().find_map(|l| l.strip_prefix("NSpid:")) else {
        return false;
    };
    let mut fields = line.split_whitespace();
    fields.next().and_then(|f| f.parse::<u32>().ok()) == Some(pid) && fields.next().is_none()
}

fn list_dir_fd(fd: OwnedFd, rel: &str, cap: usize) -> Result<Listing, Unavailable> {
    let mut dir = Dir::new(fd).map_err(|e| errno_unavailable(rel, e))?;
    let mut out = Listing::default();
    while let Some(e) = dir.read() {
        let e = e.map_err(|e| errno_unavailable(rel, e))?;
        let name = e.file_name().to_string_lossy();
        if name == "." || name == ".." {
            continue;
        }
        if out.entries.len() >= cap {
            out.truncated = true;
            break;
        }
        out.entries.push(Entry {
            name: name.into_owned(),
            kind: match e.file_type() {
                FileType::Directory => EntryKind::Dir,
                FileType::RegularFile => EntryKind::File,
                FileType::Symlink => EntryKind::Symlink,
                _ => EntryKind::Other,
            },
        });
    }
    Ok(out)
}

impl HostFs for RealFs {
    fn root(&self) -> &Path {
        &self.root
    }

    fn read_prefix(&self, rel: &str, cap: usize) -> Result<(Vec<u8>, bool), Unavailable> {
        let fd = self.open_regular(rel)?;
        read_fd_capped(&fd, cap, false).map_err(|e| Unavailable::io(rel, &e))
    }

    fn read_dir(&self, rel: &str, cap: usize) -> Result<Listing, Unavailable> {
        let fd = self
            .open_in_root(
                rel,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NONBLOCK,
            )
            .map_err(|e| errno_unavailable(rel, e))?;
        list_dir_fd(fd, rel, cap)
    }

    fn read_link(&self, rel: &str) -> Result<String, Unavailable> {
        let rel_t = rel.trim_start_matches('/');
        let (parent, name) = rel_t.rsplit_once('/').unwrap_or(("", rel_t));
        let dir = self
            .open_in_root(parent, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC)
            .map_err(|e| errno_unavailable(rel, e))?;
        rustix::fs::readlinkat(&dir, name, Vec::new())
            .map(|c| c.to_string_lossy().into_owned())
            .map_err(|e| errno_unavailable(rel, e))
    }

    fn entry_kind(&self, rel: &str) -> Result<EntryKind, Unavailable> {
        let fd = self
            .open_in_root(rel, OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC)
            .map_err(|e| errno_unavailable(rel, e))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| errno_unavailable(rel, e))?;
        Ok(match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => EntryKind::Dir,
            FileType::RegularFile => EntryKind::File,
            FileType::Symlink => EntryKind::Symlink,
            _ => EntryKind::Other,
        })
    }

    fn statvfs(&self, rel: &str) -> Result<FsStat, Unavailable> {
        let fd = self
            .open_in_root(rel, OFlags::PATH | OFlags::CLOEXEC)
            .map_err(|e| errno_unavailable(rel, e))?;
        let v = rustix::fs::fstatvfs(&fd).map_err(|e| errno_unavailable(rel, e))?;
        Ok(FsStat {
            block_size: v.f_frsize,
            blocks: v.f_blocks,
            blocks_free: v.f_bfree,
            blocks_avail: v.f_bavail,
            files: v.f_files,
            files_free: v.f_ffree,
        })
    }

    fn list_pids(&self) -> Result<Vec<i32>, Unavailable> {
        let proc_fd = self.proc_fd().map_err(|e| errno_unavailable("proc", e))?;
        let fd = rustix::fs::openat(
            proc_fd,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| errno_unavailable("proc", e))?;
        let mut dir = Dir::new(fd).map_err(|e| errno_unavailable("proc", e))?;
        let mut pids = Vec::new();
        while let Some(e) = dir.read() {
            let Ok(e) = e else { break };
            if let Some(pid) = e
                .file_name()
                .to_str()
                .ok()
                .and_then(|n| n.parse::<i32>().ok())
                && pid > 0
            {
                pids.push(pid);
            }
        }
        pids.sort_unstable();
        Ok(pids)
    }

    fn open_proc(&self, pid: i32) -> Result<Box<dyn ProcDir>, ProcError> {
        let proc_fd = self
            .proc_fd()
            .map_err(|e| ProcError::Bad(errno_unavailable("proc", e)))?;
        let fd = rustix::fs::openat(
            proc_fd,
            pid.to_string(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| classify(&format!("proc/{pid}"), e))?;
        Ok(Box::new(RealProcDir {
            fd,
            pid,
            prlimit: self.proc_is_our_pid_namespace(),
        }))
    }

    fn open_file(&self, rel: &str) -> Result<std::fs::File, Unavailable> {
        self.open_regular(rel).map(std::fs::File::from)
    }

    fn file_identity(&self, rel: &str) -> Result<(u64, u64, u64), Unavailable> {
        let fd = self.open_regular(rel)?;
        let st = rustix::fs::fstat(&fd).map_err(|e| errno_unavailable(rel, e))?;
        Ok((st.st_dev, st.st_ino, u64::try_from(st.st_size).unwrap_or(0)))
    }

    fn metadata(&self, rel: &str) -> Result<FileMeta, Unavailable> {
        let fd = self
            .open_in_root(rel, OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC)
            .map_err(|e| errno_unavailable(rel, e))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| errno_unavailable(rel, e))?;
        Ok(meta_of(&st))
    }
}

fn meta_of(st: &rustix::fs::Stat) -> FileMeta {
    let mtime_ms = i128::from(st.st_mtime)
        .checked_mul(1000)
        .and_then(|ms| ms.checked_add(i128::from(st.st_mtime_nsec) / 1_000_000))
        .and_then(|ms| u64::try_from(ms).ok());
    FileMeta {
        kind: Some(match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => EntryKind::Dir,
            FileType::RegularFile => EntryKind::File,
            FileType::Symlink => EntryKind::Symlink,
            _ => EntryKind::Other,
        }),
        size: u64::try_from(st.st_size).unwrap_or(0),
        bytes: u64::try_from(st.st_blocks).unwrap_or(0).saturating_mul(512),
        mtime_ms,
        ctime_ns: i128::from(st.st_ctime)
            .checked_mul(1_000_000_000)
            .and_then(|ns| ns.checked_add(i128::from(st.st_ctime_nsec))),
    }
}

/// ENOENT: the /proc/PID directory is gone. ESRCH: the task died while the file was read.
fn classify(rel: &str, e: Errno) -> ProcError {
    if e == Errno::NOENT || e == Errno::SRCH {
        ProcError::Vanished
    } else {
        ProcError::Bad(errno_unavailable(rel, e))
    }
}

struct RealProcDir {
    fd: OwnedFd,
    pid: i32,
    /// The pid is one of our namespace's: prlimit(2) may be asked.
    prlimit: bool,
}

impl RealProcDir {
    fn rel(&self, name: &str) -> String {
        format!("proc/{}/{name}", self.pid)
    }
}

impl ProcDir for RealProcDir {
    fn pid(&self) -> i32 {
        self.pid
    }

    fn read(&self, name: &str, cap: usize) -> Result<Vec<u8>, ProcError> {
        // procfs files are regular; O_NONBLOCK keeps a FIFO planted in a tree from blocking,
        // and the cap keeps a device from being read endlessly. No fstat: it would cost a
        // syscall per file on the scan's hot path.
        let fd = rustix::fs::openat(&self.fd, name, READ_FLAGS, Mode::empty())
            .map_err(|e| classify(&self.rel(name), e))?;
        match read_fd_capped(&fd, cap, true) {
            Ok((b, false)) => Ok(b),
            Ok((_, true)) => Err(ProcError::Bad(Unavailable::truncated(&self.rel(name), cap))),
            Err(e) => Err(match e.raw_os_error().map(Errno::from_raw_os_error) {
                Some(errno) => classify(&self.rel(name), errno),
                None => ProcError::Bad(Unavailable::io(&self.rel(name), &e)),
            }),
        }
    }

    fn list_fds(&self, pipes: bool, max_links: usize) -> Result<FdListing, ProcError> {
        use rustix::fs::readlinkat_raw;
        let rel = self.rel("fd");
        let fd = rustix::fs::openat(
            &self.fd,
            "fd",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| classify(&rel, e))?;
        let mut dir = Dir::read_from(&fd).map_err(|e| classify(&rel, e))?;
        let mut out = FdListing::default();
        let mut link = [0u8; 64];
        while let Some(e) = dir.read() {
            let e = e.map_err(|e| classify(&rel, e))?;
            let name = e.file_name().to_bytes();
            if name.is_empty() || !name.iter().all(u8::is_ascii_digit) {
                continue;
            }
            out.count = out.count.saturating_add(1);
            if !pipes {
                continue;
            }
            if out.pipes.len() >= max_links {
                out.maybe_deleted = true;
                continue;
            }
            // A link that fails was closed meanwhile. `readlinkat` on the directory's fd
            // spares a path walk per fd.
            let Ok(len) = readlinkat_raw(&fd, e.file_name(), &mut link[..]) else {
                continue;
            };
            let target = link.get(..len).unwrap_or(&[]);
            // d_path() appends " (deleted)" to an unlinked file's path (fs/d_path.c).
            out.maybe_deleted |= len >= link.len() || target.ends_with(DELETED_SUFFIX.as_bytes());
            if let Some(inode) = pipe_inode(target)
                && let Some(num) = std::str::from_utf8(name).ok().and_then(|n| n.parse().ok())
            {
                out.pipes.push((num, inode));
            }
        }
        Ok(out)
    }

    fn read_link(&self, name: &str) -> Option<String> {
        rustix::fs::readlinkat(&self.fd, name, Vec::new())
            .ok()
            .map(|c| c.to_string_lossy().into_owned())
    }

    fn syscall_limits(&self) -> Option<(Rlimit, Rlimit)> {
        if !self.prlimit || PRLIMIT_DENIED_BY_LSM.load(Ordering::Relaxed) {
            return None;
        }
        // kernel/sys.c `check_prlimit_permission`: without CAP_SYS_RESOURCE in the target's
        // user namespace, the caller's uid and gid must equal all of the target's real,
        // effective and saved ones, else EPERM (no audit record) and the caller reads the
        // file (mode 0444). Past that check an LSM may refuse (SELinux `process:getrlimit`,
        // EACCES) and log a denial: after the first, the scan stops asking, so an enforcing
        // node logs one denial, not one per process per scan.
        let get = |resource| {
            let (mut soft, mut hard) = (0, 0);
            if let Err(e) = rlimit::prlimit(self.pid, resource, None, Some((&mut soft, &mut hard)))
            {
                if e.raw_os_error() == Some(Errno::ACCESS.raw_os_error()) {
                    PRLIMIT_DENIED_BY_LSM.store(true, Ordering::Relaxed);
                }
                return None;
            }
            // RLIM_INFINITY is what `limits` prints as "unlimited".
            let finite = |v: u64| (v != rlimit::INFINITY).then_some(v);
            Some(Rlimit {
                soft: finite(soft),
                hard: finite(hard),
            })
        };
        Some((get(rlimit::Resource::NOFILE)?, get(rlimit::Resource::CORE)?))
    }

    fn deleted_fds(
        &self,
        max_links: usize,
        skip: &dyn Fn(&str) -> bool,
    ) -> Result<DeletedFdListing, ProcError> {
        let rel = self.rel("fd");
        let fd = rustix::fs::openat(
            &self.fd,
            "fd",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| classify(&rel, e))?;
        let mut dir = Dir::read_from(&fd).map_err(|e| classify(&rel, e))?;
        let mut out = DeletedFdListing::default();
        while let Some(e) = dir.read() {
            let e = e.map_err(|e| classify(&rel, e))?;
            let name = e.file_name();
            let Some(num) = name.to_str().ok().and_then(|n| n.parse::<i32>().ok()) else {
                continue;
            };
            if out.links_read >= max_links as u64 {
                out.truncated = true;
                break;
            }
            out.links_read = out.links_read.saturating_add(1);
            // A link that fails was closed meanwhile.
            let Ok(link) = rustix::fs::readlinkat(&fd, name, Vec::new()) else {
                continue;
            };
            let link = link.to_string_lossy();
            let Some(path) = link.strip_suffix(DELETED_SUFFIX) else {
                continue;
            };
            // Only absolute paths are files ("/memfd:x (deleted)" is a memfd: its link does not
            // start with '/memfd' on older kernels, but memfds have no filesystem a df shows).
            if !path.starts_with('/') || path.starts_with("/memfd:") || skip(path) {
                continue;
            }
            // Following the magic link stats the open file itself.
            let Ok(st) = rustix::fs::statat(&fd, name, rustix::fs::AtFlags::empty()) else {
                continue;
            };
            if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
                continue;
            }
            let m = meta_of(&st);
            out.files.push(DeletedFd {
                fd: num,
                path: path.to_string(),
                device: format!(
                    "{}:{}",
                    rustix::fs::major(st.st_dev),
                    rustix::fs::minor(st.st_dev)
                ),
                size: m.size,
                bytes: m.bytes,
            });
        }
        Ok(out)
    }
}

/// `pipe:[123]` → 123.
pub fn pipe_inode(link: &[u8]) -> Option<u64> {
    let rest = link.strip_prefix(b"pipe:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(rest).ok()?.parse().ok()
}

/// A fixture's open deleted files: (device, size, bytes on disk) by (pid, fd).
pub type DeletedAnswers = std::collections::BTreeMap<(i32, i32), (String, u64, u64)>;

/// A fixture tree: the files are real files, but what a tree cannot carry comes from the
/// tree's descriptor: `statvfs` answers (a filesystem's usage), the sizes of files whose
/// content does not matter (a 2 GiB core is an empty file with its size recorded), and the
/// `stat` of open deleted files (the fd link is in the tree, the file it names is gone).
pub struct TreeFs {
    inner: RealFs,
    statvfs: std::collections::BTreeMap<String, FsStat>,
    latency_ms: std::collections::BTreeMap<String, f64>,
    sizes: std::collections::BTreeMap<String, (u64, u64)>,
    deleted: std::sync::Arc<DeletedAnswers>,
}

impl TreeFs {
    pub fn new(inner: RealFs, statvfs: std::collections::BTreeMap<String, FsStat>) -> TreeFs {
        TreeFs {
            inner,
            statvfs,
            latency_ms: Default::default(),
            sizes: Default::default(),
            deleted: Default::default(),
        }
    }

    /// Recorded durations of timed reads by host path, in ms (see `recorded_latency`).
    pub fn with_latency(mut self, latency_ms: std::collections::BTreeMap<String, f64>) -> TreeFs {
        self.latency_ms = latency_ms;
        self
    }

    /// (size, bytes on disk) by host path, for `metadata`.
    pub fn with_sizes(mut self, sizes: std::collections::BTreeMap<String, (u64, u64)>) -> TreeFs {
        self.sizes = sizes;
        self
    }

    /// (device, size, bytes on disk) of open deleted files by (pid, fd).
    pub fn with_deleted(mut self, deleted: DeletedAnswers) -> TreeFs {
        self.deleted = std::sync::Arc::new(deleted);
        self
    }
}

/// A fixture tree's process: files from the tree, open deleted files from the descriptor.
struct TreeProcDir {
    inner: Box<dyn ProcDir>,
    deleted: std::sync::Arc<DeletedAnswers>,
}

impl ProcDir for TreeProcDir {
    fn pid(&self) -> i32 {
        self.inner.pid()
    }
    fn read(&self, name: &str, cap: usize) -> Result<Vec<u8>, ProcError> {
        self.inner.read(name, cap)
    }
    fn list_fds(&self, pipes: bool, max_links: usize) -> Result<FdListing, ProcError> {
        self.inner.list_fds(pipes, max_links)
    }
    fn read_link(&self, name: &str) -> Option<String> {
        self.inner.read_link(name)
    }
    fn deleted_fds(
        &self,
        max_links: usize,
        _skip: &dyn Fn(&str) -> bool,
    ) -> Result<DeletedFdListing, ProcError> {
        let pid = self.pid();
        let mut out = DeletedFdListing::default();
        for ((p, fd), (device, size, bytes)) in
            self.deleted.range((pid, i32::MIN)..=(pid, i32::MAX))
        {
            if *p != pid {
                continue;
            }
            if out.links_read >= max_links as u64 {
                out.truncated = true;
                break;
            }
            out.links_read = out.links_read.saturating_add(1);
            let Some(link) = self.inner.read_link(&format!("fd/{fd}")) else {
                continue;
            };
            let Some(path) = link.strip_suffix(DELETED_SUFFIX) else {
                continue;
            };
            out.files.push(DeletedFd {
                fd: *fd,
                path: path.to_string(),
                device: device.clone(),
                size: *size,
                bytes: *bytes,
            });
        }
        Ok(out)
    }
}

impl HostFs for TreeFs {
    fn root(&self) -> &Path {
        self.inner.root()
    }
    fn read_prefix(&self, rel: &str, cap: usize) -> Result<(Vec<u8>, bool), Unavailable> {
        self.inner.read_prefix(rel, cap)
    }
    fn read_dir(&self, rel: &str, cap: usize) -> Result<Listing, Unavailable> {
        self.inner.read_dir(rel, cap)
    }
    fn read_link(&self, rel: &str) -> Result<String, Unavailable> {
        self.inner.read_link(rel)
    }
    fn entry_kind(&self, rel: &str) -> Result<EntryKind, Unavailable> {
        if self
            .statvfs
            .contains_key(&format!("/{}", rel.trim_start_matches('/')))
        {
            return Ok(EntryKind::Dir);
        }
        self.inner.entry_kind(rel)
    }
    fn recorded_latency(&self, rel: &str) -> Option<std::time::Duration> {
        let key = format!("/{}", rel.trim_start_matches('/'));
        let ms = self.latency_ms.get(&key).copied().unwrap_or(0.0);
        std::time::Duration::try_from_secs_f64(ms / 1000.0).ok()
    }
    fn statvfs(&self, rel: &str) -> Result<FsStat, Unavailable> {
        let key = format!("/{}", rel.trim_start_matches('/'));
        self.statvfs.get(&key).copied().ok_or_else(|| {
            Unavailable::new(rel, Kind::NotFound, "not in the fixture's statvfs table")
        })
    }
    fn list_pids(&self) -> Result<Vec<i32>, Unavailable> {
        self.inner.list_pids()
    }
    fn open_proc(&self, pid: i32) -> Result<Box<dyn ProcDir>, ProcError> {
        Ok(Box::new(TreeProcDir {
            inner: self.inner.open_proc(pid)?,
            deleted: self.deleted.clone(),
        }))
    }
    fn open_file(&self, rel: &str) -> Result<std::fs::File, Unavailable> {
        self.inner.open_file(rel)
    }
    fn file_identity(&self, rel: &str) -> Result<(u64, u64, u64), Unavailable> {
        self.inner.file_identity(rel)
    }
    fn metadata(&self, rel: &str) -> Result<FileMeta, Unavailable> {
        let mut m = self.inner.metadata(rel)?;
        if let Some((size, bytes)) = self.sizes.get(&format!("/{}", rel.trim_start_matches('/'))) {
            m.size = *size;
            m.bytes = *bytes;
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn fifos_devices_and_directories_are_refused_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let fs = RealFs::new(dir.path()).unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.path().join("fifo"),
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        // An absolute symlink resolves inside the root: /dev/zero of the tree, absent.
        symlink("/dev/zero", dir.path().join("zero")).unwrap();
        assert_eq!(fs.read("fifo", 100).unwrap_err().kind, Kind::NotRegular);
        assert_eq!(fs.read("d", 100).unwrap_err().kind, Kind::NotRegular);
        assert_eq!(fs.read("zero", 100).unwrap_err().kind, Kind::NotFound);
        assert_eq!(fs.read("missing", 100).unwrap_err().kind, Kind::NotFound);
    }

    #[test]
    fn paths_handed_to_the_kernel_resolve_their_symlinks_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let fs = RealFs::new(dir.path()).unwrap();
        std::fs::create_dir_all(dir.path().join("run/containerd")).unwrap();
        std::fs::create_dir_all(dir.path().join("var")).unwrap();
        // The host's /var/run -> /run: the host's /run, not the reader's.
        symlink("/run", dir.path().join("var/run")).unwrap();
        assert_eq!(
            resolve_in_root(&fs, "var/run/containerd/containerd.sock").unwrap(),
            "run/containerd/containerd.sock"
        );
        // Relative targets, `..` that stops at the root, a last component that is a link.
        symlink("../../run/containerd", dir.path().join("var/ctr")).unwrap();
        symlink(
            "/../../run/containerd/real.sock",
            dir.path().join("run/link.sock"),
        )
        .unwrap();
        assert_eq!(
            resolve_in_root(&fs, "/var/ctr/x.sock").unwrap(),
            "run/containerd/x.sock"
        );
        assert_eq!(
            resolve_in_root(&fs, "run/link.sock").unwrap(),
            "run/containerd/real.sock"
        );
        assert_eq!(
            resolve_in_root(&fs, "../../run/./containerd").unwrap(),
            "run/containerd"
        );
        // A missing component ends the walk with the rest as written.
        assert_eq!(
            resolve_in_root(&fs, "var/run/crio/crio.sock").unwrap(),
            "run/crio/crio.sock"
        );
        symlink("/loop", dir.path().join("loop")).unwrap();
        assert!(resolve_in_root(&fs, "loop/x").is_err());
    }

    #[test]
    fn reads_are_capped_and_say_so() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("big"), vec![b'x'; 100_000]).unwrap();
        std::fs::write(dir.path().join("small"), b"12\n").unwrap();
        let fs = RealFs::new(dir.path()).unwrap();
        let e = fs.read("big", 1000).unwrap_err();
        assert_eq!(e.kind, Kind::Truncated);
        let (prefix, more) = fs.read_prefix("big", 1000).unwrap();
        assert_eq!((prefix.len(), more), (1000, true));
        assert_eq!(read_trimmed(&fs, "/small").unwrap(), "12");
        assert!(fs.read("big", 100_000).is_ok());
    }

    #[test]
    fn a_missing_root_is_an_error() {
        assert!(RealFs::new("/nonexistent/node-doctor-root").is_err());
    }

    #[test]
    fn pipe_links() {
        assert_eq!(pipe_inode(b"pipe:[41222]"), Some(41222));
        assert_eq!(pipe_inode(b"socket:[41222]"), None);
        assert_eq!(pipe_inode(b"pipe:[]"), None);
        assert_eq!(pipe_inode(b"/tmp/pipe:[1]"), None);
    }

    #[test]
    fn nspid_with_one_field_that_is_our_pid() {
        assert!(nspid_is_only(b"Name:\tx\nNSpid:\t42\nNSsid:\t1\n", 42));
        // The procfs of an ancestor namespace: our pid there, then here.
        assert!(!nspid_is_only(b"NSpid:\t4242\t42\n", 4242));
        assert!(!nspid_is_only(b"NSpid:\t43\n", 42));
        // Kernels before 4.1 have no NSpid line.
        assert!(!nspid_is_only(b"Name:\tx\nPid:\t42\n", 42));
        assert!(!nspid_is_only(b"NSpid:\n", 42));
    }

    #[test]
    fn limits_by_syscall_are_the_limits_file() {
        // Our own process needs no privilege for prlimit(2).
        let fs = RealFs::new("/").unwrap();
        let me = i32::try_from(std::process::id()).unwrap();
        let dir = fs.open_proc(me).unwrap();
        let from_file = crate::parse::process::parse_limits(&String::from_utf8_lossy(
            &dir.read("limits", 64 << 10).unwrap(),
        ))
        .unwrap();
        // On the node or in a container with its own procfs, `/proc` is our namespace's; in
        // a sandbox that kept its parent's `/proc` it is not, and the file is read instead.
        if fs.proc_is_our_pid_namespace() {
            assert_eq!(dir.syscall_limits(), Some(from_file));
        } else {
            assert_eq!(dir.syscall_limits(), None);
        }
    }

    #[test]
    fn a_tree_that_is_no_procfs_is_never_asked_by_pid() {
        let dir = tempfile::tempdir().unwrap();
        let me = std::process::id();
        std::fs::create_dir_all(dir.path().join(format!("proc/{me}"))).unwrap();
        std::fs::create_dir_all(dir.path().join("proc/self")).unwrap();
        std::fs::write(
            dir.path().join("proc/self/status"),
            format!("NSpid:\t{me}\n"),
        )
        .unwrap();
        let fs = RealFs::new(dir.path()).unwrap();
        assert!(!fs.proc_is_our_pid_namespace());
        let p = fs.open_proc(i32::try_from(me).unwrap()).unwrap();
        assert_eq!(p.syscall_limits(), None);
    }
}
