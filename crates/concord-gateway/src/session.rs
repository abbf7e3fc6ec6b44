//! One socket's life: READY first, then reading, writing in batches, limits, closing.
//!
//! [`run_session`] is generic over the socket ([`GatewaySocket`]: a `Stream` + `Sink`
//! of WebSocket messages that can also take pre-encoded frames), so it runs on a real
//! socket in production and on an in-memory pair in tests. The chat domain plugs in
//! through [`SessionHandler`].

use std::{
    future::{Future, poll_fn},
    sync::{
        Arc, LazyLock,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, Wake, Waker},
    time::Duration,
};

use async_trait::async_trait;
use concord_protocol::{ClientFrame, CloseCode, Op, UserId};
use futures_util::{Sink, SinkExt, Stream, StreamExt, task::AtomicWaker};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{
    self, Message,
    protocol::{CloseFrame, frame::coding::CloseCode as WsCloseCode},
};

use crate::{
    CloseReason, Frames, Hub, Payload, QueueLimits, RateWindow, SessionEntry, linger::Linger,
};

/// The v1 heartbeat acknowledgement, encoded once.
static HEARTBEAT_ACK: LazyLock<Payload> =
    LazyLock::new(|| Payload::text(concord_protocol::HEARTBEAT_ACK));

/// A WebSocket the session can drive: messages in, control frames out through the
/// codec, and data frames out as pre-encoded bytes.
pub trait GatewaySocket:
    Stream<Item = Result<Message, tungstenite::Error>>
    + Sink<Message, Error = tungstenite::Error>
    + Unpin
    + Send
{
    /// Writes these complete frames in order, after anything the codec still holds
    /// (a pong, say), so frames never interleave.
    fn write_frames<'a>(
        &'a mut self,
        batch: &'a [Frames],
    ) -> impl Future<Output = std::io::Result<()>> + Send + 'a;
}

/// Limits and timings of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// Close after this long without any inbound frame.
    pub idle_timeout: Duration,
    /// Counted inbound text frames per window.
    pub rate_count: usize,
    /// The rate window.
    pub rate_window: Duration,
    /// Give up on a peer that does not take a batch (or a close) within this time.
    pub write_timeout: Duration,
    /// Outbound queue bounds.
    pub queue: QueueLimits,
    /// Least time between two writes of a busy session while the server keeps up. A
    /// frame for a session that has not written for this long goes out at once; under
    /// a steady stream, frames gather for up to this long and leave in one write.
    pub write_linger: Duration,
    /// The most a session's linger grows to while its frames wait long for its task
    /// (a saturated server; see `linger.rs`). At or below `write_linger`, the linger is
    /// fixed.
    pub write_linger_max: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(concord_protocol::limits::GATEWAY_IDLE_SECS),
            rate_count: concord_protocol::limits::GATEWAY_RATE_COUNT,
            rate_window: Duration::from_millis(concord_protocol::limits::GATEWAY_RATE_WINDOW_MS),
            write_timeout: Duration::from_secs(10),
            queue: QueueLimits::default(),
            write_linger: Duration::from_millis(20),
            write_linger_max: Duration::from_millis(250),
        }
    }
}

/// Why READY could not be built; the session closes with 1011.
#[derive(Debug, thiserror::Error)]
#[error("READY could not be built: {0}")]
pub struct ReadyError(pub String);

/// How a session ended, as the domain needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The client closed with 1000: it meant to leave (no presence grace period).
    ClientClosedCleanly,
    /// Anything else: socket lost, timeouts, limits, server-side closes.
    Other,
}

/// The chat domain's part of a session.
#[async_trait]
pub trait SessionHandler: Send + Sync + 'static {
    /// Builds READY. Called after the session is registered, so events published
    /// meanwhile are queued behind it.
    async fn ready(&self, session: &SessionEntry) -> Result<Payload, ReadyError>;
    /// READY was sent: announce the user (presence).
    async fn connected(&self, session: &SessionEntry);
    /// A client command other than HEARTBEAT (which the engine answers itself).
    async fn command(&self, session: &SessionEntry, op: Op, d: Option<serde_json::Value>);
    /// The session is gone and unregistered; `remaining` sessions of the user are left
    /// on this node.
    async fn disconnected(&self, session: &SessionEntry, ending: Ending, remaining: usize);
}

/// Maps a server-side close to its v1 code (`gateway.md` §6).
pub fn v1_close_code(reason: CloseReason) -> CloseCode {
    match reason {
        CloseReason::Overflow | CloseReason::Revoked => CloseCode::Policy,
        CloseReason::Shutdown => CloseCode::GoingAway,
        CloseReason::Internal => CloseCode::Internal,
    }
}

/// Drives one authenticated socket until it ends. Registers the session in `hub`
/// before READY is built and unregisters it at the end.
///
/// This future lives as long as the connection, idle or not, so its size is memory
/// per connection: it is an `async` block rather than an `async fn` (whose arguments
/// the compiler keeps twice, as arguments and as locals), and the writes, whose
/// futures are the largest states, are boxed for the time they run.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would keep its arguments twice in every session's task"
)]
pub fn run_session<S: GatewaySocket>(
    mut socket: S,
    hub: Arc<Hub>,
    handler: Arc<dyn SessionHandler>,
    user: UserId,
    config: SessionConfig,
) -> impl Future<Output = ()> + Send {
    async move {
        let entry = hub.register(user, config.queue);
        let ready = match handler.ready(&entry).await {
            Ok(ready) => ready,
            Err(err) => {
                tracing::error!(session = entry.id.0, %user, error = %err, "closing: READY failed");
                close(
                    &mut socket,
                    CloseCode::Internal,
                    "ready failed",
                    config.write_timeout,
                )
                .await;
                hub.unregister(entry.id);
                return;
            }
        };
        let first = [Frames::One(ready)];
        if !write_batch(&mut socket, &first, config.write_timeout).await {
            hub.unregister(entry.id);
            return;
        }
        drop(first);
        handler.connected(&entry).await;
        let ending = serve(&mut socket, &entry, handler.as_ref(), &config).await;
        let remaining = hub.unregister(entry.id);
        handler.disconnected(&entry, ending, remaining).await;
    }
}

async fn serve<S: GatewaySocket>(
    socket: &mut S,
    entry: &SessionEntry,
    handler: &dyn SessionHandler,
    config: &SessionConfig,
) -> Ending {
    let mut rate = RateWindow::new(config.rate_count, config.rate_window);
    let mut reader = ReadGate::new();
    let mut last_write = Instant::now();
    let mut linger = Linger::new(config.write_linger, config.write_linger_max);
    let idle = tokio::time::sleep(config.idle_timeout);
    tokio::pin!(idle);
    loop {
        // Unbiased on purpose: a session with a steady stream of outbound events must
        // still read its client's frames (heartbeats reset the idle clock).
        tokio::select! {
            () = entry.outbox.ready() => {
                // One write costs several deliveries: a busy session waits out the
                // linger so that what arrives meanwhile shares the write.
                let woke = Instant::now();
                let next_write = last_write + linger.get();
                if woke < next_write {
                    tokio::time::sleep_until(next_write).await;
                }
                // The queue's own buffer, written from and then freed: a buffer kept
                // between writes would hold the largest burst's capacity for as long
                // as the connection lives, idle or not.
                let mut taken = entry.outbox.take();
                if !taken.entries.is_empty() {
                    // Unknown (not busy before this write) counts as no wait.
                    let waited = taken
                        .since
                        .map_or(Duration::ZERO, |since| woke.saturating_duration_since(since));
                    linger.observe(taken.entries.len(), waited);
                    let batch = taken.entries.make_contiguous();
                    if !write_batch(socket, batch, config.write_timeout).await {
                        return Ending::Other;
                    }
                    last_write = Instant::now();
                }
                if let Some(reason) = taken.closing {
                    close(socket, v1_close_code(reason), "", config.write_timeout).await;
                    return Ending::Other;
                }
            }
            inbound = poll_fn(|cx| reader.poll_next(socket, cx)) => {
                idle.as_mut().reset(Instant::now() + config.idle_timeout);
                match inbound {
                    Some(Ok(Message::Text(text))) => {
                        if !rate.allow(Instant::now()) {
                            continue;
                        }
                        handle_text(entry, handler, text.as_str()).await;
                    }
                    Some(Ok(Message::Close(frame))) => {
                        let clean = frame.is_some_and(|f| f.code == WsCloseCode::Normal);
                        // Answer the close handshake; the peer may already be gone.
                        let _ = tokio::time::timeout(config.write_timeout, socket.flush()).await;
                        return if clean { Ending::ClientClosedCleanly } else { Ending::Other };
                    }
                    // Binary frames are ignored; pings are answered by the codec.
                    Some(Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                    Some(Err(err)) => {
                        if is_too_big(&err) {
                            close(socket, CloseCode::TooBig, "message too big", config.write_timeout).await;
                        }
                        return Ending::Other;
                    }
                    None => return Ending::Other,
                }
            }
            () = &mut idle => {
                close(socket, CloseCode::Normal, "idle timeout", config.write_timeout).await;
                return Ending::Other;
            }
        }
    }
}

/// Polls the socket's read side only when the socket asked for it.
///
/// `select!` polls every branch each time the task wakes, and most wake-ups of a busy
/// session are for outbound frames. Re-polling the reader then costs waker
/// registrations and a readiness check for nothing. The gate polls the reader with a
/// waker of its own that records that the socket woke the task; until then (after a
/// `Pending`) the read branch answers `Pending` at once. After a `Ready` the reader is
/// polled again next time, since the codec may hold further buffered frames.
struct ReadGate {
    signal: Arc<ReadSignal>,
    waker: Waker,
}

#[derive(Default)]
struct ReadSignal {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for ReadSignal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl ReadGate {
    fn new() -> Self {
        let signal = Arc::new(ReadSignal {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        let waker = Waker::from(Arc::clone(&signal));
        Self { signal, waker }
    }

    fn poll_next<S: GatewaySocket>(
        &mut self,
        socket: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Message, tungstenite::Error>>> {
        // Register before checking, so a wake-up between the two is not lost.
        self.signal.task.register(cx.waker());
        if !self.signal.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let polled = socket.poll_next_unpin(&mut Context::from_waker(&self.waker));
        if polled.is_ready() {
            self.signal.woken.store(true, Ordering::Release);
        }
        polled
    }
}

async fn handle_text(entry: &SessionEntry, handler: &dyn SessionHandler, text: &str) {
    // Malformed JSON, unknown ops and bad fields are dropped silently in v1.
    let Ok(frame) = serde_json::from_str::<ClientFrame>(text) else {
        return;
    };
    match frame.op {
        Op::Heartbeat => {
            // Answer on this session, behind whatever is already queued for it.
            entry.outbox.push(HEARTBEAT_ACK.clone());
        }
        Op::PresenceUpdate | Op::TypingStart | Op::VoiceSignal => {
            handler.command(entry, frame.op, frame.d).await;
        }
        // Server-to-client ops sent by a client are ignored.
        _ => {}
    }
}

/// Writes `batch` within `limit`. The write's future (slice array, timer) is boxed:
/// held inline it would be the largest state of every session's task, and so memory
/// every idle connection pays for.
async fn write_batch<S: GatewaySocket>(socket: &mut S, batch: &[Frames], limit: Duration) -> bool {
    let write = Box::pin(tokio::time::timeout(limit, socket.write_frames(batch)));
    matches!(write.await, Ok(Ok(())))
}

/// Sends a close frame within `limit`. Boxed like [`write_batch`]: the send's future
/// (a close frame, the sink's state, a timer) would otherwise be reserved in every
/// session's task, once per place a session can close, for a frame sent once.
async fn close<S: GatewaySocket>(
    socket: &mut S,
    code: CloseCode,
    reason: &'static str,
    limit: Duration,
) {
    let frame = CloseFrame {
        code: WsCloseCode::from(code.code()),
        reason: reason.into(),
    };
    let send = Box::pin(tokio::time::timeout(
        limit,
        socket.send(Message::Close(Some(frame))),
    ));
    let _ = send.await;
}

fn is_too_big(err: &tungstenite::Error) -> bool {
    matches!(err, tungstenite::Error::Capacity(_))
}
