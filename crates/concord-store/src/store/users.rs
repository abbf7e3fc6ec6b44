//! Users, their presence and their refresh sessions (logins): the [`UserStore`] part of the [`Store`](super::Store) port.

use crate::{NewUser, Presence, RefreshSession, UserPatch, UserRecord};
use async_trait::async_trait;
use concord_protocol::{Timestamp, UserId};

use super::StoreResult;

/// Users, their presence and their refresh sessions (logins).
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Inserts a user. Conflict on a taken username or email.
    async fn create_user(&self, user: &NewUser) -> StoreResult<UserRecord>;

    /// One user.
    async fn user(&self, id: UserId) -> StoreResult<Option<UserRecord>>;

    /// One user by exact, case-sensitive name.
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>>;

    /// Several users, in no particular order; missing ids are skipped.
    async fn users(&self, ids: &[UserId]) -> StoreResult<Vec<UserRecord>>;

    /// Applies a profile patch; `None` when the user does not exist.
    async fn update_user(&self, id: UserId, patch: &UserPatch) -> StoreResult<Option<UserRecord>>;

    /// Replaces the chosen presence (status, custom status and activity together).
    async fn set_presence(&self, id: UserId, presence: &Presence) -> StoreResult<()>;

    /// Adds a session, deleting the user's expired ones (as of `now`) and then all but
    /// the `keep` newest.
    async fn create_refresh_session(
        &self,
        session: &RefreshSession,
        now: Timestamp,
        keep: usize,
    ) -> StoreResult<()>;

    /// The session whose current token hashes to `token_hash`.
    async fn refresh_session_by_hash(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<RefreshSession>>;

    /// Compare-and-set of the token hash; false when `old_hash` is no longer current.
    /// The replaced hash and `now` are kept as `previous_hash` and `rotated_at`.
    async fn rotate_refresh_session(
        &self,
        id: uuid::Uuid,
        old_hash: &str,
        new_hash: &str,
        now: Timestamp,
    ) -> StoreResult<bool>;

    /// The session (the token family of one login) with this id.
    async fn refresh_session(&self, id: uuid::Uuid) -> StoreResult<Option<RefreshSession>>;

    /// Ends one session, whoever's it is (reuse of its tokens was detected); false
    /// when there was none.
    async fn revoke_refresh_session(&self, id: uuid::Uuid) -> StoreResult<bool>;

    /// Logs the user out everywhere.
    async fn delete_refresh_sessions(&self, user: UserId) -> StoreResult<()>;

    /// Ends the refresh session of `user` whose current token hashes to `token_hash`
    /// and returns its id; `None` when `user` has no such session.
    async fn delete_refresh_session(
        &self,
        user: UserId,
        token_hash: &str,
    ) -> StoreResult<Option<uuid::Uuid>>;
}
