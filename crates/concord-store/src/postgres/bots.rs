//! Bots.

use std::sync::LazyLock;

use concord_protocol::{Bot, BotId, Timestamp, UserId};
use sqlx::{
    AssertSqlSafe, PgConnection,
    postgres::{PgPool, PgRow},
};

use super::{PostgresStore, users};
use super::{get, id, opt_id, opt_ts, ts, users::insert_user, write_tx};
use crate::{AuthoredMessage, BotRecord, NewUser, StoreResult};
use crate::{BotStore, UserRecord};
use async_trait::async_trait;

/// The columns of a bot row, as [`bot_row`] reads them.
const BOT_COLS: &str =
    "id, user_id, name, description, created_by, token_hash, revoked_at, created_at";

/// The bot whose token hashes to `$1`.
pub(super) static BOT_BY_TOKEN_HASH: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {BOT_COLS} FROM bots WHERE token_hash = $1"));

/// The bot whose token hashes to `$1` joined with its user: the bot's own `id` and
/// `created_at` renamed (`bot_id`, `bot_created_at`), the user's columns as
/// [`users::user_row`] reads them.
static BOT_AND_USER_BY_TOKEN_HASH: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT b.id AS bot_id, b.user_id, b.name, b.description, b.created_by, \
         b.token_hash, b.revoked_at, b.created_at AS bot_created_at, {} \
         FROM bots b JOIN users u ON u.id = b.user_id WHERE b.token_hash = $1",
        users::USER_COLS_U
    )
});

pub(super) fn bot_row(row: &PgRow) -> StoreResult<BotRecord> {
    bot_fields(row, "id", "created_at")
}

/// A bot read from `row`, its id and creation time in the columns named.
fn bot_fields(
    row: &PgRow,
    id_col: &'static str,
    created_col: &'static str,
) -> StoreResult<BotRecord> {
    Ok(BotRecord {
        bot: Bot {
            id: id(row, id_col)?,
            user_id: id(row, "user_id")?,
            name: get(row, "name")?,
            description: get(row, "description")?,
            created_by: opt_id(row, "created_by")?,
            revoked_at: opt_ts(row, "revoked_at")?,
            created_at: ts(row, created_col)?,
        },
        token_hash: get(row, "token_hash")?,
    })
}

pub(super) async fn create_bot(pool: &PgPool, user: &NewUser, bot: &BotRecord) -> StoreResult<()> {
    let mut tx = write_tx(pool).await?;
    insert_user(&mut tx, user).await?;
    sqlx::query(
        "INSERT INTO bots (id, user_id, name, description, created_by, token_hash, \
         revoked_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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

pub(super) async fn bot(pool: &PgPool, id: BotId) -> StoreResult<Option<BotRecord>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {BOT_COLS} FROM bots WHERE id = $1"
    )))
    .bind(id.get())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(bot_row).transpose()
}

pub(super) async fn bot_by_user(pool: &PgPool, user: UserId) -> StoreResult<Option<BotRecord>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {BOT_COLS} FROM bots WHERE user_id = $1"
    )))
    .bind(user.get())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(bot_row).transpose()
}

pub(super) async fn bot_by_token_hash(
    conn: &mut PgConnection,
    token_hash: &str,
) -> StoreResult<Option<BotRecord>> {
    let row = sqlx::query(BOT_BY_TOKEN_HASH.as_str())
        .bind(token_hash)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(bot_row).transpose()
}

pub(super) async fn bots_of_creator(pool: &PgPool, user: UserId) -> StoreResult<Vec<Bot>> {
    let found = sqlx::query(AssertSqlSafe(format!(
        "SELECT {BOT_COLS} FROM bots WHERE created_by = $1 ORDER BY created_at ASC, id ASC"
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
    pool: &PgPool,
    id: BotId,
    name: Option<&str>,
    description: Option<&str>,
) -> StoreResult<Option<Bot>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "UPDATE bots SET name = COALESCE($1, name), description = COALESCE($2, description) \
         WHERE id = $3 RETURNING {BOT_COLS}"
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

pub(super) async fn revoke_bot(pool: &PgPool, id: BotId, at: Timestamp) -> StoreResult<bool> {
    let done = sqlx::query("UPDATE bots SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(at.as_micros())
        .bind(id.get())
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn set_bot_token(pool: &PgPool, id: BotId, token_hash: &str) -> StoreResult<bool> {
    let done = sqlx::query("UPDATE bots SET token_hash = $1 WHERE id = $2")
        .bind(token_hash)
        .bind(id.get())
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn recent_messages_by_author(
    pool: &PgPool,
    author: UserId,
    limit: u32,
) -> StoreResult<Vec<AuthoredMessage>> {
    // Newest first straight off `messages_author (author_id, created_at, id)`; the
    // deleted ones are skipped as the index is walked.
    let found = sqlx::query(
        "SELECT id, channel_id, content, created_at FROM messages \
         WHERE author_id = $1 AND NOT deleted \
         ORDER BY created_at DESC, id DESC LIMIT $2",
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
impl BotStore for PostgresStore {
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
        // One statement: the bot joined with its user (a bot's user row is never
        // deleted while the bot row stays).
        let row = sqlx::query(BOT_AND_USER_BY_TOKEN_HASH.as_str())
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some((
            bot_fields(&row, "bot_id", "bot_created_at")?,
            users::user_row(&row)?,
        )))
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
