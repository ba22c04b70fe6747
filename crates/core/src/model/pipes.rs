//! Pipes held by processes: owner uid (the account their buffers are charged to) and size.

use super::unavailable::Unavailable;
use serde::{Deserialize, Serialize};

/// How pipe sizes were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Sizing {
    /// `pidfd_getfd` duplicates: no side effect on the pipe.
    #[serde(rename = "pidfd")]
    Pidfd,
    /// Kernels without pidfd_getfd: `/proc/PID/fd/N` opened read-only, non-blocking.
    #[serde(rename = "proc-open")]
    ProcOpen,
    /// Recorded in a fixture tree's descriptor (sizes no file holds).
    #[serde(rename = "fixture")]
    Fixture,
    /// Not sized (see `why_unsized`).
    #[serde(rename = "none")]
    #[default]
    None,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PipeScan {
    pub sizing: Sizing,
    /// Why sizes are missing, when `sizing` is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why_unsized: Option<String>,
    /// One entry per pipe inode, by inode.
    pub pipes: Vec<Pipe>,
    /// Pipes left unsized because the deadline passed first.
    pub skipped_for_deadline: u64,
    /// Distinct pipes not kept because the scan's bound was reached.
    pub not_kept: u64,
    pub problems: Vec<Unavailable>,
    pub problems_not_kept: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pipe {
    pub inode: u64,
    /// Owner of the pipe inode (the creator's fsuid): the account its buffers are charged to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// Bytes written and not yet read (FIONREAD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffered_bytes: Option<u64>,
    /// Who has it open, by (pid, fd), both ends; at most a few dozen kept.
    #[serde(default)]
    pub holders: Vec<PipeEnd>,
    #[serde(default)]
    pub holders_not_kept: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PipeEnd {
    pub pid: i32,
    pub fd: i32,
}
