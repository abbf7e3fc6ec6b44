//! WebhookStore on PostgreSQL (not yet ported: every method panics).
#![allow(unused_variables, reason = "a stub until this area is ported")]

use crate::{WebhookPatch, WebhookRecord};
use async_trait::async_trait;
use concord_protocol::{ServerId, Timestamp};

use super::PostgresStore;
use crate::{StoreResult, WebhookStore};

#[async_trait]
impl WebhookStore for PostgresStore {
    async fn webhooks(&self, server: ServerId) -> StoreResult<Vec<WebhookRecord>> {
        todo!("PostgresStore::webhooks")
    }

    async fn webhook(
        &self,
        server: ServerId,
        id: uuid::Uuid,
    ) -> StoreResult<Option<WebhookRecord>> {
        todo!("PostgresStore::webhook")
    }

    async fn create_webhook(&self, webhook: &WebhookRecord, limit: i64) -> StoreResult<bool> {
        todo!("PostgresStore::create_webhook")
    }

    async fn update_webhook(
        &self,
        server: ServerId,
        id: uuid::Uuid,
        patch: &WebhookPatch,
        at: Timestamp,
    ) -> StoreResult<Option<WebhookRecord>> {
        todo!("PostgresStore::update_webhook")
    }

    async fn delete_webhook(&self, server: ServerId, id: uuid::Uuid) -> StoreResult<bool> {
        todo!("PostgresStore::delete_webhook")
    }

    async fn record_webhook_delivery(
        &self,
        id: uuid::Uuid,
        delivered: bool,
        at: Timestamp,
    ) -> StoreResult<()> {
        todo!("PostgresStore::record_webhook_delivery")
    }
}
