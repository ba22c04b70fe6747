//! The node's local time zone, for the log formats that write wall-clock time without a
//! zone: klog's header (the kubelet's `I1204 13:26:33.123456 ...`, Go's `time.Local`) and
//! classic syslog (`Dec  4 13:26:33 host kernel: ...`, rsyslog's default template, the
//! local time of the node). Read as UTC, such a line on a node set to UTC−5 looks five
//! hours old, and a check that looks at the last minutes of the kubelet's log finds nothing
//! in them.
//!
//! The zone is the host's `/etc/localtime` (under the host root: a DaemonSet sees the
//! node's, not its image's), a TZif file (RFC 8536) parsed by `tz-rs`. No file means UTC,
//! as glibc and Go take it; so does one that is not TZif, as glibc takes it too (the
//! daemons wrote UTC then). A daemon started with its own `TZ` environment variable writes
//! in that zone instead; that is not looked at. A log follower reads the zone once, when
//! it starts; the daemon logs at each read.

use crate::fs::HostFs;

/// A TZif file is a few KiB; bounded so that a huge file there costs nothing.
const MAX_TZIF: usize = 256 << 10;

/// The host's local time zone (UTC when it has none).
#[derive(Debug, Clone, Default)]
pub struct LocalTime {
    /// None: UTC. Shared: a follower hands a copy to each poll.
    zone: Option<std::sync::Arc<tz::TimeZone>>,
}

impl LocalTime {
    /// UTC: wall-clock times are UTC times.
    pub fn utc() -> LocalTime {
        LocalTime::default()
    }

    /// The zone of `etc/localtime` under the host root.
    pub fn load(fs: &dyn HostFs) -> LocalTime {
        let Ok(bytes) = fs.read("etc/localtime", MAX_TZIF) else {
            return LocalTime::utc();
        };
        LocalTime::of_tzif(&bytes)
    }

    /// The zone of a TZif file's contents.
    pub fn of_tzif(bytes: &[u8]) -> LocalTime {
        match tz::TimeZone::from_tz_data(bytes) {
            // UTC itself (Etc/UTC, most nodes): nothing to convert, no lookup per line.
            Ok(z) if is_utc(&z) => LocalTime::utc(),
            Ok(z) => LocalTime {
                zone: Some(std::sync::Arc::new(z)),
            },
            Err(_) => LocalTime::utc(),
        }
    }

    /// The UTC offset, in seconds, in force at `unix_s`. Past the last transition of a
    /// file without a rule for after it (TZif version 1), the last transition's, as glibc
    /// takes it (tz-rs finds none there).
    fn offset_at(&self, unix_s: i64) -> i64 {
        let Some(z) = self.zone.as_ref() else {
            return 0;
        };
        let t = z.find_local_time_type(unix_s).ok().or_else(|| {
            let r = tz::TimeZone::as_ref(z);
            let last = r.transitions().last()?;
            r.local_time_types().get(last.local_time_type_index())
        });
        t.map_or(0, |t| i64::from(t.ut_offset()))
    }

    /// The UTC time of a wall-clock time, given as the milliseconds it would be in UTC. The
    /// offset is the one in force at that time: found from a first guess with the offset at
    /// the wall time itself, then again at the guess. Right but for the hour a clock set back
    /// repeats (ambiguous: one of the two instants, the earlier west of Greenwich) and the
    /// hour it skips (a neighbouring instant).
    pub fn wall_to_utc(&self, wall_ms: u64) -> u64 {
        if self.zone.is_none() {
            return wall_ms;
        }
        let wall_s = i64::try_from(wall_ms / 1000).unwrap_or(i64::MAX);
        let guess = wall_s.saturating_sub(self.offset_at(wall_s));
        let offset_ms = self.offset_at(guess).saturating_mul(1000);
        let utc = i64::try_from(wall_ms)
            .unwrap_or(i64::MAX)
            .saturating_sub(offset_ms);
        u64::try_from(utc).unwrap_or(0)
    }

    /// Whether no zone was found: wall-clock times are taken as UTC.
    pub fn is_utc(&self) -> bool {
        self.zone.is_none()
    }
}

/// Whether a zone is UTC all the time: every local time type at offset 0, and the rule
/// after the last transition (the file's footer, `UTC0`) none or fixed at 0.
fn is_utc(z: &tz::TimeZone) -> bool {
    let r = z.as_ref();
    let after = match r.extra_rule() {
        None => true,
        Some(tz::timezone::TransitionRule::Fixed(t)) => t.ut_offset() == 0,
        Some(_) => false,
    };
    after && r.local_time_types().iter().all(|t| t.ut_offset() == 0)
}

/// Tests: installs the fixture TZif file of `zone` (`tests/fixtures/zoneinfo/`, `/` as `-`)
/// at `rel` under `root`, its directories made.
#[cfg(test)]
pub(crate) fn install_zone(root: &std::path::Path, zone: &str, rel: &str) {
    let to = root.join(rel);
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    let from = format!(
        "{}/../../tests/fixtures/zoneinfo/{}",
        env!("CARGO_MANIFEST_DIR"),
        zone.replace('/', "-")
    );
    std::fs::copy(from, to).unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::RealFs;
    use node_doctor_core::time::days_from_civil;

    fn ms(y: i64, mo: u32, d: u32, h: u64, mi: u64) -> u64 {
        let days = u64::try_from(days_from_civil(y, mo, d)).unwrap();
        ((days * 24 + h) * 60 + mi) * 60_000
    }

    #[test]
    fn wall_clock_times_of_a_zone_with_daylight_saving_are_converted_by_the_offset_then() {
        // The TZif file of America/New_York, as Debian's tzdata installs it.
        let dir = tempfile::tempdir().unwrap();
        install_zone(dir.path(), "America/New_York", "etc/localtime");
        let fs = RealFs::new(dir.path()).unwrap();
        let z = LocalTime::load(&fs);
        assert!(!z.is_utc());
        // EST in December (UTC−5), EDT in July (UTC−4).
        assert_eq!(
            z.wall_to_utc(ms(2026, 12, 4, 13, 26)),
            ms(2026, 12, 4, 18, 26)
        );
        assert_eq!(z.wall_to_utc(ms(2026, 7, 1, 12, 0)), ms(2026, 7, 1, 16, 0));
        // Around the change of 2026-03-08 (02:00 EST becomes 03:00 EDT): before and after.
        assert_eq!(z.wall_to_utc(ms(2026, 3, 8, 1, 30)), ms(2026, 3, 8, 6, 30));
        assert_eq!(z.wall_to_utc(ms(2026, 3, 8, 3, 30)), ms(2026, 3, 8, 7, 30));
        // Past the file's transitions (to 2037): its footer rule, EDT in July 2040.
        assert_eq!(z.wall_to_utc(ms(2040, 7, 1, 12, 0)), ms(2040, 7, 1, 16, 0));
        // Milliseconds are kept.
        assert_eq!(
            z.wall_to_utc(ms(2026, 12, 4, 13, 26) + 123),
            ms(2026, 12, 4, 18, 26) + 123
        );
    }

    #[test]
    fn etc_localtime_as_a_node_has_it_a_link_into_zoneinfo_resolves_under_the_root() {
        let dir = tempfile::tempdir().unwrap();
        install_zone(
            dir.path(),
            "America/New_York",
            "usr/share/zoneinfo/America/New_York",
        );
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::os::unix::fs::symlink(
            "/usr/share/zoneinfo/America/New_York",
            dir.path().join("etc/localtime"),
        )
        .unwrap();
        let z = LocalTime::load(&RealFs::new(dir.path()).unwrap());
        assert_eq!(
            z.wall_to_utc(ms(2026, 12, 4, 13, 26)),
            ms(2026, 12, 4, 18, 26)
        );
    }

    #[test]
    fn a_version_1_file_keeps_its_last_transitions_offset_after_it() {
        // New York's file cut to its version-1 part (the header and data of 32-bit times
        // that open every TZif file), marked version 1: no rule for after its last
        // transition, in November 2037 (to EST).
        let mut f = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/zoneinfo/America-New_York"
        ))
        .unwrap();
        let n =
            |i: usize| u32::from_be_bytes(f[20 + 4 * i..24 + 4 * i].try_into().unwrap()) as usize;
        let (isut, isstd, leap, time, types, chars) = (n(0), n(1), n(2), n(3), n(4), n(5));
        let v1 = 44 + time * 5 + types * 6 + chars + leap * 8 + isstd + isut;
        f.truncate(v1);
        f[4] = 0;
        let z = LocalTime::of_tzif(&f);
        assert!(!z.is_utc());
        assert_eq!(
            z.wall_to_utc(ms(2026, 12, 4, 13, 26)),
            ms(2026, 12, 4, 18, 26)
        );
        // July 2040, past the last transition: EST kept (the footer rule would say EDT).
        assert_eq!(z.wall_to_utc(ms(2040, 7, 1, 12, 0)), ms(2040, 7, 1, 17, 0));
    }

    #[test]
    fn the_utc_zone_file_is_utc() {
        let z = LocalTime::of_tzif(
            &std::fs::read(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../tests/fixtures/zoneinfo/Etc-UTC"
            ))
            .unwrap(),
        );
        assert!(z.is_utc());
    }

    #[test]
    fn no_localtime_is_utc_and_so_is_a_garbage_one() {
        let dir = tempfile::tempdir().unwrap();
        let fs = RealFs::new(dir.path()).unwrap();
        let z = LocalTime::load(&fs);
        assert!(z.is_utc());
        assert_eq!(
            z.wall_to_utc(ms(2026, 12, 4, 13, 26)),
            ms(2026, 12, 4, 13, 26)
        );
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/localtime"), b"not TZif at all").unwrap();
        assert!(LocalTime::load(&fs).is_utc());
        // A FIFO in its place is refused by the host seam, not read: UTC, no hang.
        std::fs::remove_file(dir.path().join("etc/localtime")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.path().join("etc/localtime"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        assert!(LocalTime::load(&fs).is_utc());
    }
}
