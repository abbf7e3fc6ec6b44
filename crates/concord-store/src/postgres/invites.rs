//! Server invites: creation, listing, preview, and their use by accepting or by
//! registering in invite-only mode.

use concord_protocol::{Invite, InviteId, InvitePreview, ServerId, Timestamp, UserId};
use sqlx::{
    AssertSqlSafe, PgConnection,
    postgres::{PgPool, PgRow},
};

use super::PostgresStore;
use super::{get, id, opt_id, opt_ts, rows, ts, users::insert_user, write_tx};
use crate::InviteStore;
use crate::{AuditRecord, InviteAcceptance, InviteRefusal, NewUser, StoreResult, UserRecord};
use async_trait::async_trait;

/// The columns of an invite row, as [`invite_row`] reads them.
const INVITE_COLS: &str = "id, server_id, code, created_by, max_uses, uses, expires_at, created_at";

fn invite_row(row: &PgRow) -> StoreResult<Invite> {
    Ok(Invite {
        id: id(row, "id")?,
        server_id: id(row, "server_id")?,
        code: get(row, "code")?,
        created_by: opt_id(row, "created_by")?,
        max_uses: get(row, "max_uses")?,
        uses: get(row, "uses")?,
        expires_at: opt_ts(row, "expires_at")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(super) async fn create_invite(
    pool: &PgPool,
    invite: &Invite,
    audit: Option<&AuditRecord>,
) -> StoreResult<()> {
    let mut tx = write_tx(pool).await?;
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO invites ({INVITE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    )))
    .bind(invite.id.get())
    .bind(invite.server_id.get())
    .bind(&invite.code)
    .bind(invite.created_by.map(UserId::get))
    .bind(invite.max_uses)
    .bind(invite.uses)
    .bind(invite.expires_at.map(Timestamp::as_micros))
    .bind(invite.created_at.as_micros())
    .execute(&mut *tx)
    .await?;
    super::audit::insert(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn invites(pool: &PgPool, server: ServerId) -> StoreResult<Vec<Invite>> {
    let found = sqlx::query(AssertSqlSafe(format!(
        "SELECT {INVITE_COLS} FROM invites WHERE server_id = $1 \
         ORDER BY created_at DESC, id DESC"
    )))
    .bind(server.get())
    .fetch_all(pool)
    .await?;
    rows(&found, invite_row)
}

pub(super) async fn delete_invite(
    pool: &PgPool,
    server: ServerId,
    invite: InviteId,
    audit: Option<&AuditRecord>,
) -> StoreResult<bool> {
    let mut tx = write_tx(pool).await?;
    let done = sqlx::query("DELETE FROM invites WHERE id = $1 AND server_id = $2")
        .bind(invite.get())
        .bind(server.get())
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    super::audit::insert(&mut tx, audit).await?;
    tx.commit().await?;
    Ok(true)
}

pub(super) async fn invite_preview(
    pool: &PgPool,
    code: &str,
    now: Timestamp,
) -> StoreResult<Option<InvitePreview>> {
    let row = sqlx::query(
        "SELECT i.code, s.name, s.icon_url, s.member_count, i.expires_at \
         FROM invites i JOIN servers s ON s.id = i.server_id \
         WHERE i.code = $1 AND (i.expires_at IS NULL OR i.expires_at > $2) \
         AND (i.max_uses IS NULL OR i.uses < i.max_uses)",
    )
    .bind(code)
    .bind(now.as_micros())
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        Ok(InvitePreview {
            code: get(&row, "code")?,
            server_name: get(&row, "name")?,
            server_icon_url: get(&row, "icon_url")?,
            member_count: get(&row, "member_count")?,
            expires_at: opt_ts(&row, "expires_at")?,
        })
    })
    .transpose()
}

/// The invite with `code` if it can be used at `now`, read inside the caller's write
/// transaction. The invite's row stays locked (`FOR UPDATE`) until that transaction
/// ends, so what this read says about it holds for the use counted after it.
async fn usable(
    conn: &mut PgConnection,
    code: &str,
    now: Timestamp,
) -> StoreResult<Result<Invite, InviteRefusal>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {INVITE_COLS} FROM invites WHERE code = $1 FOR UPDATE"
    )))
    .bind(code)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(invite) = row.as_ref().map(invite_row).transpose()? else {
        return Ok(Err(InviteRefusal::Unknown));
    };
    Ok(if invite.expired(now) {
        Err(InviteRefusal::Expired)
    } else if invite.exhausted() {
        Err(InviteRefusal::Exhausted)
    } else {
        Ok(invite)
    })
}

/// Counts one use of `invite`. The guard repeats the exhaustion check in the statement
/// itself, so that no interleaving can push `uses` past `max_uses`.
async fn count_use(conn: &mut PgConnection, invite: &Invite) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE invites SET uses = uses + 1 \
         WHERE id = $1 AND (max_uses IS NULL OR uses < max_uses)",
    )
    .bind(invite.id.get())
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn accept_invite(
    pool: &PgPool,
    code: &str,
    user: UserId,
    now: Timestamp,
) -> StoreResult<InviteAcceptance> {
    let mut tx = write_tx(pool).await?;
    // Locks the invite's server first (as `ban` does, and the member count trigger
    // would anyway), so that the ban and membership checks below still hold when the
    // member is inserted.
    sqlx::query(
        "SELECT 1 FROM servers s JOIN invites i ON i.server_id = s.id \
         WHERE i.code = $1 FOR NO KEY UPDATE OF s",
    )
    .bind(code)
    .fetch_optional(&mut *tx)
    .await?;
    let invite = match usable(&mut tx, code, now).await? {
        Ok(invite) => invite,
        Err(refusal) => return Ok(InviteAcceptance::Refused(refusal)),
    };
    let server = invite.server_id;
    let row = sqlx::query(
        "SELECT EXISTS (SELECT 1 FROM bans WHERE server_id = $1 AND user_id = $2) AS banned, \
         EXISTS (SELECT 1 FROM server_members WHERE server_id = $1 AND user_id = $2) AS member",
    )
    .bind(server.get())
    .bind(user.get())
    .fetch_one(&mut *tx)
    .await?;
    if get::<bool>(&row, "banned")? {
        return Ok(InviteAcceptance::Banned(server));
    }
    if get::<bool>(&row, "member")? {
        return Ok(InviteAcceptance::AlreadyMember(server));
    }
    sqlx::query("INSERT INTO server_members (server_id, user_id, joined_at) VALUES ($1, $2, $3)")
        .bind(server.get())
        .bind(user.get())
        .bind(now.as_micros())
        .execute(&mut *tx)
        .await?;
    if !count_use(&mut tx, &invite).await? {
        // Dropping the transaction takes the membership back out.
        return Ok(InviteAcceptance::Refused(InviteRefusal::Exhausted));
    }
    tx.commit().await?;
    Ok(InviteAcceptance::Joined(server))
}

pub(super) async fn create_user_with_invite(
    pool: &PgPool,
    user: &NewUser,
    code: &str,
) -> StoreResult<Result<UserRecord, InviteRefusal>> {
    let mut tx = write_tx(pool).await?;
    let invite = match usable(&mut tx, code, user.created_at).await? {
        Ok(invite) => invite,
        Err(refusal) => return Ok(Err(refusal)),
    };
    if !count_use(&mut tx, &invite).await? {
        return Ok(Err(InviteRefusal::Exhausted));
    }
    // A taken name fails here, and the dropped transaction returns the use.
    let created = insert_user(&mut tx, user).await?;
    tx.commit().await?;
    Ok(Ok(created))
}

#[async_trait]
impl InviteStore for PostgresStore {
    async fn create_invite(&self, invite: &Invite, audit: Option<&AuditRecord>) -> StoreResult<()> {
        create_invite(&self.pool, invite, audit).await
    }

    async fn invites(&self, server: ServerId) -> StoreResult<Vec<Invite>> {
        invites(&self.pool, server).await
    }

    async fn delete_invite(
        &self,
        server: ServerId,
        invite: InviteId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool> {
        delete_invite(&self.pool, server, invite, audit).await
    }

    async fn invite_preview(
        &self,
        code: &str,
        now: Timestamp,
    ) -> StoreResult<Option<InvitePreview>> {
        invite_preview(&self.pool, code, now).await
    }

    async fn accept_invite(
        &self,
        code: &str,
        user: UserId,
        now: Timestamp,
    ) -> StoreResult<InviteAcceptance> {
        accept_invite(&self.pool, code, user, now).await
    }

    async fn create_user_with_invite(
        &self,
        user: &NewUser,
        code: &str,
    ) -> StoreResult<Result<UserRecord, InviteRefusal>> {
        create_user_with_invite(&self.pool, user, code).await
    }
}
