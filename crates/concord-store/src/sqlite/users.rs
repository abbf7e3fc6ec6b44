//! Users and their refresh sessions.

use std::sync::LazyLock;

use concord_protocol::{Status, Timestamp, UserId};
use sqlx::{
    AssertSqlSafe, SqliteConnection,
    sqlite::{SqlitePool, SqliteRow},
};
use uuid::Uuid;

use super::SqliteStore;
use super::{dedup, fetch_in_snapshot, get, id, status, ts, write_tx};
use crate::UserStore;
use crate::{NewUser, Presence, RefreshSession, StoreResult, UserPatch, UserRecord};
use async_trait::async_trait;

/// The columns of a user row, as [`user_row`] reads them.
pub(super) const USER_COLS: &str = "id, username, email, password_hash, avatar_url, bio, \
    pronouns, status, custom_status, activity, created_at, is_admin, is_bot, disabled";

/// [`USER_COLS`] of `users` aliased as `u`.
pub(super) const USER_COLS_U: &str = "u.id, u.username, u.email, u.password_hash, \
    u.avatar_url, u.bio, u.pronouns, u.status, u.custom_status, u.activity, u.created_at, \
    u.is_admin, u.is_bot, u.disabled";

/// The user `?1`.
pub(super) static USER_BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {USER_COLS} FROM users WHERE id = ?1"));

pub(super) fn user_row(row: &SqliteRow) -> StoreResult<UserRecord> {
    Ok(UserRecord {
        id: id(row, "id")?,
        username: get(row, "username")?,
        email: get(row, "email")?,
        password_hash: get(row, "password_hash")?,
        avatar_url: get(row, "avatar_url")?,
        bio: get(row, "bio")?,
        pronouns: get(row, "pronouns")?,
        status: status(row, "status")?,
        custom_status: get(row, "custom_status")?,
        activity: get(row, "activity")?,
        created_at: ts(row, "created_at")?,
        is_admin: get(row, "is_admin")?,
        is_bot: get(row, "is_bot")?,
        disabled: get(row, "disabled")?,
    })
}

fn session_row(row: &SqliteRow) -> StoreResult<RefreshSession> {
    Ok(RefreshSession {
        id: get(row, "id")?,
        user_id: id(row, "user_id")?,
        token_hash: get(row, "token_hash")?,
        created_at: ts(row, "created_at")?,
        expires_at: ts(row, "expires_at")?,
        previous_hash: get(row, "previous_hash")?,
        rotated_at: get::<Option<i64>>(row, "rotated_at")?.map(Timestamp::from_micros),
    })
}

const SESSION_COLUMNS: &str =
    "id, user_id, token_hash, created_at, expires_at, previous_hash, rotated_at";

pub(super) async fn insert_user(
    conn: &mut SqliteConnection,
    user: &NewUser,
) -> StoreResult<UserRecord> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO users (id, username, email, password_hash, status, created_at, is_admin, \
         is_bot) VALUES (?1, ?2, ?3, ?4, ?5, ?6, \
         CASE WHEN ?7 AND NOT ?8 AND NOT EXISTS (SELECT 1 FROM users WHERE is_bot = 0) \
         THEN 1 ELSE 0 END, ?8) RETURNING {USER_COLS}"
    )))
    .bind(user.id.get())
    .bind(&user.username)
    .bind(&user.email)
    .bind(&user.password_hash)
    .bind(user.status.as_str())
    .bind(user.created_at.as_micros())
    .bind(user.admin_if_first)
    .bind(user.is_bot)
    .fetch_one(&mut *conn)
    .await?;
    user_row(&row)
}

pub(super) async fn create_user(pool: &SqlitePool, user: &NewUser) -> StoreResult<UserRecord> {
    let mut conn = pool.acquire().await?;
    insert_user(&mut conn, user).await
}

pub(super) async fn user(
    conn: &mut SqliteConnection,
    id: UserId,
) -> StoreResult<Option<UserRecord>> {
    let row = sqlx::query(USER_BY_ID.as_str())
        .bind(id.get())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(user_row).transpose()
}

pub(super) async fn user_by_username(
    pool: &SqlitePool,
    username: &str,
) -> StoreResult<Option<UserRecord>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {USER_COLS} FROM users WHERE username = ?"
    )))
    .bind(username)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(user_row).transpose()
}

pub(super) async fn users(pool: &SqlitePool, ids: &[UserId]) -> StoreResult<Vec<UserRecord>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = dedup(ids).into_iter().map(UserId::get).collect();
    let users = fetch_in_snapshot(
        pool,
        &format!("SELECT {USER_COLS} FROM users WHERE id IN ({{}})"),
        &ids,
        user_row,
    )
    .await?;
    Ok(users)
}

pub(super) async fn update_user(
    pool: &SqlitePool,
    id: UserId,
    patch: &UserPatch,
) -> StoreResult<Option<UserRecord>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "UPDATE users SET avatar_url = COALESCE(?, avatar_url), bio = COALESCE(?, bio), \
         pronouns = COALESCE(?, pronouns), status = COALESCE(?, status), \
         custom_status = COALESCE(?, custom_status), activity = COALESCE(?, activity) \
         WHERE id = ? RETURNING {USER_COLS}"
    )))
    .bind(&patch.avatar_url)
    .bind(&patch.bio)
    .bind(&patch.pronouns)
    .bind(patch.status.map(Status::as_str))
    .bind(&patch.custom_status)
    .bind(&patch.activity)
    .bind(id.get())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(user_row).transpose()
}

pub(super) async fn set_presence(
    pool: &SqlitePool,
    id: UserId,
    presence: &Presence,
) -> StoreResult<()> {
    sqlx::query("UPDATE users SET status = ?, custom_status = ?, activity = ? WHERE id = ?")
        .bind(presence.status.as_str())
        .bind(&presence.custom_status)
        .bind(&presence.activity)
        .bind(id.get())
        .execute(pool)
        .await?;
    Ok(())
}

// ---- refresh sessions ----

pub(super) async fn create_refresh_session(
    pool: &SqlitePool,
    session: &RefreshSession,
    now: Timestamp,
    keep: usize,
) -> StoreResult<()> {
    let keep = i64::try_from(keep).unwrap_or(i64::MAX);
    let mut tx = write_tx(pool).await?;
    sqlx::query("DELETE FROM refresh_sessions WHERE user_id = ? AND expires_at <= ?")
        .bind(session.user_id.get())
        .bind(now.as_micros())
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO refresh_sessions (id, user_id, token_hash, created_at, expires_at) \
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(session.id)
    .bind(session.user_id.get())
    .bind(&session.token_hash)
    .bind(session.created_at.as_micros())
    .bind(session.expires_at.as_micros())
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "DELETE FROM refresh_sessions WHERE user_id = ?1 AND id NOT IN \
         (SELECT id FROM refresh_sessions WHERE user_id = ?1 \
          ORDER BY created_at DESC, id DESC LIMIT ?2)",
    )
    .bind(session.user_id.get())
    .bind(keep)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn refresh_session_by_hash(
    pool: &SqlitePool,
    token_hash: &str,
) -> StoreResult<Option<RefreshSession>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {SESSION_COLUMNS} FROM refresh_sessions WHERE token_hash = ?"
    )))
    .bind(token_hash)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(session_row).transpose()
}

pub(super) async fn refresh_session(
    pool: &SqlitePool,
    id: Uuid,
) -> StoreResult<Option<RefreshSession>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {SESSION_COLUMNS} FROM refresh_sessions WHERE id = ?"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(session_row).transpose()
}

pub(super) async fn revoke_refresh_session(pool: &SqlitePool, id: Uuid) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM refresh_sessions WHERE id = ?")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn rotate_refresh_session(
    pool: &SqlitePool,
    id: Uuid,
    old_hash: &str,
    new_hash: &str,
    now: Timestamp,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE refresh_sessions SET token_hash = ?, previous_hash = token_hash, rotated_at = ? \
         WHERE id = ? AND token_hash = ?",
    )
    .bind(new_hash)
    .bind(now.as_micros())
    .bind(id)
    .bind(old_hash)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn delete_refresh_sessions(pool: &SqlitePool, user: UserId) -> StoreResult<()> {
    sqlx::query("DELETE FROM refresh_sessions WHERE user_id = ?")
        .bind(user.get())
        .execute(pool)
        .await?;
    Ok(())
}

/// Logout of one session: only a session of `user` matches.
pub(super) async fn delete_refresh_session(
    pool: &SqlitePool,
    user: UserId,
    token_hash: &str,
) -> StoreResult<Option<Uuid>> {
    let id = sqlx::query_scalar(
        "DELETE FROM refresh_sessions WHERE user_id = ? AND token_hash = ? RETURNING id",
    )
    .bind(user.get())
    .bind(token_hash)
    .fetch_optional(pool)
    .await?;
    Ok(id)
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, user: &NewUser) -> StoreResult<UserRecord> {
        create_user(&self.pool, user).await
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        user(&mut *self.pool.acquire().await?, id).await
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        user_by_username(&self.pool, username).await
    }

    async fn users(&self, ids: &[UserId]) -> StoreResult<Vec<UserRecord>> {
        users(&self.pool, ids).await
    }

    async fn update_user(&self, id: UserId, patch: &UserPatch) -> StoreResult<Option<UserRecord>> {
        update_user(&self.pool, id, patch).await
    }

    async fn set_presence(&self, id: UserId, presence: &Presence) -> StoreResult<()> {
        set_presence(&self.pool, id, presence).await
    }

    async fn create_refresh_session(
        &self,
        session: &RefreshSession,
        now: Timestamp,
        keep: usize,
    ) -> StoreResult<()> {
        create_refresh_session(&self.pool, session, now, keep).await
    }

    async fn refresh_session_by_hash(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<RefreshSession>> {
        refresh_session_by_hash(&self.pool, token_hash).await
    }

    async fn rotate_refresh_session(
        &self,
        id: Uuid,
        old_hash: &str,
        new_hash: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        rotate_refresh_session(&self.pool, id, old_hash, new_hash, now).await
    }

    async fn refresh_session(&self, id: uuid::Uuid) -> StoreResult<Option<RefreshSession>> {
        refresh_session(&self.pool, id).await
    }

    async fn revoke_refresh_session(&self, id: uuid::Uuid) -> StoreResult<bool> {
        revoke_refresh_session(&self.pool, id).await
    }

    async fn delete_refresh_sessions(&self, user: UserId) -> StoreResult<()> {
        delete_refresh_sessions(&self.pool, user).await
    }

    async fn delete_refresh_session(
        &self,
        user: UserId,
        token_hash: &str,
    ) -> StoreResult<Option<uuid::Uuid>> {
        delete_refresh_session(&self.pool, user, token_hash).await
    }
}
