//! ExportStore on PostgreSQL (not yet ported: every method panics).
#![allow(unused_variables, reason = "a stub until this area is ported")]

use crate::{
    ExportCursor, ExportDmChannelRecord, ExportDmMessageRecord, ExportMemberRecord,
    ExportMessageRecord,
};
use async_trait::async_trait;
use concord_protocol::{ChannelId, DmChannelId, ServerId, UserId};

use super::PostgresStore;
use crate::{ExportStore, StoreResult};

#[async_trait]
impl ExportStore for PostgresStore {
    async fn export_members(
        &self,
        server: ServerId,
        after: Option<&ExportCursor>,
        limit: i64,
    ) -> StoreResult<Vec<ExportMemberRecord>> {
        todo!("PostgresStore::export_members")
    }

    async fn export_messages(
        &self,
        channel: ChannelId,
        after: Option<&ExportCursor>,
        limit: i64,
    ) -> StoreResult<Vec<ExportMessageRecord>> {
        todo!("PostgresStore::export_messages")
    }

    async fn export_dm_channels(
        &self,
        user: UserId,
        after: Option<&ExportCursor>,
        limit: i64,
    ) -> StoreResult<Vec<ExportDmChannelRecord>> {
        todo!("PostgresStore::export_dm_channels")
    }

    async fn export_dm_messages(
        &self,
        channel: DmChannelId,
        after: Option<&ExportCursor>,
        limit: i64,
    ) -> StoreResult<Vec<ExportDmMessageRecord>> {
        todo!("PostgresStore::export_dm_messages")
    }
}
