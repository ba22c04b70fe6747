//! `zombie-processes`: zombies grouped by the parent that does not reap them.
//!
//! A zombie is a process that exited and whose parent has not called `wait()`: the kernel
//! keeps its task struct and its PID (release_task runs only on reap), so zombies count
//! against `kernel.pid_max`, `threads-max` and the `pids.current` of their cgroup. Orphans are
//! re-parented to the nearest subreaper or the PID namespace's init; if that init is an
//! application that never waits (a container's PID 1 that is not an init, a CI job runner),
//! the zombies pile up until forks fail (incident 2a).

use super::common::{MAX_FINDINGS, TaskLimit, describe, ratio, same_in, span_ms, task_count};
use super::{CheckDef, History, Needs, Outcome, pct};
use crate::config::{CheckSettings, SettingDef};
use crate::finding::{Evidence, Finding, Measure, Severity, Subject, key};
use crate::model::process::Process;
use crate::model::snapshot::Snapshot;
use std::collections::BTreeMap;

pub const CHECK: CheckDef = CheckDef {
    id: "zombie-processes",
    title: "zombies piling up under a parent that does not reap them",
    doc: include_str!("zombie_processes.md"),
    needs: Needs {
        processes: true,
        history: true,
        ..Needs::NONE
    },
    settings: &[WARN_COUNT, WARN_SHARE, CRIT_SHARE, CRIT_TASKS],
    condition: Some(super::ConditionDef {
        type_: "ZombieProcesses",
        true_reason: "UnreapedZombies",
        false_reason: "NoZombiePileUp",
    }),
    run,
};

/// Zombies under one parent that make a warning on their own.
pub const WARN_COUNT: SettingDef = SettingDef::count(
    "warn_count",
    20,
    "warning at this many zombies under one parent",
);
/// ... or this share of the PID limit.
pub const WARN_SHARE: SettingDef = SettingDef::ratio(
    "warn_share",
    0.01,
    "warning when one parent's zombies are this share of the task limit",
);
/// Critical: the parent's zombies are this share of the limit while tasks are near it.
pub const CRIT_SHARE: SettingDef = SettingDef::ratio(
    "crit_share",
    0.10,
    "critical when one parent's zombies are this share of the task limit ...",
);
pub const CRIT_TASKS: SettingDef = SettingDef::ratio(
    "crit_tasks",
    0.70,
    "... while all tasks are at least this share of it",
);
const LISTED_PIDS: usize = 10;

/// Zombie pids by parent pid, in one snapshot.
pub fn zombies_by_parent(s: &Snapshot) -> BTreeMap<i32, Vec<&Process>> {
    let mut by_parent: BTreeMap<i32, Vec<&Process>> = BTreeMap::new();
    for p in s.process_list().iter().filter(|p| p.is_zombie()) {
        by_parent.entry(p.ppid).or_default().push(p);
    }
    by_parent
}

/// The node's task limit and task count, when known.
fn task_limit(s: &Snapshot) -> Option<(u64, u64)> {
    let limit = TaskLimit::of(s).ok()?.limit;
    Some((limit, task_count(s)?))
}

/// Thresholds, resolved from the settings.
#[derive(Clone, Copy)]
struct Bands {
    warn_count: u64,
    warn_share: f64,
    crit_share: f64,
    crit_tasks: f64,
}

fn severity(count: usize, limit: Option<(u64, u64)>, b: Bands) -> Option<Severity> {
    let count = count as u64;
    let share = limit.map(|(l, _)| ratio(count, l));
    let tasks_ratio = limit.map(|(l, t)| ratio(t, l));
    if share.is_some_and(|s| s >= b.crit_share) && tasks_ratio.is_some_and(|r| r >= b.crit_tasks) {
        Some(Severity::Critical)
    } else if count >= b.warn_count || share.is_some_and(|s| s >= b.warn_share) {
        Some(Severity::Warning)
    } else {
        None
    }
}

/// The parent's zombie count in the first sample where the parent was the same process.
fn count_earlier(h: &History, parent: Option<&Process>, ppid: i32) -> Option<(usize, u64)> {
    let now = h.current();
    let first = h.earliest()?;
    let same_parent = match parent {
        Some(p) => same_in(first, p).is_some(),
        None => first.process(ppid).is_none(),
    };
    if !same_parent {
        return None;
    }
    let n = first
        .process_list()
        .iter()
        .filter(|z| z.is_zombie() && z.ppid == ppid)
        .count();
    Some((n, span_ms(first, now)))
}

fn run(h: &History, cfg: &CheckSettings) -> Outcome {
    let s = h.current();
    let processes = match s.processes() {
        Ok(p) => p,
        Err(why) => return Outcome::unknown(why),
    };
    let bands = Bands {
        warn_count: cfg.count(&WARN_COUNT),
        warn_share: cfg.ratio(&WARN_SHARE),
        crit_share: cfg.ratio(&CRIT_SHARE),
        crit_tasks: cfg.ratio(&CRIT_TASKS),
    };
    let limit = task_limit(s);
    let mut outcome = Outcome::default();
    let any_zombie = processes.iter().any(Process::is_zombie);
    if limit.is_none() && any_zombie {
        outcome.unknown.push(format!(
            "no PID limit or task count, judging by count only: {}",
            s.sysctl_u64("kernel.pid_max")
                .err()
                .unwrap_or_else(|| s.why_missing("proc/loadavg"))
        ));
    }
    let mut groups: Vec<(i32, Vec<&Process>, Severity)> = zombies_by_parent(s)
        .into_iter()
        .filter_map(|(ppid, zs)| severity(zs.len(), limit, bands).map(|sev| (ppid, zs, sev)))
        .collect();
    groups.sort_by(|a, b| b.2.cmp(&a.2).then(b.1.len().cmp(&a.1.len())));
    for (ppid, zombies, sev) in groups.into_iter().take(MAX_FINDINGS) {
        outcome
            .findings
            .push(finding(h, s, ppid, &zombies, sev, limit, bands));
    }
    outcome
}

fn finding(
    h: &History,
    s: &Snapshot,
    ppid: i32,
    zombies: &[&Process],
    severity: Severity,
    limit: Option<(u64, u64)>,
    bands: Bands,
) -> Finding {
    let parent = s.process(ppid);
    let count = zombies.len();
    let who = parent.map_or_else(|| format!("{ppid} (not readable)"), describe);
    let container_init = parent.is_some_and(|p| p.ns_pid == Some(1) && p.pid != 1);
    let earlier = count_earlier(h, parent, ppid);
    let growth = match earlier {
        Some((n, ms)) if count > n => {
            format!(
                ", growing (+{} in {:.1}s)",
                count.saturating_sub(n),
                ms as f64 / 1000.0
            )
        }
        Some((n, _)) if count < n => format!(", shrinking (was {n})"),
        Some(_) => ", steady".to_string(),
        None => String::new(),
    };

    let pids: Vec<String> = zombies
        .iter()
        .take(LISTED_PIDS)
        .map(|z| z.pid.to_string())
        .collect();
    let more = count.saturating_sub(LISTED_PIDS);
    let mut evidence = vec![
        Evidence::new(
            "/proc/*/stat",
            format!(
                "{count} processes in state Z with ppid {ppid}: {}{}",
                pids.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ),
        )
        .with_threshold(format!(
            "warning at {} under one parent or {} of the PID limit",
            bands.warn_count,
            pct(bands.warn_share)
        )),
    ];
    if let Some(p) = parent {
        evidence.push(Evidence::new(
            format!("/proc/{ppid}/status"),
            format!(
                "parent {who}: state {}, NSpid {}{}",
                p.state,
                p.ns_pid.map_or("?".into(), |n| n.to_string()),
                if container_init {
                    " (PID 1 of its own PID namespace)"
                } else {
                    ""
                }
            ),
        ));
    }
    if let Some((n, ms)) = earlier {
        evidence.push(Evidence::new(
            "/proc/*/stat (earlier sample)",
            format!(
                "{n} zombies under {ppid} {:.1}s earlier",
                ms as f64 / 1000.0
            ),
        ));
    }
    if let Some((l, tasks)) = limit {
        evidence.push(
            Evidence::new(
                "/proc/loadavg, /proc/sys/kernel/{pid_max,threads-max}",
                format!(
                    "{tasks} tasks of a limit of {l}; these zombies are {}",
                    pct(ratio(count as u64, l))
                ),
            )
            .with_threshold(format!(
                "critical when zombies ≥ {} of the limit and tasks ≥ {}",
                pct(bands.crit_share),
                pct(bands.crit_tasks)
            )),
        );
    }

    let mut subjects = Vec::new();
    match parent {
        Some(p) => subjects.push(Subject::process(p)),
        None => subjects.push(Subject {
            pid: Some(ppid),
            ..Subject::new(crate::finding::SubjectKind::Process)
        }),
    }
    if let Some(p) = parent
        && p.owner.container_id.is_some()
    {
        subjects.push(Subject::container(&p.owner));
    }
    let mut measures = vec![Measure::count("zombies", count)];
    if let Some((n, _)) = earlier {
        measures.push(Measure::count("zombies_earlier", n));
    }
    if let Some((l, tasks)) = limit {
        measures.push(Measure::count("tasks", tasks).of(l));
    }

    let cause = if container_init {
        "The parent is PID 1 of a container: orphans in the container are re-parented to it, and an \
         application running as PID 1 (not an init) never calls wait() for them. Each zombie keeps its \
         PID, counted against pid_max and the pod's pids limit, until it is reaped."
    } else {
        "The parent never calls wait() for children that exited (or for orphaned grandchildren re-parented \
         to it as a subreaper, as job runners do). Each zombie keeps its PID, counted against pid_max and \
         the pod's pids limit, until the parent reaps it or exits."
    };
    Finding {
        check: CHECK.id.into(),
        key: parent.map_or_else(|| key::pid(CHECK.id, ppid), |p| key::process(CHECK.id, p)),
        measures,
        log: None,
        caused_by: Vec::new(),
        explains: Vec::new(),
        severity,
        summary: format!("{who} holds {count} unreaped zombie children{growth}"),
        cause: cause.into(),
        remedy: format!(
            "Run an init that reaps as PID 1: tini or dumb-init as the entrypoint, `docker run --init`, or \
             `shareProcessNamespace: true` in the pod spec (the pause container reaps). Fix the runner to \
             wait() for its children. Restarting {ppid}'s container (or the process) releases them at once; \
             stopgap while fixing: raise `kernel.pid_max` (e.g. `sysctl -w kernel.pid_max=4194304`)."
        ),
        evidence,
        subjects,
    }
}

#[cfg(test)]
mod tests {
    use super::super::common::test_support::{process, snapshot};
    use super::*;

    fn with_zombies(at: u64, tasks: u32, parent: i32, n: i32) -> Snapshot {
        let mut ps = vec![process(parent, 1, "runner", 'S')];
        ps.extend((0..n).map(|i| process(parent + 1 + i, parent, "job", 'Z')));
        snapshot(at, tasks, ps)
    }

    const B: Bands = Bands {
        warn_count: 20,
        warn_share: 0.01,
        crit_share: 0.10,
        crit_tasks: 0.70,
    };

    fn run(h: &History) -> Outcome {
        super::run(h, &CheckSettings::default())
    }

    fn severity(count: usize, limit: Option<(u64, u64)>) -> Option<Severity> {
        super::severity(count, limit, B)
    }

    #[test]
    fn bands() {
        // Limit 1000 in these snapshots: 1 % is 10 zombies.
        assert_eq!(severity(5, Some((1000, 100))), None);
        assert_eq!(severity(10, Some((1000, 100))), Some(Severity::Warning));
        assert_eq!(severity(20, None), Some(Severity::Warning));
        assert_eq!(severity(19, None), None);
        // 10 % of the limit while tasks are at 70 %: critical.
        assert_eq!(severity(100, Some((1000, 700))), Some(Severity::Critical));
        assert_eq!(severity(100, Some((1000, 690))), Some(Severity::Warning));
    }

    #[test]
    fn growth_needs_the_same_parent() {
        let a = with_zombies(0, 100, 500, 20);
        let b = with_zombies(1000, 100, 500, 26);
        let samples = [a, b];
        let out = run(&History::new(&samples).unwrap());
        assert_eq!(
            out.findings[0].measure("zombies").map(|m| m.value),
            Some(26.0)
        );
        assert_eq!(
            out.findings[0].measure("zombies_earlier").map(|m| m.value),
            Some(20.0)
        );
        assert_eq!(out.findings.len(), 1);
        assert!(out.findings[0].summary.contains("growing (+6 in 1.0s)"));

        // Pid 500 restarted between the samples (another start time): no growth claim.
        let mut a = with_zombies(0, 100, 500, 20);
        if let Some(p) = a.processes.as_mut().and_then(|p| p.first_mut()) {
            p.start_time_ticks += 7;
        }
        let samples = [a, with_zombies(1000, 100, 500, 26)];
        let out = run(&History::new(&samples).unwrap());
        assert!(!out.findings[0].summary.contains("growing"));
        assert!(!out.findings[0].summary.contains("steady"));
    }

    #[test]
    fn a_critical_share_of_a_nearly_full_pid_space() {
        let s = with_zombies(0, 800, 500, 150);
        let out = run(&History::new(std::slice::from_ref(&s)).unwrap());
        assert_eq!(out.findings[0].severity, Severity::Critical);
        assert_eq!(out.findings[0].subjects[0].pid, Some(500));
    }
}
