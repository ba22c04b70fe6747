//! The cheap, kernel-wide state every run reads: host identity, sysctls, memory, pressure,
//! load. A few dozen small files; a file that is missing or bad becomes an `Unavailable`.

use crate::fs::{DEFAULT_CAP, HostFs, read_string, read_trimmed};
use crate::parse::kernel::{
    parse_loadavg, parse_meminfo, parse_pressure, parse_uptime, parse_vmstat,
};
use node_doctor_core::model::kernel::sysctl_path;
use node_doctor_core::model::{HostInfo, Pressure, Snapshot, Unavailable};

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

/// Keeps the value of a read, recording why not in `unavailable`.
fn keep<T>(r: Result<T, Unavailable>, unavailable: &mut Vec<Unavailable>) -> Option<T> {
    r.map_err(|u| unavailable.push(u)).ok()
}

/// A file parsed with `parse`; a parse failure names the file.
fn parsed<T>(
    fs: &dyn HostFs,
    rel: &str,
    parse: impl FnOnce(&str) -> Result<T, String>,
    unavailable: &mut Vec<Unavailable>,
) -> Option<T> {
    let text = keep(read_string(fs, rel, DEFAULT_CAP), unavailable)?;
    keep(
        parse(&text).map_err(|e| Unavailable::malformed(rel, e)),
        unavailable,
    )
}

pub fn read(fs: &dyn HostFs, s: &mut Snapshot) {
    let u = &mut s.unavailable;
    s.host = HostInfo {
        hostname: keep(read_trimmed(fs, "proc/sys/kernel/hostname"), u),
        kernel_release: keep(read_trimmed(fs, "proc/sys/kernel/osrelease"), u),
        uptime_secs: parsed(fs, "proc/uptime", parse_uptime, u),
        boot_id: keep(read_trimmed(fs, "proc/sys/kernel/random/boot_id"), u),
    };
    for name in SYSCTLS {
        if let Some(v) = keep(read_trimmed(fs, &sysctl_path(name)), u) {
            s.sysctls.insert((*name).to_string(), v);
        }
    }
    s.loadavg = parsed(fs, "proc/loadavg", parse_loadavg, u);
    s.meminfo = parsed(fs, "proc/meminfo", parse_meminfo, u);
    s.vmstat = keep(read_string(fs, "proc/vmstat", DEFAULT_CAP), u)
        .map(|t| parse_vmstat(&t))
        .unwrap_or_default();
    s.pressure = Pressure {
        cpu: parsed(fs, "proc/pressure/cpu", parse_pressure, u),
        memory: parsed(fs, "proc/pressure/memory", parse_pressure, u),
        io: parsed(fs, "proc/pressure/io", parse_pressure, u),
    };
}
