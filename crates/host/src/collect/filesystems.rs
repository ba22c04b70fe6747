//! Usage of the filesystems a node's workloads fill: the root, kubelet's and the container
//! runtimes' state, and the coredump store (incident 3: container cores land on the host's
//! root through `systemd-coredump`).
//!
//! `statvfs` of a mount whose FUSE or NFS server is gone blocks in the kernel, and so does
//! `lstat` of a path below it — the `df` hang of a sick node. So the mount holding each
//! watched path is found in the mount table (no filesystem access), and every `statvfs` or
//! existence probe runs through [`crate::blocking`] with a short timeout: a dead mount
//! becomes a `Timeout` entry, never a hung run.

use super::mounts::{host_relative, mount_of};
use crate::blocking::{self, Blocking};
use crate::fs::{EntryKind, FsStat, HostFs};
use node_doctor_core::model::{FilesystemUsage, Kind, Mount, Role, Unavailable};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one probe may block before its filesystem is reported as not answering.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

enum Probe {
    Missing,
    /// Exists; its filesystem's counts when asked for.
    Found(Option<FsStat>),
}

/// Whether `path` exists (skipped for a mount point, which does) and, with `measure`, the
/// `statvfs` of its filesystem.
fn probe(
    fs: &Arc<dyn HostFs>,
    path: &str,
    is_mount_point: bool,
    measure: bool,
    deadline: Option<Instant>,
) -> Result<Probe, Unavailable> {
    let key = format!("statvfs:{}{path}", fs.root().display());
    let f = fs.clone();
    let p = path.to_string();
    let r = blocking::run_for(&key, PROBE_TIMEOUT, deadline, move || {
        if !is_mount_point {
            match f.entry_kind(&p) {
                Ok(EntryKind::Dir | EntryKind::Symlink) => {}
                Ok(_) => return Ok(Probe::Missing),
                Err(u) if u.kind == Kind::NotFound && p != "/" => return Ok(Probe::Missing),
                Err(u) => return Err(u),
            }
        }
        if !measure {
            return Ok(Probe::Found(None));
        }
        f.statvfs(&p).map(|s| Probe::Found(Some(s)))
    });
    match r {
        Blocking::Done(r) => r,
        Blocking::TimedOut => Err(Unavailable::timeout(
            path,
            "statvfs did not return: the filesystem (or a mount below it) does not answer",
        )),
        Blocking::StillBlocked { since } => Err(Unavailable::timeout(
            path,
            format!(
                "a statvfs started {}s ago is still blocked: the filesystem does not answer",
                since.elapsed().as_secs()
            ),
        )),
        Blocking::Refused(why) => Err(Unavailable::timeout(path, why)),
    }
}

pub fn read(
    fs: &Arc<dyn HostFs>,
    mounts: Option<&[Mount]>,
    deadline: Option<Instant>,
    unavailable: &mut Vec<Unavailable>,
) -> Vec<FilesystemUsage> {
    let root = fs.root().to_string_lossy().into_owned();
    // Mount points as the host root sees them.
    let table: Option<Vec<Mount>> = mounts.map(|ms| {
        ms.iter()
            .map(|m| Mount {
                mount_point: host_relative(&m.mount_point, &root),
                ..m.clone()
            })
            .collect()
    });
    let mut out: Vec<FilesystemUsage> = Vec::new();
    let mut measured: Vec<(Option<i32>, FsStat)> = Vec::new();
    for (watched, role) in Role::WATCHED {
        let mount = table.as_deref().and_then(|t| mount_of(t, watched));
        let is_mount_point = mount.is_some_and(|m| m.mount_point == *watched);
        let id = mount.map(|m| m.mount_id);
        // On a mount already measured: only whether the path exists is left to learn.
        let known = id.and_then(|id| measured.iter().position(|(mid, _)| *mid == Some(id)));
        let stat = match probe(fs, watched, is_mount_point, known.is_none(), deadline) {
            Ok(Probe::Found(s)) => s,
            Ok(Probe::Missing) => continue,
            Err(u) => {
                unavailable.push(u);
                continue;
            }
        };
        // Without a mount table, the same counts mean the same filesystem.
        let same = known.or_else(|| {
            measured
                .iter()
                .position(|(mid, s)| mid.is_none() && id.is_none() && Some(*s) == stat)
        });
        if let Some(i) = same
            && let Some(fs_entry) = out.get_mut(i)
        {
            fs_entry.paths.push((*watched).to_string());
            fs_entry.roles.push(*role);
            continue;
        }
        let Some(stat) = stat else { continue };
        measured.push((id, stat));
        out.push(FilesystemUsage {
            paths: vec![(*watched).to_string()],
            roles: vec![*role],
            mount_point: mount.map_or_else(|| (*watched).to_string(), |m| m.mount_point.clone()),
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
