//! Two refusals of issue 16 ("Tokens and accounts"), end to end:
//!
//! - a browser `Origin` that is neither the server's own host nor configured is refused
//!   with 403 on REST and on `/ws` before the upgrade (`Origin: null` too); requests
//!   without an `Origin` (bots, SDKs) are unaffected;
//! - a token signed with the right secret but living longer than its kind is issued
//!   for (as one forged with a leaked secret would) is refused on REST and on `/ws`.

use concord_testkit::{TestServer, assert_exact_error};
use serde_json::json;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, http::HeaderValue};

const SECRET: &str = "a-test-secret-of-at-least-32-characters!";

/// The upgrade's answer to `/ws?{query}` with this `Origin` (or none): 101 or the
/// refusal's status.
async fn upgrade_status(server: &TestServer, query: &str, origin: Option<&str>) -> u16 {
    let url = server
        .url(&format!("/ws?{query}"))
        .replacen("http", "ws", 1);
    let mut request = url.into_client_request().unwrap();
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", HeaderValue::from_str(origin).unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("{other}"),
    }
}

#[tokio::test]
async fn foreign_origins_are_refused_before_anything_runs() {
    let server =
        TestServer::start_with(|c| c.cors_origins = vec!["https://app.example.org".into()]).await;
    let alice = server.user("alice").await;
    let own = server.url("");
    let me = "/users/@me";

    // No Origin, the server's own, a configured one: served.
    assert_eq!(alice.api.get(me).await.status, 200);
    for origin in [own.as_str(), "https://app.example.org"] {
        let res = alice.api.get_with_header(me, "origin", origin).await;
        assert_eq!(res.status, 200, "{origin}: {}", res.text);
    }
    // Anyone else, and `null`: 403 with the JSON body.
    for origin in ["https://evil.example", "null", "http://127.0.0.1:1"] {
        let res = alice.api.get_with_header(me, "origin", origin).await;
        assert_exact_error(&res, 403);
    }

    let query = alice.ws_query();
    assert_eq!(upgrade_status(&server, &query, None).await, 101);
    assert_eq!(upgrade_status(&server, &query, Some(&own)).await, 101);
    assert_eq!(
        upgrade_status(&server, &query, Some("https://app.example.org")).await,
        101
    );
    assert_eq!(
        upgrade_status(&server, &query, Some("https://evil.example")).await,
        403
    );
    assert_eq!(upgrade_status(&server, &query, Some("null")).await, 403);
}

/// An access token of alice's, signed with the server's secret, with these times.
fn forged(user_id: &str, iat: i64, exp: i64) -> String {
    let claims = json!({
        "sub": user_id,
        "username": "alice",
        "token_type": "access",
        "iat": iat,
        "exp": exp,
        "jti": "forged",
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn tokens_living_longer_than_issued_are_refused() {
    let server = TestServer::start_with(|c| c.jwt_secret = Some(SECRET.into())).await;
    let alice = server.user("alice").await;
    let now = concord_protocol::Timestamp::now().as_secs();

    // Positive control: the same forging with an ordinary lifetime (15 minutes) works,
    // so the refusals below are for the lifetime alone.
    let ordinary = forged(&alice.id, now, now + 15 * 60);
    let res = server.api().bearer(&ordinary).get("/users/@me").await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(
        upgrade_status(&server, &format!("token={ordinary}"), None).await,
        101
    );

    for (iat, exp) in [
        (now, now + 10 * 365 * 86_400),
        (now + 3600, now + 3600 + 60),
    ] {
        let token = forged(&alice.id, iat, exp);
        let res = server.api().bearer(&token).get("/users/@me").await;
        assert_exact_error(&res, 401);
        assert_eq!(
            upgrade_status(&server, &format!("token={token}"), None).await,
            401
        );
    }
}
