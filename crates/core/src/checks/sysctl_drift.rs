//! `sysctl-drift`: global (non-namespaced) sysctls whose live value differs from what the
//! node's configuration files set, or that changed between samples — the trace a privileged
//! pod leaves when it writes `/proc/sys` (an init container's `sysctl -w vm.max_map_count`).
//! Such a write changes the value for every pod and the host, outlives the pod and is recorded
//! in no Kubernetes object. The privileged containers running now (full capabilities, or a
//! writable `/proc/sys` in their mount namespace) are the suspects. `kernel.core_pattern`
//! piping to a program under a container's root is critical: every crash on the node runs it
//! as root on the host.

use super::common::{MAX_FINDINGS, describe_owner};
use super::{CheckDef, History, Needs, Outcome};
use crate::config::CheckSettings;
use crate::finding::{Evidence, Finding, Measure, Severity, Subject, SubjectKind, key};
use crate::knowledge::Version;
use crate::knowledge::coredump::{CorePattern, Mode};
use crate::knowledge::sysctl::knowledge;
use crate::model::kernel::sysctl_path;
use crate::model::process::Process;
use crate::model::snapshot::Snapshot;
use crate::model::sysctl_conf::SysctlConf;
use std::collections::BTreeMap;

pub const CHECK: CheckDef = CheckDef {
    id: "sysctl-drift",
    title: "global sysctls that differ from the node's sysctl.d files (set from a privileged pod?), core_pattern into a container",
    doc: include_str!("sysctl_drift.md"),
    needs: Needs {
        sysctl_conf: true,
        processes: true,
        container_mounts: true,
        mounts: true,
        // A value changed between the samples (someone writing it now) needs two.
        history: true,
        ..Needs::NONE
    },
    settings: &[],
    condition: Some(super::ConditionDef {
        type_: "SysctlDrift",
        true_reason: "GlobalSysctlDrifted",
        false_reason: "SysctlsMatchNodeConfig",
    }),
    run,
};

/// sysctl.d directories, highest priority first: a file name in an earlier one masks the
/// same name in a later one (systemd-sysctl, `sysctl --system`).
const DIRS: &[&str] = &[
    "/etc/sysctl.d",
    "/run/sysctl.d",
    "/usr/local/lib/sysctl.d",
    "/usr/lib/sysctl.d",
    "/lib/sysctl.d",
];

/// Directories of container runtimes' state: a program under them lives in a container's
/// root (an image layer, a writable layer, a pod volume).
const CONTAINER_STATE: &[&str] = &[
    "/var/lib/docker/",
    "/var/lib/containerd/",
    "/run/containerd/",
    "/var/run/containerd/",
    "/var/lib/containers/",
    "/run/containers/",
    "/var/lib/kubelet/pods/",
    "/run/k3s/containerd/",
];

/// One assignment in effect: the last file (in application order) that sets the name.
#[derive(Debug, Clone)]
pub struct Effective {
    pub value: String,
    pub file: String,
    pub line: u32,
}

/// What the files set, in the order systemd-sysctl applies them: sysctl.d files sorted by
/// name (the highest-priority directory's file of a name winning), then `/etc/sysctl.conf`.
pub fn effective(conf: &SysctlConf) -> BTreeMap<String, Effective> {
    let prio = |path: &str| DIRS.iter().position(|d| path.starts_with(&format!("{d}/")));
    let mut by_name: BTreeMap<&str, &crate::model::sysctl_conf::SysctlFile> = BTreeMap::new();
    for f in &conf.files {
        let Some(p) = prio(&f.path) else { continue };
        let name = f.path.rsplit('/').next().unwrap_or(&f.path);
        match by_name.get(name) {
            Some(have) if prio(&have.path).is_some_and(|q| q <= p) => {}
            _ => {
                by_name.insert(name, f);
            }
        }
    }
    let last = conf.files.iter().filter(|f| f.path == "/etc/sysctl.conf");
    let mut out = BTreeMap::new();
    for f in by_name.into_values().chain(last) {
        for e in &f.entries {
            out.insert(
                e.name.clone(),
                Effective {
                    value: e.value.clone(),
                    file: f.path.clone(),
                    line: e.line,
                },
            );
        }
    }
    out
}

/// Values as the kernel prints them and as files write them compare equal: whitespace
/// (tabs in `ip_local_port_range`) does not matter.
pub fn same_value(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

fn run(h: &History, _cfg: &CheckSettings) -> Outcome {
    let s = h.current();
    let Some(conf) = &s.sysctl_conf else {
        return Outcome::unknown(s.not_collected("the sysctl configuration files"));
    };
    let k = match knowledge() {
        Ok(k) => k,
        Err(e) => return Outcome::unknown(e),
    };
    let kernel = s.host.kernel_release.as_deref().and_then(Version::parse);
    let mut out = Outcome::default();
    if kernel.is_none() {
        out.unknown.push(
            "the kernel release was not read: which sysctls are namespaced is judged for current kernels".into(),
        );
    }
    let suspects = suspects(s);
    let global = |name: &str| !k.namespacing(name, kernel).is_namespaced();
    let mut findings: Vec<Finding> = Vec::new();

    // core_pattern into a container's root.
    let pattern_finding = s
        .sysctl("kernel.core_pattern")
        .ok()
        .and_then(|raw| container_root_handler(s, raw))
        .map(|(program, why)| {
            let raw = s.sysctl("kernel.core_pattern").unwrap_or_default();
            let mut f = drift_finding(
                Severity::Critical,
                "kernel.core_pattern",
                format!(
                    "kernel.core_pattern pipes every crash to {program}, which lies in a container's root ({why}): \
                     the kernel runs it as root in the host's namespaces"
                ),
                vec![Evidence::new(
                    "/proc/sys/kernel/core_pattern",
                    format!("{raw:?}: a pipe to {program} ({why})"),
                )],
                &suspects,
            );
            f.cause = "kernel.core_pattern is global: a privileged container (or one with /proc/sys writable) that \
                       sets it to a pipe into its own filesystem gets its program run as root on the host for \
                       every crash on the node — host code execution — and redirects every container's cores."
                .into();
            f.remedy = "Restore it now (`sysctl -w kernel.core_pattern=...` from /etc/sysctl.d or the distribution's \
                        default), find and remove the container that set it (the suspects), and stop running \
                        workloads privileged or with /proc/sys writable."
                .into();
            f
        });

    let files = effective(conf);
    for (name, e) in &files {
        if name.contains('*') || !global(name) {
            continue;
        }
        let Some(live) = s.sysctls.get(name) else {
            continue;
        };
        if same_value(live, &e.value) {
            continue;
        }
        if name == "kernel.core_pattern" && pattern_finding.is_some() {
            continue;
        }
        let mut f = drift_finding(
            Severity::Warning,
            name,
            format!(
                "{name} is {:?} on the node, but {}:{} sets {:?}",
                live.split_whitespace().collect::<Vec<_>>().join(" "),
                e.file,
                e.line,
                e.value
            ),
            vec![
                Evidence::new(format!("/{}", sysctl_path(name)), live.clone()),
                Evidence::new(
                    format!("{}:{}", e.file, e.line),
                    format!("{name} = {}", e.value),
                ),
            ],
            &suspects,
        );
        if let (Ok(a), Ok(b)) = (live.trim().parse::<f64>(), e.value.trim().parse::<f64>()) {
            f.measures.insert(0, Measure::count("value", a).of(b));
        }
        findings.push(f);
    }
    // Changed between samples (a one-shot window, or the agent's history).
    if let Some(first) = h.earliest() {
        for (name, now) in &s.sysctls {
            let Some(before) = first.sysctls.get(name) else {
                continue;
            };
            if same_value(before, now)
                || !global(name)
                || files.get(name).is_some_and(|e| !same_value(&e.value, now))
            {
                continue;
            }
            let severity = if name == "kernel.core_pattern" {
                Severity::Critical
            } else {
                Severity::Warning
            };
            findings.push(drift_finding(
                severity,
                name,
                format!(
                    "{name} changed from {before:?} to {now:?} between the samples ({} s apart)",
                    s.collected_at_ms.saturating_sub(first.collected_at_ms) / 1000
                ),
                vec![Evidence::new(
                    format!("/{}", sysctl_path(name)),
                    format!("{before:?} → {now:?}"),
                )],
                &suspects,
            ));
        }
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    if let Some(f) = pattern_finding {
        out.findings.push(f);
    }
    let total = findings.len();
    out.findings.extend(findings.into_iter().take(MAX_FINDINGS));
    if total > MAX_FINDINGS {
        out.findings.push(Finding {
            check: CHECK.id.into(),
            key: key::more(CHECK.id),
            severity: Severity::Warning,
            summary: format!(
                "and {} more drifted sysctls",
                total.saturating_sub(MAX_FINDINGS)
            ),
            cause: String::new(),
            remedy: String::new(),
            evidence: vec![],
            subjects: vec![],
            measures: vec![Measure::count(
                "sysctls",
                total.saturating_sub(MAX_FINDINGS) as u64,
            )],
            log: None,
            caused_by: Vec::new(),
            explains: Vec::new(),
        });
    }
    out
}

/// The privileged containers running now, each once: (a process of it, why).
fn suspects(s: &Snapshot) -> Vec<(&Process, String)> {
    let init_caps = s.process(1).and_then(|p| p.cap_eff);
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for p in s
        .process_list()
        .iter()
        .filter(|p| p.in_container() && !p.is_zombie())
    {
        let full = match (p.cap_eff, init_caps) {
            (Some(c), Some(i)) => i != 0 && c & i == i,
            (Some(c), None) => c.count_ones() >= 38,
            _ => false,
        };
        let writable = p.proc_sys.as_ref().filter(|m| m.writable);
        if !full && writable.is_none() {
            continue;
        }
        let id = (p.owner.container_id.clone(), p.owner.pod_uid.clone());
        if !seen.insert(id) {
            continue;
        }
        let mut why = Vec::new();
        if full {
            why.push("full capabilities (CapEff)".to_string());
        }
        if let Some(m) = writable {
            why.push(format!(
                "/proc/sys writable at {}",
                m.writable_at.as_deref().unwrap_or("/proc/sys")
            ));
        }
        out.push((p, why.join(", ")));
    }
    out
}

fn drift_finding(
    severity: Severity,
    name: &str,
    summary: String,
    mut evidence: Vec<Evidence>,
    suspects: &[(&Process, String)],
) -> Finding {
    let mut subjects = vec![Subject::path(
        SubjectKind::Node,
        format!("/{}", sysctl_path(name)),
    )];
    if suspects.is_empty() {
        evidence.push(Evidence::new(
            "/proc/*/status, /proc/*/mountinfo",
            "no container process can write /proc/sys now (a writer may have been an init container that is gone)",
        ));
    }
    for (p, why) in suspects.iter().take(10) {
        evidence.push(Evidence::new(
            format!("/proc/{}", p.pid),
            format!(
                "suspect: {} ({}) in {}: {why}",
                p.pid,
                p.comm,
                describe_owner(&p.owner)
            ),
        ));
        subjects.push(Subject::container(&p.owner));
    }
    Finding {
        check: CHECK.id.into(),
        key: key::sysctl(CHECK.id, name),
        severity,
        summary,
        cause: format!(
            "{name} is global (not namespaced): one value for the node. A pod cannot set it through \
             securityContext.sysctls (the kubelet and runc refuse); a privileged container writing /proc/sys can, \
             and then it changes for every pod and the host, outlives the pod, and a reboot silently reverts it \
             to the files' value."
        ),
        remedy: format!(
            "Decide the value the node needs and put it in /etc/sysctl.d (the node image); remove the writer \
             (privileged init containers running `sysctl -w`: see `node-doctor sysctl lint` on the manifests); \
             `node-doctor sysctl explain {name}`."
        ),
        evidence,
        subjects,
        measures: vec![Measure::count("suspects", suspects.len() as u64)],
        log: None,
        caused_by: Vec::new(),
        explains: Vec::new(),
    }
}

/// A piped core_pattern whose program lies in a container's root, and why it is judged so.
fn container_root_handler(s: &Snapshot, raw: &str) -> Option<(String, String)> {
    let p = CorePattern::parse(raw);
    let Mode::Pipe { program, .. } = &p.mode else {
        return None;
    };
    if program.starts_with("/proc/") {
        return Some((
            program.clone(),
            "a path through /proc: the crashing (or another) process's root".into(),
        ));
    }
    if let Some(dir) = CONTAINER_STATE.iter().find(|d| program.starts_with(*d)) {
        return Some((
            program.clone(),
            format!("under the runtime state directory {dir}"),
        ));
    }
    // Under an overlay mount (a container's rootfs) or one of its layers.
    for m in s.mounts.iter().flatten().filter(|m| m.fs_type == "overlay") {
        let mp = m.mount_point.trim_end_matches('/');
        if !mp.is_empty() && program.starts_with(&format!("{mp}/")) {
            return Some((
                program.clone(),
                format!("inside the overlay mounted at {}", m.mount_point),
            ));
        }
        for opt in m.super_options.split(',') {
            let Some((k, v)) = opt.split_once('=') else {
                continue;
            };
            if !matches!(k, "upperdir" | "lowerdir" | "workdir") {
                continue;
            }
            for layer in v.split(':') {
                let layer = layer.trim_end_matches('/');
                if !layer.is_empty() && program.starts_with(&format!("{layer}/")) {
                    return Some((
                        program.clone(),
                        format!("in the {k} of the overlay at {}", m.mount_point),
                    ));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::common::test_support::{process, snapshot};
    use crate::model::kernel::Mount;
    use crate::model::process::{CgroupMembership, ProcSysMount};
    use crate::model::sysctl_conf::{SysctlEntry, SysctlFile};

    fn file(path: &str, entries: &[(&str, &str)]) -> SysctlFile {
        SysctlFile {
            path: path.into(),
            entries: entries
                .iter()
                .enumerate()
                .map(|(i, (n, v))| SysctlEntry {
                    name: n.to_string(),
                    value: v.to_string(),
                    line: i as u32 + 1,
                    ignore_failure: false,
                })
                .collect(),
        }
    }

    fn node(files: Vec<SysctlFile>, live: &[(&str, &str)], procs: Vec<Process>) -> Snapshot {
        let mut s = snapshot(1000, 10, procs);
        s.host.kernel_release = Some("6.18.44".into());
        for (n, v) in live {
            s.sysctls.insert(n.to_string(), v.to_string());
        }
        s.sysctl_conf = Some(SysctlConf {
            files,
            truncated: false,
        });
        s
    }

    fn privileged(pid: i32) -> Process {
        let mut p = process(pid, 1, "es-init", 'S');
        p.cgroups = vec![CgroupMembership {
            hierarchy: 0,
            controllers: String::new(),
            path: format!(
                "/kubepods/pod0d6f2e1a-1b2c-4d3e-8f4a-5b6c7d8e9f00/{:064x}",
                pid
            ),
        }]
        .into();
        p.owner = crate::attribution::owner_of(&p.cgroups);
        p.cap_eff = Some(0x1ff_ffff_ffff);
        p.proc_sys = Some(ProcSysMount {
            writable: true,
            writable_at: Some("/proc/sys".into()),
            mnt_ns: Some(4026532177),
        });
        p
    }

    fn run1(s: &Snapshot) -> Outcome {
        run(
            &History::new(std::slice::from_ref(s)).unwrap(),
            &CheckSettings::default(),
        )
    }

    #[test]
    fn files_apply_in_systemds_order() {
        let conf = SysctlConf {
            files: vec![
                file(
                    "/usr/lib/sysctl.d/50-default.conf",
                    &[("vm.swappiness", "60"), ("fs.file-max", "1")],
                ),
                file("/etc/sysctl.d/50-default.conf", &[("vm.swappiness", "10")]),
                file("/usr/lib/sysctl.d/99-z.conf", &[("fs.file-max", "2")]),
                file("/etc/sysctl.conf", &[("fs.file-max", "3")]),
            ],
            truncated: false,
        };
        let e = effective(&conf);
        assert_eq!(
            e["vm.swappiness"].value, "10",
            "/etc's file masks /usr/lib's of the same name"
        );
        assert_eq!(e["fs.file-max"].value, "3", "/etc/sysctl.conf last");
        assert_eq!(e["fs.file-max"].file, "/etc/sysctl.conf");
        assert!(same_value("32768\t60999", "32768 60999"));
    }

    #[test]
    fn a_drifted_global_sysctl_names_the_file_and_the_privileged_suspect() {
        let s = node(
            vec![file(
                "/etc/sysctl.d/99-k8s.conf",
                &[
                    ("vm.max_map_count", "65530"),
                    ("net.core.somaxconn", "4096"),
                    ("kernel.pid_max", "4194304"),
                    ("fs.inotify.max_user_watches", "8192"),
                ],
            )],
            &[
                ("vm.max_map_count", "262144"),
                ("net.core.somaxconn", "128"),
                ("kernel.pid_max", "32768"),
                ("fs.inotify.max_user_watches", "8192"),
            ],
            vec![privileged(4100)],
        );
        let out = run1(&s);
        // net.* and (on 6.18) kernel.pid_max are namespaced: the host's values are not drift.
        assert_eq!(out.findings.len(), 1, "{:#?}", out.findings);
        let f = &out.findings[0];
        assert_eq!(f.key, "sysctl-drift/sysctl:vm.max_map_count");
        assert_eq!(f.severity, Severity::Warning);
        let v = f.measure("value").unwrap();
        assert_eq!((v.value, v.limit), (262144.0, Some(65530.0)));
        assert_eq!(f.measure("suspects").map(|m| m.value), Some(1.0));
        assert_eq!(f.subjects[1].kind, SubjectKind::Container);
        assert!(
            f.evidence
                .iter()
                .any(|e| e.source == "/etc/sysctl.d/99-k8s.conf:1")
        );
        // On a 6.13 kernel, kernel.pid_max is global: drift.
        let mut old = s.clone();
        old.host.kernel_release = Some("6.13.2".into());
        assert_eq!(run1(&old).findings.len(), 2);
    }

    #[test]
    fn core_pattern_into_a_container_is_critical() {
        let mut s = node(vec![], &[], vec![privileged(4100)]);
        s.mounts = Some(vec![Mount {
            mount_id: 900,
            parent_id: 1,
            device: "0:83".into(),
            root: "/".into(),
            mount_point: "/run/containerd/io.containerd.runtime.v2.task/k8s.io/abc/rootfs".into(),
            fs_type: "overlay".into(),
            source: Some("overlay".into()),
            super_options: "lowerdir=/var/lib/containerd/snap/1/fs,upperdir=/data/ctr/42/fs,rw"
                .into(),
        }]);
        for (pattern, critical) in [
            ("|/data/ctr/42/fs/tmp/x %P", true),
            (
                "|/run/containerd/io.containerd.runtime.v2.task/k8s.io/abc/rootfs/x",
                true,
            ),
            ("|/proc/%P/root/tmp/pwn", true),
            ("|/var/lib/docker/overlay2/l/x/diff/evil", true),
            (
                "|/lib/systemd/systemd-coredump %P %u %g %s %t 9223372036854775808 %h %d",
                false,
            ),
            ("core", false),
        ] {
            s.sysctls
                .insert("kernel.core_pattern".into(), pattern.into());
            let out = run1(&s);
            let crit = out.findings.iter().any(|f| {
                f.severity == Severity::Critical
                    && f.key == "sysctl-drift/sysctl:kernel.core_pattern"
            });
            assert_eq!(crit, critical, "{pattern}: {:#?}", out.findings);
        }
    }

    #[test]
    fn changes_between_samples_and_a_node_without_files() {
        let a = node(
            vec![],
            &[("vm.swappiness", "60"), ("net.core.somaxconn", "128")],
            vec![],
        );
        let mut b = a.clone();
        b.collected_at_ms += 1000;
        b.sysctls.insert("vm.swappiness".into(), "1".into());
        b.sysctls.insert("net.core.somaxconn".into(), "4096".into());
        let out = run(&History::new([&a, &b]).unwrap(), &CheckSettings::default());
        assert_eq!(out.findings.len(), 1);
        assert!(
            out.findings[0]
                .summary
                .contains("changed from \"60\" to \"1\"")
        );
        assert!(run1(&a).findings.is_empty() && run1(&a).unknown.is_empty());
        let mut none = a.clone();
        none.sysctl_conf = None;
        assert!(run1(&none).inconclusive);
    }
}
