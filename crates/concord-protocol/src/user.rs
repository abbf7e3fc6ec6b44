//! Users, profiles and authentication bodies (`rest.md` §6, §7.1, §7.2).

use serde::{Deserialize, Serialize};

use crate::{Timestamp, UserId};

/// A presence status. `Offline` chosen by a user means "invisible".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
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
pub struct User {
    /// Id.
    pub id: UserId,
    /// Unique, case-sensitive name.
    pub username: String,
    /// Email, if given at registration (null in recipient form).
    pub email: Option<String>,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// Free-text biography.
    pub bio: Option<String>,
    /// Pronouns.
    pub pronouns: Option<String>,
    /// Effective presence status.
    pub status: Status,
    /// Custom status text.
    pub custom_status: Option<String>,
    /// Activity text (null in recipient form).
    pub activity: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Instance administrator (false in recipient form).
    pub is_admin: bool,
}

/// What any user may see of another (`GET /users/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublicProfile {
    /// Id.
    pub id: UserId,
    /// Name.
    pub username: String,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// Effective presence status.
    pub status: Status,
    /// Custom status text.
    pub custom_status: Option<String>,
    /// Activity text.
    pub activity: Option<String>,
    /// Biography.
    pub bio: Option<String>,
    /// Pronouns.
    pub pronouns: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
}

/// `PATCH /users/@me`: every field optional; `null` and absent both leave it unchanged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateMe {
    /// New avatar URL (`http://` or `https://`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    /// New biography (≤ 500 chars).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bio: Option<String>,
    /// New pronouns (≤ 40 chars).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pronouns: Option<String>,
    /// New chosen status (one of the four).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// New custom status (≤ 128 chars).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_status: Option<String>,
    /// New activity (≤ 128 chars).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity: Option<String>,
}

/// `POST /auth/register`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterRequest {
    /// 2–32 chars of `[A-Za-z0-9_]`.
    pub username: String,
    /// Optional email.
    #[serde(default)]
    pub email: Option<String>,
    /// 8–128 chars.
    pub password: String,
    /// Needed when registration is invite-only.
    #[serde(default)]
    pub invite_code: Option<String>,
}

/// `POST /auth/login`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginRequest {
    /// Exact username.
    pub username: String,
    /// Password.
    pub password: String,
}

/// `POST /auth/refresh`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefreshRequest {
    /// The refresh token from the last auth response.
    pub refresh_token: String,
}

/// Register, login and refresh answer with this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthResponse {
    /// 15-minute access JWT.
    pub access_token: String,
    /// Single-use refresh JWT.
    pub refresh_token: String,
    /// The account.
    pub user: User,
}
