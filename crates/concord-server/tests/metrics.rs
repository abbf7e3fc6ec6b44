//! `GET /metrics` over real sockets: what real traffic leaves in it (events published
//! and delivered by name, sessions and sockets by protocol, REST requests by route
//! pattern, store operations), and who may read it (loopback by default, a trusted
//! proxy's forwarded client judged as that client, the bearer token from anywhere).

use concord_testkit::{Response, TestServer};
use serde_json::json;

/// The value of the sample `name{labels}` (written exactly as the server writes it).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.parse().ok()
    })
}

fn value(metrics: &Response, series: &str) -> f64 {
    sample(&metrics.text, series)
        .unwrap_or_else(|| panic!("{series} missing from:\n{}", metrics.text))
}

#[tokio::test]
async fn real_traffic_shows_in_the_metrics() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let hall = alice.create_server("hall").await;
    let general = alice.create_channel(&hall, "general", "text").await;
    bob.join(&hall).await;

    // Bob on both protocols; Alice posts once.
    let (mut v1, _) = server.connect(&bob.ws_query()).await;
    let (mut v2, _, _) = server.identify_v2(&bob, "", None).await;
    alice.post(&general, "hello").await;
    assert_eq!(v1.next_non_presence().await["t"], "MESSAGE_CREATE");
    assert_eq!(v2.next_non_presence().await["t"], "MESSAGE_CREATE");
    // The same route under `/` and `/api` is one series.
    let path = format!("/channels/{general}/messages");
    assert_eq!(alice.api.get(&path).await.status, 200);
    assert_eq!(alice.api.get(&format!("/api{path}")).await.status, 200);
    assert_eq!(alice.api.get("/servers/not-an-id").await.status, 400);
    assert_eq!(server.api().get("/no/such/route/42").await.status, 404);

    let metrics = server.api().get("/metrics").await;
    assert_eq!(metrics.status, 200, "{}", metrics.text);
    assert_eq!(
        metrics.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let m = |series: &str| value(&metrics, series);
    assert_eq!(
        m(r#"concord_events_published_total{event="MESSAGE_CREATE"}"#),
        1.0
    );
    // Bob's two sessions; Alice had none.
    assert_eq!(
        m(r#"concord_event_deliveries_total{event="MESSAGE_CREATE"}"#),
        2.0
    );
    assert_eq!(
        m(r#"concord_gateway_sessions{protocol="1",state="attached"}"#),
        1.0
    );
    assert_eq!(
        m(r#"concord_gateway_sessions{protocol="2",state="attached"}"#),
        1.0
    );
    assert_eq!(
        m(r#"concord_gateway_sessions{protocol="2",state="detached"}"#),
        0.0
    );
    assert_eq!(m(r#"concord_gateway_sockets{protocol="1"}"#), 1.0);
    assert_eq!(m(r#"concord_gateway_sockets{protocol="2"}"#), 1.0);
    assert_eq!(m(r#"concord_gateway_upgrades_total{protocol="2"}"#), 1.0);
    assert_eq!(
        m(
            r#"concord_http_requests_total{method="GET",route="/channels/{channel_id}/messages",status="200"}"#
        ),
        2.0
    );
    assert_eq!(
        m(
            r#"concord_http_requests_total{method="POST",route="/channels/{channel_id}/messages",status="201"}"#
        ),
        1.0
    );
    assert_eq!(
        m(r#"concord_http_requests_total{method="GET",route="/servers/{id}",status="400"}"#),
        1.0
    );
    // Unknown paths share one label: a scanner cannot grow the series without bound.
    assert_eq!(
        m(r#"concord_http_requests_total{method="GET",route="unmatched",status="404"}"#),
        1.0
    );
    assert!(!metrics.text.contains("/no/such/route"));
    assert!(
        m(
            r#"concord_http_request_duration_seconds_count{method="GET",route="/channels/{channel_id}/messages"}"#
        ) >= 2.0
    );
    assert!(m(r#"concord_db_operation_duration_seconds_count{operation="create_message"}"#) >= 1.0);
    assert!(m("process_resident_memory_bytes") > 0.0);
    assert!(m("process_open_fds") > 0.0);

    // A closed socket leaves the gauges; its session is not counted as attached.
    v1.close(1000).await;
    let mut left = value(
        &server.api().get("/metrics").await,
        r#"concord_gateway_sockets{protocol="1"}"#,
    );
    // The server sees the close a moment later: polled, bounded far above need.
    for _ in 0..1000 {
        if left == 0.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        left = value(
            &server.api().get("/metrics").await,
            r#"concord_gateway_sockets{protocol="1"}"#,
        );
    }
    assert_eq!(left, 0.0);
    server.shutdown().await;
}

#[tokio::test]
async fn only_allowed_addresses_or_the_token_read_the_metrics() {
    let token = "metrics-token-0123456789abcdef0123456789";
    // Loopback is the default; here nobody is allowed by address.
    let server = TestServer::start_with(|c| {
        c.metrics.allow = Vec::new();
        c.metrics.token = Some(token.into());
    })
    .await;
    let refused = server.api().get("/metrics").await;
    assert_eq!(refused.status, 403);
    assert!(refused.body["error"].is_string(), "{}", refused.text);
    assert!(!refused.text.contains("concord_"));
    let wrong = server
        .api()
        .bearer("metrics-token-0123456789abcdef0123456788")
        .get("/metrics")
        .await;
    assert_eq!(wrong.status, 403);
    let right = server.api().bearer(token).get("/metrics").await;
    assert_eq!(right.status, 200);
    assert!(right.text.contains("concord_events_published_total"));
    // A user's access token is not the metrics token.
    let alice = server.user("alice").await;
    assert_eq!(alice.api.get("/metrics").await.status, 403);
    server.shutdown().await;

    // Behind a trusted proxy on loopback, the forwarded client is judged, not the proxy.
    let server = TestServer::start_with(|c| {
        c.limits.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let forwarded = server
        .api()
        .get_with_header("/metrics", "x-forwarded-for", "203.0.113.9")
        .await;
    assert_eq!(forwarded.status, 403);
    let local = server
        .api()
        .get_with_header("/metrics", "x-forwarded-for", "127.0.0.1")
        .await;
    assert_eq!(local.status, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn every_request_gets_a_request_id() {
    let server = TestServer::start().await;
    let own = server
        .api()
        .get_with_header("/health/live", "x-request-id", "trace-42.a_b")
        .await;
    assert_eq!(own.headers["x-request-id"], "trace-42.a_b");
    // An id unfit for a log line is replaced, not echoed.
    let odd = server
        .api()
        .get_with_header("/health/live", "x-request-id", "<b>&quot;")
        .await;
    let replaced = odd.headers["x-request-id"].to_str().unwrap();
    assert_ne!(replaced, "<b>&quot;");
    assert_eq!(replaced.len(), 32);
    let fresh = server.api().post("/auth/login", &json!({})).await;
    assert!(fresh.headers.contains_key("x-request-id"));
    server.shutdown().await;
}
