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
use std::os::fd::BorrowedFd;
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

/// What a follower hands out: whole lines at once, so the rules can search them as one
/// buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Whole lines, each ending in `\n` (the last may lack it at the end of a one-shot read).
    Lines(&'a [u8]),
    /// One line longer than [`MAX_LINE`]: its first [`MAX_LINE`] bytes (the rest skipped).
    Cut(&'a [u8]),
    /// Whole lines, with the number of newlines they hold (counted as the buffer was read).
    Counted(&'a [u8], usize),
}

/// The read buffer: room for a held partial line of up to [`MAX_LINE`] plus large reads.
const BUF: usize = 256 << 10;

/// A file followed across rotation and truncation.
#[derive(Debug)]
pub struct Follower {
    path: String,
    format: TimeFormat,
    file: Option<File>,
    identity: Option<(u64, u64)>,
    offset: u64,
    /// `buf[..held]` is a partial last line, waiting for its newline.
    buf: Vec<u8>,
    held: usize,
    /// A line longer than [`MAX_LINE`]: its first bytes, kept while the rest is skipped up
    /// to its newline.
    long: Option<Vec<u8>>,
    /// The inode and directory inotify watches, when watched.
    watched: Option<(u64, u64)>,
    dir_watched: bool,
    /// Times the file was found rotated or truncated.
    pub rotations: u64,
}

/// Bytes read per poll at most, so one huge file cannot starve the other sources; the rest
/// is read at the next poll.
const MAX_PER_POLL: u64 = 64 << 20;

/// Decodes one line (without its newline) into a record: text bounded by [`MAX_LINE`],
/// the timestamp of `format`.
pub fn decode(line: &[u8], cut: bool, format: TimeFormat, now_ms: u64) -> LogRecord {
    record(line, cut, format, now_ms)
}

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
            buf: Vec::new(),
            held: 0,
            long: None,
            watched: None,
            dir_watched: false,
            rotations: 0,
        };
        let err = match fs.open_file(path) {
            Ok(file) => {
                if let Ok(m) = file.metadata() {
                    f.identity = Some((m.dev(), m.ino()));
                    f.offset = if from_start { 0 } else { m.len() };
                }
                if from_start {
                    // Read front to back: the kernel may read ahead further (a hint; its
                    // failure changes nothing).
                    let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::Sequential);
                }
                f.file = Some(file);
                None
            }
            Err(u) => Some(u),
        };
        (f, err)
    }

    pub fn format(&self) -> TimeFormat {
        self.format
    }

    fn reset(&mut self) {
        self.offset = 0;
        self.held = 0;
        self.long = None;
    }

    /// Reads what was appended since the last poll, calling `each` per complete line.
    pub fn poll(
        &mut self,
        fs: &dyn HostFs,
        now_ms: u64,
        mut each: impl FnMut(LogRecord),
    ) -> Result<(), Unavailable> {
        let format = self.format;
        self.poll_pieces(fs, &mut |p| each_line(p, format, now_ms, &mut each))
            .map(|_| ())
    }

    /// Reads what was appended since the last poll, handing out whole lines in large
    /// pieces. Returns the bytes read (0: nothing new).
    pub fn poll_pieces(
        &mut self,
        fs: &dyn HostFs,
        each: &mut dyn FnMut(Piece),
    ) -> Result<u64, Unavailable> {
        let mut read: u64 = 0;
        match fs.file_identity(&self.path) {
            Ok((dev, ino, len)) => {
                if self.identity != Some((dev, ino)) {
                    // Rotated by rename (or first seen): finish the old file, then start the
                    // new one from 0.
                    if self.file.is_some() {
                        read = self.read_new(each)?;
                        self.rotations = self.rotations.saturating_add(1);
                    }
                    self.file = Some(fs.open_file(&self.path)?);
                    self.identity = Some((dev, ino));
                    self.reset();
                } else if len < self.offset {
                    // Truncated in place.
                    self.rotations = self.rotations.saturating_add(1);
                    self.reset();
                }
            }
            // Gone for now (between a rename and the new file): read what the old one has.
            Err(u) if u.kind == node_doctor_core::model::Kind::NotFound => {}
            Err(u) => return Err(u),
        }
        Ok(read.saturating_add(self.read_new(each)?))
    }

    fn read_new(&mut self, each: &mut dyn FnMut(Piece)) -> Result<u64, Unavailable> {
        let Some(file) = self.file.as_mut() else {
            return Ok(0);
        };
        let path = self.path.clone();
        file.seek(SeekFrom::Start(self.offset))
            .map_err(|e| Unavailable::io(&path, &e))?;
        if self.buf.len() < BUF {
            self.buf.resize(BUF, 0);
        }
        let mut this_poll: u64 = 0;
        while this_poll < MAX_PER_POLL {
            let room = self.buf.get_mut(self.held..).unwrap_or(&mut []);
            let n = file.read(room).map_err(|e| Unavailable::io(&path, &e))?;
            if n == 0 {
                break;
            }
            self.offset = self.offset.saturating_add(n as u64);
            this_poll = this_poll.saturating_add(n as u64);
            let end = self.held.saturating_add(n);
            let data = self.buf.get(..end).unwrap_or(&[]);
            let mut start = 0usize;
            if let Some(long) = &self.long {
                // The rest of a long line: skipped up to its newline, then the line handed
                // out cut.
                match memchr::memchr(b'\n', data) {
                    None => {
                        self.held = 0;
                        continue;
                    }
                    Some(i) => {
                        each(Piece::Cut(long));
                        self.long = None;
                        start = i.saturating_add(1);
                    }
                }
            }
            let tail = data.get(start..).unwrap_or(&[]);
            let rest = match memchr::memrchr(b'\n', tail) {
                Some(j) => {
                    each(Piece::Lines(tail.get(..=j).unwrap_or(&[])));
                    start.saturating_add(j).saturating_add(1)
                }
                None => start,
            };
            let rest_len = end.saturating_sub(rest);
            if rest_len > MAX_LINE {
                let keep = rest.saturating_add(MAX_LINE);
                self.long = Some(self.buf.get(rest..keep).unwrap_or(&[]).to_vec());
                self.held = 0;
            } else {
                self.buf.copy_within(rest..end, 0);
                self.held = rest_len;
            }
        }
        Ok(this_poll)
    }

    /// Whole file read to its end: the last line even without a newline.
    pub fn flush(&mut self, now_ms: u64, mut each: impl FnMut(LogRecord)) {
        let format = self.format;
        self.flush_pieces(&mut |p| each_line(p, format, now_ms, &mut each));
    }

    pub fn flush_pieces(&mut self, each: &mut dyn FnMut(Piece)) {
        if let Some(long) = self.long.take() {
            each(Piece::Cut(&long));
        } else if self.held > 0 {
            each(Piece::Lines(self.buf.get(..self.held).unwrap_or(&[])));
        }
        self.held = 0;
    }

    /// Reads the file from where the follower stands to its end, the last line even without
    /// its newline (a one-shot read), through one small buffer: [`WHOLE_BUF`] bytes, read,
    /// counted and searched while they are in this core's cache. Memory stays at one buffer
    /// whatever the file's size; the kernel's readahead overlaps a cold file's disk reads
    /// with the search.
    pub fn read_whole(&mut self, each: &mut dyn FnMut(Piece)) -> Result<u64, Unavailable> {
        let Some(file) = self.file.as_ref() else {
            return Ok(0);
        };
        let path = self.path.clone();
        let mut f = file;
        f.seek(SeekFrom::Start(self.offset))
            .map_err(|e| Unavailable::io(&path, &e))?;
        let mut carry: Vec<u8> = self.buf.get(..self.held).unwrap_or(&[]).to_vec();
        let mut long = self.long.take();
        let mut total: u64 = 0;
        let mut b = vec![0u8; WHOLE_BUF];
        let result = loop {
            let n = match f.read(&mut b) {
                Ok(0) => break Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(Unavailable::io(&path, &e)),
            };
            let chunk = b.get(..n).unwrap_or(&[]);
            let nl = memchr::memchr_iter(b'\n', chunk).count();
            total = total.saturating_add(n as u64);
            take_chunk(chunk, nl, &mut carry, &mut long, each);
        };
        self.offset = self.offset.saturating_add(total);
        self.held = 0;
        if result.is_ok() {
            if let Some(l) = long {
                each(Piece::Cut(&l));
            } else if !carry.is_empty() {
                each(Piece::Lines(&carry));
            }
        }
        result
    }

    /// Watches the file (appends, truncation) and its directory (rotation, creation) with
    /// `inotify`, so a waiting monitor wakes as soon as a line is written instead of polling.
    /// Called after each poll: a rotated file is a new inode to watch. Returns whether the
    /// file is watched.
    pub fn watch(&mut self, fs: &dyn HostFs, inotify: BorrowedFd<'_>) -> bool {
        use rustix::fs::inotify::{WatchFlags, add_watch};
        let real = fs.real_path(&self.path);
        if !self.dir_watched
            && let Some(dir) = real.parent()
        {
            self.dir_watched = add_watch(
                inotify,
                dir,
                WatchFlags::CREATE
                    | WatchFlags::MOVED_TO
                    | WatchFlags::MOVED_FROM
                    | WatchFlags::DELETE,
            )
            .is_ok();
        }
        if self.identity.is_some() && self.watched != self.identity {
            let ok = add_watch(
                inotify,
                &real,
                WatchFlags::MODIFY | WatchFlags::ATTRIB | WatchFlags::CLOSE_WRITE,
            )
            .is_ok();
            self.watched = if ok { self.identity } else { None };
        }
        self.dir_watched && self.watched.is_some() == self.identity.is_some()
    }

    /// Where the follower stands: (device, inode, offset), for persisting. The offset is
    /// that of the first byte not yet handed out as a whole line: a partial last line held
    /// for its newline is read again after a restart, not lost.
    pub fn position(&self) -> Option<(u64, u64, u64)> {
        let handed_out = self.offset.saturating_sub(self.held as u64);
        self.identity.map(|(d, i)| (d, i, handed_out))
    }

    /// Reads the current file from its start (a file rotated while the reader was away).
    pub fn rewind(&mut self) {
        self.offset = 0;
        self.held = 0;
        self.long = None;
    }

    /// Resumes at a persisted position when the file is still the same one.
    pub fn resume(&mut self, dev: u64, ino: u64, offset: u64) -> bool {
        if self.identity == Some((dev, ino)) {
            self.offset = offset;
            self.held = 0;
            self.long = None;
            true
        } else {
            false
        }
    }
}

/// A one-shot read's buffer. Small on purpose: measured over a 235 MB log in the page cache
/// (docs/performance.md, 2026-12-02), the kernel's copy into a buffer of 128 KiB or more —
/// which glibc maps with mmap instead of taking from the heap — cost three times as much
/// (`_copy_to_iter` 55 % of the run against 18 %) as into one of 16–124 KiB, and a reader
/// thread a few 256 KiB buffers ahead of the search (the earlier design) was slower than
/// one thread with a 64 KiB buffer: 0.23 s against 0.15 s.
const WHOLE_BUF: usize = 64 << 10;

/// Hands out the whole lines of `c`, the next buffer of a file: the line `carry` began first,
/// then the lines inside `c`; what follows the last newline becomes the new carry (or, past
/// [`MAX_LINE`], a cut line whose rest is skipped).
fn take_chunk(
    c: &[u8],
    newlines: usize,
    carry: &mut Vec<u8>,
    long: &mut Option<Vec<u8>>,
    each: &mut dyn FnMut(Piece),
) {
    let mut start = 0usize;
    if long.is_some() {
        match memchr::memchr(b'\n', c) {
            None => return,
            Some(i) => {
                if let Some(l) = long.take() {
                    each(Piece::Cut(&l));
                }
                start = i.saturating_add(1);
            }
        }
    } else if !carry.is_empty() {
        match memchr::memchr(b'\n', c) {
            None => {
                carry.extend_from_slice(c);
                if carry.len() > MAX_LINE {
                    carry.truncate(MAX_LINE);
                    *long = Some(std::mem::take(carry));
                }
                return;
            }
            Some(i) => {
                carry.extend_from_slice(c.get(..=i).unwrap_or(&[]));
                if carry.len() > MAX_LINE.saturating_add(1) {
                    each(Piece::Cut(carry.get(..MAX_LINE).unwrap_or(&[])));
                } else {
                    each(Piece::Lines(carry));
                }
                carry.clear();
                start = i.saturating_add(1);
            }
        }
    }
    // The first newline went to the line the carry began (or ended a skipped long one).
    let inner = newlines.saturating_sub(usize::from(start > 0));
    let rest = c.get(start..).unwrap_or(&[]);
    let tail = match memchr::memrchr(b'\n', rest) {
        Some(j) => {
            each(Piece::Counted(rest.get(..=j).unwrap_or(&[]), inner));
            rest.get(j.saturating_add(1)..).unwrap_or(&[])
        }
        None => rest,
    };
    if tail.len() > MAX_LINE {
        *long = Some(tail.get(..MAX_LINE).unwrap_or(&[]).to_vec());
    } else {
        carry.extend_from_slice(tail);
    }
}

/// The records of a piece, one per line.
fn each_line(p: Piece, format: TimeFormat, now_ms: u64, each: &mut dyn FnMut(LogRecord)) {
    match p {
        Piece::Cut(l) => each(record(l, true, format, now_ms)),
        Piece::Lines(b) | Piece::Counted(b, _) => {
            let body = b.strip_suffix(b"\n").unwrap_or(b);
            for l in body.split(|&c| c == b'\n') {
                each(record(l, false, format, now_ms));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::RealFs;
    use std::io::Write;
    use std::os::fd::AsFd;

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

    #[test]
    fn pieces_are_whole_lines_whatever_the_reads_cut() {
        let dir = tempfile::tempdir().unwrap();
        let fs = RealFs::new(dir.path()).unwrap();
        // Lines of every length around the buffer's and MAX_LINE's edges.
        let mut want: Vec<Vec<u8>> = Vec::new();
        let mut seed: u64 = 7;
        for i in 0..400u64 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = match i % 5 {
                0 => (seed >> 33) as usize % 200,
                1 => MAX_LINE - 1 + (seed >> 60) as usize % 3,
                2 => BUF - 10 + (seed >> 58) as usize % 20,
                _ => (seed >> 40) as usize % 5000,
            };
            want.push(vec![b'a' + (i % 26) as u8; len]);
        }
        let mut bytes = want.join(&b'\n');
        bytes.push(b'\n');
        std::fs::write(dir.path().join("x.log"), &bytes).unwrap();
        let (mut f, _) = Follower::new(&fs, "x.log", TimeFormat::None, true);
        let mut got: Vec<(Vec<u8>, bool)> = Vec::new();
        let mut take = |p: Piece| match p {
            Piece::Cut(l) => got.push((l.to_vec(), true)),
            Piece::Lines(b) | Piece::Counted(b, _) => {
                assert_eq!(b.last(), Some(&b'\n'), "whole lines only");
                for l in b.strip_suffix(b"\n").unwrap().split(|&c| c == b'\n') {
                    got.push((l.to_vec(), false));
                }
            }
        };
        while f.poll_pieces(&fs, &mut take).unwrap() > 0 {}
        f.flush_pieces(&mut take);
        // The one-shot read, through its own buffer of another size (WHOLE_BUF): the same lines.
        let (mut whole, _) = Follower::new(&fs, "x.log", TimeFormat::None, true);
        let mut again: Vec<(Vec<u8>, bool)> = Vec::new();
        whole
            .read_whole(&mut |p| match p {
                Piece::Cut(l) => again.push((l.to_vec(), true)),
                Piece::Counted(b, n) => {
                    assert_eq!(n, b.iter().filter(|&&c| c == b'\n').count());
                    for l in b.strip_suffix(b"\n").unwrap_or(b).split(|&c| c == b'\n') {
                        again.push((l.to_vec(), false));
                    }
                }
                Piece::Lines(b) => {
                    for l in b.strip_suffix(b"\n").unwrap_or(b).split(|&c| c == b'\n') {
                        again.push((l.to_vec(), false));
                    }
                }
            })
            .unwrap();
        let cut = |v: &[(Vec<u8>, bool)]| -> Vec<Vec<u8>> {
            v.iter()
                .map(|(l, _)| l[..l.len().min(MAX_LINE)].to_vec())
                .collect()
        };
        assert_eq!(cut(&again), cut(&got));
        assert_eq!(got.len(), want.len());
        for ((g, cut), w) in got.iter().zip(&want) {
            if w.len() > MAX_LINE && *cut {
                assert_eq!(&g[..], &w[..MAX_LINE]);
            } else {
                assert_eq!(g, w);
            }
        }
    }

    /// Whether `fd` becomes readable within a generous bound (not a timing assertion: a
    /// guard so a missing event fails instead of hanging).
    fn readable(fd: &std::os::fd::OwnedFd) -> bool {
        use rustix::event::{PollFd, PollFlags, poll};
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        let ts = rustix::time::Timespec {
            tv_sec: 10,
            tv_nsec: 0,
        };
        poll(&mut fds, Some(&ts)).is_ok_and(|n| n > 0)
    }

    fn drain(fd: &std::os::fd::OwnedFd) {
        let mut buf = [0u8; 4096];
        while rustix::io::read(fd, &mut buf).is_ok_and(|n| n > 0) {}
    }

    #[test]
    fn inotify_wakes_on_a_write_a_rotation_and_a_creation() {
        use rustix::fs::inotify::{CreateFlags, init};
        let dir = tempfile::tempdir().unwrap();
        let fs = RealFs::new(dir.path()).unwrap();
        let path = dir.path().join("kern.log");
        std::fs::write(&path, "old\n").unwrap();
        let ino = init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK).unwrap();
        let (mut f, _) = Follower::new(&fs, "kern.log", TimeFormat::None, false);
        assert!(f.watch(&fs, ino.as_fd()));
        let mut w = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        w.write_all(b"new line\n").unwrap();
        assert!(readable(&ino), "a write to the file");
        drain(&ino);
        let mut got = Vec::new();
        f.poll(&fs, 0, |r| got.push(r.text)).unwrap();
        assert_eq!(got, vec!["new line"]);

        std::fs::rename(&path, dir.path().join("kern.log.1")).unwrap();
        assert!(
            readable(&ino),
            "a rotation (rename out of the directory's view)"
        );
        drain(&ino);
        std::fs::write(&path, "after rotation\n").unwrap();
        assert!(readable(&ino), "the new file's creation");
        drain(&ino);
        f.poll(&fs, 0, |r| got.push(r.text)).unwrap();
        assert!(f.watch(&fs, ino.as_fd()), "the new inode is watched");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"more\n")
            .unwrap();
        assert!(readable(&ino), "a write to the new file");
        f.poll(&fs, 0, |r| got.push(r.text)).unwrap();
        assert_eq!(got, vec!["new line", "after rotation", "more"]);
    }
}
