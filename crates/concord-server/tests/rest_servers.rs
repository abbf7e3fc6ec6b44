//! Servers, members, channels and read state over real HTTP (`rest.md` §7.3–§7.5):
//! every success shape and every error row, in the contract's check order.

use concord_protocol::{ServerId, UserId};
use concord_server::perms::Permissions;
use concord_testkit::{Response, TestServer, TestUser, assert_error, assert_keys, str_of};
use serde_json::{Value, json};

const SERVER_KEYS: &[&str] = &[
    "id",
    "name",
    "owner_id",
    "icon_url",
    "is_public",
    "require_invite",
    "created_at",
    "updated_at",
    "member_count",
];
const MEMBER_KEYS: &[&str] = &[
    "user_id",
    "username",
    "avatar_url",
    "status",
    "custom_status",
    "nickname",
    "joined_at",
    "roles",
];
const CHANNEL_KEYS: &[&str] = &[
    "id",
    "server_id",
    "name",
    "type",
    "position",
    "category",
    "topic",
    "created_at",
];

// ---- servers ----

#[tokio::test]
async fn create_server_returns_the_dto_and_makes_the_creator_sole_member() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let full = alice.create_server_with(&json!({"name": "Guild", "icon_url": "https://img.example/g.png", "is_public": true, "require_invite": true}),
    )
    .await;
    assert_keys(&full, SERVER_KEYS);
    assert_eq!(full["name"], "Guild");
    assert_eq!(full["owner_id"], alice.id.as_str());
    assert_eq!(full["icon_url"], "https://img.example/g.png");
    assert_eq!(full["is_public"], true);
    assert_eq!(full["require_invite"], true);
    assert_eq!(full["member_count"], 1);
    assert!(full["created_at"].is_string() && full["updated_at"].is_string());

    let plain = alice.create_server_with(&json!({"name": "Plain"})).await;
    assert_keys(&plain, SERVER_KEYS);
    assert_eq!(plain["icon_url"], Value::Null);
    assert_eq!(plain["is_public"], false);
    assert_eq!(plain["require_invite"], false);

    let sid: ServerId = str_of(&full["id"]).parse().unwrap();
    assert!(server.state.directory.is_member(sid, alice.user_id()));
    assert_eq!(server.state.directory.owner(sid), Some(alice.user_id()));

    let members = alice.api.get(&format!("/servers/{sid}/members")).await;
    assert_eq!(members.status, 200);
    let list = members.body.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_keys(&list[0], MEMBER_KEYS);
    assert_eq!(list[0]["user_id"], alice.id.as_str());
    assert_eq!(list[0]["username"], "alice");
    assert_eq!(list[0]["nickname"], Value::Null);
    assert_eq!(list[0]["roles"], json!([]));

    // No channels are made without a template.
    let channels = alice.api.get(&format!("/servers/{sid}/channels")).await;
    assert_eq!(channels.body, json!([]));

    let mine = alice.api.get("/servers").await;
    assert_eq!(mine.status, 200);
    let ids: Vec<String> = mine
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|s| str_of(&s["id"]))
        .collect();
    assert_eq!(
        ids,
        vec![str_of(&full["id"]), str_of(&plain["id"])],
        "oldest first"
    );
    for s in mine.body.as_array().unwrap() {
        assert_keys(s, SERVER_KEYS);
    }
}

#[tokio::test]
async fn create_server_refuses_bad_input() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    assert_error(&alice.api.post("/servers", &json!({"name": ""})).await, 400);
    assert_error(
        &alice
            .api
            .post("/servers", &json!({"name": "a".repeat(101)}))
            .await,
        400,
    );
    let max = alice
        .api
        .post("/servers", &json!({"name": "é".repeat(100)}))
        .await;
    assert_eq!(max.status, 201, "100 chars is allowed: {}", max.text);
    assert_error(
        &alice
            .api
            .post("/servers", &json!({"name": "x", "icon_url": "not a url"}))
            .await,
        400,
    );
    assert_error(
        &alice
            .api
            .post(
                "/servers",
                &json!({"name": "x", "icon_url": "ftp://h/i.png"}),
            )
            .await,
        400,
    );
    let template = json!({"name": "x", "template_id": uuid_string()});
    assert_error(&alice.api.post("/servers", &template).await, 400);
    assert_error(&alice.api.post("/servers", &json!({})).await, 422);
    assert_error(&alice.api.post("/servers", &json!({"name": 5})).await, 422);
    assert_error(
        &alice
            .api
            .raw("POST", "/servers", Some("application/json"), "{")
            .await,
        400,
    );
    assert_error(
        &alice
            .api
            .raw("POST", "/servers", None, r#"{"name":"x"}"#)
            .await,
        415,
    );
    assert_error(
        &server.api().post("/servers", &json!({"name": "x"})).await,
        401,
    );
    assert_error(&server.api().get("/servers").await, 401);
    assert_eq!(
        alice
            .api
            .get("/servers")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

fn uuid_string() -> String {
    UserId::new().to_string()
}

#[tokio::test]
async fn browse_lists_public_servers_by_member_count() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let small = alice.create_server("Small").await;
    let private = str_of(&alice.create_server_with(&json!({"name": "Private"})).await["id"]);
    let invite_only = alice
        .create_server_with(&json!({"name": "Invite", "is_public": true, "require_invite": true}))
        .await;
    let big = alice.create_server("Big").await;
    bob.join(&big).await;

    let browse = bob.api.get("/servers/browse").await;
    assert_eq!(browse.status, 200);
    let list = browse.body.as_array().unwrap();
    let ids: Vec<String> = list.iter().map(|s| str_of(&s["id"])).collect();
    // Two members first, then newest first among equals; private never listed.
    assert_eq!(
        ids,
        vec![big.clone(), str_of(&invite_only["id"]), small.clone()]
    );
    assert!(!ids.contains(&private));
    assert_eq!(list[0]["member_count"], 2);
    for s in list {
        assert_keys(s, SERVER_KEYS);
    }
    let bobs = bob.api.get("/servers").await;
    assert_eq!(bobs.body.as_array().unwrap().len(), 1);
    assert_eq!(bobs.body[0]["id"], big.as_str());
    assert_error(&server.api().get("/servers/browse").await, 401);
}

#[tokio::test]
async fn get_server_hides_servers_from_non_members() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let sid = alice.create_server("Guild").await;
    let got = alice.api.get(&format!("/servers/{sid}")).await;
    assert_eq!(got.status, 200);
    assert_keys(&got.body, SERVER_KEYS);
    assert_eq!(got.body["member_count"], 1);
    assert_error(
        &alice.api.get(&format!("/servers/{}", uuid_string())).await,
        404,
    );
    assert_error(&bob.api.get(&format!("/servers/{sid}")).await, 404);
    assert_error(&alice.api.get("/servers/not-a-uuid").await, 400);
    bob.join(&sid).await;
    assert_eq!(
        bob.api.get(&format!("/servers/{sid}")).await.body["member_count"],
        2
    );
}

#[tokio::test]
async fn patch_server_is_owner_only_and_validates_first() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let sid = alice.create_server("Guild").await;
    bob.join(&sid).await;
    let path = format!("/servers/{sid}");

    let res = alice
        .api
        .patch(
            &path,
            &json!({"name": "Renamed", "icon_url": "http://i/x.png"}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_keys(&res.body, SERVER_KEYS);
    assert_eq!(res.body["name"], "Renamed");
    assert_eq!(res.body["icon_url"], "http://i/x.png");
    assert_eq!(res.body["is_public"], true);
    assert_eq!(res.body["member_count"], 2);

    // null and absent both leave a field alone.
    let res = alice
        .api
        .patch(&path, &json!({"name": null, "require_invite": true}))
        .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body["name"], "Renamed");
    assert_eq!(res.body["icon_url"], "http://i/x.png");
    assert_eq!(res.body["require_invite"], true);

    // Validation comes before the lookup.
    let unknown = format!("/servers/{}", uuid_string());
    assert_error(&alice.api.patch(&unknown, &json!({"name": ""})).await, 400);
    assert_error(
        &alice
            .api
            .patch(&unknown, &json!({"icon_url": "gopher://x/y"}))
            .await,
        400,
    );
    assert_error(
        &alice
            .api
            .patch(&path, &json!({"name": "a".repeat(101)}))
            .await,
        400,
    );
    assert_error(
        &alice.api.patch(&path, &json!({"icon_url": "nope"})).await,
        400,
    );
    assert_error(
        &alice.api.patch(&unknown, &json!({"name": "ok"})).await,
        404,
    );
    assert_error(&bob.api.patch(&path, &json!({"name": "mine"})).await, 403);
    assert_error(&carol.api.patch(&path, &json!({"name": "mine"})).await, 403);
    assert_eq!(alice.api.get(&path).await.body["name"], "Renamed");
}

#[tokio::test]
async fn delete_server_is_owner_only_and_removes_everything() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let sid = alice.create_server("Guild").await;
    bob.join(&sid).await;
    let text = alice.create_channel(&sid, "general", "text").await;
    let path = format!("/servers/{sid}");

    assert_error(
        &alice
            .api
            .delete(&format!("/servers/{}", uuid_string()))
            .await,
        404,
    );
    assert_error(&bob.api.delete(&path).await, 403);
    assert_error(&carol.api.delete(&path).await, 403);
    let res = alice.api.delete(&path).await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert!(res.text.is_empty());

    assert_error(&alice.api.get(&path).await, 404);
    assert_error(
        &bob.api.get(&format!("/channels/{text}/messages")).await,
        404,
    );
    let server_id: ServerId = sid.parse().unwrap();
    assert!(!server.state.directory.server_exists(server_id));
    assert!(
        server
            .state
            .directory
            .channel(text.parse().unwrap())
            .is_none()
    );
    assert!(
        bob.api
            .get("/servers")
            .await
            .body
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_error(&alice.api.delete(&path).await, 404);
}

#[tokio::test]
async fn join_follows_the_contract_order() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let open = alice.create_server("Open").await;
    let private = str_of(&alice.create_server_with(&json!({"name": "Private"})).await["id"]);
    let invite = alice
        .create_server_with(&json!({"name": "Invite", "is_public": true, "require_invite": true}))
        .await;
    let invite = str_of(&invite["id"]);

    assert_error(
        &bob.api
            .post_empty(&format!("/servers/{}/join", uuid_string()))
            .await,
        404,
    );
    assert_error(
        &bob.api
            .post_empty(&format!("/servers/{private}/join"))
            .await,
        404,
    );
    assert_error(
        &bob.api.post_empty(&format!("/servers/{invite}/join")).await,
        403,
    );

    let res = bob.api.post_empty(&format!("/servers/{open}/join")).await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_keys(&res.body, &["message"]);
    assert!(res.body["message"].is_string());
    assert!(
        server
            .state
            .directory
            .is_member(open.parse().unwrap(), bob.user_id())
    );

    assert_error(
        &bob.api.post_empty(&format!("/servers/{open}/join")).await,
        409,
    );
    assert_error(
        &alice.api.post_empty(&format!("/servers/{open}/join")).await,
        409,
    );

    let members = bob.api.get(&format!("/servers/{open}/members")).await;
    let names: Vec<String> = members
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| str_of(&m["username"]))
        .collect();
    assert_eq!(names, vec!["alice", "bob"], "by joined_at");
}

#[tokio::test]
async fn leave_follows_the_contract_and_drops_voice_in_that_server() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let sid = alice.create_server("Guild").await;
    let other = carol.create_server("Other").await;
    bob.join(&sid).await;
    bob.join(&other).await;
    let voice = alice.create_channel(&sid, "talk", "voice").await;
    let other_voice = carol.create_channel(&other, "lounge", "voice").await;

    assert_error(
        &bob.api
            .delete(&format!("/servers/{}/leave", uuid_string()))
            .await,
        404,
    );
    assert_error(
        &carol.api.delete(&format!("/servers/{sid}/leave")).await,
        404,
    );
    assert_error(
        &alice.api.delete(&format!("/servers/{sid}/leave")).await,
        400,
    );

    // Leaving a server whose voice channel bob is not in keeps his voice state.
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    bob.join_voice(&other_voice).await;
    let res = bob.api.delete(&format!("/servers/{sid}/leave")).await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert!(
        server
            .state
            .store
            .voice_state(bob.user_id())
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        !server
            .state
            .directory
            .is_member(sid.parse().unwrap(), bob.user_id())
    );
    assert_error(&bob.api.get(&format!("/servers/{sid}")).await, 404);
    assert_error(&bob.api.delete(&format!("/servers/{sid}/leave")).await, 404);

    // Leaving the server whose voice channel he is in takes him out of it.
    bob.join(&sid).await;
    bob.join_voice(&voice).await;
    let joined = alice_gw.next_event("VOICE_STATE_UPDATE").await;
    assert_eq!(joined["channel_id"], voice.as_str());
    let res = bob.api.delete(&format!("/servers/{sid}/leave")).await;
    assert_eq!(res.status, 204);
    let left = alice_gw.next_event("VOICE_STATE_UPDATE").await;
    assert_eq!(left["user_id"], bob.id.as_str());
    assert_eq!(left["channel_id"], Value::Null);
    assert_eq!(left["joined_at"], Value::Null);
    assert_eq!(left["username"], "bob");
    assert!(
        server
            .state
            .store
            .voice_state(bob.user_id())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(server.state.directory.voice_channel(bob.user_id()), None);
}

#[tokio::test]
async fn members_are_for_members_only() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let sid = alice.create_server("Guild").await;
    bob.join(&sid).await;
    let res = bob.api.get(&format!("/servers/{sid}/members")).await;
    assert_eq!(res.status, 200);
    let list = res.body.as_array().unwrap();
    assert_eq!(list.len(), 2);
    for m in list {
        assert_keys(m, MEMBER_KEYS);
        // Nobody is connected: everyone shows offline.
        assert_eq!(m["status"], "offline");
        assert_eq!(m["custom_status"], Value::Null);
        assert_eq!(m["avatar_url"], Value::Null);
    }
    assert_error(
        &carol.api.get(&format!("/servers/{sid}/members")).await,
        404,
    );
    assert_error(
        &carol
            .api
            .get(&format!("/servers/{}/members", uuid_string()))
            .await,
        404,
    );
}

// ---- channels ----

#[tokio::test]
async fn create_channel_shapes_and_positions() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let sid = alice.create_server("Guild").await;
    let path = format!("/servers/{sid}/channels");
    let first = alice
        .api
        .post(&path, &json!({"name": "general", "type": "text"}))
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_keys(&first.body, CHANNEL_KEYS);
    assert_eq!(first.body["server_id"], sid.as_str());
    assert_eq!(first.body["name"], "general");
    assert_eq!(first.body["type"], "text");
    assert_eq!(first.body["position"], 0);
    assert_eq!(first.body["topic"], Value::Null);
    assert_eq!(first.body["category"], Value::Null);

    let body = json!({"name": "Talk 🎙", "type": "voice", "topic": "t".repeat(1024), "category": "c".repeat(100)});
    let second = alice.api.post(&path, &body).await;
    assert_eq!(second.status, 201, "{}", second.text);
    assert_eq!(second.body["type"], "voice");
    assert_eq!(second.body["position"], 1);
    assert_eq!(second.body["name"], "Talk 🎙");
    let facts = server
        .state
        .directory
        .channel(str_of(&second.body["id"]).parse().unwrap())
        .unwrap();
    assert_eq!(facts.kind, concord_protocol::ChannelType::Voice);
}

#[tokio::test]
async fn create_channel_errors_in_order() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let sid = alice.create_server("Guild").await;
    bob.join(&sid).await;
    let path = format!("/servers/{sid}/channels");
    let unknown = format!("/servers/{}/channels", uuid_string());

    // 422 comes first, even for a server that does not exist.
    assert_error(
        &alice
            .api
            .post(&unknown, &json!({"name": "", "type": "video"}))
            .await,
        422,
    );
    assert_error(&alice.api.post(&path, &json!({"name": "x"})).await, 422);
    assert_error(
        &alice
            .api
            .post(&path, &json!({"name": "x", "type": "Text"}))
            .await,
        422,
    );
    // Then validation, still before the lookup.
    assert_error(
        &alice
            .api
            .post(&unknown, &json!({"name": "", "type": "text"}))
            .await,
        400,
    );
    assert_error(
        &alice
            .api
            .post(&path, &json!({"name": "a".repeat(101), "type": "text"}))
            .await,
        400,
    );
    let long_topic = json!({"name": "x", "type": "text", "topic": "t".repeat(1025)});
    assert_error(&alice.api.post(&path, &long_topic).await, 400);
    let long_category = json!({"name": "x", "type": "text", "category": "c".repeat(101)});
    assert_error(&alice.api.post(&path, &long_category).await, 400);
    assert_error(
        &alice
            .api
            .post(&unknown, &json!({"name": "x", "type": "text"}))
            .await,
        404,
    );
    assert_error(
        &bob.api
            .post(&path, &json!({"name": "x", "type": "text"}))
            .await,
        403,
    );
    assert_error(
        &carol
            .api
            .post(&path, &json!({"name": "x", "type": "text"}))
            .await,
        403,
    );
    assert_eq!(alice.api.get(&path).await.body, json!([]));
}

#[tokio::test]
async fn channel_list_omits_channels_the_caller_cannot_view() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let admin = server.user("admin").await;
    let carol = server.user("carol").await;
    let sid = alice.create_server("Guild").await;
    bob.join(&sid).await;
    admin.join(&sid).await;
    let open = alice.create_channel(&sid, "open", "text").await;
    let secret = alice.create_channel(&sid, "secret", "voice").await;
    server
        .deny(&secret, &bob, Permissions::VIEW_CHANNEL.0)
        .await;
    server
        .grant(&sid, &admin, Permissions::ADMINISTRATOR.0)
        .await;
    server
        .deny(&secret, &admin, Permissions::VIEW_CHANNEL.0)
        .await;

    let path = format!("/servers/{sid}/channels");
    let ids = |res: &Response| -> Vec<String> {
        res.body
            .as_array()
            .unwrap()
            .iter()
            .map(|c| str_of(&c["id"]))
            .collect()
    };
    let owner_view = alice.api.get(&path).await;
    assert_eq!(owner_view.status, 200);
    assert_eq!(
        ids(&owner_view),
        vec![open.clone(), secret.clone()],
        "by position"
    );
    for c in owner_view.body.as_array().unwrap() {
        assert_keys(c, CHANNEL_KEYS);
    }
    assert_eq!(ids(&bob.api.get(&path).await), vec![open.clone()]);
    // ADMINISTRATOR ignores overrides.
    assert_eq!(ids(&admin.api.get(&path).await), vec![open, secret]);
    assert_error(&carol.api.get(&path).await, 404);
    assert_error(
        &alice
            .api
            .get(&format!("/servers/{}/channels", uuid_string()))
            .await,
        404,
    );
}

#[tokio::test]
async fn get_channel_must_be_of_that_server_and_visible() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let sid = alice.create_server("Guild").await;
    let other = carol.create_server("Other").await;
    bob.join(&sid).await;
    let general = alice.create_channel(&sid, "general", "text").await;
    let hidden = alice.create_channel(&sid, "hidden", "text").await;
    let elsewhere = carol.create_channel(&other, "elsewhere", "text").await;
    server
        .deny(&hidden, &bob, Permissions::VIEW_CHANNEL.0)
        .await;

    let res = bob
        .api
        .get(&format!("/servers/{sid}/channels/{general}"))
        .await;
    assert_eq!(res.status, 200);
    assert_keys(&res.body, CHANNEL_KEYS);
    assert_eq!(res.body["id"], general.as_str());
    assert_eq!(res.body["name"], "general");

    assert_error(
        &bob.api
            .get(&format!("/servers/{}/channels/{general}", uuid_string()))
            .await,
        404,
    );
    assert_error(
        &carol
            .api
            .get(&format!("/servers/{sid}/channels/{general}"))
            .await,
        404,
    );
    assert_error(
        &bob.api
            .get(&format!("/servers/{sid}/channels/{elsewhere}"))
            .await,
        404,
    );
    assert_error(
        &bob.api
            .get(&format!("/servers/{sid}/channels/{}", uuid_string()))
            .await,
        404,
    );
    assert_error(
        &bob.api
            .get(&format!("/servers/{sid}/channels/{hidden}"))
            .await,
        404,
    );
    assert_eq!(
        alice
            .api
            .get(&format!("/servers/{sid}/channels/{hidden}"))
            .await
            .status,
        200
    );
    assert_error(
        &bob.api.get(&format!("/servers/{sid}/channels/nope")).await,
        400,
    );
}

#[tokio::test]
async fn patch_channel_is_owner_only() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let sid = alice.create_server("Guild").await;
    let other = alice.create_server("Other").await;
    bob.join(&sid).await;
    let general = alice.create_channel(&sid, "general", "text").await;
    let elsewhere = alice.create_channel(&other, "elsewhere", "text").await;
    let path = format!("/servers/{sid}/channels/{general}");

    let body = json!({"name": "renamed", "topic": "news", "category": "Info", "position": 7, "type": "voice"});
    let res = alice.api.patch(&path, &body).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_keys(&res.body, CHANNEL_KEYS);
    assert_eq!(res.body["name"], "renamed");
    assert_eq!(res.body["topic"], "news");
    assert_eq!(res.body["category"], "Info");
    assert_eq!(res.body["position"], 7);
    assert_eq!(res.body["type"], "text", "the kind is immutable");
    let res = alice.api.patch(&path, &json!({"topic": null})).await;
    assert_eq!(res.body["topic"], "news", "null leaves it alone");
    let res = alice.api.patch(&path, &json!({"position": 0})).await;
    assert_eq!(res.body["position"], 0);

    let unknown = format!("/servers/{}/channels/{general}", uuid_string());
    assert_error(
        &alice.api.patch(&unknown, &json!({"position": -1})).await,
        400,
    );
    assert_error(&alice.api.patch(&path, &json!({"name": ""})).await, 400);
    assert_error(
        &alice
            .api
            .patch(&path, &json!({"topic": "t".repeat(1025)}))
            .await,
        400,
    );
    assert_error(
        &alice
            .api
            .patch(&path, &json!({"category": "c".repeat(101)}))
            .await,
        400,
    );
    assert_error(&alice.api.patch(&unknown, &json!({"name": "x"})).await, 404);
    assert_error(&bob.api.patch(&path, &json!({"name": "x"})).await, 403);
    let foreign = format!("/servers/{sid}/channels/{elsewhere}");
    assert_error(&alice.api.patch(&foreign, &json!({"name": "x"})).await, 404);
    let missing = format!("/servers/{sid}/channels/{}", uuid_string());
    assert_error(&alice.api.patch(&missing, &json!({"name": "x"})).await, 404);
}

#[tokio::test]
async fn delete_channel_is_owner_only() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let sid = alice.create_server("Guild").await;
    let other = alice.create_server("Other").await;
    bob.join(&sid).await;
    let general = alice.create_channel(&sid, "general", "voice").await;
    let elsewhere = alice.create_channel(&other, "elsewhere", "text").await;
    let path = format!("/servers/{sid}/channels/{general}");
    bob.join_voice(&general).await;

    assert_error(
        &alice
            .api
            .delete(&format!("/servers/{}/channels/{general}", uuid_string()))
            .await,
        404,
    );
    assert_error(&bob.api.delete(&path).await, 403);
    assert_error(
        &alice
            .api
            .delete(&format!("/servers/{sid}/channels/{elsewhere}"))
            .await,
        404,
    );
    let res = alice.api.delete(&path).await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert!(
        server
            .state
            .directory
            .channel(general.parse().unwrap())
            .is_none()
    );
    assert_eq!(
        server.state.directory.voice_channel(bob.user_id()),
        None,
        "voice cascades"
    );
    assert!(
        server
            .state
            .store
            .voice_state(bob.user_id())
            .await
            .unwrap()
            .is_none()
    );
    assert_error(&alice.api.get(&path).await, 404);
    assert_error(&alice.api.delete(&path).await, 404);
    assert_eq!(
        alice
            .api
            .get(&format!("/servers/{other}/channels"))
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

// ---- read state ----

#[tokio::test]
async fn channel_ack_counts_from_now_on() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let sid = alice.create_server("Guild").await;
    bob.join(&sid).await;
    let general = alice.create_channel(&sid, "general", "text").await;
    let post = |who: &TestUser, text: &str| {
        let api = who.api.clone();
        let path = format!("/channels/{general}/messages");
        let body = json!({"content": text});
        async move { assert_eq!(api.post(&path, &body).await.status, 201) }
    };
    post(&bob, "before the ack").await;

    let res = alice
        .api
        .post_empty(&format!("/channels/{general}/ack"))
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert!(res.text.is_empty());
    post(&bob, "hello @alice").await;
    post(&alice, "own messages do not count").await;

    let (_gw, ready) = server.connect(&alice.ws_query()).await;
    assert_eq!(
        ready["unread_counts"],
        json!([{"channel_id": general, "unread_count": 1}])
    );
    assert_eq!(
        ready["mention_counts"],
        json!([{"channel_id": general, "count": 1}])
    );

    assert_error(
        &alice
            .api
            .post_empty(&format!("/channels/{}/ack", uuid_string()))
            .await,
        404,
    );
    assert_error(
        &carol
            .api
            .post_empty(&format!("/channels/{general}/ack"))
            .await,
        404,
    );
    assert_error(&alice.api.post_empty("/channels/bad/ack").await, 400);
}

#[tokio::test]
async fn dm_ack_is_for_participants() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let dm = alice
        .api
        .post("/dm-channels", &json!({"user_id": bob.id}))
        .await;
    assert_eq!(dm.status, 201);
    let dm = str_of(&dm.body["id"]);
    let res = alice
        .api
        .post_empty(&format!("/dm-channels/{dm}/ack"))
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    let sent = bob
        .api
        .post(
            &format!("/dm-channels/{dm}/messages"),
            &json!({"content": "hi"}),
        )
        .await;
    assert_eq!(sent.status, 201);
    let (_gw, ready) = server.connect(&alice.ws_query()).await;
    assert_eq!(
        ready["unread_counts"],
        json!([{"channel_id": dm, "unread_count": 1}])
    );

    assert_error(
        &carol
            .api
            .post_empty(&format!("/dm-channels/{dm}/ack"))
            .await,
        404,
    );
    assert_error(
        &alice
            .api
            .post_empty(&format!("/dm-channels/{}/ack", uuid_string()))
            .await,
        404,
    );
}
