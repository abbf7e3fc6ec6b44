//! The last known presence of every user the connection has heard of: seeded by
//! `READY` (the user and their DM recipients) and kept by `PRESENCE_UPDATE`.
//!
//! ```
//! use concord_client::presence::PresenceCache;
//!
//! let mut presence = PresenceCache::new();
//! // Feed it every event: `presence.handle(&event)` in the event loop.
//! # let someone = concord_client::protocol::UserId::new();
//! assert!(presence.get(someone).is_none());
//! ```

use std::collections::HashMap;

use concord_protocol::{GatewayEvent, Status, User, UserId};

/// One user's presence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    /// Their status.
    pub status: Status,
    /// Their custom status.
    pub custom_status: Option<String>,
    /// Their activity.
    pub activity: Option<String>,
}

impl Presence {
    fn of(user: &User) -> Self {
        Self {
            status: user.status,
            custom_status: user.custom_status.clone(),
            activity: user.activity.clone(),
        }
    }
}

/// Presences by user, fed by [`PresenceCache::handle`].
#[derive(Debug, Default, Clone)]
pub struct PresenceCache {
    users: HashMap<UserId, Presence>,
}

impl PresenceCache {
    /// Empty.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes in one event: `READY` replaces the cache with the user and their DM
    /// recipients; `PRESENCE_UPDATE`, `USER_UPDATE` and `DM_CHANNEL_CREATE` update
    /// one user. Other events are ignored.
    pub fn handle(&mut self, event: &GatewayEvent) {
        match event {
            GatewayEvent::Ready(ready) => {
                self.users.clear();
                for dm in &ready.dm_channels {
                    self.users
                        .insert(dm.recipient.id, Presence::of(&dm.recipient));
                }
                self.users.insert(ready.user.id, Presence::of(&ready.user));
            }
            GatewayEvent::PresenceUpdate(update) => {
                self.users.insert(
                    update.user_id,
                    Presence {
                        status: update.status,
                        custom_status: update.custom_status.clone(),
                        activity: update.activity.clone(),
                    },
                );
            }
            GatewayEvent::UserUpdate(user) => {
                self.users.insert(user.id, Presence::of(user));
            }
            GatewayEvent::DmChannelCreate(dm) => {
                self.users
                    .entry(dm.recipient.id)
                    .or_insert_with(|| Presence::of(&dm.recipient));
            }
            _ => {}
        }
    }

    /// The last known presence of `user`.
    pub fn get(&self, user: UserId) -> Option<&Presence> {
        self.users.get(&user)
    }

    /// The last known status of `user` ([`Status::Offline`] when unknown).
    pub fn status(&self, user: UserId) -> Status {
        self.users.get(&user).map_or(Status::Offline, |p| p.status)
    }

    /// Every known user and their presence.
    pub fn iter(&self) -> impl Iterator<Item = (&UserId, &Presence)> {
        self.users.iter()
    }

    /// How many users are known.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether no user is known.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}
