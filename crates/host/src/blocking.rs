//! Calls that can block in the kernel with no way to interrupt them — `statvfs` or `lstat`
//! of a mount whose FUSE/NFS server is gone (the classic `df` hang on a sick node), a read of
//! a file of a process stuck in D state — run here: on a detached thread, waited for up to a
//! deadline. A call still blocked at the deadline is abandoned (its thread stays blocked in
//! the kernel until the server answers or the connection is aborted).
//!
//! Abandoned threads must not pile up in a long-running agent: each call has a key (the path
//! or pid it touches); while a call with that key is still blocked, a new one is not started
//! and reports [`Blocking::StillBlocked`] at once, and at most [`MAX_STUCK`] calls may be
//! blocked at a time. A call of a key another caller is running right now (not abandoned)
//! waits for it, up to [`CONCURRENT_WAIT`].
//!
//! A thread stuck in an uninterruptible wait also keeps its process from exiting: exit_group
//! kills the other threads, but one in `wait_event` (a FUSE request the server has read and
//! never answers, fs/fuse/dev.c `request_wait_answer`) stays, and the parent's `wait` does
//! not return until it is gone (the report is printed, the command never ends). So calls that
//! can wait that way run in a child process where one is available ([`crate::probe`]): the
//! thread here only waits on a pipe, which exit interrupts.

use std::collections::BTreeMap;
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

/// Most abandoned calls alive at once; past it, new blocking calls are refused.
pub const MAX_STUCK: usize = 32;

/// Keys of calls running or abandoned, with when they started and whether their caller gave
/// up on them (abandoned).
static IN_FLIGHT: Mutex<BTreeMap<String, (Instant, bool)>> = Mutex::new(BTreeMap::new());

/// How long a call waits for another caller's call of the same key that is still running (not
/// abandoned) before reporting it blocked: two collections of one root at once (the agent's
/// and an on-demand one, parallel tests) must not take each other for a dead mount.
pub const CONCURRENT_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, PartialEq)]
pub enum Blocking<T> {
    Done(T),
    /// Still blocked at the deadline: abandoned.
    TimedOut,
    /// A previous call with the same key has been blocked since `since`: not started again.
    StillBlocked {
        since: Instant,
    },
    /// Too many abandoned calls, or no thread could be started.
    Refused(String),
}

fn in_flight() -> std::sync::MutexGuard<'static, BTreeMap<String, (Instant, bool)>> {
    IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner())
}

/// How many calls are blocked (abandoned or running) now.
pub fn blocked_now() -> usize {
    in_flight().len()
}

/// A call started on its own thread ([`start`]), or why it was not.
pub enum Started<T> {
    /// Under way: its answer will come on the receiver; the key marks it abandoned if its
    /// caller gives up.
    Running(mpsc::Receiver<T>, String),
    Not(Blocking<T>),
}

impl<T> Started<T> {
    /// Its answer, if it comes by `deadline`; else it is abandoned.
    pub fn wait(self, deadline: Instant) -> Blocking<T> {
        match self {
            Started::Not(b) => b,
            Started::Running(rx, key) => {
                match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(r) => Blocking::Done(r),
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        // Given up on: later calls of the key report it blocked until it
                        // returns.
                        if let Some(e) = in_flight().get_mut(&key) {
                            e.1 = true;
                        }
                        Blocking::TimedOut
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        Blocking::Refused("the call's thread ended without an answer".into())
                    }
                }
            }
        }
    }
}

/// Starts `f` on its own thread under `key`, without waiting: several calls can then be
/// waited for against one deadline (paths below one dead mount cost one timeout, not one
/// each).
pub fn start<T: Send + 'static>(key: &str, f: impl FnOnce() -> T + Send + 'static) -> Started<T> {
    let waiting_since = Instant::now();
    loop {
        let mut map = in_flight();
        match map.get(key) {
            // Abandoned at an earlier deadline and not returned since: blocked in the kernel.
            Some(&(since, true)) => return Started::Not(Blocking::StillBlocked { since }),
            // Another caller's call of the key is running now: wait for it a little.
            Some(&(since, false)) => {
                drop(map);
                if waiting_since.elapsed() >= CONCURRENT_WAIT {
                    return Started::Not(Blocking::StillBlocked { since });
                }
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
            None => {}
        }
        if map.len() >= MAX_STUCK {
            return Started::Not(Blocking::Refused(format!(
                "{} calls are already blocked in the kernel; not starting another",
                map.len()
            )));
        }
        map.insert(key.to_string(), (Instant::now(), false));
        break;
    }
    let (tx, rx) = mpsc::sync_channel(1);
    let owned_key = key.to_string();
    let spawned = std::thread::Builder::new()
        .name("nd-blocking".into())
        .spawn(move || {
            let r = f();
            in_flight().remove(&owned_key);
            let _ = tx.send(r); // the caller may have given up
        });
    if let Err(e) = spawned {
        in_flight().remove(key);
        return Started::Not(Blocking::Refused(format!("cannot start a thread: {e}")));
    }
    Started::Running(rx, key.to_string())
}

/// Runs `f` on its own thread and waits until `deadline`.
pub fn run<T: Send + 'static>(
    key: &str,
    deadline: Instant,
    f: impl FnOnce() -> T + Send + 'static,
) -> Blocking<T> {
    start(key, f).wait(deadline)
}

/// `run` with a timeout from now, capped by an overall deadline.
pub fn run_for<T: Send + 'static>(
    key: &str,
    timeout: Duration,
    deadline: Option<Instant>,
    f: impl FnOnce() -> T + Send + 'static,
) -> Blocking<T> {
    let mut d = Instant::now() + timeout;
    if let Some(g) = deadline {
        d = d.min(g);
    }
    run(key, d, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_concurrent_call_of_the_same_key_is_waited_for_not_reported_blocked() {
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let first = std::thread::spawn(move || {
            run(
                "test-key-2",
                Instant::now() + Duration::from_secs(5),
                move || {
                    let _ = go_rx.recv();
                    1
                },
            )
        });
        // The first call is running (not abandoned): a second one waits for it.
        while !in_flight().contains_key("test-key-2") {
            std::thread::sleep(Duration::from_millis(1));
        }
        let second =
            std::thread::spawn(|| run("test-key-2", Instant::now() + Duration::from_secs(5), || 2));
        std::thread::sleep(Duration::from_millis(20));
        go_tx.send(()).unwrap();
        assert_eq!(first.join().unwrap(), Blocking::Done(1));
        assert_eq!(second.join().unwrap(), Blocking::Done(2));
    }

    #[test]
    fn a_blocked_call_is_abandoned_and_not_started_again() {
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let r = run(
            "test-key-1",
            Instant::now() + Duration::from_millis(100),
            move || {
                let _ = release_rx.recv(); // blocked until released
                7
            },
        );
        assert_eq!(r, Blocking::TimedOut);
        let again = run("test-key-1", Instant::now() + Duration::from_secs(5), || 8);
        assert!(matches!(again, Blocking::StillBlocked { .. }));
        release_tx.send(()).unwrap();
        // Once the first call returns, the key is free again.
        for _ in 0..100 {
            if !in_flight().contains_key("test-key-1") {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            run("test-key-1", Instant::now() + Duration::from_secs(5), || 9),
            Blocking::Done(9)
        );
    }
}
