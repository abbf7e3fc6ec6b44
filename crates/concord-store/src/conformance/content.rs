//! Conformance cases: threads, reactions, pins, polls and scheduled events.

use concord_protocol::{
    ChannelType, EventId, Message, MessageId, Poll, PollId, PollOption, PollOptionId,
    ReactionCount, ServerEvent,
};

use super::{
    assert_conflict, assert_not_found, at, channel, ids_of, message, message_def, server,
    sorted_ids, user,
};
use crate::{NewMessage, NewPoll, NewServerEvent, PollRecord, Store};

fn poll_def(question: &str, options: &[&str]) -> NewPoll {
    NewPoll {
        id: PollId::new(),
        question: question.to_owned(),
        options: options
            .iter()
            .map(|text| (PollOptionId::new(), (*text).to_owned()))
            .collect(),
    }
}

fn option_ids(poll: &NewPoll) -> Vec<PollOptionId> {
    poll.options.iter().map(|(id, _)| *id).collect()
}

/// `poll` as stored with these vote counts (in option order) and no `user_vote`.
fn poll_with(poll: &NewPoll, votes: &[i64]) -> Poll {
    Poll {
        id: poll.id,
        question: poll.question.clone(),
        options: poll
            .options
            .iter()
            .zip(votes)
            .map(|((id, text), votes)| PollOption {
                id: *id,
                text: text.clone(),
                votes: *votes,
            })
            .collect(),
        total_votes: votes.iter().sum(),
        user_vote: None,
    }
}

fn event_def(name: &str, starts_at: concord_protocol::Timestamp) -> NewServerEvent {
    NewServerEvent {
        id: EventId::new(),
        name: name.to_owned(),
        description: Some(format!("all about {name}")),
        starts_at,
    }
}

/// The message `def` describes, as stored: nothing pinned, no replies, no poll or
/// event.
fn as_stored(def: &NewMessage) -> Message {
    Message {
        id: def.id,
        channel_id: def.channel_id,
        author_id: Some(def.author_id),
        content: def.content.clone(),
        reply_to: def.reply_to,
        mention_user_ids: def.mention_user_ids.clone(),
        mention_everyone: def.mention_everyone,
        thread_id: def.thread_id,
        thread_reply_count: 0,
        edited_at: None,
        deleted: false,
        created_at: def.created_at,
        pinned: false,
        pinned_by: None,
        pinned_at: None,
        poll: None,
        event: None,
    }
}

async fn reply(store: &dyn Store, root: &Message, n: i64) -> Message {
    let mut def = message_def(root.channel_id, root.author_id.unwrap(), "re", at(n));
    def.thread_id = Some(root.id);
    store.create_message(&def).await.expect("create reply")
}

// ---- threads ----

/// Live replies only, oldest first by (created_at, id); the cursor pages forward and
/// must be a reply of this thread.
pub async fn thread_replies_page_forward(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    let c = channel(store, s.id, ChannelType::Text, 1).await;
    let root = message(store, c.id, alice.id, 1).await;
    let other_root = message(store, c.id, alice.id, 2).await;
    let ids = sorted_ids::<concord_protocol::marker::Message>(5);
    let times = [3, 4, 4, 5, 6];
    for (id, n) in ids.iter().zip(times) {
        let mut def = message_def(c.id, alice.id, "re", at(n));
        def.id = *id;
        def.thread_id = Some(root.id);
        store.create_message(&def).await.unwrap();
    }
    store.delete_message(ids[3]).await.unwrap();
    let elsewhere = reply(store, &other_root, 3).await;
    let (r0, r1, r2, r3, r4) = (ids[0], ids[1], ids[2], ids[3], ids[4]);

    let page = |after: Option<MessageId>, limit: i64| async move {
        ids_of(&store.thread_replies(root.id, after, limit).await.unwrap())
    };
    assert_eq!(page(None, 50).await, vec![r0, r1, r2, r4]);
    assert_eq!(page(None, 2).await, vec![r0, r1]);
    assert_eq!(page(Some(r0), 50).await, vec![r1, r2, r4]);
    assert_eq!(page(Some(r1), 1).await, vec![r2], "same time: by id");
    // A deleted reply still marks its place.
    assert_eq!(page(Some(r3), 50).await, vec![r4]);
    assert_eq!(page(Some(r4), 50).await, Vec::<MessageId>::new());
    for foreign in [elsewhere.id, root.id, MessageId::new()] {
        assert_eq!(page(Some(foreign), 50).await, Vec::<MessageId>::new());
    }
    assert!(page(None, 0).await.is_empty());

    let first = store.thread_replies(root.id, None, 1).await.unwrap();
    assert_eq!(first[0], store.message(r0).await.unwrap().unwrap());
    assert_eq!(first[0].thread_id, Some(root.id));
}

// ---- reactions ----

/// Adding twice adds once; removing what is not there is false; counts per emoji in
/// first-use order with the viewer's own flag.
pub async fn reactions_add_once_and_count(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s = server(store, alice.id, at(1)).await;
    let c = channel(store, s.id, ChannelType::Text, 1).await;
    let m = message(store, c.id, alice.id, 1).await;
    let other = message(store, c.id, alice.id, 2).await;

    assert!(store.add_reaction(m.id, bob.id, "👍", at(2)).await.unwrap());
    assert!(!store.add_reaction(m.id, bob.id, "👍", at(3)).await.unwrap());
    assert!(
        store
            .add_reaction(m.id, alice.id, "🎉", at(3))
            .await
            .unwrap()
    );
    assert!(
        store
            .add_reaction(m.id, alice.id, "👍", at(4))
            .await
            .unwrap()
    );
    // Same time as 🎉's first use: the earlier insert comes first.
    assert!(
        store
            .add_reaction(m.id, bob.id, ":party:", at(3))
            .await
            .unwrap()
    );
    assert!(
        store
            .add_reaction(other.id, bob.id, "x", at(1))
            .await
            .unwrap()
    );

    let count = |emoji: &str, count: i64, me: bool| ReactionCount {
        emoji: emoji.to_owned(),
        count,
        me,
    };
    assert_eq!(
        store.reactions(m.id, alice.id).await.unwrap(),
        vec![
            count("👍", 2, true),
            count("🎉", 1, true),
            count(":party:", 1, false)
        ]
    );
    assert_eq!(
        store.reactions(m.id, bob.id).await.unwrap(),
        vec![
            count("👍", 2, true),
            count("🎉", 1, false),
            count(":party:", 1, true)
        ]
    );

    assert!(store.remove_reaction(m.id, bob.id, "👍").await.unwrap());
    assert!(!store.remove_reaction(m.id, bob.id, "👍").await.unwrap());
    assert!(!store.remove_reaction(m.id, bob.id, "🎉").await.unwrap());
    // 👍's first use is now alice's, the latest of the three.
    assert_eq!(
        store.reactions(m.id, bob.id).await.unwrap(),
        vec![
            count("🎉", 1, false),
            count(":party:", 1, true),
            count("👍", 1, false)
        ]
    );
    assert!(
        store
            .reactions(MessageId::new(), bob.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_not_found(
        store
            .add_reaction(MessageId::new(), bob.id, "👍", at(5))
            .await,
    );
    assert_not_found(
        store
            .add_reaction(m.id, concord_protocol::UserId::new(), "👍", at(5))
            .await,
    );
}

// ---- pins ----

/// Pinning changes a live message once; the first pin's fields stay; unpinning clears
/// them; the pinned list is live pinned messages of the channel, newest pin first.
pub async fn pins_change_once_and_list(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s = server(store, alice.id, at(1)).await;
    let c = channel(store, s.id, ChannelType::Text, 1).await;
    let elsewhere = channel(store, s.id, ChannelType::Text, 2).await;
    let first = message(store, c.id, alice.id, 1).await;
    let second = message(store, c.id, alice.id, 2).await;
    let gone = message(store, c.id, alice.id, 3).await;
    let foreign = message(store, elsewhere.id, alice.id, 4).await;
    let root_reply = reply(store, &first, 5).await;

    assert!(store.pin_message(first.id, bob.id, at(10)).await.unwrap());
    assert!(!store.pin_message(first.id, alice.id, at(11)).await.unwrap());
    let pinned = store.message(first.id).await.unwrap().unwrap();
    assert!(pinned.pinned);
    assert_eq!(pinned.pinned_by, Some(bob.id));
    assert_eq!(pinned.pinned_at, Some(at(10)));

    assert!(
        store
            .pin_message(second.id, alice.id, at(12))
            .await
            .unwrap()
    );
    assert!(
        store
            .pin_message(root_reply.id, alice.id, at(13))
            .await
            .unwrap()
    );
    assert!(store.pin_message(gone.id, alice.id, at(14)).await.unwrap());
    assert!(
        store
            .pin_message(foreign.id, alice.id, at(15))
            .await
            .unwrap()
    );
    store.delete_message(gone.id).await.unwrap();
    assert!(
        !store
            .pin_message(MessageId::new(), alice.id, at(16))
            .await
            .unwrap()
    );

    let listed = store.pinned_messages(c.id).await.unwrap();
    assert_eq!(ids_of(&listed), vec![root_reply.id, second.id, first.id]);
    assert_eq!(listed[2], store.message(first.id).await.unwrap().unwrap());
    assert_eq!(
        ids_of(&store.pinned_messages(elsewhere.id).await.unwrap()),
        vec![foreign.id]
    );

    assert!(store.unpin_message(second.id).await.unwrap());
    assert!(!store.unpin_message(second.id).await.unwrap());
    assert!(!store.unpin_message(MessageId::new()).await.unwrap());
    let unpinned = store.message(second.id).await.unwrap().unwrap();
    assert!(!unpinned.pinned);
    assert_eq!((unpinned.pinned_by, unpinned.pinned_at), (None, None));
    assert_eq!(
        ids_of(&store.pinned_messages(c.id).await.unwrap()),
        vec![root_reply.id, first.id]
    );
    // A deleted message cannot be pinned anew.
    let deleted_now = message(store, c.id, alice.id, 6).await;
    store.delete_message(deleted_now.id).await.unwrap();
    assert!(
        !store
            .pin_message(deleted_now.id, alice.id, at(17))
            .await
            .unwrap()
    );
}

// ---- polls ----

/// A poll is created with its message, and every read of that message carries it
/// with its counts; `poll` reads it with where it lives.
pub async fn create_poll_and_read_it_back(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    let c = channel(store, s.id, ChannelType::Text, 1).await;
    let def = message_def(c.id, alice.id, "📊 **Poll**: Lunch?", at(2));
    let poll = poll_def("Lunch?", &["pizza", "soup", "salad"]);

    let created = store.create_poll(&def, &poll).await.unwrap();
    let expected = Message {
        poll: Some(poll_with(&poll, &[0, 0, 0])),
        ..as_stored(&def)
    };
    assert_eq!(created, expected);
    assert_eq!(store.message(def.id).await.unwrap(), Some(expected.clone()));
    assert_eq!(
        store.messages(c.id, None, 50).await.unwrap(),
        vec![expected]
    );
    assert_eq!(
        store.poll(poll.id).await.unwrap(),
        Some(PollRecord {
            poll: poll_with(&poll, &[0, 0, 0]),
            message_id: def.id,
            channel_id: c.id,
        })
    );
    assert_eq!(store.poll(PollId::new()).await.unwrap(), None);
    assert!(store.poll_ballots(poll.id).await.unwrap().is_empty());
}

/// One vote per user: a second vote replaces the first, the same vote again changes
/// nothing; counts, ballots and a user's choices follow.
pub async fn votes_replace_and_count(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let carol = user(store, "carol").await;
    let s = server(store, alice.id, at(1)).await;
    let c = channel(store, s.id, ChannelType::Text, 1).await;
    let poll = poll_def("Lunch?", &["pizza", "soup"]);
    let def = message_def(c.id, alice.id, "📊 **Poll**: Lunch?", at(2));
    store.create_poll(&def, &poll).await.unwrap();
    let second = poll_def("Dinner?", &["curry", "ramen"]);
    store
        .create_poll(&message_def(c.id, alice.id, "p", at(3)), &second)
        .await
        .unwrap();
    let [pizza, soup] = [option_ids(&poll)[0], option_ids(&poll)[1]];
    let curry = option_ids(&second)[0];

    let voted = store
        .cast_vote(poll.id, bob.id, pizza, at(4))
        .await
        .unwrap();
    assert!(voted.changed);
    assert_eq!(voted.poll.poll, poll_with(&poll, &[1, 0]));
    assert_eq!(voted.ballots, vec![(bob.id, pizza)]);

    let voted = store
        .cast_vote(poll.id, carol.id, pizza, at(5))
        .await
        .unwrap();
    assert!(voted.changed);
    assert_eq!(voted.poll.poll, poll_with(&poll, &[2, 0]));

    let again = store
        .cast_vote(poll.id, bob.id, pizza, at(6))
        .await
        .unwrap();
    assert!(!again.changed, "the same vote again changes nothing");
    assert_eq!(again.poll.poll, poll_with(&poll, &[2, 0]));

    let switched = store.cast_vote(poll.id, bob.id, soup, at(7)).await.unwrap();
    assert!(switched.changed);
    assert_eq!(switched.poll.poll, poll_with(&poll, &[1, 1]));
    let mut ballots = switched.ballots.clone();
    ballots.sort();
    let mut expected = vec![(bob.id, soup), (carol.id, pizza)];
    expected.sort();
    assert_eq!(ballots, expected);
    let mut read = store.poll_ballots(poll.id).await.unwrap();
    read.sort();
    assert_eq!(read, expected);

    store
        .cast_vote(second.id, bob.id, curry, at(8))
        .await
        .unwrap();
    let mut mine = store
        .user_votes(bob.id, &[poll.id, second.id, PollId::new()])
        .await
        .unwrap();
    mine.sort();
    let mut want = vec![(poll.id, soup), (second.id, curry)];
    want.sort();
    assert_eq!(mine, want);
    assert!(
        store
            .user_votes(alice.id, &[poll.id])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.user_votes(bob.id, &[]).await.unwrap().is_empty());

    // Every read of the message carries the counts (and nobody's vote).
    let message = store.message(def.id).await.unwrap().unwrap();
    assert_eq!(message.poll, Some(poll_with(&poll, &[1, 1])));
}

/// A vote for an option of another poll, in a missing poll, or by a missing user is
/// `NotFound` and changes nothing.
pub async fn refused_votes_change_nothing(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s = server(store, alice.id, at(1)).await;
    let c = channel(store, s.id, ChannelType::Text, 1).await;
    let poll = poll_def("Lunch?", &["pizza", "soup"]);
    store
        .create_poll(&message_def(c.id, alice.id, "p", at(2)), &poll)
        .await
        .unwrap();
    let other = poll_def("Dinner?", &["curry", "ramen"]);
    store
        .create_poll(&message_def(c.id, alice.id, "p", at(3)), &other)
        .await
        .unwrap();
    let pizza = option_ids(&poll)[0];
    store
        .cast_vote(poll.id, bob.id, pizza, at(4))
        .await
        .unwrap();

    let foreign = option_ids(&other)[0];
    assert_not_found(store.cast_vote(poll.id, bob.id, foreign, at(5)).await);
    assert_not_found(store.cast_vote(poll.id, alice.id, foreign, at(5)).await);
    assert_not_found(store.cast_vote(PollId::new(), bob.id, pizza, at(5)).await);
    assert_not_found(
        store
            .cast_vote(poll.id, concord_protocol::UserId::new(), pizza, at(5))
            .await,
    );
    assert_eq!(
        store.poll_ballots(poll.id).await.unwrap(),
        vec![(bob.id, pizza)]
    );
    assert!(store.poll_ballots(other.id).await.unwrap().is_empty());
}

/// A poll or event that cannot be stored leaves no message behind, and the other
/// way round.
pub async fn content_creation_is_atomic(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    let c = channel(store, s.id, ChannelType::Text, 1).await;
    let poll = poll_def("Lunch?", &["pizza", "soup"]);
    store
        .create_poll(&message_def(c.id, alice.id, "p", at(2)), &poll)
        .await
        .unwrap();

    // The poll id is taken: the new message must not stay.
    let def = message_def(c.id, alice.id, "p", at(3));
    let mut reused = poll_def("Again?", &["yes", "no"]);
    reused.id = poll.id;
    assert_conflict(store.create_poll(&def, &reused).await);
    assert_eq!(store.message(def.id).await.unwrap(), None);
    // An option id used twice fails half-way through the options.
    let def = message_def(c.id, alice.id, "p", at(3));
    let mut twice = poll_def("Twice?", &["a", "b"]);
    twice.options[1].0 = twice.options[0].0;
    assert_conflict(store.create_poll(&def, &twice).await);
    assert_eq!(store.message(def.id).await.unwrap(), None);
    assert_eq!(store.poll(twice.id).await.unwrap(), None);
    // The message id is taken: no poll is created.
    let taken = message(store, c.id, alice.id, 4).await;
    let def = NewMessage {
        id: taken.id,
        ..message_def(c.id, alice.id, "p", at(5))
    };
    let fresh = poll_def("Fresh?", &["a", "b"]);
    assert_conflict(store.create_poll(&def, &fresh).await);
    assert_eq!(store.poll(fresh.id).await.unwrap(), None);
    // A poll in a missing channel.
    let def = message_def(concord_protocol::ChannelId::new(), alice.id, "p", at(5));
    assert_not_found(
        store
            .create_poll(&def, &poll_def("Where?", &["a", "b"]))
            .await,
    );

    let event = event_def("Launch", at(100));
    store
        .create_server_event(&message_def(c.id, alice.id, "e", at(6)), &event)
        .await
        .unwrap();
    let def = message_def(c.id, alice.id, "e", at(7));
    let mut reused = event_def("Again", at(101));
    reused.id = event.id;
    assert_conflict(store.create_server_event(&def, &reused).await);
    assert_eq!(store.message(def.id).await.unwrap(), None);
    assert_eq!(
        store
            .upcoming_server_events(s.id, &[c.id], at(0), 50)
            .await
            .unwrap()
            .len(),
        1
    );
}

// ---- scheduled events ----

/// An event is created with its message, which carries it on every read; upcoming
/// events are those of the server in the given channels after the given time,
/// soonest first, at most `limit`.
pub async fn server_events_create_and_list_upcoming(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    let other_server = server(store, alice.id, at(1)).await;
    let c = channel(store, s.id, ChannelType::Text, 1).await;
    let hidden = channel(store, s.id, ChannelType::Text, 2).await;
    let foreign = channel(store, other_server.id, ChannelType::Text, 3).await;

    let def = message_def(c.id, alice.id, "📅 **Event**: Launch", at(2));
    let mut launch = event_def("Launch", at(50));
    launch.description = None;
    let created = store.create_server_event(&def, &launch).await.unwrap();
    let launch_dto = ServerEvent {
        id: launch.id,
        name: "Launch".to_owned(),
        description: None,
        starts_at: at(50),
        created_by: Some(alice.id),
        created_at: at(2),
    };
    let expected = Message {
        event: Some(launch_dto.clone()),
        ..as_stored(&def)
    };
    assert_eq!(created, expected);
    assert_eq!(store.message(def.id).await.unwrap(), Some(expected.clone()));
    assert_eq!(
        store.messages(c.id, None, 50).await.unwrap(),
        vec![expected]
    );

    let ids = sorted_ids::<concord_protocol::marker::Event>(2);
    let mut upcoming = Vec::new();
    for (n, (id, starts)) in ids.iter().zip([40, 40]).enumerate() {
        let mut e = event_def("Tie", at(starts));
        e.id = *id;
        let n = i64::try_from(n).unwrap();
        store
            .create_server_event(&message_def(c.id, alice.id, "e", at(3 + n)), &e)
            .await
            .unwrap();
        upcoming.push(e.id);
    }
    let past = event_def("Past", at(5));
    store
        .create_server_event(&message_def(c.id, alice.id, "e", at(6)), &past)
        .await
        .unwrap();
    let secret = event_def("Secret", at(30));
    store
        .create_server_event(&message_def(hidden.id, alice.id, "e", at(7)), &secret)
        .await
        .unwrap();
    let theirs = event_def("Theirs", at(30));
    store
        .create_server_event(&message_def(foreign.id, alice.id, "e", at(8)), &theirs)
        .await
        .unwrap();

    let listed = |channels: Vec<concord_protocol::ChannelId>, limit: i64| async move {
        store
            .upcoming_server_events(s.id, &channels, at(10), limit)
            .await
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        listed(vec![c.id], 50).await,
        vec![upcoming[0], upcoming[1], launch.id]
    );
    assert_eq!(
        listed(vec![c.id, hidden.id], 50).await,
        vec![secret.id, upcoming[0], upcoming[1], launch.id]
    );
    assert_eq!(
        listed(vec![c.id, hidden.id], 2).await,
        vec![secret.id, upcoming[0]]
    );
    assert!(listed(vec![], 50).await.is_empty());
    // Another server's channel named here lists nothing of it.
    assert!(listed(vec![foreign.id], 50).await.is_empty());
    // Exactly at the start is not "after".
    let at_start = store
        .upcoming_server_events(s.id, &[c.id], at(50), 50)
        .await
        .unwrap();
    assert!(at_start.is_empty());
    let full = store
        .upcoming_server_events(s.id, &[c.id], at(45), 50)
        .await
        .unwrap();
    assert_eq!(full, vec![launch_dto]);
}

// ---- cascades ----

/// Deleting a channel takes its reactions, polls, votes and events; deleting a
/// server takes those of all its channels.
pub async fn content_goes_with_its_channel_and_server(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s = server(store, alice.id, at(1)).await;
    let c = channel(store, s.id, ChannelType::Text, 1).await;
    let kept = channel(store, s.id, ChannelType::Text, 2).await;
    let mut made = Vec::new();
    for ch in [c.id, kept.id] {
        let m = message(store, ch, alice.id, 2).await;
        store.add_reaction(m.id, bob.id, "👍", at(3)).await.unwrap();
        let poll = poll_def("Q?", &["a", "b"]);
        store
            .create_poll(&message_def(ch, alice.id, "p", at(4)), &poll)
            .await
            .unwrap();
        store
            .cast_vote(poll.id, bob.id, option_ids(&poll)[0], at(5))
            .await
            .unwrap();
        let event = event_def("E", at(100));
        store
            .create_server_event(&message_def(ch, alice.id, "e", at(6)), &event)
            .await
            .unwrap();
        made.push((m, poll));
    }
    let upcoming = |channels: Vec<concord_protocol::ChannelId>| async move {
        store
            .upcoming_server_events(s.id, &channels, at(0), 50)
            .await
            .unwrap()
            .len()
    };

    assert!(store.delete_channel(c.id, None).await.unwrap());
    let (gone_message, gone_poll) = &made[0];
    assert!(
        store
            .reactions(gone_message.id, bob.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.poll(gone_poll.id).await.unwrap(), None);
    assert!(store.poll_ballots(gone_poll.id).await.unwrap().is_empty());
    assert_eq!(upcoming(vec![c.id, kept.id]).await, 1);
    let (kept_message, kept_poll) = &made[1];
    assert_eq!(
        store
            .reactions(kept_message.id, bob.id)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(store.poll_ballots(kept_poll.id).await.unwrap().len(), 1);

    assert!(store.delete_server(s.id, None).await.unwrap().is_some());
    assert!(
        store
            .reactions(kept_message.id, bob.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.poll(kept_poll.id).await.unwrap(), None);
    assert!(
        store
            .user_votes(bob.id, &[kept_poll.id])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(upcoming(vec![kept.id]).await, 0);
}
