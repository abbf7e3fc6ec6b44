//! Go Live streams: the [`GoLiveStore`] part of the [`Store`](super::Store) port.

use crate::GoLiveStart;
use async_trait::async_trait;
use concord_protocol::{ChannelId, GoLiveInfo, UserId};

use super::StoreResult;

/// Go Live streams.
#[async_trait]
pub trait GoLiveStore: Send + Sync {
    /// The live session of a voice channel.
    async fn go_live(&self, channel: ChannelId) -> StoreResult<Option<GoLiveInfo>>;

    /// Starts (or, for the same broadcaster, restarts with the new quality and start
    /// time) the session of `info.channel_id`, in one transaction with the checks that
    /// the broadcaster is in that voice channel and nobody else is live there.
    async fn start_go_live(&self, info: &GoLiveInfo) -> StoreResult<GoLiveStart>;

    /// Ends the session of `channel` if `broadcaster` is the one live there; false
    /// otherwise.
    async fn stop_go_live(&self, channel: ChannelId, broadcaster: UserId) -> StoreResult<bool>;

    /// Ends every session of `user` in a channel they are no longer in (left, moved or
    /// removed); returns the ended sessions.
    async fn end_stale_go_live(&self, user: UserId) -> StoreResult<Vec<GoLiveInfo>>;
}
