//! The core-dump machinery of the host (incident 3): systemd's `coredump.conf` and drop-ins
//! in its configuration directories, the program a piped `kernel.core_pattern` names, and the
//! dump stores (systemd-coredump's, apport's, ABRT's directories, a file pattern's directory)
//! with what they hold. Only directories and `lstat`s: no core is opened.
//!
//! A store can sit on a dead NFS mount like any path, so each store is listed on a
//! deadline-bounded worker ([`crate::blocking`]).

use super::filesystems::PROBE_TIMEOUT;
use super::mounts::{host_relative, mount_of};
use crate::blocking::{self, Blocking};
use crate::fs::{DEFAULT_CAP, EntryKind, HostFs, read_string};
use crate::parse::conf::systemd_section;
use node_doctor_core::knowledge::coredump::{CorePattern, Mode, knowledge};
use node_doctor_core::model::coredump::MAX_DUMP_FILES_KEPT;
use node_doctor_core::model::{
    ConfFile, CoredumpHost, DumpFile, DumpStore, HandlerFile, Kind, Mount, Unavailable,
};
use std::sync::Arc;
use std::time::Instant;

/// Entries of one store listed at most; `lstat`s at most.
const MAX_STORE_ENTRIES: usize = 10_000;
const MAX_STORE_STATS: usize = 2_000;
/// Drop-ins read per directory at most.
const MAX_DROPINS: usize = 256;

pub fn read(
    fs: &Arc<dyn HostFs>,
    core_pattern: Option<&str>,
    mounts: Option<&[Mount]>,
    deadline: Option<Instant>,
    unavailable: &mut Vec<Unavailable>,
) -> CoredumpHost {
    let mut out = CoredumpHost::default();
    let Ok(k) = knowledge() else {
        return out;
    };
    for dir in k.config_dirs() {
        let main = format!("{dir}/coredump.conf");
        if let Some(f) = conf_file(&**fs, &main, unavailable) {
            out.conf_files.push(f);
        }
        let dropins = format!("{dir}/coredump.conf.d");
        match fs.read_dir(&dropins, MAX_DROPINS) {
            Ok(l) => {
                let mut names: Vec<String> = l
                    .entries
                    .into_iter()
                    .filter(|e| e.name.ends_with(".conf") && e.kind != EntryKind::Dir)
                    .map(|e| e.name)
                    .collect();
                names.sort();
                for n in names {
                    if let Some(f) = conf_file(&**fs, &format!("{dropins}/{n}"), unavailable) {
                        out.conf_files.push(f);
                    }
                }
            }
            Err(u) if matches!(u.kind, Kind::NotFound) => {}
            Err(u) => unavailable.push(u),
        }
    }

    let pattern = core_pattern.map(CorePattern::parse);
    let mut store_dirs: Vec<String> = k.handlers().iter().map(|h| h.storage.clone()).collect();
    if let Some(p) = &pattern {
        match &p.mode {
            // A handler whose path has no specifier is looked up on the host.
            Mode::Pipe { program, .. } if program.starts_with('/') && !program.contains('%') => {
                // The pattern names a path in the host's mount namespace; read from outside
                // the host root (a test tree with the host's /proc), it carries the root as
                // a prefix, like the mount table does.
                let rel = host_relative(program, &fs.root().to_string_lossy());
                let exists = matches!(
                    fs.entry_kind(&rel),
                    Ok(EntryKind::File | EntryKind::Symlink)
                );
                out.handler = Some(HandlerFile {
                    path: program.clone(),
                    exists,
                });
            }
            // Host processes dump into an absolute pattern's directory on the host.
            Mode::File {
                path,
                relative: false,
            } => {
                if let Some((dir, _)) = path.rsplit_once('/')
                    && !dir.is_empty()
                    && !dir.contains('%')
                {
                    store_dirs.push(dir.to_string());
                }
            }
            _ => {}
        }
    }
    store_dirs.sort();
    store_dirs.dedup();
    // A store on a FUSE or network mount is not listed: a thread stuck on a dead server
    // would keep the process from exiting (the filesystems collector probes those mounts in
    // a child process and reports them).
    let root = fs.root().to_string_lossy().into_owned();
    let table: Vec<Mount> = mounts
        .unwrap_or(&[])
        .iter()
        .map(|m| Mount {
            mount_point: host_relative(&m.mount_point, &root),
            ..m.clone()
        })
        .collect();
    store_dirs.retain(|d| !mount_of(&table, d).is_some_and(Mount::is_remote_or_fuse));
    for dir in store_dirs {
        match list_store(fs, &dir, deadline) {
            Ok(Some(s)) => out.stores.push(s),
            Ok(None) => {}
            Err(u) => unavailable.push(u),
        }
    }
    out
}

fn conf_file(fs: &dyn HostFs, path: &str, unavailable: &mut Vec<Unavailable>) -> Option<ConfFile> {
    match read_string(fs, path, DEFAULT_CAP) {
        Ok(text) => Some(ConfFile {
            path: path.to_string(),
            settings: systemd_section(&text, "Coredump"),
        }),
        Err(u) if u.kind == Kind::NotFound => None,
        Err(u) => {
            unavailable.push(u);
            None
        }
    }
}

/// A store's files, or `None` when the directory does not exist.
fn list_store(
    fs: &Arc<dyn HostFs>,
    dir: &str,
    deadline: Option<Instant>,
) -> Result<Option<DumpStore>, Unavailable> {
    let f = fs.clone();
    let d = dir.to_string();
    let key = format!("coredump-store:{}{dir}", fs.root().display());
    let r = blocking::run_for(&key, PROBE_TIMEOUT, deadline, move || {
        let listing = match f.read_dir(&d, MAX_STORE_ENTRIES) {
            Ok(l) => l,
            Err(u) if u.kind == Kind::NotFound => return Ok(None),
            Err(u) => return Err(u),
        };
        let mut store = DumpStore {
            path: d.clone(),
            truncated: listing.truncated,
            ..DumpStore::default()
        };
        let mut files: Vec<DumpFile> = Vec::new();
        for e in listing.entries.iter().filter(|e| e.kind == EntryKind::File) {
            if files.len() >= MAX_STORE_STATS {
                store.truncated = true;
                break;
            }
            let Ok(m) = f.metadata(&format!("{d}/{}", e.name)) else {
                continue; // removed meanwhile (vacuumed)
            };
            store.files = store.files.saturating_add(1);
            store.bytes = store.bytes.saturating_add(m.bytes);
            if e.name.starts_with(".#") {
                store.temporaries = store.temporaries.saturating_add(1);
            }
            files.push(DumpFile {
                name: e.name.clone(),
                bytes: m.bytes,
                size: m.size,
                mtime_ms: m.mtime_ms,
            });
        }
        files.sort_by(|a, b| b.mtime_ms.cmp(&a.mtime_ms).then(a.name.cmp(&b.name)));
        files.truncate(MAX_DUMP_FILES_KEPT);
        store.entries = files;
        Ok(Some(store))
    });
    match r {
        Blocking::Done(r) => r,
        Blocking::TimedOut | Blocking::StillBlocked { .. } => Err(Unavailable::timeout(
            dir,
            "listing the dump store did not return: its filesystem does not answer",
        )),
        Blocking::Refused(why) => Err(Unavailable::timeout(dir, why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::RealFs;

    #[test]
    fn conf_files_handler_and_stores_of_a_tree() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        std::fs::create_dir_all(r.join("etc/systemd/coredump.conf.d")).unwrap();
        std::fs::create_dir_all(r.join("usr/lib/systemd/coredump.conf.d")).unwrap();
        std::fs::create_dir_all(r.join("var/lib/systemd/coredump")).unwrap();
        std::fs::create_dir_all(r.join("lib/systemd")).unwrap();
        std::fs::write(
            r.join("etc/systemd/coredump.conf"),
            include_str!(
                "../../../core/src/knowledge/testdata/debian12-systemd-coredump/coredump.conf"
            ),
        )
        .unwrap();
        std::fs::write(
            r.join("etc/systemd/coredump.conf.d/50-cap.conf"),
            "[Coredump]\nProcessSizeMax=1G\n",
        )
        .unwrap();
        std::fs::write(r.join("usr/lib/systemd/coredump.conf.d/README"), "").unwrap();
        std::fs::write(r.join("lib/systemd/systemd-coredump"), "#!/bin/sh\n").unwrap();
        std::fs::write(
            r.join("var/lib/systemd/coredump/core.a.0.x.1.2.zst"),
            vec![0u8; 9000],
        )
        .unwrap();
        std::fs::write(r.join("var/lib/systemd/coredump/.#core.b"), b"x").unwrap();
        let fs: Arc<dyn HostFs> = Arc::new(RealFs::new(r).unwrap());
        let mut u = Vec::new();
        let c = read(
            &fs,
            Some("|/lib/systemd/systemd-coredump %P %u %g %s %t 9223372036854775808 %h %d"),
            None,
            None,
            &mut u,
        );
        assert!(u.is_empty(), "{u:?}");
        let paths: Vec<&str> = c.conf_files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                "/etc/systemd/coredump.conf",
                "/etc/systemd/coredump.conf.d/50-cap.conf"
            ]
        );
        assert!(c.conf_files[0].settings.is_empty());
        assert_eq!(
            c.handler,
            Some(HandlerFile {
                path: "/lib/systemd/systemd-coredump".into(),
                exists: true
            })
        );
        assert_eq!(c.stores.len(), 1, "only the systemd store exists");
        let s = &c.stores[0];
        assert_eq!(
            (s.path.as_str(), s.files, s.temporaries),
            ("/var/lib/systemd/coredump", 2, 1)
        );
        assert!(s.bytes >= 9000);
        // A missing handler.
        let c = read(
            &fs,
            Some("|/usr/share/apport/apport -p%p"),
            None,
            None,
            &mut u,
        );
        assert_eq!(c.handler.map(|h| h.exists), Some(false));
    }
}
