//! Who owns the mount table's mounts (incident 2c): the kubelet's pod directories under
//! which the table has pod volume mounts, and systemd as PID 1, read without D-Bus.
//!
//! systemd: every mount of PID 1's namespace is a `.mount` unit (src/core/mount.c loads
//! one per mountinfo line), so the mount table already *is* the count of mount units; the
//! state systemd leaves on disk adds the transient units (`/run/systemd/transient/`, one
//! file per `systemd-run` unit, unlinked when the unit is collected: the kubelet's
//! `run-r<id>.scope` "Kubernetes transient mount" scopes that leaked in k/k#57345).
//! `/run/systemd/units/invocation:*` is not used: a mount unit gets an invocation id only
//! when systemd itself starts it (`mount_start`), not when a mount appears from outside,
//! so it would miss exactly the kubelet's mounts. What D-Bus alone shows — mount units
//! left loaded after their mount is gone (systemd < 237) — is not read.

use crate::blocking::{self, Blocking};
use crate::fs::{EntryKind, HostFs, read_trimmed};
use node_doctor_core::attribution::pod_mount;
use node_doctor_core::model::{Mount, PodsDir, Systemd, Unavailable};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most distinct `pods/` directories listed (a node has one kubelet root).
const MAX_PODS_DIRS: usize = 8;
/// Most entries listed from one directory.
const MAX_ENTRIES: usize = 100_000;
/// A listing under the kubelet's root can block on a dead FUSE/NFS volume below it.
const LIST_TIMEOUT: Duration = Duration::from_secs(2);

/// The `pods/` directories the mount table's pod mounts are under, each listed once.
pub fn kubelet_pods(
    fs: &Arc<dyn HostFs>,
    mounts: Option<&[Mount]>,
    deadline: Option<Instant>,
    unavailable: &mut Vec<Unavailable>,
) -> Vec<PodsDir> {
    let mut dirs: Vec<&str> = Vec::new();
    for m in mounts.unwrap_or(&[]) {
        if let Some(p) = pod_mount(&m.mount_point)
            && !dirs.contains(&p.pods_dir)
            && dirs.len() < MAX_PODS_DIRS
        {
            dirs.push(p.pods_dir);
        }
    }
    dirs.into_iter()
        .map(|dir| {
            let key = format!("readdir:{}{dir}", fs.root().display());
            let (f, d) = (fs.clone(), dir.to_string());
            let listed = match blocking::run_for(&key, LIST_TIMEOUT, deadline, move || {
                f.read_dir(&d, MAX_ENTRIES)
            }) {
                Blocking::Done(r) => r,
                Blocking::TimedOut | Blocking::StillBlocked { .. } => Err(Unavailable::timeout(
                    dir,
                    "listing did not return: a filesystem below it does not answer",
                )),
                Blocking::Refused(why) => Err(Unavailable::timeout(dir, why)),
            };
            match listed {
                Ok(l) => {
                    let mut uids: Vec<String> = l
                        .entries
                        .into_iter()
                        .filter(|e| e.kind == EntryKind::Dir)
                        .map(|e| e.name)
                        .collect();
                    uids.sort_unstable();
                    PodsDir {
                        path: dir.to_string(),
                        uids: Some(uids),
                        truncated: l.truncated,
                    }
                }
                Err(u) => {
                    unavailable.push(u);
                    PodsDir {
                        path: dir.to_string(),
                        uids: None,
                        truncated: false,
                    }
                }
            }
        })
        .collect()
}

/// `run-r` + 32 hex + `.scope`: the name `systemd-run --scope` gives a unit not named.
fn is_run_scope(name: &str) -> bool {
    name.strip_prefix("run-r")
        .and_then(|n| n.strip_suffix(".scope"))
        .is_some_and(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// PID 1's comm: `proc/1/comm`, else the name in `proc/1/stat` (fixture trees).
fn pid1_comm(fs: &dyn HostFs) -> Option<String> {
    read_trimmed(fs, "proc/1/comm").ok().or_else(|| {
        let stat = read_trimmed(fs, "proc/1/stat").ok()?;
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        stat.get(open.checked_add(1)?..close).map(str::to_string)
    })
}

/// systemd's state as files show it; listing `/run` (a tmpfs) cannot block.
pub fn systemd(fs: &dyn HostFs, unavailable: &mut Vec<Unavailable>) -> Systemd {
    let mut s = Systemd {
        booted: matches!(fs.entry_kind("run/systemd/system"), Ok(EntryKind::Dir)),
        pid1_comm: pid1_comm(fs),
        ..Systemd::default()
    };
    if !s.booted {
        return s;
    }
    match fs.read_dir("run/systemd/transient", MAX_ENTRIES) {
        Ok(l) => {
            s.transient_truncated = l.truncated;
            for e in l.entries.iter().filter(|e| e.kind == EntryKind::File) {
                if let Some((_, kind)) = e.name.rsplit_once('.') {
                    let n = s.transient_units.entry(kind.to_string()).or_insert(0);
                    *n = n.saturating_add(1);
                }
                if is_run_scope(&e.name) {
                    s.transient_run_scopes = s.transient_run_scopes.saturating_add(1);
                }
            }
        }
        // Created with the first transient unit: none yet.
        Err(u) if u.kind == node_doctor_core::model::Kind::NotFound => {}
        Err(u) => unavailable.push(u),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_scopes_by_name() {
        assert!(is_run_scope("run-r361a3532841744099b60e29f9b929c58.scope"));
        assert!(!is_run_scope("run-r361a.scope"));
        assert!(!is_run_scope("kubelet.service"));
    }

    #[test]
    fn systemd_state_from_a_tree() {
        let dir = tempfile::tempdir().unwrap();
        let fs = crate::fs::RealFs::new(dir.path()).unwrap();
        let mut u = Vec::new();
        assert!(!systemd(&fs, &mut u).booted, "no /run/systemd/system");
        let t = dir.path().join("run/systemd/transient");
        std::fs::create_dir_all(dir.path().join("run/systemd/system")).unwrap();
        std::fs::create_dir_all(&t).unwrap();
        std::fs::create_dir_all(dir.path().join("proc/1")).unwrap();
        std::fs::write(dir.path().join("proc/1/stat"), "1 (systemd) S 0 1 1\n").unwrap();
        for name in [
            "run-r361a3532841744099b60e29f9b929c58.scope",
            "run-r461a3532841744099b60e29f9b929c58.scope",
            "var-lib-x.mount",
        ] {
            std::fs::write(t.join(name), "[Unit]\n").unwrap();
        }
        let s = systemd(&fs, &mut u);
        assert!(s.is_pid1(), "{s:?}");
        assert_eq!(s.transient_units.get("scope"), Some(&2));
        assert_eq!(s.transient_units.get("mount"), Some(&1));
        assert_eq!(s.transient_run_scopes, 2);
        assert!(u.is_empty(), "{u:?}");
    }
}
