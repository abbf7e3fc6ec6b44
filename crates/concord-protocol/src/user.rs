//! Users, profiles and authentication bodies (`rest.md` §6, §7.1, §7.2).

use serde::{Deserialize, Serialize};

use crate::{Timestamp, UserId};

/// A presence status. `Offline` chosen by a user means "invisible".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Connected and available.
    #[default]
    Online,
    /// Away.
    Away,
    /// Do not disturb.
    Dnd,
    /// Disconnected, or invisible.
    Offline,
}

impl Status {
    /// The wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Away => "away",
            Self::Dnd => "dnd",
            Self::Offline => "offline",
        }
    }

    /// Parses the wire spelling; anything else is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "online" => Some(Self::Online),
            "away" => Some(Self::Away),
            "dnd" => Some(Self::Dnd),
            "offline" => Some(Self::Offline),
            _ => None,
        }
    }
}

/// A user as they see themselves (`@me`, auth responses, READY), or in recipient form
/// inside a DM channel (`email` null, `activity` null, `is_admin` false).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Unique, case-sensitive name.
    pub username: String,
    /// Email, if given at registration (null in recipient form).
    #[cfg_attr(feature = "openapi", schema(required))]
    pub email: Option<String>,
    /// Avatar URL.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub avatar_url: Option<String>,
    /// Free-text biography.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub bio: Option<String>,
    /// Pronouns.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub pronouns: Option<String>,
    /// Effective presence status.
    pub status: Status,
    /// Custom status text.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub custom_status: Option<String>,
    /// Activity text (null in recipient form).
    #[cfg_attr(feature = "openapi", schema(required))]
    pub activity: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Instance administrator (false in recipient form).
    pub is_admin: bool,
}

/// What any user may see of another (`GET /users/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicProfile {
    /// Id.
    pub id: UserId,
    /// Name.
    pub username: String,
    /// Avatar URL.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub avatar_url: Option<String>,
    /// Effective presence status.
    pub status: Status,
    /// Custom status text.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub custom_status: Option<String>,
    /// Activity text.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub activity: Option<String>,
    /// Biography.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub bio: Option<String>,
    /// Pronouns.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub pronouns: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
}

/// `PATCH /users/@me`: every field optional; `null` and absent both leave it unchanged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateMe {
    /// New avatar URL (`http://` or `https://`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 2048, pattern = "^https?://[\\s\\S]")
    )]
    pub avatar_url: Option<String>,
    /// New biography (≤ 500 chars).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 500))]
    pub bio: Option<String>,
    /// New pronouns (≤ 40 chars).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 40))]
    pub pronouns: Option<String>,
    /// New chosen status (one of the four).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Status>))]
    pub status: Option<String>,
    /// New custom status (≤ 128 chars).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 128))]
    pub custom_status: Option<String>,
    /// New activity (≤ 128 chars).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 128))]
    pub activity: Option<String>,
}

/// `POST /auth/register`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterRequest {
    /// 2–32 chars of `[A-Za-z0-9_]`.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 2, max_length = 32, pattern = "^[A-Za-z0-9_]+$")
    )]
    pub username: String,
    /// Optional email.
    #[serde(default)]
    pub email: Option<String>,
    /// 8–128 chars.
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 128))]
    pub password: String,
    /// Needed when registration is invite-only.
    #[serde(default)]
    pub invite_code: Option<String>,
}

/// `POST /auth/login`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginRequest {
    /// Exact username.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 128))]
    pub username: String,
    /// Password.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 128))]
    pub password: String,
}

/// `POST /auth/refresh`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefreshRequest {
    /// The refresh token from the last auth response.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 2048))]
    pub refresh_token: String,
}

/// `POST /auth/logout`'s optional body. With a refresh token, that one session ends
/// (it must be the caller's); without a body, every session of the caller ends.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogoutRequest {
    /// The refresh token of the session to end; absent or null ends them all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 2048))]
    pub refresh_token: Option<String>,
}

/// Register, login and refresh answer with this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthResponse {
    /// 15-minute access JWT.
    pub access_token: String,
    /// Single-use refresh JWT.
    pub refresh_token: String,
    /// The account.
    pub user: User,
}
