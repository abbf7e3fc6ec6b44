//! Records the store reads and writes. Where a wire DTO already says exactly what a row
//! holds (servers, channels, roles, overrides, bots, direct messages), the store speaks
//! that type; the records here are the ones with more (or less) than the wire shows.

use concord_protocol::{
    Bot, ChannelId, ChannelOverride, ChannelType, DmChannelId, MemberRoleInfo, MentionCount,
    MessageId, Role, RoleId, ServerDto, ServerId, Status, Timestamp, UnreadCount, UserId,
};

/// A user row. `status` is the status the user *chose* (what they show while connected);
/// the effective status adds "offline while no session is live", which the server computes.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    /// Id.
    pub id: UserId,
    /// Unique, case-sensitive.
    pub username: String,
    /// Unique when present.
    pub email: Option<String>,
    /// argon2id PHC string; bots have none.
    pub password_hash: Option<String>,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// Biography.
    pub bio: Option<String>,
    /// Pronouns.
    pub pronouns: Option<String>,
    /// Chosen status.
    pub status: Status,
    /// Custom status.
    pub custom_status: Option<String>,
    /// Activity.
    pub activity: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Instance administrator.
    pub is_admin: bool,
    /// A bot's user account.
    pub is_bot: bool,
    /// Disabled by an administrator: refused everywhere.
    pub disabled: bool,
}

/// What registration (or bot creation) inserts.
#[derive(Debug, Clone, PartialEq)]
pub struct NewUser {
    /// Id.
    pub id: UserId,
    /// Unique, case-sensitive.
    pub username: String,
    /// Unique when present.
    pub email: Option<String>,
    /// argon2id PHC string; `None` for bots.
    pub password_hash: Option<String>,
    /// Initial chosen status.
    pub status: Status,
    /// Creation time.
    pub created_at: Timestamp,
    /// Make this user an instance admin if no other human user exists yet (decided
    /// atomically with the insert).
    pub admin_if_first: bool,
    /// A bot's user.
    pub is_bot: bool,
}

/// `PATCH /users/@me` after validation; `None` leaves a field unchanged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserPatch {
    /// Avatar.
    pub avatar_url: Option<String>,
    /// Biography.
    pub bio: Option<String>,
    /// Pronouns.
    pub pronouns: Option<String>,
    /// Chosen status.
    pub status: Option<Status>,
    /// Custom status.
    pub custom_status: Option<String>,
    /// Activity.
    pub activity: Option<String>,
}

/// The user's chosen presence, written as a whole by the gateway op (null clears).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    /// Chosen status.
    pub status: Status,
    /// Custom status.
    pub custom_status: Option<String>,
    /// Activity.
    pub activity: Option<String>,
}

/// A protocol v2 session saved for a RESUME after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedSession {
    /// The session id clients resume.
    pub id: String,
    /// Whose session.
    pub user_id: UserId,
    /// After this it cannot be resumed.
    pub expires_at: Timestamp,
    /// The gateway's serialization of the session (opaque to the store).
    pub state: String,
}

/// One refresh-token session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshSession {
    /// Id.
    pub id: uuid::Uuid,
    /// Owner.
    pub user_id: UserId,
    /// SHA-256 hex of the current refresh token.
    pub token_hash: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Absolute end (not extended by refreshes).
    pub expires_at: Timestamp,
    /// SHA-256 hex of the token the last rotation replaced (reuse detection).
    pub previous_hash: Option<String>,
    /// When the last rotation happened.
    pub rotated_at: Option<Timestamp>,
}

/// `PATCH /servers/{id}` after validation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerPatch {
    /// Name.
    pub name: Option<String>,
    /// Icon.
    pub icon_url: Option<String>,
    /// Public flag.
    pub is_public: Option<bool>,
    /// Invite flag.
    pub require_invite: Option<bool>,
}

/// A member with what listings show of them.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberDetail {
    /// The user.
    pub user: UserRecord,
    /// Join time.
    pub joined_at: Timestamp,
    /// Roles, position DESC.
    pub roles: Vec<MemberRoleInfo>,
}

/// A channel to create; the store assigns `position` = max + 1 (0 for the first).
#[derive(Debug, Clone, PartialEq)]
pub struct NewChannel {
    /// Id.
    pub id: ChannelId,
    /// Server.
    pub server_id: ServerId,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: ChannelType,
    /// Topic.
    pub topic: Option<String>,
    /// Category label.
    pub category: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
}

/// `PATCH` of a channel after validation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChannelPatch {
    /// Name.
    pub name: Option<String>,
    /// Topic.
    pub topic: Option<String>,
    /// Category.
    pub category: Option<String>,
    /// Position.
    pub position: Option<i64>,
}

/// A message to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    /// Id.
    pub id: MessageId,
    /// Channel.
    pub channel_id: ChannelId,
    /// Author.
    pub author_id: UserId,
    /// Text.
    pub content: String,
    /// Replied-to message.
    pub reply_to: Option<MessageId>,
    /// Mentioned members, each once.
    pub mention_user_ids: Vec<UserId>,
    /// `@everyone`.
    pub mention_everyone: bool,
    /// Thread root, for thread replies.
    pub thread_id: Option<MessageId>,
    /// Creation time.
    pub created_at: Timestamp,
    /// The cluster node that accepted it (`None` on a single node): if that node dies
    /// before its event goes out, another finds it by this
    /// ([`MessageStore::messages_of_node`](crate::MessageStore::messages_of_node)).
    pub node: Option<uuid::Uuid>,
}

/// A DM channel row: exactly two participants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmChannelRecord {
    /// Id.
    pub id: DmChannelId,
    /// One participant.
    pub user_a: UserId,
    /// The other.
    pub user_b: UserId,
    /// Creation time.
    pub created_at: Timestamp,
}

impl DmChannelRecord {
    /// Whether `user` takes part.
    pub fn has(&self, user: UserId) -> bool {
        self.user_a == user || self.user_b == user
    }

    /// The participant that is not `user`.
    pub fn other(&self, user: UserId) -> UserId {
        if self.user_a == user {
            self.user_b
        } else {
            self.user_a
        }
    }
}

/// A DM channel as a participant lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct DmChannelSummary {
    /// The channel.
    pub channel: DmChannelRecord,
    /// The other participant.
    pub recipient: UserRecord,
    /// Newest message.
    pub last_message_at: Option<Timestamp>,
}

/// What READY needs from the store, read in one snapshot ([`crate::Store::ready_state`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ReadyState {
    /// The user.
    pub user: UserRecord,
    /// The user's servers, oldest first.
    pub servers: Vec<ServerDto>,
    /// The user's DM channels, newest `last_message_at` first.
    pub dm_channels: Vec<DmChannelSummary>,
    /// Unread counts (server and DM channels), zeros omitted.
    pub unread_counts: Vec<UnreadCount>,
    /// Mention counts (server channels), zeros omitted.
    pub mention_counts: Vec<MentionCount>,
    /// Roles of those servers, position DESC within each.
    pub roles: Vec<Role>,
    /// Channel overrides of those servers.
    pub overrides: Vec<ChannelOverride>,
}

/// A bot with the hash of its current token.
#[derive(Debug, Clone, PartialEq)]
pub struct BotRecord {
    /// The bot.
    pub bot: Bot,
    /// SHA-256 hex of the token.
    pub token_hash: String,
}

/// A message seen from its author's side: where and what they posted (a bot's log).
#[derive(Debug, Clone, PartialEq)]
pub struct AuthoredMessage {
    /// The message.
    pub id: MessageId,
    /// The server channel it was posted in.
    pub channel_id: ChannelId,
    /// Its current text.
    pub content: String,
    /// When it was posted.
    pub created_at: Timestamp,
}

/// Everything the in-memory directory (permissions, audiences) is built from at start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DirectorySnapshot {
    /// `(server, owner)`.
    pub servers: Vec<(ServerId, UserId)>,
    /// `(server, user)`.
    pub members: Vec<(ServerId, UserId)>,
    /// Roles: `(role, server, permissions, position)`.
    pub roles: Vec<(RoleId, ServerId, i64, i64)>,
    /// `(server, user, role)`.
    pub member_roles: Vec<(ServerId, UserId, RoleId)>,
    /// `(channel, server, kind)`.
    pub channels: Vec<(ChannelId, ServerId, ChannelType)>,
    /// Every override.
    pub overrides: Vec<ChannelOverride>,
    /// Live timeouts: `(server, user, expires_at)`.
    pub timeouts: Vec<(ServerId, UserId, Timestamp)>,
}

// ---- roles (issue 12, permissions) ----

/// `PATCH /servers/{id}/roles/{role_id}` after validation; `None` leaves a field as it
/// is (the API has no way to clear the colour).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RolePatch {
    /// Name.
    pub name: Option<String>,
    /// Permission bits.
    pub permissions: Option<i64>,
    /// Colour.
    pub color: Option<String>,
    /// Position.
    pub position: Option<i64>,
}

// ---- content: threads, reactions, pins, polls, scheduled events (issue 12) ----

/// A poll to insert with its announcing message ([`crate::ContentStore::create_poll`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NewPoll {
    /// Id.
    pub id: concord_protocol::PollId,
    /// The question, as sent.
    pub question: String,
    /// Options in order: id and text (trimmed).
    pub options: Vec<(concord_protocol::PollOptionId, String)>,
}

/// A poll with its vote counts (`user_vote` is left null: it depends on who asks)
/// and where it was posted.
#[derive(Debug, Clone, PartialEq)]
pub struct PollRecord {
    /// The poll as anyone sees it.
    pub poll: concord_protocol::Poll,
    /// The message announcing it.
    pub message_id: MessageId,
    /// That message's channel.
    pub channel_id: ChannelId,
}

/// What a vote did ([`crate::ContentStore::cast_vote`]), read in the same transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct VoteOutcome {
    /// The poll after the vote.
    pub poll: PollRecord,
    /// Every ballot of the poll after the vote: who chose which option.
    pub ballots: Vec<(UserId, concord_protocol::PollOptionId)>,
    /// False when the user had already chosen that option (nothing changed).
    pub changed: bool,
}

/// A scheduled event to insert with its announcing message
/// ([`crate::ContentStore::create_server_event`]); its server is the message channel's, its
/// creator the message's author, its creation time the message's.
#[derive(Debug, Clone, PartialEq)]
pub struct NewServerEvent {
    /// Id.
    pub id: concord_protocol::EventId,
    /// Name (trimmed).
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Start.
    pub starts_at: Timestamp,
}

// ---- custom emojis ----

/// A custom emoji row: the wire's [`concord_protocol::CustomEmoji`] without its `url`,
/// which follows from the id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomEmojiRecord {
    /// Id (also the key of its image in the file store).
    pub id: concord_protocol::CustomEmojiId,
    /// The server it belongs to.
    pub server_id: ServerId,
    /// Who uploaded it.
    pub created_by: UserId,
    /// Name, unique in its server.
    pub name: String,
    /// The image's type.
    pub content_type: String,
    /// The image's size in bytes.
    pub file_size: i64,
    /// Upload time.
    pub created_at: Timestamp,
}

impl CustomEmojiRecord {
    /// The emoji as the wire carries it.
    pub fn into_dto(self) -> concord_protocol::CustomEmoji {
        concord_protocol::CustomEmoji {
            url: concord_protocol::CustomEmoji::url_of(self.id),
            id: self.id,
            server_id: self.server_id,
            created_by: self.created_by,
            name: self.name,
            content_type: self.content_type,
            file_size: self.file_size,
            created_at: self.created_at,
        }
    }
}

// ---- instance admin, password reset, server templates (issue 18) ----

/// The instance settings row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSettingsRecord {
    /// The mode an admin chose; `None` until one does (the configured mode is in force).
    pub registration_mode: Option<concord_protocol::RegistrationMode>,
    /// Last change (the migration's time until the first change).
    pub updated_at: Timestamp,
    /// Who made the last change.
    pub updated_by: Option<UserId>,
}

/// Server-wide totals for the admin dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminCounts {
    /// Users, bots included.
    pub users: i64,
    /// Servers.
    pub servers: i64,
    /// Server messages, deleted included.
    pub messages: i64,
    /// Server channels.
    pub channels: i64,
}

/// Order of the admin user list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AdminUserSort {
    /// Newest first.
    #[default]
    CreatedAt,
    /// By username, ascending.
    Username,
    /// Most messages first.
    MessageCount,
}

/// One page of the admin user list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminUserQuery {
    /// Rows to skip.
    pub offset: i64,
    /// Rows to return.
    pub limit: i64,
    /// Lowercase literal substring of the username or e-mail (ASCII case folding).
    pub search: Option<String>,
    /// Order.
    pub sort: AdminUserSort,
}

/// One page of the admin server list (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminServerQuery {
    /// Rows to skip.
    pub offset: i64,
    /// Rows to return.
    pub limit: i64,
    /// Lowercase literal substring of the name (ASCII case folding).
    pub search: Option<String>,
}

/// What an admin changes on a user; `None` leaves a flag as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdminFlags {
    /// Instance admin.
    pub is_admin: Option<bool>,
    /// Disabled.
    pub disabled: Option<bool>,
}

/// A user deleted by an admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedUser {
    /// The servers they were a member of.
    pub servers: Vec<ServerId>,
    /// The custom emojis they had created (deleted with them), so that the caller can
    /// delete the files.
    pub emojis: Vec<concord_protocol::CustomEmojiId>,
}

/// A stored server template; `template_data` is the raw JSON
/// `{"channels": [TemplateChannel…]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTemplateRecord {
    /// Id.
    pub id: uuid::Uuid,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// `gaming`, `community`, `study` or `custom`.
    pub category: String,
    /// The channels, as stored JSON.
    pub template_data: String,
    /// Shipped with Concord.
    pub is_builtin: bool,
    /// Creation time.
    pub created_at: Timestamp,
}

// ---- attachments, search, export (issue 18 part B) ----

/// An attachment of a server-channel message; its bytes are in the file store under
/// `<message_id>/<stored_name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentRecord {
    /// Id.
    pub id: uuid::Uuid,
    /// The message it hangs off.
    pub message_id: MessageId,
    /// Who uploaded it (`None` once that user is deleted).
    pub uploader_id: Option<UserId>,
    /// The name the client gave, as given.
    pub filename: String,
    /// The name in the file store, unique within the message.
    pub stored_name: String,
    /// Size in bytes (1..=52 428 800).
    pub file_size: i64,
    /// The type recognised from the bytes.
    pub mime_type: String,
    /// Upload time (one batch shares it).
    pub created_at: Timestamp,
}

/// What [`crate::AttachmentStore::add_attachments`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachmentAddition {
    /// Every attachment was added.
    Added,
    /// The message would hold more than the limit; nothing was added.
    LimitReached,
    /// The message does not exist or is deleted; nothing was added.
    MessageGone,
}

/// A file whose attachment row is gone and which is to be deleted from the file store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePurge {
    /// Order of the purge (oldest first).
    pub seq: i64,
    /// The message the file belonged to.
    pub message_id: MessageId,
    /// Its name in the file store.
    pub stored_name: String,
}

// ---- audit log (issue 18 part C) ----

/// One audit-log row (`rest-extras.md` §5.2). Written by the store methods that take
/// an `audit` argument, in the transaction of the action they perform (X19), and only
/// when the action takes effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Id.
    pub id: uuid::Uuid,
    /// The server acted on; `None` once that server is deleted.
    pub server_id: Option<ServerId>,
    /// Who acted; `None` once that user is deleted.
    pub actor_id: Option<UserId>,
    /// What was done (`member_ban`, `role_update`, …).
    pub action: String,
    /// What kind of thing was acted on (`user`, `role`, `channel`, …).
    pub target_type: Option<String>,
    /// The id of what was acted on.
    pub target_id: Option<uuid::Uuid>,
    /// The action's details: a JSON object, as text.
    pub details: String,
    /// When.
    pub created_at: Timestamp,
}

/// A page of a server's audit log, newest first by (`created_at`, `id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLogFilter {
    /// Only this action.
    pub action: Option<String>,
    /// Only this actor.
    pub actor_id: Option<UserId>,
    /// Only this target type.
    pub target_type: Option<String>,
    /// Only rows older than this: strictly older `created_at` when `before_id` is
    /// `None`, else strictly before (`before`, `before_id`) in (`created_at`, `id`)
    /// order.
    pub before: Option<Timestamp>,
    /// The keyset tie-breaker of `before`.
    pub before_id: Option<uuid::Uuid>,
    /// At most this many rows.
    pub limit: i64,
}

// ---- server export (issue 18 part B) ----

use concord_protocol::DirectMessageId;

/// A keyset position in an export read: rows strictly after (`at`, `id`) in the
/// read's (time, id) order come next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportCursor {
    /// The time of the last row read (`joined_at` or `created_at`).
    pub at: Timestamp,
    /// The id of the last row read (the member's user id for members).
    pub id: uuid::Uuid,
}

/// A member as the export lists them ([`crate::ExportStore::export_members`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportMemberRecord {
    /// The user.
    pub user_id: UserId,
    /// Their name.
    pub username: String,
    /// Join time.
    pub joined_at: Timestamp,
}

impl ExportMemberRecord {
    /// The cursor that reads on after this row.
    pub fn cursor(&self) -> ExportCursor {
        ExportCursor {
            at: self.joined_at,
            id: self.user_id.get(),
        }
    }
}

/// A live message of a server channel as the export writes it
/// ([`crate::ExportStore::export_messages`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportMessageRecord {
    /// Id.
    pub id: MessageId,
    /// Author; `None` once the account is deleted.
    pub author_id: Option<UserId>,
    /// The author's name; `None` once the account is deleted.
    pub author_username: Option<String>,
    /// Text.
    pub content: String,
    /// The message replied to.
    pub reply_to: Option<MessageId>,
    /// Last edit.
    pub edited_at: Option<Timestamp>,
    /// Creation time.
    pub created_at: Timestamp,
}

impl ExportMessageRecord {
    /// The cursor that reads on after this row.
    pub fn cursor(&self) -> ExportCursor {
        ExportCursor {
            at: self.created_at,
            id: self.id.get(),
        }
    }
}

/// One of a user's DM channels, with the other participant
/// ([`crate::ExportStore::export_dm_channels`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportDmChannelRecord {
    /// Id.
    pub id: DmChannelId,
    /// The other participant.
    pub partner_id: UserId,
    /// Their name.
    pub partner_username: String,
    /// Creation time.
    pub created_at: Timestamp,
}

impl ExportDmChannelRecord {
    /// The cursor that reads on after this row.
    pub fn cursor(&self) -> ExportCursor {
        ExportCursor {
            at: self.created_at,
            id: self.id.get(),
        }
    }
}

/// A live direct message as the export writes it
/// ([`crate::ExportStore::export_dm_messages`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportDmMessageRecord {
    /// Id.
    pub id: DirectMessageId,
    /// Author; `None` once the account is deleted.
    pub author_id: Option<UserId>,
    /// The author's name; `None` once the account is deleted.
    pub author_username: Option<String>,
    /// Text.
    pub content: String,
    /// Creation time.
    pub created_at: Timestamp,
}

impl ExportDmMessageRecord {
    /// The cursor that reads on after this row.
    pub fn cursor(&self) -> ExportCursor {
        ExportCursor {
            at: self.created_at,
            id: self.id.get(),
        }
    }
}

// ---- message search (issue 18 part B) ----

/// A full-text search of server-channel messages (`rest-extras.md` §7): the live
/// messages of `channels` (of `channel` alone when given) that hold every word of
/// [`search_terms`](crate::search_terms)`(text)`, best first: by relevance, then
/// newest first by (`created_at`, `id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSearch {
    /// What the user typed. Never read as query syntax: only its words count.
    pub text: String,
    /// The channels that may be searched (the caller's viewable ones); none is searched
    /// outside them.
    pub channels: Vec<ChannelId>,
    /// Only this channel; a channel outside `channels` finds nothing.
    pub channel: Option<ChannelId>,
    /// Only hits that come after this one in the order above, keyed on its own
    /// relevance for this query; a message that is not a hit of this search (unknown,
    /// deleted, in another channel, not matching) gives an empty page.
    pub before: Option<MessageId>,
    /// At most this many hits.
    pub limit: i64,
}

/// One message found by a [`MessageSearch`].
#[derive(Debug, Clone, PartialEq)]
pub struct MessageHit {
    /// The message.
    pub id: MessageId,
    /// Its channel.
    pub channel_id: ChannelId,
    /// Its author; `None` once that user is deleted.
    pub author_id: Option<UserId>,
    /// The author's username; `None` once that user is deleted.
    pub author_username: Option<String>,
    /// The text.
    pub content: String,
    /// Creation time.
    pub created_at: Timestamp,
    /// Relevance for this query: higher is better.
    pub rank: f64,
    /// The byte ranges of `content` that matched a search word, in order, disjoint,
    /// each on `char` boundaries.
    pub matches: Vec<std::ops::Range<usize>>,
}

/// A page of a [`MessageSearch`].
#[derive(Debug, Clone, PartialEq)]
pub struct SearchResults {
    /// The hits, best first.
    pub hits: Vec<MessageHit>,
    /// Whether more hits follow the last one.
    pub has_more: bool,
    /// How many messages match in all, whatever `before` and `limit` say.
    pub total: i64,
}
// ---- automod (issue 18 part C) ----

/// A change to a server's automod settings: `None` leaves a setting as it is (or, on
/// the first change, at its default). The route has checked the ranges; the
/// database's CHECKs hold them too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AutomodPatch {
    /// Master switch.
    pub enabled: Option<bool>,
    /// Spam rule on.
    pub spam_enabled: Option<bool>,
    /// Spam threshold (1-50).
    pub spam_max_messages: Option<i32>,
    /// Spam window in seconds (1-60).
    pub spam_window_secs: Option<i32>,
    /// Spam action.
    pub spam_action: Option<concord_protocol::AutomodAction>,
    /// Duplicate rule on.
    pub duplicate_enabled: Option<bool>,
    /// Word filter on.
    pub word_filter_enabled: Option<bool>,
    /// Word filter action.
    pub word_filter_action: Option<concord_protocol::AutomodAction>,
    /// Timeout length in minutes (1-10080).
    pub timeout_minutes: Option<i32>,
}

// ---- webhooks (issue 18 part C) ----

/// A webhook row (`rest-extras.md` §9, §11): the wire's [`concord_protocol::Webhook`]
/// and its signing secret, kept in plaintext because it is the HMAC key. `Debug`
/// hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookRecord {
    /// Id.
    pub id: uuid::Uuid,
    /// The server whose events it receives.
    pub server_id: ServerId,
    /// Who created it (the row goes with that user).
    pub created_by: UserId,
    /// Display name, trimmed, 1–100 characters.
    pub name: String,
    /// Delivery URL, as sent, 1–2000 bytes.
    pub url: String,
    /// The HMAC-SHA256 key (64 lowercase hex digits).
    pub secret: String,
    /// Subscribed event types, each once, in the order given.
    pub event_types: Vec<String>,
    /// Whether events are delivered.
    pub enabled: bool,
    /// Deliveries that failed every attempt since the last success.
    pub delivery_failures: i64,
    /// The last successful delivery.
    pub last_used_at: Option<Timestamp>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change through the API (not delivery bookkeeping).
    pub updated_at: Timestamp,
}

impl std::fmt::Debug for WebhookRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRecord")
            .field("id", &self.id)
            .field("server_id", &self.server_id)
            .field("name", &self.name)
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("event_types", &self.event_types)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl WebhookRecord {
    /// The wire form, without the secret.
    pub fn into_dto(self) -> concord_protocol::Webhook {
        concord_protocol::Webhook {
            id: self.id,
            server_id: self.server_id,
            created_by: self.created_by,
            name: self.name,
            url: self.url,
            event_types: self.event_types,
            enabled: self.enabled,
            delivery_failures: self.delivery_failures,
            last_used_at: self.last_used_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// A change to a webhook; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookPatch {
    /// New name (already trimmed and checked).
    pub name: Option<String>,
    /// New URL (already checked).
    pub url: Option<String>,
    /// New subscriptions (already checked).
    pub event_types: Option<Vec<String>>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}
