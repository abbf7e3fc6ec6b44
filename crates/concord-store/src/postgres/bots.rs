//! BotStore on PostgreSQL (not yet ported: every method panics).
#![allow(unused_variables, reason = "a stub until this area is ported")]

use crate::{AuthoredMessage, BotRecord, NewUser, UserRecord};
use async_trait::async_trait;
use concord_protocol::{Bot, BotId, Timestamp, UserId};

use super::PostgresStore;
use crate::{BotStore, StoreResult};

#[async_trait]
impl BotStore for PostgresStore {
    async fn create_bot(&self, user: &NewUser, bot: &BotRecord) -> StoreResult<()> {
        todo!("PostgresStore::create_bot")
    }

    async fn bot(&self, id: BotId) -> StoreResult<Option<BotRecord>> {
        todo!("PostgresStore::bot")
    }

    async fn bot_by_user(&self, user: UserId) -> StoreResult<Option<BotRecord>> {
        todo!("PostgresStore::bot_by_user")
    }

    async fn bot_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<BotRecord>> {
        todo!("PostgresStore::bot_by_token_hash")
    }

    async fn bot_and_user_by_token_hash(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<(BotRecord, UserRecord)>> {
        todo!("PostgresStore::bot_and_user_by_token_hash")
    }

    async fn bots_of_creator(&self, user: UserId) -> StoreResult<Vec<Bot>> {
        todo!("PostgresStore::bots_of_creator")
    }

    async fn update_bot(
        &self,
        id: BotId,
        name: Option<&str>,
        description: Option<&str>,
    ) -> StoreResult<Option<Bot>> {
        todo!("PostgresStore::update_bot")
    }

    async fn revoke_bot(&self, id: BotId, at: Timestamp) -> StoreResult<bool> {
        todo!("PostgresStore::revoke_bot")
    }

    async fn set_bot_token(&self, id: BotId, token_hash: &str) -> StoreResult<bool> {
        todo!("PostgresStore::set_bot_token")
    }

    async fn recent_messages_by_author(
        &self,
        author: UserId,
        limit: u32,
    ) -> StoreResult<Vec<AuthoredMessage>> {
        todo!("PostgresStore::recent_messages_by_author")
    }
}
