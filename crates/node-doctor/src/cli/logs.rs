//! `node-doctor logs`: the log monitor on its own — rules (default pack and NPD configs) over
//! the kernel ring, log files and the journal, printed as findings; `--follow` keeps reading.

use super::{EXIT_FINDINGS, EXIT_OK, Format, LogsArgs};
use anyhow::bail;
use node_doctor::finding::Finding;
use node_doctor::host::HostRoot;
use node_doctor::logs::file::{self, Follower, TimeFormat};
use node_doctor::logs::npd;
use node_doctor::logs::rules::{Matcher, RuleSet, RuleSpec};
use node_doctor::logs::{LogRecord, Source, journal, kmsg, pack};
use node_doctor::output::human;
use serde::Serialize;
use std::io::IsTerminal;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const LOGS_SCHEMA: &str = "node-doctor.logs/v1";

/// What was read from one source.
#[derive(Debug, Serialize)]
pub struct SourceReport {
    pub source: String,
    pub lines: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub lost: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Serialize)]
struct LogsDocument<'a> {
    schema: &'static str,
    sources: &'a [SourceReport],
    rules: usize,
    findings: &'a [Finding],
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The rules and the sources they run over.
fn plan(args: &LogsArgs) -> anyhow::Result<(Vec<RuleSpec>, Vec<Source>)> {
    let mut rules = if args.no_default_rules {
        Vec::new()
    } else {
        pack::default_rules()
    };
    let mut config_sources = Vec::new();
    for path in &args.rules {
        let c = npd::load(path)?;
        config_sources.push(c.source);
        rules.extend(c.rules);
    }
    if rules.is_empty() {
        bail!("no rules: --no-default-rules needs at least one --rules FILE");
    }
    let mut sources: Vec<Source> = args
        .sources
        .iter()
        .map(|s| Source::parse(s).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<_>>()?;
    if sources.is_empty() {
        sources = if config_sources.is_empty() {
            vec![Source::Kmsg]
        } else {
            config_sources
        };
    } else {
        // Sources named on the command line: every rule reads them, whatever source its
        // config was written for.
        for r in &mut rules {
            r.source = None;
        }
    }
    sources.dedup();
    Ok((rules, sources))
}

pub fn run(args: &LogsArgs) -> anyhow::Result<u8> {
    let (rules, sources) = plan(args)?;
    let set = RuleSet::compile(rules)?;
    let host = HostRoot::new(&args.root.root);
    let since_ms = args
        .since
        .map(|d| now_ms().saturating_sub(d.as_millis() as u64));
    if args.follow {
        return follow(&host, &set, &sources, since_ms, args);
    }
    let mut findings = Vec::new();
    let mut reports = Vec::new();
    for src in &sources {
        let mut m = Matcher::for_source(&set, Some(&src.label()));
        let mut report = SourceReport {
            source: src.label(),
            lines: 0,
            lost: 0,
            error: None,
        };
        let mut feed = |r: LogRecord| {
            if since_ms.is_some_and(|s| r.time_ms.is_some_and(|t| t < s)) {
                return;
            }
            m.feed(&r);
        };
        let result = read_once(&host, src, since_ms, args.time_format.into(), &mut feed);
        match result {
            Ok(lost) => report.lost = lost,
            Err(e) => report.error = Some(e),
        }
        report.lines = m.lines;
        findings.extend(m.findings("log-monitor", &src.label()));
        reports.push(report);
    }
    if reports.iter().all(|r| r.error.is_some()) {
        let errs: Vec<String> = reports.iter().filter_map(|r| r.error.clone()).collect();
        bail!("no source could be read: {}", errs.join("; "));
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let text = match args.format {
        Format::Json => {
            let doc = LogsDocument {
                schema: LOGS_SCHEMA,
                sources: &reports,
                rules: set.len(),
                findings: &findings,
            };
            let mut s = serde_json::to_string_pretty(&doc)?;
            s.push('\n');
            s
        }
        Format::Human => render_human(&reports, set.len(), &findings),
    };
    super::write_stdout(&text)?;
    let bar = args.fail_on.bar();
    Ok(if findings.iter().any(|f| f.severity >= bar) {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    })
}

fn render_human(reports: &[SourceReport], rules: usize, findings: &[Finding]) -> String {
    let style = human::Style {
        color: std::io::stdout().is_terminal(),
    };
    let mut out = String::new();
    let srcs: Vec<String> = reports
        .iter()
        .map(|r| match &r.error {
            Some(e) => format!("{} (unreadable: {e})", r.source),
            None if r.lost > 0 => format!("{} ({} lines, {} lost)", r.source, r.lines, r.lost),
            None => format!("{} ({} lines)", r.source, r.lines),
        })
        .collect();
    out.push_str(&format!(
        "node-doctor logs: {rules} rules over {}\n",
        srcs.join(", ")
    ));
    for f in findings {
        out.push('\n');
        human::render_finding(&mut out, f, &style);
    }
    out.push_str(&format!("\n{}\n", human::count_line(findings)));
    out
}

/// Reads a source once, start to end. Returns records lost (kmsg overwrites).
fn read_once(
    host: &HostRoot,
    src: &Source,
    since_ms: Option<u64>,
    format: TimeFormat,
    each: &mut dyn FnMut(LogRecord),
) -> Result<u64, String> {
    match src {
        Source::Kmsg => {
            let fd = kmsg::open(host)?;
            let mut next = None;
            kmsg::drain(&fd, kmsg::boot_wall_ms(), &mut next, |r| each(r.record))
        }
        Source::File { path, message } => {
            let extract = message_extractor(message.as_deref())?;
            let full = host.path(path);
            file::read_all(&full, format, |r| {
                if let Some(r) = extract(r) {
                    each(r)
                }
            })
            .map_err(|e| format!("{path}: {e}"))?;
            Ok(0)
        }
        Source::Journal(filter) => {
            journal::read(host, filter, since_ms, each)?;
            Ok(0)
        }
    }
}

/// NPD filelog's `message` regex: the first group of a match is the message; a line it does
/// not match is not a log message (skipped).
fn message_extractor(
    message: Option<&str>,
) -> Result<Box<dyn Fn(LogRecord) -> Option<LogRecord>>, String> {
    let Some(pattern) = message else {
        return Ok(Box::new(Some));
    };
    let re = regex::Regex::new(pattern).map_err(|e| format!("message regex {pattern:?}: {e}"))?;
    Ok(Box::new(move |mut r: LogRecord| {
        let m = re.captures(&r.text)?;
        let text = m.get(1).or(m.get(0))?.as_str().to_string();
        r.text = text;
        Some(r)
    }))
}

/// `--follow`: keep reading every source, print each finding as its rule matches (JSON: one
/// object per line). Runs until killed.
fn follow(
    host: &HostRoot,
    set: &RuleSet,
    sources: &[Source],
    since_ms: Option<u64>,
    args: &LogsArgs,
) -> anyhow::Result<u8> {
    enum State {
        Kmsg(std::os::fd::OwnedFd, Option<u64>),
        File(Follower, Box<dyn Fn(LogRecord) -> Option<LogRecord>>),
        Journal(journal::Filter, u64),
    }
    let format: TimeFormat = args.time_format.into();
    let start = now_ms();
    let mut states = Vec::new();
    for src in sources {
        states.push(match src {
            Source::Kmsg => State::Kmsg(kmsg::open(host).map_err(anyhow::Error::msg)?, None),
            // With --since, start at the beginning and let the time filter pick the lines.
            Source::File { path, message } => State::File(
                Follower::new(host.path(path), format, since_ms.is_some()),
                message_extractor(message.as_deref()).map_err(anyhow::Error::msg)?,
            ),
            Source::Journal(f) => State::Journal(f.clone(), since_ms.unwrap_or(start)),
        });
    }
    let mut matchers: Vec<Matcher> = sources
        .iter()
        .map(|s| Matcher::for_source(set, Some(&s.label())))
        .collect();
    let style = human::Style {
        color: std::io::stdout().is_terminal(),
    };
    let boot = kmsg::boot_wall_ms();
    // kmsg: from the start of the ring, skipping what is older than the lookback (default:
    // everything before now), so a restart does not miss what happened just before it.
    let lookback = since_ms.unwrap_or(start);
    loop {
        for (i, st) in states.iter_mut().enumerate() {
            let label = sources[i].label();
            let m = &mut matchers[i];
            let mut records = Vec::new();
            match st {
                State::Kmsg(fd, next) => {
                    let _ = kmsg::drain(fd, boot, next, |r| {
                        if r.record.time_ms.is_none_or(|t| t >= lookback) {
                            records.push(r.record)
                        }
                    });
                }
                State::File(f, extract) => {
                    let _ = f.poll(|r| {
                        if since_ms.is_none_or(|s| r.time_ms.is_none_or(|t| t >= s))
                            && let Some(r) = extract(r)
                        {
                            records.push(r)
                        }
                    });
                }
                State::Journal(filter, from) => {
                    let floor = *from;
                    let _ = journal::read(host, filter, Some(floor), |r| {
                        if r.time_ms.is_some_and(|t| t >= floor) {
                            records.push(r)
                        }
                    });
                    if let Some(t) = records.iter().filter_map(|r| r.time_ms).max() {
                        *from = t + 1;
                    }
                }
            }
            for r in records {
                for hit in m.feed(&r) {
                    if let Some(f) = m.finding_for(&hit, "log-monitor", &label) {
                        let line = match args.format {
                            Format::Json => serde_json::to_string(&f)? + "\n",
                            Format::Human => {
                                let mut s = String::new();
                                human::render_finding(&mut s, &f, &style);
                                s
                            }
                        };
                        super::write_stdout(&line)?;
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
