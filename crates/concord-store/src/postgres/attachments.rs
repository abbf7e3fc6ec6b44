//! AttachmentStore on PostgreSQL (not yet ported: every method panics).
#![allow(unused_variables, reason = "a stub until this area is ported")]

use crate::{AttachmentAddition, AttachmentRecord, FilePurge};
use async_trait::async_trait;
use concord_protocol::MessageId;

use super::PostgresStore;
use crate::{AttachmentStore, StoreResult};

#[async_trait]
impl AttachmentStore for PostgresStore {
    async fn attachments(&self, message: MessageId) -> StoreResult<Vec<AttachmentRecord>> {
        todo!("PostgresStore::attachments")
    }

    async fn attachment(
        &self,
        message: MessageId,
        stored_name: &str,
    ) -> StoreResult<Option<AttachmentRecord>> {
        todo!("PostgresStore::attachment")
    }

    async fn add_attachments(
        &self,
        message: MessageId,
        attachments: &[AttachmentRecord],
        limit: i64,
    ) -> StoreResult<AttachmentAddition> {
        todo!("PostgresStore::add_attachments")
    }

    async fn file_purges(&self, limit: i64) -> StoreResult<Vec<FilePurge>> {
        todo!("PostgresStore::file_purges")
    }

    async fn forget_file_purges(&self, done: &[i64]) -> StoreResult<()> {
        todo!("PostgresStore::forget_file_purges")
    }
}
