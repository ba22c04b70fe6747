//! The snapshot schema: plain serde data read from a host, saved and replayed.

pub mod cgroups;
pub mod coredump;
pub mod fs;
pub mod kernel;
pub mod log;
pub mod memory;
pub mod mount_owners;
pub mod pipes;
pub mod process;
pub mod runtime;
pub mod snapshot;
pub mod sysctl_conf;
pub mod unavailable;

pub use cgroups::{Cgroups, Controller, Hierarchy, PidsCgroup};
pub use coredump::{ConfFile, CoredumpHost, DumpFile, DumpStore, HandlerFile};
pub use fs::{DeletedHolder, DeletedOpenFiles, FilesystemUsage, Role};
pub use kernel::{HostInfo, LoadAverage, Meminfo, Mount, Pressure, PressurePair, PressureRecord};
pub use log::{JournalFilter, KernelLog, LogRecord, Source};
pub use memory::{MemoryCgroup, MemoryEvents, MemoryStat, OomControl, StatLatency};
pub use mount_owners::{PodsDir, Systemd};
pub use pipes::{Pipe, PipeEnd, PipeScan, Sizing};
pub use process::{CgroupMembership, ProcState, ProcSysMount, Process, Rlimit, ScanReport};
pub use runtime::{
    CallOutcome, ConfigFile, Container, CriCall, CriProbe, CriRecording, CriVersion, DaemonLog,
    Ingest, Kubelet, Pod, Runtime, RuntimeCondition, RuntimeDaemon, Workloads,
};
pub use snapshot::{Reader, Recording, RecordingError, Snapshot};
pub use sysctl_conf::{SysctlConf, SysctlEntry, SysctlFile};
pub use unavailable::{Kind, Unavailable};
