//! A real containerd (Debian's, with runc) on a private socket, for live tests: root,
//! state, sockets and CNI dirs under a temp dir, the CRI plugin on
//! (`restrict_oom_score_adj = true`: root here lacks CAP_SYS_RESOURCE, LAB.md). Everything
//! it started is killed and removed on drop, also when the test fails: tasks of both
//! namespaces, shims, the processes left in the test's cgroups, mounts under the temp dir,
//! the daemon, the cgroups, and `/run/containerd` when the test made it.
#![allow(dead_code)]

use crate::common::faults::{mounts_below, proc_state, wait_until};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Containerd {
    pub dir: tempfile::TempDir,
    daemon: Child,
    config: PathBuf,
    containers: Vec<String>,
    cgroup_tops: Vec<String>,
    made_run_containerd: bool,
}

/// The image the sandboxes and containers run (busybox), imported by [`Containerd::import_busybox`].
pub const BUSYBOX: &str = "nd.test/busybox:1";

impl Containerd {
    pub fn start() -> Containerd {
        Self::start_with("", "")
    }

    /// `cri_keys`: extra keys of the CRI plugin table; `cri_tables`: extra tables (registry
    /// mirrors), both TOML.
    pub fn start_with(cri_keys: &str, cri_tables: &str) -> Containerd {
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
  sandbox_image = "{BUSYBOX}"
{cri_keys}
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/cni/bin"
    conf_dir = "{d}/cni/conf"
{cri_tables}
"#,
            d = d.display()
        );
        std::fs::write(d.join("config.toml"), config).unwrap();
        make_busybox_rootfs(&d.join("rootfs"));
        let made_run_containerd = !Path::new("/run/containerd").exists();
        let config = d.join("config.toml");
        let daemon = spawn_daemon(&config, d);
        let c = Containerd {
            dir,
            daemon,
            config,
            containers: Vec::new(),
            cgroup_tops: Vec::new(),
            made_run_containerd,
        };
        c.wait_up();
        c
    }

    fn wait_up(&self) {
        assert!(
            wait_until(Duration::from_secs(20), || self
                .ctr(&["version"])
                .status
                .success()),
            "containerd did not come up: {}",
            self.log()
        );
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    pub fn pid(&self) -> i32 {
        self.daemon.id() as i32
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// Kills the daemon (SIGKILL); its shims and containers keep running, as they do when
    /// containerd crashes on a node.
    pub fn kill_daemon(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }

    /// Starts the daemon again with the same config (it adopts its running shims).
    pub fn restart_daemon(&mut self) {
        if matches!(self.daemon.try_wait(), Ok(None)) {
            return;
        }
        self.daemon = spawn_daemon(&self.config, self.dir.path());
        self.wait_up();
    }

    pub fn ctr(&self, args: &[&str]) -> std::process::Output {
        Command::new("timeout")
            .arg("30")
            .arg("ctr")
            .arg("--address")
            .arg(self.socket())
            .args(args)
            .output()
            .unwrap()
    }

    /// Cgroups below `/<top>` are the test's: their processes are killed and the
    /// directories removed on drop.
    pub fn own_cgroup(&mut self, top: &str) {
        self.cgroup_tops.push(top.to_string());
    }

    /// Imports the busybox image into the CRI's namespace (`k8s.io`): the sandbox image and
    /// the containers' image.
    pub fn import_busybox(&self) {
        let tar = self.dir.path().join("busybox.tar");
        let st = Command::new(crate::common::faults::python3())
            .arg(helper("oci_image.py"))
            .args(["tar", tar.to_str().unwrap(), BUSYBOX])
            .status()
            .unwrap();
        assert!(st.success());
        let out = self.ctr(&["-n", "k8s.io", "images", "import", tar.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "ctr import: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `ctr run -d` of `cmd` in the busybox rootfs, in cgroup `cgroup` (a path such as
    /// `/node-doctor-test-1-x/kubepods/besteffort/pod<uid>/<id>`).
    pub fn run(&mut self, id: &str, cgroup: &str, cmd: &[&str]) {
        if let Some(top) = cgroup.split('/').find(|c| !c.is_empty()) {
            self.own_cgroup(top);
        }
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

    fn remove_all_containers(&self) {
        for ns in ["default", "k8s.io"] {
            let listed = self.ctr(&["-n", ns, "containers", "ls", "-q"]);
            let mut ids: Vec<String> = String::from_utf8_lossy(&listed.stdout)
                .lines()
                .map(str::to_string)
                .collect();
            if ns == "default" {
                ids.extend(self.containers.iter().cloned());
            }
            ids.sort();
            ids.dedup();
            for id in &ids {
                let _ = self.ctr(&["-n", ns, "task", "kill", "-s", "KILL", id]);
                for _ in 0..50 {
                    if self
                        .ctr(&["-n", ns, "task", "rm", "-f", id])
                        .status
                        .success()
                    {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                let _ = self.ctr(&["-n", ns, "container", "rm", id]);
            }
        }
    }
}

fn spawn_daemon(config: &Path, d: &Path) -> Child {
    Command::new("containerd")
        .arg("--config")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(d.join("containerd.log"))
                .unwrap(),
        )
        .spawn()
        .expect("containerd is installed (scripts/deps.sh)")
}

pub fn helper(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/helpers")
        .join(name)
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // A test that killed the daemon: bring it back so the tasks can be removed properly.
        if matches!(self.daemon.try_wait(), Ok(Some(_))) {
            self.daemon = spawn_daemon(&self.config, self.dir.path());
            wait_until(Duration::from_secs(20), || {
                self.ctr(&["version"]).status.success()
            });
        }
        self.remove_all_containers();
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
        for top in &self.cgroup_tops {
            kill_cgroup_tree_everywhere(top);
            remove_cgroup_tree_everywhere(top);
        }
        for m in mounts_below(self.dir.path()).iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
        if self.made_run_containerd {
            let _ = std::fs::remove_dir_all("/run/containerd");
        }
    }
}

pub fn make_busybox_rootfs(root: &Path) {
    for d in ["bin", "proc", "dev", "sys", "tmp", "etc"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox"))
        .expect("busybox-static is installed (scripts/deps.sh)");
    for applet in ["sh", "sleep", "cat"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
}

pub fn pids_whose_cmdline_contains(needle: &str) -> Vec<i32> {
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

/// SIGKILL to every process in `/sys/fs/cgroup/<every hierarchy>/<top>` and below.
pub fn kill_cgroup_tree_everywhere(top: &str) {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for h in hierarchies.flatten() {
        let root = h.path().join(top);
        if root.is_dir() {
            let mut dirs = Vec::new();
            collect_dirs(&root, &mut dirs);
            for d in &dirs {
                let _ = std::fs::write(d.join("freezer.state"), "THAWED");
                if let Ok(procs) = std::fs::read_to_string(d.join("cgroup.procs")) {
                    for pid in procs.lines().filter_map(|l| l.trim().parse().ok()) {
                        if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                            let _ =
                                rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                        }
                    }
                }
            }
        }
    }
}

/// Removes `/sys/fs/cgroup/<every hierarchy>/<top>` and everything below it, deepest first.
pub fn remove_cgroup_tree_everywhere(top: &str) {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for h in hierarchies.flatten() {
        let root = h.path().join(top);
        if root.is_dir() {
            let mut dirs = Vec::new();
            collect_dirs(&root, &mut dirs);
            for d in dirs.iter().rev() {
                for _ in 0..100 {
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
