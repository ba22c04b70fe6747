//! The host's sysctl configuration: `/etc/sysctl.conf` and the `*.conf` files of every
//! `sysctl.d` directory systemd-sysctl and `sysctl --system` read, each file's assignments
//! kept; and the live value of every name they assign (into the snapshot's `sysctls`), so a
//! check can tell what the node was configured with from what it runs with.

use crate::fs::{DEFAULT_CAP, EntryKind, HostFs, read_string, read_trimmed};
use crate::parse::conf::sysctl_file;
use node_doctor_core::model::kernel::sysctl_path;
use node_doctor_core::model::{Kind, Snapshot, SysctlConf, SysctlFile, Unavailable};

/// Where sysctl.d files live, highest priority first (systemd-sysctl's CONF_PATHS, plus
/// `/lib` on split-usr hosts).
pub const SYSCTL_D: &[&str] = &[
    "/etc/sysctl.d",
    "/run/sysctl.d",
    "/usr/local/lib/sysctl.d",
    "/usr/lib/sysctl.d",
    "/lib/sysctl.d",
];
pub const SYSCTL_CONF: &str = "/etc/sysctl.conf";

/// Files read per directory, and assignments whose live value is read, at most.
const MAX_FILES: usize = 512;
const MAX_LIVE_READS: usize = 4096;

pub fn read(fs: &dyn HostFs, s: &mut Snapshot) {
    let mut conf = SysctlConf::default();
    let u = &mut s.unavailable;
    for dir in SYSCTL_D {
        match fs.read_dir(dir, MAX_FILES) {
            Ok(l) => {
                conf.truncated |= l.truncated;
                let mut names: Vec<String> = l
                    .entries
                    .into_iter()
                    .filter(|e| e.name.ends_with(".conf") && e.kind != EntryKind::Dir)
                    .map(|e| e.name)
                    .collect();
                names.sort();
                for n in names {
                    if let Some(f) = file(fs, &format!("{dir}/{n}"), u) {
                        conf.files.push(f);
                    }
                }
            }
            Err(e) if e.kind == Kind::NotFound => {}
            Err(e) => u.push(e),
        }
    }
    if let Some(f) = file(fs, SYSCTL_CONF, u) {
        conf.files.push(f);
    }
    // The live values of the names the files set (globs are not expanded: kept as written).
    let mut reads = 0usize;
    for e in conf.files.iter().flat_map(|f| f.entries.iter()) {
        if e.name.contains('*') || s.sysctls.contains_key(&e.name) {
            continue;
        }
        if reads >= MAX_LIVE_READS {
            conf.truncated = true;
            break;
        }
        reads = reads.saturating_add(1);
        match read_trimmed(fs, &sysctl_path(&e.name)) {
            Ok(v) => {
                s.sysctls.insert(e.name.clone(), v);
            }
            // A name this kernel lacks (a module not loaded): the check says so.
            Err(x) if x.kind == Kind::NotFound => {}
            Err(x) => s.unavailable.push(x),
        }
    }
    s.sysctl_conf = Some(conf);
}

fn file(fs: &dyn HostFs, path: &str, u: &mut Vec<Unavailable>) -> Option<SysctlFile> {
    match read_string(fs, path, DEFAULT_CAP) {
        Ok(text) => Some(SysctlFile {
            path: path.to_string(),
            entries: sysctl_file(&text),
        }),
        Err(e) if e.kind == Kind::NotFound => None,
        Err(e) => {
            u.push(e);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::RealFs;

    #[test]
    fn files_of_every_directory_and_the_live_values_they_name() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        for d in [
            "etc/sysctl.d",
            "usr/lib/sysctl.d",
            "proc/sys/vm",
            "proc/sys/kernel",
        ] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        std::fs::write(r.join("etc/sysctl.conf"), "vm.swappiness = 60\n").unwrap();
        std::fs::write(
            r.join("etc/sysctl.d/99-sysctl.conf"),
            "vm.max_map_count=262144\n",
        )
        .unwrap();
        std::fs::write(r.join("etc/sysctl.d/README.sysctl"), "not a conf").unwrap();
        std::fs::write(
            r.join("usr/lib/sysctl.d/50-pid-max.conf"),
            "kernel.pid_max = 4194304\nnet.ipv4.conf.*.rp_filter = 2\nfs.gone = 1\n",
        )
        .unwrap();
        std::fs::write(r.join("proc/sys/vm/swappiness"), "60\n").unwrap();
        std::fs::write(r.join("proc/sys/vm/max_map_count"), "65530\n").unwrap();
        std::fs::write(r.join("proc/sys/kernel/pid_max"), "32768\n").unwrap();
        let fs = RealFs::new(r).unwrap();
        let mut s = Snapshot::default();
        read(&fs, &mut s);
        let c = s.sysctl_conf.unwrap();
        let paths: Vec<&str> = c.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "/etc/sysctl.d/99-sysctl.conf",
                "/usr/lib/sysctl.d/50-pid-max.conf",
                "/etc/sysctl.conf"
            ]
        );
        assert_eq!(
            s.sysctls.get("vm.max_map_count").map(String::as_str),
            Some("65530")
        );
        assert_eq!(
            s.sysctls.get("kernel.pid_max").map(String::as_str),
            Some("32768")
        );
        assert!(!s.sysctls.contains_key("fs.gone"));
        assert!(s.unavailable.is_empty(), "{:?}", s.unavailable);
    }
}
