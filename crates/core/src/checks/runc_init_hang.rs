//! `runc-init-hang`: a `runc init` that lives far longer than container start-up takes.
//!
//! `runc create` starts `runc init` (renamed by nsexec to `runc:[0:PARENT]`,
//! `runc:[1:CHILD]`, `runc:[2:INIT]`) and feeds it its bootstrap data and config through
//! pipes; init then waits for `runc start` and execs the container's process. A healthy one
//! is gone within a second or two. One blocked writing into a pipe the kernel shrank to
//! 2 pages (pipe-quota) never returns: incident 1, where the shim, containerd and kubelet's
//! PLEG stalled behind it and the node went NotReady.

use super::common::{MAX_FINDINGS, describe, human_duration};
use super::pipe_quota::{DEFAULT_PIPE_PAGES, page_size};
use super::{CheckDef, History, Needs, Outcome};
use crate::attribution::short_id;
use crate::config::{CheckSettings, SettingDef};
use crate::finding::{Evidence, Finding, Measure, Severity, Subject, Unit, key};
use crate::model::pipes::Pipe;
use crate::model::process::Process;
use crate::model::snapshot::Snapshot;

pub const CHECK: CheckDef = CheckDef {
    id: "runc-init-hang",
    title: "runc init alive long after container start-up, blocked on a (shrunk) pipe",
    doc: include_str!("runc_init_hang.md"),
    needs: Needs {
        pipes: true,
        packages: true,
        ..Needs::NONE
    },
    settings: &[THRESHOLD],
    condition: Some(super::ConditionDef {
        type_: "RuncInitHung",
        true_reason: "RuncInitBlocked",
        false_reason: "NoRuncInitHung",
    }),
    run,
};

/// Age past which a runc init is reported (`--runc-init-threshold` is an alias).
pub const THRESHOLD: SettingDef = SettingDef::duration(
    "threshold",
    30_000,
    "report a runc init alive this long or longer",
);

/// `runc:[2:INIT]` and its siblings, or `runc init` seen by its command line.
pub fn is_runc_init(p: &Process) -> bool {
    (p.comm.starts_with("runc:[") && p.comm.ends_with(']'))
        || (p.comm == "runc"
            && p.cmdline
                .as_ref()
                .is_some_and(|a| a.get(1).is_some_and(|x| x == "init")))
}

/// Seconds since the process started, from the snapshot's uptime and clock ticks.
pub fn age_secs(s: &Snapshot, p: &Process) -> Option<u64> {
    let uptime = s.host.uptime_secs?;
    let hz = s.clock_ticks_per_sec;
    if hz == 0 {
        return None;
    }
    Some((uptime as u64).saturating_sub(p.start_time_ticks.checked_div(hz)?))
}

/// Pipes `p` holds, with the fds it holds each on.
fn pipes_of<'a>(s: &'a Snapshot, p: &Process) -> Vec<(&'a Pipe, Vec<i32>)> {
    s.pipes
        .iter()
        .flat_map(|scan| &scan.pipes)
        .filter_map(|pipe| {
            let fds: Vec<i32> = pipe
                .holders
                .iter()
                .filter(|e| e.pid == p.pid)
                .map(|e| e.fd)
                .collect();
            (!fds.is_empty()).then_some((pipe, fds))
        })
        .collect()
}

fn run(h: &History, cfg: &CheckSettings) -> Outcome {
    let s = h.current();
    let processes = match s.processes() {
        Ok(p) => p,
        Err(why) => return Outcome::unknown(why),
    };
    let mut outcome = Outcome::default();
    if s.host.uptime_secs.is_none() {
        return Outcome::unknown(format!(
            "process ages unknown: {}",
            s.why_missing("proc/uptime")
        ));
    }
    if s.clock_ticks_per_sec == 0 {
        return Outcome::unknown(
            "process ages unknown: the host's clock tick rate is not recorded",
        );
    }
    let threshold = cfg.duration_ms(&THRESHOLD) / 1000;
    for p in processes.iter().filter(|p| is_runc_init(p)) {
        let Some(age) = age_secs(s, p) else { continue };
        if age < threshold {
            continue;
        }
        outcome.findings.push(finding(s, p, age, threshold));
        if outcome.findings.len() >= MAX_FINDINGS {
            break;
        }
    }
    if s.pipes.is_none() && !outcome.findings.is_empty() {
        outcome.unknown.push(
            "pipes were not scanned: cannot tell whether it is blocked on a shrunk pipe".into(),
        );
    }
    outcome
}

fn writing_to_pipe(p: &Process) -> bool {
    p.wchan
        .as_deref()
        .is_some_and(|w| w.contains("pipe_write") || w == "pipe_wait" || w == "wait_for_partner")
}

fn finding(s: &Snapshot, p: &Process, age: u64, threshold: u64) -> Finding {
    let page = page_size(s);
    let pipes = pipes_of(s, p);
    let shrunk: Vec<_> = pipes
        .iter()
        .filter(|(pipe, _)| {
            pipe.size_bytes
                .is_some_and(|b| b < DEFAULT_PIPE_PAGES.saturating_mul(page))
        })
        .collect();
    let blocked_writing = writing_to_pipe(p);
    let severity = if blocked_writing && !shrunk.is_empty() {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let wchan = p.wchan.as_deref().unwrap_or("unknown");
    let mut summary = format!(
        "{} alive for {} (state {}, wchan {wchan})",
        describe(p),
        human_duration(age.saturating_mul(1000)),
        p.state
    );
    if let Some((pipe, fds)) = shrunk.first() {
        summary.push_str(&format!(
            ", holds a shrunk {}-byte pipe on fd {}",
            pipe.size_bytes.unwrap_or(0),
            fds.iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ));
        if blocked_writing {
            summary.push_str(" and is blocked writing");
        }
    }

    let mut evidence = vec![
        Evidence::new(
            format!("/proc/{}/stat", p.pid),
            format!(
                "comm {:?}, state {}, started {} ago",
                p.comm,
                p.state,
                human_duration(age.saturating_mul(1000))
            ),
        )
        .with_threshold(format!(
            "runc init normally exits within seconds; reported after {threshold}s"
        )),
        Evidence::new(format!("/proc/{}/wchan", p.pid), wchan),
    ];
    for (pipe, fds) in &pipes {
        let size = pipe
            .size_bytes
            .map_or("size unknown".to_string(), |b| format!("{b} bytes"));
        let buffered = pipe
            .buffered_bytes
            .map_or(String::new(), |b| format!(", {b} buffered"));
        evidence.push(
            Evidence::new(
                format!(
                    "/proc/{}/fd/{}",
                    p.pid,
                    fds.iter()
                        .map(|f| f.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                format!("pipe:[{}] {size}{buffered}", pipe.inode),
            )
            .with_threshold(format!(
                "default {} bytes",
                DEFAULT_PIPE_PAGES.saturating_mul(page)
            )),
        );
    }
    if let Some(parent) = s.process(p.ppid) {
        evidence.push(Evidence::new(
            format!("/proc/{}/stat", parent.pid),
            format!("parent {}", describe(parent)),
        ));
    }
    let version = runc_version(s, p);
    evidence.push(Evidence::new("runc version", version.clone()));

    let mut subjects = vec![Subject::process(p)];
    if let Some(parent) = s.process(p.ppid) {
        subjects.push(Subject::process(parent));
    }
    if p.owner.container_id.is_some() {
        subjects.push(Subject::container(&p.owner));
    }
    let measures = vec![
        Measure::new("age", age as f64, Unit::Seconds).of(threshold as f64),
        Measure::count("shrunk_pipes", shrunk.len()),
        Measure::count("blocked_writing", u64::from(blocked_writing)),
    ];
    let container = p
        .owner
        .container_id
        .as_deref()
        .map_or(String::new(), |c| format!(" for container {}", short_id(c)));
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
            "runc init{container} has not finished starting the container. runc feeds it its bootstrap data through \
             a pipe; when the pipe was created while uid 0 was over fs.pipe-user-pages-soft it holds only 2 pages \
             ({} bytes), and runc before 1.0.0 wrote more than that in one go, so the write blocks forever \
             (incident 1). The shim, containerd and kubelet's PLEG then wait on it and the node goes NotReady.",
            page.saturating_mul(2)
        ),
        remedy: format!(
            "Raise `fs.pipe-user-pages-soft` (`sysctl -w fs.pipe-user-pages-soft=0` removes the limit) so new \
             pipes are full size; unblock this one by killing it (`kill -9 {pid}`; the runtime retries the \
             container with a fresh pipe) or draining the pipe. Upgrade runc to ≥ 1.0.0 / 1.1.x (it reads the \
             bootstrap pipe concurrently); only runc needs upgrading, the shim execs it per container. Then \
             find who holds uid 0's pipe pages (pipe-quota) and restore the default soft limit (16384).",
            pid = p.pid
        ),
        evidence,
        subjects,
    }
}

/// The node's runc, from the package database (never by running `runc --version`).
fn runc_version(s: &Snapshot, p: &Process) -> String {
    let exe = p.exe.as_deref().unwrap_or("unknown path");
    for pkg in ["runc", "containerd.io", "cri-o-runc"] {
        if let Some(v) = s.runtime_packages.as_ref().and_then(|p| p.get(pkg)) {
            return format!("package {pkg} {v} (binary {exe})");
        }
    }
    format!("unknown (binary {exe}; no runc package in the dpkg database)")
}

#[cfg(test)]
mod tests {
    use super::super::common::test_support::process;
    use super::*;

    #[test]
    fn runc_init_by_comm_or_cmdline() {
        assert!(is_runc_init(&process(1, 0, "runc:[2:INIT]", 'S')));
        assert!(is_runc_init(&process(1, 0, "runc:[1:CHILD]", 'S')));
        let mut r = process(1, 0, "runc", 'S');
        assert!(!is_runc_init(&r));
        r.cmdline = Some(vec!["runc".into(), "init".into()]);
        assert!(is_runc_init(&r));
        r.cmdline = Some(vec!["runc".into(), "--root".into(), "/run/runc".into()]);
        assert!(!is_runc_init(&r));
    }
}
