//! The Hub: every live session of this node, by id and by user.
//!
//! The Hub knows users and sessions, nothing of chat. The domain resolves an event's
//! audience to user ids from its in-memory state and hands the Hub one serialized
//! payload; the Hub queues that same payload (shared bytes) on every session of those
//! users, under the Hub's read lock (a push never waits on anything but that one
//! session's queue).

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use concord_protocol::{Intents, UserId};

use crate::{AudioLane, CloseReason, FrameBatch, Frames, Outbox, Payload, Pushed, QueueLimits};

/// Identifies one session (one socket) on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

/// A live session as producers see it.
#[derive(Debug)]
pub struct SessionEntry {
    /// The session.
    pub id: SessionId,
    /// Whose it is.
    pub user_id: UserId,
    /// Its outbound queue.
    pub outbox: Outbox,
    /// Protocol v2 (sequenced, may receive v2-only events).
    pub v2: bool,
    /// The event groups it receives (every group for v1).
    pub intents: Intents,
    /// Relayed audio, apart from the outbox (open while the session subscribes to a
    /// voice channel's audio; v2 only).
    pub audio: AudioLane,
    /// A socket serves it now. A v2 session whose socket dropped stays registered,
    /// detached, for the resume window: events keep queuing for it, but it does not
    /// count as the user being connected.
    attached: AtomicBool,
}

impl SessionEntry {
    /// Whether a socket serves the session now.
    pub fn is_attached(&self) -> bool {
        self.attached.load(Ordering::Acquire)
    }
}

/// What kind of session [`Hub::register_session`] registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionKind {
    /// Protocol v2.
    pub v2: bool,
    /// The event groups it receives.
    pub intents: Intents,
}

impl SessionKind {
    /// A v1 session: every event a v1 client may see.
    pub const V1: Self = Self {
        v2: false,
        intents: Intents::ALL,
    };
}

#[derive(Debug, Default)]
struct State {
    sessions: HashMap<SessionId, Arc<SessionEntry>>,
    by_user: HashMap<UserId, Vec<Arc<SessionEntry>>>,
}

/// Registry of this node's sessions and the fan-out entry point.
#[derive(Debug, Default)]
pub struct Hub {
    state: RwLock<State>,
    next_id: AtomicU64,
    users: std::sync::OnceLock<Arc<dyn UserWatch>>,
}

/// Told when a user's first session on this node registers (attached or not) and
/// when their last one is removed: a node of a cluster subscribes to what its users
/// need. Called under the hub's lock, in order; it must be quick and must not call
/// back into the hub.
pub trait UserWatch: Send + Sync + std::fmt::Debug {
    /// `user` has a session on this node now, and had none.
    fn first(&self, user: UserId);
    /// `user`'s last session on this node is gone.
    fn last(&self, user: UserId);
}

/// Outcome of a fan-out.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Sessions the payload was queued on.
    pub queued: usize,
    /// Sessions that overflowed and are now closing.
    pub overflowed: usize,
    /// Sessions that were already closing: the payload was dropped for them.
    pub dropped: usize,
}

/// How many sessions a hub holds, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Census {
    /// Protocol v1 sessions (always served by a socket).
    pub v1: usize,
    /// Protocol v2 sessions served by a socket.
    pub v2_attached: usize,
    /// Protocol v2 sessions waiting for a RESUME.
    pub v2_detached: usize,
}

impl Hub {
    /// An empty hub.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a new session for `user`; from now on it receives the user's events
    /// (queued until its writer starts, which happens after READY).
    pub fn register(&self, user_id: UserId, limits: QueueLimits) -> Arc<SessionEntry> {
        self.register_session(user_id, limits, SessionKind::V1)
    }

    /// Registers a new, attached session of `kind` for `user`.
    pub fn register_session(
        &self,
        user_id: UserId,
        limits: QueueLimits,
        kind: SessionKind,
    ) -> Arc<SessionEntry> {
        let id = SessionId(self.next_id.fetch_add(1, Ordering::Relaxed) + 1);
        let entry = Arc::new(SessionEntry {
            id,
            user_id,
            outbox: Outbox::new(limits),
            v2: kind.v2,
            intents: kind.intents,
            attached: AtomicBool::new(true),
            audio: AudioLane::default(),
        });
        let mut state = self.write();
        state.sessions.insert(id, Arc::clone(&entry));
        let sessions = state.by_user.entry(user_id).or_default();
        sessions.push(Arc::clone(&entry));
        if sessions.len() == 1
            && let Some(users) = self.users.get()
        {
            users.first(user_id);
        }
        entry
    }

    /// Tells `watch` of every user's first and last session from now on (once per
    /// hub; a second call is ignored). Set it before any session registers.
    pub fn watch_users(&self, watch: Arc<dyn UserWatch>) {
        let _ = self.users.set(watch);
    }

    /// Removes a session; returns how many attached sessions its user still has on
    /// this node.
    pub fn unregister(&self, id: SessionId) -> usize {
        let mut state = self.write();
        let Some(entry) = state.sessions.remove(&id) else {
            return 0;
        };
        let user = entry.user_id;
        match state.by_user.get_mut(&user) {
            Some(list) => {
                // Pointer comparison: no visit to every other session's entry, which
                // matters for a user with thousands of sessions (bots, shards).
                if let Some(at) = list.iter().position(|s| Arc::ptr_eq(s, &entry)) {
                    list.swap_remove(at);
                }
                if list.is_empty() {
                    state.by_user.remove(&user);
                    if let Some(users) = self.users.get() {
                        users.last(user);
                    }
                    0
                } else {
                    attached_in(list)
                }
            }
            None => 0,
        }
    }

    /// Marks a session as served by no socket (a v2 session waiting to be resumed); it
    /// stays registered and keeps queuing events. Returns how many attached sessions
    /// its user still has on this node.
    pub fn detach(&self, entry: &SessionEntry) -> usize {
        entry.attached.store(false, Ordering::Release);
        let state = self.read();
        state
            .by_user
            .get(&entry.user_id)
            .map_or(0, |l| attached_in(l))
    }

    /// Marks a detached session as served by a socket again (resumed).
    pub fn attach(&self, entry: &SessionEntry) {
        entry.attached.store(true, Ordering::Release);
    }

    /// Queues `payload` on every session of every listed user. Users listed twice get
    /// it twice, so callers pass sets.
    pub fn send_to_users<I>(&self, users: I, payload: &Payload) -> Delivery
    where
        I: IntoIterator<Item = UserId>,
    {
        self.send_frames_to_users(users, &Frames::One(payload.clone()))
    }

    /// Queues a shared batch of frames on every session of every listed user: one
    /// queue entry per session, however many frames the batch holds.
    pub fn send_batch_to_users<I>(&self, users: I, batch: &Arc<FrameBatch>) -> Delivery
    where
        I: IntoIterator<Item = UserId>,
    {
        self.send_frames_to_users(users, &Frames::Many(Arc::clone(batch)))
    }

    /// Queues one entry (a frame, a shared batch, or a shared batch less a run of its
    /// frames) on every session of every listed user.
    ///
    /// Pushes under the read lock: a push only locks that session's queue and wakes
    /// its writer (never runs it), so nothing here can wait on the Hub. Collecting
    /// the targets first would cost an allocation and two reference-count updates per
    /// recipient, on cache lines the recipients' writers are using.
    pub fn send_frames_to_users<I>(&self, users: I, frames: &Frames) -> Delivery
    where
        I: IntoIterator<Item = UserId>,
    {
        let state = self.read();
        let mut delivery = Delivery::default();
        if state.by_user.is_empty() {
            return delivery;
        }
        for user in users {
            if let Some(sessions) = state.by_user.get(&user) {
                for session in sessions {
                    // Filtered before anything is queued: a v1 session never sees a
                    // v2 event, and a v2 session nothing outside its intents.
                    if frames.wanted_by(session.v2, session.intents) {
                        delivery.record(session, session.outbox.push_frames(frames.clone()));
                    }
                }
            }
        }
        delivery
    }

    /// Queues `payload` on every session of `user`.
    pub fn send_to_user(&self, user: UserId, payload: &Payload) -> Delivery {
        self.send_to_users([user], payload)
    }

    /// The session registered under `id`, attached or not.
    pub fn session(&self, id: SessionId) -> Option<Arc<SessionEntry>> {
        self.read().sessions.get(&id).map(Arc::clone)
    }

    /// Queues `payload` on one session.
    pub fn send_to_session(&self, id: SessionId, payload: &Payload) -> Delivery {
        let state = self.read();
        let mut delivery = Delivery::default();
        if let Some(session) = state.sessions.get(&id) {
            delivery.record(session, session.outbox.push(payload.clone()));
        }
        delivery
    }

    /// Closes every session of `user` (revoked, disabled, deleted).
    pub fn close_user(&self, user: UserId, reason: CloseReason) {
        let targets = self.read().by_user.get(&user).cloned().unwrap_or_default();
        for session in targets {
            session.outbox.close(reason);
        }
    }

    /// Closes one session (its login was ended); nothing when it is gone already.
    pub fn close_session(&self, id: SessionId, reason: CloseReason) {
        let target = self.read().sessions.get(&id).map(Arc::clone);
        if let Some(session) = target {
            session.outbox.close(reason);
        }
    }

    /// Closes every session (shutdown).
    pub fn close_all(&self, reason: CloseReason) {
        let targets: Vec<_> = self.read().sessions.values().map(Arc::clone).collect();
        for session in targets {
            session.outbox.close(reason);
        }
    }

    /// Sessions served by a socket now (v1, and v2 not waiting for a RESUME).
    pub fn attached_count(&self) -> usize {
        self.read()
            .sessions
            .values()
            .filter(|s| s.is_attached())
            .count()
    }

    /// Registers a detached v2 session (restored after a restart, waiting for its
    /// RESUME).
    pub fn register_detached(
        &self,
        user_id: UserId,
        limits: QueueLimits,
        intents: Intents,
    ) -> Arc<SessionEntry> {
        let entry = self.register_session(user_id, limits, SessionKind { v2: true, intents });
        entry.attached.store(false, Ordering::Release);
        entry
    }

    /// This node's sessions by protocol and state: one pass over them, for metrics.
    pub fn census(&self) -> Census {
        let state = self.read();
        let mut census = Census::default();
        for session in state.sessions.values() {
            match (session.v2, session.is_attached()) {
                (false, _) => census.v1 += 1,
                (true, true) => census.v2_attached += 1,
                (true, false) => census.v2_detached += 1,
            }
        }
        census
    }

    /// Sessions registered on this node (attached or waiting for a RESUME).
    pub fn session_count(&self) -> usize {
        self.read().sessions.len()
    }

    /// Attached sessions of `user` on this node.
    pub fn user_session_count(&self, user: UserId) -> usize {
        self.read().by_user.get(&user).map_or(0, |l| attached_in(l))
    }

    /// Whether `user` has an attached session on this node.
    pub fn is_connected(&self, user: UserId) -> bool {
        self.read()
            .by_user
            .get(&user)
            .is_some_and(|l| l.iter().any(|s| s.is_attached()))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
}

fn attached_in(sessions: &[Arc<SessionEntry>]) -> usize {
    sessions.iter().filter(|s| s.is_attached()).count()
}

impl Delivery {
    fn record(&mut self, session: &SessionEntry, pushed: Pushed) {
        match pushed {
            Pushed::Queued => self.queued += 1,
            Pushed::Overflow => {
                self.overflowed += 1;
                tracing::warn!(session = session.id.0, user = %session.user_id, "outbound queue overflow; closing session");
            }
            Pushed::Closed => self.dropped += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> UserId {
        UserId::new()
    }

    #[test]
    fn delivers_to_every_session_of_listed_users_only() {
        let hub = Hub::new();
        let (alice, bob, carol) = (user(), user(), user());
        let a1 = hub.register(alice, QueueLimits::default());
        let a2 = hub.register(alice, QueueLimits::default());
        let b1 = hub.register(bob, QueueLimits::default());
        let c1 = hub.register(carol, QueueLimits::default());
        let payload = Payload::text("{}");
        let delivery = hub.send_to_users([alice, bob], &payload);
        assert_eq!(delivery.queued, 3);
        assert_eq!(
            (a1.outbox.len(), a2.outbox.len(), b1.outbox.len()),
            (1, 1, 1)
        );
        assert_eq!(c1.outbox.len(), 0);
    }

    #[test]
    fn unregister_counts_remaining_sessions() {
        let hub = Hub::new();
        let alice = user();
        let a1 = hub.register(alice, QueueLimits::default());
        let a2 = hub.register(alice, QueueLimits::default());
        assert_eq!(hub.user_session_count(alice), 2);
        assert_eq!(hub.unregister(a1.id), 1);
        assert!(hub.is_connected(alice));
        assert_eq!(hub.unregister(a2.id), 0);
        assert!(!hub.is_connected(alice));
        assert_eq!(hub.unregister(a2.id), 0, "unregistering twice is harmless");
        assert_eq!(hub.session_count(), 0);
    }

    #[test]
    fn detached_sessions_keep_queuing_but_do_not_count_as_connected() {
        let hub = Hub::new();
        let alice = user();
        let v2 = SessionKind {
            v2: true,
            intents: Intents::ALL,
        };
        let a1 = hub.register_session(alice, QueueLimits::default(), v2);
        let a2 = hub.register(alice, QueueLimits::default());
        assert_eq!(hub.detach(&a1), 1);
        assert_eq!(hub.user_session_count(alice), 1);
        hub.send_to_user(alice, &Payload::text("{}"));
        assert_eq!(a1.outbox.len(), 1, "a detached session still queues");
        assert_eq!(hub.unregister(a2.id), 0);
        assert!(!hub.is_connected(alice));
        hub.attach(&a1);
        assert!(hub.is_connected(alice));
    }

    #[test]
    fn v2_events_and_intents_are_filtered_per_session() {
        use concord_protocol::Event;
        let hub = Hub::new();
        let alice = user();
        let v1 = hub.register(alice, QueueLimits::default());
        let typing_only = hub.register_session(
            alice,
            QueueLimits::default(),
            SessionKind {
                v2: true,
                intents: Intents::TYPING,
            },
        );
        let all = hub.register_session(
            alice,
            QueueLimits::default(),
            SessionKind {
                v2: true,
                intents: Intents::ALL,
            },
        );
        let d = serde_json::json!({});
        hub.send_to_user(alice, &Payload::dispatch(Event::ChannelCreate, &d).unwrap());
        hub.send_to_user(alice, &Payload::dispatch(Event::TypingStart, &d).unwrap());
        hub.send_to_user(alice, &Payload::dispatch(Event::MessageCreate, &d).unwrap());
        assert_eq!(v1.outbox.len(), 2, "typing and message, not the v2 event");
        assert_eq!(typing_only.outbox.len(), 1);
        assert_eq!(all.outbox.len(), 3);
    }

    #[test]
    fn send_to_session_reaches_only_that_session() {
        let hub = Hub::new();
        let alice = user();
        let a1 = hub.register(alice, QueueLimits::default());
        let a2 = hub.register(alice, QueueLimits::default());
        hub.send_to_session(a2.id, &Payload::text("{}"));
        assert_eq!((a1.outbox.len(), a2.outbox.len()), (0, 1));
    }

    #[test]
    fn overflow_is_reported_and_closes_only_that_session() {
        let hub = Hub::new();
        let (alice, bob) = (user(), user());
        let small = QueueLimits {
            max_frames: 1,
            max_bytes: 1 << 20,
        };
        let a = hub.register(alice, small);
        let b = hub.register(bob, QueueLimits::default());
        let payload = Payload::text("{}");
        hub.send_to_users([alice, bob], &payload);
        let second = hub.send_to_users([alice, bob], &payload);
        assert_eq!(
            second,
            Delivery {
                queued: 1,
                overflowed: 1,
                dropped: 0,
            }
        );
        // Alice's session is closing now: what comes next is dropped for it.
        let third = hub.send_to_users([alice, bob], &payload);
        assert_eq!(
            third,
            Delivery {
                queued: 1,
                overflowed: 0,
                dropped: 1,
            }
        );
        assert_eq!(a.outbox.drain(&mut Vec::new()), Some(CloseReason::Overflow));
        assert_eq!(b.outbox.drain(&mut Vec::new()), None);
    }

    #[test]
    fn census_counts_sessions_by_protocol_and_state() {
        let hub = Hub::new();
        let (alice, bob) = (user(), user());
        hub.register(alice, QueueLimits::default());
        let v2 = SessionKind {
            v2: true,
            intents: Intents::ALL,
        };
        let served = hub.register_session(bob, QueueLimits::default(), v2);
        let waiting = hub.register_session(bob, QueueLimits::default(), v2);
        hub.detach(&waiting);
        hub.register_detached(alice, QueueLimits::default(), Intents::ALL);
        assert_eq!(
            hub.census(),
            Census {
                v1: 1,
                v2_attached: 1,
                v2_detached: 2,
            }
        );
        hub.unregister(served.id);
        assert_eq!(hub.census().v2_attached, 0);
    }

    #[test]
    fn close_user_and_close_all() {
        let hub = Hub::new();
        let (alice, bob) = (user(), user());
        let a = hub.register(alice, QueueLimits::default());
        let b = hub.register(bob, QueueLimits::default());
        hub.close_user(alice, CloseReason::Revoked);
        assert_eq!(a.outbox.drain(&mut Vec::new()), Some(CloseReason::Revoked));
        assert_eq!(b.outbox.drain(&mut Vec::new()), None);
        hub.close_all(CloseReason::Shutdown);
        assert_eq!(b.outbox.drain(&mut Vec::new()), Some(CloseReason::Shutdown));
    }
}
