//! The in-memory directory: who is in which server, their roles, channels, overrides,
//! timeouts and voice channels. Permission checks and audience resolution read it, so
//! no event fan-out queries the database. It is built from the store at start and kept
//! current by [`DirectoryChange`]s, which travel on the bus in order with the events
//! they precede.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, RwLock},
};

use concord_protocol::{
    ChannelId, ChannelOverride, ChannelType, OverrideId, RoleId, ServerId, Timestamp, UserId,
};
use concord_store::DirectorySnapshot;

use crate::perms::{self, OverrideBits, Permissions};

/// A change to the directory, applied on every node (as JSON between nodes).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DirectoryChange {
    /// A server was created with its owner as sole member.
    ServerCreated {
        /// Server.
        server: ServerId,
        /// Owner.
        owner: UserId,
    },
    /// A server and all in it were deleted.
    ServerDeleted {
        /// Server.
        server: ServerId,
    },
    /// A user joined.
    MemberAdded {
        /// Server.
        server: ServerId,
        /// User.
        user: UserId,
    },
    /// A user left or was removed.
    MemberRemoved {
        /// Server.
        server: ServerId,
        /// User.
        user: UserId,
    },
    /// A channel was created.
    ChannelCreated {
        /// Channel.
        channel: ChannelId,
        /// Server.
        server: ServerId,
        /// Kind.
        kind: ChannelType,
    },
    /// A channel was deleted.
    ChannelDeleted {
        /// Channel.
        channel: ChannelId,
    },
    /// A role was created or changed.
    RoleUpserted {
        /// Role.
        role: RoleId,
        /// Server.
        server: ServerId,
        /// Bits.
        permissions: i64,
        /// Position.
        position: i64,
    },
    /// A role was deleted (assignments go with it).
    RoleDeleted {
        /// Role.
        role: RoleId,
        /// Server.
        server: ServerId,
    },
    /// A role was assigned.
    MemberRoleAdded {
        /// Server.
        server: ServerId,
        /// User.
        user: UserId,
        /// Role.
        role: RoleId,
    },
    /// A role assignment was removed.
    MemberRoleRemoved {
        /// Server.
        server: ServerId,
        /// User.
        user: UserId,
        /// Role.
        role: RoleId,
    },
    /// An override was created or changed.
    OverrideUpserted(ChannelOverride),
    /// An override was deleted.
    OverrideDeleted {
        /// Channel.
        channel: ChannelId,
        /// Override.
        id: OverrideId,
    },
    /// A member was timed out until `until` (None lifts it).
    TimeoutSet {
        /// Server.
        server: ServerId,
        /// User.
        user: UserId,
        /// End, or none.
        until: Option<Timestamp>,
    },
    /// A user is now in this voice channel (joined or moved).
    VoiceJoined {
        /// User.
        user: UserId,
        /// Voice channel.
        channel: ChannelId,
    },
    /// A user left voice.
    VoiceLeft {
        /// User.
        user: UserId,
    },
}

#[derive(Debug, Default)]
struct Member {
    roles: Vec<RoleId>,
}

#[derive(Debug)]
struct ServerState {
    owner: UserId,
    members: HashMap<UserId, Member>,
    roles: HashMap<RoleId, (i64, i64)>,
    channels: HashSet<ChannelId>,
    /// When each timeout ends. Kept apart from the membership, as the store keeps it:
    /// leaving and rejoining does not end a timeout.
    timeouts: HashMap<UserId, Timestamp>,
}

#[derive(Debug, Clone)]
struct OverrideEntry {
    id: OverrideId,
    bits: OverrideBits,
}

#[derive(Debug, Default)]
struct State {
    servers: HashMap<ServerId, ServerState>,
    channels: HashMap<ChannelId, (ServerId, ChannelType)>,
    overrides: HashMap<ChannelId, Vec<OverrideEntry>>,
    user_servers: HashMap<UserId, HashSet<ServerId>>,
    voice: HashMap<UserId, ChannelId>,
}

/// Facts about one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelFacts {
    /// Its server.
    pub server: ServerId,
    /// Its kind.
    pub kind: ChannelType,
}

/// The directory. Cheap to share (`Arc`); all methods are synchronous and short.
#[derive(Debug, Default)]
pub struct Directory {
    state: RwLock<State>,
    /// Channel → members who may view it; dropped for a server whenever anything that
    /// feeds permissions in it changes, except a role given to or taken from one member,
    /// which patches the sets for that member.
    viewers: Mutex<HashMap<ChannelId, Arc<[UserId]>>>,
    /// While a snapshot is read to refresh the directory ([`Directory::begin_refresh`]):
    /// every change applied meanwhile, in order, to be applied again on the snapshot.
    /// Written under the state's write lock.
    applied_meanwhile: Mutex<Option<Meanwhile>>,
}

/// The changes applied while a snapshot is read; past [`MEANWHILE_CAP`] they are no
/// longer kept and the refresh must start again.
#[derive(Debug, Default)]
struct Meanwhile {
    changes: Vec<DirectoryChange>,
    overflowed: bool,
}

/// Most changes kept while one snapshot is read (changes come from people's actions,
/// rate-limited; a read takes well under a second).
const MEANWHILE_CAP: usize = 100_000;

/// Why [`Directory::finish_refresh`] did not replace anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RefreshError {
    /// No [`Directory::begin_refresh`] before (or another refresh finished it).
    #[error("no refresh begun")]
    NotBegun,
    /// More changes came in during the read than are kept: read again.
    #[error("too many changes during the read")]
    Overflowed,
}

impl Directory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the directory from a store snapshot.
    pub fn from_snapshot(snapshot: DirectorySnapshot) -> Self {
        let dir = Self::new();
        {
            let mut state = dir.write();
            for (server, owner) in snapshot.servers {
                state.servers.insert(
                    server,
                    ServerState {
                        owner,
                        members: HashMap::new(),
                        roles: HashMap::new(),
                        channels: HashSet::new(),
                        timeouts: HashMap::new(),
                    },
                );
            }
            for (server, user) in snapshot.members {
                if let Some(s) = state.servers.get_mut(&server) {
                    s.members.insert(user, Member::default());
                    state.user_servers.entry(user).or_default().insert(server);
                }
            }
            for (role, server, bits, position) in snapshot.roles {
                if let Some(s) = state.servers.get_mut(&server) {
                    s.roles.insert(role, (bits, position));
                }
            }
            for (server, user, role) in snapshot.member_roles {
                if let Some(m) = state
                    .servers
                    .get_mut(&server)
                    .and_then(|s| s.members.get_mut(&user))
                {
                    m.roles.push(role);
                }
            }
            for (channel, server, kind) in snapshot.channels {
                if let Some(s) = state.servers.get_mut(&server) {
                    s.channels.insert(channel);
                    state.channels.insert(channel, (server, kind));
                }
            }
            for ov in snapshot.overrides {
                upsert_override(&mut state, &ov);
            }
            for (server, user, until) in snapshot.timeouts {
                if let Some(s) = state.servers.get_mut(&server) {
                    s.timeouts.insert(user, until);
                }
            }
        }
        dir
    }

    /// Starts a refresh (a node that may have missed changes reads the database
    /// again): from now on every change applied is also kept, so that
    /// [`Directory::finish_refresh`] applies it again on the snapshot read after this
    /// call. A change made on this node or received while the snapshot is read is thus
    /// never lost under it (one the snapshot already has is applied twice: every change
    /// sets a fact, so that is harmless). Beginning again drops what was kept.
    pub fn begin_refresh(&self) {
        let _state = self.write();
        *self.meanwhile() = Some(Meanwhile::default());
    }

    /// Gives up a refresh begun: changes are no longer kept for it.
    pub fn abandon_refresh(&self) {
        let _state = self.write();
        *self.meanwhile() = None;
    }

    /// Replaces everything with `snapshot`, read after [`Directory::begin_refresh`],
    /// then applies again, in order, the changes applied since. Who is in which voice
    /// channel is not in the store: it is kept, for the channels that still exist.
    /// Returns the users whose servers are not those this node held before: changes
    /// it never heard of (their sessions missed the events that told them).
    pub fn finish_refresh(&self, snapshot: DirectorySnapshot) -> Result<Vec<UserId>, RefreshError> {
        let mut fresh = Self::from_snapshot(snapshot)
            .state
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        let mut state = self.write();
        let meanwhile = self.meanwhile().take().ok_or(RefreshError::NotBegun)?;
        if meanwhile.overflowed {
            return Err(RefreshError::Overflowed);
        }
        fresh.voice = std::mem::take(&mut state.voice);
        fresh
            .voice
            .retain(|_, channel| fresh.channels.contains_key(channel));
        for change in &meanwhile.changes {
            self.apply_to(&mut fresh, change);
        }
        let no_servers = HashSet::new();
        let moved: Vec<UserId> = state
            .user_servers
            .keys()
            .chain(fresh.user_servers.keys())
            .copied()
            .collect::<HashSet<_>>()
            .into_iter()
            .filter(|user| {
                state.user_servers.get(user).unwrap_or(&no_servers)
                    != fresh.user_servers.get(user).unwrap_or(&no_servers)
            })
            .collect();
        *state = fresh;
        // Lock order: state, then cache.
        self.viewers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        Ok(moved)
    }

    /// Applies one change.
    pub fn apply(&self, change: &DirectoryChange) {
        let mut state = self.write();
        if let Some(meanwhile) = self.meanwhile().as_mut() {
            if meanwhile.changes.len() < MEANWHILE_CAP {
                meanwhile.changes.push(change.clone());
            } else {
                meanwhile.overflowed = true;
                meanwhile.changes = Vec::new();
            }
        }
        self.apply_to(&mut state, change);
    }

    fn apply_to(&self, state: &mut State, change: &DirectoryChange) {
        let touched_server = match change {
            // Applied twice (a node starting while it was published), it must not
            // forget the members who joined since.
            DirectoryChange::ServerCreated { server, .. } if state.servers.contains_key(server) => {
                None
            }
            DirectoryChange::ServerCreated { server, owner } => {
                let mut members = HashMap::new();
                members.insert(*owner, Member::default());
                state.servers.insert(
                    *server,
                    ServerState {
                        owner: *owner,
                        members,
                        roles: HashMap::new(),
                        channels: HashSet::new(),
                        timeouts: HashMap::new(),
                    },
                );
                state
                    .user_servers
                    .entry(*owner)
                    .or_default()
                    .insert(*server);
                Some(*server)
            }
            DirectoryChange::ServerDeleted { server } => {
                if let Some(removed) = state.servers.remove(server) {
                    for user in removed.members.keys() {
                        remove_user_server(state, *user, *server);
                    }
                    for channel in &removed.channels {
                        state.channels.remove(channel);
                        state.overrides.remove(channel);
                    }
                    state.voice.retain(|_, c| !removed.channels.contains(c));
                    self.forget_viewers(removed.channels.iter());
                }
                None
            }
            DirectoryChange::MemberAdded { server, user } => {
                if let Some(s) = state.servers.get_mut(server) {
                    s.members.entry(*user).or_default();
                    state.user_servers.entry(*user).or_default().insert(*server);
                }
                Some(*server)
            }
            DirectoryChange::MemberRemoved { server, user } => {
                if let Some(s) = state.servers.get_mut(server) {
                    s.members.remove(user);
                    remove_user_server(state, *user, *server);
                }
                Some(*server)
            }
            DirectoryChange::ChannelCreated {
                channel,
                server,
                kind,
            } => {
                if let Some(s) = state.servers.get_mut(server) {
                    s.channels.insert(*channel);
                    state.channels.insert(*channel, (*server, *kind));
                }
                Some(*server)
            }
            DirectoryChange::ChannelDeleted { channel } => {
                if let Some((server, _)) = state.channels.remove(channel) {
                    if let Some(s) = state.servers.get_mut(&server) {
                        s.channels.remove(channel);
                    }
                    state.overrides.remove(channel);
                    state.voice.retain(|_, c| c != channel);
                    self.forget_viewers([channel].into_iter());
                    Some(server)
                } else {
                    None
                }
            }
            DirectoryChange::RoleUpserted {
                role,
                server,
                permissions,
                position,
            } => {
                let before = state
                    .servers
                    .get_mut(server)
                    .and_then(|s| s.roles.insert(*role, (*permissions, *position)));
                // A move (same bits) changes ranks, not what anyone may see.
                match before {
                    Some((bits, _)) if bits == *permissions => None,
                    _ => Some(*server),
                }
            }
            DirectoryChange::RoleDeleted { role, server } => {
                if let Some(s) = state.servers.get_mut(server) {
                    s.roles.remove(role);
                    for m in s.members.values_mut() {
                        m.roles.retain(|r| r != role);
                    }
                }
                let role = *role;
                for list in state.overrides.values_mut() {
                    list.retain(|o| o.bits.role != Some(role));
                }
                Some(*server)
            }
            DirectoryChange::MemberRoleAdded { server, user, role } => {
                if let Some(m) = state
                    .servers
                    .get_mut(server)
                    .and_then(|s| s.members.get_mut(user))
                    && !m.roles.contains(role)
                {
                    m.roles.push(*role);
                }
                // Only this member's permissions moved: patch the cached viewer sets
                // rather than drop them (a 10k-member server would recompute every
                // channel's set on its next event).
                self.repatch_viewers(state, *server, *user);
                None
            }
            DirectoryChange::MemberRoleRemoved { server, user, role } => {
                if let Some(m) = state
                    .servers
                    .get_mut(server)
                    .and_then(|s| s.members.get_mut(user))
                {
                    m.roles.retain(|r| r != role);
                }
                self.repatch_viewers(state, *server, *user);
                None
            }
            DirectoryChange::OverrideUpserted(ov) => {
                upsert_override(state, ov);
                state.channels.get(&ov.channel_id).map(|(s, _)| *s)
            }
            DirectoryChange::OverrideDeleted { channel, id } => {
                if let Some(list) = state.overrides.get_mut(channel) {
                    list.retain(|o| o.id != *id);
                }
                state.channels.get(channel).map(|(s, _)| *s)
            }
            DirectoryChange::TimeoutSet {
                server,
                user,
                until,
            } => {
                if let Some(s) = state.servers.get_mut(server) {
                    match until {
                        Some(until) => s.timeouts.insert(*user, *until),
                        None => s.timeouts.remove(user),
                    };
                }
                None
            }
            DirectoryChange::VoiceJoined { user, channel } => {
                state.voice.insert(*user, *channel);
                None
            }
            DirectoryChange::VoiceLeft { user } => {
                state.voice.remove(user);
                None
            }
        };
        if let Some(s) = touched_server.and_then(|server| state.servers.get(&server)) {
            self.forget_viewers(s.channels.iter());
        }
    }

    // ---- questions ----

    /// Whether the server exists.
    pub fn server_exists(&self, server: ServerId) -> bool {
        self.read().servers.contains_key(&server)
    }

    /// The owner of a server.
    pub fn owner(&self, server: ServerId) -> Option<UserId> {
        self.read().servers.get(&server).map(|s| s.owner)
    }

    /// Whether `user` is a member of `server`.
    pub fn is_member(&self, server: ServerId, user: UserId) -> bool {
        self.read()
            .servers
            .get(&server)
            .is_some_and(|s| s.members.contains_key(&user))
    }

    /// The channel's server and kind.
    pub fn channel(&self, channel: ChannelId) -> Option<ChannelFacts> {
        self.read()
            .channels
            .get(&channel)
            .map(|&(server, kind)| ChannelFacts { server, kind })
    }

    /// Servers `user` belongs to.
    pub fn servers_of(&self, user: UserId) -> Vec<ServerId> {
        self.read()
            .user_servers
            .get(&user)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Server-level permissions of `user` in `server` (None when not a member).
    pub fn server_permissions(&self, server: ServerId, user: UserId) -> Option<Permissions> {
        let state = self.read();
        let s = state.servers.get(&server)?;
        let member = s.members.get(&user)?;
        Some(perms::server_level(
            s.owner == user,
            member
                .roles
                .iter()
                .filter_map(|r| s.roles.get(r).map(|(bits, _)| *bits)),
        ))
    }

    /// Channel-level permissions of `user` on `channel` (None when the channel is
    /// unknown or the user is not a member of its server).
    pub fn channel_permissions(&self, channel: ChannelId, user: UserId) -> Option<Permissions> {
        let state = self.read();
        channel_permissions_in(&state, channel, user)
    }

    /// Highest role position of `user` in `server` (0 without roles).
    pub fn highest_position(&self, server: ServerId, user: UserId) -> i64 {
        let state = self.read();
        state
            .servers
            .get(&server)
            .and_then(|s| {
                let m = s.members.get(&user)?;
                m.roles
                    .iter()
                    .filter_map(|r| s.roles.get(r).map(|(_, p)| *p))
                    .max()
            })
            .unwrap_or(0)
    }

    /// When `user`'s timeout in `server` ends, if it is still running at `now`.
    pub fn timed_out_until(
        &self,
        server: ServerId,
        user: UserId,
        now: Timestamp,
    ) -> Option<Timestamp> {
        let state = self.read();
        let until = *state.servers.get(&server)?.timeouts.get(&user)?;
        (until > now).then_some(until)
    }

    /// The voice channel `user` is in.
    pub fn voice_channel(&self, user: UserId) -> Option<ChannelId> {
        self.read().voice.get(&user).copied()
    }

    /// Every user in a voice channel.
    pub fn voice_users(&self) -> Vec<UserId> {
        self.read().voice.keys().copied().collect()
    }

    // ---- audiences ----

    /// Every channel of `server`.
    pub fn channels_of(&self, server: ServerId) -> Vec<ChannelId> {
        self.read()
            .servers
            .get(&server)
            .map(|s| s.channels.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Every member of `server`.
    pub fn members(&self, server: ServerId) -> Vec<UserId> {
        self.read()
            .servers
            .get(&server)
            .map(|s| s.members.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Members of the channel's server who may VIEW it (cached until something that
    /// feeds permissions in that server changes).
    pub fn viewers(&self, channel: ChannelId) -> Arc<[UserId]> {
        if let Some(hit) = self
            .viewers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&channel)
        {
            return Arc::clone(hit);
        }
        // Compute and insert under one read lock: a change (write lock) cannot slip
        // between them, and changes invalidate under the write lock (order: state, then
        // cache), so the cache never holds stale viewers.
        let state = self.read();
        let computed: Arc<[UserId]> = match state
            .channels
            .get(&channel)
            .and_then(|(server, _)| state.servers.get(server))
        {
            Some(s) => s
                .members
                .keys()
                .copied()
                .filter(|&user| {
                    channel_permissions_in(&state, channel, user)
                        .is_some_and(|p| p.contains(Permissions::VIEW_CHANNEL))
                })
                .collect(),
            None => return Arc::from(Vec::new()),
        };
        self.viewers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(channel, Arc::clone(&computed));
        computed
    }

    /// Members of `server` holding the server-level bit `bit`.
    pub fn members_with(&self, server: ServerId, bit: Permissions) -> Vec<UserId> {
        let state = self.read();
        let Some(s) = state.servers.get(&server) else {
            return Vec::new();
        };
        s.members
            .iter()
            .filter(|(user, m)| {
                perms::server_level(
                    s.owner == **user,
                    m.roles
                        .iter()
                        .filter_map(|r| s.roles.get(r).map(|(b, _)| *b)),
                )
                .contains(bit)
            })
            .map(|(user, _)| *user)
            .collect()
    }

    /// Every user sharing at least one server with `user`, excluding `user`.
    pub fn co_members(&self, user: UserId) -> Vec<UserId> {
        let state = self.read();
        let Some(servers) = state.user_servers.get(&user) else {
            return Vec::new();
        };
        let mut members = servers
            .iter()
            .filter_map(|server| state.servers.get(server));
        // One shared server (the common case, and the one a 10k-member community
        // hits on every connect): its member list is already a set, skip the hashing.
        if servers.len() == 1 {
            return members
                .next()
                .map(|s| s.members.keys().copied().filter(|u| *u != user).collect())
                .unwrap_or_default();
        }
        let mut out = HashSet::new();
        for s in members {
            out.extend(s.members.keys().copied());
        }
        out.remove(&user);
        out.into_iter().collect()
    }

    /// Brings the cached viewer sets of `server`'s channels up to date for `user` alone,
    /// after a change that moved nobody else's permissions; callers hold the state write
    /// lock (lock order: state, then cache). A set that does not change stays shared.
    fn repatch_viewers(&self, state: &State, server: ServerId, user: UserId) {
        let Some(s) = state.servers.get(&server) else {
            return;
        };
        let mut cache = self.viewers.lock().unwrap_or_else(|e| e.into_inner());
        for channel in &s.channels {
            let Some(cached) = cache.get(channel) else {
                continue;
            };
            let sees = channel_permissions_in(state, *channel, user)
                .is_some_and(|p| p.contains(Permissions::VIEW_CHANNEL));
            if cached.contains(&user) == sees {
                continue;
            }
            let patched: Arc<[UserId]> = if sees {
                cached.iter().copied().chain([user]).collect()
            } else {
                cached.iter().copied().filter(|u| *u != user).collect()
            };
            cache.insert(*channel, patched);
        }
    }

    /// Drops cached viewers; callers hold the state write lock (lock order: state, then
    /// cache).
    fn forget_viewers<'a>(&self, channels: impl Iterator<Item = &'a ChannelId>) {
        let mut cache = self.viewers.lock().unwrap_or_else(|e| e.into_inner());
        for channel in channels {
            cache.remove(channel);
        }
    }

    fn meanwhile(&self) -> std::sync::MutexGuard<'_, Option<Meanwhile>> {
        self.applied_meanwhile
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
}

fn remove_user_server(state: &mut State, user: UserId, server: ServerId) {
    if let Some(set) = state.user_servers.get_mut(&user) {
        set.remove(&server);
        if set.is_empty() {
            state.user_servers.remove(&user);
        }
    }
}

fn upsert_override(state: &mut State, ov: &ChannelOverride) {
    let entry = OverrideEntry {
        id: ov.id,
        bits: OverrideBits {
            role: ov.role_id,
            user: ov.user_id,
            allow: ov.allow,
            deny: ov.deny,
        },
    };
    let list = state.overrides.entry(ov.channel_id).or_default();
    list.retain(|o| {
        o.id != ov.id
            && !(o.bits.role.is_some() && o.bits.role == ov.role_id)
            && !(o.bits.user.is_some() && o.bits.user == ov.user_id)
    });
    list.push(entry);
}

fn channel_permissions_in(state: &State, channel: ChannelId, user: UserId) -> Option<Permissions> {
    let (server, _) = state.channels.get(&channel)?;
    let s = state.servers.get(server)?;
    let member = s.members.get(&user)?;
    let roles: Vec<(RoleId, i64)> = member
        .roles
        .iter()
        .filter_map(|r| s.roles.get(r).map(|(bits, _)| (*r, *bits)))
        .collect();
    let overrides: Vec<OverrideBits> = state
        .overrides
        .get(&channel)
        .map(|list| list.iter().map(|o| o.bits).collect())
        .unwrap_or_default();
    Some(perms::channel_level(
        s.owner == user,
        user,
        &roles,
        &overrides,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (Directory, ServerId, ChannelId, UserId, UserId) {
        let dir = Directory::new();
        let (server, channel) = (ServerId::new(), ChannelId::new());
        let (owner, member) = (UserId::new(), UserId::new());
        dir.apply(&DirectoryChange::ServerCreated { server, owner });
        dir.apply(&DirectoryChange::MemberAdded {
            server,
            user: member,
        });
        dir.apply(&DirectoryChange::ChannelCreated {
            channel,
            server,
            kind: ChannelType::Text,
        });
        (dir, server, channel, owner, member)
    }

    fn sorted(mut v: Vec<UserId>) -> Vec<UserId> {
        v.sort();
        v
    }

    #[test]
    fn viewers_follow_overrides_and_membership() {
        let (dir, server, channel, owner, member) = setup();
        assert_eq!(
            sorted(dir.viewers(channel).to_vec()),
            sorted(vec![owner, member])
        );
        let ov = ChannelOverride {
            id: OverrideId::new(),
            channel_id: channel,
            role_id: None,
            user_id: Some(member),
            allow: 0,
            deny: Permissions::VIEW_CHANNEL.0,
        };
        dir.apply(&DirectoryChange::OverrideUpserted(ov.clone()));
        assert_eq!(
            dir.viewers(channel).to_vec(),
            vec![owner],
            "cache was invalidated"
        );
        dir.apply(&DirectoryChange::OverrideDeleted { channel, id: ov.id });
        assert_eq!(dir.viewers(channel).len(), 2);
        dir.apply(&DirectoryChange::MemberRemoved {
            server,
            user: member,
        });
        assert_eq!(dir.viewers(channel).to_vec(), vec![owner]);
        assert!(!dir.is_member(server, member));
    }

    #[test]
    fn co_members_exclude_self_and_strangers() {
        let (dir, server, _, owner, member) = setup();
        let stranger = UserId::new();
        dir.apply(&DirectoryChange::ServerCreated {
            server: ServerId::new(),
            owner: stranger,
        });
        assert_eq!(dir.co_members(owner), vec![member]);
        assert_eq!(dir.co_members(member), vec![owner]);
        assert!(dir.co_members(stranger).is_empty());
        dir.apply(&DirectoryChange::ServerDeleted { server });
        assert!(dir.co_members(owner).is_empty());
    }

    #[test]
    fn roles_feed_server_permissions_and_positions() {
        let (dir, server, _, _, member) = setup();
        let role = RoleId::new();
        dir.apply(&DirectoryChange::RoleUpserted {
            role,
            server,
            permissions: Permissions::CREATE_INVITES.0,
            position: 3,
        });
        assert!(
            dir.members_with(server, Permissions::CREATE_INVITES).len() == 1,
            "owner only"
        );
        dir.apply(&DirectoryChange::MemberRoleAdded {
            server,
            user: member,
            role,
        });
        assert_eq!(
            dir.members_with(server, Permissions::CREATE_INVITES).len(),
            2
        );
        assert_eq!(dir.highest_position(server, member), 3);
        dir.apply(&DirectoryChange::RoleDeleted { role, server });
        assert_eq!(dir.highest_position(server, member), 0);
    }

    #[test]
    fn a_role_given_or_taken_patches_cached_viewers_and_a_move_keeps_them() {
        let (dir, server, channel, owner, member) = setup();
        let (hidden, other) = (ChannelId::new(), ChannelId::new());
        for c in [hidden, other] {
            dir.apply(&DirectoryChange::ChannelCreated {
                channel: c,
                server,
                kind: ChannelType::Text,
            });
        }
        let role = RoleId::new();
        dir.apply(&DirectoryChange::RoleUpserted {
            role,
            server,
            permissions: 0,
            position: 1,
        });
        dir.apply(&DirectoryChange::OverrideUpserted(ChannelOverride {
            id: OverrideId::new(),
            channel_id: hidden,
            role_id: Some(role),
            user_id: None,
            allow: 0,
            deny: Permissions::VIEW_CHANNEL.0,
        }));
        let cached: Vec<Arc<[UserId]>> = [channel, hidden, other]
            .iter()
            .map(|c| dir.viewers(*c))
            .collect();
        assert!(cached.iter().all(|v| v.len() == 2));

        dir.apply(&DirectoryChange::MemberRoleAdded {
            server,
            user: member,
            role,
        });
        assert_eq!(dir.viewers(hidden).to_vec(), vec![owner], "patched");
        for (c, before) in [(channel, &cached[0]), (other, &cached[2])] {
            assert!(
                Arc::ptr_eq(&dir.viewers(c), before),
                "untouched sets stay shared"
            );
        }
        let patched = dir.viewers(hidden);
        // A move changes ranks only.
        dir.apply(&DirectoryChange::RoleUpserted {
            role,
            server,
            permissions: 0,
            position: 9,
        });
        assert!(Arc::ptr_eq(&dir.viewers(hidden), &patched));
        assert_eq!(dir.highest_position(server, member), 9);

        dir.apply(&DirectoryChange::MemberRoleRemoved {
            server,
            user: member,
            role,
        });
        assert_eq!(
            sorted(dir.viewers(hidden).to_vec()),
            sorted(vec![owner, member])
        );
        // New bits drop the sets; they are computed again, the same.
        dir.apply(&DirectoryChange::RoleUpserted {
            role,
            server,
            permissions: Permissions::KICK_MEMBERS.0,
            position: 9,
        });
        assert!(!Arc::ptr_eq(&dir.viewers(channel), &cached[0]));
        assert_eq!(dir.viewers(channel).len(), 2);
    }

    /// What the database says of `setup()`'s server and channel: its owner and
    /// `members`.
    fn snapshot_of(
        server: ServerId,
        channel: ChannelId,
        owner: UserId,
        members: &[UserId],
    ) -> DirectorySnapshot {
        DirectorySnapshot {
            servers: vec![(server, owner)],
            members: std::iter::once(owner)
                .chain(members.iter().copied())
                .map(|user| (server, user))
                .collect(),
            channels: vec![(channel, server, ChannelType::Text)],
            ..DirectorySnapshot::default()
        }
    }

    #[test]
    fn a_refresh_takes_the_snapshot_and_what_was_applied_while_it_was_read() {
        let (dir, server, channel, owner, member) = setup();
        let (newcomer, missed, leaver) = (UserId::new(), UserId::new(), UserId::new());
        dir.apply(&DirectoryChange::MemberAdded {
            server,
            user: leaver,
        });
        dir.apply(&DirectoryChange::VoiceJoined {
            user: member,
            channel,
        });
        assert_eq!(dir.viewers(channel).len(), 3, "cached before the refresh");

        dir.begin_refresh();
        // Applied while the snapshot is read: the newcomer joins (after the read,
        // which does not have him) and the leaver leaves (before it: the read does
        // not have him either, and applying his leave again is harmless).
        dir.apply(&DirectoryChange::MemberAdded {
            server,
            user: newcomer,
        });
        dir.apply(&DirectoryChange::MemberRemoved {
            server,
            user: leaver,
        });
        // The database also holds a member this node never heard of (its node died
        // before publishing), and no longer holds the member who left.
        let snapshot = snapshot_of(server, channel, owner, &[member, missed]);
        assert_eq!(
            dir.finish_refresh(snapshot),
            Ok(vec![missed]),
            "the one user whose servers this node had wrong"
        );

        assert!(dir.is_member(server, newcomer), "applied meanwhile, kept");
        assert!(dir.is_member(server, missed), "from the database");
        assert!(!dir.is_member(server, leaver));
        assert_eq!(
            sorted(dir.viewers(channel).to_vec()),
            sorted(vec![owner, member, newcomer, missed]),
            "the cached viewers were dropped"
        );
        assert_eq!(dir.servers_of(missed), vec![server]);
        assert_eq!(
            dir.voice_channel(member),
            Some(channel),
            "voice is not in the database: kept"
        );

        // Nothing is kept once the refresh is over.
        dir.apply(&DirectoryChange::MemberRemoved {
            server,
            user: newcomer,
        });
        assert_eq!(
            dir.finish_refresh(snapshot_of(server, channel, owner, &[])),
            Err(RefreshError::NotBegun)
        );
        assert!(
            dir.is_member(server, member),
            "a refused refresh changes nothing"
        );
    }

    #[test]
    fn a_refresh_drops_voice_in_a_channel_gone_and_one_begun_again_starts_afresh() {
        let (dir, server, channel, owner, member) = setup();
        dir.apply(&DirectoryChange::VoiceJoined {
            user: member,
            channel,
        });
        dir.begin_refresh();
        dir.apply(&DirectoryChange::MemberRemoved {
            server,
            user: member,
        });
        // Begun again, what was kept is dropped: the snapshot to come is read after
        // this, so it has every change before (here, he is back).
        dir.begin_refresh();
        let mut snapshot = snapshot_of(server, channel, owner, &[member]);
        snapshot.channels.clear();
        assert_eq!(dir.finish_refresh(snapshot), Ok(vec![member]));
        assert!(dir.is_member(server, member), "the snapshot decides");
        assert_eq!(dir.voice_channel(member), None, "the channel is gone");
    }

    #[test]
    fn a_refresh_with_more_changes_meanwhile_than_are_kept_must_read_again() {
        let (dir, server, channel, owner, member) = setup();
        dir.begin_refresh();
        for _ in 0..=MEANWHILE_CAP {
            dir.apply(&DirectoryChange::TimeoutSet {
                server,
                user: member,
                until: None,
            });
        }
        assert_eq!(
            dir.finish_refresh(snapshot_of(server, channel, owner, &[])),
            Err(RefreshError::Overflowed)
        );
        assert!(dir.is_member(server, member), "nothing replaced");
        dir.begin_refresh();
        dir.abandon_refresh();
        assert_eq!(
            dir.finish_refresh(snapshot_of(server, channel, owner, &[])),
            Err(RefreshError::NotBegun),
            "given up"
        );
        dir.begin_refresh();
        assert_eq!(
            dir.finish_refresh(snapshot_of(server, channel, owner, &[])),
            Ok(vec![member])
        );
        assert!(!dir.is_member(server, member));
    }

    #[test]
    fn voice_and_timeouts() {
        let (dir, server, channel, _, member) = setup();
        dir.apply(&DirectoryChange::VoiceJoined {
            user: member,
            channel,
        });
        assert_eq!(dir.voice_channel(member), Some(channel));
        dir.apply(&DirectoryChange::ChannelDeleted { channel });
        assert_eq!(dir.voice_channel(member), None);
        let now = Timestamp::from_micros(1_000);
        dir.apply(&DirectoryChange::TimeoutSet {
            server,
            user: member,
            until: Some(Timestamp::from_micros(2_000)),
        });
        assert!(dir.timed_out_until(server, member, now).is_some());
        assert!(
            dir.timed_out_until(server, member, Timestamp::from_micros(3_000))
                .is_none()
        );
    }

    #[test]
    fn a_timeout_outlives_leaving_and_rejoining_until_lifted() {
        let (dir, server, _, _, member) = setup();
        let now = Timestamp::from_micros(1_000);
        let until = Timestamp::from_micros(2_000);
        dir.apply(&DirectoryChange::TimeoutSet {
            server,
            user: member,
            until: Some(until),
        });
        dir.apply(&DirectoryChange::MemberRemoved {
            server,
            user: member,
        });
        dir.apply(&DirectoryChange::MemberAdded {
            server,
            user: member,
        });
        assert_eq!(dir.timed_out_until(server, member, now), Some(until));
        dir.apply(&DirectoryChange::TimeoutSet {
            server,
            user: member,
            until: None,
        });
        assert_eq!(dir.timed_out_until(server, member, now), None);
    }
}
