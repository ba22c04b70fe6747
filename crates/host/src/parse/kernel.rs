//! Kernel-wide files: meminfo, loadavg, PSI, uptime, vmstat, /proc/cgroups, mountinfo.

use node_doctor_core::model::{
    Controller, LoadAverage, Meminfo, Mount, PressurePair, PressureRecord,
};
use std::collections::BTreeMap;

/// `/proc/meminfo` ("MemTotal:  25276510208 kB" per line), values in bytes.
pub fn parse_meminfo(text: &str) -> Result<Meminfo, String> {
    // The kernel ends every line; a last line without its newline is a cut file whose last
    // number may be cut too.
    if !text.ends_with('\n') {
        return Err("cut: the last line has no newline".into());
    }
    let mut m = Meminfo::default();
    let mut seen = 0usize;
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let Some(n) = f.next().and_then(|v| v.parse::<u64>().ok()) else {
            continue;
        };
        let bytes = match f.next() {
            Some("kB") => n.saturating_mul(1024),
            _ => n,
        };
        let slot = match key {
            "MemTotal" => &mut m.mem_total,
            "MemFree" => &mut m.mem_free,
            "MemAvailable" => &mut m.mem_available,
            "Buffers" => &mut m.buffers,
            "Cached" => &mut m.cached,
            "SwapCached" => &mut m.swap_cached,
            "Active" => &mut m.active,
            "Inactive" => &mut m.inactive,
            "Active(anon)" => &mut m.active_anon,
            "Inactive(anon)" => &mut m.inactive_anon,
            "Active(file)" => &mut m.active_file,
            "Inactive(file)" => &mut m.inactive_file,
            "Unevictable" => &mut m.unevictable,
            "Mlocked" => &mut m.mlocked,
            "SwapTotal" => &mut m.swap_total,
            "SwapFree" => &mut m.swap_free,
            "Dirty" => &mut m.dirty,
            "Writeback" => &mut m.writeback,
            "AnonPages" => &mut m.anon_pages,
            "Mapped" => &mut m.mapped,
            "Shmem" => &mut m.shmem,
            "Slab" => &mut m.slab,
            "SReclaimable" => &mut m.s_reclaimable,
            "SUnreclaim" => &mut m.s_unreclaim,
            "KernelStack" => &mut m.kernel_stack,
            "PageTables" => &mut m.page_tables,
            "CommitLimit" => &mut m.commit_limit,
            "Committed_AS" => &mut m.committed_as,
            "Percpu" => &mut m.percpu,
            _ => continue,
        };
        *slot = Some(bytes);
        seen = seen.saturating_add(1);
    }
    if m.mem_total.is_none() {
        return Err("no MemTotal line".into());
    }
    Ok(m)
}

/// `/proc/loadavg`: "0.00 0.01 0.05 1/912 6021".
pub fn parse_loadavg(text: &str) -> Result<LoadAverage, String> {
    let mut f = text.split_whitespace();
    let mut load = |what: &str| -> Result<f32, String> {
        f.next()
            .and_then(|v| v.parse::<f32>().ok())
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("no {what} load average"))
    };
    let (one, five, fifteen) = (load("1-minute")?, load("5-minute")?, load("15-minute")?);
    let (cur, max) = f
        .next()
        .and_then(|t| t.split_once('/'))
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        .ok_or("no running/total tasks field")?;
    let latest_pid = f
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or("no last pid field")?;
    Ok(LoadAverage {
        one,
        five,
        fifteen,
        cur,
        max,
        latest_pid,
    })
}

/// `/proc/pressure/<res>`: "some avg10=0.00 avg60=0.00 avg300=0.00 total=0" and a `full`
/// line (absent for cpu before 5.13).
pub fn parse_pressure(text: &str) -> Result<PressurePair, String> {
    let record = |line: &str| -> Result<PressureRecord, String> {
        let mut r = PressureRecord::default();
        let mut found = 0u8;
        for kv in line.split_whitespace().skip(1) {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let bad = || format!("{k}: not a number: {v:?}");
            match k {
                "avg10" => r.avg10 = v.parse().map_err(|_| bad())?,
                "avg60" => r.avg60 = v.parse().map_err(|_| bad())?,
                "avg300" => r.avg300 = v.parse().map_err(|_| bad())?,
                "total" => r.total = v.parse().map_err(|_| bad())?,
                _ => continue,
            }
            found = found.saturating_add(1);
        }
        if found < 4 {
            return Err(format!("incomplete line {line:?}"));
        }
        Ok(r)
    };
    let mut some = None;
    let mut full = None;
    for line in text.lines() {
        if line.starts_with("some ") {
            some = Some(record(line)?);
        } else if line.starts_with("full ") {
            full = Some(record(line)?);
        }
    }
    Ok(PressurePair {
        some: some.ok_or("no 'some' line")?,
        full,
    })
}

/// `/proc/uptime`: "7264.91 14000.00" → seconds since boot.
pub fn parse_uptime(text: &str) -> Result<f64, String> {
    text.split_whitespace()
        .next()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| "no uptime".into())
}

/// `/proc/vmstat` as name → counter. Lines that are not "name number" are skipped.
pub fn parse_vmstat(text: &str) -> BTreeMap<String, i64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// `/proc/cgroups`: "#subsys_name hierarchy num_cgroups enabled".
pub fn parse_proc_cgroups(text: &str) -> Result<Vec<Controller>, String> {
    let out: Vec<Controller> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some(Controller {
                name: f.next()?.to_string(),
                hierarchy: f.next()?.parse().ok()?,
                num_cgroups: f.next()?.parse().ok()?,
                enabled: f.next()? == "1",
            })
        })
        .collect();
    if out.is_empty() && !text.trim().is_empty() && text.lines().any(|l| !l.starts_with('#')) {
        return Err("no controller line".into());
    }
    Ok(out)
}

/// Undoes mountinfo's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134`).
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0usize;
    while let Some(&c) = b.get(i) {
        if c == b'\\'
            && let Some(oct) = b.get(i.saturating_add(1)..i.saturating_add(4))
            && oct.iter().all(|d| (b'0'..=b'7').contains(d))
            && let Ok(v) = u8::from_str_radix(std::str::from_utf8(oct).unwrap_or("x"), 8)
        {
            out.push(v);
            i = i.saturating_add(4);
            continue;
        }
        out.push(c);
        i = i.saturating_add(1);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line of `/proc/PID/mountinfo` (Documentation/filesystems/proc.rst, 3.5):
/// `36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue`.
pub fn parse_mountinfo_line(line: &str) -> Result<Mount, String> {
    let (left, right) = line.split_once(" - ").ok_or("no ' - ' separator")?;
    let mut l = left.split(' ');
    let mount_id = l.next().and_then(|v| v.parse().ok()).ok_or("no mount id")?;
    let parent_id = l
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or("no parent id")?;
    let device = l
        .next()
        .filter(|d| d.contains(':'))
        .ok_or("no major:minor")?
        .to_string();
    let root = unescape(l.next().ok_or("no root")?);
    let mount_point = unescape(l.next().ok_or("no mount point")?);
    let mut r = right.split(' ');
    let fs_type = r
        .next()
        .filter(|t| !t.is_empty())
        .ok_or("no filesystem type")?
        .to_string();
    let source = r
        .next()
        .map(unescape)
        .filter(|s| s != "none" && !s.is_empty());
    let mut opts: Vec<&str> = r
        .next()
        .unwrap_or("")
        .split(',')
        .filter(|o| !o.is_empty())
        .collect();
    opts.sort_unstable();
    Ok(Mount {
        mount_id,
        parent_id,
        device,
        root,
        mount_point,
        fs_type,
        source,
        super_options: opts.join(","),
    })
}

/// A whole mountinfo; `cut` says the file was truncated at the read cap, so a last partial
/// line is dropped rather than reported as malformed. Returns the mounts and the lines that
/// did not parse (at most a few kept).
pub fn parse_mountinfo(text: &str, cut: bool) -> (Vec<Mount>, Vec<String>) {
    let mut lines: Vec<&str> = text.lines().collect();
    if cut && !text.ends_with('\n') {
        lines.pop();
    }
    let mut mounts = Vec::with_capacity(lines.len());
    let mut bad = Vec::new();
    for line in lines {
        match parse_mountinfo_line(line) {
            Ok(m) => mounts.push(m),
            Err(e) if bad.len() < 5 => bad.push(format!(
                "{e}: {:?}",
                line.chars().take(120).collect::<String>()
            )),
            Err(_) => {}
        }
    }
    (mounts, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_in_bytes() {
        let m = parse_meminfo("MemTotal:       1000 kB\nMemAvailable:    500 kB\nActive(file):  3 kB\nHugePages_Total:  0\n").unwrap();
        assert!(
            parse_meminfo("MemTotal:       1000 kB\nMemAvailable:    5").is_err(),
            "cut"
        );
        assert_eq!(m.mem_total, Some(1_024_000));
        assert_eq!(m.mem_available, Some(512_000));
        assert_eq!(m.active_file, Some(3072));
        assert!(parse_meminfo("MemTota").is_err());
    }

    #[test]
    fn loadavg_and_garbage() {
        let l = parse_loadavg("31.20 30.85 27.11 1/912 6021\n").unwrap();
        assert_eq!((l.cur, l.max, l.latest_pid), (1, 912, 6021));
        for bad in [
            "",
            "garbage",
            "1 2 3",
            "1 2 3 4",
            "1 2 3 a/b 5",
            "nan 1 1 1/2 3",
        ] {
            assert!(parse_loadavg(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pressure_lines() {
        let p = parse_pressure("some avg10=1.50 avg60=0.20 avg300=0.00 total=12345\nfull avg10=0.50 avg60=0.10 avg300=0.00 total=678\n").unwrap();
        assert_eq!(p.some.total, 12345);
        assert_eq!(p.full.map(|f| f.total), Some(678));
        assert!(parse_pressure("some avg10=x").is_err());
        assert!(parse_pressure("").is_err());
    }

    #[test]
    fn mountinfo_lines_escapes_and_a_cut_file() {
        let m = parse_mountinfo_line("36 35 98:0 /mnt1 /mnt/par\\040ent rw,noatime master:1 - ext3 /dev/root rw,errors=continue").unwrap();
        assert_eq!(m.mount_point, "/mnt/par ent");
        assert_eq!(
            (m.fs_type.as_str(), m.source.as_deref()),
            ("ext3", Some("/dev/root"))
        );
        assert_eq!(m.super_options, "errors=continue,rw");
        let text =
            "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n2 1 0:5 / /proc rw - proc proc rw\n3 1 0:6 / /s";
        let (ms, bad) = parse_mountinfo(text, true);
        assert_eq!((ms.len(), bad.len()), (2, 0));
        let (ms, bad) = parse_mountinfo(text, false);
        assert_eq!((ms.len(), bad.len()), (2, 1));
        assert!(parse_mountinfo_line("garbage").is_err());
    }

    #[test]
    fn proc_cgroups() {
        let c = parse_proc_cgroups(
            "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t3\t1\t1\nmemory\t0\t120\t1\n",
        )
        .unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(
            (c[1].name.as_str(), c[1].hierarchy, c[1].num_cgroups),
            ("memory", 0, 120)
        );
    }
}
