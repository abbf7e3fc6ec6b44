//! Session logic on an in-memory socket, with virtual time: READY ordering, heartbeat
//! replies, the rate-limit window, the idle timeout, overflow and shutdown closes, the
//! write linger and how it adapts.

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use common::Client;
use concord_gateway::{
    CloseReason, CommandError, Ending, Hub, Payload, QueueLimits, ReadyError, SessionConfig,
    SessionEntry, SessionHandler, run_session,
};
use concord_protocol::{Command, UserId};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Message, protocol::CloseFrame};

#[derive(Default)]
struct Recorder {
    commands: Mutex<Vec<Command>>,
    endings: Mutex<Vec<(Ending, usize)>>,
    /// Published to the user while READY is being built (as a concurrent REST call would).
    during_ready: Mutex<Option<(Arc<Hub>, Payload)>>,
}

#[async_trait]
impl SessionHandler for Recorder {
    async fn ready(&self, session: &SessionEntry) -> Result<Payload, ReadyError> {
        if let Some((hub, payload)) = self.during_ready.lock().unwrap().take() {
            hub.send_to_user(session.user_id, &payload);
        }
        Ok(Payload::text(r#"{"op":"DISPATCH","t":"READY","d":{}}"#))
    }
    async fn connected(&self, _: &SessionEntry) {}
    async fn command(&self, _: &SessionEntry, command: Command) -> Result<(), CommandError> {
        self.commands.lock().unwrap().push(command);
        Ok(())
    }
    async fn disconnected(&self, _: &SessionEntry, ending: Ending, remaining: usize) {
        self.endings.lock().unwrap().push((ending, remaining));
    }
}

fn start(
    hub: &Arc<Hub>,
    handler: Arc<Recorder>,
    config: SessionConfig,
) -> (Client, UserId, tokio::task::JoinHandle<()>) {
    let (socket, client) = common::pair();
    let user = UserId::new();
    let task = tokio::spawn(run_session(socket, Arc::clone(hub), handler, user, config));
    (client, user, task)
}

const HEARTBEAT: &str = r#"{"op":"HEARTBEAT","t":null,"d":null}"#;
const ACK: &str = r#"{"op":"HEARTBEAT_ACK"}"#;

#[tokio::test(start_paused = true)]
async fn events_published_while_ready_is_built_come_right_after_it() {
    let hub = Arc::new(Hub::new());
    let handler = Arc::new(Recorder::default());
    let early = Payload::text(r#"{"op":"DISPATCH","t":"MESSAGE_CREATE","d":{}}"#);
    *handler.during_ready.lock().unwrap() = Some((Arc::clone(&hub), early.clone()));
    let (mut client, _, _) = start(&hub, handler, SessionConfig::default());
    assert!(client.recv_text().await.contains("READY"));
    assert_eq!(client.recv_text().await, early.as_str());
}

#[tokio::test(start_paused = true)]
async fn heartbeat_is_acked_exactly_on_the_same_session() {
    let hub = Arc::new(Hub::new());
    let (mut client, _, _) = start(
        &hub,
        Arc::new(Recorder::default()),
        SessionConfig::default(),
    );
    client.recv_text().await;
    client.text(HEARTBEAT);
    assert_eq!(client.recv_text().await, ACK);
}

#[tokio::test(start_paused = true)]
async fn twenty_frames_per_rolling_second_and_the_rest_dropped() {
    let hub = Arc::new(Hub::new());
    let handler = Arc::new(Recorder::default());
    let (mut client, _, _) = start(&hub, Arc::clone(&handler), SessionConfig::default());
    client.recv_text().await;
    for _ in 0..25 {
        client.text(HEARTBEAT);
    }
    // Frames 21..25 fall in the same (virtual) instant and are dropped unanswered.
    client.text(r#"{"op":"TYPING_START","d":{"channel_id":"x"}}"#);
    for _ in 0..20 {
        assert_eq!(client.recv_text().await, ACK);
    }
    tokio::time::advance(Duration::from_millis(999)).await;
    client.text(HEARTBEAT);
    tokio::time::advance(Duration::from_millis(1)).await;
    // The window has rolled past the first twenty: this one counts.
    client.text(HEARTBEAT);
    assert_eq!(client.recv_text().await, ACK);
    assert!(
        handler.commands.lock().unwrap().is_empty(),
        "the dropped command never ran"
    );
    assert!(
        client.from_server.try_recv().is_err(),
        "exactly one more ack"
    );
}

#[tokio::test(start_paused = true)]
async fn malformed_unknown_and_server_ops_are_ignored() {
    let hub = Arc::new(Hub::new());
    let handler = Arc::new(Recorder::default());
    let (mut client, _, _) = start(&hub, Arc::clone(&handler), SessionConfig::default());
    client.recv_text().await;
    client.text("{not json");
    client.text(r#"{"op":"IDENTIFY","d":{}}"#);
    client.text(r#"{"op":"heartbeat"}"#);
    client.text(r#"{"op":"DISPATCH","t":"READY","d":{}}"#);
    client.text(r#"{"op":"HEARTBEAT_ACK"}"#);
    client
        .to_server
        .send(Ok(Message::Binary(vec![1, 2, 3].into())))
        .unwrap();
    client.text(r#"{"op":"PRESENCE_UPDATE","d":{"status":"away"},"extra":1}"#);
    client.text(HEARTBEAT);
    assert_eq!(
        client.recv_text().await,
        ACK,
        "nothing answered the ignored frames"
    );
    let commands = handler.commands.lock().unwrap();
    assert!(
        matches!(commands.as_slice(), [Command::PresenceUpdate(p)] if p.status == concord_protocol::Status::Away),
        "{commands:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_closes_with_1000_after_300_seconds_without_input() {
    let hub = Arc::new(Hub::new());
    let handler = Arc::new(Recorder::default());
    let (mut client, _, task) = start(&hub, Arc::clone(&handler), SessionConfig::default());
    client.recv_text().await;
    tokio::time::advance(Duration::from_secs(299)).await;
    // Any inbound frame resets the clock, pings included.
    client
        .to_server
        .send(Ok(Message::Ping(vec![].into())))
        .unwrap();
    tokio::task::yield_now().await;
    tokio::time::advance(Duration::from_secs(299)).await;
    tokio::task::yield_now().await;
    assert!(client.from_server.try_recv().is_err(), "still open");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(client.recv_close_code().await, 1000);
    task.await.unwrap();
    assert_eq!(*handler.endings.lock().unwrap(), vec![(Ending::Other, 0)]);
    assert_eq!(hub.session_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn overflow_closes_with_1008_and_revocation_too() {
    let hub = Arc::new(Hub::new());
    let config = SessionConfig {
        queue: QueueLimits {
            max_frames: 2,
            max_bytes: 1 << 20,
        },
        ..SessionConfig::default()
    };
    let (mut client, user, task) = start(&hub, Arc::new(Recorder::default()), config);
    client.recv_text().await;
    // Three frames queued before the writer runs: the third overflows.
    let frame = Payload::text(r#"{"op":"DISPATCH","t":"X","d":{}}"#);
    for _ in 0..3 {
        hub.send_to_user(user, &frame);
    }
    assert_eq!(client.recv_close_code().await, 1008);
    task.await.unwrap();

    let (mut client, user, _) = start(
        &hub,
        Arc::new(Recorder::default()),
        SessionConfig::default(),
    );
    client.recv_text().await;
    hub.close_user(user, CloseReason::Revoked);
    assert_eq!(client.recv_close_code().await, 1008);
}

#[tokio::test(start_paused = true)]
async fn shutdown_closes_every_session_with_1001() {
    let hub = Arc::new(Hub::new());
    let (mut a, _, _) = start(
        &hub,
        Arc::new(Recorder::default()),
        SessionConfig::default(),
    );
    let (mut b, _, _) = start(
        &hub,
        Arc::new(Recorder::default()),
        SessionConfig::default(),
    );
    a.recv_text().await;
    b.recv_text().await;
    hub.close_all(CloseReason::Shutdown);
    assert_eq!(a.recv_close_code().await, 1001);
    assert_eq!(b.recv_close_code().await, 1001);
}

#[tokio::test(start_paused = true)]
async fn a_clean_client_close_is_reported_as_such() {
    let hub = Arc::new(Hub::new());
    let handler = Arc::new(Recorder::default());
    let (mut client, _, task) = start(&hub, Arc::clone(&handler), SessionConfig::default());
    client.recv_text().await;
    let frame = CloseFrame {
        code: 1000.into(),
        reason: "".into(),
    };
    client
        .to_server
        .send(Ok(Message::Close(Some(frame))))
        .unwrap();
    task.await.unwrap();
    assert_eq!(
        *handler.endings.lock().unwrap(),
        vec![(Ending::ClientClosedCleanly, 0)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_busy_session_waits_out_the_linger_and_an_idle_one_writes_at_once() {
    let hub = Arc::new(Hub::new());
    let config = SessionConfig {
        write_linger: Duration::from_millis(20),
        ..SessionConfig::default()
    };
    let (mut client, user, _) = start(&hub, Arc::new(Recorder::default()), config);
    client.recv_text().await;
    let ready_at = client.writes.lock().unwrap()[0].0;
    let frame = |n: u32| Payload::text(&format!(r#"{{"op":"DISPATCH","t":"X","d":{n}}}"#));

    // READY was just written: what follows within the linger leaves in one write,
    // once the linger since READY is over.
    hub.send_to_user(user, &frame(1));
    tokio::time::sleep(Duration::from_millis(5)).await;
    hub.send_to_user(user, &frame(2));
    hub.send_to_user(user, &frame(3));
    for n in 1..=3 {
        assert_eq!(client.recv_text().await, frame(n).as_str());
    }
    let writes = client.writes.lock().unwrap().clone();
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert_eq!(writes[1], (ready_at + Duration::from_millis(20), 3));

    // Quiet for longer than the linger: the next frame goes out at once, alone.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sent_at = Instant::now();
    hub.send_to_user(user, &frame(4));
    assert_eq!(client.recv_text().await, frame(4).as_str());
    assert_eq!(client.writes.lock().unwrap()[2], (sent_at, 1));
}

#[tokio::test(start_paused = true)]
async fn frames_piled_up_for_the_session_raise_its_linger_until_a_write_gathers_nothing() {
    let hub = Arc::new(Hub::new());
    let config = SessionConfig {
        write_linger: Duration::from_millis(20),
        write_linger_max: Duration::from_millis(250),
        ..SessionConfig::default()
    };
    let (mut client, user, _) = start(&hub, Arc::new(Recorder::default()), config);
    client.recv_text().await;
    let frame = |n: u32| Payload::text(&format!(r#"{{"op":"DISPATCH","t":"X","d":{n}}}"#));
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Three pushes at a time, and each time the session's task runs only 50 ms
    // later (a saturated server). The first such write tells the queue the session
    // is busy; the second one, stamped, raises the linger one step, 20 → 40 ms
    // (towards 4 × 50 ms).
    let mut late = Instant::now();
    for round in 0..2 {
        for n in 1..=3 {
            hub.send_to_user(user, &frame(round * 3 + n));
        }
        tokio::time::advance(Duration::from_millis(50)).await;
        for n in 1..=3 {
            assert_eq!(client.recv_text().await, frame(round * 3 + n).as_str());
        }
        late += Duration::from_millis(50);
    }
    let writes = client.writes.lock().unwrap().clone();
    assert_eq!(
        writes[1..],
        [(late - Duration::from_millis(50), 3), (late, 3)]
    );

    // The next frame waits out the raised linger, 40 ms from that write.
    hub.send_to_user(user, &frame(7));
    assert_eq!(client.recv_text().await, frame(7).as_str());
    let lingered = late + Duration::from_millis(40);
    assert_eq!(client.writes.lock().unwrap()[3], (lingered, 1));

    // That write gathered one push: lingering only delayed it, so the linger is back
    // at 20 ms.
    hub.send_to_user(user, &frame(8));
    assert_eq!(client.recv_text().await, frame(8).as_str());
    assert_eq!(
        client.writes.lock().unwrap()[4],
        (lingered + Duration::from_millis(20), 1)
    );

    // Two stamped pushes that waited as long do not raise it: after a write of both,
    // the next frame waits 20 ms, not 40.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut late = Instant::now();
    for batch in [&[9, 10, 11][..], &[12, 13]] {
        for &n in batch {
            hub.send_to_user(user, &frame(n));
        }
        tokio::time::advance(Duration::from_millis(50)).await;
        for &n in batch {
            assert_eq!(client.recv_text().await, frame(n).as_str());
        }
        late += Duration::from_millis(50);
    }
    hub.send_to_user(user, &frame(14));
    assert_eq!(client.recv_text().await, frame(14).as_str());
    let writes = client.writes.lock().unwrap().clone();
    assert_eq!(writes[6], (late, 2), "{writes:?}");
    assert_eq!(
        writes[7],
        (late + Duration::from_millis(20), 1),
        "{writes:?}"
    );
}
