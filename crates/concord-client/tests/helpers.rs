//! The typing-state helper under virtual time, and the presence cache.

use std::{collections::BTreeMap, time::Duration};

use concord_client::{
    GatewayEvent,
    presence::PresenceCache,
    protocol::{
        ChannelId, MessageId, PresenceUpdate, Ready, Status, Timestamp, TypingStart, User, UserId,
    },
    typing::{TYPING_TTL, TypingState},
};

fn typing(channel: ChannelId, user: UserId) -> GatewayEvent {
    GatewayEvent::TypingStart(TypingStart {
        user_id: user,
        username: Some("someone".into()),
        channel_id: channel,
        timestamp: "2026-01-01T00:00:00.000000000+00:00".into(),
    })
}

fn message(channel: ChannelId, author: UserId) -> GatewayEvent {
    GatewayEvent::MessageCreate(Box::new(concord_client::protocol::Message {
        id: MessageId::new(),
        channel_id: channel,
        author_id: Some(author),
        content: "done typing".into(),
        reply_to: None,
        mention_user_ids: vec![],
        mention_everyone: false,
        thread_id: None,
        thread_reply_count: 0,
        edited_at: None,
        deleted: false,
        created_at: Timestamp::now(),
        pinned: false,
        pinned_by: None,
        pinned_at: None,
        poll: None,
        event: None,
    }))
}

#[tokio::test(start_paused = true)]
async fn typing_expires_ten_seconds_after_the_last_typing_start() {
    assert_eq!(TYPING_TTL, Duration::from_secs(10));
    let (general, random) = (ChannelId::new(), ChannelId::new());
    let (ann, bo) = (UserId::new(), UserId::new());
    let mut state = TypingState::new();
    state.handle(&typing(general, ann));
    tokio::time::advance(Duration::from_secs(6)).await;
    state.handle(&typing(general, bo));
    state.handle(&typing(random, ann));
    let mut both = state.typing_in(general);
    both.sort();
    let mut want = vec![ann, bo];
    want.sort();
    assert_eq!(both, want);

    // Ann's first start in general lapses at 10 s; Bo's (at 6 s) holds until 16 s.
    tokio::time::advance(Duration::from_millis(3_999)).await;
    assert!(state.is_typing(general, ann));
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(!state.is_typing(general, ann));
    assert_eq!(state.typing_in(general), vec![bo]);
    assert!(state.is_typing(random, ann), "another channel is separate");

    // A new start extends: Bo types again at 10 s, so holds until 20 s.
    state.handle(&typing(general, bo));
    tokio::time::advance(Duration::from_secs(9)).await;
    assert!(state.is_typing(general, bo));
    // Their message ends it at once.
    state.handle(&message(general, bo));
    assert!(!state.is_typing(general, bo));
    assert!(state.typing_in(general).is_empty());
    // Expired entries are dropped as events arrive: nothing is held for long.
    tokio::time::advance(TYPING_TTL).await;
    state.handle(&message(random, bo));
    assert!(state.is_empty(), "{state:?}");
}

fn user(status: Status) -> User {
    User {
        id: UserId::new(),
        username: "me".into(),
        email: None,
        avatar_url: None,
        bio: None,
        pronouns: None,
        status,
        custom_status: None,
        activity: None,
        created_at: Timestamp::now(),
        is_admin: false,
    }
}

#[test]
fn presence_is_seeded_by_ready_and_kept_by_presence_updates() {
    let me = user(Status::Online);
    let friend = UserId::new();
    let mut cache = PresenceCache::new();
    assert_eq!(
        cache.status(me.id),
        Status::Offline,
        "unknown users are offline"
    );
    cache.handle(&GatewayEvent::PresenceUpdate(PresenceUpdate {
        user_id: friend,
        status: Status::Dnd,
        custom_status: Some("busy".into()),
        activity: None,
    }));
    assert_eq!(cache.status(friend), Status::Dnd);
    assert_eq!(
        cache.get(friend).unwrap().custom_status.as_deref(),
        Some("busy")
    );
    // READY starts over: a fresh session knows only what it was told.
    cache.handle(&GatewayEvent::Ready(Box::new(Ready {
        user: me.clone(),
        servers: vec![],
        dm_channels: vec![],
        unread_counts: vec![],
        mention_counts: vec![],
        server_roles: BTreeMap::new(),
        channel_overrides: BTreeMap::new(),
    })));
    assert_eq!(cache.len(), 1);
    assert_eq!(cache.status(me.id), Status::Online);
    assert!(cache.get(friend).is_none());
    cache.handle(&GatewayEvent::PresenceUpdate(PresenceUpdate {
        user_id: me.id,
        status: Status::Away,
        custom_status: None,
        activity: Some("reading".into()),
    }));
    assert_eq!(cache.status(me.id), Status::Away);
    assert_eq!(
        cache.get(me.id).unwrap().activity.as_deref(),
        Some("reading")
    );
}
