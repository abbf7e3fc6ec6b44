//! Attachments and their files: the [`AttachmentStore`] part of the [`Store`](super::Store) port.

use crate::{AttachmentAddition, AttachmentRecord, FilePurge};
use async_trait::async_trait;
use concord_protocol::MessageId;

use super::StoreResult;

/// Attachments and their files.
#[async_trait]
pub trait AttachmentStore: Send + Sync {
    /// A message's attachments in upload order: by `created_at`, then by their place
    /// in the batch that added them.
    async fn attachments(&self, message: MessageId) -> StoreResult<Vec<AttachmentRecord>>;

    /// The attachment of `message` stored as `stored_name`.
    async fn attachment(
        &self,
        message: MessageId,
        stored_name: &str,
    ) -> StoreResult<Option<AttachmentRecord>>;

    /// Adds `attachments` (in this order) to `message`, in one transaction with the
    /// checks that the message exists, is not deleted, and would then hold at most
    /// `limit` attachments; nothing is written when a check fails. Additions to one
    /// message are serialised (SQLite: the write lock; PostgreSQL: the message row
    /// locked `FOR UPDATE`), so concurrent batches never pass the limit together.
    async fn add_attachments(
        &self,
        message: MessageId,
        attachments: &[AttachmentRecord],
        limit: i64,
    ) -> StoreResult<AttachmentAddition>;

    /// Files whose attachment rows were deleted (with their message, soft delete
    /// included, channel or server), oldest first, at most `limit`. Each deleted row
    /// is recorded here in the transaction that deleted it.
    async fn file_purges(&self, limit: i64) -> StoreResult<Vec<FilePurge>>;

    /// Forgets the purges of these `seq`s (their files are gone).
    async fn forget_file_purges(&self, done: &[i64]) -> StoreResult<()>;
}
