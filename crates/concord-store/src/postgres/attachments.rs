//! Attachments (their rows; the bytes live in the server's file store) and the purge
//! journal of files whose rows are gone.

use concord_protocol::MessageId;
use sqlx::{
    AssertSqlSafe,
    postgres::{PgPool, PgRow},
};
use uuid::Uuid;

use super::PostgresStore;
use super::{get, id, opt_id, rows, ts, write_tx};
use crate::AttachmentStore;
use crate::{AttachmentAddition, AttachmentRecord, FilePurge, StoreResult};
use async_trait::async_trait;

/// The columns of an attachment row, as [`attachment_row`] reads them.
const COLS: &str =
    "id, message_id, uploader_id, filename, stored_name, file_size, mime_type, created_at";

fn attachment_row(row: &PgRow) -> StoreResult<AttachmentRecord> {
    Ok(AttachmentRecord {
        id: get(row, "id")?,
        message_id: id(row, "message_id")?,
        uploader_id: opt_id(row, "uploader_id")?,
        filename: get(row, "filename")?,
        stored_name: get(row, "stored_name")?,
        file_size: get(row, "file_size")?,
        mime_type: get(row, "mime_type")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(super) async fn attachments(
    pool: &PgPool,
    message: MessageId,
) -> StoreResult<Vec<AttachmentRecord>> {
    let found = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLS} FROM attachments WHERE message_id = $1 ORDER BY created_at, position"
    )))
    .bind(message.get())
    .fetch_all(pool)
    .await?;
    rows(&found, attachment_row)
}

pub(super) async fn attachment(
    pool: &PgPool,
    message: MessageId,
    stored_name: &str,
) -> StoreResult<Option<AttachmentRecord>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLS} FROM attachments WHERE message_id = $1 AND stored_name = $2"
    )))
    .bind(message.get())
    .bind(stored_name)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(attachment_row).transpose()
}

pub(super) async fn add_attachments(
    pool: &PgPool,
    message: MessageId,
    attachments: &[AttachmentRecord],
    limit: i64,
) -> StoreResult<AttachmentAddition> {
    let mut tx = write_tx(pool).await?;
    // The uploaders first (users before the message), as the inserts' foreign keys
    // would, in one order.
    let mut uploaders: Vec<Uuid> = attachments
        .iter()
        .filter_map(|a| a.uploader_id.map(|u| u.get()))
        .collect();
    uploaders.sort_unstable();
    uploaders.dedup();
    if !uploaders.is_empty() {
        sqlx::query("SELECT 1 FROM users WHERE id = ANY($1) ORDER BY id FOR KEY SHARE")
            .bind(&uploaders)
            .execute(&mut *tx)
            .await?;
    }
    // The message row is locked before counting: of two batches racing for the last
    // places, the second waits and then counts the first's rows (Concord X2); a
    // concurrent delete of the message waits for this batch, then takes it too.
    let deleted: Option<bool> =
        sqlx::query_scalar("SELECT deleted FROM messages WHERE id = $1 FOR NO KEY UPDATE")
            .bind(message.get())
            .fetch_optional(&mut *tx)
            .await?;
    if deleted != Some(false) {
        return Ok(AttachmentAddition::MessageGone);
    }
    let held = sqlx::query(
        "SELECT COUNT(*) AS held, COALESCE(MAX(position), -1) AS last \
         FROM attachments WHERE message_id = $1",
    )
    .bind(message.get())
    .fetch_one(&mut *tx)
    .await?;
    let count: i64 = get(&held, "held")?;
    let last: i64 = get(&held, "last")?;
    if count + attachments.len() as i64 > limit {
        return Ok(AttachmentAddition::LimitReached);
    }
    for (n, attachment) in attachments.iter().enumerate() {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO attachments ({COLS}, position) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        )))
        .bind(attachment.id)
        .bind(message.get())
        .bind(attachment.uploader_id.map(|u| u.get()))
        .bind(&attachment.filename)
        .bind(&attachment.stored_name)
        .bind(attachment.file_size)
        .bind(&attachment.mime_type)
        .bind(attachment.created_at.as_micros())
        .bind(last + 1 + n as i64)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(AttachmentAddition::Added)
}

pub(super) async fn file_purges(pool: &PgPool, limit: i64) -> StoreResult<Vec<FilePurge>> {
    let found = sqlx::query(
        "SELECT seq, message_id, stored_name FROM attachment_purges ORDER BY seq LIMIT $1",
    )
    .bind(limit.max(0))
    .fetch_all(pool)
    .await?;
    rows(&found, |row| {
        Ok(FilePurge {
            seq: get(row, "seq")?,
            message_id: id(row, "message_id")?,
            stored_name: get(row, "stored_name")?,
        })
    })
}

pub(super) async fn forget_file_purges(pool: &PgPool, done: &[i64]) -> StoreResult<()> {
    if done.is_empty() {
        return Ok(());
    }
    sqlx::query("DELETE FROM attachment_purges WHERE seq = ANY($1)")
        .bind(done)
        .execute(pool)
        .await?;
    Ok(())
}

#[async_trait]
impl AttachmentStore for PostgresStore {
    async fn attachments(&self, message: MessageId) -> StoreResult<Vec<AttachmentRecord>> {
        attachments(&self.pool, message).await
    }

    async fn attachment(
        &self,
        message: MessageId,
        stored_name: &str,
    ) -> StoreResult<Option<AttachmentRecord>> {
        attachment(&self.pool, message, stored_name).await
    }

    async fn add_attachments(
        &self,
        message: MessageId,
        records: &[AttachmentRecord],
        limit: i64,
    ) -> StoreResult<AttachmentAddition> {
        add_attachments(&self.pool, message, records, limit).await
    }

    async fn file_purges(&self, limit: i64) -> StoreResult<Vec<FilePurge>> {
        file_purges(&self.pool, limit).await
    }

    async fn forget_file_purges(&self, done: &[i64]) -> StoreResult<()> {
        forget_file_purges(&self.pool, done).await
    }
}
