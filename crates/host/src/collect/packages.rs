//! Versions of the container runtime packages installed on the host, from the Debian package
//! database (`var/lib/dpkg/status`) under the host root. No binary is ever run to ask for its
//! version; hosts without dpkg leave the versions unknown.

use crate::fs::{HostFs, LARGE_CAP, read_string};
use crate::parse::dpkg::parse_status;
use node_doctor_core::model::{Kind, Unavailable};
use std::collections::BTreeMap;

/// Packages whose version says which runc (and containerd) a node runs. `containerd.io`
/// (Docker's repository) bundles its own runc.
pub const RUNTIME_PACKAGES: &[&str] = &[
    "runc",
    "containerd",
    "containerd.io",
    "docker.io",
    "docker-ce",
    "cri-o",
    "cri-o-runc",
    // The kubelet's version chooses its defaults (kubelet-config).
    "kubelet",
];

/// Installed runtime packages and their versions. No database: empty (not an error: most
/// non-Debian hosts have none).
pub fn read(fs: &dyn HostFs, unavailable: &mut Vec<Unavailable>) -> BTreeMap<String, String> {
    match read_string(fs, "var/lib/dpkg/status", LARGE_CAP) {
        Ok(text) => parse_status(&text, RUNTIME_PACKAGES),
        Err(u) if u.kind == Kind::NotFound => BTreeMap::new(),
        Err(u) => {
            unavailable.push(u);
            BTreeMap::new()
        }
    }
}

/// The installed version of `package` (dpkg), e.g. the kubelet's; `None` without dpkg or
/// the package.
pub fn version_of(fs: &dyn HostFs, package: &str) -> Option<String> {
    let text = read_string(fs, "var/lib/dpkg/status", LARGE_CAP).ok()?;
    parse_status(&text, &[package]).remove(package)
}
