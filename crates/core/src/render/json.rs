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

/// Writes `v` as [`pretty`] renders it, without holding the whole text: a report of a few
/// hundred findings is half a megabyte of JSON, as much again as the findings themselves.
/// The writer's errors (a closed pipe, a full disk) are returned as they are. Plain data
/// with string keys cannot fail to serialize; if it ever did, that would be an
/// `InvalidData` error after partial output, where [`pretty`] would render `{}`.
fn write_pretty(w: &mut dyn std::io::Write, v: &impl Serialize) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *w, v).map_err(std::io::Error::from)?;
    w.write_all(b"\n")
}

fn check_document<'a>(view: &'a CheckView) -> CheckDocument<'a> {
    CheckDocument {
        schema: CHECK_SCHEMA,
        host: &view.host,
        findings: &view.report.findings,
        unknown: &view.report.unknown,
        coverage: &view.coverage,
        timings: &view.timings,
    }
}

pub fn render(view: &CheckView) -> String {
    pretty(&check_document(view))
}

/// [`render`], written to `w` as it is produced.
pub fn write(w: &mut dyn std::io::Write, view: &CheckView) -> std::io::Result<()> {
    write_pretty(w, &check_document(view))
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

/// [`render_logs`], written to `w` as it is produced.
pub fn write_logs(
    w: &mut dyn std::io::Write,
    sources: &[SourceStats],
    rules: usize,
    findings: &[Finding],
) -> std::io::Result<()> {
    write_pretty(
        w,
        &LogsDocument {
            schema: LOGS_SCHEMA,
            sources,
            rules,
            findings,
        },
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{Measure, Severity};

    #[test]
    fn written_and_rendered_documents_are_the_same_bytes() {
        let findings = vec![Finding {
            check: "log-monitor".into(),
            key: "log-monitor/oom-kill".into(),
            severity: Severity::Warning,
            summary: "a \"quoted\" summary\nwith a newline".into(),
            cause: String::new(),
            remedy: String::new(),
            evidence: vec![],
            subjects: vec![],
            measures: vec![Measure::count("lines", 3)],
            log: None,
            caused_by: Vec::new(),
            explains: Vec::new(),
        }];
        let mut out = Vec::new();
        write_logs(&mut out, &[], 81, &findings).unwrap();
        assert_eq!(out, render_logs(&[], 81, &findings).into_bytes());
        assert!(out.ends_with(b"}\n"));
    }

    /// A writer that takes `room` bytes, then fails as a full disk or a closed pipe does.
    struct Failing {
        room: usize,
        kind: std::io::ErrorKind,
    }

    impl std::io::Write for Failing {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.room == 0 {
                return Err(self.kind.into());
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failing_writer_s_error_comes_back_as_it_is() {
        for kind in [
            std::io::ErrorKind::StorageFull,
            std::io::ErrorKind::BrokenPipe,
        ] {
            for room in [0, 7] {
                let mut w = Failing { room, kind };
                let e = write_logs(&mut w, &[], 81, &[]).unwrap_err();
                assert_eq!(e.kind(), kind, "after {room} bytes");
            }
        }
    }
}
