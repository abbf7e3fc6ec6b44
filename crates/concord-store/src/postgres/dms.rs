//! Direct-message channels and their messages.

use std::sync::LazyLock;

use concord_protocol::{DirectMessage, DmChannelId, Timestamp, UserId};
use sqlx::{
    AssertSqlSafe,
    postgres::{PgPool, PgRow},
};
use uuid::Uuid;

use super::PostgresStore;
use super::{
    get, id,
    messages::of_user,
    opt_id, opt_ts, read_tx, rows, ts,
    users::{USER_COLS_U, user_row},
};
use crate::DmStore;
use crate::{DmChannelRecord, DmChannelSummary, StoreError, StoreResult};
use async_trait::async_trait;

/// The columns of a DM channel row, as [`dm_channel_row`] reads them.
const DM_CHANNEL_COLS: &str = "id, user_a, user_b, created_at";

/// The columns of a direct message row, as [`dm_message_row`] reads them.
const DM_MESSAGE_COLS: &str = "id, channel_id, author_id, content, edited_at, created_at";

fn dm_channel_row(row: &PgRow) -> StoreResult<DmChannelRecord> {
    Ok(DmChannelRecord {
        id: id(row, "id")?,
        user_a: id(row, "user_a")?,
        user_b: id(row, "user_b")?,
        created_at: ts(row, "created_at")?,
    })
}

fn dm_message_row(row: &PgRow) -> StoreResult<DirectMessage> {
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
    pool: &PgPool,
    channel: &DmChannelRecord,
) -> StoreResult<(DmChannelRecord, bool)> {
    let (a, b) = if channel.user_a <= channel.user_b {
        (channel.user_a, channel.user_b)
    } else {
        (channel.user_b, channel.user_a)
    };
    // No read-then-write: a concurrent open of the same pair waits on the unique
    // index and then does nothing, and the SELECT (a statement of its own, so a fresh
    // snapshot) sees the winner's committed row.
    let inserted = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO dm_channels (id, user_a, user_b, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_a, user_b) DO NOTHING RETURNING {DM_CHANNEL_COLS}"
    )))
    .bind(channel.id.get())
    .bind(a.get())
    .bind(b.get())
    .bind(channel.created_at.as_micros())
    .fetch_optional(pool)
    .await?;
    if let Some(row) = inserted {
        return Ok((dm_channel_row(&row)?, true));
    }
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {DM_CHANNEL_COLS} FROM dm_channels WHERE user_a = $1 AND user_b = $2"
    )))
    .bind(a.get())
    .bind(b.get())
    .fetch_optional(pool)
    .await?;
    // Gone already: one of the pair was deleted in between.
    let row = row.ok_or(StoreError::NotFound)?;
    Ok((dm_channel_row(&row)?, false))
}

pub(super) async fn dm_channel(
    pool: &PgPool,
    id: DmChannelId,
) -> StoreResult<Option<DmChannelRecord>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {DM_CHANNEL_COLS} FROM dm_channels WHERE id = $1"
    )))
    .bind(id.get())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(dm_channel_row).transpose()
}

/// The DM channels of user `$1` with their recipients, as [`dm_summary_row`] reads
/// them: newest message first, channels without one last.
pub(super) static DMS_OF_USER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT dc.id AS dm_id, dc.user_a AS dm_user_a, dc.user_b AS dm_user_b, \
         dc.created_at AS dm_created_at, \
         (SELECT MAX(d.created_at) FROM dm_messages d \
          WHERE d.channel_id = dc.id AND NOT d.deleted) AS last_message_at, {USER_COLS_U} \
         FROM dm_channels dc \
         JOIN users u ON u.id = CASE WHEN dc.user_a = $1 THEN dc.user_b ELSE dc.user_a END \
         WHERE dc.user_a = $1 OR dc.user_b = $1 \
         ORDER BY last_message_at DESC NULLS LAST, dc.created_at DESC, dc.id DESC"
    )
});

pub(super) fn dm_summary_row(row: &PgRow) -> StoreResult<DmChannelSummary> {
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
    pool: &PgPool,
    message: &DirectMessage,
    node: Option<Uuid>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO dm_messages (id, channel_id, author_id, content, edited_at, created_at, \
         node_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
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
    pool: &PgPool,
    node: Uuid,
    since: Uuid,
    limit: i64,
) -> StoreResult<Vec<DirectMessage>> {
    let mut tx = read_tx(pool).await?;
    let found = sqlx::query(AssertSqlSafe(format!(
        "SELECT {DM_MESSAGE_COLS} FROM dm_messages WHERE id >= $1 AND node_id = $2 AND NOT deleted ORDER BY id DESC LIMIT $3"
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
    pool: &PgPool,
    channel: DmChannelId,
    before: Option<Uuid>,
    limit: i64,
) -> StoreResult<Vec<DirectMessage>> {
    let limit = limit.max(0);
    let mut tx = read_tx(pool).await?;
    let found = match before {
        None => {
            sqlx::query(AssertSqlSafe(format!(
                "SELECT {DM_MESSAGE_COLS} FROM dm_messages WHERE channel_id = $1 AND NOT deleted \
                 ORDER BY created_at DESC, id DESC LIMIT $2"
            )))
            .bind(channel.get())
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?
        }
        Some(cursor) => {
            let anchor =
                sqlx::query("SELECT created_at FROM dm_messages WHERE id = $1 AND channel_id = $2")
                    .bind(cursor)
                    .bind(channel.get())
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(anchor) = anchor else {
                tx.commit().await?;
                return Ok(Vec::new());
            };
            sqlx::query(AssertSqlSafe(format!(
                "SELECT {DM_MESSAGE_COLS} FROM dm_messages WHERE channel_id = $1 AND NOT deleted \
                 AND (created_at, id) < ($2, $3) ORDER BY created_at DESC, id DESC LIMIT $4"
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
impl DmStore for PostgresStore {
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
