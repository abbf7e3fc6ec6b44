//! Tokens never appear in logs: with every target at TRACE, a gateway upgrade with
//! `?token=` and `?bot_token=`, REST calls with both authorization schemes, and failed
//! attempts leave no trace of any credential in the captured output.

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use concord_testkit::TestServer;
use serde_json::json;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn credentials_never_reach_the_logs() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        // Everything at TRACE except the test's own client side, which logs the
        // request line it sends (the server never sees those log lines).
        .with_env_filter(
            "trace,tungstenite::handshake::client=off,reqwest=off,hyper_util::client=off",
        )
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bot = alice.api.post("/bots", &json!({"name": "Logger"})).await;
    let bot_token = bot.body["token"].as_str().unwrap().to_string();
    let (gw, _) = server.connect(&alice.ws_query()).await;
    gw.close(1000).await;
    let (gw, _) = server.connect(&format!("bot_token={bot_token}")).await;
    gw.close(1000).await;
    let _ = server.connect_raw(&format!("token={}x", alice.token)).await;
    server.api().bot(&bot_token).get("/users/@me").await;
    alice.api.get("/users/@me").await;
    alice
        .api
        .post("/auth/refresh", &json!({"refresh_token": alice.refresh}))
        .await;
    server.shutdown().await;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("/ws"),
        "the capture works: requests are logged"
    );
    for secret in [&alice.token, &alice.refresh, &bot_token] {
        let leaks: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains(secret.as_str()))
            .collect();
        assert!(
            leaks.is_empty(),
            "a credential leaked into the logs: {leaks:#?}"
        );
    }
    // Not even the signature part of a JWT.
    let signature = alice.token.rsplit('.').next().unwrap();
    assert!(!logs.contains(signature));
    assert!(!logs.contains("correct-horse-42"));
}
