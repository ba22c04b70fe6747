//! Fixture trees: a directory holding a host's files (captured or reconstructed) plus a
//! descriptor, `.node-doctor-fixture.json` at its top, with what no file holds — the clock,
//! page size and CLK_TCK of that host, its kernel ring, `statvfs` answers, pipe sizes. A tree
//! with a descriptor replays as that host; without one, it is read like any root.
//!
//! The descriptor is honoured only when the tree's `proc` is not a live procfs, so a real
//! host cannot be made to lie by a file dropped at its root.

use crate::fs::{FsStat, HostFs};
use crate::kernel::{Kernel, KmsgRead, KmsgReader, PipeSize, PipeSizer, SizeError};
use node_doctor_core::model::{Reader, Sizing, Unavailable};
use serde::Deserialize;
use std::collections::BTreeMap;

pub const DESCRIPTOR: &str = ".node-doctor-fixture.json";

/// `PROC_SUPER_MAGIC` (include/uapi/linux/magic.h).
const PROC_SUPER_MAGIC: u64 = 0x9fa0;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Descriptor {
    /// What the tree shows (for humans).
    #[serde(default)]
    pub about: String,
    pub now_ms: u64,
    #[serde(default)]
    pub boot_wall_ms: Option<u64>,
    #[serde(default = "page")]
    pub page_size: u64,
    #[serde(default = "hz")]
    pub clock_ticks_per_sec: u64,
    #[serde(default)]
    pub reader: Option<ReaderSpec>,
    /// Records as `/dev/kmsg` prints them: `PRIO,SEQ,USEC,FLAGS;TEXT` (dictionary lines
    /// after `\n`, each starting with a space).
    #[serde(default)]
    pub kmsg: Option<Vec<String>>,
    /// `statvfs` answers by host path ("/", "/var/lib/kubelet").
    #[serde(default)]
    pub statvfs: BTreeMap<String, FsStat>,
    /// Pipe sizes by holder: what `pidfd_getfd` + `F_GETPIPE_SZ` would return there.
    #[serde(default)]
    pub pipes: Vec<PipeSpec>,
    /// How long timed reads took on that host, by host path, in ms (`memory.stat` of the
    /// memory root, whose latency dying-memcgs reports); unlisted paths took 0 ms. A
    /// replay measures nothing of its own, so its findings do not depend on this disk.
    #[serde(default)]
    pub read_latency_ms: BTreeMap<String, f64>,
    /// Sizes of files of the tree by host path (the tree holds them empty): what `lstat`
    /// would return there.
    #[serde(default)]
    pub file_sizes: BTreeMap<String, SizeSpec>,
    /// Open deleted files by holder (the tree holds the `fd/N -> path (deleted)` link): what
    /// `stat` of `/proc/PID/fd/N` would return there.
    #[serde(default)]
    pub deleted_files: Vec<DeletedSpec>,
    /// What the tree's CRI socket answers (calls, pods, containers): a recording of a real
    /// runtime's answers, replayed by the runtime collector.
    #[serde(default)]
    pub cri: Option<node_doctor_core::model::CriRecording>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizeSpec {
    pub size: u64,
    /// Bytes on disk; the size when absent.
    #[serde(default)]
    pub bytes: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeletedSpec {
    pub pid: i32,
    pub fd: i32,
    /// `major:minor` of its filesystem.
    pub device: String,
    pub size: u64,
    #[serde(default)]
    pub bytes: Option<u64>,
}

impl Descriptor {
    /// The tree's files as the descriptor describes them.
    pub fn tree(&self, real: crate::fs::RealFs) -> crate::fs::TreeFs {
        crate::fs::TreeFs::new(real, self.statvfs.clone())
            .with_latency(self.read_latency_ms.clone())
            .with_sizes(
                self.file_sizes
                    .iter()
                    .map(|(p, s)| (p.clone(), (s.size, s.bytes.unwrap_or(s.size))))
                    .collect(),
            )
            .with_deleted(
                self.deleted_files
                    .iter()
                    .map(|d| {
                        (
                            (d.pid, d.fd),
                            (d.device.clone(), d.size, d.bytes.unwrap_or(d.size)),
                        )
                    })
                    .collect(),
            )
    }
}

fn page() -> u64 {
    4096
}
fn hz() -> u64 {
    100
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReaderSpec {
    pub euid: u32,
    #[serde(default)]
    pub pid: i32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipeSpec {
    pub pid: i32,
    pub fd: i32,
    pub owner_uid: u32,
    pub size_bytes: u64,
    #[serde(default)]
    pub buffered_bytes: Option<u64>,
}

/// The descriptor of the tree at `fs`'s root, if it is a fixture tree.
pub fn descriptor(fs: &dyn HostFs) -> Result<Option<Descriptor>, String> {
    let live_proc =
        rustix::fs::statfs(fs.real_path("proc")).is_ok_and(|s| s.f_type as u64 == PROC_SUPER_MAGIC);
    if live_proc {
        return Ok(None);
    }
    match fs.read(DESCRIPTOR, crate::fs::LARGE_CAP) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| format!("{}/{DESCRIPTOR}: {e}", fs.root().display())),
        Err(u) if u.kind == node_doctor_core::model::Kind::NotFound => Ok(None),
        Err(u) => Err(u.to_string()),
    }
}

/// The kernel of a fixture tree. Its clock starts at the descriptor's `now_ms` and moves in
/// whole seconds of real time, so a one-shot window spaces two samples as it would on the
/// node, and a single sample always carries the descriptor's own time.
pub struct FixtureKernel {
    d: Descriptor,
    opened: std::time::Instant,
}

impl FixtureKernel {
    pub fn new(d: Descriptor) -> Self {
        Self {
            d,
            opened: std::time::Instant::now(),
        }
    }
}

struct FixtureKmsg {
    records: std::vec::IntoIter<String>,
}

impl KmsgReader for FixtureKmsg {
    fn read(&mut self, buf: &mut [u8]) -> KmsgRead {
        match self.records.next() {
            None => KmsgRead::Empty,
            Some(r) => {
                let b = r.as_bytes();
                let n = b.len().min(buf.len());
                if let (Some(dst), Some(src)) = (buf.get_mut(..n), b.get(..n)) {
                    dst.copy_from_slice(src);
                }
                KmsgRead::Record(n)
            }
        }
    }
    fn via(&self) -> &'static str {
        "fixture"
    }
}

struct FixturePipes {
    by_end: BTreeMap<(i32, i32), PipeSpec>,
}

impl PipeSizer for FixturePipes {
    fn size(&self, pid: i32, fds: &[(i32, u64)]) -> Vec<Result<PipeSize, SizeError>> {
        fds.iter()
            .map(|(fd, _)| {
                self.by_end
                    .get(&(pid, *fd))
                    .map(|p| PipeSize {
                        owner_uid: p.owner_uid,
                        size_bytes: p.size_bytes,
                        buffered_bytes: p.buffered_bytes,
                        fallback: false,
                    })
                    .ok_or(SizeError::Gone)
            })
            .collect()
    }
    fn sizing(&self) -> Sizing {
        Sizing::Fixture
    }
}

impl Kernel for FixtureKernel {
    fn cri_recording(&self) -> Option<node_doctor_core::model::CriRecording> {
        self.d.cri.clone()
    }
    fn dials_sockets(&self) -> bool {
        false
    }
    fn now_ms(&self) -> u64 {
        let whole_secs = self.opened.elapsed().as_secs();
        self.d
            .now_ms
            .saturating_add(whole_secs.saturating_mul(1000))
    }
    fn boot_wall_ms(&self) -> Option<u64> {
        self.d.boot_wall_ms
    }
    fn page_size(&self) -> u64 {
        self.d.page_size
    }
    fn clock_ticks_per_sec(&self) -> u64 {
        self.d.clock_ticks_per_sec
    }
    fn reader(&self) -> Reader {
        self.d
            .reader
            .map(|r| Reader {
                euid: r.euid,
                pid: r.pid,
            })
            .unwrap_or_default()
    }
    fn open_kmsg(&self) -> Result<Box<dyn KmsgReader>, Unavailable> {
        match &self.d.kmsg {
            Some(r) => Ok(Box::new(FixtureKmsg {
                records: r.clone().into_iter(),
            })),
            None => Err(Unavailable::new(
                "dev/kmsg",
                node_doctor_core::model::Kind::NotFound,
                "the fixture holds no kernel ring",
            )),
        }
    }
    fn pipe_sizer(&self, _: &dyn HostFs) -> Result<Box<dyn PipeSizer>, String> {
        if self.d.pipes.is_empty() {
            return Err("the fixture records no pipe sizes".into());
        }
        Ok(Box::new(FixturePipes {
            by_end: self
                .d
                .pipes
                .iter()
                .map(|p| ((p.pid, p.fd), p.clone()))
                .collect(),
        }))
    }
}
