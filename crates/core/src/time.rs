//! Wall-clock arithmetic without a clock: civil dates, RFC 3339 rendering and log timestamp
//! parsing. The clock itself is read only by the host crate; everything here is a pure
//! function of the milliseconds it is given, total over every input (no panics, no overflow).

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y.saturating_sub(1) } else { y };
    let era = y.div_euclid(400);
    let yoe = y.saturating_sub(era.saturating_mul(400));
    let m = i64::from(m);
    let mp = if m > 2 {
        m.saturating_sub(3)
    } else {
        m.saturating_add(9)
    };
    let doy = (153i64.saturating_mul(mp).saturating_add(2) / 5)
        .saturating_add(i64::from(d))
        .saturating_sub(1);
    let doe = yoe
        .saturating_mul(365)
        .saturating_add(yoe / 4)
        .saturating_sub(yoe / 100)
        .saturating_add(doy);
    era.saturating_mul(146_097)
        .saturating_add(doe)
        .saturating_sub(719_468)
}

/// The civil date of a day count since 1970-01-01: (year, month, day).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z.saturating_sub(era.saturating_mul(146_097)); // [0, 146096]
    let yoe = doe
        .saturating_sub(doe / 1460)
        .saturating_add(doe / 36524)
        .saturating_sub(doe / 146_096)
        / 365; // [0, 399]
    let y = yoe.saturating_add(era.saturating_mul(400));
    let doy = doe.saturating_sub(
        yoe.saturating_mul(365)
            .saturating_add(yoe / 4)
            .saturating_sub(yoe / 100),
    ); // [0, 365]
    let mp = doy.saturating_mul(5).saturating_add(2) / 153; // [0, 11]
    let d = doy
        .saturating_sub(mp.saturating_mul(153).saturating_add(2) / 5)
        .saturating_add(1) as u32; // [1, 31]
    let m = if mp < 10 {
        mp.saturating_add(3)
    } else {
        mp.saturating_sub(9)
    } as u32; // [1, 12]
    (if m <= 2 { y.saturating_add(1) } else { y }, m, d)
}

/// `2026-11-22T14:28:00Z` for any time, however far (a damaged recording's year 292277026
/// still renders; nothing panics).
pub fn rfc3339_seconds(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// "1.0s", "2m05s", "3h12m", "4d03h".
pub fn human_duration(ms: u64) -> String {
    let secs = ms / 1000;
    if secs < 60 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if secs < 3600 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else if secs < 86_400 {
        format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60)
    } else {
        format!("{}d{:02}h", secs / 86_400, (secs % 86_400) / 3600)
    }
}

/// "3m ago", "2h ago" relative to `now_ms`; "in the future" for a time after it.
pub fn ago(now_ms: u64, then_ms: u64) -> String {
    match now_ms.checked_sub(then_ms) {
        Some(d) => format!("{} ago", human_duration(d)),
        None => "in the future".into(),
    }
}

/// The UTC year of a time.
pub fn year_of(ms: u64) -> i64 {
    civil_from_days((ms / 86_400_000) as i64).0
}

/// Syslog's month names (RFC 3164), as bytes: compared as 3-byte arrays, not through `memcmp`.
pub(crate) const MONTHS: [[u8; 3]; 12] = [
    *b"Jan", *b"Feb", *b"Mar", *b"Apr", *b"May", *b"Jun", *b"Jul", *b"Aug", *b"Sep", *b"Oct",
    *b"Nov", *b"Dec",
];

/// A month's number (1-12) by its syslog name. The name's three bytes are compared as one
/// array, not name by name through `memcmp` (every candidate line of a syslog file comes
/// through here: docs/performance.md, tenth session).
fn month_number(name: &str) -> Option<u32> {
    let b: [u8; 3] = name.as_bytes().try_into().ok()?;
    let i = MONTHS.iter().position(|m| *m == b)?;
    u32::try_from(i).ok()?.checked_add(1)
}

/// The UTC time of a wall-clock time without a year (`at` gives it in a year, as if UTC;
/// `wall_to_utc` converts it), in the year the line was most likely written: this year's,
/// unless that is more than a day ahead of `now_ms` (a December line read in January: last
/// year's), or next year's when that is no more than [`SKEW_MS`] ahead — a wall clock east of
/// Greenwich is already in the new year while `now_ms` (UTC) is still in the old one (00:59
/// on January 1st in Tokyo, read at 16:00 UTC on December 31st). Not next year's on any
/// looser terms: a line of last January 1st read on December 31st is a year old, not
/// tomorrow's.
fn in_latest_year(
    now_ms: u64,
    at: impl Fn(i64) -> Option<u64>,
    wall_to_utc: &dyn Fn(u64) -> u64,
) -> Option<u64> {
    let year = year_of(now_ms);
    let utc = |y: i64| at(y).map(wall_to_utc);
    if let Some(t) = utc(year.saturating_add(1))
        && t <= now_ms.saturating_add(SKEW_MS)
    {
        return Some(t);
    }
    match utc(year) {
        Some(t) if t <= now_ms.saturating_add(86_400_000) => Some(t),
        _ => utc(year.saturating_sub(1)),
    }
}

/// How far ahead of the reader's clock a line's time may be and still be taken as written
/// now (the writer's clock a little ahead).
const SKEW_MS: u64 = 10 * 60_000;

/// Parses `Mmm dd hh:mm:ss` at the start of `text`: the node's local time (syslog writes
/// no zone), turned into UTC by `wall_to_utc` (the host's `LocalTime::wall_to_utc`; `|t| t`
/// on a node in UTC) before [`in_latest_year`] picks its year.
pub fn parse_syslog_prefix(
    text: &str,
    now_ms: u64,
    wall_to_utc: &dyn Fn(u64) -> u64,
) -> Option<u64> {
    let mut f = text.split_whitespace();
    let name = f.next()?;
    let month = month_number(name)?;
    let day: u32 = f.next()?.parse().ok()?;
    let mut hms = f.next()?.split(':').map(|v| v.parse::<u64>().ok());
    let (h, mi, se) = (hms.next()??, hms.next()??, hms.next()??);
    if day == 0 || day > 31 || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let at = |y: i64| -> Option<u64> {
        let days = u64::try_from(days_from_civil(y, month, day)).ok()?;
        days.checked_mul(86_400_000)?.checked_add(
            h.checked_mul(3600)?
                .checked_add(mi.checked_mul(60)?)?
                .checked_add(se)?
                .checked_mul(1000)?,
        )
    };
    in_latest_year(now_ms, at, wall_to_utc)
}

/// Parses klog's header `Lmmdd hh:mm:ss.uuuuuu` (`I1122 10:21:33.123456 1234 file.go:1]`)
/// at the start of `text`: the local time without a year or zone, turned into UTC by
/// `wall_to_utc` before [`in_latest_year`] picks its year.
pub fn parse_klog_prefix(text: &str, now_ms: u64, wall_to_utc: &dyn Fn(u64) -> u64) -> Option<u64> {
    let mut f = text.split_whitespace();
    let head = f.next()?;
    let mut chars = head.chars();
    if !matches!(chars.next()?, 'I' | 'W' | 'E' | 'F') {
        return None;
    }
    let md = chars.as_str();
    if md.len() != 4 || !md.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let month: u32 = md.get(..2)?.parse().ok()?;
    let day: u32 = md.get(2..)?.parse().ok()?;
    let clock = f.next()?;
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, "0"));
    let mut hms = hms.split(':').map(|v| v.parse::<u64>().ok());
    let (h, mi, se) = (hms.next()??, hms.next()??, hms.next()??);
    if !(1..=12).contains(&month) || day == 0 || day > 31 || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let ms: u64 = frac
        .get(..3.min(frac.len()))
        .and_then(|m| format!("{m:0<3}").parse().ok())
        .unwrap_or(0);
    let at = |y: i64| -> Option<u64> {
        let days = u64::try_from(days_from_civil(y, month, day)).ok()?;
        days.checked_mul(86_400_000)?.checked_add(
            h.checked_mul(3600)?
                .checked_add(mi.checked_mul(60)?)?
                .checked_add(se)?
                .checked_mul(1000)?
                .checked_add(ms)?,
        )
    };
    in_latest_year(now_ms, at, wall_to_utc)
}

/// The time of a daemon's log line: logrus' `time="<RFC 3339>"` (containerd, dockerd),
/// klog's header (kubelet), or an RFC 3339 or syslog prefix. klog and syslog write the
/// node's wall-clock time without a zone: `wall_to_utc` converts it (the host's local zone,
/// given the fields as if they were UTC); RFC 3339 times carry their offset.
pub fn parse_log_line_time(
    text: &str,
    now_ms: u64,
    wall_to_utc: &dyn Fn(u64) -> u64,
) -> Option<u64> {
    if let Some(i) = text.find("time=\"") {
        return text
            .get(i.checked_add(6)?..)
            .and_then(parse_rfc3339_prefix_quoted);
    }
    parse_klog_prefix(text, now_ms, wall_to_utc)
        .or_else(|| parse_rfc3339_prefix(text))
        .or_else(|| parse_syslog_prefix(text, now_ms, wall_to_utc))
}

fn parse_rfc3339_prefix_quoted(s: &str) -> Option<u64> {
    parse_rfc3339_prefix(s.split('"').next()?)
}

/// Parses an RFC 3339 timestamp at the start of `text` into ms since the epoch
/// (`2026-11-22T19:20:17.123Z`, `...+00:00`, `...+01:00`).
pub fn parse_rfc3339_prefix(text: &str) -> Option<u64> {
    let token = text.split_whitespace().next()?;
    let (date, time) = token.split_once(['T', 't'])?;
    let mut d = date.splitn(3, '-');
    let y: i64 = d.next()?.parse().ok()?;
    let mo: u32 = d.next()?.parse().ok()?;
    let da: u32 = d.next()?.parse().ok()?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || !(0..=9999).contains(&y) {
        return None;
    }
    // Split the zone off: Z, +hh:mm or -hh:mm.
    let (clock, offset_min): (&str, i64) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else {
        let i = time.rfind(['+', '-'])?;
        let (c, z) = time.split_at(i);
        let (zh, zm) = z.get(1..)?.split_once(':')?;
        let (zh, zm): (i64, i64) = (zh.parse().ok()?, zm.parse().ok()?);
        if zh > 23 || zm > 59 {
            return None;
        }
        let minutes = zh.checked_mul(60)?.checked_add(zm)?;
        (
            c,
            if z.starts_with('-') {
                minutes.checked_neg()?
            } else {
                minutes
            },
        )
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut t = hms.splitn(3, ':');
    let h: i64 = t.next()?.parse().ok()?;
    let mi: i64 = t.next()?.parse().ok()?;
    let s: i64 = t.next()?.parse().ok()?;
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let ms_frac: i64 = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().take(3).collect();
        let n: i64 = digits.parse().ok()?;
        n.checked_mul(10i64.checked_pow(3u32.saturating_sub(digits.len() as u32))?)?
    };
    let days = days_from_civil(y, mo, da);
    let secs_of_day = h
        .checked_mul(3600)?
        .checked_add(mi.checked_mul(60)?)?
        .checked_add(s)?
        .checked_sub(offset_min.checked_mul(60)?)?;
    let total = days
        .checked_mul(86_400_000)?
        .checked_add(secs_of_day.checked_mul(1000)?.checked_add(ms_frac)?)?;
    u64::try_from(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node in UTC: wall-clock times are UTC times.
    const UTC: &dyn Fn(u64) -> u64 = &|t| t;

    #[test]
    fn civil_round_trip() {
        for days in [-1_000_000i64, -1, 0, 1, 19_000, 20_424, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{days}");
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
    }

    #[test]
    fn rfc3339_of_any_time() {
        assert_eq!(rfc3339_seconds(1_600_000_000_000), "2020-09-13T12:26:40Z");
        assert_eq!(rfc3339_seconds(0), "1970-01-01T00:00:00Z");
        // Past year 9999: renders, does not panic.
        let far = rfc3339_seconds(u64::MAX);
        assert!(far.starts_with("584556") && far.ends_with('Z'), "{far}");
    }

    #[test]
    fn klog_and_logrus_times() {
        let now = 1_600_000_000_000; // 2020-09-13T12:26:40Z
        assert_eq!(
            parse_klog_prefix("I0913 12:26:40.500000 1234 server.go:1] x", now, UTC),
            Some(now + 500)
        );
        assert_eq!(parse_klog_prefix("X0913 12:26:40", now, UTC), None);
        assert_eq!(
            parse_log_line_time(r#"time="2020-09-13T12:26:40Z" level=info msg=x"#, now, UTC),
            Some(now)
        );
        assert_eq!(parse_log_line_time("no time here", now, UTC), None);
        // New Year east of Greenwich: 00:59 on January 1st in Tokyo (UTC+9) read at 16:00
        // UTC on December 31st is this year's first minute, not last January's.
        let eve = 1_798_732_800_000; // 2026-12-31T16:00:00Z
        let tokyo = |t: u64| t - 9 * 3_600_000;
        assert_eq!(
            parse_log_line_time("I0101 00:59:00.000000 1 x.go:1] y", eve, &tokyo),
            Some(eve - 60_000)
        );
        assert_eq!(
            parse_log_line_time("Jan  1 00:59:00 host kubelet[1]: y", eve, &tokyo),
            Some(eve - 60_000)
        );
        // On December 31st, last January 1st's line is a year old, not tomorrow's.
        let dec31 = 1_798_711_200_000; // 2026-12-31T10:00:00Z
        let jan1 = 1_767_258_000_000; // 2026-01-01T09:00:00Z
        assert_eq!(
            parse_log_line_time("Jan  1 09:00:00 host kernel: Out of memory", dec31, UTC),
            Some(jan1)
        );
        assert_eq!(
            parse_log_line_time("I0101 09:00:00.000000 1 x.go:1] y", dec31, UTC),
            Some(jan1)
        );
        // Converted from the wall clock: klog and syslog, not RFC 3339 (it has its offset).
        let east = |t: u64| t - 3_600_000;
        assert_eq!(
            parse_log_line_time("I0913 12:26:40.500000 1234 server.go:1] x", now, &east),
            Some(now + 500 - 3_600_000)
        );
        assert_eq!(
            parse_log_line_time("Sep 13 12:26:40 host kubelet[1]: x", now, &east),
            Some(now - 3_600_000)
        );
        assert_eq!(
            parse_log_line_time("2020-09-13T12:26:40Z x", now, &east),
            Some(now)
        );
        assert_eq!(
            parse_log_line_time(r#"time="2020-09-13T12:26:40Z" level=info"#, now, &east),
            Some(now)
        );
    }

    #[test]
    fn syslog_prefixes() {
        let now = 1_600_000_000_000; // 2020-09-13T12:26:40Z
        assert_eq!(
            parse_syslog_prefix("Sep 13 12:26:40 node-7 kernel: x", now, UTC),
            Some(now)
        );
        assert_eq!(
            parse_syslog_prefix("Dec 31 23:59:59 h k:", now, UTC),
            Some(days_from_civil(2019, 12, 31) as u64 * 86_400_000 + 86_399_000)
        );
        assert_eq!(parse_syslog_prefix("Foo 13 12:26:40 x", now, UTC), None);
        // Every month by its name; names of other lengths or case are none.
        for (i, name) in [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
        ]
        .iter()
        .enumerate()
        {
            let t = parse_syslog_prefix(&format!("{name} 1 00:00:00 h k:"), now, UTC);
            let day = days_from_civil(2020, i as u32 + 1, 1) as u64 * 86_400_000;
            assert_eq!(t, Some(day), "{name}");
        }
        for (i, name) in ["Oct", "Nov", "Dec"].iter().enumerate() {
            let t = parse_syslog_prefix(&format!("{name} 1 00:00:00 h k:"), now, UTC);
            let day = days_from_civil(2019, i as u32 + 10, 1) as u64 * 86_400_000;
            assert_eq!(t, Some(day), "{name}, over a day ahead: last year");
        }
        for name in ["Se", "Sept", "sep", "SEP", "Sé", "Sëp"] {
            assert_eq!(
                parse_syslog_prefix(&format!("{name} 1 00:00:00 h"), now, UTC),
                None
            );
        }
        assert_eq!(parse_syslog_prefix("Sep 13 25:00:00 x", now, UTC), None);
    }

    #[test]
    fn rfc3339_prefixes() {
        assert_eq!(
            parse_rfc3339_prefix("2020-09-13T12:26:40Z kubelet ..."),
            Some(1_600_000_000_000)
        );
        assert_eq!(
            parse_rfc3339_prefix("2020-09-13T12:26:40.5+00:00 x"),
            Some(1_600_000_000_500)
        );
        assert_eq!(
            parse_rfc3339_prefix("2020-09-13T13:26:40.123+01:00"),
            Some(1_600_000_000_123)
        );
        assert_eq!(parse_rfc3339_prefix("Nov 22 19:20:17 host kernel:"), None);
        assert_eq!(parse_rfc3339_prefix("99999999-99-99T99:99:99Z"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(1_000), "1.0s");
        assert_eq!(human_duration(125_000), "2m05s");
        assert_eq!(human_duration(3 * 3_600_000 + 12 * 60_000), "3h12m");
        assert_eq!(human_duration(u64::MAX).chars().last(), Some('h'));
        assert_eq!(ago(10_000, 4_000), "6.0s ago");
    }
}
