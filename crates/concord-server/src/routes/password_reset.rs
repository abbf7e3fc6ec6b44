//! Routes: admin-mediated password reset (`rest-extras.md` §2). No mail server: an
//! instance admin mints a single-use token for an account and passes it on out of
//! band; whoever holds it sets a new password once within the hour. Both routes sit
//! behind the stricter auth rate limit (see `limiter.rs`).
//!
//! The token is consumed atomically (X15): marking it used, storing the new password
//! hash and ending every login of the user is one store transaction whose first
//! statement only matches an unused token, so of two concurrent uses exactly one
//! wins. The user's gateway sessions close once it has.

use axum::extract::State;
use base64::Engine;
use concord_protocol::{
    ErrorBody, ForgotPasswordRequest, MessageBody, ResetPasswordRequest, ResetTokenIssued,
    Timestamp,
};
use rand::RngCore;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    auth::{self, Principal},
    error::{ApiError, ApiResult},
    extract::Json,
    state::AppState,
};

/// How long a reset token lives.
const TOKEN_SECS: i64 = 3600;

/// The one answer for unknown, used and expired tokens.
const BAD_TOKEN: &str = "Invalid or expired reset token";

/// The password reset routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(forgot_password))
        .routes(routes!(reset_password))
}

/// A new reset token: 32 random bytes, unpadded base64url (43 chars).
fn new_token() -> String {
    let mut bytes = [0_u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[utoipa::path(
    post,
    path = "/auth/forgot-password",
    tag = "auth",
    description = "Mints a password reset token for the account with this e-mail (exact \
                   match), replacing any earlier one of that account. Single use, valid \
                   for one hour. Instance admins only; also limited by the stricter auth \
                   rate limit.",
    security(("bearer" = []), ("bot_token" = [])),
    request_body = ForgotPasswordRequest,
    responses(
        (status = 200, description = "The token, to pass on out of band.", body = ResetTokenIssued),
        (status = 400, description = "The e-mail address is not valid.", body = ErrorBody),
        (status = 401, description = "No valid credentials.", body = ErrorBody),
        (status = 403, description = "The caller is not an instance admin.", body = ErrorBody),
        (status = 404, description = "No account has this e-mail.", body = ErrorBody),
    ),
)]
async fn forgot_password(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<ForgotPasswordRequest>,
) -> ApiResult<axum::Json<ResetTokenIssued>> {
    if super::auth::validate_email(&body.email).is_err() {
        return Err(ApiError::bad_request(
            "email: must be a valid e-mail address",
        ));
    }
    super::admin::require_admin(&principal)?;
    let user = state
        .store
        .user_by_email(&body.email)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No user found with email: {}", body.email)))?;
    let token = new_token();
    let now = Timestamp::now();
    state
        .store
        .create_reset_token(
            user.id,
            &auth::sha256_hex(&token),
            now,
            now.add_micros(TOKEN_SECS * 1_000_000),
        )
        .await?;
    tracing::info!(user = %user.id, by = %principal.id(), "password reset token issued");
    Ok(axum::Json(ResetTokenIssued {
        message: "Password reset token generated".into(),
        token,
        expires_in_seconds: TOKEN_SECS,
        note: "Give this token to the user over a trusted channel. It works once and \
               expires in 1 hour."
            .into(),
    }))
}

#[utoipa::path(
    post,
    path = "/auth/reset-password",
    tag = "auth",
    description = "Sets a new password with a reset token. The token works once (of two \
                   concurrent uses exactly one succeeds); every login of the account ends \
                   and its gateway sessions close (4009 in v2, 1008 in v1). The new \
                   password must pass the same policy as at registration. Also limited by \
                   the stricter auth rate limit.",
    request_body = ResetPasswordRequest,
    responses(
        (status = 200, description = "The password is reset.", body = MessageBody),
        (status = 400, description = "The new password is not 8-128 characters or breaks \
                                      the password policy.", body = ErrorBody),
        (status = 401, description = "The token is unknown, expired or already used.", body = ErrorBody),
    ),
)]
async fn reset_password(
    State(state): State<AppState>,
    Json(body): Json<ResetPasswordRequest>,
) -> ApiResult<axum::Json<MessageBody>> {
    super::auth::check_chars("Password", &body.new_password, 8, 128)?;
    let hash = auth::sha256_hex(&body.token);
    let now = Timestamp::now();
    let user = state
        .store
        .reset_token_user(&hash, now)
        .await?
        .ok_or_else(|| ApiError::unauthorized(BAD_TOKEN))?;
    if let Some(why) = crate::password_policy::refusal(&body.new_password, &user.username) {
        return Err(ApiError::bad_request(why));
    }
    let password_hash = state.passwords.hash(body.new_password).await?;
    let Some(user_id) = state
        .store
        .consume_reset_token(&hash, Timestamp::now(), &password_hash)
        .await?
    else {
        // Used by a concurrent request (or expired) since the look-up.
        return Err(ApiError::unauthorized(BAD_TOKEN));
    };
    // The store ended every login; the sockets those logins opened close now.
    state.events.close_sessions(user_id);
    tracing::info!(user = %user_id, "password reset");
    Ok(axum::Json(MessageBody {
        message: "Password has been reset successfully".into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_43_url_safe_chars_and_differ() {
        let a = new_token();
        assert_eq!(a.len(), 43);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(a, new_token());
    }
}
