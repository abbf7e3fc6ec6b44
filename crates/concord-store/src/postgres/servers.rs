//! Servers and their members.

use std::{collections::HashMap, sync::LazyLock};

use concord_protocol::{
    CustomEmojiId, MemberRoleInfo, Server, ServerDto, ServerId, Timestamp, UserId,
};
use sqlx::{
    AssertSqlSafe, PgConnection,
    postgres::{PgPool, PgRow},
};

use super::PostgresStore;
use super::{
    get, id, read_tx, rows, ts,
    users::{USER_COLS_U, user_row},
    write_tx,
};
use crate::ServerStore;
use crate::{AuditRecord, MemberDetail, ServerPatch, StoreResult};
use async_trait::async_trait;

/// The columns of a server row with its member count (kept by a trigger on
/// `server_members`), as [`server_row`] reads them (alias `s`).
const SERVER_COLS_S: &str = "s.id, s.name, s.owner_id, s.icon_url, s.is_public, \
    s.require_invite, s.created_at, s.updated_at, s.member_count";

/// A server row, as [`server_row`] reads it (alias `s`).
static SERVER_SELECT: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {SERVER_COLS_S} FROM servers s"));

/// The servers of user `$1`, oldest first.
pub(super) static SERVERS_OF_USER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{} JOIN server_members me ON me.server_id = s.id WHERE me.user_id = $1 \
         ORDER BY s.created_at ASC, s.id ASC",
        SERVER_SELECT.as_str()
    )
});

pub(super) fn server_row(row: &PgRow) -> StoreResult<ServerDto> {
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

async fn fetch_server(conn: &mut PgConnection, id: ServerId) -> StoreResult<Option<ServerDto>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "{} WHERE s.id = $1",
        SERVER_SELECT.as_str()
    )))
    .bind(id.get())
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(server_row).transpose()
}

pub(super) async fn create_server(pool: &PgPool, server: &Server) -> StoreResult<()> {
    let mut tx = write_tx(pool).await?;
    insert_server(&mut tx, server).await?;
    tx.commit().await?;
    Ok(())
}

/// Inserts a server and its owner's membership on `conn` (inside a transaction).
pub(super) async fn insert_server(conn: &mut PgConnection, server: &Server) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO servers (id, name, owner_id, icon_url, is_public, require_invite, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(server.id.get())
    .bind(&server.name)
    .bind(server.owner_id.get())
    .bind(&server.icon_url)
    .bind(server.is_public)
    .bind(server.require_invite)
    .bind(server.created_at.as_micros())
    .bind(server.updated_at.as_micros())
    .execute(&mut *conn)
    .await?;
    sqlx::query("INSERT INTO server_members (server_id, user_id, joined_at) VALUES ($1, $2, $3)")
        .bind(server.id.get())
        .bind(server.owner_id.get())
        .bind(server.created_at.as_micros())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(super) async fn server(pool: &PgPool, id: ServerId) -> StoreResult<Option<ServerDto>> {
    let mut conn = pool.acquire().await?;
    fetch_server(&mut conn, id).await
}

pub(super) async fn servers_of_user(pool: &PgPool, user: UserId) -> StoreResult<Vec<ServerDto>> {
    let found = sqlx::query(SERVERS_OF_USER.as_str())
        .bind(user.get())
        .fetch_all(pool)
        .await?;
    rows(&found, server_row)
}

pub(super) async fn public_servers(pool: &PgPool, limit: i64) -> StoreResult<Vec<ServerDto>> {
    let found = sqlx::query(AssertSqlSafe(format!(
        "{} WHERE s.is_public \
         ORDER BY s.member_count DESC, s.created_at DESC, s.id DESC LIMIT $1",
        SERVER_SELECT.as_str()
    )))
    .bind(limit.max(0))
    .fetch_all(pool)
    .await?;
    rows(&found, server_row)
}

pub(super) async fn update_server(
    pool: &PgPool,
    id: ServerId,
    patch: &ServerPatch,
    updated_at: Timestamp,
    audit: Option<&AuditRecord>,
) -> StoreResult<Option<ServerDto>> {
    let mut tx = write_tx(pool).await?;
    let row = sqlx::query(AssertSqlSafe(format!(
        "UPDATE servers s SET name = COALESCE($1, name), icon_url = COALESCE($2, icon_url), \
         is_public = COALESCE($3, is_public), \
         require_invite = COALESCE($4, require_invite), updated_at = $5 WHERE id = $6 \
         RETURNING {SERVER_COLS_S}"
    )))
    .bind(&patch.name)
    .bind(&patch.icon_url)
    .bind(patch.is_public)
    .bind(patch.require_invite)
    .bind(updated_at.as_micros())
    .bind(id.get())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let server = server_row(&row)?;
    super::audit::insert(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(Some(server))
}

pub(super) async fn delete_server(
    pool: &PgPool,
    id: ServerId,
    audit: Option<&AuditRecord>,
) -> StoreResult<Option<Vec<CustomEmojiId>>> {
    let mut tx = write_tx(pool).await?;
    // Lock the server: no emoji can be added (its insert waits on this lock for the
    // reference check) between the read of the emojis and the delete.
    let found = sqlx::query("SELECT 1 FROM servers WHERE id = $1 FOR UPDATE")
        .bind(id.get())
        .fetch_optional(&mut *tx)
        .await?;
    if found.is_none() {
        return Ok(None);
    }
    let emojis = sqlx::query("SELECT id FROM custom_emojis WHERE server_id = $1")
        .bind(id.get())
        .fetch_all(&mut *tx)
        .await?;
    let emojis = rows(&emojis, |row| super::id(row, "id"))?;
    // Written first: the delete's cascade then sets its `server_id` to NULL (as the
    // reference's row ends up).
    super::audit::insert(&mut tx, audit).await?;
    let done = sqlx::query("DELETE FROM servers WHERE id = $1")
        .bind(id.get())
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() != 1 {
        return Ok(None);
    }
    tx.commit().await?;
    Ok(Some(emojis))
}

pub(super) async fn add_member(
    pool: &PgPool,
    server: ServerId,
    user: UserId,
    joined_at: Timestamp,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO server_members (server_id, user_id, joined_at) VALUES ($1, $2, $3)")
        .bind(server.get())
        .bind(user.get())
        .bind(joined_at.as_micros())
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn remove_member(
    pool: &PgPool,
    server: ServerId,
    user: UserId,
    audit: Option<&AuditRecord>,
) -> StoreResult<bool> {
    let mut tx = write_tx(pool).await?;
    sqlx::query("DELETE FROM member_roles WHERE server_id = $1 AND user_id = $2")
        .bind(server.get())
        .bind(user.get())
        .execute(&mut *tx)
        .await?;
    let done = sqlx::query("DELETE FROM server_members WHERE server_id = $1 AND user_id = $2")
        .bind(server.get())
        .bind(user.get())
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    super::audit::insert(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(true)
}

pub(super) async fn members(pool: &PgPool, server: ServerId) -> StoreResult<Vec<MemberDetail>> {
    let mut tx = read_tx(pool).await?;
    let member_rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {USER_COLS_U}, m.joined_at FROM server_members m JOIN users u ON u.id = m.user_id \
         WHERE m.server_id = $1 ORDER BY m.joined_at ASC, m.user_id ASC"
    )))
    .bind(server.get())
    .fetch_all(&mut *tx)
    .await?;
    let role_rows = sqlx::query(
        "SELECT mr.user_id, r.id, r.name, r.color, r.position FROM member_roles mr \
         JOIN roles r ON r.id = mr.role_id WHERE mr.server_id = $1 \
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

pub(super) async fn is_banned(pool: &PgPool, server: ServerId, user: UserId) -> StoreResult<bool> {
    let row = sqlx::query(
        "SELECT EXISTS (SELECT 1 FROM bans WHERE server_id = $1 AND user_id = $2) AS banned",
    )
    .bind(server.get())
    .bind(user.get())
    .fetch_one(pool)
    .await?;
    get(&row, "banned")
}

pub(super) async fn member_ids_by_usernames(
    pool: &PgPool,
    server: ServerId,
    names: &[String],
) -> StoreResult<Vec<UserId>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    // One statement over the whole list (`= ANY`): one snapshot, no chunks.
    let found_rows = sqlx::query(
        "SELECT u.id, u.username FROM server_members m JOIN users u ON u.id = m.user_id \
         WHERE m.server_id = $1 AND u.username = ANY($2)",
    )
    .bind(server.get())
    .bind(names)
    .fetch_all(pool)
    .await?;
    let mut found: HashMap<String, UserId> = HashMap::new();
    for row in &found_rows {
        found.insert(get(row, "username")?, id(row, "id")?);
    }
    // In the order the names were given, each once.
    Ok(names
        .iter()
        .filter_map(|name| found.remove(name.as_str()))
        .collect())
}

#[async_trait]
impl ServerStore for PostgresStore {
    async fn create_server(&self, server: &Server) -> StoreResult<()> {
        create_server(&self.pool, server).await
    }

    async fn server(&self, id: ServerId) -> StoreResult<Option<ServerDto>> {
        server(&self.pool, id).await
    }

    async fn servers_of_user(&self, user: UserId) -> StoreResult<Vec<ServerDto>> {
        servers_of_user(&self.pool, user).await
    }

    async fn public_servers(&self, limit: i64) -> StoreResult<Vec<ServerDto>> {
        public_servers(&self.pool, limit).await
    }

    async fn update_server(
        &self,
        id: ServerId,
        patch: &ServerPatch,
        updated_at: Timestamp,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Option<ServerDto>> {
        update_server(&self.pool, id, patch, updated_at, audit).await
    }

    async fn delete_server(
        &self,
        id: ServerId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Option<Vec<CustomEmojiId>>> {
        delete_server(&self.pool, id, audit).await
    }

    async fn add_member(
        &self,
        server: ServerId,
        user: UserId,
        joined_at: Timestamp,
    ) -> StoreResult<()> {
        add_member(&self.pool, server, user, joined_at).await
    }

    async fn remove_member(
        &self,
        server: ServerId,
        user: UserId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool> {
        remove_member(&self.pool, server, user, audit).await
    }

    async fn members(&self, server: ServerId) -> StoreResult<Vec<MemberDetail>> {
        members(&self.pool, server).await
    }

    async fn is_banned(&self, server: ServerId, user: UserId) -> StoreResult<bool> {
        is_banned(&self.pool, server, user).await
    }

    async fn member_ids_by_usernames(
        &self,
        server: ServerId,
        names: &[String],
    ) -> StoreResult<Vec<UserId>> {
        member_ids_by_usernames(&self.pool, server, names).await
    }
}
