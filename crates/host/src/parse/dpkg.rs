//! The Debian package database (`var/lib/dpkg/status`): versions of installed packages,
//! read without running anything (`runc --version` on a sick node can hang too).

use std::collections::BTreeMap;

/// Parses dpkg's status file (RFC 822-style stanzas) for the `wanted` packages that are
/// installed ("Status: install ok installed").
pub fn parse_status(text: &str, wanted: &[&str]) -> BTreeMap<String, String> {
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
    fn installed_packages_only() {
        let text = "Package: runc\nStatus: install ok installed\nPriority: optional\nVersion: 1.1.5+ds1-1+deb12u1\n\n\
                    Package: containerd\nStatus: deinstall ok config-files\nVersion: 1.6.20~ds1-1\n\n\
                    Package: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b7\n";
        let got = parse_status(text, &["runc", "containerd"]);
        assert_eq!(got.len(), 1);
        assert_eq!(got["runc"], "1.1.5+ds1-1+deb12u1");
    }
}
