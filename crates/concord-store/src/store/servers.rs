//! Servers and their members: the [`ServerStore`] part of the [`Store`](super::Store) port.

use crate::{AuditRecord, MemberDetail, ServerPatch};
use async_trait::async_trait;
use concord_protocol::{CustomEmojiId, Server, ServerDto, ServerId, Timestamp, UserId};

use super::StoreResult;

/// Servers and their members.
#[async_trait]
pub trait ServerStore: Send + Sync {
    /// Inserts a server and makes its owner the sole member (`joined_at` = `created_at`).
    async fn create_server(&self, server: &Server) -> StoreResult<()>;

    /// One server.
    async fn server(&self, id: ServerId) -> StoreResult<Option<ServerDto>>;

    /// The user's servers, oldest server first.
    async fn servers_of_user(&self, user: UserId) -> StoreResult<Vec<ServerDto>>;

    /// Public servers by member count DESC, then newest first.
    async fn public_servers(&self, limit: i64) -> StoreResult<Vec<ServerDto>>;

    /// Applies a patch and sets `updated_at`; `None` when missing.
    async fn update_server(
        &self,
        id: ServerId,
        patch: &ServerPatch,
        updated_at: Timestamp,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Option<ServerDto>>;

    /// Deletes a server and everything in it. `None` when missing; otherwise the ids
    /// of the custom emojis that went with it, read in the same transaction, so the
    /// caller can delete their files.
    /// `audit` is written before the delete (whose cascade then nulls its
    /// `server_id`).
    async fn delete_server(
        &self,
        id: ServerId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Option<Vec<CustomEmojiId>>>;

    /// Adds a member. Conflict when already one.
    async fn add_member(
        &self,
        server: ServerId,
        user: UserId,
        joined_at: Timestamp,
    ) -> StoreResult<()>;

    /// Removes a member (and their role assignments); false when not one.
    async fn remove_member(
        &self,
        server: ServerId,
        user: UserId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool>;

    /// Members by `joined_at` ASC.
    async fn members(&self, server: ServerId) -> StoreResult<Vec<MemberDetail>>;

    /// Whether `user` is banned from `server`.
    async fn is_banned(&self, server: ServerId, user: UserId) -> StoreResult<bool>;

    /// Ids of current members of `server` whose username is one of `names` (exact).
    async fn member_ids_by_usernames(
        &self,
        server: ServerId,
        names: &[String],
    ) -> StoreResult<Vec<UserId>>;
}
