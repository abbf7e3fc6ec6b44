//! Routes: servers and their members (`rest.md` §7.3).

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use concord_protocol::{
    ChannelId, CreateServer, ErrorBody, Event, Member, MemberChange, MessageBody, Server,
    ServerDelete, ServerDto, ServerId, Timestamp, UpdateServer,
};
use concord_store::{NewChannel, ServerPatch, UserRecord};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    access,
    auth::Principal,
    bus::Audience,
    directory::DirectoryChange,
    error::{ApiError, ApiResult},
    extract::{Json, Path},
    presence,
    state::AppState,
    views,
};

/// Longest server name, in chars.
const MAX_NAME_CHARS: usize = 100;
/// How many servers browsing shows (no paging).
const BROWSE_LIMIT: i64 = 50;

/// The servers routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list_mine))
        .routes(routes!(browse))
        .routes(routes!(get_one, update, remove))
        .routes(routes!(join))
        .routes(routes!(leave))
        .routes(routes!(members))
}

fn check_name(name: &str) -> ApiResult<()> {
    let len = name.chars().count();
    if (1..=MAX_NAME_CHARS).contains(&len) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "Server name must be 1-100 characters",
        ))
    }
}

/// First "is it a URL at all", then "is it an http(s) one" (`rest.md` §7.3 lists both).
fn check_icon_url(url: &str) -> ApiResult<()> {
    let looks_like_url = url.split_once("://").is_some_and(|(scheme, rest)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            && !rest.is_empty()
            && !rest.starts_with('/')
    }) && !url.chars().any(char::is_whitespace);
    if !looks_like_url {
        return Err(ApiError::bad_request("icon_url is not a valid URL"));
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "icon_url must start with http:// or https://",
        ))
    }
}

#[utoipa::path(
    post,
    path = "/servers",
    tag = "servers",
    description = "Creates a server owned by the caller, who becomes its first member. With \
                   `template_id`, the server starts with the template's channels (see \
                   `GET /server-templates`), created in the same transaction.",
    security(("bearer" = []), ("bot_token" = [])),
    request_body = CreateServer,
    responses(
        (status = 201, description = "The new server.", body = ServerDto),
        (status = 400, description = "The name is not 1-100 characters, the icon URL is not an \
                                      http(s) URL, or the template does not exist.", body = ErrorBody),
    ),
)]
async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<CreateServer>,
) -> ApiResult<Response> {
    check_name(&body.name)?;
    if let Some(url) = &body.icon_url {
        check_icon_url(url)?;
    }
    // Read before anything is written: an unknown template creates nothing.
    let template_channels = match body.template_id {
        None => Vec::new(),
        Some(id) => super::templates::channels_of(&state, id).await?,
    };
    let now = Timestamp::now();
    let server = Server {
        id: ServerId::new(),
        name: body.name,
        owner_id: principal.id(),
        icon_url: body.icon_url,
        is_public: body.is_public.unwrap_or(false),
        require_invite: body.require_invite.unwrap_or(false),
        created_at: now,
        updated_at: now,
    };
    let channels: Vec<NewChannel> = template_channels
        .into_iter()
        .map(|c| NewChannel {
            id: ChannelId::new(),
            server_id: server.id,
            name: c.name,
            kind: c.kind,
            topic: None,
            category: c.category,
            created_at: now,
        })
        .collect();
    let audit = super::audit::record(
        server.id,
        server.owner_id,
        "server_create",
        "server",
        server.id.get(),
        serde_json::json!({ "name": server.name }),
    );
    // One transaction with the audit row (with or without template channels).
    let created = state
        .store
        .create_server_with_channels(&server, &channels, Some(&audit))
        .await?;
    state.events.change(DirectoryChange::ServerCreated {
        server: server.id,
        owner: server.owner_id,
    });
    // Nobody but the owner can see the new server yet: the directory learns its
    // channels, no event is sent.
    for channel in created {
        state.events.change(DirectoryChange::ChannelCreated {
            channel: channel.id,
            server: server.id,
            kind: channel.kind,
        });
    }
    let dto = ServerDto {
        server,
        member_count: 1,
    };
    Ok((StatusCode::CREATED, axum::Json(dto)).into_response())
}

#[utoipa::path(
    get,
    path = "/servers",
    tag = "servers",
    description = "The servers the caller is a member of.",
    security(("bearer" = []), ("bot_token" = [])),
    responses(
        (status = 200, description = "The caller's servers.", body = Vec<ServerDto>),
    ),
)]
async fn list_mine(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<axum::Json<Vec<ServerDto>>> {
    Ok(axum::Json(
        state.store.servers_of_user(principal.id()).await?,
    ))
}

#[utoipa::path(
    get,
    path = "/servers/browse",
    tag = "servers",
    description = "Public servers (at most 50).",
    security(("bearer" = []), ("bot_token" = [])),
    responses(
        (status = 200, description = "Public servers.", body = Vec<ServerDto>),
    ),
)]
async fn browse(
    State(state): State<AppState>,
    _principal: Principal,
) -> ApiResult<axum::Json<Vec<ServerDto>>> {
    Ok(axum::Json(state.store.public_servers(BROWSE_LIMIT).await?))
}

#[utoipa::path(
    get,
    path = "/servers/{id}",
    tag = "servers",
    description = "One server the caller is a member of.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = ServerId, Path, description = "The server.")),
    responses(
        (status = 200, description = "The server.", body = ServerDto),
        (status = 404, description = "No such server, or the caller is not a member.", body = ErrorBody),
    ),
)]
async fn get_one(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<ServerId>,
) -> ApiResult<axum::Json<ServerDto>> {
    access::server_member(&state, id, principal.id())?;
    let server = state
        .store
        .server(id)
        .await?
        .ok_or_else(access::server_not_found)?;
    Ok(axum::Json(server))
}

#[utoipa::path(
    patch,
    path = "/servers/{id}",
    tag = "servers",
    description = "Changes a server (owner only); absent fields stay as they are.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = ServerId, Path, description = "The server.")),
    request_body = UpdateServer,
    responses(
        (status = 200, description = "The updated server.", body = ServerDto),
        (status = 400, description = "The name is not 1-100 characters, or the icon URL is \
                                      not an http(s) URL.", body = ErrorBody),
        (status = 403, description = "The caller is not the owner.", body = ErrorBody),
        (status = 404, description = "No such server.", body = ErrorBody),
    ),
)]
async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<ServerId>,
    Json(body): Json<UpdateServer>,
) -> ApiResult<axum::Json<ServerDto>> {
    if let Some(name) = &body.name {
        check_name(name)?;
    }
    if let Some(url) = &body.icon_url {
        check_icon_url(url)?;
    }
    access::server_owner(&state, id, principal.id())?;
    let audit = super::audit::record(
        id,
        principal.id(),
        "server_update",
        "server",
        id.get(),
        serde_json::json!({
            "name": body.name,
            "icon_url": body.icon_url,
            "is_public": body.is_public,
        }),
    );
    let patch = ServerPatch {
        name: body.name,
        icon_url: body.icon_url,
        is_public: body.is_public,
        require_invite: body.require_invite,
    };
    let server = state
        .store
        .update_server(id, &patch, Timestamp::now(), Some(&audit))
        .await?
        .ok_or_else(access::server_not_found)?;
    state
        .events
        .dispatch(Audience::Server(id), Event::ServerUpdate, &server);
    Ok(axum::Json(server))
}

#[utoipa::path(
    delete,
    path = "/servers/{id}",
    tag = "servers",
    description = "Deletes a server with its channels, messages and custom emojis (owner \
                   only).",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = ServerId, Path, description = "The server.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, description = "The caller is not the owner.", body = ErrorBody),
        (status = 404, description = "No such server.", body = ErrorBody),
    ),
)]
async fn remove(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<ServerId>,
) -> ApiResult<StatusCode> {
    access::server_owner(&state, id, principal.id())?;
    let name = state
        .store
        .server(id)
        .await?
        .map(|found| found.server.name)
        .ok_or_else(access::server_not_found)?;
    let audit = super::audit::record(
        id,
        principal.id(),
        "server_delete",
        "server",
        id.get(),
        serde_json::json!({ "name": name }),
    );
    if !delete_and_announce(&state, id, Some(&audit)).await? {
        return Err(access::server_not_found());
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes server `id` and everything in it, tells the directory and (v2) the members,
/// and deletes its emoji images; false when there is no such server. Shared by the
/// owner's delete (which is audited) and the instance admin's (which is not).
///
/// # Errors
/// 500 when the database fails.
pub(crate) async fn delete_and_announce(
    state: &AppState,
    id: ServerId,
    audit: Option<&concord_store::AuditRecord>,
) -> ApiResult<bool> {
    let Some(emojis) = state.store.delete_server(id, audit).await? else {
        return Ok(false);
    };
    // Channels, voice states and memberships went with the rows; v1 announces nothing.
    // v2 tells every member, as they were before the directory forgets the server.
    let members = state.directory.members(id);
    state
        .events
        .change(DirectoryChange::ServerDeleted { server: id });
    state.events.dispatch(
        Audience::Users(members),
        Event::ServerDelete,
        &ServerDelete { id, server_id: id },
    );
    // The emoji rows went with the server; their images go now that nothing names them.
    super::emojis::delete_files(state, &emojis).await;
    // So did the attachment rows; their files go too (X4).
    crate::attachments::purge_files(state).await;
    Ok(true)
}

#[utoipa::path(
    post,
    path = "/servers/{id}/join",
    tag = "servers",
    description = "Joins a public server that needs no invite.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = ServerId, Path, description = "The server.")),
    responses(
        (status = 201, description = "Joined.", body = MessageBody),
        (status = 403, description = "The server requires an invite, or the caller is banned.", body = ErrorBody),
        (status = 404, description = "No such server, or it is private.", body = ErrorBody),
        (status = 409, description = "Already a member.", body = ErrorBody),
    ),
)]
async fn join(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<ServerId>,
) -> ApiResult<Response> {
    let user = principal.id();
    let server = state
        .store
        .server(id)
        .await?
        .ok_or_else(access::server_not_found)?;
    if !server.server.is_public {
        // Private servers are not joinable and not admitted to exist.
        return Err(access::server_not_found());
    }
    if server.server.require_invite {
        return Err(ApiError::forbidden("This server requires an invite"));
    }
    if state.store.is_banned(id, user).await? {
        return Err(ApiError::forbidden("You are banned from this server"));
    }
    if state.directory.is_member(id, user) {
        return Err(ApiError::conflict("Already a member of this server"));
    }
    state
        .store
        .add_member(id, user, Timestamp::now())
        .await
        .map_err(|err| match err {
            concord_store::StoreError::Conflict(_) => {
                ApiError::conflict("Already a member of this server")
            }
            other => other.into(),
        })?;
    publish_join(&state, id, &principal.user);
    let body = MessageBody {
        message: format!("Joined {}", server.server.name),
    };
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

#[utoipa::path(
    delete,
    path = "/servers/{id}/leave",
    tag = "servers",
    description = "Leaves a server (and its voice channel, if the caller is in one).",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = ServerId, Path, description = "The server.")),
    responses(
        (status = 204, description = "Left."),
        (status = 400, description = "The owner cannot leave their server.", body = ErrorBody),
        (status = 404, description = "No such server, or the caller is not a member.", body = ErrorBody),
    ),
)]
async fn leave(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<ServerId>,
) -> ApiResult<StatusCode> {
    let user = principal.id();
    access::server_member(&state, id, user)?;
    if state.directory.owner(id) == Some(user) {
        return Err(ApiError::bad_request("The owner cannot leave their server"));
    }
    if !state.store.remove_member(id, user, None).await? {
        return Err(access::server_not_found());
    }
    publish_removal(&state, id, &principal.user).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Publishes a membership the store just added (a join, an accepted invite): the
/// directory learns it, then v2 sessions of the members, the joiner's included, get
/// `MEMBER_JOIN` (v1 announces no join).
pub(crate) fn publish_join(state: &AppState, server: ServerId, user: &UserRecord) {
    state.events.change(DirectoryChange::MemberAdded {
        server,
        user: user.id,
    });
    // After the directory knows the member, so that the joiner's sessions get it too.
    let joined = MemberChange {
        server_id: server,
        user: views::public_profile(state, user),
    };
    state
        .events
        .dispatch(Audience::Server(server), Event::MemberJoin, &joined);
}

/// Publishes a membership the store just removed (a leave, a kick, a ban): the user
/// leaves this server's voice channel if they are in one, the directory forgets the
/// membership (their sessions stop receiving the server's events at once), and v2
/// sessions of the members as they were, the user's included, get `MEMBER_LEAVE`.
pub(crate) async fn publish_removal(state: &AppState, server: ServerId, user: &UserRecord) {
    // Concord drops the user from this server's voice only (the reference leaves a
    // ghost state behind on leave, and drops any voice state on kick and ban). Done
    // before the directory forgets the membership, so their own sessions learn it too.
    let in_this_server = state
        .directory
        .voice_channel(user.id)
        .and_then(|channel| state.directory.channel(channel))
        .is_some_and(|facts| facts.server == server);
    if in_this_server {
        presence::leave_voice(state, user.id).await;
    }
    // The members as they were, the user included, so that all of them learn it.
    let members = state.directory.members(server);
    state.events.change(DirectoryChange::MemberRemoved {
        server,
        user: user.id,
    });
    let left = MemberChange {
        server_id: server,
        user: views::public_profile(state, user),
    };
    state
        .events
        .dispatch(Audience::Users(members), Event::MemberLeave, &left);
}

#[utoipa::path(
    get,
    path = "/servers/{id}/members",
    tag = "servers",
    description = "The members of a server the caller belongs to.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = ServerId, Path, description = "The server.")),
    responses(
        (status = 200, description = "The members.", body = Vec<Member>),
        (status = 404, description = "No such server, or the caller is not a member.", body = ErrorBody),
    ),
)]
async fn members(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<ServerId>,
) -> ApiResult<axum::Json<Vec<Member>>> {
    access::server_member(&state, id, principal.id())?;
    let members = state.store.members(id).await?;
    Ok(axum::Json(
        members
            .into_iter()
            .map(|m| views::member(&state, m))
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icon_urls_need_a_url_then_http() {
        assert!(check_icon_url("https://example.com/a.png").is_ok());
        assert!(check_icon_url("http://example.com").is_ok());
        let not_url = check_icon_url("not a url").unwrap_err();
        assert_eq!(not_url.message(), "icon_url is not a valid URL");
        let ftp = check_icon_url("ftp://example.com/a.png").unwrap_err();
        assert_eq!(
            ftp.message(),
            "icon_url must start with http:// or https://"
        );
        assert!(check_icon_url("").is_err());
        assert!(check_icon_url("https://").is_err());
    }

    #[test]
    fn names_count_chars_not_bytes() {
        assert!(check_name(&"é".repeat(100)).is_ok());
        assert!(check_name(&"a".repeat(101)).is_err());
        assert!(check_name("").is_err());
    }
}
