//! Direct-message channels and their messages: the [`DmStore`] part of the [`Store`](super::Store) port.

use crate::{DmChannelRecord, DmChannelSummary};
use async_trait::async_trait;
use concord_protocol::{DirectMessage, DmChannelId, UserId};

use super::StoreResult;

/// Direct-message channels and their messages.
#[async_trait]
pub trait DmStore: Send + Sync {
    /// Creates the DM channel between the two users, or returns the existing one;
    /// the flag says whether it was created.
    async fn open_dm_channel(
        &self,
        channel: &DmChannelRecord,
    ) -> StoreResult<(DmChannelRecord, bool)>;

    /// One DM channel.
    async fn dm_channel(&self, id: DmChannelId) -> StoreResult<Option<DmChannelRecord>>;

    /// A user's DM channels, newest `last_message_at` first, never-used last.
    async fn dm_channels_of_user(&self, user: UserId) -> StoreResult<Vec<DmChannelSummary>>;

    /// Inserts a direct message, accepted by cluster node `node` (`None` on a single
    /// node; see [`MessageStore::messages_of_node`](crate::MessageStore::messages_of_node)).
    async fn create_dm_message(
        &self,
        message: &DirectMessage,
        node: Option<uuid::Uuid>,
    ) -> StoreResult<()>;

    /// Direct messages that cluster node `node` stored with an id at or past `since`,
    /// not deleted, newest first, at most `limit`: as
    /// [`MessageStore::messages_of_node`](crate::MessageStore::messages_of_node).
    async fn dm_messages_of_node(
        &self,
        node: uuid::Uuid,
        since: uuid::Uuid,
        limit: i64,
    ) -> StoreResult<Vec<DirectMessage>>;

    /// DMs newest first, with the same cursor rules as [`MessageStore::messages`].
    async fn dm_messages(
        &self,
        channel: DmChannelId,
        before: Option<uuid::Uuid>,
        limit: i64,
    ) -> StoreResult<Vec<DirectMessage>>;
}
