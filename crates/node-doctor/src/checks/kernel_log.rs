//! `kernel-log`: the default log rules over the kernel's ring buffer as read into the
//! snapshot — OOM kills with their container, hung tasks, I/O and filesystem errors, forks
//! refused by a pids cgroup, file-max reached, skipped core dumps, conntrack full.
//!
//! The ring holds messages since boot (as far as it has not wrapped). An event older than
//! an hour is reported as info (it happened; it may be over); a condition (read-only
//! filesystem, kernel deadlock) keeps its severity, because nothing in the ring clears it.

use super::{CheckDef, History, Outcome};
use crate::finding::Severity;
use crate::logs::pack::default_rules;
use crate::logs::rules::{Matcher, RuleSet};
use std::sync::OnceLock;

pub const CHECK: CheckDef = CheckDef {
    id: "kernel-log",
    title: "kernel log lines that name a cause: OOM kills, hung tasks, I/O errors, refused forks, file-max",
    doc: include_str!("../../../../docs/checks/kernel-log.md"),
    run,
};

/// Temporary events older than this (before the snapshot) are reported as info.
pub const RECENT_MS: u64 = 60 * 60 * 1000;

fn pack() -> Result<&'static RuleSet, String> {
    static PACK: OnceLock<Result<RuleSet, String>> = OnceLock::new();
    PACK.get_or_init(|| RuleSet::compile(default_rules()).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(Clone::clone)
}

fn run(h: &History) -> Outcome {
    let s = h.current();
    let Some(log) = &s.kernel_log else {
        return Outcome::unknown("the kernel log was not read in this snapshot");
    };
    let set = match pack() {
        Ok(p) => p,
        Err(e) => return Outcome::unknown(format!("default rules: {e}")),
    };
    let mut m = Matcher::new(set);
    for r in &log.records {
        m.feed(r);
    }
    let mut findings = m.findings(CHECK.id, "kmsg");
    for f in &mut findings {
        let Some(lm) = &f.log else { continue };
        let old = lm
            .last_ms
            .is_some_and(|t| s.collected_at_ms.saturating_sub(t) > RECENT_MS);
        if lm.kind == "temporary" && old && f.severity > Severity::Info {
            f.severity = Severity::Info;
            f.summary.push_str(" (last one over an hour ago)");
        }
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let mut outcome = Outcome::found(findings);
    if let Some(e) = &log.error {
        outcome.unknown.push(e.clone());
    }
    if log.lost > 0 {
        outcome.unknown.push(format!(
            "{} kernel log records were overwritten before they could be read",
            log.lost
        ));
    }
    outcome
}
