//! Attachments and message search (`rest-extras.md` §1, §7, §8).

use serde::{Deserialize, Serialize};

use crate::{ChannelId, MessageId, Timestamp, UserId};

/// A file attached to a server-channel message (`GET /messages/{id}/attachments`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Attachment {
    /// Id.
    pub id: uuid::Uuid,
    /// The message it hangs off.
    pub message_id: MessageId,
    /// The file name the uploader gave, as given (never used on disk).
    pub filename: String,
    /// Size in bytes.
    pub file_size: i64,
    /// The type recognised from the bytes.
    pub mime_type: String,
    /// Where to fetch it, relative to the API root:
    /// `/files/{message_id}/{stored_name}?exp=…&uid=…&sig=…`, a link signed for the
    /// caller that works without an Authorization header for an hour.
    pub url: String,
    /// Always null.
    pub width: Option<i64>,
    /// Always null.
    pub height: Option<i64>,
    /// Upload time (one upload's files share it).
    pub created_at: Timestamp,
}

/// One message matching a search (`GET /servers/{id}/search`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchHit {
    /// The message.
    pub id: MessageId,
    /// Its channel.
    pub channel_id: ChannelId,
    /// Its author (null once deleted).
    pub author_id: Option<UserId>,
    /// The author's name (null once deleted).
    pub author_username: Option<String>,
    /// The message text.
    pub content: String,
    /// The text HTML-escaped, with the matched terms inside `<mark>`…`</mark>`.
    pub highlight: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Relevance (higher is better).
    pub rank: f64,
}

/// A page of search hits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchPage {
    /// The hits, best first.
    pub results: Vec<SearchHit>,
    /// How many messages match in all (the cursor aside).
    pub total: i64,
    /// Whether more hits follow.
    pub has_more: bool,
    /// The last hit's id when more follow: pass it as `before`.
    pub next_cursor: Option<MessageId>,
}
