//! `disk-pressure`: blocks and inodes of the filesystems a node needs to keep working.
//!
//! kubelet evicts pods and stops admitting them when its filesystems fill (`nodefs`,
//! `imagefs`), containerd cannot unpack images, and a full root breaks everything that
//! writes a log. Coredumps of containers land in `/var/lib/systemd/coredump` on the host's
//! root (incident 3), which fills while `du` inside containers shows nothing.

use super::{CheckDef, History, Needs, Outcome, pct};
use crate::attribution::short_id;
use crate::config::{CheckSettings, SettingDef};
use crate::finding::{Evidence, Finding, Measure, Severity, Subject, SubjectKind, Unit, key};
use crate::model::fs::{DeletedHolder, DeletedOpenFiles, FilesystemUsage, Role};

pub const CHECK: CheckDef = CheckDef {
    id: "disk-pressure",
    title: "blocks or inodes of /, kubelet, runtime and coredump filesystems nearly used up",
    doc: include_str!("disk_pressure.md"),
    needs: Needs {
        filesystems: true,
        deleted_files: true,
        ..Needs::NONE
    },
    settings: &[WARN, CRIT],
    condition: Some(super::ConditionDef {
        type_: "FilesystemFilling",
        true_reason: "FilesystemNearlyFull",
        false_reason: "FilesystemsHaveRoom",
    }),
    run,
};

pub const WARN: SettingDef = SettingDef::ratio(
    "warn",
    0.85,
    "warning at this share of blocks or inodes used",
);
pub const CRIT: SettingDef = SettingDef::ratio(
    "crit",
    0.95,
    "critical at this share of blocks or inodes used",
);

fn run(h: &History, cfg: &CheckSettings) -> Outcome {
    let s = h.current();
    let bands = (cfg.ratio(&WARN), cfg.ratio(&CRIT));
    let Some(filesystems) = &s.filesystems else {
        return Outcome::unknown(s.not_collected("filesystems"));
    };
    let mut out = Outcome::default();
    // A watched path that exists but could not be measured is recorded under its host path.
    for u in s.unavailable.iter().filter(|u| {
        Role::WATCHED
            .iter()
            .any(|(w, _)| w.trim_start_matches('/') == u.path)
    }) {
        out.unknown.push(format!("cannot measure {u}"));
    }
    if filesystems.is_empty() {
        if out.unknown.is_empty() {
            out.unknown
                .push("no watched filesystem was measured".into());
        }
        out.inconclusive = true;
    }
    for fs in filesystems {
        if let Some(mut f) = assess(fs, bands) {
            if let Some(d) = &s.deleted_open {
                name_deleted_holders(&mut f, fs, d);
            }
            out.findings.push(f);
        }
    }
    out
}

/// Most holders of open deleted files a finding names.
const MAX_HOLDERS_NAMED: usize = 5;

/// The `df` says full / `du` finds nothing case: the open deleted files on `fs` and who
/// holds them (pid, command, container, size) join its finding.
pub fn name_deleted_holders(f: &mut Finding, fs: &FilesystemUsage, d: &DeletedOpenFiles) {
    if !d.filesystems.contains(&fs.mount_point) {
        return;
    }
    let on_fs: Vec<&DeletedHolder> = d
        .holders
        .iter()
        .filter(|h| !fs.device.is_empty() && h.device == fs.device)
        .collect();
    // By process: its files and bytes.
    let mut by_pid: Vec<(i32, u64, Vec<&DeletedHolder>)> = Vec::new();
    for h in &on_fs {
        match by_pid.iter_mut().find(|(p, _, _)| *p == h.pid) {
            Some((_, bytes, files)) => {
                *bytes = bytes.saturating_add(h.bytes);
                files.push(h);
            }
            None => by_pid.push((h.pid, h.bytes, vec![h])),
        }
    }
    by_pid.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let total: u64 = on_fs.iter().fold(0u64, |a, h| a.saturating_add(h.bytes));
    f.measures
        .push(Measure::new("deleted_open_bytes", total, Unit::Bytes));
    f.measures
        .push(Measure::count("deleted_open_files", on_fs.len() as u64));
    if by_pid.is_empty() {
        f.evidence.push(Evidence::new(
            "/proc/*/fd",
            format!(
                "no open deleted file on {} ({} processes walked{}{})",
                fs.mount_point,
                d.processes_scanned,
                if d.skipped_d_state > 0 {
                    format!(", {} in D state not touched", d.skipped_d_state)
                } else {
                    String::new()
                },
                if d.truncated {
                    ", walk cut at its bounds"
                } else {
                    ""
                }
            ),
        ));
        return;
    }
    let describe = |h: &DeletedHolder| {
        let mut who = format!("{} ({})", h.pid, h.comm);
        if let Some(c) = &h.owner.container_id {
            who.push_str(&format!(", container {}", short_id(c)));
        }
        if let Some(p) = &h.owner.pod_uid {
            who.push_str(&format!(", pod {p}"));
        }
        who
    };
    let Some((_, top_bytes, top_files)) = by_pid.first() else {
        return;
    };
    f.summary.push_str(&format!(
        "; {} in {} deleted file{} still open, {} by {}",
        human_bytes(total),
        on_fs.len(),
        if on_fs.len() == 1 { "" } else { "s" },
        human_bytes(*top_bytes),
        top_files.first().map(|h| describe(h)).unwrap_or_default()
    ));
    for (pid, bytes, files) in by_pid.iter().take(MAX_HOLDERS_NAMED) {
        let Some(first) = files.first() else { continue };
        f.evidence.push(Evidence::new(
            format!("/proc/{pid}/fd"),
            format!(
                "{} holds {} deleted but open in {} file{}: {}",
                describe(first),
                human_bytes(*bytes),
                files.len(),
                if files.len() == 1 { "" } else { "s" },
                files
                    .iter()
                    .take(3)
                    .map(|h| format!(
                        "fd {} -> {} (deleted), {}",
                        h.fd,
                        h.path,
                        human_bytes(h.bytes)
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ));
        f.subjects.push(Subject {
            pid: Some(first.pid),
            comm: Some(first.comm.clone()),
            container_id: first.owner.container_id.clone(),
            pod: first.owner.pod_uid.clone(),
            ..Subject::new(SubjectKind::Process)
        });
    }
    f.remedy.push_str(&format!(
        " The space is held by deleted files still open: make {} close them (restart it, or send the signal that reopens its logs), or truncate one in place with `: > /proc/PID/fd/N`; a core being written frees itself when its handler finishes.",
        top_files.first().map(|h| describe(h)).unwrap_or_default()
    ));
}

/// Bytes in the largest binary unit that keeps a leading digit ("1.5 GiB", "64.0 KiB").
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut unit = UNITS.iter();
    let mut name = unit.next().copied().unwrap_or("B");
    for next in unit {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        name = next;
    }
    if name == "B" {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {name}")
    }
}

/// One finding for a filesystem whose blocks or inodes are over a band.
pub fn assess(fs: &FilesystemUsage, (warn, crit): (f64, f64)) -> Option<Finding> {
    let blocks = fs.blocks_used_ratio().unwrap_or(0.0);
    let inodes = fs.inodes_used_ratio().unwrap_or(0.0);
    let sev_blocks = Severity::from_ratio(blocks, warn, crit);
    let sev_inodes = Severity::from_ratio(inodes, warn, crit);
    let severity = sev_blocks.max(sev_inodes)?;

    let what = match (sev_blocks.is_some(), sev_inodes.is_some()) {
        (true, true) => format!(
            "{} of space and {} of inodes used",
            pct(blocks),
            pct(inodes)
        ),
        (false, true) => format!("{} of inodes used", pct(inodes)),
        _ => format!(
            "{} of space used, {} free",
            pct(blocks),
            human_bytes(fs.bytes_avail())
        ),
    };
    let holds = fs.paths.join(", ");
    let device = fs
        .source
        .as_deref()
        .map(|src| format!(" ({} {src})", fs.fs_type.as_deref().unwrap_or("?")))
        .unwrap_or_default();
    let threshold = format!("warning {} / critical {}", pct(warn), pct(crit));
    let first = fs.first_path();
    let evidence = vec![
        Evidence::new(
            format!("statvfs({first})"),
            format!(
                "blocks: {} used of {} ({} available to users), {} bytes each",
                fs.blocks_total.saturating_sub(fs.blocks_free),
                fs.blocks_total,
                fs.blocks_avail,
                fs.block_size
            ),
        )
        .with_threshold(threshold.clone()),
        Evidence::new(
            format!("statvfs({first})"),
            format!(
                "inodes: {} used of {}",
                fs.inodes_total.saturating_sub(fs.inodes_free),
                fs.inodes_total
            ),
        )
        .with_threshold(threshold),
        Evidence::new(
            "mountinfo",
            format!(
                "{} is mounted at {}{device}, holds {holds}",
                fs.device, fs.mount_point
            ),
        ),
    ];
    let subject = Subject::path(SubjectKind::Filesystem, fs.mount_point.clone());
    let used_blocks = fs.blocks_total.saturating_sub(fs.blocks_free);
    let measures = vec![
        Measure::new("blocks_used_ratio", blocks, Unit::Ratio).of(crit),
        Measure::new("inodes_used_ratio", inodes, Unit::Ratio).of(crit),
        Measure::new(
            "bytes_used",
            used_blocks.saturating_mul(fs.block_size),
            Unit::Bytes,
        )
        .of(used_blocks
            .saturating_add(fs.blocks_avail)
            .saturating_mul(fs.block_size)),
        Measure::new("bytes_avail", fs.bytes_avail(), Unit::Bytes),
    ];
    Some(Finding {
        check: CHECK.id.into(),
        key: key::filesystem(CHECK.id, &fs.mount_point),
        measures,
        log: None,
        caused_by: Vec::new(),
        explains: Vec::new(),
        severity,
        summary: format!("filesystem {} (holds {holds}): {what}", fs.mount_point),
        cause: cause_for(fs).into(),
        remedy: remedy_for(fs, warn),
        evidence,
        subjects: vec![subject],
    })
}

fn runtime_state(fs: &FilesystemUsage) -> bool {
    fs.roles.iter().any(|r| r.is_runtime_state())
}

fn cause_for(fs: &FilesystemUsage) -> &'static str {
    if fs.has_role(Role::Coredump) {
        "Core dumps of crashing processes, including those in containers (kernel.core_pattern is not namespaced \
         and pipes to systemd-coredump on the host), are written here; with an unlimited RLIMIT_CORE in a \
         container image they fill the host's disk while nothing large is visible inside the containers."
    } else if runtime_state(fs) {
        "Images, container writable layers, emptyDir volumes and logs live here; when it fills, kubelet evicts \
         pods (DiskPressure), image pulls fail and new pods cannot start."
    } else {
        "The filesystem is nearly full: writes fail with ENOSPC (or with no free inodes, even with space left), \
         breaking logs, the runtime and kubelet."
    }
}

fn remedy_for(fs: &FilesystemUsage, warn: f64) -> String {
    let mp = &fs.mount_point;
    let mut r = format!("See what uses it: `du -xh --max-depth=2 {mp} | sort -h | tail`");
    if fs.inodes_used_ratio().unwrap_or(0.0) >= warn {
        r.push_str(&format!("; for inodes: `find {mp} -xdev -type f | cut -d/ -f1-4 | sort | uniq -c | sort -n | tail`"));
    }
    if fs.has_role(Role::Coredump) {
        r.push_str(
            "; cores: `coredumpctl list`, then cap them in /etc/systemd/coredump.conf (MaxUse=, ProcessSizeMax=, or \
             Storage=none) and cap RLIMIT_CORE in containers",
        );
    }
    if runtime_state(fs) {
        r.push_str(
            "; images: `crictl rmi --prune`, and lower kubelet imageGCHighThresholdPercent / set \
             evictionHard nodefs.available/imagefs.available so kubelet cleans up before the disk is full",
        );
    }
    r.push_str(
        "; deleted files still held open: `find /proc/*/fd -lname '*(deleted)' 2>/dev/null`.",
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::process::CgroupMembership;

    fn tmpfs(mount: &str, used: u64) -> FilesystemUsage {
        FilesystemUsage {
            paths: vec![mount.into()],
            roles: vec![Role::Kubelet],
            mount_point: mount.into(),
            fs_type: Some("tmpfs".into()),
            source: Some("tmpfs".into()),
            device: "0:63".into(),
            block_size: 4096,
            blocks_total: 2560,
            blocks_free: 2560 - used,
            blocks_avail: 2560 - used,
            inodes_total: 1000,
            inodes_free: 990,
        }
    }

    fn holder(pid: i32, fd: i32, bytes: u64, device: &str) -> DeletedHolder {
        let cgroups = vec![CgroupMembership {
            hierarchy: 8,
            controllers: "pids".into(),
            path: "/kubepods/burstable/pod5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c/abc".into(),
        }];
        DeletedHolder {
            pid,
            comm: "logger".into(),
            start_time_ticks: 5,
            owner: crate::attribution::owner_of(&cgroups),
            cgroups: cgroups.into(),
            fd,
            path: format!("/var/lib/kubelet/log.{fd}"),
            device: device.into(),
            bytes,
            size: bytes,
        }
    }

    #[test]
    fn a_full_filesystem_names_who_holds_its_deleted_files() {
        // 10 MiB tmpfs at 94.7 %: 9.5 MiB held by pid 4242 in a deleted file.
        let fs = tmpfs("/var/lib/kubelet", 2425);
        let mut f = assess(&fs, (0.85, 0.95)).unwrap();
        assert_eq!(f.severity, Severity::Warning);
        let d = DeletedOpenFiles {
            filesystems: vec!["/var/lib/kubelet".into()],
            holders: vec![
                holder(4242, 3, 9 << 20, "0:63"),
                holder(4242, 4, 512 << 10, "0:63"),
                holder(77, 5, 1 << 20, "0:63"),
                holder(99, 3, 5 << 20, "8:1"),
            ],
            processes_scanned: 40,
            ..DeletedOpenFiles::default()
        };
        name_deleted_holders(&mut f, &fs, &d);
        assert_eq!(
            f.measure("deleted_open_bytes").map(|m| m.value),
            Some(((9u64 << 20) + (512 << 10) + (1 << 20)) as f64)
        );
        assert_eq!(f.measure("deleted_open_files").map(|m| m.value), Some(3.0));
        let pids: Vec<Option<i32>> = f.subjects.iter().skip(1).map(|s| s.pid).collect();
        assert_eq!(
            pids,
            vec![Some(4242), Some(77)],
            "largest holder first; other devices not"
        );
        assert_eq!(
            f.subjects[1].pod.as_deref(),
            Some("5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c")
        );
        assert!(
            f.summary.contains("deleted files still open"),
            "{}",
            f.summary
        );

        // Walked, nothing held: said so.
        let mut g = assess(&fs, (0.85, 0.95)).unwrap();
        name_deleted_holders(
            &mut g,
            &fs,
            &DeletedOpenFiles {
                filesystems: vec!["/var/lib/kubelet".into()],
                ..DeletedOpenFiles::default()
            },
        );
        assert_eq!(g.measure("deleted_open_files").map(|m| m.value), Some(0.0));
        assert!(
            g.evidence
                .last()
                .unwrap()
                .observed
                .starts_with("no open deleted file")
        );
    }

    #[test]
    fn human_bytes_units() {
        assert_eq!(super::human_bytes(0), "0 B");
        assert_eq!(super::human_bytes(65536), "64.0 KiB");
        assert_eq!(super::human_bytes(3 << 30), "3.0 GiB");
    }
}
