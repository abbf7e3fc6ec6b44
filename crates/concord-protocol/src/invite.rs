//! Server invites (`rest.md` §6, §7.14) and the invite events (`gateway.md` §7).

use serde::{Deserialize, Serialize};

use crate::{InviteId, ServerId, Timestamp, UserId};

/// An invite to a server. Its `code` is what people share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Invite {
    /// Id.
    pub id: InviteId,
    /// The server it admits to.
    pub server_id: ServerId,
    /// 8 characters of `[A-Za-z0-9]`, case-sensitive.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 8, max_length = 8, pattern = "^[A-Za-z0-9]{8}$")
    )]
    pub code: String,
    /// Who created it (null once that account is deleted).
    #[cfg_attr(feature = "openapi", schema(required))]
    pub created_by: Option<UserId>,
    /// How many times it may be used; null is unlimited.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub max_uses: Option<i64>,
    /// How many times it was used.
    pub uses: i64,
    /// When it stops working; null is never.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub expires_at: Option<Timestamp>,
    /// Creation time.
    pub created_at: Timestamp,
}

impl Invite {
    /// Whether it has stopped working by `now`.
    pub fn expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|end| end <= now)
    }

    /// Whether every allowed use is spent.
    pub fn exhausted(&self) -> bool {
        self.max_uses.is_some_and(|max| self.uses >= max)
    }
}

/// `GET /invites/{code}`: what someone holding a code may learn before accepting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InvitePreview {
    /// The code.
    pub code: String,
    /// The server's name.
    pub server_name: String,
    /// The server's icon.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub server_icon_url: Option<String>,
    /// The server's member count.
    pub member_count: i64,
    /// When the invite stops working; null is never.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub expires_at: Option<Timestamp>,
}

/// `POST /servers/{id}/invites` (strict: unknown keys are refused).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateInvite {
    /// Greater than 0; absent or null is unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub max_uses: Option<i64>,
    /// 1–720; absent or null never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 720))]
    pub expires_in_hours: Option<i64>,
}

/// `POST /invites/{code}/accept`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InviteAccepted {
    /// Human-readable confirmation.
    pub message: String,
    /// The server joined.
    pub server_id: ServerId,
}

/// `INVITE_DELETE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteDelete {
    /// The invite's server.
    pub server_id: ServerId,
    /// The deleted invite.
    pub invite_id: InviteId,
}
