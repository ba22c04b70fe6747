//! `pipe-quota`: pipe buffer pages per user against `fs.pipe-user-pages-soft`/`-hard`, and
//! pipes the kernel already created shrunk.
//!
//! fs/pipe.c charges every pipe's buffers to its creator's `user_struct` (per kuid, so a
//! container's root shares uid 0's account with the host's). When an allocation finds the
//! user at or over `pipe-user-pages-soft` (`too_many_pipe_buffers_soft`) and the creator has
//! neither CAP_SYS_RESOURCE nor CAP_SYS_ADMIN, the pipe gets `PIPE_MIN_DEF_BUFFERS` (2 pages,
//! 8 KiB with 4 KiB pages) instead of 16; over `-hard` it gets 1 page, or pipe creation fails.
//! A writer of more than 8 KiB into such a pipe blocks until a reader drains it: incident 1's
//! `runc init`, and with it the shim, containerd and kubelet's PLEG.

use super::common::{MAX_FINDINGS, describe, short_id};
use super::{CheckDef, History, Outcome, pct};
use crate::finding::{Evidence, Finding, Severity, Subject, SubjectKind};
use crate::host::pipes::Pipe;
use crate::snapshot::Snapshot;
use std::collections::BTreeMap;

pub const CHECK: CheckDef = CheckDef {
    id: "pipe-quota",
    title: "pipe pages per uid near fs.pipe-user-pages-soft; pipes already shrunk to 2 pages",
    doc: include_str!("../../../../docs/checks/pipe-quota.md"),
    run,
};

pub const WARN: f64 = 0.80;
/// `PIPE_DEF_BUFFERS`: a pipe's default number of page-sized slots.
pub const DEFAULT_PIPE_PAGES: u64 = 16;
const SHRUNK_LISTED: usize = 10;

/// One uid's pipes.
#[derive(Debug, Default)]
pub struct UserPipes<'a> {
    pub pages: u64,
    pub pipes: Vec<&'a Pipe>,
    pub shrunk: Vec<&'a Pipe>,
}

/// Pipes by owner uid, with the pages the kernel charges for them (`nr_accounted`, the
/// size in pages) and the shrunk ones (smaller than the default 16 pages).
pub fn by_user(s: &Snapshot) -> BTreeMap<u32, UserPipes<'_>> {
    let page = page_size(s);
    let mut out: BTreeMap<u32, UserPipes> = BTreeMap::new();
    for p in s.pipes.iter().flat_map(|scan| &scan.pipes) {
        let (Some(uid), Some(size)) = (p.owner_uid, p.size_bytes) else {
            continue;
        };
        let u = out.entry(uid).or_default();
        u.pages += size.div_ceil(page);
        u.pipes.push(p);
        if size < DEFAULT_PIPE_PAGES * page {
            u.shrunk.push(p);
        }
    }
    out
}

pub fn page_size(s: &Snapshot) -> u64 {
    if s.page_size == 0 { 4096 } else { s.page_size }
}

fn limit(s: &Snapshot, name: &str) -> Option<u64> {
    s.sysctl_u64(name).ok().filter(|&v| v > 0) // 0 means no limit
}

fn run(h: &History) -> Outcome {
    let s = h.current();
    let Some(scan) = &s.pipes else {
        return Outcome::unknown("pipes were not scanned in this snapshot");
    };
    if scan.sizing == "none" {
        return Outcome::unknown(format!(
            "pipe sizes unknown: {}",
            scan.why_unsized.as_deref().unwrap_or("not read")
        ));
    }
    let soft = limit(s, "fs.pipe-user-pages-soft");
    let hard = limit(s, "fs.pipe-user-pages-hard");
    let mut outcome = Outcome::default();
    if s.sysctl("fs.pipe-user-pages-soft").is_err() {
        outcome
            .unknown
            .push(s.why_missing("proc/sys/fs/pipe-user-pages-soft"));
    }
    for (uid, u) in by_user(s) {
        let ratio = soft.map(|l| u.pages as f64 / l as f64);
        let over = soft.is_some_and(|l| u.pages >= l) || hard.is_some_and(|l| u.pages >= l);
        let severity = if over || !u.shrunk.is_empty() {
            Severity::Critical
        } else if ratio.is_some_and(|r| r >= WARN) {
            Severity::Warning
        } else {
            continue;
        };
        outcome
            .findings
            .push(finding(s, uid, &u, soft, hard, ratio, severity));
    }
    outcome
        .findings
        .sort_by_key(|f| std::cmp::Reverse(f.severity));
    outcome.findings.truncate(MAX_FINDINGS);
    outcome
}

/// "5160 (runc:[2:INIT]) fds 4,6, container 3f1c9a27d0b4": who holds a pipe.
pub fn holders_text(s: &Snapshot, p: &Pipe) -> String {
    let mut by_pid: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for e in &p.holders {
        by_pid.entry(e.pid).or_default().push(e.fd.to_string());
    }
    let mut parts: Vec<String> = by_pid
        .iter()
        .map(|(pid, fds)| {
            let who = s.process(*pid).map_or_else(|| pid.to_string(), describe);
            format!("{who} fd {}", fds.join(","))
        })
        .collect();
    if p.holders_not_kept > 0 {
        parts.push(format!("and {} more", p.holders_not_kept));
    }
    parts.join("; ")
}

fn finding(
    s: &Snapshot,
    uid: u32,
    u: &UserPipes,
    soft: Option<u64>,
    hard: Option<u64>,
    ratio: Option<f64>,
    severity: Severity,
) -> Finding {
    let page = page_size(s);
    let soft_text = soft.map_or("0 (no limit)".to_string(), |l| l.to_string());
    let mut summary = format!(
        "uid {uid} holds {} pipe pages in {} pipes",
        u.pages,
        u.pipes.len()
    );
    if let Some(r) = ratio {
        summary.push_str(&format!(
            " ({} of fs.pipe-user-pages-soft {soft_text})",
            pct(r)
        ));
    }
    if !u.shrunk.is_empty() {
        summary.push_str(&format!(
            "; {} pipes already shrunk to {} bytes or less",
            u.shrunk.len(),
            u.shrunk
                .iter()
                .filter_map(|p| p.size_bytes)
                .max()
                .unwrap_or(0)
        ));
    }

    let mut evidence = vec![
        Evidence::new(
            "/proc/*/fd, pidfd_getfd + F_GETPIPE_SZ",
            format!(
                "{} pipe pages ({} pipes) owned by uid {uid}; estimate: pipes held by no process \
                 (in flight in a unix socket, pinned by splice) are not counted",
                u.pages,
                u.pipes.len()
            ),
        )
        .with_threshold(format!(
            "warning at {} of the soft limit; critical at the soft or hard limit, or any shrunk pipe",
            pct(WARN)
        )),
        Evidence::new("/proc/sys/fs/pipe-user-pages-soft", soft_text.clone()),
        Evidence::new(
            "/proc/sys/fs/pipe-user-pages-hard",
            hard.map_or("0 (no limit)".to_string(), |l| l.to_string()),
        ),
    ];
    for p in u.shrunk.iter().take(SHRUNK_LISTED) {
        let size = p.size_bytes.unwrap_or(0);
        let buffered = p.buffered_bytes.map_or(String::new(), |b| {
            format!(
                ", {b} bytes buffered{}",
                if b >= size {
                    " (full: writers block)"
                } else {
                    ""
                }
            )
        });
        evidence.push(
            Evidence::new(
                format!("pipe:[{}]", p.inode),
                format!(
                    "{size} bytes ({} pages){buffered}; held by {}",
                    size / page,
                    holders_text(s, p)
                ),
            )
            .with_threshold(format!("default {} bytes", DEFAULT_PIPE_PAGES * page)),
        );
    }
    if u.shrunk.len() > SHRUNK_LISTED {
        evidence.push(Evidence::new(
            "pipes",
            format!("{} more shrunk pipes", u.shrunk.len() - SHRUNK_LISTED),
        ));
    }

    let mut subjects = vec![Subject {
        uid: Some(uid),
        ..Subject::new(SubjectKind::User)
    }];
    let mut named = std::collections::BTreeSet::new();
    for p in &u.shrunk {
        for e in &p.holders {
            if named.len() >= 10 || !named.insert(e.pid) {
                continue;
            }
            if let Some(proc_) = s.process(e.pid) {
                subjects.push(Subject::process(proc_));
            }
        }
    }
    let containers: std::collections::BTreeSet<String> = subjects
        .iter()
        .filter_map(|x| x.container_id.as_deref().map(|c| short_id(c).to_string()))
        .collect();
    if !containers.is_empty() {
        summary.push_str(&format!(
            " (containers {})",
            containers.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }

    Finding {
        check: CHECK.id.into(),
        log: None,
        severity,
        summary,
        cause: format!(
            "The kernel charges pipe buffers per user, and a container's root is uid 0 like the host's, so they \
             share one account. At fs.pipe-user-pages-soft every new pipe of a process without CAP_SYS_RESOURCE \
             or CAP_SYS_ADMIN gets 2 pages ({} bytes) instead of 16; a writer of more than that blocks in \
             pipe_write until a reader drains it (incident 1: runc init hung, the node went NotReady).",
            2 * page
        ),
        remedy: format!(
            "Short term: raise the soft limit so new pipes are full size again: `sysctl -w \
             fs.pipe-user-pages-soft={}` (0 removes it), and drain or kill what is blocked on a shrunk pipe \
             (see runc-init-hang). Find who holds uid {uid}'s pipes: `find /proc/[0-9]*/fd -lname 'pipe:*' \
             -printf '%h\\n' 2>/dev/null | sort | uniq -c | sort -rn | head`. For good: upgrade runc (≥ 1.0.0 / \
             1.1.x reads its bootstrap pipe concurrently), fix the pipe leak, and restore the default (16384).",
            soft.map_or(65536, |l| (l * 4).max(65536))
        ),
        evidence,
        subjects,
    }
}
