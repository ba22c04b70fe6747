//! `kernel-log`: the default log rules over the kernel's ring buffer as read into the
//! snapshot — OOM kills with their container, hung tasks, I/O and filesystem errors, forks
//! refused by a pids cgroup, file-max reached, skipped core dumps, conntrack full.
//!
//! The ring holds messages since boot (as far as it has not wrapped). An event older than
//! an hour is reported as info (it happened; it may be over); a condition (read-only
//! filesystem, kernel deadlock) keeps its severity, because nothing in the ring clears it.

use super::{CheckDef, History, Needs, Outcome};
use crate::config::{CheckSettings, SettingDef};
use crate::finding::{RuleKind, Severity};
use crate::rules::pack::default_rules;
use crate::rules::{Matcher, RuleSet};
use std::sync::{Arc, OnceLock};

pub const CHECK: CheckDef = CheckDef {
    id: "kernel-log",
    title: "kernel log lines that name a cause: OOM kills, hung tasks, I/O errors, refused forks, file-max",
    doc: include_str!("kernel_log.md"),
    needs: Needs {
        kernel_log: true,
        ..Needs::NONE
    },
    settings: &[RECENT],
    // Log findings become Events; permanent rules set their own (NPD) conditions.
    condition: None,
    run,
};

/// Temporary events older than this (before the snapshot) are reported as info.
pub const RECENT: SettingDef = SettingDef::duration(
    "recent",
    60 * 60 * 1000,
    "events (not conditions) logged longer ago than this are reported as info",
);

/// The default pack, compiled once.
pub fn pack() -> Result<&'static Arc<RuleSet>, String> {
    static PACK: OnceLock<Result<Arc<RuleSet>, String>> = OnceLock::new();
    PACK.get_or_init(|| {
        RuleSet::compile(default_rules())
            .map(Arc::new)
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(Clone::clone)
}

fn run(h: &History, cfg: &CheckSettings) -> Outcome {
    let s = h.current();
    let recent_ms = cfg.duration_ms(&RECENT);
    let Some(log) = &s.kernel_log else {
        return Outcome::unknown(s.not_collected("kernel log records"));
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
            .is_some_and(|t| s.collected_at_ms.saturating_sub(t) > recent_ms);
        if lm.kind == RuleKind::Temporary && old && f.severity > Severity::Info {
            f.severity = Severity::Info;
            f.summary.push_str(" (last one over an hour ago)");
        }
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let mut outcome = Outcome::found(findings);
    if let Some(e) = &log.error {
        outcome.unknown.push(e.clone());
        // An error before any record: the ring was not read at all.
        outcome.inconclusive = log.records.is_empty();
    }
    if log.lost > 0 {
        outcome.unknown.push(format!(
            "{} kernel log records were overwritten before they could be read",
            log.lost
        ));
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::super::common::test_support::snapshot;
    use super::*;
    use crate::model::log::{KernelLog, LogRecord};

    const RECENT_MS: u64 = 60 * 60 * 1000;

    fn run(h: &History) -> Outcome {
        super::run(h, &CheckSettings::default())
    }

    fn at(ms: u64, text: &str) -> LogRecord {
        let mut r = LogRecord::text(text);
        r.time_ms = Some(ms);
        r
    }

    #[test]
    fn old_events_are_info_conditions_keep_their_severity() {
        let now = 10 * RECENT_MS;
        let mut s = snapshot(now, 10, Vec::new());
        s.kernel_log = Some(KernelLog {
            records: vec![
                at(now - 2 * RECENT_MS, "VFS: file-max limit 65536 reached"),
                at(
                    now - 2 * RECENT_MS,
                    "EXT4-fs (sda1): Remounting filesystem read-only",
                ),
                at(now - 1000, "nf_conntrack: table full, dropping packet"),
                at(now - 1000, "just noise"),
            ],
            lost: 7,
            ..KernelLog::default()
        });
        let out = run(&History::new(std::slice::from_ref(&s)).unwrap());
        let sev = |reason: &str| {
            out.findings
                .iter()
                .find(|f| f.log.as_ref().unwrap().reason == reason)
                .map(|f| f.severity)
        };
        assert_eq!(sev("FileMaxReached"), Some(Severity::Info));
        assert_eq!(sev("FilesystemIsReadOnly"), Some(Severity::Critical));
        assert_eq!(sev("ConntrackFull"), Some(Severity::Critical));
        assert_eq!(out.findings.len(), 3);
        assert_eq!(out.findings[0].check, "kernel-log");
        assert!(out.unknown[0].contains("7 kernel log records were overwritten"));
    }

    #[test]
    fn an_unreadable_ring_is_unknown() {
        let mut s = snapshot(0, 10, Vec::new());
        assert!(
            run(&History::new(std::slice::from_ref(&s)).unwrap()).unknown[0].contains("not read")
        );
        s.kernel_log = Some(KernelLog {
            error: Some("/dev/kmsg: Permission denied".into()),
            ..KernelLog::default()
        });
        let out = run(&History::new(std::slice::from_ref(&s)).unwrap());
        assert!(out.findings.is_empty());
        assert_eq!(
            out.unknown,
            vec!["/dev/kmsg: Permission denied".to_string()]
        );
    }
}
