//! Kernel-wide state: sysctls, memory, pressure, load, uptime, mounts.

use super::{HostRoot, Unavailable, parse_with};
use procfs_core::process::MountInfos;
use procfs_core::{FromBufRead, FromRead, LoadAverage, Meminfo};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The sysctls a snapshot records, by their dotted name. Checks read them from the
/// snapshot by the same name; a name added here is collected everywhere.
pub const SYSCTLS: &[&str] = &[
    // PID and task limits (incident 2a).
    "kernel.pid_max",
    "kernel.threads-max",
    // File handles (incident 4).
    "fs.file-nr",
    "fs.file-max",
    "fs.nr_open",
    // Pipe buffers, accounted per user (incident 1).
    "fs.pipe-user-pages-soft",
    "fs.pipe-user-pages-hard",
    "fs.pipe-max-size",
    // Core dumps (incident 3).
    "kernel.core_pattern",
    "kernel.core_pipe_limit",
    "kernel.core_uses_pid",
    "fs.suid_dumpable",
    // Hung tasks and panics (incident 4).
    "kernel.hung_task_timeout_secs",
    "kernel.hung_task_panic",
    "kernel.hung_task_warnings",
    "kernel.panic_on_oops",
    "kernel.printk_devkmsg",
    // Memory (incident 2e).
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "vm.min_free_kbytes",
    "vm.swappiness",
    "vm.max_map_count",
    "vm.dirty_ratio",
    "vm.dirty_background_ratio",
    // Other per-node tables that fill up.
    "fs.inotify.max_user_watches",
    "fs.inotify.max_user_instances",
    "fs.aio-nr",
    "fs.aio-max-nr",
    "kernel.keys.maxkeys",
    "net.netfilter.nf_conntrack_count",
    "net.netfilter.nf_conntrack_max",
    "net.core.somaxconn",
];

/// Reads each sysctl in [`SYSCTLS`] from `proc/sys/`. Missing ones (a module not loaded, an
/// older kernel) are reported, not fatal.
pub fn read_sysctls(
    host: &HostRoot,
    unavailable: &mut Vec<Unavailable>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for name in SYSCTLS {
        let rel = sysctl_path(name);
        match host.read_trimmed(&rel) {
            Ok(v) => {
                out.insert((*name).to_string(), v);
            }
            Err(u) => unavailable.push(u),
        }
    }
    out
}

/// `kernel.pid_max` → `proc/sys/kernel/pid_max`.
pub fn sysctl_path(name: &str) -> String {
    format!("proc/sys/{}", name.replace('.', "/"))
}

/// Identity of the host, for the report header.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_release: Option<String>,
    /// Seconds since boot (`/proc/uptime`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uptime_secs: Option<f64>,
}

pub fn read_host_info(host: &HostRoot, unavailable: &mut Vec<Unavailable>) -> HostInfo {
    let mut keep = |r: Result<String, Unavailable>| r.map_err(|u| unavailable.push(u)).ok();
    let hostname = keep(host.read_trimmed("proc/sys/kernel/hostname"));
    let kernel_release = keep(host.read_trimmed("proc/sys/kernel/osrelease"));
    let uptime_secs = keep(host.read_string("proc/uptime")).and_then(|s| {
        parse_with("proc/uptime", s.as_bytes(), |b| {
            procfs_core::Uptime::from_read(b)
        })
        .map_err(|u| unavailable.push(u))
        .ok()
        .map(|u| u.uptime)
    });
    HostInfo {
        hostname,
        kernel_release,
        uptime_secs,
    }
}

/// `/proc/pressure/{cpu,memory,io}` (kernel ≥ 4.20 with PSI enabled).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Pressure {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<PressurePair>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<PressurePair>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub io: Option<PressurePair>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PressurePair {
    pub some: procfs_core::PressureRecord,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full: Option<procfs_core::PressureRecord>,
}

pub fn read_pressure(host: &HostRoot, unavailable: &mut Vec<Unavailable>) -> Pressure {
    let mut one = |res: &str| -> Option<PressurePair> {
        let rel = format!("proc/pressure/{res}");
        let text = host.read(&rel).map_err(|u| unavailable.push(u)).ok()?;
        parse_with(&rel, &text, |b| {
            let mut some = None;
            let mut full = None;
            for line in String::from_utf8_lossy(b).lines() {
                let rec = procfs_core::parse_pressure_record(line)?;
                if line.starts_with("some") {
                    some = Some(rec);
                } else if line.starts_with("full") {
                    full = Some(rec);
                }
            }
            some.map(|some| PressurePair { some, full })
                .ok_or_else(|| procfs_core::ProcError::Other("no 'some' line".into()))
        })
        .map_err(|u| unavailable.push(u))
        .ok()
    };
    Pressure {
        cpu: one("cpu"),
        memory: one("memory"),
        io: one("io"),
    }
}

pub fn read_meminfo(host: &HostRoot, unavailable: &mut Vec<Unavailable>) -> Option<Meminfo> {
    let b = host
        .read("proc/meminfo")
        .map_err(|u| unavailable.push(u))
        .ok()?;
    parse_with("proc/meminfo", &b, |b| Meminfo::from_buf_read(b))
        .map_err(|u| unavailable.push(u))
        .ok()
}

pub fn read_loadavg(host: &HostRoot, unavailable: &mut Vec<Unavailable>) -> Option<LoadAverage> {
    let b = host
        .read("proc/loadavg")
        .map_err(|u| unavailable.push(u))
        .ok()?;
    parse_with("proc/loadavg", &b, |b| LoadAverage::from_read(b))
        .map_err(|u| unavailable.push(u))
        .ok()
}

/// `/proc/vmstat` as name → counter. Lines that are not "name number" are skipped.
pub fn read_vmstat(host: &HostRoot, unavailable: &mut Vec<Unavailable>) -> BTreeMap<String, i64> {
    let Ok(text) = host
        .read_string("proc/vmstat")
        .map_err(|u| unavailable.push(u))
    else {
        return BTreeMap::new();
    };
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Per-superblock options (cgroup v1 mounts list their controllers here).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub super_options: String,
}

/// The host's mount table: `proc/1/mountinfo` (init's mount namespace is the host's, also
/// when read from a DaemonSet with hostPID), falling back to `proc/self/mountinfo`.
pub fn read_mounts(host: &HostRoot, unavailable: &mut Vec<Unavailable>) -> Option<Vec<Mount>> {
    let (rel, bytes) = ["proc/1/mountinfo", "proc/self/mountinfo"]
        .iter()
        .find_map(|rel| host.read(rel).ok().map(|b| (*rel, b)))
        .or_else(|| {
            unavailable.push(Unavailable::new(
                "proc/1/mountinfo",
                "neither proc/1 nor proc/self mountinfo could be read",
            ));
            None
        })?;
    let infos = parse_with(rel, &bytes, |b| MountInfos::from_buf_read(b))
        .map_err(|u| unavailable.push(u))
        .ok()?;
    Some(
        infos
            .0
            .into_iter()
            .map(|m| {
                let mut opts: Vec<String> = m
                    .super_options
                    .iter()
                    .map(|(k, v)| match v {
                        Some(v) => format!("{k}={v}"),
                        None => k.clone(),
                    })
                    .collect();
                opts.sort();
                Mount {
                    mount_id: m.mnt_id,
                    parent_id: m.pid,
                    device: m.majmin,
                    root: m.root,
                    mount_point: m.mount_point.to_string_lossy().into_owned(),
                    fs_type: m.fs_type,
                    source: m.mount_source,
                    super_options: opts.join(","),
                }
            })
            .collect(),
    )
}
