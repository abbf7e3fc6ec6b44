//! Conformance cases: Go Live sessions.

use concord_protocol::{
    ChannelId, ChannelType, GoLiveInfo, GoLiveQuality, GoLiveSession, Timestamp, UserId,
};

use super::{at, channel, server, user, voice};
use crate::{GoLiveStart, Store};

fn live(
    channel: ChannelId,
    broadcaster: UserId,
    quality: GoLiveQuality,
    started: Timestamp,
) -> GoLiveInfo {
    GoLiveInfo {
        channel_id: channel,
        session: GoLiveSession {
            broadcaster_id: broadcaster,
            quality,
            started_at: started,
        },
    }
}

/// Starting needs the broadcaster in that voice channel and nobody else live there;
/// the broadcaster may restart; only the broadcaster stops it.
pub async fn go_live_needs_the_broadcaster_in_the_channel(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s = server(store, alice.id, at(1)).await;
    let lounge = channel(store, s.id, ChannelType::Voice, 1).await;
    let stage = channel(store, s.id, ChannelType::Voice, 2).await;

    let first = live(lounge.id, alice.id, GoLiveQuality::Medium, at(10));
    assert_eq!(
        store.start_go_live(&first).await.unwrap(),
        GoLiveStart::NotInChannel
    );
    store
        .put_voice_state(&voice(alice.id, stage.id, at(5)))
        .await
        .unwrap();
    assert_eq!(
        store.start_go_live(&first).await.unwrap(),
        GoLiveStart::NotInChannel
    );
    assert_eq!(store.go_live(lounge.id).await.unwrap(), None);

    store
        .put_voice_state(&voice(alice.id, lounge.id, at(6)))
        .await
        .unwrap();
    assert_eq!(
        store.start_go_live(&first).await.unwrap(),
        GoLiveStart::Started
    );
    assert_eq!(store.go_live(lounge.id).await.unwrap(), Some(first.clone()));

    let restarted = live(lounge.id, alice.id, GoLiveQuality::High, at(20));
    assert_eq!(
        store.start_go_live(&restarted).await.unwrap(),
        GoLiveStart::Started
    );
    assert_eq!(
        store.go_live(lounge.id).await.unwrap(),
        Some(restarted.clone())
    );

    store
        .put_voice_state(&voice(bob.id, lounge.id, at(7)))
        .await
        .unwrap();
    let bobs = live(lounge.id, bob.id, GoLiveQuality::Low, at(21));
    assert_eq!(
        store.start_go_live(&bobs).await.unwrap(),
        GoLiveStart::Taken(restarted.clone())
    );
    assert!(!store.stop_go_live(lounge.id, bob.id).await.unwrap());
    assert!(!store.stop_go_live(stage.id, alice.id).await.unwrap());
    assert_eq!(store.go_live(lounge.id).await.unwrap(), Some(restarted));
    assert!(store.stop_go_live(lounge.id, alice.id).await.unwrap());
    assert!(!store.stop_go_live(lounge.id, alice.id).await.unwrap());
    assert_eq!(store.go_live(lounge.id).await.unwrap(), None);
    assert_eq!(
        store.start_go_live(&bobs).await.unwrap(),
        GoLiveStart::Started
    );
    assert_eq!(store.go_live(lounge.id).await.unwrap(), Some(bobs));
}

/// A session whose broadcaster moved or left is ended (once) by
/// `end_stale_go_live`; one whose broadcaster is still there is not. Clearing voice
/// states and deleting the channel take sessions with them.
pub async fn stale_go_live_ends_once_the_broadcaster_is_gone(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s = server(store, alice.id, at(1)).await;
    let lounge = channel(store, s.id, ChannelType::Voice, 1).await;
    let stage = channel(store, s.id, ChannelType::Voice, 2).await;
    store
        .put_voice_state(&voice(alice.id, lounge.id, at(2)))
        .await
        .unwrap();
    store
        .put_voice_state(&voice(bob.id, stage.id, at(2)))
        .await
        .unwrap();
    let alices = live(lounge.id, alice.id, GoLiveQuality::Medium, at(3));
    let bobs = live(stage.id, bob.id, GoLiveQuality::Low, at(3));
    store.start_go_live(&alices).await.unwrap();
    store.start_go_live(&bobs).await.unwrap();

    assert!(store.end_stale_go_live(alice.id).await.unwrap().is_empty());
    // A move: the old channel's session is stale.
    store
        .put_voice_state(&voice(alice.id, stage.id, at(4)))
        .await
        .unwrap();
    assert_eq!(
        store.end_stale_go_live(alice.id).await.unwrap(),
        vec![alices]
    );
    assert!(store.end_stale_go_live(alice.id).await.unwrap().is_empty());
    assert_eq!(store.go_live(lounge.id).await.unwrap(), None);
    assert_eq!(store.go_live(stage.id).await.unwrap(), Some(bobs.clone()));

    // A leave.
    store.delete_voice_state(bob.id).await.unwrap();
    assert_eq!(store.end_stale_go_live(bob.id).await.unwrap(), vec![bobs]);
    assert_eq!(store.go_live(stage.id).await.unwrap(), None);

    // Start clears every voice state and every session.
    store
        .put_voice_state(&voice(bob.id, lounge.id, at(5)))
        .await
        .unwrap();
    let again = live(lounge.id, bob.id, GoLiveQuality::High, at(6));
    store.start_go_live(&again).await.unwrap();
    store.clear_voice_states().await.unwrap();
    assert_eq!(store.go_live(lounge.id).await.unwrap(), None);

    // A deleted channel takes its session.
    store
        .put_voice_state(&voice(bob.id, lounge.id, at(7)))
        .await
        .unwrap();
    store.start_go_live(&again).await.unwrap();
    assert!(store.delete_channel(lounge.id, None).await.unwrap());
    assert_eq!(store.go_live(lounge.id).await.unwrap(), None);
    assert!(store.end_stale_go_live(bob.id).await.unwrap().is_empty());
}
