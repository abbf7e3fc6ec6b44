//! Which gateway sessions each login opened, so that ending a login (logout, or reuse
//! of one of its refresh tokens) closes exactly its sessions and no others.
//!
//! A login is a refresh session: every access and refresh token issued from it carries
//! its id as the `sid` claim, and rotation keeps the id, so the tokens of one login form
//! a family. A gateway session joins its family's entry when READY is built and leaves
//! it when its socket goes. A family ended while one of its sessions is between
//! authentication and READY is remembered for a while, so such a session is closed as
//! it joins instead of slipping through.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use concord_gateway::{CloseReason, Hub, SessionId};
use uuid::Uuid;

/// How long an ended family is remembered: far longer than any authentication takes
/// to reach READY.
const REMEMBERED: Duration = Duration::from_secs(120);

/// The gateway sessions of each live login on this node.
#[derive(Debug, Default)]
pub struct Families {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    sessions: HashMap<Uuid, Vec<SessionId>>,
    ended: HashMap<Uuid, Instant>,
}

impl Families {
    /// Records `session` as opened by login `family`; false when that login has just
    /// been ended (the caller closes the session).
    pub fn join(&self, family: Uuid, session: SessionId) -> bool {
        let mut inner = self.lock();
        if inner.ended.contains_key(&family) {
            return false;
        }
        let sessions = inner.sessions.entry(family).or_default();
        if !sessions.contains(&session) {
            sessions.push(session);
        }
        true
    }

    /// Forgets `session` (its socket is gone).
    pub fn leave(&self, family: Uuid, session: SessionId) {
        let mut inner = self.lock();
        if let Some(sessions) = inner.sessions.get_mut(&family) {
            sessions.retain(|s| *s != session);
            if sessions.is_empty() {
                inner.sessions.remove(&family);
            }
        }
    }

    /// Ends login `family` on this node: closes its sessions in `hub` as revoked (4009
    /// in v2, 1008 in v1) and refuses any that join later.
    pub fn end(&self, family: Uuid, hub: &Hub) {
        let sessions = {
            let mut inner = self.lock();
            let now = Instant::now();
            inner
                .ended
                .retain(|_, at| now.duration_since(*at) < REMEMBERED);
            inner.ended.insert(family, now);
            inner.sessions.remove(&family).unwrap_or_default()
        };
        for session in sessions {
            hub.close_session(session, CloseReason::Revoked);
        }
    }

    /// Sessions currently recorded for `family` (for tests and diagnostics).
    pub fn sessions_of(&self, family: Uuid) -> usize {
        self.lock().sessions.get(&family).map_or(0, Vec::len)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ending_a_family_refuses_late_joiners_and_leaves_others_alone() {
        let families = Families::default();
        let hub = Hub::new();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(families.join(a, SessionId(1)));
        assert!(families.join(a, SessionId(2)));
        assert!(families.join(b, SessionId(3)));
        families.leave(a, SessionId(2));
        assert_eq!(families.sessions_of(a), 1);

        families.end(a, &hub);
        assert_eq!(families.sessions_of(a), 0);
        assert!(
            !families.join(a, SessionId(4)),
            "an ended login takes no session"
        );
        assert_eq!(families.sessions_of(b), 1);
        assert!(families.join(b, SessionId(5)));
    }
}
