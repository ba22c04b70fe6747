//! `node-doctor snapshot` and the sampling shared with `check`.

use super::{SampleArgs, SnapshotArgs};
use node_doctor::host::HostRoot;
use node_doctor::snapshot::{CollectOptions, Recording, Snapshot, collect};
use std::time::Instant;

/// Takes one sample, or two `window` apart so rates exist in one-shot mode.
pub fn sample(host: &HostRoot, args: &SampleArgs) -> Vec<Snapshot> {
    let deadline = Instant::now() + args.deadline + args.window;
    let last = CollectOptions {
        deadline: Some(deadline),
        scan_pipes: true,
        read_kernel_log: true,
    };
    if args.window.is_zero() {
        return vec![collect(host, &last)];
    }
    // The pipe scan touches every fd of every process and the kernel log is the whole ring;
    // the checks that use them look at the current sample only, so the first sample skips them.
    let first = collect(
        host,
        &CollectOptions {
            scan_pipes: false,
            read_kernel_log: false,
            ..last.clone()
        },
    );
    std::thread::sleep(args.window);
    vec![first, collect(host, &last)]
}

pub fn run(args: &SnapshotArgs) -> anyhow::Result<u8> {
    let host = HostRoot::new(&args.root.root);
    let rec = Recording::new(sample(&host, &args.sample));
    rec.save(&args.output)
        .map_err(|e| anyhow::anyhow!("{}: cannot write snapshot: {e}", args.output.display()))?;
    let s = rec
        .samples
        .last()
        .expect("sample returns at least one snapshot");
    eprintln!(
        "wrote {} sample(s), {} processes, {} unreadable files, to {}",
        rec.samples.len(),
        s.processes.len(),
        s.unavailable.len(),
        args.output.display()
    );
    Ok(super::EXIT_OK)
}
