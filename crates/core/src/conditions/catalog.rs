//! Which NodeCondition types node-doctor sets, and how a run's findings become a verdict.
//!
//! Two kinds of types:
//! - node-doctor's own, one per check family (`CheckDef::condition`: PIDExhaustion,
//!   ZombieProcesses, ...), applied with force under field manager `node-doctor`: nobody
//!   else may own them;
//! - those of loaded log rules' permanent conditions (node-problem-detector's names, so
//!   existing remediation configs keep working: KernelDeadlock, ReadonlyFilesystem, ...),
//!   applied under `node-doctor-npd` without force: if NPD itself owns them the API server
//!   answers 409 and node-doctor leaves them to it.
//!
//! kubelet's (Ready, MemoryPressure, DiskPressure, PIDPressure, NetworkUnavailable) and the
//! EKS node monitoring agent's (`*Ready`) types are never written.

use super::{Clear, Verdict};
use crate::checks::{CheckDef, Outcome};
use crate::finding::{Finding, RuleKind, Severity};
use crate::rules::RuleSpec;

/// Types owned by others: never written, even if a rule names one.
pub const FORBIDDEN: &[&str] = &[
    "Ready",
    "MemoryPressure",
    "DiskPressure",
    "PIDPressure",
    "NetworkUnavailable",
    "KernelReady",
    "ContainerRuntimeReady",
    "StorageReady",
    "NetworkingReady",
    "AcceleratedHardwareReady",
];

/// Who applies a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Field manager `node-doctor`, forced.
    Own,
    /// Field manager `node-doctor-npd`, not forced (409: owned by NPD, skipped).
    Npd,
}

pub const OWN_MANAGER: &str = "node-doctor";
pub const NPD_MANAGER: &str = "node-doctor-npd";

#[derive(Debug, Clone, PartialEq)]
pub struct CondType {
    pub type_: String,
    pub owner: Owner,
    pub clear: Clear,
    /// The check that sets it (own types), for the message's explain hint.
    pub check: Option<&'static str>,
}

/// The types of the checks the agent runs and of the permanent log rules it loaded.
pub fn types(checks: &[&'static CheckDef], rules: &[RuleSpec], clean_runs: u32) -> Vec<CondType> {
    let mut out: Vec<CondType> = checks
        .iter()
        .filter_map(|c| {
            let d = c.condition?;
            Some(CondType {
                type_: d.type_.to_string(),
                owner: Owner::Own,
                clear: Clear::AfterCleanRuns(clean_runs),
                check: Some(c.id),
            })
        })
        .collect();
    for r in rules.iter().filter(|r| r.kind == RuleKind::Permanent) {
        let Some(t) = &r.condition else { continue };
        if FORBIDDEN.contains(&t.as_str()) || out.iter().any(|c| &c.type_ == t) {
            continue;
        }
        out.push(CondType {
            type_: t.clone(),
            owner: Owner::Npd,
            // A counter rule's condition (FrequentKubeletRestart) clears once its window
            // passes without enough matches; a plain permanent one holds until reboot.
            clear: match r.count {
                Some((_, window_ms)) => Clear::QuietFor(window_ms),
                None => Clear::UntilReboot,
            },
            check: None,
        });
    }
    out
}

/// An NPD-named condition's verdict at a judgement: True while a matching line was seen
/// since the previous judgement (`last_line`: when, the rule's reason, its message), as NPD
/// does: True carries the rule's reason (DockerHung, AUFSUmountHung under KernelDeadlock),
/// False the condition's default reason.
pub fn npd_verdict(type_: &str, last_line: Option<(u64, &str, &str)>, since_ms: u64) -> Verdict {
    match last_line {
        Some((at, reason, message)) if at >= since_ms => Verdict::Problem {
            reason: reason.to_string(),
            message: message.to_string(),
        },
        _ => Verdict::Fine {
            reason: npd_clear_reason(type_),
            message: "no matching log line recently".into(),
        },
    }
}

/// The False reason of an NPD-named type: node-problem-detector's own default for the
/// types its shipped monitors define (kernel-monitor.json, docker-monitor.json,
/// systemd-monitor-counter.json), so policies written against NPD match; `NoTYPE` else.
pub fn npd_clear_reason(type_: &str) -> String {
    match type_ {
        "KernelDeadlock" => "KernelHasNoDeadlock".into(),
        "ReadonlyFilesystem" => "FilesystemIsNotReadOnly".into(),
        "CorruptDockerOverlay2" => "NoCorruptDockerOverlay2".into(),
        t => format!("No{t}"),
    }
}

/// "summary; subjects: ...; and 3 more findings. `node-doctor explain ID`".
pub fn problem_message(check: &str, findings: &[&Finding]) -> String {
    let mut m = String::new();
    if let Some(top) = findings.first() {
        m.push_str(&top.summary);
        let subjects: Vec<String> = top
            .subjects
            .iter()
            .take(3)
            .map(crate::render::human::subject_line)
            .collect();
        if !subjects.is_empty() {
            m.push_str(&format!("; subjects: {}", subjects.join(", ")));
        }
    }
    let more = findings.len().saturating_sub(1);
    if more > 0 {
        m.push_str(&format!(
            "; and {more} more finding{}",
            if more == 1 { "" } else { "s" }
        ));
    }
    m.push_str(&format!(". See `node-doctor explain {check}`."));
    m
}

/// The lowest severity that makes a check's condition True: warnings too when the node's
/// policy asks for it (the agent's `condition_on_warning`), else critical findings only —
/// a remediation tool that drains on a condition should act on what is breaking the node.
pub fn condition_bar(on_warning: bool) -> Severity {
    if on_warning {
        Severity::Warning
    } else {
        Severity::Critical
    }
}

/// The verdict of one run of a check on its condition: a problem at `bar` or above,
/// unknown when the check could evaluate nothing, else fine.
pub fn verdict(check: &CheckDef, outcome: &Outcome, bar: Severity) -> Option<Verdict> {
    let d = check.condition?;
    let hits: Vec<&Finding> = outcome
        .findings
        .iter()
        .filter(|f| f.severity >= bar)
        .collect();
    Some(if !hits.is_empty() {
        Verdict::Problem {
            reason: d.true_reason.into(),
            message: problem_message(check.id, &hits),
        }
    } else if outcome.inconclusive {
        Verdict::Unknown {
            message: format!("{}: {}", check.id, outcome.unknown.join("; ")),
        }
    } else {
        let below = outcome.findings.len();
        Verdict::Fine {
            reason: d.false_reason.into(),
            message: if below == 0 {
                format!("{}: checked, no problem found.", check.id)
            } else {
                format!(
                    "{}: checked, {below} finding{} below {} (see /findings).",
                    check.id,
                    if below == 1 { "" } else { "s" },
                    bar.as_str()
                )
            },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks;

    #[test]
    fn every_check_family_has_a_type_of_its_own_and_none_is_someone_elses() {
        let all: Vec<&'static CheckDef> = checks::all().iter().collect();
        let rules = crate::rules::pack::default_rules();
        let ts = types(&all, &rules, 3);
        for t in &ts {
            assert!(!FORBIDDEN.contains(&t.type_.as_str()), "{}", t.type_);
            assert!(
                t.type_
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_uppercase())
            );
        }
        let mut names: Vec<&str> = ts.iter().map(|t| t.type_.as_str()).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(n, names.len(), "types are unique");
        assert!(ts.iter().any(|t| t.type_ == "KernelDeadlock"
            && t.owner == Owner::Npd
            && t.clear == Clear::UntilReboot));
        assert!(
            ts.iter()
                .any(|t| t.type_ == "PIDExhaustion" && t.owner == Owner::Own)
        );
    }

    #[test]
    fn an_npd_condition_is_true_only_for_a_line_since_the_last_judgement() {
        let line = Some((100, "DockerHung", "task docker:1 blocked"));
        assert_eq!(
            npd_verdict("KernelDeadlock", line, 100),
            Verdict::Problem {
                reason: "DockerHung".into(),
                message: "task docker:1 blocked".into()
            }
        );
        for (last, since) in [(line, 101), (None, 0)] {
            assert!(matches!(
                npd_verdict("KernelDeadlock", last, since),
                Verdict::Fine { reason, .. } if reason == "KernelHasNoDeadlock"
            ));
        }
    }
}
