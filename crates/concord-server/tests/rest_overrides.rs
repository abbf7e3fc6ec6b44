//! Channel permission overrides over real HTTP and real gateway sessions (`rest.md`
//! §7.13, §5.2; `gateway.md` §7): shapes, every error row in its check order, Concord's
//! stricter target and read rules, and who receives CHANNEL_OVERRIDE_UPDATE / _DELETE.
//! Every "must not receive" is checked with a positive control.

use concord_testkit::{Response, TestServer, TestUser, assert_exact_error, assert_keys, str_of};
use serde_json::{Value, json};

const OVERRIDE_KEYS: &[&str] = &["id", "channel_id", "role_id", "user_id", "allow", "deny"];

const VIEW_CHANNEL: i64 = 1;
const SEND_MESSAGES: i64 = 1 << 1;
const MANAGE_CHANNELS: i64 = 1 << 10;
const ADMINISTRATOR: i64 = 1 << 13;

fn unknown_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn put(who: &TestUser, channel: &str, body: &Value) -> Response {
    put_raw(who, channel, &body.to_string()).await
}

async fn put_raw(who: &TestUser, channel: &str, body: &str) -> Response {
    who.api
        .raw(
            "PUT",
            &format!("/channels/{channel}/overrides"),
            Some("application/json"),
            body,
        )
        .await
}

/// A role with `bits`, created by the owner and given to `user`; returns its id.
async fn grant(owner: &TestUser, sid: &str, user: &TestUser, bits: i64) -> String {
    let res = owner
        .api
        .post(
            &format!("/servers/{sid}/roles"),
            &json!({"name": "granted", "permissions": bits}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let role = str_of(&res.body["id"]);
    let res = owner
        .api
        .put(&format!("/servers/{sid}/members/{}/roles/{role}", user.id))
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    role
}

#[tokio::test]
async fn overrides_upsert_list_delete_and_reach_every_member() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await; // cannot view the channel: still told (S)
    let dave = server.user("dave").await; // not a member
    let sid = alice.create_server("Guild").await;
    bob.join(&sid).await;
    carol.join(&sid).await;
    let secret = alice.create_channel(&sid, "secret", "text").await;
    let general = alice.create_channel(&sid, "general", "text").await;
    let elsewhere = dave.create_server("Elsewhere").await;
    let lobby = dave.create_channel(&elsewhere, "lobby", "text").await;
    let role = grant(&alice, &sid, &bob, 0).await;
    server.deny(&secret, &carol, VIEW_CHANNEL).await;
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let (mut carol_gw, _) = server.connect(&carol.ws_query()).await;
    let (mut dave_gw, _) = server.connect(&dave.ws_query()).await;

    let by_role = put(
        &alice,
        &secret,
        &json!({"role_id": role, "allow": SEND_MESSAGES, "deny": MANAGE_CHANNELS}),
    )
    .await;
    assert_eq!(by_role.status, 200, "{}", by_role.text);
    assert_keys(&by_role.body, OVERRIDE_KEYS);
    assert_eq!(by_role.body["channel_id"], secret.as_str());
    assert_eq!(by_role.body["role_id"], role.as_str());
    assert_eq!(by_role.body["user_id"], Value::Null);
    assert_eq!(by_role.body["allow"], SEND_MESSAGES);
    assert_eq!(by_role.body["deny"], MANAGE_CHANNELS);
    for gw in [&mut alice_gw, &mut bob_gw, &mut carol_gw] {
        assert_eq!(gw.next_event("CHANNEL_OVERRIDE_UPDATE").await, by_role.body);
    }

    // The same bits again: the stored override, no event. New bits: the same id.
    let same = put(
        &alice,
        &secret,
        &json!({"role_id": role, "user_id": null, "allow": SEND_MESSAGES, "deny": MANAGE_CHANNELS}),
    )
    .await;
    assert_eq!(same.status, 200, "{}", same.text);
    assert_eq!(same.body, by_role.body);
    let changed = put(
        &alice,
        &secret,
        &json!({"role_id": role, "allow": 0, "deny": 0}),
    )
    .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(changed.body["id"], by_role.body["id"]);
    assert_eq!(
        (
            changed.body["allow"].as_i64(),
            changed.body["deny"].as_i64()
        ),
        (Some(0), Some(0))
    );
    for gw in [&mut alice_gw, &mut bob_gw, &mut carol_gw] {
        assert_eq!(
            gw.next_event("CHANNEL_OVERRIDE_UPDATE").await,
            changed.body,
            "the repeat sent nothing"
        );
    }

    let by_user = put(
        &alice,
        &secret,
        &json!({"user_id": bob.id, "allow": 8, "deny": 16}),
    )
    .await;
    assert_eq!(by_user.status, 200, "{}", by_user.text);
    assert_keys(&by_user.body, OVERRIDE_KEYS);
    assert_eq!(by_user.body["role_id"], Value::Null);
    assert_eq!(by_user.body["user_id"], bob.id.as_str());
    for gw in [&mut alice_gw, &mut bob_gw, &mut carol_gw] {
        assert_eq!(gw.next_event("CHANNEL_OVERRIDE_UPDATE").await, by_user.body);
    }

    // Listing: role overrides first, then user overrides (carol's came first in time).
    let listed = bob.api.get(&format!("/channels/{secret}/overrides")).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let list = listed.body.as_array().unwrap();
    assert_eq!(list.len(), 3, "{}", listed.text);
    assert_eq!(list[0], changed.body);
    assert_eq!(list[1]["user_id"], carol.id.as_str());
    assert_eq!(list[2], by_user.body);
    let none = bob.api.get(&format!("/channels/{general}/overrides")).await;
    assert_eq!(none.body, json!([]));

    let id = str_of(&by_user.body["id"]);
    let removed = alice
        .api
        .delete(&format!("/channels/{secret}/overrides/{id}"))
        .await;
    assert_eq!(removed.status, 204, "{}", removed.text);
    for gw in [&mut alice_gw, &mut bob_gw, &mut carol_gw] {
        let d = gw.next_event("CHANNEL_OVERRIDE_DELETE").await;
        assert_eq!(d, json!({"channel_id": secret, "override_id": id}));
    }
    assert_exact_error(
        &alice
            .api
            .delete(&format!("/channels/{secret}/overrides/{id}"))
            .await,
        404,
    );
    let listed = alice
        .api
        .get(&format!("/channels/{secret}/overrides"))
        .await;
    assert_eq!(listed.body.as_array().unwrap().len(), 2);

    // Dave, in no shared server, got none of it.
    dave.post(&lobby, "control").await;
    let frame = dave_gw.next_non_presence().await;
    assert_eq!(frame["t"], "MESSAGE_CREATE", "{frame}");
    assert_eq!(frame["d"]["content"], "control");
    server.shutdown().await;
}

#[tokio::test]
async fn put_override_refusals_in_check_order() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await; // MANAGE_CHANNELS through a role
    let erin = server.user("erin").await; // plain member
    let stranger = server.user("stranger").await;
    let sid = alice.create_server("Guild").await;
    bob.join(&sid).await;
    erin.join(&sid).await;
    let general = alice.create_channel(&sid, "general", "text").await;
    let other = alice.create_server("Other").await;
    let foreign_channel = alice.create_channel(&other, "x", "text").await;
    let manager_role = grant(&alice, &sid, &bob, MANAGE_CHANNELS).await;
    let foreign_role = grant(&alice, &other, &alice, 0).await;
    let valid = json!({"user_id": erin.id, "allow": 0, "deny": SEND_MESSAGES});

    // 422 first (strict body, required bits, types), even on an unknown channel.
    for body in [
        r#"{"user_id": null, "allow": 0, "deny": 0, "extra": 1}"#,
        r#"{"role_id": null, "deny": 0}"#,
        r#"{"allow": 0}"#,
        r#"{"allow": "1", "deny": 0}"#,
        r#"{"role_id": "not-a-uuid", "allow": 0, "deny": 0}"#,
    ] {
        assert_exact_error(&put_raw(&alice, &unknown_id(), body).await, 422);
        assert_exact_error(&put_raw(&alice, &general, body).await, 422);
    }
    assert_exact_error(&put_raw(&alice, &general, "{").await, 400);
    let res = alice
        .api
        .raw(
            "PUT",
            &format!("/channels/{general}/overrides"),
            None,
            &valid.to_string(),
        )
        .await;
    assert_eq!(res.status, 415, "{}", res.text);
    // 404 channel, 404 member, 403 before the body rules.
    let neither = json!({"allow": 0, "deny": 0});
    assert_exact_error(&put(&alice, &unknown_id(), &neither).await, 404);
    assert_exact_error(&put(&stranger, &general, &neither).await, 404);
    assert_exact_error(&put(&erin, &general, &neither).await, 403);
    // 400: targets, then overlap, then each range.
    assert_exact_error(
        &put(&bob, &general, &json!({"allow": -1, "deny": -1})).await,
        400,
    );
    let both = json!({"role_id": manager_role, "user_id": erin.id, "allow": 1, "deny": 1});
    let res = put(&bob, &general, &both).await;
    assert_exact_error(&res, 400);
    assert!(
        res.body["error"].as_str().unwrap().contains("role_id"),
        "{}",
        res.text
    );
    let overlap = json!({"user_id": unknown_id(), "allow": 3, "deny": 2 | 32768});
    let res = put(&bob, &general, &overlap).await;
    assert_exact_error(&res, 400);
    assert!(
        res.body["error"].as_str().unwrap().contains("share"),
        "{}",
        res.text
    );
    for (allow, deny, which) in [
        (32768, 0, "allow"),
        (-2, 1, "allow"),
        (0, 32768, "deny"),
        (1, -2, "deny"),
    ] {
        let body = json!({"user_id": unknown_id(), "allow": allow, "deny": deny});
        let res = put(&bob, &general, &body).await;
        assert_exact_error(&res, 400);
        assert!(
            res.body["error"].as_str().unwrap().starts_with(which),
            "{}",
            res.text
        );
    }
    // 404 targets: unknown, of another server, not a member (Concord).
    for body in [
        json!({"role_id": unknown_id(), "allow": 0, "deny": 1}),
        json!({"role_id": foreign_role, "allow": 0, "deny": 1}),
        json!({"user_id": unknown_id(), "allow": 0, "deny": 1}),
        json!({"user_id": stranger.id, "allow": 0, "deny": 1}),
    ] {
        assert_exact_error(&put(&bob, &general, &body).await, 404);
    }
    assert_exact_error(&put(&bob, &foreign_channel, &valid).await, 404);
    // Nothing refused was stored.
    let listed = alice
        .api
        .get(&format!("/channels/{general}/overrides"))
        .await;
    assert_eq!(listed.body, json!([]));

    // Allowed: the whole range, a role or a member target.
    let ok = put(
        &bob,
        &general,
        &json!({"role_id": manager_role, "allow": 32767, "deny": 0}),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let ok = put(&bob, &general, &valid).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    server.shutdown().await;
}

#[tokio::test]
async fn manage_channels_is_checked_at_channel_level() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await; // MANAGE_CHANNELS by role, denied on one channel
    let carol = server.user("carol").await; // plain member, allowed on one channel
    let erin = server.user("erin").await; // ADMINISTRATOR, denied by an override
    let frank = server.user("frank").await; // the target of the overrides they write
    let sid = alice.create_server("Guild").await;
    for u in [&bob, &carol, &erin, &frank] {
        u.join(&sid).await;
    }
    let locked = alice.create_channel(&sid, "locked", "text").await;
    let open = alice.create_channel(&sid, "open", "text").await;
    grant(&alice, &sid, &bob, MANAGE_CHANNELS).await;
    grant(&alice, &sid, &erin, ADMINISTRATOR).await;
    for (who, channel, allow, deny) in [
        (&bob, &locked, 0, MANAGE_CHANNELS),
        (&carol, &open, MANAGE_CHANNELS, 0),
        (&erin, &locked, 0, MANAGE_CHANNELS | VIEW_CHANNEL),
    ] {
        let res = put(
            &alice,
            channel,
            &json!({"user_id": who.id, "allow": allow, "deny": deny}),
        )
        .await;
        assert_eq!(res.status, 200, "{}", res.text);
    }
    let body = json!({"user_id": frank.id, "allow": 0, "deny": 16});
    assert_exact_error(&put(&bob, &locked, &body).await, 403);
    assert_eq!(put(&bob, &open, &body).await.status, 200);
    assert_eq!(put(&carol, &open, &body).await.status, 200);
    assert_exact_error(&put(&carol, &locked, &body).await, 403);
    // ADMINISTRATOR ignores channel overrides.
    assert_eq!(put(&erin, &locked, &body).await.status, 200);
    let listed = alice
        .api
        .get(&format!("/channels/{locked}/overrides"))
        .await;
    let frank_on_locked = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["user_id"] == frank.id.as_str())
        .expect("frank's override");
    let id = str_of(&frank_on_locked["id"]);
    assert_exact_error(
        &bob.api
            .delete(&format!("/channels/{locked}/overrides/{id}"))
            .await,
        403,
    );
    assert_eq!(
        erin.api
            .delete(&format!("/channels/{locked}/overrides/{id}"))
            .await
            .status,
        204
    );
    server.shutdown().await;
}

#[tokio::test]
async fn reading_and_deleting_refusals_in_check_order() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await; // denied VIEW on the channel
    let erin = server.user("erin").await;
    let stranger = server.user("stranger").await;
    let sid = alice.create_server("Guild").await;
    bob.join(&sid).await;
    erin.join(&sid).await;
    let general = alice.create_channel(&sid, "general", "text").await;
    let other = alice.create_channel(&sid, "other", "text").await;
    let denied = put(
        &alice,
        &general,
        &json!({"user_id": bob.id, "allow": 0, "deny": VIEW_CHANNEL}),
    )
    .await;
    assert_eq!(denied.status, 200, "{}", denied.text);
    let id = str_of(&denied.body["id"]);

    // GET: 404 channel, 404 member, 403 without VIEW (Concord R2).
    let list = |channel: &str| format!("/channels/{channel}/overrides");
    assert_exact_error(&alice.api.get(&list(&unknown_id())).await, 404);
    assert_exact_error(&stranger.api.get(&list(&general)).await, 404);
    assert_exact_error(&bob.api.get(&list(&general)).await, 403);
    assert_exact_error(&alice.api.get("/channels/nope/overrides").await, 400);
    assert_eq!(erin.api.get(&list(&general)).await.status, 200);

    // DELETE: 404 channel, 404 member, 403, 404 override (unknown or of another channel).
    let one = |channel: &str, id: &str| format!("/channels/{channel}/overrides/{id}");
    assert_exact_error(&alice.api.delete(&one(&unknown_id(), &id)).await, 404);
    assert_exact_error(&stranger.api.delete(&one(&general, &id)).await, 404);
    assert_exact_error(&erin.api.delete(&one(&general, &id)).await, 403);
    assert_exact_error(&erin.api.delete(&one(&general, &unknown_id())).await, 403);
    assert_exact_error(&alice.api.delete(&one(&general, &unknown_id())).await, 404);
    assert_exact_error(&alice.api.delete(&one(&other, &id)).await, 404);
    assert_exact_error(&alice.api.delete(&one(&general, "nope")).await, 400);
    // Still there; then gone.
    assert_eq!(
        alice
            .api
            .get(&list(&general))
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(alice.api.delete(&one(&general, &id)).await.status, 204);
    assert_eq!(bob.api.get(&list(&general)).await.body, json!([]));
    server.shutdown().await;
}
