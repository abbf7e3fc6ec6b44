//! Servers and their members.

use std::{collections::HashMap, sync::LazyLock};

use concord_protocol::{
    CustomEmojiId, MemberRoleInfo, Server, ServerDto, ServerId, Timestamp, UserId,
};
use sqlx::{
    AssertSqlSafe, SqliteConnection,
    sqlite::{SqlitePool, SqliteRow},
};

use super::{
    IN_CHUNK, dedup, get, id, placeholders, read_tx, rows, ts,
    users::{USER_COLS_U, user_row},
    write_tx,
};
use super::{SqliteStore, of_user};
use crate::ServerStore;
use crate::{AuditRecord, MemberDetail, ServerPatch, StoreResult};
use async_trait::async_trait;

/// A server row with its member count (kept by triggers on `server_members`), as
/// [`server_row`] reads it (alias `s`).
const SERVER_SELECT: &str = "SELECT s.id, s.name, s.owner_id, s.icon_url, s.is_public, \
    s.require_invite, s.created_at, s.updated_at, s.member_count FROM servers s";

/// The servers of user `?1`, oldest first.
pub(super) static SERVERS_OF_USER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{SERVER_SELECT} JOIN server_members me ON me.server_id = s.id WHERE me.user_id = ?1 \
         ORDER BY s.created_at ASC, s.id ASC"
    )
});

pub(super) fn server_row(row: &SqliteRow) -> StoreResult<ServerDto> {
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

async fn fetch_server(conn: &mut SqliteConnection, id: ServerId) -> StoreResult<Option<ServerDto>> {
    let row = sqlx::query(AssertSqlSafe(format!("{SERVER_SELECT} WHERE s.id = ?")))
        .bind(id.get())
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(server_row).transpose()
}

pub(super) async fn create_server(pool: &SqlitePool, server: &Server) -> StoreResult<()> {
    let mut tx = write_tx(pool).await?;
    insert_server(&mut tx, server).await?;
    tx.commit().await?;
    Ok(())
}

/// Inserts a server and its owner's membership on `conn` (inside a transaction).
pub(super) async fn insert_server(
    conn: &mut sqlx::SqliteConnection,
    server: &Server,
) -> StoreResult<()> {
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
    .execute(&mut *conn)
    .await?;
    sqlx::query("INSERT INTO server_members (server_id, user_id, joined_at) VALUES (?, ?, ?)")
        .bind(server.id.get())
        .bind(server.owner_id.get())
        .bind(server.created_at.as_micros())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(super) async fn server(pool: &SqlitePool, id: ServerId) -> StoreResult<Option<ServerDto>> {
    let mut conn = pool.acquire().await?;
    fetch_server(&mut conn, id).await
}

pub(super) async fn public_servers(pool: &SqlitePool, limit: i64) -> StoreResult<Vec<ServerDto>> {
    let found = sqlx::query(AssertSqlSafe(format!(
        "{SERVER_SELECT} WHERE s.is_public = 1 \
         ORDER BY s.member_count DESC, s.created_at DESC, s.id DESC LIMIT ?"
    )))
    .bind(limit.max(0))
    .fetch_all(pool)
    .await?;
    rows(&found, server_row)
}

pub(super) async fn update_server(
    pool: &SqlitePool,
    id: ServerId,
    patch: &ServerPatch,
    updated_at: Timestamp,
    audit: Option<&AuditRecord>,
) -> StoreResult<Option<ServerDto>> {
    let mut tx = write_tx(pool).await?;
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
    super::audit::insert(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(server)
}

pub(super) async fn delete_server(
    pool: &SqlitePool,
    id: ServerId,
    audit: Option<&AuditRecord>,
) -> StoreResult<Option<Vec<CustomEmojiId>>> {
    // Under the write lock, so that no emoji is added between the read and the delete.
    let mut tx = write_tx(pool).await?;
    let emojis = sqlx::query("SELECT id FROM custom_emojis WHERE server_id = ?")
        .bind(id.get())
        .fetch_all(&mut *tx)
        .await?;
    let emojis = rows(&emojis, |row| super::id(row, "id"))?;
    // Written first: the delete's cascade then sets its `server_id` to NULL (as the
    // reference's row ends up); nothing is kept when the server was already gone.
    super::audit::insert(&mut tx, audit).await?;
    let done = sqlx::query("DELETE FROM servers WHERE id = ?")
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
    pool: &SqlitePool,
    server: ServerId,
    user: UserId,
    joined_at: Timestamp,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO server_members (server_id, user_id, joined_at) VALUES (?, ?, ?)")
        .bind(server.get())
        .bind(user.get())
        .bind(joined_at.as_micros())
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn remove_member(
    pool: &SqlitePool,
    server: ServerId,
    user: UserId,
    audit: Option<&AuditRecord>,
) -> StoreResult<bool> {
    let mut tx = write_tx(pool).await?;
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
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    super::audit::insert(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(true)
}

pub(super) async fn members(pool: &SqlitePool, server: ServerId) -> StoreResult<Vec<MemberDetail>> {
    let mut tx = read_tx(pool).await?;
    let member_rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {USER_COLS_U}, m.joined_at FROM server_members m JOIN users u ON u.id = m.user_id \
         WHERE m.server_id = ? ORDER BY m.joined_at ASC, m.user_id ASC"
    )))
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

pub(super) async fn is_banned(
    pool: &SqlitePool,
    server: ServerId,
    user: UserId,
) -> StoreResult<bool> {
    let row = sqlx::query(
        "SELECT EXISTS (SELECT 1 FROM bans WHERE server_id = ? AND user_id = ?) AS banned",
    )
    .bind(server.get())
    .bind(user.get())
    .fetch_one(pool)
    .await?;
    get(&row, "banned")
}

pub(super) async fn member_ids_by_usernames(
    pool: &SqlitePool,
    server: ServerId,
    names: &[String],
) -> StoreResult<Vec<UserId>> {
    let names = dedup(&names.iter().map(String::as_str).collect::<Vec<_>>());
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut found: HashMap<String, UserId> = HashMap::new();
    let mut tx = read_tx(pool).await?;
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

#[async_trait]
impl ServerStore for SqliteStore {
    async fn create_server(&self, server: &Server) -> StoreResult<()> {
        create_server(&self.pool, server).await
    }

    async fn server(&self, id: ServerId) -> StoreResult<Option<ServerDto>> {
        server(&self.pool, id).await
    }

    async fn servers_of_user(&self, user: UserId) -> StoreResult<Vec<ServerDto>> {
        of_user(&self.pool, &SERVERS_OF_USER, user, server_row).await
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
