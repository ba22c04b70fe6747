//! A real container: Debian's containerd and runc, a busybox rootfs, `ctr run`. Incident 1's
//! exact mechanism: once host uid 0 is over `fs.pipe-user-pages-soft`, the pipes a
//! container's root creates (no CAP_SYS_RESOURCE, no CAP_SYS_ADMIN) come out at 2 pages —
//! and pipe-quota must attribute them to the container.

#![cfg(feature = "live")]

mod common;
#[path = "common/containerd.rs"]
mod containerd;
use common::faults::*;
use common::*;
use containerd::Containerd;
use std::path::PathBuf;
use std::time::Duration;

#[test]
fn a_containers_pipes_shrink_once_host_uid_0_is_over_the_soft_limit() {
    assert_root();
    let _g = serialize();
    let mut containerd = Containerd::start();

    // Host uid 0's pipe pages now, by node-doctor's own estimate; the soft limit goes below.
    let before = snapshot_of("/");
    let root_pages = node_doctor_core::checks::pipe_quota::by_user(&before)
        .get(&0)
        .map_or(0, |u| u.pages);
    assert!(
        root_pages >= 16,
        "root holds pipes (containerd does): {root_pages}"
    );
    let soft = SysctlGuard::set("fs.pipe-user-pages-soft", &(root_pages / 2).to_string());

    let (rel, pod, id) = container_shaped("ctr");
    containerd.run(
        &id,
        &format!("/{rel}"),
        &["/bin/busybox", "sh", "-c", "sleep 1000 | sleep 1000"],
    );
    let procs = PathBuf::from("/sys/fs/cgroup/pids")
        .join(&rel)
        .join("cgroup.procs");
    assert!(
        wait_until(Duration::from_secs(20), || {
            std::fs::read_to_string(&procs).is_ok_and(|p| p.lines().count() >= 3)
        }),
        "the container's sh and its two sleeps are running"
    );

    let (code, doc) = check_json(&["--only", "pipe-quota", "--window", "0"]);
    drop(soft);
    assert_eq!(code, 1, "{doc:#}");
    let f: Vec<_> = findings_of(&doc, "pipe-quota")
        .into_iter()
        .filter(|f| f["subjects"][0]["uid"] == 0)
        .collect();
    assert_eq!(f.len(), 1, "{doc:#}");
    let f = f[0];
    assert_eq!(f["severity"], "critical");
    let summary = f["summary"].as_str().unwrap();
    assert!(
        summary.contains("pipes already shrunk to 8192 bytes"),
        "{summary}"
    );
    assert!(
        summary.contains(&format!("containers {}", &id[..12])),
        "{summary}"
    );
    let holders: Vec<_> = f["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["container_id"] == id.as_str())
        .collect();
    assert!(
        holders.len() >= 2,
        "both ends of the container's pipe, held by its two sleeps: {f:#}"
    );
    assert!(
        holders
            .iter()
            .all(|s| s["comm"] == "sleep" && s["pod"] == pod.as_str())
    );
    let ev = f["evidence"].to_string();
    assert!(ev.contains("8192 bytes (2 pages)"), "{ev}");
    assert!(ev.contains(&format!("container {}", &id[..12])), "{ev}");
}
