//! Direct-message channels and their messages.

use std::sync::LazyLock;

use concord_protocol::{DirectMessage, DmChannelId, Timestamp, UserId};
use sqlx::{
    AssertSqlSafe,
    sqlite::{SqlitePool, SqliteRow},
};
use uuid::Uuid;

use super::{SqliteStore, of_user};
use super::{
    get, id, opt_id, opt_ts, read_tx, rows, ts,
    users::{USER_COLS_U, user_row},
    write_tx,
};
use crate::DmStore;
use crate::{DmChannelRecord, DmChannelSummary, StoreResult};
use async_trait::async_trait;

/// The columns of a direct message row, as [`dm_message_row`] reads them.
const DM_MESSAGE_COLS: &str = "id, channel_id, author_id, content, edited_at, created_at";

fn dm_channel_row(row: &SqliteRow) -> StoreResult<DmChannelRecord> {
    Ok(DmChannelRecord {
        id: id(row, "id")?,
        user_a: id(row, "user_a")?,
        user_b: id(row, "user_b")?,
        created_at: ts(row, "created_at")?,
    })
}

fn dm_message_row(row: &SqliteRow) -> StoreResult<DirectMessage> {
    Ok(DirectMessage {
        id: id(row, "id")?,
        channel_id: id(row, "channel_id")?,
        author_id: opt_id(row, "author_id")?,
        content: get(row, "content")?,
        edited_at: opt_ts(row, "edited_at")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(super) async fn open_dm_channel(
    pool: &SqlitePool,
    channel: &DmChannelRecord,
) -> StoreResult<(DmChannelRecord, bool)> {
    let (a, b) = if channel.user_a <= channel.user_b {
        (channel.user_a, channel.user_b)
    } else {
        (channel.user_b, channel.user_a)
    };
    let mut tx = write_tx(pool).await?;
    let done = sqlx::query(
        "INSERT INTO dm_channels (id, user_a, user_b, created_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT (user_a, user_b) DO NOTHING",
    )
    .bind(channel.id.get())
    .bind(a.get())
    .bind(b.get())
    .bind(channel.created_at.as_micros())
    .execute(&mut *tx)
    .await?;
    let row = sqlx::query(
        "SELECT id, user_a, user_b, created_at FROM dm_channels WHERE user_a = ? AND user_b = ?",
    )
    .bind(a.get())
    .bind(b.get())
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((dm_channel_row(&row)?, done.rows_affected() == 1))
}

pub(super) async fn dm_channel(
    pool: &SqlitePool,
    id: DmChannelId,
) -> StoreResult<Option<DmChannelRecord>> {
    let row = sqlx::query("SELECT id, user_a, user_b, created_at FROM dm_channels WHERE id = ?")
        .bind(id.get())
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(dm_channel_row).transpose()
}

/// The DM channels of user `?1` with their recipients, as [`dm_summary_row`] reads
/// them: newest message first, channels without one last.
pub(super) static DMS_OF_USER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT dc.id AS dm_id, dc.user_a AS dm_user_a, dc.user_b AS dm_user_b, \
         dc.created_at AS dm_created_at, \
         (SELECT MAX(d.created_at) FROM dm_messages d \
          WHERE d.channel_id = dc.id AND d.deleted = 0) AS last_message_at, {USER_COLS_U} \
         FROM dm_channels dc \
         JOIN users u ON u.id = CASE WHEN dc.user_a = ?1 THEN dc.user_b ELSE dc.user_a END \
         WHERE dc.user_a = ?1 OR dc.user_b = ?1 \
         ORDER BY (last_message_at IS NULL) ASC, last_message_at DESC, \
         dc.created_at DESC, dc.id DESC"
    )
});

pub(super) fn dm_summary_row(row: &SqliteRow) -> StoreResult<DmChannelSummary> {
    Ok(DmChannelSummary {
        channel: DmChannelRecord {
            id: id(row, "dm_id")?,
            user_a: id(row, "dm_user_a")?,
            user_b: id(row, "dm_user_b")?,
            created_at: ts(row, "dm_created_at")?,
        },
        recipient: user_row(row)?,
        last_message_at: opt_ts(row, "last_message_at")?,
    })
}

pub(super) async fn create_dm_message(
    pool: &SqlitePool,
    message: &DirectMessage,
    node: Option<Uuid>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO dm_messages (id, channel_id, author_id, content, edited_at, created_at, \
         node_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(message.id.get())
    .bind(message.channel_id.get())
    .bind(message.author_id.map(UserId::get))
    .bind(&message.content)
    .bind(message.edited_at.map(Timestamp::as_micros))
    .bind(message.created_at.as_micros())
    .bind(node)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn dm_messages_of_node(
    pool: &SqlitePool,
    node: Uuid,
    since: Uuid,
    limit: i64,
) -> StoreResult<Vec<DirectMessage>> {
    let mut tx = read_tx(pool).await?;
    let found = sqlx::query(AssertSqlSafe(format!(
        "SELECT {DM_MESSAGE_COLS} FROM dm_messages WHERE id >= ? AND node_id = ? AND deleted = 0 ORDER BY id DESC LIMIT ?"
    )))
    .bind(since)
    .bind(node)
    .bind(limit.max(0))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    rows(&found, dm_message_row)
}

pub(super) async fn dm_messages(
    pool: &SqlitePool,
    channel: DmChannelId,
    before: Option<Uuid>,
    limit: i64,
) -> StoreResult<Vec<DirectMessage>> {
    let limit = limit.max(0);
    let mut tx = read_tx(pool).await?;
    let found = match before {
        None => {
            sqlx::query(AssertSqlSafe(format!(
                "SELECT {DM_MESSAGE_COLS} FROM dm_messages WHERE channel_id = ? AND deleted = 0 \
                 ORDER BY created_at DESC, id DESC LIMIT ?"
            )))
            .bind(channel.get())
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?
        }
        Some(cursor) => {
            let anchor =
                sqlx::query("SELECT created_at FROM dm_messages WHERE id = ? AND channel_id = ?")
                    .bind(cursor)
                    .bind(channel.get())
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(anchor) = anchor else {
                tx.commit().await?;
                return Ok(Vec::new());
            };
            sqlx::query(AssertSqlSafe(format!(
                "SELECT {DM_MESSAGE_COLS} FROM dm_messages WHERE channel_id = ? AND deleted = 0 \
                 AND (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT ?"
            )))
            .bind(channel.get())
            .bind(get::<i64>(&anchor, "created_at")?)
            .bind(cursor)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?
        }
    };
    tx.commit().await?;
    rows(&found, dm_message_row)
}

#[async_trait]
impl DmStore for SqliteStore {
    async fn open_dm_channel(
        &self,
        channel: &DmChannelRecord,
    ) -> StoreResult<(DmChannelRecord, bool)> {
        open_dm_channel(&self.pool, channel).await
    }

    async fn dm_channel(&self, id: DmChannelId) -> StoreResult<Option<DmChannelRecord>> {
        dm_channel(&self.pool, id).await
    }

    async fn dm_channels_of_user(&self, user: UserId) -> StoreResult<Vec<DmChannelSummary>> {
        of_user(&self.pool, &DMS_OF_USER, user, dm_summary_row).await
    }

    async fn create_dm_message(
        &self,
        message: &DirectMessage,
        node: Option<Uuid>,
    ) -> StoreResult<()> {
        create_dm_message(&self.pool, message, node).await
    }

    async fn dm_messages_of_node(
        &self,
        node: Uuid,
        since: Uuid,
        limit: i64,
    ) -> StoreResult<Vec<DirectMessage>> {
        dm_messages_of_node(&self.pool, node, since, limit).await
    }

    async fn dm_messages(
        &self,
        channel: DmChannelId,
        before: Option<Uuid>,
        limit: i64,
    ) -> StoreResult<Vec<DirectMessage>> {
        dm_messages(&self.pool, channel, before, limit).await
    }
}
