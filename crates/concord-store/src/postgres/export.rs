//! The reads of a server export (issue 18 part B): keyset pages in (time, id) order,
//! so that an export of any size reads a bounded page at a time and never skips or
//! repeats a row that exists for the whole export.
//!
//! Each page is one statement. A row-value comparison with the cursor lets PostgreSQL
//! walk the (owner, time, id) indexes; no cursor reads from (`i64::MIN`, nil id),
//! below every row (UUIDs compare bytewise, as SQLite's blobs do).

use concord_protocol::{ChannelId, DmChannelId, ServerId, UserId};
use sqlx::postgres::{PgPool, PgRow};
use uuid::Uuid;

use super::PostgresStore;
use super::{get, id, opt_id, opt_ts, rows, ts};
use crate::ExportStore;
use crate::{
    ExportCursor, ExportDmChannelRecord, ExportDmMessageRecord, ExportMemberRecord,
    ExportMessageRecord, StoreResult,
};
use async_trait::async_trait;

/// The bound values of `after` (the start when `None`).
fn start(after: Option<&ExportCursor>) -> (i64, Uuid) {
    after.map_or((i64::MIN, Uuid::nil()), |c| (c.at.as_micros(), c.id))
}

fn member_row(row: &PgRow) -> StoreResult<ExportMemberRecord> {
    Ok(ExportMemberRecord {
        user_id: id(row, "user_id")?,
        username: get(row, "username")?,
        joined_at: ts(row, "joined_at")?,
    })
}

pub(super) async fn export_members(
    pool: &PgPool,
    server: ServerId,
    after: Option<&ExportCursor>,
    limit: i64,
) -> StoreResult<Vec<ExportMemberRecord>> {
    let (at, after_id) = start(after);
    let found = sqlx::query(
        "SELECT sm.user_id, u.username, sm.joined_at FROM server_members sm \
         JOIN users u ON u.id = sm.user_id \
         WHERE sm.server_id = $1 AND (sm.joined_at, sm.user_id) > ($2, $3) \
         ORDER BY sm.joined_at, sm.user_id LIMIT $4",
    )
    .bind(server.get())
    .bind(at)
    .bind(after_id)
    .bind(limit.max(0))
    .fetch_all(pool)
    .await?;
    rows(&found, member_row)
}

fn message_row(row: &PgRow) -> StoreResult<ExportMessageRecord> {
    Ok(ExportMessageRecord {
        id: id(row, "id")?,
        author_id: opt_id(row, "author_id")?,
        author_username: get(row, "author_username")?,
        content: get(row, "content")?,
        reply_to: opt_id(row, "reply_to")?,
        edited_at: opt_ts(row, "edited_at")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(super) async fn export_messages(
    pool: &PgPool,
    channel: ChannelId,
    after: Option<&ExportCursor>,
    limit: i64,
) -> StoreResult<Vec<ExportMessageRecord>> {
    let (at, after_id) = start(after);
    let found = sqlx::query(
        "SELECT m.id, m.author_id, u.username AS author_username, m.content, m.reply_to, \
         m.edited_at, m.created_at FROM messages m \
         LEFT JOIN users u ON u.id = m.author_id \
         WHERE m.channel_id = $1 AND (m.created_at, m.id) > ($2, $3) AND NOT m.deleted \
         ORDER BY m.created_at, m.id LIMIT $4",
    )
    .bind(channel.get())
    .bind(at)
    .bind(after_id)
    .bind(limit.max(0))
    .fetch_all(pool)
    .await?;
    rows(&found, message_row)
}

fn dm_channel_row(row: &PgRow) -> StoreResult<ExportDmChannelRecord> {
    Ok(ExportDmChannelRecord {
        id: id(row, "id")?,
        partner_id: id(row, "partner_id")?,
        partner_username: get(row, "partner_username")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(super) async fn export_dm_channels(
    pool: &PgPool,
    user: UserId,
    after: Option<&ExportCursor>,
    limit: i64,
) -> StoreResult<Vec<ExportDmChannelRecord>> {
    let (at, after_id) = start(after);
    let found = sqlx::query(
        "SELECT d.id, d.created_at, u.id AS partner_id, u.username AS partner_username \
         FROM dm_channels d \
         JOIN users u ON u.id = CASE WHEN d.user_a = $1 THEN d.user_b ELSE d.user_a END \
         WHERE (d.user_a = $1 OR d.user_b = $1) AND (d.created_at, d.id) > ($2, $3) \
         ORDER BY d.created_at, d.id LIMIT $4",
    )
    .bind(user.get())
    .bind(at)
    .bind(after_id)
    .bind(limit.max(0))
    .fetch_all(pool)
    .await?;
    rows(&found, dm_channel_row)
}

fn dm_message_row(row: &PgRow) -> StoreResult<ExportDmMessageRecord> {
    Ok(ExportDmMessageRecord {
        id: id(row, "id")?,
        author_id: opt_id(row, "author_id")?,
        author_username: get(row, "author_username")?,
        content: get(row, "content")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(super) async fn export_dm_messages(
    pool: &PgPool,
    channel: DmChannelId,
    after: Option<&ExportCursor>,
    limit: i64,
) -> StoreResult<Vec<ExportDmMessageRecord>> {
    let (at, after_id) = start(after);
    let found = sqlx::query(
        "SELECT m.id, m.author_id, u.username AS author_username, m.content, m.created_at \
         FROM dm_messages m \
         LEFT JOIN users u ON u.id = m.author_id \
         WHERE m.channel_id = $1 AND (m.created_at, m.id) > ($2, $3) AND NOT m.deleted \
         ORDER BY m.created_at, m.id LIMIT $4",
    )
    .bind(channel.get())
    .bind(at)
    .bind(after_id)
    .bind(limit.max(0))
    .fetch_all(pool)
    .await?;
    rows(&found, dm_message_row)
}

#[async_trait]
impl ExportStore for PostgresStore {
    async fn export_members(
        &self,
        server: ServerId,
        after: Option<&ExportCursor>,
        limit: i64,
    ) -> StoreResult<Vec<ExportMemberRecord>> {
        export_members(&self.pool, server, after, limit).await
    }

    async fn export_messages(
        &self,
        channel: ChannelId,
        after: Option<&ExportCursor>,
        limit: i64,
    ) -> StoreResult<Vec<ExportMessageRecord>> {
        export_messages(&self.pool, channel, after, limit).await
    }

    async fn export_dm_channels(
        &self,
        user: UserId,
        after: Option<&ExportCursor>,
        limit: i64,
    ) -> StoreResult<Vec<ExportDmChannelRecord>> {
        export_dm_channels(&self.pool, user, after, limit).await
    }

    async fn export_dm_messages(
        &self,
        channel: DmChannelId,
        after: Option<&ExportCursor>,
        limit: i64,
    ) -> StoreResult<Vec<ExportDmMessageRecord>> {
        export_dm_messages(&self.pool, channel, after, limit).await
    }
}
