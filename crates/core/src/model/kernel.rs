//! Kernel-wide state: host identity, memory, pressure, load, mounts. Our own types (not a
//! parser crate's), so the recording format is ours to keep.

use serde::{Deserialize, Serialize};

/// `kernel.pid_max` → `proc/sys/kernel/pid_max`.
pub fn sysctl_path(name: &str) -> String {
    format!("proc/sys/{}", name.replace('.', "/"))
}

/// Identity of the host, for the report header.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_release: Option<String>,
    /// Seconds since boot (`/proc/uptime`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uptime_secs: Option<f64>,
    /// `/proc/sys/kernel/random/boot_id`: changes at every boot (conditions that hold until
    /// reboot clear on it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
}

/// `/proc/pressure/{cpu,memory,io}` (kernel ≥ 4.20 with PSI enabled).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pressure {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<PressurePair>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<PressurePair>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub io: Option<PressurePair>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PressurePair {
    pub some: PressureRecord,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full: Option<PressureRecord>,
}

/// One PSI line: share of wall time some (or all) tasks stalled, over 10/60/300 s, and the
/// total stall time in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PressureRecord {
    pub avg10: f32,
    pub avg60: f32,
    pub avg300: f32,
    pub total: u64,
}

/// `/proc/meminfo`, in bytes (the file says kB). Fields absent from the file (older kernels,
/// configs without swap) are `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Meminfo {
    pub mem_total: Option<u64>,
    pub mem_free: Option<u64>,
    pub mem_available: Option<u64>,
    pub buffers: Option<u64>,
    pub cached: Option<u64>,
    pub swap_cached: Option<u64>,
    pub active: Option<u64>,
    pub inactive: Option<u64>,
    pub active_anon: Option<u64>,
    pub inactive_anon: Option<u64>,
    pub active_file: Option<u64>,
    pub inactive_file: Option<u64>,
    pub unevictable: Option<u64>,
    pub mlocked: Option<u64>,
    pub swap_total: Option<u64>,
    pub swap_free: Option<u64>,
    pub dirty: Option<u64>,
    pub writeback: Option<u64>,
    pub anon_pages: Option<u64>,
    pub mapped: Option<u64>,
    pub shmem: Option<u64>,
    pub slab: Option<u64>,
    pub s_reclaimable: Option<u64>,
    pub s_unreclaim: Option<u64>,
    pub kernel_stack: Option<u64>,
    pub page_tables: Option<u64>,
    pub commit_limit: Option<u64>,
    pub committed_as: Option<u64>,
    /// Per-CPU allocations (4.16+): grows with dying memory cgroups (each holds its percpu
    /// statistics until freed).
    pub percpu: Option<u64>,
}

/// `/proc/loadavg`: "1.00 0.50 0.25 cur/max latest_pid". `max` counts every task
/// (processes and threads) on the host: the kernel's own count against `pid_max`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LoadAverage {
    pub one: f32,
    pub five: f32,
    pub fifteen: f32,
    pub cur: u32,
    pub max: u32,
    pub latest_pid: u32,
}

/// One mount, as the host's init sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub mount_id: i32,
    pub parent_id: i32,
    /// `major:minor` of the filesystem (`st_dev`).
    pub device: String,
    pub root: String,
    pub mount_point: String,
    pub fs_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Per-superblock options (cgroup v1 mounts list their controllers here).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub super_options: String,
}

impl Mount {
    /// Filesystems whose `statvfs` (or any access) waits on a server that may be gone.
    pub fn is_remote_or_fuse(&self) -> bool {
        let t = self.fs_type.as_str();
        t.starts_with("fuse")
            || matches!(
                t,
                "nfs" | "nfs4" | "cifs" | "smb3" | "ceph" | "glusterfs" | "9p" | "sshfs" | "lustre"
            )
    }
}
