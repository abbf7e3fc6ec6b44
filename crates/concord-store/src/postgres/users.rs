//! UserStore on PostgreSQL (not yet ported: every method panics).
#![allow(unused_variables, reason = "a stub until this area is ported")]

use crate::{NewUser, Presence, RefreshSession, UserPatch, UserRecord};
use async_trait::async_trait;
use concord_protocol::{Timestamp, UserId};

use super::PostgresStore;
use crate::{StoreResult, UserStore};

#[async_trait]
impl UserStore for PostgresStore {
    async fn create_user(&self, user: &NewUser) -> StoreResult<UserRecord> {
        todo!("PostgresStore::create_user")
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        todo!("PostgresStore::user")
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        todo!("PostgresStore::user_by_username")
    }

    async fn users(&self, ids: &[UserId]) -> StoreResult<Vec<UserRecord>> {
        todo!("PostgresStore::users")
    }

    async fn update_user(&self, id: UserId, patch: &UserPatch) -> StoreResult<Option<UserRecord>> {
        todo!("PostgresStore::update_user")
    }

    async fn set_presence(&self, id: UserId, presence: &Presence) -> StoreResult<()> {
        todo!("PostgresStore::set_presence")
    }

    async fn create_refresh_session(
        &self,
        session: &RefreshSession,
        now: Timestamp,
        keep: usize,
    ) -> StoreResult<()> {
        todo!("PostgresStore::create_refresh_session")
    }

    async fn refresh_session_by_hash(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<RefreshSession>> {
        todo!("PostgresStore::refresh_session_by_hash")
    }

    async fn rotate_refresh_session(
        &self,
        id: uuid::Uuid,
        old_hash: &str,
        new_hash: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        todo!("PostgresStore::rotate_refresh_session")
    }

    async fn refresh_session(&self, id: uuid::Uuid) -> StoreResult<Option<RefreshSession>> {
        todo!("PostgresStore::refresh_session")
    }

    async fn revoke_refresh_session(&self, id: uuid::Uuid) -> StoreResult<bool> {
        todo!("PostgresStore::revoke_refresh_session")
    }

    async fn delete_refresh_sessions(&self, user: UserId) -> StoreResult<()> {
        todo!("PostgresStore::delete_refresh_sessions")
    }

    async fn delete_refresh_session(
        &self,
        user: UserId,
        token_hash: &str,
    ) -> StoreResult<Option<uuid::Uuid>> {
        todo!("PostgresStore::delete_refresh_session")
    }
}
