//! Real faults for live tests: cgroups, helper processes, sysctls. Every fault is owned by a
//! guard that undoes it on drop, so a failing assertion still cleans up.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Tests that change global state (sysctls, the freezer, mounts) hold this for their whole run.
static GLOBAL: Mutex<()> = Mutex::new(());

/// Held while a test changes global state: the in-process mutex orders the tests of one
/// binary, the file lock those of different test binaries (or runners that run them at once).
pub struct Serialized {
    _lock: std::fs::File,
    _guard: MutexGuard<'static, ()>,
}

pub fn serialize() -> Serialized {
    let guard = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("node-doctor-live-tests.lock"))
        .expect("lock file");
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).expect("flock");
    Serialized {
        _lock: lock,
        _guard: guard,
    }
}

/// Directory cgroups made for a test; their processes are killed and the directories
/// removed (deepest first) on drop.
pub struct CgroupGuard {
    pub dirs: Vec<PathBuf>,
    pub children: Vec<Child>,
}

impl CgroupGuard {
    /// The deepest directory made.
    pub fn leaf(&self) -> &Path {
        self.dirs.last().expect("made at least one directory")
    }

    pub fn add(&self, pid: u32) {
        std::fs::write(self.leaf().join("cgroup.procs"), pid.to_string()).unwrap();
    }
}

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        // Thaw first: a frozen task cannot die, and waiting for it would hang the test.
        for d in &self.dirs {
            let _ = std::fs::write(d.join("freezer.state"), "THAWED");
        }
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for d in self.dirs.iter().rev() {
            // Whatever else the test left inside (a helper's children) goes too.
            if let Ok(procs) = std::fs::read_to_string(d.join("cgroup.procs")) {
                for pid in procs.lines().filter_map(|l| l.trim().parse().ok()) {
                    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                    }
                }
            }
            // A cgroup can only be removed once its last task is gone; give the kernel a moment.
            for _ in 0..250 {
                if std::fs::remove_dir(d).is_ok() || !d.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Makes `base/rel` (every missing component). Tests use a unique first component, so
/// parallel tests never share (and fight over removing) a directory.
pub fn make_cgroup(base: &Path, rel: &str) -> CgroupGuard {
    let mut dirs = Vec::new();
    let mut cur = base.to_path_buf();
    for part in rel.split('/') {
        cur = cur.join(part);
        if !cur.exists() {
            std::fs::create_dir(&cur).unwrap();
            dirs.push(cur.clone());
        }
    }
    CgroupGuard {
        dirs,
        children: Vec::new(),
    }
}

/// A unique, container-shaped cgroup path: `node-doctor-test-<pid>-<tag>/kubepods/pod<uid>/<id>`,
/// with the pod uid and 64-hex container id it carries.
pub fn container_shaped(tag: &str) -> (String, String, String) {
    let n = std::process::id() as u128;
    let salt: u128 = tag.bytes().fold(7, |a, b| a * 31 + b as u128);
    let uid = format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (n * 2654435761) as u32,
        (salt as u16),
        (n as u16) & 0xfff,
        (salt as u16) & 0xfff,
        (n * salt) as u64 & 0xffff_ffff_ffff
    );
    let id = format!("{:064x}", (n + 1) * 0x9e37_79b9_7f4a_7c15 * (salt + 1));
    let id = id[id.len() - 64..].to_string();
    (
        format!(
            "node-doctor-test-{}-{tag}/kubepods/pod{uid}/{id}",
            std::process::id()
        ),
        uid,
        id,
    )
}

/// Sets a `limit`-byte v1 memory limit on `limit_at` (the leaf or one of its ancestors),
/// runs python in `cg`'s leaf allocating far more, and returns its pid once the kernel
/// OOM-killed it: the real `oom-kill:` line in the kernel ring, `oom_memcg` naming
/// `limit_at`.
pub fn oom_kill_in(cg: &mut CgroupGuard, limit_at: &Path, limit: u64) -> i64 {
    std::fs::write(limit_at.join("memory.limit_in_bytes"), limit.to_string()).unwrap();
    let child = Command::new("sh")
        .arg("-c")
        .arg(r#"echo $$ > "$0/cgroup.procs" && exec "$1" -c 'b = bytearray(256 << 20)'"#)
        .arg(cg.leaf())
        .arg(python3())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i64;
    cg.children.push(child);
    let status = cg.children.last_mut().unwrap().wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "OOM-killed"
    );
    pid
}

/// The real python3 interpreter (not a version-manager shim, which forks shell scripts
/// and would count against a small pids limit or show up as extra processes).
pub fn python3() -> &'static Path {
    static EXE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    EXE.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 is installed (scripts/deps.sh)");
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

/// A helper process (`python3 -c SCRIPT`) the test talks to by lines: it prints a line
/// when it reached a state, and moves on when it reads one. Killed and reaped on drop.
pub struct Helper {
    pub child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Helper {
    pub fn python(script: &str) -> Helper {
        Self::spawn(Command::new(python3()).arg("-c").arg(script))
    }

    pub fn spawn(cmd: &mut Command) -> Helper {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn helper");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Helper {
            child,
            stdin,
            stdout,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Reads lines until one starts with `prefix`; returns it.
    pub fn expect(&mut self, prefix: &str) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.stdout.read_line(&mut line).unwrap();
            assert!(n > 0, "helper exited before printing {prefix:?}");
            if line.starts_with(prefix) {
                return line.trim_end().to_string();
            }
        }
    }

    pub fn say(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` every 20 ms until it returns true or `limit` passes; returns the last result.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if f() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The state letter of a process from `/proc/PID/stat`, or None when it is gone.
pub fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

/// A sysctl set for a test and restored on drop (also when the test panics).
pub struct SysctlGuard {
    path: PathBuf,
    old: String,
}

impl SysctlGuard {
    pub fn set(name: &str, value: &str) -> SysctlGuard {
        let path = PathBuf::from("/proc/sys").join(name.replace('.', "/"));
        let old = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, value).unwrap();
        SysctlGuard { path, old }
    }
}

impl Drop for SysctlGuard {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.path, self.old.trim());
    }
}

/// Where the `pids` controller is mounted on this host, read through the product's own
/// snapshot (v1 `pids` hierarchy, else the v2 mount).
pub fn pids_mount() -> PathBuf {
    let s = super::snapshot_of("/");
    let c = s.cgroups.expect("cgroups read");
    let m = c
        .v1_mounts
        .get("pids")
        .cloned()
        .or(c.v2_mount.clone())
        .expect("a pids or v2 cgroup mount");
    PathBuf::from(m)
}

/// The v1 freezer hierarchy, when mounted.
pub fn freezer_mount() -> Option<PathBuf> {
    super::snapshot_of("/")
        .cgroups?
        .v1_mounts
        .get("freezer")
        .map(PathBuf::from)
}

/// A host root whose `proc` is the host's procfs (bind-mounted, as `/host` is in a
/// DaemonSet) with a tmpfs at `<root>/<rel>`; both unmounted on drop (the tmpfs first).
pub struct TmpfsRoot {
    pub mount: PathBuf,
    proc_: PathBuf,
    root: tempfile::TempDir,
}

impl TmpfsRoot {
    pub fn root(&self) -> &Path {
        self.root.path()
    }
}

impl Drop for TmpfsRoot {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).status();
        let _ = Command::new("umount").arg(&self.proc_).status();
    }
}

pub fn tmpfs_root(rel: &str, options: &str) -> TmpfsRoot {
    let root = tempfile::tempdir().unwrap();
    // The host's proc, so the mount table (and processes, sysctls) are read as on a node. A
    // bind mount, not a symlink: symlinks under a root resolve inside it.
    let proc_ = root.path().join("proc");
    std::fs::create_dir(&proc_).unwrap();
    let bound = Command::new("mount")
        .args(["--bind", "/proc"])
        .arg(&proc_)
        .status()
        .unwrap();
    assert!(bound.success(), "bind-mount /proc");
    let mount = root.path().join(rel);
    std::fs::create_dir_all(&mount).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", options, "tmpfs"])
        .arg(&mount)
        .status()
        .unwrap();
    let guard = TmpfsRoot { mount, proc_, root };
    assert!(ok.success(), "mount tmpfs");
    guard
}

/// Processes whose `comm` is `comm` now.
pub fn pids_with_comm(comm: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == comm))
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// Mount points at or below `dir`, from our mount table.
pub fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    table
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|mp| mp.starts_with(dir))
        .collect()
}

/// The fusectl directory of the FUSE connection mounted at `mnt`: named after the mount's
/// device number (fs/fuse/control.c `fuse_ctl_add_conn`: `sprintf("%u", fc->dev)`).
fn fuse_connection(mnt: &Path) -> Option<PathBuf> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let dev = table
        .lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .find(|f| f.get(4).is_some_and(|mp| Path::new(mp) == mnt))?
        .get(2)?
        .to_string();
    let (major, minor) = dev.split_once(':')?;
    let (major, minor): (u32, u32) = (major.parse().ok()?, minor.parse().ok()?);
    // The kernel's internal dev_t: MKDEV(major, minor) = major << 20 | minor.
    Some(PathBuf::from(format!(
        "/sys/fs/fuse/connections/{}",
        (major << 20) | minor
    )))
}

/// Mounts fusectl at /sys/fs/fuse/connections unless it is there (LAB.md: mount it first).
/// It stays mounted: other tests and tools on this host use it too.
fn ensure_fusectl() {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    if !table.lines().any(|l| l.contains(" - fusectl ")) {
        let _ = Command::new("mount")
            .args(["-t", "fusectl", "fusectl", "/sys/fs/fuse/connections"])
            .status();
    }
}

/// A FUSE filesystem whose server answers INIT and then nothing
/// (tests/helpers/fuse_never_answers.py), mounted at `mnt`: a process that stats it waits in
/// `request_wait_answer`, and once signalled, uninterruptibly. On drop the connection is
/// aborted through fusectl (freeing every waiter, also probes node-doctor left blocked), the
/// daemon is killed (closing /dev/fuse aborts it too) and the mount is lazily unmounted.
pub struct DeadFuse {
    daemon: Option<Helper>,
    pub mnt: PathBuf,
    connection: Option<PathBuf>,
}

impl DeadFuse {
    pub fn mount_at(mnt: &Path) -> DeadFuse {
        ensure_fusectl();
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/fuse_never_answers.py");
        let mut daemon = Helper::spawn(Command::new(python3()).arg(script).arg(mnt));
        let mut fuse = DeadFuse {
            daemon: None,
            mnt: mnt.to_path_buf(),
            connection: None,
        };
        daemon.expect("mounted");
        fuse.daemon = Some(daemon);
        fuse.connection = fuse_connection(mnt);
        fuse
    }

    /// Aborts the connection: every request waiting on it fails with ENOTCONN.
    pub fn abort(&self) {
        if let Some(c) = &self.connection {
            let _ = std::fs::write(c.join("abort"), "1");
        }
    }
}

impl Drop for DeadFuse {
    fn drop(&mut self) {
        self.abort();
        drop(self.daemon.take());
        let unmounted = Command::new("fusermount3")
            .arg("-u")
            .arg("-z")
            .arg(&self.mnt)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        }
    }
}
