//! A login is a family of tokens (rest.md §2.3): every access and refresh token issued
//! from one login or its refreshes. Reusing a replaced refresh token (a sign it was
//! stolen) or logging out ends the family: its tokens are refused from then on, access
//! tokens included, and the gateway sessions it opened close, 4009 in v2 and 1008 in
//! v1, while the user's other logins carry on. Only the token replaced moments ago (two
//! tabs refreshing at once) gets a plain 401 (R15).

use concord_testkit::{Closed, Gateway, TestServer, TestUser, assert_exact_error};
use serde_json::{Value, json};

/// Logs `user` in once more: a second login, a family of its own.
async fn second_login(server: &TestServer, user: &TestUser) -> TestUser {
    let res = server
        .api()
        .post(
            "/auth/login",
            &json!({"username": user.username, "password": "correct-horse-42"}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    TestUser::from_auth(server, &res.body)
}

/// `/auth/refresh` with `token`: the status and, on success, the new pair.
async fn refresh(server: &TestServer, token: &str) -> (u16, Value) {
    let res = server
        .api()
        .post("/auth/refresh", &json!({"refresh_token": token}))
        .await;
    (res.status, res.body)
}

/// A v2 session (READY read) and a v1 session of `user`'s login.
async fn sessions(server: &TestServer, user: &TestUser) -> (Gateway, Gateway) {
    let (v2, _, _) = server.identify_v2(user, "", None).await;
    let (v1, _) = server.connect(&user.ws_query()).await;
    (v2, v1)
}

/// Each of `gateways` still receives events: a message posted in `channel` arrives.
async fn still_live(gateways: &mut [&mut Gateway], poster: &TestUser, channel: &str, text: &str) {
    poster.post(channel, text).await;
    for gateway in gateways {
        let message = gateway.next_event("MESSAGE_CREATE").await;
        assert_eq!(message["content"], text);
    }
}

async fn metric(server: &TestServer, name: &str) -> String {
    let res = server.api().get("/metrics").await;
    res.text
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn reusing_a_replaced_refresh_token_ends_that_login_everywhere_and_only_it() {
    // No grace: any reuse counts.
    let server = TestServer::start_with(|c| c.refresh_reuse_grace_secs = 0).await;
    let alice = server.user("alice").await;
    let other = second_login(&server, &alice).await;
    let server_id = alice.create_server("home").await;
    let channel = alice.create_channel(&server_id, "general", "text").await;
    let (mut v2, mut v1) = sessions(&server, &alice).await;
    let (mut other_v2, mut other_v1) = sessions(&server, &other).await;

    // A legitimate refresh: the new pair works, the old access token too (same login).
    let (status, fresh) = refresh(&server, &alice.refresh).await;
    assert_eq!(status, 200, "{fresh}");
    let fresh = TestUser::from_auth(&server, &fresh);
    assert_eq!(fresh.api.get("/users/@me").await.status, 200);
    assert_eq!(alice.api.get("/users/@me").await.status, 200);
    still_live(
        &mut [&mut v2, &mut v1, &mut other_v2, &mut other_v1],
        &other,
        &channel,
        "before",
    )
    .await;

    // The replaced token comes back: a thief's replay (or the victim's, after a thief
    // refreshed first). The answer is 401, and the login ends.
    let (status, body) = refresh(&server, &alice.refresh).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(v2.closed().await, Closed::Code(4009));
    assert_eq!(v1.closed().await, Closed::Code(1008));
    assert_eq!(refresh(&server, &fresh.refresh).await.0, 401);
    assert_exact_error(&fresh.api.get("/users/@me").await, 401);
    assert_exact_error(&alice.api.get("/users/@me").await, 401);
    // Its access tokens cannot open a gateway session either.
    assert!(server.connect_raw(&fresh.ws_query()).await.is_err());
    assert!(
        metric(&server, "concord_refresh_token_reuses_total")
            .await
            .ends_with(" 1"),
        "the reuse is counted"
    );

    // The other login of the same user is untouched.
    assert_eq!(other.api.get("/users/@me").await.status, 200);
    still_live(
        &mut [&mut other_v2, &mut other_v1],
        &other,
        &channel,
        "after",
    )
    .await;
    assert_eq!(refresh(&server, &other.refresh).await.0, 200);
}

#[tokio::test]
async fn two_tabs_refreshing_with_the_same_token_keep_the_login() {
    // The default grace (10 s) covers a test's few milliseconds.
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let server_id = alice.create_server("home").await;
    let channel = alice.create_channel(&server_id, "general", "text").await;
    let (mut v2, _v1) = sessions(&server, &alice).await;

    let (status, first) = refresh(&server, &alice.refresh).await;
    assert_eq!(status, 200);
    // The second tab, a moment later, with the same token: refused, nothing ended.
    assert_eq!(refresh(&server, &alice.refresh).await.0, 401);
    let first = TestUser::from_auth(&server, &first);
    assert_eq!(first.api.get("/users/@me").await.status, 200);
    let (status, second) = refresh(&server, &first.refresh).await;
    assert_eq!(status, 200, "the winner's token still rotates");
    let second = TestUser::from_auth(&server, &second);
    still_live(&mut [&mut v2], &second, &channel, "kept").await;

    // Only the token replaced last is excused: one replaced two rotations ago is a
    // replay, and ends the login (the positive control of the grace).
    assert_eq!(refresh(&server, &alice.refresh).await.0, 401);
    assert_eq!(v2.closed().await, Closed::Code(4009));
    assert_exact_error(&second.api.get("/users/@me").await, 401);
}

#[tokio::test]
async fn logout_with_a_refresh_token_closes_that_logins_sessions_only() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let other = second_login(&server, &alice).await;
    let server_id = alice.create_server("home").await;
    let channel = alice.create_channel(&server_id, "general", "text").await;
    let (mut v2, mut v1) = sessions(&server, &alice).await;
    let (mut other_v2, mut other_v1) = sessions(&server, &other).await;

    let res = alice
        .api
        .post("/auth/logout", &json!({"refresh_token": alice.refresh}))
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert_eq!(v2.closed().await, Closed::Code(4009));
    assert_eq!(v1.closed().await, Closed::Code(1008));
    assert_exact_error(&alice.api.get("/users/@me").await, 401);
    assert!(server.connect_raw(&alice.ws_query()).await.is_err());

    still_live(
        &mut [&mut other_v2, &mut other_v1],
        &other,
        &channel,
        "still here",
    )
    .await;
}

#[tokio::test]
async fn logout_of_every_login_closes_every_session_of_the_caller_only() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let other = second_login(&server, &alice).await;
    let bob = server.user("bob").await;
    let server_id = bob.create_server("home").await;
    let channel = bob.create_channel(&server_id, "general", "text").await;
    let (mut v2, mut v1) = sessions(&server, &alice).await;
    let (mut other_v2, _other_v1) = sessions(&server, &other).await;
    let (mut bob_v2, _bob_v1) = sessions(&server, &bob).await;

    assert_eq!(alice.api.post_empty("/auth/logout").await.status, 204);
    assert_eq!(v2.closed().await, Closed::Code(4009));
    assert_eq!(v1.closed().await, Closed::Code(1008));
    assert_eq!(other_v2.closed().await, Closed::Code(4009));
    assert_exact_error(&other.api.get("/users/@me").await, 401);
    still_live(&mut [&mut bob_v2], &bob, &channel, "bob stays").await;
}
