//! Threads, reactions, pins, polls and scheduled events (`rest.md` §7.7–§7.10): request
//! bodies, the reaction summary, and the payloads of their gateway events
//! (`gateway.md` §7).

use serde::{Deserialize, Serialize};

use crate::{ChannelId, MessageId, Poll, PollId, PollOptionId, Timestamp, UserId};

/// `POST /channels/{channel_id}/messages/{message_id}/thread`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateThreadReply {
    /// 1–4000 chars.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 4000))]
    pub content: String,
}

/// `?before=&limit=` of a thread listing. Despite its name, `before` pages forward:
/// the replies after that reply. `limit` is clamped to 1..=100.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct ThreadQuery {
    /// Cursor: a reply of this thread; the page starts right after it.
    #[serde(default)]
    pub before: Option<uuid::Uuid>,
    /// Page size (default 50).
    #[serde(default)]
    pub limit: Option<i64>,
}

impl ThreadQuery {
    /// The page size after clamping.
    pub fn clamped_limit(&self) -> i64 {
        self.limit.unwrap_or(50).clamp(1, 100)
    }
}

/// One emoji of a message's reactions, as the requesting user sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReactionCount {
    /// The emoji (a Unicode emoji or a custom identifier).
    pub emoji: String,
    /// How many users reacted with it.
    pub count: i64,
    /// Whether the requesting user is one of them.
    pub me: bool,
}

/// `REACTION_ADD` and `REACTION_REMOVE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactionEvent {
    /// The message.
    pub message_id: MessageId,
    /// Its channel.
    pub channel_id: ChannelId,
    /// Who reacted (or took the reaction back).
    pub user_id: UserId,
    /// The emoji.
    pub emoji: String,
}

/// `MESSAGE_PIN`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagePin {
    /// The message.
    pub message_id: MessageId,
    /// Its channel.
    pub channel_id: ChannelId,
    /// Who pinned it.
    pub pinned_by: UserId,
}

/// `MESSAGE_UNPIN`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageUnpin {
    /// The message.
    pub message_id: MessageId,
    /// Its channel.
    pub channel_id: ChannelId,
    /// Who unpinned it.
    pub unpinned_by: UserId,
}

/// `POST /channels/{channel_id}/polls`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatePoll {
    /// Not blank, at most 500 bytes; stored as sent.
    pub question: String,
    /// 2–10 options, each not blank and at most 200 bytes; stored trimmed.
    pub options: Vec<String>,
}

/// `POST /polls/{poll_id}/vote`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CastVote {
    /// One of the poll's options.
    pub option_id: PollOptionId,
}

/// `POLL_VOTE`. Concord sends each recipient the poll with its own `user_vote`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PollVote {
    /// The poll.
    pub poll_id: PollId,
    /// The channel of its message.
    pub channel_id: ChannelId,
    /// The poll after the vote.
    pub updated_poll: Poll,
}

/// `POST /channels/{channel_id}/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateServerEvent {
    /// Not blank, at most 200 bytes; stored trimmed.
    pub name: String,
    /// At most 2000 characters.
    #[serde(default)]
    pub description: Option<String>,
    /// When it starts.
    pub starts_at: Timestamp,
}
