//! Human output: findings grouped by severity, evidence and remedy under each, a last line
//! that counts. Colour only when writing to a terminal.

use super::HostSection;
use crate::finding::{Finding, Severity, Subject, SubjectKind, Unknown};
use std::fmt::Write;

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

pub fn render(
    host: &HostSection,
    findings: &[Finding],
    unknown: &[Unknown],
    style: &Style,
) -> String {
    let mut out = String::new();
    let name = host.hostname.as_deref().unwrap_or("(unknown host)");
    let kernel = host.kernel_release.as_deref().unwrap_or("?");
    let _ = writeln!(
        out,
        "node-doctor: {name} (kernel {kernel}, root {}), {} processes, {} sample(s) over {} ms, at {}",
        host.root, host.processes, host.samples, host.window_ms, host.collected_at
    );
    for sev in [Severity::Critical, Severity::Warning, Severity::Info] {
        let group: Vec<_> = findings.iter().filter(|f| f.severity == sev).collect();
        if group.is_empty() {
            continue;
        }
        let _ = writeln!(out);
        for f in group {
            render_finding(&mut out, f, style);
        }
    }
    if !unknown.is_empty() {
        let _ = writeln!(out, "\n{}", style.paint("1", "Could not check:"));
        for u in unknown {
            let _ = writeln!(out, "  {}: {}", u.check, u.reason);
        }
    }
    let _ = writeln!(
        out,
        "\n{}, {} unknown, {} checks run",
        count_line(findings),
        unknown.len(),
        host.checks_run.len()
    );
    out
}

/// "3 findings (1 critical, 2 warning, 0 info)".
pub fn count_line(findings: &[Finding]) -> String {
    let count = |s| findings.iter().filter(|f| f.severity == s).count();
    format!(
        "{} findings ({} critical, {} warning, {} info)",
        findings.len(),
        count(Severity::Critical),
        count(Severity::Warning),
        count(Severity::Info)
    )
}

pub fn render_finding(out: &mut String, f: &Finding, style: &Style) {
    let _ = writeln!(
        out,
        "{} {}: {}",
        style.severity(f.severity),
        style.paint("1", &f.check),
        f.summary
    );
    let _ = writeln!(out, "  cause: {}", f.cause);
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

fn subject_line(s: &Subject) -> String {
    let kind = match s.kind {
        SubjectKind::Process => "process",
        SubjectKind::Container => "container",
        SubjectKind::Pod => "pod",
        SubjectKind::Cgroup => "cgroup",
        SubjectKind::Filesystem => "filesystem",
        SubjectKind::User => "user",
        SubjectKind::Node => "node",
    };
    let mut parts = vec![kind.to_string()];
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
    if let Some(c) = &s.container_id {
        parts.push(format!(
            "container {}",
            c.chars().take(13).collect::<String>()
        ));
    }
    if let Some(p) = &s.pod {
        parts.push(format!("pod {p}"));
    }
    parts.join(" ")
}
