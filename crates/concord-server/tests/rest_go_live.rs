//! Go Live over real HTTP and WebSocket (`rest.md` §7.18): errors in the contract's
//! order, start and stop reaching the voice channel's viewers only, the session kept
//! in the store, and ended with GO_LIVE_STOP whenever the broadcaster leaves the
//! channel by any means (`gateway.md` D18): REST leave and move, the last gateway
//! session closing, kick, ban, and a restart.

mod moderation_support;

use concord_protocol::ChannelId;
use concord_testkit::{
    TestServer, TestUser, assert_error, assert_exact_error, assert_keys, str_of,
};
use moderation_support::{expect_message, next};
use serde_json::{Value, json};

/// alice owns "hall" with a text channel and two voice channels; bob and carol are
/// members.
struct Stage {
    server: TestServer,
    alice: TestUser,
    bob: TestUser,
    carol: TestUser,
    hall: String,
    general: String,
    talk: String,
    quiet: String,
}

async fn stage() -> Stage {
    let server = TestServer::start().await;
    let (alice, bob, carol) = (
        server.user("alice").await,
        server.user("bob").await,
        server.user("carol").await,
    );
    let hall = alice.create_server("hall").await;
    let general = alice.create_channel(&hall, "general", "text").await;
    let talk = alice.create_channel(&hall, "talk", "voice").await;
    let quiet = alice.create_channel(&hall, "quiet", "voice").await;
    bob.join(&hall).await;
    carol.join(&hall).await;
    Stage {
        server,
        alice,
        bob,
        carol,
        hall,
        general,
        talk,
        quiet,
    }
}

fn go_live(channel: &str) -> String {
    format!("/channels/{channel}/go-live")
}

/// Goes live in `channel` with `body` and returns the answer's body.
async fn start(user: &TestUser, channel: &str, body: Value) -> Value {
    let res = user.api.post(&go_live(channel), &body).await;
    assert_eq!(res.status, 201, "{}", res.text);
    res.body
}

#[tokio::test]
async fn errors_follow_the_contract_order() {
    let Stage {
        server,
        alice,
        bob,
        carol,
        general,
        talk,
        ..
    } = stage().await;
    let outsider = server.user("outsider").await;
    let unknown = go_live(&uuid::Uuid::new_v4().to_string());
    assert_exact_error(&bob.api.get(&unknown).await, 404);
    assert_exact_error(&bob.api.post(&unknown, &json!({})).await, 404);
    assert_exact_error(&bob.api.delete(&unknown).await, 404);
    assert_exact_error(&outsider.api.get(&go_live(&talk)).await, 404);
    assert_exact_error(&outsider.api.post(&go_live(&talk), &json!({})).await, 404);
    assert_exact_error(&outsider.api.delete(&go_live(&talk)).await, 404);
    assert_exact_error(&bob.api.get(&go_live(&general)).await, 400);
    assert_exact_error(&bob.api.post(&go_live(&general), &json!({})).await, 400);
    assert_exact_error(&bob.api.delete(&go_live(&general)).await, 400);
    assert_exact_error(&bob.api.get(&go_live(&talk)).await, 404);
    assert_exact_error(&bob.api.delete(&go_live(&talk)).await, 404);

    // A JSON object is required; a quality that is not a string is the wrong shape.
    assert_error(&bob.api.post_empty(&go_live(&talk)).await, 415);
    assert_error(
        &bob.api
            .raw("POST", &go_live(&talk), Some("application/json"), "")
            .await,
        400,
    );
    assert_error(
        &bob.api
            .post(&go_live(&talk), &json!({"quality": 720}))
            .await,
        422,
    );
    // Not in the channel comes before the quality.
    assert_exact_error(
        &bob.api
            .post(&go_live(&talk), &json!({"quality": "4k"}))
            .await,
        400,
    );
    bob.join_voice(&talk).await;
    assert_exact_error(
        &bob.api
            .post(&go_live(&talk), &json!({"quality": "4k"}))
            .await,
        400,
    );
    start(&bob, &talk, json!({})).await;
    carol.join_voice(&talk).await;
    assert_exact_error(&carol.api.post(&go_live(&talk), &json!({})).await, 400);
    assert_exact_error(&carol.api.delete(&go_live(&talk)).await, 403);
    // Not even the owner may end someone else's session.
    assert_exact_error(&alice.api.delete(&go_live(&talk)).await, 403);
    // Concord: reading it needs VIEW_CHANNEL.
    server.deny(&talk, &carol, 1).await;
    assert_exact_error(&carol.api.get(&go_live(&talk)).await, 403);
    assert_eq!(alice.api.get(&go_live(&talk)).await.status, 200);
}

#[tokio::test]
async fn start_and_stop_reach_the_channels_viewers_only() {
    let Stage {
        server,
        alice,
        bob,
        carol,
        general,
        talk,
        ..
    } = stage().await;
    server.deny(&talk, &carol, 1).await;
    bob.join_voice(&talk).await;
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let (mut carol_gw, _) = server.connect(&carol.ws_query()).await;

    let session = start(&bob, &talk, json!({"quality": "1080p"})).await;
    assert_keys(&session, &["broadcaster_id", "quality", "started_at"]);
    assert_eq!(session["broadcaster_id"], bob.id.as_str());
    assert_eq!(session["quality"], "1080p");
    let info = json!({
        "channel_id": talk,
        "broadcaster_id": bob.id,
        "quality": "1080p",
        "started_at": session["started_at"],
    });
    assert_eq!(
        next(&mut alice_gw).await,
        ("GO_LIVE_START".to_owned(), info.clone())
    );
    assert_eq!(
        next(&mut bob_gw).await,
        ("GO_LIVE_START".to_owned(), info.clone())
    );
    assert_eq!(alice.api.get(&go_live(&talk)).await.body, info);
    // Kept in the store, where every node reads it.
    let stored = server
        .state
        .store
        .go_live(talk.parse::<ChannelId>().unwrap())
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(serde_json::to_value(stored).unwrap(), info);

    // The same broadcaster again: quality replaced, a new start, a new event.
    let again = start(&bob, &talk, json!({"quality": null})).await;
    assert_eq!(again["quality"], "720p", "the default");
    assert_ne!(again["started_at"], session["started_at"]);
    let (t, d) = next(&mut alice_gw).await;
    assert_eq!(t, "GO_LIVE_START");
    assert_eq!(d["quality"], "720p");
    assert_eq!(d["started_at"], again["started_at"]);
    assert_eq!(next(&mut bob_gw).await.0, "GO_LIVE_START");

    let res = bob.api.delete(&go_live(&talk)).await;
    assert_eq!(res.status, 204, "{}", res.text);
    let stop = json!({"channel_id": talk, "broadcaster_id": bob.id});
    assert_eq!(
        next(&mut alice_gw).await,
        ("GO_LIVE_STOP".to_owned(), stop.clone())
    );
    assert_eq!(next(&mut bob_gw).await, ("GO_LIVE_STOP".to_owned(), stop));
    assert_exact_error(&alice.api.get(&go_live(&talk)).await, 404);
    assert_exact_error(&bob.api.delete(&go_live(&talk)).await, 404);
    // Carol, who cannot see the voice channel, saw none of it.
    alice.post(&general, "control").await;
    expect_message(&mut carol_gw, "control").await;
    expect_message(&mut alice_gw, "control").await;
}

/// Reads the GO_LIVE_STOP for `bob` in `channel`, then the leave of that channel.
async fn expect_stop_then_leave(gw: &mut concord_testkit::Gateway, bob: &TestUser, channel: &str) {
    assert_eq!(
        next(gw).await,
        (
            "GO_LIVE_STOP".to_owned(),
            json!({"channel_id": channel, "broadcaster_id": bob.id})
        )
    );
    let (t, d) = next(gw).await;
    assert_eq!(t, "VOICE_STATE_UPDATE");
    assert_eq!(d["user_id"], bob.id.as_str());
    assert_eq!(d["channel_id"], Value::Null);
    assert_eq!(d["username"], "bob");
}

#[tokio::test]
async fn leaving_or_moving_by_rest_ends_the_session() {
    let Stage {
        server,
        alice,
        bob,
        carol,
        talk,
        quiet,
        ..
    } = stage().await;
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;

    bob.join_voice(&talk).await;
    assert_eq!(next(&mut alice_gw).await.0, "VOICE_STATE_UPDATE");
    start(&bob, &talk, json!({})).await;
    assert_eq!(next(&mut alice_gw).await.0, "GO_LIVE_START");
    let res = bob.api.delete(&format!("/channels/{talk}/voice")).await;
    assert_eq!(res.status, 204, "{}", res.text);
    expect_stop_then_leave(&mut alice_gw, &bob, &talk).await;
    assert_exact_error(&alice.api.get(&go_live(&talk)).await, 404);

    // A move: stop, the leave of the old channel, the join of the new one.
    bob.join_voice(&talk).await;
    assert_eq!(next(&mut alice_gw).await.0, "VOICE_STATE_UPDATE");
    start(&bob, &talk, json!({})).await;
    assert_eq!(next(&mut alice_gw).await.0, "GO_LIVE_START");
    bob.join_voice(&quiet).await;
    expect_stop_then_leave(&mut alice_gw, &bob, &talk).await;
    let (t, d) = next(&mut alice_gw).await;
    assert_eq!(
        (t.as_str(), &d["channel_id"]),
        ("VOICE_STATE_UPDATE", &json!(quiet))
    );
    assert_exact_error(&alice.api.get(&go_live(&talk)).await, 404);
    // The channel is free for someone else.
    carol.join_voice(&talk).await;
    start(&carol, &talk, json!({})).await;

    // Re-joining the channel one is in is no leave: the session stays.
    bob.join_voice(&quiet).await;
    start(&bob, &quiet, json!({})).await;
    bob.join_voice(&quiet).await;
    assert_eq!(
        alice.api.get(&go_live(&quiet)).await.body["broadcaster_id"],
        bob.id.as_str()
    );
}

#[tokio::test]
async fn the_last_gateway_session_closing_ends_the_session() {
    let Stage {
        server,
        alice,
        bob,
        talk,
        ..
    } = stage().await;
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    let (bob_gw, _) = server.connect(&bob.ws_query()).await;
    bob.join_voice(&talk).await;
    assert_eq!(next(&mut alice_gw).await.0, "VOICE_STATE_UPDATE");
    start(&bob, &talk, json!({})).await;
    assert_eq!(next(&mut alice_gw).await.0, "GO_LIVE_START");
    bob_gw.close(1000).await;
    expect_stop_then_leave(&mut alice_gw, &bob, &talk).await;
    assert_exact_error(&alice.api.get(&go_live(&talk)).await, 404);
}

#[tokio::test]
async fn kick_and_ban_end_the_session() {
    let Stage {
        server,
        alice,
        bob,
        carol,
        hall,
        talk,
        ..
    } = stage().await;
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    for action in ["kick", "ban"] {
        let target = if action == "kick" { &bob } else { &carol };
        target.join_voice(&talk).await;
        assert_eq!(next(&mut alice_gw).await.0, "VOICE_STATE_UPDATE");
        start(target, &talk, json!({})).await;
        assert_eq!(next(&mut alice_gw).await.0, "GO_LIVE_START");
        let res = alice
            .api
            .post_empty(&format!("/servers/{hall}/members/{}/{action}", target.id))
            .await;
        assert_eq!(res.status, 204, "{action}: {}", res.text);
        assert_eq!(
            next(&mut alice_gw).await,
            (
                "GO_LIVE_STOP".to_owned(),
                json!({"channel_id": talk, "broadcaster_id": target.id})
            )
        );
        let (t, d) = next(&mut alice_gw).await;
        assert_eq!(
            (t.as_str(), &d["channel_id"]),
            ("VOICE_STATE_UPDATE", &Value::Null)
        );
        let (t, d) = next(&mut alice_gw).await;
        assert_eq!(t, format!("MEMBER_{}", action.to_uppercase()));
        assert_eq!(d["user_id"], target.id.as_str());
        assert_exact_error(&alice.api.get(&go_live(&talk)).await, 404);
    }
}

#[tokio::test]
async fn a_restart_leaves_no_stale_session() {
    let Stage {
        server,
        alice,
        bob,
        talk,
        ..
    } = stage().await;
    bob.join_voice(&talk).await;
    start(&bob, &talk, json!({})).await;
    let server = server.restart().await;
    // Nobody is in voice after a start, so nobody is live either.
    assert_exact_error(&alice.api.get(&go_live(&talk)).await, 404);
    assert_exact_error(&bob.api.post(&go_live(&talk), &json!({})).await, 400);
    bob.join_voice(&talk).await;
    let again = start(&bob, &talk, json!({"quality": "480p"})).await;
    assert_eq!(again["quality"], "480p");
    assert_eq!(
        str_of(&alice.api.get(&go_live(&talk)).await.body["broadcaster_id"]),
        bob.id
    );
    server.shutdown().await;
}
