//! Roles, role assignments, channel overrides and timeouts: the [`RoleStore`] part of the [`Store`](super::Store) port.

use crate::AuditRecord;
use async_trait::async_trait;
use concord_protocol::{ChannelId, ChannelOverride, Role, RoleId, ServerId, UserId};

use super::StoreResult;

/// Roles, role assignments, channel overrides and timeouts.
#[async_trait]
pub trait RoleStore: Send + Sync {
    /// One role.
    async fn role(&self, id: RoleId) -> StoreResult<Option<Role>>;

    /// Applies a patch. `None` when the role does not exist; otherwise the role as it
    /// is now and whether the patch changed anything (decided in the same
    /// transaction, so that of two identical concurrent patches only one reports a
    /// change).
    async fn update_role(
        &self,
        id: RoleId,
        patch: &crate::RolePatch,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Option<(Role, bool)>>;

    /// Deletes a role with its assignments and the overrides that target it; false
    /// when missing.
    async fn delete_role(&self, id: RoleId, audit: Option<&AuditRecord>) -> StoreResult<bool>;

    /// Removes a role from a member; false when it was not assigned.
    async fn unassign_role(
        &self,
        server: ServerId,
        user: UserId,
        role: RoleId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool>;

    /// Overrides of one channel: role overrides first, then user overrides, each in
    /// creation order.
    async fn overrides_of_channel(&self, channel: ChannelId) -> StoreResult<Vec<ChannelOverride>>;

    /// [`ChannelStore::put_override`], also saying whether anything changed: false when an
    /// override for the same target already had these very bits (then the stored
    /// row is returned untouched).
    /// `audit` is written in either case, with `"override_id"` of its `details` set
    /// to the stored row's id (an upsert keeps an earlier row's).
    async fn set_override(
        &self,
        ov: &ChannelOverride,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<(ChannelOverride, bool)>;

    /// Deletes the override `id` of `channel`; false when the channel has no such
    /// override.
    async fn delete_override(
        &self,
        channel: ChannelId,
        id: concord_protocol::OverrideId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool>;
}
