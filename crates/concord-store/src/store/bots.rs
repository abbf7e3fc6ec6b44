//! Bots and their tokens: the [`BotStore`] part of the [`Store`](super::Store) port.

use crate::{AuthoredMessage, BotRecord, NewUser, UserRecord};
use async_trait::async_trait;
use concord_protocol::{Bot, BotId, Timestamp, UserId};

use super::StoreResult;

/// Bots and their tokens.
#[async_trait]
pub trait BotStore: Send + Sync {
    /// Inserts the bot's user and the bot in one transaction.
    async fn create_bot(&self, user: &NewUser, bot: &BotRecord) -> StoreResult<()>;

    /// One bot.
    async fn bot(&self, id: BotId) -> StoreResult<Option<BotRecord>>;

    /// The bot whose user is `user`.
    async fn bot_by_user(&self, user: UserId) -> StoreResult<Option<BotRecord>>;

    /// The bot whose current token hashes to `token_hash` (revoked ones included).
    async fn bot_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<BotRecord>>;

    /// [`BotStore::bot_by_token_hash`] and the bot's user account together (what a
    /// `Bot` credential authenticates as): one visit to the database, since every
    /// request and upgrade with a bot token needs both.
    async fn bot_and_user_by_token_hash(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<(BotRecord, UserRecord)>>;

    /// Bots created by `user`, oldest first, revoked included.
    async fn bots_of_creator(&self, user: UserId) -> StoreResult<Vec<Bot>>;

    /// Renames / re-describes a bot; `None` when missing.
    async fn update_bot(
        &self,
        id: BotId,
        name: Option<&str>,
        description: Option<&str>,
    ) -> StoreResult<Option<Bot>>;

    /// Sets `revoked_at`; false when missing or already revoked.
    async fn revoke_bot(&self, id: BotId, at: Timestamp) -> StoreResult<bool>;

    /// Replaces the token hash; false when missing.
    async fn set_bot_token(&self, id: BotId, token_hash: &str) -> StoreResult<bool>;

    /// The `limit` newest live messages `author` posted in server channels (thread
    /// replies included, DMs not), newest first by (`created_at`, `id`): what a bot's
    /// log shows of its activity.
    async fn recent_messages_by_author(
        &self,
        author: UserId,
        limit: u32,
    ) -> StoreResult<Vec<AuthoredMessage>>;
}
