//! The log monitor: sources followed (or read once) and log rules run over their records,
//! producing findings and source errors. `node-doctor logs`, `logs --follow` and the agent
//! share it.
//!
//! A source that fails is reported as a [`SourceError`] event, never dropped silently, and
//! retried: a kmsg reader that starts failing or a journal directory that goes away shows up
//! in the output (and, in the agent, in `node_doctor_log_source_up`) instead of leaving the
//! monitor quietly blind.

use crate::Host;
use crate::kernel::KmsgReader;
use crate::sources::file::{self, Follower, OneShot, Piece, TimeFormat};
use crate::sources::journal::{self, JournalFollower};
use crate::sources::kmsg;
use node_doctor_core::finding::{Evidence, Finding};
use node_doctor_core::model::log::{Position, SourceError, SourceStats};
use node_doctor_core::model::{Kind, LogRecord, Source, Unavailable};
use node_doctor_core::rules::{Hit, MatchOptions, Matcher, RuleSet};
use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

/// How a monitor reads its sources.
#[derive(Debug, Clone)]
pub struct Options {
    /// The check id findings carry ("log-monitor").
    pub check: String,
    /// Keep reading (false: read each source once, start to end).
    pub follow: bool,
    /// Only records from this time on (ms); records without a time are kept. Following
    /// without it starts at "now".
    pub since_ms: Option<u64>,
    /// Timestamp format of file sources.
    pub time_format: TimeFormat,
    /// Strip the syslog/kernel prefix of file lines before the rules see them (off: the
    /// rules see whole lines). An NPD `message` extractor takes its place where given.
    pub strip_prefix: bool,
    /// Positions persisted by an earlier run, by source label: following resumes there
    /// (a kmsg position only within the same boot).
    pub resume: BTreeMap<String, Position>,
    /// This boot's id (`/proc/sys/kernel/random/boot_id`), to tell a kmsg position of an
    /// earlier boot.
    pub boot_id: Option<String>,
    /// Kernel records holding one of these strings are also kept as records, for
    /// [`Monitor::take_kernel_records`]: the agent hands the kmsg lines `oom-kills` and
    /// `coredump-storm` judge to those checks without reading the ring a second time.
    pub keep_kernel_lines: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            check: node_doctor_core::rules::LOG_MONITOR.into(),
            follow: false,
            since_ms: None,
            time_format: TimeFormat::None,
            strip_prefix: true,
            resume: BTreeMap::new(),
            boot_id: None,
            keep_kernel_lines: Vec::new(),
        }
    }
}

/// What a poll produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The finding of a rule that just matched, as its group stands now.
    Finding(Box<Finding>),
    SourceError(SourceError),
}

/// NPD filelog's `message` extractor. Bytes and ASCII classes, as the rules (and Go's RE2
/// over UTF-8 text).
#[derive(Debug)]
enum Extractor {
    /// `PREFIX(.*)`: the message is the line after PREFIX's match, found without captures
    /// ([`node_doctor_core::rules::npd::message_prefix`]) and only its end: a forward search
    /// gives the end under the same leftmost-first semantics, and for prefixes like NPD's
    /// `kernel: \[.*\] ` (the regex engine's plain forward strategy) without the reverse
    /// scan that finding the match's start would take.
    Prefix(regex_automata::meta::Regex),
    /// Any other shape: its first group (or the whole match).
    Captures(regex::bytes::Regex),
}

impl Extractor {
    fn new(pattern: &str) -> Result<Extractor, regex::Error> {
        // The whole pattern is compiled first: its errors are the ones to report.
        let whole = regex::bytes::RegexBuilder::new(pattern)
            .unicode(false)
            .build()?;
        let prefix = node_doctor_core::rules::npd::message_prefix(pattern).and_then(|p| {
            regex_automata::meta::Builder::new()
                .configure(regex_automata::meta::Config::new().utf8_empty(false))
                .syntax(
                    regex_automata::util::syntax::Config::new()
                        .unicode(false)
                        .utf8(false),
                )
                .build(&p)
                .ok()
        });
        Ok(match prefix {
            Some(prefix) => Extractor::Prefix(prefix),
            None => Extractor::Captures(whole),
        })
    }

    /// Where the message is in `line`.
    fn message(&self, line: &[u8]) -> Option<std::ops::Range<usize>> {
        match self {
            Extractor::Prefix(re) => {
                let end = re.search_half(&regex_automata::Input::new(line))?.offset();
                Some(end..line.len())
            }
            Extractor::Captures(re) => {
                let c = re.captures(line)?;
                Some(c.get(1).or(c.get(0))?.range())
            }
        }
    }

    /// Cuts `text` to its message, in place when the message starts and ends on characters
    /// (always, but for a pattern that splits one: then a lossy copy): no second copy and
    /// UTF-8 check per candidate line. False when the line holds no message.
    fn cut_to_message(&self, text: &mut String) -> bool {
        let Some(m) = self.message(text.as_bytes()) else {
            return false;
        };
        if text.is_char_boundary(m.start) && text.is_char_boundary(m.end) {
            text.truncate(m.end);
            text.drain(..m.start);
        } else {
            *text = String::from_utf8_lossy(text.as_bytes().get(m).unwrap_or(&[])).into_owned();
        }
        true
    }
}

enum State {
    Kmsg {
        reader: Option<Box<dyn KmsgReader>>,
        next_seq: Option<u64>,
        /// Resuming: records before this sequence number were read by an earlier run.
        skip_below: Option<u64>,
        /// Resuming through klogctl (no sequence numbers): records up to this time were.
        skip_until_ms: Option<u64>,
        last_time_ms: Option<u64>,
    },
    File {
        follower: Follower,
        /// NPD filelog's `message` regex: its first group is the message; a line it does not
        /// match is not a message.
        extract: Option<Extractor>,
        /// inotify watches the file and its directory (else the monitor wakes on a timer).
        watched: bool,
    },
    Journal {
        follower: Option<JournalFollower>,
    },
    /// One-shot sources already read.
    Done,
}

struct Stream {
    source: Source,
    label: String,
    state: State,
    matcher: Matcher,
    stats: SourceStats,
    /// The last error reported, so a source that keeps failing the same way is reported
    /// once per [`REPORT_AGAIN`] rather than at every poll.
    last_error: Option<(String, u64)>,
    /// Not before this time (ms) is a failed source retried.
    retry_at_ms: u64,
}

/// A source that keeps failing the same way is reported again this often.
const REPORT_AGAIN_MS: u64 = 60_000;
/// A failed source is retried after this long.
const RETRY_MS: u64 = 5_000;

pub struct Monitor {
    host: Host,
    set: Arc<RuleSet>,
    streams: Vec<Stream>,
    opts: Options,
    started_ms: u64,
    boot_ms: Option<u64>,
    /// One inotify instance for every followed file: [`Monitor::wait`] wakes on a write.
    inotify: Option<OwnedFd>,
    /// Kernel records kept for [`Options::keep_kernel_lines`], until taken; and how many
    /// were not kept for the cap.
    kept: Vec<LogRecord>,
    kept_dropped: u64,
}

/// Kernel records kept between two [`Monitor::take_kernel_records`] at most: an OOM storm
/// cannot make the agent grow.
pub const KEPT_MAX: usize = 256;

/// Without a descriptor to wait on (the journal's own thread, an unwatched file, a source
/// waiting to be retried), the monitor looks again this often.
const TICK: Duration = Duration::from_millis(100);

impl Monitor {
    /// A monitor over `sources` (deduplicated). Sources that cannot be opened are reported at
    /// the first [`Monitor::poll`] (and retried while following).
    pub fn new(host: Host, set: Arc<RuleSet>, sources: &[Source], opts: Options) -> Monitor {
        let started_ms = host.kernel.now_ms();
        let boot_ms = host.kernel.boot_wall_ms();
        let mut seen = std::collections::BTreeSet::new();
        let streams = sources
            .iter()
            .filter(|s| seen.insert((*s).clone()))
            .map(|s| {
                let label = s.label();
                // File lines carry a syslog prefix the rules should not see (unless an NPD
                // extractor takes the message out itself); kmsg and journal messages do not.
                let strip = matches!(s, Source::File { message: None, .. }) && opts.strip_prefix;
                Stream {
                    matcher: Matcher::for_source(&set, Some(&label)).with_options(MatchOptions {
                        strip_prefix: strip,
                        started_ms: Some(started_ms),
                    }),
                    stats: SourceStats {
                        source: label.clone(),
                        ..SourceStats::default()
                    },
                    source: s.clone(),
                    label,
                    state: State::Done,
                    last_error: None,
                    retry_at_ms: 0,
                }
            })
            .collect();
        let files = sources.iter().any(|s| matches!(s, Source::File { .. }));
        let inotify = (opts.follow && files)
            .then(|| {
                use rustix::fs::inotify::{CreateFlags, init};
                init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK).ok()
            })
            .flatten();
        let mut m = Monitor {
            host,
            set,
            streams,
            opts,
            started_ms,
            boot_ms,
            inotify,
            kept: Vec::new(),
            kept_dropped: 0,
        };
        for i in 0..m.streams.len() {
            m.open(i);
        }
        m
    }

    pub fn rules(&self) -> usize {
        self.set.len()
    }

    /// (Re)opens stream `i`; a failure is kept in its stats for the next poll to report.
    fn open(&mut self, i: usize) {
        let fs = &*self.host.fs;
        let kernel = &*self.host.kernel;
        let Some(st) = self.streams.get_mut(i) else {
            return;
        };
        let resume = self.opts.resume.get(&st.label).cloned();
        let result: Result<State, Unavailable> = match &st.source {
            Source::Kmsg => kernel.open_kmsg().map(|r| {
                st.stats.mode = Some(r.via().into());
                let (mut skip_below, mut skip_until_ms) = (None, None);
                if let Some(Position::Kmsg {
                    boot_id,
                    next_seq,
                    last_time_ms,
                }) = &resume
                    && boot_id.is_some()
                    && *boot_id == self.opts.boot_id
                {
                    if r.via() == "kmsg" {
                        skip_below = Some(*next_seq);
                    } else {
                        skip_until_ms = *last_time_ms;
                    }
                }
                State::Kmsg {
                    reader: Some(r),
                    // Expecting the resume point: a ring that wrapped past it counts as lost.
                    next_seq: skip_below,
                    skip_below,
                    skip_until_ms,
                    last_time_ms: None,
                }
            }),
            Source::File { path, message } => {
                // Bytes and ASCII classes, as the rules (and Go's RE2 over UTF-8 text): the
                // extractor runs on candidate lines only, and a small automaton keeps it cheap.
                let extract = match message.as_deref().map(Extractor::new).transpose() {
                    Ok(e) => e,
                    Err(e) => {
                        st.stats.error = Some(format!("message regex: {e}"));
                        return;
                    }
                };
                // Following from "now" starts at the end; --since, an NPD lookback over dated
                // lines, and one-shot from the start.
                let looks_back =
                    st.matcher.looks_back().is_some() && self.opts.time_format != TimeFormat::None;
                let from_start = !self.opts.follow || self.opts.since_ms.is_some() || looks_back;
                let (mut follower, err) =
                    Follower::new(fs, path, self.opts.time_format, from_start);
                if let Some(Position::File { dev, ino, offset }) = resume
                    && !follower.resume(dev, ino, offset)
                {
                    // Rotated while we were down: the new file from its start.
                    follower.rewind();
                }
                let watched = self
                    .inotify
                    .as_ref()
                    .is_some_and(|ino| follower.watch(fs, ino.as_fd()));
                st.stats.mode = Some(if watched { "inotify" } else { "poll" }.into());
                match err {
                    // A follower keeps looking for a file that is not there yet.
                    Some(u) if !(self.opts.follow && u.kind == Kind::NotFound) => Err(u),
                    _ => Ok(State::File {
                        follower,
                        extract,
                        watched,
                    }),
                }
            }
            Source::Journal(filter) => {
                if self.opts.follow {
                    let from = match (resume, self.opts.since_ms) {
                        (Some(Position::Journal { cursor }), _) => journal::From::After(cursor),
                        (_, Some(ms)) => journal::From::Since(ms),
                        (_, None) => journal::From::Now,
                    };
                    JournalFollower::start(fs, filter, from).map(|f| {
                        st.stats.mode = Some("cursor".into());
                        State::Journal { follower: Some(f) }
                    })
                } else {
                    Ok(State::Journal { follower: None })
                }
            }
        };
        match result {
            Ok(s) => {
                st.state = s;
                st.stats.error = None;
            }
            Err(u) => {
                st.state = State::Done;
                st.stats.error = Some(u.to_string());
                st.last_error = st.last_error.take().filter(|(e, _)| *e == u.to_string());
            }
        }
    }

    /// Reads what each source has now and runs the rules. Following, each hit comes back as
    /// its finding; one-shot, the findings are in [`Monitor::findings`] at the end. Source
    /// errors come back as events either way.
    pub fn poll(&mut self) -> Vec<Event> {
        let now = self.host.kernel.now_ms();
        let mut events = Vec::new();
        for i in 0..self.streams.len() {
            let failed = self
                .streams
                .get(i)
                .is_some_and(|s| s.stats.error.is_some() && matches!(s.state, State::Done));
            if failed
                && self.opts.follow
                && self.streams.get(i).is_some_and(|s| now >= s.retry_at_ms)
            {
                self.open(i);
            }
            let hits = self.read(i, now);
            let Some(st) = self.streams.get_mut(i) else {
                continue;
            };
            if let Some(e) = st.stats.error.clone() {
                let again = match &st.last_error {
                    Some((last, at)) => *last != e || now.saturating_sub(*at) >= REPORT_AGAIN_MS,
                    None => true,
                };
                if again {
                    events.push(Event::SourceError(SourceError {
                        source: st.label.clone(),
                        kind: Kind::infer(&e),
                        error: e.clone(),
                        at_ms: Some(now),
                    }));
                    st.last_error = Some((e, now));
                }
                st.retry_at_ms = now.saturating_add(RETRY_MS);
            } else {
                st.last_error = None;
            }
            if self.opts.follow {
                for hit in &hits {
                    if let Some(f) = st.matcher.finding_for(hit, &self.opts.check, &st.label) {
                        events.push(Event::Finding(Box::new(f)));
                    }
                }
            }
            st.stats.lines = st.matcher.lines;
        }
        events
    }

    /// Reads what stream `i` has now and runs its rules over it: the hits.
    fn read(&mut self, i: usize, now: u64) -> Vec<Hit> {
        let fs = &*self.host.fs;
        let follow = self.opts.follow;
        let since = self.opts.since_ms;
        let boot = self.boot_ms;
        let started = self.started_ms;
        let inotify = self.inotify.as_ref();
        let keep = &self.opts.keep_kernel_lines;
        let kept = &mut self.kept;
        let kept_dropped = &mut self.kept_dropped;
        let Some(st) = self.streams.get_mut(i) else {
            return Vec::new();
        };
        let Stream {
            source,
            state,
            matcher,
            stats,
            ..
        } = st;
        // Following without --since: kmsg is read from the start of the ring, skipping what
        // is older than the start (or than the rules' lookback before it) — a restart does
        // not miss what happened just before it.
        let kmsg_floor = if follow {
            since.or(Some(
                started.saturating_sub(matcher.looks_back().unwrap_or(0)),
            ))
        } else {
            None
        };
        let old = |r: &LogRecord| since.is_some_and(|s| r.time_ms.is_some_and(|t| t < s));
        let mut hits = Vec::new();
        let mut error = None;
        let mut done = false;
        match state {
            State::Kmsg {
                reader,
                next_seq,
                skip_below,
                skip_until_ms,
                last_time_ms,
            } => {
                if let Some(r) = reader.as_mut() {
                    match kmsg::drain(&mut **r, boot, next_seq, |rec| {
                        if skip_below.is_some_and(|s| rec.seq < s)
                            || skip_until_ms
                                .is_some_and(|s| rec.record.time_ms.is_some_and(|t| t <= s))
                        {
                            return;
                        }
                        if rec.record.time_ms.is_some() {
                            *last_time_ms = rec.record.time_ms;
                        }
                        if kmsg_floor.is_none_or(|f| rec.record.time_ms.is_none_or(|t| t >= f))
                            && !old(&rec.record)
                        {
                            let got = matcher.feed(&rec.record);
                            if follow {
                                hits.extend(got);
                            }
                            if keep.iter().any(|l| rec.record.text.contains(l.as_str())) {
                                if kept.len() < KEPT_MAX {
                                    kept.push(rec.record.clone());
                                } else {
                                    *kept_dropped = kept_dropped.saturating_add(1);
                                }
                            }
                        }
                    }) {
                        Ok(lost) => stats.lost = stats.lost.saturating_add(lost),
                        Err(e) => {
                            error = Some(e);
                            done = true;
                        }
                    }
                }
                done |= !follow;
            }
            State::File {
                follower,
                extract,
                watched,
            } => {
                let format = follower.format();
                let local = follower.local_time().clone();
                // A candidate line as a record: its time, NPD's message extracted (a line the
                // extractor does not match is no message), too old for --since: none.
                let mut decode = |line: &[u8]| -> Option<LogRecord> {
                    let mut r = file::decode(line, false, format, &local, now);
                    if let Some(x) = extract.as_ref()
                        && !x.cut_to_message(&mut r.text)
                    {
                        return None;
                    }
                    (!old(&r)).then_some(r)
                };
                // One-shot: the matcher's search, for the threads that read the halves of a
                // large file to search them with (`read_whole`).
                let finder = if follow {
                    None
                } else {
                    // What the search looks for is chosen by a sample of this log first.
                    matcher.tune(&follower.sample());
                    matcher.line_finder()
                };
                // One-shot, the findings are read at the end: the hits are not kept (a large
                // file's would make memory grow with it).
                let mut on_piece = |p: OneShot| {
                    let got = match p {
                        OneShot::Piece(Piece::Lines(b)) => matcher.feed_lines(b, &mut decode),
                        OneShot::Piece(Piece::Counted(b, n)) => {
                            matcher.feed_counted(b, Some(n), &mut decode)
                        }
                        OneShot::Piece(Piece::Cut(b)) => match decode(b) {
                            Some(mut r) => {
                                r.cut = true;
                                matcher.feed(&r)
                            }
                            None => {
                                matcher.lines = matcher.lines.saturating_add(1);
                                Vec::new()
                            }
                        },
                        OneShot::Searched(s) => {
                            matcher.feed_searched(s.len, s.lines, s.found(), &mut decode)
                        }
                    };
                    if follow {
                        hits.extend(got);
                    }
                };
                if follow {
                    if let Err(u) = follower.poll_pieces(fs, &mut |p| on_piece(OneShot::Piece(p))) {
                        error = Some(u.to_string());
                        done = true;
                    }
                    if let Some(ino) = inotify {
                        *watched = follower.watch(fs, ino.as_fd());
                        stats.mode = Some(if *watched { "inotify" } else { "poll" }.into());
                    }
                } else {
                    // One-shot: the whole file, through one small buffer (`read_whole`), a
                    // large one as two halves at once.
                    if let Err(u) = follower.read_whole(finder, &mut on_piece) {
                        error = Some(u.to_string());
                    }
                    done = true;
                }
            }
            State::Journal { follower } => match follower {
                Some(f) => {
                    if let Err(u) = f.poll(|r| {
                        if !old(&r) {
                            let got = matcher.feed(&r);
                            if follow {
                                hits.extend(got);
                            }
                        }
                    }) {
                        error = Some(u.to_string());
                        done = true;
                    }
                }
                None => {
                    let Source::Journal(filter) = &*source else {
                        return hits;
                    };
                    if let Err(u) = journal::read(fs, filter, since, |r| {
                        if !old(&r) {
                            let got = matcher.feed(&r);
                            if follow {
                                hits.extend(got);
                            }
                        }
                    }) {
                        error = Some(u.to_string());
                    }
                    done = true;
                }
            },
            State::Done => {}
        }
        if let Some(e) = error {
            stats.error = Some(e);
        }
        if done {
            *state = State::Done;
        }
        hits
    }

    /// Waits up to `timeout` for the next poll: until a kmsg source has a record or inotify
    /// reports a followed file written, rotated or created. Sources with nothing to wait on
    /// (the journal, delivered by its own thread; a file inotify cannot watch; a source
    /// waiting to be retried) shorten the wait to [`TICK`].
    pub fn wait(&self, timeout: Duration) {
        let mut fds: Vec<rustix::event::PollFd> = Vec::new();
        let mut tick = false;
        for s in &self.streams {
            match &s.state {
                State::Kmsg {
                    reader: Some(r), ..
                } => match r.pollable() {
                    Some(fd) => fds.push(rustix::event::PollFd::from_borrowed_fd(
                        fd,
                        rustix::event::PollFlags::IN,
                    )),
                    None => tick = true,
                },
                State::File { watched, .. } => tick |= !*watched,
                State::Journal { .. } => tick = true,
                State::Kmsg { reader: None, .. } => {}
                State::Done => tick |= self.opts.follow && s.stats.error.is_some(),
            }
        }
        if let Some(ino) = &self.inotify {
            fds.push(rustix::event::PollFd::new(
                ino,
                rustix::event::PollFlags::IN,
            ));
        }
        let t = if tick { timeout.min(TICK) } else { timeout };
        if fds.is_empty() {
            std::thread::sleep(t);
            return;
        }
        let ts = rustix::time::Timespec {
            tv_sec: t.as_secs().try_into().unwrap_or(i64::MAX),
            tv_nsec: i64::from(t.subsec_nanos()),
        };
        let _ = rustix::event::poll(&mut fds, Some(&ts));
        // The events themselves are not needed (the next poll reads every source): empty the
        // queue so the next wait blocks again.
        if let Some(ino) = &self.inotify {
            let mut buf = [0u8; 4096];
            while rustix::io::read(ino, &mut buf).is_ok_and(|n| n > 0) {}
        }
    }

    /// The findings so far, most severe first.
    ///
    /// One problem seen through several sources (the kernel's lines in kmsg and in
    /// /var/log/kern.log; two NPD configs of one source name over both) is one finding: the
    /// source with the most lines, the others named in its evidence.
    pub fn findings(&self) -> Vec<Finding> {
        let mut out: Vec<Finding> = Vec::new();
        for f in self
            .streams
            .iter()
            .flat_map(|s| s.matcher.findings(&self.opts.check, &s.label))
        {
            match out.iter_mut().find(|o| o.key == f.key) {
                Some(have) => merge_sources(have, f),
                None => out.push(f),
            }
        }
        out.sort_by_key(|f| std::cmp::Reverse(f.severity));
        out
    }

    /// The kernel records kept since the last call ([`Options::keep_kernel_lines`]), oldest
    /// first, and how many more were not kept for [`KEPT_MAX`].
    pub fn take_kernel_records(&mut self) -> (Vec<LogRecord>, u64) {
        (
            std::mem::take(&mut self.kept),
            std::mem::take(&mut self.kept_dropped),
        )
    }

    pub fn stats(&self) -> Vec<SourceStats> {
        self.streams.iter().map(|s| s.stats.clone()).collect()
    }

    /// Where each followed source stands, to persist and resume from.
    pub fn positions(&self) -> BTreeMap<String, Position> {
        let mut out = BTreeMap::new();
        for s in &self.streams {
            let p = match &s.state {
                State::Kmsg {
                    next_seq: Some(seq),
                    last_time_ms,
                    ..
                } => Some(Position::Kmsg {
                    boot_id: self.opts.boot_id.clone(),
                    next_seq: *seq,
                    last_time_ms: *last_time_ms,
                }),
                State::File { follower, .. } => follower
                    .position()
                    .map(|(dev, ino, offset)| Position::File { dev, ino, offset }),
                State::Journal { follower: Some(f) } => {
                    f.cursor.clone().map(|cursor| Position::Journal { cursor })
                }
                _ => None,
            };
            // A source that failed keeps the position it had (not forgetting it).
            if let Some(p) = p.or_else(|| self.opts.resume.get(&s.label).cloned()) {
                out.insert(s.label.clone(), p);
            }
        }
        out
    }
}

/// Folds `other`, the same problem read from another source, into `into`.
fn merge_sources(into: &mut Finding, mut other: Finding) {
    let count = |f: &Finding| f.log.as_ref().map_or(0, |l| l.count);
    if count(&other) > count(into) {
        std::mem::swap(into, &mut other);
    }
    let (Some(a), Some(b)) = (into.log.as_mut(), other.log.as_ref()) else {
        return;
    };
    a.first_ms = a.first_ms.min(b.first_ms).or(a.first_ms.or(b.first_ms));
    a.last_ms = a.last_ms.max(b.last_ms);
    into.evidence.push(Evidence::new(
        b.source.clone(),
        format!("the same problem: {} matching lines there", b.count),
    ));
}

#[cfg(test)]
mod tests {
    use super::Extractor;

    /// The prefix extractor (a forward search for the prefix's end) and the captures one
    /// (NPD's own way: the first group) cut every line at the same place.
    #[test]
    fn prefix_and_captures_extract_the_same_message() {
        // A real line, brackets inside the message, an empty message, no prefix, bytes that
        // are not UTF-8, nothing.
        let lines: &[&[u8]] = &[
            b"Nov 22 19:20:17 node-7 kernel: [ 4242.000001] Buffer I/O error on dev sdb1",
            b"Nov 22 19:20:17 node-7 kernel: [7.5] x] [y] z",
            b"Nov 22 19:20:17 node-7 kernel: [0] ",
            b"Nov 22 19:20:17 node-7 systemd[1]: Started x.",
            b"Nov 22 19:20:17 node-7 kernel: [9] \xc3\x28 bad",
            b"",
        ];
        for pattern in [r"kernel: \[.*\] (.*)", r"^.{15} \S+ kernel: \[[^]]*\] (.*)"] {
            let prefix = Extractor::new(pattern).unwrap();
            assert!(matches!(prefix, Extractor::Prefix(_)), "{pattern}");
            let whole = Extractor::Captures(
                regex::bytes::RegexBuilder::new(pattern)
                    .unicode(false)
                    .build()
                    .unwrap(),
            );
            for line in lines {
                assert_eq!(
                    prefix.message(line).map(|m| &line[m]),
                    whole.message(line).map(|m| &line[m]),
                    "{pattern} on {:?}",
                    String::from_utf8_lossy(line)
                );
            }
        }
        assert_eq!(
            Extractor::new(r"kernel: \[.*\] (.*)")
                .unwrap()
                .message(b"kernel: [1.0] a] b] c"),
            Some(20..21),
            "greedy, as NPD's RE2: the last \"] \""
        );
        // The record's text cut to its message: in place, or past a split character as a
        // lossy copy; a line with no message is refused.
        let x = Extractor::new(r"kernel: \[.*\] (.*)").unwrap();
        let mut t = "Nov 22 node kernel: [1.0] Buffer I/O error, café".to_string();
        assert!(x.cut_to_message(&mut t));
        assert_eq!(t, "Buffer I/O error, café");
        let mut t = "no kernel prefix".to_string();
        assert!(!x.cut_to_message(&mut t));
        let split = Extractor::new(r"^.(.*)").unwrap();
        let mut t = "é then".to_string();
        assert!(split.cut_to_message(&mut t));
        assert_eq!(t, "\u{fffd} then");
    }
}
