//! Bots.

use std::sync::LazyLock;

use concord_protocol::{Bot, BotId, Timestamp, UserId};
use sqlx::{
    AssertSqlSafe, SqliteConnection,
    sqlite::{SqlitePool, SqliteRow},
};

use super::{SqliteStore, fetch_each, users};
use super::{get, id, opt_id, opt_ts, ts, users::insert_user, write_tx};
use crate::{AuthoredMessage, BotRecord, NewUser, StoreResult};
use crate::{BotStore, UserRecord};
use async_trait::async_trait;

/// The columns of a bot row, as [`bot_row`] reads them.
const BOT_COLS: &str =
    "id, user_id, name, description, created_by, token_hash, revoked_at, created_at";

/// The bot whose token hashes to `?1`.
pub(super) static BOT_BY_TOKEN_HASH: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {BOT_COLS} FROM bots WHERE token_hash = ?1"));

/// The user id of the bot whose token hashes to `?1`, as a scalar subquery.
pub(super) const USER_OF_TOKEN_HASH: &str = "(SELECT user_id FROM bots WHERE token_hash = ?1)";

pub(super) fn bot_row(row: &SqliteRow) -> StoreResult<BotRecord> {
    Ok(BotRecord {
        bot: Bot {
            id: id(row, "id")?,
            user_id: id(row, "user_id")?,
            name: get(row, "name")?,
            description: get(row, "description")?,
            created_by: opt_id(row, "created_by")?,
            revoked_at: opt_ts(row, "revoked_at")?,
            created_at: ts(row, "created_at")?,
        },
        token_hash: get(row, "token_hash")?,
    })
}

pub(super) async fn create_bot(
    pool: &SqlitePool,
    user: &NewUser,
    bot: &BotRecord,
) -> StoreResult<()> {
    let mut tx = write_tx(pool).await?;
    insert_user(&mut tx, user).await?;
    sqlx::query(
        "INSERT INTO bots (id, user_id, name, description, created_by, token_hash, \
         revoked_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(bot.bot.id.get())
    .bind(bot.bot.user_id.get())
    .bind(&bot.bot.name)
    .bind(&bot.bot.description)
    .bind(bot.bot.created_by.map(UserId::get))
    .bind(&bot.token_hash)
    .bind(bot.bot.revoked_at.map(Timestamp::as_micros))
    .bind(bot.bot.created_at.as_micros())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn bot(pool: &SqlitePool, id: BotId) -> StoreResult<Option<BotRecord>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {BOT_COLS} FROM bots WHERE id = ?"
    )))
    .bind(id.get())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(bot_row).transpose()
}

pub(super) async fn bot_by_user(pool: &SqlitePool, user: UserId) -> StoreResult<Option<BotRecord>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {BOT_COLS} FROM bots WHERE user_id = ?"
    )))
    .bind(user.get())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(bot_row).transpose()
}

pub(super) async fn bot_by_token_hash(
    conn: &mut SqliteConnection,
    token_hash: &str,
) -> StoreResult<Option<BotRecord>> {
    let row = sqlx::query(BOT_BY_TOKEN_HASH.as_str())
        .bind(token_hash)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(bot_row).transpose()
}

pub(super) async fn bots_of_creator(pool: &SqlitePool, user: UserId) -> StoreResult<Vec<Bot>> {
    let found = sqlx::query(AssertSqlSafe(format!(
        "SELECT {BOT_COLS} FROM bots WHERE created_by = ? ORDER BY created_at ASC, id ASC"
    )))
    .bind(user.get())
    .fetch_all(pool)
    .await?;
    found
        .iter()
        .map(|row| bot_row(row).map(|b| b.bot))
        .collect()
}

pub(super) async fn update_bot(
    pool: &SqlitePool,
    id: BotId,
    name: Option<&str>,
    description: Option<&str>,
) -> StoreResult<Option<Bot>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "UPDATE bots SET name = COALESCE(?, name), description = COALESCE(?, description) \
         WHERE id = ? RETURNING {BOT_COLS}"
    )))
    .bind(name)
    .bind(description)
    .bind(id.get())
    .fetch_optional(pool)
    .await?;
    row.as_ref()
        .map(|row| bot_row(row).map(|b| b.bot))
        .transpose()
}

pub(super) async fn revoke_bot(pool: &SqlitePool, id: BotId, at: Timestamp) -> StoreResult<bool> {
    let done = sqlx::query("UPDATE bots SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
        .bind(at.as_micros())
        .bind(id.get())
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn set_bot_token(
    pool: &SqlitePool,
    id: BotId,
    token_hash: &str,
) -> StoreResult<bool> {
    let done = sqlx::query("UPDATE bots SET token_hash = ? WHERE id = ?")
        .bind(token_hash)
        .bind(id.get())
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn recent_messages_by_author(
    pool: &SqlitePool,
    author: UserId,
    limit: u32,
) -> StoreResult<Vec<AuthoredMessage>> {
    // Newest first straight off `messages_author (author_id, created_at, id)`; the
    // deleted ones are skipped as the index is walked.
    let found = sqlx::query(
        "SELECT id, channel_id, content, created_at FROM messages \
         WHERE author_id = ? AND deleted = 0 \
         ORDER BY created_at DESC, id DESC LIMIT ?",
    )
    .bind(author.get())
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    found
        .iter()
        .map(|row| {
            Ok(AuthoredMessage {
                id: id(row, "id")?,
                channel_id: id(row, "channel_id")?,
                content: get(row, "content")?,
                created_at: ts(row, "created_at")?,
            })
        })
        .collect()
}

#[async_trait]
impl BotStore for SqliteStore {
    async fn create_bot(&self, user: &NewUser, bot: &BotRecord) -> StoreResult<()> {
        create_bot(&self.pool, user, bot).await
    }

    async fn bot(&self, id: BotId) -> StoreResult<Option<BotRecord>> {
        bot(&self.pool, id).await
    }

    async fn bot_by_user(&self, user: UserId) -> StoreResult<Option<BotRecord>> {
        bot_by_user(&self.pool, user).await
    }

    async fn bot_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<BotRecord>> {
        bot_by_token_hash(&mut *self.pool.acquire().await?, token_hash).await
    }

    async fn bot_and_user_by_token_hash(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<(BotRecord, UserRecord)>> {
        // Two statements in one command to the connection's thread; no transaction: a
        // bot's user row is never deleted while the bot row stays.
        static BOT_AND_USER: LazyLock<String> = LazyLock::new(|| {
            format!(
                "{};\n{}",
                BOT_BY_TOKEN_HASH.as_str(),
                users::USER_BY_ID.replacen("?1", USER_OF_TOKEN_HASH, 1)
            )
        });
        let mut conn = self.pool.acquire().await?;
        let [bots, users] = fetch_each(&mut conn, BOT_AND_USER.as_str(), token_hash).await?;
        let (Some(bot), Some(user)) = (bots.first(), users.first()) else {
            return Ok(None);
        };
        Ok(Some((bot_row(bot)?, users::user_row(user)?)))
    }

    async fn bots_of_creator(&self, user: UserId) -> StoreResult<Vec<Bot>> {
        bots_of_creator(&self.pool, user).await
    }

    async fn update_bot(
        &self,
        id: BotId,
        name: Option<&str>,
        description: Option<&str>,
    ) -> StoreResult<Option<Bot>> {
        update_bot(&self.pool, id, name, description).await
    }

    async fn revoke_bot(&self, id: BotId, at: Timestamp) -> StoreResult<bool> {
        revoke_bot(&self.pool, id, at).await
    }

    async fn set_bot_token(&self, id: BotId, token_hash: &str) -> StoreResult<bool> {
        set_bot_token(&self.pool, id, token_hash).await
    }

    async fn recent_messages_by_author(
        &self,
        author: UserId,
        limit: u32,
    ) -> StoreResult<Vec<AuthoredMessage>> {
        recent_messages_by_author(&self.pool, author, limit).await
    }
}
