//! VoiceStore on PostgreSQL (not yet ported: every method panics).
#![allow(unused_variables, reason = "a stub until this area is ported")]

use async_trait::async_trait;
use concord_protocol::{ChannelId, UserId, VoiceParticipant, VoiceState};

use super::PostgresStore;
use crate::{StoreResult, VoiceStore};

#[async_trait]
impl VoiceStore for PostgresStore {
    async fn voice_state(&self, user: UserId) -> StoreResult<Option<VoiceState>> {
        todo!("PostgresStore::voice_state")
    }

    async fn voice_participants(&self, channel: ChannelId) -> StoreResult<Vec<VoiceParticipant>> {
        todo!("PostgresStore::voice_participants")
    }

    async fn put_voice_state(&self, state: &VoiceState) -> StoreResult<()> {
        todo!("PostgresStore::put_voice_state")
    }

    async fn delete_voice_state(&self, user: UserId) -> StoreResult<Option<VoiceState>> {
        todo!("PostgresStore::delete_voice_state")
    }

    async fn clear_voice_states(&self) -> StoreResult<()> {
        todo!("PostgresStore::clear_voice_states")
    }
}
