//! A kubelet-shaped process and kubelet journal lines, for live tests.
//!
//! - [`FakeKubelet`]: a tiny program compiled at test time and named `kubelet`, started with
//!   real kubelet flags and a KubeletConfiguration file: what node-doctor discovers by
//!   process (`comm`, `/proc/PID/cmdline`, the `--config` file). Killed on drop.
//! - [`JournalLines`]: journal entries of unit `kubelet.service`, written the way journald's
//!   own tools write them (export format through systemd-journal-remote) into
//!   `/var/log/journal/<machine-id>/`, where node-doctor reads the host's journal. The file
//!   is removed on drop. Hold `faults::serialize()` while it exists: it is the host's journal.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct FakeKubelet {
    pub dir: tempfile::TempDir,
    child: Child,
    pub config: PathBuf,
}

impl FakeKubelet {
    /// Starts `kubelet --config=<dir>/config.yaml ARGS...` with `config` as the file.
    pub fn start(config: &str, args: &[&str]) -> FakeKubelet {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("kubelet.c");
        std::fs::write(
            &src,
            "#include <unistd.h>\nint main(void) { for (;;) pause(); }\n",
        )
        .unwrap();
        let bin = dir.path().join("kubelet");
        let st = Command::new("cc")
            .arg("-o")
            .arg(&bin)
            .arg(&src)
            .status()
            .expect("cc is installed");
        assert!(st.success());
        let cfg = dir.path().join("config.yaml");
        std::fs::write(&cfg, config).unwrap();
        let child = Command::new(&bin)
            .arg(format!("--config={}", cfg.display()))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        assert!(crate::common::faults::wait_until(
            std::time::Duration::from_secs(5),
            || std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "kubelet")
        ));
        FakeKubelet {
            dir,
            child,
            config: cfg,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for FakeKubelet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct JournalLines {
    file: PathBuf,
    made_dir: Option<PathBuf>,
}

impl JournalLines {
    /// Writes `(unit, message, seconds ago)` entries.
    pub fn write(entries: &[(&str, &str, u64)]) -> JournalLines {
        Self::write_under(Path::new("/"), entries)
    }

    /// The same into the journal of the host root `root` (`<root>/var/log/journal`), as a
    /// file of its own each call (journald's tools read every file of the directory).
    pub fn write_under(root: &Path, entries: &[(&str, &str, u64)]) -> JournalLines {
        let machine = std::fs::read_to_string("/etc/machine-id")
            .map(|m| m.trim().to_string())
            .unwrap_or_else(|_| "0123456789abcdef0123456789abcdef".into());
        let dir = root.join("var/log/journal").join(&machine);
        let made_dir = (!dir.exists()).then(|| dir.clone());
        std::fs::create_dir_all(&dir).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros();
        let mut export = String::new();
        for (i, (unit, msg, ago)) in entries.iter().enumerate() {
            export.push_str(&format!(
                "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID=0123456789abcdef0123456789abcdef\n\
                 _SYSTEMD_UNIT={unit}\n_PID={}\n_COMM=kubelet\nMESSAGE={msg}\n\n",
                now - *ago as u128 * 1_000_000 + i as u128,
                1000 + i,
                4242
            ));
        }
        let tmp = tempfile::tempdir().unwrap();
        let input = tmp.path().join("export.txt");
        std::fs::write(&input, export).unwrap();
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let file = dir.join(format!(
            "node-doctor-test-{}-{n}.journal",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&file);
        let st = Command::new("/lib/systemd/systemd-journal-remote")
            .arg("-o")
            .arg(&file)
            .arg(&input)
            .stderr(Stdio::null())
            .status()
            .expect("systemd-journal-remote is installed (scripts/deps.sh)");
        assert!(st.success());
        JournalLines { file, made_dir }
    }
}

impl Drop for JournalLines {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
        if let Some(d) = &self.made_dir {
            let _ = std::fs::remove_dir(d);
        }
    }
}
