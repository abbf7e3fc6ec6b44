//! Automod (issue 18 part C): a server's settings, its filtered words, the log of what
//! automod did, and the two reads of recent messages its rules make.

use concord_protocol::{
    AutomodAction, AutomodConfig, AutomodLogEntry, AutomodRule, ChannelId, ServerId, Timestamp,
    UserId, WordFilter,
};
use sqlx::postgres::{PgPool, PgRow};

use super::PostgresStore;
use super::{get, id, opt_id, rows, ts, write_tx};
use crate::AutomodStore;
use crate::{AutomodPatch, StoreError, StoreResult, WordAddition};
use async_trait::async_trait;

const CONFIG_COLS: &str = "server_id, enabled, spam_enabled, spam_max_messages, \
     spam_window_secs, spam_action, duplicate_enabled, word_filter_enabled, \
     word_filter_action, timeout_minutes, updated_at";

const WORD_COLS: &str = "id, server_id, word, created_by, created_at";

const LOG_COLS: &str = "id, server_id, channel_id, user_id, username, rule_type, \
     action_taken, matched_term, message_content, created_at";

fn action(row: &PgRow, col: &'static str) -> StoreResult<AutomodAction> {
    let text: String = get(row, col)?;
    AutomodAction::parse(&text).ok_or(StoreError::Corrupt(col))
}

/// A BIGINT setting read into the `i32` the protocol carries (the CHECKs bound it).
fn setting(row: &PgRow, col: &'static str) -> StoreResult<i32> {
    i32::try_from(get::<i64>(row, col)?).map_err(|_| StoreError::Corrupt(col))
}

fn config_row(row: &PgRow) -> StoreResult<AutomodConfig> {
    Ok(AutomodConfig {
        server_id: id(row, "server_id")?,
        enabled: get(row, "enabled")?,
        spam_enabled: get(row, "spam_enabled")?,
        spam_max_messages: setting(row, "spam_max_messages")?,
        spam_window_secs: setting(row, "spam_window_secs")?,
        spam_action: action(row, "spam_action")?,
        duplicate_enabled: get(row, "duplicate_enabled")?,
        word_filter_enabled: get(row, "word_filter_enabled")?,
        word_filter_action: action(row, "word_filter_action")?,
        timeout_minutes: setting(row, "timeout_minutes")?,
        updated_at: ts(row, "updated_at")?,
    })
}

fn word_row(row: &PgRow) -> StoreResult<WordFilter> {
    Ok(WordFilter {
        id: get(row, "id")?,
        server_id: id(row, "server_id")?,
        word: get(row, "word")?,
        created_by: opt_id(row, "created_by")?,
        created_at: ts(row, "created_at")?,
    })
}

fn log_row(row: &PgRow) -> StoreResult<AutomodLogEntry> {
    let rule: String = get(row, "rule_type")?;
    Ok(AutomodLogEntry {
        id: get(row, "id")?,
        server_id: id(row, "server_id")?,
        channel_id: opt_id(row, "channel_id")?,
        user_id: opt_id(row, "user_id")?,
        username: get(row, "username")?,
        rule_type: AutomodRule::parse(&rule).ok_or(StoreError::Corrupt("rule_type"))?,
        action_taken: action(row, "action_taken")?,
        matched_term: get(row, "matched_term")?,
        message_content: get(row, "message_content")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(super) async fn automod_config(
    pool: &PgPool,
    server: ServerId,
) -> StoreResult<Option<AutomodConfig>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CONFIG_COLS} FROM automod_configs WHERE server_id = $1"
    )))
    .bind(server.get())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(config_row).transpose()
}

pub(super) async fn update_automod_config(
    pool: &PgPool,
    server: ServerId,
    patch: &AutomodPatch,
    at: Timestamp,
) -> StoreResult<AutomodConfig> {
    // One statement: the insert takes the table's defaults for what the patch leaves
    // out, the conflict branch keeps the stored values for them (qualified: a bare
    // column name would be ambiguous with `excluded`).
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO automod_configs ({CONFIG_COLS}) VALUES ($1, \
             COALESCE($2, FALSE), COALESCE($3, FALSE), COALESCE($4, 5), COALESCE($5, 5), \
             COALESCE($6, 'delete'), COALESCE($7, FALSE), COALESCE($8, FALSE), \
             COALESCE($9, 'delete'), COALESCE($10, 10), $11) \
         ON CONFLICT (server_id) DO UPDATE SET \
             enabled = COALESCE($2, automod_configs.enabled), \
             spam_enabled = COALESCE($3, automod_configs.spam_enabled), \
             spam_max_messages = COALESCE($4, automod_configs.spam_max_messages), \
             spam_window_secs = COALESCE($5, automod_configs.spam_window_secs), \
             spam_action = COALESCE($6, automod_configs.spam_action), \
             duplicate_enabled = COALESCE($7, automod_configs.duplicate_enabled), \
             word_filter_enabled = COALESCE($8, automod_configs.word_filter_enabled), \
             word_filter_action = COALESCE($9, automod_configs.word_filter_action), \
             timeout_minutes = COALESCE($10, automod_configs.timeout_minutes), \
             updated_at = $11 \
         RETURNING {CONFIG_COLS}"
    )))
    .bind(server.get())
    .bind(patch.enabled)
    .bind(patch.spam_enabled)
    .bind(patch.spam_max_messages.map(i64::from))
    .bind(patch.spam_window_secs.map(i64::from))
    .bind(patch.spam_action.map(AutomodAction::as_str))
    .bind(patch.duplicate_enabled)
    .bind(patch.word_filter_enabled)
    .bind(patch.word_filter_action.map(AutomodAction::as_str))
    .bind(patch.timeout_minutes.map(i64::from))
    .bind(at.as_micros())
    .fetch_one(pool)
    .await?;
    config_row(&row)
}

pub(super) async fn automod_words(pool: &PgPool, server: ServerId) -> StoreResult<Vec<WordFilter>> {
    let found = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {WORD_COLS} FROM automod_word_filters WHERE server_id = $1 \
         ORDER BY created_at, id"
    )))
    .bind(server.get())
    .fetch_all(pool)
    .await?;
    rows(&found, word_row)
}

pub(super) async fn add_automod_word(
    pool: &PgPool,
    word: &WordFilter,
    limit: i64,
) -> StoreResult<WordAddition> {
    let mut tx = write_tx(pool).await?;
    // The adder first (users before servers), as the insert's foreign key would.
    if let Some(by) = word.created_by {
        sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR KEY SHARE")
            .bind(by.get())
            .execute(&mut *tx)
            .await?;
    }
    // The server row is locked before reading: of two additions racing for the last
    // slot, or for one word, the second waits and then sees the first's row.
    let exists: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM servers WHERE id = $1 FOR NO KEY UPDATE")
            .bind(word.server_id.get())
            .fetch_optional(&mut *tx)
            .await?;
    if exists.is_none() {
        return Err(StoreError::NotFound);
    }
    let existing = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {WORD_COLS} FROM automod_word_filters WHERE server_id = $1 AND word = $2"
    )))
    .bind(word.server_id.get())
    .bind(&word.word)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(row) = existing {
        return Ok(WordAddition::Existing(word_row(&row)?));
    }
    let held: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM automod_word_filters WHERE server_id = $1")
            .bind(word.server_id.get())
            .fetch_one(&mut *tx)
            .await?;
    if held >= limit {
        return Ok(WordAddition::LimitReached);
    }
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO automod_word_filters ({WORD_COLS}) VALUES ($1, $2, $3, $4, $5) \
         RETURNING {WORD_COLS}"
    )))
    .bind(word.id)
    .bind(word.server_id.get())
    .bind(&word.word)
    .bind(word.created_by.map(|id| id.get()))
    .bind(word.created_at.as_micros())
    .fetch_one(&mut *tx)
    .await?;
    let added = word_row(&row)?;
    tx.commit().await?;
    Ok(WordAddition::Added(added))
}

pub(super) async fn remove_automod_word(
    pool: &PgPool,
    server: ServerId,
    word: &str,
) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM automod_word_filters WHERE server_id = $1 AND word = $2")
        .bind(server.get())
        .bind(word)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn append_automod_log(
    pool: &PgPool,
    entry: &AutomodLogEntry,
    keep: i64,
) -> StoreResult<()> {
    let mut tx = write_tx(pool).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO automod_logs ({LOG_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    )))
    .bind(entry.id)
    .bind(entry.server_id.get())
    .bind(entry.channel_id.map(|id| id.get()))
    .bind(entry.user_id.map(|id| id.get()))
    .bind(&entry.username)
    .bind(entry.rule_type.as_str())
    .bind(entry.action_taken.as_str())
    .bind(&entry.matched_term)
    .bind(&entry.message_content)
    .bind(entry.created_at.as_micros())
    .execute(&mut *tx)
    .await?;
    // Only the newest rows are ever read: the log of a busy server stays bounded.
    sqlx::query(
        "DELETE FROM automod_logs WHERE server_id = $1 AND id IN (\
             SELECT id FROM automod_logs WHERE server_id = $1 \
             ORDER BY created_at DESC, id DESC OFFSET $2)",
    )
    .bind(entry.server_id.get())
    .bind(keep.max(1))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn automod_logs(
    pool: &PgPool,
    server: ServerId,
    limit: i64,
) -> StoreResult<Vec<AutomodLogEntry>> {
    let found = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {LOG_COLS} FROM automod_logs WHERE server_id = $1 \
         ORDER BY created_at DESC, id DESC LIMIT $2"
    )))
    .bind(server.get())
    .bind(limit.max(0))
    .fetch_all(pool)
    .await?;
    rows(&found, log_row)
}

pub(super) async fn has_recent_duplicate(
    pool: &PgPool,
    channel: ChannelId,
    author: UserId,
    content: &str,
    since: Timestamp,
) -> StoreResult<bool> {
    let found: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM messages WHERE channel_id = $1 AND created_at > $2 \
         AND author_id = $3 AND NOT deleted AND content = $4)",
    )
    .bind(channel.get())
    .bind(since.as_micros())
    .bind(author.get())
    .bind(content)
    .fetch_one(pool)
    .await?;
    Ok(found)
}

pub(super) async fn count_recent_messages(
    pool: &PgPool,
    channel: ChannelId,
    author: UserId,
    since: Timestamp,
) -> StoreResult<i64> {
    let count: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM messages WHERE channel_id = $1 AND created_at > $2 \
         AND author_id = $3 AND NOT deleted",
    )
    .bind(channel.get())
    .bind(since.as_micros())
    .bind(author.get())
    .fetch_one(pool)
    .await?;
    Ok(count)
}

#[async_trait]
impl AutomodStore for PostgresStore {
    async fn automod_config(&self, server: ServerId) -> StoreResult<Option<AutomodConfig>> {
        automod_config(&self.pool, server).await
    }

    async fn update_automod_config(
        &self,
        server: ServerId,
        patch: &AutomodPatch,
        at: Timestamp,
    ) -> StoreResult<AutomodConfig> {
        update_automod_config(&self.pool, server, patch, at).await
    }

    async fn automod_words(&self, server: ServerId) -> StoreResult<Vec<WordFilter>> {
        automod_words(&self.pool, server).await
    }

    async fn add_automod_word(&self, word: &WordFilter, limit: i64) -> StoreResult<WordAddition> {
        add_automod_word(&self.pool, word, limit).await
    }

    async fn remove_automod_word(&self, server: ServerId, word: &str) -> StoreResult<bool> {
        remove_automod_word(&self.pool, server, word).await
    }

    async fn append_automod_log(&self, entry: &AutomodLogEntry, keep: i64) -> StoreResult<()> {
        append_automod_log(&self.pool, entry, keep).await
    }

    async fn automod_logs(
        &self,
        server: ServerId,
        limit: i64,
    ) -> StoreResult<Vec<AutomodLogEntry>> {
        automod_logs(&self.pool, server, limit).await
    }

    async fn has_recent_duplicate(
        &self,
        channel: ChannelId,
        author: UserId,
        content: &str,
        since: Timestamp,
    ) -> StoreResult<bool> {
        has_recent_duplicate(&self.pool, channel, author, content, since).await
    }

    async fn count_recent_messages(
        &self,
        channel: ChannelId,
        author: UserId,
        since: Timestamp,
    ) -> StoreResult<i64> {
        count_recent_messages(&self.pool, channel, author, since).await
    }
}
