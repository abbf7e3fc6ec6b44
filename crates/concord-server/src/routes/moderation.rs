//! Routes: kick, ban, bans, timeouts (`rest.md` §7.15).
//!
//! Concord commits first and publishes after (`gateway.md` D17, `rest.md` R13): a kick
//! or ban is announced to the remaining members and, explicitly, to the target, whose
//! sessions stop receiving the server's events as the directory forgets the
//! membership. A target in one of this server's voice channels leaves it (and its Go
//! Live session ends); voice elsewhere is left alone.

use axum::{extract::State, http::StatusCode};
use bytes::Bytes;
use concord_protocol::{
    Ban, ErrorBody, Event, MemberRemoval, MemberTimeout, ModeratedMember, ModerationReason,
    ServerId, Timeout, TimeoutMember, Timestamp, UserId,
};
use concord_store::{StoreError, UserRecord};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::servers::publish_removal;
use crate::{
    access,
    auth::Principal,
    bus::Audience,
    directory::DirectoryChange,
    error::{ApiError, ApiResult},
    extract::{Json, Path},
    perms::Permissions,
    state::AppState,
};

/// Longest timeout, in minutes (28 days).
const MAX_TIMEOUT_MINUTES: i64 = 40_320;

/// The moderation routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(kick))
        .routes(routes!(ban))
        .routes(routes!(time_out, lift_timeout))
        .routes(routes!(bans))
        .routes(routes!(unban))
}

fn member_not_found() -> ApiError {
    ApiError::not_found("Member not found")
}

/// The moderation check of `rest.md` §5.2, after the membership checks: not oneself,
/// never the owner, and the owner or a holder of `bit` (server level) acting.
///
/// # Errors
/// 400 on oneself; 403 when the target owns the server or the actor lacks `bit`.
fn may_moderate(
    state: &AppState,
    server: ServerId,
    actor: UserId,
    target: UserId,
    bit: Permissions,
) -> ApiResult<()> {
    if actor == target {
        return Err(ApiError::bad_request("You cannot moderate yourself"));
    }
    let owner = state.directory.owner(server);
    if owner == Some(target) {
        return Err(ApiError::forbidden("The server owner cannot be moderated"));
    }
    let allowed = owner == Some(actor)
        || state
            .directory
            .server_permissions(server, actor)
            .is_some_and(|p| p.contains(bit));
    if allowed {
        Ok(())
    } else {
        Err(ApiError::forbidden("Missing permission for this action"))
    }
}

/// The checks of kick and the timeouts: actor and target members, then
/// [`may_moderate`].
fn moderate_member(
    state: &AppState,
    server: ServerId,
    actor: UserId,
    target: UserId,
    bit: Permissions,
) -> ApiResult<()> {
    access::server_member(state, server, actor)?;
    if !state.directory.is_member(server, target) {
        return Err(member_not_found());
    }
    may_moderate(state, server, actor, target, bit)
}

/// The reason of a kick or ban body; anything but a JSON object with an optional
/// string `reason` (and nothing else) counts as no body at all.
fn reason_of(body: &[u8]) -> Option<String> {
    // Through a map, so that serde's array form of the struct (`["why"]`) does not
    // count: no body of this API is an array.
    match serde_json::from_slice::<serde_json::Value>(body).ok()? {
        object @ serde_json::Value::Object(_) => {
            serde_json::from_value::<ModerationReason>(object)
                .ok()?
                .reason
        }
        _ => None,
    }
}

/// `MEMBER_KICK` / `MEMBER_BAN` to the remaining members and to the target, once each.
fn announce_removal(state: &AppState, event: Event, removal: &MemberRemoval) {
    state
        .events
        .dispatch(Audience::Server(removal.server_id), event, removal);
    state
        .events
        .dispatch(Audience::Users(vec![removal.user_id]), event, removal);
}

/// The target's account; `missing` answers when it is gone.
async fn target_user(
    state: &AppState,
    user: UserId,
    missing: fn() -> ApiError,
) -> ApiResult<UserRecord> {
    state.store.user(user).await?.ok_or_else(missing)
}

fn user_not_found() -> ApiError {
    ApiError::not_found("User not found")
}

#[utoipa::path(
    post,
    path = "/servers/{id}/members/{user_id}/kick",
    tag = "servers",
    description = "Removes a member from the server (they may join again).",
    security(("bearer" = []), ("bot_token" = [])),
    params(
        ("id" = ServerId, Path, description = "The server."),
        ("user_id" = UserId, Path, description = "The member to kick."),
    ),
    request_body(
        content = Option<serde_json::Value>,
        description = "Optional, and never refused: an object with a string `reason` \
                       (`{\"reason\": \"…\"}`) gives the reason; a missing body, or any \
                       other body (another key, another type, not JSON at all), means no \
                       reason."
    ),
    responses(
        (status = 204, description = "Kicked."),
        (status = 400, description = "The caller named themselves.", body = ErrorBody),
        (status = 403, description = "The target owns the server, or the caller lacks \
                                      KICK_MEMBERS.", body = ErrorBody),
        (status = 404, description = "No such server, or the caller or the target is not a \
                                      member.", body = ErrorBody),
    ),
)]
async fn kick(
    State(state): State<AppState>,
    principal: Principal,
    Path((server, target)): Path<(ServerId, UserId)>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    moderate_member(
        &state,
        server,
        principal.id(),
        target,
        Permissions::KICK_MEMBERS,
    )?;
    let reason = reason_of(&body);
    let user = target_user(&state, target, member_not_found).await?;
    let audit = super::audit::record(
        server,
        principal.id(),
        "member_kick",
        "user",
        target.get(),
        serde_json::json!({ "reason": reason }),
    );
    // A concurrent leave or kick may have won.
    if !expel(&state, server, &user, reason, Some(&audit)).await? {
        return Err(member_not_found());
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The core of a kick, shared with automod: removes `user` from `server` (writing
/// `audit` in the same transaction), then tells everyone as a kick does — MEMBER_LEAVE
/// and MEMBER_KICK, the target's sessions cut off from the server, their voice here
/// ended. False (and nothing published) when they were not a member.
///
/// # Errors
/// Store failures.
pub(crate) async fn expel(
    state: &AppState,
    server: ServerId,
    user: &UserRecord,
    reason: Option<String>,
    audit: Option<&concord_store::AuditRecord>,
) -> Result<bool, StoreError> {
    if !state.store.remove_member(server, user.id, audit).await? {
        return Ok(false);
    }
    publish_removal(state, server, user).await;
    let kicked = MemberRemoval {
        server_id: server,
        user_id: user.id,
        reason,
    };
    announce_removal(state, Event::MemberKick, &kicked);
    Ok(true)
}

#[utoipa::path(
    post,
    path = "/servers/{id}/members/{user_id}/ban",
    tag = "servers",
    description = "Bans a user (a member or not) and removes them from the server; \
                   banning again replaces the reason.",
    security(("bearer" = []), ("bot_token" = [])),
    params(
        ("id" = ServerId, Path, description = "The server."),
        ("user_id" = UserId, Path, description = "The user to ban."),
    ),
    request_body(
        content = Option<serde_json::Value>,
        description = "Optional, and never refused: an object with a string `reason` \
                       (`{\"reason\": \"…\"}`) gives the reason; a missing body, or any \
                       other body (another key, another type, not JSON at all), means no \
                       reason."
    ),
    responses(
        (status = 204, description = "Banned."),
        (status = 400, description = "The caller named themselves.", body = ErrorBody),
        (status = 403, description = "The target owns the server, or the caller lacks \
                                      BAN_MEMBERS.", body = ErrorBody),
        (status = 404, description = "No such server, the caller is not a member, or no \
                                      such user.", body = ErrorBody),
    ),
)]
async fn ban(
    State(state): State<AppState>,
    principal: Principal,
    Path((server, target)): Path<(ServerId, UserId)>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let actor = principal.id();
    access::server_member(&state, server, actor)?;
    may_moderate(&state, server, actor, target, Permissions::BAN_MEMBERS)?;
    let reason = reason_of(&body);
    let user = target_user(&state, target, user_not_found).await?;
    let record = Ban {
        user_id: target,
        server_id: server,
        banned_by: Some(actor),
        reason,
        created_at: Timestamp::now(),
    };
    let audit = super::audit::record(
        server,
        actor,
        "member_ban",
        "user",
        target.get(),
        serde_json::json!({ "reason": record.reason }),
    );
    match impose_ban(&state, &record, &user, Some(&audit)).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        // The user or the server was deleted since the checks.
        Err(StoreError::NotFound) => Err(user_not_found()),
        Err(err) => Err(err.into()),
    }
}

/// The core of a ban, shared with automod: stores `ban` of `user` (writing `audit` in
/// the same transaction), then tells everyone — a member also gets MEMBER_LEAVE, their
/// sessions cut off from the server and their voice here ended; MEMBER_BAN goes to the
/// server and to them.
///
/// # Errors
/// Store failures; NotFound when the user or the server is gone.
pub(crate) async fn impose_ban(
    state: &AppState,
    ban: &Ban,
    user: &UserRecord,
    audit: Option<&concord_store::AuditRecord>,
) -> Result<(), StoreError> {
    let server = ban.server_id;
    let was_member = state.store.ban(ban, audit).await?;
    let banned = MemberRemoval {
        server_id: server,
        user_id: user.id,
        reason: ban.reason.clone(),
    };
    if was_member {
        publish_removal(state, server, user).await;
        announce_removal(state, Event::MemberBan, &banned);
    } else {
        state
            .events
            .dispatch(Audience::Server(server), Event::MemberBan, &banned);
    }
    Ok(())
}

#[utoipa::path(
    post,
    path = "/servers/{id}/members/{user_id}/timeout",
    tag = "servers",
    description = "Times a member out: until it ends they cannot post or type in the \
                   server. Replaces a running timeout.",
    security(("bearer" = []), ("bot_token" = [])),
    params(
        ("id" = ServerId, Path, description = "The server."),
        ("user_id" = UserId, Path, description = "The member to time out."),
    ),
    request_body = TimeoutMember,
    responses(
        (status = 200, description = "The timeout.", body = Timeout),
        (status = 400, description = "The caller named themselves, or duration_minutes is \
                                      not 1-40320.", body = ErrorBody),
        (status = 403, description = "The target owns the server, or the caller lacks \
                                      MUTE_MEMBERS.", body = ErrorBody),
        (status = 404, description = "No such server, or the caller or the target is not a \
                                      member.", body = ErrorBody),
    ),
)]
async fn time_out(
    State(state): State<AppState>,
    principal: Principal,
    Path((server, target)): Path<(ServerId, UserId)>,
    Json(body): Json<TimeoutMember>,
) -> ApiResult<axum::Json<Timeout>> {
    let actor = principal.id();
    moderate_member(&state, server, actor, target, Permissions::MUTE_MEMBERS)?;
    if !(1..=MAX_TIMEOUT_MINUTES).contains(&body.duration_minutes) {
        return Err(ApiError::bad_request(
            "duration_minutes must be between 1 and 40320 (28 days)",
        ));
    }
    let now = Timestamp::now();
    let timeout = Timeout {
        user_id: target,
        server_id: server,
        expires_at: now.add_micros(body.duration_minutes * 60 * 1_000_000),
        reason: body.reason,
        created_by: Some(actor),
        created_at: now,
    };
    let audit = super::audit::record(
        server,
        actor,
        "member_timeout",
        "user",
        target.get(),
        serde_json::json!({
            "duration_minutes": body.duration_minutes,
            "reason": timeout.reason,
        }),
    );
    match impose_timeout(&state, &timeout, Some(&audit)).await {
        Ok(()) => Ok(axum::Json(timeout)),
        Err(StoreError::NotFound) => Err(member_not_found()),
        Err(err) => Err(err.into()),
    }
}

/// The core of a timeout, shared with automod: stores `timeout` (writing `audit` in
/// the same transaction), updates the directory and sends MEMBER_TIMEOUT to the
/// server.
///
/// # Errors
/// Store failures; NotFound when the user or the server is gone.
pub(crate) async fn impose_timeout(
    state: &AppState,
    timeout: &Timeout,
    audit: Option<&concord_store::AuditRecord>,
) -> Result<(), StoreError> {
    state.store.put_timeout(timeout, audit).await?;
    state.events.change(DirectoryChange::TimeoutSet {
        server: timeout.server_id,
        user: timeout.user_id,
        until: Some(timeout.expires_at),
    });
    let event = MemberTimeout {
        server_id: timeout.server_id,
        user_id: timeout.user_id,
        expires_at: timeout.expires_at,
        reason: timeout.reason.clone(),
    };
    state.events.dispatch(
        Audience::Server(timeout.server_id),
        Event::MemberTimeout,
        &event,
    );
    Ok(())
}

#[utoipa::path(
    delete,
    path = "/servers/{id}/members/{user_id}/timeout",
    tag = "servers",
    description = "Lifts a member's timeout (also answers 204 when there is none).",
    security(("bearer" = []), ("bot_token" = [])),
    params(
        ("id" = ServerId, Path, description = "The server."),
        ("user_id" = UserId, Path, description = "The timed-out member."),
    ),
    responses(
        (status = 204, description = "No timeout any more."),
        (status = 400, description = "The caller named themselves.", body = ErrorBody),
        (status = 403, description = "The target owns the server, or the caller lacks \
                                      MUTE_MEMBERS.", body = ErrorBody),
        (status = 404, description = "No such server, or the caller or the target is not a \
                                      member.", body = ErrorBody),
    ),
)]
async fn lift_timeout(
    State(state): State<AppState>,
    principal: Principal,
    Path((server, target)): Path<(ServerId, UserId)>,
) -> ApiResult<StatusCode> {
    moderate_member(
        &state,
        server,
        principal.id(),
        target,
        Permissions::MUTE_MEMBERS,
    )?;
    let audit = super::audit::record(
        server,
        principal.id(),
        "member_timeout_remove",
        "user",
        target.get(),
        serde_json::json!({}),
    );
    let Some(until) = state
        .store
        .remove_timeout(server, target, Some(&audit))
        .await?
    else {
        return Ok(StatusCode::NO_CONTENT);
    };
    state.events.change(DirectoryChange::TimeoutSet {
        server,
        user: target,
        until: None,
    });
    // Lifting one that had already run out changes nothing anyone can see.
    if until > Timestamp::now() {
        let lifted = ModeratedMember {
            server_id: server,
            user_id: target,
        };
        state.events.dispatch(
            Audience::Server(server),
            Event::MemberTimeoutRemove,
            &lifted,
        );
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The server exists and the caller holds BAN_MEMBERS there (non-members hold
/// nothing: 403, as in the reference).
fn ban_manager(state: &AppState, server: ServerId, user: UserId) -> ApiResult<()> {
    if !state.directory.server_exists(server) {
        return Err(access::server_not_found());
    }
    let allowed = state
        .directory
        .server_permissions(server, user)
        .is_some_and(|p| p.contains(Permissions::BAN_MEMBERS));
    if allowed {
        Ok(())
    } else {
        Err(ApiError::forbidden("Missing permission for this action"))
    }
}

#[utoipa::path(
    get,
    path = "/servers/{id}/bans",
    tag = "servers",
    description = "The server's bans, newest first.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = ServerId, Path, description = "The server.")),
    responses(
        (status = 200, description = "The bans.", body = Vec<Ban>),
        (status = 403, description = "The caller lacks BAN_MEMBERS (or is not a member).", body = ErrorBody),
        (status = 404, description = "No such server.", body = ErrorBody),
    ),
)]
async fn bans(
    State(state): State<AppState>,
    principal: Principal,
    Path(server): Path<ServerId>,
) -> ApiResult<axum::Json<Vec<Ban>>> {
    ban_manager(&state, server, principal.id())?;
    Ok(axum::Json(state.store.bans(server).await?))
}

#[utoipa::path(
    delete,
    path = "/servers/{id}/bans/{user_id}",
    tag = "servers",
    description = "Lifts a ban (also answers 204 when there is none).",
    security(("bearer" = []), ("bot_token" = [])),
    params(
        ("id" = ServerId, Path, description = "The server."),
        ("user_id" = UserId, Path, description = "The banned user."),
    ),
    responses(
        (status = 204, description = "Not banned any more."),
        (status = 403, description = "The caller lacks BAN_MEMBERS (or is not a member).", body = ErrorBody),
        (status = 404, description = "No such server.", body = ErrorBody),
    ),
)]
async fn unban(
    State(state): State<AppState>,
    principal: Principal,
    Path((server, target)): Path<(ServerId, UserId)>,
) -> ApiResult<StatusCode> {
    ban_manager(&state, server, principal.id())?;
    let audit = super::audit::record(
        server,
        principal.id(),
        "member_unban",
        "user",
        target.get(),
        serde_json::json!({}),
    );
    if state.store.unban(server, target, Some(&audit)).await? {
        let lifted = ModeratedMember {
            server_id: server,
            user_id: target,
        };
        state
            .events
            .dispatch(Audience::Server(server), Event::MemberUnban, &lifted);
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_clean_reason_object_gives_a_reason() {
        assert_eq!(reason_of(br#"{"reason":"spam"}"#), Some("spam".to_owned()));
        assert_eq!(reason_of(br#"{"reason":null}"#), None);
        assert_eq!(reason_of(b"{}"), None);
        assert_eq!(reason_of(b""), None);
        assert_eq!(reason_of(b"not json"), None);
        assert_eq!(reason_of(br#"{"reason":5}"#), None);
        assert_eq!(
            reason_of(br#"["spam"]"#),
            None,
            "the array form of the struct"
        );
        assert_eq!(
            reason_of(br#"{"reason":"spam","extra":1}"#),
            None,
            "an unknown key fails the parse, as in the reference"
        );
    }
}
