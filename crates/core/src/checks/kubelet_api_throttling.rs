//! `kubelet-api-throttling`: the kubelet waits on its own client-side rate limiter before
//! talking to the API server. client-go's token bucket (`kubeAPIQPS`, `kubeAPIBurst`) makes
//! every request past the burst wait; a wait over 50 ms is logged (`Waited for 1.19s due to
//! client-side throttling, not priority and fairness, request: GET:...`, client-go
//! rest/request.go; newer releases: `"Waited before sending request" delay="1.19s"
//! reason="client-side throttling, not priority and fairness"`). Status updates and pod
//! starts queue behind it: pods sit Pending or show stale status while their containers run
//! (incident 2f, on the old 5/10 defaults).

use super::common::human_duration;
use super::daemon_logs::{covered_ms, go_duration_secs, log_of, recent, word_after};
use super::{CheckDef, ConditionDef, History, Needs, Outcome};
use crate::config::{CheckSettings, SettingDef};
use crate::finding::{
    Evidence, Finding, LogMatch, Measure, RuleKind, Severity, Subject, SubjectKind, Unit, key,
};
use std::collections::BTreeMap;

pub const CHECK: CheckDef = CheckDef {
    id: "kubelet-api-throttling",
    title: "kubelet throttled by its own API client rate limit (kubeAPIQPS/kubeAPIBurst)",
    doc: include_str!("kubelet_api_throttling.md"),
    needs: Needs {
        daemon_logs: true,
        kubelet: true,
        ..Needs::NONE
    },
    settings: &[WINDOW, WARN_LINES, CRIT_LINES],
    condition: Some(ConditionDef {
        type_: "KubeletAPIThrottled",
        true_reason: "ClientSideThrottling",
        false_reason: "NoClientSideThrottling",
    }),
    run,
};

pub const WINDOW: SettingDef = SettingDef::duration(
    "window",
    10 * 60 * 1000,
    "throttling lines logged within this window before the snapshot are counted",
);
pub const WARN_LINES: SettingDef = SettingDef::count(
    "warn_lines",
    5,
    "warning at this many throttling lines in the window",
);
pub const CRIT_LINES: SettingDef = SettingDef::count(
    "critical_lines",
    100,
    "critical at this many throttling lines in the window",
);

/// The wait a throttling line reports, seconds (`None`: not a throttling line).
pub fn throttle_wait(text: &str) -> Option<f64> {
    if !text.contains("client-side throttling") {
        return None;
    }
    Some(
        word_after(text, "Waited for ")
            .or_else(|| word_after(text, "delay="))
            .and_then(go_duration_secs)
            .unwrap_or(0.0),
    )
}

/// "GET:https://10.0.0.1:6443/api/v1/nodes/n1" → "GET /api/v1/nodes" (the resource, not
/// the object: a summary counts kinds of requests).
fn request_kind(text: &str) -> Option<String> {
    let (verb, url) = if let Some(r) = word_after(text, "request: ") {
        let (v, u) = r.split_once(':')?;
        (v.to_string(), u.to_string())
    } else {
        (
            word_after(text, "verb=")?.to_string(),
            word_after(text, "URL=")?.to_string(),
        )
    };
    let path = url
        .split_once("://")
        .map_or(url.as_str(), |(_, r)| r)
        .split_once('/')
        .map_or("", |(_, p)| p);
    let path = path.split('?').next().unwrap_or(path);
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    // Keep up to the resource: api/v1/namespaces/x/pods/y/status -> api/v1/namespaces/*/pods
    let mut out = Vec::new();
    let mut it = parts.iter().peekable();
    while let Some(p) = it.next() {
        out.push(*p);
        if *p == "namespaces" && it.peek().is_some() {
            it.next();
            out.push("*");
        } else if out.len() >= 3 && !matches!(*p, "api" | "apis" | "v1") && !p.contains('.') {
            break;
        }
    }
    Some(format!("{verb} /{}", out.join("/")))
}

fn run(h: &History, cfg: &CheckSettings) -> Outcome {
    let s = h.current();
    let log = match log_of(s, "kubelet") {
        Ok(l) => l,
        Err(why) => return Outcome::unknown(why),
    };
    let window = cfg.duration_ms(&WINDOW);
    let warn = cfg.count(&WARN_LINES).max(1);
    let crit = cfg.count(&CRIT_LINES).max(warn);
    let lines: Vec<_> = recent(s, log, window)
        .into_iter()
        .filter_map(|r| throttle_wait(&r.text).map(|w| (r, w)))
        .collect();
    let n = lines.len() as u64;
    if n < warn {
        return Outcome::found(Vec::new());
    }
    let max_wait = lines.iter().map(|(_, w)| *w).fold(0.0f64, f64::max);
    let total_wait: f64 = lines.iter().map(|(_, w)| *w).sum();
    let covered = covered_ms(s, log, window);
    let per_min = n as f64 * 60_000.0 / covered as f64;
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    for (r, _) in &lines {
        if let Some(k) = request_kind(&r.text) {
            let e = kinds.entry(k).or_insert(0);
            *e = e.saturating_add(1);
        }
    }
    let mut kinds: Vec<(String, u64)> = kinds.into_iter().collect();
    kinds.sort_by_key(|k| std::cmp::Reverse(k.1));

    let eff = s
        .kubelet
        .as_ref()
        .filter(|k| k.pid.is_some())
        .map(crate::kubelet::effective);
    let mut evidence = vec![Evidence::new(
        log.source.clone(),
        format!(
            "{n} throttling lines in the last {} ({per_min:.1}/min), waits up to {max_wait:.2}s, {total_wait:.1}s in all",
            human_duration(covered)
        ),
    )
    .with_threshold(format!("warning at {warn}, critical at {crit} lines"))];
    for (r, _) in lines.iter().rev().take(2).rev() {
        evidence.push(Evidence::new(log.source.clone(), r.text.clone()));
    }
    if !kinds.is_empty() {
        evidence.push(Evidence::new(
            "throttled requests",
            kinds
                .iter()
                .take(5)
                .map(|(k, c)| format!("{k} ×{c}"))
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    let limits = match &eff {
        Some(e) => {
            evidence.push(Evidence::new(
                "kubelet kubeAPIQPS / kubeAPIBurst",
                format!(
                    "{} ({}) / {} ({})",
                    e.kube_api_qps.value,
                    e.kube_api_qps.origin,
                    e.kube_api_burst.value,
                    e.kube_api_burst.origin
                ),
            ));
            format!(
                "kubeAPIQPS {} / kubeAPIBurst {}",
                e.kube_api_qps.value, e.kube_api_burst.value
            )
        }
        None => {
            "its kubeAPIQPS / kubeAPIBurst (the kubelet's configuration could not be read)".into()
        }
    };
    let mut measures = vec![
        Measure::count("throttled_lines", n).of(warn),
        Measure::new("max_wait", max_wait, Unit::Seconds),
        Measure::new("throttled_per_minute", per_min, Unit::Count),
    ];
    if let Some(e) = &eff {
        measures.push(Measure::new(
            "kube_api_qps",
            e.kube_api_qps.value,
            Unit::Count,
        ));
        measures.push(Measure::count("kube_api_burst", e.kube_api_burst.value));
    }
    let first = lines.first().and_then(|(r, _)| r.time_ms);
    let last = lines.last().and_then(|(r, _)| r.time_ms);
    let finding = Finding {
        check: CHECK.id.into(),
        key: key::node(CHECK.id),
        severity: if n >= crit {
            Severity::Critical
        } else {
            Severity::Warning
        },
        summary: format!(
            "kubelet waited on its own API rate limit {n} times in the last {} (up to {max_wait:.2}s; {limits})",
            human_duration(covered)
        ),
        cause: format!(
            "client-go in the kubelet lets at most {limits} requests through per second (a token bucket); every \
             request past it waits, and waits over 50 ms are logged. Node and pod status updates, pod starts and \
             secret/configmap reads queue up: pods show Pending or stale status while their containers run \
             (incident 2f)."
        ),
        remedy: "Raise the limits in the kubelet configuration: `kubeAPIQPS: 50` and `kubeAPIBurst: 100` (the \
                 defaults since 1.27; incident 2f's fix used 30/40), or `--kube-api-qps` / `--kube-api-burst`, then \
                 restart the kubelet. Check that the API server has capacity (priority and fairness) for the \
                 node count times the new rate."
            .into(),
        evidence,
        subjects: vec![match s.kubelet.as_ref().and_then(|k| k.pid).and_then(|p| s.process(p)) {
            Some(p) => Subject::process(p),
            None => Subject::new(SubjectKind::Node),
        }],
        measures,
        log: Some(LogMatch {
            rule: "kubelet-client-throttling".into(),
            kind: RuleKind::Temporary,
            condition: None,
            reason: "ClientSideThrottling".into(),
            source: log.source.clone(),
            count: n,
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
    use super::super::common::test_support::snapshot;
    use super::*;
    use crate::model::log::LogRecord;
    use crate::model::runtime::DaemonLog;

    const NOW: u64 = 1_800_000_000_000;
    const OLD: &str = "I1122 10:21:33.123456 1234 request.go:601] Waited for 1.19s due to client-side throttling, not priority and fairness, request: GET:https://10.0.0.1:6443/api/v1/namespaces/shop/pods/cart-1";
    const NEW: &str = r#"I1122 10:21:33.123456 1234 request.go:752] "Waited before sending request" delay="2.5s" reason="client-side throttling, not priority and fairness" verb="PATCH" URL="https://10.0.0.1:6443/api/v1/nodes/n1/status?timeout=10s""#;

    fn with_lines(lines: Vec<(u64, &str)>) -> crate::model::snapshot::Snapshot {
        let mut s = snapshot(NOW, 10, vec![]);
        s.daemon_logs = Some(vec![DaemonLog {
            daemon: "kubelet".into(),
            source: "journal:kubelet.service".into(),
            lines: 100,
            since_ms: Some(NOW - 3_600_000),
            records: lines
                .into_iter()
                .map(|(ago, t)| {
                    let mut r = LogRecord::text(t);
                    r.time_ms = Some(NOW - ago);
                    r
                })
                .collect(),
            ..DaemonLog::default()
        }]);
        s
    }

    #[test]
    fn both_line_formats_count_with_their_waits() {
        assert_eq!(throttle_wait(OLD), Some(1.19));
        assert_eq!(throttle_wait(NEW), Some(2.5));
        assert_eq!(throttle_wait("Waited for 1s for something else"), None);
        assert_eq!(
            request_kind(OLD).as_deref(),
            Some("GET /api/v1/namespaces/*/pods")
        );
        assert_eq!(request_kind(NEW).as_deref(), Some("PATCH /api/v1/nodes"));
    }

    #[test]
    fn enough_lines_in_the_window_warn() {
        let mut lines: Vec<(u64, &str)> = (0..6).map(|i| (1_000 * i + 1, OLD)).collect();
        lines.push((2 * 3_600_000, NEW));
        let s = with_lines(lines);
        let out = run(
            &History::new(std::slice::from_ref(&s)).unwrap(),
            &CheckSettings::default(),
        );
        assert_eq!(out.findings.len(), 1);
        let f = &out.findings[0];
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.measure("throttled_lines").unwrap().value, 6.0);
        assert_eq!(f.measure("max_wait").unwrap().value, 1.19);
        assert!((f.measure("throttled_per_minute").unwrap().value - 0.6).abs() < 1e-9);
        let few = with_lines(vec![(1_000, OLD)]);
        assert!(
            run(
                &History::new(std::slice::from_ref(&few)).unwrap(),
                &CheckSettings::default()
            )
            .findings
            .is_empty()
        );
    }
}
