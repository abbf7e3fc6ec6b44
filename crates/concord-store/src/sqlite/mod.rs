//! The embedded SQLite backend of [`Store`].
//!
//! One file in the data directory, WAL journal, foreign keys enforced. Queries are
//! runtime-checked (`sqlx::query`), so no database is needed at compile time. Writes that
//! take more than one statement run in a `BEGIN IMMEDIATE` transaction (taking the write
//! lock up front, so concurrent writers wait on `busy_timeout` instead of failing on a
//! lock upgrade); reads that take more than one statement run in one deferred
//! transaction, which in WAL mode is one consistent snapshot.
//!
//! This file holds the pool, the migrations and the shared decoding helpers; the
//! statements live in one file per area, where most `Store` methods are a free function
//! of the same name taking the pool. The reads of one user's rows are statements and
//! row readers there, shared by the single-read methods and by READY, which sends
//! them to the connection's thread as one command ([`fetch_each`]).

use std::{borrow::Cow, path::Path, str::FromStr, sync::LazyLock, time::Duration};

use async_trait::async_trait;
use concord_protocol::{ChannelType, Id, Status, Timestamp, UserId};
use futures_util::TryStreamExt;
use sqlx::{
    AssertSqlSafe, Row, Sqlite, SqliteConnection, Transaction,
    migrate::{Migration, MigrationType, Migrator},
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
        SqliteSynchronous,
    },
};
use uuid::Uuid;

use crate::shared::dedup;
use crate::{ReadyState, Store, StoreError, StoreResult};
// Content: threads, reactions, pins, polls, scheduled events (issue 12).
// ---- invites, moderation, Go Live ----
// ---- custom emojis ----
// ---- instance admin, password reset, server templates (issue 18) ----
// ---- attachments, search, export (issue 18 part B) ----
// ---- audit log (issue 18 part C) ----
// ---- server export (issue 18 part B) ----
// ---- message search (issue 18 part B) ----
// ---- automod (issue 18 part C) ----
// ---- webhooks (issue 18 part C) ----

// Instance admin, password reset, server templates (issue 18).
mod admin;
mod bots;
mod channels;
// Threads, reactions, pins, polls, scheduled events (issue 12).
mod content;
mod dms;
mod messages;
mod servers;
mod sessions;
mod users;
mod voice;
// Roles, role assignments and channel overrides (issue 12, permissions).
mod roles;
// ---- invites, moderation, Go Live ----
mod go_live;
mod invites;
mod moderation;
// ---- custom emojis ----
mod emojis;
// ---- attachments, search, export (issue 18 part B) ----
mod attachments;
// ---- audit log (issue 18 part C) ----
mod audit;
// ---- server export (issue 18 part B) ----
mod export;
// ---- message search (issue 18 part B) ----
mod search;
// ---- automod (issue 18 part C) ----
mod automod;
// ---- webhooks (issue 18 part C) ----
mod webhooks;

#[cfg(test)]
mod tests;

/// The SQLite migrations, embedded in the binary (applied in version order).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "member count",
        include_str!("../../migrations/sqlite/0002_member_count.sql"),
    ),
    (
        3,
        "gateway sessions",
        include_str!("../../migrations/sqlite/0003_gateway_sessions.sql"),
    ),
    // Reactions, polls, scheduled events (issue 12 content).
    (
        5,
        "content",
        include_str!("../../migrations/sqlite/0005_content.sql"),
    ),
    // ---- invites, moderation, Go Live ----
    (
        6,
        "invites moderation",
        include_str!("../../migrations/sqlite/0006_invites_moderation.sql"),
    ),
    // ---- custom emojis ----
    (
        7,
        "custom emojis",
        include_str!("../../migrations/sqlite/0007_emojis.sql"),
    ),
    // ---- refresh-token reuse detection ----
    (
        8,
        "refresh reuse",
        include_str!("../../migrations/sqlite/0008_refresh_reuse.sql"),
    ),
    // ---- instance admin, password reset, server templates (issue 18) ----
    (
        9,
        "instance admin",
        include_str!("../../migrations/sqlite/0009_instance_admin.sql"),
    ),
    // ---- attachments, search, export (issue 18 part B) ----
    (
        10,
        "attachments",
        include_str!("../../migrations/sqlite/0010_attachments.sql"),
    ),
    // ---- audit log (issue 18 part C) ----
    (
        13,
        "audit logs",
        include_str!("../../migrations/sqlite/0013_audit_logs.sql"),
    ),
    // ---- message search (issue 18 part B) ----
    (
        14,
        "message search",
        include_str!("../../migrations/sqlite/0014_message_search.sql"),
    ),
    // ---- automod (issue 18 part C) ----
    (
        15,
        "automod",
        include_str!("../../migrations/sqlite/0015_automod.sql"),
    ),
    // ---- webhooks (issue 18 part C) ----
    (
        16,
        "webhooks",
        include_str!("../../migrations/sqlite/0016_webhooks.sql"),
    ),
    // ---- bot logs (issue 18 part C) ----
    (
        17,
        "messages by author",
        include_str!("../../migrations/sqlite/0017_messages_by_author.sql"),
    ),
    // ---- message search, deferred indexing ----
    (
        18,
        "search deferred",
        include_str!("../../migrations/sqlite/0018_search_deferred.sql"),
    ),
    // ---- scale-out: announcing what a dead node stored ----
    (
        19,
        "message node",
        include_str!("../../migrations/sqlite/0019_message_node.sql"),
    ),
    (
        20,
        "dm message node",
        include_str!("../../migrations/sqlite/0020_dm_message_node.sql"),
    ),
];

/// How long a connection waits for the write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A wait for a pooled connection this long is logged as a warning.
const SLOW_ACQUIRE: Duration = Duration::from_secs(10);

/// Connections of a file-backed pool (one writer at a time; readers run in parallel).
const FILE_POOL_SIZE: u32 = 4;

/// Ids per `IN (...)` list.
const IN_CHUNK: usize = 500;

/// SQLite implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating it if missing) the database file at `path`: WAL journal, foreign
    /// keys on, `synchronous = NORMAL`, a 5 s busy timeout; then applies pending
    /// migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(FILE_POOL_SIZE)
            // SQLite runs in-process: a liveness ping before each use tests nothing
            // and costs a round trip to the connection's thread.
            .test_before_acquire(false)
            // A reconnect storm queues thousands of READYs for these few connections:
            // waits of seconds are the expected backpressure there, and sqlx's default
            // (a warning per acquire slower than 2 s) wrote thousands of lines per
            // storm. Warn when a wait reaches a third of the 30 s acquire timeout.
            .acquire_slow_threshold(SLOW_ACQUIRE)
            .connect_with(options)
            .await?;
        Self::with_pool(pool).await
    }

    /// A private in-memory database (for tests). One connection, kept for the life of
    /// the pool, so every call sees the same data; concurrent calls queue for it.
    pub async fn in_memory() -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(1)
            .test_before_acquire(false)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        Self::with_pool(pool).await
    }

    async fn with_pool(pool: SqlitePool) -> Result<Self, StoreError> {
        migrator().run(&pool).await?;
        Ok(Self { pool })
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A transaction that holds the write lock from its start.
async fn write_tx(pool: &SqlitePool) -> StoreResult<Transaction<'static, Sqlite>> {
    Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
}

/// A read transaction (one snapshot for several statements).
async fn read_tx(pool: &SqlitePool) -> StoreResult<Transaction<'static, Sqlite>> {
    Ok(pool.begin().await?)
}

fn migrator() -> Migrator {
    migrator_of(MIGRATIONS)
}

/// A migrator of `migrations` alone (tests build databases of earlier versions).
fn migrator_of(migrations: &[(i64, &'static str, &'static str)]) -> Migrator {
    Migrator::with_migrations(
        migrations
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    sqlx::SqlSafeStr::into_sql_str(sql),
                    false,
                )
            })
            .collect(),
    )
}

// ---- decoding helpers ----

fn get<'r, T>(row: &'r SqliteRow, col: &'static str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(col).map_err(|err| match err {
        sqlx::Error::ColumnDecode { .. } => StoreError::Corrupt(col),
        other => StoreError::Database(other),
    })
}

fn id<T>(row: &SqliteRow, col: &'static str) -> StoreResult<Id<T>> {
    get::<Uuid>(row, col).map(Id::from_uuid)
}

fn opt_id<T>(row: &SqliteRow, col: &'static str) -> StoreResult<Option<Id<T>>> {
    Ok(get::<Option<Uuid>>(row, col)?.map(Id::from_uuid))
}

fn ts(row: &SqliteRow, col: &'static str) -> StoreResult<Timestamp> {
    get::<i64>(row, col).map(Timestamp::from_micros)
}

fn opt_ts(row: &SqliteRow, col: &'static str) -> StoreResult<Option<Timestamp>> {
    Ok(get::<Option<i64>>(row, col)?.map(Timestamp::from_micros))
}

fn status(row: &SqliteRow, col: &'static str) -> StoreResult<Status> {
    let text: String = get(row, col)?;
    crate::shared::parse_status(&text, col)
}

fn channel_type(row: &SqliteRow, col: &'static str) -> StoreResult<ChannelType> {
    let text: String = get(row, col)?;
    crate::shared::parse_channel_type(&text, col)
}

fn rows<T>(rows: &[SqliteRow], f: fn(&SqliteRow) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    rows.iter().map(f).collect()
}

// ---- query helpers ----

/// `?, ?, ?` with `n` placeholders.
fn placeholders(n: usize) -> String {
    let mut out = String::with_capacity(n * 3);
    for i in 0..n {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('?');
    }
    out
}

/// Runs `sql` (with one `{}` for a placeholder list) over `ids` in chunks.
/// [`fetch_in`] as one consistent read: a single statement when the ids fit one
/// `IN` list (one trip to the database thread), a read transaction over the chunks
/// otherwise.
async fn fetch_in_snapshot<T>(
    pool: &SqlitePool,
    sql: &str,
    ids: &[Uuid],
    f: fn(&SqliteRow) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    if ids.len() <= IN_CHUNK {
        let mut conn = pool.acquire().await?;
        return fetch_in(&mut conn, sql, ids, f).await;
    }
    let mut tx = read_tx(pool).await?;
    let found = fetch_in(&mut tx, sql, ids, f).await?;
    tx.commit().await?;
    Ok(found)
}

/// Runs `sql`, `N` statements separated by `;` that each take `arg` as `?1`, as one
/// command on the connection's thread, and returns each statement's rows in order.
///
/// sqlx runs a SQLite connection on a thread of its own and each command costs a
/// round trip to it (two thread wake-ups, which dominate the cost of a small read on
/// a busy machine). sqlx-sqlite runs every statement of one query string in one
/// command, yielding a row per row and a result at the end of each statement.
/// `fetch_many` is deprecated because only SQLite does this; should a later sqlx drop
/// it, the count check below fails and the conformance suite with it.
async fn fetch_each<'q, A, const N: usize>(
    conn: &mut SqliteConnection,
    sql: &'static str,
    arg: A,
) -> StoreResult<[Vec<SqliteRow>; N]>
where
    A: 'q + Send + sqlx::Encode<'q, Sqlite> + sqlx::Type<Sqlite>,
{
    let mut out = Vec::with_capacity(N);
    let mut current = Vec::new();
    #[allow(deprecated, reason = "see above: one command for several statements")]
    let mut steps = sqlx::query(sql).bind(arg).fetch_many(&mut *conn);
    while let Some(step) = steps.try_next().await? {
        match step {
            sqlx::Either::Right(row) => current.push(row),
            sqlx::Either::Left(_) => out.push(std::mem::take(&mut current)),
        }
    }
    let miscounted = || StoreError::Corrupt("statement count of a batched read");
    if !current.is_empty() {
        return Err(miscounted());
    }
    out.try_into().map_err(|_| miscounted())
}

/// The rows of `sql`, a read that takes one user as `?1`, each read by `f`.
async fn of_user<T>(
    pool: &SqlitePool,
    sql: &'static str,
    user: UserId,
    f: fn(&SqliteRow) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let found = sqlx::query(sql).bind(user.get()).fetch_all(pool).await?;
    rows(&found, f)
}

async fn fetch_in<T>(
    conn: &mut SqliteConnection,
    sql: &str,
    ids: &[Uuid],
    f: fn(&SqliteRow) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(IN_CHUNK) {
        let sql = sql.replacen("{}", &placeholders(chunk.len()), 1);
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            out.push(f(&row)?);
        }
    }
    Ok(out)
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn ready_state(&self, user: UserId) -> StoreResult<Option<ReadyState>> {
        // One snapshot for all of READY, so the counts agree with the server list, read
        // in two round trips to the connection's thread (the transaction and its seven
        // reads as one command, then sqlx's ping as the connection goes back to the
        // pool) instead of one per statement.
        static READY: LazyLock<String> = LazyLock::new(|| {
            [
                "BEGIN",
                users::USER_BY_ID.as_str(),
                &servers::SERVERS_OF_USER,
                &dms::DMS_OF_USER,
                messages::UNREAD_COUNTS,
                messages::MENTION_COUNTS,
                &channels::ROLES_OF_USER,
                &channels::OVERRIDES_OF_USER,
                "COMMIT",
            ]
            .join(";\n")
        });
        // The transaction is sqlx's to track no more, so it must never be left open:
        // the read runs as a task of its own, which a dropped READY cannot cut short
        // between BEGIN and COMMIT, and a connection whose read failed part-way is
        // closed rather than returned to the pool.
        let pool = self.pool.clone();
        let read = tokio::spawn(async move {
            let mut conn = pool.acquire().await?;
            let parts = fetch_each::<_, 9>(&mut conn, READY.as_str(), user.get()).await;
            if parts.is_err() {
                conn.close_on_drop();
            }
            parts
        });
        let parts = read.await.map_err(|e| {
            StoreError::Database(sqlx::Error::Protocol(format!("READY read: {e}")))
        })??;
        let [_, user, servers, dms, unread, mentions, roles, overrides, _] = parts;
        let Some(user) = user.first().map(users::user_row).transpose()? else {
            return Ok(None);
        };
        let mut roles = rows(&roles, channels::role_row)?;
        crate::shared::sort_roles(&mut roles);
        let mut overrides = rows(&overrides, channels::override_row)?;
        crate::shared::sort_overrides(&mut overrides);
        Ok(Some(ReadyState {
            user,
            servers: rows(&servers, servers::server_row)?,
            dm_channels: rows(&dms, dms::dm_summary_row)?,
            unread_counts: rows(&unread, messages::unread_row)?,
            mention_counts: rows(&mentions, messages::mention_row)?,
            roles,
            overrides,
        }))
    }
}
