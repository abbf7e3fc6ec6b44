//! Invites: the [`InviteStore`] part of the [`Store`](super::Store) port.

use crate::{AuditRecord, InviteAcceptance, InviteRefusal, NewUser, UserRecord};
use async_trait::async_trait;
use concord_protocol::{Invite, InviteId, InvitePreview, ServerId, Timestamp, UserId};

use super::StoreResult;

/// Invites.
#[async_trait]
pub trait InviteStore: Send + Sync {
    /// Inserts an invite. Conflict when its code is taken; NotFound for a missing
    /// server.
    async fn create_invite(&self, invite: &Invite, audit: Option<&AuditRecord>) -> StoreResult<()>;

    /// A server's invites, newest first (expired and exhausted ones included).
    async fn invites(&self, server: ServerId) -> StoreResult<Vec<Invite>>;

    /// Deletes one invite of `server`; false when it has no such invite.
    async fn delete_invite(
        &self,
        server: ServerId,
        invite: InviteId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool>;

    /// What the invite with this (case-sensitive) code shows, if it is usable at `now`.
    async fn invite_preview(
        &self,
        code: &str,
        now: Timestamp,
    ) -> StoreResult<Option<InvitePreview>>;

    /// Uses the invite with this code for `user` at `now`, in one transaction: checks
    /// the code, then a ban, then membership, then adds the member (`joined_at` =
    /// `now`) and counts the use. Nothing is written unless the user joins.
    async fn accept_invite(
        &self,
        code: &str,
        user: UserId,
        now: Timestamp,
    ) -> StoreResult<InviteAcceptance>;

    /// Registration in invite-only mode: checks the code at `user.created_at`, counts
    /// one use and inserts the user, in one transaction (the user joins no server).
    /// `Ok(Err(_))` when the code cannot be used; a taken username or email is a
    /// Conflict and leaves the invite as it was.
    async fn create_user_with_invite(
        &self,
        user: &NewUser,
        code: &str,
    ) -> StoreResult<Result<UserRecord, InviteRefusal>>;
}
