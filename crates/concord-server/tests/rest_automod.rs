//! Automod over real HTTP and WebSocket (`rest-extras.md` §6): the six owner-only
//! routes (ADMINISTRATOR does not suffice, non-members get 404: X11), their
//! validation (X10: 400 for out-of-range numbers), and enforcement in message posting —
//! the word filter (plain substrings), the duplicate rule, the spam rule (201, then
//! MESSAGE_DELETE: `gateway.md` D19), the timeout / kick / ban actions with the
//! moderation routes' events, and the owner and ADMINISTRATOR holders left alone (X9).

mod moderation_support;

use concord_protocol::{ServerId, Timestamp, WordFilter};
use concord_server::perms::Permissions;
use concord_testkit::{
    Hall, Response, TestServer, TestUser, assert_exact_error, assert_keys, str_of,
};
use moderation_support::{expect_message, grant, next};
use serde_json::{Value, json};

const CONFIG_KEYS: &[&str] = &[
    "server_id",
    "enabled",
    "spam_enabled",
    "spam_max_messages",
    "spam_window_secs",
    "spam_action",
    "duplicate_enabled",
    "word_filter_enabled",
    "word_filter_action",
    "timeout_minutes",
    "updated_at",
];

const WORD_KEYS: &[&str] = &["id", "server_id", "word", "created_by", "created_at"];

const LOG_KEYS: &[&str] = &[
    "id",
    "server_id",
    "channel_id",
    "user_id",
    "username",
    "rule_type",
    "action_taken",
    "matched_term",
    "message_content",
    "created_at",
];

/// alice owns "hall" (public, with the text channel "general"); bob and carol are
/// members.
async fn hall() -> Hall {
    Hall::start().await
}

/// PATCHes the automod settings as the owner and returns them.
async fn configure(owner: &TestUser, hall: &str, body: Value) -> Value {
    let res = owner
        .api
        .patch(&format!("/servers/{hall}/automod"), &body)
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_keys(&res.body, CONFIG_KEYS);
    res.body
}

/// Adds a filtered word as the owner; returns the row.
async fn add_word(owner: &TestUser, hall: &str, word: &str) -> Value {
    let res = owner
        .api
        .post(
            &format!("/servers/{hall}/automod/words"),
            &json!({"word": word}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_keys(&res.body, WORD_KEYS);
    res.body
}

/// The automod log as the owner sees it, newest first.
async fn automod_log(owner: &TestUser, hall: &str) -> Vec<Value> {
    let res = owner
        .api
        .get(&format!("/servers/{hall}/automod/logs"))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.body.as_array().expect("an array").clone()
}

async fn post(user: &TestUser, channel: &str, content: &str) -> Response {
    user.api
        .post(
            &format!("/channels/{channel}/messages"),
            &json!({"content": content}),
        )
        .await
}

#[track_caller]
fn assert_refused(res: &Response, status: u16, text: &str) {
    assert_exact_error(res, status);
    assert_eq!(res.body["error"], json!(text), "{}", res.text);
}

/// The live messages' contents of `channel`, oldest first.
async fn contents(user: &TestUser, channel: &str) -> Vec<String> {
    let res = user.api.get(&format!("/channels/{channel}/messages")).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let mut out: Vec<String> = res
        .body
        .as_array()
        .expect("an array")
        .iter()
        .filter(|m| m["deleted"] == json!(false))
        .map(|m| str_of(&m["content"]))
        .collect();
    out.reverse();
    out
}

fn ts(value: &Value) -> Timestamp {
    serde_json::from_value(value.clone()).expect("timestamp")
}

// ---- the routes ----

#[tokio::test]
async fn every_route_is_the_owners_alone_and_hides_the_server_from_outsiders() {
    let Hall {
        server,
        alice,
        bob,
        carol,
        hall,
        general: _,
    } = hall().await;
    let outsider = server.user("outsider").await;
    // carol holds ADMINISTRATOR: the positive control is that it works elsewhere.
    grant(&server, &hall, &carol, Permissions::ADMINISTRATOR.0).await;
    let res = carol
        .api
        .post(
            &format!("/servers/{hall}/members/{}/kick", bob.id),
            &json!({}),
        )
        .await;
    assert_eq!(res.status, 204, "ADMINISTRATOR may kick: {}", res.text);
    bob.join(&hall).await;

    configure(&alice, &hall, json!({"enabled": true})).await;
    add_word(&alice, &hall, "keep").await;
    let missing = uuid::Uuid::new_v4();
    let manage = "Only the server owner can manage automod";
    let logs = "Only the server owner can view automod logs";
    let cases: [(&str, String, Option<Value>, u16, &str); 6] = [
        ("GET", format!("/servers/{hall}/automod"), None, 200, manage),
        (
            "PATCH",
            format!("/servers/{hall}/automod"),
            Some(json!({"spam_enabled": true})),
            200,
            manage,
        ),
        (
            "GET",
            format!("/servers/{hall}/automod/words"),
            None,
            200,
            manage,
        ),
        (
            "POST",
            format!("/servers/{hall}/automod/words"),
            Some(json!({"word": "other"})),
            201,
            manage,
        ),
        (
            "DELETE",
            format!("/servers/{hall}/automod/words/gone"),
            None,
            204,
            manage,
        ),
        (
            "GET",
            format!("/servers/{hall}/automod/logs"),
            None,
            200,
            logs,
        ),
    ];
    for (method, path, body, ok, refusal) in &cases {
        let send = |user: Option<&TestUser>, path: String| {
            let api = user.map_or_else(|| server.api(), |u| u.api.clone());
            let body = body.clone();
            async move {
                match (*method, body) {
                    ("GET", _) => api.get(&path).await,
                    ("DELETE", _) => api.delete(&path).await,
                    ("PATCH", Some(b)) => api.patch(&path, &b).await,
                    (_, Some(b)) => api.post(&path, &b).await,
                    _ => unreachable!(),
                }
            }
        };
        for member in [&bob, &carol] {
            let res = send(Some(member), path.clone()).await;
            assert_refused(&res, 403, refusal);
        }
        let res = send(Some(&outsider), path.clone()).await;
        assert_refused(&res, 404, "Server not found");
        let other = path.replace(&hall, &missing.to_string());
        let res = send(Some(&alice), other).await;
        assert_refused(&res, 404, "Server not found");
        assert_eq!(
            send(None, path.clone()).await.status,
            401,
            "{method} {path}"
        );
        let res = send(Some(&alice), path.clone()).await;
        assert_eq!(res.status, *ok, "{method} {path}: {}", res.text);
        // A path that does not parse is a 400 before anything else.
        let res = send(Some(&alice), path.replace(&hall, "nope")).await;
        assert_eq!(res.status, 400, "{method} {path}: {}", res.text);
    }
    // The refusals changed nothing: only the owner's own calls did.
    let res = alice
        .api
        .get(&format!("/servers/{hall}/automod/words"))
        .await;
    let words: Vec<String> = res
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|w| str_of(&w["word"]))
        .collect();
    assert_eq!(words, ["keep", "other"]);
}

#[tokio::test]
async fn settings_start_missing_then_upsert_with_defaults_and_refuse_bad_values() {
    let Hall {
        server: _server,
        alice,
        hall,
        ..
    } = hall().await;
    let path = format!("/servers/{hall}/automod");
    assert_refused(&alice.api.get(&path).await, 404, "no automod config");

    let first = configure(&alice, &hall, json!({"enabled": true, "unknown": 1})).await;
    assert_eq!(
        first,
        json!({
            "server_id": hall,
            "enabled": true,
            "spam_enabled": false,
            "spam_max_messages": 5,
            "spam_window_secs": 5,
            "spam_action": "delete",
            "duplicate_enabled": false,
            "word_filter_enabled": false,
            "word_filter_action": "delete",
            "timeout_minutes": 10,
            "updated_at": first["updated_at"],
        })
    );
    let res = alice.api.get(&path).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body, first);

    // null and absent leave a setting as it is; the bounds themselves are allowed.
    let second = configure(
        &alice,
        &hall,
        json!({
            "enabled": null,
            "spam_max_messages": 50,
            "spam_window_secs": 1,
            "timeout_minutes": 10080,
            "spam_action": "ban",
            "word_filter_action": "timeout",
        }),
    )
    .await;
    assert_eq!(second["enabled"], json!(true));
    assert_eq!(second["spam_max_messages"], json!(50));
    assert_eq!(second["spam_window_secs"], json!(1));
    assert_eq!(second["timeout_minutes"], json!(10080));
    assert_eq!(second["spam_action"], json!("ban"));
    assert_eq!(second["word_filter_action"], json!("timeout"));
    assert!(ts(&second["updated_at"]) >= ts(&first["updated_at"]));

    let action = "action must be delete, timeout, kick, or ban";
    for (body, text) in [
        (json!({"spam_action": "mute"}), action),
        (json!({"word_filter_action": "Delete"}), action),
        (
            json!({"spam_max_messages": 0}),
            "spam_max_messages must be between 1 and 50",
        ),
        (
            json!({"spam_max_messages": 51}),
            "spam_max_messages must be between 1 and 50",
        ),
        (
            json!({"spam_window_secs": 0}),
            "spam_window_secs must be between 1 and 60",
        ),
        (
            json!({"spam_window_secs": 61}),
            "spam_window_secs must be between 1 and 60",
        ),
        (
            json!({"timeout_minutes": 0}),
            "timeout_minutes must be between 1 and 10080",
        ),
        (
            json!({"timeout_minutes": 10081, "enabled": false}),
            "timeout_minutes must be between 1 and 10080",
        ),
    ] {
        let res = alice.api.patch(&path, &body).await;
        assert_refused(&res, 400, text);
    }
    // A value of the wrong type is the framework's body rejection.
    let res = alice.api.patch(&path, &json!({"enabled": "yes"})).await;
    assert!(
        res.status == 400 || res.status == 422,
        "{}: {}",
        res.status,
        res.text
    );
    // Nothing refused was written.
    assert_eq!(alice.api.get(&path).await.body, second);
}

#[tokio::test]
async fn words_are_trimmed_lowercased_added_once_capped_and_removed_by_text() {
    let Hall {
        server,
        alice,
        hall,
        ..
    } = hall().await;
    let path = format!("/servers/{hall}/automod/words");
    let first = add_word(&alice, &hall, "  BadWord \t").await;
    assert_eq!(first["word"], json!("badword"));
    assert_eq!(first["server_id"], json!(hall));
    assert_eq!(first["created_by"], json!(alice.id));
    // The same word again, in any case: 201 with the existing row.
    assert_eq!(add_word(&alice, &hall, "BADWORD").await, first);
    let second = add_word(&alice, &hall, "two words").await;
    let res = alice.api.get(&path).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body, json!([first, second]), "oldest first");

    for word in ["", "   "] {
        let res = alice.api.post(&path, &json!({"word": word})).await;
        assert_refused(&res, 400, "word cannot be empty");
    }
    let res = alice
        .api
        .post(&path, &json!({"word": "é".repeat(101)}))
        .await;
    assert_refused(&res, 400, "word must be at most 100 characters");
    add_word(&alice, &hall, &"é".repeat(100)).await;
    let res = alice.api.post(&path, &json!({})).await;
    assert!(res.status == 400 || res.status == 422, "{}", res.text);

    // Removal names the text, percent-encoded and lowercased; 204 either way.
    let res = alice.api.delete(&format!("{path}/BadWord")).await;
    assert_eq!(res.status, 204, "{}", res.text);
    let res = alice.api.delete(&format!("{path}/badword")).await;
    assert_eq!(res.status, 204, "{}", res.text);
    let res = alice.api.delete(&format!("{path}/Two%20Words")).await;
    assert_eq!(res.status, 204, "{}", res.text);
    let res = alice.api.get(&path).await;
    assert_eq!(res.body.as_array().unwrap().len(), 1, "{}", res.text);

    // The cap: 1000 words per server (filled through the store, then over HTTP).
    let sid: ServerId = hall.parse().unwrap();
    for n in 1..999 {
        let word = WordFilter {
            id: uuid::Uuid::now_v7(),
            server_id: sid,
            word: format!("w{n}"),
            created_by: None,
            created_at: Timestamp::now(),
        };
        server
            .state
            .store
            .add_automod_word(&word, 1000)
            .await
            .unwrap();
    }
    add_word(&alice, &hall, "the thousandth").await;
    let res = alice
        .api
        .post(&path, &json!({"word": "one too many"}))
        .await;
    assert_refused(&res, 400, "A server can filter at most 1000 words");
    // At the cap, a word already there is still answered with its row.
    let res = alice.api.post(&path, &json!({"word": "W1"})).await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_eq!(res.body["word"], json!("w1"));
}

// ---- enforcement ----

#[tokio::test]
async fn the_word_filter_blocks_substrings_logs_and_follows_every_change() {
    let Hall {
        server,
        alice,
        bob,
        hall,
        general,
        ..
    } = hall().await;
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    // Before any settings, and with a word but the filter off, nothing is blocked.
    bob.post(&general, "a class act").await;
    configure(&alice, &hall, json!({"enabled": true})).await;
    add_word(&alice, &hall, "ASS").await;
    bob.post(&general, "a class act again").await;
    expect_message(&mut alice_gw, "a class act").await;
    expect_message(&mut alice_gw, "a class act again").await;

    // On: `ass` hits `Class` (lowercased, plain substring).
    configure(&alice, &hall, json!({"word_filter_enabled": true})).await;
    let res = post(&bob, &general, "First CLASS").await;
    assert_refused(&res, 403, "Message blocked by word filter");
    // Not stored, not sent: the next thing alice hears is the clean message.
    bob.post(&general, "clean").await;
    expect_message(&mut alice_gw, "clean").await;
    assert_eq!(
        contents(&alice, &general).await,
        ["a class act", "a class act again", "clean"]
    );

    let log = automod_log(&alice, &hall).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_keys(&log[0], LOG_KEYS);
    assert_eq!(log[0]["server_id"], json!(hall));
    assert_eq!(log[0]["channel_id"], json!(general));
    assert_eq!(log[0]["user_id"], json!(bob.id));
    assert_eq!(log[0]["username"], json!("bob"));
    assert_eq!(log[0]["rule_type"], json!("word_filter"));
    assert_eq!(log[0]["action_taken"], json!("delete"));
    assert_eq!(log[0]["matched_term"], json!("ass"));
    assert_eq!(log[0]["message_content"], json!("First CLASS"));

    // The action `delete` leaves bob able to post; removing the word lifts the block
    // at once, as does turning automod off.
    assert_refused(
        &post(&bob, &general, "grass").await,
        403,
        "Message blocked by word filter",
    );
    let res = alice
        .api
        .delete(&format!("/servers/{hall}/automod/words/ass"))
        .await;
    assert_eq!(res.status, 204);
    bob.post(&general, "grass").await;
    add_word(&alice, &hall, "grass").await;
    assert_refused(
        &post(&bob, &general, "more grass").await,
        403,
        "Message blocked by word filter",
    );
    configure(&alice, &hall, json!({"enabled": false})).await;
    bob.post(&general, "more grass").await;
    let log = automod_log(&alice, &hall).await;
    assert_eq!(log.len(), 3, "newest first: {log:?}");
    assert_eq!(log[0]["matched_term"], json!("grass"));
    assert_eq!(log[1]["message_content"], json!("grass"));
}

#[tokio::test]
async fn a_repeat_within_thirty_seconds_is_blocked_per_author_and_channel() {
    let Hall {
        server: _server,
        alice,
        bob,
        carol,
        hall,
        general,
    } = hall().await;
    let other = alice.create_channel(&hall, "other", "text").await;
    configure(
        &alice,
        &hall,
        json!({"enabled": true, "duplicate_enabled": true}),
    )
    .await;
    bob.post(&general, "hello").await;
    let res = post(&bob, &general, "hello").await;
    assert_refused(&res, 403, "Duplicate message blocked");
    // Another text, another author, another channel: allowed.
    bob.post(&general, "Hello").await;
    carol.post(&general, "hello").await;
    bob.post(&other, "hello").await;
    let log = automod_log(&alice, &hall).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["rule_type"], json!("duplicate"));
    assert_eq!(log[0]["action_taken"], json!("delete"));
    assert_eq!(log[0]["matched_term"], Value::Null);
    assert_eq!(log[0]["message_content"], json!("hello"));
    assert_eq!(log[0]["user_id"], json!(bob.id));

    // A deleted message does not count.
    let mine = bob.post(&general, "once more").await;
    let res = bob
        .api
        .delete(&format!("/messages/{}", str_of(&mine["id"])))
        .await;
    assert_eq!(res.status, 204);
    bob.post(&general, "once more").await;
    // Off: repeats are fine.
    configure(&alice, &hall, json!({"duplicate_enabled": false})).await;
    bob.post(&general, "hello").await;
}

#[tokio::test]
async fn spam_is_posted_then_deleted_over_the_gateway_and_logged() {
    let Hall {
        server,
        alice,
        bob,
        carol,
        hall,
        general,
    } = hall().await;
    configure(
        &alice,
        &hall,
        json!({
            "enabled": true,
            "spam_enabled": true,
            "spam_max_messages": 2,
            "spam_window_secs": 60,
        }),
    )
    .await;
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    bob.post(&general, "one").await;
    bob.post(&general, "two").await;
    // The third within the window: 201 and MESSAGE_CREATE, then MESSAGE_DELETE.
    let third = bob.post(&general, "three").await;
    assert_eq!(third["deleted"], json!(false));
    let id = str_of(&third["id"]);
    expect_message(&mut alice_gw, "one").await;
    expect_message(&mut alice_gw, "two").await;
    expect_message(&mut alice_gw, "three").await;
    let (t, d) = next(&mut alice_gw).await;
    assert_eq!(t, "MESSAGE_DELETE");
    assert_eq!(d, json!({"id": id, "channel_id": general}));
    let res = alice
        .api
        .get(&format!("/channels/{general}/messages/{id}"))
        .await;
    assert_eq!(res.body["deleted"], json!(true), "{}", res.text);
    assert_eq!(contents(&alice, &general).await, ["one", "two"]);

    let log = automod_log(&alice, &hall).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["rule_type"], json!("spam"));
    assert_eq!(log[0]["action_taken"], json!("delete"));
    assert_eq!(log[0]["message_content"], json!("three"));
    assert_eq!(log[0]["matched_term"], Value::Null);

    // Counted per author: carol's messages are her own count.
    carol.post(&general, "mine").await;
    expect_message(&mut alice_gw, "mine").await;
    carol.post(&general, "also mine").await;
    expect_message(&mut alice_gw, "also mine").await;
    assert_eq!(automod_log(&alice, &hall).await.len(), 1);
}

#[tokio::test]
async fn timeout_kick_and_ban_send_the_moderation_events() {
    let Hall {
        server,
        alice,
        bob,
        carol,
        hall,
        general,
    } = hall().await;
    let dave = server.user("dave").await;
    dave.join(&hall).await;
    configure(
        &alice,
        &hall,
        json!({
            "enabled": true,
            "word_filter_enabled": true,
            "word_filter_action": "timeout",
            "timeout_minutes": 5,
            "spam_enabled": true,
            "spam_max_messages": 1,
            "spam_window_secs": 60,
            "spam_action": "kick",
        }),
    )
    .await;
    add_word(&alice, &hall, "darn").await;
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    let (mut carol_gw, _) = server.connect(&carol.ws_query()).await;

    // Timeout: MEMBER_TIMEOUT for the server, then bob cannot post.
    let before = Timestamp::now();
    let res = post(&bob, &general, "darn it").await;
    let after = Timestamp::now();
    assert_refused(&res, 403, "Message blocked by word filter");
    let (t, d) = next(&mut alice_gw).await;
    assert_eq!(t, "MEMBER_TIMEOUT");
    assert_eq!(d["server_id"], json!(hall));
    assert_eq!(d["user_id"], json!(bob.id));
    assert_eq!(d["reason"], Value::Null);
    // The whole server hears it, as with a manual timeout.
    assert_eq!(
        next(&mut carol_gw).await,
        ("MEMBER_TIMEOUT".to_owned(), d.clone())
    );
    let expires = ts(&d["expires_at"]).as_micros();
    let five = 5 * 60 * 1_000_000;
    assert!(
        (before.as_micros() + five..=after.as_micros() + five).contains(&expires),
        "{d}"
    );
    assert_refused(
        &post(&bob, &general, "hello?").await,
        403,
        "You are timed out in this server",
    );
    let log = automod_log(&alice, &hall).await;
    assert_eq!(log[0]["action_taken"], json!("timeout"));

    // Kick by the spam rule: MESSAGE_CREATE, MESSAGE_DELETE, MEMBER_KICK; carol's
    // sessions are cut off from the server.
    carol.post(&general, "first").await;
    let spam = carol.post(&general, "second").await;
    let kicked = json!({"server_id": hall, "user_id": carol.id, "reason": null});
    expect_message(&mut alice_gw, "first").await;
    expect_message(&mut alice_gw, "second").await;
    let (t, d) = next(&mut alice_gw).await;
    assert_eq!(t, "MESSAGE_DELETE");
    assert_eq!(d["id"], spam["id"]);
    assert_eq!(
        next(&mut alice_gw).await,
        ("MEMBER_KICK".to_owned(), kicked.clone())
    );
    expect_message(&mut carol_gw, "first").await;
    expect_message(&mut carol_gw, "second").await;
    assert_eq!(next(&mut carol_gw).await.0, "MESSAGE_DELETE");
    assert_eq!(
        next(&mut carol_gw).await,
        ("MEMBER_KICK".to_owned(), kicked)
    );
    assert_exact_error(&carol.api.get(&format!("/servers/{hall}")).await, 404);
    let log = automod_log(&alice, &hall).await;
    assert_eq!(log[0]["rule_type"], json!("spam"));
    assert_eq!(log[0]["action_taken"], json!("kick"));

    // Ban by the word filter: MEMBER_BAN, and the ban is listed with no banner.
    configure(&alice, &hall, json!({"word_filter_action": "ban"})).await;
    let res = post(&dave, &general, "DARN").await;
    assert_refused(&res, 403, "Message blocked by word filter");
    let banned = json!({"server_id": hall, "user_id": dave.id, "reason": null});
    assert_eq!(next(&mut alice_gw).await, ("MEMBER_BAN".to_owned(), banned));
    let res = alice.api.get(&format!("/servers/{hall}/bans")).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let bans = res.body.as_array().unwrap();
    assert_eq!(bans.len(), 1, "{}", res.text);
    assert_eq!(bans[0]["user_id"], json!(dave.id));
    assert_eq!(bans[0]["banned_by"], Value::Null);
    assert_eq!(bans[0]["reason"], Value::Null);
    assert_exact_error(&dave.api.get(&format!("/servers/{hall}")).await, 404);
    assert_eq!(
        dave.api
            .post_empty(&format!("/servers/{hall}/join"))
            .await
            .status,
        403
    );
    // Positive control for the gateway: alice still hears the server.
    alice.post(&general, "quiet now").await;
    expect_message(&mut alice_gw, "quiet now").await;
}

#[tokio::test]
async fn the_owner_and_administrators_are_never_touched() {
    let Hall {
        server,
        alice,
        bob,
        carol,
        hall,
        general,
    } = hall().await;
    grant(&server, &hall, &carol, Permissions::ADMINISTRATOR.0).await;
    configure(
        &alice,
        &hall,
        json!({
            "enabled": true,
            "word_filter_enabled": true,
            "word_filter_action": "ban",
            "duplicate_enabled": true,
            "spam_enabled": true,
            "spam_max_messages": 1,
            "spam_window_secs": 60,
            "spam_action": "ban",
        }),
    )
    .await;
    add_word(&alice, &hall, "darn").await;
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;

    // Word, repeat and flood: all posted, none deleted, nobody moderated.
    for user in [&alice, &carol] {
        for content in ["darn", "darn", "darn again"] {
            user.post(&general, content).await;
            expect_message(&mut alice_gw, content).await;
        }
    }
    assert_eq!(contents(&alice, &general).await.len(), 6);
    assert!(automod_log(&alice, &hall).await.is_empty());
    assert_eq!(
        alice.api.get(&format!("/servers/{hall}/bans")).await.body,
        json!([])
    );

    // Positive control: a plain member is blocked and banned.
    let res = post(&bob, &general, "darn").await;
    assert_refused(&res, 403, "Message blocked by word filter");
    let (t, d) = next(&mut alice_gw).await;
    assert_eq!(t, "MEMBER_BAN");
    assert_eq!(d["user_id"], json!(bob.id));
    let log = automod_log(&alice, &hall).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["user_id"], json!(bob.id));
    // carol and alice are still members and still post.
    carol.post(&general, "still here").await;
    expect_message(&mut alice_gw, "still here").await;
}

/// How many times the store ran `operation`, from `GET /metrics`.
async fn store_calls(server: &TestServer, operation: &str) -> f64 {
    server
        .api()
        .metric(&format!(
            "concord_db_operation_duration_seconds_count{{operation=\"{operation}\"}}"
        ))
        .await
}

#[tokio::test]
async fn settings_and_words_are_read_once_until_they_change() {
    let Hall {
        server,
        alice,
        bob,
        hall,
        general,
        ..
    } = hall().await;
    let reads = |op: &'static str| store_calls(&server, op);
    // A server without automod: one read of its (missing) settings, then none.
    for n in 0..3 {
        bob.post(&general, &format!("plain {n}")).await;
    }
    assert_eq!(reads("automod_config").await, 1.0);
    assert_eq!(reads("automod_words").await, 0.0);
    assert_eq!(reads("has_recent_duplicate").await, 0.0);
    assert_eq!(reads("count_recent_messages").await, 0.0);

    // A change drops the cache: the next message reads settings and words once more.
    configure(
        &alice,
        &hall,
        json!({"enabled": true, "word_filter_enabled": true}),
    )
    .await;
    add_word(&alice, &hall, "darn").await;
    for n in 0..3 {
        bob.post(&general, &format!("fine {n}")).await;
    }
    assert_eq!(reads("automod_config").await, 2.0);
    assert_eq!(reads("automod_words").await, 1.0);
    // The owner is exempt before anything is read.
    alice.post(&general, "darn").await;
    assert_eq!(reads("automod_config").await, 2.0);
    // The rules in memory do apply.
    assert_refused(
        &post(&bob, &general, "darn").await,
        403,
        "Message blocked by word filter",
    );
    assert_eq!(reads("automod_words").await, 1.0);
}
