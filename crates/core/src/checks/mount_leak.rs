//! `mount-leak`: mounts that outlive their pod or container, and a mount table that grows
//! (incident 2c).
//!
//! The kubelet mounts every volume and subPath under `<root-dir>/pods/<uid>/`; when an
//! unmount fails (busy, a stale NFS handle, a copy in another mount namespace) the mounts
//! stay after the pod is gone, and the kubelet logs "orphaned pod ... found, but volume paths
//! are still present on disk" every cleanup cycle. Each mount costs everyone who reads the
//! table: systemd re-reads the whole of `/proc/self/mountinfo` on every change and keeps a
//! `.mount` unit per mount (src/core/mount.c), the kubelet and cAdvisor walk them, so CPU
//! scales with table size × churn (systemd#8703, #10268, kops#5916).

use super::common::{MAX_FINDINGS, change, signed_delta};
use super::{CheckDef, History, Needs, Outcome};
use crate::attribution::{PodMount, PodMountKind, pod_mount, runtime_mount, short_id};
use crate::config::{CheckSettings, SettingDef};
use crate::finding::{Evidence, Finding, Measure, Severity, Subject, SubjectKind, key};
use crate::model::mount_owners::PodsDir;
use crate::model::snapshot::Snapshot;
use crate::model::unavailable::Kind;
use std::collections::{BTreeMap, BTreeSet};

pub const CHECK: CheckDef = CheckDef {
    id: "mount-leak",
    title: "mounts left by pods and containers that are gone, and a mount table that grows (systemd mount units)",
    doc: include_str!("mount_leak.md"),
    needs: Needs {
        mounts: true,
        kubelet_pods: true,
        systemd: true,
        // Which pods and containers still exist: their cgroups.
        cgroups: true,
        history: true,
        ..Needs::NONE
    },
    settings: &[WARN, CRIT, GROWTH_MIN, TRANSIENT_WARN],
    condition: Some(super::ConditionDef {
        type_: "MountLeak",
        true_reason: "MountsLeaked",
        false_reason: "MountTableClean",
    }),
    run,
};

pub const WARN: SettingDef = SettingDef::count(
    "warn",
    1000,
    "mounts in PID 1's table: warning from this many (systemd#37642: 1000 mounts and churn gave systemd high CPU)",
);
pub const CRIT: SettingDef = SettingDef::count(
    "crit",
    5000,
    "mounts in PID 1's table: critical from this many (k/k#70324 at ~5900 leaked scopes; systemd#10268: 2000 took 20 s)",
);
pub const GROWTH_MIN: SettingDef = SettingDef::count(
    "growth_min",
    100,
    "mounts more than in the earliest sample, with no more pods: warning",
);
pub const TRANSIENT_WARN: SettingDef = SettingDef::count(
    "transient_warn",
    100,
    "transient run-r*.scope units of systemd-run (the kubelet's mounts) left in /run/systemd/transient: warning",
);

const MOUNTINFO: [&str; 2] = ["proc/1/mountinfo", "proc/self/mountinfo"];

/// Kubelet pod mounts by (pods directory, pod uid), each with its mount point.
type ByPod<'a> = BTreeMap<(&'a str, &'a str), Vec<(&'a str, PodMount<'a>)>>;

fn run(h: &History, cfg: &CheckSettings) -> Outcome {
    let s = h.current();
    let Some(mounts) = &s.mounts else {
        return Outcome::unknown(s.why_missing(MOUNTINFO[0]));
    };
    let mut outcome = Outcome::found(Vec::new());
    if let Some(f) = table(h, cfg) {
        outcome.findings.push(f);
    }
    if let Some(f) = transient_units(s, cfg) {
        outcome.findings.push(f);
    }

    // Which pods and containers exist: their cgroups, when every hierarchy was walked.
    let cgroups = s.cgroups.as_ref().filter(|c| !c.ids_truncated);
    let pods_alive: Option<BTreeSet<&str>> =
        cgroups.map(|c| c.pod_uids.iter().map(String::as_str).collect());
    let ctrs_alive: Option<BTreeSet<&str>> =
        cgroups.map(|c| c.container_ids.iter().map(String::as_str).collect());

    let mut pods: ByPod = BTreeMap::new();
    let mut ctrs: BTreeMap<&str, (&'static str, Vec<&str>)> = BTreeMap::new();
    for m in mounts {
        if let Some(p) = pod_mount(&m.mount_point) {
            pods.entry((p.pods_dir, p.pod_uid))
                .or_default()
                .push((m.mount_point.as_str(), p));
        } else if let Some((runtime, id)) = runtime_mount(&m.mount_point) {
            ctrs.entry(id)
                .or_insert((runtime, Vec::new()))
                .1
                .push(&m.mount_point);
        }
    }
    let dirs = s.kubelet_pods.as_deref().unwrap_or(&[]);
    let mut unsure: u64 = 0;
    let mut leaks = Vec::new();
    for ((pods_dir, uid), list) in &pods {
        let dir = dirs.iter().find(|d| d.path == *pods_dir);
        let dir_exists = dir
            .and_then(|d| d.uids.as_ref().filter(|_| !d.truncated))
            .map(|u| u.binary_search_by(|x| x.as_str().cmp(uid)).is_ok());
        let pod_alive = pods_alive.as_ref().map(|set| set.contains(uid));
        let gone = dir_exists == Some(false) || pod_alive == Some(false);
        if !gone {
            if pod_alive.is_none() {
                unsure = unsure.saturating_add(1);
            }
            continue;
        }
        leaks.push(pod_finding(pods_dir, uid, list, dir, dir_exists, pod_alive));
    }
    for (id, (runtime, list)) in &ctrs {
        match &ctrs_alive {
            Some(set) if !set.contains(id) => leaks.push(container_finding(id, runtime, list)),
            Some(_) => {}
            None => unsure = unsure.saturating_add(1),
        }
    }
    leaks.sort_by(|a, b| {
        let n = |f: &Finding| f.measure("mounts").map_or(0.0, |m| m.value);
        n(b).partial_cmp(&n(a)).unwrap_or(std::cmp::Ordering::Equal)
    });
    outcome
        .findings
        .extend(leaks.into_iter().take(MAX_FINDINGS));
    if unsure > 0 {
        outcome.unknown.push(format!(
            "{unsure} pods or containers with mounts: whether they still exist needs their cgroups, and {}",
            match &s.cgroups {
                None => s.not_collected("cgroups"),
                Some(_) => "the cgroup walk did not see every directory".to_string(),
            }
        ));
    }
    outcome
}

/// The mount table's size and growth, and the cap it may have hit.
fn table(h: &History, cfg: &CheckSettings) -> Option<Finding> {
    let s = h.current();
    let mounts = s.mounts.as_deref().unwrap_or(&[]);
    let (warn, crit, growth_min) = (cfg.count(&WARN), cfg.count(&CRIT), cfg.count(&GROWTH_MIN));
    let n = mounts.len() as u64;
    let cut = s
        .unavailable
        .iter()
        .find(|u| u.kind == Kind::Truncated && MOUNTINFO.contains(&u.path.as_str()));
    let growth = change(h, |x| x.mounts.as_ref().map(|m| m.len() as u64));
    let pods = change(h, |x| x.cgroups.as_ref().map(|c| c.pod_uids.len() as u64));
    let growing =
        growth.is_some_and(|g| g.delta() >= growth_min) && pods.is_none_or(|p| p.last <= p.first);
    let severity = if cut.is_some() || n >= crit {
        Severity::Critical
    } else if n >= warn || growing {
        Severity::Warning
    } else {
        return None;
    };
    let systemd = s.systemd.as_ref().filter(|d| d.is_pid1());
    let units: BTreeSet<&str> = mounts.iter().map(|m| m.mount_point.as_str()).collect();
    let pod_mounts = mounts
        .iter()
        .filter(|m| pod_mount(&m.mount_point).is_some())
        .count();

    let mut summary = match cut {
        Some(_) => format!(
            "the mount table is larger than node-doctor's read cap: {n} mounts read and more not (the table itself is the symptom)"
        ),
        None => format!("{n} mounts in the host's mount table"),
    };
    if let Some(g) = growth {
        summary.push_str(&format!(
            ", {} since the earliest sample",
            signed_delta(g.first, g.last)
        ));
        if let Some(p) = pods {
            summary.push_str(&format!(" (pods {})", signed_delta(p.first, p.last)));
        }
    }
    if systemd.is_some() {
        summary.push_str(&format!(
            "; systemd keeps {} .mount units for them",
            units.len()
        ));
    }

    let source = cut.map_or(MOUNTINFO[0].to_string(), |u| u.path.clone());
    let mut evidence = vec![
        Evidence::new(
            format!("/{source}"),
            match cut {
                Some(u) => format!("{n} lines parsed; {}", u.reason),
                None => format!("{n} lines"),
            },
        )
        .with_threshold(format!(
            "warning ≥ {warn}, critical ≥ {crit}; growth ≥ {growth_min} without more pods"
        )),
        Evidence::new(
            format!("/{source}"),
            format!(
                "{pod_mounts} under kubelet pod directories (…/pods/<uid>/volumes, volume-subpaths)"
            ),
        ),
    ];
    if let Some(g) = growth {
        evidence.push(Evidence::new(
            format!("/{source}"),
            format!("{} mounts in the earliest sample, {} now", g.first, g.last),
        ));
    }
    let mut measures = vec![Measure::count("mounts", n).of(warn)];
    if let Some(g) = growth {
        measures.push(Measure::count("mounts_earliest", g.first));
    }
    if let Some(d) = systemd {
        measures.push(Measure::count("mount_units", units.len()));
        evidence.push(Evidence::new(
            "/run/systemd/system",
            format!(
                "systemd is PID 1 ({}): one .mount unit per mount point",
                d.pid1_comm.as_deref().unwrap_or("?")
            ),
        ));
    }
    let mut cause = String::from(
        "Every mount is in the table everyone reads: the kubelet, cAdvisor and container runtimes walk it, \
         and it grows when unmounts fail or mounts leak (a volume whose pod is gone, a subPath bind mount, \
         mounts copied into other mount namespaces).",
    );
    if systemd.is_some() {
        cause.push_str(
            " systemd as PID 1 keeps a .mount unit per mount and re-reads the whole mountinfo on every \
             change, so its CPU grows with table size × churn; older systemd (before 237, Ubuntu 16.04's \
             229) also kept a unit for every subPath mount after the pod ended, and the kubelet's memory \
             grew with them (incident 2c).",
        );
    }
    if cut.is_some() {
        cause.push_str(
            " This table is larger than 16 MiB (over a hundred thousand mounts): that alone makes every \
             reader of it slow.",
        );
    }
    Some(Finding {
        check: CHECK.id.into(),
        key: key::node(CHECK.id),
        severity,
        summary,
        cause,
        remedy: "See what the mounts are: `awk '{print $5}' /proc/1/mountinfo | sed 's|/[^/]*$||' | sort | uniq -c | sort -rn | head`; \
                 unmount what belongs to pods and containers that are gone (the findings naming them), and fix \
                 what leaks them: the kubelet's orphaned-pod errors (`journalctl -u kubelet | grep -i orphaned`), \
                 a runtime that fails to unmount. On systemd before 237, upgrade systemd (Ubuntu 18.04+)."
            .into(),
        evidence,
        subjects: vec![Subject::new(SubjectKind::Node)],
        measures,
        log: None,
        caused_by: Vec::new(),
        explains: Vec::new(),
    })
}

fn transient_units(s: &Snapshot, cfg: &CheckSettings) -> Option<Finding> {
    let d = s.systemd.as_ref().filter(|d| d.is_pid1())?;
    let bar = cfg.count(&TRANSIENT_WARN);
    if d.transient_run_scopes < bar {
        return None;
    }
    let total: u64 = d.transient_units.values().sum();
    Some(Finding {
        check: CHECK.id.into(),
        key: key::node_aspect(CHECK.id, "systemd-transient"),
        severity: Severity::Warning,
        summary: format!(
            "{} transient run-r*.scope units left by systemd-run ({total} transient units in all)",
            d.transient_run_scopes
        ),
        cause: "The kubelet runs its mounts through `systemd-run --scope` ('Kubernetes transient mount for …'), \
                one transient scope each; they should go when the mount command exits. Left behind they load \
                systemd and, as cgroups, every cgroup watcher (k/k#57345: loaded inactive dead units; k/k#70324: \
                5920 leaked run-r*.scope cgroups and inotify ENOSPC)."
            .into(),
        remedy: "List them: `systemctl list-units --all 'run-r*.scope'`; stop the dead ones (`systemctl stop`, \
                 `systemctl reset-failed`); upgrade systemd (the leak of transient mount units was fixed in 237, \
                 Azure/aks-engine#661; before 247 a large unit set also fails new scopes with 'Argument list too long')."
            .into(),
        evidence: vec![
            Evidence::new(
                "/run/systemd/transient",
                format!(
                    "{} files: {}",
                    total,
                    d.transient_units
                        .iter()
                        .map(|(k, v)| format!("{v} .{k}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .with_threshold(format!("warning ≥ {bar} run-r*.scope")),
        ],
        subjects: vec![Subject::new(SubjectKind::Node)],
        measures: vec![Measure::count("transient_run_scopes", d.transient_run_scopes).of(bar)],
        log: None,
        caused_by: Vec::new(),
        explains: Vec::new(),
    })
}

fn pod_finding(
    pods_dir: &str,
    uid: &str,
    list: &[(&str, PodMount)],
    dir: Option<&PodsDir>,
    dir_exists: Option<bool>,
    pod_alive: Option<bool>,
) -> Finding {
    let n = list.len();
    let subpaths = list
        .iter()
        .filter(|(_, p)| p.kind == PodMountKind::Subpath)
        .count();
    let volumes: BTreeSet<&str> = list.iter().filter_map(|(_, p)| p.volume).collect();
    let pod_dir = format!("{pods_dir}/{uid}");
    let why = match (dir_exists, pod_alive) {
        (Some(false), _) => "its pod directory is gone",
        _ => "no cgroup of the pod exists: the pod no longer runs",
    };
    let mut evidence = vec![Evidence::new(
        "/proc/1/mountinfo",
        format!(
            "{n} mounts under {pod_dir} ({subpaths} subPath), volumes {}",
            volumes
                .iter()
                .take(8)
                .copied()
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )];
    for (mp, _) in list.iter().take(3) {
        evidence.push(Evidence::new("/proc/1/mountinfo", (*mp).to_string()));
    }
    if let Some(d) = dir {
        evidence.push(Evidence::new(
            d.path.clone(),
            match dir_exists {
                Some(true) => format!("{uid} is still there"),
                Some(false) => format!("no {uid} directory"),
                None => "could not be listed".into(),
            },
        ));
    }
    evidence.push(Evidence::new(
        "cgroup hierarchies",
        match pod_alive {
            Some(true) => format!("a pod{uid} cgroup exists"),
            Some(false) => format!("no cgroup names pod {uid}"),
            None => "not known".into(),
        },
    ));
    Finding {
        check: CHECK.id.into(),
        key: key::pod(CHECK.id, uid),
        severity: Severity::Warning,
        summary: format!("{n} volume mounts of pod {uid} are left although {why}"),
        cause: "The kubelet could not unmount the pod's volumes when the pod went (a busy mount, a stale NFS \
                handle, a copy held in another mount namespace, a CSI vol_data.json left behind), so it keeps \
                the pod directory and logs 'orphaned pod … found, but volume paths are still present on disk' \
                every cleanup cycle. Every leaked mount stays in the table systemd, the kubelet and cAdvisor read."
            .into(),
        remedy: format!(
            "Check nothing uses them (`grep -l {uid} /proc/[0-9]*/mountinfo` names namespaces holding copies), \
             then unmount and clean up: `grep {pod_dir} /proc/1/mountinfo | awk '{{print $5}}' | sort -r | xargs -r -n1 umount` \
             and remove {pod_dir}; the kubelet then stops reporting the orphan."
        ),
        evidence,
        subjects: vec![Subject {
            pod: Some(uid.to_string()),
            path: Some(pod_dir),
            ..Subject::new(SubjectKind::Pod)
        }],
        measures: vec![
            Measure::count("mounts", n),
            Measure::count("subpath_mounts", subpaths),
            Measure::count("pod_dir_exists", u64::from(dir_exists.unwrap_or(true))),
        ],
        log: None,
        caused_by: Vec::new(),
        explains: Vec::new(),
    }
}

fn container_finding(id: &str, runtime: &str, list: &[&str]) -> Finding {
    let mut evidence: Vec<Evidence> = list
        .iter()
        .take(3)
        .map(|mp| Evidence::new("/proc/1/mountinfo", (*mp).to_string()))
        .collect();
    evidence.push(Evidence::new(
        "cgroup hierarchies",
        format!("no cgroup names container {}", short_id(id)),
    ));
    Finding {
        check: CHECK.id.into(),
        key: key::container(CHECK.id, id),
        severity: Severity::Warning,
        summary: format!(
            "{} mounts of {runtime} container {} are left under the runtime's state directory although the container is gone",
            list.len(),
            short_id(id)
        ),
        cause: "The runtime mounted the container's rootfs or /dev/shm under its state directory and did not \
                unmount it when the container was deleted (a shim that died, a busy mount)."
            .into(),
        remedy: format!(
            "Confirm the container is gone (`crictl ps -a | grep {}` / `ctr -n k8s.io c ls`), then unmount: \
             `grep {id} /proc/1/mountinfo | awk '{{print $5}}' | xargs -r -n1 umount`.",
            short_id(id)
        ),
        evidence,
        subjects: vec![Subject {
            container_id: Some(id.to_string()),
            ..Subject::new(SubjectKind::Container)
        }],
        measures: vec![Measure::count("mounts", list.len())],
        log: None,
        caused_by: Vec::new(),
        explains: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cgroups::Cgroups;
    use crate::model::kernel::Mount;
    use crate::model::mount_owners::Systemd;
    use crate::model::unavailable::Unavailable;

    const UID: &str = "8c1f0b5e-3d2a-4f6b-9e7d-1a2b3c4d5e6f";
    const ID: &str = "3f1c9a27d0b4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e";

    fn m(i: usize, mp: &str) -> Mount {
        Mount {
            mount_id: i as i32,
            parent_id: 1,
            device: "0:40".into(),
            root: "/".into(),
            mount_point: mp.into(),
            fs_type: "tmpfs".into(),
            source: None,
            super_options: String::new(),
        }
    }

    fn node(at: u64, mounts: Vec<Mount>, pods: &[&str]) -> Snapshot {
        Snapshot {
            collected_at_ms: at,
            mounts: Some(mounts),
            cgroups: Some(Cgroups {
                pod_uids: pods.iter().map(|p| p.to_string()).collect(),
                ..Cgroups::default()
            }),
            kubelet_pods: Some(vec![PodsDir {
                path: "/var/lib/kubelet/pods".into(),
                uids: Some(vec![UID.into()]),
                truncated: false,
            }]),
            ..Snapshot::default()
        }
    }

    fn pod_mounts(n: usize) -> Vec<Mount> {
        let mut v = vec![m(0, "/"), m(1, "/proc")];
        for i in 0..n {
            v.push(m(
                i + 2,
                &format!("/var/lib/kubelet/pods/{UID}/volume-subpaths/cfg/app/{i}"),
            ));
        }
        v
    }

    fn run(samples: &[Snapshot]) -> Outcome {
        super::run(&History::new(samples).unwrap(), &CheckSettings::default())
    }

    #[test]
    fn a_running_pods_mounts_are_fine_a_gone_pods_are_named() {
        let out = run(&[node(0, pod_mounts(20), &[UID])]);
        assert!(out.findings.is_empty() && out.unknown.is_empty(), "{out:?}");
        let out = run(&[node(0, pod_mounts(20), &[])]);
        assert_eq!(out.findings.len(), 1, "{out:?}");
        let f = &out.findings[0];
        assert_eq!(f.key, format!("mount-leak/pod:{UID}"));
        assert_eq!(f.subjects[0].pod.as_deref(), Some(UID));
        assert_eq!(f.measure("mounts").map(|m| m.value), Some(20.0));
        assert_eq!(f.measure("subpath_mounts").map(|m| m.value), Some(20.0));
        assert_eq!(f.measure("pod_dir_exists").map(|m| m.value), Some(1.0));
        // The pod's directory is gone: named even without cgroups to ask.
        let mut s = node(0, pod_mounts(3), &[UID]);
        s.kubelet_pods.as_mut().unwrap()[0].uids = Some(vec![]);
        s.cgroups = None;
        let out = run(&[s]);
        assert_eq!(
            out.findings[0].measure("pod_dir_exists").map(|m| m.value),
            Some(0.0)
        );
        // No cgroups and the directory there: cannot tell, says so.
        let mut s = node(0, pod_mounts(3), &[]);
        s.cgroups = None;
        let out = run(&[s]);
        assert!(out.findings.is_empty());
        assert!(out.unknown[0].contains("cgroups"), "{:?}", out.unknown);
    }

    #[test]
    fn table_size_growth_and_the_read_cap() {
        let big: Vec<Mount> = (0..1200).map(|i| m(i, &format!("/mnt/{i}"))).collect();
        let out = run(&[node(0, big.clone(), &[])]);
        assert_eq!(out.findings[0].severity, Severity::Warning);
        assert_eq!(
            out.findings[0].measure("mounts").map(|m| m.value),
            Some(1200.0)
        );
        // Growing by 150 while the pods stay: warning, small as the table is.
        let a = node(
            0,
            (0..50).map(|i| m(i, &format!("/mnt/{i}"))).collect(),
            &[UID],
        );
        let b = node(
            5000,
            (0..200).map(|i| m(i, &format!("/mnt/{i}"))).collect(),
            &[UID],
        );
        let out = run(&[a.clone(), b.clone()]);
        assert_eq!(
            out.findings[0].measure("mounts_earliest").map(|m| m.value),
            Some(50.0)
        );
        // ... but not when pods came with them.
        let mut b2 = b.clone();
        b2.cgroups.as_mut().unwrap().pod_uids.push("x".into());
        assert!(run(&[a, b2]).findings.is_empty());
        // A table over the read cap is the symptom, critical.
        let mut s = node(0, pod_mounts(0), &[]);
        s.unavailable
            .push(Unavailable::truncated("proc/1/mountinfo", 16 << 20));
        let out = run(&[s]);
        assert_eq!(out.findings[0].severity, Severity::Critical);
        assert!(
            out.findings[0].summary.contains("read cap"),
            "{}",
            out.findings[0].summary
        );
    }

    #[test]
    fn systemd_units_and_runtime_mounts() {
        let mut mounts = pod_mounts(0);
        mounts.push(m(
            9,
            &format!("/run/containerd/io.containerd.runtime.v2.task/k8s.io/{ID}/rootfs"),
        ));
        let mut s = node(0, mounts, &[]);
        let out = run(&[s.clone()]);
        assert_eq!(out.findings.len(), 1);
        assert_eq!(out.findings[0].key, format!("mount-leak/container:{ID}"));
        s.cgroups.as_mut().unwrap().container_ids.push(ID.into());
        let mut d = Systemd {
            booted: true,
            pid1_comm: Some("systemd".into()),
            transient_run_scopes: 300,
            ..Systemd::default()
        };
        d.transient_units.insert("scope".into(), 300);
        s.systemd = Some(d);
        let out = run(&[s]);
        assert_eq!(out.findings.len(), 1, "{out:?}");
        assert_eq!(out.findings[0].key, "mount-leak/node:systemd-transient");
        assert_eq!(
            out.findings[0]
                .measure("transient_run_scopes")
                .map(|m| m.value),
            Some(300.0)
        );
    }
}
