//! Direct messages (`rest.md` §7.11).

use serde::{Deserialize, Serialize};

use crate::{DirectMessageId, DmChannelId, Timestamp, User, UserId};

/// A DM channel from one participant's point of view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DmChannel {
    /// Id.
    pub id: DmChannelId,
    /// The other participant, recipient form.
    pub recipient: User,
    /// Creation time.
    pub created_at: Timestamp,
    /// Newest non-deleted message.
    pub last_message_at: Option<Timestamp>,
}

/// A direct message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectMessage {
    /// Id.
    pub id: DirectMessageId,
    /// Channel.
    pub channel_id: DmChannelId,
    /// Author.
    pub author_id: Option<UserId>,
    /// Text.
    pub content: String,
    /// Always null: DMs cannot be edited.
    pub edited_at: Option<Timestamp>,
    /// Creation time.
    pub created_at: Timestamp,
}

/// `POST /dm-channels`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenDm {
    /// The other participant.
    pub user_id: UserId,
}

/// `POST /dm-channels/{id}/messages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendDm {
    /// 1–4000 chars.
    pub content: String,
}
