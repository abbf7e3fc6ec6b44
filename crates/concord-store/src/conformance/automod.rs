//! Conformance cases: automod settings, filtered words, the automod log and the
//! reads of recent messages its rules make (issue 18 part C).

use concord_protocol::{
    AutomodAction, AutomodLogEntry, AutomodRule, ChannelId, ChannelType, ServerId, UserId,
    WordFilter,
};
use uuid::Uuid;

use super::{assert_not_found, at, channel, message_def, server, user};
use crate::{AutomodPatch, Store, WordAddition};

fn word(server: ServerId, by: UserId, text: &str, n: i64) -> WordFilter {
    WordFilter {
        id: Uuid::now_v7(),
        server_id: server,
        word: text.to_owned(),
        created_by: Some(by),
        created_at: at(n),
    }
}

fn log(server: ServerId, channel: ChannelId, user: UserId, n: i64) -> AutomodLogEntry {
    AutomodLogEntry {
        id: Uuid::now_v7(),
        server_id: server,
        channel_id: Some(channel),
        user_id: Some(user),
        username: "bob".to_owned(),
        rule_type: AutomodRule::WordFilter,
        action_taken: AutomodAction::Timeout,
        matched_term: Some("bad".to_owned()),
        message_content: Some(format!("bad message {n}")),
        created_at: at(n),
    }
}

/// No settings until the first change, which fills the defaults; later changes keep
/// what they leave out. The ranges hold in the database; the settings go with their
/// server.
pub async fn automod_config_upserts_with_defaults(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    assert_eq!(store.automod_config(s.id).await.unwrap(), None);

    let first = AutomodPatch {
        enabled: Some(true),
        ..AutomodPatch::default()
    };
    let config = store
        .update_automod_config(s.id, &first, at(2))
        .await
        .unwrap();
    assert_eq!(config.server_id, s.id);
    assert!(config.enabled);
    assert!(!config.spam_enabled);
    assert_eq!(config.spam_max_messages, 5);
    assert_eq!(config.spam_window_secs, 5);
    assert_eq!(config.spam_action, AutomodAction::Delete);
    assert!(!config.duplicate_enabled);
    assert!(!config.word_filter_enabled);
    assert_eq!(config.word_filter_action, AutomodAction::Delete);
    assert_eq!(config.timeout_minutes, 10);
    assert_eq!(config.updated_at, at(2));
    assert_eq!(store.automod_config(s.id).await.unwrap(), Some(config));

    let second = AutomodPatch {
        spam_enabled: Some(true),
        spam_max_messages: Some(50),
        spam_action: Some(AutomodAction::Ban),
        timeout_minutes: Some(10_080),
        ..AutomodPatch::default()
    };
    let config = store
        .update_automod_config(s.id, &second, at(3))
        .await
        .unwrap();
    assert!(config.enabled, "kept");
    assert!(config.spam_enabled);
    assert_eq!(config.spam_max_messages, 50);
    assert_eq!(config.spam_window_secs, 5, "kept");
    assert_eq!(config.spam_action, AutomodAction::Ban);
    assert_eq!(config.word_filter_action, AutomodAction::Delete, "kept");
    assert_eq!(config.timeout_minutes, 10_080);
    assert_eq!(config.updated_at, at(3));

    // The database refuses what the routes refuse first, and keeps the row.
    for bad in [
        AutomodPatch {
            spam_max_messages: Some(51),
            ..AutomodPatch::default()
        },
        AutomodPatch {
            spam_window_secs: Some(0),
            ..AutomodPatch::default()
        },
        AutomodPatch {
            timeout_minutes: Some(10_081),
            ..AutomodPatch::default()
        },
    ] {
        assert!(
            store
                .update_automod_config(s.id, &bad, at(4))
                .await
                .is_err()
        );
    }
    assert_eq!(store.automod_config(s.id).await.unwrap(), Some(config));

    assert_not_found(
        store
            .update_automod_config(ServerId::new(), &first, at(5))
            .await,
    );
    store.delete_server(s.id, None).await.unwrap();
    assert_eq!(store.automod_config(s.id).await.unwrap(), None);
}

/// Adding is idempotent per (server, word) and capped per server, atomically with the
/// check; removal is exact; the words go with their server.
pub async fn automod_words_add_once_cap_and_remove(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    let other = server(store, alice.id, at(1)).await;

    let first = word(s.id, alice.id, "spam", 2);
    assert_eq!(
        store.add_automod_word(&first, 3).await.unwrap(),
        WordAddition::Added(first.clone())
    );
    let again = word(s.id, alice.id, "spam", 3);
    assert_eq!(
        store.add_automod_word(&again, 3).await.unwrap(),
        WordAddition::Existing(first.clone()),
        "the stored row, not the new one"
    );
    let second = word(s.id, alice.id, "eggs", 4);
    store.add_automod_word(&second, 3).await.unwrap();
    // Same word, another server: its own row.
    let elsewhere = word(other.id, alice.id, "spam", 5);
    assert_eq!(
        store.add_automod_word(&elsewhere, 3).await.unwrap(),
        WordAddition::Added(elsewhere.clone())
    );
    assert_eq!(
        store.automod_words(s.id).await.unwrap(),
        vec![first.clone(), second.clone()],
        "oldest first"
    );

    let third = word(s.id, alice.id, "ham", 6);
    store.add_automod_word(&third, 3).await.unwrap();
    let fourth = word(s.id, alice.id, "jam", 7);
    assert_eq!(
        store.add_automod_word(&fourth, 3).await.unwrap(),
        WordAddition::LimitReached
    );
    // At the cap, an existing word is still answered with its row.
    assert_eq!(
        store.add_automod_word(&again, 3).await.unwrap(),
        WordAddition::Existing(first.clone())
    );
    assert_eq!(store.automod_words(s.id).await.unwrap().len(), 3);

    assert!(
        !store.remove_automod_word(s.id, "SPAM").await.unwrap(),
        "exact"
    );
    assert!(store.remove_automod_word(s.id, "spam").await.unwrap());
    assert!(!store.remove_automod_word(s.id, "spam").await.unwrap());
    assert_eq!(
        store.automod_words(s.id).await.unwrap(),
        vec![second, third]
    );
    assert_eq!(
        store.automod_words(other.id).await.unwrap(),
        vec![elsewhere],
        "the other server's word stays"
    );

    assert_not_found(
        store
            .add_automod_word(&word(ServerId::new(), alice.id, "x", 8), 3)
            .await,
    );
    store.delete_server(s.id, None).await.unwrap();
    assert!(store.automod_words(s.id).await.unwrap().is_empty());
}

/// The log reads newest first, keeps only the `keep` newest rows of each server, and
/// outlives the channel and the user it names.
pub async fn automod_log_appends_trims_and_lists(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s = server(store, alice.id, at(1)).await;
    let other = server(store, alice.id, at(1)).await;
    let c = channel(store, s.id, ChannelType::Text, 2).await;
    let d = channel(store, other.id, ChannelType::Text, 2).await;

    let entries: Vec<AutomodLogEntry> = (10..14).map(|n| log(s.id, c.id, bob.id, n)).collect();
    for entry in &entries {
        store.append_automod_log(entry, 3).await.unwrap();
    }
    let elsewhere = log(other.id, d.id, bob.id, 9);
    store.append_automod_log(&elsewhere, 3).await.unwrap();

    let listed = store.automod_logs(s.id, 100).await.unwrap();
    let want: Vec<AutomodLogEntry> = entries[1..].iter().rev().cloned().collect();
    assert_eq!(listed, want, "newest first, the oldest trimmed");
    assert_eq!(
        store.automod_logs(s.id, 2).await.unwrap(),
        want[..2].to_vec()
    );
    assert_eq!(
        store.automod_logs(other.id, 100).await.unwrap(),
        vec![elsewhere]
    );

    // A row without a channel or user (a spam delete logged with no term).
    let bare = AutomodLogEntry {
        channel_id: None,
        user_id: None,
        rule_type: AutomodRule::Spam,
        action_taken: AutomodAction::Delete,
        matched_term: None,
        message_content: None,
        ..log(s.id, c.id, bob.id, 20)
    };
    store.append_automod_log(&bare, 3).await.unwrap();
    assert_eq!(store.automod_logs(s.id, 1).await.unwrap(), vec![bare]);

    store.delete_channel(c.id, None).await.unwrap();
    let after = store.automod_logs(s.id, 100).await.unwrap();
    assert_eq!(after.len(), 3);
    assert!(after.iter().all(|e| e.channel_id.is_none()));
    assert!(after.iter().skip(1).all(|e| e.user_id == Some(bob.id)));

    assert_not_found(
        store
            .append_automod_log(&log(ServerId::new(), d.id, bob.id, 30), 3)
            .await,
    );
    store.delete_server(s.id, None).await.unwrap();
    assert!(store.automod_logs(s.id, 100).await.unwrap().is_empty());
}

/// The duplicate and spam reads: one author, one channel, live messages strictly
/// after `since`, exact content.
pub async fn automod_reads_of_recent_messages(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s = server(store, alice.id, at(1)).await;
    store.add_member(s.id, bob.id, at(1)).await.unwrap();
    let c = channel(store, s.id, ChannelType::Text, 2).await;
    let d = channel(store, s.id, ChannelType::Text, 2).await;

    for (chan, author, content, n) in [
        (c.id, bob.id, "hi", 10),
        (c.id, bob.id, "hi", 20),
        (c.id, bob.id, "Hi", 21),
        (c.id, alice.id, "hi", 22),
        (d.id, bob.id, "hi", 23),
    ] {
        store
            .create_message(&message_def(chan, author, content, at(n)))
            .await
            .unwrap();
    }
    let deleted = store
        .create_message(&message_def(c.id, bob.id, "gone", at(24)))
        .await
        .unwrap();
    store.delete_message(deleted.id).await.unwrap();

    assert!(
        store
            .has_recent_duplicate(c.id, bob.id, "hi", at(19))
            .await
            .unwrap()
    );
    assert!(
        !store
            .has_recent_duplicate(c.id, bob.id, "hi", at(20))
            .await
            .unwrap(),
        "strictly after since"
    );
    assert!(
        store
            .has_recent_duplicate(c.id, bob.id, "Hi", at(20))
            .await
            .unwrap(),
        "exact content"
    );
    assert!(
        !store
            .has_recent_duplicate(c.id, bob.id, "gone", at(0))
            .await
            .unwrap(),
        "deleted messages do not count"
    );
    assert!(
        !store
            .has_recent_duplicate(c.id, bob.id, "h", at(0))
            .await
            .unwrap()
    );

    assert_eq!(
        store
            .count_recent_messages(c.id, bob.id, at(0))
            .await
            .unwrap(),
        3,
        "bob's live messages in c"
    );
    assert_eq!(
        store
            .count_recent_messages(c.id, bob.id, at(10))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .count_recent_messages(d.id, bob.id, at(0))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .count_recent_messages(c.id, alice.id, at(30))
            .await
            .unwrap(),
        0
    );
}

/// Concurrent additions: the cap admits exactly the free slots, and one word added by
/// several at once is stored once, the others answered with that row.
pub async fn automod_word_cap_holds_under_concurrency(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    for n in 0..4 {
        store
            .add_automod_word(&word(s.id, alice.id, &format!("w{n}"), 2 + n), 5)
            .await
            .unwrap();
    }
    let racers: Vec<WordFilter> = (0..6)
        .map(|n| word(s.id, alice.id, &format!("racer{n}"), 10))
        .collect();
    let outcomes =
        futures_util::future::join_all(racers.iter().map(|w| store.add_automod_word(w, 5))).await;
    let added = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(WordAddition::Added(_))))
        .count();
    let refused = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(WordAddition::LimitReached)))
        .count();
    assert_eq!((added, refused), (1, 5), "{outcomes:?}");
    assert_eq!(store.automod_words(s.id).await.unwrap().len(), 5);

    let other = server(store, alice.id, at(3)).await;
    let racers: Vec<WordFilter> = (0..6)
        .map(|_| word(other.id, alice.id, "same", 10))
        .collect();
    let outcomes =
        futures_util::future::join_all(racers.iter().map(|w| store.add_automod_word(w, 5))).await;
    let rows: Vec<WordFilter> = outcomes
        .into_iter()
        .map(|o| match o {
            Ok(WordAddition::Added(row) | WordAddition::Existing(row)) => row,
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(rows.iter().all(|r| r == &rows[0]), "one row: {rows:?}");
    assert_eq!(
        store.automod_words(other.id).await.unwrap(),
        vec![rows[0].clone()]
    );
}
