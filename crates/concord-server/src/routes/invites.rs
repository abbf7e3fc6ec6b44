//! Routes: server invites (`rest.md` §7.14).
//!
//! Listing, creating and deleting need the server-level CREATE_INVITES bit, and the
//! invite events go only to members holding it (`gateway.md` D16): a code is a key to
//! the server. Previewing and accepting are open to any user holding a code.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use concord_protocol::{
    CreateInvite, ErrorBody, Event, Invite, InviteAccepted, InviteDelete, InviteId, InvitePreview,
    ServerId, Timestamp,
};
use concord_store::{InviteAcceptance, InviteRefusal, StoreError};
use rand::{Rng, distr::Alphanumeric};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::servers::publish_join;
use crate::{
    access,
    auth::Principal,
    bus::Audience,
    error::{ApiError, ApiResult},
    extract::{Json, Path},
    perms::Permissions,
    state::AppState,
};

/// Characters in an invite code.
const CODE_LEN: usize = 8;
/// Longest life of an invite, in hours (30 days).
const MAX_HOURS: i64 = 720;
/// Fresh codes tried before giving up. 62^8 codes make even a second try rare.
const CODE_ATTEMPTS: usize = 5;

/// The invite routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_invites, create_invite))
        .routes(routes!(delete_invite))
        .routes(routes!(preview_invite))
        .routes(routes!(accept_invite))
}

/// A new code: 8 characters of `[A-Za-z0-9]` from the thread's CSPRNG.
fn new_code() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(CODE_LEN)
        .map(char::from)
        .collect()
}

/// The caller is a member of `server` holding CREATE_INVITES.
///
/// # Errors
/// 404 when the server does not exist or the caller is not a member; 403 without the
/// bit.
fn invite_manager(state: &AppState, server: ServerId, principal: &Principal) -> ApiResult<()> {
    access::server_member(state, server, principal.id())?;
    let allowed = state
        .directory
        .server_permissions(server, principal.id())
        .is_some_and(|p| p.contains(Permissions::CREATE_INVITES));
    if allowed {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "You need the Create Invites permission",
        ))
    }
}

fn refusal(refused: InviteRefusal) -> ApiError {
    match refused {
        InviteRefusal::Unknown => ApiError::not_found("Invite not found"),
        InviteRefusal::Expired => ApiError::bad_request("This invite has expired"),
        InviteRefusal::Exhausted => {
            ApiError::bad_request("This invite has reached its maximum uses")
        }
    }
}

#[utoipa::path(
    get,
    path = "/servers/{id}/invites",
    tag = "servers",
    description = "A server's invites, newest first, expired and used-up ones included.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = ServerId, Path, description = "The server.")),
    responses(
        (status = 200, description = "The invites.", body = Vec<Invite>),
        (status = 403, description = "The caller lacks CREATE_INVITES.", body = ErrorBody),
        (status = 404, description = "No such server, or the caller is not a member.", body = ErrorBody),
    ),
)]
async fn list_invites(
    State(state): State<AppState>,
    principal: Principal,
    Path(server): Path<ServerId>,
) -> ApiResult<axum::Json<Vec<Invite>>> {
    invite_manager(&state, server, &principal)?;
    Ok(axum::Json(state.store.invites(server).await?))
}

#[utoipa::path(
    post,
    path = "/servers/{id}/invites",
    tag = "servers",
    description = "Creates an invite with a fresh random code.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = ServerId, Path, description = "The server.")),
    request_body = CreateInvite,
    responses(
        (status = 201, description = "The new invite.", body = Invite),
        (status = 400, description = "max_uses is not above 0, or expires_in_hours is not \
                                      1-720.", body = ErrorBody),
        (status = 403, description = "The caller lacks CREATE_INVITES.", body = ErrorBody),
        (status = 404, description = "No such server, or the caller is not a member.", body = ErrorBody),
    ),
)]
async fn create_invite(
    State(state): State<AppState>,
    principal: Principal,
    Path(server): Path<ServerId>,
    Json(body): Json<CreateInvite>,
) -> ApiResult<Response> {
    invite_manager(&state, server, &principal)?;
    if body.max_uses.is_some_and(|n| n <= 0) {
        return Err(ApiError::bad_request("max_uses must be greater than 0"));
    }
    if body
        .expires_in_hours
        .is_some_and(|h| !(1..=MAX_HOURS).contains(&h))
    {
        return Err(ApiError::bad_request(
            "expires_in_hours must be between 1 and 720",
        ));
    }
    let now = Timestamp::now();
    let mut invite = Invite {
        id: InviteId::new(),
        server_id: server,
        code: String::new(),
        created_by: Some(principal.id()),
        max_uses: body.max_uses,
        uses: 0,
        expires_at: body
            .expires_in_hours
            .map(|hours| now.add_micros(hours * 3_600 * 1_000_000)),
        created_at: now,
    };
    let mut attempts = 0;
    loop {
        attempts += 1;
        invite.code = new_code();
        let audit = super::audit::record(
            server,
            principal.id(),
            "invite_create",
            "invite",
            invite.id.get(),
            serde_json::json!({ "code": invite.code, "max_uses": invite.max_uses }),
        );
        match state.store.create_invite(&invite, Some(&audit)).await {
            Ok(()) => break,
            Err(StoreError::Conflict(_)) if attempts < CODE_ATTEMPTS => {}
            Err(StoreError::Conflict(clash)) => {
                // Astronomically unlikely with a working random source: say so loudly.
                return Err(ApiError::internal(&StoreError::Conflict(clash)));
            }
            // The server was deleted since the membership check.
            Err(StoreError::NotFound) => return Err(access::server_not_found()),
            Err(err) => return Err(err.into()),
        }
    }
    state.events.dispatch(
        Audience::ServerPermission(server, Permissions::CREATE_INVITES),
        Event::InviteCreate,
        &invite,
    );
    Ok((StatusCode::CREATED, axum::Json(invite)).into_response())
}

#[utoipa::path(
    delete,
    path = "/servers/{id}/invites/{invite_id}",
    tag = "servers",
    description = "Deletes an invite of the server.",
    security(("bearer" = []), ("bot_token" = [])),
    params(
        ("id" = ServerId, Path, description = "The server."),
        ("invite_id" = InviteId, Path, description = "The invite."),
    ),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, description = "The caller lacks CREATE_INVITES.", body = ErrorBody),
        (status = 404, description = "No such server, the caller is not a member, or the \
                                      server has no such invite.", body = ErrorBody),
    ),
)]
async fn delete_invite(
    State(state): State<AppState>,
    principal: Principal,
    Path((server, invite)): Path<(ServerId, InviteId)>,
) -> ApiResult<StatusCode> {
    invite_manager(&state, server, &principal)?;
    let audit = super::audit::record(
        server,
        principal.id(),
        "invite_revoke",
        "invite",
        invite.get(),
        serde_json::json!({}),
    );
    if !state
        .store
        .delete_invite(server, invite, Some(&audit))
        .await?
    {
        return Err(ApiError::not_found("Invite not found"));
    }
    let deleted = InviteDelete {
        server_id: server,
        invite_id: invite,
    };
    state.events.dispatch(
        Audience::ServerPermission(server, Permissions::CREATE_INVITES),
        Event::InviteDelete,
        &deleted,
    );
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/invites/{code}",
    tag = "servers",
    description = "What a usable invite leads to, for any signed-in user.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("code" = String, Path, description = "The invite code (case-sensitive).")),
    responses(
        (status = 200, description = "The preview.", body = InvitePreview),
        (status = 404, description = "No such code, or the invite expired or is used up.", body = ErrorBody),
    ),
)]
async fn preview_invite(
    State(state): State<AppState>,
    _principal: Principal,
    Path(code): Path<String>,
) -> ApiResult<axum::Json<InvitePreview>> {
    let preview = state
        .store
        .invite_preview(&code, Timestamp::now())
        .await?
        .ok_or_else(|| ApiError::not_found("Invite not found or has expired"))?;
    Ok(axum::Json(preview))
}

#[utoipa::path(
    post,
    path = "/invites/{code}/accept",
    tag = "servers",
    description = "Joins the invite's server (public or not), using the invite once.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("code" = String, Path, description = "The invite code (case-sensitive).")),
    responses(
        (status = 201, description = "Joined.", body = InviteAccepted),
        (status = 400, description = "The invite expired or is used up (also when a \
                                      concurrent accept took its last use).", body = ErrorBody),
        (status = 403, description = "The caller is banned from the server.", body = ErrorBody),
        (status = 404, description = "No such code.", body = ErrorBody),
        (status = 409, description = "Already a member.", body = ErrorBody),
    ),
)]
async fn accept_invite(
    State(state): State<AppState>,
    principal: Principal,
    Path(code): Path<String>,
) -> ApiResult<Response> {
    let server = match state
        .store
        .accept_invite(&code, principal.id(), Timestamp::now())
        .await?
    {
        InviteAcceptance::Joined(server) => server,
        InviteAcceptance::Refused(refused) => return Err(refusal(refused)),
        InviteAcceptance::Banned(_) => {
            return Err(ApiError::forbidden("You are banned from this server"));
        }
        InviteAcceptance::AlreadyMember(_) => {
            return Err(ApiError::conflict("Already a member of this server"));
        }
    };
    // No v1 event: a join is announced to v2 sessions only, as POST /join does.
    publish_join(&state, server, &principal.user);
    let body = InviteAccepted {
        message: "Joined server".to_owned(),
        server_id: server,
    };
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}
