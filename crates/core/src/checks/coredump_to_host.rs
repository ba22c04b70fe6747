//! `coredump-to-host`: which containers can write core dumps onto the host's disk, how big,
//! and how much room there is (incident 3).
//!
//! `kernel.core_pattern` is one value for the machine. A pipe (`|prog`) makes the kernel start
//! the handler as root in the host's namespaces for every crash, containers' included, and
//! RLIMIT_CORE does not stop it (fs/coredump.c only passes it as `%c`; Debian's pattern passes
//! a constant instead). A file pattern is written in the crashing process's mount namespace:
//! for a container, its writable layer — on the runtime's filesystem of the host. Joined with
//! the RLIMIT_CORE and memory of every container process, systemd's coredump.conf (over its
//! defaults) and the free space where the cores land, this says per container how much one
//! crash can write and whether it fits.

use super::common::{MAX_FINDINGS, describe_owner, filesystem_of, ratio};
use super::disk_pressure::human_bytes;
use super::{CheckDef, History, Needs, Outcome, pct};
use crate::attribution::CgroupOwner;
use crate::config::{CheckSettings, SettingDef};
use crate::finding::{Evidence, Finding, Measure, Severity, Subject, SubjectKind, Unit, key};
use crate::knowledge::coredump::{CorePattern, Mode, Storage, SystemdConfig, knowledge};
use crate::model::fs::{FilesystemUsage, Role};
use crate::model::process::Process;
use crate::model::snapshot::Snapshot;
use std::collections::BTreeMap;

pub const CHECK: CheckDef = CheckDef {
    id: "coredump-to-host",
    title: "containers that can dump cores onto the host's disk: how big, where, and the room left",
    doc: include_str!("coredump_to_host.md"),
    needs: Needs {
        processes: true,
        filesystems: true,
        coredump: true,
        ..Needs::NONE
    },
    settings: &[WARN, CRIT],
    condition: Some(super::ConditionDef {
        type_: "CoreDumpsCanFillHost",
        true_reason: "ContainerCoresCanFillDisk",
        false_reason: "CoreDumpsBounded",
    }),
    run,
};

pub const WARN: SettingDef = SettingDef::ratio(
    "warn",
    0.25,
    "warning when one container's largest core is this share of the free space where cores land \
     (or the dumps core_pipe_limit lets run at once fill it together)",
);
pub const CRIT: SettingDef = SettingDef::ratio(
    "crit",
    1.0,
    "critical when one container's largest core is this share of the free space",
);

/// Where cores go and what bounds them.
struct Dest {
    /// "systemd-coredump (Storage=external)", "a custom handler /opt/x", "the crashing
    /// container's writable layer".
    via: String,
    /// The host directory the bytes land in, and how it was chosen.
    dir: Option<String>,
    dir_note: Option<&'static str>,
    /// The most one core writes, by configuration (`None`: unbounded).
    cap: Option<u64>,
    /// RLIMIT_CORE is enforced (by the kernel, or a handler given `%c` that honours it).
    rlimit_enforced: bool,
    /// Nothing reaches any disk (Storage=none with ProcessSizeMax=0, a missing handler).
    writes_nothing: Option<String>,
    evidence: Vec<Evidence>,
    measures: Vec<Measure>,
}

/// What one container can dump.
struct Can<'a> {
    owner: CgroupOwner,
    /// The process with the largest core.
    top: &'a Process,
    /// Bytes of its core (`None`: unknown, unbounded).
    bytes: Option<u64>,
    processes: u64,
}

fn run(h: &History, cfg: &CheckSettings) -> Outcome {
    let s = h.current();
    let (warn, crit) = (cfg.ratio(&WARN), cfg.ratio(&CRIT));
    let raw = match s.sysctl("kernel.core_pattern") {
        Ok(r) => r,
        Err(e) => return Outcome::unknown(e),
    };
    let procs = match s.processes() {
        Ok(p) => p,
        Err(e) => return Outcome::unknown(e),
    };
    if s.coredump.is_none() {
        return Outcome::unknown(s.not_collected("the core dump configuration files"));
    }
    let k = match knowledge() {
        Ok(k) => k,
        Err(e) => return Outcome::unknown(e),
    };
    let pattern = CorePattern::parse(raw);
    let pipe_limit = s.sysctl_u64("kernel.core_pipe_limit").ok();
    let dest = destination(s, &pattern, pipe_limit, k);
    let mut out = Outcome::default();

    // Containers' processes and what each can dump.
    let mut by_owner: BTreeMap<String, Can> = BTreeMap::new();
    let (mut no_limits, mut capped) = (0u64, 0u64);
    for p in procs.iter().filter(|p| p.in_container() && !p.is_zombie()) {
        let Some(rl) = p.rlimit_core else {
            no_limits = no_limits.saturating_add(1);
            continue;
        };
        // A pipe refuses RLIMIT_CORE 1 (the recursion guard); a file pattern writes nothing at 0.
        if (dest.rlimit_enforced && rl.soft == Some(0)) || (pattern.is_pipe() && rl.soft == Some(1))
        {
            capped = capped.saturating_add(1);
            continue;
        }
        let limit = if dest.rlimit_enforced { rl.soft } else { None };
        let bytes = [p.mem_anon_bytes, limit, dest.cap]
            .into_iter()
            .flatten()
            .min();
        let id = p
            .owner
            .container_id
            .clone()
            .or_else(|| p.owner.pod_uid.clone())
            .unwrap_or_default();
        let e = by_owner.entry(id).or_insert_with(|| Can {
            owner: p.owner.clone(),
            top: p,
            bytes,
            processes: 0,
        });
        e.processes = e.processes.saturating_add(1);
        if bytes.unwrap_or(u64::MAX) > e.bytes.unwrap_or(u64::MAX) {
            e.bytes = bytes;
            e.top = p;
        }
    }
    if no_limits > 0 {
        out.unknown.push(format!(
            "{no_limits} container processes without a readable /proc/PID/limits: their RLIMIT_CORE is not known"
        ));
    }
    let containers = procs.iter().filter(|p| p.in_container()).count();
    if let Some(why) = &dest.writes_nothing {
        if containers > 0 {
            out.findings.push(node_info(
                &dest,
                &pattern,
                format!("core dumps of containers reach no disk: {why}"),
                by_owner.len(),
            ));
        }
        return out;
    }

    let fs = dest.dir.as_deref().and_then(|d| filesystem_of(s, d));
    if dest.dir.is_some() && fs.is_none() {
        out.unknown.push(format!(
            "the free space where cores land ({}) was not measured",
            dest.dir.as_deref().unwrap_or("?")
        ));
    }
    let free = fs.map(FilesystemUsage::bytes_avail);
    // The dumps that can run at once: core_pipe_limit for a pipe (0: unlimited).
    let mut sizes: Vec<(u64, &String)> = by_owner
        .iter()
        .map(|(id, c)| (c.bytes.unwrap_or(u64::MAX), id))
        .collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    let at_once = match (pattern.is_pipe(), pipe_limit) {
        (true, Some(n)) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX),
        _ => sizes.len(),
    };
    let together: u64 = sizes
        .iter()
        .take(at_once)
        .fold(0u64, |a, (b, _)| a.saturating_add(*b));
    let together_fills = free.is_some_and(|f| sizes.len() > 1 && together >= f);
    let at_once = at_once.min(sizes.len());
    let largest: Vec<&String> = sizes.iter().take(at_once).map(|(_, id)| *id).collect();

    let mut findings: Vec<(Severity, u64, Finding)> = Vec::new();
    let mut small: Vec<&Can> = Vec::new();
    for (id, c) in &by_owner {
        let bytes = c.bytes.unwrap_or(u64::MAX);
        let r = free.map(|f| ratio(bytes, f));
        let mut severity = match r {
            Some(r) if r >= crit => Some(Severity::Critical),
            Some(r) if r >= warn => Some(Severity::Warning),
            Some(_) => None,
            // Room unknown: unbounded cores are a warning, bounded ones noted.
            None if c.bytes.is_none() => Some(Severity::Warning),
            None => None,
        };
        if severity.is_none() && together_fills && largest.contains(&id) {
            severity = Some(Severity::Warning);
        }
        match severity {
            Some(sev) => findings.push((
                sev,
                bytes,
                container_finding(
                    sev,
                    c,
                    &dest,
                    &pattern,
                    fs,
                    (warn, crit),
                    by_owner.len(),
                    together_fills.then_some((together, at_once)),
                ),
            )),
            None => small.push(c),
        }
    }
    findings.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    let total = findings.len();
    for (i, (_, _, f)) in findings.into_iter().enumerate() {
        if i < MAX_FINDINGS {
            out.findings.push(f);
        } else if i == MAX_FINDINGS {
            out.findings.push(Finding {
                check: CHECK.id.into(),
                key: key::more(CHECK.id),
                severity: Severity::Warning,
                summary: format!(
                    "and {} more containers that can dump cores onto the host",
                    total.saturating_sub(MAX_FINDINGS)
                ),
                cause: String::new(),
                remedy: String::new(),
                evidence: vec![],
                subjects: vec![],
                measures: vec![Measure::count(
                    "containers",
                    total.saturating_sub(MAX_FINDINGS) as u64,
                )],
                log: None,
                caused_by: Vec::new(),
                explains: Vec::new(),
            });
        }
    }
    // Configured sanely: a handler or a host path is configured and no container's core
    // comes near the room it has.
    let configured = !matches!(pattern.mode, Mode::File { relative: true, .. });
    // Bounded only when something was seen to be bounded (not when no limits were readable).
    let judged = !small.is_empty() || capped > 0;
    if total == 0 && containers > 0 && configured && judged {
        let why = if small.is_empty() {
            format!(
                "no container process can dump ({capped} capped by RLIMIT_CORE{})",
                if dest.rlimit_enforced { "" } else { " 1" }
            )
        } else {
            let largest = small.iter().filter_map(|c| c.bytes).max().unwrap_or(0);
            format!(
                "{} containers can dump, the largest core {} against {} free",
                small.len(),
                human_bytes(largest),
                free.map(human_bytes)
                    .unwrap_or_else(|| "an unmeasured amount".into())
            )
        };
        out.findings.push(node_info(
            &dest,
            &pattern,
            format!("core dumps of containers are bounded: {why}"),
            small.len(),
        ));
    }
    out
}

/// Where cores of `pattern` land on this host and what bounds them.
fn destination(
    s: &Snapshot,
    p: &CorePattern,
    pipe_limit: Option<u64>,
    k: &crate::knowledge::coredump::Knowledge,
) -> Dest {
    let cd = s.coredump.clone().unwrap_or_default();
    let mut evidence = vec![Evidence::new(
        "/proc/sys/kernel/core_pattern",
        describe_pattern(p),
    )];
    let mut measures = Vec::new();
    if let Some(n) = pipe_limit {
        evidence.push(Evidence::new(
            "/proc/sys/kernel/core_pipe_limit",
            if n == 0 {
                "0: piped dumps are not limited in number (and the kernel does not wait for handlers)".to_string()
            } else {
                format!("{n}: at most {n} piped dumps at once; more are skipped (\"over core_pipe_limit\")")
            },
        ));
        measures.push(Measure::count("core_pipe_limit", n));
    }
    let mut dest = Dest {
        via: String::new(),
        dir: None,
        dir_note: None,
        cap: None,
        rlimit_enforced: false,
        writes_nothing: None,
        evidence,
        measures,
    };
    if let (Some(h), true) = (&cd.handler, p.is_pipe())
        && !h.exists
    {
        dest.via = format!("a handler that does not exist ({})", h.path);
        dest.writes_nothing = Some(format!(
            "core_pattern pipes to {}, which is not on the host: every dump fails (\"pipe failed\")",
            h.path
        ));
        dest.evidence
            .push(Evidence::new(h.path.clone(), "no such file"));
        return dest;
    }
    match (&p.mode, p.handler.as_deref()) {
        (Mode::Pipe { .. }, Some("systemd-coredump")) => {
            let c = k.systemd_config(&cd.conf_files);
            let storage = match c.storage.value {
                Storage::External => "external",
                Storage::Journal => "journal",
                Storage::None => "none",
            };
            dest.via = format!("systemd-coredump (Storage={storage})");
            dest.cap = Some(c.max_core_bytes());
            dest.rlimit_enforced = p.passes_rlimit;
            // Journal storage lands in the journal's directory; external (and the temporary
            // of Storage=none) in the coredump store.
            dest.dir = Some(
                if c.storage.value == Storage::Journal {
                    "/var/log/journal"
                } else {
                    "/var/lib/systemd/coredump"
                }
                .to_string(),
            );
            dest.dir_note = Some("the store's filesystem");
            if c.max_core_bytes() == 0 {
                dest.writes_nothing = Some(format!(
                    "systemd-coredump has Storage={storage} and ProcessSizeMax=0 (nothing is written)"
                ));
            }
            dest.evidence
                .push(Evidence::new("coredump.conf", describe_systemd(&c)));
            dest.measures.push(Measure::new(
                "process_size_max",
                c.process_size_max.value,
                Unit::Bytes,
            ));
            dest.measures.push(Measure::new(
                "max_core_bytes",
                c.max_core_bytes(),
                Unit::Bytes,
            ));
        }
        (Mode::Pipe { .. }, Some(id)) => {
            let handler = k.handler(id);
            dest.via = format!(
                "{id} (stores in {})",
                handler.map_or("?", |h| h.storage.as_str())
            );
            dest.dir = handler.map(|h| h.storage.clone());
            dest.dir_note = Some("the store's filesystem");
            dest.rlimit_enforced = p.passes_rlimit && handler.is_some_and(|h| h.honours_rlimit);
        }
        (Mode::Pipe { program, .. }, None) => {
            dest.via = format!("a custom handler ({program})");
            // It runs in the host's mount namespace as root: whatever it writes is on the
            // host; where is its own business. The root filesystem is the assumption.
            dest.dir = Some("/".into());
            dest.dir_note = Some("assumed: the host's root filesystem");
            dest.evidence.push(Evidence::new(
                program.clone(),
                "a custom handler: where it stores cores is not known; it runs as root in the host's \
                 namespaces, so the host's root filesystem is assumed",
            ));
        }
        (Mode::File { relative, .. }, _) => {
            dest.via = if *relative {
                "a file in the crashing process's cwd: a container's writable layer".into()
            } else {
                "a file inside the crashing process's mount namespace: a container's writable layer"
                    .into()
            };
            dest.rlimit_enforced = true;
            // A container's writable layer lives under the runtime's state directory.
            let runtime = s
                .filesystems
                .iter()
                .flatten()
                .find(|f| f.has_role(Role::Containerd) || f.has_role(Role::Docker));
            dest.dir = Some(
                runtime
                    .map(|f| f.first_path().to_string())
                    .unwrap_or_else(|| "/".into()),
            );
            dest.dir_note = Some("the container runtime's filesystem");
        }
        (Mode::Socket { path }, _) => {
            dest.via = format!("a coredump socket server ({path})");
            dest.dir = Some("/".into());
            dest.dir_note = Some("assumed: the host's root filesystem");
        }
    }
    dest
}

fn describe_pattern(p: &CorePattern) -> String {
    match &p.mode {
        Mode::Pipe { program, .. } => format!(
            "{:?}: a pipe to {} — the kernel runs it as root in the host's namespaces for every crash, \
             containers' included; RLIMIT_CORE is {}",
            p.raw,
            p.handler
                .clone()
                .unwrap_or_else(|| format!("the custom handler {program}")),
            if p.passes_rlimit {
                "passed to it as %c (the handler decides)"
            } else {
                "not passed (%c absent): a limit of 0 does not stop the dump"
            }
        ),
        Mode::File { relative: true, .. } => format!(
            "{:?}: a file relative to the crashing process's cwd (in a container: its writable layer); \
             RLIMIT_CORE is enforced by the kernel",
            p.raw
        ),
        Mode::File { .. } => format!(
            "{:?}: a file inside the crashing process's mount namespace (in a container: its writable \
             layer, not the host's path); RLIMIT_CORE is enforced by the kernel",
            p.raw
        ),
        Mode::Socket { .. } => format!("{:?}: an AF_UNIX coredump socket (6.16+)", p.raw),
    }
}

fn describe_systemd(c: &SystemdConfig) -> String {
    let from = |f: &Option<String>| match f {
        Some(p) => format!(" ({p})"),
        None => " (default)".into(),
    };
    let opt = |v: &Option<u64>| v.map(human_bytes).unwrap_or_else(|| "empty".into());
    let storage = match c.storage.value {
        Storage::External => "external",
        Storage::Journal => "journal",
        Storage::None => "none",
    };
    format!(
        "Storage={storage}{}, ProcessSizeMax={}{}, ExternalSizeMax={}{}, MaxUse={}{}, KeepFree={}{}",
        from(&c.storage.from),
        human_bytes(c.process_size_max.value),
        from(&c.process_size_max.from),
        human_bytes(c.external_size_max.value),
        from(&c.external_size_max.from),
        opt(&c.max_use.value),
        from(&c.max_use.from),
        opt(&c.keep_free.value),
        from(&c.keep_free.from),
    )
}

#[allow(clippy::too_many_arguments)]
fn container_finding(
    severity: Severity,
    c: &Can,
    dest: &Dest,
    pattern: &CorePattern,
    fs: Option<&FilesystemUsage>,
    (_warn, crit): (f64, f64),
    containers: usize,
    together: Option<(u64, usize)>,
) -> Finding {
    let who = describe_owner(&c.owner);
    let size = c
        .bytes
        .map(human_bytes)
        .unwrap_or_else(|| "an unbounded core (its memory size is not known)".into());
    let onto = fs.map_or_else(
        || "the host".to_string(),
        |f| {
            format!(
                "{} which has {} free",
                f.mount_point,
                human_bytes(f.bytes_avail())
            )
        },
    );
    let mut summary = format!(
        "{who} can dump up to {size} onto {onto} (through {})",
        dest.via
    );
    if let Some((bytes, n)) = together {
        summary.push_str(&format!(
            "; {n} containers crashing at once can write {} together",
            human_bytes(bytes)
        ));
    }
    let p = c.top;
    let mut evidence = dest.evidence.clone();
    let limit = p.rlimit_core.map(|r| {
        let v = |x: Option<u64>| x.map_or_else(|| "unlimited".into(), human_bytes);
        format!("Max core file size: soft {}, hard {}", v(r.soft), v(r.hard))
    });
    evidence.push(Evidence::new(
        format!("/proc/{}/limits", p.pid),
        format!(
            "{} ({} {}): {}{}",
            p.pid,
            p.comm,
            who,
            limit.unwrap_or_default(),
            if dest.rlimit_enforced {
                ""
            } else {
                " — not enforced for this pattern"
            }
        ),
    ));
    if let Some(m) = p.mem_anon_bytes {
        evidence.push(Evidence::new(
            format!("/proc/{}/status", p.pid),
            format!(
                "RssAnon + RssShmem {}: about what its core holds (anonymous memory; file mappings are not dumped)",
                human_bytes(m)
            ),
        ));
    }
    if let Some(f) = fs {
        evidence.push(
            Evidence::new(
                format!("statvfs({})", f.first_path()),
                format!(
                    "{} free of {} ({} used), {}",
                    human_bytes(f.bytes_avail()),
                    human_bytes(f.blocks_total.saturating_mul(f.block_size)),
                    pct(f.blocks_used_ratio().unwrap_or(0.0)),
                    dest.dir_note.unwrap_or("")
                ),
            )
            .with_threshold(format!("critical when one core is {} of it", pct(crit))),
        );
    }
    let mut subjects = vec![Subject::container(&c.owner), Subject::process(p)];
    if let Some(f) = fs {
        subjects.push(Subject::path(
            SubjectKind::Filesystem,
            f.mount_point.clone(),
        ));
    }
    let mut measures = vec![
        Measure::count("processes", c.processes),
        Measure::count("containers", containers as u64),
    ];
    match c.bytes {
        Some(b) => measures.insert(
            0,
            Measure::new("dump_bytes", b, Unit::Bytes).of_opt(fs.map(FilesystemUsage::bytes_avail)),
        ),
        // Neither its memory size nor any limit is known: nothing bounds it.
        None => measures.push(Measure::count("dump_bytes_unbounded", 1u64)),
    }
    if let Some(f) = fs {
        measures.push(Measure::new("bytes_avail", f.bytes_avail(), Unit::Bytes));
    }
    if let Some(soft) = p.rlimit_core.and_then(|r| r.soft) {
        measures.push(Measure::new("rlimit_core", soft, Unit::Bytes));
    }
    measures.extend(dest.measures.iter().cloned());
    let id = c.owner.container_id.as_deref();
    Finding {
        check: CHECK.id.into(),
        key: match (id, &c.owner.pod_uid) {
            (Some(id), _) => key::container(CHECK.id, id),
            (None, Some(pod)) => key::pod(CHECK.id, pod),
            (None, None) => key::node(CHECK.id),
        },
        severity,
        summary,
        cause: cause(pattern, dest),
        remedy: remedy(pattern),
        evidence,
        subjects,
        measures,
        log: None,
        caused_by: Vec::new(),
        explains: Vec::new(),
    }
}

fn cause(p: &CorePattern, dest: &Dest) -> String {
    if p.is_pipe() {
        format!(
            "kernel.core_pattern is not namespaced: it pipes every crash's core to {}, which the kernel starts \
             as root in the host's namespaces, so containers' cores land on the host's disk. The kernel does not \
             enforce RLIMIT_CORE for a pipe{}; container processes inherit an unlimited RLIMIT_CORE from \
             containerd/dockerd (LimitCORE=infinity) unless the runtime caps it. While a core is written it \
             is an unlinked temporary that df counts and du does not find.",
            dest.via,
            if p.passes_rlimit {
                " (it is handed over as %c)"
            } else {
                " and this pattern does not even hand it over (%c absent), so `ulimit -c 0` changes nothing"
            }
        )
    } else {
        "A file core_pattern is written inside the crashing process's mount namespace: a container's core \
         lands in its writable layer, which lives on the host's disk under the runtime's state directory; \
         containers inherit an unlimited RLIMIT_CORE from containerd/dockerd (LimitCORE=infinity)."
            .into()
    }
}

fn remedy(p: &CorePattern) -> String {
    let mut r = String::from(
        "Cap RLIMIT_CORE for containers: `LimitCORE=0` in a containerd/docker systemd drop-in \
         (`systemctl edit containerd`), or RLIMIT_CORE 0 in containerd's base_runtime_spec / dockerd's \
         `default-ulimits` (core=0:0)",
    );
    if p.handler.as_deref() == Some("systemd-coredump") {
        r.push_str(
            "; bound systemd-coredump in /etc/systemd/coredump.conf.d/*.conf: `Storage=none` and \
             `ProcessSizeMax=0` to keep no cores, or `ExternalSizeMax=`, `ProcessSizeMax=`, `MaxUse=`, \
             `KeepFree=` sized for the disk",
        );
        if !p.passes_rlimit {
            r.push_str(
                "; pass %c instead of the constant in kernel.core_pattern (a sysctl.d file) so RLIMIT_CORE \
                 0 is honoured",
            );
        }
    } else if p.is_pipe() {
        r.push_str("; make the handler honour %c and bound what it stores");
    }
    r.push_str("; see `node-doctor sysctl explain kernel.core_pattern`.");
    r
}

fn node_info(dest: &Dest, pattern: &CorePattern, summary: String, containers: usize) -> Finding {
    Finding {
        check: CHECK.id.into(),
        key: key::node(CHECK.id),
        severity: Severity::Info,
        summary,
        cause: cause(pattern, dest),
        remedy: "Nothing to do; keep RLIMIT_CORE capped for containers.".into(),
        evidence: dest.evidence.clone(),
        subjects: vec![Subject::new(SubjectKind::Node)],
        measures: {
            let mut m = vec![Measure::count("containers", containers as u64)];
            m.extend(dest.measures.iter().cloned());
            m
        },
        log: None,
        caused_by: Vec::new(),
        explains: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::common::test_support::{process, snapshot};
    use crate::model::coredump::{ConfFile, CoredumpHost, HandlerFile};
    use crate::model::process::{CgroupMembership, Rlimit};

    const CTR: &str = "3f1c9a27d0b4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e";
    const POD: &str = "5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c";

    fn ctr_process(pid: i32, soft: Option<u64>, anon: u64) -> Process {
        let mut p = process(pid, 1, "python", 'S');
        p.cgroups = vec![CgroupMembership {
            hierarchy: 8,
            controllers: "pids".into(),
            path: format!("/kubepods/burstable/pod{POD}/{CTR}"),
        }]
        .into();
        p.owner = crate::attribution::owner_of(&p.cgroups);
        p.rlimit_core = Some(Rlimit { soft, hard: None });
        p.mem_anon_bytes = Some(anon);
        p
    }

    fn root_fs(avail: u64) -> FilesystemUsage {
        FilesystemUsage {
            paths: vec!["/".into(), "/var/lib/systemd/coredump".into()],
            roles: vec![Role::Root, Role::Coredump],
            mount_point: "/".into(),
            fs_type: Some("ext4".into()),
            source: Some("/dev/vda".into()),
            device: "254:0".into(),
            block_size: 4096,
            blocks_total: 10 << 20,
            blocks_free: avail / 4096,
            blocks_avail: avail / 4096,
            inodes_total: 1000,
            inodes_free: 900,
        }
    }

    fn node(pattern: &str, procs: Vec<Process>, avail: u64, conf: &[(&str, &str)]) -> Snapshot {
        let mut s = snapshot(1000, 10, procs);
        s.sysctls
            .insert("kernel.core_pattern".into(), pattern.into());
        s.sysctls
            .insert("kernel.core_pipe_limit".into(), "16".into());
        s.filesystems = Some(vec![root_fs(avail)]);
        s.coredump = Some(CoredumpHost {
            conf_files: vec![ConfFile {
                path: "/etc/systemd/coredump.conf".into(),
                settings: conf
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            }],
            handler: Some(HandlerFile {
                path: "/lib/systemd/systemd-coredump".into(),
                exists: true,
            }),
            stores: vec![],
        });
        s
    }

    const DEBIAN: &str = "|/lib/systemd/systemd-coredump %P %u %g %s %t 9223372036854775808 %h %d";
    const UPSTREAM: &str = "|/usr/lib/systemd/systemd-coredump %P %u %g %s %t %c %h %d";

    fn run1(s: &Snapshot) -> Outcome {
        run(
            &History::new(std::slice::from_ref(s)).unwrap(),
            &CheckSettings::default(),
        )
    }

    #[test]
    fn an_unlimited_container_with_debians_pattern_can_fill_the_root() {
        // 3 GiB of anonymous memory, 2 GiB free, systemd's 32 GiB default cap: critical.
        let s = node(DEBIAN, vec![ctr_process(4824, None, 3 << 30)], 2 << 30, &[]);
        let out = run1(&s);
        assert_eq!(out.findings.len(), 1, "{:#?}", out.findings);
        let f = &out.findings[0];
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.key, format!("coredump-to-host/container:{CTR}"));
        assert_eq!(f.subjects[0].container_id.as_deref(), Some(CTR));
        assert_eq!(f.subjects[0].pod.as_deref(), Some(POD));
        assert_eq!(f.subjects[1].pid, Some(4824));
        let d = f.measure("dump_bytes").unwrap();
        assert_eq!(
            (d.value, d.limit),
            ((3u64 << 30) as f64, Some((2u64 << 30) as f64))
        );
        assert_eq!(
            f.measure("max_core_bytes").map(|m| m.value),
            Some((32u64 << 30) as f64)
        );

        // RLIMIT_CORE 0 does not help: Debian's pattern does not pass %c.
        let s = node(
            DEBIAN,
            vec![ctr_process(4824, Some(0), 3 << 30)],
            2 << 30,
            &[],
        );
        assert_eq!(run1(&s).findings[0].severity, Severity::Critical);
        // With upstream's %c, systemd-coredump honours RLIMIT_CORE 0: bounded, info.
        let s = node(
            UPSTREAM,
            vec![ctr_process(4824, Some(0), 3 << 30)],
            2 << 30,
            &[],
        );
        let out = run1(&s);
        assert_eq!(out.findings.len(), 1);
        assert_eq!(out.findings[0].severity, Severity::Info);
        assert_eq!(out.findings[0].key, "coredump-to-host/node");
    }

    #[test]
    fn coredump_conf_bounds_the_core_and_storage_none_writes_nothing() {
        // ExternalSizeMax/ProcessSizeMax of 256M against 2 GiB free: 12.5 %, below the warning.
        let capped = node(
            DEBIAN,
            vec![ctr_process(4824, None, 3 << 30)],
            2 << 30,
            &[("ProcessSizeMax", "256M"), ("ExternalSizeMax", "256M")],
        );
        let out = run1(&capped);
        assert_eq!(out.findings.len(), 1);
        assert_eq!(out.findings[0].severity, Severity::Info);
        assert!(
            out.findings[0]
                .summary
                .starts_with("core dumps of containers are bounded")
        );
        // A 1G cap on a 2 GiB disk: warning (50 %).
        let half = node(
            DEBIAN,
            vec![ctr_process(4824, None, 3 << 30)],
            2 << 30,
            &[("ProcessSizeMax", "1G"), ("ExternalSizeMax", "1G")],
        );
        assert_eq!(run1(&half).findings[0].severity, Severity::Warning);
        let none = node(
            DEBIAN,
            vec![ctr_process(4824, None, 3 << 30)],
            1 << 20,
            &[("Storage", "none"), ("ProcessSizeMax", "0")],
        );
        let out = run1(&none);
        assert_eq!(out.findings.len(), 1);
        assert_eq!(out.findings[0].severity, Severity::Info);
        assert!(out.findings[0].summary.contains("reach no disk"));
    }

    #[test]
    fn many_small_containers_together_and_file_patterns() {
        // 20 containers of 200 MiB each, 1 GiB free, core_pipe_limit 16: together they fill it.
        let procs: Vec<Process> = (0..20)
            .map(|i| {
                let mut p = ctr_process(5000 + i, None, 200 << 20);
                let mut c = p.cgroups.to_vec();
                c[0].path = format!("/kubepods/burstable/pod{POD}/{:064x}", i + 1);
                p.cgroups = c.into();
                p.owner = crate::attribution::owner_of(&p.cgroups);
                p
            })
            .collect();
        let s = node(DEBIAN, procs, 1 << 30, &[]);
        let out = run1(&s);
        let warnings = out
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .count();
        assert_eq!(warnings, 16, "the 16 that can dump at once");
        assert!(
            out.findings[0]
                .summary
                .contains("16 containers crashing at once")
        );

        // The kernel default "core": RLIMIT_CORE 0 everywhere, nothing to say.
        let s = node(
            "core",
            vec![ctr_process(4824, Some(0), 3 << 30)],
            1 << 30,
            &[],
        );
        let out = run1(&s);
        assert!(
            out.findings.is_empty() && out.unknown.is_empty(),
            "{out:#?}"
        );
        // "core" with an unlimited container: its writable layer on the (root) filesystem.
        let s = node("core", vec![ctr_process(4824, None, 3 << 30)], 1 << 30, &[]);
        let f = &run1(&s).findings[0];
        assert_eq!(f.severity, Severity::Critical);
        assert!(f.summary.contains("writable layer"), "{}", f.summary);
    }

    #[test]
    fn a_missing_handler_and_no_snapshot_parts() {
        let mut s = node(DEBIAN, vec![ctr_process(4824, None, 3 << 30)], 1 << 30, &[]);
        s.coredump
            .as_mut()
            .unwrap()
            .handler
            .as_mut()
            .unwrap()
            .exists = false;
        let out = run1(&s);
        assert_eq!(out.findings[0].severity, Severity::Info);
        assert!(
            out.findings[0].summary.contains("does not exist")
                || out.findings[0].summary.contains("not on the host")
        );
        s.coredump = None;
        assert!(run1(&s).inconclusive);
    }
}
