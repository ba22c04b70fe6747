//! A snapshot: everything the checks need, read from the host at one moment, as plain
//! serde data. Snapshots are what gets saved and replayed (`node-doctor snapshot`, `check
//! --from`); checks never see the host, only snapshots, so a replay gives the same findings.
//!
//! Parts that a collector did not run for (the checks selected did not need them) are
//! `None`, which is not the same as collected and empty. Every struct takes serde defaults,
//! so older recordings load; [`Snapshot::validate`] repairs what it can (order, derived
//! fields) and refuses what it cannot, so replayed data meets the same invariants as
//! collected data.

use super::cgroups::Cgroups;
use super::coredump::CoredumpHost;
use super::fs::{DeletedOpenFiles, FilesystemUsage, Role};
use super::kernel::{HostInfo, LoadAverage, Meminfo, Mount, Pressure, sysctl_path};
use super::log::KernelLog;
use super::mount_owners::{PodsDir, Systemd};
use super::pipes::PipeScan;
use super::process::{Process, ScanReport};
use super::runtime::{DaemonLog, Kubelet, Runtime, Workloads};
use super::sysctl_conf::SysctlConf;
use super::unavailable::{Kind, Unavailable};
use crate::attribution::owner_of;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the snapshot file format; bumped on incompatible change.
pub const RECORDING_SCHEMA: &str = "node-doctor.snapshot/v1";

/// The last millisecond of year 9999: times past it cannot be rendered as RFC 3339 and come
/// only from a damaged recording.
pub const MAX_TIME_MS: u64 = 253_402_300_799_999;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Snapshot {
    /// Wall-clock time of collection, milliseconds since the Unix epoch. Checks use this,
    /// never the clock, so replays are exact.
    pub collected_at_ms: u64,
    /// The host root it was read from ("/", "/host", a fixture tree).
    pub root: String,
    pub host: HostInfo,
    /// Clock ticks per second (`sysconf(_SC_CLK_TCK)` of the host), to turn
    /// `start_time_ticks` into time; 0 when unknown.
    pub clock_ticks_per_sec: u64,
    /// The host's page size in bytes; 0 when unknown.
    pub page_size: u64,
    /// Who read it: without root (or the capabilities), other users' fds are not visible.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reader: Option<Reader>,
    /// The process table, by pid (absent when not collected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processes: Option<Vec<Process>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_scan: Option<ScanReport>,
    /// Sysctl values by dotted name ("kernel.pid_max"), as the kernel printed them.
    pub sysctls: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroups: Option<Cgroups>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meminfo: Option<Meminfo>,
    pub vmstat: BTreeMap<String, i64>,
    pub pressure: Pressure,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loadavg: Option<LoadAverage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Vec<Mount>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filesystems: Option<Vec<FilesystemUsage>>,
    /// The kubelet `pods/` directories under which the mount table has pod volume mounts
    /// (absent when not read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubelet_pods: Option<Vec<PodsDir>>,
    /// systemd as the init system, read without D-Bus (absent when not read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub systemd: Option<Systemd>,
    /// Pipes held by processes, with owner and size (absent when not scanned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipes: Option<PipeScan>,
    /// The kernel's log ring as read at collection (absent when not read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_log: Option<KernelLog>,
    /// Installed container runtime packages and versions (from the dpkg database).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_packages: Option<BTreeMap<String, String>>,
    /// The container runtime: daemons, what its CRI socket answered, downloads in progress
    /// (absent when not read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Runtime>,
    /// Pods and containers with their names (CRI, else the kubelet's log directories).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workloads: Option<Workloads>,
    /// The kubelet's process, command line and configuration files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubelet: Option<Kubelet>,
    /// Recent lines of the kubelet's and the runtime's logs that the checks read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daemon_logs: Option<Vec<DaemonLog>>,
    /// The core-dump machinery: coredump.conf, the handler, the dump stores (absent when
    /// not read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coredump: Option<CoredumpHost>,
    /// Open deleted files on filesystems over the disk-pressure band (absent when not
    /// looked for; present and empty when no filesystem was over the band).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_open: Option<DeletedOpenFiles>,
    /// The sysctl configuration files (absent when not read). The live values of the names
    /// they set are in `sysctls`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sysctl_conf: Option<SysctlConf>,
    /// Host files that could not be read or parsed, with the reason.
    pub unavailable: Vec<Unavailable>,
    /// Wall time each collector took, in ms, by collector id.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub timings: BTreeMap<String, f64>,
    /// Collectors that did not read everything they were asked to: not run because the
    /// run's deadline had passed, or a read of theirs timed out (its `unavailable` entry
    /// says which). By collector id, as in `timings`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incomplete_collectors: Vec<String>,
}

/// The identity node-doctor read the host with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Reader {
    pub euid: u32,
    pub pid: i32,
}

/// Why a value a check needs is not in the snapshot.
pub type Missing = String;

impl Snapshot {
    /// A sysctl parsed as a number, or why it is not available.
    pub fn sysctl_u64(&self, name: &str) -> Result<u64, Missing> {
        let v = self.sysctl(name)?;
        v.trim()
            .parse()
            .map_err(|_| format!("/{}: not a number: {v:?}", sysctl_path(name)))
    }

    pub fn sysctl(&self, name: &str) -> Result<&str, Missing> {
        self.sysctls
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| self.why_missing(&sysctl_path(name)))
    }

    /// The recorded reason a host file is missing, or a generic one.
    pub fn why_missing(&self, rel: &str) -> Missing {
        let rel = rel.trim_start_matches('/');
        self.unavailable
            .iter()
            .find(|u| u.path == rel)
            .map(|u| u.to_string())
            // A collector that did not run at all (the deadline) says so for all it reads.
            .or_else(|| {
                self.unavailable
                    .iter()
                    .find(|u| u.path.is_empty() && u.kind == Kind::Timeout)
                    .map(|u| format!("/{rel}: {}", u.reason))
            })
            .unwrap_or_else(|| format!("/{rel}: not in the snapshot"))
    }

    /// Why a part (`what`: "processes", "pipes") is absent: the run's deadline passed before
    /// its collector, or the run did not ask for it.
    pub fn not_collected(&self, what: &str) -> Missing {
        match self
            .unavailable
            .iter()
            .find(|u| u.path.is_empty() && u.kind == Kind::Timeout)
        {
            Some(u) => format!("{what}: {}", u.reason),
            None => format!("{what} were not read in this snapshot"),
        }
    }

    /// The processes, or why there are none to look at: not collected, or none could be
    /// read (an empty or foreign root, a deadline of 0).
    pub fn processes(&self) -> Result<&[Process], Missing> {
        match &self.processes {
            None => Err(self.not_collected("processes")),
            Some(p) if p.is_empty() => Err(match &self.process_scan {
                Some(s) if s.listed > 0 => format!(
                    "none of the {} processes listed could be read ({} left out at the deadline)",
                    s.listed,
                    s.left_out()
                ),
                Some(s) => match s.problems.first() {
                    Some(u) => format!("no process could be listed: {u}"),
                    None => "no process found under proc/".into(),
                },
                None => "no process could be read".into(),
            }),
            Some(p) => Ok(p),
        }
    }

    /// The processes read, empty when none (for lookups that tolerate absence).
    pub fn process_list(&self) -> &[Process] {
        self.processes.as_deref().unwrap_or(&[])
    }

    pub fn process(&self, pid: i32) -> Option<&Process> {
        let ps = self.process_list();
        ps.binary_search_by_key(&pid, |p| p.pid)
            .ok()
            .and_then(|i| ps.get(i))
    }

    /// Brings a snapshot (collected or loaded) to the invariants checks rely on: processes
    /// sorted by pid and unique, derived fields recomputed, filesystems that name no path
    /// dropped, impossible values cleared. Returns what was repaired; fails on what cannot
    /// be (a time that cannot be a real one).
    pub fn validate(&mut self) -> Result<Vec<String>, String> {
        let mut repairs = Vec::new();
        if self.collected_at_ms > MAX_TIME_MS {
            return Err(format!(
                "collected_at_ms {} is past the year 9999",
                self.collected_at_ms
            ));
        }
        if let Some(ps) = &mut self.processes {
            if !ps.windows(2).all(|w| matches!(w, [a, b] if a.pid < b.pid)) {
                ps.sort_by_key(|p| p.pid);
                let before = ps.len();
                ps.dedup_by_key(|p| p.pid);
                repairs.push(format!(
                    "processes sorted by pid ({} duplicates dropped)",
                    before.saturating_sub(ps.len())
                ));
            }
            for p in ps.iter_mut() {
                p.owner = owner_of(&p.cgroups);
                if p.comm.len() > 64 {
                    p.comm = p.comm.chars().take(64).collect();
                }
            }
        }
        if let Some(fss) = &mut self.filesystems {
            let before = fss.len();
            fss.retain(|f| !f.paths.is_empty());
            if fss.len() != before {
                repairs.push(format!(
                    "{} filesystems without a path dropped",
                    before.saturating_sub(fss.len())
                ));
            }
            for f in fss.iter_mut() {
                let mut roles: Vec<Role> =
                    f.paths.iter().filter_map(|p| Role::of_path(p)).collect();
                roles.sort();
                roles.dedup();
                f.roles = roles;
            }
        }
        if let Some(scan) = &mut self.pipes {
            if !scan
                .pipes
                .windows(2)
                .all(|w| matches!(w, [a, b] if a.inode < b.inode))
            {
                scan.pipes.sort_by_key(|p| p.inode);
                scan.pipes.dedup_by_key(|p| p.inode);
                repairs.push("pipes sorted by inode".into());
            }
            for p in &mut scan.pipes {
                p.holders.sort_unstable();
                p.holders.dedup();
            }
        }
        if let Some(d) = &mut self.deleted_open {
            for h in &mut d.holders {
                h.owner = owner_of(&h.cgroups);
            }
            d.holders.sort_by(|a, b| {
                b.bytes
                    .cmp(&a.bytes)
                    .then((a.pid, a.fd).cmp(&(b.pid, b.fd)))
            });
        }
        if let Some(c) = &mut self.cgroups {
            c.pids
                .sort_by(|a, b| (a.hierarchy, &a.path).cmp(&(b.hierarchy, &b.path)));
            if let Some(m) = &mut c.memory {
                m.sort_by(|a, b| (a.hierarchy, &a.path).cmp(&(b.hierarchy, &b.path)));
                m.dedup_by(|a, b| a.hierarchy == b.hierarchy && a.path == b.path);
            }
            for ids in [&mut c.pod_uids, &mut c.container_ids] {
                ids.sort_unstable();
                ids.dedup();
            }
        }
        if self
            .host
            .uptime_secs
            .is_some_and(|u| !u.is_finite() || u < 0.0)
        {
            self.host.uptime_secs = None;
            repairs.push("uptime_secs was not a finite positive number".into());
        }
        for u in &mut self.unavailable {
            if u.kind == Kind::Other {
                u.kind = Kind::infer(&u.reason);
            }
        }
        Ok(repairs)
    }
}

/// A saved run: one or more snapshots in time order (two when a window was used, so rates
/// replay too).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recording {
    pub schema: String,
    pub samples: Vec<Snapshot>,
    /// What loading repaired ("sample 0: processes sorted by pid ..."), for the caller to
    /// tell the user: a replay of a repaired file is not a replay of the file as written.
    #[serde(skip)]
    pub repairs: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("{name}: not a node-doctor snapshot (corrupt or truncated): {error}")]
    Corrupt { name: String, error: String },
    #[error("{name}: snapshot schema {found:?} is not supported (expected {RECORDING_SCHEMA:?})")]
    Schema { name: String, found: String },
    #[error("{name}: snapshot holds no samples")]
    Empty { name: String },
    #[error("{name}: sample {index} is invalid: {error}")]
    Invalid {
        name: String,
        index: usize,
        error: String,
    },
}

impl Recording {
    pub fn new(samples: Vec<Snapshot>) -> Self {
        Self {
            schema: RECORDING_SCHEMA.to_string(),
            samples,
            repairs: Vec::new(),
        }
    }

    /// Parses and validates a recording; `name` (its file) is only for messages.
    pub fn from_slice(name: &str, bytes: &[u8]) -> Result<Self, RecordingError> {
        let corrupt = |e: serde_json::Error| RecordingError::Corrupt {
            name: name.to_string(),
            error: e.to_string(),
        };
        // Check the schema before the full parse, so an old or foreign file says so plainly.
        #[derive(Deserialize)]
        struct Head {
            schema: String,
        }
        let head: Head = serde_json::from_slice(bytes).map_err(corrupt)?;
        if head.schema != RECORDING_SCHEMA {
            return Err(RecordingError::Schema {
                name: name.to_string(),
                found: head.schema,
            });
        }
        let mut rec: Recording = serde_json::from_slice(bytes).map_err(corrupt)?;
        if rec.samples.is_empty() {
            return Err(RecordingError::Empty {
                name: name.to_string(),
            });
        }
        let mut repairs = Vec::new();
        for (index, s) in rec.samples.iter_mut().enumerate() {
            let fixed = s.validate().map_err(|error| RecordingError::Invalid {
                name: name.to_string(),
                index,
                error,
            })?;
            repairs.extend(fixed.into_iter().map(|r| format!("sample {index}: {r}")));
        }
        rec.repairs = repairs;
        // Oldest first: "earlier sample" and growth depend on it.
        rec.samples.sort_by_key(|s| s.collected_at_ms);
        Ok(rec)
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::process::ProcState;

    #[test]
    fn unsorted_processes_are_sorted_and_owners_recomputed() {
        let mut s = Snapshot {
            processes: Some(vec![
                Process::new(9, 1, "b", ProcState::Sleeping, 1),
                Process::new(3, 1, "a", ProcState::Sleeping, 1),
                Process::new(9, 1, "dup", ProcState::Sleeping, 1),
            ]),
            ..Snapshot::default()
        };
        let r = s.validate().unwrap();
        assert_eq!(r.len(), 1);
        let pids: Vec<i32> = s.process_list().iter().map(|p| p.pid).collect();
        assert_eq!(pids, vec![3, 9]);
        assert_eq!(s.process(9).map(|p| p.comm.as_str()), Some("b"));
    }

    #[test]
    fn impossible_times_and_pathless_filesystems() {
        let mut s = Snapshot {
            collected_at_ms: MAX_TIME_MS + 1,
            ..Snapshot::default()
        };
        assert!(s.validate().is_err());
        let fs = FilesystemUsage {
            paths: vec![],
            roles: vec![],
            mount_point: "/".into(),
            fs_type: None,
            source: None,
            device: "8:1".into(),
            block_size: 4096,
            blocks_total: 1,
            blocks_free: 0,
            blocks_avail: 0,
            inodes_total: 0,
            inodes_free: 0,
        };
        let mut s = Snapshot {
            filesystems: Some(vec![fs]),
            ..Snapshot::default()
        };
        s.validate().unwrap();
        assert_eq!(s.filesystems.as_ref().map(Vec::len), Some(0));
    }

    #[test]
    fn recordings_refuse_garbage_clearly() {
        assert!(matches!(
            Recording::from_slice("x", b"{}"),
            Err(RecordingError::Corrupt { .. })
        ));
        assert!(matches!(
            Recording::from_slice("x", br#"{"schema":"other","samples":[]}"#),
            Err(RecordingError::Schema { .. })
        ));
        assert!(matches!(
            Recording::from_slice("x", br#"{"schema":"node-doctor.snapshot/v1","samples":[]}"#),
            Err(RecordingError::Empty { .. })
        ));
        let r = Recording::from_slice(
            "x",
            br#"{"schema":"node-doctor.snapshot/v1","samples":[{"collected_at_ms":5},{"collected_at_ms":2}]}"#,
        )
        .unwrap();
        assert_eq!(r.samples[0].collected_at_ms, 2);
        assert!(r.repairs.is_empty());
        let r = Recording::from_slice(
            "x",
            br#"{"schema":"node-doctor.snapshot/v1","samples":[{"processes":[
                {"pid":9,"ppid":1,"comm":"b","state":"S","start_time_ticks":1},
                {"pid":3,"ppid":1,"comm":"a","state":"S","start_time_ticks":1}]}]}"#,
        )
        .unwrap();
        assert_eq!(
            r.repairs,
            vec!["sample 0: processes sorted by pid (0 duplicates dropped)"]
        );
    }
}
