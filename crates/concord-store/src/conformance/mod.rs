//! The conformance suite: what every [`Store`] backend must do, written against
//! `&dyn Store` only, so that each backend runs the very same cases.
//!
//! Each case expects a **fresh, empty** store (the first-user-admin rule depends on it)
//! and panics on the first deviation. [`conformance_tests!`](crate::conformance_tests)
//! turns every case into one `#[tokio::test]`:
//!
//! ```ignore
//! concord_store::conformance_tests!(MyStore::connect_fresh().await.unwrap());
//! ```
//!
//! No case sleeps or looks at the clock: every timestamp is explicit.

use concord_protocol::{
    Bot, BotId, Channel, ChannelId, ChannelType, DirectMessage, DmChannelId, Message, MessageId,
    Role, RoleId, Server, ServerDto, ServerId, Status, Timestamp, UserId, VoiceState,
};
use uuid::Uuid;

use crate::{
    BotRecord, DmChannelRecord, NewChannel, NewMessage, NewUser, RefreshSession, Store, StoreError,
    UserRecord,
};

mod bots;
mod channels;
mod dms;
mod messages;
mod servers;
mod sessions;
mod users;
mod voice;
// Roles, role assignments and channel overrides (issue 12, permissions).
mod roles;
// Threads, reactions, pins, polls, scheduled events (issue 12).
mod content;
// ---- invites, moderation, Go Live ----
mod go_live;
mod invites;
mod moderation;
// ---- custom emojis ----
mod emojis;
// ---- instance admin, password reset, server templates (issue 18) ----
mod admin;
// ---- attachments, search, export (issue 18 part B) ----
mod attachments;
// ---- audit log (issue 18 part C) ----
mod audit;
// ---- server export (issue 18 part B) ----
mod export;
// ---- message search (issue 18 part B) ----
mod search;
// ---- automod (issue 18 part C) ----
mod automod;
// ---- webhooks (issue 18 part C) ----
mod webhooks;

pub use bots::*;
pub use channels::*;
pub use dms::*;
pub use messages::*;
pub use servers::*;
pub use sessions::*;
pub use users::*;
pub use voice::*;
// Roles, role assignments and channel overrides (issue 12, permissions).
pub use roles::*;
// Threads, reactions, pins, polls, scheduled events (issue 12).
pub use content::*;
// ---- invites, moderation, Go Live ----
pub use go_live::*;
pub use invites::*;
pub use moderation::*;
// ---- custom emojis ----
pub use emojis::*;
// ---- instance admin, password reset, server templates (issue 18) ----
pub use admin::*;
// ---- attachments, search, export (issue 18 part B) ----
pub use attachments::*;
// ---- audit log (issue 18 part C) ----
pub use audit::*;
// ---- server export (issue 18 part B) ----
pub use export::*;
// ---- message search (issue 18 part B) ----
pub use search::*;
// ---- automod (issue 18 part C) ----
pub use automod::*;
// ---- webhooks (issue 18 part C) ----
pub use webhooks::*;

/// Expands to one `#[tokio::test]` per conformance case. `$make` is evaluated inside
/// each (async) test and must yield a fresh, empty store (a value of a type that
/// implements [`Store`]); it may use `.await`.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@cases $make;
            ping,
            create_user_and_lookup,
            create_user_conflicts,
            first_human_becomes_admin,
            admin_only_when_asked_and_first,
            users_batch,
            update_user_patch,
            set_presence_replaces_all,
            refresh_session_lookup,
            refresh_rotation_is_compare_and_set,
            refresh_keeps_newest,
            refresh_drops_expired,
            delete_refresh_sessions_of_one_user,
            create_server_makes_owner_member,
            create_server_conflict_and_missing_owner,
            missing_server_lookups,
            servers_of_user_oldest_first,
            public_servers_order_and_limit,
            update_server_patch,
            add_member_conflict_and_missing,
            members_order_and_roles,
            remove_member_drops_roles,
            is_banned_without_ban,
            member_ids_by_usernames_exact,
            create_channel_positions,
            create_channel_conflict_and_missing_server,
            update_channel_patch,
            delete_channel_cascades,
            delete_server_cascades,
            roles_and_assignment,
            ready_state_matches_the_single_reads,
            put_override_upserts,
            timeouts_and_directory_snapshot,
            unread_counts_window,
            mention_counts_window,
            create_and_read_message,
            create_message_conflict_and_missing,
            messages_of_a_node_by_id_range,
            messages_order_and_cursor,
            thread_reply_count_is_live,
            edit_message_replaces,
            delete_message_is_soft_and_once,
            open_dm_is_idempotent,
            dm_messages_of_a_node_by_id_range,
            open_dm_concurrently,
            dm_channels_of_user_order,
            dm_messages_order_and_cursor,
            voice_state_upsert_and_delete,
            gateway_sessions_are_taken_once,
            bot_lifecycle,
            recent_messages_by_author_newest_live_first,
            create_bot_is_atomic,
            // Roles, role assignments and channel overrides (issue 12, permissions).
            role_lookup_and_update,
            delete_role_cascades,
            unassign_role_once,
            overrides_of_channel_order,
            set_override_reports_changes,
            delete_override_of_channel,
            // Threads, reactions, pins, polls, scheduled events (issue 12).
            thread_replies_page_forward,
            reactions_add_once_and_count,
            pins_change_once_and_list,
            create_poll_and_read_it_back,
            votes_replace_and_count,
            refused_votes_change_nothing,
            content_creation_is_atomic,
            server_events_create_and_list_upcoming,
            content_goes_with_its_channel_and_server,
            // ---- invites, moderation, Go Live, logout ----
            invites_create_list_delete,
            invite_preview_only_while_usable,
            accept_invite_checks_in_order_and_counts_one_use,
            accept_invite_concurrently_admits_max_uses,
            create_user_with_invite_is_atomic,
            ban_removes_membership_and_lists_newest_first,
            timeouts_put_replace_remove,
            go_live_needs_the_broadcaster_in_the_channel,
            stale_go_live_ends_once_the_broadcaster_is_gone,
            delete_one_refresh_session,
            refresh_session_by_id_and_revoke,
            // ---- custom emojis ----
            custom_emojis_create_list_get_delete,
            custom_emoji_limit_and_name_refusals_write_nothing,
            custom_emoji_limit_holds_under_concurrency,
            custom_emojis_go_with_their_server,
            // ---- instance admin, password reset, server templates (issue 18) ----
            instance_settings_update,
            reset_tokens_are_single_use,
            reset_token_consumed_once_under_concurrency,
            admin_counts_and_lists,
            admin_flags_keep_an_admin,
            last_admin_holds_under_concurrency,
            delete_user_as_admin_keeps_messages,
            server_templates_and_creation_with_channels,
            // ---- attachments, search, export (issue 18 part B) ----
            attachments_add_list_get,
            attachment_limit_and_dead_messages_write_nothing,
            attachment_limit_holds_under_concurrency,
            attachment_rows_go_with_messages_and_leave_purges,
            // ---- audit log (issue 18 part C) ----
            audit_rows_go_with_their_actions,
            audit_log_pages_and_filters,
            // ---- server export (issue 18 part B) ----
            export_members_page_in_join_order,
            export_messages_live_oldest_first,
            export_dm_channels_and_messages,
            // ---- message search (issue 18 part B) ----
            search_stems_and_ignores_stop_words,
            search_follows_edits_and_deletes,
            search_is_scoped_to_the_given_channels,
            search_pages_by_keyset,
            search_index_flushes_in_bounded_batches,
            // ---- automod (issue 18 part C) ----
            automod_config_upserts_with_defaults,
            automod_words_add_once_cap_and_remove,
            automod_log_appends_trims_and_lists,
            automod_reads_of_recent_messages,
            automod_word_cap_holds_under_concurrency,
            // ---- webhooks (issue 18 part C) ----
            webhooks_create_list_update_delete,
            webhook_limit_holds_under_concurrency,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test]
            async fn $case() {
                let store = $make;
                $crate::conformance::$case(&store).await;
            }
        )*
    };
}

// ---- fixtures ----

const BASE: i64 = 1_700_000_000_000_000;

/// `BASE + n` seconds.
fn at(n: i64) -> Timestamp {
    Timestamp::from_micros(BASE + n * 1_000_000)
}

fn new_user(name: &str) -> NewUser {
    NewUser {
        id: UserId::new(),
        username: name.to_owned(),
        email: None,
        password_hash: Some(format!("$argon2id$hash-of-{name}")),
        status: Status::Offline,
        created_at: at(0),
        admin_if_first: false,
        is_bot: false,
    }
}

async fn user(store: &dyn Store, name: &str) -> UserRecord {
    store
        .create_user(&new_user(name))
        .await
        .expect("create user")
}

/// A server owned by `owner` (not stored).
pub(crate) fn server_def(
    owner: UserId,
    name: &str,
    created_at: Timestamp,
    is_public: bool,
) -> Server {
    Server {
        id: ServerId::new(),
        name: name.to_owned(),
        owner_id: owner,
        icon_url: None,
        is_public,
        require_invite: false,
        created_at,
        updated_at: created_at,
    }
}

async fn server(store: &dyn Store, owner: UserId, created_at: Timestamp) -> Server {
    let server = server_def(owner, "server", created_at, false);
    store.create_server(&server).await.expect("create server");
    server
}

fn channel_def(
    server: ServerId,
    name: &str,
    kind: ChannelType,
    created_at: Timestamp,
) -> NewChannel {
    NewChannel {
        id: ChannelId::new(),
        server_id: server,
        name: name.to_owned(),
        kind,
        topic: None,
        category: None,
        created_at,
    }
}

async fn channel(store: &dyn Store, server: ServerId, kind: ChannelType, n: i64) -> Channel {
    store
        .create_channel(&channel_def(server, "channel", kind, at(n)))
        .await
        .expect("create channel")
}

fn message_def(
    channel: ChannelId,
    author: UserId,
    content: &str,
    created_at: Timestamp,
) -> NewMessage {
    NewMessage {
        id: MessageId::new(),
        channel_id: channel,
        author_id: author,
        content: content.to_owned(),
        reply_to: None,
        mention_user_ids: Vec::new(),
        mention_everyone: false,
        thread_id: None,
        created_at,
        node: None,
    }
}

async fn message(store: &dyn Store, channel: ChannelId, author: UserId, n: i64) -> Message {
    store
        .create_message(&message_def(channel, author, "hello", at(n)))
        .await
        .expect("create message")
}

fn role_def(server: ServerId, name: &str, position: i64) -> Role {
    Role {
        id: RoleId::new(),
        server_id: server,
        name: name.to_owned(),
        permissions: 1 << position,
        color: Some(format!("#00000{position}")),
        position,
        created_at: at(0),
    }
}

fn session(
    user: UserId,
    hash: &str,
    created_at: Timestamp,
    expires_at: Timestamp,
) -> RefreshSession {
    RefreshSession {
        id: Uuid::now_v7(),
        user_id: user,
        token_hash: hash.to_owned(),
        created_at,
        expires_at,
        previous_hash: None,
        rotated_at: None,
    }
}

fn dm_def(a: UserId, b: UserId, created_at: Timestamp) -> DmChannelRecord {
    DmChannelRecord {
        id: DmChannelId::new(),
        user_a: a,
        user_b: b,
        created_at,
    }
}

fn dm_message(channel: DmChannelId, author: UserId, created_at: Timestamp) -> DirectMessage {
    DirectMessage {
        id: concord_protocol::DirectMessageId::new(),
        channel_id: channel,
        author_id: Some(author),
        content: "psst".to_owned(),
        edited_at: None,
        created_at,
    }
}

fn voice(user: UserId, channel: ChannelId, joined_at: Timestamp) -> VoiceState {
    VoiceState {
        channel_id: Some(channel),
        joined_at: Some(joined_at),
        ..VoiceState::left(user)
    }
}

fn bot_def(
    user: &NewUser,
    creator: Option<UserId>,
    hash: &str,
    created_at: Timestamp,
) -> BotRecord {
    BotRecord {
        bot: Bot {
            id: BotId::new(),
            user_id: user.id,
            name: format!("{} bot", user.username),
            description: Some("does things".to_owned()),
            created_by: creator,
            revoked_at: None,
            created_at,
        },
        token_hash: hash.to_owned(),
    }
}

fn bot_user(name: &str) -> NewUser {
    NewUser {
        password_hash: None,
        status: Status::Online,
        is_bot: true,
        ..new_user(name)
    }
}

/// `n` ids in ascending order (for tie-break assertions).
fn sorted_ids<T>(n: usize) -> Vec<concord_protocol::Id<T>> {
    let mut ids: Vec<concord_protocol::Id<T>> =
        (0..n).map(|_| concord_protocol::Id::new()).collect();
    ids.sort();
    ids
}

fn ids_of(messages: &[Message]) -> Vec<MessageId> {
    messages.iter().map(|m| m.id).collect()
}

fn server_ids(servers: &[ServerDto]) -> Vec<ServerId> {
    servers.iter().map(|s| s.server.id).collect()
}

#[track_caller]
fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    match result {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
}

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    match result {
        Err(StoreError::NotFound) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[cfg(test)]
mod sqlite {
    crate::conformance_tests!(
        crate::SqliteStore::in_memory()
            .await
            .expect("in-memory store")
    );
}
