//! Bans, kicks and timeouts: the [`ModerationStore`] part of the [`Store`](super::Store) port.

use crate::AuditRecord;
use async_trait::async_trait;
use concord_protocol::{Ban, ServerId, Timeout, Timestamp, UserId};

use super::StoreResult;

/// Bans, kicks and timeouts.
#[async_trait]
pub trait ModerationStore: Send + Sync {
    /// Bans `ban.user_id` from `ban.server_id` (a repeated ban replaces the banner and
    /// the reason, and keeps the first ban's time) and removes their membership and role assignments, in one
    /// transaction. Returns whether they were a member. NotFound for a missing user or
    /// server.
    async fn ban(&self, ban: &Ban, audit: Option<&AuditRecord>) -> StoreResult<bool>;

    /// Lifts a ban; false when there was none (and then `audit` is not written).
    async fn unban(
        &self,
        server: ServerId,
        user: UserId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool>;

    /// A server's bans, newest first.
    async fn bans(&self, server: ServerId) -> StoreResult<Vec<Ban>>;

    /// Adds or replaces a member's timeout (every field of the old one is replaced).
    /// NotFound for a missing user or server.
    async fn put_timeout(&self, timeout: &Timeout, audit: Option<&AuditRecord>) -> StoreResult<()>;

    /// Removes a member's timeout; returns when the removed one was to end (`None`
    /// when there was none, and then `audit` is not written).
    async fn remove_timeout(
        &self,
        server: ServerId,
        user: UserId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Option<Timestamp>>;
}
