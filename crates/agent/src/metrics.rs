//! `/metrics`: Prometheus text format 0.0.4 (what `promtool check metrics` and every
//! Prometheus accept; prometheus-client's OpenMetrics encoder fails promtool 2.42). Prefix
//! `node_doctor_`; labels only from closed sets (check, severity, collector, source, rule,
//! result, kind, type, status) — never pid, uid, pod, container or path, which belong in
//! the finding, the condition message and the Event note.
//!
//! Every (check, severity) pair is exported, 0 when there is no finding, so alerts resolve
//! without `absent()`.

use node_doctor_core::finding::Severity;
use node_doctor_core::model::Snapshot;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;

type Labels = Vec<(String, String)>;
type FGauge = Gauge<f64, AtomicU64>;

fn l(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

pub struct Metrics {
    pub registry: Registry,
    check_findings: Family<Labels, Gauge>,
    check_up: Family<Labels, Gauge>,
    check_duration: Family<Labels, FGauge>,
    check_last_run: Family<Labels, FGauge>,
    check_runs: Family<Labels, Counter>,
    collector_duration: Family<Labels, FGauge>,
    collector_success: Family<Labels, Gauge>,
    unavailable: Family<Labels, Counter>,
    log_source_up: Family<Labels, Gauge>,
    log_lines: Family<Labels, Counter>,
    log_matches: Family<Labels, Counter>,
    publish_requests: Family<Labels, Counter>,
    publish_last_success: Family<Labels, FGauge>,
    event_queue_length: Gauge,
    events_dropped: Family<Labels, Counter>,
    condition: Family<Labels, Gauge>,
    blocked_calls: Gauge,
    history_samples: Gauge,
    node: Family<Labels, FGauge>,
}

impl Metrics {
    pub fn new(version: &str, revision: &str) -> Metrics {
        let mut registry = Registry::with_prefix("node_doctor");
        let m = Metrics {
            check_findings: Family::default(),
            check_up: Family::default(),
            check_duration: Family::default(),
            check_last_run: Family::default(),
            check_runs: Family::default(),
            collector_duration: Family::default(),
            collector_success: Family::default(),
            unavailable: Family::default(),
            log_source_up: Family::default(),
            log_lines: Family::default(),
            log_matches: Family::default(),
            publish_requests: Family::default(),
            publish_last_success: Family::default(),
            event_queue_length: Gauge::default(),
            events_dropped: Family::default(),
            condition: Family::default(),
            blocked_calls: Gauge::default(),
            history_samples: Gauge::default(),
            node: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "check_findings",
            "Active findings by check and severity (0 when none)",
            m.check_findings.clone(),
        );
        registry.register(
            "check_up",
            "1 when the check's last run could evaluate (not inconclusive)",
            m.check_up.clone(),
        );
        registry.register(
            "check_duration_seconds",
            "Wall time of the check's last run",
            m.check_duration.clone(),
        );
        registry.register(
            "check_last_run_timestamp_seconds",
            "When the check last ran (Unix time)",
            m.check_last_run.clone(),
        );
        // Counters: registered without `_total` (the encoder adds it; prometheus-client
        // panics in debug builds on a counter named `..._total`).
        registry.register(
            "check_runs",
            "Runs of each check by result (ok, unknown)",
            m.check_runs.clone(),
        );
        registry.register(
            "collector_duration_seconds",
            "Wall time of the collector's last run",
            m.collector_duration.clone(),
        );
        registry.register(
            "collector_success",
            "1 when the collector's last run read everything (0: skipped at the deadline, or a read timed out)",
            m.collector_success.clone(),
        );
        registry.register(
            "unavailable",
            "Host files that could not be read, by kind",
            m.unavailable.clone(),
        );
        registry.register(
            "log_source_up",
            "1 while the log source is read without error",
            m.log_source_up.clone(),
        );
        registry.register(
            "log_lines",
            "Lines read from each log source",
            m.log_lines.clone(),
        );
        registry.register(
            "log_matches",
            "Lines that matched each log rule",
            m.log_matches.clone(),
        );
        registry.register(
            "publish_requests",
            "Requests to the API server by target and result",
            m.publish_requests.clone(),
        );
        registry.register(
            "publish_last_success_timestamp_seconds",
            "When a request to the target last succeeded (Unix time)",
            m.publish_last_success.clone(),
        );
        registry.register(
            "event_queue_length",
            "Events waiting to be posted",
            m.event_queue_length.clone(),
        );
        registry.register(
            "events_dropped",
            "Events dropped (the queue was full)",
            m.events_dropped.clone(),
        );
        registry.register(
            "condition",
            "1 for each condition type's current status",
            m.condition.clone(),
        );
        registry.register(
            "blocked_calls",
            "Host calls abandoned while blocked in the kernel (a dead mount, a stuck process)",
            m.blocked_calls.clone(),
        );
        registry.register(
            "history_samples",
            "Samples kept in the history ring",
            m.history_samples.clone(),
        );
        registry.register(
            "node",
            "The node-level values the checks compare, by name (tasks, tasks_limit, zombie_processes, file_handles, file_handles_limit, pipe_user_pages_max, pipe_user_pages_limit, memory_available_bytes, memory_total_bytes, memory_psi_some_avg10, memory_psi_full_avg10, oom_kills, mounts)",
            m.node.clone(),
        );
        let build: Family<Labels, Gauge> = Family::default();
        build
            .get_or_create(&l(&[("version", version), ("revision", revision)]))
            .set(1);
        registry.register("build_info", "Version of node-doctor (always 1)", build);
        Metrics { registry, ..m }
    }

    /// The outcome of one run of `check`.
    pub fn check_run(
        &self,
        check: &str,
        findings: &[node_doctor_core::finding::Finding],
        inconclusive: bool,
        ms: f64,
        now_ms: u64,
    ) {
        for sev in Severity::ALL {
            let n = findings.iter().filter(|f| f.severity == sev).count();
            self.check_findings
                .get_or_create(&l(&[("check", check), ("severity", sev.as_str())]))
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        self.check_up
            .get_or_create(&l(&[("check", check)]))
            .set(i64::from(!inconclusive));
        self.check_duration
            .get_or_create(&l(&[("check", check)]))
            .set(ms / 1000.0);
        self.check_last_run
            .get_or_create(&l(&[("check", check)]))
            .set(now_ms as f64 / 1000.0);
        self.check_runs
            .get_or_create(&l(&[
                ("check", check),
                ("result", if inconclusive { "unknown" } else { "ok" }),
            ]))
            .inc();
    }

    /// The collectors of one sample, and what it could not read.
    pub fn sample(&self, s: &Snapshot) {
        // Every collector the sample called for: those that ran (a timing) and those that
        // did not or not wholly (skipped at the deadline, a read timed out).
        let mut called: BTreeSet<&str> = s.timings.keys().map(String::as_str).collect();
        called.extend(s.incomplete_collectors.iter().map(String::as_str));
        for c in called {
            let ms = s.timings.get(c).copied();
            let whole = ms.is_some() && !s.incomplete_collectors.iter().any(|i| i == c);
            self.collector_success
                .get_or_create(&l(&[("collector", c)]))
                .set(i64::from(whole));
            if let Some(ms) = ms {
                self.collector_duration
                    .get_or_create(&l(&[("collector", c)]))
                    .set(ms / 1000.0);
            }
        }
        for u in &s.unavailable {
            self.unavailable
                .get_or_create(&l(&[("kind", u.kind.as_str())]))
                .inc();
        }
        for (name, v) in node_doctor_core::checks::node_values::node_values(s) {
            self.node.get_or_create(&l(&[("name", name)])).set(v);
        }
        self.blocked_calls
            .set(i64::try_from(node_doctor_host::blocking::blocked_now()).unwrap_or(i64::MAX));
    }

    pub fn log_source(&self, source: &str, up: bool, new_lines: u64) {
        self.log_source_up
            .get_or_create(&l(&[("source", source)]))
            .set(i64::from(up));
        self.log_lines
            .get_or_create(&l(&[("source", source)]))
            .inc_by(new_lines);
    }

    pub fn log_match(&self, source: &str, rule: &str, n: u64) {
        self.log_matches
            .get_or_create(&l(&[("source", source), ("rule", rule)]))
            .inc_by(n);
    }

    pub fn publish(&self, target: &str, result: &str, now_ms: u64) {
        self.publish_requests
            .get_or_create(&l(&[("target", target), ("result", result)]))
            .inc();
        if result == "ok" {
            self.publish_last_success
                .get_or_create(&l(&[("target", target)]))
                .set(now_ms as f64 / 1000.0);
        }
    }

    pub fn events(&self, queued: usize, dropped_now: u64) {
        self.event_queue_length
            .set(i64::try_from(queued).unwrap_or(i64::MAX));
        if dropped_now > 0 {
            self.events_dropped
                .get_or_create(&l(&[("reason", "queue_full")]))
                .inc_by(dropped_now);
        }
    }

    pub fn condition(&self, type_: &str, status: &str) {
        for s in ["True", "False", "Unknown"] {
            self.condition
                .get_or_create(&l(&[("type", type_), ("status", s)]))
                .set(i64::from(s == status));
        }
    }

    pub fn history(&self, n: usize) {
        self.history_samples
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Text format 0.0.4.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
