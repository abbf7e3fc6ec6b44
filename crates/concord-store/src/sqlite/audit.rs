//! The audit log (issue 18 part C): rows written inside the transactions of the
//! actions they record, and keyset pages of them.

use concord_protocol::ServerId;
use sqlx::{
    SqliteConnection,
    sqlite::{SqlitePool, SqliteRow},
};

use super::SqliteStore;
use super::{get, opt_id, rows, ts};
use crate::AuditStore;
use crate::{AuditLogFilter, AuditRecord, StoreResult};
use async_trait::async_trait;

/// Inserts `audit` (when given) on `conn`, inside the caller's transaction.
pub(super) async fn insert(
    conn: &mut SqliteConnection,
    audit: Option<&AuditRecord>,
) -> StoreResult<()> {
    let Some(audit) = audit else {
        return Ok(());
    };
    sqlx::query(
        "INSERT INTO audit_logs (id, server_id, actor_id, action, target_type, target_id, \
         details, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(audit.id)
    .bind(audit.server_id.map(|id| id.get()))
    .bind(audit.actor_id.map(|id| id.get()))
    .bind(&audit.action)
    .bind(&audit.target_type)
    .bind(audit.target_id)
    .bind(&audit.details)
    .bind(audit.created_at.as_micros())
    .execute(conn)
    .await?;
    Ok(())
}

/// [`insert`], with the key `key` of the details set to `id` (as a string): for an
/// id only known inside the transaction.
pub(super) async fn insert_with_id(
    conn: &mut SqliteConnection,
    audit: Option<&AuditRecord>,
    key: &str,
    id: uuid::Uuid,
) -> StoreResult<()> {
    let Some(audit) = audit else {
        return Ok(());
    };
    let details: String = sqlx::query_scalar("SELECT json_set(?, '$.' || ?, ?)")
        .bind(&audit.details)
        .bind(key)
        .bind(id.to_string())
        .fetch_one(&mut *conn)
        .await?;
    let audit = AuditRecord {
        details,
        ..audit.clone()
    };
    insert(conn, Some(&audit)).await
}

fn audit_row(row: &SqliteRow) -> StoreResult<AuditRecord> {
    Ok(AuditRecord {
        id: get(row, "id")?,
        server_id: opt_id(row, "server_id")?,
        actor_id: opt_id(row, "actor_id")?,
        action: get(row, "action")?,
        target_type: get(row, "target_type")?,
        target_id: get(row, "target_id")?,
        details: get(row, "details")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(super) async fn audit_logs(
    pool: &SqlitePool,
    server: ServerId,
    query: &AuditLogFilter,
) -> StoreResult<Vec<AuditRecord>> {
    // Each filter is `? IS NULL OR …`, so one statement (and its indexes) serves all.
    let found = sqlx::query(
        "SELECT id, server_id, actor_id, action, target_type, target_id, details, created_at \
         FROM audit_logs WHERE server_id = ? \
         AND (? IS NULL OR action = ?) \
         AND (? IS NULL OR actor_id = ?) \
         AND (? IS NULL OR target_type = ?) \
         AND (? IS NULL OR created_at < ? OR (? IS NOT NULL AND created_at = ? AND id < ?)) \
         ORDER BY created_at DESC, id DESC LIMIT ?",
    )
    .bind(server.get())
    .bind(&query.action)
    .bind(&query.action)
    .bind(query.actor_id.map(|id| id.get()))
    .bind(query.actor_id.map(|id| id.get()))
    .bind(&query.target_type)
    .bind(&query.target_type)
    .bind(query.before.map(|t| t.as_micros()))
    .bind(query.before.map(|t| t.as_micros()))
    .bind(query.before_id)
    .bind(query.before.map(|t| t.as_micros()))
    .bind(query.before_id)
    .bind(query.limit.max(0))
    .fetch_all(pool)
    .await?;
    rows(&found, audit_row)
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn audit_logs(
        &self,
        server: ServerId,
        query: &AuditLogFilter,
    ) -> StoreResult<Vec<AuditRecord>> {
        audit_logs(&self.pool, server, query).await
    }
}
