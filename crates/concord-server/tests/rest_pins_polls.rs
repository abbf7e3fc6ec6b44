//! Pins, polls and scheduled events over real HTTP and real gateway sessions
//! (`rest.md` §7.9, §7.10; `gateway.md` §7, D15): every success shape, every error row
//! in the contract's order, who receives each event, and, for POLL_VOTE, that each
//! recipient sees only their own vote. Every "must not receive" is checked with a
//! positive control: a later event the excluded session does receive arrives first.

use concord_protocol::{ChannelId, ChannelOverride, OverrideId};
use concord_server::{directory::DirectoryChange, perms::Permissions, visibility};
use concord_testkit::MESSAGE_KEYS;
use concord_testkit::{Response, TestServer, TestUser, assert_error, assert_keys, str_of};
use serde_json::{Value, json};

const POLL_KEYS: &[&str] = &["id", "question", "options", "total_votes", "user_vote"];
const OPTION_KEYS: &[&str] = &["id", "text", "votes"];
const EVENT_KEYS: &[&str] = &[
    "id",
    "name",
    "description",
    "starts_at",
    "created_by",
    "created_at",
];

fn unknown_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn pin_path(channel: &str, message: &str) -> String {
    format!("/channels/{channel}/messages/{message}/pin")
}

/// Allows `bits` to `user` on `channel` through a user override.
async fn allow(server: &TestServer, channel: &str, user: &TestUser, bits: i64) {
    let ov = ChannelOverride {
        id: OverrideId::new(),
        channel_id: channel.parse::<ChannelId>().unwrap(),
        role_id: None,
        user_id: Some(user.user_id()),
        allow: bits,
        deny: 0,
    };
    let stored = server.state.store.put_override(&ov).await.unwrap();
    server
        .settled(visibility::publish_permission_change(
            &server.state,
            DirectoryChange::OverrideUpserted(stored),
        ))
        .await;
}

async fn create_poll(user: &TestUser, channel: &str, question: &str, options: &[&str]) -> Value {
    let res = user
        .api
        .post(
            &format!("/channels/{channel}/polls"),
            &json!({"question": question, "options": options}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    res.body
}

async fn vote(user: &TestUser, poll: &str, option: &str) -> Response {
    user.api
        .post(
            &format!("/polls/{poll}/vote"),
            &json!({"option_id": option}),
        )
        .await
}

/// `poll` with these vote counts (in option order) and this `user_vote`.
fn poll_as(poll: &Value, votes: &[i64], user_vote: Option<&str>) -> Value {
    let mut poll = poll.clone();
    for (option, n) in poll["options"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .zip(votes)
    {
        option["votes"] = json!(n);
    }
    poll["total_votes"] = json!(votes.iter().sum::<i64>());
    poll["user_vote"] = json!(user_vote);
    poll
}

fn ids(body: &Value) -> Vec<String> {
    body.as_array()
        .unwrap_or_else(|| panic!("not an array: {body}"))
        .iter()
        .map(|m| str_of(&m["id"]))
        .collect()
}

// ---- pins ----

#[tokio::test]
async fn pins_change_once_and_reach_the_channel_viewers() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let moderator = server.user("moderator").await;
    let erin = server.user("erin").await; // denied VIEW on general
    let sid = alice.create_server("Guild").await;
    for user in [&bob, &moderator, &erin] {
        user.join(&sid).await;
    }
    server
        .grant(&sid, &moderator, Permissions::MANAGE_MESSAGES.0)
        .await;
    let general = alice.create_channel(&sid, "general", "text").await;
    let lobby = alice.create_channel(&sid, "lobby", "text").await;
    server
        .deny(&general, &erin, Permissions::VIEW_CHANNEL.0)
        .await;
    let first = str_of(&bob.post(&general, "pin me").await["id"]);
    let second = str_of(&bob.post(&general, "and me").await["id"]);
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let (mut mod_gw, _) = server.connect(&moderator.ws_query()).await;
    let (mut erin_gw, _) = server.connect(&erin.ws_query()).await;

    let pinned = moderator.api.post_empty(&pin_path(&general, &first)).await;
    assert_eq!(pinned.status, 204, "{}", pinned.text);
    let pin_event = |message: &str, by: &TestUser| json!({"message_id": message, "channel_id": general, "pinned_by": by.id});
    for gw in [&mut alice_gw, &mut bob_gw, &mut mod_gw] {
        let d = gw.next_event("MESSAGE_PIN").await;
        assert_keys(&d, &["message_id", "channel_id", "pinned_by"]);
        assert_eq!(d, pin_event(&first, &moderator));
    }
    // Pinning again: 204, no event, and the first pin's fields stay.
    assert_eq!(
        alice
            .api
            .post_empty(&pin_path(&general, &first))
            .await
            .status,
        204
    );
    assert_eq!(
        alice
            .api
            .post_empty(&pin_path(&general, &second))
            .await
            .status,
        204
    );
    for gw in [&mut alice_gw, &mut bob_gw, &mut mod_gw] {
        assert_eq!(
            gw.next_event("MESSAGE_PIN").await,
            pin_event(&second, &alice)
        );
    }
    let got = bob
        .api
        .get(&format!("/channels/{general}/messages/{first}"))
        .await;
    assert_eq!(got.body["pinned"], true);
    assert_eq!(got.body["pinned_by"], moderator.id.as_str());
    assert!(got.body["pinned_at"].is_string(), "{}", got.body);

    let list = bob
        .api
        .get(&format!("/channels/{general}/pinned-messages"))
        .await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(
        ids(&list.body),
        [second.clone(), first.clone()],
        "newest pin first"
    );
    assert_eq!(list.body[1], got.body);
    for message in list.body.as_array().unwrap() {
        assert_keys(message, MESSAGE_KEYS);
    }

    // An edit keeps the pin fields, in the answer and in MESSAGE_UPDATE (R5).
    let edited = bob
        .api
        .patch(&format!("/messages/{first}"), &json!({"content": "edited"}))
        .await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    assert_eq!(edited.body["pinned"], true);
    assert_eq!(edited.body["pinned_by"], got.body["pinned_by"]);
    assert_eq!(edited.body["pinned_at"], got.body["pinned_at"]);
    for gw in [&mut alice_gw, &mut bob_gw, &mut mod_gw] {
        assert_eq!(gw.next_event("MESSAGE_UPDATE").await, edited.body);
    }

    let unpinned = moderator.api.delete(&pin_path(&general, &first)).await;
    assert_eq!(unpinned.status, 204, "{}", unpinned.text);
    for gw in [&mut alice_gw, &mut bob_gw, &mut mod_gw] {
        let d = gw.next_event("MESSAGE_UNPIN").await;
        assert_keys(&d, &["message_id", "channel_id", "unpinned_by"]);
        assert_eq!(
            d,
            json!({"message_id": first, "channel_id": general, "unpinned_by": moderator.id})
        );
    }
    assert_error(
        &moderator.api.delete(&pin_path(&general, &first)).await,
        404,
    );
    let got = bob
        .api
        .get(&format!("/channels/{general}/messages/{first}"))
        .await;
    assert_eq!(
        (
            &got.body["pinned"],
            &got.body["pinned_by"],
            &got.body["pinned_at"]
        ),
        (&json!(false), &Value::Null, &Value::Null)
    );
    let list = bob
        .api
        .get(&format!("/channels/{general}/pinned-messages"))
        .await;
    assert_eq!(ids(&list.body), [second]);

    // Positive control: erin's first event is a later one in a channel she sees.
    let visible = alice.post(&lobby, "lobby").await;
    assert_eq!(erin_gw.next_event("MESSAGE_CREATE").await, visible);
}

#[tokio::test]
async fn pin_errors_in_order() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await; // no MANAGE_MESSAGES
    let carol = server.user("carol").await; // not a member
    let moderator = server.user("moderator").await;
    let blind_mod = server.user("blind_mod").await; // MANAGE_MESSAGES, denied VIEW
    let sid = alice.create_server("Guild").await;
    for user in [&bob, &moderator, &blind_mod] {
        user.join(&sid).await;
    }
    server
        .grant(&sid, &moderator, Permissions::MANAGE_MESSAGES.0)
        .await;
    server
        .grant(&sid, &blind_mod, Permissions::MANAGE_MESSAGES.0)
        .await;
    let general = alice.create_channel(&sid, "general", "text").await;
    let random = alice.create_channel(&sid, "random", "text").await;
    server
        .deny(&general, &blind_mod, Permissions::VIEW_CHANNEL.0)
        .await;
    // A channel override granting the bit does not count: it is server-level.
    allow(&server, &general, &bob, Permissions::MANAGE_MESSAGES.0).await;
    let message = str_of(&bob.post(&general, "m").await["id"]);
    let elsewhere = str_of(&bob.post(&random, "elsewhere").await["id"]);
    let gone = str_of(&bob.post(&general, "gone").await["id"]);
    assert_eq!(
        bob.api.delete(&format!("/messages/{gone}")).await.status,
        204
    );
    let path = pin_path(&general, &message);

    for method in ["POST", "DELETE"] {
        let call = |user: &TestUser, path: String| {
            let api = user.api.clone();
            async move { api.raw(method, &path, None, "").await }
        };
        assert_error(
            &call(&moderator, pin_path(&unknown_id(), &message)).await,
            404,
        );
        assert_error(&call(&carol, path.clone()).await, 404);
        assert_error(&call(&bob, path.clone()).await, 403);
        assert_error(&call(&blind_mod, path.clone()).await, 403);
        for missing in [unknown_id(), elsewhere.clone(), gone.clone()] {
            assert_error(&call(&moderator, pin_path(&general, &missing)).await, 404);
        }
        assert_error(&call(&moderator, pin_path(&general, "nope")).await, 400);
    }
    // Nothing above pinned anything: unpinning is 404 "not pinned".
    assert_error(&moderator.api.delete(&path).await, 404);
    assert_eq!(moderator.api.post_empty(&path).await.status, 204);
    assert_eq!(moderator.api.delete(&path).await.status, 204);

    let list = format!("/channels/{general}/pinned-messages");
    assert_error(
        &bob.api
            .get(&format!("/channels/{}/pinned-messages", unknown_id()))
            .await,
        404,
    );
    assert_error(&carol.api.get(&list).await, 404);
    assert_error(&blind_mod.api.get(&list).await, 403);
    assert_eq!(bob.api.get(&list).await.body, json!([]));
}

// ---- polls ----

#[tokio::test]
async fn a_poll_is_a_message_carrying_it_sent_to_the_channel_viewers() {
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
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let (mut erin_gw, _) = server.connect(&erin.ws_query()).await;

    let message = create_poll(
        &bob,
        &general,
        "Lunch @alice @everyone?",
        &["  pizza ", "soup"],
    )
    .await;
    assert_keys(&message, MESSAGE_KEYS);
    assert_eq!(message["content"], "📊 **Poll**: Lunch @alice @everyone?");
    assert_eq!(message["author_id"], bob.id.as_str());
    assert_eq!(message["channel_id"], general.as_str());
    assert_eq!(
        message["mention_user_ids"],
        json!([]),
        "polls never mention"
    );
    assert_eq!(message["mention_everyone"], false);
    assert_eq!(message["event"], Value::Null);
    let poll = &message["poll"];
    assert_keys(poll, POLL_KEYS);
    assert_eq!(
        poll["question"], "Lunch @alice @everyone?",
        "stored as sent"
    );
    assert_eq!(poll["total_votes"], 0);
    assert_eq!(poll["user_vote"], Value::Null);
    let options = poll["options"].as_array().unwrap();
    assert_eq!(options.len(), 2);
    for (option, text) in options.iter().zip(["pizza", "soup"]) {
        assert_keys(option, OPTION_KEYS);
        assert_eq!(option["text"], text, "stored trimmed");
        assert_eq!(option["votes"], 0);
    }
    for gw in [&mut alice_gw, &mut bob_gw] {
        assert_eq!(gw.next_event("MESSAGE_CREATE").await, message);
    }
    let poll_id = str_of(&poll["id"]);
    let got = alice.api.get(&format!("/polls/{poll_id}")).await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(&got.body, poll);

    // Positive control: erin's first event is a later one in a channel she sees.
    let visible = alice.post(&lobby, "lobby").await;
    assert_eq!(erin_gw.next_event("MESSAGE_CREATE").await, visible);
}

#[tokio::test]
async fn poll_creation_errors_in_order() {
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
    server
        .deny(&general, &mute, Permissions::SEND_MESSAGES.0)
        .await;
    server
        .deny(&general, &blind, Permissions::VIEW_CHANNEL.0)
        .await;
    server.time_out(&sid, &alice, &late).await;
    let path = format!("/channels/{general}/polls");
    let unknown = format!("/channels/{}/polls", unknown_id());
    let good = json!({"question": "Q?", "options": ["a", "b"]});
    let refused = |res: Response, status: u16, about: &str| {
        assert_error(&res, status);
        let text = res.body["error"].as_str().unwrap().to_lowercase();
        assert!(text.contains(about), "{about}: {text}");
    };

    assert_error(&bob.api.post(&path, &json!({"question": "Q?"})).await, 422);
    assert_error(
        &bob.api
            .post(&path, &json!({"question": "Q?", "options": "a"}))
            .await,
        422,
    );
    // Count, then each option, then the question; all before any lookup.
    let eleven: Vec<String> = (0..11).map(|i| i.to_string()).collect();
    for options in [json!(["only"]), json!(eleven)] {
        let body = json!({"question": "", "options": options});
        refused(bob.api.post(&unknown, &body).await, 400, "option");
    }
    for option in [json!("  "), json!("é".repeat(100) + "a")] {
        let body = json!({"question": "", "options": ["fine", option]});
        refused(bob.api.post(&unknown, &body).await, 400, "option");
    }
    for question in [json!(" \n "), json!("q".repeat(501))] {
        let body = json!({"question": question, "options": ["a", "b"]});
        refused(bob.api.post(&unknown, &body).await, 400, "question");
    }
    assert_error(&bob.api.post(&unknown, &good).await, 404);
    assert_error(&carol.api.post(&path, &good).await, 404);
    assert_error(&mute.api.post(&path, &good).await, 403);
    assert_error(&blind.api.post(&path, &good).await, 403);
    assert_error(&late.api.post(&path, &good).await, 403);
    // The limits themselves are allowed; nothing refused was stored.
    let ten: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    let body = json!({"question": "é".repeat(250), "options": ten});
    assert_eq!(bob.api.post(&path, &body).await.status, 201);
    let listed = bob.api.get(&format!("/channels/{general}/messages")).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn each_viewer_sees_only_their_own_vote() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await; // owner, votes last
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let dave = server.user("dave").await; // never votes
    let erin = server.user("erin").await; // denied VIEW on general
    let sid = alice.create_server("Guild").await;
    for user in [&bob, &carol, &dave, &erin] {
        user.join(&sid).await;
    }
    let general = alice.create_channel(&sid, "general", "text").await;
    let lobby = alice.create_channel(&sid, "lobby", "text").await;
    server
        .deny(&general, &erin, Permissions::VIEW_CHANNEL.0)
        .await;
    let message = create_poll(&alice, &general, "Lunch?", &["pizza", "soup"]).await;
    let poll = message["poll"].clone();
    let poll_id = str_of(&poll["id"]);
    let message_id = str_of(&message["id"]);
    let pizza = str_of(&poll["options"][0]["id"]);
    let soup = str_of(&poll["options"][1]["id"]);
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let (mut carol_gw, _) = server.connect(&carol.ws_query()).await;
    let (mut dave_gw, _) = server.connect(&dave.ws_query()).await;
    let (mut erin_gw, _) = server.connect(&erin.ws_query()).await;
    let event = |votes: &[i64], user_vote: Option<&str>| {
        json!({
            "poll_id": poll_id,
            "channel_id": general,
            "updated_poll": poll_as(&poll, votes, user_vote),
        })
    };

    let voted = vote(&bob, &poll_id, &pizza).await;
    assert_eq!(voted.status, 200, "{}", voted.text);
    assert_eq!(voted.body, poll_as(&poll, &[1, 0], Some(&pizza)));
    let d = bob_gw.next_event("POLL_VOTE").await;
    assert_keys(&d, &["poll_id", "channel_id", "updated_poll"]);
    assert_eq!(d, event(&[1, 0], Some(&pizza)));
    for gw in [&mut alice_gw, &mut carol_gw, &mut dave_gw] {
        assert_eq!(gw.next_event("POLL_VOTE").await, event(&[1, 0], None));
    }

    let voted = vote(&carol, &poll_id, &soup).await;
    assert_eq!(voted.body, poll_as(&poll, &[1, 1], Some(&soup)));
    assert_eq!(
        bob_gw.next_event("POLL_VOTE").await,
        event(&[1, 1], Some(&pizza)),
        "bob keeps seeing his own vote, not carol's"
    );
    assert_eq!(
        carol_gw.next_event("POLL_VOTE").await,
        event(&[1, 1], Some(&soup))
    );
    for gw in [&mut alice_gw, &mut dave_gw] {
        assert_eq!(gw.next_event("POLL_VOTE").await, event(&[1, 1], None));
    }

    // The same vote again: 200, no event; the next POLL_VOTE anyone gets is alice's.
    let again = vote(&bob, &poll_id, &pizza).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, poll_as(&poll, &[1, 1], Some(&pizza)));
    assert_eq!(vote(&alice, &poll_id, &soup).await.status, 200);
    assert_eq!(
        bob_gw.next_event("POLL_VOTE").await,
        event(&[1, 2], Some(&pizza))
    );
    assert_eq!(
        carol_gw.next_event("POLL_VOTE").await,
        event(&[1, 2], Some(&soup))
    );
    assert_eq!(
        alice_gw.next_event("POLL_VOTE").await,
        event(&[1, 2], Some(&soup))
    );
    assert_eq!(dave_gw.next_event("POLL_VOTE").await, event(&[1, 2], None));

    // Changing a vote moves it.
    let switched = vote(&carol, &poll_id, &pizza).await;
    assert_eq!(switched.body, poll_as(&poll, &[2, 1], Some(&pizza)));
    assert_eq!(
        carol_gw.next_event("POLL_VOTE").await,
        event(&[2, 1], Some(&pizza))
    );
    assert_eq!(
        bob_gw.next_event("POLL_VOTE").await,
        event(&[2, 1], Some(&pizza))
    );
    assert_eq!(
        alice_gw.next_event("POLL_VOTE").await,
        event(&[2, 1], Some(&soup))
    );
    assert_eq!(dave_gw.next_event("POLL_VOTE").await, event(&[2, 1], None));

    // Every read shows the caller's own vote.
    for (user, mine) in [
        (&alice, Some(&soup)),
        (&bob, Some(&pizza)),
        (&carol, Some(&pizza)),
        (&dave, None),
    ] {
        let expected = poll_as(&poll, &[2, 1], mine.map(String::as_str));
        let got = user.api.get(&format!("/polls/{poll_id}")).await;
        assert_eq!(got.body, expected, "{}", user.username);
        let listed = user.api.get(&format!("/channels/{general}/messages")).await;
        assert_eq!(listed.body[0]["poll"], expected, "{}", user.username);
        let one = user
            .api
            .get(&format!("/channels/{general}/messages/{message_id}"))
            .await;
        assert_eq!(one.body["poll"], expected, "{}", user.username);
    }

    // An edit of the poll's message goes out with each viewer's own vote too.
    let edited = alice
        .api
        .patch(
            &format!("/messages/{message_id}"),
            &json!({"content": "📊 **Poll**: Lunch, today?"}),
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    assert_eq!(edited.body["poll"], poll_as(&poll, &[2, 1], Some(&soup)));
    for (gw, mine) in [
        (&mut alice_gw, Some(&soup)),
        (&mut bob_gw, Some(&pizza)),
        (&mut carol_gw, Some(&pizza)),
        (&mut dave_gw, None),
    ] {
        let update = gw.next_event("MESSAGE_UPDATE").await;
        let mut expected = edited.body.clone();
        expected["poll"] = poll_as(&poll, &[2, 1], mine.map(String::as_str));
        assert_eq!(update, expected);
    }

    // Positive control: erin's first event is a later one in a channel she sees.
    let visible = alice.post(&lobby, "lobby").await;
    assert_eq!(erin_gw.next_event("MESSAGE_CREATE").await, visible);
}

#[tokio::test]
async fn poll_read_and_vote_errors_in_order() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await; // not a member
    let blind = server.user("blind").await;
    let sid = alice.create_server("Guild").await;
    bob.join(&sid).await;
    blind.join(&sid).await;
    let general = alice.create_channel(&sid, "general", "text").await;
    server
        .deny(&general, &blind, Permissions::VIEW_CHANNEL.0)
        .await;
    let poll = create_poll(&alice, &general, "Q?", &["a", "b"]).await["poll"].clone();
    let other = create_poll(&alice, &general, "R?", &["c", "d"]).await["poll"].clone();
    let poll_id = str_of(&poll["id"]);
    let option = str_of(&poll["options"][0]["id"]);
    let foreign_option = str_of(&other["options"][0]["id"]);
    let path = format!("/polls/{poll_id}/vote");

    // Vote: 404 poll, 400 option (before membership), 404 member, 403 VIEW.
    assert_error(&bob.api.post(&path, &json!({})).await, 422);
    assert_error(&bob.api.post(&path, &json!({"option_id": "x"})).await, 422);
    assert_error(&vote(&bob, &unknown_id(), &option).await, 404);
    assert_error(&vote(&carol, &poll_id, &foreign_option).await, 400);
    assert_error(&vote(&carol, &poll_id, &unknown_id()).await, 400);
    assert_error(&vote(&carol, &poll_id, &option).await, 404);
    assert_error(&vote(&blind, &poll_id, &option).await, 403);
    assert_error(&vote(&bob, "nope", &option).await, 400);
    // GET: 404 poll, 404 member, 403 VIEW.
    assert_error(&bob.api.get(&format!("/polls/{}", unknown_id())).await, 404);
    assert_error(&carol.api.get(&format!("/polls/{poll_id}")).await, 404);
    assert_error(&blind.api.get(&format!("/polls/{poll_id}")).await, 403);
    // No refused vote counted.
    let got = bob.api.get(&format!("/polls/{poll_id}")).await;
    assert_eq!(got.body, poll);

    // Deleting the channel takes the poll with it.
    let deleted = alice
        .api
        .delete(&format!("/servers/{sid}/channels/{general}"))
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert_error(&alice.api.get(&format!("/polls/{poll_id}")).await, 404);
    assert_error(&vote(&alice, &poll_id, &option).await, 404);
}

// ---- scheduled events ----

#[tokio::test]
async fn scheduled_events_are_announced_and_listed_to_those_who_may_see_them() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await; // not a member
    let erin = server.user("erin").await; // denied VIEW on general
    let sid = alice.create_server("Guild").await;
    bob.join(&sid).await;
    erin.join(&sid).await;
    let general = alice.create_channel(&sid, "general", "text").await;
    let lobby = alice.create_channel(&sid, "lobby", "text").await;
    server
        .deny(&general, &erin, Permissions::VIEW_CHANNEL.0)
        .await;
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let (mut erin_gw, _) = server.connect(&erin.ws_query()).await;

    let created = bob
        .api
        .post(
            &format!("/channels/{general}/events"),
            &json!({
                "name": "  Launch @alice ",
                "description": "rockets",
                "starts_at": "2099-01-05T15:07:00Z",
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let message = created.body;
    assert_keys(&message, MESSAGE_KEYS);
    assert_eq!(
        message["content"],
        "📅 **Event**: Launch @alice — Jan 5, 2099 at 3:07 PM UTC"
    );
    assert_eq!(message["mention_user_ids"], json!([]));
    assert_eq!(message["poll"], Value::Null);
    let event = message["event"].clone();
    assert_keys(&event, EVENT_KEYS);
    assert_eq!(event["name"], "Launch @alice");
    assert_eq!(event["description"], "rockets");
    assert_eq!(event["starts_at"], "2099-01-05T15:07:00.000000Z");
    assert_eq!(event["created_by"], bob.id.as_str());
    assert_eq!(event["created_at"], message["created_at"]);
    for gw in [&mut alice_gw, &mut bob_gw] {
        assert_eq!(gw.next_event("MESSAGE_CREATE").await, message);
    }
    // Positive control: erin's first event is a later one in a channel she sees.
    let visible = alice.post(&lobby, "lobby").await;
    assert_eq!(erin_gw.next_event("MESSAGE_CREATE").await, visible);

    let post_event = |user: &TestUser, channel: &str, name: &str, starts_at: &str| {
        let api = user.api.clone();
        let path = format!("/channels/{channel}/events");
        let body = json!({"name": name, "starts_at": starts_at});
        async move {
            let res = api.post(&path, &body).await;
            assert_eq!(res.status, 201, "{}", res.text);
            res.body["event"].clone()
        }
    };
    let sooner = post_event(&alice, &lobby, "Sooner", "2098-06-01T00:00:00+02:00").await;
    assert_eq!(sooner["description"], Value::Null);
    assert_eq!(sooner["starts_at"], "2098-05-31T22:00:00.000000Z");
    post_event(&alice, &lobby, "Over", "2001-01-01T00:00:00Z").await;

    let listed = bob.api.get(&format!("/servers/{sid}/events")).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(
        listed.body,
        json!([sooner, event]),
        "upcoming, soonest first"
    );
    // Concord: erin cannot see general, so not its event either.
    let listed = erin.api.get(&format!("/servers/{sid}/events")).await;
    assert_eq!(listed.body, json!([sooner]));
    assert_error(&carol.api.get(&format!("/servers/{sid}/events")).await, 404);
    assert_error(
        &bob.api
            .get(&format!("/servers/{}/events", unknown_id()))
            .await,
        404,
    );
}

#[tokio::test]
async fn scheduled_event_errors_in_order() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await; // not a member
    let mute = server.user("mute").await;
    let late = server.user("late").await;
    let sid = alice.create_server("Guild").await;
    for user in [&bob, &mute, &late] {
        user.join(&sid).await;
    }
    let general = alice.create_channel(&sid, "general", "text").await;
    server
        .deny(&general, &mute, Permissions::SEND_MESSAGES.0)
        .await;
    server.time_out(&sid, &alice, &late).await;
    let path = format!("/channels/{general}/events");
    let unknown = format!("/channels/{}/events", unknown_id());
    let at = "2099-01-01T00:00:00Z";
    let good = json!({"name": "Party", "starts_at": at});

    assert_error(&bob.api.post(&path, &json!({"name": "Party"})).await, 422);
    assert_error(
        &bob.api
            .post(&path, &json!({"name": "Party", "starts_at": "tomorrow"}))
            .await,
        422,
    );
    // Name, then description (R11: 400, not 500); both before any lookup.
    for name in [json!("   "), json!("n".repeat(201))] {
        let body = json!({"name": name, "description": "d".repeat(2001), "starts_at": at});
        let res = bob.api.post(&unknown, &body).await;
        assert_error(&res, 400);
        assert!(res.text.contains("name"), "{}", res.text);
    }
    let body = json!({"name": "Party", "description": "d".repeat(2001), "starts_at": at});
    let res = bob.api.post(&unknown, &body).await;
    assert_error(&res, 400);
    assert!(res.text.contains("description"), "{}", res.text);
    assert_error(&bob.api.post(&unknown, &good).await, 404);
    assert_error(&carol.api.post(&path, &good).await, 404);
    assert_error(&mute.api.post(&path, &good).await, 403);
    assert_error(&late.api.post(&path, &good).await, 403);
    // The limits themselves are allowed.
    let body = json!({"name": "é".repeat(100), "description": "é".repeat(2000), "starts_at": at});
    assert_eq!(bob.api.post(&path, &body).await.status, 201);
    let listed = bob.api.get(&format!("/servers/{sid}/events")).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
}

// ---- the live fields of every message listing ----

#[tokio::test]
async fn every_listing_carries_live_thread_counts_pins_polls_and_events() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let sid = alice.create_server("Guild").await;
    bob.join(&sid).await;
    let general = alice.create_channel(&sid, "general", "text").await;
    let poll_message = create_poll(&alice, &general, "Q?", &["a", "b"]).await;
    let poll_id = str_of(&poll_message["poll"]["id"]);
    let option = str_of(&poll_message["poll"]["options"][1]["id"]);
    let pm_id = str_of(&poll_message["id"]);
    assert_eq!(vote(&bob, &poll_id, &option).await.status, 200);
    let thread = format!("/channels/{general}/messages/{pm_id}/thread");
    for content in ["one", "two"] {
        let res = bob.api.post(&thread, &json!({"content": content})).await;
        assert_eq!(res.status, 201);
    }
    let reply = bob.api.get(&thread).await.body[0].clone();
    let reply_id = str_of(&reply["id"]);
    assert_eq!(
        alice
            .api
            .post_empty(&pin_path(&general, &pm_id))
            .await
            .status,
        204
    );
    assert_eq!(
        alice
            .api
            .post_empty(&pin_path(&general, &reply_id))
            .await
            .status,
        204
    );

    let one = bob
        .api
        .get(&format!("/channels/{general}/messages/{pm_id}"))
        .await
        .body;
    assert_eq!(one["thread_reply_count"], 2);
    assert_eq!(one["pinned"], true);
    assert_eq!(one["pinned_by"], alice.id.as_str());
    assert_eq!(one["poll"]["user_vote"], option.as_str());
    assert_eq!(one["poll"]["total_votes"], 1);

    let listed = bob
        .api
        .get(&format!("/channels/{general}/messages"))
        .await
        .body;
    assert_eq!(listed, json!([one]));
    // Concord: the pinned list carries the real count, poll and event (the reference
    // sends 0 and nulls there).
    let pinned = bob
        .api
        .get(&format!("/channels/{general}/pinned-messages"))
        .await
        .body;
    assert_eq!(ids(&pinned), [reply_id.clone(), pm_id.clone()]);
    assert_eq!(pinned[1], one);
    // Thread replies carry their real pin fields.
    let replies = bob.api.get(&thread).await.body;
    assert_eq!(replies[0]["pinned"], true);
    assert_eq!(replies[0], pinned[0]);

    // Deleting a reply updates the count everywhere.
    assert_eq!(
        bob.api
            .delete(&format!("/messages/{reply_id}"))
            .await
            .status,
        204
    );
    let listed = alice
        .api
        .get(&format!("/channels/{general}/messages"))
        .await
        .body;
    assert_eq!(listed[0]["thread_reply_count"], 1);
    assert_eq!(
        listed[0]["poll"]["user_vote"],
        Value::Null,
        "alice did not vote"
    );
    let pinned = alice
        .api
        .get(&format!("/channels/{general}/pinned-messages"))
        .await
        .body;
    assert_eq!(ids(&pinned), [pm_id]);
    assert_eq!(pinned[0]["thread_reply_count"], 1);

    let event_message = alice
        .api
        .post(
            &format!("/channels/{general}/events"),
            &json!({"name": "E", "starts_at": "2099-01-01T00:00:00Z"}),
        )
        .await
        .body;
    let listed = bob
        .api
        .get(&format!("/channels/{general}/messages"))
        .await
        .body;
    assert_eq!(listed[0], event_message);
    assert_keys(&listed[0]["event"], EVENT_KEYS);
}
