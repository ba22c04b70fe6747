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

use super::common::{MAX_FINDINGS, describe, ratio as frac};
use super::{CheckDef, History, Needs, Outcome, pct};
use crate::attribution::short_id;
use crate::config::{CheckSettings, SettingDef};
use crate::finding::{Evidence, Finding, Measure, Severity, Subject, Unit, key};
use crate::model::pipes::{Pipe, Sizing};
use crate::model::snapshot::Snapshot;
use std::collections::BTreeMap;

pub const CHECK: CheckDef = CheckDef {
    id: "pipe-quota",
    title: "pipe pages per uid near fs.pipe-user-pages-soft; pipes already shrunk to 2 pages",
    doc: include_str!("pipe_quota.md"),
    needs: Needs {
        pipes: true,
        ..Needs::NONE
    },
    settings: &[WARN],
    condition: Some(super::ConditionDef {
        type_: "PipeQuotaExhausted",
        true_reason: "PipeUserPagesOverLimit",
        false_reason: "PipeUserPagesWithinLimit",
    }),
    run,
};

pub const WARN: SettingDef = SettingDef::ratio(
    "warn",
    0.80,
    "warning at this share of fs.pipe-user-pages-soft (critical at the limit or any shrunk pipe)",
);
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
        u.pages = u.pages.saturating_add(size.div_ceil(page));
        u.pipes.push(p);
        if size < DEFAULT_PIPE_PAGES.saturating_mul(page) {
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

fn run(h: &History, cfg: &CheckSettings) -> Outcome {
    let s = h.current();
    let warn = cfg.ratio(&WARN);
    let Some(scan) = &s.pipes else {
        return Outcome::unknown(s.not_collected("pipes"));
    };
    // No pipe held by any process: nothing to size, nothing over a quota.
    if scan.sizing == Sizing::None && !scan.pipes.is_empty() {
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
    if s.page_size == 0 {
        outcome
            .unknown
            .push("the host's page size is unknown: pages counted as 4096 bytes".into());
    }
    for (uid, u) in by_user(s) {
        let ratio = soft.map(|l| frac(u.pages, l));
        let over = soft.is_some_and(|l| u.pages >= l) || hard.is_some_and(|l| u.pages >= l);
        let severity = if over || !u.shrunk.is_empty() {
            Severity::Critical
        } else if ratio.is_some_and(|r| r >= warn) {
            Severity::Warning
        } else {
            continue;
        };
        outcome
            .findings
            .push(finding(s, uid, &u, (soft, hard), warn, severity));
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
    (soft, hard): (Option<u64>, Option<u64>),
    warn: f64,
    severity: Severity,
) -> Finding {
    let page = page_size(s);
    let ratio = soft.map(|l| frac(u.pages, l));
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
            pct(warn)
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
                    size.checked_div(page).unwrap_or(0),
                    holders_text(s, p)
                ),
            )
            .with_threshold(format!(
                "default {} bytes",
                DEFAULT_PIPE_PAGES.saturating_mul(page)
            )),
        );
    }
    if u.shrunk.len() > SHRUNK_LISTED {
        evidence.push(Evidence::new(
            "pipes",
            format!(
                "{} more shrunk pipes",
                u.shrunk.len().saturating_sub(SHRUNK_LISTED)
            ),
        ));
    }

    let mut subjects = vec![Subject::user(uid)];
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

    let mut measures = vec![
        Measure::new("pipe_pages", u.pages, Unit::Pages).of_opt(soft),
        Measure::count("pipes", u.pipes.len()),
        Measure::count("shrunk_pipes", u.shrunk.len()),
    ];
    if let Some(h) = hard {
        measures.push(Measure::new("pipe_pages_hard_limit", h, Unit::Pages));
    }
    Finding {
        check: CHECK.id.into(),
        key: key::user(CHECK.id, uid),
        measures,
        log: None,
        caused_by: Vec::new(),
        explains: Vec::new(),
        severity,
        summary,
        cause: format!(
            "The kernel charges pipe buffers per user, and a container's root is uid 0 like the host's, so they \
             share one account. At fs.pipe-user-pages-soft every new pipe of a process without CAP_SYS_RESOURCE \
             or CAP_SYS_ADMIN gets 2 pages ({} bytes) instead of 16; a writer of more than that blocks in \
             pipe_write until a reader drains it (incident 1: runc init hung, the node went NotReady).",
            page.saturating_mul(2)
        ),
        remedy: format!(
            "Short term: raise the soft limit so new pipes are full size again: `sysctl -w \
             fs.pipe-user-pages-soft={}` (0 removes it), and drain or kill what is blocked on a shrunk pipe \
             (see runc-init-hang). Find who holds uid {uid}'s pipes: `find /proc/[0-9]*/fd -lname 'pipe:*' \
             -printf '%h\\n' 2>/dev/null | sort | uniq -c | sort -rn | head`. For good: upgrade runc (≥ 1.0.0 / \
             1.1.x reads its bootstrap pipe concurrently), fix the pipe leak, and restore the default (16384).",
            soft.map_or(65536, |l| l.saturating_mul(4).max(65536))
        ),
        evidence,
        subjects,
    }
}
