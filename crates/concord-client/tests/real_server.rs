//! The SDK against the real server over real sockets: the server's side of the socket
//! killed again and again while events flow, graceful restarts, token expiry (4009)
//! met with a refreshed token, a session closed as expired resumed, no retry after
//! 4004, v1, and both compressed streams; and the low-level `raw::Connection` alone.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use concord_client::{
    Backoff, Compression, Credential, Error, Event, Gateway, GatewayConfig, GatewayEvent,
    ReadyState, RefreshToken, StaticToken, TokenError, TokenProvider, Version,
};
use concord_protocol::{Intents, Timestamp, limits::ACCESS_TOKEN_SECS};
use concord_testkit::{TestServer, TestUser, WAIT};
use futures_util::StreamExt;
use tokio::{net::TcpListener, task::JoinHandle, time::timeout};

/// End-to-end waits are real: a short backoff keeps reconnects quick.
fn config(addr: SocketAddr, token: impl TokenProvider) -> GatewayConfig {
    GatewayConfig::new(format!("ws://{addr}/ws"), token)
        .with_intents(Intents::MESSAGES)
        .with_backoff(Backoff {
            base: Duration::from_millis(20),
            cap: Duration::from_millis(200),
        })
}

async fn next(events: &mut concord_client::EventStream) -> Event {
    timeout(WAIT, events.next())
        .await
        .expect("an event in time")
        .expect("the stream is open")
}

/// What the application saw: message contents in order, and how many sessions were
/// ready, resumed, or closed.
#[derive(Debug, Default)]
struct Seen {
    messages: Vec<String>,
    ready: usize,
    resumed: usize,
    closed: usize,
    reconnect_codes: Vec<Option<u16>>,
}

impl Seen {
    fn take(&mut self, event: Event) {
        match event {
            Event::Dispatch {
                event: GatewayEvent::MessageCreate(message),
                ..
            } => self.messages.push(message.content),
            Event::Ready { .. } => self.ready += 1,
            Event::Resumed { .. } => self.resumed += 1,
            Event::Closed { .. } => self.closed += 1,
            Event::Reconnecting { code, .. } => self.reconnect_codes.push(code),
            _ => {}
        }
    }
}

/// A TCP relay between the SDK and the server whose connections the test can cut:
/// the server's side of the socket then ends without a close frame.
struct Relay {
    addr: SocketAddr,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    _accept: JoinHandle<()>,
}

impl Relay {
    async fn start(server: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let held = Arc::clone(&links);
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let link = tokio::spawn(async move {
                    if let Ok(mut upstream) = tokio::net::TcpStream::connect(server).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
                held.lock().unwrap().push(link);
            }
        });
        Self {
            addr,
            links,
            _accept: accept,
        }
    }

    /// Drops both sockets of every open link.
    fn cut(&self) {
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }
}

/// Hands out a token about to expire first (a [`RefreshToken`] would refresh one with
/// under a minute left before even connecting), then whatever `then` gives.
struct ShortFirst {
    short: Mutex<Option<String>>,
    then: Arc<RefreshToken>,
}

#[async_trait::async_trait]
impl TokenProvider for ShortFirst {
    async fn credential(&self, renew: bool) -> Result<Credential, TokenError> {
        let short = self.short.lock().unwrap().take();
        match short {
            Some(token) if !renew => Ok(Credential::Token(token)),
            _ => self.then.credential(renew).await,
        }
    }

    fn renews(&self) -> bool {
        true
    }
}

async fn hall(user: &TestUser) -> String {
    let hall = user.create_server("hall").await;
    user.create_channel(&hall, "general", "text").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_once_in_order_while_the_server_side_is_cut_again_and_again() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let general = hall(&alice).await;
    let relay = Relay::start(server.addr).await;
    let gateway = Gateway::new(config(relay.addr, StaticToken::token(&alice.token)));
    let mut events = gateway.events();
    gateway.connect().await.unwrap();
    let total = 1_000;
    let poster = alice.clone();
    let producer = tokio::spawn(async move {
        for n in 0..total {
            poster.post(&general, &n.to_string()).await;
        }
    });
    let mut seen = Seen::default();
    let mut cuts = 0;
    while seen.messages.len() < total {
        let event = next(&mut events).await;
        let is_message = matches!(event, Event::Dispatch { .. });
        seen.take(event);
        // Cut after every 13th message: mid-stream, with more in flight.
        if is_message && seen.messages.len() % 13 == 5 {
            relay.cut();
            cuts += 1;
        }
    }
    producer.await.unwrap();
    let expected: Vec<String> = (0..total).map(|n| n.to_string()).collect();
    assert_eq!(seen.messages, expected, "every event once, in order");
    assert!(cuts >= 70, "{cuts} cuts");
    assert_eq!(
        seen.ready, 1,
        "one session throughout: never a fresh IDENTIFY"
    );
    assert!(seen.resumed >= 1, "{seen:?}");
    assert_eq!(seen.closed, 0);
    gateway.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_rides_through_graceful_restarts_without_losing_an_event() {
    let mut server = TestServer::start().await;
    let alice = server.user("alice").await;
    let general = hall(&alice).await;
    let gateway = Gateway::new(config(server.addr, StaticToken::token(&alice.token)));
    let mut events = gateway.events();
    gateway.connect().await.unwrap();
    let mut seen = Seen::default();
    for round in 0..3 {
        for n in 0..100 {
            alice.post(&general, &format!("{}", round * 100 + n)).await;
        }
        if round < 2 {
            server = server.restart().await;
            // Each restart gets its own RESUME: the next round is posted only once the
            // session is back (a client still away through two restarts would resume
            // once, rightly). RESUMED comes after the replayed events.
            while seen.resumed < round + 1 {
                seen.take(next(&mut events).await);
            }
        }
    }
    while seen.messages.len() < 300 {
        seen.take(next(&mut events).await);
    }
    let expected: Vec<String> = (0..300).map(|n| n.to_string()).collect();
    assert_eq!(seen.messages, expected, "every event once, in order");
    assert_eq!(seen.ready, 1, "resumed, never identified afresh: {seen:?}");
    assert_eq!(seen.resumed, 2, "{seen:?}");
    assert!(
        seen.reconnect_codes.contains(&None),
        "told to RECONNECT before the 1001: {seen:?}"
    );
    assert!(gateway.is_connected());
    gateway.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refreshed_and_the_session_resumed_without_the_app_noticing() {
    let server = TestServer::start_with(|c| c.token_leeway_secs = 0).await;
    let alice = server.user("alice").await;
    let general = hall(&alice).await;
    // An access token with two seconds left, as if issued 14:58 ago.
    let record = server
        .state
        .store
        .user(alice.user_id())
        .await
        .unwrap()
        .unwrap();
    let issued =
        Timestamp::from_micros(Timestamp::now().as_micros() - (ACCESS_TOKEN_SECS - 2) * 1_000_000);
    let short = server.state.keys.issue(
        &record,
        concord_server::auth::TokenType::Access,
        issued,
        None,
    );
    let tokens = Arc::new(RefreshToken::new(&server.url(""), alice.refresh.clone()));
    let mut config = config(server.addr, StaticToken::token("unused"));
    config.token = Arc::new(ShortFirst {
        short: Mutex::new(Some(short)),
        then: Arc::clone(&tokens),
    });
    let gateway = Gateway::new(config);
    let mut events = gateway.events();
    gateway.connect().await.unwrap();
    alice.post(&general, "before").await;
    let mut seen = Seen::default();
    // The server closes 4009 when the token runs out; meanwhile, one more message.
    while seen.reconnect_codes.is_empty() {
        seen.take(next(&mut events).await);
    }
    assert_eq!(seen.reconnect_codes, [Some(4009)]);
    alice.post(&general, "during").await;
    while seen.resumed == 0 {
        seen.take(next(&mut events).await);
    }
    alice.post(&general, "after").await;
    while seen.messages.len() < 3 {
        seen.take(next(&mut events).await);
    }
    assert_eq!(seen.messages, ["before", "during", "after"]);
    assert_eq!((seen.ready, seen.closed), (1, 0), "{seen:?}");
    assert_ne!(
        tokens.refresh_token().await,
        alice.refresh,
        "the SDK refreshed (refresh tokens rotate)"
    );
    gateway.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_the_server_closes_as_expired_is_resumable() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let general = hall(&alice).await;
    let gateway = Gateway::new(config(server.addr, StaticToken::token(&alice.token)));
    let mut events = gateway.events();
    gateway.connect().await.unwrap();
    server
        .state
        .hub
        .close_user(alice.user_id(), concord_gateway::CloseReason::Expired);
    let mut seen = Seen::default();
    while seen.reconnect_codes.is_empty() {
        seen.take(next(&mut events).await);
    }
    assert_eq!(seen.reconnect_codes, [Some(4009)]);
    // Posted while the session waits for its RESUME: queued, then replayed.
    alice.post(&general, "kept").await;
    while seen.messages.is_empty() || seen.resumed == 0 {
        seen.take(next(&mut events).await);
    }
    assert_eq!(
        (seen.ready, seen.resumed),
        (1, 1),
        "extensions.md: 4009 is resumable: {seen:?}"
    );
    gateway.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_4004_is_not_retried() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    // A refresh token is not an access token: IDENTIFY closes 4004.
    let gateway = Gateway::new(config(server.addr, StaticToken::token(&alice.refresh)));
    let mut events = gateway.events();
    let err = gateway.connect().await.unwrap_err();
    assert!(
        matches!(err, Error::AuthenticationFailed { code: Some(4004) }),
        "{err:?}"
    );
    assert_eq!(next(&mut events).await, Event::Open);
    assert!(matches!(
        next(&mut events).await,
        Event::Closed {
            code: Some(4004),
            ..
        }
    ));
    // The stream ends: no further attempt will ever come.
    assert_eq!(timeout(WAIT, events.next()).await.unwrap(), None);
    assert_eq!(gateway.state(), ReadyState::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_and_both_compressed_streams_deliver_typed_events() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let general = hall(&alice).await;
    let variants = [
        config(server.addr, StaticToken::token(&alice.token)).with_version(Version::V1),
        config(server.addr, StaticToken::token(&alice.token))
            .with_compression(Compression::ZlibStream),
        config(server.addr, StaticToken::token(&alice.token))
            .with_compression(Compression::ZstdStream),
    ];
    for config in variants {
        let v1 = config.version == Version::V1;
        let gateway = Gateway::new(config);
        let mut events = gateway.events();
        gateway.connect().await.unwrap();
        for n in 0..20 {
            alice.post(&general, &format!("m{n}")).await;
        }
        let mut seen = Seen::default();
        let mut seqs = Vec::new();
        while seen.messages.len() < 20 {
            let event = next(&mut events).await;
            if let Event::Dispatch {
                seq,
                event: GatewayEvent::MessageCreate(_),
            } = &event
            {
                seqs.push(*seq);
            }
            seen.take(event);
        }
        let expected: Vec<String> = (0..20).map(|n| format!("m{n}")).collect();
        assert_eq!(seen.messages, expected);
        assert_eq!(seqs.iter().all(Option::is_none), v1, "{seqs:?}");
        gateway.disconnect().await;
        assert!(matches!(
            next(&mut events).await,
            Event::Closed {
                code: Some(1000),
                ..
            }
        ));
        assert_eq!(events.next().await, None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_connects_with_an_access_token_from_bots_connect_and_renews_it_after_4009() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let res = alice
        .api
        .post("/bots", &serde_json::json!({"name": "Helper"}))
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let bot_user = res.body["bot"]["user_id"].as_str().unwrap().to_string();
    let token = res.body["token"].as_str().unwrap();
    let gateway = Gateway::new(config(
        server.addr,
        concord_client::BotToken::new(&server.url(""), token),
    ));
    let mut events = gateway.events();
    gateway.connect().await.unwrap();
    let mut ready_user = None;
    while ready_user.is_none() {
        if let Event::Dispatch {
            event: GatewayEvent::Ready(ready),
            ..
        } = next(&mut events).await
        {
            ready_user = Some(ready.user.id.to_string());
        }
    }
    assert_eq!(ready_user.as_deref(), Some(bot_user.as_str()));
    server.state.hub.close_user(
        bot_user.parse().unwrap(),
        concord_gateway::CloseReason::Revoked,
    );
    let mut seen = Seen::default();
    while seen.resumed == 0 {
        seen.take(next(&mut events).await);
    }
    assert_eq!(seen.reconnect_codes, [Some(4009)]);
    // The first session's Ready came right after its READY dispatch; none since.
    assert_eq!((seen.ready, seen.closed), (1, 0), "{seen:?}");
    gateway.disconnect().await;
}

/// The low-level connection on its own: HELLO, IDENTIFY, READY and a heartbeat over
/// each transport, a close answered by the server, the server's own close frame
/// observed, and a refused upgrade's status.
#[tokio::test]
async fn raw_connection_speaks_v2_and_observes_close_frames() {
    use concord_client::{
        protocol::{Op, ServerMessage},
        raw::{ConnectOptions, Connection, RawError, gateway_url},
    };

    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let base = format!("ws://{}/ws", server.addr);
    for compression in [
        None,
        Some(Compression::ZlibStream),
        Some(Compression::ZstdStream),
    ] {
        let url = gateway_url(&base, Version::V2, compression, &[]);
        let options = ConnectOptions::new().with_compression(compression);
        let mut conn = Connection::connect(&url, &options).await.unwrap();
        let hello = timeout(WAIT, conn.next_message()).await.unwrap().unwrap();
        assert!(matches!(hello, ServerMessage::Hello(_)), "{hello:?}");
        conn.send_op(
            Op::Identify,
            Some(serde_json::json!({"token": alice.token})),
        )
        .await
        .unwrap();
        match timeout(WAIT, conn.next_message()).await.unwrap().unwrap() {
            ServerMessage::Dispatch {
                seq: Some(1),
                event: GatewayEvent::Ready(_),
            } => {}
            other => panic!("{compression:?}: expected READY, got {other:?}"),
        }
        conn.heartbeat().await.unwrap();
        loop {
            match timeout(WAIT, conn.next_message()).await.unwrap().unwrap() {
                ServerMessage::HeartbeatAck => break,
                ServerMessage::Dispatch { .. } => {}
                other => panic!("{compression:?}: expected HEARTBEAT_ACK, got {other:?}"),
            }
        }
        assert!(conn.close_frame().is_none());
        let answer = timeout(WAIT, conn.close(1000, "bye"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(answer.map(|c| c.code), Some(1000), "{compression:?}");
    }

    // A refused token: the server closes with 4004, and the connection keeps it.
    let url = gateway_url(&base, Version::V2, None, &[]);
    let mut conn = Connection::connect(&url, &ConnectOptions::new())
        .await
        .unwrap();
    timeout(WAIT, conn.next_message()).await.unwrap().unwrap();
    conn.send_op(Op::Identify, Some(serde_json::json!({"token": "garbage"})))
        .await
        .unwrap();
    match timeout(WAIT, conn.next_message()).await.unwrap() {
        Err(RawError::Closed(Some(close))) => assert_eq!(close.code, 4004),
        other => panic!("expected close 4004, got {other:?}"),
    }
    assert_eq!(
        conn.close_frame().cloned().flatten().map(|c| c.code),
        Some(4004)
    );

    // A refused upgrade carries its HTTP status; the v1 token in the query works.
    let err = Connection::connect(&format!("{base}?v=2&compress=zlib"), &ConnectOptions::new())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400), "{err}");
    let url = gateway_url(&base, Version::V1, None, &[("token", &alice.token)]);
    let mut conn = Connection::connect(&url, &ConnectOptions::new())
        .await
        .unwrap();
    match timeout(WAIT, conn.next_message()).await.unwrap().unwrap() {
        ServerMessage::Dispatch {
            seq: None,
            event: GatewayEvent::Ready(_),
        } => {}
        other => panic!("v1: expected READY, got {other:?}"),
    }
}
