//! The state directory (`--state-dir`, a hostPath in the DaemonSet): what must survive a
//! restart. Log positions (so a restart neither loses nor replays lines), the conditions'
//! bookkeeping (boot id of until-reboot conditions, clean-run counts), and the flight
//! recorder's recordings. Written atomically; a damaged file is set aside, never fatal.

use crate::conditions::CondState;
use node_doctor_core::model::Recording;
use node_doctor_core::model::log::Position;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Persisted {
    pub positions: BTreeMap<String, Position>,
    pub conditions: BTreeMap<String, CondState>,
}

pub struct StateDir {
    dir: PathBuf,
    /// The state file's content as last written by this process.
    written: Option<Vec<u8>>,
}

impl StateDir {
    pub fn open(dir: &Path) -> std::io::Result<StateDir> {
        std::fs::create_dir_all(dir.join("recordings"))?;
        Ok(StateDir {
            dir: dir.to_path_buf(),
            written: None,
        })
    }

    fn state_file(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// What an earlier run persisted; a missing or damaged file is an empty state (a
    /// damaged one is kept aside as `state.json.bad`).
    pub fn load(&self) -> Persisted {
        let p = self.state_file();
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|_| {
                let _ = std::fs::rename(&p, self.dir.join("state.json.bad"));
                Persisted::default()
            }),
            Err(_) => Persisted::default(),
        }
    }

    /// Writes the state when it differs from what was last written (an idle agent's ticks
    /// change nothing, and each write is an fsync and a rename). Returns whether it wrote.
    pub fn save(&mut self, s: &Persisted) -> std::io::Result<bool> {
        let bytes = serde_json::to_vec(s).unwrap_or_default();
        if self.written.as_deref() == Some(&bytes[..]) {
            return Ok(false);
        }
        write_atomic(&self.state_file(), &bytes)?;
        self.written = Some(bytes);
        Ok(true)
    }

    /// The flight recorder: the last samples when a condition turned True, so `node-doctor
    /// check --from` replays the evidence later. Keeps at most `max_files` recordings and
    /// `max_bytes` in all, the oldest removed first.
    pub fn record(
        &self,
        name: &str,
        rec: &Recording,
        max_files: usize,
        max_bytes: u64,
    ) -> std::io::Result<PathBuf> {
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = self.dir.join("recordings").join(format!("{safe}.json"));
        write_atomic(&path, &rec.to_json())?;
        self.prune(max_files, max_bytes)?;
        Ok(path)
    }

    fn prune(&self, max_files: usize, max_bytes: u64) -> std::io::Result<()> {
        let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> =
            std::fs::read_dir(self.dir.join("recordings"))?
                .filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .filter_map(|e| {
                    let m = e.metadata().ok()?;
                    Some((m.modified().ok()?, m.len(), e.path()))
                })
                .collect();
        files.sort();
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        let mut n = files.len();
        for (_, len, path) in files {
            if n <= max_files && total <= max_bytes {
                break;
            }
            std::fs::remove_file(&path)?;
            n = n.saturating_sub(1);
            total = total.saturating_sub(len);
        }
        Ok(())
    }
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let r = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_garbage_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = StateDir::open(dir.path()).unwrap();
        assert_eq!(s.load(), Persisted::default());
        let mut p = Persisted::default();
        p.positions.insert(
            "kmsg".into(),
            Position::Kmsg {
                boot_id: Some("b".into()),
                next_seq: 42,
                last_time_ms: None,
            },
        );
        assert!(s.save(&p).unwrap());
        assert_eq!(s.load(), p);
        // An unchanged state is not written again (no fsync and rename per idle tick).
        assert!(!s.save(&p).unwrap());
        p.positions.clear();
        assert!(s.save(&p).unwrap());
        assert_eq!(s.load(), p);
        std::fs::write(dir.path().join("state.json"), b"\x00garbage").unwrap();
        assert_eq!(s.load(), Persisted::default());
        assert!(dir.path().join("state.json.bad").exists());
    }

    #[test]
    fn recordings_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateDir::open(dir.path()).unwrap();
        let rec = Recording::new(vec![node_doctor_core::model::Snapshot::default()]);
        for i in 0..5 {
            s.record(&format!("{i}-ZombieProcesses"), &rec, 3, u64::MAX)
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(15));
        }
        let n = std::fs::read_dir(dir.path().join("recordings"))
            .unwrap()
            .count();
        assert_eq!(n, 3);
    }
}
