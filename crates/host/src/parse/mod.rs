//! Parsers of the kernel's text formats, by hand: each is a few lines, total over every
//! input (garbage is an error naming what is missing, never a panic), and faster than a
//! generic parser that builds a map of every line. procfs-core's `stat` parser panicked on
//! truncated input inside the scan; nothing here can.

pub mod conf;
pub mod dpkg;
pub mod kernel;
pub mod memcg;
pub mod process;
