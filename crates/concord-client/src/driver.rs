//! The task that owns the connection: connects, authenticates, heartbeats, reads and
//! decodes frames, and reconnects with backoff until told to stop.

use std::{sync::Arc, time::Duration};

use concord_protocol::{ClientFrame, GatewayEvent, Identify, Op, Resume, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::Value;
use tokio::{
    sync::{mpsc, oneshot},
    time::{Instant, sleep_until, timeout},
};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        self, Message,
        http::Uri,
        protocol::{CloseFrame, WebSocketConfig, frame::coding::CloseCode},
    },
};

use crate::{
    BoxedStream, Credential, Error, Event, GatewayConfig, ReadyState, TokenError, Version,
    compress::Inflate,
    gateway::{Command, Shared},
};

/// The close code the client uses when it drops a connection it means to resume
/// (a zombie, a RECONNECT, a bad frame): anything but 1000, which ends the session.
const RESUMABLE_CLOSE: u16 = 4000;

/// How one connection ended.
enum End {
    /// The application asked to stop.
    Disconnect,
    /// Reconnect (after backoff); `renew`: ask the token provider for a new token.
    Retry { code: Option<u16>, renew: bool },
    /// The server said RECONNECT: reconnect and RESUME without delay.
    Reconnect,
    /// The server refused the credential (HTTP 401 or close 4004).
    AuthRefused { code: Option<u16> },
    /// Stop: a close that forbids retrying as is, or a refusal a retry cannot fix.
    Fatal { code: Option<u16>, reason: String },
    /// The token provider failed.
    Token(TokenError),
}

type Socket = WebSocketStream<BoxedStream>;

struct Driver {
    config: GatewayConfig,
    shared: Arc<Shared>,
    commands: mpsc::Receiver<Command>,
    first: Option<oneshot::Sender<Result<(), Error>>>,
    rng: StdRng,
}

/// Runs the gateway until it is told to stop or stops for good; reports the outcome
/// of the first session on `first`.
pub(crate) async fn run(
    config: GatewayConfig,
    shared: Arc<Shared>,
    commands: mpsc::Receiver<Command>,
    first: oneshot::Sender<Result<(), Error>>,
) {
    let rng = match config.jitter_seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_os_rng(),
    };
    let mut driver = Driver {
        config,
        shared,
        commands,
        first: Some(first),
        rng,
    };
    driver.run().await;
}

impl Driver {
    async fn run(&mut self) {
        let mut attempt: u32 = 0;
        let mut renew = false;
        // One renewed token is tried after a 4004 / 401; a second refusal in a row stops.
        let mut renewed_after_refusal = false;
        // When the last working connection ended: a RESUME is given up (IDENTIFY
        // instead) once the server has surely dropped the session.
        let mut lost_at: Option<Instant> = None;
        loop {
            self.shared.status().state = ReadyState::Connecting;
            if lost_at.is_some_and(|at| at.elapsed() > self.config.resume_timeout) {
                self.forget_session();
                lost_at = None;
            }
            let mut reached = false;
            let end = self.connection(renew, &mut reached).await;
            if reached {
                attempt = 0;
                renewed_after_refusal = false;
                lost_at = Some(Instant::now());
            }
            renew = false;
            // `protocol-v2.md` §11: the first retry after 1001, 4009 or RECONNECT goes
            // at once (the session is waiting); every other one after backoff.
            let mut at_once = false;
            let code = match end {
                End::Disconnect => {
                    return self
                        .finish(
                            Some(1000),
                            "disconnected by the application",
                            Error::Disconnected,
                        )
                        .await;
                }
                End::Fatal { code, reason } => {
                    let error = Error::Closed {
                        code,
                        reason: reason.clone(),
                    };
                    return self.finish(code, &reason, error).await;
                }
                End::Token(err) if !err.is_transient() => {
                    return self.finish(None, &err.to_string(), Error::Token(err)).await;
                }
                End::Token(err) => {
                    tracing::debug!(error = %err, "token provider failed; retrying");
                    None
                }
                End::AuthRefused { code } => {
                    if self.config.token.renews() && !renewed_after_refusal {
                        renewed_after_refusal = true;
                        renew = true;
                        code
                    } else {
                        return self
                            .finish(
                                code,
                                "authentication failed",
                                Error::AuthenticationFailed { code },
                            )
                            .await;
                    }
                }
                End::Reconnect => {
                    at_once = true;
                    None
                }
                End::Retry { code, renew: r } => {
                    renew = r;
                    at_once = matches!(code, Some(1001 | 4009));
                    if matches!(code, Some(4003 | 4013 | 1011)) {
                        // The server lost or never had the session's state: IDENTIFY.
                        self.forget_session();
                    }
                    code
                }
            };
            attempt = attempt.saturating_add(1);
            let delay = if at_once && attempt == 1 {
                Duration::ZERO
            } else {
                self.config.backoff.delay(attempt, &mut self.rng)
            };
            self.shared.status().state = ReadyState::Connecting;
            self.shared
                .fanout
                .emit(Event::Reconnecting {
                    attempt,
                    delay,
                    code,
                })
                .await;
            let wake = Instant::now() + delay;
            loop {
                tokio::select! {
                    () = sleep_until(wake) => break,
                    command = self.commands.recv() => match command {
                        Some(Command::Send(_)) => {} // not connected: dropped
                        Some(Command::Disconnect) | None => {
                            return self
                                .finish(Some(1000), "disconnected by the application", Error::Disconnected)
                                .await;
                        }
                    },
                }
            }
        }
    }

    /// Stops for good: Closed, then the stream ends; `error` goes to a `connect`
    /// still waiting for its first session.
    async fn finish(&mut self, code: Option<u16>, reason: &str, error: Error) {
        {
            let mut status = self.shared.status();
            status.state = ReadyState::Closed;
        }
        if let Some(first) = self.first.take() {
            let _ = first.send(Err(error));
        }
        self.shared
            .fanout
            .emit(Event::Closed {
                code,
                reason: reason.to_string(),
            })
            .await;
        self.shared.fanout.end();
    }

    /// The next connection IDENTIFYs afresh.
    fn forget_session(&self) {
        let mut status = self.shared.status();
        status.session_id = None;
        status.seq = 0;
    }

    /// The session became ready: state Open, `connect` answered.
    fn ready(&mut self) {
        self.shared.status().state = ReadyState::Open;
        if let Some(first) = self.first.take() {
            let _ = first.send(Ok(()));
        }
    }

    /// One connection, from the token to its end.
    async fn connection(&mut self, renew: bool, reached: &mut bool) -> End {
        let credential = match self.config.token.credential(renew).await {
            Ok(c) => c,
            Err(err) => return End::Token(err),
        };
        let limit = self.config.handshake_timeout;
        let mut ws = match timeout(limit, self.open(&credential)).await {
            Ok(Ok(ws)) => ws,
            Ok(Err(end)) => return end,
            Err(_) => {
                return End::Retry {
                    code: None,
                    renew: false,
                };
            }
        };
        self.shared.fanout.emit(Event::Open).await;
        let mut inflate = self.config.compression.map(Inflate::new);
        let max = self.config.max_message_size;
        let mut buf = Vec::new();
        // v2: HELLO first, then IDENTIFY or RESUME.
        let (interval, hello_session) = match self.config.version {
            Version::V1 => (self.config.v1_heartbeat, None),
            Version::V2 => {
                let hello = timeout(limit, async {
                    loop {
                        match next_message(&mut ws, &mut inflate, &mut buf, max).await {
                            Ok(ServerMessage::Hello(hello)) => return Ok(hello),
                            Ok(_) => {}
                            Err(end) => return Err(end),
                        }
                    }
                })
                .await;
                let hello = match hello {
                    Ok(Ok(hello)) => hello,
                    Ok(Err(end)) => return end,
                    Err(_) => return drop_resumable(ws).await,
                };
                if let Err(end) = self.authenticate(&mut ws, &credential).await {
                    return end;
                }
                (
                    Duration::from_millis(hello.heartbeat_interval.max(1)),
                    Some(hello.session_id),
                )
            }
        };
        let interval = interval.max(Duration::from_millis(1));
        // The first beat after interval × random(0..1), then every interval.
        let mut next_beat = Instant::now() + interval.mul_f64(self.rng.random_range(0.0..1.0));
        let mut beat_sent: Option<Instant> = None;
        let mut handshake_deadline = Some(Instant::now() + limit);
        loop {
            let timer = handshake_deadline.map_or(next_beat, |d| d.min(next_beat));
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::Send(text)) => {
                        if ws.send(Message::text(text)).await.is_err() {
                            return End::Retry { code: None, renew: false };
                        }
                    }
                    Some(Command::Disconnect) | None => {
                        self.shared.status().state = ReadyState::Closing;
                        let close = CloseFrame { code: CloseCode::Normal, reason: "".into() };
                        let _ = timeout(Duration::from_secs(1), ws.close(Some(close))).await;
                        return End::Disconnect;
                    }
                },
                () = sleep_until(timer) => {
                    let now = Instant::now();
                    if handshake_deadline.is_some_and(|d| d <= now) {
                        tracing::debug!("no READY or RESUMED in time; reconnecting");
                        return drop_resumable(ws).await;
                    }
                    if next_beat <= now {
                        if beat_sent.is_some() {
                            tracing::debug!("heartbeat not acknowledged: zombie connection");
                            return drop_resumable(ws).await;
                        }
                        let beat = r#"{"op":"HEARTBEAT","t":null,"d":null}"#;
                        if ws.send(Message::text(beat)).await.is_err() {
                            return End::Retry { code: None, renew: false };
                        }
                        beat_sent = Some(now);
                        next_beat = now + interval;
                    }
                }
                message = next_message(&mut ws, &mut inflate, &mut buf, max) => {
                    let message = match message {
                        Ok(m) => m,
                        Err(end) => return end,
                    };
                    match message {
                        ServerMessage::HeartbeatAck => {
                            if let Some(sent) = beat_sent.take() {
                                self.shared.status().latency = Some(sent.elapsed());
                            }
                        }
                        ServerMessage::Dispatch { seq, event } => {
                            if let Some(seq) = seq {
                                let mut status = self.shared.status();
                                if seq <= status.seq {
                                    // Already delivered (a replay overlapping what came before).
                                    continue;
                                }
                                status.seq = seq;
                            }
                            let follow = match &event {
                                GatewayEvent::Ready(_) => {
                                    self.shared.status().session_id = hello_session.clone();
                                    Some(Event::Ready { session_id: hello_session.clone() })
                                }
                                GatewayEvent::Resumed(resumed) => Some(Event::Resumed { replayed: resumed.replayed }),
                                _ => None,
                            };
                            if follow.is_some() {
                                handshake_deadline = None;
                                *reached = true;
                                self.ready();
                            }
                            self.shared.fanout.emit(Event::Dispatch { seq, event }).await;
                            if let Some(follow) = follow {
                                self.shared.fanout.emit(follow).await;
                            }
                        }
                        ServerMessage::InvalidSession(_) => {
                            // The session is gone: a fresh IDENTIFY on this socket.
                            self.forget_session();
                            if let Err(end) = self.authenticate(&mut ws, &credential).await {
                                return end;
                            }
                            handshake_deadline = Some(Instant::now() + limit);
                        }
                        ServerMessage::Reconnect => {
                            drop_resumable(ws).await;
                            return End::Reconnect;
                        }
                        ServerMessage::Error(error) => {
                            self.shared.fanout.emit(Event::Refused(error)).await;
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    /// Opens the WebSocket (`?v=…&compress=…`, and on v1 the token).
    async fn open(&mut self, credential: &Credential) -> Result<Socket, End> {
        let fatal = |reason: String| End::Fatal { code: None, reason };
        let uri: Uri = self
            .config
            .url
            .parse()
            .map_err(|e| fatal(format!("bad gateway URL: {e}")))?;
        if uri.scheme_str() != Some("ws") {
            return Err(fatal("only ws:// URLs are supported".to_string()));
        }
        let host = uri
            .host()
            .ok_or_else(|| fatal("no host in the gateway URL".to_string()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(80);
        let mut query = Vec::new();
        match self.config.version {
            Version::V1 => {
                query.push("v=1".to_string());
                // v1 has no IDENTIFY: the token can only go in the URL.
                query.push(match credential {
                    Credential::Token(t) => format!("token={}", encode(t)),
                    Credential::BotToken(t) => format!("bot_token={}", encode(t)),
                });
            }
            Version::V2 => {
                query.push("v=2".to_string());
                if let Some(compression) = self.config.compression {
                    query.push(format!("compress={}", compression.as_str()));
                }
            }
        }
        let url = format!("{}?{}", self.config.url, query.join("&"));
        let stream = self
            .config
            .connector
            .connect(&host, port)
            .await
            .map_err(|e| {
                tracing::debug!(error = %e, "gateway connection failed");
                End::Retry {
                    code: None,
                    renew: false,
                }
            })?;
        let ws_config = WebSocketConfig::default()
            .max_message_size(Some(self.config.max_message_size))
            .max_frame_size(Some(self.config.max_message_size));
        match tokio_tungstenite::client_async_with_config(url, stream, Some(ws_config)).await {
            Ok((ws, _)) => Ok(ws),
            Err(tungstenite::Error::Http(response)) => {
                let status = response.status().as_u16();
                Err(match status {
                    401 => End::AuthRefused { code: None },
                    400 | 403 | 404 => End::Fatal {
                        code: Some(status),
                        reason: format!("upgrade refused with HTTP {status}"),
                    },
                    _ => End::Retry {
                        code: None,
                        renew: false,
                    },
                })
            }
            Err(err) => {
                tracing::debug!(error = %err, "gateway upgrade failed");
                Err(End::Retry {
                    code: None,
                    renew: false,
                })
            }
        }
    }

    /// v2: RESUME the session held, or IDENTIFY afresh.
    async fn authenticate(&mut self, ws: &mut Socket, credential: &Credential) -> Result<(), End> {
        let (token, bot_token) = match credential {
            Credential::Token(t) => (Some(t.clone()), None),
            Credential::BotToken(t) => (None, Some(t.clone())),
        };
        let (session, seq) = {
            let status = self.shared.status();
            (status.session_id.clone(), status.seq)
        };
        let frame = match session {
            Some(session_id) => ClientFrame {
                op: Op::Resume,
                t: None,
                d: serde_json::to_value(Resume {
                    token,
                    bot_token,
                    session_id,
                    seq,
                })
                .ok(),
            },
            None => {
                self.shared.status().seq = 0;
                ClientFrame {
                    op: Op::Identify,
                    t: None,
                    d: serde_json::to_value(Identify {
                        token,
                        bot_token,
                        intents: self.config.intents,
                    })
                    .ok(),
                }
            }
        };
        let text = serde_json::to_string(&frame).unwrap_or_default();
        ws.send(Message::text(text)).await.map_err(|_| End::Retry {
            code: None,
            renew: false,
        })
    }
}

/// The next server frame, decoded; the connection's end otherwise. Cancel-safe: a frame
/// taken from the socket is returned without another await.
async fn next_message(
    ws: &mut Socket,
    inflate: &mut Option<Inflate>,
    buf: &mut Vec<u8>,
    max_message_size: usize,
) -> Result<ServerMessage, End> {
    loop {
        let bytes: &[u8] = match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                buf.clear();
                buf.extend_from_slice(text.as_bytes());
                buf
            }
            Some(Ok(Message::Binary(data))) => {
                let Some(inflate) = inflate.as_mut() else {
                    continue; // not asked for: nothing a client can read
                };
                if let Err(err) = inflate.message(&data, buf, max_message_size) {
                    tracing::warn!(error = %err, "undecodable compressed frame; reconnecting");
                    return Err(End::Retry {
                        code: None,
                        renew: false,
                    });
                }
                buf
            }
            Some(Ok(Message::Close(frame))) => {
                return Err(match frame {
                    Some(frame) => close_end(u16::from(frame.code), frame.reason.as_str()),
                    None => End::Retry {
                        code: None,
                        renew: false,
                    },
                });
            }
            Some(Ok(_)) => continue,
            Some(Err(err)) => {
                tracing::debug!(error = %err, "gateway connection lost");
                return Err(End::Retry {
                    code: None,
                    renew: false,
                });
            }
            None => {
                return Err(End::Retry {
                    code: None,
                    renew: false,
                });
            }
        };
        match ServerMessage::from_slice(bytes) {
            Ok(message) => return Ok(message),
            Err(err) => {
                // A newer server's shape of a known event: keep it (and its
                // sequence number) as an unknown event rather than lose it.
                if let Some(message) = as_unknown(bytes) {
                    tracing::warn!(error = %err, "event kept untyped");
                    return Ok(message);
                }
                tracing::warn!(error = %err, "unreadable frame ignored");
            }
        }
    }
}

/// A dispatch whose payload did not type, as [`GatewayEvent::Unknown`].
fn as_unknown(bytes: &[u8]) -> Option<ServerMessage> {
    let mut frame: serde_json::Map<String, Value> = serde_json::from_slice(bytes).ok()?;
    if frame.get("op")?.as_str()? != Op::Dispatch.as_str() {
        return None;
    }
    let name = frame.get("t")?.as_str()?.to_string();
    Some(ServerMessage::Dispatch {
        seq: frame.get("s").and_then(Value::as_u64),
        event: GatewayEvent::Unknown {
            name,
            raw: frame.remove("d").unwrap_or(Value::Null),
        },
    })
}

/// What a server close means (`extensions.md`): 4004 a refused credential, 4005 stop,
/// 4009 renew the token; everything else reconnect (and RESUME).
fn close_end(code: u16, reason: &str) -> End {
    match code {
        4004 => End::AuthRefused { code: Some(code) },
        4005 => End::Fatal {
            code: Some(code),
            reason: reason.to_string(),
        },
        4009 => End::Retry {
            code: Some(code),
            renew: true,
        },
        _ => End::Retry {
            code: Some(code),
            renew: false,
        },
    }
}

/// Closes with a non-1000 code (so that the server keeps the session for RESUME) and
/// gives up the connection.
async fn drop_resumable(mut ws: Socket) -> End {
    let close = CloseFrame {
        code: CloseCode::from(RESUMABLE_CLOSE),
        reason: "".into(),
    };
    let _ = timeout(Duration::from_secs(1), ws.close(Some(close))).await;
    End::Retry {
        code: None,
        renew: false,
    }
}

/// Percent-encodes a token for the query (JWTs and bot tokens are URL-safe already;
/// this guards against anything else).
fn encode(token: &str) -> String {
    let mut out = String::with_capacity(token.len());
    for byte in token.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
