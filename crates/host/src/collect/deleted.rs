//! Open deleted files on full filesystems: the `df` says full / `du` finds nothing case
//! (short-lived cores being written, rotated logs a process still writes to). Only when a
//! filesystem is over the disk-pressure band does this walk processes' fd links; a link
//! ending in " (deleted)" is `stat`ed through `/proc/PID/fd/N`, which resolves to the open
//! file without opening it (no pidfd, no new reference), for its size and device.
//!
//! Bounded: processes in D state are never touched (only their `stat` is read), each process
//! has a bound on links read and the walk an overall one, and the workers run with the run's
//! deadline ([`super::per_pid`]).

use super::per_pid::for_each_pid;
use crate::fs::{HostFs, ProcError};
use crate::parse::process::{parse_proc_cgroup, parse_stat};
use node_doctor_core::attribution::owner_of;
use node_doctor_core::model::fs::MAX_DELETED_KEPT;
use node_doctor_core::model::{DeletedHolder, DeletedOpenFiles, FilesystemUsage, Mount};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Looked for only on filesystems at least this full (blocks or inodes): disk-pressure's
/// default warning band.
pub const SCAN_FROM: f64 = 0.85;
/// fd links read per process, and overall, at most.
pub const MAX_LINKS_PER_PROCESS: usize = 1 << 16;
pub const MAX_LINKS_TOTAL: u64 = 2_000_000;
const FILE_CAP: usize = 64 << 10;

enum One {
    SkippedD,
    LeftOut,
    Walked {
        holders: Vec<DeletedHolder>,
        truncated: bool,
    },
}

fn over_band(f: &FilesystemUsage) -> bool {
    f.blocks_used_ratio().unwrap_or(0.0) >= SCAN_FROM
        || f.inodes_used_ratio().unwrap_or(0.0) >= SCAN_FROM
}

/// Whether any filesystem is over the band (the walk has something to look for).
pub fn any_over_band(filesystems: &[FilesystemUsage]) -> bool {
    filesystems.iter().any(over_band)
}

/// The filesystems over the band, then their open deleted files. `candidates`: when the
/// process scan has just read every fd link, the pids whose links may name a deleted file
/// (and those in D state): only they are walked, not every process a second time.
pub fn read(
    fs: &Arc<dyn HostFs>,
    filesystems: &[FilesystemUsage],
    mounts: Option<&[Mount]>,
    deadline: Option<Instant>,
    candidates: Option<&BTreeSet<i32>>,
) -> DeletedOpenFiles {
    let over: Vec<&FilesystemUsage> = filesystems.iter().filter(|f| over_band(f)).collect();
    let mut out = DeletedOpenFiles {
        filesystems: over.iter().map(|f| f.mount_point.clone()).collect(),
        ..DeletedOpenFiles::default()
    };
    let devices: BTreeSet<String> = over
        .iter()
        .map(|f| f.device.clone())
        .filter(|d| !d.is_empty())
        .collect();
    if devices.is_empty() {
        return out;
    }
    let pids: Vec<i32> = match candidates {
        Some(c) => c.iter().copied().collect(),
        None => match fs.list_pids() {
            Ok(p) => p,
            Err(_) => return out,
        },
    };
    // A stat of a file on a FUSE or network mount can wait for a server that is gone, and
    // a thread stuck there keeps the process from exiting: such paths are not stat'ed.
    let root = fs.root().to_string_lossy().into_owned();
    let remote: Arc<Vec<String>> = Arc::new(
        mounts
            .unwrap_or(&[])
            .iter()
            .filter(|m| m.is_remote_or_fuse())
            .map(|m| m.mount_point.clone())
            .chain(
                mounts
                    .unwrap_or(&[])
                    .iter()
                    .filter(|m| m.is_remote_or_fuse())
                    .map(|m| super::mounts::host_relative(&m.mount_point, &root)),
            )
            .collect(),
    );
    let links = Arc::new(AtomicU64::new(0));
    let reader = fs.clone();
    let devices = Arc::new(devices);
    let budget = links.clone();
    let run = for_each_pid(pids, deadline, move |pid| {
        let skip = |path: &str| {
            remote.iter().any(|mp| {
                mp != "/"
                    && (path == mp || path.starts_with(&format!("{}/", mp.trim_end_matches('/'))))
            })
        };
        walk(&*reader, pid, &devices, &budget, &skip)
    });
    let mut all: Vec<DeletedHolder> = Vec::new();
    for r in run.results {
        match r {
            One::SkippedD => out.skipped_d_state = out.skipped_d_state.saturating_add(1),
            One::LeftOut => {
                out.left_out = out.left_out.saturating_add(1);
                out.truncated = true;
            }
            One::Walked { holders, truncated } => {
                out.processes_scanned = out.processes_scanned.saturating_add(1);
                out.truncated |= truncated;
                all.extend(holders);
            }
        }
    }
    out.left_out = out.left_out.saturating_add(run.skipped_for_deadline);
    all.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then((a.pid, a.fd).cmp(&(b.pid, b.fd)))
    });
    for h in all.iter().skip(MAX_DELETED_KEPT) {
        out.not_kept = out.not_kept.saturating_add(1);
        out.not_kept_bytes = out.not_kept_bytes.saturating_add(h.bytes);
    }
    all.truncate(MAX_DELETED_KEPT);
    out.holders = all;
    out
}

fn walk(
    fs: &dyn HostFs,
    pid: i32,
    devices: &BTreeSet<String>,
    budget: &AtomicU64,
    skip: &dyn Fn(&str) -> bool,
) -> Option<One> {
    let dir = fs.open_proc(pid).ok()?;
    let stat = dir
        .read("stat", FILE_CAP)
        .ok()
        .and_then(|b| parse_stat(&String::from_utf8_lossy(&b)).ok())?;
    match stat.state {
        // Its fd links would be read under the task's locks it may hold: never touched.
        'D' => return Some(One::SkippedD),
        // Zombies hold no files.
        'Z' | 'X' => return None,
        _ => {}
    }
    if budget.load(Ordering::Relaxed) >= MAX_LINKS_TOTAL {
        return Some(One::LeftOut);
    }
    let listing = match dir.deleted_fds(MAX_LINKS_PER_PROCESS, skip) {
        Ok(l) => l,
        Err(ProcError::Vanished) => return None,
        // Another user's fds without the capabilities: nothing to see.
        Err(ProcError::Bad(_)) => return None,
    };
    budget.fetch_add(listing.links_read, Ordering::Relaxed);
    let files: Vec<_> = listing
        .files
        .into_iter()
        .filter(|f| devices.contains(&f.device))
        .collect();
    let cgroups = if files.is_empty() {
        std::sync::Arc::default()
    } else {
        dir.read("cgroup", FILE_CAP)
            .map(|b| parse_proc_cgroup(&String::from_utf8_lossy(&b)))
            .unwrap_or_default()
    };
    let owner = owner_of(&cgroups);
    let holders = files
        .into_iter()
        .map(|f| DeletedHolder {
            pid,
            comm: stat.comm.clone(),
            start_time_ticks: stat.starttime,
            cgroups: cgroups.clone(),
            owner: owner.clone(),
            fd: f.fd,
            path: f.path,
            device: f.device,
            bytes: f.bytes,
            size: f.size,
        })
        .collect();
    Some(One::Walked {
        holders,
        truncated: listing.truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::RealFs;

    fn usage(mount: &str, device: &str, used: u64) -> FilesystemUsage {
        FilesystemUsage {
            paths: vec![mount.into()],
            roles: vec![],
            mount_point: mount.into(),
            fs_type: Some("tmpfs".into()),
            source: None,
            device: device.into(),
            block_size: 4096,
            blocks_total: 100,
            blocks_free: 100 - used,
            blocks_avail: 100 - used,
            inodes_total: 100,
            inodes_free: 90,
        }
    }

    /// Our own deleted file, found through this process's real fd link.
    #[test]
    fn our_own_open_deleted_file_is_found_on_its_device() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("held");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&vec![1u8; 256 << 10]).unwrap();
        f.sync_all().unwrap();
        std::fs::remove_file(&path).unwrap();
        let st = rustix::fs::fstat(&f).unwrap();
        let device = format!(
            "{}:{}",
            rustix::fs::major(st.st_dev),
            rustix::fs::minor(st.st_dev)
        );
        let fs: Arc<dyn HostFs> = Arc::new(RealFs::new("/").unwrap());
        // Under the band: nothing is walked.
        let none = read(&fs, &[usage("/x", &device, 10)], None, None, None);
        assert!(none.filesystems.is_empty() && none.holders.is_empty());
        let found = read(&fs, &[usage("/x", &device, 90)], None, None, None);
        assert_eq!(found.filesystems, vec!["/x".to_string()]);
        let me = std::process::id() as i32;
        let mine: Vec<_> = found.holders.iter().filter(|h| h.pid == me).collect();
        assert_eq!(mine.len(), 1, "{:#?}", found.holders);
        assert_eq!(mine[0].path, path.to_string_lossy());
        assert_eq!(mine[0].size, 256 << 10);
        assert!(mine[0].bytes >= 256 << 10);

        // The process scan's one pass over the fd links names this process a candidate,
        // and the walk over the candidates alone finds the same file.
        let scan = super::super::processes::scan(
            &fs,
            super::super::processes::ScanOptions {
                fds: true,
                pipe_links: true,
            },
            None,
        );
        let candidates = scan.deleted_candidates.expect("links were read");
        assert!(candidates.contains(&me));
        let from_scan = read(
            &fs,
            &[usage("/x", &device, 90)],
            None,
            None,
            Some(&candidates),
        );
        assert!(
            from_scan
                .holders
                .iter()
                .any(|h| h.pid == me && h.size == 256 << 10)
        );
        assert!(from_scan.processes_scanned <= candidates.len() as u64);
        drop(f);
    }
}
