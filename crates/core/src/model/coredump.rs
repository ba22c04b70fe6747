//! The host's core-dump machinery as read from its files (incident 3): systemd's
//! `coredump.conf` and drop-ins, the program a piped `kernel.core_pattern` names, and the dump
//! stores with what they hold. The pattern itself is a sysctl (`Snapshot::sysctls`); what it
//! means is [`crate::knowledge::coredump`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CoredumpHost {
    /// `coredump.conf` and `coredump.conf.d/*.conf` found in systemd's directories, each with
    /// its `[Coredump]` settings (host paths: "/etc/systemd/coredump.conf").
    pub conf_files: Vec<ConfFile>,
    /// The program of a piped `core_pattern`, looked up under the host root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handler: Option<HandlerFile>,
    /// The dump stores that exist (systemd-coredump's, apport's, ABRT's directories).
    pub stores: Vec<DumpStore>,
}

/// One systemd configuration file and the `[Coredump]` settings it makes (last one of a key
/// in the file wins, as systemd reads it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfFile {
    pub path: String,
    pub settings: BTreeMap<String, String>,
}

/// The handler program of a piped `core_pattern` as found on the host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HandlerFile {
    /// As the pattern names it ("/lib/systemd/systemd-coredump").
    pub path: String,
    /// A file is there (a missing handler makes every dump fail: `... pipe failed`).
    pub exists: bool,
}

/// A directory cores are stored in, and what it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DumpStore {
    /// Host path ("/var/lib/systemd/coredump").
    pub path: String,
    /// Regular files listed, and their bytes on disk (allocated blocks, so sparse cores count
    /// what they take).
    pub files: u64,
    pub bytes: u64,
    /// Hidden temporaries (`.#core*`): cores being written, or left behind by a crash of
    /// the handler.
    pub temporaries: u64,
    /// The files, newest first (at most [`MAX_DUMP_FILES_KEPT`]).
    pub entries: Vec<DumpFile>,
    /// More entries than the listing's bound: counts are of those listed.
    pub truncated: bool,
}

/// Most files of a store kept by name.
pub const MAX_DUMP_FILES_KEPT: usize = 50;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DumpFile {
    pub name: String,
    /// Bytes on disk.
    pub bytes: u64,
    /// Apparent size.
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtime_ms: Option<u64>,
}
