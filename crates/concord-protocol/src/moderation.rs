//! Kicks, bans and timeouts (`rest.md` §6, §7.15) and their events (`gateway.md` §7).

use serde::{Deserialize, Serialize};

use crate::{ServerId, Timestamp, UserId};

/// A ban: the user may not join the server again until it is lifted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ban {
    /// The banned user.
    pub user_id: UserId,
    /// The server.
    pub server_id: ServerId,
    /// Who banned them (null once that account is deleted).
    #[cfg_attr(feature = "openapi", schema(required))]
    pub banned_by: Option<UserId>,
    /// Why.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub reason: Option<String>,
    /// When.
    pub created_at: Timestamp,
}

/// A timeout: the member may not post or type in the server until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Timeout {
    /// The member.
    pub user_id: UserId,
    /// The server.
    pub server_id: ServerId,
    /// When it ends.
    pub expires_at: Timestamp,
    /// Why.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub reason: Option<String>,
    /// Who set it (null once that account is deleted).
    #[cfg_attr(feature = "openapi", schema(required))]
    pub created_by: Option<UserId>,
    /// When it was set.
    pub created_at: Timestamp,
}

/// `POST /servers/{id}/members/{user_id}/timeout` (strict: unknown keys are refused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TimeoutMember {
    /// 1–40320 (28 days).
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 40320))]
    pub duration_minutes: i64,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The optional body of a kick or a ban. A missing body, or one that does not parse
/// as this (an unknown key included), means "no reason".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ModerationReason {
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `MEMBER_KICK` and `MEMBER_BAN`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRemoval {
    /// The server.
    pub server_id: ServerId,
    /// The kicked or banned user.
    pub user_id: UserId,
    /// Why.
    pub reason: Option<String>,
}

/// `MEMBER_TIMEOUT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberTimeout {
    /// The server.
    pub server_id: ServerId,
    /// The timed-out member.
    pub user_id: UserId,
    /// When it ends.
    pub expires_at: Timestamp,
    /// Why.
    pub reason: Option<String>,
}

/// `MEMBER_UNBAN` and `MEMBER_TIMEOUT_REMOVE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeratedMember {
    /// The server.
    pub server_id: ServerId,
    /// The user whose ban or timeout was lifted.
    pub user_id: UserId,
}
