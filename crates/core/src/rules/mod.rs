//! Log rules: a regular expression, what a match means (an event or a condition, NPD's
//! vocabulary), and how to name the subjects from the match.
//!
//! Patterns use the `regex` crate, whose syntax and guarantees are RE2's (the engine behind
//! NPD's Go patterns): linear time, no backreferences, no lookaround. A pattern using those
//! is refused with the rule's name. As in Go's RE2, `\d`, `\w` and `\s` are ASCII (the
//! byte-oriented API with Unicode classes off), which also keeps the compiled automata and
//! the peak memory of the monitor small.
//!
//! Matching searches a buffer, not each line, as ripgrep does ([`prefilter`]): a filter built
//! from every rule's pattern (their required literals in Teddy searchers of 32 literals, or
//! the union of their relaxed patterns in one lazy DFA) finds the lines that may match; only those are decoded, and each is run
//! through the rules whose literals it holds (an overlapping Aho-Corasick scan of the line).
//! A rule's regex is compiled the first time a line needs it: most rules never see a
//! candidate, and a compiled regex is most of a rule's memory. A rule sees the line's *message*: surrounding whitespace trimmed (as NPD's kmsg
//! watcher does, `strings.TrimSpace`), and in log files the syslog/kernel prefix stripped
//! ([`message`]).
//!
//! Subjects come from named groups: `pid`, `comm`, `uid`; a cgroup path in `memcg`,
//! `oom_memcg` or `cgroup` (parsed into container id and pod uid); `container_id` (a
//! `containerd://` scheme is dropped), `container` (the container's name), `pod` (kubelet's
//! `namespace/name`, or the old `name_namespace(uid)`), `pod_uid`, `namespace`, `pod_name`,
//! `device`, `unit`, `image`, `path`. Other named groups whose value is a number or a Go
//! duration (`3m0.5s`) become measures of the finding.

pub mod message;
pub mod npd;
pub mod pack;
mod prefilter;

/// The id of findings from the log monitor (`node-doctor logs`).
pub const LOG_MONITOR: &str = "log-monitor";
/// Its explain page.
pub const LOG_MONITOR_DOC: &str = include_str!("log_monitor.md");

use crate::attribution::{parse_cgroup_path, short_id};
pub use crate::finding::RuleKind;
use crate::finding::{
    Evidence, Finding, LogMatch, Measure, Severity, Subject, SubjectKind, Unit, key,
};
use crate::model::log::LogRecord;
use regex_automata::meta;
use regex_syntax::hir::Hir;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// How a rule's hits are grouped into findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Grouping {
    /// By whom the line names: container, else command (a crash loop is one finding, not one
    /// per pid), pid, pod, unit, device, image, cgroup.
    #[default]
    Subject,
    /// By pod (else container, else cgroup), listing the cgroups the lines name: a pod's
    /// fork storm is one finding however many of its cgroups the kernel reports.
    Pod,
    /// By image, whichever line (kubelet's, the runtime's) reports the pull; the subject
    /// gathers what each line names (the pod, the container).
    Image,
}

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
    /// NPD `lookback`: only lines logged at most this long before the monitor started (or
    /// after) count; lines without a time always do.
    pub lookback_ms: Option<u64>,
    pub grouping: Grouping,
    /// Rules that take a line this one also matches (a soft lockup's `BUG:` is not also a
    /// generic kernel bug).
    pub unless: Vec<String>,
    /// One event the kernel logs over several lines (an OOM kill: the `oom-kill:` summary,
    /// then `Killed process N`): hits of rules naming the same event that name the same pid,
    /// or follow a pid-less line of it closely, are one finding.
    pub event: Option<String>,
    /// Name the process that logged the line (syslog tag and pid, journal `_COMM`/`_PID`)
    /// when the pattern names none: daemons' own complaints ("failed to create new OS
    /// thread").
    pub logger_subject: bool,
    /// Name the unit from the journal's `UNIT` field when the pattern names none (systemd's
    /// job messages carry the unit's description, the field its name).
    pub unit_subject: bool,
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
            lookback_ms: None,
            grouping: Grouping::Subject,
            unless: Vec::new(),
            event: None,
            logger_subject: false,
            unit_subject: false,
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

    pub fn grouped(mut self, grouping: Grouping) -> RuleSpec {
        self.grouping = grouping;
        self
    }

    pub fn unless(mut self, rules: &[&str]) -> RuleSpec {
        self.unless = rules.iter().map(|r| r.to_string()).collect();
        self
    }

    pub fn same_event(mut self, event: &str) -> RuleSpec {
        self.event = Some(event.into());
        self
    }

    pub fn logger_subject(mut self) -> RuleSpec {
        self.logger_subject = true;
        self
    }

    pub fn unit_subject(mut self) -> RuleSpec {
        self.unit_subject = true;
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

/// What finds the lines a rule may match (see [`prefilter`]).
#[derive(Debug, Clone)]
struct Filter {
    hir: Hir,
    /// Required literals, when usable (long enough, within one line).
    literals: Option<Vec<Vec<u8>>>,
}

#[derive(Debug)]
struct Rule {
    spec: RuleSpec,
    /// The pattern as compiled (NPD's end anchor added).
    pattern: String,
    /// Compiled on first use (see [`Rule::regex`]).
    re: std::sync::OnceLock<Option<meta::Regex>>,
    span: usize,
    /// Index of the first rule with this name: rules sharing a name (NPD's two KernelOops
    /// patterns, one config loaded twice) group as one.
    name_id: usize,
    /// Rules whose match on the same line takes it from this one.
    unless: Vec<usize>,
    /// Index of the first rule of this rule's event, if any.
    event_id: Option<usize>,
    /// `None`: no filter could be derived; every line is run through the rule.
    filter: Option<Filter>,
    /// Named groups that are not subject fields: candidates for measures.
    measure_groups: Vec<String>,
    /// Whether the pattern has named groups at all (without, a match needs no captures:
    /// NPD's `(.+)` groups would cost a backtracking pass per line for nothing).
    named: bool,
}

impl Rule {
    /// The rule's regex, compiled the first time a candidate line needs it. The pattern was
    /// validated when the set was compiled, so this does not fail in practice; if it ever
    /// did, the rule would match nothing rather than stop the monitor.
    ///
    /// No one-pass DFA: built for every pattern with groups (most of the pack), they held
    /// 750 KiB of the pack's 1.8 MiB of compiled regexes (measured); the groups of a
    /// candidate line's match are found as well by the bounded backtracker.
    fn regex(&self) -> Option<&meta::Regex> {
        self.re
            .get_or_init(|| {
                meta::Builder::new()
                    .configure(
                        meta::Config::new()
                            .utf8_empty(false)
                            .nfa_size_limit(Some(REGEX_SIZE_LIMIT))
                            .hybrid_cache_capacity(DFA_CACHE)
                            .onepass(false),
                    )
                    .syntax(
                        regex_automata::util::syntax::Config::new()
                            .unicode(false)
                            .utf8(false),
                    )
                    .build(&self.pattern)
                    .ok()
            })
            .as_ref()
    }
}

/// A rule's match and its groups, over the text it matched.
struct Groups<'h> {
    caps: regex_automata::util::captures::Captures,
    hay: &'h [u8],
}

impl<'h> Groups<'h> {
    /// Whether `re` matches `hay`, and its groups if so.
    fn of(re: &meta::Regex, hay: &'h [u8]) -> Option<Groups<'h>> {
        let mut caps = re.create_captures();
        re.captures(hay, &mut caps);
        caps.is_match().then_some(Groups { caps, hay })
    }

    /// The text of the group named `n`, when it took part in the match.
    fn text(&self, n: &str) -> Option<&'h [u8]> {
        self.caps
            .get_group_by_name(n)
            .and_then(|span| self.hay.get(span.range()))
    }
}

/// Compiled rules.
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<Rule>,
    multi: Vec<usize>,
    /// The prefilter of a matcher to which every rule applies, built once.
    all: std::sync::OnceLock<Search>,
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
/// Lazy DFA cache per pattern (the regex default is 2 MiB each): the rules run on candidate
/// lines only, so small caches serve them. When one fills, the engine clears it and goes on.
const DFA_CACHE: usize = 256 << 10;
/// The prefilter's lazy DFA cache (a union of relaxed patterns runs over every byte).
const FILTER_CACHE: usize = 2 << 20;

/// Named groups that make subjects (the rest may make measures).
const SUBJECT_GROUPS: &[&str] = &[
    "pid",
    "uid",
    "comm",
    "memcg",
    "cgroup",
    "oom_memcg",
    "container_id",
    "container",
    "pod",
    "pod_uid",
    "namespace",
    "pod_name",
    "device",
    "unit",
    "image",
    "path",
];

fn filter_of(parsed: Hir, span: usize) -> Option<Filter> {
    let relaxed = prefilter::relax(parsed);
    let hir = if span > 1 {
        prefilter::last_line(&relaxed, span)?
    } else {
        relaxed
    };
    let literals = prefilter::required(&hir).filter(|set| {
        prefilter::shortest(set) >= prefilter::MIN_LITERAL
            && set.iter().all(|l| !l.contains(&b'\n'))
    });
    Some(Filter { hir, literals })
}

impl RuleSet {
    pub fn compile(specs: Vec<RuleSpec>) -> Result<RuleSet, RuleError> {
        let mut rules: Vec<Rule> = Vec::with_capacity(specs.len());
        for spec in specs {
            let pat = effective_pattern(&spec);
            let refuse = |error: String| RuleError::Pattern {
                rule: spec.name.clone(),
                pattern: spec.pattern.clone(),
                error: error.lines().last().unwrap_or("").trim().to_string(),
            };
            // Parsing checks the syntax (RE2's: no backreferences, no lookaround). Only a
            // counted repetition (`x{1000}`) or a very long pattern can make the compiled
            // automaton exceed its size limit: those are compiled now, to be refused now.
            let parsed = prefilter::parse(&pat).map_err(&refuse)?;
            if pat.contains('{') || pat.len() > 4096 {
                regex_automata::nfa::thompson::NFA::compiler()
                    .configure(
                        regex_automata::nfa::thompson::Config::new()
                            .nfa_size_limit(Some(REGEX_SIZE_LIMIT))
                            .which_captures(regex_automata::nfa::thompson::WhichCaptures::None),
                    )
                    .build_from_hir(&parsed)
                    .map_err(|e| refuse(e.to_string()))?;
            }
            let span = spec.lines_spanned();
            let name_id = rules
                .iter()
                .position(|r| r.spec.name == spec.name)
                .unwrap_or(rules.len());
            let event_id = spec.event.as_ref().map(|e| {
                rules
                    .iter()
                    .position(|r| r.spec.event.as_ref() == Some(e))
                    .unwrap_or(rules.len())
            });
            let mut measure_groups = Vec::new();
            prefilter::capture_names(&parsed, &mut measure_groups);
            let named = !measure_groups.is_empty();
            measure_groups.retain(|n| !SUBJECT_GROUPS.contains(&n.as_str()));
            let filter = filter_of(parsed, span);
            rules.push(Rule {
                spec,
                pattern: pat,
                re: std::sync::OnceLock::new(),
                span,
                name_id,
                unless: Vec::new(),
                event_id,
                filter,
                measure_groups,
                named,
            });
        }
        let unless: Vec<Vec<usize>> = rules
            .iter()
            .map(|r| {
                rules
                    .iter()
                    .enumerate()
                    .filter(|(_, o)| r.spec.unless.contains(&o.spec.name))
                    .map(|(i, _)| i)
                    .collect()
            })
            .collect();
        for (r, u) in rules.iter_mut().zip(unless) {
            r.unless = u;
        }
        let multi: Vec<usize> = rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.span > 1)
            .map(|(i, _)| i)
            .collect();
        Ok(RuleSet {
            rules,
            multi,
            all: std::sync::OnceLock::new(),
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

    /// How the lines of a source read by the rules in `applies` are searched.
    fn search(&self, applies: &[bool]) -> Search {
        let every = applies.iter().all(|a| *a);
        if every && let Some(s) = self.all.get() {
            return s.clone();
        }
        let filters: Vec<(usize, Option<&Filter>)> = self
            .rules
            .iter()
            .zip(applies)
            .enumerate()
            .filter(|(_, (_, a))| **a)
            .map(|(i, (r, _))| (i, r.filter.as_ref()))
            .collect();
        let s = Search::build(&filters);
        if every {
            let _ = self.all.set(s.clone());
        }
        s
    }
}

/// How a matcher finds the lines that may match, and which rules to run on one.
#[derive(Debug, Clone)]
struct Search {
    find: Find,
    /// The required literals `find` searches for, before they are cut to their windows:
    /// kept to choose the windows again by the text ([`Search::tuned`]). Empty unless
    /// `find` searches literals.
    literals: Vec<Vec<u8>>,
    /// Every literal of every rule that has some, for an overlapping scan of a candidate
    /// line: the rules whose literal it holds are the ones to run.
    scan: Option<aho_corasick::AhoCorasick>,
    /// The rule of each literal of `scan`.
    scan_rules: Vec<usize>,
    /// Rules without literals: run on every candidate line.
    always: Vec<usize>,
}

#[derive(Debug, Clone)]
enum Find {
    /// No rule applies.
    Nothing,
    /// A rule without a filter applies: every line is a candidate.
    Everything,
    /// Every rule has literals: a multi-literal search over the buffer, with the shortest
    /// literals (one contained in another is dropped): Teddy's SIMD search (groups of
    /// [`TEDDY_GROUP`] literals, where the CPU has SSSE3), else an Aho-Corasick automaton.
    Teddy(Vec<TeddyGroup>),
    Literals(aho_corasick::AhoCorasick),
    /// The union of the relaxed patterns, in one lazy DFA.
    Union(meta::Regex),
}

impl Search {
    fn build(filters: &[(usize, Option<&Filter>)]) -> Search {
        let mut lits: Vec<Vec<u8>> = Vec::new();
        let mut scan_rules = Vec::new();
        let mut always = Vec::new();
        for (i, f) in filters {
            match f.and_then(|f| f.literals.as_ref()) {
                Some(set) => {
                    for l in set {
                        lits.push(l.clone());
                        scan_rules.push(*i);
                    }
                }
                None => always.push(*i),
            }
        }
        let scan = if lits.is_empty() {
            None
        } else {
            aho_corasick::AhoCorasick::builder()
                .match_kind(aho_corasick::MatchKind::Standard)
                .build(&lits)
                .ok()
        };
        if scan.is_none() {
            // No scan (cannot happen with literals, short of a build failure): every rule
            // runs on every candidate.
            always = filters.iter().map(|(i, _)| *i).collect();
            scan_rules.clear();
        }
        let find = if filters.is_empty() {
            Find::Nothing
        } else if filters.iter().any(|(_, f)| f.is_none()) {
            Find::Everything
        } else if always.is_empty() {
            literal_find(&lits, &[])
        } else {
            let hir = Hir::alternation(
                filters
                    .iter()
                    .filter_map(|(_, f)| f.map(|f| f.hir.clone()))
                    .collect(),
            );
            meta::Builder::new()
                .configure(
                    meta::Config::new()
                        .utf8_empty(false)
                        .which_captures(regex_automata::nfa::thompson::WhichCaptures::Implicit)
                        .hybrid_cache_capacity(FILTER_CACHE)
                        .nfa_size_limit(Some(REGEX_SIZE_LIMIT * 4)),
                )
                .build_from_hir(&hir)
                // Too large to build: correct, only slower.
                .map_or(Find::Everything, Find::Union)
        };
        let literals = if matches!(find, Find::Teddy(_) | Find::Literals(_)) {
            lits
        } else {
            Vec::new()
        };
        Search {
            find,
            literals,
            scan,
            scan_rules,
            always,
        }
    }

    /// This search with its literals' windows chosen by `sample`, a stretch of the text it
    /// is about to search ([`prefilter::window_in`]); None when it searches no literals.
    fn tuned(&self, sample: &[u8]) -> Option<Search> {
        if self.literals.is_empty() || sample.is_empty() {
            return None;
        }
        Some(Search {
            find: literal_find(&self.literals, sample),
            literals: self.literals.clone(),
            scan: self.scan.clone(),
            scan_rules: self.scan_rules.clone(),
            always: self.always.clone(),
        })
    }
}

/// A multi-literal search for the lines holding one of `lits` (every rule's required
/// literals), each cut to the window [`prefilter::window_in`] picks by `sample` (by byte
/// ranks when it is empty).
fn literal_find(lits: &[Vec<u8>], sample: &[u8]) -> Find {
    let seen = prefilter::Seen::of(lits, sample);
    // Dedup, and drop literals that contain another one: finding the shorter finds
    // every line the longer one would.
    let mut lits: Vec<Vec<u8>> = lits
        .iter()
        .map(|l| prefilter::window_in(l, &seen))
        .collect();
    lits.sort_by_key(Vec::len);
    lits.dedup();
    let mut kept: Vec<Vec<u8>> = Vec::new();
    for l in lits {
        if !kept.iter().any(|k| memchr::memmem::find(&l, k).is_some()) {
            kept.push(l);
        }
    }
    // What Teddy searches for: the literals themselves, or their rarest 3 bytes (the rest
    // checked where those occur) when the sample says that pays ([`prefilter::heads`]).
    // Literals sharing a head are checked in turn where it occurs.
    let offsets = prefilter::heads(&kept, &seen);
    let mut heads: Vec<(Vec<u8>, Vec<Located>)> = Vec::new();
    for (i, l) in kept.iter().enumerate() {
        let (o, h) = match offsets.as_ref().and_then(|o| o.get(i)) {
            Some(&o) => (o, l.get(o..o.saturating_add(prefilter::HEAD)).unwrap_or(l)),
            None => (0, l.as_slice()),
        };
        match heads.iter_mut().find(|(x, _)| x.as_slice() == h) {
            Some((_, fulls)) => fulls.push((o, l.clone())),
            None => heads.push((h.to_vec(), vec![(o, l.clone())])),
        }
    }
    // Teddy slows as it holds more literals (its buckets fill, verification grows):
    // several searchers of 32 literals each over the same buffer beat one of 100
    // (measured: 21 ms against 43 ms over 23 MB).
    let teddy: Option<Vec<TeddyGroup>> = heads
        .chunks(TEDDY_GROUP)
        .map(|group| {
            let searcher = aho_corasick::packed::Config::new()
                .match_kind(aho_corasick::packed::MatchKind::LeftmostFirst)
                .only_teddy(true)
                .builder()
                .extend(group.iter().map(|(h, _)| h))
                .build()?;
            Some(TeddyGroup {
                searcher,
                fulls: group.iter().map(|(_, f)| f.clone()).collect(),
                by_heads: offsets.is_some(),
            })
        })
        .collect();
    match teddy {
        Some(t) => Find::Teddy(t),
        None => aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostFirst)
            .build(&kept)
            .map_or(Find::Everything, Find::Literals),
    }
}

/// Literals per Teddy searcher.
const TEDDY_GROUP: usize = 32;

/// One Teddy searcher, over literals or the heads of literals ([`prefilter::heads`]), and
/// per pattern the literals it may start: (where the head is in it, the literal).
#[derive(Debug, Clone)]
struct TeddyGroup {
    searcher: aho_corasick::packed::Searcher,
    fulls: Vec<Vec<Located>>,
    /// Whether its patterns are heads (else each is its whole literal: a match needs no
    /// check).
    by_heads: bool,
}

/// A literal and where in it the head Teddy searches for is.
type Located = (usize, Vec<u8>);

impl TeddyGroup {
    /// A position at or after `from` (a line start) inside the first line holding one of
    /// its literals: where the literal whose head comes first starts (no literal holds a
    /// newline, so it is that line's), or `from` when that literal starts before it. A head
    /// found without the rest of its literal is passed over.
    fn find(&self, hay: &[u8], mut from: usize) -> Option<usize> {
        loop {
            let m = self
                .searcher
                .find_in(hay, aho_corasick::Span::from(from..hay.len()))?;
            let at = m.start();
            if !self.by_heads {
                return Some(at);
            }
            if let Some(s) = self.fulls.get(m.pattern().as_usize()).and_then(|f| {
                f.iter().find_map(|(o, l)| {
                    let s = at.checked_sub(*o)?;
                    hay.get(s..)?.starts_with(l).then_some(s)
                })
            }) {
                return Some(s.max(from));
            }
            from = at.saturating_add(1);
        }
    }
}

/// The searcher of one matcher, with its own cache.
#[derive(Debug)]
struct Searcher {
    search: Search,
    cache: Option<meta::Cache>,
    /// Per Teddy group, where its next match in the current buffer starts (`usize::MAX`:
    /// none), so each group scans a buffer about once however many candidates it holds.
    ahead: Vec<Option<usize>>,
}

impl Searcher {
    fn new(search: Search) -> Searcher {
        let cache = match &search.find {
            Find::Union(re) => Some(re.create_cache()),
            _ => None,
        };
        let groups = match &search.find {
            Find::Teddy(g) => g.len(),
            _ => 0,
        };
        Searcher {
            search,
            cache,
            ahead: vec![None; groups],
        }
    }

    /// A new buffer: what was found ahead in the last one does not apply.
    fn start_buffer(&mut self) {
        for a in &mut self.ahead {
            *a = None;
        }
    }

    /// A position inside the first line at or after `from` (a line start) that may match.
    fn next(&mut self, buf: &[u8], from: usize) -> Option<usize> {
        if from >= buf.len() {
            return None;
        }
        match (&self.search.find, self.cache.as_mut()) {
            (Find::Nothing, _) => None,
            (Find::Teddy(groups), _) => {
                let mut first = usize::MAX;
                for (g, ahead) in groups.iter().zip(self.ahead.iter_mut()) {
                    let at = match *ahead {
                        Some(p) if p >= from => p,
                        _ => {
                            let p = g.find(buf, from).unwrap_or(usize::MAX);
                            *ahead = Some(p);
                            p
                        }
                    };
                    first = first.min(at);
                }
                (first != usize::MAX).then_some(first)
            }
            (Find::Literals(ac), _) => {
                let input = aho_corasick::Input::new(buf).range(from..);
                ac.find(input).map(|m| m.start())
            }
            (Find::Union(re), Some(cache)) => {
                let input = regex_automata::Input::new(buf).range(from..).earliest(true);
                // The earliest end of any match: no line before the one holding its last
                // byte can hold a match of its own (see prefilter).
                let end = re.search_half_with(cache, &input)?.offset();
                Some(end.saturating_sub(1).max(from))
            }
            _ => Some(from),
        }
    }

    fn may_match(&mut self, text: &[u8]) -> bool {
        match (&self.search.find, self.cache.as_mut()) {
            (Find::Nothing, _) => false,
            (Find::Teddy(groups), _) => groups.iter().any(|g| g.find(text, 0).is_some()),
            (Find::Literals(ac), _) => ac.is_match(text),
            (Find::Union(re), Some(cache)) => {
                re.is_match_with(cache, &regex_automata::Input::new(text))
            }
            _ => true,
        }
    }

    /// The rules to run on a candidate message, in rule order.
    fn rules_for(&self, text: &[u8]) -> Vec<usize> {
        let mut out = self.search.always.clone();
        if let Some(scan) = &self.search.scan {
            for m in scan.find_overlapping_iter(text) {
                if let Some(&r) = self.search.scan_rules.get(m.pattern().as_usize())
                    && !out.contains(&r)
                {
                    out.push(r);
                }
            }
        }
        out.sort_unstable();
        out
    }
}

impl Searcher {
    /// The first line of `buf` (whole lines) at or after `from` (a line start) that may
    /// match, as (start, end): `buf[start..end]` is the line without its newline. A new
    /// buffer's search starts with [`Searcher::start_buffer`] and `from` 0; the next one
    /// from `end + 1`.
    fn next_line(&mut self, buf: &[u8], from: usize) -> Option<(usize, usize)> {
        let q = self.next(buf, from)?;
        let head = buf.get(from..q)?;
        let start =
            memchr::memrchr(b'\n', head).map_or(from, |i| from.saturating_add(i).saturating_add(1));
        let end = buf
            .get(q..)
            .and_then(|t| memchr::memchr(b'\n', t))
            .map_or(buf.len(), |i| q.saturating_add(i));
        Some((start, end))
    }
}

/// The lines in `buf` (whole lines, the last maybe without its newline), given the newlines
/// it holds when they were counted already.
pub fn lines_in(buf: &[u8], newlines_in_buf: Option<usize>) -> u64 {
    let ended = newlines_in_buf.unwrap_or_else(|| newlines(buf));
    let unended = usize::from(!buf.is_empty() && !buf.ends_with(b"\n"));
    ended.saturating_add(unended) as u64
}

/// A matcher's search for candidate lines, on its own (its own cache): what another thread
/// runs over a part of a file ([`Matcher::line_finder`]).
#[derive(Debug)]
pub struct LineFinder(Searcher);

/// Another finder searching the same way, with a cache of its own (for another thread).
impl Clone for LineFinder {
    fn clone(&self) -> LineFinder {
        LineFinder(Searcher::new(self.0.search.clone()))
    }
}

impl LineFinder {
    /// Calls `each(start, end)` for each line of `buf` (whole lines, each ended by `\n`; the
    /// last may lack it) that may match, in order: `buf[start..end]` is the line without its
    /// newline. The lines [`Matcher::feed_counted`] would run the rules on.
    pub fn find(&mut self, buf: &[u8], each: &mut dyn FnMut(usize, usize)) {
        self.0.start_buffer();
        let mut pos = 0usize;
        while let Some((start, end)) = self.0.next_line(buf, pos) {
            each(start, end);
            pos = end.saturating_add(1);
        }
    }
}

/// One rule matching one record. Only the matcher that produced it can resolve its rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    rule: usize,
    /// The group it fell into (rule name id, subject key).
    group: Option<(usize, String)>,
    pub subject: Option<Subject>,
    pub line: String,
    pub time_ms: Option<u64>,
    /// Numbers the line carries (named groups that are not subjects).
    pub measures: Vec<Measure>,
}

/// How a matcher reads the lines of its source.
#[derive(Debug, Clone, Default)]
pub struct MatchOptions {
    /// Strip syslog and kernel prefixes before matching (log files; [`message`]).
    pub strip_prefix: bool,
    /// When the monitor started (ms since the epoch): rules with a lookback count lines from
    /// that long before it on.
    pub started_ms: Option<u64>,
}

/// Who logged a line (for rules naming their logger).
#[derive(Debug, Clone, Default)]
struct Logger {
    comm: Option<String>,
    pid: Option<i32>,
    /// The journal's `_SYSTEMD_UNIT`: the unit the logging process runs in.
    unit: Option<String>,
}

/// Runs a rule set over a stream of records and gathers the hits into findings, with bounded
/// memory: per (rule, subject) a count, first/last time, three sample lines and, for counter
/// rules, the times inside the window.
pub struct Matcher {
    set: Arc<RuleSet>,
    opts: MatchOptions,
    searcher: Searcher,
    /// Recent messages, for multi-line rules (record by record).
    recent: VecDeque<String>,
    /// The last raw lines of the previous buffer, for multi-line rules (buffer by buffer).
    carry: VecDeque<Vec<u8>>,
    max_span: usize,
    has_multi: bool,
    groups: BTreeMap<(usize, String), Group>,
    /// Recent hits of multi-line events, to fold their lines into one finding.
    events: VecDeque<EventMark>,
    /// Rules that apply to the source this matcher reads (by rule index).
    applies: Vec<bool>,
    pub lines: u64,
    /// Bytes fed so far (where the next line starts).
    bytes: u64,
}

#[derive(Debug)]
struct EventMark {
    event: usize,
    pid: Option<i32>,
    group: (usize, String),
    /// Where in the source the hit's line is (bytes fed before it).
    at: u64,
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
    /// Grouped by pod: the distinct cgroups (containers) the lines named, and how many more.
    members: Vec<Subject>,
    more_members: u64,
    /// The first matching line, and the latest ones (the newest say what is happening now).
    first: Option<String>,
    latest: VecDeque<String>,
    /// The latest hit's numbers.
    measures: Vec<Measure>,
    /// Counter rules: match times within the window (bounded by the count needed).
    window: VecDeque<u64>,
    fired: bool,
}

/// Distinct pids (and cgroups of a pod) listed per group.
const PIDS_LISTED: usize = 10;
/// Latest lines kept per group, besides the first.
const LATEST: usize = 2;
/// Sample lines in evidence are cut to this many characters.
const SAMPLE_CHARS: usize = 400;
/// Most distinct (rule, subject) groups kept; past it, hits fold into a subject-less group.
const MAX_GROUPS: usize = 256;
/// An event's lines are folded when at most this many bytes apart (an OOM report lists the
/// memcg's tasks, a line of some 100 bytes each, between its first line and the kill).
const FOLD_BYTES: u64 = 512 << 10;
/// Event hits remembered for folding.
const EVENTS_KEPT: usize = 16;

impl Matcher {
    /// A matcher for every rule, whatever its source.
    pub fn new(set: &Arc<RuleSet>) -> Matcher {
        Self::for_source(set, None)
    }

    /// A matcher for the lines of `source`: rules bound to another source are skipped.
    pub fn for_source(set: &Arc<RuleSet>, source: Option<&str>) -> Matcher {
        let applies: Vec<bool> = set
            .rules
            .iter()
            .map(|r| match (&r.spec.source, source) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            })
            .collect();
        let multi: Vec<usize> = set
            .multi
            .iter()
            .copied()
            .filter(|&i| applies.get(i).copied().unwrap_or(false))
            .collect();
        let max_span = multi
            .iter()
            .filter_map(|&i| set.rules.get(i).map(|r| r.span))
            .max()
            .unwrap_or(1);
        Matcher {
            searcher: Searcher::new(set.search(&applies)),
            set: set.clone(),
            opts: MatchOptions::default(),
            recent: VecDeque::new(),
            carry: VecDeque::new(),
            max_span,
            has_multi: !multi.is_empty(),
            groups: BTreeMap::new(),
            events: VecDeque::new(),
            applies,
            lines: 0,
            bytes: 0,
        }
    }

    pub fn with_options(mut self, opts: MatchOptions) -> Matcher {
        self.opts = opts;
        self
    }

    /// Chooses where the literal search looks in each literal by `sample`, a stretch of the
    /// text about to be read (a few KiB of the log): the 4 bytes Teddy checks first are
    /// then the ones this log holds least, not the ones log text in general does
    /// ([`prefilter::window_in`]). The same lines are found either way (any part of a
    /// required literal is required too); only how often the search stops to verify moves.
    /// A finder made after this ([`Matcher::line_finder`]) searches the same way.
    pub fn tune(&mut self, sample: &[u8]) {
        if let Some(s) = self.searcher.search.tuned(sample) {
            self.searcher = Searcher::new(s);
        }
    }

    /// How this matcher finds candidate lines: "literals" (a multi-literal search over the
    /// buffer), "union" (one lazy DFA of every rule's relaxed pattern), "every line" (a rule
    /// has no filter) or "none" (no rule applies).
    pub fn search_mode(&self) -> &'static str {
        match &self.searcher.search.find {
            Find::Nothing => "none",
            Find::Everything => "every line",
            Find::Teddy(_) | Find::Literals(_) => "literals",
            Find::Union(_) => "union",
        }
    }

    /// The longest lookback of the rules this matcher runs: a follower must then read its
    /// source from the start (what is older is dropped by time), not from its end.
    pub fn looks_back(&self) -> Option<u64> {
        self.set
            .rules
            .iter()
            .zip(&self.applies)
            .filter(|(_, a)| **a)
            .filter_map(|(r, _)| r.spec.lookback_ms)
            .max()
    }

    /// The message of a line and who logged it.
    fn message<'a>(&self, r: &'a LogRecord) -> (&'a str, Logger) {
        let text = r.text.as_str();
        let mut logger = Logger {
            comm: r
                .fields
                .get("_COMM")
                .or(r.fields.get("SYSLOG_IDENTIFIER"))
                .cloned(),
            pid: r.fields.get("_PID").and_then(|p| p.parse().ok()),
            unit: r.fields.get("_SYSTEMD_UNIT").cloned(),
        };
        if !self.opts.strip_prefix {
            return (text.trim(), logger);
        }
        let p = message::strip(text);
        if let Some(tag) = p.tag.filter(|t| *t != "kernel") {
            logger = Logger {
                comm: Some(tag.to_string()),
                pid: p.pid,
                unit: None,
            };
        }
        (text.get(p.start..).unwrap_or(text).trim(), logger)
    }

    /// Feeds one record; returns the hits it produced.
    pub fn feed(&mut self, r: &LogRecord) -> Vec<Hit> {
        self.lines = self.lines.saturating_add(1);
        let at = self.bytes;
        self.bytes = self
            .bytes
            .saturating_add(r.text.len() as u64)
            .saturating_add(1);
        let (msg, logger) = self.message(r);
        let prev: Vec<String> = if self.has_multi {
            let prev = self.recent.iter().cloned().collect();
            self.recent.push_back(msg.to_string());
            while self.recent.len() > self.max_span.saturating_sub(1) {
                self.recent.pop_front();
            }
            prev
        } else {
            Vec::new()
        };
        if !self.searcher.may_match(msg.as_bytes()) {
            return Vec::new();
        }
        self.check(r, msg, logger, at, &prev)
    }

    /// Feeds a buffer of whole lines (each ended by `\n`; the last may lack it): the
    /// prefilter runs over the whole buffer, and only the lines it finds are turned into
    /// records by `decode` (which may refuse a line: not a message) and run through the rules.
    pub fn feed_lines(
        &mut self,
        buf: &[u8],
        decode: &mut dyn FnMut(&[u8]) -> Option<LogRecord>,
    ) -> Vec<Hit> {
        self.feed_counted(buf, None, decode)
    }

    /// [`Matcher::feed_lines`] for a buffer whose newlines were counted already (by the
    /// thread that read it, while the bytes were in its cache).
    pub fn feed_counted(
        &mut self,
        buf: &[u8],
        newlines_in_buf: Option<usize>,
        decode: &mut dyn FnMut(&[u8]) -> Option<LogRecord>,
    ) -> Vec<Hit> {
        let base = self.bytes;
        self.searcher.start_buffer();
        let mut hits = Vec::new();
        let mut pos = 0usize;
        while let Some((start, end)) = self.searcher.next_line(buf, pos) {
            pos = end.saturating_add(1);
            if let Some(line) = buf.get(start..end)
                && let Some(rec) = decode(line)
            {
                let prev = if self.has_multi {
                    self.previous(buf, start, decode)
                } else {
                    Vec::new()
                };
                let at = base.saturating_add(start as u64);
                hits.extend(self.check_record(&rec, at, &prev));
            }
        }
        self.lines = self.lines.saturating_add(lines_in(buf, newlines_in_buf));
        self.bytes = base.saturating_add(buf.len() as u64);
        if self.has_multi {
            self.keep_carry(buf);
        }
        hits
    }

    /// A finder of this matcher's candidate lines for another thread to run over a part of
    /// a file (each half of a large one is read and searched on a thread of its own);
    /// [`Matcher::feed_searched`] then applies what it found, in order. None when that would not help or not be right:
    /// multi-line rules need the lines before a candidate (which the finder does not keep),
    /// and where every line is a candidate (a rule without a filter) the finder would only
    /// copy the file.
    pub fn line_finder(&self) -> Option<LineFinder> {
        if self.has_multi {
            return None;
        }
        match self.searcher.search.find {
            Find::Teddy(_) | Find::Literals(_) | Find::Union(_) => {
                Some(LineFinder(Searcher::new(self.searcher.search.clone())))
            }
            Find::Nothing | Find::Everything => None,
        }
    }

    /// Feeds `len` bytes of whole lines (`lines` of them, the last maybe without its
    /// newline) that a [`LineFinder`] of this matcher searched: `found` are its candidate
    /// lines, each with where it starts in those bytes, in order. The same hits, counts and
    /// positions as [`Matcher::feed_counted`] over those bytes (a matcher with multi-line
    /// rules has no finder).
    pub fn feed_searched<'a>(
        &mut self,
        len: u64,
        lines: u64,
        found: impl IntoIterator<Item = (u64, &'a [u8])>,
        decode: &mut dyn FnMut(&[u8]) -> Option<LogRecord>,
    ) -> Vec<Hit> {
        let base = self.bytes;
        let mut hits = Vec::new();
        for (start, line) in found {
            if let Some(rec) = decode(line) {
                hits.extend(self.check_record(&rec, base.saturating_add(start), &[]));
            }
        }
        self.lines = self.lines.saturating_add(lines);
        self.bytes = base.saturating_add(len);
        hits
    }

    fn check_record(&mut self, rec: &LogRecord, at: u64, prev: &[String]) -> Vec<Hit> {
        let (msg, logger) = self.message(rec);
        self.check(rec, msg, logger, at, prev)
    }

    /// The messages of the lines before the one starting at `start` (oldest first), for
    /// multi-line rules: from this buffer, then from the end of the previous one.
    fn previous(
        &self,
        buf: &[u8],
        start: usize,
        decode: &mut dyn FnMut(&[u8]) -> Option<LogRecord>,
    ) -> Vec<String> {
        let want = self.max_span.saturating_sub(1);
        let mut raw: Vec<Vec<u8>> = Vec::new();
        let mut end = start;
        while raw.len() < want && end > 0 {
            let line_end = end.saturating_sub(1);
            let Some(head) = buf.get(..line_end) else {
                break;
            };
            let s = memchr::memrchr(b'\n', head).map_or(0, |i| i.saturating_add(1));
            raw.push(buf.get(s..line_end).unwrap_or(&[]).to_vec());
            end = s;
        }
        for l in self.carry.iter().rev() {
            if raw.len() >= want {
                break;
            }
            raw.push(l.clone());
        }
        raw.reverse();
        raw.iter()
            .filter_map(|l| decode(l))
            .map(|r| self.message(&r).0.to_string())
            .collect()
    }

    fn keep_carry(&mut self, buf: &[u8]) {
        let want = self.max_span.saturating_sub(1);
        let body = buf.strip_suffix(b"\n").unwrap_or(buf);
        let mut tail: Vec<Vec<u8>> = body
            .rsplit(|&b| b == b'\n')
            .take(want)
            .map(<[u8]>::to_vec)
            .collect();
        tail.reverse();
        for l in tail {
            self.carry.push_back(l);
            if self.carry.len() > want {
                self.carry.pop_front();
            }
        }
    }

    /// Runs the rules over one candidate message (and, for multi-line rules, the messages
    /// before it) and records their hits in their groups.
    fn check(
        &mut self,
        r: &LogRecord,
        msg: &str,
        logger: Logger,
        at: u64,
        prev: &[String],
    ) -> Vec<Hit> {
        let mut hits = self.judge(r, msg, logger, prev);
        for h in &mut hits {
            self.record(h, at);
        }
        hits
    }

    /// The hits of the rules over one candidate message, not recorded yet: what matched,
    /// with its subject and measures. Depends on the rules and the options only, never on
    /// what was fed before: the groups, counters and folding are [`Matcher::record`]'s.
    fn judge(&self, r: &LogRecord, msg: &str, logger: Logger, prev: &[String]) -> Vec<Hit> {
        let set = &self.set;
        // (rule, the text it matched: the message, or the lines joined).
        let mut matched: Vec<(usize, Option<String>)> = Vec::new();
        for i in self.searcher.rules_for(msg.as_bytes()) {
            let Some(rule) = set.rules.get(i) else {
                continue;
            };
            let Some(re) = rule.regex() else {
                continue;
            };
            if rule.span == 1 {
                if re.is_match(msg.as_bytes()) {
                    matched.push((i, None));
                }
                continue;
            }
            let need = rule.span.saturating_sub(1);
            if prev.len() < need {
                continue;
            }
            let mut joined = prev
                .get(prev.len().saturating_sub(need)..)
                .unwrap_or(&[])
                .join("\n");
            joined.push('\n');
            joined.push_str(msg);
            if re.is_match(joined.as_bytes()) {
                matched.push((i, Some(joined)));
            }
        }
        let taken: Vec<usize> = matched.iter().map(|(i, _)| *i).collect();
        let mut seen_names = Vec::new();
        let mut hits = Vec::new();
        for (i, joined) in matched {
            let Some(rule) = set.rules.get(i) else {
                continue;
            };
            if rule.unless.iter().any(|u| taken.contains(u)) || seen_names.contains(&rule.name_id) {
                continue;
            }
            seen_names.push(rule.name_id);
            if let (Some(lb), Some(start), Some(t)) =
                (rule.spec.lookback_ms, self.opts.started_ms, r.time_ms)
                && t < start.saturating_sub(lb)
            {
                continue;
            }
            let haystack = joined.as_deref().unwrap_or(msg);
            let caps = if rule.named {
                match rule
                    .regex()
                    .and_then(|re| Groups::of(re, haystack.as_bytes()))
                {
                    Some(c) => Some(c),
                    None => continue,
                }
            } else {
                None
            };
            let mut subject = caps.as_ref().and_then(subject_of);
            if rule.spec.logger_subject
                && subject
                    .as_ref()
                    .is_none_or(|s| s.pid.is_none() && s.comm.is_none())
                && (logger.comm.is_some() || logger.pid.is_some())
            {
                let s = subject.get_or_insert_with(|| Subject::new(SubjectKind::Process));
                s.comm.clone_from(&logger.comm);
                s.pid = logger.pid;
                if s.unit.is_none() {
                    s.unit.clone_from(&logger.unit);
                }
                if s.container_id.is_none() && s.pod.is_none() {
                    s.kind = SubjectKind::Process;
                }
            }
            if rule.spec.unit_subject
                && subject.as_ref().is_none_or(|s| s.unit.is_none())
                && let Some(unit) = r.fields.get("UNIT")
            {
                let s = subject.get_or_insert_with(|| Subject::new(SubjectKind::Unit));
                s.unit = Some(unit.clone());
            }
            hits.push(Hit {
                rule: i,
                group: None,
                subject,
                line: r.text.clone(),
                time_ms: r.time_ms,
                measures: caps
                    .as_ref()
                    .map(|c| measures_of(c, &rule.measure_groups))
                    .unwrap_or_default(),
            });
        }
        hits
    }

    /// The group an event's line folds into: the recent hit of the same event naming the
    /// same pid, or the newest one, when it named none.
    fn fold_target(&mut self, event: usize, pid: Option<i32>, at: u64) -> Option<(usize, String)> {
        let pid = pid?;
        let mut newest = true;
        for m in self.events.iter_mut().rev() {
            if m.event != event || at.saturating_sub(m.at) > FOLD_BYTES {
                continue;
            }
            if m.pid == Some(pid) {
                return Some(m.group.clone());
            }
            if newest && m.pid.is_none() {
                m.pid = Some(pid);
                return Some(m.group.clone());
            }
            newest = false;
        }
        None
    }

    fn record(&mut self, h: &mut Hit, at: u64) {
        let set = self.set.clone();
        let Some(rule) = set.rules.get(h.rule) else {
            return;
        };
        let spec = &rule.spec;
        let mut gk = (
            rule.name_id,
            h.subject
                .as_ref()
                .map_or(String::new(), |s| subject_key(s, spec.grouping)),
        );
        let mut folded = false;
        if let Some(ev) = rule.event_id {
            if let Some(target) = self.fold_target(ev, h.subject.as_ref().and_then(|s| s.pid), at) {
                gk = target;
                folded = true;
            }
            self.events.push_back(EventMark {
                event: ev,
                pid: h.subject.as_ref().and_then(|s| s.pid),
                group: gk.clone(),
                at,
            });
            if self.events.len() > EVENTS_KEPT {
                self.events.pop_front();
            }
        }
        if self.groups.len() >= MAX_GROUPS && !self.groups.contains_key(&gk) {
            gk.1 = String::new();
        }
        // The spec the group reports with (a folded line reports as its event's first line).
        let group_spec = &set.rules.get(gk.0).map_or(spec, |r| &r.spec);
        let grouping = group_spec.grouping;
        let count_rule = group_spec.count;
        let g = self.groups.entry(gk.clone()).or_default();
        if !gk.1.is_empty()
            && let Some(s) = &h.subject
        {
            match (grouping, &mut g.subject) {
                (_, Some(have)) if folded => merge_subject(have, s),
                // The latest line's subject, with what earlier lines named and it does not.
                (Grouping::Image, Some(have)) => {
                    let mut new = s.clone();
                    merge_subject(&mut new, have);
                    *have = new;
                }
                (Grouping::Pod, _) => {
                    g.subject = Some(pod_subject(s));
                    let member = |m: &Subject| m.path == s.path && m.container_id == s.container_id;
                    if !g.members.iter().any(member) {
                        if g.members.len() < PIDS_LISTED {
                            g.members.push(s.clone());
                        } else {
                            g.more_members = g.more_members.saturating_add(1);
                        }
                    }
                }
                // The latest hit's subject: its pid is the one most likely still alive.
                _ => g.subject = Some(s.clone()),
            }
            if let Some(pid) = s.pid
                && !g.pids.contains(&pid)
            {
                if g.pids.len() < PIDS_LISTED {
                    g.pids.push(pid);
                } else {
                    g.more_pids = g.more_pids.saturating_add(1);
                }
            }
        }
        if !h.measures.is_empty() {
            g.measures.clone_from(&h.measures);
        }
        g.count = g.count.saturating_add(1);
        if let Some(t) = h.time_ms {
            g.first_ms = Some(g.first_ms.map_or(t, |f| f.min(t)));
            g.last_ms = Some(g.last_ms.map_or(t, |l| l.max(t)));
        }
        let line = sample_of(&h.line);
        if g.first.is_none() {
            g.first = Some(line);
        } else {
            g.latest.push_back(line);
            if g.latest.len() > LATEST {
                g.latest.pop_front();
            }
        }
        if let Some((need, window_ms)) = count_rule {
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
        h.group = Some(gk);
    }

    /// The finding of the group `hit` fell into, as it stands now (for `--follow`); `None`
    /// for a counter rule that has not fired.
    pub fn finding_for(&self, hit: &Hit, check: &str, source: &str) -> Option<Finding> {
        let gk = hit.group.as_ref()?;
        let g = self.groups.get(gk)?;
        let spec = &self.set.rules.get(gk.0)?.spec;
        (spec.count.is_none() || g.fired).then(|| finding(check, source, spec, &gk.1, g))
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

/// The line as a finding keeps it: its first [`SAMPLE_CHARS`] characters. Cut at a byte
/// index, not collected char by char (this runs for every matching line).
fn sample_of(line: &str) -> String {
    if line.len() <= SAMPLE_CHARS {
        // Fewer bytes than the limit: fewer characters too.
        return line.to_string();
    }
    match line.char_indices().nth(SAMPLE_CHARS) {
        // `cut` is a char boundary inside the line: `get` cannot fail (it is `get` for the
        // `indexing_slicing` lint).
        Some((cut, _)) => line.get(..cut).unwrap_or(line).to_string(),
        // More bytes than the limit, but no more characters.
        None => line.to_string(),
    }
}

fn newlines(b: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', b).count()
}

/// Fills the fields `into` lacks from `from` (a later line of the same event).
fn merge_subject(into: &mut Subject, from: &Subject) {
    fn fill<T: Clone>(a: &mut Option<T>, b: &Option<T>) {
        if a.is_none() {
            a.clone_from(b);
        }
    }
    fill(&mut into.pid, &from.pid);
    fill(&mut into.comm, &from.comm);
    fill(&mut into.uid, &from.uid);
    fill(&mut into.container_id, &from.container_id);
    fill(&mut into.pod, &from.pod);
    fill(&mut into.path, &from.path);
    fill(&mut into.device, &from.device);
    fill(&mut into.unit, &from.unit);
    fill(&mut into.image, &from.image);
    fill(&mut into.namespace, &from.namespace);
    fill(&mut into.pod_name, &from.pod_name);
    fill(&mut into.container_name, &from.container_name);
}

/// The pod a subject belongs to, as the subject of a pod-grouped finding.
fn pod_subject(s: &Subject) -> Subject {
    if s.pod.is_none() && s.pod_name.is_none() {
        return s.clone();
    }
    Subject {
        pod: s.pod.clone(),
        namespace: s.namespace.clone(),
        pod_name: s.pod_name.clone(),
        ..Subject::new(SubjectKind::Pod)
    }
}

/// Groups by who the hit is about (see [`Grouping`]).
fn subject_key(s: &Subject, grouping: Grouping) -> String {
    let pod = || match (&s.namespace, &s.pod_name, &s.pod) {
        (ns, Some(name), _) => Some(format!("pod:{}/{name}", ns.as_deref().unwrap_or(""))),
        (_, None, Some(uid)) => Some(format!("pod:{uid}")),
        _ => None,
    };
    if grouping == Grouping::Image
        && let Some(i) = &s.image
    {
        return format!("img:{i}");
    }
    if grouping == Grouping::Pod {
        if let Some(uid) = &s.pod {
            return format!("pod:{uid}");
        }
        if let Some(p) = pod() {
            return p;
        }
    }
    if let Some(c) = &s.container_id {
        format!("c:{c}")
    } else if let Some(c) = &s.comm {
        format!("n:{c}")
    } else if let Some(p) = s.pid {
        format!("p:{p}")
    } else if let Some(p) = pod() {
        match &s.container_name {
            Some(c) => format!("{p}/{c}"),
            None => p,
        }
    } else if let Some(u) = &s.unit {
        format!("unit:{u}")
    } else if let Some(d) = &s.device {
        format!("dev:{d}")
    } else if let Some(i) = &s.image {
        format!("img:{i}")
    } else if let Some(path) = &s.path {
        format!("g:{path}")
    } else {
        format!("u:{:?}", s.uid)
    }
}

/// `ns/name` (klog.KObj), or the old `name_namespace(uid)` (kubelet's format.Pod).
fn parse_pod(v: &str) -> (Option<String>, Option<String>, Option<String>) {
    if let Some((rest, uid)) = v.strip_suffix(')').and_then(|r| r.split_once('('))
        && let Some((name, ns)) = rest.rsplit_once('_')
    {
        return (Some(ns.into()), Some(name.into()), Some(uid.into()));
    }
    match v.split_once('/') {
        Some((ns, name)) => (Some(ns.into()), Some(name.into()), None),
        None => (None, Some(v.into()), None),
    }
}

fn subject_of(caps: &Groups) -> Option<Subject> {
    let get = |n: &str| {
        caps.text(n)
            .and_then(|m| std::str::from_utf8(m).ok())
            .filter(|v| !v.is_empty())
    };
    let pid = get("pid").and_then(|p| p.parse().ok());
    let uid = get("uid").and_then(|u| u.parse().ok());
    let comm = get("comm").map(str::to_string);
    let cgroup = get("memcg").or(get("cgroup")).or(get("oom_memcg"));
    let owner = cgroup.map(parse_cgroup_path).unwrap_or_default();
    let container_id = get("container_id")
        .map(|c| c.rsplit_once("://").map_or(c, |(_, id)| id).to_string())
        .or(owner.container_id);
    let (mut namespace, mut pod_name, mut pod) = get("pod").map(parse_pod).unwrap_or_default();
    if let Some(u) = get("pod_uid") {
        pod = Some(u.to_string());
    }
    pod = pod.or(owner.pod_uid);
    if let Some(n) = get("namespace") {
        namespace = Some(n.to_string());
    }
    if let Some(n) = get("pod_name") {
        pod_name = Some(n.to_string());
    }
    let path = cgroup.or(get("path")).map(str::to_string);
    let s = Subject {
        pid,
        comm,
        uid,
        container_id,
        pod,
        path,
        device: get("device").map(str::to_string),
        unit: get("unit").map(str::to_string),
        image: get("image").map(str::to_string),
        namespace,
        pod_name,
        container_name: get("container").map(str::to_string),
        ..Subject::new(SubjectKind::Node)
    };
    let kind = if s.container_id.is_some() {
        SubjectKind::Container
    } else if s.pid.is_some() || s.comm.is_some() {
        SubjectKind::Process
    } else if s.pod.is_some() || s.pod_name.is_some() {
        SubjectKind::Pod
    } else if s.unit.is_some() {
        SubjectKind::Unit
    } else if s.device.is_some() {
        SubjectKind::Device
    } else if s.image.is_some() {
        SubjectKind::Image
    } else if cgroup.is_some() {
        SubjectKind::Cgroup
    } else if s.path.is_some() {
        SubjectKind::Filesystem
    } else if s.uid.is_some() {
        SubjectKind::User
    } else {
        return None;
    };
    Some(Subject { kind, ..s })
}

/// A Go `time.Duration` string (`1.262610491s`, `3m0.5s`, `500ms`) in seconds.
fn go_duration(s: &str) -> Option<f64> {
    let mut rest = s;
    let mut total = 0.0f64;
    let mut any = false;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        let value: f64 = num.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let scale = match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += value * scale;
        any = true;
        rest = next;
    }
    any.then_some(total)
}

/// Named groups holding a number or a duration, as measures (`xid` 79, `ago` 180.5 s).
fn measures_of(caps: &Groups, names: &[String]) -> Vec<Measure> {
    let mut out = Vec::new();
    for n in names {
        let Some(v) = caps.text(n).and_then(|m| std::str::from_utf8(m).ok()) else {
            continue;
        };
        if let Ok(i) = v.parse::<u64>() {
            out.push(if n.ends_with("_seconds") {
                Measure::new(n, i, Unit::Seconds)
            } else {
                Measure::count(n, i)
            });
        } else if let Some(secs) = go_duration(v) {
            out.push(Measure::new(n, secs, Unit::Seconds));
        }
    }
    out
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
    } else if let Some(c) = &s.container_name {
        parts.push(format!("container {c}"));
    }
    match (&s.namespace, &s.pod_name, &s.pod) {
        (Some(ns), Some(n), _) => parts.push(format!("pod {ns}/{n}")),
        (None, Some(n), _) => parts.push(format!("pod {n}")),
        (_, None, Some(p)) => parts.push(format!("pod {p}")),
        _ => {}
    }
    for (label, v) in [
        ("unit", &s.unit),
        ("device", &s.device),
        ("image", &s.image),
    ] {
        if let Some(v) = v {
            parts.push(format!("{label} {v}"));
        }
    }
    if s.container_id.is_none()
        && s.pod.is_none()
        && let Some(path) = &s.path
    {
        parts.push(format!(
            "{} {path}",
            if s.kind == SubjectKind::Filesystem {
                "path"
            } else {
                "cgroup"
            }
        ));
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
        if spec.grouping == Grouping::Pod && !g.members.is_empty() {
            let list: Vec<String> = g
                .members
                .iter()
                .filter_map(|m| m.path.clone().or(m.container_id.clone()))
                .collect();
            summary.push_str(&format!(
                " ({} {}",
                if list.len() == 1 && g.more_members == 0 {
                    "cgroup"
                } else {
                    "cgroups"
                },
                list.join(", ")
            ));
            if g.more_members > 0 {
                summary.push_str(&format!(" and {} more", g.more_members));
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
        measures.push(Measure::new("window", w as f64 / 1000.0, Unit::Seconds));
    }
    if !g.pids.is_empty() {
        measures.push(Measure::count(
            "pids",
            (g.pids.len() as u64).saturating_add(g.more_pids),
        ));
    }
    if spec.grouping == Grouping::Pod && !g.members.is_empty() {
        measures.push(Measure::count(
            "cgroups",
            (g.members.len() as u64).saturating_add(g.more_members),
        ));
    }
    for m in &g.measures {
        if !measures.iter().any(|have| have.name == m.name) {
            measures.push(m.clone());
        }
    }
    let mut subjects: Vec<Subject> = g.subject.clone().into_iter().collect();
    if spec.grouping == Grouping::Pod
        && g.subject
            .as_ref()
            .is_some_and(|s| s.kind == SubjectKind::Pod)
    {
        subjects.extend(g.members.iter().cloned());
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
        subjects,
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
    fn a_pattern_too_large_to_compile_is_refused_at_load() {
        let err = RuleSet::compile(vec![RuleSpec::event(
            "huge",
            "Huge",
            r"\w{1000}{1000}",
            Severity::Warning,
        )])
        .unwrap_err();
        assert!(
            err.to_string().starts_with("rule \"huge\": pattern"),
            "{err}"
        );
    }

    #[test]
    fn samples_keep_the_first_characters_not_bytes() {
        let long = "é".repeat(SAMPLE_CHARS + 5);
        let cut = sample_of(&long);
        assert_eq!(cut.chars().count(), SAMPLE_CHARS);
        assert!(long.starts_with(&cut));
        assert_eq!(sample_of("short"), "short");
        let wide = "é".repeat(SAMPLE_CHARS);
        assert_eq!(
            sample_of(&wide),
            wide,
            "more bytes than the limit, as many chars"
        );
        let exact = "x".repeat(SAMPLE_CHARS);
        assert_eq!(sample_of(&exact), exact);
        assert_eq!(sample_of(&format!("{exact}yz")), exact);
    }

    /// An ext4 error rule and an OOM kill rule: two literals for the buffer search.
    fn ext4_and_oom() -> Vec<RuleSpec> {
        vec![
            RuleSpec::event("ext4", "Ext4Error", r"EXT4-fs error .*", Severity::Warning),
            RuleSpec::event(
                "oom",
                "OOMKilling",
                r"Killed process \d+",
                Severity::Warning,
            ),
        ]
    }

    #[test]
    fn a_search_tuned_by_a_sample_finds_the_same_lines_and_hits() {
        let s = set(ext4_and_oom());
        let mut log = String::new();
        for i in 0..300 {
            log.push_str(&match i % 20 {
                0 => format!("kernel: [{i}.0] EXT4-fs error (device sda1): bad block {i}\n"),
                7 => format!("kernel: [{i}.0] Killed process {i} (java)\n"),
                // EXT4 on every other line: the ranks' fingerprint of `EXT4-fs error `.
                _ => format!("kernel: [{i}.0] EXT4-fs (sda{i}): mounted filesystem\n"),
            });
        }
        let lines_of = |m: &Matcher| {
            let mut found = Vec::new();
            let mut f = m.line_finder().expect("literal rules: a finder");
            f.find(log.as_bytes(), &mut |a, b| found.push((a, b)));
            found
        };
        let mut plain = Matcher::new(&s);
        let mut tuned = Matcher::new(&s);
        tuned.tune(log.as_bytes().get(..4096).unwrap());
        assert_eq!(tuned.search_mode(), "literals");
        // Cut elsewhere than by the ranks alone: `EXT4` is all over the sample.
        assert!(
            tuned.searcher.search.literals.len() == plain.searcher.search.literals.len()
                && format!("{:?}", tuned.searcher.search.find)
                    != format!("{:?}", plain.searcher.search.find)
        );
        let (a, b) = (lines_of(&plain), lines_of(&tuned));
        assert_eq!(a, b);
        assert_eq!(a.len(), 30);
        let decode = &mut |l: &[u8]| Some(LogRecord::text(String::from_utf8_lossy(l).into_owned()));
        let mut hits = |m: &mut Matcher| -> Vec<(usize, String)> {
            m.feed_lines(log.as_bytes(), decode)
                .into_iter()
                .map(|h| (h.rule, h.line))
                .collect()
        };
        let (hp, ht) = (hits(&mut plain), hits(&mut tuned));
        assert_eq!(hp.len(), 30);
        assert_eq!(hp, ht);
        // An empty sample leaves the search alone.
        let mut same = Matcher::new(&s);
        same.tune(b"");
        assert_eq!(lines_of(&same), a);
    }

    #[test]
    fn a_search_by_heads_passes_over_heads_without_the_rest_of_their_literal() {
        let mut rules = ext4_and_oom();
        rules.push(RuleSpec::event(
            "kill",
            "Kill",
            r"Kill process \d+ \(",
            Severity::Warning,
        ));
        let s = set(rules);
        // A sample where none of the literals' rarest 3 bytes occur: all searched by them.
        let mut sample = String::new();
        for i in 0..200 {
            sample.push_str(&format!(
                "kernel: [{i}.0] EXT4-fs (sda1): mounted; process {i} started\n"
            ));
        }
        let mut tuned = Matcher::new(&s);
        tuned.tune(sample.as_bytes());
        // Lines holding a head without the rest (first, last, twice in a line, right before
        // a real literal), and the literals themselves.
        let mut log = String::new();
        for head in ["s e", "Kil"] {
            log.push_str(&format!("{head}\nx {head} {head}y\n{head}"));
            log.push_str(&format!(
                "Killed process 7\nEXT4-fs error (sda) {head}\nKill process 8 (x)\n"
            ));
        }
        log.push_str("tail Killed process 9\n");
        let lines_of = |m: &Matcher| {
            let mut found = Vec::new();
            let mut f = m.line_finder().expect("literal rules: a finder");
            f.find(log.as_bytes(), &mut |a, b| {
                found.push(log[a..b].to_string())
            });
            found
        };
        let plain = lines_of(&Matcher::new(&s));
        assert_eq!(lines_of(&tuned), plain);
        assert_eq!(plain.len(), 7, "{plain:?}");
        assert!(plain.iter().all(|l| {
            l.contains("Killed process ")
                || l.contains("EXT4-fs error ")
                || l.contains("Kill process ")
        }));
        // One record at a time (`may_match`): the same verdicts.
        for line in [
            "Kill process 3 (y)",
            "Kilo s e",
            "x EXT4-fs error (sdb)",
            "Killed process 2",
        ] {
            let r = LogRecord::text(line);
            let want = Matcher::new(&s).feed(&r).len();
            assert_eq!(tuned.feed(&r).len(), want, "{line}");
            assert_eq!(want, usize::from(line != "Kilo s e"), "{line}");
        }
        // Where Teddy runs (SSSE3 or NEON), it looked for the heads: `s e` of `fs error `
        // (the window past `EXT4`, all over the sample), `Kil` for both kills.
        let Find::Teddy(groups) = &tuned.searcher.search.find else {
            return;
        };
        assert!(groups.iter().all(|g| g.by_heads));
        let mut fulls: Vec<Vec<(usize, Vec<u8>)>> = groups
            .iter()
            .flat_map(|g| g.fulls.iter().cloned())
            .collect();
        fulls.sort();
        assert_eq!(
            fulls,
            vec![
                vec![
                    (0, b"Kill process ".to_vec()),
                    (0, b"Killed process ".to_vec())
                ],
                vec![(1, b"fs error ".to_vec())],
            ]
        );
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

    fn npd(name: &str, pattern: &str) -> RuleSpec {
        let mut r = RuleSpec::event(name, "R", pattern, Severity::Warning);
        r.anchored_end = true;
        r
    }

    #[test]
    fn npd_end_anchored_rules_see_the_message_trimmed() {
        // NPD's kmsg watcher trims each message (strings.TrimSpace), so its end-anchored
        // KernelOops rule matches the kernel's "divide error: 0000 [#1] SMP " (trailing
        // space: __die_header's flags end with " SMP" then a blank PTI slot on some kernels).
        let s = set(vec![npd(
            "kernel-monitor/KernelOops",
            r"divide error: 0000 \[#\d+\] SMP",
        )]);
        let mut m = Matcher::new(&s);
        assert_eq!(
            m.feed(&LogRecord::text("divide error: 0000 [#1] SMP "))
                .len(),
            1
        );
        assert_eq!(
            m.feed(&LogRecord::text("divide error: 0000 [#1] SMP PTI"))
                .len(),
            0
        );
    }

    #[test]
    fn rules_sharing_a_name_are_one_rule() {
        // Two NPD configs with the same `source` (or one loaded twice) give rules of the
        // same name: a line they both match is one hit, their lines one finding.
        let s = set(vec![
            npd(
                "kernel-monitor/OOMKilling",
                r"Killed process \d+ (.+) total-vm:\d+kB.*",
            ),
            npd(
                "kernel-monitor/OOMKilling",
                r"Killed process \d+ (.+) total-vm:\d+kB.*",
            ),
            npd(
                "kernel-monitor/KernelOops",
                r"BUG: unable to handle kernel NULL pointer dereference at .*",
            ),
            npd(
                "kernel-monitor/KernelOops",
                r"divide error: 0000 \[#\d+\] SMP",
            ),
        ]);
        let mut m = Matcher::new(&s);
        let hits = m.feed(&LogRecord::text(
            "Killed process 12 (java) total-vm:100kB, anon-rss:1kB",
        ));
        assert_eq!(hits.len(), 1);
        m.feed(&LogRecord::text(
            "BUG: unable to handle kernel NULL pointer dereference at 0000000000000010",
        ));
        m.feed(&LogRecord::text("divide error: 0000 [#1] SMP"));
        let f = m.findings("log-monitor", "kmsg");
        let keys: Vec<(&str, u64)> = f
            .iter()
            .map(|f| (f.key.as_str(), f.log.as_ref().unwrap().count))
            .collect();
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert!(keys.contains(&("log-monitor/rule:kernel-monitor/KernelOops", 2)));
        assert!(keys.contains(&("log-monitor/rule:kernel-monitor/OOMKilling", 1)));
    }

    #[test]
    fn lookback_counts_only_lines_from_that_long_before_the_start() {
        let mut r = npd(
            "kernel-monitor/TaskHung",
            r"task [\S ]+:\w+ blocked for more than \w+ seconds\.",
        );
        r.lookback_ms = Some(5 * 60_000);
        let s = set(vec![r]);
        let start = 10 * 3_600_000;
        let mut m = Matcher::new(&s).with_options(MatchOptions {
            started_ms: Some(start),
            ..MatchOptions::default()
        });
        assert_eq!(m.looks_back(), Some(300_000));
        let at = |ago_ms: u64| {
            let mut r = LogRecord::text("INFO: task rsync:3199 blocked for more than 120 seconds.");
            r.time_ms = Some(start - ago_ms);
            r
        };
        assert!(
            m.feed(&at(570_000)).is_empty(),
            "9.5 minutes before a 5m lookback"
        );
        assert_eq!(m.feed(&at(60_000)).len(), 1);
        // A line without a time is kept, as with --since.
        assert_eq!(
            m.feed(&LogRecord::text(
                "INFO: task a:1 blocked for more than 120 seconds."
            ))
            .len(),
            1
        );
    }

    #[test]
    fn log_file_prefixes_are_stripped_so_anchored_rules_match() {
        let s = set(vec![RuleSpec::event(
            "oom",
            "OOMKilling",
            r"^Killed process (?P<pid>\d+) \((?P<comm>[^)]*)\)",
            Severity::Warning,
        )]);
        let line = "Nov 22 19:20:17 node-7 kernel: [  291.583675] Killed process 6775 (python3) total-vm:1kB";
        let mut raw = Matcher::new(&s);
        assert!(
            raw.feed(&LogRecord::text(line)).is_empty(),
            "a kmsg record has no prefix to strip"
        );
        let mut file = Matcher::new(&s).with_options(MatchOptions {
            strip_prefix: true,
            ..MatchOptions::default()
        });
        let hits = file.feed(&LogRecord::text(line));
        assert_eq!(hits[0].subject.as_ref().unwrap().pid, Some(6775));
        assert_eq!(hits[0].line, line, "the evidence keeps the whole line");
    }

    #[test]
    fn multi_line_rules_match_across_buffers() {
        let s = set(vec![RuleSpec::event(
            "cper",
            "CperHardwareErrorFatal",
            r"Hardware error from APEI Generic Hardware Error Source: \d+\n.*event severity: fatal",
            Severity::Critical,
        )]);
        let mut m = Matcher::new(&s);
        assert_eq!(
            m.search_mode(),
            "literals",
            "the last line's literal finds it"
        );
        let decode = &mut |b: &[u8]| Some(LogRecord::text(String::from_utf8_lossy(b).into_owned()));
        assert!(
            m.feed_lines(b"noise\n{1}[Hardware Error]: Hardware error from APEI Generic Hardware Error Source: 0\n", decode)
                .is_empty()
        );
        let hits = m.feed_lines(
            b"{1}[Hardware Error]: event severity: fatal\nmore noise\n",
            decode,
        );
        assert_eq!(hits.len(), 1);
        assert_eq!(m.lines, 4);
        // A pattern whose shape proves nothing about lines runs on every line.
        let s = set(vec![RuleSpec::event("x", "X", r"a\s+\nb", Severity::Info)]);
        assert_eq!(Matcher::new(&s).search_mode(), "every line");
    }

    #[test]
    fn patterns_without_literals_are_searched_as_one_union() {
        let s = set(vec![
            RuleSpec::event(
                "a",
                "A",
                r"(?i)remounting filesystem read-only",
                Severity::Info,
            ),
            RuleSpec::event("b", "B", r"file-max limit \d+ reached", Severity::Info),
        ]);
        let mut m = Matcher::new(&s);
        assert_eq!(m.search_mode(), "union");
        let hits = m.feed_lines(
            b"x\nREMOUNTING FILESYSTEM READ-ONLY\ny\nVFS: file-max limit 1 reached\n",
            &mut |b| Some(LogRecord::text(String::from_utf8_lossy(b).into_owned())),
        );
        assert_eq!(hits.len(), 2);
    }
}
