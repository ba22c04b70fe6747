//! Sysctls: namespaced or not (per kernel version), what a child network namespace sees,
//! what the kubelet and runc accept, the kubelet's safe list per release, and why a global
//! sysctl set "from a pod" changes the whole node. The facts are in `sysctl.toml`.

use super::Version;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Where the kernel keeps a sysctl's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Namespace {
    Net,
    Ipc,
    Uts,
    Pid,
    User,
    /// One value for the whole machine.
    Global,
}

impl Namespace {
    pub fn as_str(self) -> &'static str {
        match self {
            Namespace::Net => "net",
            Namespace::Ipc => "ipc",
            Namespace::Uts => "uts",
            Namespace::Pid => "pid",
            Namespace::User => "user",
            Namespace::Global => "global",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct KernelRule {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    prefix: Option<String>,
    namespace: Namespace,
    #[serde(default)]
    since: Option<Version>,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct NameList {
    kernel: Version,
    names: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct KubeletNamespaced {
    names: BTreeMap<String, Namespace>,
    prefixes: BTreeMap<String, Namespace>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Runc {
    ipc_names: Vec<String>,
    ipc_prefixes: Vec<String>,
}

/// One entry of the kubelet's safe list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SafeEntry {
    pub name: String,
    /// The Kubernetes release that added it.
    pub since: Version,
    pub pr: String,
    /// The kernel the kubelet requires for it (it drops the entry on older kernels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<Version>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Data {
    kernel: Vec<KernelRule>,
    global_net: NameList,
    child_netns_read_only: NameList,
    kubelet_namespaced: KubeletNamespaced,
    runc: Runc,
    kubelet_safe: Vec<SafeEntry>,
}

/// The parsed `sysctl.toml`.
pub struct Knowledge {
    data: Data,
}

const DATA: &str = include_str!("sysctl.toml");

/// The sysctl knowledge, or why the data did not parse (a unit test keeps it parsing).
pub fn knowledge() -> Result<&'static Knowledge, &'static str> {
    static K: OnceLock<Result<Knowledge, String>> = OnceLock::new();
    K.get_or_init(|| {
        toml::from_str::<Data>(DATA)
            .map(|data| Knowledge { data })
            .map_err(|e| format!("sysctl.toml: {e}"))
    })
    .as_ref()
    .map_err(String::as_str)
}

/// `net/ipv4/ip_forward` → `net.ipv4.ip_forward` (sysctl.d(5) and the kubelet accept both;
/// with slashes, dots inside a component stay: `net/ipv4/conf/eno2.100/rp_filter` →
/// `net.ipv4.conf.eno2/100.rp_filter`).
pub fn normalize(name: &str) -> String {
    let name = name.trim();
    match name.find(['.', '/']) {
        Some(i) if name.as_bytes().get(i) == Some(&b'/') => name
            .chars()
            .map(|c| match c {
                '.' => '/',
                '/' => '.',
                c => c,
            })
            .collect(),
        _ => name.to_string(),
    }
}

/// How the kernel treats a sysctl on a given kernel version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Namespacing {
    /// Where the value lives on this kernel (`global` before the entry was namespaced).
    pub namespace: Namespace,
    /// The namespace type it belongs to on kernels that namespace it.
    pub family: Namespace,
    /// The first kernel that keeps it per namespace, when that is later than the namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<Version>,
    /// The kernel was not known: the answer is for current kernels.
    pub kernel_unknown: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Namespacing {
    pub fn is_namespaced(&self) -> bool {
        self.namespace != Namespace::Global
    }
}

/// What a fresh child network namespace shows of a `net.*` sysctl.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChildNetns {
    /// Its own copy, writable by the namespace's root.
    Writable,
    /// Visible but mode 0444: the init namespace's value, not settable there.
    ReadOnly,
    /// Not there at all: the value is global (a runtime writing it fails with ENOENT).
    Absent,
}

/// What runc does with a sysctl in a pod's OCI spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuncVerdict {
    pub allowed: bool,
    /// What the pod needs for it to pass ("its own network namespace").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requires: Option<String>,
    /// runc's error when it refuses (libcontainer/configs/validate/validator.go).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The pod's namespaces that runc and the kubelet look at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PodNamespaces {
    pub host_network: bool,
    pub host_ipc: bool,
}

/// A safe-list entry judged for a Kubernetes release and a kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SafeStatus {
    #[serde(flatten)]
    pub entry: SafeEntry,
    /// In the safe list of that release.
    pub in_release: bool,
    /// The kubelet keeps it on that kernel (false: "kernel version is too old, dropping").
    /// `None` without a kernel version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_ok: Option<bool>,
}

impl SafeStatus {
    /// Allowed by the kubelet of that release on that kernel without allowedUnsafeSysctls.
    pub fn allowed(&self) -> bool {
        self.in_release && self.kernel_ok != Some(false)
    }
}

impl Knowledge {
    fn rule_for(&self, name: &str) -> Option<&KernelRule> {
        let exact = self
            .data
            .kernel
            .iter()
            .find(|r| r.name.as_deref() == Some(name));
        exact.or_else(|| {
            self.data
                .kernel
                .iter()
                .filter(|r| r.prefix.as_deref().is_some_and(|p| name.starts_with(p)))
                .max_by_key(|r| r.prefix.as_deref().map_or(0, str::len))
        })
    }

    fn is_global_net(&self, name: &str) -> bool {
        self.data.global_net.names.iter().any(|n| n == name)
    }

    /// Where the kernel keeps `name` on `kernel` (current kernels when `None`).
    pub fn namespacing(&self, name: &str, kernel: Option<Version>) -> Namespacing {
        let name = normalize(name);
        if self.is_global_net(&name) {
            return Namespacing {
                namespace: Namespace::Global,
                family: Namespace::Global,
                since: None,
                kernel_unknown: kernel.is_none(),
                note: Some(format!(
                    "a net.* entry the kernel keeps once for the machine: absent in a child network \
                     namespace (observed on {})",
                    self.data.global_net.kernel
                )),
            };
        }
        let Some(rule) = self.rule_for(&name) else {
            return Namespacing {
                namespace: Namespace::Global,
                family: Namespace::Global,
                since: None,
                kernel_unknown: kernel.is_none(),
                note: None,
            };
        };
        let per_ns = match (rule.since, kernel) {
            (Some(since), Some(k)) => k >= since,
            _ => true,
        };
        Namespacing {
            namespace: if per_ns {
                rule.namespace
            } else {
                Namespace::Global
            },
            family: rule.namespace,
            since: rule.since,
            kernel_unknown: kernel.is_none(),
            note: rule.note.clone(),
        }
    }

    /// What a fresh child network namespace shows of a `net.*` name (`None` for other names).
    pub fn child_netns(&self, name: &str, kernel: Option<Version>) -> Option<ChildNetns> {
        let name = normalize(name);
        if !name.starts_with("net.") {
            return None;
        }
        if self.data.child_netns_read_only.names.contains(&name) {
            // Read-only in a child netns on the kernel it was observed on (older kernels may
            // lack the entry there entirely; either way a pod cannot set it).
            return Some(ChildNetns::ReadOnly);
        }
        Some(if self.namespacing(&name, kernel).is_namespaced() {
            ChildNetns::Writable
        } else {
            ChildNetns::Absent
        })
    }

    /// What the kubelet believes (pkg/kubelet/sysctl/namespace.go `NamespacedBy`): ipc or
    /// net, or `None` ("not known to be namespaced").
    pub fn kubelet_namespace(&self, name: &str) -> Option<Namespace> {
        let name = normalize(name);
        let k = &self.data.kubelet_namespaced;
        k.names.get(&name).copied().or_else(|| {
            k.prefixes
                .iter()
                .find(|(p, _)| name.starts_with(p.as_str()))
                .map(|(_, ns)| *ns)
        })
    }

    /// Whether an `allowedUnsafeSysctls` entry (a name or `prefix*`) is accepted by the
    /// kubelet: the name, or the pattern's prefix, must be known to be namespaced.
    pub fn kubelet_accepts_unsafe(&self, entry: &str) -> bool {
        let e = normalize(entry);
        let e = e.strip_suffix('*').unwrap_or(&e);
        self.kubelet_namespace(e).is_some()
    }

    /// The kubelet's safe list, every entry judged for `kubernetes` (and `kernel`).
    pub fn safe_list(&self, kubernetes: Version, kernel: Option<Version>) -> Vec<SafeStatus> {
        let release = kubernetes.minor();
        self.data
            .kubelet_safe
            .iter()
            .map(|e| SafeStatus {
                entry: e.clone(),
                in_release: release >= e.since.minor(),
                kernel_ok: match (e.kernel, kernel) {
                    (None, _) => Some(true).filter(|_| kernel.is_some()),
                    (Some(gate), Some(k)) => Some(k >= gate),
                    (Some(_), None) => None,
                },
            })
            .collect()
    }

    /// The safe-list entry for `name`, whatever the release.
    pub fn safe_entry(&self, name: &str) -> Option<&SafeEntry> {
        let name = normalize(name);
        self.data.kubelet_safe.iter().find(|e| e.name == name)
    }

    /// Every entry of the safe list (release order).
    pub fn safe_entries(&self) -> &[SafeEntry] {
        &self.data.kubelet_safe
    }

    /// What runc says for a pod that sets `name` (validator.go `sysctl()`), for a pod with
    /// its own namespaces except those `pod` shares with the host.
    pub fn runc(&self, name: &str, pod: PodNamespaces) -> RuncVerdict {
        let name = normalize(name);
        let r = &self.data.runc;
        let ipc = r.ipc_names.contains(&name)
            || r.ipc_prefixes.iter().any(|p| name.starts_with(p.as_str()));
        if ipc {
            return if pod.host_ipc {
                RuncVerdict {
                    allowed: false,
                    requires: Some("its own IPC namespace (not hostIPC)".into()),
                    error: Some(format!(
                        "sysctl {name:?} is not allowed in the hosts ipc namespace"
                    )),
                }
            } else {
                RuncVerdict {
                    allowed: true,
                    requires: Some("its own IPC namespace (pods have one unless hostIPC)".into()),
                    error: None,
                }
            };
        }
        if name.starts_with("net.") {
            return if pod.host_network {
                RuncVerdict {
                    allowed: false,
                    requires: Some("its own network namespace (not hostNetwork)".into()),
                    error: Some(format!(
                        "sysctl {name:?} not allowed in host network namespace"
                    )),
                }
            } else {
                RuncVerdict {
                    allowed: true,
                    requires: Some(
                        "its own network namespace (pods have one unless hostNetwork)".into(),
                    ),
                    error: None,
                }
            };
        }
        match name.as_str() {
            "kernel.domainname" => RuncVerdict {
                allowed: true,
                requires: Some("its own UTS namespace".into()),
                error: None,
            },
            "kernel.hostname" => RuncVerdict {
                allowed: false,
                requires: None,
                error: Some(format!(
                    "sysctl {name:?} is not allowed as it conflicts with the OCI \"hostname\" field"
                )),
            },
            _ => RuncVerdict {
                allowed: false,
                requires: None,
                error: Some(format!(
                    "sysctl {name:?} is not in a separate kernel namespace"
                )),
            },
        }
    }
}

/// How a pod with this sysctl in `securityContext.sysctls` fares with the kubelet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Admission {
    /// In the safe list of the release (and kept on this kernel): admitted.
    Safe,
    /// Admitted only when the kubelet's allowedUnsafeSysctls lists it (it is known to be
    /// namespaced); rejected with SysctlForbidden otherwise.
    NeedsAllowedUnsafe,
    /// Can never be allowed: not known to be namespaced, so allowedUnsafeSysctls cannot
    /// list it (the kubelet would not start); every pod setting it is rejected.
    Forbidden,
}

/// The kubelet's side of an explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KubeletView {
    /// The release judged ("1.29"); `None` when not known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<Version>,
    /// pkg/kubelet/sysctl/namespace.go's answer (`None`: "not known to be namespaced").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known_namespace: Option<Namespace>,
    /// The safe-list entry, judged for the release and kernel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safe: Option<SafeStatus>,
    /// `None` without a release to judge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admission: Option<Admission>,
    /// Whether `allowedUnsafeSysctls` may list it without the kubelet refusing to start.
    pub allowed_unsafe_accepted: bool,
}

/// Everything `node-doctor sysctl explain NAME` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub name: String,
    /// The kernel judged, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<Version>,
    #[serde(flatten)]
    pub namespacing: Namespacing,
    /// For `net.*`: what a fresh child network namespace shows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub child_netns: Option<ChildNetns>,
    pub kubelet: KubeletView,
    /// What runc says for a pod (own namespaces) that sets it.
    pub runc: RuncVerdict,
    /// What setting it "from a pod" does: one sentence.
    pub set_from_a_pod: String,
}

impl Knowledge {
    pub fn explain(
        &self,
        name: &str,
        kernel: Option<Version>,
        kubernetes: Option<Version>,
    ) -> Explanation {
        let name = normalize(name);
        let namespacing = self.namespacing(&name, kernel);
        let known_namespace = self.kubelet_namespace(&name);
        let safe = kubernetes.and_then(|k| {
            self.safe_list(k, kernel)
                .into_iter()
                .find(|s| s.entry.name == name)
        });
        let admission = kubernetes.map(|_| {
            if safe.as_ref().is_some_and(SafeStatus::allowed) {
                Admission::Safe
            } else if known_namespace.is_some() {
                Admission::NeedsAllowedUnsafe
            } else {
                Admission::Forbidden
            }
        });
        let runc = self.runc(&name, PodNamespaces::default());
        let child_netns = self.child_netns(&name, kernel);
        let set_from_a_pod = if child_netns == Some(ChildNetns::ReadOnly) {
            "Read-only in a pod's network namespace (mode 0444, the host's value): a pod cannot set it; a \
             privileged pod in the host's network namespace changes it for the host and every hostNetwork pod."
                .to_string()
        } else if !namespacing.is_namespaced() && namespacing.family != Namespace::Global {
            format!(
                "Global on this kernel ({} per {} namespace only from {}): the kubelet and runc may accept it, but a \
                 pod's namespace has no such entry, so the runtime's write fails (open /proc/sys/...: no such file \
                 or directory); written from a privileged pod it changes the whole node.",
                name,
                namespacing.family.as_str(),
                namespacing.since.map(|v| v.to_string()).unwrap_or_default()
            )
        } else if namespacing.is_namespaced() {
            format!(
                "Per {} namespace: a pod with its own {} namespace sets its own copy; other pods and \
                 the host keep theirs.",
                namespacing.namespace.as_str(),
                namespacing.namespace.as_str()
            )
        } else {
            format!(
                "Global: securityContext.sysctls cannot set it (the kubelet and runc refuse), so it is \
                 set \"from a pod\" only by a privileged container writing /proc/sys (or a hostPath \
                 mount of it) — and then it changes {name} for every pod and the host, outlives the \
                 pod, is recorded in no Kubernetes object, and the last writer wins."
            )
        };
        Explanation {
            name: name.clone(),
            kernel,
            namespacing,
            child_netns,
            kubelet: KubeletView {
                kubernetes: kubernetes.map(|k| k.minor()),
                known_namespace,
                safe,
                admission,
                allowed_unsafe_accepted: self.kubelet_accepts_unsafe(&name),
            },
            runc,
            set_from_a_pod,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k() -> &'static Knowledge {
        knowledge().expect("sysctl.toml parses")
    }

    fn v(s: &str) -> Option<Version> {
        Version::parse(s)
    }

    #[test]
    fn the_data_parses_and_every_rule_names_exactly_one_match() {
        let k = k();
        for r in &k.data.kernel {
            assert!(
                r.name.is_some() != r.prefix.is_some(),
                "a rule has a name or a prefix: {r:?}"
            );
        }
        assert!(k.data.global_net.names.len() > 50);
        // Safe-list entries are all known-namespaced to the kubelet (it builds one allowlist).
        for e in k.safe_entries() {
            assert!(k.kubelet_namespace(&e.name).is_some(), "{}", e.name);
        }
    }

    #[test]
    fn namespaces_follow_the_kernel_version() {
        let k = k();
        let ns = |n: &str, kernel: &str| k.namespacing(n, v(kernel)).namespace;
        assert_eq!(ns("net.core.somaxconn", "6.18"), Namespace::Net);
        assert_eq!(ns("net.ipv4.ip_local_port_range", "4.4"), Namespace::Net);
        assert_eq!(ns("kernel.shmmax", "3.10"), Namespace::Ipc);
        assert_eq!(ns("kernel.sem", "6.18"), Namespace::Ipc);
        assert_eq!(ns("fs.mqueue.msg_max", "6.18"), Namespace::Ipc);
        assert_eq!(ns("kernel.hostname", "6.18"), Namespace::Uts);
        assert_eq!(ns("user.max_user_namespaces", "5.4"), Namespace::User);
        // kernel.pid_max: per pid namespace from 6.14 on.
        assert_eq!(ns("kernel.pid_max", "6.13.9"), Namespace::Global);
        assert_eq!(ns("kernel.pid_max", "6.14"), Namespace::Pid);
        // Per-netns only from the versions the kubelet gates on.
        assert_eq!(ns("net.ipv4.tcp_rmem", "4.14"), Namespace::Global);
        assert_eq!(ns("net.ipv4.tcp_rmem", "4.15"), Namespace::Net);
        assert_eq!(ns("net.ipv4.tcp_syncookies", "4.4"), Namespace::Global);
        assert_eq!(ns("net.ipv4.tcp_keepalive_time", "4.5"), Namespace::Net);
        assert_eq!(
            ns("net.ipv4.ip_local_reserved_ports", "3.15"),
            Namespace::Global
        );
        // Global, whatever the kernel.
        for g in [
            "vm.max_map_count",
            "vm.swappiness",
            "kernel.core_pattern",
            "kernel.core_pipe_limit",
            "kernel.threads-max",
            "fs.file-max",
            "fs.inotify.max_user_watches",
            "net.core.netdev_max_backlog",
            "net.ipv4.tcp_mem",
            "net.core.default_qdisc",
        ] {
            assert_eq!(ns(g, "6.18"), Namespace::Global, "{g}");
        }
        // Unknown kernel: answered for current kernels, and said so.
        let n = k.namespacing("kernel.pid_max", None);
        assert_eq!((n.namespace, n.kernel_unknown), (Namespace::Pid, true));
        // Slash-separated names are the same sysctl.
        assert_eq!(ns("net/ipv4/ip_forward", "6.18"), Namespace::Net);
        assert_eq!(
            normalize("net/ipv4/conf/eno2.100/rp_filter"),
            "net.ipv4.conf.eno2/100.rp_filter"
        );
    }

    #[test]
    fn a_child_network_namespace_shows_writable_read_only_or_nothing() {
        let k = k();
        let c = |n: &str| k.child_netns(n, v("6.18"));
        assert_eq!(c("net.core.somaxconn"), Some(ChildNetns::Writable));
        assert_eq!(c("net.core.rmem_max"), Some(ChildNetns::ReadOnly));
        assert_eq!(c("net.core.wmem_default"), Some(ChildNetns::ReadOnly));
        assert_eq!(c("net.core.netdev_max_backlog"), Some(ChildNetns::Absent));
        assert_eq!(c("net.ipv4.tcp_mem"), Some(ChildNetns::Absent));
        assert_eq!(c("vm.swappiness"), None);
        assert_eq!(
            k.child_netns("net.ipv4.tcp_wmem", v("4.9")),
            Some(ChildNetns::Absent)
        );
    }

    #[test]
    fn the_safe_list_grows_release_by_release_with_its_prs() {
        let k = k();
        let allowed = |release: &str, kernel: &str| -> Vec<String> {
            k.safe_list(v(release).unwrap(), v(kernel))
                .into_iter()
                .filter(SafeStatus::allowed)
                .map(|s| s.entry.name)
                .collect()
        };
        assert_eq!(
            allowed("1.17", "6.18"),
            vec![
                "kernel.shm_rmid_forced",
                "net.ipv4.ip_local_port_range",
                "net.ipv4.tcp_syncookies"
            ]
        );
        assert!(allowed("1.18", "6.18").contains(&"net.ipv4.ping_group_range".to_string()));
        assert!(!allowed("1.21", "6.18").contains(&"net.ipv4.ip_unprivileged_port_start".into()));
        assert!(allowed("1.22", "6.18").contains(&"net.ipv4.ip_unprivileged_port_start".into()));
        assert_eq!(allowed("1.26.5", "6.18").len(), 5);
        assert_eq!(allowed("1.27", "6.18").len(), 6);
        assert_eq!(allowed("1.29", "6.18").len(), 10);
        assert_eq!(allowed("1.31", "6.18").len(), 10);
        assert_eq!(allowed("v1.32.1", "6.18").len(), 12);
        assert_eq!(allowed("1.36", "6.18").len(), 12);
        assert_eq!(allowed("1.37", "6.18").len(), 14);
        // The kernel gates: on 4.4 the kubelet drops the keepalive and buffer entries.
        let old = allowed("1.32", "4.4");
        assert!(old.contains(&"net.ipv4.ip_local_reserved_ports".to_string()));
        assert!(!old.contains(&"net.ipv4.tcp_keepalive_time".to_string()));
        assert!(!old.contains(&"net.ipv4.tcp_rmem".to_string()));
        assert!(allowed("1.32", "4.5").contains(&"net.ipv4.tcp_keepalive_time".to_string()));
        assert!(!allowed("1.32", "4.5").contains(&"net.ipv4.tcp_fin_timeout".to_string()));
        let e = k.safe_entry("net.ipv4.tcp_rmem").unwrap();
        assert_eq!(
            (e.since, e.pr.as_str(), e.kernel),
            (
                Version(1, 32, 0),
                "kubernetes/kubernetes#127489",
                Some(Version(4, 15, 0))
            )
        );
        assert_eq!(
            k.safe_entry("net.ipv4.ping_group_range").unwrap().pr,
            "kubernetes/kubernetes#85463"
        );
        assert_eq!(
            k.safe_entry("net.ipv4.ip_unprivileged_port_start")
                .unwrap()
                .pr,
            "kubernetes/kubernetes#103326"
        );
        assert_eq!(
            k.safe_entry("net.ipv4.ip_local_reserved_ports").unwrap().pr,
            "kubernetes/kubernetes#115374"
        );
    }

    #[test]
    fn the_kubelet_and_runc_disagree_where_they_do() {
        let k = k();
        // The kubelet's prefixes accept kernel.shm_next_id; runc's exact list refuses it.
        assert_eq!(
            k.kubelet_namespace("kernel.shm_next_id"),
            Some(Namespace::Ipc)
        );
        assert!(
            !k.runc("kernel.shm_next_id", PodNamespaces::default())
                .allowed
        );
        // kernel.pid_max is per pid namespace on 6.14+, but neither knows it.
        assert_eq!(k.kubelet_namespace("kernel.pid_max"), None);
        let r = k.runc("kernel.pid_max", PodNamespaces::default());
        assert_eq!(
            r.error.as_deref(),
            Some("sysctl \"kernel.pid_max\" is not in a separate kernel namespace")
        );
        assert!(
            k.runc("net.core.somaxconn", PodNamespaces::default())
                .allowed
        );
        let host = PodNamespaces {
            host_network: true,
            host_ipc: true,
        };
        assert!(!k.runc("net.core.somaxconn", host).allowed);
        assert!(!k.runc("kernel.msgmax", host).allowed);
        assert!(
            k.runc("kernel.domainname", PodNamespaces::default())
                .allowed
        );
        assert!(!k.runc("kernel.hostname", PodNamespaces::default()).allowed);
        assert!(k.kubelet_accepts_unsafe("net.*"));
        assert!(k.kubelet_accepts_unsafe("kernel.msg*"));
        assert!(!k.kubelet_accepts_unsafe("kernel.*"));
        assert!(!k.kubelet_accepts_unsafe("vm.max_map_count"));
    }

    #[test]
    fn explanations_join_kernel_kubelet_and_runc() {
        let k = k();
        let e = k.explain("vm.max_map_count", v("6.18.44"), v("1.29"));
        assert_eq!(e.namespacing.namespace, Namespace::Global);
        assert_eq!(e.kubelet.admission, Some(Admission::Forbidden));
        assert!(!e.kubelet.allowed_unsafe_accepted);
        assert!(!e.runc.allowed);
        assert!(e.set_from_a_pod.contains("every pod"));

        let e = k.explain("net.ipv4.tcp_rmem", v("6.18"), v("1.31"));
        assert_eq!(e.namespacing.namespace, Namespace::Net);
        assert_eq!(e.kubelet.admission, Some(Admission::NeedsAllowedUnsafe));
        let e = k.explain("net.ipv4.tcp_rmem", v("6.18"), v("1.32"));
        assert_eq!(e.kubelet.admission, Some(Admission::Safe));
        assert_eq!(e.child_netns, Some(ChildNetns::Writable));
        let e = k.explain("net.ipv4.tcp_rmem", v("4.14"), v("1.32"));
        assert_eq!(e.kubelet.admission, Some(Admission::NeedsAllowedUnsafe));
        assert_eq!(
            e.kubelet.safe.as_ref().and_then(|s| s.kernel_ok),
            Some(false)
        );
        assert!(
            e.set_from_a_pod.contains("no such file"),
            "{}",
            e.set_from_a_pod
        );
        let e = k.explain("net.core.rmem_max", v("6.18"), v("1.32"));
        assert_eq!(e.child_netns, Some(ChildNetns::ReadOnly));
        assert!(e.set_from_a_pod.starts_with("Read-only"));

        let e = k.explain("kernel/pid_max", v("6.18"), None);
        assert_eq!(e.name, "kernel.pid_max");
        assert_eq!(e.namespacing.namespace, Namespace::Pid);
        assert_eq!(e.kubelet.admission, None);
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["namespace"], "pid");
        assert_eq!(json["since"], "6.14");
        assert_eq!(json["runc"]["allowed"], false);
    }
}
