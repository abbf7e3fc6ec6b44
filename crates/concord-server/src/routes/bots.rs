//! Routes: bot management by their human creators, and the bot token → JWT exchange
//! (`rest.md` §2.4, §7.20).
//!
//! Revoking a bot or regenerating its token also closes the bot's live gateway
//! sessions (`gateway.md` D8): a leaked token must stop working everywhere at once.

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, header},
};
use concord_protocol::{
    Bot, BotConnect, BotCreated, BotId, BotList, BotLogEntry, BotLogEvent, BotLogs, CreateBot,
    ErrorBody, Status, Timestamp, UpdateBot, UserId,
};
use concord_store::{BotRecord, NewUser};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    auth::{self, Principal, TokenType},
    error::{ApiError, ApiResult},
    extract::{Json, Path},
    state::AppState,
};

/// The bots routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(connect))
        .routes(routes!(fetch, update, revoke))
        .routes(routes!(regenerate))
        .routes(routes!(logs))
}

#[utoipa::path(
    post,
    path = "/bots",
    tag = "bots",
    description = "Creates a bot and its user account; the token is shown this once.",
    security(("bearer" = []), ("bot_token" = [])),
    request_body = CreateBot,
    responses(
        (status = 201, description = "The bot with its token.", body = BotCreated),
        (status = 400, description = "The name is not 1-64 characters with a letter or digit, \
                                      or the description is over 512 characters.", body = ErrorBody),
        (status = 403, description = "Bots cannot manage bots.", body = ErrorBody),
    ),
)]
async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<CreateBot>,
) -> ApiResult<(StatusCode, axum::Json<BotCreated>)> {
    not_a_bot(&principal)?;
    let name = body.name.trim();
    check_name_length(name)?;
    if let Some(description) = body.description.as_deref() {
        check_description(description)?;
    }
    check_name_has_alphanumeric(name)?;

    let now = Timestamp::now();
    let token = auth::new_bot_token();
    let user = NewUser {
        id: UserId::new(),
        username: bot_username(name),
        email: None,
        password_hash: None,
        status: Status::Online,
        created_at: now,
        admin_if_first: false,
        is_bot: true,
    };
    let bot = Bot {
        id: BotId::new(),
        user_id: user.id,
        name: name.to_owned(),
        description: body.description,
        created_by: Some(principal.id()),
        revoked_at: None,
        created_at: now,
    };
    let record = BotRecord {
        bot,
        token_hash: auth::sha256_hex(&token),
    };
    state.store.create_bot(&user, &record).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(BotCreated {
            bot: record.bot,
            token,
        }),
    ))
}

#[utoipa::path(
    get,
    path = "/bots",
    tag = "bots",
    description = "The bots the caller created, revoked ones included, oldest first.",
    security(("bearer" = []), ("bot_token" = [])),
    responses(
        (status = 200, description = "The caller's bots.", body = BotList),
        (status = 403, description = "Bots cannot manage bots.", body = ErrorBody),
    ),
)]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<axum::Json<BotList>> {
    not_a_bot(&principal)?;
    let bots = state.store.bots_of_creator(principal.id()).await?;
    Ok(axum::Json(BotList { bots }))
}

#[utoipa::path(
    get,
    path = "/bots/{id}",
    tag = "bots",
    description = "One of the caller's bots.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = BotId, Path, description = "The bot.")),
    responses(
        (status = 200, description = "The bot.", body = Bot),
        (status = 403, description = "Bots cannot manage bots.", body = ErrorBody),
        (status = 404, description = "No such bot, or it is not the caller's.", body = ErrorBody),
    ),
)]
async fn fetch(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<BotId>,
) -> ApiResult<axum::Json<Bot>> {
    not_a_bot(&principal)?;
    let record = owned_bot(&state, &principal, id).await?;
    Ok(axum::Json(record.bot))
}

#[utoipa::path(
    patch,
    path = "/bots/{id}",
    tag = "bots",
    description = "Renames or redescribes one of the caller's bots.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = BotId, Path, description = "The bot.")),
    request_body = UpdateBot,
    responses(
        (status = 200, description = "The updated bot.", body = Bot),
        (status = 400, description = "The bot is revoked, the name is not 1-64 characters with \
                                      a letter or digit, or the description is over 512 \
                                      characters.", body = ErrorBody),
        (status = 403, description = "Bots cannot manage bots.", body = ErrorBody),
        (status = 404, description = "No such bot, or it is not the caller's.", body = ErrorBody),
    ),
)]
async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<BotId>,
    Json(body): Json<UpdateBot>,
) -> ApiResult<axum::Json<Bot>> {
    not_a_bot(&principal)?;
    let record = owned_bot(&state, &principal, id).await?;
    if record.bot.revoked_at.is_some() {
        return Err(ApiError::bad_request("Cannot update a revoked bot"));
    }
    let name = body.name.as_deref().map(str::trim);
    if let Some(name) = name {
        check_name_length(name)?;
        check_name_has_alphanumeric(name)?;
    }
    if let Some(description) = body.description.as_deref() {
        check_description(description)?;
    }
    let bot = state
        .store
        .update_bot(id, name, body.description.as_deref())
        .await?
        .ok_or_else(|| ApiError::not_found("Bot not found"))?;
    Ok(axum::Json(bot))
}

#[utoipa::path(
    delete,
    path = "/bots/{id}",
    tag = "bots",
    description = "Revokes a bot: its token stops working and its gateway sessions close.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = BotId, Path, description = "The bot.")),
    responses(
        (status = 204, description = "Revoked."),
        (status = 403, description = "Bots cannot manage bots.", body = ErrorBody),
        (status = 404, description = "No such bot, not the caller's, or already revoked.", body = ErrorBody),
    ),
)]
async fn revoke(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<BotId>,
) -> ApiResult<StatusCode> {
    not_a_bot(&principal)?;
    let record = owned_bot(&state, &principal, id).await?;
    // Revoking twice is "not found" in the reference, and so is losing a race with a
    // concurrent revoke.
    if record.bot.revoked_at.is_some() || !state.store.revoke_bot(id, Timestamp::now()).await? {
        return Err(ApiError::not_found("Bot not found or already revoked"));
    }
    state.events.close_sessions(record.bot.user_id);
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/bots/{id}/token/regenerate",
    tag = "bots",
    description = "Replaces a bot's token; the old one stops working and the bot's gateway \
                   sessions close.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = BotId, Path, description = "The bot.")),
    responses(
        (status = 200, description = "The bot with its new token.", body = BotCreated),
        (status = 400, description = "The bot is revoked.", body = ErrorBody),
        (status = 403, description = "Bots cannot manage bots.", body = ErrorBody),
        (status = 404, description = "No such bot, or it is not the caller's.", body = ErrorBody),
    ),
)]
async fn regenerate(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<BotId>,
) -> ApiResult<axum::Json<BotCreated>> {
    not_a_bot(&principal)?;
    let record = owned_bot(&state, &principal, id).await?;
    if record.bot.revoked_at.is_some() {
        return Err(ApiError::bad_request(
            "Cannot regenerate the token of a revoked bot; create a new bot instead",
        ));
    }
    let token = auth::new_bot_token();
    if !state
        .store
        .set_bot_token(id, &auth::sha256_hex(&token))
        .await?
    {
        return Err(ApiError::not_found("Bot not found"));
    }
    // Sessions opened with the old token would otherwise outlive it.
    state.events.close_sessions(record.bot.user_id);
    Ok(axum::Json(BotCreated {
        bot: record.bot,
        token,
    }))
}

#[utoipa::path(
    post,
    path = "/bots/connect",
    tag = "bots",
    description = "Trades a bot's static token for a 15-minute access JWT of the bot user.",
    security(("bot_token" = [])),
    responses(
        (status = 200, description = "The bot's access token.", body = BotConnect),
        (status = 403, description = "The caller is not a bot, or authenticated with a JWT \
                                      rather than the bot token.", body = ErrorBody),
    ),
)]
async fn connect(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
) -> ApiResult<axum::Json<BotConnect>> {
    // Only the static token may be traded: a bot JWT buying fresh JWTs would let a
    // session outlive the token it started from.
    let static_token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bot "));
    if principal.bot.is_none() || !static_token {
        return Err(ApiError::forbidden(
            "Only bots can use this endpoint, with their bot token",
        ));
    }
    // The bot user's `is_bot` puts the bot flag into the claims, so the JWT keeps bot
    // identity (`rest.md` R8).
    let access_token = state
        .keys
        .issue(&principal.user, TokenType::Access, Timestamp::now(), None);
    Ok(axum::Json(BotConnect { access_token }))
}

/// How many of the bot's messages its log lists.
const LOGGED_MESSAGES: u32 = 50;

/// How many characters of a message its log line quotes.
const EXCERPT_CHARS: usize = 80;

#[utoipa::path(
    get,
    path = "/bots/{id}/logs",
    tag = "bots",
    description = "What one of the caller's bots has done, newest first: its creation, its \
                   50 newest messages in server channels, and its revocation. Nothing is \
                   stored for this; the log is read from the bot and its messages.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("id" = BotId, Path, description = "The bot.")),
    responses(
        (status = 200, description = "The bot's log.", body = BotLogs),
        (status = 403, description = "Bots cannot manage bots.", body = ErrorBody),
        (status = 404, description = "No such bot, or it is not the caller's.", body = ErrorBody),
    ),
)]
async fn logs(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<BotId>,
) -> ApiResult<axum::Json<BotLogs>> {
    not_a_bot(&principal)?;
    let record = owned_bot(&state, &principal, id).await?;
    let bot = record.bot;
    let messages = state
        .store
        .recent_messages_by_author(bot.user_id, LOGGED_MESSAGES)
        .await?;

    let mut logs = Vec::with_capacity(messages.len() + 2);
    if let Some(revoked_at) = bot.revoked_at {
        logs.push(BotLogEntry {
            timestamp: revoked_at,
            event: BotLogEvent::BotRevoked,
            detail: Some(format!("Bot \"{}\" was revoked", bot.name)),
        });
    }
    logs.extend(messages.into_iter().map(|m| BotLogEntry {
        timestamp: m.created_at,
        event: BotLogEvent::MessageSent,
        detail: Some(format!(
            "[channel {}] {}",
            m.channel_id,
            excerpt(&m.content)
        )),
    }));
    logs.push(BotLogEntry {
        timestamp: bot.created_at,
        event: BotLogEvent::BotCreated,
        detail: Some(format!("Bot \"{}\" was created", bot.name)),
    });
    // Newest first; a stable sort keeps the order above for equal times (revocation
    // before messages before creation).
    logs.sort_by_key(|entry| std::cmp::Reverse(entry.timestamp));
    Ok(axum::Json(BotLogs { logs }))
}

/// The first [`EXCERPT_CHARS`] characters of `content`, with `…` when cut.
fn excerpt(content: &str) -> String {
    match content.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &content[..cut]),
        None => content.to_owned(),
    }
}

/// Bot management is for people: a bot, by token or JWT, is refused with the
/// reference's text (rest-extras §10).
fn not_a_bot(principal: &Principal) -> ApiResult<()> {
    principal
        .human()
        .map_err(|_| ApiError::forbidden("Bots cannot access bot management endpoints"))
}

/// The caller's bot, revoked or not; someone else's bot is "not found".
async fn owned_bot(state: &AppState, principal: &Principal, id: BotId) -> ApiResult<BotRecord> {
    state
        .store
        .bot(id)
        .await?
        .filter(|r| r.bot.created_by == Some(principal.id()))
        .ok_or_else(|| ApiError::not_found("Bot not found"))
}

fn check_name_length(name: &str) -> ApiResult<()> {
    let n = name.chars().count();
    if n == 0 || n > 64 {
        return Err(ApiError::bad_request("Bot name must be 1-64 characters"));
    }
    Ok(())
}

fn check_name_has_alphanumeric(name: &str) -> ApiResult<()> {
    if !name.chars().any(char::is_alphanumeric) {
        return Err(ApiError::bad_request(
            "Bot name must contain at least one letter or digit",
        ));
    }
    Ok(())
}

fn check_description(description: &str) -> ApiResult<()> {
    if description.chars().count() > 512 {
        return Err(ApiError::bad_request(
            "Bot description must be at most 512 characters",
        ));
    }
    Ok(())
}

/// `<slug>-bot-<8 hex>`: recognisable, and never a name a human can register (those
/// have no `-`).
fn bot_username(name: &str) -> String {
    let slug: String = name
        .chars()
        .flat_map(|c| {
            let keep = c.is_alphanumeric();
            c.to_lowercase().map(move |l| if keep { l } else { '-' })
        })
        .collect();
    let suffix = &auth::new_bot_token()[..8];
    format!("{}-bot-{suffix}", slug.trim_matches('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slug_of(name: &str) -> String {
        let username = bot_username(name);
        let (slug, suffix) = username.rsplit_once("-bot-").unwrap();
        assert_eq!(suffix.len(), 8);
        assert!(suffix.chars().all(|c| c.is_ascii_hexdigit()));
        slug.to_owned()
    }

    #[test]
    fn names_become_lowercase_slugs() {
        assert_eq!(slug_of("My Cool Bot"), "my-cool-bot");
        assert_eq!(slug_of("Bot!@#123"), "bot---123");
        assert_eq!(slug_of("-Edge-"), "edge");
    }

    #[test]
    fn excerpts_cut_at_80_characters_not_bytes() {
        assert_eq!(excerpt("short"), "short");
        let exact = "é".repeat(80);
        assert_eq!(excerpt(&exact), exact);
        let long = format!("{}xyz", "é".repeat(80));
        assert_eq!(excerpt(&long), format!("{}…", "é".repeat(80)));
        assert_eq!(excerpt(""), "");
    }

    #[test]
    fn name_rules() {
        assert!(check_name_length("").is_err());
        assert!(check_name_length(&"n".repeat(64)).is_ok());
        assert!(check_name_length(&"n".repeat(65)).is_err());
        assert!(check_name_has_alphanumeric("!!!").is_err());
        assert!(check_name_has_alphanumeric("!a!").is_ok());
        assert!(check_description(&"d".repeat(512)).is_ok());
        assert!(check_description(&"d".repeat(513)).is_err());
    }
}
