//! SearchStore on PostgreSQL (not yet ported: every method panics).
#![allow(unused_variables, reason = "a stub until this area is ported")]

use crate::{MessageSearch, SearchResults};
use async_trait::async_trait;

use super::PostgresStore;
use crate::{SearchStore, StoreResult};

#[async_trait]
impl SearchStore for PostgresStore {
    async fn search_messages(&self, search: &MessageSearch) -> StoreResult<SearchResults> {
        todo!("PostgresStore::search_messages")
    }

    async fn flush_search_index(&self, limit: i64) -> StoreResult<u64> {
        todo!("PostgresStore::flush_search_index")
    }
}
