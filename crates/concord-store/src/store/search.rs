//! Message search: the [`SearchStore`] part of the [`Store`](super::Store) port.

use crate::{MessageSearch, SearchResults};
use async_trait::async_trait;

use super::StoreResult;

/// Message search.
#[async_trait]
pub trait SearchStore: Send + Sync {
    /// A page of the live server-channel messages that match `search`, with the
    /// number of matches in all (see [`MessageSearch`]).
    async fn search_messages(&self, search: &MessageSearch) -> StoreResult<SearchResults>;

    /// Indexes up to `limit` of the messages posted (or changed) since the last call,
    /// for a backend that indexes in batches rather than with each write; returns how
    /// many it handled (0: nothing waits). [`SearchStore::search_messages`] sees every
    /// message written before it whether or not this ran; calling it keeps the batches
    /// small and off the posting path.
    async fn flush_search_index(&self, limit: i64) -> StoreResult<u64>;
}
