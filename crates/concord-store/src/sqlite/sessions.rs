//! Protocol v2 sessions saved across a restart.

use concord_protocol::Timestamp;
use sqlx::sqlite::SqlitePool;

use super::SqliteStore;
use super::{get, id, ts, write_tx};
use crate::GatewaySessionStore;
use crate::{SavedSession, StoreResult};
use async_trait::async_trait;

pub(super) async fn save(pool: &SqlitePool, sessions: &[SavedSession]) -> StoreResult<()> {
    let mut tx = write_tx(pool).await?;
    for session in sessions {
        // A user deleted meanwhile has nothing to resume: skipped, not an error.
        sqlx::query(
            "INSERT INTO gateway_sessions (id, user_id, expires_at, state) \
             SELECT ?, id, ?, ? FROM users WHERE id = ? \
             ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, \
             expires_at = excluded.expires_at, state = excluded.state",
        )
        .bind(&session.id)
        .bind(session.expires_at.as_micros())
        .bind(&session.state)
        .bind(session.user_id.get())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn take(pool: &SqlitePool, now: Timestamp) -> StoreResult<Vec<SavedSession>> {
    let mut tx = write_tx(pool).await?;
    let rows = sqlx::query(
        "SELECT id, user_id, expires_at, state FROM gateway_sessions \
         WHERE expires_at > ? ORDER BY id",
    )
    .bind(now.as_micros())
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM gateway_sessions")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    rows.iter()
        .map(|row| {
            Ok(SavedSession {
                id: get(row, "id")?,
                user_id: id(row, "user_id")?,
                expires_at: ts(row, "expires_at")?,
                state: get(row, "state")?,
            })
        })
        .collect()
}

#[async_trait]
impl GatewaySessionStore for SqliteStore {
    async fn save_gateway_sessions(&self, sessions: &[SavedSession]) -> StoreResult<()> {
        save(&self.pool, sessions).await
    }

    async fn take_gateway_sessions(&self, now: Timestamp) -> StoreResult<Vec<SavedSession>> {
        take(&self.pool, now).await
    }
}
