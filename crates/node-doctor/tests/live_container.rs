//! A real container: Debian's containerd and runc, a busybox rootfs, `ctr run`. Incident 1's
//! exact mechanism: once host uid 0 is over `fs.pipe-user-pages-soft`, the pipes a
//! container's root creates (no CAP_SYS_RESOURCE, no CAP_SYS_ADMIN) come out at 2 pages —
//! and pipe-quota must attribute them to the container.

#![cfg(feature = "live")]

mod common;
use common::faults::*;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// containerd with its root, state, sockets and CNI dirs under a temp dir. Everything it
/// started is killed and removed on drop: tasks, shims, the daemon, the cgroups runc made,
/// and `/run/containerd` (which the shim creates whatever the config says) when the test
/// made it.
struct Containerd {
    dir: tempfile::TempDir,
    daemon: Child,
    containers: Vec<String>,
    cgroup_top: Option<String>,
    made_run_containerd: bool,
}

impl Containerd {
    fn start() -> Containerd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let config = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/cni/bin"
    conf_dir = "{d}/cni/conf"
"#,
            d = d.display()
        );
        std::fs::write(d.join("config.toml"), config).unwrap();
        make_busybox_rootfs(&d.join("rootfs"));
        let made_run_containerd = !Path::new("/run/containerd").exists();
        let daemon = Command::new("containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("containerd.log")).unwrap())
            .spawn()
            .expect("containerd is installed (scripts/deps.sh)");
        let c = Containerd {
            dir,
            daemon,
            containers: Vec::new(),
            cgroup_top: None,
            made_run_containerd,
        };
        assert!(
            wait_until(Duration::from_secs(20), || c
                .ctr(&["version"])
                .status
                .success()),
            "containerd did not come up: {}",
            std::fs::read_to_string(c.dir.path().join("containerd.log")).unwrap_or_default()
        );
        c
    }

    fn ctr(&self, args: &[&str]) -> std::process::Output {
        Command::new("timeout")
            .arg("30")
            .arg("ctr")
            .arg("--address")
            .arg(self.dir.path().join("containerd.sock"))
            .args(args)
            .output()
            .unwrap()
    }

    /// `ctr run -d` of `cmd` in the busybox rootfs, in cgroup `cgroup` (a path such as
    /// `/node-doctor-test-1-x/kubepods/besteffort/pod<uid>/<id>`).
    fn run(&mut self, id: &str, cgroup: &str, cmd: &[&str]) {
        self.cgroup_top = cgroup
            .split('/')
            .find(|c| !c.is_empty())
            .map(str::to_string);
        let rootfs = self.dir.path().join("rootfs");
        let mut args = vec![
            "run",
            "-d",
            "--cgroup",
            cgroup,
            "--rootfs",
            rootfs.to_str().unwrap(),
            id,
        ];
        args.extend_from_slice(cmd);
        self.containers.push(id.to_string());
        let out = self.ctr(&args);
        assert!(
            out.status.success(),
            "ctr run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for id in &self.containers {
            let _ = self.ctr(&["task", "kill", "-s", "KILL", id]);
            for _ in 0..50 {
                if self.ctr(&["task", "rm", "-f", id]).status.success() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.ctr(&["container", "rm", id]);
        }
        // Shims outlive containerd on purpose; ours are the ones pointing at our socket.
        let ours = self.dir.path().to_string_lossy().into_owned();
        let shims = pids_whose_cmdline_contains(&ours);
        for &pid in &shims {
            if let Some(p) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
            }
        }
        // Dead is enough: init reaps them (a zombie's /proc entry lingers until then).
        wait_until(Duration::from_secs(5), || {
            shims
                .iter()
                .all(|&p| proc_state(p).is_none_or(|s| s == 'Z'))
        });
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        if let Some(top) = &self.cgroup_top {
            remove_cgroup_tree_everywhere(top);
        }
        if self.made_run_containerd {
            let _ = std::fs::remove_dir_all("/run/containerd");
        }
    }
}

fn make_busybox_rootfs(root: &Path) {
    for d in ["bin", "proc", "dev", "sys", "tmp", "etc"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox"))
        .expect("busybox-static is installed (scripts/deps.sh)");
    for applet in ["sh", "sleep", "cat"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
}

fn pids_whose_cmdline_contains(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(c) = std::fs::read(format!("/proc/{pid}/cmdline"))
            && String::from_utf8_lossy(&c).contains(needle)
        {
            out.push(pid);
        }
    }
    out
}

/// Removes `/sys/fs/cgroup/<every hierarchy>/<top>` and everything below it, deepest first.
fn remove_cgroup_tree_everywhere(top: &str) {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for h in hierarchies.flatten() {
        let root = h.path().join(top);
        if root.is_dir() {
            let mut dirs = Vec::new();
            collect_dirs(&root, &mut dirs);
            for d in dirs.iter().rev() {
                for _ in 0..50 {
                    if std::fs::remove_dir(d).is_ok() || !d.exists() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

fn collect_dirs(d: &Path, out: &mut Vec<PathBuf>) {
    out.push(d.to_path_buf());
    if let Ok(entries) = std::fs::read_dir(d) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&e.path(), out);
            }
        }
    }
}

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
