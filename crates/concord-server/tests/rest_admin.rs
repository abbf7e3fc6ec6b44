//! Issue 18 part A over real sockets: the registration mode, instance administration
//! (`/admin/*`), admin-mediated password reset and server templates
//! (`rest-extras.md` §2–§4, X13, X15–X18).

use concord_testkit::{
    Closed, TestServer, TestUser, assert_error, assert_exact_error, assert_keys,
};
use serde_json::{Value, json};

const PASSWORD: &str = "correct-horse-42";

/// Registers `name` with an e-mail.
async fn user_with_email(server: &TestServer, name: &str, email: &str) -> TestUser {
    let res = server
        .api()
        .post(
            "/auth/register",
            &json!({"username": name, "password": PASSWORD, "email": email}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    TestUser::from_auth(server, &res.body)
}

async fn login_status(server: &TestServer, name: &str, password: &str) -> u16 {
    server
        .api()
        .post(
            "/auth/login",
            &json!({"username": name, "password": password}),
        )
        .await
        .status
}

async fn refresh_status(server: &TestServer, token: &str) -> u16 {
    server
        .api()
        .post("/auth/refresh", &json!({"refresh_token": token}))
        .await
        .status
}

/// The first user (instance admin) and a second, plain one.
async fn admin_and_user(server: &TestServer) -> (TestUser, TestUser) {
    let alice = user_with_email(server, "alice", "alice@example.com").await;
    let bob = user_with_email(server, "bob", "bob@example.com").await;
    (alice, bob)
}

const ADMIN_USER_KEYS: &[&str] = &[
    "id",
    "username",
    "email",
    "avatar_url",
    "status",
    "is_admin",
    "disabled",
    "disabled_at",
    "created_at",
    "server_count",
    "message_count",
];

#[tokio::test]
async fn registration_mode_is_public_and_an_admin_sets_it() {
    let server = TestServer::start().await;
    let res = server.api().get("/instance/registration-mode").await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body, json!({"registration_mode": "open"}));
    let (alice, bob) = admin_and_user(&server).await;

    let res = alice.api.get("/admin/settings").await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_keys(
        &res.body,
        &["id", "registration_mode", "updated_at", "updated_by"],
    );
    assert_eq!(res.body["id"], 1);
    assert_eq!(res.body["registration_mode"], "open");

    let res = alice
        .api
        .patch("/admin/settings", &json!({"registration_mode": "closed"}))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["registration_mode"], "closed");
    assert_eq!(res.body["updated_by"], json!(alice.id));
    let res = server.api().get("/instance/registration-mode").await;
    assert_eq!(res.body["registration_mode"], "closed");
    let res = server
        .api()
        .post(
            "/auth/register",
            &json!({"username": "carol", "password": PASSWORD}),
        )
        .await;
    assert_exact_error(&res, 403);

    alice
        .api
        .patch(
            "/admin/settings",
            &json!({"registration_mode": "invite_only"}),
        )
        .await;
    let res = server
        .api()
        .post(
            "/auth/register",
            &json!({"username": "carol", "password": PASSWORD}),
        )
        .await;
    assert_exact_error(&res, 400);

    // Errors: unknown mode 400, unknown field or wrong type 422, non-admin 403.
    let res = alice
        .api
        .patch(
            "/admin/settings",
            &json!({"registration_mode": "sometimes"}),
        )
        .await;
    assert_exact_error(&res, 400);
    assert_eq!(
        res.body["error"],
        "registration_mode must be one of: open, invite_only, closed"
    );
    assert_error(
        &alice
            .api
            .patch("/admin/settings", &json!({"mode": "open"}))
            .await,
        422,
    );
    assert_error(
        &alice
            .api
            .patch("/admin/settings", &json!({"registration_mode": 1}))
            .await,
        422,
    );
    assert_exact_error(
        &bob.api
            .patch("/admin/settings", &json!({"registration_mode": "open"}))
            .await,
        403,
    );
    // `{}` changes nothing but records who and when.
    let before = alice.api.get("/admin/settings").await.body;
    let res = alice.api.patch("/admin/settings", &json!({})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["registration_mode"], "invite_only");
    assert_ne!(res.body["updated_at"], before["updated_at"]);
}

#[tokio::test]
async fn every_admin_route_refuses_non_admins_and_anonymous_callers() {
    let server = TestServer::start().await;
    let (alice, bob) = admin_and_user(&server).await;
    let s = alice.create_server("home").await;
    let routes: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/admin/stats".into(), None),
        ("GET", "/admin/users".into(), None),
        (
            "PATCH",
            format!("/admin/users/{}", alice.id),
            Some(json!({"disabled": true})),
        ),
        ("DELETE", format!("/admin/users/{}", alice.id), None),
        ("GET", "/admin/servers".into(), None),
        ("DELETE", format!("/admin/servers/{s}"), None),
        ("GET", "/admin/settings".into(), None),
        (
            "PATCH",
            "/admin/settings".into(),
            Some(json!({"registration_mode": "closed"})),
        ),
        (
            "POST",
            "/auth/forgot-password".into(),
            Some(json!({"email": "alice@example.com"})),
        ),
    ];
    for (method, path, body) in &routes {
        for (api, status) in [(&bob.api, 403), (&server.api(), 401)] {
            let res = match (*method, body) {
                ("GET", _) => api.get(path).await,
                ("DELETE", _) => api.delete(path).await,
                ("PATCH", Some(b)) => api.patch(path, b).await,
                (_, Some(b)) => api.post(path, b).await,
                _ => unreachable!(),
            };
            assert_exact_error(&res, status);
            if status == 403 {
                assert_eq!(
                    res.body["error"], "Admin access required",
                    "{method} {path}"
                );
            }
        }
    }
    // Nothing changed.
    assert_eq!(alice.api.get("/admin/stats").await.status, 200);
    assert_eq!(alice.api.get(&format!("/servers/{s}")).await.status, 200);
}

#[tokio::test]
async fn stats_and_lists_page_search_and_clamp() {
    let server = TestServer::start().await;
    let (alice, bob) = admin_and_user(&server).await;
    let s = alice.create_server("Alpha Base").await;
    bob.create_server("beta").await;
    let c = alice.create_channel(&s, "general", "text").await;
    alice.post(&c, "hi").await;

    let res = alice.api.get("/admin/stats").await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_keys(
        &res.body,
        &[
            "total_users",
            "total_servers",
            "total_messages",
            "total_channels",
            "active_ws_connections",
            "uptime_secs",
            "db_latency_ms",
            "storage_bytes",
        ],
    );
    assert_eq!(
        (
            &res.body["total_users"],
            &res.body["total_servers"],
            &res.body["total_messages"],
            &res.body["total_channels"]
        ),
        (&json!(2), &json!(2), &json!(1), &json!(1))
    );

    let res = alice.api.get("/admin/users?per_page=1000&page=0").await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_keys(&res.body, &["users", "total", "page", "per_page"]);
    assert_eq!(
        (&res.body["page"], &res.body["per_page"]),
        (&json!(1), &json!(100))
    );
    assert_eq!(res.body["total"], 2);
    assert_keys(&res.body["users"][0], ADMIN_USER_KEYS);
    assert_eq!(res.body["users"][0]["username"], "bob", "newest first");

    let res = alice.api.get("/admin/users?search=ALICE@&per_page=1").await;
    assert_eq!(res.body["total"], 1);
    assert_eq!(res.body["users"][0]["username"], "alice");
    assert_eq!(res.body["users"][0]["is_admin"], true);
    assert_eq!(res.body["users"][0]["message_count"], 1);
    let res = alice.api.get("/admin/users?sort_by=username").await;
    assert_eq!(res.body["users"][0]["username"], "alice");

    assert_eq!(alice.api.get("/admin/users?page=abc").await.status, 400);
    assert_eq!(
        alice.api.get("/admin/servers?per_page=1.5").await.status,
        400
    );

    let res = alice.api.get("/admin/servers?search=alpha").await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_keys(&res.body, &["servers", "total", "page", "per_page"]);
    assert_eq!(res.body["total"], 1);
    let row = &res.body["servers"][0];
    assert_keys(
        row,
        &[
            "id",
            "name",
            "owner_id",
            "owner_username",
            "icon_url",
            "is_public",
            "member_count",
            "channel_count",
            "message_count",
            "created_at",
        ],
    );
    assert_eq!(row["owner_username"], "alice");
    assert_eq!(
        (
            &row["member_count"],
            &row["channel_count"],
            &row["message_count"]
        ),
        (&json!(1), &json!(1), &json!(1))
    );
}

#[tokio::test]
async fn disabling_closes_sockets_and_refuses_every_token_at_once() {
    let server = TestServer::start().await;
    let (alice, bob) = admin_and_user(&server).await;
    let (mut v2, _, _) = server.identify_v2(&bob, "", None).await;
    let (mut v1, _) = server.connect(&bob.ws_query()).await;
    assert_eq!(bob.api.get("/users/@me").await.status, 200);

    let res = alice
        .api
        .patch(
            &format!("/admin/users/{}", bob.id),
            &json!({"disabled": true}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_keys(&res.body, ADMIN_USER_KEYS);
    assert_eq!(res.body["disabled"], true);
    assert!(res.body["disabled_at"].is_string());

    assert_eq!(v2.closed().await, Closed::Code(4009));
    assert_eq!(v1.closed().await, Closed::Code(1008));
    assert_exact_error(&bob.api.get("/users/@me").await, 401);
    assert_eq!(refresh_status(&server, &bob.refresh).await, 401);
    assert_eq!(login_status(&server, "bob", PASSWORD).await, 403);

    let res = alice
        .api
        .patch(
            &format!("/admin/users/{}", bob.id),
            &json!({"disabled": false}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(
        (&res.body["disabled"], &res.body["disabled_at"]),
        (&json!(false), &Value::Null)
    );
    assert_eq!(login_status(&server, "bob", PASSWORD).await, 200);

    // Errors.
    let me = format!("/admin/users/{}", alice.id);
    let res = alice.api.patch(&me, &json!({"is_admin": false})).await;
    assert_exact_error(&res, 400);
    assert_eq!(res.body["error"], "Cannot demote yourself from admin");
    let res = alice.api.patch(&me, &json!({"disabled": true})).await;
    assert_eq!(res.body["error"], "Cannot disable yourself");
    assert_exact_error(
        &alice
            .api
            .patch(
                &format!("/admin/users/{}", uuid::Uuid::new_v4()),
                &json!({"disabled": true}),
            )
            .await,
        404,
    );
    assert_error(&alice.api.patch(&me, &json!({"admin": true})).await, 422);
    assert_eq!(
        alice
            .api
            .patch("/admin/users/nope", &json!({}))
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn two_admins_demoting_each_other_at_once_leave_one_admin() {
    let server = TestServer::start().await;
    let (alice, bob) = admin_and_user(&server).await;
    let res = alice
        .api
        .patch(
            &format!("/admin/users/{}", bob.id),
            &json!({"is_admin": true}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["is_admin"], true);

    let demote = json!({"is_admin": false});
    let (bob_path, alice_path) = (
        format!("/admin/users/{}", bob.id),
        format!("/admin/users/{}", alice.id),
    );
    let (a, b) = tokio::join!(
        alice.api.patch(&bob_path, &demote),
        bob.api.patch(&alice_path, &demote),
    );
    let statuses = [a.status, b.status];
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{} / {}",
        a.text,
        b.text
    );
    // The loser is refused: 400 last admin, or 403 when it was demoted before its
    // request was authorised.
    assert!(
        statuses.iter().all(|s| [200, 400, 403].contains(s)),
        "{statuses:?}"
    );
    let survivor = if a.status == 200 { &alice } else { &bob };
    let res = survivor.api.get("/admin/users").await;
    let admins = res.body["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["is_admin"] == true)
        .count();
    assert_eq!(admins, 1);

    // The survivor is the last admin: disabling or demoting it is refused to anyone.
    let res = survivor
        .api
        .patch(
            &format!("/admin/users/{}", survivor.id),
            &json!({"is_admin": false}),
        )
        .await;
    assert_exact_error(&res, 400);
}

#[tokio::test]
async fn deleting_a_user_keeps_messages_and_closes_sockets() {
    let server = TestServer::start().await;
    let (alice, bob) = admin_and_user(&server).await;
    let s = alice.create_server("home").await;
    bob.join(&s).await;
    let c = alice.create_channel(&s, "general", "text").await;
    let m = bob.post(&c, "from bob").await;
    let (mut v1, _) = server.connect(&bob.ws_query()).await;
    let carol = server.user("carol").await;
    let owned = carol.create_server("carol's").await;

    assert_exact_error(
        &alice
            .api
            .delete(&format!("/admin/users/{}", alice.id))
            .await,
        400,
    );
    let res = alice
        .api
        .delete(&format!("/admin/users/{}", carol.id))
        .await;
    assert_exact_error(&res, 400);
    assert_eq!(
        res.body["error"],
        "Cannot delete a user who owns servers. Transfer ownership first."
    );
    assert_eq!(
        carol.api.get(&format!("/servers/{owned}")).await.status,
        200
    );

    let res = alice.api.delete(&format!("/admin/users/{}", bob.id)).await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert_eq!(v1.closed().await, Closed::Code(1008));
    assert_exact_error(&bob.api.get("/users/@me").await, 401);
    let res = alice
        .api
        .get(&format!(
            "/channels/{c}/messages/{}",
            m["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["author_id"], Value::Null);
    let members = alice.api.get(&format!("/servers/{s}/members")).await;
    assert_eq!(members.body.as_array().unwrap().len(), 1);
    assert_exact_error(
        &alice.api.delete(&format!("/admin/users/{}", bob.id)).await,
        404,
    );
}

#[tokio::test]
async fn an_admin_deletes_any_server() {
    let server = TestServer::start().await;
    let (alice, bob) = admin_and_user(&server).await;
    let s = bob.create_server("bob's").await;
    let res = alice.api.delete(&format!("/admin/servers/{s}")).await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert!(res.text.is_empty());
    assert_exact_error(&bob.api.get(&format!("/servers/{s}")).await, 404);
    let res = alice.api.delete(&format!("/admin/servers/{s}")).await;
    assert_exact_error(&res, 404);
    assert_eq!(res.body["error"], "Server not found");
    assert_eq!(alice.api.delete("/admin/servers/x").await.status, 400);
}

#[tokio::test]
async fn password_reset_is_single_use_and_ends_every_login() {
    let server = TestServer::start().await;
    let (alice, bob) = admin_and_user(&server).await;

    // forgot-password errors, in order.
    let res = alice
        .api
        .post("/auth/forgot-password", &json!({"email": "nope"}))
        .await;
    assert_exact_error(&res, 400);
    let res = alice
        .api
        .post(
            "/auth/forgot-password",
            &json!({"email": "Bob@example.com"}),
        )
        .await;
    assert_exact_error(&res, 404);
    assert_eq!(
        res.body["error"],
        "No user found with email: Bob@example.com"
    );
    assert_error(
        &alice.api.post("/auth/forgot-password", &json!({})).await,
        422,
    );

    let res = alice
        .api
        .post(
            "/auth/forgot-password",
            &json!({"email": "bob@example.com"}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_keys(
        &res.body,
        &["message", "token", "expires_in_seconds", "note"],
    );
    assert_eq!(res.body["message"], "Password reset token generated");
    assert_eq!(res.body["expires_in_seconds"], 3600);
    let token = res.body["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 43);

    let (mut v2, _, _) = server.identify_v2(&bob, "", None).await;
    let (mut v1, _) = server.connect(&bob.ws_query()).await;

    let reset = |password: &str| {
        let body = json!({"token": token, "new_password": password});
        let api = server.api();
        async move { api.post("/auth/reset-password", &body).await }
    };
    assert_exact_error(&reset("short").await, 400);
    assert_exact_error(&reset("password").await, 400);
    let res = server
        .api()
        .post(
            "/auth/reset-password",
            &json!({"token": "x", "new_password": "new-horse-4242"}),
        )
        .await;
    assert_exact_error(&res, 401);
    assert_eq!(res.body["error"], "Invalid or expired reset token");
    // Nothing so far touched bob's logins.
    assert_eq!(bob.api.get("/users/@me").await.status, 200);

    let (a, b) = tokio::join!(reset("new-horse-4242"), reset("other-horse-4242"));
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 401], "{} / {}", a.text, b.text);
    let winner = if a.status == 200 { &a } else { &b };
    assert_eq!(
        winner.body,
        json!({"message": "Password has been reset successfully"})
    );
    let new_password = if a.status == 200 {
        "new-horse-4242"
    } else {
        "other-horse-4242"
    };

    assert_eq!(v2.closed().await, Closed::Code(4009));
    assert_eq!(v1.closed().await, Closed::Code(1008));
    assert_exact_error(&bob.api.get("/users/@me").await, 401);
    assert_eq!(refresh_status(&server, &bob.refresh).await, 401);
    assert_eq!(login_status(&server, "bob", PASSWORD).await, 401);
    assert_eq!(login_status(&server, "bob", new_password).await, 200);
    assert_exact_error(&reset("third-horse-4242").await, 401);

    // bob's old access token is dead, for this route too.
    assert_exact_error(
        &bob.api
            .post(
                "/auth/forgot-password",
                &json!({"email": "alice@example.com"}),
            )
            .await,
        401,
    );
}

#[tokio::test]
async fn templates_are_listed_and_create_their_channels() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    assert_exact_error(&server.api().get("/server-templates").await, 401);
    let res = alice.api.get("/server-templates").await;
    assert_eq!(res.status, 200, "{}", res.text);
    let templates = res.body.as_array().unwrap();
    let names: Vec<_> = templates
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Community", "Gaming", "Study Group"]);
    assert_keys(
        &templates[0],
        &[
            "id",
            "name",
            "description",
            "category",
            "channels",
            "is_builtin",
            "created_at",
        ],
    );
    assert_keys(
        &templates[0]["channels"][0],
        &["name", "type", "category", "position"],
    );
    let study = &templates[2];
    assert_eq!(study["category"], "study");

    let res = alice
        .api
        .post(
            "/servers",
            &json!({"name": "Study", "template_id": study["id"]}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let id = res.body["id"].as_str().unwrap();
    let channels = alice.api.get(&format!("/servers/{id}/channels")).await.body;
    let got: Vec<_> = channels
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].clone(),
                c["type"].clone(),
                c["category"].clone(),
                c["position"].clone(),
            )
        })
        .collect();
    let want: Vec<_> = study["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].clone(),
                c["type"].clone(),
                c["category"].clone(),
                c["position"].clone(),
            )
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(got[3].0, "Study Room");
    // The owner can post in a templated channel straight away (the directory knows it).
    let first = channels[0]["id"].as_str().unwrap();
    let res = alice
        .api
        .post(
            &format!("/channels/{first}/messages"),
            &json!({"content": "hi"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);

    let unknown = uuid::Uuid::new_v4();
    let res = alice
        .api
        .post("/servers", &json!({"name": "Nope", "template_id": unknown}))
        .await;
    assert_exact_error(&res, 400);
    assert_eq!(res.body["error"], format!("Template {unknown} not found"));
    let mine = alice.api.get("/servers").await.body;
    assert_eq!(mine.as_array().unwrap().len(), 1, "nothing created");
}
