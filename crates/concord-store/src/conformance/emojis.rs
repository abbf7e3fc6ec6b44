//! Conformance cases: custom emojis.

use concord_protocol::{CustomEmojiId, ServerId, Timestamp, UserId};

use super::{assert_not_found, at, server, sorted_ids, user};
use crate::{CustomEmojiRecord, EmojiCreation, Store};

/// The limit the REST layer passes (`rest.md` §7.16).
const LIMIT: i64 = 50;

fn emoji_def(server: ServerId, by: UserId, name: &str, created_at: Timestamp) -> CustomEmojiRecord {
    CustomEmojiRecord {
        id: CustomEmojiId::new(),
        server_id: server,
        created_by: by,
        name: name.to_owned(),
        content_type: "image/png".to_owned(),
        file_size: 100,
        created_at,
    }
}

async fn add(store: &dyn Store, emoji: &CustomEmojiRecord) {
    assert_eq!(
        store.create_custom_emoji(emoji, LIMIT).await.unwrap(),
        EmojiCreation::Created,
        "{emoji:?}"
    );
}

/// Emojis are listed oldest first (ties by id), read back as written, and deleted
/// once, only through their own server; a missing server or creator is NotFound.
pub async fn custom_emojis_create_list_get_delete(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    let other = server(store, alice.id, at(2)).await;
    assert!(store.custom_emojis(s.id).await.unwrap().is_empty());

    let ids = sorted_ids::<concord_protocol::marker::CustomEmoji>(2);
    let late = emoji_def(s.id, alice.id, "late", at(20));
    let tie_b = CustomEmojiRecord {
        id: ids[1],
        ..emoji_def(s.id, alice.id, "tie_b", at(10))
    };
    let tie_a = CustomEmojiRecord {
        id: ids[0],
        content_type: "image/gif".to_owned(),
        file_size: 262_144,
        ..emoji_def(s.id, alice.id, "tie-a", at(10))
    };
    let elsewhere = emoji_def(other.id, alice.id, "late", at(5));
    for emoji in [&late, &tie_b, &tie_a, &elsewhere] {
        add(store, emoji).await;
    }
    assert_eq!(
        store.custom_emojis(s.id).await.unwrap(),
        vec![tie_a.clone(), tie_b.clone(), late.clone()]
    );
    assert_eq!(
        store.custom_emojis(other.id).await.unwrap(),
        vec![elsewhere.clone()]
    );
    assert_eq!(
        store.custom_emoji(tie_a.id).await.unwrap(),
        Some(tie_a.clone())
    );
    assert_eq!(
        store.custom_emoji(CustomEmojiId::new()).await.unwrap(),
        None
    );

    // Not through another server.
    assert_eq!(
        store.delete_custom_emoji(other.id, late.id).await.unwrap(),
        None
    );
    assert_eq!(
        store.delete_custom_emoji(s.id, late.id).await.unwrap(),
        Some(late.clone())
    );
    assert_eq!(
        store.delete_custom_emoji(s.id, late.id).await.unwrap(),
        None
    );
    assert_eq!(store.custom_emoji(late.id).await.unwrap(), None);
    assert_eq!(store.custom_emojis(s.id).await.unwrap(), vec![tie_a, tie_b]);
    assert_eq!(
        store.custom_emojis(other.id).await.unwrap(),
        vec![elsewhere]
    );

    assert_not_found(
        store
            .create_custom_emoji(&emoji_def(ServerId::new(), alice.id, "x", at(3)), LIMIT)
            .await,
    );
    assert_not_found(
        store
            .create_custom_emoji(&emoji_def(s.id, UserId::new(), "x", at(3)), LIMIT)
            .await,
    );
    assert_eq!(store.custom_emojis(s.id).await.unwrap().len(), 2);
}

/// A taken name (in the same server only) and a full server are refused without a
/// write; the limit is checked first; a freed slot can be used again.
pub async fn custom_emoji_limit_and_name_refusals_write_nothing(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    let other = server(store, alice.id, at(2)).await;
    let first = emoji_def(s.id, alice.id, "wave", at(3));
    add(store, &first).await;
    let again = emoji_def(s.id, alice.id, "wave", at(4));
    assert_eq!(
        store.create_custom_emoji(&again, LIMIT).await.unwrap(),
        EmojiCreation::NameTaken
    );
    assert_eq!(store.custom_emoji(again.id).await.unwrap(), None);
    assert_eq!(
        store.custom_emojis(s.id).await.unwrap(),
        vec![first.clone()]
    );
    // Names are per server.
    add(store, &emoji_def(other.id, alice.id, "wave", at(4))).await;

    for n in 1..LIMIT {
        add(
            store,
            &emoji_def(s.id, alice.id, &format!("e{n}"), at(10 + n)),
        )
        .await;
    }
    assert_eq!(
        store.custom_emojis(s.id).await.unwrap().len(),
        usize::try_from(LIMIT).unwrap()
    );
    let one_more = emoji_def(s.id, alice.id, "one_more", at(100));
    assert_eq!(
        store.create_custom_emoji(&one_more, LIMIT).await.unwrap(),
        EmojiCreation::LimitReached
    );
    // Full and a taken name: the limit is reported.
    assert_eq!(
        store
            .create_custom_emoji(&emoji_def(s.id, alice.id, "wave", at(100)), LIMIT)
            .await
            .unwrap(),
        EmojiCreation::LimitReached
    );
    assert_eq!(store.custom_emoji(one_more.id).await.unwrap(), None);
    assert_eq!(
        store.custom_emojis(s.id).await.unwrap().len(),
        usize::try_from(LIMIT).unwrap()
    );
    // The limit is the caller's.
    assert_eq!(
        store
            .create_custom_emoji(&one_more, LIMIT + 1)
            .await
            .unwrap(),
        EmojiCreation::Created
    );
    assert!(
        store
            .delete_custom_emoji(s.id, one_more.id)
            .await
            .unwrap()
            .is_some()
    );

    assert!(
        store
            .delete_custom_emoji(s.id, first.id)
            .await
            .unwrap()
            .is_some()
    );
    add(store, &one_more).await;
}

/// Of uploads racing for the last slot, exactly one gets it; of uploads racing for
/// one name, exactly one gets it.
pub async fn custom_emoji_limit_holds_under_concurrency(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    for n in 0..LIMIT - 1 {
        add(
            store,
            &emoji_def(s.id, alice.id, &format!("e{n}"), at(2 + n)),
        )
        .await;
    }
    let racers: Vec<_> = (0..6)
        .map(|n| emoji_def(s.id, alice.id, &format!("racer{n}"), at(100)))
        .collect();
    let outcomes = futures_util::future::join_all(
        racers
            .iter()
            .map(|emoji| store.create_custom_emoji(emoji, LIMIT)),
    )
    .await;
    let created = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(EmojiCreation::Created)))
        .count();
    let refused = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(EmojiCreation::LimitReached)))
        .count();
    assert_eq!((created, refused), (1, 5), "{outcomes:?}");
    assert_eq!(
        store.custom_emojis(s.id).await.unwrap().len(),
        usize::try_from(LIMIT).unwrap()
    );

    let other = server(store, alice.id, at(3)).await;
    let racers: Vec<_> = (0..6)
        .map(|_| emoji_def(other.id, alice.id, "same", at(100)))
        .collect();
    let outcomes = futures_util::future::join_all(
        racers
            .iter()
            .map(|emoji| store.create_custom_emoji(emoji, LIMIT)),
    )
    .await;
    let created = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(EmojiCreation::Created)))
        .count();
    let taken = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(EmojiCreation::NameTaken)))
        .count();
    assert_eq!((created, taken), (1, 5), "{outcomes:?}");
    assert_eq!(store.custom_emojis(other.id).await.unwrap().len(), 1);
}

/// Deleting a server deletes its emojis and names them (for their files); another
/// server's stay.
pub async fn custom_emojis_go_with_their_server(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    let keep = server(store, alice.id, at(2)).await;
    let mut gone = Vec::new();
    for n in 0..3 {
        let emoji = emoji_def(s.id, alice.id, &format!("e{n}"), at(3 + n));
        add(store, &emoji).await;
        gone.push(emoji.id);
    }
    let kept = emoji_def(keep.id, alice.id, "e0", at(3));
    add(store, &kept).await;

    let mut named = store
        .delete_server(s.id, None)
        .await
        .unwrap()
        .expect("deleted");
    named.sort();
    gone.sort();
    assert_eq!(named, gone);
    for id in gone {
        assert_eq!(store.custom_emoji(id).await.unwrap(), None);
    }
    assert!(store.custom_emojis(s.id).await.unwrap().is_empty());
    assert_eq!(store.custom_emojis(keep.id).await.unwrap(), vec![kept]);
    assert_eq!(store.delete_server(s.id, None).await.unwrap(), None);
}
