//! ChannelStore on PostgreSQL (not yet ported: every method panics).
#![allow(unused_variables, reason = "a stub until this area is ported")]

use crate::{AuditRecord, ChannelPatch, DirectorySnapshot, NewChannel};
use async_trait::async_trait;
use concord_protocol::{
    Channel, ChannelId, ChannelOverride, Role, RoleId, ServerId, Timestamp, UserId,
};

use super::PostgresStore;
use crate::{ChannelStore, StoreResult};

#[async_trait]
impl ChannelStore for PostgresStore {
    async fn create_channel(&self, channel: &NewChannel) -> StoreResult<Channel> {
        todo!("PostgresStore::create_channel")
    }

    async fn channel(&self, id: ChannelId) -> StoreResult<Option<Channel>> {
        todo!("PostgresStore::channel")
    }

    async fn channels(&self, server: ServerId) -> StoreResult<Vec<Channel>> {
        todo!("PostgresStore::channels")
    }

    async fn update_channel(
        &self,
        id: ChannelId,
        patch: &ChannelPatch,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Option<Channel>> {
        todo!("PostgresStore::update_channel")
    }

    async fn delete_channel(
        &self,
        id: ChannelId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool> {
        todo!("PostgresStore::delete_channel")
    }

    async fn create_role(&self, role: &Role) -> StoreResult<()> {
        todo!("PostgresStore::create_role")
    }

    async fn assign_role(&self, server: ServerId, user: UserId, role: RoleId) -> StoreResult<bool> {
        todo!("PostgresStore::assign_role")
    }

    async fn roles_of_servers(&self, servers: &[ServerId]) -> StoreResult<Vec<Role>> {
        todo!("PostgresStore::roles_of_servers")
    }

    async fn put_override(&self, ov: &ChannelOverride) -> StoreResult<ChannelOverride> {
        todo!("PostgresStore::put_override")
    }

    async fn overrides_of_servers(
        &self,
        servers: &[ServerId],
    ) -> StoreResult<Vec<ChannelOverride>> {
        todo!("PostgresStore::overrides_of_servers")
    }

    async fn set_timeout(
        &self,
        server: ServerId,
        user: UserId,
        expires_at: Timestamp,
        created_by: Option<UserId>,
        created_at: Timestamp,
    ) -> StoreResult<()> {
        todo!("PostgresStore::set_timeout")
    }

    async fn directory_snapshot(&self, now: Timestamp) -> StoreResult<DirectorySnapshot> {
        todo!("PostgresStore::directory_snapshot")
    }

    async fn create_channel_audited(
        &self,
        channel: &NewChannel,
        audit: &AuditRecord,
    ) -> StoreResult<Channel> {
        todo!("PostgresStore::create_channel_audited")
    }

    async fn create_role_audited(&self, role: &Role, audit: &AuditRecord) -> StoreResult<()> {
        todo!("PostgresStore::create_role_audited")
    }

    async fn assign_role_audited(
        &self,
        server: ServerId,
        user: UserId,
        role: RoleId,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        todo!("PostgresStore::assign_role_audited")
    }
}
