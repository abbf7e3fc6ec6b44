//! Property test of permission resolution and audiences (`rest.md` §5.2).
//!
//! For random roles (bits and positions), role assignments and channel overrides (role
//! and user targets, allow and deny), then a random sequence of the changes the REST
//! routes publish (roles changed, created again or deleted, roles given and taken,
//! overrides put and deleted, members leaving and coming back), after every step:
//!
//! - the directory's channel-level permissions equal a plain model of §5.2 written
//!   here, and so do its server-level permissions and highest positions;
//! - the audience the Hub fans channel events out to (`Directory::viewers`, cached
//!   across the steps, so its invalidation and patching are exercised) is exactly the
//!   set of members for whom the REST check (`access::can_view`) grants VIEW_CHANNEL.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, LazyLock},
};

use concord_protocol::{
    ChannelId, ChannelOverride, ChannelType, OverrideId, RoleId, ServerId, UserId,
};
use concord_server::{
    AppState, Config, access, build_state,
    directory::{Directory, DirectoryChange},
};
use concord_store::SqliteStore;
use proptest::prelude::*;

const ALL: i64 = 0x7FFF;
const VIEW_CHANNEL: i64 = 1;
const ADMINISTRATOR: i64 = 1 << 13;
/// What every member holds at channel level without roles.
const DEFAULTS: i64 = 1 | 2 | 8 | 16 | 32 | 64;

const ROLES: usize = 4;
/// The owner (0), four members (1..=4) and a user who is in no server (5).
const USERS: usize = 6;
const STRANGER: usize = USERS - 1;
const CHANNELS: usize = 2;

/// A server's real AppState (in-memory store), built once; each case swaps in a fresh
/// directory.
static STATE: LazyLock<AppState> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = Arc::new(SqliteStore::in_memory().await.expect("store"));
        let config = Config {
            data_dir: std::env::temp_dir().join("concord-permissions-property"),
            jwt_secret: Some("p".repeat(32)),
            ..Config::default()
        };
        build_state(config, store).await.expect("state")
    })
});

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Role(usize),
    User(usize),
}

#[derive(Debug, Clone)]
enum Op {
    /// Changes (or creates again) a role.
    SetRole(usize, i64, i64),
    DeleteRole(usize),
    Give(usize, usize),
    Take(usize, usize),
    PutOverride(usize, Target, i64, i64),
    DeleteOverride(usize, Target),
    Leave(usize),
    Join(usize),
}

#[derive(Debug, Clone)]
struct Case {
    roles: Vec<(i64, i64)>,
    /// Per user (the owner and the members), the roles given.
    given: Vec<BTreeSet<usize>>,
    overrides: Vec<(usize, Target, i64, i64)>,
    ops: Vec<Op>,
}

/// Role bits: any of the 15 bits, ADMINISTRATOR in about one role of eight.
fn role_bits() -> impl Strategy<Value = i64> {
    (0..=ALL, 0..8u8).prop_map(|(bits, admin)| {
        let bits = bits & !ADMINISTRATOR;
        if admin == 0 {
            bits | ADMINISTRATOR
        } else {
            bits
        }
    })
}

/// Override bits: sparse, so that VIEW_CHANNEL is sometimes allowed, sometimes denied,
/// often left alone.
fn override_bits() -> impl Strategy<Value = i64> {
    prop_oneof![Just(0), Just(VIEW_CHANNEL), 0..=ALL]
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        (0..ROLES).prop_map(Target::Role),
        (0..USERS).prop_map(Target::User),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..ROLES, role_bits(), -2..6i64).prop_map(|(r, b, p)| Op::SetRole(r, b, p)),
        (0..ROLES).prop_map(Op::DeleteRole),
        (0..USERS, 0..ROLES).prop_map(|(u, r)| Op::Give(u, r)),
        (0..USERS, 0..ROLES).prop_map(|(u, r)| Op::Take(u, r)),
        (0..CHANNELS, target(), override_bits(), override_bits())
            .prop_map(|(c, t, a, d)| Op::PutOverride(c, t, a, d)),
        (0..CHANNELS, target()).prop_map(|(c, t)| Op::DeleteOverride(c, t)),
        (1..USERS).prop_map(Op::Leave),
        (1..USERS).prop_map(Op::Join),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec((role_bits(), -2..6i64), ROLES),
        prop::collection::vec(prop::collection::btree_set(0..ROLES, 0..=ROLES), STRANGER),
        prop::collection::vec(
            (0..CHANNELS, target(), override_bits(), override_bits()),
            0..8,
        ),
        prop::collection::vec(op(), 0..16),
    )
        .prop_map(|(roles, given, overrides, ops)| Case {
            roles,
            given,
            overrides,
            ops,
        })
}

/// The model: the same facts as the directory, in plain maps, resolved by the rules of
/// `rest.md` §5.2 as written there.
struct Model {
    server: ServerId,
    users: Vec<UserId>,
    roles: Vec<RoleId>,
    channels: Vec<ChannelId>,
    members: BTreeSet<usize>,
    /// Existing roles: bits and position.
    role_state: BTreeMap<usize, (i64, i64)>,
    given: BTreeMap<usize, BTreeSet<usize>>,
    /// (channel, target) → (override id, allow, deny).
    overrides: BTreeMap<(usize, Target), (OverrideId, i64, i64)>,
}

impl Model {
    fn new() -> Self {
        Self {
            server: ServerId::new(),
            users: (0..USERS).map(|_| UserId::new()).collect(),
            roles: (0..ROLES).map(|_| RoleId::new()).collect(),
            channels: (0..CHANNELS).map(|_| ChannelId::new()).collect(),
            members: (0..STRANGER).collect(),
            role_state: BTreeMap::new(),
            given: BTreeMap::new(),
            overrides: BTreeMap::new(),
        }
    }

    fn roles_of(&self, user: usize) -> Vec<usize> {
        self.given
            .get(&user)
            .map(|set| {
                set.iter()
                    .copied()
                    .filter(|r| self.role_state.contains_key(r))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Server level: owner → all; else the OR of the roles, all with ADMINISTRATOR.
    fn server_level(&self, user: usize) -> Option<i64> {
        if !self.members.contains(&user) {
            return None;
        }
        if user == 0 {
            return Some(ALL);
        }
        let bits = self
            .roles_of(user)
            .iter()
            .fold(0, |acc, r| acc | self.role_state[r].0);
        Some(if bits & ADMINISTRATOR != 0 { ALL } else { bits })
    }

    /// Channel level, steps 1 to 5 of §5.2.
    fn channel_level(&self, channel: usize, user: usize) -> Option<i64> {
        if !self.members.contains(&user) {
            return None;
        }
        if user == 0 {
            return Some(ALL);
        }
        let roles = self.roles_of(user);
        let base = roles
            .iter()
            .fold(DEFAULTS, |acc, r| acc | self.role_state[r].0);
        if base & ADMINISTRATOR != 0 {
            return Some(ALL);
        }
        let (mut role_allow, mut role_deny) = (0, 0);
        for r in &roles {
            if let Some(&(_, allow, deny)) = self.overrides.get(&(channel, Target::Role(*r))) {
                role_allow |= allow;
                role_deny |= deny;
            }
        }
        let mut bits = (base & !role_deny) | role_allow;
        if let Some(&(_, allow, deny)) = self.overrides.get(&(channel, Target::User(user))) {
            bits = (bits & !deny) | allow;
        }
        Some(bits)
    }

    fn highest(&self, user: usize) -> i64 {
        if !self.members.contains(&user) {
            return 0;
        }
        self.roles_of(user)
            .iter()
            .map(|r| self.role_state[r].1)
            .max()
            .unwrap_or(0)
    }

    fn override_body(
        &self,
        channel: usize,
        target: Target,
        id: OverrideId,
        allow: i64,
        deny: i64,
    ) -> ChannelOverride {
        let (role_id, user_id) = match target {
            Target::Role(r) => (Some(self.roles[r]), None),
            Target::User(u) => (None, Some(self.users[u])),
        };
        ChannelOverride {
            id,
            channel_id: self.channels[channel],
            role_id,
            user_id,
            allow,
            deny,
        }
    }

    /// Applies `op` to the model and returns the directory change the REST route would
    /// publish, or `None` where the store would refuse it or nothing changes.
    fn apply(&mut self, op: &Op) -> Option<DirectoryChange> {
        match *op {
            Op::SetRole(r, bits, position) => {
                self.role_state.insert(r, (bits, position));
                Some(DirectoryChange::RoleUpserted {
                    role: self.roles[r],
                    server: self.server,
                    permissions: bits,
                    position,
                })
            }
            Op::DeleteRole(r) => {
                self.role_state.remove(&r)?;
                // Assignments and overrides go with the role.
                for set in self.given.values_mut() {
                    set.remove(&r);
                }
                self.overrides.retain(|(_, t), _| *t != Target::Role(r));
                Some(DirectoryChange::RoleDeleted {
                    role: self.roles[r],
                    server: self.server,
                })
            }
            Op::Give(u, r) => {
                // The store refuses roles that do not exist and users who are not members.
                if !self.members.contains(&u) || !self.role_state.contains_key(&r) {
                    return None;
                }
                self.given.entry(u).or_default().insert(r).then(|| {
                    DirectoryChange::MemberRoleAdded {
                        server: self.server,
                        user: self.users[u],
                        role: self.roles[r],
                    }
                })
            }
            Op::Take(u, r) => self
                .given
                .get_mut(&u)
                .is_some_and(|set| set.remove(&r))
                .then(|| DirectoryChange::MemberRoleRemoved {
                    server: self.server,
                    user: self.users[u],
                    role: self.roles[r],
                }),
            Op::PutOverride(c, target, allow, deny) => {
                if let Target::Role(r) = target
                    && !self.role_state.contains_key(&r)
                {
                    return None;
                }
                // An upsert keeps the override's first id.
                let id = self
                    .overrides
                    .get(&(c, target))
                    .map_or_else(OverrideId::new, |o| o.0);
                self.overrides.insert((c, target), (id, allow, deny));
                Some(DirectoryChange::OverrideUpserted(
                    self.override_body(c, target, id, allow, deny),
                ))
            }
            Op::DeleteOverride(c, target) => {
                let (id, _, _) = self.overrides.remove(&(c, target))?;
                Some(DirectoryChange::OverrideDeleted {
                    channel: self.channels[c],
                    id,
                })
            }
            Op::Leave(u) => {
                if !self.members.remove(&u) {
                    return None;
                }
                self.given.remove(&u);
                Some(DirectoryChange::MemberRemoved {
                    server: self.server,
                    user: self.users[u],
                })
            }
            Op::Join(u) => self
                .members
                .insert(u)
                .then(|| DirectoryChange::MemberAdded {
                    server: self.server,
                    user: self.users[u],
                }),
        }
    }
}

/// The directory and the model agree, and so do the Hub's audience and the REST check.
fn check(model: &Model, state: &AppState, step: &str) -> Result<(), TestCaseError> {
    let directory = &state.directory;
    for (u, &user) in model.users.iter().enumerate() {
        prop_assert_eq!(
            directory
                .server_permissions(model.server, user)
                .map(|p| p.0),
            model.server_level(u),
            "server level of user {} {}",
            u,
            step
        );
        prop_assert_eq!(
            directory.highest_position(model.server, user),
            model.highest(u),
            "highest position of user {} {}",
            u,
            step
        );
        for (c, &channel) in model.channels.iter().enumerate() {
            prop_assert_eq!(
                directory.channel_permissions(channel, user).map(|p| p.0),
                model.channel_level(c, u),
                "channel {} for user {} {}",
                c,
                u,
                step
            );
        }
    }
    for (c, &channel) in model.channels.iter().enumerate() {
        let audience: BTreeSet<UserId> = directory.viewers(channel).iter().copied().collect();
        prop_assert_eq!(
            audience.len(),
            directory.viewers(channel).len(),
            "an audience lists someone twice {}",
            step
        );
        let rest: BTreeSet<UserId> = model
            .users
            .iter()
            .copied()
            .filter(|&user| access::can_view(state, channel, user))
            .collect();
        prop_assert_eq!(&audience, &rest, "audience of channel {} {}", c, step);
        let modelled: BTreeSet<UserId> = (0..USERS)
            .filter(|&u| {
                model
                    .channel_level(c, u)
                    .is_some_and(|p| p & VIEW_CHANNEL != 0)
            })
            .map(|u| model.users[u])
            .collect();
        prop_assert_eq!(
            &audience,
            &modelled,
            "modelled audience of channel {} {}",
            c,
            step
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    })]

    #[test]
    fn directory_permissions_and_audiences_follow_the_rules(case in case()) {
        let mut model = Model::new();
        let state = AppState {
            directory: Arc::new(Directory::new()),
            ..STATE.clone()
        };
        let directory = &state.directory;
        directory.apply(&DirectoryChange::ServerCreated {
            server: model.server,
            owner: model.users[0],
        });
        for u in 1..STRANGER {
            directory.apply(&DirectoryChange::MemberAdded {
                server: model.server,
                user: model.users[u],
            });
        }
        for &channel in &model.channels {
            directory.apply(&DirectoryChange::ChannelCreated {
                channel,
                server: model.server,
                kind: ChannelType::Text,
            });
        }
        let mut setup: Vec<Op> = case
            .roles
            .iter()
            .enumerate()
            .map(|(r, &(bits, position))| Op::SetRole(r, bits, position))
            .collect();
        for (u, roles) in case.given.iter().enumerate() {
            setup.extend(roles.iter().map(|&r| Op::Give(u, r)));
        }
        setup.extend(
            case.overrides
                .iter()
                .map(|&(c, t, allow, deny)| Op::PutOverride(c, t, allow, deny)),
        );
        for op in &setup {
            if let Some(change) = model.apply(op) {
                directory.apply(&change);
            }
        }
        check(&model, &state, "after the setup")?;
        for (i, op) in case.ops.iter().enumerate() {
            if let Some(change) = model.apply(op) {
                directory.apply(&change);
            }
            check(&model, &state, &format!("after step {i} ({op:?})"))?;
        }
    }
}
