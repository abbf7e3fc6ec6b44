//! Conformance cases: voice states.

use concord_protocol::{ChannelId, ChannelType, VoiceParticipant, VoiceState};

use super::{assert_not_found, at, channel, server, user, voice};
use crate::Store;

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
