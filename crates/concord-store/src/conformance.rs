//! The conformance suite: what every [`Store`] backend must do, written against
//! `&dyn Store` only, so that each backend runs the very same cases.
//!
//! Each case expects a **fresh, empty** store (the first-user-admin rule depends on it)
//! and panics on the first deviation. [`conformance_tests!`](crate::conformance_tests)
//! turns every case into one `#[tokio::test]`:
//!
//! ```ignore
//! concord_store::conformance_tests!(MyStore::connect_fresh().await.unwrap());
//! ```
//!
//! No case sleeps or looks at the clock: every timestamp is explicit.

use concord_protocol::{
    Bot, BotId, Channel, ChannelId, ChannelOverride, ChannelType, DirectMessage, DmChannelId,
    MemberRoleInfo, MentionCount, Message, MessageId, OverrideId, Role, RoleId, Server, ServerDto,
    ServerId, Status, Timestamp, UnreadCount, UserId, VoiceParticipant, VoiceState,
};
use uuid::Uuid;

use crate::{
    BotRecord, ChannelPatch, DmChannelRecord, NewChannel, NewMessage, NewUser, Presence,
    RefreshSession, ServerPatch, Store, StoreError, UserPatch, UserRecord,
};

/// Expands to one `#[tokio::test]` per conformance case. `$make` is evaluated inside
/// each (async) test and must yield a fresh, empty store (a value of a type that
/// implements [`Store`]); it may use `.await`.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@cases $make;
            ping,
            create_user_and_lookup,
            create_user_conflicts,
            first_human_becomes_admin,
            admin_only_when_asked_and_first,
            users_batch,
            update_user_patch,
            set_presence_replaces_all,
            refresh_session_lookup,
            refresh_rotation_is_compare_and_set,
            refresh_keeps_newest,
            refresh_drops_expired,
            delete_refresh_sessions_of_one_user,
            create_server_makes_owner_member,
            create_server_conflict_and_missing_owner,
            missing_server_lookups,
            servers_of_user_oldest_first,
            public_servers_order_and_limit,
            update_server_patch,
            add_member_conflict_and_missing,
            members_order_and_roles,
            remove_member_drops_roles,
            is_banned_without_ban,
            member_ids_by_usernames_exact,
            create_channel_positions,
            create_channel_conflict_and_missing_server,
            update_channel_patch,
            delete_channel_cascades,
            delete_server_cascades,
            roles_and_assignment,
            put_override_upserts,
            timeouts_and_directory_snapshot,
            unread_counts_window,
            mention_counts_window,
            create_and_read_message,
            create_message_conflict_and_missing,
            messages_order_and_cursor,
            thread_reply_count_is_live,
            edit_message_replaces,
            delete_message_is_soft_and_once,
            open_dm_is_idempotent,
            open_dm_concurrently,
            dm_channels_of_user_order,
            dm_messages_order_and_cursor,
            voice_state_upsert_and_delete,
            bot_lifecycle,
            create_bot_is_atomic,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test]
            async fn $case() {
                let store = $make;
                $crate::conformance::$case(&store).await;
            }
        )*
    };
}

// ---- fixtures ----

const BASE: i64 = 1_700_000_000_000_000;

/// `BASE + n` seconds.
fn at(n: i64) -> Timestamp {
    Timestamp::from_micros(BASE + n * 1_000_000)
}

fn new_user(name: &str) -> NewUser {
    NewUser {
        id: UserId::new(),
        username: name.to_owned(),
        email: None,
        password_hash: Some(format!("$argon2id$hash-of-{name}")),
        status: Status::Offline,
        created_at: at(0),
        admin_if_first: false,
        is_bot: false,
    }
}

async fn user(store: &dyn Store, name: &str) -> UserRecord {
    store
        .create_user(&new_user(name))
        .await
        .expect("create user")
}

fn server_def(owner: UserId, name: &str, created_at: Timestamp, is_public: bool) -> Server {
    Server {
        id: ServerId::new(),
        name: name.to_owned(),
        owner_id: owner,
        icon_url: None,
        is_public,
        require_invite: false,
        created_at,
        updated_at: created_at,
    }
}

async fn server(store: &dyn Store, owner: UserId, created_at: Timestamp) -> Server {
    let server = server_def(owner, "server", created_at, false);
    store.create_server(&server).await.expect("create server");
    server
}

fn channel_def(
    server: ServerId,
    name: &str,
    kind: ChannelType,
    created_at: Timestamp,
) -> NewChannel {
    NewChannel {
        id: ChannelId::new(),
        server_id: server,
        name: name.to_owned(),
        kind,
        topic: None,
        category: None,
        created_at,
    }
}

async fn channel(store: &dyn Store, server: ServerId, kind: ChannelType, n: i64) -> Channel {
    store
        .create_channel(&channel_def(server, "channel", kind, at(n)))
        .await
        .expect("create channel")
}

fn message_def(
    channel: ChannelId,
    author: UserId,
    content: &str,
    created_at: Timestamp,
) -> NewMessage {
    NewMessage {
        id: MessageId::new(),
        channel_id: channel,
        author_id: author,
        content: content.to_owned(),
        reply_to: None,
        mention_user_ids: Vec::new(),
        mention_everyone: false,
        thread_id: None,
        created_at,
    }
}

async fn message(store: &dyn Store, channel: ChannelId, author: UserId, n: i64) -> Message {
    store
        .create_message(&message_def(channel, author, "hello", at(n)))
        .await
        .expect("create message")
}

fn role_def(server: ServerId, name: &str, position: i64) -> Role {
    Role {
        id: RoleId::new(),
        server_id: server,
        name: name.to_owned(),
        permissions: 1 << position,
        color: Some(format!("#00000{position}")),
        position,
        created_at: at(0),
    }
}

fn session(
    user: UserId,
    hash: &str,
    created_at: Timestamp,
    expires_at: Timestamp,
) -> RefreshSession {
    RefreshSession {
        id: Uuid::now_v7(),
        user_id: user,
        token_hash: hash.to_owned(),
        created_at,
        expires_at,
    }
}

fn dm_def(a: UserId, b: UserId, created_at: Timestamp) -> DmChannelRecord {
    DmChannelRecord {
        id: DmChannelId::new(),
        user_a: a,
        user_b: b,
        created_at,
    }
}

fn dm_message(channel: DmChannelId, author: UserId, created_at: Timestamp) -> DirectMessage {
    DirectMessage {
        id: concord_protocol::DirectMessageId::new(),
        channel_id: channel,
        author_id: Some(author),
        content: "psst".to_owned(),
        edited_at: None,
        created_at,
    }
}

fn voice(user: UserId, channel: ChannelId, joined_at: Timestamp) -> VoiceState {
    VoiceState {
        channel_id: Some(channel),
        joined_at: Some(joined_at),
        ..VoiceState::left(user)
    }
}

fn bot_def(
    user: &NewUser,
    creator: Option<UserId>,
    hash: &str,
    created_at: Timestamp,
) -> BotRecord {
    BotRecord {
        bot: Bot {
            id: BotId::new(),
            user_id: user.id,
            name: format!("{} bot", user.username),
            description: Some("does things".to_owned()),
            created_by: creator,
            revoked_at: None,
            created_at,
        },
        token_hash: hash.to_owned(),
    }
}

fn bot_user(name: &str) -> NewUser {
    NewUser {
        password_hash: None,
        status: Status::Online,
        is_bot: true,
        ..new_user(name)
    }
}

/// `n` ids in ascending order (for tie-break assertions).
fn sorted_ids<T>(n: usize) -> Vec<concord_protocol::Id<T>> {
    let mut ids: Vec<concord_protocol::Id<T>> =
        (0..n).map(|_| concord_protocol::Id::new()).collect();
    ids.sort();
    ids
}

fn ids_of(messages: &[Message]) -> Vec<MessageId> {
    messages.iter().map(|m| m.id).collect()
}

fn server_ids(servers: &[ServerDto]) -> Vec<ServerId> {
    servers.iter().map(|s| s.server.id).collect()
}

#[track_caller]
fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    match result {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
}

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    match result {
        Err(StoreError::NotFound) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

// ---- users ----

/// `ping` answers.
pub async fn ping(store: &dyn Store) {
    store.ping().await.unwrap();
}

/// A created user reads back identically by id and by exact (case-sensitive) name.
pub async fn create_user_and_lookup(store: &dyn Store) {
    let mut def = new_user("alice");
    def.email = Some("alice@example.com".to_owned());
    def.status = Status::Online;
    def.created_at = at(5);
    let created = store.create_user(&def).await.unwrap();
    let expected = UserRecord {
        id: def.id,
        username: "alice".to_owned(),
        email: Some("alice@example.com".to_owned()),
        password_hash: def.password_hash.clone(),
        avatar_url: None,
        bio: None,
        pronouns: None,
        status: Status::Online,
        custom_status: None,
        activity: None,
        created_at: at(5),
        is_admin: false,
        is_bot: false,
        disabled: false,
    };
    assert_eq!(created, expected);
    assert_eq!(store.user(def.id).await.unwrap(), Some(expected.clone()));
    assert_eq!(
        store.user_by_username("alice").await.unwrap(),
        Some(expected)
    );
    assert_eq!(store.user_by_username("Alice").await.unwrap(), None);
    assert_eq!(store.user_by_username("alic").await.unwrap(), None);
    assert_eq!(store.user(UserId::new()).await.unwrap(), None);
}

/// Taken usernames and emails conflict; names are case-sensitive; absent emails never
/// clash; a failed insert leaves nothing behind.
pub async fn create_user_conflicts(store: &dyn Store) {
    let mut alice = new_user("alice");
    alice.email = Some("a@example.com".to_owned());
    store.create_user(&alice).await.unwrap();

    assert_conflict(store.create_user(&new_user("alice")).await);
    let mut same_email = new_user("bob");
    same_email.email = Some("a@example.com".to_owned());
    assert_conflict(store.create_user(&same_email).await);
    assert_eq!(store.user(same_email.id).await.unwrap(), None);
    let mut same_id = new_user("carol");
    same_id.id = alice.id;
    assert_conflict(store.create_user(&same_id).await);

    // "bob" was not inserted by the failed attempt; no-email users do not clash.
    store.create_user(&new_user("bob")).await.unwrap();
    store.create_user(&new_user("carol")).await.unwrap();
    store.create_user(&new_user("Alice")).await.unwrap();
}

/// The first human asking for it becomes admin; bots never count nor become admin;
/// later humans do not.
pub async fn first_human_becomes_admin(store: &dyn Store) {
    let mut robot = bot_user("robot");
    robot.admin_if_first = true;
    assert!(!store.create_user(&robot).await.unwrap().is_admin);

    let mut first = new_user("alice");
    first.admin_if_first = true;
    assert!(store.create_user(&first).await.unwrap().is_admin);
    assert!(store.user(first.id).await.unwrap().unwrap().is_admin);

    let mut second = new_user("bob");
    second.admin_if_first = true;
    assert!(!store.create_user(&second).await.unwrap().is_admin);
}

/// Without `admin_if_first` nobody becomes admin, and once a human exists nobody else.
pub async fn admin_only_when_asked_and_first(store: &dyn Store) {
    let first = new_user("alice");
    assert!(!store.create_user(&first).await.unwrap().is_admin);
    let mut second = new_user("bob");
    second.admin_if_first = true;
    assert!(!store.create_user(&second).await.unwrap().is_admin);
}

/// `users` skips missing ids and answers `[]` for `[]`.
pub async fn users_batch(store: &dyn Store) {
    let a = user(store, "alice").await;
    let _b = user(store, "bob").await;
    let c = user(store, "carol").await;
    let mut found = store
        .users(&[c.id, UserId::new(), a.id, a.id])
        .await
        .unwrap();
    found.sort_by_key(|u| u.id);
    let mut expected = vec![a, c];
    expected.sort_by_key(|u| u.id);
    assert_eq!(found, expected);
    assert!(store.users(&[]).await.unwrap().is_empty());
}

/// `update_user` changes only the given fields; `None` for a missing user.
pub async fn update_user_patch(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let patch = UserPatch {
        avatar_url: Some("https://example.com/a.png".to_owned()),
        status: Some(Status::Dnd),
        ..UserPatch::default()
    };
    let updated = store.update_user(alice.id, &patch).await.unwrap().unwrap();
    assert_eq!(
        updated,
        UserRecord {
            avatar_url: patch.avatar_url.clone(),
            status: Status::Dnd,
            ..alice.clone()
        }
    );
    let patch = UserPatch {
        bio: Some("hi".to_owned()),
        pronouns: Some("she/her".to_owned()),
        custom_status: Some("around".to_owned()),
        activity: Some("coding".to_owned()),
        ..UserPatch::default()
    };
    let updated = store.update_user(alice.id, &patch).await.unwrap().unwrap();
    assert_eq!(
        updated.avatar_url.as_deref(),
        Some("https://example.com/a.png")
    );
    assert_eq!(updated.status, Status::Dnd);
    assert_eq!(updated.bio.as_deref(), Some("hi"));
    assert_eq!(updated.pronouns.as_deref(), Some("she/her"));
    assert_eq!(updated.custom_status.as_deref(), Some("around"));
    assert_eq!(updated.activity.as_deref(), Some("coding"));
    assert_eq!(store.user(alice.id).await.unwrap(), Some(updated));
    assert_eq!(
        store
            .update_user(UserId::new(), &UserPatch::default())
            .await
            .unwrap(),
        None
    );
}

/// `set_presence` writes all three fields, clearing with `None`.
pub async fn set_presence_replaces_all(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let busy = Presence {
        status: Status::Away,
        custom_status: Some("lunch".to_owned()),
        activity: Some("eating".to_owned()),
    };
    store.set_presence(alice.id, &busy).await.unwrap();
    let read = store.user(alice.id).await.unwrap().unwrap();
    assert_eq!(
        (read.status, read.custom_status, read.activity),
        (Status::Away, busy.custom_status, busy.activity)
    );
    let back = Presence {
        status: Status::Online,
        custom_status: None,
        activity: None,
    };
    store.set_presence(alice.id, &back).await.unwrap();
    let read = store.user(alice.id).await.unwrap().unwrap();
    assert_eq!(
        (read.status, read.custom_status, read.activity),
        (Status::Online, None, None)
    );
    store.set_presence(UserId::new(), &back).await.unwrap();
}

// ---- refresh sessions ----

/// A session reads back by its hash; unknown hashes give `None`.
pub async fn refresh_session_lookup(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = session(alice.id, "h1", at(0), at(100));
    store.create_refresh_session(&s, at(0), 10).await.unwrap();
    assert_eq!(store.refresh_session_by_hash("h1").await.unwrap(), Some(s));
    assert_eq!(store.refresh_session_by_hash("h2").await.unwrap(), None);
}

/// Rotation swaps the hash only while the old one is current.
pub async fn refresh_rotation_is_compare_and_set(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = session(alice.id, "h1", at(0), at(100));
    store.create_refresh_session(&s, at(0), 10).await.unwrap();

    assert!(
        store
            .rotate_refresh_session(s.id, "h1", "h2")
            .await
            .unwrap()
    );
    // The second rotation with the same old token loses.
    assert!(
        !store
            .rotate_refresh_session(s.id, "h1", "h3")
            .await
            .unwrap()
    );
    assert_eq!(store.refresh_session_by_hash("h1").await.unwrap(), None);
    assert_eq!(store.refresh_session_by_hash("h3").await.unwrap(), None);
    assert_eq!(
        store.refresh_session_by_hash("h2").await.unwrap(),
        Some(RefreshSession {
            token_hash: "h2".to_owned(),
            ..s.clone()
        })
    );
    assert!(
        !store
            .rotate_refresh_session(Uuid::now_v7(), "h2", "h4")
            .await
            .unwrap()
    );
    assert!(
        store
            .rotate_refresh_session(s.id, "h2", "h4")
            .await
            .unwrap()
    );
}

/// Only the `keep` newest sessions of the user survive; other users are untouched.
pub async fn refresh_keeps_newest(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    store
        .create_refresh_session(&session(bob.id, "bob", at(0), at(1000)), at(0), 10)
        .await
        .unwrap();
    for i in 0..12 {
        let s = session(alice.id, &format!("h{i}"), at(i), at(1000));
        store.create_refresh_session(&s, at(i), 10).await.unwrap();
    }
    for i in 0..12 {
        let found = store
            .refresh_session_by_hash(&format!("h{i}"))
            .await
            .unwrap();
        assert_eq!(found.is_some(), i >= 2, "session h{i}");
    }
    assert!(
        store
            .refresh_session_by_hash("bob")
            .await
            .unwrap()
            .is_some()
    );
}

/// Creating a session drops the user's sessions expired at `now` (and only theirs).
pub async fn refresh_drops_expired(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    for s in [
        session(alice.id, "old", at(0), at(10)),
        session(alice.id, "live", at(1), at(100)),
        session(bob.id, "bob-old", at(0), at(5)),
    ] {
        store.create_refresh_session(&s, at(1), 10).await.unwrap();
    }
    store
        .create_refresh_session(&session(alice.id, "new", at(10), at(200)), at(10), 10)
        .await
        .unwrap();
    assert!(
        store
            .refresh_session_by_hash("old")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .refresh_session_by_hash("live")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .refresh_session_by_hash("new")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .refresh_session_by_hash("bob-old")
            .await
            .unwrap()
            .is_some()
    );
}

/// Logging out everywhere removes one user's sessions only.
pub async fn delete_refresh_sessions_of_one_user(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    for s in [
        session(alice.id, "a1", at(0), at(100)),
        session(alice.id, "a2", at(1), at(100)),
        session(bob.id, "b1", at(0), at(100)),
    ] {
        store.create_refresh_session(&s, at(1), 10).await.unwrap();
    }
    store.delete_refresh_sessions(alice.id).await.unwrap();
    assert!(store.refresh_session_by_hash("a1").await.unwrap().is_none());
    assert!(store.refresh_session_by_hash("a2").await.unwrap().is_none());
    assert!(store.refresh_session_by_hash("b1").await.unwrap().is_some());
}

// ---- servers and members ----

/// The owner is the sole member, joined at creation; the DTO counts members live.
pub async fn create_server_makes_owner_member(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let mut def = server_def(alice.id, "home", at(1), true);
    def.icon_url = Some("https://example.com/i.png".to_owned());
    def.require_invite = true;
    store.create_server(&def).await.unwrap();
    let dto = ServerDto {
        server: def.clone(),
        member_count: 1,
    };
    assert_eq!(store.server(def.id).await.unwrap(), Some(dto.clone()));
    let members = store.members(def.id).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].user, alice);
    assert_eq!(members[0].joined_at, at(1));
    assert!(members[0].roles.is_empty());
    assert_eq!(store.servers_of_user(alice.id).await.unwrap(), vec![dto]);
    assert!(store.servers_of_user(bob.id).await.unwrap().is_empty());
}

/// A second server with the same id conflicts; an unknown owner is `NotFound`.
pub async fn create_server_conflict_and_missing_owner(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let def = server(store, alice.id, at(1)).await;
    assert_conflict(store.create_server(&def).await);
    let orphan = server_def(UserId::new(), "orphan", at(2), false);
    assert_not_found(store.create_server(&orphan).await);
    assert_eq!(store.server(orphan.id).await.unwrap(), None);
}

/// Lookups of an unknown server give `None` / `false` / `[]`.
pub async fn missing_server_lookups(store: &dyn Store) {
    let nobody = ServerId::new();
    assert_eq!(store.server(nobody).await.unwrap(), None);
    assert_eq!(
        store
            .update_server(nobody, &ServerPatch::default(), at(1))
            .await
            .unwrap(),
        None
    );
    assert!(!store.delete_server(nobody).await.unwrap());
    assert!(store.members(nobody).await.unwrap().is_empty());
    assert!(store.channels(nobody).await.unwrap().is_empty());
}

/// A user's servers, oldest server first (not by join time).
pub async fn servers_of_user_oldest_first(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s2 = server(store, alice.id, at(2)).await;
    let s1 = server(store, alice.id, at(1)).await;
    let s0 = server(store, bob.id, at(0)).await;
    store.add_member(s0.id, alice.id, at(5)).await.unwrap();
    let mine = store.servers_of_user(alice.id).await.unwrap();
    assert_eq!(server_ids(&mine), vec![s0.id, s1.id, s2.id]);
    assert_eq!(mine[0].member_count, 2);
    assert_eq!(mine[1].member_count, 1);
}

/// Public servers only, by member count DESC then newest first, limited.
pub async fn public_servers_order_and_limit(store: &dyn Store) {
    let users = [
        user(store, "u0").await,
        user(store, "u1").await,
        user(store, "u2").await,
    ];
    let owner = users[0].id;
    let p1 = server_def(owner, "p1", at(1), true);
    let p2 = server_def(owner, "p2", at(2), true);
    let p3 = server_def(owner, "p3", at(0), true);
    let mut p4 = server_def(owner, "p4", at(4), true);
    p4.require_invite = true;
    let private = server_def(owner, "private", at(3), false);
    for s in [&p1, &p2, &p3, &p4, &private] {
        store.create_server(s).await.unwrap();
    }
    for u in &users[1..] {
        store.add_member(p3.id, u.id, at(5)).await.unwrap();
        store.add_member(private.id, u.id, at(5)).await.unwrap();
    }
    store.add_member(p4.id, users[1].id, at(5)).await.unwrap();

    let all = store.public_servers(50).await.unwrap();
    assert_eq!(server_ids(&all), vec![p3.id, p4.id, p2.id, p1.id]);
    assert_eq!(
        all.iter().map(|s| s.member_count).collect::<Vec<_>>(),
        vec![3, 2, 1, 1]
    );
    assert_eq!(
        server_ids(&store.public_servers(2).await.unwrap()),
        vec![p3.id, p4.id]
    );
    assert!(store.public_servers(0).await.unwrap().is_empty());
}

/// `update_server` patches the given fields, sets `updated_at`, counts members live.
pub async fn update_server_patch(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let def = server(store, alice.id, at(1)).await;
    store.add_member(def.id, bob.id, at(2)).await.unwrap();

    let patch = ServerPatch {
        name: Some("renamed".to_owned()),
        ..ServerPatch::default()
    };
    let updated = store
        .update_server(def.id, &patch, at(9))
        .await
        .unwrap()
        .unwrap();
    let expected = ServerDto {
        server: Server {
            name: "renamed".to_owned(),
            updated_at: at(9),
            ..def.clone()
        },
        member_count: 2,
    };
    assert_eq!(updated, expected);
    assert_eq!(store.server(def.id).await.unwrap(), Some(expected));

    let patch = ServerPatch {
        name: None,
        icon_url: Some("https://example.com/x.png".to_owned()),
        is_public: Some(true),
        require_invite: Some(true),
    };
    let updated = store
        .update_server(def.id, &patch, at(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.server.name, "renamed");
    assert_eq!(updated.server.icon_url, patch.icon_url);
    assert!(updated.server.is_public);
    assert!(updated.server.require_invite);
    assert_eq!(updated.server.created_at, at(1));
    assert_eq!(updated.server.updated_at, at(10));
}

/// Adding a member twice conflicts; unknown server or user is `NotFound`.
pub async fn add_member_conflict_and_missing(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s = server(store, alice.id, at(1)).await;
    store.add_member(s.id, bob.id, at(2)).await.unwrap();
    assert_conflict(store.add_member(s.id, bob.id, at(3)).await);
    assert_conflict(store.add_member(s.id, alice.id, at(3)).await);
    assert_not_found(store.add_member(s.id, UserId::new(), at(3)).await);
    assert_not_found(store.add_member(ServerId::new(), bob.id, at(3)).await);
    assert_eq!(store.server(s.id).await.unwrap().unwrap().member_count, 2);
}

/// Members by `joined_at` ASC, each with their roles by position DESC.
pub async fn members_order_and_roles(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let carol = user(store, "carol").await;
    let s = server(store, alice.id, at(1)).await;
    store.add_member(s.id, bob.id, at(3)).await.unwrap();
    store.add_member(s.id, carol.id, at(2)).await.unwrap();
    let low = role_def(s.id, "low", 1);
    let high = role_def(s.id, "high", 5);
    store.create_role(&low).await.unwrap();
    store.create_role(&high).await.unwrap();
    assert!(store.assign_role(s.id, bob.id, low.id).await.unwrap());
    assert!(store.assign_role(s.id, bob.id, high.id).await.unwrap());
    assert!(store.assign_role(s.id, carol.id, low.id).await.unwrap());

    let info = |r: &Role| MemberRoleInfo {
        id: r.id,
        name: r.name.clone(),
        color: r.color.clone(),
        position: r.position,
    };
    let members = store.members(s.id).await.unwrap();
    let summary: Vec<_> = members
        .iter()
        .map(|m| (m.user.id, m.joined_at, m.roles.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (alice.id, at(1), vec![]),
            (carol.id, at(2), vec![info(&low)]),
            (bob.id, at(3), vec![info(&high), info(&low)]),
        ]
    );
    assert_eq!(members[2].user, bob);
}

/// Removing a member drops their role assignments; `false` when not a member.
pub async fn remove_member_drops_roles(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s = server(store, alice.id, at(1)).await;
    let role = role_def(s.id, "mod", 2);
    store.create_role(&role).await.unwrap();
    store.add_member(s.id, bob.id, at(2)).await.unwrap();
    store.assign_role(s.id, bob.id, role.id).await.unwrap();

    assert!(store.remove_member(s.id, bob.id).await.unwrap());
    assert!(!store.remove_member(s.id, bob.id).await.unwrap());
    assert!(
        !store
            .remove_member(ServerId::new(), alice.id)
            .await
            .unwrap()
    );
    let members = store.members(s.id).await.unwrap();
    assert_eq!(
        members.iter().map(|m| m.user.id).collect::<Vec<_>>(),
        vec![alice.id]
    );
    let snapshot = store.directory_snapshot(at(0)).await.unwrap();
    assert!(snapshot.member_roles.is_empty());
    assert!(!snapshot.members.contains(&(s.id, bob.id)));

    // Rejoining does not bring the old roles back.
    store.add_member(s.id, bob.id, at(3)).await.unwrap();
    let members = store.members(s.id).await.unwrap();
    assert!(members.iter().all(|m| m.roles.is_empty()));
    assert_eq!(store.server(s.id).await.unwrap().unwrap().member_count, 2);
}

/// Nobody is banned while no ban exists.
pub async fn is_banned_without_ban(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    assert!(!store.is_banned(s.id, alice.id).await.unwrap());
    assert!(
        !store
            .is_banned(ServerId::new(), UserId::new())
            .await
            .unwrap()
    );
}

/// Exact, case-sensitive names of current members only; each id once.
pub async fn member_ids_by_usernames_exact(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let _carol = user(store, "carol").await;
    let s = server(store, alice.id, at(1)).await;
    store.add_member(s.id, bob.id, at(2)).await.unwrap();
    let names: Vec<String> = ["bob", "carol", "Alice", "alice", "nobody", "bob"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut found = store.member_ids_by_usernames(s.id, &names).await.unwrap();
    found.sort();
    let mut expected = vec![alice.id, bob.id];
    expected.sort();
    assert_eq!(found, expected);
    assert!(
        store
            .member_ids_by_usernames(s.id, &[])
            .await
            .unwrap()
            .is_empty()
    );
}

// ---- channels ----

/// Positions are max + 1 per server (0 first); listing is by position then creation.
pub async fn create_channel_positions(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s1 = server(store, alice.id, at(1)).await;
    let s2 = server(store, alice.id, at(1)).await;

    let mut def = channel_def(s1.id, "general", ChannelType::Text, at(1));
    def.topic = Some("chat".to_owned());
    def.category = Some("main".to_owned());
    let c0 = store.create_channel(&def).await.unwrap();
    assert_eq!(
        c0,
        Channel {
            id: def.id,
            server_id: s1.id,
            name: "general".to_owned(),
            kind: ChannelType::Text,
            position: 0,
            category: Some("main".to_owned()),
            topic: Some("chat".to_owned()),
            created_at: at(1),
        }
    );
    let c1 = channel(store, s1.id, ChannelType::Voice, 2).await;
    let c2 = channel(store, s1.id, ChannelType::Text, 3).await;
    assert_eq!((c1.position, c2.position), (1, 2));
    assert_eq!(c1.kind, ChannelType::Voice);
    assert_eq!(
        channel(store, s2.id, ChannelType::Text, 4).await.position,
        0
    );
    assert_eq!(store.channel(c0.id).await.unwrap(), Some(c0.clone()));
    assert_eq!(store.channel(ChannelId::new()).await.unwrap(), None);

    let listed = store.channels(s1.id).await.unwrap();
    assert_eq!(listed, vec![c0.clone(), c1.clone(), c2.clone()]);

    // Duplicate positions sort by creation; the next channel goes after the max.
    let patch = ChannelPatch {
        position: Some(0),
        ..ChannelPatch::default()
    };
    store.update_channel(c2.id, &patch).await.unwrap().unwrap();
    let order: Vec<_> = store
        .channels(s1.id)
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(order, vec![c0.id, c2.id, c1.id]);
    assert_eq!(
        channel(store, s1.id, ChannelType::Text, 5).await.position,
        2
    );
}

/// A second channel with the same id conflicts; an unknown server is `NotFound`.
pub async fn create_channel_conflict_and_missing_server(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    let def = channel_def(s.id, "general", ChannelType::Text, at(1));
    store.create_channel(&def).await.unwrap();
    assert_conflict(store.create_channel(&def).await);
    let orphan = channel_def(ServerId::new(), "orphan", ChannelType::Text, at(1));
    assert_not_found(store.create_channel(&orphan).await);
}

/// `update_channel` patches the given fields; `None` when missing.
pub async fn update_channel_patch(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    let c = channel(store, s.id, ChannelType::Voice, 1).await;
    let patch = ChannelPatch {
        name: Some("lounge".to_owned()),
        topic: Some("talk".to_owned()),
        category: Some("voice".to_owned()),
        position: Some(7),
    };
    let updated = store.update_channel(c.id, &patch).await.unwrap().unwrap();
    let expected = Channel {
        name: "lounge".to_owned(),
        topic: Some("talk".to_owned()),
        category: Some("voice".to_owned()),
        position: 7,
        ..c.clone()
    };
    assert_eq!(updated, expected);
    let updated = store
        .update_channel(c.id, &ChannelPatch::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated, expected);
    assert_eq!(store.channel(c.id).await.unwrap(), Some(expected));
    assert_eq!(
        store
            .update_channel(ChannelId::new(), &ChannelPatch::default())
            .await
            .unwrap(),
        None
    );
}

/// Deleting a channel takes its messages, overrides and voice states.
pub async fn delete_channel_cascades(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s = server(store, alice.id, at(1)).await;
    let text = channel(store, s.id, ChannelType::Text, 1).await;
    let other = channel(store, s.id, ChannelType::Text, 2).await;
    let lounge = channel(store, s.id, ChannelType::Voice, 3).await;
    let root = message(store, text.id, alice.id, 1).await;
    let mut reply = message_def(text.id, bob.id, "re", at(2));
    reply.thread_id = Some(root.id);
    store.create_message(&reply).await.unwrap();
    let kept = message(store, other.id, alice.id, 3).await;
    store
        .put_override(&ChannelOverride {
            id: OverrideId::new(),
            channel_id: text.id,
            role_id: None,
            user_id: Some(bob.id),
            allow: 1,
            deny: 2,
        })
        .await
        .unwrap();
    store
        .put_voice_state(&voice(bob.id, lounge.id, at(4)))
        .await
        .unwrap();

    assert!(store.delete_channel(text.id).await.unwrap());
    assert!(!store.delete_channel(text.id).await.unwrap());
    assert_eq!(store.channel(text.id).await.unwrap(), None);
    assert_eq!(store.message(root.id).await.unwrap(), None);
    assert_eq!(store.message(reply.id).await.unwrap(), None);
    assert!(store.messages(text.id, None, 50).await.unwrap().is_empty());
    assert!(
        store
            .overrides_of_servers(&[s.id])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.message(kept.id).await.unwrap(), Some(kept));

    assert!(store.delete_channel(lounge.id).await.unwrap());
    assert_eq!(store.voice_state(bob.id).await.unwrap(), None);
    assert!(
        store
            .voice_participants(lounge.id)
            .await
            .unwrap()
            .is_empty()
    );
    let ids: Vec<_> = store
        .channels(s.id)
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, vec![other.id]);
}

/// Deleting a server takes its channels, messages, members, roles, overrides, voice
/// states and timeouts; users stay.
pub async fn delete_server_cascades(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s = server(store, alice.id, at(1)).await;
    let keep = server(store, bob.id, at(2)).await;
    store.add_member(s.id, bob.id, at(2)).await.unwrap();
    let role = role_def(s.id, "mod", 1);
    store.create_role(&role).await.unwrap();
    store.assign_role(s.id, bob.id, role.id).await.unwrap();
    let text = channel(store, s.id, ChannelType::Text, 1).await;
    let lounge = channel(store, s.id, ChannelType::Voice, 2).await;
    let msg = message(store, text.id, bob.id, 3).await;
    store
        .put_override(&ChannelOverride {
            id: OverrideId::new(),
            channel_id: text.id,
            role_id: Some(role.id),
            user_id: None,
            allow: 1,
            deny: 0,
        })
        .await
        .unwrap();
    store
        .put_voice_state(&voice(bob.id, lounge.id, at(4)))
        .await
        .unwrap();
    store
        .set_timeout(s.id, bob.id, at(100), Some(alice.id), at(4))
        .await
        .unwrap();

    assert!(store.delete_server(s.id).await.unwrap());
    assert!(!store.delete_server(s.id).await.unwrap());
    assert_eq!(store.server(s.id).await.unwrap(), None);
    assert!(store.servers_of_user(alice.id).await.unwrap().is_empty());
    assert_eq!(
        server_ids(&store.servers_of_user(bob.id).await.unwrap()),
        vec![keep.id]
    );
    assert!(store.members(s.id).await.unwrap().is_empty());
    assert!(store.channels(s.id).await.unwrap().is_empty());
    assert_eq!(store.channel(text.id).await.unwrap(), None);
    assert_eq!(store.message(msg.id).await.unwrap(), None);
    assert!(store.roles_of_servers(&[s.id]).await.unwrap().is_empty());
    assert!(
        store
            .overrides_of_servers(&[s.id])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.voice_state(bob.id).await.unwrap(), None);

    let snapshot = store.directory_snapshot(at(0)).await.unwrap();
    assert_eq!(snapshot.servers, vec![(keep.id, bob.id)]);
    assert_eq!(snapshot.members, vec![(keep.id, bob.id)]);
    assert!(snapshot.roles.is_empty());
    assert!(snapshot.member_roles.is_empty());
    assert!(snapshot.channels.is_empty());
    assert!(snapshot.overrides.is_empty());
    assert!(snapshot.timeouts.is_empty());
    assert!(store.user(alice.id).await.unwrap().is_some());
    assert!(store.user(bob.id).await.unwrap().is_some());
}

// ---- roles, overrides, timeouts ----

/// Roles insert once, assign idempotently and list by server, position DESC.
pub async fn roles_and_assignment(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s1 = server(store, alice.id, at(1)).await;
    let s2 = server(store, alice.id, at(2)).await;
    let r1 = role_def(s1.id, "r1", 1);
    let r2 = role_def(s1.id, "r2", 3);
    let r3 = role_def(s2.id, "r3", 2);
    for r in [&r1, &r2, &r3] {
        store.create_role(r).await.unwrap();
    }
    assert_conflict(store.create_role(&r1).await);
    assert_not_found(store.create_role(&role_def(ServerId::new(), "x", 1)).await);

    store.add_member(s1.id, bob.id, at(3)).await.unwrap();
    assert!(store.assign_role(s1.id, bob.id, r1.id).await.unwrap());
    assert!(!store.assign_role(s1.id, bob.id, r1.id).await.unwrap());
    assert!(store.assign_role(s1.id, bob.id, r2.id).await.unwrap());

    assert_eq!(
        store.roles_of_servers(&[s1.id]).await.unwrap(),
        vec![r2.clone(), r1.clone()]
    );
    let both = store.roles_of_servers(&[s2.id, s1.id]).await.unwrap();
    assert_eq!(both.len(), 3);
    let of_s1: Vec<_> = both
        .iter()
        .filter(|r| r.server_id == s1.id)
        .cloned()
        .collect();
    assert_eq!(of_s1, vec![r2, r1]);
    assert!(both.contains(&r3));
    assert!(store.roles_of_servers(&[]).await.unwrap().is_empty());
    assert!(
        store
            .roles_of_servers(&[ServerId::new()])
            .await
            .unwrap()
            .is_empty()
    );
}

/// Overrides upsert by (channel, role) and (channel, user), keeping the first id.
pub async fn put_override_upserts(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s = server(store, alice.id, at(1)).await;
    let other = server(store, alice.id, at(2)).await;
    let role = role_def(s.id, "mod", 1);
    store.create_role(&role).await.unwrap();
    let c = channel(store, s.id, ChannelType::Text, 1).await;
    let c_other = channel(store, other.id, ChannelType::Text, 1).await;

    let by_role = ChannelOverride {
        id: OverrideId::new(),
        channel_id: c.id,
        role_id: Some(role.id),
        user_id: None,
        allow: 1,
        deny: 2,
    };
    assert_eq!(store.put_override(&by_role).await.unwrap(), by_role);
    let again = ChannelOverride {
        id: OverrideId::new(),
        allow: 4,
        deny: 8,
        ..by_role.clone()
    };
    let by_role = ChannelOverride {
        allow: 4,
        deny: 8,
        ..by_role
    };
    assert_eq!(store.put_override(&again).await.unwrap(), by_role);

    let by_user = ChannelOverride {
        id: OverrideId::new(),
        channel_id: c.id,
        role_id: None,
        user_id: Some(bob.id),
        allow: 16,
        deny: 0,
    };
    assert_eq!(store.put_override(&by_user).await.unwrap(), by_user);
    let by_user = ChannelOverride {
        deny: 32,
        ..by_user
    };
    let again = ChannelOverride {
        id: OverrideId::new(),
        ..by_user.clone()
    };
    assert_eq!(store.put_override(&again).await.unwrap(), by_user);

    let elsewhere = ChannelOverride {
        id: OverrideId::new(),
        channel_id: c_other.id,
        role_id: None,
        user_id: Some(bob.id),
        allow: 1,
        deny: 0,
    };
    store.put_override(&elsewhere).await.unwrap();

    let mut found = store.overrides_of_servers(&[s.id]).await.unwrap();
    found.sort_by_key(|o| o.id);
    let mut expected = vec![by_role, by_user];
    expected.sort_by_key(|o| o.id);
    assert_eq!(found, expected);
    assert_eq!(
        store
            .overrides_of_servers(&[s.id, other.id])
            .await
            .unwrap()
            .len(),
        3
    );
    assert!(store.overrides_of_servers(&[]).await.unwrap().is_empty());
}

/// The snapshot holds every server, member, role, assignment, channel and override,
/// and the timeouts still live at `now` (one per member, replaced on re-set).
pub async fn timeouts_and_directory_snapshot(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s = server(store, alice.id, at(1)).await;
    store.add_member(s.id, bob.id, at(2)).await.unwrap();
    let role = role_def(s.id, "mod", 3);
    store.create_role(&role).await.unwrap();
    store.assign_role(s.id, bob.id, role.id).await.unwrap();
    let text = channel(store, s.id, ChannelType::Text, 1).await;
    let lounge = channel(store, s.id, ChannelType::Voice, 2).await;
    let ov = ChannelOverride {
        id: OverrideId::new(),
        channel_id: lounge.id,
        role_id: Some(role.id),
        user_id: None,
        allow: 32,
        deny: 0,
    };
    store.put_override(&ov).await.unwrap();
    store
        .set_timeout(s.id, bob.id, at(100), Some(alice.id), at(0))
        .await
        .unwrap();

    let snapshot = store.directory_snapshot(at(50)).await.unwrap();
    assert_eq!(snapshot.servers, vec![(s.id, alice.id)]);
    let mut members = snapshot.members.clone();
    members.sort();
    let mut expected = vec![(s.id, alice.id), (s.id, bob.id)];
    expected.sort();
    assert_eq!(members, expected);
    assert_eq!(snapshot.roles, vec![(role.id, s.id, role.permissions, 3)]);
    assert_eq!(snapshot.member_roles, vec![(s.id, bob.id, role.id)]);
    let mut channels = snapshot.channels.clone();
    channels.sort_by_key(|c| c.0);
    let mut expected = vec![
        (text.id, s.id, ChannelType::Text),
        (lounge.id, s.id, ChannelType::Voice),
    ];
    expected.sort_by_key(|c| c.0);
    assert_eq!(channels, expected);
    assert_eq!(snapshot.overrides, vec![ov]);
    assert_eq!(snapshot.timeouts, vec![(s.id, bob.id, at(100))]);

    // Expired at `now` (expires_at <= now) is not live.
    assert!(
        store
            .directory_snapshot(at(100))
            .await
            .unwrap()
            .timeouts
            .is_empty()
    );

    // Re-setting replaces.
    store
        .set_timeout(s.id, bob.id, at(200), None, at(150))
        .await
        .unwrap();
    let snapshot = store.directory_snapshot(at(150)).await.unwrap();
    assert_eq!(snapshot.timeouts, vec![(s.id, bob.id, at(200))]);
}

// ---- read state ----

fn sorted_unread(mut counts: Vec<UnreadCount>) -> Vec<(Uuid, i64)> {
    counts.sort_by_key(|c| c.channel_id);
    counts
        .into_iter()
        .map(|c| (c.channel_id, c.unread_count))
        .collect()
}

fn sorted_mentions(mut counts: Vec<MentionCount>) -> Vec<(ChannelId, i64)> {
    counts.sort_by_key(|c| c.channel_id);
    counts
        .into_iter()
        .map(|c| (c.channel_id, c.count))
        .collect()
}

/// Unread: acked channels (server and DM) only; after `last_read_at`; not deleted; not
/// the reader's own; thread replies included; zeros omitted.
pub async fn unread_counts_window(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s = server(store, alice.id, at(1)).await;
    store.add_member(s.id, bob.id, at(1)).await.unwrap();
    let c1 = channel(store, s.id, ChannelType::Text, 1).await;
    let c2 = channel(store, s.id, ChannelType::Text, 2).await;
    let c3 = channel(store, s.id, ChannelType::Text, 3).await;
    let (dm, _) = store
        .open_dm_channel(&dm_def(alice.id, bob.id, at(1)))
        .await
        .unwrap();

    store.ack_channel(alice.id, c1.id, at(10)).await.unwrap();
    store.ack_channel(alice.id, c2.id, at(10)).await.unwrap();
    store.ack_dm(alice.id, dm.id, at(10)).await.unwrap();

    message(store, c1.id, bob.id, 5).await; // before the window
    message(store, c1.id, bob.id, 10).await; // at last_read_at: read
    let root = message(store, c1.id, bob.id, 11).await;
    let gone = message(store, c1.id, bob.id, 12).await;
    store.delete_message(gone.id).await.unwrap();
    message(store, c1.id, alice.id, 13).await; // own
    let mut reply = message_def(c1.id, bob.id, "re", at(14));
    reply.thread_id = Some(root.id);
    store.create_message(&reply).await.unwrap();
    message(store, c2.id, alice.id, 20).await; // only own: zero
    message(store, c3.id, bob.id, 20).await; // never acked

    for (author, n) in [(bob.id, 9), (bob.id, 11), (alice.id, 12)] {
        store
            .create_dm_message(&dm_message(dm.id, author, at(n)))
            .await
            .unwrap();
    }

    let mut expected = vec![(c1.id.get(), 2), (dm.id.get(), 1)];
    expected.sort();
    assert_eq!(
        sorted_unread(store.unread_counts(alice.id).await.unwrap()),
        expected
    );
    assert!(store.unread_counts(bob.id).await.unwrap().is_empty());

    // Re-acking moves the window.
    store.ack_channel(alice.id, c1.id, at(14)).await.unwrap();
    store.ack_dm(alice.id, dm.id, at(11)).await.unwrap();
    assert!(store.unread_counts(alice.id).await.unwrap().is_empty());
}

/// Mentions: acked server channels only; same window; the reader named or
/// `@everyone`; not deleted; not the reader's own; zeros omitted; edits re-count.
pub async fn mention_counts_window(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let carol = user(store, "carol").await;
    let s = server(store, alice.id, at(1)).await;
    for u in [&bob, &carol] {
        store.add_member(s.id, u.id, at(1)).await.unwrap();
    }
    let c1 = channel(store, s.id, ChannelType::Text, 1).await;
    let c2 = channel(store, s.id, ChannelType::Text, 2).await;
    let c3 = channel(store, s.id, ChannelType::Text, 3).await;
    let (dm, _) = store
        .open_dm_channel(&dm_def(alice.id, bob.id, at(1)))
        .await
        .unwrap();
    store.ack_channel(alice.id, c1.id, at(10)).await.unwrap();
    store.ack_channel(alice.id, c2.id, at(10)).await.unwrap();
    store.ack_dm(alice.id, dm.id, at(10)).await.unwrap();

    let mention =
        |channel: ChannelId, author: UserId, n: i64, users: Vec<UserId>, everyone: bool| {
            let mut def = message_def(channel, author, "@someone", at(n));
            def.mention_user_ids = users;
            def.mention_everyone = everyone;
            def
        };
    let defs = [
        mention(c1.id, bob.id, 5, vec![alice.id], false), // before the window
        mention(c1.id, bob.id, 11, vec![alice.id, carol.id], false),
        mention(c1.id, bob.id, 12, vec![], true),
        mention(c1.id, bob.id, 13, vec![alice.id], false), // deleted below
        mention(c1.id, bob.id, 14, vec![carol.id], false), // someone else
        mention(c2.id, alice.id, 11, vec![], true),        // own
        mention(c2.id, bob.id, 12, vec![carol.id], false), // someone else
        mention(c3.id, bob.id, 12, vec![alice.id], false), // never acked
    ];
    for def in &defs {
        store.create_message(def).await.unwrap();
    }
    let mut reply = mention(c1.id, bob.id, 15, vec![alice.id], false);
    reply.thread_id = Some(defs[1].id);
    store.create_message(&reply).await.unwrap();
    store.delete_message(defs[3].id).await.unwrap();

    assert_eq!(
        sorted_mentions(store.mention_counts(alice.id).await.unwrap()),
        vec![(c1.id, 3)]
    );
    assert_eq!(
        sorted_mentions(store.mention_counts(bob.id).await.unwrap()),
        Vec::<(ChannelId, i64)>::new()
    );

    // An edit that drops the mention drops it from the count.
    store
        .edit_message(defs[1].id, "nobody", &[carol.id], false, at(20))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        sorted_mentions(store.mention_counts(alice.id).await.unwrap()),
        vec![(c1.id, 2)]
    );
}

// ---- messages ----

/// A created message has all 17 fields as given and reads back identically.
pub async fn create_and_read_message(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let carol = user(store, "carol").await;
    let s = server(store, alice.id, at(1)).await;
    let c = channel(store, s.id, ChannelType::Text, 1).await;
    let first = message(store, c.id, bob.id, 1).await;

    let mut def = message_def(c.id, alice.id, "hi @carol @bob @everyone", at(2));
    def.reply_to = Some(first.id);
    def.mention_user_ids = vec![carol.id, bob.id];
    def.mention_everyone = true;
    let created = store.create_message(&def).await.unwrap();
    let expected = Message {
        id: def.id,
        channel_id: c.id,
        author_id: Some(alice.id),
        content: def.content.clone(),
        reply_to: Some(first.id),
        mention_user_ids: vec![carol.id, bob.id],
        mention_everyone: true,
        thread_id: None,
        thread_reply_count: 0,
        edited_at: None,
        deleted: false,
        created_at: at(2),
        pinned: false,
        pinned_by: None,
        pinned_at: None,
        poll: None,
        event: None,
    };
    assert_eq!(created, expected);
    assert_eq!(store.message(def.id).await.unwrap(), Some(expected));
    assert_eq!(
        first,
        Message {
            id: first.id,
            channel_id: c.id,
            author_id: Some(bob.id),
            content: "hello".to_owned(),
            reply_to: None,
            mention_user_ids: vec![],
            mention_everyone: false,
            thread_id: None,
            thread_reply_count: 0,
            edited_at: None,
            deleted: false,
            created_at: at(1),
            pinned: false,
            pinned_by: None,
            pinned_at: None,
            poll: None,
            event: None,
        }
    );
    assert_eq!(store.message(MessageId::new()).await.unwrap(), None);
}

/// Same id twice conflicts; unknown channel or author is `NotFound`.
pub async fn create_message_conflict_and_missing(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    let c = channel(store, s.id, ChannelType::Text, 1).await;
    let def = message_def(c.id, alice.id, "hi", at(1));
    store.create_message(&def).await.unwrap();
    assert_conflict(store.create_message(&def).await);
    assert_not_found(
        store
            .create_message(&message_def(ChannelId::new(), alice.id, "hi", at(1)))
            .await,
    );
    assert_not_found(
        store
            .create_message(&message_def(c.id, UserId::new(), "hi", at(1)))
            .await,
    );
}

/// Roots only, not deleted, newest first by (created_at, id); `before` is strictly
/// older than the cursor; an unknown or foreign cursor gives `[]`.
pub async fn messages_order_and_cursor(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    let c = channel(store, s.id, ChannelType::Text, 1).await;
    let other = channel(store, s.id, ChannelType::Text, 2).await;
    let ids = sorted_ids::<concord_protocol::marker::Message>(5);
    let times = [1, 2, 2, 3, 4];
    for (id, n) in ids.iter().zip(times) {
        let mut def = message_def(c.id, alice.id, "m", at(n));
        def.id = *id;
        store.create_message(&def).await.unwrap();
    }
    store.delete_message(ids[4]).await.unwrap();
    let mut reply = message_def(c.id, alice.id, "reply", at(5));
    reply.thread_id = Some(ids[0]);
    store.create_message(&reply).await.unwrap();
    let foreign = message(store, other.id, alice.id, 1).await;

    let (m0, m1, m2, m3, m4) = (ids[0], ids[1], ids[2], ids[3], ids[4]);
    let page = |before: Option<MessageId>, limit: i64| async move {
        ids_of(&store.messages(c.id, before, limit).await.unwrap())
    };
    assert_eq!(page(None, 50).await, vec![m3, m2, m1, m0]);
    assert_eq!(page(None, 2).await, vec![m3, m2]);
    assert_eq!(page(Some(m2), 2).await, vec![m1, m0]);
    assert_eq!(page(Some(m1), 50).await, vec![m0]);
    assert_eq!(page(Some(m0), 50).await, Vec::<MessageId>::new());
    // A deleted message still works as a cursor.
    assert_eq!(page(Some(m4), 50).await, vec![m3, m2, m1, m0]);
    assert_eq!(
        page(Some(MessageId::new()), 50).await,
        Vec::<MessageId>::new()
    );
    assert_eq!(page(Some(foreign.id), 50).await, Vec::<MessageId>::new());

    let listed = store.messages(c.id, None, 50).await.unwrap();
    assert_eq!(listed[3].thread_reply_count, 1);
    assert_eq!(listed[0].thread_reply_count, 0);
    assert_eq!(
        ids_of(&store.messages(other.id, None, 50).await.unwrap()),
        vec![foreign.id]
    );
}

/// `thread_reply_count` counts live replies at read time.
pub async fn thread_reply_count_is_live(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    let c = channel(store, s.id, ChannelType::Text, 1).await;
    let root = message(store, c.id, alice.id, 1).await;
    let mut replies = Vec::new();
    for n in [2, 3] {
        let mut def = message_def(c.id, alice.id, "re", at(n));
        def.thread_id = Some(root.id);
        let created = store.create_message(&def).await.unwrap();
        assert_eq!(created.thread_id, Some(root.id));
        assert_eq!(created.thread_reply_count, 0);
        replies.push(created);
    }
    assert_eq!(
        store
            .message(root.id)
            .await
            .unwrap()
            .unwrap()
            .thread_reply_count,
        2
    );
    store.delete_message(replies[0].id).await.unwrap();
    assert_eq!(
        store
            .message(root.id)
            .await
            .unwrap()
            .unwrap()
            .thread_reply_count,
        1
    );
    let listed = store.messages(c.id, None, 50).await.unwrap();
    assert_eq!(ids_of(&listed), vec![root.id]);
    assert_eq!(listed[0].thread_reply_count, 1);
    let reply = store.message(replies[1].id).await.unwrap().unwrap();
    assert_eq!(reply.thread_id, Some(root.id));
}

/// Edits replace content and mentions and set `edited_at`; `None` when missing or
/// deleted.
pub async fn edit_message_replaces(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let carol = user(store, "carol").await;
    let s = server(store, alice.id, at(1)).await;
    let c = channel(store, s.id, ChannelType::Text, 1).await;
    let mut def = message_def(c.id, alice.id, "hi @bob", at(1));
    def.mention_user_ids = vec![bob.id];
    let created = store.create_message(&def).await.unwrap();

    let edited = store
        .edit_message(def.id, "hi @carol @everyone", &[carol.id], true, at(9))
        .await
        .unwrap()
        .unwrap();
    let expected = Message {
        content: "hi @carol @everyone".to_owned(),
        mention_user_ids: vec![carol.id],
        mention_everyone: true,
        edited_at: Some(at(9)),
        ..created
    };
    assert_eq!(edited, expected);
    assert_eq!(store.message(def.id).await.unwrap(), Some(expected.clone()));

    let edited = store
        .edit_message(def.id, "plain", &[], false, at(10))
        .await
        .unwrap()
        .unwrap();
    assert!(edited.mention_user_ids.is_empty());
    assert!(!edited.mention_everyone);

    assert_eq!(
        store
            .edit_message(MessageId::new(), "x", &[], false, at(11))
            .await
            .unwrap(),
        None
    );
    store.delete_message(def.id).await.unwrap();
    assert_eq!(
        store
            .edit_message(def.id, "again", &[], false, at(12))
            .await
            .unwrap(),
        None
    );
    let stored = store.message(def.id).await.unwrap().unwrap();
    assert_eq!(stored.content, "plain");
    assert_eq!(stored.edited_at, Some(at(10)));
}

/// Soft delete succeeds once; the message stays readable one by one.
pub async fn delete_message_is_soft_and_once(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    let c = channel(store, s.id, ChannelType::Text, 1).await;
    let m = message(store, c.id, alice.id, 1).await;
    assert!(store.delete_message(m.id).await.unwrap());
    assert!(!store.delete_message(m.id).await.unwrap());
    assert!(!store.delete_message(MessageId::new()).await.unwrap());
    let read = store.message(m.id).await.unwrap().unwrap();
    assert_eq!(read, Message { deleted: true, ..m });
    assert!(store.messages(c.id, None, 50).await.unwrap().is_empty());
}

// ---- direct messages ----

/// Opening a DM creates it once for the pair, in whichever order asked.
pub async fn open_dm_is_idempotent(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let def = dm_def(bob.id, alice.id, at(1));
    let (created, new) = store.open_dm_channel(&def).await.unwrap();
    assert!(new);
    assert_eq!(created.id, def.id);
    assert_eq!(created.created_at, at(1));
    assert!(created.has(alice.id) && created.has(bob.id));
    assert_eq!(created.other(alice.id), bob.id);

    let (again, new) = store
        .open_dm_channel(&dm_def(alice.id, bob.id, at(2)))
        .await
        .unwrap();
    assert!(!new);
    assert_eq!(again, created);
    let (again, new) = store
        .open_dm_channel(&dm_def(bob.id, alice.id, at(3)))
        .await
        .unwrap();
    assert!(!new);
    assert_eq!(again, created);

    assert_eq!(store.dm_channel(def.id).await.unwrap(), Some(created));
    assert_eq!(store.dm_channel(DmChannelId::new()).await.unwrap(), None);
    assert_not_found(
        store
            .open_dm_channel(&dm_def(alice.id, UserId::new(), at(4)))
            .await,
    );
}

/// Two concurrent opens of the same pair create exactly one channel.
pub async fn open_dm_concurrently(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let one = dm_def(alice.id, bob.id, at(1));
    let two = dm_def(bob.id, alice.id, at(1));
    let (first, second) = tokio::join!(store.open_dm_channel(&one), store.open_dm_channel(&two));
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first.0, second.0);
    assert!(first.1 ^ second.1, "exactly one open creates");
}

/// A user's DMs: newest message first, never-used last (newest created first); the
/// recipient is the other participant.
pub async fn dm_channels_of_user_order(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let carol = user(store, "carol").await;
    let dave = user(store, "dave").await;
    let erin = user(store, "erin").await;
    let open = |other: UserId, n: i64| {
        let def = dm_def(alice.id, other, at(n));
        async move { store.open_dm_channel(&def).await.unwrap().0 }
    };
    let with_bob = open(bob.id, 1).await;
    let with_carol = open(carol.id, 2).await;
    let with_dave = open(dave.id, 3).await;
    let with_erin = open(erin.id, 4).await;
    let (bob_carol, _) = store
        .open_dm_channel(&dm_def(bob.id, carol.id, at(5)))
        .await
        .unwrap();
    for (channel, author, n) in [
        (with_bob.id, bob.id, 10),
        (with_bob.id, alice.id, 8),
        (with_dave.id, alice.id, 5),
        (bob_carol.id, bob.id, 20),
    ] {
        store
            .create_dm_message(&dm_message(channel, author, at(n)))
            .await
            .unwrap();
    }

    let listed = store.dm_channels_of_user(alice.id).await.unwrap();
    let summary: Vec<_> = listed
        .iter()
        .map(|d| (d.channel.id, d.recipient.id, d.last_message_at))
        .collect();
    assert_eq!(
        summary,
        vec![
            (with_bob.id, bob.id, Some(at(10))),
            (with_dave.id, dave.id, Some(at(5))),
            (with_erin.id, erin.id, None),
            (with_carol.id, carol.id, None),
        ]
    );
    assert_eq!(listed[0].recipient, bob);
    assert_eq!(listed[0].channel, with_bob);
    let of_bob: Vec<_> = store
        .dm_channels_of_user(bob.id)
        .await
        .unwrap()
        .iter()
        .map(|d| (d.channel.id, d.recipient.id))
        .collect();
    assert_eq!(
        of_bob,
        vec![(bob_carol.id, carol.id), (with_bob.id, alice.id)]
    );
    assert!(
        store
            .dm_channels_of_user(UserId::new())
            .await
            .unwrap()
            .is_empty()
    );
}

/// DMs newest first by (created_at, id) with the `messages` cursor rules.
pub async fn dm_messages_order_and_cursor(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let carol = user(store, "carol").await;
    let (dm, _) = store
        .open_dm_channel(&dm_def(alice.id, bob.id, at(1)))
        .await
        .unwrap();
    let (other, _) = store
        .open_dm_channel(&dm_def(alice.id, carol.id, at(1)))
        .await
        .unwrap();
    let ids = sorted_ids::<concord_protocol::marker::DirectMessage>(4);
    let mut sent = Vec::new();
    for (i, (id, n)) in ids.iter().zip([1, 2, 2, 3]).enumerate() {
        let author = if i % 2 == 0 { alice.id } else { bob.id };
        let mut m = dm_message(dm.id, author, at(n));
        m.id = *id;
        store.create_dm_message(&m).await.unwrap();
        sent.push(m);
    }
    let foreign = dm_message(other.id, carol.id, at(1));
    store.create_dm_message(&foreign).await.unwrap();
    assert_conflict(store.create_dm_message(&foreign).await);
    assert_not_found(
        store
            .create_dm_message(&dm_message(DmChannelId::new(), alice.id, at(1)))
            .await,
    );

    let all = store.dm_messages(dm.id, None, 50).await.unwrap();
    let mut expected = sent.clone();
    expected.reverse();
    assert_eq!(all, expected);
    let page = |before: Option<Uuid>, limit: i64| async move {
        store
            .dm_messages(dm.id, before, limit)
            .await
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(page(None, 2).await, vec![ids[3], ids[2]]);
    assert_eq!(page(Some(ids[2].get()), 50).await, vec![ids[1], ids[0]]);
    assert_eq!(page(Some(ids[0].get()), 50).await, vec![]);
    assert_eq!(page(Some(Uuid::now_v7()), 50).await, vec![]);
    assert_eq!(page(Some(foreign.id.get()), 50).await, vec![]);
}

// ---- voice ----

/// Voice states upsert by user, list by `joined_at`, and delete returning the row.
pub async fn voice_state_upsert_and_delete(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s = server(store, alice.id, at(1)).await;
    let lounge = channel(store, s.id, ChannelType::Voice, 1).await;
    let stage = channel(store, s.id, ChannelType::Voice, 2).await;

    let a = VoiceState {
        self_mute: true,
        self_video: true,
        ..voice(alice.id, lounge.id, at(5))
    };
    let b = voice(bob.id, lounge.id, at(3));
    store.put_voice_state(&a).await.unwrap();
    store.put_voice_state(&b).await.unwrap();
    assert_eq!(store.voice_state(alice.id).await.unwrap(), Some(a.clone()));
    assert_eq!(
        store.voice_participants(lounge.id).await.unwrap(),
        vec![
            VoiceParticipant {
                state: b.clone(),
                username: "bob".to_owned(),
            },
            VoiceParticipant {
                state: a,
                username: "alice".to_owned(),
            },
        ]
    );

    // Move: the row is replaced.
    let moved = VoiceState {
        self_deaf: true,
        self_screen: true,
        ..voice(alice.id, stage.id, at(7))
    };
    store.put_voice_state(&moved).await.unwrap();
    assert_eq!(
        store.voice_state(alice.id).await.unwrap(),
        Some(moved.clone())
    );
    let in_lounge: Vec<_> = store
        .voice_participants(lounge.id)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.state.user_id)
        .collect();
    assert_eq!(in_lounge, vec![bob.id]);
    assert_eq!(store.voice_participants(stage.id).await.unwrap().len(), 1);

    assert_eq!(
        store.delete_voice_state(alice.id).await.unwrap(),
        Some(moved)
    );
    assert_eq!(store.delete_voice_state(alice.id).await.unwrap(), None);
    assert_eq!(store.voice_state(alice.id).await.unwrap(), None);

    assert!(
        store
            .put_voice_state(&VoiceState::left(alice.id))
            .await
            .is_err()
    );
    assert_not_found(
        store
            .put_voice_state(&voice(alice.id, ChannelId::new(), at(8)))
            .await,
    );

    store.clear_voice_states().await.unwrap();
    assert_eq!(store.voice_state(bob.id).await.unwrap(), None);
    assert!(
        store
            .voice_participants(lounge.id)
            .await
            .unwrap()
            .is_empty()
    );
}

// ---- bots ----

/// Bots: lookups by id, user and token (revoked included), creator listing oldest
/// first, updates, single revocation, token replacement.
pub async fn bot_lifecycle(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let helper_user = bot_user("helper-bot-0001");
    let helper = bot_def(&helper_user, Some(alice.id), "t1", at(2));
    store.create_bot(&helper_user, &helper).await.unwrap();
    let older_user = bot_user("older-bot-0002");
    let older = bot_def(&older_user, Some(alice.id), "t-older", at(1));
    store.create_bot(&older_user, &older).await.unwrap();

    let account = store.user(helper_user.id).await.unwrap().unwrap();
    assert!(account.is_bot);
    assert!(!account.is_admin);
    assert_eq!(account.password_hash, None);
    assert_eq!(
        store.bot(helper.bot.id).await.unwrap(),
        Some(helper.clone())
    );
    assert_eq!(
        store.bot_by_user(helper_user.id).await.unwrap(),
        Some(helper.clone())
    );
    assert_eq!(
        store.bot_by_token_hash("t1").await.unwrap(),
        Some(helper.clone())
    );
    assert_eq!(store.bot(BotId::new()).await.unwrap(), None);
    assert_eq!(store.bot_by_user(alice.id).await.unwrap(), None);
    assert_eq!(store.bot_by_token_hash("nope").await.unwrap(), None);
    assert_eq!(
        store.bots_of_creator(alice.id).await.unwrap(),
        vec![older.bot.clone(), helper.bot.clone()]
    );
    assert!(store.bots_of_creator(bob.id).await.unwrap().is_empty());

    let renamed = store
        .update_bot(helper.bot.id, Some("Renamed"), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        renamed,
        Bot {
            name: "Renamed".to_owned(),
            ..helper.bot.clone()
        }
    );
    let described = store
        .update_bot(helper.bot.id, None, Some("new text"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(described.name, "Renamed");
    assert_eq!(described.description.as_deref(), Some("new text"));
    assert_eq!(
        store
            .update_bot(BotId::new(), Some("x"), None)
            .await
            .unwrap(),
        None
    );

    assert!(store.set_bot_token(helper.bot.id, "t2").await.unwrap());
    assert_eq!(store.bot_by_token_hash("t1").await.unwrap(), None);
    assert_eq!(
        store
            .bot_by_token_hash("t2")
            .await
            .unwrap()
            .map(|b| b.bot.id),
        Some(helper.bot.id)
    );
    assert!(!store.set_bot_token(BotId::new(), "t3").await.unwrap());

    assert!(store.revoke_bot(helper.bot.id, at(9)).await.unwrap());
    assert!(!store.revoke_bot(helper.bot.id, at(10)).await.unwrap());
    assert!(!store.revoke_bot(BotId::new(), at(10)).await.unwrap());
    let revoked = store.bot_by_token_hash("t2").await.unwrap().unwrap();
    assert_eq!(revoked.bot.revoked_at, Some(at(9)));
    assert_eq!(revoked.token_hash, "t2");
    let listed = store.bots_of_creator(alice.id).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].revoked_at, Some(at(9)));
    // The bot's account stays.
    assert!(store.user(helper_user.id).await.unwrap().is_some());
}

/// A bot whose user or token clashes inserts neither the user nor the bot.
pub async fn create_bot_is_atomic(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let first_user = bot_user("first-bot");
    store
        .create_bot(
            &first_user,
            &bot_def(&first_user, Some(alice.id), "t1", at(1)),
        )
        .await
        .unwrap();

    let same_token_user = bot_user("second-bot");
    let same_token = bot_def(&same_token_user, Some(alice.id), "t1", at(2));
    assert_conflict(store.create_bot(&same_token_user, &same_token).await);
    assert_eq!(store.user(same_token_user.id).await.unwrap(), None);
    assert_eq!(store.bot(same_token.bot.id).await.unwrap(), None);

    let same_name_user = bot_user("first-bot");
    let same_name = bot_def(&same_name_user, Some(alice.id), "t3", at(3));
    assert_conflict(store.create_bot(&same_name_user, &same_name).await);
    assert_eq!(store.bot(same_name.bot.id).await.unwrap(), None);
    assert_eq!(store.bot_by_token_hash("t3").await.unwrap(), None);
    assert_eq!(store.bots_of_creator(alice.id).await.unwrap().len(), 1);
}

#[cfg(test)]
mod sqlite {
    crate::conformance_tests!(
        crate::SqliteStore::in_memory()
            .await
            .expect("in-memory store")
    );
}
