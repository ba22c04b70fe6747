//! `oom-kills`: OOM kills since the last sample or in the recent kernel log, each with the
//! limit that was hit — the container's own, its pod's, node allocatable (the `kubepods`
//! cgroup), or the whole node (a global OOM: the kubelet's reserved memory is too small).
//!
//! mm/oom_kill.c `dump_oom_summary` prints one line per kill (4.19+):
//! `oom-kill:constraint=CONSTRAINT_MEMCG,...,oom_memcg=<limited cgroup>,task_memcg=<victim's>,
//! task=<comm>,pid=<pid>,uid=<uid>`; a global OOM says `constraint=CONSTRAINT_NONE` and
//! `global_oom` instead of `oom_memcg=`. Older kernels print `Task in <victim's> killed as a
//! result of limit of <limited>`. Then `Killed process <pid> (<comm>) total-vm:..,
//! anon-rss:..`. The counters corroborate: `/proc/vmstat` `oom_kill`, v1
//! `memory.oom_control` `oom_kill` (the victim's own cgroup only: not hierarchical), v2
//! `memory.events` (hierarchical) and `memory.events.local`.

use super::common::{MAX_FINDINGS, cgroup_name, cgroup_subject, change, vmstat};
use super::{CheckDef, History, Needs, Outcome};
use crate::attribution::{CgroupOwner, parse_cgroup_path, short_id};
use crate::config::{CheckSettings, SettingDef};
use crate::finding::{Evidence, Finding, Measure, Severity, Subject, SubjectKind, Unit, key};
use crate::model::log::LogRecord;
use crate::model::memory::MemoryCgroup;
use crate::model::snapshot::Snapshot;
use std::collections::BTreeMap;

pub const CHECK: CheckDef = CheckDef {
    id: "oom-kills",
    title: "OOM kills with the limit that was hit: container, pod, node allocatable or the whole node",
    doc: include_str!("oom_kills.md"),
    needs: Needs {
        kernel_log: true,
        memcg: true,
        history: true,
        ..Needs::NONE
    },
    settings: &[RECENT],
    condition: Some(super::ConditionDef {
        type_: "OOMKills",
        true_reason: "RecentOOMKills",
        false_reason: "NoRecentOOMKills",
    }),
    run,
};

/// The kernel lines this check reads (what [`kills`] parses): a follower of the ring (the
/// agent) keeps the records holding one of them for it.
pub const KERNEL_LINES: &[&str] = &[
    "oom-kill:",
    "Killed process ",
    "Out of memory: Kill process ",
    " killed as a result of limit of ",
];

/// Kills logged longer ago than this are left to `kernel-log` (which reports them as info).
pub const RECENT: SettingDef = SettingDef::duration(
    "recent",
    60 * 60 * 1000,
    "kills logged longer ago than this (before the snapshot) are not reported",
);

/// Whose limit the kill was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// The victim's container's own memory limit.
    Container,
    /// The pod-level cgroup's limit (the sum of the containers' limits, or a pod overhead).
    Pod,
    /// `kubepods` (or a QoS class cgroup below it): node allocatable is used up.
    NodeAllocatable,
    /// A limit on a cgroup that is not the kubelet's (a systemd slice, docker.service).
    Cgroup,
    /// The whole node is out of memory.
    Global,
    /// cpuset or mempolicy: the allowed nodes' memory is used up.
    Placement,
    /// The lines do not say (a `Killed process` line without the summary line).
    Unknown,
}

impl Scope {
    fn of(constraint: &str, global: bool, oom_memcg: Option<&str>) -> Scope {
        match constraint {
            "CONSTRAINT_CPUSET" | "CONSTRAINT_MEMORY_POLICY" => return Scope::Placement,
            "CONSTRAINT_NONE" => return Scope::Global,
            _ => {}
        }
        if global {
            return Scope::Global;
        }
        let Some(limited) = oom_memcg else {
            return Scope::Unknown;
        };
        let owner = parse_cgroup_path(limited);
        if owner.container_id.is_some() {
            Scope::Container
        } else if owner.pod_uid.is_some() {
            Scope::Pod
        } else if limited.split('/').any(|c| c.starts_with("kubepods")) {
            Scope::NodeAllocatable
        } else {
            Scope::Cgroup
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Container => "container limit",
            Scope::Pod => "pod limit",
            Scope::NodeAllocatable => "node allocatable",
            Scope::Cgroup => "cgroup limit",
            Scope::Global => "global OOM",
            Scope::Placement => "cpuset or mempolicy",
            Scope::Unknown => "unknown limit",
        }
    }
}

/// One OOM kill as the kernel's lines tell it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Kill {
    pub time_ms: Option<u64>,
    pub constraint: String,
    pub global: bool,
    pub oom_memcg: Option<String>,
    pub task_memcg: Option<String>,
    pub comm: String,
    pub pid: Option<i32>,
    pub uid: Option<u32>,
    pub anon_rss_kb: Option<u64>,
    /// The summary line (or the first line read), for the evidence.
    pub line: String,
}

impl Kill {
    pub fn scope(&self) -> Scope {
        if self.constraint.is_empty() && !self.global && self.oom_memcg.is_none() {
            return Scope::Unknown;
        }
        Scope::of(&self.constraint, self.global, self.oom_memcg.as_deref())
    }

    fn victim_owner(&self) -> CgroupOwner {
        self.task_memcg
            .as_deref()
            .map(parse_cgroup_path)
            .unwrap_or_default()
    }
}

/// `oom-kill:constraint=..,nodemask=..,cpuset=..,mems_allowed=..,oom_memcg=..,task_memcg=..,
/// task=..,pid=..,uid=..` (`global_oom` instead of `oom_memcg=` for a global OOM). The
/// comm may hold commas and `mems_allowed` does ("0-1,3"), so the tail is read from its end.
pub fn parse_summary(text: &str) -> Option<Kill> {
    let (_, rest) = text.split_once("oom-kill:")?;
    let uid_at = rest.rfind(",uid=")?;
    let pid_at = rest.get(..uid_at)?.rfind(",pid=")?;
    let task_at = rest.get(..pid_at)?.rfind(",task=")?;
    let uid = rest.get(uid_at.checked_add(5)?..)?.trim().parse().ok();
    let pid = rest.get(pid_at.checked_add(5)?..uid_at)?.parse().ok();
    let comm = rest.get(task_at.checked_add(6)?..pid_at)?.to_string();
    let mut k = Kill {
        comm,
        pid,
        uid,
        line: text.to_string(),
        ..Kill::default()
    };
    for field in rest.get(..task_at)?.split(',') {
        match field.split_once('=') {
            Some(("constraint", v)) => k.constraint = v.to_string(),
            Some(("oom_memcg", v)) => k.oom_memcg = Some(v.to_string()),
            Some(("task_memcg", v)) => k.task_memcg = Some(v.to_string()),
            None if field == "global_oom" => k.global = true,
            _ => {}
        }
    }
    (!k.constraint.is_empty()).then_some(k)
}

/// `Killed process 26461 (memstress) total-vm:67880kB, anon-rss:65024kB, ...` (after
/// "Out of memory: " or "Memory cgroup out of memory: "), as (pid, comm, anon-rss kB).
pub fn parse_killed(text: &str) -> Option<(i32, String, Option<u64>)> {
    let (_, rest) = text.split_once("Killed process ")?;
    let (pid, rest) = rest.split_once(' ')?;
    let pid = pid.parse().ok()?;
    let rest = rest.strip_prefix('(')?;
    // The comm ends at the last ")" before the counters (it may hold parentheses itself).
    let close = rest.find(") total-vm").or_else(|| rest.rfind(')'))?;
    let comm = rest.get(..close)?.to_string();
    let anon = rest.find("anon-rss:").and_then(|at| {
        let n = rest.get(at.checked_add(9)?..)?;
        n.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    });
    Some((pid, comm, anon))
}

/// Pre-4.19: `Task in <victim's memcg> killed as a result of limit of <limited memcg>`.
fn parse_task_in(text: &str) -> Option<(String, String)> {
    let (_, rest) = text.split_once("Task in ")?;
    let (task, limited) = rest.split_once(" killed as a result of limit of ")?;
    Some((task.to_string(), limited.trim().to_string()))
}

/// The kills in a kernel log, in order, each line joined to the kill it belongs to.
pub fn kills(records: &[LogRecord]) -> Vec<Kill> {
    let mut out: Vec<Kill> = Vec::new();
    // An old kernel's "Task in" line waits for its "Killed process" line.
    let mut pending: Option<Kill> = None;
    for r in records {
        let t = r.text.as_str();
        if let Some(mut k) = parse_summary(t) {
            k.time_ms = r.time_ms;
            out.push(k);
        } else if t.contains("Out of memory: Kill process ") {
            // Before 4.19 a global OOM says so on the line before "Killed process".
            pending = Some(Kill {
                time_ms: r.time_ms,
                constraint: "CONSTRAINT_NONE".into(),
                global: true,
                line: t.to_string(),
                ..Kill::default()
            });
        } else if let Some((task, limited)) = parse_task_in(t) {
            pending = Some(Kill {
                time_ms: r.time_ms,
                constraint: "CONSTRAINT_MEMCG".into(),
                oom_memcg: Some(limited),
                task_memcg: Some(task),
                line: t.to_string(),
                ..Kill::default()
            });
        } else if let Some((pid, comm, anon)) = parse_killed(t) {
            if let Some(last) = out
                .last_mut()
                .filter(|k| k.pid == Some(pid) && k.anon_rss_kb.is_none())
            {
                last.anon_rss_kb = anon;
                continue;
            }
            // Without a summary line, only the prefix tells: "Out of memory:" is the node's.
            let global = t.contains("Out of memory: Killed");
            let mut k = pending.take().unwrap_or_else(|| Kill {
                time_ms: r.time_ms,
                global,
                constraint: if global {
                    "CONSTRAINT_NONE".into()
                } else {
                    String::new()
                },
                line: t.to_string(),
                ..Kill::default()
            });
            (k.pid, k.comm, k.anon_rss_kb) = (Some(pid), comm, anon);
            out.push(k);
        }
    }
    out
}

/// What identifies a group of kills: the limited cgroup (its owner when it has one).
fn group_key(s: &Snapshot, k: &Kill) -> String {
    let scope = k.scope();
    let hierarchy = s
        .cgroups
        .as_ref()
        .and_then(|c| c.memory_hierarchy())
        .map_or("memory", |h| h.as_str());
    let limited = k.oom_memcg.as_deref().map(parse_cgroup_path);
    match scope {
        Scope::Container => match limited.and_then(|o| o.container_id) {
            Some(id) => key::container(CHECK.id, &id),
            None => key::node(CHECK.id),
        },
        Scope::Pod => match limited.and_then(|o| o.pod_uid) {
            Some(uid) => key::pod(CHECK.id, &uid),
            None => key::node(CHECK.id),
        },
        Scope::NodeAllocatable | Scope::Cgroup => {
            key::cgroup(CHECK.id, hierarchy, k.oom_memcg.as_deref().unwrap_or("/"))
        }
        Scope::Global | Scope::Placement => key::node(CHECK.id),
        // Keyed by the victim's container, the best the lines give.
        Scope::Unknown => match k.victim_owner().container_id {
            Some(id) => key::container(CHECK.id, &id),
            None => key::node(CHECK.id),
        },
    }
}

fn run(h: &History, cfg: &CheckSettings) -> Outcome {
    let s = h.current();
    let recent_ms = cfg.duration_ms(&RECENT);
    let since = h.previous().map(|p| p.collected_at_ms);
    let node_counter = change(h, |x| vmstat(x, &["oom_kill"]));
    let mut outcome = Outcome::default();

    let log_kills: Vec<Kill> = match &s.kernel_log {
        Some(log) => {
            if let Some(e) = &log.error {
                outcome.unknown.push(format!("kernel log: {e}"));
            }
            kills(&log.records)
                .into_iter()
                .filter(|k| {
                    k.time_ms
                        .is_none_or(|t| s.collected_at_ms.saturating_sub(t) <= recent_ms)
                })
                .collect()
        }
        None => {
            outcome.unknown.push(s.not_collected("kernel log records"));
            Vec::new()
        }
    };
    // Without the ring, only counters compared across samples can tell of kills.
    let ring_read = s
        .kernel_log
        .as_ref()
        .is_some_and(|l| l.error.is_none() || !l.records.is_empty());
    if !ring_read && h.earliest().is_none() {
        outcome.inconclusive = true;
        return outcome;
    }

    // One finding per limited cgroup (or the node), newest kill first.
    let mut groups: BTreeMap<String, Vec<&Kill>> = BTreeMap::new();
    for k in &log_kills {
        groups.entry(group_key(s, k)).or_default().push(k);
    }
    let mut findings: Vec<Finding> = groups
        .into_iter()
        .map(|(key, ks)| log_finding(s, key, &ks, since, node_counter.map(|c| c.delta())))
        .collect();

    // Counters that rose during the window with no kill line for them (a ring that could
    // not be read, or wrapped).
    let in_window = |k: &&Kill| match (since, k.time_ms) {
        (Some(t0), Some(t)) => t > t0,
        _ => false,
    };
    let window_lines = log_kills.iter().filter(in_window).count() as u64;
    findings.extend(counter_findings(h, &log_kills));
    if let Some(c) = node_counter
        && c.delta() > window_lines
        && findings.is_empty()
    {
        findings.push(node_counter_finding(c.delta(), window_lines));
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    findings.truncate(MAX_FINDINGS);
    outcome.findings = findings;
    outcome
}

fn severity_of(scope: Scope) -> Severity {
    match scope {
        Scope::Global | Scope::NodeAllocatable => Severity::Critical,
        _ => Severity::Warning,
    }
}

fn log_finding(
    s: &Snapshot,
    key: String,
    kills: &[&Kill],
    since: Option<u64>,
    node_delta: Option<u64>,
) -> Finding {
    // `kills` is in log order; the latest victim leads.
    let latest = kills.last().copied().cloned().unwrap_or_default();
    let scope = latest.scope();
    let victim = latest.victim_owner();
    let who = format!(
        "{} ({}){}",
        latest.pid.map_or("?".into(), |p| p.to_string()),
        latest.comm,
        match (&victim.container_id, &victim.pod_uid) {
            (Some(id), Some(pod)) => format!(" in container {} of pod {pod}", short_id(id)),
            (Some(id), None) => format!(" in container {}", short_id(id)),
            (None, Some(pod)) => format!(" in pod {pod}"),
            (None, None) => latest
                .task_memcg
                .as_deref()
                .map_or(String::new(), |m| format!(" in cgroup {m}")),
        }
    );
    let during = kills
        .iter()
        .filter(|k| since.zip(k.time_ms).is_some_and(|(t0, t)| t > t0))
        .count();
    let n = kills.len();
    let limited = latest.oom_memcg.clone().unwrap_or_else(|| "/".into());
    let mut summary = match scope {
        Scope::Container => format!("OOM kill at the container's own memory limit: {who}"),
        Scope::Pod => format!(
            "OOM kill at the pod's memory limit ({}): {who}",
            cgroup_name(&limited)
        ),
        Scope::NodeAllocatable => format!(
            "OOM kill at node allocatable ({limited} used all the memory the kubelet gives pods): {who}"
        ),
        Scope::Cgroup => format!("OOM kill at the memory limit of cgroup {limited}: {who}"),
        Scope::Global => format!("global OOM: the node ran out of memory and killed {who}"),
        Scope::Placement => format!(
            "OOM kill within a cpuset or memory policy ({}): {who}",
            latest.constraint
        ),
        Scope::Unknown => format!("OOM kill (the kernel did not say whose limit): {who}"),
    };
    summary.push_str(&format!(
        "; {n} kill{} in the recent log{}",
        if n == 1 { "" } else { "s" },
        if during > 0 {
            format!(", {during} since the last sample")
        } else {
            String::new()
        }
    ));

    let mut evidence: Vec<Evidence> = kills
        .iter()
        .rev()
        .take(5)
        .map(|k| Evidence::new("kernel log", k.line.clone()))
        .collect();
    if let Some(d) = node_delta {
        evidence.push(Evidence::new(
            "/proc/vmstat",
            format!("oom_kill +{d} between the samples"),
        ));
    }
    let cg = s.cgroups.as_ref();
    let limited_cg = cg.and_then(|c| c.memory_cgroup(&limited));
    if let (Some(c), Some(m)) = (cg, limited_cg) {
        evidence.push(Evidence::new(
            format!(
                "{}/{}",
                c.dir_of(m.hierarchy, "memory", &m.path),
                limit_file(m)
            ),
            format!(
                "usage {} of limit {}",
                m.usage_bytes.map_or("?".into(), |u| u.to_string()),
                m.effective_limit().map_or("max".into(), |l| l.to_string())
            ),
        ));
    }
    let victim_cg = latest
        .task_memcg
        .as_deref()
        .and_then(|p| cg.and_then(|c| c.memory_cgroup(p)));
    if let (Some(c), Some(m)) = (cg, victim_cg)
        && let Some(kills) = m.own_oom_kills()
    {
        evidence.push(Evidence::new(
            format!(
                "{}/{}",
                c.dir_of(m.hierarchy, "memory", &m.path),
                if m.oom_control.is_some() {
                    "memory.oom_control"
                } else {
                    "memory.events.local"
                }
            ),
            format!("oom_kill {kills} (the victim's own cgroup)"),
        ));
    }

    let mut subjects = vec![Subject {
        pid: latest.pid,
        comm: Some(latest.comm.clone()),
        uid: latest.uid,
        container_id: victim.container_id.clone(),
        pod: victim.pod_uid.clone(),
        path: latest.task_memcg.clone(),
        ..Subject::new(SubjectKind::Process)
    }];
    if let Some(limited) = &latest.oom_memcg {
        subjects.push(cgroup_subject(limited));
    } else if scope == Scope::Global {
        subjects.push(Subject::new(SubjectKind::Node));
    }
    let mut measures = vec![
        Measure::count("kills", n),
        Measure::count("kills_since_last_sample", during),
    ];
    if let Some(pid) = latest.pid {
        measures.push(Measure::count("victim_pid", pid));
    }
    if let Some(kb) = latest.anon_rss_kb {
        measures.push(Measure::new(
            "victim_anon_rss_bytes",
            kb.saturating_mul(1024),
            Unit::Bytes,
        ));
    }
    if let Some(m) = limited_cg {
        measures.push(
            Measure::new("usage_bytes", m.usage_bytes.unwrap_or(0), Unit::Bytes)
                .of_opt(m.effective_limit()),
        );
    }
    let (cause, remedy) = explain(scope, &limited);
    Finding {
        check: CHECK.id.into(),
        key,
        severity: severity_of(scope),
        summary,
        cause,
        remedy,
        evidence,
        subjects,
        measures,
        log: None,
        caused_by: Vec::new(),
        explains: Vec::new(),
    }
}

fn limit_file(m: &MemoryCgroup) -> &'static str {
    match (m.oom_control.is_some(), m.high_bytes.is_some()) {
        (true, _) => "memory.limit_in_bytes",
        (false, true) => "memory.high",
        (false, false) => "memory.max",
    }
}

fn explain(scope: Scope, limited: &str) -> (String, String) {
    match scope {
        Scope::Container => (
            "The container used all of its own memory limit (its memory cgroup's max) and the kernel killed a \
             process in it: the pod shows OOMKilled and exit code 137, and restarts."
                .into(),
            "Raise the container's memory limit to its real peak (page cache it cannot drop counts too), or fix \
             its growth: `kubectl describe pod` shows the OOMKilled restarts, `kubectl top pod --containers` the usage."
                .into(),
        ),
        Scope::Pod => (
            format!(
                "The pod-level cgroup {limited} hit its limit: the containers together (plus any pod overhead) \
                 used more than the pod's limit, and the kernel killed the largest task in any of them, not \
                 necessarily the one that grew."
            ),
            "Set each container's limit so they sum within the pod's (or raise the pod's limit: the sum of the \
             containers' limits, plus the RuntimeClass overhead); find which container grew with `kubectl top pod --containers`."
                .into(),
        ),
        Scope::NodeAllocatable => (
            format!(
                "The kubelet's pods cgroup {limited} (node allocatable: capacity minus kube-reserved, \
                 system-reserved and the eviction threshold) hit its limit: pods together used all the memory \
                 the node gives them, and the kernel killed a task in one of them before the kubelet evicted."
            ),
            "Set memory requests and limits so the pods scheduled fit allocatable (`kubectl describe node`: \
             Allocated resources); lower overcommit; make eviction act first (evictionHard/evictionSoft \
             memory.available above the point where kubepods fills)."
                .into(),
        ),
        Scope::Cgroup => (
            format!("A cgroup outside the kubelet's ({limited}) hit its memory limit and the kernel killed a task in it."),
            format!("Check the unit or service that owns {limited} (`systemctl status`, MemoryMax=) and raise its limit or fix its growth."),
        ),
        Scope::Global => (
            "The whole node ran out of memory: the kernel's global OOM killer ran because neither the kubelet's \
             eviction nor the cgroup limits kept usage under physical memory. Usually system daemons (outside \
             kubepods) grew past system-reserved, or kube-reserved/system-reserved are too small for what runs \
             on the node."
                .into(),
            "Reserve what the node's daemons really use (kubelet --kube-reserved / --system-reserved, and \
             --enforce-node-allocatable=pods so kubepods gets a limit); raise the eviction threshold \
             (evictionHard memory.available); `dmesg | grep -A40 'invoked oom-killer'` shows the task list at \
             the kill."
                .into(),
        ),
        Scope::Placement => (
            "The memory allowed by the task's cpuset or memory policy (NUMA nodes) ran out, not the node's.".into(),
            "Check the pod's cpuset (static CPU manager, topology manager) and memory policy; give it memory on the nodes it may use."
                .into(),
        ),
        Scope::Unknown => (
            "A process was OOM-killed; the lines read do not include the kernel's summary line that names the \
             limit (a ring that wrapped, or an old kernel's format)."
                .into(),
            "Read the kill in full with `dmesg | grep -B5 -A40 'invoked oom-killer'`.".into(),
        ),
    }
}

/// Cgroups whose own kill counter rose during the window though no kill line names them.
fn counter_findings(h: &History, log_kills: &[Kill]) -> Vec<Finding> {
    let s = h.current();
    let Some(cg) = s.cgroups.as_ref() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for m in cg.memory_list() {
        let Some(c) = change(h, |x| {
            x.cgroups
                .as_ref()?
                .memory_cgroup(&m.path)
                .and_then(MemoryCgroup::own_oom_kills)
        }) else {
            continue;
        };
        if !c.grew()
            || log_kills
                .iter()
                .any(|k| k.task_memcg.as_deref() == Some(&m.path))
        {
            continue;
        }
        let dir = cg.dir_of(m.hierarchy, "memory", &m.path);
        let file = if m.oom_control.is_some() {
            "memory.oom_control"
        } else {
            "memory.events.local"
        };
        out.push(Finding {
            check: CHECK.id.into(),
            key: match parse_cgroup_path(&m.path).container_id {
                Some(id) => key::container(CHECK.id, &id),
                None => key::cgroup(CHECK.id, m.hierarchy.as_str(), &m.path),
            },
            severity: Severity::Warning,
            summary: format!(
                "{} OOM kills in {} since the last sample (the kernel log lines were not found, so the limit hit is not known)",
                c.delta(),
                cgroup_name(&m.path)
            ),
            cause: "The kernel killed processes of this cgroup for lack of memory; its counter says so, but the \
                    kernel's oom-kill line, which names the limit that was hit, was not in the log read."
                .into(),
            remedy: "Read the kills with `dmesg | grep -A40 'invoked oom-killer'` (as root); raise the limit that was hit or fix the growth."
                .into(),
            evidence: vec![Evidence::new(
                format!("{dir}/{file}"),
                format!("oom_kill {} → {}", c.first, c.last),
            )],
            subjects: vec![cgroup_subject(&m.path)],
            measures: vec![Measure::count("kills", c.delta())],
            log: None,
            caused_by: Vec::new(),
            explains: Vec::new(),
        });
    }
    out
}

fn node_counter_finding(delta: u64, lines: u64) -> Finding {
    Finding {
        check: CHECK.id.into(),
        key: key::node(CHECK.id),
        severity: Severity::Warning,
        summary: format!(
            "{delta} OOM kills on the node since the last sample, {lines} of them in the kernel log read"
        ),
        cause: "/proc/vmstat oom_kill rose: the kernel killed processes for lack of memory. Without its log \
                lines the limit that was hit (container, pod, node allocatable or the whole node) is not known."
            .into(),
        remedy: "Read the kernel log as root (`dmesg | grep oom-kill:`); node-doctor needs /dev/kmsg to name the victims."
            .into(),
        evidence: vec![Evidence::new("/proc/vmstat", format!("oom_kill +{delta}"))],
        subjects: vec![Subject::new(SubjectKind::Node)],
        measures: vec![Measure::count("kills", delta)],
        log: None,
        caused_by: Vec::new(),
        explains: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::common::test_support::snapshot;
    use super::*;
    use crate::model::log::KernelLog;

    const POD: &str = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod3f1c2a9e_1b2c_4d5e_8f90_a1b2c3d4e5f6.slice";
    const ID: &str = "7d3e9b1c2a4f5e6d7c8b9a0f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8f9e0d0";

    fn rec(ms: u64, text: &str) -> LogRecord {
        LogRecord {
            time_ms: Some(ms),
            ..LogRecord::text(text)
        }
    }

    fn memcg_line(oom: &str, task: &str, pid: u32) -> String {
        format!(
            "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0-1,3,oom_memcg={oom},task_memcg={task},task=mem,stress,pid={pid},uid=0"
        )
    }

    #[test]
    fn summary_lines_of_each_form() {
        let ctr = format!("{POD}/cri-containerd-{ID}.scope");
        let k = parse_summary(&memcg_line(POD, &ctr, 26461)).unwrap();
        assert_eq!(k.comm, "mem,stress", "a comm with a comma");
        assert_eq!((k.pid, k.uid), (Some(26461), Some(0)));
        assert_eq!(k.scope(), Scope::Pod);
        let k = parse_summary(&memcg_line(&ctr, &ctr, 1)).unwrap();
        assert_eq!(k.scope(), Scope::Container);
        let k = parse_summary(&memcg_line("/kubepods.slice", &ctr, 1)).unwrap();
        assert_eq!(k.scope(), Scope::NodeAllocatable);
        let k = parse_summary(&memcg_line(
            "/system.slice/docker.service",
            "/system.slice/docker.service",
            1,
        ))
        .unwrap();
        assert_eq!(k.scope(), Scope::Cgroup);
        let g = parse_summary("oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/kubepods/besteffort/podbe1e663f-1111-2222-3333-444455556666/53463dbb,task=entry,pid=19227,uid=0").unwrap();
        assert!(g.global);
        assert_eq!(g.scope(), Scope::Global);
        assert_eq!(
            g.victim_owner().pod_uid.as_deref(),
            Some("be1e663f-1111-2222-3333-444455556666")
        );
        assert!(parse_summary("oom-kill:garbage").is_none());
        assert_eq!(
            parse_killed(
                "Memory cgroup out of memory: Killed process 26461 (mem (x)) total-vm:67880kB, anon-rss:65024kB, file-rss:1240kB, shmem-rss:0kB, UID:0 pgtables:168kB oom_score_adj:0"
            ),
            Some((26461, "mem (x)".to_string(), Some(65024)))
        );
    }

    #[test]
    fn old_kernels_task_in_lines_join_their_kill() {
        let recs = [
            rec(
                1,
                "java invoked oom-killer: gfp_mask=0x6000c0(GFP_KERNEL), nodemask=(null), order=0, oom_score_adj=999",
            ),
            rec(
                2,
                &format!(
                    "Task in /kubepods/burstable/pod5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c/{ID} killed as a result of limit of /kubepods/burstable/pod5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c/{ID}"
                ),
            ),
            rec(
                3,
                "Memory cgroup out of memory: Kill process 2592 (java) score 1990 or sacrifice child",
            ),
            rec(
                4,
                "Killed process 2592 (java) total-vm:7517212kB, anon-rss:6291456kB, file-rss:0kB, shmem-rss:0kB",
            ),
        ];
        let ks = kills(&recs);
        assert_eq!(ks.len(), 1, "{ks:#?}");
        assert_eq!((ks[0].pid, ks[0].scope()), (Some(2592), Scope::Container));
        assert_eq!(ks[0].anon_rss_kb, Some(6_291_456));
        let global = [
            rec(
                1,
                "Out of memory: Kill process 77 (cc1plus) score 900 or sacrifice child",
            ),
            rec(
                2,
                "Killed process 77 (cc1plus) total-vm:1kB, anon-rss:5kB, file-rss:0kB",
            ),
            rec(
                3,
                "Out of memory: Killed process 78 (ld) total-vm:1kB, anon-rss:5kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:1kB oom_score_adj:0",
            ),
        ];
        let ks = kills(&global);
        assert_eq!(ks.len(), 2, "{ks:#?}");
        assert!(ks.iter().all(|k| k.scope() == Scope::Global), "{ks:#?}");
    }

    fn with_log(mut s: Snapshot, recs: Vec<LogRecord>, oom_kill: i64) -> Snapshot {
        s.kernel_log = Some(KernelLog {
            records: recs,
            ..KernelLog::default()
        });
        s.vmstat.insert("oom_kill".into(), oom_kill);
        s
    }

    #[test]
    fn kills_are_grouped_by_the_limit_hit_and_the_window_counted() {
        let now = 10_000_000;
        let ctr = format!("{POD}/cri-containerd-{ID}.scope");
        let a = with_log(snapshot(now - 2000, 1, Vec::new()), Vec::new(), 3);
        let b = with_log(
            snapshot(now, 1, Vec::new()),
            vec![
                rec(now - 3_000_000, &memcg_line(POD, &ctr, 10)),
                rec(now - 1000, &memcg_line(POD, &ctr, 11)),
                rec(
                    now - 1000,
                    "Memory cgroup out of memory: Killed process 11 (mem,stress) total-vm:1kB, anon-rss:2048kB, file-rss:0kB",
                ),
                rec(
                    now - 900,
                    "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/system.slice/x.service,task=big,pid=12,uid=0",
                ),
                // Older than an hour: kernel-log's business.
                rec(now - 4_000_000, &memcg_line(&ctr, &ctr, 9)),
            ],
            6,
        );
        let out = run(&History::new([&a, &b]).unwrap(), &CheckSettings::default());
        assert_eq!(out.findings.len(), 2, "{:#?}", out.findings);
        let global = &out.findings[0];
        assert_eq!(
            (global.severity, global.key.as_str()),
            (Severity::Critical, "oom-kills/node")
        );
        let pod = &out.findings[1];
        assert_eq!(
            pod.key,
            "oom-kills/pod:3f1c2a9e-1b2c-4d5e-8f90-a1b2c3d4e5f6"
        );
        assert_eq!(pod.measure("kills").map(|m| m.value), Some(2.0));
        assert_eq!(
            pod.measure("kills_since_last_sample").map(|m| m.value),
            Some(1.0)
        );
        assert_eq!(pod.measure("victim_pid").map(|m| m.value), Some(11.0));
        assert_eq!(
            pod.measure("victim_anon_rss_bytes").map(|m| m.value),
            Some(2048.0 * 1024.0)
        );
        assert_eq!(pod.subjects[0].container_id.as_deref(), Some(ID));
        assert_eq!(pod.subjects[1].kind, SubjectKind::Pod);
        assert!(
            pod.summary.contains("pod's memory limit"),
            "{}",
            pod.summary
        );
    }

    #[test]
    fn counters_without_lines_still_say_kills_happened() {
        let a = with_log(snapshot(0, 1, Vec::new()), Vec::new(), 3);
        let mut b = with_log(snapshot(2000, 1, Vec::new()), Vec::new(), 5);
        b.kernel_log.as_mut().unwrap().error = Some("/dev/kmsg: Permission denied".into());
        let out = run(&History::new([&a, &b]).unwrap(), &CheckSettings::default());
        assert_eq!(out.findings.len(), 1);
        assert_eq!(out.findings[0].measure("kills").map(|m| m.value), Some(2.0));
        assert!(out.unknown[0].contains("Permission denied"));
        // Nothing at all: quiet.
        let out = run(&History::new([&a, &a]).unwrap(), &CheckSettings::default());
        assert!(out.findings.is_empty());
    }
}
