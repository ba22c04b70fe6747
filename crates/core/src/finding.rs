//! Findings: what a check concluded, with the evidence it read and what to do. The JSON form
//! of these types is the public contract documented in docs/output.md: add fields, never
//! rename them.
//!
//! Besides the prose, a finding is data: `key` names the problem stably across runs (the
//! agent's conditions, events and metrics key on it) and `measures` carries the numbers the
//! summary is made of (tests and metrics read those, not the wording).

use crate::attribution::CgroupOwner;
use crate::model::process::Process;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    /// The usual two-band classification: warning at `warn`, critical at `crit`.
    pub fn from_ratio(ratio: f64, warn: f64, crit: f64) -> Option<Severity> {
        if ratio >= crit {
            Some(Severity::Critical)
        } else if ratio >= warn {
            Some(Severity::Warning)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable kebab-case check id.
    pub check: String,
    /// Stable identity of the problem: the check and its primary subject
    /// ("zombie-processes/process:500:1234"). Same while the same problem persists.
    #[serde(default)]
    pub key: String,
    pub severity: Severity,
    /// One line, with the numbers.
    pub summary: String,
    /// The mechanism, in one to three sentences.
    pub cause: String,
    /// Concrete commands or settings.
    pub remedy: String,
    pub evidence: Vec<Evidence>,
    pub subjects: Vec<Subject>,
    /// The numbers the summary is made of.
    #[serde(default)]
    pub measures: Vec<Measure>,
    /// For findings from log rules: which rule matched, how often, when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogMatch>,
    /// Keys of findings of the same run that explain this one (its causes), nearest first:
    /// `runc-init-hang/process:...` for a `pleg-unhealthy` finding. Set by the causal
    /// post-pass ([`crate::causes`]), never by a check.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caused_by: Vec<String>,
    /// The reverse: keys of findings of the same run this one explains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub explains: Vec<String>,
}

impl Finding {
    /// The value of the measure named `name`.
    pub fn measure(&self, name: &str) -> Option<&Measure> {
        self.measures.iter().find(|m| m.name == name)
    }
}

/// A number a finding is about, with the limit it was compared against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measure {
    /// snake_case: "tasks", "zombies", "pipe_pages", "used_ratio".
    pub name: String,
    #[serde(with = "number")]
    pub value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_number")]
    pub limit: Option<f64>,
    pub unit: Unit,
}

impl Measure {
    pub fn new(name: &str, value: impl Into<Num>, unit: Unit) -> Self {
        Self {
            name: name.into(),
            value: value.into().0,
            limit: None,
            unit,
        }
    }

    pub fn of(mut self, limit: impl Into<Num>) -> Self {
        self.limit = Some(limit.into().0);
        self
    }

    pub fn of_opt(mut self, limit: Option<impl Into<Num>>) -> Self {
        self.limit = limit.map(|l| l.into().0);
        self
    }

    pub fn count(name: &str, value: impl Into<Num>) -> Self {
        Self::new(name, value, Unit::Count)
    }
}

/// Any number a measure can hold (integers are exact below 2^53).
pub struct Num(pub f64);

macro_rules! num_from {
    ($($t:ty),*) => {$(impl From<$t> for Num { fn from(v: $t) -> Self { Num(v as f64) } })*};
}
num_from!(u64, u32, i64, i32, usize, f64, f32);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Count,
    Bytes,
    Pages,
    Seconds,
    /// A fraction: 0.5 is half.
    Ratio,
}

/// Whole numbers serialize without a fraction ("40", not "40.0"); non-finite as null.
mod number {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15 {
            s.serialize_i64(*v as i64)
        } else if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

mod opt_number {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => super::number::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Option::<f64>::deserialize(d)
    }
}

/// Whether a log rule reports an event or a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    /// An event: it happened (OOM kill, segfault).
    Temporary,
    /// A condition that stays until cleared (read-only filesystem, kernel deadlock).
    Permanent,
}

impl RuleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Temporary => "temporary",
            RuleKind::Permanent => "permanent",
        }
    }
}

/// What a log rule matched (NPD's condition/reason vocabulary, so a finding can become a
/// NodeCondition or an Event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogMatch {
    /// The rule's name.
    pub rule: String,
    pub kind: RuleKind,
    /// NodeCondition type for permanent rules ("KernelDeadlock", "ReadonlyFilesystem").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Reason ("OOMKilling", "TaskHung").
    pub reason: String,
    /// Where the lines came from: "kmsg", "file:/var/log/kern.log", "journal:kubelet.service".
    pub source: String,
    /// Matching lines.
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ms: Option<u64>,
}

/// One thing read from the host that supports the finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The file (or derived source) it was read from: "/proc/sys/kernel/pid_max".
    pub source: String,
    /// What it said.
    pub observed: String,
    /// The limit it was compared against, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<String>,
}

impl Evidence {
    pub fn new(source: impl Into<String>, observed: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            observed: observed.into(),
            threshold: None,
        }
    }

    pub fn with_threshold(mut self, threshold: impl Into<String>) -> Self {
        self.threshold = Some(threshold.into());
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubjectKind {
    Process,
    Container,
    Pod,
    Cgroup,
    Filesystem,
    User,
    Node,
    /// A block device, a NIC, a GPU (by the name the kernel gives it: `sdb`, `eth0`,
    /// `PCI:0000:3b:00`).
    Device,
    /// A systemd unit (`kubelet.service`).
    Unit,
    /// A container image reference (`docker.io/library/nginx:1.27`).
    Image,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Process => "process",
            SubjectKind::Container => "container",
            SubjectKind::Pod => "pod",
            SubjectKind::Cgroup => "cgroup",
            SubjectKind::Filesystem => "filesystem",
            SubjectKind::User => "user",
            SubjectKind::Node => "node",
            SubjectKind::Device => "device",
            SubjectKind::Unit => "unit",
            SubjectKind::Image => "image",
        }
    }
}

/// Who or what the finding is about. Fields are present when known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    pub kind: SubjectKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// Pod uid (the name needs the API server or the runtime; the uid is what the node knows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// A path naming the subject: a mount point, a cgroup path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A device name as the kernel logs it (`sdb`, `nvme1n1`, `eth0`, `PCI:0000:3b:00`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// A systemd unit (`kubelet.service`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// A container image reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The pod's namespace and name: from the CRI or the kubelet's log directories
    /// ([`crate::names`]), or where a log line names them (kubelet's `pod="ns/name"`);
    /// absent when nothing named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    /// The container's name in its pod spec (the same sources; kubelet's
    /// `containerName="web"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
}

impl Subject {
    pub fn new(kind: SubjectKind) -> Self {
        Self {
            kind,
            pid: None,
            comm: None,
            uid: None,
            container_id: None,
            pod: None,
            path: None,
            device: None,
            unit: None,
            image: None,
            namespace: None,
            pod_name: None,
            container_name: None,
        }
    }

    pub fn process(p: &Process) -> Self {
        Self {
            pid: Some(p.pid),
            comm: Some(p.comm.clone()),
            uid: p.uid,
            container_id: p.owner.container_id.clone(),
            pod: p.owner.pod_uid.clone(),
            ..Self::new(SubjectKind::Process)
        }
    }

    /// The container (or, without a container id, the pod) a cgroup path names.
    pub fn container(owner: &CgroupOwner) -> Self {
        Self {
            container_id: owner.container_id.clone(),
            pod: owner.pod_uid.clone(),
            ..Self::new(if owner.container_id.is_some() {
                SubjectKind::Container
            } else {
                SubjectKind::Pod
            })
        }
    }

    pub fn path(kind: SubjectKind, path: impl Into<String>) -> Self {
        Self {
            path: Some(path.into()),
            ..Self::new(kind)
        }
    }

    pub fn user(uid: u32) -> Self {
        Self {
            uid: Some(uid),
            ..Self::new(SubjectKind::User)
        }
    }
}

/// Builders of `Finding::key`: `<check>/<kind>:<identity>`, where the identity is what
/// stays the same while the problem persists.
pub mod key {
    use crate::model::process::Process;

    /// A process by pid and start time (pids are reused, start times are not).
    pub fn process(check: &str, p: &Process) -> String {
        format!("{check}/process:{}:{}", p.pid, p.start_time_ticks)
    }

    /// A process known only by pid (the parent of zombies that could not be read).
    pub fn pid(check: &str, pid: i32) -> String {
        format!("{check}/process:{pid}")
    }

    pub fn container(check: &str, id: &str) -> String {
        format!("{check}/container:{id}")
    }

    /// A pod by uid.
    pub fn pod(check: &str, uid: &str) -> String {
        format!("{check}/pod:{uid}")
    }

    pub fn cgroup(check: &str, hierarchy: &str, path: &str) -> String {
        format!("{check}/cgroup:{hierarchy}:{path}")
    }

    pub fn user(check: &str, uid: u32) -> String {
        format!("{check}/user:{uid}")
    }

    pub fn filesystem(check: &str, mount_point: &str) -> String {
        format!("{check}/filesystem:{mount_point}")
    }

    pub fn node(check: &str) -> String {
        format!("{check}/node")
    }

    /// One of several node-wide problems a check reports ("mount-leak/node:systemd-transient").
    pub fn node_aspect(check: &str, aspect: &str) -> String {
        format!("{check}/node:{aspect}")
    }

    /// A command by its `comm` (a crash loop restarts it under new pids).
    pub fn command(check: &str, comm: &str) -> String {
        format!("{check}/command:{comm}")
    }

    /// A sysctl by its dotted name.
    pub fn sysctl(check: &str, name: &str) -> String {
        format!("{check}/sysctl:{name}")
    }

    /// A directory of the host (a dump store).
    pub fn path(check: &str, path: &str) -> String {
        format!("{check}/path:{path}")
    }

    /// A log rule's group: the rule and whom the lines name.
    pub fn log(check: &str, rule: &str, subject: &str) -> String {
        if subject.is_empty() {
            format!("{check}/rule:{rule}")
        } else {
            format!("{check}/rule:{rule}/{subject}")
        }
    }

    /// A kubelet setting ("kubelet-config/setting:kubeAPIQPS").
    pub fn setting(check: &str, name: &str) -> String {
        format!("{check}/setting:{name}")
    }

    /// A daemon by kind ("runtime-health/daemon:containerd"): its pid changes on restart,
    /// the problem does not.
    pub fn daemon(check: &str, kind: &str) -> String {
        format!("{check}/daemon:{kind}")
    }

    /// An image being pulled, by reference.
    pub fn image(check: &str, reference: &str) -> String {
        format!("{check}/image:{reference}")
    }

    /// A folded "and N more" finding.
    pub fn more(check: &str) -> String {
        format!("{check}/more")
    }
}

/// A check, or part of one, that could not conclude, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unknown {
    pub check: String,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_serialize_whole_numbers_as_integers() {
        let m = Measure::count("zombies", 40u64).of(88u64);
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"name":"zombies","value":40,"limit":88,"unit":"count"}"#
        );
        let r = Measure::new("used_ratio", 0.925, Unit::Ratio);
        assert!(serde_json::to_string(&r).unwrap().contains("0.925"));
        let back: Measure =
            serde_json::from_str(r#"{"name":"x","value":null,"unit":"count"}"#).unwrap();
        assert!(back.value.is_nan());
    }
}
