//! Protocol v2 sessions saved across a restart.

use concord_protocol::Timestamp;
use sqlx::postgres::PgPool;

use super::PostgresStore;
use super::{get, id, ts, write_tx};
use crate::GatewaySessionStore;
use crate::{SavedSession, StoreResult};
use async_trait::async_trait;

pub(super) async fn save(pool: &PgPool, sessions: &[SavedSession]) -> StoreResult<()> {
    let mut tx = write_tx(pool).await?;
    for session in sessions {
        // A user deleted meanwhile has nothing to resume: skipped, not an error. The
        // user row is key-share locked, so a delete cannot slip in between the read
        // and the insert.
        sqlx::query(
            "INSERT INTO gateway_sessions (id, user_id, expires_at, state) \
             SELECT $1, id, $2, $3 FROM users WHERE id = $4 FOR KEY SHARE \
             ON CONFLICT (id) DO UPDATE SET user_id = EXCLUDED.user_id, \
             expires_at = EXCLUDED.expires_at, state = EXCLUDED.state",
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

pub(super) async fn take(pool: &PgPool, now: Timestamp) -> StoreResult<Vec<SavedSession>> {
    // One statement deletes every row and returns the unexpired ones: two concurrent
    // takes never both get a session, and a save in between is not lost unseen. Ids
    // in byte order, as SQLite orders text.
    let rows = sqlx::query(
        "WITH taken AS (DELETE FROM gateway_sessions RETURNING id, user_id, expires_at, state) \
         SELECT id, user_id, expires_at, state FROM taken WHERE expires_at > $1 \
         ORDER BY id COLLATE \"C\"",
    )
    .bind(now.as_micros())
    .fetch_all(pool)
    .await?;
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
impl GatewaySessionStore for PostgresStore {
    async fn save_gateway_sessions(&self, sessions: &[SavedSession]) -> StoreResult<()> {
        save(&self.pool, sessions).await
    }

    async fn take_gateway_sessions(&self, now: Timestamp) -> StoreResult<Vec<SavedSession>> {
        take(&self.pool, now).await
    }
}
