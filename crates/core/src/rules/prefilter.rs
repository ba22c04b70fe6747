//! What lets the monitor search a whole buffer instead of running the rules on every line
//! (ripgrep's approach): for each rule, a filter that matches at least wherever the rule does,
//! built from the rule's parsed pattern (regex-syntax's HIR):
//!
//! - the pattern **relaxed**: assertions (`^`, `$`, `\A`, `\z`, `\b`) dropped and groups
//!   uncaptured. Dropping a constraint only lets more text match, so where the relaxed pattern
//!   matches nowhere in a line, the rule cannot match the line's message either — which is a
//!   part of the line (the syslog prefix stripped, NPD's `message` extracted, whitespace
//!   trimmed);
//! - its **required literals**: strings one of which every match contains (`Killed process `,
//!   `blocked for more than `). When every rule has some, the filter is a multi-literal search
//!   (Teddy/Aho-Corasick in regex-automata), which runs at memory speed; otherwise it is the
//!   union of the relaxed patterns in one lazy DFA.
//!
//! Only the lines a filter finds are decoded and run through the rules themselves.

use regex_syntax::hir::{Class, Hir, HirKind};

/// Parses `pattern` as the rules compile it (bytes, ASCII classes: Go RE2's semantics).
pub(super) fn parse(pattern: &str) -> Result<Hir, String> {
    regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .map_err(|e| e.to_string())
}

/// The pattern without assertions and capture groups: a superset of what it matches.
pub(super) fn relax(h: Hir) -> Hir {
    match h.into_kind() {
        HirKind::Empty | HirKind::Look(_) => Hir::empty(),
        HirKind::Literal(l) => Hir::literal(l.0),
        HirKind::Class(c) => Hir::class(c),
        HirKind::Capture(c) => relax(*c.sub),
        HirKind::Repetition(mut r) => {
            r.sub = Box::new(relax(*r.sub));
            Hir::repetition(r)
        }
        HirKind::Concat(v) => Hir::concat(v.into_iter().map(relax).collect()),
        HirKind::Alternation(v) => Hir::alternation(v.into_iter().map(relax).collect()),
    }
}

/// Most literals a rule's requirement may list (an alternation of many words is better
/// served by the DFA).
const MAX_LITERALS: usize = 64;
/// Shortest literal worth searching for: shorter ones occur on most lines.
pub(super) const MIN_LITERAL: usize = 3;

/// Literals one of which every match of `h` contains; `None` when none is known.
pub(super) fn required(h: &Hir) -> Option<Vec<Vec<u8>>> {
    match h.kind() {
        HirKind::Literal(l) => Some(vec![l.0.to_vec()]),
        HirKind::Capture(c) => required(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => required(&r.sub),
        HirKind::Concat(subs) => subs
            .iter()
            .filter_map(required)
            .max_by_key(|set| (shortest(set), std::cmp::Reverse(set.len()))),
        HirKind::Alternation(subs) => {
            let mut all = Vec::new();
            for s in subs {
                all.extend(required(s)?);
                if all.len() > MAX_LITERALS {
                    return None;
                }
            }
            Some(all)
        }
        // A small class of single bytes (`[Nn]`) is a requirement too, but a weak one; the
        // concatenation around it usually holds a better literal.
        _ => None,
    }
}

/// The length of the shortest literal of a set.
pub(super) fn shortest(set: &[Vec<u8>]) -> usize {
    set.iter().map(Vec::len).min().unwrap_or(0)
}

/// Whether `h` can match a newline (then a match may span lines).
pub(super) fn can_match_newline(h: &Hir) -> bool {
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => false,
        HirKind::Literal(l) => l.0.contains(&b'\n'),
        HirKind::Class(Class::Bytes(c)) => c.ranges().iter().any(|r| {
            let (a, b) = (r.start(), r.end());
            a <= b'\n' && b'\n' <= b
        }),
        HirKind::Class(Class::Unicode(c)) => c.ranges().iter().any(|r| {
            let (a, b) = (r.start(), r.end());
            a <= '\n' && '\n' <= b
        }),
        HirKind::Capture(c) => can_match_newline(&c.sub),
        HirKind::Repetition(r) => can_match_newline(&r.sub),
        HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().any(can_match_newline),
    }
}

/// For a pattern spanning `span` lines (`a\nb`): the part that must match within the last
/// line, when the pattern's shape proves it — a top-level concatenation whose only ways of
/// matching a newline are exactly `span - 1` literal newlines. `None` otherwise (the rule
/// then has no filter and every line is run through it).
pub(super) fn last_line(relaxed: &Hir, span: usize) -> Option<Hir> {
    let HirKind::Concat(subs) = relaxed.kind() else {
        return None;
    };
    let mut newlines = 0usize;
    let mut last = None;
    for (i, s) in subs.iter().enumerate() {
        match s.kind() {
            HirKind::Literal(l) if l.0.contains(&b'\n') => {
                newlines = newlines.saturating_add(l.0.iter().filter(|&&b| b == b'\n').count());
                last = Some(i);
            }
            _ if can_match_newline(s) => return None,
            _ => {}
        }
    }
    if newlines.saturating_add(1) != span {
        return None;
    }
    let i = last?;
    let HirKind::Literal(l) = subs.get(i)?.kind() else {
        return None;
    };
    let cut = l.0.iter().rposition(|&b| b == b'\n')?;
    let mut rest = vec![Hir::literal(l.0.get(cut.saturating_add(1)..)?.to_vec())];
    rest.extend(subs.get(i.saturating_add(1)..)?.iter().cloned());
    Some(Hir::concat(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(p: &str) -> Option<Vec<String>> {
        required(&relax(parse(p).unwrap())).map(|v| {
            v.into_iter()
                .map(|l| String::from_utf8(l).unwrap())
                .collect()
        })
    }

    #[test]
    fn required_literals_of_real_rules() {
        assert_eq!(
            req(r"task (?P<comm>.+):(?P<pid>\d+) blocked for more than \d+ seconds").unwrap(),
            vec![" blocked for more than "]
        );
        let mut alt = req(r"(?:^|kernel: |Out of memory: )Killed process (?P<pid>\d+)").unwrap();
        alt.sort();
        assert_eq!(alt, vec!["Killed process "]);
        let mut two = req(r"Buffer I/O error on dev|I/O error, dev \S+").unwrap();
        two.sort();
        assert_eq!(two, vec!["Buffer I/O error on dev", "I/O error, dev "]);
        assert_eq!(req(r"\d+ errors?"), Some(vec![" error".to_string()]));
        assert_eq!(
            req(r"(?i)remounting"),
            None,
            "case-insensitive: classes only"
        );
        assert_eq!(req(r"a*"), None);
    }

    #[test]
    fn relaxing_drops_anchors_so_a_prefixed_line_still_matches() {
        let relaxed = relax(parse(r"^Killed process \d+\z").unwrap());
        let re = regex_automata::meta::Regex::builder()
            .build_from_hir(&relaxed)
            .unwrap();
        assert!(re.is_match("Nov 22 19:20:17 node kernel: Killed process 12 (x)"));
    }

    #[test]
    fn the_last_line_of_a_multi_line_pattern() {
        let h = relax(
            parse(r"Hardware error from APEI Generic Hardware Error Source: \d+\n.*event severity: fatal")
                .unwrap(),
        );
        let last = last_line(&h, 2).unwrap();
        let re = regex_automata::meta::Regex::builder()
            .build_from_hir(&last)
            .unwrap();
        assert!(re.is_match("{1}[Hardware Error]: event severity: fatal"));
        assert!(!re.is_match("Hardware error from APEI Generic Hardware Error Source: 0"));
        // `\s` may match the newline itself: the shape proves nothing.
        assert!(last_line(&relax(parse(r"a\s+\nb").unwrap()), 2).is_none());
    }
}
