//! `POST /auth/logout` over real HTTP: one login or all of the caller's end, their
//! refresh and access tokens get 401 at once, and nobody ends another account's login.
//! (What it does to gateway sessions is in `login_families.rs`.)

use concord_testkit::{Api, TestServer, TestUser, assert_error, assert_exact_error};
use serde_json::json;

/// Logs `user` in once more: a client with the new access token, and the refresh token.
async fn login_pair(server: &TestServer, user: &TestUser) -> (Api, String) {
    let res = server
        .api()
        .post(
            "/auth/login",
            &json!({"username": user.username, "password": "correct-horse-42"}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    (
        server
            .api()
            .bearer(res.body["access_token"].as_str().unwrap()),
        res.body["refresh_token"].as_str().unwrap().to_owned(),
    )
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
    let (second_api, second) = login_pair(&server, &alice).await;
    // Positive control: the first login's access token works until its login ends.
    assert_eq!(alice.api.get("/users/@me").await.status, 200);
    let res = second_api
        .post("/auth/logout", &json!({"refresh_token": alice.refresh}))
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert!(res.text.is_empty());
    assert_eq!(refresh_status(&server, &alice.refresh).await, 401);
    // Every token of the ended login is refused, its access token included...
    assert_exact_error(&alice.api.get("/users/@me").await, 401);
    // ...and the other login's are not.
    assert_eq!(second_api.get("/users/@me").await.status, 200);
    assert_eq!(refresh_status(&server, &second).await, 200);
    // Already ended: nothing to do, still 204.
    let again = second_api
        .post("/auth/logout", &json!({"refresh_token": alice.refresh}))
        .await;
    assert_eq!(again.status, 204, "{}", again.text);
}

#[tokio::test]
async fn logout_without_a_token_ends_every_session_of_the_caller_only() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let (second_api, second) = login_pair(&server, &alice).await;
    let res = alice.api.post_empty("/auth/logout").await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert_eq!(refresh_status(&server, &alice.refresh).await, 401);
    assert_eq!(refresh_status(&server, &second).await, 401);
    assert_exact_error(&alice.api.get("/users/@me").await, 401);
    assert_exact_error(&second_api.get("/users/@me").await, 401);
    assert_eq!(refresh_status(&server, &bob.refresh).await, 200);
    assert_eq!(bob.api.get("/users/@me").await.status, 200);

    // `{}` and a null token mean the same.
    let (api, third) = login_pair(&server, &alice).await;
    assert_eq!(api.post("/auth/logout", &json!({})).await.status, 204);
    assert_eq!(refresh_status(&server, &third).await, 401);
    let (api, fourth) = login_pair(&server, &alice).await;
    let res = api
        .post("/auth/logout", &json!({"refresh_token": null}))
        .await;
    assert_eq!(res.status, 204);
    assert_eq!(refresh_status(&server, &fourth).await, 401);
    // So does a JSON `null` body.
    let (api, fifth) = login_pair(&server, &alice).await;
    let res = api
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
