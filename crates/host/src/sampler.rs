//! One-shot sampling (`node-doctor check`, `snapshot`): one sample, or two a window apart so
//! that rates and "still stuck" exist without history; and running the checks over the
//! samples with each check timed (checks read no clock; their caller does).

use crate::Host;
use crate::collect::collect;
use node_doctor_core::checks::{self, CheckDef, History, Needs, Report};
use node_doctor_core::config::Config;
use node_doctor_core::model::Snapshot;
use std::time::{Duration, Instant};

/// Takes one sample, or two `window` apart when some check compares samples. Everything is
/// read by `deadline` (abandoned reads are reported, never waited for).
pub fn sample(host: &Host, needs: &Needs, window: Duration, deadline: Instant) -> Vec<Snapshot> {
    if window.is_zero() || !needs.history {
        return vec![collect(host, needs, Some(deadline))];
    }
    // The pipe scan, the kernel ring, filesystems, kubelet pod directories, packages, the
    // daemons' log lines, open deleted files, the sysctl files and containers' mounts are
    // judged on the current sample only: the first sample reads just what is compared across samples (the dump
    // stores' growth is).
    let first_needs = Needs {
        pipes: false,
        kernel_log: false,
        filesystems: false,
        kubelet_pods: false,
        packages: false,
        daemon_logs: false,
        deleted_files: false,
        sysctl_conf: false,
        container_mounts: false,
        ..*needs
    };
    let first = collect(host, &first_needs, Some(deadline));
    let left = deadline.saturating_duration_since(Instant::now());
    std::thread::sleep(window.min(left));
    vec![first, collect(host, needs, Some(deadline))]
}

/// Runs `checks` over `history`, timing each.
pub fn run_checks(checks: &[&'static CheckDef], history: &History, config: &Config) -> Report {
    let mut report = Report::default();
    for c in checks {
        let t = Instant::now();
        let outcome = checks::run_one(c, history, config);
        report.add(c, outcome, t.elapsed().as_secs_f64() * 1000.0);
    }
    report.finish()
}
