//! REST end to end: bot management and the bot token (`rest.md` §2.4, §7.20), the
//! closing of a revoked bot's gateway sessions (`gateway.md` D8), and the three REST
//! rate limits (`rest.md` §4).

use concord_protocol::UserId;
use concord_server::config::Rate;
use concord_testkit::{Closed, TestServer, TestUser, assert_exact_error, sorted_keys};
use serde_json::{Value, json};

const BOT_KEYS: [&str; 7] = [
    "created_at",
    "created_by",
    "description",
    "id",
    "name",
    "revoked_at",
    "user_id",
];

#[track_caller]
fn assert_bot_created(body: &Value) -> (Value, String) {
    assert_eq!(sorted_keys(body), ["bot", "token"], "{body}");
    assert_eq!(sorted_keys(&body["bot"]), BOT_KEYS, "{body}");
    let token = body["token"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 64);
    assert!(
        token
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "{token}"
    );
    (body["bot"].clone(), token)
}

/// Creates a bot of `owner`; returns (bot, token).
async fn create_bot(owner: &TestUser, name: &str) -> (Value, String) {
    let res = owner.api.post("/bots", &json!({"name": name})).await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_bot_created(&res.body)
}

fn bot_id(bot: &Value) -> &str {
    bot["id"].as_str().unwrap()
}

#[tokio::test]
async fn create_bot_answers_bot_created_and_makes_a_bot_user() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let res = alice
        .api
        .post(
            "/bots",
            &json!({"name": "  My Cool Bot! ", "description": "does things"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let (bot, token) = assert_bot_created(&res.body);
    assert!(bot["id"].as_str().unwrap().parse::<uuid::Uuid>().is_ok());
    assert_eq!(bot["name"], "My Cool Bot!", "name is trimmed");
    assert_eq!(bot["description"], "does things");
    assert_eq!(bot["created_by"], alice.id.as_str());
    assert!(bot["revoked_at"].is_null());
    assert!(bot["created_at"].as_str().unwrap().ends_with('Z'));

    // The bot's user: `<slug>-bot-<8 hex>`, no password, never an admin.
    let user_id: UserId = bot["user_id"].as_str().unwrap().parse().unwrap();
    let row = server.state.store.user(user_id).await.unwrap().unwrap();
    let (slug, suffix) = row.username.rsplit_once("-bot-").unwrap();
    assert_eq!(slug, "my-cool-bot");
    assert_eq!(suffix.len(), 8);
    assert!(suffix.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(row.is_bot);
    assert!(!row.is_admin);
    assert!(row.password_hash.is_none());

    // Its token authenticates on REST as the bot user.
    let me = server.api().bot(&token).get("/users/@me").await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["id"], bot["user_id"]);
    assert_eq!(me.body["username"], row.username.as_str());
    assert_eq!(me.body["is_admin"], false);

    // Description is optional and then null.
    let res = alice.api.post("/bots", &json!({"name": "Plain"})).await;
    assert_eq!(res.status, 201);
    assert!(res.body["bot"]["description"].is_null());
    assert_ne!(res.body["token"].as_str().unwrap(), token);
}

#[tokio::test]
async fn create_bot_errors_in_order() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let (_, token) = create_bot(&alice, "Helper").await;

    assert_exact_error(
        &alice
            .api
            .post("/bots", &json!({"description": "no name"}))
            .await,
        422,
    );
    assert_exact_error(&alice.api.post("/bots", &json!({"name": 5})).await, 422);
    assert_exact_error(
        &alice
            .api
            .raw("POST", "/bots", None, r#"{"name":"x"}"#)
            .await,
        415,
    );
    assert_exact_error(
        &alice
            .api
            .raw("POST", "/bots", Some("application/json"), "{")
            .await,
        400,
    );
    assert_exact_error(
        &server.api().post("/bots", &json!({"name": "x"})).await,
        401,
    );
    // The body shape is checked before the caller's kind.
    assert_exact_error(
        &server
            .api()
            .bot(&token)
            .post("/bots", &json!({"name": 5}))
            .await,
        422,
    );
    assert_exact_error(
        &server
            .api()
            .bot(&token)
            .post("/bots", &json!({"name": "Child"}))
            .await,
        403,
    );

    for name in [String::new(), "   ".to_string(), "n".repeat(65)] {
        assert_exact_error(&alice.api.post("/bots", &json!({"name": name})).await, 400);
    }
    let long = "d".repeat(513);
    assert_exact_error(
        &alice
            .api
            .post("/bots", &json!({"name": "ok", "description": long}))
            .await,
        400,
    );
    assert_exact_error(&alice.api.post("/bots", &json!({"name": "!!!"})).await, 400);
    // Description is checked before the alphanumeric rule.
    let res = alice
        .api
        .post("/bots", &json!({"name": "!!!", "description": long}))
        .await;
    assert!(
        res.body["error"].as_str().unwrap().contains("description"),
        "{}",
        res.text
    );
    // Bounds are inclusive; the 64 chars are counted after trimming.
    let name = format!("  {}  ", "n".repeat(64));
    let res = alice
        .api
        .post(
            "/bots",
            &json!({"name": name, "description": "d".repeat(512)}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
}

#[tokio::test]
async fn list_and_get_show_only_the_callers_bots() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let (first, first_token) = create_bot(&alice, "First").await;
    let (second, _) = create_bot(&alice, "Second").await;
    let (bobs, _) = create_bot(&bob, "Bobs").await;
    assert_eq!(
        alice
            .api
            .delete(&format!("/bots/{}", bot_id(&first)))
            .await
            .status,
        204
    );

    let res = alice.api.get("/bots").await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(sorted_keys(&res.body), ["bots"]);
    let bots = res.body["bots"].as_array().unwrap();
    assert_eq!(bots.len(), 2, "oldest first, revoked included");
    assert_eq!(bots[0]["id"], first["id"]);
    assert!(bots[0]["revoked_at"].as_str().is_some());
    assert_eq!(bots[1], second);
    for bot in bots {
        assert_eq!(sorted_keys(bot), BOT_KEYS);
    }
    let res = bob.api.get("/bots").await;
    assert_eq!(res.body, json!({"bots": [bobs]}));
    let carol = server.user("carol").await;
    assert_eq!(carol.api.get("/bots").await.body, json!({"bots": []}));

    let res = alice.api.get(&format!("/bots/{}", bot_id(&second))).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body, second);
    let res = alice.api.get(&format!("/bots/{}", bot_id(&first))).await;
    assert_eq!(res.status, 200, "revoked bots can still be read");
    assert_eq!(res.body["id"], first["id"]);

    assert_exact_error(
        &bob.api.get(&format!("/bots/{}", bot_id(&second))).await,
        404,
    );
    assert_exact_error(
        &alice
            .api
            .get(&format!("/bots/{}", uuid::Uuid::new_v4()))
            .await,
        404,
    );
    assert_exact_error(&alice.api.get("/bots/not-a-uuid").await, 400);
    assert_exact_error(&server.api().get("/bots").await, 401);

    let (_, live_token) = create_bot(&alice, "Live").await;
    let as_bot = server.api().bot(&live_token);
    assert_exact_error(&as_bot.get("/bots").await, 403);
    assert_exact_error(
        &as_bot.get(&format!("/bots/{}", bot_id(&second))).await,
        403,
    );
    // A revoked bot's token is not even authenticated.
    assert_exact_error(&server.api().bot(&first_token).get("/bots").await, 401);
}

#[tokio::test]
async fn patch_bot_renames_and_redescribes() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let (bot, token) = create_bot(&alice, "Helper").await;
    let path = format!("/bots/{}", bot_id(&bot));

    let res = alice
        .api
        .patch(&path, &json!({"name": "  Renamed ", "description": "new"}))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(sorted_keys(&res.body), BOT_KEYS);
    assert_eq!(res.body["name"], "Renamed");
    assert_eq!(res.body["description"], "new");
    assert_eq!(res.body["id"], bot["id"]);
    assert_eq!(res.body["user_id"], bot["user_id"]);
    assert_eq!(res.body["created_at"], bot["created_at"]);

    // Null and absent leave fields unchanged.
    let res = alice.api.patch(&path, &json!({"description": null})).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body["name"], "Renamed");
    assert_eq!(res.body["description"], "new");
    let res = alice.api.patch(&path, &json!({"name": "Again"})).await;
    assert_eq!(res.body["description"], "new");
    assert_eq!(alice.api.get(&path).await.body, res.body);

    for body in [
        json!({"name": ""}),
        json!({"name": "  "}),
        json!({"name": "n".repeat(65)}),
        json!({"name": "---"}),
        json!({"description": "d".repeat(513)}),
    ] {
        assert_exact_error(&alice.api.patch(&path, &body).await, 400);
    }
    assert_exact_error(&alice.api.patch(&path, &json!({"name": 1})).await, 422);
    assert_exact_error(&bob.api.patch(&path, &json!({"name": "Mine"})).await, 404);
    assert_exact_error(
        &alice
            .api
            .patch(&format!("/bots/{}", uuid::Uuid::new_v4()), &json!({}))
            .await,
        404,
    );
    assert_exact_error(
        &server
            .api()
            .bot(&token)
            .patch(&path, &json!({"name": "Self"}))
            .await,
        403,
    );

    assert_eq!(alice.api.delete(&path).await.status, 204);
    assert_exact_error(&alice.api.patch(&path, &json!({"name": "Late"})).await, 400);
    // Not found comes before revoked.
    assert_exact_error(&bob.api.patch(&path, &json!({"name": "Late"})).await, 404);
}

#[tokio::test]
async fn revoking_kills_the_token_and_is_not_repeatable() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let (bot, token) = create_bot(&alice, "Helper").await;
    let path = format!("/bots/{}", bot_id(&bot));
    let as_bot = server.api().bot(&token);
    assert_eq!(as_bot.get("/users/@me").await.status, 200);
    let jwt = as_bot.post_empty("/bots/connect").await.body["access_token"]
        .as_str()
        .unwrap()
        .to_string();

    assert_exact_error(&as_bot.delete(&path).await, 403);
    assert_exact_error(&bob.api.delete(&path).await, 404);
    assert_exact_error(
        &alice
            .api
            .delete(&format!("/bots/{}", uuid::Uuid::new_v4()))
            .await,
        404,
    );

    let res = alice.api.delete(&path).await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert!(res.text.is_empty());
    assert_exact_error(&as_bot.get("/users/@me").await, 401);
    assert_exact_error(&server.api().bearer(&jwt).get("/users/@me").await, 401);
    assert_exact_error(&alice.api.delete(&path).await, 404);
    // The bot user stays.
    let user_id: UserId = bot["user_id"].as_str().unwrap().parse().unwrap();
    assert!(server.state.store.user(user_id).await.unwrap().is_some());
}

#[tokio::test]
async fn regenerating_replaces_the_token() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let (bot, old) = create_bot(&alice, "Helper").await;
    let path = format!("/bots/{}/token/regenerate", bot_id(&bot));

    assert_exact_error(&server.api().bot(&old).post_empty(&path).await, 403);
    assert_exact_error(&bob.api.post_empty(&path).await, 404);
    assert_exact_error(
        &alice
            .api
            .post_empty(&format!("/bots/{}/token/regenerate", uuid::Uuid::new_v4()))
            .await,
        404,
    );

    let res = alice.api.post_empty(&path).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let (same, new) = assert_bot_created(&res.body);
    assert_eq!(same, bot);
    assert_ne!(new, old);
    assert_exact_error(&server.api().bot(&old).get("/users/@me").await, 401);
    assert_eq!(server.api().bot(&new).get("/users/@me").await.status, 200);

    assert_eq!(
        alice
            .api
            .delete(&format!("/bots/{}", bot_id(&bot)))
            .await
            .status,
        204
    );
    assert_exact_error(&alice.api.post_empty(&path).await, 400);
    assert_exact_error(&server.api().bot(&new).get("/users/@me").await, 401);
}

#[tokio::test]
async fn connect_trades_a_bot_token_for_a_bot_jwt() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let (bot, token) = create_bot(&alice, "Helper").await;

    let res = server.api().bot(&token).post_empty("/bots/connect").await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(sorted_keys(&res.body), ["access_token"]);
    let jwt = res.body["access_token"].as_str().unwrap();
    let as_jwt = server.api().bearer(jwt);
    let me = as_jwt.get("/users/@me").await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["id"], bot["user_id"]);
    // The JWT keeps bot identity: bot-only refusals still apply.
    assert_exact_error(&as_jwt.post("/bots", &json!({"name": "Child"})).await, 403);
    assert_exact_error(&as_jwt.post_empty("/bots/connect").await, 403);
    // And it opens a gateway session as the bot.
    let (_gw, ready) = server.connect(&format!("token={jwt}")).await;
    assert_eq!(ready["user"]["id"], bot["user_id"]);

    assert_exact_error(&alice.api.post_empty("/bots/connect").await, 403);
    assert_exact_error(
        &server
            .api()
            .bot(&"0".repeat(64))
            .post_empty("/bots/connect")
            .await,
        401,
    );
    assert_exact_error(&server.api().post_empty("/bots/connect").await, 401);
}

#[tokio::test]
async fn revoking_or_regenerating_closes_the_bots_gateway_sessions() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let (bot, token) = create_bot(&alice, "Helper").await;
    let (mut gw, ready) = server.connect(&format!("bot_token={token}")).await;
    assert_eq!(ready["user"]["id"], bot["user_id"]);
    let res = alice
        .api
        .post_empty(&format!("/bots/{}/token/regenerate", bot_id(&bot)))
        .await;
    assert_eq!(res.status, 200);
    assert_eq!(gw.closed().await, Closed::Code(1008));
    let new = res.body["token"].as_str().unwrap().to_string();
    assert!(
        server
            .connect_raw(&format!("bot_token={token}"))
            .await
            .is_err(),
        "old token refused"
    );

    let (mut gw, _) = server.connect(&format!("bot_token={new}")).await;
    assert_eq!(
        alice
            .api
            .delete(&format!("/bots/{}", bot_id(&bot)))
            .await
            .status,
        204
    );
    assert_eq!(gw.closed().await, Closed::Code(1008));
    assert!(
        server
            .connect_raw(&format!("bot_token={new}"))
            .await
            .is_err(),
        "revoked token refused"
    );
}

#[tokio::test]
async fn per_ip_limit_answers_429_with_retry_headers_but_never_limits_health() {
    let server = TestServer::start_with(|c| {
        c.limits.rest_per_ip = Rate {
            per_second: 1,
            burst: 3,
        }
    })
    .await;
    let api = server.api();
    for _ in 0..3 {
        assert_exact_error(&api.get("/users/@me").await, 401);
        assert_eq!(api.get("/health").await.status, 200);
    }
    let res = api.get("/users/@me").await;
    assert_exact_error(&res, 429);
    for header in ["retry-after", "x-ratelimit-after"] {
        let secs: u64 = res.headers[header].to_str().unwrap().parse().unwrap();
        assert!(secs >= 1, "{header}: {secs}");
    }
    // The `/api` mirror shares the bucket; health is exempt under both paths.
    assert_exact_error(&api.get("/api/users/@me").await, 429);
    for path in ["/health", "/health/live", "/health/ready", "/api/health"] {
        assert_eq!(api.get(path).await.status, 200, "{path}");
    }
}

#[tokio::test]
async fn auth_routes_have_a_stricter_limit_of_their_own() {
    let server = TestServer::start_with(|c| {
        c.limits.auth_per_ip = Rate {
            per_second: 1,
            burst: 2,
        }
    })
    .await;
    let api = server.api();
    let login = json!({"username": "nobody", "password": "correct-horse-42"});
    assert_exact_error(&api.post("/auth/login", &login).await, 401);
    assert_exact_error(
        &api.post("/auth/refresh", &json!({"refresh_token": "x.y.z"}))
            .await,
        401,
    );
    let res = api
        .post(
            "/api/auth/register",
            &json!({"username": "alice", "password": "correct-horse-42"}),
        )
        .await;
    assert_exact_error(&res, 429);
    assert!(res.headers.contains_key("retry-after"));
    assert!(res.headers.contains_key("x-ratelimit-after"));
    // Other routes are under the (generous) general limit only.
    assert_exact_error(&api.get("/users/@me").await, 401);
    assert_exact_error(&api.get("/ice-servers").await, 401);
}

#[tokio::test]
async fn bot_requests_have_a_per_bot_limit_without_retry_after() {
    let server = TestServer::start_with(|c| {
        c.limits.per_bot = Rate {
            per_second: 1,
            burst: 2,
        }
    })
    .await;
    let alice = server.user("alice").await;
    let (_, token) = create_bot(&alice, "Chatty").await;
    let (_, other_token) = create_bot(&alice, "Quiet").await;
    let as_bot = server.api().bot(&token);
    assert_eq!(as_bot.get("/users/@me").await.status, 200);
    assert_eq!(as_bot.get("/ice-servers").await.status, 200);
    let res = as_bot.get("/users/@me").await;
    assert_exact_error(&res, 429);
    assert!(!res.headers.contains_key("retry-after"));
    assert!(!res.headers.contains_key("x-ratelimit-after"));
    // Per bot, not per caller: another bot and humans are unaffected.
    assert_eq!(
        server
            .api()
            .bot(&other_token)
            .get("/users/@me")
            .await
            .status,
        200
    );
    for _ in 0..3 {
        assert_eq!(alice.api.get("/users/@me").await.status, 200);
    }
}
