//! Pure knowledge the checks and `node-doctor sysctl` apply: which sysctls the kernel keeps
//! per namespace (per kernel version), what the kubelet and runc accept, the kubelet's safe
//! list per Kubernetes release, how `kernel.core_pattern` handlers store cores and systemd's
//! `coredump.conf` defaults. The facts are data files next to the code (`sysctl.toml`,
//! `coredump.toml`, included at build time) with their sources cited; the code only looks
//! them up. Unit tests pin the history; the live tests check the kernel facts on this machine.

pub mod coredump;
pub mod lint;
pub mod sysctl;

use serde::{Deserialize, Serialize};

/// A dotted version ("6.18.44-fc-v669", "v1.29.3", "1.29"): its leading numeric components,
/// missing ones 0. Ordered as versions are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    /// The leading `N[.N[.N]]` of `s` (a `v` prefix allowed); `None` without a number.
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.trim();
        let s = s.strip_prefix('v').unwrap_or(s);
        let mut parts = [0u32; 3];
        let mut n = 0usize;
        for comp in s.split('.') {
            let digits: String = comp.chars().take_while(char::is_ascii_digit).collect();
            if digits.is_empty() {
                break;
            }
            let Some(slot) = parts.get_mut(n) else { break };
            *slot = digits.parse().ok()?;
            n = n.saturating_add(1);
            // "44-fc-v669": the number ends the version.
            if digits.len() != comp.len() {
                break;
            }
        }
        let [major, minor, patch] = parts;
        (n > 0).then_some(Version(major, minor, patch))
    }

    /// "6.18" for a major.minor version, "6.18.44" with a patch level.
    pub fn short(&self) -> String {
        if self.2 == 0 {
            format!("{}.{}", self.0, self.1)
        } else {
            format!("{}.{}.{}", self.0, self.1, self.2)
        }
    }

    /// Major and minor only (Kubernetes releases are compared so).
    pub fn minor(&self) -> Version {
        Version(self.0, self.1, 0)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.short())
    }
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.short())
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Version::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("not a version: {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::Version;

    #[test]
    fn versions_parse_as_kernels_and_kubernetes_print_them() {
        assert_eq!(Version::parse("6.18.44-fc-v669"), Some(Version(6, 18, 44)));
        assert_eq!(Version::parse("5.4.0-1045-aws"), Some(Version(5, 4, 0)));
        assert_eq!(Version::parse("v1.29.3"), Some(Version(1, 29, 3)));
        assert_eq!(Version::parse("1.32"), Some(Version(1, 32, 0)));
        assert_eq!(Version::parse("1.30.2+k3s1"), Some(Version(1, 30, 2)));
        assert_eq!(Version::parse("4.15rc2"), Some(Version(4, 15, 0)));
        assert_eq!(Version::parse("latest"), None);
        assert_eq!(Version::parse(""), None);
        assert!(Version(6, 14, 0) > Version(6, 13, 9));
        assert!(Version(4, 15, 0) <= Version(4, 15, 0));
        assert_eq!(Version(1, 29, 3).minor(), Version(1, 29, 0));
    }
}
