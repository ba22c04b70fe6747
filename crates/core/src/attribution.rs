//! Who owns a cgroup: the container id, runtime and pod uid encoded in a cgroup path.
//!
//! Kubernetes names pod cgroups after the pod uid and container runtimes name container
//! cgroups after the container id, in one of two drivers' styles:
//! - cgroupfs driver: `/kubepods/burstable/pod<uid>/<id>` (containerd, docker), and plain
//!   `/docker/<id>` outside Kubernetes;
//! - systemd driver: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid with
//!   _ for ->.slice/<runtime>-<id>.scope` where runtime is `cri-containerd`, `crio`, `docker`
//!   or `libpod`; containerd on cgroup v2 without systemd's delegation writes
//!   `.../kubepods-burstable-pod<uid>.slice:cri-containerd:<id>`.
//!
//! The path is the only place the kernel records this: the process itself knows nothing of it.
//! Attribution is policy, not reading: it runs on collected and on replayed data alike, so a
//! better parser applies to old recordings too.

use crate::model::process::CgroupMembership;
use serde::{Deserialize, Serialize};

/// What a cgroup path says about the container that owns it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupOwner {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// `containerd`, `crio`, `docker`, `podman`, or absent when the style does not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
}

impl CgroupOwner {
    pub fn is_empty(&self) -> bool {
        self.container_id.is_none() && self.pod_uid.is_none()
    }
}

/// Parses a cgroup path (as in `/proc/PID/cgroup`, relative to its hierarchy's mount).
pub fn parse_cgroup_path(path: &str) -> CgroupOwner {
    let mut owner = CgroupOwner::default();
    for component in path.split('/').filter(|c| !c.is_empty()) {
        if let Some(uid) = pod_uid_of(component) {
            owner.pod_uid = Some(uid);
        }
        if let Some((runtime, id)) = container_of(component) {
            owner.runtime = runtime.map(str::to_string);
            owner.container_id = Some(id.to_string());
        }
    }
    // cgroupfs driver under kubepods: the component after `pod<uid>` is the container id,
    // whatever its form (ctr and tests may use short names).
    if owner.container_id.is_none() && owner.pod_uid.is_some() {
        let mut parts = path.split('/').filter(|c| !c.is_empty());
        if parts.any(|c| pod_uid_of(c).is_some())
            && let Some(next) = parts.next()
            && !next.ends_with(".slice")
        {
            owner.container_id = Some(next.to_string());
        }
    }
    owner
}

/// `pod<uid>` (cgroupfs) or `kubepods-<qos>-pod<uid_with_underscores>.slice` (systemd).
fn pod_uid_of(component: &str) -> Option<String> {
    let name = component.strip_suffix(".slice").unwrap_or(component);
    // containerd's systemd-less v2 form "kubepods-...-pod<uid>.slice:cri-containerd:<id>".
    let name = name.split(':').next().unwrap_or(name);
    let name = name.strip_suffix(".slice").unwrap_or(name);
    let idx = name.rfind("pod")?;
    let (before, after) = name.split_at(idx);
    if !before.is_empty() && !before.ends_with('-') {
        return None;
    }
    let uid = after.strip_prefix("pod")?.replace('_', "-");
    is_uid(&uid).then_some(uid)
}

fn is_uid(s: &str) -> bool {
    // 8-4-4-4-12 hex, as the API server generates; static pods use a 32-hex hash.
    let hex = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_hexdigit());
    let parts: Vec<&str> = s.split('-').collect();
    match parts.as_slice() {
        [a, b, c, d, e] => {
            a.len() == 8
                && b.len() == 4
                && c.len() == 4
                && d.len() == 4
                && e.len() == 12
                && parts.iter().all(|p| hex(p))
        }
        [a] => a.len() == 32 && hex(a),
        _ => false,
    }
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The container a process belongs to, from the first of its cgroup paths that names one
/// (v2's unified path first: on hybrid hosts runtimes place it the same way).
pub fn owner_of(cgroups: &[CgroupMembership]) -> CgroupOwner {
    let v2 = cgroups.iter().filter(|c| c.hierarchy == 0);
    let v1 = cgroups.iter().filter(|c| c.hierarchy != 0);
    v2.chain(v1)
        .map(|c| parse_cgroup_path(&c.path))
        .find(|o| !o.is_empty())
        .unwrap_or_default()
}

/// What a kubelet pod mount is: a volume (`pods/<uid>/volumes/<plugin>/<volume>`), a
/// subPath bind mount (`pods/<uid>/volume-subpaths/<volume>/<container>/<n>`), or anything
/// else under the pod's directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodMountKind {
    Volume,
    Subpath,
    Other,
}

/// A mount point under a kubelet pod directory (`<root-dir>/pods/<uid>/...`; the root dir
/// is `/var/lib/kubelet` unless `--root-dir` says otherwise, so any `.../pods/<uid>/`
/// counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodMount<'a> {
    /// `<root-dir>/pods`.
    pub pods_dir: &'a str,
    pub pod_uid: &'a str,
    pub kind: PodMountKind,
    /// The volume's name (`cfg` of `volumes/kubernetes.io~configmap/cfg`).
    pub volume: Option<&'a str>,
}

/// The kubelet pod a mount point belongs to, if any.
pub fn pod_mount(mount_point: &str) -> Option<PodMount<'_>> {
    let at = mount_point.find("/pods/")?;
    let pods_dir = mount_point.get(..at.checked_add(5)?)?;
    let rest = mount_point.get(at.checked_add(6)?..)?;
    let mut parts = rest.split('/');
    let pod_uid = parts.next().filter(|u| is_uid(u))?;
    let (kind, volume) = match parts.next() {
        Some("volumes") => (PodMountKind::Volume, parts.nth(1)),
        Some("volume-subpaths") => (PodMountKind::Subpath, parts.next()),
        _ => (PodMountKind::Other, None),
    };
    Some(PodMount {
        pods_dir,
        pod_uid,
        kind,
        volume: volume.filter(|v| !v.is_empty()),
    })
}

/// Container state directories of the runtimes, each followed by the container (or
/// sandbox) id: a mount there belongs to that container (its rootfs, its `/dev/shm`).
const RUNTIME_STATE_DIRS: &[(&str, &str)] = &[
    (
        "/run/containerd/io.containerd.runtime.v2.task/",
        "containerd",
    ),
    (
        "/run/containerd/io.containerd.runtime.v1.linux/",
        "containerd",
    ),
    (
        "/run/containerd/io.containerd.grpc.v1.cri/sandboxes/",
        "containerd",
    ),
    ("/var/lib/docker/containers/", "docker"),
    ("/run/containers/storage/overlay-containers/", "crio"),
    ("/var/run/containers/storage/overlay-containers/", "crio"),
];

/// The runtime and container id a mount under a runtime's state directory belongs to
/// (`.../io.containerd.runtime.v2.task/k8s.io/<id>/rootfs`, `.../sandboxes/<id>/shm`,
/// `/var/lib/docker/containers/<id>/mounts/shm`). Only full 64-hex ids: shorter names
/// (`ctr run` ids) cannot be told from other directories.
pub fn runtime_mount(mount_point: &str) -> Option<(&'static str, &str)> {
    RUNTIME_STATE_DIRS.iter().find_map(|(dir, runtime)| {
        let rest = mount_point.strip_prefix(dir)?;
        // The v1/v2 task directories have a namespace component first.
        let id = rest.split('/').take(2).find(|c| is_container_id(c))?;
        Some((*runtime, id))
    })
}

/// The first 12 characters of a container id, as `docker ps` and `crictl ps` print it.
pub fn short_id(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Scope prefixes container runtimes use under the systemd cgroup driver.
const SCOPE_PREFIXES: &[(&str, &str)] = &[
    ("cri-containerd-", "containerd"),
    ("crio-conmon-", "crio"),
    ("crio-", "crio"),
    ("docker-", "docker"),
    ("libpod-conmon-", "podman"),
    ("libpod-", "podman"),
];

fn container_of(component: &str) -> Option<(Option<&'static str>, &str)> {
    if let Some(scope) = component.strip_suffix(".scope") {
        for (prefix, runtime) in SCOPE_PREFIXES {
            if let Some(id) = scope.strip_prefix(prefix)
                && is_container_id(id)
            {
                return Some((Some(runtime), id));
            }
        }
        return None;
    }
    // "kubepods-besteffort-pod<uid>.slice:cri-containerd:<id>"
    let mut fields = component.split(':');
    if let (Some(_slice), Some(kind), Some(id)) = (fields.next(), fields.next(), fields.next()) {
        let runtime = match kind {
            "cri-containerd" => Some("containerd"),
            "crio" => Some("crio"),
            "docker" => Some("docker"),
            _ => None,
        };
        if runtime.is_some() && is_container_id(id) {
            return Some((runtime, id));
        }
    }
    // cgroupfs driver: a bare 64-hex component (`/kubepods/.../<id>`, `/docker/<id>`).
    is_container_id(component).then_some((None, component))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_prefers_the_v2_path_then_the_first_v1_naming_one() {
        let m = |h: u32, path: &str| CgroupMembership {
            hierarchy: h,
            controllers: String::new(),
            path: path.into(),
        };
        let o = owner_of(&[m(8, &format!("/kubepods/pod{UID}/abc")), m(0, "/")]);
        assert_eq!(o.pod_uid.as_deref(), Some(UID));
        assert_eq!(o.container_id.as_deref(), Some("abc"));
        assert!(owner_of(&[]).is_empty());
        assert_eq!(short_id(ID), "3f1c9a27d0b4");
        assert_eq!(short_id("abc"), "abc");
    }

    const ID: &str = "3f1c9a27d0b4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e";
    const UID: &str = "5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c";

    fn parse(p: &str) -> CgroupOwner {
        parse_cgroup_path(p)
    }

    #[test]
    fn cgroupfs_driver_containerd() {
        let o = parse(&format!("/kubepods/burstable/pod{UID}/{ID}"));
        assert_eq!(o.container_id.as_deref(), Some(ID));
        assert_eq!(o.pod_uid.as_deref(), Some(UID));
    }

    #[test]
    fn cgroupfs_besteffort_and_guaranteed_pods() {
        let o = parse(&format!("/kubepods/pod{UID}/{ID}"));
        assert_eq!(o.container_id.as_deref(), Some(ID));
        assert_eq!(o.pod_uid.as_deref(), Some(UID));
        let o = parse(&format!("/kubepods/besteffort/pod{UID}/{ID}"));
        assert_eq!(o.pod_uid.as_deref(), Some(UID));
    }

    #[test]
    fn systemd_driver_containerd() {
        let u = UID.replace('-', "_");
        let o = parse(&format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice/cri-containerd-{ID}.scope"
        ));
        assert_eq!(o.container_id.as_deref(), Some(ID));
        assert_eq!(o.runtime.as_deref(), Some("containerd"));
        assert_eq!(o.pod_uid.as_deref(), Some(UID));
    }

    #[test]
    fn systemd_driver_guaranteed_pod_crio() {
        let u = UID.replace('-', "_");
        let o = parse(&format!(
            "/kubepods.slice/kubepods-pod{u}.slice/crio-{ID}.scope"
        ));
        assert_eq!(o.container_id.as_deref(), Some(ID));
        assert_eq!(o.runtime.as_deref(), Some("crio"));
        assert_eq!(o.pod_uid.as_deref(), Some(UID));
    }

    #[test]
    fn crio_conmon_is_attributed_to_its_container() {
        let o = parse(&format!("/kubepods.slice/crio-conmon-{ID}.scope"));
        assert_eq!(o.container_id.as_deref(), Some(ID));
        assert_eq!(o.runtime.as_deref(), Some("crio"));
    }

    #[test]
    fn docker_forms() {
        let o = parse(&format!("/docker/{ID}"));
        assert_eq!(o.container_id.as_deref(), Some(ID));
        assert_eq!(o.pod_uid, None);
        let o = parse(&format!("/system.slice/docker-{ID}.scope"));
        assert_eq!(o.runtime.as_deref(), Some("docker"));
        assert_eq!(o.container_id.as_deref(), Some(ID));
    }

    #[test]
    fn containerd_v2_colon_form() {
        let u = UID.replace('-', "_");
        let o = parse(&format!(
            "/system.slice/containerd.service/kubepods-besteffort-pod{u}.slice:cri-containerd:{ID}"
        ));
        assert_eq!(o.container_id.as_deref(), Some(ID));
        assert_eq!(o.runtime.as_deref(), Some("containerd"));
        assert_eq!(o.pod_uid.as_deref(), Some(UID));
    }

    #[test]
    fn podman_scope() {
        let o = parse(&format!("/machine.slice/libpod-{ID}.scope/container"));
        assert_eq!(o.runtime.as_deref(), Some("podman"));
        assert_eq!(o.container_id.as_deref(), Some(ID));
    }

    #[test]
    fn pod_sandbox_level_has_pod_but_no_container() {
        let o = parse(&format!("/kubepods/burstable/pod{UID}"));
        assert_eq!(o.pod_uid.as_deref(), Some(UID));
        assert_eq!(o.container_id, None);
    }

    #[test]
    fn short_container_name_under_a_pod_cgroupfs() {
        let o = parse(&format!("/kubepods/pod{UID}/test-ctr"));
        assert_eq!(o.container_id.as_deref(), Some("test-ctr"));
    }

    #[test]
    fn host_paths_have_no_owner() {
        for p in [
            "/",
            "/system.slice/containerd.service",
            "/user.slice/user-0.slice/session-1.scope",
            "/init.scope",
            "/process_api/e6bfddc1b09a59cb1031e634d7144b43",
            "/kubepods.slice/kubepods-burstable.slice",
            "/podcast/abc",
        ] {
            assert!(parse(p).is_empty(), "{p} -> {:?}", parse(p));
        }
    }

    #[test]
    fn kubelet_pod_mounts() {
        let p = format!("/var/lib/kubelet/pods/{UID}/volumes/kubernetes.io~configmap/cfg");
        let m = pod_mount(&p).unwrap();
        assert_eq!(
            (m.pods_dir, m.pod_uid, m.kind, m.volume),
            (
                "/var/lib/kubelet/pods",
                UID,
                PodMountKind::Volume,
                Some("cfg")
            )
        );
        let p = format!("/data/kubelet/pods/{UID}/volume-subpaths/cfg/app/0");
        let m = pod_mount(&p).unwrap();
        assert_eq!(
            (m.pods_dir, m.kind, m.volume),
            ("/data/kubelet/pods", PodMountKind::Subpath, Some("cfg"))
        );
        assert_eq!(
            pod_mount(&format!("/var/lib/kubelet/pods/{UID}")).map(|m| m.kind),
            Some(PodMountKind::Other)
        );
        assert!(pod_mount("/var/lib/kubelet/pods/not-a-uid/volumes/x/y").is_none());
        assert!(pod_mount("/var/lib/kubelet/plugins/kubernetes.io/csi/x/globalmount").is_none());
    }

    #[test]
    fn runtime_state_mounts() {
        assert_eq!(
            runtime_mount(&format!(
                "/run/containerd/io.containerd.runtime.v2.task/k8s.io/{ID}/rootfs"
            )),
            Some(("containerd", ID))
        );
        assert_eq!(
            runtime_mount(&format!(
                "/run/containerd/io.containerd.grpc.v1.cri/sandboxes/{ID}/shm"
            )),
            Some(("containerd", ID))
        );
        assert_eq!(
            runtime_mount(&format!("/var/lib/docker/containers/{ID}/mounts/shm")),
            Some(("docker", ID))
        );
        assert_eq!(
            runtime_mount("/run/containerd/io.containerd.runtime.v2.task/default/web/rootfs"),
            None
        );
        assert_eq!(runtime_mount("/var/lib/docker/overlay2/abc/merged"), None);
    }

    #[test]
    fn static_pod_hash_uid() {
        let o = parse("/kubepods/burstable/pod0123456789abcdef0123456789abcdef");
        assert_eq!(
            o.pod_uid.as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
    }
}
