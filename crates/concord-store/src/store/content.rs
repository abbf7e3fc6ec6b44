//! Threads, reactions, pins, polls and scheduled events: the [`ContentStore`] part of the [`Store`](super::Store) port.

use crate::{NewMessage, NewPoll, NewServerEvent, PollRecord, VoteOutcome};
use async_trait::async_trait;
use concord_protocol::{
    ChannelId, Message, MessageId, PollId, PollOptionId, ReactionCount, ServerEvent, ServerId,
    Timestamp, UserId,
};

use super::StoreResult;

/// Threads, reactions, pins, polls and scheduled events.
#[async_trait]
pub trait ContentStore: Send + Sync {
    /// Live replies of the thread under `root`, oldest first by (created_at, id); with
    /// `after`, only those strictly after that reply (a cursor that is not a reply of
    /// this thread gives `[]`).
    async fn thread_replies(
        &self,
        root: MessageId,
        after: Option<MessageId>,
        limit: i64,
    ) -> StoreResult<Vec<Message>>;

    /// Adds `user`'s reaction; false when it was already there. `NotFound` when the
    /// message or user does not exist.
    async fn add_reaction(
        &self,
        message: MessageId,
        user: UserId,
        emoji: &str,
        at: Timestamp,
    ) -> StoreResult<bool>;

    /// Removes `user`'s reaction; false when it was not there.
    async fn remove_reaction(
        &self,
        message: MessageId,
        user: UserId,
        emoji: &str,
    ) -> StoreResult<bool>;

    /// A message's reactions per emoji, by each emoji's first use; `me` says whether
    /// `viewer` is among its users.
    async fn reactions(
        &self,
        message: MessageId,
        viewer: UserId,
    ) -> StoreResult<Vec<ReactionCount>>;

    /// Pins a live message; false when it was already pinned (or is missing or
    /// deleted): the pin fields are left as they were.
    async fn pin_message(&self, id: MessageId, by: UserId, at: Timestamp) -> StoreResult<bool>;

    /// Unpins a message; false when it was not pinned.
    async fn unpin_message(&self, id: MessageId) -> StoreResult<bool>;

    /// A channel's pinned, live messages, most recently pinned first.
    async fn pinned_messages(&self, channel: ChannelId) -> StoreResult<Vec<Message>>;

    /// Inserts a message and the poll it announces, in one transaction; returns the
    /// message with its poll (no votes).
    async fn create_poll(&self, message: &NewMessage, poll: &NewPoll) -> StoreResult<Message>;

    /// One poll with its counts.
    async fn poll(&self, id: PollId) -> StoreResult<Option<PollRecord>>;

    /// Every ballot of a poll: who chose which option.
    async fn poll_ballots(&self, id: PollId) -> StoreResult<Vec<(UserId, PollOptionId)>>;

    /// The options `user` chose in those of `polls` they voted in.
    async fn user_votes(
        &self,
        user: UserId,
        polls: &[PollId],
    ) -> StoreResult<Vec<(PollId, PollOptionId)>>;

    /// Records (or replaces) `user`'s vote and reads the poll and its ballots back, in
    /// one transaction. `NotFound` when the poll, the user, or that option of that
    /// poll does not exist.
    async fn cast_vote(
        &self,
        poll: PollId,
        user: UserId,
        option: PollOptionId,
        at: Timestamp,
    ) -> StoreResult<VoteOutcome>;

    /// Inserts a message and the scheduled event it announces, in one transaction
    /// (the event's creator and creation time are the message's); returns the message
    /// with its event.
    async fn create_server_event(
        &self,
        message: &NewMessage,
        event: &NewServerEvent,
    ) -> StoreResult<Message>;

    /// Events of `server` announced in one of `channels` that start after `after`,
    /// soonest first by (starts_at, id), at most `limit`.
    async fn upcoming_server_events(
        &self,
        server: ServerId,
        channels: &[ChannelId],
        after: Timestamp,
        limit: i64,
    ) -> StoreResult<Vec<ServerEvent>>;
}
