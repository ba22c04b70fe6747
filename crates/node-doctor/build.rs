//! Lays out the release binary's functions in the order of `symbol-order.txt`: the code
//! one-shot `logs` and `check` runs execute together, then the agent's
//! (bench/layout/run.sh writes the file from page traces of real runs).
//!
//! Why: every text page a process touches brings its neighbours in with it (the kernel's
//! fault-around maps 64 KiB around a page fault, and kernel 6.18 a large page-cache folio
//! whole), so code scattered over the 9 MiB of text costs resident memory far beyond what
//! runs: 4.4 MiB of text resident for a `logs` run that executes 1.5 MiB of it. Peak RSS of
//! a one-shot run is a target (issue: log rules, <= 10 MiB).
//!
//! Release builds only, and only where the linker takes the option: LLD does (rustc's
//! default for x86_64-unknown-linux-gnu in the toolchains rust-lang ships, since 1.90);
//! GNU ld and gold do not, and a distribution's rustc may link with them. So an empty
//! program is linked first with the option, the same rustc, target, linker and flags; the
//! option is passed only if that link succeeds. Names the file no longer holds are skipped
//! (--no-warn-symbol-ordering). NODE_DOCTOR_SYMBOL_ORDER=0 turns it off.
use std::env;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A variable cargo sets for build scripts, empty when unset.
fn var(k: &str) -> String {
    env::var(k).unwrap_or_default()
}

fn main() {
    println!("cargo:rerun-if-changed=symbol-order.txt");
    println!("cargo:rerun-if-env-changed=NODE_DOCTOR_SYMBOL_ORDER");
    let file = PathBuf::from(var("CARGO_MANIFEST_DIR")).join("symbol-order.txt");
    if var("PROFILE") != "release" || var("NODE_DOCTOR_SYMBOL_ORDER") == "0" || !file.is_file() {
        return;
    }
    let order = format!("--symbol-ordering-file={}", file.display());
    if !linker_takes() {
        println!(
            "cargo:warning=the linker does not take --symbol-ordering-file: the release binary keeps the default layout (more resident memory)"
        );
        return;
    }
    // -Xlinker, not -Wl,: a comma in the path would split the option.
    for arg in ["-Xlinker", &order, "-Xlinker", "--no-warn-symbol-ordering"] {
        println!("cargo:rustc-link-arg-bin=node-doctor={arg}");
    }
}

/// Whether linking an empty program with an (empty) ordering file succeeds, as this build
/// links.
fn linker_takes() -> bool {
    let out = PathBuf::from(var("OUT_DIR"));
    let src = out.join("layout_probe.rs");
    if std::fs::write(&src, "fn main() {}\n").is_err() {
        return false;
    }
    let empty = out.join("layout_probe.order");
    if std::fs::write(&empty, "").is_err() {
        return false;
    }
    let mut cmd = Command::new(env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()));
    cmd.arg("--target").arg(var("TARGET"));
    cmd.args(
        var("CARGO_ENCODED_RUSTFLAGS")
            .split('\x1f')
            .filter(|f| !f.is_empty()),
    );
    if let Some(linker) = env::var_os("RUSTC_LINKER") {
        let mut arg = OsString::from("linker=");
        arg.push(linker);
        cmd.arg("-C").arg(arg);
    }
    cmd.args(["-C", "link-arg=-Xlinker", "-C"])
        .arg(format!(
            "link-arg=--symbol-ordering-file={}",
            empty.display()
        ))
        .arg("-o")
        .arg(out.join("layout_probe"))
        .arg(&src)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd.status().is_ok_and(|s| s.success())
}
