//! `node-doctor sysctl explain NAME...` and `node-doctor sysctl lint FILE...`: the sysctl
//! knowledge (crates/core/src/knowledge/sysctl.toml) applied to a name, or to manifests,
//! for a kernel and a Kubernetes release (the node's by default).

use super::output::write_stdout;
use super::{
    EXIT_FINDINGS, EXIT_OK, FailOn, Format, SysctlArgs, SysctlCommand, SysctlExplainArgs,
    SysctlLintArgs, SysctlTarget,
};
use anyhow::{Context, anyhow};
use node_doctor_core::finding::Severity;
use node_doctor_core::knowledge::Version;
use node_doctor_core::knowledge::lint::{self, Report, Target};
use node_doctor_core::knowledge::sysctl::{
    Admission, ChildNetns, Explanation, Knowledge, knowledge, normalize,
};
use node_doctor_core::model::kernel::sysctl_path;
use serde::Serialize;
use std::fmt::Write as _;
use std::io::Read;

pub const EXPLAIN_SCHEMA: &str = "node-doctor.sysctl-explain/v1";
pub const LINT_SCHEMA: &str = "node-doctor.sysctl-lint/v1";

/// Most bytes of one manifest read.
const MAX_MANIFEST: u64 = 16 << 20;

pub fn run(args: &SysctlArgs) -> anyhow::Result<u8> {
    match &args.command {
        SysctlCommand::Explain(a) => explain(a),
        SysctlCommand::Lint(a) => lint(a),
    }
}

/// A version and where it came from ("--kernel-version", "the node", "newest known").
#[derive(Debug, Clone, Serialize)]
struct Judged {
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<Version>,
    source: String,
}

/// The kernel and the Kubernetes release to judge for: the flags, else the node under
/// --root (`/proc/sys/kernel/osrelease`, the kubelet's dpkg package).
fn target(t: &SysctlTarget) -> anyhow::Result<(Judged, Judged, Option<bool>)> {
    let host = node_doctor_host::Host::open(&t.root.root).ok();
    let parse = |flag: &str, v: &str| {
        Version::parse(v).ok_or_else(|| anyhow!("{flag} {v:?} is not a version (e.g. 1.29, 6.1)"))
    };
    let kernel = match &t.kernel_version {
        Some(v) => Judged {
            version: Some(parse("--kernel-version", v)?),
            source: "--kernel-version".into(),
        },
        None => {
            let live = host.as_ref().and_then(|h| {
                node_doctor_host::fs::read_trimmed(&*h.fs, "proc/sys/kernel/osrelease").ok()
            });
            Judged {
                version: live.as_deref().and_then(Version::parse),
                source: match live {
                    Some(r) => format!("the node's kernel ({r})"),
                    None => "unknown: no /proc/sys/kernel/osrelease under --root".into(),
                },
            }
        }
    };
    let kubernetes = match &t.kubernetes_version {
        Some(v) => Judged {
            version: Some(parse("--kubernetes-version", v)?),
            source: "--kubernetes-version".into(),
        },
        None => {
            let pkg = host
                .as_ref()
                .and_then(|h| node_doctor_host::collect::packages::version_of(&*h.fs, "kubelet"));
            Judged {
                version: pkg.as_deref().and_then(Version::parse),
                source: match pkg {
                    Some(p) => format!("the node's kubelet package ({p})"),
                    None => {
                        "unknown: no kubelet package on the node (pass --kubernetes-version)".into()
                    }
                },
            }
        }
    };
    Ok((kernel, kubernetes, host.is_some().then_some(true)))
}

#[derive(Serialize)]
struct ExplainDoc<'a> {
    schema: &'static str,
    kernel: &'a Judged,
    kubernetes: &'a Judged,
    sysctls: Vec<Explained>,
}

#[derive(Serialize)]
struct Explained {
    #[serde(flatten)]
    explanation: Explanation,
    /// Whether `/proc/sys/...` exists on the node under --root (only when judging the node's
    /// own kernel).
    #[serde(skip_serializing_if = "Option::is_none")]
    present_on_node: Option<bool>,
}

fn explain(a: &SysctlExplainArgs) -> anyhow::Result<u8> {
    let k = knowledge().map_err(anyhow::Error::msg)?;
    let (kernel, kubernetes, _) = target(&a.target)?;
    let host = if a.target.kernel_version.is_none() {
        node_doctor_host::Host::open(&a.target.root.root).ok()
    } else {
        None
    };
    let sysctls: Vec<Explained> = a
        .names
        .iter()
        .map(|n| {
            let explanation = k.explain(n, kernel.version, kubernetes.version);
            let present_on_node = host.as_ref().map(|h| {
                h.fs.entry_kind(&sysctl_path(&normalize(n)))
                    .is_ok_and(|e| e == node_doctor_host::fs::EntryKind::File)
            });
            Explained {
                explanation,
                present_on_node,
            }
        })
        .collect();
    let text = match a.format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&ExplainDoc {
                schema: EXPLAIN_SCHEMA,
                kernel: &kernel,
                kubernetes: &kubernetes,
                sysctls,
            })?;
            s.push('\n');
            s
        }
        Format::Human => {
            let mut out = String::new();
            for e in &sysctls {
                human_explain(&mut out, k, e, &kernel, &kubernetes);
            }
            out
        }
    };
    write_stdout(&text)?;
    Ok(EXIT_OK)
}

fn human_explain(out: &mut String, k: &Knowledge, e: &Explained, kernel: &Judged, kube: &Judged) {
    let x = &e.explanation;
    let n = &x.namespacing;
    let _ = writeln!(out, "{}", x.name);
    let kernel_s = kernel.version.map_or_else(
        || "an unknown kernel (judged for current ones)".into(),
        |v| format!("kernel {v}"),
    );
    let where_ = if n.is_namespaced() {
        format!("per {} namespace", n.namespace.as_str())
    } else if n.family != n.namespace {
        format!(
            "global (per {} namespace only from kernel {})",
            n.family.as_str(),
            n.since.map(|v| v.to_string()).unwrap_or_default()
        )
    } else {
        "global: one value for the node".into()
    };
    let since = match (n.is_namespaced(), n.since) {
        (true, Some(v)) => format!(" (since {v})"),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "  kernel:    {where_}{since} on {kernel_s} [{}]",
        kernel.source
    );
    if let Some(note) = &n.note {
        let _ = writeln!(out, "             {note}");
    }
    if let Some(present) = e.present_on_node {
        let _ = writeln!(
            out,
            "  node:      /{} {}",
            sysctl_path(&x.name),
            if present {
                "exists"
            } else {
                "does not exist on this node"
            }
        );
    }
    if let Some(c) = x.child_netns {
        let _ = writeln!(
            out,
            "  netns:     {}",
            match c {
                ChildNetns::Writable => "a child network namespace has its own, writable copy",
                ChildNetns::ReadOnly =>
                    "read-only in a child network namespace (mode 0444: the host's value)",
                ChildNetns::Absent =>
                    "absent in a child network namespace: a pod cannot have its own",
            }
        );
    }
    let kv = &x.kubelet;
    let known = match kv.known_namespace {
        Some(ns) => format!("known to be namespaced ({})", ns.as_str()),
        None => "not known to be namespaced".into(),
    };
    let _ = writeln!(
        out,
        "  kubelet:   {known}; allowedUnsafeSysctls {}",
        if kv.allowed_unsafe_accepted {
            "may list it"
        } else {
            "cannot list it (the kubelet would refuse to start: \"not known to be namespaced\")"
        }
    );
    match (&kv.kubernetes, &kv.admission) {
        (Some(v), Some(a)) => {
            let verdict = match a {
                Admission::Safe => "in the safe list: pods may set it".to_string(),
                Admission::NeedsAllowedUnsafe => {
                    "not in the safe list: a pod setting it is rejected (SysctlForbidden) unless allowedUnsafeSysctls lists it"
                        .into()
                }
                Admission::Forbidden => "a pod setting it is always rejected (SysctlForbidden)".into(),
            };
            let _ = writeln!(
                out,
                "  safe list: Kubernetes {v} [{}]: {verdict}",
                kube.source
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "  safe list: no Kubernetes release to judge [{}]",
                kube.source
            );
        }
    }
    if let Some(entry) = k.safe_entry(&x.name) {
        let gate = entry
            .kernel
            .map(|g| {
                let ok = kv.safe.as_ref().and_then(|s| s.kernel_ok);
                format!(
                    "; the kubelet keeps it only on kernel {g} or newer{}",
                    match ok {
                        Some(false) => " — dropped on this kernel",
                        Some(true) => " — kept on this kernel",
                        None => "",
                    }
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "             safe since Kubernetes {} ({}){gate}",
            entry.since, entry.pr
        );
    }
    let r = &x.runc;
    let _ = writeln!(
        out,
        "  runc:      {}",
        if r.allowed {
            format!(
                "accepts it for a pod with {}",
                r.requires.as_deref().unwrap_or("its namespaces")
            )
        } else {
            format!("refuses it: {}", r.error.as_deref().unwrap_or("?"))
        }
    );
    let _ = writeln!(out, "  from a pod: {}", x.set_from_a_pod);
    out.push('\n');
}

#[derive(Serialize)]
struct LintDoc<'a> {
    schema: &'static str,
    kernel: &'a Judged,
    kubernetes: &'a Judged,
    #[serde(flatten)]
    report: &'a Report,
}

fn lint(a: &SysctlLintArgs) -> anyhow::Result<u8> {
    let k = knowledge().map_err(anyhow::Error::msg)?;
    let (kernel, mut kubernetes, _) = target(&a.target)?;
    if kubernetes.version.is_none() {
        kubernetes = Judged {
            version: Some(lint::newest_release(k)),
            source: format!("the newest release known ({})", kubernetes.source),
        };
    }
    let mut files = Vec::new();
    for path in &a.files {
        let name = path.display().to_string();
        let text = if name == "-" {
            let mut s = String::new();
            std::io::stdin()
                .take(MAX_MANIFEST)
                .read_to_string(&mut s)
                .context("reading standard input")?;
            s
        } else {
            super::settings::read_small_file(path, MAX_MANIFEST)
                .with_context(|| format!("{name}: cannot read"))?
        };
        files.push((name, text));
    }
    let report = lint::lint(
        k,
        &files,
        Target {
            kubernetes: kubernetes.version,
            kernel: kernel.version,
        },
    )?;
    let text = match a.format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&LintDoc {
                schema: LINT_SCHEMA,
                kernel: &kernel,
                kubernetes: &kubernetes,
                report: &report,
            })?;
            s.push('\n');
            s
        }
        Format::Human => human_lint(&report, &kernel, &kubernetes),
    };
    write_stdout(&text)?;
    let bar = match a.fail_on {
        FailOn::Critical => Severity::Critical,
        FailOn::Warning | FailOn::Unknown => Severity::Warning,
    };
    Ok(if report.issues.iter().any(|i| i.severity >= bar) {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    })
}

fn human_lint(r: &Report, kernel: &Judged, kube: &Judged) -> String {
    let mut out = String::new();
    let v = |j: &Judged| j.version.map_or_else(|| "?".into(), |v| v.to_string());
    let _ = writeln!(
        out,
        "node-doctor sysctl lint: {} documents ({} KubeletConfiguration, {} with a pod spec), judged for Kubernetes {} [{}] and kernel {} [{}]\n",
        r.documents,
        r.kubelet_configs,
        r.pods,
        v(kube),
        kube.source,
        v(kernel),
        kernel.source
    );
    for i in &r.issues {
        let _ = writeln!(
            out,
            "{} {}:{} {}{}{}: {}",
            i.severity.as_str().to_uppercase(),
            i.file,
            i.document,
            i.kind,
            i.name
                .as_deref()
                .map(|n| format!(" {n}"))
                .unwrap_or_default(),
            i.container
                .as_deref()
                .map(|c| format!(" container {c}"))
                .unwrap_or_default(),
            i.message
        );
        let _ = writeln!(out, "  fix: {}", i.fix);
    }
    let count = |s: Severity| r.issues.iter().filter(|i| i.severity == s).count();
    let _ = writeln!(
        out,
        "{}{} issues ({} critical, {} warning, {} info)",
        if r.issues.is_empty() { "" } else { "\n" },
        r.issues.len(),
        count(Severity::Critical),
        count(Severity::Warning),
        count(Severity::Info)
    );
    out
}
