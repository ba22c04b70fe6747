//! Outputs: render a report; no policy, no host access. One model, several printers (human,
//! JSON, JSON Lines) chosen at the edge.

pub mod human;
pub mod json;

use crate::checks::{CheckTiming, History, Report};
use crate::coverage::Coverage;
use crate::time::rfc3339_seconds;
use serde::Serialize;

/// The JSON `host` section, also shown in the human header.
#[derive(Debug, Clone, Serialize)]
pub struct HostSection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_release: Option<String>,
    pub root: String,
    /// When the last sample was read (RFC 3339, UTC).
    pub collected_at: String,
    /// The same, in ms since the epoch ("now" for the ages human output prints).
    pub collected_at_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uptime_secs: Option<f64>,
    /// How many samples the checks saw, and the time between the first and the last.
    pub samples: usize,
    pub window_ms: u64,
    pub processes: usize,
    pub checks_run: Vec<String>,
}

impl HostSection {
    pub fn new(history: &History, report: &Report) -> Self {
        let last = history.current();
        let first = history.samples().first().copied().unwrap_or(last);
        Self {
            hostname: last.host.hostname.clone(),
            kernel_release: last.host.kernel_release.clone(),
            root: last.root.clone(),
            collected_at: rfc3339_seconds(last.collected_at_ms),
            collected_at_ms: last.collected_at_ms,
            uptime_secs: last.host.uptime_secs,
            samples: history.samples().len(),
            window_ms: last.collected_at_ms.saturating_sub(first.collected_at_ms),
            processes: last.process_list().len(),
            checks_run: report.checks_run.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// Wall time of the collectors (per sample) and of the checks.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub collectors: Vec<CollectorTiming>,
    pub checks: Vec<CheckTiming>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CollectorTiming {
    pub collector: String,
    /// 1 for the first sample.
    pub sample: usize,
    pub ms: f64,
}

impl Timings {
    pub fn new(history: &History, report: &Report) -> Self {
        let collectors = history
            .samples()
            .iter()
            .enumerate()
            .flat_map(|(i, s)| {
                s.timings.iter().map(move |(c, ms)| CollectorTiming {
                    collector: c.clone(),
                    sample: i.saturating_add(1),
                    ms: *ms,
                })
            })
            .collect();
        Timings {
            collectors,
            checks: report.timings.clone(),
        }
    }
}

/// Everything one `check` run renders.
pub struct CheckView<'a> {
    pub host: HostSection,
    pub report: &'a Report,
    pub coverage: Coverage,
    pub timings: Timings,
}

impl<'a> CheckView<'a> {
    pub fn new(history: &History, report: &'a Report) -> Self {
        Self {
            host: HostSection::new(history, report),
            report,
            coverage: crate::coverage::of(history, report),
            timings: Timings::new(history, report),
        }
    }
}

/// "1 finding", "3 findings".
pub fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}
