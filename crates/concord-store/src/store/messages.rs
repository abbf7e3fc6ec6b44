//! Messages and unread/mention counts: the [`MessageStore`] part of the [`Store`](super::Store) port.

use crate::NewMessage;
use async_trait::async_trait;
use concord_protocol::{
    ChannelId, DmChannelId, MentionCount, Message, MessageId, Timestamp, UnreadCount, UserId,
};

use super::StoreResult;

/// Messages and unread/mention counts.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Marks a server channel read up to `at`.
    async fn ack_channel(&self, user: UserId, channel: ChannelId, at: Timestamp)
    -> StoreResult<()>;

    /// Marks a DM channel read up to `at`.
    async fn ack_dm(&self, user: UserId, channel: DmChannelId, at: Timestamp) -> StoreResult<()>;

    /// READY's unread counts: channels (server and DM) with a read-state row; messages
    /// after `last_read_at`, not deleted, not by the user; zeros omitted.
    async fn unread_counts(&self, user: UserId) -> StoreResult<Vec<UnreadCount>>;

    /// READY's mention counts: server channels with a read-state row; same window;
    /// messages mentioning the user or everyone; zeros omitted.
    async fn mention_counts(&self, user: UserId) -> StoreResult<Vec<MentionCount>>;

    /// Inserts a message; returns it as created.
    async fn create_message(&self, message: &NewMessage) -> StoreResult<Message>;

    /// One message, deleted or not, with its live thread reply count and pin fields.
    async fn message(&self, id: MessageId) -> StoreResult<Option<Message>>;

    /// Root messages of a channel, not deleted, newest first by (created_at, id),
    /// strictly older than `before` when given (an unknown cursor gives `[]`).
    async fn messages(
        &self,
        channel: ChannelId,
        before: Option<MessageId>,
        limit: i64,
    ) -> StoreResult<Vec<Message>>;

    /// Messages (thread replies included) that cluster node `node` stored with an id
    /// at or past `since`, not deleted, newest first, at most `limit` (the newest): what
    /// a node that died may have committed without its event going out. Ids are
    /// time-ordered, so this reads a range of the primary key.
    async fn messages_of_node(
        &self,
        node: uuid::Uuid,
        since: MessageId,
        limit: i64,
    ) -> StoreResult<Vec<Message>>;

    /// Replaces content and mentions and sets `edited_at`; `None` when missing or deleted.
    async fn edit_message(
        &self,
        id: MessageId,
        content: &str,
        mention_user_ids: &[UserId],
        mention_everyone: bool,
        edited_at: Timestamp,
    ) -> StoreResult<Option<Message>>;

    /// Soft delete; false when missing or already deleted (a lost race included).
    async fn delete_message(&self, id: MessageId) -> StoreResult<bool>;
}
