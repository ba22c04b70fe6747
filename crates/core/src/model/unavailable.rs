//! Why something a check needs is not in the snapshot: the host path it concerns and the
//! kind of failure, kept so that a check can say "unknown, because ..." instead of guessing,
//! and so the agent can count failures by kind.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The kind of failure. Serialized in snake_case; an unknown kind from a newer recording
/// reads as `other`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The file or directory does not exist (ENOENT): a module not loaded, an older kernel.
    NotFound,
    /// Permission denied (EACCES, EPERM): another user's `/proc/PID/fd` without the caps.
    Denied,
    /// A FIFO, device, socket or directory where a regular file was expected: never read,
    /// since reading it could block forever or never end.
    NotRegular,
    /// Read, but the contents did not parse.
    Malformed,
    /// Larger than the read cap: what was read is kept, the rest is not.
    Truncated,
    /// Still blocked at the deadline (a dead FUSE/NFS mount, a process stuck in the kernel).
    Timeout,
    #[default]
    #[serde(other)]
    Other,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::NotFound => "not_found",
            Kind::Denied => "denied",
            Kind::NotRegular => "not_regular",
            Kind::Malformed => "malformed",
            Kind::Truncated => "truncated",
            Kind::Timeout => "timeout",
            Kind::Other => "other",
        }
    }

    /// The kind of an IO error.
    pub fn of_io(e: &std::io::Error) -> Kind {
        use std::io::ErrorKind as E;
        match e.kind() {
            E::NotFound => Kind::NotFound,
            E::PermissionDenied => Kind::Denied,
            E::TimedOut | E::WouldBlock => Kind::Timeout,
            E::IsADirectory => Kind::NotRegular,
            E::InvalidData => Kind::Malformed,
            _ => match e.raw_os_error() {
                Some(1) => Kind::Denied,      // EPERM
                Some(21) => Kind::NotRegular, // EISDIR
                Some(20) => Kind::NotFound,   // ENOTDIR: a path component is a file
                _ => Kind::Other,
            },
        }
    }

    /// Recordings made before `kind` existed carry only the reason text.
    pub fn infer(reason: &str) -> Kind {
        let r = reason.to_ascii_lowercase();
        if r.contains("no such file") || r.contains("not found") || r.contains("not a directory") {
            Kind::NotFound
        } else if r.contains("permission denied") || r.contains("not permitted") {
            Kind::Denied
        } else if r.starts_with("malformed") {
            Kind::Malformed
        } else if r.contains("is a directory") || r.contains("not a regular file") {
            Kind::NotRegular
        } else if r.contains("deadline") || r.contains("blocked") || r.contains("timed out") {
            Kind::Timeout
        } else if r.contains("truncated") {
            Kind::Truncated
        } else {
            Kind::Other
        }
    }
}

/// A host file that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unavailable {
    /// The host path, relative to the host root ("proc/sys/kernel/pid_max").
    pub path: String,
    #[serde(default)]
    pub kind: Kind,
    pub reason: String,
}

impl Unavailable {
    pub fn new(path: &str, kind: Kind, reason: impl Into<String>) -> Self {
        Self {
            path: path.trim_start_matches('/').to_string(),
            kind,
            reason: reason.into(),
        }
    }

    pub fn io(path: &str, err: &std::io::Error) -> Self {
        Self::new(path, Kind::of_io(err), err.to_string())
    }

    /// A file that was read but whose contents did not parse.
    pub fn malformed(path: &str, err: impl fmt::Display) -> Self {
        Self::new(path, Kind::Malformed, format!("malformed: {err}"))
    }

    /// A file larger than the read cap; `cap` is in bytes.
    pub fn truncated(path: &str, cap: usize) -> Self {
        Self::new(
            path,
            Kind::Truncated,
            format!("truncated: larger than the {cap}-byte read cap (the rest was not read)"),
        )
    }

    pub fn not_regular(path: &str, what: &str) -> Self {
        Self::new(
            path,
            Kind::NotRegular,
            format!("not a regular file ({what}): not read, it could block or never end"),
        )
    }

    pub fn timeout(path: &str, what: impl fmt::Display) -> Self {
        Self::new(path, Kind::Timeout, format!("timed out: {what}"))
    }
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}: {}", self.path, self.reason)
    }
}

/// Pushes `item` unless `list` already holds `cap` items; then counts it in `not_kept`.
/// Lists of problems stay bounded however sick the host.
pub fn push_capped<T>(list: &mut Vec<T>, not_kept: &mut u64, cap: usize, item: T) {
    if list.len() < cap {
        list.push(item);
    } else {
        *not_kept = not_kept.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_old_recordings_infer_them() {
        let u = Unavailable::new("/proc/x", Kind::Truncated, "t");
        let j = serde_json::to_string(&u).unwrap();
        assert!(j.contains("\"kind\":\"truncated\""), "{j}");
        let old: Unavailable = serde_json::from_str(
            r#"{"path":"proc/x","reason":"No such file or directory (os error 2)"}"#,
        )
        .unwrap();
        assert_eq!(old.kind, Kind::Other);
        assert_eq!(Kind::infer(&old.reason), Kind::NotFound);
        let newer: Unavailable =
            serde_json::from_str(r#"{"path":"p","kind":"from_the_future","reason":"r"}"#).unwrap();
        assert_eq!(newer.kind, Kind::Other);
    }

    #[test]
    fn io_errors_keep_their_kind() {
        let e = std::io::Error::from_raw_os_error(13);
        assert_eq!(Unavailable::io("a", &e).kind, Kind::Denied);
        let e = std::io::Error::from_raw_os_error(2);
        assert_eq!(Unavailable::io("a", &e).kind, Kind::NotFound);
    }
}
