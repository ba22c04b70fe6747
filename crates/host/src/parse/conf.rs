//! Configuration file formats read from the host: systemd's INI-style files (`coredump.conf`
//! and its drop-ins, systemd.syntax(7)) and sysctl.d(5) files.

use node_doctor_core::knowledge::sysctl::normalize;
use node_doctor_core::model::SysctlEntry;
use std::collections::BTreeMap;

/// The `key=value` assignments of `section` in a systemd configuration file, later ones of
/// a key winning (as systemd applies them). Comments start with `#` or `;`; a line ending in
/// `\` continues on the next.
pub fn systemd_section(text: &str, section: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut pending = String::new();
    for raw in text.lines() {
        let line = if pending.is_empty() {
            raw.trim().to_string()
        } else {
            format!("{pending} {}", raw.trim())
        };
        if let Some(cont) = line.strip_suffix('\\') {
            pending = cont.to_string();
            continue;
        }
        pending.clear();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.trim().to_string());
            continue;
        }
        if current.as_deref() != Some(section) {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    out
}

/// The assignments of a sysctl.d(5) file (also `/etc/sysctl.conf`): `name = value`, names
/// with `/` or `.`, a leading `-` to ignore failures, `#` and `;` comments.
pub fn sysctl_file(text: &str) -> Vec<SysctlEntry> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim();
        let (ignore_failure, k) = match k.strip_prefix('-') {
            Some(rest) => (true, rest.trim()),
            None => (false, k),
        };
        if k.is_empty() {
            continue;
        }
        out.push(SysctlEntry {
            name: normalize(k),
            value: v.trim().to_string(),
            line: u32::try_from(i.saturating_add(1)).unwrap_or(u32::MAX),
            ignore_failure,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_sections_and_debians_all_commented_coredump_conf() {
        let shipped = include_str!(
            "../../../core/src/knowledge/testdata/debian12-systemd-coredump/coredump.conf"
        );
        assert!(systemd_section(shipped, "Coredump").is_empty());
        let local = "[Coredump]\nStorage=none\n; comment\nProcessSizeMax = 0\n[Other]\nStorage=x\n\
                     [Coredump]\nMaxUse=1\\\nG\nStorage=external\n";
        let s = systemd_section(local, "Coredump");
        assert_eq!(s.get("Storage").map(String::as_str), Some("external"));
        assert_eq!(s.get("ProcessSizeMax").map(String::as_str), Some("0"));
        assert_eq!(s.get("MaxUse").map(String::as_str), Some("1 G"));
    }

    #[test]
    fn sysctl_files_with_slashes_dashes_and_comments() {
        let debian = include_str!(
            "../../../core/src/knowledge/testdata/debian12-systemd-coredump/50-coredump.conf"
        );
        let e = sysctl_file(debian);
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].name, "kernel.core_pattern");
        assert!(e[0].value.starts_with("|/lib/systemd/systemd-coredump %P"));
        assert_eq!(e[1].name, "kernel.core_pipe_limit");
        assert_eq!(e[1].value, "16");
        let e = sysctl_file("# c\n-net/ipv4/ip_forward = 1\n; x\nvm.swappiness=10\nbogus\n = 3\n");
        assert_eq!(e.len(), 2);
        assert_eq!(
            (
                e[0].name.as_str(),
                e[0].value.as_str(),
                e[0].line,
                e[0].ignore_failure
            ),
            ("net.ipv4.ip_forward", "1", 2, true)
        );
        assert_eq!((e[1].name.as_str(), e[1].line), ("vm.swappiness", 4));
    }
}
