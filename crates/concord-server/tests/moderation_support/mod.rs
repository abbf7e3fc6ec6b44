//! Helpers shared by the invite, moderation and Go Live tests.

#![allow(dead_code, reason = "each test crate uses a part of these")]

use concord_testkit::{Gateway, TestServer, TestUser};
use serde_json::{Value, json};

/// Gives `user` a role holding `bits` in `server_id`, as the role routes publish it.
pub(crate) async fn grant(server: &TestServer, server_id: &str, user: &TestUser, bits: i64) {
    server.grant(server_id, user, bits).await;
}

/// The next frame that is not a PRESENCE_UPDATE, as `(t, d)`.
pub(crate) async fn next(gw: &mut Gateway) -> (String, Value) {
    let frame = gw.next_non_presence().await;
    (
        frame["t"].as_str().unwrap_or_default().to_owned(),
        frame["d"].clone(),
    )
}

/// Asserts that the next frame (presence aside) is `MESSAGE_CREATE` with `content`:
/// the positive control after something `gw` must not have received.
pub(crate) async fn expect_message(gw: &mut Gateway, content: &str) {
    let (t, d) = next(gw).await;
    assert_eq!(
        t, "MESSAGE_CREATE",
        "expected the control message, got {t}: {d}"
    );
    assert_eq!(d["content"], content, "{d}");
}

/// Sends a heartbeat and reads up to its acknowledgement: every frame sent before it
/// on this connection has been handled (frames of one session are handled in order).
/// Returns the dispatches that arrived in between (presence aside).
pub(crate) async fn sync(gw: &mut Gateway) -> Vec<Value> {
    gw.send(&json!({"op": "HEARTBEAT", "t": null, "d": null}))
        .await;
    let mut seen = Vec::new();
    loop {
        let frame = gw.next_frame().await;
        if frame["op"] == "HEARTBEAT_ACK" {
            return seen;
        }
        if frame["t"] != "PRESENCE_UPDATE" {
            seen.push(frame);
        }
    }
}
