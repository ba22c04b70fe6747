//! Helpers shared by the checks: naming a process the way an SRE reads it, following one
//! process across samples, recognising runtime daemons, the node's task limit.

use super::History;
use crate::attribution::{CgroupOwner, short_id};
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
