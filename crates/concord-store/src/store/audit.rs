//! The audit log: the [`AuditStore`] part of the [`Store`](super::Store) port.

use crate::{AuditLogFilter, AuditRecord};
use async_trait::async_trait;
use concord_protocol::ServerId;

use super::StoreResult;

/// The audit log.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// A page of `server`'s audit log, newest first by (`created_at`, `id`).
    async fn audit_logs(
        &self,
        server: ServerId,
        query: &AuditLogFilter,
    ) -> StoreResult<Vec<AuditRecord>>;
}
