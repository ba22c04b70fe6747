//! `node-doctor check`: sample (or replay), run the checks, render, pick the exit code.

use super::{CheckArgs, EXIT_FINDINGS, EXIT_OK, Format};
use anyhow::{Context, bail};
use node_doctor::checks::{self, CheckDef, History, Settings};
use node_doctor::host::HostRoot;
use node_doctor::output::{HostSection, human, json};
use node_doctor::snapshot::Recording;
use std::io::IsTerminal;
use std::time::Instant;

pub fn selected(only: &[String]) -> anyhow::Result<Vec<&'static CheckDef>> {
    if only.is_empty() {
        return Ok(checks::all().iter().collect());
    }
    only.iter()
        .map(|id| match checks::by_id(id) {
            Some(c) => Ok(c),
            None => bail!("unknown check id {id:?}; `node-doctor checks` lists them"),
        })
        .collect()
}

pub fn run(args: &CheckArgs) -> anyhow::Result<u8> {
    let checks = selected(&args.only)?;
    let samples = match &args.from {
        Some(path) => Recording::load(path)?.samples,
        None => super::snapshot::sample(&HostRoot::new(&args.root.root), &args.sample),
    };
    let history = History::new(&samples)
        .context("no samples")?
        .with_settings(Settings {
            runc_init_threshold_secs: args.runc_init_threshold.as_secs(),
        });
    let report = checks::run(
        &checks,
        &history,
        Some(Instant::now() + args.sample.deadline),
    );
    let host = HostSection::new(&samples, &report);
    let text = match args.format {
        Format::Json => json::render(&host, &report.findings, &report.unknown),
        Format::Human => {
            let style = human::Style {
                color: std::io::stdout().is_terminal(),
            };
            human::render(&host, &report.findings, &report.unknown, &style)
        }
    };
    super::write_stdout(&text)?;
    let bar = args.fail_on.bar();
    Ok(if report.findings.iter().any(|f| f.severity >= bar) {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    })
}
