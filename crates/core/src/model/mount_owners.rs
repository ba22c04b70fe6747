//! What owns the mounts of the mount table: the kubelet's pod directories and, when
//! systemd is PID 1, the units systemd keeps for them (incident 2c). Plain data.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A kubelet `pods/` directory (`<root-dir>/pods`, `/var/lib/kubelet/pods` by default) and
/// the pod uids it holds, listed because the mount table has pod volume mounts below it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PodsDir {
    /// Host path of the `pods` directory.
    pub path: String,
    /// Pod uid directories found in it, sorted (`None`: it could not be listed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uids: Option<Vec<String>>,
    /// More entries than the listing cap.
    pub truncated: bool,
}

/// What systemd as PID 1 shows without D-Bus. systemd makes one `.mount` unit per mount
/// point of its mount namespace (src/core/mount.c `mount_load_proc_self_mountinfo`), so
/// PID 1's mount table is its mount units; transient units (`systemd-run`, e.g. the kubelet's
/// `run-r<id>.scope` "Kubernetes transient mount" scopes) are files in
/// `/run/systemd/transient/`, removed when systemd collects the unit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Systemd {
    /// `/run/systemd/system/` exists (`sd_booted()`): systemd is the init system.
    pub booted: bool,
    /// PID 1's `comm`, as read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid1_comm: Option<String>,
    /// Files in `/run/systemd/transient/` by unit type ("scope", "mount", "service").
    pub transient_units: BTreeMap<String, u64>,
    /// Of those, `run-r<32 hex>.scope`: the names `systemd-run --scope` gives, as the
    /// kubelet's mounts through systemd-run (kubernetes/mount-utils) get.
    pub transient_run_scopes: u64,
    /// The directory held more entries than the listing cap.
    pub transient_truncated: bool,
}

impl Systemd {
    pub fn is_pid1(&self) -> bool {
        self.booted && self.pid1_comm.as_deref().is_none_or(|c| c == "systemd")
    }
}
