//! `node-doctor check`: sample (or replay), run the checks, render, pick the exit code.

use super::output::{stream_stdout, write_stdout};
use super::{CheckArgs, EXIT_FAILED, EXIT_FINDINGS, EXIT_OK, FailOn, Format};
use anyhow::{Context, bail};
use node_doctor_core::checks::{self, History, Needs};
use node_doctor_core::model::{Recording, Snapshot};
use node_doctor_core::render::{CheckView, human, json};
use node_doctor_host::{Host, sampler};
use std::path::Path;
use std::time::Instant;

/// Most bytes of a recording read.
const MAX_RECORDING: u64 = 1 << 30;

pub fn load_recording(path: &Path) -> anyhow::Result<Recording> {
    let name = path.display().to_string();
    let bytes = super::settings::read_user_file(path, MAX_RECORDING)
        .with_context(|| format!("{name}: cannot read snapshot"))?;
    let rec = Recording::from_slice(&name, &bytes)?;
    for r in &rec.repairs {
        eprintln!("node-doctor: {name}: repaired on load: {r}");
    }
    Ok(rec)
}

/// The host under `root`, refusing a directory that is no host root at all (no `proc/`):
/// checking nothing there would look like a healthy node.
pub fn open_host(root: &Path) -> anyhow::Result<Host> {
    // Probes that can block forever run in children of this very executable: a thread stuck
    // on a dead FUSE mount would keep the command from ever exiting. `/proc/self/exe` is our
    // own image (not the host root's), and still runs if the file was replaced meanwhile.
    let host = Host::open(root)
        .map_err(anyhow::Error::msg)?
        .probe_in_child("/proc/self/exe");
    if host.fs.read_dir("proc", 1).is_err() {
        bail!(
            "{} does not look like a host root: it has no proc/ directory (use the host's / or /host in a DaemonSet)",
            root.display()
        );
    }
    Ok(host)
}

/// Samples the host for `needs` within the run's deadline.
pub fn sample(
    root: &Path,
    needs: &Needs,
    args: &super::SampleArgs,
) -> anyhow::Result<Vec<Snapshot>> {
    let host = open_host(root)?;
    let deadline = Instant::now() + args.deadline;
    Ok(sampler::sample(&host, needs, args.window, deadline))
}

pub fn run(args: &CheckArgs) -> anyhow::Result<u8> {
    let alias: Vec<String> = args
        .runc_init_threshold
        .map(|d| format!("runc-init-hang.threshold={}ms", d.as_millis()))
        .into_iter()
        .collect();
    let config = super::settings::load(&args.settings, &alias)?;
    let selected = checks::select(&args.only, &config).map_err(anyhow::Error::msg)?;
    if selected.is_empty() {
        bail!("every selected check is disabled by the config");
    }
    let samples = match &args.from {
        Some(path) => load_recording(path)?.samples,
        None => sample(&args.root.root, &Needs::of(&selected), &args.sample)?,
    };
    let history = History::new(&samples).context("no samples")?;
    let report = sampler::run_checks(&selected, &history, &config);
    let view = CheckView::new(&history, &report);
    match args.format {
        Format::Json => stream_stdout(|w| json::write(w, &view))?,
        Format::Human => write_stdout(&human::render(&view, &super::style()))?,
    }
    if report.nothing_checked() {
        eprintln!(
            "node-doctor: nothing could be checked under {}: every check lacked its inputs (see \"unknown\")",
            history.current().root
        );
        return Ok(EXIT_FAILED);
    }
    let bar = args.fail_on.bar();
    let failing = report.findings.iter().any(|f| f.severity >= bar)
        || (args.fail_on == FailOn::Unknown && !report.unknown.is_empty());
    Ok(if failing { EXIT_FINDINGS } else { EXIT_OK })
}
