//! Routes: registration, login and refresh-token rotation (`rest.md` §2.3, §7.1), and
//! logout.
//!
//! Register, login and refresh are the only write routes that take no credentials, so
//! they sit behind the stricter auth rate limit (see `limiter.rs`); logout takes the
//! caller's credentials like any other route.

use axum::{extract::State, http::StatusCode};
use concord_protocol::{
    AuthResponse, ErrorBody, LoginRequest, LogoutRequest, RefreshRequest, RegisterRequest,
    RegistrationMode, Status, Timestamp, UserId, limits,
};
use concord_store::{NewUser, RefreshSession, UserRecord};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    auth::{self, Principal, TokenType},
    error::{ApiError, ApiResult},
    extract::{Json, OptionalJson},
    state::AppState,
    views,
};

/// Refresh sessions a user may hold; logging in once more drops the oldest.
const SESSIONS_KEPT: usize = 10;

/// One answer for "no such user" and "wrong password", so the response does not say
/// which usernames exist.
const BAD_CREDENTIALS: &str = "Invalid username or password";

/// The auth routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
}

#[utoipa::path(
    post,
    path = "/auth/register",
    tag = "auth",
    description = "Creates an account and opens a session. The first account to register \
                   administers the instance. Also limited by the stricter auth rate limit.",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered; both tokens and the account.", body = AuthResponse),
        (status = 400, description = "A field breaks a rule (username 2-32 word characters, \
                                      password 8-128 characters, email shape), or an invite \
                                      code is missing or invalid in invite-only mode.", body = ErrorBody),
        (status = 403, description = "Registration is closed.", body = ErrorBody),
        (status = 409, description = "The username or email is taken.", body = ErrorBody),
        (status = 500, description = "Hashing or the database failed.", body = ErrorBody),
        (status = 503, description = "Too many password hashes in progress \
                                      (`password.queue`); see `Retry-After`.", body = ErrorBody),
    ),
)]
async fn register(
    State(state): State<AppState>,
    Json(body): Json<RegisterRequest>,
) -> ApiResult<(StatusCode, axum::Json<AuthResponse>)> {
    validate_username(&body.username)?;
    if let Some(email) = body.email.as_deref() {
        validate_email(email)?;
    }
    check_chars("Password", &body.password, 8, 128)?;
    if let Some(why) = crate::password_policy::refusal(&body.password, &body.username) {
        return Err(ApiError::bad_request(why));
    }

    // The mode an instance admin chose, else the configured one.
    let invite_code = match super::admin::effective_registration_mode(&state).await? {
        RegistrationMode::Open => None,
        RegistrationMode::Closed => return Err(ApiError::forbidden("Registration is closed")),
        RegistrationMode::InviteOnly => {
            let code = body
                .invite_code
                .as_deref()
                .map(str::trim)
                .unwrap_or_default();
            if code.is_empty() {
                return Err(ApiError::bad_request(
                    "An invite code is required to register",
                ));
            }
            Some(code.to_owned())
        }
    };

    let password_hash = state.passwords.hash(body.password).await?;
    let now = Timestamp::now();
    let new_user = NewUser {
        id: UserId::new(),
        username: body.username,
        email: body.email,
        password_hash: Some(password_hash),
        // The status the user will show once connected; until a session is live
        // everyone (the user included) sees "offline".
        status: Status::Online,
        created_at: now,
        // No seed users ship with Concord: the first human to register administers the
        // instance (`rest.md` R1).
        admin_if_first: true,
        is_bot: false,
    };
    // In invite-only mode the code is checked and one use spent in the transaction
    // that creates the user: a refused code creates nobody, a taken name spends
    // nothing. The user joins no server (`rest.md` R14).
    let created = match &invite_code {
        None => state.store.create_user(&new_user).await,
        Some(code) => match state.store.create_user_with_invite(&new_user, code).await {
            Ok(Ok(user)) => Ok(user),
            Ok(Err(_)) => {
                return Err(ApiError::bad_request(
                    "Invalid, expired or exhausted invite code",
                ));
            }
            Err(err) => Err(err),
        },
    };
    let user = created.map_err(|err| match err {
        concord_store::StoreError::Conflict(what) if what.contains("email") => {
            ApiError::conflict("Email is already registered")
        }
        concord_store::StoreError::Conflict(_) => ApiError::conflict("Username is already taken"),
        other => ApiError::from(other),
    })?;
    let response = open_session(&state, &user, now).await?;
    Ok((StatusCode::CREATED, axum::Json(response)))
}

#[utoipa::path(
    post,
    path = "/auth/login",
    tag = "auth",
    description = "Opens a session with a username and password (bots cannot log in). \
                   Also limited by the stricter auth rate limit.",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in; both tokens and the account.", body = AuthResponse),
        (status = 400, description = "A field is empty or longer than 128 characters.", body = ErrorBody),
        (status = 401, description = "Unknown username or wrong password (one answer for both).", body = ErrorBody),
        (status = 403, description = "The account is disabled.", body = ErrorBody),
        (status = 429, description = "Too many login attempts for this username, from \
                                      any address (`limits.login_per_account`); see \
                                      `Retry-After`.", body = ErrorBody),
        (status = 500, description = "The database failed.", body = ErrorBody),
        (status = 503, description = "Too many password hashes in progress \
                                      (`password.queue`); see `Retry-After`.", body = ErrorBody),
    ),
)]
async fn login(
    State(state): State<AppState>,
    Json(body): Json<LoginRequest>,
) -> ApiResult<axum::Json<AuthResponse>> {
    check_chars("Username", &body.username, 1, 128)?;
    check_chars("Password", &body.password, 1, 128)?;
    state.limiters.check_login(&body.username)?;
    if let Some(cluster) = state.events.cluster() {
        cluster.signal(&crate::cluster::Signal::LoginAttempt {
            username: body.username.clone(),
        });
    }

    let found = state.store.user_by_username(&body.username).await?;
    // Bots have no password and can never log in.
    let Some((user, hash)) = found.and_then(|u| u.password_hash.clone().map(|h| (u, h))) else {
        // Spend the same argon2 work a real check would, so the response time does
        // not tell an attacker that the name is unknown.
        state.passwords.hash(body.password).await?;
        return Err(ApiError::unauthorized(BAD_CREDENTIALS));
    };
    if !state.passwords.verify(body.password, hash).await? {
        return Err(ApiError::unauthorized(BAD_CREDENTIALS));
    }
    // Only after a correct password, so probing cannot find disabled accounts.
    if user.disabled {
        return Err(ApiError::forbidden("This account has been disabled"));
    }
    // Unlike the reference, logging in does not overwrite the chosen status with
    // "online": away/dnd/invisible survive a new login (`gateway.md` D11).
    let response = open_session(&state, &user, Timestamp::now()).await?;
    Ok(axum::Json(response))
}

#[utoipa::path(
    post,
    path = "/auth/refresh",
    tag = "auth",
    description = "Trades a refresh token for a new pair; the old refresh token stops \
                   working (rotation). Presenting a replaced refresh token again ends the \
                   whole login: every token issued from it is refused from then on and its \
                   gateway sessions are closed (4009 in v2, 1008 in v1); only the token \
                   replaced in the last `refresh_reuse_grace_secs` (two tabs refreshing at \
                   once) gets a plain 401. Also limited by the stricter auth rate limit.",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "Rotated; both tokens and the account.", body = AuthResponse),
        (status = 400, description = "The token is empty or longer than 2048 characters.", body = ErrorBody),
        (status = 401, description = "The refresh token is invalid, expired, already used or revoked; \
                                      reuse of a replaced token also ends its login.", body = ErrorBody),
        (status = 403, description = "The account is disabled.", body = ErrorBody),
        (status = 500, description = "The database failed.", body = ErrorBody),
    ),
)]
async fn refresh(
    State(state): State<AppState>,
    Json(body): Json<RefreshRequest>,
) -> ApiResult<axum::Json<AuthResponse>> {
    check_chars("Refresh token", &body.refresh_token, 1, 2048)?;

    let (user_id, claims) = state
        .keys
        .verify(&body.refresh_token, TokenType::Refresh)
        .map_err(|_| ApiError::unauthorized("Invalid or expired refresh token"))?;
    let old_hash = auth::sha256_hex(&body.refresh_token);
    let now = Timestamp::now();
    // Unknown covers tokens already rotated away and sessions pruned or logged out.
    let Some(session) = state
        .store
        .refresh_session_by_hash(&old_hash)
        .await?
        .filter(|s| s.expires_at > now && s.user_id == user_id)
    else {
        if let Some(family) = claims.sid {
            reused(&state, family, user_id, &old_hash, now).await?;
        }
        return Err(ApiError::unauthorized("Session expired or revoked"));
    };
    let user = state
        .store
        .user(session.user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("Account unavailable"))?;
    if user.disabled {
        return Err(ApiError::forbidden("This account has been disabled"));
    }

    let family = Some(session.id);
    let refresh_token = state.keys.issue(&user, TokenType::Refresh, now, family);
    // Compare-and-set: of two concurrent refreshes with the same token only one wins,
    // and the loser's token is the one just replaced, inside the grace window.
    // The session keeps its original expiry, so a session lives at most 7 days.
    let rotated = state
        .store
        .rotate_refresh_session(
            session.id,
            &old_hash,
            &auth::sha256_hex(&refresh_token),
            now,
        )
        .await?;
    if !rotated {
        return Err(ApiError::unauthorized("Session expired or revoked"));
    }
    Ok(axum::Json(AuthResponse {
        access_token: state.keys.issue(&user, TokenType::Access, now, family),
        refresh_token,
        user: views::self_user(&state, &user),
    }))
}

#[utoipa::path(
    post,
    path = "/auth/logout",
    tag = "auth",
    description = "Ends logins of the caller: the one whose refresh token is given, or, \
                   without a body (or without a token in it), all of them. Every token \
                   issued by an ended login, access tokens included, stops working at \
                   once, and the gateway sessions it opened are closed (4009 in v2, 1008 \
                   in v1); without a body every gateway session of the caller is.",
    security(("bearer" = []), ("bot_token" = [])),
    request_body(
        content = Option<LogoutRequest>,
        description = "Optional; an empty body ends every session of the caller."
    ),
    responses(
        (status = 204, description = "Logged out (also when the given session had already \
                                      ended)."),
        (status = 400, description = "The token is empty or longer than 2048 characters.", body = ErrorBody),
        (status = 403, description = "The refresh token belongs to another account.", body = ErrorBody),
    ),
)]
async fn logout(
    State(state): State<AppState>,
    principal: Principal,
    OptionalJson(body): OptionalJson<LogoutRequest>,
) -> ApiResult<StatusCode> {
    let Some(token) = body.and_then(|b| b.refresh_token) else {
        state.store.delete_refresh_sessions(principal.id()).await?;
        state.events.close_sessions(principal.id());
        return Ok(StatusCode::NO_CONTENT);
    };
    check_chars("Refresh token", &token, 1, 2048)?;
    let hash = auth::sha256_hex(&token);
    if let Some(family) = state
        .store
        .delete_refresh_session(principal.id(), &hash)
        .await?
    {
        state.events.close_family(family);
        return Ok(StatusCode::NO_CONTENT);
    }
    // Not one of the caller's live sessions: already ended (idempotent), or someone
    // else's, which the caller may not end.
    match state.store.refresh_session_by_hash(&hash).await? {
        Some(other) if other.user_id != principal.id() => Err(ApiError::forbidden(
            "That refresh token belongs to another account",
        )),
        _ => Ok(StatusCode::NO_CONTENT),
    }
}

/// A refresh token of login `family` that is no longer current was presented. The
/// token the last rotation replaced, within `refresh_reuse_grace_secs` of it, is the
/// loser of two tabs refreshing at once: a plain 401. Any other is a replayed token,
/// a sign that it was stolen (rest.md §2.3): the login ends, so the thief's tokens and
/// the victim's alike stop working, and its gateway sessions close on every node.
async fn reused(
    state: &AppState,
    family: uuid::Uuid,
    user: UserId,
    hash: &str,
    now: Timestamp,
) -> ApiResult<()> {
    let Some(session) = state.store.refresh_session(family).await? else {
        // Already ended (logged out, pruned, or an earlier reuse): nothing to end.
        return Ok(());
    };
    if session.user_id != user {
        return Ok(());
    }
    let grace = i64::try_from(state.config.refresh_reuse_grace_secs)
        .unwrap_or(i64::MAX / 2_000_000)
        .saturating_mul(1_000_000);
    let benign = session.previous_hash.as_deref() == Some(hash)
        && session
            .rotated_at
            .is_some_and(|at| now.as_micros().saturating_sub(at.as_micros()) <= grace);
    if benign {
        return Ok(());
    }
    if state.store.revoke_refresh_session(family).await? {
        tracing::warn!(user = %user, login = %family, "refresh token reused: login ended");
        state.metrics.refresh_reuse();
    }
    state.events.close_family(family);
    Ok(())
}

/// Issues both tokens and stores a new refresh session for them.
async fn open_session(
    state: &AppState,
    user: &UserRecord,
    now: Timestamp,
) -> ApiResult<AuthResponse> {
    let id = uuid::Uuid::new_v4();
    let access_token = state.keys.issue(user, TokenType::Access, now, Some(id));
    let refresh_token = state.keys.issue(user, TokenType::Refresh, now, Some(id));
    let session = RefreshSession {
        id,
        user_id: user.id,
        token_hash: auth::sha256_hex(&refresh_token),
        created_at: now,
        expires_at: now.add_micros(limits::REFRESH_TOKEN_SECS * 1_000_000),
        previous_hash: None,
        rotated_at: None,
    };
    state
        .store
        .create_refresh_session(&session, now, SESSIONS_KEPT)
        .await?;
    Ok(AuthResponse {
        access_token,
        refresh_token,
        user: views::self_user(state, user),
    })
}

fn validate_username(username: &str) -> ApiResult<()> {
    check_chars("Username", username, 2, 32)?;
    if !username
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(ApiError::bad_request(
            "Username may contain only letters, digits and underscores",
        ));
    }
    Ok(())
}

/// A structural check only (one `@`, something before it, a dotted domain after it);
/// whether the address exists is not our business.
pub(crate) fn validate_email(email: &str) -> ApiResult<()> {
    let valid = email.chars().count() <= 254
        && !email.chars().any(char::is_whitespace)
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        };
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request("Email address is not valid"))
    }
}

/// Length in characters (not bytes), inclusive bounds.
pub(crate) fn check_chars(field: &str, value: &str, min: usize, max: usize) -> ApiResult<()> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(ApiError::bad_request(format!(
            "{field} must be {min}-{max} characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_two_to_thirty_two_word_characters() {
        assert!(validate_username("ab").is_ok());
        assert!(validate_username("A_9").is_ok());
        assert!(validate_username(&"x".repeat(32)).is_ok());
        assert!(validate_username("a").is_err());
        assert!(validate_username(&"x".repeat(33)).is_err());
        assert!(validate_username("bad-name").is_err());
        assert!(validate_username("héllo").is_err());
    }

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        assert!(validate_email("a@b.co").is_ok());
        for bad in [
            "", "plain", "@b.co", "a@b", "a@@b.co", "a@b@c.co", "a b@c.co", "a@.co", "a@b.",
        ] {
            assert!(validate_email(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        assert!(check_chars("x", "ééééééé", 1, 7).is_ok());
        assert!(check_chars("x", "", 1, 7).is_err());
        assert_eq!(
            check_chars("Bio", "12345678", 1, 7).unwrap_err().message(),
            "Bio must be 1-7 characters"
        );
    }
}
