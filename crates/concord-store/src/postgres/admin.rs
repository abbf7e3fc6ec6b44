//! Instance administration, registration mode, password reset tokens and server
//! templates (issue 18, `rest-extras.md` §2–§4).

use concord_protocol::{
    AdminServer, AdminUser, Channel, RegistrationMode, Server, Timestamp, UserId,
};
use sqlx::{
    AssertSqlSafe, PgConnection,
    postgres::{PgPool, PgRow},
};
use uuid::Uuid;

use super::PostgresStore;
use super::{
    channels::insert_channel, get, id, opt_id, opt_ts, read_tx, rows, servers::insert_server,
    status, ts, users::user_row, write_tx,
};
use crate::{
    AdminCounts, AdminFlags, AdminRefusal, AdminServerQuery, AdminUserQuery, AdminUserSort,
    DeletedUser, InstanceSettingsRecord, NewChannel, ServerTemplateRecord, StoreError, StoreResult,
    UserRecord,
};
use crate::{AdminStore, AuditRecord};
use async_trait::async_trait;

fn settings_row(row: &PgRow) -> StoreResult<InstanceSettingsRecord> {
    let mode = match get::<Option<String>>(row, "registration_mode")? {
        None => None,
        Some(name) => {
            Some(RegistrationMode::parse(&name).ok_or(StoreError::Corrupt("registration_mode"))?)
        }
    };
    Ok(InstanceSettingsRecord {
        registration_mode: mode,
        updated_at: ts(row, "updated_at")?,
        updated_by: opt_id(row, "updated_by")?,
    })
}

const SETTINGS_COLS: &str = "registration_mode, updated_at, updated_by";

pub(super) async fn instance_settings(pool: &PgPool) -> StoreResult<InstanceSettingsRecord> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {SETTINGS_COLS} FROM instance_settings WHERE id = 1"
    )))
    .fetch_one(pool)
    .await?;
    settings_row(&row)
}

pub(super) async fn update_instance_settings(
    pool: &PgPool,
    mode: Option<RegistrationMode>,
    by: UserId,
    at: Timestamp,
) -> StoreResult<InstanceSettingsRecord> {
    // `updated_by` is a foreign key: a user deleted meanwhile is recorded as nobody.
    // The row is locked first, as an admin deletion does before its delete (see
    // [`admin_checks`]): the update's statement then starts after any deletion, and
    // its look-up of `by` sees it.
    let mut tx = write_tx(pool).await?;
    sqlx::query("SELECT 1 FROM instance_settings WHERE id = 1 FOR UPDATE")
        .execute(&mut *tx)
        .await?;
    let row = sqlx::query(AssertSqlSafe(format!(
        "UPDATE instance_settings SET registration_mode = COALESCE($1, registration_mode), \
         updated_at = $2, updated_by = (SELECT id FROM users WHERE id = $3) \
         WHERE id = 1 RETURNING {SETTINGS_COLS}"
    )))
    .bind(mode.map(RegistrationMode::as_str))
    .bind(at.as_micros())
    .bind(by.get())
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    settings_row(&row)
}

pub(super) async fn user_by_email(pool: &PgPool, email: &str) -> StoreResult<Option<UserRecord>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {} FROM users WHERE email = $1",
        super::users::USER_COLS
    )))
    .bind(email)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(user_row).transpose()
}

pub(super) async fn create_reset_token(
    pool: &PgPool,
    user: UserId,
    token_hash: &str,
    created_at: Timestamp,
    expires_at: Timestamp,
) -> StoreResult<()> {
    let mut tx = write_tx(pool).await?;
    // READ COMMITTED: the user's row is locked first (NO KEY UPDATE: rows naming the
    // user may still be inserted), so of two requests at once the second deletes the
    // first's token and one token is left. A missing user fails the insert (NotFound).
    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE")
        .bind(user.get())
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM password_reset_tokens WHERE user_id = $1")
        .bind(user.get())
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO password_reset_tokens (id, user_id, token_hash, expires_at, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::new_v4())
    .bind(user.get())
    .bind(token_hash)
    .bind(expires_at.as_micros())
    .bind(created_at.as_micros())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn reset_token_user(
    pool: &PgPool,
    token_hash: &str,
    now: Timestamp,
) -> StoreResult<Option<UserRecord>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {} FROM users u JOIN password_reset_tokens t ON t.user_id = u.id \
         WHERE t.token_hash = $1 AND t.used_at IS NULL AND t.expires_at > $2",
        super::users::USER_COLS_U
    )))
    .bind(token_hash)
    .bind(now.as_micros())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(user_row).transpose()
}

pub(super) async fn consume_reset_token(
    pool: &PgPool,
    token_hash: &str,
    now: Timestamp,
    password_hash: &str,
) -> StoreResult<Option<UserId>> {
    let mut tx = write_tx(pool).await?;
    // The compare-and-set: only an unused token is marked used, so of two
    // concurrent uses exactly one gets a row back (on PostgreSQL the second waits on
    // the row's lock, then re-checks `used_at IS NULL` and matches nothing).
    let row = sqlx::query(
        "UPDATE password_reset_tokens SET used_at = $2 \
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING user_id",
    )
    .bind(token_hash)
    .bind(now.as_micros())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let user: UserId = id(&row, "user_id")?;
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(password_hash)
        .bind(user.get())
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM refresh_sessions WHERE user_id = $1")
        .bind(user.get())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(user))
}

pub(super) async fn admin_counts(pool: &PgPool) -> StoreResult<AdminCounts> {
    let row = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM users) AS users, \
         (SELECT COUNT(*) FROM servers) AS servers, \
         (SELECT COUNT(*) FROM messages) AS messages, \
         (SELECT COUNT(*) FROM channels) AS channels",
    )
    .fetch_one(pool)
    .await?;
    Ok(AdminCounts {
        users: get(&row, "users")?,
        servers: get(&row, "servers")?,
        messages: get(&row, "messages")?,
        channels: get(&row, "channels")?,
    })
}

const ADMIN_USER_SELECT: &str = "SELECT u.id, u.username, u.email, u.avatar_url, u.status, \
    u.is_admin, u.disabled, u.disabled_at, u.created_at, \
    (SELECT COUNT(*) FROM server_members m WHERE m.user_id = u.id) AS server_count, \
    (SELECT COUNT(*) FROM messages g WHERE g.author_id = u.id) AS message_count \
    FROM users u";

/// Matches users whose lowercased username or e-mail contains `$1` literally (no
/// LIKE wildcards), or every user when `$1` is NULL.
const ADMIN_USER_FILTER: &str = "WHERE ($1::text IS NULL OR strpos(lower(u.username), $1) > 0 \
    OR strpos(lower(COALESCE(u.email, '')), $1) > 0)";

fn admin_user_row(row: &PgRow) -> StoreResult<AdminUser> {
    Ok(AdminUser {
        id: id(row, "id")?,
        username: get(row, "username")?,
        email: get(row, "email")?,
        avatar_url: get(row, "avatar_url")?,
        status: status(row, "status")?,
        is_admin: get(row, "is_admin")?,
        disabled: get(row, "disabled")?,
        disabled_at: opt_ts(row, "disabled_at")?,
        created_at: ts(row, "created_at")?,
        server_count: get(row, "server_count")?,
        message_count: get(row, "message_count")?,
    })
}

pub(super) async fn admin_users(
    pool: &PgPool,
    query: &AdminUserQuery,
) -> StoreResult<(Vec<AdminUser>, i64)> {
    let order = match query.sort {
        AdminUserSort::CreatedAt => "u.created_at DESC, u.id DESC",
        AdminUserSort::Username => "u.username COLLATE \"C\" ASC, u.id ASC",
        AdminUserSort::MessageCount => "message_count DESC, u.created_at DESC, u.id DESC",
    };
    let mut tx = read_tx(pool).await?;
    let found = sqlx::query(AssertSqlSafe(format!(
        "{ADMIN_USER_SELECT} {ADMIN_USER_FILTER} ORDER BY {order} LIMIT $2 OFFSET $3"
    )))
    .bind(&query.search)
    .bind(query.limit.max(0))
    .bind(query.offset.max(0))
    .fetch_all(&mut *tx)
    .await?;
    let total: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM users u {ADMIN_USER_FILTER}"
    )))
    .bind(&query.search)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((rows(&found, admin_user_row)?, total))
}

pub(super) async fn admin_user(pool: &PgPool, user: UserId) -> StoreResult<Option<AdminUser>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "{ADMIN_USER_SELECT} WHERE u.id = $1"
    )))
    .bind(user.get())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(admin_user_row).transpose()
}

/// The admin checks shared by flag changes and deletion, on the write transaction:
/// the actor is an enabled admin, the target exists; returns whether the target is
/// an admin and how many enabled admins exist.
///
/// READ COMMITTED: the singleton `instance_settings` row is locked first, so flag
/// changes and deletions run one at a time and each one's checks see what the one
/// before committed (two admins demoting each other at once: the second sees a
/// single enabled admin left).
async fn admin_checks(
    conn: &mut PgConnection,
    actor: UserId,
    target: UserId,
) -> StoreResult<Result<(bool, i64), AdminRefusal>> {
    sqlx::query("SELECT 1 FROM instance_settings WHERE id = 1 FOR UPDATE")
        .execute(&mut *conn)
        .await?;
    let actor_ok: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND is_admin AND NOT disabled)",
    )
    .bind(actor.get())
    .fetch_one(&mut *conn)
    .await?;
    if !actor_ok {
        return Ok(Err(AdminRefusal::ActorNotAdmin));
    }
    let target_admin: Option<bool> = sqlx::query_scalar("SELECT is_admin FROM users WHERE id = $1")
        .bind(target.get())
        .fetch_optional(&mut *conn)
        .await?;
    let Some(target_admin) = target_admin else {
        return Ok(Err(AdminRefusal::NotFound));
    };
    let enabled_admins: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE is_admin AND NOT disabled")
            .fetch_one(&mut *conn)
            .await?;
    Ok(Ok((target_admin, enabled_admins)))
}

pub(super) async fn set_admin_flags(
    pool: &PgPool,
    actor: UserId,
    target: UserId,
    flags: &AdminFlags,
    at: Timestamp,
) -> StoreResult<Result<(), AdminRefusal>> {
    // The checks and the change run under the settings row's lock (see
    // [`admin_checks`]), so two admins demoting each other at once are serialised and
    // the second sees the first.
    let mut tx = write_tx(pool).await?;
    let (target_admin, enabled_admins) = match admin_checks(&mut tx, actor, target).await? {
        Ok(found) => found,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let removes_admin = flags.is_admin == Some(false) || flags.disabled == Some(true);
    if target_admin && removes_admin && enabled_admins <= 1 {
        return Ok(Err(AdminRefusal::LastAdmin));
    }
    sqlx::query(
        "UPDATE users SET is_admin = COALESCE($1, is_admin), \
         disabled = COALESCE($2, disabled), \
         disabled_at = CASE WHEN $2 IS NULL THEN disabled_at \
                            WHEN $2 THEN COALESCE(disabled_at, $3) ELSE NULL END \
         WHERE id = $4",
    )
    .bind(flags.is_admin)
    .bind(flags.disabled)
    .bind(at.as_micros())
    .bind(target.get())
    .execute(&mut *tx)
    .await?;
    if flags.disabled == Some(true) {
        sqlx::query("DELETE FROM refresh_sessions WHERE user_id = $1")
            .bind(target.get())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(Ok(()))
}

pub(super) async fn delete_user_as_admin(
    pool: &PgPool,
    actor: UserId,
    target: UserId,
) -> StoreResult<Result<DeletedUser, AdminRefusal>> {
    let mut tx = write_tx(pool).await?;
    let (target_admin, enabled_admins) = match admin_checks(&mut tx, actor, target).await? {
        Ok(found) => found,
        Err(refusal) => return Ok(Err(refusal)),
    };
    // After the settings row, the target's row (users before servers): FOR UPDATE
    // holds off the foreign-key checks of new rows naming the user (a server they
    // would own, a membership, an emoji) until the delete, so what is read below is
    // what the delete takes.
    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE")
        .bind(target.get())
        .execute(&mut *tx)
        .await?;
    let owns: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM servers WHERE owner_id = $1)")
            .bind(target.get())
            .fetch_one(&mut *tx)
            .await?;
    if owns {
        return Ok(Err(AdminRefusal::OwnsServers));
    }
    if target_admin && enabled_admins <= 1 {
        return Ok(Err(AdminRefusal::LastAdmin));
    }
    let servers = sqlx::query("SELECT server_id FROM server_members WHERE user_id = $1")
        .bind(target.get())
        .fetch_all(&mut *tx)
        .await?;
    let servers = rows(&servers, |row| id(row, "server_id"))?;
    let emojis = sqlx::query("SELECT id FROM custom_emojis WHERE created_by = $1")
        .bind(target.get())
        .fetch_all(&mut *tx)
        .await?;
    let emojis = rows(&emojis, |row| id(row, "id"))?;
    // Messages and DMs keep their rows with no author (ON DELETE SET NULL); the rest
    // cascades.
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(target.get())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Ok(DeletedUser { servers, emojis }))
}

const ADMIN_SERVER_FILTER: &str = "WHERE ($1::text IS NULL OR strpos(lower(s.name), $1) > 0)";

fn admin_server_row(row: &PgRow) -> StoreResult<AdminServer> {
    Ok(AdminServer {
        id: id(row, "id")?,
        name: get(row, "name")?,
        owner_id: id(row, "owner_id")?,
        owner_username: get(row, "owner_username")?,
        icon_url: get(row, "icon_url")?,
        is_public: get(row, "is_public")?,
        member_count: get(row, "member_count")?,
        channel_count: get(row, "channel_count")?,
        message_count: get(row, "message_count")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(super) async fn admin_servers(
    pool: &PgPool,
    query: &AdminServerQuery,
) -> StoreResult<(Vec<AdminServer>, i64)> {
    let mut tx = read_tx(pool).await?;
    let found = sqlx::query(AssertSqlSafe(format!(
        "SELECT s.id, s.name, s.owner_id, o.username AS owner_username, s.icon_url, \
         s.is_public, s.member_count, \
         (SELECT COUNT(*) FROM channels c WHERE c.server_id = s.id) AS channel_count, \
         (SELECT COUNT(*) FROM messages g JOIN channels c ON c.id = g.channel_id \
          WHERE c.server_id = s.id) AS message_count, \
         s.created_at \
         FROM servers s JOIN users o ON o.id = s.owner_id {ADMIN_SERVER_FILTER} \
         ORDER BY s.created_at DESC, s.id DESC LIMIT $2 OFFSET $3"
    )))
    .bind(&query.search)
    .bind(query.limit.max(0))
    .bind(query.offset.max(0))
    .fetch_all(&mut *tx)
    .await?;
    let total: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM servers s {ADMIN_SERVER_FILTER}"
    )))
    .bind(&query.search)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((rows(&found, admin_server_row)?, total))
}

const TEMPLATE_COLS: &str =
    "id, name, description, category, template_data, is_builtin, created_at";

fn template_row(row: &PgRow) -> StoreResult<ServerTemplateRecord> {
    Ok(ServerTemplateRecord {
        id: get(row, "id")?,
        name: get(row, "name")?,
        description: get(row, "description")?,
        category: get(row, "category")?,
        template_data: get(row, "template_data")?,
        is_builtin: get(row, "is_builtin")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(super) async fn server_templates(pool: &PgPool) -> StoreResult<Vec<ServerTemplateRecord>> {
    let found = sqlx::query(AssertSqlSafe(format!(
        "SELECT {TEMPLATE_COLS} FROM server_templates \
         ORDER BY is_builtin DESC, name COLLATE \"C\" ASC, id ASC"
    )))
    .fetch_all(pool)
    .await?;
    rows(&found, template_row)
}

pub(super) async fn server_template(
    pool: &PgPool,
    template: Uuid,
) -> StoreResult<Option<ServerTemplateRecord>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {TEMPLATE_COLS} FROM server_templates WHERE id = $1"
    )))
    .bind(template)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(template_row).transpose()
}

pub(super) async fn create_server_with_channels(
    pool: &PgPool,
    server: &Server,
    channels: &[NewChannel],
    audit: Option<&crate::AuditRecord>,
) -> StoreResult<Vec<Channel>> {
    let mut tx = write_tx(pool).await?;
    insert_server(&mut tx, server).await?;
    let mut created = Vec::with_capacity(channels.len());
    for channel in channels {
        created.push(insert_channel(&mut tx, channel).await?);
    }
    super::audit::insert(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(created)
}

#[async_trait]
impl AdminStore for PostgresStore {
    async fn instance_settings(&self) -> StoreResult<InstanceSettingsRecord> {
        instance_settings(&self.pool).await
    }

    async fn update_instance_settings(
        &self,
        registration_mode: Option<RegistrationMode>,
        by: UserId,
        at: Timestamp,
    ) -> StoreResult<InstanceSettingsRecord> {
        update_instance_settings(&self.pool, registration_mode, by, at).await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>> {
        user_by_email(&self.pool, email).await
    }

    async fn create_reset_token(
        &self,
        user: UserId,
        token_hash: &str,
        created_at: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        create_reset_token(&self.pool, user, token_hash, created_at, expires_at).await
    }

    async fn reset_token_user(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<UserRecord>> {
        reset_token_user(&self.pool, token_hash, now).await
    }

    async fn consume_reset_token(
        &self,
        token_hash: &str,
        now: Timestamp,
        password_hash: &str,
    ) -> StoreResult<Option<UserId>> {
        consume_reset_token(&self.pool, token_hash, now, password_hash).await
    }

    async fn admin_counts(&self) -> StoreResult<AdminCounts> {
        admin_counts(&self.pool).await
    }

    async fn admin_users(&self, query: &AdminUserQuery) -> StoreResult<(Vec<AdminUser>, i64)> {
        admin_users(&self.pool, query).await
    }

    async fn admin_user(&self, id: UserId) -> StoreResult<Option<AdminUser>> {
        admin_user(&self.pool, id).await
    }

    async fn set_admin_flags(
        &self,
        actor: UserId,
        target: UserId,
        flags: &AdminFlags,
        at: Timestamp,
    ) -> StoreResult<Result<(), AdminRefusal>> {
        set_admin_flags(&self.pool, actor, target, flags, at).await
    }

    async fn delete_user_as_admin(
        &self,
        actor: UserId,
        target: UserId,
    ) -> StoreResult<Result<DeletedUser, AdminRefusal>> {
        delete_user_as_admin(&self.pool, actor, target).await
    }

    async fn admin_servers(
        &self,
        query: &AdminServerQuery,
    ) -> StoreResult<(Vec<AdminServer>, i64)> {
        admin_servers(&self.pool, query).await
    }

    async fn server_templates(&self) -> StoreResult<Vec<ServerTemplateRecord>> {
        server_templates(&self.pool).await
    }

    async fn server_template(&self, id: Uuid) -> StoreResult<Option<ServerTemplateRecord>> {
        server_template(&self.pool, id).await
    }

    async fn create_server_with_channels(
        &self,
        server: &Server,
        channels: &[NewChannel],
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Vec<Channel>> {
        create_server_with_channels(&self.pool, server, channels, audit).await
    }
}
