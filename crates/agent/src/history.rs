//! The agent's memory of past samples: a bounded ring of snapshots, so durations and trends
//! are real ("growing" over minutes, "stuck" since when) instead of two samples a second
//! apart. Bounded by count and by an estimate of the bytes the samples hold; when over, the
//! sample closest in time to its neighbour goes (the oldest and the newest stay), so what
//! remains still spans the same time, only more thinly.

use node_doctor_core::checks::Needs;
use node_doctor_core::model::{CgroupMembership, Snapshot};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

#[derive(Debug)]
pub struct History {
    samples: Vec<Arc<Snapshot>>,
    max_samples: usize,
    max_bytes: usize,
}

/// A rough size of a snapshot in memory: its processes dominate. Counted as the allocator
/// sees them (each heap string or vector is an allocation of its length plus ~16 bytes of
/// malloc overhead): with cgroup v1 a process belongs to a dozen hierarchies, two strings
/// each, and an estimate of the paths alone undercounted by 3×, so a 10000-process host's
/// history grew to 4× its configured size (99 MiB RSS for `history_mb = 24`). Processes
/// share their cgroup memberships (one copy per distinct `/proc/PID/cgroup` text, and the
/// same copy across samples: [`share_cgroups`]), so each copy is counted once, in the first
/// sample that holds it (`seen` carries the copies counted so far).
pub fn estimate_bytes(s: &Snapshot, seen: &mut HashSet<usize>) -> usize {
    const ALLOC: usize = 16;
    let inline = std::mem::size_of::<node_doctor_core::model::Process>();
    let membership = std::mem::size_of::<node_doctor_core::model::CgroupMembership>();
    let processes = s
        .process_list()
        .iter()
        .map(|p| {
            let strings = p.comm.len().saturating_add(ALLOC).saturating_add(
                // The container and pod it belongs to, its cmdline/exe/wchan when read.
                256,
            );
            let cgroups = if seen.insert(shared_id(&p.cgroups)) {
                p.cgroups
                    .iter()
                    .map(|c| {
                        membership
                            .saturating_add(c.path.len())
                            .saturating_add(c.controllers.len())
                            .saturating_add(2 * ALLOC)
                    })
                    .sum::<usize>()
                    .saturating_add(2 * ALLOC)
            } else {
                0
            };
            inline.saturating_add(strings).saturating_add(cgroups)
        })
        .sum::<usize>();
    let pipes = s
        .pipes
        .as_ref()
        .map_or(0, |p| p.pipes.len().saturating_mul(96));
    let log = s.kernel_log.as_ref().map_or(0, |k| {
        k.records
            .iter()
            .map(|r| r.text.len().saturating_add(96))
            .sum()
    });
    let daemon_logs = s.daemon_logs.iter().flatten().map(|d| {
        d.records
            .iter()
            .map(|r| r.text.len().saturating_add(96))
            .sum::<usize>()
    });
    let log = daemon_logs.fold(log, usize::saturating_add);
    let pids = s.cgroups.as_ref().map_or(0, |c| {
        c.pids.iter().map(|p| p.path.len().saturating_add(64)).sum()
    });
    4096usize
        .saturating_add(processes)
        .saturating_add(pipes)
        .saturating_add(log)
        .saturating_add(pids)
}

/// Which shared copy of memberships this is (its address).
fn shared_id(m: &Arc<[CgroupMembership]>) -> usize {
    Arc::as_ptr(m).cast::<CgroupMembership>() as usize
}

/// Makes the processes of `new` hold the same copy of their cgroup memberships as the
/// processes of `prev` with the same memberships, and as each other (the scan's workers
/// parse each distinct text once each). A host's processes change cgroup rarely, so the
/// samples the history keeps then cost their processes, not their processes' cgroup paths
/// again (at 10000 processes with cgroup v1, ten hierarchies: ~2 KiB a process a sample).
pub fn share_cgroups(prev: Option<&Snapshot>, new: &mut Snapshot) {
    let Some(processes) = new.processes.as_mut() else {
        return;
    };
    let mut by_content: HashSet<Arc<[CgroupMembership]>> = HashSet::new();
    if let Some(prev) = prev {
        for p in prev.process_list() {
            if !by_content.contains(&p.cgroups) {
                by_content.insert(p.cgroups.clone());
            }
        }
    }
    // Each copy in `new` is looked up by content once; later processes holding that copy
    // take the answer by address.
    let mut by_copy: HashMap<usize, Arc<[CgroupMembership]>> = HashMap::new();
    for p in processes {
        let id = shared_id(&p.cgroups);
        let shared = by_copy
            .entry(id)
            .or_insert_with(|| match by_content.get(&p.cgroups) {
                Some(kept) => kept.clone(),
                None => {
                    by_content.insert(p.cgroups.clone());
                    p.cgroups.clone()
                }
            })
            .clone();
        p.cgroups = shared;
    }
}

impl History {
    pub fn new(max_samples: usize, max_bytes: usize) -> History {
        History {
            samples: Vec::new(),
            max_samples: max_samples.max(2),
            max_bytes,
        }
    }

    pub fn push(&mut self, mut s: Arc<Snapshot>) {
        if let Some(new) = Arc::get_mut(&mut s)
            && new.processes.is_some()
        {
            let prev = self.samples.iter().rev().find(|x| x.processes.is_some());
            share_cgroups(prev.map(|p| &**p), new);
        }
        if s.daemon_logs.is_some() {
            // The checks read the kubelet's and the runtime's log lines in the newest sample
            // that has them (`History::current`); earlier samples keep the counts, not the
            // lines (up to MAX_DAEMON_LINES a daemon, mostly the same lines again).
            for old in &mut self.samples {
                let held = old
                    .daemon_logs
                    .as_ref()
                    .is_some_and(|l| l.iter().any(|d| !d.records.is_empty()));
                if held {
                    for d in Arc::make_mut(old).daemon_logs.iter_mut().flatten() {
                        d.records = Vec::new();
                    }
                }
            }
        }
        self.samples.push(s);
        while self.samples.len() > self.max_samples
            || (self.bytes() > self.max_bytes && self.samples.len() > 2)
        {
            self.thin();
        }
    }

    pub fn bytes(&self) -> usize {
        let mut seen = HashSet::new();
        self.samples
            .iter()
            .map(|s| estimate_bytes(s, &mut seen))
            .sum()
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Drops the inner sample that is closest in time to the one before it.
    fn thin(&mut self) {
        if self.samples.len() <= 2 {
            self.samples.remove(0);
            return;
        }
        let mut best = 1usize;
        let mut best_gap = u64::MAX;
        for i in 1..self.samples.len().saturating_sub(1) {
            let (Some(a), Some(b)) = (self.samples.get(i.saturating_sub(1)), self.samples.get(i))
            else {
                continue;
            };
            let gap = b.collected_at_ms.saturating_sub(a.collected_at_ms);
            if gap < best_gap {
                best_gap = gap;
                best = i;
            }
        }
        self.samples.remove(best);
    }

    /// The samples that hold what `needs` asks for, oldest first: a check compares like
    /// with like (a process count only with samples that read processes).
    pub fn for_needs(&self, needs: &Needs) -> Vec<&Snapshot> {
        self.samples
            .iter()
            .map(|s| &**s)
            .filter(|s| needs.met_by(s))
            .collect()
    }

    /// The newest sample.
    pub fn newest(&self) -> Option<&Snapshot> {
        self.samples.last().map(|s| &**s)
    }

    /// The last samples, for the flight recorder.
    pub fn last(&self, n: usize) -> Vec<Snapshot> {
        let skip = self.samples.len().saturating_sub(n);
        self.samples
            .iter()
            .skip(skip)
            .map(|s| (**s).clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Arc<Snapshot> {
        Arc::new(Snapshot {
            collected_at_ms: ms,
            processes: Some(Vec::new()),
            ..Snapshot::default()
        })
    }

    #[test]
    fn bounded_by_count_keeping_the_span() {
        let mut h = History::new(4, usize::MAX);
        for t in [0, 10, 11, 20, 30, 31, 40] {
            h.push(at(t));
        }
        assert_eq!(h.len(), 4);
        let times: Vec<u64> = h.samples.iter().map(|s| s.collected_at_ms).collect();
        assert_eq!(
            times.first(),
            Some(&0),
            "the oldest stays: the trend keeps its start"
        );
        assert_eq!(times.last(), Some(&40));
    }

    /// Two scans of the same host parse the same cgroup texts into copies of their own; the
    /// history keeps one copy, and counts it once.
    #[test]
    fn samples_share_equal_cgroup_memberships_and_count_them_once() {
        use node_doctor_core::model::{ProcState, Process};
        let memberships = |path: &str| -> Arc<[CgroupMembership]> {
            vec![CgroupMembership {
                hierarchy: 4,
                controllers: "memory".into(),
                path: path.into(),
            }]
            .into()
        };
        let sample = |ms: u64| {
            let (a, b) = (memberships("/kubepods/a"), memberships("/kubepods/b"));
            let processes = (1..=100)
                .map(|pid| {
                    let mut p = Process::new(pid, 1, "x", ProcState::Sleeping, 7);
                    // Two scan workers: two copies of each text within one sample too.
                    p.cgroups = match pid % 4 {
                        0 => a.clone(),
                        1 => memberships("/kubepods/a"),
                        _ => b.clone(),
                    };
                    p
                })
                .collect();
            Arc::new(Snapshot {
                collected_at_ms: ms,
                processes: Some(processes),
                ..Snapshot::default()
            })
        };
        let mut h = History::new(10, usize::MAX);
        h.push(sample(0));
        let one = h.bytes();
        h.push(sample(1000));
        let copies: HashSet<usize> = h
            .samples
            .iter()
            .flat_map(|s| s.process_list().iter().map(|p| shared_id(&p.cgroups)))
            .collect();
        assert_eq!(
            copies.len(),
            2,
            "one copy per distinct text across both samples"
        );
        let unshared = estimate_bytes(&sample(0), &mut HashSet::new());
        assert!(one < unshared, "27 copies counted as 2: {one} < {unshared}");
        // The second sample costs its processes alone: less than the first.
        assert!(h.bytes() - one < one, "{} then {}", one, h.bytes());
        let first = &h.samples[0].process_list()[0];
        assert_eq!(first.cgroups[0].path, "/kubepods/a");
    }

    #[test]
    fn bounded_by_bytes() {
        let mut h = History::new(100, 3 * 4096 + 100);
        for t in 0..10 {
            h.push(at(t * 1000));
        }
        assert!(h.len() <= 3 && h.bytes() <= 3 * 4096 + 100, "{}", h.len());
    }

    #[test]
    fn a_check_sees_only_samples_with_its_parts() {
        let mut h = History::new(10, usize::MAX);
        h.push(at(0));
        h.push(Arc::new(Snapshot {
            collected_at_ms: 5,
            ..Snapshot::default()
        }));
        h.push(at(10));
        let needs = Needs {
            processes: true,
            ..Needs::NONE
        };
        assert_eq!(h.for_needs(&needs).len(), 2);
        assert_eq!(h.for_needs(&Needs::NONE).len(), 3);
    }

    #[test]
    fn only_the_newest_sample_with_daemon_logs_holds_their_lines() {
        use node_doctor_core::model::{DaemonLog, LogRecord};
        let with_logs = |ms: u64| {
            Arc::new(Snapshot {
                collected_at_ms: ms,
                processes: Some(Vec::new()),
                daemon_logs: Some(vec![DaemonLog {
                    daemon: "kubelet".into(),
                    lines: 3,
                    records: vec![LogRecord::text("PLEG is not healthy"); 3],
                    ..DaemonLog::default()
                }]),
                ..Snapshot::default()
            })
        };
        let mut h = History::new(10, usize::MAX);
        h.push(with_logs(0));
        let one = h.bytes();
        h.push(at(5));
        h.push(with_logs(10));
        let needs = Needs {
            daemon_logs: true,
            ..Needs::NONE
        };
        let s = h.for_needs(&needs);
        assert_eq!(s.len(), 2, "both still count as having read them");
        let logs = |s: &Snapshot| s.daemon_logs.as_ref().unwrap()[0].clone();
        assert!(logs(s[0]).records.is_empty());
        assert_eq!(logs(s[0]).lines, 3, "the counts stay");
        assert_eq!(logs(s[1]).records.len(), 3);
        assert!(one > 4096, "the lines are counted in the estimate");
    }
}
