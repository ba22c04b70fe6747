//! The container runtime and the kubelet as read from the node: plain data.
//!
//! - [`Runtime`]: the runtime daemons found by process (containerd, dockerd, cri-o,
//!   cri-dockerd), what their CRI socket answered ([`CriProbe`]: `Version`, `Status`, each
//!   call timed against a deadline), and the image content being downloaded ([`Ingest`]);
//! - [`Workloads`]: the pods and containers running on the node with their names, from the
//!   CRI (`ListPodSandbox`, `ListContainers`, `ContainerStatus`) when it answers, else from
//!   the kubelet's log directories (`/var/log/pods/<namespace>_<name>_<uid>/<container>/`,
//!   `/var/log/containers/<pod>_<namespace>_<container>-<id>.log`);
//! - [`Kubelet`]: the kubelet process, its command line and the configuration files it
//!   names, as text (parsed by [`crate::kubelet`], so a better parser applies to old
//!   recordings too);
//! - [`DaemonLog`]: recent lines of the kubelet's and the runtime's own logs (journal unit,
//!   or the file their stderr goes to).

use super::log::LogRecord;
use serde::{Deserialize, Serialize};

/// What was read about the container runtime.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Runtime {
    /// Runtime daemons by process, pid order.
    pub daemons: Vec<RuntimeDaemon>,
    /// The CRI endpoint probed and what it answered; absent when there was none to probe.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cri: Option<CriProbe>,
    /// containerd's content ingests (downloads in progress), absent when no content store
    /// was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingests: Option<Vec<Ingest>>,
    /// Where the ingests were listed (`var/lib/containerd/io.containerd.content.v1.content/ingest`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingest_dir: Option<String>,
}

/// A container runtime daemon found by process.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RuntimeDaemon {
    /// `containerd`, `dockerd`, `crio`, `cri-dockerd`.
    pub kind: String,
    pub pid: i32,
    /// Its command line (absent when it could not be read, or it is in D state).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// The configuration file its flags name (`--config`), when one was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_path: Option<String>,
    /// The socket it serves (`[grpc] address`, `--listen`, `--address`), host path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
    /// containerd's `root` directory (content store, snapshots), host path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_dir: Option<String>,
}

/// One CRI endpoint and what it answered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CriProbe {
    /// The socket, as a host path (`/run/containerd/containerd.sock`).
    pub endpoint: String,
    /// Why this endpoint was chosen: `kubelet --container-runtime-endpoint`, `kubelet
    /// config containerRuntimeEndpoint`, `containerd config [grpc] address`, `default`.
    pub chosen_by: String,
    /// Per-call deadline, ms.
    pub deadline_ms: u64,
    /// Every call made, in order.
    pub calls: Vec<CriCall>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<CriVersion>,
    /// `Status`'s conditions (RuntimeReady, NetworkReady).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<RuntimeCondition>>,
}

impl CriProbe {
    pub fn call(&self, method: &str) -> Option<&CriCall> {
        self.calls.iter().find(|c| c.method == method)
    }
}

/// How one CRI call went.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CriCall {
    /// `Version`, `Status`, `ListPodSandbox`, `ListContainers`, `ContainerStatus`.
    pub method: String,
    pub outcome: CallOutcome,
    /// Wall time until it answered or was abandoned.
    pub ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    #[default]
    Ok,
    /// No answer within the deadline: the socket accepted and never answered, or the
    /// runtime is stuck behind something (a hung `runc init`).
    Timeout,
    /// Nothing listens there (ENOENT, ECONNREFUSED).
    Unreachable,
    /// It answered with an error (a gRPC status), or the answer could not be decoded.
    Error,
}

/// `Version`'s answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CriVersion {
    pub version: String,
    pub runtime_name: String,
    pub runtime_version: String,
    pub runtime_api_version: String,
}

/// One of `Status`'s conditions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RuntimeCondition {
    /// `RuntimeReady`, `NetworkReady`.
    #[serde(rename = "type")]
    pub type_: String,
    pub status: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// A download into containerd's content store, in progress
/// (`<root>/io.containerd.content.v1.content/ingest/<hash>/`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Ingest {
    /// The ingest's directory name.
    pub id: String,
    /// Its `ref` file: the content being fetched (`k8s.io/1/layer-sha256:…`).
    pub reference: String,
    /// Bytes written so far (`data`'s size).
    pub bytes: u64,
    /// Expected size (`total`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// `startedat`, ms since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at_ms: Option<u64>,
}

/// Pods and containers on the node, with their names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Workloads {
    /// `cri` (the runtime answered) or `var/log/pods` (the kubelet's log directories).
    pub source: String,
    pub pods: Vec<Pod>,
    pub containers: Vec<Container>,
    /// Why the CRI could not be used, when the log directories were.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
}

impl Workloads {
    pub fn pod_by_uid(&self, uid: &str) -> Option<&Pod> {
        self.pods.iter().find(|p| p.uid == uid)
    }

    pub fn pod_by_sandbox(&self, id: &str) -> Option<&Pod> {
        self.pods
            .iter()
            .find(|p| p.sandbox_id.as_deref() == Some(id))
    }

    /// A container by id; a cgroup path may carry the full id, the CRI always does.
    pub fn container(&self, id: &str) -> Option<&Container> {
        self.containers.iter().find(|c| c.id == id)
    }

    /// The pod a container belongs to.
    pub fn pod_of(&self, c: &Container) -> Option<&Pod> {
        c.pod_uid
            .as_deref()
            .and_then(|u| self.pod_by_uid(u))
            .or_else(|| c.sandbox_id.as_deref().and_then(|s| self.pod_by_sandbox(s)))
    }
}

/// A pod (its sandbox, in CRI terms).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pod {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox_id: Option<String>,
    /// `ready` or `notready` (CRI), absent from log directories.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at_ms: Option<u64>,
}

/// A container of a pod.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Container {
    /// The runtime's id (64 hex for containerd and cri-o); empty when only the log directory
    /// named it.
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `created`, `running`, `exited`, `unknown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The container's init, host pid (verbose `ContainerStatus`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at_ms: Option<u64>,
}

/// The kubelet as found on the node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Kubelet {
    /// Its process (absent: no process named `kubelet` runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// Its command line, argv[0] first (absent when unreadable or in D state).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Its executable (`/proc/PID/exe`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    /// The `--config` file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigFile>,
    /// `--config-dir` drop-ins (`*.conf`), in the lexical order the kubelet applies them.
    pub drop_ins: Vec<ConfigFile>,
    /// Its version, and where it was read (`dpkg kubelet`, `kubelet log`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_source: Option<String>,
}

/// A configuration file as read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfigFile {
    /// Host path.
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Why it could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Recent lines of a daemon's own log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DaemonLog {
    /// `kubelet`, `containerd`, `dockerd`, `crio`.
    pub daemon: String,
    /// Where: `journal:kubelet.service`, `file:/var/log/kubelet.log`.
    pub source: String,
    /// Lines read since `since_ms`.
    pub lines: u64,
    /// The lines kept: those the checks look at ([`crate::kubelet::keep_line`]), newest
    /// last, at most [`MAX_DAEMON_LINES`].
    pub records: Vec<LogRecord>,
    /// Kept-worthy lines dropped by the bound (the oldest).
    pub not_kept: u64,
    /// The start of the window read (ms since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a CRI socket answered, as a fixture tree replays it (its descriptor's `cri`): the
/// calls, and the pods and containers when the lists answered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CriRecording {
    pub probe: CriProbe,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workloads: Option<Workloads>,
}

/// Most lines kept per daemon log.
pub const MAX_DAEMON_LINES: usize = 2000;
