//! Conformance cases: server channel messages, their mentions, and read state.

use concord_protocol::{
    ChannelId, ChannelType, MentionCount, Message, MessageId, UnreadCount, UserId,
};
use uuid::Uuid;

use super::{
    assert_conflict, assert_not_found, at, channel, dm_def, dm_message, ids_of, message,
    message_def, server, sorted_ids, user,
};
use crate::Store;

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

/// A message id of millisecond `ms` (`n` fills the rest: ids of one millisecond
/// order by it).
fn id_at(ms: u64, n: u8) -> MessageId {
    MessageId::from_uuid(uuid::Builder::from_unix_timestamp_millis(ms, &[n; 10]).into_uuid())
}

/// A node's messages are found by id range: its own only, thread replies included,
/// deleted ones not, newest first, each as [`Store::message`] reads it, `limit` the
/// newest few.
pub async fn messages_of_a_node_by_id_range(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    let c = channel(store, s.id, ChannelType::Text, 1).await;
    let (node, other) = (Uuid::new_v4(), Uuid::new_v4());
    let post = |ms: u64, n: u8, node: Option<Uuid>, thread: Option<MessageId>| {
        let mut def = message_def(c.id, alice.id, &format!("at {ms}.{n}"), at(2));
        def.id = id_at(ms, n);
        def.node = node;
        def.thread_id = thread;
        def
    };
    for def in [
        post(1_000, 1, Some(node), None),
        post(2_000, 1, Some(node), None),
        post(2_000, 2, Some(other), None),
        post(2_000, 3, None, None),
        post(3_000, 1, Some(node), Some(id_at(2_000, 1))),
        post(3_500, 1, Some(node), None),
        post(4_000, 1, Some(node), None),
    ] {
        store.create_message(&def).await.unwrap();
    }
    assert!(store.delete_message(id_at(3_500, 1)).await.unwrap());
    let since = id_at(1_500, 0);
    let found = store.messages_of_node(node, since, 10).await.unwrap();
    assert_eq!(
        ids_of(&found),
        vec![id_at(4_000, 1), id_at(3_000, 1), id_at(2_000, 1)]
    );
    for message in &found {
        assert_eq!(
            store.message(message.id).await.unwrap().as_ref(),
            Some(message)
        );
    }
    assert_eq!(found[1].thread_id, Some(id_at(2_000, 1)));
    let newest = store.messages_of_node(node, since, 2).await.unwrap();
    assert_eq!(ids_of(&newest), vec![id_at(4_000, 1), id_at(3_000, 1)]);
    assert_eq!(
        ids_of(&store.messages_of_node(other, since, 10).await.unwrap()),
        vec![id_at(2_000, 2)]
    );
    assert!(
        store
            .messages_of_node(Uuid::new_v4(), since, 10)
            .await
            .unwrap()
            .is_empty()
    );
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
            .create_dm_message(&dm_message(dm.id, author, at(n)), None)
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
