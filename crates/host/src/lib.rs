//! node-doctor's host side: the only code that touches the machine.
//!
//! - [`fs`]: the one seam to the host's files ([`fs::HostFs`]), rooted at the host root;
//! - [`kernel`]: the kernel interfaces that are not files ([`kernel::Kernel`]);
//! - [`fixture`]: fixture trees that carry what no file holds (clock, statvfs, kmsg);
//! - [`blocking`]: deadline-bounded calls that can block in the kernel, and [`probe`]: the
//!   probes of watched filesystems, in a child process where a stuck one cannot hold us;
//! - [`collect`]: collectors that read the host into a [`Snapshot`], as the checks need;
//! - [`sources`] and [`logmon`]: log sources followed, and the log monitor over them;
//! - [`sampler`]: one-shot sampling (two samples a window apart) and running the checks.
//!
//! Readers know files, not policy: they return typed values or an [`Unavailable`] that
//! names the file and the kind of failure; a missing file never aborts a run.

pub mod blocking;
pub mod collect;
pub mod cri;
pub mod fixture;
pub mod fs;
pub mod kernel;
pub mod klog;
pub mod localtime;
pub mod logmon;
pub mod parse;
pub mod probe;
pub mod sampler;
pub mod sources;

pub use node_doctor_core::model::{Snapshot, Unavailable};

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A host to read: its files and its kernel.
#[derive(Clone)]
pub struct Host {
    pub fs: Arc<dyn fs::HostFs>,
    pub kernel: Arc<dyn kernel::Kernel>,
    /// The fixture descriptor's description, when the root is a fixture tree.
    pub fixture: Option<String>,
    /// Where probes that can block forever (statvfs of a dead mount) run.
    pub probes: probe::Probes,
}

impl Host {
    /// The host visible under `root`: a fixture tree (with its descriptor) replays as the
    /// host it describes; anything else is read live.
    pub fn open(root: impl AsRef<Path>) -> Result<Host, String> {
        let root = root.as_ref();
        let real = fs::RealFs::new(root).map_err(|e| format!("cannot open the host root: {e}"))?;
        match fixture::descriptor(&real)? {
            Some(d) => {
                let about = d.about.clone();
                Ok(Host {
                    fs: Arc::new(d.tree(real)),
                    kernel: Arc::new(fixture::FixtureKernel::new(d)),
                    fixture: Some(about),
                    probes: probe::Probes::InThread,
                })
            }
            None => Ok(Host {
                fs: Arc::new(real),
                kernel: Arc::new(kernel::RealKernel::new(root)),
                fixture: None,
                probes: probe::Probes::InThread,
            }),
        }
    }

    /// Runs blocking probes in child processes of `exe` (the node-doctor binary, which
    /// answers [`probe::CHILD_ARG`]), so that a probe stuck on a dead mount cannot keep this
    /// process from exiting. A fixture tree's answers come from its descriptor: it keeps
    /// probing in process.
    pub fn probe_in_child(mut self, exe: impl Into<PathBuf>) -> Host {
        if self.fixture.is_none() {
            self.probes = probe::Probes::InChild(exe.into());
        }
        self
    }
}
