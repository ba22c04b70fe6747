//! Kernel and system logs: sources that turn bytes into [`LogRecord`]s, and rules that turn
//! records into findings that name their subjects.
//!
//! Sources (`kmsg`, `file`, `journal`) are host readers: they go through the host root and
//! are bounded (a line over [`MAX_LINE`] is cut, invalid UTF-8 is replaced, a record count
//! cap keeps the kernel ring's snapshot finite). Rules (`rules`, `pack`, `npd`) are pure.

pub mod file;
pub mod journal;
pub mod kmsg;
pub mod npd;
pub mod pack;
pub mod rules;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A place to read lines from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Kmsg,
    /// A host path (under the root), and NPD's `message` regex that extracts the message
    /// from each line (lines it does not match are skipped).
    File {
        path: String,
        message: Option<String>,
    },
    Journal(journal::Filter),
}

impl Source {
    /// `kmsg`, `file:PATH`, `journal`, `journal:UNIT`, `journal-id:SYSLOG_IDENTIFIER`.
    pub fn parse(s: &str) -> Result<Source, String> {
        Ok(match s.split_once(':') {
            None if s == "kmsg" => Source::Kmsg,
            None if s == "journal" => Source::Journal(journal::Filter::All),
            Some(("file", p)) if !p.is_empty() => Source::File {
                path: p.to_string(),
                message: None,
            },
            Some(("journal", u)) if !u.is_empty() => {
                Source::Journal(journal::Filter::Unit(u.into()))
            }
            Some(("journal-id", i)) if !i.is_empty() => {
                Source::Journal(journal::Filter::Identifier(i.into()))
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
            Source::Journal(journal::Filter::All) => "journal".into(),
            Source::Journal(journal::Filter::Unit(u)) => format!("journal:{u}"),
            Source::Journal(journal::Filter::Identifier(i)) => format!("journal-id:{i}"),
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

/// Bytes of one line to text: cut at [`MAX_LINE`] (on a char boundary), invalid UTF-8
/// replaced. Returns the text and whether it was cut.
pub fn line_text(bytes: &[u8]) -> (String, bool) {
    let cut = bytes.len() > MAX_LINE;
    let bytes = if cut { &bytes[..MAX_LINE] } else { bytes };
    let mut s = String::from_utf8_lossy(bytes).into_owned();
    while s.ends_with(['\n', '\r']) {
        s.pop();
    }
    (s, cut)
}

/// The kernel ring buffer as read for one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KernelLog {
    pub records: Vec<LogRecord>,
    /// Records overwritten before they could be read (sequence gaps, EPIPE).
    pub lost: u64,
    /// Records not kept because of the cap.
    pub not_kept: u64,
    /// Why the buffer could not be read, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
