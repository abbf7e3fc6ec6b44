//! Custom emojis of a server (`rest.md` §6, §7.16) and their events (`gateway.md` §7).

use serde::{Deserialize, Serialize};

use crate::{CustomEmojiId, ServerId, Timestamp, UserId};

/// A server's custom emoji (`GET /servers/{id}/emojis`, `CUSTOM_EMOJI_CREATE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CustomEmoji {
    /// Id.
    pub id: CustomEmojiId,
    /// The server it belongs to.
    pub server_id: ServerId,
    /// Who uploaded it.
    pub created_by: UserId,
    /// 1-32 characters of `[a-z0-9_-]`, unique in its server.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 32, pattern = "^[a-z0-9_-]{1,32}$")
    )]
    pub name: String,
    /// Where the image is served, relative to the API root: `/emojis/{id}`.
    pub url: String,
    /// The image's type, as sniffed from its bytes: `image/jpeg`, `image/png`,
    /// `image/gif` or `image/webp`.
    pub content_type: String,
    /// The image's size in bytes.
    pub file_size: i64,
    /// Upload time.
    pub created_at: Timestamp,
}

impl CustomEmoji {
    /// The `url` of the emoji `id`: `/emojis/{id}`.
    pub fn url_of(id: CustomEmojiId) -> String {
        format!("/emojis/{id}")
    }
}

/// `CUSTOM_EMOJI_DELETE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomEmojiDelete {
    /// The server.
    pub server_id: ServerId,
    /// The deleted emoji.
    pub emoji_id: CustomEmojiId,
}
