//! Versions of the container runtime packages installed on the host, from the Debian package
//! database (`var/lib/dpkg/status`) under the host root. No binary is ever run to ask for its
//! version; hosts without dpkg leave the versions unknown.

use crate::fs::{HostFs, LARGE_CAP, read_string};
use crate::parse::dpkg::parse_status;
use node_doctor_core::model::{Kind, Unavailable};
use std::collections::BTreeMap;
use std::sync::Mutex;

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

const STATUS: &str = "var/lib/dpkg/status";

/// The database file's identity when it was last parsed: device, inode, size, mtime, ctime
/// (ns). dpkg replaces the file by a rename on every change (a new inode); the ctime also
/// tells apart a file recreated with a reused inode number and the same size, and an edit
/// in place whose mtime was set back (no call sets the ctime).
type Identity = (u64, u64, u64, Option<u64>, Option<i128>);

/// The last parse, by the file's identity: the agent collects every 30 s, and re-parsing a
/// 600 KiB database that changes a few times a year was a fifth of an idle agent's
/// collection time.
static LAST: Mutex<Option<(Identity, BTreeMap<String, String>)>> = Mutex::new(None);

fn identity(fs: &dyn HostFs) -> Option<Identity> {
    let (dev, ino, size) = fs.file_identity(STATUS).ok()?;
    let meta = fs.metadata(STATUS).ok()?;
    Some((dev, ino, size, meta.mtime_ms, meta.ctime_ns))
}

/// Installed runtime packages and their versions. No database: empty (not an error: most
/// non-Debian hosts have none).
pub fn read(fs: &dyn HostFs, unavailable: &mut Vec<Unavailable>) -> BTreeMap<String, String> {
    let id = identity(fs);
    if let Some(id) = id
        && let Ok(last) = LAST.lock()
        && let Some((seen, versions)) = last.as_ref()
        && *seen == id
    {
        return versions.clone();
    }
    match read_string(fs, STATUS, LARGE_CAP) {
        Ok(text) => {
            let versions = parse_status(&text, RUNTIME_PACKAGES);
            if let Some(id) = id
                && let Ok(mut last) = LAST.lock()
            {
                *last = Some((id, versions.clone()));
            }
            versions
        }
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
    let text = read_string(fs, STATUS, LARGE_CAP).ok()?;
    parse_status(&text, &[package]).remove(package)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::RealFs;

    fn status(version: &str) -> String {
        format!("Package: runc\nStatus: install ok installed\nVersion: {version}\n\n")
    }

    /// The parse is kept while the database is the same file, and redone when dpkg replaces
    /// it (a rename: a new inode), even with the same size and within the same second.
    #[test]
    fn an_unchanged_database_is_not_parsed_again_and_a_replaced_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join(STATUS);
        std::fs::create_dir_all(db.parent().unwrap()).unwrap();
        std::fs::write(&db, status("1.1.12")).unwrap();
        let fs = RealFs::new(dir.path()).unwrap();
        let mut u = Vec::new();
        assert_eq!(read(&fs, &mut u)["runc"], "1.1.12");
        // The kept parse answers while the identity holds (the read is skipped): shown by
        // planting another answer under the file's identity.
        // (Other tests of this binary may parse their own trees' databases meanwhile,
        // replacing the memo: a few tries.)
        let id = identity(&fs).unwrap();
        let mut planted = BTreeMap::new();
        planted.insert("runc".to_string(), "kept".to_string());
        let kept = (0..5).any(|_| {
            *LAST.lock().unwrap() = Some((id, planted.clone()));
            read(&fs, &mut u)["runc"] == "kept"
        });
        assert!(kept);
        // An edit in place that sets the mtime back still changes the ctime: parsed again.
        let mtime = std::fs::metadata(&db).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        std::fs::write(&db, status("1.1.99")).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&db)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert_eq!(read(&fs, &mut u)["runc"], "1.1.99");
        let tmp = db.with_extension("new");
        std::fs::write(&tmp, status("1.1.13")).unwrap();
        std::fs::rename(&tmp, &db).unwrap();
        assert_eq!(read(&fs, &mut u)["runc"], "1.1.13");
        assert!(u.is_empty(), "{u:?}");
    }
}
