//! Custom emojis (their rows; the images live in the server's file store).

use concord_protocol::{CustomEmojiId, ServerId};
use sqlx::{
    AssertSqlSafe,
    postgres::{PgPool, PgRow},
};

use super::PostgresStore;
use super::{get, id, rows, ts, write_tx};
use crate::EmojiStore;
use crate::{CustomEmojiRecord, EmojiCreation, StoreResult};
use async_trait::async_trait;

/// The columns of an emoji row, as [`emoji_row`] reads them.
const EMOJI_COLS: &str = "id, server_id, created_by, name, content_type, file_size, created_at";

fn emoji_row(row: &PgRow) -> StoreResult<CustomEmojiRecord> {
    Ok(CustomEmojiRecord {
        id: id(row, "id")?,
        server_id: id(row, "server_id")?,
        created_by: id(row, "created_by")?,
        name: get(row, "name")?,
        content_type: get(row, "content_type")?,
        file_size: get(row, "file_size")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(super) async fn custom_emojis(
    pool: &PgPool,
    server: ServerId,
) -> StoreResult<Vec<CustomEmojiRecord>> {
    let found = sqlx::query(AssertSqlSafe(format!(
        "SELECT {EMOJI_COLS} FROM custom_emojis WHERE server_id = $1 ORDER BY created_at, id"
    )))
    .bind(server.get())
    .fetch_all(pool)
    .await?;
    rows(&found, emoji_row)
}

pub(super) async fn custom_emoji(
    pool: &PgPool,
    emoji: CustomEmojiId,
) -> StoreResult<Option<CustomEmojiRecord>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {EMOJI_COLS} FROM custom_emojis WHERE id = $1"
    )))
    .bind(emoji.get())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(emoji_row).transpose()
}

pub(super) async fn create_custom_emoji(
    pool: &PgPool,
    emoji: &CustomEmojiRecord,
    limit: i64,
) -> StoreResult<EmojiCreation> {
    // READ COMMITTED: the server row is locked (NO KEY UPDATE: joins and channel
    // inserts referencing it go on) before counting, so of two uploads racing for the
    // last slot or for one name, the second counts the first's row. The creator's row
    // is key-share locked first (users before servers), as the insert's foreign key
    // check would otherwise do after the server lock.
    let mut tx = write_tx(pool).await?;
    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR KEY SHARE")
        .bind(emoji.created_by.get())
        .execute(&mut *tx)
        .await?;
    sqlx::query("SELECT 1 FROM servers WHERE id = $1 FOR NO KEY UPDATE")
        .bind(emoji.server_id.get())
        .execute(&mut *tx)
        .await?;
    let counts = sqlx::query(
        "SELECT COUNT(*) AS held, COUNT(*) FILTER (WHERE name = $2) AS same_name \
         FROM custom_emojis WHERE server_id = $1",
    )
    .bind(emoji.server_id.get())
    .bind(&emoji.name)
    .fetch_one(&mut *tx)
    .await?;
    if get::<i64>(&counts, "held")? >= limit {
        return Ok(EmojiCreation::LimitReached);
    }
    if get::<i64>(&counts, "same_name")? > 0 {
        return Ok(EmojiCreation::NameTaken);
    }
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO custom_emojis ({EMOJI_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    )))
    .bind(emoji.id.get())
    .bind(emoji.server_id.get())
    .bind(emoji.created_by.get())
    .bind(&emoji.name)
    .bind(&emoji.content_type)
    .bind(emoji.file_size)
    .bind(emoji.created_at.as_micros())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(EmojiCreation::Created)
}

pub(super) async fn delete_custom_emoji(
    pool: &PgPool,
    server: ServerId,
    emoji: CustomEmojiId,
) -> StoreResult<Option<CustomEmojiRecord>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM custom_emojis WHERE id = $1 AND server_id = $2 RETURNING {EMOJI_COLS}"
    )))
    .bind(emoji.get())
    .bind(server.get())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(emoji_row).transpose()
}

#[async_trait]
impl EmojiStore for PostgresStore {
    async fn custom_emojis(&self, server: ServerId) -> StoreResult<Vec<CustomEmojiRecord>> {
        custom_emojis(&self.pool, server).await
    }

    async fn custom_emoji(&self, id: CustomEmojiId) -> StoreResult<Option<CustomEmojiRecord>> {
        custom_emoji(&self.pool, id).await
    }

    async fn create_custom_emoji(
        &self,
        emoji: &CustomEmojiRecord,
        limit: i64,
    ) -> StoreResult<EmojiCreation> {
        create_custom_emoji(&self.pool, emoji, limit).await
    }

    async fn delete_custom_emoji(
        &self,
        server: ServerId,
        id: CustomEmojiId,
    ) -> StoreResult<Option<CustomEmojiRecord>> {
        delete_custom_emoji(&self.pool, server, id).await
    }
}
