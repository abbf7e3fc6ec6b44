//! DmStore on PostgreSQL (not yet ported: every method panics).
#![allow(unused_variables, reason = "a stub until this area is ported")]

use crate::{DmChannelRecord, DmChannelSummary};
use async_trait::async_trait;
use concord_protocol::{DirectMessage, DmChannelId, UserId};

use super::PostgresStore;
use crate::{DmStore, StoreResult};

#[async_trait]
impl DmStore for PostgresStore {
    async fn open_dm_channel(
        &self,
        channel: &DmChannelRecord,
    ) -> StoreResult<(DmChannelRecord, bool)> {
        todo!("PostgresStore::open_dm_channel")
    }

    async fn dm_channel(&self, id: DmChannelId) -> StoreResult<Option<DmChannelRecord>> {
        todo!("PostgresStore::dm_channel")
    }

    async fn dm_channels_of_user(&self, user: UserId) -> StoreResult<Vec<DmChannelSummary>> {
        todo!("PostgresStore::dm_channels_of_user")
    }

    async fn create_dm_message(&self, message: &DirectMessage) -> StoreResult<()> {
        todo!("PostgresStore::create_dm_message")
    }

    async fn dm_messages(
        &self,
        channel: DmChannelId,
        before: Option<uuid::Uuid>,
        limit: i64,
    ) -> StoreResult<Vec<DirectMessage>> {
        todo!("PostgresStore::dm_messages")
    }
}
