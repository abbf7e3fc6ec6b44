//! Outbound webhooks (issue 18 part C): their rows and delivery bookkeeping.

use concord_protocol::{ServerId, Timestamp};
use sqlx::{
    AssertSqlSafe,
    sqlite::{SqlitePool, SqliteRow},
};

use super::SqliteStore;
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

fn webhook_row(row: &SqliteRow) -> StoreResult<WebhookRecord> {
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

pub(super) async fn webhooks(
    pool: &SqlitePool,
    server: ServerId,
) -> StoreResult<Vec<WebhookRecord>> {
    let found = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLS} FROM webhooks WHERE server_id = ? ORDER BY created_at, id"
    )))
    .bind(server.get())
    .fetch_all(pool)
    .await?;
    rows(&found, webhook_row)
}

pub(super) async fn webhook(
    pool: &SqlitePool,
    server: ServerId,
    webhook: uuid::Uuid,
) -> StoreResult<Option<WebhookRecord>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLS} FROM webhooks WHERE id = ? AND server_id = ?"
    )))
    .bind(webhook)
    .bind(server.get())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(webhook_row).transpose()
}

pub(super) async fn create_webhook(
    pool: &SqlitePool,
    webhook: &WebhookRecord,
    limit: i64,
) -> StoreResult<bool> {
    // The write lock is taken before counting: of two creations racing for the last
    // slot, the second counts the first's row (X14).
    let mut tx = write_tx(pool).await?;
    let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM servers WHERE id = ?")
        .bind(webhook.server_id.get())
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_none() {
        return Err(StoreError::NotFound);
    }
    let held: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhooks WHERE server_id = ?")
        .bind(webhook.server_id.get())
        .fetch_one(&mut *tx)
        .await?;
    if held >= limit {
        return Ok(false);
    }
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO webhooks ({COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
    pool: &SqlitePool,
    server: ServerId,
    webhook: uuid::Uuid,
    patch: &WebhookPatch,
    at: Timestamp,
) -> StoreResult<Option<WebhookRecord>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "UPDATE webhooks SET name = COALESCE(?, name), url = COALESCE(?, url), \
         event_types = COALESCE(?, event_types), enabled = COALESCE(?, enabled), \
         updated_at = ? WHERE id = ? AND server_id = ? RETURNING {COLS}"
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
    pool: &SqlitePool,
    server: ServerId,
    webhook: uuid::Uuid,
) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM webhooks WHERE id = ? AND server_id = ?")
        .bind(webhook)
        .bind(server.get())
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn record_webhook_delivery(
    pool: &SqlitePool,
    webhook: uuid::Uuid,
    delivered: bool,
    at: Timestamp,
) -> StoreResult<()> {
    let query = if delivered {
        sqlx::query("UPDATE webhooks SET delivery_failures = 0, last_used_at = ? WHERE id = ?")
            .bind(at.as_micros())
    } else {
        sqlx::query("UPDATE webhooks SET delivery_failures = delivery_failures + 1 WHERE id = ?")
    };
    query.bind(webhook).execute(pool).await?;
    Ok(())
}

#[async_trait]
impl WebhookStore for SqliteStore {
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
