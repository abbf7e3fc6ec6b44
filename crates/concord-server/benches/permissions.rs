//! Role changes in a 10k-member server: what a change costs the directory and the next
//! fan-out's audience. A role's bits changing drops the server's cached viewer sets (the
//! next event recomputes one); a role given to or taken from one member patches them;
//! and the whole of what a REST handler publishes (the directory change with the v2
//! visibility diff of every channel).

#![allow(missing_docs)]

use std::sync::Arc;

use concord_protocol::{
    ChannelId, ChannelOverride, ChannelType, OverrideId, RoleId, ServerId, UserId,
};
use concord_server::{
    AppState, Config, build_state,
    directory::{Directory, DirectoryChange},
    perms::Permissions,
    visibility,
};
use concord_store::SqliteStore;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const MEMBERS: usize = 10_000;
const CHANNELS: usize = 5;

/// The server: 10k members, 5 channels, 5 roles. Every tenth member holds `staff`
/// (toggled between no bits and ADMINISTRATOR by the benches) and `muted`, whose
/// override hides the first channel; every fifth holds `regular`; every hundredth has a
/// user override allowing VIEW on the first channel.
struct World {
    server: ServerId,
    channels: Vec<ChannelId>,
    staff: RoleId,
    regular: RoleId,
    /// A member without `regular`, given and taken it by the benches.
    newcomer: UserId,
}

fn populate(directory: &Directory) -> World {
    let server = ServerId::new();
    let owner = UserId::new();
    let apply = |change: DirectoryChange| directory.apply(&change);
    apply(DirectoryChange::ServerCreated { server, owner });
    let channels: Vec<ChannelId> = (0..CHANNELS).map(|_| ChannelId::new()).collect();
    for &channel in &channels {
        apply(DirectoryChange::ChannelCreated {
            channel,
            server,
            kind: ChannelType::Text,
        });
    }
    let roles: Vec<RoleId> = (0..5).map(|_| RoleId::new()).collect();
    let (staff, muted, regular) = (roles[0], roles[1], roles[2]);
    for (i, role) in roles.iter().enumerate() {
        apply(DirectoryChange::RoleUpserted {
            role: *role,
            server,
            permissions: if *role == regular {
                Permissions::CREATE_INVITES.0
            } else {
                0
            },
            position: i as i64 + 1,
        });
    }
    apply(DirectoryChange::OverrideUpserted(ChannelOverride {
        id: OverrideId::new(),
        channel_id: channels[0],
        role_id: Some(muted),
        user_id: None,
        allow: 0,
        deny: Permissions::VIEW_CHANNEL.0,
    }));
    apply(DirectoryChange::OverrideUpserted(ChannelOverride {
        id: OverrideId::new(),
        channel_id: channels[1],
        role_id: Some(regular),
        user_id: None,
        allow: Permissions::MANAGE_MESSAGES.0,
        deny: 0,
    }));
    let mut newcomer = owner;
    for i in 0..MEMBERS {
        let user = UserId::new();
        apply(DirectoryChange::MemberAdded { server, user });
        if i % 10 == 0 {
            for role in [staff, muted] {
                apply(DirectoryChange::MemberRoleAdded { server, user, role });
            }
        }
        if i % 5 == 0 {
            apply(DirectoryChange::MemberRoleAdded {
                server,
                user,
                role: regular,
            });
        } else {
            newcomer = user;
        }
        if i % 100 == 0 {
            apply(DirectoryChange::OverrideUpserted(ChannelOverride {
                id: OverrideId::new(),
                channel_id: channels[0],
                role_id: None,
                user_id: Some(user),
                allow: Permissions::VIEW_CHANNEL.0,
                deny: 0,
            }));
        }
    }
    World {
        server,
        channels,
        staff,
        regular,
        newcomer,
    }
}

/// `staff` with or without ADMINISTRATOR: a change of bits that moves 900 members in
/// and out of the first channel's audience.
fn staff_bits(world: &World, admin: bool) -> DirectoryChange {
    DirectoryChange::RoleUpserted {
        role: world.staff,
        server: world.server,
        permissions: if admin {
            Permissions::ADMINISTRATOR.0
        } else {
            0
        },
        position: 1,
    }
}

fn regular_for_newcomer(world: &World, give: bool) -> DirectoryChange {
    let (server, user, role) = (world.server, world.newcomer, world.regular);
    if give {
        DirectoryChange::MemberRoleAdded { server, user, role }
    } else {
        DirectoryChange::MemberRoleRemoved { server, user, role }
    }
}

fn directory(c: &mut Criterion) {
    let directory = Directory::new();
    let world = populate(&directory);
    let hidden = directory.viewers(world.channels[0]).len();
    assert!(hidden > 9_000 && hidden < 9_500, "{hidden} viewers");
    let mut group = c.benchmark_group("permissions");
    group.throughput(Throughput::Elements(MEMBERS as u64));
    let mut admin = false;
    group.bench_function(
        "role bits changed, then the audience of a channel, 10k members",
        |b| {
            b.iter(|| {
                admin = !admin;
                directory.apply(&staff_bits(&world, admin));
                directory.viewers(world.channels[0])
            })
        },
    );
    // Every channel's audience cached, as in a server where all channels are busy.
    for &channel in &world.channels {
        directory.viewers(channel);
    }
    let mut give = false;
    group.bench_function(
        "role given or taken, then the audiences of all 5 channels, 10k members",
        |b| {
            b.iter(|| {
                give = !give;
                directory.apply(&regular_for_newcomer(&world, give));
                world
                    .channels
                    .iter()
                    .map(|&channel| directory.viewers(channel).len())
                    .sum::<usize>()
            })
        },
    );
    group.finish();
}

/// A node's state on an in-memory store with the same server in its directory.
async fn node() -> (AppState, World) {
    let store = Arc::new(SqliteStore::in_memory().await.unwrap());
    let config = Config {
        data_dir: std::env::temp_dir().join(format!("concord-bench-{}", uuid::Uuid::new_v4())),
        jwt_secret: Some("x".repeat(32)),
        ..Config::default()
    };
    let state = build_state(config, store).await.unwrap();
    let world = populate(&state.directory);
    (state, world)
}

fn published(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (state, world) = runtime.block_on(node());
    for &channel in &world.channels {
        state.directory.viewers(channel);
    }
    let mut group = c.benchmark_group("permissions");
    group.throughput(Throughput::Elements(MEMBERS as u64));
    group.sample_size(30);
    let mut admin = false;
    group.bench_function(
        "publish a role's new bits (directory and v2 visibility diff), 10k members",
        |b| {
            b.to_async(&runtime).iter(|| {
                admin = !admin;
                visibility::publish_permission_change(&state, staff_bits(&world, admin))
            })
        },
    );
    let mut give = false;
    group.bench_function(
        "publish a role given or taken (directory and v2 visibility diff), 10k members",
        |b| {
            b.to_async(&runtime).iter(|| {
                give = !give;
                visibility::publish_permission_change(&state, regular_for_newcomer(&world, give))
            })
        },
    );
    group.finish();
}

criterion_group!(benches, directory, published);
criterion_main!(benches);
