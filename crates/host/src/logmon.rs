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
use crate::sources::file::{Follower, TimeFormat};
use crate::sources::journal::{self, JournalFollower};
use crate::sources::kmsg;
use node_doctor_core::finding::Finding;
use node_doctor_core::model::log::{Position, SourceError, SourceStats};
use node_doctor_core::model::{Kind, LogRecord, Source, Unavailable};
use node_doctor_core::rules::{Matcher, RuleSet};
use std::collections::BTreeMap;
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
    /// Positions persisted by an earlier run, by source label: following resumes there
    /// (a kmsg position only within the same boot).
    pub resume: BTreeMap<String, Position>,
    /// This boot's id (`/proc/sys/kernel/random/boot_id`), to tell a kmsg position of an
    /// earlier boot.
    pub boot_id: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            check: node_doctor_core::rules::LOG_MONITOR.into(),
            follow: false,
            since_ms: None,
            time_format: TimeFormat::None,
            resume: BTreeMap::new(),
            boot_id: None,
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
        extract: Option<regex::Regex>,
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
}

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
                Stream {
                    matcher: Matcher::for_source(&set, Some(&label)),
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
        let mut m = Monitor {
            host,
            set,
            streams,
            opts,
            started_ms,
            boot_ms,
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
                let extract = match message.as_deref().map(regex::Regex::new).transpose() {
                    Ok(e) => e,
                    Err(e) => {
                        st.stats.error = Some(format!("message regex: {e}"));
                        return;
                    }
                };
                // Following from "now" starts at the end; --since and one-shot from the start.
                let from_start = !self.opts.follow || self.opts.since_ms.is_some();
                let (mut follower, err) =
                    Follower::new(fs, path, self.opts.time_format, from_start);
                if let Some(Position::File { dev, ino, offset }) = resume
                    && !follower.resume(dev, ino, offset)
                {
                    // Rotated while we were down: the new file from its start.
                    follower.rewind();
                }
                st.stats.mode = Some("poll".into());
                match err {
                    // A follower keeps looking for a file that is not there yet.
                    Some(u) if !(self.opts.follow && u.kind == Kind::NotFound) => Err(u),
                    _ => Ok(State::File { follower, extract }),
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
            let records = self.read(i, now);
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
            for r in records {
                if self
                    .opts
                    .since_ms
                    .is_some_and(|s| r.time_ms.is_some_and(|t| t < s))
                {
                    continue;
                }
                for hit in st.matcher.feed(&r) {
                    if self.opts.follow
                        && let Some(f) = st.matcher.finding_for(&hit, &self.opts.check, &st.label)
                    {
                        events.push(Event::Finding(Box::new(f)));
                    }
                }
            }
            st.stats.lines = st.matcher.lines;
        }
        events
    }

    /// The records stream `i` has now.
    fn read(&mut self, i: usize, now: u64) -> Vec<LogRecord> {
        let fs = &*self.host.fs;
        let follow = self.opts.follow;
        // Following without --since: kmsg is read from the start of the ring, skipping what
        // is older than the start (a restart does not miss what happened just before it).
        let kmsg_floor = if follow {
            self.opts.since_ms.or(Some(self.started_ms))
        } else {
            None
        };
        let boot = self.boot_ms;
        let since = self.opts.since_ms;
        let Some(st) = self.streams.get_mut(i) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut error = None;
        let mut done = false;
        match &mut st.state {
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
                        if kmsg_floor.is_none_or(|f| rec.record.time_ms.is_none_or(|t| t >= f)) {
                            out.push(rec.record);
                        }
                    }) {
                        Ok(lost) => st.stats.lost = st.stats.lost.saturating_add(lost),
                        Err(e) => {
                            error = Some(e);
                            done = true;
                        }
                    }
                }
                done |= !follow;
            }
            State::File { follower, extract } => {
                let mut push = |r: LogRecord| {
                    let r = match extract {
                        None => Some(r),
                        Some(re) => re.captures(&r.text).and_then(|m| {
                            let text = m.get(1).or(m.get(0))?.as_str().to_string();
                            Some(LogRecord { text, ..r })
                        }),
                    };
                    out.extend(r);
                };
                if let Err(u) = follower.poll(fs, now, &mut push) {
                    error = Some(u.to_string());
                    done = true;
                }
                if !follow {
                    follower.flush(now, &mut push);
                    done = true;
                }
            }
            State::Journal { follower } => match follower {
                Some(f) => {
                    if let Err(u) = f.poll(|r| out.push(r)) {
                        error = Some(u.to_string());
                        done = true;
                    }
                }
                None => {
                    let Source::Journal(filter) = &st.source else {
                        return out;
                    };
                    if let Err(u) = journal::read(fs, filter, since, |r| out.push(r)) {
                        error = Some(u.to_string());
                    }
                    done = true;
                }
            },
            State::Done => {}
        }
        if let Some(e) = error {
            st.stats.error = Some(e);
        }
        if done {
            st.state = State::Done;
        }
        out
    }

    /// Waits up to `timeout` for the next poll: until a kmsg source has a record, else a
    /// short sleep (files are polled; see the issue on inotify).
    pub fn wait(&self, timeout: Duration) {
        let fds: Vec<rustix::event::PollFd> = self
            .streams
            .iter()
            .filter_map(|s| match &s.state {
                State::Kmsg {
                    reader: Some(r), ..
                } => r.pollable(),
                _ => None,
            })
            .map(|fd| rustix::event::PollFd::from_borrowed_fd(fd, rustix::event::PollFlags::IN))
            .collect();
        let only_kmsg = fds.len() == self.streams.len();
        let t = if only_kmsg {
            timeout
        } else {
            timeout.min(Duration::from_millis(100))
        };
        if fds.is_empty() {
            std::thread::sleep(t);
            return;
        }
        let mut fds = fds;
        let ts = rustix::time::Timespec {
            tv_sec: t.as_secs().try_into().unwrap_or(i64::MAX),
            tv_nsec: i64::from(t.subsec_nanos()),
        };
        let _ = rustix::event::poll(&mut fds, Some(&ts));
    }

    /// The findings so far, most severe first.
    pub fn findings(&self) -> Vec<Finding> {
        let mut out: Vec<Finding> = self
            .streams
            .iter()
            .flat_map(|s| s.matcher.findings(&self.opts.check, &s.label))
            .collect();
        out.sort_by_key(|f| std::cmp::Reverse(f.severity));
        out
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
