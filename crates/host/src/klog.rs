//! The kernel ring through `klogctl(2)` (`syslog(SYSLOG_ACTION_READ_ALL)`), for when
//! `/dev/kmsg` cannot be opened: inside a container it needs `privileged` whatever the
//! capabilities (the device cgroup refuses the open), while `klogctl` needs only CAP_SYSLOG.
//!
//! `READ_ALL` returns the whole ring as text (`<PRIO>[SECONDS.USEC] TEXT` per line, the
//! timestamp present when `printk.time` is on), with no sequence numbers, and says nothing
//! when the ring wraps. So each poll re-reads the ring (at most once per [`REFRESH`]) and
//! hands out only the records after the last one handed out, found again by its time and
//! text; records are turned into `/dev/kmsg`-format records with sequence numbers of our
//! own, so the rest of the pipeline is the same.

use crate::kernel::{KmsgRead, KmsgReader};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Shortest time between two reads of the whole ring.
pub const REFRESH: Duration = Duration::from_millis(1000);

/// One record of the `READ_ALL` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub prio: u32,
    pub usec: Option<u64>,
    pub text: String,
}

/// Parses `<6>[  123.456789] text` (or `<6>text` without timestamps).
pub fn parse_line(line: &str) -> Option<Line> {
    let rest = line.strip_prefix('<')?;
    let (prio, rest) = rest.split_once('>')?;
    let prio: u32 = prio.parse().ok()?;
    let (usec, text) = match rest.strip_prefix('[').and_then(|r| r.split_once("] ")) {
        Some((ts, text)) => {
            let (s, us) = ts.trim().split_once('.')?;
            let s: u64 = s.parse().ok()?;
            let us: u64 = us.get(..6.min(us.len()))?.parse().ok()?;
            (
                s.checked_mul(1_000_000).and_then(|v| v.checked_add(us)),
                text,
            )
        }
        None => (None, rest),
    };
    Some(Line {
        prio,
        usec,
        text: text.to_string(),
    })
}

/// The records of a fresh read that come after `last` (the last one handed out). A ring
/// that wrapped past `last` gives everything newer than its time.
pub fn after<'a>(lines: &'a [Line], last: Option<&Line>) -> &'a [Line] {
    let Some(last) = last else { return lines };
    match lines.iter().rposition(|l| l == last) {
        Some(i) => lines.get(i.saturating_add(1)..).unwrap_or(&[]),
        None => {
            let start = match last.usec {
                Some(t) => lines
                    .iter()
                    .position(|l| l.usec.is_some_and(|u| u > t))
                    .unwrap_or(lines.len()),
                None => 0,
            };
            lines.get(start..).unwrap_or(&[])
        }
    }
}

pub struct Klog {
    last: Option<Line>,
    next_seq: u64,
    pending: VecDeque<Vec<u8>>,
    last_read: Option<Instant>,
}

impl Klog {
    /// A reader, if `klogctl` answers (CAP_SYSLOG, and `kernel.dmesg_restrict` allowing it).
    pub fn open() -> Result<Klog, String> {
        let mut probe = Vec::new();
        rmesg::klogctl::safely_wrapped_klogctl(
            rmesg::klogctl::KLogType::SyslogActionSizeBuffer,
            &mut probe,
        )
        .map_err(|e| format!("klogctl: {e}"))?;
        Ok(Klog {
            last: None,
            next_seq: 1,
            pending: VecDeque::new(),
            last_read: None,
        })
    }

    fn refill(&mut self) -> Result<(), String> {
        if self.last_read.is_some_and(|t| t.elapsed() < REFRESH) {
            return Ok(());
        }
        self.last_read = Some(Instant::now());
        use rmesg::klogctl::{KLogType, safely_wrapped_klogctl};
        let mut empty = Vec::new();
        let size = safely_wrapped_klogctl(KLogType::SyslogActionSizeBuffer, &mut empty)
            .map_err(|e| format!("klogctl: {e}"))?;
        let mut buf = vec![0u8; size.clamp(4096, 32 << 20)];
        let n = safely_wrapped_klogctl(KLogType::SyslogActionReadAll, &mut buf)
            .map_err(|e| format!("klogctl: {e}"))?;
        let text = String::from_utf8_lossy(buf.get(..n).unwrap_or(&[])).into_owned();
        let lines: Vec<Line> = text.lines().filter_map(parse_line).collect();
        let new = after(&lines, self.last.as_ref());
        for l in new {
            let usec = l.usec.unwrap_or(0);
            self.pending.push_back(
                format!("{},{},{},-;{}", l.prio, self.next_seq, usec, l.text).into_bytes(),
            );
            self.next_seq = self.next_seq.saturating_add(1);
        }
        if let Some(l) = new.last() {
            self.last = Some(l.clone());
        }
        Ok(())
    }
}

impl KmsgReader for Klog {
    fn read(&mut self, buf: &mut [u8]) -> KmsgRead {
        if self.pending.is_empty()
            && let Err(e) = self.refill()
        {
            return KmsgRead::Failed(e);
        }
        match self.pending.pop_front() {
            None => KmsgRead::Empty,
            Some(r) => {
                let n = r.len().min(buf.len());
                if let (Some(dst), Some(src)) = (buf.get_mut(..n), r.get(..n)) {
                    dst.copy_from_slice(src);
                }
                KmsgRead::Record(n)
            }
        }
    }

    fn via(&self) -> &'static str {
        "klogctl"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_with_and_without_timestamps() {
        assert_eq!(
            parse_line("<6>[  123.456789] eth0: link up"),
            Some(Line {
                prio: 6,
                usec: Some(123_456_789),
                text: "eth0: link up".into()
            })
        );
        assert_eq!(
            parse_line("<3>oops").map(|l| (l.usec, l.text)),
            Some((None, "oops".into()))
        );
        assert_eq!(parse_line("garbage"), None);
        assert_eq!(parse_line("<x>[1.0] y"), None);
    }

    #[test]
    fn only_records_after_the_last_one_handed_out() {
        let l = |t: u64, s: &str| Line {
            prio: 6,
            usec: Some(t),
            text: s.into(),
        };
        let ring = vec![l(1, "a"), l(2, "b"), l(3, "c")];
        assert_eq!(after(&ring, None).len(), 3);
        assert_eq!(after(&ring, Some(&l(2, "b"))), &ring[2..]);
        assert!(after(&ring, Some(&l(3, "c"))).is_empty());
        // The ring wrapped past the last one: everything newer than its time.
        let wrapped = vec![l(5, "e"), l(6, "f")];
        assert_eq!(after(&wrapped, Some(&l(3, "c"))).len(), 2);
        // The same text twice: the last occurrence is the one handed out.
        let repeat = vec![l(1, "x"), l(2, "x"), l(3, "y")];
        assert_eq!(after(&repeat, Some(&l(2, "x"))), &repeat[2..]);
    }

    #[test]
    fn the_ring_is_readable_through_klogctl_as_root() {
        // CAP_SYSLOG (root here; a container with SYSLOG): the real ring, in kmsg form.
        if !rustix::process::geteuid().is_root() {
            return;
        }
        let mut k = Klog::open().expect("klogctl answers as root");
        let mut buf = vec![0u8; 16384];
        let mut n = 0;
        while let KmsgRead::Record(len) = k.read(&mut buf) {
            let rec =
                crate::sources::kmsg::parse_record(&buf[..len]).expect("a kmsg-format record");
            assert_eq!(rec.seq, n + 1);
            n += 1;
        }
        assert!(n > 0, "the ring has records");
    }
}
