//! AutomodStore on PostgreSQL (not yet ported: every method panics).
#![allow(unused_variables, reason = "a stub until this area is ported")]

use crate::{AutomodPatch, WordAddition};
use async_trait::async_trait;
use concord_protocol::{
    AutomodConfig, AutomodLogEntry, ChannelId, ServerId, Timestamp, UserId, WordFilter,
};

use super::PostgresStore;
use crate::{AutomodStore, StoreResult};

#[async_trait]
impl AutomodStore for PostgresStore {
    async fn automod_config(&self, server: ServerId) -> StoreResult<Option<AutomodConfig>> {
        todo!("PostgresStore::automod_config")
    }

    async fn update_automod_config(
        &self,
        server: ServerId,
        patch: &AutomodPatch,
        at: Timestamp,
    ) -> StoreResult<AutomodConfig> {
        todo!("PostgresStore::update_automod_config")
    }

    async fn automod_words(&self, server: ServerId) -> StoreResult<Vec<WordFilter>> {
        todo!("PostgresStore::automod_words")
    }

    async fn add_automod_word(&self, word: &WordFilter, limit: i64) -> StoreResult<WordAddition> {
        todo!("PostgresStore::add_automod_word")
    }

    async fn remove_automod_word(&self, server: ServerId, word: &str) -> StoreResult<bool> {
        todo!("PostgresStore::remove_automod_word")
    }

    async fn append_automod_log(&self, entry: &AutomodLogEntry, keep: i64) -> StoreResult<()> {
        todo!("PostgresStore::append_automod_log")
    }

    async fn automod_logs(
        &self,
        server: ServerId,
        limit: i64,
    ) -> StoreResult<Vec<AutomodLogEntry>> {
        todo!("PostgresStore::automod_logs")
    }

    async fn has_recent_duplicate(
        &self,
        channel: ChannelId,
        author: UserId,
        content: &str,
        since: Timestamp,
    ) -> StoreResult<bool> {
        todo!("PostgresStore::has_recent_duplicate")
    }

    async fn count_recent_messages(
        &self,
        channel: ChannelId,
        author: UserId,
        since: Timestamp,
    ) -> StoreResult<i64> {
        todo!("PostgresStore::count_recent_messages")
    }
}
