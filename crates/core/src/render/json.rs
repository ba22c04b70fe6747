//! The JSON contracts (docs/output.md): `node-doctor.check/v1`, `node-doctor.logs/v1`, and
//! the JSON Lines envelope `{"type": ..., "data": ...}` of `logs --follow`.

use super::{CheckView, HostSection, Timings};
use crate::coverage::Coverage;
use crate::finding::{Finding, Unknown};
use crate::model::log::{SourceError, SourceStats};
use serde::Serialize;

pub const CHECK_SCHEMA: &str = "node-doctor.check/v1";
pub const LOGS_SCHEMA: &str = "node-doctor.logs/v1";

#[derive(Serialize)]
struct CheckDocument<'a> {
    schema: &'static str,
    host: &'a HostSection,
    findings: &'a [Finding],
    unknown: &'a [Unknown],
    coverage: &'a Coverage,
    timings: &'a Timings,
}

fn pretty(v: &impl Serialize) -> String {
    // Plain data with string keys: serializing cannot fail; an empty object if it ever did.
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}

pub fn render(view: &CheckView) -> String {
    pretty(&CheckDocument {
        schema: CHECK_SCHEMA,
        host: &view.host,
        findings: &view.report.findings,
        unknown: &view.report.unknown,
        coverage: &view.coverage,
        timings: &view.timings,
    })
}

#[derive(Serialize)]
struct LogsDocument<'a> {
    schema: &'static str,
    sources: &'a [SourceStats],
    rules: usize,
    findings: &'a [Finding],
}

pub fn render_logs(sources: &[SourceStats], rules: usize, findings: &[Finding]) -> String {
    pretty(&LogsDocument {
        schema: LOGS_SCHEMA,
        sources,
        rules,
        findings,
    })
}

/// One line of `logs --follow --format json`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum Line<'a> {
    Finding(&'a Finding),
    SourceError(&'a SourceError),
    Summary(Summary<'a>),
}

/// Where the follower stands: at start (sources opened, rules loaded) and at exit.
#[derive(Debug, Serialize)]
pub struct Summary<'a> {
    pub schema: &'static str,
    pub sources: &'a [SourceStats],
    pub rules: usize,
    pub findings: u64,
    /// "start" or "exit".
    pub phase: &'static str,
}

pub fn line(l: &Line) -> String {
    let mut s = serde_json::to_string(l).unwrap_or_else(|_| "{}".into());
    s.push('\n');
    s
}
