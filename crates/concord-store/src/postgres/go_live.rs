//! GoLiveStore on PostgreSQL (not yet ported: every method panics).
#![allow(unused_variables, reason = "a stub until this area is ported")]

use crate::GoLiveStart;
use async_trait::async_trait;
use concord_protocol::{ChannelId, GoLiveInfo, UserId};

use super::PostgresStore;
use crate::{GoLiveStore, StoreResult};

#[async_trait]
impl GoLiveStore for PostgresStore {
    async fn go_live(&self, channel: ChannelId) -> StoreResult<Option<GoLiveInfo>> {
        todo!("PostgresStore::go_live")
    }

    async fn start_go_live(&self, info: &GoLiveInfo) -> StoreResult<GoLiveStart> {
        todo!("PostgresStore::start_go_live")
    }

    async fn stop_go_live(&self, channel: ChannelId, broadcaster: UserId) -> StoreResult<bool> {
        todo!("PostgresStore::stop_go_live")
    }

    async fn end_stale_go_live(&self, user: UserId) -> StoreResult<Vec<GoLiveInfo>> {
        todo!("PostgresStore::end_stale_go_live")
    }
}
