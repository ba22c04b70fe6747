//! `pid-exhaustion`: tasks (processes and threads) against the kernel's task limits.
//!
//! Every thread takes a PID from the same space as processes, bounded by `kernel.pid_max`,
//! and the kernel refuses new tasks past `kernel.threads-max`. When either runs out,
//! `fork`/`clone` fail with EAGAIN; Go runtimes (dockerd, containerd, kubelet) then die with
//! `pthread_create failed: Resource temporarily unavailable` (older kernels: "No space left on
//! device") and the node stops starting containers (incident 2a: zombies filled the space).
//!
//! The same happens inside one pod: the pids controller (kernel/cgroup/pids.c) charges every
//! task to its cgroup and its ancestors, refuses `fork` past `pids.max` with EAGAIN, counts
//! the refusal in `pids.events` `max`, and logs "cgroup: fork rejected by pids controller
//! in <path>" once per cgroup.

use super::common::{MAX_FINDINGS, short_id};
use super::{CheckDef, History, Outcome, pct};
use crate::cgroup_path::parse_cgroup_path;
use crate::finding::{Evidence, Finding, Severity, Subject, SubjectKind};
use crate::host::cgroups::PidsCgroup;
use crate::host::processes::Process;
use crate::snapshot::Snapshot;

pub const CHECK: CheckDef = CheckDef {
    id: "pid-exhaustion",
    title: "tasks (processes + threads) near kernel.pid_max / kernel.threads-max",
    doc: include_str!("../../../../docs/checks/pid-exhaustion.md"),
    run,
};

pub const WARN: f64 = 0.70;
pub const CRIT: f64 = 0.90;
const TOP: usize = 5;
/// Per pids cgroup: `pids.current` against `pids.max`.
pub const CGROUP_WARN: f64 = 0.80;
pub const CGROUP_CRIT: f64 = 0.95;

fn run(h: &History) -> Outcome {
    let mut outcome = match node_wide(h.current()) {
        Ok(f) => Outcome::found(f.into_iter().collect()),
        Err(why) => Outcome::unknown(why),
    };
    let mut per_cgroup = per_cgroup(h);
    per_cgroup.sort_by_key(|f| std::cmp::Reverse(f.severity));
    outcome
        .findings
        .extend(per_cgroup.into_iter().take(MAX_FINDINGS));
    if h.current().cgroups.pids_truncated {
        outcome
            .unknown
            .push("pids cgroups: the walk stopped at its bound; some cgroups were not read".into());
    }
    outcome
}

/// Tasks on the whole node against the kernel's limits.
fn node_wide(s: &Snapshot) -> Result<Option<Finding>, String> {
    let pid_max = s.sysctl_u64("kernel.pid_max")?;
    let threads_max = s.sysctl_u64("kernel.threads-max").ok();
    let limit = threads_max.map_or(pid_max, |t| t.min(pid_max));
    let limit_name = if threads_max.is_some_and(|t| t < pid_max) {
        "kernel.threads-max"
    } else {
        "kernel.pid_max"
    };

    // The kernel's own count of tasks (loadavg's "running/total"); the scan's sum of
    // per-process thread counts when loadavg is missing.
    let (tasks, source) = match &s.loadavg {
        Some(l) => (u64::from(l.max), "/proc/loadavg".to_string()),
        None if s.process_scan.skipped_for_deadline == 0 && !s.processes.is_empty() => (
            s.processes.iter().map(|p| p.threads).sum(),
            "sum of Threads in /proc/*/status".to_string(),
        ),
        None => {
            return Err(format!("no task count: {}", s.why_missing("proc/loadavg")));
        }
    };
    if limit == 0 {
        return Err("kernel.pid_max reads 0".into());
    }
    let ratio = tasks as f64 / limit as f64;
    let Some(severity) = Severity::from_ratio(ratio, WARN, CRIT) else {
        return Ok(None);
    };

    let zombies = s.processes.iter().filter(|p| p.state == 'Z').count();
    let mut top: Vec<_> = s.processes.iter().collect();
    top.sort_by(|a, b| b.threads.cmp(&a.threads).then(a.pid.cmp(&b.pid)));
    let top: Vec<_> = top.into_iter().take(TOP).collect();

    let mut evidence = vec![
        Evidence::new(source, format!("{tasks} tasks")).with_threshold(format!(
            "warning {} / critical {} of {limit}",
            pct(WARN),
            pct(CRIT)
        )),
        Evidence::new("/proc/sys/kernel/pid_max", pid_max.to_string()),
    ];
    if let Some(t) = threads_max {
        evidence.push(Evidence::new("/proc/sys/kernel/threads-max", t.to_string()));
    }
    evidence.push(Evidence::new(
        "/proc/*/stat",
        format!("{zombies} zombie processes (each holds its PID until reaped)"),
    ));
    for p in &top {
        evidence.push(Evidence::new(
            format!("/proc/{}/status", p.pid),
            format!("{} ({}) has {} threads", p.pid, p.comm, p.threads),
        ));
    }

    Ok(Some(Finding {
        check: CHECK.id.into(),
        log: None,
        severity,
        summary: format!("{tasks} of {limit} task ids in use ({}; limit is {limit_name})", pct(ratio)),
        cause: "Every process and thread takes a PID from one space bounded by kernel.pid_max, and the kernel \
                refuses new tasks past kernel.threads-max. When it runs out, fork/clone fail with EAGAIN and \
                runtimes die with 'pthread_create failed'; unreaped zombies and thread leaks are the usual cause."
            .into(),
        remedy: "Find what holds the tasks: `ps -eLo pid,comm | awk '{print $2}' | sort | uniq -c | sort -rn | head` \
                 and zombies by parent: `ps -eo ppid,stat | awk '$2~/Z/{print $1}' | sort | uniq -c | sort -rn`. \
                 Fix the leak (an init that reaps, e.g. tini / --init / shareProcessNamespace; a thread leak in the \
                 top process); stopgap: `sysctl -w kernel.pid_max=4194304`, and set pod pid limits \
                 (kubelet podPidsLimit)."
            .into(),
        evidence,
        subjects: top.iter().map(|p| Subject::process(p)).collect(),
    }))
}

/// Is `p` in `c` or below it, in `c`'s hierarchy?
fn in_cgroup(p: &Process, c: &PidsCgroup) -> bool {
    // The pids controller is in one hierarchy: the v1 one that lists it, else v2 — the same
    // one the cgroup was read from.
    p.cgroup_path_for("pids").is_some_and(|path| {
        path == c.path
            || (path.starts_with(&c.path) && path.as_bytes().get(c.path.len()) == Some(&b'/'))
            || c.path == "/"
    })
}

fn previous_events(h: &History, c: &PidsCgroup) -> Option<u64> {
    h.earliest()?
        .cgroups
        .pids
        .iter()
        .find(|p| p.hierarchy == c.hierarchy && p.path == c.path)
        .map(|p| p.events_max)
}

/// Pods and containers at or near their `pids.max`, and cgroups that refused forks.
fn per_cgroup(h: &History) -> Vec<Finding> {
    let s = h.current();
    let mut out = Vec::new();
    for c in &s.cgroups.pids {
        let ratio = c.max.map(|m| {
            if m == 0 {
                1.0
            } else {
                c.current as f64 / m as f64
            }
        });
        let by_usage = ratio.and_then(|r| Severity::from_ratio(r, CGROUP_WARN, CGROUP_CRIT));
        let earlier = previous_events(h, c);
        let refused_now = earlier.is_some_and(|e| c.events_max > e);
        // Forks refused during the window: happening now. Refused before we looked (no earlier
        // sample to compare): a warning, the limit has bitten at least once.
        let by_events = if refused_now {
            Some(Severity::Critical)
        } else if c.events_max > 0 && earlier.is_none() {
            Some(Severity::Warning)
        } else {
            None
        };
        let Some(severity) = by_usage.max(by_events) else {
            continue;
        };
        out.push(cgroup_finding(s, c, severity, ratio, earlier));
    }
    out
}

fn cgroup_finding(
    s: &Snapshot,
    c: &PidsCgroup,
    severity: Severity,
    ratio: Option<f64>,
    earlier_events: Option<u64>,
) -> Finding {
    let owner = parse_cgroup_path(&c.path);
    let mut members: Vec<&Process> = s.processes.iter().filter(|p| in_cgroup(p, c)).collect();
    members.sort_by(|a, b| b.threads.cmp(&a.threads).then(a.pid.cmp(&b.pid)));
    let zombies = members.iter().filter(|p| p.state == 'Z').count();

    let name = match (&owner.container_id, &owner.pod_uid) {
        (Some(id), Some(pod)) => format!("container {} of pod {pod}", short_id(id)),
        (Some(id), None) => format!("container {}", short_id(id)),
        (None, Some(pod)) => format!("pod {pod}"),
        (None, None) => format!("cgroup {}", c.path),
    };
    let max = c.max.map_or("max".to_string(), |m| m.to_string());
    let mut summary = match ratio {
        Some(r) => format!("{name} uses {} of pids.max {max} ({})", c.current, pct(r)),
        None => format!("{name} has no pids.max but an ancestor refused its forks"),
    };
    if c.events_max > 0 {
        summary.push_str(&format!("; {} forks refused", c.events_max));
        if let Some(e) = earlier_events
            && c.events_max > e
        {
            summary.push_str(&format!(" ({} during the window)", c.events_max - e));
        }
    }

    let dir = match c.hierarchy.as_str() {
        "v1" => format!(
            "{}{}",
            s.cgroups
                .v1_mounts
                .get("pids")
                .map_or("/sys/fs/cgroup/pids", |m| m),
            c.path
        ),
        _ => format!(
            "{}{}",
            s.cgroups.v2_mount.as_deref().unwrap_or("/sys/fs/cgroup"),
            c.path
        ),
    };
    let dir = dir.replace("//", "/");
    let mut evidence = vec![
        Evidence::new(format!("{dir}/pids.current"), c.current.to_string()).with_threshold(
            format!(
                "warning {} / critical {} of pids.max",
                pct(CGROUP_WARN),
                pct(CGROUP_CRIT)
            ),
        ),
        Evidence::new(format!("{dir}/pids.max"), max),
        Evidence::new(
            format!("{dir}/pids.events"),
            match earlier_events {
                Some(e) => format!("max {} (was {e} in the earlier sample)", c.events_max),
                None => format!("max {}", c.events_max),
            },
        )
        .with_threshold("any rise means fork/clone returned EAGAIN"),
    ];
    if zombies > 0 {
        evidence.push(Evidence::new(
            "/proc/*/stat",
            format!("{zombies} of its processes are zombies (they still count in pids.current)"),
        ));
    }
    for p in members.iter().take(3) {
        evidence.push(Evidence::new(
            format!("/proc/{}/status", p.pid),
            format!("{} ({}) has {} threads", p.pid, p.comm, p.threads),
        ));
    }

    let mut subjects = vec![Subject {
        container_id: owner.container_id.clone(),
        pod: owner.pod_uid.clone(),
        path: Some(c.path.clone()),
        ..Subject::new(if owner.container_id.is_some() {
            SubjectKind::Container
        } else if owner.pod_uid.is_some() {
            SubjectKind::Pod
        } else {
            SubjectKind::Cgroup
        })
    }];
    if let Some(top) = members.first() {
        subjects.push(Subject::process(top));
    }
    Finding {
        check: CHECK.id.into(),
        log: None,
        severity,
        summary,
        cause: "The pids controller charges every process and thread to its cgroup and refuses fork/clone past pids.max with EAGAIN (the kernel logs 'cgroup: fork rejected by pids controller in <path>'). Inside the container, runtimes and Go programs then fail with 'pthread_create failed: Resource temporarily unavailable' (or 'No space left on device'); unreaped zombies and thread leaks fill the limit."
            .into(),
        remedy: format!(
            "Find what holds the tasks in the cgroup: `cat {dir}/cgroup.procs | xargs -n1 -I{{}} sh -c 'echo $(ls /proc/{{}}/task | wc -l) {{}} $(cat /proc/{{}}/comm)' | sort -rn | head`. Fix the thread or zombie leak (an init that reaps: tini / --init / shareProcessNamespace). If the workload legitimately needs more, raise the pod limit (kubelet podPidsLimit) rather than removing it."
        ),
        evidence,
        subjects,
    }
}
