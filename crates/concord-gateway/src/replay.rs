//! A v2 session's replay buffer: the dispatches it was sent, kept for a RESUME.
//!
//! Bounded three ways per session (events, bytes, age) and once for the node: every
//! buffer draws its bytes from one shared [`ReplayBudget`], and a session whose push
//! finds the budget spent gives up its own oldest entries first. The entries are the
//! shared payloads the fan-out queued, so a buffer costs a reference count and a
//! sequence number per event, not a copy; bytes are counted as if unshared, which
//! over-counts and so keeps the bound safe.

use std::{
    collections::VecDeque,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::time::Instant;

use crate::Payload;

/// Per-session bounds of the replay buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayLimits {
    /// Most events kept.
    pub max_events: usize,
    /// Most bytes kept.
    pub max_bytes: usize,
    /// Oldest event kept.
    pub max_age: Duration,
}

impl Default for ReplayLimits {
    fn default() -> Self {
        Self {
            max_events: 1_000,
            max_bytes: 1024 * 1024,
            max_age: Duration::from_secs(120),
        }
    }
}

/// The bytes every replay buffer of a node may hold together.
#[derive(Debug)]
pub struct ReplayBudget {
    used: AtomicUsize,
    max: usize,
}

impl ReplayBudget {
    /// A budget of `max` bytes.
    pub fn new(max: usize) -> Self {
        Self {
            used: AtomicUsize::new(0),
            max,
        }
    }

    /// Bytes held now by all buffers.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

#[derive(Debug)]
struct Kept {
    seq: u64,
    at: Instant,
    payload: Payload,
}

/// One session's replay buffer.
#[derive(Debug)]
pub(crate) struct Replay {
    entries: VecDeque<Kept>,
    bytes: usize,
    /// Of `bytes`, how many the node's budget has been told of: pushes and evictions
    /// are settled with it once per write, not once per event (every session touching
    /// one shared counter per delivery measured as a cost of its own).
    settled: usize,
    limits: ReplayLimits,
    budget: Arc<ReplayBudget>,
}

impl Replay {
    pub(crate) fn new(limits: ReplayLimits, budget: Arc<ReplayBudget>) -> Self {
        Self {
            entries: VecDeque::new(),
            bytes: 0,
            settled: 0,
            limits,
            budget,
        }
    }

    /// Keeps a dispatch sent as `seq`, evicting what the session's bounds no longer
    /// allow. The node's budget is settled by [`Replay::settle`].
    pub(crate) fn push(&mut self, seq: u64, payload: Payload, now: Instant) {
        self.bytes += payload.len();
        self.entries.push_back(Kept {
            seq,
            at: now,
            payload,
        });
        while let Some(oldest) = self.entries.front() {
            let too_many = self.entries.len() > self.limits.max_events;
            let too_big = self.bytes > self.limits.max_bytes;
            let too_old = now.saturating_duration_since(oldest.at) > self.limits.max_age;
            if !(too_many || too_big || too_old) {
                break;
            }
            self.pop_front();
        }
    }

    /// Tells the node's budget what changed since the last settling; when the budget
    /// is spent, this session gives up its own oldest events until it fits.
    pub(crate) fn settle(&mut self) {
        if self.bytes > self.settled {
            let added = self.bytes - self.settled;
            let used = self.budget.used.fetch_add(added, Ordering::Relaxed) + added;
            self.settled = self.bytes;
            let mut over = used.saturating_sub(self.budget.max);
            while over > 0 && !self.entries.is_empty() {
                over = over.saturating_sub(self.pop_front());
            }
        }
        if self.settled > self.bytes {
            self.budget
                .used
                .fetch_sub(self.settled - self.bytes, Ordering::Relaxed);
            self.settled = self.bytes;
        }
    }

    fn pop_front(&mut self) -> usize {
        let Some(kept) = self.entries.pop_front() else {
            return 0;
        };
        let len = kept.payload.len();
        self.bytes -= len;
        len
    }

    /// Drops what is older than the age bound.
    pub(crate) fn expire(&mut self, now: Instant) {
        while self
            .entries
            .front()
            .is_some_and(|k| now.saturating_duration_since(k.at) > self.limits.max_age)
        {
            self.pop_front();
        }
        self.settle();
    }

    /// Every kept event after `seq`, in order, when the buffer still holds all of
    /// them: `seq` is at most `last_sent`, and the event after it is kept (or none
    /// was sent after it). `None` otherwise.
    pub(crate) fn after(&self, seq: u64, last_sent: u64) -> Option<Vec<(u64, Payload)>> {
        if seq > last_sent {
            return None;
        }
        if seq == last_sent {
            return Some(Vec::new());
        }
        let first = self.entries.front()?.seq;
        if first > seq + 1 {
            return None;
        }
        Some(
            self.entries
                .iter()
                .filter(|k| k.seq > seq)
                .map(|k| (k.seq, k.payload.clone()))
                .collect(),
        )
    }

    /// Every kept event, oldest first.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (u64, &Payload)> {
        self.entries.iter().map(|k| (k.seq, &k.payload))
    }

    /// Events kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.settled, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: usize) -> Payload {
        Payload::text(&"x".repeat(n))
    }

    fn replay(limits: ReplayLimits, budget: usize) -> (Replay, Arc<ReplayBudget>) {
        let budget = Arc::new(ReplayBudget::new(budget));
        (Replay::new(limits, Arc::clone(&budget)), budget)
    }

    #[tokio::test(start_paused = true)]
    async fn bounded_by_count_bytes_and_age() {
        let limits = ReplayLimits {
            max_events: 3,
            max_bytes: 1 << 20,
            max_age: Duration::from_secs(10),
        };
        let (mut r, _) = replay(limits, usize::MAX);
        for seq in 1..=5 {
            r.push(seq, frame(1), Instant::now());
        }
        assert_eq!(r.len(), 3);
        assert!(r.after(1, 5).is_none(), "2 fell out");
        let seqs: Vec<u64> = r.after(2, 5).unwrap().iter().map(|e| e.0).collect();
        assert_eq!(seqs, [3, 4, 5]);
        assert_eq!(r.after(5, 5).unwrap().len(), 0);
        assert!(r.after(6, 5).is_none(), "a seq never sent");
        tokio::time::advance(Duration::from_secs(11)).await;
        r.push(6, frame(1), Instant::now());
        assert_eq!(r.len(), 1, "older than 10 s");
        let limits = ReplayLimits {
            max_events: 100,
            max_bytes: 30,
            max_age: Duration::from_secs(10),
        };
        let (mut r, _) = replay(limits, usize::MAX);
        for seq in 1..=3 {
            r.push(seq, frame(10), Instant::now()); // 12 bytes each on the wire
        }
        assert_eq!(r.len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_node_budget_is_shared_and_released() {
        let limits = ReplayLimits::default();
        let budget = Arc::new(ReplayBudget::new(30));
        let mut a = Replay::new(limits, Arc::clone(&budget));
        let mut b = Replay::new(limits, Arc::clone(&budget));
        a.push(1, frame(10), Instant::now());
        a.push(2, frame(10), Instant::now());
        a.settle();
        assert_eq!(budget.used(), 24);
        b.push(1, frame(10), Instant::now());
        b.settle();
        assert_eq!(b.len(), 0, "b gives up its own entry: the budget is spent");
        assert_eq!(budget.used(), 24);
        drop(a);
        assert_eq!(budget.used(), 0);
        b.push(2, frame(10), Instant::now());
        b.settle();
        assert_eq!(budget.used(), 12);
    }
}
