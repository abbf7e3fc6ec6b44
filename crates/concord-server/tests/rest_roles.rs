//! Roles and member roles over real HTTP and real gateway sessions (`rest.md` §7.12,
//! §5.2; `gateway.md` §7): every success shape, every error row in its check order, the
//! hierarchy rules (Concord's R6 included), and who receives ROLE_* and MEMBER_ROLE_*.
//! Every "must not receive" is checked with a positive control: a later event the
//! excluded session does receive arrives first.

use concord_testkit::{
    Gateway, Response, TestServer, TestUser, assert_exact_error, assert_keys, str_of,
};
use serde_json::{Value, json};

const ROLE_KEYS: &[&str] = &[
    "id",
    "server_id",
    "name",
    "permissions",
    "color",
    "position",
    "created_at",
];
const MEMBER_ROLE_KEYS: &[&str] = &["server_id", "user_id", "role_id", "role_name", "role_color"];

const VIEW_CHANNEL: i64 = 1;
const KICK_MEMBERS: i64 = 1 << 8;
const MANAGE_ROLES: i64 = 1 << 11;
const ADMINISTRATOR: i64 = 1 << 13;

fn unknown_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A server of `owner` that `members` joined, with one text channel.
async fn guild(owner: &TestUser, members: &[&TestUser]) -> (String, String) {
    let sid = owner.create_server("Guild").await;
    for member in members {
        member.join(&sid).await;
    }
    let general = owner.create_channel(&sid, "general", "text").await;
    (sid, general)
}

async fn create_role(actor: &TestUser, sid: &str, body: &Value) -> Response {
    actor.api.post(&format!("/servers/{sid}/roles"), body).await
}

/// Creates a role (asserting 201) and returns it.
async fn role(actor: &TestUser, sid: &str, body: &Value) -> Value {
    let res = create_role(actor, sid, body).await;
    assert_eq!(res.status, 201, "{}", res.text);
    res.body
}

fn member_role_path(sid: &str, user: &str, role: &str) -> String {
    format!("/servers/{sid}/members/{user}/roles/{role}")
}

/// Gives `user` the role (asserting 204).
async fn assign(actor: &TestUser, sid: &str, user: &TestUser, role: &Value) {
    let res = actor
        .api
        .put(&member_role_path(sid, &user.id, &str_of(&role["id"])))
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
}

/// A role with `bits` at `position`, given to `user` by the owner.
async fn grant(owner: &TestUser, sid: &str, user: &TestUser, bits: i64, position: i64) -> Value {
    let r = role(
        owner,
        sid,
        &json!({"name": format!("rank {position}"), "permissions": bits, "position": position}),
    )
    .await;
    assign(owner, sid, user, &r).await;
    r
}

/// Positive control for a session that must have received nothing more from the guild:
/// `author` posts in `channel` (a channel the session's user may view, of a server the
/// guild's members are not in), and the next frame the session gets is that message.
async fn next_is_message(gw: &mut Gateway, author: &TestUser, channel: &str, text: &str) {
    author.post(channel, text).await;
    let frame = gw.next_non_presence().await;
    assert_eq!(frame["t"], "MESSAGE_CREATE", "{frame}");
    assert_eq!(frame["d"]["content"], text, "{frame}");
}

#[tokio::test]
async fn role_crud_answers_and_events_reach_every_member_only() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let dave = server.user("dave").await; // in a server of his own only
    let (sid, _) = guild(&alice, &[&bob]).await;
    let elsewhere = dave.create_server("Elsewhere").await;
    let lobby = dave.create_channel(&elsewhere, "lobby", "text").await;
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let (mut dave_gw, _) = server.connect(&dave.ws_query()).await;

    // The first role defaults to position 1, the next to one above the highest.
    let mods = role(
        &alice,
        &sid,
        &json!({"name": "mods", "permissions": MANAGE_ROLES | KICK_MEMBERS, "color": "#ff0000"}),
    )
    .await;
    assert_keys(&mods, ROLE_KEYS);
    assert_eq!(mods["server_id"], sid.as_str());
    assert_eq!(mods["name"], "mods");
    assert_eq!(mods["permissions"], MANAGE_ROLES | KICK_MEMBERS);
    assert_eq!(mods["color"], "#ff0000");
    assert_eq!(mods["position"], 1);
    assert!(mods["created_at"].is_string());
    for gw in [&mut alice_gw, &mut bob_gw] {
        assert_eq!(gw.next_event("ROLE_CREATE").await, mods);
    }
    let plain = role(&alice, &sid, &json!({"name": "plain"})).await;
    assert_eq!(plain["permissions"], 0);
    assert_eq!(plain["color"], Value::Null);
    assert_eq!(plain["position"], 2);
    let top = role(&alice, &sid, &json!({"name": "top", "position": 10})).await;
    assert_eq!(top["position"], 10);
    let next = role(&alice, &sid, &json!({"name": "next", "color": null})).await;
    assert_eq!(next["position"], 11);
    for gw in [&mut alice_gw, &mut bob_gw] {
        assert_eq!(gw.next_event("ROLE_CREATE").await, plain);
        assert_eq!(gw.next_event("ROLE_CREATE").await, top);
        assert_eq!(gw.next_event("ROLE_CREATE").await, next);
    }
    next_is_message(&mut dave_gw, &dave, &lobby, "dave saw no role").await;

    // Listing: highest position first, for every member.
    let listed = bob.api.get(&format!("/servers/{sid}/roles")).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.body, json!([next, top, plain, mods]));

    // A patch answers the whole role; null and absent leave fields alone.
    let mods_id = str_of(&mods["id"]);
    let path = format!("/servers/{sid}/roles/{mods_id}");
    let patched = alice
        .api
        .patch(
            &path,
            &json!({"name": "moderators", "color": null, "position": 3}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let mut expected = mods.clone();
    expected["name"] = json!("moderators");
    expected["position"] = json!(3);
    assert_eq!(patched.body, expected);
    for gw in [&mut alice_gw, &mut bob_gw] {
        assert_eq!(gw.next_event("ROLE_UPDATE").await, expected);
    }

    // A patch that changes nothing: 200, the role, and no event.
    for body in [
        json!({}),
        json!({"name": "moderators", "permissions": MANAGE_ROLES | KICK_MEMBERS}),
    ] {
        let same = alice.api.patch(&path, &body).await;
        assert_eq!(same.status, 200, "{}", same.text);
        assert_eq!(same.body, expected);
    }
    let renamed = alice.api.patch(&path, &json!({"name": "staff"})).await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    expected["name"] = json!("staff");
    for gw in [&mut alice_gw, &mut bob_gw] {
        assert_eq!(
            gw.next_event("ROLE_UPDATE").await,
            expected,
            "the no-op patches sent nothing before this one"
        );
    }

    let deleted = alice
        .api
        .delete(&format!("/servers/{sid}/roles/{}", str_of(&plain["id"])))
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    for gw in [&mut alice_gw, &mut bob_gw] {
        let d = gw.next_event("ROLE_DELETE").await;
        assert_eq!(d, json!({"server_id": sid, "role_id": plain["id"]}));
    }
    let listed = alice.api.get(&format!("/servers/{sid}/roles")).await;
    assert_eq!(listed.body, json!([next, top, expected]));
    next_is_message(&mut dave_gw, &dave, &lobby, "nor any update").await;
    server.shutdown().await;
}

#[tokio::test]
async fn member_roles_announce_changes_only() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let dave = server.user("dave").await;
    let (sid, general) = guild(&alice, &[&bob, &carol]).await;
    let elsewhere = dave.create_server("Elsewhere").await;
    let lobby = dave.create_channel(&elsewhere, "lobby", "text").await;
    let colored = role(&alice, &sid, &json!({"name": "gold", "color": "#ffd700"})).await;
    let uncolored = role(&alice, &sid, &json!({"name": "plain"})).await;
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let (mut carol_gw, _) = server.connect(&carol.ws_query()).await;
    let (mut dave_gw, _) = server.connect(&dave.ws_query()).await;
    let mut members = [&mut alice_gw, &mut bob_gw, &mut carol_gw];

    let gold = str_of(&colored["id"]);
    let path = member_role_path(&sid, &bob.id, &gold);
    let res = alice.api.put(&path).await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert_eq!(res.text, "");
    let added = json!({
        "server_id": sid,
        "user_id": bob.id,
        "role_id": gold,
        "role_name": "gold",
        "role_color": "#ffd700",
    });
    for gw in members.iter_mut() {
        let d = gw.next_event("MEMBER_ROLE_ADD").await;
        assert_keys(&d, MEMBER_ROLE_KEYS);
        assert_eq!(d, added);
    }
    // The listing shows it.
    let listed = alice.api.get(&format!("/servers/{sid}/members")).await;
    let bob_entry = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user_id"] == bob.id.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        bob_entry["roles"],
        json!([{"id": gold, "name": "gold", "color": "#ffd700", "position": 1}])
    );

    // Again: the same answer, no event (D14).
    let again = alice.api.put(&path).await;
    assert_eq!(again.status, 204, "{}", again.text);
    let plain = str_of(&uncolored["id"]);
    let res = alice
        .api
        .put(&member_role_path(&sid, &carol.id, &plain))
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    for gw in members.iter_mut() {
        let d = gw.next_event("MEMBER_ROLE_ADD").await;
        assert_eq!(
            d["user_id"],
            carol.id.as_str(),
            "the repeat sent nothing: {d}"
        );
        assert_eq!(d["role_color"], Value::Null);
        assert_keys(&d, MEMBER_ROLE_KEYS);
    }

    let removed = alice.api.delete(&path).await;
    assert_eq!(removed.status, 204, "{}", removed.text);
    for gw in members.iter_mut() {
        assert_eq!(gw.next_event("MEMBER_ROLE_REMOVE").await, added);
    }
    // Removing what is not assigned: 204, no event.
    let again = alice.api.delete(&path).await;
    assert_eq!(again.status, 204, "{}", again.text);
    alice.post(&general, "control").await;
    for gw in members.iter_mut() {
        let frame = gw.next_non_presence().await;
        assert_eq!(
            frame["t"], "MESSAGE_CREATE",
            "nothing before the message: {frame}"
        );
        assert_eq!(frame["d"]["content"], "control");
    }
    next_is_message(&mut dave_gw, &dave, &lobby, "dave saw no member role").await;
    server.shutdown().await;
}

#[tokio::test]
async fn listing_roles_needs_membership() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let stranger = server.user("stranger").await;
    let (sid, _) = guild(&alice, &[]).await;
    let empty = alice.api.get(&format!("/servers/{sid}/roles")).await;
    assert_eq!(empty.status, 200, "{}", empty.text);
    assert_eq!(empty.body, json!([]));
    assert_exact_error(
        &alice
            .api
            .get(&format!("/servers/{}/roles", unknown_id()))
            .await,
        404,
    );
    assert_exact_error(
        &stranger.api.get(&format!("/servers/{sid}/roles")).await,
        404,
    );
    assert_exact_error(&alice.api.get("/servers/not-a-uuid/roles").await, 400);
    assert_exact_error(
        &server.api().get(&format!("/servers/{sid}/roles")).await,
        401,
    );
    server.shutdown().await;
}

#[tokio::test]
async fn create_role_refusals_in_check_order() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await; // MANAGE_ROLES at position 5
    let carol = server.user("carol").await; // ADMINISTRATOR at position 3
    let erin = server.user("erin").await; // no role
    let stranger = server.user("stranger").await;
    let (sid, _) = guild(&alice, &[&bob, &carol, &erin]).await;
    grant(&alice, &sid, &bob, MANAGE_ROLES, 5).await;
    grant(&alice, &sid, &carol, ADMINISTRATOR, 3).await;
    let post_raw = |who: &TestUser, sid: String, body: &'static str| {
        let api = who.api.clone();
        async move {
            api.raw(
                "POST",
                &format!("/servers/{sid}/roles"),
                Some("application/json"),
                body,
            )
            .await
        }
    };

    // 422 (strict body, shape) comes before everything, even an unknown server.
    for body in [
        r#"{"name": "x", "hoist": true}"#,
        r#"{"permissions": 1}"#,
        r#"{"name": 5}"#,
        r#"{"name": "x", "permissions": "1"}"#,
    ] {
        assert_exact_error(&post_raw(&alice, unknown_id(), body).await, 422);
        assert_exact_error(&post_raw(&alice, sid.clone(), body).await, 422);
    }
    assert_exact_error(&post_raw(&alice, sid.clone(), "{").await, 400);
    // 404 server, 404 member, then 403 before any body rule.
    let bad_name = json!({"name": ""});
    assert_exact_error(&create_role(&alice, &unknown_id(), &bad_name).await, 404);
    assert_exact_error(&create_role(&stranger, &sid, &bad_name).await, 404);
    assert_exact_error(&create_role(&erin, &sid, &bad_name).await, 403);
    // 400 name (bytes, not characters), then 400 permissions, then the hierarchy.
    for name in [String::new(), "a".repeat(101), "é".repeat(51)] {
        let res = create_role(
            &bob,
            &sid,
            &json!({"name": name, "permissions": -1, "position": 99}),
        )
        .await;
        assert_exact_error(&res, 400);
    }
    for bits in [-1, 32768, i64::MAX] {
        let res = create_role(
            &bob,
            &sid,
            &json!({"name": "x", "permissions": bits, "position": 99}),
        )
        .await;
        assert_exact_error(&res, 400);
        assert!(
            res.body["error"].as_str().unwrap().contains("ermission"),
            "{}",
            res.text
        );
    }
    let longest = role(&alice, &sid, &json!({"name": "é".repeat(50)})).await;
    assert_eq!(longest["name"].as_str().unwrap().len(), 100);

    // Hierarchy: strictly below the actor's highest role, explicit or defaulted (R6);
    // checked before the bits.
    for position in [5, 6] {
        let res = create_role(
            &bob,
            &sid,
            &json!({"name": "x", "permissions": KICK_MEMBERS, "position": position}),
        )
        .await;
        assert_exact_error(&res, 403);
        assert!(
            res.body["error"].as_str().unwrap().contains("highest"),
            "{}",
            res.text
        );
    }
    let defaulted = create_role(&bob, &sid, &json!({"name": "x"})).await;
    assert_exact_error(&defaulted, 403);
    assert!(
        defaulted.body["error"]
            .as_str()
            .unwrap()
            .contains("highest")
    );
    // Bits: only those the actor's roles hold; the implicit defaults do not count.
    for bits in [KICK_MEMBERS, VIEW_CHANNEL, MANAGE_ROLES | ADMINISTRATOR] {
        let res = create_role(
            &bob,
            &sid,
            &json!({"name": "x", "permissions": bits, "position": 4}),
        )
        .await;
        assert_exact_error(&res, 403);
        assert!(
            res.body["error"].as_str().unwrap().contains("grant"),
            "{}",
            res.text
        );
    }
    let below = role(
        &bob,
        &sid,
        &json!({"name": "helpers", "permissions": MANAGE_ROLES, "position": 4}),
    )
    .await;
    assert_eq!(below["position"], 4);
    assert_eq!(below["permissions"], MANAGE_ROLES);

    // ADMINISTRATOR grants anything but does not lift the hierarchy.
    assert_exact_error(
        &create_role(&carol, &sid, &json!({"name": "x", "position": 3})).await,
        403,
    );
    assert_exact_error(&create_role(&carol, &sid, &json!({"name": "x"})).await, 403);
    let granted = role(
        &carol,
        &sid,
        &json!({"name": "all", "permissions": 32767, "position": 2}),
    )
    .await;
    assert_eq!(granted["permissions"], 32767);
    // The owner is bound by neither rule.
    let above = role(
        &alice,
        &sid,
        &json!({"name": "above", "permissions": 32767}),
    )
    .await;
    assert_eq!(above["position"], 7);

    // Nothing refused was stored.
    let listed = alice.api.get(&format!("/servers/{sid}/roles")).await;
    let names: Vec<&str> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 6, "{names:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn update_role_refusals_in_check_order() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await; // MANAGE_ROLES at position 5
    let erin = server.user("erin").await; // no role
    let stranger = server.user("stranger").await;
    let (sid, _) = guild(&alice, &[&bob, &erin]).await;
    let own = grant(&alice, &sid, &bob, MANAGE_ROLES, 5).await;
    let high = role(&alice, &sid, &json!({"name": "high", "position": 7})).await;
    let low = role(&alice, &sid, &json!({"name": "low", "position": 2})).await;
    let other_server = alice.create_server("Other").await;
    let foreign = role(&alice, &other_server, &json!({"name": "foreign"})).await;
    let path = |r: &Value| format!("/servers/{sid}/roles/{}", str_of(&r["id"]));

    let res = alice
        .api
        .raw(
            "PATCH",
            &path(&low),
            Some("application/json"),
            r#"{"hoist": true}"#,
        )
        .await;
    assert_exact_error(&res, 422);
    let res = alice
        .api
        .raw(
            "PATCH",
            &format!("/servers/{}/roles/{}", unknown_id(), unknown_id()),
            Some("application/json"),
            r#"{"position": "top"}"#,
        )
        .await;
    assert_exact_error(&res, 422);
    let bad = json!({"name": ""});
    let unknown_server = format!("/servers/{}/roles/{}", unknown_id(), str_of(&low["id"]));
    assert_exact_error(&alice.api.patch(&unknown_server, &bad).await, 404);
    assert_exact_error(&stranger.api.patch(&path(&low), &bad).await, 404);
    assert_exact_error(&erin.api.patch(&path(&low), &bad).await, 403);
    // 404 role (missing or of another server) before the body rules.
    let missing = format!("/servers/{sid}/roles/{}", unknown_id());
    assert_exact_error(&bob.api.patch(&missing, &bad).await, 404);
    let elsewhere = format!("/servers/{sid}/roles/{}", str_of(&foreign["id"]));
    assert_exact_error(
        &alice.api.patch(&elsewhere, &json!({"name": "x"})).await,
        404,
    );
    // 400 name, 400 permissions, before the hierarchy.
    assert_exact_error(&bob.api.patch(&path(&high), &bad).await, 400);
    assert_exact_error(
        &bob.api
            .patch(&path(&high), &json!({"name": "a".repeat(101)}))
            .await,
        400,
    );
    assert_exact_error(
        &bob.api
            .patch(&path(&high), &json!({"permissions": 32768}))
            .await,
        400,
    );
    assert_exact_error(
        &bob.api
            .patch(&path(&high), &json!({"permissions": -2}))
            .await,
        400,
    );
    // The role itself at or above the actor: their own top role too.
    for target in [&high, &own] {
        let res = bob.api.patch(&path(target), &json!({"name": "mine"})).await;
        assert_exact_error(&res, 403);
        assert!(
            res.body["error"].as_str().unwrap().contains("edit"),
            "{}",
            res.text
        );
    }
    // Moving a lower role to or above the actor.
    for position in [5, 50] {
        let res = bob
            .api
            .patch(
                &path(&low),
                &json!({"position": position, "permissions": KICK_MEMBERS}),
            )
            .await;
        assert_exact_error(&res, 403);
        assert!(
            res.body["error"].as_str().unwrap().contains("move"),
            "{}",
            res.text
        );
    }
    // Bits the actor's roles lack.
    let res = bob
        .api
        .patch(&path(&low), &json!({"permissions": KICK_MEMBERS}))
        .await;
    assert_exact_error(&res, 403);
    assert!(
        res.body["error"].as_str().unwrap().contains("grant"),
        "{}",
        res.text
    );

    // Within the rules it works, and nothing refused was written.
    let ok = bob
        .api
        .patch(
            &path(&low),
            &json!({"name": "lower", "position": 4, "permissions": MANAGE_ROLES}),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let mut expected = low.clone();
    expected["name"] = json!("lower");
    expected["position"] = json!(4);
    expected["permissions"] = json!(MANAGE_ROLES);
    assert_eq!(ok.body, expected);
    let listed = alice.api.get(&format!("/servers/{sid}/roles")).await;
    assert_eq!(listed.body, json!([high, own, expected]));
    // The owner may move anything anywhere.
    let ok = alice
        .api
        .patch(&path(&high), &json!({"position": -1}))
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.body["position"], -1);
    server.shutdown().await;
}

#[tokio::test]
async fn delete_role_refusals_in_check_order_and_cascade() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await; // MANAGE_ROLES at position 5
    let carol = server.user("carol").await;
    let erin = server.user("erin").await;
    let stranger = server.user("stranger").await;
    let (sid, _) = guild(&alice, &[&bob, &carol, &erin]).await;
    let own = grant(&alice, &sid, &bob, MANAGE_ROLES, 5).await;
    let low = grant(&alice, &sid, &carol, KICK_MEMBERS, 2).await;
    let other_server = alice.create_server("Other").await;
    let foreign = role(&alice, &other_server, &json!({"name": "foreign"})).await;
    let path = |r: &Value| format!("/servers/{sid}/roles/{}", str_of(&r["id"]));

    assert_exact_error(
        &alice
            .api
            .delete(&format!(
                "/servers/{}/roles/{}",
                unknown_id(),
                str_of(&low["id"])
            ))
            .await,
        404,
    );
    assert_exact_error(&stranger.api.delete(&path(&low)).await, 404);
    assert_exact_error(&erin.api.delete(&path(&low)).await, 403);
    assert_exact_error(
        &bob.api
            .delete(&format!("/servers/{sid}/roles/{}", unknown_id()))
            .await,
        404,
    );
    assert_exact_error(
        &alice
            .api
            .delete(&format!("/servers/{sid}/roles/{}", str_of(&foreign["id"])))
            .await,
        404,
    );
    assert_exact_error(&bob.api.delete(&path(&own)).await, 403);

    let res = bob.api.delete(&path(&low)).await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert_exact_error(&bob.api.delete(&path(&low)).await, 404);
    // The assignment went with it: carol has no role, and lost the bit.
    let listed = alice.api.get(&format!("/servers/{sid}/members")).await;
    let carol_roles = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user_id"] == carol.id.as_str())
        .unwrap()["roles"]
        .clone();
    assert_eq!(carol_roles, json!([]));
    let sid_parsed = sid.parse().unwrap();
    assert_eq!(
        server
            .state
            .directory
            .server_permissions(sid_parsed, carol.user_id())
            .map(|p| p.0),
        Some(0)
    );
    // The other server's role is untouched.
    let foreign_list = alice
        .api
        .get(&format!("/servers/{other_server}/roles"))
        .await;
    assert_eq!(foreign_list.body, json!([foreign]));
    server.shutdown().await;
}

#[tokio::test]
async fn member_role_refusals_in_check_order() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await; // MANAGE_ROLES at position 5
    let carol = server.user("carol").await;
    let erin = server.user("erin").await; // no role
    let stranger = server.user("stranger").await;
    let (sid, _) = guild(&alice, &[&bob, &carol, &erin]).await;
    let own = grant(&alice, &sid, &bob, MANAGE_ROLES, 5).await;
    let low = role(&alice, &sid, &json!({"name": "low", "position": 2})).await;
    let other_server = alice.create_server("Other").await;
    let foreign = role(&alice, &other_server, &json!({"name": "foreign"})).await;
    let low_id = str_of(&low["id"]);

    for method in ["PUT", "DELETE"] {
        let call = |who: &TestUser, path: String| {
            let api = who.api.clone();
            async move {
                if method == "PUT" {
                    api.put(&path).await
                } else {
                    api.delete(&path).await
                }
            }
        };
        // 404 server, 404 actor, 404 target (before the permission), 403, 404 role.
        assert_exact_error(
            &call(&alice, member_role_path(&unknown_id(), &carol.id, &low_id)).await,
            404,
        );
        assert_exact_error(
            &call(&stranger, member_role_path(&sid, &carol.id, &low_id)).await,
            404,
        );
        assert_exact_error(
            &call(&erin, member_role_path(&sid, &stranger.id, &low_id)).await,
            404,
        );
        assert_exact_error(
            &call(&erin, member_role_path(&sid, &unknown_id(), &low_id)).await,
            404,
        );
        assert_exact_error(
            &call(&erin, member_role_path(&sid, &carol.id, &unknown_id())).await,
            403,
        );
        assert_exact_error(
            &call(&erin, member_role_path(&sid, &carol.id, &low_id)).await,
            403,
        );
        assert_exact_error(
            &call(&bob, member_role_path(&sid, &carol.id, &unknown_id())).await,
            404,
        );
        assert_exact_error(
            &call(
                &alice,
                member_role_path(&sid, &carol.id, &str_of(&foreign["id"])),
            )
            .await,
            404,
        );
        // The role at or above the actor (their own included), for anyone.
        for target in [&carol, &bob] {
            let res = call(
                &bob,
                member_role_path(&sid, &target.id, &str_of(&own["id"])),
            )
            .await;
            assert_exact_error(&res, 403);
        }
        assert_exact_error(
            &call(&alice, "/servers/x/members/y/roles/z".into()).await,
            400,
        );
    }
    // Only the owner acts on the owner's roles, and that check comes first.
    let owner_path = member_role_path(&sid, &alice.id, &low_id);
    assert_eq!(
        bob.api.put(&owner_path).await.status,
        204,
        "giving is allowed"
    );
    let res = bob.api.delete(&owner_path).await;
    assert_exact_error(&res, 403);
    assert!(
        res.body["error"].as_str().unwrap().contains("owner"),
        "{}",
        res.text
    );
    let res = bob
        .api
        .delete(&member_role_path(&sid, &alice.id, &str_of(&own["id"])))
        .await;
    assert!(
        res.body["error"].as_str().unwrap().contains("owner"),
        "{}",
        res.text
    );
    assert_eq!(alice.api.delete(&owner_path).await.status, 204);

    // Within the rules it works both ways.
    let path = member_role_path(&sid, &carol.id, &low_id);
    assert_eq!(bob.api.put(&path).await.status, 204);
    let sid_parsed = sid.parse().unwrap();
    assert_eq!(
        server
            .state
            .directory
            .highest_position(sid_parsed, carol.user_id()),
        2
    );
    assert_eq!(bob.api.delete(&path).await.status, 204);
    assert_eq!(
        server
            .state
            .directory
            .highest_position(sid_parsed, carol.user_id()),
        0
    );
    server.shutdown().await;
}

/// The documented schemas of the two DTOs list exactly the keys the answers carry,
/// all of them required (nullable ones as `null`).
#[tokio::test]
async fn role_and_override_schemas_match_the_answers() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let (sid, general) = guild(&alice, &[]).await;
    let created = role(&alice, &sid, &json!({"name": "mods"})).await;
    let ov = alice
        .api
        .raw(
            "PUT",
            &format!("/channels/{general}/overrides"),
            Some("application/json"),
            &json!({"role_id": created["id"], "allow": 1, "deny": 2}).to_string(),
        )
        .await;
    assert_eq!(ov.status, 200, "{}", ov.text);
    let doc = server.api().get("/openapi.json").await.body;
    for (name, answer) in [("Role", &created), ("ChannelOverride", &ov.body)] {
        let schema = &doc["components"]["schemas"][name];
        let mut properties: Vec<&str> = schema["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{name}: {schema}"))
            .keys()
            .map(String::as_str)
            .collect();
        let mut required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        let mut keys: Vec<&str> = answer
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        properties.sort_unstable();
        required.sort_unstable();
        keys.sort_unstable();
        assert_eq!(properties, keys, "{name}");
        assert_eq!(required, keys, "{name}");
    }
    let paths = &doc["paths"];
    for (path, methods) in [
        ("/servers/{id}/roles", &["get", "post"][..]),
        ("/servers/{id}/roles/{role_id}", &["patch", "delete"][..]),
        (
            "/servers/{id}/members/{user_id}/roles/{role_id}",
            &["put", "delete"][..],
        ),
        ("/channels/{channel_id}/overrides", &["get", "put"][..]),
        (
            "/channels/{channel_id}/overrides/{override_id}",
            &["delete"][..],
        ),
    ] {
        for method in methods {
            assert!(paths[path][method].is_object(), "{method} {path}");
        }
    }
    server.shutdown().await;
}
