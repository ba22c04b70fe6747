//! `fd-leak`: a process near its own fd limit, or one whose fd count only grows.
//!
//! `RLIMIT_NOFILE` bounds the fd numbers a process may allocate (`alloc_fd` returns EMFILE
//! past the soft limit); unlike `fs.file-max` it bites one process, usually a daemon that
//! leaks a socket per request. Incident 4's dockerd kept one connection per retried
//! `docker stop` of a container stuck in D state, and grew until the node's handles ran out.

use super::common::{MAX_FINDINGS, describe, ratio as frac, runtime_daemon, same_in};
use super::{CheckDef, History, Needs, Outcome, pct};
use crate::config::{CheckSettings, SettingDef};
use crate::finding::{Evidence, Finding, Measure, Severity, Subject, key};
use crate::model::process::Process;

pub const CHECK: CheckDef = CheckDef {
    id: "fd-leak",
    title: "a process near its RLIMIT_NOFILE, or whose open fds keep growing",
    doc: include_str!("fd_leak.md"),
    needs: Needs {
        fds: true,
        history: true,
        ..Needs::NONE
    },
    settings: &[WARN, CRIT, GROWTH_MIN, GROWTH_WINDOW],
    condition: Some(super::ConditionDef {
        type_: "FileDescriptorLeak",
        true_reason: "ProcessNearFdLimit",
        false_reason: "FdCountsWithinLimits",
    }),
    run,
};

pub const WARN: SettingDef = SettingDef::ratio(
    "warn",
    0.80,
    "warning at this share of the process's soft RLIMIT_NOFILE",
);
pub const CRIT: SettingDef = SettingDef::ratio(
    "crit",
    0.95,
    "critical at this share of the soft RLIMIT_NOFILE",
);
/// Growth that counts as a leak: at least this many fds more than in the first sample, and
/// never fewer from one sample to the next.
pub const GROWTH_MIN: SettingDef = SettingDef::count(
    "growth_min",
    32,
    "growth that counts as a leak: this many more fds than in the first sample, never dropping",
);

/// The shortest span of samples a growth claim may rest on. A healthy server's fd count
/// saw-tooths (connections come and go): two samples a second apart catch an upswing
/// about as often as not, so "growing" must be a trend over minutes (the agent's history);
/// a one-shot `check` reports growth only with `--window` at least this long.
pub const GROWTH_WINDOW: SettingDef = SettingDef::duration(
    "growth_window",
    120_000,
    "growth counts only over samples spanning at least this long (a trend, not an upswing)",
);

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

/// (first, last, elapsed ms) when the series spans `window_ms` or more, grew by `min` or
/// more, and either never dropped or has a rising floor: the lowest count of each third of
/// the series above the one before. A leak raises the low-water mark even when the process
/// also opens and closes fds around it; a saw-tooth keeps coming back down to it.
pub fn steady_growth(series: &[(u64, u64)], min: u64, window_ms: u64) -> Option<(u64, u64, u64)> {
    let (&(t0, first), &(t1, last)) = (series.first()?, series.last()?);
    let span = t1.saturating_sub(t0);
    if series.len() < 2 || span < window_ms {
        return None;
    }
    let grew = first.checked_add(min).is_some_and(|t| last >= t);
    let monotonic = series.windows(2).all(|w| matches!(w, [a, b] if b.1 >= a.1));
    (grew && (monotonic || rising_floor(series))).then_some((first, last, span))
}

/// The minimum of each third of the series (by sample count) strictly increases.
fn rising_floor(series: &[(u64, u64)]) -> bool {
    let third = series.len() / 3;
    if third == 0 {
        return false;
    }
    let floors: Vec<u64> = series
        .chunks(third)
        .take(3)
        .filter_map(|c| c.iter().map(|&(_, n)| n).min())
        .collect();
    floors.len() == 3 && floors.windows(2).all(|w| matches!(w, [a, b] if b > a))
}

fn run(h: &History, cfg: &CheckSettings) -> Outcome {
    let s = h.current();
    let processes = match s.processes() {
        Ok(p) => p,
        Err(why) => return Outcome::unknown(why),
    };
    if !processes.iter().any(|p| p.open_fds.is_some()) {
        return Outcome::unknown("no process's fd/ could be listed");
    }
    let (warn, crit, min) = (cfg.ratio(&WARN), cfg.ratio(&CRIT), cfg.count(&GROWTH_MIN));
    let window = cfg.duration_ms(&GROWTH_WINDOW);
    let mut findings = Vec::new();
    let mut no_limit: u64 = 0;
    for p in processes {
        let Some(fds) = p.open_fds else { continue };
        let soft = p.rlimit_nofile.and_then(|l| l.soft);
        if p.rlimit_nofile.is_none() {
            no_limit = no_limit.saturating_add(1);
        }
        let ratio = soft.filter(|&n| n > 0).map(|n| frac(fds, n));
        let by_limit = ratio.and_then(|r| Severity::from_ratio(r, warn, crit));
        let growth = steady_growth(&fd_series(h, p), min, window);
        let by_growth = growth.map(|_| Severity::Warning);
        let Some(severity) = by_limit.max(by_growth) else {
            continue;
        };
        findings.push(finding(
            h,
            p,
            fds,
            soft,
            growth,
            severity,
            (warn, crit, min),
        ));
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    findings.truncate(MAX_FINDINGS);
    let mut outcome = Outcome::found(findings);
    if no_limit > 0 {
        outcome.unknown.push(format!(
            "{no_limit} processes without a readable /proc/PID/limits: judged by growth only"
        ));
    }
    outcome
}

fn finding(
    h: &History,
    p: &Process,
    fds: u64,
    soft: Option<u64>,
    growth: Option<(u64, u64, u64)>,
    severity: Severity,
    (warn, crit, min): (f64, f64, u64),
) -> Finding {
    let ratio = soft.filter(|&n| n > 0).map(|n| frac(fds, n));
    let who = describe(p);
    let limit_text = soft.map_or("unlimited".to_string(), |n| n.to_string());
    let mut summary = match ratio {
        Some(r) if r >= warn => format!(
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
                pct(warn),
                pct(crit)
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
            .with_threshold(format!(
                "+{min} or more, never decreasing or with a rising floor"
            )),
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
    let mut measures = vec![Measure::count("fds", fds).of_opt(soft)];
    if let Some((first, _, ms)) = growth {
        measures.push(Measure::count("fds_first", first));
        measures.push(Measure::new(
            "growth_window",
            ms as f64 / 1000.0,
            crate::finding::Unit::Seconds,
        ));
    }
    Finding {
        check: CHECK.id.into(),
        key: key::process(CHECK.id, p),
        measures,
        log: None,
        caused_by: Vec::new(),
        explains: Vec::new(),
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
    fn growth_must_be_large_and_never_dropping_or_with_a_rising_floor() {
        assert_eq!(
            steady_growth(&[(0, 10), (1000, 50)], 32, 0),
            Some((10, 50, 1000))
        );
        assert_eq!(steady_growth(&[(0, 10), (500, 5), (1000, 50)], 32, 0), None);
        assert_eq!(steady_growth(&[(0, 10), (1000, 41)], 32, 0), None);
        assert_eq!(steady_growth(&[(0, 10)], 32, 0), None);
        assert_eq!(
            steady_growth(&[(0, u64::MAX - 1), (1, u64::MAX)], 32, 0),
            None
        );
        // A leak under churn: it drops now and then, but its floor keeps rising.
        let churn = [10, 40, 20, 50, 30, 60, 45, 80, 55];
        let series: Vec<(u64, u64)> = churn
            .iter()
            .zip(0u64..)
            .map(|(&n, t)| (t * 60_000, n))
            .collect();
        assert_eq!(steady_growth(&series, 32, 120_000), Some((10, 55, 480_000)));
    }

    #[test]
    fn a_saw_tooth_is_not_growth_however_its_samples_fall() {
        // Issue 11: a healthy server whose fd count swings by 300 looked "growing" in 3 of 8
        // one-shot runs (two samples on an upswing). Over minutes its floor stays put.
        let tooth = |t: u64| 100 + (t % 5) * 75;
        let series: Vec<(u64, u64)> = (0..30).map(|t| (t * 10_000, tooth(t))).collect();
        assert_eq!(steady_growth(&series, 32, 120_000), None);
        // Any two samples one second apart on an upswing: shorter than the window.
        assert_eq!(steady_growth(&[(0, 100), (1000, 400)], 32, 120_000), None);
    }

    #[test]
    fn growth_needs_the_window() {
        let s = [(0, 10), (60_000, 30), (119_999, 50)];
        assert_eq!(steady_growth(&s, 32, 120_000), None);
        let s = [(0, 10), (60_000, 30), (120_000, 50)];
        assert_eq!(steady_growth(&s, 32, 120_000), Some((10, 50, 120_000)));
    }
}
