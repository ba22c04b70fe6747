//! Lays out the release binary's functions in the order of `symbol-order.txt`: the code a
//! one-shot `logs` or `check` run executes together, then the agent's (bench/layout/run.sh
//! writes the file from page traces of real runs).
//!
//! Why: every text page a process touches brings its neighbours in with it (the kernel's
//! fault-around maps 64 KiB around a page fault, and kernel 6.18 a large page-cache folio
//! whole), so code scattered over the 9 MiB of text costs resident memory far beyond what
//! runs: 4.5 MiB of text resident for a `logs` run that executes 1.5 MiB of it. Peak RSS of
//! a one-shot run is a target (issue: log rules, <= 10 MiB).
//!
//! Only where the linker is known to be LLD (rustc's default for x86_64-unknown-linux-gnu
//! since 1.90; GNU ld has no --symbol-ordering-file) and only for release builds. Names the
//! file no longer holds are skipped (--no-warn-symbol-ordering): a stale file costs memory,
//! never a build. NODE_DOCTOR_SYMBOL_ORDER=0 turns it off (e.g. with another linker).
use std::env;

fn main() {
    println!("cargo:rerun-if-changed=symbol-order.txt");
    println!("cargo:rerun-if-env-changed=NODE_DOCTOR_SYMBOL_ORDER");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER");
    let var = |k: &str| env::var(k).unwrap_or_default();
    let lld_by_default = var("TARGET") == "x86_64-unknown-linux-gnu"
        && var("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_empty()
        // Any linker choice in the flags (-C linker=, -C linker-features=, -C
        // link-self-contained=) may mean another linker: leave the layout alone.
        && !var("CARGO_ENCODED_RUSTFLAGS").contains("link");
    if var("PROFILE") != "release" || !lld_by_default || var("NODE_DOCTOR_SYMBOL_ORDER") == "0" {
        return;
    }
    let file = format!("{}/symbol-order.txt", var("CARGO_MANIFEST_DIR"));
    if !std::path::Path::new(&file).is_file() {
        return;
    }
    println!("cargo:rustc-link-arg-bin=node-doctor=-Wl,--symbol-ordering-file={file}");
    println!("cargo:rustc-link-arg-bin=node-doctor=-Wl,--no-warn-symbol-ordering");
}
