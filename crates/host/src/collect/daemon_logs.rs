//! Recent lines of the kubelet's and the runtime's own logs. A daemon logs to the journal
//! when systemd runs it (unit `kubelet.service`, `containerd.service`) and to a file when
//! something else does (kops, some distributions: `/var/log/kubelet.log`); in the second
//! case its stderr (`/proc/PID/fd/2`) is that file, so the file is found from the process,
//! whatever its name. Only the lines the checks read are kept
//! (`node_doctor_core::kubelet::keep_line`), newest last and bounded.

use super::kubelet::rel;
use crate::fs::HostFs;
use crate::localtime::LocalTime;
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
    // klog and syslog files write the node's local time: its zone, read once, when a file
    // is read.
    let mut local: Option<LocalTime> = None;
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
            let local = local.get_or_insert_with(|| LocalTime::load(fs));
            log = Some(read_file(fs, (comm, &file), local, since, now_ms));
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
fn read_file(
    fs: &dyn HostFs,
    (daemon, path): (&str, &str),
    local: &LocalTime,
    since: u64,
    now_ms: u64,
) -> DaemonLog {
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
        let t = parse_log_line_time(&text, now_ms, &|w| local.wall_to_utc(w));
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

/// The daemons' logs followed from one collection to the next (the agent, which collects
/// every `processes_interval`): each call reads what was appended since the previous one —
/// journal entries after the last cursor, file bytes after the last offset, at most
/// [`FILE_TAIL`] per call — instead of the last hour again, and hands out what [`read`]
/// would: the lines the checks look at, of the last [`LOOKBACK_MS`], at most
/// [`MAX_DAEMON_LINES`] per daemon. The first call reads the lookback as [`read`] does. A
/// line without a time of its own is dated when it was read (the first call dates the file's
/// tail then, which a one-shot read counts as recent too), so it ages out of the checks'
/// windows instead of staying recent for the hour.
#[derive(Debug, Default)]
pub struct Tail {
    followed: std::collections::BTreeMap<&'static str, Followed>,
}

#[derive(Debug, Default)]
struct Followed {
    journal: Option<journal::Position>,
    /// When the journal last had a line of the unit: the source while within the lookback.
    journal_last_ms: Option<u64>,
    file: Option<FilePos>,
    /// Where the followed file's lines start being complete: its first line read, again
    /// after a gap (more than FILE_TAIL appended between two calls).
    file_from_ms: Option<u64>,
    kept: VecDeque<LogRecord>,
    /// Lines read and kept-worthy lines dropped by the bound, by minute of their time.
    counts: std::collections::BTreeMap<u64, (u64, u64)>,
    started_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
struct FilePos {
    path: String,
    id: (u64, u64),
    offset: u64,
}

/// Minutes of counts kept: the lookback, and a margin for lines dated in the future.
const MAX_COUNT_MINUTES: usize = 2 * (LOOKBACK_MS / 60_000) as usize;

impl Followed {
    fn push(&mut self, mut r: LogRecord, now_ms: u64) {
        let t = *r.time_ms.get_or_insert(now_ms);
        let c = self.counts.entry(t / 60_000).or_insert((0, 0));
        c.0 = c.0.saturating_add(1);
        if !keep_line(&r.text) {
            return;
        }
        if self.kept.len() >= MAX_DAEMON_LINES {
            self.kept.pop_front();
            c.1 = c.1.saturating_add(1);
        }
        self.kept.push_back(r);
    }

    /// Forgets what is older than `since`.
    fn prune(&mut self, since: u64) {
        self.kept.retain(|r| r.time_ms.is_none_or(|t| t >= since));
        self.counts = self.counts.split_off(&(since / 60_000));
        while self.counts.len() > MAX_COUNT_MINUTES {
            self.counts.pop_last();
        }
    }

    fn log(
        &self,
        daemon: &str,
        source: String,
        from_ms: Option<u64>,
        since: u64,
        error: Option<String>,
    ) -> DaemonLog {
        DaemonLog {
            daemon: daemon.to_string(),
            source,
            lines: self.counts.values().map(|c| c.0).sum(),
            records: self.kept.iter().cloned().collect(),
            not_kept: self.counts.values().map(|c| c.1).sum(),
            since_ms: Some(from_ms.map_or(since, |s| s.max(since))),
            error,
        }
    }
}

impl Tail {
    pub fn new() -> Tail {
        Tail::default()
    }

    /// The daemons' logs as of `now_ms`, reading only what is new since the last call.
    pub fn read(&mut self, fs: &dyn HostFs, processes: &[Process], now_ms: u64) -> Vec<DaemonLog> {
        let since = now_ms.saturating_sub(LOOKBACK_MS);
        let has_journal = !journal::journal_dirs(fs).is_empty();
        // The node's zone, read once per call when a file is read (it may change).
        let mut local: Option<LocalTime> = None;
        let mut out = Vec::new();
        for (comm, unit) in DAEMONS {
            let process = processes.iter().find(|p| p.comm == *comm && !p.is_zombie());
            let f = self.followed.entry(comm).or_default();
            f.started_ms.get_or_insert(since);
            let mut journal_error = None;
            if has_journal {
                let mut got = Vec::new();
                match journal::read_after(
                    fs,
                    &JournalFilter::Unit(unit.to_string()),
                    since,
                    f.journal.as_ref(),
                    |r| got.push(r),
                ) {
                    Ok((_, pos)) => {
                        f.journal = pos;
                        if let Some(t) = got.iter().filter_map(|r| r.time_ms).max() {
                            f.journal_last_ms = Some(t);
                        }
                        for r in got {
                            f.push(r, now_ms);
                        }
                    }
                    Err(u) => journal_error = Some(u.to_string()),
                }
            }
            let journal_live = f.journal_last_ms.is_some_and(|t| t >= since);
            let mut log = None;
            if journal_live {
                log = Some((format!("journal:{unit}"), f.started_ms, None));
            } else if let Some(p) = process
                && let Some(path) = stderr_file(fs, p)
            {
                let local = local.get_or_insert_with(|| LocalTime::load(fs));
                let error = follow_file(fs, (&path, local), f, since, now_ms).err();
                log = Some((format!("file:{path}"), f.file_from_ms, error));
            } else if let Some(e) = journal_error.filter(|_| process.is_some()) {
                log = Some((format!("journal:{unit}"), f.started_ms, Some(e)));
            }
            f.prune(since);
            if let Some((source, from, error)) = log {
                out.push(f.log(comm, source, from, since, error));
            }
        }
        out
    }
}

/// Reads what `path` gained since `f`'s position (the last [`FILE_TAIL`] of it when there
/// is none, the file was replaced — rotated — or shrank — truncated — or grew by more).
/// A partial last line waits for the next call.
fn follow_file(
    fs: &dyn HostFs,
    (path, local): (&str, &LocalTime),
    f: &mut Followed,
    since: u64,
    now_ms: u64,
) -> Result<(), String> {
    use std::io::{Read, Seek, SeekFrom};
    let (dev, ino, size) = fs.file_identity(rel(path)).map_err(|u| u.to_string())?;
    let cont = f
        .file
        .as_ref()
        .filter(|p| p.path == path && p.id == (dev, ino) && p.offset <= size)
        .map(|p| p.offset)
        .filter(|o| size.saturating_sub(*o) <= FILE_TAIL);
    let start = cont.unwrap_or_else(|| size.saturating_sub(FILE_TAIL));
    let mut file = fs.open_file(rel(path)).map_err(|u| u.to_string())?;
    if file.seek(SeekFrom::Start(start)).is_err() {
        return Err(format!("{path}: cannot seek"));
    }
    let mut buf = Vec::new();
    file.take(size.saturating_sub(start))
        .read_to_end(&mut buf)
        .map_err(|e| format!("{path}: {e}"))?;
    // Up to the last newline; a buffer of FILE_TAIL without one is taken whole (cut).
    let end = match memchr::memrchr(b'\n', &buf) {
        Some(i) => i.saturating_add(1),
        None if buf.len() as u64 >= FILE_TAIL => buf.len(),
        None => 0,
    };
    let whole = buf.get(..end).unwrap_or_default();
    let mut chunks = whole.split(|b| *b == b'\n');
    if cont.is_none() && start > 0 {
        chunks.next(); // a partial first line
    }
    // Lines before this read were not all seen: a new source, or a cut (as read_file says
    // of its tail). A file replaced by a fresh one continues what was read.
    let gap = f.file.as_ref().is_none_or(|p| p.path != path) || (cont.is_none() && start > 0);
    let mut first_time = None;
    for line in chunks.filter(|l| !l.is_empty()) {
        let (text, cut) = line_text(line);
        let t = parse_log_line_time(&text, now_ms, &|w| local.wall_to_utc(w));
        if t.is_some_and(|t| t < since) {
            continue;
        }
        if first_time.is_none() {
            first_time = Some(t.unwrap_or(now_ms));
        }
        let mut r = LogRecord::text(text);
        r.cut = cut;
        r.time_ms = t;
        f.push(r, now_ms);
    }
    if gap {
        f.file_from_ms = Some(first_time.map_or(since, |t| t.max(since)));
    }
    f.file = Some(FilePos {
        path: path.to_string(),
        id: (dev, ino),
        offset: start.saturating_add(end as u64),
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::RealFs;
    use node_doctor_core::model::process::ProcState;
    use std::io::Write;

    const NOW: u64 = 1_600_000_000_000; // 2020-09-13T12:26:40Z

    fn pleg(minute: u32) -> String {
        format!(
            "E0913 12:{minute:02}:40.000001    1200 kubelet.go:1765] skipping pod synchronization - PLEG is not healthy: pleg was last seen active 3m0.5s ago; threshold is 3m0s\n"
        )
    }

    fn tree() -> (tempfile::TempDir, RealFs, Vec<Process>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc/1200/fd")).unwrap();
        std::fs::create_dir_all(dir.path().join("var/log")).unwrap();
        std::os::unix::fs::symlink("/var/log/kubelet.log", dir.path().join("proc/1200/fd/2"))
            .unwrap();
        let fs = RealFs::new(dir.path()).unwrap();
        let p = Process::new(1200, 1, "kubelet", ProcState::Sleeping, 1600);
        (dir, fs, vec![p])
    }

    fn append(dir: &std::path::Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("var/log/kubelet.log"))
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn a_followed_file_is_read_once_and_gives_what_a_one_shot_read_gives() {
        let (dir, fs, ps) = tree();
        append(
            dir.path(),
            &format!("{}I0913 12:22:00.1 1200 x.go:1] noise\n", pleg(21)),
        );
        let mut tail = Tail::new();
        let first = tail.read(&fs, &ps, NOW);
        assert_eq!(
            first,
            read(&fs, &ps, NOW),
            "the first call reads as read() does"
        );
        assert_eq!(first[0].source, "file:/var/log/kubelet.log");
        assert_eq!((first[0].lines, first[0].records.len()), (2, 1));
        // A line and a half appended: the whole one is read, the half waits.
        let half = pleg(23);
        let (a, b) = half.split_at(40);
        append(dir.path(), &format!("{}{a}", pleg(22)));
        let second = tail.read(&fs, &ps, NOW + 1000);
        assert_eq!(second[0].records.len(), 2);
        assert_eq!(second[0].lines, 3);
        append(dir.path(), b);
        let third = tail.read(&fs, &ps, NOW + 2000);
        assert_eq!(third[0].records.len(), 3);
        assert!(third[0].records[2].text.contains("12:23:40"), "{third:?}");
        // Nothing new: nothing read twice.
        assert_eq!(tail.read(&fs, &ps, NOW + 3000)[0].records.len(), 3);
        // Rotated (a new file in its place): read from its start.
        std::fs::rename(
            dir.path().join("var/log/kubelet.log"),
            dir.path().join("var/log/kubelet.log.1"),
        )
        .unwrap();
        append(dir.path(), &pleg(24));
        let rotated = tail.read(&fs, &ps, NOW + 4000);
        assert_eq!(rotated[0].records.len(), 4);
        // An hour later the lines have aged out; the counts with them.
        let later = tail.read(&fs, &ps, NOW + LOOKBACK_MS + 10 * 60_000);
        assert!(later[0].records.is_empty(), "{later:?}");
        assert_eq!(later[0].lines, 0);
    }

    #[test]
    fn a_kubelet_on_a_node_not_set_to_utc_writes_local_time_and_its_lines_are_recent() {
        let (dir, fs, ps) = tree();
        crate::localtime::install_zone(dir.path(), "America/New_York", "etc/localtime");
        // 08:21:40 in New York in September (EDT, UTC-4) is 12:21:40Z, five minutes before
        // NOW; read as UTC it would be over four hours old, outside the lookback.
        append(
            dir.path(),
            "E0913 08:21:40.000001    1200 kubelet.go:1765] skipping pod synchronization - PLEG is not healthy\n",
        );
        let want = NOW - 5 * 60_000;
        for got in [read(&fs, &ps, NOW), Tail::new().read(&fs, &ps, NOW)] {
            assert_eq!(got[0].records.len(), 1, "{got:?}");
            assert_eq!(got[0].records[0].time_ms, Some(want));
        }
    }

    #[test]
    fn a_line_without_a_time_is_dated_when_read_and_ages_out() {
        let (dir, fs, ps) = tree();
        let mut tail = Tail::new();
        append(dir.path(), "PLEG is not healthy (no header)\n");
        let got = tail.read(&fs, &ps, NOW);
        assert_eq!(got[0].records[0].time_ms, Some(NOW));
        let later = tail.read(&fs, &ps, NOW + LOOKBACK_MS + 1);
        assert!(later[0].records.is_empty());
    }

    #[test]
    fn the_kept_lines_stay_bounded() {
        let (dir, fs, ps) = tree();
        let mut tail = Tail::new();
        let many: String = (0..MAX_DAEMON_LINES + 10).map(|_| pleg(25)).collect();
        append(dir.path(), &many);
        let got = tail.read(&fs, &ps, NOW);
        assert_eq!(got[0].records.len(), MAX_DAEMON_LINES);
        assert_eq!(got[0].not_kept, 10);
        append(dir.path(), &pleg(26));
        let got = tail.read(&fs, &ps, NOW + 1000);
        assert_eq!(got[0].records.len(), MAX_DAEMON_LINES);
        assert_eq!(got[0].not_kept, 11);
        assert!(got[0].records.last().unwrap().text.contains("12:26:40"));
    }
}
