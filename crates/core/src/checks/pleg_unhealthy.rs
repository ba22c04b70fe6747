//! `pleg-unhealthy`: kubelet's pod lifecycle event generator has stopped relisting. PLEG
//! asks the runtime for every pod and container once a second (`ListPodSandbox`,
//! `ListContainers`); when a relist has not completed for 3 minutes the kubelet logs
//! `PLEG is not healthy: pleg was last seen active X ago; threshold is 3m0s`, stops syncing
//! pods and sets the node NotReady. Incident 1: relists hung behind a `runc init` blocked
//! on a shrunk pipe. The check reads the kubelet's lines and, in the same snapshot, what
//! PLEG may be waiting on: a `runc init` alive for long, a container process in D state, a
//! CRI call that did not return.

use super::common::{MAX_FINDINGS, describe, human_duration};
use super::daemon_logs::{go_duration_secs, log_of, recent, word_after};
use super::runc_init_hang::{age_secs, is_runc_init};
use super::{CheckDef, ConditionDef, History, Needs, Outcome};
use crate::config::{CheckSettings, SettingDef};
use crate::finding::{Evidence, Finding, Measure, Severity, Subject, SubjectKind, Unit, key};
use crate::model::runtime::CallOutcome;

pub const CHECK: CheckDef = CheckDef {
    id: "pleg-unhealthy",
    title: "kubelet's PLEG not healthy (relist stalled; node NotReady), with what it waits on",
    doc: include_str!("pleg_unhealthy.md"),
    needs: Needs {
        daemon_logs: true,
        runtime: true,
        processes: true,
        ..Needs::NONE
    },
    settings: &[RECENT, RUNC_AGE],
    condition: Some(ConditionDef {
        type_: "PLEGUnhealthy",
        true_reason: "PLEGNotHealthy",
        false_reason: "PLEGHealthy",
    }),
    run,
};

/// Lines older than this before the snapshot are not reported.
pub const RECENT: SettingDef = SettingDef::duration(
    "recent",
    10 * 60 * 1000,
    "PLEG lines logged within this window before the snapshot are reported",
);

/// A `runc init` at least this old is named as what PLEG may be waiting on.
pub const RUNC_AGE: SettingDef = SettingDef::duration(
    "runc_age",
    30_000,
    "a runc init alive this long is named as a likely reason",
);

/// The lines that say PLEG stalled, and relist failures.
fn is_pleg_line(t: &str) -> bool {
    t.contains("PLEG is not healthy") || t.contains("GenericPLEG: Unable to retrieve pods")
}

fn run(h: &History, cfg: &CheckSettings) -> Outcome {
    let s = h.current();
    let log = match log_of(s, "kubelet") {
        Ok(l) => l,
        Err(why) => {
            return Outcome::unknown(match &s.kubelet {
                Some(k) if k.pid.is_none() => format!("no kubelet process on this node; {why}"),
                _ => why,
            });
        }
    };
    let window = cfg.duration_ms(&RECENT);
    let lines: Vec<_> = recent(s, log, window)
        .into_iter()
        .filter(|r| is_pleg_line(&r.text))
        .collect();
    if lines.is_empty() {
        return Outcome::found(Vec::new());
    }
    let unhealthy: Vec<_> = lines
        .iter()
        .filter(|r| r.text.contains("PLEG is not healthy"))
        .collect();
    let relist_errors = lines.len().saturating_sub(unhealthy.len());
    // "pleg was last seen active 3m5.3s ago; threshold is 3m0s"
    let stalls: Vec<f64> = unhealthy
        .iter()
        .filter_map(|r| word_after(&r.text, "last seen active ").and_then(go_duration_secs))
        .collect();
    let max_stall = stalls.iter().copied().fold(0.0f64, f64::max);
    let threshold = unhealthy
        .iter()
        .find_map(|r| word_after(&r.text, "threshold is ").and_then(go_duration_secs))
        .unwrap_or(180.0);
    let first = lines.first().and_then(|r| r.time_ms);
    let last = lines.last().and_then(|r| r.time_ms);

    let mut evidence = Vec::new();
    for r in lines.iter().rev().take(3).rev() {
        let when = r.time_ms.map_or(String::new(), |t| {
            format!(
                " ({} before the snapshot)",
                human_duration(s.collected_at_ms.saturating_sub(t))
            )
        });
        evidence.push(Evidence::new(
            format!("{}{when}", log.source),
            r.text.clone(),
        ));
    }
    let mut reasons = Vec::new();
    let mut subjects = vec![Subject::new(SubjectKind::Node)];
    // What PLEG waits on, when it is visible in this snapshot.
    let runc_age = cfg.duration_ms(&RUNC_AGE) / 1000;
    for p in s.process_list().iter().filter(|p| is_runc_init(p)) {
        if let Some(age) = age_secs(s, p).filter(|a| *a >= runc_age) {
            reasons.push(format!(
                "{} alive for {} (state {}, wchan {})",
                describe(p),
                human_duration(age.saturating_mul(1000)),
                p.state,
                p.wchan.as_deref().unwrap_or("unknown")
            ));
            subjects.push(Subject::process(p));
        }
    }
    for p in s
        .process_list()
        .iter()
        .filter(|p| p.in_d_state() && p.owner.container_id.is_some())
        .take(MAX_FINDINGS)
    {
        reasons.push(format!(
            "{} in D state (wchan {})",
            describe(p),
            p.wchan.as_deref().unwrap_or("unknown")
        ));
        subjects.push(Subject::process(p));
    }
    if let Some(cri) = s.runtime.as_ref().and_then(|r| r.cri.as_ref()) {
        for c in cri
            .calls
            .iter()
            .filter(|c| c.outcome == CallOutcome::Timeout)
        {
            reasons.push(format!(
                "CRI {} on {} did not answer within {} ms",
                c.method, cri.endpoint, cri.deadline_ms
            ));
        }
    }
    for r in &reasons {
        evidence.push(Evidence::new("visible in this snapshot", r.clone()));
    }
    let cause = if reasons.is_empty() {
        "PLEG relists pods and containers through the runtime once a second; a relist that does not finish within \
         3 minutes makes the kubelet stop syncing pods and report the node NotReady. Nothing in this snapshot shows \
         what the runtime waits on: see runtime-health and the runtime's own log."
            .to_string()
    } else {
        format!(
            "PLEG relists pods and containers through the runtime once a second; a relist that does not finish \
             within 3 minutes makes the kubelet stop syncing pods and report the node NotReady. Visible now: {}.",
            reasons.join("; ")
        )
    };
    let summary = match (unhealthy.len(), stalls.is_empty()) {
        (0, _) => format!(
            "kubelet could not relist pods {relist_errors} times in the last {} (GenericPLEG: Unable to retrieve pods)",
            human_duration(window)
        ),
        (n, false) => format!(
            "kubelet reports PLEG not healthy {n} times in the last {}: last seen active up to {} ago (threshold {})",
            human_duration(window),
            human_duration((max_stall * 1000.0) as u64),
            human_duration((threshold * 1000.0) as u64)
        ),
        (n, true) => format!(
            "kubelet reports PLEG not healthy {n} times in the last {}",
            human_duration(window)
        ),
    };
    let finding = Finding {
        check: CHECK.id.into(),
        key: key::node(CHECK.id),
        severity: if unhealthy.is_empty() {
            Severity::Warning
        } else {
            Severity::Critical
        },
        summary,
        cause,
        remedy: "Fix what the runtime waits on first (the findings this one is caused by: runc-init-hang, \
                 pipe-quota, d-state-processes, runtime-health). Then `systemctl restart containerd` (containers \
                 survive) and, if PLEG stays stuck, `systemctl restart kubelet`. Many exited containers slow every \
                 relist: `crictl rm $(crictl ps -a -q --state exited)`."
            .into(),
        evidence,
        subjects,
        measures: vec![
            Measure::count("pleg_unhealthy_lines", unhealthy.len()),
            Measure::new("pleg_last_active", max_stall, Unit::Seconds).of(threshold),
            Measure::count("relist_errors", relist_errors),
            Measure::count("visible_reasons", reasons.len()),
        ],
        log: first.or(last).map(|_| crate::finding::LogMatch {
            rule: "pleg-not-healthy".into(),
            kind: crate::finding::RuleKind::Temporary,
            condition: None,
            reason: "PLEGNotHealthy".into(),
            source: log.source.clone(),
            count: lines.len() as u64,
            first_ms: first,
            last_ms: last,
        }),
        caused_by: Vec::new(),
        explains: Vec::new(),
    };
    Outcome::found(vec![finding])
}

#[cfg(test)]
mod tests {
    use super::super::common::test_support::{process, snapshot};
    use super::*;
    use crate::model::log::LogRecord;
    use crate::model::runtime::DaemonLog;
    use crate::model::snapshot::Snapshot;

    const NOW: u64 = 1_800_000_000_000;

    fn with_log(lines: &[(u64, &str)]) -> Snapshot {
        let mut s = snapshot(NOW, 10, vec![]);
        s.daemon_logs = Some(vec![DaemonLog {
            daemon: "kubelet".into(),
            source: "journal:kubelet.service".into(),
            lines: lines.len() as u64,
            records: lines
                .iter()
                .map(|(ago, t)| {
                    let mut r = LogRecord::text(*t);
                    r.time_ms = Some(NOW - ago);
                    r
                })
                .collect(),
            ..DaemonLog::default()
        }]);
        s
    }

    fn run_on(s: &Snapshot) -> Outcome {
        run(
            &History::new(std::slice::from_ref(s)).unwrap(),
            &CheckSettings::default(),
        )
    }

    const PLEG: &str = r#"E1122 10:00:00.000000 1 kubelet.go:2359] "Skipping pod synchronization" err="PLEG is not healthy: pleg was last seen active 3m5.5s ago; threshold is 3m0s""#;

    #[test]
    fn pleg_lines_with_a_hung_runc_init_visible() {
        let mut s = with_log(&[(5_000, PLEG), (1_000, PLEG), (20 * 60_000, PLEG)]);
        let mut runc = process(40, 30, "runc:[2:INIT]", 'S');
        runc.wchan = Some("pipe_write".into());
        runc.start_time_ticks = 100;
        s.processes = Some(vec![runc]);
        s.host.uptime_secs = Some(1000.0);
        let out = run_on(&s);
        assert_eq!(out.findings.len(), 1);
        let f = &out.findings[0];
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(
            f.measure("pleg_unhealthy_lines").unwrap().value,
            2.0,
            "the old line is out of the window"
        );
        assert_eq!(f.measure("pleg_last_active").unwrap().value, 185.5);
        assert_eq!(f.measure("pleg_last_active").unwrap().limit, Some(180.0));
        assert_eq!(f.measure("visible_reasons").unwrap().value, 1.0);
        assert!(f.cause.contains("runc:[2:INIT]"), "{}", f.cause);
        assert_eq!(f.subjects[1].pid, Some(40));
        assert_eq!(f.log.as_ref().unwrap().count, 2);
    }

    #[test]
    fn quiet_logs_are_healthy_and_no_log_is_unknown() {
        let out = run_on(&with_log(&[(
            1_000,
            "I1122 kubelet.go:1] \"SyncLoop ADD\"",
        )]));
        assert!(out.findings.is_empty() && !out.inconclusive);
        let out = run_on(&snapshot(NOW, 10, vec![]));
        assert!(out.inconclusive);
    }

    #[test]
    fn relist_errors_alone_are_a_warning() {
        let out = run_on(&with_log(&[(
            1_000,
            r#"E1122 generic.go:205] "GenericPLEG: Unable to retrieve pods" err="rpc error: code = DeadlineExceeded""#,
        )]));
        assert_eq!(out.findings[0].severity, Severity::Warning);
        assert_eq!(out.findings[0].measure("relist_errors").unwrap().value, 1.0);
    }
}
