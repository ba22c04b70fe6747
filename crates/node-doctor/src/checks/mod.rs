//! Checks: pure functions from snapshots to findings. No IO, no clock — everything a check
//! knows came through a [`Snapshot`], so a replayed recording gives the same findings.

pub mod common;
pub mod d_state_processes;
pub mod disk_pressure;
pub mod fd_exhaustion;
pub mod fd_leak;
pub mod kernel_log;
pub mod pid_exhaustion;
pub mod pipe_quota;
pub mod runc_init_hang;
pub mod stuck_container_stop;
pub mod zombie_processes;

use crate::finding::{Finding, Unknown};
use crate::snapshot::Snapshot;
use std::time::Instant;

/// The snapshots a check may look at, oldest first; the last one is "now". Checks that need
/// a rate or "still stuck" compare it with earlier ones.
#[derive(Debug, Clone, Copy)]
pub struct History<'a> {
    samples: &'a [Snapshot],
    settings: Settings,
}

/// Thresholds an operator may tune (CLI flags); plain data, so checks stay pure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Age past which a `runc init` is reported (runc-init-hang).
    pub runc_init_threshold_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            runc_init_threshold_secs: runc_init_hang::THRESHOLD_SECS,
        }
    }
}

impl<'a> History<'a> {
    /// `samples` must not be empty (recordings and collectors guarantee one sample at least).
    pub fn new(samples: &'a [Snapshot]) -> Option<Self> {
        (!samples.is_empty()).then_some(Self {
            samples,
            settings: Settings::default(),
        })
    }

    pub fn with_settings(self, settings: Settings) -> Self {
        Self { settings, ..self }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn current(&self) -> &'a Snapshot {
        &self.samples[self.samples.len() - 1]
    }

    /// The oldest sample, when there is one besides the current: what "growing since" and
    /// "still stuck" compare against.
    pub fn earliest(&self) -> Option<&'a Snapshot> {
        (self.samples.len() > 1).then(|| &self.samples[0])
    }

    /// The sample before the current one, when a window was used.
    pub fn previous(&self) -> Option<&'a Snapshot> {
        self.samples.len().checked_sub(2).map(|i| &self.samples[i])
    }

    pub fn samples(&self) -> &'a [Snapshot] {
        self.samples
    }
}

/// What one check concluded: findings, and reasons it could not look at some things.
#[derive(Debug, Default)]
pub struct Outcome {
    pub findings: Vec<Finding>,
    pub unknown: Vec<String>,
}

impl Outcome {
    pub fn unknown(reason: impl Into<String>) -> Self {
        Self {
            findings: Vec::new(),
            unknown: vec![reason.into()],
        }
    }

    pub fn found(findings: Vec<Finding>) -> Self {
        Self {
            findings,
            unknown: Vec::new(),
        }
    }
}

/// A registered check: its stable id, one line saying what it looks for, its knowledge page
/// (docs/checks/<id>.md, shown by `node-doctor explain`), and the function.
pub struct CheckDef {
    pub id: &'static str,
    pub title: &'static str,
    pub doc: &'static str,
    pub run: fn(&History) -> Outcome,
}

/// Every check, in the order reports list them.
pub fn all() -> &'static [CheckDef] {
    &[
        pid_exhaustion::CHECK,
        zombie_processes::CHECK,
        fd_exhaustion::CHECK,
        fd_leak::CHECK,
        d_state_processes::CHECK,
        stuck_container_stop::CHECK,
        pipe_quota::CHECK,
        runc_init_hang::CHECK,
        kernel_log::CHECK,
        disk_pressure::CHECK,
    ]
}

pub fn by_id(id: &str) -> Option<&'static CheckDef> {
    all().iter().find(|c| c.id == id)
}

/// The result of running checks over a history.
#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub unknown: Vec<Unknown>,
    pub checks_run: Vec<&'static str>,
}

/// Runs `checks` over `history`. Checks left when `deadline` passes are reported unknown
/// rather than holding up the report.
pub fn run(checks: &[&'static CheckDef], history: &History, deadline: Option<Instant>) -> Report {
    let mut report = Report::default();
    for check in checks {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            report.unknown.push(Unknown {
                check: check.id.into(),
                reason: "not run: the check deadline passed".into(),
            });
            continue;
        }
        let outcome = (check.run)(history);
        report.checks_run.push(check.id);
        report.findings.extend(outcome.findings);
        report
            .unknown
            .extend(outcome.unknown.into_iter().map(|reason| Unknown {
                check: check.id.into(),
                reason,
            }));
    }
    // Most severe first; within a severity keep check order (stable sort).
    report
        .findings
        .sort_by_key(|f| std::cmp::Reverse(f.severity));
    report
}

/// Formats a ratio as a percentage with one decimal.
pub(crate) fn pct(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}
