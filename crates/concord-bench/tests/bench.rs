//! End to end: the bench against a real Concord, in-process. Only counts are
//! asserted; the timing figures depend on the machine.

use clap::Parser;
use concord_bench::{BenchArgs, run_to};
use concord_server::config::Rate;
use concord_testkit::TestServer;
use serde_json::Value;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    args: BenchArgs,
}

fn args(url: &str, extra: &[&str]) -> BenchArgs {
    let mut argv = vec![
        "bench",
        "--url",
        url,
        "-n",
        "20",
        "--messages",
        "10",
        "--json",
        "--sources",
        "4",
        "--settle",
        "1s",
        "--duration",
        "60s",
    ];
    argv.extend_from_slice(extra);
    Cli::try_parse_from(argv).expect("bench arguments").args
}

async fn start() -> TestServer {
    start_with_heartbeat(None).await
}

/// A server without REST limits; `heartbeat_ms` sets the v2 heartbeat interval
/// (HELLO announces it; 1.5 of them without a HEARTBEAT close with 4006).
async fn start_with_heartbeat(heartbeat_ms: Option<u64>) -> TestServer {
    TestServer::start_with(|c| {
        let plenty = Rate {
            per_second: 1_000_000,
            burst: 1_000_000,
        };
        c.limits.per_bot = plenty;
        c.limits.rest_per_ip = plenty;
        c.limits.auth_per_ip = plenty;
        if let Some(ms) = heartbeat_ms {
            c.limits.heartbeat_interval_ms = ms;
        }
    })
    .await
}

/// Parses the printed lines, checking they are exactly the returned summaries.
fn lines(out: &[u8], returned: &[Value]) -> Vec<Value> {
    let text = std::str::from_utf8(out).expect("utf-8 output");
    let expected: Vec<String> = returned.iter().map(Value::to_string).collect();
    assert_eq!(text.lines().collect::<Vec<_>>(), expected);
    text.lines()
        .map(|l| serde_json::from_str(l).expect("each line is a JSON summary"))
        .collect()
}

/// Runs the bench against `server` with `extra` arguments; the printed summaries,
/// checked to be exactly those returned.
async fn bench(server: &TestServer, extra: &[&str]) -> Vec<Value> {
    let mut out = Vec::new();
    let returned = run_to(args(&server.url(""), extra), &mut out)
        .await
        .expect("bench run");
    lines(&out, &returned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_fanout_against_concord() {
    let server = start().await;
    let printed = bench(&server, &["--scenario", "idle,fanout", "--probes", "2"]).await;
    assert_eq!(printed.len(), 2);

    let idle = &printed[0];
    assert_eq!(idle["scenario"], "idle");
    assert_eq!(idle["connections"], 20);
    assert_eq!(idle["ready"], 20);
    assert_eq!(idle["gave_up"], 0);
    assert_eq!(idle["completed"], true);
    assert!(idle["connects_per_sec"].as_f64().is_some());
    assert_eq!(idle["connect_latency_us"]["count"], 20);
    assert_eq!(idle["protocol"], 1, "v1 unless asked");

    let fanout = &printed[1];
    assert_eq!(fanout["scenario"], "fanout");
    assert_eq!(fanout["connections"], 20);
    assert_eq!(fanout["messages"], 10);
    assert_eq!(fanout["accepted"], 10);
    assert_eq!(fanout["deliveries"], 200);
    assert_eq!(fanout["expected_deliveries"], 200);
    assert_eq!(fanout["lost"], 0);
    assert_eq!(fanout["duplicates"], 0);
    assert_eq!(fanout["latency_us"]["count"], 200, "probes are timed apart");
    assert_eq!(fanout["fanout_one_ms"]["probes"], 2);
    assert_eq!(fanout["fanout_one_ms"]["timed"], 2);
    assert_eq!(fanout["completed"], true);
    for key in ["deliveries_per_sec", "burst_secs"] {
        assert!(fanout[key].as_f64().is_some(), "{key}: {fanout}");
    }
    for key in ["p50", "p99", "p999", "max"] {
        assert!(fanout["latency_us"][key].as_u64().is_some(), "{key}");
    }
    server.shutdown().await;
}

/// `--protocol 2`: HELLO before READY, `s` in every dispatch. The server announces a
/// 400 ms heartbeat interval, so a member that kept to the 30 s default (or missed a
/// beat after reconnecting) would be closed with 4006 within 0.6 s: every scenario
/// here outlasts that several times, and must neither lose a message nor be closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_and_churn_over_protocol_v2() {
    let server = start_with_heartbeat(Some(400)).await;
    let printed = bench(
        &server,
        &[
            "--protocol",
            "2",
            "--scenario",
            "idle,fanout,churn",
            "--probes",
            "2",
            "--rate",
            "10",
            "--churn-rate",
            "10",
            "--backoff-base",
            "50ms",
            "--backoff-cap",
            "200ms",
        ],
    )
    .await;
    assert_eq!(printed.len(), 3);
    for summary in &printed {
        assert_eq!(summary["protocol"], 2, "{summary}");
        assert_eq!(summary["ready"], 20, "{summary}");
        assert_eq!(summary["gave_up"], 0, "{summary}");
        assert_eq!(summary["server_closes"], 0, "no 4006: {summary}");
        assert_eq!(summary["gateway_errors"], 0, "{summary}");
        assert_eq!(summary["completed"], true, "{summary}");
    }
    assert_eq!(
        printed[0]["failed_attempts"], 0,
        "HELLO then READY is accepted"
    );

    let fanout = &printed[1];
    assert_eq!(fanout["scenario"], "fanout");
    assert_eq!(fanout["accepted"], 10);
    assert_eq!(fanout["deliveries"], 200);
    assert_eq!(fanout["expected_deliveries"], 200);
    assert_eq!(fanout["lost"], 0, "{fanout}");
    assert_eq!(fanout["duplicates"], 0);
    assert_eq!(fanout["unexpected"], 0);
    assert_eq!(fanout["latency_us"]["count"], 200);
    assert_eq!(fanout["fanout_one_ms"]["timed"], 2);
    // Paced at 10/s, the burst alone outlasts the 0.6 s heartbeat timeout.
    assert!(fanout["burst_secs"].as_f64().unwrap() > 0.6, "{fanout}");

    let churn = &printed[2];
    assert_eq!(churn["scenario"], "churn");
    assert_eq!(churn["accepted"], 10);
    assert_eq!(churn["lost"], 0, "nothing lost while connected: {churn}");
    assert!(churn["reconnects"].as_u64().unwrap() > 0, "{churn}");
    server.shutdown().await;
}

/// `--servers N`: every member alone in a server of its own, so connecting announces
/// nothing to anyone (20 members of one server connecting at once get 380).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_spread_over_servers_connect_without_announcements() {
    let server = start().await;
    let printed = bench(&server, &["--scenario", "idle,storm", "--servers", "20"]).await;
    assert_eq!(printed.len(), 2);
    let idle = &printed[0];
    assert_eq!(idle["servers"], 20);
    assert_eq!(idle["ready"], 20);
    assert_eq!(idle["presence_frames"], 0, "{idle}");
    assert_eq!(idle["completed"], true);
    assert_eq!(printed[1]["scenario"], "storm");
    assert_eq!(printed[1]["completed"], true);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_events_storm_and_churn_against_concord() {
    let server = start().await;
    let summaries = bench(
        &server,
        &[
            "--scenario",
            "presence,typing,storm,churn",
            "--rate",
            "200",
            "--churn-rate",
            "20",
            "--backoff-base",
            "50ms",
            "--backoff-cap",
            "200ms",
        ],
    )
    .await;
    assert_eq!(summaries.len(), 4);

    let presence = &summaries[0];
    assert_eq!(presence["scenario"], "presence");
    assert_eq!(presence["sent"], 10);
    // Each update reaches the 19 co-members, never its sender.
    assert_eq!(presence["expected_deliveries"], 190);
    assert_eq!(presence["deliveries"], 190);
    assert_eq!(presence["lost"], 0);
    assert_eq!(presence["self_echo"], 0);

    let typing = &summaries[1];
    assert_eq!(typing["scenario"], "typing");
    assert_eq!(typing["sent"], 10);
    assert!(typing["deliveries"].as_u64().unwrap() > 0, "{typing}");
    assert_eq!(typing["unexpected"], 0);

    let storm = &summaries[2];
    assert_eq!(storm["scenario"], "storm");
    assert_eq!(storm["reconnected"], 20);
    assert_eq!(storm["not_reconnected"], 0);
    assert_eq!(storm["completed"], true);

    let churn = &summaries[3];
    assert_eq!(churn["scenario"], "churn");
    assert_eq!(churn["lost"], 0, "nothing lost while connected: {churn}");
    assert_eq!(churn["accepted"], 10);
    server.shutdown().await;
}
