//! The host's mount table: `proc/1/mountinfo` (init's mount namespace is the host's, also
//! when read from a DaemonSet with hostPID), falling back to `proc/self/mountinfo`. A table
//! larger than the read cap is itself the symptom (leaked mounts, incident 2c): it is
//! reported as truncated, with the mounts that were read kept.

use crate::fs::{HostFs, LARGE_CAP};
use crate::parse::kernel::parse_mountinfo;
use node_doctor_core::model::{Mount, Unavailable};

pub fn read(fs: &dyn HostFs, unavailable: &mut Vec<Unavailable>) -> Option<Vec<Mount>> {
    let mut errors = Vec::new();
    for rel in ["proc/1/mountinfo", "proc/self/mountinfo"] {
        match fs.read_prefix(rel, LARGE_CAP) {
            Ok((bytes, cut)) => {
                if cut {
                    unavailable.push(Unavailable::truncated(rel, LARGE_CAP));
                }
                let (mounts, bad) = parse_mountinfo(&String::from_utf8_lossy(&bytes), cut);
                if let Some(first) = bad.first() {
                    unavailable.push(Unavailable::malformed(
                        rel,
                        format!("{} lines did not parse, first: {first}", bad.len()),
                    ));
                }
                return Some(mounts);
            }
            Err(u) => errors.push(u),
        }
    }
    unavailable.extend(errors);
    None
}

/// The mount holding `path`: the longest mount point that is a prefix of it (the last
/// one mounted when several share a point, as the kernel resolves them).
pub fn mount_of<'a>(mounts: &'a [Mount], path: &str) -> Option<&'a Mount> {
    let is_prefix = |mp: &str| mp == "/" || path == mp || path.starts_with(&format!("{mp}/"));
    mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| is_prefix(&m.mount_point))
        .max_by_key(|(i, m)| (m.mount_point.len(), *i))
        .map(|(_, m)| m)
}

/// A mount point as seen from the host root: when the table was read from outside that
/// root (a DaemonSet without hostPID, a test tree), its prefix is stripped.
pub fn host_relative(mount_point: &str, root: &str) -> String {
    let root = root.trim_end_matches('/');
    if root.is_empty() {
        return mount_point.to_string();
    }
    match mount_point.strip_prefix(root) {
        Some("") => "/".into(),
        Some(rest) if rest.starts_with('/') => rest.into(),
        _ => mount_point.to_string(),
    }
}

/// The FUSE and network mounts of the host, to keep plain reads (open, read, readdir,
/// stat) away from: a lookup below one whose server is gone waits in the kernel forever
/// (fs/fuse/dev.c `request_wait_answer`; an NFS hard mount retries without end), and a
/// thread stuck there keeps the whole process from exiting. Collectors that read files at
/// configured paths (the kubelet's `--config`, containerd's content store under its root)
/// ask [`RemoteMounts::why_not`] first; `statvfs` of such paths is the filesystems
/// collector's, which probes them in a child process.
#[derive(Debug, Clone, Default)]
pub struct RemoteMounts {
    /// (mount point as seen from the host root, filesystem type).
    points: Vec<(String, String)>,
}

impl RemoteMounts {
    pub fn of(mounts: Option<&[Mount]>, root: &str) -> RemoteMounts {
        RemoteMounts {
            points: mounts
                .unwrap_or(&[])
                .iter()
                .filter(|m| m.is_remote_or_fuse())
                .map(|m| (host_relative(&m.mount_point, root), m.fs_type.clone()))
                .collect(),
        }
    }

    /// Why `path` (host-absolute) is not read: the FUSE/network mount its lookup crosses.
    pub fn why_not(&self, path: &str) -> Option<String> {
        let path = format!("/{}", path.trim_start_matches('/'));
        let crosses = |mp: &str| mp == "/" || path == mp || path.starts_with(&format!("{mp}/"));
        self.points
            .iter()
            .find(|(mp, _)| crosses(mp))
            .map(|(mp, t)| {
                format!(
                    "not read: below the {t} mount at {mp}, where a read waits forever once its server is gone"
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: i32, mp: &str, fs: &str) -> Mount {
        Mount {
            mount_id: id,
            parent_id: 1,
            device: format!("0:{id}"),
            root: "/".into(),
            mount_point: mp.into(),
            fs_type: fs.into(),
            source: None,
            super_options: String::new(),
        }
    }

    #[test]
    fn longest_prefix_and_the_last_mounted_wins() {
        let ms = vec![
            m(1, "/", "ext4"),
            m(2, "/var/lib/kubelet", "tmpfs"),
            m(3, "/var/lib", "xfs"),
            m(4, "/var/lib/kubelet", "fuse"),
        ];
        assert_eq!(
            mount_of(&ms, "/var/lib/kubelet").map(|m| m.mount_id),
            Some(4)
        );
        assert_eq!(
            mount_of(&ms, "/var/lib/kubeletx").map(|m| m.mount_id),
            Some(3)
        );
        assert_eq!(mount_of(&ms, "/etc").map(|m| m.mount_id), Some(1));
        assert_eq!(mount_of(&[], "/"), None);
    }

    #[test]
    fn remote_mounts_keep_reads_away_from_fuse_and_nfs() {
        let table = vec![
            m(1, "/", "ext4"),
            m(2, "/host/var/lib/kubelet", "fuse.juicefs"),
            m(3, "/host/mnt/nfs", "nfs4"),
            m(4, "/host/var/lib/containerd", "xfs"),
        ];
        let r = RemoteMounts::of(Some(&table), "/host");
        assert!(r.why_not("/var/lib/kubelet/config.yaml").is_some());
        assert!(r.why_not("var/lib/kubelet").is_some());
        assert!(r.why_not("/mnt/nfs/x").is_some());
        assert!(r.why_not("/var/lib/kubelet2/config.yaml").is_none());
        assert!(
            r.why_not("/var/lib/containerd/io.containerd.content.v1.content")
                .is_none()
        );
        assert!(
            RemoteMounts::of(None, "/")
                .why_not("/var/lib/kubelet")
                .is_none()
        );
    }

    #[test]
    fn host_relative_points() {
        assert_eq!(
            host_relative("/host/var/lib/kubelet", "/host"),
            "/var/lib/kubelet"
        );
        assert_eq!(host_relative("/host", "/host/"), "/");
        assert_eq!(host_relative("/hostile", "/host"), "/hostile");
        assert_eq!(host_relative("/var", "/"), "/var");
    }
}
