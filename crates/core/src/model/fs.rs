//! Usage of the filesystems a node's workloads fill.

use serde::{Deserialize, Serialize};

/// What a watched path is for: chooses the cause and remedy a full filesystem gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Root,
    Kubelet,
    Containerd,
    Docker,
    Coredump,
}

impl Role {
    /// The host paths whose filesystem is watched, each with its role.
    pub const WATCHED: &'static [(&'static str, Role)] = &[
        ("/", Role::Root),
        ("/var/lib/kubelet", Role::Kubelet),
        ("/var/lib/containerd", Role::Containerd),
        ("/var/lib/docker", Role::Docker),
        ("/var/lib/systemd/coredump", Role::Coredump),
    ];

    pub fn of_path(path: &str) -> Option<Role> {
        Self::WATCHED
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, r)| *r)
    }

    pub fn is_runtime_state(self) -> bool {
        matches!(self, Role::Kubelet | Role::Containerd | Role::Docker)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilesystemUsage {
    /// The watched paths this filesystem holds ("/", "/var/lib/kubelet", ...). Never empty
    /// in a valid snapshot ([`super::snapshot::Snapshot::validate`] drops entries without).
    pub paths: Vec<String>,
    /// What the paths are for (derived from `paths`, recomputed on load).
    #[serde(default)]
    pub roles: Vec<Role>,
    /// Its mount point as the host's mount table shows it (falls back to the first path).
    pub mount_point: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `major:minor` of the filesystem.
    #[serde(default)]
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
        let denom = used.checked_add(self.blocks_avail)?;
        (denom > 0).then(|| used as f64 / denom as f64)
    }

    /// Filesystems without a fixed inode table (btrfs, some tmpfs) report 0 inodes.
    pub fn inodes_used_ratio(&self) -> Option<f64> {
        let used = self.inodes_total.checked_sub(self.inodes_free)?;
        (self.inodes_total > 0).then(|| used as f64 / self.inodes_total as f64)
    }

    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn bytes_avail(&self) -> u64 {
        self.blocks_avail.saturating_mul(self.block_size)
    }

    /// The watched path to name it by.
    pub fn first_path(&self) -> &str {
        self.paths
            .first()
            .map_or(self.mount_point.as_str(), String::as_str)
    }
}

/// Files deleted but still open (`/proc/PID/fd/N -> /path (deleted)`) on filesystems over the
/// disk-pressure band: `df` counts their blocks, `du` finds nothing (short-lived cores being
/// written, rotated logs a process still writes). Looked for only when a filesystem is over
/// the band, never in a process in D state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeletedOpenFiles {
    /// Mount points of the filesystems searched (those over the band).
    pub filesystems: Vec<String>,
    /// Open deleted files on them, largest first (at most [`MAX_DELETED_KEPT`]).
    pub holders: Vec<DeletedHolder>,
    /// Further open deleted files found but not kept, and their bytes.
    pub not_kept: u64,
    pub not_kept_bytes: u64,
    /// Processes whose fds were walked.
    pub processes_scanned: u64,
    /// Processes in D state, not touched.
    pub skipped_d_state: u64,
    /// Processes not walked: the deadline passed, or the bound on fd links read was reached.
    pub left_out: u64,
    /// A bound (links per process, links overall) cut the walk short somewhere.
    pub truncated: bool,
}

/// Most open deleted files a snapshot keeps by name.
pub const MAX_DELETED_KEPT: usize = 200;

/// One open deleted file and who holds it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeletedHolder {
    pub pid: i32,
    pub comm: String,
    /// With `pid`, the process's identity (`stat` field 22).
    pub start_time_ticks: u64,
    pub cgroups: std::sync::Arc<[crate::model::process::CgroupMembership]>,
    /// The container and pod the cgroup paths name (derived, recomputed on load).
    #[serde(flatten)]
    pub owner: crate::attribution::CgroupOwner,
    pub fd: i32,
    /// The path it had, as the fd link shows it (without " (deleted)").
    pub path: String,
    /// `major:minor` of its filesystem (`st_dev`).
    pub device: String,
    /// Bytes on disk (`st_blocks` × 512) and apparent size (`st_size`).
    pub bytes: u64,
    pub size: u64,
}
