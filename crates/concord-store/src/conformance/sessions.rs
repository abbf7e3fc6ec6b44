//! Conformance cases: gateway sessions saved across a restart.

use crate::{SavedSession, Store};

use super::{at, user};

/// Saved sessions come back once, unexpired only, upserted by id; a deleted user's
/// are skipped.
pub async fn gateway_sessions_are_taken_once(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let saved = |id: &str, expires: i64| SavedSession {
        id: id.to_owned(),
        user_id: alice.id,
        expires_at: at(expires),
        state: format!("{{\"id\":\"{id}\"}}"),
    };
    let ghost = SavedSession {
        user_id: concord_protocol::UserId::new(),
        ..saved("ghost", 100)
    };
    store
        .save_gateway_sessions(&[saved("a", 100), saved("b", 5), ghost])
        .await
        .unwrap();
    // Saving again replaces.
    store
        .save_gateway_sessions(&[SavedSession {
            state: "{\"again\":true}".to_owned(),
            ..saved("a", 100)
        }])
        .await
        .unwrap();
    let taken = store.take_gateway_sessions(at(10)).await.unwrap();
    assert_eq!(
        taken,
        vec![SavedSession {
            state: "{\"again\":true}".to_owned(),
            ..saved("a", 100)
        }]
    );
    assert!(
        store
            .take_gateway_sessions(at(10))
            .await
            .unwrap()
            .is_empty(),
        "taken once; the expired one was deleted too"
    );
}
