//! Presence derived from the set of live sessions (`gateway.md` §8).
//!
//! A user is online while at least one session lives. Their chosen status, custom
//! status and activity persist across sessions. Online is announced when the first
//! session starts; offline when the last one ends — at once after a clean 1000 close by
//! the client, otherwise after a grace period, so a reconnect does not flash offline.
//! Announcements are made under the presence lock, so "online" and "offline" for one
//! user can never be published out of order.

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use concord_gateway::Ending;
use concord_protocol::{Event, PresenceUpdate, Status, UserId, VoiceParticipant, VoiceState};
use concord_store::{Presence as Chosen, UserRecord};

use crate::{bus::Audience, directory::DirectoryChange, routes, state::AppState};

#[derive(Debug)]
struct Entry {
    chosen: Chosen,
    /// Peers were told this user is online (and not yet that they went offline).
    announced: bool,
    /// A pending offline, by generation.
    grace: Option<u64>,
}

/// Per-user presence of this node.
#[derive(Debug)]
pub struct Presence {
    users: Mutex<HashMap<UserId, Entry>>,
    generation: AtomicU64,
    grace: Duration,
}

/// The chosen presence of a user row.
pub fn chosen_of(user: &UserRecord) -> Chosen {
    Chosen {
        status: user.status,
        custom_status: user.custom_status.clone(),
        activity: user.activity.clone(),
    }
}

impl Presence {
    /// Presence with the given grace period.
    pub fn new(grace: Duration) -> Self {
        Self {
            users: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            grace,
        }
    }

    /// Whether peers see `user` as connected (live session, or within the grace period).
    pub fn is_online(&self, user: UserId) -> bool {
        self.lock().get(&user).is_some_and(|e| e.announced)
    }

    /// The status others see for a user whose chosen status is `chosen`.
    pub fn effective(&self, user: UserId, chosen: Status) -> Status {
        if self.is_online(user) {
            chosen
        } else {
            Status::Offline
        }
    }

    /// A session of `user` sent READY.
    pub fn session_started(&self, state: &AppState, user: &UserRecord) {
        let mut users = self.lock();
        let entry = users.entry(user.id).or_insert_with(|| Entry {
            chosen: chosen_of(user),
            announced: false,
            grace: None,
        });
        // A reconnect inside the grace period: peers never saw offline.
        entry.grace = None;
        if !entry.announced {
            entry.announced = true;
            entry.chosen = chosen_of(user);
            announce(state, user.id, &entry.chosen, true);
        }
    }

    /// The chosen presence changed (gateway op or REST); announces it if the user is
    /// online and the change is visible.
    pub fn chosen_changed(&self, state: &AppState, user: UserId, chosen: Chosen) {
        let mut users = self.lock();
        if let Some(entry) = users.get_mut(&user) {
            let visible_before = visible(&entry.chosen);
            let changed = entry.chosen != chosen;
            entry.chosen = chosen;
            if entry.announced && (changed || visible_before) {
                announce(state, user, &entry.chosen, true);
            }
        }
    }

    /// A session of `user` ended; `remaining` of theirs are still live on this node.
    pub fn session_ended(&self, state: &AppState, user: UserId, ending: Ending, remaining: usize) {
        if remaining > 0 {
            return;
        }
        if ending == Ending::ClientClosedCleanly || self.grace.is_zero() {
            self.go_offline(state, user, None);
            return;
        }
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(entry) = self.lock().get_mut(&user) {
            entry.grace = Some(generation);
        }
        let state = state.clone();
        let grace = self.grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            state.presence.go_offline(&state, user, Some(generation));
        });
    }

    /// Announces offline and leaves voice, unless a session came back (or, for a grace
    /// timer, a newer one superseded it).
    fn go_offline(&self, state: &AppState, user: UserId, generation: Option<u64>) {
        {
            let mut users = self.lock();
            let Some(entry) = users.get(&user) else {
                return;
            };
            if generation.is_some() && entry.grace != generation {
                return;
            }
            if state.hub.is_connected(user) {
                return;
            }
            let entry = users.remove(&user).unwrap_or_else(|| unreachable!());
            if entry.announced {
                announce(state, user, &entry.chosen, false);
            }
        }
        let state = state.clone();
        tokio::spawn(async move { leave_voice(&state, user).await });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, Entry>> {
        self.users.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether peers see this chosen presence as anything but offline.
fn visible(chosen: &Chosen) -> bool {
    chosen.status != Status::Offline
}

fn announce(state: &AppState, user: UserId, chosen: &Chosen, online: bool) {
    let update = if online && visible(chosen) {
        PresenceUpdate {
            user_id: user,
            status: chosen.status,
            custom_status: chosen.custom_status.clone(),
            activity: chosen.activity.clone(),
        }
    } else {
        // Invisible users look exactly like disconnected ones.
        if !online && !visible(chosen) {
            return;
        }
        PresenceUpdate {
            user_id: user,
            status: Status::Offline,
            custom_status: None,
            activity: None,
        }
    };
    state
        .events
        .dispatch(Audience::CoMembers(user), Event::PresenceUpdate, &update);
}

/// Removes the user's voice state (if any), ends their Go Live session, and tells
/// the channel's audience.
///
/// The directory mirrors every voice state (joins and leaves are applied to it as
/// they are stored), so a user it has in no channel is left alone: nothing to delete,
/// and no store write for each of the many users going offline outside voice.
pub async fn leave_voice(state: &AppState, user: UserId) {
    if state.directory.voice_channel(user).is_none() {
        return;
    }
    let removed = match state.store.delete_voice_state(user).await {
        Ok(removed) => removed,
        Err(err) => {
            tracing::error!(%user, error = %err, "voice cleanup failed");
            return;
        }
    };
    state.events.change(DirectoryChange::VoiceLeft { user });
    // A broadcaster who left is live no more (`gateway.md` D18, §9).
    routes::go_live::end_stale(state, user).await;
    let Some(VoiceState {
        channel_id: Some(channel),
        ..
    }) = removed
    else {
        return;
    };
    let username = match state.store.user(user).await {
        Ok(Some(u)) => u.username,
        _ => String::new(),
    };
    let leave = VoiceParticipant {
        state: VoiceState::left(user),
        username,
    };
    state
        .events
        .dispatch(Audience::Channel(channel), Event::VoiceStateUpdate, &leave);
}
