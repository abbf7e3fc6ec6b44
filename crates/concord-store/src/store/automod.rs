//! Automod settings, word filters and its log: the [`AutomodStore`] part of the [`Store`](super::Store) port.

use crate::{AutomodPatch, WordAddition};
use async_trait::async_trait;
use concord_protocol::{
    AutomodConfig, AutomodLogEntry, ChannelId, ServerId, Timestamp, UserId, WordFilter,
};

use super::StoreResult;

/// Automod settings, word filters and its log.
#[async_trait]
pub trait AutomodStore: Send + Sync {
    /// A server's automod settings; `None` until they are first changed.
    async fn automod_config(&self, server: ServerId) -> StoreResult<Option<AutomodConfig>>;

    /// Applies `patch` to a server's automod settings at `at`, creating them first
    /// (with the defaults for what `patch` leaves out) when there are none. NotFound
    /// for a missing server.
    async fn update_automod_config(
        &self,
        server: ServerId,
        patch: &AutomodPatch,
        at: Timestamp,
    ) -> StoreResult<AutomodConfig>;

    /// A server's filtered words, oldest first by (`created_at`, `id`).
    async fn automod_words(&self, server: ServerId) -> StoreResult<Vec<WordFilter>>;

    /// Adds `word` (as given: the caller lowercases it) unless the server already
    /// filters that word (then its row is returned, unchanged) or already filters
    /// `limit` words, in one transaction. NotFound for a missing server.
    async fn add_automod_word(&self, word: &WordFilter, limit: i64) -> StoreResult<WordAddition>;

    /// Removes one filtered word (exact match); false when the server had no such word.
    async fn remove_automod_word(&self, server: ServerId, word: &str) -> StoreResult<bool>;

    /// Appends to a server's automod log, then drops all but its `keep` newest rows,
    /// in one transaction. NotFound for a missing server, channel or user.
    async fn append_automod_log(&self, entry: &AutomodLogEntry, keep: i64) -> StoreResult<()>;

    /// A server's automod log, newest first by (`created_at`, `id`), at most `limit`.
    async fn automod_logs(&self, server: ServerId, limit: i64)
    -> StoreResult<Vec<AutomodLogEntry>>;

    /// Whether `author` has a live message in `channel` (thread replies included)
    /// with exactly `content`, created after `since`.
    async fn has_recent_duplicate(
        &self,
        channel: ChannelId,
        author: UserId,
        content: &str,
        since: Timestamp,
    ) -> StoreResult<bool>;

    /// How many live messages `author` has in `channel` (thread replies included)
    /// created after `since`.
    async fn count_recent_messages(
        &self,
        channel: ChannelId,
        author: UserId,
        since: Timestamp,
    ) -> StoreResult<i64>;
}
