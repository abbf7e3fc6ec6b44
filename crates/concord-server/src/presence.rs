//! Presence derived from the set of live sessions (`gateway.md` §8), across nodes.
//!
//! A user is online while at least one session lives, on any node. Their chosen
//! status, custom status and activity persist across sessions. Online is announced
//! when the first session starts; offline when the last one ends — at once after a
//! clean 1000 close by the client, otherwise after a grace period, so a reconnect does
//! not flash offline. Announcements are made under the presence lock, so "online" and
//! "offline" for one user can never be delivered out of order.
//!
//! With several nodes, each node *holds* the users with a session on it (or within
//! its grace period) and tells the others ([`Signal::Up`], [`Signal::Down`]); every
//! node keeps who holds whom and announces a user's change to its own sessions when
//! the user's cluster-wide state flips. So each node derives the same presence, and
//! no announcement crosses the bus. Nodes send [`Signal::Alive`] every
//! `bus_heartbeat_secs`; a node not heard from for three of them is taken for dead,
//! and the users only it held go offline (and leave voice). A node that starts asks
//! the others for the users they hold ([`Signal::RosterRequest`]). A node taken for
//! dead that is heard again is asked who it holds ([`Signal::RosterAsk`]). A node whose
//! own link to the bus is lost takes nobody for dead meanwhile (the silence is its own);
//! once the link is back it forgets who the others held and asks them all again (what
//! they said meanwhile never came), and starts over ([`crate::cluster::Cluster::link_restored`]).

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use concord_bus::NodeId;
use concord_gateway::Ending;
use concord_protocol::{Event, PresenceUpdate, Status, UserId, VoiceParticipant, VoiceState};
use concord_store::{Presence as Chosen, UserRecord};

use crate::{
    bus::Audience,
    cluster::{FromNode, Signal},
    directory::DirectoryChange,
    routes,
    state::AppState,
};

#[derive(Debug)]
struct Entry {
    chosen: Chosen,
    /// This node holds the user online: a live session, or one in its grace period.
    here: bool,
    /// Other nodes that hold the user online.
    elsewhere: HashSet<NodeId>,
    /// A pending offline, by generation.
    grace: Option<u64>,
    /// In a cluster: an offline waiting for [`CONFIRM`], by generation.
    confirm: Option<u64>,
}

/// In a cluster, how long a user held by no node waits before offline is announced
/// (and voice left), so that a user moving between nodes does not flash offline or
/// drop out of voice. Then the node waits until every node alive has had its say
/// ([`crate::cluster::Cluster::caught_up`]): a session opened on another node before
/// the last one here closed keeps the user online however late its word arrives.
const CONFIRM: Duration = Duration::from_millis(500);

impl Entry {
    /// Held by some node now.
    fn online(&self) -> bool {
        self.here || !self.elsewhere.is_empty()
    }

    /// Online as peers were last told: held, or held by none for less than
    /// [`CONFIRM`] (offline not announced yet).
    fn shown_online(&self) -> bool {
        self.online() || self.confirm.is_some()
    }
}

/// Per-user presence as this node knows it.
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

/// The chosen presence of `user` as nodes tell it each other.
fn wire(user: UserId, chosen: &Chosen) -> PresenceUpdate {
    PresenceUpdate {
        user_id: user,
        status: chosen.status,
        custom_status: chosen.custom_status.clone(),
        activity: chosen.activity.clone(),
    }
}

fn unwire(update: PresenceUpdate) -> (UserId, Chosen) {
    (
        update.user_id,
        Chosen {
            status: update.status,
            custom_status: update.custom_status,
            activity: update.activity,
        },
    )
}

/// Tells the other nodes, if there are any.
fn tell(state: &AppState, signal: &Signal) {
    if let Some(cluster) = state.events.cluster() {
        cluster.signal(signal);
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

    /// Whether peers see `user` as connected (a live session on some node, or one
    /// within the grace period).
    pub fn is_online(&self, user: UserId) -> bool {
        self.lock().get(&user).is_some_and(Entry::shown_online)
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
            here: false,
            elsewhere: HashSet::new(),
            grace: None,
            confirm: None,
        });
        // A reconnect inside the grace period: peers never saw offline.
        entry.grace = None;
        if !entry.here {
            let was_online = entry.shown_online();
            entry.here = true;
            entry.confirm = None;
            entry.chosen = chosen_of(user);
            tell(state, &Signal::Up(wire(user.id, &entry.chosen)));
            if !was_online {
                announce(state, user.id, &entry.chosen, true);
            }
        }
    }

    /// The chosen presence changed (gateway op or REST); announces it if the user is
    /// online and the change is visible, and tells the other nodes.
    pub fn chosen_changed(&self, state: &AppState, user: UserId, chosen: Chosen) {
        if self.chosen_is(state, user, chosen.clone()) {
            tell(state, &Signal::Chosen(wire(user, &chosen)));
        }
    }

    /// Records `chosen` for an online `user`, announcing it here; whether the user
    /// is online.
    fn chosen_is(&self, state: &AppState, user: UserId, chosen: Chosen) -> bool {
        let mut users = self.lock();
        let Some(entry) = users.get_mut(&user) else {
            return false;
        };
        let visible_before = visible(&entry.chosen);
        let changed = entry.chosen != chosen;
        entry.chosen = chosen;
        if entry.shown_online() && (changed || visible_before) {
            announce(state, user, &entry.chosen, true);
        }
        true
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

    /// This node holds the user no more, unless a session came back (or, for a grace
    /// timer, a newer one superseded it); offline is announced (and voice left) if
    /// no other node holds them either.
    fn go_offline(&self, state: &AppState, user: UserId, generation: Option<u64>) {
        {
            let mut users = self.lock();
            let Some(entry) = users.get_mut(&user) else {
                return;
            };
            if generation.is_some() && entry.grace != generation {
                return;
            }
            if state.hub.is_connected(user) || !entry.here {
                return;
            }
            entry.here = false;
            entry.grace = None;
            tell(state, &Signal::Down { user });
            if entry.online() {
                return;
            }
            if state.events.cluster().is_some() {
                self.confirm_later(state, user, entry);
                return;
            }
            let entry = users.remove(&user).unwrap_or_else(|| unreachable!());
            announce(state, user, &entry.chosen, false);
        }
        let state = state.clone();
        tokio::spawn(async move { leave_voice(&state, user).await });
    }

    /// Offline for `user`, held by no node now, unless a node holds them again
    /// within [`CONFIRM`].
    fn confirm_later(&self, state: &AppState, user: UserId, entry: &mut Entry) {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        entry.confirm = Some(generation);
        let state = state.clone();
        tokio::spawn(async move {
            tokio::time::sleep(CONFIRM).await;
            // A node's word that it holds the user may still be on its way (nodes'
            // messages are ordered per node only): wait until every node alive has
            // had its say, however loaded the bus.
            if let Some(cluster) = state.events.cluster() {
                cluster.caught_up().await;
            }
            state
                .presence
                .confirm_offline(&state, user, generation)
                .await;
        });
    }

    async fn confirm_offline(&self, state: &AppState, user: UserId, generation: u64) {
        {
            let mut users = self.lock();
            let Some(entry) = users.get(&user) else {
                return;
            };
            if entry.online() || entry.confirm != Some(generation) {
                return;
            }
            let entry = users.remove(&user).unwrap_or_else(|| unreachable!());
            announce(state, user, &entry.chosen, false);
        }
        leave_voice(state, user).await;
    }

    /// `node` holds `user` with presence `chosen`.
    fn held_elsewhere(&self, state: &AppState, node: NodeId, user: UserId, chosen: Chosen) {
        let mut users = self.lock();
        let entry = users.entry(user).or_insert_with(|| Entry {
            chosen: chosen.clone(),
            here: false,
            elsewhere: HashSet::new(),
            grace: None,
            confirm: None,
        });
        let was_online = entry.shown_online();
        entry.elsewhere.insert(node);
        entry.confirm = None;
        entry.chosen = chosen;
        if !was_online {
            announce(state, user, &entry.chosen, true);
        }
    }

    /// `node` holds these users no more (all of them: `None`); those no node holds
    /// now go offline.
    fn released_elsewhere(&self, state: &AppState, node: NodeId, user: Option<UserId>) {
        let mut users = self.lock();
        let check = |user: UserId, entry: &mut Entry| {
            if entry.elsewhere.remove(&node) && !entry.online() {
                self.confirm_later(state, user, entry);
            }
        };
        match user {
            Some(user) => {
                if let Some(entry) = users.get_mut(&user) {
                    check(user, entry);
                }
            }
            None => {
                for (user, entry) in users.iter_mut() {
                    check(*user, entry);
                }
            }
        }
    }

    /// Forgets which users the other nodes hold: this node's link to the bus was lost,
    /// so it missed what they said meanwhile (and has just asked them again). A user no
    /// node is known to hold now goes offline unless one claims them within
    /// [`CONFIRM`], which the answers do.
    fn forget_elsewhere(&self, state: &AppState) {
        let mut users = self.lock();
        for (user, entry) in users.iter_mut() {
            if entry.elsewhere.is_empty() {
                continue;
            }
            entry.elsewhere.clear();
            if !entry.online() {
                self.confirm_later(state, *user, entry);
            }
        }
    }

    /// The users this node holds online, with their chosen presence.
    fn held_here(&self) -> Vec<PresenceUpdate> {
        self.lock()
            .iter()
            .filter(|(_, entry)| entry.here)
            .map(|(user, entry)| wire(*user, &entry.chosen))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, Entry>> {
        self.users.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How often a node tells the others the bot requests it let through.
const BOT_BATCH: Duration = Duration::from_millis(20);

/// Users in one [`Signal::Roster`] message.
const ROSTER_PART: usize = 2000;

/// Follows what the other nodes say about presence, sends this node's heartbeat, and
/// takes a node that fell silent for three heartbeats for dead. Runs for the life of
/// a node of a cluster.
pub async fn follow_cluster(state: AppState) {
    let Some(cluster) = state.events.cluster().cloned() else {
        return;
    };
    let Some(mut signals) = cluster.take_signals() else {
        return;
    };
    let beat = Duration::from_secs(state.config.bus_heartbeat_secs.max(1));
    let silent = beat * 3;
    cluster.signal(&Signal::RosterRequest);
    let mut heartbeat = tokio::time::interval(beat);
    // Bot requests let through here, told to the others in batches: the per-bot limit
    // holds for the cluster within one batch's worth.
    state.limiters.share_bot_requests();
    let mut bot_batch = tokio::time::interval(BOT_BATCH);
    bot_batch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // Once the other nodes have had time to answer the roster request: voice states
    // of users online nowhere are left over from nodes that stopped (a lone node clears
    // all of them at start; a node of a cluster must not clear the others' users').
    let sweep = tokio::time::sleep(silent);
    tokio::pin!(sweep);
    let mut swept = false;
    // While this node's own link to the bus is lost, the others' silence is its own
    // deafness: none of them is taken for dead, and once the link is back it asks
    // them all who they hold (what they said meanwhile never came).
    let mut link = cluster.link();
    let mut link_open = true;
    let (mut cut_off, mut losses) = {
        let now = *link.borrow_and_update();
        (now.cut_off, now.losses)
    };
    loop {
        tokio::select! {
            changed = link.changed(), if link_open => {
                if changed.is_err() {
                    link_open = false;
                    continue;
                }
                let now = *link.borrow_and_update();
                if now.cut_off && !cut_off {
                    tracing::warn!("link to the bus lost: no node is taken for dead until it is back");
                } else if !now.cut_off && (cut_off || now.losses != losses) {
                    tracing::info!("link to the bus back: asking every node who it holds");
                    cluster.link_restored();
                    cluster.signal(&Signal::RosterRequest);
                    state.presence.forget_elsewhere(&state);
                }
                (cut_off, losses) = (now.cut_off, now.losses);
            }
            signal = signals.recv() => {
                match signal {
                    Some(FromNode::Signal(node, signal)) => apply(&state, &cluster, node, signal),
                    Some(FromNode::CaughtUp(applied)) => {
                        let _ = applied.send(());
                    }
                    None => return,
                }
            }
            () = &mut sweep, if !swept => {
                swept = true;
                let stale: Vec<UserId> = state
                    .directory
                    .voice_users()
                    .into_iter()
                    .filter(|user| !state.presence.is_online(*user))
                    .collect();
                if !stale.is_empty() {
                    tracing::info!(users = stale.len(), "voice states of users online nowhere cleared");
                }
                for user in stale {
                    leave_voice(&state, user).await;
                }
            }
            _ = bot_batch.tick() => {
                let counts = state.limiters.take_bot_requests();
                if !counts.is_empty() {
                    cluster.signal(&Signal::BotRequests { counts });
                }
            }
            _ = heartbeat.tick() => {
                cluster.signal(&Signal::Alive);
                if cut_off {
                    continue;
                }
                for node in cluster.dead_nodes() {
                    tracing::warn!(%node, "node silent for three heartbeats: its users go offline");
                    state.presence.released_elsewhere(&state, node, None);
                    state.media.node_gone(node);
                    tokio::spawn(crate::cluster::unannounced::announce_for(
                        node,
                        cluster.announced(),
                        Arc::clone(&state.store),
                        state.events.clone(),
                        Arc::clone(&state.metrics),
                    ));
                }
            }
        }
    }
}

fn apply(state: &AppState, cluster: &crate::cluster::Cluster, node: NodeId, signal: Signal) {
    let presence = &state.presence;
    match signal {
        Signal::Up(update) => {
            let (user, chosen) = unwire(update);
            presence.held_elsewhere(state, node, user, chosen);
        }
        Signal::Down { user } => presence.released_elsewhere(state, node, Some(user)),
        Signal::Chosen(update) => {
            let (user, chosen) = unwire(update);
            presence.chosen_is(state, user, chosen);
        }
        Signal::Roster { users } => {
            for update in users {
                let (user, chosen) = unwire(update);
                presence.held_elsewhere(state, node, user, chosen);
            }
        }
        Signal::RosterRequest => send_roster(presence, cluster),
        Signal::RosterAsk { node } => {
            if node == cluster.node().0 {
                send_roster(presence, cluster);
            }
        }
        Signal::LoginAttempt { username } => state.limiters.note_login(&username),
        Signal::BotRequests { counts } => {
            for (bot, n) in counts {
                state.limiters.note_bot(bot, n);
            }
        }
        // Answered by the node's receiver itself (`crate::cluster`).
        Signal::Alive | Signal::Barrier { .. } | Signal::Applied { .. } | Signal::Leaving => {}
    }
}

/// Tells every node the users this one holds (in parts).
fn send_roster(presence: &Presence, cluster: &crate::cluster::Cluster) {
    let held = presence.held_here();
    if held.is_empty() {
        // Sent even so: it also tells a new node how many directory changes this one
        // has made (`concord_bus` order).
        cluster.signal(&Signal::Roster { users: Vec::new() });
    }
    for part in held.chunks(ROSTER_PART) {
        cluster.signal(&Signal::Roster {
            users: part.to_vec(),
        });
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
    // Each node announces to its own sessions (see the module's documentation).
    state
        .events
        .dispatch_here(Audience::CoMembers(user), Event::PresenceUpdate, &update);
}

/// Removes the user's voice state (if any), ends their Go Live session, and tells
/// the channel's audience.
///
/// The directory mirrors every voice state (joins and leaves are applied to it as
/// they are stored), so a user it has in no channel is left alone: nothing to delete,
/// and no store write for each of the many users going offline outside voice.
///
/// In a cluster every node sees the user go offline and calls this; the one whose
/// delete removed the row does the rest, so GO_LIVE_STOP and the leave come from one
/// node, in that order, once.
pub async fn leave_voice(state: &AppState, user: UserId) {
    if state.directory.voice_channel(user).is_none() {
        return;
    }
    let removed = match state.store.delete_voice_state(user).await {
        Ok(Some(removed)) => Some(removed),
        Ok(None) => {
            // Gone already: whoever removed it tells every node (this one too, soon).
            state.directory.apply(&DirectoryChange::VoiceLeft { user });
            return;
        }
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
