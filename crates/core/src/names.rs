//! Names on subjects: the node knows containers by id and pods by uid (cgroup paths), people
//! know them as `namespace/pod` and a container name. The snapshot's [`Workloads`] (from the
//! CRI, else the kubelet's log directories) maps one to the other; this pass writes the names
//! onto every subject of every finding, after the checks ran, so no check has to.

use crate::finding::{Finding, Subject};
use crate::model::runtime::Workloads;
use crate::model::snapshot::Snapshot;

/// Adds namespace, pod name and container name to the subjects of `findings` from the
/// workloads in `s`. Subjects already named keep their names.
pub fn name_subjects(findings: &mut [Finding], s: &Snapshot) {
    let Some(w) = &s.workloads else { return };
    for f in findings {
        for subject in &mut f.subjects {
            name(subject, w);
        }
    }
}

/// Names one subject: by container id (an app container, or a pod's sandbox), else by pod
/// uid.
pub fn name(subject: &mut Subject, w: &Workloads) {
    if let Some(id) = subject.container_id.as_deref() {
        if let Some(c) = w.container(id) {
            if subject.container_name.is_none() && !c.name.is_empty() {
                subject.container_name = Some(c.name.clone());
            }
            if let Some(p) = w.pod_of(c) {
                set_pod(subject, &p.uid, &p.namespace, &p.name);
            }
        } else if let Some(p) = w.pod_by_sandbox(id) {
            // The sandbox ("pause") container: the pod itself.
            set_pod(subject, &p.uid, &p.namespace, &p.name);
        }
    }
    if let Some(uid) = subject.pod.clone()
        && let Some(p) = w.pod_by_uid(&uid)
    {
        set_pod(subject, &p.uid, &p.namespace, &p.name);
        // From the log directories alone a container id maps to no name; a pod whose only
        // container is known still names it.
        if subject.container_name.is_none()
            && subject.container_id.is_some()
            && w.container(subject.container_id.as_deref().unwrap_or_default())
                .is_none()
        {
            let mut of_pod = w
                .containers
                .iter()
                .filter(|c| c.pod_uid.as_deref() == Some(uid.as_str()));
            if let (Some(only), None) = (of_pod.next(), of_pod.next())
                && (only.id.is_empty() || subject.container_id.as_deref() == Some(only.id.as_str()))
            {
                subject.container_name = Some(only.name.clone());
            }
        }
    }
}

fn set_pod(subject: &mut Subject, uid: &str, namespace: &str, name: &str) {
    if subject.pod.is_none() && !uid.is_empty() {
        subject.pod = Some(uid.to_string());
    }
    if subject.namespace.is_none() && !namespace.is_empty() {
        subject.namespace = Some(namespace.to_string());
    }
    if subject.pod_name.is_none() && !name.is_empty() {
        subject.pod_name = Some(name.to_string());
    }
}

/// Parses a kubelet pod log directory name, `<namespace>_<name>_<uid>`. Namespaces and pod
/// names are DNS labels/subdomains (no `_`), so the split is unambiguous.
pub fn parse_pod_log_dir(name: &str) -> Option<(&str, &str, &str)> {
    let mut it = name.splitn(3, '_');
    let (ns, pod, uid) = (it.next()?, it.next()?, it.next()?);
    (!ns.is_empty() && !pod.is_empty() && !uid.is_empty() && !uid.contains('_'))
        .then_some((ns, pod, uid))
}

/// Parses a kubelet container log link name, `<pod>_<namespace>_<container>-<id>.log`
/// (kubelet's `BuildContainerLogsDirectory`... `/var/log/containers`), into (pod,
/// namespace, container, id).
pub fn parse_container_log_link(name: &str) -> Option<(&str, &str, &str, &str)> {
    let stem = name.strip_suffix(".log")?;
    let mut it = stem.splitn(3, '_');
    let (pod, ns, rest) = (it.next()?, it.next()?, it.next()?);
    let (container, id) = rest.rsplit_once('-')?;
    (!pod.is_empty() && !ns.is_empty() && !container.is_empty() && id.len() >= 12)
        .then_some((pod, ns, container, id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::SubjectKind;
    use crate::model::runtime::{Container, Pod};

    const UID: &str = "5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c";
    const ID: &str = "3f1c9a27d0b4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e";
    const SANDBOX: &str = "aaaa9a27d0b4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e";

    fn workloads() -> Workloads {
        Workloads {
            source: "cri".into(),
            pods: vec![Pod {
                uid: UID.into(),
                namespace: "shop".into(),
                name: "cart-7d9f".into(),
                sandbox_id: Some(SANDBOX.into()),
                ..Pod::default()
            }],
            containers: vec![Container {
                id: ID.into(),
                name: "cart".into(),
                sandbox_id: Some(SANDBOX.into()),
                ..Container::default()
            }],
            fallback_reason: None,
        }
    }

    #[test]
    fn a_container_subject_gets_its_pod_and_name() {
        let mut s = Subject {
            container_id: Some(ID.into()),
            ..Subject::new(SubjectKind::Container)
        };
        name(&mut s, &workloads());
        assert_eq!(s.container_name.as_deref(), Some("cart"));
        assert_eq!(s.namespace.as_deref(), Some("shop"));
        assert_eq!(s.pod_name.as_deref(), Some("cart-7d9f"));
        assert_eq!(s.pod.as_deref(), Some(UID));
    }

    #[test]
    fn the_sandbox_names_the_pod_and_a_uid_alone_too() {
        let mut s = Subject {
            container_id: Some(SANDBOX.into()),
            ..Subject::new(SubjectKind::Process)
        };
        name(&mut s, &workloads());
        assert_eq!(s.pod_name.as_deref(), Some("cart-7d9f"));
        assert_eq!(s.container_name, None);
        let mut s = Subject {
            pod: Some(UID.into()),
            ..Subject::new(SubjectKind::Pod)
        };
        name(&mut s, &workloads());
        assert_eq!(s.namespace.as_deref(), Some("shop"));
        let mut s = Subject::new(SubjectKind::Node);
        name(&mut s, &workloads());
        assert_eq!(s, Subject::new(SubjectKind::Node));
    }

    #[test]
    fn log_directories_alone_name_the_only_container_of_a_pod() {
        let w = Workloads {
            source: "var/log/pods".into(),
            pods: workloads().pods,
            containers: vec![Container {
                name: "cart".into(),
                pod_uid: Some(UID.into()),
                ..Container::default()
            }],
            fallback_reason: Some("CRI unreachable".into()),
        };
        let mut s = Subject {
            container_id: Some(ID.into()),
            pod: Some(UID.into()),
            ..Subject::new(SubjectKind::Container)
        };
        name(&mut s, &w);
        assert_eq!(s.container_name.as_deref(), Some("cart"));
        assert_eq!(s.pod_name.as_deref(), Some("cart-7d9f"));
    }

    #[test]
    fn kubelet_log_names_parse() {
        assert_eq!(
            parse_pod_log_dir(&format!("kube-system_coredns-5d78c9869d-abcde_{UID}")),
            Some(("kube-system", "coredns-5d78c9869d-abcde", UID))
        );
        assert_eq!(parse_pod_log_dir("nounderscore"), None);
        assert_eq!(
            parse_container_log_link(&format!("cart-7d9f_shop_cart-init-{ID}.log")),
            Some(("cart-7d9f", "shop", "cart-init", ID))
        );
        assert_eq!(parse_container_log_link("x_y_z.log"), None);
    }
}
