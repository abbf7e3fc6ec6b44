//! Instance administration, registration mode, admin-mediated password reset and
//! server templates (`rest-extras.md` §1–§4).

use serde::{Deserialize, Serialize};

use crate::{ServerId, Status, Timestamp, UserId};

/// Who may register (`rest-extras.md` §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RegistrationMode {
    /// Anyone may register.
    Open,
    /// Registration needs an invite code.
    InviteOnly,
    /// Nobody may register.
    Closed,
}

impl RegistrationMode {
    /// The wire name (`open`, `invite_only`, `closed`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::InviteOnly => "invite_only",
            Self::Closed => "closed",
        }
    }

    /// Parses a wire name; `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "open" => Some(Self::Open),
            "invite_only" => Some(Self::InviteOnly),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }
}

/// `GET /instance/registration-mode`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegistrationModeBody {
    /// The mode in force.
    pub registration_mode: RegistrationMode,
}

/// `POST /auth/forgot-password`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ForgotPasswordRequest {
    /// E-mail of the account to reset (exact, case-sensitive match).
    pub email: String,
}

/// The answer of `POST /auth/forgot-password`: the token to pass on out of band.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResetTokenIssued {
    /// `"Password reset token generated"`.
    pub message: String,
    /// 43-char unpadded base64url of 32 random bytes; single use.
    pub token: String,
    /// 3600.
    pub expires_in_seconds: i64,
    /// A fixed hint on how to use the token.
    pub note: String,
}

/// `POST /auth/reset-password`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResetPasswordRequest {
    /// The token from `POST /auth/forgot-password`.
    pub token: String,
    /// 8–128 characters, under the password policy.
    pub new_password: String,
}

/// The instance settings (a singleton row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstanceSettings {
    /// Always 1.
    pub id: i64,
    /// The registration mode in force.
    pub registration_mode: RegistrationMode,
    /// Last change.
    pub updated_at: Timestamp,
    /// Who made the last change.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub updated_by: Option<UserId>,
}

/// `PATCH /admin/settings` (strict).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateInstanceSettings {
    /// `open`, `invite_only` or `closed`.
    #[serde(default)]
    pub registration_mode: Option<String>,
}

/// `GET /admin/stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminStats {
    /// Users, bots included.
    pub total_users: i64,
    /// Servers.
    pub total_servers: i64,
    /// Server messages, deleted included (no DMs).
    pub total_messages: i64,
    /// Server channels.
    pub total_channels: i64,
    /// Live gateway sessions on this node.
    pub active_ws_connections: i64,
    /// Seconds since this node started.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub uptime_secs: Option<i64>,
    /// Round trip of one database ping, in milliseconds.
    pub db_latency_ms: i64,
    /// Bytes in the upload tree.
    pub storage_bytes: i64,
}

/// A user as the admin dashboard lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminUser {
    /// Id.
    pub id: UserId,
    /// Username.
    pub username: String,
    /// E-mail.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub email: Option<String>,
    /// Avatar.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub avatar_url: Option<String>,
    /// Chosen status.
    pub status: Status,
    /// Instance admin.
    pub is_admin: bool,
    /// Disabled: cannot log in, every token refused.
    pub disabled: bool,
    /// When it was disabled.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub disabled_at: Option<Timestamp>,
    /// Registration time.
    pub created_at: Timestamp,
    /// Servers the user belongs to.
    pub server_count: i64,
    /// Server messages written, deleted included.
    pub message_count: i64,
}

/// `GET /admin/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminUserPage {
    /// This page.
    pub users: Vec<AdminUser>,
    /// Users matching the search.
    pub total: i64,
    /// Page number (clamped).
    pub page: i64,
    /// Page size (clamped).
    pub per_page: i64,
}

/// `PATCH /admin/users/{user_id}` (strict).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateAdminUser {
    /// Grant or take the instance admin flag.
    #[serde(default)]
    pub is_admin: Option<bool>,
    /// Disable or enable the account.
    #[serde(default)]
    pub disabled: Option<bool>,
}

/// A server as the admin dashboard lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminServer {
    /// Id.
    pub id: ServerId,
    /// Name.
    pub name: String,
    /// Owner.
    pub owner_id: UserId,
    /// Owner's username.
    pub owner_username: String,
    /// Icon.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub icon_url: Option<String>,
    /// Listed publicly.
    pub is_public: bool,
    /// Members.
    pub member_count: i64,
    /// Channels.
    pub channel_count: i64,
    /// Messages, deleted included.
    pub message_count: i64,
    /// Creation time.
    pub created_at: Timestamp,
}

/// `GET /admin/servers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminServerPage {
    /// This page.
    pub servers: Vec<AdminServer>,
    /// Servers matching the search.
    pub total: i64,
    /// Page number (clamped).
    pub page: i64,
    /// Page size (clamped).
    pub per_page: i64,
}

/// What a server template is for (the client picks its icon by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum TemplateCategory {
    /// Gaming.
    Gaming,
    /// Community.
    Community,
    /// Study.
    Study,
    /// Anything else.
    Custom,
}

/// One channel a template creates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateChannel {
    /// Channel name.
    pub name: String,
    /// `text` or `voice`.
    #[serde(rename = "type")]
    pub kind: crate::ChannelType,
    /// Category label.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required))]
    pub category: Option<String>,
    /// Position, from 0.
    pub position: i64,
}

/// A server template (`GET /server-templates`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerTemplate {
    /// Id (random per install for the built-ins).
    pub id: uuid::Uuid,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Category.
    pub category: TemplateCategory,
    /// The channels a server made from it starts with.
    pub channels: Vec<TemplateChannel>,
    /// Shipped with Concord.
    pub is_builtin: bool,
    /// Creation time.
    pub created_at: Timestamp,
}

/// `?page=&per_page=&search=&sort_by=` of the admin lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct AdminListQuery {
    /// Page number from 1 (default 1; clamped to 1..1000000).
    #[serde(default)]
    pub page: Option<i64>,
    /// Page size (default 50; clamped to 1..100).
    #[serde(default)]
    pub per_page: Option<i64>,
    /// Case-insensitive literal substring (of the username or e-mail; of the server
    /// name).
    #[serde(default)]
    pub search: Option<String>,
    /// Users: `username` (A–Z) or `message_count` (most first); anything else, or
    /// absent: newest first. Ignored for servers.
    #[serde(default)]
    pub sort_by: Option<String>,
}
