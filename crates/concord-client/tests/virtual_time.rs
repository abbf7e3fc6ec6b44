//! Heartbeats, zombie detection and the backoff schedule under virtual time
//! (`start_paused`), against a test double of the server over an in-memory pipe: the
//! double speaks v2 with real WebSocket framing, and stops acknowledging heartbeats
//! when told to.

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
};

use concord_client::{Backoff, BoxedStream, Connector, Event, Gateway, GatewayConfig, StaticToken};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::{
    io::DuplexStream,
    sync::mpsc,
    time::{Instant, timeout},
};
use tokio_tungstenite::{WebSocketStream, tungstenite::Message};

/// Hands each connection's far end to the test, or refuses while `refuse` is set;
/// records when each attempt was made.
struct Pipe {
    accepted: mpsc::UnboundedSender<DuplexStream>,
    refuse: bool,
    attempts: Arc<Mutex<Vec<Instant>>>,
}

impl Connector for Pipe {
    fn connect<'a>(
        &'a self,
        _host: &'a str,
        _port: u16,
    ) -> Pin<Box<dyn Future<Output = io::Result<BoxedStream>> + Send + 'a>> {
        Box::pin(async move {
            self.attempts.lock().unwrap().push(Instant::now());
            if self.refuse {
                return Err(io::ErrorKind::ConnectionRefused.into());
            }
            let (near, far) = tokio::io::duplex(1 << 16);
            self.accepted
                .send(far)
                .map_err(|_| io::ErrorKind::BrokenPipe)?;
            Ok(Box::new(near) as BoxedStream)
        })
    }
}

fn gateway(
    refuse: bool,
) -> (
    Arc<Gateway>,
    mpsc::UnboundedReceiver<DuplexStream>,
    Arc<Mutex<Vec<Instant>>>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let attempts = Arc::default();
    let mut config = GatewayConfig::new("ws://double.invalid/ws", StaticToken::token("t"))
        .with_connector(Pipe {
            accepted: tx,
            refuse,
            attempts: Arc::clone(&attempts),
        });
    config.jitter_seed = Some(42);
    (Arc::new(Gateway::new(config)), rx, attempts)
}

fn ready() -> Value {
    json!({"op": "DISPATCH", "t": "READY", "s": 1, "d": {
        "user": {"id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a01", "username": "bot",
            "email": null, "avatar_url": null, "bio": null, "pronouns": null,
            "status": "online", "custom_status": null, "activity": null,
            "created_at": "2026-01-02T03:04:05.123456Z", "is_admin": false},
        "servers": [], "dm_channels": [], "unread_counts": [], "mention_counts": [],
        "server_roles": {}, "channel_overrides": {}}})
}

async fn send(ws: &mut WebSocketStream<DuplexStream>, frame: Value) {
    ws.send(Message::text(frame.to_string())).await.unwrap();
}

/// The next text frame from the client, as JSON (`None` once it closed).
async fn recv(ws: &mut WebSocketStream<DuplexStream>) -> Option<Value> {
    loop {
        match ws.next().await? {
            Ok(Message::Text(text)) => return Some(serde_json::from_str(&text).unwrap()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

const INTERVAL: Duration = Duration::from_secs(40);

#[tokio::test(start_paused = true)]
async fn a_zombie_connection_is_replaced_within_two_intervals_and_resumed() {
    let (gateway, mut accepted, _) = gateway(false);
    let mut events = gateway.events();
    let connecting = tokio::spawn({
        let gateway = Arc::clone(&gateway);
        async move { gateway.connect().await }
    });
    let mut ws = tokio_tungstenite::accept_async(accepted.recv().await.unwrap())
        .await
        .unwrap();
    let hello_at = Instant::now();
    send(&mut ws, json!({"op": "HELLO", "d": {"heartbeat_interval": INTERVAL.as_millis() as u64, "session_id": "s-1"}})).await;
    let identify = recv(&mut ws).await.unwrap();
    assert_eq!(identify["op"], "IDENTIFY");
    assert_eq!(identify["d"]["token"], "t");
    send(&mut ws, ready()).await;
    connecting.await.unwrap().unwrap();
    assert_eq!(gateway.session_id().as_deref(), Some("s-1"));
    // The first beat comes after a jittered part of the interval; it is acknowledged.
    let beat = recv(&mut ws).await.unwrap();
    assert_eq!(beat["op"], "HEARTBEAT");
    let first_beat = Instant::now() - hello_at;
    assert!(first_beat <= INTERVAL, "{first_beat:?}");
    send(&mut ws, json!({"op": "HEARTBEAT_ACK"})).await;
    // A second beat one interval later; this one the double leaves unanswered.
    assert_eq!(recv(&mut ws).await.unwrap()["op"], "HEARTBEAT");
    let unanswered = Instant::now();
    assert!(
        gateway.latency().is_some(),
        "the first round trip was measured"
    );
    // The next beat finds no ACK: the connection is a zombie, closed and replaced.
    let closed = timeout(3 * INTERVAL, recv(&mut ws)).await;
    assert_eq!(closed, Ok(None), "the client closed the zombie");
    let mut ws = tokio_tungstenite::accept_async(accepted.recv().await.unwrap())
        .await
        .unwrap();
    let replaced = Instant::now() - unanswered;
    assert!(
        replaced >= INTERVAL && replaced <= 2 * INTERVAL,
        "reconnected {replaced:?} after the unanswered beat"
    );
    send(&mut ws, json!({"op": "HELLO", "d": {"heartbeat_interval": INTERVAL.as_millis() as u64, "session_id": "s-2"}})).await;
    let resume = recv(&mut ws).await.unwrap();
    assert_eq!(resume["op"], "RESUME", "{resume}");
    assert_eq!(
        (&resume["d"]["session_id"], &resume["d"]["seq"]),
        (&json!("s-1"), &json!(1))
    );
    send(
        &mut ws,
        json!({"op": "DISPATCH", "t": "RESUMED", "s": 2, "d": {"replayed": 0}}),
    )
    .await;
    // What the application saw: one session, a reconnect, a resume.
    let mut kinds = Vec::new();
    loop {
        let event = events.next().await.unwrap();
        let resumed = matches!(event, Event::Resumed { .. });
        kinds.push(match event {
            Event::Dispatch { event, .. } => event.name().to_string(),
            Event::Reconnecting { attempt, code, .. } => format!("reconnecting {attempt} {code:?}"),
            other => format!("{other:?}"),
        });
        if resumed {
            break;
        }
    }
    assert_eq!(
        kinds,
        [
            "Open",
            "READY",
            "Ready { session_id: Some(\"s-1\") }",
            "reconnecting 1 None",
            "Open",
            "RESUMED",
            "Resumed { replayed: 0 }"
        ]
    );
    assert_eq!(
        gateway.session_id().as_deref(),
        Some("s-1"),
        "a RESUME keeps the id"
    );
    gateway.disconnect().await;
}

#[tokio::test(start_paused = true)]
async fn reconnects_back_off_exponentially_with_full_jitter_up_to_30_s() {
    let (gateway, _accepted, attempts) = gateway(true);
    let mut events = gateway.events();
    let connecting = tokio::spawn({
        let gateway = Arc::clone(&gateway);
        async move { gateway.connect().await }
    });
    let backoff = Backoff::default();
    let mut delays = Vec::new();
    // The 13th announcement comes after the 13th attempt failed.
    while delays.len() < 13 {
        match events.next().await.unwrap() {
            Event::Reconnecting {
                attempt,
                delay,
                code,
            } => {
                assert_eq!(attempt as usize, delays.len() + 1);
                assert_eq!(code, None);
                assert!(
                    delay <= backoff.ceiling(attempt),
                    "attempt {attempt}: {delay:?}"
                );
                delays.push(delay);
            }
            other => panic!("only reconnects while refused: {other:?}"),
        }
    }
    delays.pop();
    let at = attempts.lock().unwrap().clone();
    for (n, delay) in delays.iter().enumerate() {
        let gap = at[n + 1] - at[n];
        // Timers have millisecond granularity.
        assert!(
            gap >= *delay && gap <= *delay + Duration::from_millis(2),
            "attempt {}: waited {gap:?} for a delay of {delay:?}",
            n + 2
        );
    }
    // Full jitter: spread below the ceilings, not pinned to them; capped at 30 s.
    assert!(delays.iter().all(|d| *d <= Duration::from_secs(30)));
    assert!(
        delays
            .iter()
            .zip(1..)
            .any(|(d, n)| *d < backoff.ceiling(n) / 2),
        "{delays:?}"
    );
    assert!(
        delays[6..].iter().any(|d| *d > Duration::from_secs(16)),
        "{delays:?}"
    );
    // Disconnecting while waiting stops at once: Closed ends the stream.
    gateway.disconnect().await;
    assert!(matches!(
        timeout(Duration::from_secs(1), connecting)
            .await
            .unwrap()
            .unwrap(),
        Err(concord_client::Error::Disconnected)
    ));
    assert!(matches!(
        events.next().await,
        Some(Event::Closed {
            code: Some(1000),
            ..
        })
    ));
    assert_eq!(events.next().await, None);
}

#[tokio::test(start_paused = true)]
async fn reconnect_goes_at_once_and_an_invalid_session_identifies_on_the_same_socket() {
    let (gateway, mut accepted, _) = gateway(false);
    let mut events = gateway.events();
    let connecting = tokio::spawn({
        let gateway = Arc::clone(&gateway);
        async move { gateway.connect().await }
    });
    let hello = |id: &str| json!({"op": "HELLO", "d": {"heartbeat_interval": INTERVAL.as_millis() as u64, "session_id": id}});
    let mut ws = tokio_tungstenite::accept_async(accepted.recv().await.unwrap())
        .await
        .unwrap();
    send(&mut ws, hello("s-1")).await;
    assert_eq!(recv(&mut ws).await.unwrap()["op"], "IDENTIFY");
    send(&mut ws, ready()).await;
    connecting.await.unwrap().unwrap();
    // The node drains: RECONNECT. The next attempt comes without delay.
    send(&mut ws, json!({"op": "RECONNECT"})).await;
    let told = Instant::now();
    let mut ws = tokio_tungstenite::accept_async(accepted.recv().await.unwrap())
        .await
        .unwrap();
    assert_eq!(Instant::now(), told, "no backoff after RECONNECT");
    send(&mut ws, hello("s-2")).await;
    let resume = recv(&mut ws).await.unwrap();
    assert_eq!(resume["op"], "RESUME");
    // The session is gone after all: IDENTIFY on this very socket, new numbering.
    send(
        &mut ws,
        json!({"op": "INVALID_SESSION", "d": {"resumable": false}}),
    )
    .await;
    let identify = recv(&mut ws).await.unwrap();
    assert_eq!(identify["op"], "IDENTIFY", "{identify}");
    send(&mut ws, ready()).await;
    let mut seen = Vec::new();
    loop {
        match events.next().await.unwrap() {
            Event::Ready { session_id } => {
                seen.push(session_id);
                if seen.len() == 2 {
                    break;
                }
            }
            Event::Reconnecting { attempt, delay, .. } => {
                assert_eq!((attempt, delay), (1, Duration::ZERO));
            }
            _ => {}
        }
    }
    assert_eq!(seen, [Some("s-1".to_string()), Some("s-2".to_string())]);
    assert_eq!(
        gateway.last_sequence(),
        1,
        "numbering restarted with the new session"
    );
    gateway.disconnect().await;
}
