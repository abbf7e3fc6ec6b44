//! Gateway sessions saved across a restart: the [`GatewaySessionStore`] part of the [`Store`](super::Store) port.

use crate::SavedSession;
use async_trait::async_trait;
use concord_protocol::Timestamp;

use super::StoreResult;

/// Gateway sessions saved across a restart.
#[async_trait]
pub trait GatewaySessionStore: Send + Sync {
    /// Saves protocol v2 sessions at a graceful shutdown, replacing any saved under
    /// the same id. Sessions of users that no longer exist are skipped.
    async fn save_gateway_sessions(&self, sessions: &[SavedSession]) -> StoreResult<()>;

    /// Takes the saved sessions at start: returns those not expired as of `now` and
    /// deletes every saved session, expired or not (each is resumed at most once).
    async fn take_gateway_sessions(&self, now: Timestamp) -> StoreResult<Vec<SavedSession>>;
}
