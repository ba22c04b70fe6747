//! Probes of watched paths (does it exist, `statvfs` of its filesystem) that may never
//! return, run where a stuck one cannot hold node-doctor itself.
//!
//! `statvfs` of a FUSE mount whose server has read the request and never answers waits in
//! fs/fuse/dev.c `request_wait_answer`: interruptibly at first, then (after a signal, and
//! once the request is with the server) in a plain `wait_event` that not even SIGKILL ends.
//! A thread of ours stuck there keeps the whole process from exiting: `check` printed its
//! report and then never returned to the shell. So with [`Probes::InChild`] each probe runs
//! in a short-lived child process (the node-doctor binary itself, started with
//! [`CHILD_ARG`]): a child still blocked at the deadline is sent SIGKILL and abandoned (it
//! dies when the connection is aborted), and the parent exits normally. A thread of ours
//! waits on the child's pipe, which exit interrupts. Fixture trees, whose `statvfs` answers
//! come from their descriptor, and callers that give no executable probe on a thread.

use crate::blocking::{self, Started};
use crate::fs::{EntryKind, FsStat, HostFs, RealFs};
use node_doctor_core::model::{Kind, Unavailable};
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};

/// The first argument that makes the node-doctor binary a probe child (`main` checks for
/// it before parsing the command line): `node-doctor __probe ROOT m|p PATH`.
pub const CHILD_ARG: &str = "__probe";

/// Where blocking probes run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Probes {
    /// On a detached thread of this process (a stuck probe keeps the process from exiting).
    #[default]
    InThread,
    /// In a child process running this executable with [`CHILD_ARG`].
    InChild(PathBuf),
}

/// What probing one watched path found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Answer {
    /// The path does not exist on this host (or is not a directory).
    Missing,
    /// It exists; its filesystem's counts.
    Found(FsStat),
    Failed(Unavailable),
}

/// Whether `path` exists (not asked of a mount point, which does: `lstat` below a dead mount
/// blocks too) and the `statvfs` of its filesystem. May block forever.
pub fn probe_path(fs: &dyn HostFs, path: &str, is_mount_point: bool) -> Answer {
    if !is_mount_point {
        match fs.entry_kind(path) {
            Ok(EntryKind::Dir | EntryKind::Symlink) => {}
            Ok(_) => return Answer::Missing,
            Err(u) if u.kind == Kind::NotFound && path != "/" => return Answer::Missing,
            Err(u) => return Answer::Failed(u),
        }
    }
    match fs.statvfs(path) {
        Ok(s) => Answer::Found(s),
        Err(u) => Answer::Failed(u),
    }
}

/// Starts probing `path` under `fs` (whose root the child opens again), keyed so that a
/// probe still blocked from an earlier call is not started twice. Wait on the result with
/// [`Pending::wait`].
pub fn start(probes: &Probes, fs: &Arc<dyn HostFs>, path: &str, is_mount_point: bool) -> Pending {
    let key = format!("statvfs:{}{path}", fs.root().display());
    let child: Arc<Mutex<Option<Child>>> = Arc::new(Mutex::new(None));
    let slot = child.clone();
    let (f, p, exe) = (fs.clone(), path.to_string(), probes.clone());
    let started = blocking::start(&key, move || match exe {
        Probes::InThread => probe_path(&*f, &p, is_mount_point),
        Probes::InChild(exe) => match in_child(&exe, f.root(), &p, is_mount_point, &slot) {
            Some(a) => a,
            // No child could be started: probe here rather than not at all.
            None => probe_path(&*f, &p, is_mount_point),
        },
    });
    Pending { started, child }
}

/// A probe under way.
pub struct Pending {
    started: Started<Answer>,
    child: Arc<Mutex<Option<Child>>>,
}

impl Pending {
    /// The answer, if it comes by `deadline`. A child still blocked then is sent SIGKILL
    /// (it goes once its wait ends; nothing waits for it here).
    pub fn wait(self, deadline: std::time::Instant) -> blocking::Blocking<Answer> {
        let r = self.started.wait(deadline);
        if matches!(r, blocking::Blocking::TimedOut)
            && let Some(c) = lock(&self.child).as_mut()
        {
            // Not yet reaped (the probe thread takes it out before waiting), so its pid is
            // still ours.
            let _ = c.kill();
        }
        r
    }
}

fn lock(m: &Mutex<Option<Child>>) -> std::sync::MutexGuard<'_, Option<Child>> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Most bytes of a child's answer read (an answer is one short JSON line).
const MAX_ANSWER: u64 = 64 << 10;

/// Runs one probe in a child; `None` when no child could be started.
fn in_child(
    exe: &Path,
    root: &Path,
    path: &str,
    is_mount_point: bool,
    slot: &Mutex<Option<Child>>,
) -> Option<Answer> {
    let mut child = Command::new(exe)
        .arg(CHILD_ARG)
        .arg(root)
        .arg(if is_mount_point { "m" } else { "p" })
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let stdout = child.stdout.take();
    *lock(slot) = Some(child);
    let mut out = Vec::new();
    if let Some(s) = stdout {
        let _ = s.take(MAX_ANSWER).read_to_end(&mut out);
    }
    let status = lock(slot).take().map(|mut c| c.wait());
    Some(serde_json::from_slice(&out).unwrap_or_else(|_| {
        let how = match status {
            Some(Ok(s)) => s.to_string(),
            Some(Err(e)) => e.to_string(),
            None => "gone".into(),
        };
        Answer::Failed(Unavailable::new(
            path,
            Kind::Other,
            format!("the probe process ended without an answer ({how})"),
        ))
    }))
}

/// The probe child: `ROOT m|p PATH` (the arguments after [`CHILD_ARG`]); prints the
/// [`Answer`] as one JSON line.
pub fn child_main(mut args: impl Iterator<Item = OsString>) -> ExitCode {
    let (Some(root), Some(kind), Some(path)) = (args.next(), args.next(), args.next()) else {
        eprintln!("usage: node-doctor {CHILD_ARG} ROOT m|p PATH");
        return ExitCode::from(2);
    };
    let path = path.to_string_lossy();
    let answer = match RealFs::new(PathBuf::from(root)) {
        Ok(fs) => probe_path(&fs, &path, kind == "m"),
        Err(e) => Answer::Failed(Unavailable::io(&path, &e)),
    };
    let mut line = serde_json::to_vec(&answer).unwrap_or_default();
    line.push(b'\n');
    let mut out = std::io::stdout().lock();
    match out.write_all(&line).and_then(|_| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_round_trip_as_one_json_line() {
        let answers = [
            Answer::Missing,
            Answer::Found(FsStat {
                block_size: 4096,
                blocks: 10,
                ..FsStat::default()
            }),
            Answer::Failed(Unavailable::new("x", Kind::Denied, "no")),
        ];
        for a in answers {
            let line = serde_json::to_string(&a).unwrap();
            assert!(!line.contains('\n'));
            assert_eq!(serde_json::from_str::<Answer>(&line).unwrap(), a);
        }
    }

    #[test]
    fn probing_on_a_thread_finds_what_exists() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("var/lib/kubelet")).unwrap();
        let fs: Arc<dyn HostFs> = Arc::new(RealFs::new(dir.path()).unwrap());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let found = start(&Probes::InThread, &fs, "/var/lib/kubelet", false).wait(deadline);
        assert!(matches!(found, blocking::Blocking::Done(Answer::Found(s)) if s.block_size > 0));
        let missing = start(&Probes::InThread, &fs, "/var/lib/docker", false).wait(deadline);
        assert_eq!(missing, blocking::Blocking::Done(Answer::Missing));
        // An executable that is not node-doctor answers nothing: a clear failure, no hang.
        let other = Probes::InChild(PathBuf::from("/bin/true"));
        let r = start(&other, &fs, "/var/lib/kubelet", false).wait(deadline);
        assert!(
            matches!(&r, blocking::Blocking::Done(Answer::Failed(u)) if u.reason.contains("without an answer")),
            "{r:?}"
        );
        // One that cannot be started: probed on the thread instead.
        let none = Probes::InChild(dir.path().join("no-such-exe"));
        let r = start(&none, &fs, "/var/lib/kubelet", false).wait(deadline);
        assert!(
            matches!(r, blocking::Blocking::Done(Answer::Found(_))),
            "{r:?}"
        );
    }
}
