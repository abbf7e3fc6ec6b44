//! Threads and reactions over real HTTP and real gateway sessions (`rest.md` §7.7,
//! §7.8; `gateway.md` §7): every success shape, every error row in the contract's
//! order, and who receives each event. Every "must not receive" is checked with a
//! positive control: a later event the excluded session does receive arrives first.

use concord_server::perms::Permissions;
use concord_testkit::MESSAGE_KEYS;
use concord_testkit::{TestServer, TestUser, assert_error, assert_keys, str_of};
use serde_json::{Value, json};

const REACTION_EVENT_KEYS: &[&str] = &["message_id", "channel_id", "user_id", "emoji"];

fn unknown_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Every byte of `text` that is not ASCII alphanumeric, percent-encoded.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn thread_path(channel: &str, root: &str) -> String {
    format!("/channels/{channel}/messages/{root}/thread")
}

fn reaction_path(channel: &str, message: &str, emoji: &str) -> String {
    format!(
        "/channels/{channel}/messages/{message}/reactions/{}",
        encode(emoji)
    )
}

fn reactions_path(channel: &str, message: &str) -> String {
    format!("/channels/{channel}/messages/{message}/reactions")
}

async fn thread_reply(user: &TestUser, channel: &str, root: &str, content: &str) -> Value {
    let res = user
        .api
        .post(&thread_path(channel, root), &json!({"content": content}))
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    res.body
}

fn ids(body: &Value) -> Vec<String> {
    body.as_array()
        .unwrap_or_else(|| panic!("not an array: {body}"))
        .iter()
        .map(|m| str_of(&m["id"]))
        .collect()
}

// ---- threads ----

#[tokio::test]
async fn thread_replies_go_to_the_channel_viewers_as_thread_message_create() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let erin = server.user("erin").await; // denied VIEW on general
    let sid = alice.create_server("Guild").await;
    bob.join(&sid).await;
    erin.join(&sid).await;
    let general = alice.create_channel(&sid, "general", "text").await;
    let lobby = alice.create_channel(&sid, "lobby", "text").await;
    server
        .deny(&general, &erin, Permissions::VIEW_CHANNEL.0)
        .await;
    let root = alice.post(&general, "root").await;
    let root_id = str_of(&root["id"]);
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let (mut erin_gw, _) = server.connect(&erin.ws_query()).await;

    let reply = thread_reply(&bob, &general, &root_id, "agreed @alice @everyone").await;
    assert_keys(&reply, MESSAGE_KEYS);
    assert_eq!(reply["thread_id"], root_id.as_str());
    assert_eq!(reply["channel_id"], general.as_str());
    assert_eq!(reply["author_id"], bob.id.as_str());
    assert_eq!(reply["content"], "agreed @alice @everyone");
    assert_eq!(reply["mention_user_ids"], json!([alice.id]));
    assert_eq!(reply["mention_everyone"], true);
    assert_eq!(reply["thread_reply_count"], 0);
    for key in [
        "reply_to",
        "edited_at",
        "pinned_by",
        "pinned_at",
        "poll",
        "event",
    ] {
        assert_eq!(reply[key], Value::Null, "{key}");
    }
    assert_eq!(
        (reply["deleted"].clone(), reply["pinned"].clone()),
        (json!(false), json!(false))
    );

    // Viewers get THREAD_MESSAGE_CREATE and no MESSAGE_CREATE: the frame after it is
    // the next message of the channel.
    let next = alice.post(&general, "after the reply").await;
    for gw in [&mut alice_gw, &mut bob_gw] {
        assert_eq!(gw.next_event("THREAD_MESSAGE_CREATE").await, reply);
        assert_eq!(gw.next_event("MESSAGE_CREATE").await, next);
    }
    // Positive control: erin's first event is a later one in a channel she sees.
    let visible = alice.post(&lobby, "lobby").await;
    assert_eq!(erin_gw.next_event("MESSAGE_CREATE").await, visible);

    // The root counts its live replies; the channel listing holds no replies.
    let got = alice
        .api
        .get(&format!("/channels/{general}/messages/{root_id}"))
        .await;
    assert_eq!(got.body["thread_reply_count"], 1);
    let listed = alice
        .api
        .get(&format!("/channels/{general}/messages"))
        .await;
    assert_eq!(ids(&listed.body), [str_of(&next["id"]), root_id.clone()]);
    assert_eq!(listed.body[1]["thread_reply_count"], 1);
}

#[tokio::test]
async fn thread_errors_in_order() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await; // not a member
    let mute = server.user("mute").await;
    let blind = server.user("blind").await;
    let late = server.user("late").await;
    let sid = alice.create_server("Guild").await;
    for user in [&bob, &mute, &blind, &late] {
        user.join(&sid).await;
    }
    let general = alice.create_channel(&sid, "general", "text").await;
    let random = alice.create_channel(&sid, "random", "text").await;
    server
        .deny(&general, &mute, Permissions::SEND_MESSAGES.0)
        .await;
    server
        .deny(&general, &blind, Permissions::VIEW_CHANNEL.0)
        .await;
    server.time_out(&sid, &alice, &late).await;
    let root = str_of(&alice.post(&general, "root").await["id"]);
    let path = thread_path(&general, &root);
    let body = json!({"content": "x"});

    assert_error(&bob.api.post(&path, &json!({})).await, 422);
    assert_error(&bob.api.post(&path, &json!({"content": 5})).await, 422);
    // Content before any lookup.
    let unknown_channel = thread_path(&unknown_id(), &root);
    assert_error(
        &bob.api
            .post(&unknown_channel, &json!({"content": ""}))
            .await,
        400,
    );
    assert_error(
        &bob.api
            .post(&path, &json!({"content": "a".repeat(4001)}))
            .await,
        400,
    );
    assert_error(&bob.api.post(&unknown_channel, &body).await, 404);
    assert_error(&carol.api.post(&path, &body).await, 404);
    assert_error(&mute.api.post(&path, &body).await, 403);
    assert_error(&blind.api.post(&path, &body).await, 403);
    assert_error(&late.api.post(&path, &body).await, 403);

    let elsewhere = str_of(&alice.post(&random, "elsewhere").await["id"]);
    let gone = str_of(&alice.post(&general, "gone").await["id"]);
    assert_eq!(
        alice.api.delete(&format!("/messages/{gone}")).await.status,
        204
    );
    for missing in [unknown_id(), elsewhere.clone(), gone.clone()] {
        assert_error(
            &bob.api.post(&thread_path(&general, &missing), &body).await,
            404,
        );
    }
    let reply = str_of(&thread_reply(&bob, &general, &root, "first").await["id"]);
    let nested = bob.api.post(&thread_path(&general, &reply), &body).await;
    assert_error(&nested, 400);
    assert_error(
        &bob.api.post(&thread_path(&general, "nope"), &body).await,
        400,
    );

    // Reading: 404 channel, 404 member, 403 VIEW (Concord), 404 root.
    assert_eq!(bob.api.get(&path).await.status, 200);
    assert_error(&bob.api.get(&unknown_channel).await, 404);
    assert_error(&carol.api.get(&path).await, 404);
    assert_error(&blind.api.get(&path).await, 403);
    for missing in [unknown_id(), elsewhere, gone] {
        assert_error(&bob.api.get(&thread_path(&general, &missing)).await, 404);
    }
    assert_error(&bob.api.get(&format!("{path}?before=nope")).await, 400);
    assert_error(&bob.api.get(&format!("{path}?limit=x")).await, 400);
    // Nothing was stored by the refused replies.
    let replies = bob.api.get(&path).await;
    assert_eq!(ids(&replies.body), [reply]);
}

#[tokio::test]
async fn thread_listing_is_oldest_first_and_pages_forward() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let sid = alice.create_server("Guild").await;
    bob.join(&sid).await;
    let general = alice.create_channel(&sid, "general", "text").await;
    let root = str_of(&alice.post(&general, "root").await["id"]);
    let other_root = str_of(&alice.post(&general, "other root").await["id"]);
    let mut replies = Vec::new();
    for i in 0..5 {
        replies.push(thread_reply(&bob, &general, &root, &format!("r{i}")).await);
    }
    let foreign = str_of(&thread_reply(&bob, &general, &other_root, "elsewhere").await["id"]);
    let deleted = str_of(&replies.remove(2)["id"]);
    assert_eq!(
        bob.api.delete(&format!("/messages/{deleted}")).await.status,
        204
    );
    let reply_ids: Vec<String> = replies.iter().map(|r| str_of(&r["id"])).collect();
    let path = thread_path(&general, &root);
    let page = |query: String| {
        let api = bob.api.clone();
        let url = format!("{path}{query}");
        async move {
            let res = api.get(&url).await;
            assert_eq!(res.status, 200, "{}", res.text);
            res.body
        }
    };

    let all = page(String::new()).await;
    assert_eq!(ids(&all), reply_ids, "oldest first, deleted left out");
    for (listed, posted) in all.as_array().unwrap().iter().zip(&replies) {
        assert_eq!(listed, posted);
    }
    assert_eq!(ids(&page("?limit=2".into()).await), reply_ids[..2]);
    assert_eq!(ids(&page("?limit=0".into()).await), reply_ids[..1]);
    // `before` pages forward: the replies after the cursor.
    let cursor = &reply_ids[0];
    assert_eq!(
        ids(&page(format!("?before={cursor}&limit=2")).await),
        reply_ids[1..3]
    );
    // A deleted reply still marks its place.
    assert_eq!(
        ids(&page(format!("?before={deleted}")).await),
        reply_ids[2..]
    );
    for not_here in [unknown_id(), foreign, root.clone(), other_root] {
        assert_eq!(
            ids(&page(format!("?before={not_here}")).await),
            Vec::<String>::new()
        );
    }
}

// ---- reactions ----

#[tokio::test]
async fn reactions_add_once_list_and_remove_with_events_to_viewers() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let erin = server.user("erin").await; // denied VIEW on general
    let sid = alice.create_server("Guild").await;
    bob.join(&sid).await;
    erin.join(&sid).await;
    let general = alice.create_channel(&sid, "general", "text").await;
    let lobby = alice.create_channel(&sid, "lobby", "text").await;
    server
        .deny(&general, &erin, Permissions::VIEW_CHANNEL.0)
        .await;
    let message = str_of(&alice.post(&general, "react to me").await["id"]);
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let (mut erin_gw, _) = server.connect(&erin.ws_query()).await;
    let event = |user: &TestUser, emoji: &str| json!({"message_id": message, "channel_id": general, "user_id": user.id, "emoji": emoji});

    let thumbs = reaction_path(&general, &message, "👍");
    let added = bob.api.put(&thumbs).await;
    assert_eq!(added.status, 204, "{}", added.text);
    assert_eq!(added.text, "");
    for gw in [&mut alice_gw, &mut bob_gw] {
        let d = gw.next_event("REACTION_ADD").await;
        assert_keys(&d, REACTION_EVENT_KEYS);
        assert_eq!(d, event(&bob, "👍"));
    }
    // Again: 204 and no event (the next REACTION_ADD viewers get is alice's).
    assert_eq!(bob.api.put(&thumbs).await.status, 204);
    let custom = ":party_parrot:";
    assert_eq!(
        alice
            .api
            .put(&reaction_path(&general, &message, custom))
            .await
            .status,
        204
    );
    for gw in [&mut alice_gw, &mut bob_gw] {
        assert_eq!(gw.next_event("REACTION_ADD").await, event(&alice, custom));
    }
    assert_eq!(alice.api.put(&thumbs).await.status, 204);
    for gw in [&mut alice_gw, &mut bob_gw] {
        assert_eq!(gw.next_event("REACTION_ADD").await, event(&alice, "👍"));
    }

    let listed = bob.api.get(&reactions_path(&general, &message)).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(
        listed.body,
        json!([
            {"emoji": "👍", "count": 2, "me": true},
            {"emoji": custom, "count": 1, "me": false},
        ])
    );
    let listed = alice.api.get(&reactions_path(&general, &message)).await;
    assert_eq!(
        listed.body,
        json!([
            {"emoji": "👍", "count": 2, "me": true},
            {"emoji": custom, "count": 1, "me": true},
        ])
    );

    let removed = bob.api.delete(&thumbs).await;
    assert_eq!(removed.status, 204, "{}", removed.text);
    for gw in [&mut alice_gw, &mut bob_gw] {
        let d = gw.next_event("REACTION_REMOVE").await;
        assert_keys(&d, REACTION_EVENT_KEYS);
        assert_eq!(d, event(&bob, "👍"));
    }
    assert_error(&bob.api.delete(&thumbs).await, 404);
    // Order is by each emoji's first use among the reactions that stand: 👍's is
    // now alice's, after the parrot.
    let listed = bob.api.get(&reactions_path(&general, &message)).await;
    assert_eq!(
        listed.body,
        json!([
            {"emoji": custom, "count": 1, "me": false},
            {"emoji": "👍", "count": 1, "me": false},
        ])
    );
    // Reactions are not embedded in the message.
    let got = bob
        .api
        .get(&format!("/channels/{general}/messages/{message}"))
        .await;
    assert_keys(&got.body, MESSAGE_KEYS);

    // Positive control: erin's first event is a later one in a channel she sees.
    let visible = alice.post(&lobby, "lobby").await;
    assert_eq!(erin_gw.next_event("MESSAGE_CREATE").await, visible);
}

#[tokio::test]
async fn reaction_errors_in_order() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await; // not a member
    let stiff = server.user("stiff").await; // denied ADD_REACTIONS
    let blind = server.user("blind").await; // denied VIEW
    let late = server.user("late").await; // timed out
    let sid = alice.create_server("Guild").await;
    for user in [&bob, &stiff, &blind, &late] {
        user.join(&sid).await;
    }
    let general = alice.create_channel(&sid, "general", "text").await;
    let random = alice.create_channel(&sid, "random", "text").await;
    server
        .deny(&general, &stiff, Permissions::ADD_REACTIONS.0)
        .await;
    server
        .deny(&general, &blind, Permissions::VIEW_CHANNEL.0)
        .await;
    let message = str_of(&alice.post(&general, "m").await["id"]);
    // The timed-out member reacts before the timeout: taking it back stays allowed.
    let ok = reaction_path(&general, &message, "ok");
    assert_eq!(late.api.put(&ok).await.status, 204);
    server.time_out(&sid, &alice, &late).await;
    let elsewhere = str_of(&alice.post(&random, "elsewhere").await["id"]);
    let gone = str_of(&alice.post(&general, "gone").await["id"]);
    assert_eq!(
        alice.api.delete(&format!("/messages/{gone}")).await.status,
        204
    );
    let long = "a".repeat(65);
    let unknown_channel = reaction_path(&unknown_id(), &message, "ok");

    // PUT: 400 emoji (before lookup), 404 channel, 404 member, 403 bits, 403 timed
    // out, 404 message.
    assert_error(
        &bob.api
            .put(&reaction_path(&unknown_id(), &message, &long))
            .await,
        400,
    );
    assert_error(
        &bob.api
            .put(&reaction_path(&general, &message, &"😀".repeat(17)))
            .await,
        400,
    );
    assert_eq!(
        bob.api
            .put(&reaction_path(&general, &message, &"😀".repeat(16)))
            .await
            .status,
        204,
        "64 bytes"
    );
    assert_error(&bob.api.put(&unknown_channel).await, 404);
    assert_error(&carol.api.put(&ok).await, 404);
    assert_error(&stiff.api.put(&ok).await, 403);
    assert_error(&blind.api.put(&ok).await, 403);
    assert_error(
        &late.api.put(&reaction_path(&general, &message, "no")).await,
        403,
    );
    for missing in [unknown_id(), elsewhere.clone(), gone.clone()] {
        assert_error(
            &bob.api.put(&reaction_path(&general, &missing, "ok")).await,
            404,
        );
    }
    assert_error(
        &bob.api
            .put(&format!("/channels/{general}/messages/nope/reactions/ok"))
            .await,
        400,
    );

    // DELETE: 400, 404 channel, 404 member, 403 VIEW (Concord), 404 message, 404 not
    // reacted.
    assert_error(
        &late
            .api
            .delete(&reaction_path(&general, &message, &long))
            .await,
        400,
    );
    assert_error(&late.api.delete(&unknown_channel).await, 404);
    assert_error(&carol.api.delete(&ok).await, 404);
    assert_error(&blind.api.delete(&ok).await, 403);
    for missing in [unknown_id(), elsewhere.clone(), gone.clone()] {
        assert_error(
            &late
                .api
                .delete(&reaction_path(&general, &missing, "ok"))
                .await,
            404,
        );
    }
    assert_error(&bob.api.delete(&ok).await, 404);
    assert_eq!(
        late.api.delete(&ok).await.status,
        204,
        "timed out, still may take back"
    );

    // GET: 404 channel, 404 member, 403 VIEW (Concord), 404 message.
    let list = reactions_path(&general, &message);
    assert_error(
        &bob.api.get(&reactions_path(&unknown_id(), &message)).await,
        404,
    );
    assert_error(&carol.api.get(&list).await, 404);
    assert_error(&blind.api.get(&list).await, 403);
    for missing in [unknown_id(), elsewhere, gone] {
        assert_error(&bob.api.get(&reactions_path(&general, &missing)).await, 404);
    }
    // Only bob's 64-byte reaction stands: the refused ones stored nothing.
    let listed = bob.api.get(&list).await;
    assert_eq!(
        listed.body,
        json!([{"emoji": "😀".repeat(16), "count": 1, "me": true}])
    );
}
