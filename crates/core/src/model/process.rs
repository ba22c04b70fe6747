//! The process table as read from `/proc/<pid>/`: plain data. Fields a reader could not fill
//! are `None` (a process whose `status` could not be read is not uid 0 with no capabilities).

use super::unavailable::Unavailable;
use crate::attribution::CgroupOwner;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The one-letter state of `/proc/PID/stat` (fs/proc/array.c `task_state_array`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ProcState {
    #[serde(rename = "R")]
    Running,
    #[serde(rename = "S")]
    #[default]
    Sleeping,
    /// Uninterruptible sleep (includes TASK_KILLABLE waits, which also show as D).
    #[serde(rename = "D")]
    DiskSleep,
    #[serde(rename = "Z")]
    Zombie,
    #[serde(rename = "T")]
    Stopped,
    #[serde(rename = "t")]
    TracingStop,
    #[serde(rename = "X")]
    Dead,
    #[serde(rename = "I")]
    Idle,
    #[serde(rename = "P")]
    Parked,
    #[serde(rename = "W")]
    Waking,
    #[serde(rename = "K")]
    Wakekill,
    /// A letter this version does not know (a newer kernel's).
    #[serde(rename = "?", alias = "other")]
    #[serde(other)]
    Other,
}

impl ProcState {
    pub fn from_char(c: char) -> ProcState {
        match c {
            'R' => ProcState::Running,
            'S' => ProcState::Sleeping,
            'D' => ProcState::DiskSleep,
            'Z' => ProcState::Zombie,
            'T' => ProcState::Stopped,
            't' => ProcState::TracingStop,
            'X' | 'x' => ProcState::Dead,
            'I' => ProcState::Idle,
            'P' => ProcState::Parked,
            'W' => ProcState::Waking,
            'K' => ProcState::Wakekill,
            _ => ProcState::Other,
        }
    }

    pub fn as_char(self) -> char {
        match self {
            ProcState::Running => 'R',
            ProcState::Sleeping => 'S',
            ProcState::DiskSleep => 'D',
            ProcState::Zombie => 'Z',
            ProcState::Stopped => 'T',
            ProcState::TracingStop => 't',
            ProcState::Dead => 'X',
            ProcState::Idle => 'I',
            ProcState::Parked => 'P',
            ProcState::Waking => 'W',
            ProcState::Wakekill => 'K',
            ProcState::Other => '?',
        }
    }
}

impl std::fmt::Display for ProcState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.as_char())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Process {
    pub pid: i32,
    pub ppid: i32,
    /// The kernel's `comm` (at most 15 bytes, may contain spaces, parentheses, newlines).
    pub comm: String,
    pub state: ProcState,
    /// Start time in clock ticks since boot (`stat` field 22).
    pub start_time_ticks: u64,
    /// Threads (`stat` field 20, or `Threads` in `status`).
    #[serde(default = "one")]
    pub threads: u64,
    /// User + system CPU time in clock ticks (`stat` fields 14 and 15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ticks: Option<u64>,
    /// Real and effective uid (`status` `Uid`); `None` when `status` could not be read.
    #[serde(default)]
    pub uid: Option<u32>,
    #[serde(default)]
    pub euid: Option<u32>,
    /// Effective capabilities bitmask (`CapEff`).
    #[serde(default)]
    pub cap_eff: Option<u64>,
    /// Pending signals of the thread (`SigPnd`) and of the whole process (`ShdPnd`).
    #[serde(default)]
    pub sig_pending: Option<u64>,
    #[serde(default)]
    pub shared_sig_pending: Option<u64>,
    /// Shared: processes of one cgroup have the same memberships, and the scan parses each
    /// distinct `/proc/PID/cgroup` text once (10000 processes are ~10 distinct texts, not
    /// 200000 strings).
    #[serde(default)]
    pub cgroups: Arc<[CgroupMembership]>,
    /// The container and pod the cgroup paths name. Derived from `cgroups`
    /// ([`crate::attribution::owner_of`]) and recomputed when a recording is loaded, so
    /// better attribution applies to old recordings too.
    #[serde(flatten)]
    pub owner: CgroupOwner,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rlimit_nofile: Option<Rlimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rlimit_core: Option<Rlimit>,
    /// Entries in `/proc/PID/fd`; absent when the directory was not (or could not be) listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_fds: Option<u64>,
    /// The pid inside the process's own PID namespace (last `NSpid` entry): 1 for a
    /// container's init.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ns_pid: Option<i32>,
    /// Where a blocked process sleeps in the kernel (`/proc/PID/wchan`), read only for
    /// processes in D state and runc processes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wchan: Option<String>,
    /// The kernel stack (`/proc/PID/stack`, root only), read only for processes in D state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_stack: Option<Vec<String>>,
    /// The executable's path (`/proc/PID/exe`), read only for runc processes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    /// The first arguments, read only for a process named `runc` that is not in D state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<Vec<String>>,
    /// The kernel is writing its core right now (`status` `CoreDumping: 1`, 4.15+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core_dumping: Option<bool>,
    /// Resident anonymous and shared memory (`status` `RssAnon` + `RssShmem`, 4.5+), bytes:
    /// about what a core of it holds (the default `coredump_filter` dumps anonymous private
    /// and shared mappings, not file-backed ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_anon_bytes: Option<u64>,
    /// How `/proc/sys` is mounted in its mount namespace, read only for container processes
    /// that could write it (root or full capabilities).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proc_sys: Option<ProcSysMount>,
}

/// Whether a process can write `/proc/sys` (a privileged container can: runtimes mount it
/// read-only for the others).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcSysMount {
    pub writable: bool,
    /// Where, inside the process's mount namespace ("/proc/sys", "/host/proc/sys").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writable_at: Option<String>,
    /// Its mount namespace (`ns/mnt` inode): processes sharing it share the answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mnt_ns: Option<u64>,
}

fn one() -> u64 {
    1
}

impl Process {
    /// A process as `stat` describes it; everything else unknown until read.
    pub fn new(pid: i32, ppid: i32, comm: &str, state: ProcState, start_time_ticks: u64) -> Self {
        Process {
            pid,
            ppid,
            comm: comm.to_string(),
            state,
            start_time_ticks,
            threads: 1,
            cpu_ticks: None,
            uid: None,
            euid: None,
            cap_eff: None,
            sig_pending: None,
            shared_sig_pending: None,
            cgroups: Arc::default(),
            owner: CgroupOwner::default(),
            rlimit_nofile: None,
            rlimit_core: None,
            open_fds: None,
            ns_pid: None,
            wchan: None,
            kernel_stack: None,
            exe: None,
            cmdline: None,
            core_dumping: None,
            mem_anon_bytes: None,
            proc_sys: None,
        }
    }

    /// Same process in two samples: pids are reused, start times are not.
    pub fn same_as(&self, other: &Process) -> bool {
        self.pid == other.pid && self.start_time_ticks == other.start_time_ticks
    }

    /// SIGKILL (signal 9, bit 8 of the pending masks) is queued but not yet acted on: the
    /// process is in an uninterruptible sleep that does not check for fatal signals.
    /// `None` when `status` could not be read.
    pub fn sigkill_pending(&self) -> Option<bool> {
        const SIGKILL_BIT: u64 = 1 << 8;
        match (self.sig_pending, self.shared_sig_pending) {
            (None, None) => None,
            (a, b) => Some((a.unwrap_or(0) | b.unwrap_or(0)) & SIGKILL_BIT != 0),
        }
    }

    pub fn in_d_state(&self) -> bool {
        self.state == ProcState::DiskSleep
    }

    pub fn is_zombie(&self) -> bool {
        self.state == ProcState::Zombie
    }

    /// Its cgroup path names a container or a pod.
    pub fn in_container(&self) -> bool {
        !self.owner.is_empty()
    }

    /// CAP_SYS_ADMIN (bit 21) is effective: what a privileged container (or one given
    /// SYS_ADMIN) has; runtimes' default sets lack it.
    pub fn has_sys_admin(&self) -> bool {
        self.cap_eff.is_some_and(|c| c & (1 << 21) != 0)
    }

    /// The cgroup path of this process in the hierarchy that holds `controller`
    /// (a v1 hierarchy listing it, else the v2 path).
    pub fn cgroup_path_for(&self, controller: &str) -> Option<&str> {
        self.cgroups
            .iter()
            .find(|c| c.hierarchy != 0 && c.controllers.split(',').any(|n| n == controller))
            .or_else(|| self.cgroups.iter().find(|c| c.hierarchy == 0))
            .map(|c| c.path.as_str())
    }
}

/// One line of `/proc/PID/cgroup`: hierarchy id (0 for v2), controllers, path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CgroupMembership {
    pub hierarchy: u32,
    /// Comma-separated v1 controllers ("pids", "cpu,cpuacct", "name=systemd"); empty for v2.
    #[serde(default)]
    pub controllers: String,
    pub path: String,
}

/// A resource limit; `None` means unlimited (RLIM_INFINITY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    #[serde(default)]
    pub soft: Option<u64>,
    #[serde(default)]
    pub hard: Option<u64>,
}

/// How the scan went: how many processes were listed, read, vanished, or left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScanReport {
    pub listed: u64,
    pub read: u64,
    /// Exited between `readdir` and a read of their files: normal churn.
    pub vanished: u64,
    /// Not read because the scan's deadline passed first.
    pub skipped_for_deadline: u64,
    /// Listed but not read because the scan's bound on processes was reached.
    pub skipped_for_cap: u64,
    /// Processes whose `fd/` (or `limits`) could not be read for lack of permission: another
    /// user's processes when not running as root (or without CAP_DAC_READ_SEARCH +
    /// CAP_SYS_PTRACE in a container).
    pub fds_denied: u64,
    /// Per-process files that could not be read (capped; see `problems_not_kept`).
    pub problems: Vec<Unavailable>,
    pub problems_not_kept: u64,
}

/// Most per-process problems a scan keeps.
pub const MAX_PROBLEMS_KEPT: usize = 50;

impl ScanReport {
    pub fn problem(&mut self, u: Unavailable) {
        super::unavailable::push_capped(
            &mut self.problems,
            &mut self.problems_not_kept,
            MAX_PROBLEMS_KEPT,
            u,
        );
    }

    /// Processes listed but not read for any reason other than having exited.
    pub fn left_out(&self) -> u64 {
        self.skipped_for_deadline
            .saturating_add(self.skipped_for_cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_serialize_as_the_kernels_letter() {
        assert_eq!(
            serde_json::to_string(&ProcState::DiskSleep).unwrap(),
            "\"D\""
        );
        let s: ProcState = serde_json::from_str("\"Z\"").unwrap();
        assert!(s == ProcState::Zombie);
        let s: ProcState = serde_json::from_str("\"Q\"").unwrap();
        assert_eq!(s, ProcState::Other);
        for c in "RSDZTtXIPWK".chars() {
            assert_eq!(
                ProcState::from_char(c).as_char(),
                if c == 'x' { 'X' } else { c }
            );
        }
    }

    #[test]
    fn unknown_status_is_not_root_without_signals() {
        let p = Process::new(1, 0, "x", ProcState::DiskSleep, 1);
        assert_eq!(p.uid, None);
        assert_eq!(p.sigkill_pending(), None);
        let old: Process = serde_json::from_str(
            r#"{"pid":5,"ppid":1,"comm":"a","state":"S","start_time_ticks":9,"uid":0,"euid":0,
                "threads":2,"cap_eff":0,"sig_pending":0,"shared_sig_pending":256,"cgroups":[]}"#,
        )
        .unwrap();
        assert_eq!(old.uid, Some(0));
        assert_eq!(old.sigkill_pending(), Some(true));
    }
}
