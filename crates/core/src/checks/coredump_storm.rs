//! `coredump-storm`: a crash loop dumping cores (incident 3): recent crashes and dumps by
//! command and their rate, dumps skipped over `kernel.core_pipe_limit`, handlers running now,
//! the processes being dumped now (with their container), and the dump store's growth.
//!
//! Sources, all in the snapshot: the kernel's lines (`coredump: N(comm): over
//! core_pipe_limit, skipping core dump` on 6.10+, `Pid N(comm) over core_pipe_limit` before;
//! `comm[N]: segfault at`, `traps: comm[N] general protection fault`, `... pipe failed`), the
//! store's file names (systemd-coredump's `core.<comm>.<uid>.<boot id>.<pid>.<usec>.zst`),
//! `status` `CoreDumping: 1` of processes being dumped now, handler processes (a child of
//! kthreadd named after the pattern's program), and the store between samples.

use super::common::{MAX_FINDINGS, describe_owner, filesystem_of, span_ms};
use super::disk_pressure::human_bytes;
use super::{CheckDef, History, Needs, Outcome};
use crate::config::{CheckSettings, SettingDef};
use crate::finding::{Evidence, Finding, Measure, Severity, Subject, SubjectKind, Unit, key};
use crate::knowledge::coredump::{CorePattern, StoredCore};
use crate::model::process::Process;
use crate::time::human_duration;
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

pub const CHECK: CheckDef = CheckDef {
    id: "coredump-storm",
    title: "a crash loop dumping cores: recent dumps and their rate, dumps skipped over core_pipe_limit, the store growing",
    doc: include_str!("coredump_storm.md"),
    needs: Needs {
        processes: true,
        kernel_log: true,
        coredump: true,
        filesystems: true,
        history: true,
        ..Needs::NONE
    },
    settings: &[RECENT, WARN, CRIT],
    condition: Some(super::ConditionDef {
        type_: "CoreDumpStorm",
        true_reason: "CrashLoopDumpingCores",
        false_reason: "NoCoreDumpStorm",
    }),
    run,
};

pub const RECENT: SettingDef = SettingDef::duration(
    "recent",
    15 * 60 * 1000,
    "crashes and dumps this long before the snapshot count as recent",
);
pub const WARN: SettingDef = SettingDef::count(
    "warn",
    3,
    "warning at this many recent crashes of one command (any skipped dump is a warning)",
);
pub const CRIT: SettingDef = SettingDef::count(
    "crit",
    20,
    "critical at this many recent crashes (or skipped dumps) of one command",
);

/// What the kernel said, by command.
#[derive(Default)]
struct Storm<'a> {
    pids: BTreeSet<i32>,
    /// segfault / traps lines.
    crashes: u64,
    /// "over core_pipe_limit" lines.
    skipped: u64,
    /// Cores stored recently (store file names).
    stored: u64,
    stored_bytes: u64,
    /// Being dumped now (`CoreDumping: 1`).
    dumping: Vec<&'a Process>,
    lines: Vec<String>,
    first_ms: Option<u64>,
    last_ms: Option<u64>,
}

impl Storm<'_> {
    fn events(&self) -> u64 {
        // A crash logs a segfault line and leaves a core: count each pid once.
        let with_pid = self.pids.len() as u64;
        with_pid
            .max(self.crashes.max(self.stored))
            .max(self.skipped)
    }

    fn saw(&mut self, pid: Option<i32>, at: Option<u64>) {
        if let Some(p) = pid {
            self.pids.insert(p);
        }
        if let Some(t) = at {
            self.first_ms = Some(self.first_ms.map_or(t, |f| f.min(t)));
            self.last_ms = Some(self.last_ms.map_or(t, |l| l.max(t)));
        }
    }
}

struct Patterns {
    skipped_new: Regex,
    skipped_old: Regex,
    segfault: Regex,
    traps: Regex,
    pipe_failed: Regex,
}

/// The kernel lines this check reads (every pattern below holds one of them): a follower of
/// the ring (the agent) keeps the records holding one of them for it.
pub const KERNEL_LINES: &[&str] = &[
    "over core_pipe_limit",
    "]: segfault at ",
    "traps: ",
    " pipe failed",
];

fn patterns() -> Option<&'static Patterns> {
    static P: OnceLock<Option<Patterns>> = OnceLock::new();
    P.get_or_init(|| {
        Some(Patterns {
            // fs/coredump.c coredump_report_failure() (6.10+) and the older printk.
            skipped_new: Regex::new(r"coredump: (\d+)\((.*)\): over core_pipe_limit").ok()?,
            skipped_old: Regex::new(r"Pid (\d+)\((.*)\) over core_pipe_limit").ok()?,
            // arch/x86/mm/fault.c show_signal_msg(): "%s%s[%d]: segfault at %lx ...".
            segfault: Regex::new(r"(\S+)\[(\d+)\]: segfault at ").ok()?,
            // arch/x86/kernel/traps.c: "traps: %s[%d] general protection fault ...".
            traps: Regex::new(r"traps: (\S+)\[(\d+)\] (?:general protection|trap )").ok()?,
            pipe_failed: Regex::new(
                r"(?:coredump: (\d+)\((.*)\): )?(?:Core dump to )?\|(\S*) pipe failed",
            )
            .ok()?,
        })
    })
    .as_ref()
}

fn run(h: &History, cfg: &CheckSettings) -> Outcome {
    let s = h.current();
    let (recent, warn, crit) = (cfg.duration_ms(&RECENT), cfg.count(&WARN), cfg.count(&CRIT));
    let since = s.collected_at_ms.saturating_sub(recent);
    let Some(pats) = patterns() else {
        return Outcome::unknown("coredump-storm: its patterns do not compile");
    };
    let mut out = Outcome::default();
    let mut storms: BTreeMap<String, Storm> = BTreeMap::new();
    let mut failed: Vec<String> = Vec::new();
    let mut looked = false;

    match &s.kernel_log {
        Some(log) => {
            looked = true;
            if let Some(e) = &log.error {
                out.unknown.push(format!("kernel log: {e}"));
            }
            for r in &log.records {
                let Some(t) = r.time_ms else { continue };
                if t < since {
                    continue;
                }
                let text = r.text.as_str();
                let cap = |re: &Regex, comm: usize, pid: usize| {
                    re.captures(text).map(|c| {
                        (
                            c.get(comm).map_or("", |m| m.as_str()).to_string(),
                            c.get(pid).and_then(|m| m.as_str().parse::<i32>().ok()),
                        )
                    })
                };
                if let Some((comm, pid)) =
                    cap(&pats.skipped_new, 2, 1).or_else(|| cap(&pats.skipped_old, 2, 1))
                {
                    let st = storms.entry(comm).or_default();
                    st.skipped = st.skipped.saturating_add(1);
                    st.saw(pid, Some(t));
                    st.lines.push(text.to_string());
                } else if let Some((comm, pid)) =
                    cap(&pats.segfault, 1, 2).or_else(|| cap(&pats.traps, 1, 2))
                {
                    let st = storms.entry(comm).or_default();
                    st.crashes = st.crashes.saturating_add(1);
                    st.saw(pid, Some(t));
                    st.lines.push(text.to_string());
                } else if pats.pipe_failed.is_match(text) {
                    failed.push(text.to_string());
                }
            }
        }
        None => out.unknown.push(s.not_collected("kernel log records")),
    }

    let stores = s
        .coredump
        .as_ref()
        .map(|c| c.stores.as_slice())
        .unwrap_or(&[]);
    if s.coredump.is_some() {
        looked = true;
    }
    for store in stores {
        for f in &store.entries {
            let Some(c) = StoredCore::parse(&f.name) else {
                continue;
            };
            if c.time_ms < since {
                continue;
            }
            let st = storms.entry(c.comm.clone()).or_default();
            st.stored = st.stored.saturating_add(1);
            st.stored_bytes = st.stored_bytes.saturating_add(f.bytes);
            st.saw(Some(c.pid), Some(c.time_ms));
        }
    }

    let procs = s.processes().ok();
    let pattern = s.sysctl("kernel.core_pattern").ok().map(CorePattern::parse);
    let pipe_limit = s.sysctl_u64("kernel.core_pipe_limit").ok();
    // Handlers now: children of kthreadd named after the pattern's program (comm is 15
    // bytes), and systemd-coredump's own processes.
    let helper_comm: Option<String> = pattern.as_ref().and_then(|p| p.program()).map(|prog| {
        prog.rsplit('/')
            .next()
            .unwrap_or(prog)
            .chars()
            .take(15)
            .collect()
    });
    let mut handlers: Vec<&Process> = Vec::new();
    if let Some(ps) = procs {
        looked = true;
        for p in ps {
            if p.core_dumping == Some(true) {
                let st = storms.entry(p.comm.clone()).or_default();
                st.dumping.push(p);
                st.saw(Some(p.pid), None);
            }
            let is_helper = (p.ppid == 2 && helper_comm.as_deref() == Some(p.comm.as_str()))
                || p.comm == "systemd-coredum";
            if is_helper && !p.is_zombie() {
                handlers.push(p);
            }
        }
    }
    if !looked {
        return Outcome::unknown(
            s.not_collected("the kernel log, the dump stores and the processes"),
        );
    }

    let mut findings: Vec<Finding> = Vec::new();
    for (comm, st) in &storms {
        let events = st.events();
        let worth = events >= 2 || st.skipped > 0 || !st.dumping.is_empty() || st.stored > 0;
        if !worth {
            continue;
        }
        let severity = if events >= crit || st.skipped >= crit {
            Severity::Critical
        } else if events >= warn || st.skipped > 0 {
            Severity::Warning
        } else {
            Severity::Info
        };
        findings.push(command_finding(
            severity,
            comm,
            st,
            procs.unwrap_or(&[]),
            &handlers,
            pipe_limit,
            (recent, crit),
        ));
    }
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(measure(b, "crashes").total_cmp(&measure(a, "crashes")))
    });
    if findings.len() > MAX_FINDINGS {
        let more = findings.len().saturating_sub(MAX_FINDINGS);
        findings.truncate(MAX_FINDINGS);
        findings.push(Finding {
            check: CHECK.id.into(),
            key: key::more(CHECK.id),
            severity: Severity::Info,
            summary: format!("and {more} more crashing commands"),
            cause: String::new(),
            remedy: String::new(),
            evidence: vec![],
            subjects: vec![],
            measures: vec![Measure::count("commands", more as u64)],
            log: None,
            caused_by: Vec::new(),
            explains: Vec::new(),
        });
    }
    out.findings.extend(findings);

    // Handlers running with no command to pin them on, or every slot busy.
    let busy = pipe_limit.is_some_and(|n| n > 0 && handlers.len() as u64 >= n);
    if !handlers.is_empty() && (busy || out.findings.is_empty()) {
        out.findings
            .push(handlers_finding(&handlers, pipe_limit, busy));
    }
    if !failed.is_empty() {
        out.findings.push(Finding {
            check: CHECK.id.into(),
            key: key::node(CHECK.id),
            severity: Severity::Warning,
            summary: format!(
                "{} core dumps failed to reach the core_pattern handler recently (pipe failed)",
                failed.len()
            ),
            cause: "The kernel could not start the core_pattern program (missing, not executable, or failing): \
                    crashes leave no core and no report."
                .into(),
            remedy: "Check the program in /proc/sys/kernel/core_pattern exists and runs; `node-doctor explain \
                     coredump-to-host`."
                .into(),
            evidence: failed
                .iter()
                .take(3)
                .map(|l| Evidence::new("kmsg", l.clone()))
                .collect(),
            subjects: vec![Subject::new(SubjectKind::Node)],
            measures: vec![Measure::count("failed_dumps", failed.len() as u64)],
            log: None,
            caused_by: Vec::new(),
            explains: Vec::new(),
        });
    }

    // The store between samples.
    if let (Some(first), Some(cd)) = (h.earliest(), &s.coredump) {
        let span = span_ms(first, s);
        for store in &cd.stores {
            let Some(before) = first
                .coredump
                .as_ref()
                .and_then(|c| c.stores.iter().find(|b| b.path == store.path))
            else {
                continue;
            };
            let grew = store.bytes.saturating_sub(before.bytes);
            let new_files = store.files.saturating_sub(before.files);
            if grew == 0 || span == 0 {
                continue;
            }
            out.findings
                .push(growth_finding(s, store, grew, new_files, span));
        }
    }
    out
}

fn measure(f: &Finding, name: &str) -> f64 {
    f.measure(name).map_or(0.0, |m| m.value)
}

fn command_finding(
    severity: Severity,
    comm: &str,
    st: &Storm,
    procs: &[Process],
    handlers: &[&Process],
    pipe_limit: Option<u64>,
    (recent, crit): (u64, u64),
) -> Finding {
    let events = st.events();
    let n = |count: u64, one: &str, many: &str| {
        format!("{count} {}", if count == 1 { one } else { many })
    };
    let mut summary = format!(
        "{comm}: {} in the last {}",
        n(events, "crash", "crashes"),
        human_duration(recent)
    );
    if st.skipped > 0 {
        summary.push_str(&format!(
            ", {} over core_pipe_limit{}",
            n(st.skipped, "dump skipped", "dumps skipped"),
            pipe_limit
                .map(|l| format!(" (now {l})"))
                .unwrap_or_default()
        ));
    }
    if st.stored > 0 {
        summary.push_str(&format!(
            ", {} ({})",
            n(st.stored, "core stored", "cores stored"),
            human_bytes(st.stored_bytes)
        ));
    }
    if !st.dumping.is_empty() {
        summary.push_str(&format!(", {} being dumped now", st.dumping.len()));
    }
    // Which containers: the processes being dumped now, else the command's live processes
    // (a crash loop restarts it).
    let mut owners: Vec<&Process> = st
        .dumping
        .iter()
        .copied()
        .filter(|p| p.in_container())
        .collect();
    let live: Vec<&Process> = procs
        .iter()
        .filter(|p| p.comm == comm && p.in_container() && p.core_dumping != Some(true))
        .collect();
    if owners.is_empty() {
        owners = live.clone();
    }
    let mut seen = BTreeSet::new();
    owners.retain(|p| seen.insert((p.owner.container_id.clone(), p.owner.pod_uid.clone())));
    if let Some(o) = owners.first() {
        summary.push_str(&format!(": {}", describe_owner(&o.owner)));
        if owners.len() > 1 {
            summary.push_str(&format!(" and {} more", owners.len().saturating_sub(1)));
        }
    }
    let latest = st
        .dumping
        .first()
        .map(|p| p.pid)
        .or_else(|| st.pids.iter().next_back().copied());
    let mut subject = Subject::new(SubjectKind::Process);
    subject.comm = Some(comm.to_string());
    subject.pid = latest;
    if let Some(p) = st.dumping.first() {
        subject = Subject::process(p);
    }
    let mut subjects = vec![subject];
    subjects.extend(owners.iter().take(5).map(|p| Subject::container(&p.owner)));

    let mut evidence: Vec<Evidence> = st
        .lines
        .iter()
        .rev()
        .take(3)
        .map(|l| Evidence::new("kmsg", l.clone()))
        .collect();
    for p in st.dumping.iter().take(3) {
        evidence.push(Evidence::new(
            format!("/proc/{}/status", p.pid),
            format!(
                "CoreDumping: 1 — {} ({}) is being dumped now, {}",
                p.pid,
                p.comm,
                describe_owner(&p.owner)
            ),
        ));
    }
    if st.dumping.is_empty() && !live.is_empty() {
        evidence.push(Evidence::new(
            "/proc",
            format!(
                "{} processes named {comm} run now in containers: {}",
                live.len(),
                owners
                    .iter()
                    .take(5)
                    .map(|p| format!("{} ({})", p.pid, describe_owner(&p.owner)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    if !handlers.is_empty() {
        evidence.push(
            Evidence::new(
                "/proc",
                format!(
                    "{} core dump handlers running now: {}",
                    handlers.len(),
                    handlers
                        .iter()
                        .take(5)
                        .map(|p| format!("{} ({})", p.pid, p.comm))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .with_threshold(pipe_limit.map_or_else(
                || "core_pipe_limit unknown".into(),
                |n| format!("core_pipe_limit {n}"),
            )),
        );
    }
    if let (Some(a), Some(b)) = (st.first_ms, st.last_ms)
        && b > a
    {
        evidence.push(Evidence::new(
            "kmsg",
            format!(
                "first {} and last crash {} apart",
                comm,
                human_duration(b.saturating_sub(a))
            ),
        ));
    }
    let per_min = events as f64 / (recent as f64 / 60_000.0).max(1.0 / 60.0);
    Finding {
        check: CHECK.id.into(),
        key: key::command(CHECK.id, comm),
        severity,
        summary,
        cause: "A process crashes again and again (a crash loop: the container restarts and crashes). Each \
                crash makes the kernel run the core_pattern handler as root on the host and write the core \
                there; with kernel.core_pipe_limit handlers busy, further dumps are skipped (\"over \
                core_pipe_limit\"), and the ones written fill the host's disk (incident 3)."
            .into(),
        remedy: format!(
            "Find why {comm} crashes (`kubectl logs --previous`, `coredumpctl info {comm}`); stop the loop \
             (scale the workload down); cap RLIMIT_CORE for containers and bound the store (see \
             coredump-to-host)."
        ),
        evidence,
        subjects,
        measures: vec![
            Measure::count("crashes", events).of(crit),
            Measure::count("skipped_dumps", st.skipped),
            Measure::count("stored_dumps", st.stored),
            Measure::new("stored_bytes", st.stored_bytes, Unit::Bytes),
            Measure::count("dumping_now", st.dumping.len() as u64),
            Measure::count("handlers_running", handlers.len() as u64).of_opt(pipe_limit),
            Measure::new("crashes_per_minute", per_min, Unit::Count),
        ],
        log: None,
        caused_by: Vec::new(),
        explains: Vec::new(),
    }
}

fn handlers_finding(handlers: &[&Process], pipe_limit: Option<u64>, busy: bool) -> Finding {
    Finding {
        check: CHECK.id.into(),
        key: key::node(CHECK.id),
        severity: if busy { Severity::Warning } else { Severity::Info },
        summary: format!(
            "{} core dump handlers running now{}",
            handlers.len(),
            if busy {
                format!(": every core_pipe_limit slot ({}) is busy, further dumps are skipped", pipe_limit.unwrap_or(0))
            } else {
                String::new()
            }
        ),
        cause: "The kernel starts the core_pattern handler for each crash and (with core_pipe_limit > 0) waits for \
                it; handlers that run long hold the slots."
            .into(),
        remedy: "See which process is being dumped (`grep CoreDumping: /proc/*/status`); check the handler is not \
                 stuck (a slow disk, a full store)."
            .into(),
        evidence: handlers
            .iter()
            .take(5)
            .map(|p| Evidence::new(format!("/proc/{}/stat", p.pid), format!("{} ({}), parent {}", p.pid, p.comm, p.ppid)))
            .collect(),
        subjects: handlers.iter().take(5).map(|p| Subject::process(p)).collect(),
        measures: vec![Measure::count("handlers_running", handlers.len() as u64).of_opt(pipe_limit)],
        log: None,
        caused_by: Vec::new(),
        explains: Vec::new(),
    }
}

fn growth_finding(
    s: &crate::model::snapshot::Snapshot,
    store: &crate::model::coredump::DumpStore,
    grew: u64,
    new_files: u64,
    span_ms: u64,
) -> Finding {
    let fs = filesystem_of(s, &store.path);
    let per_sec = grew as f64 / (span_ms as f64 / 1000.0);
    let to_full = fs.map(|f| f.bytes_avail() as f64 / per_sec.max(1.0));
    let severity = if to_full.is_some_and(|t| t < 3600.0) {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let mut measures = vec![
        Measure::new("grew_bytes", grew, Unit::Bytes),
        Measure::count("new_files", new_files),
        Measure::new("window", span_ms as f64 / 1000.0, Unit::Seconds),
        Measure::new("bytes_per_second", per_sec, Unit::Bytes),
    ];
    if let Some(f) = fs {
        measures.push(Measure::new("bytes_avail", f.bytes_avail(), Unit::Bytes));
    }
    if let Some(t) = to_full {
        measures.push(Measure::new("seconds_to_full", t, Unit::Seconds));
    }
    Finding {
        check: CHECK.id.into(),
        key: key::path(CHECK.id, &store.path),
        severity,
        summary: format!(
            "dump store {} grew by {} ({} new files) in {}{}",
            store.path,
            human_bytes(grew),
            new_files,
            human_duration(span_ms),
            to_full
                .map(|t| format!(
                    ": at this rate its filesystem is full in {}",
                    human_duration((t * 1000.0) as u64)
                ))
                .unwrap_or_default()
        ),
        cause: "Cores are being written now: a crash loop is dumping onto the host's disk.".into(),
        remedy: format!(
            "Find the crashing command (the newest files in {}); bound the store (coredump.conf MaxUse=, \
             Storage=none) and cap RLIMIT_CORE for containers.",
            store.path
        ),
        evidence: vec![Evidence::new(
            store.path.clone(),
            format!(
                "{} files, {} (was {} less {} ago); newest: {}",
                store.files,
                human_bytes(store.bytes),
                human_bytes(grew),
                human_duration(span_ms),
                store
                    .entries
                    .iter()
                    .take(3)
                    .map(|e| e.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )],
        subjects: vec![Subject::path(SubjectKind::Filesystem, store.path.clone())],
        measures,
        log: None,
        caused_by: Vec::new(),
        explains: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::common::test_support::{process, snapshot};
    use crate::model::coredump::{CoredumpHost, DumpFile, DumpStore};
    use crate::model::log::{KernelLog, LogRecord};
    use crate::model::process::CgroupMembership;

    fn at(ms: u64, text: &str) -> LogRecord {
        let mut r = LogRecord::text(text);
        r.time_ms = Some(ms);
        r
    }

    const NOW: u64 = 100 * 60_000;

    fn node(records: Vec<LogRecord>, procs: Vec<Process>) -> crate::model::snapshot::Snapshot {
        let mut s = snapshot(NOW, 10, procs);
        s.sysctls.insert(
            "kernel.core_pattern".into(),
            "|/lib/systemd/systemd-coredump %P %u %g %s %t 9223372036854775808 %h %d".into(),
        );
        s.sysctls
            .insert("kernel.core_pipe_limit".into(), "1".into());
        s.kernel_log = Some(KernelLog {
            records,
            ..KernelLog::default()
        });
        s.coredump = Some(CoredumpHost::default());
        s
    }

    fn run1(s: &crate::model::snapshot::Snapshot) -> Outcome {
        run(
            &History::new(std::slice::from_ref(s)).unwrap(),
            &CheckSettings::default(),
        )
    }

    #[test]
    fn skipped_dumps_old_and_new_format_name_the_command() {
        let s = node(
            vec![
                at(NOW - 60_000, "Pid 38693(python) over core_pipe_limit"),
                at(NOW - 60_000, "Skipping core dump"),
                at(
                    NOW - 30_000,
                    "coredump: 28149(python): over core_pipe_limit, skipping core dump",
                ),
                // Too old to count.
                at(
                    NOW - 20 * 60_000,
                    "coredump: 11(python): over core_pipe_limit, skipping core dump",
                ),
                at(
                    NOW - 1000,
                    "crash[27940]: segfault at 0 ip 000055e87ff15201 sp 00007fff44c08440 error 6 in crash[1201,55e87ff15000+1000] likely on CPU 0 (core 0, socket 0)",
                ),
            ],
            vec![],
        );
        let out = run1(&s);
        assert_eq!(out.findings.len(), 1, "{:#?}", out.findings);
        let f = &out.findings[0];
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.key, "coredump-storm/command:python");
        assert_eq!(f.subjects[0].comm.as_deref(), Some("python"));
        assert_eq!(f.subjects[0].pid, Some(38693));
        assert_eq!(f.measure("skipped_dumps").map(|m| m.value), Some(2.0));
        assert_eq!(f.measure("crashes").map(|m| m.value), Some(2.0));
    }

    #[test]
    fn a_crash_loop_with_stored_cores_and_a_dump_now_names_its_container() {
        let ctr = "7d3e9b1c00000000000000000000000000000000000000000000000000000000";
        let mut dumping = process(4242, 1, "python", 'R');
        dumping.core_dumping = Some(true);
        dumping.cgroups = vec![CgroupMembership {
            hierarchy: 0,
            controllers: String::new(),
            path: format!("/kubepods/pod0d6f2e1a-1b2c-4d3e-8f4a-5b6c7d8e9f00/{ctr}"),
        }]
        .into();
        dumping.owner = crate::attribution::owner_of(&dumping.cgroups);
        let helper = process(4300, 2, "systemd-coredum", 'S');
        let lines: Vec<LogRecord> = (0..25)
            .map(|i| {
                at(
                    NOW - 1000 * (i + 1),
                    &format!("python[{}]: segfault at 0 ip 1 sp 2 error 6", 1000 + i),
                )
            })
            .collect();
        let mut s = node(lines, vec![dumping, helper]);
        s.coredump.as_mut().unwrap().stores = vec![DumpStore {
            path: "/var/lib/systemd/coredump".into(),
            files: 1,
            bytes: 5 << 20,
            entries: vec![DumpFile {
                name: format!(
                    "core.python.0.8f1c2a3b4c5d6e7f8091a2b3c4d5e6f7.1000.{}.zst",
                    (NOW - 2000) * 1000
                ),
                bytes: 5 << 20,
                size: 50 << 20,
                mtime_ms: None,
            }],
            ..DumpStore::default()
        }];
        let out = run1(&s);
        let f = &out.findings[0];
        assert_eq!(f.severity, Severity::Critical, "{f:#?}");
        assert_eq!(f.subjects[0].pid, Some(4242));
        assert_eq!(f.subjects[1].container_id.as_deref(), Some(ctr));
        assert_eq!(f.measure("crashes").map(|m| m.value), Some(26.0));
        assert_eq!(f.measure("stored_dumps").map(|m| m.value), Some(1.0));
        assert_eq!(f.measure("dumping_now").map(|m| m.value), Some(1.0));
        let h = f.measure("handlers_running").unwrap();
        assert_eq!((h.value, h.limit), (1.0, Some(1.0)));
        // Every core_pipe_limit slot busy: its own finding.
        assert!(
            out.findings
                .iter()
                .any(|f| f.key == "coredump-storm/node" && f.severity == Severity::Warning)
        );
    }

    #[test]
    fn the_store_growing_between_samples_and_quiet_nodes() {
        let mut a = node(vec![], vec![]);
        a.coredump.as_mut().unwrap().stores = vec![DumpStore {
            path: "/var/lib/systemd/coredump".into(),
            files: 1,
            bytes: 1 << 20,
            ..DumpStore::default()
        }];
        let mut b = a.clone();
        b.collected_at_ms = NOW + 2000;
        b.coredump.as_mut().unwrap().stores[0].bytes = 9 << 20;
        b.coredump.as_mut().unwrap().stores[0].files = 2;
        let out = run(&History::new([&a, &b]).unwrap(), &CheckSettings::default());
        let g = out
            .findings
            .iter()
            .find(|f| f.key == "coredump-storm/path:/var/lib/systemd/coredump")
            .unwrap();
        assert_eq!(
            g.measure("grew_bytes").map(|m| m.value),
            Some((8u64 << 20) as f64)
        );
        assert_eq!(g.measure("new_files").map(|m| m.value), Some(1.0));
        // One lone segfault is kernel-log's business, not a storm.
        let quiet = node(vec![at(NOW - 1000, "x[1]: segfault at 0 ip 1")], vec![]);
        let out = run1(&quiet);
        assert!(
            out.findings.is_empty() && out.unknown.is_empty(),
            "{out:#?}"
        );
    }
}
