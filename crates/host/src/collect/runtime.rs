//! The container runtime: daemons by process, the CRI socket probed (with a deadline), the
//! pods and containers with their names (from the CRI, else the kubelet's log directories),
//! and containerd's downloads in progress (content ingests).

use super::kubelet::{cmdline, rel};
use crate::collect::mounts::RemoteMounts;
use crate::fs::{EntryKind, HostFs, SYSCTL_CAP, read_string, resolve_in_root};
use node_doctor_core::kubelet::{Origin, effective, endpoint_path, flags};
use node_doctor_core::model::process::Process;
use node_doctor_core::model::runtime::{
    Container, Ingest, Kubelet, Pod, Runtime, RuntimeDaemon, Workloads,
};
use node_doctor_core::names::{parse_container_log_link, parse_pod_log_dir};
use std::time::{Duration, Instant};

/// Deadline of each CRI call. kubelet's own `runtimeRequestTimeout` is 2 minutes; a healthy
/// runtime answers `Version` in milliseconds, so 2 s tells "stuck" from "slow" without
/// making node-doctor slow on a sick node.
pub const CRI_CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// The whole probe (all calls) ends by this.
pub const CRI_PROBE_BUDGET: Duration = Duration::from_secs(6);

/// Most pod log directories and ingests listed.
const MAX_ENTRIES: usize = 4096;

/// Runtime daemons by `comm` (exact: `containerd-shim*` are not daemons of the node).
pub fn daemon_kind(comm: &str) -> Option<&'static str> {
    match comm {
        "containerd" => Some("containerd"),
        "dockerd" => Some("dockerd"),
        "crio" => Some("crio"),
        "cri-dockerd" => Some("cri-dockerd"),
        _ => None,
    }
}

/// The value of flag `names` (long or short forms) in `args`.
fn flag(args: &[String], names: &[&str]) -> Option<String> {
    let f = flags(args);
    names.iter().find_map(|n| f.get(*n).cloned())
}

/// A daemon with what its flags and config say.
fn daemon(fs: &dyn HostFs, p: &Process, kind: &str) -> RuntimeDaemon {
    let mut d = RuntimeDaemon {
        kind: kind.to_string(),
        pid: p.pid,
        args: cmdline(fs, p),
        ..RuntimeDaemon::default()
    };
    let args = d.args.clone().unwrap_or_default();
    match kind {
        "containerd" => {
            let config = flag(&args, &["config", "c"])
                .unwrap_or_else(|| "/etc/containerd/config.toml".into());
            let parsed = read_string(fs, rel(&config), SYSCTL_CAP)
                .ok()
                .and_then(|t| toml::from_str::<toml::Table>(&t).ok());
            if parsed.is_some() {
                d.config_path = Some(config);
            }
            let get = |path: &[&str]| -> Option<String> {
                let mut v: &toml::Value = parsed.as_ref()?.get(*path.first()?)?;
                for k in path.iter().skip(1) {
                    v = v.get(k)?;
                }
                v.as_str().map(str::to_string)
            };
            d.socket = flag(&args, &["address", "a"])
                .or_else(|| get(&["grpc", "address"]))
                .or_else(|| Some("/run/containerd/containerd.sock".into()));
            d.root_dir = flag(&args, &["root"])
                .or_else(|| get(&["root"]))
                .or_else(|| Some("/var/lib/containerd".into()));
        }
        "crio" => {
            d.socket = flag(&args, &["listen"]).or_else(|| Some("/var/run/crio/crio.sock".into()));
        }
        "cri-dockerd" => {
            d.socket = flag(&args, &["container-runtime-endpoint"])
                .and_then(|e| endpoint_path(&e).map(str::to_string))
                .or_else(|| Some("/run/cri-dockerd.sock".into()));
        }
        _ => {}
    }
    d
}

/// The socket to probe and why: the kubelet's endpoint when it set one, else a daemon's,
/// else the kubelet's default.
fn choose_endpoint(kubelet: Option<&Kubelet>, daemons: &[RuntimeDaemon]) -> (String, String) {
    if let Some(k) = kubelet.filter(|k| k.pid.is_some() && k.args.is_some()) {
        let e = effective(k);
        let ep = &e.container_runtime_endpoint;
        if let (Some(path), false) = (
            endpoint_path(&ep.value),
            matches!(ep.origin, Origin::Default(_)),
        ) {
            return (path.to_string(), format!("kubelet {}", ep.origin));
        }
    }
    // The kubelet talks to cri-dockerd, not dockerd, when both run.
    for kind in ["containerd", "crio", "cri-dockerd"] {
        if let Some(sock) = daemons
            .iter()
            .find(|d| d.kind == kind)
            .and_then(|d| d.socket.clone())
        {
            return (sock, format!("{kind} (pid) socket"));
        }
    }
    (
        "/run/containerd/containerd.sock".into(),
        "the kubelet's default".into(),
    )
}

/// Reads the runtime. `kubelet` (already read) names the endpoint the kubelet uses.
/// Nothing below a FUSE or network mount (`remote`) is listed: containerd's content store
/// or `/var/log/pods` on a dead server would hang the run.
pub fn read(
    fs: &dyn HostFs,
    kernel: &dyn crate::kernel::Kernel,
    remote: &RemoteMounts,
    processes: &[Process],
    kubelet: Option<&Kubelet>,
    deadline: Option<Instant>,
) -> (Runtime, Workloads) {
    let daemons: Vec<RuntimeDaemon> = processes
        .iter()
        .filter(|p| !p.is_zombie())
        .filter_map(|p| daemon_kind(&p.comm).map(|k| daemon(fs, p, k)))
        .collect();
    let (endpoint, chosen_by) = choose_endpoint(kubelet, &daemons);
    let mut rt = Runtime {
        daemons,
        ..Runtime::default()
    };
    // The socket as the host resolves it: its symlinks resolved inside the host root
    // (`/var/run` is a link to `/run` on most hosts; from a DaemonSet the kernel would
    // follow it into the agent's own /run). connect() then needs no write access to the
    // mount: a read-only hostPath (the DaemonSet's /host) refuses creating files, not
    // connecting to a socket (unix_find_bsd checks MAY_WRITE on the inode, and a read-only
    // mount or superblock refuses writes to files, directories and links only).
    let socket = resolve_in_root(fs, rel(&endpoint)).unwrap_or_else(|_| rel(&endpoint).into());
    // Probe only a socket that exists (or that a daemon or the kubelet named): a node
    // without a runtime is not a hung runtime.
    let exists = matches!(fs.entry_kind(&socket), Ok(EntryKind::Other));
    let mut workloads = None;
    let mut fallback_reason = None;
    if let Some(rec) = kernel.cri_recording() {
        // A fixture tree: its recorded answers stand for the socket.
        if rec.workloads.is_none() {
            fallback_reason = Some(format!(
                "CRI on {} (recorded) listed nothing",
                rec.probe.endpoint
            ));
        }
        workloads = rec.workloads;
        rt.cri = Some(rec.probe);
    } else if !kernel.dials_sockets() {
        fallback_reason = Some("a fixture tree without recorded CRI answers".into());
    } else if exists || !rt.daemons.is_empty() || kubelet.is_some_and(|k| k.pid.is_some()) {
        let mut budget = Instant::now() + CRI_PROBE_BUDGET;
        if let Some(d) = deadline {
            budget = budget.min(d);
        }
        let r = crate::cri::probe(
            fs.real_path(&socket),
            &endpoint,
            &chosen_by,
            CRI_CALL_TIMEOUT,
            budget,
        );
        if r.workloads.is_none() {
            fallback_reason = Some(
                r.probe
                    .calls
                    .iter()
                    .find(|c| c.outcome != node_doctor_core::model::CallOutcome::Ok)
                    .map(|c| {
                        format!(
                            "CRI {} on {endpoint}: {}",
                            c.method,
                            c.error
                                .clone()
                                .unwrap_or_else(|| format!("{:?}", c.outcome))
                        )
                    })
                    .unwrap_or_else(|| format!("CRI on {endpoint} listed nothing")),
            );
        }
        workloads = r.workloads;
        rt.cri = Some(r.probe);
    } else {
        fallback_reason = Some(format!(
            "no CRI socket at {endpoint} and no runtime process"
        ));
    }
    let workloads = workloads.unwrap_or_else(|| match remote.why_not("/var/log/pods") {
        Some(why) => Workloads {
            fallback_reason: Some(format!(
                "{}; /var/log/pods {why}",
                fallback_reason.unwrap_or_default()
            )),
            ..Workloads::default()
        },
        None => {
            let mut w = from_log_dirs(fs, "/var/log/pods");
            w.fallback_reason = fallback_reason;
            w
        }
    });
    // Downloads in progress, in each containerd's content store.
    for d in rt.daemons.iter().filter(|d| d.kind == "containerd") {
        let Some(root) = &d.root_dir else { continue };
        let dir = format!(
            "{}/io.containerd.content.v1.content/ingest",
            root.trim_end_matches('/')
        );
        if remote.why_not(&dir).is_some() {
            continue;
        }
        if let Some(list) = ingests(fs, &dir) {
            rt.ingests.get_or_insert_with(Vec::new).extend(list);
            rt.ingest_dir = Some(dir);
        }
    }
    if rt.ingests.is_none() && rt.daemons.is_empty() {
        // No daemon found (a container without hostPID): the default store still tells.
        let dir = "/var/lib/containerd/io.containerd.content.v1.content/ingest";
        if remote.why_not(dir).is_none()
            && let Some(list) = ingests(fs, dir)
        {
            rt.ingests = Some(list);
            rt.ingest_dir = Some(dir.into());
        }
    }
    (rt, workloads)
}

/// containerd's ingests under `dir` (`None`: no such directory).
pub fn ingests(fs: &dyn HostFs, dir: &str) -> Option<Vec<Ingest>> {
    let listing = fs.read_dir(rel(dir), MAX_ENTRIES).ok()?;
    let mut out = Vec::new();
    for e in listing.entries.iter().filter(|e| e.kind == EntryKind::Dir) {
        let base = format!("{}/{}", rel(dir), e.name);
        let text = |f: &str| read_string(fs, &format!("{base}/{f}"), SYSCTL_CAP).ok();
        let Some(reference) = text("ref") else {
            continue;
        };
        let bytes = fs
            .file_identity(&format!("{base}/data"))
            .map(|(_, _, size)| size)
            .unwrap_or(0);
        out.push(Ingest {
            id: e.name.clone(),
            reference: reference.trim().to_string(),
            bytes,
            total: text("total").and_then(|t| t.trim().parse().ok()),
            started_at_ms: text("startedat")
                .and_then(|t| node_doctor_core::time::parse_rfc3339_prefix(t.trim())),
        });
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Some(out)
}

/// Pods and containers from the kubelet's log directories:
/// `<pods>/<namespace>_<name>_<uid>/<container>/` and the links in `/var/log/containers`
/// (`<pod>_<namespace>_<container>-<id>.log`), which carry the container id.
pub fn from_log_dirs(fs: &dyn HostFs, pods_dir: &str) -> Workloads {
    let mut w = Workloads {
        source: "var/log/pods".into(),
        ..Workloads::default()
    };
    let Ok(listing) = fs.read_dir(rel(pods_dir), MAX_ENTRIES) else {
        return w;
    };
    for e in listing.entries.iter().filter(|e| e.kind == EntryKind::Dir) {
        let Some((ns, name, uid)) = parse_pod_log_dir(&e.name) else {
            continue;
        };
        w.pods.push(Pod {
            uid: uid.to_string(),
            namespace: ns.to_string(),
            name: name.to_string(),
            ..Pod::default()
        });
        let dir = format!("{}/{}", rel(pods_dir), e.name);
        if let Ok(cs) = fs.read_dir(&dir, 256) {
            for c in cs.entries.iter().filter(|c| c.kind == EntryKind::Dir) {
                w.containers.push(Container {
                    name: c.name.clone(),
                    pod_uid: Some(uid.to_string()),
                    ..Container::default()
                });
            }
        }
    }
    // Container ids from the links: fill the id of the matching (pod, container) entry.
    if let Ok(links) = fs.read_dir("var/log/containers", MAX_ENTRIES) {
        for l in &links.entries {
            let Some((pod, ns, container, id)) = parse_container_log_link(&l.name) else {
                continue;
            };
            let Some(uid) = w
                .pods
                .iter()
                .find(|p| p.name == pod && p.namespace == ns)
                .map(|p| p.uid.clone())
            else {
                continue;
            };
            match w.containers.iter_mut().find(|c| {
                c.name == container && c.pod_uid.as_deref() == Some(uid.as_str()) && c.id.is_empty()
            }) {
                Some(c) => c.id = id.to_string(),
                None => w.containers.push(Container {
                    id: id.to_string(),
                    name: container.to_string(),
                    pod_uid: Some(uid),
                    ..Container::default()
                }),
            }
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::RealFs;
    use crate::kernel::RealKernel;
    use node_doctor_core::model::CallOutcome;

    /// The kubelet's endpoint through the host's `/var/run -> /run`, from a reader whose
    /// host root is a directory (the DaemonSet's /host): the probe connects to the socket
    /// in the root's /run (a listener that accepts and never answers: Version times out)
    /// instead of following the link into the reader's own /run (no such socket there).
    #[test]
    fn the_cri_socket_is_reached_through_the_host_roots_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("run/nd-test-containerd")).unwrap();
        std::fs::create_dir_all(dir.path().join("var")).unwrap();
        std::os::unix::fs::symlink("/run", dir.path().join("var/run")).unwrap();
        let sock = dir.path().join("run/nd-test-containerd/containerd.sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let held = std::thread::spawn(move || listener.accept().map(|(c, _)| c));
        let fs = RealFs::new(dir.path()).unwrap();
        let kernel = RealKernel::new(dir.path());
        let endpoint = "unix:///var/run/nd-test-containerd/containerd.sock";
        let kubelet = Kubelet {
            pid: Some(4242),
            args: Some(vec![
                "/usr/bin/kubelet".into(),
                format!("--container-runtime-endpoint={endpoint}"),
            ]),
            ..Kubelet::default()
        };
        let (rt, _) = read(
            &fs,
            &kernel,
            &RemoteMounts::default(),
            &[],
            Some(&kubelet),
            Some(Instant::now() + Duration::from_millis(700)),
        );
        let cri = rt.cri.unwrap();
        assert_eq!(cri.endpoint, "/var/run/nd-test-containerd/containerd.sock");
        assert_eq!(cri.calls[0].outcome, CallOutcome::Timeout, "{cri:?}");
        assert!(
            held.join().unwrap().is_ok(),
            "the listener was connected to"
        );
    }
}
