//! The application state handed to every handler: injected, cheap to clone.

use std::{sync::Arc, time::Instant};

use concord_gateway::Hub;
use concord_store::Store;

use crate::{
    auth::TokenKeys, bus::Events, caps::IpCounter, config::Config, directory::Directory,
    families::Families, files::FileStore, limiter::Limiters, metrics::Metrics,
    passwords::Passwords, presence::Presence,
};

/// Everything a handler may need.
#[derive(Clone)]
pub struct AppState {
    /// Persistence.
    pub store: Arc<dyn Store>,
    /// In-memory membership and permissions.
    pub directory: Arc<Directory>,
    /// This node's sessions.
    pub hub: Arc<Hub>,
    /// Which of this node's sessions each login opened.
    pub families: Arc<Families>,
    /// Publishing of events and directory changes.
    pub events: Events,
    /// Presence of this node's users.
    pub presence: Arc<Presence>,
    /// Configuration.
    pub config: Arc<Config>,
    /// JWT keys.
    pub keys: Arc<TokenKeys>,
    /// Rate limiters.
    pub limiters: Arc<Limiters>,
    /// What `GET /metrics` reports.
    pub metrics: Arc<Metrics>,
    /// Start time, for uptime.
    pub started: Instant,
    /// The argon2 workers (registration, login).
    pub passwords: Arc<Passwords>,
    /// Gateway sessions per client address (`limits.sessions_per_ip`).
    pub sessions_per_ip: Arc<IpCounter>,
    /// Custom emoji images, keyed by emoji id (`<data_dir>/emojis/` by default).
    pub emoji_files: Arc<dyn FileStore>,
    /// Message attachments (`<data_dir>/attachments/` by default) and their links.
    pub attachments: crate::attachments::Attachments,
    /// Each server's automod settings and words, as message posting reads them.
    pub automod: Arc<crate::automod::AutomodRules>,
    /// Outbound webhook delivery (issue 18 part C).
    pub webhooks: crate::webhooks::Webhooks,
    /// Audio over the gateway: streams, pacing, relay.
    pub media: Arc<crate::media::MediaRelay>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
