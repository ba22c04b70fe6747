//! node-doctor: finds the cause of a sick Kubernetes node.
//!
//! Data flows one way: **host → snapshot → checks → findings → outputs**.
//! - [`host`] reads the machine through one host root and knows files, not policy;
//! - [`snapshot`] is the plain serde data read at one moment, saved and replayed;
//! - [`checks`] are pure functions of snapshots, producing [`finding`]s;
//! - [`output`] renders findings, and knows formats, not policy.

pub mod cgroup_path;
pub mod checks;
pub mod finding;
pub mod host;
pub mod logs;
pub mod output;
pub mod snapshot;
