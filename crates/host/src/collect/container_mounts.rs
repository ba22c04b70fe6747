//! Which container processes can write `/proc/sys`: container runtimes mount it read-only
//! (runc's `readonlyPaths`) except in privileged containers, and a hostPath mount of the host's
//! `/proc` gives another writable copy. A container that can write it can change every global
//! sysctl of the node (incident 3: `kernel.core_pattern`).
//!
//! Bounded and safe: `mountinfo` takes no lock of the target's address space (it walks the
//! mount namespace, not the process's memory), and it is read only for container processes
//! that could write /proc/sys at all (euid 0 or CAP_SYS_ADMIN), once per mount namespace,
//! for at most [`MAX_NAMESPACES`] namespaces; zombies and processes in D state are skipped.

use crate::fs::HostFs;
use crate::parse::kernel::parse_mountinfo_line;
use node_doctor_core::model::{ProcSysMount, Process};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

pub const MAX_NAMESPACES: usize = 256;
const MOUNTINFO_CAP: usize = 4 << 20;

pub fn read(fs: &Arc<dyn HostFs>, processes: &mut [Process], deadline: Option<Instant>) {
    // Candidates by mount namespace.
    let mut by_ns: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, p) in processes.iter().enumerate() {
        if !p.in_container() || p.is_zombie() || p.in_d_state() {
            continue;
        }
        if !(p.euid == Some(0) || p.has_sys_admin()) {
            continue;
        }
        let Ok(dir) = fs.open_proc(p.pid) else {
            continue;
        };
        let Some(ns) = dir.read_link("ns/mnt").as_deref().and_then(ns_inode) else {
            continue;
        };
        by_ns.entry(ns).or_default().push(i);
    }
    for (n, (ns, members)) in by_ns.into_iter().enumerate() {
        if n >= MAX_NAMESPACES || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        // The first member that still exists answers for the namespace.
        let answer = members.iter().find_map(|&i| {
            let p = processes.get(i)?;
            let dir = fs.open_proc(p.pid).ok()?;
            let text = dir.read("mountinfo", MOUNTINFO_CAP).ok()?;
            Some(proc_sys_writable(&String::from_utf8_lossy(&text)))
        });
        let Some(writable_at) = answer else { continue };
        for i in members {
            if let Some(p) = processes.get_mut(i) {
                p.proc_sys = Some(ProcSysMount {
                    writable: writable_at.is_some(),
                    writable_at: writable_at.clone(),
                    mnt_ns: Some(ns),
                });
            }
        }
    }
}

/// `mnt:[4026532177]` → 4026532177.
fn ns_inode(link: &str) -> Option<u64> {
    link.strip_prefix("mnt:[")?.strip_suffix(']')?.parse().ok()
}

struct M {
    root: String,
    mount_point: String,
    fs_type: String,
    rw: bool,
}

/// Where, in this mount table, a procfs's `sys` directory is reachable read-write (`None`:
/// nowhere). Each procfs mount exposes `sys` at `<mount>/sys` (or at the mount itself when
/// the mount's root is `/sys`); what covers that path last decides: runc bind-mounts
/// `/proc/sys` read-only over a read-write `/proc`.
pub fn proc_sys_writable(mountinfo: &str) -> Option<String> {
    let mounts: Vec<M> = mountinfo
        .lines()
        .filter_map(|line| {
            let m = parse_mountinfo_line(line).ok()?;
            // Field 6: per-mount options ("rw,nosuid,nodev,noexec,relatime").
            let opts = line.split(' ').nth(5).unwrap_or("");
            let super_ro = m.super_options.split(',').any(|o| o == "ro");
            Some(M {
                root: m.root,
                mount_point: m.mount_point,
                fs_type: m.fs_type,
                rw: opts.split(',').any(|o| o == "rw") && !super_ro,
            })
        })
        .collect();
    let covers = |mp: &str, path: &str| {
        mp == "/" || path == mp || path.starts_with(&format!("{}/", mp.trim_end_matches('/')))
    };
    for m in mounts.iter().filter(|m| m.fs_type == "proc") {
        let sys = if m.root == "/" {
            format!("{}/sys", m.mount_point.trim_end_matches('/'))
        } else if m.root == "/sys" || m.root.starts_with("/sys/") {
            m.mount_point.clone()
        } else {
            continue;
        };
        // The mount the path resolves to: the longest covering mount point, the last mounted
        // among equals.
        let top = mounts
            .iter()
            .enumerate()
            .filter(|(_, c)| covers(&c.mount_point, &sys))
            .max_by_key(|(i, c)| (c.mount_point.len(), *i))
            .map(|(_, c)| c);
        if let Some(c) = top
            && c.fs_type == "proc"
            && c.rw
        {
            return Some(sys);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A runc container's table: /proc rw, /proc/sys bound read-only over it (readonlyPaths).
    const UNPRIVILEGED: &str = "\
1375 1290 0:83 / / rw,relatime - overlay overlay rw,lowerdir=/var/lib/containerd/l1,upperdir=/var/lib/containerd/u1,workdir=/var/lib/containerd/w1
1376 1375 0:86 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
1390 1376 0:86 /bus /proc/bus ro,nosuid,nodev,noexec,relatime - proc proc rw
1392 1376 0:86 /sys /proc/sys ro,nosuid,nodev,noexec,relatime - proc proc rw
1393 1376 0:86 /sysrq-trigger /proc/sysrq-trigger ro,nosuid,nodev,noexec,relatime - proc proc rw
1394 1376 0:87 / /proc/acpi ro,relatime - tmpfs tmpfs ro
";

    /// A privileged container: no read-only paths; and one with the host's /proc mounted.
    const PRIVILEGED: &str = "\
1375 1290 0:83 / / rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
1376 1375 0:86 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
";

    #[test]
    fn read_only_proc_sys_of_runc_and_writable_ones() {
        assert_eq!(proc_sys_writable(UNPRIVILEGED), None);
        assert_eq!(proc_sys_writable(PRIVILEGED).as_deref(), Some("/proc/sys"));
        let host_proc = format!(
            "{UNPRIVILEGED}1400 1375 0:5 / /host/proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
        );
        assert_eq!(
            proc_sys_writable(&host_proc).as_deref(),
            Some("/host/proc/sys")
        );
        let host_sys =
            format!("{UNPRIVILEGED}1401 1375 0:5 /sys /host-sys rw,relatime - proc proc rw\n");
        assert_eq!(proc_sys_writable(&host_sys).as_deref(), Some("/host-sys"));
        assert_eq!(ns_inode("mnt:[4026532177]"), Some(4026532177));
        assert_eq!(ns_inode("net:[1]"), None);
    }
}
