//! Host readers: the only code that touches the machine.
//!
//! Every read goes through a [`HostRoot`], so the same code reads `/` on a node, `/host` in a
//! DaemonSet (the node's root bind-mounted into the pod) and a fixture tree in tests. No module
//! spells an absolute `/proc` or `/sys`: paths are relative to the root ("proc/1/stat").
//! Readers know files, not policy: they return typed values or an [`Unavailable`] that says
//! which file could not be read and why, and a missing file never aborts a run.

pub mod cgroups;
pub mod filesystems;
pub mod kernel;
pub mod packages;
pub mod per_pid;
pub mod pipes;
pub mod processes;

use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

/// The directory the host's filesystem is visible under.
#[derive(Debug, Clone)]
pub struct HostRoot {
    root: PathBuf,
}

impl HostRoot {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The real path of `rel` (a host path such as "proc/loadavg" or "/var/lib/kubelet").
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    /// Reads a whole file, capped at `MAX_FILE_BYTES` so that a runaway file (a huge
    /// mountinfo on a node with leaked mounts) cannot make the reader grow without bound.
    pub fn read(&self, rel: &str) -> Result<Vec<u8>, Unavailable> {
        read_capped(&self.path(rel), MAX_FILE_BYTES).map_err(|e| Unavailable::io(rel, &e))
    }

    pub fn read_string(&self, rel: &str) -> Result<String, Unavailable> {
        self.read(rel)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// Reads a one-line file (a sysctl) and trims the trailing newline.
    pub fn read_trimmed(&self, rel: &str) -> Result<String, Unavailable> {
        self.read_string(rel)
            .map(|s| s.trim_end_matches('\n').to_string())
    }
}

/// Largest file a reader takes in: procfs files are small, but mountinfo on a node leaking
/// mount units (incident 2c) can reach megabytes.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

pub(crate) fn read_capped(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut buf = Vec::with_capacity(4096);
    file.take(cap).read_to_end(&mut buf)?;
    Ok(buf)
}

/// A host file that could not be read, and why. Kept in the snapshot so that a check that
/// needs it can say "unknown, because ..." instead of guessing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unavailable {
    /// The host path, relative to the host root ("proc/sys/kernel/pid_max").
    pub path: String,
    pub reason: String,
}

impl Unavailable {
    pub fn new(path: &str, reason: impl Into<String>) -> Self {
        Self {
            path: path.trim_start_matches('/').to_string(),
            reason: reason.into(),
        }
    }

    pub fn io(path: &str, err: &io::Error) -> Self {
        Self::new(path, err.to_string())
    }

    /// A file that was read but whose contents did not parse.
    pub fn malformed(path: &str, err: impl std::fmt::Display) -> Self {
        Self::new(path, format!("malformed: {err}"))
    }
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "/{}: {}", self.path, self.reason)
    }
}

/// Parses a file with a procfs-core parser, turning both IO and parse failures (a truncated
/// or garbage file) into an [`Unavailable`] naming the file. procfs-core parsers are not
/// guaranteed panic-free on every malformed input, so a panic is caught and reported too.
pub fn parse_with<T>(
    rel: &str,
    bytes: &[u8],
    parse: impl FnOnce(&[u8]) -> procfs_core::ProcResult<T>,
) -> Result<T, Unavailable> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse(bytes))) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Unavailable::malformed(rel, e)),
        Err(_) => Err(Unavailable::malformed(rel, "parser rejected the contents")),
    }
}
