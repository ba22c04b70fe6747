//! Live tests of `mount-leak`, as root: real tmpfs mounts under a kubelet-shaped pods
//! directory whose pod has no cgroup (no pod runs with that uid), named by the check until
//! they are unmounted. Mounts are global state: the test holds `serialize()`, and a guard
//! unmounts everything it mounted, also when an assertion fails.

#![cfg(feature = "live")]

mod common;
use common::faults::*;
use common::*;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// tmpfs mounts made for a test, unmounted (deepest first) on drop.
struct Mounts {
    points: Vec<PathBuf>,
}

impl Mounts {
    fn tmpfs(&mut self, at: PathBuf) {
        std::fs::create_dir_all(&at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(&at)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount tmpfs at {}", at.display());
        self.points.push(at);
    }

    fn unmount_all(&mut self) {
        while let Some(p) = self.points.pop() {
            let done = Command::new("umount")
                .arg(&p)
                .status()
                .is_ok_and(|s| s.success());
            if !done {
                // Busy (a test helper's cwd): detach it anyway so nothing is left behind.
                let _ = Command::new("umount").arg("-l").arg(&p).status();
            }
        }
    }
}

impl Drop for Mounts {
    fn drop(&mut self) {
        self.unmount_all();
    }
}

fn mount_leak() -> Value {
    check_json(&["--only", "mount-leak", "--window", "0"]).1
}

#[test]
fn two_hundred_tmpfs_mounts_of_a_pod_that_is_gone_are_named_until_unmounted() {
    assert_root();
    let _g = serialize();
    let (_, uid, _) = container_shaped("mounts");
    let root = tempfile::tempdir().unwrap();
    let pods = root.path().join("kubelet/pods");
    let mut m = Mounts { points: Vec::new() };
    for i in 0..200 {
        m.tmpfs(pods.join(format!("{uid}/volumes/kubernetes.io~empty-dir/scratch-{i}")));
    }

    let key = format!("mount-leak/pod:{uid}");
    let doc = mount_leak();
    let f = findings_of(&doc, "mount-leak")
        .into_iter()
        .find(|f| f["key"] == key.as_str())
        .unwrap_or_else(|| panic!("no finding {key}: {doc:#}"));
    assert_eq!(f["severity"], "warning");
    assert_eq!(measure(f, "mounts"), Some(200.0));
    assert_eq!(measure(f, "subpath_mounts"), Some(0.0));
    // The directory is there (a mount point cannot be removed); no pod cgroup names the uid.
    assert_eq!(measure(f, "pod_dir_exists"), Some(1.0));
    assert_eq!(f["subjects"][0]["kind"], "pod");
    assert_eq!(f["subjects"][0]["pod"], uid.as_str());
    assert_eq!(
        f["subjects"][0]["path"],
        format!("{}/{uid}", pods.display()).as_str()
    );

    m.unmount_all();
    let doc = mount_leak();
    assert!(
        !findings_of(&doc, "mount-leak")
            .iter()
            .any(|f| f["key"] == key.as_str()),
        "{doc:#}"
    );
}
