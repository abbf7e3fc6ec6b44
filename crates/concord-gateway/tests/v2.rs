//! Protocol v2 on an in-memory socket, in virtual time: the handshake, numbering,
//! ERROR answers, rate limiting, every close code, RESUME with replay and take-over,
//! and INVALID_SESSION.

mod common;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use async_trait::async_trait;
use common::Client;
use concord_gateway::{
    AuthFailure, Authenticator, CloseReason, CommandError, Compression, CompressionConfig,
    Credential, Ending, Found, Gateway, GatewayConfig, Hub, Payload, Principal, QueueLimits,
    ReadyError, RemoteSessions, SessionEntry, SessionHandler, Shadow, StreamCompressor,
};
use concord_protocol::{Command, ErrorCode, Event, UserId};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// The domain's side, recording what the engine tells it.
#[derive(Default)]
struct Recorder {
    disconnected: Mutex<Vec<(UserId, Ending, usize)>>,
    resumed: Mutex<Vec<UserId>>,
}

#[async_trait]
impl SessionHandler for Recorder {
    async fn ready(&self, session: &SessionEntry) -> Result<Payload, ReadyError> {
        Payload::dispatch(Event::Ready, &json!({"user": session.user_id}))
            .map_err(|e| ReadyError(e.to_string()))
    }
    async fn connected(&self, _: &SessionEntry) {}
    async fn resumed(&self, session: &SessionEntry) {
        self.resumed.lock().unwrap().push(session.user_id);
    }
    async fn command(&self, _: &SessionEntry, command: Command) -> Result<(), CommandError> {
        match command {
            Command::TypingStart(_) => Err(CommandError::new(ErrorCode::Forbidden, "no")),
            _ => Ok(()),
        }
    }
    async fn disconnected(&self, session: &SessionEntry, ending: Ending, remaining: usize) {
        self.disconnected
            .lock()
            .unwrap()
            .push((session.user_id, ending, remaining));
    }
}

/// Tokens: "alice", "bob" (no expiry), "short" (alice, expires in 60 s), "limited".
struct TestAuth {
    users: HashMap<&'static str, UserId>,
    recorder: Arc<Recorder>,
}

#[async_trait]
impl Authenticator for TestAuth {
    async fn authenticate(&self, credential: Credential<'_>) -> Result<Principal, AuthFailure> {
        let Credential::Token(token) = credential else {
            return Err(AuthFailure::Invalid);
        };
        if token == "limited" {
            return Err(AuthFailure::Refused {
                status: 429,
                body: "{}".into(),
                retry_after_secs: Some(1),
            });
        }
        let (user, expires_at) = match token {
            "short" => (
                self.users["alice"],
                Some(SystemTime::now() + Duration::from_secs(60)),
            ),
            name => (*self.users.get(name).ok_or(AuthFailure::Invalid)?, None),
        };
        Ok(Principal {
            user_id: user,
            expires_at,
            handler: Arc::clone(&self.recorder) as Arc<dyn SessionHandler>,
        })
    }

    async fn restore(&self, _: UserId) -> Option<Arc<dyn SessionHandler>> {
        Some(Arc::clone(&self.recorder) as Arc<dyn SessionHandler>)
    }
}

struct Setup {
    gateway: Arc<Gateway>,
    hub: Arc<Hub>,
    recorder: Arc<Recorder>,
    alice: UserId,
}

fn setup(config: GatewayConfig) -> Setup {
    let hub = Arc::new(Hub::new());
    let recorder = Arc::new(Recorder::default());
    let alice = UserId::new();
    let users = HashMap::from([("alice", alice), ("bob", UserId::new())]);
    let auth = Arc::new(TestAuth {
        users,
        recorder: Arc::clone(&recorder),
    });
    Setup {
        gateway: Gateway::new(Arc::clone(&hub), auth, config),
        hub,
        recorder,
        alice,
    }
}

impl Setup {
    /// Another node: its own hub and gateway, the same users.
    fn other_node(&self) -> Self {
        let hub = Arc::new(Hub::new());
        let recorder = Arc::new(Recorder::default());
        let users = HashMap::from([("alice", self.alice), ("bob", UserId::new())]);
        let auth = Arc::new(TestAuth {
            users,
            recorder: Arc::clone(&recorder),
        });
        Self {
            gateway: Gateway::new(Arc::clone(&hub), auth, *self.gateway.config()),
            hub,
            recorder,
            alice: self.alice,
        }
    }

    /// A new v2 socket; its HELLO is read.
    async fn connect(&self) -> (Client, Value) {
        let (socket, mut client) = common::pair();
        tokio::spawn(Arc::clone(&self.gateway).serve_v2_socket(socket, None, None));
        let hello = client.json().await;
        assert_eq!(hello["op"], "HELLO", "{hello}");
        (client, hello["d"].clone())
    }

    /// A new identified session of `token`'s user: (client, session id).
    async fn identify(&self, token: &str) -> (Client, String) {
        let (client, hello) = self.connect().await;
        client.send(json!({"op": "IDENTIFY", "d": {"token": token}}));
        let mut client = client;
        let ready = client.json().await;
        assert_eq!(
            (&ready["t"], &ready["s"]),
            (&json!("READY"), &json!(1)),
            "{ready}"
        );
        (client, hello["session_id"].as_str().unwrap().to_string())
    }

    fn publish(&self, user: UserId, n: u64) {
        let event = Payload::dispatch(Event::MessageCreate, &json!({"n": n})).unwrap();
        self.hub.send_to_user(user, &event);
    }
}

impl Client {
    fn send(&self, value: Value) {
        self.text(&value.to_string());
    }

    async fn json(&mut self) -> Value {
        serde_json::from_str(&self.recv_text().await).unwrap()
    }

    /// Reads `count` dispatches: their (s, d.n).
    async fn numbered(&mut self, count: usize) -> Vec<(u64, Value)> {
        let mut out = Vec::new();
        while out.len() < count {
            let frame = self.json().await;
            out.push((frame["s"].as_u64().unwrap(), frame["d"]["n"].clone()));
        }
        out
    }
}

const HEARTBEAT: &str = r#"{"op":"HEARTBEAT","d":null}"#;

#[tokio::test(start_paused = true)]
async fn hello_identify_and_every_dispatch_numbered() {
    let t = setup(GatewayConfig::default());
    let (client, hello) = t.connect().await;
    assert_eq!(hello["heartbeat_interval"], 30_000);
    assert_eq!(hello["session_id"].as_str().unwrap().len(), 32);
    client.send(json!({"op": "IDENTIFY", "d": {"token": "alice"}}));
    let mut client = client;
    let ready = client.json().await;
    assert_eq!(ready["s"], 1);
    assert_eq!(ready["d"]["user"], json!(t.alice));
    t.publish(t.alice, 7);
    let frame = client.json().await;
    assert_eq!(frame["op"], "DISPATCH");
    assert_eq!(
        (&frame["s"], &frame["t"], &frame["d"]["n"]),
        (&json!(2), &json!("MESSAGE_CREATE"), &json!(7))
    );
    client.text(HEARTBEAT);
    assert_eq!(client.recv_text().await, r#"{"op":"HEARTBEAT_ACK"}"#);
}

#[tokio::test(start_paused = true)]
async fn before_identify_only_heartbeats_count_and_silence_closes_4003() {
    let t = setup(GatewayConfig::default());
    let (mut client, _) = t.connect().await;
    client.send(json!({"op": "TYPING_START", "d": {"channel_id": "x"}}));
    client.text(HEARTBEAT);
    assert_eq!(client.recv_text().await, r#"{"op":"HEARTBEAT_ACK"}"#);
    // An IDENTIFY of the wrong shape is explained, and not acted on.
    client.send(json!({"op": "IDENTIFY", "d": {"token": "alice", "intents": ["nope"]}}));
    let error = client.json().await;
    assert_eq!(error["d"]["code"], "INVALID_PAYLOAD", "{error}");
    // Heartbeats do not hold the deadline off.
    tokio::time::advance(Duration::from_secs(9)).await;
    client.text(HEARTBEAT);
    assert_eq!(client.recv_text().await, r#"{"op":"HEARTBEAT_ACK"}"#);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(client.recv_close_code().await, 4003);
}

#[tokio::test(start_paused = true)]
async fn bad_credentials_close_4004_and_a_limited_bot_4008() {
    let t = setup(GatewayConfig::default());
    for (d, code) in [
        (json!({"token": "nobody"}), 4004),
        (json!({}), 4004),
        (json!({"token": "limited"}), 4008),
    ] {
        let (mut client, _) = t.connect().await;
        client.send(json!({"op": "IDENTIFY", "d": d}));
        assert_eq!(client.recv_close_code().await, code, "{d}");
    }
    let (mut client, _) = t.connect().await;
    client.send(json!({"op": "RESUME", "d": {"token": "nobody", "session_id": "x", "seq": 0}}));
    assert_eq!(client.recv_close_code().await, 4004);
    assert_eq!(t.hub.session_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_second_identify_closes_4005() {
    let t = setup(GatewayConfig::default());
    let (mut client, _) = t.identify("alice").await;
    client.send(json!({"op": "IDENTIFY", "d": {"token": "alice"}}));
    assert_eq!(client.recv_close_code().await, 4005);
}

#[tokio::test(start_paused = true)]
async fn no_heartbeat_for_one_and_a_half_intervals_closes_4006() {
    let t = setup(GatewayConfig::default());
    let (mut client, _) = t.identify("alice").await;
    tokio::time::advance(Duration::from_secs(40)).await;
    client.text(HEARTBEAT);
    assert_eq!(client.recv_text().await, r#"{"op":"HEARTBEAT_ACK"}"#);
    // Other frames do not count as heartbeats.
    tokio::time::advance(Duration::from_secs(30)).await;
    client.send(json!({"op": "PRESENCE_UPDATE", "d": {"status": "away"}}));
    tokio::time::advance(Duration::from_secs(14)).await;
    client.text(HEARTBEAT);
    assert_eq!(client.recv_text().await, r#"{"op":"HEARTBEAT_ACK"}"#);
    tokio::time::advance(Duration::from_millis(44_999)).await;
    tokio::task::yield_now().await;
    assert!(client.from_server.try_recv().is_err(), "still open");
    assert_eq!(client.recv_close_code().await, 4006);
    // Resumable: the session waits, detached.
    assert_eq!(t.hub.session_count(), 1);
    assert!(!t.hub.is_connected(t.alice));
}

#[tokio::test(start_paused = true)]
async fn bad_input_gets_an_error_and_the_connection_stays() {
    let t = setup(GatewayConfig::default());
    let (mut client, _) = t.identify("alice").await;
    let cases = [
        ("{not json".to_string(), "DECODE_ERROR"),
        (r#"{"op":"SUBSCRIBE"}"#.to_string(), "UNKNOWN_OP"),
        (
            r#"{"op":"DISPATCH","t":"READY","d":{}}"#.to_string(),
            "UNKNOWN_OP",
        ),
        (
            r#"{"op":"TYPING_START","d":{"channel_id":7}}"#.to_string(),
            "INVALID_PAYLOAD",
        ),
        (
            r#"{"op":"PRESENCE_UPDATE","d":{"status":"busy"}}"#.to_string(),
            "INVALID_PAYLOAD",
        ),
        (
            format!(
                r#"{{"op":"TYPING_START","d":{{"channel_id":"{}"}}}}"#,
                uuid::Uuid::new_v4()
            ),
            "FORBIDDEN",
        ),
    ];
    for (text, code) in &cases {
        client.text(text);
        let error = client.json().await;
        assert_eq!(error["op"], "ERROR");
        assert_eq!(error["d"]["code"], *code, "{text}: {error}");
        assert!(
            error["d"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        assert!(error.get("s").is_none(), "errors are not numbered");
    }
    client
        .to_server
        .send(Ok(Message::Binary(vec![1, 2].into())))
        .unwrap();
    assert_eq!(client.json().await["d"]["code"], "BINARY_NOT_ACCEPTED");
    client.text(HEARTBEAT);
    assert_eq!(client.recv_text().await, r#"{"op":"HEARTBEAT_ACK"}"#);
    t.publish(t.alice, 1);
    assert_eq!(
        client.json().await["s"],
        2,
        "numbering unaffected by errors"
    );
}

#[tokio::test(start_paused = true)]
async fn over_the_rate_limit_each_frame_is_refused_and_three_seconds_of_it_close_4008() {
    let t = setup(GatewayConfig::default());
    let (mut client, _) = t.identify("alice").await;
    let presence = json!({"op": "PRESENCE_UPDATE", "d": {"status": "away"}}).to_string();
    for _ in 0..25 {
        client.text(&presence);
    }
    // Heartbeats are exempt, even now.
    client.text(HEARTBEAT);
    for _ in 0..5 {
        let error = client.json().await;
        assert_eq!(error["d"]["code"], "RATE_LIMITED", "{error}");
        let retry_after = error["d"]["retry_after"].as_u64().unwrap();
        assert!((1..=1000).contains(&retry_after), "{error}");
    }
    assert_eq!(client.recv_text().await, r#"{"op":"HEARTBEAT_ACK"}"#);
    // Over the limit in this window and the next: still open. In a third: 4008.
    tokio::time::advance(Duration::from_secs(1)).await;
    for _ in 0..21 {
        client.text(&presence);
    }
    assert_eq!(client.json().await["d"]["code"], "RATE_LIMITED");
    client.text(HEARTBEAT);
    assert_eq!(client.recv_text().await, r#"{"op":"HEARTBEAT_ACK"}"#);
    tokio::time::advance(Duration::from_secs(1)).await;
    for _ in 0..21 {
        client.text(&presence);
    }
    assert_eq!(client.recv_close_code().await, 4008);
}

#[tokio::test(start_paused = true)]
async fn an_expired_token_closes_4009_and_a_resume_with_a_fresh_one_continues() {
    let t = setup(GatewayConfig::default());
    let (mut client, session) = t.identify("short").await;
    for _ in 0..2 {
        tokio::time::advance(Duration::from_secs(20)).await;
        client.text(HEARTBEAT);
        assert_eq!(client.recv_text().await, r#"{"op":"HEARTBEAT_ACK"}"#);
    }
    tokio::time::advance(Duration::from_secs(19)).await;
    tokio::task::yield_now().await;
    assert!(client.from_server.try_recv().is_err(), "still open at 59 s");
    assert_eq!(client.recv_close_code().await, 4009);
    let (mut client, _) = t.connect().await;
    client.send(json!({"op": "RESUME", "d": {"token": "alice", "session_id": session, "seq": 1}}));
    let resumed = client.json().await;
    assert_eq!(
        (&resumed["t"], &resumed["s"]),
        (&json!("RESUMED"), &json!(2)),
        "{resumed}"
    );
}

#[tokio::test(start_paused = true)]
async fn overflow_closes_4013_and_the_session_cannot_be_resumed() {
    let mut config = GatewayConfig::default();
    config.session.queue = QueueLimits {
        max_frames: 2,
        max_bytes: 1 << 20,
    };
    let t = setup(config);
    let (mut client, session) = t.identify("alice").await;
    for n in 0..3 {
        t.publish(t.alice, n);
    }
    assert_eq!(client.recv_close_code().await, 4013);
    tokio::task::yield_now().await;
    let (mut client, _) = t.connect().await;
    client.send(json!({"op": "RESUME", "d": {"token": "alice", "session_id": session, "seq": 1}}));
    let invalid = client.json().await;
    assert_eq!(
        invalid,
        json!({"op": "INVALID_SESSION", "d": {"resumable": false}})
    );
}

#[tokio::test(start_paused = true)]
async fn resume_replays_what_was_missed_exactly_once_in_order() {
    let t = setup(GatewayConfig::default());
    let (mut client, session) = t.identify("alice").await;
    for n in 2..=3 {
        t.publish(t.alice, n);
    }
    assert_eq!(client.numbered(2).await, [(2, json!(2)), (3, json!(3))]);
    // The client saw up to s=2 when its network went; s=3 was sent but lost.
    drop(client);
    tokio::task::yield_now().await;
    assert!(!t.hub.is_connected(t.alice));
    assert_eq!(
        *t.recorder.disconnected.lock().unwrap(),
        [(t.alice, Ending::Other, 0)]
    );
    // Published while no socket serves the session: queued for it.
    for n in 4..=5 {
        t.publish(t.alice, n);
    }
    let (mut client, _) = t.connect().await;
    client.send(json!({"op": "RESUME", "d": {"token": "alice", "session_id": session, "seq": 2}}));
    assert_eq!(
        client.numbered(3).await,
        [(3, json!(3)), (4, json!(4)), (5, json!(5))]
    );
    let resumed = client.json().await;
    assert_eq!(
        resumed,
        json!({"op": "DISPATCH", "s": 6, "t": "RESUMED", "d": {"replayed": 3}})
    );
    assert!(t.hub.is_connected(t.alice));
    assert_eq!(*t.recorder.resumed.lock().unwrap(), [t.alice]);
    t.publish(t.alice, 7);
    assert_eq!(client.numbered(1).await, [(7, json!(7))]);
    assert_eq!(t.hub.session_count(), 1, "one session, resumed");
}

/// Two nodes, and a session of alice's about to move from the first to the second: read
/// up to 2, parked with 3 queued, and a shadow of it opened on the second node.
/// (leaving, staying, the session's id, its mark, the shadow).
async fn moving_session() -> (Setup, Setup, String, usize, Shadow) {
    let leaving = setup(GatewayConfig::default());
    let staying = leaving.other_node();
    let alice = leaving.alice;
    let (mut client, session) = leaving.identify("alice").await;
    leaving.publish(alice, 2);
    assert_eq!(client.numbered(1).await, [(2, json!(2))]);
    drop(client);
    tokio::task::yield_now().await;
    // Queued while parked, before the handover starts.
    leaving.publish(alice, 3);
    let parked = leaving.gateway.parked();
    assert_eq!(parked.len(), 1);
    assert_eq!((parked[0].user_id, parked[0].mark), (alice, 1));
    let shadow = staying.gateway.shadow(alice, parked[0].intents);
    (leaving, staying, session, parked[0].mark, shadow)
}

/// A node of a cluster that stops hands its parked sessions over: the node that takes
/// one over was sent, from the shadow's start, what the session would be; joined to
/// the session's own state, less what both nodes were sent, its client resumes there
/// with every event once, in order.
#[tokio::test(start_paused = true)]
async fn a_session_handed_to_another_node_resumes_there_with_every_event_once() {
    let (leaving, staying, session, mark, shadow) = moving_session().await;
    let alice = leaving.alice;
    // What the shadow got before it was started afresh does not count.
    staying.publish(alice, 99);
    staying.gateway.reset_shadow(&shadow);
    // After the mark: both nodes have it.
    leaving.publish(alice, 4);
    staying.publish(alice, 4);
    let saved = leaving.gateway.take_saved(&session).expect("parked");
    assert!(leaving.gateway.take_saved(&session).is_none(), "it left");
    assert_eq!(leaving.hub.session_count(), 0);
    // After it left: only the new node has it.
    staying.publish(alice, 5);
    assert!(staying.gateway.adopt(saved, mark, shadow).await);
    staying.publish(alice, 6);
    assert!(staying.gateway.holds(&session, alice));
    let (mut client, _) = staying.connect().await;
    client.send(json!({"op": "RESUME", "d": {"token": "alice", "session_id": session, "seq": 2}}));
    assert_eq!(
        client.numbered(4).await,
        [(3, json!(3)), (4, json!(4)), (5, json!(5)), (6, json!(6))]
    );
    let resumed = client.json().await;
    assert_eq!(
        resumed,
        json!({"op": "DISPATCH", "s": 7, "t": "RESUMED", "d": {"replayed": 4}})
    );
}

/// The cluster of the test below, as the node taking a session over sees it: the
/// question for the session ends once the stopping node has handed it over here.
struct HandedOverMeanwhile {
    leaving: Arc<Gateway>,
    staying: std::sync::Weak<Gateway>,
    moving: Mutex<Option<(usize, Shadow)>>,
}

#[async_trait]
impl RemoteSessions for HandedOverMeanwhile {
    async fn open(&self, session_id: &str, _: UserId, _: String) -> Option<Found> {
        let (mark, shadow) = self.moving.lock().unwrap().take()?;
        let saved = self.leaving.take_saved(session_id)?;
        let staying = self.staying.upgrade()?;
        staying
            .adopt(saved, mark, shadow)
            .await
            .then_some(Found::Here)
    }
}

/// A RESUME that reaches the node taking a session over before the session does is
/// served there once it arrives (not relayed to the node itself).
#[tokio::test(start_paused = true)]
async fn a_resume_on_the_node_a_session_moves_to_is_served_there_once_it_arrives() {
    let (leaving, staying, session, mark, shadow) = moving_session().await;
    let alice = leaving.alice;
    staying.gateway.reset_shadow(&shadow);
    leaving.publish(alice, 4);
    staying.publish(alice, 4);
    staying.gateway.set_remote(Arc::new(HandedOverMeanwhile {
        leaving: Arc::clone(&leaving.gateway),
        staying: Arc::downgrade(&staying.gateway),
        moving: Mutex::new(Some((mark, shadow))),
    }));
    assert!(!staying.gateway.holds(&session, alice), "not here yet");
    let (mut client, _) = staying.connect().await;
    client.send(json!({"op": "RESUME", "d": {"token": "alice", "session_id": session, "seq": 2}}));
    assert_eq!(client.numbered(2).await, [(3, json!(3)), (4, json!(4))]);
    assert_eq!(
        client.json().await,
        json!({"op": "DISPATCH", "s": 5, "t": "RESUMED", "d": {"replayed": 2}})
    );
    assert_eq!(leaving.hub.session_count(), 0);
    staying.publish(alice, 6);
    assert_eq!(client.numbered(1).await, [(6, json!(6))]);
}

#[tokio::test(start_paused = true)]
async fn a_resume_takes_the_session_from_a_socket_that_is_still_open() {
    let t = setup(GatewayConfig::default());
    let (mut old, session) = t.identify("alice").await;
    t.publish(t.alice, 2);
    assert_eq!(old.numbered(1).await, [(2, json!(2))]);
    // A half-open socket: the server has not noticed the client is gone.
    let (mut client, _) = t.connect().await;
    client.send(json!({"op": "RESUME", "d": {"token": "alice", "session_id": session, "seq": 1}}));
    assert_eq!(client.numbered(1).await, [(2, json!(2))]);
    assert_eq!(client.json().await["t"], "RESUMED");
    t.publish(t.alice, 4);
    assert_eq!(client.numbered(1).await, [(4, json!(4))]);
    assert!(
        old.from_server.try_recv().is_err(),
        "the old socket gets nothing more"
    );
    assert!(
        t.recorder.disconnected.lock().unwrap().is_empty(),
        "the user never looked disconnected"
    );
    assert!(t.recorder.resumed.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn invalid_resumes_get_invalid_session_and_may_identify_on_the_same_socket() {
    let t = setup(GatewayConfig::default());
    let (mut alice, session) = t.identify("alice").await;
    t.publish(t.alice, 2);
    alice.numbered(1).await;
    let invalid = json!({"op": "INVALID_SESSION", "d": {"resumable": false}});
    let (mut client, hello) = t.connect().await;
    for d in [
        json!({"token": "alice", "session_id": "unknown", "seq": 0}),
        json!({"token": "bob", "session_id": session, "seq": 2}),
        json!({"token": "alice", "session_id": session, "seq": 9}),
    ] {
        client.send(json!({"op": "RESUME", "d": d}));
        assert_eq!(client.json().await, invalid, "{d}");
    }
    // The last one took alice's session from its socket, found a seq the server never
    // sent, and ended the session: the old socket is let go, the user disconnected.
    assert!(alice.from_server.recv().await.is_none());
    assert_eq!(
        *t.recorder.disconnected.lock().unwrap(),
        [(t.alice, Ending::Other, 0)]
    );
    client.send(json!({"op": "IDENTIFY", "d": {"token": "alice"}}));
    let ready = client.json().await;
    assert_eq!(ready["s"], 1);
    // The new session is the one this socket's HELLO named.
    drop(client);
    tokio::task::yield_now().await;
    let (mut again, _) = t.connect().await;
    again.send(json!({"op": "RESUME", "d": {"token": "alice", "session_id": hello["session_id"], "seq": 1}}));
    assert_eq!(again.json().await["t"], "RESUMED");
}

#[tokio::test(start_paused = true)]
async fn a_session_nobody_resumes_is_dropped_after_the_window() {
    let t = setup(GatewayConfig::default());
    let (client, session) = t.identify("alice").await;
    drop(client);
    tokio::task::yield_now().await;
    assert_eq!(t.hub.session_count(), 1);
    tokio::time::advance(Duration::from_secs(121)).await;
    // The expiry timer fired; let its task run.
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
    assert_eq!(t.hub.session_count(), 0);
    assert_eq!(t.gateway.v2_sessions(), 0);
    assert_eq!(
        t.gateway.replay_bytes(),
        0,
        "the replay buffer was released"
    );
    let (mut client, _) = t.connect().await;
    client.send(json!({"op": "RESUME", "d": {"token": "alice", "session_id": session, "seq": 1}}));
    assert_eq!(client.json().await["op"], "INVALID_SESSION");
}

#[tokio::test(start_paused = true)]
async fn shutdown_says_reconnect_then_closes_1001() {
    let t = setup(GatewayConfig::default());
    let (mut client, _) = t.identify("alice").await;
    t.hub.close_all(CloseReason::Shutdown);
    assert_eq!(client.recv_text().await, r#"{"op":"RECONNECT"}"#);
    assert_eq!(client.recv_close_code().await, 1001);
}

#[tokio::test(start_paused = true)]
async fn intents_filter_and_numbering_has_no_gaps() {
    let t = setup(GatewayConfig::default());
    let (client, _) = t.connect().await;
    client.send(json!({"op": "IDENTIFY", "d": {"token": "alice", "intents": ["typing"]}}));
    let mut client = client;
    assert_eq!(client.json().await["s"], 1);
    t.publish(t.alice, 1);
    let typing = Payload::dispatch(Event::TypingStart, &json!({"n": 2})).unwrap();
    t.hub.send_to_user(t.alice, &typing);
    let frame = client.json().await;
    assert_eq!(
        (&frame["t"], &frame["s"]),
        (&json!("TYPING_START"), &json!(2))
    );
}

#[tokio::test(start_paused = true)]
async fn compressed_connections_send_binary_frames_from_hello_on() {
    use std::io::Write;
    let t = setup(GatewayConfig::default());
    let (socket, mut client) = common::pair();
    let zlib = StreamCompressor::new(Compression::Zlib, CompressionConfig::default()).unwrap();
    tokio::spawn(Arc::clone(&t.gateway).serve_v2_socket(socket, Some(zlib), None));
    let mut inflate = flate2::write::ZlibDecoder::new(Vec::new());
    // Each message and the size of its frame on the wire.
    let mut next = async |client: &mut Client| -> (Value, usize) {
        let Message::Binary(bytes) = client.recv().await else {
            panic!("expected a binary frame")
        };
        assert!(bytes.ends_with(&[0, 0, 0xff, 0xff]));
        inflate.write_all(&bytes).unwrap();
        inflate.flush().unwrap();
        let message = serde_json::from_slice(&std::mem::take(inflate.get_mut())).unwrap();
        (message, bytes.len())
    };
    assert_eq!(next(&mut client).await.0["op"], "HELLO");
    client.send(json!({"op": "IDENTIFY", "d": {"token": "alice"}}));
    assert_eq!(next(&mut client).await.0["s"], 1);
    let long = "a long message body that a warm stream sends as a back-reference";
    let event = Payload::dispatch(Event::MessageCreate, &json!({"n": 5, "text": long})).unwrap();
    t.hub.send_to_user(t.alice, &event);
    let (frame, first) = next(&mut client).await;
    assert_eq!((&frame["s"], &frame["d"]["n"]), (&json!(2), &json!(5)));
    t.hub.send_to_user(t.alice, &event);
    let (frame, warm) = next(&mut client).await;
    assert_eq!(frame["s"], 3);
    // 30 s without an event (heartbeats do not count): the context is released; the
    // stream goes on for the same decoder, without its history. An ACK while released
    // goes out stored, without bringing the context back.
    tokio::time::advance(Duration::from_secs(20)).await;
    client.text(HEARTBEAT);
    assert_eq!(next(&mut client).await.0, json!({"op": "HEARTBEAT_ACK"}));
    tokio::time::advance(Duration::from_secs(11)).await;
    client.text(HEARTBEAT);
    assert_eq!(next(&mut client).await.0, json!({"op": "HEARTBEAT_ACK"}));
    t.hub.send_to_user(t.alice, &event);
    let (frame, after_release) = next(&mut client).await;
    assert_eq!(
        (&frame["s"], &frame["d"]["text"]),
        (&json!(4), &json!(long))
    );
    assert!(warm * 2 < first, "warm {warm} B, first {first} B");
    assert!(
        after_release * 2 > first,
        "no history after the release: {after_release} B"
    );
}
