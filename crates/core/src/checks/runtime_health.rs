//! `runtime-health`: does the container runtime answer the kubelet? The collector calls the
//! CRI socket (`Version`, then `Status`, then the pod and container lists) with a deadline per
//! call and records each call; this check judges the record. A socket that accepts and
//! never answers is what the kubelet sees when containerd is wedged behind a hung shim or
//! `runc init` (incident 1): PLEG stalls, the node goes NotReady. `Status` carries the
//! runtime's own conditions: `RuntimeReady` false means no container can start,
//! `NetworkReady` false (no CNI configured or ready) that no pod can get a network.

use super::{CheckDef, ConditionDef, History, Needs, Outcome};
use crate::config::{CheckSettings, SettingDef};
use crate::finding::{Evidence, Finding, Measure, Severity, Subject, SubjectKind, Unit};
use crate::model::runtime::{CallOutcome, CriProbe, Runtime};
use crate::model::snapshot::Snapshot;

pub const CHECK: CheckDef = CheckDef {
    id: "runtime-health",
    title: "container runtime answers the CRI (Version, Status) in time and reports itself ready",
    doc: include_str!("runtime_health.md"),
    needs: Needs {
        runtime: true,
        ..Needs::NONE
    },
    settings: &[SLOW],
    condition: Some(ConditionDef {
        type_: "ContainerRuntimeUnhealthy",
        true_reason: "RuntimeNotAnswering",
        false_reason: "RuntimeAnswering",
    }),
    run,
};

/// A CRI call slower than this (but within the collector's deadline) is a warning.
pub const SLOW: SettingDef = SettingDef::duration(
    "slow",
    1_000,
    "a CRI call that answered but took this long or longer is reported (warning)",
);

fn run(h: &History, cfg: &CheckSettings) -> Outcome {
    let s = h.current();
    let Some(rt) = &s.runtime else {
        return Outcome::unknown(s.not_collected("the container runtime"));
    };
    let Some(cri) = &rt.cri else {
        if rt.daemons.is_empty() {
            return Outcome::unknown(
                "no container runtime on this node: no containerd, dockerd, crio or cri-dockerd process, and no CRI socket",
            );
        }
        return Outcome::unknown(format!(
            "{} runs but its CRI socket was not asked: {}",
            daemons_text(rt),
            s.workloads
                .as_ref()
                .and_then(|w| w.fallback_reason.as_deref())
                .unwrap_or("no socket found")
        ));
    };
    // Not allowed to connect (an unprivileged run): says nothing about the runtime.
    if let Some(c) = cri.calls.iter().find(|c| {
        c.error
            .as_deref()
            .is_some_and(|e| e.contains("Permission denied") || e.contains("permission denied"))
    }) {
        return Outcome::unknown(format!(
            "not allowed to connect to the CRI socket {} ({}): run as root",
            cri.endpoint,
            c.error.as_deref().unwrap_or_default()
        ));
    }
    let slow_ms = cfg.duration_ms(&SLOW);
    let mut findings = Vec::new();
    if let Some(f) = call_problem(s, rt, cri, slow_ms) {
        findings.push(f);
    }
    findings.extend(conditions(rt, cri));
    Outcome::found(findings)
}

fn daemons_text(rt: &Runtime) -> String {
    if rt.daemons.is_empty() {
        return "no runtime daemon process".into();
    }
    rt.daemons
        .iter()
        .map(|d| format!("{} (pid {})", d.kind, d.pid))
        .collect::<Vec<_>>()
        .join(", ")
}

fn base_evidence(rt: &Runtime, cri: &CriProbe) -> Vec<Evidence> {
    let mut ev = vec![Evidence::new(
        "runtime daemons (/proc/*/stat)",
        daemons_text(rt),
    )];
    ev.push(Evidence::new(
        format!("CRI endpoint {}", cri.endpoint),
        format!("chosen by {}", cri.chosen_by),
    ));
    for c in &cri.calls {
        let mut e = Evidence::new(
            format!("CRI {} ({})", c.method, cri.endpoint),
            match (&c.outcome, &c.error) {
                (CallOutcome::Ok, _) => format!("answered in {:.0} ms", c.ms),
                (o, Some(e)) => format!("{} after {:.0} ms: {e}", outcome_word(*o), c.ms),
                (o, None) => format!("{} after {:.0} ms", outcome_word(*o), c.ms),
            },
        );
        if c.outcome == CallOutcome::Timeout {
            e = e.with_threshold(format!("deadline {} ms", cri.deadline_ms));
        }
        ev.push(e);
    }
    if let Some(v) = &cri.version {
        ev.push(Evidence::new(
            "CRI Version",
            format!(
                "{} {} (CRI {})",
                v.runtime_name, v.runtime_version, v.runtime_api_version
            ),
        ));
    }
    ev
}

fn outcome_word(o: CallOutcome) -> &'static str {
    match o {
        CallOutcome::Ok => "answered",
        CallOutcome::Timeout => "no answer",
        CallOutcome::Unreachable => "unreachable",
        CallOutcome::Error => "error",
    }
}

fn subjects(s: &Snapshot, rt: &Runtime, cri: &CriProbe) -> Vec<Subject> {
    let mut out = vec![Subject::path(SubjectKind::Node, cri.endpoint.clone())];
    for d in &rt.daemons {
        match s.process(d.pid) {
            Some(p) => out.push(Subject::process(p)),
            None => out.push(Subject {
                pid: Some(d.pid),
                comm: Some(d.kind.clone()),
                ..Subject::new(SubjectKind::Process)
            }),
        }
    }
    out
}

fn key_of(cri: &CriProbe, what: &str) -> String {
    format!("{}/cri:{}:{what}", CHECK.id, cri.endpoint)
}

/// The worst call: one that timed out, could not connect, failed, or was slow.
fn call_problem(s: &Snapshot, rt: &Runtime, cri: &CriProbe, slow_ms: u64) -> Option<Finding> {
    let timeouts = cri
        .calls
        .iter()
        .filter(|c| c.outcome == CallOutcome::Timeout)
        .count();
    let worst = cri
        .calls
        .iter()
        .find(|c| c.outcome == CallOutcome::Timeout)
        .or_else(|| {
            cri.calls
                .iter()
                .find(|c| c.outcome == CallOutcome::Unreachable)
        })
        .or_else(|| cri.calls.iter().find(|c| c.outcome == CallOutcome::Error))
        .or_else(|| {
            cri.calls
                .iter()
                .filter(|c| c.ms >= slow_ms as f64)
                .max_by(|a, b| a.ms.total_cmp(&b.ms))
        })?;
    let who = daemons_text(rt);
    let (severity, summary, cause, remedy) = match worst.outcome {
        CallOutcome::Timeout => (
            Severity::Critical,
            format!(
                "the CRI socket {} accepted the connection but {} did not answer within {} ms ({who})",
                cri.endpoint, worst.method, cri.deadline_ms
            ),
            "The runtime takes connections but does not answer: it is stuck (a shim or `runc init` that never \
             returns, a D-state container process, a lock held by a hung call). The kubelet's calls hang the same \
             way, so PLEG stops relisting and the node goes NotReady."
                .to_string(),
            "Look for what the runtime waits on: runc-init-hang, d-state-processes, pipe-quota findings of this run; \
             `ps -eo pid,stat,wchan:32,comm | grep -E 'runc|shim'`. Dump the daemon's goroutines (containerd: \
             `kill -USR1 <pid>`, the stacks go to its log) before restarting it (`systemctl restart containerd`); \
             running containers survive a restart of containerd."
                .to_string(),
        ),
        CallOutcome::Unreachable => (
            Severity::Critical,
            format!(
                "the CRI socket {} does not answer: {} ({who})",
                cri.endpoint,
                worst.error.as_deref().unwrap_or("connection failed")
            ),
            if rt.daemons.is_empty() {
                "No container runtime runs: the kubelet cannot start, stop or list any container.".to_string()
            } else {
                "The runtime process runs but nothing serves its CRI socket (the CRI plugin failed to load, or the \
                 socket is elsewhere than the kubelet's --container-runtime-endpoint)."
                    .to_string()
            },
            "Start or restart the runtime (`systemctl status containerd`, its log); check that the kubelet's \
             `--container-runtime-endpoint` / `containerRuntimeEndpoint` and the runtime's socket agree, and that \
             the CRI plugin is not disabled (`disabled_plugins` in /etc/containerd/config.toml)."
                .to_string(),
        ),
        CallOutcome::Error => (
            Severity::Warning,
            format!(
                "the CRI socket {} answered {} with an error: {}",
                cri.endpoint,
                worst.method,
                worst.error.as_deref().unwrap_or("unknown")
            ),
            "The runtime answers but refuses the call: an old runtime without CRI v1 (containerd < 1.6 speaks \
             v1alpha2), or a runtime still initialising."
                .to_string(),
            "Check the runtime's version and log; kubelet ≥ 1.26 needs CRI v1 (containerd ≥ 1.6, cri-o ≥ 1.23)."
                .to_string(),
        ),
        CallOutcome::Ok => (
            Severity::Warning,
            format!(
                "the CRI call {} took {:.0} ms on {} ({who})",
                worst.method, worst.ms, cri.endpoint
            ),
            "The runtime answers slowly: PLEG relists every second through the same calls and is declared unhealthy \
             when a relist takes over 3 minutes; slow answers are the first sign (thousands of exited containers, \
             a saturated disk under the runtime's root, a busy daemon)."
                .to_string(),
            "Count containers (`crictl ps -a | wc -l`) and remove exited ones; check the disk under \
             /var/lib/containerd (`iostat -x 1`); see the daemon's CPU."
                .to_string(),
        ),
    };
    let measures = vec![
        Measure::new("cri_call", worst.ms / 1000.0, Unit::Seconds).of(
            if worst.outcome == CallOutcome::Ok {
                slow_ms as f64 / 1000.0
            } else {
                cri.deadline_ms as f64 / 1000.0
            },
        ),
        Measure::count("cri_timeouts", timeouts),
        Measure::count("runtime_daemons", rt.daemons.len()),
    ];
    Some(Finding {
        check: CHECK.id.into(),
        key: key_of(cri, "calls"),
        severity,
        summary,
        cause,
        remedy,
        evidence: base_evidence(rt, cri),
        subjects: subjects(s, rt, cri),
        measures,
        log: None,
        caused_by: Vec::new(),
        explains: Vec::new(),
    })
}

/// `Status` conditions that are false.
fn conditions(rt: &Runtime, cri: &CriProbe) -> Vec<Finding> {
    let Some(conds) = &cri.conditions else {
        return Vec::new();
    };
    conds
        .iter()
        .filter(|c| !c.status)
        .map(|c| {
            let runtime = c.type_ == "RuntimeReady";
            let detail = [c.reason.as_str(), c.message.as_str()]
                .iter()
                .filter(|t| !t.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(": ");
            let mut evidence = vec![Evidence::new(
                format!("CRI Status ({})", cri.endpoint),
                format!("{} = false ({detail})", c.type_),
            )];
            evidence.extend(
                base_evidence(rt, cri)
                    .into_iter()
                    .filter(|e| e.source.starts_with("runtime daemons")),
            );
            Finding {
                check: CHECK.id.into(),
                key: key_of(cri, &c.type_),
                severity: if runtime {
                    Severity::Critical
                } else {
                    Severity::Warning
                },
                summary: format!(
                    "the runtime at {} reports {} false: {}",
                    cri.endpoint,
                    c.type_,
                    if detail.is_empty() { "no reason given" } else { &detail }
                ),
                cause: if runtime {
                    "The runtime says it cannot run containers; the kubelet marks the node NotReady (\"container \
                     runtime is down\")."
                        .into()
                } else {
                    "The runtime's network (CNI) is not ready: no CNI configuration in its conf_dir, or the CNI \
                     plugin binaries are missing. Pods other than hostNetwork ones cannot start and the kubelet \
                     reports \"container runtime network not ready\"."
                        .into()
                },
                remedy: if runtime {
                    "Read the runtime's log for why it is not ready; restart it once the cause is fixed.".into()
                } else {
                    "Install or repair the CNI plugin (its DaemonSet, /etc/cni/net.d, /opt/cni/bin); check the \
                     runtime's CNI conf_dir and bin_dir settings."
                        .into()
                },
                evidence,
                subjects: vec![Subject::path(SubjectKind::Node, cri.endpoint.clone())],
                measures: vec![Measure::count("ready", 0u64).of(1u64)],
                log: None,
                caused_by: Vec::new(),
                explains: Vec::new(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::runtime::{CriCall, RuntimeCondition, RuntimeDaemon};

    fn snapshot(calls: Vec<CriCall>, conditions: Option<Vec<RuntimeCondition>>) -> Snapshot {
        Snapshot {
            runtime: Some(Runtime {
                daemons: vec![RuntimeDaemon {
                    kind: "containerd".into(),
                    pid: 812,
                    ..RuntimeDaemon::default()
                }],
                cri: Some(CriProbe {
                    endpoint: "/run/containerd/containerd.sock".into(),
                    chosen_by: "default".into(),
                    deadline_ms: 2000,
                    calls,
                    version: None,
                    conditions,
                }),
                ..Runtime::default()
            }),
            ..Snapshot::default()
        }
    }

    fn call(method: &str, outcome: CallOutcome, ms: f64) -> CriCall {
        CriCall {
            method: method.into(),
            outcome,
            ms,
            error: None,
        }
    }

    fn run_on(s: &Snapshot) -> Outcome {
        run(
            &History::new(std::slice::from_ref(s)).unwrap(),
            &CheckSettings::default(),
        )
    }

    #[test]
    fn a_socket_that_never_answers_is_critical() {
        let out = run_on(&snapshot(
            vec![call("Version", CallOutcome::Timeout, 2001.0)],
            None,
        ));
        assert_eq!(out.findings.len(), 1);
        let f = &out.findings[0];
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.measure("cri_timeouts").unwrap().value, 1.0);
        assert_eq!(f.measure("cri_call").unwrap().limit, Some(2.0));
        assert!(
            f.summary.contains("did not answer within 2000 ms"),
            "{}",
            f.summary
        );
        assert_eq!(f.subjects[1].pid, Some(812));
    }

    #[test]
    fn healthy_slow_and_not_ready() {
        let ready = |t: &str, ok: bool| RuntimeCondition {
            type_: t.into(),
            status: ok,
            reason: if ok {
                String::new()
            } else {
                "NetworkPluginNotReady".into()
            },
            message: String::new(),
        };
        let ok = snapshot(
            vec![
                call("Version", CallOutcome::Ok, 3.0),
                call("Status", CallOutcome::Ok, 4.0),
            ],
            Some(vec![
                ready("RuntimeReady", true),
                ready("NetworkReady", true),
            ]),
        );
        assert!(run_on(&ok).findings.is_empty());
        assert!(!run_on(&ok).inconclusive);
        let slow = snapshot(vec![call("Version", CallOutcome::Ok, 1500.0)], None);
        let out = run_on(&slow);
        assert_eq!(out.findings[0].severity, Severity::Warning);
        let net = snapshot(
            vec![call("Status", CallOutcome::Ok, 4.0)],
            Some(vec![
                ready("RuntimeReady", true),
                ready("NetworkReady", false),
            ]),
        );
        let out = run_on(&net);
        assert_eq!(out.findings.len(), 1);
        assert_eq!(out.findings[0].severity, Severity::Warning);
        assert!(out.findings[0].key.ends_with(":NetworkReady"));
    }

    #[test]
    fn a_socket_we_may_not_open_is_unknown_not_down() {
        let mut c = call("Version", CallOutcome::Unreachable, 0.2);
        c.error = Some("transport error: Permission denied (os error 13)".into());
        let out = run_on(&snapshot(vec![c], None));
        assert!(out.inconclusive && out.findings.is_empty());
        assert!(out.unknown[0].contains("run as root"));
    }

    #[test]
    fn missing_inputs_are_unknown() {
        assert!(run_on(&Snapshot::default()).inconclusive);
        let mut s = snapshot(vec![], None);
        s.runtime.as_mut().unwrap().cri = None;
        assert!(run_on(&s).unknown[0].contains("containerd (pid 812) runs"));
        s.runtime.as_mut().unwrap().daemons.clear();
        assert!(run_on(&s).unknown[0].contains("no container runtime"));
    }
}
