//! node-doctor's pure core: the snapshot schema, the finding contract, the checks, the log
//! rules and the renderers. Nothing here reads the machine or the clock: data flows one way,
//! **host → snapshot → checks → findings → outputs**, and this crate is everything after
//! the first arrow. The host crate (`node-doctor-host`) produces snapshots and log records;
//! the binaries glue the two.
//!
//! - [`model`]: plain serde data read from a host, saved and replayed;
//! - [`attribution`]: which container and pod a cgroup path names;
//! - [`checks`]: pure functions of snapshots, producing [`finding`]s;
//! - [`knowledge`]: facts as data (sysctl namespacing, the kubelet's safe list, core dump
//!   handlers and systemd's defaults), and `sysctl lint`;
//! - [`rules`]: log rules (default pack, NPD configs) turning records into findings;
//! - [`names`]: pod and container names on subjects, from the snapshot's workloads;
//! - [`causes`]: causal chains between the findings of one run;
//! - [`conditions`]: NodeConditions as a state machine of check verdicts, and which types
//!   node-doctor sets (the agent publishes what this decides);
//! - [`kubelet`]: the kubelet's effective configuration (flags, files, version defaults);
//! - [`config`]: per-check settings;
//! - [`render`]: human and JSON outputs.

#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

pub mod attribution;
pub mod causes;
pub mod checks;
pub mod conditions;
pub mod config;
pub mod coverage;
pub mod finding;
pub mod knowledge;
pub mod kubelet;
pub mod model;
pub mod names;
pub mod render;
pub mod rules;
pub mod time;
