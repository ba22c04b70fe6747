//! Cgroup controllers: what the kernel counts (`/proc/cgroups`) against what the cgroup
//! filesystems show, pids cgroups with a limit, and memory cgroups. The two counts differ
//! by cgroups that were removed but are still pinned by charged memory ("dying" memcgs,
//! incident 2b): the kernel keeps counting them, `rmdir` already made them invisible.
//!
//! Each hierarchy is walked once, and each directory's files are read once per sample:
//! the pids files where pids is bound, the memory files where memory is (v1's own
//! hierarchy, or v2 — there one walk reads both). The walk also notes the pod uids and
//! container ids the directory names spell, so other checks can tell whether a pod or a
//! container still exists.
//!
//! Walks are bounded: at most [`MAX_DIRS`] directories per hierarchy, [`MAX_PIDS_KEPT`]
//! pids cgroups and [`MAX_MEMORY_KEPT`] memory cgroups kept, and the deadline is honoured,
//! so a node leaking cgroups by the hundred thousand costs a bounded walk and an explicit
//! "truncated", not minutes and gigabytes.

use crate::blocking::{self, Blocking};
use crate::fs::{DEFAULT_CAP, EntryKind, HostFs, read_string};
use crate::parse::kernel::{parse_pressure, parse_proc_cgroups};
use crate::parse::memcg::{
    parse_cgroup_stat, parse_events, parse_limit, parse_memory_stat, parse_number,
    parse_oom_control,
};
use node_doctor_core::attribution::parse_cgroup_path;
use node_doctor_core::model::{
    Cgroups, Hierarchy, Kind, MemoryCgroup, Mount, PidsCgroup, StatLatency, Unavailable,
};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Directories walked per hierarchy at most.
pub const MAX_DIRS: u64 = 50_000;
/// Pids cgroups (with a limit or refusals) kept at most.
pub const MAX_PIDS_KEPT: usize = 5_000;
/// Memory cgroups kept at most (a node runs ~110 pods of a few containers each).
pub const MAX_MEMORY_KEPT: usize = 2_000;
/// Pod uids and container ids noted at most (each).
pub const MAX_IDS: usize = 20_000;
/// Entries read from one directory at most.
const MAX_ENTRIES: usize = 100_000;
/// Longest the timed read of the root's `memory.stat` may take (incident 2b's was 1.2 s).
pub const MEMORY_STAT_TIMEOUT: Duration = Duration::from_secs(2);
/// Cgroup files are small; `memory.stat` is the largest (~1.5 KiB).
const FILE_CAP: usize = 64 << 10;

/// What to read while walking one hierarchy.
#[derive(Debug, Clone, Copy, Default)]
struct Visit {
    /// The pids files, as cgroups of this hierarchy.
    pids: Option<Hierarchy>,
    /// The memory files, as cgroups of this hierarchy.
    memory: Option<Hierarchy>,
    /// The root's `cgroup.stat` (v2).
    v2_root: bool,
}

/// What a walk found, across hierarchies.
#[derive(Default)]
struct Found {
    pids: Vec<PidsCgroup>,
    memory: Vec<MemoryCgroup>,
    memory_truncated: bool,
    stat_latency: Option<StatLatency>,
    root_stat: (Option<u64>, Option<u64>),
    pod_uids: BTreeSet<String>,
    container_ids: BTreeSet<String>,
    /// An id set reached its cap.
    ids_capped: bool,
    /// Any v1 hierarchy, and the v2 one, was walked in full.
    v1_complete: bool,
    v2_complete: bool,
}

pub fn read(
    fs: &Arc<dyn HostFs>,
    mounts: Option<&[Mount]>,
    memcg: bool,
    deadline: Option<Instant>,
    unavailable: &mut Vec<Unavailable>,
) -> Cgroups {
    read_bounded(fs, mounts, memcg, deadline, MAX_DIRS, unavailable)
}

/// [`read`] with a bound of `max_dirs` directories per hierarchy (tests use a small one: a
/// tree of [`MAX_DIRS`] directories takes longer to make than a test should).
pub fn read_bounded(
    fs: &Arc<dyn HostFs>,
    mounts: Option<&[Mount]>,
    memcg: bool,
    deadline: Option<Instant>,
    max_dirs: u64,
    unavailable: &mut Vec<Unavailable>,
) -> Cgroups {
    let bounds = Bounds { max_dirs, deadline };
    let mut out = Cgroups::default();
    match read_string(&**fs, "proc/cgroups", DEFAULT_CAP) {
        Ok(t) => match parse_proc_cgroups(&t) {
            Ok(c) => out.controllers = c,
            Err(e) => unavailable.push(Unavailable::malformed("proc/cgroups", e)),
        },
        Err(u) => unavailable.push(u),
    }
    let Some(mounts) = mounts else { return out };
    // A controller sits on v2 when /proc/cgroups gives it hierarchy 0 (or does not say).
    let on_v2 = |name: &str| {
        out.controllers
            .iter()
            .find(|c| c.name == name)
            .is_none_or(|c| c.hierarchy == 0)
    };
    let (pids_on_v2, memory_on_v2) = (on_v2("pids"), on_v2("memory"));
    let mut found = Found::default();
    for m in mounts {
        match m.fs_type.as_str() {
            "cgroup2" if out.v2_mount.is_none() => {
                let visit = Visit {
                    pids: pids_on_v2.then_some(Hierarchy::V2),
                    memory: (memcg && memory_on_v2).then_some(Hierarchy::V2),
                    v2_root: true,
                };
                let w = walk(fs, &m.mount_point, visit, &mut found, bounds);
                found.v2_complete = w.complete();
                out.v2_directories = w.complete().then_some(w.dirs);
                out.pids_truncated |= w.truncated && pids_on_v2;
                out.v2_mount = Some(m.mount_point.clone());
                note_walk(&m.mount_point, &w, visit, unavailable);
            }
            "cgroup" => {
                // One walk per mount, shared by the controllers mounted together (cpu,cpuacct).
                let controllers: Vec<&str> = m
                    .super_options
                    .split(',')
                    .filter(|opt| {
                        out.controllers.iter().any(|c| c.name == *opt)
                            && !out.v1_mounts.contains_key(*opt)
                    })
                    .collect();
                if controllers.is_empty() {
                    continue;
                }
                let visit = Visit {
                    pids: controllers.contains(&"pids").then_some(Hierarchy::V1),
                    memory: (memcg && controllers.contains(&"memory")).then_some(Hierarchy::V1),
                    v2_root: false,
                };
                let w = walk(fs, &m.mount_point, visit, &mut found, bounds);
                found.v1_complete |= w.complete();
                out.pids_truncated |= w.truncated && visit.pids.is_some();
                note_walk(&m.mount_point, &w, visit, unavailable);
                for c in controllers {
                    if w.complete() {
                        out.v1_directories.insert(c.to_string(), w.dirs);
                    }
                    out.v1_mounts.insert(c.to_string(), m.mount_point.clone());
                }
            }
            _ => {}
        }
    }
    found.pids.sort_by(|a: &PidsCgroup, b: &PidsCgroup| {
        (a.hierarchy, &a.path).cmp(&(b.hierarchy, &b.path))
    });
    out.pids = found.pids;
    (out.v2_dying_descendants, out.v2_dying_memory) = found.root_stat;
    if memcg {
        found
            .memory
            .sort_by(|a, b| (a.hierarchy, &a.path).cmp(&(b.hierarchy, &b.path)));
        out.memory = Some(found.memory);
        out.memory_truncated = found.memory_truncated;
        out.memory_stat_latency = found.stat_latency;
    }
    out.pod_uids = found.pod_uids.into_iter().collect();
    out.container_ids = found.container_ids.into_iter().collect();
    // Pods and containers have a cgroup in every hierarchy they are placed in, so one
    // hierarchy seen in full lists them all: a v1 one on v1 and hybrid hosts (the hybrid
    // unified hierarchy may hold no container at all), else v2.
    let complete = if out.v1_mounts.is_empty() {
        found.v2_complete
    } else {
        found.v1_complete
    };
    out.ids_truncated = found.ids_capped || !complete;
    out
}

/// A walk that did not see everything says so: a truncated one always, a root that could
/// not be listed when its memory files were asked for (the dying count needs it).
fn note_walk(mount: &str, w: &Walk, visit: Visit, unavailable: &mut Vec<Unavailable>) {
    if w.truncated {
        unavailable.push(Unavailable::new(
            mount,
            Kind::Truncated,
            format!(
                "truncated: the walk stopped after {} cgroups ({})",
                w.dirs, w.why
            ),
        ));
    }
    if let (Some(u), Some(_)) = (&w.root_error, visit.memory) {
        unavailable.push(u.clone());
    }
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

/// A cgroup file as text, `None` when absent or unreadable (a cgroup removed meanwhile,
/// a file this kernel does not have).
fn read_file(fs: &dyn HostFs, dir: &str, name: &str) -> Option<String> {
    fs.read(&format!("{}/{name}", dir.trim_end_matches('/')), FILE_CAP)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// The pids cgroup at `dir` (path `rel` in its hierarchy), when it has a limit or has
/// refused a fork; the root has no limit files.
fn read_pids_files(
    fs: &dyn HostFs,
    dir: &str,
    rel: &str,
    hierarchy: Hierarchy,
) -> Option<PidsCgroup> {
    let read = |f: &str| read_file(fs, dir, f);
    let max = parse_pids_max(&read("pids.max")?)?;
    let events_max = read("pids.events")
        .and_then(|s| stat_field(&s, "max "))
        .unwrap_or(0);
    if max.is_none() && events_max == 0 {
        return None;
    }
    let current = read("pids.current")?.trim().parse().ok()?;
    Some(PidsCgroup {
        path: rel.to_string(),
        hierarchy,
        current,
        max,
        events_max,
    })
}

/// Kept whatever their files say: the root (its hierarchical statistics), the kubelet's
/// `kubepods` and QoS levels (their limit is node allocatable), pods and containers.
fn kept_by_path(rel: &str) -> bool {
    rel == "/"
        || rel.split('/').any(|c| c.starts_with("kubepods"))
        || !parse_cgroup_path(rel).is_empty()
}

/// The memory cgroup at `dir`, when it matters (see [`kept_by_path`]; else a limit, limit
/// hits, OOM kills or dying descendants). The files that decide are read first; the rest
/// only for a cgroup kept. `root_stat` is the root's `memory.stat`, already read (timed);
/// `cgroup_stat` the directory's `cgroup.stat` (v2), already read by the walk.
fn read_memory_files(
    fs: &dyn HostFs,
    dir: &str,
    rel: &str,
    h: Hierarchy,
    root_stat: Option<String>,
    cgroup_stat: Option<&str>,
) -> Option<MemoryCgroup> {
    let read = |f: &str| read_file(fs, dir, f);
    let mut m = MemoryCgroup {
        path: rel.to_string(),
        hierarchy: h,
        ..MemoryCgroup::default()
    };
    match h {
        Hierarchy::V1 => {
            m.limit_bytes = read("memory.limit_in_bytes")
                .and_then(|t| parse_limit(&t))
                .flatten();
            m.failcnt = read("memory.failcnt").and_then(|t| parse_number(&t));
            m.oom_control = read("memory.oom_control").and_then(|t| parse_oom_control(&t));
        }
        Hierarchy::V2 => {
            m.limit_bytes = read("memory.max").and_then(|t| parse_limit(&t)).flatten();
            m.high_bytes = read("memory.high").and_then(|t| parse_limit(&t)).flatten();
            m.events = read("memory.events").and_then(|t| parse_events(&t));
            m.events_local = read("memory.events.local").and_then(|t| parse_events(&t));
            m.dying_descendants = cgroup_stat.and_then(|t| parse_cgroup_stat(t).0);
        }
    }
    let notable = m.effective_limit().is_some()
        || m.limit_hits().is_some_and(|n| n > 0)
        || m.own_oom_kills().is_some_and(|n| n > 0)
        || m.events.is_some_and(|e| e.oom_kill > 0)
        || m.oom_control.is_some_and(|o| o.under_oom)
        || m.dying_descendants.is_some_and(|n| n > 0);
    if !notable && !kept_by_path(rel) {
        return None;
    }
    m.usage_bytes = match h {
        Hierarchy::V1 => read("memory.usage_in_bytes"),
        Hierarchy::V2 => read("memory.current"),
    }
    .and_then(|t| parse_number(&t));
    if h == Hierarchy::V2 {
        m.pressure = read("memory.pressure").and_then(|t| parse_pressure(&t).ok());
    }
    let stat = if rel == "/" {
        root_stat
    } else {
        read("memory.stat")
    };
    if let Some(t) = stat {
        m.stat = parse_memory_stat(&t, h);
    }
    Some(m)
}

/// Reads the root's `memory.stat` on a deadline-bounded worker and times it: the read that
/// took 1.2 s on incident 2b's node (O(dying memcgs) on old kernels).
fn timed_memory_stat(
    fs: &Arc<dyn HostFs>,
    dir: &str,
    deadline: Option<Instant>,
) -> (Option<String>, StatLatency) {
    let path = format!("{}/memory.stat", dir.trim_end_matches('/'));
    let key = format!("memory.stat:{}{path}", fs.root().display());
    let (f, p) = (fs.clone(), path.clone());
    let recorded = fs.recorded_latency(&path);
    let started = Instant::now();
    let r = blocking::run_for(&key, MEMORY_STAT_TIMEOUT, deadline, move || {
        let t = Instant::now();
        let text = read_string(&*f, &p, FILE_CAP).ok();
        (text, t.elapsed())
    });
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (text, ms, timed_out) = match r {
        // A replayed host says how long the read took there.
        Blocking::Done((text, took)) => (text, ms(recorded.unwrap_or(took)), false),
        // The read of an earlier sample is still blocked: it has taken this long so far.
        Blocking::StillBlocked { since } => (None, ms(since.elapsed()), true),
        Blocking::TimedOut | Blocking::Refused(_) => (None, ms(started.elapsed()), true),
    };
    (
        text,
        StatLatency {
            path: format!("/{}", path.trim_start_matches('/')),
            ms,
            timed_out,
        },
    )
}

struct Walk {
    dirs: u64,
    truncated: bool,
    why: &'static str,
    /// Why the root itself could not be listed.
    root_error: Option<Unavailable>,
}

#[derive(Debug, Clone, Copy)]
struct Bounds {
    max_dirs: u64,
    deadline: Option<Instant>,
}

impl Walk {
    /// Every directory was counted.
    fn complete(&self) -> bool {
        !self.truncated && self.root_error.is_none()
    }
}

/// Notes the pod uid and container id a cgroup path names.
fn note_ids(rel: &str, found: &mut Found) {
    let owner = parse_cgroup_path(rel);
    for (id, set) in [
        (owner.pod_uid, &mut found.pod_uids),
        (owner.container_id, &mut found.container_ids),
    ] {
        if let Some(id) = id
            && !set.contains(&id)
        {
            if set.len() < MAX_IDS {
                set.insert(id);
            } else {
                found.ids_capped = true;
            }
        }
    }
}

/// Visits `root` and every directory below it (each is one cgroup), within the bounds,
/// reading at each what `visit` asks for.
fn walk(
    fs: &Arc<dyn HostFs>,
    root: &str,
    visit: Visit,
    found: &mut Found,
    Bounds { max_dirs, deadline }: Bounds,
) -> Walk {
    let mut w = Walk {
        dirs: 0,
        truncated: false,
        why: "",
        root_error: None,
    };
    let root = match root.trim_end_matches('/') {
        "" => "/",
        r => r,
    };
    let mut stack = vec![root.to_string()];
    while let Some(dir) = stack.pop() {
        // A directory left to visit past the bound: the walk is cut (a tree of exactly the
        // bound is walked whole).
        if w.dirs >= max_dirs {
            (w.truncated, w.why) = (true, "bound on directories");
            break;
        }
        let listing = match fs.read_dir(&dir, MAX_ENTRIES) {
            Ok(l) => l,
            Err(u) => {
                if dir == root {
                    w.root_error = Some(u);
                }
                continue;
            }
        };
        w.dirs = w.dirs.saturating_add(1);
        // One directory with more entries than are listed: its other children are unseen.
        if listing.truncated {
            (w.truncated, w.why) = (true, "bound on entries of one directory");
        }
        if w.dirs.is_multiple_of(64) && deadline.is_some_and(|d| Instant::now() >= d) {
            (w.truncated, w.why) = (true, "deadline");
            break;
        }
        let rel = match dir.strip_prefix(root).unwrap_or(&dir) {
            "" => "/",
            r => r,
        };
        note_ids(rel, found);
        // v2's cgroup.stat, read once for both its readers: the root's dying counts and
        // each memory cgroup's dying descendants.
        let v2_memory = visit.memory == Some(Hierarchy::V2);
        let cgroup_stat = if v2_memory || (visit.v2_root && rel == "/") {
            read_file(&**fs, &dir, "cgroup.stat")
        } else {
            None
        };
        if visit.v2_root && rel == "/" {
            found.root_stat = cgroup_stat
                .as_deref()
                .map(parse_cgroup_stat)
                .unwrap_or_default();
        }
        if let Some(h) = visit.pids {
            if found.pids.len() >= MAX_PIDS_KEPT {
                (w.truncated, w.why) = (true, "bound on pids cgroups kept");
                break;
            }
            if let Some(c) = read_pids_files(&**fs, &dir, rel, h) {
                found.pids.push(c);
            }
        }
        if let Some(h) = visit.memory {
            let root_stat = if rel == "/" {
                let (text, latency) = timed_memory_stat(fs, &dir, deadline);
                found.stat_latency = Some(latency);
                text
            } else {
                None
            };
            if let Some(m) =
                read_memory_files(&**fs, &dir, rel, h, root_stat, cgroup_stat.as_deref())
            {
                if found.memory.len() < MAX_MEMORY_KEPT {
                    found.memory.push(m);
                } else {
                    found.memory_truncated = true;
                }
            }
        }
        for e in listing.entries {
            if e.kind == EntryKind::Dir {
                stack.push(format!("{}/{}", dir.trim_end_matches('/'), e.name));
            }
        }
    }
    if visit.memory.is_some() {
        found.memory_truncated |= w.truncated;
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
        let fs: Arc<dyn HostFs> = Arc::new(crate::fs::RealFs::new(dir.path()).unwrap());
        let visit = Visit {
            pids: Some(Hierarchy::V1),
            ..Visit::default()
        };
        let mut found = Found::default();
        let w = walk(
            &fs,
            "/sys/fs/cgroup/pids",
            visit,
            &mut found,
            unbounded(None),
        );
        assert_eq!((w.dirs, w.truncated, found.pids.len()), (41, false, 40));
        assert!(
            found
                .pids
                .iter()
                .all(|c| c.path.starts_with("/c") && c.max == Some(10))
        );
        // A deadline already passed stops the walk at the next check.
        let mut found = Found::default();
        let w = walk(
            &fs,
            "/sys/fs/cgroup/pids",
            visit,
            &mut found,
            unbounded(Some(Instant::now())),
        );
        assert!(w.dirs <= 64);
        // A root that is not there is not "0 cgroups".
        let w = walk(
            &fs,
            "/sys/fs/cgroup/memory",
            visit,
            &mut Found::default(),
            unbounded(None),
        );
        assert!(!w.complete() && w.root_error.is_some());
    }

    fn unbounded(deadline: Option<Instant>) -> Bounds {
        Bounds {
            max_dirs: MAX_DIRS,
            deadline,
        }
    }

    #[test]
    fn the_directory_bound_cuts_only_a_larger_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cg");
        for i in 0..9 {
            std::fs::create_dir_all(root.join(format!("c{i}"))).unwrap();
        }
        let fs: Arc<dyn HostFs> = Arc::new(crate::fs::RealFs::new(dir.path()).unwrap());
        let walk_with = |max_dirs| {
            let bounds = Bounds {
                max_dirs,
                deadline: None,
            };
            let w = walk(&fs, "/cg", Visit::default(), &mut Found::default(), bounds);
            (w.dirs, w.truncated)
        };
        // 10 directories: the root and its 9 children.
        assert_eq!(walk_with(10), (10, false));
        assert_eq!(walk_with(9), (9, true));
        let bounds = Bounds {
            max_dirs: 3,
            deadline: None,
        };
        let w = walk(&fs, "/cg", Visit::default(), &mut Found::default(), bounds);
        let mut unavailable = Vec::new();
        note_walk("/cg", &w, Visit::default(), &mut unavailable);
        assert_eq!(unavailable.len(), 1);
        assert_eq!(
            (unavailable[0].path.as_str(), unavailable[0].kind),
            ("cg", Kind::Truncated)
        );
    }
}
