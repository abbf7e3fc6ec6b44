//! The gateway endpoint: the HTTP upgrade, the protocol version and compression
//! chosen in the query, authentication through the domain's [`Authenticator`], and the
//! v2 handshake (HELLO, IDENTIFY, RESUME) before a session is served.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, SystemTime},
};

use async_trait::async_trait;
use concord_protocol::{
    ClientMessage, CloseCode, Event, Hello, Identify, Intents, InvalidSession, Op, OpFrame,
    ParseError, Resume, Resumed, UserId,
};
use futures_util::StreamExt;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        self, Message,
        protocol::{Role, WebSocketConfig},
    },
};

use crate::{
    Compression, CompressionConfig, Found, Frames, GatewaySocket, Hub, Payload, Pushed,
    RelayedSocket, RemoteSessions, ReplayBudget, ReplayLimits, SessionConfig, SessionEntry,
    SessionHandler, SocketStats, StreamCompressor, WsSocket,
    hub::SessionKind,
    replay::Replay,
    resume::{Sessions, Slot},
    session::{self, Exit, Flood, V2Conn, Wire},
    wire::{Encoded, V2Stream, encode_plain},
};

/// A credential a client presents, in the URL or in IDENTIFY/RESUME.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    /// An access JWT (`token`).
    Token(&'a str),
    /// A bot token (`bot_token`).
    BotToken(&'a str),
}

/// Who a credential belongs to, and the chat domain's handler for their session.
pub struct Principal {
    /// The user.
    pub user_id: UserId,
    /// When the credential stops being valid (a v2 session closes with 4009 then);
    /// `None` for credentials that do not expire (bot tokens).
    pub expires_at: Option<SystemTime>,
    /// The domain's side of the session this credential opens.
    pub handler: Arc<dyn SessionHandler>,
}

impl std::fmt::Debug for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Principal")
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Why a credential was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// Invalid, expired, revoked, or of a disabled user: 401 before the upgrade,
    /// close 4004 after it.
    Invalid,
    /// Refused for another reason (a rate limit, say): this status and JSON body
    /// before the upgrade; close 4008 after it for 429, 1011 otherwise.
    Refused {
        /// HTTP status.
        status: u16,
        /// JSON error body.
        body: String,
        /// Seconds for a `Retry-After` header.
        retry_after_secs: Option<u64>,
    },
    /// The check itself failed (database): 500, or close 1011.
    Internal,
}

/// The chat domain's check of credentials.
#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// Checks a credential and opens the domain's side of a session for it.
    ///
    /// # Errors
    /// See [`AuthFailure`].
    async fn authenticate(&self, credential: Credential<'_>) -> Result<Principal, AuthFailure>;

    /// The domain's side of a session of `user` saved before a restart, or `None` if
    /// the user may no longer have one (deleted, disabled). The RESUME that takes the
    /// session checks its credential as usual.
    async fn restore(&self, user: UserId) -> Option<Arc<dyn SessionHandler>> {
        let _ = user;
        None
    }
}

/// A v2 session saved at shutdown, to be resumed after the restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedSession {
    /// The id its client resumes.
    pub id: String,
    /// Whose.
    pub user_id: UserId,
    /// How much of its resume window is left.
    pub expires_in: Duration,
    /// Numbering, replay buffer and queued events, as JSON (see [`Gateway::restore`]).
    pub state: String,
}

/// What a saved session holds.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct SavedState {
    intents: u8,
    seq: u64,
    /// Sent events kept for replay: (s, v1 frame JSON).
    replay: Vec<(u64, String)>,
    /// Events queued but never sent (v1 frame JSON), numbered after `seq` on RESUME.
    queued: Vec<String>,
}

/// A parked v2 session as its node starts to hand it over ([`Gateway::parked`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parked {
    /// The id its client resumes.
    pub id: String,
    /// Whose.
    pub user_id: UserId,
    /// The event groups it receives.
    pub intents: Intents,
    /// How many events are queued for it now: the node taking it over matches what
    /// it is sent after these against what it was sent itself ([`Gateway::adopt`]).
    pub mark: usize,
}

/// A session that another node is handing over, receiving here meanwhile
/// ([`Gateway::shadow`]).
#[derive(Debug)]
pub struct Shadow {
    entry: Arc<SessionEntry>,
}

/// Settings of the gateway endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayConfig {
    /// Limits and timings of every session.
    pub session: SessionConfig,
    /// v2: the interval announced in HELLO; no heartbeat for 1.5 of them closes 4006.
    pub heartbeat_interval: Duration,
    /// v2: IDENTIFY or RESUME must come this soon after the upgrade (4003).
    pub identify_timeout: Duration,
    /// v2: per-session replay buffer bounds.
    pub replay: ReplayLimits,
    /// v2: bytes all replay buffers of the node may hold together.
    pub replay_budget_bytes: usize,
    /// v2: how long a session whose socket dropped waits to be resumed.
    pub resume_window: Duration,
    /// v2: stream compression settings.
    pub compression: CompressionConfig,
    /// v2: a compressed connection that was sent nothing for this long frees its
    /// compression context (the next message starts a fresh one, without history).
    pub compression_idle: Duration,
    /// Largest inbound message (the codec refuses more while reading: 1009).
    pub max_message: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            session: SessionConfig::default(),
            heartbeat_interval: Duration::from_secs(30),
            identify_timeout: Duration::from_secs(10),
            replay: ReplayLimits::default(),
            replay_budget_bytes: 256 * 1024 * 1024,
            resume_window: Duration::from_secs(120),
            compression: CompressionConfig::default(),
            compression_idle: Duration::from_secs(30),
            max_message: concord_protocol::limits::MAX_GATEWAY_MESSAGE,
        }
    }
}

/// The gateway endpoint of one node.
pub struct Gateway {
    hub: Arc<Hub>,
    auth: Arc<dyn Authenticator>,
    config: GatewayConfig,
    sessions: Arc<Sessions>,
    budget: Arc<ReplayBudget>,
    stats: Arc<SocketStats>,
    /// The cluster, asked for a session a RESUME names that this node lacks.
    remote: std::sync::OnceLock<Arc<dyn RemoteSessions>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The query of a gateway URL.
#[derive(Debug, Default, PartialEq, Eq)]
struct Query {
    token: Option<String>,
    bot_token: Option<String>,
    version: Option<String>,
    compress: Option<String>,
}

fn parse_query(raw: Option<&str>) -> Query {
    let mut query = Query::default();
    let Some(raw) = raw else { return query };
    // The first occurrence of a key wins.
    for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
        let slot = match key.as_ref() {
            "token" => &mut query.token,
            "bot_token" => &mut query.bot_token,
            "v" => &mut query.version,
            "compress" => &mut query.compress,
            _ => continue,
        };
        slot.get_or_insert_with(|| value.into_owned());
    }
    query
}

fn plain(status: StatusCode, text: &str) -> Response<String> {
    let mut response = Response::new(text.to_owned());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn refusal(failure: AuthFailure) -> Response<String> {
    match failure {
        AuthFailure::Invalid => plain(StatusCode::UNAUTHORIZED, "Unauthorized"),
        AuthFailure::Refused {
            status,
            body,
            retry_after_secs,
        } => {
            let mut response = Response::new(body);
            *response.status_mut() =
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            if let Some(secs) = retry_after_secs {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            response
        }
        AuthFailure::Internal => plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
    }
}

/// The client's `Sec-WebSocket-Key`, once the request is a valid WebSocket upgrade
/// (RFC 6455 §4.2.1). Checked before authentication, as the reference's framework does.
fn handshake_key(headers: &HeaderMap) -> Result<&HeaderValue, &'static str> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
    };
    if !has_token(header::CONNECTION, "upgrade") {
        return Err("Connection header did not include 'upgrade'");
    }
    if !has_token(header::UPGRADE, "websocket") {
        return Err("`Upgrade` header did not include 'websocket'");
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return Err("`Sec-WebSocket-Version` header did not include '13'");
    }
    headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or("`Sec-WebSocket-Key` header missing")
}

/// What the URL asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2(Option<Compression>),
}

impl Gateway {
    /// The endpoint over `hub`, checking credentials with `auth`.
    pub fn new(hub: Arc<Hub>, auth: Arc<dyn Authenticator>, config: GatewayConfig) -> Arc<Self> {
        Arc::new(Self {
            hub,
            auth,
            budget: Arc::new(ReplayBudget::new(config.replay_budget_bytes)),
            config,
            sessions: Arc::default(),
            stats: Arc::default(),
            remote: std::sync::OnceLock::new(),
        })
    }

    /// Joins the endpoint to a cluster: a RESUME for a session another node holds is
    /// relayed to it (see [`RemoteSessions`]). Once; later calls are ignored.
    pub fn set_remote(&self, remote: Arc<dyn RemoteSessions>) {
        let _ = self.remote.set(remote);
    }

    /// Whether this node holds v2 session `session_id` of `user` (served or parked).
    pub fn holds(&self, session_id: &str, user: UserId) -> bool {
        self.sessions
            .get(session_id)
            .is_some_and(|slot| slot.entry.user_id == user)
    }

    /// Serves a v2 connection that another node relays (see [`RelayedSocket`]): as a
    /// WebSocket after its HELLO (which that node sent), without compression (that
    /// node compresses). Its first frame is the client's RESUME. Returns `true` when
    /// the RESUME was refused (INVALID_SESSION sent): the connection goes back to that
    /// node, where an IDENTIFY opens a session.
    pub async fn serve_relayed(self: Arc<Self>, socket: RelayedSocket) -> bool {
        let _counted = self.stats.relaying(true);
        // Named only if an IDENTIFY came on the relayed socket, which the client's
        // node never forwards.
        let session_id = uuid::Uuid::new_v4().simple().to_string();
        self.await_identify(socket, None, session_id, false).await
    }

    /// Upgrades and open sockets by protocol version.
    pub fn socket_stats(&self) -> &SocketStats {
        &self.stats
    }

    /// The settings.
    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// v2 sessions this node holds (served or waiting to be resumed).
    pub fn v2_sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Bytes held by all replay buffers.
    pub fn replay_bytes(&self) -> usize {
        self.budget.used()
    }

    /// Whether every v2 session is parked or gone: none is being served or handed
    /// over. A shutdown waits for this before [`Gateway::save`].
    pub fn settled(&self) -> bool {
        self.sessions.settled()
    }

    /// Takes every parked v2 session that can still be resumed, serialized, for a
    /// graceful shutdown to store; they leave this node.
    pub fn save(&self) -> Vec<SavedSession> {
        self.sessions
            .all()
            .iter()
            .filter_map(|slot| self.save_slot(slot))
            .collect()
    }

    /// Takes parked session `slot` for good, serialized; `None` if it is not parked
    /// or cannot be resumed any more (its window passed, or it overflowed).
    fn save_slot(&self, slot: &Slot) -> Option<SavedSession> {
        let (stream, parked_at) = slot.take_parked()?;
        let entry = &slot.entry;
        let taken = entry.outbox.take();
        if taken.closing == Some(crate::CloseReason::Overflow) {
            return None;
        }
        let left = self
            .config
            .resume_window
            .saturating_sub(parked_at.elapsed());
        if left.is_zero() {
            return None;
        }
        let state = SavedState {
            intents: entry.intents.bits(),
            seq: stream.seq,
            replay: stream
                .replay
                .entries()
                .map(|(seq, payload)| (seq, payload.as_str().to_owned()))
                .collect(),
            queued: taken
                .entries
                .iter()
                .flat_map(Frames::iter)
                .filter(|p| p.dispatch_rest().is_some())
                .map(|p| p.as_str().to_owned())
                .collect(),
        };
        match serde_json::to_string(&state) {
            Ok(state) => Some(SavedSession {
                id: slot.id.clone(),
                user_id: entry.user_id,
                expires_in: left,
                state,
            }),
            Err(err) => {
                tracing::error!(error = %err, "session not saved");
                None
            }
        }
    }

    /// Parks sessions saved by a previous run of this node (or another), each waiting
    /// the rest of its window for a RESUME; events published from now on queue for
    /// them. Returns how many were restored.
    pub async fn restore(&self, saved: Vec<SavedSession>) -> usize {
        let mut restored = 0;
        for session in saved {
            let Ok(state) = serde_json::from_str::<SavedState>(&session.state) else {
                tracing::warn!(session = %session.id, "saved session unreadable; dropped");
                continue;
            };
            let Some(handler) = self.auth.restore(session.user_id).await else {
                continue;
            };
            let entry = self.hub.register_detached(
                session.user_id,
                self.config.session.queue,
                Intents::from_bits(state.intents),
            );
            for text in &state.queued {
                if let Some(payload) = Payload::dispatch_from_json(text) {
                    entry.outbox.push(payload);
                }
            }
            self.park_saved(session, entry, handler, &state);
            restored += 1;
        }
        restored
    }

    /// Parks a saved session's numbering and replay buffer over `entry`, which already
    /// holds its queued events, until a RESUME or the end of its window.
    fn park_saved(
        &self,
        session: SavedSession,
        entry: Arc<SessionEntry>,
        handler: Arc<dyn SessionHandler>,
        state: &SavedState,
    ) {
        let mut replay = Replay::new(self.config.replay, Arc::clone(&self.budget));
        let now = Instant::now();
        for (seq, text) in &state.replay {
            if let Some(payload) = Payload::dispatch_from_json(text) {
                replay.push(*seq, payload, now);
            }
        }
        let stream = V2Stream {
            seq: state.seq,
            replay,
        };
        let (slot, parking) = self
            .sessions
            .insert_parked(session.id, entry, handler, stream);
        self.sessions
            .expire_after(slot, parking, session.expires_in, Arc::clone(&self.hub));
    }

    /// The parked v2 sessions, as a node that is leaving starts to hand them over to
    /// others ([`Gateway::take_saved`] then takes each; [`Gateway::adopt`] parks it
    /// on the node that takes it).
    pub fn parked(&self) -> Vec<Parked> {
        self.sessions
            .all()
            .into_iter()
            .filter(|slot| slot.is_parked())
            .map(|slot| Parked {
                id: slot.id.clone(),
                user_id: slot.entry.user_id,
                intents: slot.entry.intents,
                mark: slot
                    .entry
                    .outbox
                    .count_where(|p| p.dispatch_rest().is_some()),
            })
            .collect()
    }

    /// Takes parked session `id` for good, serialized as [`Gateway::save`] does, and
    /// stops sending it anything; `None` if it is not parked or cannot be resumed.
    pub fn take_saved(&self, id: &str) -> Option<SavedSession> {
        let slot = self.sessions.get(id)?;
        let saved = self.save_slot(&slot);
        self.sessions.remove(&slot, &self.hub);
        saved
    }

    /// Starts taking over a session of `user` that another node hands over: a parked
    /// session with its intents is sent, from now on, what the session would be.
    pub fn shadow(&self, user_id: UserId, intents: Intents) -> Shadow {
        Shadow {
            entry: self
                .hub
                .register_detached(user_id, self.config.session.queue, intents),
        }
    }

    /// Forgets what `shadow` was sent so far: it holds what is sent from now on.
    pub fn reset_shadow(&self, shadow: &Shadow) {
        shadow.entry.outbox.take();
    }

    /// Gives up a session being taken over.
    pub fn drop_shadow(&self, shadow: Shadow) {
        self.hub.unregister(shadow.entry.id);
    }

    /// Parks session `saved`, which the node it leaves took ([`Gateway::take_saved`])
    /// once `shadow` was receiving here, for a RESUME on this node. What the shadow was
    /// sent follows what the session was sent there, less what both were sent: the
    /// session's events queued there after `mark` ([`Parked::mark`]) that the shadow
    /// holds too, frame for frame (an event's frame is the same bytes on every node).
    /// Returns whether the session was parked here.
    pub async fn adopt(&self, saved: SavedSession, mark: usize, shadow: Shadow) -> bool {
        let state = match serde_json::from_str::<SavedState>(&saved.state) {
            Ok(state) if saved.user_id == shadow.entry.user_id => state,
            _ => {
                tracing::warn!(session = %saved.id, "handed over session unreadable; dropped");
                self.drop_shadow(shadow);
                return false;
            }
        };
        let Some(handler) = self.auth.restore(saved.user_id).await else {
            self.drop_shadow(shadow);
            return false;
        };
        let mut sent_there: HashMap<&str, usize> = HashMap::new();
        for text in state.queued.iter().skip(mark) {
            *sent_there.entry(text.as_str()).or_default() += 1;
        }
        let queued: Vec<Payload> = state
            .queued
            .iter()
            .filter_map(|text| Payload::dispatch_from_json(text))
            .collect();
        let entry = Arc::clone(&shadow.entry);
        let pushed = entry.outbox.replace(|sent_here| {
            let mut frames = queued;
            for payload in sent_here {
                if payload.dispatch_rest().is_none() {
                    continue;
                }
                match sent_there.get_mut(payload.as_str()) {
                    Some(count) if *count > 0 => *count -= 1,
                    _ => frames.push(payload),
                }
            }
            frames
        });
        if pushed != Pushed::Queued {
            self.drop_shadow(shadow);
            return false;
        }
        self.park_saved(saved, entry, handler, &state);
        true
    }

    /// The codec's settings: the inbound limit enforced while reading (close 1009), a
    /// small read buffer (most inbound frames are heartbeats), and control frames
    /// written at once. Outbound data frames bypass the codec (see `GatewaySocket`).
    fn socket_config(&self) -> WebSocketConfig {
        codec_config(self.config.max_message)
    }

    /// Answers a `GET /ws`: refuses a bad request before the upgrade (400 for a bad
    /// handshake, version or compression; 401 for bad credentials), otherwise switches
    /// protocols and serves the socket in a task of its own.
    pub async fn accept<B: Send + 'static>(
        self: &Arc<Self>,
        request: Request<B>,
    ) -> Response<String> {
        let key = match handshake_key(request.headers()) {
            Ok(key) => tungstenite::handshake::derive_accept_key(key.as_bytes()),
            Err(why) => return plain(StatusCode::BAD_REQUEST, why),
        };
        let query = parse_query(request.uri().query());
        let version = match (query.version.as_deref(), query.compress.as_deref()) {
            (None | Some("1"), None) => Version::V1,
            (None | Some("1"), Some(_)) => {
                return plain(StatusCode::BAD_REQUEST, "compress needs protocol v=2");
            }
            (Some("2"), None) => Version::V2(None),
            (Some("2"), Some(name)) => match Compression::from_query(name) {
                Some(codec) => Version::V2(Some(codec)),
                None => {
                    return plain(
                        StatusCode::BAD_REQUEST,
                        "Unsupported compress value (zlib-stream or zstd-stream)",
                    );
                }
            },
            (Some(_), _) => return plain(StatusCode::BAD_REQUEST, "Unsupported protocol version"),
        };
        // A `token`, if present, is the only credential considered.
        let credential = match (&query.token, &query.bot_token) {
            (Some(token), _) => Some(Credential::Token(token)),
            (None, Some(token)) => Some(Credential::BotToken(token)),
            (None, None) => None,
        };
        let principal = match credential {
            Some(credential) => match self.auth.authenticate(credential).await {
                Ok(principal) => Some(principal),
                Err(failure) => return refusal(failure),
            },
            // v2 may authenticate after the upgrade, with IDENTIFY.
            None if version != Version::V1 => None,
            None => return refusal(AuthFailure::Invalid),
        };
        let compressor = match version {
            Version::V2(Some(codec)) => match StreamCompressor::new(codec, self.config.compression)
            {
                Ok(compressor) => Some(compressor),
                Err(err) => {
                    tracing::error!(error = %err, "compression context");
                    return plain(StatusCode::SERVICE_UNAVAILABLE, "compression unavailable");
                }
            },
            _ => None,
        };
        let on_upgrade = hyper::upgrade::on(request);
        let gateway = Arc::clone(self);
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let io = TokioIo::new(upgraded);
                    let stream = WebSocketStream::from_raw_socket(
                        io,
                        Role::Server,
                        Some(gateway.socket_config()),
                    )
                    .await;
                    let open = gateway.stats.opened(version != Version::V1);
                    let socket = WsSocket::new(stream).counted(open);
                    // The session is a task of its own, sized to the session alone:
                    // this one ends now, and what it captured is not kept beside it
                    // for the connection's life.
                    match (version, principal) {
                        (Version::V1, Some(principal)) => {
                            tokio::spawn(session::run_session(
                                socket,
                                Arc::clone(&gateway.hub),
                                principal.handler,
                                principal.user_id,
                                gateway.config.session,
                            ));
                        }
                        (Version::V1, None) => {}
                        (Version::V2(_), principal) => {
                            tokio::spawn(gateway.serve_v2_socket(socket, compressor, principal));
                        }
                    }
                }
                Err(err) => tracing::debug!(error = %err, "upgrade did not complete"),
            }
        });
        let mut response = Response::new(String::new());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&key) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        response
    }

    /// Serves an upgraded protocol-v2 socket until it ends: HELLO, then READY at once
    /// (with `principal`, from a token in the URL) or after IDENTIFY, or the missed
    /// events after RESUME; then the session. [`Gateway::accept`] calls it; tests call
    /// it with an in-memory socket.
    pub async fn serve_v2_socket<S: GatewaySocket>(
        self: Arc<Self>,
        socket: S,
        compressor: Option<StreamCompressor>,
        principal: Option<Principal>,
    ) {
        self.run_v2(socket, compressor, principal).await;
    }

    async fn run_v2<S: GatewaySocket>(
        self: Arc<Self>,
        mut socket: S,
        mut compressor: Option<StreamCompressor>,
        principal: Option<Principal>,
    ) {
        let limit = self.config.session.write_timeout;
        let session_id = uuid::Uuid::new_v4().simple().to_string();
        let hello = Hello {
            heartbeat_interval: self.config.heartbeat_interval.as_millis() as u64,
            session_id: session_id.clone(),
        };
        if !send_op(&mut socket, compressor.as_mut(), Op::Hello, &hello, limit).await {
            return;
        }
        if let Some(principal) = principal {
            self.identified(socket, compressor, session_id, principal, Intents::ALL)
                .await;
            return;
        }
        self.await_identify(socket, compressor, session_id, true)
            .await;
    }

    /// Waits for IDENTIFY or RESUME (answering heartbeats meanwhile), then serves the
    /// session. `may_relay`: a RESUME for a session another node holds is relayed
    /// there. A connection that is itself relayed (`may_relay` false: one hop at most)
    /// ends after a refused RESUME, returning `true`: the client's node takes it back.
    async fn await_identify<S: GatewaySocket>(
        self: Arc<Self>,
        mut socket: S,
        mut compressor: Option<StreamCompressor>,
        session_id: String,
        may_relay: bool,
    ) -> bool {
        let limit = self.config.session.write_timeout;
        let mut deadline = Instant::now() + self.config.identify_timeout;
        loop {
            let inbound = match tokio::time::timeout_at(deadline, socket.next()).await {
                Ok(inbound) => inbound,
                Err(_) => {
                    session::close(
                        &mut socket,
                        CloseCode::IdentifyTimeout,
                        "identify timeout",
                        limit,
                    )
                    .await;
                    return false;
                }
            };
            let text = match inbound {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(_))) | None => return false,
                Some(Err(err)) => {
                    session::close_on_read_error(&mut socket, &err, limit).await;
                    return false;
                }
                Some(Ok(_)) => continue,
            };
            // Before IDENTIFY only heartbeats are answered; anything else is ignored.
            match ClientMessage::parse(text.as_str()) {
                Ok(ClientMessage::Heartbeat) => {
                    let ack = Payload::text(concord_protocol::HEARTBEAT_ACK);
                    if !send_plain(&mut socket, compressor.as_mut(), &ack, limit).await {
                        return false;
                    }
                }
                Ok(ClientMessage::Identify(identify)) => {
                    let Identify {
                        token,
                        bot_token,
                        intents,
                    } = identify;
                    let Some(principal) = self
                        .authenticate_or_close(&mut socket, token.as_deref(), bot_token.as_deref())
                        .await
                    else {
                        return false;
                    };
                    self.identified(
                        socket,
                        compressor,
                        session_id,
                        principal,
                        intents.unwrap_or(Intents::ALL),
                    )
                    .await;
                    return false;
                }
                Ok(ClientMessage::Resume(resume)) => {
                    let Some(principal) = self
                        .authenticate_or_close(
                            &mut socket,
                            resume.token.as_deref(),
                            resume.bot_token.as_deref(),
                        )
                        .await
                    else {
                        return false;
                    };
                    match self.take_over(&resume, principal.user_id).await {
                        Some((slot, owner, stream, replay)) => {
                            self.resumed(
                                socket, compressor, slot, owner, stream, replay, principal,
                            )
                            .await;
                            return false;
                        }
                        None => {
                            // Only a well-formed id (this crate's: 32 hex digits) is
                            // worth a question to every node.
                            let plausible = resume.session_id.len() == 32
                                && resume.session_id.bytes().all(|b| b.is_ascii_hexdigit());
                            let remote = self.remote.get().filter(|_| may_relay && plausible);
                            let found = match remote {
                                Some(remote) => {
                                    remote
                                        .open(
                                            &resume.session_id,
                                            principal.user_id,
                                            text.to_string(),
                                        )
                                        .await
                                }
                                None => None,
                            };
                            match found {
                                Some(Found::Relay(link)) => {
                                    let counted = self.stats.relaying(false);
                                    let back =
                                        crate::relay::run(socket, compressor, link, limit).await;
                                    let Some(back) = back else { return false };
                                    drop(counted);
                                    // The owner refused it and said so: the client may
                                    // IDENTIFY here.
                                    (socket, compressor) = back;
                                    deadline = Instant::now() + self.config.identify_timeout;
                                    continue;
                                }
                                Some(Found::Here) => {
                                    if let Some((slot, owner, stream, replay)) =
                                        self.take_over(&resume, principal.user_id).await
                                    {
                                        self.resumed(
                                            socket, compressor, slot, owner, stream, replay,
                                            principal,
                                        )
                                        .await;
                                        return false;
                                    }
                                }
                                None => {}
                            }
                            let invalid = InvalidSession { resumable: false };
                            if !send_op(
                                &mut socket,
                                compressor.as_mut(),
                                Op::InvalidSession,
                                &invalid,
                                limit,
                            )
                            .await
                            {
                                return false;
                            }
                            if !may_relay {
                                return true;
                            }
                            // The client may IDENTIFY on this socket: a fresh deadline.
                            deadline = Instant::now() + self.config.identify_timeout;
                        }
                    }
                }
                Err(
                    err @ ParseError::InvalidPayload {
                        op: "IDENTIFY" | "RESUME",
                        ..
                    },
                ) => {
                    // Not acted on, but a client that got the shape wrong is told why
                    // rather than left to run into the deadline.
                    let error = session::error_frame(err.code(), err.to_string(), None);
                    if !send_plain(&mut socket, compressor.as_mut(), &error, limit).await {
                        return false;
                    }
                }
                _ => {}
            }
        }
    }

    /// Authenticates IDENTIFY's or RESUME's credential, or closes the socket.
    async fn authenticate_or_close<S: GatewaySocket>(
        &self,
        socket: &mut S,
        token: Option<&str>,
        bot_token: Option<&str>,
    ) -> Option<Principal> {
        let limit = self.config.session.write_timeout;
        let credential = match (token, bot_token) {
            (Some(token), _) => Credential::Token(token),
            (None, Some(token)) => Credential::BotToken(token),
            (None, None) => {
                session::close(
                    socket,
                    CloseCode::AuthenticationFailed,
                    "no credential",
                    limit,
                )
                .await;
                return None;
            }
        };
        let (code, reason) = match self.auth.authenticate(credential).await {
            Ok(principal) => return Some(principal),
            Err(AuthFailure::Invalid) => (CloseCode::AuthenticationFailed, "authentication failed"),
            Err(AuthFailure::Refused { status: 429, .. }) => {
                (CloseCode::RateLimited, "rate limited")
            }
            Err(_) => (CloseCode::Internal, "authentication unavailable"),
        };
        session::close(socket, code, reason, limit).await;
        None
    }

    /// Starts a fresh v2 session: registered before READY is built (events queue
    /// behind it), READY numbered 1, then served.
    async fn identified<S: GatewaySocket>(
        self: Arc<Self>,
        mut socket: S,
        compressor: Option<StreamCompressor>,
        session_id: String,
        principal: Principal,
        intents: Intents,
    ) {
        let limit = self.config.session.write_timeout;
        let entry = self.hub.register_session(
            principal.user_id,
            self.config.session.queue,
            SessionKind { v2: true, intents },
        );
        let (slot, owner) = self.sessions.insert(
            session_id,
            Arc::clone(&entry),
            Arc::clone(&principal.handler),
        );
        let ready = match principal.handler.ready(&entry).await {
            Ok(ready) => ready,
            Err(err) => {
                tracing::error!(session = entry.id.0, user = %entry.user_id, error = %err, "closing: READY failed");
                session::close(&mut socket, CloseCode::Internal, "ready failed", limit).await;
                self.sessions.remove(&slot, &self.hub);
                return;
            }
        };
        let stream = V2Stream {
            seq: 0,
            replay: Replay::new(self.config.replay, Arc::clone(&self.budget)),
        };
        let mut conn = self.connection(stream, compressor, slot, owner, &principal);
        let mut encoded = Encoded::default();
        let first = [Frames::One(ready)];
        let written = conn
            .stream
            .encode(&first, conn.compressor.as_mut(), &mut encoded)
            .is_ok()
            && session::write_encoded(&mut socket, &encoded, limit).await;
        drop(encoded);
        conn.stream.keep(first, Instant::now());
        principal.handler.connected(&entry).await;
        let (conn, exit) = if written {
            self.serve_v2(&mut socket, conn).await
        } else {
            (conn, Exit::LOST)
        };
        self.finish(conn, exit).await;
    }

    /// Finds the session a RESUME names, takes it from its current socket if it has
    /// one, and checks that `seq` is inside its window. `None`: INVALID_SESSION.
    async fn take_over(
        &self,
        resume: &Resume,
        user: UserId,
    ) -> Option<(Arc<Slot>, u64, V2Stream, Vec<(u64, Payload)>)> {
        let slot = self
            .sessions
            .get(&resume.session_id)
            .filter(|slot| slot.entry.user_id == user)?;
        // Long enough for the owner to finish a write it is blocked in.
        let wait = self.config.session.write_timeout + Duration::from_secs(1);
        let (owner, mut stream) = slot.take_over(wait).await.ok()?;
        stream.replay.expire(Instant::now());
        // A session the server closed because its token expired or was revoked
        // (4009) is resumable with a fresh token (`extensions.md`): it is reopened,
        // with what queued meanwhile. One that overflowed lost events.
        let replay = match slot.entry.outbox.reopen() {
            Some(_) => None,
            None => stream.replay.after(resume.seq, stream.seq),
        };
        match replay {
            Some(replay) => Some((slot, owner, stream, replay)),
            None => {
                drop(stream);
                self.remove(&slot).await;
                None
            }
        }
    }

    /// Serves a resumed session: what it missed (replayed, then what queued while it
    /// was detached), RESUMED, then live events.
    #[allow(clippy::too_many_arguments, reason = "the pieces of one take-over")]
    async fn resumed<S: GatewaySocket>(
        self: Arc<Self>,
        mut socket: S,
        compressor: Option<StreamCompressor>,
        slot: Arc<Slot>,
        owner: u64,
        stream: V2Stream,
        replay: Vec<(u64, Payload)>,
        principal: Principal,
    ) {
        let limit = self.config.session.write_timeout;
        let entry = Arc::clone(&slot.entry);
        let was_detached = !entry.is_attached();
        self.hub.attach(&entry);
        let mut conn = self.connection(stream, compressor, slot, owner, &principal);
        let taken = entry.outbox.take();
        let mut missed: Vec<Frames> = taken.entries.into();
        let queued = missed
            .iter()
            .flat_map(Frames::iter)
            .filter(|p| p.dispatch_rest().is_some())
            .count();
        let resumed = Resumed {
            replayed: (replay.len() + queued) as u64,
        };
        if let Ok(frame) = Payload::dispatch(Event::Resumed, &resumed) {
            missed.push(Frames::One(frame));
        }
        let mut encoded = Encoded::default();
        let encoded_ok = V2Stream::encode_replayed(&replay, conn.compressor.as_mut(), &mut encoded)
            .is_ok()
            && conn
                .stream
                .encode(&missed, conn.compressor.as_mut(), &mut encoded)
                .is_ok();
        let written = encoded_ok && session::write_encoded(&mut socket, &encoded, limit).await;
        drop(encoded);
        conn.stream.keep(missed, Instant::now());
        drop(replay);
        if was_detached {
            conn.slot.handler.resumed(&entry).await;
        }
        let (conn, exit) = if written {
            self.serve_v2(&mut socket, conn).await
        } else {
            (conn, Exit::LOST)
        };
        self.finish(conn, exit).await;
    }

    /// A v2 session's state on a new socket, its heartbeat deadline starting now.
    fn connection(
        &self,
        stream: V2Stream,
        compressor: Option<StreamCompressor>,
        slot: Arc<Slot>,
        owner: u64,
        principal: &Principal,
    ) -> Box<V2Conn> {
        Box::new(V2Conn {
            stream,
            compressor,
            compression_idle: self.config.compression_idle,
            compressed_at: Instant::now(),
            heartbeat_timeout: self.config.heartbeat_interval * 3 / 2,
            last_heartbeat: Instant::now(),
            expires: expiry(principal.expires_at),
            flood: Flood::default(),
            slot,
            owner,
        })
    }

    async fn serve_v2<S: GatewaySocket>(
        &self,
        socket: &mut S,
        conn: Box<V2Conn>,
    ) -> (Box<V2Conn>, Exit) {
        let slot = Arc::clone(&conn.slot);
        let mut wire = Wire::V2(conn);
        let exit = session::serve(
            socket,
            &slot.entry,
            slot.handler.as_ref(),
            &self.config.session,
            &mut wire,
        )
        .await;
        match wire {
            Wire::V2(conn) => (conn, exit),
            Wire::V1 => unreachable!("a v2 session stays v2"),
        }
    }

    /// After a v2 socket: hand the session to the RESUME that took it, keep it for a
    /// RESUME (detached, for the resume window), or end it.
    async fn finish(&self, conn: Box<V2Conn>, exit: Exit) {
        let V2Conn {
            stream,
            slot,
            owner,
            ..
        } = *conn;
        let entry = Arc::clone(&slot.entry);
        // Parked for the RESUME that took it (superseded) or one to come; if none
        // takes it within the window, the expiry ends it.
        let park = |stream| {
            if let Some(parking) = slot.park(owner, stream) {
                self.sessions.expire_after(
                    Arc::clone(&slot),
                    parking,
                    self.config.resume_window,
                    Arc::clone(&self.hub),
                );
            }
        };
        if exit.superseded {
            park(stream);
            return;
        }
        if exit.resumable {
            let remaining = self.hub.detach(&entry);
            park(stream);
            slot.handler
                .disconnected(&entry, exit.ending, remaining)
                .await;
        } else {
            drop(stream);
            let remaining = self.sessions.remove(&slot, &self.hub);
            slot.handler
                .disconnected(&entry, exit.ending, remaining)
                .await;
        }
    }

    /// Ends a session that a failed RESUME took from its socket.
    async fn remove(&self, slot: &Arc<Slot>) {
        let was_attached = slot.entry.is_attached();
        let remaining = self.sessions.remove(slot, &self.hub);
        if was_attached {
            slot.handler
                .disconnected(&slot.entry, crate::Ending::Other, remaining)
                .await;
        }
    }
}

/// When a credential expiring at `at` stops being valid, on the runtime's clock.
fn expiry(at: Option<SystemTime>) -> Option<Instant> {
    let at = at?;
    let left = at
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    Some(Instant::now() + left)
}

/// Sends `{"op": op, "d": d}` before or outside a session.
async fn send_op<S: GatewaySocket, T: serde::Serialize>(
    socket: &mut S,
    compressor: Option<&mut StreamCompressor>,
    op: Op,
    d: &T,
    limit: Duration,
) -> bool {
    match Payload::json(&OpFrame { op, d }) {
        Ok(frame) => send_plain(socket, compressor, &frame, limit).await,
        Err(_) => false,
    }
}

async fn send_plain<S: GatewaySocket>(
    socket: &mut S,
    compressor: Option<&mut StreamCompressor>,
    frame: &Payload,
    limit: Duration,
) -> bool {
    let mut encoded = Encoded::default();
    encode_plain(frame, compressor, &mut encoded).is_ok()
        && session::write_encoded(socket, &encoded, limit).await
}

/// The codec settings of every gateway socket, with an inbound limit of `max_message`
/// bytes per message and per frame (more closes 1009 while reading): a small read
/// buffer (most inbound frames are heartbeats) and control frames written at once.
/// Public so that a protocol test harness (the Autobahn echo example) runs the very
/// same codec.
pub fn codec_config(max_message: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing_decodes_and_keeps_first() {
        let q = parse_query(Some(
            "token=a%2Bb&v=2&token=second&bot_token=x+y&compress=zlib-stream",
        ));
        assert_eq!(q.token.as_deref(), Some("a+b"));
        assert_eq!(q.bot_token.as_deref(), Some("x y"));
        assert_eq!(q.version.as_deref(), Some("2"));
        assert_eq!(q.compress.as_deref(), Some("zlib-stream"));
        assert_eq!(parse_query(None), Query::default());
    }
}
