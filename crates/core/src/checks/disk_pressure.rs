//! `disk-pressure`: blocks and inodes of the filesystems a node needs to keep working.
//!
//! kubelet evicts pods and stops admitting them when its filesystems fill (`nodefs`,
//! `imagefs`), containerd cannot unpack images, and a full root breaks everything that
//! writes a log. Coredumps of containers land in `/var/lib/systemd/coredump` on the host's
//! root (incident 3), which fills while `du` inside containers shows nothing.

use super::{CheckDef, History, Needs, Outcome, pct};
use crate::config::{CheckSettings, SettingDef};
use crate::finding::{Evidence, Finding, Measure, Severity, Subject, SubjectKind, Unit, key};
use crate::model::fs::{FilesystemUsage, Role};

pub const CHECK: CheckDef = CheckDef {
    id: "disk-pressure",
    title: "blocks or inodes of /, kubelet, runtime and coredump filesystems nearly used up",
    doc: include_str!("disk_pressure.md"),
    needs: Needs {
        filesystems: true,
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
        if let Some(f) = assess(fs, bands) {
            out.findings.push(f);
        }
    }
    out
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
    #[test]
    fn human_bytes_units() {
        assert_eq!(super::human_bytes(0), "0 B");
        assert_eq!(super::human_bytes(65536), "64.0 KiB");
        assert_eq!(super::human_bytes(3 << 30), "3.0 GiB");
    }
}
