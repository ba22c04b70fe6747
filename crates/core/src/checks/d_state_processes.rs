//! `d-state-processes`: processes that stay in uninterruptible sleep.
//!
//! TASK_UNINTERRUPTIBLE (state D) is a sleep that signals cannot break: the task waits for
//! I/O or a lock in the kernel and runs again only when that completes. A few milliseconds
//! of D is normal disk I/O; a task still in D one sample later is waiting on something that
//! does not answer — a dead NFS or FUSE server, a hung disk, a frozen cgroup. SIGKILL stays
//! pending (the signal is queued, the task never returns to user mode to die), so the
//! runtime cannot stop its container (incident 4). The kernel's hung-task detector logs
//! "task ... blocked for more than N seconds" after `kernel.hung_task_timeout_secs`.
//!
//! Only `stat`, `status`, `wchan` and `stack` of these processes are in the snapshot: their
//! `cmdline` and `maps` take the mmap lock the stuck task may hold.

use super::common::{MAX_FINDINGS, consecutive, describe, human_duration, span_ms, stack_text};
use super::{CheckDef, History, Needs, Outcome};
use crate::config::CheckSettings;
use crate::finding::{Evidence, Finding, Measure, Severity, Subject, Unit, key};
use crate::model::process::Process;

pub const CHECK: CheckDef = CheckDef {
    id: "d-state-processes",
    title: "processes stuck in uninterruptible sleep (D) across samples",
    doc: include_str!("d_state_processes.md"),
    needs: Needs {
        processes: true,
        history: true,
        ..Needs::NONE
    },
    settings: &[],
    condition: Some(super::ConditionDef {
        type_: "ProcessesStuckInD",
        true_reason: "UninterruptibleSleep",
        false_reason: "NoStuckProcesses",
    }),
    run,
};

const STACK_FRAMES_SHOWN: usize = 8;

/// A process in D in every sample of a run, with how long it has been seen so.
pub struct Stuck<'a> {
    pub process: &'a Process,
    pub samples: usize,
    pub seen_ms: u64,
}

/// Processes in D in the current sample and the one before it at least.
pub fn stuck<'a>(h: &History<'a>) -> Vec<Stuck<'a>> {
    let s = h.current();
    s.process_list()
        .iter()
        .filter(|p| p.in_d_state())
        .filter_map(|p| {
            let (n, first) = consecutive(h, p, Process::in_d_state);
            let from = h.samples().get(first)?;
            (n >= 2).then(|| Stuck {
                process: p,
                samples: n,
                seen_ms: span_ms(from, s),
            })
        })
        .collect()
}

fn run(h: &History, _: &CheckSettings) -> Outcome {
    let s = h.current();
    let processes = match s.processes() {
        Ok(p) => p,
        Err(why) => return Outcome::unknown(why),
    };
    if h.previous().is_none() {
        let d: Vec<String> = processes
            .iter()
            .filter(|p| p.in_d_state())
            .map(|p| format!("{} ({})", p.pid, p.comm))
            .collect();
        return if d.is_empty() {
            Outcome::default()
        } else {
            Outcome::unknown(format!(
                "{} processes in D state in a single sample ({}): a second sample is needed to tell a brief \
                 I/O wait from a stuck process (use --window)",
                d.len(),
                d.join(", ")
            ))
        };
    }
    let hung_after = s
        .sysctl_u64("kernel.hung_task_timeout_secs")
        .ok()
        .filter(|&t| t > 0);
    let mut all = stuck(h);
    all.sort_by(|a, b| {
        b.seen_ms
            .cmp(&a.seen_ms)
            .then(a.process.pid.cmp(&b.process.pid))
    });
    let total = all.len();
    let mut findings: Vec<Finding> = all
        .iter()
        .take(MAX_FINDINGS)
        .map(|st| finding(st, hung_after))
        .collect();
    if total > MAX_FINDINGS {
        let rest: Vec<String> = all
            .iter()
            .skip(MAX_FINDINGS)
            .take(50)
            .map(|st| format!("{} ({})", st.process.pid, st.process.comm))
            .collect();
        let more = total.saturating_sub(MAX_FINDINGS);
        findings.push(Finding {
            check: CHECK.id.into(),
            key: key::more(CHECK.id),
            measures: vec![Measure::count("processes", more)],
            log: None,
            caused_by: Vec::new(),
            explains: Vec::new(),
            severity: Severity::Warning,
            summary: format!("{more} more processes stuck in D state"),
            cause: "Many tasks waiting in the kernel at once usually share one cause: a storage or network \
                    filesystem that stopped answering."
                .into(),
            remedy: "Group them by wchan: `ps -eo pid,stat,wchan:32,comm | awk '$2 ~ /D/' | sort -k3`.".into(),
            evidence: vec![Evidence::new("/proc/*/stat", rest.join(", "))],
            subjects: Vec::new(),
        });
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    Outcome::found(findings)
}

fn finding(st: &Stuck, hung_after: Option<u64>) -> Finding {
    let p = st.process;
    let over_hung = hung_after.is_some_and(|t| st.seen_ms >= t.saturating_mul(1000));
    let killed = p.sigkill_pending().unwrap_or(false);
    let severity = if over_hung || killed {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let wchan = p.wchan.as_deref().unwrap_or("unknown");
    let mut summary = format!(
        "{} in D state for at least {} (wchan {wchan})",
        describe(p),
        human_duration(st.seen_ms)
    );
    if killed {
        summary.push_str(", SIGKILL pending");
    }
    let mut evidence = vec![
        Evidence::new(
            format!("/proc/{}/stat", p.pid),
            format!(
                "state D in {} consecutive samples over {}",
                st.samples,
                human_duration(st.seen_ms)
            ),
        )
        .with_threshold(match hung_after {
            Some(t) => format!("two samples in D; critical at kernel.hung_task_timeout_secs {t}s"),
            None => "two samples in D".into(),
        }),
        Evidence::new(format!("/proc/{}/wchan", p.pid), wchan),
        Evidence::new(
            format!("/proc/{}/status", p.pid),
            match (p.sig_pending, p.shared_sig_pending) {
                (Some(a), Some(b)) => format!(
                    "SigPnd {a:016x} ShdPnd {b:016x}: SIGKILL {}",
                    if killed {
                        "pending (cannot be acted on until the wait ends)"
                    } else {
                        "not pending"
                    }
                ),
                _ => "not readable: whether SIGKILL is pending is unknown".into(),
            },
        ),
    ];
    match &p.kernel_stack {
        Some(frames) => evidence.push(Evidence::new(
            format!("/proc/{}/stack", p.pid),
            stack_text(frames, STACK_FRAMES_SHOWN),
        )),
        None => evidence.push(Evidence::new(
            format!("/proc/{}/stack", p.pid),
            "not readable (needs root, or the task woke up)",
        )),
    }
    let mut subjects = vec![Subject::process(p)];
    if p.owner.container_id.is_some() {
        subjects.push(Subject::container(&p.owner));
    }
    let mut measures = vec![
        Measure::new("stuck", st.seen_ms as f64 / 1000.0, Unit::Seconds)
            .of_opt(hung_after.map(|t| t as f64)),
        Measure::count("samples", st.samples),
    ];
    if let Some(k) = p.sigkill_pending() {
        measures.push(Measure::count("sigkill_pending", u64::from(k)));
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
        cause: format!(
            "The task sleeps uninterruptibly in the kernel at {wchan}, waiting for I/O or a lock that is not \
             coming back (a dead NFS/FUSE server, a hung disk, a frozen cgroup). Signals, SIGKILL included, stay \
             pending until the wait ends, so the process cannot exit and its container cannot be stopped."
        ),
        remedy: format!(
            "Find what it waits on: the stack above (`cat /proc/{pid}/stack`), `ls -l /proc/{pid}/fd` (not \
             cmdline/maps: they can hang too), and the mount behind it in `/proc/{pid}/mountinfo`. Resolve that \
             I/O: bring the NFS server back or `umount -f -l`, abort a FUSE connection with `echo 1 > \
             /sys/fs/fuse/connections/<dev>/abort`, thaw a frozen cgroup (`freezer.state` THAWED / \
             `cgroup.freeze` 0). If the device is gone for good, drain and reboot the node.",
            pid = p.pid
        ),
        evidence,
        subjects,
    }
}

#[cfg(test)]
mod tests {
    use super::super::common::test_support::{process, snapshot};
    use super::*;

    fn run(h: &History) -> Outcome {
        super::run(h, &CheckSettings::default())
    }

    fn stuck_at(at: u64, state: char) -> crate::model::snapshot::Snapshot {
        let mut p = process(700, 1, "reader", state);
        p.wchan = Some("request_wait_answer".into());
        snapshot(at, 100, vec![process(1, 0, "init", 'S'), p])
    }

    #[test]
    fn duration_counts_only_the_consecutive_run() {
        let samples = [
            stuck_at(0, 'D'),
            stuck_at(10_000, 'S'),
            stuck_at(20_000, 'D'),
            stuck_at(50_000, 'D'),
        ];
        let out = run(&History::new(&samples).unwrap());
        assert_eq!(out.findings.len(), 1);
        let f = &out.findings[0];
        assert_eq!(f.severity, Severity::Warning);
        assert!(f.summary.contains("for at least 30.0s"), "{}", f.summary);
        assert!(f.summary.contains("wchan request_wait_answer"));
    }

    #[test]
    fn past_hung_task_timeout_is_critical() {
        let samples = [stuck_at(0, 'D'), stuck_at(130_000, 'D')];
        let out = run(&History::new(&samples).unwrap());
        assert_eq!(out.findings[0].severity, Severity::Critical);
        assert!(out.findings[0].summary.contains("2m10s"));
        let stuck = out.findings[0].measure("stuck").unwrap();
        assert_eq!((stuck.value, stuck.limit), (130.0, Some(120.0)));
        assert_eq!(out.findings[0].key, "d-state-processes/process:700:1700");
    }

    #[test]
    fn a_reused_pid_is_not_the_same_stuck_process() {
        let mut first = stuck_at(0, 'D');
        if let Some(p) = first.processes.as_mut().and_then(|p| p.get_mut(1)) {
            p.start_time_ticks = 1;
        }
        let samples = [first, stuck_at(1000, 'D')];
        assert!(run(&History::new(&samples).unwrap()).findings.is_empty());
    }

    #[test]
    fn many_stuck_processes_are_folded() {
        let many = |at| {
            let ps = (0..30)
                .map(|i| process(100 + i, 1, "nfs-reader", 'D'))
                .collect();
            snapshot(at, 100, ps)
        };
        let samples = [many(0), many(1000)];
        let out = run(&History::new(&samples).unwrap());
        assert_eq!(out.findings.len(), MAX_FINDINGS + 1);
        assert!(
            out.findings
                .iter()
                .any(|f| f.summary.starts_with("10 more processes"))
        );
    }
}
