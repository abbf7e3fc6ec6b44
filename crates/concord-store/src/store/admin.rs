//! Instance administration, password reset and server templates: the [`AdminStore`] part of the [`Store`](super::Store) port.

use crate::{
    AdminCounts, AdminFlags, AdminRefusal, AdminServerQuery, AdminUserQuery, AuditRecord,
    DeletedUser, InstanceSettingsRecord, NewChannel, ServerTemplateRecord, UserRecord,
};
use async_trait::async_trait;
use concord_protocol::{
    AdminServer, AdminUser, Channel, RegistrationMode, Server, Timestamp, UserId,
};

use super::StoreResult;

/// Instance administration, password reset and server templates.
#[async_trait]
pub trait AdminStore: Send + Sync {
    /// The instance settings row.
    async fn instance_settings(&self) -> StoreResult<InstanceSettingsRecord>;

    /// Records a settings change by `by` at `at`: the registration mode when given
    /// (`None` keeps it), and `updated_at` / `updated_by` in any case. Returns the row.
    async fn update_instance_settings(
        &self,
        registration_mode: Option<RegistrationMode>,
        by: UserId,
        at: Timestamp,
    ) -> StoreResult<InstanceSettingsRecord>;

    /// One user by exact, case-sensitive e-mail.
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>>;

    /// Stores a password reset token of `user` (by its hash), deleting the user's
    /// earlier ones, in one transaction. NotFound for a missing user.
    async fn create_reset_token(
        &self,
        user: UserId,
        token_hash: &str,
        created_at: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()>;

    /// The user of the reset token with this hash, if the token is unused and not
    /// expired at `now` (it is not consumed).
    async fn reset_token_user(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<UserRecord>>;

    /// Consumes the reset token with this hash, if unused and unexpired at `now`, and
    /// in the same transaction sets the user's password hash and deletes every refresh
    /// session of the user. Of concurrent calls with one token, exactly one gets the
    /// user's id; the others (and unknown, used or expired tokens) get `None`.
    async fn consume_reset_token(
        &self,
        token_hash: &str,
        now: Timestamp,
        password_hash: &str,
    ) -> StoreResult<Option<UserId>>;

    /// Totals for the admin dashboard, from one snapshot.
    async fn admin_counts(&self) -> StoreResult<AdminCounts>;

    /// One page of users and the number of users matching the search, from one snapshot.
    async fn admin_users(&self, query: &AdminUserQuery) -> StoreResult<(Vec<AdminUser>, i64)>;

    /// One user as the admin list shows it.
    async fn admin_user(&self, id: UserId) -> StoreResult<Option<AdminUser>>;

    /// Changes the admin and disabled flags of `target` on behalf of `actor`, in one
    /// write transaction with its checks: `actor` is still an enabled admin, `target`
    /// exists, and a change that demotes or disables an admin is refused while at most
    /// one enabled admin exists (so two admins demoting each other at once leave one).
    /// Disabling sets `disabled_at` (= `at`) and deletes the target's refresh
    /// sessions; enabling clears both flags' traces.
    async fn set_admin_flags(
        &self,
        actor: UserId,
        target: UserId,
        flags: &AdminFlags,
        at: Timestamp,
    ) -> StoreResult<Result<(), AdminRefusal>>;

    /// Deletes `target` on behalf of `actor`, in one write transaction with the checks
    /// of [`AdminStore::set_admin_flags`] and that `target` owns no server. Messages and
    /// DMs stay with no author; memberships, sessions, reset tokens, emojis they
    /// created and the rest go with the user.
    async fn delete_user_as_admin(
        &self,
        actor: UserId,
        target: UserId,
    ) -> StoreResult<Result<DeletedUser, AdminRefusal>>;

    /// One page of servers (newest first) and the number matching the search, from
    /// one snapshot.
    async fn admin_servers(&self, query: &AdminServerQuery)
    -> StoreResult<(Vec<AdminServer>, i64)>;

    /// Every server template, built-ins first, then by name.
    async fn server_templates(&self) -> StoreResult<Vec<ServerTemplateRecord>>;

    /// One server template.
    async fn server_template(&self, id: uuid::Uuid) -> StoreResult<Option<ServerTemplateRecord>>;

    /// [`ServerStore::create_server`] and then each of `channels` in order (positions 0, 1,
    /// …), in one transaction. Returns the channels as created.
    async fn create_server_with_channels(
        &self,
        server: &Server,
        channels: &[NewChannel],
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Vec<Channel>>;
}
