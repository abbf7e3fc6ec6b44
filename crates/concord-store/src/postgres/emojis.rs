//! EmojiStore on PostgreSQL (not yet ported: every method panics).
#![allow(unused_variables, reason = "a stub until this area is ported")]

use crate::{CustomEmojiRecord, EmojiCreation};
use async_trait::async_trait;
use concord_protocol::{CustomEmojiId, ServerId};

use super::PostgresStore;
use crate::{EmojiStore, StoreResult};

#[async_trait]
impl EmojiStore for PostgresStore {
    async fn custom_emojis(&self, server: ServerId) -> StoreResult<Vec<CustomEmojiRecord>> {
        todo!("PostgresStore::custom_emojis")
    }

    async fn custom_emoji(&self, id: CustomEmojiId) -> StoreResult<Option<CustomEmojiRecord>> {
        todo!("PostgresStore::custom_emoji")
    }

    async fn create_custom_emoji(
        &self,
        emoji: &CustomEmojiRecord,
        limit: i64,
    ) -> StoreResult<EmojiCreation> {
        todo!("PostgresStore::create_custom_emoji")
    }

    async fn delete_custom_emoji(
        &self,
        server: ServerId,
        id: CustomEmojiId,
    ) -> StoreResult<Option<CustomEmojiRecord>> {
        todo!("PostgresStore::delete_custom_emoji")
    }
}
