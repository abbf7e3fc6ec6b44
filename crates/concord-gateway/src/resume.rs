//! v2 sessions by id, so that a RESUME on a new socket finds its session.
//!
//! A [`Slot`] holds what outlives a socket: the Hub entry (whose queue keeps filling
//! while no socket serves it), the chat domain's handler, and, while no socket owns
//! it, the session's numbering and replay buffer (parked). A socket owns the slot
//! while it serves the session; a RESUME elsewhere asks it to let go (the owner
//! notices at its next wake-up, which the request causes), waits for the state to be
//! parked, and takes it. A parked session that nobody resumes within the window is
//! dropped.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::sync::Notify;

use crate::{Hub, SessionEntry, SessionHandler, wire::V2Stream};

/// A v2 session, found by its id.
pub(crate) struct Slot {
    pub(crate) id: String,
    pub(crate) entry: Arc<SessionEntry>,
    pub(crate) handler: Arc<dyn SessionHandler>,
    state: Mutex<SlotState>,
    /// Signalled when the state is parked.
    parked: Notify,
    /// The claim of the owner asked to let go (0: none). Read by the owner at every
    /// wake-up, so an atomic rather than the state's lock.
    evict: AtomicU64,
}

#[derive(Default)]
struct SlotState {
    /// The socket that serves the session (a claim number), or 0.
    owner: u64,
    next_claim: u64,
    /// The state, while no socket owns it.
    stream: Option<V2Stream>,
    /// Counts parkings, so an expiry timer knows whether its parking still holds.
    parkings: u64,
    /// Removed from the registry: nobody may take it any more.
    gone: bool,
    /// When it was last parked.
    parked_at: Option<tokio::time::Instant>,
}

/// Why a session could not be taken over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TakeOver {
    /// Gone, or its owner did not let go in time.
    Unavailable,
}

impl Slot {
    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the socket holding claim `owner` has been asked to let go.
    pub(crate) fn evicting(&self, owner: u64) -> bool {
        self.evict.load(Ordering::Acquire) == owner
    }

    /// Parks the state of the socket holding claim `owner`; returns the parking's
    /// number (for the expiry timer), or `None` if that socket no longer owned it.
    pub(crate) fn park(&self, owner: u64, stream: V2Stream) -> Option<u64> {
        let mut state = self.lock();
        if state.owner != owner || state.gone {
            return None;
        }
        state.owner = 0;
        state.stream = Some(stream);
        state.parked_at = Some(tokio::time::Instant::now());
        state.parkings += 1;
        let parking = state.parkings;
        drop(state);
        self.parked.notify_waiters();
        Some(parking)
    }

    /// Takes the session for a new socket: asks the current owner to let go if there
    /// is one, and waits up to `wait` for the state. Returns the new claim and the
    /// state.
    pub(crate) async fn take_over(&self, wait: Duration) -> Result<(u64, V2Stream), TakeOver> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.parked.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut state = self.lock();
                if state.gone {
                    return Err(TakeOver::Unavailable);
                }
                if let Some(stream) = state.stream.take() {
                    state.next_claim += 1;
                    state.owner = state.next_claim;
                    return Ok((state.owner, stream));
                }
                if state.owner != 0 && self.evict.load(Ordering::Acquire) != state.owner {
                    self.evict.store(state.owner, Ordering::Release);
                    // Wake the owner: it checks for eviction each time it wakes.
                    self.entry.outbox.poke();
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(TakeOver::Unavailable);
            }
        }
    }

    /// Takes the parked state for good (a shutdown saving it), with when it was parked.
    pub(crate) fn take_parked(&self) -> Option<(V2Stream, tokio::time::Instant)> {
        let mut state = self.lock();
        if state.gone || state.owner != 0 {
            return None;
        }
        let stream = state.stream.take()?;
        state.gone = true;
        Some((
            stream,
            state.parked_at.unwrap_or_else(tokio::time::Instant::now),
        ))
    }

    /// Whether the session waits for a RESUME, with no socket serving it.
    pub(crate) fn is_parked(&self) -> bool {
        let state = self.lock();
        !state.gone && state.owner == 0 && state.stream.is_some()
    }

    /// Whether no socket is in the middle of handing the session over: parked, gone, or
    /// not owned.
    fn settled(&self) -> bool {
        let state = self.lock();
        state.gone || state.owner == 0
    }

    /// Whether the parking numbered `parking` still holds (nobody took the session).
    fn still_parked(&self, parking: u64) -> bool {
        let state = self.lock();
        !state.gone && state.stream.is_some() && state.parkings == parking
    }
}

/// This node's v2 sessions by id.
#[derive(Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Arc<Slot>>>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Slot>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a session restored from a save, parked with `stream`; returns the slot and
    /// its parking.
    pub(crate) fn insert_parked(
        &self,
        id: String,
        entry: Arc<SessionEntry>,
        handler: Arc<dyn SessionHandler>,
        stream: V2Stream,
    ) -> (Arc<Slot>, u64) {
        let state = SlotState {
            stream: Some(stream),
            parkings: 1,
            parked_at: Some(tokio::time::Instant::now()),
            ..SlotState::default()
        };
        (self.add(id, entry, handler, state), 1)
    }

    /// Every session.
    pub(crate) fn all(&self) -> Vec<Arc<Slot>> {
        self.lock().values().cloned().collect()
    }

    /// Whether every session is parked, gone or owned by no socket (none in a hand-over).
    pub(crate) fn settled(&self) -> bool {
        self.lock().values().all(|slot| slot.settled())
    }

    /// Adds a session owned by the socket that identified it; returns the slot and
    /// that socket's claim.
    pub(crate) fn insert(
        &self,
        id: String,
        entry: Arc<SessionEntry>,
        handler: Arc<dyn SessionHandler>,
    ) -> (Arc<Slot>, u64) {
        let state = SlotState {
            owner: 1,
            next_claim: 1,
            ..SlotState::default()
        };
        (self.add(id, entry, handler, state), 1)
    }

    fn add(
        &self,
        id: String,
        entry: Arc<SessionEntry>,
        handler: Arc<dyn SessionHandler>,
        state: SlotState,
    ) -> Arc<Slot> {
        let slot = Arc::new(Slot {
            id: id.clone(),
            entry,
            handler,
            state: Mutex::new(state),
            parked: Notify::new(),
            evict: AtomicU64::new(0),
        });
        self.lock().insert(id, Arc::clone(&slot));
        slot
    }

    /// The session `id`, if this node has it.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<Slot>> {
        self.lock().get(id).cloned()
    }

    /// Removes a session for good: nobody can resume it, its queue goes. Returns how
    /// many attached sessions its user still has on this node.
    pub(crate) fn remove(&self, slot: &Slot, hub: &Hub) -> usize {
        {
            let mut state = slot.lock();
            state.gone = true;
            state.stream = None;
        }
        slot.parked.notify_waiters();
        let mut map = self.lock();
        if map.get(&slot.id).is_some_and(|s| std::ptr::eq(&**s, slot)) {
            map.remove(&slot.id);
        }
        drop(map);
        hub.unregister(slot.entry.id)
    }

    /// Drops a parked session once `window` passes, unless it was resumed meanwhile.
    /// A session parked while still attached (taken by a RESUME that then gave up)
    /// is reported gone to its handler.
    pub(crate) fn expire_after(
        self: &Arc<Self>,
        slot: Arc<Slot>,
        parking: u64,
        window: Duration,
        hub: Arc<Hub>,
    ) {
        let sessions = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(window).await;
            if slot.still_parked(parking) {
                let was_attached = slot.entry.is_attached();
                let remaining = sessions.remove(&slot, &hub);
                if was_attached {
                    slot.handler
                        .disconnected(&slot.entry, crate::Ending::Other, remaining)
                        .await;
                }
            }
        });
    }

    /// Sessions known (attached or parked).
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}
