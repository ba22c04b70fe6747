//! `fd-exhaustion`: open file handles system-wide against `fs.file-max`.
//!
//! The kernel allocates a `struct file` for every open file, socket and pipe; `fs.file-nr`
//! shows how many are allocated. Past `fs.file-max`, `open`/`socket`/`pipe` fail with ENFILE
//! for every non-root process on the node and the kernel logs "VFS: file-max limit N reached"
//! (incident 4: dockerd leaked a connection per `docker stop` retry).

use super::common::ratio as frac;
use super::{CheckDef, History, Needs, Outcome, pct};
use crate::config::{CheckSettings, SettingDef};
use crate::finding::{Evidence, Finding, Measure, Severity, Subject, key};

pub const CHECK: CheckDef = CheckDef {
    id: "fd-exhaustion",
    title: "open file handles (fs.file-nr) near fs.file-max",
    doc: include_str!("fd_exhaustion.md"),
    needs: Needs {
        fds: true,
        ..Needs::NONE
    },
    settings: &[WARN, CRIT],
    condition: Some(super::ConditionDef {
        type_: "FileHandleExhaustion",
        true_reason: "FileHandlesNearMax",
        false_reason: "FileHandlesWithinMax",
    }),
    run,
};

pub const WARN: SettingDef =
    SettingDef::ratio("warn", 0.70, "warning at this share of fs.file-max");
pub const CRIT: SettingDef =
    SettingDef::ratio("crit", 0.90, "critical at this share of fs.file-max");
const TOP: usize = 5;

/// `fs.file-nr` is "allocated unused max" (unused is always 0 since 2.6).
pub fn parse_file_nr(text: &str) -> Option<(u64, u64, u64)> {
    let mut f = text.split_whitespace().map(|v| v.parse::<u64>().ok());
    Some((f.next()??, f.next()??, f.next()??))
}

fn run(h: &History, cfg: &CheckSettings) -> Outcome {
    let s = h.current();
    let (warn, crit) = (cfg.ratio(&WARN), cfg.ratio(&CRIT));
    let file_nr = match s.sysctl("fs.file-nr") {
        Ok(v) => v,
        Err(why) => return Outcome::unknown(why),
    };
    let Some((allocated, unused, nr_max)) = parse_file_nr(file_nr) else {
        return Outcome::unknown(format!("/proc/sys/fs/file-nr: malformed: {file_nr:?}"));
    };
    let file_max = s.sysctl_u64("fs.file-max").unwrap_or(nr_max);
    if file_max == 0 {
        return Outcome::unknown("fs.file-max reads 0");
    }
    let in_use = allocated.saturating_sub(unused);
    let ratio = frac(in_use, file_max);
    let Some(severity) = Severity::from_ratio(ratio, warn, crit) else {
        return Outcome::default();
    };

    let mut top: Vec<_> = s
        .process_list()
        .iter()
        .filter(|p| p.open_fds.is_some())
        .collect();
    top.sort_by(|a, b| b.open_fds.cmp(&a.open_fds).then(a.pid.cmp(&b.pid)));
    let top: Vec<_> = top.into_iter().take(TOP).collect();
    let mut evidence = vec![
        Evidence::new(
            "/proc/sys/fs/file-nr",
            format!("{allocated} allocated, {unused} unused"),
        )
        .with_threshold(format!(
            "warning {} / critical {} of fs.file-max {file_max}",
            pct(warn),
            pct(crit)
        )),
        Evidence::new("/proc/sys/fs/file-max", file_max.to_string()),
    ];
    for p in &top {
        evidence.push(Evidence::new(
            format!("/proc/{}/fd", p.pid),
            format!(
                "{} ({}) holds {} fds",
                p.pid,
                p.comm,
                p.open_fds.unwrap_or(0)
            ),
        ));
    }
    let mut outcome = Outcome::found(vec![Finding {
        check: CHECK.id.into(),
        key: key::node(CHECK.id),
        measures: vec![Measure::count("file_handles", in_use).of(file_max)],
        log: None,
        caused_by: Vec::new(),
        explains: Vec::new(),
        severity,
        summary: format!("{in_use} of {file_max} file handles allocated ({})", pct(ratio)),
        cause: "Every open file, socket and pipe holds a kernel file handle; past fs.file-max the kernel refuses \
                new ones (ENFILE, 'VFS: file-max limit reached') for every non-root process on the node. A \
                steadily growing holder is a leak, often a runtime daemon keeping connections to a stuck container."
            .into(),
        remedy: "Find the holders: `for p in /proc/[0-9]*; do echo \"$(ls $p/fd 2>/dev/null | wc -l) $p $(cat $p/comm)\"; \
                 done | sort -rn | head`. Restart or fix the leaking process (for a runtime daemon, first resolve the \
                 container stuck in D state it keeps retrying). Stopgap: `sysctl -w fs.file-max=<higher>`."
            .into(),
        evidence,
        subjects: top.iter().map(|p| Subject::process(p)).collect(),
    }]);
    if let Err(why) = s.processes() {
        outcome.unknown.push(format!("top holders unknown: {why}"));
    }
    outcome
}

#[cfg(test)]
mod tests {
    #[test]
    fn file_nr_forms() {
        assert_eq!(
            super::parse_file_nr("304\t0\t2466177\n"),
            Some((304, 0, 2466177))
        );
        assert_eq!(super::parse_file_nr("1 2"), None);
        assert_eq!(super::parse_file_nr("a b c"), None);
    }
}
