//! Findings: what a check concluded, with the evidence it read and what to do. The JSON form
//! of these types is the public contract documented in docs/output.md: add fields, never
//! rename them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
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
    pub severity: Severity,
    /// One line, with the numbers.
    pub summary: String,
    /// The mechanism, in one to three sentences.
    pub cause: String,
    /// Concrete commands or settings.
    pub remedy: String,
    pub evidence: Vec<Evidence>,
    pub subjects: Vec<Subject>,
    /// For findings from log rules: which rule matched, how often, when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogMatch>,
}

/// What a log rule matched (NPD's condition/reason vocabulary, so a finding can become a
/// NodeCondition or an Event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogMatch {
    /// The rule's name.
    pub rule: String,
    /// "temporary" (an event) or "permanent" (a condition that stays until cleared).
    pub kind: String,
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
    #[serde(skip_serializing_if = "Option::is_none")]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubjectKind {
    Process,
    Container,
    Pod,
    Cgroup,
    Filesystem,
    User,
    Node,
}

/// Who or what the finding is about. Fields are present when known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    pub kind: SubjectKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// Pod uid (the name needs the API server; the uid is what the node knows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// A path naming the subject: a mount point, a cgroup path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
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
        }
    }

    pub fn process(p: &crate::host::processes::Process) -> Self {
        Self {
            pid: Some(p.pid),
            comm: Some(p.comm.clone()),
            uid: Some(p.uid),
            container_id: p.owner.container_id.clone(),
            pod: p.owner.pod_uid.clone(),
            ..Self::new(SubjectKind::Process)
        }
    }

    pub fn path(kind: SubjectKind, path: impl Into<String>) -> Self {
        Self {
            path: Some(path.into()),
            ..Self::new(kind)
        }
    }
}

/// A check that could not reach a conclusion, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unknown {
    pub check: String,
    pub reason: String,
}
