//! `fd-exhaustion`: open file handles system-wide against `fs.file-max`.
//!
//! The kernel allocates a `struct file` for every open file, socket and pipe; `fs.file-nr`
//! shows how many are allocated. Past `fs.file-max`, `open`/`socket`/`pipe` fail with ENFILE
//! for every non-root process on the node and the kernel logs "VFS: file-max limit N reached"
//! (incident 4: dockerd leaked a connection per `docker stop` retry).

use super::{CheckDef, History, Outcome, pct};
use crate::finding::{Evidence, Finding, Severity, Subject};

pub const CHECK: CheckDef = CheckDef {
    id: "fd-exhaustion",
    title: "open file handles (fs.file-nr) near fs.file-max",
    doc: include_str!("../../../../docs/checks/fd-exhaustion.md"),
    run,
};

pub const WARN: f64 = 0.70;
pub const CRIT: f64 = 0.90;
const TOP: usize = 5;

/// `fs.file-nr` is "allocated unused max" (unused is always 0 since 2.6).
pub fn parse_file_nr(text: &str) -> Option<(u64, u64, u64)> {
    let mut f = text.split_whitespace().map(|v| v.parse::<u64>().ok());
    Some((f.next()??, f.next()??, f.next()??))
}

fn run(h: &History) -> Outcome {
    let s = h.current();
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
    let ratio = in_use as f64 / file_max as f64;
    let Some(severity) = Severity::from_ratio(ratio, WARN, CRIT) else {
        return Outcome::default();
    };

    let mut top: Vec<_> = s
        .processes
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
            pct(WARN),
            pct(CRIT)
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
    Outcome::found(vec![Finding {
        check: CHECK.id.into(),
        log: None,
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
    }])
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
