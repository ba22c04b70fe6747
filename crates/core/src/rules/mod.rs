//! Log rules: a regular expression, what a match means (an event or a condition, NPD's
//! vocabulary), and how to name the subjects from the match.
//!
//! Patterns use the `regex` crate, whose syntax and guarantees are RE2's (the engine behind
//! NPD's Go patterns): linear time, no backreferences, no lookaround. A pattern using those
//! is refused with the rule's name. As in Go's RE2, `\d`, `\w` and `\s` are ASCII (the
//! byte-oriented API with Unicode classes off), which also keeps the compiled automata and
//! the peak memory of the monitor small. All patterns of a set are first run together as one
//! `RegexSet` over each line; only the rules that matched are run again for their captures.
//!
//! Subjects come from named groups: `pid`, `comm`, `uid`, and a cgroup path in `memcg`,
//! `oom_memcg` or `cgroup` (parsed into container id and pod uid).

pub mod npd;
pub mod pack;

/// The id of findings from the log monitor (`node-doctor logs`).
pub const LOG_MONITOR: &str = "log-monitor";
/// Its explain page.
pub const LOG_MONITOR_DOC: &str = include_str!("log_monitor.md");

use crate::attribution::{parse_cgroup_path, short_id};
pub use crate::finding::RuleKind;
use crate::finding::{Evidence, Finding, LogMatch, Measure, Severity, Subject, SubjectKind, key};
use crate::model::log::LogRecord;
use regex::bytes::{Regex, RegexSet};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// A rule as written (default pack or an NPD config).
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    pub name: String,
    pub kind: RuleKind,
    /// NodeCondition type of a permanent rule.
    pub condition: Option<String>,
    pub reason: String,
    pub pattern: String,
    pub severity: Severity,
    /// NPD semantics: the match must end at the end of the line (NPD appends `\z`).
    pub anchored_end: bool,
    /// Counter rule: fire only when `count` matches fall within `window_ms`.
    pub count: Option<(u64, u64)>,
    /// The source label this rule reads ("kmsg", "file:/var/log/docker.log",
    /// "journal:kubelet.service"); `None`: every source (the default pack).
    pub source: Option<String>,
    pub cause: String,
    pub remedy: String,
}

impl RuleSpec {
    /// A temporary rule with default texts; builders below refine it.
    pub fn event(name: &str, reason: &str, pattern: &str, severity: Severity) -> RuleSpec {
        RuleSpec {
            name: name.into(),
            kind: RuleKind::Temporary,
            condition: None,
            reason: reason.into(),
            pattern: pattern.into(),
            severity,
            anchored_end: false,
            count: None,
            source: None,
            cause: String::new(),
            remedy: String::new(),
        }
    }

    pub fn condition(mut self, condition: &str) -> RuleSpec {
        self.kind = RuleKind::Permanent;
        self.condition = Some(condition.into());
        self
    }

    pub fn explain(mut self, cause: &str, remedy: &str) -> RuleSpec {
        self.cause = cause.into();
        self.remedy = remedy.into();
        self
    }

    pub fn counted(mut self, count: u64, window_ms: u64) -> RuleSpec {
        self.count = Some((count, window_ms));
        self
    }

    /// How many lines a multi-line pattern spans (`\n` in the pattern, as in NPD's CPER rule).
    fn lines_spanned(&self) -> usize {
        self.pattern.matches("\\n").count().saturating_add(1)
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RuleError {
    #[error(
        "rule {rule:?}: pattern {pattern:?} is not valid RE2 syntax (backreferences and lookaround are not supported): {error}"
    )]
    Pattern {
        rule: String,
        pattern: String,
        error: String,
    },
    #[error("rule set too large to compile: {0}")]
    Set(String),
}

#[derive(Debug)]
struct Rule {
    spec: RuleSpec,
    re: Regex,
    span: usize,
}

/// Compiled rules.
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<Rule>,
    /// Single-line rules together, for one pass per line.
    set: RegexSet,
    set_index: Vec<usize>,
    multi: Vec<usize>,
}

fn effective_pattern(spec: &RuleSpec) -> String {
    if spec.anchored_end {
        format!("(?:{})\\z", spec.pattern)
    } else {
        spec.pattern.clone()
    }
}

/// Size limit per compiled pattern: generous for real rules, refuses pathological ones.
const REGEX_SIZE_LIMIT: usize = 4 << 20;
/// Lazy DFA cache per pattern (the regex default is 2 MiB each): the monitor's memory is
/// mostly these caches. When one fills, the engine clears it and goes on, a little slower.
const DFA_CACHE: usize = 256 << 10;

impl RuleSet {
    pub fn compile(specs: Vec<RuleSpec>) -> Result<RuleSet, RuleError> {
        let mut rules = Vec::with_capacity(specs.len());
        for spec in specs {
            let pat = effective_pattern(&spec);
            let re = regex::bytes::RegexBuilder::new(&pat)
                .unicode(false)
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(DFA_CACHE)
                .build()
                .map_err(|e| RuleError::Pattern {
                    rule: spec.name.clone(),
                    pattern: spec.pattern.clone(),
                    error: e
                        .to_string()
                        .lines()
                        .last()
                        .unwrap_or("")
                        .trim()
                        .to_string(),
                })?;
            let span = spec.lines_spanned();
            rules.push(Rule { spec, re, span });
        }
        let set_index: Vec<usize> = rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.span == 1)
            .map(|(i, _)| i)
            .collect();
        let multi: Vec<usize> = rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.span > 1)
            .map(|(i, _)| i)
            .collect();
        let set = regex::bytes::RegexSetBuilder::new(
            rules
                .iter()
                .filter(|r| r.span == 1)
                .map(|r| effective_pattern(&r.spec)),
        )
        .unicode(false)
        .size_limit(REGEX_SIZE_LIMIT * 4)
        .dfa_size_limit(DFA_CACHE * 4)
        .build()
        .map_err(|e| RuleError::Set(e.to_string()))?;
        Ok(RuleSet {
            rules,
            set,
            set_index,
            multi,
        })
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn specs(&self) -> impl Iterator<Item = &RuleSpec> {
        self.rules.iter().map(|r| &r.spec)
    }
}

/// One rule matching one record. Only the matcher that produced it can resolve its rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    rule: usize,
    pub subject: Option<Subject>,
    pub line: String,
    pub time_ms: Option<u64>,
}

/// Runs a rule set over a stream of records and gathers the hits into findings, with bounded
/// memory: per (rule, subject) a count, first/last time, three sample lines and, for counter
/// rules, the times inside the window.
pub struct Matcher {
    set: Arc<RuleSet>,
    /// Recent lines, for multi-line rules.
    recent: VecDeque<String>,
    max_span: usize,
    groups: BTreeMap<(usize, String), Group>,
    /// Rules that apply to the source this matcher reads (by rule index).
    applies: Vec<bool>,
    pub lines: u64,
}

#[derive(Debug, Default)]
struct Group {
    subject: Option<Subject>,
    count: u64,
    first_ms: Option<u64>,
    last_ms: Option<u64>,
    /// Distinct pids seen (a crash loop under one command), and how many more.
    pids: Vec<i32>,
    more_pids: u64,
    /// The first matching line, and the latest ones (the newest say what is happening now).
    first: Option<String>,
    latest: VecDeque<String>,
    /// Counter rules: match times within the window (bounded by the count needed).
    window: VecDeque<u64>,
    fired: bool,
}

/// Distinct pids listed per group.
const PIDS_LISTED: usize = 10;
/// Latest lines kept per group, besides the first.
const LATEST: usize = 2;
/// Sample lines in evidence are cut to this many characters.
const SAMPLE_CHARS: usize = 400;
/// Most distinct (rule, subject) groups kept; past it, hits fold into a subject-less group.
const MAX_GROUPS: usize = 256;

impl Matcher {
    /// A matcher for every rule, whatever its source.
    pub fn new(set: &Arc<RuleSet>) -> Matcher {
        Self::for_source(set, None)
    }

    /// A matcher for the lines of `source`: rules bound to another source are skipped.
    pub fn for_source(set: &Arc<RuleSet>, source: Option<&str>) -> Matcher {
        let applies = set
            .rules
            .iter()
            .map(|r| match (&r.spec.source, source) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            })
            .collect();
        let max_span = set
            .multi
            .iter()
            .filter_map(|&i| set.rules.get(i).map(|r| r.span))
            .max()
            .unwrap_or(1);
        Matcher {
            set: set.clone(),
            recent: VecDeque::new(),
            max_span,
            groups: BTreeMap::new(),
            applies,
            lines: 0,
        }
    }

    /// Feeds one record; returns the hits it produced.
    pub fn feed(&mut self, r: &LogRecord) -> Vec<Hit> {
        self.lines = self.lines.saturating_add(1);
        let mut hits = Vec::new();
        let text = r.text.as_str();
        if !self.set.set_index.is_empty() {
            for m in self.set.set.matches(text.as_bytes()).iter() {
                let Some(&i) = self.set.set_index.get(m) else {
                    continue;
                };
                if !self.applies(i) {
                    continue;
                }
                if let Some(h) = self.capture(i, text, text, r.time_ms) {
                    hits.push(h);
                }
            }
        }
        if !self.set.multi.is_empty() {
            self.recent.push_back(text.to_string());
            if self.recent.len() > self.max_span {
                self.recent.pop_front();
            }
            for &i in &self.set.multi {
                if !self.applies(i) {
                    continue;
                }
                let Some(span) = self.set.rules.get(i).map(|r| r.span) else {
                    continue;
                };
                let Some(skip) = self.recent.len().checked_sub(span) else {
                    continue;
                };
                let joined = self
                    .recent
                    .iter()
                    .skip(skip)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n");
                if let Some(h) = self.capture(i, &joined, text, r.time_ms) {
                    hits.push(h);
                }
            }
        }
        for h in &hits {
            self.record(h);
        }
        hits
    }

    fn applies(&self, rule: usize) -> bool {
        self.applies.get(rule).copied().unwrap_or(false)
    }

    fn capture(&self, i: usize, haystack: &str, line: &str, time_ms: Option<u64>) -> Option<Hit> {
        let rule = self.set.rules.get(i)?;
        let caps = rule.re.captures(haystack.as_bytes())?;
        Some(Hit {
            rule: i,
            subject: subject_of(&caps),
            line: line.to_string(),
            time_ms,
        })
    }

    fn record(&mut self, h: &Hit) {
        let key = h.subject.as_ref().map_or(String::new(), subject_key);
        let key = if self.groups.len() >= MAX_GROUPS
            && !self.groups.contains_key(&(h.rule, key.clone()))
        {
            String::new()
        } else {
            key
        };
        let g = self.groups.entry((h.rule, key.clone())).or_default();
        if !key.is_empty() {
            // The latest hit's subject: its pid is the one most likely still alive.
            g.subject = h.subject.clone();
            if let Some(pid) = h.subject.as_ref().and_then(|s| s.pid)
                && !g.pids.contains(&pid)
            {
                if g.pids.len() < PIDS_LISTED {
                    g.pids.push(pid);
                } else {
                    g.more_pids = g.more_pids.saturating_add(1);
                }
            }
        }
        g.count = g.count.saturating_add(1);
        if let Some(t) = h.time_ms {
            g.first_ms = Some(g.first_ms.map_or(t, |f| f.min(t)));
            g.last_ms = Some(g.last_ms.map_or(t, |l| l.max(t)));
        }
        let line: String = h.line.chars().take(SAMPLE_CHARS).collect();
        if g.first.is_none() {
            g.first = Some(line);
        } else {
            g.latest.push_back(line);
            if g.latest.len() > LATEST {
                g.latest.pop_front();
            }
        }
        if let Some((need, window_ms)) = self.set.rules.get(h.rule).and_then(|r| r.spec.count) {
            // Without a time, each match counts as "now".
            let t = h.time_ms.unwrap_or(g.count);
            g.window.push_back(t);
            while g
                .window
                .front()
                .is_some_and(|&f| t.saturating_sub(f) > window_ms)
            {
                g.window.pop_front();
            }
            if g.window.len() as u64 >= need {
                g.fired = true;
            }
            while g.window.len() as u64 > need {
                g.window.pop_front();
            }
        }
    }

    /// The finding of the group `hit` fell into, as it stands now (for `--follow`); `None`
    /// for a counter rule that has not fired.
    pub fn finding_for(&self, hit: &Hit, check: &str, source: &str) -> Option<Finding> {
        let key = hit.subject.as_ref().map_or(String::new(), subject_key);
        let (key, g) = match self.groups.get_key_value(&(hit.rule, key)) {
            Some(((_, k), g)) => (k.as_str(), g),
            None => ("", self.groups.get(&(hit.rule, String::new()))?),
        };
        let spec = &self.set.rules.get(hit.rule)?.spec;
        (spec.count.is_none() || g.fired).then(|| finding(check, source, spec, key, g))
    }

    /// The findings so far: one per (rule, subject), counter rules only when they fired.
    pub fn findings(&self, check: &str, source: &str) -> Vec<Finding> {
        let mut out = Vec::new();
        for ((i, k), g) in &self.groups {
            let Some(rule) = self.set.rules.get(*i) else {
                continue;
            };
            let spec = &rule.spec;
            if spec.count.is_some() && !g.fired {
                continue;
            }
            out.push(finding(check, source, spec, k, g));
        }
        out.sort_by(|a, b| {
            b.severity.cmp(&a.severity).then(
                b.log
                    .as_ref()
                    .map(|l| l.count)
                    .cmp(&a.log.as_ref().map(|l| l.count)),
            )
        });
        out
    }
}

/// Groups by who the hit is about: container, else command (a crash loop is one finding,
/// not one per pid), else pid, else cgroup.
fn subject_key(s: &Subject) -> String {
    if let Some(c) = &s.container_id {
        format!("c:{c}")
    } else if let Some(c) = &s.comm {
        format!("n:{c}")
    } else if let Some(p) = s.pid {
        format!("p:{p}")
    } else if let Some(path) = &s.path {
        format!("g:{path}")
    } else {
        format!("u:{:?}", s.uid)
    }
}

fn subject_of(caps: &regex::bytes::Captures) -> Option<Subject> {
    let get = |n: &str| {
        caps.name(n)
            .and_then(|m| std::str::from_utf8(m.as_bytes()).ok())
    };
    let pid = get("pid").and_then(|p| p.parse().ok());
    let uid = get("uid").and_then(|u| u.parse().ok());
    let comm = get("comm").map(str::to_string);
    let cgroup = get("memcg").or(get("cgroup")).or(get("oom_memcg"));
    if pid.is_none() && uid.is_none() && comm.is_none() && cgroup.is_none() {
        return None;
    }
    let owner = cgroup.map(parse_cgroup_path).unwrap_or_default();
    let kind = if owner.container_id.is_some() {
        SubjectKind::Container
    } else if pid.is_some() || comm.is_some() {
        SubjectKind::Process
    } else if owner.pod_uid.is_some() {
        SubjectKind::Pod
    } else {
        SubjectKind::Cgroup
    };
    Some(Subject {
        pid,
        comm,
        uid,
        container_id: owner.container_id,
        pod: owner.pod_uid,
        path: cgroup.map(str::to_string),
        ..Subject::new(kind)
    })
}

fn who(s: &Subject) -> String {
    let mut parts = Vec::new();
    if let (Some(p), Some(c)) = (s.pid, &s.comm) {
        parts.push(format!("{p} ({c})"));
    } else if let Some(p) = s.pid {
        parts.push(p.to_string());
    } else if let Some(c) = &s.comm {
        parts.push(c.clone());
    }
    if let Some(c) = &s.container_id {
        parts.push(format!("container {}", short_id(c)));
    }
    if let Some(p) = &s.pod {
        parts.push(format!("pod {p}"));
    }
    if s.container_id.is_none()
        && s.pod.is_none()
        && let Some(path) = &s.path
    {
        parts.push(format!("cgroup {path}"));
    }
    parts.join(", ")
}

fn finding(check: &str, source: &str, spec: &RuleSpec, group_key: &str, g: &Group) -> Finding {
    let mut summary = format!("{}: {} line", spec.reason, g.count);
    if g.count != 1 {
        summary.push('s');
    }
    if let Some(s) = &g.subject {
        summary.push_str(&format!(" about {}", who(s)));
        if g.pids.len() > 1 {
            let list: Vec<String> = g.pids.iter().map(|p| p.to_string()).collect();
            summary.push_str(&format!(" (pids {}", list.join(", ")));
            if g.more_pids > 0 {
                summary.push_str(&format!(" and {} more", g.more_pids));
            }
            summary.push(')');
        }
    }
    if let Some(c) = &spec.condition {
        summary.push_str(&format!(" (condition {c})"));
    }
    if let Some((n, w)) = spec.count {
        summary.push_str(&format!(
            "; at least {n} within {}",
            humantime::format_duration(std::time::Duration::from_millis(w))
        ));
    }
    let mut evidence: Vec<Evidence> = g
        .first
        .iter()
        .chain(g.latest.iter())
        .map(|l| Evidence::new(source_path(source), l.clone()))
        .collect();
    evidence.push(
        Evidence::new(
            format!("rule {}", spec.name),
            format!("{} matching lines", g.count),
        )
        .with_threshold(match spec.count {
            Some((n, w)) => format!(
                "{n} within {}",
                humantime::format_duration(std::time::Duration::from_millis(w))
            ),
            None => format!("pattern {}", spec.pattern),
        }),
    );
    let mut measures = vec![Measure::count("lines", g.count).of_opt(spec.count.map(|(n, _)| n))];
    if let Some((_, w)) = spec.count {
        measures.push(Measure::new(
            "window",
            w as f64 / 1000.0,
            crate::finding::Unit::Seconds,
        ));
    }
    if !g.pids.is_empty() {
        measures.push(Measure::count(
            "pids",
            (g.pids.len() as u64).saturating_add(g.more_pids),
        ));
    }
    Finding {
        check: check.to_string(),
        key: key::log(check, &spec.name, group_key),
        measures,
        severity: spec.severity,
        summary,
        cause: if spec.cause.is_empty() {
            format!(
                "A log line matched the rule {:?} ({}).",
                spec.name, spec.reason
            )
        } else {
            spec.cause.clone()
        },
        remedy: if spec.remedy.is_empty() {
            "Read the lines in the evidence and the surrounding log for the cause.".into()
        } else {
            spec.remedy.clone()
        },
        evidence,
        subjects: g.subject.clone().into_iter().collect(),
        log: Some(LogMatch {
            rule: spec.name.clone(),
            kind: spec.kind,
            condition: spec.condition.clone(),
            reason: spec.reason.clone(),
            source: source.to_string(),
            count: g.count,
            first_ms: g.first_ms,
            last_ms: g.last_ms,
        }),
        caused_by: Vec::new(),
        explains: Vec::new(),
    }
}

/// "kmsg" → "/dev/kmsg", "file:/var/log/x" → "/var/log/x", "journal:u" → "journal (u)".
fn source_path(source: &str) -> String {
    match source.split_once(':') {
        None if source == "kmsg" => "/dev/kmsg".into(),
        Some(("file", p)) => p.to_string(),
        Some(("journal", u)) => format!("journal ({u})"),
        _ => source.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(specs: Vec<RuleSpec>) -> Arc<RuleSet> {
        Arc::new(RuleSet::compile(specs).unwrap())
    }

    #[test]
    fn re2_refuses_backreferences_and_lookaround_naming_the_rule() {
        for pat in [r"(a)\1", r"foo(?=bar)", r"(?<!x)y"] {
            let err = RuleSet::compile(vec![RuleSpec::event(
                "bad-rule",
                "Bad",
                pat,
                Severity::Warning,
            )])
            .unwrap_err();
            assert!(
                err.to_string().starts_with("rule \"bad-rule\": pattern"),
                "{err}"
            );
        }
    }

    #[test]
    fn named_groups_become_subjects() {
        let s = set(vec![RuleSpec::event(
            "memcg-oom",
            "OOMKilling",
            r"task_memcg=(?P<memcg>\S+?),task=(?P<comm>[^,]+),pid=(?P<pid>\d+),uid=(?P<uid>\d+)",
            Severity::Warning,
        )]);
        let mut m = Matcher::new(&s);
        let line = "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/kubepods/burstable/pod5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c,task_memcg=/kubepods/burstable/pod5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c/3f1c9a27d0b4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e,task=java,pid=4242,uid=1000";
        let hits = m.feed(&LogRecord::text(line));
        let s = hits[0].subject.as_ref().unwrap();
        assert_eq!(s.kind, SubjectKind::Container);
        assert_eq!(
            (s.pid, s.uid, s.comm.as_deref()),
            (Some(4242), Some(1000), Some("java"))
        );
        assert_eq!(
            s.pod.as_deref(),
            Some("5b3c0e2a-7f1d-4c1e-9a8b-2d3e4f5a6b7c")
        );
        assert!(s.container_id.as_deref().unwrap().starts_with("3f1c9a27"));
    }

    #[test]
    fn anchored_end_is_npd_semantics() {
        let mut spec = RuleSpec::event(
            "r",
            "R",
            "blocked for more than \\w+ seconds\\.",
            Severity::Warning,
        );
        spec.anchored_end = true;
        let s = set(vec![spec]);
        let mut m = Matcher::new(&s);
        assert_eq!(
            m.feed(&LogRecord::text(
                "task x:1 blocked for more than 120 seconds."
            ))
            .len(),
            1
        );
        assert_eq!(
            m.feed(&LogRecord::text(
                "task x:1 blocked for more than 120 seconds. tail"
            ))
            .len(),
            0
        );
    }

    #[test]
    fn a_crash_loop_is_one_finding_listing_its_pids() {
        let s = set(vec![RuleSpec::event(
            "segv",
            "Segfault",
            r"(?P<comm>[^\s\[]+)\[(?P<pid>\d+)\]: segfault at",
            Severity::Info,
        )]);
        let mut m = Matcher::new(&s);
        for pid in [10, 11, 12] {
            m.feed(&LogRecord::text(format!("crashy[{pid}]: segfault at 0")));
        }
        m.feed(&LogRecord::text("other[13]: segfault at 0"));
        let f = m.findings("log-monitor", "kmsg");
        assert_eq!(f.len(), 2);
        let crashy = f.iter().find(|f| f.summary.contains("crashy")).unwrap();
        assert!(
            crashy
                .summary
                .contains("3 lines about 12 (crashy) (pids 10, 11, 12)"),
            "{}",
            crashy.summary
        );
        assert_eq!(crashy.subjects[0].pid, Some(12), "the latest");
    }

    #[test]
    fn multi_line_patterns_match_consecutive_lines() {
        let s = set(vec![RuleSpec::event(
            "cper",
            "CperHardwareErrorFatal",
            r"Hardware error from APEI Generic Hardware Error Source: \d+\n.*event severity: fatal",
            Severity::Critical,
        )]);
        let mut m = Matcher::new(&s);
        assert!(
            m.feed(&LogRecord::text(
                "{1}[Hardware Error]: Hardware error from APEI Generic Hardware Error Source: 0"
            ))
            .is_empty()
        );
        assert_eq!(
            m.feed(&LogRecord::text(
                "{1}[Hardware Error]: event severity: fatal"
            ))
            .len(),
            1
        );
    }

    #[test]
    fn rules_bound_to_a_source_skip_the_others() {
        let mut bound = RuleSpec::event("d", "DockerThing", "thing", Severity::Warning);
        bound.source = Some("journal:docker.service".into());
        let s = set(vec![
            bound,
            RuleSpec::event("any", "AnyThing", "thing", Severity::Warning),
        ]);
        let mut kmsg = Matcher::for_source(&s, Some("kmsg"));
        assert_eq!(kmsg.feed(&LogRecord::text("a thing")).len(), 1);
        let mut docker = Matcher::for_source(&s, Some("journal:docker.service"));
        assert_eq!(docker.feed(&LogRecord::text("a thing")).len(), 2);
    }

    #[test]
    fn counter_rules_fire_only_at_n_within_the_window() {
        let s = set(vec![
            RuleSpec::event(
                "restarts",
                "FrequentKubeletRestart",
                "Started kubelet",
                Severity::Warning,
            )
            .counted(3, 60_000),
        ]);
        let mut m = Matcher::new(&s);
        for t in [0u64, 100_000, 200_000] {
            let mut r = LogRecord::text("Started kubelet.service");
            r.time_ms = Some(t);
            m.feed(&r);
        }
        assert!(
            m.findings("log-monitor", "journal:kubelet.service")
                .is_empty(),
            "spread out: no"
        );
        for t in [300_000u64, 310_000, 320_000] {
            let mut r = LogRecord::text("Started kubelet.service");
            r.time_ms = Some(t);
            m.feed(&r);
        }
        let f = m.findings("log-monitor", "journal:kubelet.service");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].log.as_ref().unwrap().count, 6);
    }
}
