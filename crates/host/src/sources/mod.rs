//! Log sources: the kernel ring ([`kmsg`]), plain files followed across rotation ([`file`]),
//! and journald's files followed by cursor ([`journal`]). The log monitor
//! ([`crate::logmon`]) reads them and runs the rules.

pub mod file;
pub mod journal;
pub mod kmsg;
