//! Credentials: JWTs (HS256, pinned), bot tokens (argon2id passwords: `passwords`), and the
//! [`Principal`] extractor that every authenticated route takes.

use axum::{extract::FromRequestParts, http::request::Parts};
use concord_protocol::{BotId, Timestamp, UserId, limits};
use concord_store::{BotRecord, UserRecord};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{error::ApiError, state::AppState};

/// Access or refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    /// 15-minute access token.
    Access,
    /// 7-day single-use refresh token.
    Refresh,
}

/// JWT claims: the reference's, plus a unique `jti` and the bot flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Username at issue time.
    pub username: String,
    /// Kind of token.
    pub token_type: TokenType,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// Unique id: two tokens are never byte-identical.
    pub jti: String,
    /// Set on tokens of bot users (`/bots/connect`), so bot identity survives.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bot: bool,
    /// The login the token belongs to: the id of the refresh session that issued it,
    /// kept through every rotation. Ending that session (logout, refresh-token reuse)
    /// ends every token that carries it. Absent on bot tokens and on tokens issued
    /// before this claim existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<uuid::Uuid>,
}

/// Signing and verification keys, HS256 only.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Clock skew tolerated on `exp` and `iat`, in seconds.
    leeway: i64,
}

/// The clock skew tolerated by default, in seconds.
pub const DEFAULT_LEEWAY_SECS: u64 = 30;

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys(<redacted>)")
    }
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Bad signature, malformed, expired, wrong algorithm.
    #[error("invalid token")]
    Invalid(#[source] jsonwebtoken::errors::Error),
    /// Right signature, wrong kind.
    #[error("wrong token type")]
    WrongType,
    /// Right signature, but a lifetime longer than this kind of token is ever issued
    /// for, or issued in the future: not a token this server made as it is
    /// configured now.
    #[error("token lifetime out of bounds")]
    Lifetime,
    /// `sub` is not a UUID.
    #[error("bad subject")]
    BadSubject,
}

impl TokenKeys {
    /// Keys from the server secret, with the default clock leeway.
    pub fn new(secret: &[u8]) -> Self {
        Self::with_leeway(secret, DEFAULT_LEEWAY_SECS)
    }

    /// Keys from the server secret, tolerating `leeway_secs` of clock skew.
    pub fn with_leeway(secret: &[u8], leeway_secs: u64) -> Self {
        // Pinned: a token signed with any other algorithm (or `none`) is refused.
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.leeway = leeway_secs;
        validation.required_spec_claims = ["exp", "sub"].iter().map(|s| (*s).to_string()).collect();
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            leeway: i64::try_from(leeway_secs).unwrap_or(i64::MAX),
        }
    }

    /// How long a token of this kind is issued for, in seconds.
    const fn lifetime(token_type: TokenType) -> i64 {
        match token_type {
            TokenType::Access => limits::ACCESS_TOKEN_SECS,
            TokenType::Refresh => limits::REFRESH_TOKEN_SECS,
        }
    }

    /// Issues a token for `user`, as part of login `sid` when given.
    ///
    /// # Panics
    /// Never in practice: HS256 signing of plain claims cannot fail.
    pub fn issue(
        &self,
        user: &UserRecord,
        token_type: TokenType,
        now: Timestamp,
        sid: Option<uuid::Uuid>,
    ) -> String {
        let lifetime = Self::lifetime(token_type);
        let claims = Claims {
            sub: user.id.to_string(),
            username: user.username.clone(),
            token_type,
            iat: now.as_secs(),
            exp: now.as_secs() + lifetime,
            jti: uuid::Uuid::new_v4().to_string(),
            bot: user.is_bot,
            sid,
        };
        jsonwebtoken::encode(
            &Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &self.encoding,
        )
        .expect("HS256 encoding of plain claims")
    }

    /// Verifies signature, algorithm, expiry, kind and lifetime: a token whose `exp`
    /// lies further after its `iat` than this kind is issued for (one made with a
    /// leaked secret to last for years, say), or whose `iat` lies in the future, is
    /// refused, with the configured leeway for clock skew.
    ///
    /// # Errors
    /// See [`TokenError`].
    pub fn verify(&self, token: &str, expected: TokenType) -> Result<(UserId, Claims), TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(TokenError::Invalid)?;
        if data.claims.token_type != expected {
            return Err(TokenError::WrongType);
        }
        let Claims { iat, exp, .. } = data.claims;
        let now = Timestamp::now().as_secs();
        if exp.saturating_sub(iat) > Self::lifetime(expected)
            || iat > now.saturating_add(self.leeway)
        {
            return Err(TokenError::Lifetime);
        }
        let user = data
            .claims
            .sub
            .parse::<UserId>()
            .map_err(|_| TokenError::BadSubject)?;
        Ok((user, data.claims))
    }
}

/// SHA-256 hex, for refresh and bot tokens at rest.
pub fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new bot token: 64 lowercase hex chars.
pub fn new_bot_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The authenticated caller of a REST route.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user (a bot's user for bots).
    pub user: UserRecord,
    /// Set when the caller is a bot (by `Bot` token or a bot's JWT).
    pub bot: Option<BotId>,
    /// When the credential expires (Unix seconds): a JWT's `exp`; `None` for bot
    /// tokens, which live until revoked.
    pub expires_at: Option<i64>,
    /// The login (refresh session) the access token belongs to, when it names one.
    pub family: Option<uuid::Uuid>,
}

impl Principal {
    /// The caller's id.
    pub fn id(&self) -> UserId {
        self.user.id
    }

    /// Refuses bot callers (bot management needs a human).
    ///
    /// # Errors
    /// 403 for bots.
    pub fn human(&self) -> Result<(), ApiError> {
        if self.bot.is_some() || self.user.is_bot {
            Err(ApiError::forbidden("Bots cannot do this"))
        } else {
            Ok(())
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::unauthorized("Missing authorization"))?;
        if let Some(token) = header.strip_prefix("Bearer ") {
            authenticate_jwt(state, token).await
        } else if let Some(token) = header.strip_prefix("Bot ") {
            let principal = authenticate_bot(state, token).await?;
            state.limiters.check_bot(principal.id())?;
            Ok(principal)
        } else {
            Err(ApiError::unauthorized("Unsupported authorization scheme"))
        }
    }
}

/// Validates an access JWT, the login it belongs to (not logged out, not ended by a
/// refresh-token reuse, not expired) and the user behind it (exists, not disabled).
///
/// # Errors
/// 401 for every failure.
pub async fn authenticate_jwt(state: &AppState, token: &str) -> Result<Principal, ApiError> {
    let (user_id, claims) = state
        .keys
        .verify(token, TokenType::Access)
        .map_err(|_| ApiError::unauthorized("Invalid or expired token"))?;
    if let Some(family) = claims.sid {
        let now = Timestamp::now();
        let live = state
            .store
            .refresh_session(family)
            .await?
            .is_some_and(|s| s.user_id == user_id && s.expires_at > now);
        if !live {
            return Err(ApiError::unauthorized("This login has ended"));
        }
    }
    let user = live_user(state, user_id).await?;
    let bot = if claims.bot || user.is_bot {
        let record = state.store.bot_by_user(user.id).await?;
        match record {
            Some(BotRecord { bot, .. }) if bot.revoked_at.is_none() => Some(bot.id),
            _ => return Err(ApiError::unauthorized("Bot revoked")),
        }
    } else {
        None
    };
    Ok(Principal {
        user,
        bot,
        expires_at: Some(claims.exp),
        family: claims.sid,
    })
}

/// Validates a static bot token.
///
/// # Errors
/// 401 for unknown or revoked tokens and missing users.
pub async fn authenticate_bot(state: &AppState, token: &str) -> Result<Principal, ApiError> {
    let (record, user) = state
        .store
        .bot_and_user_by_token_hash(&sha256_hex(token))
        .await?
        .filter(|(r, _)| r.bot.revoked_at.is_none())
        .ok_or_else(|| ApiError::unauthorized("Invalid bot token"))?;
    Ok(Principal {
        user: usable(user)?,
        bot: Some(record.bot.id),
        expires_at: None,
        family: None,
    })
}

async fn live_user(state: &AppState, id: UserId) -> Result<UserRecord, ApiError> {
    state
        .store
        .user(id)
        .await?
        .ok_or_else(unavailable)
        .and_then(usable)
}

/// The user, unless the account is disabled.
fn usable(user: UserRecord) -> Result<UserRecord, ApiError> {
    if user.disabled {
        return Err(unavailable());
    }
    Ok(user)
}

fn unavailable() -> ApiError {
    ApiError::unauthorized("Account unavailable")
}

#[cfg(test)]
mod tests {
    use concord_protocol::Status;

    use super::*;

    fn user() -> UserRecord {
        UserRecord {
            id: UserId::new(),
            username: "alice".into(),
            email: None,
            password_hash: None,
            avatar_url: None,
            bio: None,
            pronouns: None,
            status: Status::Online,
            custom_status: None,
            activity: None,
            created_at: Timestamp::now(),
            is_admin: false,
            is_bot: false,
            disabled: false,
        }
    }

    #[test]
    fn tokens_round_trip_and_types_are_enforced() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef");
        let alice = user();
        let access = keys.issue(&alice, TokenType::Access, Timestamp::now(), None);
        let refresh = keys.issue(&alice, TokenType::Refresh, Timestamp::now(), None);
        assert_ne!(
            access,
            keys.issue(&alice, TokenType::Access, Timestamp::now(), None),
            "jti differs"
        );
        assert_eq!(keys.verify(&access, TokenType::Access).unwrap().0, alice.id);
        assert!(matches!(
            keys.verify(&refresh, TokenType::Access),
            Err(TokenError::WrongType)
        ));
        let other = TokenKeys::new(b"another-secret-another-secret-xx");
        assert!(other.verify(&access, TokenType::Access).is_err());
    }

    #[test]
    fn expired_tokens_are_refused_after_the_leeway() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef");
        let long_ago = Timestamp::from_micros((Timestamp::now().as_secs() - 3600) * 1_000_000);
        let token = keys.issue(&user(), TokenType::Access, long_ago, None);
        assert!(keys.verify(&token, TokenType::Access).is_err());
    }

    /// Claims signed with the right key and algorithm, as `iat`/`exp` say.
    fn forged(keys_secret: &[u8], token_type: TokenType, iat: i64, exp: i64) -> String {
        let claims = Claims {
            sub: user().id.to_string(),
            username: "alice".into(),
            token_type,
            iat,
            exp,
            jti: "forged".into(),
            sid: None,
            bot: false,
        };
        jsonwebtoken::encode(
            &Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(keys_secret),
        )
        .unwrap()
    }

    #[test]
    fn tokens_outliving_their_kind_or_from_the_future_are_refused() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let keys = TokenKeys::with_leeway(secret, 5);
        let now = Timestamp::now().as_secs();
        let access = limits::ACCESS_TOKEN_SECS;
        let refresh = limits::REFRESH_TOKEN_SECS;
        // Positive controls: the longest lifetime each kind is issued for passes.
        let ok = forged(secret, TokenType::Access, now, now + access);
        assert!(keys.verify(&ok, TokenType::Access).is_ok());
        let ok = forged(secret, TokenType::Refresh, now, now + refresh);
        assert!(keys.verify(&ok, TokenType::Refresh).is_ok());
        // A second longer, or a century, is not a token this server issues.
        for (kind, exp) in [
            (TokenType::Access, now + access + 1),
            (TokenType::Access, now + 100 * 365 * 86_400),
            (TokenType::Refresh, now + refresh + 1),
        ] {
            let token = forged(secret, kind, now, exp);
            assert!(
                matches!(keys.verify(&token, kind), Err(TokenError::Lifetime)),
                "{kind:?} until {exp}"
            );
        }
        // Issued in the future: within the leeway it passes, beyond it not.
        let soon = forged(secret, TokenType::Access, now + 3, now + 60);
        assert!(keys.verify(&soon, TokenType::Access).is_ok());
        let later = forged(secret, TokenType::Access, now + 60, now + 120);
        assert!(matches!(
            keys.verify(&later, TokenType::Access),
            Err(TokenError::Lifetime)
        ));
    }

    #[test]
    fn the_leeway_is_the_configured_one() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let now = Timestamp::now().as_secs();
        // Expired 20 s ago: inside a 30 s leeway, outside a 5 s one.
        let token = forged(secret, TokenType::Access, now - 600, now - 20);
        assert!(
            TokenKeys::with_leeway(secret, 30)
                .verify(&token, TokenType::Access)
                .is_ok()
        );
        assert!(
            TokenKeys::with_leeway(secret, 5)
                .verify(&token, TokenType::Access)
                .is_err()
        );
    }

    #[test]
    fn other_algorithms_are_refused() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef");
        let alice = user();
        let claims = Claims {
            sub: alice.id.to_string(),
            username: "alice".into(),
            token_type: TokenType::Access,
            iat: Timestamp::now().as_secs(),
            exp: Timestamp::now().as_secs() + 600,
            jti: "x".into(),
            sid: None,
            bot: false,
        };
        let hs512 = jsonwebtoken::encode(
            &Header::new(jsonwebtoken::Algorithm::HS512),
            &claims,
            &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
        )
        .unwrap();
        assert!(keys.verify(&hs512, TokenType::Access).is_err());
    }

    #[test]
    fn bot_tokens_are_64_hex() {
        let token = new_bot_token();
        assert_eq!(token.len(), 64);
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(sha256_hex(&token).len(), 64);
    }
}
