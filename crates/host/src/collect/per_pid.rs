//! Runs a per-process read over many pids on a few detached worker threads, with a deadline.
//!
//! The cost of reading `/proc/PID/*` is almost all in the kernel (generating `status` text,
//! resolving fd links), which scales with cores. The workers are detached and results stream
//! back over a channel, so a read that blocks in the kernel (a file of a process stuck on a
//! dead FUSE or NFS server) stalls only its worker: at the deadline the caller gets what was
//! read, the count left out, and the pid each stuck worker was on — never a hung run.
//!
//! A worker abandoned at a deadline stays blocked in the kernel. So that a long-running agent
//! does not leave one more such thread behind at every scan, the pids of abandoned reads are
//! remembered until their read returns, and later runs skip them (reported as still
//! blocked) instead of starting another read that would block the same way.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

/// Pids whose read was abandoned at a deadline and has not returned yet.
static STUCK: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());
/// How many pids STUCK holds: the workers look at the set only when it is not empty (a
/// lock per process taken by every worker is a futex per process under contention).
static STUCK_LEN: AtomicUsize = AtomicUsize::new(0);

fn note_stuck(pids: &[i32]) {
    let mut s = stuck();
    s.extend(pids.iter().copied());
    STUCK_LEN.store(s.len(), Ordering::SeqCst);
}

fn unstuck(pid: i32) {
    if STUCK_LEN.load(Ordering::SeqCst) == 0 {
        return;
    }
    let mut s = stuck();
    if s.remove(&pid) {
        STUCK_LEN.store(s.len(), Ordering::SeqCst);
    }
}

fn stuck() -> std::sync::MutexGuard<'static, BTreeSet<i32>> {
    STUCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a run over the pids gave.
#[derive(Debug)]
pub struct PerPid<T> {
    /// Results in completion order (callers sort).
    pub results: Vec<T>,
    /// Pids whose read returned nothing (the process vanished, or is not of interest).
    pub none: u64,
    /// Pids not read because the deadline passed first (includes `blocked`).
    pub skipped_for_deadline: u64,
    /// Pids a worker was still reading at the deadline, and pids skipped because a read
    /// abandoned earlier is still blocked on them.
    pub blocked: Vec<i32>,
    /// Why workers could not be started, if they could not.
    pub spawn_errors: Vec<String>,
}

/// Calls `work(pid)` for every pid, on up to 4 threads (fewer for few pids). `work` returns
/// the result for the pid, or `None`.
pub fn for_each_pid<T, F>(mut pids: Vec<i32>, deadline: Option<Instant>, work: F) -> PerPid<T>
where
    T: Send + 'static,
    F: Fn(i32) -> Option<T> + Send + Sync + 'static,
{
    let mut out = PerPid {
        results: Vec::with_capacity(pids.len()),
        none: 0,
        skipped_for_deadline: 0,
        blocked: Vec::new(),
        spawn_errors: Vec::new(),
    };
    {
        let stuck = stuck();
        if !stuck.is_empty() {
            pids.retain(|p| {
                let s = stuck.contains(p);
                if s {
                    out.blocked.push(*p);
                }
                !s
            });
            out.skipped_for_deadline = out.blocked.len() as u64;
        }
    }
    let total = pids.len();
    if deadline.is_some_and(|d| Instant::now() >= d) {
        out.skipped_for_deadline = out.skipped_for_deadline.saturating_add(total as u64);
        return out;
    }
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4)
        .min(total.div_ceil(256).max(1));
    let pids = Arc::new(pids);
    let work = Arc::new(work);
    let next = Arc::new(AtomicUsize::new(0));
    // Each worker keeps its results in a slot of its own (a lock nobody else takes while it
    // works: no futex), and says on the channel only that it is done. At a deadline the
    // caller takes what each slot holds; a worker blocked in the kernel holds no lock.
    let (tx, rx) = mpsc::channel::<()>();
    let mut current: Vec<(Arc<AtomicI32>, Slot<T>)> = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (pids, next, tx, work) = (pids.clone(), next.clone(), tx.clone(), work.clone());
        let now_reading = Arc::new(AtomicI32::new(0));
        let slot: Slot<T> = Arc::new(Mutex::new(Vec::new()));
        let (mine, my_slot) = (now_reading.clone(), slot.clone());
        let spawned = std::thread::Builder::new()
            .name("proc-scan".into())
            .spawn(move || worker(&pids, &next, &mine, &my_slot, &tx, &*work));
        match spawned {
            Ok(_) => current.push((now_reading, slot)),
            Err(e) => out
                .spawn_errors
                .push(format!("cannot start a scan thread: {e}")),
        }
    }
    drop(tx);

    let mut finished_workers: usize = 0;
    let mut timed_out = false;
    while finished_workers < current.len() {
        let msg = match deadline {
            None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
            Some(d) => rx.recv_timeout(d.saturating_duration_since(Instant::now())),
        };
        match msg {
            Ok(()) => finished_workers = finished_workers.saturating_add(1),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                timed_out = true;
                break;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    if timed_out {
        // Stop the workers taking more pids; a read under way when its slot is emptied
        // below is dropped with the worker (its pid is named blocked or counted skipped).
        next.store(total, Ordering::SeqCst);
    }
    let mut handled: usize = 0;
    for (_, slot) in &current {
        let got = std::mem::take(&mut *lock(slot));
        handled = handled.saturating_add(got.len());
        for r in got {
            accept(&mut out, r);
        }
    }
    if timed_out {
        out.skipped_for_deadline = out
            .skipped_for_deadline
            .saturating_add(total.saturating_sub(handled) as u64);
        // Name the pid each still-busy worker is blocked on; that read is abandoned.
        let now_blocked: Vec<i32> = current
            .iter()
            .map(|(c, _)| c.load(Ordering::SeqCst))
            .filter(|&pid| pid > 0)
            .collect();
        note_stuck(&now_blocked);
        out.blocked.extend(now_blocked);
    }
    out
}

/// One worker's results so far.
type Slot<T> = Arc<Mutex<Vec<Option<T>>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn accept<T>(out: &mut PerPid<T>, r: Option<T>) {
    match r {
        Some(t) => out.results.push(t),
        None => out.none += 1,
    }
}

fn worker<T, F: Fn(i32) -> Option<T>>(
    pids: &[i32],
    next: &AtomicUsize,
    now_reading: &AtomicI32,
    slot: &Mutex<Vec<Option<T>>>,
    done: &mpsc::Sender<()>,
    work: &F,
) {
    loop {
        let i = next.fetch_add(1, Ordering::SeqCst);
        if i >= pids.len() {
            break;
        }
        let Some(&pid) = pids.get(i) else { break };
        now_reading.store(pid, Ordering::SeqCst);
        let r = work(pid);
        // If the caller gave up on this read, it remembered the pid: the read is over now.
        unstuck(pid);
        // Past a deadline the caller may have emptied the slot already: a late result then
        // goes nowhere (the caller counted it as skipped).
        lock(slot).push(r);
        now_reading.store(0, Ordering::SeqCst);
    }
    let _ = done.send(());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn every_pid_once() {
        let r = for_each_pid((1..=1000).collect(), None, |p| (p % 10 != 0).then_some(p));
        let mut got = r.results;
        got.sort_unstable();
        assert_eq!(got.len(), 900);
        assert_eq!(r.none, 100);
        assert_eq!(r.skipped_for_deadline, 0);
    }

    #[test]
    fn a_blocked_read_is_abandoned_at_the_deadline_and_not_retried_while_blocked() {
        // Pids far above any real pid, so other tests' scans never skip them.
        const STUCK_PID: i32 = 2_000_000_007;
        let pids: Vec<i32> = (2_000_000_001..=2_000_000_600).collect();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        let deadline = Instant::now() + Duration::from_millis(200);
        let rx = release_rx.clone();
        let r = for_each_pid(pids.clone(), Some(deadline), move |p| {
            if p == STUCK_PID {
                let _ = rx.lock().unwrap().recv(); // a read stuck in the kernel
            }
            Some(p)
        });
        assert_eq!(r.blocked, vec![STUCK_PID]);
        assert!(r.skipped_for_deadline >= 1);
        assert_eq!(r.results.len() as u64 + r.skipped_for_deadline, 600);
        // The next run skips the pid still blocked instead of blocking another thread on it.
        let again = for_each_pid(pids.clone(), None, Some);
        assert_eq!(again.blocked, vec![STUCK_PID]);
        assert_eq!(again.results.len(), 599);
        // Once the read returns, the pid is read again.
        release_tx.send(()).unwrap();
        for _ in 0..200 {
            if !stuck().contains(&STUCK_PID) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let after = for_each_pid(vec![STUCK_PID], None, Some);
        assert_eq!(after.results, vec![STUCK_PID]);
    }
}
