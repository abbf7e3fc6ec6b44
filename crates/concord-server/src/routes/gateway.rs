//! `GET /ws`: authentication before the upgrade, then the chat side of a session
//! (READY, presence, typing, voice signals) plugged into the gateway engine.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use chrono::Utc;
use concord_gateway::{
    Ending, Payload, QueueLimits, ReadyError, SessionConfig, SessionEntry, SessionHandler,
    WsSocket, run_session,
};
use concord_protocol::{
    ChannelId, Dispatch, DmChannel, Event, Op, Ready, Server, Status, TypingStart, UserId,
    VoiceSignal, limits, typing_timestamp,
};
use concord_store::{Presence as Chosen, ReadyState, UserRecord};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::protocol::{Role, WebSocketConfig},
};

use crate::{
    auth::{Principal, authenticate_bot, authenticate_jwt},
    bus::Audience,
    perms::Permissions,
    state::AppState,
    views,
};

/// The gateway route.
pub fn routes() -> Router<AppState> {
    Router::new().route("/ws", get(upgrade))
}

#[derive(Debug, Default)]
struct Params {
    token: Option<String>,
    bot_token: Option<String>,
    version: Option<String>,
}

fn parse_params(raw: Option<&str>) -> Params {
    let mut params = Params::default();
    let Some(raw) = raw else { return params };
    // The first occurrence of a key wins.
    for (key, value) in form_urlencoded::parse(raw.as_bytes()) {
        let slot = match key.as_ref() {
            "token" => &mut params.token,
            "bot_token" => &mut params.bot_token,
            "v" => &mut params.version,
            _ => continue,
        };
        slot.get_or_insert_with(|| value.into_owned());
    }
    params
}

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, "Unauthorized").into_response()
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

/// The codec's settings: 16 KiB inbound limit enforced while reading (close 1009), a
/// small read buffer (most inbound frames are heartbeats), and control frames written
/// at once. Outbound data frames bypass the codec (see `GatewaySocket`).
fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_message_size(Some(limits::MAX_GATEWAY_MESSAGE))
        .max_frame_size(Some(limits::MAX_GATEWAY_MESSAGE))
}

async fn upgrade(State(state): State<AppState>, request: Request) -> Response {
    let key = match handshake_key(request.headers()) {
        Ok(key) => tungstenite::handshake::derive_accept_key(key.as_bytes()),
        Err(why) => return (StatusCode::BAD_REQUEST, why).into_response(),
    };
    let params = parse_params(request.uri().query());
    match params.version.as_deref() {
        None | Some("1") => {}
        Some(_) => {
            return (StatusCode::BAD_REQUEST, "Unsupported protocol version").into_response();
        }
    }
    // A `token`, if present, is the only credential considered.
    let principal: Principal = if let Some(token) = params.token.as_deref() {
        match authenticate_jwt(&state, token).await {
            Ok(p) => p,
            Err(_) => return unauthorized(),
        }
    } else if let Some(token) = params.bot_token.as_deref() {
        match authenticate_bot(&state, token).await {
            Ok(p) => {
                if let Err(err) = state.limiters.check_bot(p.id()) {
                    return err.into_response();
                }
                p
            }
            Err(err) if err.status() == StatusCode::UNAUTHORIZED => return unauthorized(),
            Err(err) => return err.into_response(),
        }
    } else {
        return unauthorized();
    };

    let limits = &state.config.limits;
    let config = SessionConfig {
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
    };
    let handler: Arc<dyn SessionHandler> = Arc::new(ChatSession {
        state: state.clone(),
        username: principal.user.username.clone(),
        fresh: std::sync::Mutex::new(None),
    });
    let hub = Arc::clone(&state.hub);
    let user = principal.id();
    let on_upgrade = hyper::upgrade::on(request);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let io = TokioIo::new(upgraded);
                let socket = WsSocket::new(
                    WebSocketStream::from_raw_socket(io, Role::Server, Some(socket_config())).await,
                );
                // The session is a task of its own, sized to the session alone: this
                // one ends now, and what it captured is not kept beside it for the
                // connection's life.
                tokio::spawn(run_session(socket, hub, handler, user, config));
            }
            Err(err) => tracing::debug!(error = %err, "upgrade did not complete"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, key)
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The chat domain's side of one session.
struct ChatSession {
    state: AppState,
    /// For TYPING_START (as at the upgrade).
    username: String,
    /// The record READY was built from, handed to `connected` (then dropped).
    fresh: std::sync::Mutex<Option<UserRecord>>,
}

#[async_trait]
impl SessionHandler for ChatSession {
    async fn ready(&self, session: &SessionEntry) -> Result<Payload, ReadyError> {
        // The user is re-read with the rest of READY: the chosen presence may have
        // changed since the upgrade. The fresh record also feeds `connected`, which
        // follows once READY is written.
        let (ready, record) = ready_for(&self.state, session.user_id).await?;
        *self.fresh.lock().unwrap_or_else(|e| e.into_inner()) = Some(record);
        Payload::json(&Dispatch::new(Event::Ready, &ready)).map_err(|e| ReadyError(e.to_string()))
    }

    async fn connected(&self, _session: &SessionEntry) {
        // READY (always built before this) left the record here.
        let fresh = self.fresh.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(user) = fresh {
            self.state.presence.session_started(&self.state, &user);
        }
    }

    async fn command(&self, session: &SessionEntry, op: Op, d: Option<Value>) {
        match op {
            Op::PresenceUpdate => self.presence_update(session, d).await,
            Op::TypingStart => self.typing_start(session, d),
            Op::VoiceSignal => self.voice_signal(session, d),
            _ => {}
        }
    }

    async fn disconnected(&self, session: &SessionEntry, ending: Ending, remaining: usize) {
        self.state
            .presence
            .session_ended(&self.state, session.user_id, ending, remaining);
    }
}

impl ChatSession {
    /// `gateway.md` §4: `d` required; a string `status` must be one of the four (else
    /// the frame is dropped); missing or non-string means online; `custom_status` and
    /// `activity` are taken if strings, else cleared; over 128 chars drops the frame.
    async fn presence_update(&self, session: &SessionEntry, d: Option<Value>) {
        let Some(Value::Object(d)) = d else { return };
        let status = match d.get("status") {
            Some(Value::String(s)) => match Status::parse(s) {
                Some(status) => status,
                None => return,
            },
            _ => Status::Online,
        };
        let text = |key: &str| match d.get(key) {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        };
        let (custom_status, activity) = (text("custom_status"), text("activity"));
        let too_long = |t: &Option<String>| {
            t.as_ref()
                .is_some_and(|s| s.chars().count() > limits::MAX_PRESENCE_TEXT_CHARS)
        };
        if too_long(&custom_status) || too_long(&activity) {
            return;
        }
        let chosen = Chosen {
            status,
            custom_status,
            activity,
        };
        if let Err(err) = self
            .state
            .store
            .set_presence(session.user_id, &chosen)
            .await
        {
            // Validate and store before broadcasting: stored and announced never diverge.
            tracing::error!(error = %err, "presence not stored; not broadcast");
            return;
        }
        self.state
            .presence
            .chosen_changed(&self.state, session.user_id, chosen);
    }

    /// `gateway.md` §4: a server channel the sender may view and write in, not timed out.
    fn typing_start(&self, session: &SessionEntry, d: Option<Value>) {
        let Some(channel) = d
            .as_ref()
            .and_then(|d| d.get("channel_id"))
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<ChannelId>().ok())
        else {
            return;
        };
        let state = &self.state;
        let Some(facts) = state.directory.channel(channel) else {
            return;
        };
        let Some(perms) = state
            .directory
            .channel_permissions(channel, session.user_id)
        else {
            return;
        };
        if !perms.contains(Permissions::VIEW_CHANNEL.union(Permissions::SEND_MESSAGES)) {
            return;
        }
        let now = concord_protocol::Timestamp::now();
        if state
            .directory
            .timed_out_until(facts.server, session.user_id, now)
            .is_some()
        {
            return;
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
    }

    /// `gateway.md` §9, checked in order against in-memory voice state.
    fn voice_signal(&self, session: &SessionEntry, d: Option<Value>) {
        let Some(Value::Object(d)) = d else { return };
        let Some(target) = d
            .get("to_user_id")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<UserId>().ok())
        else {
            return;
        };
        let kind = match d.get("type").and_then(Value::as_str) {
            Some(k @ ("offer" | "answer" | "candidate")) => k.to_string(),
            _ => return,
        };
        let optional_text = |key: &str| -> Result<Option<String>, ()> {
            match d.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(()),
            }
        };
        let (Ok(sdp), Ok(candidate), Ok(stream_type)) = (
            optional_text("sdp"),
            optional_text("candidate"),
            optional_text("stream_type"),
        ) else {
            return;
        };
        let directory = &self.state.directory;
        let (Some(mine), Some(theirs)) = (
            directory.voice_channel(session.user_id),
            directory.voice_channel(target),
        ) else {
            return;
        };
        if mine != theirs {
            return;
        }
        let signal = VoiceSignal {
            from_user_id: session.user_id,
            kind,
            sdp,
            candidate,
            stream_type,
        };
        self.state
            .events
            .dispatch(Audience::Users(vec![target]), Event::VoiceSignal, &signal);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing_decodes_and_keeps_first() {
        let p = parse_params(Some("token=a%2Bb&v=1&token=second&bot_token=x+y"));
        assert_eq!(p.token.as_deref(), Some("a+b"));
        assert_eq!(p.bot_token.as_deref(), Some("x y"));
        assert_eq!(p.version.as_deref(), Some("1"));
        assert!(parse_params(None).token.is_none());
    }
}
