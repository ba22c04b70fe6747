//! A CRI v1 client (gRPC over the runtime's unix socket): `Version`, `Status`,
//! `ListPodSandbox`, `ListContainers`, `ContainerStatus`. Read-only: node-doctor never asks
//! the runtime to change anything.
//!
//! The messages are the subset of `runtime.v1` (kubernetes/cri-api
//! `pkg/apis/runtime/v1/api.proto`) these calls use, with the proto's field numbers, written
//! as prost structs: no protoc at build time. Fields we do not declare are skipped by the
//! decoder, so newer runtimes' answers decode.
//!
//! gRPC needs an async runtime (tonic, hyper): a current-thread tokio runtime lives only
//! for one probe, on a thread of its own ([`crate::blocking`]), and every call has a hard
//! deadline. A socket that accepts and never answers costs one deadline and is reported as
//! a timeout; it can never hang node-doctor.

use node_doctor_core::model::runtime::{
    CallOutcome, Container, CriCall, CriProbe, CriVersion, Pod, RuntimeCondition, Workloads,
};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The messages of `runtime.v1` used here.
pub mod proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct VersionRequest {
        #[prost(string, tag = "1")]
        pub version: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct VersionResponse {
        #[prost(string, tag = "1")]
        pub version: String,
        #[prost(string, tag = "2")]
        pub runtime_name: String,
        #[prost(string, tag = "3")]
        pub runtime_version: String,
        #[prost(string, tag = "4")]
        pub runtime_api_version: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StatusRequest {
        #[prost(bool, tag = "1")]
        pub verbose: bool,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StatusResponse {
        #[prost(message, optional, tag = "1")]
        pub status: Option<RuntimeStatus>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RuntimeStatus {
        #[prost(message, repeated, tag = "1")]
        pub conditions: Vec<RuntimeCondition>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RuntimeCondition {
        #[prost(string, tag = "1")]
        pub r#type: String,
        #[prost(bool, tag = "2")]
        pub status: bool,
        #[prost(string, tag = "3")]
        pub reason: String,
        #[prost(string, tag = "4")]
        pub message: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListPodSandboxRequest {}
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListPodSandboxResponse {
        #[prost(message, repeated, tag = "1")]
        pub items: Vec<PodSandbox>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PodSandbox {
        #[prost(string, tag = "1")]
        pub id: String,
        #[prost(message, optional, tag = "2")]
        pub metadata: Option<PodSandboxMetadata>,
        /// SANDBOX_READY = 0, SANDBOX_NOTREADY = 1.
        #[prost(int32, tag = "3")]
        pub state: i32,
        /// Nanoseconds since the epoch.
        #[prost(int64, tag = "4")]
        pub created_at: i64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PodSandboxMetadata {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub uid: String,
        #[prost(string, tag = "3")]
        pub namespace: String,
        #[prost(uint32, tag = "4")]
        pub attempt: u32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListContainersRequest {}
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListContainersResponse {
        #[prost(message, repeated, tag = "1")]
        pub containers: Vec<Container>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Container {
        #[prost(string, tag = "1")]
        pub id: String,
        #[prost(string, tag = "2")]
        pub pod_sandbox_id: String,
        #[prost(message, optional, tag = "3")]
        pub metadata: Option<ContainerMetadata>,
        #[prost(message, optional, tag = "4")]
        pub image: Option<ImageSpec>,
        /// CONTAINER_CREATED = 0, RUNNING = 1, EXITED = 2, UNKNOWN = 3.
        #[prost(int32, tag = "6")]
        pub state: i32,
        #[prost(int64, tag = "7")]
        pub created_at: i64,
        #[prost(map = "string, string", tag = "8")]
        pub labels: std::collections::HashMap<String, String>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ContainerMetadata {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(uint32, tag = "2")]
        pub attempt: u32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ImageSpec {
        #[prost(string, tag = "1")]
        pub image: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ContainerStatusRequest {
        #[prost(string, tag = "1")]
        pub container_id: String,
        #[prost(bool, tag = "2")]
        pub verbose: bool,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ContainerStatusResponse {
        /// With `verbose`, `info["info"]` is the runtime's JSON, holding the pid.
        #[prost(map = "string, string", tag = "2")]
        pub info: std::collections::HashMap<String, String>,
    }
}

pub const RUNTIME_SERVICE: &str = "/runtime.v1.RuntimeService";

/// How one gRPC call failed.
#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    Timeout,
    Unreachable(String),
    Status(String),
}

impl CallError {
    fn outcome(&self) -> CallOutcome {
        match self {
            CallError::Timeout => CallOutcome::Timeout,
            CallError::Unreachable(_) => CallOutcome::Unreachable,
            CallError::Status(_) => CallOutcome::Error,
        }
    }

    fn text(&self) -> Option<String> {
        match self {
            CallError::Timeout => None,
            CallError::Unreachable(e) | CallError::Status(e) => Some(e.clone()),
        }
    }
}

/// A channel to a CRI socket, used from inside an async context.
pub struct Client {
    grpc: tonic::client::Grpc<tonic::transport::Channel>,
}

impl Client {
    /// Connects to the unix socket `path` (the connect itself is bounded by `timeout`).
    pub async fn connect(path: PathBuf, timeout: Duration) -> Result<Client, CallError> {
        // Only the connect is bounded here: each call has its own deadline (`unary`), so a
        // long call (a pull) is not cut by the connect's.
        let endpoint =
            tonic::transport::Endpoint::from_static("http://cri.invalid").connect_timeout(timeout);
        let connect = endpoint.connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                let s = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
            }
        }));
        match tokio::time::timeout(timeout, connect).await {
            Err(_) => Err(CallError::Timeout),
            Ok(Err(e)) => Err(CallError::Unreachable(error_chain(&e))),
            Ok(Ok(ch)) => Ok(Client {
                grpc: tonic::client::Grpc::new(ch),
            }),
        }
    }

    /// One unary call of `method` (`/runtime.v1.RuntimeService/Version`), within `timeout`.
    pub async fn unary<Req, Resp>(
        &mut self,
        method: &'static str,
        req: Req,
        timeout: Duration,
    ) -> Result<Resp, CallError>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let call = async {
            self.grpc
                .ready()
                .await
                .map_err(|e| CallError::Unreachable(error_chain(&e)))?;
            let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
            self.grpc
                .unary(
                    tonic::Request::new(req),
                    http::uri::PathAndQuery::from_static(method),
                    codec,
                )
                .await
                .map(tonic::Response::into_inner)
                .map_err(|s| match s.code() {
                    tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => CallError::Timeout,
                    tonic::Code::Unavailable if s.message().contains("timed out") => {
                        CallError::Timeout
                    }
                    tonic::Code::Unavailable => CallError::Unreachable(status_text(&s)),
                    _ => CallError::Status(status_text(&s)),
                })
        };
        match tokio::time::timeout(timeout, call).await {
            Err(_) => Err(CallError::Timeout),
            Ok(r) => r,
        }
    }
}

fn status_text(s: &tonic::Status) -> String {
    let mut t = format!("{:?}: {}", s.code(), s.message());
    if let Some(src) = std::error::Error::source(s) {
        t.push_str(&format!(" ({})", error_chain(src)));
    }
    t
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !parts.contains(&t) {
            parts.push(t);
        }
        cur = c.source();
    }
    parts.join(": ")
}

/// What one probe of a CRI socket found.
#[derive(Debug, Clone, Default)]
pub struct ProbeResult {
    pub probe: CriProbe,
    /// Pods and containers, when the list calls answered.
    pub workloads: Option<Workloads>,
}

/// Most `ContainerStatus` calls per probe (for the containers' pids).
pub const MAX_STATUS_CALLS: usize = 64;

/// Probes the CRI socket at `path` (a path in node-doctor's own namespace; `endpoint` is the
/// host path it is reported as). Every call has `per_call`; the whole probe ends by
/// `deadline`, whatever the socket does.
pub fn probe(
    path: PathBuf,
    endpoint: &str,
    chosen_by: &str,
    per_call: Duration,
    deadline: Instant,
) -> ProbeResult {
    let mut base = CriProbe {
        endpoint: endpoint.to_string(),
        chosen_by: chosen_by.to_string(),
        deadline_ms: u64::try_from(per_call.as_millis()).unwrap_or(u64::MAX),
        ..CriProbe::default()
    };
    let key = format!("cri:{endpoint}");
    let started = Instant::now();
    let per = per_call;
    let job = move || -> ProbeResult {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                return ProbeResult {
                    probe: CriProbe {
                        calls: vec![CriCall {
                            method: "Version".into(),
                            outcome: CallOutcome::Error,
                            ms: 0.0,
                            error: Some(format!("cannot start an async runtime: {e}")),
                        }],
                        ..CriProbe::default()
                    },
                    workloads: None,
                };
            }
        };
        let r = rt.block_on(run_probe(path, per, deadline));
        // Abandon whatever the socket still holds: dropping the runtime closes the
        // connection without waiting for an answer.
        rt.shutdown_background();
        r
    };
    // The thread waits on the socket; node-doctor waits on the thread until the deadline,
    // with a margin for the last call's own timeout to fire.
    let wait_until = deadline + Duration::from_millis(500);
    match crate::blocking::run(&key, wait_until, job) {
        crate::blocking::Blocking::Done(mut r) => {
            r.probe.endpoint = base.endpoint;
            r.probe.chosen_by = base.chosen_by;
            r.probe.deadline_ms = base.deadline_ms;
            r
        }
        other => {
            let why = match other {
                crate::blocking::Blocking::StillBlocked { since } => format!(
                    "a previous probe of this socket has been stuck for {:.0} s",
                    since.elapsed().as_secs_f64()
                ),
                crate::blocking::Blocking::Refused(e) => e,
                _ => "the probe did not finish by the run's deadline".into(),
            };
            base.calls.push(CriCall {
                method: "Version".into(),
                outcome: CallOutcome::Timeout,
                ms: started.elapsed().as_secs_f64() * 1000.0,
                error: Some(why),
            });
            ProbeResult {
                probe: base,
                workloads: None,
            }
        }
    }
}

fn left(deadline: Instant, per: Duration) -> Duration {
    per.min(deadline.saturating_duration_since(Instant::now()))
}

async fn run_probe(path: PathBuf, per: Duration, deadline: Instant) -> ProbeResult {
    let mut probe = CriProbe::default();
    let record = |probe: &mut CriProbe, method: &str, t: Instant, err: Option<&CallError>| {
        probe.calls.push(CriCall {
            method: method.into(),
            outcome: err.map_or(CallOutcome::Ok, CallError::outcome),
            ms: t.elapsed().as_secs_f64() * 1000.0,
            error: err.and_then(CallError::text),
        });
    };
    let t = Instant::now();
    let mut client = match Client::connect(path, left(deadline, per)).await {
        Ok(c) => c,
        Err(e) => {
            record(&mut probe, "Version", t, Some(&e));
            return ProbeResult {
                probe,
                workloads: None,
            };
        }
    };
    let svc = |m: &str| -> &'static str {
        match m {
            "Version" => "/runtime.v1.RuntimeService/Version",
            "Status" => "/runtime.v1.RuntimeService/Status",
            "ListPodSandbox" => "/runtime.v1.RuntimeService/ListPodSandbox",
            "ListContainers" => "/runtime.v1.RuntimeService/ListContainers",
            _ => "/runtime.v1.RuntimeService/ContainerStatus",
        }
    };
    match client
        .unary::<_, proto::VersionResponse>(
            svc("Version"),
            proto::VersionRequest {
                version: "v1".into(),
            },
            left(deadline, per),
        )
        .await
    {
        Ok(v) => {
            record(&mut probe, "Version", t, None);
            probe.version = Some(CriVersion {
                version: v.version,
                runtime_name: v.runtime_name,
                runtime_version: v.runtime_version,
                runtime_api_version: v.runtime_api_version,
            });
        }
        Err(e) => {
            record(&mut probe, "Version", t, Some(&e));
            // A runtime that does not answer Version answers nothing else.
            return ProbeResult {
                probe,
                workloads: None,
            };
        }
    }
    let t = Instant::now();
    match client
        .unary::<_, proto::StatusResponse>(
            svc("Status"),
            proto::StatusRequest { verbose: false },
            left(deadline, per),
        )
        .await
    {
        Ok(s) => {
            record(&mut probe, "Status", t, None);
            probe.conditions = Some(
                s.status
                    .map(|s| s.conditions)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| RuntimeCondition {
                        type_: c.r#type,
                        status: c.status,
                        reason: c.reason,
                        message: c.message,
                    })
                    .collect(),
            );
        }
        Err(e) => record(&mut probe, "Status", t, Some(&e)),
    }
    let t = Instant::now();
    let sandboxes = match client
        .unary::<_, proto::ListPodSandboxResponse>(
            svc("ListPodSandbox"),
            proto::ListPodSandboxRequest {},
            left(deadline, per),
        )
        .await
    {
        Ok(r) => {
            record(&mut probe, "ListPodSandbox", t, None);
            r.items
        }
        Err(e) => {
            record(&mut probe, "ListPodSandbox", t, Some(&e));
            return ProbeResult {
                probe,
                workloads: None,
            };
        }
    };
    let t = Instant::now();
    let containers = match client
        .unary::<_, proto::ListContainersResponse>(
            svc("ListContainers"),
            proto::ListContainersRequest {},
            left(deadline, per),
        )
        .await
    {
        Ok(r) => {
            record(&mut probe, "ListContainers", t, None);
            r.containers
        }
        Err(e) => {
            record(&mut probe, "ListContainers", t, Some(&e));
            return ProbeResult {
                probe,
                workloads: None,
            };
        }
    };
    let ns_to_ms = |ns: i64| u64::try_from(ns / 1_000_000).ok().filter(|m| *m > 0);
    let pods: Vec<Pod> = sandboxes
        .iter()
        .map(|sb| {
            let md = sb.metadata.clone().unwrap_or_default();
            Pod {
                uid: md.uid,
                namespace: md.namespace,
                name: md.name,
                sandbox_id: Some(sb.id.clone()),
                state: Some(if sb.state == 0 { "ready" } else { "notready" }.into()),
                created_at_ms: ns_to_ms(sb.created_at),
            }
        })
        .collect();
    let mut out: Vec<Container> = containers
        .iter()
        .map(|c| {
            let pod_uid = c
                .labels
                .get("io.kubernetes.pod.uid")
                .cloned()
                .or_else(|| {
                    pods.iter()
                        .find(|p| p.sandbox_id.as_deref() == Some(c.pod_sandbox_id.as_str()))
                        .map(|p| p.uid.clone())
                })
                .filter(|u| !u.is_empty());
            Container {
                id: c.id.clone(),
                name: c
                    .metadata
                    .as_ref()
                    .map(|m| m.name.clone())
                    .unwrap_or_default(),
                pod_uid,
                sandbox_id: Some(c.pod_sandbox_id.clone()).filter(|s| !s.is_empty()),
                image: c
                    .image
                    .as_ref()
                    .map(|i| i.image.clone())
                    .filter(|i| !i.is_empty()),
                state: Some(
                    match c.state {
                        0 => "created",
                        1 => "running",
                        2 => "exited",
                        _ => "unknown",
                    }
                    .into(),
                ),
                pid: None,
                created_at_ms: ns_to_ms(c.created_at),
            }
        })
        .collect();
    // The pids of running containers (verbose ContainerStatus), while time is left.
    let mut status_failed = false;
    for c in out
        .iter_mut()
        .filter(|c| c.state.as_deref() == Some("running"))
        .take(MAX_STATUS_CALLS)
    {
        if status_failed || Instant::now() >= deadline {
            break;
        }
        let t = Instant::now();
        match client
            .unary::<_, proto::ContainerStatusResponse>(
                svc("ContainerStatus"),
                proto::ContainerStatusRequest {
                    container_id: c.id.clone(),
                    verbose: true,
                },
                left(deadline, per),
            )
            .await
        {
            Ok(r) => {
                c.pid = r
                    .info
                    .get("info")
                    .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
                    .and_then(|v| v.get("pid").and_then(serde_json::Value::as_i64))
                    .and_then(|p| i32::try_from(p).ok())
                    .filter(|p| *p > 0);
                if probe.call("ContainerStatus").is_none() {
                    record(&mut probe, "ContainerStatus", t, None);
                }
            }
            Err(e) => {
                record(&mut probe, "ContainerStatus", t, Some(&e));
                status_failed = true;
            }
        }
    }
    ProbeResult {
        probe,
        workloads: Some(Workloads {
            source: "cri".into(),
            pods,
            containers: out,
            fallback_reason: None,
        }),
    }
}
