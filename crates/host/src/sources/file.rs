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
use crate::localtime::LocalTime;
use node_doctor_core::model::log::{MAX_LINE, line_text};
use node_doctor_core::model::{LogRecord, Unavailable};
use node_doctor_core::rules::{LineFinder, lines_in};
use node_doctor_core::time::{parse_rfc3339_prefix, parse_syslog_prefix};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::ops::ControlFlow;
use std::os::fd::BorrowedFd;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

/// How to read a timestamp at the start of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeFormat {
    /// No timestamp is parsed.
    #[default]
    None,
    /// RFC 3339 / ISO 8601 at the start of the line (`2026-11-22T19:20:17.123Z`).
    Rfc3339,
    /// Classic syslog (`Nov 22 19:20:17 host kernel: ...`): no year and no zone, the node's
    /// local time (its `/etc/localtime`, [`LocalTime`]) in the current year (the previous
    /// year for a date over a day ahead of now; the next for one that is already there east
    /// of Greenwich).
    Syslog,
}

fn record(line: &[u8], cut: bool, format: TimeFormat, local: &LocalTime, now_ms: u64) -> LogRecord {
    let (text, cut2) = line_text(line);
    let mut r = LogRecord::text(text);
    r.cut = cut || cut2;
    r.time_ms = match format {
        TimeFormat::None => None,
        TimeFormat::Rfc3339 => parse_rfc3339_prefix(&r.text),
        TimeFormat::Syslog => parse_syslog_prefix(&r.text, now_ms, &|t| local.wall_to_utc(t)),
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

/// What a one-shot read ([`Follower::read_whole`]) hands out: pieces, and with a finder,
/// whole lines a [`LineFinder`] searched on a reader thread (their length, their count and
/// the candidate lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OneShot<'a> {
    Piece(Piece<'a>),
    Searched(&'a Searched),
}

/// A stretch of whole lines searched by a [`LineFinder`]: what the matcher needs of it
/// ([`node_doctor_core::rules::Matcher::feed_searched`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Searched {
    /// Bytes of the stretch.
    pub len: u64,
    /// Lines in it (the last may lack its newline).
    pub lines: u64,
    /// Per candidate line: where it starts in the stretch and where it ends in `bytes`.
    found: Vec<(u64, usize)>,
    /// The candidate lines, one after another, without newlines.
    bytes: Vec<u8>,
}

impl Searched {
    /// The candidate lines, each with where it starts in the stretch.
    pub fn found(&self) -> impl Iterator<Item = (u64, &[u8])> {
        let mut from = 0usize;
        self.found.iter().map(move |&(at, end)| {
            let line = self.bytes.get(from..end).unwrap_or(&[]);
            from = end;
            (at, line)
        })
    }
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
    /// The host's zone, for syslog's wall-clock times.
    local: LocalTime,
}

/// Bytes read per poll at most, so one huge file cannot starve the other sources; the rest
/// is read at the next poll.
const MAX_PER_POLL: u64 = 64 << 20;

/// Decodes one line (without its newline) into a record: text bounded by [`MAX_LINE`],
/// the timestamp of `format`.
pub fn decode(
    line: &[u8],
    cut: bool,
    format: TimeFormat,
    local: &LocalTime,
    now_ms: u64,
) -> LogRecord {
    record(line, cut, format, local, now_ms)
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
            local: if format == TimeFormat::Syslog {
                LocalTime::load(fs)
            } else {
                LocalTime::utc()
            },
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

    /// The zone its syslog times are read in (the host's; UTC for other formats).
    pub fn local_time(&self) -> &LocalTime {
        &self.local
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
        let (format, local) = (self.format, self.local.clone());
        self.poll_pieces(fs, &mut |p| {
            each_line(p, (format, &local), now_ms, &mut each)
        })
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
        let (format, local) = (self.format, self.local.clone());
        self.flush_pieces(&mut |p| each_line(p, (format, &local), now_ms, &mut each));
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
    ///
    /// With a `finder` (the matcher's search, [`LineFinder`]) and at least [`SPLIT_MIN`]
    /// bytes to read, the file is read as two halves at once, each by a thread of its own
    /// through its own buffer, searched as it is read; this thread hands out their
    /// candidate lines ([`OneShot::Searched`]) in file order: only those lines cross
    /// between the threads, and this one runs the rules over them. Reading a file in the page cache is the kernel copying
    /// it (37 % of a one-shot run's samples, `perf`, docs/performance.md 2026-12-02) and
    /// the literal search most of the rest (34 %): each core takes half of both.
    /// docs/performance.md (2026-12-03) has the runs with and without.
    pub fn read_whole(
        &mut self,
        finder: Option<LineFinder>,
        each: &mut dyn FnMut(OneShot),
    ) -> Result<u64, Unavailable> {
        self.read_whole_split_from(finder, SPLIT_MIN, LOCATED_WAITING, each)
    }

    /// [`Follower::read_whole`], split from `split_min` bytes to read on, with `waiting`
    /// parts at most between the threads.
    fn read_whole_split_from(
        &mut self,
        finder: Option<LineFinder>,
        split_min: u64,
        waiting: usize,
        each: &mut dyn FnMut(OneShot),
    ) -> Result<u64, Unavailable> {
        let Some(file) = self.file.as_ref() else {
            return Ok(0);
        };
        let path = self.path.clone();
        let carry: Vec<u8> = self.buf.get(..self.held).unwrap_or(&[]).to_vec();
        let long = self.long.take();
        let start = self.offset;
        self.held = 0;
        let split = match finder {
            Some(finder) if carry.is_empty() && long.is_none() => {
                split_point(file, start, split_min).map(|mid| (finder, mid))
            }
            _ => None,
        };
        let result = match split {
            None => read_lines(
                file,
                start,
                u64::MAX,
                carry,
                long,
                None,
                &mut hand_out(each),
            )
            .map(|n| start.saturating_add(n)),
            Some((finder, mid)) => read_halves(file, start, mid, finder, waiting, each),
        };
        match result {
            Ok(end) => {
                self.offset = end;
                Ok(end.saturating_sub(start))
            }
            Err((e, end)) => {
                self.offset = end;
                Err(Unavailable::io(&path, &e))
            }
        }
    }

    /// A few stretches of what a one-shot read from here would read — [`SAMPLE_PARTS`] of
    /// [`SAMPLE_PART`] bytes, spread evenly over it — for the matcher to choose what its
    /// search looks for by ([`node_doctor_core::rules::Matcher::tune`]). Empty when there
    /// is less than [`SAMPLE_MIN`] to read (the search would gain less than the sample
    /// costs) or the file cannot be read; the read itself reports that.
    pub fn sample(&self) -> Vec<u8> {
        let Some(file) = self.file.as_ref() else {
            return Vec::new();
        };
        let left = file
            .metadata()
            .map_or(0, |m| m.len())
            .saturating_sub(self.offset);
        if left < SAMPLE_MIN {
            return Vec::new();
        }
        let mut out = vec![0u8; SAMPLE_PARTS.saturating_mul(SAMPLE_PART)];
        let mut filled = 0usize;
        for k in 0..SAMPLE_PARTS as u64 {
            let at = self.offset.saturating_add(left / SAMPLE_PARTS as u64 * k);
            let Some(into) = out.get_mut(filled..filled.saturating_add(SAMPLE_PART)) else {
                break;
            };
            // A short or failed read only makes the sample smaller.
            filled = filled.saturating_add(file.read_at(into, at).unwrap_or(0));
        }
        out.truncate(filled);
        out
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

/// A one-shot read's sample for the matcher ([`Follower::sample`]): 4 stretches of 16 KiB
/// (some 600 lines of a kernel log), over files of 1 MiB or more. Choosing the search's
/// windows by it is one pass over the 64 KiB for all the literals; over a 235 MB log whose
/// lines the default ranks misjudge, it saved a third of the search (docs/performance.md,
/// 2026-12-03, seventh session).
const SAMPLE_PARTS: usize = 4;
const SAMPLE_PART: usize = 16 << 10;
const SAMPLE_MIN: u64 = 1 << 20;

/// Below this many bytes to read, a one-shot read stays on one thread: the two readers cost
/// some 100 µs each to start, which a few MiB of reading do not repay.
const SPLIT_MIN: u64 = 8 << 20;

/// Candidate lines a half's thread gathers before it hands them over, and how many parts
/// of each half wait at most. A batch holds the candidate lines themselves, copied while
/// they are in the reader's cache: reading them again on this thread was a `pread` per
/// line or two (6600 of them over a 235 MB log of 1 % candidates, most of the rules'
/// share, docs/performance.md 2026-12-03, seventh session). A batch is handed over once
/// it holds [`LOCATED_BATCH`] lines or [`LOCATED_BYTES`] bytes of them, checked after each
/// buffer's lines, so it holds at most that plus one buffer's lines (64 KiB: up to 13000
/// lines of 5 bytes, the shortest a literal of 4 bytes finds; trimmed when handed over,
/// [`Batch::take`]). Some seven batches are alive at once (two waiting per half, one being
/// sent, built or handed out): a few KiB for a log of the usual 1 % of candidates, about
/// 3 MiB for the worst, a file of nothing but 5-byte candidate lines (16 bytes of position
/// each), whatever the file's size. Measured on a 134 MB file of nothing but 53-byte
/// candidate lines: 10.3 MiB peak RSS for the whole run, as when batches held positions
/// only (docs/performance.md, 2026-12-03, seventh session). More candidates than that make the threads wait for this
/// one: measured on a file where every line is a candidate (docs/performance.md,
/// 2026-12-03), no slower than one thread, this one being the bottleneck either way.
const LOCATED_BATCH: usize = 4096;
const LOCATED_BYTES: usize = 128 << 10;
/// The first half's batches are handed over too once they cover this many bytes of the
/// file, so the rules run on its candidates while both halves are still being read, not
/// all at the end (with one batch per half, a serial tail over a 235 MB log of 1 %
/// candidates). Not the second half's: this thread takes its parts only after the first
/// half's, and with its channel full of small batches its reader would wait.
const LOCATED_SPAN: u64 = 4 << 20;
const LOCATED_WAITING: usize = 2;

/// Where a one-shot read from `start` splits in two: the start of the first line at or
/// after the middle of what is left. None when the file is too small to gain from it or
/// no newline ends a line near the middle (a single huge line).
fn split_point(file: &File, start: u64, split_min: u64) -> Option<u64> {
    let size = file.metadata().ok()?.len();
    let left = size.checked_sub(start)?;
    if left < split_min.max(2) {
        return None;
    }
    let middle = start.saturating_add(left / 2);
    let mut b = vec![0u8; MAX_LINE.saturating_add(1)];
    let n = loop {
        match file.read_at(&mut b, middle) {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    };
    let nl = memchr::memchr(b'\n', b.get(..n)?)?;
    let mid = middle.saturating_add(nl as u64).saturating_add(1);
    (mid < size).then_some(mid)
}

/// Reads whole lines from `from` up to `until` (or the end of the file), handing each piece
/// out through `each` with where in the file it starts (a line the carry began first, from
/// before `from`; the last line without its newline at the end), until `each` breaks or
/// `stop` is set (looked at once per buffer). A cut line's position is not its start
/// (none is kept for a line longer than a buffer; no caller needs one). Returns the bytes
/// read; on an error, the error and where.
fn read_lines(
    file: &File,
    from: u64,
    until: u64,
    mut carry: Vec<u8>,
    mut long: Option<Vec<u8>>,
    stop: Option<&AtomicBool>,
    each: &mut dyn FnMut(u64, Piece) -> ControlFlow<()>,
) -> Result<u64, (std::io::Error, u64)> {
    let mut total: u64 = 0;
    let mut b = vec![0u8; WHOLE_BUF];
    let mut broke = false;
    let stopped = || stop.is_some_and(|s| s.load(Ordering::Relaxed));
    while !broke && !stopped() {
        let at = from.saturating_add(total);
        let want = until.saturating_sub(at).min(WHOLE_BUF as u64) as usize;
        if want == 0 {
            break;
        }
        let n = match file.read_at(b.get_mut(..want).unwrap_or(&mut []), at) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err((e, at)),
        };
        let chunk = b.get(..n).unwrap_or(&[]);
        // Counted with SIMD compares summed in place (bytecount, ripgrep's counter): memchr's
        // iterator stops at every newline, some 2.3 million over a 235 MB log, and took about
        // 5 % more of a one-shot run's wall time (docs/performance.md, ninth session).
        let nl = bytecount::count(chunk, b'\n');
        total = total.saturating_add(n as u64);
        // Where the pieces take_chunk hands out start: a carried line began before this
        // chunk, the lines after it follow on; after a cut line (handed out at the chunk's
        // first newline, its rest skipped) comes the line after that newline.
        let mut line_at = at.saturating_sub(carry.len() as u64);
        let after_first_line = memchr::memchr(b'\n', chunk).map_or(n, |i| i.saturating_add(1));
        take_chunk(chunk, nl, &mut carry, &mut long, &mut |p| {
            if broke {
                return;
            }
            let here = line_at;
            line_at = match p {
                Piece::Cut(_) => at.saturating_add(after_first_line as u64),
                Piece::Lines(x) | Piece::Counted(x, _) => line_at.saturating_add(x.len() as u64),
            };
            broke = each(here, p).is_break();
        });
    }
    // Stopped early, what is held is not the file's last line.
    if !broke && !stopped() {
        let end = from.saturating_add(total);
        if let Some(l) = long {
            let _ = each(end, Piece::Cut(&l));
        } else if !carry.is_empty() {
            let _ = each(end.saturating_sub(carry.len() as u64), Piece::Lines(&carry));
        }
    }
    Ok(total)
}

/// [`read_lines`] from `from` to `until`, nothing carried in, its pieces handed out as a
/// one-shot read's.
fn read_out(
    file: &File,
    from: u64,
    until: u64,
    each: &mut dyn FnMut(OneShot),
) -> Result<u64, (std::io::Error, u64)> {
    read_lines(
        file,
        from,
        until,
        Vec::new(),
        None,
        None,
        &mut hand_out(each),
    )
}

/// What [`read_lines`] hands out, handed on as a one-shot read's pieces.
fn hand_out<'a>(
    each: &'a mut dyn FnMut(OneShot),
) -> impl FnMut(u64, Piece) -> ControlFlow<()> + 'a {
    move |_, p| {
        each(OneShot::Piece(p));
        ControlFlow::Continue(())
    }
}

/// What a half's thread hands over, in file order.
enum Part {
    Batch(Batch),
    /// A line longer than [`MAX_LINE`]: its first bytes.
    Cut(Vec<u8>),
    /// The half could not be read from this offset on.
    Failed(std::io::Error, u64),
}

/// A stretch of whole lines a half's thread searched: where it starts in the file, and
/// its length, lines and candidate lines (copied), as the matcher takes them.
#[derive(Debug, Default)]
struct Batch {
    at: u64,
    searched: Searched,
}

impl Batch {
    /// Adds whole lines read at `at` in the file (`newlines` of them ended, if counted),
    /// searched by `finder`: their candidates are copied in.
    fn add(&mut self, finder: &mut LineFinder, at: u64, lines: &[u8], newlines: Option<usize>) {
        let s = &mut self.searched;
        if s.len == 0 {
            self.at = at;
        }
        if s.bytes.capacity() == 0 {
            // Room for a full batch and the buffer that can take it past full, at once: no
            // doubling copies as it fills, and the pages of the room not written are never
            // resident.
            s.bytes
                .reserve_exact(LOCATED_BYTES.saturating_add(WHOLE_BUF));
            s.found
                .reserve_exact(LOCATED_BATCH.saturating_add(WHOLE_BUF / 5));
        }
        let offset = at.saturating_sub(self.at);
        finder.find(lines, &mut |start, end| {
            s.bytes
                .extend_from_slice(lines.get(start..end).unwrap_or(&[]));
            s.found
                .push((offset.saturating_add(start as u64), s.bytes.len()));
        });
        s.len = s.len.saturating_add(lines.len() as u64);
        s.lines = s.lines.saturating_add(lines_in(lines, newlines));
    }

    fn is_empty(&self) -> bool {
        self.searched.len == 0
    }

    /// Whether it is time to hand it over.
    fn full(&self, span: u64) -> bool {
        let s = &self.searched;
        s.found.len() >= LOCATED_BATCH || s.bytes.len() >= LOCATED_BYTES || s.len >= span
    }

    /// The batch, to hand over, leaving an empty one. Its lists are not trimmed: what they
    /// reserved and did not write is address space, not memory.
    fn take(&mut self) -> Batch {
        std::mem::take(self)
    }
}

/// [`Follower::read_whole`] as two halves, `[start, mid)` and `[mid, end)`, each read and
/// searched on a thread of its own; this one takes their candidate lines in file order
/// and hands them out. Both readers do the same work (the kernel's copy,
/// the newline count, the literal search), so the two cores stay busy until both halves
/// are done; the rules, which run only on candidates, run here between them. Where this
/// thread read the first half itself, it took a third longer than the other (it also ran
/// the rules over both halves: 55-67 ms against 30-39 ms, `perf sched`, docs/performance.md
/// 2026-12-03, seventh session) and the second core idled for that long. Returns where the
/// read stopped.
fn read_halves(
    file: &File,
    start: u64,
    mid: u64,
    mut finder: LineFinder,
    waiting: usize,
    each: &mut dyn FnMut(OneShot),
) -> Result<u64, (std::io::Error, u64)> {
    let mut second_finder = finder.clone();
    let (tx1, rx1) = mpsc::sync_channel::<Part>(waiting);
    let (tx2, rx2) = mpsc::sync_channel::<Part>(waiting);
    // Set when this thread stops taking parts (a half failed, the file shrank): the
    // readers stop.
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let stop_asked = &stop;
        // However this thread leaves (an error, a panic in `each`), the readers stop at
        // their next buffer rather than read the rest of their half for nobody.
        let _stop_on_leaving = StopOnDrop(stop_asked);
        // Each sender moves to its thread: a half's parts end when its reader does.
        let (f1, f2) = (&mut finder, &mut second_finder);
        let first = std::thread::Builder::new()
            .name("read-first-half".into())
            .spawn_scoped(scope, move || {
                search_part(file, (start, mid, LOCATED_SPAN), f1, &tx1, stop_asked)
            });
        let second = std::thread::Builder::new()
            .name("read-second-half".into())
            .spawn_scoped(scope, move || {
                search_part(file, (mid, u64::MAX, u64::MAX), f2, &tx2, stop_asked)
            });
        let (mut first, mut second) = match (first, second) {
            (Ok(f), Ok(s)) => (Some(f), Some(s)),
            (f, s) => {
                // No thread to be had (a node out of pids): this one reads it all, the
                // reader that did start stops at its next buffer (or send) and is joined.
                stop.store(true, Ordering::Relaxed);
                drop((rx1, rx2));
                for h in [f.ok(), s.ok()].into_iter().flatten() {
                    let _ = h.join();
                }
                return read_out(file, start, u64::MAX, each).map(|n| start.saturating_add(n));
            }
        };
        let outcome = 'read: {
            let end = match take_half(start, &rx1, first.take(), each) {
                Ok(end) => end,
                Err(e) => break 'read Err(e),
            };
            // The file shrank under the first half's read (truncated in place, a
            // copytruncate): the second half is gone.
            if end < mid {
                break 'read Ok(end);
            }
            take_half(mid, &rx2, second.take(), each)
        };
        stop.store(true, Ordering::Relaxed);
        drop((rx1, rx2));
        // A reader not joined yet (the read ended early) stops now: its sends fail. Joined
        // here, not by the scope, so that one that panicked is not a panic of this thread.
        for h in [first, second].into_iter().flatten() {
            let _ = h.join();
        }
        outcome
    })
}

/// Sets the flag when dropped.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Takes a half's parts ([`take_parts`]) and, when they have all come, the reader's end
/// (where it stopped reading).
fn take_half(
    from: u64,
    rx: &mpsc::Receiver<Part>,
    reader: Option<std::thread::ScopedJoinHandle<'_, u64>>,
    each: &mut dyn FnMut(OneShot),
) -> Result<u64, (std::io::Error, u64)> {
    let end = take_parts(from, rx, each)?;
    // The parts ended: the thread has returned (joining cannot wait on a send; when
    // take_parts returns early it could, so there is no join there).
    // It panicked (a bug), or is not there: what it did not hand over was not read, and
    // the read says so rather than report the file read whole.
    let stopped = || (std::io::Error::other("a half's reader stopped"), end);
    reader.ok_or_else(stopped)?.join().map_err(|_| stopped())
}

/// Hands out a half's parts (from `from` on) in file order.
fn take_parts(
    from: u64,
    rx: &mpsc::Receiver<Part>,
    each: &mut dyn FnMut(OneShot),
) -> Result<u64, (std::io::Error, u64)> {
    let mut end = from;
    for part in rx.iter() {
        match part {
            Part::Batch(b) => {
                each(OneShot::Searched(&b.searched));
                end = b.at.saturating_add(b.searched.len);
            }
            Part::Cut(l) => each(OneShot::Piece(Piece::Cut(&l))),
            Part::Failed(e, at) => return Err((e, at)),
        }
    }
    Ok(end)
}

/// A half's thread: reads from `from` to `until` (or the end of the file) with
/// [`read_lines`], searches its lines with `finder` and sends the candidates in batches
/// ([`Batch::full`]: [`LOCATED_BATCH`] lines, [`LOCATED_BYTES`] bytes of them, or covering
/// `span` bytes of the file). Returns where it stopped reading.
fn search_part(
    file: &File,
    (from, until, span): (u64, u64, u64),
    finder: &mut LineFinder,
    tx: &mpsc::SyncSender<Part>,
    stop: &AtomicBool,
) -> u64 {
    let mut batch = Batch::default();
    // A send fails only when the first thread has stopped taking parts: stop too.
    let send = |part: Part| match tx.send(part) {
        Ok(()) => ControlFlow::Continue(()),
        Err(_) => ControlFlow::Break(()),
    };
    let read = read_lines(
        file,
        from,
        until,
        Vec::new(),
        None,
        Some(stop),
        &mut |at, p| match p {
            Piece::Lines(x) | Piece::Counted(x, _) => {
                let counted = match p {
                    Piece::Counted(_, n) => Some(n),
                    _ => None,
                };
                batch.add(finder, at, x, counted);
                if batch.full(span) {
                    return send(Part::Batch(batch.take()));
                }
                ControlFlow::Continue(())
            }
            Piece::Cut(x) => {
                if !batch.is_empty() && send(Part::Batch(batch.take())).is_break() {
                    return ControlFlow::Break(());
                }
                send(Part::Cut(x.to_vec()))
            }
        },
    );
    let (end, failed) = match read {
        Ok(n) => (from.saturating_add(n), None),
        Err((e, at)) => (at, Some(e)),
    };
    if !batch.is_empty() {
        let _ = send(Part::Batch(batch.take()));
    }
    if let Some(e) = failed {
        let _ = send(Part::Failed(e, end));
    }
    end
}

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
fn each_line(
    p: Piece,
    (format, local): (TimeFormat, &LocalTime),
    now_ms: u64,
    each: &mut dyn FnMut(LogRecord),
) {
    match p {
        Piece::Cut(l) => each(record(l, true, format, local, now_ms)),
        Piece::Lines(b) | Piece::Counted(b, _) => {
            let body = b.strip_suffix(b"\n").unwrap_or(b);
            for l in body.split(|&c| c == b'\n') {
                each(record(l, false, format, local, now_ms));
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
    fn syslog_times_are_the_nodes_local_time() {
        let dir = tempfile::tempdir().unwrap();
        crate::localtime::install_zone(dir.path(), "America/New_York", "etc/localtime");
        std::fs::write(
            dir.path().join("kern.log"),
            "Sep 13 08:26:40 node-7 kernel: [ 12.5] Out of memory: Killed process 7 (x)\n",
        )
        .unwrap();
        let fs = RealFs::new(dir.path()).unwrap();
        let now = 1_600_000_000_000; // 2020-09-13T12:26:40Z: 08:26:40 EDT (UTC-4).
        for (format, want) in [(TimeFormat::Syslog, Some(now)), (TimeFormat::None, None)] {
            let (mut f, err) = Follower::new(&fs, "kern.log", format, true);
            assert!(err.is_none());
            let mut got = Vec::new();
            f.poll(&fs, now, |r| got.push(r.time_ms)).unwrap();
            f.flush(now, |r| got.push(r.time_ms));
            assert_eq!(got, vec![want]);
            // What a one-shot read's matcher decodes a candidate with: the same.
            let line = b"Sep 13 08:26:40 node-7 kernel: x";
            assert_eq!(
                decode(line, false, format, f.local_time(), now).time_ms,
                want
            );
        }
    }

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
    fn the_line_reader_gives_positions_and_stops_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        // Three buffers' worth of 100-byte lines, the last without its newline.
        let line = |i: usize| format!("{i:099}");
        let mut bytes = (0..2000).map(line).collect::<Vec<_>>().join("\n");
        bytes.push_str("\nlast");
        std::fs::write(dir.path().join("x.log"), &bytes).unwrap();
        let file = File::open(dir.path().join("x.log")).unwrap();
        // Every line handed out starts where its position says.
        let mut n_lines = 0;
        let read = read_lines(&file, 0, u64::MAX, Vec::new(), None, None, &mut |at, p| {
            if let Piece::Lines(x) | Piece::Counted(x, _) = p {
                let at = usize::try_from(at).unwrap();
                assert_eq!(bytes.as_bytes().get(at..at + x.len()), Some(x));
                n_lines += x.split_inclusive(|&c| c == b'\n').count();
            }
            ControlFlow::Continue(())
        });
        assert_eq!(read.unwrap(), bytes.len() as u64);
        assert_eq!(n_lines, 2001);
        // A callback that breaks ends the read at that buffer: no more pieces, not even the
        // held last line.
        let mut pieces = 0;
        let read = read_lines(&file, 0, u64::MAX, Vec::new(), None, None, &mut |_, _| {
            pieces += 1;
            ControlFlow::Break(())
        });
        assert_eq!((read.unwrap(), pieces), (WHOLE_BUF as u64, 1));
        // A stop set before the read: nothing read, nothing handed out.
        let stop = AtomicBool::new(true);
        let mut pieces = 0;
        let read = read_lines(
            &file,
            0,
            u64::MAX,
            Vec::new(),
            None,
            Some(&stop),
            &mut |_, _| {
                pieces += 1;
                ControlFlow::Continue(())
            },
        );
        assert_eq!((read.unwrap(), pieces), (0, 0));
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
            .read_whole(None, &mut |p| match p {
                OneShot::Piece(Piece::Cut(l)) => again.push((l.to_vec(), true)),
                OneShot::Piece(Piece::Counted(b, n)) => {
                    assert_eq!(n, b.iter().filter(|&&c| c == b'\n').count());
                    for l in b.strip_suffix(b"\n").unwrap_or(b).split(|&c| c == b'\n') {
                        again.push((l.to_vec(), false));
                    }
                }
                OneShot::Piece(Piece::Lines(b)) => {
                    for l in b.strip_suffix(b"\n").unwrap_or(b).split(|&c| c == b'\n') {
                        again.push((l.to_vec(), false));
                    }
                }
                OneShot::Searched(_) => panic!("no finder, no searched lines"),
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

    /// A line the rules would run on: (where, line, cut).
    type Candidate = (u64, Vec<u8>, bool);

    /// What a one-shot read hands a matcher, as the lines its search would run the rules on:
    /// (where, line, cut) per candidate or cut line, where counted as the matcher counts
    /// (bytes fed before it; a cut line as its kept text and a newline), and the count of
    /// lines and bytes.
    fn candidates_of(
        f: &mut Follower,
        finder: Option<LineFinder>,
        split_min: u64,
        waiting: usize,
        search: &mut LineFinder,
    ) -> (Vec<Candidate>, u64, u64, usize) {
        let mut out = Vec::new();
        let (mut lines, mut bytes, mut searched) = (0u64, 0u64, 0usize);
        let mut found_in = |b: &[u8], base: u64, out: &mut Vec<Candidate>| {
            search.find(b, &mut |s, e| {
                out.push((base + s as u64, b[s..e].to_vec(), false))
            });
        };
        f.read_whole_split_from(finder, split_min, waiting, &mut |p| match p {
            OneShot::Piece(Piece::Cut(l)) => {
                out.push((bytes, l.to_vec(), true));
                lines += 1;
                bytes += l.len() as u64 + 1;
            }
            OneShot::Piece(Piece::Lines(b) | Piece::Counted(b, _)) => {
                found_in(b, bytes, &mut out);
                lines += lines_in(b, None);
                bytes += b.len() as u64;
            }
            OneShot::Searched(s) => {
                out.extend(s.found().map(|(at, l)| (bytes + at, l.to_vec(), false)));
                lines += s.lines;
                bytes += s.len;
                searched += 1;
            }
        })
        .unwrap();
        (out, lines, bytes, searched)
    }

    #[test]
    fn a_file_read_as_two_halves_hands_out_the_lines_one_thread_would() {
        use node_doctor_core::finding::Severity;
        use node_doctor_core::rules::{Matcher, RuleSet, RuleSpec};
        let set = std::sync::Arc::new(
            RuleSet::compile(vec![
                RuleSpec::event(
                    "io",
                    "IOError",
                    r"Buffer I/O error on dev \w+",
                    Severity::Warning,
                ),
                RuleSpec::event(
                    "oom",
                    "OOMKilling",
                    r"Killed process \d+",
                    Severity::Warning,
                ),
            ])
            .unwrap(),
        );
        let finder = || {
            Matcher::new(&set)
                .line_finder()
                .expect("literal rules: a finder")
        };
        let dir = tempfile::tempdir().unwrap();
        let fs = RealFs::new(dir.path()).unwrap();
        // Files of short lines only (the first two: their middle falls in a short line) and
        // of short and long lines (past MAX_LINE: cut; the middle falls in one), candidates
        // among them (in a long line's kept head, past its cut), the last line without its
        // newline.
        for file in 0..5u64 {
            let mut bytes = Vec::new();
            let mut seed: u64 = file;
            for i in 0..(500 + file * 37) {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                match (seed >> 58) % 32 {
                    0..=3 => bytes
                        .extend_from_slice(format!("kernel: Killed process {i} (x)").as_bytes()),
                    4..=5 => bytes.extend_from_slice(b"Buffer I/O error on dev sda1, block 9"),
                    6 if file >= 2 => {
                        bytes.extend_from_slice(b"Killed process 1 ");
                        bytes.extend(std::iter::repeat_n(b'y', MAX_LINE + 50));
                    }
                    7 if file >= 2 => {
                        bytes.extend(std::iter::repeat_n(b'z', MAX_LINE + 10));
                        bytes.extend_from_slice(b" Killed process 2");
                    }
                    _ => bytes.extend(std::iter::repeat_n(
                        b'a' + (i % 26) as u8,
                        (seed >> 40) as usize % 300,
                    )),
                }
                bytes.push(b'\n');
            }
            bytes.extend_from_slice(b"Killed process 3 without a newline");
            let name = format!("x{file}.log");
            std::fs::write(dir.path().join(&name), &bytes).unwrap();
            let (mut one, _) = Follower::new(&fs, &name, TimeFormat::None, true);
            let want = candidates_of(&mut one, None, u64::MAX, 4, &mut finder());
            assert!(want.0.len() > 40, "candidates: {}", want.0.len());
            assert_eq!(want.1, 501 + file * 37);
            assert_eq!(want.3, 0);
            // Split from one byte on: always split.
            reads_alike_split(&fs, &name, &finder, 4, &want, 1);
        }
    }

    /// Reads `name` as two halves (`waiting` parts at most between the threads) and checks
    /// it hands out what one thread did (`want`), at least `searched` pieces of it searched
    /// by the halves' threads, and reads the file to its end.
    fn reads_alike_split(
        fs: &RealFs,
        name: &str,
        finder: &dyn Fn() -> LineFinder,
        waiting: usize,
        want: &(Vec<Candidate>, u64, u64, usize),
        searched: usize,
    ) {
        let (mut two, _) = Follower::new(fs, name, TimeFormat::None, true);
        let got = candidates_of(&mut two, Some(finder()), 1, waiting, &mut finder());
        assert!(got.3 >= searched, "searched by the halves: {}", got.3);
        assert_eq!(
            (&got.0, got.1, got.2),
            (&want.0, want.1, want.2),
            "{name}, {waiting} parts waiting"
        );
        let len = std::fs::metadata(fs.real_path(name)).unwrap().len();
        assert_eq!(two.offset, len);
    }

    #[test]
    fn a_file_of_mostly_candidates_makes_the_readers_wait_and_reads_alike() {
        use node_doctor_core::finding::Severity;
        use node_doctor_core::rules::{Matcher, RuleSet, RuleSpec};
        let set = std::sync::Arc::new(
            RuleSet::compile(vec![RuleSpec::event(
                "oom",
                "OOMKilling",
                r"Killed process \d+ \(java\)",
                Severity::Warning,
            )])
            .unwrap(),
        );
        let finder = || Matcher::new(&set).line_finder().expect("a finder");
        let dir = tempfile::tempdir().unwrap();
        let fs = RealFs::new(dir.path()).unwrap();
        // 20000 candidate lines in each half: some five batches each, more than the parts
        // allowed to wait (none, one: the readers wait for this thread) and fewer (eight).
        // The same lines either way; that they waited is not observed here.
        let mut bytes = Vec::new();
        for i in 0..40000 {
            bytes.extend_from_slice(format!("Killed process {i} (x{})\n", i % 7).as_bytes());
        }
        std::fs::write(dir.path().join("dense.log"), &bytes).unwrap();
        let (mut one, _) = Follower::new(&fs, "dense.log", TimeFormat::None, true);
        let want = candidates_of(&mut one, None, u64::MAX, 4, &mut finder());
        assert_eq!((want.0.len(), want.1), (40000, 40000));
        for waiting in [0, 1, 8] {
            // Several batches of each half.
            reads_alike_split(&fs, "dense.log", &finder, waiting, &want, 5);
        }
    }

    fn oom_finder() -> LineFinder {
        use node_doctor_core::finding::Severity;
        use node_doctor_core::rules::{Matcher, RuleSet, RuleSpec};
        let set = std::sync::Arc::new(
            RuleSet::compile(vec![RuleSpec::event(
                "oom",
                "OOMKilling",
                r"Killed process \d+",
                Severity::Warning,
            )])
            .unwrap(),
        );
        Matcher::new(&set).line_finder().expect("a finder")
    }

    #[test]
    fn halves_of_a_file_shorter_than_its_split_end_where_it_ends_and_a_failed_read_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        let mut text = Vec::new();
        for i in 0..3000 {
            text.extend_from_slice(format!("line {i}\nKilled process {i}\n").as_bytes());
        }
        std::fs::write(&path, &text).unwrap();
        let file = File::open(&path).unwrap();
        // The file ends before the split (truncated after it was chosen): the first half's
        // reader stops at the end, the second half is not taken, the read ends there.
        for waiting in [0, 2] {
            let mut found = Vec::new();
            let mut lines = 0u64;
            let end = read_halves(
                &file,
                0,
                text.len() as u64 + 100,
                oom_finder(),
                waiting,
                &mut |p| {
                    if let OneShot::Searched(s) = p {
                        lines += s.lines;
                        found.extend(s.found().map(|(a, l)| (a, l.to_vec())));
                    }
                },
            )
            .unwrap();
            assert_eq!((end, lines, found.len()), (text.len() as u64, 6000, 3000));
            assert_eq!(found[2999].1, b"Killed process 2999".to_vec());
        }
        // A file that cannot be read (open for writing only: EBADF on every read): an
        // error from where it was, no hang, whether the parts wait or not.
        let unreadable = File::options().write(true).open(&path).unwrap();
        for waiting in [0, 2] {
            let got = read_halves(&unreadable, 0, 1000, oom_finder(), waiting, &mut |_| {});
            assert_eq!(got.map_err(|(_, at)| at).unwrap_err(), 0);
        }
    }

    #[test]
    fn a_sample_is_four_stretches_of_what_is_left_to_read() {
        let dir = tempfile::tempdir().unwrap();
        let fs = RealFs::new(dir.path()).unwrap();
        std::fs::write(dir.path().join("small.log"), vec![b'a'; 1000]).unwrap();
        let (small, _) = Follower::new(&fs, "small.log", TimeFormat::None, true);
        assert!(small.sample().is_empty(), "under SAMPLE_MIN: no sample");
        // Every byte says where it is: (offset / 64 KiB) as a letter.
        let big: Vec<u8> = (0..4u64 << 20)
            .map(|i| b'a' + (i >> 16) as u8 % 26)
            .collect();
        std::fs::write(dir.path().join("big.log"), &big).unwrap();
        let (mut f, _) = Follower::new(&fs, "big.log", TimeFormat::None, true);
        let s = f.sample();
        assert_eq!(s.len(), SAMPLE_PARTS * SAMPLE_PART);
        let quarter = big.len() / 4;
        for k in 0..SAMPLE_PARTS {
            assert_eq!(
                &s[k * SAMPLE_PART..(k + 1) * SAMPLE_PART],
                &big[k * quarter..k * quarter + SAMPLE_PART]
            );
        }
        // From where the follower stands: the part already read is not sampled.
        f.offset = 2 << 20;
        let s = f.sample();
        assert_eq!(&s[..SAMPLE_PART], &big[2 << 20..(2 << 20) + SAMPLE_PART]);
    }

    #[test]
    fn a_batch_holds_its_candidate_lines_and_is_full_at_its_bounds() {
        let mut finder = oom_finder();
        let mut batch = Batch::default();
        // Two buffers' lines, read at 100 and 125 in the file: positions from the first.
        batch.add(&mut finder, 100, b"one\nKilled process 7\ntwo\n", Some(3));
        batch.add(&mut finder, 125, b"Killed process 8\nthree", None);
        assert_eq!(batch.at, 100);
        let s = &batch.searched;
        assert_eq!((s.len, s.lines), (47, 5));
        let found: Vec<(u64, Vec<u8>)> = s.found().map(|(a, l)| (a, l.to_vec())).collect();
        assert_eq!(
            found,
            vec![
                (4, b"Killed process 7".to_vec()),
                (25, b"Killed process 8".to_vec())
            ]
        );
        assert!(!batch.full(u64::MAX));
        // Full by the bytes of file it covers (the first half's span), by its lines' bytes
        // and by their number.
        assert!(batch.full(47));
        let long = format!("Killed process 9 {}\n", "x".repeat(MAX_LINE - 20));
        let mut n = 0;
        while !batch.full(u64::MAX) {
            batch.add(
                &mut finder,
                200 + n * long.len() as u64,
                long.as_bytes(),
                None,
            );
            n += 1;
        }
        assert!(batch.searched.bytes.len() >= LOCATED_BYTES);
        assert!(n as usize <= LOCATED_BYTES / (MAX_LINE - 10) + 1, "{n}");
        let taken = batch.take();
        assert!(batch.is_empty() && batch.searched.found.is_empty());
        assert_eq!(taken.searched.found.len(), 2 + n as usize);
        let mut many = Batch::default();
        let short = "Killed process 1\n".repeat(LOCATED_BATCH);
        many.add(&mut finder, 0, short.as_bytes(), None);
        assert!(many.full(u64::MAX) && many.searched.bytes.len() < LOCATED_BYTES);
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
