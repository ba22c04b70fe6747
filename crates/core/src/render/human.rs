//! Human output: findings grouped by severity, evidence and remedy under each, a last line
//! that counts. Colour only when the caller says so (a terminal, and `NO_COLOR` unset).

use super::{CheckView, plural};
use crate::attribution::short_id;
use crate::finding::{Finding, Severity, Subject};
use crate::model::log::SourceStats;
use crate::time::{ago, rfc3339_seconds};
use std::fmt::Write;

#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn severity(&self, s: Severity) -> String {
        let label = s.as_str().to_uppercase();
        match s {
            Severity::Critical => self.paint("1;31", &label),
            Severity::Warning => self.paint("1;33", &label),
            Severity::Info => self.paint("1;36", &label),
        }
    }
}

pub fn render(view: &CheckView, style: &Style) -> String {
    let host = &view.host;
    let report = view.report;
    let mut out = String::new();
    let name = host.hostname.as_deref().unwrap_or("(unknown host)");
    let kernel = host.kernel_release.as_deref().unwrap_or("?");
    let _ = writeln!(
        out,
        "node-doctor: {name} (kernel {kernel}, root {}), {}, {} over {} ms, at {}",
        host.root,
        plural(host.processes, "process", "processes"),
        plural(host.samples, "sample", "samples"),
        host.window_ms,
        host.collected_at
    );
    for note in &view.coverage.notes {
        let _ = writeln!(out, "{} {note}", style.paint("1;33", "PARTIAL:"));
    }
    render_chains(&mut out, &report.findings, style);
    for sev in [Severity::Critical, Severity::Warning, Severity::Info] {
        let group: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.severity == sev)
            .collect();
        if group.is_empty() {
            continue;
        }
        let _ = writeln!(out);
        for f in group {
            render_finding(&mut out, f, style, Some(host.collected_at_ms));
        }
    }
    if !report.unknown.is_empty() {
        let _ = writeln!(out, "\n{}", style.paint("1", "Could not check:"));
        for u in &report.unknown {
            let _ = writeln!(out, "  {}: {}", u.check, u.reason);
        }
    }
    let _ = writeln!(
        out,
        "\n{}, {} unknown, {}",
        count_line(&report.findings),
        report.unknown.len(),
        plural(report.checks_run.len(), "check run", "checks run")
    );
    out
}

/// Causal chains, root cause first: each finding that explains others and is explained by
/// none, with what it explains indented under it.
fn render_chains(out: &mut String, findings: &[Finding], style: &Style) {
    let chains = crate::causes::chains(findings);
    if chains.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n{}",
        style.paint("1", "Causal chains (root cause first):")
    );
    for chain in chains {
        for (depth, i) in chain.iter().enumerate() {
            let Some(f) = findings.get(*i) else { continue };
            let indent = "  ".repeat(depth.saturating_add(1));
            let arrow = if depth == 0 { "" } else { "→ " };
            let _ = writeln!(
                out,
                "{indent}{arrow}{} {}: {}",
                style.severity(f.severity),
                style.paint("1", &f.check),
                f.summary
            );
        }
    }
}

/// "3 findings (1 critical, 2 warning, 0 info)".
pub fn count_line(findings: &[Finding]) -> String {
    let count = |s| findings.iter().filter(|f| f.severity == s).count();
    format!(
        "{} ({} critical, {} warning, {} info)",
        plural(findings.len(), "finding", "findings"),
        count(Severity::Critical),
        count(Severity::Warning),
        count(Severity::Info)
    )
}

/// One finding. `now_ms` (the snapshot's time, or the clock's for a follower) turns the
/// times of log lines into ages.
pub fn render_finding(out: &mut String, f: &Finding, style: &Style, now_ms: Option<u64>) {
    let _ = writeln!(
        out,
        "{} {}: {}",
        style.severity(f.severity),
        style.paint("1", &f.check),
        f.summary
    );
    if let Some(lm) = &f.log {
        let when = |t: u64| match now_ms {
            Some(now) => format!("{} ({})", rfc3339_seconds(t), ago(now, t)),
            None => rfc3339_seconds(t),
        };
        match (lm.first_ms, lm.last_ms) {
            (Some(a), Some(b)) if a != b => {
                let _ = writeln!(out, "  logged: first {}, last {}", when(a), when(b));
            }
            (_, Some(t)) | (Some(t), None) => {
                let _ = writeln!(out, "  logged: {}", when(t));
            }
            (None, None) => {
                let _ = writeln!(out, "  logged: (the lines carry no time)");
            }
        }
    }
    let _ = writeln!(out, "  cause: {}", f.cause);
    if !f.caused_by.is_empty() {
        let _ = writeln!(out, "  caused by: {}", f.caused_by.join(", "));
    }
    if !f.explains.is_empty() {
        let _ = writeln!(out, "  explains: {}", f.explains.join(", "));
    }
    if !f.subjects.is_empty() {
        let _ = writeln!(out, "  subjects:");
        for s in &f.subjects {
            let _ = writeln!(out, "    - {}", subject_line(s));
        }
    }
    let _ = writeln!(out, "  evidence:");
    for e in &f.evidence {
        match &e.threshold {
            Some(t) => {
                let _ = writeln!(out, "    - {}: {} (threshold: {t})", e.source, e.observed);
            }
            None => {
                let _ = writeln!(out, "    - {}: {}", e.source, e.observed);
            }
        }
    }
    let _ = writeln!(out, "  remedy: {}", f.remedy);
}

/// "process pid 812 (dockerd) uid 0 container 3f1c9a27d0b4 pod 5b3c...".
pub fn subject_line(s: &Subject) -> String {
    let mut parts = vec![s.kind.as_str().to_string()];
    if let Some(p) = s.pid {
        parts.push(format!("pid {p}"));
    }
    if let Some(c) = &s.comm {
        parts.push(format!("({})", c.escape_debug()));
    }
    if let Some(u) = s.uid {
        parts.push(format!("uid {u}"));
    }
    if let Some(p) = &s.path {
        parts.push(p.clone());
    }
    match (&s.container_name, &s.container_id) {
        (Some(n), Some(c)) => parts.push(format!("container {n} ({})", short_id(c))),
        (Some(n), None) => parts.push(format!("container {n}")),
        (None, Some(c)) => parts.push(format!("container {}", short_id(c))),
        (None, None) => {}
    }
    match (&s.namespace, &s.pod_name, &s.pod) {
        (Some(ns), Some(n), Some(uid)) => parts.push(format!("pod {ns}/{n} ({uid})")),
        (Some(ns), Some(n), None) => parts.push(format!("pod {ns}/{n}")),
        (_, _, Some(uid)) => parts.push(format!("pod {uid}")),
        _ => {}
    }
    match (&s.namespace, &s.pod_name) {
        (Some(ns), Some(n)) => parts.push(format!("pod {ns}/{n}")),
        (None, Some(n)) => parts.push(format!("pod {n}")),
        _ => {}
    }
    if let Some(c) = &s.container_name {
        parts.push(format!("container {c}"));
    }
    for (label, v) in [
        ("device", &s.device),
        ("unit", &s.unit),
        ("image", &s.image),
    ] {
        if let Some(v) = v {
            parts.push(format!("{label} {v}"));
        }
    }
    parts.join(" ")
}

/// The `node-doctor logs` report.
pub fn render_logs(
    sources: &[SourceStats],
    rules: usize,
    findings: &[Finding],
    now_ms: u64,
    style: &Style,
) -> String {
    let mut out = String::new();
    let srcs: Vec<String> = sources.iter().map(source_line).collect();
    let _ = writeln!(
        out,
        "node-doctor logs: {} over {}",
        plural(rules, "rule", "rules"),
        srcs.join(", ")
    );
    for f in findings {
        out.push('\n');
        render_finding(&mut out, f, style, Some(now_ms));
    }
    let _ = writeln!(out, "\n{}", count_line(findings));
    out
}

pub fn source_line(r: &SourceStats) -> String {
    match &r.error {
        Some(e) => format!("{} (unreadable: {e})", r.source),
        None if r.lost > 0 => format!(
            "{} ({}, {} lost)",
            r.source,
            plural(r.lines as usize, "line", "lines"),
            r.lost
        ),
        None => format!(
            "{} ({})",
            r.source,
            plural(r.lines as usize, "line", "lines")
        ),
    }
}
