//! Cgroup controllers: what the kernel counts (`/proc/cgroups`) against what the cgroup
//! filesystems show. The two differ by cgroups that were removed but are still pinned by
//! charged memory ("dying" memcgs, incident 2b): the kernel keeps counting them, `rmdir`
//! already made them invisible.

use super::kernel::Mount;
use super::{HostRoot, Unavailable, parse_with};
use procfs_core::{CGroupControllers, FromBufRead};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Cgroups {
    /// `/proc/cgroups`: one entry per controller.
    pub controllers: Vec<Controller>,
    /// Cgroup directories found under each v1 controller's mount, by controller name.
    pub v1_directories: BTreeMap<String, u64>,
    /// Cgroup directories under the v2 (unified) mount, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v2_directories: Option<u64>,
    /// `nr_dying_descendants` of the v2 root's `cgroup.stat`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v2_dying_descendants: Option<u64>,
    /// Where the v2 hierarchy is mounted (host path), e.g. `/sys/fs/cgroup` or
    /// `/sys/fs/cgroup/unified` on a hybrid host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v2_mount: Option<String>,
    /// Where each v1 controller is mounted (host path).
    #[serde(default)]
    pub v1_mounts: BTreeMap<String, String>,
    /// Pids cgroups that have a limit or have refused a fork (v1 `pids` hierarchy and v2).
    #[serde(default)]
    pub pids: Vec<PidsCgroup>,
    /// True when the pids walk stopped at its bound before seeing every cgroup.
    #[serde(default)]
    pub pids_truncated: bool,
}

/// A cgroup's pids controller: `pids.current` against `pids.max`, and `pids.events`'s `max`
/// counter (forks refused because of this cgroup's limit or an ancestor's, see
/// kernel/cgroup/pids.c `pids_can_fork`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidsCgroup {
    /// Path inside its hierarchy, as `/proc/PID/cgroup` spells it ("/kubepods/pod<uid>/<id>").
    pub path: String,
    /// "v1" (the `pids` hierarchy) or "v2".
    pub hierarchy: String,
    pub current: u64,
    /// `None` when `pids.max` reads "max".
    pub max: Option<u64>,
    /// The `max` line of `pids.events`.
    pub events_max: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Controller {
    pub name: String,
    /// v1 hierarchy id; 0 when the controller is on the v2 hierarchy or unmounted.
    pub hierarchy: u32,
    pub num_cgroups: u32,
    pub enabled: bool,
}

/// Bound on how many cgroup directories are walked per hierarchy, so a node that leaks
/// cgroups cannot make the scan unbounded.
const MAX_DIRS: u64 = 200_000;

pub fn read_cgroups(
    host: &HostRoot,
    mounts: Option<&[Mount]>,
    unavailable: &mut Vec<Unavailable>,
) -> Cgroups {
    let mut out = Cgroups::default();
    if let Ok(b) = host.read("proc/cgroups").map_err(|u| unavailable.push(u))
        && let Ok(c) = parse_with("proc/cgroups", &b, |b| CGroupControllers::from_buf_read(b))
            .map_err(|u| unavailable.push(u))
    {
        out.controllers =
            c.0.into_iter()
                .map(|c| Controller {
                    name: c.name,
                    hierarchy: c.hierarchy,
                    num_cgroups: c.num_cgroups,
                    enabled: c.enabled,
                })
                .collect();
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
                let dir = host.path(&m.mount_point);
                let (count, truncated) = walk(&dir, |d| {
                    if pids_on_v2 && let Some(c) = read_pids_files(&dir, d, "v2") {
                        pids.push(c);
                    }
                });
                out.v2_directories = Some(count);
                out.pids_truncated |= truncated && pids_on_v2;
                out.v2_dying_descendants = std::fs::read_to_string(dir.join("cgroup.stat"))
                    .ok()
                    .and_then(|s| stat_field(&s, "nr_dying_descendants"));
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
                let dir = host.path(&m.mount_point);
                let (count, truncated) = walk(&dir, |d| {
                    if has_pids && let Some(c) = read_pids_files(&dir, d, "v1") {
                        pids.push(c);
                    }
                });
                out.pids_truncated |= truncated && has_pids;
                for c in controllers {
                    out.v1_directories.insert(c.to_string(), count);
                    out.v1_mounts.insert(c.to_string(), m.mount_point.clone());
                }
            }
            _ => {}
        }
    }
    pids.sort_by(|a, b| (&a.hierarchy, &a.path).cmp(&(&b.hierarchy, &b.path)));
    out.pids = pids;
    out
}

/// The number after `key` on the line starting with it ("nr_dying_descendants 3", "max 12").
fn stat_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
}

/// The pids cgroup at `dir` (below the hierarchy's `mount`), when it has a limit or has
/// refused a fork; the root has no limit files.
fn read_pids_files(mount: &Path, dir: &Path, hierarchy: &str) -> Option<PidsCgroup> {
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
    let max = parse_pids_max(&read("pids.max")?)?;
    let current = read("pids.current")?.trim().parse().ok()?;
    let events_max = read("pids.events")
        .and_then(|s| stat_field(&s, "max "))
        .unwrap_or(0);
    if max.is_none() && events_max == 0 {
        return None;
    }
    let rel = dir.strip_prefix(mount).ok()?;
    Some(PidsCgroup {
        path: format!("/{}", rel.display()),
        hierarchy: hierarchy.to_string(),
        current,
        max,
        events_max,
    })
}

/// `pids.max` is a number or "max" (no limit). `None` for garbage.
pub fn parse_pids_max(text: &str) -> Option<Option<u64>> {
    match text.trim() {
        "max" => Some(None),
        n => n.parse().ok().map(Some),
    }
}

/// Visits `root` and every directory below it (each is one cgroup), at most `MAX_DIRS`.
/// Returns how many were visited and whether the bound stopped the walk.
fn walk(root: &Path, mut visit: impl FnMut(&Path)) -> (u64, bool) {
    let mut count = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        count += 1;
        if count >= MAX_DIRS {
            return (count, true);
        }
        visit(&dir);
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
    (count, false)
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
}
