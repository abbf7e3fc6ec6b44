//! InviteStore on PostgreSQL (not yet ported: every method panics).
#![allow(unused_variables, reason = "a stub until this area is ported")]

use crate::{AuditRecord, InviteAcceptance, InviteRefusal, NewUser, UserRecord};
use async_trait::async_trait;
use concord_protocol::{Invite, InviteId, InvitePreview, ServerId, Timestamp, UserId};

use super::PostgresStore;
use crate::{InviteStore, StoreResult};

#[async_trait]
impl InviteStore for PostgresStore {
    async fn create_invite(&self, invite: &Invite, audit: Option<&AuditRecord>) -> StoreResult<()> {
        todo!("PostgresStore::create_invite")
    }

    async fn invites(&self, server: ServerId) -> StoreResult<Vec<Invite>> {
        todo!("PostgresStore::invites")
    }

    async fn delete_invite(
        &self,
        server: ServerId,
        invite: InviteId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool> {
        todo!("PostgresStore::delete_invite")
    }

    async fn invite_preview(
        &self,
        code: &str,
        now: Timestamp,
    ) -> StoreResult<Option<InvitePreview>> {
        todo!("PostgresStore::invite_preview")
    }

    async fn accept_invite(
        &self,
        code: &str,
        user: UserId,
        now: Timestamp,
    ) -> StoreResult<InviteAcceptance> {
        todo!("PostgresStore::accept_invite")
    }

    async fn create_user_with_invite(
        &self,
        user: &NewUser,
        code: &str,
    ) -> StoreResult<Result<UserRecord, InviteRefusal>> {
        todo!("PostgresStore::create_user_with_invite")
    }
}
