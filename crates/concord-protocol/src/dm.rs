//! Direct messages (`rest.md` §7.11).

use serde::{Deserialize, Serialize};

use crate::{DirectMessageId, DmChannelId, Timestamp, User, UserId};

/// A DM channel from one participant's point of view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DmChannel {
    /// Id.
    pub id: DmChannelId,
    /// The other participant, recipient form.
    pub recipient: User,
    /// Creation time.
    pub created_at: Timestamp,
    /// Newest non-deleted message.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub last_message_at: Option<Timestamp>,
}

/// A direct message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DirectMessage {
    /// Id.
    pub id: DirectMessageId,
    /// Channel.
    pub channel_id: DmChannelId,
    /// Author.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub author_id: Option<UserId>,
    /// Text.
    pub content: String,
    /// Always null: DMs cannot be edited.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub edited_at: Option<Timestamp>,
    /// Creation time.
    pub created_at: Timestamp,
}

/// `POST /dm-channels`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OpenDm {
    /// The other participant.
    pub user_id: UserId,
}

/// `POST /dm-channels/{id}/messages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SendDm {
    /// 1–4000 chars.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 4000))]
    pub content: String,
}
