//! Conformance cases: attachments and the purge journal of their files.

use concord_protocol::{ChannelType, MessageId, Timestamp, UserId};

use super::{at, channel, message, server, user};
use crate::{AttachmentAddition, AttachmentRecord, Store};

/// The limit the REST layer passes (`rest-extras.md` §8.1).
const LIMIT: i64 = 10;

fn attachment_def(
    message: MessageId,
    by: UserId,
    name: &str,
    created_at: Timestamp,
) -> AttachmentRecord {
    AttachmentRecord {
        id: uuid::Uuid::new_v4(),
        message_id: message,
        uploader_id: Some(by),
        filename: format!("{name}.png"),
        stored_name: format!("{}_{name}.png", uuid::Uuid::new_v4().simple()),
        file_size: 1234,
        mime_type: "image/png".to_owned(),
        created_at,
    }
}

fn batch(
    message: MessageId,
    by: UserId,
    prefix: &str,
    n: usize,
    at: Timestamp,
) -> Vec<AttachmentRecord> {
    (0..n)
        .map(|i| attachment_def(message, by, &format!("{prefix}{i}"), at))
        .collect()
}

/// Attachments read back as written, in upload order (a batch shares its timestamp and
/// keeps its order; a later batch comes after); one is found by its stored name only
/// under its own message.
pub async fn attachments_add_list_get(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    let c = channel(store, s.id, ChannelType::Text, 2).await;
    let m = message(store, c.id, alice.id, 3).await;
    let other = message(store, c.id, alice.id, 4).await;
    assert!(store.attachments(m.id).await.unwrap().is_empty());

    // Stored names that sort against the upload order: the order is kept anyway.
    let mut first = batch(m.id, alice.id, "b", 3, at(10));
    first[0].stored_name = format!("z_{}", first[0].stored_name);
    first[2].stored_name = format!("a_{}", first[2].stored_name);
    let second = batch(m.id, alice.id, "a", 2, at(11));
    for b in [&first, &second] {
        assert_eq!(
            store.add_attachments(m.id, b, LIMIT).await.unwrap(),
            AttachmentAddition::Added
        );
    }
    let all: Vec<_> = first.iter().chain(&second).cloned().collect();
    assert_eq!(store.attachments(m.id).await.unwrap(), all);
    assert!(store.attachments(other.id).await.unwrap().is_empty());
    assert_eq!(
        store.attachment(m.id, &first[1].stored_name).await.unwrap(),
        Some(first[1].clone())
    );
    assert_eq!(
        store
            .attachment(other.id, &first[1].stored_name)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.attachment(m.id, "missing").await.unwrap(), None);
    // Nothing was purged.
    assert!(store.file_purges(100).await.unwrap().is_empty());
}

/// The limit counts the rows already there; a refused batch, or one for a missing or
/// deleted message, writes nothing.
pub async fn attachment_limit_and_dead_messages_write_nothing(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    let c = channel(store, s.id, ChannelType::Text, 2).await;
    let m = message(store, c.id, alice.id, 3).await;
    let seven = batch(m.id, alice.id, "x", 7, at(10));
    assert_eq!(
        store.add_attachments(m.id, &seven, LIMIT).await.unwrap(),
        AttachmentAddition::Added
    );
    let four = batch(m.id, alice.id, "y", 4, at(11));
    assert_eq!(
        store.add_attachments(m.id, &four, LIMIT).await.unwrap(),
        AttachmentAddition::LimitReached
    );
    assert_eq!(store.attachments(m.id).await.unwrap(), seven);
    let three = batch(m.id, alice.id, "z", 3, at(12));
    assert_eq!(
        store.add_attachments(m.id, &three, LIMIT).await.unwrap(),
        AttachmentAddition::Added
    );
    assert_eq!(store.attachments(m.id).await.unwrap().len(), 10);

    let missing = MessageId::new();
    assert_eq!(
        store
            .add_attachments(missing, &batch(missing, alice.id, "m", 1, at(13)), LIMIT)
            .await
            .unwrap(),
        AttachmentAddition::MessageGone
    );
    let dead = message(store, c.id, alice.id, 4).await;
    assert!(store.delete_message(dead.id).await.unwrap());
    assert_eq!(
        store
            .add_attachments(dead.id, &batch(dead.id, alice.id, "d", 1, at(14)), LIMIT)
            .await
            .unwrap(),
        AttachmentAddition::MessageGone
    );
    assert!(store.attachments(dead.id).await.unwrap().is_empty());
}

/// Concurrent batches to one message never pass the limit together (Concord X2).
pub async fn attachment_limit_holds_under_concurrency(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    let c = channel(store, s.id, ChannelType::Text, 2).await;
    let m = message(store, c.id, alice.id, 3).await;
    let batches: Vec<_> = (0..6)
        .map(|n| batch(m.id, alice.id, &format!("r{n}-"), 3, at(10)))
        .collect();
    let outcomes = futures_util::future::join_all(
        batches
            .iter()
            .map(|b| store.add_attachments(m.id, b, LIMIT)),
    )
    .await;
    let added = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(AttachmentAddition::Added)))
        .count();
    let refused = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(AttachmentAddition::LimitReached)))
        .count();
    assert_eq!((added, refused), (3, 3), "{outcomes:?}");
    assert_eq!(store.attachments(m.id).await.unwrap().len(), 9);
}

/// Every way an attachment row goes (soft delete of its message, channel delete,
/// server delete) leaves its file in the purge journal, once; forgotten purges are
/// not listed again.
pub async fn attachment_rows_go_with_messages_and_leave_purges(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    let kept_server = server(store, alice.id, at(1)).await;
    let c1 = channel(store, s.id, ChannelType::Text, 2).await;
    let c2 = channel(store, s.id, ChannelType::Text, 3).await;
    let c3 = channel(store, kept_server.id, ChannelType::Text, 3).await;
    let soft = message(store, c1.id, alice.id, 4).await;
    let in_c1 = message(store, c1.id, alice.id, 5).await;
    let in_c2 = message(store, c2.id, alice.id, 6).await;
    let kept = message(store, c3.id, alice.id, 7).await;
    let mut all = Vec::new();
    for (m, n) in [(soft.id, 2), (in_c1.id, 1), (in_c2.id, 2), (kept.id, 1)] {
        let b = batch(m, alice.id, "f", n, at(10));
        assert_eq!(
            store.add_attachments(m, &b, LIMIT).await.unwrap(),
            AttachmentAddition::Added
        );
        all.push(b);
    }
    let names = |b: &[AttachmentRecord]| {
        let mut v: Vec<_> = b
            .iter()
            .map(|a| (a.message_id, a.stored_name.clone()))
            .collect();
        v.sort();
        v
    };
    let purged = |purges: &[crate::FilePurge]| {
        let mut v: Vec<_> = purges
            .iter()
            .map(|p| (p.message_id, p.stored_name.clone()))
            .collect();
        v.sort();
        v
    };

    assert!(store.delete_message(soft.id).await.unwrap());
    assert!(store.attachments(soft.id).await.unwrap().is_empty());
    let purges = store.file_purges(100).await.unwrap();
    assert_eq!(purged(&purges), names(&all[0]));
    // A limit is a limit, oldest first.
    let one = store.file_purges(1).await.unwrap();
    assert_eq!(one, purges[..1].to_vec());
    store
        .forget_file_purges(&purges.iter().map(|p| p.seq).collect::<Vec<_>>())
        .await
        .unwrap();
    assert!(store.file_purges(100).await.unwrap().is_empty());

    assert!(store.delete_channel(c1.id, None).await.unwrap());
    assert_eq!(
        purged(&store.file_purges(100).await.unwrap()),
        names(&all[1])
    );
    assert!(store.delete_server(s.id, None).await.unwrap().is_some());
    let mut expected = names(&all[1]);
    expected.extend(names(&all[2]));
    expected.sort();
    let purges = store.file_purges(100).await.unwrap();
    assert_eq!(purged(&purges), expected);
    // Forgetting some keeps the others.
    store.forget_file_purges(&[purges[0].seq]).await.unwrap();
    assert_eq!(store.file_purges(100).await.unwrap(), purges[1..].to_vec());
    assert_eq!(store.attachments(kept.id).await.unwrap(), all[3]);
}
