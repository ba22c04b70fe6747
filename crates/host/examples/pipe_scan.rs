//! The pipe scan alone, for `bench/pipes.sh`: every process's fd links under the root (the
//! part of the process scan's fd pass that the pipe scan adds), then each pipe sized once.
//! Prints what it found.
//!
//!     pipe_scan [ROOT]

use node_doctor_host::Host;
use node_doctor_host::collect::{pipes, processes};
use std::collections::HashSet;

fn main() {
    let root = std::env::args().nth(1).unwrap_or_else(|| "/".into());
    let host = match Host::open(&root) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("pipe_scan: {e}");
            std::process::exit(2);
        }
    };
    let pids = match host.fs.list_pids() {
        Ok(p) => p,
        Err(u) => {
            eprintln!("pipe_scan: {u}");
            std::process::exit(2);
        }
    };
    let n = pids.len();
    let (ends, _) = processes::pipe_ends(&host.fs, pids, None);
    let pipe_fds = ends.len();
    let scan = pipes::size(&*host.fs, &*host.kernel, ends, &HashSet::new(), None);
    let sized = scan.pipes.iter().filter(|p| p.size_bytes.is_some()).count();
    println!(
        "{n} processes, {pipe_fds} pipe fds, {} pipes ({sized} sized, sizing {:?})",
        scan.pipes.len(),
        scan.sizing
    );
}
