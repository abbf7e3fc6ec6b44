//! Routes: scheduled events (`rest.md` §7.10).
//!
//! An event is announced by a message that carries it, whose content names it and
//! its start (`"📅 **Event**: <name> — <Mon D, YYYY at H:MM AM/PM UTC>"`). Concord
//! gates creation like a message (R3), refuses descriptions over 2000 characters with
//! 400 (R11), and lists only events announced in channels the caller may view (R2).

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use concord_protocol::{
    ChannelId, CreateServerEvent, ErrorBody, Event, EventId, Message, MessageId, ServerEvent,
    ServerId, Timestamp,
};
use concord_store::{NewMessage, NewServerEvent};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    access,
    auth::Principal,
    bus::Audience,
    error::{ApiError, ApiResult},
    extract::{Json, Path},
    state::AppState,
};

/// Longest name, in bytes.
const MAX_NAME_BYTES: usize = 200;
/// Longest description, in characters.
const MAX_DESCRIPTION_CHARS: usize = 2000;
/// Most events one listing returns.
const LIST_LIMIT: i64 = 50;

/// The scheduled-event routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_event))
        .routes(routes!(list_upcoming_events))
}

/// The announcing message's content.
fn announcement(name: &str, starts_at: Timestamp) -> String {
    let when = starts_at
        .to_datetime()
        .format("%b %-d, %Y at %-I:%M %p UTC");
    format!("📅 **Event**: {name} — {when}")
}

/// The trimmed name after the contract's checks: the name, then the description.
fn validate(body: &CreateServerEvent) -> ApiResult<String> {
    let name = body.name.trim();
    if name.is_empty() || body.name.len() > MAX_NAME_BYTES {
        return Err(ApiError::bad_request(
            "The name must be non-blank and at most 200 bytes",
        ));
    }
    if body
        .description
        .as_ref()
        .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_CHARS)
    {
        return Err(ApiError::bad_request(
            "The description must be at most 2000 characters",
        ));
    }
    Ok(name.to_owned())
}

#[utoipa::path(
    post,
    path = "/channels/{channel_id}/events",
    tag = "messages",
    description = "Schedules an event, announced by a message naming it and its start \
                   that carries the event. Mentions are not parsed.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("channel_id" = ChannelId, Path, description = "The channel.")),
    request_body = CreateServerEvent,
    responses(
        (status = 201, description = "The message carrying the new event.", body = Message),
        (status = 400, description = "A blank or too long name, or a description over 2000 \
                                      characters.", body = ErrorBody),
        (status = 403, description = "The caller may not view or send in the channel, or is \
                                      timed out in the server.", body = ErrorBody),
        (status = 404, description = "No such channel, or the caller is not a member of its \
                                      server.", body = ErrorBody),
    ),
)]
async fn create_event(
    State(state): State<AppState>,
    principal: Principal,
    Path(channel): Path<ChannelId>,
    Json(body): Json<CreateServerEvent>,
) -> ApiResult<Response> {
    let name = validate(&body)?;
    let user = principal.id();
    let now = Timestamp::now();
    access::channel_poster(&state, channel, user, now)?;
    let message = state
        .store
        .create_server_event(
            &NewMessage {
                id: MessageId::new(),
                channel_id: channel,
                author_id: user,
                content: announcement(&name, body.starts_at),
                reply_to: None,
                mention_user_ids: Vec::new(),
                mention_everyone: false,
                thread_id: None,
                created_at: now,
                node: state.events.node(),
            },
            &NewServerEvent {
                id: EventId::new(),
                name,
                description: body.description,
                starts_at: body.starts_at,
            },
        )
        .await?;
    state
        .events
        .dispatch(Audience::Channel(channel), Event::MessageCreate, &message);
    Ok((StatusCode::CREATED, axum::Json(message)).into_response())
}

#[utoipa::path(
    get,
    path = "/servers/{id}/events",
    tag = "servers",
    description = "Events of the server that have not started yet, soonest first (at most \
                   50); only those announced in channels the caller may view.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = ServerId, Path, description = "The server.")),
    responses(
        (status = 200, description = "The upcoming events.", body = Vec<ServerEvent>),
        (status = 404, description = "No such server, or the caller is not a member.", body = ErrorBody),
    ),
)]
async fn list_upcoming_events(
    State(state): State<AppState>,
    principal: Principal,
    Path(server): Path<ServerId>,
) -> ApiResult<axum::Json<Vec<ServerEvent>>> {
    let user = principal.id();
    access::server_member(&state, server, user)?;
    let visible: Vec<ChannelId> = state
        .directory
        .channels_of(server)
        .into_iter()
        .filter(|channel| access::can_view(&state, *channel, user))
        .collect();
    let events = state
        .store
        .upcoming_server_events(server, &visible, Timestamp::now(), LIST_LIMIT)
        .await?;
    Ok(axum::Json(events))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_announcement_spells_out_the_start_in_utc() {
        // 2025-01-05T15:07:00Z
        let afternoon = Timestamp::from_micros(1_736_089_620_000_000);
        assert_eq!(
            announcement("Launch", afternoon),
            "📅 **Event**: Launch — Jan 5, 2025 at 3:07 PM UTC"
        );
        // 2024-12-31T00:30:00Z: midnight is 12 AM.
        let midnight = Timestamp::from_micros(1_735_605_000_000_000);
        assert_eq!(
            announcement("NYE", midnight),
            "📅 **Event**: NYE — Dec 31, 2024 at 12:30 AM UTC"
        );
    }

    #[test]
    fn name_and_description_limits() {
        let body = |name: &str, description: Option<String>| CreateServerEvent {
            name: name.to_owned(),
            description,
            starts_at: Timestamp::from_micros(0),
        };
        assert_eq!(validate(&body("  Party  ", None)).unwrap(), "Party");
        assert!(validate(&body("   ", None)).is_err());
        assert!(validate(&body(&"é".repeat(100), None)).is_ok());
        assert!(validate(&body(&format!("{}a", "é".repeat(100)), None)).is_err());
        assert!(validate(&body("x", Some("é".repeat(2000)))).is_ok());
        let err = validate(&body("x", Some("a".repeat(2001)))).unwrap_err();
        assert!(err.message().contains("description"), "{}", err.message());
        // The name is checked first.
        let err = validate(&body("", Some("a".repeat(2001)))).unwrap_err();
        assert!(err.message().contains("name"), "{}", err.message());
    }
}
