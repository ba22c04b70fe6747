//! Outputs: render a report; no policy, no host access.

pub mod human;
pub mod json;

use crate::checks::Report;
use crate::snapshot::Snapshot;
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uptime_secs: Option<f64>,
    /// How many samples the checks saw, and the time between the first and the last.
    pub samples: usize,
    pub window_ms: u64,
    pub processes: usize,
    pub checks_run: Vec<String>,
}

impl HostSection {
    pub fn new(samples: &[Snapshot], report: &Report) -> Self {
        let last = &samples[samples.len() - 1];
        let first = &samples[0];
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(last.collected_at_ms);
        Self {
            hostname: last.host.hostname.clone(),
            kernel_release: last.host.kernel_release.clone(),
            root: last.root.clone(),
            collected_at: humantime::format_rfc3339_seconds(t).to_string(),
            uptime_secs: last.host.uptime_secs,
            samples: samples.len(),
            window_ms: last.collected_at_ms.saturating_sub(first.collected_at_ms),
            processes: last.processes.len(),
            checks_run: report.checks_run.iter().map(|s| s.to_string()).collect(),
        }
    }
}
