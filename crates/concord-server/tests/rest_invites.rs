//! Server invites over real HTTP and WebSocket (`rest.md` §7.14): every success shape
//! and error row in the contract's order, the invite events reaching only members who
//! hold CREATE_INVITES (`gateway.md` D16), accepting (atomic with its use count, bans
//! and membership respected), and invite-only registration (R14).

mod moderation_support;

use concord_protocol::{Invite, InviteId, ServerId, Status, Timestamp, UserId};
use concord_server::{auth::TokenType, config::RegistrationMode, perms::Permissions};
use concord_store::NewUser;
use concord_testkit::{
    TestServer, TestUser, assert_error, assert_exact_error, assert_keys, str_of,
};
use moderation_support::{expect_message, grant, next};
use serde_json::{Value, json};

const INVITE_KEYS: &[&str] = &[
    "id",
    "server_id",
    "code",
    "created_by",
    "max_uses",
    "uses",
    "expires_at",
    "created_at",
];

fn ts(value: &Value) -> Timestamp {
    serde_json::from_value(value.clone()).expect("timestamp")
}

fn random_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// An invite written straight to the store (for states REST cannot make: expired).
async fn stored_invite(
    server: &TestServer,
    server_id: &str,
    code: &str,
    max_uses: Option<i64>,
    expires_at: Option<Timestamp>,
) {
    let invite = Invite {
        id: InviteId::new(),
        server_id: server_id.parse::<ServerId>().unwrap(),
        code: code.to_owned(),
        created_by: None,
        max_uses,
        uses: 0,
        expires_at,
        created_at: Timestamp::now(),
    };
    server
        .state
        .store
        .create_invite(&invite, None)
        .await
        .unwrap();
}

#[tokio::test]
async fn invites_are_managed_by_holders_of_create_invites_and_only_they_see_the_events() {
    let server = TestServer::start().await;
    let (alice, bob, carol, dave) = (
        server.user("alice").await,
        server.user("bob").await,
        server.user("carol").await,
        server.user("dave").await,
    );
    let hall = alice.create_server("hall").await;
    let general = alice.create_channel(&hall, "general", "text").await;
    let other = dave.create_server("other").await;
    bob.join(&hall).await;
    carol.join(&hall).await;
    grant(&server, &hall, &bob, Permissions::CREATE_INVITES.0).await;
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let (mut carol_gw, _) = server.connect(&carol.ws_query()).await;
    let invites = format!("/servers/{hall}/invites");

    // Errors, in the contract's order.
    assert_exact_error(&dave.api.get(&invites).await, 404);
    assert_exact_error(
        &bob.api
            .get(&format!("/servers/{}/invites", random_id()))
            .await,
        404,
    );
    assert_exact_error(&carol.api.get(&invites).await, 403);
    assert_exact_error(&carol.api.post(&invites, &json!({})).await, 403);
    assert_exact_error(&dave.api.post(&invites, &json!({})).await, 404);
    assert_error(&bob.api.post(&invites, &json!({"uses": 3})).await, 422);
    assert_error(
        &bob.api.post(&invites, &json!({"max_uses": "3"})).await,
        422,
    );
    // The body is read before anything else: even a non-member gets 422 for it.
    assert_error(&dave.api.post(&invites, &json!({"nope": 1})).await, 422);
    for bad in [
        json!({"max_uses": 0}),
        json!({"max_uses": -1}),
        json!({"expires_in_hours": 0}),
        json!({"expires_in_hours": 721}),
    ] {
        assert_exact_error(&bob.api.post(&invites, &bad).await, 400);
    }
    assert_error(&bob.api.raw("POST", &invites, None, "").await, 415);
    assert_error(
        &bob.api
            .raw("POST", &invites, Some("application/json"), "")
            .await,
        400,
    );

    // Create: bob holds the bit.
    let res = bob.api.post(&invites, &json!({})).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let first = res.body.clone();
    assert_keys(&first, INVITE_KEYS);
    let code = str_of(&first["code"]);
    assert_eq!(code.len(), 8);
    assert!(code.chars().all(|c| c.is_ascii_alphanumeric()), "{code}");
    assert_eq!(first["server_id"], hall.as_str());
    assert_eq!(first["created_by"], bob.id.as_str());
    assert_eq!(first["uses"], 0);
    assert_eq!(first["max_uses"], Value::Null);
    assert_eq!(first["expires_at"], Value::Null);
    // The event is the invite itself, to alice (owner) and bob (the bit).
    let (t, d) = next(&mut alice_gw).await;
    assert_eq!((t.as_str(), &d), ("INVITE_CREATE", &first));
    let (t, d) = next(&mut bob_gw).await;
    assert_eq!((t.as_str(), &d), ("INVITE_CREATE", &first));
    // Carol does not learn the code: the next thing she gets is a message.
    alice.post(&general, "after the first invite").await;
    expect_message(&mut carol_gw, "after the first invite").await;
    expect_message(&mut alice_gw, "after the first invite").await;
    expect_message(&mut bob_gw, "after the first invite").await;

    let res = alice
        .api
        .post(&invites, &json!({"max_uses": 2, "expires_in_hours": 3}))
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let second = res.body.clone();
    assert_eq!(second["max_uses"], 2);
    assert_eq!(second["created_by"], alice.id.as_str());
    assert_ne!(second["code"], first["code"]);
    assert_eq!(
        ts(&second["expires_at"]).as_micros() - ts(&second["created_at"]).as_micros(),
        3 * 3_600 * 1_000_000
    );
    assert_eq!(
        next(&mut bob_gw).await,
        ("INVITE_CREATE".to_owned(), second.clone())
    );
    assert_eq!(next(&mut alice_gw).await.0, "INVITE_CREATE");

    // List: newest first, the bit needed.
    let listed = bob.api.get(&invites).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.body, json!([second, first]));

    // Delete.
    let one = format!("{invites}/{}", str_of(&first["id"]));
    assert_exact_error(&carol.api.delete(&one).await, 403);
    assert_exact_error(&dave.api.delete(&one).await, 404);
    assert_exact_error(
        &bob.api.delete(&format!("{invites}/{}", random_id())).await,
        404,
    );
    // An invite of another server is not this server's.
    let foreign = dave
        .api
        .post(&format!("/servers/{other}/invites"), &json!({}))
        .await;
    assert_eq!(foreign.status, 201);
    assert_exact_error(
        &bob.api
            .delete(&format!("{invites}/{}", str_of(&foreign.body["id"])))
            .await,
        404,
    );
    let res = bob.api.delete(&one).await;
    assert_eq!(res.status, 204, "{}", res.text);
    let deleted = json!({"server_id": hall, "invite_id": first["id"]});
    assert_eq!(
        next(&mut alice_gw).await,
        ("INVITE_DELETE".to_owned(), deleted.clone())
    );
    assert_eq!(
        next(&mut bob_gw).await,
        ("INVITE_DELETE".to_owned(), deleted)
    );
    assert_exact_error(&bob.api.delete(&one).await, 404);
    alice.post(&general, "after the delete").await;
    expect_message(&mut carol_gw, "after the delete").await;
    assert_eq!(bob.api.get(&invites).await.body, json!([second]));
}

#[tokio::test]
async fn preview_and_accept_follow_the_contract_and_join_like_join_does() {
    let server = TestServer::start().await;
    let (alice, bob, carol, dave) = (
        server.user("alice").await,
        server.user("bob").await,
        server.user("carol").await,
        server.user("dave").await,
    );
    // A private server: only an invite gets anyone in.
    let hall = str_of(
        &alice
            .create_server_with(&json!({"name": "Hall", "icon_url": "https://example.com/h.png"}))
            .await["id"],
    );
    let general = alice.create_channel(&hall, "general", "text").await;
    let once = alice
        .api
        .post(&format!("/servers/{hall}/invites"), &json!({"max_uses": 1}))
        .await;
    let code = str_of(&once.body["code"]);
    stored_invite(
        &server,
        &hall,
        "Expired1",
        None,
        Some(Timestamp::from_micros(1)),
    )
    .await;
    stored_invite(&server, &hall, "Forever1", None, None).await;
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    let (mut alice_v2, _, _) = server.identify_v2(&alice, "", None).await;

    let preview = bob.api.get(&format!("/invites/{code}")).await;
    assert_eq!(preview.status, 200, "{}", preview.text);
    assert_eq!(
        preview.body,
        json!({
            "code": code,
            "server_name": "Hall",
            "server_icon_url": "https://example.com/h.png",
            "member_count": 1,
            "expires_at": null,
        })
    );
    // Codes are case-sensitive.
    assert_eq!(bob.api.get("/invites/Forever1").await.status, 200);
    assert_exact_error(&bob.api.get("/invites/forever1").await, 404);
    assert_exact_error(&bob.api.post_empty("/invites/FOREVER1/accept").await, 404);
    assert_exact_error(&bob.api.get("/invites/Expired1").await, 404);
    assert_exact_error(&bob.api.get("/invites/Nothing1").await, 404);

    // Errors, in the contract's order.
    assert_exact_error(&bob.api.post_empty("/invites/Nothing1/accept").await, 404);
    assert_exact_error(&bob.api.post_empty("/invites/Expired1/accept").await, 400);
    assert_exact_error(
        &alice
            .api
            .post_empty(&format!("/invites/{code}/accept"))
            .await,
        409,
    );

    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let res = bob.api.post_empty(&format!("/invites/{code}/accept")).await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_keys(&res.body, &["message", "server_id"]);
    assert!(res.body["message"].is_string());
    assert_eq!(res.body["server_id"], hall.as_str());
    assert_eq!(bob.api.get(&format!("/servers/{hall}")).await.status, 200);
    let listed = alice.api.get(&format!("/servers/{hall}/invites")).await;
    let used = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == code.as_str());
    assert_eq!(used.unwrap()["uses"], 1);
    // v2 learns the join; v1 gets no event for it (the message is the next frame).
    let (t, d) = next(&mut alice_v2).await;
    assert_eq!(t, "MEMBER_JOIN");
    assert_eq!(d["server_id"], hall.as_str());
    assert_eq!(d["user"]["id"], bob.id.as_str());
    alice.post(&general, "welcome bob").await;
    expect_message(&mut alice_gw, "welcome bob").await;
    // The new member's open session receives the server's events at once.
    expect_message(&mut bob_gw, "welcome bob").await;

    // Used up: preview 404, accept 400; an exhausted code is refused before a ban.
    assert_exact_error(&carol.api.get(&format!("/invites/{code}")).await, 404);
    assert_exact_error(
        &carol
            .api
            .post_empty(&format!("/invites/{code}/accept"))
            .await,
        400,
    );
    let ban = alice
        .api
        .post(
            &format!("/servers/{hall}/members/{}/ban", dave.id),
            &json!({}),
        )
        .await;
    assert_eq!(ban.status, 204, "{}", ban.text);
    assert_exact_error(
        &dave
            .api
            .post_empty(&format!("/invites/{code}/accept"))
            .await,
        400,
    );
    assert_exact_error(&dave.api.post_empty("/invites/Forever1/accept").await, 403);
    assert_exact_error(&bob.api.post_empty("/invites/Forever1/accept").await, 409);
    let res = carol.api.post_empty("/invites/Forever1/accept").await;
    assert_eq!(res.status, 201, "{}", res.text);
    // Neither a ban nor a conflict spent a use.
    let listed = alice.api.get(&format!("/servers/{hall}/invites")).await;
    let forever = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == "Forever1");
    assert_eq!(forever.unwrap()["uses"], 1);
    let members = alice.api.get(&format!("/servers/{hall}/members")).await;
    assert_eq!(members.body.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn concurrent_accepts_never_exceed_max_uses() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let hall = alice.create_server("hall").await;
    let res = alice
        .api
        .post(&format!("/servers/{hall}/invites"), &json!({"max_uses": 2}))
        .await;
    let code = str_of(&res.body["code"]);
    let mut users = Vec::new();
    for n in 0..8 {
        users.push(server.user(&format!("racer{n}")).await);
    }
    let path = format!("/invites/{code}/accept");
    let answers =
        futures_util::future::join_all(users.iter().map(|u| u.api.post_empty(&path))).await;
    let mut statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 201, 400, 400, 400, 400, 400, 400]);
    let members = alice.api.get(&format!("/servers/{hall}/members")).await;
    assert_eq!(members.body.as_array().unwrap().len(), 3);
    let listed = alice.api.get(&format!("/servers/{hall}/invites")).await;
    assert_eq!(listed.body[0]["uses"], 2);
}

/// A user made straight in the store, with an access token (in invite-only mode
/// nobody can register without a code, and codes need a server owner first).
async fn seeded_user(server: &TestServer, name: &str) -> TestUser {
    let now = Timestamp::now();
    let record = server
        .state
        .store
        .create_user(&NewUser {
            id: UserId::new(),
            username: name.to_owned(),
            email: None,
            password_hash: None,
            status: Status::Online,
            created_at: now,
            admin_if_first: true,
            is_bot: false,
        })
        .await
        .unwrap();
    let token = server
        .state
        .keys
        .issue(&record, TokenType::Access, now, None);
    TestUser {
        id: record.id.to_string(),
        username: name.to_owned(),
        api: server.api().bearer(&token),
        token,
        refresh: String::new(),
    }
}

#[tokio::test]
async fn invite_only_registration_spends_one_use_and_joins_nothing() {
    let server = TestServer::start_with(|c| c.registration = RegistrationMode::InviteOnly).await;
    let alice = seeded_user(&server, "alice").await;
    let hall = alice.create_server("hall").await;
    let res = alice
        .api
        .post(&format!("/servers/{hall}/invites"), &json!({"max_uses": 2}))
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let code = str_of(&res.body["code"]);
    stored_invite(
        &server,
        &hall,
        "Expired1",
        None,
        Some(Timestamp::from_micros(1)),
    )
    .await;
    let register = |name: &str, code: &str| {
        let body = json!({"username": name, "password": "correct-horse-42", "invite_code": code});
        let api = server.api();
        async move { api.post("/auth/register", &body).await }
    };
    let uses = || async {
        alice
            .api
            .get(&format!("/servers/{hall}/invites"))
            .await
            .body
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["code"] == code.as_str())
            .unwrap()["uses"]
            .clone()
    };

    let res = register("bob", &format!("  {code} ")).await;
    assert_eq!(
        res.status, 201,
        "surrounding blanks are trimmed: {}",
        res.text
    );
    let bob = TestUser::from_auth(&server, &res.body);
    assert_eq!(uses().await, 1);
    assert_eq!(
        bob.api.get("/servers").await.body,
        json!([]),
        "no server joined"
    );
    assert_eq!(bob.api.get(&format!("/servers/{hall}")).await.status, 404);

    // A taken name: 409, and the use is not spent.
    assert_exact_error(&register("bob", &code).await, 409);
    assert_eq!(uses().await, 1);
    stored_invite(&server, &hall, "Forever1", None, None).await;
    for bad in ["Nothing1", "Expired1", "forever1"] {
        assert_exact_error(&register("carol", bad).await, 400);
    }
    assert_eq!(register("carol", &code).await.status, 201);
    assert_eq!(uses().await, 2);
    assert_exact_error(&register("dave", &code).await, 400);
    assert_eq!(
        server.state.store.user_by_username("dave").await.unwrap(),
        None
    );
}
