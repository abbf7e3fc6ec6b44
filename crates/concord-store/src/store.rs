//! The `Store` port: every read and write the chat domain makes. One method is one
//! transaction; anything that must be atomic is one method.

use async_trait::async_trait;
use concord_protocol::{
    Bot, BotId, Channel, ChannelId, ChannelOverride, DirectMessage, DmChannelId, MentionCount,
    Message, MessageId, Role, RoleId, Server, ServerDto, ServerId, Timestamp, UnreadCount, UserId,
    VoiceParticipant, VoiceState,
};
// ---- invites, moderation, Go Live ----
use concord_protocol::{Ban, GoLiveInfo, Invite, InviteId, InvitePreview, Timeout};

use crate::{
    AuthoredMessage, BotRecord, ChannelPatch, DirectorySnapshot, DmChannelRecord, DmChannelSummary,
    MemberDetail, NewChannel, NewMessage, NewUser, Presence, ReadyState, RefreshSession,
    SavedSession, ServerPatch, StoreError, UserPatch, UserRecord,
};
// Content: threads, reactions, pins, polls, scheduled events (issue 12).
use crate::{NewPoll, NewServerEvent, PollRecord, VoteOutcome};
use concord_protocol::{PollId, PollOptionId, ReactionCount, ServerEvent};
// ---- invites, moderation, Go Live ----
use crate::{GoLiveStart, InviteAcceptance, InviteRefusal};
// ---- custom emojis ----
use crate::{CustomEmojiRecord, EmojiCreation};
use concord_protocol::CustomEmojiId;
// ---- instance admin, password reset, server templates (issue 18) ----
use crate::{
    AdminCounts, AdminFlags, AdminRefusal, AdminServerQuery, AdminUserQuery, DeletedUser,
    InstanceSettingsRecord, ServerTemplateRecord,
};
use concord_protocol::{AdminServer, AdminUser, RegistrationMode};
// ---- attachments, search, export (issue 18 part B) ----
use crate::{AttachmentAddition, AttachmentRecord, FilePurge};
// ---- audit log (issue 18 part C) ----
use crate::{AuditLogFilter, AuditRecord};
// ---- server export (issue 18 part B) ----
use crate::{
    ExportCursor, ExportDmChannelRecord, ExportDmMessageRecord, ExportMemberRecord,
    ExportMessageRecord,
};
// Message search (issue 18 part B).
use crate::{MessageSearch, SearchResults};
// ---- automod (issue 18 part C) ----
use crate::{AutomodPatch, WordAddition};
use concord_protocol::{AutomodConfig, AutomodLogEntry, WordFilter};
// ---- webhooks (issue 18 part C) ----
use crate::{WebhookPatch, WebhookRecord};

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Persistent state of a Concord instance. Implementations: [`crate::SqliteStore`]
/// (PostgreSQL joins later); both pass the same conformance suite.
///
/// Conventions: a lookup that finds nothing is `Ok(None)` / `Ok(false)`, never an error;
/// a unique violation is [`StoreError::Conflict`]; a reference to a missing row is
/// [`StoreError::NotFound`].
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Cheap round trip, for health checks.
    async fn ping(&self) -> StoreResult<()>;

    // ---- users ----

    /// Inserts a user. Conflict on a taken username or email.
    async fn create_user(&self, user: &NewUser) -> StoreResult<UserRecord>;
    /// One user.
    async fn user(&self, id: UserId) -> StoreResult<Option<UserRecord>>;
    /// One user by exact, case-sensitive name.
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>>;
    /// Several users, in no particular order; missing ids are skipped.
    async fn users(&self, ids: &[UserId]) -> StoreResult<Vec<UserRecord>>;
    /// Applies a profile patch; `None` when the user does not exist.
    async fn update_user(&self, id: UserId, patch: &UserPatch) -> StoreResult<Option<UserRecord>>;
    /// Replaces the chosen presence (status, custom status and activity together).
    async fn set_presence(&self, id: UserId, presence: &Presence) -> StoreResult<()>;

    // ---- refresh sessions ----

    /// Adds a session, deleting the user's expired ones (as of `now`) and then all but
    /// the `keep` newest.
    async fn create_refresh_session(
        &self,
        session: &RefreshSession,
        now: Timestamp,
        keep: usize,
    ) -> StoreResult<()>;
    /// The session whose current token hashes to `token_hash`.
    async fn refresh_session_by_hash(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<RefreshSession>>;
    /// Compare-and-set of the token hash; false when `old_hash` is no longer current.
    /// The replaced hash and `now` are kept as `previous_hash` and `rotated_at`.
    async fn rotate_refresh_session(
        &self,
        id: uuid::Uuid,
        old_hash: &str,
        new_hash: &str,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// The session (the token family of one login) with this id.
    async fn refresh_session(&self, id: uuid::Uuid) -> StoreResult<Option<RefreshSession>>;
    /// Ends one session, whoever's it is (reuse of its tokens was detected); false
    /// when there was none.
    async fn revoke_refresh_session(&self, id: uuid::Uuid) -> StoreResult<bool>;
    /// Logs the user out everywhere.
    async fn delete_refresh_sessions(&self, user: UserId) -> StoreResult<()>;

    // ---- servers and members ----

    /// Inserts a server and makes its owner the sole member (`joined_at` = `created_at`).
    async fn create_server(&self, server: &Server) -> StoreResult<()>;
    /// One server.
    async fn server(&self, id: ServerId) -> StoreResult<Option<ServerDto>>;
    /// The user's servers, oldest server first.
    async fn servers_of_user(&self, user: UserId) -> StoreResult<Vec<ServerDto>>;
    /// Public servers by member count DESC, then newest first.
    async fn public_servers(&self, limit: i64) -> StoreResult<Vec<ServerDto>>;
    /// Applies a patch and sets `updated_at`; `None` when missing.
    async fn update_server(
        &self,
        id: ServerId,
        patch: &ServerPatch,
        updated_at: Timestamp,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Option<ServerDto>>;
    /// Deletes a server and everything in it. `None` when missing; otherwise the ids
    /// of the custom emojis that went with it, read in the same transaction, so the
    /// caller can delete their files.
    /// `audit` is written before the delete (whose cascade then nulls its
    /// `server_id`).
    async fn delete_server(
        &self,
        id: ServerId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Option<Vec<CustomEmojiId>>>;
    /// Adds a member. Conflict when already one.
    async fn add_member(
        &self,
        server: ServerId,
        user: UserId,
        joined_at: Timestamp,
    ) -> StoreResult<()>;
    /// Removes a member (and their role assignments); false when not one.
    async fn remove_member(
        &self,
        server: ServerId,
        user: UserId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool>;
    /// Members by `joined_at` ASC.
    async fn members(&self, server: ServerId) -> StoreResult<Vec<MemberDetail>>;
    /// Whether `user` is banned from `server`.
    async fn is_banned(&self, server: ServerId, user: UserId) -> StoreResult<bool>;
    /// Ids of current members of `server` whose username is one of `names` (exact).
    async fn member_ids_by_usernames(
        &self,
        server: ServerId,
        names: &[String],
    ) -> StoreResult<Vec<UserId>>;

    // ---- channels ----

    /// Inserts a channel at position max + 1 (0 for the first), atomically.
    async fn create_channel(&self, channel: &NewChannel) -> StoreResult<Channel>;
    /// One channel.
    async fn channel(&self, id: ChannelId) -> StoreResult<Option<Channel>>;
    /// A server's channels by position, then creation.
    async fn channels(&self, server: ServerId) -> StoreResult<Vec<Channel>>;
    /// Applies a patch; `None` when missing.
    async fn update_channel(
        &self,
        id: ChannelId,
        patch: &ChannelPatch,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Option<Channel>>;
    /// Hard delete with messages, overrides and voice states; false when missing.
    async fn delete_channel(&self, id: ChannelId, audit: Option<&AuditRecord>)
    -> StoreResult<bool>;

    // ---- roles and overrides (written by the permissions issue; read by READY) ----

    /// Inserts a role.
    async fn create_role(&self, role: &Role) -> StoreResult<()>;
    /// Assigns a role; false when it was already assigned.
    async fn assign_role(&self, server: ServerId, user: UserId, role: RoleId) -> StoreResult<bool>;
    /// Roles of these servers, position DESC within each.
    async fn roles_of_servers(&self, servers: &[ServerId]) -> StoreResult<Vec<Role>>;
    /// Upserts an override keyed by (channel, role) or (channel, user); returns the row.
    async fn put_override(&self, ov: &ChannelOverride) -> StoreResult<ChannelOverride>;
    /// Overrides of every channel of these servers.
    async fn overrides_of_servers(&self, servers: &[ServerId])
    -> StoreResult<Vec<ChannelOverride>>;
    /// Adds or replaces a member's timeout.
    async fn set_timeout(
        &self,
        server: ServerId,
        user: UserId,
        expires_at: Timestamp,
        created_by: Option<UserId>,
        created_at: Timestamp,
    ) -> StoreResult<()>;

    /// Everything the in-memory directory starts from (timeouts: those live at `now`).
    async fn directory_snapshot(&self, now: Timestamp) -> StoreResult<DirectorySnapshot>;

    // ---- read state ----

    /// Marks a server channel read up to `at`.
    async fn ack_channel(&self, user: UserId, channel: ChannelId, at: Timestamp)
    -> StoreResult<()>;
    /// Marks a DM channel read up to `at`.
    async fn ack_dm(&self, user: UserId, channel: DmChannelId, at: Timestamp) -> StoreResult<()>;
    /// READY's unread counts: channels (server and DM) with a read-state row; messages
    /// after `last_read_at`, not deleted, not by the user; zeros omitted.
    async fn unread_counts(&self, user: UserId) -> StoreResult<Vec<UnreadCount>>;
    /// READY's mention counts: server channels with a read-state row; same window;
    /// messages mentioning the user or everyone; zeros omitted.
    async fn mention_counts(&self, user: UserId) -> StoreResult<Vec<MentionCount>>;
    /// Everything READY reads for `user`, from one consistent snapshot: the same as
    /// [`Store::user`], [`Store::servers_of_user`], [`Store::dm_channels_of_user`],
    /// [`Store::unread_counts`], [`Store::mention_counts`], and
    /// [`Store::roles_of_servers`] / [`Store::overrides_of_servers`] of those servers.
    /// `None` when the user does not exist.
    async fn ready_state(&self, user: UserId) -> StoreResult<Option<ReadyState>>;

    // ---- messages ----

    /// Inserts a message; returns it as created.
    async fn create_message(&self, message: &NewMessage) -> StoreResult<Message>;
    /// One message, deleted or not, with its live thread reply count and pin fields.
    async fn message(&self, id: MessageId) -> StoreResult<Option<Message>>;
    /// Root messages of a channel, not deleted, newest first by (created_at, id),
    /// strictly older than `before` when given (an unknown cursor gives `[]`).
    async fn messages(
        &self,
        channel: ChannelId,
        before: Option<MessageId>,
        limit: i64,
    ) -> StoreResult<Vec<Message>>;
    /// Replaces content and mentions and sets `edited_at`; `None` when missing or deleted.
    async fn edit_message(
        &self,
        id: MessageId,
        content: &str,
        mention_user_ids: &[UserId],
        mention_everyone: bool,
        edited_at: Timestamp,
    ) -> StoreResult<Option<Message>>;
    /// Soft delete; false when missing or already deleted (a lost race included).
    async fn delete_message(&self, id: MessageId) -> StoreResult<bool>;

    // ---- direct messages ----

    /// Creates the DM channel between the two users, or returns the existing one;
    /// the flag says whether it was created.
    async fn open_dm_channel(
        &self,
        channel: &DmChannelRecord,
    ) -> StoreResult<(DmChannelRecord, bool)>;
    /// One DM channel.
    async fn dm_channel(&self, id: DmChannelId) -> StoreResult<Option<DmChannelRecord>>;
    /// A user's DM channels, newest `last_message_at` first, never-used last.
    async fn dm_channels_of_user(&self, user: UserId) -> StoreResult<Vec<DmChannelSummary>>;
    /// Inserts a direct message.
    async fn create_dm_message(&self, message: &DirectMessage) -> StoreResult<()>;
    /// DMs newest first, with the same cursor rules as [`Store::messages`].
    async fn dm_messages(
        &self,
        channel: DmChannelId,
        before: Option<uuid::Uuid>,
        limit: i64,
    ) -> StoreResult<Vec<DirectMessage>>;

    // ---- voice ----

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

    // ---- gateway sessions ----

    /// Saves protocol v2 sessions at a graceful shutdown, replacing any saved under
    /// the same id. Sessions of users that no longer exist are skipped.
    async fn save_gateway_sessions(&self, sessions: &[SavedSession]) -> StoreResult<()>;
    /// Takes the saved sessions at start: returns those not expired as of `now` and
    /// deletes every saved session, expired or not (each is resumed at most once).
    async fn take_gateway_sessions(&self, now: Timestamp) -> StoreResult<Vec<SavedSession>>;

    // ---- bots ----

    /// Inserts the bot's user and the bot in one transaction.
    async fn create_bot(&self, user: &NewUser, bot: &BotRecord) -> StoreResult<()>;
    /// One bot.
    async fn bot(&self, id: BotId) -> StoreResult<Option<BotRecord>>;
    /// The bot whose user is `user`.
    async fn bot_by_user(&self, user: UserId) -> StoreResult<Option<BotRecord>>;
    /// The bot whose current token hashes to `token_hash` (revoked ones included).
    async fn bot_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<BotRecord>>;
    /// [`Store::bot_by_token_hash`] and the bot's user account together (what a
    /// `Bot` credential authenticates as): one visit to the database, since every
    /// request and upgrade with a bot token needs both.
    async fn bot_and_user_by_token_hash(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<(BotRecord, UserRecord)>>;
    /// Bots created by `user`, oldest first, revoked included.
    async fn bots_of_creator(&self, user: UserId) -> StoreResult<Vec<Bot>>;
    /// Renames / re-describes a bot; `None` when missing.
    async fn update_bot(
        &self,
        id: BotId,
        name: Option<&str>,
        description: Option<&str>,
    ) -> StoreResult<Option<Bot>>;
    /// Sets `revoked_at`; false when missing or already revoked.
    async fn revoke_bot(&self, id: BotId, at: Timestamp) -> StoreResult<bool>;
    /// Replaces the token hash; false when missing.
    async fn set_bot_token(&self, id: BotId, token_hash: &str) -> StoreResult<bool>;
    /// The `limit` newest live messages `author` posted in server channels (thread
    /// replies included, DMs not), newest first by (`created_at`, `id`): what a bot's
    /// log shows of its activity.
    async fn recent_messages_by_author(
        &self,
        author: UserId,
        limit: u32,
    ) -> StoreResult<Vec<AuthoredMessage>>;

    // ---- roles, role assignments and channel overrides (issue 12, permissions) ----

    /// One role.
    async fn role(&self, id: RoleId) -> StoreResult<Option<Role>>;
    /// Applies a patch. `None` when the role does not exist; otherwise the role as it
    /// is now and whether the patch changed anything (decided in the same
    /// transaction, so that of two identical concurrent patches only one reports a
    /// change).
    async fn update_role(
        &self,
        id: RoleId,
        patch: &crate::RolePatch,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Option<(Role, bool)>>;
    /// Deletes a role with its assignments and the overrides that target it; false
    /// when missing.
    async fn delete_role(&self, id: RoleId, audit: Option<&AuditRecord>) -> StoreResult<bool>;
    /// Removes a role from a member; false when it was not assigned.
    async fn unassign_role(
        &self,
        server: ServerId,
        user: UserId,
        role: RoleId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool>;
    /// Overrides of one channel: role overrides first, then user overrides, each in
    /// creation order.
    async fn overrides_of_channel(&self, channel: ChannelId) -> StoreResult<Vec<ChannelOverride>>;
    /// [`Store::put_override`], also saying whether anything changed: false when an
    /// override for the same target already had these very bits (then the stored
    /// row is returned untouched).
    /// `audit` is written in either case, with `"override_id"` of its `details` set
    /// to the stored row's id (an upsert keeps an earlier row's).
    async fn set_override(
        &self,
        ov: &ChannelOverride,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<(ChannelOverride, bool)>;
    /// Deletes the override `id` of `channel`; false when the channel has no such
    /// override.
    async fn delete_override(
        &self,
        channel: ChannelId,
        id: concord_protocol::OverrideId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool>;
    // ---- content: threads, reactions, pins, polls, scheduled events (issue 12) ----

    /// Live replies of the thread under `root`, oldest first by (created_at, id); with
    /// `after`, only those strictly after that reply (a cursor that is not a reply of
    /// this thread gives `[]`).
    async fn thread_replies(
        &self,
        root: MessageId,
        after: Option<MessageId>,
        limit: i64,
    ) -> StoreResult<Vec<Message>>;
    /// Adds `user`'s reaction; false when it was already there. `NotFound` when the
    /// message or user does not exist.
    async fn add_reaction(
        &self,
        message: MessageId,
        user: UserId,
        emoji: &str,
        at: Timestamp,
    ) -> StoreResult<bool>;
    /// Removes `user`'s reaction; false when it was not there.
    async fn remove_reaction(
        &self,
        message: MessageId,
        user: UserId,
        emoji: &str,
    ) -> StoreResult<bool>;
    /// A message's reactions per emoji, by each emoji's first use; `me` says whether
    /// `viewer` is among its users.
    async fn reactions(
        &self,
        message: MessageId,
        viewer: UserId,
    ) -> StoreResult<Vec<ReactionCount>>;
    /// Pins a live message; false when it was already pinned (or is missing or
    /// deleted): the pin fields are left as they were.
    async fn pin_message(&self, id: MessageId, by: UserId, at: Timestamp) -> StoreResult<bool>;
    /// Unpins a message; false when it was not pinned.
    async fn unpin_message(&self, id: MessageId) -> StoreResult<bool>;
    /// A channel's pinned, live messages, most recently pinned first.
    async fn pinned_messages(&self, channel: ChannelId) -> StoreResult<Vec<Message>>;
    /// Inserts a message and the poll it announces, in one transaction; returns the
    /// message with its poll (no votes).
    async fn create_poll(&self, message: &NewMessage, poll: &NewPoll) -> StoreResult<Message>;
    /// One poll with its counts.
    async fn poll(&self, id: PollId) -> StoreResult<Option<PollRecord>>;
    /// Every ballot of a poll: who chose which option.
    async fn poll_ballots(&self, id: PollId) -> StoreResult<Vec<(UserId, PollOptionId)>>;
    /// The options `user` chose in those of `polls` they voted in.
    async fn user_votes(
        &self,
        user: UserId,
        polls: &[PollId],
    ) -> StoreResult<Vec<(PollId, PollOptionId)>>;
    /// Records (or replaces) `user`'s vote and reads the poll and its ballots back, in
    /// one transaction. `NotFound` when the poll, the user, or that option of that
    /// poll does not exist.
    async fn cast_vote(
        &self,
        poll: PollId,
        user: UserId,
        option: PollOptionId,
        at: Timestamp,
    ) -> StoreResult<VoteOutcome>;
    /// Inserts a message and the scheduled event it announces, in one transaction
    /// (the event's creator and creation time are the message's); returns the message
    /// with its event.
    async fn create_server_event(
        &self,
        message: &NewMessage,
        event: &NewServerEvent,
    ) -> StoreResult<Message>;
    /// Events of `server` announced in one of `channels` that start after `after`,
    /// soonest first by (starts_at, id), at most `limit`.
    async fn upcoming_server_events(
        &self,
        server: ServerId,
        channels: &[ChannelId],
        after: Timestamp,
        limit: i64,
    ) -> StoreResult<Vec<ServerEvent>>;
    // ---- invites, moderation, Go Live, logout ----

    /// Inserts an invite. Conflict when its code is taken; NotFound for a missing
    /// server.
    async fn create_invite(&self, invite: &Invite, audit: Option<&AuditRecord>) -> StoreResult<()>;
    /// A server's invites, newest first (expired and exhausted ones included).
    async fn invites(&self, server: ServerId) -> StoreResult<Vec<Invite>>;
    /// Deletes one invite of `server`; false when it has no such invite.
    async fn delete_invite(
        &self,
        server: ServerId,
        invite: InviteId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool>;
    /// What the invite with this (case-sensitive) code shows, if it is usable at `now`.
    async fn invite_preview(
        &self,
        code: &str,
        now: Timestamp,
    ) -> StoreResult<Option<InvitePreview>>;
    /// Uses the invite with this code for `user` at `now`, in one transaction: checks
    /// the code, then a ban, then membership, then adds the member (`joined_at` =
    /// `now`) and counts the use. Nothing is written unless the user joins.
    async fn accept_invite(
        &self,
        code: &str,
        user: UserId,
        now: Timestamp,
    ) -> StoreResult<InviteAcceptance>;
    /// Registration in invite-only mode: checks the code at `user.created_at`, counts
    /// one use and inserts the user, in one transaction (the user joins no server).
    /// `Ok(Err(_))` when the code cannot be used; a taken username or email is a
    /// Conflict and leaves the invite as it was.
    async fn create_user_with_invite(
        &self,
        user: &NewUser,
        code: &str,
    ) -> StoreResult<Result<UserRecord, InviteRefusal>>;

    /// Bans `ban.user_id` from `ban.server_id` (a repeated ban replaces the banner and
    /// the reason, and keeps the first ban's time) and removes their membership and role assignments, in one
    /// transaction. Returns whether they were a member. NotFound for a missing user or
    /// server.
    async fn ban(&self, ban: &Ban, audit: Option<&AuditRecord>) -> StoreResult<bool>;
    /// Lifts a ban; false when there was none (and then `audit` is not written).
    async fn unban(
        &self,
        server: ServerId,
        user: UserId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<bool>;
    /// A server's bans, newest first.
    async fn bans(&self, server: ServerId) -> StoreResult<Vec<Ban>>;
    /// Adds or replaces a member's timeout (every field of the old one is replaced).
    /// NotFound for a missing user or server.
    async fn put_timeout(&self, timeout: &Timeout, audit: Option<&AuditRecord>) -> StoreResult<()>;
    /// Removes a member's timeout; returns when the removed one was to end (`None`
    /// when there was none, and then `audit` is not written).
    async fn remove_timeout(
        &self,
        server: ServerId,
        user: UserId,
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Option<Timestamp>>;

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

    /// Ends the refresh session of `user` whose current token hashes to `token_hash`
    /// and returns its id; `None` when `user` has no such session.
    async fn delete_refresh_session(
        &self,
        user: UserId,
        token_hash: &str,
    ) -> StoreResult<Option<uuid::Uuid>>;

    // ---- custom emojis ----

    /// A server's custom emojis, oldest first by (created_at, id).
    async fn custom_emojis(&self, server: ServerId) -> StoreResult<Vec<CustomEmojiRecord>>;
    /// One custom emoji.
    async fn custom_emoji(&self, id: CustomEmojiId) -> StoreResult<Option<CustomEmojiRecord>>;
    /// Inserts a custom emoji, in one transaction with the checks that its server holds
    /// fewer than `limit` emojis and none of the same name; nothing is written when a
    /// check fails. NotFound for a missing server or creator.
    async fn create_custom_emoji(
        &self,
        emoji: &CustomEmojiRecord,
        limit: i64,
    ) -> StoreResult<EmojiCreation>;
    /// Deletes the emoji `id` of `server`; returns the deleted row (`None` when the
    /// server has no such emoji).
    async fn delete_custom_emoji(
        &self,
        server: ServerId,
        id: CustomEmojiId,
    ) -> StoreResult<Option<CustomEmojiRecord>>;

    // ---- instance admin, password reset, server templates (issue 18) ----

    /// The instance settings row.
    async fn instance_settings(&self) -> StoreResult<InstanceSettingsRecord>;
    /// Records a settings change by `by` at `at`: the registration mode when given
    /// (`None` keeps it), and `updated_at` / `updated_by` in any case. Returns the row.
    async fn update_instance_settings(
        &self,
        registration_mode: Option<RegistrationMode>,
        by: UserId,
        at: Timestamp,
    ) -> StoreResult<InstanceSettingsRecord>;
    /// One user by exact, case-sensitive e-mail.
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>>;
    /// Stores a password reset token of `user` (by its hash), deleting the user's
    /// earlier ones, in one transaction. NotFound for a missing user.
    async fn create_reset_token(
        &self,
        user: UserId,
        token_hash: &str,
        created_at: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()>;
    /// The user of the reset token with this hash, if the token is unused and not
    /// expired at `now` (it is not consumed).
    async fn reset_token_user(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<UserRecord>>;
    /// Consumes the reset token with this hash, if unused and unexpired at `now`, and
    /// in the same transaction sets the user's password hash and deletes every refresh
    /// session of the user. Of concurrent calls with one token, exactly one gets the
    /// user's id; the others (and unknown, used or expired tokens) get `None`.
    async fn consume_reset_token(
        &self,
        token_hash: &str,
        now: Timestamp,
        password_hash: &str,
    ) -> StoreResult<Option<UserId>>;
    /// Totals for the admin dashboard, from one snapshot.
    async fn admin_counts(&self) -> StoreResult<AdminCounts>;
    /// One page of users and the number of users matching the search, from one snapshot.
    async fn admin_users(&self, query: &AdminUserQuery) -> StoreResult<(Vec<AdminUser>, i64)>;
    /// One user as the admin list shows it.
    async fn admin_user(&self, id: UserId) -> StoreResult<Option<AdminUser>>;
    /// Changes the admin and disabled flags of `target` on behalf of `actor`, in one
    /// write transaction with its checks: `actor` is still an enabled admin, `target`
    /// exists, and a change that demotes or disables an admin is refused while at most
    /// one enabled admin exists (so two admins demoting each other at once leave one).
    /// Disabling sets `disabled_at` (= `at`) and deletes the target's refresh
    /// sessions; enabling clears both flags' traces.
    async fn set_admin_flags(
        &self,
        actor: UserId,
        target: UserId,
        flags: &AdminFlags,
        at: Timestamp,
    ) -> StoreResult<Result<(), AdminRefusal>>;
    /// Deletes `target` on behalf of `actor`, in one write transaction with the checks
    /// of [`Store::set_admin_flags`] and that `target` owns no server. Messages and
    /// DMs stay with no author; memberships, sessions, reset tokens, emojis they
    /// created and the rest go with the user.
    async fn delete_user_as_admin(
        &self,
        actor: UserId,
        target: UserId,
    ) -> StoreResult<Result<DeletedUser, AdminRefusal>>;
    /// One page of servers (newest first) and the number matching the search, from
    /// one snapshot.
    async fn admin_servers(&self, query: &AdminServerQuery)
    -> StoreResult<(Vec<AdminServer>, i64)>;
    /// Every server template, built-ins first, then by name.
    async fn server_templates(&self) -> StoreResult<Vec<ServerTemplateRecord>>;
    /// One server template.
    async fn server_template(&self, id: uuid::Uuid) -> StoreResult<Option<ServerTemplateRecord>>;
    /// [`Store::create_server`] and then each of `channels` in order (positions 0, 1,
    /// …), in one transaction. Returns the channels as created.
    async fn create_server_with_channels(
        &self,
        server: &Server,
        channels: &[NewChannel],
        audit: Option<&AuditRecord>,
    ) -> StoreResult<Vec<Channel>>;

    // ---- attachments, search, export (issue 18 part B) ----

    /// A message's attachments in upload order: by `created_at`, then by their place
    /// in the batch that added them.
    async fn attachments(&self, message: MessageId) -> StoreResult<Vec<AttachmentRecord>>;
    /// The attachment of `message` stored as `stored_name`.
    async fn attachment(
        &self,
        message: MessageId,
        stored_name: &str,
    ) -> StoreResult<Option<AttachmentRecord>>;
    /// Adds `attachments` (in this order) to `message`, in one transaction with the
    /// checks that the message exists, is not deleted, and would then hold at most
    /// `limit` attachments; nothing is written when a check fails. Additions to one
    /// message are serialised (SQLite: the write lock; PostgreSQL: the message row
    /// locked `FOR UPDATE`), so concurrent batches never pass the limit together.
    async fn add_attachments(
        &self,
        message: MessageId,
        attachments: &[AttachmentRecord],
        limit: i64,
    ) -> StoreResult<AttachmentAddition>;
    /// Files whose attachment rows were deleted (with their message, soft delete
    /// included, channel or server), oldest first, at most `limit`. Each deleted row
    /// is recorded here in the transaction that deleted it.
    async fn file_purges(&self, limit: i64) -> StoreResult<Vec<FilePurge>>;
    /// Forgets the purges of these `seq`s (their files are gone).
    async fn forget_file_purges(&self, done: &[i64]) -> StoreResult<()>;
    // ---- audit log (issue 18 part C) ----
    //
    // The methods that perform audited actions take `audit: Option<&AuditRecord>`:
    // the row is inserted in the action's own transaction, and only when the action
    // takes effect (a `false` / `None` answer writes nothing). The three below are the
    // audited forms of widely used methods whose signatures stay as they are.

    /// [`Store::create_channel`], writing `audit` in the same transaction.
    async fn create_channel_audited(
        &self,
        channel: &NewChannel,
        audit: &AuditRecord,
    ) -> StoreResult<Channel>;
    /// [`Store::create_role`], writing `audit` in the same transaction.
    async fn create_role_audited(&self, role: &Role, audit: &AuditRecord) -> StoreResult<()>;
    /// [`Store::assign_role`], writing `audit` in the same transaction when the role
    /// was not assigned yet.
    async fn assign_role_audited(
        &self,
        server: ServerId,
        user: UserId,
        role: RoleId,
        audit: &AuditRecord,
    ) -> StoreResult<bool>;
    /// A page of `server`'s audit log, newest first by (`created_at`, `id`).
    async fn audit_logs(
        &self,
        server: ServerId,
        query: &AuditLogFilter,
    ) -> StoreResult<Vec<AuditRecord>>;
    // ---- server export (issue 18 part B) ----
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

    // ---- message search (issue 18 part B) ----

    /// A page of the live server-channel messages that match `search`, with the
    /// number of matches in all (see [`MessageSearch`]).
    async fn search_messages(&self, search: &MessageSearch) -> StoreResult<SearchResults>;
    /// Indexes up to `limit` of the messages posted (or changed) since the last call,
    /// for a backend that indexes in batches rather than with each write; returns how
    /// many it handled (0: nothing waits). [`Store::search_messages`] sees every
    /// message written before it whether or not this ran; calling it keeps the batches
    /// small and off the posting path.
    async fn flush_search_index(&self, limit: i64) -> StoreResult<u64>;
    // ---- automod (issue 18 part C) ----

    /// A server's automod settings; `None` until they are first changed.
    async fn automod_config(&self, server: ServerId) -> StoreResult<Option<AutomodConfig>>;
    /// Applies `patch` to a server's automod settings at `at`, creating them first
    /// (with the defaults for what `patch` leaves out) when there are none. NotFound
    /// for a missing server.
    async fn update_automod_config(
        &self,
        server: ServerId,
        patch: &AutomodPatch,
        at: Timestamp,
    ) -> StoreResult<AutomodConfig>;
    /// A server's filtered words, oldest first by (`created_at`, `id`).
    async fn automod_words(&self, server: ServerId) -> StoreResult<Vec<WordFilter>>;
    /// Adds `word` (as given: the caller lowercases it) unless the server already
    /// filters that word (then its row is returned, unchanged) or already filters
    /// `limit` words, in one transaction. NotFound for a missing server.
    async fn add_automod_word(&self, word: &WordFilter, limit: i64) -> StoreResult<WordAddition>;
    /// Removes one filtered word (exact match); false when the server had no such word.
    async fn remove_automod_word(&self, server: ServerId, word: &str) -> StoreResult<bool>;
    /// Appends to a server's automod log, then drops all but its `keep` newest rows,
    /// in one transaction. NotFound for a missing server, channel or user.
    async fn append_automod_log(&self, entry: &AutomodLogEntry, keep: i64) -> StoreResult<()>;
    /// A server's automod log, newest first by (`created_at`, `id`), at most `limit`.
    async fn automod_logs(&self, server: ServerId, limit: i64)
    -> StoreResult<Vec<AutomodLogEntry>>;
    /// Whether `author` has a live message in `channel` (thread replies included)
    /// with exactly `content`, created after `since`.
    async fn has_recent_duplicate(
        &self,
        channel: ChannelId,
        author: UserId,
        content: &str,
        since: Timestamp,
    ) -> StoreResult<bool>;
    /// How many live messages `author` has in `channel` (thread replies included)
    /// created after `since`.
    async fn count_recent_messages(
        &self,
        channel: ChannelId,
        author: UserId,
        since: Timestamp,
    ) -> StoreResult<i64>;
    // ---- webhooks (issue 18 part C) ----

    /// The webhooks of `server`, oldest first (by `created_at`, then `id`).
    async fn webhooks(&self, server: ServerId) -> StoreResult<Vec<WebhookRecord>>;
    /// One webhook of `server` (`None` for another server's).
    async fn webhook(&self, server: ServerId, id: uuid::Uuid)
    -> StoreResult<Option<WebhookRecord>>;
    /// Inserts `webhook` unless its server already holds `limit` webhooks (`false`,
    /// nothing written). The count and the insert are one atomic step (SQLite: one
    /// write transaction; PostgreSQL: the server row locked `FOR UPDATE`), so racing
    /// creations never pass the limit together (X14). NotFound for a missing server or
    /// creator.
    async fn create_webhook(&self, webhook: &WebhookRecord, limit: i64) -> StoreResult<bool>;
    /// Applies `patch` to the webhook `id` of `server` and sets `updated_at` to `at`
    /// (also for an empty patch); `None` when there is no such webhook.
    async fn update_webhook(
        &self,
        server: ServerId,
        id: uuid::Uuid,
        patch: &WebhookPatch,
        at: Timestamp,
    ) -> StoreResult<Option<WebhookRecord>>;
    /// Deletes the webhook `id` of `server`; `false` when there was none.
    async fn delete_webhook(&self, server: ServerId, id: uuid::Uuid) -> StoreResult<bool>;
    /// Delivery bookkeeping (`rest-extras.md` §9.2): a success resets
    /// `delivery_failures` to 0 and sets `last_used_at` to `at`; a failure adds one to
    /// `delivery_failures`. `updated_at` stays. A webhook deleted meanwhile is ignored.
    async fn record_webhook_delivery(
        &self,
        id: uuid::Uuid,
        delivered: bool,
        at: Timestamp,
    ) -> StoreResult<()>;
}
