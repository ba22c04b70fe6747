//! The sysctl configuration files of the host (`/etc/sysctl.conf`, `sysctl.d` in `/etc`,
//! `/run`, `/usr/local/lib`, `/usr/lib`, `/lib`) as read: what each assigns. The order
//! systemd-sysctl and `sysctl --system` apply them in, and so the value each file makes
//! effective, is [`crate::checks::sysctl_drift`]'s business.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SysctlConf {
    /// Every file found, in no particular order (host paths: "/etc/sysctl.d/99-k8s.conf").
    pub files: Vec<SysctlFile>,
    /// Assignments beyond the reader's bound were not kept.
    pub truncated: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SysctlFile {
    pub path: String,
    pub entries: Vec<SysctlEntry>,
}

/// One `name = value` line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SysctlEntry {
    /// Dotted, as normalised from `a/b/c` forms; may hold a glob (`net.ipv4.conf.*.rp_filter`).
    pub name: String,
    pub value: String,
    /// 1-based line number.
    pub line: u32,
    /// A leading `-`: failure to set it is ignored (sysctl.d(5)).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ignore_failure: bool,
}
