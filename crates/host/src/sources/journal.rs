//! journald's files, read directly (`var/log/journal` and `run/log/journal` under the host
//! root) with a pure-Rust reader: no libsystemd, no `journalctl`, works from a DaemonSet that
//! mounts the host's `/`.
//!
//! Following is by cursor, not by time: sdjournal's live engine watches the directories
//! (inotify) on a thread of its own and hands over every entry appended after the last one
//! delivered, so entries logged within the same millisecond are all seen, and a persisted
//! cursor resumes exactly after the last entry read.

use crate::fs::HostFs;
use node_doctor_core::model::log::line_text;
use node_doctor_core::model::{JournalFilter, Kind, LogRecord, Unavailable};
use std::path::PathBuf;
use std::time::Duration;

/// The journal directories under the root that exist.
pub fn journal_dirs(fs: &dyn HostFs) -> Vec<PathBuf> {
    ["var/log/journal", "run/log/journal"]
        .iter()
        .filter(|d| fs.read_dir(d, 1).is_ok())
        .map(|d| fs.real_path(d))
        .collect()
}

fn open(fs: &dyn HostFs) -> Result<sdjournal::Journal, Unavailable> {
    let dirs = journal_dirs(fs);
    if dirs.is_empty() {
        return Err(Unavailable::new(
            "var/log/journal",
            Kind::NotFound,
            "no journal under var/log/journal or run/log/journal",
        ));
    }
    let config = sdjournal::JournalConfig {
        // The inotify wait's timeout (and the poll interval without inotify).
        poll_interval: Duration::from_millis(250),
        ..sdjournal::JournalConfig::default()
    };
    sdjournal::Journal::open_dirs_with_config(&dirs, config)
        .map_err(|e| Unavailable::new("var/log/journal", Kind::Other, format!("journal: {e}")))
}

/// MESSAGE as text; `_SYSTEMD_UNIT`, `_PID`, `_COMM`, `SYSLOG_IDENTIFIER`, `_TRANSPORT` and
/// `UNIT` (the unit systemd's own messages are about) as fields.
fn to_record(get: impl Fn(&str) -> Option<Vec<u8>>, realtime_usec: u64) -> Option<LogRecord> {
    let msg = get("MESSAGE")?;
    let (text, cut) = line_text(&msg);
    let mut r = LogRecord::text(text);
    r.cut = cut;
    r.time_ms = Some(realtime_usec / 1000);
    r.priority = get("PRIORITY").and_then(|p| std::str::from_utf8(&p).ok()?.trim().parse().ok());
    for key in [
        "_SYSTEMD_UNIT",
        "_PID",
        "_COMM",
        "SYSLOG_IDENTIFIER",
        "_TRANSPORT",
        "UNIT",
    ] {
        if let Some(v) = get(key) {
            r.fields
                .insert(key.to_string(), String::from_utf8_lossy(&v).into_owned());
        }
    }
    Some(r)
}

/// Entries matching `filter` since `since_ms`, oldest first (one-shot read).
pub fn read(
    fs: &dyn HostFs,
    filter: &JournalFilter,
    since_ms: Option<u64>,
    mut each: impl FnMut(LogRecord),
) -> Result<u64, Unavailable> {
    let journal = open(fs)?;
    let mut q = journal.query();
    match filter {
        JournalFilter::All => {}
        JournalFilter::Unit(u) => {
            q.match_unit(u);
        }
        JournalFilter::Identifier(i) => {
            q.match_exact("SYSLOG_IDENTIFIER", i.as_bytes());
        }
    }
    if let Some(ms) = since_ms {
        q.since_realtime(ms.saturating_mul(1000));
    }
    let mut n: u64 = 0;
    let iter = q
        .iter()
        .map_err(|e| Unavailable::new("var/log/journal", Kind::Other, format!("journal: {e}")))?;
    for entry in iter {
        // A damaged entry is skipped, the rest still read.
        let Ok(entry) = entry else { continue };
        if let Some(r) = to_record(|k| entry.get(k).map(<[u8]>::to_vec), entry.realtime_usec()) {
            each(r);
            n = n.saturating_add(1);
        }
    }
    Ok(n)
}

/// Where a [`read_after`] stopped: the last entry's cursor and wall time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub cursor: String,
    pub realtime_usec: u64,
}

/// Entries matching `filter` after `after` (or, without a position, since `since_ms`),
/// oldest first, and the position of the last one: a collection that follows a unit from
/// one call to the next without a thread of its own (the agent's daemon logs). The read
/// seeks to the last entry's time, then skips to just after its cursor, so entries of the
/// same microsecond are neither lost nor read twice. An entry written later with an earlier
/// wall time (the clock stepped back) is not seen. Returns the entries read and the new
/// position (`after` again when none came).
pub fn read_after(
    fs: &dyn HostFs,
    filter: &JournalFilter,
    since_ms: u64,
    after: Option<&Position>,
    mut each: impl FnMut(LogRecord),
) -> Result<(u64, Option<Position>), Unavailable> {
    let journal = open(fs)?;
    let mut q = journal.query();
    match filter {
        JournalFilter::All => {}
        JournalFilter::Unit(u) => {
            q.match_unit(u);
        }
        JournalFilter::Identifier(i) => {
            q.match_exact("SYSLOG_IDENTIFIER", i.as_bytes());
        }
    }
    let since_usec = since_ms.saturating_mul(1000);
    let cursor = after.and_then(|p| sdjournal::Cursor::parse(&p.cursor).ok());
    match (after, cursor) {
        (Some(p), Some(c)) => {
            q.since_realtime(p.realtime_usec.max(since_usec));
            q.after_cursor(c);
        }
        // No position, or one this reader cannot parse: by time.
        (Some(p), None) => {
            q.since_realtime(p.realtime_usec.saturating_add(1).max(since_usec));
        }
        (None, _) => {
            q.since_realtime(since_usec);
        }
    }
    let mut n: u64 = 0;
    let mut last = after.cloned();
    let iter = q
        .iter()
        .map_err(|e| Unavailable::new("var/log/journal", Kind::Other, format!("journal: {e}")))?;
    for entry in iter {
        let Ok(entry) = entry else { continue };
        if let Ok(c) = entry.cursor() {
            last = Some(Position {
                cursor: c.to_string(),
                realtime_usec: entry.realtime_usec(),
            });
        }
        if let Some(r) = to_record(|k| entry.get(k).map(<[u8]>::to_vec), entry.realtime_usec()) {
            each(r);
            n = n.saturating_add(1);
        }
    }
    Ok((n, last))
}

/// Where to start following.
#[derive(Debug, Clone)]
pub enum From {
    /// Entries appended from now on.
    Now,
    /// Entries since this wall time (ms).
    Since(u64),
    /// Entries after this cursor (as `Cursor`'s string form).
    After(String),
}

/// A journal followed by cursor on a thread of its own.
pub struct JournalFollower {
    sub: sdjournal::LiveSubscription,
    /// The cursor of the last entry delivered.
    pub cursor: Option<String>,
}

impl JournalFollower {
    pub fn start(
        fs: &dyn HostFs,
        filter: &JournalFilter,
        from: From,
    ) -> Result<JournalFollower, Unavailable> {
        let journal = open(fs)?;
        let err = |e: sdjournal::SdJournalError| {
            Unavailable::new("var/log/journal", Kind::Other, format!("journal: {e}"))
        };
        let mut live = journal.live().map_err(err)?;
        let mut f = live.filter();
        match filter {
            JournalFilter::All => {}
            JournalFilter::Unit(u) => {
                f.match_unit(u);
            }
            JournalFilter::Identifier(i) => {
                f.match_exact("SYSLOG_IDENTIFIER", i.as_bytes());
            }
        }
        let mut opts = sdjournal::SubscriptionOptions::new(f);
        let mut cursor = None;
        match from {
            From::Now => {}
            From::Since(ms) => {
                opts.since_realtime(ms.saturating_mul(1000));
            }
            From::After(c) => {
                let parsed = sdjournal::Cursor::parse(&c).map_err(err)?;
                opts.after_cursor(parsed);
                cursor = Some(c);
            }
        }
        let sub = live.subscribe_with_options(opts).map_err(err)?;
        // The engine runs until the subscription is dropped (then its next wake-up ends it).
        std::thread::Builder::new()
            .name("nd-journal".into())
            .spawn(move || live.run())
            .map_err(|e| {
                Unavailable::new(
                    "var/log/journal",
                    Kind::Other,
                    format!("cannot start the journal thread: {e}"),
                )
            })?;
        Ok(JournalFollower { sub, cursor })
    }

    /// The entries delivered since the last call; an error from the engine ends the stream.
    pub fn poll(&mut self, mut each: impl FnMut(LogRecord)) -> Result<(), Unavailable> {
        loop {
            match self.sub.try_recv() {
                Ok(Ok(entry)) => {
                    if let Ok(c) = entry.cursor() {
                        self.cursor = Some(c.to_string());
                    }
                    if let Some(r) =
                        to_record(|k| entry.get(k).map(<[u8]>::to_vec), entry.realtime_usec())
                    {
                        each(r);
                    }
                }
                Ok(Err(e)) => {
                    return Err(Unavailable::new(
                        "var/log/journal",
                        Kind::Other,
                        format!("journal: {e}"),
                    ));
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => return Ok(()),
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    return Err(Unavailable::new(
                        "var/log/journal",
                        Kind::Other,
                        "journal: the follower stopped (the journal directory went away?)",
                    ));
                }
            }
        }
    }
}
