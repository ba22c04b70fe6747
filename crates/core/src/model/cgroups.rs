//! Cgroup controllers: what the kernel counts (`/proc/cgroups`) against what the cgroup
//! filesystems show, pids cgroups with a limit, and memory cgroups that matter.

use super::memory::{MemoryCgroup, StatLatency};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Cgroups {
    /// `/proc/cgroups`: one entry per controller.
    pub controllers: Vec<Controller>,
    /// Cgroup directories found under each v1 controller's mount, by controller name.
    /// Absent for a controller whose mount root could not be listed (not 0: nothing was
    /// counted) or whose walk stopped at its bound.
    pub v1_directories: BTreeMap<String, u64>,
    /// Cgroup directories under the v2 (unified) mount, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v2_directories: Option<u64>,
    /// `nr_dying_descendants` of the v2 root's `cgroup.stat`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v2_dying_descendants: Option<u64>,
    /// `nr_dying_subsys_memory` of the v2 root's `cgroup.stat` (kernels with per-controller
    /// counts): dying cgroups that still hold a memory css, the exact dying-memcg count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v2_dying_memory: Option<u64>,
    /// Where the v2 hierarchy is mounted (host path), e.g. `/sys/fs/cgroup` or
    /// `/sys/fs/cgroup/unified` on a hybrid host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v2_mount: Option<String>,
    /// Where each v1 controller is mounted (host path).
    pub v1_mounts: BTreeMap<String, String>,
    /// Pids cgroups that have a limit or have refused a fork (v1 `pids` hierarchy and v2).
    pub pids: Vec<PidsCgroup>,
    /// True when a walk stopped at its bound (directories or kept entries) before seeing
    /// every cgroup.
    pub pids_truncated: bool,
    /// Memory cgroups that matter (present when the memory files were asked for):
    /// container- and pod-level ones, and any with a limit, limit hits, OOM kills or dying
    /// descendants. The root is kept too (its hierarchical statistics).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Vec<MemoryCgroup>>,
    /// The memory walk stopped at its bound or kept [`Cgroups::memory`] at its cap: some
    /// memory cgroups were not read or not kept.
    pub memory_truncated: bool,
    /// One timed read of the root memory cgroup's `memory.stat`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_stat_latency: Option<StatLatency>,
    /// Pod uids and container ids named by any cgroup directory seen in the walks (each
    /// hierarchy's pod and container cgroups exist while the pod or container runs).
    pub pod_uids: Vec<String>,
    pub container_ids: Vec<String>,
    /// No hierarchy that holds pods was walked in full (a v1 one on v1 and hybrid hosts,
    /// else v2), or the id lists reached their cap: an id missing from them may still exist.
    pub ids_truncated: bool,
}

impl Cgroups {
    /// Where the memory controller is: a v1 mount of its own, else v2 when it is listed
    /// with hierarchy 0, else nowhere (`None`: the kernel has no memory controller).
    pub fn memory_hierarchy(&self) -> Option<Hierarchy> {
        if self.v1_mounts.contains_key("memory") {
            return Some(Hierarchy::V1);
        }
        let c = self.controllers.iter().find(|c| c.name == "memory")?;
        (c.hierarchy == 0 && c.enabled && self.v2_mount.is_some()).then_some(Hierarchy::V2)
    }

    /// The host path of the memory hierarchy's mount.
    pub fn memory_mount(&self) -> Option<&str> {
        match self.memory_hierarchy()? {
            Hierarchy::V1 => self.v1_mounts.get("memory").map(String::as_str),
            Hierarchy::V2 => self.v2_mount.as_deref(),
        }
    }

    /// The memory cgroups read, empty when none.
    pub fn memory_list(&self) -> &[MemoryCgroup] {
        self.memory.as_deref().unwrap_or(&[])
    }

    pub fn memory_cgroup(&self, path: &str) -> Option<&MemoryCgroup> {
        self.memory_list().iter().find(|m| m.path == path)
    }

    /// The host directory of a cgroup of `hierarchy` (for evidence and commands).
    pub fn dir_of(&self, hierarchy: Hierarchy, controller: &str, path: &str) -> String {
        let mount = match hierarchy {
            Hierarchy::V1 => self.v1_mounts.get(controller).cloned(),
            Hierarchy::V2 => self.v2_mount.clone(),
        }
        .unwrap_or_else(|| format!("<{} {controller} mount>", hierarchy.as_str()));
        let dir = format!(
            "{}/{}",
            mount.trim_end_matches('/'),
            path.trim_start_matches('/')
        );
        dir.trim_end_matches('/').to_string()
    }
}

/// Which cgroup hierarchy a cgroup was read from.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Hierarchy {
    #[default]
    V1,
    V2,
}

impl Hierarchy {
    pub fn as_str(self) -> &'static str {
        match self {
            Hierarchy::V1 => "v1",
            Hierarchy::V2 => "v2",
        }
    }
}

/// A cgroup's pids controller: `pids.current` against `pids.max`, and `pids.events`'s `max`
/// counter (forks refused because of this cgroup's limit or an ancestor's, see
/// kernel/cgroup/pids.c `pids_can_fork`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidsCgroup {
    /// Path inside its hierarchy, as `/proc/PID/cgroup` spells it ("/kubepods/pod<uid>/<id>").
    pub path: String,
    pub hierarchy: Hierarchy,
    pub current: u64,
    /// `None` when `pids.max` reads "max".
    #[serde(default)]
    pub max: Option<u64>,
    /// The `max` line of `pids.events`.
    #[serde(default)]
    pub events_max: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Controller {
    pub name: String,
    /// v1 hierarchy id; 0 when the controller is on the v2 hierarchy or unmounted.
    pub hierarchy: u32,
    pub num_cgroups: u32,
    pub enabled: bool,
}
