//! Go Live sessions.

use concord_protocol::{ChannelId, GoLiveInfo, GoLiveQuality, GoLiveSession, UserId};
use sqlx::postgres::{PgPool, PgRow};

use super::PostgresStore;
use super::{get, id, rows, ts, write_tx};
use crate::GoLiveStore;
use crate::{GoLiveStart, StoreError, StoreResult};
use async_trait::async_trait;

fn go_live_row(row: &PgRow) -> StoreResult<GoLiveInfo> {
    let quality: String = get(row, "quality")?;
    Ok(GoLiveInfo {
        channel_id: id(row, "channel_id")?,
        session: GoLiveSession {
            broadcaster_id: id(row, "broadcaster_id")?,
            quality: GoLiveQuality::parse(&quality).ok_or(StoreError::Corrupt("quality"))?,
            started_at: ts(row, "started_at")?,
        },
    })
}

pub(super) async fn go_live(pool: &PgPool, channel: ChannelId) -> StoreResult<Option<GoLiveInfo>> {
    let row = sqlx::query(
        "SELECT channel_id, broadcaster_id, quality, started_at FROM go_live_sessions \
         WHERE channel_id = $1",
    )
    .bind(channel.get())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(go_live_row).transpose()
}

pub(super) async fn start_go_live(pool: &PgPool, info: &GoLiveInfo) -> StoreResult<GoLiveStart> {
    let broadcaster = info.session.broadcaster_id;
    let mut tx = write_tx(pool).await?;
    // Starts in one channel take turns on the channel's row (NO KEY: inserts that only
    // reference the channel, such as a voice state, need not wait): two broadcasters
    // cannot both find it free.
    sqlx::query("SELECT 1 FROM channels WHERE id = $1 FOR NO KEY UPDATE")
        .bind(info.channel_id.get())
        .fetch_optional(&mut *tx)
        .await?;
    // The broadcaster's voice state is held (`FOR SHARE`) until the session is stored:
    // a move or leave waits, and its `end_stale_go_live` then sees the session.
    let present =
        sqlx::query("SELECT 1 FROM voice_states WHERE user_id = $1 AND channel_id = $2 FOR SHARE")
            .bind(broadcaster.get())
            .bind(info.channel_id.get())
            .fetch_optional(&mut *tx)
            .await?;
    if present.is_none() {
        return Ok(GoLiveStart::NotInChannel);
    }
    let current = sqlx::query(
        "SELECT channel_id, broadcaster_id, quality, started_at FROM go_live_sessions \
         WHERE channel_id = $1",
    )
    .bind(info.channel_id.get())
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(current) = current.as_ref().map(go_live_row).transpose()?
        && current.session.broadcaster_id != broadcaster
    {
        return Ok(GoLiveStart::Taken(current));
    }
    sqlx::query(
        "INSERT INTO go_live_sessions (channel_id, broadcaster_id, quality, started_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (channel_id) DO UPDATE SET \
         quality = excluded.quality, started_at = excluded.started_at",
    )
    .bind(info.channel_id.get())
    .bind(broadcaster.get())
    .bind(info.session.quality.as_str())
    .bind(info.session.started_at.as_micros())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(GoLiveStart::Started)
}

pub(super) async fn stop_go_live(
    pool: &PgPool,
    channel: ChannelId,
    broadcaster: UserId,
) -> StoreResult<bool> {
    let done =
        sqlx::query("DELETE FROM go_live_sessions WHERE channel_id = $1 AND broadcaster_id = $2")
            .bind(channel.get())
            .bind(broadcaster.get())
            .execute(pool)
            .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn end_stale_go_live(pool: &PgPool, user: UserId) -> StoreResult<Vec<GoLiveInfo>> {
    // `IS DISTINCT FROM` is true against the NULL of "in no voice channel at all".
    let ended = sqlx::query(
        "DELETE FROM go_live_sessions WHERE broadcaster_id = $1 \
         AND channel_id IS DISTINCT FROM \
         (SELECT channel_id FROM voice_states WHERE user_id = $1) \
         RETURNING channel_id, broadcaster_id, quality, started_at",
    )
    .bind(user.get())
    .fetch_all(pool)
    .await?;
    rows(&ended, go_live_row)
}

#[async_trait]
impl GoLiveStore for PostgresStore {
    async fn go_live(&self, channel: ChannelId) -> StoreResult<Option<GoLiveInfo>> {
        go_live(&self.pool, channel).await
    }

    async fn start_go_live(&self, info: &GoLiveInfo) -> StoreResult<GoLiveStart> {
        start_go_live(&self.pool, info).await
    }

    async fn stop_go_live(&self, channel: ChannelId, broadcaster: UserId) -> StoreResult<bool> {
        stop_go_live(&self.pool, channel, broadcaster).await
    }

    async fn end_stale_go_live(&self, user: UserId) -> StoreResult<Vec<GoLiveInfo>> {
        end_stale_go_live(&self.pool, user).await
    }
}
