//! AuditStore on PostgreSQL (not yet ported: every method panics).
#![allow(unused_variables, reason = "a stub until this area is ported")]

use crate::{AuditLogFilter, AuditRecord};
use async_trait::async_trait;
use concord_protocol::ServerId;

use super::PostgresStore;
use crate::{AuditStore, StoreResult};

#[async_trait]
impl AuditStore for PostgresStore {
    async fn audit_logs(
        &self,
        server: ServerId,
        query: &AuditLogFilter,
    ) -> StoreResult<Vec<AuditRecord>> {
        todo!("PostgresStore::audit_logs")
    }
}
