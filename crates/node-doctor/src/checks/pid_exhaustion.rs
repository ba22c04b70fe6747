//! `pid-exhaustion`: tasks (processes and threads) against the kernel's task limits.
//!
//! Every thread takes a PID from the same space as processes, bounded by `kernel.pid_max`,
//! and the kernel refuses new tasks past `kernel.threads-max`. When either runs out,
//! `fork`/`clone` fail with EAGAIN; Go runtimes (dockerd, containerd, kubelet) then die with
//! `pthread_create failed: Resource temporarily unavailable` (older kernels: "No space left on
//! device") and the node stops starting containers (incident 2a: zombies filled the space).

use super::{CheckDef, History, Outcome, pct};
use crate::finding::{Evidence, Finding, Severity, Subject};

pub const CHECK: CheckDef = CheckDef {
    id: "pid-exhaustion",
    title: "tasks (processes + threads) near kernel.pid_max / kernel.threads-max",
    doc: include_str!("../../../../docs/checks/pid-exhaustion.md"),
    run,
};

pub const WARN: f64 = 0.70;
pub const CRIT: f64 = 0.90;
const TOP: usize = 5;

fn run(h: &History) -> Outcome {
    let s = h.current();
    let pid_max = match s.sysctl_u64("kernel.pid_max") {
        Ok(v) => v,
        Err(why) => return Outcome::unknown(why),
    };
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
            return Outcome::unknown(format!("no task count: {}", s.why_missing("proc/loadavg")));
        }
    };
    if limit == 0 {
        return Outcome::unknown("kernel.pid_max reads 0");
    }
    let ratio = tasks as f64 / limit as f64;
    let Some(severity) = Severity::from_ratio(ratio, WARN, CRIT) else {
        return Outcome::default();
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

    Outcome::found(vec![Finding {
        check: CHECK.id.into(),
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
    }])
}
