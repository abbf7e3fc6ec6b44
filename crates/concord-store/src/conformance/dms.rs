//! Conformance cases: direct-message channels and their messages.

use concord_protocol::{DmChannelId, UserId};
use uuid::Uuid;

use super::{assert_conflict, assert_not_found, at, dm_def, dm_message, sorted_ids, user};
use crate::Store;

/// A node's direct messages are found by id range, as its channel messages are: its
/// own only, deleted ones not, newest first, `limit` the newest few.
pub async fn dm_messages_of_a_node_by_id_range(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let (dm, _) = store
        .open_dm_channel(&dm_def(alice.id, bob.id, at(1)))
        .await
        .unwrap();
    let (node, other) = (Uuid::new_v4(), Uuid::new_v4());
    let id_at =
        |ms: u64, n: u8| uuid::Builder::from_unix_timestamp_millis(ms, &[n; 10]).into_uuid();
    let post = async |ms: u64, n: u8, by: Option<Uuid>| {
        let mut m = dm_message(dm.id, alice.id, at(2));
        m.id = concord_protocol::DirectMessageId::from_uuid(id_at(ms, n));
        store.create_dm_message(&m, by).await.unwrap();
        m
    };
    post(1_000, 1, Some(node)).await;
    let second = post(2_000, 1, Some(node)).await;
    post(2_000, 2, Some(other)).await;
    post(2_000, 3, None).await;
    let third = post(3_000, 1, Some(node)).await;
    let since = id_at(1_500, 0);
    let found = store.dm_messages_of_node(node, since, 10).await.unwrap();
    assert_eq!(found, vec![third.clone(), second]);
    assert_eq!(
        store.dm_messages_of_node(node, since, 1).await.unwrap(),
        vec![third]
    );
    assert_eq!(
        store
            .dm_messages_of_node(other, since, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

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
            .create_dm_message(&dm_message(channel, author, at(n)), None)
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
        store.create_dm_message(&m, None).await.unwrap();
        sent.push(m);
    }
    let foreign = dm_message(other.id, carol.id, at(1));
    store.create_dm_message(&foreign, None).await.unwrap();
    assert_conflict(store.create_dm_message(&foreign, None).await);
    assert_not_found(
        store
            .create_dm_message(&dm_message(DmChannelId::new(), alice.id, at(1)), None)
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
