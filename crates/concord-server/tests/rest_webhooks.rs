//! Outbound webhooks over real HTTP (`rest-extras.md` §9): the six routes with their
//! success and error rows, the cap of 10 under racing creations (X14), the throttled
//! test route with its JSON body (X13, X14), and deliveries to a real receiver on
//! 127.0.0.1 (allow-listed for these tests): envelope, headers, signature, retries,
//! bookkeeping, what is not delivered, and the refused addresses and redirects (X12).

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, Uri, header},
    response::{IntoResponse, Response as HttpResponse},
};
use concord_testkit::{
    Response, TestServer, TestUser, WAIT, assert_exact_error, assert_keys, str_of,
};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::mpsc;

// ---- a receiver of deliveries ----

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .expect("a text header")
    }
}

#[derive(Clone)]
struct ReceiverState {
    seen: mpsc::UnboundedSender<Received>,
    /// Statuses to answer per path, in order; 200 once a path's are used up.
    plan: Arc<Mutex<HashMap<String, VecDeque<u16>>>>,
}

/// A small HTTP server on 127.0.0.1:0 that records every request. `/redirect`
/// answers 302 to `/landing`.
struct Receiver {
    addr: SocketAddr,
    seen: mpsc::UnboundedReceiver<Received>,
    plan: Arc<Mutex<HashMap<String, VecDeque<u16>>>>,
}

async fn record(
    State(state): State<ReceiverState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResponse {
    let path = uri.path().to_owned();
    let _ = state.seen.send(Received {
        path: path.clone(),
        headers,
        body,
    });
    if path == "/redirect" {
        return (StatusCode::FOUND, [(header::LOCATION, "/landing")]).into_response();
    }
    let status = state
        .plan
        .lock()
        .unwrap()
        .get_mut(&path)
        .and_then(VecDeque::pop_front)
        .unwrap_or(200);
    StatusCode::from_u16(status).unwrap().into_response()
}

impl Receiver {
    async fn start() -> Self {
        let (tx, seen) = mpsc::unbounded_channel();
        let plan = Arc::new(Mutex::new(HashMap::new()));
        let app = axum::Router::new()
            .fallback(record)
            .with_state(ReceiverState {
                seen: tx,
                plan: Arc::clone(&plan),
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, seen, plan }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers the next requests to `path` with these statuses.
    fn answer(&self, path: &str, statuses: &[u16]) {
        self.plan
            .lock()
            .unwrap()
            .insert(path.to_owned(), statuses.iter().copied().collect());
    }

    /// The next request (bounded wait).
    async fn next(&mut self) -> Received {
        tokio::time::timeout(WAIT, self.seen.recv())
            .await
            .expect("a delivery in time")
            .expect("receiver open")
    }

    /// Every request received so far, without waiting.
    fn drain(&mut self) -> Vec<Received> {
        let mut out = Vec::new();
        while let Ok(r) = self.seen.try_recv() {
            out.push(r);
        }
        out
    }
}

// ---- fixtures ----

/// A server that may deliver to 127.0.0.1, retrying quickly, with one worker (so
/// deliveries happen in the order they were queued).
async fn server_allowing_loopback() -> TestServer {
    TestServer::start_with(|c| {
        c.webhooks.allow_networks = vec!["127.0.0.1/32".parse().unwrap()];
        c.webhooks.retry_delays_ms = vec![20, 40];
        c.webhooks.workers = 1;
    })
    .await
}

/// alice owns "hall" (with channel "general"); bob is a plain member; carol holds a
/// role with ADMINISTRATOR; dave is not a member.
struct Hall {
    server: TestServer,
    alice: TestUser,
    bob: TestUser,
    carol: TestUser,
    dave: TestUser,
    hall: String,
    general: String,
}

async fn hall_on(server: TestServer) -> Hall {
    let (alice, bob, carol, dave) = (
        server.user("alice").await,
        server.user("bob").await,
        server.user("carol").await,
        server.user("dave").await,
    );
    let hall = alice.create_server("hall").await;
    bob.join(&hall).await;
    carol.join(&hall).await;
    let general = alice.create_channel(&hall, "general", "text").await;
    let role = alice
        .api
        .post(
            &format!("/servers/{hall}/roles"),
            &json!({"name": "admins", "permissions": 8192}),
        )
        .await;
    assert_eq!(role.status, 201, "{}", role.text);
    let res = alice
        .api
        .put(&format!(
            "/servers/{hall}/members/{}/roles/{}",
            carol.id,
            str_of(&role.body["id"])
        ))
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    Hall {
        server,
        alice,
        bob,
        carol,
        dave,
        hall,
        general,
    }
}

fn hooks_path(hall: &str) -> String {
    format!("/servers/{hall}/webhooks")
}

async fn create(user: &TestUser, hall: &str, body: &Value) -> Response {
    user.api.post(&hooks_path(hall), body).await
}

/// Creates a webhook (asserting 201); returns (webhook, secret).
async fn hook(user: &TestUser, hall: &str, url: &str, types: &[&str]) -> (Value, String) {
    let res = create(
        user,
        hall,
        &json!({"name": "hook", "url": url, "event_types": types}),
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.text);
    (res.body["webhook"].clone(), str_of(&res.body["secret"]))
}

async fn webhook_now(user: &TestUser, hall: &str, id: &str) -> Value {
    let res = user.api.get(&format!("{}/{id}", hooks_path(hall))).await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.body
}

/// Waits (bounded) until the webhook's row satisfies `done`; returns it.
async fn until(user: &TestUser, hall: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let now = webhook_now(user, hall, id).await;
        if done(&now) {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "webhook never reached the state: {now}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

const WEBHOOK_KEYS: [&str; 11] = [
    "id",
    "server_id",
    "created_by",
    "name",
    "url",
    "event_types",
    "enabled",
    "delivery_failures",
    "last_used_at",
    "created_at",
    "updated_at",
];

// ---- routes ----

#[tokio::test]
async fn owner_and_administrators_manage_webhooks() {
    let h = hall_on(TestServer::start().await).await;
    let res = create(
        &h.alice,
        &h.hall,
        &json!({"name": "  CI bot ", "url": "HTTPS://hooks.example.org/x", "event_types": ["message.created", "member.left"]}),
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.text);
    assert_keys(&res.body, &["webhook", "secret"]);
    let secret = str_of(&res.body["secret"]);
    assert_eq!(secret.len(), 64);
    assert!(
        secret
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    );
    let created = res.body["webhook"].clone();
    assert_keys(&created, &WEBHOOK_KEYS);
    assert_eq!(created["server_id"], json!(h.hall));
    assert_eq!(created["created_by"], json!(h.alice.id));
    assert_eq!(created["name"], json!("CI bot"));
    assert_eq!(created["url"], json!("HTTPS://hooks.example.org/x"));
    assert_eq!(
        created["event_types"],
        json!(["message.created", "member.left"])
    );
    assert_eq!(created["enabled"], json!(true));
    assert_eq!(created["delivery_failures"], json!(0));
    assert_eq!(created["last_used_at"], Value::Null);
    let id = str_of(&created["id"]);

    // carol (ADMINISTRATOR) creates a second; both list it, oldest first, no secrets.
    let (second, _) = hook(
        &h.carol,
        &h.hall,
        "http://hooks.example.org/2",
        &["message.deleted"],
    )
    .await;
    assert_eq!(second["created_by"], json!(h.carol.id));
    for user in [&h.alice, &h.carol] {
        let res = user.api.get(&hooks_path(&h.hall)).await;
        assert_eq!(res.status, 200, "{}", res.text);
        assert_keys(&res.body, &["webhooks"]);
        assert_eq!(res.body["webhooks"], json!([created, second]));
        assert!(!res.text.contains(&secret));
    }
    let one = webhook_now(&h.carol, &h.hall, &id).await;
    assert_eq!(one, created);

    // PATCH: the fields sent; null and absent leave the rest.
    let path = format!("{}/{id}", hooks_path(&h.hall));
    let res = h
        .carol
        .api
        .patch(&path, &json!({"enabled": false, "name": null}))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["enabled"], json!(false));
    assert_eq!(res.body["name"], json!("CI bot"));
    assert!(str_of(&res.body["updated_at"]) >= str_of(&created["updated_at"]));
    let res = h
        .alice
        .api
        .patch(
            &path,
            &json!({"name": " renamed ", "url": "http://hooks.example.org/y", "event_types": ["message.updated"], "enabled": true}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["name"], json!("renamed"));
    assert_eq!(res.body["url"], json!("http://hooks.example.org/y"));
    assert_eq!(res.body["event_types"], json!(["message.updated"]));
    assert_eq!(res.body["enabled"], json!(true));
    let res = h.alice.api.patch(&path, &json!({})).await;
    assert_eq!(res.status, 200, "{}", res.text);

    // DELETE once.
    let res = h.carol.api.delete(&path).await;
    assert_eq!(res.status, 204, "{}", res.text);
    let res = h.carol.api.delete(&path).await;
    assert_exact_error(&res, 404);
    assert_eq!(res.body["error"], json!("Webhook not found"));
    let res = h.alice.api.get(&hooks_path(&h.hall)).await;
    assert_eq!(res.body["webhooks"], json!([second]));
}

#[tokio::test]
async fn route_refusals_come_in_order_with_their_texts() {
    let h = hall_on(TestServer::start().await).await;
    let (existing, _) = hook(
        &h.alice,
        &h.hall,
        "https://hooks.example.org/",
        &["message.created"],
    )
    .await;
    let id = str_of(&existing["id"]);
    let list = hooks_path(&h.hall);
    let one = format!("{list}/{id}");
    let test = format!("{one}/test");
    let valid = json!({"name": "n", "url": "https://hooks.example.org/", "event_types": ["message.created"]});

    // 401 without credentials, on every route.
    let anonymous = h.server.api();
    for res in [
        anonymous.get(&list).await,
        anonymous.post(&list, &valid).await,
        anonymous.get(&one).await,
        anonymous.patch(&one, &json!({})).await,
        anonymous.delete(&one).await,
        anonymous.post_empty(&test).await,
    ] {
        assert_exact_error(&res, 401);
    }
    // 400 for a path id that does not parse.
    let res = h.alice.api.get("/servers/nope/webhooks").await;
    assert_eq!(res.status, 400, "{}", res.text);
    let res = h.alice.api.get(&format!("{list}/nope")).await;
    assert_eq!(res.status, 400, "{}", res.text);

    // 404 Server not found: a missing server, and for non-members.
    let missing = format!("/servers/{}/webhooks", uuid::Uuid::new_v4());
    for res in [
        h.alice.api.get(&missing).await,
        h.dave.api.get(&list).await,
        h.dave.api.post(&list, &valid).await,
        h.dave.api.get(&one).await,
        h.dave.api.patch(&one, &json!({})).await,
        h.dave.api.delete(&one).await,
        h.dave.api.post_empty(&test).await,
    ] {
        assert_exact_error(&res, 404);
        assert_eq!(res.body["error"], json!("Server not found"));
    }
    // 403 for a member without ADMINISTRATOR.
    for res in [
        h.bob.api.get(&list).await,
        h.bob.api.post(&list, &valid).await,
        h.bob.api.get(&one).await,
        h.bob.api.patch(&one, &json!({})).await,
        h.bob.api.delete(&one).await,
        h.bob.api.post_empty(&test).await,
    ] {
        assert_exact_error(&res, 403);
        assert_eq!(
            res.body["error"],
            json!("You need the Administrator permission to manage webhooks")
        );
    }
    // Nothing changed meanwhile (positive control: the owner still sees it as it was).
    assert_eq!(webhook_now(&h.alice, &h.hall, &id).await, existing);

    // 422 for a missing field, before the permission check.
    for body in [
        json!({"url": "https://x.org/", "event_types": ["message.created"]}),
        json!({"name": "n", "event_types": ["message.created"]}),
        json!({"name": "n", "url": "https://x.org/"}),
    ] {
        let res = h.alice.api.post(&list, &body).await;
        assert_eq!(res.status, 422, "{body}: {}", res.text);
        let res = h.bob.api.post(&list, &body).await;
        assert_eq!(res.status, 422, "{body}: {}", res.text);
    }

    // 400s of the creation rules, in order.
    let long_url = format!("https://x.org/{}", "a".repeat(2000));
    let unknown = "Unknown event type 'message.pinned'. Valid types: message.created, \
                   message.updated, message.deleted, member.joined, member.left";
    let cases = [
        (
            json!({"name": "   ", "url": "ftp://x", "event_types": []}),
            "Webhook name must be 1–100 characters",
        ),
        (
            json!({"name": "n".repeat(101), "url": "https://x.org/", "event_types": ["message.created"]}),
            "Webhook name must be 1–100 characters",
        ),
        (
            json!({"name": "n", "url": "ftp://x.org/", "event_types": []}),
            "Webhook URL must use http:// or https://",
        ),
        (
            json!({"name": "n", "url": "x.org", "event_types": ["message.created"]}),
            "Webhook URL must use http:// or https://",
        ),
        (
            json!({"name": "n", "url": long_url, "event_types": []}),
            "Webhook URL must be ≤2000 characters",
        ),
        (
            json!({"name": "n", "url": "https://x.org/", "event_types": []}),
            "event_types must contain at least one event",
        ),
        (
            json!({"name": "n", "url": "https://x.org/", "event_types": ["message.created", "message.pinned"]}),
            unknown,
        ),
    ];
    for (body, text) in &cases {
        let res = h.alice.api.post(&list, body).await;
        assert_exact_error(&res, 400);
        assert_eq!(res.body["error"], json!(text), "{body}");
        // PATCH applies the same rules to the fields it gets.
        let res = h.alice.api.patch(&one, body).await;
        assert_exact_error(&res, 400);
        assert_eq!(res.body["error"], json!(text), "{body}");
    }
    let res = h.alice.api.patch(&one, &json!({"enabled": "yes"})).await;
    assert_eq!(res.status, 422, "{}", res.text);
    assert_eq!(webhook_now(&h.alice, &h.hall, &id).await, existing);

    // 404 Webhook not found: unknown id (before the body's rules), another server's.
    let other_hall = h.alice.create_server("other").await;
    let (foreign, _) = hook(
        &h.alice,
        &other_hall,
        "https://x.org/",
        &["message.created"],
    )
    .await;
    for target in [uuid::Uuid::new_v4().to_string(), str_of(&foreign["id"])] {
        let path = format!("{list}/{target}");
        for res in [
            h.alice.api.get(&path).await,
            h.alice.api.patch(&path, &json!({"name": ""})).await,
            h.alice.api.delete(&path).await,
            h.alice.api.post_empty(&format!("{path}/test")).await,
        ] {
            assert_exact_error(&res, 404);
            assert_eq!(res.body["error"], json!("Webhook not found"));
        }
    }
    // The other server's webhook is still there (positive control).
    let res = h.alice.api.get(&hooks_path(&other_hall)).await;
    assert_eq!(res.body["webhooks"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn ten_webhooks_per_server_even_when_created_at_once() {
    let h = hall_on(TestServer::start().await).await;
    for n in 0..3 {
        hook(
            &h.alice,
            &h.hall,
            &format!("https://x.org/{n}"),
            &["message.created"],
        )
        .await;
    }
    let bodies: Vec<Value> = (0..12)
        .map(|n| json!({"name": format!("r{n}"), "url": "https://x.org/", "event_types": ["message.created"]}))
        .collect();
    let racers = bodies.iter().map(|body| create(&h.alice, &h.hall, body));
    let answers = futures_util::future::join_all(racers).await;
    let created = answers.iter().filter(|r| r.status == 201).count();
    let refused: Vec<&Response> = answers.iter().filter(|r| r.status != 201).collect();
    assert_eq!(created, 7, "{answers:?}");
    assert_eq!(refused.len(), 5);
    for res in refused {
        assert_exact_error(res, 400);
        assert_eq!(
            res.body["error"],
            json!("Servers are limited to 10 webhooks")
        );
    }
    let res = h.alice.api.get(&hooks_path(&h.hall)).await;
    assert_eq!(res.body["webhooks"].as_array().unwrap().len(), 10);
    // Another server counts its own.
    let other = h.alice.create_server("other").await;
    hook(&h.alice, &other, "https://x.org/", &["message.created"]).await;
}

#[tokio::test]
async fn the_test_route_queues_a_ping_and_is_throttled_per_webhook() {
    let mut receiver = Receiver::start().await;
    let h = hall_on(server_allowing_loopback().await).await;
    let (first, secret) = hook(
        &h.alice,
        &h.hall,
        &receiver.url("/ping"),
        &["message.deleted"],
    )
    .await;
    let (second, _) = hook(
        &h.alice,
        &h.hall,
        &receiver.url("/other"),
        &["message.deleted"],
    )
    .await;
    // A disabled webhook is pinged too.
    let path = format!("{}/{}", hooks_path(&h.hall), str_of(&first["id"]));
    let res = h.alice.api.patch(&path, &json!({"enabled": false})).await;
    assert_eq!(res.status, 200, "{}", res.text);

    let res = h.carol.api.post_empty(&format!("{path}/test")).await;
    assert_eq!(res.status, 202, "{}", res.text);
    assert_eq!(res.body, json!({"queued": true}));
    let ping = receiver.next().await;
    assert_eq!(ping.path, "/ping");
    assert_eq!(
        ping.header("x-together-signature-256"),
        sign(&secret, &ping.body)
    );
    assert_eq!(ping.header("x-together-hook-id"), str_of(&first["id"]));
    assert_eq!(ping.header("x-together-delivery-attempt"), "1");
    let body = ping.json();
    assert_keys(&body, &["event", "server_id", "data"]);
    assert_eq!(body["event"], json!("ping"));
    assert_eq!(body["server_id"], json!(h.hall));
    assert_keys(&body["data"], &["webhook_id", "server_name", "message"]);
    assert_eq!(body["data"]["webhook_id"], first["id"]);
    assert_eq!(body["data"]["server_name"], json!("hall"));

    // At once again: 429 with the rate-limit headers; another webhook is not held up.
    let res = h.alice.api.post_empty(&format!("{path}/test")).await;
    assert_exact_error(&res, 429);
    let retry = res.headers.get("retry-after").expect("retry-after");
    let secs: u64 = retry.to_str().unwrap().parse().unwrap();
    assert!((1..=5).contains(&secs), "{secs}");
    assert!(res.headers.get("x-ratelimit-after").is_some());
    let other = format!("{}/{}/test", hooks_path(&h.hall), str_of(&second["id"]));
    let res = h.alice.api.post_empty(&other).await;
    assert_eq!(res.status, 202, "{}", res.text);
    assert_eq!(receiver.next().await.path, "/other");
    // Only the one ping reached /ping.
    assert!(receiver.drain().iter().all(|r| r.path != "/ping"));
}

// ---- deliveries ----

#[tokio::test]
async fn message_events_are_delivered_signed_in_the_envelope() {
    let mut receiver = Receiver::start().await;
    let h = hall_on(server_allowing_loopback().await).await;
    let (created, secret) = hook(
        &h.alice,
        &h.hall,
        &receiver.url("/hook"),
        &["message.created", "message.updated", "message.deleted"],
    )
    .await;
    let hook_id = str_of(&created["id"]);

    let message = h.bob.post(&h.general, "hello hooks").await;
    let got = receiver.next().await;
    assert_eq!(got.path, "/hook");
    assert_eq!(got.header("content-type"), "application/json");
    assert_eq!(got.header("x-together-hook-id"), hook_id);
    assert_eq!(got.header("x-together-delivery-attempt"), "1");
    assert_eq!(
        got.header("x-together-signature-256"),
        sign(&secret, &got.body)
    );
    assert_ne!(
        got.header("x-together-signature-256"),
        sign(&"0".repeat(64), &got.body),
        "the signature depends on the secret"
    );
    let body = got.json();
    assert_keys(&body, &["event", "server_id", "data"]);
    assert_eq!(body["event"], json!("message.created"));
    assert_eq!(body["server_id"], json!(h.hall));
    assert_eq!(body["data"], message, "data is the MESSAGE_CREATE message");

    let id = str_of(&message["id"]);
    let res = h
        .bob
        .api
        .patch(&format!("/messages/{id}"), &json!({"content": "edited"}))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let got = receiver.next().await;
    let body = got.json();
    assert_eq!(body["event"], json!("message.updated"));
    assert_eq!(body["data"]["id"], json!(id));
    assert_eq!(body["data"]["content"], json!("edited"));
    assert!(body["data"]["edited_at"].is_string());
    assert_eq!(
        got.header("x-together-signature-256"),
        sign(&secret, &got.body)
    );

    let res = h.alice.api.delete(&format!("/messages/{id}")).await;
    assert_eq!(res.status, 204, "{}", res.text);
    let got = receiver.next().await;
    let body = got.json();
    assert_eq!(body["event"], json!("message.deleted"));
    assert_eq!(body["data"], json!({"id": id, "channel_id": h.general}));

    // Bookkeeping: success keeps failures at 0 and sets last_used_at.
    let now = until(&h.alice, &h.hall, &hook_id, |w| {
        w["last_used_at"].is_string()
    })
    .await;
    assert_eq!(now["delivery_failures"], json!(0));
}

#[tokio::test]
async fn failed_attempts_are_retried_and_counted() {
    let mut receiver = Receiver::start().await;
    let h = hall_on(server_allowing_loopback().await).await;
    receiver.answer("/flaky", &[500, 503]);
    receiver.answer("/down", &[500, 500, 500]);
    let (down, _) = hook(
        &h.alice,
        &h.hall,
        &receiver.url("/down"),
        &["message.created"],
    )
    .await;
    let (flaky, secret) = hook(
        &h.alice,
        &h.hall,
        &receiver.url("/flaky"),
        &["message.created"],
    )
    .await;

    h.bob.post(&h.general, "one").await;
    // One worker: /down's three attempts, then /flaky's three.
    let mut seen = Vec::new();
    for _ in 0..6 {
        seen.push(receiver.next().await);
    }
    let attempts = |path: &str| -> Vec<String> {
        seen.iter()
            .filter(|r| r.path == path)
            .map(|r| r.header("x-together-delivery-attempt").to_owned())
            .collect()
    };
    assert_eq!(attempts("/down"), ["1", "2", "3"]);
    assert_eq!(attempts("/flaky"), ["1", "2", "3"]);
    for r in &seen {
        // Every attempt carries the same body and a valid signature.
        assert_eq!(r.body, seen[0].body);
        if r.path == "/flaky" {
            assert_eq!(r.header("x-together-signature-256"), sign(&secret, &r.body));
        }
    }
    let down = until(&h.alice, &h.hall, &str_of(&down["id"]), |w| {
        w["delivery_failures"] == json!(1)
    })
    .await;
    assert_eq!(down["last_used_at"], Value::Null);
    let flaky = until(&h.alice, &h.hall, &str_of(&flaky["id"]), |w| {
        w["last_used_at"].is_string()
    })
    .await;
    assert_eq!(flaky["delivery_failures"], json!(0));

    // A later success resets the count.
    h.bob.post(&h.general, "two").await;
    until(&h.alice, &h.hall, &str_of(&down["id"]), |w| {
        w["delivery_failures"] == json!(0) && w["last_used_at"].is_string()
    })
    .await;
}

#[tokio::test]
async fn disabled_unsubscribed_and_thread_cases_send_nothing_private_channels_do() {
    let mut receiver = Receiver::start().await;
    let h = hall_on(server_allowing_loopback().await).await;
    let (_created, _) = hook(
        &h.alice,
        &h.hall,
        &receiver.url("/created"),
        &["message.created"],
    )
    .await;
    let (disabled, _) = hook(
        &h.alice,
        &h.hall,
        &receiver.url("/disabled"),
        &["message.created"],
    )
    .await;
    let res = h
        .alice
        .api
        .patch(
            &format!("{}/{}", hooks_path(&h.hall), str_of(&disabled["id"])),
            &json!({"enabled": false}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    hook(
        &h.alice,
        &h.hall,
        &receiver.url("/deleted"),
        &["message.deleted", "member.joined"],
    )
    .await;

    // A message in a channel bob may not view still fires (the webhook is the server's).
    let private = h.alice.create_channel(&h.hall, "staff", "text").await;
    h.server.deny(&private, &h.bob, 1).await;
    let message = h.alice.post(&private, "staff only").await;
    let got = receiver.next().await;
    assert_eq!(got.path, "/created");
    assert_eq!(got.json()["data"]["id"], message["id"]);

    // Joining fires nothing (member.joined is never sent).
    let erin = h.server.user("erin").await;
    erin.join(&h.hall).await;

    // A thread reply fires nothing either.
    let parent = h.alice.post(&h.general, "parent").await;
    assert_eq!(receiver.next().await.path, "/created");
    let res = h
        .alice
        .api
        .post(
            &format!(
                "/channels/{}/messages/{}/thread",
                h.general,
                str_of(&parent["id"])
            ),
            &json!({"content": "in thread"}),
        )
        .await;
    assert!(res.status == 201 || res.status == 200, "{}", res.text);

    // The sentinel: a deletion, queued after all of the above on the one worker.
    let res = h
        .alice
        .api
        .delete(&format!("/messages/{}", str_of(&message["id"])))
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    let got = receiver.next().await;
    assert_eq!(got.path, "/deleted");
    assert_eq!(got.json()["event"], json!("message.deleted"));
    let rest = receiver.drain();
    assert!(rest.is_empty(), "nothing else was delivered: {rest:?}");

    // Enabling the webhook again makes it fire (positive control for "disabled").
    let res = h
        .alice
        .api
        .patch(
            &format!("{}/{}", hooks_path(&h.hall), str_of(&disabled["id"])),
            &json!({"enabled": true}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    h.bob.post(&h.general, "now both").await;
    let mut paths = vec![receiver.next().await.path, receiver.next().await.path];
    paths.sort();
    assert_eq!(paths, ["/created", "/disabled"]);
}

#[tokio::test]
async fn internal_addresses_are_refused_at_send_time_unless_allowed() {
    let mut receiver = Receiver::start().await;
    let port = receiver.addr.port();
    // Default configuration: no allow-list.
    let h = hall_on(
        TestServer::start_with(|c| {
            c.webhooks.retry_delays_ms = vec![10, 10];
        })
        .await,
    )
    .await;
    let urls = [
        format!("http://127.0.0.1:{port}/loopback"),
        "http://10.0.0.1/private".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        format!("http://[::1]:{port}/v6"),
        format!("http://[::ffff:127.0.0.1]:{port}/mapped"),
        format!("http://localhost:{port}/named"),
    ];
    let mut ids = Vec::new();
    for url in &urls {
        let (created, _) = hook(&h.alice, &h.hall, url, &["message.created"]).await;
        ids.push(str_of(&created["id"]));
    }
    h.bob.post(&h.general, "hi").await;
    for id in &ids {
        let now = until(&h.alice, &h.hall, id, |w| {
            w["delivery_failures"] == json!(1)
        })
        .await;
        assert_eq!(now["last_used_at"], Value::Null);
    }
    let metrics = &h.server.state.metrics;
    assert_eq!(metrics.webhook_count("refused"), urls.len() as u64);
    assert_eq!(metrics.webhook_count("delivered"), 0);
    assert!(
        receiver.drain().is_empty(),
        "the receiver was never reached"
    );

    // Positive control: the same receiver, allow-listed, is reached.
    let allowed = hall_on(server_allowing_loopback().await).await;
    let (created, _) = hook(
        &allowed.alice,
        &allowed.hall,
        &format!("http://127.0.0.1:{port}/loopback"),
        &["message.created"],
    )
    .await;
    allowed.bob.post(&allowed.general, "hi").await;
    assert_eq!(receiver.next().await.path, "/loopback");
    until(
        &allowed.alice,
        &allowed.hall,
        &str_of(&created["id"]),
        |w| w["last_used_at"].is_string(),
    )
    .await;
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let mut receiver = Receiver::start().await;
    let h = hall_on(server_allowing_loopback().await).await;
    let (created, _) = hook(
        &h.alice,
        &h.hall,
        &receiver.url("/redirect"),
        &["message.created"],
    )
    .await;
    h.bob.post(&h.general, "hi").await;
    let now = until(&h.alice, &h.hall, &str_of(&created["id"]), |w| {
        w["delivery_failures"] == json!(1)
    })
    .await;
    assert_eq!(now["last_used_at"], Value::Null);
    // Every attempt stopped at the 302: three requests to /redirect, none to /landing.
    let seen: Vec<String> = receiver.drain().into_iter().map(|r| r.path).collect();
    assert_eq!(seen, ["/redirect", "/redirect", "/redirect"]);
    assert_eq!(h.server.state.metrics.webhook_count("failed"), 1);
}

/// How many times the store listed a server's webhooks (the delivery cache's fills).
fn webhook_reads(server: &TestServer) -> u64 {
    let text = server.state.metrics.render();
    text.lines()
        .find(|l| {
            l.starts_with("concord_db_operation_duration_seconds_count")
                && l.contains("operation=\"webhooks\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0, |n| n.parse().expect("a count"))
}

#[tokio::test]
async fn the_webhook_list_is_read_once_per_server_until_it_changes() {
    let mut receiver = Receiver::start().await;
    let h = hall_on(server_allowing_loopback().await).await;
    assert_eq!(webhook_reads(&h.server), 0);
    for n in 0..3 {
        h.bob.post(&h.general, &format!("no hooks {n}")).await;
    }
    assert_eq!(webhook_reads(&h.server), 1, "one read for three messages");

    // A change through the routes drops the cached answer: the next message reads
    // again, and the new webhook gets it.
    hook(
        &h.alice,
        &h.hall,
        &receiver.url("/hook"),
        &["message.created"],
    )
    .await;
    h.bob.post(&h.general, "first with a hook").await;
    assert_eq!(receiver.next().await.path, "/hook");
    h.bob.post(&h.general, "second with a hook").await;
    assert_eq!(receiver.next().await.path, "/hook");
    assert_eq!(webhook_reads(&h.server), 2);
}

#[tokio::test]
async fn a_message_automod_takes_down_as_spam_never_reaches_webhooks() {
    let mut receiver = Receiver::start().await;
    let h = hall_on(server_allowing_loopback().await).await;
    hook(
        &h.alice,
        &h.hall,
        &receiver.url("/events"),
        &["message.created", "message.deleted"],
    )
    .await;
    let res = h
        .alice
        .api
        .patch(
            &format!("/servers/{}/automod", h.hall),
            &json!({
                "enabled": true,
                "spam_enabled": true,
                "spam_max_messages": 2,
                "spam_window_secs": 60,
                "spam_action": "delete",
            }),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);

    // Positive control: bob's first two messages are within the limit and fire.
    let first = h.bob.post(&h.general, "one").await;
    let second = h.bob.post(&h.general, "two").await;
    for expected in [&first, &second] {
        let got = receiver.next().await;
        assert_eq!(got.json()["event"], "message.created");
        assert_eq!(got.json()["data"]["id"], expected["id"]);
    }

    // The third is posted (201) and taken down by automod at once: no created, no
    // deleted delivery for it.
    let third = h.bob.post(&h.general, "three").await;
    let listed = h
        .alice
        .api
        .get(&format!("/channels/{}/messages", h.general))
        .await;
    assert!(
        listed
            .body
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["id"] != third["id"]),
        "automod removed the third message: {}",
        listed.text
    );

    // The sentinel, queued after the third on the one worker: the owner's message
    // (automod never touches the owner) is the next delivery.
    let sentinel = h.alice.post(&h.general, "sentinel").await;
    let got = receiver.next().await;
    assert_eq!(got.json()["event"], "message.created");
    assert_eq!(got.json()["data"]["id"], sentinel["id"]);
    let rest = receiver.drain();
    assert!(rest.is_empty(), "nothing else was delivered: {rest:?}");
}
