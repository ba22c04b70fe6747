//! The node-level values the checks compare, one number per name for the whole node
//! (`node_doctor_node_value{name}` in the agent's metrics): tasks against their limit,
//! zombies, file handles, the largest per-user pipe pages, memory and its pressure, OOM
//! kills, mounts. Aggregated over subjects, so a metric label never carries a pid, uid or
//! path. A value a sample did not read is left out, never reported as 0.

use crate::model::Snapshot;

/// The node-level values the checks compare, aggregated over subjects (no per-uid or
/// per-pid label).
pub fn node_values(s: &Snapshot) -> Vec<(&'static str, f64)> {
    let mut v = Vec::new();
    if let Some(l) = &s.loadavg {
        v.push(("tasks", f64::from(l.max)));
    }
    if let Ok(t) = super::common::TaskLimit::of(s) {
        v.push(("tasks_limit", t.limit as f64));
    }
    if s.processes.is_some() {
        v.push((
            "zombie_processes",
            s.process_list().iter().filter(|p| p.is_zombie()).count() as f64,
        ));
    }
    if let Ok(nr) = s.sysctl("fs.file-nr")
        && let Some((alloc, _, _)) = super::fd_exhaustion::parse_file_nr(nr)
    {
        v.push(("file_handles", alloc as f64));
    }
    if let Ok(m) = s.sysctl_u64("fs.file-max") {
        v.push(("file_handles_limit", m as f64));
    }
    if s.pipes.is_some() {
        let max = super::pipe_quota::by_user(s)
            .values()
            .map(|u| u.pages)
            .max()
            .unwrap_or(0);
        v.push(("pipe_user_pages_max", max as f64));
    }
    if let Ok(m) = s.sysctl_u64("fs.pipe-user-pages-soft") {
        v.push(("pipe_user_pages_limit", m as f64));
    }
    // What the memory checks compare: meminfo's kB as bytes, PSI as a percentage.
    if let Some(m) = &s.meminfo {
        if let Some(a) = m.mem_available {
            v.push(("memory_available_bytes", a.saturating_mul(1024) as f64));
        }
        if let Some(t) = m.mem_total {
            v.push(("memory_total_bytes", t.saturating_mul(1024) as f64));
        }
    }
    if let Some(p) = &s.pressure.memory {
        v.push(("memory_psi_some_avg10", f64::from(p.some.avg10)));
        if let Some(f) = &p.full {
            v.push(("memory_psi_full_avg10", f64::from(f.avg10)));
        }
    }
    if let Some(&k) = s.vmstat.get("oom_kill") {
        v.push(("oom_kills", k as f64));
    }
    if let Some(m) = &s.mounts {
        v.push(("mounts", m.len() as f64));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_are_reported_and_values_not_read_are_left_out() {
        let mut s = Snapshot::default();
        assert!(node_values(&s).is_empty(), "{:?}", node_values(&s));
        s.sysctls
            .insert("fs.file-max".into(), "9223372036854775807".into());
        s.sysctls
            .insert("fs.pipe-user-pages-soft".into(), "16384".into());
        s.vmstat.insert("oom_kill".into(), 3);
        let v: std::collections::BTreeMap<_, _> = node_values(&s).into_iter().collect();
        assert_eq!(v.get("file_handles_limit"), Some(&9.223372036854776e18));
        assert_eq!(v.get("pipe_user_pages_limit"), Some(&16384.0));
        assert_eq!(v.get("oom_kills"), Some(&3.0));
        assert!(!v.contains_key("zombie_processes"));
        assert!(!v.contains_key("pipe_user_pages_max"));
    }
}
