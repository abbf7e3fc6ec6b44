//! GatewaySessionStore on PostgreSQL (not yet ported: every method panics).
#![allow(unused_variables, reason = "a stub until this area is ported")]

use crate::SavedSession;
use async_trait::async_trait;
use concord_protocol::Timestamp;

use super::PostgresStore;
use crate::{GatewaySessionStore, StoreResult};

#[async_trait]
impl GatewaySessionStore for PostgresStore {
    async fn save_gateway_sessions(&self, sessions: &[SavedSession]) -> StoreResult<()> {
        todo!("PostgresStore::save_gateway_sessions")
    }

    async fn take_gateway_sessions(&self, now: Timestamp) -> StoreResult<Vec<SavedSession>> {
        todo!("PostgresStore::take_gateway_sessions")
    }
}
