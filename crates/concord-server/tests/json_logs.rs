//! JSON logs an operator can follow: every REST request's line carries its request id
//! (the one echoed in `X-Request-Id`), and a gateway session's lines carry its session
//! id from start to end.

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use concord_testkit::TestServer;
use serde_json::Value;

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

impl Capture {
    fn lines(&self) -> Vec<Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
            .collect()
    }
}

#[tokio::test]
async fn requests_and_sessions_are_traceable_in_json_logs() {
    let capture = Capture::default();
    let writer = capture.clone();
    // The server's own format (`log_format = "json"` in the binary).
    tracing_subscriber::fmt()
        .json()
        .with_env_filter("concord_server=debug,concord_gateway=debug")
        .with_writer(move || writer.clone())
        .init();

    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let traced = server
        .api()
        .get_with_header("/health/live", "x-request-id", "probe-7")
        .await;
    assert_eq!(traced.status, 200);
    let untraced = alice.api.get("/users/@me").await;
    let given = untraced.headers["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let (gateway, _) = server.connect(&alice.ws_query()).await;
    gateway.close(1000).await;
    server.shutdown().await;

    let lines = capture.lines();
    let request_line = |id: &str| {
        lines.iter().find(|l| {
            l["fields"]["message"] == "request"
                && l["span"]["name"] == "request"
                && l["span"]["id"] == id
        })
    };
    let line = request_line("probe-7").expect("the client's request id on its line");
    assert_eq!(line["span"]["route"], "/health/live");
    assert_eq!(line["fields"]["status"], 200);
    let line = request_line(&given).expect("a generated request id on its line");
    assert_eq!(line["span"]["route"], "/users/@me");

    let of_session = |message: &str| {
        lines
            .iter()
            .find(|l| l["fields"]["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} line"))
    };
    let started = of_session("gateway session started");
    let ended = of_session("gateway session ended");
    assert!(started["fields"]["session"].is_u64(), "{started}");
    assert_eq!(started["fields"]["session"], ended["fields"]["session"]);
    assert_eq!(started["fields"]["user"], alice.id.as_str());
}
