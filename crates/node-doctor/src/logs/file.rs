//! Plain log files (`/var/log/kern.log`, `/var/log/messages`, a kubelet log): read whole, or
//! followed across rotation.
//!
//! Following keeps the file's identity (device, inode) and offset. A different inode at the
//! path means the file was rotated by rename: the rest of the old file is read first, then
//! the new one from its start. A size below the offset means it was truncated in place
//! (copytruncate): read again from the start. A last line without its newline is held until
//! the writer completes it. Lines are cut at [`MAX_LINE`]; memory stays bounded whatever
//! the file holds.

use super::{LogRecord, MAX_LINE, line_text};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// How to read a timestamp at the start of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeFormat {
    /// No timestamp is parsed.
    #[default]
    None,
    /// RFC 3339 / ISO 8601 at the start of the line (`2026-11-22T19:20:17.123Z`,
    /// journalctl `-o short-iso`, containerd, kubelet JSON-less logs).
    Rfc3339,
    /// Classic syslog (`Nov 22 19:20:17 host kernel: ...`, /var/log/kern.log and messages):
    /// no year and no zone, read as UTC in the current year (the previous year for a date
    /// ahead of today, as at a new year's rollover).
    Syslog,
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The current UTC year and the time now, in ms.
fn year_now() -> (i64, u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let days = (now / 86_400_000) as i64;
    // Invert days_from_civil by stepping from an estimate.
    let mut y = 1970 + days / 366;
    while days_from_civil(y + 1, 1, 1) <= days {
        y += 1;
    }
    (y, now)
}

/// Parses `Mmm dd hh:mm:ss` at the start of `text` in `year`; a time more than a day ahead
/// of `now_ms` is taken as last year's.
pub fn parse_syslog_prefix(text: &str, year: i64, now_ms: u64) -> Option<u64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut f = text.split_whitespace();
    let name = f.next()?;
    let month = MONTHS.iter().position(|m| *m == name)? as u32 + 1;
    let day: u32 = f.next()?.parse().ok()?;
    let mut hms = f.next()?.split(':').map(|v| v.parse::<u64>().ok());
    let (h, mi, se) = (hms.next()??, hms.next()??, hms.next()??);
    if day == 0 || day > 31 || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let at = |y: i64| {
        let days = days_from_civil(y, month, day);
        (days >= 0).then(|| days as u64 * 86_400_000 + (h * 3600 + mi * 60 + se) * 1000)
    };
    let t = at(year)?;
    if t > now_ms + 86_400_000 {
        at(year - 1)
    } else {
        Some(t)
    }
}

/// Calls `each` for every line of `reader`, cutting lines at [`MAX_LINE`] without ever
/// holding more than that: the rest of a long line is skipped, not buffered.
pub fn for_each_line(reader: impl Read, mut each: impl FnMut(&[u8], bool)) -> std::io::Result<()> {
    let mut r = BufReader::with_capacity(64 * 1024, reader);
    let mut line = Vec::with_capacity(1024);
    loop {
        line.clear();
        let (cut, eof) = read_bounded_line(&mut r, &mut line)?;
        if eof && line.is_empty() {
            return Ok(());
        }
        each(&line, cut);
        if eof {
            return Ok(());
        }
    }
}

/// Reads up to and including the next newline into `line`, keeping at most `MAX_LINE`
/// bytes. Returns (cut, hit end of input before a newline).
fn read_bounded_line(r: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<(bool, bool)> {
    let mut cut = false;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok((cut, true));
        }
        let (chunk, done) = match memchr_newline(buf) {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        let room = MAX_LINE.saturating_sub(line.len());
        if chunk.len() > room {
            cut = true;
        }
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let n = chunk.len();
        r.consume(n);
        if done {
            return Ok((cut, false));
        }
    }
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

/// Parses an RFC 3339 timestamp at the start of `text` into ms since the epoch.
pub fn parse_rfc3339_prefix(text: &str) -> Option<u64> {
    let token = text.split_whitespace().next()?;
    let t: humantime::Timestamp = token.parse().ok().or_else(|| {
        // "+00:00"-style offsets: humantime takes only Z; normalise a zero offset.
        token
            .strip_suffix("+00:00")
            .and_then(|b| format!("{b}Z").parse().ok())
    })?;
    let st: std::time::SystemTime = t.into();
    st.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_millis() as u64)
}

fn record(line: &[u8], cut: bool, format: TimeFormat, year: (i64, u64)) -> LogRecord {
    let (text, cut2) = line_text(line);
    let mut r = LogRecord::text(text);
    r.cut = cut || cut2;
    r.time_ms = match format {
        TimeFormat::None => None,
        TimeFormat::Rfc3339 => parse_rfc3339_prefix(&r.text),
        TimeFormat::Syslog => parse_syslog_prefix(&r.text, year.0, year.1),
    };
    r
}

/// Reads a whole file (one-shot `logs --source file:PATH`).
pub fn read_all(
    path: &Path,
    format: TimeFormat,
    mut each: impl FnMut(LogRecord),
) -> std::io::Result<()> {
    let f = File::open(path)?;
    let year = year_now();
    for_each_line(f, |line, cut| each(record(line, cut, format, year)))
}

/// A file followed across rotation and truncation.
#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    format: TimeFormat,
    file: Option<File>,
    identity: Option<(u64, u64)>,
    offset: u64,
    partial: Vec<u8>,
    partial_cut: bool,
    /// Times the file was found rotated or truncated.
    pub rotations: u64,
}

impl Follower {
    /// Starts at the end of the file (`from_start` false) or at its beginning.
    pub fn new(path: impl Into<PathBuf>, format: TimeFormat, from_start: bool) -> Follower {
        let mut f = Follower {
            path: path.into(),
            format,
            file: None,
            identity: None,
            offset: 0,
            partial: Vec::new(),
            partial_cut: false,
            rotations: 0,
        };
        if let Ok(file) = File::open(&f.path)
            && let Ok(m) = file.metadata()
        {
            f.identity = Some((m.dev(), m.ino()));
            f.offset = if from_start { 0 } else { m.len() };
            f.file = Some(file);
        }
        f
    }

    /// Reads what was appended since the last poll, calling `each` per complete line.
    pub fn poll(&mut self, mut each: impl FnMut(LogRecord)) -> std::io::Result<()> {
        let now = std::fs::metadata(&self.path).ok();
        let now_id = now.as_ref().map(|m| (m.dev(), m.ino()));
        if now_id.is_some() && now_id != self.identity {
            // Rotated by rename: finish the old file, then start the new one from 0.
            if self.file.is_some() {
                self.read_new(&mut each)?;
                self.rotations += 1;
            }
            self.file = File::open(&self.path).ok();
            self.identity = now_id;
            self.offset = 0;
            self.partial.clear();
        } else if let Some(m) = &now
            && m.len() < self.offset
        {
            // Truncated in place.
            self.rotations += 1;
            self.offset = 0;
            self.partial.clear();
        }
        self.read_new(&mut each)
    }

    fn read_new(&mut self, each: &mut impl FnMut(LogRecord)) -> std::io::Result<()> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        let year = year_now();
        file.seek(SeekFrom::Start(self.offset))?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            self.offset += n as u64;
            let mut rest = &buf[..n];
            while let Some(i) = memchr_newline(rest) {
                let piece = &rest[..i];
                let room = MAX_LINE.saturating_sub(self.partial.len());
                self.partial_cut |= piece.len() > room;
                self.partial
                    .extend_from_slice(&piece[..piece.len().min(room)]);
                each(record(&self.partial, self.partial_cut, self.format, year));
                self.partial.clear();
                self.partial_cut = false;
                rest = &rest[i + 1..];
            }
            let room = MAX_LINE.saturating_sub(self.partial.len());
            self.partial_cut |= rest.len() > room;
            self.partial
                .extend_from_slice(&rest[..rest.len().min(room)]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines_of(bytes: &[u8]) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        for_each_line(bytes, |l, cut| out.push((line_text(l).0, cut))).unwrap();
        out
    }

    #[test]
    fn lines_long_lines_and_garbage() {
        assert_eq!(
            lines_of(b"a\nb\n"),
            vec![("a".into(), false), ("b".into(), false)]
        );
        assert_eq!(
            lines_of(b"a\nlast"),
            vec![("a".into(), false), ("last".into(), false)]
        );
        let mut huge = vec![b'x'; 1 << 20];
        huge.extend_from_slice(b"\nnext\n");
        let got = lines_of(&huge);
        assert_eq!(got.len(), 2);
        assert!(got[0].1, "the 1 MiB line is cut");
        assert_eq!(got[0].0.len(), MAX_LINE);
        assert_eq!(got[1], ("next".into(), false));
        let got = lines_of(&[0xff, 0x00, b'\n']);
        assert_eq!(got[0].0, "\u{fffd}\u{0}");
    }

    #[test]
    fn syslog_prefixes() {
        let now = 1_600_000_000_000; // 2020-09-13T12:26:40Z
        assert_eq!(
            parse_syslog_prefix("Sep 13 12:26:40 node-7 kernel: x", 2020, now),
            Some(now)
        );
        // A December line read in September is last December.
        assert_eq!(
            parse_syslog_prefix("Dec 31 23:59:59 h k:", 2020, now),
            Some(days_from_civil(2019, 12, 31) as u64 * 86_400_000 + 86_399_000)
        );
        assert_eq!(parse_syslog_prefix("Foo 13 12:26:40 x", 2020, now), None);
        assert_eq!(parse_syslog_prefix("Sep 13 25:00:00 x", 2020, now), None);
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert!(year_now().0 >= 2024);
    }

    #[test]
    fn rfc3339_prefixes() {
        assert_eq!(
            parse_rfc3339_prefix("2020-09-13T12:26:40Z kubelet ..."),
            Some(1_600_000_000_000)
        );
        assert_eq!(
            parse_rfc3339_prefix("2020-09-13T12:26:40.5+00:00 x"),
            Some(1_600_000_000_500)
        );
        assert_eq!(parse_rfc3339_prefix("Nov 22 19:20:17 host kernel:"), None);
    }

    #[test]
    fn follows_appends_partial_lines_rotation_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kern.log");
        let mut w = File::create(&path).unwrap();
        w.write_all(b"old line\n").unwrap();
        let mut f = Follower::new(&path, TimeFormat::None, false);
        let mut got = Vec::new();
        let poll = |f: &mut Follower, got: &mut Vec<String>| f.poll(|r| got.push(r.text)).unwrap();

        w.write_all(b"one\ntw").unwrap();
        poll(&mut f, &mut got);
        assert_eq!(got, vec!["one"], "the partial line is held");
        w.write_all(b"o\n").unwrap();
        poll(&mut f, &mut got);
        assert_eq!(got, vec!["one", "two"]);

        // Rotation by rename: the tail of the old file, then the new file from its start.
        w.write_all(b"three\n").unwrap();
        std::fs::rename(&path, dir.path().join("kern.log.1")).unwrap();
        let mut w2 = File::create(&path).unwrap();
        w2.write_all(b"four\n").unwrap();
        poll(&mut f, &mut got);
        assert_eq!(got, vec!["one", "two", "three", "four"]);
        assert_eq!(f.rotations, 1);

        // Truncated in place (copytruncate): seen as a size below the offset, then the
        // file is read again from its start.
        w2.set_len(0).unwrap();
        poll(&mut f, &mut got);
        let mut w3 = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        w3.write_all(b"five\n").unwrap();
        poll(&mut f, &mut got);
        assert_eq!(got.last().unwrap(), "five");
        assert_eq!(f.rotations, 2);
    }
}
