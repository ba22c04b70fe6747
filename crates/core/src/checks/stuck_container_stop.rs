//! `stuck-container-stop`: a container process that was killed and cannot die.
//!
//! Stopping a container ends with SIGKILL. A task in uninterruptible sleep keeps the signal
//! pending and never returns to user mode to act on it, so the runtime's stop never
//! completes: containerd keeps the task RUNNING and `delete` fails with "must be stopped";
//! kubelet retries the stop every sync, and in incident 4 each `docker stop` retry left a
//! connection behind in dockerd until the node ran out of file handles.

use super::common::{
    MAX_FINDINGS, consecutive, describe, human_duration, runtime_ancestor, runtime_daemon, same_in,
    span_ms, stack_text,
};
use super::{CheckDef, History, Needs, Outcome};
use crate::attribution::short_id;
use crate::config::CheckSettings;
use crate::finding::{Evidence, Finding, Measure, Severity, Subject, Unit, key};
use crate::model::process::Process;
use crate::model::snapshot::Snapshot;

pub const CHECK: CheckDef = CheckDef {
    id: "stuck-container-stop",
    title: "a container process killed (SIGKILL pending) but stuck in D: the stop never finishes",
    doc: include_str!("stuck_container_stop.md"),
    needs: Needs {
        fds: true,
        history: true,
        ..Needs::NONE
    },
    settings: &[],
    condition: Some(super::ConditionDef {
        type_: "ContainerStopStuck",
        true_reason: "KilledProcessStuckInD",
        false_reason: "NoStuckStops",
    }),
    run,
};

/// The cgroup path that names the container (v1 and v2 paths differ on hybrid hosts).
fn container_cgroup(p: &Process) -> &str {
    let id = p.owner.container_id.as_deref().unwrap_or("\0");
    p.cgroups
        .iter()
        .find(|c| c.path.contains(id))
        .or_else(|| p.cgroups.iter().find(|c| c.hierarchy == 0))
        .map_or("", |c| c.path.as_str())
}

fn killed_and_stuck(p: &Process) -> bool {
    p.in_d_state() && p.sigkill_pending() == Some(true)
}

/// A runtime daemon whose fds or threads grew between the first sample and now.
pub struct Growing<'a> {
    pub daemon: &'a Process,
    pub fds: (u64, u64),
    pub threads: (u64, u64),
}

pub fn growing_daemons<'a>(h: &History<'a>) -> Vec<Growing<'a>> {
    let s = h.current();
    let Some(first) = h.earliest() else {
        return Vec::new();
    };
    s.process_list()
        .iter()
        .filter(|p| runtime_daemon(&p.comm).is_some())
        .filter_map(|p| {
            let q = same_in(first, p)?;
            let fds = (q.open_fds.unwrap_or(0), p.open_fds.unwrap_or(0));
            let threads = (q.threads, p.threads);
            (fds.1 > fds.0 || threads.1 > threads.0).then_some(Growing {
                daemon: p,
                fds,
                threads,
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
    let single = h.previous().is_none();
    let growing = growing_daemons(h);
    let mut findings = Vec::new();
    for p in processes.iter().filter(|p| killed_and_stuck(p)) {
        if p.owner.container_id.is_none() && p.owner.pod_uid.is_none() {
            continue; // not a container: d-state-processes reports it
        }
        let (n, first) = consecutive(h, p, killed_and_stuck);
        // With history, one sample of "killed and in D" may be a process about to die.
        if !single && n < 2 {
            continue;
        }
        let seen_ms = h.samples().get(first).map_or(0, |f| span_ms(f, s));
        findings.push(finding(s, p, n, seen_ms, &growing));
        if findings.len() >= MAX_FINDINGS {
            break;
        }
    }
    Outcome::found(findings)
}

fn finding(
    s: &Snapshot,
    p: &Process,
    samples: usize,
    seen_ms: u64,
    growing: &[Growing],
) -> Finding {
    let severity = if samples >= 2 {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let container = p
        .owner
        .container_id
        .as_deref()
        .map_or("(no container id)".to_string(), |id| {
            short_id(id).to_string()
        });
    let pod = p
        .owner
        .pod_uid
        .as_deref()
        .map_or(String::new(), |u| format!(" of pod {u}"));
    let wchan = p.wchan.as_deref().unwrap_or("unknown");
    let summary = format!(
        "container {container}{pod} cannot stop: {} ({}) has SIGKILL pending and sleeps in D at {wchan}{}",
        p.pid,
        p.comm,
        if samples >= 2 {
            format!(" for at least {}", human_duration(seen_ms))
        } else {
            " (one sample)".to_string()
        }
    );
    let mut evidence = vec![
        Evidence::new(
            format!("/proc/{}/status", p.pid),
            format!(
                "State D, SigPnd {:016x} ShdPnd {:016x} (bit 9 = SIGKILL set)",
                p.sig_pending.unwrap_or(0),
                p.shared_sig_pending.unwrap_or(0)
            ),
        )
        .with_threshold("SIGKILL pending while in D in two consecutive samples"),
        Evidence::new(format!("/proc/{}/wchan", p.pid), wchan),
        Evidence::new(
            format!("/proc/{}/cgroup", p.pid),
            format!(
                "{} → container {}{pod}",
                container_cgroup(p),
                p.owner.container_id.as_deref().unwrap_or("?")
            ),
        ),
    ];
    if let Some(frames) = &p.kernel_stack {
        evidence.push(Evidence::new(
            format!("/proc/{}/stack", p.pid),
            stack_text(frames, 6),
        ));
    }
    let mut subjects = vec![Subject::container(&p.owner), Subject::process(p)];
    let mut measures = vec![
        Measure::new("stuck", seen_ms as f64 / 1000.0, Unit::Seconds),
        Measure::count("samples", samples),
    ];
    if let Some(shim) = runtime_ancestor(s, p) {
        evidence.push(Evidence::new(
            format!("/proc/{}/stat", shim.pid),
            format!("its runtime parent: {}", describe(shim)),
        ));
    }
    for g in growing {
        evidence.push(Evidence::new(
            format!("/proc/{}/fd, /proc/{}/status", g.daemon.pid, g.daemon.pid),
            format!(
                "{}: fds {} → {}, threads {} → {} across the samples",
                describe(g.daemon),
                g.fds.0,
                g.fds.1,
                g.threads.0,
                g.threads.1
            ),
        ));
        subjects.push(Subject::process(g.daemon));
        measures.push(Measure::count("daemon_fds", g.fds.1));
        measures.push(Measure::count("daemon_fds_first", g.fds.0));
    }
    Finding {
        check: CHECK.id.into(),
        key: match &p.owner.container_id {
            Some(id) => key::container(CHECK.id, id),
            None => key::process(CHECK.id, p),
        },
        measures,
        log: None,
        caused_by: Vec::new(),
        explains: Vec::new(),
        severity,
        summary,
        cause: "The container was killed, but its process sleeps uninterruptibly in the kernel, so SIGKILL stays \
                pending and the process never exits. The runtime keeps the task running and every stop retry \
                fails (containerd: 'must be stopped'); kubelet retries forever, and each retry can leave a \
                connection or goroutine behind in the runtime daemon (incident 4: dockerd leaked fds until the \
                node ran out)."
            .into(),
        remedy: format!(
            "Resolve the I/O the process waits on (wchan {wchan}; `cat /proc/{pid}/stack`): the storage, NFS \
             server or FUSE daemon behind it; abort a dead FUSE connection (`echo 1 > \
             /sys/fs/fuse/connections/<dev>/abort`), `umount -f -l` a dead NFS mount, thaw a frozen cgroup. Then \
             the process dies and the container can go. Restart the runtime daemon if its fds/threads grew \
             (see fd-leak). If the I/O cannot be resolved, cordon and drain the node and reboot it.",
            pid = p.pid
        ),
        evidence,
        subjects,
    }
}
