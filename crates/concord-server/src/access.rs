//! Membership and permission checks shared by the REST routes.
//!
//! Each helper answers with the error `rest.md` prescribes for its check, so a handler
//! reads as the contract's check order. Everything here asks the in-memory directory,
//! except DM participation, which only the store knows. Not-a-member answers use the
//! same text as not-found: the two must be indistinguishable to the caller.

use concord_protocol::{ChannelId, ChannelType, DmChannelId, ServerId, UserId};
use concord_store::DmChannelRecord;

use crate::{
    directory::ChannelFacts,
    error::{ApiError, ApiResult},
    perms::Permissions,
    state::AppState,
};

/// 404 for a server that does not exist or that the caller cannot see.
pub fn server_not_found() -> ApiError {
    ApiError::not_found("Server not found")
}

/// 404 for a channel that does not exist or that the caller cannot see.
pub fn channel_not_found() -> ApiError {
    ApiError::not_found("Channel not found")
}

/// The caller belongs to `server`.
///
/// # Errors
/// 404 when the server does not exist; 404 when the caller is not a member.
pub fn server_member(state: &AppState, server: ServerId, user: UserId) -> ApiResult<()> {
    if !state.directory.server_exists(server) || !state.directory.is_member(server, user) {
        return Err(server_not_found());
    }
    Ok(())
}

/// The caller owns `server` (owner-only operations; non-members get 403 too).
///
/// # Errors
/// 404 when the server does not exist; 403 when the caller is not its owner.
pub fn server_owner(state: &AppState, server: ServerId, user: UserId) -> ApiResult<()> {
    match state.directory.owner(server) {
        None => Err(server_not_found()),
        Some(owner) if owner == user => Ok(()),
        Some(_) => Err(ApiError::forbidden("Only the server owner can do this")),
    }
}

/// The channel exists and the caller belongs to its server.
///
/// # Errors
/// 404 when the channel does not exist; 404 when the caller is not a member.
pub fn member_channel(
    state: &AppState,
    channel: ChannelId,
    user: UserId,
) -> ApiResult<ChannelFacts> {
    let facts = state
        .directory
        .channel(channel)
        .ok_or_else(channel_not_found)?;
    if !state.directory.is_member(facts.server, user) {
        return Err(channel_not_found());
    }
    Ok(facts)
}

/// Whether the caller may VIEW the channel (owner and ADMINISTRATOR always may).
pub fn can_view(state: &AppState, channel: ChannelId, user: UserId) -> bool {
    has_channel_permission(state, channel, user, Permissions::VIEW_CHANNEL)
}

/// Whether the caller holds every bit of `needed` at channel level.
pub fn has_channel_permission(
    state: &AppState,
    channel: ChannelId,
    user: UserId,
    needed: Permissions,
) -> bool {
    state
        .directory
        .channel_permissions(channel, user)
        .is_some_and(|p| p.contains(needed))
}

/// The caller holds every bit of `needed` at channel level.
///
/// # Errors
/// 403 otherwise.
pub fn require_channel_permission(
    state: &AppState,
    channel: ChannelId,
    user: UserId,
    needed: Permissions,
) -> ApiResult<()> {
    if has_channel_permission(state, channel, user, needed) {
        Ok(())
    } else {
        Err(ApiError::forbidden("Missing permission for this channel"))
    }
}

/// The channel is a voice channel.
///
/// # Errors
/// 400 otherwise.
pub fn voice_channel(facts: ChannelFacts) -> ApiResult<()> {
    if facts.kind == ChannelType::Voice {
        Ok(())
    } else {
        Err(ApiError::bad_request("Not a voice channel"))
    }
}

/// The DM channel exists and the caller takes part in it.
///
/// # Errors
/// 404 when it does not exist or the caller is not a participant; store failures.
pub async fn dm_participant(
    state: &AppState,
    channel: DmChannelId,
    user: UserId,
) -> ApiResult<DmChannelRecord> {
    match state.store.dm_channel(channel).await? {
        Some(record) if record.has(user) => Ok(record),
        _ => Err(ApiError::not_found("DM channel not found")),
    }
}

// ---- content: threads, reactions, pins, polls, scheduled events (issue 12) ----

/// The channel exists, the caller belongs to its server and may VIEW it.
///
/// # Errors
/// 404 when the channel does not exist; 404 when the caller is not a member; 403
/// without VIEW_CHANNEL.
pub fn channel_viewer(
    state: &AppState,
    channel: ChannelId,
    user: UserId,
) -> ApiResult<ChannelFacts> {
    let facts = member_channel(state, channel, user)?;
    require_channel_permission(state, channel, user, Permissions::VIEW_CHANNEL)?;
    Ok(facts)
}

/// The caller may post in the channel, as for a message (`rest.md` §7.6): a member
/// who may VIEW the channel and SEND_MESSAGES in it and is not timed out at `now`.
///
/// # Errors
/// 404 when the channel does not exist; 404 when the caller is not a member; 403
/// without VIEW_CHANNEL and SEND_MESSAGES; 403 while timed out.
pub fn channel_poster(
    state: &AppState,
    channel: ChannelId,
    user: UserId,
    now: concord_protocol::Timestamp,
) -> ApiResult<ChannelFacts> {
    let facts = member_channel(state, channel, user)?;
    require_channel_permission(
        state,
        channel,
        user,
        Permissions::VIEW_CHANNEL.union(Permissions::SEND_MESSAGES),
    )?;
    not_timed_out(state, facts.server, user, now)?;
    Ok(facts)
}

/// The caller is not timed out in `server` at `now`.
///
/// # Errors
/// 403 while timed out.
pub fn not_timed_out(
    state: &AppState,
    server: ServerId,
    user: UserId,
    now: concord_protocol::Timestamp,
) -> ApiResult<()> {
    match state.directory.timed_out_until(server, user, now) {
        Some(_) => Err(ApiError::forbidden("You are timed out in this server")),
        None => Ok(()),
    }
}
