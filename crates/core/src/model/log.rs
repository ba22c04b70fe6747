//! Log records from any source (kernel ring, files, the journal) and where to read them:
//! plain data. The sources that produce records live in the host crate; the rules that turn
//! records into findings in [`crate::rules`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which journal entries to read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JournalFilter {
    All,
    /// `_SYSTEMD_UNIT` (`kubelet.service`).
    Unit(String),
    /// `SYSLOG_IDENTIFIER` (NPD's journald `pluginConfig.source`: `dockerd`, `kubelet`).
    Identifier(String),
}

/// A place to read lines from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    Kmsg,
    /// A host path (under the root), and NPD's `message` regex that extracts the message
    /// from each line (lines it does not match are skipped).
    File {
        path: String,
        message: Option<String>,
    },
    Journal(JournalFilter),
}

impl Source {
    /// `kmsg`, `file:PATH`, `journal`, `journal:UNIT`, `journal-id:SYSLOG_IDENTIFIER`.
    pub fn parse(s: &str) -> Result<Source, String> {
        Ok(match s.split_once(':') {
            None if s == "kmsg" => Source::Kmsg,
            None if s == "journal" => Source::Journal(JournalFilter::All),
            Some(("file", p)) if !p.is_empty() => Source::File {
                path: p.to_string(),
                message: None,
            },
            Some(("journal", u)) if !u.is_empty() => Source::Journal(JournalFilter::Unit(u.into())),
            Some(("journal-id", i)) if !i.is_empty() => {
                Source::Journal(JournalFilter::Identifier(i.into()))
            }
            _ => {
                return Err(format!(
                    "unknown source {s:?}: kmsg, file:PATH, journal, journal:UNIT or journal-id:SYSLOG_IDENTIFIER"
                ));
            }
        })
    }

    /// The label findings name the source by; NPD rules are bound to their config's label.
    pub fn label(&self) -> String {
        match self {
            Source::Kmsg => "kmsg".into(),
            Source::File { path, .. } => format!("file:{path}"),
            Source::Journal(JournalFilter::All) => "journal".into(),
            Source::Journal(JournalFilter::Unit(u)) => format!("journal:{u}"),
            Source::Journal(JournalFilter::Identifier(i)) => format!("journal-id:{i}"),
        }
    }
}

/// Longest line kept; the rest of a longer line is dropped (and the record marked cut), so a
/// runaway line cannot make a reader grow without bound.
pub const MAX_LINE: usize = 64 * 1024;

/// One log message from any source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Wall-clock time, ms since the epoch, when the source gives or implies one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_ms: Option<u64>,
    /// Syslog priority (0 emerg .. 7 debug), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// kmsg sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    pub text: String,
    /// The line was longer than [`MAX_LINE`] and was cut.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cut: bool,
    /// Structured fields: kmsg dictionary (SUBSYSTEM, DEVICE), journal (_SYSTEMD_UNIT, _PID).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
}

impl LogRecord {
    pub fn text(text: impl Into<String>) -> LogRecord {
        LogRecord {
            time_ms: None,
            priority: None,
            seq: None,
            text: text.into(),
            cut: false,
            fields: BTreeMap::new(),
        }
    }
}

/// Bytes of one line to text: cut at byte [`MAX_LINE`], invalid UTF-8 replaced by U+FFFD
/// (a character the cut splits too, so the text can be `MAX_LINE + 2` bytes). Returns the
/// text and whether it was cut.
pub fn line_text(bytes: &[u8]) -> (String, bool) {
    let cut = bytes.len() > MAX_LINE;
    let bytes = bytes.get(..MAX_LINE).unwrap_or(bytes);
    // Valid UTF-8 (nearly every log line) is checked by `from_utf8`'s word-at-a-time ASCII
    // path; the lossy decoder walks the bytes chunk by chunk, 1.4 % of a one-shot run's
    // samples where every candidate line passes through here (docs/performance.md, tenth
    // session).
    let mut s = match std::str::from_utf8(bytes) {
        Ok(valid) => valid.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    };
    while s.ends_with(['\n', '\r']) {
        s.pop();
    }
    (s, cut)
}

/// The kernel ring buffer as read for one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KernelLog {
    pub records: Vec<LogRecord>,
    /// Records overwritten before they could be read (sequence gaps, EPIPE).
    pub lost: u64,
    /// Records not kept because of the cap.
    pub not_kept: u64,
    /// Why the buffer could not be read, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How it was read: "kmsg" (`/dev/kmsg`), "klogctl" (`syslog(2)`), "fixture".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_and_label() {
        for s in [
            "kmsg",
            "journal",
            "file:/var/log/kern.log",
            "journal:kubelet.service",
            "journal-id:dockerd",
        ] {
            assert_eq!(Source::parse(s).unwrap().label(), s);
        }
        assert!(Source::parse("file:").is_err());
        assert!(Source::parse("syslog").is_err());
    }

    #[test]
    fn lines_are_bounded() {
        let big = vec![b'a'; MAX_LINE + 10];
        let (t, cut) = line_text(&big);
        assert!(cut);
        assert_eq!(t.len(), MAX_LINE);
        assert_eq!(line_text(b"x\r\n"), ("x".to_string(), false));
        // Valid UTF-8 is kept as it is; invalid bytes become U+FFFD, one per bad sequence,
        // as the lossy decoder gives them (and a cut inside a character too).
        assert_eq!(line_text("café ☃".as_bytes()).0, "café ☃");
        assert_eq!(line_text(b"a\xc3\x28b\xff").0, "a\u{fffd}(b\u{fffd}");
        let mut split = vec![b'a'; MAX_LINE - 1];
        split.extend_from_slice("é".as_bytes());
        let (t, cut) = line_text(&split);
        assert!(cut);
        assert_eq!(t.len(), MAX_LINE + 2);
        assert!(t.ends_with('\u{fffd}'));
        assert!(t[..MAX_LINE - 1].bytes().all(|b| b == b'a'));
    }
}

/// What was read from one source so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceStats {
    pub source: String,
    pub lines: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lost: u64,
    /// The last error, when the source could not be read (or stopped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How the source is read ("kmsg", "klogctl", "inotify", "poll").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A source that failed: while following, each failure is reported, never dropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceError {
    pub source: String,
    pub kind: super::unavailable::Kind,
    pub error: String,
    /// When it was seen (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
}

/// Where a followed source stands, persisted so that a restart neither loses nor replays
/// lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Position {
    /// The next kmsg sequence number to read, valid within one boot; with `klogctl` (no
    /// sequence numbers) the time of the last record read.
    Kmsg {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        boot_id: Option<String>,
        next_seq: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_time_ms: Option<u64>,
    },
    /// The cursor of the last journal entry read.
    Journal { cursor: String },
    /// The followed file's identity and offset.
    File { dev: u64, ino: u64, offset: u64 },
}
