//! `POST /auth/logout` over real HTTP: one refresh session or all of the caller's end,
//! their refresh tokens get 401 at once, and nobody ends another account's session.

use concord_testkit::{TestServer, TestUser, assert_error, assert_exact_error};
use serde_json::json;

/// Logs `user` in once more and returns the new refresh token.
async fn login(server: &TestServer, user: &TestUser) -> String {
    let res = server
        .api()
        .post(
            "/auth/login",
            &json!({"username": user.username, "password": "correct-horse-42"}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.body["refresh_token"].as_str().unwrap().to_owned()
}

async fn refresh_status(server: &TestServer, token: &str) -> u16 {
    server
        .api()
        .post("/auth/refresh", &json!({"refresh_token": token}))
        .await
        .status
}

#[tokio::test]
async fn logout_with_a_token_ends_exactly_that_session() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let second = login(&server, &alice).await;
    let res = alice
        .api
        .post("/auth/logout", &json!({"refresh_token": alice.refresh}))
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert!(res.text.is_empty());
    assert_eq!(refresh_status(&server, &alice.refresh).await, 401);
    assert_eq!(refresh_status(&server, &second).await, 200);
    // Already ended: nothing to do, still 204.
    let again = alice
        .api
        .post("/auth/logout", &json!({"refresh_token": alice.refresh}))
        .await;
    assert_eq!(again.status, 204, "{}", again.text);
    // The access token runs until it expires.
    assert_eq!(alice.api.get("/users/@me").await.status, 200);
}

#[tokio::test]
async fn logout_without_a_token_ends_every_session_of_the_caller_only() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let second = login(&server, &alice).await;
    let res = alice.api.post_empty("/auth/logout").await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert_eq!(refresh_status(&server, &alice.refresh).await, 401);
    assert_eq!(refresh_status(&server, &second).await, 401);
    assert_eq!(refresh_status(&server, &bob.refresh).await, 200);

    // `{}` and a null token mean the same.
    let third = login(&server, &alice).await;
    assert_eq!(alice.api.post("/auth/logout", &json!({})).await.status, 204);
    assert_eq!(refresh_status(&server, &third).await, 401);
    let fourth = login(&server, &alice).await;
    let res = alice
        .api
        .post("/auth/logout", &json!({"refresh_token": null}))
        .await;
    assert_eq!(res.status, 204);
    assert_eq!(refresh_status(&server, &fourth).await, 401);
    // So does a JSON `null` body.
    let fifth = login(&server, &alice).await;
    let res = alice
        .api
        .raw("POST", "/auth/logout", Some("application/json"), "null")
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert_eq!(refresh_status(&server, &fifth).await, 401);
}

#[tokio::test]
async fn logout_refuses_bad_input_and_other_accounts_sessions() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    assert_exact_error(&server.api().post_empty("/auth/logout").await, 401);
    // Refresh tokens are not credentials.
    assert_exact_error(
        &server
            .api()
            .bearer(&alice.refresh)
            .post_empty("/auth/logout")
            .await,
        401,
    );
    let res = alice
        .api
        .post("/auth/logout", &json!({"refresh_token": bob.refresh}))
        .await;
    assert_exact_error(&res, 403);
    assert_eq!(refresh_status(&server, &bob.refresh).await, 200);
    assert_exact_error(
        &alice
            .api
            .post("/auth/logout", &json!({"refresh_token": ""}))
            .await,
        400,
    );
    assert_exact_error(
        &alice
            .api
            .post("/auth/logout", &json!({"refresh_token": "x".repeat(2049)}))
            .await,
        400,
    );
    assert_error(
        &alice
            .api
            .raw("POST", "/auth/logout", Some("application/json"), "{nope")
            .await,
        400,
    );
    assert_error(
        &alice
            .api
            .post("/auth/logout", &json!({"refresh_token": 5}))
            .await,
        422,
    );
    for body in ["{}", "null"] {
        assert_error(
            &alice
                .api
                .raw("POST", "/auth/logout", Some("text/plain"), body)
                .await,
            415,
        );
    }
    assert_error(
        &alice
            .api
            .raw("POST", "/auth/logout", Some("application/json"), "[]")
            .await,
        422,
    );
    // None of that ended alice's session.
    assert_eq!(refresh_status(&server, &alice.refresh).await, 200);
}
