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
use concord_protocol::{
    Bot, BotId, Channel, ChannelId, ChannelOverride, ChannelType, DirectMessage, DmChannelId, Id,
    MentionCount, Message, MessageId, Role, RoleId, Server, ServerDto, ServerId, Status, Timestamp,
    UnreadCount, UserId, VoiceParticipant, VoiceState,
};
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

use crate::{
    AuthoredMessage, BotRecord, ChannelPatch, DirectorySnapshot, DmChannelRecord, DmChannelSummary,
    MemberDetail, NewChannel, NewMessage, NewUser, Presence, ReadyState, RefreshSession,
    SavedSession, ServerPatch, Store, StoreError, StoreResult, UserPatch, UserRecord,
};
// Content: threads, reactions, pins, polls, scheduled events (issue 12).
use crate::{NewPoll, NewServerEvent, PollRecord, VoteOutcome};
use concord_protocol::{PollId, PollOptionId, ReactionCount, ServerEvent};
// ---- invites, moderation, Go Live ----
use crate::{GoLiveStart, InviteAcceptance, InviteRefusal};
use concord_protocol::{Ban, GoLiveInfo, Invite, InviteId, InvitePreview, Timeout};
// ---- custom emojis ----
use crate::{CustomEmojiRecord, EmojiCreation};
use concord_protocol::CustomEmojiId;
// ---- instance admin, password reset, server templates (issue 18) ----
use crate::{
    AdminCounts, AdminFlags, AdminRefusal, AdminServerQuery, AdminUserQuery, DeletedUser,
    InstanceSettingsRecord, ServerTemplateRecord,
};
use concord_protocol::{AdminServer, AdminUser, RegistrationMode};
// ---- attachments, search, export (issue 18 part B) ----
use crate::{AttachmentAddition, AttachmentRecord, FilePurge};
// ---- audit log (issue 18 part C) ----
use crate::{AuditLogFilter, AuditRecord};
// ---- server export (issue 18 part B) ----
use crate::{
    ExportCursor, ExportDmChannelRecord, ExportDmMessageRecord, ExportMemberRecord,
    ExportMessageRecord,
};
// ---- message search (issue 18 part B) ----
use crate::{MessageSearch, SearchResults};
// ---- automod (issue 18 part C) ----
use crate::{AutomodPatch, WordAddition};
use concord_protocol::{AutomodConfig, AutomodLogEntry, WordFilter};
// ---- webhooks (issue 18 part C) ----
use crate::{WebhookPatch, WebhookRecord};

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
    Status::parse(&text).ok_or(StoreError::Corrupt(col))
}

fn channel_type(row: &SqliteRow, col: &'static str) -> StoreResult<ChannelType> {
    let text: String = get(row, col)?;
    match text.as_str() {
        "text" => Ok(ChannelType::Text),
        "voice" => Ok(ChannelType::Voice),
        _ => Err(StoreError::Corrupt(col)),
    }
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

/// Ids in first-seen order, each once.
fn dedup<T: Copy + Eq + std::hash::Hash>(items: &[T]) -> Vec<T> {
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    items
        .iter()
        .copied()
        .filter(|item| seen.insert(*item))
        .collect()
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

    // ---- users ----

    async fn create_user(&self, user: &NewUser) -> StoreResult<UserRecord> {
        users::create_user(&self.pool, user).await
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        users::user(&mut *self.pool.acquire().await?, id).await
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        users::user_by_username(&self.pool, username).await
    }

    async fn users(&self, ids: &[UserId]) -> StoreResult<Vec<UserRecord>> {
        users::users(&self.pool, ids).await
    }

    async fn update_user(&self, id: UserId, patch: &UserPatch) -> StoreResult<Option<UserRecord>> {
        users::update_user(&self.pool, id, patch).await
    }

    async fn set_presence(&self, id: UserId, presence: &Presence) -> StoreResult<()> {
        users::set_presence(&self.pool, id, presence).await
    }

    // ---- refresh sessions ----

    async fn create_refresh_session(
        &self,
        session: &RefreshSession,
        now: Timestamp,
        keep: usize,
    ) -> StoreResult<()> {
        users::create_refresh_session(&self.pool, session, now, keep).await
    }

    async fn refresh_session_by_hash(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<RefreshSession>> {
        users::refresh_session_by_hash(&self.pool, token_hash).await
    }

    async fn rotate_refresh_session(
        &self,
        id: Uuid,
        old_hash: &str,
        new_hash: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        users::rotate_refresh_session(&self.pool, id, old_hash, new_hash, now).await
    }

    async fn refresh_session(&self, id: uuid::Uuid) -> StoreResult<Option<RefreshSession>> {
        users::refresh_session(&self.pool, id).await
    }

    async fn revoke_refresh_session(&self, id: uuid::Uuid) -> StoreResult<bool> {
        users::revoke_refresh_session(&self.pool, id).await
    }

    async fn delete_refresh_sessions(&self, user: UserId) -> StoreResult<()> {
        users::delete_refresh_sessions(&self.pool, user).await
    }

    // ---- servers and members ----

    async fn create_server(&self, server: &Server) -> StoreResult<()> {
        servers::create_server(&self.pool, server).await
    }

    async fn server(&self, id: ServerId) -> StoreResult<Option<ServerDto>> {
        servers::server(&self.pool, id).await
    }

    async fn servers_of_user(&self, user: UserId) -> StoreResult<Vec<ServerDto>> {
        of_user(
            &self.pool,
            &servers::SERVERS_OF_USER,
            user,
            servers::server_row,
        )
        .await
    }

    async fn public_servers(&self, limit: i64) -> StoreResult<Vec<ServerDto>> {
        servers::public_servers(&self.pool, limit).await
    }

    async fn update_server(
        &self,
        id: ServerId,
        patch: &ServerPatch,
        updated_at: Timestamp,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Option<ServerDto>> {
        servers::update_server(&self.pool, id, patch, updated_at, audit).await
    }

    async fn delete_server(
        &self,
        id: ServerId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Option<Vec<CustomEmojiId>>> {
        servers::delete_server(&self.pool, id, audit).await
    }

    async fn add_member(
        &self,
        server: ServerId,
        user: UserId,
        joined_at: Timestamp,
    ) -> StoreResult<()> {
        servers::add_member(&self.pool, server, user, joined_at).await
    }

    async fn remove_member(
        &self,
        server: ServerId,
        user: UserId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool> {
        servers::remove_member(&self.pool, server, user, audit).await
    }

    async fn members(&self, server: ServerId) -> StoreResult<Vec<MemberDetail>> {
        servers::members(&self.pool, server).await
    }

    async fn is_banned(&self, server: ServerId, user: UserId) -> StoreResult<bool> {
        servers::is_banned(&self.pool, server, user).await
    }

    async fn member_ids_by_usernames(
        &self,
        server: ServerId,
        names: &[String],
    ) -> StoreResult<Vec<UserId>> {
        servers::member_ids_by_usernames(&self.pool, server, names).await
    }

    // ---- channels ----

    async fn create_channel(&self, channel: &NewChannel) -> StoreResult<Channel> {
        channels::create_channel(&self.pool, channel, None).await
    }

    async fn channel(&self, id: ChannelId) -> StoreResult<Option<Channel>> {
        channels::channel(&self.pool, id).await
    }

    async fn channels(&self, server: ServerId) -> StoreResult<Vec<Channel>> {
        channels::channels(&self.pool, server).await
    }

    async fn update_channel(
        &self,
        id: ChannelId,
        patch: &ChannelPatch,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Option<Channel>> {
        channels::update_channel(&self.pool, id, patch, audit).await
    }

    async fn delete_channel(
        &self,
        id: ChannelId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool> {
        channels::delete_channel(&self.pool, id, audit).await
    }

    // ---- roles and overrides ----

    async fn create_role(&self, role: &Role) -> StoreResult<()> {
        channels::create_role(&self.pool, role, None).await
    }

    async fn assign_role(&self, server: ServerId, user: UserId, role: RoleId) -> StoreResult<bool> {
        channels::assign_role(&self.pool, server, user, role, None).await
    }

    async fn roles_of_servers(&self, servers: &[ServerId]) -> StoreResult<Vec<Role>> {
        // A snapshot: the ids may span several `IN` lists.
        let mut tx = read_tx(&self.pool).await?;
        let roles = channels::roles_of_servers(&mut tx, servers).await?;
        tx.commit().await?;
        Ok(roles)
    }

    async fn put_override(&self, ov: &ChannelOverride) -> StoreResult<ChannelOverride> {
        channels::put_override(&self.pool, ov).await
    }

    async fn overrides_of_servers(
        &self,
        servers: &[ServerId],
    ) -> StoreResult<Vec<ChannelOverride>> {
        let mut tx = read_tx(&self.pool).await?;
        let overrides = channels::overrides_of_servers(&mut tx, servers).await?;
        tx.commit().await?;
        Ok(overrides)
    }

    async fn set_timeout(
        &self,
        server: ServerId,
        user: UserId,
        expires_at: Timestamp,
        created_by: Option<UserId>,
        created_at: Timestamp,
    ) -> StoreResult<()> {
        channels::set_timeout(&self.pool, server, user, expires_at, created_by, created_at).await
    }

    async fn directory_snapshot(&self, now: Timestamp) -> StoreResult<DirectorySnapshot> {
        channels::directory_snapshot(&self.pool, now).await
    }

    // ---- read state ----

    async fn ack_channel(
        &self,
        user: UserId,
        channel: ChannelId,
        at: Timestamp,
    ) -> StoreResult<()> {
        messages::ack_channel(&self.pool, user, channel, at).await
    }

    async fn ack_dm(&self, user: UserId, channel: DmChannelId, at: Timestamp) -> StoreResult<()> {
        messages::ack_dm(&self.pool, user, channel, at).await
    }

    async fn unread_counts(&self, user: UserId) -> StoreResult<Vec<UnreadCount>> {
        of_user(
            &self.pool,
            messages::UNREAD_COUNTS,
            user,
            messages::unread_row,
        )
        .await
    }

    async fn mention_counts(&self, user: UserId) -> StoreResult<Vec<MentionCount>> {
        of_user(
            &self.pool,
            messages::MENTION_COUNTS,
            user,
            messages::mention_row,
        )
        .await
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
        channels::sort_roles(&mut roles);
        let mut overrides = rows(&overrides, channels::override_row)?;
        channels::sort_overrides(&mut overrides);
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

    // ---- messages ----

    async fn create_message(&self, message: &NewMessage) -> StoreResult<Message> {
        messages::create_message(&self.pool, message).await
    }

    async fn message(&self, id: MessageId) -> StoreResult<Option<Message>> {
        messages::message(&self.pool, id).await
    }

    async fn messages(
        &self,
        channel: ChannelId,
        before: Option<MessageId>,
        limit: i64,
    ) -> StoreResult<Vec<Message>> {
        messages::messages(&self.pool, channel, before, limit).await
    }

    async fn edit_message(
        &self,
        id: MessageId,
        content: &str,
        mention_user_ids: &[UserId],
        mention_everyone: bool,
        edited_at: Timestamp,
    ) -> StoreResult<Option<Message>> {
        messages::edit_message(
            &self.pool,
            id,
            content,
            mention_user_ids,
            mention_everyone,
            edited_at,
        )
        .await
    }

    async fn delete_message(&self, id: MessageId) -> StoreResult<bool> {
        messages::delete_message(&self.pool, id).await
    }

    // ---- direct messages ----

    async fn open_dm_channel(
        &self,
        channel: &DmChannelRecord,
    ) -> StoreResult<(DmChannelRecord, bool)> {
        dms::open_dm_channel(&self.pool, channel).await
    }

    async fn dm_channel(&self, id: DmChannelId) -> StoreResult<Option<DmChannelRecord>> {
        dms::dm_channel(&self.pool, id).await
    }

    async fn dm_channels_of_user(&self, user: UserId) -> StoreResult<Vec<DmChannelSummary>> {
        of_user(&self.pool, &dms::DMS_OF_USER, user, dms::dm_summary_row).await
    }

    async fn create_dm_message(&self, message: &DirectMessage) -> StoreResult<()> {
        dms::create_dm_message(&self.pool, message).await
    }

    async fn dm_messages(
        &self,
        channel: DmChannelId,
        before: Option<Uuid>,
        limit: i64,
    ) -> StoreResult<Vec<DirectMessage>> {
        dms::dm_messages(&self.pool, channel, before, limit).await
    }

    // ---- voice ----

    async fn voice_state(&self, user: UserId) -> StoreResult<Option<VoiceState>> {
        voice::voice_state(&self.pool, user).await
    }

    async fn voice_participants(&self, channel: ChannelId) -> StoreResult<Vec<VoiceParticipant>> {
        voice::voice_participants(&self.pool, channel).await
    }

    async fn put_voice_state(&self, state: &VoiceState) -> StoreResult<()> {
        voice::put_voice_state(&self.pool, state).await
    }

    async fn delete_voice_state(&self, user: UserId) -> StoreResult<Option<VoiceState>> {
        voice::delete_voice_state(&self.pool, user).await
    }

    async fn save_gateway_sessions(&self, sessions: &[SavedSession]) -> StoreResult<()> {
        sessions::save(&self.pool, sessions).await
    }

    async fn take_gateway_sessions(&self, now: Timestamp) -> StoreResult<Vec<SavedSession>> {
        sessions::take(&self.pool, now).await
    }

    async fn clear_voice_states(&self) -> StoreResult<()> {
        voice::clear_voice_states(&self.pool).await
    }

    // ---- bots ----

    async fn create_bot(&self, user: &NewUser, bot: &BotRecord) -> StoreResult<()> {
        bots::create_bot(&self.pool, user, bot).await
    }

    async fn bot(&self, id: BotId) -> StoreResult<Option<BotRecord>> {
        bots::bot(&self.pool, id).await
    }

    async fn bot_by_user(&self, user: UserId) -> StoreResult<Option<BotRecord>> {
        bots::bot_by_user(&self.pool, user).await
    }

    async fn bot_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<BotRecord>> {
        bots::bot_by_token_hash(&mut *self.pool.acquire().await?, token_hash).await
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
                bots::BOT_BY_TOKEN_HASH.as_str(),
                users::USER_BY_ID.replacen("?1", bots::USER_OF_TOKEN_HASH, 1)
            )
        });
        let mut conn = self.pool.acquire().await?;
        let [bots, users] = fetch_each(&mut conn, BOT_AND_USER.as_str(), token_hash).await?;
        let (Some(bot), Some(user)) = (bots.first(), users.first()) else {
            return Ok(None);
        };
        Ok(Some((bots::bot_row(bot)?, users::user_row(user)?)))
    }

    async fn bots_of_creator(&self, user: UserId) -> StoreResult<Vec<Bot>> {
        bots::bots_of_creator(&self.pool, user).await
    }

    async fn update_bot(
        &self,
        id: BotId,
        name: Option<&str>,
        description: Option<&str>,
    ) -> StoreResult<Option<Bot>> {
        bots::update_bot(&self.pool, id, name, description).await
    }

    async fn revoke_bot(&self, id: BotId, at: Timestamp) -> StoreResult<bool> {
        bots::revoke_bot(&self.pool, id, at).await
    }

    async fn set_bot_token(&self, id: BotId, token_hash: &str) -> StoreResult<bool> {
        bots::set_bot_token(&self.pool, id, token_hash).await
    }

    async fn recent_messages_by_author(
        &self,
        author: UserId,
        limit: u32,
    ) -> StoreResult<Vec<AuthoredMessage>> {
        bots::recent_messages_by_author(&self.pool, author, limit).await
    }

    // ---- roles, role assignments and channel overrides (issue 12, permissions) ----

    async fn role(&self, id: RoleId) -> StoreResult<Option<Role>> {
        roles::role(&self.pool, id).await
    }

    async fn update_role(
        &self,
        id: RoleId,
        patch: &crate::RolePatch,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Option<(Role, bool)>> {
        roles::update_role(&self.pool, id, patch, audit).await
    }

    async fn delete_role(&self, id: RoleId, audit: Option<&AuditRecord>) -> StoreResult<bool> {
        roles::delete_role(&self.pool, id, audit).await
    }

    async fn unassign_role(
        &self,
        server: ServerId,
        user: UserId,
        role: RoleId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool> {
        roles::unassign_role(&self.pool, server, user, role, audit).await
    }

    async fn overrides_of_channel(&self, channel: ChannelId) -> StoreResult<Vec<ChannelOverride>> {
        roles::overrides_of_channel(&self.pool, channel).await
    }

    async fn set_override(
        &self,
        ov: &ChannelOverride,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<(ChannelOverride, bool)> {
        roles::set_override(&self.pool, ov, audit).await
    }

    async fn delete_override(
        &self,
        channel: ChannelId,
        id: concord_protocol::OverrideId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool> {
        roles::delete_override(&self.pool, channel, id, audit).await
    }

    // ---- content: threads, reactions, pins, polls, scheduled events (issue 12) ----

    async fn thread_replies(
        &self,
        root: MessageId,
        after: Option<MessageId>,
        limit: i64,
    ) -> StoreResult<Vec<Message>> {
        content::thread_replies(&self.pool, root, after, limit).await
    }

    async fn add_reaction(
        &self,
        message: MessageId,
        user: UserId,
        emoji: &str,
        at: Timestamp,
    ) -> StoreResult<bool> {
        content::add_reaction(&self.pool, message, user, emoji, at).await
    }

    async fn remove_reaction(
        &self,
        message: MessageId,
        user: UserId,
        emoji: &str,
    ) -> StoreResult<bool> {
        content::remove_reaction(&self.pool, message, user, emoji).await
    }

    async fn reactions(
        &self,
        message: MessageId,
        viewer: UserId,
    ) -> StoreResult<Vec<ReactionCount>> {
        content::reactions(&self.pool, message, viewer).await
    }

    async fn pin_message(&self, id: MessageId, by: UserId, at: Timestamp) -> StoreResult<bool> {
        content::pin_message(&self.pool, id, by, at).await
    }

    async fn unpin_message(&self, id: MessageId) -> StoreResult<bool> {
        content::unpin_message(&self.pool, id).await
    }

    async fn pinned_messages(&self, channel: ChannelId) -> StoreResult<Vec<Message>> {
        content::pinned_messages(&self.pool, channel).await
    }

    async fn create_poll(&self, message: &NewMessage, poll: &NewPoll) -> StoreResult<Message> {
        content::create_poll(&self.pool, message, poll).await
    }

    async fn poll(&self, id: PollId) -> StoreResult<Option<PollRecord>> {
        content::poll(&self.pool, id).await
    }

    async fn poll_ballots(&self, id: PollId) -> StoreResult<Vec<(UserId, PollOptionId)>> {
        content::poll_ballots(&self.pool, id).await
    }

    async fn user_votes(
        &self,
        user: UserId,
        polls: &[PollId],
    ) -> StoreResult<Vec<(PollId, PollOptionId)>> {
        content::user_votes(&self.pool, user, polls).await
    }

    async fn cast_vote(
        &self,
        poll: PollId,
        user: UserId,
        option: PollOptionId,
        at: Timestamp,
    ) -> StoreResult<VoteOutcome> {
        content::cast_vote(&self.pool, poll, user, option, at).await
    }

    async fn create_server_event(
        &self,
        message: &NewMessage,
        event: &NewServerEvent,
    ) -> StoreResult<Message> {
        content::create_server_event(&self.pool, message, event).await
    }

    async fn upcoming_server_events(
        &self,
        server: ServerId,
        channels: &[ChannelId],
        after: Timestamp,
        limit: i64,
    ) -> StoreResult<Vec<ServerEvent>> {
        content::upcoming_server_events(&self.pool, server, channels, after, limit).await
    }

    // ---- invites, moderation, Go Live, logout ----

    async fn create_invite(&self, invite: &Invite, audit: Option<&AuditRecord>) -> StoreResult<()> {
        invites::create_invite(&self.pool, invite, audit).await
    }

    async fn invites(&self, server: ServerId) -> StoreResult<Vec<Invite>> {
        invites::invites(&self.pool, server).await
    }

    async fn delete_invite(
        &self,
        server: ServerId,
        invite: InviteId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool> {
        invites::delete_invite(&self.pool, server, invite, audit).await
    }

    async fn invite_preview(
        &self,
        code: &str,
        now: Timestamp,
    ) -> StoreResult<Option<InvitePreview>> {
        invites::invite_preview(&self.pool, code, now).await
    }

    async fn accept_invite(
        &self,
        code: &str,
        user: UserId,
        now: Timestamp,
    ) -> StoreResult<InviteAcceptance> {
        invites::accept_invite(&self.pool, code, user, now).await
    }

    async fn create_user_with_invite(
        &self,
        user: &NewUser,
        code: &str,
    ) -> StoreResult<Result<UserRecord, InviteRefusal>> {
        invites::create_user_with_invite(&self.pool, user, code).await
    }

    async fn ban(&self, ban: &Ban, audit: Option<&AuditRecord>) -> StoreResult<bool> {
        moderation::ban(&self.pool, ban, audit).await
    }

    async fn unban(
        &self,
        server: ServerId,
        user: UserId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool> {
        moderation::unban(&self.pool, server, user, audit).await
    }

    async fn bans(&self, server: ServerId) -> StoreResult<Vec<Ban>> {
        moderation::bans(&self.pool, server).await
    }

    async fn put_timeout(&self, timeout: &Timeout, audit: Option<&AuditRecord>) -> StoreResult<()> {
        moderation::put_timeout(&self.pool, timeout, audit).await
    }

    async fn remove_timeout(
        &self,
        server: ServerId,
        user: UserId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Option<Timestamp>> {
        moderation::remove_timeout(&self.pool, server, user, audit).await
    }

    async fn go_live(&self, channel: ChannelId) -> StoreResult<Option<GoLiveInfo>> {
        go_live::go_live(&self.pool, channel).await
    }

    async fn start_go_live(&self, info: &GoLiveInfo) -> StoreResult<GoLiveStart> {
        go_live::start_go_live(&self.pool, info).await
    }

    async fn stop_go_live(&self, channel: ChannelId, broadcaster: UserId) -> StoreResult<bool> {
        go_live::stop_go_live(&self.pool, channel, broadcaster).await
    }

    async fn end_stale_go_live(&self, user: UserId) -> StoreResult<Vec<GoLiveInfo>> {
        go_live::end_stale_go_live(&self.pool, user).await
    }

    async fn delete_refresh_session(
        &self,
        user: UserId,
        token_hash: &str,
    ) -> StoreResult<Option<uuid::Uuid>> {
        users::delete_refresh_session(&self.pool, user, token_hash).await
    }

    // ---- custom emojis ----

    async fn custom_emojis(&self, server: ServerId) -> StoreResult<Vec<CustomEmojiRecord>> {
        emojis::custom_emojis(&self.pool, server).await
    }

    async fn custom_emoji(&self, id: CustomEmojiId) -> StoreResult<Option<CustomEmojiRecord>> {
        emojis::custom_emoji(&self.pool, id).await
    }

    async fn create_custom_emoji(
        &self,
        emoji: &CustomEmojiRecord,
        limit: i64,
    ) -> StoreResult<EmojiCreation> {
        emojis::create_custom_emoji(&self.pool, emoji, limit).await
    }

    async fn delete_custom_emoji(
        &self,
        server: ServerId,
        id: CustomEmojiId,
    ) -> StoreResult<Option<CustomEmojiRecord>> {
        emojis::delete_custom_emoji(&self.pool, server, id).await
    }
    // ---- instance admin, password reset, server templates (issue 18) ----

    async fn instance_settings(&self) -> StoreResult<InstanceSettingsRecord> {
        admin::instance_settings(&self.pool).await
    }

    async fn update_instance_settings(
        &self,
        registration_mode: Option<RegistrationMode>,
        by: UserId,
        at: Timestamp,
    ) -> StoreResult<InstanceSettingsRecord> {
        admin::update_instance_settings(&self.pool, registration_mode, by, at).await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>> {
        admin::user_by_email(&self.pool, email).await
    }

    async fn create_reset_token(
        &self,
        user: UserId,
        token_hash: &str,
        created_at: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        admin::create_reset_token(&self.pool, user, token_hash, created_at, expires_at).await
    }

    async fn reset_token_user(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<UserRecord>> {
        admin::reset_token_user(&self.pool, token_hash, now).await
    }

    async fn consume_reset_token(
        &self,
        token_hash: &str,
        now: Timestamp,
        password_hash: &str,
    ) -> StoreResult<Option<UserId>> {
        admin::consume_reset_token(&self.pool, token_hash, now, password_hash).await
    }

    async fn admin_counts(&self) -> StoreResult<AdminCounts> {
        admin::admin_counts(&self.pool).await
    }

    async fn admin_users(&self, query: &AdminUserQuery) -> StoreResult<(Vec<AdminUser>, i64)> {
        admin::admin_users(&self.pool, query).await
    }

    async fn admin_user(&self, id: UserId) -> StoreResult<Option<AdminUser>> {
        admin::admin_user(&self.pool, id).await
    }

    async fn set_admin_flags(
        &self,
        actor: UserId,
        target: UserId,
        flags: &AdminFlags,
        at: Timestamp,
    ) -> StoreResult<Result<(), AdminRefusal>> {
        admin::set_admin_flags(&self.pool, actor, target, flags, at).await
    }

    async fn delete_user_as_admin(
        &self,
        actor: UserId,
        target: UserId,
    ) -> StoreResult<Result<DeletedUser, AdminRefusal>> {
        admin::delete_user_as_admin(&self.pool, actor, target).await
    }

    async fn admin_servers(
        &self,
        query: &AdminServerQuery,
    ) -> StoreResult<(Vec<AdminServer>, i64)> {
        admin::admin_servers(&self.pool, query).await
    }

    async fn server_templates(&self) -> StoreResult<Vec<ServerTemplateRecord>> {
        admin::server_templates(&self.pool).await
    }

    async fn server_template(&self, id: Uuid) -> StoreResult<Option<ServerTemplateRecord>> {
        admin::server_template(&self.pool, id).await
    }

    async fn create_server_with_channels(
        &self,
        server: &Server,
        channels: &[NewChannel],
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Vec<Channel>> {
        admin::create_server_with_channels(&self.pool, server, channels, audit).await
    }

    // ---- audit log (issue 18 part C) ----

    async fn create_channel_audited(
        &self,
        channel: &NewChannel,
        audit: &AuditRecord,
    ) -> StoreResult<Channel> {
        channels::create_channel(&self.pool, channel, Some(audit)).await
    }

    async fn create_role_audited(&self, role: &Role, audit: &AuditRecord) -> StoreResult<()> {
        channels::create_role(&self.pool, role, Some(audit)).await
    }

    async fn assign_role_audited(
        &self,
        server: ServerId,
        user: UserId,
        role: RoleId,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        channels::assign_role(&self.pool, server, user, role, Some(audit)).await
    }

    async fn audit_logs(
        &self,
        server: ServerId,
        query: &AuditLogFilter,
    ) -> StoreResult<Vec<AuditRecord>> {
        audit::audit_logs(&self.pool, server, query).await
    }

    // ---- attachments, search, export (issue 18 part B) ----

    async fn attachments(&self, message: MessageId) -> StoreResult<Vec<AttachmentRecord>> {
        attachments::attachments(&self.pool, message).await
    }

    async fn attachment(
        &self,
        message: MessageId,
        stored_name: &str,
    ) -> StoreResult<Option<AttachmentRecord>> {
        attachments::attachment(&self.pool, message, stored_name).await
    }

    async fn add_attachments(
        &self,
        message: MessageId,
        records: &[AttachmentRecord],
        limit: i64,
    ) -> StoreResult<AttachmentAddition> {
        attachments::add_attachments(&self.pool, message, records, limit).await
    }

    async fn file_purges(&self, limit: i64) -> StoreResult<Vec<FilePurge>> {
        attachments::file_purges(&self.pool, limit).await
    }

    async fn forget_file_purges(&self, done: &[i64]) -> StoreResult<()> {
        attachments::forget_file_purges(&self.pool, done).await
    }

    // ---- server export (issue 18 part B) ----

    async fn export_members(
        &self,
        server: ServerId,
        after: Option<&ExportCursor>,
        limit: i64,
    ) -> StoreResult<Vec<ExportMemberRecord>> {
        export::export_members(&self.pool, server, after, limit).await
    }

    async fn export_messages(
        &self,
        channel: ChannelId,
        after: Option<&ExportCursor>,
        limit: i64,
    ) -> StoreResult<Vec<ExportMessageRecord>> {
        export::export_messages(&self.pool, channel, after, limit).await
    }

    async fn export_dm_channels(
        &self,
        user: UserId,
        after: Option<&ExportCursor>,
        limit: i64,
    ) -> StoreResult<Vec<ExportDmChannelRecord>> {
        export::export_dm_channels(&self.pool, user, after, limit).await
    }

    async fn export_dm_messages(
        &self,
        channel: DmChannelId,
        after: Option<&ExportCursor>,
        limit: i64,
    ) -> StoreResult<Vec<ExportDmMessageRecord>> {
        export::export_dm_messages(&self.pool, channel, after, limit).await
    }
    // ---- message search (issue 18 part B) ----

    async fn search_messages(&self, query: &MessageSearch) -> StoreResult<SearchResults> {
        search::search_messages(&self.pool, query).await
    }

    async fn flush_search_index(&self, limit: i64) -> StoreResult<u64> {
        search::flush_search_index(&self.pool, limit).await
    }
    // ---- automod (issue 18 part C) ----

    async fn automod_config(&self, server: ServerId) -> StoreResult<Option<AutomodConfig>> {
        automod::automod_config(&self.pool, server).await
    }

    async fn update_automod_config(
        &self,
        server: ServerId,
        patch: &AutomodPatch,
        at: Timestamp,
    ) -> StoreResult<AutomodConfig> {
        automod::update_automod_config(&self.pool, server, patch, at).await
    }

    async fn automod_words(&self, server: ServerId) -> StoreResult<Vec<WordFilter>> {
        automod::automod_words(&self.pool, server).await
    }

    async fn add_automod_word(&self, word: &WordFilter, limit: i64) -> StoreResult<WordAddition> {
        automod::add_automod_word(&self.pool, word, limit).await
    }

    async fn remove_automod_word(&self, server: ServerId, word: &str) -> StoreResult<bool> {
        automod::remove_automod_word(&self.pool, server, word).await
    }

    async fn append_automod_log(&self, entry: &AutomodLogEntry, keep: i64) -> StoreResult<()> {
        automod::append_automod_log(&self.pool, entry, keep).await
    }

    async fn automod_logs(
        &self,
        server: ServerId,
        limit: i64,
    ) -> StoreResult<Vec<AutomodLogEntry>> {
        automod::automod_logs(&self.pool, server, limit).await
    }

    async fn has_recent_duplicate(
        &self,
        channel: ChannelId,
        author: UserId,
        content: &str,
        since: Timestamp,
    ) -> StoreResult<bool> {
        automod::has_recent_duplicate(&self.pool, channel, author, content, since).await
    }

    async fn count_recent_messages(
        &self,
        channel: ChannelId,
        author: UserId,
        since: Timestamp,
    ) -> StoreResult<i64> {
        automod::count_recent_messages(&self.pool, channel, author, since).await
    }
    // ---- webhooks (issue 18 part C) ----

    async fn webhooks(&self, server: ServerId) -> StoreResult<Vec<WebhookRecord>> {
        webhooks::webhooks(&self.pool, server).await
    }

    async fn webhook(
        &self,
        server: ServerId,
        id: uuid::Uuid,
    ) -> StoreResult<Option<WebhookRecord>> {
        webhooks::webhook(&self.pool, server, id).await
    }

    async fn create_webhook(&self, webhook: &WebhookRecord, limit: i64) -> StoreResult<bool> {
        webhooks::create_webhook(&self.pool, webhook, limit).await
    }

    async fn update_webhook(
        &self,
        server: ServerId,
        id: uuid::Uuid,
        patch: &WebhookPatch,
        at: Timestamp,
    ) -> StoreResult<Option<WebhookRecord>> {
        webhooks::update_webhook(&self.pool, server, id, patch, at).await
    }

    async fn delete_webhook(&self, server: ServerId, id: uuid::Uuid) -> StoreResult<bool> {
        webhooks::delete_webhook(&self.pool, server, id).await
    }

    async fn record_webhook_delivery(
        &self,
        id: uuid::Uuid,
        delivered: bool,
        at: Timestamp,
    ) -> StoreResult<()> {
        webhooks::record_webhook_delivery(&self.pool, id, delivered, at).await
    }
}
