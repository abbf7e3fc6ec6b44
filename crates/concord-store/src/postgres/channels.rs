//! Channels, roles, permission overrides, timeouts and the directory snapshot.

use std::sync::LazyLock;

use concord_protocol::{
    Channel, ChannelId, ChannelOverride, Role, RoleId, ServerId, Timestamp, UserId,
};
use sqlx::{
    AssertSqlSafe, PgConnection,
    postgres::{PgPool, PgRow},
};

use super::PostgresStore;
use super::{channel_type, get, id, opt_id, read_tx, rows, ts, uuids, write_tx};
use crate::ChannelStore;
use crate::shared::{sort_overrides, sort_roles};
use crate::{AuditRecord, ChannelPatch, DirectorySnapshot, NewChannel, StoreResult};
use async_trait::async_trait;

/// The columns of a channel row, as [`channel_row`] reads them.
const CHANNEL_COLS: &str = "id, server_id, name, type, position, category, topic, created_at";

/// The columns of a role row, as [`role_row`] reads them.
pub(super) const ROLE_COLS: &str = "id, server_id, name, permissions, color, position, created_at";

/// The columns of an override row, as [`override_row`] reads them.
pub(super) const OVERRIDE_COLS: &str = "id, channel_id, role_id, user_id, allow, deny";

/// Roles of the servers in the `UUID[]` `$1`.
static ROLES_OF: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {ROLE_COLS} FROM roles WHERE server_id = ANY($1)"));

/// Overrides of the channels of the servers in the `UUID[]` `$1`.
const OVERRIDES_OF: &str = "SELECT o.id, o.channel_id, o.role_id, o.user_id, o.allow, o.deny \
     FROM channel_overrides o JOIN channels c ON c.id = o.channel_id \
     WHERE c.server_id = ANY($1)";

/// Roles of the servers of user `$1`, in no order ([`sort_roles`] orders them).
pub(super) static ROLES_OF_USER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {ROLE_COLS} FROM roles WHERE server_id IN \
         (SELECT server_id FROM server_members WHERE user_id = $1)"
    )
});

/// Overrides in the servers of user `$1`, in no order ([`sort_overrides`]).
pub(super) const OVERRIDES_OF_USER: &str = "SELECT o.id, o.channel_id, o.role_id, o.user_id, o.allow, o.deny \
     FROM channel_overrides o JOIN channels c ON c.id = o.channel_id \
     WHERE c.server_id IN (SELECT server_id FROM server_members WHERE user_id = $1)";

fn channel_row(row: &PgRow) -> StoreResult<Channel> {
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

pub(super) fn role_row(row: &PgRow) -> StoreResult<Role> {
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

pub(super) fn override_row(row: &PgRow) -> StoreResult<ChannelOverride> {
    Ok(ChannelOverride {
        id: id(row, "id")?,
        channel_id: id(row, "channel_id")?,
        role_id: opt_id(row, "role_id")?,
        user_id: opt_id(row, "user_id")?,
        allow: get(row, "allow")?,
        deny: get(row, "deny")?,
    })
}

pub(super) async fn create_channel(
    pool: &PgPool,
    channel: &NewChannel,
    audit: Option<&AuditRecord>,
) -> StoreResult<Channel> {
    // Always a transaction: `insert_channel` holds its server's lock until the commit.
    let mut tx = write_tx(pool).await?;
    let created = insert_channel(&mut tx, channel).await?;
    super::audit::insert(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(created)
}

/// Inserts a channel at position max + 1 (0 for the first) on `conn`, which must be
/// inside a transaction.
pub(super) async fn insert_channel(
    conn: &mut PgConnection,
    channel: &NewChannel,
) -> StoreResult<Channel> {
    // Lock the server row: two channels created at once must not both read the same
    // max. NO KEY UPDATE serialises this with every other locker of the row but leaves
    // reference checks (inserts of members, roles) free. A missing server locks
    // nothing; the insert's reference check then fails.
    sqlx::query("SELECT 1 FROM servers WHERE id = $1 FOR NO KEY UPDATE")
        .bind(channel.server_id.get())
        .execute(&mut *conn)
        .await?;
    let row = sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO channels (id, server_id, name, type, position, category, topic, \
         created_at) SELECT $1, $2, $3, $4, \
         COALESCE((SELECT MAX(position) + 1 FROM channels WHERE server_id = $2), 0), \
         $5, $6, $7 RETURNING {CHANNEL_COLS}"
    )))
    .bind(channel.id.get())
    .bind(channel.server_id.get())
    .bind(&channel.name)
    .bind(channel.kind.as_str())
    .bind(&channel.category)
    .bind(&channel.topic)
    .bind(channel.created_at.as_micros())
    .fetch_one(&mut *conn)
    .await?;
    channel_row(&row)
}

pub(super) async fn channel(pool: &PgPool, id: ChannelId) -> StoreResult<Option<Channel>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {CHANNEL_COLS} FROM channels WHERE id = $1"
    )))
    .bind(id.get())
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(channel_row).transpose()
}

pub(super) async fn channels(pool: &PgPool, server: ServerId) -> StoreResult<Vec<Channel>> {
    let found = sqlx::query(AssertSqlSafe(format!(
        "SELECT {CHANNEL_COLS} FROM channels WHERE server_id = $1 \
         ORDER BY position ASC, created_at ASC, id ASC"
    )))
    .bind(server.get())
    .fetch_all(pool)
    .await?;
    rows(&found, channel_row)
}

pub(super) async fn update_channel(
    pool: &PgPool,
    id: ChannelId,
    patch: &ChannelPatch,
    audit: Option<&AuditRecord>,
) -> StoreResult<Option<Channel>> {
    let mut tx = write_tx(pool).await?;
    let row = sqlx::query(AssertSqlSafe(format!(
        "UPDATE channels SET name = COALESCE($1, name), topic = COALESCE($2, topic), \
         category = COALESCE($3, category), position = COALESCE($4, position) \
         WHERE id = $5 RETURNING {CHANNEL_COLS}"
    )))
    .bind(&patch.name)
    .bind(&patch.topic)
    .bind(&patch.category)
    .bind(patch.position)
    .bind(id.get())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let updated = channel_row(&row)?;
    super::audit::insert(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(Some(updated))
}

pub(super) async fn delete_channel(
    pool: &PgPool,
    id: ChannelId,
    audit: Option<&AuditRecord>,
) -> StoreResult<bool> {
    let mut tx = write_tx(pool).await?;
    let done = sqlx::query("DELETE FROM channels WHERE id = $1")
        .bind(id.get())
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    super::audit::insert(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(true)
}

// ---- roles, overrides, timeouts ----

pub(super) async fn create_role(
    pool: &PgPool,
    role: &Role,
    audit: Option<&AuditRecord>,
) -> StoreResult<()> {
    let mut tx = write_tx(pool).await?;
    sqlx::query(
        "INSERT INTO roles (id, server_id, name, permissions, color, position, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(role.id.get())
    .bind(role.server_id.get())
    .bind(&role.name)
    .bind(role.permissions)
    .bind(&role.color)
    .bind(role.position)
    .bind(role.created_at.as_micros())
    .execute(&mut *tx)
    .await?;
    super::audit::insert(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn assign_role(
    pool: &PgPool,
    server: ServerId,
    user: UserId,
    role: RoleId,
    audit: Option<&AuditRecord>,
) -> StoreResult<bool> {
    let mut tx = write_tx(pool).await?;
    let done = sqlx::query(
        "INSERT INTO member_roles (server_id, user_id, role_id) VALUES ($1, $2, $3) \
         ON CONFLICT (server_id, user_id, role_id) DO NOTHING",
    )
    .bind(server.get())
    .bind(user.get())
    .bind(role.get())
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    super::audit::insert(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(true)
}

/// The roles of `servers` (one statement), ordered by [`sort_roles`].
pub(super) async fn roles_of_servers(
    conn: &mut PgConnection,
    servers: &[ServerId],
) -> StoreResult<Vec<Role>> {
    if servers.is_empty() {
        return Ok(Vec::new());
    }
    let found = sqlx::query(ROLES_OF.as_str())
        .bind(uuids(servers))
        .fetch_all(conn)
        .await?;
    let mut roles = rows(&found, role_row)?;
    sort_roles(&mut roles);
    Ok(roles)
}

pub(super) async fn put_override<'c, E>(
    conn: E,
    ov: &ChannelOverride,
) -> StoreResult<ChannelOverride>
where
    E: sqlx::Executor<'c, Database = sqlx::Postgres>,
{
    let sql = match (ov.role_id, ov.user_id) {
        (Some(_), None) => format!(
            "INSERT INTO channel_overrides (id, channel_id, role_id, user_id, allow, deny) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (channel_id, role_id) \
             DO UPDATE SET allow = excluded.allow, deny = excluded.deny RETURNING {OVERRIDE_COLS}"
        ),
        (None, Some(_)) => format!(
            "INSERT INTO channel_overrides (id, channel_id, role_id, user_id, allow, deny) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (channel_id, user_id) \
             DO UPDATE SET allow = excluded.allow, deny = excluded.deny RETURNING {OVERRIDE_COLS}"
        ),
        // Neither or both targets: the CHECK constraint refuses it.
        _ => format!(
            "INSERT INTO channel_overrides (id, channel_id, role_id, user_id, allow, deny) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {OVERRIDE_COLS}"
        ),
    };
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(ov.id.get())
        .bind(ov.channel_id.get())
        .bind(ov.role_id.map(RoleId::get))
        .bind(ov.user_id.map(UserId::get))
        .bind(ov.allow)
        .bind(ov.deny)
        .fetch_one(conn)
        .await?;
    override_row(&row)
}

/// The overrides in the channels of `servers` (one statement), by [`sort_overrides`].
pub(super) async fn overrides_of_servers(
    conn: &mut PgConnection,
    servers: &[ServerId],
) -> StoreResult<Vec<ChannelOverride>> {
    if servers.is_empty() {
        return Ok(Vec::new());
    }
    let found = sqlx::query(OVERRIDES_OF)
        .bind(uuids(servers))
        .fetch_all(conn)
        .await?;
    let mut overrides = rows(&found, override_row)?;
    sort_overrides(&mut overrides);
    Ok(overrides)
}

pub(super) async fn set_timeout(
    pool: &PgPool,
    server: ServerId,
    user: UserId,
    expires_at: Timestamp,
    created_by: Option<UserId>,
    created_at: Timestamp,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO timeouts (server_id, user_id, expires_at, reason, created_by, created_at) \
         VALUES ($1, $2, $3, NULL, $4, $5) ON CONFLICT (server_id, user_id) DO UPDATE SET \
         expires_at = excluded.expires_at, reason = excluded.reason, \
         created_by = excluded.created_by, created_at = excluded.created_at",
    )
    .bind(server.get())
    .bind(user.get())
    .bind(expires_at.as_micros())
    .bind(created_by.map(UserId::get))
    .bind(created_at.as_micros())
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn directory_snapshot(
    pool: &PgPool,
    now: Timestamp,
) -> StoreResult<DirectorySnapshot> {
    let mut tx = read_tx(pool).await?;
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
    let overrides = sqlx::query(AssertSqlSafe(format!(
        "SELECT {OVERRIDE_COLS} FROM channel_overrides ORDER BY channel_id, id"
    )))
    .fetch_all(&mut *tx)
    .await?;
    snapshot.overrides = rows(&overrides, override_row)?;
    for row in sqlx::query(
        "SELECT server_id, user_id, expires_at FROM timeouts WHERE expires_at > $1 \
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

#[async_trait]
impl ChannelStore for PostgresStore {
    async fn create_channel(&self, channel: &NewChannel) -> StoreResult<Channel> {
        create_channel(&self.pool, channel, None).await
    }

    async fn channel(&self, id: ChannelId) -> StoreResult<Option<Channel>> {
        channel(&self.pool, id).await
    }

    async fn channels(&self, server: ServerId) -> StoreResult<Vec<Channel>> {
        channels(&self.pool, server).await
    }

    async fn update_channel(
        &self,
        id: ChannelId,
        patch: &ChannelPatch,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Option<Channel>> {
        update_channel(&self.pool, id, patch, audit).await
    }

    async fn delete_channel(
        &self,
        id: ChannelId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool> {
        delete_channel(&self.pool, id, audit).await
    }

    async fn create_role(&self, role: &Role) -> StoreResult<()> {
        create_role(&self.pool, role, None).await
    }

    async fn assign_role(&self, server: ServerId, user: UserId, role: RoleId) -> StoreResult<bool> {
        assign_role(&self.pool, server, user, role, None).await
    }

    async fn roles_of_servers(&self, servers: &[ServerId]) -> StoreResult<Vec<Role>> {
        // One statement over the whole list: a snapshot without a transaction.
        roles_of_servers(&mut *self.pool.acquire().await?, servers).await
    }

    async fn put_override(&self, ov: &ChannelOverride) -> StoreResult<ChannelOverride> {
        put_override(&self.pool, ov).await
    }

    async fn overrides_of_servers(
        &self,
        servers: &[ServerId],
    ) -> StoreResult<Vec<ChannelOverride>> {
        overrides_of_servers(&mut *self.pool.acquire().await?, servers).await
    }

    async fn set_timeout(
        &self,
        server: ServerId,
        user: UserId,
        expires_at: Timestamp,
        created_by: Option<UserId>,
        created_at: Timestamp,
    ) -> StoreResult<()> {
        set_timeout(&self.pool, server, user, expires_at, created_by, created_at).await
    }

    async fn directory_snapshot(&self, now: Timestamp) -> StoreResult<DirectorySnapshot> {
        directory_snapshot(&self.pool, now).await
    }

    async fn create_channel_audited(
        &self,
        channel: &NewChannel,
        audit: &AuditRecord,
    ) -> StoreResult<Channel> {
        create_channel(&self.pool, channel, Some(audit)).await
    }

    async fn create_role_audited(&self, role: &Role, audit: &AuditRecord) -> StoreResult<()> {
        create_role(&self.pool, role, Some(audit)).await
    }

    async fn assign_role_audited(
        &self,
        server: ServerId,
        user: UserId,
        role: RoleId,
        audit: &AuditRecord,
    ) -> StoreResult<bool> {
        assign_role(&self.pool, server, user, role, Some(audit)).await
    }
}
