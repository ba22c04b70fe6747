//! Cgroup controllers: what the kernel counts (`/proc/cgroups`) against what the cgroup
//! filesystems show, and pids cgroups with a limit.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Cgroups {
    /// `/proc/cgroups`: one entry per controller.
    pub controllers: Vec<Controller>,
    /// Cgroup directories found under each v1 controller's mount, by controller name.
    pub v1_directories: BTreeMap<String, u64>,
    /// Cgroup directories under the v2 (unified) mount, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v2_directories: Option<u64>,
    /// `nr_dying_descendants` of the v2 root's `cgroup.stat`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v2_dying_descendants: Option<u64>,
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
}

/// Which cgroup hierarchy a cgroup was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hierarchy {
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
