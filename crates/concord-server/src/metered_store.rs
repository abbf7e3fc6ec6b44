//! A [`Store`] that times every operation into the node's [`Metrics`].
//!
//! One store method is one transaction, so the time of a call is the latency of one
//! database round of work, labelled by the method's name. The decorator forwards each
//! method as it is; `metered!` writes the forwarding from the trait's signatures.

use std::{sync::Arc, time::Instant};

use async_trait::async_trait;
use concord_protocol::{
    Bot, BotId, Channel, ChannelId, ChannelOverride, DirectMessage, DmChannelId, MentionCount,
    Message, MessageId, Role, RoleId, Server, ServerDto, ServerId, Timestamp, UnreadCount, UserId,
    VoiceParticipant, VoiceState,
};
use concord_store::{
    BotRecord, ChannelPatch, DirectorySnapshot, DmChannelRecord, DmChannelSummary, MemberDetail,
    NewChannel, NewMessage, NewUser, Presence, ReadyState, RefreshSession, SavedSession,
    ServerPatch, Store, StoreResult, UserPatch, UserRecord,
};
// Content: threads, reactions, pins, polls, scheduled events (issue 12).
use concord_protocol::{PollId, PollOptionId, ReactionCount, ServerEvent};
use concord_store::{NewPoll, NewServerEvent, PollRecord, VoteOutcome};
// ---- invites, moderation, Go Live ----
use concord_protocol::{Ban, GoLiveInfo, Invite, InviteId, InvitePreview, Timeout};
use concord_store::{GoLiveStart, InviteAcceptance, InviteRefusal};
// ---- custom emojis ----
use concord_protocol::CustomEmojiId;
use concord_store::{CustomEmojiRecord, EmojiCreation};
// ---- instance admin, password reset, server templates (issue 18) ----
use concord_protocol::{AdminServer, AdminUser, RegistrationMode};
use concord_store::{
    AdminCounts, AdminFlags, AdminRefusal, AdminServerQuery, AdminUserQuery, DeletedUser,
    InstanceSettingsRecord, ServerTemplateRecord,
};

// ---- attachments, search, export (issue 18 part B) ----
use concord_store::{AttachmentAddition, AttachmentRecord, FilePurge};
// ---- audit log (issue 18 part C) ----
use concord_store::{AuditLogFilter, AuditRecord};
// ---- server export (issue 18 part B) ----
use concord_store::{
    ExportCursor, ExportDmChannelRecord, ExportDmMessageRecord, ExportMemberRecord,
    ExportMessageRecord,
};
// ---- message search (issue 18 part B) ----
use concord_store::{MessageSearch, SearchResults};
// ---- automod (issue 18 part C) ----
use concord_protocol::{AutomodConfig, AutomodLogEntry, WordFilter};
use concord_store::{AutomodPatch, WordAddition};
// ---- webhooks (issue 18 part C) ----
use concord_store::{WebhookPatch, WebhookRecord};

use concord_store::prelude::*;

use crate::metrics::Metrics;

/// `inner`, timed.
pub struct MeteredStore {
    inner: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for MeteredStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeteredStore").finish_non_exhaustive()
    }
}

impl MeteredStore {
    /// Times every call to `inner` into `metrics`.
    pub fn new(inner: Arc<dyn Store>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }
}

/// Implements [`Store`] and its area traits for [`MeteredStore`] from the listed
/// signatures: each method
/// calls the inner store's and records its duration and whether it failed.
macro_rules! metered {
    ($(impl $store:ident {
        $(fn $name:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty;)*
    })*) => {
        $(
            #[async_trait]
            impl $store for MeteredStore {
                $(
                    async fn $name(&self $(, $arg: $ty)*) -> $ret {
                        let started = Instant::now();
                        let result = self.inner.$name($($arg),*).await;
                        self.metrics
                            .operation(stringify!($name), started.elapsed(), result.is_err());
                        result
                    }
                )*
            }
        )*
    };
}

metered! {
    impl Store {
        fn ping(&self) -> StoreResult<()>;
        fn ready_state(&self, user: UserId) -> StoreResult<Option<ReadyState>>;
    }
    impl UserStore {
        fn create_user(&self, user: &NewUser) -> StoreResult<UserRecord>;
        fn user(&self, id: UserId) -> StoreResult<Option<UserRecord>>;
        fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>>;
        fn users(&self, ids: &[UserId]) -> StoreResult<Vec<UserRecord>>;
        fn update_user(&self, id: UserId, patch: &UserPatch) -> StoreResult<Option<UserRecord>>;
        fn set_presence(&self, id: UserId, presence: &Presence) -> StoreResult<()>;
        fn create_refresh_session(&self, session: &RefreshSession, now: Timestamp, keep: usize) -> StoreResult<()>;
        fn refresh_session_by_hash(&self, token_hash: &str) -> StoreResult<Option<RefreshSession>>;
        fn rotate_refresh_session(&self, id: uuid::Uuid, old_hash: &str, new_hash: &str, now: Timestamp) -> StoreResult<bool>;
        fn refresh_session(&self, id: uuid::Uuid) -> StoreResult<Option<RefreshSession>>;
        fn revoke_refresh_session(&self, id: uuid::Uuid) -> StoreResult<bool>;
        fn delete_refresh_sessions(&self, user: UserId) -> StoreResult<()>;
        fn delete_refresh_session(&self, user: UserId, token_hash: &str) -> StoreResult<Option<uuid::Uuid>>;
    }
    impl ServerStore {
        fn create_server(&self, server: &Server) -> StoreResult<()>;
        fn server(&self, id: ServerId) -> StoreResult<Option<ServerDto>>;
        fn servers_of_user(&self, user: UserId) -> StoreResult<Vec<ServerDto>>;
        fn public_servers(&self, limit: i64) -> StoreResult<Vec<ServerDto>>;
        fn update_server(&self, id: ServerId, patch: &ServerPatch, updated_at: Timestamp, audit: Option<&AuditRecord>) -> StoreResult<Option<ServerDto>>;
        fn delete_server(&self, id: ServerId, audit: Option<&AuditRecord>) -> StoreResult<Option<Vec<CustomEmojiId>>>;
        fn add_member(&self, server: ServerId, user: UserId, joined_at: Timestamp) -> StoreResult<()>;
        fn remove_member(&self, server: ServerId, user: UserId, audit: Option<&AuditRecord>) -> StoreResult<bool>;
        fn members(&self, server: ServerId) -> StoreResult<Vec<MemberDetail>>;
        fn is_banned(&self, server: ServerId, user: UserId) -> StoreResult<bool>;
        fn member_ids_by_usernames(&self, server: ServerId, names: &[String]) -> StoreResult<Vec<UserId>>;
    }
    impl ChannelStore {
        fn create_channel(&self, channel: &NewChannel) -> StoreResult<Channel>;
        fn channel(&self, id: ChannelId) -> StoreResult<Option<Channel>>;
        fn channels(&self, server: ServerId) -> StoreResult<Vec<Channel>>;
        fn update_channel(&self, id: ChannelId, patch: &ChannelPatch, audit: Option<&AuditRecord>) -> StoreResult<Option<Channel>>;
        fn delete_channel(&self, id: ChannelId, audit: Option<&AuditRecord>) -> StoreResult<bool>;
        fn create_role(&self, role: &Role) -> StoreResult<()>;
        fn assign_role(&self, server: ServerId, user: UserId, role: RoleId) -> StoreResult<bool>;
        fn roles_of_servers(&self, servers: &[ServerId]) -> StoreResult<Vec<Role>>;
        fn put_override(&self, ov: &ChannelOverride) -> StoreResult<ChannelOverride>;
        fn overrides_of_servers(&self, servers: &[ServerId]) -> StoreResult<Vec<ChannelOverride>>;
        fn set_timeout(&self, server: ServerId, user: UserId, expires_at: Timestamp, created_by: Option<UserId>, created_at: Timestamp) -> StoreResult<()>;
        fn directory_snapshot(&self, now: Timestamp) -> StoreResult<DirectorySnapshot>;
        fn create_channel_audited(&self, channel: &NewChannel, audit: &AuditRecord) -> StoreResult<Channel>;
        fn create_role_audited(&self, role: &Role, audit: &AuditRecord) -> StoreResult<()>;
        fn assign_role_audited(&self, server: ServerId, user: UserId, role: RoleId, audit: &AuditRecord) -> StoreResult<bool>;
    }
    impl MessageStore {
        fn ack_channel(&self, user: UserId, channel: ChannelId, at: Timestamp) -> StoreResult<()>;
        fn ack_dm(&self, user: UserId, channel: DmChannelId, at: Timestamp) -> StoreResult<()>;
        fn unread_counts(&self, user: UserId) -> StoreResult<Vec<UnreadCount>>;
        fn mention_counts(&self, user: UserId) -> StoreResult<Vec<MentionCount>>;
        fn create_message(&self, message: &NewMessage) -> StoreResult<Message>;
        fn message(&self, id: MessageId) -> StoreResult<Option<Message>>;
        fn messages(&self, channel: ChannelId, before: Option<MessageId>, limit: i64) -> StoreResult<Vec<Message>>;
        fn messages_of_node(&self, node: uuid::Uuid, since: MessageId, limit: i64) -> StoreResult<Vec<Message>>;
        fn edit_message(&self, id: MessageId, content: &str, mention_user_ids: &[UserId], mention_everyone: bool, edited_at: Timestamp) -> StoreResult<Option<Message>>;
        fn delete_message(&self, id: MessageId) -> StoreResult<bool>;
    }
    impl DmStore {
        fn open_dm_channel(&self, channel: &DmChannelRecord) -> StoreResult<(DmChannelRecord, bool)>;
        fn dm_channel(&self, id: DmChannelId) -> StoreResult<Option<DmChannelRecord>>;
        fn dm_channels_of_user(&self, user: UserId) -> StoreResult<Vec<DmChannelSummary>>;
        fn create_dm_message(&self, message: &DirectMessage, node: Option<uuid::Uuid>) -> StoreResult<()>;
        fn dm_messages_of_node(&self, node: uuid::Uuid, since: uuid::Uuid, limit: i64) -> StoreResult<Vec<DirectMessage>>;
        fn dm_messages(&self, channel: DmChannelId, before: Option<uuid::Uuid>, limit: i64) -> StoreResult<Vec<DirectMessage>>;
    }
    impl VoiceStore {
        fn voice_state(&self, user: UserId) -> StoreResult<Option<VoiceState>>;
        fn voice_participants(&self, channel: ChannelId) -> StoreResult<Vec<VoiceParticipant>>;
        fn put_voice_state(&self, state: &VoiceState) -> StoreResult<()>;
        fn delete_voice_state(&self, user: UserId) -> StoreResult<Option<VoiceState>>;
        fn clear_voice_states(&self) -> StoreResult<()>;
    }
    impl GatewaySessionStore {
        fn save_gateway_sessions(&self, sessions: &[SavedSession]) -> StoreResult<()>;
        fn take_gateway_sessions(&self, now: Timestamp) -> StoreResult<Vec<SavedSession>>;
    }
    impl BotStore {
        fn create_bot(&self, user: &NewUser, bot: &BotRecord) -> StoreResult<()>;
        fn bot(&self, id: BotId) -> StoreResult<Option<BotRecord>>;
        fn bot_by_user(&self, user: UserId) -> StoreResult<Option<BotRecord>>;
        fn bot_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<BotRecord>>;
        fn bot_and_user_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<(BotRecord, UserRecord)>>;
        fn bots_of_creator(&self, user: UserId) -> StoreResult<Vec<Bot>>;
        fn update_bot(&self, id: BotId, name: Option<&str>, description: Option<&str>) -> StoreResult<Option<Bot>>;
        fn revoke_bot(&self, id: BotId, at: Timestamp) -> StoreResult<bool>;
        fn set_bot_token(&self, id: BotId, token_hash: &str) -> StoreResult<bool>;
        fn recent_messages_by_author(&self, author: UserId, limit: u32) -> StoreResult<Vec<concord_store::AuthoredMessage>>;
    }
    impl RoleStore {
        fn role(&self, id: RoleId) -> StoreResult<Option<Role>>;
        fn update_role(&self, id: RoleId, patch: &concord_store::RolePatch, audit: Option<&AuditRecord>) -> StoreResult<Option<(Role, bool)>>;
        fn delete_role(&self, id: RoleId, audit: Option<&AuditRecord>) -> StoreResult<bool>;
        fn unassign_role(&self, server: ServerId, user: UserId, role: RoleId, audit: Option<&AuditRecord>) -> StoreResult<bool>;
        fn overrides_of_channel(&self, channel: ChannelId) -> StoreResult<Vec<ChannelOverride>>;
        fn set_override(&self, ov: &ChannelOverride, audit: Option<&AuditRecord>) -> StoreResult<(ChannelOverride, bool)>;
        fn delete_override(&self, channel: ChannelId, id: concord_protocol::OverrideId, audit: Option<&AuditRecord>) -> StoreResult<bool>;
    }
    impl ContentStore {
        fn thread_replies(&self, root: MessageId, after: Option<MessageId>, limit: i64) -> StoreResult<Vec<Message>>;
        fn add_reaction(&self, message: MessageId, user: UserId, emoji: &str, at: Timestamp) -> StoreResult<bool>;
        fn remove_reaction(&self, message: MessageId, user: UserId, emoji: &str) -> StoreResult<bool>;
        fn reactions(&self, message: MessageId, viewer: UserId) -> StoreResult<Vec<ReactionCount>>;
        fn pin_message(&self, id: MessageId, by: UserId, at: Timestamp) -> StoreResult<bool>;
        fn unpin_message(&self, id: MessageId) -> StoreResult<bool>;
        fn pinned_messages(&self, channel: ChannelId) -> StoreResult<Vec<Message>>;
        fn create_poll(&self, message: &NewMessage, poll: &NewPoll) -> StoreResult<Message>;
        fn poll(&self, id: PollId) -> StoreResult<Option<PollRecord>>;
        fn poll_ballots(&self, id: PollId) -> StoreResult<Vec<(UserId, PollOptionId)>>;
        fn user_votes(&self, user: UserId, polls: &[PollId]) -> StoreResult<Vec<(PollId, PollOptionId)>>;
        fn cast_vote(&self, poll: PollId, user: UserId, option: PollOptionId, at: Timestamp) -> StoreResult<VoteOutcome>;
        fn create_server_event(&self, message: &NewMessage, event: &NewServerEvent) -> StoreResult<Message>;
        fn upcoming_server_events(&self, server: ServerId, channels: &[ChannelId], after: Timestamp, limit: i64) -> StoreResult<Vec<ServerEvent>>;
    }
    impl InviteStore {
        fn create_invite(&self, invite: &Invite, audit: Option<&AuditRecord>) -> StoreResult<()>;
        fn invites(&self, server: ServerId) -> StoreResult<Vec<Invite>>;
        fn delete_invite(&self, server: ServerId, invite: InviteId, audit: Option<&AuditRecord>) -> StoreResult<bool>;
        fn invite_preview(&self, code: &str, now: Timestamp) -> StoreResult<Option<InvitePreview>>;
        fn accept_invite(&self, code: &str, user: UserId, now: Timestamp) -> StoreResult<InviteAcceptance>;
        fn create_user_with_invite(&self, user: &NewUser, code: &str) -> StoreResult<Result<UserRecord, InviteRefusal>>;
    }
    impl ModerationStore {
        fn ban(&self, ban: &Ban, audit: Option<&AuditRecord>) -> StoreResult<bool>;
        fn unban(&self, server: ServerId, user: UserId, audit: Option<&AuditRecord>) -> StoreResult<bool>;
        fn bans(&self, server: ServerId) -> StoreResult<Vec<Ban>>;
        fn put_timeout(&self, timeout: &Timeout, audit: Option<&AuditRecord>) -> StoreResult<()>;
        fn remove_timeout(&self, server: ServerId, user: UserId, audit: Option<&AuditRecord>) -> StoreResult<Option<Timestamp>>;
    }
    impl GoLiveStore {
        fn go_live(&self, channel: ChannelId) -> StoreResult<Option<GoLiveInfo>>;
        fn start_go_live(&self, info: &GoLiveInfo) -> StoreResult<GoLiveStart>;
        fn stop_go_live(&self, channel: ChannelId, broadcaster: UserId) -> StoreResult<bool>;
        fn end_stale_go_live(&self, user: UserId) -> StoreResult<Vec<GoLiveInfo>>;
    }
    impl EmojiStore {
        fn custom_emojis(&self, server: ServerId) -> StoreResult<Vec<CustomEmojiRecord>>;
        fn custom_emoji(&self, id: CustomEmojiId) -> StoreResult<Option<CustomEmojiRecord>>;
        fn create_custom_emoji(&self, emoji: &CustomEmojiRecord, limit: i64) -> StoreResult<EmojiCreation>;
        fn delete_custom_emoji(&self, server: ServerId, id: CustomEmojiId) -> StoreResult<Option<CustomEmojiRecord>>;
    }
    impl AdminStore {
        fn instance_settings(&self) -> StoreResult<InstanceSettingsRecord>;
        fn update_instance_settings(&self, registration_mode: Option<RegistrationMode>, by: UserId, at: Timestamp) -> StoreResult<InstanceSettingsRecord>;
        fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>>;
        fn create_reset_token(&self, user: UserId, token_hash: &str, created_at: Timestamp, expires_at: Timestamp) -> StoreResult<()>;
        fn reset_token_user(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<UserRecord>>;
        fn consume_reset_token(&self, token_hash: &str, now: Timestamp, password_hash: &str) -> StoreResult<Option<UserId>>;
        fn admin_counts(&self) -> StoreResult<AdminCounts>;
        fn admin_users(&self, query: &AdminUserQuery) -> StoreResult<(Vec<AdminUser>, i64)>;
        fn admin_user(&self, id: UserId) -> StoreResult<Option<AdminUser>>;
        fn set_admin_flags(&self, actor: UserId, target: UserId, flags: &AdminFlags, at: Timestamp) -> StoreResult<Result<(), AdminRefusal>>;
        fn delete_user_as_admin(&self, actor: UserId, target: UserId) -> StoreResult<Result<DeletedUser, AdminRefusal>>;
        fn admin_servers(&self, query: &AdminServerQuery) -> StoreResult<(Vec<AdminServer>, i64)>;
        fn server_templates(&self) -> StoreResult<Vec<ServerTemplateRecord>>;
        fn server_template(&self, id: uuid::Uuid) -> StoreResult<Option<ServerTemplateRecord>>;
        fn create_server_with_channels(&self, server: &Server, channels: &[NewChannel], audit: Option<&AuditRecord>) -> StoreResult<Vec<Channel>>;
    }
    impl AttachmentStore {
        fn attachments(&self, message: MessageId) -> StoreResult<Vec<AttachmentRecord>>;
        fn attachment(&self, message: MessageId, stored_name: &str) -> StoreResult<Option<AttachmentRecord>>;
        fn add_attachments(&self, message: MessageId, attachments: &[AttachmentRecord], limit: i64) -> StoreResult<AttachmentAddition>;
        fn file_purges(&self, limit: i64) -> StoreResult<Vec<FilePurge>>;
        fn forget_file_purges(&self, done: &[i64]) -> StoreResult<()>;
    }
    impl AuditStore {
        fn audit_logs(&self, server: ServerId, query: &AuditLogFilter) -> StoreResult<Vec<AuditRecord>>;
    }
    impl ExportStore {
        fn export_members(&self, server: ServerId, after: Option<&ExportCursor>, limit: i64) -> StoreResult<Vec<ExportMemberRecord>>;
        fn export_messages(&self, channel: ChannelId, after: Option<&ExportCursor>, limit: i64) -> StoreResult<Vec<ExportMessageRecord>>;
        fn export_dm_channels(&self, user: UserId, after: Option<&ExportCursor>, limit: i64) -> StoreResult<Vec<ExportDmChannelRecord>>;
        fn export_dm_messages(&self, channel: DmChannelId, after: Option<&ExportCursor>, limit: i64) -> StoreResult<Vec<ExportDmMessageRecord>>;
    }
    impl SearchStore {
        fn search_messages(&self, search: &MessageSearch) -> StoreResult<SearchResults>;
        fn flush_search_index(&self, limit: i64) -> StoreResult<u64>;
    }
    impl AutomodStore {
        fn automod_config(&self, server: ServerId) -> StoreResult<Option<AutomodConfig>>;
        fn update_automod_config(&self, server: ServerId, patch: &AutomodPatch, at: Timestamp) -> StoreResult<AutomodConfig>;
        fn automod_words(&self, server: ServerId) -> StoreResult<Vec<WordFilter>>;
        fn add_automod_word(&self, word: &WordFilter, limit: i64) -> StoreResult<WordAddition>;
        fn remove_automod_word(&self, server: ServerId, word: &str) -> StoreResult<bool>;
        fn append_automod_log(&self, entry: &AutomodLogEntry, keep: i64) -> StoreResult<()>;
        fn automod_logs(&self, server: ServerId, limit: i64) -> StoreResult<Vec<AutomodLogEntry>>;
        fn has_recent_duplicate(&self, channel: ChannelId, author: UserId, content: &str, since: Timestamp) -> StoreResult<bool>;
        fn count_recent_messages(&self, channel: ChannelId, author: UserId, since: Timestamp) -> StoreResult<i64>;
    }
    impl WebhookStore {
        fn webhooks(&self, server: ServerId) -> StoreResult<Vec<WebhookRecord>>;
        fn webhook(&self, server: ServerId, id: uuid::Uuid) -> StoreResult<Option<WebhookRecord>>;
        fn create_webhook(&self, webhook: &WebhookRecord, limit: i64) -> StoreResult<bool>;
        fn update_webhook(&self, server: ServerId, id: uuid::Uuid, patch: &WebhookPatch, at: Timestamp) -> StoreResult<Option<WebhookRecord>>;
        fn delete_webhook(&self, server: ServerId, id: uuid::Uuid) -> StoreResult<bool>;
        fn record_webhook_delivery(&self, id: uuid::Uuid, delivered: bool, at: Timestamp) -> StoreResult<()>;
    }
}
