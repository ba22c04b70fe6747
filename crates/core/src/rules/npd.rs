//! node-problem-detector system-log-monitor configs, so a cluster can switch without
//! rewriting its rules: `plugin` (kmsg, filelog, journald), `logPath`, `lookback`,
//! `pluginConfig` (filelog's `message` extractor, journald's `source` identifier),
//! `source`, `conditions`, and `rules` with `type`/`condition`/`reason`/`pattern`.
//!
//! NPD matches a pattern against the end of its log buffer (it appends `\z`), so do we.
//! NPD has no severities: permanent rules load as critical, temporary ones as warning,
//! unless a rule carries node-doctor's optional `severity`.

use super::{RuleError, RuleKind, RuleSet, RuleSpec};
use crate::finding::Severity;
use crate::model::log::{JournalFilter as Filter, Source};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawConfig {
    plugin: String,
    #[serde(default)]
    plugin_config: Option<RawPluginConfig>,
    #[serde(default)]
    log_path: Option<String>,
    #[serde(default)]
    lookback: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    conditions: Vec<RawCondition>,
    rules: Vec<RawRule>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawPluginConfig {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    source: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawCondition {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Debug, Deserialize)]
struct RawRule {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    condition: Option<String>,
    reason: String,
    pattern: String,
    /// node-doctor extension.
    #[serde(default)]
    severity: Option<Severity>,
    /// node-doctor extension: a stable name for the rule.
    #[serde(default)]
    name: Option<String>,
    /// node-doctor extension: a counter rule (NPD's log-counter): fire at `count` matches
    /// within `window` ("20m").
    #[serde(default)]
    count: Option<u64>,
    #[serde(default)]
    window: Option<String>,
}

/// A loaded config: its source, how far back to look, its rules.
#[derive(Debug)]
pub struct NpdConfig {
    pub file: String,
    pub source: Source,
    pub lookback_ms: Option<u64>,
    pub rules: Vec<RuleSpec>,
}

#[derive(Debug, thiserror::Error)]
pub enum NpdError {
    #[error("{file}: not an NPD log monitor config: {error}")]
    Parse { file: String, error: String },
    #[error("{file}: {error}")]
    Invalid { file: String, error: String },
    #[error("{file}: {0}", file = .1)]
    Rule(RuleError, String),
}

pub fn parse(file: &str, text: &str) -> Result<NpdConfig, NpdError> {
    let raw: RawConfig = serde_json::from_str(text).map_err(|e| NpdError::Parse {
        file: file.into(),
        error: e.to_string(),
    })?;
    let invalid = |error: String| NpdError::Invalid {
        file: file.into(),
        error,
    };
    let pc = raw.plugin_config.unwrap_or_default();
    let source = match raw.plugin.as_str() {
        "kmsg" => Source::Kmsg,
        "filelog" => Source::File {
            path: raw
                .log_path
                .clone()
                .ok_or_else(|| invalid("plugin filelog needs logPath".into()))?,
            message: pc.message,
        },
        "journald" => Source::Journal(match pc.source {
            Some(i) => Filter::Identifier(i),
            None => Filter::All,
        }),
        other => {
            return Err(invalid(format!(
                "unknown plugin {other:?} (kmsg, filelog, journald)"
            )));
        }
    };
    let lookback_ms = match raw.lookback.as_deref() {
        None | Some("") => None,
        Some(l) => Some(
            crate::config::duration_ms(l).map_err(|e| invalid(format!("lookback {l:?}: {e}")))?,
        ),
    };
    let label = raw.source.unwrap_or_else(|| raw.plugin.clone());
    let bound_to = source.label();
    let declared: Vec<String> = raw.conditions.into_iter().map(|c| c.kind).collect();
    let mut rules = Vec::with_capacity(raw.rules.len());
    for (i, r) in raw.rules.into_iter().enumerate() {
        let kind = match r.kind.as_str() {
            "temporary" => RuleKind::Temporary,
            "permanent" => RuleKind::Permanent,
            other => {
                return Err(invalid(format!(
                    "rule {i} ({}): type {other:?} is neither temporary nor permanent",
                    r.reason
                )));
            }
        };
        if kind == RuleKind::Permanent {
            match &r.condition {
                None => {
                    return Err(invalid(format!(
                        "rule {i} ({}): a permanent rule needs a condition",
                        r.reason
                    )));
                }
                Some(c) if !declared.is_empty() && !declared.contains(c) => {
                    return Err(invalid(format!(
                        "rule {i} ({}): condition {c:?} is not among the config's conditions",
                        r.reason
                    )));
                }
                _ => {}
            }
        }
        let name = r.name.unwrap_or_else(|| format!("{label}/{}", r.reason));
        let count = match (r.count, r.window.as_deref()) {
            (None, None) => None,
            (Some(n), Some(w)) if n > 0 => Some((
                n,
                crate::config::duration_ms(w)
                    .map_err(|e| invalid(format!("rule {i} ({}): window {w:?}: {e}", r.reason)))?,
            )),
            _ => {
                return Err(invalid(format!(
                    "rule {i} ({}): a counter rule needs both count (> 0) and window",
                    r.reason
                )));
            }
        };
        let severity = r.severity.unwrap_or(match kind {
            RuleKind::Permanent => Severity::Critical,
            RuleKind::Temporary => Severity::Warning,
        });
        let mut spec = RuleSpec::event(&name, &r.reason, &r.pattern, severity);
        spec.kind = kind;
        spec.condition = if kind == RuleKind::Permanent {
            r.condition
        } else {
            None
        };
        spec.anchored_end = true;
        spec.count = count;
        spec.source = Some(bound_to.clone());
        // NPD's lookback: what its watcher reads of the log before now.
        spec.lookback_ms = lookback_ms;
        rules.push(spec);
    }
    // Compile now, so a pattern RE2 cannot express is reported with its rule at load time.
    RuleSet::compile(rules.clone()).map_err(|e| NpdError::Rule(e, file.into()))?;
    Ok(NpdConfig {
        file: file.into(),
        source,
        lookback_ms,
        rules,
    })
}

/// For an NPD `message` extractor of the usual shape `PREFIX(.*)` (kernel-monitor's
/// `kernel: \[.*\] (.*)`): PREFIX alone, as a pattern, when its leftmost-first match ends
/// where the captured message begins. Then the message is the line after `PREFIX`'s match,
/// found by one search without captures (a lazy DFA) instead of a capturing search per line
/// (a bounded backtracker, O(pattern × line): most of the extractor's cost). Exact: the
/// trailing `(.*)` matches any rest of a line (lines hold no `\n`), so the whole pattern's
/// leftmost-first match is PREFIX's own followed by the rest. `None` for any other shape
/// (a capture inside PREFIX, a lazy or bounded last group, an alternation around it), which
/// keeps the capturing search.
pub fn message_prefix(pattern: &str) -> Option<String> {
    use regex_syntax::hir::{Class, Hir, HirKind};
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()?;
    let HirKind::Concat(parts) = hir.kind() else {
        return None;
    };
    let (last, prefix) = parts.split_last()?;
    let HirKind::Capture(cap) = last.kind() else {
        return None;
    };
    let HirKind::Repetition(rep) = cap.sub.kind() else {
        return None;
    };
    if cap.index != 1 || rep.min != 0 || rep.max.is_some() || !rep.greedy {
        return None;
    }
    // `.` (every byte but `\n`) or `(?s:.)` (every byte).
    let HirKind::Class(Class::Bytes(class)) = rep.sub.kind() else {
        return None;
    };
    let ranges: Vec<(u8, u8)> = class
        .ranges()
        .iter()
        .map(|r| (r.start(), r.end()))
        .collect();
    if ranges != [(0, 0xff)] && ranges != [(0, b'\n' - 1), (b'\n' + 1, 0xff)] {
        return None;
    }
    if prefix
        .iter()
        .any(|h| h.properties().explicit_captures_len() > 0)
    {
        return None;
    }
    // The printer writes Unicode-mode syntax (a `(?u:\b)` prints as `\b`): the prefix is
    // kept only if it parses back, in the extractor's mode, to the same expression.
    let prefix = Hir::concat(prefix.to_vec());
    let printed = prefix.to_string();
    let again = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(&printed)
        .ok()?;
    (again == prefix).then_some(printed)
}

#[cfg(test)]
mod tests {
    use super::super::Matcher;
    use super::*;
    use crate::model::log::LogRecord;

    /// The shape of NPD's shipped kernel monitor config (our own equivalent rules).
    const KERNEL: &str = r#"{
        "plugin": "kmsg",
        "logPath": "/dev/kmsg",
        "lookback": "5m",
        "bufferSize": 10,
        "source": "kernel-monitor",
        "metricsReporting": true,
        "conditions": [
            {"type": "KernelDeadlock", "reason": "KernelHasNoDeadlock", "message": "kernel has no deadlock"},
            {"type": "ReadonlyFilesystem", "reason": "FilesystemIsNotReadOnly", "message": "Filesystem is not read-only"}
        ],
        "rules": [
            {"type": "temporary", "reason": "OOMKilling", "pattern": "Killed process \\d+ (.+) total-vm:\\d+kB, anon-rss:\\d+kB, file-rss:\\d+kB.*"},
            {"type": "temporary", "reason": "TaskHung", "pattern": "task [\\S ]+:\\w+ blocked for more than \\w+ seconds\\."},
            {"type": "permanent", "condition": "KernelDeadlock", "reason": "DockerHung", "pattern": "task docker:\\w+ blocked for more than \\w+ seconds\\."},
            {"type": "permanent", "condition": "ReadonlyFilesystem", "reason": "FilesystemIsReadOnly", "pattern": "Remounting filesystem read-only"}
        ]
    }"#;

    #[test]
    fn kernel_monitor_shape_loads_and_matches() {
        let c = parse("kernel-monitor.json", KERNEL).unwrap();
        assert_eq!(c.source, Source::Kmsg);
        assert_eq!(c.lookback_ms, Some(300_000));
        assert_eq!(c.rules.len(), 4);
        assert_eq!(c.rules[2].condition.as_deref(), Some("KernelDeadlock"));
        assert_eq!(c.rules[2].severity, Severity::Critical);
        assert_eq!(c.rules[0].name, "kernel-monitor/OOMKilling");
        let set = std::sync::Arc::new(RuleSet::compile(c.rules).unwrap());
        let mut m = Matcher::new(&set);
        m.feed(&LogRecord::text(
            "INFO: task docker:1101 blocked for more than 120 seconds.",
        ));
        m.feed(&LogRecord::text(
            "Killed process 2592 (java) total-vm:7517212kB, anon-rss:6291456kB, file-rss:0kB",
        ));
        let f = m.findings("log-monitor", "kmsg");
        let reasons: Vec<&str> = f
            .iter()
            .map(|f| f.log.as_ref().unwrap().reason.as_str())
            .collect();
        assert!(
            reasons.contains(&"DockerHung")
                && reasons.contains(&"TaskHung")
                && reasons.contains(&"OOMKilling"),
            "{reasons:?}"
        );
        let deadlock = f
            .iter()
            .find(|f| f.log.as_ref().unwrap().reason == "DockerHung")
            .unwrap();
        assert_eq!(deadlock.log.as_ref().unwrap().kind, RuleKind::Permanent);
        assert_eq!(
            deadlock.log.as_ref().unwrap().condition.as_deref(),
            Some("KernelDeadlock")
        );
    }

    #[test]
    fn counter_extension_and_source_binding() {
        let c = parse(
            "systemd-monitor-counter.json",
            r#"{"plugin": "journald", "pluginConfig": {"source": "systemd"}, "source": "systemd-monitor",
                "conditions": [{"type": "FrequentKubeletRestart"}],
                "rules": [{"type": "permanent", "condition": "FrequentKubeletRestart", "reason": "FrequentKubeletRestart",
                           "pattern": "Started Kubernetes kubelet.", "count": 5, "window": "20m"}]}"#,
        )
        .unwrap();
        assert_eq!(c.rules[0].count, Some((5, 1_200_000)));
        assert_eq!(c.rules[0].source.as_deref(), Some("journal-id:systemd"));
        let e = parse(
            "x.json",
            r#"{"plugin": "kmsg", "rules": [{"type": "temporary", "reason": "R", "pattern": "x", "count": 5}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("needs both count (> 0) and window"), "{e}");
    }

    #[test]
    fn filelog_and_journald_shapes() {
        let c = parse(
            "docker-monitor-filelog.json",
            r#"{"plugin": "filelog", "pluginConfig": {"timestamp": "^time=\"(\\S*)\"", "message": "msg=\"([^\n]*)\"", "timestampFormat": "2006-01-02T15:04:05.999999999-07:00"},
                "logPath": "/var/log/docker.log", "lookback": "5m", "bufferSize": 10, "source": "docker-monitor", "conditions": [],
                "rules": [{"type": "temporary", "reason": "CorruptDockerImage", "pattern": "Error trying v2 registry: failed to register layer: rename /var/lib/docker/image/(.+) /var/lib/docker/image/(.+): directory not empty.*"}]}"#,
        )
        .unwrap();
        assert!(
            matches!(c.source, Source::File { ref path, message: Some(_) } if path == "/var/log/docker.log")
        );
        let c = parse(
            "docker-monitor.json",
            r#"{"plugin": "journald", "pluginConfig": {"source": "dockerd"}, "logPath": "/var/log/journal", "lookback": "5m",
                "bufferSize": 10, "source": "docker-monitor", "conditions": [],
                "rules": [{"type": "temporary", "reason": "CorruptDockerImage", "pattern": "Error trying v2 registry: .*"}]}"#,
        )
        .unwrap();
        assert_eq!(
            c.source,
            Source::Journal(Filter::Identifier("dockerd".into()))
        );
    }

    #[test]
    fn garbage_and_unsupported_patterns_are_clear_errors() {
        let e = parse("x.json", "not json").unwrap_err().to_string();
        assert!(
            e.starts_with("x.json: not an NPD log monitor config"),
            "{e}"
        );
        let e = parse("x.json", r#"{"plugin": "syslog", "rules": []}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown plugin \"syslog\""), "{e}");
        let e = parse(
            "x.json",
            r#"{"plugin": "kmsg", "source": "kernel-monitor", "rules": [{"type": "temporary", "reason": "Lookahead", "pattern": "foo(?=bar)"}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("rule \"kernel-monitor/Lookahead\""), "{e}");
        assert!(e.contains("not valid RE2 syntax"), "{e}");
        let e = parse(
            "x.json",
            r#"{"plugin": "kmsg", "conditions": [{"type": "A"}], "rules": [{"type": "permanent", "condition": "B", "reason": "R", "pattern": "x"}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("not among the config's conditions"), "{e}");
    }

    /// The prefix search gives the captured message exactly, line for line, and other shapes
    /// keep the capturing search.
    #[test]
    fn a_trailing_rest_group_is_found_by_its_prefix_alone() {
        let build = |p: &str| {
            regex::bytes::RegexBuilder::new(p)
                .unicode(false)
                .build()
                .unwrap()
        };
        let lines: &[&[u8]] = &[
            b"Dec  2 04:31:00 host kernel: [12345.678901] EXT4-fs error (device sda1): x",
            b"Dec  2 04:31:00 host kernel: [1.0] a] b] c",
            b"kernel: [] ",
            b"no kernel here",
            b"kernel: [x] \xff\xfe bytes",
            b"",
        ];
        for pattern in [
            r"kernel: \[.*\] (.*)",
            r"^.{15} \S+ kernel: \[[^]]*\] (.*)",
            r"(?s)kernel: (.*)",
        ] {
            let prefix = message_prefix(pattern).unwrap();
            let (whole, prefix) = (build(pattern), build(&prefix));
            for line in lines {
                let captured = whole
                    .captures(line)
                    .and_then(|c| c.get(1))
                    .map(|m| m.as_bytes());
                let after = prefix.find(line).map(|m| &line[m.end()..]);
                assert_eq!(
                    captured,
                    after,
                    "{pattern} on {:?}",
                    String::from_utf8_lossy(line)
                );
            }
        }
        for other in [
            r"(a)(.*)",
            r"x(.*?)",
            r"x(.+)",
            r"x(.{0,9})",
            r"x(\w*)",
            r"x(.*)y",
            "x",
            r"a|b(.*)",
            r"(.*)",
            r"(?u:\b)kernel: (.*)",
        ] {
            assert_eq!(message_prefix(other), None, "{other}");
        }
    }
}
