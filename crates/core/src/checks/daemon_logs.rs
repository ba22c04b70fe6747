//! Helpers for the checks that read the kubelet's and the runtime's own log lines
//! ([`DaemonLog`] in the snapshot): finding a daemon's log, lines in a recent window, Go
//! durations ("3m0.5s") as kubelet prints them.

use crate::model::log::LogRecord;
use crate::model::runtime::DaemonLog;
use crate::model::snapshot::{Missing, Snapshot};

/// The log of `daemon` (`kubelet`, `containerd`), or why there is none to read.
pub fn log_of<'a>(s: &'a Snapshot, daemon: &str) -> Result<&'a DaemonLog, Missing> {
    let Some(logs) = &s.daemon_logs else {
        return Err(s.not_collected("kubelet and runtime log lines"));
    };
    match logs.iter().find(|l| l.daemon == daemon) {
        Some(l) if l.error.is_some() && l.lines == 0 => Err(format!(
            "{daemon}'s log ({}): {}",
            l.source,
            l.error.as_deref().unwrap_or_default()
        )),
        Some(l) => Ok(l),
        None => Err(format!(
            "no log of {daemon} found (no journal unit {daemon}.service under var/log/journal or run/log/journal, and its stderr is not a file)"
        )),
    }
}

/// Records of `log` logged within `window_ms` before the snapshot (records without a time
/// count as recent: a file without timestamps is read from its tail).
pub fn recent<'a>(s: &Snapshot, log: &'a DaemonLog, window_ms: u64) -> Vec<&'a LogRecord> {
    let from = s.collected_at_ms.saturating_sub(window_ms);
    log.records
        .iter()
        .filter(|r| r.time_ms.is_none_or(|t| t >= from))
        .collect()
}

/// The span the window actually covers, ms: the window, or less when the log starts later
/// (the daemon started recently, the bound dropped older lines).
pub fn covered_ms(s: &Snapshot, log: &DaemonLog, window_ms: u64) -> u64 {
    let from = s.collected_at_ms.saturating_sub(window_ms);
    let start = log.since_ms.unwrap_or(from).max(from);
    s.collected_at_ms.saturating_sub(start).max(1)
}

/// Seconds in a Go `time.Duration` string: "1.19s", "3m0.5s", "27h14m51.4s", "500ms",
/// "1.5µs"; `None` when it is not one.
pub fn go_duration_secs(s: &str) -> Option<f64> {
    let s = s.trim().trim_matches('"');
    if s.is_empty() {
        return None;
    }
    let mut total = 0.0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let n_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(n_len);
        let n: f64 = num.parse().ok()?;
        let u_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(u_len);
        let mult = match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" | "μs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += n * mult;
        rest = tail;
    }
    total.is_finite().then_some(total)
}

/// The text after `marker` up to the next space or quote ("Waited for 1.19s due" with
/// marker "Waited for " gives "1.19s").
pub fn word_after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let i = text.find(marker)?;
    let rest = text.get(i.checked_add(marker.len())?..)?;
    let rest = rest.trim_start_matches('"');
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"' || c == ';' || c == ',')
        .unwrap_or(rest.len());
    rest.get(..end).filter(|w| !w.is_empty())
}

/// A quoted argument after `marker`: `PullImage "busybox:1.36"` with marker `PullImage ` gives
/// `busybox:1.36` (backslash-escaped quotes of journald/logrus text unescaped).
pub fn quoted_after(text: &str, marker: &str) -> Option<String> {
    let i = text.find(marker)?;
    let rest = text.get(i.checked_add(marker.len())?..)?;
    let rest = rest
        .strip_prefix("\\\"")
        .map(|r| (r, "\\\""))
        .or_else(|| rest.strip_prefix('"').map(|r| (r, "\"")))?;
    let (body, close) = rest;
    let end = body.find(close)?;
    body.get(..end)
        .map(str::to_string)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration_secs("1.5s"), Some(1.5));
        assert_eq!(go_duration_secs("3m0.5s"), Some(180.5));
        assert_eq!(go_duration_secs("27h14m51s"), Some(98091.0));
        assert_eq!(go_duration_secs("500ms"), Some(0.5));
        assert!(go_duration_secs("2µs").is_some_and(|v| (v - 2e-6).abs() < 1e-12));
        assert_eq!(go_duration_secs("\"1.2s\""), Some(1.2));
        assert_eq!(go_duration_secs("abc"), None);
        assert_eq!(go_duration_secs("5x"), None);
        assert_eq!(go_duration_secs(""), None);
    }

    #[test]
    fn words_and_quotes() {
        assert_eq!(
            word_after("Waited for 1.19s due to client-side", "Waited for "),
            Some("1.19s")
        );
        assert_eq!(word_after(r#"delay="1.2s" reason"#, "delay="), Some("1.2s"));
        assert_eq!(
            quoted_after(
                r#"level=info msg="PullImage \"reg:5000/a:1\"""#,
                "PullImage "
            ),
            Some("reg:5000/a:1".into())
        );
        assert_eq!(
            quoted_after(r#"Pulling image "nginx:1.25""#, "Pulling image "),
            Some("nginx:1.25".into())
        );
        assert_eq!(quoted_after("PullImage x", "PullImage "), None);
    }
}
