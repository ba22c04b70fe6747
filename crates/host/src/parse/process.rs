//! `/proc/PID/{stat,status,limits,cgroup}`.

use node_doctor_core::model::{CgroupMembership, Rlimit};
use std::sync::Arc;

/// The fields of `/proc/PID/stat` the checks use (fs/proc/array.c `do_task_stat`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatFields {
    pub pid: i32,
    pub comm: String,
    pub state: char,
    pub ppid: i32,
    /// utime + stime, clock ticks (fields 14 and 15).
    pub cpu_ticks: u64,
    pub num_threads: u64,
    /// Field 22: start time in clock ticks since boot.
    pub starttime: u64,
}

/// Parses `stat`. `comm` may contain spaces, parentheses and newlines, so it is the text
/// between the first `(` and the *last* `)`; the fields after it are space-separated.
pub fn parse_stat(text: &str) -> Result<StatFields, String> {
    let open = text.find('(').ok_or("no '(' before comm")?;
    let close = text.rfind(')').ok_or("no ')' after comm")?;
    if close < open {
        return Err("')' before '('".into());
    }
    let pid = text
        .get(..open)
        .unwrap_or("")
        .trim()
        .parse()
        .map_err(|_| "pid is not a number")?;
    let comm = text
        .get(open.saturating_add(1)..close)
        .unwrap_or("")
        .to_string();
    let mut f = text
        .get(close.saturating_add(1)..)
        .unwrap_or("")
        .split_ascii_whitespace();
    // After ")": field 3 (state) is the first.
    let mut nth = |skip: usize, what: &str| -> Result<&str, String> {
        f.nth(skip).ok_or_else(|| format!("no {what} field"))
    };
    let state_s = nth(0, "state")?;
    let ppid_s = nth(0, "ppid")?; // field 4
    let utime_s = nth(9, "utime")?; // field 14
    let stime_s = nth(0, "stime")?; // field 15
    let threads_s = nth(4, "num_threads")?; // field 20
    let start_s = nth(1, "starttime")?; // field 22
    let num = |s: &str, what: &str| -> Result<u64, String> {
        s.parse::<u64>()
            .map_err(|_| format!("{what} is not a number: {s:?}"))
    };
    let mut chars = state_s.chars();
    let state = match (chars.next(), chars.next()) {
        (Some(c), None) => c,
        _ => return Err(format!("state is not one letter: {state_s:?}")),
    };
    Ok(StatFields {
        pid,
        comm,
        state,
        ppid: ppid_s
            .parse()
            .map_err(|_| format!("ppid is not a number: {ppid_s:?}"))?,
        cpu_ticks: num(utime_s, "utime")?.saturating_add(num(stime_s, "stime")?),
        num_threads: threads_s
            .parse::<i64>()
            .map_err(|_| format!("num_threads is not a number: {threads_s:?}"))?
            .max(0) as u64,
        starttime: num(start_s, "starttime")?,
    })
}

/// The fields of `/proc/PID/status` the checks use. Parsed by hand rather than into a map
/// of all ~55 lines per process: at 10000 processes that map was a fifth of the scan's CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusFields {
    pub ruid: u32,
    pub euid: u32,
    pub threads: u64,
    pub cap_eff: u64,
    pub sig_pending: u64,
    pub shared_sig_pending: u64,
    /// Last `NSpid` entry (absent before 4.1).
    pub ns_pid: Option<i32>,
    /// `CoreDumping` (4.15+): the kernel is writing the process's core now.
    pub core_dumping: Option<bool>,
    /// `RssAnon` + `RssShmem` in bytes (4.5+; absent for kernel threads and zombies).
    pub mem_anon_bytes: Option<u64>,
}

/// Parses `status`; a file missing one of Uid, Threads, SigPnd, ShdPnd, CapEff (a cut or
/// foreign file) is an error naming the field.
pub fn parse_status(text: &str) -> Result<StatusFields, String> {
    let (mut uids, mut threads, mut cap_eff, mut sig, mut shd, mut ns_pid) =
        (None, None, None, None, None, None);
    let (mut core_dumping, mut rss_anon, mut rss_shmem) = (None, None, None);
    // "RssAnon:\t   40960 kB"
    let kb = |v: &str| -> Option<u64> {
        v.strip_suffix("kB")
            .unwrap_or(v)
            .trim()
            .parse::<u64>()
            .ok()
            .map(|k| k.saturating_mul(1024))
    };
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "Uid" => {
                let mut f = value.split_whitespace().map(|v| v.parse::<u32>().ok());
                uids = Some((f.next().flatten(), f.next().flatten()));
            }
            "Threads" => threads = value.parse::<u64>().ok(),
            "CapEff" => cap_eff = u64::from_str_radix(value, 16).ok(),
            "SigPnd" => sig = u64::from_str_radix(value, 16).ok(),
            "ShdPnd" => shd = u64::from_str_radix(value, 16).ok(),
            "NSpid" => ns_pid = value.split_whitespace().last().and_then(|v| v.parse().ok()),
            "CoreDumping" => core_dumping = Some(value == "1"),
            "RssAnon" => rss_anon = kb(value),
            "RssShmem" => rss_shmem = kb(value),
            _ => {}
        }
    }
    let (ruid, euid) = match uids {
        Some((Some(r), Some(e))) => (r, e),
        _ => return Err("no Uid line".into()),
    };
    Ok(StatusFields {
        ruid,
        euid,
        threads: threads.ok_or("no Threads line")?,
        cap_eff: cap_eff.ok_or("no CapEff line")?,
        sig_pending: sig.ok_or("no SigPnd line")?,
        shared_sig_pending: shd.ok_or("no ShdPnd line")?,
        ns_pid,
        core_dumping,
        mem_anon_bytes: rss_anon.map(|a: u64| a.saturating_add(rss_shmem.unwrap_or(0))),
    })
}

/// `Max open files` and `Max core file size` from `limits` (fixed-width name column, then
/// soft and hard: a number or "unlimited").
pub fn parse_limits(text: &str) -> Result<(Rlimit, Rlimit), String> {
    let find = |name: &str| -> Result<Rlimit, String> {
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .ok_or_else(|| format!("no {name:?} line"))?;
        let mut f = line.split_whitespace().map(|v| match v {
            "unlimited" => Ok(None),
            n => n
                .parse::<u64>()
                .map(Some)
                .map_err(|_| format!("{name}: {n:?}")),
        });
        let soft = f.next().ok_or_else(|| format!("{name}: no soft limit"))??;
        let hard = f.next().ok_or_else(|| format!("{name}: no hard limit"))??;
        Ok(Rlimit { soft, hard })
    };
    Ok((find("Max open files")?, find("Max core file size")?))
}

/// Parses `/proc/PID/cgroup` ("hierarchy:controllers:path" per line; v2 is "0::path").
/// Lines that do not have that shape are skipped: the path may itself contain ':'.
pub fn parse_proc_cgroup(text: &str) -> Arc<[CgroupMembership]> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.splitn(3, ':');
            let hierarchy = f.next()?.parse().ok()?;
            let controllers = f.next()?.to_string();
            let path = f.next()?.to_string();
            Some(CgroupMembership {
                hierarchy,
                controllers,
                path,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat_line(comm: &str) -> String {
        format!(
            "4242 ({comm}) S 1 4242 4242 0 -1 4194560 100 0 0 0 11 22 0 0 20 0 3 0 123456 1000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
        )
    }

    #[test]
    fn comm_with_parentheses_spaces_and_newline() {
        for comm in [
            "(a) b)",
            "a b c",
            "x) S 1 2 (",
            "line\nbreak",
            "runc:[2:INIT]",
            "123456789012345",
        ] {
            let s = parse_stat(&stat_line(comm)).unwrap();
            assert_eq!(s.comm, comm);
            assert_eq!(
                (s.pid, s.ppid, s.num_threads, s.starttime),
                (4242, 1, 3, 123456),
                "{comm}"
            );
            assert_eq!(s.cpu_ticks, 33);
            assert_eq!(s.state, 'S');
        }
    }

    #[test]
    fn garbage_stat_is_an_error_not_a_panic() {
        for bad in [
            "",
            "(",
            ")",
            "(x)",
            "4242 (x",
            "4242 (x) S",
            "\u{0}\u{1}garbage",
            "(a) b) c",
            ") (",
            "1 (x) SS 1",
        ] {
            assert!(parse_stat(bad).is_err(), "{bad:?}");
        }
        // Cut anywhere: never a panic.
        let full = stat_line("a) b");
        for i in 0..full.len() {
            if let Some(cut) = full.get(..i) {
                let _ = parse_stat(cut);
            }
        }
    }

    #[test]
    fn status_fields_and_cut_files() {
        let full = "Name:\tsleep\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t1000\t1001\t1001\t1001\n\
                    NSpid:\t4824\t1\nThreads:\t3\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000100\n\
                    CapEff:\t000001fffeffffff\n";
        let s = parse_status(full).unwrap();
        assert_eq!(
            (s.ruid, s.euid, s.threads, s.ns_pid),
            (1000, 1001, 3, Some(1))
        );
        assert_eq!(s.shared_sig_pending, 1 << 8);
        assert_eq!(s.cap_eff, 0x1fffeffffff);
        assert_eq!(
            (s.core_dumping, s.mem_anon_bytes),
            (None, None),
            "a kernel thread's"
        );
        let cut = &full[..full.find("Threads").unwrap()];
        assert_eq!(parse_status(cut), Err("no Threads line".to_string()));
        // The captured container process's status: RssAnon + RssShmem, CoreDumping 0.
        let captured = include_str!("../../../../tests/fixtures/healthy/root/proc/4824/status");
        let c = parse_status(captured).unwrap();
        assert_eq!(c.core_dumping, Some(false));
        let shmem: u64 = captured
            .lines()
            .find_map(|l| l.strip_prefix("RssShmem:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        assert_eq!(c.mem_anon_bytes, Some((108 + shmem) * 1024));
        let dumping = full.replace("Threads:", "CoreDumping:\t1\nRssAnon:\t  2048 kB\nThreads:");
        let d = parse_status(&dumping).unwrap();
        assert_eq!(
            (d.core_dumping, d.mem_anon_bytes),
            (Some(true), Some(2 << 20))
        );
        assert!(parse_status("garbage").is_err());
    }

    #[test]
    fn limits_fields() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max core file size        0                    unlimited            bytes     \n\
                    Max open files            1024                 524288               files     \n";
        let (nofile, core) = parse_limits(text).unwrap();
        assert_eq!(
            nofile,
            Rlimit {
                soft: Some(1024),
                hard: Some(524288)
            }
        );
        assert_eq!(
            core,
            Rlimit {
                soft: Some(0),
                hard: None
            }
        );
        assert!(parse_limits("not a limits file").is_err());
        assert!(parse_limits("Max open files   lots   1\nMax core file size 0 0\n").is_err());
    }

    #[test]
    fn cgroup_v1_v2_and_hybrid() {
        let v2 = parse_proc_cgroup("0::/kubepods.slice/x.scope\n");
        assert_eq!(v2[0].path, "/kubepods.slice/x.scope");
        let hybrid = parse_proc_cgroup(
            "9:name=systemd:/\n8:pids:/kubepods/pod5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c/abc\n2:cpu,cpuacct:/\n0::/\n",
        );
        assert_eq!(hybrid.len(), 4);
        assert_eq!(hybrid[2].controllers, "cpu,cpuacct");
        let colon = parse_proc_cgroup(
            "0::/system.slice/containerd.service/kubepods-pod1.slice:cri-containerd:abc\n",
        );
        assert_eq!(
            colon[0].path,
            "/system.slice/containerd.service/kubepods-pod1.slice:cri-containerd:abc"
        );
        assert!(parse_proc_cgroup("garbage\n\n:::\n").is_empty());
    }
}
