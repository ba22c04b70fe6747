//! `fd-leak`: a process near its own fd limit, or one whose fd count only grows.
//!
//! `RLIMIT_NOFILE` bounds the fd numbers a process may allocate (`alloc_fd` returns EMFILE
//! past the soft limit); unlike `fs.file-max` it bites one process, usually a daemon that
//! leaks a socket per request. Incident 4's dockerd kept one connection per retried
//! `docker stop` of a container stuck in D state, and grew until the node's handles ran out.

use super::common::{MAX_FINDINGS, describe, runtime_daemon, same_in};
use super::{CheckDef, History, Outcome, pct};
use crate::finding::{Evidence, Finding, Severity, Subject};
use crate::host::processes::Process;

pub const CHECK: CheckDef = CheckDef {
    id: "fd-leak",
    title: "a process near its RLIMIT_NOFILE, or whose open fds keep growing",
    doc: include_str!("../../../../docs/checks/fd-leak.md"),
    run,
};

pub const WARN: f64 = 0.80;
pub const CRIT: f64 = 0.95;
/// Growth that counts as a leak: at least this many fds more than in the first sample, and
/// never fewer from one sample to the next.
pub const GROWTH_MIN: u64 = 32;

/// fd counts of `p` in every sample it appears in, oldest first, with the sample time.
fn fd_series(h: &History, p: &Process) -> Vec<(u64, u64)> {
    h.samples()
        .iter()
        .filter_map(|s| {
            let q = same_in(s, p)?;
            Some((s.collected_at_ms, q.open_fds?))
        })
        .collect()
}

/// (first, last, elapsed ms) when the series never drops and grew by `GROWTH_MIN` or more.
pub fn steady_growth(series: &[(u64, u64)]) -> Option<(u64, u64, u64)> {
    if series.len() < 2 {
        return None;
    }
    let monotonic = series.windows(2).all(|w| w[1].1 >= w[0].1);
    let (t0, first) = series[0];
    let (t1, last) = series[series.len() - 1];
    (monotonic && last >= first + GROWTH_MIN).then_some((first, last, t1.saturating_sub(t0)))
}

fn run(h: &History) -> Outcome {
    let s = h.current();
    let mut findings = Vec::new();
    let mut no_limit = 0;
    for p in &s.processes {
        let Some(fds) = p.open_fds else { continue };
        let soft = p.rlimit_nofile.and_then(|l| l.soft);
        if p.rlimit_nofile.is_none() {
            no_limit += 1;
        }
        let ratio = soft.filter(|&n| n > 0).map(|n| fds as f64 / n as f64);
        let by_limit = ratio.and_then(|r| Severity::from_ratio(r, WARN, CRIT));
        let growth = steady_growth(&fd_series(h, p));
        let by_growth = growth.map(|_| Severity::Warning);
        let Some(severity) = by_limit.max(by_growth) else {
            continue;
        };
        findings.push(finding(h, p, fds, soft, ratio, growth, severity));
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    findings.truncate(MAX_FINDINGS);
    let mut outcome = Outcome::found(findings);
    if no_limit > 0 {
        outcome.unknown.push(format!(
            "{no_limit} processes without a readable /proc/PID/limits: judged by growth only"
        ));
    }
    if s.processes.is_empty() {
        outcome.unknown.push("no processes in the snapshot".into());
    }
    outcome
}

fn finding(
    h: &History,
    p: &Process,
    fds: u64,
    soft: Option<u64>,
    ratio: Option<f64>,
    growth: Option<(u64, u64, u64)>,
    severity: Severity,
) -> Finding {
    let who = describe(p);
    let limit_text = soft.map_or("unlimited".to_string(), |n| n.to_string());
    let mut summary = match ratio {
        Some(r) if r >= WARN => format!(
            "{who} holds {fds} fds of its limit {limit_text} ({})",
            pct(r)
        ),
        _ => format!("{who} holds {fds} fds (limit {limit_text})"),
    };
    if let Some((first, last, ms)) = growth {
        summary.push_str(&format!(
            ", growing: {first} → {last} over {:.1}s",
            ms as f64 / 1000.0
        ));
    }
    let mut evidence = vec![
        Evidence::new(format!("/proc/{}/fd", p.pid), format!("{fds} open fds")).with_threshold(
            format!(
                "warning {} / critical {} of the soft limit",
                pct(WARN),
                pct(CRIT)
            ),
        ),
        Evidence::new(
            format!("/proc/{}/limits", p.pid),
            format!(
                "Max open files soft {limit_text}, hard {}",
                p.rlimit_nofile
                    .and_then(|l| l.hard)
                    .map_or("unlimited".to_string(), |n| n.to_string())
            ),
        ),
    ];
    if growth.is_some() {
        let series: Vec<String> = fd_series(h, p).iter().map(|(_, n)| n.to_string()).collect();
        evidence.push(
            Evidence::new(
                format!("/proc/{}/fd (each sample)", p.pid),
                series.join(" → "),
            )
            .with_threshold(format!("never decreasing and +{GROWTH_MIN} or more")),
        );
    }
    let daemon = runtime_daemon(&p.comm);
    let cause = match daemon {
        Some(d) => format!(
            "{d} is a container runtime/node daemon: a steadily growing fd count there is usually one \
             connection or pipe kept per request that never completes (incident 4: dockerd kept a \
             connection per retried stop of a container stuck in D state). At RLIMIT_NOFILE it gets EMFILE \
             and stops serving the node; before that it eats fs.file-max for everyone."
        ),
        None => {
            "The process allocates fds faster than it closes them. At the soft RLIMIT_NOFILE every \
                 open/socket/pipe/accept fails with EMFILE ('too many open files')."
                .to_string()
        }
    };
    let remedy = format!(
        "See what the fds are: `ls -l /proc/{pid}/fd | awk '{{print $NF}}' | sed 's/:.*//' | sort | uniq -c | sort -rn` \
         and `ss -xp | grep pid={pid}`. Fix the leak{extra}; restart the process to release them now. Raising the \
         limit (`prlimit --pid {pid} --nofile=N:N`, LimitNOFILE= in its unit) only buys time.",
        pid = p.pid,
        extra = if daemon.is_some() {
            " (for a runtime daemon, first resolve the container it keeps retrying: see d-state-processes and \
             stuck-container-stop)"
        } else {
            ""
        }
    );
    Finding {
        check: CHECK.id.into(),
        log: None,
        severity,
        summary,
        cause,
        remedy,
        evidence,
        subjects: vec![Subject::process(p)],
    }
}

#[cfg(test)]
mod tests {
    use super::steady_growth;

    #[test]
    fn growth_must_be_monotonic_and_large() {
        assert_eq!(steady_growth(&[(0, 10), (1000, 50)]), Some((10, 50, 1000)));
        assert_eq!(steady_growth(&[(0, 10), (500, 5), (1000, 50)]), None);
        assert_eq!(steady_growth(&[(0, 10), (1000, 41)]), None);
        assert_eq!(steady_growth(&[(0, 10)]), None);
    }
}
