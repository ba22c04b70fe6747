//! `image-pull-serialized`: one slow image pull holds every other pod on the node. The
//! kubelet pulls images one at a time by default (`serializeImagePulls: true`), so a pod
//! whose image is small waits in `ContainerCreating` behind another pod's pull from a slow
//! registry (incident 2d).
//!
//! A pull in progress shows three ways on the node: containerd's content ingests
//! (`io.containerd.content.v1.content/ingest/<id>/data` growing between samples), the
//! runtime's log (`PullImage "X"` without `PullImage "X" returns ...`, containerd's CRI
//! plugin, pkg/cri/server/instrumented_service.go) and the kubelet's (`Pulling image "X"`
//! without `Successfully pulled image "X"`). Pods that wait are those whose sandbox exists
//! but which have no container yet (CRI `ListContainers`).

use super::common::human_duration;
use super::daemon_logs::quoted_after;
use super::disk_pressure::human_bytes;
use super::{CheckDef, ConditionDef, History, Needs, Outcome};
use crate::config::{CheckSettings, SettingDef};
use crate::finding::{Evidence, Finding, Measure, Severity, Subject, SubjectKind, Unit, key};
use crate::model::runtime::{Ingest, Pod};
use crate::model::snapshot::Snapshot;
use std::collections::BTreeMap;

pub const CHECK: CheckDef = CheckDef {
    id: "image-pull-serialized",
    title: "a slow image pull in progress that other pods wait behind (serialized pulls)",
    doc: include_str!("image_pull_serialized.md"),
    needs: Needs {
        runtime: true,
        kubelet: true,
        daemon_logs: true,
        history: true,
        ..Needs::NONE
    },
    settings: &[THRESHOLD, SLOW_RATE, CRITICAL_PODS],
    condition: Some(ConditionDef {
        type_: "ImagePullsSerialized",
        true_reason: "SlowImagePullBlocksPods",
        false_reason: "NoBlockingImagePull",
    }),
    run,
};

pub const THRESHOLD: SettingDef = SettingDef::duration(
    "threshold",
    60_000,
    "a pull in progress this long (and slower than slow_rate) is reported",
);
pub const SLOW_RATE: SettingDef = SettingDef::count(
    "slow_rate",
    1 << 20,
    "bytes per second below which a pull in progress counts as slow",
);
pub const CRITICAL_PODS: SettingDef = SettingDef::count(
    "critical_pods",
    5,
    "critical when this many other pods wait behind the slow pull",
);

/// A pull the logs show in progress: the image and when it started.
#[derive(Debug, Clone, PartialEq)]
pub struct LogPull {
    pub image: String,
    pub since_ms: Option<u64>,
    pub source: String,
    /// The pod the kubelet named (`pod="ns/name"`), when its line has one.
    pub pod: Option<String>,
}

/// Pulls started and not finished in the kubelet's and the runtime's logs, oldest first.
pub fn pulls_in_progress(s: &Snapshot) -> Vec<LogPull> {
    let mut open: BTreeMap<String, LogPull> = BTreeMap::new();
    let logs = s.daemon_logs.as_deref().unwrap_or(&[]);
    for log in logs {
        for r in &log.records {
            let t = &r.text;
            if let Some(img) = quoted_after(t, "PullImage ") {
                if t.contains("returns image reference") || t.contains(" failed") {
                    open.remove(&img);
                } else {
                    open.entry(img.clone()).or_insert(LogPull {
                        image: img,
                        since_ms: r.time_ms,
                        source: log.source.clone(),
                        pod: None,
                    });
                }
            } else if let Some(img) = quoted_after(t, "Successfully pulled image ")
                .or_else(|| quoted_after(t, "Failed to pull image "))
                .or_else(|| {
                    quoted_after(t, "Container image ").filter(|_| t.contains("already present"))
                })
            {
                open.remove(&img);
            } else if let Some(img) = quoted_after(t, "Pulling image ").or_else(|| {
                t.contains("\"Pulling image\"")
                    .then(|| quoted_after(t, "image="))
                    .flatten()
            }) {
                let pod = quoted_after(t, "pod=");
                let e = open.entry(img.clone()).or_insert(LogPull {
                    image: img,
                    since_ms: r.time_ms,
                    source: log.source.clone(),
                    pod: None,
                });
                if e.pod.is_none() {
                    e.pod = pod;
                }
            }
        }
    }
    let mut v: Vec<LogPull> = open.into_values().collect();
    v.sort_by_key(|p| p.since_ms.unwrap_or(0));
    v
}

/// An ingest and how much it grew since the earliest sample.
struct Progress<'a> {
    ingest: &'a Ingest,
    grew: Option<u64>,
}

fn run(h: &History, cfg: &CheckSettings) -> Outcome {
    let s = h.current();
    let Some(rt) = &s.runtime else {
        return Outcome::unknown(s.not_collected("the container runtime"));
    };
    let logs_seen = s
        .daemon_logs
        .as_ref()
        .is_some_and(|l| l.iter().any(|l| l.lines > 0 || !l.records.is_empty()));
    if rt.ingests.is_none() && !logs_seen {
        return Outcome::unknown(
            "image pulls cannot be seen: no containerd content store (ingest directory) and no kubelet or runtime log",
        );
    }
    let threshold_ms = cfg.duration_ms(&THRESHOLD);
    let slow_rate = cfg.count(&SLOW_RATE);
    let crit_pods = cfg.count(&CRITICAL_PODS).max(1);
    let now = s.collected_at_ms;

    let earlier = h.earliest();
    let span_ms = earlier.map(|e| now.saturating_sub(e.collected_at_ms));
    let ingests: Vec<Progress> = rt
        .ingests
        .iter()
        .flatten()
        .map(|i| Progress {
            ingest: i,
            grew: earlier
                .and_then(|e| e.runtime.as_ref())
                .and_then(|r| r.ingests.as_ref())
                .and_then(|old| old.iter().find(|o| o.id == i.id))
                .map(|o| i.bytes.saturating_sub(o.bytes)),
        })
        .collect();
    let log_pulls = pulls_in_progress(s);

    // The slow pull: named by the logs when they name one, else by the ingests alone.
    let started = log_pulls
        .iter()
        .filter_map(|p| p.since_ms)
        .chain(ingests.iter().filter_map(|i| i.ingest.started_at_ms))
        .min();
    let Some(started) = started else {
        return Outcome::found(Vec::new());
    };
    let age_ms = now.saturating_sub(started);
    if age_ms < threshold_ms {
        return Outcome::found(Vec::new());
    }
    let bytes: u64 = ingests
        .iter()
        .fold(0u64, |a, i| a.saturating_add(i.ingest.bytes));
    let total: Option<u64> = ingests
        .iter()
        .try_fold(0u64, |a, i| Some(a.saturating_add(i.ingest.total?)));
    // Rate: the growth between samples, or the average since the start when that is more.
    // containerd copies into `data` through a 1 MiB buffer (content.Copy), so over a short
    // window a slow download can show no growth at all; the average then says how slow.
    let average = (!ingests.is_empty()).then(|| bytes as f64 * 1000.0 / age_ms.max(1) as f64);
    let windowed = match (
        span_ms.filter(|s| *s > 0),
        ingests.iter().all(|i| i.grew.is_some()),
    ) {
        (Some(span), true) if !ingests.is_empty() => {
            let grew: u64 = ingests
                .iter()
                .filter_map(|i| i.grew)
                .fold(0u64, u64::saturating_add);
            Some(grew as f64 * 1000.0 / span as f64)
        }
        _ => None,
    };
    let rate = match (windowed, average) {
        (Some(w), Some(a)) => Some(w.max(a)),
        (w, a) => w.or(a),
    };
    if rate.is_some_and(|r| r >= slow_rate as f64) {
        return Outcome::found(Vec::new());
    }
    let eff = s
        .kubelet
        .as_ref()
        .filter(|k| k.pid.is_some())
        .map(crate::kubelet::effective);
    let serialized = eff.as_ref().is_none_or(|e| e.serialize_image_pulls.value);
    let waiting: Vec<&Pod> = s
        .workloads
        .as_ref()
        .filter(|w| w.source == "cri")
        .map(|w| {
            w.pods
                .iter()
                .filter(|p| p.state.as_deref() != Some("notready"))
                .filter(|p| {
                    !w.containers.iter().any(|c| {
                        c.pod_uid.as_deref() == Some(p.uid.as_str())
                            || (c.sandbox_id.is_some() && c.sandbox_id == p.sandbox_id)
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let pulling_pods = log_pulls.iter().filter(|p| p.pod.is_some()).count();
    // Pods waiting besides the ones pulling (each pull in progress belongs to one of them).
    let blocked = (waiting.len() as u64).saturating_sub(log_pulls.len().max(1) as u64);
    let images: Vec<&str> = log_pulls.iter().map(|p| p.image.as_str()).collect();
    let name = match images.as_slice() {
        [] => ingests.first().map_or("an image".to_string(), |i| {
            format!("content {}", i.ingest.reference)
        }),
        [one] => (*one).to_string(),
        many => many.join(", "),
    };
    let severity = if !serialized || blocked == 0 {
        Severity::Info
    } else if blocked >= crit_pods {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let rate_text = rate.map_or("rate unknown".to_string(), |r| {
        format!("{}/s", human_bytes(r as u64))
    });
    let progress = match total {
        Some(t) if t > 0 => format!("{} of {}", human_bytes(bytes), human_bytes(t)),
        _ => human_bytes(bytes),
    };
    let mut summary = format!(
        "pull of {name} in progress for {} at {rate_text} ({progress} so far)",
        human_duration(age_ms)
    );
    if serialized && blocked > 0 {
        summary.push_str(&format!(
            "; pulls are serialized: {blocked} other pod{} wait{} behind it",
            if blocked == 1 { "" } else { "s" },
            if blocked == 1 { "s" } else { "" }
        ));
    }

    let mut evidence = Vec::new();
    for p in &log_pulls {
        evidence.push(Evidence::new(
            p.source.clone(),
            format!(
                "pull of {:?} started{} and not finished{}",
                p.image,
                p.since_ms.map_or(String::new(), |t| format!(
                    " {} ago",
                    human_duration(now.saturating_sub(t))
                )),
                p.pod
                    .as_deref()
                    .map_or(String::new(), |pod| format!(" (pod {pod})"))
            ),
        ));
    }
    let dir = rt.ingest_dir.as_deref().unwrap_or("content store ingest");
    for i in &ingests {
        let grew = match (i.grew, span_ms) {
            (Some(g), Some(span)) => format!(", +{} in {}", human_bytes(g), human_duration(span)),
            _ => String::new(),
        };
        evidence.push(
            Evidence::new(
                format!("{dir}/{}", i.ingest.id),
                format!(
                    "{} ({}{}{grew})",
                    i.ingest.reference,
                    human_bytes(i.ingest.bytes),
                    i.ingest
                        .total
                        .map_or(String::new(), |t| format!(" of {}", human_bytes(t)))
                ),
            )
            .with_threshold(format!("slow below {}/s", human_bytes(slow_rate))),
        );
    }
    match &eff {
        Some(e) => evidence.push(Evidence::new(
            "kubelet serializeImagePulls",
            format!(
                "{} ({}){}",
                e.serialize_image_pulls.value,
                e.serialize_image_pulls.origin,
                e.max_parallel_image_pulls
                    .as_ref()
                    .map_or(String::new(), |m| format!(
                        ", maxParallelImagePulls {}",
                        m.value
                    ))
            ),
        )),
        None => evidence.push(Evidence::new(
            "kubelet serializeImagePulls",
            "kubelet configuration not read: assumed the default, true",
        )),
    }
    let mut subjects = Vec::new();
    for p in &waiting {
        subjects.push(Subject {
            pod: Some(p.uid.clone()),
            namespace: Some(p.namespace.clone()).filter(|n| !n.is_empty()),
            pod_name: Some(p.name.clone()).filter(|n| !n.is_empty()),
            ..Subject::new(SubjectKind::Pod)
        });
    }
    if !waiting.is_empty() {
        evidence.push(Evidence::new(
            "CRI ListPodSandbox / ListContainers",
            format!(
                "pods with a sandbox and no container yet: {}",
                waiting
                    .iter()
                    .map(|p| format!("{}/{}", p.namespace, p.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let _ = pulling_pods;
    let key_ref = images
        .first()
        .map(|s| s.to_string())
        .or_else(|| ingests.first().map(|i| i.ingest.reference.clone()))
        .unwrap_or_default();
    let mut measures = vec![
        Measure::new("pull_age", age_ms as f64 / 1000.0, Unit::Seconds)
            .of(threshold_ms as f64 / 1000.0),
        Measure::new("pulled", bytes as f64, Unit::Bytes).of_opt(total),
        Measure::count("waiting_pods", blocked),
        Measure::count("serialized", u64::from(serialized)),
        Measure::count(
            "pulls_in_progress",
            log_pulls.len().max(usize::from(!ingests.is_empty())),
        ),
    ];
    if let Some(r) = rate {
        measures.push(Measure::new("pull_rate", r, Unit::Bytes).of(slow_rate));
    }
    Outcome::found(vec![Finding {
        check: CHECK.id.into(),
        key: key::image(CHECK.id, &key_ref),
        severity,
        summary,
        cause: if serialized {
            "The kubelet pulls images one at a time (serializeImagePulls: true, the default): while this pull crawls, \
             every other pod that needs an image waits in ContainerCreating, however small its image (incident 2d)."
                .into()
        } else {
            "This pull is slow; pulls are parallel, so it holds only its own pod.".into()
        },
        remedy: "Find why the registry is slow (its location, rate limits, the node's egress); pull through a \
                 registry mirror in or near the cluster, or pre-pull large images. Let pulls run in parallel: \
                 `serializeImagePulls: false` with `maxParallelImagePulls: 5` in the kubelet configuration (1.27+), \
                 then restart the kubelet."
            .into(),
        evidence,
        subjects,
        measures,
        log: None,
        caused_by: Vec::new(),
        explains: Vec::new(),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::log::LogRecord;
    use crate::model::runtime::{Container, DaemonLog, Runtime, Workloads};

    const NOW: u64 = 1_800_000_000_000;

    fn ingest(bytes: u64) -> Ingest {
        Ingest {
            id: "abc".into(),
            reference: "k8s.io/1/layer-sha256:1111".into(),
            bytes,
            total: Some(50 << 20),
            started_at_ms: Some(NOW - 120_000),
        }
    }

    fn sample(at: u64, bytes: u64, lines: &[&str], pods: usize) -> Snapshot {
        let mk_pod = |i: usize| Pod {
            uid: format!("uid-{i}"),
            namespace: "shop".into(),
            name: format!("web-{i}"),
            sandbox_id: Some(format!("sb-{i}")),
            state: Some("ready".into()),
            created_at_ms: None,
        };
        Snapshot {
            collected_at_ms: at,
            runtime: Some(Runtime {
                ingests: Some(vec![ingest(bytes)]),
                ingest_dir: Some(
                    "/var/lib/containerd/io.containerd.content.v1.content/ingest".into(),
                ),
                ..Runtime::default()
            }),
            workloads: Some(Workloads {
                source: "cri".into(),
                pods: (0..pods)
                    .map(mk_pod)
                    .chain([Pod {
                        uid: "busy".into(),
                        sandbox_id: Some("sb-busy".into()),
                        ..mk_pod(99)
                    }])
                    .collect(),
                containers: vec![Container {
                    id: "c1".into(),
                    name: "app".into(),
                    sandbox_id: Some("sb-busy".into()),
                    ..Container::default()
                }],
                fallback_reason: None,
            }),
            daemon_logs: Some(vec![DaemonLog {
                daemon: "containerd".into(),
                source: "file:/var/log/containerd.log".into(),
                lines: lines.len() as u64,
                records: lines
                    .iter()
                    .map(|t| {
                        let mut r = LogRecord::text(*t);
                        r.time_ms = Some(NOW - 110_000);
                        r
                    })
                    .collect(),
                ..DaemonLog::default()
            }]),
            ..Snapshot::default()
        }
    }

    const START: &str =
        r#"time="2026-11-22T10:00:00Z" level=info msg="PullImage \"reg.example:5000/big:1\"""#;
    const DONE: &str = r#"time="2026-11-22T10:00:09Z" level=info msg="PullImage \"reg.example:5000/big:1\" returns image reference \"sha256:aa\"""#;

    fn run_on(samples: &[Snapshot]) -> Outcome {
        run(&History::new(samples).unwrap(), &CheckSettings::default())
    }

    #[test]
    fn a_slow_named_pull_with_pods_waiting_behind_it() {
        let a = sample(NOW - 2_000, 10 << 20, &[START], 3);
        let b = sample(NOW, (10 << 20) + 200_000, &[START], 3);
        let out = run_on(&[a, b]);
        assert_eq!(out.findings.len(), 1, "{out:?}");
        let f = &out.findings[0];
        assert_eq!(f.key, "image-pull-serialized/image:reg.example:5000/big:1");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.measure("waiting_pods").unwrap().value, 2.0);
        assert_eq!(f.measure("pull_rate").unwrap().value, 100_000.0);
        assert_eq!(f.measure("serialized").unwrap().value, 1.0);
        assert!(
            f.summary.contains("reg.example:5000/big:1"),
            "{}",
            f.summary
        );
        assert_eq!(f.subjects.len(), 3, "the three pods without containers");
    }

    #[test]
    fn fast_finished_and_young_pulls_are_fine() {
        let a = sample(NOW - 2_000, 10 << 20, &[START], 3);
        let b = sample(NOW, 20 << 20, &[START], 3);
        assert!(run_on(&[a, b]).findings.is_empty(), "5 MiB/s is not slow");
        let mut done = sample(NOW, 10 << 20, &[START, DONE], 3);
        done.runtime.as_mut().unwrap().ingests = Some(vec![]);
        assert!(run_on(&[done]).findings.is_empty());
        let mut young = sample(NOW, 1, &[], 3);
        young.runtime.as_mut().unwrap().ingests.as_mut().unwrap()[0].started_at_ms =
            Some(NOW - 5_000);
        assert!(run_on(&[young]).findings.is_empty());
    }

    #[test]
    fn nobody_waiting_is_info_and_nothing_to_see_is_unknown() {
        let s = sample(NOW, 1 << 20, &[START], 1);
        let out = run_on(&[s]);
        assert_eq!(out.findings[0].severity, Severity::Info);
        let s = Snapshot {
            runtime: Some(Runtime::default()),
            ..Snapshot::default()
        };
        assert!(run_on(&[s]).inconclusive);
    }

    #[test]
    fn kubelet_lines_name_pulls_too() {
        let s = Snapshot {
            daemon_logs: Some(vec![DaemonLog {
                daemon: "kubelet".into(),
                source: "journal:kubelet.service".into(),
                lines: 3,
                records: vec![
                    LogRecord::text(r#"I1122 event.go:1] "Pulling image \"a:1\"""#),
                    LogRecord::text(
                        r#"I1122 kuberuntime_image.go:1] "Pulling image" image="b:2" pod="shop/web-1""#,
                    ),
                    LogRecord::text(r#"I1122 event.go:1] Successfully pulled image "a:1" in 2s"#),
                ],
                ..DaemonLog::default()
            }]),
            ..Snapshot::default()
        };
        let p = pulls_in_progress(&s);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].image, "b:2");
        assert_eq!(p[0].pod.as_deref(), Some("shop/web-1"));
    }
}
