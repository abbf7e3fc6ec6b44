#![doc = include_str!("../README.md")]

mod error;
mod model;
mod postgres;
mod shared;
mod sqlite;
mod store;
// ---- invites, moderation, Go Live ----
mod outcome;
// Message search (issue 18 part B).
mod search;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

pub use error::StoreError;
pub use model::*;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use store::{
    AdminStore, AttachmentStore, AuditStore, AutomodStore, BotStore, ChannelStore, ContentStore,
    DmStore, EmojiStore, ExportStore, GatewaySessionStore, GoLiveStore, InviteStore, MessageStore,
    ModerationStore, RoleStore, SearchStore, ServerStore, UserStore, VoiceStore, WebhookStore,
};
pub use store::{Store, StoreResult};

/// The store traits, to bring their methods into scope: `use concord_store::prelude::*`.
pub mod prelude {
    pub use crate::store::{
        AdminStore, AttachmentStore, AuditStore, AutomodStore, BotStore, ChannelStore,
        ContentStore, DmStore, EmojiStore, ExportStore, GatewaySessionStore, GoLiveStore,
        InviteStore, MessageStore, ModerationStore, RoleStore, SearchStore, ServerStore, Store,
        UserStore, VoiceStore, WebhookStore,
    };
}
// ---- invites, moderation, Go Live ----
pub use outcome::*;
// Message search (issue 18 part B).
pub use search::search_terms;
