//! RoleStore on PostgreSQL (not yet ported: every method panics).
#![allow(unused_variables, reason = "a stub until this area is ported")]

use crate::AuditRecord;
use async_trait::async_trait;
use concord_protocol::{ChannelId, ChannelOverride, Role, RoleId, ServerId, UserId};

use super::PostgresStore;
use crate::{RoleStore, StoreResult};

#[async_trait]
impl RoleStore for PostgresStore {
    async fn role(&self, id: RoleId) -> StoreResult<Option<Role>> {
        todo!("PostgresStore::role")
    }

    async fn update_role(
        &self,
        id: RoleId,
        patch: &crate::RolePatch,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Option<(Role, bool)>> {
        todo!("PostgresStore::update_role")
    }

    async fn delete_role(&self, id: RoleId, audit: Option<&AuditRecord>) -> StoreResult<bool> {
        todo!("PostgresStore::delete_role")
    }

    async fn unassign_role(
        &self,
        server: ServerId,
        user: UserId,
        role: RoleId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool> {
        todo!("PostgresStore::unassign_role")
    }

    async fn overrides_of_channel(&self, channel: ChannelId) -> StoreResult<Vec<ChannelOverride>> {
        todo!("PostgresStore::overrides_of_channel")
    }

    async fn set_override(
        &self,
        ov: &ChannelOverride,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<(ChannelOverride, bool)> {
        todo!("PostgresStore::set_override")
    }

    async fn delete_override(
        &self,
        channel: ChannelId,
        id: concord_protocol::OverrideId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool> {
        todo!("PostgresStore::delete_override")
    }
}
