//! Usage of the filesystems a node's workloads fill: the root, kubelet's and the container
//! runtimes' state, and the coredump store (incident 3: container cores land on the host's
//! root through `systemd-coredump`).
//!
//! `statvfs` of a mount whose FUSE or NFS server is gone blocks in the kernel, and so does
//! `lstat` of a path below it — the `df` hang of a sick node. So the mount holding each
//! watched path is found in the mount table (no filesystem access), and every `statvfs` or
//! existence probe runs through [`crate::probe`] (a child process in the binary, so a stuck
//! probe cannot keep node-doctor from exiting) with a short timeout: a dead mount becomes a
//! `Timeout` entry, never a hung run. The probes of all watched paths start at once, so
//! paths below one dead mount cost one timeout, not one each.
//!
//! A child costs an exec of the binary (about a millisecond of CPU, five per sample: most
//! of an idle agent's CPU). So only a path whose lookup crosses a filesystem that can wait
//! on something outside the kernel (FUSE, NFS, CIFS, Ceph, 9p, virtiofs, autofs, ...: any
//! type not known to be local) is probed in a child; a path on local filesystems only
//! (ext4, xfs, btrfs, tmpfs, overlay, ...) is probed on a deadline-bounded thread.

use super::mounts::{host_relative, mount_of};
use crate::Host;
use crate::blocking::Blocking;
use crate::fs::FsStat;
use crate::probe::{self, Answer};
use node_doctor_core::model::{FilesystemUsage, Mount, Role, Unavailable};
use std::time::{Duration, Instant};

/// How long one probe may block before its filesystem is reported as not answering.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// A probe's outcome as an answer (a probe that did not answer is a `Timeout` failure).
fn answer(path: &str, r: Blocking<Answer>) -> Answer {
    match r {
        Blocking::Done(a) => a,
        Blocking::TimedOut => Answer::Failed(Unavailable::timeout(
            path,
            "statvfs did not return: the filesystem (or a mount below it) does not answer",
        )),
        Blocking::StillBlocked { since } => Answer::Failed(Unavailable::timeout(
            path,
            format!(
                "a statvfs started {}s ago is still blocked: the filesystem does not answer",
                since.elapsed().as_secs()
            ),
        )),
        Blocking::Refused(why) => Answer::Failed(Unavailable::timeout(path, why)),
    }
}

/// Filesystems whose `statfs` and path lookups are answered by the kernel from memory or a
/// local block device: they do not wait on a server or a userspace daemon.
const LOCAL_TYPES: &[&str] = &[
    "ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "vfat", "tmpfs", "ramfs", "rootfs", "overlay",
    "squashfs", "erofs", "iso9660", "devtmpfs", "proc", "sysfs", "cgroup", "cgroup2",
];

/// How to probe `path`: in a thread when every mount its lookup crosses (the mounts whose
/// mount point is a prefix of it) is local; as the host says (a child) otherwise, or when
/// the mount table is not known.
fn probes_for(default: &probe::Probes, table: Option<&[Mount]>, path: &str) -> probe::Probes {
    let Some(table) = table else {
        return default.clone();
    };
    let crosses = |mp: &str| mp == "/" || path == mp || path.starts_with(&format!("{mp}/"));
    let all_local = table
        .iter()
        .filter(|m| crosses(&m.mount_point))
        .all(|m| LOCAL_TYPES.contains(&m.fs_type.as_str()));
    if all_local {
        probe::Probes::InThread
    } else {
        default.clone()
    }
}

pub fn read(
    host: &Host,
    mounts: Option<&[Mount]>,
    deadline: Option<Instant>,
    unavailable: &mut Vec<Unavailable>,
) -> Vec<FilesystemUsage> {
    let root = host.fs.root().to_string_lossy().into_owned();
    // Mount points as the host root sees them.
    let table: Option<Vec<Mount>> = mounts.map(|ms| {
        ms.iter()
            .map(|m| Mount {
                mount_point: host_relative(&m.mount_point, &root),
                ..m.clone()
            })
            .collect()
    });
    let mut wait_until = Instant::now() + PROBE_TIMEOUT;
    if let Some(d) = deadline {
        wait_until = wait_until.min(d);
    }
    let pending: Vec<_> = Role::WATCHED
        .iter()
        .map(|(watched, role)| {
            let mount = table.as_deref().and_then(|t| mount_of(t, watched));
            let is_mount_point = mount.is_some_and(|m| m.mount_point == *watched);
            let probes = probes_for(&host.probes, table.as_deref(), watched);
            let p = probe::start(&probes, &host.fs, watched, is_mount_point);
            (*watched, *role, mount, p)
        })
        .collect();
    let mut out: Vec<FilesystemUsage> = Vec::new();
    // (mount id, counts) of each entry of `out`.
    let mut measured: Vec<(Option<i32>, FsStat)> = Vec::new();
    for (watched, role, mount, p) in pending {
        let stat = match answer(watched, p.wait(wait_until)) {
            Answer::Found(s) => s,
            Answer::Missing => continue,
            Answer::Failed(u) => {
                unavailable.push(u);
                continue;
            }
        };
        let id = mount.map(|m| m.mount_id);
        // The same mount, or (without a mount table) the same counts: the same filesystem.
        let same = measured.iter().position(|(mid, s)| match (id, mid) {
            (Some(a), Some(b)) => a == *b,
            (None, None) => *s == stat,
            _ => false,
        });
        if let Some(i) = same
            && let Some(fs_entry) = out.get_mut(i)
        {
            fs_entry.paths.push(watched.to_string());
            fs_entry.roles.push(role);
            continue;
        }
        measured.push((id, stat));
        out.push(FilesystemUsage {
            paths: vec![watched.to_string()],
            roles: vec![role],
            mount_point: mount.map_or_else(|| watched.to_string(), |m| m.mount_point.clone()),
            fs_type: mount.map(|m| m.fs_type.clone()),
            source: mount.and_then(|m| m.source.clone()),
            device: mount.map(|m| m.device.clone()).unwrap_or_default(),
            block_size: stat.block_size,
            blocks_total: stat.blocks,
            blocks_free: stat.blocks_free,
            blocks_avail: stat.blocks_avail,
            inodes_total: stat.files,
            inodes_free: stat.files_free,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(mp: &str, ty: &str) -> Mount {
        Mount {
            mount_id: 1,
            parent_id: 0,
            device: "0:1".into(),
            root: "/".into(),
            mount_point: mp.into(),
            fs_type: ty.into(),
            source: None,
            super_options: String::new(),
        }
    }

    #[test]
    fn only_paths_crossing_a_filesystem_that_can_wait_go_to_a_child() {
        let host = probe::Probes::InChild("/nonexistent/node-doctor".into());
        let child = |p: probe::Probes| matches!(p, probe::Probes::InChild(_));
        let t = [
            mount("/", "ext4"),
            mount("/var/lib/kubelet", "xfs"),
            mount("/var/lib/kubelet/pods/x/volumes/nfs", "nfs4"),
            mount("/mnt/fuse", "fuse.sshfs"),
            mount("/var/lib/containerd", "fuse.juicefs"),
        ];
        assert!(!child(probes_for(&host, Some(&t), "/var/lib/kubelet")));
        assert!(!child(probes_for(&host, Some(&t), "/")));
        assert!(child(probes_for(&host, Some(&t), "/var/lib/containerd")));
        assert!(child(probes_for(&host, Some(&t), "/mnt/fuse/a")));
        // An NFS mount below the path is not crossed by its lookup.
        assert!(!child(probes_for(&host, Some(&t), "/var/lib/kubelet/pods")));
        // An unknown type is not assumed local.
        let odd = [mount("/", "ext4"), mount("/var", "virtiofs")];
        assert!(child(probes_for(&host, Some(&odd), "/var/lib/kubelet")));
        // No table: no knowledge, the careful way.
        assert!(child(probes_for(&host, None, "/")));
    }
}
