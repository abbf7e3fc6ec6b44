//! Routes: roles and member roles (`rest.md` §7.12), under the server-level
//! MANAGE_ROLES bit and the role hierarchy of §5.2.
//!
//! Every change is committed first, then published: the directory change (through
//! [`visibility::publish_permission_change`], which also tells v2 sessions about
//! channels they gained or lost) before the v1 event, so that whatever is fanned out
//! next already sees the new permissions. Nothing is published for a change that
//! changed nothing (`gateway.md` D14).

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use concord_protocol::{
    CreateRole, ErrorBody, Event, MemberRoleChange, Role, RoleDelete, RoleId, ServerId, Timestamp,
    UpdateRole, UserId,
};
use concord_store::RolePatch;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    access,
    auth::Principal,
    bus::Audience,
    directory::DirectoryChange,
    error::{ApiError, ApiResult},
    extract::{Json, Path},
    perms::Permissions,
    state::AppState,
    visibility,
};

/// Longest role name, in bytes (the reference counts bytes, not characters).
const MAX_NAME_BYTES: usize = 100;

/// The roles routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_roles, create_role))
        .routes(routes!(update_role, delete_role))
        .routes(routes!(add_member_role, remove_member_role))
}

/// A role name is 1–100 bytes.
fn check_name(name: &str) -> ApiResult<()> {
    if (1..=MAX_NAME_BYTES).contains(&name.len()) {
        Ok(())
    } else {
        Err(ApiError::bad_request("Role name must be 1-100 bytes"))
    }
}

/// Permission bits are 0..=32767 (`rest.md` §5.1).
fn check_permissions(bits: i64) -> ApiResult<()> {
    if (0..=Permissions::ALL.0).contains(&bits) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "Permissions must be between 0 and 32767",
        ))
    }
}

fn role_not_found() -> ApiError {
    ApiError::not_found("Role not found")
}

fn member_not_found() -> ApiError {
    ApiError::not_found("Member not found")
}

/// What the hierarchy rules need to know about the member acting.
#[derive(Debug, Clone, Copy)]
struct Actor {
    owner: bool,
    /// Server-level bits (all of them for the owner and administrators).
    permissions: Permissions,
    /// Highest position among the actor's roles, 0 without roles.
    highest: i64,
}

impl Actor {
    fn of(state: &AppState, server: ServerId, user: UserId) -> Self {
        let directory = &state.directory;
        Self {
            owner: directory.owner(server) == Some(user),
            permissions: directory
                .server_permissions(server, user)
                .unwrap_or_default(),
            highest: directory.highest_position(server, user),
        }
    }

    /// The server-level MANAGE_ROLES bit (owner and administrators hold every bit).
    fn require_manage_roles(self) -> ApiResult<()> {
        if self.permissions.contains(Permissions::MANAGE_ROLES) {
            Ok(())
        } else {
            Err(ApiError::forbidden("You need the Manage Roles permission"))
        }
    }

    /// A non-owner acts only on positions strictly below their highest role
    /// (ADMINISTRATOR does not exempt from this).
    fn require_below(self, position: i64, refusal: &str) -> ApiResult<()> {
        if self.owner || position < self.highest {
            Ok(())
        } else {
            Err(ApiError::forbidden(refusal))
        }
    }

    /// A non-owner without ADMINISTRATOR grants only bits one of their own roles has.
    fn require_may_grant(self, bits: i64) -> ApiResult<()> {
        if self.owner
            || self.permissions.contains(Permissions::ADMINISTRATOR)
            || bits & !self.permissions.0 == 0
        {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "Cannot grant permissions you do not have",
            ))
        }
    }
}

/// The role `id`, which must belong to `server`.
async fn role_of_server(state: &AppState, server: ServerId, id: RoleId) -> ApiResult<Role> {
    state
        .store
        .role(id)
        .await?
        .filter(|role| role.server_id == server)
        .ok_or_else(role_not_found)
}

/// One above the highest role of the server, 1 for its first role.
async fn default_position(state: &AppState, server: ServerId) -> ApiResult<i64> {
    let roles = state.store.roles_of_servers(&[server]).await?;
    Ok(roles
        .iter()
        .map(|role| role.position)
        .max()
        .map_or(1, |top| top.saturating_add(1)))
}

fn upserted(role: &Role) -> DirectoryChange {
    DirectoryChange::RoleUpserted {
        role: role.id,
        server: role.server_id,
        permissions: role.permissions,
        position: role.position,
    }
}

#[utoipa::path(
    get,
    path = "/servers/{id}/roles",
    tag = "servers",
    description = "The roles of a server the caller belongs to, highest position first.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = ServerId, Path, description = "The server.")),
    responses(
        (status = 200, description = "The roles.", body = Vec<Role>),
        (status = 404, description = "No such server, or the caller is not a member.", body = ErrorBody),
    ),
)]
async fn list_roles(
    State(state): State<AppState>,
    principal: Principal,
    Path(server): Path<ServerId>,
) -> ApiResult<axum::Json<Vec<Role>>> {
    access::server_member(&state, server, principal.id())?;
    Ok(axum::Json(state.store.roles_of_servers(&[server]).await?))
}

#[utoipa::path(
    post,
    path = "/servers/{id}/roles",
    tag = "servers",
    description = "Creates a role (MANAGE_ROLES). Without `position` it goes one above the \
                   highest role. A caller other than the owner may only create roles below \
                   their own highest role (a defaulted position included), and without \
                   ADMINISTRATOR only with bits one of their roles has.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = ServerId, Path, description = "The server.")),
    request_body = CreateRole,
    responses(
        (status = 201, description = "The new role.", body = Role),
        (status = 400, description = "The name is not 1-100 bytes, or the permissions are \
                                      outside 0..=32767.", body = ErrorBody),
        (status = 403, description = "The caller lacks MANAGE_ROLES, the position is at or \
                                      above the caller's highest role, or the role would \
                                      grant bits the caller lacks.", body = ErrorBody),
        (status = 404, description = "No such server, or the caller is not a member.", body = ErrorBody),
    ),
)]
async fn create_role(
    State(state): State<AppState>,
    principal: Principal,
    Path(server): Path<ServerId>,
    Json(body): Json<CreateRole>,
) -> ApiResult<Response> {
    let user = principal.id();
    access::server_member(&state, server, user)?;
    let actor = Actor::of(&state, server, user);
    actor.require_manage_roles()?;
    check_name(&body.name)?;
    let permissions = body.permissions.unwrap_or(0);
    check_permissions(permissions)?;
    let position = match body.position {
        Some(position) => position,
        // Concord (R6): the default lands above everyone, so the hierarchy rule
        // applies to it as to an explicit one.
        None => default_position(&state, server).await?,
    };
    actor.require_below(
        position,
        "Cannot create a role at or above your highest role",
    )?;
    actor.require_may_grant(permissions)?;
    let role = Role {
        id: RoleId::new(),
        server_id: server,
        name: body.name,
        permissions,
        color: body.color,
        position,
        created_at: Timestamp::now(),
    };
    let audit = super::audit::record(
        server,
        user,
        "role_create",
        "role",
        role.id.get(),
        serde_json::json!({ "name": role.name, "permissions": role.permissions }),
    );
    state
        .store
        .create_role_audited(&role, &audit)
        .await
        .map_err(|err| match err {
            // The server went away since the membership check.
            concord_store::StoreError::NotFound => access::server_not_found(),
            other => other.into(),
        })?;
    visibility::publish_permission_change(&state, upserted(&role)).await;
    state
        .events
        .dispatch(Audience::Server(server), Event::RoleCreate, &role);
    Ok((StatusCode::CREATED, axum::Json(role)).into_response())
}

#[utoipa::path(
    patch,
    path = "/servers/{id}/roles/{role_id}",
    tag = "servers",
    description = "Changes a role (MANAGE_ROLES); absent or null fields stay as they are. A \
                   caller other than the owner may only edit roles below their own highest \
                   role, not move one to or above it, and without ADMINISTRATOR not give it \
                   bits none of their roles has. A patch that changes nothing is answered \
                   without an event.",
    security(("bearer" = []), ("bot_token" = [])),
    params(
        ("id" = ServerId, Path, description = "The server."),
        ("role_id" = RoleId, Path, description = "The role, of that server."),
    ),
    request_body = UpdateRole,
    responses(
        (status = 200, description = "The role as it is now.", body = Role),
        (status = 400, description = "The name is not 1-100 bytes, or the permissions are \
                                      outside 0..=32767.", body = ErrorBody),
        (status = 403, description = "The caller lacks MANAGE_ROLES, the role or its new \
                                      position is at or above the caller's highest role, or \
                                      the role would grant bits the caller lacks.", body = ErrorBody),
        (status = 404, description = "No such server or role, or the caller is not a member.", body = ErrorBody),
    ),
)]
async fn update_role(
    State(state): State<AppState>,
    principal: Principal,
    Path((server, id)): Path<(ServerId, RoleId)>,
    Json(body): Json<UpdateRole>,
) -> ApiResult<axum::Json<Role>> {
    let user = principal.id();
    access::server_member(&state, server, user)?;
    let actor = Actor::of(&state, server, user);
    actor.require_manage_roles()?;
    let role = role_of_server(&state, server, id).await?;
    if let Some(name) = &body.name {
        check_name(name)?;
    }
    if let Some(bits) = body.permissions {
        check_permissions(bits)?;
    }
    actor.require_below(
        role.position,
        "Cannot edit a role at or above your highest role",
    )?;
    if let Some(position) = body.position {
        actor.require_below(position, "Cannot move a role to or above your highest role")?;
    }
    if let Some(bits) = body.permissions {
        actor.require_may_grant(bits)?;
    }
    let touches_permissions = body.permissions.is_some() || body.position.is_some();
    let audit = super::audit::record(
        server,
        user,
        "role_update",
        "role",
        id.get(),
        serde_json::json!({ "name": body.name, "permissions": body.permissions }),
    );
    let patch = RolePatch {
        name: body.name,
        permissions: body.permissions,
        color: body.color,
        position: body.position,
    };
    let (updated, changed) = state
        .store
        .update_role(id, &patch, Some(&audit))
        .await?
        .ok_or_else(role_not_found)?;
    if changed {
        // Name and colour are not the directory's business.
        if touches_permissions {
            visibility::publish_permission_change(&state, upserted(&updated)).await;
        }
        state
            .events
            .dispatch(Audience::Server(server), Event::RoleUpdate, &updated);
    }
    Ok(axum::Json(updated))
}

#[utoipa::path(
    delete,
    path = "/servers/{id}/roles/{role_id}",
    tag = "servers",
    description = "Deletes a role with its assignments and channel overrides (MANAGE_ROLES; \
                   a caller other than the owner only below their own highest role).",
    security(("bearer" = []), ("bot_token" = [])),
    params(
        ("id" = ServerId, Path, description = "The server."),
        ("role_id" = RoleId, Path, description = "The role, of that server."),
    ),
    responses(
        (status = 204, description = "Deleted."),
        (status = 403, description = "The caller lacks MANAGE_ROLES, or the role is at or \
                                      above the caller's highest role.", body = ErrorBody),
        (status = 404, description = "No such server or role, or the caller is not a member.", body = ErrorBody),
    ),
)]
async fn delete_role(
    State(state): State<AppState>,
    principal: Principal,
    Path((server, id)): Path<(ServerId, RoleId)>,
) -> ApiResult<StatusCode> {
    let user = principal.id();
    access::server_member(&state, server, user)?;
    let actor = Actor::of(&state, server, user);
    actor.require_manage_roles()?;
    let role = role_of_server(&state, server, id).await?;
    actor.require_below(
        role.position,
        "Cannot delete a role at or above your highest role",
    )?;
    let audit = super::audit::record(
        server,
        user,
        "role_delete",
        "role",
        id.get(),
        serde_json::json!({ "name": role.name }),
    );
    if !state.store.delete_role(id, Some(&audit)).await? {
        // Deleted by someone else since the lookup.
        return Err(role_not_found());
    }
    visibility::publish_permission_change(
        &state,
        DirectoryChange::RoleDeleted { role: id, server },
    )
    .await;
    let deleted = RoleDelete {
        server_id: server,
        role_id: id,
    };
    state
        .events
        .dispatch(Audience::Server(server), Event::RoleDelete, &deleted);
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    put,
    path = "/servers/{id}/members/{user_id}/roles/{role_id}",
    tag = "servers",
    description = "Gives a member a role (MANAGE_ROLES; a caller other than the owner only \
                   roles below their own highest role). Idempotent: giving a role the member \
                   already has answers the same, without an event.",
    security(("bearer" = []), ("bot_token" = [])),
    params(
        ("id" = ServerId, Path, description = "The server."),
        ("user_id" = UserId, Path, description = "The member."),
        ("role_id" = RoleId, Path, description = "The role, of that server."),
    ),
    responses(
        (status = 204, description = "The member has the role."),
        (status = 403, description = "The caller lacks MANAGE_ROLES, or the role is at or \
                                      above the caller's highest role.", body = ErrorBody),
        (status = 404, description = "No such server, role or member, or the caller is not a \
                                      member.", body = ErrorBody),
    ),
)]
async fn add_member_role(
    State(state): State<AppState>,
    principal: Principal,
    Path((server, target, id)): Path<(ServerId, UserId, RoleId)>,
) -> ApiResult<StatusCode> {
    let user = principal.id();
    access::server_member(&state, server, user)?;
    if !state.directory.is_member(server, target) {
        return Err(member_not_found());
    }
    let actor = Actor::of(&state, server, user);
    actor.require_manage_roles()?;
    let role = role_of_server(&state, server, id).await?;
    actor.require_below(
        role.position,
        "Cannot assign a role at or above your highest role",
    )?;
    let added = state
        .store
        .assign_role_audited(
            server,
            target,
            id,
            &super::audit::record(
                server,
                user,
                "member_role_add",
                "user",
                target.get(),
                serde_json::json!({ "role_id": id, "role_name": role.name }),
            ),
        )
        .await
        .map_err(|err| match err {
            // The member left, or the role went, since the checks.
            concord_store::StoreError::NotFound => member_not_found(),
            other => other.into(),
        })?;
    if added {
        visibility::publish_permission_change(
            &state,
            DirectoryChange::MemberRoleAdded {
                server,
                user: target,
                role: id,
            },
        )
        .await;
        let change = member_role_change(&role, target);
        state
            .events
            .dispatch(Audience::Server(server), Event::MemberRoleAdd, &change);
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete,
    path = "/servers/{id}/members/{user_id}/roles/{role_id}",
    tag = "servers",
    description = "Takes a role from a member (MANAGE_ROLES; a caller other than the owner \
                   only roles below their own highest role, and never from the owner). \
                   Answers the same when the member does not have the role, without an event.",
    security(("bearer" = []), ("bot_token" = [])),
    params(
        ("id" = ServerId, Path, description = "The server."),
        ("user_id" = UserId, Path, description = "The member."),
        ("role_id" = RoleId, Path, description = "The role, of that server."),
    ),
    responses(
        (status = 204, description = "The member does not have the role."),
        (status = 403, description = "The caller lacks MANAGE_ROLES, acts on the owner without \
                                      being the owner, or the role is at or above the \
                                      caller's highest role.", body = ErrorBody),
        (status = 404, description = "No such server, role or member, or the caller is not a \
                                      member.", body = ErrorBody),
    ),
)]
async fn remove_member_role(
    State(state): State<AppState>,
    principal: Principal,
    Path((server, target, id)): Path<(ServerId, UserId, RoleId)>,
) -> ApiResult<StatusCode> {
    let user = principal.id();
    access::server_member(&state, server, user)?;
    if !state.directory.is_member(server, target) {
        return Err(member_not_found());
    }
    let actor = Actor::of(&state, server, user);
    actor.require_manage_roles()?;
    let role = role_of_server(&state, server, id).await?;
    if !actor.owner && state.directory.owner(server) == Some(target) {
        return Err(ApiError::forbidden(
            "Cannot remove roles from the server owner",
        ));
    }
    actor.require_below(
        role.position,
        "Cannot remove a role at or above your highest role",
    )?;
    let audit = super::audit::record(
        server,
        user,
        "member_role_remove",
        "user",
        target.get(),
        serde_json::json!({ "role_id": id, "role_name": role.name }),
    );
    if state
        .store
        .unassign_role(server, target, id, Some(&audit))
        .await?
    {
        visibility::publish_permission_change(
            &state,
            DirectoryChange::MemberRoleRemoved {
                server,
                user: target,
                role: id,
            },
        )
        .await;
        let change = member_role_change(&role, target);
        state
            .events
            .dispatch(Audience::Server(server), Event::MemberRoleRemove, &change);
    }
    Ok(StatusCode::NO_CONTENT)
}

fn member_role_change(role: &Role, user: UserId) -> MemberRoleChange {
    MemberRoleChange {
        server_id: role.server_id,
        user_id: user,
        role_id: role.id,
        role_name: role.name.clone(),
        role_color: role.color.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(owner: bool, permissions: i64, highest: i64) -> Actor {
        Actor {
            owner,
            permissions: Permissions(permissions),
            highest,
        }
    }

    #[test]
    fn names_count_bytes() {
        assert!(check_name(&"a".repeat(100)).is_ok());
        assert!(check_name(&"é".repeat(50)).is_ok());
        assert!(check_name(&"é".repeat(51)).is_err(), "102 bytes");
        assert!(check_name("").is_err());
    }

    #[test]
    fn permissions_are_fifteen_bits() {
        assert!(check_permissions(0).is_ok());
        assert!(check_permissions(32767).is_ok());
        assert!(check_permissions(32768).is_err());
        assert!(check_permissions(-1).is_err());
    }

    #[test]
    fn hierarchy_binds_everyone_but_the_owner() {
        let admin = actor(false, Permissions::ALL.0, 5);
        assert!(admin.require_below(4, "no").is_ok());
        assert_eq!(
            admin.require_below(5, "no").unwrap_err().status(),
            StatusCode::FORBIDDEN
        );
        assert!(admin.require_below(6, "no").is_err());
        let owner = actor(true, Permissions::ALL.0, 0);
        assert!(owner.require_below(i64::MAX, "no").is_ok());
        let roleless = actor(false, 0, 0);
        assert!(roleless.require_below(0, "no").is_err());
        assert!(roleless.require_below(-1, "no").is_ok());
    }

    #[test]
    fn only_held_bits_are_granted_without_administrator() {
        let manager = actor(
            false,
            Permissions::MANAGE_ROLES.union(Permissions::KICK_MEMBERS).0,
            3,
        );
        assert!(
            manager
                .require_may_grant(Permissions::KICK_MEMBERS.0)
                .is_ok()
        );
        assert!(manager.require_may_grant(0).is_ok());
        // The implicit member defaults are not held through a role.
        assert!(
            manager
                .require_may_grant(Permissions::VIEW_CHANNEL.0)
                .is_err()
        );
        assert!(
            actor(false, Permissions::ALL.0, 3)
                .require_may_grant(0x7FFF)
                .is_ok()
        );
        assert!(actor(true, 0, 0).require_may_grant(0x7FFF).is_ok());
    }
}
