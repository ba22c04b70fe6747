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
