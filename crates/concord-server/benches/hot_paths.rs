//! Server hot paths: READY for a user in 50 servers, and audience resolution for a
//! 10k-member server with channel overrides (the viewer set computed from scratch, and
//! served from the cache that fan-out normally hits), and what the metrics add to one
//! fan-out.

#![allow(missing_docs)]

use std::sync::Arc;

use concord_protocol::{
    ChannelId, ChannelOverride, ChannelType, OverrideId, Role, RoleId, Server, ServerId, Timestamp,
    UserId,
};
use concord_server::{
    Config, build_state,
    directory::{Directory, DirectoryChange},
    perms::Permissions,
    routes::gateway::build_ready,
};
use concord_store::{NewChannel, NewMessage, NewUser, SqliteStore, Store};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn new_user(name: &str) -> NewUser {
    NewUser {
        id: UserId::new(),
        username: name.into(),
        email: None,
        password_hash: None,
        status: concord_protocol::Status::Online,
        created_at: Timestamp::now(),
        admin_if_first: false,
        is_bot: false,
    }
}

/// A user in 50 servers, each with 5 channels, 3 roles, 2 overrides, and unread
/// messages, in `store`.
async fn ready_world(store: Arc<dyn Store>) -> (concord_server::AppState, UserId) {
    let owner = store.create_user(&new_user("owner")).await.unwrap();
    let me = store.create_user(&new_user("me")).await.unwrap();
    for s in 0..50 {
        let now = Timestamp::now();
        let server = Server {
            id: ServerId::new(),
            name: format!("server {s}"),
            owner_id: owner.id,
            icon_url: None,
            is_public: true,
            require_invite: false,
            created_at: now,
            updated_at: now,
        };
        store.create_server(&server).await.unwrap();
        store.add_member(server.id, me.id, now).await.unwrap();
        let mut roles = Vec::new();
        for r in 0..3 {
            let role = Role {
                id: RoleId::new(),
                server_id: server.id,
                name: format!("role {r}"),
                permissions: 1 << r,
                color: None,
                position: r + 1,
                created_at: now,
            };
            store.create_role(&role).await.unwrap();
            roles.push(role.id);
        }
        store.assign_role(server.id, me.id, roles[0]).await.unwrap();
        for c in 0..5 {
            let channel = store
                .create_channel(&NewChannel {
                    id: ChannelId::new(),
                    server_id: server.id,
                    name: format!("channel {c}"),
                    kind: ChannelType::Text,
                    topic: None,
                    category: None,
                    created_at: now,
                })
                .await
                .unwrap();
            // The first two channels carry a role override each.
            if let Some(&role) = roles.get(c).filter(|_| c < 2) {
                let ov = ChannelOverride {
                    id: OverrideId::new(),
                    channel_id: channel.id,
                    role_id: Some(role),
                    user_id: None,
                    allow: 0,
                    deny: Permissions::SEND_MESSAGES.0,
                };
                store.put_override(&ov).await.unwrap();
            }
            store.ack_channel(me.id, channel.id, now).await.unwrap();
            for m in 0..3 {
                store
                    .create_message(&NewMessage {
                        id: concord_protocol::MessageId::new(),
                        channel_id: channel.id,
                        author_id: owner.id,
                        content: format!("message {m}"),
                        reply_to: None,
                        mention_user_ids: vec![me.id],
                        mention_everyone: false,
                        thread_id: None,
                        created_at: Timestamp::now(),
                        node: None,
                    })
                    .await
                    .unwrap();
            }
        }
    }
    let dir = std::env::temp_dir().join(format!("concord-bench-{}", uuid::Uuid::new_v4()));
    let config = Config {
        data_dir: dir,
        jwt_secret: Some("x".repeat(32)),
        ..Config::default()
    };
    let state = build_state(config, store).await.unwrap();
    (state, me.id)
}

fn ready(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sqlite: Arc<dyn Store> = Arc::new(runtime.block_on(SqliteStore::in_memory()).unwrap());
    let (state, me) = runtime.block_on(ready_world(sqlite));
    let mut group = c.benchmark_group("ready");
    group.sample_size(30);
    group.bench_function("build READY, user in 50 servers", |b| {
        b.to_async(&runtime)
            .iter(|| async { build_ready(&state, me).await.unwrap() })
    });
    // The same on PostgreSQL (a fresh database on CONCORD_BENCH_DATABASE_URL's
    // server, default the local one), when it answers.
    let base = std::env::var("CONCORD_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/concord_bench".into());
    let server = base.rsplit_once('/').map_or(base.as_str(), |(s, _)| s);
    let url = format!("{server}/concord_bench_{}", uuid::Uuid::new_v4().simple());
    let postgres = runtime.block_on(async {
        concord_store::PostgresStore::create_database(&url).await?;
        concord_store::PostgresStore::connect(&url).await
    });
    match postgres {
        Ok(postgres) => {
            let (state, me) = runtime.block_on(ready_world(Arc::new(postgres)));
            group.bench_function("build READY, user in 50 servers, PostgreSQL", |b| {
                b.to_async(&runtime)
                    .iter(|| async { build_ready(&state, me).await.unwrap() })
            });
        }
        Err(err) => eprintln!("PostgreSQL READY bench skipped: {err}"),
    }
    group.finish();
}

/// A 10k-member server: 10 roles spread over the members, one channel with role and
/// user overrides hiding it from about a third of them.
fn audience_world() -> (Directory, ChannelId, ServerId) {
    let directory = Directory::new();
    let (server, channel) = (ServerId::new(), ChannelId::new());
    directory.apply(&DirectoryChange::ServerCreated {
        server,
        owner: UserId::new(),
    });
    directory.apply(&DirectoryChange::ChannelCreated {
        channel,
        server,
        kind: ChannelType::Text,
    });
    let roles: Vec<RoleId> = (0..10).map(|_| RoleId::new()).collect();
    for (i, role) in roles.iter().enumerate() {
        directory.apply(&DirectoryChange::RoleUpserted {
            role: *role,
            server,
            permissions: 1 << (i % 5),
            position: i as i64 + 1,
        });
    }
    for i in 0..10_000 {
        let user = UserId::new();
        directory.apply(&DirectoryChange::MemberAdded { server, user });
        directory.apply(&DirectoryChange::MemberRoleAdded {
            server,
            user,
            role: roles[i % 10],
        });
        if i % 100 == 0 {
            directory.apply(&DirectoryChange::OverrideUpserted(ChannelOverride {
                id: OverrideId::new(),
                channel_id: channel,
                role_id: None,
                user_id: Some(user),
                allow: Permissions::VIEW_CHANNEL.0,
                deny: 0,
            }));
        }
    }
    for role in &roles[..3] {
        directory.apply(&DirectoryChange::OverrideUpserted(ChannelOverride {
            id: OverrideId::new(),
            channel_id: channel,
            role_id: Some(*role),
            user_id: None,
            allow: 0,
            deny: Permissions::VIEW_CHANNEL.0,
        }));
    }
    (directory, channel, server)
}

fn audience(c: &mut Criterion) {
    let (directory, channel, server) = audience_world();
    let viewers = directory.viewers(channel).len();
    assert!(viewers > 6_000 && viewers < 8_000, "{viewers} viewers");
    let mut group = c.benchmark_group("audience");
    group.throughput(Throughput::Elements(10_000));
    // A role nobody holds, whose bits flip: a change of a role's bits drops the cached
    // set (a role given to or taken from one member only patches it).
    let spare = RoleId::new();
    let mut flip = false;
    group.bench_function("viewers of a channel, 10k members, computed", |b| {
        b.iter(|| {
            flip = !flip;
            directory.apply(&DirectoryChange::RoleUpserted {
                role: spare,
                server,
                permissions: i64::from(flip),
                position: 1,
            });
            directory.viewers(channel)
        })
    });
    group.bench_function("viewers of a channel, 10k members, cached", |b| {
        b.iter(|| directory.viewers(channel))
    });
    group.bench_function("members of a server, 10k", |b| {
        b.iter(|| directory.members(server))
    });
    group.finish();
}

/// What `/metrics` adds to one fan-out: the publish counter and the delivery outcome,
/// counted once per event whatever the audience (never per recipient).
fn metrics(c: &mut Criterion) {
    let metrics = concord_server::metrics::Metrics::new(Arc::new(concord_gateway::Hub::new()));
    let delivery = concord_gateway::Delivery {
        queued: 1000,
        overflowed: 0,
        dropped: 0,
    };
    let mut group = c.benchmark_group("metrics");
    group.bench_function("count one fan-out (published + delivered)", |b| {
        b.iter(|| {
            let event = std::hint::black_box(concord_protocol::Event::MessageCreate);
            metrics.published(event);
            metrics.delivered(event, std::hint::black_box(delivery));
        })
    });
    group.finish();
}

/// What a node adds to each MESSAGE_CREATE it receives from another node, to tell
/// later what a dead node never announced: the id read from the frame and remembered
/// (once per node and message, never per recipient).
fn remember_announced(c: &mut Criterion) {
    use concord_protocol::{Event, MessageId};
    use concord_server::{bus::BusMessage, cluster::unannounced};
    let announced = unannounced::Announced::new(std::time::Duration::from_secs(63));
    let mut group = c.benchmark_group("cluster");
    for (name, length) in [("short", 40), ("4000 characters", 4000)] {
        let message = serde_json::json!({
            "id": MessageId::new(),
            "channel_id": ChannelId::new(),
            "author_id": UserId::new(),
            "content": "x".repeat(length),
            "reply_to": null,
            "mention_user_ids": [],
            "mention_everyone": false,
            "created_at": "2026-12-07T20:00:00.000000Z",
        });
        let frame = BusMessage::Dispatch {
            audience: concord_server::bus::Audience::Channel(ChannelId::new()),
            event: Event::MessageCreate,
            payload: concord_gateway::Payload::dispatch(Event::MessageCreate, &message)
                .expect("serializable"),
        };
        group.bench_function(format!("read a MESSAGE_CREATE's id, {name}"), |b| {
            b.iter(|| unannounced::message_of(std::hint::black_box(&frame)))
        });
        group.bench_function(format!("remember a MESSAGE_CREATE, {name}"), |b| {
            b.iter(|| {
                let read = unannounced::message_of(std::hint::black_box(&frame));
                // A new id each time, as messages come: the memory fills and turns over.
                announced.first(read.map(|_| MessageId::new()).expect("an id"), None)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, ready, audience, metrics, remember_announced);
criterion_main!(benches);
