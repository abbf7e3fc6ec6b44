//! Server and account export: the [`ExportStore`] part of the [`Store`](super::Store) port.

use crate::{
    ExportCursor, ExportDmChannelRecord, ExportDmMessageRecord, ExportMemberRecord,
    ExportMessageRecord,
};
use async_trait::async_trait;
use concord_protocol::{ChannelId, DmChannelId, ServerId, UserId};

use super::StoreResult;

/// Server and account export.
#[async_trait]
pub trait ExportStore: Send + Sync {
    //
    // Keyset pages for `GET /servers/{id}/export`, which streams an archive of any
    // size a page at a time. Each page is read on its own (the export is not one
    // snapshot); rows that exist for the whole export are read exactly once.

    /// Members of `server` by (`joined_at`, user id) ASC, strictly after `after`,
    /// at most `limit`.
    async fn export_members(
        &self,
        server: ServerId,
        after: Option<&ExportCursor>,
        limit: i64,
    ) -> StoreResult<Vec<ExportMemberRecord>>;

    /// Live (not deleted) messages of `channel`, thread replies included, by
    /// (`created_at`, id) ASC, strictly after `after`, at most `limit`.
    async fn export_messages(
        &self,
        channel: ChannelId,
        after: Option<&ExportCursor>,
        limit: i64,
    ) -> StoreResult<Vec<ExportMessageRecord>>;

    /// `user`'s DM channels with the other participant, by (`created_at`, id) ASC,
    /// strictly after `after`, at most `limit`.
    async fn export_dm_channels(
        &self,
        user: UserId,
        after: Option<&ExportCursor>,
        limit: i64,
    ) -> StoreResult<Vec<ExportDmChannelRecord>>;

    /// Live direct messages of `channel` by (`created_at`, id) ASC, strictly after
    /// `after`, at most `limit`.
    async fn export_dm_messages(
        &self,
        channel: DmChannelId,
        after: Option<&ExportCursor>,
        limit: i64,
    ) -> StoreResult<Vec<ExportDmMessageRecord>>;
}
