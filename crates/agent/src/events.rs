//! Events to post, in a bounded queue: while the API server is down or refusing, the agent
//! keeps at most `capacity` events and drops the oldest (counted), instead of growing or
//! blocking; the sender retries with backoff and drains the queue when it is back.

use crate::publish::EventSpec;
use std::collections::{BTreeMap, VecDeque};

#[derive(Debug)]
pub struct EventQueue {
    queue: VecDeque<EventSpec>,
    capacity: usize,
    /// Dropped since the last `take_dropped`.
    dropped: u64,
    /// When an event about each key was last queued: an active finding is re-emitted at
    /// most every `repeat_ms`.
    last_by_key: BTreeMap<String, u64>,
    repeat_ms: u64,
    /// Wakes the sender on every push: an Event goes out as soon as it is queued, not at
    /// the sender's next idle poll.
    queued: std::sync::Arc<tokio::sync::Notify>,
}

/// Keys remembered at most (the oldest forgotten first), so the de-duplication map is
/// bounded too.
const MAX_KEYS: usize = 4096;

impl EventQueue {
    pub fn new(capacity: usize, repeat_ms: u64) -> Self {
        Self {
            queue: VecDeque::new(),
            capacity: capacity.max(1),
            dropped: 0,
            last_by_key: BTreeMap::new(),
            repeat_ms,
            queued: std::sync::Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Notified on every push (a permit is kept when nobody waits).
    pub fn queued(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.queued.clone()
    }

    /// Queues `ev` unless an event with its key went out less than `repeat_ms` ago (unless
    /// `always`: a condition transition is always reported).
    pub fn push(&mut self, ev: EventSpec, always: bool) -> bool {
        if !always
            && self
                .last_by_key
                .get(&ev.key)
                .is_some_and(|&t| ev.at_ms.saturating_sub(t) < self.repeat_ms)
        {
            return false;
        }
        if self.last_by_key.len() >= MAX_KEYS && !self.last_by_key.contains_key(&ev.key) {
            // Forget the key seen longest ago.
            if let Some(oldest) = self
                .last_by_key
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(k, _)| k.clone())
            {
                self.last_by_key.remove(&oldest);
            }
        }
        self.last_by_key.insert(ev.key.clone(), ev.at_ms);
        if self.queue.len() >= self.capacity {
            self.queue.pop_front();
            self.dropped = self.dropped.saturating_add(1);
        }
        self.queue.push_back(ev);
        self.queued.notify_one();
        true
    }

    pub fn front(&self) -> Option<&EventSpec> {
        self.queue.front()
    }

    pub fn pop(&mut self) -> Option<EventSpec> {
        self.queue.pop_front()
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(key: &str, at: u64) -> EventSpec {
        EventSpec {
            type_: "Warning",
            reason: "OOMKilling".into(),
            action: "Logged",
            note: format!("{key} at {at}"),
            key: key.into(),
            at_ms: at,
        }
    }

    #[test]
    fn overflow_drops_the_oldest_and_counts() {
        let mut q = EventQueue::new(3, 0);
        for i in 0..5 {
            q.push(ev(&format!("k{i}"), i), false);
        }
        assert_eq!(q.len(), 3);
        assert_eq!(q.take_dropped(), 2);
        assert_eq!(q.front().map(|e| e.key.as_str()), Some("k2"));
    }

    #[test]
    fn repeats_are_spaced() {
        let mut q = EventQueue::new(10, 1000);
        assert!(q.push(ev("k", 0), false));
        assert!(!q.push(ev("k", 500), false));
        assert!(q.push(ev("k", 500), true), "a transition always goes");
        assert!(q.push(ev("k", 1600), false));
    }
}
