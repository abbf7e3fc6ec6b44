//! Voice states.

use concord_protocol::{ChannelId, Timestamp, UserId, VoiceParticipant, VoiceState};
use sqlx::{
    AssertSqlSafe,
    postgres::{PgPool, PgRow},
};

use super::PostgresStore;
use super::{get, id, opt_id, opt_ts, write_tx};
use crate::VoiceStore;
use crate::{StoreError, StoreResult};
use async_trait::async_trait;

/// The columns of a voice state row, as [`voice_row`] reads them.
const VOICE_COLS: &str = "user_id, channel_id, self_mute, self_deaf, self_video, self_screen, \
    server_mute, server_deaf, joined_at";

fn voice_row(row: &PgRow) -> StoreResult<VoiceState> {
    Ok(VoiceState {
        user_id: id(row, "user_id")?,
        channel_id: opt_id(row, "channel_id")?,
        self_mute: get(row, "self_mute")?,
        self_deaf: get(row, "self_deaf")?,
        self_video: get(row, "self_video")?,
        self_screen: get(row, "self_screen")?,
        server_mute: get(row, "server_mute")?,
        server_deaf: get(row, "server_deaf")?,
        joined_at: opt_ts(row, "joined_at")?,
    })
}

pub(super) async fn voice_state(pool: &PgPool, user: UserId) -> StoreResult<Option<VoiceState>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {VOICE_COLS} FROM voice_states WHERE user_id = $1"
    )))
    .bind(user.get())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(voice_row).transpose()
}

pub(super) async fn voice_participants(
    pool: &PgPool,
    channel: ChannelId,
) -> StoreResult<Vec<VoiceParticipant>> {
    let found = sqlx::query(
        "SELECT v.user_id, v.channel_id, v.self_mute, v.self_deaf, v.self_video, v.self_screen, \
         v.server_mute, v.server_deaf, v.joined_at, u.username \
         FROM voice_states v JOIN users u ON u.id = v.user_id \
         WHERE v.channel_id = $1 ORDER BY v.joined_at ASC, v.user_id ASC",
    )
    .bind(channel.get())
    .fetch_all(pool)
    .await?;
    found
        .iter()
        .map(|row| {
            Ok(VoiceParticipant {
                state: voice_row(row)?,
                username: get(row, "username")?,
            })
        })
        .collect()
}

pub(super) async fn put_voice_state(pool: &PgPool, state: &VoiceState) -> StoreResult<()> {
    // A state without a channel references no voice channel at all.
    let Some(channel) = state.channel_id else {
        return Err(StoreError::NotFound);
    };
    // One upsert: concurrent puts for one user end as one row, the last one's.
    sqlx::query(
        "INSERT INTO voice_states (user_id, channel_id, self_mute, self_deaf, self_video, \
         self_screen, server_mute, server_deaf, joined_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (user_id) DO UPDATE SET channel_id = EXCLUDED.channel_id, \
         self_mute = EXCLUDED.self_mute, self_deaf = EXCLUDED.self_deaf, \
         self_video = EXCLUDED.self_video, self_screen = EXCLUDED.self_screen, \
         server_mute = EXCLUDED.server_mute, server_deaf = EXCLUDED.server_deaf, \
         joined_at = EXCLUDED.joined_at",
    )
    .bind(state.user_id.get())
    .bind(channel.get())
    .bind(state.self_mute)
    .bind(state.self_deaf)
    .bind(state.self_video)
    .bind(state.self_screen)
    .bind(state.server_mute)
    .bind(state.server_deaf)
    .bind(state.joined_at.map(Timestamp::as_micros))
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn delete_voice_state(
    pool: &PgPool,
    user: UserId,
) -> StoreResult<Option<VoiceState>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM voice_states WHERE user_id = $1 RETURNING {VOICE_COLS}"
    )))
    .bind(user.get())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(voice_row).transpose()
}

pub(super) async fn clear_voice_states(pool: &PgPool) -> StoreResult<()> {
    // A Go Live session needs its broadcaster in the channel: none survives either.
    let mut tx = write_tx(pool).await?;
    sqlx::query("DELETE FROM go_live_sessions")
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM voice_states")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

#[async_trait]
impl VoiceStore for PostgresStore {
    async fn voice_state(&self, user: UserId) -> StoreResult<Option<VoiceState>> {
        voice_state(&self.pool, user).await
    }

    async fn voice_participants(&self, channel: ChannelId) -> StoreResult<Vec<VoiceParticipant>> {
        voice_participants(&self.pool, channel).await
    }

    async fn put_voice_state(&self, state: &VoiceState) -> StoreResult<()> {
        put_voice_state(&self.pool, state).await
    }

    async fn delete_voice_state(&self, user: UserId) -> StoreResult<Option<VoiceState>> {
        delete_voice_state(&self.pool, user).await
    }

    async fn clear_voice_states(&self) -> StoreResult<()> {
        clear_voice_states(&self.pool).await
    }
}
