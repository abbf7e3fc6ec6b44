//! ContentStore on PostgreSQL (not yet ported: every method panics).
#![allow(unused_variables, reason = "a stub until this area is ported")]

use crate::{NewMessage, NewPoll, NewServerEvent, PollRecord, VoteOutcome};
use async_trait::async_trait;
use concord_protocol::{
    ChannelId, Message, MessageId, PollId, PollOptionId, ReactionCount, ServerEvent, ServerId,
    Timestamp, UserId,
};

use super::PostgresStore;
use crate::{ContentStore, StoreResult};

#[async_trait]
impl ContentStore for PostgresStore {
    async fn thread_replies(
        &self,
        root: MessageId,
        after: Option<MessageId>,
        limit: i64,
    ) -> StoreResult<Vec<Message>> {
        todo!("PostgresStore::thread_replies")
    }

    async fn add_reaction(
        &self,
        message: MessageId,
        user: UserId,
        emoji: &str,
        at: Timestamp,
    ) -> StoreResult<bool> {
        todo!("PostgresStore::add_reaction")
    }

    async fn remove_reaction(
        &self,
        message: MessageId,
        user: UserId,
        emoji: &str,
    ) -> StoreResult<bool> {
        todo!("PostgresStore::remove_reaction")
    }

    async fn reactions(
        &self,
        message: MessageId,
        viewer: UserId,
    ) -> StoreResult<Vec<ReactionCount>> {
        todo!("PostgresStore::reactions")
    }

    async fn pin_message(&self, id: MessageId, by: UserId, at: Timestamp) -> StoreResult<bool> {
        todo!("PostgresStore::pin_message")
    }

    async fn unpin_message(&self, id: MessageId) -> StoreResult<bool> {
        todo!("PostgresStore::unpin_message")
    }

    async fn pinned_messages(&self, channel: ChannelId) -> StoreResult<Vec<Message>> {
        todo!("PostgresStore::pinned_messages")
    }

    async fn create_poll(&self, message: &NewMessage, poll: &NewPoll) -> StoreResult<Message> {
        todo!("PostgresStore::create_poll")
    }

    async fn poll(&self, id: PollId) -> StoreResult<Option<PollRecord>> {
        todo!("PostgresStore::poll")
    }

    async fn poll_ballots(&self, id: PollId) -> StoreResult<Vec<(UserId, PollOptionId)>> {
        todo!("PostgresStore::poll_ballots")
    }

    async fn user_votes(
        &self,
        user: UserId,
        polls: &[PollId],
    ) -> StoreResult<Vec<(PollId, PollOptionId)>> {
        todo!("PostgresStore::user_votes")
    }

    async fn cast_vote(
        &self,
        poll: PollId,
        user: UserId,
        option: PollOptionId,
        at: Timestamp,
    ) -> StoreResult<VoteOutcome> {
        todo!("PostgresStore::cast_vote")
    }

    async fn create_server_event(
        &self,
        message: &NewMessage,
        event: &NewServerEvent,
    ) -> StoreResult<Message> {
        todo!("PostgresStore::create_server_event")
    }

    async fn upcoming_server_events(
        &self,
        server: ServerId,
        channels: &[ChannelId],
        after: Timestamp,
        limit: i64,
    ) -> StoreResult<Vec<ServerEvent>> {
        todo!("PostgresStore::upcoming_server_events")
    }
}
