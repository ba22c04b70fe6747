//! The CRI calls a kubelet makes to start pods, for live tests: RunPodSandbox,
//! CreateContainer, StartContainer, PullImage, StopPodSandbox, RemovePodSandbox. The
//! messages are the `runtime.v1` subset these need (kubernetes/cri-api api.proto field
//! numbers), sent through node-doctor-host's CRI client.
#![allow(dead_code)]

use node_doctor_host::cri::{CallError, Client};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod v1 {
    use std::collections::HashMap;

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
    pub struct NamespaceOption {
        /// POD = 0, CONTAINER = 1, NODE = 2.
        #[prost(int32, tag = "1")]
        pub network: i32,
        #[prost(int32, tag = "2")]
        pub pid: i32,
        #[prost(int32, tag = "3")]
        pub ipc: i32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LinuxSandboxSecurityContext {
        #[prost(message, optional, tag = "1")]
        pub namespace_options: Option<NamespaceOption>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LinuxPodSandboxConfig {
        #[prost(string, tag = "1")]
        pub cgroup_parent: String,
        #[prost(message, optional, tag = "2")]
        pub security_context: Option<LinuxSandboxSecurityContext>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PodSandboxConfig {
        #[prost(message, optional, tag = "1")]
        pub metadata: Option<PodSandboxMetadata>,
        #[prost(string, tag = "2")]
        pub hostname: String,
        #[prost(string, tag = "3")]
        pub log_directory: String,
        #[prost(map = "string, string", tag = "6")]
        pub labels: HashMap<String, String>,
        #[prost(message, optional, tag = "8")]
        pub linux: Option<LinuxPodSandboxConfig>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RunPodSandboxRequest {
        #[prost(message, optional, tag = "1")]
        pub config: Option<PodSandboxConfig>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RunPodSandboxResponse {
        #[prost(string, tag = "1")]
        pub pod_sandbox_id: String,
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
    pub struct ContainerConfig {
        #[prost(message, optional, tag = "1")]
        pub metadata: Option<ContainerMetadata>,
        #[prost(message, optional, tag = "2")]
        pub image: Option<ImageSpec>,
        #[prost(string, repeated, tag = "3")]
        pub command: Vec<String>,
        #[prost(string, repeated, tag = "4")]
        pub args: Vec<String>,
        #[prost(map = "string, string", tag = "9")]
        pub labels: HashMap<String, String>,
        #[prost(string, tag = "11")]
        pub log_path: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CreateContainerRequest {
        #[prost(string, tag = "1")]
        pub pod_sandbox_id: String,
        #[prost(message, optional, tag = "2")]
        pub config: Option<ContainerConfig>,
        #[prost(message, optional, tag = "3")]
        pub sandbox_config: Option<PodSandboxConfig>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CreateContainerResponse {
        #[prost(string, tag = "1")]
        pub container_id: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ContainerIdRequest {
        #[prost(string, tag = "1")]
        pub container_id: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Empty {}
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SandboxIdRequest {
        #[prost(string, tag = "1")]
        pub pod_sandbox_id: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PullImageRequest {
        #[prost(message, optional, tag = "1")]
        pub image: Option<ImageSpec>,
        #[prost(message, optional, tag = "3")]
        pub sandbox_config: Option<PodSandboxConfig>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PullImageResponse {
        #[prost(string, tag = "1")]
        pub image_ref: String,
    }
}

/// A blocking CRI client: a current-thread runtime of its own.
pub struct Cri {
    rt: tokio::runtime::Runtime,
    client: Client,
    pub socket: PathBuf,
}

/// A pod as the tests make it: named, in a cgroup under the test's own top, host network,
/// its log directory where the kubelet would put it.
#[derive(Clone, Debug)]
pub struct PodSpec {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// `/node-doctor-test-<pid>-<tag>/kubepods/besteffort/pod<uid>`.
    pub cgroup_parent: String,
    pub log_directory: String,
}

impl PodSpec {
    pub fn new(tag: &str, namespace: &str, name: &str, uid: &str) -> PodSpec {
        PodSpec {
            namespace: namespace.into(),
            name: name.into(),
            uid: uid.into(),
            cgroup_parent: format!("/{}/kubepods/besteffort/pod{uid}", top_cgroup(tag)),
            log_directory: format!("/var/log/pods/{namespace}_{name}_{uid}"),
        }
    }

    pub fn config(&self) -> v1::PodSandboxConfig {
        v1::PodSandboxConfig {
            metadata: Some(v1::PodSandboxMetadata {
                name: self.name.clone(),
                uid: self.uid.clone(),
                namespace: self.namespace.clone(),
                attempt: 0,
            }),
            // hostNetwork pods share the node's UTS namespace: no hostname (as the kubelet does).
            hostname: String::new(),
            log_directory: self.log_directory.clone(),
            labels: HashMap::from([
                ("io.kubernetes.pod.uid".to_string(), self.uid.clone()),
                ("io.kubernetes.pod.name".to_string(), self.name.clone()),
                (
                    "io.kubernetes.pod.namespace".to_string(),
                    self.namespace.clone(),
                ),
            ]),
            linux: Some(v1::LinuxPodSandboxConfig {
                cgroup_parent: self.cgroup_parent.clone(),
                security_context: Some(v1::LinuxSandboxSecurityContext {
                    namespace_options: Some(v1::NamespaceOption {
                        network: 2,
                        pid: 0,
                        ipc: 0,
                    }),
                }),
            }),
        }
    }
}

/// The test's top cgroup for `tag`: every pod cgroup of the test lives below it.
pub fn top_cgroup(tag: &str) -> String {
    format!("node-doctor-test-{}-{tag}", std::process::id())
}

impl Cri {
    pub fn connect(socket: &Path) -> Cri {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = rt
            .block_on(Client::connect(
                socket.to_path_buf(),
                Duration::from_secs(10),
            ))
            .unwrap_or_else(|e| panic!("CRI connect {}: {e:?}", socket.display()));
        Cri {
            rt,
            client,
            socket: socket.to_path_buf(),
        }
    }

    fn call<Req, Resp>(&mut self, method: &'static str, req: Req) -> Result<Resp, CallError>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let client = &mut self.client;
        self.rt
            .block_on(client.unary(method, req, Duration::from_secs(60)))
    }

    pub fn run_sandbox(&mut self, pod: &PodSpec) -> String {
        std::fs::create_dir_all(&pod.log_directory).unwrap();
        let r: v1::RunPodSandboxResponse = self
            .call(
                "/runtime.v1.RuntimeService/RunPodSandbox",
                v1::RunPodSandboxRequest {
                    config: Some(pod.config()),
                },
            )
            .unwrap_or_else(|e| panic!("RunPodSandbox: {e:?}"));
        r.pod_sandbox_id
    }

    /// Creates and starts container `name` running `command` in the sandbox, with the
    /// kubelet's log layout (`<log dir>/<name>/0.log`, `/var/log/containers/` link).
    pub fn start_container(
        &mut self,
        sandbox: &str,
        pod: &PodSpec,
        name: &str,
        image: &str,
        command: &[&str],
    ) -> String {
        std::fs::create_dir_all(format!("{}/{name}", pod.log_directory)).unwrap();
        let r: v1::CreateContainerResponse = self
            .call(
                "/runtime.v1.RuntimeService/CreateContainer",
                v1::CreateContainerRequest {
                    pod_sandbox_id: sandbox.into(),
                    config: Some(v1::ContainerConfig {
                        metadata: Some(v1::ContainerMetadata {
                            name: name.into(),
                            attempt: 0,
                        }),
                        image: Some(v1::ImageSpec {
                            image: image.into(),
                        }),
                        command: command.iter().map(|s| s.to_string()).collect(),
                        args: vec![],
                        labels: HashMap::from([
                            ("io.kubernetes.container.name".to_string(), name.to_string()),
                            ("io.kubernetes.pod.uid".to_string(), pod.uid.clone()),
                        ]),
                        log_path: format!("{name}/0.log"),
                    }),
                    sandbox_config: Some(pod.config()),
                },
            )
            .unwrap_or_else(|e| panic!("CreateContainer: {e:?}"));
        let id = r.container_id;
        let _: v1::Empty = self
            .call(
                "/runtime.v1.RuntimeService/StartContainer",
                v1::ContainerIdRequest {
                    container_id: id.clone(),
                },
            )
            .unwrap_or_else(|e| panic!("StartContainer: {e:?}"));
        let _ = std::fs::create_dir_all("/var/log/containers");
        let _ = std::os::unix::fs::symlink(
            format!("{}/{name}/0.log", pod.log_directory),
            format!(
                "/var/log/containers/{}_{}_{name}-{id}.log",
                pod.name, pod.namespace
            ),
        );
        id
    }

    pub fn remove_sandbox(&mut self, sandbox: &str) {
        let _: Result<v1::Empty, _> = self.call(
            "/runtime.v1.RuntimeService/StopPodSandbox",
            v1::SandboxIdRequest {
                pod_sandbox_id: sandbox.into(),
            },
        );
        let _: Result<v1::Empty, _> = self.call(
            "/runtime.v1.RuntimeService/RemovePodSandbox",
            v1::SandboxIdRequest {
                pod_sandbox_id: sandbox.into(),
            },
        );
    }
}

/// Starts `PullImage` of `image` on a thread of its own (it blocks until the pull ends);
/// the thread ends with the pull, or when containerd goes away.
pub fn pull_in_background(
    socket: &Path,
    image: &str,
    pod: &PodSpec,
) -> std::thread::JoinHandle<String> {
    let socket = socket.to_path_buf();
    let image = image.to_string();
    let config = pod.config();
    std::thread::spawn(move || {
        let mut cri = Cri::connect(&socket);
        let r: Result<v1::PullImageResponse, _> = {
            let client = &mut cri.client;
            cri.rt.block_on(client.unary(
                "/runtime.v1.ImageService/PullImage",
                v1::PullImageRequest {
                    image: Some(v1::ImageSpec { image }),
                    sandbox_config: Some(config),
                },
                Duration::from_secs(600),
            ))
        };
        match r {
            Ok(r) => r.image_ref,
            Err(e) => format!("error: {e:?}"),
        }
    })
}

/// Pod log directories and `/var/log/containers` links a test made the way the kubelet
/// does; removed on drop (and the two parents when the test created them).
pub struct PodLogs {
    dirs: Vec<PathBuf>,
    made_pods: bool,
    made_containers: bool,
}

impl PodLogs {
    pub fn new() -> PodLogs {
        PodLogs {
            dirs: Vec::new(),
            made_pods: !Path::new("/var/log/pods").exists(),
            made_containers: !Path::new("/var/log/containers").exists(),
        }
    }

    pub fn own(&mut self, pod: &PodSpec) {
        self.dirs.push(PathBuf::from(&pod.log_directory));
    }
}

impl Drop for PodLogs {
    fn drop(&mut self) {
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
            let name = d.file_name().unwrap().to_string_lossy().into_owned();
            let mut parts = name.splitn(3, '_');
            let (ns, pod) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            if let Ok(links) = std::fs::read_dir("/var/log/containers") {
                for l in links.flatten() {
                    if l.file_name()
                        .to_string_lossy()
                        .starts_with(&format!("{pod}_{ns}_"))
                    {
                        let _ = std::fs::remove_file(l.path());
                    }
                }
            }
        }
        if self.made_pods {
            let _ = std::fs::remove_dir("/var/log/pods");
        }
        if self.made_containers {
            let _ = std::fs::remove_dir("/var/log/containers");
        }
    }
}
