//! Memory cgroups (v1 `memory` hierarchy, or v2 with the memory controller): usage against
//! limits, the counters that move when a cgroup reclaims at its own limit, OOM kills, and
//! dying descendants. Plain data; what the files mean is documented per field, with the
//! kernel file it comes from (mm/memcontrol.c, mm/memcontrol-v1.c; cgroup-v2.rst).

use super::cgroups::Hierarchy;
use super::kernel::PressurePair;
use serde::{Deserialize, Serialize};

/// One memory cgroup as read in one sample. Fields a file did not give are `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryCgroup {
    /// Path inside its hierarchy, as `/proc/PID/cgroup` spells it.
    pub path: String,
    pub hierarchy: Hierarchy,
    /// v1 `memory.usage_in_bytes`, v2 `memory.current`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_bytes: Option<u64>,
    /// v1 `memory.limit_in_bytes`, v2 `memory.max`; `None` when unlimited ("max", or v1's
    /// PAGE_COUNTER_MAX pages printed as 9223372036854771712).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_bytes: Option<u64>,
    /// v2 `memory.high` (the throttling limit); `None` when "max".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high_bytes: Option<u64>,
    /// v1 `memory.failcnt`: charges that hit the limit (each one made the charging task
    /// reclaim from this cgroup: mm/memcontrol.c `try_charge_memcg`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failcnt: Option<u64>,
    /// v1 `memory.oom_control`. Not hierarchical: a kill is counted in the victim's own
    /// cgroup only, not in the ancestor whose limit was hit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_control: Option<OomControl>,
    /// v2 `memory.events` (hierarchical: a descendant's events count here too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<MemoryEvents>,
    /// v2 `memory.events.local` (this cgroup's own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events_local: Option<MemoryEvents>,
    /// v2 `memory.pressure` (PSI of this cgroup's tasks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pressure: Option<PressurePair>,
    /// `memory.stat` fields (hierarchical `total_*` keys on v1).
    #[serde(skip_serializing_if = "MemoryStat::is_empty")]
    pub stat: MemoryStat,
    /// v2 `cgroup.stat` `nr_dying_descendants`: removed descendants still pinned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dying_descendants: Option<u64>,
}

/// v1 `memory.oom_control`: `oom_kill_disable 0`, `under_oom 0`, `oom_kill N`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OomControl {
    pub oom_kill_disable: bool,
    pub under_oom: bool,
    /// Kills of tasks of this cgroup (4.13+; absent before, then 0).
    pub oom_kill: u64,
}

/// v2 `memory.events` / `memory.events.local` (cgroup-v2.rst): how often each boundary was
/// hit. `high`: reclaim forced by memory.high (throttling); `max`: allocations that hit
/// memory.max; `oom`: the OOM killer ran for this cgroup; `oom_kill`: processes killed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryEvents {
    pub low: u64,
    pub high: u64,
    pub max: u64,
    pub oom: u64,
    pub oom_kill: u64,
    pub oom_group_kill: u64,
}

/// The `memory.stat` fields checks use. On v1 the hierarchical `total_*` keys. v1 has
/// refault counters only since 5.12 (`workingset_refault_anon/_file`); v2 had one
/// (`workingset_refault`) until 5.9 split it by type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryStat {
    /// Page cache (v1 `total_cache`, v2 `file`), bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_bytes: Option<u64>,
    /// Anonymous memory (v1 `total_rss`, v2 `anon`), bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anon_bytes: Option<u64>,
    /// Evicted pages read back while still in the workingset window (mm/workingset.c),
    /// file and anon summed, or the single pre-5.9 counter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workingset_refault: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pgmajfault: Option<u64>,
    /// v2 only (v1 `memory.stat` has no scan counters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pgscan: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pgsteal: Option<u64>,
}

impl MemoryStat {
    pub fn is_empty(&self) -> bool {
        *self == MemoryStat::default()
    }
}

impl MemoryCgroup {
    /// The boundary reclaim works against: `memory.high` when set below `memory.max`.
    pub fn effective_limit(&self) -> Option<u64> {
        match (self.high_bytes, self.limit_bytes) {
            (Some(h), Some(m)) => Some(h.min(m)),
            (h, m) => h.or(m),
        }
    }

    /// OOM kills of this cgroup's own tasks: v1 `oom_control` (own), v2 `events.local`.
    pub fn own_oom_kills(&self) -> Option<u64> {
        self.oom_control
            .map(|o| o.oom_kill)
            .or(self.events_local.map(|e| e.oom_kill))
    }

    /// Times reclaim ran because this cgroup was at its limit: v1 failcnt, v2 events
    /// `max` + `high` (own, when the local file exists).
    pub fn limit_hits(&self) -> Option<u64> {
        self.failcnt.or_else(|| {
            self.events_local
                .or(self.events)
                .map(|e| e.max.saturating_add(e.high))
        })
    }
}

/// How long one read of the root memory cgroup's `memory.stat` took. Old kernels summed
/// the statistics over every memcg, dying ones included, at each read (O(n):
/// `memcg_stat_show` → `mem_cgroup_iter`): the 1.2 s read of incident 2b. On 6.x the
/// statistics come from rstat and only the first read after churn pays a flush.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatLatency {
    /// The host path read.
    pub path: String,
    pub ms: f64,
    /// Still not answered at the timeout (`ms` is then the timeout).
    pub timed_out: bool,
}
