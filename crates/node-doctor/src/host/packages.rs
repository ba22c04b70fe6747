//! Versions of the container runtime packages installed on the host, from the Debian package
//! database (`var/lib/dpkg/status`) under the host root. No binary is ever run to ask for its
//! version (`runc --version` on a sick node can hang like anything else); hosts without dpkg
//! leave the versions unknown.

use super::HostRoot;
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
];

/// Installed runtime packages and their versions. Absent database: empty.
pub fn read_runtime_packages(host: &HostRoot) -> BTreeMap<String, String> {
    match host.read_string("var/lib/dpkg/status") {
        Ok(text) => parse_dpkg_status(&text, RUNTIME_PACKAGES),
        Err(_) => BTreeMap::new(),
    }
}

/// Parses dpkg's status file (RFC 822-style stanzas) for the `wanted` packages that are
/// installed ("Status: install ok installed").
pub fn parse_dpkg_status(text: &str, wanted: &[&str]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for stanza in text.split("\n\n") {
        let (mut name, mut version, mut installed) = (None, None, false);
        for line in stanza.lines() {
            if let Some(v) = line.strip_prefix("Package: ") {
                name = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Version: ") {
                version = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Status: ") {
                installed = v.trim().ends_with(" installed");
            }
        }
        if let (Some(n), Some(v), true) = (name, version, installed)
            && wanted.contains(&n)
        {
            out.insert(n.to_string(), v.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_runtime_packages_only() {
        let text = "Package: runc\nStatus: install ok installed\nPriority: optional\nVersion: 1.1.5+ds1-1+deb12u1\n\n\
                    Package: containerd\nStatus: deinstall ok config-files\nVersion: 1.6.20~ds1-1\n\n\
                    Package: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b7\n";
        let got = parse_dpkg_status(text, RUNTIME_PACKAGES);
        assert_eq!(got.len(), 1);
        assert_eq!(got["runc"], "1.1.5+ds1-1+deb12u1");
    }
}
