//! The kubelet's effective configuration, from what the snapshot holds: its command line,
//! its `--config` KubeletConfiguration (YAML or JSON) and `--config-dir` drop-ins, and the
//! defaults of its version. Pure: the files were read by the host crate, as text.
//!
//! Precedence is the kubelet's own (kubernetes.io "Set Kubelet Parameters Via A
//! Configuration File", KEP-3983 drop-ins): built-in defaults < the config file < drop-ins in
//! lexical order < command-line flags. Each value says where it came from, so a finding can
//! say "kubeAPIQPS 5 (flag --kube-api-qps)" or "50 (default since 1.27)".
//!
//! Defaults per version (pkg/kubelet/apis/config/v1beta1/defaults.go,
//! pkg/kubelet/eviction/defaults_linux.go):
//!
//! | setting | default | since / until | source |
//! | --- | --- | --- | --- |
//! | kubeAPIQPS / kubeAPIBurst | 5 / 10 | until 1.26 | defaults.go before kubernetes#116121 |
//! | kubeAPIQPS / kubeAPIBurst | 50 / 100 | from 1.27 | kubernetes#116121 |
//! | serializeImagePulls | true (false when maxParallelImagePulls ≥ 2 in newer releases) | | defaults.go |
//! | maxParallelImagePulls | unset (no limit once pulls are parallel) | field from 1.27 (KEP-3673) | |
//! | podPidsLimit | -1 (no per-pod limit) | | defaults.go |
//! | evictionHard | memory.available<100Mi, nodefs.available<10%, imagefs.available<15%, nodefs.inodesFree<5% | | eviction/defaults_linux.go |
//! | imageGCHighThresholdPercent / Low | 85 / 80 | | defaults.go |
//! | maxPods | 110 | | defaults.go |
//! | containerRuntimeEndpoint | unix:///run/containerd/containerd.sock | field from 1.27 (flag before) | defaults.go |
//! | allowedUnsafeSysctls | none | | |
//!
//! Setting any one `evictionHard` signal drops the defaults of the others to 0 (disabled)
//! unless `mergeDefaultEvictionSettings: true` (kubernetes.io node-pressure-eviction).

use crate::model::log::LogRecord;
use crate::model::runtime::Kubelet;
use serde_json::Value as Json;
use std::collections::BTreeMap;

/// `major.minor` of a kubelet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
}

impl Version {
    /// `v1.28.3`, `1.28.3-1.1` (dpkg), `1.26.0-00`, `v1.30.1-eks-abc`.
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.trim().trim_start_matches('v');
        let mut it = s.split(['.', '-', '+']);
        let major = it.next()?.parse().ok()?;
        let minor = it.next()?.parse().ok()?;
        Some(Version { major, minor })
    }

    pub fn at_least(self, major: u32, minor: u32) -> bool {
        self >= Version { major, minor }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Where an effective value came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// A command-line flag (`--kube-api-qps`).
    Flag(String),
    /// The `--config` file, or a drop-in (its path).
    File(String),
    /// The built-in default; the text says for which versions.
    Default(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Flag(n) => write!(f, "flag --{n}"),
            Origin::File(p) => write!(f, "{p}"),
            Origin::Default(d) if d.is_empty() => write!(f, "default"),
            Origin::Default(d) => write!(f, "default {d}"),
        }
    }
}

/// One effective setting.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting<T> {
    pub value: T,
    pub origin: Origin,
}

impl<T> Setting<T> {
    fn default(value: T, why: impl Into<String>) -> Self {
        Setting {
            value,
            origin: Origin::Default(why.into()),
        }
    }
}

/// The settings node-doctor judges, as the kubelet runs with them.
#[derive(Debug, Clone, PartialEq)]
pub struct Effective {
    pub version: Option<Version>,
    pub kube_api_qps: Setting<f64>,
    pub kube_api_burst: Setting<u64>,
    pub serialize_image_pulls: Setting<bool>,
    pub max_parallel_image_pulls: Option<Setting<i64>>,
    pub pod_pids_limit: Setting<i64>,
    /// Signal → threshold text ("100Mi", "10%"); a signal set to 0 is absent.
    pub eviction_hard: Setting<BTreeMap<String, String>>,
    /// Default signals dropped because evictionHard was set partially.
    pub eviction_dropped: Vec<String>,
    pub image_gc_high: Setting<i64>,
    pub image_gc_low: Setting<i64>,
    pub allowed_unsafe_sysctls: Setting<Vec<String>>,
    pub max_pods: Setting<u64>,
    pub container_runtime_endpoint: Setting<String>,
    pub root_dir: Setting<String>,
    /// Files that could not be parsed, and values of the wrong type (ignored).
    pub problems: Vec<String>,
}

/// The default hard eviction thresholds on Linux (pkg/kubelet/eviction/defaults_linux.go).
pub const DEFAULT_EVICTION_HARD: &[(&str, &str)] = &[
    ("memory.available", "100Mi"),
    ("nodefs.available", "10%"),
    ("nodefs.inodesFree", "5%"),
    ("imagefs.available", "15%"),
];

/// The kubelet's flags: `--name=value`, `--name value`, bare boolean `--name`.
pub fn flags(args: &[String]) -> BTreeMap<String, String> {
    // Boolean flags take no separate value: `--serialize-image-pulls false` is not a form
    // pflag accepts for them (only `=false`).
    const BOOLS: &[&str] = &["serialize-image-pulls", "fail-swap-on"];
    let mut out = BTreeMap::new();
    let mut it = args.iter().skip(1).peekable();
    while let Some(a) = it.next() {
        let Some(name) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else {
            continue;
        };
        if name.is_empty() {
            break;
        }
        match name.split_once('=') {
            Some((n, v)) => {
                out.insert(n.to_string(), v.to_string());
            }
            None if BOOLS.contains(&name) => {
                out.insert(name.to_string(), "true".into());
            }
            None => {
                let v = match it.peek() {
                    Some(next) if !next.starts_with('-') => it.next().cloned().unwrap_or_default(),
                    _ => "true".into(),
                };
                out.insert(name.to_string(), v);
            }
        }
    }
    out
}

/// A KubeletConfiguration document (YAML, or JSON which is YAML), as a JSON object.
pub fn parse_config(text: &str) -> Result<serde_json::Map<String, Json>, String> {
    if text.trim().is_empty() {
        return Ok(serde_json::Map::new());
    }
    let doc: Json = serde_saphyr::from_str(text).map_err(|e| e.to_string().trim().to_string())?;
    match doc {
        Json::Object(m) => Ok(m),
        Json::Null => Ok(serde_json::Map::new()),
        _ => Err("not a mapping of settings".into()),
    }
}

/// Layered sources, lowest precedence first: (origin, document).
struct Layers {
    files: Vec<(String, serde_json::Map<String, Json>)>,
    flags: BTreeMap<String, String>,
}

impl Layers {
    /// The highest-precedence file value of `field`.
    fn file(&self, field: &str) -> Option<(&str, &Json)> {
        self.files
            .iter()
            .rev()
            .find_map(|(p, m)| m.get(field).map(|v| (p.as_str(), v)))
    }

    fn flag(&self, name: &str) -> Option<&str> {
        self.flags.get(name).map(String::as_str)
    }
}

fn num(v: &Json) -> Option<f64> {
    match v {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn boolean(v: &Json) -> Option<bool> {
    match v {
        Json::Bool(b) => Some(*b),
        Json::String(s) => match s.trim() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Parses `memory.available<100Mi,nodefs.available<10%` (the flag form).
pub fn parse_eviction_flag(s: &str) -> BTreeMap<String, String> {
    s.split(',')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('<')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

/// Whether a threshold text is zero ("0", "0%", "0Mi"): the signal is disabled.
fn is_zero(v: &str) -> bool {
    let digits: String = v
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    digits.parse::<f64>().is_ok_and(|n| n == 0.0)
}

/// The effective configuration of the kubelet in `k`, with the version to take defaults
/// from (`None`: unknown, the newest defaults are assumed and said so).
pub fn effective(k: &Kubelet) -> Effective {
    let args = k.args.clone().unwrap_or_default();
    let flags = flags(&args);
    let mut problems = Vec::new();
    let mut files = Vec::new();
    for f in k.config.iter().chain(k.drop_ins.iter()) {
        match (&f.text, &f.error) {
            (Some(t), _) => match parse_config(t) {
                Ok(m) => files.push((f.path.clone(), m)),
                Err(e) => problems.push(format!("{}: not a KubeletConfiguration: {e}", f.path)),
            },
            (None, Some(e)) => problems.push(format!("{}: {e}", f.path)),
            (None, None) => {}
        }
    }
    let layers = Layers { files, flags };
    let version = k.version.as_deref().and_then(Version::parse);
    let new_defaults = version.is_none_or(|v| v.at_least(1, 27));
    let vtext = || match version {
        Some(v) => format!("for {v}"),
        None => "from 1.27 (version unknown)".to_string(),
    };

    let mut number = |field: &str, flag: &str, default: Setting<f64>| -> Setting<f64> {
        if let Some(v) = layers.flag(flag) {
            match v.trim().parse::<f64>() {
                Ok(n) => {
                    return Setting {
                        value: n,
                        origin: Origin::Flag(flag.into()),
                    };
                }
                Err(_) => problems.push(format!("--{flag}={v}: not a number (ignored)")),
            }
        }
        if let Some((p, v)) = layers.file(field) {
            match num(v) {
                Some(n) => {
                    return Setting {
                        value: n,
                        origin: Origin::File(p.into()),
                    };
                }
                None => problems.push(format!("{p}: {field}: {v} is not a number (ignored)")),
            }
        }
        default
    };

    let (qps_d, burst_d) = if new_defaults {
        (50.0, 100.0)
    } else {
        (5.0, 10.0)
    };
    let kube_api_qps = number(
        "kubeAPIQPS",
        "kube-api-qps",
        Setting::default(qps_d, vtext()),
    );
    let burst = number(
        "kubeAPIBurst",
        "kube-api-burst",
        Setting::default(burst_d, vtext()),
    );
    let pids = number(
        "podPidsLimit",
        "pod-max-pids",
        Setting::default(-1.0, "(no per-pod limit)"),
    );
    let gc_high = number(
        "imageGCHighThresholdPercent",
        "image-gc-high-threshold",
        Setting::default(85.0, ""),
    );
    let gc_low = number(
        "imageGCLowThresholdPercent",
        "image-gc-low-threshold",
        Setting::default(80.0, ""),
    );
    let max_pods = number("maxPods", "max-pods", Setting::default(110.0, ""));
    let max_parallel = match layers.file("maxParallelImagePulls") {
        Some((p, v)) => match num(v) {
            Some(n) => Some(Setting {
                value: n as i64,
                origin: Origin::File(p.into()),
            }),
            None if v.is_null() => None,
            None => {
                problems.push(format!(
                    "{p}: maxParallelImagePulls: {v} is not a number (ignored)"
                ));
                None
            }
        },
        None => layers.flag("max-parallel-image-pulls").and_then(|v| {
            v.trim().parse::<i64>().ok().map(|n| Setting {
                value: n,
                origin: Origin::Flag("max-parallel-image-pulls".into()),
            })
        }),
    };
    let serialize = match layers.flag("serialize-image-pulls") {
        Some(v) => Setting {
            value: v.trim() != "false",
            origin: Origin::Flag("serialize-image-pulls".into()),
        },
        None => match layers.file("serializeImagePulls").and_then(|(p, v)| {
            boolean(v).map(|b| Setting {
                value: b,
                origin: Origin::File(p.into()),
            })
        }) {
            Some(s) => s,
            None => match &max_parallel {
                Some(m) if m.value >= 2 => Setting::default(false, "(maxParallelImagePulls ≥ 2)"),
                _ => Setting::default(true, ""),
            },
        },
    };
    let merge_defaults = layers
        .file("mergeDefaultEvictionSettings")
        .and_then(|(_, v)| boolean(v))
        .unwrap_or(false);
    let defaults: BTreeMap<String, String> = DEFAULT_EVICTION_HARD
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let given: Option<(Origin, BTreeMap<String, String>)> = match layers.flag("eviction-hard") {
        Some(v) => Some((Origin::Flag("eviction-hard".into()), parse_eviction_flag(v))),
        None => layers.file("evictionHard").and_then(|(p, v)| match v {
            Json::Object(m) => Some((
                Origin::File(p.into()),
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                    .collect(),
            )),
            Json::Null => None,
            other => {
                problems.push(format!(
                    "{p}: evictionHard: {other} is not a mapping (ignored)"
                ));
                None
            }
        }),
    };
    let mut eviction_dropped = Vec::new();
    let eviction_hard = match given {
        None => Setting::default(defaults, ""),
        Some((origin, mut m)) => {
            for (k, v) in &defaults {
                if !m.contains_key(k) {
                    if merge_defaults {
                        m.insert(k.clone(), v.clone());
                    } else {
                        eviction_dropped.push(k.clone());
                    }
                }
            }
            m.retain(|_, v| !is_zero(v));
            Setting { value: m, origin }
        }
    };
    let allowed_unsafe_sysctls = match layers.flag("allowed-unsafe-sysctls") {
        Some(v) => Setting {
            value: v
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            origin: Origin::Flag("allowed-unsafe-sysctls".into()),
        },
        None => match layers.file("allowedUnsafeSysctls") {
            Some((p, Json::Array(a))) => Setting {
                value: a
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                origin: Origin::File(p.into()),
            },
            _ => Setting::default(Vec::new(), ""),
        },
    };
    let text_setting = |field: &str, flag: &str, default: &str, why: &str| -> Setting<String> {
        if let Some(v) = layers.flag(flag) {
            return Setting {
                value: v.to_string(),
                origin: Origin::Flag(flag.into()),
            };
        }
        if let Some((p, Json::String(v))) = layers.file(field) {
            return Setting {
                value: v.clone(),
                origin: Origin::File(p.into()),
            };
        }
        Setting::default(default.to_string(), why)
    };
    let container_runtime_endpoint = text_setting(
        "containerRuntimeEndpoint",
        "container-runtime-endpoint",
        "unix:///run/containerd/containerd.sock",
        "",
    );
    let root_dir = text_setting("rootDir", "root-dir", "/var/lib/kubelet", "");
    let to_u64 = |s: Setting<f64>| Setting {
        value: if s.value.is_finite() && s.value >= 0.0 {
            s.value as u64
        } else {
            0
        },
        origin: s.origin,
    };
    let to_i64 = |s: Setting<f64>| Setting {
        value: if s.value.is_finite() {
            s.value as i64
        } else {
            -1
        },
        origin: s.origin,
    };
    Effective {
        version,
        kube_api_qps,
        kube_api_burst: to_u64(burst),
        serialize_image_pulls: serialize,
        max_parallel_image_pulls: max_parallel,
        pod_pids_limit: to_i64(pids),
        eviction_hard,
        eviction_dropped,
        image_gc_high: to_i64(gc_high),
        image_gc_low: to_i64(gc_low),
        allowed_unsafe_sysctls,
        max_pods: to_u64(max_pods),
        container_runtime_endpoint,
        root_dir,
        problems,
    }
}

/// The socket path of a CRI endpoint (`unix:///run/containerd/containerd.sock` or a bare
/// path); `None` for other transports (npipe, tcp).
pub fn endpoint_path(endpoint: &str) -> Option<&str> {
    match endpoint.split_once("://") {
        Some(("unix", p)) => Some(p),
        Some(_) => None,
        None => endpoint.starts_with('/').then_some(endpoint),
    }
}

/// Lines of the kubelet's and the runtime's logs that the checks read; the collector keeps
/// only these, so thousands of routine lines cannot push them out of the bound.
pub fn keep_line(text: &str) -> bool {
    const NEEDLES: &[&str] = &[
        "client-side throttling",
        "PLEG is not healthy",
        "PLEG",
        "Pulling image",
        "Successfully pulled image",
        "Failed to pull image",
        "PullImage ",
        "Kubelet version",
        "container runtime is down",
        "Container runtime not ready",
        "ContextDeadlineExceeded",
        "DeadlineExceeded",
    ];
    NEEDLES.iter().any(|n| text.contains(n))
}

/// The kubelet version a log line states (`"Kubelet version" kubeletVersion="v1.28.3"`).
pub fn version_from_log(records: &[LogRecord]) -> Option<String> {
    records.iter().rev().find_map(|r| {
        let t = &r.text;
        let i = t.find("kubeletVersion=")?;
        let rest = t.get(i.checked_add("kubeletVersion=".len())?..)?;
        let v: String = rest
            .trim_start_matches('"')
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '"')
            .collect();
        (!v.is_empty()).then_some(v)
    })
}

/// Sysctl names kubelet considers namespaced (pkg/kubelet/sysctl/namespace.go): only these
/// may be listed in `allowedUnsafeSysctls`; another name makes the kubelet fail to start.
pub fn sysctl_is_namespaced(name: &str) -> bool {
    let n = name.replace('/', ".");
    let n = n.trim_end_matches('*');
    n == "kernel.sem"
        || n.starts_with("kernel.shm")
        || n.starts_with("kernel.msg")
        || n.starts_with("fs.mqueue.")
        || n.starts_with("net.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::runtime::ConfigFile;

    fn kubelet(args: &[&str], config: Option<&str>, version: Option<&str>) -> Kubelet {
        Kubelet {
            pid: Some(10),
            args: Some(args.iter().map(|s| s.to_string()).collect()),
            config: config.map(|t| ConfigFile {
                path: "/var/lib/kubelet/config.yaml".into(),
                text: Some(t.into()),
                error: None,
            }),
            version: version.map(str::to_string),
            ..Kubelet::default()
        }
    }

    #[test]
    fn versions_parse_from_every_form() {
        assert_eq!(
            Version::parse("v1.28.3"),
            Some(Version {
                major: 1,
                minor: 28
            })
        );
        assert_eq!(Version::parse("1.26.0-00").map(|v| v.minor), Some(26));
        assert_eq!(Version::parse("1.30.1-1.1").map(|v| v.minor), Some(30));
        assert_eq!(Version::parse("v1.30.1-eks-abc").map(|v| v.minor), Some(30));
        assert_eq!(Version::parse("garbage"), None);
        assert!(Version::parse("1.27.0").unwrap().at_least(1, 27));
        assert!(!Version::parse("1.26.9").unwrap().at_least(1, 27));
    }

    #[test]
    fn flags_in_every_form() {
        let f = flags(
            &[
                "kubelet",
                "--config=/x.yaml",
                "--kube-api-qps",
                "7",
                "--serialize-image-pulls",
                "--v=2",
                "-hostname-override",
                "n1",
            ]
            .map(String::from),
        );
        assert_eq!(f.get("config").map(String::as_str), Some("/x.yaml"));
        assert_eq!(f.get("kube-api-qps").map(String::as_str), Some("7"));
        assert_eq!(
            f.get("serialize-image-pulls").map(String::as_str),
            Some("true")
        );
        assert_eq!(f.get("hostname-override").map(String::as_str), Some("n1"));
    }

    #[test]
    fn defaults_follow_the_version() {
        let old = effective(&kubelet(&["kubelet"], None, Some("1.26.3")));
        assert_eq!(
            (old.kube_api_qps.value, old.kube_api_burst.value),
            (5.0, 10)
        );
        assert!(matches!(old.kube_api_qps.origin, Origin::Default(_)));
        let new = effective(&kubelet(&["kubelet"], None, Some("v1.28.0")));
        assert_eq!(
            (new.kube_api_qps.value, new.kube_api_burst.value),
            (50.0, 100)
        );
        let unknown = effective(&kubelet(&["kubelet"], None, None));
        assert_eq!(unknown.kube_api_qps.value, 50.0);
        assert_eq!(
            unknown.kube_api_qps.origin.to_string(),
            "default from 1.27 (version unknown)"
        );
        assert!(new.serialize_image_pulls.value);
        assert_eq!(new.pod_pids_limit.value, -1);
        assert_eq!((new.image_gc_high.value, new.image_gc_low.value), (85, 80));
        assert_eq!(new.eviction_hard.value.len(), 4);
    }

    #[test]
    fn flags_override_drop_ins_override_the_file() {
        let mut k = kubelet(
            &[
                "kubelet",
                "--config",
                "/var/lib/kubelet/config.yaml",
                "--kube-api-qps=7",
            ],
            Some(
                "kubeAPIQPS: 20\nkubeAPIBurst: 30\nserializeImagePulls: false\npodPidsLimit: 4096\n",
            ),
            Some("1.28.1"),
        );
        k.drop_ins.push(ConfigFile {
            path: "/etc/kubernetes/kubelet.conf.d/10.conf".into(),
            text: Some("kubeAPIBurst: 40\n".into()),
            error: None,
        });
        let e = effective(&k);
        assert_eq!(e.kube_api_qps.value, 7.0);
        assert_eq!(e.kube_api_qps.origin, Origin::Flag("kube-api-qps".into()));
        assert_eq!(e.kube_api_burst.value, 40);
        assert_eq!(
            e.kube_api_burst.origin,
            Origin::File("/etc/kubernetes/kubelet.conf.d/10.conf".into())
        );
        assert!(!e.serialize_image_pulls.value);
        assert_eq!(e.pod_pids_limit.value, 4096);
    }

    #[test]
    fn a_partial_eviction_hard_drops_the_other_defaults() {
        let e = effective(&kubelet(
            &["kubelet"],
            Some("evictionHard:\n  memory.available: 200Mi\n"),
            Some("1.29.0"),
        ));
        assert_eq!(e.eviction_hard.value.len(), 1);
        assert_eq!(
            e.eviction_dropped,
            vec!["imagefs.available", "nodefs.available", "nodefs.inodesFree"]
        );
        let merged = effective(&kubelet(
            &["kubelet"],
            Some("mergeDefaultEvictionSettings: true\nevictionHard:\n  memory.available: 200Mi\n"),
            Some("1.35.0"),
        ));
        assert!(merged.eviction_dropped.is_empty());
        assert_eq!(merged.eviction_hard.value.len(), 4);
        let flag = effective(&kubelet(
            &[
                "kubelet",
                "--eviction-hard=memory.available<1Gi,nodefs.available<0%",
            ],
            None,
            None,
        ));
        assert_eq!(
            flag.eviction_hard
                .value
                .get("memory.available")
                .map(String::as_str),
            Some("1Gi")
        );
        assert!(!flag.eviction_hard.value.contains_key("nodefs.available"));
    }

    #[test]
    fn bad_files_and_values_are_problems_not_panics() {
        let e = effective(&kubelet(&["kubelet"], Some("kubeAPIQPS: [1, 2]\n"), None));
        assert_eq!(e.kube_api_qps.value, 50.0);
        assert!(e.problems[0].contains("not a number"), "{:?}", e.problems);
        let e = effective(&kubelet(&["kubelet"], Some(": : :\n- x"), None));
        assert!(!e.problems.is_empty());
        let e = effective(&kubelet(&["kubelet", "--kube-api-qps=x"], None, None));
        assert!(e.problems[0].contains("not a number"));
    }

    #[test]
    fn maxparallel_implies_parallel_pulls_when_serialize_is_unset() {
        let e = effective(&kubelet(
            &["kubelet"],
            Some("maxParallelImagePulls: 5\n"),
            None,
        ));
        assert!(!e.serialize_image_pulls.value);
        assert_eq!(e.max_parallel_image_pulls.map(|m| m.value), Some(5));
    }

    #[test]
    fn endpoints_and_namespaced_sysctls() {
        assert_eq!(
            endpoint_path("unix:///run/containerd/containerd.sock"),
            Some("/run/containerd/containerd.sock")
        );
        assert_eq!(
            endpoint_path("/run/crio/crio.sock"),
            Some("/run/crio/crio.sock")
        );
        assert_eq!(endpoint_path("tcp://1.2.3.4:1"), None);
        assert!(sysctl_is_namespaced("net.core.somaxconn"));
        assert!(sysctl_is_namespaced("kernel.shm*"));
        assert!(!sysctl_is_namespaced("vm.max_map_count"));
        assert!(!sysctl_is_namespaced("kernel.core_pattern"));
    }

    #[test]
    fn version_from_the_startup_line() {
        let r =
            LogRecord::text(r#"I0101 server.go:487] "Kubelet version" kubeletVersion="v1.29.4""#);
        assert_eq!(version_from_log(&[r]).as_deref(), Some("v1.29.4"));
    }
}
