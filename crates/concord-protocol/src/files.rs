//! Attachments (`rest-extras.md` §1, §8).

use serde::{Deserialize, Serialize};

use crate::{MessageId, Timestamp};

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
