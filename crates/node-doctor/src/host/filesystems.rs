//! Usage of the filesystems a node's workloads fill: the root, kubelet's and the container
//! runtimes' state, and the coredump store (incident 3: container cores land on the host's
//! root through `systemd-coredump`).

use super::kernel::Mount;
use super::{HostRoot, Unavailable};
use serde::{Deserialize, Serialize};

/// Host paths whose filesystem is watched, when they exist.
pub const WATCHED_PATHS: &[&str] = &[
    "/",
    "/var/lib/kubelet",
    "/var/lib/containerd",
    "/var/lib/docker",
    "/var/lib/systemd/coredump",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilesystemUsage {
    /// The watched paths this filesystem holds ("/", "/var/lib/kubelet", ...).
    pub paths: Vec<String>,
    /// Its mount point as the host's mount table shows it (falls back to the first path).
    pub mount_point: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fs_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `major:minor` of the filesystem.
    pub device: String,
    pub block_size: u64,
    pub blocks_total: u64,
    pub blocks_free: u64,
    /// Free blocks available to unprivileged users (total minus the root reserve).
    pub blocks_avail: u64,
    pub inodes_total: u64,
    pub inodes_free: u64,
}

impl FilesystemUsage {
    /// Used share of blocks the way `df` computes it: used / (used + available to users),
    /// so the root reserve counts as not available.
    pub fn blocks_used_ratio(&self) -> Option<f64> {
        let used = self.blocks_total.checked_sub(self.blocks_free)?;
        let denom = used + self.blocks_avail;
        (denom > 0).then(|| used as f64 / denom as f64)
    }

    /// Filesystems without a fixed inode table (btrfs, some tmpfs) report 0 inodes.
    pub fn inodes_used_ratio(&self) -> Option<f64> {
        let used = self.inodes_total.checked_sub(self.inodes_free)?;
        (self.inodes_total > 0).then(|| used as f64 / self.inodes_total as f64)
    }
}

pub fn read_filesystems(
    host: &HostRoot,
    mounts: Option<&[Mount]>,
    unavailable: &mut Vec<Unavailable>,
) -> Vec<FilesystemUsage> {
    let mut out: Vec<FilesystemUsage> = Vec::new();
    for watched in WATCHED_PATHS {
        let real = host.path(watched);
        let st = match rustix::fs::stat(&real) {
            Ok(st) => st,
            // Not every node has docker or a coredump store; only the root must exist.
            Err(e) if *watched != "/" && e == rustix::io::Errno::NOENT => continue,
            Err(e) => {
                unavailable.push(Unavailable::new(watched, e.to_string()));
                continue;
            }
        };
        let device = format!(
            "{}:{}",
            rustix::fs::major(st.st_dev),
            rustix::fs::minor(st.st_dev)
        );
        if let Some(fs) = out.iter_mut().find(|f| f.device == device) {
            fs.paths.push((*watched).to_string());
            continue;
        }
        let vfs = match rustix::fs::statvfs(&real) {
            Ok(v) => v,
            Err(e) => {
                unavailable.push(Unavailable::new(watched, format!("statvfs: {e}")));
                continue;
            }
        };
        let mount = mounts.and_then(|m| mount_of(m, watched, &device));
        out.push(FilesystemUsage {
            paths: vec![(*watched).to_string()],
            mount_point: mount.map_or_else(
                || (*watched).to_string(),
                |m| host_relative(&m.mount_point, host),
            ),
            fs_type: mount.map(|m| m.fs_type.clone()),
            source: mount.and_then(|m| m.source.clone()),
            device,
            block_size: vfs.f_frsize,
            blocks_total: vfs.f_blocks,
            blocks_free: vfs.f_bfree,
            blocks_avail: vfs.f_bavail,
            inodes_total: vfs.f_files,
            inodes_free: vfs.f_ffree,
        });
    }
    out
}

/// A mount point as seen from the host root: when the table was read from outside that
/// root (the root is a directory of the reader's own namespace), its prefix is stripped.
fn host_relative(mount_point: &str, host: &HostRoot) -> String {
    let root = host.root().to_string_lossy();
    match mount_point.strip_prefix(root.trim_end_matches('/')) {
        Some(rest) if root != "/" && (rest.is_empty() || rest.starts_with('/')) => {
            if rest.is_empty() {
                "/".into()
            } else {
                rest.into()
            }
        }
        _ => mount_point.to_string(),
    }
}

/// The mount holding `path` on `device`: the longest mount point that is a prefix of the
/// path, among mounts of that device. When the host root is not `/` (a test tree, a
/// DaemonSet without hostPID) the table's paths carry the root as a prefix, so a mount
/// point ending in the watched path is accepted too.
pub fn mount_of<'a>(mounts: &'a [Mount], path: &str, device: &str) -> Option<&'a Mount> {
    let same_dev = || mounts.iter().filter(move |m| m.device == device);
    let is_prefix = |mp: &str| mp == "/" || path == mp || path.starts_with(&format!("{mp}/"));
    same_dev()
        .filter(|m| is_prefix(&m.mount_point))
        .max_by_key(|m| m.mount_point.len())
        .or_else(|| {
            same_dev()
                .filter(|m| path != "/" && m.mount_point.ends_with(path))
                .max_by_key(|m| m.mount_point.len())
        })
}
