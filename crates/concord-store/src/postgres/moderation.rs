//! ModerationStore on PostgreSQL (not yet ported: every method panics).
#![allow(unused_variables, reason = "a stub until this area is ported")]

use crate::AuditRecord;
use async_trait::async_trait;
use concord_protocol::{Ban, ServerId, Timeout, Timestamp, UserId};

use super::PostgresStore;
use crate::{ModerationStore, StoreResult};

#[async_trait]
impl ModerationStore for PostgresStore {
    async fn ban(&self, ban: &Ban, audit: Option<&AuditRecord>) -> StoreResult<bool> {
        todo!("PostgresStore::ban")
    }

    async fn unban(
        &self,
        server: ServerId,
        user: UserId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool> {
        todo!("PostgresStore::unban")
    }

    async fn bans(&self, server: ServerId) -> StoreResult<Vec<Ban>> {
        todo!("PostgresStore::bans")
    }

    async fn put_timeout(&self, timeout: &Timeout, audit: Option<&AuditRecord>) -> StoreResult<()> {
        todo!("PostgresStore::put_timeout")
    }

    async fn remove_timeout(
        &self,
        server: ServerId,
        user: UserId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Option<Timestamp>> {
        todo!("PostgresStore::remove_timeout")
    }
}
