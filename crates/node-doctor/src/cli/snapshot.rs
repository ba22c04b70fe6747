//! `node-doctor snapshot`: the samples `check` would take, written for `check --from`.

use super::SnapshotArgs;
use anyhow::Context;
use node_doctor_core::checks::{self, Needs};
use node_doctor_core::config::Config;
use node_doctor_core::model::Recording;

pub fn run(args: &SnapshotArgs) -> anyhow::Result<u8> {
    let selected = checks::select(&args.only, &Config::default()).map_err(anyhow::Error::msg)?;
    let samples = super::check::sample(&args.root.root, &Needs::of(&selected), &args.sample)?;
    let rec = Recording::new(samples);
    super::output::write_output(&args.output, &rec.to_json())
        .with_context(|| format!("{}: cannot write snapshot", args.output.display()))?;
    if let Some(s) = rec.samples.last() {
        eprintln!(
            "wrote {} sample(s), {} processes, {} unreadable files, to {}",
            rec.samples.len(),
            s.process_list().len(),
            s.unavailable.len(),
            args.output.display()
        );
    }
    Ok(super::EXIT_OK)
}
