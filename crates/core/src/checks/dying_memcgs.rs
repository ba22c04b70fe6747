//! `dying-memcgs`: memory cgroups removed but still pinned by charged memory (incident 2b).
//!
//! `rmdir` of a memory cgroup only takes it offline (mm/memcontrol.c
//! `mem_cgroup_css_offline`); the structure lives on, "dying", until the last page charged
//! to it is freed — page cache and tmpfs pages nobody re-reads, swap records, and before
//! 5.9 slab objects. `/proc/cgroups` keeps counting it (`num_cgroups`); the cgroup
//! filesystem no longer shows it; v2 counts it in `cgroup.stat` `nr_dying_descendants`.
//! Each costs kernel memory (percpu statistics, ~16 KiB measured on 6.18), old kernels
//! summed `memory.stat` over all of them (the seed's 1.2 s read, a third of the kubelet's
//! CPU in cAdvisor), and kernels that kept the 16-bit memcg id while dying refused new
//! cgroups at 65535 (`mkdir: No space left on device`).

use super::common::{cgroup_name, cgroup_subject, change, kernel_version, signed_delta};
use super::{CheckDef, History, Needs, Outcome};
use crate::config::{CheckSettings, SettingDef};
use crate::finding::{Evidence, Finding, Measure, Severity, Subject, SubjectKind, Unit, key};
use crate::model::cgroups::Hierarchy;
use crate::model::snapshot::{Missing, Snapshot};

pub const CHECK: CheckDef = CheckDef {
    id: "dying-memcgs",
    title: "removed memory cgroups still pinned by page cache (dying memcgs): count, growth, cost",
    doc: include_str!("dying_memcgs.md"),
    needs: Needs {
        memcg: true,
        history: true,
        ..Needs::NONE
    },
    settings: &[WARN, CRIT, GROWTH_MIN, GROWTH_RATE, STAT_LATENCY],
    condition: Some(super::ConditionDef {
        type_: "DyingMemoryCgroups",
        true_reason: "DyingMemcgsAccumulate",
        false_reason: "DyingMemcgsFew",
    }),
    run,
};

pub const WARN: SettingDef = SettingDef::count(
    "warn",
    1000,
    "dying memory cgroups: warning from this many (the peers' signal: CCE NPD checkcgroup flags num_cgroups ≥ 1000)",
);
pub const CRIT: SettingDef = SettingDef::count(
    "crit",
    30_000,
    "dying memory cgroups: critical from this many (~0.5 GB of kernel memory; half of old kernels' 65535 memcg ids)",
);
pub const GROWTH_MIN: SettingDef = SettingDef::count(
    "growth_min",
    100,
    "growth that counts: at least this many more dying cgroups than in the earliest sample",
);
pub const GROWTH_RATE: SettingDef = SettingDef::count(
    "growth_rate",
    1000,
    "growth that counts: at least this many more per hour (the warning level reached within an hour)",
);
pub const STAT_LATENCY: SettingDef = SettingDef::duration(
    "stat_latency",
    200,
    "a read of the root memory.stat this slow, with the count at warning, makes it critical (the seed's read took 1.2 s)",
);

/// How many memory cgroups are dying in one sample, and how that was counted.
#[derive(Debug, Clone, PartialEq)]
struct Dying {
    count: u64,
    source: String,
    observed: String,
}

fn dying(s: &Snapshot) -> Result<Dying, Missing> {
    let cg = s
        .cgroups
        .as_ref()
        .ok_or_else(|| s.not_collected("cgroups"))?;
    let hierarchy = cg
        .memory_hierarchy()
        .ok_or("no memory controller: /proc/cgroups does not list it, or it is not mounted")?;
    let num = cg
        .controllers
        .iter()
        .find(|c| c.name == "memory")
        .map(|c| u64::from(c.num_cgroups));
    let mount = cg.memory_mount().unwrap_or("").to_string();
    let by_difference = |dirs: Option<u64>, what: &str| -> Result<Dying, Missing> {
        let num = num.ok_or_else(|| s.why_missing("proc/cgroups"))?;
        let dirs = dirs.ok_or_else(|| {
            format!(
                "memory cgroup directories not counted: {}",
                s.why_missing(&mount)
            )
        })?;
        Ok(Dying {
            count: num.saturating_sub(dirs),
            source: "/proc/cgroups".into(),
            observed: format!(
                "memory num_cgroups {num}, while {dirs} {what} directories exist under {mount}"
            ),
        })
    };
    match hierarchy {
        Hierarchy::V1 => by_difference(cg.v1_directories.get("memory").copied(), "memory cgroup"),
        Hierarchy::V2 => {
            let stat = format!("{}/cgroup.stat", mount.trim_end_matches('/'));
            if let Some(n) = cg.v2_dying_memory {
                Ok(Dying {
                    count: n,
                    source: stat,
                    observed: format!("nr_dying_subsys_memory {n}"),
                })
            } else if let Some(n) = cg.v2_dying_descendants {
                Ok(Dying {
                    count: n,
                    source: stat,
                    observed: format!("nr_dying_descendants {n}"),
                })
            } else {
                by_difference(cg.v2_directories, "cgroup")
            }
        }
    }
}

fn run(h: &History, cfg: &CheckSettings) -> Outcome {
    let s = h.current();
    let now = match dying(s) {
        Ok(d) => d,
        Err(why) => return Outcome::unknown(why),
    };
    let (warn, crit) = (cfg.count(&WARN), cfg.count(&CRIT));
    let (growth_min, growth_rate) = (cfg.count(&GROWTH_MIN), cfg.count(&GROWTH_RATE));
    let latency_bar = cfg.duration_ms(&STAT_LATENCY) as f64;
    let growth = change(h, |x| dying(x).ok().map(|d| d.count));
    let per_hour = growth.and_then(|g| g.per_sec()).map(|r| r * 3600.0);
    let growing = growth.is_some_and(|g| g.delta() >= growth_min)
        && per_hour.is_some_and(|r| r >= growth_rate as f64);
    let latency = s
        .cgroups
        .as_ref()
        .and_then(|c| c.memory_stat_latency.as_ref());
    let slow = latency.is_some_and(|l| l.timed_out || l.ms >= latency_bar);

    let by_count = if now.count >= crit {
        Some(Severity::Critical)
    } else if now.count >= warn {
        Some(if slow {
            Severity::Critical
        } else {
            Severity::Warning
        })
    } else {
        None
    };
    let severity = match (by_count, growing) {
        (Some(s), _) => s,
        (None, true) => Severity::Warning,
        (None, false) => return Outcome::found(Vec::new()),
    };

    let release = s.host.kernel_release.as_deref().unwrap_or("");
    let version = kernel_version(release);
    let mut summary = format!("{} dying memory cgroups", now.count);
    if let Some(g) = growth {
        summary.push_str(&format!(
            " ({} since the earliest sample{})",
            signed_delta(g.first, g.last),
            per_hour.map_or(String::new(), |r| format!(", {r:.0}/h"))
        ));
    }
    summary.push_str(": removed cgroups still pinned by charged memory");

    let mut evidence = vec![
        Evidence::new(now.source.clone(), now.observed.clone()).with_threshold(format!(
            "warning ≥ {warn}, critical ≥ {crit}; growing: ≥ {growth_min} more and ≥ {growth_rate}/h"
        )),
    ];
    if let Some(g) = growth {
        evidence.push(Evidence::new(
            now.source.clone(),
            format!("{} dying in the earliest sample, {} now", g.first, g.last),
        ));
    }
    let mem = |x: &Snapshot| x.meminfo.clone().unwrap_or_default();
    let (m_now, m_first) = (mem(s), h.earliest().map(mem));
    let kib = |b: Option<u64>| b.map_or("?".into(), |b| format!("{} kB", b / 1024));
    let delta = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => format!(" ({} kB)", signed_delta(b / 1024, a / 1024)),
        _ => String::new(),
    };
    evidence.push(Evidence::new(
        "/proc/meminfo",
        format!(
            "Percpu {}{}, SUnreclaim {}{} (each dying memcg keeps its percpu statistics and slab)",
            kib(m_now.percpu),
            delta(m_now.percpu, m_first.as_ref().and_then(|m| m.percpu)),
            kib(m_now.s_unreclaim),
            delta(
                m_now.s_unreclaim,
                m_first.as_ref().and_then(|m| m.s_unreclaim)
            ),
        ),
    ));
    if let Some(l) = latency {
        evidence.push(
            Evidence::new(
                l.path.clone(),
                if l.timed_out {
                    format!("one read did not finish in {:.0} ms", l.ms)
                } else {
                    format!("one read took {:.2} ms", l.ms)
                },
            )
            .with_threshold(format!(
                "≥ {latency_bar:.0} ms: old kernels sum memory.stat over every dying memcg (cAdvisor reads it per container)"
            )),
        );
    }
    // v2: which parents accumulate them (a CronJob's QoS slice, a runtime's scope).
    let mut parents: Vec<(&str, u64)> = s
        .cgroups
        .iter()
        .flat_map(|c| c.memory_list())
        .filter(|m| m.path != "/")
        .filter_map(|m| Some((m.path.as_str(), m.dying_descendants.filter(|n| *n > 0)?)))
        .collect();
    // nr_dying_descendants is hierarchical: the parent that accumulates them is the deepest
    // one holding nearly all (90 %) of the largest count, not the largest (an ancestor).
    let most = parents.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let depth = |p: &str| p.matches('/').count();
    parents.sort_by_key(|(p, n)| {
        std::cmp::Reverse((n.saturating_mul(10) >= most.saturating_mul(9), depth(p), *n))
    });
    let mount = s
        .cgroups
        .as_ref()
        .and_then(|c| c.memory_mount())
        .unwrap_or("")
        .trim_end_matches('/')
        .to_string();
    for (path, n) in parents.iter().take(3) {
        evidence.push(Evidence::new(
            format!("{mount}{path}/cgroup.stat"),
            format!("nr_dying_descendants {n} under {}", cgroup_name(path)),
        ));
    }
    evidence.push(Evidence::new(
        "/proc/sys/kernel/osrelease",
        if release.is_empty() {
            "?".to_string()
        } else {
            release.to_string()
        },
    ));

    let mut subjects = vec![Subject::new(SubjectKind::Node)];
    if let Some((path, _)) = parents.first() {
        subjects.push(cgroup_subject(path));
    }
    let mut measures = vec![Measure::count("dying_memcgs", now.count).of(warn)];
    if let Some(g) = growth {
        measures.push(Measure::count("dying_memcgs_earliest", g.first));
        measures.push(Measure::count("dying_growth", g.delta()).of(growth_min));
    }
    if let Some(r) = per_hour {
        measures.push(Measure::count("dying_growth_per_hour", r).of(growth_rate));
    }
    if let Some(l) = latency {
        measures.push(Measure::new(
            "memory_stat_read_seconds",
            l.ms / 1000.0,
            Unit::Seconds,
        ));
    }
    if let Some(p) = m_now.percpu {
        measures.push(Measure::new("percpu_bytes", p, Unit::Bytes));
    }

    let cause = match version {
        Some(v) if v < (4, 16) => format!(
            "Kernel {release} predates the reclaim of dying memory cgroups (4.16): a removed cgroup stays until memory pressure happens to free the last page charged to it, and kernels that keep the memcg id while dying refuse new cgroups at 65535 (`mkdir: No space left on device`: new pods fail); with kmem accounting (CentOS 7's 3.10) every slab object pins its cgroup too."
        ),
        Some(v) if v < (5, 9) => format!(
            "Kernel {release} charges slab objects (dentries, inodes) to the cgroup that allocated them and does not move them to the parent when the cgroup goes (the slab controller that does came in 5.9), so every short-lived cgroup that touched files stays dying; page cache and tmpfs left by short-lived pods pin them too."
        ),
        _ => "What pins them is memory charged to short-lived cgroups that nobody frees: page cache and tmpfs pages of pods that ran briefly (a CronJob, a cgroup per job run), left until reclaim gets to them. Each costs kernel memory (its percpu statistics), and the count grows with pod churn."
            .to_string(),
    };
    let remedy = format!(
        "Find the churn: the parent cgroups named here, `ls -d /sys/fs/cgroup/*/kubepods*/*/pod* | wc -l` over time, CronJobs that start a pod a minute. Fix it at the source: fewer short-lived pods (a long-running worker instead of a CronJob per minute), jobs that delete their scratch files and tmpfs before exiting.{} Stopgap, with a cost: `echo 1 > /proc/sys/vm/drop_caches` frees the page cache that pins them (node-wide, everything is read back from disk afterwards; `echo 3` also drops slab and hung the seed's machine on an old kernel).",
        match version {
            Some(v) if v < (4, 16) =>
                " Upgrade the kernel (4.16+; 5.9+ for slab), or boot with `cgroup.memory=nokmem` on kernels with kmem accounting.",
            Some(v) if v < (5, 9) =>
                " Upgrade to a 5.9+ kernel, whose slab controller moves slab to the parent.",
            _ => "",
        }
    );
    Outcome::found(vec![Finding {
        check: CHECK.id.into(),
        key: key::node(CHECK.id),
        severity,
        summary,
        cause,
        remedy,
        evidence,
        subjects,
        measures,
        log: None,
        caused_by: Vec::new(),
        explains: Vec::new(),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cgroups::{Cgroups, Controller};
    use crate::model::memory::{MemoryCgroup, StatLatency};

    fn v1(at: u64, num: u32, dirs: u64) -> Snapshot {
        let mut c = Cgroups {
            controllers: vec![Controller {
                name: "memory".into(),
                hierarchy: 4,
                num_cgroups: num,
                enabled: true,
            }],
            memory: Some(Vec::new()),
            ..Cgroups::default()
        };
        c.v1_mounts
            .insert("memory".into(), "/sys/fs/cgroup/memory".into());
        c.v1_directories.insert("memory".into(), dirs);
        let mut s = Snapshot {
            collected_at_ms: at,
            cgroups: Some(c),
            ..Snapshot::default()
        };
        s.host.kernel_release = Some("6.18.44".into());
        s
    }

    fn run(samples: &[Snapshot]) -> Outcome {
        super::run(&History::new(samples).unwrap(), &CheckSettings::default())
    }

    #[test]
    fn v1_count_is_num_cgroups_minus_directories() {
        let out = run(&[v1(0, 40, 10)]);
        assert!(out.findings.is_empty() && out.unknown.is_empty(), "{out:?}");
        let out = run(&[v1(0, 5010, 10)]);
        let f = &out.findings[0];
        assert_eq!(
            (f.severity, f.key.as_str()),
            (Severity::Warning, "dying-memcgs/node")
        );
        assert_eq!(f.measure("dying_memcgs").map(|m| m.value), Some(5000.0));
        let out = run(&[v1(0, 60_010, 10)]);
        assert_eq!(out.findings[0].severity, Severity::Critical);
    }

    #[test]
    fn growth_counts_only_when_fast_and_large() {
        // +500 in 5 s: growing, whatever the absolute count.
        let out = run(&[v1(0, 110, 10), v1(5000, 610, 10)]);
        let f = &out.findings[0];
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.measure("dying_growth").map(|m| m.value), Some(500.0));
        assert_eq!(
            f.measure("dying_memcgs_earliest").map(|m| m.value),
            Some(100.0)
        );
        // +3 in 5 s (the machine's own churn): not growth.
        assert!(
            run(&[v1(0, 110, 10), v1(5000, 113, 10)])
                .findings
                .is_empty()
        );
        // +150 over a day: not fast enough.
        assert!(
            run(&[v1(0, 110, 10), v1(86_400_000, 260, 10)])
                .findings
                .is_empty()
        );
    }

    #[test]
    fn a_slow_memory_stat_read_makes_a_warning_critical_and_old_kernels_say_why() {
        let mut s = v1(0, 5010, 10);
        s.host.kernel_release = Some("4.14.0-xyz".into());
        s.cgroups.as_mut().unwrap().memory_stat_latency = Some(StatLatency {
            path: "/sys/fs/cgroup/memory/memory.stat".into(),
            ms: 1200.0,
            timed_out: false,
        });
        let out = run(&[s]);
        let f = &out.findings[0];
        assert_eq!(f.severity, Severity::Critical);
        assert!(f.cause.contains("4.16"), "{}", f.cause);
        assert_eq!(
            f.measure("memory_stat_read_seconds").map(|m| m.value),
            Some(1.2)
        );
    }

    #[test]
    fn v2_prefers_the_exact_count_and_names_the_parent() {
        let pod = "/kubepods.slice/kubepods-burstable.slice";
        let s = Snapshot {
            cgroups: Some(Cgroups {
                controllers: vec![Controller {
                    name: "memory".into(),
                    hierarchy: 0,
                    num_cgroups: 9000,
                    enabled: true,
                }],
                v2_mount: Some("/sys/fs/cgroup".into()),
                v2_directories: Some(80),
                v2_dying_descendants: Some(2450),
                v2_dying_memory: Some(2430),
                memory: Some(vec![
                    MemoryCgroup {
                        path: "/kubepods.slice".into(),
                        hierarchy: Hierarchy::V2,
                        dying_descendants: Some(2412),
                        ..MemoryCgroup::default()
                    },
                    MemoryCgroup {
                        path: pod.into(),
                        hierarchy: Hierarchy::V2,
                        dying_descendants: Some(2400),
                        ..MemoryCgroup::default()
                    },
                ]),
                ..Cgroups::default()
            }),
            ..Snapshot::default()
        };
        let out = run(&[s]);
        let f = &out.findings[0];
        assert_eq!(f.measure("dying_memcgs").map(|m| m.value), Some(2430.0));
        assert_eq!(f.subjects[1].path.as_deref(), Some(pod));
    }

    #[test]
    fn an_uncounted_hierarchy_is_unknown_not_healthy() {
        let mut s = v1(0, 5010, 10);
        s.cgroups.as_mut().unwrap().v1_directories.clear();
        let out = run(&[s]);
        assert!(out.inconclusive);
        assert!(out.unknown[0].contains("not counted"), "{:?}", out.unknown);
        let out = run(&[Snapshot::default()]);
        assert!(out.inconclusive);
    }
}
