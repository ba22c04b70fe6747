//! Helpers shared by the checks: naming a process the way an SRE reads it, following one
//! process across samples, recognising runtime daemons, the node's task limit.

use super::History;
use crate::attribution::{CgroupOwner, parse_cgroup_path, short_id};
use crate::finding::{Subject, SubjectKind};
use crate::model::fs::FilesystemUsage;
use crate::model::kernel::Mount;
use crate::model::process::Process;
use crate::model::snapshot::{Missing, Snapshot};

pub use crate::time::human_duration;

/// Most findings one check emits before folding the rest into a last "and N more" finding:
/// a node with 5000 stuck NFS readers needs the pattern, not 5000 findings.
pub const MAX_FINDINGS: usize = 20;

/// Container runtime and node daemons by `comm` (15 bytes at most, so `containerd-shim`
/// covers `containerd-shim-runc-v2`). These are the leaks that take a node down: a daemon
/// that keeps a connection per retried stop (incident 4's dockerd).
pub fn runtime_daemon(comm: &str) -> Option<&'static str> {
    match comm {
        "dockerd" => Some("dockerd"),
        "containerd" => Some("containerd"),
        "crio" => Some("crio"),
        "kubelet" => Some("kubelet"),
        "conmon" => Some("conmon"),
        "cri-dockerd" => Some("cri-dockerd"),
        c if c.starts_with("containerd-shim") => Some("containerd-shim"),
        _ => None,
    }
}

/// "812 (dockerd)", plus the container and pod when the cgroup path names them.
pub fn describe(p: &Process) -> String {
    let mut s = format!("{} ({})", p.pid, p.comm);
    if let Some(rt) = runtime_daemon(&p.comm) {
        s.push_str(&format!(", runtime daemon {rt}"));
    }
    if let Some(id) = &p.owner.container_id {
        s.push_str(&format!(", container {}", short_id(id)));
    }
    if let Some(pod) = &p.owner.pod_uid {
        s.push_str(&format!(", pod {pod}"));
    }
    s
}

/// The same process (same pid and start time) in another snapshot.
pub fn same_in<'a>(s: &'a Snapshot, p: &Process) -> Option<&'a Process> {
    s.process(p.pid).filter(|q| q.same_as(p))
}

/// How many samples in a row, ending with the current one, `p` satisfied `still`, and the
/// index of the first of them.
pub fn consecutive(h: &History, p: &Process, still: impl Fn(&Process) -> bool) -> (usize, usize) {
    let samples = h.samples();
    let mut first = samples.len().saturating_sub(1);
    let mut n: usize = 0;
    for (i, s) in samples.iter().enumerate().rev() {
        match same_in(s, p) {
            Some(q) if still(q) => {
                n = n.saturating_add(1);
                first = i;
            }
            _ => break,
        }
    }
    (n, first)
}

/// Milliseconds between two samples (0 if clocks went backwards).
pub fn span_ms(from: &Snapshot, to: &Snapshot) -> u64 {
    to.collected_at_ms.saturating_sub(from.collected_at_ms)
}

/// The nearest ancestor (or the process itself) that is a runtime daemon: a container's shim.
pub fn runtime_ancestor<'a>(s: &'a Snapshot, p: &Process) -> Option<&'a Process> {
    let mut pid = p.ppid;
    for _ in 0..64 {
        let a = s.process(pid)?;
        if runtime_daemon(&a.comm).is_some() {
            return Some(a);
        }
        if a.ppid == 0 || a.ppid == pid {
            return None;
        }
        pid = a.ppid;
    }
    None
}

/// "a ← b ← c": the first `n` frames of a kernel stack, innermost first.
pub fn stack_text(frames: &[String], n: usize) -> String {
    frames
        .iter()
        .take(n)
        .cloned()
        .collect::<Vec<_>>()
        .join(" ← ")
}

/// The node's bound on tasks: `kernel.pid_max`, or `kernel.threads-max` when lower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskLimit {
    pub limit: u64,
    pub pid_max: u64,
    pub threads_max: Option<u64>,
}

impl TaskLimit {
    pub fn of(s: &Snapshot) -> Result<TaskLimit, Missing> {
        let pid_max = s.sysctl_u64("kernel.pid_max")?;
        let threads_max = s.sysctl_u64("kernel.threads-max").ok();
        let limit = threads_max.map_or(pid_max, |t| t.min(pid_max));
        if limit == 0 {
            return Err("kernel.pid_max reads 0".into());
        }
        Ok(TaskLimit {
            limit,
            pid_max,
            threads_max,
        })
    }

    pub fn name(&self) -> &'static str {
        if self.threads_max.is_some_and(|t| t < self.pid_max) {
            "kernel.threads-max"
        } else {
            "kernel.pid_max"
        }
    }
}

/// The kernel's own count of tasks (loadavg's "running/total"), when read.
pub fn task_count(s: &Snapshot) -> Option<u64> {
    s.loadavg.as_ref().map(|l| u64::from(l.max))
}

/// "container 3f1c9a27d0b4 of pod <uid>", "pod <uid>", or "cgroup <path>": a cgroup named
/// by what its path says owns it.
pub fn cgroup_name(path: &str) -> String {
    let owner = parse_cgroup_path(path);
    match (&owner.container_id, &owner.pod_uid) {
        (Some(id), Some(pod)) => format!("container {} of pod {pod}", short_id(id)),
        (Some(id), None) => format!("container {}", short_id(id)),
        (None, Some(pod)) => format!("pod {pod}"),
        (None, None) => format!("cgroup {path}"),
    }
}

/// The container (or pod) a cgroup path names, with the path; a plain cgroup otherwise.
pub fn cgroup_subject(path: &str) -> Subject {
    let owner = parse_cgroup_path(path);
    if owner.is_empty() {
        Subject::path(SubjectKind::Cgroup, path)
    } else {
        Subject {
            path: Some(path.to_string()),
            ..Subject::container(&owner)
        }
    }
}

/// How a counter moved over the history: from the earliest sample that has it to the
/// current one. Any number of samples works (one-shot gives two, the agent more).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    pub first: u64,
    pub last: u64,
    /// Seconds between the two samples (> 0).
    pub secs: f64,
}

impl Change {
    /// The increase; 0 when the counter went down (reset: the cgroup was recreated).
    pub fn delta(&self) -> u64 {
        self.last.saturating_sub(self.first)
    }

    /// The increase per second; `None` for a counter that went backwards.
    pub fn per_sec(&self) -> Option<f64> {
        (self.last >= self.first).then(|| self.delta() as f64 / self.secs)
    }

    pub fn grew(&self) -> bool {
        self.last > self.first
    }
}

/// `get` over the history: the earliest sample holding it against the current one. `None`
/// with a single sample, when the current sample lacks it, or when no time passed.
pub fn change(h: &History, get: impl Fn(&Snapshot) -> Option<u64>) -> Option<Change> {
    let now = h.current();
    let last = get(now)?;
    let samples = h.samples();
    let (first_s, first) = samples
        .iter()
        .take(samples.len().saturating_sub(1))
        .find_map(|s| get(s).map(|v| (*s, v)))?;
    let ms = span_ms(first_s, now);
    (ms > 0).then_some(Change {
        first,
        last,
        secs: ms as f64 / 1000.0,
    })
}

/// `to − from` with its sign ("+500", "-3", "+0").
pub fn signed_delta(from: u64, to: u64) -> String {
    if to >= from {
        format!("+{}", to.saturating_sub(from))
    } else {
        format!("-{}", from.saturating_sub(to))
    }
}

/// A vmstat counter (non-negative), or the sum of several.
pub fn vmstat(s: &Snapshot, keys: &[&str]) -> Option<u64> {
    let mut found = false;
    let mut sum: u64 = 0;
    for k in keys {
        if let Some(v) = s.vmstat.get(*k) {
            found = true;
            sum = sum.saturating_add(u64::try_from(*v).unwrap_or(0));
        }
    }
    found.then_some(sum)
}

/// Refaults of the whole node: `workingset_refault_file` + `_anon` (5.9+), or the single
/// `workingset_refault` of older kernels.
pub fn node_refaults(s: &Snapshot) -> Option<u64> {
    vmstat(s, &["workingset_refault_file", "workingset_refault_anon"])
        .or_else(|| vmstat(s, &["workingset_refault"]))
}

/// `major.minor` of a kernel release ("5.4.0-1045-aws" → (5, 4)).
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// `a / b` as a float ratio, 0 for b = 0.
pub fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// The mount holding host path `path` in the snapshot's mount table: the longest mount point
/// that is a prefix of it (the last mounted among equals), mount points read from outside
/// the host root (a DaemonSet without hostPID, a test tree) taken relative to it.
pub fn mount_of<'a>(s: &'a Snapshot, path: &str) -> Option<(&'a Mount, String)> {
    let root = s.root.trim_end_matches('/');
    let rel = |mp: &str| -> String {
        if root.is_empty() {
            return mp.to_string();
        }
        match mp.strip_prefix(root) {
            Some("") => "/".into(),
            Some(rest) if rest.starts_with('/') => rest.into(),
            _ => mp.to_string(),
        }
    };
    let is_prefix = |mp: &str| mp == "/" || path == mp || path.starts_with(&format!("{mp}/"));
    s.mounts
        .as_deref()?
        .iter()
        .enumerate()
        .map(|(i, m)| (i, m, rel(&m.mount_point)))
        .filter(|(_, _, mp)| is_prefix(mp))
        .max_by_key(|(i, _, mp)| (mp.len(), *i))
        .map(|(_, m, mp)| (m, mp))
}

/// The measured filesystem holding host path `dir`: one whose watched paths include it, else
/// the one measured at the mount point holding it.
pub fn filesystem_of<'a>(s: &'a Snapshot, dir: &str) -> Option<&'a FilesystemUsage> {
    let fss = s.filesystems.as_deref()?;
    if let Some(f) = fss.iter().find(|f| f.paths.iter().any(|p| p == dir)) {
        return Some(f);
    }
    let (_, mp) = mount_of(s, dir)?;
    fss.iter().find(|f| f.mount_point == mp)
}

/// "3f1c9a27d0b4 (pod 5b3c0e2a-...)", or the pod alone.
pub fn describe_owner(o: &CgroupOwner) -> String {
    match (&o.container_id, &o.pod_uid) {
        (Some(c), Some(p)) => format!("container {} (pod {p})", short_id(c)),
        (Some(c), None) => format!("container {}", short_id(c)),
        (None, Some(p)) => format!("pod {p}"),
        (None, None) => "no container".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions() {
        assert_eq!(kernel_version("5.4.0-1045-aws"), Some((5, 4)));
        assert_eq!(kernel_version("6.18.44-fc-v657"), Some((6, 18)));
        assert_eq!(kernel_version("3.10.0-1160.el7.x86_64"), Some((3, 10)));
        assert_eq!(kernel_version("garbage"), None);
    }

    #[test]
    fn changes_need_two_samples_and_time() {
        let mk = |at: u64, v: i64| {
            let mut s = Snapshot {
                collected_at_ms: at,
                ..Snapshot::default()
            };
            s.vmstat.insert("oom_kill".into(), v);
            s
        };
        let get = |s: &Snapshot| vmstat(s, &["oom_kill"]);
        let one = [mk(0, 1)];
        assert_eq!(change(&History::new(&one).unwrap(), get), None);
        let three = [mk(1000, 1), mk(2000, 2), mk(5000, 7)];
        let c = change(&History::new(&three).unwrap(), get).unwrap();
        assert_eq!((c.first, c.last, c.delta(), c.secs), (1, 7, 6, 4.0));
        assert_eq!(c.per_sec(), Some(1.5));
        let reset = [mk(0, 9), mk(1000, 2)];
        let c = change(&History::new(&reset).unwrap(), get).unwrap();
        assert_eq!((c.delta(), c.per_sec(), c.grew()), (0, None, false));
    }

    #[test]
    fn runtime_daemons_by_truncated_comm() {
        assert_eq!(runtime_daemon("containerd-shim"), Some("containerd-shim"));
        assert_eq!(runtime_daemon("dockerd"), Some("dockerd"));
        assert_eq!(runtime_daemon("containerd"), Some("containerd"));
        assert_eq!(runtime_daemon("bash"), None);
    }
}

/// Builders for check unit tests: plain processes and snapshots, no host.
#[cfg(test)]
pub mod test_support {
    use crate::model::kernel::LoadAverage;
    use crate::model::process::{ProcState, Process, ScanReport};
    use crate::model::snapshot::Snapshot;

    pub fn process(pid: i32, ppid: i32, comm: &str, state: char) -> Process {
        let mut p = Process::new(
            pid,
            ppid,
            comm,
            ProcState::from_char(state),
            1000 + pid as u64,
        );
        p.open_fds = Some(3);
        p.uid = Some(0);
        p.euid = Some(0);
        p.sig_pending = Some(0);
        p.shared_sig_pending = Some(0);
        p.cap_eff = Some(0);
        p
    }

    /// A snapshot at `at_ms` holding `processes` (sorted by pid, as collected ones are),
    /// pid_max 1000 and `tasks` tasks in loadavg.
    pub fn snapshot(at_ms: u64, tasks: u32, mut processes: Vec<Process>) -> Snapshot {
        processes.sort_by_key(|p| p.pid);
        let n = processes.len() as u64;
        let mut s = Snapshot {
            collected_at_ms: at_ms,
            processes: Some(processes),
            process_scan: Some(ScanReport {
                listed: n,
                read: n,
                ..ScanReport::default()
            }),
            page_size: 4096,
            clock_ticks_per_sec: 100,
            ..Snapshot::default()
        };
        s.sysctls.insert("kernel.pid_max".into(), "1000".into());
        s.sysctls.insert("kernel.threads-max".into(), "5000".into());
        s.sysctls
            .insert("kernel.hung_task_timeout_secs".into(), "120".into());
        s.loadavg = Some(LoadAverage {
            cur: 1,
            max: tasks,
            latest_pid: 1,
            ..LoadAverage::default()
        });
        s
    }
}
