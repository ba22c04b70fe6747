//! `disk-pressure`: blocks and inodes of the filesystems a node needs to keep working.
//!
//! kubelet evicts pods and stops admitting them when its filesystems fill (`nodefs`,
//! `imagefs`), containerd cannot unpack images, and a full root breaks everything that
//! writes a log. Coredumps of containers land in `/var/lib/systemd/coredump` on the host's
//! root (incident 3), which fills while `du` inside containers shows nothing.

use super::{CheckDef, History, Outcome, pct};
use crate::finding::{Evidence, Finding, Severity, Subject, SubjectKind};
use crate::host::filesystems::{FilesystemUsage, WATCHED_PATHS};

pub const CHECK: CheckDef = CheckDef {
    id: "disk-pressure",
    title: "blocks or inodes of /, kubelet, runtime and coredump filesystems nearly used up",
    doc: include_str!("../../../../docs/checks/disk-pressure.md"),
    run,
};

pub const WARN: f64 = 0.85;
pub const CRIT: f64 = 0.95;

fn run(h: &History) -> Outcome {
    let s = h.current();
    let mut out = Outcome::default();
    // A watched path that exists but could not be measured is recorded under its host path.
    for u in s.unavailable.iter().filter(|u| {
        WATCHED_PATHS
            .iter()
            .any(|w| w.trim_start_matches('/') == u.path)
    }) {
        out.unknown.push(format!("cannot measure {u}"));
    }
    if s.filesystems.is_empty() && out.unknown.is_empty() {
        out.unknown
            .push("no watched filesystem was measured".into());
    }
    for fs in &s.filesystems {
        if let Some(f) = assess(fs) {
            out.findings.push(f);
        }
    }
    out
}

/// Bytes in the largest binary unit that keeps a leading digit ("1.5 GiB", "64.0 KiB").
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// One finding for a filesystem whose blocks or inodes are over a band.
pub fn assess(fs: &FilesystemUsage) -> Option<Finding> {
    let blocks = fs.blocks_used_ratio().unwrap_or(0.0);
    let inodes = fs.inodes_used_ratio().unwrap_or(0.0);
    let sev_blocks = Severity::from_ratio(blocks, WARN, CRIT);
    let sev_inodes = Severity::from_ratio(inodes, WARN, CRIT);
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
            human_bytes(fs.blocks_avail.saturating_mul(fs.block_size))
        ),
    };
    let holds = fs.paths.join(", ");
    let device = fs
        .source
        .as_deref()
        .map(|src| format!(" ({} {src})", fs.fs_type.as_deref().unwrap_or("?")))
        .unwrap_or_default();
    let threshold = format!("warning {} / critical {}", pct(WARN), pct(CRIT));
    let evidence = vec![
        Evidence::new(
            format!("statvfs({})", fs.paths[0]),
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
            format!("statvfs({})", fs.paths[0]),
            format!(
                "inodes: {} used of {}",
                fs.inodes_total.saturating_sub(fs.inodes_free),
                fs.inodes_total
            ),
        )
        .with_threshold(threshold),
        Evidence::new(
            "/proc/1/mountinfo",
            format!(
                "{} is mounted at {}{device}, holds {holds}",
                fs.device, fs.mount_point
            ),
        ),
    ];
    let subject = Subject::path(SubjectKind::Filesystem, fs.mount_point.clone());
    Some(Finding {
        check: CHECK.id.into(),
        log: None,
        severity,
        summary: format!("filesystem {} (holds {holds}): {what}", fs.mount_point),
        cause: cause_for(fs).into(),
        remedy: remedy_for(fs),
        evidence,
        subjects: vec![subject],
    })
}

fn holds(fs: &FilesystemUsage, path: &str) -> bool {
    fs.paths.iter().any(|p| p == path)
}

fn cause_for(fs: &FilesystemUsage) -> &'static str {
    if holds(fs, "/var/lib/systemd/coredump") {
        "Core dumps of crashing processes, including those in containers (kernel.core_pattern is not namespaced \
         and pipes to systemd-coredump on the host), are written here; with an unlimited RLIMIT_CORE in a \
         container image they fill the host's disk while nothing large is visible inside the containers."
    } else if holds(fs, "/var/lib/kubelet")
        || holds(fs, "/var/lib/containerd")
        || holds(fs, "/var/lib/docker")
    {
        "Images, container writable layers, emptyDir volumes and logs live here; when it fills, kubelet evicts \
         pods (DiskPressure), image pulls fail and new pods cannot start."
    } else {
        "The filesystem is nearly full: writes fail with ENOSPC (or with no free inodes, even with space left), \
         breaking logs, the runtime and kubelet."
    }
}

fn remedy_for(fs: &FilesystemUsage) -> String {
    let mp = &fs.mount_point;
    let mut r = format!("See what uses it: `du -xh --max-depth=2 {mp} | sort -h | tail`");
    if fs.inodes_used_ratio().unwrap_or(0.0) >= WARN {
        r.push_str(&format!("; for inodes: `find {mp} -xdev -type f | cut -d/ -f1-4 | sort | uniq -c | sort -n | tail`"));
    }
    if holds(fs, "/var/lib/systemd/coredump") {
        r.push_str(
            "; cores: `coredumpctl list`, then cap them in /etc/systemd/coredump.conf (MaxUse=, ProcessSizeMax=, or \
             Storage=none) and cap RLIMIT_CORE in containers",
        );
    }
    if holds(fs, "/var/lib/kubelet")
        || holds(fs, "/var/lib/containerd")
        || holds(fs, "/var/lib/docker")
    {
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
