//! What a run could not see: a partial run says so prominently instead of looking healthy.
//! Pure: derived from the snapshots and the report.

use crate::checks::{History, Report};
use crate::model::pipes::Sizing;
use serde::Serialize;

/// The blind spots of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Coverage {
    /// True when nothing below applies.
    pub complete: bool,
    /// One line per blind spot ("running as uid 1000: 412 processes of other users not
    /// inspected (fds, pipes)").
    pub notes: Vec<String>,
    /// Checks that could evaluate nothing at all.
    pub inconclusive: Vec<String>,
}

pub fn of(history: &History, report: &Report) -> Coverage {
    let s = history.current();
    let mut notes = Vec::new();
    if let Some(scan) = &s.process_scan {
        if scan.fds_denied > 0 {
            let who = match s.reader {
                Some(r) if r.euid != 0 => format!("running as uid {}: ", r.euid),
                Some(_) => "without CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE: ".to_string(),
                None => String::new(),
            };
            // `fd/` is the owner's alone (0500); `limits` and `status` are world-readable
            // (fs/proc/base.c), so what is missed is each process's fds and the pipes in them.
            notes.push(format!(
                "{who}{} processes of other users not inspected (their open fds and pipes)",
                scan.fds_denied
            ));
        }
        if scan.skipped_for_deadline > 0 {
            notes.push(format!(
                "{} of {} processes not read before the deadline",
                scan.skipped_for_deadline, scan.listed
            ));
        }
        if scan.skipped_for_cap > 0 {
            notes.push(format!(
                "{} of {} processes not read: over the scan's bound",
                scan.skipped_for_cap, scan.listed
            ));
        }
    }
    if let Some(p) = &s.pipes
        && p.sizing == Sizing::None
        && !p.pipes.is_empty()
    {
        notes.push(format!(
            "pipe sizes not read: {}",
            p.why_unsized.as_deref().unwrap_or("unknown reason")
        ));
    }
    if let Some(k) = &s.kernel_log
        && let Some(e) = &k.error
    {
        notes.push(format!("kernel log not read: {e}"));
    }
    if let Some(c) = &s.cgroups
        && c.pids_truncated
    {
        notes.push("cgroup walk stopped at its bound: some cgroups not read".into());
    }
    if let Some(d) = &s.deleted_open
        && (d.truncated || d.left_out > 0)
    {
        notes.push(format!(
            "open deleted files: the fd walk stopped at its bounds or the deadline ({} processes not walked)",
            d.left_out
        ));
    }
    if let Some(c) = &s.sysctl_conf
        && c.truncated
    {
        notes.push(
            "sysctl files: more than the reader's bound; some assignments not compared".into(),
        );
    }
    if let Some(c) = &s.coredump {
        for st in c.stores.iter().filter(|st| st.truncated) {
            notes.push(format!(
                "dump store {}: more files than the listing's bound",
                st.path
            ));
        }
    }
    for u in s
        .unavailable
        .iter()
        .filter(|u| u.kind == crate::model::unavailable::Kind::Truncated)
    {
        notes.push(format!("{u}"));
    }
    let inconclusive: Vec<String> = report.inconclusive.iter().map(|s| s.to_string()).collect();
    Coverage {
        complete: notes.is_empty() && inconclusive.is_empty(),
        notes,
        inconclusive,
    }
}
