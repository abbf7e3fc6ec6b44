//! Servers, members, channels, roles and overrides (`rest.md` §6, §7.3, §7.4, §7.12, §7.13).

use serde::{Deserialize, Serialize};

use crate::{ChannelId, OverrideId, RoleId, ServerId, Status, Timestamp, UserId};

/// A server as READY lists it (no `member_count`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Server {
    /// Id.
    pub id: ServerId,
    /// Name.
    pub name: String,
    /// Owner.
    pub owner_id: UserId,
    /// Icon URL.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub icon_url: Option<String>,
    /// Listed in browse and joinable without an invite (unless `require_invite`).
    pub is_public: bool,
    /// Joining needs an invite.
    pub require_invite: bool,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last update.
    pub updated_at: Timestamp,
}

/// A server as REST returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerDto {
    /// The server.
    #[serde(flatten)]
    pub server: Server,
    /// Number of members.
    pub member_count: i64,
}

/// `POST /servers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateServer {
    /// 1–100 chars.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 100))]
    pub name: String,
    /// http(s) URL.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(pattern = "^https?://[^/\\s]\\S*$"))]
    pub icon_url: Option<String>,
    /// Default false.
    #[serde(default)]
    pub is_public: Option<bool>,
    /// Default false.
    #[serde(default)]
    pub require_invite: Option<bool>,
    /// Server template to copy channels from.
    #[serde(default)]
    pub template_id: Option<uuid::Uuid>,
}

/// `PATCH /servers/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateServer {
    /// 1–100 chars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 100))]
    pub name: Option<String>,
    /// http(s) URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = "^https?://[^/\\s]\\S*$"))]
    pub icon_url: Option<String>,
    /// Public flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_public: Option<bool>,
    /// Invite-only flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_invite: Option<bool>,
}

/// `POST /servers/{id}/join` and similar answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageBody {
    /// Human-readable confirmation.
    pub message: String,
}

/// A role as a member listing shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberRoleInfo {
    /// Role id.
    pub id: RoleId,
    /// Name.
    pub name: String,
    /// Colour.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub color: Option<String>,
    /// Position (higher ranks higher).
    pub position: i64,
}

/// A server member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    /// The user.
    pub user_id: UserId,
    /// Their name.
    pub username: String,
    /// Avatar.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub avatar_url: Option<String>,
    /// Effective presence.
    pub status: Status,
    /// Custom status.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub custom_status: Option<String>,
    /// Always null (no endpoint sets it).
    #[cfg_attr(feature = "openapi", schema(required))]
    pub nickname: Option<String>,
    /// Join time.
    pub joined_at: Timestamp,
    /// Roles, position DESC.
    pub roles: Vec<MemberRoleInfo>,
}

/// Channel kind; immutable after creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ChannelType {
    /// Text channel.
    Text,
    /// Voice channel.
    Voice,
}

impl ChannelType {
    /// Wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Voice => "voice",
        }
    }
}

/// A server channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Channel {
    /// Id.
    pub id: ChannelId,
    /// Its server.
    pub server_id: ServerId,
    /// Name.
    pub name: String,
    /// Text or voice.
    #[serde(rename = "type")]
    pub kind: ChannelType,
    /// Sort position.
    pub position: i64,
    /// Free-text group label.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub category: Option<String>,
    /// Topic.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub topic: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
}

/// `POST /servers/{id}/channels`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateChannel {
    /// 1–100 chars.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 100))]
    pub name: String,
    /// Text or voice.
    #[serde(rename = "type")]
    pub kind: ChannelType,
    /// ≤ 1024 chars.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 1024))]
    pub topic: Option<String>,
    /// ≤ 100 chars.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 100))]
    pub category: Option<String>,
}

/// `PATCH /servers/{id}/channels/{channel_id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateChannel {
    /// 1–100 chars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 100))]
    pub name: Option<String>,
    /// ≤ 1024 chars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 1024))]
    pub topic: Option<String>,
    /// ≤ 100 chars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 100))]
    pub category: Option<String>,
    /// ≥ 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub position: Option<i64>,
}

/// A role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Role {
    /// Id.
    pub id: RoleId,
    /// Its server.
    pub server_id: ServerId,
    /// Name.
    pub name: String,
    /// Permission bits (`rest.md` §5.1).
    pub permissions: i64,
    /// Colour.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub color: Option<String>,
    /// Position.
    pub position: i64,
    /// Creation time.
    pub created_at: Timestamp,
}

/// A channel permission override for one role or one user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChannelOverride {
    /// Id.
    pub id: OverrideId,
    /// Channel.
    pub channel_id: ChannelId,
    /// Role target (exactly one of role/user is set).
    #[cfg_attr(feature = "openapi", schema(required))]
    pub role_id: Option<RoleId>,
    /// User target.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub user_id: Option<UserId>,
    /// Bits allowed.
    pub allow: i64,
    /// Bits denied.
    pub deny: i64,
}
