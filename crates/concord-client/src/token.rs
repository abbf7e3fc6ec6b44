//! Where the gateway's credentials come from: asked for on every connection, so that a
//! reconnect never presents a token that has since expired.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine;
use serde::Deserialize;

use crate::{RestClient, RestError};

/// A credential for IDENTIFY / RESUME (v2) or the upgrade's query (v1). Its `Debug`
/// never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// An access JWT (`token`).
    Token(String),
    /// A static bot token (`bot_token`).
    BotToken(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Token(_) => "Token(<redacted>)",
            Self::BotToken(_) => "BotToken(<redacted>)",
        })
    }
}

/// Why no credential could be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The server refused the refresh or bot token (401/403): retrying cannot help.
    #[error("the server refused the credential (HTTP {status}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The server's `error` text.
        message: String,
    },
    /// The request failed or the server answered something else: worth retrying.
    #[error("token request failed: {0}")]
    Transient(String),
}

impl TokenError {
    /// Whether asking again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

/// Gives the gateway a credential for each connection.
#[async_trait]
pub trait TokenProvider: Send + Sync + 'static {
    /// A credential to connect with. `renew` is true when the server has just refused
    /// or expired the previous one (close 4004 or 4009, or HTTP 401): the provider
    /// should then get a new one rather than hand back what it holds.
    ///
    /// # Errors
    /// See [`TokenError`]: a [`TokenError::Refused`] stops the gateway, a
    /// [`TokenError::Transient`] is retried with backoff.
    async fn credential(&self, renew: bool) -> Result<Credential, TokenError>;

    /// Whether [`TokenProvider::credential`] can produce a different credential
    /// when asked to renew (a fixed token cannot: the gateway then stops on 4004).
    fn renews(&self) -> bool;
}

/// A fixed credential. It cannot be renewed: after 4004 the gateway stops.
#[derive(Debug, Clone)]
pub struct StaticToken(Credential);

impl StaticToken {
    /// An access JWT.
    pub fn token(token: impl Into<String>) -> Self {
        Self(Credential::Token(token.into()))
    }

    /// A static bot token, presented as `bot_token`.
    pub fn bot_token(token: impl Into<String>) -> Self {
        Self(Credential::BotToken(token.into()))
    }
}

#[async_trait]
impl TokenProvider for StaticToken {
    async fn credential(&self, _renew: bool) -> Result<Credential, TokenError> {
        Ok(self.0.clone())
    }

    fn renews(&self) -> bool {
        false
    }
}

/// How long before its `exp` a held access token is replaced anyway.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// The `exp` claim of a JWT, read without checking the signature (the server checks
/// it; the client only wants to know whether to renew).
fn jwt_expiry(token: &str) -> Option<SystemTime> {
    #[derive(Deserialize)]
    struct Claims {
        exp: u64,
    }
    let claims = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims.trim_end_matches('='))
        .ok()?;
    let claims: Claims = serde_json::from_slice(&bytes).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(claims.exp))
}

/// Whether a held access token may still be presented.
fn still_good(token: &str) -> bool {
    jwt_expiry(token).is_some_and(|exp| exp > SystemTime::now() + EXPIRY_MARGIN)
}

/// A refusal (401/403: retrying cannot help) or a transient failure.
fn token_error(err: RestError) -> TokenError {
    match err {
        RestError::Http {
            status: status @ (401 | 403),
            message,
            ..
        } => TokenError::Refused { status, message },
        other => TokenError::Transient(other.to_string()),
    }
}

/// Access tokens from a refresh token (`POST /auth/refresh`). Refresh tokens rotate:
/// each refresh returns a new one, kept for the next.
pub struct RefreshToken {
    rest: RestClient,
    held: tokio::sync::Mutex<(Option<String>, String)>,
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshToken")
            .field("api", &self.rest.base())
            .finish_non_exhaustive()
    }
}

impl RefreshToken {
    /// Refreshes at `{api}/auth/refresh` (`api` is the REST base, e.g.
    /// `http://127.0.0.1:8080`) starting from `refresh_token`.
    pub fn new(api: &str, refresh_token: impl Into<String>) -> Self {
        Self::with_client(RestClient::new(api), refresh_token)
    }

    /// As [`RefreshToken::new`], refreshing through this REST client (its
    /// credentials are not used: `/auth/refresh` needs none).
    pub fn with_client(rest: RestClient, refresh_token: impl Into<String>) -> Self {
        Self {
            rest: rest.with_authorization(None),
            held: tokio::sync::Mutex::new((None, refresh_token.into())),
        }
    }

    /// As [`RefreshToken::new`], with an access token to use while it is good.
    pub fn with_access(
        api: &str,
        access_token: impl Into<String>,
        refresh_token: impl Into<String>,
    ) -> Self {
        let mut provider = Self::new(api, refresh_token);
        provider.held.get_mut().0 = Some(access_token.into());
        provider
    }

    /// The refresh token held now (it changes at every refresh), for the application
    /// to store.
    pub async fn refresh_token(&self) -> String {
        self.held.lock().await.1.clone()
    }
}

#[async_trait]
impl TokenProvider for RefreshToken {
    async fn credential(&self, renew: bool) -> Result<Credential, TokenError> {
        let mut held = self.held.lock().await;
        if !renew && let Some(access) = held.0.as_ref().filter(|t| still_good(t)) {
            return Ok(Credential::Token(access.clone()));
        }
        let tokens = self.rest.refresh(&held.1).await.map_err(token_error)?;
        *held = (Some(tokens.access_token.clone()), tokens.refresh_token);
        Ok(Credential::Token(tokens.access_token))
    }

    fn renews(&self) -> bool {
        true
    }
}

/// Access tokens of a bot user, traded for its static token at `POST /bots/connect`.
pub struct BotToken {
    rest: RestClient,
    held: tokio::sync::Mutex<Option<String>>,
}

impl std::fmt::Debug for BotToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotToken")
            .field("api", &self.rest.base())
            .finish_non_exhaustive()
    }
}

impl BotToken {
    /// Trades `bot_token` at `{api}/bots/connect` (`api` is the REST base).
    pub fn new(api: &str, bot_token: impl Into<String>) -> Self {
        Self::with_client(&RestClient::new(api), &bot_token.into())
    }

    /// As [`BotToken::new`], trading through this REST client.
    pub fn with_client(rest: &RestClient, bot_token: &str) -> Self {
        Self {
            rest: rest.with_bot_token(bot_token),
            held: tokio::sync::Mutex::new(None),
        }
    }
}

#[async_trait]
impl TokenProvider for BotToken {
    async fn credential(&self, renew: bool) -> Result<Credential, TokenError> {
        let mut held = self.held.lock().await;
        if !renew && let Some(access) = held.as_ref().filter(|t| still_good(t)) {
            return Ok(Credential::Token(access.clone()));
        }
        let access = self.rest.bot_connect().await.map_err(token_error)?;
        *held = Some(access.access_token.clone());
        Ok(Credential::Token(access.access_token))
    }

    fn renews(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(exp: u64) -> String {
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!(r#"{{"sub":"x","exp":{exp}}}"#));
        format!("e30.{claims}.sig")
    }

    #[test]
    fn a_held_token_is_reused_only_well_before_its_expiry() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(still_good(&jwt(now + 600)));
        assert!(!still_good(&jwt(now + 30)));
        assert!(!still_good(&jwt(now - 1)));
        assert!(!still_good("not a jwt"));
    }

    #[test]
    fn credentials_never_show_their_secret() {
        let shown = format!("{:?}", Credential::Token("s3cret".into()));
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
