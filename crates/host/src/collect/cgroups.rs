//! Cgroup controllers: what the kernel counts (`/proc/cgroups`) against what the cgroup
//! filesystems show, and pids cgroups with a limit. The two counts differ by cgroups that
//! were removed but are still pinned by charged memory ("dying" memcgs, incident 2b): the
//! kernel keeps counting them, `rmdir` already made them invisible.
//!
//! Walks are bounded: at most [`MAX_DIRS`] directories per hierarchy and [`MAX_PIDS_KEPT`]
//! pids cgroups kept, and the deadline is honoured, so a node leaking cgroups by the hundred
//! thousand costs a bounded walk and an explicit "truncated", not minutes and gigabytes.

use crate::fs::{DEFAULT_CAP, EntryKind, HostFs, read_string};
use crate::parse::kernel::parse_proc_cgroups;
use node_doctor_core::model::{Cgroups, Hierarchy, Kind, Mount, PidsCgroup, Unavailable};
use std::time::Instant;

/// Directories walked per hierarchy at most.
pub const MAX_DIRS: u64 = 50_000;
/// Pids cgroups (with a limit or refusals) kept at most.
pub const MAX_PIDS_KEPT: usize = 5_000;
/// Entries read from one directory at most.
const MAX_ENTRIES: usize = 100_000;

pub fn read(
    fs: &dyn HostFs,
    mounts: Option<&[Mount]>,
    deadline: Option<Instant>,
    unavailable: &mut Vec<Unavailable>,
) -> Cgroups {
    read_bounded(fs, mounts, deadline, MAX_DIRS, unavailable)
}

/// [`read`] with a bound of `max_dirs` directories per hierarchy (tests use a small one: a
/// tree of [`MAX_DIRS`] directories takes longer to make than a test should).
pub fn read_bounded(
    fs: &dyn HostFs,
    mounts: Option<&[Mount]>,
    deadline: Option<Instant>,
    max_dirs: u64,
    unavailable: &mut Vec<Unavailable>,
) -> Cgroups {
    let mut out = Cgroups::default();
    match read_string(fs, "proc/cgroups", DEFAULT_CAP) {
        Ok(t) => match parse_proc_cgroups(&t) {
            Ok(c) => out.controllers = c,
            Err(e) => unavailable.push(Unavailable::malformed("proc/cgroups", e)),
        },
        Err(u) => unavailable.push(u),
    }
    let Some(mounts) = mounts else { return out };
    // pids sits on v2 when /proc/cgroups gives it hierarchy 0 (or does not say).
    let pids_on_v2 = out
        .controllers
        .iter()
        .find(|c| c.name == "pids")
        .is_none_or(|c| c.hierarchy == 0);
    let mut pids = Vec::new();
    for m in mounts {
        match m.fs_type.as_str() {
            "cgroup2" if out.v2_mount.is_none() => {
                let w = walk(
                    fs,
                    &m.mount_point,
                    pids_on_v2.then_some(Hierarchy::V2),
                    &mut pids,
                    Bounds { max_dirs, deadline },
                );
                out.v2_directories = Some(w.dirs);
                out.pids_truncated |= w.truncated && pids_on_v2;
                w.report(&m.mount_point, unavailable);
                out.v2_dying_descendants = fs
                    .read(&format!("{}/cgroup.stat", m.mount_point), DEFAULT_CAP)
                    .ok()
                    .and_then(|b| stat_field(&String::from_utf8_lossy(&b), "nr_dying_descendants"));
                out.v2_mount = Some(m.mount_point.clone());
            }
            "cgroup" => {
                // One walk per mount, shared by the controllers mounted together (cpu,cpuacct).
                let controllers: Vec<&str> = m
                    .super_options
                    .split(',')
                    .filter(|opt| {
                        out.controllers.iter().any(|c| c.name == *opt)
                            && !out.v1_directories.contains_key(*opt)
                    })
                    .collect();
                if controllers.is_empty() {
                    continue;
                }
                let has_pids = controllers.contains(&"pids");
                let w = walk(
                    fs,
                    &m.mount_point,
                    has_pids.then_some(Hierarchy::V1),
                    &mut pids,
                    Bounds { max_dirs, deadline },
                );
                out.pids_truncated |= w.truncated && has_pids;
                w.report(&m.mount_point, unavailable);
                for c in controllers {
                    out.v1_directories.insert(c.to_string(), w.dirs);
                    out.v1_mounts.insert(c.to_string(), m.mount_point.clone());
                }
            }
            _ => {}
        }
    }
    pids.sort_by(|a: &PidsCgroup, b: &PidsCgroup| {
        (a.hierarchy, &a.path).cmp(&(b.hierarchy, &b.path))
    });
    out.pids = pids;
    out
}

/// The number after `key` on the line starting with it ("nr_dying_descendants 3", "max 12").
pub fn stat_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
}

/// `pids.max` is a number or "max" (no limit). `None` for garbage.
pub fn parse_pids_max(text: &str) -> Option<Option<u64>> {
    match text.trim() {
        "max" => Some(None),
        n => n.parse().ok().map(Some),
    }
}

/// The pids cgroup at `dir` (below the hierarchy's `mount`), when it has a limit or has
/// refused a fork; the root has no limit files.
fn read_pids_files(
    fs: &dyn HostFs,
    mount: &str,
    dir: &str,
    hierarchy: Hierarchy,
) -> Option<PidsCgroup> {
    let read = |f: &str| {
        fs.read(&format!("{dir}/{f}"), 4096)
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    let max = parse_pids_max(&read("pids.max")?)?;
    let events_max = read("pids.events")
        .and_then(|s| stat_field(&s, "max "))
        .unwrap_or(0);
    if max.is_none() && events_max == 0 {
        return None;
    }
    let current = read("pids.current")?.trim().parse().ok()?;
    let rel = dir.strip_prefix(mount.trim_end_matches('/')).unwrap_or(dir);
    Some(PidsCgroup {
        path: if rel.is_empty() {
            "/".into()
        } else {
            rel.to_string()
        },
        hierarchy,
        current,
        max,
        events_max,
    })
}

struct Walk {
    dirs: u64,
    truncated: bool,
    why: &'static str,
}

impl Walk {
    /// A walk that stopped early is a blind spot: recorded under the hierarchy's mount.
    fn report(&self, mount_point: &str, unavailable: &mut Vec<Unavailable>) {
        if self.truncated {
            unavailable.push(Unavailable::new(
                mount_point,
                Kind::Truncated,
                format!(
                    "truncated: the walk stopped after {} cgroups ({})",
                    self.dirs, self.why
                ),
            ));
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bounds {
    max_dirs: u64,
    deadline: Option<Instant>,
}

/// Visits `root` and every directory below it (each is one cgroup), within the bounds.
fn walk(
    fs: &dyn HostFs,
    root: &str,
    pids: Option<Hierarchy>,
    kept: &mut Vec<PidsCgroup>,
    Bounds { max_dirs, deadline }: Bounds,
) -> Walk {
    let mut w = Walk {
        dirs: 0,
        truncated: false,
        why: "",
    };
    let mut stack = vec![root.trim_end_matches('/').to_string()];
    if stack.first().is_some_and(String::is_empty) {
        stack = vec!["/".into()];
    }
    while let Some(dir) = stack.pop() {
        // A directory left to visit past the bound: the walk is cut (a tree of exactly the
        // bound is walked whole).
        if w.dirs >= max_dirs {
            (w.truncated, w.why) = (true, "bound on directories");
            break;
        }
        let Ok(listing) = fs.read_dir(&dir, MAX_ENTRIES) else {
            continue;
        };
        w.dirs = w.dirs.saturating_add(1);
        // One directory with more entries than are listed: its other children are unseen.
        if listing.truncated {
            (w.truncated, w.why) = (true, "bound on entries of one directory");
        }
        if w.dirs.is_multiple_of(256) && deadline.is_some_and(|d| Instant::now() >= d) {
            (w.truncated, w.why) = (true, "deadline");
            break;
        }
        if let Some(h) = pids {
            if kept.len() >= MAX_PIDS_KEPT {
                (w.truncated, w.why) = (true, "bound on pids cgroups kept");
                break;
            }
            if let Some(c) = read_pids_files(fs, root, &dir, h) {
                kept.push(c);
            }
        }
        for e in listing.entries {
            if e.kind == EntryKind::Dir {
                stack.push(format!("{}/{}", dir.trim_end_matches('/'), e.name));
            }
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_max_forms() {
        assert_eq!(parse_pids_max("max\n"), Some(None));
        assert_eq!(parse_pids_max("32\n"), Some(Some(32)));
        assert_eq!(parse_pids_max("lots"), None);
    }

    #[test]
    fn pids_events_max_line() {
        assert_eq!(stat_field("max 7\n", "max "), Some(7));
        // v2 on 6.x also has max.imposed; it must not be read as "max".
        assert_eq!(stat_field("max.imposed 3\nmax 2\n", "max "), Some(2));
        assert_eq!(stat_field("", "max "), None);
    }

    #[test]
    fn a_huge_hierarchy_is_walked_to_the_bound_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("sys/fs/cgroup/pids");
        for i in 0..40 {
            let d = root.join(format!("c{i}"));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("pids.max"), "10\n").unwrap();
            std::fs::write(d.join("pids.current"), "3\n").unwrap();
            std::fs::write(d.join("pids.events"), "max 0\n").unwrap();
        }
        let fs = crate::fs::RealFs::new(dir.path()).unwrap();
        let mut kept = Vec::new();
        let w = walk(
            &fs,
            "/sys/fs/cgroup/pids",
            Some(Hierarchy::V1),
            &mut kept,
            Bounds {
                max_dirs: MAX_DIRS,
                deadline: None,
            },
        );
        assert_eq!((w.dirs, w.truncated, kept.len()), (41, false, 40));
        assert!(
            kept.iter()
                .all(|c| c.path.starts_with("/c") && c.max == Some(10))
        );
        // A deadline already passed stops the walk at the next check.
        let mut kept = Vec::new();
        let w = walk(
            &fs,
            "/sys/fs/cgroup/pids",
            Some(Hierarchy::V1),
            &mut kept,
            Bounds {
                max_dirs: MAX_DIRS,
                deadline: Some(Instant::now()),
            },
        );
        assert!(w.dirs <= 256);
    }

    #[test]
    fn the_directory_bound_cuts_only_a_larger_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cg");
        for i in 0..9 {
            std::fs::create_dir_all(root.join(format!("c{i}"))).unwrap();
        }
        let fs = crate::fs::RealFs::new(dir.path()).unwrap();
        let walk_with = |max_dirs| {
            let bounds = Bounds {
                max_dirs,
                deadline: None,
            };
            let w = walk(&fs, "/cg", None, &mut Vec::new(), bounds);
            (w.dirs, w.truncated)
        };
        // 10 directories: the root and its 9 children.
        assert_eq!(walk_with(10), (10, false));
        assert_eq!(walk_with(9), (9, true));
        let mut unavailable = Vec::new();
        let w = walk(
            &fs,
            "/cg",
            None,
            &mut Vec::new(),
            Bounds {
                max_dirs: 3,
                deadline: None,
            },
        );
        w.report("/cg", &mut unavailable);
        assert_eq!(unavailable.len(), 1);
        assert_eq!(
            (unavailable[0].path.as_str(), unavailable[0].kind),
            ("cg", Kind::Truncated)
        );
    }
}
