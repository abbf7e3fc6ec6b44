//! The PostgreSQL backend of [`Store`], for several nodes sharing one database.
//!
//! The schema has the same tables, columns and rules as SQLite's (ids as `UUID`,
//! timestamps as `BIGINT` microseconds, flags as `BOOLEAN`), so both backends decode
//! rows alike and pass the same conformance suite. Queries are runtime-checked
//! (`sqlx::query`), as on SQLite.
//!
//! Several nodes may start at once against one empty database: sqlx's migrator takes
//! a PostgreSQL advisory lock for the whole run, so one node migrates while the others
//! wait, then find nothing left to do.
//!
//! Transactions run at READ COMMITTED. Where SQLite's single writer made a
//! read-then-write safe, the PostgreSQL statement locks what it reads (`FOR UPDATE`
//! on the parent row) or does the whole change in one statement; each such place says
//! so.
//!
//! This file holds the pool, the migrations and the shared decoding helpers; the
//! statements live in one file per area, each implementing that area's trait.

use std::{borrow::Cow, str::FromStr, sync::LazyLock, time::Duration};

use async_trait::async_trait;
use concord_protocol::{ChannelType, Id, Status, Timestamp, UserId};
use sqlx::{
    AssertSqlSafe, Postgres, Row, Transaction,
    migrate::{Migration, MigrationType, Migrator},
    postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow},
};
use uuid::Uuid;

use crate::{DmChannelRecord, DmChannelSummary, ReadyState, Store, StoreError, StoreResult};

mod admin;
mod attachments;
mod audit;
mod automod;
mod bots;
mod channels;
mod content;
mod dms;
mod emojis;
mod export;
mod go_live;
mod invites;
mod messages;
mod moderation;
mod roles;
mod search;
mod servers;
mod sessions;
mod users;
mod voice;
mod webhooks;

#[cfg(test)]
mod tests;

/// The PostgreSQL migrations, embedded in the binary (applied in version order).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "search plain text",
        include_str!("../../migrations/postgres/0002_search_plain_text.sql"),
    ),
    (
        3,
        "message node",
        include_str!("../../migrations/postgres/0003_message_node.sql"),
    ),
    (
        4,
        "dm message node",
        include_str!("../../migrations/postgres/0004_dm_message_node.sql"),
    ),
];

/// Connections per node unless the URL's options say otherwise.
const POOL_SIZE: u32 = 16;

/// How long a caller waits for a pooled connection before the call fails.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// PostgreSQL implementation of [`Store`].
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/db`) and applies
    /// pending migrations, waiting for any other node migrating the same database.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?;
        Self::connect_with(options, POOL_SIZE).await
    }

    /// Connects with `options` and a pool of at most `max_connections`, then migrates.
    pub async fn connect_with(
        options: PgConnectOptions,
        max_connections: u32,
    ) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        migrator().run(&pool).await?;
        Ok(Self { pool })
    }

    /// A store in a schema of its own, created empty in the database at `url`, for a
    /// test that must not see any other test's rows. The schema is left behind (the
    /// test database is dropped as a whole between runs).
    pub async fn fresh_schema(url: &str) -> Result<Self, StoreError> {
        let schema = format!("t_{}", Uuid::new_v4().simple());
        let options = PgConnectOptions::from_str(url)?;
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&admin)
            .await?;
        admin.close().await;
        let options = options.options([("search_path", schema.as_str())]);
        Self::connect_with(options, 4).await
    }

    /// Creates the database `url` names unless it exists (connecting to the server's
    /// `postgres` database to do so). Several callers racing to create it is fine.
    ///
    /// # Errors
    /// When the server cannot be reached or the URL names no database.
    pub async fn create_database(url: &str) -> Result<(), StoreError> {
        use sqlx::ConnectOptions;
        let options = PgConnectOptions::from_str(url)?;
        let name = options
            .get_database()
            .ok_or_else(|| {
                StoreError::Database(sqlx::Error::Configuration(
                    "the URL names no database".into(),
                ))
            })?
            .to_owned();
        let mut conn = options.clone().database("postgres").connect().await?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(&name)
                .fetch_one(&mut conn)
                .await?;
        if !exists {
            let create = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
            // Another node may win the race; the database exists either way.
            if let Err(err) = sqlx::query(sqlx::AssertSqlSafe(create))
                .execute(&mut conn)
                .await
            {
                let raced = sqlx::query_scalar::<_, bool>(
                    "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
                )
                .bind(&name)
                .fetch_one(&mut conn)
                .await?;
                if !raced {
                    return Err(err.into());
                }
            }
        }
        Ok(())
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn migrator() -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
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

/// A transaction for a write (READ COMMITTED; see the module's note on locking).
async fn write_tx(pool: &PgPool) -> StoreResult<Transaction<'static, Postgres>> {
    Ok(pool.begin().await?)
}

/// A read transaction: one snapshot for several statements.
async fn read_tx(pool: &PgPool) -> StoreResult<Transaction<'static, Postgres>> {
    Ok(pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?)
}

// ---- decoding helpers ----

fn get<'r, T>(row: &'r PgRow, col: &'static str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(col).map_err(|err| match err {
        sqlx::Error::ColumnDecode { .. } => StoreError::Corrupt(col),
        other => StoreError::Database(other),
    })
}

fn id<T>(row: &PgRow, col: &'static str) -> StoreResult<Id<T>> {
    get::<Uuid>(row, col).map(Id::from_uuid)
}

fn opt_id<T>(row: &PgRow, col: &'static str) -> StoreResult<Option<Id<T>>> {
    Ok(get::<Option<Uuid>>(row, col)?.map(Id::from_uuid))
}

fn ts(row: &PgRow, col: &'static str) -> StoreResult<Timestamp> {
    get::<i64>(row, col).map(Timestamp::from_micros)
}

fn opt_ts(row: &PgRow, col: &'static str) -> StoreResult<Option<Timestamp>> {
    Ok(get::<Option<i64>>(row, col)?.map(Timestamp::from_micros))
}

fn status(row: &PgRow, col: &'static str) -> StoreResult<Status> {
    let text: String = get(row, col)?;
    crate::shared::parse_status(&text, col)
}

fn channel_type(row: &PgRow, col: &'static str) -> StoreResult<ChannelType> {
    let text: String = get(row, col)?;
    crate::shared::parse_channel_type(&text, col)
}

fn rows<T>(rows: &[PgRow], f: fn(&PgRow) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    rows.iter().map(f).collect()
}

/// The raw UUIDs of typed ids, to bind as one `UUID[]` (`= ANY($1)`).
fn uuids<T>(ids: &[Id<T>]) -> Vec<Uuid> {
    ids.iter().map(|id| id.get()).collect()
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn ready_state(&self, user: UserId) -> StoreResult<Option<ReadyState>> {
        // One REPEATABLE READ snapshot for all of READY, so the counts agree with the
        // server list. A READY dropped part-way drops the transaction, which sqlx rolls
        // back before the connection is used again.
        let mut tx = read_tx(&self.pool).await?;
        let found = sqlx::query(users::USER_BY_ID.as_str())
            .bind(user.get())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(user_record) = found.as_ref().map(users::user_row).transpose()? else {
            tx.rollback().await?;
            return Ok(None);
        };
        let mut of_user = async |sql: &str| -> StoreResult<Vec<PgRow>> {
            Ok(sqlx::query(AssertSqlSafe(sql))
                .bind(user.get())
                .fetch_all(&mut *tx)
                .await?)
        };
        let servers = of_user(&servers::SERVERS_OF_USER).await?;
        let dms = of_user(READY_DMS_OF_USER.as_str()).await?;
        let unread = of_user(messages::UNREAD_COUNTS).await?;
        let mentions = of_user(messages::MENTION_COUNTS).await?;
        let roles = of_user(&channels::ROLES_OF_USER).await?;
        let overrides = of_user(channels::OVERRIDES_OF_USER).await?;
        tx.commit().await?;

        let mut roles = rows(&roles, channels::role_row)?;
        crate::shared::sort_roles(&mut roles);
        let mut overrides = rows(&overrides, channels::override_row)?;
        crate::shared::sort_overrides(&mut overrides);
        Ok(Some(ReadyState {
            user: user_record,
            servers: rows(&servers, servers::server_row)?,
            dm_channels: rows(&dms, ready_dm_row)?,
            unread_counts: rows(&unread, messages::unread_row)?,
            mention_counts: rows(&mentions, messages::mention_row)?,
            roles,
            overrides,
        }))
    }
}

// ---- READY's reads of other areas (DMs, unread and mention counts) ----

/// The DM channels of user `$1` with the other member and the time of the last live
/// message: channels with messages first, newest message first, then newest channel.
static READY_DMS_OF_USER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT dc.id AS dm_id, dc.user_a AS dm_user_a, dc.user_b AS dm_user_b, \
         dc.created_at AS dm_created_at, \
         (SELECT MAX(d.created_at) FROM dm_messages d \
          WHERE d.channel_id = dc.id AND NOT d.deleted) AS last_message_at, {} \
         FROM dm_channels dc \
         JOIN users u ON u.id = CASE WHEN dc.user_a = $1 THEN dc.user_b ELSE dc.user_a END \
         WHERE dc.user_a = $1 OR dc.user_b = $1 \
         ORDER BY last_message_at DESC NULLS LAST, dc.created_at DESC, dc.id DESC",
        users::USER_COLS_U
    )
});

fn ready_dm_row(row: &PgRow) -> StoreResult<DmChannelSummary> {
    Ok(DmChannelSummary {
        channel: DmChannelRecord {
            id: id(row, "dm_id")?,
            user_a: id(row, "dm_user_a")?,
            user_b: id(row, "dm_user_b")?,
            created_at: ts(row, "dm_created_at")?,
        },
        recipient: users::user_row(row)?,
        last_message_at: opt_ts(row, "last_message_at")?,
    })
}
