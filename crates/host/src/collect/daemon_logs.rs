//! Recent lines of the kubelet's and the runtime's own logs. A daemon logs to the journal
//! when systemd runs it (unit `kubelet.service`, `containerd.service`) and to a file when
//! something else does (kops, some distributions: `/var/log/kubelet.log`); in the second
//! case its stderr (`/proc/PID/fd/2`) is that file, so the file is found from the process,
//! whatever its name. Only the lines the checks read are kept
//! (`node_doctor_core::kubelet::keep_line`), newest last and bounded.

use super::kubelet::rel;
use crate::fs::HostFs;
use crate::sources::journal;
use node_doctor_core::kubelet::keep_line;
use node_doctor_core::model::log::{JournalFilter, LogRecord, line_text};
use node_doctor_core::model::process::Process;
use node_doctor_core::model::runtime::{DaemonLog, MAX_DAEMON_LINES};
use node_doctor_core::time::parse_log_line_time;
use std::collections::VecDeque;

/// How far back the lines are read.
pub const LOOKBACK_MS: u64 = 60 * 60 * 1000;
/// How much of the end of a log file is read.
pub const FILE_TAIL: u64 = 8 << 20;

/// The daemons whose logs are read, by process `comm` and journal unit.
const DAEMONS: &[(&str, &str)] = &[
    ("kubelet", "kubelet.service"),
    ("containerd", "containerd.service"),
    ("dockerd", "docker.service"),
    ("crio", "crio.service"),
];

struct Keep {
    records: VecDeque<LogRecord>,
    lines: u64,
    not_kept: u64,
}

impl Keep {
    fn new() -> Keep {
        Keep {
            records: VecDeque::new(),
            lines: 0,
            not_kept: 0,
        }
    }

    fn push(&mut self, r: LogRecord) {
        self.lines = self.lines.saturating_add(1);
        if !keep_line(&r.text) {
            return;
        }
        if self.records.len() >= MAX_DAEMON_LINES {
            self.records.pop_front();
            self.not_kept = self.not_kept.saturating_add(1);
        }
        self.records.push_back(r);
    }
}

/// Logs of the daemons running (or with a journal unit), read since `now_ms` − lookback.
pub fn read(fs: &dyn HostFs, processes: &[Process], now_ms: u64) -> Vec<DaemonLog> {
    let since = now_ms.saturating_sub(LOOKBACK_MS);
    let has_journal = !journal::journal_dirs(fs).is_empty();
    let mut out = Vec::new();
    for (comm, unit) in DAEMONS {
        let process = processes.iter().find(|p| p.comm == *comm && !p.is_zombie());
        let mut log = None;
        if has_journal {
            let mut k = Keep::new();
            match journal::read(
                fs,
                &JournalFilter::Unit(unit.to_string()),
                Some(since),
                |r| k.push(r),
            ) {
                Ok(_) if k.lines > 0 => {
                    log = Some(finish(comm, format!("journal:{unit}"), k, since))
                }
                Ok(_) => {}
                Err(u) if process.is_some() => {
                    log = Some(DaemonLog {
                        daemon: comm.to_string(),
                        source: format!("journal:{unit}"),
                        error: Some(u.to_string()),
                        ..DaemonLog::default()
                    });
                }
                Err(_) => {}
            }
        }
        if log.as_ref().is_none_or(|l| l.lines == 0)
            && let Some(p) = process
            && let Some(file) = stderr_file(fs, p)
        {
            log = Some(read_file(fs, comm, &file, since, now_ms));
        }
        if let Some(l) = log {
            out.push(l);
        }
    }
    out
}

fn finish(daemon: &str, source: String, k: Keep, since: u64) -> DaemonLog {
    DaemonLog {
        daemon: daemon.to_string(),
        source,
        lines: k.lines,
        records: k.records.into_iter().collect(),
        not_kept: k.not_kept,
        since_ms: Some(since),
        error: None,
    }
}

/// The regular file `p`'s stderr is, when it is one (a path: not a socket, pipe or tty).
fn stderr_file(fs: &dyn HostFs, p: &Process) -> Option<String> {
    let dir = fs.open_proc(p.pid).ok()?;
    let target = dir.read_link("fd/2")?;
    let path = target.strip_suffix(" (deleted)").unwrap_or(&target);
    (path.starts_with('/') && !path.starts_with("/dev/") && !path.starts_with("/proc/"))
        .then(|| path.to_string())
        .filter(|p| fs.file_identity(rel(p)).is_ok())
}

/// The last [`FILE_TAIL`] bytes of a log file, lines since `since` (lines without a
/// readable time are kept: they are the newest part of the file).
fn read_file(fs: &dyn HostFs, daemon: &str, path: &str, since: u64, now_ms: u64) -> DaemonLog {
    use std::io::{Read, Seek, SeekFrom};
    let source = format!("file:{path}");
    let fail = |e: String| DaemonLog {
        daemon: daemon.to_string(),
        source: source.clone(),
        error: Some(e),
        ..DaemonLog::default()
    };
    let mut f = match fs.open_file(rel(path)) {
        Ok(f) => f,
        Err(u) => return fail(u.to_string()),
    };
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = size.saturating_sub(FILE_TAIL);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return fail(format!("{path}: cannot seek"));
    }
    let mut buf = Vec::new();
    if let Err(e) = f.take(FILE_TAIL).read_to_end(&mut buf) {
        return fail(format!("{path}: {e}"));
    }
    let mut chunks = buf.split(|b| *b == b'\n');
    if start > 0 {
        chunks.next(); // a partial first line
    }
    let mut k = Keep::new();
    let mut first_time = None;
    for line in chunks.filter(|l| !l.is_empty()) {
        let (text, cut) = line_text(line);
        let t = parse_log_line_time(&text, now_ms);
        if t.is_some_and(|t| t < since) {
            continue;
        }
        if first_time.is_none() {
            first_time = t;
        }
        let mut r = LogRecord::text(text);
        r.cut = cut;
        r.time_ms = t;
        k.push(r);
    }
    let mut l = finish(daemon, source, k, since);
    l.since_ms = Some(first_time.map_or(since, |t| t.max(since)));
    l
}
