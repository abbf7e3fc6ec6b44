//! Server-channel messages, polls and scheduled events (`rest.md` §6, §7.6).

use serde::{Deserialize, Serialize};

use crate::{ChannelId, EventId, MessageId, PollId, PollOptionId, Timestamp, UserId};

/// A message in a server channel: always these 17 keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Message {
    /// Id.
    pub id: MessageId,
    /// Channel.
    pub channel_id: ChannelId,
    /// Author (null once the account is deleted).
    #[cfg_attr(feature = "openapi", schema(required))]
    pub author_id: Option<UserId>,
    /// Text (empty for deleted messages when read one by one).
    pub content: String,
    /// The message this one replies to.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub reply_to: Option<MessageId>,
    /// Members mentioned by `@name`.
    pub mention_user_ids: Vec<UserId>,
    /// `@everyone` present.
    pub mention_everyone: bool,
    /// Thread root, on thread replies.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub thread_id: Option<MessageId>,
    /// Number of live thread replies.
    pub thread_reply_count: i64,
    /// Last edit.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub edited_at: Option<Timestamp>,
    /// Soft-deleted.
    pub deleted: bool,
    /// Creation time.
    pub created_at: Timestamp,
    /// Pinned.
    pub pinned: bool,
    /// Who pinned it.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub pinned_by: Option<UserId>,
    /// When it was pinned.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub pinned_at: Option<Timestamp>,
    /// Attached poll.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub poll: Option<Poll>,
    /// Attached scheduled event.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub event: Option<ServerEvent>,
}

/// A poll.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Poll {
    /// Id.
    pub id: PollId,
    /// Question.
    pub question: String,
    /// Options in creation order.
    pub options: Vec<PollOption>,
    /// Votes cast.
    pub total_votes: i64,
    /// The requesting user's choice.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub user_vote: Option<PollOptionId>,
}

/// One poll option.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PollOption {
    /// Id.
    pub id: PollOptionId,
    /// Text.
    pub text: String,
    /// Votes.
    pub votes: i64,
}

/// A scheduled event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerEvent {
    /// Id.
    pub id: EventId,
    /// Name.
    pub name: String,
    /// Description.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub description: Option<String>,
    /// Start time.
    pub starts_at: Timestamp,
    /// Creator.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub created_by: Option<UserId>,
    /// Creation time.
    pub created_at: Timestamp,
}

/// `POST /channels/{id}/messages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateMessage {
    /// 1–4000 chars.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 4000))]
    pub content: String,
    /// Message replied to.
    #[serde(default)]
    pub reply_to: Option<MessageId>,
}

/// `PATCH /messages/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EditMessage {
    /// 1–4000 chars.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 4000))]
    pub content: String,
}

/// `?before=&limit=` of message listings. `limit` is clamped to 1..=100.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct MessageQuery {
    /// Cursor: strictly older than this message.
    #[serde(default)]
    pub before: Option<uuid::Uuid>,
    /// Page size (default 50).
    #[serde(default)]
    pub limit: Option<i64>,
}

impl MessageQuery {
    /// The page size after clamping.
    pub fn clamped_limit(&self) -> i64 {
        self.limit.unwrap_or(50).clamp(1, 100)
    }
}
