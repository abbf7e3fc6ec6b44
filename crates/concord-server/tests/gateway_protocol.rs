//! Gateway v1 end to end over real sockets (`gateway.md` §1–§3, §5, §6): the upgrade's
//! authentication, the envelope, READY, limits and close codes.

use concord_testkit::{Closed, TestServer, TestUser};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, Message};

/// A public server "hall" of `owner` with a text channel "general": (server, channel).
async fn public_server(owner: &TestUser) -> (String, String) {
    let server = owner.create_server("hall").await;
    let channel = owner.create_channel(&server, "general", "text").await;
    (server, channel)
}

fn upgrade_status(err: tungstenite::Error) -> u16 {
    match err {
        tungstenite::Error::Http(response) => response.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn upgrade_without_credentials_is_401_before_the_upgrade() {
    let server = TestServer::start().await;
    assert_eq!(
        upgrade_status(server.connect_raw("").await.unwrap_err()),
        401
    );
    assert_eq!(
        upgrade_status(server.connect_raw("token=garbage").await.unwrap_err()),
        401
    );
    assert_eq!(
        upgrade_status(server.connect_raw("bot_token=garbage").await.unwrap_err()),
        401
    );
}

#[tokio::test]
async fn a_refresh_token_is_not_a_gateway_token() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let err = server
        .connect_raw(&format!("token={}", alice.refresh))
        .await
        .unwrap_err();
    assert_eq!(upgrade_status(err), 401);
}

#[tokio::test]
async fn a_bad_token_fails_even_with_a_good_bot_token() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bot = alice.api.post("/bots", &json!({"name": "Helper"})).await;
    assert_eq!(bot.status, 201, "{}", bot.body);
    let bot_token = bot.body["token"].as_str().unwrap();
    let err = server
        .connect_raw(&format!("token=bad&bot_token={bot_token}"))
        .await
        .unwrap_err();
    assert_eq!(upgrade_status(err), 401);
    let (_gw, ready) = server.connect(&format!("bot_token={bot_token}")).await;
    assert_eq!(ready["user"]["id"], bot.body["bot"]["user_id"]);
}

#[tokio::test]
async fn unsupported_version_and_plain_get_are_refused() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let err = server
        .connect_raw(&format!("{}&v=7", alice.ws_query()))
        .await
        .unwrap_err();
    assert_eq!(upgrade_status(err), 400);
    let plain = server.api().get(&format!("/ws?{}", alice.ws_query())).await;
    assert!(
        (400..500).contains(&plain.status),
        "not an upgrade: {}",
        plain.status
    );
}

#[tokio::test]
async fn ready_is_the_first_frame_with_exactly_the_reference_keys() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let (server_id, _) = public_server(&alice).await;
    let (_gw, ready) = server.connect(&alice.ws_query()).await;
    let mut keys: Vec<_> = ready.as_object().unwrap().keys().cloned().collect();
    keys.sort();
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
    let user = &ready["user"];
    assert_eq!(user["id"], alice.id.as_str());
    assert_eq!(user["status"], "online", "this session is counted");
    assert!(user["email"].is_null() && user["is_admin"] == true);
    for key in [
        "avatar_url",
        "bio",
        "pronouns",
        "custom_status",
        "activity",
        "created_at",
    ] {
        assert!(user.get(key).is_some(), "user.{key} present");
    }
    let servers = ready["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 1);
    assert_eq!(servers[0]["id"], server_id.as_str());
    assert!(
        servers[0].get("member_count").is_none(),
        "READY servers carry no member_count"
    );
    assert_eq!(servers[0]["require_invite"], false);
    assert_eq!(ready["server_roles"], json!({}));
    assert_eq!(ready["channel_overrides"], json!({}));
    assert_eq!(ready["dm_channels"], json!([]));
}

#[tokio::test]
async fn ready_counts_unread_messages_and_mentions_after_an_ack() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let (server_id, channel) = public_server(&alice).await;
    bob.join(&server_id).await;
    assert_eq!(
        bob.api
            .post_empty(&format!("/channels/{channel}/ack"))
            .await
            .status,
        204
    );
    for content in ["hello", "hey @bob", "@everyone look"] {
        alice.post(&channel, content).await;
    }
    // Bob's own messages never count as unread.
    bob.api
        .post(
            &format!("/channels/{channel}/messages"),
            &json!({"content": "mine"}),
        )
        .await;
    let (_gw, ready) = server.connect(&bob.ws_query()).await;
    assert_eq!(
        ready["unread_counts"],
        json!([{"channel_id": channel, "unread_count": 3}])
    );
    assert_eq!(
        ready["mention_counts"],
        json!([{"channel_id": channel, "count": 2}])
    );
    // Alice never acked: no entries for her.
    let (_gw, ready) = server.connect(&alice.ws_query()).await;
    assert_eq!(ready["unread_counts"], json!([]));
}

/// READY's roles and overrides (`gateway.md` §3): roles keyed by server id, highest
/// position first; overrides and counts only of channels the user can view. The owner,
/// who views everything, is the positive control for what bob must not see.
#[tokio::test]
async fn ready_roles_overrides_and_counts_cover_exactly_what_the_user_can_view() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let (server_id, open) = public_server(&alice).await;
    let hidden = alice.create_channel(&server_id, "hidden", "text").await;
    bob.join(&server_id).await;
    let mut roles = Vec::new();
    for (name, position) in [("low", 1), ("high", 2)] {
        let res = alice
            .api
            .post(
                &format!("/servers/{server_id}/roles"),
                &json!({"name": name, "permissions": 0, "position": position}),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.text);
        roles.push(res.body);
    }
    let put = |channel: &str, body: Value| {
        let path = format!("/channels/{channel}/overrides");
        let api = alice.api.clone();
        async move {
            let res = api
                .raw("PUT", &path, Some("application/json"), &body.to_string())
                .await;
            assert_eq!(res.status, 200, "{}", res.text);
            res.body
        }
    };
    // Both channels are acked while bob still views them, so the store holds read
    // state, and counts, for both.
    for channel in [&open, &hidden] {
        let res = bob
            .api
            .post_empty(&format!("/channels/{channel}/ack"))
            .await;
        assert_eq!(res.status, 204, "{}", res.text);
    }
    let visible = put(
        &open,
        json!({"role_id": roles[0]["id"], "allow": 0, "deny": 16}),
    )
    .await;
    let secret = put(&hidden, json!({"user_id": bob.id, "allow": 0, "deny": 1})).await;
    for channel in [&open, &hidden] {
        alice.post(channel, "@bob news").await;
    }

    let (_gw, ready) = server.connect(&bob.ws_query()).await;
    assert_eq!(
        ready["server_roles"],
        json!({ server_id.clone(): [roles[1].clone(), roles[0].clone()] })
    );
    assert_eq!(
        ready["channel_overrides"],
        json!({ open.clone(): [visible.clone()] })
    );
    assert_eq!(
        ready["unread_counts"],
        json!([{"channel_id": open, "unread_count": 1}])
    );
    assert_eq!(
        ready["mention_counts"],
        json!([{"channel_id": open, "count": 1}])
    );

    let (_gw, ready) = server.connect(&alice.ws_query()).await;
    assert_eq!(
        ready["channel_overrides"],
        json!({ open.clone(): [visible], hidden.clone(): [secret] })
    );
    assert_eq!(
        ready["server_roles"][&server_id].as_array().unwrap().len(),
        2
    );
}

#[tokio::test]
async fn heartbeat_ack_is_exact_and_goes_to_the_session_that_sent_it() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let (mut first, _) = server.connect(&alice.ws_query()).await;
    let (mut second, _) = server.connect(&alice.ws_query()).await;
    second
        .send(&json!({"op": "HEARTBEAT", "t": null, "d": null}))
        .await;
    let frame = second.next_frame().await;
    assert_eq!(frame.to_string(), r#"{"op":"HEARTBEAT_ACK"}"#);
    // Positive control on the other session: its own heartbeat is its first frame back.
    first.send(&json!({"op": "HEARTBEAT"})).await;
    assert_eq!(first.next_frame().await, json!({"op": "HEARTBEAT_ACK"}));
}

#[tokio::test]
async fn with_tcp_nodelay_rest_and_gateway_work_the_same() {
    let server = TestServer::start_with(|c| c.limits.tcp_nodelay = true).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let hall = alice.create_server("nodelay").await;
    let channel = alice.create_channel(&hall, "general", "text").await;
    bob.join(&hall).await;
    let (mut gw, _) = server.connect(&bob.ws_query()).await;
    gw.send(&json!({"op": "HEARTBEAT"})).await;
    assert_eq!(gw.next_frame().await, json!({"op": "HEARTBEAT_ACK"}));
    alice.post(&channel, "no delay").await;
    let event = gw.next_event("MESSAGE_CREATE").await;
    assert_eq!(event["content"], "no delay");
}

#[tokio::test]
async fn malformed_unknown_and_binary_frames_are_ignored_and_the_socket_stays() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let (mut gw, _) = server.connect(&alice.ws_query()).await;
    gw.send_text("{{{").await;
    gw.send(&json!({"op": "IDENTIFY", "d": {}})).await;
    gw.send(&json!({"op": "DISPATCH", "t": "READY", "d": {}}))
        .await;
    gw.send(&json!({"op": "TYPING_START", "d": {"channel_id": "not-a-uuid"}}))
        .await;
    gw.send(&json!({"d": null})).await;
    gw.send_message(Message::Binary(vec![0, 159, 146, 150].into()))
        .await
        .unwrap();
    gw.send(&json!({"op": "HEARTBEAT"})).await;
    assert_eq!(gw.next_frame().await, json!({"op": "HEARTBEAT_ACK"}));
}

#[tokio::test]
async fn a_frame_over_16_kib_closes_with_1009() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let (mut gw, _) = server.connect(&alice.ws_query()).await;
    let big = json!({"op": "HEARTBEAT", "d": "x".repeat(17 * 1024)});
    let _ = gw.send_message(Message::text(big.to_string())).await;
    assert_eq!(gw.closed().await, Closed::Code(1009));
}

#[tokio::test]
async fn a_frame_of_exactly_16_kib_is_accepted() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let (mut gw, _) = server.connect(&alice.ws_query()).await;
    let prefix = r#"{"op":"HEARTBEAT","d":""#;
    let filler = 16 * 1024 - prefix.len() - 2;
    let text = format!("{prefix}{}\"}}", "x".repeat(filler));
    assert_eq!(text.len(), 16 * 1024);
    gw.send_text(&text).await;
    assert_eq!(gw.next_frame().await, json!({"op": "HEARTBEAT_ACK"}));
}

#[tokio::test]
async fn shutdown_closes_sessions_with_1001() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let (mut gw, _) = server.connect(&alice.ws_query()).await;
    let closing = tokio::spawn(async move { gw.closed().await });
    server.shutdown().await;
    assert_eq!(closing.await.unwrap(), Closed::Code(1001));
}

#[tokio::test]
async fn health_counts_live_sessions() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let (_a, _) = server.connect(&alice.ws_query()).await;
    let (_b, _) = server.connect(&alice.ws_query()).await;
    let health: Value = server.api().get("/health").await.body;
    assert_eq!(health["connections"]["websocket"], 2);
    assert_eq!(health["status"], "ok");
}
