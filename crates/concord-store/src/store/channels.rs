//! Channels, read state and the in-memory directory's snapshot: the [`ChannelStore`] part of the [`Store`](super::Store) port.

use crate::{AuditRecord, ChannelPatch, DirectorySnapshot, NewChannel};
use async_trait::async_trait;
use concord_protocol::{
    Channel, ChannelId, ChannelOverride, Role, RoleId, ServerId, Timestamp, UserId,
};

use super::StoreResult;

/// Channels, read state and the in-memory directory's snapshot.
#[async_trait]
pub trait ChannelStore: Send + Sync {
    /// Inserts a channel at position max + 1 (0 for the first), atomically.
    async fn create_channel(&self, channel: &NewChannel) -> StoreResult<Channel>;

    /// One channel.
    async fn channel(&self, id: ChannelId) -> StoreResult<Option<Channel>>;

    /// A server's channels by position, then creation.
    async fn channels(&self, server: ServerId) -> StoreResult<Vec<Channel>>;

    /// Applies a patch; `None` when missing.
    async fn update_channel(
        &self,
        id: ChannelId,
        patch: &ChannelPatch,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Option<Channel>>;

    /// Hard delete with messages, overrides and voice states; false when missing.
    async fn delete_channel(&self, id: ChannelId, audit: Option<&AuditRecord>)
    -> StoreResult<bool>;

    /// Inserts a role.
    async fn create_role(&self, role: &Role) -> StoreResult<()>;

    /// Assigns a role; false when it was already assigned.
    async fn assign_role(&self, server: ServerId, user: UserId, role: RoleId) -> StoreResult<bool>;

    /// Roles of these servers, position DESC within each.
    async fn roles_of_servers(&self, servers: &[ServerId]) -> StoreResult<Vec<Role>>;

    /// Upserts an override keyed by (channel, role) or (channel, user); returns the row.
    async fn put_override(&self, ov: &ChannelOverride) -> StoreResult<ChannelOverride>;

    /// Overrides of every channel of these servers.
    async fn overrides_of_servers(&self, servers: &[ServerId])
    -> StoreResult<Vec<ChannelOverride>>;

    /// Adds or replaces a member's timeout.
    async fn set_timeout(
        &self,
        server: ServerId,
        user: UserId,
        expires_at: Timestamp,
        created_by: Option<UserId>,
        created_at: Timestamp,
    ) -> StoreResult<()>;

    /// Everything the in-memory directory starts from (timeouts: those live at `now`).
    async fn directory_snapshot(&self, now: Timestamp) -> StoreResult<DirectorySnapshot>;

    //
    // The methods that perform audited actions take `audit: Option<&AuditRecord>`:
    // the row is inserted in the action's own transaction, and only when the action
    // takes effect (a `false` / `None` answer writes nothing). The three below are the
    // audited forms of widely used methods whose signatures stay as they are.

    /// [`ChannelStore::create_channel`], writing `audit` in the same transaction.
    async fn create_channel_audited(
        &self,
        channel: &NewChannel,
        audit: &AuditRecord,
    ) -> StoreResult<Channel>;

    /// [`ChannelStore::create_role`], writing `audit` in the same transaction.
    async fn create_role_audited(&self, role: &Role, audit: &AuditRecord) -> StoreResult<()>;

    /// [`ChannelStore::assign_role`], writing `audit` in the same transaction when the role
    /// was not assigned yet.
    async fn assign_role_audited(
        &self,
        server: ServerId,
        user: UserId,
        role: RoleId,
        audit: &AuditRecord,
    ) -> StoreResult<bool>;
}
