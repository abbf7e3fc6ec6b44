//! Webhooks: the [`WebhookStore`] part of the [`Store`](super::Store) port.

use crate::{WebhookPatch, WebhookRecord};
use async_trait::async_trait;
use concord_protocol::{ServerId, Timestamp};

use super::StoreResult;

/// Webhooks.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// The webhooks of `server`, oldest first (by `created_at`, then `id`).
    async fn webhooks(&self, server: ServerId) -> StoreResult<Vec<WebhookRecord>>;

    /// One webhook of `server` (`None` for another server's).
    async fn webhook(&self, server: ServerId, id: uuid::Uuid)
    -> StoreResult<Option<WebhookRecord>>;

    /// Inserts `webhook` unless its server already holds `limit` webhooks (`false`,
    /// nothing written). The count and the insert are one atomic step (SQLite: one
    /// write transaction; PostgreSQL: the server row locked `FOR UPDATE`), so racing
    /// creations never pass the limit together (X14). NotFound for a missing server or
    /// creator.
    async fn create_webhook(&self, webhook: &WebhookRecord, limit: i64) -> StoreResult<bool>;

    /// Applies `patch` to the webhook `id` of `server` and sets `updated_at` to `at`
    /// (also for an empty patch); `None` when there is no such webhook.
    async fn update_webhook(
        &self,
        server: ServerId,
        id: uuid::Uuid,
        patch: &WebhookPatch,
        at: Timestamp,
    ) -> StoreResult<Option<WebhookRecord>>;

    /// Deletes the webhook `id` of `server`; `false` when there was none.
    async fn delete_webhook(&self, server: ServerId, id: uuid::Uuid) -> StoreResult<bool>;

    /// Delivery bookkeeping (`rest-extras.md` §9.2): a success resets
    /// `delivery_failures` to 0 and sets `last_used_at` to `at`; a failure adds one to
    /// `delivery_failures`. `updated_at` stays. A webhook deleted meanwhile is ignored.
    async fn record_webhook_delivery(
        &self,
        id: uuid::Uuid,
        delivered: bool,
        at: Timestamp,
    ) -> StoreResult<()>;
}
