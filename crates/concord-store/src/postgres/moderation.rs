//! Bans and timeouts.

use concord_protocol::{Ban, ServerId, Timeout, Timestamp, UserId};
use sqlx::postgres::{PgPool, PgRow};

use super::PostgresStore;
use super::{get, id, opt_id, rows, ts, write_tx};
use crate::ModerationStore;
use crate::{AuditRecord, StoreResult};
use async_trait::async_trait;

fn ban_row(row: &PgRow) -> StoreResult<Ban> {
    Ok(Ban {
        user_id: id(row, "user_id")?,
        server_id: id(row, "server_id")?,
        banned_by: opt_id(row, "banned_by")?,
        reason: get(row, "reason")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(super) async fn ban(
    pool: &PgPool,
    ban: &Ban,
    audit: Option<&AuditRecord>,
) -> StoreResult<bool> {
    let mut tx = write_tx(pool).await?;
    // Locks the server first (as `accept_invite` does): a join that checked for a ban
    // before this one commits cannot then add the member back. NO KEY UPDATE conflicts
    // with every other lock taken to write the server (and with the member count
    // trigger), not with the foreign-key checks of inserts elsewhere in the server.
    sqlx::query("SELECT 1 FROM servers WHERE id = $1 FOR NO KEY UPDATE")
        .bind(ban.server_id.get())
        .fetch_optional(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO bans (server_id, user_id, banned_by, reason, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (server_id, user_id) DO UPDATE SET \
         banned_by = excluded.banned_by, reason = excluded.reason",
    )
    .bind(ban.server_id.get())
    .bind(ban.user_id.get())
    .bind(ban.banned_by.map(UserId::get))
    .bind(&ban.reason)
    .bind(ban.created_at.as_micros())
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM member_roles WHERE server_id = $1 AND user_id = $2")
        .bind(ban.server_id.get())
        .bind(ban.user_id.get())
        .execute(&mut *tx)
        .await?;
    let removed = sqlx::query("DELETE FROM server_members WHERE server_id = $1 AND user_id = $2")
        .bind(ban.server_id.get())
        .bind(ban.user_id.get())
        .execute(&mut *tx)
        .await?;
    super::audit::insert(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(removed.rows_affected() == 1)
}

pub(super) async fn unban(
    pool: &PgPool,
    server: ServerId,
    user: UserId,
    audit: Option<&AuditRecord>,
) -> StoreResult<bool> {
    let mut tx = write_tx(pool).await?;
    let done = sqlx::query("DELETE FROM bans WHERE server_id = $1 AND user_id = $2")
        .bind(server.get())
        .bind(user.get())
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    super::audit::insert(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(true)
}

pub(super) async fn bans(pool: &PgPool, server: ServerId) -> StoreResult<Vec<Ban>> {
    let found = sqlx::query(
        "SELECT user_id, server_id, banned_by, reason, created_at FROM bans \
         WHERE server_id = $1 ORDER BY created_at DESC, user_id DESC",
    )
    .bind(server.get())
    .fetch_all(pool)
    .await?;
    rows(&found, ban_row)
}

pub(super) async fn put_timeout(
    pool: &PgPool,
    timeout: &Timeout,
    audit: Option<&AuditRecord>,
) -> StoreResult<()> {
    let mut tx = write_tx(pool).await?;
    sqlx::query(
        "INSERT INTO timeouts (server_id, user_id, expires_at, reason, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (server_id, user_id) DO UPDATE SET \
         expires_at = excluded.expires_at, reason = excluded.reason, \
         created_by = excluded.created_by, created_at = excluded.created_at",
    )
    .bind(timeout.server_id.get())
    .bind(timeout.user_id.get())
    .bind(timeout.expires_at.as_micros())
    .bind(&timeout.reason)
    .bind(timeout.created_by.map(UserId::get))
    .bind(timeout.created_at.as_micros())
    .execute(&mut *tx)
    .await?;
    super::audit::insert(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn remove_timeout(
    pool: &PgPool,
    server: ServerId,
    user: UserId,
    audit: Option<&AuditRecord>,
) -> StoreResult<Option<Timestamp>> {
    let mut tx = write_tx(pool).await?;
    let row = sqlx::query(
        "DELETE FROM timeouts WHERE server_id = $1 AND user_id = $2 RETURNING expires_at",
    )
    .bind(server.get())
    .bind(user.get())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let until = ts(&row, "expires_at")?;
    super::audit::insert(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(Some(until))
}

#[async_trait]
impl ModerationStore for PostgresStore {
    async fn ban(&self, ban: &Ban, audit: Option<&AuditRecord>) -> StoreResult<bool> {
        self::ban(&self.pool, ban, audit).await
    }

    async fn unban(
        &self,
        server: ServerId,
        user: UserId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool> {
        unban(&self.pool, server, user, audit).await
    }

    async fn bans(&self, server: ServerId) -> StoreResult<Vec<Ban>> {
        bans(&self.pool, server).await
    }

    async fn put_timeout(&self, timeout: &Timeout, audit: Option<&AuditRecord>) -> StoreResult<()> {
        put_timeout(&self.pool, timeout, audit).await
    }

    async fn remove_timeout(
        &self,
        server: ServerId,
        user: UserId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Option<Timestamp>> {
        remove_timeout(&self.pool, server, user, audit).await
    }
}
