//! NodeConditions as a pure state machine: (previous condition, this run's verdict, now, boot
//! id) → the condition to publish. Every consumer (medik8s NHC, Cluster API MHC, draino,
//! karpenter) times remediation from `lastTransitionTime`, so it changes only when the
//! status does; a problem clears by flipping to False, never by deleting the condition
//! (draino uncordons only on a present condition with another status); a restart adopts
//! what is on the Node instead of resetting it to healthy.

use serde::{Deserialize, Serialize};

pub mod catalog;

/// `status` of a NodeCondition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    True,
    False,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::True => "True",
            Status::False => "False",
            Status::Unknown => "Unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "True" => Some(Status::True),
            "False" => Some(Status::False),
            "Unknown" => Some(Status::Unknown),
            _ => None,
        }
    }
}

/// The reason of an Unknown condition.
pub const UNKNOWN_REASON: &str = "NodeDoctorCannotCheck";

/// What one run concluded for a condition type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A problem: the reason and the message (≤ 1 KiB, see [`message`]).
    Problem { reason: String, message: String },
    /// Checked and fine.
    Fine { reason: String, message: String },
    /// Could not evaluate this run.
    Unknown { message: String },
}

/// How a condition type clears.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Clear {
    /// A state check: after this many clean runs in a row.
    AfterCleanRuns(u32),
    /// A log-derived condition: when no problem was seen for this long (ms).
    QuietFor(u64),
    /// Holds until the node reboots (boot id changes): a read-only filesystem, a kernel
    /// deadlock.
    UntilReboot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub clear: Clear,
    /// Consecutive Unknown verdicts before the condition turns Unknown.
    pub unknown_after: u32,
}

/// A condition as node-doctor tracks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CondState {
    pub type_: String,
    pub status: Status,
    pub reason: String,
    pub message: String,
    pub last_transition_ms: u64,
    /// Clean runs in a row while True (hysteresis).
    #[serde(default)]
    pub clean_runs: u32,
    /// Unknown verdicts in a row.
    #[serde(default)]
    pub unknown_runs: u32,
    /// When a problem was last seen (quiet-window clearing).
    #[serde(default)]
    pub last_problem_ms: Option<u64>,
    /// The boot it turned True in (until-reboot clearing).
    #[serde(default)]
    pub boot_id: Option<String>,
}

/// Longest message written (the API server accepts more; consumers show less).
pub const MAX_MESSAGE: usize = 1024;

/// The message, cut to [`MAX_MESSAGE`] bytes on a char boundary.
pub fn message(text: &str) -> String {
    if text.len() <= MAX_MESSAGE {
        return text.to_string();
    }
    let mut end = MAX_MESSAGE.saturating_sub(3);
    while !text.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    format!("{}...", text.get(..end).unwrap_or(""))
}

/// The condition after this run. `None` in, `None` out while a type has had only Unknown
/// verdicts (fewer than `unknown_after`): a type appears with its first real verdict.
pub fn step(
    type_: &str,
    prev: Option<&CondState>,
    verdict: &Verdict,
    now_ms: u64,
    boot_id: Option<&str>,
    policy: Policy,
) -> Option<CondState> {
    let fresh = |status: Status, reason: &str, msg: &str| CondState {
        type_: type_.to_string(),
        status,
        reason: reason.to_string(),
        message: message(msg),
        last_transition_ms: now_ms,
        clean_runs: 0,
        unknown_runs: 0,
        last_problem_ms: (status == Status::True).then_some(now_ms),
        boot_id: (status == Status::True)
            .then(|| boot_id.map(str::to_string))
            .flatten(),
    };
    match (prev, verdict) {
        (None, Verdict::Problem { reason, message }) => Some(fresh(Status::True, reason, message)),
        (None, Verdict::Fine { reason, message }) => Some(fresh(Status::False, reason, message)),
        (None, Verdict::Unknown { .. }) => None,
        (Some(p), v) => Some(next(p, v, now_ms, boot_id, policy)),
    }
}

fn next(
    p: &CondState,
    v: &Verdict,
    now_ms: u64,
    boot_id: Option<&str>,
    policy: Policy,
) -> CondState {
    let mut s = p.clone();
    match v {
        Verdict::Problem { reason, message: m } => {
            if s.status != Status::True {
                s.status = Status::True;
                s.last_transition_ms = now_ms;
                s.boot_id = boot_id.map(str::to_string);
            }
            s.reason = reason.clone();
            s.message = message(m);
            s.clean_runs = 0;
            s.unknown_runs = 0;
            s.last_problem_ms = Some(now_ms);
        }
        Verdict::Fine { reason, message: m } => {
            s.unknown_runs = 0;
            let clears = match (s.status, policy.clear) {
                (Status::True, Clear::AfterCleanRuns(k)) => {
                    s.clean_runs = s.clean_runs.saturating_add(1);
                    s.clean_runs >= k.max(1)
                }
                (Status::True, Clear::QuietFor(ms)) => s
                    .last_problem_ms
                    .is_none_or(|t| now_ms.saturating_sub(t) >= ms),
                (Status::True, Clear::UntilReboot) => {
                    // The boot it was set in is over: whatever held it is gone.
                    match (&s.boot_id, boot_id) {
                        (Some(set), Some(now)) => set != now,
                        _ => false,
                    }
                }
                (Status::False | Status::Unknown, _) => true,
            };
            if clears {
                if s.status != Status::False {
                    s.status = Status::False;
                    s.last_transition_ms = now_ms;
                }
                s.reason = reason.clone();
                s.message = message(m);
                s.clean_runs = 0;
                s.boot_id = None;
            }
        }
        Verdict::Unknown { message: m } => {
            s.unknown_runs = s.unknown_runs.saturating_add(1);
            if s.unknown_runs >= policy.unknown_after.max(1) && s.status != Status::Unknown {
                s.status = Status::Unknown;
                s.last_transition_ms = now_ms;
                s.reason = UNKNOWN_REASON.to_string();
                s.message = message(m);
                s.clean_runs = 0;
            }
        }
    }
    s
}

/// A condition read from the Node at start: adopted as is (status, reason, message and
/// lastTransitionTime), so a restart neither flaps nor resets a remediation timer.
pub fn adopt(
    type_: &str,
    status: &str,
    reason: &str,
    message_: &str,
    last_transition_ms: u64,
) -> Option<CondState> {
    Some(CondState {
        type_: type_.to_string(),
        status: Status::parse(status)?,
        reason: reason.to_string(),
        message: message(message_),
        last_transition_ms,
        clean_runs: 0,
        unknown_runs: 0,
        last_problem_ms: None,
        boot_id: None,
    })
}

/// Whether publishing `new` in place of `old` changes what the API server holds (the
/// heartbeat aside).
pub fn changed(old: Option<&CondState>, new: &CondState) -> bool {
    match old {
        None => true,
        Some(o) => {
            o.status != new.status
                || o.reason != new.reason
                || o.message != new.message
                || o.last_transition_ms != new.last_transition_ms
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const POLICY: Policy = Policy {
        clear: Clear::AfterCleanRuns(3),
        unknown_after: 3,
    };

    fn problem() -> Verdict {
        Verdict::Problem {
            reason: "UnreapedZombies".into(),
            message: "500 (runner) holds 40 zombies".into(),
        }
    }
    fn fine() -> Verdict {
        Verdict::Fine {
            reason: "NoZombiePileUp".into(),
            message: "no parent holds zombies".into(),
        }
    }
    fn unknown() -> Verdict {
        Verdict::Unknown {
            message: "processes not read".into(),
        }
    }

    #[test]
    fn hysteresis_clears_after_k_clean_runs_keeping_the_transition_time() {
        let t = |i: u64| i * 10_000;
        let mut c = step("ZombieProcesses", None, &problem(), t(0), None, POLICY).unwrap();
        assert_eq!((c.status, c.last_transition_ms), (Status::True, 0));
        c = step("ZombieProcesses", Some(&c), &problem(), t(1), None, POLICY).unwrap();
        assert_eq!(c.last_transition_ms, 0, "still True: the time is kept");
        for i in 2..4 {
            c = step("ZombieProcesses", Some(&c), &fine(), t(i), None, POLICY).unwrap();
            assert_eq!(c.status, Status::True, "run {i}: not yet K clean runs");
        }
        c = step("ZombieProcesses", Some(&c), &fine(), t(4), None, POLICY).unwrap();
        assert_eq!(
            (c.status, c.last_transition_ms, c.reason.as_str()),
            (Status::False, t(4), "NoZombiePileUp")
        );
    }

    #[test]
    fn a_problem_between_clean_runs_restarts_the_count() {
        let mut c = step("T", None, &problem(), 0, None, POLICY).unwrap();
        c = step("T", Some(&c), &fine(), 1, None, POLICY).unwrap();
        c = step("T", Some(&c), &fine(), 2, None, POLICY).unwrap();
        c = step("T", Some(&c), &problem(), 3, None, POLICY).unwrap();
        c = step("T", Some(&c), &fine(), 4, None, POLICY).unwrap();
        c = step("T", Some(&c), &fine(), 5, None, POLICY).unwrap();
        assert_eq!((c.status, c.last_transition_ms), (Status::True, 0));
    }

    #[test]
    fn unknown_only_after_n_runs_and_a_new_type_waits_for_a_real_verdict() {
        assert_eq!(step("T", None, &unknown(), 0, None, POLICY), None);
        let mut c = step("T", None, &fine(), 0, None, POLICY).unwrap();
        for i in 1..3 {
            c = step("T", Some(&c), &unknown(), i, None, POLICY).unwrap();
            assert_eq!(c.status, Status::False);
        }
        c = step("T", Some(&c), &unknown(), 3, None, POLICY).unwrap();
        assert_eq!(
            (c.status, c.reason.as_str(), c.last_transition_ms),
            (Status::Unknown, UNKNOWN_REASON, 3)
        );
    }

    #[test]
    fn until_reboot_holds_across_clean_runs_and_clears_on_a_new_boot() {
        let p = Policy {
            clear: Clear::UntilReboot,
            unknown_after: 3,
        };
        let mut c = step("ReadonlyFilesystem", None, &problem(), 0, Some("boot-a"), p).unwrap();
        for i in 1..10 {
            c = step(
                "ReadonlyFilesystem",
                Some(&c),
                &fine(),
                i,
                Some("boot-a"),
                p,
            )
            .unwrap();
            assert_eq!(c.status, Status::True);
        }
        c = step(
            "ReadonlyFilesystem",
            Some(&c),
            &fine(),
            10,
            Some("boot-b"),
            p,
        )
        .unwrap();
        assert_eq!((c.status, c.last_transition_ms), (Status::False, 10));
    }

    #[test]
    fn quiet_window_clearing() {
        let p = Policy {
            clear: Clear::QuietFor(60_000),
            unknown_after: 3,
        };
        let mut c = step("FrequentKubeletRestart", None, &problem(), 0, None, p).unwrap();
        c = step("FrequentKubeletRestart", Some(&c), &fine(), 59_999, None, p).unwrap();
        assert_eq!(c.status, Status::True);
        c = step("FrequentKubeletRestart", Some(&c), &fine(), 60_000, None, p).unwrap();
        assert_eq!(c.status, Status::False);
    }

    #[test]
    fn adoption_keeps_what_the_node_says() {
        let adopted = adopt("ZombieProcesses", "True", "UnreapedZombies", "m", 123).unwrap();
        let c = step(
            "ZombieProcesses",
            Some(&adopted),
            &problem(),
            1_000_000,
            None,
            POLICY,
        )
        .unwrap();
        assert_eq!(
            (c.status, c.last_transition_ms),
            (Status::True, 123),
            "no flap, no new clock"
        );
        assert!(adopt("X", "Maybe", "r", "m", 0).is_none());
    }

    #[test]
    fn messages_are_bounded_on_a_char_boundary() {
        let long = "é".repeat(2000);
        let m = message(&long);
        assert!(m.len() <= MAX_MESSAGE && m.ends_with("..."));
    }

    fn verdicts() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(0u8..3, 1..60)
    }

    proptest! {
        /// Over any sequence of verdicts: lastTransitionTime changes exactly when the status
        /// does; False follows True only after K clean runs in a row; the condition is
        /// never removed once it exists.
        #[test]
        fn transition_time_moves_only_with_the_status(seq in verdicts()) {
            let mut prev: Option<CondState> = None;
            let mut clean_in_a_row = 0u32;
            for (i, v) in seq.iter().enumerate() {
                let now = (i as u64 + 1) * 1000;
                let verdict = match v { 0 => problem(), 1 => fine(), _ => unknown() };
                let next = step("T", prev.as_ref(), &verdict, now, None, POLICY);
                if let Some(p) = &prev {
                    let n = next.as_ref().expect("never removed");
                    if n.status == p.status {
                        prop_assert_eq!(n.last_transition_ms, p.last_transition_ms);
                    } else {
                        prop_assert_eq!(n.last_transition_ms, now);
                    }
                    if p.status == Status::True && n.status == Status::False {
                        prop_assert!(clean_in_a_row + 1 >= 3, "cleared after {} clean runs", clean_in_a_row + 1);
                    }
                }
                clean_in_a_row = if *v == 1 { clean_in_a_row + 1 } else if *v == 0 { 0 } else { clean_in_a_row };
                prev = next.or(prev);
            }
        }
    }
}
