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
//!   `blocked for more than `, the strings runs of fixed parts spell: `I/O error, dev `,
//!   `critical medium error, dev `). When every rule has some, the filter is a multi-literal
//!   search (aho-corasick's Teddy, SIMD), each literal cut to the suffix starting at its
//!   rarest 4 bytes (Teddy's fingerprint; rarest in a sample of the log when there is
//!   one); otherwise it is the union of the relaxed patterns in one lazy DFA.
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
/// Shortest literal worth searching for: shorter ones occur on most lines (and Teddy, the
/// SIMD search, fingerprints a literal's first 4 bytes).
pub(super) const MIN_LITERAL: usize = 4;

/// Literals one of which every match of `h` contains; `None` when none is known.
pub(super) fn required(h: &Hir) -> Option<Vec<Vec<u8>>> {
    match h.kind() {
        HirKind::Literal(l) => Some(vec![l.0.to_vec()]),
        HirKind::Capture(c) => required(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => required(&r.sub),
        // The best of the parts' requirements, and of the strings runs of exact parts
        // spell together (`(?:I/O|critical medium) error, dev ` requires "I/O error, dev "
        // or "critical medium error, dev ", rarer than " error, dev " alone); the first of
        // equally good ones.
        HirKind::Concat(subs) => {
            let exacts: Vec<Option<Vec<Vec<u8>>>> = subs.iter().map(exact).collect();
            let mut cands: Vec<Vec<Vec<u8>>> = subs.iter().filter_map(required).collect();
            for start in 0..exacts.len() {
                let mut acc: Option<Vec<Vec<u8>>> = None;
                for e in exacts.get(start..).unwrap_or(&[]) {
                    let Some(e) = e else { break };
                    acc = Some(match acc {
                        None => e.clone(),
                        Some(a) => match product(&a, e) {
                            Some(p) => p,
                            None => break,
                        },
                    });
                    if let Some(a) = &acc {
                        cands.push(a.clone());
                    }
                }
            }
            cands.into_iter().fold(None, |best, set| match best {
                Some(b) if score(&b) >= score(&set) => Some(b),
                _ => Some(set),
            })
        }
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

/// The strings `h` matches, when it matches only a few fixed ones.
fn exact(h: &Hir) -> Option<Vec<Vec<u8>>> {
    match h.kind() {
        HirKind::Empty => Some(vec![Vec::new()]),
        HirKind::Literal(l) => Some(vec![l.0.to_vec()]),
        HirKind::Capture(c) => exact(&c.sub),
        HirKind::Alternation(subs) => {
            let mut all = Vec::new();
            for s in subs {
                all.extend(exact(s)?);
                if all.len() > MAX_LITERALS {
                    return None;
                }
            }
            Some(all)
        }
        HirKind::Concat(subs) => subs
            .iter()
            .try_fold(vec![Vec::new()], |acc, s| product(&acc, &exact(s)?)),
        _ => None,
    }
}

/// Every string of `a` followed by every string of `b`, if not too many.
fn product(a: &[Vec<u8>], b: &[Vec<u8>]) -> Option<Vec<Vec<u8>>> {
    if a.len().saturating_mul(b.len()) > MAX_LITERALS {
        return None;
    }
    let mut out = Vec::with_capacity(a.len().saturating_mul(b.len()));
    for x in a {
        for y in b {
            let mut s = x.clone();
            s.extend_from_slice(y);
            out.push(s);
        }
    }
    Some(out)
}

/// How good a requirement is for a search: long literals are rare in logs (up to a point:
/// past 16 bytes length hardly matters), few literals keep the search fast (Teddy takes 64
/// at most); a literal shorter than [`MIN_LITERAL`] is nearly useless. Ties go to the longer.
fn score(set: &[Vec<u8>]) -> (i64, usize) {
    let short = shortest(set);
    if short < MIN_LITERAL {
        return (
            i64::try_from(short).unwrap_or(0).saturating_sub(1000),
            short,
        );
    }
    let len = i64::try_from(short.min(16)).unwrap_or(16);
    let key = len
        .saturating_mul(10)
        .saturating_sub(i64::try_from(set.len()).unwrap_or(i64::MAX));
    (key, short)
}

/// The length of the shortest literal of a set.
pub(super) fn shortest(set: &[Vec<u8>]) -> usize {
    set.iter().map(Vec::len).min().unwrap_or(0)
}

/// The names of the pattern's named groups.
pub(super) fn capture_names(h: &Hir, out: &mut Vec<String>) {
    match h.kind() {
        HirKind::Capture(c) => {
            if let Some(n) = &c.name {
                out.push(n.to_string());
            }
            capture_names(&c.sub, out);
        }
        HirKind::Repetition(r) => capture_names(&r.sub, out),
        HirKind::Concat(v) | HirKind::Alternation(v) => {
            for s in v {
                capture_names(s, out);
            }
        }
        _ => {}
    }
}

/// How common a byte is in log text, roughly (higher: more common): spaces and lowercase
/// letters everywhere, digits and `:./-=` in every stamp and path, upper case and most
/// punctuation rare.
fn rank(b: u8) -> u32 {
    match b {
        b' ' => 255,
        b'e' => 230,
        b't' | b'a' | b'o' | b'i' | b'n' | b's' | b'r' => 210,
        b'0'..=b'9' => 180,
        b'a'..=b'z' => 160,
        b':' | b'.' | b'/' => 160,
        b'-' | b'=' | b',' | b'"' | b'_' => 130,
        b'(' | b')' | b'[' | b']' => 110,
        b'A'..=b'Z' => 70,
        _ => 60,
    }
}

/// The part of a required literal a buffer search should look for: a suffix (any part of a
/// required literal is required too) whose first 4 bytes — the fingerprint Teddy checks
/// before it verifies — are the rarest, keeping 12 bytes or more so the suffix stays
/// selective. A literal starting with a space or a common word would send the search to
/// verify at nearly every word of every line.
///
/// Rarest in `sample`, a stretch of the text to search (a few KiB of the log about to be
/// read), when there is one, and then the suffix may be as short as 8 bytes if the sample
/// holds it less often than every longer one; ties, and an empty sample, go to the rarer
/// bytes of log text in general by [`rank`]. The counts come from one pass over the sample
/// for all the literals ([`Seen`]). Those ranks are a guess a log can prove wrong — one where
/// `EXT4-fs (sda1): mounted` is every twentieth line sends a search for `EXT4-fs error `
/// from `EXT4` to verify on each of them, 100000 times over 2M lines (docs/performance.md,
/// 2026-12-03, seventh session), where `fs e` occurs only in the lines that match.
pub(super) fn window_in(lit: &[u8], seen: &Seen) -> Vec<u8> {
    const FP: usize = 4;
    // Without a sample a suffix keeps 12 bytes, to stay selective; a sample can show a
    // shorter one (8 bytes or more) to be rarer, and only then is it taken.
    const KEEP: usize = 12;
    const KEEP_SEEN: usize = 8;
    let last = |keep: usize| lit.len().saturating_sub(keep.max(FP).min(lit.len()));
    let window = |s: usize| lit.get(s..s.saturating_add(FP));
    let rarity =
        |s: usize| -> u32 { window(s).map_or(u32::MAX, |w| w.iter().map(|&b| rank(b)).sum()) };
    let count = |s: usize| window(s).map_or(0, |w| seen.count(w));
    let reach = if seen.sampled {
        last(KEEP_SEEN)
    } else {
        last(KEEP)
    };
    let best = (0..=reach)
        .min_by_key(|&s| (count(s), s > last(KEEP), rarity(s), s))
        .unwrap_or(0);
    lit.get(best..).unwrap_or(lit).to_vec()
}

/// How often each 4-byte window of some literals, and each 3-byte one, occurs in a sample of
/// the text: one pass over the sample whatever the number of literals (a count per window
/// and literal was 8 % of a one-shot run of the default pack over 200000 lines).
#[derive(Debug, Default)]
pub(super) struct Seen {
    /// Whether there was a sample (else every count is 0 and the ranks decide).
    sampled: bool,
    /// The sample's length.
    len: usize,
    /// The 4-byte windows (as little-endian u32), sorted, with their counts.
    counts: Vec<(u32, usize)>,
    /// The same for the 3-byte windows.
    counts3: Vec<(u32, usize)>,
}

impl Seen {
    pub(super) fn of(lits: &[Vec<u8>], sample: &[u8]) -> Seen {
        if sample.is_empty() {
            return Seen::default();
        }
        let sorted = |n: usize| {
            let mut keys: Vec<u32> = lits.iter().flat_map(|l| l.windows(n).map(key)).collect();
            keys.sort_unstable();
            keys.dedup();
            keys.into_iter()
                .map(|k| (k, 0))
                .collect::<Vec<(u32, usize)>>()
        };
        let (mut counts, mut counts3) = (sorted(4), sorted(3));
        // Most sample positions start with 2 bytes no window starts with: a table of those
        // skips the search for them.
        let mut first2 = vec![false; 1 << 16];
        for (k, _) in counts.iter().chain(&counts3) {
            if let Some(f) = first2.get_mut((k & 0xffff) as usize) {
                *f = true;
            }
        }
        let bump = |counts: &mut Vec<(u32, usize)>, k: u32| {
            if let Ok(i) = counts.binary_search_by_key(&k, |c| c.0)
                && let Some(c) = counts.get_mut(i)
            {
                c.1 = c.1.saturating_add(1);
            }
        };
        for (i, w) in sample.windows(3).enumerate() {
            let k3 = key(w);
            if !first2.get((k3 & 0xffff) as usize).copied().unwrap_or(false) {
                continue;
            }
            bump(&mut counts3, k3);
            if let Some(w4) = sample.get(i..i.saturating_add(4)) {
                bump(&mut counts, key(w4));
            }
        }
        Seen {
            sampled: true,
            len: sample.len(),
            counts,
            counts3,
        }
    }

    fn count(&self, w: &[u8]) -> usize {
        let table = if w.len() == 3 {
            &self.counts3
        } else {
            &self.counts
        };
        let k = key(w);
        table
            .binary_search_by_key(&k, |c| c.0)
            .ok()
            .and_then(|i| table.get(i))
            .map_or(0, |c| c.1)
    }
}

/// Bytes of a literal a search with [`heads`] looks for.
pub(super) const HEAD: usize = 3;

/// Most literals searched for by their heads: one per bucket of Teddy's (slim, 8 buckets).
const HEADS_MAX: usize = 8;

/// For a multi-literal search over `windows` (from [`window_in`]): where in each its rarest
/// 3 bytes in the sample start, when a search for those 3 bytes (the rest of the window
/// checked where they occur) is worth it; None to search for the windows themselves.
///
/// Teddy, the SIMD search, fingerprints as many of each literal's first bytes as the
/// shortest literal has, up to 4, and a shorter fingerprint is a faster scan: over a 235 MB
/// log 15 ms with 3 bytes against 19.5 ms with 4 (docs/performance.md, 2026-12-04, eighth
/// session). The price is a check at each place the 3 bytes occur without the rest of the
/// window, and Teddy's own checks where its fingerprint matches by chance. So heads are
/// searched for only when they are few, [`HEADS_MAX`], and the sample shows them rare: no
/// more occurrences than the 4-byte fingerprints plus one per 8 KiB of text. With many
/// (the default pack's 95: 1.8 times slower searched by its heads, where the sample showed
/// them as rare as its windows; docs/performance.md, ninth session) each of Teddy's 8
/// buckets (slim Teddy, up to 32 literals a group) fingerprints several, by 3 bytes a
/// much looser mask than by 4.
pub(super) fn heads(windows: &[Vec<u8>], seen: &Seen) -> Option<Vec<usize>> {
    if !seen.sampled || windows.len() > HEADS_MAX || windows.iter().any(|w| w.len() <= HEAD) {
        return None;
    }
    let mut offsets = Vec::with_capacity(windows.len());
    let (mut hits3, mut hits4) = (0usize, 0usize);
    let mut heads_seen: Vec<&[u8]> = Vec::new();
    let mut prints_seen: Vec<&[u8]> = Vec::new();
    for w in windows {
        let o = (0..=w.len().saturating_sub(HEAD))
            .min_by_key(|&o| {
                (
                    w.get(o..o.saturating_add(HEAD))
                        .map_or(0, |h| seen.count(h)),
                    o,
                )
            })
            .unwrap_or(0);
        let head = w.get(o..o.saturating_add(HEAD)).unwrap_or(w);
        if !heads_seen.contains(&head) {
            heads_seen.push(head);
            hits3 = hits3.saturating_add(seen.count(head));
        }
        // Each fingerprint counted once, as each head is.
        let print = w.get(..4).unwrap_or(w);
        if !prints_seen.contains(&print) {
            prints_seen.push(print);
            hits4 = hits4.saturating_add(seen.count(print));
        }
        offsets.push(o);
    }
    (hits3 <= hits4.saturating_add(seen.len / 8192)).then_some(offsets)
}

/// A 4-byte window as a number (shorter: zero-padded).
fn key(w: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    for (d, s) in b.iter_mut().zip(w) {
        *d = *s;
    }
    u32::from_le_bytes(b)
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

    fn window_in_ranks(lit: &[u8]) -> Vec<u8> {
        window_in(lit, &Seen::default())
    }

    fn window_by(lit: &[u8], sample: &[u8]) -> Vec<u8> {
        window_in(lit, &Seen::of(&[lit.to_vec()], sample))
    }

    #[test]
    fn fixed_parts_spell_rarer_literals_and_searches_start_at_rare_bytes() {
        let mut io = req(r"(?:^|: )(?:I/O|critical medium) error, dev (?P<d>\S+), sector").unwrap();
        io.sort();
        assert_eq!(io, vec!["I/O error, dev ", "critical medium error, dev "]);
        // A suffix of 12 bytes or more: found in no line the whole literal is not in.
        for (lit, noise) in [
            (
                &b"has been shut down"[..],
                &b"nf_conntrack: default automatic helper assignment has been turned off"[..],
            ),
            (
                b": resource temporarily unavailable",
                b"IPVS: rr: TCP 10.96.0.42:443 - no destination available",
            ),
        ] {
            let w = window_in_ranks(lit);
            assert!(lit.ends_with(&w) && w.len() >= 12.min(lit.len()), "{w:?}");
            assert!(
                memchr::memmem::find(noise, &w).is_none(),
                "{:?}",
                String::from_utf8_lossy(&w)
            );
        }
        assert_eq!(window_in_ranks(b"BUG: "), b"BUG: ".to_vec());
    }

    #[test]
    fn a_sample_of_the_log_moves_the_search_off_a_fingerprint_it_is_full_of() {
        // By the ranks alone, `EXT4-fs error ` is searched from `EXT4` (capitals are rare).
        assert_eq!(
            window_in_ranks(b"EXT4-fs error "),
            b"EXT4-fs error ".to_vec()
        );
        // A log of mounts has `EXT4` on many lines and `fs e` only where the literal is.
        let mut sample = Vec::new();
        for i in 0..50 {
            sample.extend_from_slice(
                format!(
                    "kernel: [{i}.0] EXT4-fs (sda{i}): mounted filesystem with ordered data mode\n"
                )
                .as_bytes(),
            );
        }
        sample.extend_from_slice(b"kernel: [9.0] EXT4-fs error (device sda1): bad block\n");
        let w = window_by(b"EXT4-fs error ", &sample);
        assert_eq!(w, b"fs error ".to_vec());
        assert_eq!(memchr::memmem::find_iter(&sample, &w[..4]).count(), 1);
        // Where the sample has none of the windows, the ranks decide, as without one.
        assert_eq!(
            window_by(b"EXT4-fs error ", b"nothing like it\n"),
            window_in_ranks(b"EXT4-fs error ")
        );
    }

    #[test]
    fn a_few_literals_are_searched_by_their_rarest_three_bytes_when_the_sample_shows_them_rare() {
        let windows = vec![b"Killed process ".to_vec(), b"fs error ".to_vec()];
        let mut sample = Vec::new();
        for i in 0..50 {
            sample.extend_from_slice(format!("kernel: audit process {i} started\n").as_bytes());
        }
        sample.extend_from_slice(b"kernel: Killed process 1 (x)\n");
        let seen = Seen::of(&windows, &sample);
        // `Kil` once (the line that matches), `pro`..`ss ` on every line; no trigram of
        // `fs error ` is in the sample: the first wins the tie.
        assert_eq!(heads(&windows, &seen), Some(vec![0, 0]));
        // A sample with `Kil` and all of `fs error ` but its last space: `ill`, `or `.
        let rarer = Seen::of(&windows, b"Kil proc fs error");
        assert_eq!(heads(&windows, &rarer), Some(vec![1, 6]));
        // No sample, too many literals: the windows themselves.
        assert_eq!(heads(&windows, &Seen::default()), None);
        let many: Vec<Vec<u8>> = (0..9)
            .map(|i| format!("literal {i} here").into_bytes())
            .collect();
        assert_eq!(heads(&many, &Seen::of(&many, &sample)), None);
        // Every trigram of `Killed` in the sample, none of its 4-byte windows: its heads
        // would be checked more often than its windows.
        let killed = vec![b"Killed".to_vec()];
        assert_eq!(
            heads(&killed, &Seen::of(&killed, b"Kilo illo lleo ledo")),
            None
        );
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
