//! Memory cgroup files (mm/memcontrol.c, mm/memcontrol-v1.c; Documentation/admin-guide/
//! cgroup-v1/memory.rst and cgroup-v2.rst). All are "key value" lines or one number.

use node_doctor_core::model::{Hierarchy, MemoryEvents, MemoryStat, OomControl};

/// v1 prints "no limit" as PAGE_COUNTER_MAX pages in bytes (9223372036854771712 with 4 KiB
/// pages); anything this large is no limit on any real machine.
const V1_UNLIMITED: u64 = 1 << 62;

/// A limit file: v2 `memory.max`/`memory.high` ("max" or bytes), v1
/// `memory.limit_in_bytes` (bytes, huge for none). `Some(None)` is "no limit"; `None` is
/// garbage.
pub fn parse_limit(text: &str) -> Option<Option<u64>> {
    match text.trim() {
        "max" => Some(None),
        n => {
            let v: u64 = n.parse().ok()?;
            Some((v < V1_UNLIMITED).then_some(v))
        }
    }
}

/// One number ("4288512\n").
pub fn parse_number(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// "key value" lines as pairs; lines that are not are skipped.
fn pairs(text: &str) -> impl Iterator<Item = (&str, u64)> {
    text.lines().filter_map(|l| {
        let (k, v) = l.split_once(' ')?;
        Some((k, v.trim().parse().ok()?))
    })
}

/// v1 `memory.oom_control`: `oom_kill_disable 0`, `under_oom 0`, `oom_kill 1` (the last
/// since 4.13).
pub fn parse_oom_control(text: &str) -> Option<OomControl> {
    let mut o = OomControl::default();
    let mut seen = false;
    for (k, v) in pairs(text) {
        match k {
            "oom_kill_disable" => o.oom_kill_disable = v != 0,
            "under_oom" => o.under_oom = v != 0,
            "oom_kill" => o.oom_kill = v,
            _ => continue,
        }
        seen = true;
    }
    seen.then_some(o)
}

/// v2 `memory.events` / `memory.events.local`: `low high max oom oom_kill oom_group_kill`
/// (newer kernels add keys, older lack the last ones).
pub fn parse_events(text: &str) -> Option<MemoryEvents> {
    let mut e = MemoryEvents::default();
    let mut seen = false;
    for (k, v) in pairs(text) {
        match k {
            "low" => e.low = v,
            "high" => e.high = v,
            "max" => e.max = v,
            "oom" => e.oom = v,
            "oom_kill" => e.oom_kill = v,
            "oom_group_kill" => e.oom_group_kill = v,
            _ => continue,
        }
        seen = true;
    }
    seen.then_some(e)
}

/// The `memory.stat` fields checks use. v1 has own keys and hierarchical `total_*` keys;
/// the hierarchical ones are taken (a pod's figures include its containers, as on v2).
pub fn parse_memory_stat(text: &str, hierarchy: Hierarchy) -> MemoryStat {
    let prefix = match hierarchy {
        Hierarchy::V1 if text.contains("\ntotal_") => "total_",
        _ => "",
    };
    let mut st = MemoryStat::default();
    let (mut refault_file, mut refault_anon, mut refault) = (None, None, None);
    for (k, v) in pairs(text) {
        let Some(k) = k.strip_prefix(prefix) else {
            continue;
        };
        match (hierarchy, k) {
            (Hierarchy::V1, "cache") | (Hierarchy::V2, "file") => st.file_bytes = Some(v),
            (Hierarchy::V1, "rss") | (Hierarchy::V2, "anon") => st.anon_bytes = Some(v),
            (_, "workingset_refault_file") => refault_file = Some(v),
            (_, "workingset_refault_anon") => refault_anon = Some(v),
            (_, "workingset_refault") => refault = Some(v),
            (_, "pgmajfault") => st.pgmajfault = Some(v),
            (Hierarchy::V2, "pgscan") => st.pgscan = Some(v),
            (Hierarchy::V2, "pgsteal") => st.pgsteal = Some(v),
            _ => {}
        }
    }
    st.workingset_refault = match (refault_file, refault_anon) {
        (None, None) => refault,
        (f, a) => Some(f.unwrap_or(0).saturating_add(a.unwrap_or(0))),
    };
    st
}

/// v2 `cgroup.stat`: (`nr_dying_descendants`, `nr_dying_subsys_memory`).
pub fn parse_cgroup_stat(text: &str) -> (Option<u64>, Option<u64>) {
    let (mut dying, mut memory) = (None, None);
    for (k, v) in pairs(text) {
        match k {
            "nr_dying_descendants" => dying = Some(v),
            "nr_dying_subsys_memory" => memory = Some(v),
            _ => {}
        }
    }
    (dying, memory)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_in_both_forms() {
        assert_eq!(parse_limit("max\n"), Some(None));
        assert_eq!(parse_limit("67108864\n"), Some(Some(67_108_864)));
        assert_eq!(parse_limit("9223372036854771712\n"), Some(None), "v1 none");
        assert_eq!(parse_limit("lots"), None);
    }

    #[test]
    fn oom_control_and_events() {
        let o = parse_oom_control("oom_kill_disable 0\nunder_oom 1\noom_kill 3\n").unwrap();
        assert_eq!((o.under_oom, o.oom_kill), (true, 3));
        assert!(parse_oom_control("garbage").is_none());
        let e = parse_events(
            "low 0\nhigh 52311\nmax 17\noom 2\noom_kill 2\noom_group_kill 0\nsock_throttled 0\n",
        )
        .unwrap();
        assert_eq!((e.high, e.max, e.oom_kill), (52311, 17, 2));
    }

    #[test]
    fn memory_stat_v1_hierarchical_and_v2() {
        // Real v1 lines from 6.18 (own keys, then total_*).
        let v1 = "cache 10616832\nrss 9535488\nworkingset_refault_anon 0\nworkingset_refault_file 1177\npgmajfault 0\nhierarchical_memory_limit 9223372036854771712\ntotal_cache 4458717184\ntotal_rss 388792320\ntotal_workingset_refault_anon 2\ntotal_workingset_refault_file 1476447\ntotal_pgmajfault 9163\n";
        let s = parse_memory_stat(v1, Hierarchy::V1);
        assert_eq!(s.file_bytes, Some(4_458_717_184));
        assert_eq!(s.workingset_refault, Some(1_476_449));
        assert_eq!(s.pgmajfault, Some(9163));
        assert_eq!(s.pgscan, None);
        // v1 before 5.12 has no refault counter at all; major faults remain.
        let s = parse_memory_stat(
            "cache 1\npgmajfault 2\ntotal_cache 5\ntotal_pgmajfault 70\n",
            Hierarchy::V1,
        );
        assert_eq!(
            (s.file_bytes, s.workingset_refault, s.pgmajfault),
            (Some(5), None, Some(70))
        );
        // v2 before 5.9: one refault counter.
        let s = parse_memory_stat("file 9\nworkingset_refault 70\n", Hierarchy::V2);
        assert_eq!(s.workingset_refault, Some(70));
        let v2 = "anon 1000\nfile 2000\npgscan 77\npgsteal 70\nworkingset_refault_anon 1\nworkingset_refault_file 9\npgmajfault 4\n";
        let s = parse_memory_stat(v2, Hierarchy::V2);
        assert_eq!(
            (s.anon_bytes, s.file_bytes, s.pgscan, s.workingset_refault),
            (Some(1000), Some(2000), Some(77), Some(10))
        );
    }

    #[test]
    fn cgroup_stat_dying_counts() {
        let t = "nr_descendants 0\nnr_subsys_memory 9\nnr_dying_descendants 12\nnr_dying_subsys_memory 11\n";
        assert_eq!(parse_cgroup_stat(t), (Some(12), Some(11)));
        assert_eq!(
            parse_cgroup_stat("nr_descendants 1\nnr_dying_descendants 0\n"),
            (Some(0), None)
        );
    }
}
