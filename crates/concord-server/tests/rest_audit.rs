//! The server audit log over real HTTP (`rest-extras.md` §5.2): every audited route
//! writes its row with the listed details, in the action's own transaction (X19), and
//! a refused action writes none; the list is owner-only with 404 for non-members
//! (X11), `limit` clamped to 1..100 (X21), keyset pages on (`created_at`, `id`) and
//! the filters.

use concord_testkit::{TestServer, TestUser, assert_exact_error, assert_keys, str_of};
use serde_json::{Value, json};

/// alice owns "hall"; bob and carol are members.
async fn hall() -> (TestServer, TestUser, TestUser, TestUser, String) {
    let server = TestServer::start().await;
    let (alice, bob, carol) = (
        server.user("alice").await,
        server.user("bob").await,
        server.user("carol").await,
    );
    let hall = alice.create_server("hall").await;
    bob.join(&hall).await;
    carol.join(&hall).await;
    (server, alice, bob, carol, hall)
}

/// The log as the owner sees it with `query`, newest first.
async fn log(owner: &TestUser, hall: &str, query: &str) -> Vec<Value> {
    let res = owner
        .api
        .get(&format!("/servers/{hall}/audit-logs{query}"))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.body.as_array().expect("an array").clone()
}

/// The newest row of `action`.
async fn newest(owner: &TestUser, hall: &str, action: &str) -> Value {
    let rows = log(owner, hall, &format!("?action={action}")).await;
    rows.first()
        .unwrap_or_else(|| panic!("no {action} row"))
        .clone()
}

fn check_row(row: &Value, hall: &str, actor: &TestUser, target_type: &str, target: &str) {
    assert_keys(
        row,
        &[
            "id",
            "server_id",
            "actor_id",
            "action",
            "target_type",
            "target_id",
            "details",
            "ip_address",
            "created_at",
        ],
    );
    assert_eq!(row["server_id"], json!(hall));
    assert_eq!(row["actor_id"], json!(actor.id));
    assert_eq!(row["target_type"], json!(target_type));
    assert_eq!(row["target_id"], json!(target));
    assert_eq!(row["ip_address"], Value::Null);
}

#[tokio::test]
async fn server_channel_role_and_invite_actions_are_recorded_with_their_details() {
    let (_server, alice, bob, _carol, hall) = hall().await;

    let row = newest(&alice, &hall, "server_create").await;
    check_row(&row, &hall, &alice, "server", &hall);
    assert_eq!(row["details"], json!({"name": "hall"}));

    let res = alice
        .api
        .patch(&format!("/servers/{hall}"), &json!({"name": "Hall 2"}))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let row = newest(&alice, &hall, "server_update").await;
    check_row(&row, &hall, &alice, "server", &hall);
    assert_eq!(
        row["details"],
        json!({"name": "Hall 2", "icon_url": null, "is_public": null})
    );

    let general = alice.create_channel(&hall, "general", "text").await;
    let row = newest(&alice, &hall, "channel_create").await;
    check_row(&row, &hall, &alice, "channel", &general);
    assert_eq!(row["details"], json!({"name": "general", "type": "text"}));

    let res = alice
        .api
        .patch(
            &format!("/servers/{hall}/channels/{general}"),
            &json!({"topic": "chat", "position": 3}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let row = newest(&alice, &hall, "channel_update").await;
    check_row(&row, &hall, &alice, "channel", &general);
    assert_eq!(
        row["details"],
        json!({"name": null, "topic": "chat", "category": null, "position": 3})
    );

    let res = alice
        .api
        .post(
            &format!("/servers/{hall}/roles"),
            &json!({"name": "mods", "permissions": 2}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let role = str_of(&res.body["id"]);
    let row = newest(&alice, &hall, "role_create").await;
    check_row(&row, &hall, &alice, "role", &role);
    assert_eq!(row["details"], json!({"name": "mods", "permissions": 2}));

    let res = alice
        .api
        .patch(
            &format!("/servers/{hall}/roles/{role}"),
            &json!({"name": "moderators"}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let row = newest(&alice, &hall, "role_update").await;
    check_row(&row, &hall, &alice, "role", &role);
    assert_eq!(
        row["details"],
        json!({"name": "moderators", "permissions": null})
    );

    let member_role = format!("/servers/{hall}/members/{}/roles/{role}", bob.id);
    assert_eq!(alice.api.put(&member_role).await.status, 204);
    let row = newest(&alice, &hall, "member_role_add").await;
    check_row(&row, &hall, &alice, "user", &bob.id);
    assert_eq!(
        row["details"],
        json!({"role_id": role, "role_name": "moderators"})
    );
    assert_eq!(alice.api.delete(&member_role).await.status, 204);
    let row = newest(&alice, &hall, "member_role_remove").await;
    check_row(&row, &hall, &alice, "user", &bob.id);
    assert_eq!(
        row["details"],
        json!({"role_id": role, "role_name": "moderators"})
    );

    let res = alice
        .api
        .raw(
            "PUT",
            &format!("/channels/{general}/overrides"),
            Some("application/json"),
            &json!({"role_id": role, "allow": 0, "deny": 1}).to_string(),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let override_id = str_of(&res.body["id"]);
    let row = newest(&alice, &hall, "channel_override_update").await;
    check_row(&row, &hall, &alice, "channel", &general);
    assert_eq!(
        row["details"],
        json!({"override_id": override_id, "role_id": role, "user_id": null,
               "allow": 0, "deny": 1})
    );
    let res = alice
        .api
        .delete(&format!("/channels/{general}/overrides/{override_id}"))
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    let row = newest(&alice, &hall, "channel_override_delete").await;
    check_row(&row, &hall, &alice, "channel", &general);
    assert_eq!(row["details"], json!({"override_id": override_id}));

    let res = alice
        .api
        .delete(&format!("/servers/{hall}/roles/{role}"))
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    let row = newest(&alice, &hall, "role_delete").await;
    check_row(&row, &hall, &alice, "role", &role);
    assert_eq!(row["details"], json!({"name": "moderators"}));

    let res = alice
        .api
        .post(&format!("/servers/{hall}/invites"), &json!({"max_uses": 5}))
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let (invite, code) = (str_of(&res.body["id"]), str_of(&res.body["code"]));
    let row = newest(&alice, &hall, "invite_create").await;
    check_row(&row, &hall, &alice, "invite", &invite);
    assert_eq!(row["details"], json!({"code": code, "max_uses": 5}));
    let res = alice
        .api
        .delete(&format!("/servers/{hall}/invites/{invite}"))
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    let row = newest(&alice, &hall, "invite_revoke").await;
    check_row(&row, &hall, &alice, "invite", &invite);
    assert_eq!(row["details"], json!({}));

    let res = alice
        .api
        .delete(&format!("/servers/{hall}/channels/{general}"))
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    let row = newest(&alice, &hall, "channel_delete").await;
    check_row(&row, &hall, &alice, "channel", &general);
    assert_eq!(row["details"], json!({"name": "general"}));
}

#[tokio::test]
async fn moderation_actions_are_recorded_and_refused_ones_are_not() {
    let (_server, alice, bob, carol, hall) = hall().await;
    let path =
        |user: &TestUser, action: &str| format!("/servers/{hall}/members/{}/{action}", user.id);

    // Refused actions first: none of them writes a row.
    assert_exact_error(&bob.api.post_empty(&path(&carol, "kick")).await, 403);
    assert_exact_error(&alice.api.post_empty(&path(&alice, "ban")).await, 400);
    let res = alice
        .api
        .post(&path(&bob, "timeout"), &json!({"duration_minutes": 0}))
        .await;
    assert_exact_error(&res, 400);
    // Nothing to lift: answered 204, nothing happened, nothing recorded.
    assert_eq!(
        alice
            .api
            .delete(&format!("/servers/{hall}/bans/{}", bob.id))
            .await
            .status,
        204
    );
    assert_eq!(alice.api.delete(&path(&bob, "timeout")).await.status, 204);
    let res = alice
        .api
        .delete(&format!("/servers/{hall}/invites/{}", uuid::Uuid::new_v4()))
        .await;
    assert_exact_error(&res, 404);
    let rows = log(&alice, &hall, "").await;
    let actions: Vec<&str> = rows.iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["server_create"], "refused actions write no row");

    let res = alice
        .api
        .post(
            &path(&bob, "timeout"),
            &json!({"duration_minutes": 10, "reason": "calm down"}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let row = newest(&alice, &hall, "member_timeout").await;
    check_row(&row, &hall, &alice, "user", &bob.id);
    assert_eq!(
        row["details"],
        json!({"duration_minutes": 10, "reason": "calm down"})
    );
    assert_eq!(alice.api.delete(&path(&bob, "timeout")).await.status, 204);
    let row = newest(&alice, &hall, "member_timeout_remove").await;
    check_row(&row, &hall, &alice, "user", &bob.id);
    assert_eq!(row["details"], json!({}));

    let res = alice
        .api
        .post(&path(&bob, "kick"), &json!({"reason": "spam"}))
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    let row = newest(&alice, &hall, "member_kick").await;
    check_row(&row, &hall, &alice, "user", &bob.id);
    assert_eq!(row["details"], json!({"reason": "spam"}));

    assert_eq!(alice.api.post_empty(&path(&carol, "ban")).await.status, 204);
    let row = newest(&alice, &hall, "member_ban").await;
    check_row(&row, &hall, &alice, "user", &carol.id);
    assert_eq!(row["details"], json!({"reason": null}));
    let res = alice
        .api
        .delete(&format!("/servers/{hall}/bans/{}", carol.id))
        .await;
    assert_eq!(res.status, 204);
    let row = newest(&alice, &hall, "member_unban").await;
    check_row(&row, &hall, &alice, "user", &carol.id);
    assert_eq!(row["details"], json!({}));
    assert_eq!(
        log(&alice, &hall, "?action=member_unban").await.len(),
        1,
        "the earlier no-op unban wrote nothing"
    );
}

#[tokio::test]
async fn only_the_owner_reads_the_log_and_others_learn_nothing() {
    let (server, alice, bob, carol, hall) = hall().await;
    let outsider = server.user("outsider").await;
    let path = format!("/servers/{hall}/audit-logs");

    // An ADMINISTRATOR member is still refused (owner only).
    let res = alice
        .api
        .post(
            &format!("/servers/{hall}/roles"),
            &json!({"name": "admins", "permissions": 1 << 13}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let role = str_of(&res.body["id"]);
    let res = alice
        .api
        .put(&format!("/servers/{hall}/members/{}/roles/{role}", bob.id))
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    // The role works: bob may now kick, which a plain member may not.
    let res = bob
        .api
        .post_empty(&format!("/servers/{hall}/members/{}/kick", carol.id))
        .await;
    assert!(res.status < 300, "{}", res.text);
    assert_exact_error(&bob.api.get(&path).await, 403);
    assert_eq!(
        bob.api.get(&path).await.body["error"],
        json!("Only the server owner can view audit logs")
    );
    // X11: a non-member cannot tell the server exists.
    let res = outsider.api.get(&path).await;
    assert_exact_error(&res, 404);
    assert_eq!(res.body["error"], json!("Server not found"));
    let missing = format!("/servers/{}/audit-logs", uuid::Uuid::new_v4());
    assert_exact_error(&alice.api.get(&missing).await, 404);
    assert_exact_error(&server.api().get(&path).await, 401);
    // The query is parsed before anything else.
    assert_eq!(
        server.api().get(&format!("{path}?limit=x")).await.status,
        400
    );
    assert_eq!(
        alice.api.get(&format!("{path}?actor_id=nope")).await.status,
        400
    );
}

#[tokio::test]
async fn pages_clamp_filter_and_follow_the_keyset() {
    let (_server, alice, bob, _carol, hall) = hall().await;
    for n in 0..6 {
        alice.create_channel(&hall, &format!("c{n}"), "text").await;
    }
    // 7 rows: server_create and 6 channel_create, newest first.
    let all = log(&alice, &hall, "").await;
    assert_eq!(all.len(), 7);
    let times: Vec<String> = all.iter().map(|r| str_of(&r["created_at"])).collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");

    // X21: limit clamped to 1..100.
    assert_eq!(log(&alice, &hall, "?limit=0").await.len(), 1);
    assert_eq!(log(&alice, &hall, "?limit=-5").await.len(), 1);
    assert_eq!(log(&alice, &hall, "?limit=1000").await.len(), 7);
    assert_eq!(log(&alice, &hall, "?limit=2").await.len(), 2);

    // Keyset pages of 2 walk every row once.
    let mut seen = Vec::new();
    let mut query = "?limit=2".to_owned();
    loop {
        let page = log(&alice, &hall, &query).await;
        if page.is_empty() {
            break;
        }
        let last = page.last().unwrap();
        seen.extend(page.iter().map(|r| str_of(&r["id"])));
        query = format!(
            "?limit=2&before={}&before_id={}",
            str_of(&last["created_at"]).replace('+', "%2B"),
            str_of(&last["id"])
        );
    }
    let ids: Vec<String> = all.iter().map(|r| str_of(&r["id"])).collect();
    assert_eq!(seen, ids);
    // `before` alone: strictly older times.
    let oldest_time = str_of(&all[6]["created_at"]).replace('+', "%2B");
    assert!(
        log(&alice, &hall, &format!("?before={oldest_time}"))
            .await
            .is_empty()
    );

    // Filters.
    assert_eq!(log(&alice, &hall, "?action=channel_create").await.len(), 6);
    assert_eq!(log(&alice, &hall, "?target_type=server").await.len(), 1);
    assert_eq!(
        log(&alice, &hall, &format!("?actor_id={}", alice.id))
            .await
            .len(),
        7
    );
    assert!(
        log(&alice, &hall, &format!("?actor_id={}", bob.id))
            .await
            .is_empty()
    );
}
