//! Plain log files (`/var/log/kern.log`, `/var/log/messages`, a kubelet log): read whole, or
//! followed across rotation, through the host's [`HostFs`] (so a FIFO or a device in place of
//! the file is refused, never read).
//!
//! Following keeps the file's identity (device, inode) and offset. A different inode at the
//! path means the file was rotated by rename: the rest of the old file is read first, then
//! the new one from its start. A size below the offset means it was truncated in place
//! (copytruncate): read again from the start. A last line without its newline is held until
//! the writer completes it. Lines are cut at [`MAX_LINE`]; memory stays bounded whatever
//! the file holds.

use crate::fs::HostFs;
use node_doctor_core::model::log::{MAX_LINE, line_text};
use node_doctor_core::model::{LogRecord, Unavailable};
use node_doctor_core::time::{parse_rfc3339_prefix, parse_syslog_prefix};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;

/// How to read a timestamp at the start of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeFormat {
    /// No timestamp is parsed.
    #[default]
    None,
    /// RFC 3339 / ISO 8601 at the start of the line (`2026-11-22T19:20:17.123Z`).
    Rfc3339,
    /// Classic syslog (`Nov 22 19:20:17 host kernel: ...`): no year and no zone, read as UTC
    /// in the current year (the previous year for a date ahead of today).
    Syslog,
}

fn record(line: &[u8], cut: bool, format: TimeFormat, now_ms: u64) -> LogRecord {
    let (text, cut2) = line_text(line);
    let mut r = LogRecord::text(text);
    r.cut = cut || cut2;
    r.time_ms = match format {
        TimeFormat::None => None,
        TimeFormat::Rfc3339 => parse_rfc3339_prefix(&r.text),
        TimeFormat::Syslog => parse_syslog_prefix(&r.text, now_ms),
    };
    r
}

/// A file followed across rotation and truncation.
#[derive(Debug)]
pub struct Follower {
    path: String,
    format: TimeFormat,
    file: Option<File>,
    identity: Option<(u64, u64)>,
    offset: u64,
    partial: Vec<u8>,
    partial_cut: bool,
    /// Times the file was found rotated or truncated.
    pub rotations: u64,
}

/// Appends to a held partial line, keeping at most [`MAX_LINE`] bytes of it.
fn push_partial(partial: &mut Vec<u8>, cut: &mut bool, piece: &[u8]) {
    let room = MAX_LINE.saturating_sub(partial.len());
    *cut |= piece.len() > room;
    partial.extend_from_slice(piece.get(..piece.len().min(room)).unwrap_or(&[]));
}

/// Bytes read per poll at most, so one huge file cannot starve the other sources; the rest
/// is read at the next poll.
const MAX_PER_POLL: u64 = 64 << 20;

impl Follower {
    /// Starts at the end of the file (`from_start` false) or at its beginning. A file that
    /// cannot be opened (not there yet, not a regular file) is an error; a follower of a
    /// missing file keeps looking for it.
    pub fn new(
        fs: &dyn HostFs,
        path: &str,
        format: TimeFormat,
        from_start: bool,
    ) -> (Follower, Option<Unavailable>) {
        let mut f = Follower {
            path: path.to_string(),
            format,
            file: None,
            identity: None,
            offset: 0,
            partial: Vec::new(),
            partial_cut: false,
            rotations: 0,
        };
        let err = match fs.open_file(path) {
            Ok(file) => {
                if let Ok(m) = file.metadata() {
                    f.identity = Some((m.dev(), m.ino()));
                    f.offset = if from_start { 0 } else { m.len() };
                }
                f.file = Some(file);
                None
            }
            Err(u) => Some(u),
        };
        (f, err)
    }

    /// Reads what was appended since the last poll, calling `each` per complete line.
    pub fn poll(
        &mut self,
        fs: &dyn HostFs,
        now_ms: u64,
        mut each: impl FnMut(LogRecord),
    ) -> Result<(), Unavailable> {
        match fs.file_identity(&self.path) {
            Ok((dev, ino, len)) => {
                if self.identity != Some((dev, ino)) {
                    // Rotated by rename (or first seen): finish the old file, then start the
                    // new one from 0.
                    if self.file.is_some() {
                        self.read_new(now_ms, &mut each)?;
                        self.rotations = self.rotations.saturating_add(1);
                    }
                    self.file = Some(fs.open_file(&self.path)?);
                    self.identity = Some((dev, ino));
                    self.offset = 0;
                    self.partial.clear();
                } else if len < self.offset {
                    // Truncated in place.
                    self.rotations = self.rotations.saturating_add(1);
                    self.offset = 0;
                    self.partial.clear();
                }
            }
            // Gone for now (between a rename and the new file): read what the old one has.
            Err(u) if u.kind == node_doctor_core::model::Kind::NotFound => {}
            Err(u) => return Err(u),
        }
        self.read_new(now_ms, &mut each)
    }

    fn read_new(
        &mut self,
        now_ms: u64,
        each: &mut impl FnMut(LogRecord),
    ) -> Result<(), Unavailable> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        let path = self.path.clone();
        file.seek(SeekFrom::Start(self.offset))
            .map_err(|e| Unavailable::io(&path, &e))?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut this_poll: u64 = 0;
        while this_poll < MAX_PER_POLL {
            let n = file
                .read(&mut buf)
                .map_err(|e| Unavailable::io(&path, &e))?;
            if n == 0 {
                break;
            }
            self.offset = self.offset.saturating_add(n as u64);
            this_poll = this_poll.saturating_add(n as u64);
            let mut rest = buf.get(..n).unwrap_or(&[]);
            while let Some(i) = rest.iter().position(|&c| c == b'\n') {
                let piece = rest.get(..i).unwrap_or(&[]);
                push_partial(&mut self.partial, &mut self.partial_cut, piece);
                each(record(&self.partial, self.partial_cut, self.format, now_ms));
                self.partial.clear();
                self.partial_cut = false;
                rest = rest.get(i.saturating_add(1)..).unwrap_or(&[]);
            }
            push_partial(&mut self.partial, &mut self.partial_cut, rest);
        }
        Ok(())
    }

    /// Whole file read to its end: the last line even without a newline.
    pub fn flush(&mut self, now_ms: u64, mut each: impl FnMut(LogRecord)) {
        if !self.partial.is_empty() {
            each(record(&self.partial, self.partial_cut, self.format, now_ms));
            self.partial.clear();
            self.partial_cut = false;
        }
    }

    /// Where the follower stands: (device, inode, offset), for persisting.
    pub fn position(&self) -> Option<(u64, u64, u64)> {
        self.identity.map(|(d, i)| (d, i, self.offset))
    }

    /// Reads the current file from its start (a file rotated while the reader was away).
    pub fn rewind(&mut self) {
        self.offset = 0;
        self.partial.clear();
        self.partial_cut = false;
    }

    /// Resumes at a persisted position when the file is still the same one.
    pub fn resume(&mut self, dev: u64, ino: u64, offset: u64) -> bool {
        if self.identity == Some((dev, ino)) {
            self.offset = offset;
            self.partial.clear();
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::RealFs;
    use std::io::Write;

    #[test]
    fn follows_appends_partial_lines_rotation_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let fs = RealFs::new(dir.path()).unwrap();
        let path = dir.path().join("kern.log");
        let mut w = File::create(&path).unwrap();
        w.write_all(b"old line\n").unwrap();
        let (mut f, err) = Follower::new(&fs, "kern.log", TimeFormat::None, false);
        assert!(err.is_none());
        let mut got = Vec::new();
        let poll =
            |f: &mut Follower, got: &mut Vec<String>| f.poll(&fs, 0, |r| got.push(r.text)).unwrap();

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

    #[test]
    fn long_lines_are_cut_and_a_fifo_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fs = RealFs::new(dir.path()).unwrap();
        let mut huge = vec![b'x'; 1 << 20];
        huge.extend_from_slice(b"\nnext\nlast");
        std::fs::write(dir.path().join("big.log"), &huge).unwrap();
        let (mut f, _) = Follower::new(&fs, "big.log", TimeFormat::None, true);
        let mut got = Vec::new();
        f.poll(&fs, 0, |r| got.push(r)).unwrap();
        f.flush(0, |r| got.push(r));
        assert_eq!(got.len(), 3);
        assert!(got[0].cut);
        assert_eq!(got[0].text.len(), MAX_LINE);
        assert_eq!(
            (got[1].text.as_str(), got[2].text.as_str()),
            ("next", "last")
        );

        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.path().join("fifo"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let (_, err) = Follower::new(&fs, "fifo", TimeFormat::None, true);
        assert_eq!(err.unwrap().kind, node_doctor_core::model::Kind::NotRegular);
    }
}
