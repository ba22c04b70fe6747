//! The pipe scan alone, for `bench/pipes.sh`: every process's fd links under the root (the
//! part of the process scan's fd pass that the pipe scan adds), then each pipe sized once.
//! Prints what it found.
//!
//!     pipe_scan [ROOT]

use node_doctor::host::HostRoot;
use node_doctor::host::pipes;
use node_doctor::host::processes::{list_pids, pipe_ends};
use std::collections::HashSet;

fn main() {
    let root = std::env::args().nth(1).unwrap_or_else(|| "/".into());
    let host = HostRoot::new(root);
    let pids = match list_pids(&host) {
        Ok(p) => p,
        Err(u) => {
            eprintln!("pipe_scan: {u}");
            std::process::exit(2);
        }
    };
    let processes = pids.len();
    let (ends, _) = pipe_ends(&host, pids, None);
    let pipe_fds = ends.len();
    let scan = pipes::size(&host, ends, &HashSet::new(), None);
    let sized = scan.pipes.iter().filter(|p| p.size_bytes.is_some()).count();
    println!(
        "{processes} processes, {pipe_fds} pipe fds, {} pipes ({sized} sized, sizing {})",
        scan.pipes.len(),
        scan.sizing
    );
}
