//! `kubelet-config`: the kubelet's settings that have taken nodes down, read the way the
//! kubelet reads them (flags over drop-ins over the `--config` file over the defaults of its
//! version, [`crate::kubelet`]) and judged against this node: its pod count, its filesystems,
//! its memory, its `pid_max`. Each finding names the setting, its value, where the value
//! came from and its default.

use super::daemon_logs::log_of;
use super::disk_pressure::human_bytes;
use super::{CheckDef, History, Needs, Outcome};
use crate::config::{CheckSettings, SettingDef};
use crate::finding::{Evidence, Finding, Measure, Severity, Subject, SubjectKind, Unit, key};
use crate::kubelet::{DEFAULT_EVICTION_HARD, Effective, Origin, effective, sysctl_is_namespaced};
use crate::model::fs::{FilesystemUsage, Role};
use crate::model::runtime::Kubelet;
use crate::model::snapshot::Snapshot;

pub const CHECK: CheckDef = CheckDef {
    id: "kubelet-config",
    title: "risky kubelet settings: API QPS, serialized pulls, no pod PID limit, eviction and image GC thresholds, unsafe sysctls",
    doc: include_str!("kubelet_config.md"),
    needs: Needs {
        kubelet: true,
        runtime: true,
        filesystems: true,
        ..Needs::NONE
    },
    settings: &[MIN_API_QPS, BUSY_PODS],
    // A configuration risk is not a node state a remediation tool should act on (replacing
    // the node keeps the same configuration): findings go out as Events and metrics only.
    condition: None,
    run,
};

pub const MIN_API_QPS: SettingDef = SettingDef::count(
    "min_api_qps",
    10,
    "kubeAPIQPS below this is reported (5, the default before 1.27, throttled busy nodes)",
);
pub const BUSY_PODS: SettingDef = SettingDef::count(
    "busy_pods",
    30,
    "with this many pods or more a low kubeAPIQPS is a warning (info below)",
);

fn run(h: &History, cfg: &CheckSettings) -> Outcome {
    let s = h.current();
    let Some(k) = &s.kubelet else {
        return Outcome::unknown(s.not_collected("the kubelet"));
    };
    if k.pid.is_none() {
        return Outcome::unknown("no kubelet process on this node (no process named kubelet)");
    }
    if k.args.is_none() {
        let pid = k.pid.unwrap_or(0);
        // Reading the cmdline of a D-state process can block on its mmap lock
        // (`/proc/PID/cmdline` takes it): the collector does not try. Say which case it is.
        let why = match s.process(pid).map(|p| p.state) {
            Some(crate::model::ProcState::DiskSleep) => {
                "it is in D state: not read, the read can hang"
            }
            _ => "not readable: not permitted, or it exited during the scan",
        };
        return Outcome::unknown(format!(
            "kubelet (pid {pid}): its command line could not be read ({why})"
        ));
    }
    let mut k = k.clone();
    if k.version.is_none()
        && let Ok(log) = log_of(s, "kubelet")
        && let Some(v) = crate::kubelet::version_from_log(&log.records)
    {
        k.version = Some(v);
        k.version_source = Some(format!("kubelet log ({})", log.source));
    }
    let e = effective(&k);
    let mut out = Outcome::default();
    let subject = kubelet_subject(s, &k);
    let ctx = Ctx {
        s,
        k: &k,
        e: &e,
        subject,
    };
    if !e.problems.is_empty() {
        out.findings.push(ctx.finding(
            "config",
            Severity::Warning,
            format!("kubelet configuration has {} problem(s): {}", e.problems.len(), e.problems.join("; ")),
            "Values the kubelet could not parse are not what it runs with: it either refused the file at start-up or \
             uses the defaults for them."
                .into(),
            "Fix the file (`kubelet --config FILE --v=2` validates it), then restart the kubelet.".into(),
            e.problems
                .iter()
                .map(|p| Evidence::new("kubelet configuration", p.clone()))
                .collect(),
            vec![Measure::count("problems", e.problems.len())],
        ));
    }
    api_qps(&ctx, cfg, &mut out);
    image_pulls(&ctx, &mut out);
    pod_pids(&ctx, &mut out);
    eviction(&ctx, &mut out);
    image_gc(&ctx, &mut out);
    sysctls(&ctx, &mut out);
    out
}

struct Ctx<'a> {
    s: &'a Snapshot,
    k: &'a Kubelet,
    e: &'a Effective,
    subject: Subject,
}

fn kubelet_subject(s: &Snapshot, k: &Kubelet) -> Subject {
    match k.pid.and_then(|p| s.process(p)) {
        Some(p) => Subject::process(p),
        None => Subject {
            pid: k.pid,
            comm: Some("kubelet".into()),
            ..Subject::new(SubjectKind::Process)
        },
    }
}

impl Ctx<'_> {
    fn version_text(&self) -> String {
        match (&self.e.version, &self.k.version, &self.k.version_source) {
            (Some(v), _, Some(src)) => format!("{v} (from {src})"),
            (Some(v), _, None) => v.to_string(),
            (None, Some(raw), _) => format!("{raw:?} (not a version)"),
            (None, None, _) => "unknown (no kubelet package, no version line in its log)".into(),
        }
    }

    fn base_evidence(&self) -> Vec<Evidence> {
        let mut ev = vec![Evidence::new(
            format!("/proc/{}/cmdline", self.k.pid.unwrap_or(0)),
            self.k.args.as_ref().map_or(String::new(), |a| a.join(" ")),
        )];
        if let Some(c) = &self.k.config {
            ev.push(Evidence::new(
                c.path.clone(),
                match (&c.text, &c.error) {
                    (Some(t), _) => format!("read, {} bytes", t.len()),
                    (None, Some(e)) => format!("unreadable: {e}"),
                    (None, None) => "not read".into(),
                },
            ));
        }
        for d in &self.k.drop_ins {
            ev.push(Evidence::new(
                d.path.clone(),
                "drop-in, applied over the file",
            ));
        }
        ev.push(Evidence::new("kubelet version", self.version_text()));
        ev
    }

    #[allow(clippy::too_many_arguments)]
    fn finding(
        &self,
        setting: &str,
        severity: Severity,
        summary: String,
        cause: String,
        remedy: String,
        mut evidence: Vec<Evidence>,
        measures: Vec<Measure>,
    ) -> Finding {
        evidence.extend(self.base_evidence());
        Finding {
            check: CHECK.id.into(),
            key: key::setting(CHECK.id, setting),
            severity,
            summary,
            cause,
            remedy,
            evidence,
            subjects: vec![self.subject.clone()],
            measures,
            log: None,
            caused_by: Vec::new(),
            explains: Vec::new(),
        }
    }

    /// Pods on the node, from the CRI or the log directories.
    fn pods(&self) -> Option<usize> {
        self.s.workloads.as_ref().map(|w| w.pods.len())
    }
}

fn origin_note(o: &Origin) -> String {
    match o {
        Origin::Default(_) => format!("{o}, not set anywhere"),
        _ => format!("set by {o}"),
    }
}

fn api_qps(c: &Ctx, cfg: &CheckSettings, out: &mut Outcome) {
    let min = cfg.count(&MIN_API_QPS) as f64;
    let busy = cfg.count(&BUSY_PODS);
    let q = &c.e.kube_api_qps;
    if q.value >= min || q.value < 0.0 {
        return;
    }
    let pods = c.pods();
    let severity = match pods {
        Some(n) if n as u64 >= busy => Severity::Warning,
        _ => Severity::Info,
    };
    let pods_text = pods.map_or("an unknown number of".to_string(), |n| n.to_string());
    out.findings.push(c.finding(
        "kubeAPIQPS",
        severity,
        format!(
            "kubelet kubeAPIQPS is {} and kubeAPIBurst {} ({}) with {pods_text} pod(s) on the node",
            q.value,
            c.e.kube_api_burst.value,
            origin_note(&q.origin)
        ),
        "client-go in the kubelet lets kubeAPIQPS requests per second through (bursts of kubeAPIBurst); status \
         updates, pod starts, secret and configmap reads of every pod share it. 5/10 (the default before 1.27) \
         throttled busy nodes: pods sat Pending while their containers ran (incident 2f)."
            .into(),
        "Set `kubeAPIQPS: 50` and `kubeAPIBurst: 100` in the kubelet configuration (the defaults from 1.27), or \
         `--kube-api-qps` / `--kube-api-burst`; restart the kubelet. See kubelet-api-throttling for whether it is \
         throttled now."
            .into(),
        vec![
            Evidence::new("kubeAPIQPS", format!("{} ({})", q.value, q.origin))
                .with_threshold(format!("reported below {min}")),
            Evidence::new(
                "kubeAPIBurst",
                format!("{} ({})", c.e.kube_api_burst.value, c.e.kube_api_burst.origin),
            ),
            Evidence::new(
                "pods on the node",
                format!(
                    "{pods_text} ({})",
                    c.s.workloads.as_ref().map_or("not listed", |w| w.source.as_str())
                ),
            )
            .with_threshold(format!("warning at {busy}")),
        ],
        vec![
            Measure::new("kube_api_qps", q.value, Unit::Count).of(min),
            Measure::count("kube_api_burst", c.e.kube_api_burst.value),
            Measure::count("pods", pods.unwrap_or(0)),
        ],
    ));
}

fn image_pulls(c: &Ctx, out: &mut Outcome) {
    let ser = &c.e.serialize_image_pulls;
    let maxp = c.e.max_parallel_image_pulls.as_ref();
    if !ser.value {
        return;
    }
    let conflicting =
        maxp.is_some_and(|m| m.value > 1) && !matches!(ser.origin, Origin::Default(_));
    let (severity, summary) = if conflicting {
        (
            Severity::Warning,
            format!(
                "kubelet has serializeImagePulls true ({}) and maxParallelImagePulls {}: the kubelet rejects this combination",
                origin_note(&ser.origin),
                maxp.map_or(0, |m| m.value)
            ),
        )
    } else {
        (
            Severity::Info,
            format!(
                "kubelet pulls images one at a time: serializeImagePulls true ({})",
                origin_note(&ser.origin)
            ),
        )
    };
    out.findings.push(c.finding(
        "serializeImagePulls",
        severity,
        summary,
        "With serialized pulls one slow pull (a large image, a slow or distant registry) holds every other pod on \
         the node in ContainerCreating (incident 2d)."
            .into(),
        "Set `serializeImagePulls: false` and `maxParallelImagePulls: 5` (1.27+) in the kubelet configuration; \
         restart the kubelet."
            .into(),
        vec![Evidence::new(
            "serializeImagePulls / maxParallelImagePulls",
            format!(
                "{} ({}) / {}",
                ser.value,
                ser.origin,
                maxp.map_or("unset".to_string(), |m| format!("{} ({})", m.value, m.origin))
            ),
        )],
        vec![Measure::count("serialized", 1u64)],
    ));
}

fn pod_pids(c: &Ctx, out: &mut Outcome) {
    let lim = &c.e.pod_pids_limit;
    let pid_max = c.s.sysctl_u64("kernel.pid_max").ok();
    let unlimited = lim.value <= 0;
    let over = pid_max.is_some_and(|m| lim.value > 0 && lim.value as u64 >= m);
    if !unlimited && !over {
        return;
    }
    let pm = pid_max.map_or("unknown".to_string(), |m| m.to_string());
    out.findings.push(c.finding(
        "podPidsLimit",
        Severity::Info,
        if unlimited {
            format!(
                "kubelet sets no per-pod PID limit (podPidsLimit {}, {}): one pod can use all of kernel.pid_max {pm}",
                lim.value,
                origin_note(&lim.origin)
            )
        } else {
            format!(
                "kubelet podPidsLimit {} ({}) is not below kernel.pid_max {pm}: it limits nothing",
                lim.value,
                origin_note(&lim.origin)
            )
        },
        "Without a pids limit per pod, a pod that leaks processes (zombies of a runner that never reaps, a fork \
         loop) exhausts the node's PIDs and the runtime itself fails (`pthread_create failed`, incident 2a)."
            .into(),
        "Set `podPidsLimit` (e.g. 4096, well below kernel.pid_max) in the kubelet configuration and restart the \
         kubelet; new pods get a pids cgroup limit."
            .into(),
        vec![Evidence::new("podPidsLimit", format!("{} ({})", lim.value, lim.origin)).with_threshold(format!(
            "kernel.pid_max {pm}"
        ))],
        vec![Measure::new("pod_pids_limit", lim.value as f64, Unit::Count).of_opt(pid_max)],
    ));
}

/// "10%" of `capacity`, or "100Mi"/"1Gi"/"500M"/bytes; `None` when it is neither.
pub fn threshold_bytes(v: &str, capacity: u64) -> Option<u64> {
    let v = v.trim();
    if let Some(p) = v.strip_suffix('%') {
        let p: f64 = p.trim().parse().ok()?;
        return Some((capacity as f64 * p / 100.0) as u64);
    }
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (n, unit) = v.split_at(split);
    let n: f64 = n.parse().ok()?;
    let mult: f64 = match unit {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1_048_576.0,
        "Gi" => 1_073_741_824.0,
        "Ti" => 1_099_511_627_776.0,
        "k" | "K" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        _ => return None,
    };
    Some((n * mult) as u64)
}

fn fs_with<'a>(s: &'a Snapshot, roles: &[Role]) -> Option<&'a FilesystemUsage> {
    let fss = s.filesystems.as_deref()?;
    roles
        .iter()
        .find_map(|r| fss.iter().find(|f| f.has_role(*r)))
}

fn eviction(c: &Ctx, out: &mut Outcome) {
    let ev = &c.e.eviction_hard;
    if !c.e.eviction_dropped.is_empty() {
        let dropped = c.e.eviction_dropped.join(", ");
        out.findings.push(c.finding(
            "evictionHard",
            Severity::Warning,
            format!(
                "kubelet evictionHard sets only {} ({}): the defaults of {dropped} are dropped, so the kubelet never evicts on them",
                ev.value.keys().cloned().collect::<Vec<_>>().join(", "),
                origin_note(&ev.origin)
            ),
            "Setting any evictionHard signal replaces the whole default map: signals not listed become 0 (disabled), \
             unless mergeDefaultEvictionSettings is true. A full disk or exhausted inodes then take the node down \
             instead of evicting pods."
                .into(),
            format!(
                "List every signal in evictionHard ({}), or set `mergeDefaultEvictionSettings: true` (newer releases); \
                 restart the kubelet.",
                DEFAULT_EVICTION_HARD
                    .iter()
                    .map(|(k, v)| format!("{k}: \"{v}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            vec![Evidence::new(
                "evictionHard",
                format!("{:?} ({})", ev.value, ev.origin),
            )
            .with_threshold(format!(
                "defaults {}",
                DEFAULT_EVICTION_HARD
                    .iter()
                    .map(|(k, v)| format!("{k}<{v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))],
            vec![Measure::count("eviction_signals_dropped", c.e.eviction_dropped.len())],
        ));
    }
    // The node against its thresholds now: past one, the kubelet is evicting.
    let nodefs = fs_with(c.s, &[Role::Kubelet, Role::Root]);
    let imagefs = fs_with(c.s, &[Role::Containerd, Role::Docker]).or(nodefs);
    let mut past = Vec::new();
    for (signal, v) in &ev.value {
        let (have, cap, what) = match signal.as_str() {
            "memory.available" => {
                let Some(m) = &c.s.meminfo else { continue };
                let (Some(a), Some(t)) = (m.mem_available, m.mem_total) else {
                    continue;
                };
                (a, t, "MemAvailable".to_string())
            }
            "nodefs.available" | "imagefs.available" => {
                let fs = if signal.starts_with("node") {
                    nodefs
                } else {
                    imagefs
                };
                let Some(fs) = fs else { continue };
                (
                    fs.blocks_avail.saturating_mul(fs.block_size),
                    fs.blocks_total.saturating_mul(fs.block_size),
                    format!("available on {}", fs.mount_point),
                )
            }
            "nodefs.inodesFree" | "imagefs.inodesFree" => {
                let fs = if signal.starts_with("node") {
                    nodefs
                } else {
                    imagefs
                };
                let Some(fs) = fs.filter(|f| f.inodes_total > 0) else {
                    continue;
                };
                (
                    fs.inodes_free,
                    fs.inodes_total,
                    format!("free inodes on {}", fs.mount_point),
                )
            }
            _ => continue,
        };
        let Some(limit) = threshold_bytes(v, cap) else {
            continue;
        };
        if have < limit {
            past.push((signal.clone(), v.clone(), have, limit, what));
        }
    }
    if !past.is_empty() {
        let text: Vec<String> = past
            .iter()
            .map(|(sig, v, have, limit, what)| {
                if sig.contains("inodes") {
                    format!("{sig}: {have} {what}, below {v} ({limit})")
                } else {
                    format!(
                        "{sig}: {} {what}, below {v} ({})",
                        human_bytes(*have),
                        human_bytes(*limit)
                    )
                }
            })
            .collect();
        out.findings.push(c.finding(
            "evictionHard.now",
            Severity::Warning,
            format!("the node is past kubelet's hard eviction threshold: {}", text.join("; ")),
            "Past a hard threshold the kubelet sets MemoryPressure or DiskPressure, stops admitting pods and evicts \
             running ones (without grace) until the signal recovers."
                .into(),
            "Free the resource (see disk-pressure for what fills the disk; memory: the largest pods), or move \
             workloads away; do not lower the threshold to make the condition go away."
                .into(),
            text.iter().map(|t| Evidence::new("eviction signal (approximated from statvfs and /proc/meminfo)", t.clone())).collect(),
            vec![Measure::count("signals_past_threshold", past.len())],
        ));
    }
}

fn image_gc(c: &Ctx, out: &mut Outcome) {
    let high = c.e.image_gc_high.value;
    let low = c.e.image_gc_low.value;
    let imagefs_avail =
        c.e.eviction_hard
            .value
            .get("imagefs.available")
            .and_then(|v| v.trim().strip_suffix('%'))
            .and_then(|p| p.trim().parse::<f64>().ok());
    let evicts_at = imagefs_avail.map(|a| 100.0 - a);
    let late = evicts_at.is_some_and(|e| high as f64 > e);
    let inverted = low >= high;
    if !late && !inverted && (0..=100).contains(&high) {
        return;
    }
    let summary = if inverted {
        format!(
            "kubelet imageGCLowThresholdPercent {low} is not below imageGCHighThresholdPercent {high}: the kubelet rejects it"
        )
    } else if late {
        format!(
            "kubelet garbage-collects images only at {high}% used but evicts pods at {:.0}% used (imagefs.available<{}%)",
            evicts_at.unwrap_or(0.0),
            imagefs_avail.unwrap_or(0.0)
        )
    } else {
        format!("kubelet imageGCHighThresholdPercent {high} is outside 0..100")
    };
    out.findings.push(c.finding(
        "imageGCHighThresholdPercent",
        Severity::Warning,
        summary,
        "Image garbage collection starts when the image filesystem is imageGCHighThresholdPercent used and frees \
         down to imageGCLowThresholdPercent. Set above the hard eviction point, pods are evicted for disk before \
         unused images are removed."
            .into(),
        "Keep imageGCHighThresholdPercent below 100 − imagefs.available (defaults: 85, with imagefs.available<15%) and \
         imageGCLowThresholdPercent below it (default 80)."
            .into(),
        vec![Evidence::new(
            "imageGCHighThresholdPercent / imageGCLowThresholdPercent",
            format!(
                "{high} ({}) / {low} ({})",
                c.e.image_gc_high.origin, c.e.image_gc_low.origin
            ),
        )],
        vec![Measure::new("image_gc_high", high as f64, Unit::Count).of_opt(evicts_at)],
    ));
}

fn sysctls(c: &Ctx, out: &mut Outcome) {
    let list = &c.e.allowed_unsafe_sysctls;
    if list.value.is_empty() {
        return;
    }
    let (bad, ok): (Vec<&String>, Vec<&String>) =
        list.value.iter().partition(|n| !sysctl_is_namespaced(n));
    let severity = if bad.is_empty() {
        Severity::Info
    } else {
        Severity::Critical
    };
    let summary = if bad.is_empty() {
        format!(
            "kubelet lets pods set unsafe sysctls {} ({})",
            ok.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
            origin_note(&list.origin)
        )
    } else {
        format!(
            "kubelet allowedUnsafeSysctls names sysctls that are not namespaced: {} — the kubelet refuses to start with them",
            bad.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    out.findings.push(c.finding(
        "allowedUnsafeSysctls",
        severity,
        summary,
        "Only namespaced sysctls (kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*, net.*) can be set per pod; the \
         kubelet fails at start-up (`the sysctl \"vm.x\" are not known to be namespaced`) on any other. Even \
         namespaced \"unsafe\" ones let one pod take shared node resources (socket buffers bounded only by \
         net.ipv4.tcp_mem)."
            .into(),
        "Remove non-namespaced names; node-wide values (vm.*, fs.*, kernel.core_pattern) belong in /etc/sysctl.d, \
         set once per node. Keep the list of unsafe namespaced ones as short as the workloads need."
            .into(),
        vec![Evidence::new(
            "allowedUnsafeSysctls",
            format!("{:?} ({})", list.value, list.origin),
        )],
        vec![
            Measure::count("unsafe_sysctls", list.value.len()),
            Measure::count("not_namespaced", bad.len()),
        ],
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::common::test_support::{process, snapshot};
    use crate::model::runtime::{ConfigFile, Pod, Workloads};

    fn with_kubelet(args: &[&str], config: &str, version: &str, pods: usize) -> Snapshot {
        let mut s = snapshot(1, 10, vec![process(50, 1, "kubelet", 'S')]);
        s.kubelet = Some(Kubelet {
            pid: Some(50),
            args: Some(args.iter().map(|a| a.to_string()).collect()),
            config: Some(ConfigFile {
                path: "/var/lib/kubelet/config.yaml".into(),
                text: Some(config.into()),
                error: None,
            }),
            version: Some(version.into()),
            version_source: Some("dpkg kubelet".into()),
            ..Kubelet::default()
        });
        s.workloads = Some(Workloads {
            source: "cri".into(),
            pods: (0..pods)
                .map(|i| Pod {
                    uid: format!("u{i}"),
                    ..Pod::default()
                })
                .collect(),
            ..Workloads::default()
        });
        s
    }

    fn run_on(s: &Snapshot) -> Outcome {
        run(
            &History::new(std::slice::from_ref(s)).unwrap(),
            &CheckSettings::default(),
        )
    }

    fn by_key<'a>(o: &'a Outcome, setting: &str) -> Option<&'a Finding> {
        o.findings
            .iter()
            .find(|f| f.key == format!("kubelet-config/setting:{setting}"))
    }

    #[test]
    fn old_defaults_on_a_busy_node_and_risky_defaults() {
        let s = with_kubelet(
            &["kubelet", "--config=/var/lib/kubelet/config.yaml"],
            "",
            "1.26.3-00",
            40,
        );
        let out = run_on(&s);
        let q = by_key(&out, "kubeAPIQPS").expect("low QPS reported");
        assert_eq!(q.severity, Severity::Warning);
        assert_eq!(q.measure("kube_api_qps").unwrap().value, 5.0);
        assert_eq!(q.measure("pods").unwrap().value, 40.0);
        assert!(q.summary.contains("default for 1.26"), "{}", q.summary);
        assert_eq!(
            by_key(&out, "serializeImagePulls").unwrap().severity,
            Severity::Info
        );
        let pids = by_key(&out, "podPidsLimit").unwrap();
        assert_eq!(pids.measure("pod_pids_limit").unwrap().limit, Some(1000.0));
        assert!(by_key(&out, "evictionHard").is_none());
    }

    #[test]
    fn new_defaults_and_explicit_good_values_are_quiet() {
        let s = with_kubelet(
            &["kubelet"],
            "serializeImagePulls: false\nmaxParallelImagePulls: 5\npodPidsLimit: 512\n",
            "1.29.1",
            40,
        );
        assert!(run_on(&s).findings.is_empty(), "{:?}", run_on(&s).findings);
    }

    #[test]
    fn partial_eviction_bad_gc_and_unsafe_sysctls() {
        let s = with_kubelet(
            &["kubelet", "--kube-api-qps=5"],
            "evictionHard:\n  memory.available: 200Mi\n  imagefs.available: 20%\nimageGCHighThresholdPercent: 90\nallowedUnsafeSysctls: [\"net.core.somaxconn\", \"vm.max_map_count\"]\n",
            "1.28.0",
            3,
        );
        let out = run_on(&s);
        let q = by_key(&out, "kubeAPIQPS").unwrap();
        assert_eq!(q.severity, Severity::Info, "few pods");
        assert!(q.summary.contains("flag --kube-api-qps"), "{}", q.summary);
        let ev = by_key(&out, "evictionHard").unwrap();
        assert_eq!(ev.measure("eviction_signals_dropped").unwrap().value, 2.0);
        let gc = by_key(&out, "imageGCHighThresholdPercent").unwrap();
        assert_eq!(gc.measure("image_gc_high").unwrap().limit, Some(80.0));
        let sy = by_key(&out, "allowedUnsafeSysctls").unwrap();
        assert_eq!(sy.severity, Severity::Critical);
        assert_eq!(sy.measure("not_namespaced").unwrap().value, 1.0);
    }

    #[test]
    fn a_node_past_a_hard_eviction_threshold_is_reported() {
        let mut s = with_kubelet(
            &["kubelet"],
            "podPidsLimit: 512\nserializeImagePulls: false\n",
            "1.29.0",
            3,
        );
        s.meminfo = Some(crate::model::kernel::Meminfo {
            mem_total: Some(8 << 30),
            mem_available: Some(50 << 20),
            ..Default::default()
        });
        let out = run_on(&s);
        let f = by_key(&out, "evictionHard.now").expect("memory.available below 100Mi");
        assert_eq!(f.measure("signals_past_threshold").unwrap().value, 1.0);
        assert!(f.summary.contains("memory.available"), "{}", f.summary);
    }

    #[test]
    fn no_kubelet_is_unknown() {
        let s = snapshot(1, 10, vec![]);
        assert!(run_on(&s).inconclusive);
        let mut s = snapshot(1, 10, vec![]);
        s.kubelet = Some(Kubelet::default());
        assert!(run_on(&s).unknown[0].contains("no kubelet process"));
    }

    #[test]
    fn thresholds_in_every_unit() {
        assert_eq!(threshold_bytes("10%", 1000), Some(100));
        assert_eq!(threshold_bytes("100Mi", 0), Some(104_857_600));
        assert_eq!(threshold_bytes("1G", 0), Some(1_000_000_000));
        assert_eq!(threshold_bytes("5", 0), Some(5));
        assert_eq!(threshold_bytes("x", 0), None);
    }
}
