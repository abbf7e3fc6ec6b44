//! Protocol v2 end to end over real sockets (`extensions.md`): the upgrade's query,
//! the handshake against real credentials, numbering of real events, compression
//! decoded by independent decoders, RESUME across a thousand forced disconnects,
//! presence across a RESUME, and v1 frames left exactly as they were.

use std::time::Duration;

use concord_protocol::{ChannelId, Event, Message, MessageId, Timestamp, UserId};
use concord_server::bus::Audience;
use concord_testkit::{Closed, Gateway, TestServer, TestUser};
use rand::Rng;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite;

fn upgrade_status(err: tungstenite::Error) -> u16 {
    match err {
        tungstenite::Error::Http(response) => response.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_version_or_compression_is_400_before_the_upgrade() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let token = alice.ws_query();
    for query in [
        format!("{token}&v=3"),
        format!("{token}&v=two"),
        format!("{token}&compress=zlib-stream"),
        format!("{token}&v=1&compress=zstd-stream"),
        format!("{token}&v=2&compress=gzip"),
        "v=2&compress=zlib".to_string(),
    ] {
        let err = server.connect_raw(&query).await.unwrap_err();
        assert_eq!(upgrade_status(err), 400, "{query}");
    }
    // v2 needs no token in the URL; a bad one is still refused before the upgrade.
    let mut gateway = server.connect_raw("v=2").await.expect("v2 without a token");
    assert_eq!(gateway.next_frame().await["op"], "HELLO");
    let err = server.connect_raw("v=2&token=garbage").await.unwrap_err();
    assert_eq!(upgrade_status(err), 401);
}

#[tokio::test]
async fn identify_then_real_events_are_numbered() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let hall = alice.create_server("hall").await;
    let general = alice.create_channel(&hall, "general", "text").await;
    let (mut gateway, hello, ready) = server.identify_v2(&alice, "", None).await;
    assert_eq!(hello["heartbeat_interval"], 30_000);
    assert_eq!(ready["s"], 1);
    assert_eq!(ready["d"]["user"]["id"], json!(alice.id));
    assert_eq!(ready["d"]["servers"][0]["id"], json!(hall));
    alice.post(&general, "hello").await;
    let frame = gateway.next_non_presence().await;
    assert_eq!(
        (&frame["t"], &frame["s"]),
        (&json!("MESSAGE_CREATE"), &json!(2))
    );
    assert_eq!(frame["d"]["content"], "hello");
    // A token in the URL: READY right after HELLO.
    let mut url = server
        .connect_raw(&format!("v=2&{}", alice.ws_query()))
        .await
        .unwrap();
    assert_eq!(url.next_frame().await["op"], "HELLO");
    let ready = url.next_frame().await;
    assert_eq!((&ready["t"], &ready["s"]), (&json!("READY"), &json!(1)));
}

#[tokio::test]
async fn a_disabled_or_bad_token_closes_4004_and_errors_are_answered() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let mut gateway = server.connect_raw("v=2").await.unwrap();
    gateway.next_frame().await;
    gateway
        .send(&json!({"op": "IDENTIFY", "d": {"token": alice.refresh}}))
        .await;
    assert_eq!(
        gateway.closed().await,
        Closed::Code(4004),
        "a refresh token"
    );
    let (mut gateway, _, _) = server.identify_v2(&alice, "", None).await;
    gateway
        .send(&json!({"op": "TYPING_START", "d": {"channel_id": uuid::Uuid::new_v4()}}))
        .await;
    let error = gateway.next_non_presence().await;
    assert_eq!(error["op"], "ERROR");
    assert_eq!(error["d"]["code"], "NOT_FOUND", "{error}");
    gateway.send_text("[]").await;
    assert_eq!(
        gateway.next_non_presence().await["d"]["code"],
        "DECODE_ERROR"
    );
}

/// A message whose content is `n` (a real Message: the test kit checks that every
/// frame decodes as the typed protocol).
fn numbered(n: u64) -> Message {
    Message {
        id: MessageId::new(),
        channel_id: ChannelId::new(),
        author_id: None,
        content: n.to_string(),
        reply_to: None,
        mention_user_ids: Vec::new(),
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
    }
}

/// Reads frames until `seen` holds everything up to `last`, checking that each event
/// arrives once, in order; returns the last `s` seen.
async fn read_events(
    gateway: &mut Gateway,
    seen: &mut Vec<u64>,
    mut last_s: u64,
    want: usize,
) -> (u64, bool) {
    let mut got = 0;
    while got < want {
        let frame = gateway.next_frame().await;
        assert_ne!(
            frame["op"], "INVALID_SESSION",
            "the window must cover the drop"
        );
        if frame["op"] != "DISPATCH" {
            continue;
        }
        let s = frame["s"].as_u64().expect("numbered");
        assert_eq!(s, last_s + 1, "no gap, no repeat: {frame}");
        last_s = s;
        match frame["t"].as_str() {
            Some("MESSAGE_CREATE") => {
                let n: u64 = frame["d"]["content"].as_str().unwrap().parse().unwrap();
                assert_eq!(n, seen.len() as u64, "in order, exactly once");
                seen.push(n);
                got += 1;
            }
            Some("RESUMED") => return (last_s, true),
            _ => {}
        }
    }
    (last_s, false)
}

#[tokio::test]
async fn every_event_arrives_exactly_once_across_a_thousand_forced_disconnects() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let user: UserId = alice.user_id();
    let (mut gateway, hello, ready) = server.identify_v2(&alice, "", Some(&["messages"])).await;
    let session = hello["session_id"].as_str().unwrap().to_string();
    let mut last_s = ready["s"].as_u64().unwrap();
    // A steady stream of events, published while the client drops and resumes.
    let events = server.state.events.clone();
    let total: u64 = 6_000;
    let producer = tokio::spawn(async move {
        for n in 0..total {
            events.dispatch(
                Audience::Users(vec![user]),
                Event::MessageCreate,
                &numbered(n),
            );
            if n % 2 == 1 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    });
    let mut seen = Vec::new();
    let mut rng = rand::rng();
    let mut drops = 0;
    while drops < 1_000 {
        // Read a few events (maybe none), then lose the connection without a word.
        let want = rng.random_range(0..4).min(total as usize - seen.len());
        last_s = read_events(&mut gateway, &mut seen, last_s, want).await.0;
        gateway.drop_abruptly();
        drops += 1;
        gateway = server.connect_raw("v=2").await.expect("reconnect");
        assert_eq!(gateway.next_frame().await["op"], "HELLO");
        gateway
            .send(&json!({"op": "RESUME", "d": {"token": alice.token, "session_id": session, "seq": last_s}}))
            .await;
        // Replayed and queued events, then RESUMED.
        loop {
            let (s, resumed) = read_events(&mut gateway, &mut seen, last_s, usize::MAX).await;
            last_s = s;
            if resumed {
                break;
            }
        }
    }
    producer.await.unwrap();
    let rest = total as usize - seen.len();
    read_events(&mut gateway, &mut seen, last_s, rest).await;
    assert_eq!(seen.len() as u64, total);
    assert_eq!(server.session_count(), 1, "one session throughout");
}

async fn decoded_session(server: &TestServer, alice: &TestUser, codec: &str) {
    let hall = alice.create_server(&format!("hall-{codec}")).await;
    let general = alice.create_channel(&hall, "general", "text").await;
    let (mut gateway, hello, ready) = server
        .identify_v2(alice, &format!("compress={codec}"), None)
        .await;
    assert_eq!(hello["heartbeat_interval"], 30_000);
    assert_eq!(ready["s"], 1);
    for n in 0..20 {
        alice.post(&general, &format!("message {n}")).await;
        let frame = gateway.next_non_presence().await;
        assert_eq!(frame["d"]["content"], format!("message {n}"), "{codec}");
        assert_eq!(frame["s"], n + 2);
    }
    gateway.send(&json!({"op": "HEARTBEAT", "d": null})).await;
    assert_eq!(
        gateway.next_non_presence().await,
        json!({"op": "HEARTBEAT_ACK"})
    );
}

#[tokio::test]
async fn zlib_and_zstd_streams_decode_with_independent_decoders() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    decoded_session(&server, &alice, "zlib-stream").await;
    decoded_session(&server, &alice, "zstd-stream").await;
}

#[tokio::test]
async fn a_resume_inside_the_grace_period_announces_nothing_and_a_clean_close_goes_offline_at_once()
{
    let server = TestServer::start_with(|c| c.limits.presence_grace_secs = 30).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let hall = alice.create_server("hall").await;
    bob.join(&hall).await;
    let (mut watcher, _) = server.connect(&bob.ws_query()).await;
    let (gateway, hello, ready) = server.identify_v2(&alice, "", None).await;
    let online = watcher.next_event("PRESENCE_UPDATE").await;
    assert_eq!(
        (&online["user_id"], &online["status"]),
        (&json!(alice.id), &json!("online"))
    );
    gateway.drop_abruptly();
    let mut gateway = server.connect_raw("v=2").await.unwrap();
    gateway.next_frame().await;
    gateway
        .send(&json!({"op": "RESUME", "d": {"token": alice.token, "session_id": hello["session_id"], "seq": ready["s"]}}))
        .await;
    assert_eq!(gateway.next_non_presence().await["t"], "RESUMED");
    // Positive control instead of a timed wait: the next presence the watcher gets
    // is the status alice sets now, not an offline or a second online.
    gateway
        .send(&json!({"op": "PRESENCE_UPDATE", "d": {"status": "dnd"}}))
        .await;
    let next = watcher.next_frame().await;
    assert_eq!(
        (&next["t"], &next["d"]["user_id"], &next["d"]["status"]),
        (&json!("PRESENCE_UPDATE"), &json!(alice.id), &json!("dnd")),
        "no offline, no second online: {next}"
    );
    gateway.close(1000).await;
    let offline: Value = watcher.next_event("PRESENCE_UPDATE").await;
    assert_eq!(
        (&offline["user_id"], &offline["status"]),
        (&json!(alice.id), &json!("offline"))
    );
}

#[tokio::test]
async fn a_v1_client_sees_exactly_the_v1_frames() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let hall = alice.create_server("hall").await;
    let general = alice.create_channel(&hall, "general", "text").await;
    let (mut v1, ready) = server.connect(&alice.ws_query()).await;
    let keys: Vec<_> = ready.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "channel_overrides",
            "dm_channels",
            "mention_counts",
            "server_roles",
            "servers",
            "unread_counts",
            "user"
        ]
    );
    let (mut v2, _, _) = server.identify_v2(&alice, "", None).await;
    alice.post(&general, "hi").await;
    let frame = v1.next_non_presence().await;
    let keys: Vec<_> = frame.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["d", "op", "t"], "no s in v1: {frame}");
    assert_eq!(v2.next_non_presence().await["s"], 2);
    v1.send(&json!({"op": "IDENTIFY", "d": {"token": alice.token}}))
        .await;
    v1.send(&json!({"op": "HEARTBEAT", "d": null})).await;
    assert_eq!(
        v1.next_non_presence().await,
        json!({"op": "HEARTBEAT_ACK"}),
        "v2 ops are ignored on v1, without an answer"
    );
}

#[tokio::test]
async fn a_session_resumes_across_a_graceful_restart_without_losing_an_event() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let hall = alice.create_server("hall").await;
    let general = alice.create_channel(&hall, "general", "text").await;
    let (mut old, hello, _) = server.identify_v2(&alice, "", Some(&["messages"])).await;
    for n in 0..3 {
        alice.post(&general, &format!("before {n}")).await;
    }
    let server = server.restart().await;
    // The old socket is told to reconnect, then closed 1001.
    while old.next_frame().await["op"] != "RECONNECT" {}
    assert_eq!(old.closed().await, Closed::Code(1001));
    // Say the client read nothing after READY: every message must come back.
    let mut gateway = server.connect_raw("v=2").await.unwrap();
    assert_eq!(gateway.next_frame().await["op"], "HELLO");
    gateway
        .send(&json!({"op": "RESUME", "d": {"token": alice.token, "session_id": hello["session_id"], "seq": 1}}))
        .await;
    for n in 0..3 {
        let frame = gateway.next_frame().await;
        assert_eq!(frame["s"], n + 2, "{frame}");
        assert_eq!(frame["d"]["content"], format!("before {n}"));
    }
    let resumed = gateway.next_frame().await;
    assert_eq!(
        (&resumed["t"], &resumed["s"]),
        (&json!("RESUMED"), &json!(5))
    );
    alice.post(&general, "after").await;
    let frame = gateway.next_non_presence().await;
    assert_eq!(
        (&frame["s"], &frame["d"]["content"]),
        (&json!(6), &json!("after"))
    );
}
