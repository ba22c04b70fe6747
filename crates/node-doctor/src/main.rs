//! The `node-doctor` binary: argument definitions and glue; the work is in the core and host
//! crates.

#![forbid(unsafe_code)]

mod cli;

use clap::Parser;
use cli::{Cli, Command, EXIT_FAILED};
use std::process::ExitCode;

fn main() -> ExitCode {
    // A probe child (see node_doctor_host::probe): answers one probe and exits, before any
    // command-line parsing.
    let mut args = std::env::args_os().skip(1);
    if args
        .next()
        .is_some_and(|a| a == node_doctor_host::probe::CHILD_ARG)
    {
        return node_doctor_host::probe::child_main(args);
    }
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Check(args) => cli::check::run(args),
        Command::Logs(args) => cli::logs::run(args),
        Command::Snapshot(args) => cli::snapshot::run(args),
        Command::Checks { format } => cli::explain::list(*format),
        Command::Agent(args) => cli::agent::run(args),
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
