//! ServerStore on PostgreSQL (not yet ported: every method panics).
#![allow(unused_variables, reason = "a stub until this area is ported")]

use crate::{AuditRecord, MemberDetail, ServerPatch};
use async_trait::async_trait;
use concord_protocol::{CustomEmojiId, Server, ServerDto, ServerId, Timestamp, UserId};

use super::PostgresStore;
use crate::{ServerStore, StoreResult};

#[async_trait]
impl ServerStore for PostgresStore {
    async fn create_server(&self, server: &Server) -> StoreResult<()> {
        todo!("PostgresStore::create_server")
    }

    async fn server(&self, id: ServerId) -> StoreResult<Option<ServerDto>> {
        todo!("PostgresStore::server")
    }

    async fn servers_of_user(&self, user: UserId) -> StoreResult<Vec<ServerDto>> {
        todo!("PostgresStore::servers_of_user")
    }

    async fn public_servers(&self, limit: i64) -> StoreResult<Vec<ServerDto>> {
        todo!("PostgresStore::public_servers")
    }

    async fn update_server(
        &self,
        id: ServerId,
        patch: &ServerPatch,
        updated_at: Timestamp,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Option<ServerDto>> {
        todo!("PostgresStore::update_server")
    }

    async fn delete_server(
        &self,
        id: ServerId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Option<Vec<CustomEmojiId>>> {
        todo!("PostgresStore::delete_server")
    }

    async fn add_member(
        &self,
        server: ServerId,
        user: UserId,
        joined_at: Timestamp,
    ) -> StoreResult<()> {
        todo!("PostgresStore::add_member")
    }

    async fn remove_member(
        &self,
        server: ServerId,
        user: UserId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool> {
        todo!("PostgresStore::remove_member")
    }

    async fn members(&self, server: ServerId) -> StoreResult<Vec<MemberDetail>> {
        todo!("PostgresStore::members")
    }

    async fn is_banned(&self, server: ServerId, user: UserId) -> StoreResult<bool> {
        todo!("PostgresStore::is_banned")
    }

    async fn member_ids_by_usernames(
        &self,
        server: ServerId,
        names: &[String],
    ) -> StoreResult<Vec<UserId>> {
        todo!("PostgresStore::member_ids_by_usernames")
    }
}
