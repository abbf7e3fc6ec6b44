//! Conformance cases: message search (issue 18 part B).

use concord_protocol::{ChannelId, ChannelType, MessageId, UserId};

use super::{at, channel, message_def, server, sorted_ids, user};
use crate::{MessageSearch, SearchResults, Store};

fn search(text: &str, channels: &[ChannelId], limit: i64) -> MessageSearch {
    MessageSearch {
        text: text.to_owned(),
        channels: channels.to_vec(),
        channel: None,
        before: None,
        limit,
    }
}

async fn post(
    store: &dyn Store,
    channel: ChannelId,
    author: UserId,
    content: &str,
    n: i64,
) -> MessageId {
    let def = message_def(channel, author, content, at(n));
    store.create_message(&def).await.expect("create message");
    def.id
}

fn ids(results: &SearchResults) -> Vec<MessageId> {
    results.hits.iter().map(|h| h.id).collect()
}

async fn found(store: &dyn Store, query: &MessageSearch) -> Vec<MessageId> {
    ids(&store.search_messages(query).await.unwrap())
}

/// English stemming both ways (`run` finds `running` and `runs`), every word required,
/// stop words ignored (a query of stop words only finds nothing), and what the user
/// types is never FTS syntax. A hit carries its author and the places of its matched
/// words; thread replies are found too.
pub async fn search_stems_and_ignores_stop_words(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    let c = channel(store, s.id, ChannelType::Text, 1).await;
    let running = post(store, c.id, alice.id, "I was Running home", 2).await;
    let runs = post(store, c.id, alice.id, "she runs fast", 3).await;
    let cat = post(store, c.id, alice.id, "the cat sat", 4).await;
    let mut reply = message_def(c.id, alice.id, "a cat runs", at(5));
    reply.thread_id = Some(cat);
    store.create_message(&reply).await.unwrap();
    let channels = [c.id];

    let hits = store
        .search_messages(&search("run", &channels, 10))
        .await
        .unwrap();
    let mut got = ids(&hits);
    got.sort();
    let mut want = vec![running, runs, reply.id];
    want.sort();
    assert_eq!(got, want);
    assert_eq!(hits.total, 3);
    assert!(!hits.has_more);

    // Case, inflection and punctuation do not matter; every word must be there.
    assert_eq!(
        found(store, &search("RUNNING, home!", &channels, 10)).await,
        [running]
    );
    assert_eq!(
        found(store, &search("cats running", &channels, 10)).await,
        [reply.id]
    );
    // Stop words are dropped, so they neither narrow nor match.
    assert_eq!(
        found(store, &search("the home", &channels, 10)).await,
        [running]
    );
    let stop_only = store
        .search_messages(&search("the was I", &channels, 10))
        .await
        .unwrap();
    assert!(stop_only.hits.is_empty());
    assert_eq!(stop_only.total, 0);
    // FTS5 syntax is read as words: `OR` is a stop word, `*`, `"`, `(` separate.
    assert!(
        found(store, &search("home OR fast", &channels, 10))
            .await
            .is_empty()
    );
    assert_eq!(
        found(store, &search("\"sat\" (cat*)", &channels, 10)).await,
        [cat]
    );
    assert!(
        found(store, &search("\" * ( ^", &channels, 10))
            .await
            .is_empty()
    );

    let hit = &store
        .search_messages(&search("running", &channels, 10))
        .await
        .unwrap()
        .hits;
    let hit = hit.iter().find(|h| h.id == running).expect("found");
    assert_eq!(hit.channel_id, c.id);
    assert_eq!(hit.author_id, Some(alice.id));
    assert_eq!(hit.author_username.as_deref(), Some("alice"));
    assert_eq!(hit.content, "I was Running home");
    assert_eq!(hit.created_at, at(2));
    assert!(hit.rank > 0.0, "{}", hit.rank);
    assert_eq!(hit.matches, vec![6..13]);
}

/// Deleted messages are not found and not counted; an edit replaces what a message is
/// found by; a channel delete takes its messages out.
pub async fn search_follows_edits_and_deletes(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    let c = channel(store, s.id, ChannelType::Text, 1).await;
    let kept = post(store, c.id, alice.id, "apple pie", 2).await;
    let gone = post(store, c.id, alice.id, "apple tart", 3).await;
    let edited = post(store, c.id, alice.id, "apple crumble", 4).await;
    let channels = [c.id];
    let before = store
        .search_messages(&search("apple", &channels, 10))
        .await
        .unwrap();
    assert_eq!(before.total, 3);

    assert!(store.delete_message(gone).await.unwrap());
    store
        .edit_message(edited, "banana crumble", &[], false, at(5))
        .await
        .unwrap()
        .expect("edited");
    let after = store
        .search_messages(&search("apple", &channels, 10))
        .await
        .unwrap();
    assert_eq!(ids(&after), [kept]);
    assert_eq!(after.total, 1);
    assert!(
        found(store, &search("tart", &channels, 10))
            .await
            .is_empty()
    );
    assert_eq!(
        found(store, &search("banana", &channels, 10)).await,
        [edited]
    );
    // Edited twice: the old words go each time.
    store
        .edit_message(edited, "cherry crumble", &[], false, at(6))
        .await
        .unwrap()
        .expect("edited");
    assert!(
        found(store, &search("banana", &channels, 10))
            .await
            .is_empty()
    );
    assert_eq!(
        found(store, &search("crumble", &channels, 10)).await,
        [edited]
    );

    let other = channel(store, s.id, ChannelType::Text, 7).await;
    let doomed = post(store, other.id, alice.id, "apple juice", 8).await;
    assert_eq!(
        found(store, &search("juice", &[c.id, other.id], 10)).await,
        [doomed]
    );
    assert!(store.delete_channel(other.id, None).await.unwrap());
    assert!(
        found(store, &search("juice", &[c.id, other.id], 10))
            .await
            .is_empty()
    );
    // The index still answers for the rest.
    assert_eq!(found(store, &search("pie", &channels, 10)).await, [kept]);
}

/// Only the given channels are searched, hits and total alike; a channel filter
/// outside them finds nothing.
pub async fn search_is_scoped_to_the_given_channels(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    let open = channel(store, s.id, ChannelType::Text, 1).await;
    let hidden = channel(store, s.id, ChannelType::Text, 2).await;
    let elsewhere = server(store, alice.id, at(3)).await;
    let foreign = channel(store, elsewhere.id, ChannelType::Text, 3).await;
    let seen = post(store, open.id, alice.id, "secret plans", 4).await;
    let unseen = post(store, hidden.id, alice.id, "secret plans", 5).await;
    let far = post(store, foreign.id, alice.id, "secret plans", 6).await;

    let visible = store
        .search_messages(&search("secret", &[open.id], 10))
        .await
        .unwrap();
    assert_eq!(ids(&visible), [seen]);
    assert_eq!(visible.total, 1);
    // Positive control: with both channels, both are found.
    let both = store
        .search_messages(&search("secret", &[open.id, hidden.id], 10))
        .await
        .unwrap();
    assert_eq!(ids(&both), [unseen, seen]);
    assert_eq!(both.total, 2);

    let only = MessageSearch {
        channel: Some(hidden.id),
        ..search("secret", &[open.id, hidden.id], 10)
    };
    assert_eq!(found(store, &only).await, [unseen]);
    let outside = MessageSearch {
        channel: Some(hidden.id),
        ..search("secret", &[open.id], 10)
    };
    let outside = store.search_messages(&outside).await.unwrap();
    assert!(outside.hits.is_empty());
    assert_eq!(outside.total, 0);
    let outside = MessageSearch {
        channel: Some(foreign.id),
        ..search("secret", &[open.id], 10)
    };
    assert!(found(store, &outside).await.is_empty());
    assert_eq!(
        found(store, &search("secret", &[foreign.id], 10)).await,
        [far]
    );
    assert!(found(store, &search("secret", &[], 10)).await.is_empty());
}

/// Hits come best first, then newest first by (`created_at`, `id`); pages after a
/// cursor message neither skip nor repeat a hit, among equal ranks and equal times
/// too, and `total` ignores the cursor. A cursor that is not a hit of this search
/// gives an empty page.
pub async fn search_pages_by_keyset(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    let c = channel(store, s.id, ChannelType::Text, 1).await;
    // Seven messages of equal rank (same text); times 2, 2, 2, 3, 3, 4, 5; ids in
    // ascending order so that the tie-breaks are known.
    let times = [2, 2, 2, 3, 3, 4, 5];
    let same: Vec<MessageId> = sorted_ids(times.len());
    for (id, n) in same.iter().zip(times) {
        let mut def = message_def(c.id, alice.id, "weekly sync notes", at(n));
        def.id = *id;
        store.create_message(&def).await.unwrap();
    }
    // One better hit (the word more often, in a short text), older than all.
    let best = post(store, c.id, alice.id, "sync sync", 1).await;
    let noise = post(store, c.id, alice.id, "unrelated", 9).await;

    let mut expected = vec![best];
    let mut by_time: Vec<(i64, MessageId)> = times.iter().copied().zip(same.clone()).collect();
    by_time.sort_by(|a, b| b.cmp(a));
    expected.extend(by_time.iter().map(|(_, id)| *id));

    let everything = store
        .search_messages(&search("sync", &[c.id], 100))
        .await
        .unwrap();
    assert_eq!(ids(&everything), expected);
    assert!(everything.hits.windows(2).all(|w| w[0].rank >= w[1].rank));
    assert!(everything.hits[0].rank > everything.hits[1].rank);
    assert_eq!(everything.hits[1].rank, everything.hits[7].rank);

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .search_messages(&MessageSearch {
                before: cursor,
                ..search("sync", &[c.id], 3)
            })
            .await
            .unwrap();
        assert_eq!(page.total, 8);
        assert!(page.hits.len() <= 3);
        seen.extend(ids(&page));
        if !page.has_more {
            break;
        }
        assert_eq!(page.hits.len(), 3);
        cursor = page.hits.last().map(|h| h.id);
    }
    assert_eq!(seen, expected);

    // Cursors that are not hits of this search: unknown, not matching, deleted.
    for bad in [MessageId::new(), noise] {
        let page = store
            .search_messages(&MessageSearch {
                before: Some(bad),
                ..search("sync", &[c.id], 3)
            })
            .await
            .unwrap();
        assert!(page.hits.is_empty());
        assert!(!page.has_more);
        assert_eq!(page.total, 8);
    }
    store.delete_message(same[0]).await.unwrap();
    let page = store
        .search_messages(&MessageSearch {
            before: Some(same[0]),
            ..search("sync", &[c.id], 3)
        })
        .await
        .unwrap();
    assert!(page.hits.is_empty());
    assert_eq!(page.total, 7);
}

/// Batch indexing: every call handles at most `limit` waiting messages, the calls come
/// to 0, and then (as before any) a search finds exactly the live messages.
pub async fn search_index_flushes_in_bounded_batches(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let guild = server(store, alice.id, at(1)).await;
    let general = channel(store, guild.id, ChannelType::Text, 2).await;
    let mut posted = Vec::new();
    for n in 0..5 {
        let message = store
            .create_message(&message_def(
                general.id,
                alice.id,
                "granite quarry",
                at(10 + n),
            ))
            .await
            .unwrap();
        posted.push(message.id);
    }
    assert!(store.delete_message(posted[1]).await.unwrap());
    let mut rounds = 0;
    loop {
        let done = store.flush_search_index(2).await.unwrap();
        assert!(done <= 2, "{done}");
        if done == 0 {
            break;
        }
        rounds += 1;
        assert!(rounds <= 5, "the batches come to an end");
    }
    let found = store
        .search_messages(&MessageSearch {
            text: "granite".to_owned(),
            channels: vec![general.id],
            channel: None,
            before: None,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(found.total, 4);
    let mut ids: Vec<_> = found.hits.iter().map(|h| h.id).collect();
    ids.sort();
    let mut live: Vec<_> = posted
        .iter()
        .copied()
        .filter(|id| *id != posted[1])
        .collect();
    live.sort();
    assert_eq!(ids, live);
}
