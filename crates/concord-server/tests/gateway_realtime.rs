//! Gateway v1 client commands and presence end to end (`gateway.md` §4, §8, §9): who
//! receives PRESENCE_UPDATE, TYPING_START and VOICE_SIGNAL, and who must not. Every
//! "must not" is checked with a positive control: a later event the excluded client
//! does receive arrives first, and per-session delivery is in order.

use concord_testkit::{Gateway, TestServer, TestUser};
use serde_json::{Value, json};

fn presence(status: &str, custom: Value, activity: Value) -> Value {
    json!({"op": "PRESENCE_UPDATE", "t": null, "d": {"status": status, "custom_status": custom, "activity": activity}})
}

/// Reads frames until a PRESENCE_UPDATE and returns its payload.
async fn next_presence(gw: &mut Gateway) -> Value {
    let frame = gw.next_frame().await;
    assert_eq!(frame["t"], "PRESENCE_UPDATE", "{frame}");
    frame["d"].clone()
}

// ---- presence (§8) ----

#[tokio::test]
async fn connecting_announces_online_to_co_members_only() {
    let server = TestServer::start().await;
    let (alice, bob, carol) = (
        server.user("alice").await,
        server.user("bob").await,
        server.user("carol").await,
    );
    let hall = alice.create_server("hall").await;
    bob.join(&hall).await;
    // Carol only shares a DM with alice.
    let dm = alice
        .api
        .post("/dm-channels", &json!({"user_id": carol.id}))
        .await;
    assert_eq!(dm.status, 201);
    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let (mut carol_gw, _) = server.connect(&carol.ws_query()).await;
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    let update = next_presence(&mut bob_gw).await;
    assert_eq!(
        update,
        json!({"user_id": alice.id, "status": "online", "custom_status": null, "activity": null})
    );
    // Control for carol: a DM from alice is the first thing she sees.
    alice
        .api
        .post(
            &format!("/dm-channels/{}/messages", dm.body["id"].as_str().unwrap()),
            &json!({"content": "hi"}),
        )
        .await;
    assert_eq!(carol_gw.next_frame().await["t"], "DM_MESSAGE_CREATE");
    // Alice never gets her own presence (bob's may reach her: she is his co-member)
    // before the DM echo, the control that ends the check.
    loop {
        let frame = alice_gw.next_frame().await;
        if frame["t"] == "DM_MESSAGE_CREATE" {
            break;
        }
        assert_eq!(frame["t"], "PRESENCE_UPDATE", "{frame}");
        assert_eq!(
            frame["d"]["user_id"],
            bob.id.as_str(),
            "only bob's presence: {frame}"
        );
    }
}

#[tokio::test]
async fn a_second_session_opening_or_closing_changes_nothing_and_the_last_one_goes_offline() {
    let server = TestServer::start().await;
    let (alice, bob) = (server.user("alice").await, server.user("bob").await);
    let hall = alice.create_server("hall").await;
    let general = alice.create_channel(&hall, "general", "text").await;
    bob.join(&hall).await;
    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let (first, _) = server.connect(&alice.ws_query()).await;
    assert_eq!(next_presence(&mut bob_gw).await["status"], "online");
    let (mut second, _) = server.connect(&alice.ws_query()).await;
    first.close(1000).await;
    // The remaining tab still gets events and bob saw no presence change.
    bob.post(&general, "still here?").await;
    assert_eq!(second.next_frame().await["t"], "MESSAGE_CREATE");
    assert_eq!(bob_gw.next_frame().await["t"], "MESSAGE_CREATE");
    second.close(1000).await;
    assert_eq!(next_presence(&mut bob_gw).await["status"], "offline");
}

#[tokio::test]
async fn chosen_status_and_texts_survive_reconnects() {
    let server = TestServer::start().await;
    let (alice, bob) = (server.user("alice").await, server.user("bob").await);
    let hall = alice.create_server("hall").await;
    bob.join(&hall).await;
    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    next_presence(&mut bob_gw).await;
    alice_gw
        .send(&presence("dnd", json!("busy"), json!("coding")))
        .await;
    assert_eq!(
        next_presence(&mut bob_gw).await,
        json!({"user_id": alice.id, "status": "dnd", "custom_status": "busy", "activity": "coding"})
    );
    alice_gw.close(1000).await;
    assert_eq!(next_presence(&mut bob_gw).await["status"], "offline");
    let (_alice_gw, ready) = server.connect(&alice.ws_query()).await;
    assert_eq!(ready["user"]["status"], "dnd");
    assert_eq!(ready["user"]["custom_status"], "busy");
    assert_eq!(
        next_presence(&mut bob_gw).await,
        json!({"user_id": alice.id, "status": "dnd", "custom_status": "busy", "activity": "coding"})
    );
}

#[tokio::test]
async fn presence_op_validation_follows_the_reference() {
    let server = TestServer::start().await;
    let (alice, bob) = (server.user("alice").await, server.user("bob").await);
    let hall = alice.create_server("hall").await;
    bob.join(&hall).await;
    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    next_presence(&mut bob_gw).await;
    // Dropped: unknown status string, over-long texts, no `d`.
    alice_gw
        .send(&presence("sleeping", json!(null), json!(null)))
        .await;
    alice_gw
        .send(&presence("away", json!("x".repeat(129)), json!(null)))
        .await;
    alice_gw
        .send(&presence("away", json!(null), json!("y".repeat(129))))
        .await;
    alice_gw.send(&json!({"op": "PRESENCE_UPDATE"})).await;
    // Accepted: missing status means online; non-string texts clear.
    alice_gw.send(&json!({"op": "PRESENCE_UPDATE", "d": {"custom_status": 5, "activity": "x".repeat(128)}})).await;
    let update = next_presence(&mut bob_gw).await;
    assert_eq!(update["status"], "online");
    assert_eq!(update["custom_status"], Value::Null);
    assert_eq!(update["activity"].as_str().unwrap().len(), 128);
}

#[tokio::test]
async fn invisible_looks_offline_to_peers() {
    let server = TestServer::start().await;
    let (alice, bob) = (server.user("alice").await, server.user("bob").await);
    let hall = alice.create_server("hall").await;
    let general = alice.create_channel(&hall, "general", "text").await;
    bob.join(&hall).await;
    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    next_presence(&mut bob_gw).await;
    alice_gw
        .send(&presence("offline", json!(null), json!(null)))
        .await;
    assert_eq!(next_presence(&mut bob_gw).await["status"], "offline");
    let members = bob.api.get(&format!("/servers/{hall}/members")).await;
    let alice_row = members
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user_id"] == alice.id.as_str())
        .cloned()
        .unwrap();
    assert_eq!(alice_row["status"], "offline");
    // Leaving while invisible announces nothing; the next thing bob sees is a message.
    alice_gw.close(1000).await;
    alice.post(&general, "boo").await;
    assert_eq!(bob_gw.next_frame().await["t"], "MESSAGE_CREATE");
}

#[tokio::test]
async fn within_the_grace_period_a_reconnect_does_not_flash_offline() {
    let server = TestServer::start_with(|c| c.limits.presence_grace_secs = 3600).await;
    let (alice, bob) = (server.user("alice").await, server.user("bob").await);
    let hall = alice.create_server("hall").await;
    let general = alice.create_channel(&hall, "general", "text").await;
    bob.join(&hall).await;
    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let (alice_gw, _) = server.connect(&alice.ws_query()).await;
    next_presence(&mut bob_gw).await;
    // An unclean end (no close frame): offline waits for the grace period.
    drop(alice_gw);
    let (_again, _) = server.connect(&alice.ws_query()).await;
    alice.post(&general, "back").await;
    assert_eq!(
        bob_gw.next_frame().await["t"],
        "MESSAGE_CREATE",
        "no offline, no second online"
    );
    // A clean close skips the grace period.
    let members = bob.api.get(&format!("/servers/{hall}/members")).await;
    assert!(
        members
            .body
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["status"] == "online")
    );
}

#[tokio::test]
async fn a_clean_close_skips_the_grace_period() {
    let server = TestServer::start_with(|c| c.limits.presence_grace_secs = 3600).await;
    let (alice, bob) = (server.user("alice").await, server.user("bob").await);
    let hall = alice.create_server("hall").await;
    bob.join(&hall).await;
    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let (alice_gw, _) = server.connect(&alice.ws_query()).await;
    next_presence(&mut bob_gw).await;
    alice_gw.close(1000).await;
    assert_eq!(next_presence(&mut bob_gw).await["status"], "offline");
}

// ---- typing (§4) ----

#[tokio::test]
async fn typing_goes_to_viewers_of_the_channel_only() {
    let server = TestServer::start().await;
    let (alice, bob, carol, dave) = (
        server.user("alice").await,
        server.user("bob").await,
        server.user("carol").await,
        server.user("dave").await,
    );
    let hall = alice.create_server("hall").await;
    let general = alice.create_channel(&hall, "general", "text").await;
    let other = dave.create_server("elsewhere").await;
    let other_channel = dave.create_channel(&other, "x", "text").await;
    bob.join(&hall).await;
    carol.join(&hall).await;
    server.deny(&general, &carol, 1).await; // VIEW_CHANNEL
    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let (mut carol_gw, _) = server.connect(&carol.ws_query()).await;
    let (mut dave_gw, _) = server.connect(&dave.ws_query()).await;
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    alice_gw
        .send(&json!({"op": "TYPING_START", "t": null, "d": {"channel_id": general}}))
        .await;
    let typing = bob_gw.next_event("TYPING_START").await;
    assert_eq!(typing["user_id"], alice.id.as_str());
    assert_eq!(typing["username"], "alice");
    assert_eq!(typing["channel_id"], general.as_str());
    let ts = typing["timestamp"].as_str().unwrap();
    assert!(
        ts.ends_with("+00:00") && ts.split('.').nth(1).unwrap().len() == 9 + 6,
        "{ts}"
    );
    // The sender's own session may receive it (the web client hides its own).
    assert_eq!(
        alice_gw.next_event("TYPING_START").await["user_id"],
        alice.id.as_str()
    );
    // Carol cannot view the channel, dave is not a member: controls follow.
    let hidden_to_carol = alice.create_channel(&hall, "lobby", "text").await;
    alice.post(&hidden_to_carol, "carol can see this").await;
    assert_eq!(
        carol_gw.next_event("MESSAGE_CREATE").await["channel_id"],
        hidden_to_carol.as_str()
    );
    dave.post(&other_channel, "dave's own").await;
    assert_eq!(
        dave_gw.next_event("MESSAGE_CREATE").await["channel_id"],
        other_channel.as_str()
    );
}

#[tokio::test]
async fn typing_is_dropped_without_send_permission_outside_membership_or_in_dms() {
    let server = TestServer::start().await;
    let (alice, bob, eve) = (
        server.user("alice").await,
        server.user("bob").await,
        server.user("eve").await,
    );
    let hall = alice.create_server("hall").await;
    let general = alice.create_channel(&hall, "general", "text").await;
    bob.join(&hall).await;
    server.deny(&general, &bob, 2).await; // SEND_MESSAGES
    let dm = alice
        .api
        .post("/dm-channels", &json!({"user_id": bob.id}))
        .await
        .body["id"]
        .clone();
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let (mut eve_gw, _) = server.connect(&eve.ws_query()).await;
    bob_gw
        .send(&json!({"op": "TYPING_START", "d": {"channel_id": general}}))
        .await;
    eve_gw
        .send(&json!({"op": "TYPING_START", "d": {"channel_id": general}}))
        .await;
    bob_gw
        .send(&json!({"op": "TYPING_START", "d": {"channel_id": dm}}))
        .await;
    bob_gw
        .send(&json!({"op": "TYPING_START", "d": {"channel_id": uuid::Uuid::new_v4()}}))
        .await;
    // Control: alice's own typing is the first TYPING_START anyone in the channel sees.
    alice_gw
        .send(&json!({"op": "TYPING_START", "d": {"channel_id": general}}))
        .await;
    assert_eq!(
        alice_gw.next_event("TYPING_START").await["user_id"],
        alice.id.as_str()
    );
    assert_eq!(
        bob_gw.next_event("TYPING_START").await["user_id"],
        alice.id.as_str()
    );
}

// ---- voice signals and voice cleanup (§9) ----

async fn voice_pair(server: &TestServer) -> (TestUser, TestUser, String, String, String) {
    let (alice, bob) = (server.user("alice").await, server.user("bob").await);
    let hall = alice.create_server("hall").await;
    let voice = alice.create_channel(&hall, "talk", "voice").await;
    let other_voice = alice.create_channel(&hall, "quiet", "voice").await;
    bob.join(&hall).await;
    alice.join_voice(&voice).await;
    bob.join_voice(&voice).await;
    (alice, bob, hall, voice, other_voice)
}

#[tokio::test]
async fn voice_signals_are_relayed_to_every_session_of_the_target_only() {
    let server = TestServer::start().await;
    let (alice, bob, _, _, _) = voice_pair(&server).await;
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    let (mut bob_one, _) = server.connect(&bob.ws_query()).await;
    let (mut bob_two, _) = server.connect(&bob.ws_query()).await;
    alice_gw
        .send(&json!({"op": "VOICE_SIGNAL", "d": {"to_user_id": bob.id, "type": "offer", "sdp": "v=0", "extra": true}}))
        .await;
    let expected = json!({"from_user_id": alice.id, "type": "offer", "sdp": "v=0", "candidate": null, "stream_type": null});
    assert_eq!(bob_one.next_event("VOICE_SIGNAL").await, expected);
    assert_eq!(bob_two.next_event("VOICE_SIGNAL").await, expected);
    // The sender gets nothing back: its next frame answers its heartbeat.
    alice_gw.send(&json!({"op": "HEARTBEAT"})).await;
    assert_eq!(
        alice_gw.next_non_presence().await,
        json!({"op": "HEARTBEAT_ACK"})
    );
}

#[tokio::test]
async fn voice_signals_failing_any_check_are_dropped() {
    let server = TestServer::start().await;
    let (alice, bob, _, _, other_voice) = voice_pair(&server).await;
    let carol = server.user("carol").await;
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let (mut carol_gw, _) = server.connect(&carol.ws_query()).await;
    for d in [
        json!({"to_user_id": "nope", "type": "offer"}),
        json!({"to_user_id": bob.id, "type": "hangup"}),
        json!({"to_user_id": bob.id, "type": "offer", "sdp": 5}),
        json!({"to_user_id": bob.id, "type": "candidate", "candidate": {"a": 1}}),
        json!({"to_user_id": bob.id, "type": "offer", "stream_type": {"kind": "screen"}}),
        json!({"to_user_id": carol.id, "type": "offer"}),
    ] {
        alice_gw.send(&json!({"op": "VOICE_SIGNAL", "d": d})).await;
    }
    carol_gw
        .send(&json!({"op": "VOICE_SIGNAL", "d": {"to_user_id": bob.id, "type": "offer"}}))
        .await;
    // Bob moves to another channel: signals across channels are dropped too.
    bob.join_voice(&other_voice).await;
    alice_gw
        .send(&json!({"op": "VOICE_SIGNAL", "d": {"to_user_id": bob.id, "type": "offer"}}))
        .await;
    // Frames of one session are handled in order: once this heartbeat is answered, the
    // offer above was judged while the two were in different channels.
    alice_gw.send(&json!({"op": "HEARTBEAT"})).await;
    loop {
        if alice_gw.next_frame().await["op"] == "HEARTBEAT_ACK" {
            break;
        }
    }
    bob.join_voice(&other_voice).await;
    alice.join_voice(&other_voice).await;
    alice_gw
        .send(&json!({"op": "VOICE_SIGNAL", "d": {"to_user_id": bob.id, "type": "answer", "stream_type": "go_live"}}))
        .await;
    let mut seen = Vec::new();
    loop {
        let frame = bob_gw.next_non_presence().await;
        if frame["t"] == "VOICE_SIGNAL" {
            assert_eq!(
                frame["d"]["type"], "answer",
                "only the valid signal arrives"
            );
            assert_eq!(frame["d"]["stream_type"], "go_live");
            break;
        }
        seen.push(frame["t"].clone());
    }
    assert!(seen.iter().all(|t| t == "VOICE_STATE_UPDATE"), "{seen:?}");
    carol_gw.send(&json!({"op": "HEARTBEAT"})).await;
    assert_eq!(
        carol_gw.next_non_presence().await,
        json!({"op": "HEARTBEAT_ACK"})
    );
}

#[tokio::test]
async fn voice_state_is_cleared_when_the_last_session_ends() {
    let server = TestServer::start().await;
    let (alice, bob, _, voice, _) = voice_pair(&server).await;
    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let (first, _) = server.connect(&alice.ws_query()).await;
    let (second, _) = server.connect(&alice.ws_query()).await;
    first.close(1000).await;
    let participants = bob.api.get(&format!("/channels/{voice}/voice")).await;
    assert_eq!(
        participants.body.as_array().unwrap().len(),
        2,
        "one tab closing keeps voice"
    );
    second.close(1000).await;
    let leave = bob_gw.next_event("VOICE_STATE_UPDATE").await;
    assert_eq!(leave["user_id"], alice.id.as_str());
    assert_eq!(leave["channel_id"], Value::Null);
    assert_eq!(leave["joined_at"], Value::Null);
    assert_eq!(leave["username"], "alice");
    for flag in [
        "self_mute",
        "self_deaf",
        "self_video",
        "self_screen",
        "server_mute",
        "server_deaf",
    ] {
        assert_eq!(leave[flag], false);
    }
    let participants = bob.api.get(&format!("/channels/{voice}/voice")).await;
    assert_eq!(participants.body.as_array().unwrap().len(), 1);
}
