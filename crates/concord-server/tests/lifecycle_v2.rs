//! Protocol v2 lifecycle events published by the REST handlers (`extensions.md`,
//! "Events v2 adds"): SERVER_UPDATE, SERVER_DELETE, CHANNEL_CREATE, CHANNEL_UPDATE,
//! CHANNEL_DELETE, MEMBER_JOIN, MEMBER_LEAVE and USER_UPDATE. Each reaches exactly its
//! audience with the exact payload; every "must not" is checked with a positive
//! control (a later frame the excluded session does receive arrives first, and
//! per-session delivery is in order). v1 sessions never see any of them, and a v2
//! session only with the intent of the event's group.

use concord_testkit::{Gateway, TestServer, TestUser, assert_keys};
use serde_json::{Value, json};

/// VIEW_CHANNEL (`rest.md` §5.1).
const VIEW_CHANNEL: i64 = 1;

const SERVER_KEYS: &[&str] = &[
    "id",
    "name",
    "owner_id",
    "icon_url",
    "is_public",
    "require_invite",
    "created_at",
    "updated_at",
    "member_count",
];
const CHANNEL_KEYS: &[&str] = &[
    "id",
    "server_id",
    "name",
    "type",
    "position",
    "category",
    "topic",
    "created_at",
];
const SELF_USER_KEYS: &[&str] = &[
    "id",
    "username",
    "email",
    "avatar_url",
    "bio",
    "pronouns",
    "status",
    "custom_status",
    "activity",
    "created_at",
    "is_admin",
];
const PUBLIC_USER_KEYS: &[&str] = &[
    "id",
    "username",
    "avatar_url",
    "status",
    "custom_status",
    "activity",
    "bio",
    "pronouns",
    "created_at",
];

/// A v2 session of `user` with every intent.
async fn v2(server: &TestServer, user: &TestUser) -> Gateway {
    server.identify_v2(user, "", None).await.0
}

/// The next frame that is not a PRESENCE_UPDATE; it must be a v2 DISPATCH of `t` with
/// its `s`. Returns its `d`.
async fn next_v2(gw: &mut Gateway, t: &str) -> Value {
    let frame = gw.next_non_presence().await;
    assert_eq!(frame["op"], "DISPATCH", "{frame}");
    assert_eq!(frame["t"], t, "expected {t}, got {frame}");
    assert!(frame["s"].is_u64(), "a v2 dispatch carries s: {frame}");
    frame["d"].clone()
}

/// Control for a session that must have received nothing: `user` changes their own
/// bio, and the first non-presence frame this session gets is that USER_UPDATE.
async fn nothing_before_own_update(gw: &mut Gateway, user: &TestUser) {
    let res = user
        .api
        .patch("/users/@me", &json!({"bio": "control"}))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let d = next_v2(gw, "USER_UPDATE").await;
    assert_eq!(d["id"], user.id.as_str(), "{d}");
    assert_eq!(d["bio"], "control", "{d}");
}

/// Control for a member who must have received nothing: `author` posts in `channel`
/// (which the session may view), and the first non-presence frame is that message.
async fn nothing_before_message(gw: &mut Gateway, author: &TestUser, channel: &str) {
    let posted = author.post(channel, "control").await;
    let d = next_v2(gw, "MESSAGE_CREATE").await;
    assert_eq!(d["id"], posted["id"], "{d}");
}

/// A public server of `owner` named `hall` with a text channel `general`, joined by
/// `members`.
async fn hall(owner: &TestUser, members: &[&TestUser]) -> (String, String) {
    let hall = owner.create_server("hall").await;
    let general = owner.create_channel(&hall, "general", "text").await;
    for member in members {
        member.join(&hall).await;
    }
    (hall, general)
}

// ---- servers ----

#[tokio::test]
async fn server_update_reaches_every_member_with_the_rest_body() {
    let server = TestServer::start().await;
    let (alice, bob, carol) = (
        server.user("alice").await,
        server.user("bob").await,
        server.user("carol").await,
    );
    let (hall, _) = hall(&alice, &[&bob]).await;
    let mut alice_gw = v2(&server, &alice).await;
    let mut bob_gw = v2(&server, &bob).await;
    let mut carol_gw = v2(&server, &carol).await;
    let res = alice
        .api
        .patch(
            &format!("/servers/{hall}"),
            &json!({"name": "renamed", "icon_url": "https://example.com/i.png"}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    for gw in [&mut alice_gw, &mut bob_gw] {
        let d = next_v2(gw, "SERVER_UPDATE").await;
        assert_keys(&d, SERVER_KEYS);
        assert_eq!(d, res.body);
        assert_eq!(d["name"], "renamed");
        assert_eq!(d["member_count"], 2);
    }
    nothing_before_own_update(&mut carol_gw, &carol).await;
}

#[tokio::test]
async fn server_delete_reaches_the_members_it_had() {
    let server = TestServer::start().await;
    let (alice, bob, carol) = (
        server.user("alice").await,
        server.user("bob").await,
        server.user("carol").await,
    );
    let (hall, _) = hall(&alice, &[&bob]).await;
    let mut alice_gw = v2(&server, &alice).await;
    let mut bob_gw = v2(&server, &bob).await;
    let mut carol_gw = v2(&server, &carol).await;
    let res = alice.api.delete(&format!("/servers/{hall}")).await;
    assert_eq!(res.status, 204, "{}", res.text);
    for gw in [&mut alice_gw, &mut bob_gw] {
        let d = next_v2(gw, "SERVER_DELETE").await;
        assert_eq!(d, json!({"id": hall, "server_id": hall}));
    }
    nothing_before_own_update(&mut carol_gw, &carol).await;
    // The server is gone for its former members too.
    assert_eq!(bob.api.get(&format!("/servers/{hall}")).await.status, 404);
}

// ---- channels ----

#[tokio::test]
async fn channel_create_reaches_the_members_who_may_view_it() {
    let server = TestServer::start().await;
    let (alice, bob, carol) = (
        server.user("alice").await,
        server.user("bob").await,
        server.user("carol").await,
    );
    let (hall, _) = hall(&alice, &[&bob]).await;
    let mut alice_gw = v2(&server, &alice).await;
    let mut bob_gw = v2(&server, &bob).await;
    let mut carol_gw = v2(&server, &carol).await;
    let res = alice
        .api
        .post(
            &format!("/servers/{hall}/channels"),
            &json!({"name": "news", "type": "text", "topic": "what's new"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    for gw in [&mut alice_gw, &mut bob_gw] {
        let d = next_v2(gw, "CHANNEL_CREATE").await;
        assert_keys(&d, CHANNEL_KEYS);
        assert_eq!(d, res.body);
        assert_eq!(d["server_id"], hall.as_str());
    }
    nothing_before_own_update(&mut carol_gw, &carol).await;
}

#[tokio::test]
async fn channel_update_reaches_viewers_and_not_a_member_denied_view() {
    let server = TestServer::start().await;
    let (alice, bob, carol, dave) = (
        server.user("alice").await,
        server.user("bob").await,
        server.user("carol").await,
        server.user("dave").await,
    );
    let (hall, general) = hall(&alice, &[&bob, &dave]).await;
    let secret = alice.create_channel(&hall, "secret", "text").await;
    server.deny(&secret, &dave, VIEW_CHANNEL).await;
    let mut alice_gw = v2(&server, &alice).await;
    let mut bob_gw = v2(&server, &bob).await;
    let mut carol_gw = v2(&server, &carol).await;
    let mut dave_gw = v2(&server, &dave).await;
    let res = alice
        .api
        .patch(
            &format!("/servers/{hall}/channels/{secret}"),
            &json!({"topic": "hush", "position": 7}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    for gw in [&mut alice_gw, &mut bob_gw] {
        let d = next_v2(gw, "CHANNEL_UPDATE").await;
        assert_keys(&d, CHANNEL_KEYS);
        assert_eq!(d, res.body);
        assert_eq!(d["topic"], "hush");
        assert_eq!(d["position"], 7);
    }
    nothing_before_message(&mut dave_gw, &alice, &general).await;
    nothing_before_own_update(&mut carol_gw, &carol).await;
}

#[tokio::test]
async fn channel_delete_reaches_the_viewers_it_had_and_not_a_member_denied_view() {
    let server = TestServer::start().await;
    let (alice, bob, carol, dave) = (
        server.user("alice").await,
        server.user("bob").await,
        server.user("carol").await,
        server.user("dave").await,
    );
    let (hall, general) = hall(&alice, &[&bob, &dave]).await;
    let secret = alice.create_channel(&hall, "secret", "voice").await;
    server.deny(&secret, &dave, VIEW_CHANNEL).await;
    let mut alice_gw = v2(&server, &alice).await;
    let mut bob_gw = v2(&server, &bob).await;
    let mut carol_gw = v2(&server, &carol).await;
    let mut dave_gw = v2(&server, &dave).await;
    let res = alice
        .api
        .delete(&format!("/servers/{hall}/channels/{secret}"))
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    for gw in [&mut alice_gw, &mut bob_gw] {
        let d = next_v2(gw, "CHANNEL_DELETE").await;
        assert_eq!(d, json!({"id": secret, "server_id": hall}));
    }
    nothing_before_message(&mut dave_gw, &alice, &general).await;
    nothing_before_own_update(&mut carol_gw, &carol).await;
}

// ---- members ----

#[tokio::test]
async fn member_join_reaches_every_member_and_the_joiner() {
    let server = TestServer::start().await;
    let (alice, bob, carol, erin) = (
        server.user("alice").await,
        server.user("bob").await,
        server.user("carol").await,
        server.user("erin").await,
    );
    let (hall, _) = hall(&alice, &[&bob]).await;
    let mut alice_gw = v2(&server, &alice).await;
    let mut bob_gw = v2(&server, &bob).await;
    let mut carol_gw = v2(&server, &carol).await;
    let mut erin_gw = v2(&server, &erin).await;
    erin.join(&hall).await;
    let profile = alice.api.get(&format!("/users/{}", erin.id)).await;
    assert_eq!(profile.status, 200, "{}", profile.text);
    for gw in [&mut alice_gw, &mut bob_gw, &mut erin_gw] {
        let d = next_v2(gw, "MEMBER_JOIN").await;
        assert_keys(&d, &["server_id", "user"]);
        assert_eq!(d["server_id"], hall.as_str());
        assert_keys(&d["user"], PUBLIC_USER_KEYS);
        assert_eq!(d["user"], profile.body, "the public form, no email");
    }
    nothing_before_own_update(&mut carol_gw, &carol).await;
}

#[tokio::test]
async fn member_leave_reaches_the_members_it_had_including_the_leaver() {
    let server = TestServer::start().await;
    let (alice, bob, carol, erin) = (
        server.user("alice").await,
        server.user("bob").await,
        server.user("carol").await,
        server.user("erin").await,
    );
    let (hall, general) = hall(&alice, &[&bob, &erin]).await;
    let mut alice_gw = v2(&server, &alice).await;
    let mut bob_gw = v2(&server, &bob).await;
    let mut carol_gw = v2(&server, &carol).await;
    let mut erin_gw = v2(&server, &erin).await;
    let res = erin.api.delete(&format!("/servers/{hall}/leave")).await;
    assert_eq!(res.status, 204, "{}", res.text);
    let profile = alice.api.get(&format!("/users/{}", erin.id)).await;
    assert_eq!(profile.status, 200, "{}", profile.text);
    for gw in [&mut alice_gw, &mut bob_gw, &mut erin_gw] {
        let d = next_v2(gw, "MEMBER_LEAVE").await;
        assert_keys(&d, &["server_id", "user"]);
        assert_eq!(d["server_id"], hall.as_str());
        assert_keys(&d["user"], PUBLIC_USER_KEYS);
        assert_eq!(d["user"], profile.body);
    }
    nothing_before_own_update(&mut carol_gw, &carol).await;
    // Once gone, erin hears nothing more from the server.
    alice.post(&general, "after erin").await;
    assert_eq!(
        next_v2(&mut bob_gw, "MESSAGE_CREATE").await["content"],
        "after erin"
    );
    nothing_before_own_update(&mut erin_gw, &erin).await;
}

// ---- users ----

#[tokio::test]
async fn user_update_reaches_every_own_session_and_nobody_else() {
    let server = TestServer::start().await;
    let (alice, bob) = (server.user("alice").await, server.user("bob").await);
    hall(&alice, &[&bob]).await;
    let mut first = v2(&server, &alice).await;
    let mut second = v2(&server, &alice).await;
    let mut bob_gw = v2(&server, &bob).await;
    let res = alice
        .api
        .patch(
            "/users/@me",
            &json!({"bio": "hello", "pronouns": "she/her", "custom_status": "busy"}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    for gw in [&mut first, &mut second] {
        let d = next_v2(gw, "USER_UPDATE").await;
        assert_keys(&d, SELF_USER_KEYS);
        assert_eq!(d, res.body);
        assert_eq!(d["id"], alice.id.as_str());
        assert_eq!(d["pronouns"], "she/her");
    }
    // Bob shares a server with alice: her PRESENCE_UPDATE may reach him, USER_UPDATE not.
    nothing_before_own_update(&mut bob_gw, &bob).await;
}

// ---- failures, v1, intents ----

#[tokio::test]
async fn failed_requests_publish_nothing() {
    let server = TestServer::start().await;
    let (alice, bob) = (server.user("alice").await, server.user("bob").await);
    let (hall, general) = hall(&alice, &[&bob]).await;
    let mut alice_gw = v2(&server, &alice).await;
    let mut bob_gw = v2(&server, &bob).await;
    let server_path = format!("/servers/{hall}");
    let channel_path = format!("/servers/{hall}/channels/{general}");
    let failures = [
        bob.api.patch(&server_path, &json!({"name": "mine"})).await,
        alice.api.patch(&server_path, &json!({"name": ""})).await,
        bob.api.delete(&server_path).await,
        bob.api
            .post(
                &format!("{server_path}/channels"),
                &json!({"name": "x", "type": "text"}),
            )
            .await,
        alice
            .api
            .post(
                &format!("{server_path}/channels"),
                &json!({"name": "", "type": "text"}),
            )
            .await,
        bob.api.patch(&channel_path, &json!({"topic": "t"})).await,
        bob.api.delete(&channel_path).await,
        bob.api.post_empty(&format!("{server_path}/join")).await,
        alice.api.delete(&format!("{server_path}/leave")).await,
        alice
            .api
            .patch("/users/@me", &json!({"bio": "b".repeat(501)}))
            .await,
    ];
    for res in &failures {
        assert!(res.status >= 400, "{} {}", res.status, res.text);
    }
    nothing_before_message(&mut alice_gw, &alice, &general).await;
    // Bob's copy of the same control message.
    assert_eq!(
        next_v2(&mut bob_gw, "MESSAGE_CREATE").await["content"],
        "control"
    );
}

#[tokio::test]
async fn v1_clients_never_receive_lifecycle_events() {
    let server = TestServer::start().await;
    let (alice, bob, carol, dave) = (
        server.user("alice").await,
        server.user("bob").await,
        server.user("carol").await,
        server.user("dave").await,
    );
    let (hall, general) = hall(&alice, &[&bob]).await;
    let other = alice.create_server("other").await;
    bob.join(&other).await;
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let (mut carol_gw, _) = server.connect(&carol.ws_query()).await;
    let (mut dave_gw, _) = server.connect(&dave.ws_query()).await;

    let ok = |status: u16, res: &concord_testkit::Response| {
        assert_eq!(res.status, status, "{}", res.text);
    };
    let server_path = format!("/servers/{hall}");
    ok(
        200,
        &alice
            .api
            .patch(&server_path, &json!({"name": "renamed"}))
            .await,
    );
    let news = alice.create_channel(&hall, "news", "text").await;
    ok(
        200,
        &alice
            .api
            .patch(
                &format!("{server_path}/channels/{news}"),
                &json!({"topic": "t"}),
            )
            .await,
    );
    ok(
        204,
        &alice
            .api
            .delete(&format!("{server_path}/channels/{news}"))
            .await,
    );
    carol.join(&hall).await;
    dave.join(&hall).await;
    ok(204, &dave.api.delete(&format!("{server_path}/leave")).await);
    for user in [&alice, &bob, &carol, &dave] {
        ok(
            200,
            &user.api.patch("/users/@me", &json!({"bio": "v1"})).await,
        );
    }
    ok(204, &alice.api.delete(&format!("/servers/{other}")).await);

    let posted = alice.post(&general, "only this").await;
    for gw in [&mut alice_gw, &mut bob_gw, &mut carol_gw] {
        let frame = gw.next_non_presence().await;
        assert_eq!(frame["t"], "MESSAGE_CREATE", "{frame}");
        assert_eq!(frame["d"]["id"], posted["id"]);
        assert!(frame.get("s").is_none(), "v1 frames carry no s: {frame}");
    }
    // Dave left: his control is a DM from alice.
    let dm = alice
        .api
        .post("/dm-channels", &json!({"user_id": dave.id}))
        .await;
    assert!(dm.status == 200 || dm.status == 201, "{}", dm.text);
    let dm_id = dm.body["id"].as_str().unwrap();
    let sent = alice
        .api
        .post(
            &format!("/dm-channels/{dm_id}/messages"),
            &json!({"content": "hi"}),
        )
        .await;
    assert_eq!(sent.status, 201, "{}", sent.text);
    loop {
        let frame = dave_gw.next_non_presence().await;
        // Opening the DM may announce the channel first; both are v1 events.
        if frame["t"] == "DM_CHANNEL_CREATE" {
            continue;
        }
        assert_eq!(frame["t"], "DM_MESSAGE_CREATE", "{frame}");
        break;
    }
}

#[tokio::test]
async fn a_messages_only_session_gets_messages_but_no_lifecycle_events() {
    let server = TestServer::start().await;
    let (alice, bob) = (server.user("alice").await, server.user("bob").await);
    let (hall, general) = hall(&alice, &[&bob]).await;
    let (mut bob_gw, _, ready) = server.identify_v2(&bob, "", Some(&["messages"])).await;
    let ready_s = ready["s"].as_u64().expect("READY carries s");
    let news = alice.create_channel(&hall, "news", "text").await;
    let res = alice
        .api
        .patch(&format!("/servers/{hall}"), &json!({"name": "renamed"}))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let posted = alice.post(&general, "hello").await;
    // No presence intent either: the very next frame is the message, numbered without
    // a gap for what the intents filtered out.
    let frame = bob_gw.next_frame().await;
    assert_eq!(frame["t"], "MESSAGE_CREATE", "{frame}");
    assert_eq!(frame["d"]["id"], posted["id"]);
    assert_eq!(frame["s"], ready_s + 1, "{frame}");
    // Control: a session with every intent does get the CHANNEL_CREATE.
    let (mut full, _, _) = server.identify_v2(&bob, "", None).await;
    alice.create_channel(&hall, "more", "text").await;
    let d = next_v2(&mut full, "CHANNEL_CREATE").await;
    assert_ne!(d["id"], news.as_str());
    assert_eq!(d["name"], "more");
}

// ---- visibility ----

#[tokio::test]
async fn losing_view_channel_sends_channel_delete_and_regaining_it_channel_create() {
    let server = TestServer::start().await;
    let (alice, bob, carol) = (
        server.user("alice").await,
        server.user("bob").await,
        server.user("carol").await,
    );
    let (hall, general) = hall(&alice, &[&bob, &carol]).await;
    let secret = alice.create_channel(&hall, "secret", "text").await;
    let mut bob_gw = v2(&server, &bob).await;
    let mut carol_gw = v2(&server, &carol).await;
    let (mut bob_v1, _) = server.connect(&bob.ws_query()).await;
    server.deny(&secret, &bob, VIEW_CHANNEL).await;
    let d = next_v2(&mut bob_gw, "CHANNEL_DELETE").await;
    assert_eq!(d, json!({"id": secret, "server_id": hall}));
    // Nobody else lost anything, and v1 is told nothing: the next frame each gets is
    // the message.
    alice.post(&general, "after the deny").await;
    let m = next_v2(&mut carol_gw, "MESSAGE_CREATE").await;
    assert_eq!(m["content"], "after the deny");
    assert_eq!(bob_v1.next_non_presence().await["t"], "MESSAGE_CREATE");
    assert_eq!(
        next_v2(&mut bob_gw, "MESSAGE_CREATE").await["content"],
        "after the deny"
    );
    // The override goes: bob may view the channel again.
    let channel: concord_protocol::ChannelId = secret.parse().unwrap();
    let overrides = server
        .state
        .store
        .overrides_of_servers(&[hall.parse().unwrap()])
        .await
        .unwrap();
    let ov = overrides
        .iter()
        .find(|o| o.channel_id == channel)
        .expect("the override");
    let mut allowed = ov.clone();
    allowed.deny = 0;
    let stored = server.state.store.put_override(&allowed).await.unwrap();
    server
        .settled(concord_server::visibility::publish_permission_change(
            &server.state,
            concord_server::directory::DirectoryChange::OverrideUpserted(stored),
        ))
        .await;
    let created = next_v2(&mut bob_gw, "CHANNEL_CREATE").await;
    assert_eq!(created["id"], json!(secret));
    assert_eq!(created["name"], "secret");
    alice.post(&general, "after the allow").await;
    assert_eq!(
        next_v2(&mut carol_gw, "MESSAGE_CREATE").await["content"],
        "after the allow",
        "carol got no CHANNEL_CREATE: she never lost the channel"
    );
}
