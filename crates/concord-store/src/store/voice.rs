//! Voice states: the [`VoiceStore`] part of the [`Store`](super::Store) port.

use async_trait::async_trait;
use concord_protocol::{ChannelId, UserId, VoiceParticipant, VoiceState};

use super::StoreResult;

/// Voice states.
#[async_trait]
pub trait VoiceStore: Send + Sync {
    /// The user's voice state.
    async fn voice_state(&self, user: UserId) -> StoreResult<Option<VoiceState>>;

    /// Participants of a voice channel by `joined_at` ASC.
    async fn voice_participants(&self, channel: ChannelId) -> StoreResult<Vec<VoiceParticipant>>;

    /// Inserts or replaces the user's voice state (`channel_id` must be set).
    async fn put_voice_state(&self, state: &VoiceState) -> StoreResult<()>;

    /// Removes the user's voice state; returns what was removed.
    async fn delete_voice_state(&self, user: UserId) -> StoreResult<Option<VoiceState>>;

    /// Removes every voice state and every Go Live session (at start: nobody is
    /// connected), in one transaction.
    async fn clear_voice_states(&self) -> StoreResult<()>;
}
