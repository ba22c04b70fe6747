//! The snapshot schema: plain serde data read from a host, saved and replayed.

pub mod cgroups;
pub mod fs;
pub mod kernel;
pub mod log;
pub mod pipes;
pub mod process;
pub mod runtime;
pub mod snapshot;
pub mod unavailable;

pub use cgroups::{Cgroups, Controller, Hierarchy, PidsCgroup};
pub use fs::{FilesystemUsage, Role};
pub use kernel::{HostInfo, LoadAverage, Meminfo, Mount, Pressure, PressurePair, PressureRecord};
pub use log::{JournalFilter, KernelLog, LogRecord, Source};
pub use pipes::{Pipe, PipeEnd, PipeScan, Sizing};
pub use process::{CgroupMembership, ProcState, Process, Rlimit, ScanReport};
pub use runtime::{
    CallOutcome, ConfigFile, Container, CriCall, CriProbe, CriRecording, CriVersion, DaemonLog,
    Ingest, Kubelet, Pod, Runtime, RuntimeCondition, RuntimeDaemon, Workloads,
};
pub use snapshot::{Reader, Recording, RecordingError, Snapshot};
pub use unavailable::{Kind, Unavailable};
