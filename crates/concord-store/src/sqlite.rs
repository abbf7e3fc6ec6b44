//! The embedded SQLite backend of [`Store`].
//!
//! One file in the data directory, WAL journal, foreign keys enforced. Queries are
//! runtime-checked (`sqlx::query`), so no database is needed at compile time. Writes that
//! take more than one statement run in a `BEGIN IMMEDIATE` transaction (taking the write
//! lock up front, so concurrent writers wait on `busy_timeout` instead of failing on a
//! lock upgrade); reads that take more than one statement run in one deferred
//! transaction, which in WAL mode is one consistent snapshot.

use std::{borrow::Cow, collections::HashMap, path::Path, str::FromStr, time::Duration};

use async_trait::async_trait;
use concord_protocol::{
    Bot, BotId, Channel, ChannelId, ChannelOverride, ChannelType, DirectMessage, DmChannelId, Id,
    MemberRoleInfo, MentionCount, Message, MessageId, Role, RoleId, Server, ServerDto, ServerId,
    Status, Timestamp, UnreadCount, UserId, VoiceParticipant, VoiceState,
};
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
    BotRecord, ChannelPatch, DirectorySnapshot, DmChannelRecord, DmChannelSummary, MemberDetail,
    NewChannel, NewMessage, NewUser, Presence, RefreshSession, ServerPatch, Store, StoreError,
    StoreResult, UserPatch, UserRecord,
};

/// The SQLite migrations, embedded in the binary (applied in version order).
const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "init",
    include_str!("../migrations/sqlite/0001_init.sql"),
)];

/// How long a connection waits for the write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections of a file-backed pool (one writer at a time; readers run in parallel).
const FILE_POOL_SIZE: u32 = 4;

/// Ids per `IN (...)` list.
const IN_CHUNK: usize = 500;

// ---- column lists (macros so that they can be spliced into `concat!`) ----

/// `a.x, a.y, ...` from an alias and column names.
macro_rules! cols {
    ($p:ident: $first:ident $(, $rest:ident)* $(,)?) => {
        concat!(stringify!($p), ".", stringify!($first) $(, ", ", stringify!($p), ".", stringify!($rest))*)
    };
}

macro_rules! user_cols {
    () => {
        "id, username, email, password_hash, avatar_url, bio, pronouns, status, custom_status, \
         activity, created_at, is_admin, is_bot, disabled"
    };
    ($p:ident) => {
        cols!($p: id, username, email, password_hash, avatar_url, bio, pronouns, status,
            custom_status, activity, created_at, is_admin, is_bot, disabled)
    };
}

macro_rules! server_select {
    () => {
        "SELECT s.id, s.name, s.owner_id, s.icon_url, s.is_public, s.require_invite, \
         s.created_at, s.updated_at, \
         (SELECT COUNT(*) FROM server_members sm WHERE sm.server_id = s.id) AS member_count \
         FROM servers s"
    };
}

macro_rules! channel_cols {
    () => {
        "id, server_id, name, type, position, category, topic, created_at"
    };
}

macro_rules! role_cols {
    () => {
        "id, server_id, name, permissions, color, position, created_at"
    };
}

macro_rules! override_cols {
    () => {
        "id, channel_id, role_id, user_id, allow, deny"
    };
    ($p:ident) => {
        cols!($p: id, channel_id, role_id, user_id, allow, deny)
    };
}

macro_rules! message_select {
    () => {
        "SELECT m.id, m.channel_id, m.author_id, m.content, m.reply_to, m.thread_id, \
         m.mention_everyone, m.edited_at, m.deleted, m.pinned, m.pinned_by, m.pinned_at, \
         m.created_at, \
         (SELECT COUNT(*) FROM messages r WHERE r.thread_id = m.id AND r.deleted = 0) \
         AS thread_reply_count \
         FROM messages m"
    };
}

macro_rules! dm_message_cols {
    () => {
        "id, channel_id, author_id, content, edited_at, created_at"
    };
}

macro_rules! voice_cols {
    () => {
        "user_id, channel_id, self_mute, self_deaf, self_video, self_screen, server_mute, \
         server_deaf, joined_at"
    };
    ($p:ident) => {
        cols!($p: user_id, channel_id, self_mute, self_deaf, self_video, self_screen,
            server_mute, server_deaf, joined_at)
    };
}

macro_rules! bot_cols {
    () => {
        "id, user_id, name, description, created_by, token_hash, revoked_at, created_at"
    };
}

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

    /// A transaction that holds the write lock from its start.
    async fn write_tx(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// A read transaction (one snapshot for several statements).
    async fn read_tx(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin().await?)
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

fn user_row(row: &SqliteRow) -> StoreResult<UserRecord> {
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
    })
}

fn server_row(row: &SqliteRow) -> StoreResult<ServerDto> {
    Ok(ServerDto {
        server: Server {
            id: id(row, "id")?,
            name: get(row, "name")?,
            owner_id: id(row, "owner_id")?,
            icon_url: get(row, "icon_url")?,
            is_public: get(row, "is_public")?,
            require_invite: get(row, "require_invite")?,
            created_at: ts(row, "created_at")?,
            updated_at: ts(row, "updated_at")?,
        },
        member_count: get(row, "member_count")?,
    })
}

fn channel_row(row: &SqliteRow) -> StoreResult<Channel> {
    Ok(Channel {
        id: id(row, "id")?,
        server_id: id(row, "server_id")?,
        name: get(row, "name")?,
        kind: channel_type(row, "type")?,
        position: get(row, "position")?,
        category: get(row, "category")?,
        topic: get(row, "topic")?,
        created_at: ts(row, "created_at")?,
    })
}

fn role_row(row: &SqliteRow) -> StoreResult<Role> {
    Ok(Role {
        id: id(row, "id")?,
        server_id: id(row, "server_id")?,
        name: get(row, "name")?,
        permissions: get(row, "permissions")?,
        color: get(row, "color")?,
        position: get(row, "position")?,
        created_at: ts(row, "created_at")?,
    })
}

fn override_row(row: &SqliteRow) -> StoreResult<ChannelOverride> {
    Ok(ChannelOverride {
        id: id(row, "id")?,
        channel_id: id(row, "channel_id")?,
        role_id: opt_id(row, "role_id")?,
        user_id: opt_id(row, "user_id")?,
        allow: get(row, "allow")?,
        deny: get(row, "deny")?,
    })
}

/// A message row without its mentions (filled in by [`attach_mentions`]).
fn message_row(row: &SqliteRow) -> StoreResult<Message> {
    Ok(Message {
        id: id(row, "id")?,
        channel_id: id(row, "channel_id")?,
        author_id: opt_id(row, "author_id")?,
        content: get(row, "content")?,
        reply_to: opt_id(row, "reply_to")?,
        mention_user_ids: Vec::new(),
        mention_everyone: get(row, "mention_everyone")?,
        thread_id: opt_id(row, "thread_id")?,
        thread_reply_count: get(row, "thread_reply_count")?,
        edited_at: opt_ts(row, "edited_at")?,
        deleted: get(row, "deleted")?,
        created_at: ts(row, "created_at")?,
        pinned: get(row, "pinned")?,
        pinned_by: opt_id(row, "pinned_by")?,
        pinned_at: opt_ts(row, "pinned_at")?,
        poll: None,
        event: None,
    })
}

fn dm_channel_row(row: &SqliteRow) -> StoreResult<DmChannelRecord> {
    Ok(DmChannelRecord {
        id: id(row, "id")?,
        user_a: id(row, "user_a")?,
        user_b: id(row, "user_b")?,
        created_at: ts(row, "created_at")?,
    })
}

fn dm_message_row(row: &SqliteRow) -> StoreResult<DirectMessage> {
    Ok(DirectMessage {
        id: id(row, "id")?,
        channel_id: id(row, "channel_id")?,
        author_id: opt_id(row, "author_id")?,
        content: get(row, "content")?,
        edited_at: opt_ts(row, "edited_at")?,
        created_at: ts(row, "created_at")?,
    })
}

fn voice_row(row: &SqliteRow) -> StoreResult<VoiceState> {
    Ok(VoiceState {
        user_id: id(row, "user_id")?,
        channel_id: opt_id(row, "channel_id")?,
        self_mute: get(row, "self_mute")?,
        self_deaf: get(row, "self_deaf")?,
        self_video: get(row, "self_video")?,
        self_screen: get(row, "self_screen")?,
        server_mute: get(row, "server_mute")?,
        server_deaf: get(row, "server_deaf")?,
        joined_at: opt_ts(row, "joined_at")?,
    })
}

fn bot_row(row: &SqliteRow) -> StoreResult<BotRecord> {
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

fn rows<T>(rows: &[SqliteRow], f: fn(&SqliteRow) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    rows.iter().map(f).collect()
}

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

// ---- shared statements ----

async fn insert_user(conn: &mut SqliteConnection, user: &NewUser) -> StoreResult<UserRecord> {
    let row = sqlx::query(concat!(
        "INSERT INTO users (id, username, email, password_hash, status, created_at, is_admin, \
         is_bot) VALUES (?1, ?2, ?3, ?4, ?5, ?6, \
         CASE WHEN ?7 AND NOT ?8 AND NOT EXISTS (SELECT 1 FROM users WHERE is_bot = 0) \
         THEN 1 ELSE 0 END, ?8) RETURNING ",
        user_cols!()
    ))
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

async fn insert_mentions(
    conn: &mut SqliteConnection,
    message: MessageId,
    users: &[UserId],
) -> StoreResult<()> {
    for (ord, user) in dedup(users).into_iter().enumerate() {
        sqlx::query("INSERT INTO message_mentions (message_id, user_id, ord) VALUES (?, ?, ?)")
            .bind(message.get())
            .bind(user.get())
            .bind(i64::try_from(ord).unwrap_or(i64::MAX))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Fills `mention_user_ids` of `messages` (in the order they were stored).
async fn attach_mentions(conn: &mut SqliteConnection, messages: &mut [Message]) -> StoreResult<()> {
    if messages.is_empty() {
        return Ok(());
    }
    let mut by_message: HashMap<MessageId, Vec<UserId>> = HashMap::new();
    for chunk in messages.chunks(IN_CHUNK) {
        let sql = format!(
            "SELECT message_id, user_id FROM message_mentions WHERE message_id IN ({}) \
             ORDER BY message_id, ord",
            placeholders(chunk.len())
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for message in chunk {
            query = query.bind(message.id.get());
        }
        for row in query.fetch_all(&mut *conn).await? {
            by_message
                .entry(id(&row, "message_id")?)
                .or_default()
                .push(id(&row, "user_id")?);
        }
    }
    for message in messages {
        if let Some(users) = by_message.remove(&message.id) {
            message.mention_user_ids = users;
        }
    }
    Ok(())
}

async fn fetch_message(conn: &mut SqliteConnection, id: MessageId) -> StoreResult<Option<Message>> {
    let row = sqlx::query(concat!(message_select!(), " WHERE m.id = ?"))
        .bind(id.get())
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut messages = [message_row(&row)?];
    attach_mentions(conn, &mut messages).await?;
    let [message] = messages;
    Ok(Some(message))
}

async fn fetch_server(conn: &mut SqliteConnection, id: ServerId) -> StoreResult<Option<ServerDto>> {
    let row = sqlx::query(concat!(server_select!(), " WHERE s.id = ?"))
        .bind(id.get())
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(server_row).transpose()
}

/// Runs `sql` (with one `{}` for a placeholder list) over `ids` in chunks.
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
        let mut conn = self.pool.acquire().await?;
        insert_user(&mut conn, user).await
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        let row = sqlx::query(concat!("SELECT ", user_cols!(), " FROM users WHERE id = ?"))
            .bind(id.get())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_row).transpose()
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_cols!(),
            " FROM users WHERE username = ?"
        ))
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_row).transpose()
    }

    async fn users(&self, ids: &[UserId]) -> StoreResult<Vec<UserRecord>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = dedup(ids).into_iter().map(UserId::get).collect();
        let mut tx = self.read_tx().await?;
        let users = fetch_in(
            &mut tx,
            concat!("SELECT ", user_cols!(), " FROM users WHERE id IN ({})"),
            &ids,
            user_row,
        )
        .await?;
        tx.commit().await?;
        Ok(users)
    }

    async fn update_user(&self, id: UserId, patch: &UserPatch) -> StoreResult<Option<UserRecord>> {
        let row = sqlx::query(concat!(
            "UPDATE users SET avatar_url = COALESCE(?, avatar_url), bio = COALESCE(?, bio), \
             pronouns = COALESCE(?, pronouns), status = COALESCE(?, status), \
             custom_status = COALESCE(?, custom_status), activity = COALESCE(?, activity) \
             WHERE id = ? RETURNING ",
            user_cols!()
        ))
        .bind(&patch.avatar_url)
        .bind(&patch.bio)
        .bind(&patch.pronouns)
        .bind(patch.status.map(Status::as_str))
        .bind(&patch.custom_status)
        .bind(&patch.activity)
        .bind(id.get())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_row).transpose()
    }

    async fn set_presence(&self, id: UserId, presence: &Presence) -> StoreResult<()> {
        sqlx::query("UPDATE users SET status = ?, custom_status = ?, activity = ? WHERE id = ?")
            .bind(presence.status.as_str())
            .bind(&presence.custom_status)
            .bind(&presence.activity)
            .bind(id.get())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- refresh sessions ----

    async fn create_refresh_session(
        &self,
        session: &RefreshSession,
        now: Timestamp,
        keep: usize,
    ) -> StoreResult<()> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        let mut tx = self.write_tx().await?;
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

    async fn refresh_session_by_hash(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<RefreshSession>> {
        let row = sqlx::query(
            "SELECT id, user_id, token_hash, created_at, expires_at FROM refresh_sessions \
             WHERE token_hash = ?",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(session_row).transpose()
    }

    async fn rotate_refresh_session(
        &self,
        id: Uuid,
        old_hash: &str,
        new_hash: &str,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE refresh_sessions SET token_hash = ? WHERE id = ? AND token_hash = ?",
        )
        .bind(new_hash)
        .bind(id)
        .bind(old_hash)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_refresh_sessions(&self, user: UserId) -> StoreResult<()> {
        sqlx::query("DELETE FROM refresh_sessions WHERE user_id = ?")
            .bind(user.get())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- servers and members ----

    async fn create_server(&self, server: &Server) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO servers (id, name, owner_id, icon_url, is_public, require_invite, \
             created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(server.id.get())
        .bind(&server.name)
        .bind(server.owner_id.get())
        .bind(&server.icon_url)
        .bind(server.is_public)
        .bind(server.require_invite)
        .bind(server.created_at.as_micros())
        .bind(server.updated_at.as_micros())
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO server_members (server_id, user_id, joined_at) VALUES (?, ?, ?)")
            .bind(server.id.get())
            .bind(server.owner_id.get())
            .bind(server.created_at.as_micros())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn server(&self, id: ServerId) -> StoreResult<Option<ServerDto>> {
        let mut conn = self.pool.acquire().await?;
        fetch_server(&mut conn, id).await
    }

    async fn servers_of_user(&self, user: UserId) -> StoreResult<Vec<ServerDto>> {
        let found = sqlx::query(concat!(
            server_select!(),
            " JOIN server_members me ON me.server_id = s.id WHERE me.user_id = ? \
             ORDER BY s.created_at ASC, s.id ASC"
        ))
        .bind(user.get())
        .fetch_all(&self.pool)
        .await?;
        rows(&found, server_row)
    }

    async fn public_servers(&self, limit: i64) -> StoreResult<Vec<ServerDto>> {
        let found = sqlx::query(concat!(
            server_select!(),
            " WHERE s.is_public = 1 ORDER BY member_count DESC, s.created_at DESC, s.id DESC \
             LIMIT ?"
        ))
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?;
        rows(&found, server_row)
    }

    async fn update_server(
        &self,
        id: ServerId,
        patch: &ServerPatch,
        updated_at: Timestamp,
    ) -> StoreResult<Option<ServerDto>> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE servers SET name = COALESCE(?, name), icon_url = COALESCE(?, icon_url), \
             is_public = COALESCE(?, is_public), \
             require_invite = COALESCE(?, require_invite), updated_at = ? WHERE id = ?",
        )
        .bind(&patch.name)
        .bind(&patch.icon_url)
        .bind(patch.is_public)
        .bind(patch.require_invite)
        .bind(updated_at.as_micros())
        .bind(id.get())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let server = fetch_server(&mut tx, id).await?;
        tx.commit().await?;
        Ok(server)
    }

    async fn delete_server(&self, id: ServerId) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM servers WHERE id = ?")
            .bind(id.get())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn add_member(
        &self,
        server: ServerId,
        user: UserId,
        joined_at: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO server_members (server_id, user_id, joined_at) VALUES (?, ?, ?)")
            .bind(server.get())
            .bind(user.get())
            .bind(joined_at.as_micros())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn remove_member(&self, server: ServerId, user: UserId) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM member_roles WHERE server_id = ? AND user_id = ?")
            .bind(server.get())
            .bind(user.get())
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM server_members WHERE server_id = ? AND user_id = ?")
            .bind(server.get())
            .bind(user.get())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn members(&self, server: ServerId) -> StoreResult<Vec<MemberDetail>> {
        let mut tx = self.read_tx().await?;
        let member_rows = sqlx::query(concat!(
            "SELECT ",
            user_cols!(u),
            ", m.joined_at FROM server_members m JOIN users u ON u.id = m.user_id \
             WHERE m.server_id = ? ORDER BY m.joined_at ASC, m.user_id ASC"
        ))
        .bind(server.get())
        .fetch_all(&mut *tx)
        .await?;
        let role_rows = sqlx::query(
            "SELECT mr.user_id, r.id, r.name, r.color, r.position FROM member_roles mr \
             JOIN roles r ON r.id = mr.role_id WHERE mr.server_id = ? \
             ORDER BY r.position DESC, r.created_at ASC, r.id ASC",
        )
        .bind(server.get())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;

        let mut roles: HashMap<UserId, Vec<MemberRoleInfo>> = HashMap::new();
        for row in &role_rows {
            roles
                .entry(id(row, "user_id")?)
                .or_default()
                .push(MemberRoleInfo {
                    id: id(row, "id")?,
                    name: get(row, "name")?,
                    color: get(row, "color")?,
                    position: get(row, "position")?,
                });
        }
        member_rows
            .iter()
            .map(|row| {
                let user = user_row(row)?;
                Ok(MemberDetail {
                    roles: roles.remove(&user.id).unwrap_or_default(),
                    joined_at: ts(row, "joined_at")?,
                    user,
                })
            })
            .collect()
    }

    async fn is_banned(&self, server: ServerId, user: UserId) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT EXISTS (SELECT 1 FROM bans WHERE server_id = ? AND user_id = ?) AS banned",
        )
        .bind(server.get())
        .bind(user.get())
        .fetch_one(&self.pool)
        .await?;
        get(&row, "banned")
    }

    async fn member_ids_by_usernames(
        &self,
        server: ServerId,
        names: &[String],
    ) -> StoreResult<Vec<UserId>> {
        let names = dedup(&names.iter().map(String::as_str).collect::<Vec<_>>());
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut found: HashMap<String, UserId> = HashMap::new();
        let mut tx = self.read_tx().await?;
        for chunk in names.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT u.id, u.username FROM server_members m JOIN users u ON u.id = m.user_id \
                 WHERE m.server_id = ? AND u.username IN ({})",
                placeholders(chunk.len())
            );
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(server.get());
            for name in chunk {
                query = query.bind(*name);
            }
            for row in query.fetch_all(&mut *tx).await? {
                found.insert(get(&row, "username")?, id(&row, "id")?);
            }
        }
        tx.commit().await?;
        // In the order the names were given.
        Ok(names
            .iter()
            .filter_map(|name| found.get(*name).copied())
            .collect())
    }

    // ---- channels ----

    async fn create_channel(&self, channel: &NewChannel) -> StoreResult<Channel> {
        let row = sqlx::query(concat!(
            "INSERT INTO channels (id, server_id, name, type, position, category, topic, \
             created_at) SELECT ?1, ?2, ?3, ?4, \
             COALESCE((SELECT MAX(position) + 1 FROM channels WHERE server_id = ?2), 0), \
             ?5, ?6, ?7 RETURNING ",
            channel_cols!()
        ))
        .bind(channel.id.get())
        .bind(channel.server_id.get())
        .bind(&channel.name)
        .bind(channel.kind.as_str())
        .bind(&channel.category)
        .bind(&channel.topic)
        .bind(channel.created_at.as_micros())
        .fetch_one(&self.pool)
        .await?;
        channel_row(&row)
    }

    async fn channel(&self, id: ChannelId) -> StoreResult<Option<Channel>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            channel_cols!(),
            " FROM channels WHERE id = ?"
        ))
        .bind(id.get())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(channel_row).transpose()
    }

    async fn channels(&self, server: ServerId) -> StoreResult<Vec<Channel>> {
        let found = sqlx::query(concat!(
            "SELECT ",
            channel_cols!(),
            " FROM channels WHERE server_id = ? ORDER BY position ASC, created_at ASC, id ASC"
        ))
        .bind(server.get())
        .fetch_all(&self.pool)
        .await?;
        rows(&found, channel_row)
    }

    async fn update_channel(
        &self,
        id: ChannelId,
        patch: &ChannelPatch,
    ) -> StoreResult<Option<Channel>> {
        let row = sqlx::query(concat!(
            "UPDATE channels SET name = COALESCE(?, name), topic = COALESCE(?, topic), \
             category = COALESCE(?, category), position = COALESCE(?, position) \
             WHERE id = ? RETURNING ",
            channel_cols!()
        ))
        .bind(&patch.name)
        .bind(&patch.topic)
        .bind(&patch.category)
        .bind(patch.position)
        .bind(id.get())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(channel_row).transpose()
    }

    async fn delete_channel(&self, id: ChannelId) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM channels WHERE id = ?")
            .bind(id.get())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    // ---- roles and overrides ----

    async fn create_role(&self, role: &Role) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO roles (id, server_id, name, permissions, color, position, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(role.id.get())
        .bind(role.server_id.get())
        .bind(&role.name)
        .bind(role.permissions)
        .bind(&role.color)
        .bind(role.position)
        .bind(role.created_at.as_micros())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn assign_role(&self, server: ServerId, user: UserId, role: RoleId) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO member_roles (server_id, user_id, role_id) VALUES (?, ?, ?) \
             ON CONFLICT (server_id, user_id, role_id) DO NOTHING",
        )
        .bind(server.get())
        .bind(user.get())
        .bind(role.get())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn roles_of_servers(&self, servers: &[ServerId]) -> StoreResult<Vec<Role>> {
        if servers.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = dedup(servers).into_iter().map(ServerId::get).collect();
        let mut tx = self.read_tx().await?;
        let mut roles = fetch_in(
            &mut tx,
            concat!(
                "SELECT ",
                role_cols!(),
                " FROM roles WHERE server_id IN ({})"
            ),
            &ids,
            role_row,
        )
        .await?;
        tx.commit().await?;
        roles.sort_by(|a, b| {
            (
                a.server_id,
                std::cmp::Reverse(a.position),
                a.created_at,
                a.id,
            )
                .cmp(&(
                    b.server_id,
                    std::cmp::Reverse(b.position),
                    b.created_at,
                    b.id,
                ))
        });
        Ok(roles)
    }

    async fn put_override(&self, ov: &ChannelOverride) -> StoreResult<ChannelOverride> {
        let sql = match (ov.role_id, ov.user_id) {
            (Some(_), None) => concat!(
                "INSERT INTO channel_overrides (id, channel_id, role_id, user_id, allow, deny) \
                 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (channel_id, role_id) \
                 DO UPDATE SET allow = excluded.allow, deny = excluded.deny RETURNING ",
                override_cols!()
            ),
            (None, Some(_)) => concat!(
                "INSERT INTO channel_overrides (id, channel_id, role_id, user_id, allow, deny) \
                 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (channel_id, user_id) \
                 DO UPDATE SET allow = excluded.allow, deny = excluded.deny RETURNING ",
                override_cols!()
            ),
            // Neither or both targets: the CHECK constraint refuses it.
            _ => concat!(
                "INSERT INTO channel_overrides (id, channel_id, role_id, user_id, allow, deny) \
                 VALUES (?, ?, ?, ?, ?, ?) RETURNING ",
                override_cols!()
            ),
        };
        let row = sqlx::query(sql)
            .bind(ov.id.get())
            .bind(ov.channel_id.get())
            .bind(ov.role_id.map(RoleId::get))
            .bind(ov.user_id.map(UserId::get))
            .bind(ov.allow)
            .bind(ov.deny)
            .fetch_one(&self.pool)
            .await?;
        override_row(&row)
    }

    async fn overrides_of_servers(
        &self,
        servers: &[ServerId],
    ) -> StoreResult<Vec<ChannelOverride>> {
        if servers.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = dedup(servers).into_iter().map(ServerId::get).collect();
        let mut tx = self.read_tx().await?;
        let mut overrides = fetch_in(
            &mut tx,
            concat!(
                "SELECT ",
                override_cols!(o),
                " FROM channel_overrides o JOIN channels c ON c.id = o.channel_id \
                 WHERE c.server_id IN ({})"
            ),
            &ids,
            override_row,
        )
        .await?;
        tx.commit().await?;
        overrides.sort_by_key(|ov| (ov.channel_id, ov.id));
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
        sqlx::query(
            "INSERT INTO timeouts (server_id, user_id, expires_at, reason, created_by, created_at) \
             VALUES (?, ?, ?, NULL, ?, ?) ON CONFLICT (server_id, user_id) DO UPDATE SET \
             expires_at = excluded.expires_at, reason = excluded.reason, \
             created_by = excluded.created_by, created_at = excluded.created_at",
        )
        .bind(server.get())
        .bind(user.get())
        .bind(expires_at.as_micros())
        .bind(created_by.map(UserId::get))
        .bind(created_at.as_micros())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn directory_snapshot(&self, now: Timestamp) -> StoreResult<DirectorySnapshot> {
        let mut tx = self.read_tx().await?;
        let mut snapshot = DirectorySnapshot::default();

        for row in sqlx::query("SELECT id, owner_id FROM servers ORDER BY created_at, id")
            .fetch_all(&mut *tx)
            .await?
        {
            snapshot
                .servers
                .push((id(&row, "id")?, id(&row, "owner_id")?));
        }
        for row in sqlx::query(
            "SELECT server_id, user_id FROM server_members ORDER BY server_id, joined_at, user_id",
        )
        .fetch_all(&mut *tx)
        .await?
        {
            snapshot
                .members
                .push((id(&row, "server_id")?, id(&row, "user_id")?));
        }
        for row in sqlx::query(
            "SELECT id, server_id, permissions, position FROM roles \
             ORDER BY server_id, position DESC, created_at, id",
        )
        .fetch_all(&mut *tx)
        .await?
        {
            snapshot.roles.push((
                id(&row, "id")?,
                id(&row, "server_id")?,
                get(&row, "permissions")?,
                get(&row, "position")?,
            ));
        }
        for row in sqlx::query(
            "SELECT server_id, user_id, role_id FROM member_roles \
             ORDER BY server_id, user_id, role_id",
        )
        .fetch_all(&mut *tx)
        .await?
        {
            snapshot.member_roles.push((
                id(&row, "server_id")?,
                id(&row, "user_id")?,
                id(&row, "role_id")?,
            ));
        }
        for row in sqlx::query(
            "SELECT id, server_id, type FROM channels ORDER BY server_id, position, created_at, id",
        )
        .fetch_all(&mut *tx)
        .await?
        {
            snapshot.channels.push((
                id(&row, "id")?,
                id(&row, "server_id")?,
                channel_type(&row, "type")?,
            ));
        }
        let overrides = sqlx::query(concat!(
            "SELECT ",
            override_cols!(),
            " FROM channel_overrides ORDER BY channel_id, id"
        ))
        .fetch_all(&mut *tx)
        .await?;
        snapshot.overrides = rows(&overrides, override_row)?;
        for row in sqlx::query(
            "SELECT server_id, user_id, expires_at FROM timeouts WHERE expires_at > ? \
             ORDER BY server_id, user_id",
        )
        .bind(now.as_micros())
        .fetch_all(&mut *tx)
        .await?
        {
            snapshot.timeouts.push((
                id(&row, "server_id")?,
                id(&row, "user_id")?,
                ts(&row, "expires_at")?,
            ));
        }
        tx.commit().await?;
        Ok(snapshot)
    }

    // ---- read state ----

    async fn ack_channel(
        &self,
        user: UserId,
        channel: ChannelId,
        at: Timestamp,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "INSERT INTO read_states (user_id, channel_id, last_read_at) \
             SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM channels WHERE id = ?2) \
             ON CONFLICT (user_id, channel_id) DO UPDATE SET last_read_at = excluded.last_read_at",
        )
        .bind(user.get())
        .bind(channel.get())
        .bind(at.as_micros())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn ack_dm(&self, user: UserId, channel: DmChannelId, at: Timestamp) -> StoreResult<()> {
        let done = sqlx::query(
            "INSERT INTO read_states (user_id, channel_id, last_read_at) \
             SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM dm_channels WHERE id = ?2) \
             ON CONFLICT (user_id, channel_id) DO UPDATE SET last_read_at = excluded.last_read_at",
        )
        .bind(user.get())
        .bind(channel.get())
        .bind(at.as_micros())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn unread_counts(&self, user: UserId) -> StoreResult<Vec<UnreadCount>> {
        let found = sqlx::query(
            "SELECT channel_id, n FROM ( \
               SELECT rs.channel_id AS channel_id, \
                 (SELECT COUNT(*) FROM messages m WHERE m.channel_id = rs.channel_id \
                    AND m.created_at > rs.last_read_at AND m.deleted = 0 \
                    AND m.author_id IS NOT rs.user_id) AS n \
               FROM read_states rs JOIN channels c ON c.id = rs.channel_id \
               WHERE rs.user_id = ?1 \
               UNION ALL \
               SELECT rs.channel_id AS channel_id, \
                 (SELECT COUNT(*) FROM dm_messages d WHERE d.channel_id = rs.channel_id \
                    AND d.created_at > rs.last_read_at AND d.deleted = 0 \
                    AND d.author_id IS NOT rs.user_id) AS n \
               FROM read_states rs JOIN dm_channels dc ON dc.id = rs.channel_id \
               WHERE rs.user_id = ?1 \
             ) WHERE n > 0 ORDER BY channel_id",
        )
        .bind(user.get())
        .fetch_all(&self.pool)
        .await?;
        found
            .iter()
            .map(|row| {
                Ok(UnreadCount {
                    channel_id: get(row, "channel_id")?,
                    unread_count: get(row, "n")?,
                })
            })
            .collect()
    }

    async fn mention_counts(&self, user: UserId) -> StoreResult<Vec<MentionCount>> {
        let found = sqlx::query(
            "SELECT channel_id, n FROM ( \
               SELECT rs.channel_id AS channel_id, \
                 (SELECT COUNT(*) FROM messages m WHERE m.channel_id = rs.channel_id \
                    AND m.created_at > rs.last_read_at AND m.deleted = 0 \
                    AND m.author_id IS NOT rs.user_id \
                    AND (m.mention_everyone = 1 OR EXISTS (SELECT 1 FROM message_mentions mm \
                         WHERE mm.message_id = m.id AND mm.user_id = rs.user_id))) AS n \
               FROM read_states rs JOIN channels c ON c.id = rs.channel_id \
               WHERE rs.user_id = ?1 \
             ) WHERE n > 0 ORDER BY channel_id",
        )
        .bind(user.get())
        .fetch_all(&self.pool)
        .await?;
        found
            .iter()
            .map(|row| {
                Ok(MentionCount {
                    channel_id: id(row, "channel_id")?,
                    count: get(row, "n")?,
                })
            })
            .collect()
    }

    // ---- messages ----

    async fn create_message(&self, message: &NewMessage) -> StoreResult<Message> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO messages (id, channel_id, author_id, content, reply_to, thread_id, \
             mention_everyone, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(message.id.get())
        .bind(message.channel_id.get())
        .bind(message.author_id.get())
        .bind(&message.content)
        .bind(message.reply_to.map(MessageId::get))
        .bind(message.thread_id.map(MessageId::get))
        .bind(message.mention_everyone)
        .bind(message.created_at.as_micros())
        .execute(&mut *tx)
        .await?;
        insert_mentions(&mut tx, message.id, &message.mention_user_ids).await?;
        tx.commit().await?;
        Ok(Message {
            id: message.id,
            channel_id: message.channel_id,
            author_id: Some(message.author_id),
            content: message.content.clone(),
            reply_to: message.reply_to,
            mention_user_ids: dedup(&message.mention_user_ids),
            mention_everyone: message.mention_everyone,
            thread_id: message.thread_id,
            thread_reply_count: 0,
            edited_at: None,
            deleted: false,
            created_at: message.created_at,
            pinned: false,
            pinned_by: None,
            pinned_at: None,
            poll: None,
            event: None,
        })
    }

    async fn message(&self, id: MessageId) -> StoreResult<Option<Message>> {
        let mut tx = self.read_tx().await?;
        let message = fetch_message(&mut tx, id).await?;
        tx.commit().await?;
        Ok(message)
    }

    async fn messages(
        &self,
        channel: ChannelId,
        before: Option<MessageId>,
        limit: i64,
    ) -> StoreResult<Vec<Message>> {
        let limit = limit.max(0);
        let mut tx = self.read_tx().await?;
        let found = match before {
            None => {
                sqlx::query(concat!(
                    message_select!(),
                    " WHERE m.channel_id = ? AND m.thread_id IS NULL AND m.deleted = 0 \
                     ORDER BY m.created_at DESC, m.id DESC LIMIT ?"
                ))
                .bind(channel.get())
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?
            }
            Some(cursor) => {
                let anchor =
                    sqlx::query("SELECT created_at FROM messages WHERE id = ? AND channel_id = ?")
                        .bind(cursor.get())
                        .bind(channel.get())
                        .fetch_optional(&mut *tx)
                        .await?;
                let Some(anchor) = anchor else {
                    tx.commit().await?;
                    return Ok(Vec::new());
                };
                sqlx::query(concat!(
                    message_select!(),
                    " WHERE m.channel_id = ? AND m.thread_id IS NULL AND m.deleted = 0 \
                     AND (m.created_at, m.id) < (?, ?) \
                     ORDER BY m.created_at DESC, m.id DESC LIMIT ?"
                ))
                .bind(channel.get())
                .bind(get::<i64>(&anchor, "created_at")?)
                .bind(cursor.get())
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?
            }
        };
        let mut messages = rows(&found, message_row)?;
        attach_mentions(&mut tx, &mut messages).await?;
        tx.commit().await?;
        Ok(messages)
    }

    async fn edit_message(
        &self,
        id: MessageId,
        content: &str,
        mention_user_ids: &[UserId],
        mention_everyone: bool,
        edited_at: Timestamp,
    ) -> StoreResult<Option<Message>> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE messages SET content = ?, mention_everyone = ?, edited_at = ? \
             WHERE id = ? AND deleted = 0",
        )
        .bind(content)
        .bind(mention_everyone)
        .bind(edited_at.as_micros())
        .bind(id.get())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        sqlx::query("DELETE FROM message_mentions WHERE message_id = ?")
            .bind(id.get())
            .execute(&mut *tx)
            .await?;
        insert_mentions(&mut tx, id, mention_user_ids).await?;
        let message = fetch_message(&mut tx, id).await?;
        tx.commit().await?;
        Ok(message)
    }

    async fn delete_message(&self, id: MessageId) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE messages SET deleted = 1 WHERE id = ? AND deleted = 0")
            .bind(id.get())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    // ---- direct messages ----

    async fn open_dm_channel(
        &self,
        channel: &DmChannelRecord,
    ) -> StoreResult<(DmChannelRecord, bool)> {
        let (a, b) = if channel.user_a <= channel.user_b {
            (channel.user_a, channel.user_b)
        } else {
            (channel.user_b, channel.user_a)
        };
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "INSERT INTO dm_channels (id, user_a, user_b, created_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (user_a, user_b) DO NOTHING",
        )
        .bind(channel.id.get())
        .bind(a.get())
        .bind(b.get())
        .bind(channel.created_at.as_micros())
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(
            "SELECT id, user_a, user_b, created_at FROM dm_channels WHERE user_a = ? AND user_b = ?",
        )
        .bind(a.get())
        .bind(b.get())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((dm_channel_row(&row)?, done.rows_affected() == 1))
    }

    async fn dm_channel(&self, id: DmChannelId) -> StoreResult<Option<DmChannelRecord>> {
        let row =
            sqlx::query("SELECT id, user_a, user_b, created_at FROM dm_channels WHERE id = ?")
                .bind(id.get())
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(dm_channel_row).transpose()
    }

    async fn dm_channels_of_user(&self, user: UserId) -> StoreResult<Vec<DmChannelSummary>> {
        let found = sqlx::query(concat!(
            "SELECT dc.id AS dm_id, dc.user_a AS dm_user_a, dc.user_b AS dm_user_b, \
             dc.created_at AS dm_created_at, \
             (SELECT MAX(d.created_at) FROM dm_messages d \
              WHERE d.channel_id = dc.id AND d.deleted = 0) AS last_message_at, ",
            user_cols!(u),
            " FROM dm_channels dc \
             JOIN users u ON u.id = CASE WHEN dc.user_a = ?1 THEN dc.user_b ELSE dc.user_a END \
             WHERE dc.user_a = ?1 OR dc.user_b = ?1 \
             ORDER BY (last_message_at IS NULL) ASC, last_message_at DESC, \
             dc.created_at DESC, dc.id DESC"
        ))
        .bind(user.get())
        .fetch_all(&self.pool)
        .await?;
        found
            .iter()
            .map(|row| {
                Ok(DmChannelSummary {
                    channel: DmChannelRecord {
                        id: id(row, "dm_id")?,
                        user_a: id(row, "dm_user_a")?,
                        user_b: id(row, "dm_user_b")?,
                        created_at: ts(row, "dm_created_at")?,
                    },
                    recipient: user_row(row)?,
                    last_message_at: opt_ts(row, "last_message_at")?,
                })
            })
            .collect()
    }

    async fn create_dm_message(&self, message: &DirectMessage) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO dm_messages (id, channel_id, author_id, content, edited_at, created_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(message.id.get())
        .bind(message.channel_id.get())
        .bind(message.author_id.map(UserId::get))
        .bind(&message.content)
        .bind(message.edited_at.map(Timestamp::as_micros))
        .bind(message.created_at.as_micros())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn dm_messages(
        &self,
        channel: DmChannelId,
        before: Option<Uuid>,
        limit: i64,
    ) -> StoreResult<Vec<DirectMessage>> {
        let limit = limit.max(0);
        let mut tx = self.read_tx().await?;
        let found = match before {
            None => {
                sqlx::query(concat!(
                    "SELECT ",
                    dm_message_cols!(),
                    " FROM dm_messages WHERE channel_id = ? AND deleted = 0 \
                     ORDER BY created_at DESC, id DESC LIMIT ?"
                ))
                .bind(channel.get())
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?
            }
            Some(cursor) => {
                let anchor = sqlx::query(
                    "SELECT created_at FROM dm_messages WHERE id = ? AND channel_id = ?",
                )
                .bind(cursor)
                .bind(channel.get())
                .fetch_optional(&mut *tx)
                .await?;
                let Some(anchor) = anchor else {
                    tx.commit().await?;
                    return Ok(Vec::new());
                };
                sqlx::query(concat!(
                    "SELECT ",
                    dm_message_cols!(),
                    " FROM dm_messages WHERE channel_id = ? AND deleted = 0 \
                     AND (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT ?"
                ))
                .bind(channel.get())
                .bind(get::<i64>(&anchor, "created_at")?)
                .bind(cursor)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?
            }
        };
        tx.commit().await?;
        rows(&found, dm_message_row)
    }

    // ---- voice ----

    async fn voice_state(&self, user: UserId) -> StoreResult<Option<VoiceState>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            voice_cols!(),
            " FROM voice_states WHERE user_id = ?"
        ))
        .bind(user.get())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(voice_row).transpose()
    }

    async fn voice_participants(&self, channel: ChannelId) -> StoreResult<Vec<VoiceParticipant>> {
        let found = sqlx::query(concat!(
            "SELECT ",
            voice_cols!(v),
            ", u.username FROM voice_states v JOIN users u ON u.id = v.user_id \
             WHERE v.channel_id = ? ORDER BY v.joined_at ASC, v.user_id ASC"
        ))
        .bind(channel.get())
        .fetch_all(&self.pool)
        .await?;
        found
            .iter()
            .map(|row| {
                Ok(VoiceParticipant {
                    state: voice_row(row)?,
                    username: get(row, "username")?,
                })
            })
            .collect()
    }

    async fn put_voice_state(&self, state: &VoiceState) -> StoreResult<()> {
        // A state without a channel references no voice channel at all.
        let Some(channel) = state.channel_id else {
            return Err(StoreError::NotFound);
        };
        sqlx::query(
            "INSERT INTO voice_states (user_id, channel_id, self_mute, self_deaf, self_video, \
             self_screen, server_mute, server_deaf, joined_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (user_id) DO UPDATE SET channel_id = excluded.channel_id, \
             self_mute = excluded.self_mute, self_deaf = excluded.self_deaf, \
             self_video = excluded.self_video, self_screen = excluded.self_screen, \
             server_mute = excluded.server_mute, server_deaf = excluded.server_deaf, \
             joined_at = excluded.joined_at",
        )
        .bind(state.user_id.get())
        .bind(channel.get())
        .bind(state.self_mute)
        .bind(state.self_deaf)
        .bind(state.self_video)
        .bind(state.self_screen)
        .bind(state.server_mute)
        .bind(state.server_deaf)
        .bind(state.joined_at.map(Timestamp::as_micros))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_voice_state(&self, user: UserId) -> StoreResult<Option<VoiceState>> {
        let row = sqlx::query(concat!(
            "DELETE FROM voice_states WHERE user_id = ? RETURNING ",
            voice_cols!()
        ))
        .bind(user.get())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(voice_row).transpose()
    }

    async fn clear_voice_states(&self) -> StoreResult<()> {
        sqlx::query("DELETE FROM voice_states")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- bots ----

    async fn create_bot(&self, user: &NewUser, bot: &BotRecord) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
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

    async fn bot(&self, id: BotId) -> StoreResult<Option<BotRecord>> {
        let row = sqlx::query(concat!("SELECT ", bot_cols!(), " FROM bots WHERE id = ?"))
            .bind(id.get())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(bot_row).transpose()
    }

    async fn bot_by_user(&self, user: UserId) -> StoreResult<Option<BotRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            bot_cols!(),
            " FROM bots WHERE user_id = ?"
        ))
        .bind(user.get())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(bot_row).transpose()
    }

    async fn bot_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<BotRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            bot_cols!(),
            " FROM bots WHERE token_hash = ?"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(bot_row).transpose()
    }

    async fn bots_of_creator(&self, user: UserId) -> StoreResult<Vec<Bot>> {
        let found = sqlx::query(concat!(
            "SELECT ",
            bot_cols!(),
            " FROM bots WHERE created_by = ? ORDER BY created_at ASC, id ASC"
        ))
        .bind(user.get())
        .fetch_all(&self.pool)
        .await?;
        found
            .iter()
            .map(|row| bot_row(row).map(|b| b.bot))
            .collect()
    }

    async fn update_bot(
        &self,
        id: BotId,
        name: Option<&str>,
        description: Option<&str>,
    ) -> StoreResult<Option<Bot>> {
        let row = sqlx::query(concat!(
            "UPDATE bots SET name = COALESCE(?, name), description = COALESCE(?, description) \
             WHERE id = ? RETURNING ",
            bot_cols!()
        ))
        .bind(name)
        .bind(description)
        .bind(id.get())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(|row| bot_row(row).map(|b| b.bot))
            .transpose()
    }

    async fn revoke_bot(&self, id: BotId, at: Timestamp) -> StoreResult<bool> {
        let done =
            sqlx::query("UPDATE bots SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(at.as_micros())
                .bind(id.get())
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_bot_token(&self, id: BotId, token_hash: &str) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE bots SET token_hash = ? WHERE id = ?")
            .bind(token_hash)
            .bind(id.get())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use concord_protocol::{ChannelType, ServerId};

    use super::*;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            let path = std::env::temp_dir().join(format!("concord-store-{}", Uuid::now_v7()));
            std::fs::create_dir_all(&path).expect("create temp dir");
            Self(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn new_user(name: &str) -> NewUser {
        NewUser {
            id: UserId::new(),
            username: name.to_owned(),
            email: Some(format!("{name}@example.com")),
            password_hash: Some("hash".to_owned()),
            status: Status::Offline,
            created_at: Timestamp::from_micros(1_000),
            admin_if_first: true,
            is_bot: false,
        }
    }

    async fn pragma(store: &SqliteStore, name: &'static str) -> String {
        let sql = match name {
            "journal_mode" => "PRAGMA journal_mode",
            "foreign_keys" => "PRAGMA foreign_keys",
            _ => "PRAGMA synchronous",
        };
        let row = sqlx::query(sql).fetch_one(&store.pool).await.unwrap();
        match row.try_get::<String, _>(0) {
            Ok(text) => text,
            Err(_) => row.try_get::<i64, _>(0).unwrap().to_string(),
        }
    }

    #[tokio::test]
    async fn file_store_persists_and_reopens() {
        let dir = TempDir::new();
        let path = dir.0.join("nested-name.db");
        let alice = new_user("alice");
        let server = Server {
            id: ServerId::new(),
            name: "home".to_owned(),
            owner_id: alice.id,
            icon_url: None,
            is_public: true,
            require_invite: false,
            created_at: Timestamp::from_micros(2_000),
            updated_at: Timestamp::from_micros(2_000),
        };
        let channel_id = ChannelId::new();
        let message_id = MessageId::new();
        {
            let store = SqliteStore::open(&path).await.unwrap();
            assert_eq!(pragma(&store, "journal_mode").await, "wal");
            assert_eq!(pragma(&store, "foreign_keys").await, "1");
            // NORMAL = 1.
            assert_eq!(pragma(&store, "synchronous").await, "1");
            assert!(store.create_user(&alice).await.unwrap().is_admin);
            store.create_server(&server).await.unwrap();
            store
                .create_channel(&NewChannel {
                    id: channel_id,
                    server_id: server.id,
                    name: "general".to_owned(),
                    kind: ChannelType::Text,
                    topic: None,
                    category: None,
                    created_at: Timestamp::from_micros(3_000),
                })
                .await
                .unwrap();
            store
                .create_message(&NewMessage {
                    id: message_id,
                    channel_id,
                    author_id: alice.id,
                    content: "persisted".to_owned(),
                    reply_to: None,
                    mention_user_ids: vec![alice.id],
                    mention_everyone: false,
                    thread_id: None,
                    created_at: Timestamp::from_micros(4_000),
                })
                .await
                .unwrap();
            store.close().await;
        }
        assert!(path.exists());

        // Reopen twice: the applied migration is recognised, not re-run.
        for _ in 0..2 {
            let store = SqliteStore::open(&path).await.unwrap();
            let user = store.user_by_username("alice").await.unwrap().unwrap();
            assert_eq!(user.id, alice.id);
            assert!(user.is_admin);
            let dto = store.server(server.id).await.unwrap().unwrap();
            assert_eq!(dto.server, server);
            assert_eq!(dto.member_count, 1);
            let message = store.message(message_id).await.unwrap().unwrap();
            assert_eq!(message.content, "persisted");
            assert_eq!(message.mention_user_ids, vec![alice.id]);
            // The second human is not admin across reopenings either.
            let bob = store
                .create_user(&new_user(&format!("bob{}", Uuid::now_v7().simple())))
                .await;
            assert!(!bob.unwrap().is_admin);
            store.close().await;
        }
    }

    #[tokio::test]
    async fn sqlite_conflicts_name_the_columns() {
        let store = SqliteStore::in_memory().await.unwrap();
        let alice = new_user("alice");
        store.create_user(&alice).await.unwrap();
        let same_name = NewUser {
            email: None,
            ..new_user("alice")
        };
        let err = store.create_user(&same_name).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Conflict(what) if what == "users.username"),
            "{err:?}"
        );
        let mut other = new_user("bob");
        other.email = alice.email.clone();
        let err = store.create_user(&other).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Conflict(what) if what == "users.email"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn assigning_a_role_needs_membership_and_the_same_server() {
        let store = SqliteStore::in_memory().await.unwrap();
        let alice = new_user("alice");
        let bob = new_user("bob");
        store.create_user(&alice).await.unwrap();
        store.create_user(&bob).await.unwrap();
        let mut servers = Vec::new();
        for _ in 0..2 {
            let server = Server {
                id: ServerId::new(),
                name: "s".to_owned(),
                owner_id: alice.id,
                icon_url: None,
                is_public: false,
                require_invite: false,
                created_at: Timestamp::from_micros(1),
                updated_at: Timestamp::from_micros(1),
            };
            store.create_server(&server).await.unwrap();
            servers.push(server.id);
        }
        let role = Role {
            id: RoleId::new(),
            server_id: servers[0],
            name: "r".to_owned(),
            permissions: 0,
            color: None,
            position: 1,
            created_at: Timestamp::from_micros(1),
        };
        store.create_role(&role).await.unwrap();
        // Not a member.
        let err = store
            .assign_role(servers[0], bob.id, role.id)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
        // The role belongs to another server.
        let err = store
            .assign_role(servers[1], alice.id, role.id)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
        assert!(
            store
                .assign_role(servers[0], alice.id, role.id)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn ack_of_unknown_channel_is_not_found() {
        let store = SqliteStore::in_memory().await.unwrap();
        let alice = new_user("alice");
        store.create_user(&alice).await.unwrap();
        let at = Timestamp::from_micros(5);
        let err = store
            .ack_channel(alice.id, ChannelId::new(), at)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
        let err = store
            .ack_dm(alice.id, DmChannelId::new(), at)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn file_store_serialises_concurrent_writers() {
        let dir = TempDir::new();
        let store = SqliteStore::open(&dir.0.join("concord.db")).await.unwrap();
        let alice = new_user("alice");
        let bob = new_user("bob");
        store.create_user(&alice).await.unwrap();
        store.create_user(&bob).await.unwrap();
        let server = Server {
            id: ServerId::new(),
            name: "s".to_owned(),
            owner_id: alice.id,
            icon_url: None,
            is_public: false,
            require_invite: false,
            created_at: Timestamp::from_micros(1),
            updated_at: Timestamp::from_micros(1),
        };
        store.create_server(&server).await.unwrap();

        let mut tasks = Vec::new();
        for task in 0..8_i64 {
            let store = store.clone();
            let (alice, bob) = (alice.id, bob.id);
            let server = server.id;
            tasks.push(tokio::spawn(async move {
                let channel = store
                    .create_channel(&NewChannel {
                        id: ChannelId::new(),
                        server_id: server,
                        name: format!("c{task}"),
                        kind: ChannelType::Text,
                        topic: None,
                        category: None,
                        created_at: Timestamp::from_micros(10 + task),
                    })
                    .await
                    .unwrap();
                for i in 0..10 {
                    store
                        .create_message(&NewMessage {
                            id: MessageId::new(),
                            channel_id: channel.id,
                            author_id: alice,
                            content: format!("{task}/{i}"),
                            reply_to: None,
                            mention_user_ids: vec![bob],
                            mention_everyone: false,
                            thread_id: None,
                            created_at: Timestamp::from_micros(100 + i),
                        })
                        .await
                        .unwrap();
                }
                let (a, b) = if task % 2 == 0 {
                    (alice, bob)
                } else {
                    (bob, alice)
                };
                let (_, created) = store
                    .open_dm_channel(&DmChannelRecord {
                        id: DmChannelId::new(),
                        user_a: a,
                        user_b: b,
                        created_at: Timestamp::from_micros(5),
                    })
                    .await
                    .unwrap();
                (channel, created)
            }));
        }
        let mut positions = Vec::new();
        let mut created = 0;
        for task in tasks {
            let (channel, new) = task.await.unwrap();
            positions.push(channel.position);
            created += usize::from(new);
            assert_eq!(
                store.messages(channel.id, None, 100).await.unwrap().len(),
                10
            );
        }
        positions.sort_unstable();
        assert_eq!(positions, (0..8).collect::<Vec<_>>());
        assert_eq!(created, 1);
        assert_eq!(store.dm_channels_of_user(alice.id).await.unwrap().len(), 1);
        store.close().await;
    }
}
