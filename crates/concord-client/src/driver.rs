//! The task that owns the connection: connects, authenticates, heartbeats, reads and
//! decodes frames, and reconnects with backoff until told to stop.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use concord_protocol::{GatewayEvent, Identify, Op, Resume, ServerMessage};
use rand::{Rng, SeedableRng, rngs::StdRng};
use tokio::{
    sync::{mpsc, oneshot},
    time::{Instant, sleep_until, timeout},
};

use crate::{
    Credential, Error, Event, GatewayConfig, ReadyState, TokenError, Version,
    gateway::{Command, Shared},
    raw::{self, ConnectOptions, Connection, RawError},
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

type Socket = Connection;

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
                        // Not connected: dropped (a Sync's waiter sees its sender go).
                        Some(Command::Send(_) | Command::Binary(_) | Command::Sync(_)) => {}
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
        self.shared.audio().close();
        self.shared.own.send_modify(|own| {
            own.closed = true;
            own.epoch += 1;
        });
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
        // v2: HELLO first, then IDENTIFY or RESUME.
        let (interval, hello_session) = match self.config.version {
            Version::V1 => (self.config.v1_heartbeat, None),
            Version::V2 => {
                let hello = timeout(limit, async {
                    loop {
                        match next_message(&mut ws, &self.shared).await {
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
        // Every HEARTBEAT in flight, oldest first: the driver's own (`None`) and those
        // of `Gateway::sync` (answered on the ACK).
        let mut acks: VecDeque<Option<oneshot::Sender<()>>> = VecDeque::new();
        let mut handshake_deadline = Some(Instant::now() + limit);
        loop {
            let timer = handshake_deadline.map_or(next_beat, |d| d.min(next_beat));
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::Send(text)) => {
                        if ws.send_text(text).await.is_err() {
                            return End::Retry { code: None, renew: false };
                        }
                    }
                    Some(Command::Binary(bytes)) => {
                        if ws.send_binary(bytes).await.is_err() {
                            return End::Retry { code: None, renew: false };
                        }
                    }
                    Some(Command::Sync(answer)) => {
                        if ws.heartbeat().await.is_err() {
                            return End::Retry { code: None, renew: false };
                        }
                        acks.push_back(Some(answer));
                    }
                    Some(Command::Disconnect) | None => {
                        self.shared.status().state = ReadyState::Closing;
                        let _ = timeout(Duration::from_secs(1), ws.send_close(1000, "")).await;
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
                        if ws.heartbeat().await.is_err() {
                            return End::Retry { code: None, renew: false };
                        }
                        acks.push_back(None);
                        beat_sent = Some(now);
                        next_beat = now + interval;
                    }
                }
                message = next_message(&mut ws, &self.shared) => {
                    let message = match message {
                        Ok(m) => m,
                        Err(end) => return end,
                    };
                    match message {
                        ServerMessage::HeartbeatAck => match acks.pop_front() {
                            Some(Some(answer)) => {
                                let _ = answer.send(());
                            }
                            _ => {
                                if let Some(sent) = beat_sent.take() {
                                    self.shared.status().latency = Some(sent.elapsed());
                                }
                            }
                        },
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
                                GatewayEvent::Ready(ready) => {
                                    self.shared.status().session_id = hello_session.clone();
                                    self.new_session(ready.user.id);
                                    if let Err(end) = self.resubscribe(&mut ws).await {
                                        return end;
                                    }
                                    Some(Event::Ready { session_id: hello_session.clone() })
                                }
                                GatewayEvent::Resumed(resumed) => {
                                    // The server ended the own stream (`disconnected`).
                                    self.shared.own.send_modify(|own| own.epoch += 1);
                                    Some(Event::Resumed { replayed: resumed.replayed })
                                }
                                GatewayEvent::MediaStarted(started) => {
                                    self.media_started(started);
                                    None
                                }
                                GatewayEvent::MediaEnded(ended) => {
                                    self.media_ended(ended);
                                    None
                                }
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
                            self.shared.own.send_modify(|own| {
                                own.errors += 1;
                                own.last_error = Some(error.clone());
                            });
                            self.shared.fanout.emit(Event::Refused(error)).await;
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    /// A new session (READY): the streams of the old one are gone.
    fn new_session(&self, user: concord_protocol::UserId) {
        {
            let mut audio = self.shared.audio();
            audio.end_all();
            audio.own_user = Some(user);
        }
        self.shared.own.send_modify(|own| {
            own.epoch += 1;
            // An own stream of the old session ended with it, no MEDIA_ENDED said why.
            if own.ended < own.started {
                own.ended = own.started;
                own.last_end = None;
            }
        });
    }

    /// After a fresh IDENTIFY: the audio subscription the application holds is sent
    /// again (the old session's ended with it).
    async fn resubscribe(&self, ws: &mut Socket) -> Result<(), End> {
        let subscription = self.shared.status().subscription.clone();
        let Some(subscription) = subscription else {
            return Ok(());
        };
        let d = serde_json::to_value(subscription).ok();
        ws.send_op(Op::MediaSubscribe, d)
            .await
            .map_err(|_| End::Retry {
                code: None,
                renew: false,
            })
    }

    fn media_started(&self, started: &concord_protocol::MediaStarted) {
        let mut audio = self.shared.audio();
        if audio.own_user == Some(started.user_id) {
            drop(audio);
            self.shared.own.send_modify(|own| own.started += 1);
        } else {
            audio.started(started);
        }
    }

    fn media_ended(&self, ended: &concord_protocol::MediaEnded) {
        let mut audio = self.shared.audio();
        if audio.own_user == Some(ended.user_id) {
            drop(audio);
            self.shared.own.send_modify(|own| {
                own.ended += 1;
                own.last_end = Some(ended.reason);
            });
        } else {
            audio.ended(ended);
        }
    }

    /// Opens the WebSocket (`?v=…&compress=…`, and on v1 the token).
    async fn open(&mut self, credential: &Credential) -> Result<Socket, End> {
        let (host, port) = raw::host_port(&self.config.url).map_err(|e| End::Fatal {
            code: None,
            reason: e.to_string(),
        })?;
        let version = self.config.version;
        // v1 has no IDENTIFY: the token can only go in the URL; it has no compression.
        let (extra, compression) = match version {
            Version::V1 => (
                match credential {
                    Credential::Token(t) => vec![("token", t.as_str())],
                    Credential::BotToken(t) => vec![("bot_token", t.as_str())],
                },
                None,
            ),
            Version::V2 => (Vec::new(), self.config.compression),
        };
        let url = raw::gateway_url(&self.config.url, version, compression, &extra);
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
        // An untrusted certificate is retried like any failed connection: it may be a
        // proxy mid-deploy, and the backoff keeps the retries cheap.
        let stream = if raw::is_secure(&self.config.url) {
            self.config.tls.wrap(&host, stream).await.map_err(|e| {
                tracing::warn!(error = %e, "gateway TLS handshake failed");
                End::Retry {
                    code: None,
                    renew: false,
                }
            })?
        } else {
            stream
        };
        let options = ConnectOptions::new()
            .with_compression(compression)
            .with_max_message_size(self.config.max_message_size);
        match Connection::connect_over(stream, &url, &options).await {
            Ok(ws) => Ok(ws),
            Err(err) => match err.status() {
                Some(401) => Err(End::AuthRefused { code: None }),
                Some(status @ (400 | 403 | 404)) => Err(End::Fatal {
                    code: Some(status),
                    reason: format!("upgrade refused with HTTP {status}"),
                }),
                _ => {
                    tracing::debug!(error = %err, "gateway upgrade failed");
                    Err(End::Retry {
                        code: None,
                        renew: false,
                    })
                }
            },
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
        let (op, d) = match session {
            Some(session_id) => (
                Op::Resume,
                serde_json::to_value(Resume {
                    token,
                    bot_token,
                    session_id,
                    seq,
                }),
            ),
            None => {
                self.shared.status().seq = 0;
                (
                    Op::Identify,
                    serde_json::to_value(Identify {
                        token,
                        bot_token,
                        intents: self.config.intents,
                    }),
                )
            }
        };
        ws.send_op(op, d.ok()).await.map_err(|_| End::Retry {
            code: None,
            renew: false,
        })
    }
}

/// The next server message, decoded; the connection's end otherwise. Audio chunks on
/// the way go to their speaker streams. Cancel-safe: a frame taken from the socket is
/// handled without another await.
async fn next_message(ws: &mut Socket, shared: &Shared) -> Result<ServerMessage, End> {
    let retry = End::Retry {
        code: None,
        renew: false,
    };
    loop {
        let message = match ws.next_data().await {
            Ok(raw::Data::Audio(frame)) => {
                shared.audio().chunk(frame);
                continue;
            }
            Ok(raw::Data::Message(bytes)) => raw::decode(bytes).map_err(RawError::Message),
            Err(err) => Err(err),
        };
        return match message {
            Ok(message) => Ok(message),
            Err(RawError::Message(err)) => {
                tracing::warn!(error = %err, "unreadable frame ignored");
                continue;
            }
            Err(RawError::Closed(Some(close))) => Err(close_end(close.code, &close.reason)),
            Err(RawError::Decode(err)) => {
                tracing::warn!(error = %err, "undecodable frame; reconnecting");
                Err(retry)
            }
            Err(err) => {
                tracing::debug!(error = %err, "gateway connection lost");
                Err(retry)
            }
        };
    }
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
    let _ = timeout(Duration::from_secs(1), ws.send_close(RESUMABLE_CLOSE, "")).await;
    End::Retry {
        code: None,
        renew: false,
    }
}
