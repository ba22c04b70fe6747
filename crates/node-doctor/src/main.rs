//! The `node-doctor` binary: argument definitions and glue; the work is in the core and host
//! crates.

#![forbid(unsafe_code)]

mod cli;

use clap::Parser;
use cli::{Cli, Command, EXIT_FAILED};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Check(args) => cli::check::run(args),
        Command::Logs(args) => cli::logs::run(args),
        Command::Snapshot(args) => cli::snapshot::run(args),
        Command::Checks { format } => cli::explain::list(*format),
        Command::Explain { id } => cli::explain::explain(id),
        Command::Sysctl(args) => cli::sysctl::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("node-doctor: error: {e:#}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}
