//! journald's files, read directly (`var/log/journal` and `run/log/journal` under the host
//! root) with a pure-Rust reader: no libsystemd, no `journalctl`, works from a DaemonSet that
//! mounts the host's `/`.

use super::{LogRecord, line_text};
use crate::host::HostRoot;

/// The journal directories under the root that exist.
pub fn journal_dirs(host: &HostRoot) -> Vec<std::path::PathBuf> {
    ["var/log/journal", "run/log/journal"]
        .iter()
        .map(|d| host.path(d))
        .filter(|p| p.is_dir())
        .collect()
}

/// Which entries to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    All,
    /// `_SYSTEMD_UNIT` (`kubelet.service`).
    Unit(String),
    /// `SYSLOG_IDENTIFIER` (NPD's journald `pluginConfig.source`: `dockerd`, `kubelet`).
    Identifier(String),
}

/// Entries matching `filter` since `since_ms`, oldest first, as records: MESSAGE as text,
/// `_SYSTEMD_UNIT`, `_PID`, `_COMM`, `SYSLOG_IDENTIFIER` as fields.
pub fn read(
    host: &HostRoot,
    filter: &Filter,
    since_ms: Option<u64>,
    mut each: impl FnMut(LogRecord),
) -> Result<u64, String> {
    let dirs = journal_dirs(host);
    if dirs.is_empty() {
        return Err("no journal under var/log/journal or run/log/journal".into());
    }
    let journal = sdjournal::Journal::open_dirs(&dirs).map_err(|e| format!("journal: {e}"))?;
    let mut q = journal.query();
    match filter {
        Filter::All => {}
        Filter::Unit(u) => {
            q.match_unit(u);
        }
        Filter::Identifier(i) => {
            q.match_exact("SYSLOG_IDENTIFIER", i.as_bytes());
        }
    }
    if let Some(ms) = since_ms {
        q.since_realtime(ms.saturating_mul(1000));
    }
    let mut n = 0;
    for entry in q.iter().map_err(|e| format!("journal: {e}"))? {
        let entry = match entry {
            Ok(e) => e,
            // A damaged entry is skipped, the rest still read.
            Err(_) => continue,
        };
        let Some(msg) = entry.get("MESSAGE") else {
            continue;
        };
        let (text, cut) = line_text(msg);
        let mut r = LogRecord::text(text);
        r.cut = cut;
        r.time_ms = Some(entry.realtime_usec() / 1000);
        r.priority = entry
            .get("PRIORITY")
            .and_then(|p| std::str::from_utf8(p).ok()?.parse().ok());
        for key in [
            "_SYSTEMD_UNIT",
            "_PID",
            "_COMM",
            "SYSLOG_IDENTIFIER",
            "_TRANSPORT",
        ] {
            if let Some(v) = entry.get(key) {
                r.fields
                    .insert(key.to_string(), String::from_utf8_lossy(v).into_owned());
            }
        }
        each(r);
        n += 1;
    }
    Ok(n)
}
