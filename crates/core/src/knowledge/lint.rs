//! `node-doctor sysctl lint`: what the kubelet and runc will make of the sysctls in
//! Kubernetes manifests, before they reach a node. Pure: YAML text in (multi-document; a
//! `List` is opened), issues out.
//!
//! - `KubeletConfiguration.allowedUnsafeSysctls`: an entry the kubelet does not know to be
//!   namespaced makes it refuse to start; a namespaced one is allowed but unsafe; runc
//!   refuses some the kubelet accepts (`kernel.shm_next_id`).
//! - Pods and workloads (`spec.securityContext.sysctls`): names outside the safe list of the
//!   release (and not allowed by a KubeletConfiguration among the files) are rejected with
//!   `SysctlForbidden`; net/ipc sysctls with hostNetwork/hostIPC are forbidden; global ones can
//!   never be allowed.
//! - Privileged containers whose command runs `sysctl -w` (or writes `/proc/sys`) on a
//!   global key: it changes every pod on the node.

use super::Version;
use super::sysctl::{Knowledge, Namespace, PodNamespaces, normalize};
use crate::finding::Severity;
use regex::Regex;
use serde::Serialize;
use serde_json::Value;
use std::sync::OnceLock;

/// What a lint found, by a stable code (scripts match on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// allowedUnsafeSysctls lists a name the kubelet does not know to be namespaced: it
    /// refuses to start.
    KubeletRefusesToStart,
    /// allowedUnsafeSysctls lists a namespaced sysctl outside the safe list (or a pattern).
    UnsafeAllowed,
    /// allowedUnsafeSysctls or a pod names a sysctl runc refuses although the kubelet
    /// accepts it (container creation fails).
    RuntimeRefuses,
    /// A kubelet-namespaced name that is global on the kernel judged: absent in the pod's
    /// namespace, so setting it fails.
    GlobalOnThisKernel,
    /// A pod sysctl the kubelet rejects with SysctlForbidden.
    SysctlForbidden,
    /// A net (ipc) sysctl in a pod with hostNetwork (hostIPC).
    HostNamespace,
    /// A safe sysctl the kubelet drops on the kernel judged (its kernel gate).
    KernelTooOld,
    /// A privileged container sets a global sysctl: every pod on the node gets it.
    PrivilegedGlobalWrite,
    /// A privileged container sets a namespaced sysctl through /proc/sys where
    /// securityContext.sysctls would do.
    PrivilegedNamespacedWrite,
    /// A safe sysctl listed in allowedUnsafeSysctls: harmless, redundant.
    Redundant,
}

/// One problem, located.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    pub file: String,
    /// 1-based index of the YAML document in the file (empty documents not counted).
    pub document: usize,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    pub sysctl: String,
    pub severity: Severity,
    pub code: Code,
    pub message: String,
    pub fix: String,
}

/// What the lint is judged against.
#[derive(Debug, Clone, Copy, Default)]
pub struct Target {
    /// The Kubernetes release of the kubelets (default: the newest the data knows).
    pub kubernetes: Option<Version>,
    /// The nodes' kernel (`None`: kernel gates not judged).
    pub kernel: Option<Version>,
}

/// The result over all files.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub documents: usize,
    pub kubelet_configs: usize,
    pub pods: usize,
    pub issues: Vec<Issue>,
}

/// A file that could not be read as YAML.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: not YAML: {error}")]
pub struct ParseError {
    pub file: String,
    pub error: String,
}

struct Doc {
    file: String,
    index: usize,
    value: Value,
}

/// Lints `files` (name, text) together: a KubeletConfiguration among them decides what its
/// `allowedUnsafeSysctls` admits for the pods among them.
pub fn lint(
    k: &Knowledge,
    files: &[(String, String)],
    target: Target,
) -> Result<Report, ParseError> {
    let mut docs = Vec::new();
    for (file, text) in files {
        let values: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| ParseError {
            file: file.clone(),
            error: e.to_string(),
        })?;
        for (i, v) in values.into_iter().enumerate() {
            let index = i.saturating_add(1);
            // A List holds objects in `items`.
            match (v.get("kind").and_then(Value::as_str), v.get("items")) {
                (Some("List"), Some(Value::Array(items))) => {
                    docs.extend(items.iter().map(|item| Doc {
                        file: file.clone(),
                        index,
                        value: item.clone(),
                    }));
                }
                _ => docs.push(Doc {
                    file: file.clone(),
                    index,
                    value: v,
                }),
            }
        }
    }
    let kubernetes = target.kubernetes.unwrap_or_else(|| newest_release(k));
    let mut report = Report {
        documents: docs.len(),
        ..Report::default()
    };
    // allowedUnsafeSysctls of every KubeletConfiguration in the set.
    let mut allowed: Vec<String> = Vec::new();
    for d in docs
        .iter()
        .filter(|d| kind(&d.value) == "KubeletConfiguration")
    {
        report.kubelet_configs = report.kubelet_configs.saturating_add(1);
        let entries = d
            .value
            .get("allowedUnsafeSysctls")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_else(Vec::new);
        for e in &entries {
            lint_allowed_unsafe(k, d, e, kubernetes, target.kernel, &mut report.issues);
        }
        allowed.extend(entries);
    }
    for d in &docs {
        let Some((spec, name)) = pod_spec(&d.value) else {
            continue;
        };
        report.pods = report.pods.saturating_add(1);
        lint_pod(
            k,
            d,
            spec,
            name,
            &allowed,
            kubernetes,
            target.kernel,
            &mut report.issues,
        );
    }
    report.issues.sort_by_key(|i| std::cmp::Reverse(i.severity));
    Ok(report)
}

/// The newest release the safe list knows of.
pub fn newest_release(k: &Knowledge) -> Version {
    k.safe_entries()
        .iter()
        .map(|e| e.since)
        .max()
        .unwrap_or(Version(1, 0, 0))
}

fn kind(v: &Value) -> &str {
    v.get("kind").and_then(Value::as_str).unwrap_or("")
}

fn metadata_name(v: &Value) -> Option<String> {
    v.get("metadata")?.get("name")?.as_str().map(str::to_string)
}

/// The pod spec of a Pod or of a workload's template, and the object's name.
fn pod_spec(v: &Value) -> Option<(&Value, Option<String>)> {
    let spec = match kind(v) {
        "Pod" => v.get("spec")?,
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job" => v.get("spec")?.get("template")?.get("spec")?,
        "PodTemplate" => v.get("template")?.get("spec")?,
        "CronJob" => v
            .get("spec")?
            .get("jobTemplate")?
            .get("spec")?
            .get("template")?
            .get("spec")?,
        _ => return None,
    };
    Some((spec, metadata_name(v)))
}

fn issue(
    d: &Doc,
    sysctl: &str,
    severity: Severity,
    code: Code,
    message: String,
    fix: String,
) -> Issue {
    Issue {
        file: d.file.clone(),
        document: d.index,
        kind: kind(&d.value).to_string(),
        name: metadata_name(&d.value),
        container: None,
        sysctl: sysctl.to_string(),
        severity,
        code,
        message,
        fix,
    }
}

fn lint_allowed_unsafe(
    k: &Knowledge,
    d: &Doc,
    entry: &str,
    kubernetes: Version,
    kernel: Option<Version>,
    out: &mut Vec<Issue>,
) {
    let name = normalize(entry);
    let pattern = name.ends_with('*');
    let base = name.trim_end_matches('*');
    if !k.kubelet_accepts_unsafe(&name) {
        out.push(issue(
            d,
            &name,
            Severity::Critical,
            Code::KubeletRefusesToStart,
            format!(
                "allowedUnsafeSysctls lists {name:?}, which the kubelet does not know to be namespaced: it \
                 refuses to start (\"the sysctl{} {name:?} are not known to be namespaced\")",
                if pattern { "s" } else { "" }
            ),
            format!(
                "Remove {name:?}: a global sysctl cannot be allowed per pod. Set it on the node (sysctl.d) \
                 if the node needs it."
            ),
        ));
        return;
    }
    if pattern {
        out.push(issue(
            d,
            &name,
            Severity::Warning,
            Code::UnsafeAllowed,
            format!(
                "allowedUnsafeSysctls allows every sysctl matching {name:?}: pods may set namespaced but \
                 unsafe values (e.g. large socket buffers bounded only by global limits)"
            ),
            "List the exact sysctls the workloads need instead of a pattern.".into(),
        ));
        return;
    }
    let safe = k
        .safe_list(kubernetes, kernel)
        .into_iter()
        .find(|s| s.entry.name == base);
    if safe.as_ref().is_some_and(|s| s.allowed()) {
        out.push(issue(
            d,
            &name,
            Severity::Info,
            Code::Redundant,
            format!(
                "{name} is in the safe list of {kubernetes}: allowed without allowedUnsafeSysctls"
            ),
            format!("Drop {name} from allowedUnsafeSysctls."),
        ));
        return;
    }
    if !k.runc(base, PodNamespaces::default()).allowed {
        out.push(issue(
            d,
            &name,
            Severity::Warning,
            Code::RuntimeRefuses,
            format!(
                "the kubelet accepts {name} (prefix rule), but runc refuses it: {}",
                k.runc(base, PodNamespaces::default())
                    .error
                    .unwrap_or_default()
            ),
            format!("Drop {name}: pods setting it fail at container creation."),
        ));
        return;
    }
    if kernel.is_some() && !k.namespacing(base, kernel).is_namespaced() {
        out.push(issue(
            d,
            &name,
            Severity::Warning,
            Code::GlobalOnThisKernel,
            format!(
                "{name} is global on kernel {}: a pod's namespace has no such entry, so setting it fails",
                kernel.map(|v| v.to_string()).unwrap_or_default()
            ),
            format!("Drop {name}, or upgrade the nodes' kernel."),
        ));
        return;
    }
    out.push(issue(
        d,
        &name,
        Severity::Warning,
        Code::UnsafeAllowed,
        format!(
            "allowedUnsafeSysctls allows {name}: namespaced, but not in the safe list of {kubernetes} (not \
             isolated from other pods or the node's resources)"
        ),
        "Keep it only if a workload needs it, and restrict those pods (taints, a dedicated node pool).".into(),
    ));
}

fn sysctls_of(spec: &Value) -> Vec<String> {
    spec.get("securityContext")
        .and_then(|s| s.get("sysctls"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.get("name").and_then(Value::as_str))
                .map(normalize)
                .collect()
        })
        .unwrap_or_default()
}

fn bool_at(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn allowed_by(allowed: &[String], name: &str) -> bool {
    allowed.iter().any(|a| {
        let a = normalize(a);
        match a.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => a == name,
        }
    })
}

#[allow(clippy::too_many_arguments)]
fn lint_pod(
    k: &Knowledge,
    d: &Doc,
    spec: &Value,
    _name: Option<String>,
    allowed: &[String],
    kubernetes: Version,
    kernel: Option<Version>,
    out: &mut Vec<Issue>,
) {
    let host = PodNamespaces {
        host_network: bool_at(spec, "hostNetwork"),
        host_ipc: bool_at(spec, "hostIPC"),
    };
    let safe = k.safe_list(kubernetes, kernel);
    for name in sysctls_of(spec) {
        let kubelet_ns = k.kubelet_namespace(&name);
        let entry = safe.iter().find(|s| s.entry.name == name);
        let is_safe = entry.is_some_and(|s| s.allowed());
        let is_allowed = is_safe || allowed_by(allowed, &name);
        if kubelet_ns.is_none() {
            let ns = k.namespacing(&name, kernel);
            out.push(issue(
                d,
                &name,
                Severity::Critical,
                Code::SysctlForbidden,
                format!(
                    "securityContext.sysctls sets {name}, which is {}: the kubelet rejects the pod \
                     (SysctlForbidden: forbidden sysctl: {name:?} not allowlisted) and no allowedUnsafeSysctls \
                     can allow it{}",
                    if ns.is_namespaced() {
                        format!(
                            "namespaced ({}) but unknown to the kubelet",
                            ns.namespace.as_str()
                        )
                    } else {
                        "global".to_string()
                    },
                    k.runc(&name, host)
                        .error
                        .map(|e| format!("; runc would refuse it too: {e}"))
                        .unwrap_or_default()
                ),
                format!(
                    "Remove {name} from the pod; set it on the nodes (sysctl.d) if they need it — for every pod."
                ),
            ));
            continue;
        }
        let ns_name = if kubelet_ns == Some(Namespace::Net) {
            "net"
        } else {
            "ipc"
        };
        if (kubelet_ns == Some(Namespace::Net) && host.host_network)
            || (kubelet_ns == Some(Namespace::Ipc) && host.host_ipc)
        {
            out.push(issue(
                d,
                &name,
                Severity::Critical,
                Code::HostNamespace,
                format!(
                    "{name} in a pod with host{} : the kubelet rejects it (SysctlForbidden: {name:?} not allowed \
                     with host {ns_name} enabled)",
                    if ns_name == "net" { "Network" } else { "IPC" }
                ),
                format!(
                    "Drop host{} or the sysctl.",
                    if ns_name == "net" { "Network" } else { "IPC" }
                ),
            ));
            continue;
        }
        if let Some(e) = entry
            && e.in_release
            && e.kernel_ok == Some(false)
            && !allowed_by(allowed, &name)
        {
            out.push(issue(
                d,
                &name,
                Severity::Warning,
                Code::KernelTooOld,
                format!(
                    "{name} is in the safe list of {kubernetes} only from kernel {}: on kernel {} the kubelet \
                     drops it (\"kernel version is too old, dropping the sysctl from safe sysctl list\") and \
                     rejects the pod (SysctlForbidden)",
                    e.entry.kernel.map(|v| v.to_string()).unwrap_or_default(),
                    kernel.map(|v| v.to_string()).unwrap_or_default()
                ),
                "Upgrade the nodes' kernel, or schedule the pod elsewhere.".into(),
            ));
            continue;
        }
        if !is_allowed {
            let when = match k.safe_entry(&name) {
                Some(e) => format!(" (it is safe from Kubernetes {}, {})", e.since, e.pr),
                None => String::new(),
            };
            out.push(issue(
                d,
                &name,
                Severity::Warning,
                Code::SysctlForbidden,
                format!(
                    "{name} is namespaced but not in the safe list of {kubernetes}{when}: the kubelet rejects the \
                     pod (SysctlForbidden: forbidden sysctl: {name:?} not allowlisted) unless its \
                     allowedUnsafeSysctls lists it"
                ),
                format!("Add {name} to the kubelet's allowedUnsafeSysctls on the nodes meant for it, or drop it."),
            ));
            continue;
        }
        let runc = k.runc(&name, host);
        if !runc.allowed {
            out.push(issue(
                d,
                &name,
                Severity::Critical,
                Code::RuntimeRefuses,
                format!(
                    "the kubelet admits {name}, but runc refuses it: {}",
                    runc.error.unwrap_or_default()
                ),
                format!("Drop {name}: the container cannot be created with it."),
            ));
        } else if kernel.is_some() && !k.namespacing(&name, kernel).is_namespaced() {
            out.push(issue(
                d,
                &name,
                Severity::Critical,
                Code::GlobalOnThisKernel,
                format!(
                    "{name} is global on kernel {}: the pod's network namespace has no such file, so the runtime \
                     fails to set it",
                    kernel.map(|v| v.to_string()).unwrap_or_default()
                ),
                "Upgrade the nodes' kernel or drop the sysctl.".into(),
            ));
        }
    }
    for c in containers(spec) {
        lint_container(k, d, c, host, kernel, out);
    }
}

fn containers(spec: &Value) -> Vec<&Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|key| spec.get(*key).and_then(Value::as_array))
        .flatten()
        .collect()
}

/// `sysctl [-w|-q|...] NAME=VALUE` and `> /proc/sys/a/b` (also `tee /proc/sys/...`); `None`
/// only if the constant patterns did not compile (a unit test keeps them compiling).
fn write_patterns() -> Option<&'static (Regex, Regex)> {
    static R: OnceLock<Option<(Regex, Regex)>> = OnceLock::new();
    R.get_or_init(|| {
        Some((
            // Sysctl names are lower case with digits, _ . / -.
            Regex::new(r"\bsysctl\s+(?:-[a-zA-Z]+\s+)*((?:[a-z0-9_-]+[./])+[a-z0-9_-]+)\s*=")
                .ok()?,
            Regex::new(r"(?:>|\btee\s+(?:-a\s+)?)\s*/proc/sys/([a-z0-9_./-]+)").ok()?,
        ))
    })
    .as_ref()
}

fn lint_container(
    k: &Knowledge,
    d: &Doc,
    c: &Value,
    host: PodNamespaces,
    kernel: Option<Version>,
    out: &mut Vec<Issue>,
) {
    let privileged = c
        .get("securityContext")
        .is_some_and(|s| bool_at(s, "privileged"));
    if !privileged {
        return;
    }
    let text: Vec<&str> = ["command", "args"]
        .iter()
        .filter_map(|key| c.get(*key).and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let text = text.join(" ");
    let Some((sysctl_w, proc_sys)) = write_patterns() else {
        return;
    };
    let mut names: Vec<String> = sysctl_w
        .captures_iter(&text)
        .filter_map(|m| m.get(1))
        .map(|m| normalize(m.as_str()))
        .chain(
            proc_sys
                .captures_iter(&text)
                .filter_map(|m| m.get(1))
                .map(|m| m.as_str().replace('/', ".")),
        )
        .collect();
    names.sort();
    names.dedup();
    let container = c.get("name").and_then(Value::as_str).map(str::to_string);
    for name in names {
        let ns = k.namespacing(&name, kernel);
        // A namespaced sysctl written from a pod that shares the host's namespace is the
        // host's too.
        let shared_with_host = match ns.namespace {
            Namespace::Net => host.host_network,
            Namespace::Ipc => host.host_ipc,
            Namespace::Global => true,
            _ => false,
        };
        let mut i = if shared_with_host {
            issue(
                d,
                &name,
                if name == "kernel.core_pattern" {
                    Severity::Critical
                } else {
                    Severity::Warning
                },
                Code::PrivilegedGlobalWrite,
                format!(
                    "privileged container sets {name}, which is {}: the write changes it for every pod on the \
                     node and the host, outlives the pod, and is recorded in no Kubernetes object{}",
                    if ns.namespace == Namespace::Global {
                        "global".to_string()
                    } else {
                        format!(
                            "the host's own ({} namespace shared with the host)",
                            ns.namespace.as_str()
                        )
                    },
                    if name == "kernel.core_pattern" {
                        "; a piped core_pattern runs a program as root on the host for every crash"
                    } else {
                        ""
                    }
                ),
                format!(
                    "Set {name} on the nodes (sysctl.d, the node image) and select them for the workload \
                     (labels, taints); drop the privileged init container."
                ),
            )
        } else {
            issue(
                d,
                &name,
                Severity::Info,
                Code::PrivilegedNamespacedWrite,
                format!(
                    "privileged container sets {name} (per {} namespace: the pod's own copy) through /proc/sys",
                    ns.namespace.as_str()
                ),
                format!("Use securityContext.sysctls for {name} and drop the privilege."),
            )
        };
        i.container = container.clone();
        out.push(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::sysctl::knowledge;

    fn run(text: &str, kubernetes: &str, kernel: Option<&str>) -> Report {
        lint(
            knowledge().unwrap(),
            &[("t.yaml".to_string(), text.to_string())],
            Target {
                kubernetes: Version::parse(kubernetes),
                kernel: kernel.and_then(Version::parse),
            },
        )
        .unwrap()
    }

    fn codes(r: &Report) -> Vec<(String, Code, Severity)> {
        r.issues
            .iter()
            .map(|i| (i.sysctl.clone(), i.code, i.severity))
            .collect()
    }

    const KUBELET: &str = "\
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
allowedUnsafeSysctls:
  - vm.max_map_count
  - kernel.msg*
  - net.core.somaxconn
  - kernel.shm_next_id
  - net.ipv4.ip_local_port_range
";

    #[test]
    fn kubelet_configurations_are_judged_entry_by_entry() {
        let r = run(KUBELET, "1.29", Some("6.18"));
        assert_eq!(r.kubelet_configs, 1);
        let c = codes(&r);
        assert!(c.contains(&(
            "vm.max_map_count".into(),
            Code::KubeletRefusesToStart,
            Severity::Critical
        )));
        assert!(c.contains(&("kernel.msg*".into(), Code::UnsafeAllowed, Severity::Warning)));
        assert!(c.contains(&(
            "net.core.somaxconn".into(),
            Code::UnsafeAllowed,
            Severity::Warning
        )));
        assert!(c.contains(&(
            "kernel.shm_next_id".into(),
            Code::RuntimeRefuses,
            Severity::Warning
        )));
        assert!(c.contains(&(
            "net.ipv4.ip_local_port_range".into(),
            Code::Redundant,
            Severity::Info
        )));
        assert_eq!(
            r.issues[0].severity,
            Severity::Critical,
            "most severe first"
        );
    }

    const PODS: &str = "\
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  securityContext:
    sysctls:
      - {name: net.ipv4.tcp_rmem, value: '4096 87380 16777216'}
      - {name: kernel.shm_rmid_forced, value: '1'}
      - {name: vm.swappiness, value: '10'}
  containers: [{name: c, image: x}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: hostnet}
spec:
  template:
    spec:
      hostNetwork: true
      securityContext:
        sysctls: [{name: net.ipv4.ip_local_port_range, value: '1024 65000'}]
      containers: [{name: c, image: x}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: elasticsearch-master}
spec:
  template:
    spec:
      initContainers:
        - name: configure-sysctl
          securityContext: {runAsUser: 0, privileged: true}
          image: elasticsearch
          command: [sysctl, -w, vm.max_map_count=262144]
        - name: tune-net
          securityContext: {privileged: true}
          command: [sh, -c, 'echo 4096 > /proc/sys/net/core/somaxconn']
      containers: [{name: es, image: elasticsearch}]
";

    #[test]
    fn pods_and_workloads_are_judged_for_the_release_and_kernel() {
        let r = run(PODS, "1.31", Some("6.18"));
        assert_eq!((r.documents, r.pods), (3, 3));
        let c = codes(&r);
        // tcp_rmem is safe only from 1.32.
        assert!(c.contains(&(
            "net.ipv4.tcp_rmem".into(),
            Code::SysctlForbidden,
            Severity::Warning
        )));
        assert!(c.contains(&(
            "vm.swappiness".into(),
            Code::SysctlForbidden,
            Severity::Critical
        )));
        assert!(!c.iter().any(|(n, _, _)| n == "kernel.shm_rmid_forced"));
        assert!(c.contains(&(
            "net.ipv4.ip_local_port_range".into(),
            Code::HostNamespace,
            Severity::Critical
        )));
        let es = r
            .issues
            .iter()
            .find(|i| i.sysctl == "vm.max_map_count")
            .unwrap();
        assert_eq!(
            (
                es.code,
                es.kind.as_str(),
                es.name.as_deref(),
                es.container.as_deref(),
                es.document
            ),
            (
                Code::PrivilegedGlobalWrite,
                "StatefulSet",
                Some("elasticsearch-master"),
                Some("configure-sysctl"),
                3
            )
        );
        let net = r
            .issues
            .iter()
            .find(|i| i.sysctl == "net.core.somaxconn")
            .unwrap();
        assert_eq!(net.code, Code::PrivilegedNamespacedWrite);

        // On 1.32, tcp_rmem is safe; on a 4.14 kernel the kubelet drops it again.
        let r = run(PODS, "1.32", Some("6.18"));
        assert!(!r.issues.iter().any(|i| i.sysctl == "net.ipv4.tcp_rmem"));
        let r = run(PODS, "1.32", Some("4.14"));
        assert!(codes(&r).contains(&(
            "net.ipv4.tcp_rmem".into(),
            Code::KernelTooOld,
            Severity::Warning
        )));
    }

    #[test]
    fn a_kubelet_configuration_in_the_set_admits_its_unsafe_sysctls() {
        let pod = "kind: Pod\nmetadata: {name: p}\nspec:\n  securityContext:\n    sysctls: [{name: net.core.somaxconn, value: '1024'}, {name: kernel.msgmax, value: '65536'}]\n  containers: []\n";
        let alone = run(pod, "1.29", None);
        assert_eq!(
            alone
                .issues
                .iter()
                .filter(|i| i.code == Code::SysctlForbidden)
                .count(),
            2
        );
        let with = lint(
            knowledge().unwrap(),
            &[
                ("kubelet.yaml".into(), KUBELET.into()),
                ("pod.yaml".into(), pod.into()),
            ],
            Target {
                kubernetes: Version::parse("1.29"),
                kernel: None,
            },
        )
        .unwrap();
        assert!(
            !with.issues.iter().any(|i| i.file == "pod.yaml"),
            "{:#?}",
            with.issues
        );
    }

    #[test]
    fn lists_cronjobs_and_bad_yaml() {
        let list = "kind: List\nitems:\n  - kind: CronJob\n    metadata: {name: cj}\n    spec:\n      jobTemplate:\n        spec:\n          template:\n            spec:\n              securityContext: {sysctls: [{name: kernel.core_pattern, value: core}]}\n              containers: []\n";
        let r = run(list, "1.29", None);
        assert_eq!(r.pods, 1);
        assert_eq!(r.issues[0].kind, "CronJob");
        assert_eq!(r.issues[0].code, Code::SysctlForbidden);
        assert!(
            lint(
                knowledge().unwrap(),
                &[("bad.yaml".into(), "a: [unclosed".into())],
                Target::default()
            )
            .is_err()
        );
        // Not Kubernetes at all: nothing to say.
        let r = run("just: a map\n---\n- a list\n", "1.29", None);
        assert!(r.issues.is_empty());
        assert_eq!(r.documents, 2);
    }
}
