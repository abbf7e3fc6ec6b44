//! AdminStore on PostgreSQL (not yet ported: every method panics).
#![allow(unused_variables, reason = "a stub until this area is ported")]

use crate::{
    AdminCounts, AdminFlags, AdminRefusal, AdminServerQuery, AdminUserQuery, AuditRecord,
    DeletedUser, InstanceSettingsRecord, NewChannel, ServerTemplateRecord, UserRecord,
};
use async_trait::async_trait;
use concord_protocol::{
    AdminServer, AdminUser, Channel, RegistrationMode, Server, Timestamp, UserId,
};

use super::PostgresStore;
use crate::{AdminStore, StoreResult};

#[async_trait]
impl AdminStore for PostgresStore {
    async fn instance_settings(&self) -> StoreResult<InstanceSettingsRecord> {
        todo!("PostgresStore::instance_settings")
    }

    async fn update_instance_settings(
        &self,
        registration_mode: Option<RegistrationMode>,
        by: UserId,
        at: Timestamp,
    ) -> StoreResult<InstanceSettingsRecord> {
        todo!("PostgresStore::update_instance_settings")
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>> {
        todo!("PostgresStore::user_by_email")
    }

    async fn create_reset_token(
        &self,
        user: UserId,
        token_hash: &str,
        created_at: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        todo!("PostgresStore::create_reset_token")
    }

    async fn reset_token_user(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<UserRecord>> {
        todo!("PostgresStore::reset_token_user")
    }

    async fn consume_reset_token(
        &self,
        token_hash: &str,
        now: Timestamp,
        password_hash: &str,
    ) -> StoreResult<Option<UserId>> {
        todo!("PostgresStore::consume_reset_token")
    }

    async fn admin_counts(&self) -> StoreResult<AdminCounts> {
        todo!("PostgresStore::admin_counts")
    }

    async fn admin_users(&self, query: &AdminUserQuery) -> StoreResult<(Vec<AdminUser>, i64)> {
        todo!("PostgresStore::admin_users")
    }

    async fn admin_user(&self, id: UserId) -> StoreResult<Option<AdminUser>> {
        todo!("PostgresStore::admin_user")
    }

    async fn set_admin_flags(
        &self,
        actor: UserId,
        target: UserId,
        flags: &AdminFlags,
        at: Timestamp,
    ) -> StoreResult<Result<(), AdminRefusal>> {
        todo!("PostgresStore::set_admin_flags")
    }

    async fn delete_user_as_admin(
        &self,
        actor: UserId,
        target: UserId,
    ) -> StoreResult<Result<DeletedUser, AdminRefusal>> {
        todo!("PostgresStore::delete_user_as_admin")
    }

    async fn admin_servers(
        &self,
        query: &AdminServerQuery,
    ) -> StoreResult<(Vec<AdminServer>, i64)> {
        todo!("PostgresStore::admin_servers")
    }

    async fn server_templates(&self) -> StoreResult<Vec<ServerTemplateRecord>> {
        todo!("PostgresStore::server_templates")
    }

    async fn server_template(&self, id: uuid::Uuid) -> StoreResult<Option<ServerTemplateRecord>> {
        todo!("PostgresStore::server_template")
    }

    async fn create_server_with_channels(
        &self,
        server: &Server,
        channels: &[NewChannel],
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Vec<Channel>> {
        todo!("PostgresStore::create_server_with_channels")
    }
}
