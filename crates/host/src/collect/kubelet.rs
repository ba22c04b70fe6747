//! The kubelet: its process (by `comm`), its command line, the `--config` file and
//! `--config-dir` drop-ins it names, and its version (the `kubelet` package). Files are kept
//! as text; what they mean is decided in core (`node_doctor_core::kubelet`).

use crate::collect::mounts::RemoteMounts;
use crate::fs::{DEFAULT_CAP, HostFs, read_string};
use node_doctor_core::kubelet::flags;
use node_doctor_core::model::process::Process;
use node_doctor_core::model::runtime::{ConfigFile, Kubelet};
use node_doctor_core::model::{Kind, Unavailable};

/// Most drop-in files read.
const MAX_DROP_INS: usize = 64;

/// A process's command line, unless it is in D state: reading `cmdline` takes the target's
/// mmap lock (fs/proc/base.c `get_mm_cmdline` → `access_remote_vm`), which a task stuck in
/// the kernel may hold.
pub fn cmdline(fs: &dyn HostFs, p: &Process) -> Option<Vec<String>> {
    if p.in_d_state() || p.is_zombie() {
        return None;
    }
    let dir = fs.open_proc(p.pid).ok()?;
    let b = dir.read("cmdline", DEFAULT_CAP).ok()?;
    let args: Vec<String> = b
        .split(|c| *c == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    (!args.is_empty()).then_some(args)
}

/// A host path as the root-relative form HostFs takes.
pub fn rel(path: &str) -> &str {
    path.trim_start_matches('/')
}

pub fn read_config(fs: &dyn HostFs, remote: &RemoteMounts, path: &str) -> ConfigFile {
    if let Some(why) = remote.why_not(path) {
        return ConfigFile {
            path: path.to_string(),
            text: None,
            error: Some(why),
        };
    }
    match read_string(fs, rel(path), DEFAULT_CAP) {
        Ok(t) => ConfigFile {
            path: path.to_string(),
            text: Some(t),
            error: None,
        },
        Err(u) => ConfigFile {
            path: path.to_string(),
            text: None,
            error: Some(u.to_string()),
        },
    }
}

/// The kubelet as found among `processes`; `packages` gives its version.
/// Its `--config` file and drop-ins are not read below a FUSE or network mount (`remote`):
/// kubeadm's `/var/lib/kubelet/config.yaml` on a dead FUSE mount would hang the run.
pub fn read(
    fs: &dyn HostFs,
    remote: &RemoteMounts,
    processes: &[Process],
    packages: Option<&std::collections::BTreeMap<String, String>>,
) -> Kubelet {
    let mut k = Kubelet::default();
    if let Some(v) = packages.and_then(|p| p.get("kubelet")) {
        k.version = Some(v.clone());
        k.version_source = Some("dpkg package kubelet".into());
    }
    let Some(p) = processes
        .iter()
        .find(|p| p.comm == "kubelet" && !p.is_zombie())
    else {
        return k;
    };
    k.pid = Some(p.pid);
    k.exe = fs.open_proc(p.pid).ok().and_then(|d| d.read_link("exe"));
    k.args = cmdline(fs, p);
    let Some(args) = &k.args else { return k };
    let f = flags(args);
    if let Some(path) = f.get("config").filter(|p| !p.is_empty()) {
        k.config = Some(read_config(fs, remote, path));
    }
    if let Some(dir) = f.get("config-dir").filter(|p| !p.is_empty()) {
        let listed = match remote.why_not(dir) {
            Some(why) => Err(Unavailable::new(dir.as_str(), Kind::Other, why)),
            None => fs.read_dir(rel(dir), MAX_DROP_INS),
        };
        match listed {
            Ok(listing) => {
                let mut names: Vec<String> = listing
                    .entries
                    .into_iter()
                    .map(|e| e.name)
                    .filter(|n| n.ends_with(".conf"))
                    .collect();
                names.sort();
                for n in names {
                    k.drop_ins.push(read_config(
                        fs,
                        remote,
                        &format!("{}/{n}", dir.trim_end_matches('/')),
                    ));
                }
            }
            Err(u) => k.drop_ins.push(ConfigFile {
                path: dir.clone(),
                text: None,
                error: Some(u.to_string()),
            }),
        }
    }
    k
}
