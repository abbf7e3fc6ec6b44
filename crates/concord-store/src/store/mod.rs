//! The `Store` port: every read and write the chat domain makes. One method is one
//! transaction; anything that must be atomic is one method.
//!
//! The port is split by area, one trait per file; [`Store`] is all of them together
//! plus the reads that span areas. Callers bring the area traits into scope with
//! `use concord_store::prelude::*`.

use crate::{ReadyState, StoreError};
use async_trait::async_trait;
use concord_protocol::UserId;

mod admin;
mod attachments;
mod audit;
mod automod;
mod bots;
mod channels;
mod content;
mod dms;
mod emojis;
mod export;
mod go_live;
mod invites;
mod messages;
mod moderation;
mod roles;
mod search;
mod servers;
mod sessions;
mod users;
mod voice;
mod webhooks;

pub use self::{
    admin::AdminStore, attachments::AttachmentStore, audit::AuditStore, automod::AutomodStore,
    bots::BotStore, channels::ChannelStore, content::ContentStore, dms::DmStore,
    emojis::EmojiStore, export::ExportStore, go_live::GoLiveStore, invites::InviteStore,
    messages::MessageStore, moderation::ModerationStore, roles::RoleStore, search::SearchStore,
    servers::ServerStore, sessions::GatewaySessionStore, users::UserStore, voice::VoiceStore,
    webhooks::WebhookStore,
};

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Persistent state of a Concord instance. Implementations: [`crate::SqliteStore`]
/// (PostgreSQL joins later); both pass the same conformance suite.
///
/// Conventions: a lookup that finds nothing is `Ok(None)` / `Ok(false)`, never an error;
/// a unique violation is [`StoreError::Conflict`]; a reference to a missing row is
/// [`StoreError::NotFound`].
#[async_trait]
pub trait Store:
    UserStore
    + ServerStore
    + ChannelStore
    + RoleStore
    + MessageStore
    + DmStore
    + VoiceStore
    + GatewaySessionStore
    + BotStore
    + ContentStore
    + InviteStore
    + ModerationStore
    + GoLiveStore
    + EmojiStore
    + AdminStore
    + AttachmentStore
    + AuditStore
    + ExportStore
    + SearchStore
    + AutomodStore
    + WebhookStore
    + 'static
{
    /// Cheap round trip, for health checks.
    async fn ping(&self) -> StoreResult<()>;

    /// Everything READY reads for `user`, from one consistent snapshot: the same as
    /// [`UserStore::user`], [`ServerStore::servers_of_user`], [`DmStore::dm_channels_of_user`],
    /// [`MessageStore::unread_counts`], [`MessageStore::mention_counts`], and
    /// [`RoleStore::roles_of_servers`] / [`RoleStore::overrides_of_servers`] of those servers.
    /// `None` when the user does not exist.
    async fn ready_state(&self, user: UserId) -> StoreResult<Option<ReadyState>>;
}
