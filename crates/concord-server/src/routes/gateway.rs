//! `GET /ws`: the chat domain's side of the gateway. The engine (`concord-gateway`)
//! owns the upgrade, the protocol versions and the handshake; this module checks
//! credentials for it (`ChatAuth`) and plays the domain's part of each session
//! (READY, presence, typing, voice signals).

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use async_trait::async_trait;
use axum::{
    body::Body,
    extract::{ConnectInfo, Request, State},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};
use chrono::Utc;
use concord_gateway::{
    AuthFailure, Authenticator, CommandError, CompressionConfig, Credential, Ending, Gateway,
    GatewayConfig, Payload, Principal, QueueLimits, ReadyError, ReplayLimits, SessionConfig,
    SessionEntry, SessionHandler,
};
use concord_protocol::{
    ChannelId, Command, DmChannel, ErrorBody, ErrorCode, Event, MediaCommand, PresenceCommand,
    Ready, Server, TypingStart, UserId, VoiceSignal, VoiceSignalCommand, typing_timestamp,
};
use concord_store::{Presence as Chosen, ReadyState, UserRecord};

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    auth::{authenticate_bot, authenticate_jwt},
    bus::Audience,
    caps::ConnectionSlot,
    config::Limits,
    error::ApiError,
    perms::Permissions,
    state::AppState,
    views,
};

/// The gateway route; its state is this node's endpoint.
pub fn routes() -> OpenApiRouter<Arc<Gateway>> {
    OpenApiRouter::new().routes(routes!(upgrade))
}

/// This node's gateway endpoint over `state`'s Hub, with the configured limits.
pub fn endpoint(state: &AppState) -> Arc<Gateway> {
    let auth = Arc::new(ChatAuth {
        state: state.clone(),
    });
    Gateway::new(
        Arc::clone(&state.hub),
        auth,
        gateway_config(&state.config.limits),
    )
}

/// The engine's settings from the configuration's limits.
pub fn gateway_config(limits: &Limits) -> GatewayConfig {
    GatewayConfig {
        session: SessionConfig {
            idle_timeout: Duration::from_secs(limits.gateway_idle_secs),
            rate_count: limits.gateway_frames_per_sec,
            rate_window: Duration::from_secs(1),
            write_timeout: Duration::from_secs(10),
            queue: QueueLimits {
                max_frames: limits.queue_max_frames,
                max_bytes: limits.queue_max_bytes,
            },
            write_linger: Duration::from_millis(limits.write_linger_ms),
            write_linger_max: Duration::from_millis(limits.write_linger_max_ms),
        },
        heartbeat_interval: Duration::from_millis(limits.heartbeat_interval_ms),
        identify_timeout: Duration::from_secs(limits.identify_timeout_secs),
        replay: ReplayLimits {
            max_events: limits.replay_max_events,
            max_bytes: limits.replay_max_bytes,
            max_age: Duration::from_secs(limits.resume_window_secs),
        },
        replay_budget_bytes: limits.replay_budget_bytes,
        resume_window: Duration::from_secs(limits.resume_window_secs),
        compression: CompressionConfig::default(),
        compression_idle: Duration::from_secs(limits.compression_idle_secs),
        max_message: concord_protocol::limits::MAX_GATEWAY_MESSAGE,
    }
}

#[utoipa::path(
    get,
    path = "/ws",
    tag = "gateway",
    description = "Upgrades to the WebSocket gateway (RFC 6455: `Connection: Upgrade`, \
                   `Upgrade: websocket`, `Sec-WebSocket-Version: 13`, `Sec-WebSocket-Key`). \
                   Protocol v1 (the default) authenticates with `token` or `bot_token` in \
                   the query; v2 (`v=2`) may instead IDENTIFY after the upgrade, and may \
                   compress. The frames, events, heartbeats, RESUME and close codes are \
                   described in docs/protocol-v2.md.",
    params(
        ("v" = Option<String>, Query, description = "Protocol version: `1` (default) or `2`."),
        ("compress" = Option<String>, Query, description = "v2 only: `zlib-stream` or `zstd-stream`."),
        ("token" = Option<String>, Query, description = "An access JWT; when present, the only credential considered."),
        ("bot_token" = Option<String>, Query, description = "A bot's static token."),
    ),
    responses(
        (status = 101, description = "Switching Protocols: the connection is now the \
                                      gateway's WebSocket (see docs/protocol-v2.md)."),
        (status = 400, description = "Not a valid WebSocket upgrade, or an unsupported `v` or \
                                      `compress`.", content_type = "text/plain", body = String),
        (status = 401, description = "v1 without a credential, or a credential that is \
                                      invalid, expired or revoked.", content_type = "text/plain", body = String),
        (status = 429, description = "Too many gateway sessions from this address \
                                      (`limits.sessions_per_ip`) or of this user \
                                      (`limits.sessions_per_user`), or a bot over its \
                                      rate limit; see `Retry-After`.", body = ErrorBody),
        (status = 500, description = "The credential could not be checked.", content_type = "text/plain", body = String),
        (status = 503, description = "No compression context could be had.", content_type = "text/plain", body = String),
    ),
)]
async fn upgrade(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    gateway.accept(request).await.map(Body::from)
}

/// Middleware of the upgrade: at most `limits.sessions_per_ip` gateway sockets per
/// client address (the address the rate limits use). Over it the upgrade is answered
/// 429 with the JSON error body. An upgraded socket keeps its place until it closes
/// (the place is left with its connection, [`ConnectionSlot`]); a refused upgrade
/// gives it back at once.
pub async fn cap_sessions(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let ip = state.limiters.client_ip(peer.ip(), request.headers());
    let Some(permit) = state.sessions_per_ip.acquire(ip) else {
        state.metrics.connection_refused("sessions_per_ip");
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many gateway sessions from this address",
        )
        .with_retry_after(SESSION_RETRY_AFTER_SECS)
        .into_response();
    };
    let slot = request.extensions().get::<ConnectionSlot>().cloned();
    let response = next.run(request).await;
    if response.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(slot) = slot
    {
        slot.hold(permit);
    }
    response
}

/// Seconds a client refused for too many sessions is told to wait.
const SESSION_RETRY_AFTER_SECS: u64 = 5;

/// Credentials of the gateway: access JWTs and bot tokens, checked as the REST API
/// checks them (disabled users and revoked bots refused), and the per-bot limiter
/// applied to bot tokens (`gateway.md` D9).
struct ChatAuth {
    state: AppState,
}

#[async_trait]
impl Authenticator for ChatAuth {
    async fn authenticate(&self, credential: Credential<'_>) -> Result<Principal, AuthFailure> {
        let state = &self.state;
        let (principal, expires_at) = match credential {
            Credential::Token(token) => {
                let principal = authenticate_jwt(state, token)
                    .await
                    .map_err(|_| AuthFailure::Invalid)?;
                let exp = principal
                    .expires_at
                    .and_then(|secs| u64::try_from(secs).ok())
                    .map(|secs| UNIX_EPOCH + Duration::from_secs(secs));
                (principal, exp)
            }
            Credential::BotToken(token) => {
                let principal = match authenticate_bot(state, token).await {
                    Ok(p) => p,
                    Err(err) if err.status() == axum::http::StatusCode::UNAUTHORIZED => {
                        return Err(AuthFailure::Invalid);
                    }
                    Err(_) => return Err(AuthFailure::Internal),
                };
                if let Err(err) = state.limiters.check_bot(principal.id()) {
                    return Err(AuthFailure::Refused {
                        status: err.status().as_u16(),
                        body: serde_json::json!({"error": err.message()}).to_string(),
                        retry_after_secs: err.retry_after(),
                    });
                }
                (principal, None::<SystemTime>)
            }
        };
        let cap = state.config.limits.sessions_per_user;
        if state.hub.user_session_count(principal.id()) >= cap {
            state.metrics.connection_refused("sessions_per_user");
            return Err(AuthFailure::Refused {
                status: 429,
                body: serde_json::json!({
                    "error": format!("Too many gateway sessions for this user (at most {cap})")
                })
                .to_string(),
                retry_after_secs: Some(SESSION_RETRY_AFTER_SECS),
            });
        }
        Ok(Principal {
            user_id: principal.id(),
            // The token checks allow `token_leeway_secs` of clock skew past `exp`; the
            // session gets the same, or a token accepted just after `exp` would be
            // closed with 4009 right after READY.
            expires_at: expires_at
                .map(|at| at + Duration::from_secs(state.config.token_leeway_secs)),
            handler: Arc::new(ChatSession {
                state: state.clone(),
                username: principal.user.username.clone(),
                fresh: std::sync::Mutex::new(None),
                family: principal.family,
            }),
        })
    }

    async fn restore(&self, user: UserId) -> Option<Arc<dyn SessionHandler>> {
        match self.state.store.user(user).await {
            Ok(Some(record)) if !record.disabled => Some(Arc::new(ChatSession {
                state: self.state.clone(),
                username: record.username,
                fresh: std::sync::Mutex::new(None),
                // Not kept across a restart: a session resumed after one is closed by a
                // logout of every login, not by the end of its own.
                family: None,
            })),
            _ => None,
        }
    }
}

/// The chat domain's side of one session.
struct ChatSession {
    state: AppState,
    /// For TYPING_START (as at authentication).
    username: String,
    /// The record READY was built from, handed to `connected` (then dropped).
    fresh: std::sync::Mutex<Option<UserRecord>>,
    /// The login whose access token opened the session, if the token named one.
    family: Option<uuid::Uuid>,
}

fn forbidden(message: &str) -> CommandError {
    CommandError::new(ErrorCode::Forbidden, message)
}

#[async_trait]
impl SessionHandler for ChatSession {
    async fn ready(&self, session: &SessionEntry) -> Result<Payload, ReadyError> {
        self.join_family(session);
        // On a node of a cluster, the session's subscriptions (asked for when it
        // registered) are in effect before READY is read: nothing after it is missed.
        if let Some(cluster) = self.state.events.cluster() {
            cluster.interests().sync().await;
        }
        // The user is re-read with the rest of READY: the chosen presence may have
        // changed since the upgrade. The fresh record also feeds `connected`, which
        // follows once READY is written.
        let (ready, record) = ready_for(&self.state, session.user_id).await?;
        *self.fresh.lock().unwrap_or_else(|e| e.into_inner()) = Some(record);
        Payload::dispatch(Event::Ready, &ready).map_err(|e| ReadyError(e.to_string()))
    }

    async fn connected(&self, session: &SessionEntry) {
        tracing::debug!(session = session.id.0, user = %session.user_id, v2 = session.v2, "gateway session started");
        // READY (always built before this) left the record here.
        let fresh = self.fresh.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(user) = fresh {
            self.state.presence.session_started(&self.state, &user);
        }
    }

    async fn resumed(&self, session: &SessionEntry) {
        tracing::debug!(session = session.id.0, user = %session.user_id, "gateway session resumed");
        self.join_family(session);
        // Back within the grace period, this announces nothing; after it, online again.
        match self.state.store.user(session.user_id).await {
            Ok(Some(user)) if !user.disabled => {
                self.state.presence.session_started(&self.state, &user);
            }
            Ok(_) => self
                .state
                .hub
                .close_user(session.user_id, concord_gateway::CloseReason::Revoked),
            Err(err) => {
                tracing::error!(session = session.id.0, error = %err, "presence after RESUME not announced");
            }
        }
    }

    async fn command(&self, session: &SessionEntry, command: Command) -> Result<(), CommandError> {
        match command {
            Command::PresenceUpdate(presence) => self.presence_update(session, presence).await,
            Command::TypingStart(typing) => self.typing_start(session, typing.channel_id),
            Command::VoiceSignal(signal) => self.voice_signal(session, signal),
        }
    }

    async fn media(
        &self,
        session: &SessionEntry,
        command: MediaCommand,
    ) -> Result<(), CommandError> {
        let media = &self.state.media;
        match command {
            MediaCommand::Start(start) => {
                let channel = self.voice_channel_for(session, Permissions::SPEAK)?;
                let muted = self
                    .state
                    .store
                    .voice_state(session.user_id)
                    .await
                    .map_err(|err| {
                        tracing::error!(session = session.id.0, error = %err, "voice state not read");
                        CommandError::new(ErrorCode::InvalidPayload, "voice state unavailable")
                    })?
                    .is_some_and(|voice| voice.server_mute);
                if muted {
                    return Err(forbidden("server-muted in this voice channel"));
                }
                media.start(&self.registered(session)?, channel, start.format);
                Ok(())
            }
            MediaCommand::Stop => media.stop(session.id),
            MediaCommand::Clear => media.clear(session.id),
            MediaCommand::Subscribe(subscribe) => {
                let channel = self.voice_channel_for(session, Permissions(0))?;
                media.subscribe(&self.registered(session)?, channel, subscribe.speakers);
                Ok(())
            }
            MediaCommand::Unsubscribe => {
                media.unsubscribe(session.id);
                Ok(())
            }
        }
    }

    async fn audio(&self, session: &SessionEntry, frame: bytes::Bytes) -> Result<(), CommandError> {
        self.state.media.chunk(session.id, frame)
    }

    async fn disconnected(&self, session: &SessionEntry, ending: Ending, remaining: usize) {
        tracing::debug!(session = session.id.0, user = %session.user_id, ?ending, "gateway session ended");
        self.state.media.disconnected(session.id);
        if let Some(family) = self.family {
            self.state.families.leave(family, session.id);
        }
        self.state
            .presence
            .session_ended(&self.state, session.user_id, ending, remaining);
    }
}

impl ChatSession {
    /// Records the session under its login, or closes it when that login has ended
    /// since the credential was checked.
    fn join_family(&self, session: &SessionEntry) {
        if let Some(family) = self.family
            && !self.state.families.join(family, session.id)
        {
            self.state
                .hub
                .close_session(session.id, concord_gateway::CloseReason::Revoked);
        }
    }
    /// `gateway.md` §4 (the shape was checked when the frame was parsed): stored, then
    /// announced, so stored and announced never diverge.
    async fn presence_update(
        &self,
        session: &SessionEntry,
        presence: PresenceCommand,
    ) -> Result<(), CommandError> {
        let chosen = Chosen {
            status: presence.status,
            custom_status: presence.custom_status,
            activity: presence.activity,
        };
        if let Err(err) = self
            .state
            .store
            .set_presence(session.user_id, &chosen)
            .await
        {
            tracing::error!(session = session.id.0, error = %err, "presence not stored; not broadcast");
            return Err(CommandError::new(
                ErrorCode::InvalidPayload,
                "presence could not be stored",
            ));
        }
        self.state
            .presence
            .chosen_changed(&self.state, session.user_id, chosen);
        Ok(())
    }

    /// The voice channel the session's user is in, where they hold VIEW_CHANNEL,
    /// CONNECT_VOICE and `also` (audio, `docs/protocol-v2.md` §15.2).
    fn voice_channel_for(
        &self,
        session: &SessionEntry,
        also: Permissions,
    ) -> Result<ChannelId, CommandError> {
        let directory = &self.state.directory;
        let channel = directory
            .voice_channel(session.user_id)
            .ok_or_else(|| forbidden("join a voice channel first"))?;
        let needed = Permissions::VIEW_CHANNEL
            .union(Permissions::CONNECT_VOICE)
            .union(also);
        let perms = directory
            .channel_permissions(channel, session.user_id)
            .ok_or_else(|| forbidden("not a member of that channel's server"))?;
        if !perms.contains(needed) {
            return Err(forbidden(if also.0 == 0 {
                "missing VIEW_CHANNEL or CONNECT_VOICE in the voice channel"
            } else {
                "missing VIEW_CHANNEL, CONNECT_VOICE or SPEAK in the voice channel"
            }));
        }
        Ok(channel)
    }

    /// The hub's handle on the session (the relay keeps a weak one).
    fn registered(&self, session: &SessionEntry) -> Result<Arc<SessionEntry>, CommandError> {
        self.state
            .hub
            .session(session.id)
            .ok_or_else(|| CommandError::new(ErrorCode::InvalidPayload, "the session is closing"))
    }

    /// `gateway.md` §4: a server channel the sender may view and write in, not timed out.
    fn typing_start(&self, session: &SessionEntry, channel: ChannelId) -> Result<(), CommandError> {
        let state = &self.state;
        let facts = state
            .directory
            .channel(channel)
            .ok_or_else(|| CommandError::new(ErrorCode::NotFound, "no such server channel"))?;
        let perms = state
            .directory
            .channel_permissions(channel, session.user_id)
            .ok_or_else(|| forbidden("not a member of that channel's server"))?;
        if !perms.contains(Permissions::VIEW_CHANNEL.union(Permissions::SEND_MESSAGES)) {
            return Err(forbidden("missing VIEW_CHANNEL or SEND_MESSAGES"));
        }
        let now = concord_protocol::Timestamp::now();
        if state
            .directory
            .timed_out_until(facts.server, session.user_id, now)
            .is_some()
        {
            return Err(forbidden("timed out"));
        }
        let event = TypingStart {
            user_id: session.user_id,
            username: Some(self.username.clone()),
            channel_id: channel,
            timestamp: typing_timestamp(Utc::now()),
        };
        state
            .events
            .dispatch(Audience::Channel(channel), Event::TypingStart, &event);
        Ok(())
    }

    /// `gateway.md` §9: sender and target in the same voice channel (in-memory voice
    /// state), the sender not signalling itself (D21).
    fn voice_signal(
        &self,
        session: &SessionEntry,
        signal: VoiceSignalCommand,
    ) -> Result<(), CommandError> {
        if signal.to_user_id == session.user_id {
            return Err(forbidden("cannot signal yourself"));
        }
        let directory = &self.state.directory;
        let (Some(mine), Some(theirs)) = (
            directory.voice_channel(session.user_id),
            directory.voice_channel(signal.to_user_id),
        ) else {
            return Err(forbidden("both users must be in a voice channel"));
        };
        if mine != theirs {
            return Err(forbidden("not in the same voice channel"));
        }
        let relayed = VoiceSignal {
            from_user_id: session.user_id,
            kind: signal.kind,
            sdp: signal.sdp,
            candidate: signal.candidate,
            stream_type: signal.stream_type,
        };
        self.state.events.dispatch(
            Audience::Users(vec![signal.to_user_id]),
            Event::VoiceSignal,
            &relayed,
        );
        Ok(())
    }
}

/// Builds READY for `user` (`gateway.md` §3). Any failure fails the whole READY: a
/// client never gets empty lists that look like real data.
///
/// # Errors
/// When the user is gone or disabled, or any store read fails.
pub async fn build_ready(state: &AppState, user: UserId) -> Result<Ready, ReadyError> {
    ready_for(state, user).await.map(|(ready, _)| ready)
}

/// READY for `user`, and the user record it was built from.
async fn ready_for(state: &AppState, user: UserId) -> Result<(Ready, UserRecord), ReadyError> {
    // One consistent snapshot of everything READY reads from the store.
    let ReadyState {
        user: record,
        servers,
        dm_channels: dms,
        mut unread_counts,
        mut mention_counts,
        roles,
        overrides,
    } = state
        .store
        .ready_state(user)
        .await
        .map_err(|e| ReadyError(format!("store: {e}")))?
        .filter(|state| !state.user.disabled)
        .ok_or_else(|| ReadyError("user missing or disabled".into()))?;
    // Counts of server channels the user can no longer view are not theirs to know;
    // ids unknown to the directory are DM channels (the store only counts live ones).
    let may_view = |channel: uuid::Uuid| {
        let channel = ChannelId::from_uuid(channel);
        state.directory.channel(channel).is_none()
            || state
                .directory
                .channel_permissions(channel, user)
                .is_some_and(|p| p.contains(Permissions::VIEW_CHANNEL))
    };
    unread_counts.retain(|c| may_view(c.channel_id));
    mention_counts.retain(|c| may_view(c.channel_id.get()));

    let mut server_roles: BTreeMap<_, Vec<_>> = BTreeMap::new();
    for role in roles {
        server_roles.entry(role.server_id).or_default().push(role);
    }
    let mut channel_overrides: BTreeMap<_, Vec<_>> = BTreeMap::new();
    for ov in overrides {
        // Overrides of channels the user cannot see are not theirs to know.
        let visible = state
            .directory
            .channel_permissions(ov.channel_id, user)
            .is_some_and(|p| p.contains(Permissions::VIEW_CHANNEL));
        if visible {
            channel_overrides.entry(ov.channel_id).or_default().push(ov);
        }
    }
    let mut me = views::self_user(state, &record);
    // This session counts: the user is online with their chosen status.
    me.status = record.status;
    let ready = Ready {
        user: me,
        servers: servers
            .into_iter()
            .map(|s| -> Server { s.server })
            .collect(),
        dm_channels: dms
            .into_iter()
            .map(|dm| DmChannel {
                id: dm.channel.id,
                recipient: views::recipient_user(state, &dm.recipient),
                created_at: dm.channel.created_at,
                last_message_at: dm.last_message_at,
            })
            .collect(),
        unread_counts,
        mention_counts,
        server_roles,
        channel_overrides,
    };
    Ok((ready, record))
}
