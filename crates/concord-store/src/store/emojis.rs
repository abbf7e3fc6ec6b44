//! Custom emojis: the [`EmojiStore`] part of the [`Store`](super::Store) port.

use crate::{CustomEmojiRecord, EmojiCreation};
use async_trait::async_trait;
use concord_protocol::{CustomEmojiId, ServerId};

use super::StoreResult;

/// Custom emojis.
#[async_trait]
pub trait EmojiStore: Send + Sync {
    /// A server's custom emojis, oldest first by (created_at, id).
    async fn custom_emojis(&self, server: ServerId) -> StoreResult<Vec<CustomEmojiRecord>>;

    /// One custom emoji.
    async fn custom_emoji(&self, id: CustomEmojiId) -> StoreResult<Option<CustomEmojiRecord>>;

    /// Inserts a custom emoji, in one transaction with the checks that its server holds
    /// fewer than `limit` emojis and none of the same name; nothing is written when a
    /// check fails. NotFound for a missing server or creator.
    async fn create_custom_emoji(
        &self,
        emoji: &CustomEmojiRecord,
        limit: i64,
    ) -> StoreResult<EmojiCreation>;

    /// Deletes the emoji `id` of `server`; returns the deleted row (`None` when the
    /// server has no such emoji).
    async fn delete_custom_emoji(
        &self,
        server: ServerId,
        id: CustomEmojiId,
    ) -> StoreResult<Option<CustomEmojiRecord>>;
}
