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
use concord_protocol::{
    ClientMessage, CloseCode, Command, ErrorCode, GatewayError, MediaCommand, Op, OpFrame, UserId,
};
use futures_util::{Sink, SinkExt, Stream, StreamExt, task::AtomicWaker};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{
    self, Message,
    protocol::{CloseFrame, frame::coding::CloseCode as WsCloseCode},
};

use crate::{
    AudioItem, CloseReason, Frames, Hub, Payload, QueueLimits, RateWindow, SessionEntry, SessionId,
    StreamCompressor,
    linger::Linger,
    resume::Slot,
    wire::{Encoded, V2Stream},
};

/// The heartbeat acknowledgement (the same in v1 and v2), encoded once.
static HEARTBEAT_ACK: LazyLock<Payload> =
    LazyLock::new(|| Payload::text(concord_protocol::HEARTBEAT_ACK));

/// `RECONNECT`, encoded once.
pub(crate) static RECONNECT: LazyLock<Payload> =
    LazyLock::new(|| Payload::text(r#"{"op":"RECONNECT"}"#));

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

    /// Writes these bytes, which together are whole frames, in order, after anything
    /// the codec still holds (a v2 session's own envelopes and compressed frames).
    fn write_chunks<'a>(
        &'a mut self,
        chunks: &'a [&'a [u8]],
    ) -> impl Future<Output = std::io::Result<()>> + Send + 'a;

    /// Notes that this socket is being closed with `code` because its client broke the
    /// protocol, for the operator's counts. Sockets that keep no counts ignore it.
    fn protocol_violation(&self, _code: CloseCode) {}
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

/// Why the chat domain refused a command; a v2 session answers it with ERROR, a v1
/// session drops the frame silently.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct CommandError {
    /// The ERROR code.
    pub code: ErrorCode,
    /// For people.
    pub message: String,
}

impl CommandError {
    /// A refusal with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

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
    /// A v2 session whose socket had dropped was resumed on a new one (and has been
    /// sent what it missed): announce the user again if the grace period ran out.
    async fn resumed(&self, session: &SessionEntry) {
        self.connected(session).await;
    }
    /// A client command, parsed and checked for shape (HEARTBEAT, IDENTIFY and RESUME
    /// the engine handles itself).
    ///
    /// # Errors
    /// Why the command was refused: v2 answers with ERROR, v1 drops it.
    async fn command(&self, session: &SessionEntry, command: Command) -> Result<(), CommandError>;
    /// The session's socket is gone; `remaining` attached sessions of the user are left
    /// on this node. A v2 session may stay registered, detached, for its resume window.
    async fn disconnected(&self, session: &SessionEntry, ending: Ending, remaining: usize);
    /// A v2 audio command (`MEDIA_*`). A domain without audio refuses it.
    ///
    /// # Errors
    /// Why the command was refused (answered with ERROR).
    async fn media(
        &self,
        _session: &SessionEntry,
        command: MediaCommand,
    ) -> Result<(), CommandError> {
        let _ = command;
        Err(CommandError::new(
            ErrorCode::UnknownOp,
            "audio is not served here",
        ))
    }
    /// A v2 binary frame (an audio chunk, `docs/protocol-v2.md` §15.3). A domain without
    /// audio refuses it.
    ///
    /// # Errors
    /// Why the frame was refused (answered with ERROR).
    async fn audio(
        &self,
        _session: &SessionEntry,
        frame: bytes::Bytes,
    ) -> Result<(), CommandError> {
        let _ = frame;
        Err(CommandError::new(
            ErrorCode::BinaryNotAccepted,
            "send JSON text frames",
        ))
    }
}

/// Maps a server-side close to its v1 code (`gateway.md` §6).
pub fn v1_close_code(reason: CloseReason) -> CloseCode {
    match reason {
        CloseReason::Overflow | CloseReason::Revoked | CloseReason::Expired => CloseCode::Policy,
        CloseReason::Shutdown => CloseCode::GoingAway,
        CloseReason::Internal => CloseCode::Internal,
    }
}

/// Maps a server-side close to its v2 code (`extensions.md`).
pub fn v2_close_code(reason: CloseReason) -> CloseCode {
    match reason {
        CloseReason::Overflow => CloseCode::SlowConsumer,
        CloseReason::Revoked | CloseReason::Expired => CloseCode::SessionExpired,
        CloseReason::Shutdown => CloseCode::GoingAway,
        CloseReason::Internal => CloseCode::Internal,
    }
}

/// Drives one authenticated v1 socket until it ends. Registers the session in `hub`
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
        let exit = serve(
            &mut socket,
            &entry,
            handler.as_ref(),
            &config,
            &mut Wire::V1,
        )
        .await;
        let remaining = hub.unregister(entry.id);
        handler.disconnected(&entry, exit.ending, remaining).await;
    }
}

/// What differs between protocol versions once a session is attached to a socket.
pub(crate) enum Wire {
    /// Shared frames as they are; bad input dropped silently.
    V1,
    /// Numbered, replayable, maybe compressed; bad input answered.
    V2(Box<V2Conn>),
}

/// A v2 session on its current socket.
pub(crate) struct V2Conn {
    /// The session's numbering and replay buffer (moves with the session on RESUME).
    pub(crate) stream: V2Stream,
    /// This connection's compression stream.
    pub(crate) compressor: Option<StreamCompressor>,
    /// Release the compression context after this long without an event.
    pub(crate) compression_idle: Duration,
    /// When an event last went through the compression context.
    pub(crate) compressed_at: Instant,
    /// Close 4006 when no HEARTBEAT came for this long.
    pub(crate) heartbeat_timeout: Duration,
    pub(crate) last_heartbeat: Instant,
    /// When the token expires (close 4009).
    pub(crate) expires: Option<Instant>,
    pub(crate) flood: Flood,
    /// Where the session is found for RESUME, and this socket's claim on it.
    pub(crate) slot: Arc<Slot>,
    pub(crate) owner: u64,
}

/// Over the rate limit in three consecutive one-second windows closes with 4008.
#[derive(Debug, Default)]
pub(crate) struct Flood {
    started: Option<Instant>,
    /// The last window (1-based second since the first excess) with an excess frame.
    window: u64,
    streak: u8,
}

impl Flood {
    /// Notes an excess frame; true when the client has now been over the limit in
    /// three consecutive windows.
    fn excess(&mut self, now: Instant) -> bool {
        let started = *self.started.get_or_insert(now);
        let window = now.saturating_duration_since(started).as_secs() + 1;
        if window != self.window {
            self.streak = if window == self.window + 1 {
                self.streak.saturating_add(1)
            } else {
                1
            };
            self.window = window;
        }
        self.streak >= 3
    }
}

/// How [`serve`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exit {
    pub(crate) ending: Ending,
    /// A v2 client may RESUME the session.
    pub(crate) resumable: bool,
    /// A RESUME on another socket took the session over.
    pub(crate) superseded: bool,
}

impl Exit {
    pub(crate) const LOST: Self = Self {
        ending: Ending::Other,
        resumable: true,
        superseded: false,
    };
    pub(crate) const FINAL: Self = Self {
        ending: Ending::Other,
        resumable: false,
        superseded: false,
    };
}

/// Serves an attached session until its socket ends, it is closed, or (v2) a RESUME
/// elsewhere takes it over.
pub(crate) async fn serve<S: GatewaySocket>(
    socket: &mut S,
    entry: &SessionEntry,
    handler: &dyn SessionHandler,
    config: &SessionConfig,
    wire: &mut Wire,
) -> Exit {
    let mut rate = RateWindow::new(config.rate_count, config.rate_window);
    let mut reader = ReadGate::new();
    let mut last_write = Instant::now();
    let mut last_inbound = last_write;
    let mut linger = Linger::new(config.write_linger, config.write_linger_max);
    let deadline = tokio::time::sleep_until(next_deadline(config, wire, last_inbound));
    tokio::pin!(deadline);
    loop {
        // Unbiased on purpose: a session with a steady stream of outbound events must
        // still read its client's frames (heartbeats reset the idle clock).
        tokio::select! {
            () = entry.outbox.ready() => {
                if let Wire::V2(conn) = wire && conn.slot.evicting(conn.owner) {
                    return Exit { superseded: true, ..Exit::LOST };
                }
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
                let mut wrote = false;
                if !taken.entries.is_empty() {
                    // Unknown (not busy before this write) counts as no wait.
                    let waited = taken
                        .since
                        .map_or(Duration::ZERO, |since| woke.saturating_duration_since(since));
                    linger.observe(taken.entries.len(), waited);
                    let batch = taken.entries.make_contiguous();
                    let written = match wire {
                        Wire::V1 => write_batch(socket, batch, config.write_timeout).await,
                        Wire::V2(conn) => {
                            let written =
                                Box::pin(write_v2(socket, entry.id, conn, batch, config.write_timeout)).await;
                            // Numbered either way: a RESUME replays what did not arrive.
                            conn.stream.keep(std::mem::take(&mut taken.entries), woke);
                            written
                        }
                    };
                    if !written {
                        return Exit::LOST;
                    }
                    last_write = Instant::now();
                    wrote = true;
                }
                // Relayed audio after the events that were queued with it: a stream's
                // MEDIA_STARTED is in the lane ahead of its first chunk.
                if let Wire::V2(conn) = wire
                    && let Some(audio) = entry.audio.take()
                {
                    if !Box::pin(write_audio(socket, entry.id, conn, audio, config.write_timeout)).await {
                        return Exit::LOST;
                    }
                    last_write = Instant::now();
                    wrote = true;
                }
                if wrote && let Wire::V2(conn) = wire && conn.compressor.is_some() {
                    // Arms the release of the compression context when idle.
                    deadline.as_mut().reset(next_deadline(config, wire, last_inbound));
                }
                if let Some(reason) = taken.closing {
                    return close_for(socket, entry.id, wire, reason, config.write_timeout).await;
                }
            }
            inbound = poll_fn(|cx| reader.poll_next(socket, cx)) => {
                last_inbound = Instant::now();
                match inbound {
                    Some(Ok(Message::Text(text))) => {
                        let verdict = match wire {
                            Wire::V1 => {
                                on_text_v1(entry, handler, &mut rate, text.as_str()).await;
                                None
                            }
                            Wire::V2(conn) => {
                                on_text_v2(entry, handler, conn, &mut rate, text.as_str()).await
                            }
                        };
                        if let Some((code, reason, exit)) = verdict {
                            close(socket, code, reason, config.write_timeout).await;
                            return exit;
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        let clean = frame.is_some_and(|f| f.code == WsCloseCode::Normal);
                        // Answer the close handshake; the peer may already be gone.
                        let _ = tokio::time::timeout(config.write_timeout, socket.flush()).await;
                        return if clean {
                            Exit { ending: Ending::ClientClosedCleanly, ..Exit::FINAL }
                        } else {
                            Exit::LOST
                        };
                    }
                    Some(Ok(Message::Binary(frame))) => {
                        // v1 ignores binary frames; in v2 they are audio chunks, and a
                        // refused one is answered.
                        if let Wire::V2(_) = wire
                            && let Err(err) = handler.audio(entry, frame).await
                        {
                            refuse(entry, err.code, err.message, None);
                        }
                    }
                    // Pings are answered by the codec.
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                    Some(Err(err)) => {
                        close_on_read_error(socket, &err, config.write_timeout).await;
                        return Exit::LOST;
                    }
                    None => return Exit::LOST,
                }
                deadline.as_mut().reset(next_deadline(config, wire, last_inbound));
            }
            () = &mut deadline => {
                let now = Instant::now();
                if let Wire::V2(conn) = wire {
                    if let Some(compressor) = conn.compressor.as_mut()
                        && !compressor.is_released()
                        && conn.compressed_at + conn.compression_idle <= now
                    {
                        // An idle connection keeps no compression context (the
                        // largest part of a compressed connection's memory).
                        compressor.release();
                    }
                    if conn.expires.is_some_and(|at| at <= now) {
                        close(socket, CloseCode::SessionExpired, "token expired", config.write_timeout).await;
                        return Exit::LOST;
                    }
                    if conn.last_heartbeat + conn.heartbeat_timeout <= now {
                        close(socket, CloseCode::HeartbeatTimeout, "no heartbeat", config.write_timeout).await;
                        return Exit::LOST;
                    }
                }
                if last_inbound + config.idle_timeout <= now {
                    close(socket, CloseCode::Normal, "idle timeout", config.write_timeout).await;
                    return Exit::LOST;
                }
                deadline.as_mut().reset(next_deadline(config, wire, last_inbound));
            }
        }
    }
}

/// The first of the idle timeout and (v2) the heartbeat deadline, the token expiry
/// and the release of an idle compression context.
fn next_deadline(config: &SessionConfig, wire: &Wire, last_inbound: Instant) -> Instant {
    let idle = last_inbound + config.idle_timeout;
    match wire {
        Wire::V1 => idle,
        Wire::V2(conn) => {
            let mut at = idle.min(conn.last_heartbeat + conn.heartbeat_timeout);
            if let Some(expires) = conn.expires {
                at = at.min(expires);
            }
            if conn.compressor.as_ref().is_some_and(|c| !c.is_released()) {
                at = at.min(conn.compressed_at + conn.compression_idle);
            }
            at
        }
    }
}

/// Closes for a server-side reason: v1 and v2 codes; v2 is told to RECONNECT first
/// when the server shuts down.
async fn close_for<S: GatewaySocket>(
    socket: &mut S,
    session: SessionId,
    wire: &mut Wire,
    reason: CloseReason,
    limit: Duration,
) -> Exit {
    match wire {
        Wire::V1 => {
            close(socket, v1_close_code(reason), "", limit).await;
            Exit::FINAL
        }
        Wire::V2(conn) => {
            if reason == CloseReason::Shutdown {
                let reconnect = [Frames::One(RECONNECT.clone())];
                Box::pin(write_v2(socket, session, conn, &reconnect, limit)).await;
            }
            close(socket, v2_close_code(reason), "", limit).await;
            // An overflow dropped what was queued, and an internal error left the
            // session in no known state: neither can be resumed without a gap.
            let resumable = !matches!(reason, CloseReason::Overflow | CloseReason::Internal);
            Exit {
                resumable,
                ..Exit::LOST
            }
        }
    }
}

/// Numbers and writes a v2 batch (compressed if the connection asked); the caller
/// then keeps it for replay ([`V2Stream::keep`]), written or not.
async fn write_v2<S: GatewaySocket>(
    socket: &mut S,
    session: SessionId,
    conn: &mut V2Conn,
    batch: &[Frames],
    limit: Duration,
) -> bool {
    let mut encoded = Encoded::default();
    match conn
        .stream
        .encode(batch, conn.compressor.as_mut(), &mut encoded)
    {
        Ok(events) => {
            if events > 0 && conn.compressor.is_some() {
                conn.compressed_at = Instant::now();
            }
        }
        Err(err) => {
            tracing::error!(session = session.0, error = %err, "compression failed; closing");
            return false;
        }
    }
    write_encoded(socket, &encoded, limit).await
}

/// Writes a session's relayed audio: chunks as they are (outside the compression
/// stream, `docs/protocol-v2.md` §15.3), events numbered and kept for replay.
async fn write_audio<S: GatewaySocket>(
    socket: &mut S,
    session: SessionId,
    conn: &mut V2Conn,
    items: std::collections::VecDeque<AudioItem>,
    limit: Duration,
) -> bool {
    let mut encoded = Encoded::default();
    let now = Instant::now();
    let mut events = 0;
    for item in items {
        match item {
            AudioItem::Chunk(frame) => encoded.raw(&frame),
            AudioItem::Event(payload) => {
                let frames = Frames::One(payload);
                match conn.stream.encode(
                    std::slice::from_ref(&frames),
                    conn.compressor.as_mut(),
                    &mut encoded,
                ) {
                    Ok(numbered) => events += numbered,
                    Err(err) => {
                        tracing::error!(session = session.0, error = %err, "compression failed; closing");
                        return false;
                    }
                }
                conn.stream.keep([frames], now);
            }
        }
    }
    if events > 0 && conn.compressor.is_some() {
        conn.compressed_at = now;
    }
    write_encoded(socket, &encoded, limit).await
}

/// Writes encoded v2 bytes within `limit`.
pub(crate) async fn write_encoded<S: GatewaySocket>(
    socket: &mut S,
    encoded: &Encoded,
    limit: Duration,
) -> bool {
    if encoded.is_empty() {
        return true;
    }
    matches!(
        tokio::time::timeout(limit, socket.write_chunks(&[encoded.bytes()])).await,
        Ok(Ok(()))
    )
}

/// Queues an ERROR for the session.
pub(crate) fn refuse(
    entry: &SessionEntry,
    code: ErrorCode,
    message: impl Into<String>,
    retry_after: Option<u64>,
) {
    entry.outbox.push(error_frame(code, message, retry_after));
}

/// An ERROR frame.
pub(crate) fn error_frame(
    code: ErrorCode,
    message: impl Into<String>,
    retry_after: Option<u64>,
) -> Payload {
    let error = GatewayError {
        code,
        message: message.into(),
        retry_after,
    };
    Payload::json(&OpFrame {
        op: Op::Error,
        d: &error,
    })
    .unwrap_or_else(|_| {
        Payload::text(r#"{"op":"ERROR","d":{"code":"INVALID_PAYLOAD","message":""}}"#)
    })
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

async fn on_text_v1(
    entry: &SessionEntry,
    handler: &dyn SessionHandler,
    rate: &mut RateWindow,
    text: &str,
) {
    // Every text frame counts, heartbeats included; over the limit it is dropped
    // unread (`gateway.md` §5).
    if !rate.allow(Instant::now()) {
        return;
    }
    // Malformed JSON, unknown ops and bad fields are dropped silently in v1.
    match ClientMessage::parse(text) {
        Ok(ClientMessage::Heartbeat) => {
            // Answer on this session, behind whatever is already queued for it.
            entry.outbox.push(HEARTBEAT_ACK.clone());
        }
        Ok(ClientMessage::Command(command)) => {
            let _ = handler.command(entry, command).await;
        }
        // v2 ops and server-to-client ops sent by a v1 client are ignored.
        _ => {}
    }
}

/// A v2 text frame: answered when refused. Returns the close to make, if any.
async fn on_text_v2(
    entry: &SessionEntry,
    handler: &dyn SessionHandler,
    conn: &mut V2Conn,
    rate: &mut RateWindow,
    text: &str,
) -> Option<(CloseCode, &'static str, Exit)> {
    let now = Instant::now();
    let parsed = ClientMessage::parse(text);
    if let Ok(ClientMessage::Heartbeat) = parsed {
        // Exempt from the rate limit: a flooding client must not lose its session to
        // its own heartbeats being refused.
        conn.last_heartbeat = now;
        entry.outbox.push(HEARTBEAT_ACK.clone());
        return None;
    }
    if !rate.allow(now) {
        if conn.flood.excess(now) {
            return Some((CloseCode::RateLimited, "rate limited", Exit::LOST));
        }
        let retry_after = rate.retry_after(now).as_millis().max(1) as u64;
        refuse(
            entry,
            ErrorCode::RateLimited,
            "too many frames; slow down",
            Some(retry_after),
        );
        return None;
    }
    match parsed {
        Ok(ClientMessage::Heartbeat) => {}
        Ok(ClientMessage::Command(command)) => {
            if let Err(err) = handler.command(entry, command).await {
                refuse(entry, err.code, err.message, None);
            }
        }
        Ok(ClientMessage::Media(command)) => {
            if let Err(err) = handler.media(entry, command).await {
                refuse(entry, err.code, err.message, None);
            }
        }
        Ok(ClientMessage::Identify(_) | ClientMessage::Resume(_)) => {
            return Some((
                CloseCode::AlreadyAuthenticated,
                "already identified",
                Exit::FINAL,
            ));
        }
        Ok(ClientMessage::ServerOp(op)) => {
            refuse(
                entry,
                ErrorCode::UnknownOp,
                format!("{} is not sent by clients", op.as_str()),
                None,
            );
        }
        Err(err) => refuse(entry, err.code(), err.to_string(), None),
    }
    None
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
pub(crate) async fn close<S: GatewaySocket>(
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

/// The close a read error calls for (RFC 6455 §7.4.1): 1009 for a message over the
/// inbound limit, 1007 for a text message that is not UTF-8 (whole or across
/// fragments), 1002 for any other breach of the protocol (reserved bits or opcodes, an
/// unmasked frame, a fragmented or oversized control frame, a stray continuation, a
/// malformed close frame). `None` when the connection itself failed or was already
/// closing: nothing can be said on it.
pub fn read_error_close(err: &tungstenite::Error) -> Option<(CloseCode, &'static str)> {
    use tungstenite::error::ProtocolError;
    match err {
        tungstenite::Error::Capacity(_) => Some((CloseCode::TooBig, "message too big")),
        tungstenite::Error::Utf8(_) => Some((CloseCode::InvalidData, "invalid UTF-8")),
        tungstenite::Error::Protocol(
            ProtocolError::ResetWithoutClosingHandshake
            | ProtocolError::SendAfterClosing
            | ProtocolError::ReceivedAfterClosing,
        ) => None,
        tungstenite::Error::Protocol(_) => Some((CloseCode::ProtocolError, "protocol error")),
        _ => None,
    }
}

/// Answers a failed read with the close frame it calls for ([`read_error_close`]),
/// counted and logged at debug (inside the session's span, so with its id); a failed
/// connection is left as it is.
pub async fn close_on_read_error<S: GatewaySocket>(
    socket: &mut S,
    err: &tungstenite::Error,
    limit: Duration,
) {
    match read_error_close(err) {
        Some((code, reason)) => {
            tracing::debug!(code = code.code(), error = %err, "client broke the protocol; closing");
            socket.protocol_violation(code);
            close(socket, code, reason, limit).await;
        }
        None => tracing::debug!(error = %err, "connection failed"),
    }
}
