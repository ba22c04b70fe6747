//! The pipe scan alone, for `bench/pipes.sh`: every process's fds under the root, each pipe
//! sized once. Prints what it found, so the benchmark can check both sides saw the same.
//!
//!     pipe_scan [ROOT]

use node_doctor::host::HostRoot;
use node_doctor::host::pipes;
use node_doctor::host::processes::list_pids;
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
    let scan = pipes::scan(&host, pids, HashSet::new(), None);
    let sized = scan.pipes.iter().filter(|p| p.size_bytes.is_some()).count();
    println!(
        "{} processes, {} fds, {} pipes ({} sized, sizing {})",
        scan.processes_scanned,
        scan.fds_scanned,
        scan.pipes.len(),
        sized,
        scan.sizing
    );
}
