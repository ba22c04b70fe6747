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

use super::common::{
    MAX_FINDINGS, TaskLimit, cgroup_name, cgroup_subject, ratio as frac, task_count,
};
use super::{CheckDef, History, Needs, Outcome, pct};
use crate::config::{CheckSettings, SettingDef};
use crate::finding::{Evidence, Finding, Measure, Severity, Subject, key};
use crate::model::cgroups::PidsCgroup;
use crate::model::process::Process;
use crate::model::snapshot::Snapshot;

pub const CHECK: CheckDef = CheckDef {
    id: "pid-exhaustion",
    title: "tasks (processes + threads) near kernel.pid_max / kernel.threads-max",
    doc: include_str!("pid_exhaustion.md"),
    needs: Needs {
        processes: true,
        cgroups: true,
        // Forks refused *during the window* (pids.events max rising) need two samples.
        history: true,
        ..Needs::NONE
    },
    settings: &[WARN, CRIT, CGROUP_WARN, CGROUP_CRIT],
    condition: Some(super::ConditionDef {
        type_: "PIDExhaustion",
        true_reason: "TasksNearLimit",
        false_reason: "TasksWithinLimits",
    }),
    run,
};

pub const WARN: SettingDef = SettingDef::ratio(
    "warn",
    0.70,
    "node: warning at this share of the task limit",
);
pub const CRIT: SettingDef = SettingDef::ratio(
    "crit",
    0.90,
    "node: critical at this share of the task limit",
);
/// Per pids cgroup: `pids.current` against `pids.max`.
pub const CGROUP_WARN: SettingDef = SettingDef::ratio(
    "cgroup_warn",
    0.80,
    "pids cgroup: warning at this share of pids.max",
);
pub const CGROUP_CRIT: SettingDef = SettingDef::ratio(
    "cgroup_crit",
    0.95,
    "pids cgroup: critical at this share of pids.max",
);
const TOP: usize = 5;

fn run(h: &History, cfg: &CheckSettings) -> Outcome {
    let s = h.current();
    let mut outcome = match node_wide(s, cfg) {
        Ok(f) => Outcome::found(f.into_iter().collect()),
        Err(why) => Outcome::unknown(why),
    };
    match &s.cgroups {
        Some(c) => {
            let mut per_cgroup = per_cgroup(h, cfg);
            per_cgroup.sort_by_key(|f| std::cmp::Reverse(f.severity));
            // A pids hierarchy was walked: that part was evaluated even when node-wide
            // figures are missing.
            if c.v2_mount.is_some() || c.v1_mounts.contains_key("pids") {
                outcome.inconclusive = false;
            }
            outcome
                .findings
                .extend(per_cgroup.into_iter().take(MAX_FINDINGS));
            if c.pids_truncated {
                outcome.unknown.push(
                    "pids cgroups: the walk stopped at its bound; some cgroups were not read"
                        .into(),
                );
            }
            // Hierarchies are found in the mount table: without it no pids cgroup was
            // walked, which must not read as "no pod near its pids.max".
            if s.mounts.is_none() && c.v2_mount.is_none() && c.v1_mounts.is_empty() {
                outcome.unknown.push(format!(
                    "pids cgroups not read: no mount table to find the hierarchies in ({})",
                    s.why_missing("proc/1/mountinfo")
                ));
            }
        }
        None => outcome.unknown.push(s.not_collected("pids cgroups")),
    }
    outcome
}

/// Tasks on the whole node against the kernel's limits.
fn node_wide(s: &Snapshot, cfg: &CheckSettings) -> Result<Option<Finding>, String> {
    let (warn, crit) = (cfg.ratio(&WARN), cfg.ratio(&CRIT));
    let lim = TaskLimit::of(s)?;
    let (limit, limit_name) = (lim.limit, lim.name());
    let processes = s.process_list();

    // The kernel's own count of tasks (loadavg's "running/total"); the scan's sum of
    // per-process thread counts when loadavg is missing.
    let complete_scan = s.process_scan.as_ref().is_some_and(|r| r.left_out() == 0);
    let (tasks, source) = match task_count(s) {
        Some(t) => (t, "/proc/loadavg".to_string()),
        None if complete_scan && !processes.is_empty() => (
            processes
                .iter()
                .fold(0u64, |a, p| a.saturating_add(p.threads)),
            "sum of Threads in /proc/*/status".to_string(),
        ),
        None => {
            return Err(format!("no task count: {}", s.why_missing("proc/loadavg")));
        }
    };
    let ratio = frac(tasks, limit);
    let Some(severity) = Severity::from_ratio(ratio, warn, crit) else {
        return Ok(None);
    };

    let zombies = processes.iter().filter(|p| p.is_zombie()).count();
    let mut top: Vec<_> = processes.iter().collect();
    top.sort_by(|a, b| b.threads.cmp(&a.threads).then(a.pid.cmp(&b.pid)));
    let top: Vec<_> = top.into_iter().take(TOP).collect();

    let mut evidence = vec![
        Evidence::new(source, format!("{tasks} tasks")).with_threshold(format!(
            "warning {} / critical {} of {limit}",
            pct(warn),
            pct(crit)
        )),
        Evidence::new("/proc/sys/kernel/pid_max", lim.pid_max.to_string()),
    ];
    if let Some(t) = lim.threads_max {
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
        key: key::node(CHECK.id),
        measures: vec![
            Measure::count("tasks", tasks).of(limit),
            Measure::count("zombies", zombies),
        ],
        log: None,
        caused_by: Vec::new(),
        explains: Vec::new(),
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
        .as_ref()?
        .pids
        .iter()
        .find(|p| p.hierarchy == c.hierarchy && p.path == c.path)
        .map(|p| p.events_max)
}

/// Pods and containers at or near their `pids.max`, and cgroups that refused forks.
fn per_cgroup(h: &History, cfg: &CheckSettings) -> Vec<Finding> {
    let s = h.current();
    let (warn, crit) = (cfg.ratio(&CGROUP_WARN), cfg.ratio(&CGROUP_CRIT));
    let mut out = Vec::new();
    for c in s.cgroups.iter().flat_map(|c| &c.pids) {
        let ratio = c.max.map(|m| if m == 0 { 1.0 } else { frac(c.current, m) });
        let by_usage = ratio.and_then(|r| Severity::from_ratio(r, warn, crit));
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
        out.push(cgroup_finding(s, c, severity, ratio, earlier, (warn, crit)));
    }
    out
}

fn cgroup_finding(
    s: &Snapshot,
    c: &PidsCgroup,
    severity: Severity,
    ratio: Option<f64>,
    earlier_events: Option<u64>,
    (warn, crit): (f64, f64),
) -> Finding {
    let mut members: Vec<&Process> = s
        .process_list()
        .iter()
        .filter(|p| in_cgroup(p, c))
        .collect();
    members.sort_by(|a, b| b.threads.cmp(&a.threads).then(a.pid.cmp(&b.pid)));
    let zombies = members.iter().filter(|p| p.is_zombie()).count();

    let name = cgroup_name(&c.path);
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
            summary.push_str(&format!(
                " ({} during the window)",
                c.events_max.saturating_sub(e)
            ));
        }
    }

    // The hierarchy's mount as read; a cgroup is only collected from a mount, so the
    // placeholder names the hierarchy for a recording that lost its mounts.
    let dir = s
        .cgroups
        .as_ref()
        .map(|g| g.dir_of(c.hierarchy, "pids", &c.path))
        .unwrap_or_else(|| format!("<{} pids mount>{}", c.hierarchy.as_str(), c.path));
    let mut evidence = vec![
        Evidence::new(format!("{dir}/pids.current"), c.current.to_string()).with_threshold(
            format!("warning {} / critical {} of pids.max", pct(warn), pct(crit)),
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

    let mut subjects = vec![cgroup_subject(&c.path)];
    if let Some(top) = members.first() {
        subjects.push(Subject::process(top));
    }
    Finding {
        check: CHECK.id.into(),
        key: key::cgroup(CHECK.id, c.hierarchy.as_str(), &c.path),
        measures: vec![
            Measure::count("pids", c.current).of_opt(c.max),
            Measure::count("forks_refused", c.events_max),
            Measure::count("zombies", zombies),
        ],
        log: None,
        caused_by: Vec::new(),
        explains: Vec::new(),
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
