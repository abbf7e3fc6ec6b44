//! Outbound webhooks (issue 18 part C): their rows and delivery bookkeeping.

use concord_protocol::{ServerId, Timestamp};
use sqlx::{
    AssertSqlSafe,
    postgres::{PgPool, PgRow},
};

use super::PostgresStore;
use super::{get, id, opt_ts, rows, ts, write_tx};
use crate::WebhookStore;
use crate::{StoreError, StoreResult, WebhookPatch, WebhookRecord};
use async_trait::async_trait;

/// The columns of a webhook row, as [`webhook_row`] reads them.
const COLS: &str = "id, server_id, created_by, name, url, secret, event_types, enabled, \
                    delivery_failures, last_used_at, created_at, updated_at";

fn join_types(types: &[String]) -> String {
    types.join(",")
}

fn webhook_row(row: &PgRow) -> StoreResult<WebhookRecord> {
    let types: String = get(row, "event_types")?;
    Ok(WebhookRecord {
        id: get(row, "id")?,
        server_id: id(row, "server_id")?,
        created_by: id(row, "created_by")?,
        name: get(row, "name")?,
        url: get(row, "url")?,
        secret: get(row, "secret")?,
        event_types: types
            .split(',')
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
        enabled: get(row, "enabled")?,
        delivery_failures: get(row, "delivery_failures")?,
        last_used_at: opt_ts(row, "last_used_at")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

pub(super) async fn webhooks(pool: &PgPool, server: ServerId) -> StoreResult<Vec<WebhookRecord>> {
    let found = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLS} FROM webhooks WHERE server_id = $1 ORDER BY created_at, id"
    )))
    .bind(server.get())
    .fetch_all(pool)
    .await?;
    rows(&found, webhook_row)
}

pub(super) async fn webhook(
    pool: &PgPool,
    server: ServerId,
    webhook: uuid::Uuid,
) -> StoreResult<Option<WebhookRecord>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLS} FROM webhooks WHERE id = $1 AND server_id = $2"
    )))
    .bind(webhook)
    .bind(server.get())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(webhook_row).transpose()
}

pub(super) async fn create_webhook(
    pool: &PgPool,
    webhook: &WebhookRecord,
    limit: i64,
) -> StoreResult<bool> {
    let mut tx = write_tx(pool).await?;
    // The creator first (users before servers), as the insert's foreign key would.
    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR KEY SHARE")
        .bind(webhook.created_by.get())
        .execute(&mut *tx)
        .await?;
    // The server row is locked before counting: of two creations racing for the last
    // slot, the second waits and then counts the first's row (X14).
    let exists: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM servers WHERE id = $1 FOR NO KEY UPDATE")
            .bind(webhook.server_id.get())
            .fetch_optional(&mut *tx)
            .await?;
    if exists.is_none() {
        return Err(StoreError::NotFound);
    }
    let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhooks WHERE server_id = $1")
        .bind(webhook.server_id.get())
        .fetch_one(&mut *tx)
        .await?;
    if held >= limit {
        return Ok(false);
    }
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO webhooks ({COLS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    )))
    .bind(webhook.id)
    .bind(webhook.server_id.get())
    .bind(webhook.created_by.get())
    .bind(&webhook.name)
    .bind(&webhook.url)
    .bind(&webhook.secret)
    .bind(join_types(&webhook.event_types))
    .bind(webhook.enabled)
    .bind(webhook.delivery_failures)
    .bind(webhook.last_used_at.map(|t| t.as_micros()))
    .bind(webhook.created_at.as_micros())
    .bind(webhook.updated_at.as_micros())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

pub(super) async fn update_webhook(
    pool: &PgPool,
    server: ServerId,
    webhook: uuid::Uuid,
    patch: &WebhookPatch,
    at: Timestamp,
) -> StoreResult<Option<WebhookRecord>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "UPDATE webhooks SET name = COALESCE($1, name), url = COALESCE($2, url), \
         event_types = COALESCE($3, event_types), enabled = COALESCE($4, enabled), \
         updated_at = $5 WHERE id = $6 AND server_id = $7 RETURNING {COLS}"
    )))
    .bind(&patch.name)
    .bind(&patch.url)
    .bind(patch.event_types.as_deref().map(join_types))
    .bind(patch.enabled)
    .bind(at.as_micros())
    .bind(webhook)
    .bind(server.get())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(webhook_row).transpose()
}

pub(super) async fn delete_webhook(
    pool: &PgPool,
    server: ServerId,
    webhook: uuid::Uuid,
) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM webhooks WHERE id = $1 AND server_id = $2")
        .bind(webhook)
        .bind(server.get())
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn record_webhook_delivery(
    pool: &PgPool,
    webhook: uuid::Uuid,
    delivered: bool,
    at: Timestamp,
) -> StoreResult<()> {
    // Each branch is one statement: the failure count increments atomically.
    let query = if delivered {
        sqlx::query("UPDATE webhooks SET delivery_failures = 0, last_used_at = $1 WHERE id = $2")
            .bind(at.as_micros())
    } else {
        sqlx::query("UPDATE webhooks SET delivery_failures = delivery_failures + 1 WHERE id = $1")
    };
    query.bind(webhook).execute(pool).await?;
    Ok(())
}

#[async_trait]
impl WebhookStore for PostgresStore {
    async fn webhooks(&self, server: ServerId) -> StoreResult<Vec<WebhookRecord>> {
        webhooks(&self.pool, server).await
    }

    async fn webhook(
        &self,
        server: ServerId,
        id: uuid::Uuid,
    ) -> StoreResult<Option<WebhookRecord>> {
        webhook(&self.pool, server, id).await
    }

    async fn create_webhook(&self, webhook: &WebhookRecord, limit: i64) -> StoreResult<bool> {
        create_webhook(&self.pool, webhook, limit).await
    }

    async fn update_webhook(
        &self,
        server: ServerId,
        id: uuid::Uuid,
        patch: &WebhookPatch,
        at: Timestamp,
    ) -> StoreResult<Option<WebhookRecord>> {
        update_webhook(&self.pool, server, id, patch, at).await
    }

    async fn delete_webhook(&self, server: ServerId, id: uuid::Uuid) -> StoreResult<bool> {
        delete_webhook(&self.pool, server, id).await
    }

    async fn record_webhook_delivery(
        &self,
        id: uuid::Uuid,
        delivered: bool,
        at: Timestamp,
    ) -> StoreResult<()> {
        record_webhook_delivery(&self.pool, id, delivered, at).await
    }
}
