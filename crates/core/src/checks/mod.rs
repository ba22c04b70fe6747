//! Checks: pure functions from snapshots to findings. No IO, no clock — everything a check
//! knows came through a [`Snapshot`], so a replayed recording gives the same findings.
//!
//! Each check declares what it needs collected ([`Needs`]), its tunables
//! ([`SettingDef`]s, defaults = the constants it was written with) and its knowledge page
//! (`<id>.md` next to its source, shown by `node-doctor explain`).

pub mod common;
pub mod coredump_storm;
pub mod coredump_to_host;
pub mod d_state_processes;
pub mod daemon_logs;
pub mod disk_pressure;
pub mod dying_memcgs;
pub mod fd_exhaustion;
pub mod fd_leak;
pub mod image_pull_serialized;
pub mod kernel_log;
pub mod kubelet_api_throttling;
pub mod kubelet_config;
pub mod memory_thrashing;
pub mod mount_leak;
pub mod node_values;
pub mod oom_kills;
pub mod pid_exhaustion;
pub mod pipe_quota;
pub mod pleg_unhealthy;
pub mod runc_init_hang;
pub mod runtime_health;
pub mod stuck_container_stop;
pub mod sysctl_drift;
pub mod zombie_processes;

use crate::config::{CheckSettings, Config, GENERIC, SettingDef};
use crate::finding::{Finding, Unknown};
use crate::model::snapshot::Snapshot;

/// The snapshots a check may look at, oldest first; the last one is "now". Checks that need
/// a rate or "still stuck" compare it with earlier ones.
#[derive(Debug, Clone)]
pub struct History<'a> {
    samples: Vec<&'a Snapshot>,
}

impl<'a> History<'a> {
    /// `None` for no samples: there is nothing to judge.
    pub fn new(samples: impl IntoIterator<Item = &'a Snapshot>) -> Option<Self> {
        let samples: Vec<&'a Snapshot> = samples.into_iter().collect();
        (!samples.is_empty()).then_some(Self { samples })
    }

    pub fn current(&self) -> &'a Snapshot {
        // `new` refuses an empty list, so there is a last one; the default is unreachable.
        static EMPTY: std::sync::OnceLock<Snapshot> = std::sync::OnceLock::new();
        self.samples
            .last()
            .copied()
            .unwrap_or_else(|| EMPTY.get_or_init(Snapshot::default))
    }

    /// The oldest sample, when there is one besides the current: what "growing since" and
    /// "still stuck" compare against.
    pub fn earliest(&self) -> Option<&'a Snapshot> {
        (self.samples.len() > 1)
            .then(|| self.samples.first().copied())
            .flatten()
    }

    /// The sample before the current one, when a window was used.
    pub fn previous(&self) -> Option<&'a Snapshot> {
        self.samples
            .len()
            .checked_sub(2)
            .and_then(|i| self.samples.get(i).copied())
    }

    pub fn samples(&self) -> &[&'a Snapshot] {
        &self.samples
    }
}

/// What one check concluded: findings, and reasons it could not look at some things.
#[derive(Debug, Default)]
pub struct Outcome {
    pub findings: Vec<Finding>,
    pub unknown: Vec<String>,
    /// Nothing could be evaluated (its inputs are missing): not the same as "fine".
    pub inconclusive: bool,
}

impl Outcome {
    /// Could not evaluate at all, and why.
    pub fn unknown(reason: impl Into<String>) -> Self {
        Self {
            findings: Vec::new(),
            unknown: vec![reason.into()],
            inconclusive: true,
        }
    }

    pub fn found(findings: Vec<Finding>) -> Self {
        Self {
            findings,
            unknown: Vec::new(),
            inconclusive: false,
        }
    }
}

/// What a check needs collected. The collectors that run are the union over the checks
/// selected: `check --only disk-pressure` runs no process scan (it walks fd links only when
/// a filesystem is over its band, to name holders of deleted files).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// `/proc/PID/{stat,status,cgroup,limits}` of every process.
    pub processes: bool,
    /// Each process's `fd/` listed (fd counts).
    pub fds: bool,
    /// Every `pipe:[N]` fd, sized (implies processes and fds).
    pub pipes: bool,
    /// `/proc/cgroups` and the cgroup hierarchies walked (pids limits).
    pub cgroups: bool,
    /// The memory cgroups' files read in the same walk (implies cgroups), and one timed
    /// read of the root's `memory.stat`.
    pub memcg: bool,
    pub mounts: bool,
    /// The kubelet `pods/` directories under the mount table's pod volume mounts listed
    /// (implies mounts).
    pub kubelet_pods: bool,
    /// systemd's own state without D-Bus: `/run/systemd/system`, PID 1's comm, the
    /// transient unit files (implies mounts: its mount units are the mount table).
    pub systemd: bool,
    /// statvfs of the watched filesystems (implies mounts).
    pub filesystems: bool,
    /// The kernel's log ring.
    pub kernel_log: bool,
    /// The runtime packages from the dpkg database.
    pub packages: bool,
    /// The container runtime: daemons by process, the CRI socket probed (Version, Status,
    /// pods and containers with names; the kubelet's log directories when it does not
    /// answer), containerd's downloads in progress.
    pub runtime: bool,
    /// The kubelet: process, command line, configuration files (implies processes).
    pub kubelet: bool,
    /// Recent kubelet and runtime log lines (journal units, or the files their stderr
    /// goes to; implies processes).
    pub daemon_logs: bool,
    /// Compares samples (rates, "still stuck"): the one-shot sampler takes two.
    pub history: bool,
    /// systemd's coredump.conf and drop-ins, the piped handler's program, the dump stores.
    pub coredump: bool,
    /// Open deleted files on filesystems over the disk-pressure band (implies filesystems;
    /// walks fd links only when a filesystem is over the band).
    pub deleted_files: bool,
    /// The sysctl configuration files (sysctl.conf, sysctl.d) and the live values they set.
    pub sysctl_conf: bool,
    /// `/proc/sys` in the mount namespace of container processes that could write it
    /// (root or CAP_SYS_ADMIN; implies processes).
    pub container_mounts: bool,
}

impl Needs {
    pub const NONE: Needs = Needs {
        processes: false,
        fds: false,
        pipes: false,
        cgroups: false,
        memcg: false,
        mounts: false,
        kubelet_pods: false,
        systemd: false,
        filesystems: false,
        kernel_log: false,
        packages: false,
        runtime: false,
        kubelet: false,
        daemon_logs: false,
        history: false,
        coredump: false,
        deleted_files: false,
        sysctl_conf: false,
        container_mounts: false,
    };

    /// Whether a sample holds every part these needs ask for: a check compares like with
    /// like (a process count only with samples that read processes), so a long-running
    /// caller that collects different parts at different cadences hands each check only
    /// the samples this accepts. A scan that found no process at all counts as having read
    /// their fds.
    pub fn met_by(&self, s: &Snapshot) -> bool {
        (!self.processes || s.processes.is_some())
            && (!self.fds
                || s.process_scan.is_some()
                    && (s.process_list().iter().any(|p| p.open_fds.is_some())
                        || s.process_list().is_empty()))
            && (!self.pipes || s.pipes.is_some())
            && (!self.cgroups || s.cgroups.is_some())
            && (!self.mounts || s.mounts.is_some())
            && (!self.filesystems || s.filesystems.is_some())
            && (!self.kernel_log || s.kernel_log.is_some())
            && (!self.packages || s.runtime_packages.is_some())
            && (!self.runtime || s.runtime.is_some())
            && (!self.kubelet || s.kubelet.is_some())
            && (!self.daemon_logs || s.daemon_logs.is_some())
            && (!self.coredump || s.coredump.is_some())
            && (!self.deleted_files || s.deleted_open.is_some())
            && (!self.sysctl_conf || s.sysctl_conf.is_some())
            && (!self.container_mounts || s.processes.is_some())
    }

    pub const fn union(self, o: Needs) -> Needs {
        let deleted_files = self.deleted_files || o.deleted_files;
        let container_mounts = self.container_mounts || o.container_mounts;
        let filesystems = self.filesystems || o.filesystems || deleted_files;
        let runtime = self.runtime || o.runtime;
        // The runtime collector reads the CRI endpoint from the kubelet's flags and config,
        // and the kubelet's defaults follow its installed version (packages).
        let kubelet = self.kubelet || o.kubelet || runtime;
        let daemon_logs = self.daemon_logs || o.daemon_logs;
        Needs {
            processes: self.processes
                || o.processes
                || o.fds
                || o.pipes
                || self.fds
                || self.pipes
                || kubelet
                || daemon_logs
                || runtime
                || container_mounts,
            fds: self.fds || o.fds || self.pipes || o.pipes,
            pipes: self.pipes || o.pipes,
            cgroups: self.cgroups || o.cgroups || self.memcg || o.memcg,
            memcg: self.memcg || o.memcg,
            mounts: self.mounts
                || o.mounts
                || filesystems
                || self.cgroups
                || o.cgroups
                || self.memcg
                || o.memcg
                || self.kubelet_pods
                || o.kubelet_pods
                || self.systemd
                || o.systemd,
            kubelet_pods: self.kubelet_pods || o.kubelet_pods,
            systemd: self.systemd || o.systemd,
            filesystems,
            kernel_log: self.kernel_log || o.kernel_log,
            packages: self.packages || o.packages || kubelet,
            runtime,
            kubelet,
            daemon_logs,
            history: self.history || o.history,
            coredump: self.coredump || o.coredump,
            deleted_files,
            sysctl_conf: self.sysctl_conf || o.sysctl_conf,
            container_mounts,
        }
    }

    /// Everything every check needs.
    pub fn of(checks: &[&CheckDef]) -> Needs {
        checks.iter().fold(Needs::NONE, |n, c| n.union(c.needs))
    }
}

/// The NodeCondition a check family sets in the agent (docs/conditions.md). Types and
/// reasons are public API: remediation policies match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConditionDef {
    /// Problem-named, True = problem ("PIDExhaustion"); never a kubelet, NPD or EKS type.
    pub type_: &'static str,
    /// PascalCase reason while True.
    pub true_reason: &'static str,
    /// PascalCase reason while False (checked and fine).
    pub false_reason: &'static str,
}

/// A registered check: its stable id, one line saying what it looks for, its knowledge page
/// (shown by `node-doctor explain`), what it needs, its settings, the condition it sets in
/// the agent, and the function.
pub struct CheckDef {
    pub id: &'static str,
    pub title: &'static str,
    pub doc: &'static str,
    pub needs: Needs,
    pub settings: &'static [SettingDef],
    pub condition: Option<ConditionDef>,
    pub run: fn(&History, &CheckSettings) -> Outcome,
}

impl CheckDef {
    /// Its own settings, then the generic ones (`enabled`, `interval`).
    pub fn all_settings(&self) -> impl Iterator<Item = &'static SettingDef> {
        self.settings.iter().chain(GENERIC.iter())
    }

    pub fn setting(&self, key: &str) -> Option<&'static SettingDef> {
        self.all_settings().find(|s| s.key == key)
    }
}

impl std::fmt::Debug for CheckDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckDef").field("id", &self.id).finish()
    }
}

/// Every check, in the order reports list them.
pub fn all() -> &'static [CheckDef] {
    &[
        pid_exhaustion::CHECK,
        zombie_processes::CHECK,
        fd_exhaustion::CHECK,
        fd_leak::CHECK,
        d_state_processes::CHECK,
        stuck_container_stop::CHECK,
        pipe_quota::CHECK,
        runc_init_hang::CHECK,
        kernel_log::CHECK,
        disk_pressure::CHECK,
        memory_thrashing::CHECK,
        oom_kills::CHECK,
        dying_memcgs::CHECK,
        mount_leak::CHECK,
        coredump_to_host::CHECK,
        coredump_storm::CHECK,
        sysctl_drift::CHECK,
        runtime_health::CHECK,
        pleg_unhealthy::CHECK,
        image_pull_serialized::CHECK,
        kubelet_api_throttling::CHECK,
        kubelet_config::CHECK,
    ]
}

/// The kernel-log lines a check reads from the ring, for a caller that follows the ring
/// itself and hands the check only those records (the agent): empty for the checks that
/// read no kernel lines, and for `kernel-log`, whose rules the caller runs on every line.
pub fn kernel_lines_of(id: &str) -> &'static [&'static str] {
    match id {
        "oom-kills" => oom_kills::KERNEL_LINES,
        "coredump-storm" => coredump_storm::KERNEL_LINES,
        _ => &[],
    }
}

pub fn by_id(id: &str) -> Option<&'static CheckDef> {
    all().iter().find(|c| c.id == id)
}

/// The checks to run: `only` (validated), else all; minus those the config disables.
pub fn select(only: &[String], config: &Config) -> Result<Vec<&'static CheckDef>, String> {
    let chosen: Vec<&'static CheckDef> = if only.is_empty() {
        all().iter().collect()
    } else {
        only.iter()
            .map(|id| {
                by_id(id).ok_or_else(|| {
                    format!("unknown check id {id:?}; `node-doctor checks` lists them")
                })
            })
            .collect::<Result<_, _>>()?
    };
    Ok(chosen
        .into_iter()
        .filter(|c| config.enabled(c.id))
        .collect())
}

/// Runs one check, then names the pods and containers its findings are about (from the
/// snapshot's workloads). Timing is the caller's (checks read no clock).
pub fn run_one(check: &CheckDef, history: &History, config: &Config) -> Outcome {
    let mut outcome = (check.run)(history, &config.for_check(check.id));
    crate::names::name_subjects(&mut outcome.findings, history.current());
    outcome
}

/// Wall time one check took, measured by its caller.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CheckTiming {
    pub check: &'static str,
    pub ms: f64,
}

/// The result of running checks over a history.
#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub unknown: Vec<Unknown>,
    pub checks_run: Vec<&'static str>,
    /// Checks that could evaluate nothing (all their inputs missing).
    pub inconclusive: Vec<&'static str>,
    pub timings: Vec<CheckTiming>,
}

impl Report {
    pub fn add(&mut self, check: &'static CheckDef, outcome: Outcome, ms: f64) {
        self.checks_run.push(check.id);
        if outcome.inconclusive {
            self.inconclusive.push(check.id);
        }
        self.findings.extend(outcome.findings);
        self.unknown
            .extend(outcome.unknown.into_iter().map(|reason| Unknown {
                check: check.id.into(),
                reason,
            }));
        self.timings.push(CheckTiming {
            check: check.id,
            ms,
        });
    }

    /// Most severe first; within a severity keep check order (stable sort). Then the causal
    /// pass: findings that explain one another are linked ([`crate::causes`]).
    pub fn finish(mut self) -> Self {
        self.findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        crate::causes::link(&mut self.findings);
        self
    }

    /// No check could evaluate anything: the run says nothing about the host.
    pub fn nothing_checked(&self) -> bool {
        self.checks_run.len() == self.inconclusive.len()
    }
}

/// Runs `checks` without timing them (tests, tools).
pub fn run(checks: &[&'static CheckDef], history: &History, config: &Config) -> Report {
    let mut report = Report::default();
    for c in checks {
        report.add(c, run_one(c, history, config), 0.0);
    }
    report.finish()
}

/// Formats a ratio as a percentage with one decimal.
pub(crate) fn pct(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_are_met_only_by_samples_holding_their_parts() {
        use crate::model::{ProcState, Process, ScanReport};
        let fds = Needs {
            fds: true,
            ..Needs::NONE
        };
        let procs = Needs {
            processes: true,
            ..Needs::NONE
        };
        let mut s = Snapshot::default();
        assert!(Needs::NONE.met_by(&s));
        assert!(!procs.met_by(&s) && !fds.met_by(&s));
        // Processes read without their fds (a cheap tick): enough for one, not the other.
        s.processes = Some(vec![Process::new(1, 0, "init", ProcState::Sleeping, 1)]);
        s.process_scan = Some(ScanReport::default());
        assert!(procs.met_by(&s) && !fds.met_by(&s));
        if let Some(p) = s.processes.as_mut().and_then(|v| v.first_mut()) {
            p.open_fds = Some(4);
        }
        assert!(fds.met_by(&s));
        // A scan that found no process has read every process's fds.
        s.processes = Some(Vec::new());
        assert!(fds.met_by(&s));
    }

    /// A check that compares samples must ask for two: the sampler takes one sample when no
    /// selected check needs history, and `check --only X` would then judge X on one.
    #[test]
    fn checks_that_compare_samples_ask_for_history() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/checks");
        let mut looked = 0;
        for c in all() {
            let file = dir.join(format!("{}.rs", c.id.replace('-', "_")));
            let Ok(src) = std::fs::read_to_string(&file) else {
                continue;
            };
            looked += 1;
            let code = src.split("#[cfg(test)]").next().unwrap_or("");
            let compares = [".earliest()", ".previous()", "change(h", "consecutive(h"]
                .iter()
                .any(|p| code.contains(p));
            assert!(
                !compares || c.needs.history,
                "{}: compares samples but its Needs lack history",
                c.id
            );
        }
        assert!(looked >= 20, "the checks' sources were read ({looked})");
    }

    /// A check that reads kernel lines names them, so a follower of the ring (the agent)
    /// can hand it those records.
    #[test]
    fn checks_that_read_kernel_lines_name_them() {
        for c in all() {
            if c.needs.kernel_log && c.id != "kernel-log" {
                assert!(!kernel_lines_of(c.id).is_empty(), "{}", c.id);
            }
        }
        // Real lines each check parses hold one of its strings.
        let held = |id: &str, line: &str| kernel_lines_of(id).iter().any(|l| line.contains(l));
        for line in [
            "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=abc,mems_allowed=0,oom_memcg=/kubepods/burstable/podx,task_memcg=/kubepods/burstable/podx/c1,task=python,pid=4242,uid=0",
            "Memory cgroup out of memory: Killed process 4242 (python) total-vm:1000kB, anon-rss:900kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:100kB oom_score_adj:0",
            "Out of memory: Kill process 4242 (python) score 900 or sacrifice child",
            "Task in /kubepods/podx/c1 killed as a result of limit of /kubepods/podx",
        ] {
            assert!(held("oom-kills", line), "{line}");
        }
        for line in [
            "coredump: 4242(python): over core_pipe_limit, skipping core dump",
            "Pid 4242(python) over core_pipe_limit",
            "python[4242]: segfault at 0 ip 00007f0000000000 sp 00007ffc00000000 error 6 in libc.so.6",
            "traps: python[4242] general protection fault ip:7f0000000000 sp:7ffc00000000 error:0",
            "Core dump to |/usr/lib/systemd/systemd-coredump pipe failed",
        ] {
            assert!(held("coredump-storm", line), "{line}");
        }
    }
}
