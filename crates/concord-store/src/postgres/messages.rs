//! MessageStore on PostgreSQL (not yet ported: every method panics).
#![allow(unused_variables, reason = "a stub until this area is ported")]

use crate::NewMessage;
use async_trait::async_trait;
use concord_protocol::{
    ChannelId, DmChannelId, MentionCount, Message, MessageId, Timestamp, UnreadCount, UserId,
};

use super::PostgresStore;
use crate::{MessageStore, StoreResult};

#[async_trait]
impl MessageStore for PostgresStore {
    async fn ack_channel(
        &self,
        user: UserId,
        channel: ChannelId,
        at: Timestamp,
    ) -> StoreResult<()> {
        todo!("PostgresStore::ack_channel")
    }

    async fn ack_dm(&self, user: UserId, channel: DmChannelId, at: Timestamp) -> StoreResult<()> {
        todo!("PostgresStore::ack_dm")
    }

    async fn unread_counts(&self, user: UserId) -> StoreResult<Vec<UnreadCount>> {
        todo!("PostgresStore::unread_counts")
    }

    async fn mention_counts(&self, user: UserId) -> StoreResult<Vec<MentionCount>> {
        todo!("PostgresStore::mention_counts")
    }

    async fn create_message(&self, message: &NewMessage) -> StoreResult<Message> {
        todo!("PostgresStore::create_message")
    }

    async fn message(&self, id: MessageId) -> StoreResult<Option<Message>> {
        todo!("PostgresStore::message")
    }

    async fn messages(
        &self,
        channel: ChannelId,
        before: Option<MessageId>,
        limit: i64,
    ) -> StoreResult<Vec<Message>> {
        todo!("PostgresStore::messages")
    }

    async fn edit_message(
        &self,
        id: MessageId,
        content: &str,
        mention_user_ids: &[UserId],
        mention_everyone: bool,
        edited_at: Timestamp,
    ) -> StoreResult<Option<Message>> {
        todo!("PostgresStore::edit_message")
    }

    async fn delete_message(&self, id: MessageId) -> StoreResult<bool> {
        todo!("PostgresStore::delete_message")
    }
}
