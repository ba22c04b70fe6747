//! `node-doctor logs`: the log monitor on its own — rules (default pack and NPD configs) over
//! the kernel ring, log files and the journal, printed as findings; `--follow` keeps reading
//! and prints JSON Lines envelopes (`finding`, `source_error`, `summary`).

use super::output::{stream_stdout, write_stdout};
use super::{EXIT_FINDINGS, EXIT_OK, Format, LogsArgs};
use anyhow::{Context, bail};
use node_doctor_core::model::Source;
use node_doctor_core::render::{human, json};
use node_doctor_core::rules::npd;
use node_doctor_core::rules::{RuleSet, RuleSpec, pack};
use node_doctor_host::Host;
use node_doctor_host::logmon::{Event, Monitor, Options};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Most bytes of an NPD config read.
const MAX_RULES_FILE: u64 = 4 << 20;

/// The rules and the sources they run over.
fn plan(args: &LogsArgs) -> anyhow::Result<(Vec<RuleSpec>, Vec<Source>)> {
    let mut rules = if args.no_default_rules {
        Vec::new()
    } else {
        pack::default_rules()
    };
    let mut config_sources = Vec::new();
    for path in &args.rules {
        let name = path.display().to_string();
        let text = super::settings::read_small_file(path, MAX_RULES_FILE)
            .with_context(|| format!("{name}: cannot read"))?;
        let c = npd::parse(&name, &text)?;
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
    Ok((rules, sources))
}

pub fn run(args: &LogsArgs) -> anyhow::Result<u8> {
    let (rules, sources) = plan(args)?;
    let set = Arc::new(RuleSet::compile(rules)?);
    let host = Host::open(&args.root.root).map_err(anyhow::Error::msg)?;
    let now = host.kernel.now_ms();
    let opts = Options {
        check: node_doctor_core::rules::LOG_MONITOR.into(),
        follow: args.follow,
        since_ms: args
            .since
            .map(|d| now.saturating_sub(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))),
        time_format: args.time_format.into(),
        strip_prefix: !args.no_strip_prefix,
        ..Options::default()
    };
    let mut monitor = Monitor::new(host, set, &sources, opts);
    if args.follow {
        return follow(&mut monitor, args);
    }
    // One pass over every source; its errors are in the source stats.
    let _source_errors_are_in_the_stats = monitor.poll();
    let stats = monitor.stats();
    if stats.iter().all(|s| s.error.is_some()) {
        let errs: Vec<String> = stats.iter().filter_map(|s| s.error.clone()).collect();
        bail!("no source could be read: {}", errs.join("; "));
    }
    let findings = monitor.findings();
    match args.format {
        // Streamed: hundreds of findings are as much JSON again as they hold (issue 12's
        // memory bar is for the whole run).
        Format::Json => {
            stream_stdout(|w| json::write_logs(w, &stats, monitor.rules(), &findings))?;
        }
        Format::Human => write_stdout(&human::render_logs(
            &stats,
            monitor.rules(),
            &findings,
            now,
            &super::style(),
        ))?,
    }
    let bar = args.fail_on.bar();
    Ok(if findings.iter().any(|f| f.severity >= bar) {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    })
}

/// `--follow`: keep reading every source, print each finding as its rule matches and every
/// source error, until SIGTERM or SIGINT; then a summary (JSON) and exit 0.
fn follow(monitor: &mut Monitor, args: &LogsArgs) -> anyhow::Result<u8> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handlers")?;
    }
    let style = super::style();
    let mut findings: u64 = 0;
    if args.format == Format::Json {
        let stats = monitor.stats();
        write_stdout(&json::line(&json::Line::Summary(json::Summary {
            schema: json::LOGS_SCHEMA,
            sources: &stats,
            rules: monitor.rules(),
            findings,
            phase: "start",
        })))?;
    }
    while !stop.load(Ordering::Relaxed) {
        for ev in monitor.poll() {
            let text = match (&ev, args.format) {
                (Event::Finding(f), Format::Json) => json::line(&json::Line::Finding(f)),
                (Event::SourceError(e), Format::Json) => json::line(&json::Line::SourceError(e)),
                (Event::Finding(f), Format::Human) => {
                    let mut s = String::new();
                    human::render_finding(&mut s, f, &style, None);
                    s
                }
                (Event::SourceError(e), Format::Human) => {
                    format!("SOURCE ERROR {}: {}\n", e.source, e.error)
                }
            };
            if matches!(ev, Event::Finding(_)) {
                findings = findings.saturating_add(1);
            }
            write_stdout(&text)?;
        }
        monitor.wait(Duration::from_millis(250));
    }
    if args.format == Format::Json {
        let stats = monitor.stats();
        write_stdout(&json::line(&json::Line::Summary(json::Summary {
            schema: json::LOGS_SCHEMA,
            sources: &stats,
            rules: monitor.rules(),
            findings,
            phase: "exit",
        })))?;
    }
    Ok(EXIT_OK)
}
