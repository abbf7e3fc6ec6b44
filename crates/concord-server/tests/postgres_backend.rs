//! The whole server on PostgreSQL: the same REST and gateway behaviour as on SQLite,
//! and state that outlives a restart. The database server comes from
//! `CONCORD_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/…`); each
//! test gets a database of its own there.

use concord_testkit::{TestServer, fresh_postgres_url};
use serde_json::json;

#[tokio::test]
async fn rest_gateway_and_restart_on_postgres() {
    let url = fresh_postgres_url().await;
    let server = TestServer::start_with(|c| c.database_url = Some(url.clone())).await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let hall = alice.create_server("on postgres").await;
    let channel = alice.create_channel(&hall, "general", "text").await;
    bob.join(&hall).await;

    let (mut gw, ready) = server.connect(&bob.ws_query()).await;
    let servers = ready["servers"].as_array().expect("READY lists servers");
    assert!(
        servers.iter().any(|s| s["id"] == hall.as_str()),
        "bob's READY holds the server he joined: {ready}"
    );
    alice.post(&channel, "stored in postgres").await;
    let event = gw.next_event("MESSAGE_CREATE").await;
    assert_eq!(event["content"], "stored in postgres");

    // A taken username is the same 409 as on SQLite.
    let taken = server
        .api()
        .post(
            "/auth/register",
            &json!({"username": "alice", "password": "another password 1"}),
        )
        .await;
    assert_eq!(taken.status, 409, "{}", taken.text);

    // Everything is in the database, not in the process.
    drop(gw);
    let server = server.restart().await;
    let history = server
        .api()
        .bearer(&bob.token)
        .get(&format!("/channels/{channel}/messages"))
        .await;
    assert_eq!(history.status, 200, "{}", history.text);
    assert_eq!(
        history.body[0]["content"], "stored in postgres",
        "{}",
        history.text
    );
    server.shutdown().await;
}
