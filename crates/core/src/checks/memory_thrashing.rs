//! `memory-thrashing`: the node, or one container, stalls on memory reclaim long before the
//! OOM killer acts (incident 2e).
//!
//! Without swap, reclaim can only drop page cache; a working set slightly larger than the
//! memory there is makes kswapd and direct reclaim evict file pages that are read straight
//! back (refaults: mm/workingset.c `workingset_refault`). Reclaim keeps making a little
//! progress, so `out_of_memory` is not called (mm/vmscan.c `do_try_to_free_pages` returns
//! progress), and the node hangs in disk reads. PSI (kernel/sched/psi.c) counts the time
//! tasks wait on those refaults: the best single signal.
//!
//! A cgroup at its own limit reclaims in the charging task (mm/memcontrol.c
//! `try_charge_memcg` → `try_to_free_mem_cgroup_pages`): the global `pgscan`/`pgsteal`/
//! `allocstall` counters and kswapd stay still, so a container thrashing at its limit is
//! only found per cgroup: v1 `memory.failcnt` and `workingset_refault*` in its
//! `memory.stat`, v2 `memory.events` `high`/`max` and `memory.pressure`.

use super::common::{
    Change, MAX_FINDINGS, cgroup_name, cgroup_subject, change, node_refaults, ratio as frac,
    same_in, span_ms, vmstat,
};
use super::{CheckDef, History, Needs, Outcome, pct};
use crate::config::{CheckSettings, SettingDef};
use crate::finding::{Evidence, Finding, Measure, Severity, Subject, Unit, key};
use crate::model::cgroups::{Cgroups, Hierarchy};
use crate::model::kernel::PressurePair;
use crate::model::memory::MemoryCgroup;
use crate::model::process::Process;
use crate::model::snapshot::Snapshot;

pub const CHECK: CheckDef = CheckDef {
    id: "memory-thrashing",
    title: "the node or a container stalls on memory reclaim (PSI, refaults) before the OOM killer acts",
    doc: include_str!("memory_thrashing.md"),
    needs: Needs {
        memcg: true,
        // kswapd's CPU time, and the processes of a thrashing cgroup.
        processes: true,
        history: true,
        ..Needs::NONE
    },
    settings: &[
        SOME_WARN,
        FULL_CRIT,
        FULL_DURATION,
        AVAILABLE_WARN,
        CGROUP_USAGE,
        REFAULT_WARN,
        REFAULT_CRIT,
    ],
    condition: Some(super::ConditionDef {
        type_: "MemoryThrashing",
        true_reason: "ReclaimStalls",
        false_reason: "NoMemoryThrashing",
    }),
    run,
};

pub const SOME_WARN: SettingDef = SettingDef::ratio(
    "some_warn",
    0.10,
    "PSI memory 'some' avg10 at which the node (or a cgroup at its limit) thrashes: warning (nohang's warning level)",
);
pub const FULL_CRIT: SettingDef = SettingDef::ratio(
    "full_crit",
    0.60,
    "PSI memory 'full' avg10 held for full_duration: critical, the node hangs (systemd-oomd's default kill bar)",
);
pub const FULL_DURATION: SettingDef = SettingDef::duration(
    "full_duration",
    30_000,
    "how long 'full' must stay at full_crit (systemd-oomd's DefaultMemoryPressureDurationSec); avg60 at full_crit counts too",
);
pub const AVAILABLE_WARN: SettingDef = SettingDef::ratio(
    "available_warn",
    0.10,
    "MemAvailable under this share of MemTotal with refaults going on: warning (earlyoom's SIGTERM level)",
);
pub const CGROUP_USAGE: SettingDef = SettingDef::ratio(
    "cgroup_usage",
    0.90,
    "a memory cgroup at this share of its limit (memory.high or memory.max) is at its limit",
);
pub const REFAULT_WARN: SettingDef = SettingDef::count(
    "refault_warn",
    500,
    "refaults per second of a cgroup at its limit: warning (node_exporter's 500 major faults/s page-in bar)",
);
pub const REFAULT_CRIT: SettingDef = SettingDef::count(
    "refault_crit",
    5000,
    "refaults per second of a cgroup at its limit: critical",
);

/// Cgroups named on the node-wide finding.
const TOP: usize = 3;

#[derive(Debug, Clone, Copy)]
struct Bars {
    some: f64,
    full: f64,
    full_ms: u64,
    available: f64,
    usage: f64,
    refault_warn: f64,
    refault_crit: f64,
}

impl Bars {
    fn of(cfg: &CheckSettings) -> Self {
        Bars {
            some: cfg.ratio(&SOME_WARN),
            full: cfg.ratio(&FULL_CRIT),
            full_ms: cfg.duration_ms(&FULL_DURATION),
            available: cfg.ratio(&AVAILABLE_WARN),
            usage: cfg.ratio(&CGROUP_USAGE),
            refault_warn: cfg.count(&REFAULT_WARN) as f64,
            refault_crit: cfg.count(&REFAULT_CRIT) as f64,
        }
    }
}

/// What one memory cgroup did over the history.
#[derive(Debug)]
struct CgroupRates<'a> {
    c: &'a MemoryCgroup,
    usage_ratio: Option<f64>,
    limit_hits: Option<Change>,
    refaults: Option<Change>,
    /// `refaults` are major faults: a v1 `memory.stat` before 5.12 has no refault counter.
    majfaults: bool,
    some: Option<f32>,
    full: Option<f32>,
}

impl CgroupRates<'_> {
    fn refault_rate(&self) -> Option<f64> {
        self.refaults.and_then(|c| c.per_sec())
    }

    /// At its limit: near it now, or reclaim forced by it during the window.
    fn at_limit(&self, usage_bar: f64) -> bool {
        self.usage_ratio.is_some_and(|r| r >= usage_bar)
            || self.limit_hits.is_some_and(|c| c.grew())
    }
}

fn memory_cgroups(s: &Snapshot) -> Option<&Cgroups> {
    s.cgroups.as_ref().filter(|c| c.memory.is_some())
}

fn rates<'a>(h: &History, c: &'a MemoryCgroup) -> CgroupRates<'a> {
    let earlier = |get: fn(&MemoryCgroup) -> Option<u64>| {
        change(h, |s| {
            memory_cgroups(s)?
                .memory_cgroup(&c.path)
                .filter(|m| m.hierarchy == c.hierarchy)
                .and_then(get)
        })
    };
    let refaults = earlier(|m| m.stat.workingset_refault);
    let majfaults = refaults.is_none() && c.stat.workingset_refault.is_none();
    CgroupRates {
        c,
        usage_ratio: c
            .usage_bytes
            .zip(c.effective_limit())
            .map(|(u, l)| if l == 0 { 1.0 } else { frac(u, l) }),
        limit_hits: earlier(MemoryCgroup::limit_hits),
        refaults: if majfaults {
            earlier(|m| m.stat.pgmajfault)
        } else {
            refaults
        },
        majfaults,
        some: c.pressure.as_ref().map(|p| p.some.avg10),
        full: c.pressure.as_ref().and_then(|p| p.full.map(|f| f.avg10)),
    }
}

fn run(h: &History, cfg: &CheckSettings) -> Outcome {
    let s = h.current();
    let bars = Bars::of(cfg);
    let mut outcome = Outcome::default();
    let node = node_wide(h, bars, &mut outcome);

    let Some(cg) = memory_cgroups(s) else {
        outcome.unknown.push(s.not_collected("memory cgroups"));
        // Nothing looked at: neither the node's figures nor any cgroup's.
        outcome.inconclusive = s.pressure.memory.is_none() && s.meminfo.is_none();
        if let Some(f) = node {
            outcome.findings.push(f);
        }
        return outcome;
    };
    let all: Vec<CgroupRates> = cg
        .memory_list()
        .iter()
        .filter(|c| c.path != "/")
        .map(|c| rates(h, c))
        .collect();
    let mut per_cgroup: Vec<Finding> = Vec::new();
    let mut need_rates: u64 = 0;
    for r in &all {
        if let Some(f) = cgroup_finding(s, cg, r, bars, node.is_some()) {
            per_cgroup.push(f);
        } else if r.at_limit(bars.usage) && r.refaults.is_none() && r.c.pressure.is_none() {
            need_rates = need_rates.saturating_add(1);
        }
    }
    per_cgroup.sort_by(|a, b| {
        b.severity.cmp(&a.severity).then(
            rate_of(b)
                .partial_cmp(&rate_of(a))
                .unwrap_or(std::cmp::Ordering::Equal),
        )
    });
    if let Some(mut f) = node {
        // Name who refaults most: the containers the node's reclaim hits hardest.
        let mut top: Vec<&CgroupRates> = all
            .iter()
            .filter(|r| r.refault_rate().is_some_and(|x| x > 0.0))
            .filter(|r| !crate::attribution::parse_cgroup_path(&r.c.path).is_empty())
            .collect();
        top.sort_by(|a, b| {
            b.refault_rate()
                .partial_cmp(&a.refault_rate())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        for r in top.into_iter().take(TOP) {
            f.evidence.push(Evidence::new(
                format!(
                    "{}/memory.stat",
                    cg.dir_of(r.c.hierarchy, "memory", &r.c.path)
                ),
                format!(
                    "{}: {:.0} refaults/s",
                    cgroup_name(&r.c.path),
                    r.refault_rate().unwrap_or(0.0)
                ),
            ));
            f.subjects.push(cgroup_subject(&r.c.path));
        }
        outcome.findings.push(f);
    }
    outcome
        .findings
        .extend(per_cgroup.into_iter().take(MAX_FINDINGS));
    if need_rates > 0 && h.earliest().is_none() {
        outcome.unknown.push(format!(
            "{need_rates} memory cgroups are at {} or more of their limit: whether they thrash needs their refault rate, from two samples (--window)",
            pct(bars.usage)
        ));
    }
    if cg.memory_truncated {
        outcome.unknown.push(
            "memory cgroups: the walk stopped at its bound or the kept list at its cap; some were not read"
                .into(),
        );
    }
    outcome
}

fn rate_of(f: &Finding) -> f64 {
    f.measure("refaults_per_sec").map_or(0.0, |m| m.value)
}

/// PSI share (the file prints percent).
fn share(avg: f32) -> f64 {
    f64::from(avg) / 100.0
}

/// Whether memory `full` stayed at the bar: avg60 at it, or avg10 at it in every sample
/// of the last `full_ms`.
fn full_sustained(h: &History, bar: f64, full_ms: u64) -> bool {
    let full = |s: &Snapshot| s.pressure.memory.as_ref().and_then(|p| p.full);
    let now = h.current();
    if full(now).is_some_and(|f| share(f.avg60) >= bar) {
        return true;
    }
    let mut since = None;
    for s in h.samples().iter().rev() {
        match full(s) {
            Some(f) if share(f.avg10) >= bar => since = Some(*s),
            _ => break,
        }
    }
    since.is_some_and(|first| span_ms(first, now) >= full_ms)
}

/// The stall share over the history from PSI `total` (µs), sharper than avg10 for a window.
fn window_share(h: &History, pick: fn(&PressurePair) -> Option<u64>) -> Option<f64> {
    let c = change(h, |s| s.pressure.memory.as_ref().and_then(pick))?;
    c.per_sec().map(|us| us / 1_000_000.0)
}

fn node_wide(h: &History, bars: Bars, outcome: &mut Outcome) -> Option<Finding> {
    let s = h.current();
    let psi = s.pressure.memory.as_ref();
    let mem = s.meminfo.as_ref();
    if psi.is_none() && mem.is_none() {
        outcome.unknown.push(format!(
            "node memory: {}; {}",
            s.why_missing("proc/pressure/memory"),
            s.why_missing("proc/meminfo")
        ));
        return None;
    }
    if psi.is_none() {
        outcome.unknown.push(format!(
            "no memory stall figures (PSI needs kernel 4.20+ with CONFIG_PSI and psi=1): {}",
            s.why_missing("proc/pressure/memory")
        ));
    }
    let some_window = window_share(h, |p| Some(p.some.total));
    let full_window = window_share(h, |p| p.full.map(|f| f.total));
    let some = psi
        .map(|p| share(p.some.avg10))
        .into_iter()
        .chain(some_window)
        .fold(None, |a: Option<f64>, x| Some(a.map_or(x, |a| a.max(x))));
    let full = psi.and_then(|p| p.full).map(|f| share(f.avg10));
    let available = mem
        .and_then(|m| m.mem_available.zip(m.mem_total))
        .map(|(a, t)| frac(a, t));
    let refaults = change(h, node_refaults);
    let refault_rate = refaults.and_then(|c| c.per_sec());

    let critical =
        full.is_some_and(|f| f >= bars.full) && full_sustained(h, bars.full, bars.full_ms);
    let warning = some.is_some_and(|x| x >= bars.some)
        || (available.is_some_and(|a| a < bars.available) && refault_rate.is_some_and(|r| r > 0.0));
    let severity = if critical {
        Severity::Critical
    } else if warning {
        Severity::Warning
    } else {
        return None;
    };

    let rate = |keys: &[&str]| change(h, |s| vmstat(s, keys)).and_then(|c| c.per_sec());
    let scan = rate(&["pgscan_kswapd", "pgscan_direct"]);
    let steal = rate(&["pgsteal_kswapd", "pgsteal_direct"]);
    let majfault = rate(&["pgmajfault"]);
    let allocstall = change(h, |s| {
        vmstat(
            s,
            &[
                "allocstall_dma",
                "allocstall_dma32",
                "allocstall_normal",
                "allocstall_movable",
                "allocstall_device",
            ],
        )
    });
    let kswapd = kswapd_cpu(h);

    let mut summary = String::from("node memory thrashing: ");
    let mut parts = Vec::new();
    if let Some(p) = psi {
        parts.push(format!(
            "tasks stalled on memory {:.0}% of the time (some avg10), all tasks {:.0}% (full)",
            p.some.avg10,
            p.full.map_or(0.0, |f| f.avg10)
        ));
    }
    if let Some(a) = available {
        parts.push(format!("MemAvailable {}", pct(a)));
    }
    if let Some(r) = refault_rate {
        parts.push(format!("{r:.0} refaults/s"));
    }
    summary.push_str(&parts.join(", "));

    let mut evidence = Vec::new();
    let mut measures = Vec::new();
    if let Some(p) = psi {
        let full_text = p.full.map_or("no full line".to_string(), |f| {
            format!("full avg10={:.2} avg60={:.2}", f.avg10, f.avg60)
        });
        evidence.push(
            Evidence::new(
                "/proc/pressure/memory",
                format!(
                    "some avg10={:.2} avg60={:.2}; {full_text}",
                    p.some.avg10, p.some.avg60
                ),
            )
            .with_threshold(format!(
                "warning: some ≥ {}; critical: full ≥ {} held {}",
                pct(bars.some),
                pct(bars.full),
                crate::time::human_duration(bars.full_ms)
            )),
        );
        measures
            .push(Measure::new("psi_some_avg10", share(p.some.avg10), Unit::Ratio).of(bars.some));
        if let Some(f) = p.full {
            measures
                .push(Measure::new("psi_full_avg10", share(f.avg10), Unit::Ratio).of(bars.full));
        }
        if let Some(w) = some_window {
            evidence.push(Evidence::new(
                "/proc/pressure/memory total",
                format!(
                    "stalled {} of the window (some), {} (full)",
                    pct(w),
                    full_window.map_or("?".into(), pct)
                ),
            ));
        }
    }
    if let Some(m) = mem {
        let gib = |b: Option<u64>| {
            b.map_or("?".into(), |b| {
                format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64)
            })
        };
        evidence.push(
            Evidence::new(
                "/proc/meminfo",
                format!(
                    "MemAvailable {} of MemTotal {}; SwapTotal {}, SwapFree {}",
                    gib(m.mem_available),
                    gib(m.mem_total),
                    gib(m.swap_total),
                    gib(m.swap_free)
                ),
            )
            .with_threshold(format!(
                "warning under {} with refaults",
                pct(bars.available)
            )),
        );
        if let Some(a) = available {
            measures.push(Measure::new("mem_available_ratio", a, Unit::Ratio).of(bars.available));
        }
    }
    let per_sec = |x: Option<f64>| x.map_or("? (one sample)".to_string(), |r| format!("{r:.0}/s"));
    evidence.push(Evidence::new(
        "/proc/vmstat",
        format!(
            "workingset_refault {}, pgmajfault {}, pgscan {}, pgsteal {}, allocstall +{}",
            per_sec(refault_rate),
            per_sec(majfault),
            per_sec(scan),
            per_sec(steal),
            allocstall.map_or("?".into(), |c| c.delta().to_string())
        ),
    ));
    if let Some(r) = refault_rate {
        measures.push(Measure::count("refaults_per_sec", r));
    }
    if let Some(r) = majfault {
        measures.push(Measure::count("pgmajfault_per_sec", r));
    }
    if let Some(r) = scan {
        measures.push(Measure::count("pgscan_per_sec", r));
    }
    let mut subjects = vec![Subject::new(crate::finding::SubjectKind::Node)];
    for (p, cpu) in &kswapd {
        evidence.push(Evidence::new(
            format!("/proc/{}/stat", p.pid),
            format!("{} used {} of a CPU", p.comm, pct(*cpu)),
        ));
        subjects.push(Subject::process(p));
    }
    if let Some(max) = kswapd.iter().map(|(_, c)| *c).reduce(f64::max) {
        measures.push(Measure::new("kswapd_cpu", max, Unit::Ratio));
    }

    Some(Finding {
        check: CHECK.id.into(),
        key: key::node(CHECK.id),
        severity,
        summary,
        cause: "The node is short of memory and reclaim keeps evicting page cache that is read straight back \
                (refaults): every eviction makes a little progress, so the kernel's OOM killer does not run, and \
                tasks spend their time waiting on disk reads. SSH, the kubelet and monitoring slow down or stop \
                before anything is killed. The kubelet does not see it: its memory.available subtracts only \
                inactive_file, so page cache churning in the active list looks like free memory."
            .into(),
        remedy: "Find who grows: `ps -eo pid,rss,comm --sort=-rss | head` and the containers named here. Give the \
                 node headroom the kubelet enforces: kube-reserved/system-reserved and an eviction threshold above \
                 the thrash point (evictionHard memory.available well over 100Mi on big nodes, or evictionSoft); \
                 set memory limits on the pods that grow; act early in userspace (systemd-oomd, earlyoom, or the \
                 kubelet's KubeletPSI metrics with an alert on memory 'full')."
            .into(),
        evidence,
        subjects,
        measures,
        log: None,
        caused_by: Vec::new(),
        explains: Vec::new(),
    })
}

/// kswapd threads' CPU share over the history (one per NUMA node).
fn kswapd_cpu<'a>(h: &History<'a>) -> Vec<(&'a Process, f64)> {
    let s = h.current();
    let hz = s.clock_ticks_per_sec;
    if hz == 0 {
        return Vec::new();
    }
    s.process_list()
        .iter()
        .filter(|p| p.comm.starts_with("kswapd"))
        .filter_map(|p| {
            let c = change(h, |x| same_in(x, p)?.cpu_ticks)?;
            Some((p, c.per_sec()? / hz as f64))
        })
        .collect()
}

fn cgroup_finding(
    s: &Snapshot,
    cg: &Cgroups,
    r: &CgroupRates,
    bars: Bars,
    node_thrashes: bool,
) -> Option<Finding> {
    if !r.at_limit(bars.usage) {
        return None;
    }
    let rate = r.refault_rate();
    let some = r.some.map(share);
    let full = r.full.map(share);
    let severity = if full.is_some_and(|f| f >= bars.full)
        || rate.is_some_and(|x| x >= bars.refault_crit)
    {
        Severity::Critical
    } else if rate.is_some_and(|x| x >= bars.refault_warn) || some.is_some_and(|x| x >= bars.some) {
        Severity::Warning
    } else {
        return None;
    };
    let c = r.c;
    let dir = cg.dir_of(c.hierarchy, "memory", &c.path);
    let limit = c.effective_limit();
    let mib = |b: u64| format!("{:.0} MiB", b as f64 / (1u64 << 20) as f64);
    let mut summary = format!(
        "{} thrashes at its own memory limit: {} of {}",
        cgroup_name(&c.path),
        c.usage_bytes.map_or("?".into(), mib),
        limit.map_or("?".into(), mib)
    );
    if let Some(x) = rate {
        let what = if r.majfaults {
            "major faults"
        } else {
            "refaults"
        };
        summary.push_str(&format!(", {x:.0} {what}/s"));
    }
    if let Some(x) = r.some {
        summary.push_str(&format!(", stalled {x:.0}% of the time"));
    }
    summary.push_str(if node_thrashes {
        " (the node thrashes too)"
    } else {
        " (the node itself is not short of memory)"
    });

    let mut evidence = Vec::new();
    let (usage_file, limit_file) = match c.hierarchy {
        Hierarchy::V1 => ("memory.usage_in_bytes", "memory.limit_in_bytes"),
        Hierarchy::V2 => (
            "memory.current",
            if c.high_bytes.is_some() {
                "memory.high"
            } else {
                "memory.max"
            },
        ),
    };
    evidence.push(
        Evidence::new(
            format!("{dir}/{usage_file}"),
            format!(
                "{} ({} of {limit_file} {})",
                c.usage_bytes.map_or("?".into(), |u| u.to_string()),
                r.usage_ratio.map_or("?".into(), pct),
                limit.map_or("max".into(), |l| l.to_string())
            ),
        )
        .with_threshold(format!("at its limit from {}", pct(bars.usage))),
    );
    if let Some(hits) = r.limit_hits {
        let file = match c.hierarchy {
            Hierarchy::V1 => "memory.failcnt",
            Hierarchy::V2 => "memory.events",
        };
        evidence.push(Evidence::new(
            format!("{dir}/{file}"),
            format!(
                "{} → {} (+{} reclaims forced by the limit)",
                hits.first,
                hits.last,
                hits.delta()
            ),
        ));
    }
    evidence.push(
        Evidence::new(
            format!("{dir}/memory.stat"),
            format!(
                "{} {}",
                if r.majfaults {
                    "pgmajfault (this kernel's v1 memory.stat has no refault counter)"
                } else {
                    "workingset_refault"
                },
                match r.refaults {
                    Some(ch) => format!(
                        "{} → {} ({:.0}/s)",
                        ch.first,
                        ch.last,
                        ch.per_sec().unwrap_or(0.0)
                    ),
                    None => c
                        .stat
                        .workingset_refault
                        .or(c.stat.pgmajfault)
                        .map_or("not read".into(), |v| format!("{v} (one sample)")),
                }
            ),
        )
        .with_threshold(format!(
            "warning {}/s, critical {}/s",
            bars.refault_warn, bars.refault_crit
        )),
    );
    if let Some(p) = &c.pressure {
        evidence.push(
            Evidence::new(
                format!("{dir}/memory.pressure"),
                format!(
                    "some avg10={:.2}; full avg10={:.2}",
                    p.some.avg10,
                    p.full.map_or(0.0, |f| f.avg10)
                ),
            )
            .with_threshold(format!(
                "warning some ≥ {}, critical full ≥ {}",
                pct(bars.some),
                pct(bars.full)
            )),
        );
    }
    if !node_thrashes {
        evidence.push(Evidence::new(
            "/proc/vmstat",
            "reclaim at a cgroup's limit runs in the charging task: global pgscan/pgsteal and kswapd do not show it",
        ));
    }
    let mut subjects = vec![cgroup_subject(&c.path)];
    let member = s
        .process_list()
        .iter()
        .find(|p| p.cgroup_path_for("memory") == Some(c.path.as_str()));
    if let Some(p) = member {
        subjects.push(Subject::process(p));
    }
    let mut measures =
        vec![Measure::new("usage_bytes", c.usage_bytes.unwrap_or(0), Unit::Bytes).of_opt(limit)];
    if let Some(x) = rate {
        measures.push(Measure::count("refaults_per_sec", x).of(bars.refault_warn));
    }
    if let Some(hits) = r.limit_hits {
        measures.push(Measure::count("limit_hits", hits.delta()));
    }
    if let Some(x) = some {
        measures.push(Measure::new("psi_some_avg10", x, Unit::Ratio).of(bars.some));
    }
    if let Some(x) = full {
        measures.push(Measure::new("psi_full_avg10", x, Unit::Ratio).of(bars.full));
    }
    Some(Finding {
        check: CHECK.id.into(),
        key: key::cgroup(CHECK.id, c.hierarchy.as_str(), &c.path),
        severity,
        summary,
        cause: "The cgroup's working set is larger than its memory limit: each new charge makes the charging task \
                reclaim the cgroup's own page cache, which it then reads back from disk (refaults). The cgroup \
                slows to disk speed without being OOM-killed, because every reclaim frees a little. This reclaim \
                runs in the container's own tasks, so node-wide counters and kswapd do not show it."
            .into(),
        remedy: format!(
            "Raise the container's memory limit to cover its working set (page cache included), or shrink what it \
             reads repeatedly; look at `{dir}/memory.stat` (cache vs rss) to see which. A limit that must stay can \
             get memory.high below memory.max (v2) so the throttling is visible before the stall."
        ),
        evidence,
        subjects,
        measures,
        log: None,
        caused_by: Vec::new(),
        explains: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::common::test_support::snapshot;
    use super::*;
    use crate::model::cgroups::Cgroups;
    use crate::model::kernel::{Meminfo, PressureRecord};
    use crate::model::memory::MemoryStat;

    const CTR: &str = "/kubepods/burstable/pod5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c/3f1c9a27d0b4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e";

    fn psi(some: f32, full: f32, full60: f32) -> PressurePair {
        PressurePair {
            some: PressureRecord {
                avg10: some,
                ..PressureRecord::default()
            },
            full: Some(PressureRecord {
                avg10: full,
                avg60: full60,
                ..PressureRecord::default()
            }),
        }
    }

    fn node(at: u64, some: f32, full: f32, refaults: i64, available_mib: u64) -> Snapshot {
        let mut s = snapshot(at, 10, Vec::new());
        s.pressure.memory = Some(psi(some, full, 0.0));
        s.meminfo = Some(Meminfo {
            mem_total: Some(1000 << 20),
            mem_available: Some(available_mib << 20),
            ..Meminfo::default()
        });
        s.vmstat.insert("workingset_refault_file".into(), refaults);
        s.cgroups = Some(Cgroups {
            memory: Some(Vec::new()),
            ..Cgroups::default()
        });
        s
    }

    fn with_cgroup(mut s: Snapshot, usage: u64, failcnt: u64, refaults: u64) -> Snapshot {
        s.cgroups.as_mut().unwrap().memory = Some(vec![MemoryCgroup {
            path: CTR.into(),
            hierarchy: Hierarchy::V1,
            usage_bytes: Some(usage),
            limit_bytes: Some(64 << 20),
            failcnt: Some(failcnt),
            stat: MemoryStat {
                workingset_refault: Some(refaults),
                ..MemoryStat::default()
            },
            ..MemoryCgroup::default()
        }]);
        s
    }

    fn run(samples: &[Snapshot]) -> Outcome {
        super::run(&History::new(samples).unwrap(), &CheckSettings::default())
    }

    #[test]
    fn a_quiet_node_has_nothing() {
        let out = run(&[node(0, 0.0, 0.0, 100, 900), node(2000, 0.0, 0.0, 100, 900)]);
        assert!(out.findings.is_empty() && out.unknown.is_empty(), "{out:?}");
    }

    #[test]
    fn node_pressure_warns_and_sustained_full_is_critical() {
        let out = run(&[
            node(0, 25.0, 5.0, 100, 900),
            node(2000, 25.0, 5.0, 100, 900),
        ]);
        assert_eq!(out.findings.len(), 1);
        assert_eq!(out.findings[0].severity, Severity::Warning);
        assert_eq!(out.findings[0].key, "memory-thrashing/node");
        // Low MemAvailable with refaults warns without PSI's help.
        let out = run(&[node(0, 0.0, 0.0, 100, 50), node(2000, 0.0, 0.0, 900, 50)]);
        assert_eq!(out.findings[0].severity, Severity::Warning);
        assert_eq!(
            out.findings[0].measure("refaults_per_sec").map(|m| m.value),
            Some(400.0)
        );
        // full ≥ 60 % in samples 40 s apart: critical; one sample of it is not enough.
        let out = run(&[node(0, 90.0, 70.0, 0, 10), node(40_000, 90.0, 70.0, 0, 10)]);
        assert_eq!(out.findings[0].severity, Severity::Critical);
        let out = run(&[node(0, 90.0, 10.0, 0, 10), node(2000, 90.0, 70.0, 0, 10)]);
        assert_eq!(out.findings[0].severity, Severity::Warning);
        // avg60 already says it held for a minute.
        let mut s = node(0, 90.0, 70.0, 0, 10);
        s.pressure.memory = Some(psi(90.0, 70.0, 65.0));
        assert_eq!(run(&[s]).findings[0].severity, Severity::Critical);
    }

    #[test]
    fn a_container_at_its_limit_refaulting_is_named_not_the_node() {
        let a = with_cgroup(node(0, 0.0, 0.0, 100, 900), 63 << 20, 1000, 10_000);
        let b = with_cgroup(node(2000, 0.0, 0.0, 100, 900), 64 << 20, 3000, 30_000);
        let out = run(&[a.clone(), b.clone()]);
        assert_eq!(out.findings.len(), 1, "{out:?}");
        let f = &out.findings[0];
        assert_eq!(f.key, format!("memory-thrashing/cgroup:v1:{CTR}"));
        assert_eq!(f.severity, Severity::Critical, "10000 refaults/s");
        assert_eq!(f.subjects[0].kind, crate::finding::SubjectKind::Container);
        assert_eq!(
            f.measure("refaults_per_sec").map(|m| m.value),
            Some(10_000.0)
        );
        assert_eq!(f.measure("limit_hits").map(|m| m.value), Some(2000.0));
        assert!(f.summary.contains("not short of memory"), "{}", f.summary);
        // At its limit but nothing re-read: a cache filling its limit is normal.
        let b2 = with_cgroup(node(2000, 0.0, 0.0, 100, 900), 64 << 20, 3000, 10_000);
        assert!(run(&[a.clone(), b2]).findings.is_empty());
        // Limit lifted: not at a limit, whatever it reads.
        let mut b3 = b.clone();
        b3.cgroups.as_mut().unwrap().memory.as_mut().unwrap()[0].limit_bytes = None;
        b3.cgroups.as_mut().unwrap().memory.as_mut().unwrap()[0].failcnt = Some(1000);
        assert!(run(&[a, b3]).findings.is_empty());
        // One sample: cannot tell, says so.
        let out = run(&[b]);
        assert!(out.findings.is_empty());
        assert!(out.unknown[0].contains("two samples"), "{:?}", out.unknown);
    }

    #[test]
    fn nothing_read_is_inconclusive_not_healthy() {
        let out = run(&[Snapshot::default()]);
        assert!(out.inconclusive && out.findings.is_empty(), "{out:?}");
        // The node's figures without the cgroups: evaluated, partly.
        let mut s = node(0, 25.0, 0.0, 0, 900);
        s.cgroups = None;
        let out = run(&[s]);
        assert!(!out.inconclusive);
        assert_eq!(out.findings.len(), 1);
    }

    #[test]
    fn v2_pressure_of_a_cgroup_at_memory_high() {
        let mut s = node(0, 0.0, 0.0, 100, 900);
        s.cgroups.as_mut().unwrap().memory = Some(vec![MemoryCgroup {
            path: CTR.into(),
            hierarchy: Hierarchy::V2,
            usage_bytes: Some(500 << 20),
            high_bytes: Some(512 << 20),
            limit_bytes: Some(1 << 30),
            pressure: Some(psi(35.0, 12.0, 0.0)),
            ..MemoryCgroup::default()
        }]);
        let out = run(&[s]);
        assert_eq!(out.findings.len(), 1, "{out:?}");
        let m = out.findings[0].measure("psi_some_avg10").unwrap();
        assert!((m.value - 0.35).abs() < 1e-6);
    }
}
