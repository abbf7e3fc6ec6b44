//! Bots (`rest.md` §7.20).

use serde::{Deserialize, Serialize};

use crate::{BotId, Timestamp, UserId};

/// A bot registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Bot {
    /// Id.
    pub id: BotId,
    /// The bot's user account.
    pub user_id: UserId,
    /// Display name.
    pub name: String,
    /// Description.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub description: Option<String>,
    /// Creator.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub created_by: Option<UserId>,
    /// Revocation time.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub revoked_at: Option<Timestamp>,
    /// Creation time.
    pub created_at: Timestamp,
}

/// A bot with its plaintext token, shown once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BotCreated {
    /// The bot.
    pub bot: Bot,
    /// 64 lowercase hex chars.
    pub token: String,
}

/// `GET /bots`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BotList {
    /// The caller's bots, oldest first.
    pub bots: Vec<Bot>,
}

/// `POST /bots`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateBot {
    /// 1–64 chars with at least one alphanumeric.
    pub name: String,
    /// ≤ 512 chars.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 512))]
    pub description: Option<String>,
}

/// `PATCH /bots/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateBot {
    /// New name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 512))]
    pub description: Option<String>,
}

/// `POST /bots/connect`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BotConnect {
    /// 15-minute access JWT of the bot user.
    pub access_token: String,
}

/// What a [`BotLogEntry`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BotLogEvent {
    /// The bot was created.
    BotCreated,
    /// The bot posted a message in a server channel.
    MessageSent,
    /// The bot was revoked.
    BotRevoked,
}

/// One line of a bot's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BotLogEntry {
    /// When it happened.
    pub timestamp: Timestamp,
    /// What happened.
    pub event: BotLogEvent,
    /// A human-readable line about it.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub detail: Option<String>,
}

/// `GET /bots/{id}/logs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BotLogs {
    /// Newest first.
    pub logs: Vec<BotLogEntry>,
}
