//! REST end to end: registration, login, refresh rotation (`rest.md` §2.3, §7.1), the
//! caller's and others' profiles (§7.2), ICE servers (§7.19), the `/api` mirror and the
//! security headers (§1).

use base64::Engine;
use concord_protocol::{Status, Timestamp, UserId, limits};
use concord_server::{auth, config::RegistrationMode};
use concord_store::RefreshSession;
use concord_testkit::{Response, TestServer, TestUser, assert_exact_error, sorted_keys};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

const USER_KEYS: [&str; 11] = [
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

const PROFILE_KEYS: [&str; 9] = [
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

fn sorted(expected: &[&str]) -> Vec<String> {
    let mut keys: Vec<String> = expected.iter().map(|k| (*k).to_string()).collect();
    keys.sort();
    keys
}

/// A complete AuthResponse; returns its user.
#[track_caller]
fn assert_auth_response(body: &Value) -> Value {
    assert_eq!(
        sorted_keys(body),
        ["access_token", "refresh_token", "user"],
        "{body}"
    );
    assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(
        body["refresh_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert_ne!(body["access_token"], body["refresh_token"]);
    assert_eq!(sorted_keys(&body["user"]), sorted(&USER_KEYS), "{body}");
    body["user"].clone()
}

async fn register(server: &TestServer, body: Value) -> Response {
    server.api().post("/auth/register", &body).await
}

async fn login(server: &TestServer, username: &str, password: &str) -> Response {
    server
        .api()
        .post(
            "/auth/login",
            &json!({"username": username, "password": password}),
        )
        .await
}

async fn refresh(server: &TestServer, token: &str) -> Response {
    server
        .api()
        .post("/auth/refresh", &json!({"refresh_token": token}))
        .await
}

#[tokio::test]
async fn register_answers_a_full_auth_response_and_only_the_first_human_is_admin() {
    let server = TestServer::start().await;
    let res = register(
        &server,
        json!({"username": "Alice_1", "email": "alice@example.org", "password": "correct-horse-42"}),
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let user = assert_auth_response(&res.body);
    assert!(user["id"].as_str().unwrap().parse::<UserId>().is_ok());
    assert_eq!(user["username"], "Alice_1");
    assert_eq!(user["email"], "alice@example.org");
    for null in ["avatar_url", "bio", "pronouns", "custom_status", "activity"] {
        assert!(user[null].is_null(), "{null}: {user}");
    }
    // No session is live yet, so even the user sees "offline".
    assert_eq!(user["status"], "offline");
    assert!(user["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        user["is_admin"], true,
        "first user administers the instance"
    );

    // The tokens work: access on REST, refresh on /auth/refresh.
    let alice = TestUser::from_auth(&server, &res.body);
    let me = alice.api.get("/users/@me").await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body, user);
    assert_eq!(refresh(&server, &alice.refresh).await.status, 200);

    let res = register(
        &server,
        json!({"username": "bob", "password": "correct-horse-42"}),
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let bob = assert_auth_response(&res.body);
    assert_eq!(bob["is_admin"], false);
    assert!(
        bob["email"].is_null(),
        "email omitted at registration is null"
    );
}

#[tokio::test]
async fn register_validates_fields_in_order() {
    let server = TestServer::start().await;
    let ok = |username: &str, email: Value, password: &str| json!({"username": username, "email": email, "password": password});
    for (body, why) in [
        (
            ok("a", Value::Null, "correct-horse-42"),
            "username too short",
        ),
        (
            ok(&"a".repeat(33), Value::Null, "correct-horse-42"),
            "username too long",
        ),
        (
            ok("bad-name", Value::Null, "correct-horse-42"),
            "username charset",
        ),
        (
            ok("bad name", Value::Null, "correct-horse-42"),
            "username space",
        ),
        (
            ok("alice", json!("not-an-email"), "correct-horse-42"),
            "email without @",
        ),
        (
            ok("alice", json!("a@nodot"), "correct-horse-42"),
            "email domain without dot",
        ),
        (
            ok("alice", json!("@example.org"), "correct-horse-42"),
            "email without local part",
        ),
        (ok("alice", json!(""), "correct-horse-42"), "empty email"),
        (ok("alice", Value::Null, "short12"), "password too short"),
        (
            ok("alice", Value::Null, &"p".repeat(129)),
            "password too long",
        ),
    ] {
        let res = register(&server, body).await;
        assert_eq!(res.status, 400, "{why}: {}", res.text);
        assert_exact_error(&res, 400);
    }
    // Limits are inclusive.
    let res = register(&server, ok(&"a".repeat(32), Value::Null, &"p".repeat(128))).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let res = register(&server, ok("ab", Value::Null, "q7-x!v2z")).await;
    assert_eq!(res.status, 201, "{}", res.text);

    // The username is checked before the password, the email before the password.
    let res = register(&server, ok("x", Value::Null, "short")).await;
    assert!(
        res.body["error"].as_str().unwrap().contains("Username"),
        "{}",
        res.text
    );
    let res = register(&server, ok("carol", json!("nope"), "short")).await;
    assert!(
        res.body["error"].as_str().unwrap().contains("Email"),
        "{}",
        res.text
    );
}

#[tokio::test]
async fn register_rejects_malformed_bodies_with_framework_statuses() {
    let server = TestServer::start().await;
    let api = server.api();
    let valid = r#"{"username":"alice","password":"correct-horse-42"}"#;
    assert_exact_error(&api.raw("POST", "/auth/register", None, valid).await, 415);
    assert_exact_error(
        &api.raw("POST", "/auth/register", Some("text/plain"), valid)
            .await,
        415,
    );
    assert_exact_error(
        &api.raw("POST", "/auth/register", Some("application/json"), "{")
            .await,
        400,
    );
    assert_exact_error(
        &api.raw("POST", "/auth/register", Some("application/json"), "")
            .await,
        400,
    );
    assert_exact_error(
        &register(
            &server,
            json!({"username": 5, "password": "correct-horse-42"}),
        )
        .await,
        422,
    );
    assert_exact_error(&register(&server, json!({"username": "alice"})).await, 422);
    assert_exact_error(
        &register(
            &server,
            json!({"username": "alice", "password": "correct-horse-42", "email": 7}),
        )
        .await,
        422,
    );
    // Nothing was created along the way.
    assert_eq!(
        register(
            &server,
            json!({"username": "alice", "password": "correct-horse-42"})
        )
        .await
        .status,
        201
    );
}

#[tokio::test]
async fn register_refuses_taken_usernames_and_emails_case_sensitively() {
    let server = TestServer::start().await;
    let first =
        json!({"username": "alice", "email": "a@example.org", "password": "correct-horse-42"});
    assert_eq!(register(&server, first.clone()).await.status, 201);
    assert_exact_error(&register(&server, first).await, 409);
    let same_email =
        json!({"username": "alice2", "email": "a@example.org", "password": "correct-horse-42"});
    assert_exact_error(&register(&server, same_email).await, 409);
    let other_case =
        json!({"username": "Alice", "email": "A@example.org", "password": "correct-horse-42"});
    assert_eq!(register(&server, other_case).await.status, 201);
}

#[tokio::test]
async fn closed_registration_is_forbidden_after_validation() {
    let server = TestServer::start_with(|c| c.registration = RegistrationMode::Closed).await;
    let res = register(
        &server,
        json!({"username": "alice", "password": "correct-horse-42"}),
    )
    .await;
    assert_exact_error(&res, 403);
    let res = register(
        &server,
        json!({"username": "a", "password": "correct-horse-42"}),
    )
    .await;
    assert_exact_error(&res, 400);
    let res = register(
        &server,
        json!({"username": "alice", "password": "correct-horse-42", "invite_code": "abcd1234"}),
    )
    .await;
    assert_exact_error(&res, 403);
}

#[tokio::test]
async fn invite_only_registration_needs_a_known_code() {
    let server = TestServer::start_with(|c| c.registration = RegistrationMode::InviteOnly).await;
    let body = |code: Value| json!({"username": "alice", "password": "correct-horse-42", "invite_code": code});
    let missing = register(
        &server,
        json!({"username": "alice", "password": "correct-horse-42"}),
    )
    .await;
    assert_exact_error(&missing, 400);
    assert_exact_error(&register(&server, body(Value::Null)).await, 400);
    let blank = register(&server, body(json!("   "))).await;
    assert_exact_error(&blank, 400);
    assert_eq!(missing.body, blank.body, "blank counts as missing");
    // No invites exist yet, so every code is unknown.
    let unknown = register(&server, body(json!("abcd1234"))).await;
    assert_exact_error(&unknown, 400);
    assert_ne!(unknown.body, missing.body);
    // Field validation comes first.
    let res = register(
        &server,
        json!({"username": "a", "password": "correct-horse-42"}),
    )
    .await;
    assert!(
        res.body["error"].as_str().unwrap().contains("Username"),
        "{}",
        res.text
    );
}

#[tokio::test]
async fn login_answers_an_auth_response_and_keeps_the_chosen_status() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let res = alice
        .api
        .patch(
            "/users/@me",
            &json!({"status": "dnd", "custom_status": "busy"}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);

    let res = login(&server, "alice", "correct-horse-42").await;
    assert_eq!(res.status, 200, "{}", res.text);
    let user = assert_auth_response(&res.body);
    assert_eq!(user["id"], alice.id.as_str());
    assert_eq!(user["username"], "alice");
    assert_eq!(
        user["status"], "offline",
        "effective status: no session is live"
    );
    assert_eq!(user["custom_status"], "busy");
    assert_eq!(user["is_admin"], true);
    let again = TestUser::from_auth(&server, &res.body);
    assert_eq!(again.api.get("/users/@me").await.status, 200);
    assert_ne!(again.token, alice.token);

    // Unlike the reference, login leaves the chosen status alone.
    let row = server
        .state
        .store
        .user(alice.user_id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, Status::Dnd);
    assert_eq!(row.custom_status.as_deref(), Some("busy"));
}

#[tokio::test]
async fn login_errors() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let api = server.api();

    for (username, password) in [
        (String::new(), "correct-horse-42".to_string()),
        ("alice".to_string(), String::new()),
        ("a".repeat(129), "correct-horse-42".to_string()),
        ("alice".to_string(), "p".repeat(129)),
    ] {
        assert_exact_error(&login(&server, &username, &password).await, 400);
    }
    let valid = r#"{"username":"alice","password":"correct-horse-42"}"#;
    assert_exact_error(&api.raw("POST", "/auth/login", None, valid).await, 415);
    assert_exact_error(
        &api.raw(
            "POST",
            "/auth/login",
            Some("application/json"),
            "{\"username\"",
        )
        .await,
        400,
    );
    assert_exact_error(
        &api.post("/auth/login", &json!({"username": "alice"})).await,
        422,
    );
    assert_exact_error(
        &api.post("/auth/login", &json!({"username": "alice", "password": 1}))
            .await,
        422,
    );

    let unknown = login(&server, "nobody", "correct-horse-42").await;
    assert_exact_error(&unknown, 401);
    let wrong = login(&server, "alice", "password124").await;
    assert_exact_error(&wrong, 401);
    assert_eq!(
        unknown.body, wrong.body,
        "one message for unknown user and wrong password"
    );
    assert_exact_error(&login(&server, "Alice", "correct-horse-42").await, 401);

    // A bot user exists but has no password: it can never log in.
    let bot = alice.api.post("/bots", &json!({"name": "Helper"})).await;
    assert_eq!(bot.status, 201, "{}", bot.text);
    let bot_user = bot.body["bot"]["user_id"]
        .as_str()
        .unwrap()
        .parse::<UserId>()
        .unwrap();
    let bot_name = server
        .state
        .store
        .user(bot_user)
        .await
        .unwrap()
        .unwrap()
        .username;
    assert_exact_error(&login(&server, &bot_name, "correct-horse-42").await, 401);
}

#[tokio::test]
async fn refresh_rotates_both_tokens_and_the_old_one_dies() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let original = server
        .state
        .store
        .refresh_session_by_hash(&auth::sha256_hex(&alice.refresh))
        .await
        .unwrap()
        .expect("registration made a session");

    let res = refresh(&server, &alice.refresh).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let user = assert_auth_response(&res.body);
    assert_eq!(user["id"], alice.id.as_str());
    assert_eq!(user["status"], "offline");
    let first = TestUser::from_auth(&server, &res.body);
    assert_ne!(first.refresh, alice.refresh);
    assert_ne!(first.token, alice.token);
    assert_eq!(first.api.get("/users/@me").await.status, 200);

    // Single use: the old refresh token is dead, the new one works once.
    assert_exact_error(&refresh(&server, &alice.refresh).await, 401);
    let res = refresh(&server, &first.refresh).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let second = TestUser::from_auth(&server, &res.body);
    assert_exact_error(&refresh(&server, &first.refresh).await, 401);

    // Same session row, same absolute expiry: refreshing does not extend it.
    let rotated = server
        .state
        .store
        .refresh_session_by_hash(&auth::sha256_hex(&second.refresh))
        .await
        .unwrap()
        .expect("rotated session");
    assert_eq!(rotated.id, original.id);
    assert_eq!(rotated.expires_at, original.expires_at);
    assert_eq!(rotated.created_at, original.created_at);
    let lifetime = original.expires_at.as_micros() - original.created_at.as_micros();
    assert_eq!(lifetime, limits::REFRESH_TOKEN_SECS * 1_000_000);
}

#[tokio::test]
async fn refresh_errors() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let api = server.api();

    assert_exact_error(&refresh(&server, "").await, 400);
    assert_exact_error(&refresh(&server, &"x".repeat(2049)).await, 400);
    assert_exact_error(
        &api.raw("POST", "/auth/refresh", None, r#"{"refresh_token":"x"}"#)
            .await,
        415,
    );
    assert_exact_error(
        &api.raw("POST", "/auth/refresh", Some("application/json"), "nope")
            .await,
        400,
    );
    assert_exact_error(
        &api.post("/auth/refresh", &json!({"refresh_token": 5}))
            .await,
        422,
    );
    assert_exact_error(&api.post("/auth/refresh", &json!({})).await, 422);

    assert_exact_error(&refresh(&server, "not.a.jwt").await, 401);
    // An access token is not a refresh token.
    assert_exact_error(&refresh(&server, &alice.token).await, 401);
    // And a refresh token is not an access token.
    assert_exact_error(&api.bearer(&alice.refresh).get("/users/@me").await, 401);

    // A well-signed refresh token with no session behind it.
    let row = server
        .state
        .store
        .user(alice.user_id())
        .await
        .unwrap()
        .unwrap();
    let now = Timestamp::now();
    let orphan = server
        .state
        .keys
        .issue(&row, auth::TokenType::Refresh, now, None);
    assert_exact_error(&refresh(&server, &orphan).await, 401);

    // A session whose absolute end has passed, although its JWT is still valid.
    let expired = server
        .state
        .keys
        .issue(&row, auth::TokenType::Refresh, now, None);
    let session = RefreshSession {
        id: uuid::Uuid::new_v4(),
        user_id: row.id,
        token_hash: auth::sha256_hex(&expired),
        created_at: now.add_micros(-8 * 24 * 3600 * 1_000_000),
        expires_at: now.add_micros(-1_000_000),
        previous_hash: None,
        rotated_at: None,
    };
    server
        .state
        .store
        .create_refresh_session(&session, now, 10)
        .await
        .unwrap();
    assert_exact_error(&refresh(&server, &expired).await, 401);

    // The live session still works.
    assert_eq!(refresh(&server, &alice.refresh).await.status, 200);
}

#[tokio::test]
async fn only_the_ten_newest_sessions_survive() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let mut logins = Vec::new();
    for _ in 0..11 {
        let res = login(&server, "alice", "correct-horse-42").await;
        assert_eq!(res.status, 200, "{}", res.text);
        logins.push(res.body["refresh_token"].as_str().unwrap().to_string());
    }
    // Twelve sessions were opened (registration + 11 logins); the two oldest went.
    assert_exact_error(&refresh(&server, &alice.refresh).await, 401);
    assert_exact_error(&refresh(&server, &logins[0]).await, 401);
    for token in &logins[1..] {
        assert_eq!(refresh(&server, token).await.status, 200);
    }
}

#[tokio::test]
async fn get_me_answers_the_full_self_user() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let res = alice.api.get("/users/@me").await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(sorted_keys(&res.body), sorted(&USER_KEYS));
    assert_eq!(res.body["id"], alice.id.as_str());
    assert_eq!(res.body["username"], "alice");
    assert!(res.body["email"].is_null());
    assert_eq!(res.body["status"], "offline");
    assert_eq!(res.body["is_admin"], true);

    assert_exact_error(&server.api().get("/users/@me").await, 401);
    assert_exact_error(&server.api().bearer("garbage").get("/users/@me").await, 401);
    assert_exact_error(
        &server
            .api()
            .authorization(&format!("bearer {}", alice.token))
            .get("/users/@me")
            .await,
        401,
    );
}

#[tokio::test]
async fn patch_me_updates_given_fields_and_leaves_the_rest() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let res = alice
        .api
        .patch(
            "/users/@me",
            &json!({
                "avatar_url": "https://cdn.example.org/a.png",
                "bio": "hello",
                "pronouns": "she/her",
                "status": "away",
                "custom_status": "lunch",
                "activity": "eating",
                "unknown_field": true
            }),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(sorted_keys(&res.body), sorted(&USER_KEYS));
    assert_eq!(res.body["avatar_url"], "https://cdn.example.org/a.png");
    assert_eq!(res.body["bio"], "hello");
    assert_eq!(res.body["pronouns"], "she/her");
    assert_eq!(res.body["custom_status"], "lunch");
    assert_eq!(res.body["activity"], "eating");
    assert_eq!(
        res.body["status"], "offline",
        "not connected: effective status"
    );
    let row = server
        .state
        .store
        .user(alice.user_id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, Status::Away);

    // Null and absent leave fields unchanged; "" blanks a string.
    let res = alice
        .api
        .patch(
            "/users/@me",
            &json!({"bio": null, "avatar_url": null, "pronouns": "", "status": null}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["bio"], "hello");
    assert_eq!(res.body["avatar_url"], "https://cdn.example.org/a.png");
    assert_eq!(res.body["pronouns"], "");
    assert_eq!(res.body["custom_status"], "lunch");
    let res = alice.api.patch("/users/@me", &json!({})).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body["activity"], "eating");
    assert_eq!(alice.api.get("/users/@me").await.body, res.body);
    let row = server
        .state
        .store
        .user(alice.user_id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, Status::Away);
}

#[tokio::test]
async fn patch_me_errors() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    for body in [
        json!({"avatar_url": "ftp://example.org/a.png"}),
        json!({"avatar_url": "example.org/a.png"}),
        json!({"avatar_url": "https://"}),
        json!({"avatar_url": format!("https://{}", "a".repeat(2041))}),
        json!({"bio": "b".repeat(501)}),
        json!({"pronouns": "p".repeat(41)}),
        json!({"status": "busy"}),
        json!({"status": "Online"}),
        json!({"custom_status": "c".repeat(129)}),
        json!({"activity": "a".repeat(129)}),
    ] {
        assert_exact_error(&alice.api.patch("/users/@me", &body).await, 400);
    }
    // Limits are inclusive.
    let res = alice
        .api
        .patch(
            "/users/@me",
            &json!({
                "avatar_url": format!("http://{}", "a".repeat(2041)),
                "bio": "b".repeat(500),
                "pronouns": "p".repeat(40),
                "custom_status": "c".repeat(128),
                "activity": "a".repeat(128)
            }),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);

    assert_exact_error(
        &alice.api.patch("/users/@me", &json!({"bio": 5})).await,
        422,
    );
    assert_exact_error(
        &alice
            .api
            .raw("PATCH", "/users/@me", Some("application/json"), "{")
            .await,
        400,
    );
    assert_exact_error(&alice.api.raw("PATCH", "/users/@me", None, "{}").await, 415);
    assert_exact_error(
        &server.api().patch("/users/@me", &json!({"bio": "x"})).await,
        401,
    );
    // Nothing changed through the failures.
    assert_eq!(
        alice.api.get("/users/@me").await.body["bio"],
        "b".repeat(500)
    );
}

#[tokio::test]
async fn public_profiles() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    bob.api
        .patch("/users/@me", &json!({"bio": "hi", "activity": "coding"}))
        .await;

    let res = alice.api.get(&format!("/users/{}", bob.id)).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(sorted_keys(&res.body), sorted(&PROFILE_KEYS));
    assert_eq!(res.body["id"], bob.id.as_str());
    assert_eq!(res.body["username"], "bob");
    assert_eq!(res.body["bio"], "hi");
    assert_eq!(res.body["activity"], "coding");
    assert_eq!(res.body["status"], "offline");
    assert!(res.body["avatar_url"].is_null());
    assert!(res.body["custom_status"].is_null());
    assert!(res.body["pronouns"].is_null());

    assert_exact_error(
        &alice
            .api
            .get(&format!("/users/{}", uuid::Uuid::new_v4()))
            .await,
        404,
    );
    assert_exact_error(&alice.api.get("/users/not-a-uuid").await, 400);
    assert_exact_error(&server.api().get(&format!("/users/{}", bob.id)).await, 401);
}

#[tokio::test]
async fn patch_me_announces_presence_changes_to_co_members_only_when_they_change() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let server_id = alice.create_server("s").await;
    bob.join(&server_id).await;

    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let (_alice_gw, _) = server.connect(&alice.ws_query()).await;
    // Alice is announced online before she changes anything.
    let online = bob_gw.next_event("PRESENCE_UPDATE").await;
    assert_eq!(online["user_id"], alice.id.as_str());
    assert_eq!(online["status"], "online");

    // A profile-only change is not a presence change: nothing is sent...
    let res = alice
        .api
        .patch("/users/@me", &json!({"bio": "new bio"}))
        .await;
    assert_eq!(res.status, 200);
    // ...which the next frame proves, since per-session delivery is in order.
    let res = alice
        .api
        .patch(
            "/users/@me",
            &json!({"status": "dnd", "custom_status": "focus", "activity": "writing"}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(
        res.body["status"], "dnd",
        "connected: the chosen status shows"
    );
    let update = bob_gw.next_frame().await;
    assert_eq!(update["op"], "DISPATCH");
    assert_eq!(update["t"], "PRESENCE_UPDATE");
    assert_eq!(
        update["d"],
        json!({"user_id": alice.id, "status": "dnd", "custom_status": "focus", "activity": "writing"})
    );

    // The same values again change nothing and send nothing.
    alice
        .api
        .patch("/users/@me", &json!({"status": "dnd"}))
        .await;
    alice
        .api
        .patch("/users/@me", &json!({"activity": "reading"}))
        .await;
    let update = bob_gw.next_frame().await;
    assert_eq!(
        update["d"],
        json!({"user_id": alice.id, "status": "dnd", "custom_status": "focus", "activity": "reading"})
    );

    // Choosing "offline" (invisible) looks like disconnecting.
    alice
        .api
        .patch("/users/@me", &json!({"status": "offline"}))
        .await;
    let update = bob_gw.next_frame().await;
    assert_eq!(
        update["d"],
        json!({"user_id": alice.id, "status": "offline", "custom_status": null, "activity": null})
    );
}

#[tokio::test]
async fn ice_servers_without_turn_are_two_stun_entries() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let res = alice.api.get("/ice-servers").await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(
        res.body,
        json!({
            "iceServers": [
                {"urls": "stun:stun.l.google.com:19302"},
                {"urls": "stun:stun1.l.google.com:19302"}
            ],
            "ttl": 86400
        })
    );
    assert_exact_error(&server.api().get("/ice-servers").await, 401);
}

#[tokio::test]
async fn ice_servers_with_turn_carry_time_limited_credentials() {
    let server = TestServer::start_with(|c| {
        c.ice.turn_url = Some("turn:turn.example.org:3478".into());
        c.ice.turn_secret = Some("shared-secret".into());
    })
    .await;
    let alice = server.user("alice").await;
    let before = Timestamp::now().as_secs();
    let res = alice.api.get("/ice-servers").await;
    let after = Timestamp::now().as_secs();
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["ttl"], 86400);
    let servers = res.body["iceServers"].as_array().unwrap();
    assert_eq!(servers.len(), 3);
    assert_eq!(sorted_keys(&servers[0]), ["urls"]);
    assert_eq!(sorted_keys(&servers[1]), ["urls"]);
    let turn = &servers[2];
    assert_eq!(sorted_keys(turn), ["credential", "urls", "username"]);
    assert_eq!(turn["urls"], "turn:turn.example.org:3478");
    let username = turn["username"].as_str().unwrap();
    let (expiry, name) = username.split_once(':').unwrap();
    assert_eq!(name, "alice");
    let expiry: i64 = expiry.parse().unwrap();
    assert!(
        (before + 86400..=after + 86400).contains(&expiry),
        "{expiry}"
    );
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(b"shared-secret").unwrap();
    mac.update(username.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(turn["credential"], expected);

    // Only the URL without the secret (or the reverse) is not a usable TURN setup.
    let half = TestServer::start_with(|c| c.ice.turn_url = Some("turn:t.example.org".into())).await;
    let carol = half.user("carol").await;
    assert_eq!(
        carol.api.get("/ice-servers").await.body["iceServers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn routes_are_mirrored_under_api_and_carry_security_headers() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let res = alice.api.get("/api/users/@me").await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["id"], alice.id.as_str());
    let res = server
        .api()
        .post(
            "/api/auth/login",
            &json!({"username": "alice", "password": "correct-horse-42"}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);

    for res in [
        alice.api.get("/users/@me").await,
        server.api().get("/users/@me").await,
    ] {
        let h = &res.headers;
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "strict-origin-when-cross-origin");
        assert!(h.contains_key("content-security-policy"));
        assert!(
            h["strict-transport-security"]
                .to_str()
                .unwrap()
                .contains("max-age=31536000")
        );
    }
    let health = server.api().get("/health").await;
    assert_eq!(health.status, 200);
    assert!(!health.headers.contains_key("x-frame-options"));
}

/// Issue 16's password policy: only whitespace, the username, or a common password is
/// refused with 400 and creates nothing; an ordinary password passes.
#[tokio::test]
async fn weak_passwords_are_refused_at_registration() {
    let server = TestServer::start().await;
    let api = server.api();
    for (username, password) in [
        ("spacey", "          "),
        ("mirror_me", "mirror_me"),
        ("mirror_me", "MIRROR_ME"),
        ("common", "password1"),
        ("common", "Trustno1"),
        ("common", "qwertyuiop"),
    ] {
        let res = api
            .post(
                "/auth/register",
                &json!({"username": username, "password": password}),
            )
            .await;
        assert_exact_error(&res, 400);
        // Nothing was created: the name is still free.
        let login = api
            .post(
                "/auth/login",
                &json!({"username": username, "password": password}),
            )
            .await;
        assert_eq!(login.status, 401, "{username}: {}", login.text);
    }
    // Positive control: the same names with ordinary passwords register.
    for username in ["spacey", "mirror_me", "common"] {
        let res = api
            .post(
                "/auth/register",
                &json!({"username": username, "password": "a-perfectly-fine-one"}),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.text);
    }
}

/// Issue 16's per-account login throttle: attempts on one username are counted from
/// every address together; past the bucket the answer is 429 with `Retry-After`, even
/// for the right password, while other accounts log in as usual.
#[tokio::test]
async fn logins_are_throttled_per_account() {
    let server = TestServer::start_with(|c| {
        c.limits.login_per_account = concord_server::config::PerMinute {
            per_minute: 1,
            burst: 3,
        };
    })
    .await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let api = server.api();
    let login = |username: &str, password: &str| {
        let body = json!({"username": username, "password": password});
        let api = api.clone();
        async move { api.post("/auth/login", &body).await }
    };
    for _ in 0..3 {
        assert_exact_error(&login(&alice.username, "wrong-guess-here").await, 401);
    }
    let throttled = login(&alice.username, "correct-horse-42").await;
    assert_exact_error(&throttled, 429);
    let retry: u64 = throttled.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "retry-after {retry}");
    // Another account is untouched.
    assert_eq!(login(&bob.username, "correct-horse-42").await.status, 200);
}
