//! Users and their refresh sessions.

use std::sync::LazyLock;

use concord_protocol::{Status, Timestamp, UserId};
use sqlx::{
    AssertSqlSafe, PgConnection,
    postgres::{PgPool, PgRow},
};
use uuid::Uuid;

use super::PostgresStore;
use super::{get, id, opt_ts, status, ts, uuids, write_tx};
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

/// The user `$1`.
pub(super) static USER_BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {USER_COLS} FROM users WHERE id = $1"));

/// The key of the transaction-scoped advisory lock that serialises the inserts of users
/// who become admin if they are the first human (see [`insert_user`]).
const FIRST_ADMIN_LOCK: i64 = 0x636f_6e63_6f72_6401;

pub(super) fn user_row(row: &PgRow) -> StoreResult<UserRecord> {
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

fn session_row(row: &PgRow) -> StoreResult<RefreshSession> {
    Ok(RefreshSession {
        id: get(row, "id")?,
        user_id: id(row, "user_id")?,
        token_hash: get(row, "token_hash")?,
        created_at: ts(row, "created_at")?,
        expires_at: ts(row, "expires_at")?,
        previous_hash: get(row, "previous_hash")?,
        rotated_at: opt_ts(row, "rotated_at")?,
    })
}

const SESSION_COLUMNS: &str =
    "id, user_id, token_hash, created_at, expires_at, previous_hash, rotated_at";

/// Inserts a user on `conn`, which must be inside a transaction: a human asking to
/// become admin if first takes a transaction-scoped advisory lock before the insert, so
/// that two concurrent first sign-ups cannot both see no human and both become admin.
pub(super) async fn insert_user(
    conn: &mut PgConnection,
    user: &NewUser,
) -> StoreResult<UserRecord> {
    if user.admin_if_first && !user.is_bot {
        // The check below reads other users before the insert: serialise such inserts.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(FIRST_ADMIN_LOCK)
            .execute(&mut *conn)
            .await?;
    }
    let row = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO users (id, username, email, password_hash, status, created_at, is_admin, \
         is_bot) VALUES ($1, $2, $3, $4, $5, $6, \
         $7 AND NOT $8 AND NOT EXISTS (SELECT 1 FROM users WHERE NOT is_bot), $8) \
         RETURNING {USER_COLS}"
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

pub(super) async fn create_user(pool: &PgPool, user: &NewUser) -> StoreResult<UserRecord> {
    let mut tx = write_tx(pool).await?;
    let created = insert_user(&mut tx, user).await?;
    tx.commit().await?;
    Ok(created)
}

pub(super) async fn user(conn: &mut PgConnection, id: UserId) -> StoreResult<Option<UserRecord>> {
    let row = sqlx::query(USER_BY_ID.as_str())
        .bind(id.get())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(user_row).transpose()
}

pub(super) async fn user_by_username(
    pool: &PgPool,
    username: &str,
) -> StoreResult<Option<UserRecord>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {USER_COLS} FROM users WHERE username = $1"
    )))
    .bind(username)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(user_row).transpose()
}

/// The users of `ids` that exist, each once, in no particular order (one statement).
pub(super) async fn users(pool: &PgPool, ids: &[UserId]) -> StoreResult<Vec<UserRecord>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let found = sqlx::query(AssertSqlSafe(format!(
        "SELECT {USER_COLS} FROM users WHERE id = ANY($1)"
    )))
    .bind(uuids(ids))
    .fetch_all(pool)
    .await?;
    super::rows(&found, user_row)
}

pub(super) async fn update_user(
    pool: &PgPool,
    id: UserId,
    patch: &UserPatch,
) -> StoreResult<Option<UserRecord>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "UPDATE users SET avatar_url = COALESCE($1, avatar_url), bio = COALESCE($2, bio), \
         pronouns = COALESCE($3, pronouns), status = COALESCE($4, status), \
         custom_status = COALESCE($5, custom_status), activity = COALESCE($6, activity) \
         WHERE id = $7 RETURNING {USER_COLS}"
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
    pool: &PgPool,
    id: UserId,
    presence: &Presence,
) -> StoreResult<()> {
    sqlx::query("UPDATE users SET status = $1, custom_status = $2, activity = $3 WHERE id = $4")
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
    pool: &PgPool,
    session: &RefreshSession,
    now: Timestamp,
    keep: usize,
) -> StoreResult<()> {
    let keep = i64::try_from(keep).unwrap_or(i64::MAX);
    let mut tx = write_tx(pool).await?;
    // Lock the user row: the trim below counts the user's sessions, so two logins at
    // once must not both keep `keep` and leave `keep + 1`. NO KEY UPDATE leaves
    // reference checks on the user (their messages, memberships) free.
    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE")
        .bind(session.user_id.get())
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM refresh_sessions WHERE user_id = $1 AND expires_at <= $2")
        .bind(session.user_id.get())
        .bind(now.as_micros())
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO refresh_sessions (id, user_id, token_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(session.id)
    .bind(session.user_id.get())
    .bind(&session.token_hash)
    .bind(session.created_at.as_micros())
    .bind(session.expires_at.as_micros())
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "DELETE FROM refresh_sessions WHERE user_id = $1 AND id NOT IN \
         (SELECT id FROM refresh_sessions WHERE user_id = $1 \
          ORDER BY created_at DESC, id DESC LIMIT $2)",
    )
    .bind(session.user_id.get())
    .bind(keep)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn refresh_session_by_hash(
    pool: &PgPool,
    token_hash: &str,
) -> StoreResult<Option<RefreshSession>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {SESSION_COLUMNS} FROM refresh_sessions WHERE token_hash = $1"
    )))
    .bind(token_hash)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(session_row).transpose()
}

pub(super) async fn refresh_session(
    pool: &PgPool,
    id: Uuid,
) -> StoreResult<Option<RefreshSession>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {SESSION_COLUMNS} FROM refresh_sessions WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(session_row).transpose()
}

pub(super) async fn revoke_refresh_session(pool: &PgPool, id: Uuid) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM refresh_sessions WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Compare-and-set in one statement: of two rotations of the same hash at once, the
/// second re-checks `token_hash` on the row the first wrote and matches nothing.
pub(super) async fn rotate_refresh_session(
    pool: &PgPool,
    id: Uuid,
    old_hash: &str,
    new_hash: &str,
    now: Timestamp,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE refresh_sessions SET token_hash = $1, previous_hash = token_hash, \
         rotated_at = $2 WHERE id = $3 AND token_hash = $4",
    )
    .bind(new_hash)
    .bind(now.as_micros())
    .bind(id)
    .bind(old_hash)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn delete_refresh_sessions(pool: &PgPool, user: UserId) -> StoreResult<()> {
    sqlx::query("DELETE FROM refresh_sessions WHERE user_id = $1")
        .bind(user.get())
        .execute(pool)
        .await?;
    Ok(())
}

/// Logout of one session: only a session of `user` matches.
pub(super) async fn delete_refresh_session(
    pool: &PgPool,
    user: UserId,
    token_hash: &str,
) -> StoreResult<Option<Uuid>> {
    let id = sqlx::query_scalar(
        "DELETE FROM refresh_sessions WHERE user_id = $1 AND token_hash = $2 RETURNING id",
    )
    .bind(user.get())
    .bind(token_hash)
    .fetch_optional(pool)
    .await?;
    Ok(id)
}

#[async_trait]
impl UserStore for PostgresStore {
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

    async fn refresh_session(&self, id: Uuid) -> StoreResult<Option<RefreshSession>> {
        refresh_session(&self.pool, id).await
    }

    async fn revoke_refresh_session(&self, id: Uuid) -> StoreResult<bool> {
        revoke_refresh_session(&self.pool, id).await
    }

    async fn delete_refresh_sessions(&self, user: UserId) -> StoreResult<()> {
        delete_refresh_sessions(&self.pool, user).await
    }

    async fn delete_refresh_session(
        &self,
        user: UserId,
        token_hash: &str,
    ) -> StoreResult<Option<Uuid>> {
        delete_refresh_session(&self.pool, user, token_hash).await
    }
}
