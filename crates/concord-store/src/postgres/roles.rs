//! Roles, role assignments and channel overrides as the permissions routes change them
//! (creation, the server-wide reads and the plain upsert live in `channels.rs`).

use concord_protocol::{ChannelId, ChannelOverride, OverrideId, Role, RoleId, ServerId, UserId};
use sqlx::{AssertSqlSafe, PgConnection, postgres::PgPool};

use super::PostgresStore;
use super::{
    channels::{OVERRIDE_COLS, ROLE_COLS, override_row, put_override, role_row},
    rows, write_tx,
};
use crate::RoleStore;
use crate::{AuditRecord, RolePatch, StoreResult};
use async_trait::async_trait;

/// The role `id`; with `lock`, its row stays locked (`FOR NO KEY UPDATE`) until the
/// caller's transaction ends.
async fn role_in(conn: &mut PgConnection, id: RoleId, lock: bool) -> StoreResult<Option<Role>> {
    let lock = if lock { " FOR NO KEY UPDATE" } else { "" };
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {ROLE_COLS} FROM roles WHERE id = $1{lock}"
    )))
    .bind(id.get())
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(role_row).transpose()
}

pub(super) async fn role(pool: &PgPool, id: RoleId) -> StoreResult<Option<Role>> {
    role_in(&mut *pool.acquire().await?, id, false).await
}

pub(super) async fn update_role(
    pool: &PgPool,
    id: RoleId,
    patch: &RolePatch,
    audit: Option<&AuditRecord>,
) -> StoreResult<Option<(Role, bool)>> {
    let mut tx = write_tx(pool).await?;
    // The patch is applied to what was read: the role row is locked from the read on,
    // so a concurrent update waits and then compares against this one's result.
    let Some(current) = role_in(&mut tx, id, true).await? else {
        return Ok(None);
    };
    let wanted = Role {
        name: patch.name.clone().unwrap_or_else(|| current.name.clone()),
        permissions: patch.permissions.unwrap_or(current.permissions),
        color: patch.color.clone().or_else(|| current.color.clone()),
        position: patch.position.unwrap_or(current.position),
        ..current.clone()
    };
    if wanted == current {
        // Nothing changes, yet the update was made: it is recorded all the same.
        super::audit::insert(&mut tx, audit).await?;
        tx.commit().await?;
        return Ok(Some((current, false)));
    }
    let row = sqlx::query(AssertSqlSafe(format!(
        "UPDATE roles SET name = $1, permissions = $2, color = $3, position = $4 \
         WHERE id = $5 RETURNING {ROLE_COLS}"
    )))
    .bind(&wanted.name)
    .bind(wanted.permissions)
    .bind(&wanted.color)
    .bind(wanted.position)
    .bind(id.get())
    .fetch_one(&mut *tx)
    .await?;
    let updated = role_row(&row)?;
    super::audit::insert(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(Some((updated, true)))
}

pub(super) async fn delete_role(
    pool: &PgPool,
    id: RoleId,
    audit: Option<&AuditRecord>,
) -> StoreResult<bool> {
    let mut tx = write_tx(pool).await?;
    // Assignments and overrides of the role go by their foreign keys' cascades.
    let done = sqlx::query("DELETE FROM roles WHERE id = $1")
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

pub(super) async fn unassign_role(
    pool: &PgPool,
    server: ServerId,
    user: UserId,
    role: RoleId,
    audit: Option<&AuditRecord>,
) -> StoreResult<bool> {
    let mut tx = write_tx(pool).await?;
    let done = sqlx::query(
        "DELETE FROM member_roles WHERE server_id = $1 AND user_id = $2 AND role_id = $3",
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

pub(super) async fn overrides_of_channel(
    pool: &PgPool,
    channel: ChannelId,
) -> StoreResult<Vec<ChannelOverride>> {
    // Ids are time-ordered and an upsert keeps the first one: id order is creation order.
    let found = sqlx::query(AssertSqlSafe(format!(
        "SELECT {OVERRIDE_COLS} FROM channel_overrides WHERE channel_id = $1 \
         ORDER BY role_id IS NULL, id"
    )))
    .bind(channel.get())
    .fetch_all(pool)
    .await?;
    rows(&found, override_row)
}

pub(super) async fn set_override(
    pool: &PgPool,
    ov: &ChannelOverride,
    audit: Option<&AuditRecord>,
) -> StoreResult<(ChannelOverride, bool)> {
    let mut tx = write_tx(pool).await?;
    // Read, compare, then write: the channel row is locked first (NO KEY UPDATE, so
    // inserts that only reference the channel are not held up), so concurrent sets on
    // one channel take turns and each compares against the other's result. A missing
    // channel locks nothing; the upsert below then fails on its foreign key.
    sqlx::query("SELECT 1 FROM channels WHERE id = $1 FOR NO KEY UPDATE")
        .bind(ov.channel_id.get())
        .execute(&mut *tx)
        .await?;
    let existing = sqlx::query(AssertSqlSafe(format!(
        "SELECT {OVERRIDE_COLS} FROM channel_overrides WHERE channel_id = $1 \
         AND (role_id = $2 OR user_id = $3)"
    )))
    .bind(ov.channel_id.get())
    .bind(ov.role_id.map(RoleId::get))
    .bind(ov.user_id.map(UserId::get))
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(row) = existing {
        let existing = override_row(&row)?;
        // Same target (one of the two is set, as the CHECK constraint demands) and
        // the same bits: nothing to write.
        if existing.role_id == ov.role_id
            && existing.user_id == ov.user_id
            && existing.allow == ov.allow
            && existing.deny == ov.deny
        {
            // Nothing to change, yet the request was carried out: it is recorded.
            super::audit::insert_with_id(&mut tx, audit, "override_id", existing.id.get()).await?;
            tx.commit().await?;
            return Ok((existing, false));
        }
    }
    let stored = put_override(&mut *tx, ov).await?;
    // The row may be an earlier one's (an upsert keeps its id): the record names it.
    super::audit::insert_with_id(&mut tx, audit, "override_id", stored.id.get()).await?;
    tx.commit().await?;
    Ok((stored, true))
}

pub(super) async fn delete_override(
    pool: &PgPool,
    channel: ChannelId,
    id: OverrideId,
    audit: Option<&AuditRecord>,
) -> StoreResult<bool> {
    let mut tx = write_tx(pool).await?;
    let done = sqlx::query("DELETE FROM channel_overrides WHERE id = $1 AND channel_id = $2")
        .bind(id.get())
        .bind(channel.get())
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    super::audit::insert(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(true)
}

#[async_trait]
impl RoleStore for PostgresStore {
    async fn role(&self, id: RoleId) -> StoreResult<Option<Role>> {
        role(&self.pool, id).await
    }

    async fn update_role(
        &self,
        id: RoleId,
        patch: &RolePatch,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Option<(Role, bool)>> {
        update_role(&self.pool, id, patch, audit).await
    }

    async fn delete_role(&self, id: RoleId, audit: Option<&AuditRecord>) -> StoreResult<bool> {
        delete_role(&self.pool, id, audit).await
    }

    async fn unassign_role(
        &self,
        server: ServerId,
        user: UserId,
        role: RoleId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool> {
        unassign_role(&self.pool, server, user, role, audit).await
    }

    async fn overrides_of_channel(&self, channel: ChannelId) -> StoreResult<Vec<ChannelOverride>> {
        overrides_of_channel(&self.pool, channel).await
    }

    async fn set_override(
        &self,
        ov: &ChannelOverride,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<(ChannelOverride, bool)> {
        set_override(&self.pool, ov, audit).await
    }

    async fn delete_override(
        &self,
        channel: ChannelId,
        id: OverrideId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool> {
        delete_override(&self.pool, channel, id, audit).await
    }
}
