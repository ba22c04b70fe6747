//! Collectors: each reads one part of the host into the [`Snapshot`]. Which ones run
//! follows from what the selected checks need ([`Needs`]): `check --only disk-pressure`
//! runs no process scan and reads no kernel ring (it walks fd links only when a filesystem
//! is over the band: the holders of open deleted files). Each collector's wall time is recorded in the
//! snapshot (`timings`), so a slow one shows.

pub mod basics;
pub mod cgroups;
pub mod container_mounts;
pub mod coredump;
pub mod daemon_logs;
pub mod deleted;
pub mod filesystems;
pub mod kubelet;
pub mod mount_owners;
pub mod mounts;
pub mod packages;
pub mod per_pid;
pub mod pipes;
pub mod processes;
pub mod runtime;
pub mod sysctl_conf;

use crate::Host;
use node_doctor_core::checks::Needs;
use node_doctor_core::model::{Kind, Snapshot, Unavailable};
use std::collections::HashSet;
use std::time::Instant;

/// The collectors, by the id their timings are recorded under.
pub const COLLECTORS: &[&str] = &[
    "basics",
    "mounts",
    "cgroups",
    "kubelet_pods",
    "systemd",
    "filesystems",
    "processes",
    "pipes",
    "kernel_log",
    "packages",
    "kubelet",
    "runtime",
    "daemon_logs",
    "coredump",
    "deleted_files",
    "sysctl_conf",
    "container_mounts",
];

/// Runs collector `id` unless the run's deadline has passed (then records that it was not
/// run: a deadline of 0 reads nothing, and every check says so).
fn timed(s: &mut Snapshot, id: &str, deadline: Option<Instant>, f: impl FnOnce(&mut Snapshot)) {
    if deadline.is_some_and(|d| Instant::now() >= d) {
        s.unavailable.push(Unavailable::new(
            "",
            Kind::Timeout,
            format!("not read: the run's deadline had passed before the {id} collector"),
        ));
        s.incomplete_collectors.push(id.to_string());
        return;
    }
    let t = Instant::now();
    let before = s.unavailable.len();
    f(s);
    s.timings
        .insert(id.to_string(), t.elapsed().as_secs_f64() * 1000.0);
    if s.unavailable
        .get(before..)
        .is_some_and(|new| new.iter().any(|u| u.kind == Kind::Timeout))
    {
        s.incomplete_collectors.push(id.to_string());
    }
}

/// Adds the kubelet's and the runtime's log lines to `s` from `tail`, timed as the
/// `daemon_logs` collector: the agent follows them from one collection to the next (it
/// collects with `needs.daemon_logs` off, then calls this) instead of reading the last hour
/// again at every collection. `s` must hold the process scan (the daemons' stderr files).
pub fn daemon_logs_followed(
    host: &Host,
    s: &mut Snapshot,
    tail: &mut daemon_logs::Tail,
    deadline: Option<Instant>,
) {
    timed(s, "daemon_logs", deadline, |s| {
        let logs = tail.read(&*host.fs, s.process_list(), s.collected_at_ms);
        s.daemon_logs = Some(logs);
    });
}

/// Reads one snapshot of what `needs` asks for. Never fails: what cannot be read is listed
/// in `unavailable` (and the process scan's `problems`). Reads that block past `deadline`
/// are abandoned and reported.
pub fn collect(host: &Host, needs: &Needs, deadline: Option<Instant>) -> Snapshot {
    let fs = &*host.fs;
    let k = &*host.kernel;
    let mut s = Snapshot {
        collected_at_ms: k.now_ms(),
        root: fs.root().display().to_string(),
        clock_ticks_per_sec: k.clock_ticks_per_sec(),
        page_size: k.page_size(),
        reader: Some(k.reader()),
        ..Snapshot::default()
    };
    timed(&mut s, "basics", deadline, |s| basics::read(fs, s));
    if needs.mounts
        || needs.filesystems
        || needs.cgroups
        || needs.memcg
        || needs.kubelet_pods
        || needs.systemd
        || needs.kubelet
        || needs.runtime
    {
        timed(&mut s, "mounts", deadline, |s| {
            s.mounts = mounts::read(fs, &mut s.unavailable)
        });
    }
    if needs.cgroups || needs.memcg {
        timed(&mut s, "cgroups", deadline, |s| {
            let c = cgroups::read(
                &host.fs,
                s.mounts.as_deref(),
                needs.memcg,
                deadline,
                &mut s.unavailable,
            );
            s.cgroups = Some(c);
        });
    }
    if needs.kubelet_pods {
        timed(&mut s, "kubelet_pods", deadline, |s| {
            let p = mount_owners::kubelet_pods(
                &host.fs,
                s.mounts.as_deref(),
                deadline,
                &mut s.unavailable,
            );
            s.kubelet_pods = Some(p);
        });
    }
    if needs.systemd {
        timed(&mut s, "systemd", deadline, |s| {
            s.systemd = Some(mount_owners::systemd(fs, &mut s.unavailable));
        });
    }
    if needs.filesystems {
        timed(&mut s, "filesystems", deadline, |s| {
            let f = filesystems::read(host, s.mounts.as_deref(), deadline, &mut s.unavailable);
            s.filesystems = Some(f);
        });
    }
    let mut ends = Vec::new();
    // A full filesystem's open deleted files are found from the fd links: when the process
    // scan runs anyway, it reads them in its one pass and the walk visits only the
    // processes it names.
    let deleted_wanted =
        needs.deleted_files && s.filesystems.as_deref().is_some_and(deleted::any_over_band);
    let mut candidates = None;
    // The kubelet, runtime and daemon-log collectors find their daemons among the
    // processes, and container_mounts reads the processes' mount namespaces: honoured even
    // for needs not passed through `Needs::union`.
    if needs.processes
        || needs.fds
        || needs.pipes
        || needs.kubelet
        || needs.runtime
        || needs.daemon_logs
        || needs.container_mounts
    {
        timed(&mut s, "processes", deadline, |s| {
            let opts = processes::ScanOptions {
                fds: needs.fds || needs.pipes || deleted_wanted,
                pipe_links: needs.pipes || deleted_wanted,
            };
            let scan = processes::scan(&host.fs, opts, deadline);
            ends = scan.pipe_ends;
            candidates = scan.deleted_candidates;
            s.processes = Some(scan.processes);
            s.process_scan = Some(scan.report);
        });
    }
    if needs.deleted_files
        && let Some(fss) = s.filesystems.clone()
    {
        timed(&mut s, "deleted_files", deadline, |s| {
            let c = candidates.as_ref();
            let d = deleted::read(&host.fs, &fss, s.mounts.as_deref(), deadline, c);
            s.deleted_open = Some(d);
        });
    }
    if needs.pipes {
        timed(&mut s, "pipes", deadline, |s| {
            let in_d: HashSet<i32> = s
                .process_list()
                .iter()
                .filter(|p| p.in_d_state())
                .map(|p| p.pid)
                .collect();
            s.pipes = Some(pipes::size(
                fs,
                k,
                std::mem::take(&mut ends),
                &in_d,
                deadline,
            ));
        });
    }
    if needs.container_mounts
        && let Some(mut ps) = s.processes.take()
    {
        timed(&mut s, "container_mounts", deadline, |_| {
            container_mounts::read(&host.fs, &mut ps, deadline);
        });
        s.processes = Some(ps);
    }
    if needs.coredump {
        timed(&mut s, "coredump", deadline, |s| {
            let pattern = s.sysctls.get("kernel.core_pattern").cloned();
            s.coredump = Some(coredump::read(
                &host.fs,
                pattern.as_deref(),
                s.mounts.as_deref(),
                deadline,
                &mut s.unavailable,
            ));
        });
    }
    if needs.sysctl_conf {
        timed(&mut s, "sysctl_conf", deadline, |s| {
            sysctl_conf::read(fs, s)
        });
    }
    if needs.kernel_log {
        timed(&mut s, "kernel_log", deadline, |s| {
            s.kernel_log = Some(crate::sources::kmsg::read_ring(k))
        });
    }
    if needs.packages {
        timed(&mut s, "packages", deadline, |s| {
            s.runtime_packages = Some(packages::read(fs, &mut s.unavailable));
        });
    }
    // The kubelet's and the runtime's files at configured paths are not read below a FUSE
    // or network mount (a dead one would hang the run: see mounts::RemoteMounts).
    let remote = mounts::RemoteMounts::of(s.mounts.as_deref(), &fs.root().to_string_lossy());
    if needs.kubelet || needs.runtime {
        timed(&mut s, "kubelet", deadline, |s| {
            let k = kubelet::read(fs, &remote, s.process_list(), s.runtime_packages.as_ref());
            s.kubelet = Some(k);
        });
    }
    if needs.runtime {
        timed(&mut s, "runtime", deadline, |s| {
            let (rt, w) = runtime::read(
                fs,
                k,
                &remote,
                s.process_list(),
                s.kubelet.as_ref(),
                deadline,
            );
            s.runtime = Some(rt);
            s.workloads = Some(w);
        });
    }
    if needs.daemon_logs {
        timed(&mut s, "daemon_logs", deadline, |s| {
            let now = s.collected_at_ms;
            s.daemon_logs = Some(daemon_logs::read(fs, s.process_list(), now));
        });
    }
    // Collected data meets the same invariants as replayed data. Only an impossible clock
    // fails validation; the snapshot is then kept as read, with the reason.
    if let Err(e) = s.validate() {
        s.unavailable.push(Unavailable::new("", Kind::Malformed, e));
    }
    s
}
