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
