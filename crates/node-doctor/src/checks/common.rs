//! Helpers shared by the process checks: naming a process the way an SRE reads it,
//! following one process across samples, recognising runtime daemons.

use super::History;
use crate::host::processes::Process;
use crate::snapshot::Snapshot;

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

/// The first 12 characters of a container id, as `docker ps` and `crictl ps` print it.
pub fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// The same process (same pid and start time) in another snapshot.
pub fn same_in<'a>(s: &'a Snapshot, p: &Process) -> Option<&'a Process> {
    s.process(p.pid).filter(|q| q.same_as(p))
}

/// How many samples in a row, ending with the current one, `p` satisfied `still`, and the
/// index of the first of them.
pub fn consecutive(h: &History, p: &Process, still: impl Fn(&Process) -> bool) -> (usize, usize) {
    let samples = h.samples();
    let mut first = samples.len() - 1;
    let mut n = 0;
    for (i, s) in samples.iter().enumerate().rev() {
        match same_in(s, p) {
            Some(q) if still(q) => {
                n += 1;
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

/// "1.0s", "2m05s", "3h12m".
pub fn human_duration(ms: u64) -> String {
    let secs = ms / 1000;
    if secs < 60 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if secs < 3600 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60)
    }
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

    #[test]
    fn durations() {
        assert_eq!(human_duration(1_000), "1.0s");
        assert_eq!(human_duration(125_000), "2m05s");
        assert_eq!(human_duration(3 * 3_600_000 + 12 * 60_000), "3h12m");
    }
}

/// Builders for check unit tests: plain processes and snapshots, no host.
#[cfg(test)]
pub mod test_support {
    use crate::host::processes::Process;
    use crate::snapshot::Snapshot;

    pub fn process(pid: i32, ppid: i32, comm: &str, state: char) -> Process {
        let mut p = Process::new(pid, ppid, comm, state, 1000 + pid as u64);
        p.open_fds = Some(3);
        p
    }

    /// A snapshot at `at_ms` holding `processes` (sorted by pid, as collected ones are),
    /// pid_max 1000 and `tasks` tasks in loadavg.
    pub fn snapshot(at_ms: u64, tasks: u32, mut processes: Vec<Process>) -> Snapshot {
        processes.sort_by_key(|p| p.pid);
        let mut s = Snapshot {
            collected_at_ms: at_ms,
            processes,
            ..Snapshot::default()
        };
        s.sysctls.insert("kernel.pid_max".into(), "1000".into());
        s.sysctls.insert("kernel.threads-max".into(), "5000".into());
        s.sysctls
            .insert("kernel.hung_task_timeout_secs".into(), "120".into());
        s.loadavg = Some(procfs_core::LoadAverage {
            one: 0.0,
            five: 0.0,
            fifteen: 0.0,
            cur: 1,
            max: tasks,
            latest_pid: 1,
        });
        s
    }
}
