//! Causal chains: when one finding of a run explains another, say so. A node that is NotReady
//! because kubelet's PLEG is stuck behind a `runc init` blocked on a pipe the kernel shrank
//! because uid 0 is over its pipe quota (incident 1) gives three findings; the chain says
//! which one to fix. Each effect's `caused_by` lists the keys of its causes and each cause's
//! `explains` the keys of its effects.
//!
//! The rules are data ([`RULES`]): which check's finding can explain which, and how the two
//! must be related (same process, same container, same uid, or anything on the node for
//! node-wide effects). The pass runs after every check, on findings only: pure, and the
//! same on a replayed recording.

use crate::checks::common::runtime_daemon;
use crate::finding::{Finding, Severity, SubjectKind};

/// How a cause must relate to its effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Anything the cause check found on the node explains the effect (a node-wide symptom:
    /// PLEG, the runtime not answering).
    OnNode,
    /// The cause names a container (a D-state process inside one).
    CauseInContainer,
    /// They name the same process (pid) or the same container.
    SameProcessOrContainer,
    /// A node-wide effect: anything of the cause check; an effect about a pod or container
    /// (a pids cgroup): a cause naming the same pod or container.
    SamePodOrNode,
    /// The cause is about a user (pipe-quota's uid) that the effect's first process runs as.
    SameUid,
    /// The effect's first process is a container runtime daemon (dockerd, containerd).
    EffectIsRuntimeDaemon,
    /// The cause's key is this kubelet setting (`kubelet-config/setting:<name>`).
    Setting(&'static str),
}

/// One way a finding of `cause` explains a finding of `effect`.
#[derive(Debug, Clone, Copy)]
pub struct CauseRule {
    pub effect: &'static str,
    pub cause: &'static str,
    pub link: Link,
    /// A measure of the effect that must be above 0 for the link to hold (runc init is only
    /// explained by the pipe quota when it holds a shrunk pipe).
    pub effect_measure: Option<&'static str>,
    /// The least severity of a cause that explains anything.
    pub min_cause: Severity,
    /// The mechanism, for docs and tests.
    pub why: &'static str,
}

const fn rule(
    effect: &'static str,
    cause: &'static str,
    link: Link,
    why: &'static str,
) -> CauseRule {
    CauseRule {
        effect,
        cause,
        link,
        effect_measure: None,
        min_cause: Severity::Warning,
        why,
    }
}

/// Every causal rule. The graph they form has no cycle (a test checks it).
pub const RULES: &[CauseRule] = &[
    rule(
        "pleg-unhealthy",
        "runc-init-hang",
        Link::OnNode,
        "PLEG relists through the runtime, which waits on the hung runc init (incident 1)",
    ),
    rule(
        "pleg-unhealthy",
        "runtime-health",
        Link::OnNode,
        "PLEG relists through the CRI; a runtime that does not answer stalls it",
    ),
    rule(
        "pleg-unhealthy",
        "d-state-processes",
        Link::CauseInContainer,
        "a container process in D state cannot be stopped or inspected, and the runtime calls about it hang",
    ),
    rule(
        "runtime-health",
        "runc-init-hang",
        Link::OnNode,
        "containerd's task service waits on the shim, which waits on runc init",
    ),
    CauseRule {
        effect_measure: Some("shrunk_pipes"),
        ..rule(
            "runc-init-hang",
            "pipe-quota",
            Link::SameUid,
            "the pipe runc writes its bootstrap data into was created at 2 pages because its uid is over fs.pipe-user-pages-soft",
        )
    },
    rule(
        "stuck-container-stop",
        "d-state-processes",
        Link::SameProcessOrContainer,
        "the container cannot stop while its process sleeps uninterruptibly",
    ),
    rule(
        "fd-leak",
        "stuck-container-stop",
        Link::EffectIsRuntimeDaemon,
        "every retried stop of the stuck container leaks a connection in the daemon (incident 4)",
    ),
    rule(
        "pid-exhaustion",
        "zombie-processes",
        Link::SamePodOrNode,
        "zombies hold their pids until their parent reaps them (incident 2a)",
    ),
    CauseRule {
        min_cause: Severity::Info,
        ..rule(
            "kubelet-api-throttling",
            "kubelet-config",
            Link::Setting("kubeAPIQPS"),
            "the client-side rate limiter is kubeAPIQPS/kubeAPIBurst",
        )
    },
    CauseRule {
        min_cause: Severity::Info,
        ..rule(
            "image-pull-serialized",
            "kubelet-config",
            Link::Setting("serializeImagePulls"),
            "with serializeImagePulls the kubelet pulls one image at a time",
        )
    },
];

fn linked(r: &CauseRule, effect: &Finding, cause: &Finding) -> bool {
    if cause.severity < r.min_cause {
        return false;
    }
    if let Some(m) = r.effect_measure
        && !effect.measure(m).is_some_and(|m| m.value > 0.0)
    {
        return false;
    }
    let first_process = |f: &Finding| {
        f.subjects
            .iter()
            .find(|s| s.kind == SubjectKind::Process)
            .cloned()
    };
    match r.link {
        Link::OnNode => true,
        Link::CauseInContainer => cause.subjects.iter().any(|s| s.container_id.is_some()),
        Link::SameProcessOrContainer => effect.subjects.iter().any(|e| {
            cause.subjects.iter().any(|c| {
                (e.pid.is_some() && e.pid == c.pid)
                    || (e.container_id.is_some() && e.container_id == c.container_id)
            })
        }),
        Link::SamePodOrNode => {
            let scoped: Vec<_> = effect
                .subjects
                .iter()
                .filter(|s| {
                    s.kind != SubjectKind::Process && (s.pod.is_some() || s.container_id.is_some())
                })
                .collect();
            scoped.is_empty()
                || scoped.iter().any(|e| {
                    cause.subjects.iter().any(|c| {
                        (e.pod.is_some() && e.pod == c.pod)
                            || (e.container_id.is_some() && e.container_id == c.container_id)
                    })
                })
        }
        Link::SameUid => {
            let Some(p) = first_process(effect) else {
                return false;
            };
            cause
                .subjects
                .iter()
                .any(|s| s.kind == SubjectKind::User && s.uid.is_some() && s.uid == p.uid)
        }
        Link::EffectIsRuntimeDaemon => first_process(effect)
            .and_then(|p| p.comm)
            .is_some_and(|c| runtime_daemon(&c).is_some()),
        Link::Setting(name) => cause.key == format!("{}/setting:{name}", cause.check),
    }
}

/// Fills `caused_by` and `explains` of `findings` (those of one run) from [`RULES`].
pub fn link(findings: &mut [Finding]) {
    let mut edges: Vec<(usize, usize)> = Vec::new();
    for (ei, e) in findings.iter().enumerate() {
        for r in RULES.iter().filter(|r| r.effect == e.check) {
            for (ci, c) in findings.iter().enumerate() {
                if ci != ei && c.check == r.cause && c.key != e.key && linked(r, e, c) {
                    edges.push((ei, ci));
                }
            }
        }
    }
    for (ei, ci) in edges {
        let (ekey, ckey) = match (findings.get(ei), findings.get(ci)) {
            (Some(e), Some(c)) => (e.key.clone(), c.key.clone()),
            _ => continue,
        };
        if let Some(e) = findings.get_mut(ei)
            && !e.caused_by.contains(&ckey)
        {
            e.caused_by.push(ckey);
        }
        if let Some(c) = findings.get_mut(ci)
            && !c.explains.contains(&ekey)
        {
            c.explains.push(ekey);
        }
    }
}

/// Chains of a run, root cause first: every path from a finding that explains something and
/// is explained by nothing, down to a finding that explains nothing. Indices into
/// `findings`; bounded (a rule graph without cycles, at most 64 paths).
pub fn chains(findings: &[Finding]) -> Vec<Vec<usize>> {
    let by_key = |k: &str| findings.iter().position(|f| f.key == k);
    let mut out = Vec::new();
    for (i, f) in findings.iter().enumerate() {
        if f.caused_by.is_empty() && !f.explains.is_empty() {
            let mut path = vec![i];
            walk(findings, &by_key, &mut path, &mut out);
        }
    }
    out
}

fn walk(
    findings: &[Finding],
    by_key: &dyn Fn(&str) -> Option<usize>,
    path: &mut Vec<usize>,
    out: &mut Vec<Vec<usize>>,
) {
    const MAX_PATHS: usize = 64;
    const MAX_DEPTH: usize = 16;
    if out.len() >= MAX_PATHS {
        return;
    }
    let Some(&last) = path.last() else { return };
    let next: Vec<usize> = findings
        .get(last)
        .map(|f| f.explains.iter().filter_map(|k| by_key(k)).collect())
        .unwrap_or_default();
    let next: Vec<usize> = next.into_iter().filter(|n| !path.contains(n)).collect();
    if next.is_empty() || path.len() >= MAX_DEPTH {
        out.push(path.clone());
        return;
    }
    for n in next {
        path.push(n);
        walk(findings, by_key, path, out);
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::{Measure, Subject};

    fn finding(check: &str, key: &str, subjects: Vec<Subject>) -> Finding {
        Finding {
            check: check.into(),
            key: format!("{check}/{key}"),
            severity: Severity::Critical,
            summary: String::new(),
            cause: String::new(),
            remedy: String::new(),
            evidence: vec![],
            subjects,
            measures: vec![],
            log: None,
            caused_by: vec![],
            explains: vec![],
        }
    }

    fn process(pid: i32, uid: u32, comm: &str) -> Subject {
        Subject {
            pid: Some(pid),
            uid: Some(uid),
            comm: Some(comm.into()),
            ..Subject::new(SubjectKind::Process)
        }
    }

    #[test]
    fn the_rule_graph_has_no_cycle() {
        fn reaches(from: &str, to: &str, depth: usize) -> bool {
            depth < 32
                && RULES
                    .iter()
                    .filter(|r| r.effect == from)
                    .any(|r| r.cause == to || reaches(r.cause, to, depth + 1))
        }
        for r in RULES {
            assert!(!reaches(r.cause, r.effect, 0), "{} ↔ {}", r.effect, r.cause);
            assert!(crate::checks::by_id(r.effect).is_some(), "{}", r.effect);
            assert!(crate::checks::by_id(r.cause).is_some(), "{}", r.cause);
        }
    }

    #[test]
    fn incident_1_is_one_chain_with_the_pipe_quota_at_its_root() {
        let mut runc = finding(
            "runc-init-hang",
            "process:40:9",
            vec![process(40, 0, "runc:[2:INIT]")],
        );
        runc.measures.push(Measure::count("shrunk_pipes", 1u64));
        let mut fs = vec![
            finding(
                "pleg-unhealthy",
                "node",
                vec![Subject::new(SubjectKind::Node)],
            ),
            runc,
            finding(
                "pipe-quota",
                "user:0",
                vec![Subject::user(0), process(7, 0, "x")],
            ),
            finding("pipe-quota", "user:4242", vec![Subject::user(4242)]),
        ];
        link(&mut fs);
        assert_eq!(fs[0].caused_by, vec!["runc-init-hang/process:40:9"]);
        assert_eq!(fs[1].caused_by, vec!["pipe-quota/user:0"]);
        assert_eq!(fs[1].explains, vec!["pleg-unhealthy/node"]);
        assert!(fs[3].explains.is_empty(), "another uid explains nothing");
        assert_eq!(chains(&fs), vec![vec![2, 1, 0]]);
    }

    #[test]
    fn a_runc_init_without_a_shrunk_pipe_is_not_blamed_on_the_quota() {
        let mut fs = vec![
            finding(
                "runc-init-hang",
                "process:40:9",
                vec![process(40, 0, "runc:[2:INIT]")],
            ),
            finding("pipe-quota", "user:0", vec![Subject::user(0)]),
        ];
        link(&mut fs);
        assert!(fs[0].caused_by.is_empty());
        assert!(chains(&fs).is_empty());
    }

    #[test]
    fn incident_4_daemon_fds_stop_and_d_state() {
        let ctr = Subject {
            container_id: Some("abc".into()),
            ..Subject::new(SubjectKind::Container)
        };
        let mut fs = vec![
            finding("fd-leak", "process:812:1", vec![process(812, 0, "dockerd")]),
            finding(
                "stuck-container-stop",
                "container:abc",
                vec![ctr.clone(), process(900, 0, "app")],
            ),
            finding(
                "d-state-processes",
                "process:900:5",
                vec![process(900, 0, "app"), ctr],
            ),
            finding("fd-leak", "process:77:1", vec![process(77, 1000, "java")]),
        ];
        link(&mut fs);
        assert_eq!(fs[0].caused_by, vec!["stuck-container-stop/container:abc"]);
        assert_eq!(fs[1].caused_by, vec!["d-state-processes/process:900:5"]);
        assert!(
            fs[3].caused_by.is_empty(),
            "a leak in an application is not the stop's"
        );
        assert_eq!(chains(&fs), vec![vec![2, 1, 0]]);
    }

    #[test]
    fn a_pods_pid_limit_is_explained_by_zombies_of_that_pod_only() {
        let pod = |uid: &str| Subject {
            pod: Some(uid.into()),
            ..Subject::new(SubjectKind::Cgroup)
        };
        let zombie_parent = |uid: &str| Subject {
            pod: Some(uid.into()),
            ..process(9, 0, "cron")
        };
        let mut fs = vec![
            finding("pid-exhaustion", "cgroup:v1:/kubepods/poda", vec![pod("a")]),
            finding("zombie-processes", "process:9:1", vec![zombie_parent("b")]),
            finding("pid-exhaustion", "node", vec![process(1, 0, "init")]),
        ];
        link(&mut fs);
        assert!(fs[0].caused_by.is_empty(), "zombies of another pod");
        assert_eq!(fs[2].caused_by, vec!["zombie-processes/process:9:1"]);
    }

    #[test]
    fn settings_explain_only_their_own_symptom() {
        let mut fs = vec![
            finding("kubelet-api-throttling", "node", vec![]),
            finding("kubelet-config", "setting:kubeAPIQPS", vec![]),
            finding("kubelet-config", "setting:podPidsLimit", vec![]),
        ];
        link(&mut fs);
        assert_eq!(fs[0].caused_by, vec!["kubelet-config/setting:kubeAPIQPS"]);
        assert!(fs[2].explains.is_empty());
    }
}
