//! Outbound webhooks (`rest-extras.md` §9.1): `/servers/{id}/webhooks*`, for the
//! server's owner and ADMINISTRATOR holders. Delivery itself is [`crate::webhooks`].
//!
//! Concord: the test route answers 202 with `{"queued": true}` (X13) and is limited
//! to one ping per webhook per `webhooks.test_interval_secs` (X14); the cap of 10 is
//! checked in the insert's transaction (X14). Every change drops the server's entry in
//! the delivery cache.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use concord_protocol::{
    CreateWebhook, ErrorBody, ServerId, Timestamp, UpdateWebhook, UserId, WEBHOOK_EVENT_TYPES,
    Webhook, WebhookCreated, WebhookList, WebhookTestQueued,
};
use concord_store::{WebhookPatch, WebhookRecord};
use rand::RngCore;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    access,
    auth::Principal,
    bus::Cached,
    error::{ApiError, ApiResult},
    extract::{Json, Path},
    perms::Permissions,
    state::AppState,
    webhooks::PingRefusal,
};

/// Webhooks per server.
pub const MAX_WEBHOOKS: i64 = 10;
/// Longest URL, in bytes.
const MAX_URL_BYTES: usize = 2000;

/// The webhook routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(test_webhook))
}

/// Member (404 otherwise, as for a missing server), then owner or ADMINISTRATOR (403).
fn manager(state: &AppState, server: ServerId, user: UserId) -> ApiResult<()> {
    access::server_member(state, server, user)?;
    let may = state
        .directory
        .server_permissions(server, user)
        .is_some_and(|p| p.contains(Permissions::ADMINISTRATOR));
    if may {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "You need the Administrator permission to manage webhooks",
        ))
    }
}

fn webhook_not_found() -> ApiError {
    ApiError::not_found("Webhook not found")
}

/// The webhook `id` of `server`.
async fn existing(state: &AppState, server: ServerId, id: uuid::Uuid) -> ApiResult<WebhookRecord> {
    state
        .store
        .webhook(server, id)
        .await?
        .ok_or_else(webhook_not_found)
}

/// The name, trimmed: 1–100 characters.
fn check_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    if (1..=100).contains(&name.chars().count()) {
        Ok(name.to_owned())
    } else {
        Err(ApiError::bad_request(
            "Webhook name must be 1–100 characters",
        ))
    }
}

/// `http://` or `https://` in any case, at most 2000 bytes; kept as sent.
fn check_url(url: &str) -> ApiResult<()> {
    let scheme_ok = ["http://", "https://"].iter().any(|scheme| {
        url.get(..scheme.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(scheme))
    });
    if !scheme_ok {
        return Err(ApiError::bad_request(
            "Webhook URL must use http:// or https://",
        ));
    }
    if url.len() > MAX_URL_BYTES {
        return Err(ApiError::bad_request(
            "Webhook URL must be ≤2000 characters",
        ));
    }
    Ok(())
}

/// At least one type, each a known one; each kept once, in the order given.
fn check_event_types(types: &[String]) -> ApiResult<Vec<String>> {
    if types.is_empty() {
        return Err(ApiError::bad_request(
            "event_types must contain at least one event",
        ));
    }
    let mut kept: Vec<String> = Vec::with_capacity(types.len().min(WEBHOOK_EVENT_TYPES.len()));
    for t in types {
        if !WEBHOOK_EVENT_TYPES.contains(&t.as_str()) {
            return Err(ApiError::bad_request(format!(
                "Unknown event type '{t}'. Valid types: {}",
                WEBHOOK_EVENT_TYPES.join(", ")
            )));
        }
        if !kept.contains(t) {
            kept.push(t.clone());
        }
    }
    Ok(kept)
}

/// 32 random bytes as 64 lowercase hex digits.
fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[utoipa::path(
    get,
    path = "/servers/{id}/webhooks",
    tag = "servers",
    description = "The server's webhooks, oldest first (owner or ADMINISTRATOR). Secrets \
                   are never listed.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = ServerId, Path, description = "The server.")),
    responses(
        (status = 200, description = "The webhooks.", body = WebhookList),
        (status = 401, description = "No valid credentials.", body = ErrorBody),
        (status = 403, description = "The caller is neither the owner nor an ADMINISTRATOR.", body = ErrorBody),
        (status = 404, description = "No such server, or the caller is not a member.", body = ErrorBody),
    ),
)]
async fn list_webhooks(
    State(state): State<AppState>,
    principal: Principal,
    Path(server): Path<ServerId>,
) -> ApiResult<axum::Json<WebhookList>> {
    manager(&state, server, principal.id())?;
    let rows = state.store.webhooks(server).await?;
    Ok(axum::Json(WebhookList {
        webhooks: rows.into_iter().map(WebhookRecord::into_dto).collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/servers/{id}/webhooks",
    tag = "servers",
    description = "Creates a webhook (owner or ADMINISTRATOR), enabled. The answer carries \
                   its signing secret, shown this once. Refusals come in this order: name, \
                   URL scheme, URL length, event types, the limit of 10 per server.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = ServerId, Path, description = "The server.")),
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "The webhook and its secret.", body = WebhookCreated),
        (status = 400, description = "The name is not 1-100 characters once trimmed; the URL \
                                      does not start with http:// or https:// or is over 2000 \
                                      bytes; `event_types` is empty or names an unknown type; \
                                      or the server already has 10 webhooks.", body = ErrorBody),
        (status = 401, description = "No valid credentials.", body = ErrorBody),
        (status = 403, description = "The caller is neither the owner nor an ADMINISTRATOR.", body = ErrorBody),
        (status = 404, description = "No such server, or the caller is not a member.", body = ErrorBody),
        (status = 422, description = "A field is missing or of the wrong type.", body = ErrorBody),
    ),
)]
async fn create_webhook(
    State(state): State<AppState>,
    principal: Principal,
    Path(server): Path<ServerId>,
    Json(body): Json<CreateWebhook>,
) -> ApiResult<Response> {
    let user = principal.id();
    manager(&state, server, user)?;
    let name = check_name(&body.name)?;
    check_url(&body.url)?;
    let event_types = check_event_types(&body.event_types)?;
    let now = Timestamp::now();
    let record = WebhookRecord {
        id: uuid::Uuid::now_v7(),
        server_id: server,
        created_by: user,
        name,
        url: body.url,
        secret: new_secret(),
        event_types,
        enabled: true,
        delivery_failures: 0,
        last_used_at: None,
        created_at: now,
        updated_at: now,
    };
    if !state.store.create_webhook(&record, MAX_WEBHOOKS).await? {
        return Err(ApiError::bad_request("Servers are limited to 10 webhooks"));
    }
    state.events.forget(Cached::Webhooks { server });
    let secret = record.secret.clone();
    let created = WebhookCreated {
        webhook: record.into_dto(),
        secret,
    };
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}

#[utoipa::path(
    get,
    path = "/servers/{id}/webhooks/{webhook_id}",
    tag = "servers",
    description = "One webhook of the server (owner or ADMINISTRATOR).",
    security(("bearer" = []), ("bot_token" = [])),
    params(
        ("id" = ServerId, Path, description = "The server."),
        ("webhook_id" = uuid::Uuid, Path, description = "The webhook."),
    ),
    responses(
        (status = 200, description = "The webhook.", body = Webhook),
        (status = 401, description = "No valid credentials.", body = ErrorBody),
        (status = 403, description = "The caller is neither the owner nor an ADMINISTRATOR.", body = ErrorBody),
        (status = 404, description = "No such server, the caller is not a member, or no such \
                                      webhook in this server.", body = ErrorBody),
    ),
)]
async fn get_webhook(
    State(state): State<AppState>,
    principal: Principal,
    Path((server, id)): Path<(ServerId, uuid::Uuid)>,
) -> ApiResult<axum::Json<Webhook>> {
    manager(&state, server, principal.id())?;
    Ok(axum::Json(existing(&state, server, id).await?.into_dto()))
}

#[utoipa::path(
    patch,
    path = "/servers/{id}/webhooks/{webhook_id}",
    tag = "servers",
    description = "Changes a webhook (owner or ADMINISTRATOR): the fields sent, with the \
                   rules of creation; null or absent leaves a field as it is.",
    security(("bearer" = []), ("bot_token" = [])),
    params(
        ("id" = ServerId, Path, description = "The server."),
        ("webhook_id" = uuid::Uuid, Path, description = "The webhook."),
    ),
    request_body = UpdateWebhook,
    responses(
        (status = 200, description = "The webhook as changed.", body = Webhook),
        (status = 400, description = "A field breaks a rule of creation.", body = ErrorBody),
        (status = 401, description = "No valid credentials.", body = ErrorBody),
        (status = 403, description = "The caller is neither the owner nor an ADMINISTRATOR.", body = ErrorBody),
        (status = 404, description = "No such server, the caller is not a member, or no such \
                                      webhook in this server.", body = ErrorBody),
        (status = 422, description = "A field is of the wrong type.", body = ErrorBody),
    ),
)]
async fn update_webhook(
    State(state): State<AppState>,
    principal: Principal,
    Path((server, id)): Path<(ServerId, uuid::Uuid)>,
    Json(body): Json<UpdateWebhook>,
) -> ApiResult<axum::Json<Webhook>> {
    manager(&state, server, principal.id())?;
    existing(&state, server, id).await?;
    let name = body.name.as_deref().map(check_name).transpose()?;
    if let Some(url) = &body.url {
        check_url(url)?;
    }
    let event_types = body
        .event_types
        .as_deref()
        .map(check_event_types)
        .transpose()?;
    let patch = WebhookPatch {
        name,
        url: body.url,
        event_types,
        enabled: body.enabled,
    };
    let updated = state
        .store
        .update_webhook(server, id, &patch, Timestamp::now())
        .await?
        .ok_or_else(webhook_not_found)?;
    state.events.forget(Cached::Webhooks { server });
    Ok(axum::Json(updated.into_dto()))
}

#[utoipa::path(
    delete,
    path = "/servers/{id}/webhooks/{webhook_id}",
    tag = "servers",
    description = "Deletes a webhook (owner or ADMINISTRATOR).",
    security(("bearer" = []), ("bot_token" = [])),
    params(
        ("id" = ServerId, Path, description = "The server."),
        ("webhook_id" = uuid::Uuid, Path, description = "The webhook."),
    ),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, description = "No valid credentials.", body = ErrorBody),
        (status = 403, description = "The caller is neither the owner nor an ADMINISTRATOR.", body = ErrorBody),
        (status = 404, description = "No such server, the caller is not a member, or no such \
                                      webhook in this server.", body = ErrorBody),
    ),
)]
async fn delete_webhook(
    State(state): State<AppState>,
    principal: Principal,
    Path((server, id)): Path<(ServerId, uuid::Uuid)>,
) -> ApiResult<StatusCode> {
    manager(&state, server, principal.id())?;
    if !state.store.delete_webhook(server, id).await? {
        return Err(webhook_not_found());
    }
    state.events.forget(Cached::Webhooks { server });
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/servers/{id}/webhooks/{webhook_id}/test",
    tag = "servers",
    description = "Queues a `ping` delivery to the webhook, enabled or not (owner or \
                   ADMINISTRATOR); at most one per webhook every few seconds \
                   (`webhooks.test_interval_secs`, 5 by default).",
    security(("bearer" = []), ("bot_token" = [])),
    params(
        ("id" = ServerId, Path, description = "The server."),
        ("webhook_id" = uuid::Uuid, Path, description = "The webhook."),
    ),
    responses(
        (status = 202, description = "The ping is queued.", body = WebhookTestQueued),
        (status = 401, description = "No valid credentials.", body = ErrorBody),
        (status = 403, description = "The caller is neither the owner nor an ADMINISTRATOR.", body = ErrorBody),
        (status = 404, description = "No such server, the caller is not a member, or no such \
                                      webhook in this server.", body = ErrorBody),
        (status = 429, description = "This webhook was pinged moments ago; `Retry-After` \
                                      says when to try again.", body = ErrorBody),
        (status = 503, description = "The delivery queue is full.", body = ErrorBody),
    ),
)]
async fn test_webhook(
    State(state): State<AppState>,
    principal: Principal,
    Path((server, id)): Path<(ServerId, uuid::Uuid)>,
) -> ApiResult<Response> {
    manager(&state, server, principal.id())?;
    let hook = existing(&state, server, id).await?;
    let server_name = state
        .store
        .server(server)
        .await?
        .map(|dto| dto.server.name)
        .ok_or_else(access::server_not_found)?;
    match state.webhooks.ping(&hook, &server_name) {
        Ok(()) => Ok((
            StatusCode::ACCEPTED,
            axum::Json(WebhookTestQueued { queued: true }),
        )
            .into_response()),
        Err(PingRefusal::TooSoon(secs)) => Err(ApiError::too_many_requests(Some(secs))),
        Err(PingRefusal::QueueFull) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The webhook delivery queue is full; try again later",
        )
        .with_retry_after(5)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_counted_in_chars() {
        assert_eq!(check_name("  hook ").unwrap(), "hook");
        assert!(check_name("   ").is_err());
        assert!(check_name(&"é".repeat(100)).is_ok());
        assert!(check_name(&"a".repeat(101)).is_err());
    }

    #[test]
    fn urls_need_an_http_scheme_in_any_case_and_at_most_2000_bytes() {
        assert!(check_url("HTTPS://example.org/x").is_ok());
        assert!(check_url("http://example.org").is_ok());
        assert!(check_url("ftp://example.org").is_err());
        assert!(check_url("http:/example.org").is_err());
        assert!(check_url("ht").is_err());
        let long = format!("https://example.org/{}", "a".repeat(2000 - 20));
        assert_eq!(long.len(), 2000);
        assert!(check_url(&long).is_ok());
        assert!(check_url(&format!("{long}a")).is_err());
    }

    #[test]
    fn event_types_are_known_and_kept_once() {
        let types = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            check_event_types(&types(&[
                "message.deleted",
                "member.left",
                "message.deleted"
            ]))
            .unwrap(),
            types(&["message.deleted", "member.left"])
        );
        assert!(check_event_types(&[]).is_err());
        let err = check_event_types(&types(&["message.created", "nope"])).unwrap_err();
        assert_eq!(
            err.message(),
            "Unknown event type 'nope'. Valid types: message.created, message.updated, \
             message.deleted, member.joined, member.left"
        );
    }

    #[test]
    fn secrets_are_64_lowercase_hex_digits() {
        let secret = new_secret();
        assert_eq!(secret.len(), 64);
        assert!(
            secret
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_ne!(secret, new_secret());
    }
}
