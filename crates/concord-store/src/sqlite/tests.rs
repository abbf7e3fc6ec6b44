//! Tests of what only the SQLite backend does: the file store, its pragmas, and the
//! errors its constraints give.

use std::path::PathBuf;

use crate::{DmChannelRecord, NewChannel, NewMessage, NewUser};
use concord_protocol::{ChannelId, ChannelType, DmChannelId, MessageId, Role, RoleId};

use super::*;
use crate::conformance::server_def;
use crate::prelude::*;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("concord-store-{}", Uuid::now_v7()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn new_user(name: &str) -> NewUser {
    NewUser {
        id: UserId::new(),
        username: name.to_owned(),
        email: Some(format!("{name}@example.com")),
        password_hash: Some("hash".to_owned()),
        status: Status::Offline,
        created_at: Timestamp::from_micros(1_000),
        admin_if_first: true,
        is_bot: false,
    }
}

async fn pragma(store: &SqliteStore, name: &'static str) -> String {
    let sql = match name {
        "journal_mode" => "PRAGMA journal_mode",
        "foreign_keys" => "PRAGMA foreign_keys",
        _ => "PRAGMA synchronous",
    };
    let row = sqlx::query(sql).fetch_one(&store.pool).await.unwrap();
    match row.try_get::<String, _>(0) {
        Ok(text) => text,
        Err(_) => row.try_get::<i64, _>(0).unwrap().to_string(),
    }
}

#[tokio::test]
async fn file_store_persists_and_reopens() {
    let dir = TempDir::new();
    let path = dir.0.join("nested-name.db");
    let alice = new_user("alice");
    let server = server_def(alice.id, "home", Timestamp::from_micros(2_000), true);
    let channel_id = ChannelId::new();
    let message_id = MessageId::new();
    {
        let store = SqliteStore::open(&path).await.unwrap();
        assert_eq!(pragma(&store, "journal_mode").await, "wal");
        assert_eq!(pragma(&store, "foreign_keys").await, "1");
        // NORMAL = 1.
        assert_eq!(pragma(&store, "synchronous").await, "1");
        assert!(store.create_user(&alice).await.unwrap().is_admin);
        store.create_server(&server).await.unwrap();
        store
            .create_channel(&NewChannel {
                id: channel_id,
                server_id: server.id,
                name: "general".to_owned(),
                kind: ChannelType::Text,
                topic: None,
                category: None,
                created_at: Timestamp::from_micros(3_000),
            })
            .await
            .unwrap();
        store
            .create_message(&NewMessage {
                id: message_id,
                channel_id,
                author_id: alice.id,
                content: "persisted".to_owned(),
                reply_to: None,
                mention_user_ids: vec![alice.id],
                mention_everyone: false,
                thread_id: None,
                created_at: Timestamp::from_micros(4_000),
                node: None,
            })
            .await
            .unwrap();
        store.close().await;
    }
    assert!(path.exists());

    // Reopen twice: the applied migration is recognised, not re-run.
    for _ in 0..2 {
        let store = SqliteStore::open(&path).await.unwrap();
        let user = store.user_by_username("alice").await.unwrap().unwrap();
        assert_eq!(user.id, alice.id);
        assert!(user.is_admin);
        let dto = store.server(server.id).await.unwrap().unwrap();
        assert_eq!(dto.server, server);
        assert_eq!(dto.member_count, 1);
        let message = store.message(message_id).await.unwrap().unwrap();
        assert_eq!(message.content, "persisted");
        assert_eq!(message.mention_user_ids, vec![alice.id]);
        // The second human is not admin across reopenings either.
        let bob = store
            .create_user(&new_user(&format!("bob{}", Uuid::now_v7().simple())))
            .await;
        assert!(!bob.unwrap().is_admin);
        store.close().await;
    }
}

/// Member counts were counted on every read before the second migration; a database
/// of the first schema gets its counts filled in, and the triggers keep them from then on.
#[tokio::test]
async fn upgrading_a_first_schema_database_fills_in_member_counts() {
    let dir = TempDir::new();
    let path = dir.0.join("first-schema.db");
    let alice = new_user("alice");
    let bob = new_user("bob");
    let big = server_def(alice.id, "big", Timestamp::from_micros(2_000), true);
    let small = server_def(alice.id, "small", Timestamp::from_micros(3_000), true);
    {
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap();
        migrator_of(&MIGRATIONS[..1]).run(&pool).await.unwrap();
        // Writes only: the first schema has no member_count column to read.
        let old = SqliteStore { pool };
        old.create_user(&alice).await.unwrap();
        old.create_user(&bob).await.unwrap();
        old.create_server(&big).await.unwrap();
        old.create_server(&small).await.unwrap();
        old.add_member(big.id, bob.id, Timestamp::from_micros(4_000))
            .await
            .unwrap();
        old.close().await;
    }

    let store = SqliteStore::open(&path).await.unwrap();
    let count = async |id| store.server(id).await.unwrap().unwrap().member_count;
    assert_eq!((count(big.id).await, count(small.id).await), (2, 1));
    store
        .add_member(small.id, bob.id, Timestamp::from_micros(5_000))
        .await
        .unwrap();
    assert!(store.remove_member(big.id, bob.id, None).await.unwrap());
    assert_eq!((count(big.id).await, count(small.id).await), (1, 2));
    let public = store.public_servers(10).await.unwrap();
    assert_eq!(
        public.iter().map(|s| s.server.id).collect::<Vec<_>>(),
        vec![small.id, big.id],
        "largest first"
    );
    store.close().await;
}

#[tokio::test]
async fn sqlite_conflicts_name_the_columns() {
    let store = SqliteStore::in_memory().await.unwrap();
    let alice = new_user("alice");
    store.create_user(&alice).await.unwrap();
    let same_name = NewUser {
        email: None,
        ..new_user("alice")
    };
    let err = store.create_user(&same_name).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(what) if what == "users.username"),
        "{err:?}"
    );
    let mut other = new_user("bob");
    other.email = alice.email.clone();
    let err = store.create_user(&other).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(what) if what == "users.email"),
        "{err:?}"
    );
}

#[tokio::test]
async fn assigning_a_role_needs_membership_and_the_same_server() {
    let store = SqliteStore::in_memory().await.unwrap();
    let alice = new_user("alice");
    let bob = new_user("bob");
    store.create_user(&alice).await.unwrap();
    store.create_user(&bob).await.unwrap();
    let mut servers = Vec::new();
    for _ in 0..2 {
        let server = server_def(alice.id, "s", Timestamp::from_micros(1), false);
        store.create_server(&server).await.unwrap();
        servers.push(server.id);
    }
    let role = Role {
        id: RoleId::new(),
        server_id: servers[0],
        name: "r".to_owned(),
        permissions: 0,
        color: None,
        position: 1,
        created_at: Timestamp::from_micros(1),
    };
    store.create_role(&role).await.unwrap();
    // Not a member.
    let err = store
        .assign_role(servers[0], bob.id, role.id)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    // The role belongs to another server.
    let err = store
        .assign_role(servers[1], alice.id, role.id)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    assert!(
        store
            .assign_role(servers[0], alice.id, role.id)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn ack_of_unknown_channel_is_not_found() {
    let store = SqliteStore::in_memory().await.unwrap();
    let alice = new_user("alice");
    store.create_user(&alice).await.unwrap();
    let at = Timestamp::from_micros(5);
    let err = store
        .ack_channel(alice.id, ChannelId::new(), at)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    let err = store
        .ack_dm(alice.id, DmChannelId::new(), at)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_store_serialises_concurrent_writers() {
    let dir = TempDir::new();
    let store = SqliteStore::open(&dir.0.join("concord.db")).await.unwrap();
    let alice = new_user("alice");
    let bob = new_user("bob");
    store.create_user(&alice).await.unwrap();
    store.create_user(&bob).await.unwrap();
    let server = server_def(alice.id, "s", Timestamp::from_micros(1), false);
    store.create_server(&server).await.unwrap();

    let mut tasks = Vec::new();
    for task in 0..8_i64 {
        let store = store.clone();
        let (alice, bob) = (alice.id, bob.id);
        let server = server.id;
        tasks.push(tokio::spawn(async move {
            let channel = store
                .create_channel(&NewChannel {
                    id: ChannelId::new(),
                    server_id: server,
                    name: format!("c{task}"),
                    kind: ChannelType::Text,
                    topic: None,
                    category: None,
                    created_at: Timestamp::from_micros(10 + task),
                })
                .await
                .unwrap();
            for i in 0..10 {
                store
                    .create_message(&NewMessage {
                        id: MessageId::new(),
                        channel_id: channel.id,
                        author_id: alice,
                        content: format!("{task}/{i}"),
                        reply_to: None,
                        mention_user_ids: vec![bob],
                        mention_everyone: false,
                        thread_id: None,
                        created_at: Timestamp::from_micros(100 + i),
                        node: None,
                    })
                    .await
                    .unwrap();
            }
            let (a, b) = if task % 2 == 0 {
                (alice, bob)
            } else {
                (bob, alice)
            };
            let (_, created) = store
                .open_dm_channel(&DmChannelRecord {
                    id: DmChannelId::new(),
                    user_a: a,
                    user_b: b,
                    created_at: Timestamp::from_micros(5),
                })
                .await
                .unwrap();
            (channel, created)
        }));
    }
    let mut positions = Vec::new();
    let mut created = 0;
    for task in tasks {
        let (channel, new) = task.await.unwrap();
        positions.push(channel.position);
        created += usize::from(new);
        assert_eq!(
            store.messages(channel.id, None, 100).await.unwrap().len(),
            10
        );
    }
    positions.sort_unstable();
    assert_eq!(positions, (0..8).collect::<Vec<_>>());
    assert_eq!(created, 1);
    assert_eq!(store.dm_channels_of_user(alice.id).await.unwrap().len(), 1);
    store.close().await;
}

/// READY's reads run as one command between its own BEGIN and COMMIT. A read that fails
/// part-way (here: a table gone after BEGIN ran) must not put a connection that is
/// still inside that transaction back into the pool, where every later write on it
/// would fail and the open snapshot would keep the WAL from being checkpointed.
#[tokio::test]
async fn ready_read_failing_part_way_leaves_no_transaction_open() {
    let dir = TempDir::new();
    let store = SqliteStore::open(&dir.0.join("concord.db")).await.unwrap();
    let alice = new_user("alice");
    store.create_user(&alice).await.unwrap();
    assert!(store.ready_state(alice.id).await.unwrap().is_some());

    sqlx::query("DROP TABLE channel_overrides")
        .execute(&store.pool)
        .await
        .unwrap();
    for _ in 0..FILE_POOL_SIZE * 2 {
        assert!(store.ready_state(alice.id).await.is_err());
    }
    // Every connection the pool hands out can still open a write transaction (a
    // connection left inside the read transaction would refuse BEGIN IMMEDIATE).
    for i in 0..i64::from(FILE_POOL_SIZE) * 2 {
        let server = server_def(alice.id, &format!("s{i}"), Timestamp::from_micros(i), false);
        store.create_server(&server).await.unwrap();
    }
}

// ---- message search (issue 18 part B) ----

/// Migration 14 indexes the messages already stored, the live ones only.
#[tokio::test]
async fn the_search_migration_backfills_live_messages() {
    let dir = TempDir::new();
    let path = dir.0.join("before-search.db");
    let alice = new_user("alice");
    let hall = server_def(alice.id, "hall", Timestamp::from_micros(2_000), false);
    let channel = NewChannel {
        id: ChannelId::new(),
        server_id: hall.id,
        name: "general".to_owned(),
        kind: ChannelType::Text,
        topic: None,
        category: None,
        created_at: Timestamp::from_micros(3_000),
    };
    let message = |content: &str, micros| NewMessage {
        id: MessageId::new(),
        channel_id: channel.id,
        author_id: alice.id,
        content: content.to_owned(),
        reply_to: None,
        mention_user_ids: Vec::new(),
        mention_everyone: false,
        thread_id: None,
        created_at: Timestamp::from_micros(micros),
        node: None,
    };
    let kept = message("old lighthouse photos", 4_000);
    let gone = message("old lighthouse rumours", 5_000);
    {
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap();
        let before = MIGRATIONS.iter().position(|m| m.0 == 14).unwrap();
        migrator_of(&MIGRATIONS[..before]).run(&pool).await.unwrap();
        let old = SqliteStore { pool };
        old.create_user(&alice).await.unwrap();
        old.create_server(&hall).await.unwrap();
        old.create_channel(&channel).await.unwrap();
        // Rows as that schema had them (today's insert names later columns).
        for message in [&kept, &gone] {
            sqlx::query(
                "INSERT INTO messages (id, channel_id, author_id, content, created_at) \
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(message.id.get())
            .bind(message.channel_id.get())
            .bind(message.author_id.get())
            .bind(&message.content)
            .bind(message.created_at.as_micros())
            .execute(&old.pool)
            .await
            .unwrap();
        }
        assert!(old.delete_message(gone.id).await.unwrap());
        old.close().await;
    }

    let store = SqliteStore::open(&path).await.unwrap();
    let search = crate::MessageSearch {
        text: "lighthouse".to_owned(),
        channels: vec![channel.id],
        channel: None,
        before: None,
        limit: 10,
    };
    let found = store.search_messages(&search).await.unwrap();
    assert_eq!(
        found.hits.iter().map(|h| h.id).collect::<Vec<_>>(),
        [kept.id]
    );
    assert_eq!(found.total, 1);
    // The triggers run from here on.
    let fresh = message("new lighthouse", 6_000);
    store.create_message(&fresh).await.unwrap();
    assert_eq!(store.search_messages(&search).await.unwrap().total, 2);
    // After a VACUUM (which may renumber rowids), the rebuild of docs/search.md.
    for sql in [
        "VACUUM",
        "INSERT INTO messages_fts (messages_fts) VALUES ('delete-all')",
        "INSERT INTO messages_fts (rowid, content) \
         SELECT rowid, content FROM messages WHERE deleted = 0",
        "DELETE FROM search_pending",
        "INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')",
    ] {
        sqlx::query(sql).execute(&store.pool).await.unwrap();
    }
    let found = store.search_messages(&search).await.unwrap();
    assert_eq!(found.total, 2);
    assert!(found.hits.iter().all(|h| h.matches.len() == 1));
    store.close().await;
}

/// The index triggers tell FTS5 the text each row was indexed with, so the index stays
/// consistent through edits, soft deletes, edits refused after a delete, and cascades.
#[tokio::test]
async fn the_search_index_stays_consistent() {
    search_index_consistency(true).await;
}

/// The same changes while the messages still wait to be indexed: the batch reads them
/// as they are then, and a cascade forgets them.
#[tokio::test]
async fn changes_before_indexing_are_read_by_the_batch() {
    search_index_consistency(false).await;
}

async fn search_index_consistency(index_first: bool) {
    let store = SqliteStore::in_memory().await.unwrap();
    let alice = new_user("alice");
    store.create_user(&alice).await.unwrap();
    let hall = server_def(alice.id, "hall", Timestamp::from_micros(2_000), false);
    store.create_server(&hall).await.unwrap();
    let mut channels = Vec::new();
    for name in ["one", "two"] {
        let channel = NewChannel {
            id: ChannelId::new(),
            server_id: hall.id,
            name: name.to_owned(),
            kind: ChannelType::Text,
            topic: None,
            category: None,
            created_at: Timestamp::from_micros(3_000),
        };
        store.create_channel(&channel).await.unwrap();
        channels.push(channel.id);
    }
    let mut ids = Vec::new();
    for (n, channel) in channels.iter().cycle().take(6).enumerate() {
        let message = NewMessage {
            id: MessageId::new(),
            channel_id: *channel,
            author_id: alice.id,
            content: format!("river stone {n}"),
            reply_to: None,
            mention_user_ids: Vec::new(),
            mention_everyone: false,
            thread_id: None,
            created_at: Timestamp::from_micros(4_000 + n as i64),
            node: None,
        };
        store.create_message(&message).await.unwrap();
        ids.push(message.id);
    }
    if index_first {
        // Indexed now (new messages wait in `search_pending` until a batch runs): the
        // edits and deletes below go through the triggers that tell FTS5 the old text.
        assert_eq!(store.flush_search_index(100).await.unwrap(), 6);
        assert_eq!(store.flush_search_index(100).await.unwrap(), 0);
    }
    let at = Timestamp::from_micros(9_000);
    store
        .edit_message(ids[0], "lake pebble", &[], false, at)
        .await
        .unwrap();
    store
        .edit_message(ids[0], "lake boulder", &[], false, at)
        .await
        .unwrap();
    assert!(store.delete_message(ids[2]).await.unwrap());
    assert!(
        store
            .edit_message(ids[2], "ghost", &[], false, at)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.delete_message(ids[1]).await.unwrap());
    assert!(store.delete_channel(channels[1], None).await.unwrap());
    // What waits: channel one's three rows (the soft-deleted one is forgotten by the
    // batch); channel two's went with the cascade.
    let left = store.flush_search_index(100).await.unwrap();
    assert_eq!(left, if index_first { 0 } else { 3 });
    sqlx::query("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
        .execute(&store.pool)
        .await
        .unwrap();
    let search = |text: &str| crate::MessageSearch {
        text: text.to_owned(),
        channels: channels.clone(),
        channel: None,
        before: None,
        limit: 10,
    };
    // Left: ids[4] (river) and ids[0] (lake boulder); channel two's went with it.
    let found = store.search_messages(&search("river")).await.unwrap();
    assert_eq!(
        found.hits.iter().map(|h| h.id).collect::<Vec<_>>(),
        [ids[4]]
    );
    assert_eq!(
        store
            .search_messages(&search("pebble"))
            .await
            .unwrap()
            .total,
        0
    );
    assert_eq!(
        store
            .search_messages(&search("boulder"))
            .await
            .unwrap()
            .total,
        1
    );
    assert_eq!(
        store.search_messages(&search("ghost")).await.unwrap().total,
        0
    );
    // The rows the index holds are exactly the live ones.
    let indexed: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH 'river OR lake'",
    )
    .fetch_one(&store.pool)
    .await
    .unwrap();
    assert_eq!(indexed, 2);
}
