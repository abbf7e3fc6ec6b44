//! The typed REST client (`rest.md`): one method per endpoint, the protocol crate's
//! request and response types, errors that carry the status and the server's error
//! text, and rate limits (429) met by waiting as long as `retry-after` says, a bounded
//! number of times.
//!
//! ```no_run
//! use concord_client::rest::RestClient;
//! use concord_client::protocol::{ChannelType, CreateChannel, CreateServer};
//!
//! # async fn run() -> Result<(), concord_client::rest::RestError> {
//! let anonymous = RestClient::new("http://127.0.0.1:8080");
//! let auth = anonymous.login("alice", "correct-horse-42").await?;
//! let alice = anonymous.with_bearer(&auth.access_token);
//! let server = alice
//!     .create_server(&CreateServer {
//!         name: "Book club".into(),
//!         icon_url: None,
//!         is_public: Some(true),
//!         require_invite: None,
//!         template_id: None,
//!     })
//!     .await?;
//! let channel = alice
//!     .create_channel(server.server.id, &CreateChannel {
//!         name: "general".into(),
//!         kind: ChannelType::Text,
//!         topic: None,
//!         category: None,
//!     })
//!     .await?;
//! alice.send_message(channel.id, "hello").await?;
//! # Ok(())
//! # }
//! ```

use std::{sync::Arc, time::Duration};

use concord_protocol::{
    AuthResponse, Ban, Bot, BotConnect, BotCreated, BotId, BotList, CastVote, Channel, ChannelId,
    ChannelOverride, CreateBot, CreateChannel, CreateInvite, CreateMessage, CreatePoll, CreateRole,
    CreateServer, CreateServerEvent, CreateThreadReply, DirectMessage, DmChannel, DmChannelId,
    EditMessage, GoLiveInfo, GoLiveSession, Health, IceServers, Invite, InviteAccepted, InviteId,
    InvitePreview, LoginRequest, LogoutRequest, Member, Message, MessageBody, MessageId,
    ModerationReason, OpenDm, OverrideId, PublicProfile, PutOverride, ReactionCount,
    RefreshRequest, RegisterRequest, Role, RoleId, SendDm, ServerDto, ServerEvent, ServerId,
    StartGoLive, Timeout, TimeoutMember, UpdateBot, UpdateChannel, UpdateMe, UpdateRole,
    UpdateServer, UpdateVoice, User, UserId, VoiceParticipant, VoiceState,
};
pub use reqwest::{Method, header::HeaderMap};
use serde::{Serialize, de::DeserializeOwned};

/// How a [`RestClient`] meets `429 Too Many Requests`: it waits as long as the
/// answer's `retry-after` (or `x-ratelimit-after`) says, or `default_delay` when the
/// answer names no delay (the per-bot limit sends none), and sends the request again,
/// at most `max_retries` times. A named delay longer than `max_delay` is not waited
/// out: the 429 is returned at once as [`RestError::Http`] with `retry_after` set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How many times one request is sent again after a 429 (0: never).
    pub max_retries: u32,
    /// The wait when a 429 names none.
    pub default_delay: Duration,
    /// The longest wait the client accepts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Three retries, 1 s when the server names no delay, at most 60 s.
    fn default() -> Self {
        Self {
            max_retries: 3,
            default_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Never retry: every 429 is returned to the caller.
    pub const fn none() -> Self {
        Self {
            max_retries: 0,
            default_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
        }
    }
}

/// What a REST call can fail with.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RestError {
    /// The server answered with a status that is not a success (after the retries of
    /// the [`RetryPolicy`] for a 429).
    #[error("HTTP {status}: {message}")]
    Http {
        /// The status code.
        status: u16,
        /// The server's `error` text, or the body as text when it is not the JSON
        /// error body (framework rejections may be plain text).
        message: String,
        /// On a 429: the delay the server asked for, when it named one.
        retry_after: Option<Duration>,
    },
    /// The server could not be reached or the connection failed mid-request.
    #[error("cannot reach the server: {0}")]
    Transport(String),
    /// A success answer whose body is not what the endpoint returns.
    #[error("unexpected answer (HTTP {status}): {message}")]
    Decode {
        /// The status code.
        status: u16,
        /// What did not decode.
        message: String,
    },
}

impl RestError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Http { status, .. } | Self::Decode { status, .. } => Some(*status),
            Self::Transport(_) => None,
        }
    }

    /// The server's error text, when it answered with an error status.
    pub fn message(&self) -> Option<&str> {
        match self {
            Self::Http { message, .. } => Some(message),
            _ => None,
        }
    }
}

/// The credentials a [`RestClient`] sends. Its `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Authorization {
    /// `Authorization: Bearer <access token>`.
    Bearer(String),
    /// `Authorization: Bot <static bot token>`.
    Bot(String),
    /// Exactly this header value (for tests of malformed headers).
    Raw(String),
}

impl Authorization {
    fn header(&self) -> String {
        match self {
            Self::Bearer(token) => format!("Bearer {token}"),
            Self::Bot(token) => format!("Bot {token}"),
            Self::Raw(value) => value.clone(),
        }
    }
}

impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Bearer(_) => "Bearer(<redacted>)",
            Self::Bot(_) => "Bot(<redacted>)",
            Self::Raw(_) => "Raw(<redacted>)",
        })
    }
}

/// A request at the HTTP level, for [`RestClient::send_raw`]: any method, path,
/// extra headers and body, so that tests can send what no typed method would.
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// The method.
    pub method: Method,
    /// The path (with its query), appended to the client's base URL.
    pub path: String,
    /// Extra headers, sent after the client's `Authorization`.
    pub headers: Vec<(String, String)>,
    /// The body and its `Content-Type` (`None`: no body).
    pub body: Option<(Option<String>, Vec<u8>)>,
}

impl RawRequest {
    /// `method path`, no headers, no body.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// With one more header.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// With this body, and `content_type` as its `Content-Type` (none when `None`).
    #[must_use]
    pub fn body(mut self, content_type: Option<&str>, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some((content_type.map(str::to_string), body.into()));
        self
    }

    /// With `value` as a JSON body.
    ///
    /// # Errors
    /// If `value` cannot be serialized.
    pub fn json(self, value: &impl Serialize) -> Result<Self, RestError> {
        let bytes = serde_json::to_vec(value).map_err(|e| RestError::Decode {
            status: 0,
            message: format!("request body not encodable: {e}"),
        })?;
        Ok(self.body(Some("application/json"), bytes))
    }
}

/// An answer at the HTTP level: whatever the status.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The error of a non-success answer: the JSON `error` text, or the body as text.
    fn error(&self) -> RestError {
        #[derive(serde::Deserialize)]
        struct ErrorBody {
            error: String,
        }
        let message = serde_json::from_slice::<ErrorBody>(&self.body)
            .map_or_else(|_| self.text(), |b| b.error);
        RestError::Http {
            status: self.status,
            message,
            retry_after: retry_after(&self.headers),
        }
    }

    /// Decodes a success answer, or returns its error.
    fn decode<T: DeserializeOwned>(self) -> Result<T, RestError> {
        if !(200..300).contains(&self.status) {
            return Err(self.error());
        }
        serde_json::from_slice(&self.body).map_err(|e| RestError::Decode {
            status: self.status,
            message: e.to_string(),
        })
    }

    /// Checks a success answer without a body of interest.
    fn success(self) -> Result<(), RestError> {
        if (200..300).contains(&self.status) {
            Ok(())
        } else {
            Err(self.error())
        }
    }
}

/// The delay a 429 names, in seconds (`retry-after`, else `x-ratelimit-after`).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    ["retry-after", "x-ratelimit-after"]
        .iter()
        .find_map(|name| {
            let secs: f64 = headers.get(*name)?.to_str().ok()?.trim().parse().ok()?;
            (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)))
        })
}

/// Percent-encodes one path segment (a reaction's emoji).
fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `?before=…&limit=…` from whichever is given.
fn page(before: Option<impl std::fmt::Display>, limit: Option<u32>) -> String {
    let mut parts = Vec::new();
    if let Some(before) = before {
        parts.push(format!("before={before}"));
    }
    if let Some(limit) = limit {
        parts.push(format!("limit={limit}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// A client of the REST API. Cheap to clone (the connection pool is shared); the
/// `with_*` methods give a copy with other credentials or another retry policy.
#[derive(Debug, Clone)]
pub struct RestClient {
    http: reqwest::Client,
    base: Arc<str>,
    auth: Option<Authorization>,
    retry: RetryPolicy,
    timeout: Option<Duration>,
}

impl RestClient {
    /// A client of the server at `base` (e.g. `http://127.0.0.1:8080`), without
    /// credentials, with the default [`RetryPolicy`].
    pub fn new(base: &str) -> Self {
        Self::with_http(base, reqwest::Client::new())
    }

    /// As [`RestClient::new`], trusting only the certificate authorities of `tls` for
    /// an `https://` base ([`RestClient::new`] trusts the Mozilla set).
    ///
    /// # Errors
    /// reqwest could not build its client.
    pub fn with_tls(base: &str, tls: &crate::Tls) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .use_preconfigured_tls((*tls.client_config()).clone())
            .build()?;
        Ok(Self::with_http(base, http))
    }

    /// As [`RestClient::new`], over this `reqwest` client (its pool, source address,
    /// timeouts).
    pub fn with_http(base: &str, http: reqwest::Client) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').into(),
            auth: None,
            retry: RetryPolicy::default(),
            timeout: None,
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The credentials sent, if any.
    pub fn authorization(&self) -> Option<&Authorization> {
        self.auth.as_ref()
    }

    /// This client sending these credentials (`None`: none).
    #[must_use]
    pub fn with_authorization(&self, auth: Option<Authorization>) -> Self {
        Self {
            auth,
            ..self.clone()
        }
    }

    /// This client sending `Authorization: Bearer <token>`.
    #[must_use]
    pub fn with_bearer(&self, token: &str) -> Self {
        self.with_authorization(Some(Authorization::Bearer(token.to_string())))
    }

    /// This client sending `Authorization: Bot <token>`.
    #[must_use]
    pub fn with_bot_token(&self, token: &str) -> Self {
        self.with_authorization(Some(Authorization::Bot(token.to_string())))
    }

    /// This client with another [`RetryPolicy`].
    #[must_use]
    pub fn with_retry(&self, retry: RetryPolicy) -> Self {
        Self {
            retry,
            ..self.clone()
        }
    }

    /// This client giving up on a request (each attempt) after `timeout`.
    #[must_use]
    pub fn with_timeout(&self, timeout: Duration) -> Self {
        Self {
            timeout: Some(timeout),
            ..self.clone()
        }
    }

    /// Sends a request at the HTTP level and returns the answer whatever its status;
    /// 429s are retried as the [`RetryPolicy`] says.
    ///
    /// # Errors
    /// [`RestError::Transport`] when no answer came.
    pub async fn send_raw(&self, request: &RawRequest) -> Result<RawResponse, RestError> {
        let mut retries = 0;
        loop {
            let response = self.attempt(request).await?;
            if response.status != 429 || retries >= self.retry.max_retries {
                return Ok(response);
            }
            let wait = retry_after(&response.headers).unwrap_or(self.retry.default_delay);
            if wait > self.retry.max_delay {
                return Ok(response);
            }
            retries += 1;
            tracing::debug!(path = %request.path, ?wait, retries, "rate limited; waiting");
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt(&self, request: &RawRequest) -> Result<RawResponse, RestError> {
        let mut builder = self.http.request(
            request.method.clone(),
            format!("{}{}", self.base, request.path),
        );
        if let Some(timeout) = self.timeout {
            builder = builder.timeout(timeout);
        }
        if let Some(auth) = &self.auth {
            builder = builder.header("authorization", auth.header());
        }
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some((content_type, body)) = &request.body {
            if let Some(content_type) = content_type {
                builder = builder.header("content-type", content_type.as_str());
            }
            builder = builder.body(body.clone());
        }
        let transport = |e: reqwest::Error| RestError::Transport(e.without_url().to_string());
        let response = builder.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(transport)?.to_vec();
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }

    async fn call(
        &self,
        method: Method,
        path: String,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<RawResponse, RestError> {
        let mut request = RawRequest::new(method, path);
        if let Some(body) = body {
            request = request.json(&body)?;
        }
        self.send_raw(&request).await
    }

    /// `GET path`, decoded.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, RestError> {
        self.call(Method::GET, path.into(), None::<&()>)
            .await?
            .decode()
    }

    /// `method path` with `body` as JSON (or none), decoded.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T, RestError> {
        self.call(method, path.into(), body).await?.decode()
    }

    /// `method path` with `body` as JSON (or none), for endpoints answering 204.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn request_empty(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<(), RestError> {
        self.call(method, path.into(), body).await?.success()
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: String,
        body: &(impl Serialize + ?Sized),
    ) -> Result<T, RestError> {
        self.call(method, path, Some(body)).await?.decode()
    }

    async fn bare<T: DeserializeOwned>(
        &self,
        method: Method,
        path: String,
    ) -> Result<T, RestError> {
        self.call(method, path, None::<&()>).await?.decode()
    }

    async fn empty(&self, method: Method, path: String) -> Result<(), RestError> {
        self.call(method, path, None::<&()>).await?.success()
    }

    // ---- auth (§7.1) ----

    /// `POST /auth/register`.
    ///
    /// # Errors
    /// See [`RestError`] (409: the name is taken).
    pub async fn register(&self, request: &RegisterRequest) -> Result<AuthResponse, RestError> {
        self.json(Method::POST, "/auth/register".into(), request)
            .await
    }

    /// `POST /auth/login`.
    ///
    /// # Errors
    /// See [`RestError`] (401: unknown user or wrong password).
    pub async fn login(&self, username: &str, password: &str) -> Result<AuthResponse, RestError> {
        let body = LoginRequest {
            username: username.into(),
            password: password.into(),
        };
        self.json(Method::POST, "/auth/login".into(), &body).await
    }

    /// `POST /auth/refresh`: a new access token and a new refresh token (the old one
    /// is dead from now on).
    ///
    /// # Errors
    /// See [`RestError`] (401: the refresh token is not live).
    pub async fn refresh(&self, refresh_token: &str) -> Result<AuthResponse, RestError> {
        let body = RefreshRequest {
            refresh_token: refresh_token.into(),
        };
        self.json(Method::POST, "/auth/refresh".into(), &body).await
    }

    /// `POST /auth/logout`: ends the session of `refresh_token`, or (with `None`)
    /// every session of the caller.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn logout(&self, refresh_token: Option<&str>) -> Result<(), RestError> {
        let body = LogoutRequest {
            refresh_token: refresh_token.map(str::to_string),
        };
        self.call(Method::POST, "/auth/logout".into(), Some(&body))
            .await?
            .success()
    }

    // ---- users (§7.2) ----

    /// `GET /users/@me`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn me(&self) -> Result<User, RestError> {
        self.bare(Method::GET, "/users/@me".into()).await
    }

    /// `PATCH /users/@me`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn update_me(&self, update: &UpdateMe) -> Result<User, RestError> {
        self.json(Method::PATCH, "/users/@me".into(), update).await
    }

    /// `GET /users/{id}`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn user(&self, id: UserId) -> Result<PublicProfile, RestError> {
        self.bare(Method::GET, format!("/users/{id}")).await
    }

    // ---- servers (§7.3) ----

    /// `POST /servers`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn create_server(&self, request: &CreateServer) -> Result<ServerDto, RestError> {
        self.json(Method::POST, "/servers".into(), request).await
    }

    /// `GET /servers`: the caller's servers.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn servers(&self) -> Result<Vec<ServerDto>, RestError> {
        self.bare(Method::GET, "/servers".into()).await
    }

    /// `GET /servers/browse`: public servers.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn browse_servers(&self) -> Result<Vec<ServerDto>, RestError> {
        self.bare(Method::GET, "/servers/browse".into()).await
    }

    /// `GET /servers/{id}`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn server(&self, id: ServerId) -> Result<ServerDto, RestError> {
        self.bare(Method::GET, format!("/servers/{id}")).await
    }

    /// `PATCH /servers/{id}` (owner).
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn update_server(
        &self,
        id: ServerId,
        update: &UpdateServer,
    ) -> Result<ServerDto, RestError> {
        self.json(Method::PATCH, format!("/servers/{id}"), update)
            .await
    }

    /// `DELETE /servers/{id}` (owner).
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn delete_server(&self, id: ServerId) -> Result<(), RestError> {
        self.empty(Method::DELETE, format!("/servers/{id}")).await
    }

    /// `POST /servers/{id}/join` (public servers).
    ///
    /// # Errors
    /// See [`RestError`] (409: already a member).
    pub async fn join_server(&self, id: ServerId) -> Result<MessageBody, RestError> {
        self.bare(Method::POST, format!("/servers/{id}/join")).await
    }

    /// `DELETE /servers/{id}/leave`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn leave_server(&self, id: ServerId) -> Result<(), RestError> {
        self.empty(Method::DELETE, format!("/servers/{id}/leave"))
            .await
    }

    /// `GET /servers/{id}/members`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn members(&self, id: ServerId) -> Result<Vec<Member>, RestError> {
        self.bare(Method::GET, format!("/servers/{id}/members"))
            .await
    }

    // ---- channels (§7.4, §7.5) ----

    /// `POST /servers/{id}/channels` (owner).
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn create_channel(
        &self,
        server: ServerId,
        request: &CreateChannel,
    ) -> Result<Channel, RestError> {
        self.json(Method::POST, format!("/servers/{server}/channels"), request)
            .await
    }

    /// `GET /servers/{id}/channels`: the channels the caller may view.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn channels(&self, server: ServerId) -> Result<Vec<Channel>, RestError> {
        self.bare(Method::GET, format!("/servers/{server}/channels"))
            .await
    }

    /// `GET /servers/{id}/channels/{channel_id}`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn channel(
        &self,
        server: ServerId,
        channel: ChannelId,
    ) -> Result<Channel, RestError> {
        self.bare(Method::GET, format!("/servers/{server}/channels/{channel}"))
            .await
    }

    /// `PATCH /servers/{id}/channels/{channel_id}` (owner).
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn update_channel(
        &self,
        server: ServerId,
        channel: ChannelId,
        update: &UpdateChannel,
    ) -> Result<Channel, RestError> {
        self.json(
            Method::PATCH,
            format!("/servers/{server}/channels/{channel}"),
            update,
        )
        .await
    }

    /// `DELETE /servers/{id}/channels/{channel_id}` (owner).
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn delete_channel(
        &self,
        server: ServerId,
        channel: ChannelId,
    ) -> Result<(), RestError> {
        self.empty(
            Method::DELETE,
            format!("/servers/{server}/channels/{channel}"),
        )
        .await
    }

    /// `POST /channels/{channel_id}/ack`: marks the channel read.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn ack_channel(&self, channel: ChannelId) -> Result<(), RestError> {
        self.empty(Method::POST, format!("/channels/{channel}/ack"))
            .await
    }

    // ---- messages, threads, reactions, pins, polls, events (§7.6–§7.10) ----

    /// `GET /channels/{channel_id}/messages`: root messages, newest first, older than
    /// `before` when given; `limit` is clamped by the server to 1..=100 (default 50).
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn messages(
        &self,
        channel: ChannelId,
        before: Option<MessageId>,
        limit: Option<u32>,
    ) -> Result<Vec<Message>, RestError> {
        let query = page(before, limit);
        self.bare(Method::GET, format!("/channels/{channel}/messages{query}"))
            .await
    }

    /// `POST /channels/{channel_id}/messages` with this content.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn send_message(
        &self,
        channel: ChannelId,
        content: &str,
    ) -> Result<Message, RestError> {
        self.create_message(
            channel,
            &CreateMessage {
                content: content.into(),
                reply_to: None,
            },
        )
        .await
    }

    /// `POST /channels/{channel_id}/messages`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn create_message(
        &self,
        channel: ChannelId,
        request: &CreateMessage,
    ) -> Result<Message, RestError> {
        self.json(
            Method::POST,
            format!("/channels/{channel}/messages"),
            request,
        )
        .await
    }

    /// `GET /channels/{channel_id}/messages/{message_id}`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn message(&self, channel: ChannelId, id: MessageId) -> Result<Message, RestError> {
        self.bare(Method::GET, format!("/channels/{channel}/messages/{id}"))
            .await
    }

    /// `PATCH /messages/{id}` (author).
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn edit_message(&self, id: MessageId, content: &str) -> Result<Message, RestError> {
        let body = EditMessage {
            content: content.into(),
        };
        self.json(Method::PATCH, format!("/messages/{id}"), &body)
            .await
    }

    /// `DELETE /messages/{id}` (author or server owner).
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn delete_message(&self, id: MessageId) -> Result<(), RestError> {
        self.empty(Method::DELETE, format!("/messages/{id}")).await
    }

    /// `GET /channels/{channel_id}/messages/{message_id}/thread`: replies, oldest
    /// first, after the reply `after` when given.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn thread(
        &self,
        channel: ChannelId,
        root: MessageId,
        after: Option<MessageId>,
        limit: Option<u32>,
    ) -> Result<Vec<Message>, RestError> {
        let query = page(after, limit);
        self.bare(
            Method::GET,
            format!("/channels/{channel}/messages/{root}/thread{query}"),
        )
        .await
    }

    /// `POST /channels/{channel_id}/messages/{message_id}/thread`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn reply_in_thread(
        &self,
        channel: ChannelId,
        root: MessageId,
        content: &str,
    ) -> Result<Message, RestError> {
        let body = CreateThreadReply {
            content: content.into(),
        };
        self.json(
            Method::POST,
            format!("/channels/{channel}/messages/{root}/thread"),
            &body,
        )
        .await
    }

    /// `PUT /channels/{channel_id}/messages/{message_id}/reactions/{emoji}`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn add_reaction(
        &self,
        channel: ChannelId,
        message: MessageId,
        emoji: &str,
    ) -> Result<(), RestError> {
        let emoji = segment(emoji);
        self.empty(
            Method::PUT,
            format!("/channels/{channel}/messages/{message}/reactions/{emoji}"),
        )
        .await
    }

    /// `DELETE /channels/{channel_id}/messages/{message_id}/reactions/{emoji}`: the
    /// caller's own reaction.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn remove_reaction(
        &self,
        channel: ChannelId,
        message: MessageId,
        emoji: &str,
    ) -> Result<(), RestError> {
        let emoji = segment(emoji);
        self.empty(
            Method::DELETE,
            format!("/channels/{channel}/messages/{message}/reactions/{emoji}"),
        )
        .await
    }

    /// `GET /channels/{channel_id}/messages/{message_id}/reactions`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn reactions(
        &self,
        channel: ChannelId,
        message: MessageId,
    ) -> Result<Vec<ReactionCount>, RestError> {
        self.bare(
            Method::GET,
            format!("/channels/{channel}/messages/{message}/reactions"),
        )
        .await
    }

    /// `POST /channels/{channel_id}/messages/{message_id}/pin`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn pin(&self, channel: ChannelId, message: MessageId) -> Result<(), RestError> {
        self.empty(
            Method::POST,
            format!("/channels/{channel}/messages/{message}/pin"),
        )
        .await
    }

    /// `DELETE /channels/{channel_id}/messages/{message_id}/pin`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn unpin(&self, channel: ChannelId, message: MessageId) -> Result<(), RestError> {
        self.empty(
            Method::DELETE,
            format!("/channels/{channel}/messages/{message}/pin"),
        )
        .await
    }

    /// `GET /channels/{channel_id}/pinned-messages`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn pinned_messages(&self, channel: ChannelId) -> Result<Vec<Message>, RestError> {
        self.bare(Method::GET, format!("/channels/{channel}/pinned-messages"))
            .await
    }

    /// `POST /channels/{channel_id}/polls`: a message carrying a poll.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn create_poll(
        &self,
        channel: ChannelId,
        request: &CreatePoll,
    ) -> Result<Message, RestError> {
        self.json(Method::POST, format!("/channels/{channel}/polls"), request)
            .await
    }

    /// `POST /polls/{poll_id}/vote`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn vote(
        &self,
        poll: concord_protocol::PollId,
        vote: &CastVote,
    ) -> Result<concord_protocol::Poll, RestError> {
        self.json(Method::POST, format!("/polls/{poll}/vote"), vote)
            .await
    }

    /// `POST /channels/{channel_id}/events`: a message announcing a scheduled event.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn create_event(
        &self,
        channel: ChannelId,
        request: &CreateServerEvent,
    ) -> Result<Message, RestError> {
        self.json(Method::POST, format!("/channels/{channel}/events"), request)
            .await
    }

    /// `GET /servers/{id}/events`: upcoming scheduled events.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn events(&self, server: ServerId) -> Result<Vec<ServerEvent>, RestError> {
        self.bare(Method::GET, format!("/servers/{server}/events"))
            .await
    }

    // ---- direct messages (§7.11) ----

    /// `GET /dm-channels`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn dm_channels(&self) -> Result<Vec<DmChannel>, RestError> {
        self.bare(Method::GET, "/dm-channels".into()).await
    }

    /// `POST /dm-channels`: opens (or finds) the DM channel with `user`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn open_dm(&self, user: UserId) -> Result<DmChannel, RestError> {
        self.json(
            Method::POST,
            "/dm-channels".into(),
            &OpenDm { user_id: user },
        )
        .await
    }

    /// `GET /dm-channels/{id}/messages`: newest first.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn dm_messages(
        &self,
        channel: DmChannelId,
        before: Option<concord_protocol::DirectMessageId>,
        limit: Option<u32>,
    ) -> Result<Vec<DirectMessage>, RestError> {
        let query = page(before, limit);
        self.bare(
            Method::GET,
            format!("/dm-channels/{channel}/messages{query}"),
        )
        .await
    }

    /// `POST /dm-channels/{id}/messages`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn send_dm(
        &self,
        channel: DmChannelId,
        content: &str,
    ) -> Result<DirectMessage, RestError> {
        let body = SendDm {
            content: content.into(),
        };
        self.json(
            Method::POST,
            format!("/dm-channels/{channel}/messages"),
            &body,
        )
        .await
    }

    /// `POST /dm-channels/{id}/ack`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn ack_dm(&self, channel: DmChannelId) -> Result<(), RestError> {
        self.empty(Method::POST, format!("/dm-channels/{channel}/ack"))
            .await
    }

    // ---- roles and overrides (§7.12, §7.13) ----

    /// `GET /servers/{id}/roles`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn roles(&self, server: ServerId) -> Result<Vec<Role>, RestError> {
        self.bare(Method::GET, format!("/servers/{server}/roles"))
            .await
    }

    /// `POST /servers/{id}/roles`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn create_role(
        &self,
        server: ServerId,
        request: &CreateRole,
    ) -> Result<Role, RestError> {
        self.json(Method::POST, format!("/servers/{server}/roles"), request)
            .await
    }

    /// `PATCH /servers/{id}/roles/{role_id}`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn update_role(
        &self,
        server: ServerId,
        role: RoleId,
        update: &UpdateRole,
    ) -> Result<Role, RestError> {
        self.json(
            Method::PATCH,
            format!("/servers/{server}/roles/{role}"),
            update,
        )
        .await
    }

    /// `DELETE /servers/{id}/roles/{role_id}`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn delete_role(&self, server: ServerId, role: RoleId) -> Result<(), RestError> {
        self.empty(Method::DELETE, format!("/servers/{server}/roles/{role}"))
            .await
    }

    /// `PUT /servers/{id}/members/{user_id}/roles/{role_id}`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn add_member_role(
        &self,
        server: ServerId,
        user: UserId,
        role: RoleId,
    ) -> Result<(), RestError> {
        self.empty(
            Method::PUT,
            format!("/servers/{server}/members/{user}/roles/{role}"),
        )
        .await
    }

    /// `DELETE /servers/{id}/members/{user_id}/roles/{role_id}`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn remove_member_role(
        &self,
        server: ServerId,
        user: UserId,
        role: RoleId,
    ) -> Result<(), RestError> {
        self.empty(
            Method::DELETE,
            format!("/servers/{server}/members/{user}/roles/{role}"),
        )
        .await
    }

    /// `GET /channels/{channel_id}/overrides`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn overrides(&self, channel: ChannelId) -> Result<Vec<ChannelOverride>, RestError> {
        self.bare(Method::GET, format!("/channels/{channel}/overrides"))
            .await
    }

    /// `PUT /channels/{channel_id}/overrides`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn put_override(
        &self,
        channel: ChannelId,
        request: &PutOverride,
    ) -> Result<ChannelOverride, RestError> {
        self.json(
            Method::PUT,
            format!("/channels/{channel}/overrides"),
            request,
        )
        .await
    }

    /// `DELETE /channels/{channel_id}/overrides/{override_id}`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn delete_override(
        &self,
        channel: ChannelId,
        id: OverrideId,
    ) -> Result<(), RestError> {
        self.empty(
            Method::DELETE,
            format!("/channels/{channel}/overrides/{id}"),
        )
        .await
    }

    // ---- invites (§7.14) ----

    /// `GET /servers/{id}/invites`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn invites(&self, server: ServerId) -> Result<Vec<Invite>, RestError> {
        self.bare(Method::GET, format!("/servers/{server}/invites"))
            .await
    }

    /// `POST /servers/{id}/invites`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn create_invite(
        &self,
        server: ServerId,
        request: &CreateInvite,
    ) -> Result<Invite, RestError> {
        self.json(Method::POST, format!("/servers/{server}/invites"), request)
            .await
    }

    /// `DELETE /servers/{id}/invites/{invite_id}`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn delete_invite(&self, server: ServerId, invite: InviteId) -> Result<(), RestError> {
        self.empty(
            Method::DELETE,
            format!("/servers/{server}/invites/{invite}"),
        )
        .await
    }

    /// `GET /invites/{code}`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn invite(&self, code: &str) -> Result<InvitePreview, RestError> {
        let code = segment(code);
        self.bare(Method::GET, format!("/invites/{code}")).await
    }

    /// `POST /invites/{code}/accept`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn accept_invite(&self, code: &str) -> Result<InviteAccepted, RestError> {
        let code = segment(code);
        self.bare(Method::POST, format!("/invites/{code}/accept"))
            .await
    }

    // ---- moderation (§7.15) ----

    /// `POST /servers/{id}/members/{user_id}/kick`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn kick(
        &self,
        server: ServerId,
        user: UserId,
        reason: Option<&str>,
    ) -> Result<(), RestError> {
        let body = ModerationReason {
            reason: reason.map(str::to_string),
        };
        self.call(
            Method::POST,
            format!("/servers/{server}/members/{user}/kick"),
            Some(&body),
        )
        .await?
        .success()
    }

    /// `POST /servers/{id}/members/{user_id}/ban`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn ban(
        &self,
        server: ServerId,
        user: UserId,
        reason: Option<&str>,
    ) -> Result<(), RestError> {
        let body = ModerationReason {
            reason: reason.map(str::to_string),
        };
        self.call(
            Method::POST,
            format!("/servers/{server}/members/{user}/ban"),
            Some(&body),
        )
        .await?
        .success()
    }

    /// `GET /servers/{id}/bans`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn bans(&self, server: ServerId) -> Result<Vec<Ban>, RestError> {
        self.bare(Method::GET, format!("/servers/{server}/bans"))
            .await
    }

    /// `DELETE /servers/{id}/bans/{user_id}`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn unban(&self, server: ServerId, user: UserId) -> Result<(), RestError> {
        self.empty(Method::DELETE, format!("/servers/{server}/bans/{user}"))
            .await
    }

    /// `POST /servers/{id}/members/{user_id}/timeout`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn timeout_member(
        &self,
        server: ServerId,
        user: UserId,
        request: &TimeoutMember,
    ) -> Result<Timeout, RestError> {
        self.json(
            Method::POST,
            format!("/servers/{server}/members/{user}/timeout"),
            request,
        )
        .await
    }

    /// `DELETE /servers/{id}/members/{user_id}/timeout`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn remove_timeout(&self, server: ServerId, user: UserId) -> Result<(), RestError> {
        self.empty(
            Method::DELETE,
            format!("/servers/{server}/members/{user}/timeout"),
        )
        .await
    }

    // ---- voice, Go Live, ICE (§7.17–§7.19) ----

    /// `GET /channels/{channel_id}/voice`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn voice_participants(
        &self,
        channel: ChannelId,
    ) -> Result<Vec<VoiceParticipant>, RestError> {
        self.bare(Method::GET, format!("/channels/{channel}/voice"))
            .await
    }

    /// `POST /channels/{channel_id}/voice`: joins (or moves to) the voice channel.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn join_voice(&self, channel: ChannelId) -> Result<VoiceState, RestError> {
        self.bare(Method::POST, format!("/channels/{channel}/voice"))
            .await
    }

    /// `PATCH /channels/{channel_id}/voice`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn update_voice(
        &self,
        channel: ChannelId,
        update: &UpdateVoice,
    ) -> Result<VoiceState, RestError> {
        self.json(Method::PATCH, format!("/channels/{channel}/voice"), update)
            .await
    }

    /// `DELETE /channels/{channel_id}/voice`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn leave_voice(&self, channel: ChannelId) -> Result<(), RestError> {
        self.empty(Method::DELETE, format!("/channels/{channel}/voice"))
            .await
    }

    /// `GET /channels/{channel_id}/go-live`.
    ///
    /// # Errors
    /// See [`RestError`] (404: nobody is live).
    pub async fn go_live(&self, channel: ChannelId) -> Result<GoLiveInfo, RestError> {
        self.bare(Method::GET, format!("/channels/{channel}/go-live"))
            .await
    }

    /// `POST /channels/{channel_id}/go-live`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn start_go_live(
        &self,
        channel: ChannelId,
        request: &StartGoLive,
    ) -> Result<GoLiveSession, RestError> {
        self.json(
            Method::POST,
            format!("/channels/{channel}/go-live"),
            request,
        )
        .await
    }

    /// `DELETE /channels/{channel_id}/go-live`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn stop_go_live(&self, channel: ChannelId) -> Result<(), RestError> {
        self.empty(Method::DELETE, format!("/channels/{channel}/go-live"))
            .await
    }

    /// `GET /ice-servers`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn ice_servers(&self) -> Result<IceServers, RestError> {
        self.bare(Method::GET, "/ice-servers".into()).await
    }

    // ---- bots (§7.20) ----

    /// `POST /bots` (human callers): the bot and its token, shown this once.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn create_bot(&self, request: &CreateBot) -> Result<BotCreated, RestError> {
        self.json(Method::POST, "/bots".into(), request).await
    }

    /// `GET /bots`: the caller's bots.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn bots(&self) -> Result<Vec<Bot>, RestError> {
        let list: BotList = self.bare(Method::GET, "/bots".into()).await?;
        Ok(list.bots)
    }

    /// `GET /bots/{id}`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn bot(&self, id: BotId) -> Result<Bot, RestError> {
        self.bare(Method::GET, format!("/bots/{id}")).await
    }

    /// `PATCH /bots/{id}`.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn update_bot(&self, id: BotId, update: &UpdateBot) -> Result<Bot, RestError> {
        self.json(Method::PATCH, format!("/bots/{id}"), update)
            .await
    }

    /// `DELETE /bots/{id}`: revokes the bot.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn revoke_bot(&self, id: BotId) -> Result<(), RestError> {
        self.empty(Method::DELETE, format!("/bots/{id}")).await
    }

    /// `POST /bots/{id}/token/regenerate`: a new token; the old one dies at once.
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn regenerate_bot_token(&self, id: BotId) -> Result<BotCreated, RestError> {
        self.bare(Method::POST, format!("/bots/{id}/token/regenerate"))
            .await
    }

    /// `POST /bots/connect`: trades the bot token this client sends
    /// ([`RestClient::with_bot_token`]) for a 15-minute access token of the bot user.
    ///
    /// # Errors
    /// See [`RestError`] (401: the token is unknown or revoked).
    pub async fn bot_connect(&self) -> Result<BotConnect, RestError> {
        self.bare(Method::POST, "/bots/connect".into()).await
    }

    // ---- health (§7.21) ----

    /// `GET /health`. A degraded server answers 503, returned as
    /// [`RestError::Http`].
    ///
    /// # Errors
    /// See [`RestError`].
    pub async fn health(&self) -> Result<Health, RestError> {
        self.bare(Method::GET, "/health".into()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_from_either_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert("x-ratelimit-after", "2".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("retry-after", "0.5".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(500)));
        headers.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("x-ratelimit-after", "-1".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(segment("abc-_.~9"), "abc-_.~9");
        assert_eq!(segment("👍"), "%F0%9F%91%8D");
        assert_eq!(segment("a/b?c"), "a%2Fb%3Fc");
    }

    #[test]
    fn error_bodies_give_their_text_or_the_raw_body() {
        let json = RawResponse {
            status: 404,
            headers: HeaderMap::new(),
            body: br#"{"error":"Channel not found"}"#.to_vec(),
        };
        let err = json.success().unwrap_err();
        assert_eq!(err.status(), Some(404));
        assert_eq!(err.message(), Some("Channel not found"));
        let text = RawResponse {
            status: 415,
            headers: HeaderMap::new(),
            body: b"Expected request with `Content-Type: application/json`".to_vec(),
        };
        assert!(
            text.success()
                .unwrap_err()
                .message()
                .unwrap()
                .contains("Content-Type")
        );
    }

    #[test]
    fn credentials_never_show_their_secret() {
        let shown = format!("{:?}", Authorization::Bot("s3cret".into()));
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
