//! The message of a log-file line: what the rules see once the line's syslog prefix is
//! stripped, so a rule anchored at the start of a kernel message (`^Killed process`) matches
//! in `/var/log/kern.log` as it does in `/dev/kmsg`.
//!
//! Prefixes recognised, in this order, each optional:
//! - `<PRI>` (RFC 5424/3164 on the wire) and RFC 5424's version `1 `;
//! - a timestamp, RFC 3164 (`Nov 22 19:20:17`, a space-padded day too) or RFC 3339
//!   (`2026-11-22T19:20:17.123456+00:00`, rsyslog's `RSYSLOG_FileFormat`), then the host;
//! - after a timestamp, the tag: `name[pid]: ` or `name: ` (who logged the line); without
//!   one, only a leading `kernel: `;
//! - the kernel's own stamps: `[ 1234.567890]`, the printk caller `[  T896]`/`[    C1]`
//!   (CONFIG_PRINTK_CALLER), and `dmesg -T`'s `[Mon Jan  1 12:34:56 2022]`.
//!
//! Without a timestamp, a leading `word: ` is left alone: it is part of kernel messages
//! (`cgroup: fork rejected ...`, `nf_conntrack: table full`).

/// Where the message starts in a line, and who logged it (the syslog tag and pid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prefix<'a> {
    pub start: usize,
    pub tag: Option<&'a str>,
    pub pid: Option<i32>,
}

const DAYS: [&[u8; 3]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];

fn digits(b: &[u8], from: usize, n: usize) -> bool {
    b.get(from..from.saturating_add(n))
        .is_some_and(|d| d.len() == n && d.iter().all(u8::is_ascii_digit))
}

fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

/// `hh:mm:ss` at `i`.
fn clock(b: &[u8], i: usize) -> bool {
    digits(b, i, 2)
        && at(b, i.saturating_add(2)) == b':'
        && digits(b, i.saturating_add(3), 2)
        && at(b, i.saturating_add(5)) == b':'
        && digits(b, i.saturating_add(6), 2)
}

/// RFC 3164 `Mmm dd hh:mm:ss` (day space-padded or not) at `i`: the index after it.
fn rfc3164(b: &[u8], i: usize) -> Option<usize> {
    // Compared as 3-byte arrays (integers), not slices through `memcmp`: every candidate
    // line comes through here.
    let month: [u8; 3] = b.get(i..i.saturating_add(3))?.try_into().ok()?;
    if !crate::time::MONTHS.contains(&month) || at(b, i.saturating_add(3)) != b' ' {
        return None;
    }
    let mut j = i.saturating_add(4);
    if at(b, j) == b' ' {
        j = j.saturating_add(1);
    }
    let day_len = if digits(b, j, 2) {
        2
    } else if digits(b, j, 1) {
        1
    } else {
        return None;
    };
    j = j.saturating_add(day_len);
    if at(b, j) != b' ' || !clock(b, j.saturating_add(1)) {
        return None;
    }
    j = j.saturating_add(9);
    // Fractional seconds, as some daemons write.
    if at(b, j) == b'.' {
        j = j.saturating_add(1);
        while at(b, j).is_ascii_digit() {
            j = j.saturating_add(1);
        }
    }
    Some(j)
}

/// RFC 3339 `YYYY-MM-DDThh:mm:ss[.frac][Z|±hh:mm]` at `i`: the index after it.
fn rfc3339(b: &[u8], i: usize) -> Option<usize> {
    let ok = digits(b, i, 4)
        && at(b, i.saturating_add(4)) == b'-'
        && digits(b, i.saturating_add(5), 2)
        && at(b, i.saturating_add(7)) == b'-'
        && digits(b, i.saturating_add(8), 2)
        && matches!(at(b, i.saturating_add(10)), b'T' | b't' | b' ')
        && clock(b, i.saturating_add(11));
    if !ok {
        return None;
    }
    let mut j = i.saturating_add(19);
    if matches!(at(b, j), b'.' | b',') {
        j = j.saturating_add(1);
        while at(b, j).is_ascii_digit() {
            j = j.saturating_add(1);
        }
    }
    match at(b, j) {
        b'Z' | b'z' => j = j.saturating_add(1),
        b'+' | b'-' => {
            let k = j.saturating_add(1);
            if digits(b, k, 2)
                && at(b, k.saturating_add(2)) == b':'
                && digits(b, k.saturating_add(3), 2)
            {
                j = k.saturating_add(5);
            } else if digits(b, k, 4) {
                j = k.saturating_add(4);
            }
        }
        _ => {}
    }
    Some(j)
}

/// `[...]` at `i` holding a kernel stamp: seconds since boot, the printk caller, or
/// `dmesg -T`'s date. The index after it and a following space.
fn kernel_stamp(b: &[u8], i: usize) -> Option<usize> {
    if at(b, i) != b'[' {
        return None;
    }
    let rest = b.get(i.saturating_add(1)..)?;
    let close = rest.iter().take(40).position(|&c| c == b']')?;
    let inner = rest.get(..close)?;
    let trimmed: &[u8] = {
        let s = inner.iter().position(|c| *c != b' ').unwrap_or(inner.len());
        inner.get(s..).unwrap_or(&[])
    };
    let seconds = !trimmed.is_empty()
        && trimmed.iter().all(|c| c.is_ascii_digit() || *c == b'.')
        && trimmed.contains(&b'.');
    let caller = matches!(trimmed.first(), Some(b'T' | b'C'))
        && trimmed.len() > 1
        && trimmed.iter().skip(1).all(u8::is_ascii_digit);
    let human = trimmed.len() >= 20
        && DAYS.iter().any(|d| trimmed.get(..3) == Some(d.as_slice()))
        && at(trimmed, 3) == b' '
        && rfc3164(trimmed, 4)
            .is_some_and(|j| at(trimmed, j) == b' ' && digits(trimmed, j.saturating_add(1), 4));
    if !(seconds || caller || human) {
        return None;
    }
    let mut j = i.saturating_add(close).saturating_add(2);
    if at(b, j) == b' ' {
        j = j.saturating_add(1);
    }
    Some(j)
}

/// `name[pid]: ` or `name: ` at `i`: (index after it, name, pid).
fn tag(line: &str, i: usize) -> Option<(usize, &str, Option<i32>)> {
    let b = line.as_bytes();
    let rest = b.get(i..)?;
    let end = rest
        .iter()
        .take(64)
        .position(|c| matches!(c, b'[' | b':' | b' '))?;
    if end == 0 {
        return None;
    }
    let name = line.get(i..i.saturating_add(end))?;
    let mut j = i.saturating_add(end);
    let mut pid = None;
    if at(b, j) == b'[' {
        let close = b.get(j..)?.iter().take(12).position(|&c| c == b']')?;
        pid = line
            .get(j.saturating_add(1)..j.saturating_add(close))
            .and_then(|p| p.parse().ok());
        pid?;
        j = j.saturating_add(close).saturating_add(1);
    }
    if at(b, j) != b':' {
        return None;
    }
    j = j.saturating_add(1);
    if at(b, j) == b' ' {
        j = j.saturating_add(1);
    }
    Some((j, name, pid))
}

/// The prefix of `line` before its message.
pub fn strip(line: &str) -> Prefix<'_> {
    let b = line.as_bytes();
    let mut i = 0usize;
    // <PRI> and RFC 5424's version.
    if at(b, 0) == b'<'
        && let Some(close) = b.iter().take(5).position(|&c| c == b'>')
        && close > 1
        && b.get(1..close)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    {
        i = close.saturating_add(1);
        if at(b, i) == b'1' && at(b, i.saturating_add(1)) == b' ' {
            i = i.saturating_add(2);
        }
    }
    let mut out = Prefix {
        start: i,
        ..Prefix::default()
    };
    let stamped = rfc3164(b, i).or_else(|| rfc3339(b, i));
    if let Some(j) = stamped
        && at(b, j) == b' '
    {
        // The host: one token.
        let host_start = j.saturating_add(1);
        let host_end = b
            .get(host_start..)
            .and_then(|r| r.iter().position(|&c| c == b' '))
            .map(|k| host_start.saturating_add(k));
        let Some(host_end) = host_end else {
            return out;
        };
        i = host_end.saturating_add(1);
        out.start = i;
        if let Some((j, name, pid)) = tag(line, i) {
            out.start = j;
            out.tag = Some(name);
            out.pid = pid;
            i = j;
        }
    } else if line.get(i..).is_some_and(|r| r.starts_with("kernel: ")) {
        i = i.saturating_add("kernel: ".len());
        out.start = i;
        out.tag = Some("kernel");
    }
    // The kernel's stamps follow the kernel's tag, or start an unprefixed dmesg line.
    if out.tag.is_none_or(|t| t == "kernel") {
        while let Some(j) = kernel_stamp(b, i) {
            i = j;
            out.start = i;
        }
    }
    out
}

/// The message of a line: its prefix stripped, surrounding whitespace trimmed.
pub fn of(line: &str) -> &str {
    line.get(strip(line).start..).unwrap_or(line).trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_and_kernel_prefixes_are_stripped() {
        for (line, msg) in [
            (
                "Nov 22 19:20:17 node-7 kernel: [  291.583675] Memory cgroup out of memory: Killed process 6775 (python3)",
                "Memory cgroup out of memory: Killed process 6775 (python3)",
            ),
            (
                "Nov  2 01:02:03 h kernel: Killed process 1 (x)",
                "Killed process 1 (x)",
            ),
            (
                "2026-11-22T19:20:17.123456+00:00 node-7 kernel: [ 12.5] EXT4-fs error (device sda1): x",
                "EXT4-fs error (device sda1): x",
            ),
            (
                "kernel: Killed process 12 (java)",
                "Killed process 12 (java)",
            ),
            (
                "[   32.298491][  T896] kexec[896]: segfault at 0 ip 0",
                "kexec[896]: segfault at 0 ip 0",
            ),
            (
                "[Mon Jan 1 12:34:56 2022] BUG: something bad happened",
                "BUG: something bad happened",
            ),
            (
                "<14>May 21 23:14:08 api-7c9f kernel: [4621211.812] TCP: out of memory -- consider tuning tcp_mem",
                "TCP: out of memory -- consider tuning tcp_mem",
            ),
            (
                "Nov 22 19:20:17 node-7 systemd[1]: kubelet.service: Failed with result 'exit-code'.",
                "kubelet.service: Failed with result 'exit-code'.",
            ),
            // Unprefixed kernel messages keep their own "subsystem: ".
            (
                "cgroup: fork rejected by pids controller in /a",
                "cgroup: fork rejected by pids controller in /a",
            ),
            (
                "divide error: 0000 [#1] SMP ",
                "divide error: 0000 [#1] SMP",
            ),
        ] {
            assert_eq!(of(line), msg, "{line}");
        }
    }

    #[test]
    fn the_tag_and_pid_name_who_logged_it() {
        let p = strip(
            "Nov 22 19:20:17 node-7 containerd[812]: runtime: failed to create new OS thread",
        );
        assert_eq!((p.tag, p.pid), (Some("containerd"), Some(812)));
        let p = strip("Nov 22 19:20:17 node-7 kernel: [1.0] x");
        assert_eq!((p.tag, p.pid), (Some("kernel"), None));
        // A day that is not a date, a tag without a colon: left alone.
        assert_eq!(strip("Foo 22 19:20:17 h x: y").start, 0);
        assert_eq!(of("Nov 22 19:20:17 host just a message"), "just a message");
        assert_eq!(of("[not a stamp] x"), "[not a stamp] x");
        assert_eq!(of(""), "");
        assert_eq!(of("Nov 22 19:20:17"), "Nov 22 19:20:17");
        // Every month's name is a timestamp's; other lengths, other case, 3 bytes that are
        // not ASCII are not.
        for m in [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ] {
            assert_eq!(of(&format!("{m} 22 19:20:17 h x: y")), "y", "{m}");
        }
        for m in ["Se", "Sept", "sep", "SEP", "Sé", "Sëp"] {
            assert_eq!(strip(&format!("{m} 22 19:20:17 h x: y")).start, 0, "{m}");
        }
    }
}
