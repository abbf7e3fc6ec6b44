//! REST end to end: a bot's log (`GET /bots/{id}/logs`, rest-extras §10): its
//! creation, its newest server messages and its revocation, newest first, only to its
//! creator.

use concord_server::config::Rate;
use concord_testkit::{Api, TestServer, TestUser, assert_exact_error, sorted_keys, str_of};
use serde_json::{Value, json};

/// Creates a bot of `owner`; returns (bot, token).
async fn create_bot(owner: &TestUser, name: &str) -> (Value, String) {
    let res = owner.api.post("/bots", &json!({"name": name})).await;
    assert_eq!(res.status, 201, "{}", res.text);
    (res.body["bot"].clone(), str_of(&res.body["token"]))
}

/// `bot` posts `content` in `channel`; returns the message.
async fn bot_posts(bot: &Api, channel: &str, content: &str) -> Value {
    let res = bot
        .post(
            &format!("/channels/{channel}/messages"),
            &json!({"content": content}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    res.body
}

async fn logs_of(owner: &TestUser, bot: &Value) -> Vec<Value> {
    let res = owner
        .api
        .get(&format!("/bots/{}/logs", str_of(&bot["id"])))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(sorted_keys(&res.body), ["logs"], "{}", res.text);
    res.body["logs"].as_array().unwrap().clone()
}

fn events(logs: &[Value]) -> Vec<&str> {
    logs.iter().map(|e| e["event"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn the_log_lists_creation_server_messages_and_revocation_newest_first() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let guild = alice.create_server("guild").await;
    let general = alice.create_channel(&guild, "general", "text").await;
    let (bot, token) = create_bot(&alice, "Helper").await;
    let bot_api = server.api().bot(&token);

    // A fresh bot's log holds its creation only.
    let fresh = logs_of(&alice, &bot).await;
    assert_eq!(fresh.len(), 1, "{fresh:?}");
    assert_eq!(sorted_keys(&fresh[0]), ["detail", "event", "timestamp"]);
    assert_eq!(fresh[0]["event"], "bot_created");
    assert_eq!(fresh[0]["detail"], "Bot \"Helper\" was created");
    assert_eq!(fresh[0]["timestamp"], bot["created_at"]);

    let joined = bot_api.post_empty(&format!("/servers/{guild}/join")).await;
    assert_eq!(joined.status, 201, "{}", joined.text);
    let short = bot_posts(&bot_api, &general, "hello there").await;
    let long_text = format!("{}tail", "é".repeat(80));
    let long = bot_posts(&bot_api, &general, &long_text).await;
    let gone = bot_posts(&bot_api, &general, "delete me").await;
    let deleted = bot_api
        .delete(&format!("/messages/{}", str_of(&gone["id"])))
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);

    // A DM of the bot's is not a server message: it never shows.
    let dm = bot_api
        .post("/dm-channels", &json!({"user_id": alice.id}))
        .await;
    assert_eq!(dm.status, 201, "{}", dm.text);
    let dm_sent = bot_api
        .post(
            &format!("/dm-channels/{}/messages", str_of(&dm.body["id"])),
            &json!({"content": "a private word"}),
        )
        .await;
    assert_eq!(dm_sent.status, 201, "{}", dm_sent.text);
    // Nor does anyone else's message.
    alice.post(&general, "not the bot").await;

    let logs = logs_of(&alice, &bot).await;
    assert_eq!(
        events(&logs),
        ["message_sent", "message_sent", "bot_created"],
        "{logs:?}"
    );
    assert_eq!(logs[0]["timestamp"], long["created_at"]);
    assert_eq!(
        logs[0]["detail"],
        format!("[channel {general}] {}…", "é".repeat(80))
    );
    assert_eq!(logs[1]["timestamp"], short["created_at"]);
    assert_eq!(
        logs[1]["detail"],
        format!("[channel {general}] hello there")
    );

    // Revoked: the revocation tops the log, and the creator still reads it.
    let revoked = alice
        .api
        .delete(&format!("/bots/{}", str_of(&bot["id"])))
        .await;
    assert_eq!(revoked.status, 204, "{}", revoked.text);
    let logs = logs_of(&alice, &bot).await;
    assert_eq!(
        events(&logs),
        ["bot_revoked", "message_sent", "message_sent", "bot_created"],
        "{logs:?}"
    );
    assert_eq!(logs[0]["detail"], "Bot \"Helper\" was revoked");
    let listed = alice.api.get("/bots").await;
    assert_eq!(logs[0]["timestamp"], listed.body["bots"][0]["revoked_at"]);
}

#[tokio::test]
async fn the_log_keeps_the_fifty_newest_messages() {
    let server = TestServer::start_with(|config| {
        config.limits.per_bot = Rate {
            per_second: 100_000,
            burst: 100_000,
        };
    })
    .await;
    let alice = server.user("alice").await;
    let guild = alice.create_server("guild").await;
    let general = alice.create_channel(&guild, "general", "text").await;
    let (bot, token) = create_bot(&alice, "Chatty").await;
    let bot_api = server.api().bot(&token);
    let joined = bot_api.post_empty(&format!("/servers/{guild}/join")).await;
    assert_eq!(joined.status, 201, "{}", joined.text);
    for n in 0..53 {
        bot_posts(&bot_api, &general, &format!("message {n}")).await;
    }

    let logs = logs_of(&alice, &bot).await;
    assert_eq!(logs.len(), 51, "50 messages and the creation");
    let details: Vec<String> = logs[..50].iter().map(|e| str_of(&e["detail"])).collect();
    let expected: Vec<String> = (3..53)
        .rev()
        .map(|n| format!("[channel {general}] message {n}"))
        .collect();
    assert_eq!(details, expected);
    assert_eq!(logs[50]["event"], "bot_created");
}

#[tokio::test]
async fn only_the_bots_creator_reads_its_log() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let (bot, token) = create_bot(&alice, "Helper").await;
    let path = format!("/bots/{}/logs", str_of(&bot["id"]));

    // Positive control: the creator reads it.
    assert_eq!(alice.api.get(&path).await.status, 200);
    // Someone else's bot and a missing bot are both "not found".
    assert_exact_error(&bob.api.get(&path).await, 404);
    assert_eq!(bob.api.get(&path).await.body["error"], "Bot not found");
    let missing = alice
        .api
        .get(&format!("/bots/{}/logs", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(missing.status, 404, "{}", missing.text);
    assert_eq!(missing.body["error"], "Bot not found");
    // A bot, even this one, may not read bot logs.
    let as_bot = server.api().bot(&token).get(&path).await;
    assert_eq!(as_bot.status, 403, "{}", as_bot.text);
    assert_eq!(
        as_bot.body["error"],
        "Bots cannot access bot management endpoints"
    );
    // No credentials, or a malformed id.
    assert_eq!(server.api().get(&path).await.status, 401);
    let bad = alice.api.get("/bots/not-a-uuid/logs").await;
    assert_eq!(bad.status, 400, "{}", bad.text);
}
