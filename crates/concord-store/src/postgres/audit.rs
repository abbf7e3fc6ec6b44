//! The audit log (issue 18 part C): rows written inside the transactions of the
//! actions they record, and keyset pages of them.

use concord_protocol::ServerId;
use sqlx::{
    PgConnection,
    postgres::{PgPool, PgRow},
};

use super::PostgresStore;
use super::{get, opt_id, rows, ts};
use crate::AuditStore;
use crate::{AuditLogFilter, AuditRecord, StoreResult};
use async_trait::async_trait;

/// Inserts `audit` (when given) on `conn`, inside the caller's transaction.
pub(super) async fn insert(
    conn: &mut PgConnection,
    audit: Option<&AuditRecord>,
) -> StoreResult<()> {
    let Some(audit) = audit else {
        return Ok(());
    };
    sqlx::query(
        "INSERT INTO audit_logs (id, server_id, actor_id, action, target_type, target_id, \
         details, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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

/// Sets the key `$2` of the JSON object `$1` (text) to the string `$3`, keeping the
/// other members and their order and writing the object compactly (`{"k":v,...}`),
/// as SQLite's `json_set` does; a new key goes last. (`jsonb_set` would reorder the
/// keys and add spaces.)
const JSON_SET_KEY: &str = "SELECT '{' || string_agg(to_json(k)::text || ':' || v, ',' ORDER BY o) \
     || '}' FROM ( \
       SELECT e.key AS k, \
              CASE WHEN e.key = $2 THEN to_json($3::text)::text ELSE e.value::text END AS v, \
              e.o \
       FROM json_each($1::json) WITH ORDINALITY AS e(key, value, o) \
       UNION ALL \
       SELECT $2, to_json($3::text)::text, 9223372036854775807 \
       WHERE NOT EXISTS (SELECT 1 FROM json_each($1::json) AS f WHERE f.key = $2) \
     ) AS members";

/// [`insert`], with the key `key` of the details set to `id` (as a string): for an
/// id only known inside the transaction.
pub(super) async fn insert_with_id(
    conn: &mut PgConnection,
    audit: Option<&AuditRecord>,
    key: &str,
    id: uuid::Uuid,
) -> StoreResult<()> {
    let Some(audit) = audit else {
        return Ok(());
    };
    let details: String = sqlx::query_scalar(JSON_SET_KEY)
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

fn audit_row(row: &PgRow) -> StoreResult<AuditRecord> {
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
    pool: &PgPool,
    server: ServerId,
    query: &AuditLogFilter,
) -> StoreResult<Vec<AuditRecord>> {
    // Each filter is `$n IS NULL OR …`, so one statement (and its indexes) serves all.
    let found = sqlx::query(
        "SELECT id, server_id, actor_id, action, target_type, target_id, details, created_at \
         FROM audit_logs WHERE server_id = $1 \
         AND ($2::text IS NULL OR action = $2) \
         AND ($3::uuid IS NULL OR actor_id = $3) \
         AND ($4::text IS NULL OR target_type = $4) \
         AND ($5::bigint IS NULL OR created_at < $5 \
              OR ($6::uuid IS NOT NULL AND created_at = $5 AND id < $6)) \
         ORDER BY created_at DESC, id DESC LIMIT $7",
    )
    .bind(server.get())
    .bind(&query.action)
    .bind(query.actor_id.map(|id| id.get()))
    .bind(&query.target_type)
    .bind(query.before.map(|t| t.as_micros()))
    .bind(query.before_id)
    .bind(query.limit.max(0))
    .fetch_all(pool)
    .await?;
    rows(&found, audit_row)
}

#[async_trait]
impl AuditStore for PostgresStore {
    async fn audit_logs(
        &self,
        server: ServerId,
        query: &AuditLogFilter,
    ) -> StoreResult<Vec<AuditRecord>> {
        audit_logs(&self.pool, server, query).await
    }
}
