//! Channel messages, direct messages and voice state over real HTTP and real gateway
//! sessions (`rest.md` §7.6, §7.11, §7.17; `gateway.md` §7): every success shape, every
//! error row, and who receives each event. Every "must not receive" is checked with a
//! positive control: a later event the excluded session does receive arrives first.

use concord_protocol::{ChannelId, MessageId, Timestamp};
use concord_server::perms::Permissions;
use concord_store::NewMessage;
use concord_testkit::MESSAGE_KEYS;
use concord_testkit::{Response, TestServer, TestUser, assert_error, assert_keys, str_of};
use serde_json::{Value, json};

const DM_CHANNEL_KEYS: &[&str] = &["id", "recipient", "created_at", "last_message_at"];
const RECIPIENT_KEYS: &[&str] = &[
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
const DM_KEYS: &[&str] = &[
    "id",
    "channel_id",
    "author_id",
    "content",
    "edited_at",
    "created_at",
];
const VOICE_KEYS: &[&str] = &[
    "user_id",
    "channel_id",
    "self_mute",
    "self_deaf",
    "self_video",
    "self_screen",
    "server_mute",
    "server_deaf",
    "joined_at",
];

fn participant_keys() -> Vec<&'static str> {
    let mut keys = VOICE_KEYS.to_vec();
    keys.push("username");
    keys
}

fn unknown_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn open_dm(from: &TestUser, to: &TestUser) -> Response {
    from.api
        .post("/dm-channels", &json!({"user_id": to.id}))
        .await
}

// ---- channel messages ----

#[tokio::test]
async fn message_events_reach_exactly_the_channel_viewers() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await; // no server in common
    let dave = server.user("dave").await; // member of another server only
    let erin = server.user("erin").await; // member denied VIEW on the channel
    let sid = alice.create_server("Guild").await;
    let other = alice.create_server("Other").await;
    bob.join(&sid).await;
    erin.join(&sid).await;
    dave.join(&other).await;
    let general = alice.create_channel(&sid, "general", "text").await;
    let lobby = alice.create_channel(&sid, "lobby", "text").await;
    let other_general = alice.create_channel(&other, "general", "text").await;
    server
        .deny(&general, &erin, Permissions::VIEW_CHANNEL.0)
        .await;

    let (mut alice_1, _) = server.connect(&alice.ws_query()).await;
    let (mut alice_2, _) = server.connect(&alice.ws_query()).await;
    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let (mut carol_gw, _) = server.connect(&carol.ws_query()).await;
    let (mut dave_gw, _) = server.connect(&dave.ws_query()).await;
    let (mut erin_gw, _) = server.connect(&erin.ws_query()).await;
    let mut viewers = [&mut alice_1, &mut alice_2, &mut bob_gw];

    let created = bob.post(&general, "hello").await;
    assert_keys(&created, MESSAGE_KEYS);
    assert_eq!(created["channel_id"], general.as_str());
    assert_eq!(created["author_id"], bob.id.as_str());
    assert_eq!(created["content"], "hello");
    for key in [
        "reply_to",
        "thread_id",
        "edited_at",
        "pinned_by",
        "pinned_at",
        "poll",
        "event",
    ] {
        assert_eq!(created[key], Value::Null, "{key}");
    }
    assert_eq!(created["mention_user_ids"], json!([]));
    assert_eq!(created["mention_everyone"], false);
    assert_eq!(created["thread_reply_count"], 0);
    assert_eq!(created["deleted"], false);
    assert_eq!(created["pinned"], false);
    for gw in viewers.iter_mut() {
        assert_eq!(gw.next_event("MESSAGE_CREATE").await, created);
    }

    let id = str_of(&created["id"]);
    let edited = bob
        .api
        .patch(&format!("/messages/{id}"), &json!({"content": "edited"}))
        .await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    for gw in viewers.iter_mut() {
        assert_eq!(gw.next_event("MESSAGE_UPDATE").await, edited.body);
    }

    let removed = bob.api.delete(&format!("/messages/{id}")).await;
    assert_eq!(removed.status, 204, "{}", removed.text);
    for gw in viewers.iter_mut() {
        let d = gw.next_event("MESSAGE_DELETE").await;
        assert_keys(&d, &["id", "channel_id"]);
        assert_eq!(d, json!({"id": id, "channel_id": general}));
    }

    // Positive controls: the first thing each excluded session gets is a later event
    // meant for it, so none of the three events above reached it.
    let visible = alice.post(&lobby, "lobby is visible to erin").await;
    assert_eq!(erin_gw.next_event("MESSAGE_CREATE").await, visible);
    let theirs = alice.post(&other_general, "for dave's server").await;
    assert_eq!(dave_gw.next_event("MESSAGE_CREATE").await, theirs);
    assert_eq!(open_dm(&bob, &carol).await.status, 201);
    let dm = carol_gw.next_event("DM_CHANNEL_CREATE").await;
    assert_eq!(dm["recipient"]["id"], bob.id.as_str());
}

#[tokio::test]
async fn create_message_errors_in_order() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let mute = server.user("mute").await;
    let blind = server.user("blind").await;
    let late = server.user("late").await;
    let sid = alice.create_server("Guild").await;
    for user in [&bob, &mute, &blind, &late] {
        user.join(&sid).await;
    }
    let general = alice.create_channel(&sid, "general", "text").await;
    let random = alice.create_channel(&sid, "random", "text").await;
    let voice = alice.create_channel(&sid, "talk", "voice").await;
    server
        .deny(&general, &mute, Permissions::SEND_MESSAGES.0)
        .await;
    server
        .deny(&general, &blind, Permissions::VIEW_CHANNEL.0)
        .await;
    let path = format!("/channels/{general}/messages");
    let unknown = format!("/channels/{}/messages", unknown_id());

    assert_error(&bob.api.post(&path, &json!({})).await, 422);
    assert_error(&bob.api.post(&path, &json!({"content": 3})).await, 422);
    // Content is checked before anything is looked up.
    assert_error(&bob.api.post(&unknown, &json!({"content": ""})).await, 400);
    assert_error(
        &bob.api
            .post(&path, &json!({"content": "a".repeat(4001)}))
            .await,
        400,
    );
    assert_eq!(
        bob.api
            .post(&path, &json!({"content": "é".repeat(4000)}))
            .await
            .status,
        201
    );
    assert_error(&bob.api.post(&unknown, &json!({"content": "x"})).await, 404);
    assert_error(&carol.api.post(&path, &json!({"content": "x"})).await, 404);
    assert_error(&mute.api.post(&path, &json!({"content": "x"})).await, 403);
    assert_error(&blind.api.post(&path, &json!({"content": "x"})).await, 403);

    server.time_out(&sid, &alice, &late).await;
    assert_error(&late.api.post(&path, &json!({"content": "x"})).await, 403);

    let elsewhere = bob.post(&random, "in random").await;
    let gone = bob.post(&general, "soon deleted").await;
    assert_eq!(
        bob.api
            .delete(&format!("/messages/{}", str_of(&gone["id"])))
            .await
            .status,
        204
    );
    for target in [unknown_id(), str_of(&elsewhere["id"]), str_of(&gone["id"])] {
        let body = json!({"content": "reply", "reply_to": target});
        assert_error(&bob.api.post(&path, &body).await, 404);
    }
    let root = bob.post(&general, "root").await;
    let reply = bob
        .api
        .post(&path, &json!({"content": "reply", "reply_to": root["id"]}))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.body["reply_to"], root["id"]);

    // No channel-type check: voice channels take messages.
    assert_eq!(
        bob.post(&voice, "in voice").await["channel_id"],
        voice.as_str()
    );
}

#[tokio::test]
async fn mentions_are_parsed_on_create_and_edit() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let _stranger = server.user("stranger").await;
    let sid = alice.create_server("Guild").await;
    bob.join(&sid).await;
    let general = alice.create_channel(&sid, "general", "text").await;

    let content = "hey @bob! @alice, @everyone @nobody @stranger @Bob @bob email@bob";
    let created = bob.post(&general, content).await;
    assert_eq!(
        created["mention_user_ids"],
        json!([bob.id, alice.id]),
        "each once, in order"
    );
    assert_eq!(created["mention_everyone"], true);

    let plain = bob.post(&general, "@everyone's @nobody").await;
    assert_eq!(
        plain["mention_everyone"], false,
        "`everyone's` keeps its apostrophe-s"
    );
    assert_eq!(plain["mention_user_ids"], json!([]));

    let id = str_of(&created["id"]);
    let edited = bob
        .api
        .patch(&format!("/messages/{id}"), &json!({"content": "@alice?"}))
        .await;
    assert_eq!(edited.status, 200);
    assert_eq!(edited.body["mention_user_ids"], json!([alice.id]));
    assert_eq!(edited.body["mention_everyone"], false);
    let fetched = bob
        .api
        .get(&format!("/channels/{general}/messages/{id}"))
        .await;
    assert_eq!(fetched.body["mention_user_ids"], json!([alice.id]));
}

#[tokio::test]
async fn listing_pages_newest_first_with_a_cursor() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let sid = alice.create_server("Guild").await;
    bob.join(&sid).await;
    let general = alice.create_channel(&sid, "general", "text").await;
    let random = alice.create_channel(&sid, "random", "text").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(str_of(&bob.post(&general, &format!("m{i}")).await["id"]));
    }
    let deleted = ids.remove(2);
    assert_eq!(
        bob.api.delete(&format!("/messages/{deleted}")).await.status,
        204
    );
    let elsewhere = str_of(&bob.post(&random, "elsewhere").await["id"]);
    let path = format!("/channels/{general}/messages");
    let page = |res: Response| -> Vec<String> {
        assert_eq!(res.status, 200, "{}", res.text);
        res.body
            .as_array()
            .unwrap()
            .iter()
            .map(|m| str_of(&m["id"]))
            .collect()
    };
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();

    let all = bob.api.get(&path).await;
    for m in all.body.as_array().unwrap() {
        assert_keys(m, MESSAGE_KEYS);
    }
    assert_eq!(page(all), newest_first, "deleted messages are not listed");
    assert_eq!(
        page(bob.api.get(&format!("{path}?limit=2")).await),
        newest_first[..2]
    );
    let cursor = &newest_first[1];
    assert_eq!(
        page(
            bob.api
                .get(&format!("{path}?before={cursor}&limit=2"))
                .await
        ),
        newest_first[2..4]
    );
    assert_eq!(
        page(bob.api.get(&format!("{path}?limit=0")).await),
        newest_first[..1],
        "clamped to 1"
    );
    assert_eq!(
        page(bob.api.get(&format!("{path}?limit=-5")).await).len(),
        1
    );
    assert!(
        page(
            bob.api
                .get(&format!("{path}?before={}", unknown_id()))
                .await
        )
        .is_empty()
    );
    assert!(page(bob.api.get(&format!("{path}?before={elsewhere}")).await).is_empty());
    // A deleted message still works as a cursor.
    assert_eq!(
        page(bob.api.get(&format!("{path}?before={deleted}")).await),
        newest_first[2..]
    );

    // Over 100 messages: the limit is clamped to 100.
    let channel_id: ChannelId = random.parse().unwrap();
    let base = Timestamp::now().as_micros();
    for i in 0..105 {
        let message = NewMessage {
            id: MessageId::new(),
            channel_id,
            author_id: bob.user_id(),
            content: format!("bulk {i}"),
            reply_to: None,
            mention_user_ids: Vec::new(),
            mention_everyone: false,
            thread_id: None,
            created_at: Timestamp::from_micros(base + i),
            node: None,
        };
        server.state.store.create_message(&message).await.unwrap();
    }
    let bulk = format!("/channels/{random}/messages");
    assert_eq!(
        page(bob.api.get(&format!("{bulk}?limit=1000")).await).len(),
        100
    );
    assert_eq!(page(bob.api.get(&bulk).await).len(), 50, "default 50");

    assert_error(&bob.api.get(&format!("{path}?limit=abc")).await, 400);
    assert_error(&bob.api.get(&format!("{path}?before=nope")).await, 400);
    assert_error(
        &bob.api
            .get(&format!("/channels/{}/messages", unknown_id()))
            .await,
        404,
    );
    assert_error(&carol.api.get(&path).await, 404);
    server
        .deny(&general, &bob, Permissions::VIEW_CHANNEL.0)
        .await;
    assert_error(&bob.api.get(&path).await, 403);
}

#[tokio::test]
async fn get_one_message_shows_deleted_ones_without_content() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let sid = alice.create_server("Guild").await;
    bob.join(&sid).await;
    let general = alice.create_channel(&sid, "general", "text").await;
    let random = alice.create_channel(&sid, "random", "text").await;
    let message = bob.post(&general, "secret words").await;
    let id = str_of(&message["id"]);
    let path = format!("/channels/{general}/messages/{id}");

    let got = alice.api.get(&path).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, message);

    assert_eq!(bob.api.delete(&format!("/messages/{id}")).await.status, 204);
    let got = alice.api.get(&path).await;
    assert_eq!(got.status, 200);
    assert_keys(&got.body, MESSAGE_KEYS);
    assert_eq!(got.body["deleted"], true);
    assert_eq!(got.body["content"], "");

    assert_error(
        &alice
            .api
            .get(&format!("/channels/{}/messages/{id}", unknown_id()))
            .await,
        404,
    );
    assert_error(&carol.api.get(&path).await, 404);
    assert_error(
        &alice
            .api
            .get(&format!("/channels/{random}/messages/{id}"))
            .await,
        404,
    );
    assert_error(
        &alice
            .api
            .get(&format!("/channels/{general}/messages/{}", unknown_id()))
            .await,
        404,
    );
    server
        .deny(&general, &bob, Permissions::VIEW_CHANNEL.0)
        .await;
    assert_error(&bob.api.get(&path).await, 403);
}

#[tokio::test]
async fn edit_message_is_author_only() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let sid = alice.create_server("Guild").await;
    bob.join(&sid).await;
    let general = alice.create_channel(&sid, "general", "text").await;
    let message = bob.post(&general, "first").await;
    let id = str_of(&message["id"]);
    let path = format!("/messages/{id}");

    let edited = bob.api.patch(&path, &json!({"content": "second"})).await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    assert_keys(&edited.body, MESSAGE_KEYS);
    assert_eq!(edited.body["content"], "second");
    assert!(edited.body["edited_at"].is_string());
    assert_eq!(edited.body["created_at"], message["created_at"]);
    assert_eq!(edited.body["pinned"], false);

    assert_error(&bob.api.patch(&path, &json!({})).await, 422);
    assert_error(
        &bob.api
            .patch(
                &format!("/messages/{}", unknown_id()),
                &json!({"content": ""}),
            )
            .await,
        400,
    );
    assert_error(
        &bob.api
            .patch(&path, &json!({"content": "a".repeat(4001)}))
            .await,
        400,
    );
    assert_error(
        &bob.api
            .patch(
                &format!("/messages/{}", unknown_id()),
                &json!({"content": "x"}),
            )
            .await,
        404,
    );
    assert_error(&carol.api.patch(&path, &json!({"content": "x"})).await, 404);
    assert_error(
        &alice
            .api
            .patch(&path, &json!({"content": "owner edit"}))
            .await,
        403,
    );
    assert_eq!(bob.api.delete(&path).await.status, 204);
    assert_error(&bob.api.patch(&path, &json!({"content": "x"})).await, 404);
}

#[tokio::test]
async fn delete_message_is_for_author_or_owner() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let erin = server.user("erin").await;
    let carol = server.user("carol").await;
    let sid = alice.create_server("Guild").await;
    bob.join(&sid).await;
    erin.join(&sid).await;
    let general = alice.create_channel(&sid, "general", "text").await;
    let by_bob = str_of(&bob.post(&general, "one").await["id"]);
    let by_bob_too = str_of(&bob.post(&general, "two").await["id"]);

    assert_error(
        &bob.api.delete(&format!("/messages/{}", unknown_id())).await,
        404,
    );
    assert_error(&carol.api.delete(&format!("/messages/{by_bob}")).await, 404);
    assert_error(&erin.api.delete(&format!("/messages/{by_bob}")).await, 403);
    let res = bob.api.delete(&format!("/messages/{by_bob}")).await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert!(res.text.is_empty());
    assert_error(&bob.api.delete(&format!("/messages/{by_bob}")).await, 404);
    assert_eq!(
        alice
            .api
            .delete(&format!("/messages/{by_bob_too}"))
            .await
            .status,
        204,
        "owner"
    );
    let list = bob.api.get(&format!("/channels/{general}/messages")).await;
    assert_eq!(list.body, json!([]));
    assert_error(&bob.api.delete("/messages/not-a-uuid").await, 400);
}

// ---- direct messages ----

#[tokio::test]
async fn dm_open_tells_each_side_with_its_own_recipient() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await; // first user: instance admin
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let (mut carol_gw, _) = server.connect(&carol.ws_query()).await;

    let opened = open_dm(&bob, &alice).await;
    assert_eq!(opened.status, 201, "{}", opened.text);
    assert_keys(&opened.body, DM_CHANNEL_KEYS);
    assert_keys(&opened.body["recipient"], RECIPIENT_KEYS);
    assert_eq!(opened.body["recipient"]["id"], alice.id.as_str());
    assert_eq!(
        opened.body["recipient"]["is_admin"], false,
        "recipient form"
    );
    assert_eq!(opened.body["recipient"]["email"], Value::Null);
    assert_eq!(opened.body["recipient"]["activity"], Value::Null);
    assert_eq!(opened.body["last_message_at"], Value::Null);
    let dm = str_of(&opened.body["id"]);

    let for_bob = bob_gw.next_event("DM_CHANNEL_CREATE").await;
    assert_eq!(for_bob, opened.body);
    let for_alice = alice_gw.next_event("DM_CHANNEL_CREATE").await;
    assert_keys(&for_alice, DM_CHANNEL_KEYS);
    assert_eq!(for_alice["id"], dm.as_str());
    assert_eq!(for_alice["recipient"]["id"], bob.id.as_str());
    assert_eq!(for_alice["recipient"]["username"], "bob");

    // Opening again, from either side, answers 200 with the same channel and no event.
    let again = open_dm(&alice, &bob).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["id"], dm.as_str());
    assert_eq!(again.body["recipient"]["id"], bob.id.as_str());
    assert_eq!(open_dm(&bob, &alice).await.status, 200);

    let sent = alice
        .api
        .post(
            &format!("/dm-channels/{dm}/messages"),
            &json!({"content": "hi bob"}),
        )
        .await;
    assert_eq!(sent.status, 201, "{}", sent.text);
    assert_keys(&sent.body, DM_KEYS);
    assert_eq!(sent.body["channel_id"], dm.as_str());
    assert_eq!(sent.body["author_id"], alice.id.as_str());
    assert_eq!(sent.body["content"], "hi bob");
    assert_eq!(sent.body["edited_at"], Value::Null);
    // The first thing either side gets after the repeated opens is the message.
    assert_eq!(alice_gw.next_event("DM_MESSAGE_CREATE").await, sent.body);
    assert_eq!(bob_gw.next_event("DM_MESSAGE_CREATE").await, sent.body);

    let listed = alice.api.get("/dm-channels").await;
    assert_eq!(listed.status, 200);
    let list = listed.body.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_keys(&list[0], DM_CHANNEL_KEYS);
    assert_eq!(list[0]["recipient"]["id"], bob.id.as_str());
    assert_eq!(list[0]["last_message_at"], sent.body["created_at"]);
    let again = open_dm(&alice, &bob).await;
    assert_eq!(again.body["last_message_at"], sent.body["created_at"]);

    // Positive control for carol: nothing above reached her.
    let with_carol = open_dm(&alice, &carol).await;
    assert_eq!(with_carol.status, 201);
    let for_carol = carol_gw.next_event("DM_CHANNEL_CREATE").await;
    assert_eq!(for_carol["recipient"]["id"], alice.id.as_str());
    let listed = alice.api.get("/dm-channels").await;
    let order: Vec<String> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| str_of(&c["id"]))
        .collect();
    assert_eq!(
        order,
        vec![dm, str_of(&with_carol.body["id"])],
        "never-used channels last"
    );
}

#[tokio::test]
async fn dm_errors() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    assert_error(&alice.api.post("/dm-channels", &json!({})).await, 422);
    assert_error(
        &alice
            .api
            .post("/dm-channels", &json!({"user_id": "nope"}))
            .await,
        422,
    );
    assert_error(
        &alice
            .api
            .post("/dm-channels", &json!({"user_id": alice.id}))
            .await,
        400,
    );
    assert_error(
        &alice
            .api
            .post("/dm-channels", &json!({"user_id": unknown_id()}))
            .await,
        404,
    );
    let dm = str_of(&open_dm(&alice, &bob).await.body["id"]);
    let path = format!("/dm-channels/{dm}/messages");
    let unknown = format!("/dm-channels/{}/messages", unknown_id());

    assert_error(&carol.api.get(&path).await, 404);
    assert_error(&alice.api.get(&unknown).await, 404);
    assert_error(
        &alice.api.post(&unknown, &json!({"content": ""})).await,
        400,
    );
    assert_error(
        &alice
            .api
            .post(&path, &json!({"content": "a".repeat(4001)}))
            .await,
        400,
    );
    assert_error(&alice.api.post(&path, &json!({})).await, 422);
    assert_error(&carol.api.post(&path, &json!({"content": "x"})).await, 404);
    assert_error(
        &alice.api.post(&unknown, &json!({"content": "x"})).await,
        404,
    );
    assert_error(&alice.api.get(&format!("{path}?limit=x")).await, 400);
    assert!(
        carol
            .api
            .get("/dm-channels")
            .await
            .body
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn dm_messages_page_newest_first() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let dm = str_of(&open_dm(&alice, &bob).await.body["id"]);
    let path = format!("/dm-channels/{dm}/messages");
    let mut ids = Vec::new();
    for i in 0..4 {
        let res = alice
            .api
            .post(&path, &json!({"content": format!("m{i}")}))
            .await;
        ids.push(str_of(&res.body["id"]));
    }
    ids.reverse();
    let page = |res: Response| -> Vec<String> {
        assert_eq!(res.status, 200, "{}", res.text);
        res.body
            .as_array()
            .unwrap()
            .iter()
            .map(|m| str_of(&m["id"]))
            .collect()
    };
    let all = bob.api.get(&path).await;
    for m in all.body.as_array().unwrap() {
        assert_keys(m, DM_KEYS);
    }
    assert_eq!(page(all), ids);
    assert_eq!(
        page(bob.api.get(&format!("{path}?limit=2")).await),
        ids[..2]
    );
    assert_eq!(
        page(
            bob.api
                .get(&format!("{path}?before={}&limit=2", ids[1]))
                .await
        ),
        ids[2..]
    );
    assert_eq!(page(bob.api.get(&format!("{path}?limit=0")).await).len(), 1);
    assert!(
        page(
            bob.api
                .get(&format!("{path}?before={}", unknown_id()))
                .await
        )
        .is_empty()
    );
}

// ---- voice ----

#[tokio::test]
async fn voice_join_patch_leave_and_their_events() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let sid = alice.create_server("Guild").await;
    bob.join(&sid).await;
    let voice = alice.create_channel(&sid, "talk", "voice").await;
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let (mut carol_gw, _) = server.connect(&carol.ws_query()).await;
    let path = format!("/channels/{voice}/voice");

    let joined = bob.api.post_empty(&path).await;
    assert_eq!(joined.status, 201, "{}", joined.text);
    assert_keys(&joined.body, VOICE_KEYS);
    assert_eq!(joined.body["user_id"], bob.id.as_str());
    assert_eq!(joined.body["channel_id"], voice.as_str());
    for flag in [
        "self_mute",
        "self_deaf",
        "self_video",
        "self_screen",
        "server_mute",
        "server_deaf",
    ] {
        assert_eq!(joined.body[flag], false, "{flag}");
    }
    assert!(joined.body["joined_at"].is_string());
    let mut expected = joined.body.clone();
    expected["username"] = json!("bob");
    for gw in [&mut alice_gw, &mut bob_gw] {
        let d = gw.next_event("VOICE_STATE_UPDATE").await;
        assert_keys(&d, &participant_keys());
        assert_eq!(d, expected);
    }
    assert_eq!(
        server.state.directory.voice_channel(bob.user_id()),
        Some(voice.parse().unwrap())
    );

    let listed = alice.api.get(&path).await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body, json!([expected]));

    let patched = bob
        .api
        .patch(&path, &json!({"self_mute": true, "self_video": true}))
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_keys(&patched.body, VOICE_KEYS);
    assert_eq!(patched.body["self_mute"], true);
    assert_eq!(patched.body["self_video"], true);
    assert_eq!(patched.body["self_deaf"], false);
    assert_eq!(patched.body["joined_at"], joined.body["joined_at"]);
    let mut expected = patched.body.clone();
    expected["username"] = json!("bob");
    for gw in [&mut alice_gw, &mut bob_gw] {
        assert_eq!(gw.next_event("VOICE_STATE_UPDATE").await, expected);
    }

    // Re-joining resets the self flags.
    let rejoined = bob.api.post_empty(&path).await;
    assert_eq!(rejoined.status, 201);
    assert_eq!(rejoined.body["self_mute"], false);
    for gw in [&mut alice_gw, &mut bob_gw] {
        let d = gw.next_event("VOICE_STATE_UPDATE").await;
        assert_eq!(d["channel_id"], voice.as_str(), "a re-join sends no leave");
    }

    let left = bob.api.delete(&path).await;
    assert_eq!(left.status, 204, "{}", left.text);
    let leave = json!({
        "user_id": bob.id, "channel_id": null, "self_mute": false, "self_deaf": false,
        "self_video": false, "self_screen": false, "server_mute": false, "server_deaf": false,
        "joined_at": null, "username": "bob",
    });
    for gw in [&mut alice_gw, &mut bob_gw] {
        assert_eq!(gw.next_event("VOICE_STATE_UPDATE").await, leave);
    }
    assert_eq!(server.state.directory.voice_channel(bob.user_id()), None);
    assert_eq!(alice.api.get(&path).await.body, json!([]));
    assert_error(&bob.api.delete(&path).await, 404);
    assert_error(
        &bob.api.patch(&path, &json!({"self_mute": true})).await,
        404,
    );

    // Carol shares no server: her first event is her own DM.
    assert_eq!(open_dm(&alice, &carol).await.status, 201);
    assert_eq!(
        carol_gw.next_event("DM_CHANNEL_CREATE").await["recipient"]["id"],
        alice.id.as_str()
    );
}

#[tokio::test]
async fn voice_errors_in_order() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let quiet = server.user("quiet").await;
    let blind = server.user("blind").await;
    let sid = alice.create_server("Guild").await;
    for user in [&bob, &quiet, &blind] {
        user.join(&sid).await;
    }
    let voice = alice.create_channel(&sid, "talk", "voice").await;
    let text = alice.create_channel(&sid, "general", "text").await;
    server
        .deny(&voice, &quiet, Permissions::CONNECT_VOICE.0)
        .await;
    server
        .deny(&voice, &blind, Permissions::VIEW_CHANNEL.0)
        .await;
    let path = format!("/channels/{voice}/voice");
    let unknown = format!("/channels/{}/voice", unknown_id());
    let text_path = format!("/channels/{text}/voice");

    // GET
    assert_error(&bob.api.get(&unknown).await, 404);
    assert_error(&carol.api.get(&path).await, 404);
    assert_error(&bob.api.get(&text_path).await, 400);
    assert_error(&blind.api.get(&path).await, 403);
    assert_eq!(quiet.api.get(&path).await.status, 200);
    // POST
    assert_error(&bob.api.post_empty(&unknown).await, 404);
    assert_error(&carol.api.post_empty(&path).await, 404);
    assert_error(&bob.api.post_empty(&text_path).await, 400);
    assert_error(&quiet.api.post_empty(&path).await, 403);
    assert_error(&blind.api.post_empty(&path).await, 403);
    // PATCH: body first (422, then "none given" before any lookup).
    assert_error(
        &bob.api
            .patch(&unknown, &json!({"self_mute": true, "bogus": 1}))
            .await,
        422,
    );
    assert_error(
        &bob.api.patch(&unknown, &json!({"self_mute": "yes"})).await,
        422,
    );
    assert_error(&bob.api.patch(&unknown, &json!({})).await, 400);
    assert_error(
        &bob.api.patch(&unknown, &json!({"self_mute": null})).await,
        400,
    );
    assert_error(
        &bob.api.patch(&unknown, &json!({"self_mute": true})).await,
        404,
    );
    assert_error(
        &carol.api.patch(&path, &json!({"self_mute": true})).await,
        404,
    );
    assert_error(
        &bob.api.patch(&text_path, &json!({"self_mute": true})).await,
        400,
    );
    assert_error(
        &bob.api.patch(&path, &json!({"self_mute": true})).await,
        404,
    );
    // DELETE
    assert_error(&bob.api.delete(&unknown).await, 404);
    assert_error(&carol.api.delete(&path).await, 404);
    assert_error(&bob.api.delete(&text_path).await, 400);
    assert_error(&bob.api.delete(&path).await, 404);
}

#[tokio::test]
async fn moving_sends_the_leave_to_the_old_channels_audience() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await; // owner of the first server: sees everything
    let bob = server.user("bob").await; // the one who moves
    let erin = server.user("erin").await; // sees `one` but not `two`
    let frank = server.user("frank").await; // owner of the second server
    let first = alice.create_server("First").await;
    let second = frank.create_server("Second").await;
    bob.join(&first).await;
    erin.join(&first).await;
    bob.join(&second).await;
    let one = alice.create_channel(&first, "one", "voice").await;
    let two = alice.create_channel(&first, "two", "voice").await;
    let lobby = alice.create_channel(&first, "lobby", "text").await;
    let three = frank.create_channel(&second, "three", "voice").await;
    server.deny(&two, &erin, Permissions::VIEW_CHANNEL.0).await;
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    let (mut erin_gw, _) = server.connect(&erin.ws_query()).await;
    let (mut frank_gw, _) = server.connect(&frank.ws_query()).await;

    bob.join_voice(&one).await;
    for gw in [&mut alice_gw, &mut erin_gw] {
        assert_eq!(
            gw.next_event("VOICE_STATE_UPDATE").await["channel_id"],
            one.as_str()
        );
    }
    // A server flag survives a move (no endpoint sets it; the store can).
    let mut state = server
        .state
        .store
        .voice_state(bob.user_id())
        .await
        .unwrap()
        .unwrap();
    state.server_mute = true;
    state.self_deaf = true;
    server.state.store.put_voice_state(&state).await.unwrap();

    // Same server: a viewer of both channels sees the leave, then the join.
    let moved = bob.api.post_empty(&format!("/channels/{two}/voice")).await;
    assert_eq!(moved.status, 201);
    assert_eq!(moved.body["server_mute"], true);
    assert_eq!(moved.body["self_deaf"], false);
    let leave = alice_gw.next_event("VOICE_STATE_UPDATE").await;
    assert_eq!(leave["channel_id"], Value::Null);
    assert_eq!(leave["user_id"], bob.id.as_str());
    assert_eq!(leave["username"], "bob");
    assert_eq!(
        leave["server_mute"], false,
        "the leave form has every flag false"
    );
    let join_two = alice_gw.next_event("VOICE_STATE_UPDATE").await;
    assert_eq!(join_two["channel_id"], two.as_str());
    assert_eq!(join_two["server_mute"], true);
    // Erin sees `one` only: the leave, and not the join (checked below).
    let erin_leave = erin_gw.next_event("VOICE_STATE_UPDATE").await;
    assert_eq!(erin_leave, leave);

    // Another server: the old channel's audience gets the leave, the new one the join.
    bob.join_voice(&three).await;
    let leave = alice_gw.next_event("VOICE_STATE_UPDATE").await;
    assert_eq!(leave["channel_id"], Value::Null);
    assert_eq!(leave["username"], "bob");
    let join_three = frank_gw.next_event("VOICE_STATE_UPDATE").await;
    assert_eq!(join_three["channel_id"], three.as_str());
    assert_eq!(join_three["username"], "bob");
    assert_eq!(
        alice.api.get(&format!("/channels/{two}/voice")).await.body,
        json!([])
    );

    // Positive controls: neither the join of `two` nor the leave of `two` reached
    // erin, and alice got nothing from the second server.
    let control = alice.post(&lobby, "control").await;
    assert_eq!(erin_gw.next_event("MESSAGE_CREATE").await, control);
    assert_eq!(alice_gw.next_event("MESSAGE_CREATE").await, control);
}
