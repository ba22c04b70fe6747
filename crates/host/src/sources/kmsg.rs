//! `/dev/kmsg`: the kernel's log ring, one record per `read()` (through [`Kernel::open_kmsg`],
//! so fixture trees carry a ring of their own).
//!
//! A record is `PRIO,SEQ,USEC,FLAGS[,...];TEXT\n` followed by dictionary lines that start
//! with a space (` SUBSYSTEM=pci`, ` DEVICE=+pci:0000:00:1f.2`), see
//! Documentation/ABI/testing/dev-kmsg. `read` fails with EPIPE when the reader's position
//! was overwritten (the ring wrapped); the next read resumes at the oldest record, and the
//! sequence gap says how many were lost. USEC is time since boot; wall time is boot time
//! plus USEC.

use crate::kernel::{Kernel, KmsgRead, KmsgReader};
use node_doctor_core::model::log::line_text;
use node_doctor_core::model::{KernelLog, LogRecord};

/// Largest record the kernel hands out (CONSOLE_EXT_LOG_MAX); a smaller buffer gets EINVAL.
const RECORD_BUF: usize = 16 * 1024;
/// Most records one snapshot keeps (the ring holds a few thousand on most nodes).
pub const MAX_RECORDS: usize = 50_000;
/// Most reads in one drain: a ring is finite; this bounds a reader that is not one.
const MAX_READS: usize = 1_000_000;

/// One parsed record.
#[derive(Debug, Clone, PartialEq)]
pub struct KmsgRecord {
    pub facility: u8,
    pub level: u8,
    pub seq: u64,
    pub usec: u64,
    pub record: LogRecord,
}

/// Parses one record as `read()` returned it. `None` for anything that is not one.
pub fn parse_record(bytes: &[u8]) -> Option<KmsgRecord> {
    let semi = bytes.iter().position(|&b| b == b';')?;
    let header = std::str::from_utf8(bytes.get(..semi)?).ok()?;
    let mut f = header.split(',');
    let prio: u32 = f.next()?.parse().ok()?;
    let seq: u64 = f.next()?.parse().ok()?;
    let usec: u64 = f.next()?.parse().ok()?;
    let rest = bytes.get(semi.saturating_add(1)..)?;
    // The message ends at the first newline; dictionary lines follow, each " KEY=VALUE".
    let (msg, dict) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (rest.get(..i)?, rest.get(i.saturating_add(1)..)?),
        None => (rest, &[][..]),
    };
    let (text, cut) = line_text(msg);
    let mut record = LogRecord::text(text);
    record.cut = cut;
    record.seq = Some(seq);
    record.priority = Some((prio & 7) as u8);
    for line in dict.split(|&b| b == b'\n') {
        let Some(line) = line.strip_prefix(b" ") else {
            continue;
        };
        let line = String::from_utf8_lossy(line);
        if let Some((k, v)) = line.split_once('=') {
            record.fields.insert(k.to_string(), v.to_string());
        }
    }
    Some(KmsgRecord {
        facility: u8::try_from((prio >> 3) & 0xff).unwrap_or(u8::MAX),
        level: (prio & 7) as u8,
        seq,
        usec,
        record,
    })
}

/// Reads the records available now, from wherever `reader` stands (a fresh one starts at the
/// oldest record), calling `each` for every one. Returns how many were lost to overwrites.
/// `boot_ms` (wall time of boot) turns USEC into wall time.
pub fn drain(
    reader: &mut dyn KmsgReader,
    boot_ms: Option<u64>,
    next_seq: &mut Option<u64>,
    mut each: impl FnMut(KmsgRecord),
) -> Result<u64, String> {
    let mut buf = vec![0u8; RECORD_BUF];
    let mut lost: u64 = 0;
    for _ in 0..MAX_READS {
        match reader.read(&mut buf) {
            KmsgRead::Empty => return Ok(lost),
            KmsgRead::Record(n) => {
                let Some(mut r) = buf.get(..n).and_then(parse_record) else {
                    continue;
                };
                if let Some(expected) = *next_seq
                    && r.seq > expected
                {
                    lost = lost.saturating_add(r.seq.saturating_sub(expected));
                }
                *next_seq = Some(r.seq.saturating_add(1));
                r.record.time_ms = boot_ms.map(|b| b.saturating_add(r.usec / 1000));
                each(r);
            }
            // The next read resumes at the oldest record; the sequence gap counts the loss.
            KmsgRead::Overwritten => continue,
            KmsgRead::Failed(e) => return Err(e),
        }
    }
    Ok(lost)
}

/// The whole ring as it is now, for a snapshot.
pub fn read_ring(kernel: &dyn Kernel) -> KernelLog {
    let mut log = KernelLog::default();
    let mut reader = match kernel.open_kmsg() {
        Ok(r) => r,
        Err(u) => {
            log.error = Some(u.to_string());
            return log;
        }
    };
    log.via = Some(reader.via().to_string());
    let mut next = None;
    let boot = kernel.boot_wall_ms();
    let result = drain(&mut *reader, boot, &mut next, |r| {
        if log.records.len() < MAX_RECORDS {
            log.records.push(r.record);
        } else {
            log.not_kept = log.not_kept.saturating_add(1);
        }
    });
    match result {
        Ok(lost) => log.lost = lost,
        Err(e) => log.error = Some(e),
    }
    log
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_with_dictionary() {
        let r = parse_record(
            b"3,1234,5678901,-;ata1.00: failed command: READ FPDMA QUEUED\n SUBSYSTEM=scsi\n DEVICE=+scsi:0:0:0:0\n",
        )
        .unwrap();
        assert_eq!((r.facility, r.level, r.seq, r.usec), (0, 3, 1234, 5678901));
        assert_eq!(r.record.text, "ata1.00: failed command: READ FPDMA QUEUED");
        assert_eq!(r.record.fields["SUBSYSTEM"], "scsi");
        assert_eq!(r.record.fields["DEVICE"], "+scsi:0:0:0:0");
    }

    #[test]
    fn userspace_facility_and_extra_header_fields() {
        // Facility 1 (user) as written through /dev/kmsg; newer kernels add ",caller=T123".
        let r = parse_record(b"14,99,100,-,caller=T42;hello\n").unwrap();
        assert_eq!((r.facility, r.level), (1, 6));
        assert_eq!(r.record.text, "hello");
    }

    #[test]
    fn garbage_is_not_a_record() {
        assert!(parse_record(b"").is_none());
        assert!(parse_record(b"no header here").is_none());
        assert!(parse_record(b"a,b,c;x").is_none());
        assert!(parse_record(&[0xff, 0xfe, b';']).is_none());
        let r = parse_record(b"4294967295,18446744073709551615,1;x").unwrap();
        assert_eq!((r.facility, r.level, r.seq), (255, 7, u64::MAX));
    }

    #[test]
    fn invalid_utf8_and_huge_text_are_bounded() {
        let mut rec = b"6,1,1,-;".to_vec();
        rec.extend(std::iter::repeat_n(0xffu8, 100_000));
        let r = parse_record(&rec).unwrap();
        assert!(r.record.cut);
        assert!(r.record.text.chars().all(|c| c == '\u{fffd}'));
    }

    struct Scripted(Vec<KmsgRead>, std::collections::VecDeque<Vec<u8>>);

    impl KmsgReader for Scripted {
        fn read(&mut self, buf: &mut [u8]) -> KmsgRead {
            if let Some(rec) = self.1.pop_front() {
                buf[..rec.len()].copy_from_slice(&rec);
                return KmsgRead::Record(rec.len());
            }
            self.0.pop().unwrap_or(KmsgRead::Empty)
        }
        fn via(&self) -> &'static str {
            "test"
        }
    }

    #[test]
    fn sequence_gaps_count_as_lost_and_wall_time_is_boot_plus_usec() {
        let recs = [
            &b"6,10,1000000,-;first\n"[..],
            b"6,11,2000000,-;second\n",
            b"not a record",
            b"6,15,3000000,-;after four were overwritten\n",
        ];
        let mut r = Scripted(vec![], recs.iter().map(|r| r.to_vec()).collect());
        let mut next = None;
        let mut got = Vec::new();
        let lost = drain(&mut r, Some(1_000_000), &mut next, |r| got.push(r)).unwrap();
        assert_eq!(lost, 3, "12, 13 and 14");
        assert_eq!(next, Some(16));
        assert_eq!(got.len(), 3);
        assert_eq!(got[1].record.time_ms, Some(1_002_000));
        assert_eq!(got[2].record.text, "after four were overwritten");
        let mut failing = Scripted(vec![KmsgRead::Failed("boom".into())], Default::default());
        assert_eq!(
            drain(&mut failing, None, &mut None, |_| {}),
            Err("boom".into())
        );
    }
}
