//! The entries of a server export (`rest-extras.md` §5.1): what `server.json`,
//! `channels.json`, `members.json` and `roles.json` hold, and the lines of the
//! `messages/*.jsonl` and `dm_messages/*.jsonl` files of the ZIP archive.
//!
//! Nullable fields are always present (`null`), as everywhere in the REST API.

use serde::{Deserialize, Serialize};

use crate::{
    ChannelId, ChannelType, DirectMessageId, MessageId, RoleId, ServerId, Timestamp, UserId,
};

/// `server.json`: the server, without `require_invite`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedServer {
    /// Id.
    pub id: ServerId,
    /// Name.
    pub name: String,
    /// Owner.
    pub owner_id: UserId,
    /// Icon URL.
    pub icon_url: Option<String>,
    /// Listed in browse.
    pub is_public: bool,
    /// Creation time.
    pub created_at: Timestamp,
}

/// One element of `channels.json` (by position).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedChannel {
    /// Id.
    pub id: ChannelId,
    /// Name.
    pub name: String,
    /// Text or voice. The key is `channel_type` here, not `type` as in a Channel.
    pub channel_type: ChannelType,
    /// Sort position.
    pub position: i64,
    /// Free-text group label.
    pub category: Option<String>,
    /// Topic.
    pub topic: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
}

/// One element of `members.json` (by `joined_at`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedMember {
    /// The user.
    pub user_id: UserId,
    /// Their name.
    pub username: String,
    /// Always null (no endpoint sets it).
    pub nickname: Option<String>,
    /// Join time.
    pub joined_at: Timestamp,
}

/// One element of `roles.json` (by position, lowest first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedRole {
    /// Id.
    pub id: RoleId,
    /// Name.
    pub name: String,
    /// Permission bits.
    pub permissions: i64,
    /// Colour.
    pub color: Option<String>,
    /// Position.
    pub position: i64,
}

/// One line of `messages/<channel-slug>-<channel_id>.jsonl`: a live message of a text
/// channel (thread replies included, unmarked), oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedMessage {
    /// Id.
    pub id: MessageId,
    /// Author (null once the account is deleted).
    pub author_id: Option<UserId>,
    /// The author's current name (null once the account is deleted).
    pub author_username: Option<String>,
    /// Text.
    pub content: String,
    /// The message replied to.
    pub reply_to: Option<MessageId>,
    /// Last edit.
    pub edited_at: Option<Timestamp>,
    /// Creation time.
    pub created_at: Timestamp,
}

/// One line of `dm_messages/<partner-slug>-<dm_id>.jsonl`, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedDirectMessage {
    /// Id.
    pub id: DirectMessageId,
    /// Author (null once the account is deleted).
    pub author_id: Option<UserId>,
    /// The author's current name (null once the account is deleted).
    pub author_username: Option<String>,
    /// Text.
    pub content: String,
    /// Creation time.
    pub created_at: Timestamp,
}
