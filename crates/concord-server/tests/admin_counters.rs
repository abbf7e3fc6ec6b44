//! `GET /admin/counters`: the live counters behind the web client's admin page, for
//! instance admins only, read from the node's metrics registry.

use concord_testkit::{TestServer, assert_exact_error, assert_keys};
use serde_json::{Value, json};

const KEYS: &[&str] = &[
    "connections",
    "sessions",
    "sessions_detached",
    "events_published",
    "deliveries",
    "outbox_dropped",
    "slow_consumer_closes",
    "uptime_secs",
];

fn number(body: &Value, key: &str) -> i64 {
    body[key]
        .as_i64()
        .unwrap_or_else(|| panic!("{key} is not an integer in {body}"))
}

#[tokio::test]
async fn counters_are_for_admins_only() {
    let server = TestServer::start().await;
    // The first account registered is the instance admin.
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;

    let res = bob.api.get("/admin/counters").await;
    assert_exact_error(&res, 403);
    assert_eq!(res.body["error"], "Admin access required");
    assert_exact_error(&server.api().get("/admin/counters").await, 401);
    assert_exact_error(
        &server
            .api()
            .bearer("not-a-token")
            .get("/admin/counters")
            .await,
        401,
    );
    // The same route under /api.
    assert_exact_error(&bob.api.get("/api/admin/counters").await, 403);

    let res = alice.api.get("/admin/counters").await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_keys(&res.body, KEYS);
    server.shutdown().await;
}

#[tokio::test]
async fn counters_follow_connections_and_deliveries() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let space = alice.create_server("counted").await;
    let channel = alice.create_channel(&space, "general", "text").await;
    bob.join(&space).await;

    let before = alice.api.get("/admin/counters").await.body;
    assert_eq!(number(&before, "connections"), 0, "{before}");
    assert_eq!(number(&before, "sessions"), 0, "{before}");

    let (mut watcher, _) = server.connect(&bob.ws_query()).await;
    let during = alice.api.get("/admin/counters").await.body;
    assert_eq!(number(&during, "connections"), 1, "{during}");
    assert_eq!(number(&during, "sessions"), 1, "{during}");

    alice.post(&channel, "counted once").await;
    let message = watcher.next_event("MESSAGE_CREATE").await;
    assert_eq!(message["content"], json!("counted once"));
    let after = alice.api.get("/admin/counters").await.body;
    assert!(
        number(&after, "deliveries") > number(&during, "deliveries"),
        "a delivery to Bob's session is counted: {during} then {after}"
    );
    assert!(
        number(&after, "events_published") > number(&during, "events_published"),
        "{during} then {after}"
    );
    assert_eq!(number(&after, "outbox_dropped"), 0, "{after}");
    assert_eq!(number(&after, "slow_consumer_closes"), 0, "{after}");

    watcher.close(1000).await;
    server.shutdown().await;
}
