//! A snapshot: everything the checks need, read from the host at one moment, as plain
//! serde data. Snapshots are what gets saved and replayed (`node-doctor snapshot`, `check
//! --from`); checks never see the host, only snapshots, so a replay gives the same findings.

use crate::host::cgroups::{Cgroups, read_cgroups};
use crate::host::filesystems::{FilesystemUsage, read_filesystems};
use crate::host::kernel::{self, HostInfo, Mount, Pressure};
use crate::host::packages::read_runtime_packages;
use crate::host::pipes::{self, PipeScan};
use crate::host::processes::{self, Process, ScanReport};
use crate::host::{HostRoot, Unavailable};
use crate::logs::{KernelLog, kmsg};
use procfs_core::{LoadAverage, Meminfo};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Version of the snapshot file format; bumped on incompatible change.
pub const RECORDING_SCHEMA: &str = "node-doctor.snapshot/v1";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// Wall-clock time of collection, milliseconds since the Unix epoch. Checks use this,
    /// never the clock, so replays are exact.
    pub collected_at_ms: u64,
    /// The host root it was read from ("/", "/host", a fixture tree).
    pub root: String,
    pub host: HostInfo,
    /// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), to turn `start_time_ticks` into time.
    pub clock_ticks_per_sec: u64,
    pub page_size: u64,
    pub processes: Vec<Process>,
    pub process_scan: ScanReport,
    /// Sysctl values by dotted name ("kernel.pid_max"), as the kernel printed them.
    pub sysctls: BTreeMap<String, String>,
    pub cgroups: Cgroups,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meminfo: Option<Meminfo>,
    pub vmstat: BTreeMap<String, i64>,
    pub pressure: Pressure,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loadavg: Option<LoadAverage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Vec<Mount>>,
    pub filesystems: Vec<FilesystemUsage>,
    /// Pipes held by processes, with owner and size (absent when not scanned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipes: Option<PipeScan>,
    /// The kernel's log ring as read at collection (absent when not read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_log: Option<KernelLog>,
    /// Installed container runtime packages and versions (from the dpkg database).
    #[serde(default)]
    pub runtime_packages: BTreeMap<String, String>,
    /// Host files that could not be read or parsed, with the reason.
    pub unavailable: Vec<Unavailable>,
}

/// Why a value a check needs is not in the snapshot.
pub type Missing = String;

impl Snapshot {
    /// A sysctl parsed as a number, or why it is not available.
    pub fn sysctl_u64(&self, name: &str) -> Result<u64, Missing> {
        let v = self.sysctl(name)?;
        v.trim()
            .parse()
            .map_err(|_| format!("{}: not a number: {v:?}", kernel::sysctl_path(name)))
    }

    pub fn sysctl(&self, name: &str) -> Result<&str, Missing> {
        self.sysctls
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| self.why_missing(&kernel::sysctl_path(name)))
    }

    /// The recorded reason a host file is missing, or a generic one.
    pub fn why_missing(&self, rel: &str) -> Missing {
        self.unavailable
            .iter()
            .find(|u| u.path == rel)
            .map_or_else(|| format!("/{rel}: not in the snapshot"), |u| u.to_string())
    }

    pub fn process(&self, pid: i32) -> Option<&Process> {
        self.processes
            .binary_search_by_key(&pid, |p| p.pid)
            .ok()
            .map(|i| &self.processes[i])
    }
}

/// What to collect, and by when.
#[derive(Debug, Clone)]
pub struct CollectOptions {
    /// Processes not read by then are counted as skipped, not waited for.
    pub deadline: Option<Instant>,
    /// Walk every process's fds for pipes (pipe-quota, runc-init-hang). It touches every fd
    /// of every process, so the agent may do it less often than the rest.
    pub scan_pipes: bool,
    /// Read the kernel log ring (`/dev/kmsg`) for the kernel-log check.
    pub read_kernel_log: bool,
}

impl Default for CollectOptions {
    fn default() -> Self {
        Self {
            deadline: None,
            scan_pipes: true,
            read_kernel_log: true,
        }
    }
}

/// Reads one snapshot of the host. Never fails: what cannot be read is listed in
/// `unavailable` (and the process scan's `problems`).
pub fn collect(host: &HostRoot, opts: &CollectOptions) -> Snapshot {
    let mut unavailable = Vec::new();
    let collected_at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let hostinfo = kernel::read_host_info(host, &mut unavailable);
    let sysctls = kernel::read_sysctls(host, &mut unavailable);
    let loadavg = kernel::read_loadavg(host, &mut unavailable);
    let meminfo = kernel::read_meminfo(host, &mut unavailable);
    let vmstat = kernel::read_vmstat(host, &mut unavailable);
    let pressure = kernel::read_pressure(host, &mut unavailable);
    let mounts = kernel::read_mounts(host, &mut unavailable);
    let cgroups = read_cgroups(host, mounts.as_deref(), &mut unavailable);
    let filesystems = read_filesystems(host, mounts.as_deref(), &mut unavailable);
    let scan = processes::scan(host, opts.deadline, opts.scan_pipes);
    let pipes = opts.scan_pipes.then(|| {
        let in_d = scan
            .processes
            .iter()
            .filter(|p| p.in_d_state())
            .map(|p| p.pid)
            .collect();
        pipes::size(host, scan.pipe_ends, &in_d, opts.deadline)
    });
    let (processes, process_scan) = (scan.processes, scan.report);
    let runtime_packages = read_runtime_packages(host);
    let kernel_log = opts.read_kernel_log.then(|| kmsg::read_ring(host));
    Snapshot {
        collected_at_ms,
        root: host.root().display().to_string(),
        host: hostinfo,
        clock_ticks_per_sec: rustix::param::clock_ticks_per_second(),
        page_size: rustix::param::page_size() as u64,
        processes,
        process_scan,
        sysctls,
        cgroups,
        meminfo,
        vmstat,
        pressure,
        loadavg,
        mounts,
        filesystems,
        pipes,
        kernel_log,
        runtime_packages,
        unavailable,
    }
}

/// A saved run: one or more snapshots in time order (two when a window was used, so rates
/// replay too).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recording {
    pub schema: String,
    pub samples: Vec<Snapshot>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("{path}: cannot read snapshot: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a node-doctor snapshot (corrupt or truncated): {source}")]
    Corrupt {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path}: snapshot schema {found:?} is not supported (expected {RECORDING_SCHEMA:?})")]
    Schema { path: String, found: String },
    #[error("{path}: snapshot holds no samples")]
    Empty { path: String },
}

impl Recording {
    pub fn new(samples: Vec<Snapshot>) -> Self {
        Self {
            schema: RECORDING_SCHEMA.to_string(),
            samples,
        }
    }

    pub fn load(path: &Path) -> Result<Self, RecordingError> {
        let p = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| RecordingError::Io {
            path: p.clone(),
            source,
        })?;
        // Check the schema before the full parse, so an old or foreign file says so plainly.
        #[derive(Deserialize)]
        struct Head {
            schema: String,
        }
        let head: Head =
            serde_json::from_slice(&bytes).map_err(|source| RecordingError::Corrupt {
                path: p.clone(),
                source,
            })?;
        if head.schema != RECORDING_SCHEMA {
            return Err(RecordingError::Schema {
                path: p,
                found: head.schema,
            });
        }
        let rec: Recording =
            serde_json::from_slice(&bytes).map_err(|source| RecordingError::Corrupt {
                path: p.clone(),
                source,
            })?;
        if rec.samples.is_empty() {
            return Err(RecordingError::Empty { path: p });
        }
        Ok(rec)
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        // Write then rename, so an interrupted save never leaves a truncated snapshot behind.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, path)
    }
}
