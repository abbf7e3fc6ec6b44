//! Routes: the caller's own profile and other users' public profiles (`rest.md` §7.2).

use axum::extract::State;
use concord_protocol::{ErrorBody, Event, PublicProfile, Status, UpdateMe, User, UserId, limits};
use concord_store::UserPatch;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    auth::Principal,
    bus::Audience,
    error::{ApiError, ApiResult},
    extract::{Json, Path},
    presence,
    state::AppState,
    views,
};

/// The users routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me, update_me))
        .routes(routes!(profile))
}

#[utoipa::path(
    get,
    path = "/users/@me",
    tag = "users",
    description = "The caller's own account.",
    security(("bearer" = []), ("bot_token" = [])),
    responses(
        (status = 200, description = "The caller's account.", body = User),
    ),
)]
async fn me(State(state): State<AppState>, principal: Principal) -> axum::Json<User> {
    // The extractor has just read the row (and refused gone or disabled users), so
    // there is nothing newer to fetch.
    axum::Json(views::self_user(&state, &principal.user))
}

#[utoipa::path(
    patch,
    path = "/users/@me",
    tag = "users",
    description = "Changes the caller's profile and chosen status; absent and null fields \
                   stay as they are. Online peers and the caller's own sessions are told.",
    security(("bearer" = []), ("bot_token" = [])),
    request_body = UpdateMe,
    responses(
        (status = 200, description = "The updated account.", body = User),
        (status = 400, description = "A field breaks a rule (avatar URL not http(s) or over \
                                      2048 characters, bio over 500, pronouns over 40, custom \
                                      status or activity over 128, status not one of online, \
                                      away, dnd, offline).", body = ErrorBody),
        (status = 404, description = "The account was deleted meanwhile.", body = ErrorBody),
    ),
)]
async fn update_me(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<UpdateMe>,
) -> ApiResult<axum::Json<User>> {
    let patch = validate_patch(body)?;
    let updated = state
        .store
        .update_user(principal.id(), &patch)
        .await?
        .ok_or_else(|| ApiError::not_found("User not found"))?;
    // Concord tells online peers about REST presence changes too (the reference stays
    // silent, leaving them with a stale status until the next reconnect).
    let before = presence::chosen_of(&principal.user);
    let after = presence::chosen_of(&updated);
    if before != after {
        state.presence.chosen_changed(&state, updated.id, after);
    }
    // v2: every own session learns the new profile (the same body as the answer).
    let me = views::self_user(&state, &updated);
    state
        .events
        .dispatch(Audience::Users(vec![updated.id]), Event::UserUpdate, &me);
    Ok(axum::Json(me))
}

#[utoipa::path(
    get,
    path = "/users/{user_id}",
    tag = "users",
    description = "Another user's public profile.",
    security(("bearer" = []), ("bot_token" = [])),
    params(("user_id" = UserId, Path, description = "The user.")),
    responses(
        (status = 200, description = "The public profile.", body = PublicProfile),
        (status = 404, description = "No such user, or the account is disabled.", body = ErrorBody),
    ),
)]
async fn profile(
    State(state): State<AppState>,
    _principal: Principal,
    Path(user_id): Path<UserId>,
) -> ApiResult<axum::Json<PublicProfile>> {
    let user = state
        .store
        .user(user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| ApiError::not_found("User not found"))?;
    Ok(axum::Json(views::public_profile(&state, &user)))
}

/// Checks every given field; absent and null fields stay `None` (unchanged).
fn validate_patch(body: UpdateMe) -> ApiResult<UserPatch> {
    if let Some(url) = body.avatar_url.as_deref() {
        max_chars("Avatar URL", url, 2048)?;
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        if rest.is_none_or(str::is_empty) {
            return Err(ApiError::bad_request(
                "Avatar URL must start with http:// or https://",
            ));
        }
    }
    if let Some(bio) = body.bio.as_deref() {
        max_chars("Bio", bio, 500)?;
    }
    if let Some(pronouns) = body.pronouns.as_deref() {
        max_chars("Pronouns", pronouns, 40)?;
    }
    let status = match body.status.as_deref() {
        Some(text) => Some(Status::parse(text).ok_or_else(|| {
            ApiError::bad_request("Status must be one of online, away, dnd, offline")
        })?),
        None => None,
    };
    if let Some(custom) = body.custom_status.as_deref() {
        max_chars("Custom status", custom, limits::MAX_PRESENCE_TEXT_CHARS)?;
    }
    if let Some(activity) = body.activity.as_deref() {
        max_chars("Activity", activity, limits::MAX_PRESENCE_TEXT_CHARS)?;
    }
    Ok(UserPatch {
        avatar_url: body.avatar_url,
        bio: body.bio,
        pronouns: body.pronouns,
        status,
        custom_status: body.custom_status,
        activity: body.activity,
    })
}

fn max_chars(field: &str, value: &str, max: usize) -> ApiResult<()> {
    if value.chars().count() > max {
        return Err(ApiError::bad_request(format!(
            "{field} must be at most {max} characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_patch_changes_nothing() {
        assert_eq!(
            validate_patch(UpdateMe::default()).unwrap(),
            UserPatch::default()
        );
    }

    #[test]
    fn every_rule_failure_has_a_message() {
        let cases = [
            UpdateMe {
                avatar_url: Some("ftp://x".into()),
                ..UpdateMe::default()
            },
            UpdateMe {
                avatar_url: Some("https://".into()),
                ..UpdateMe::default()
            },
            UpdateMe {
                avatar_url: Some(format!("https://{}", "a".repeat(2041))),
                ..UpdateMe::default()
            },
            UpdateMe {
                bio: Some("b".repeat(501)),
                ..UpdateMe::default()
            },
            UpdateMe {
                pronouns: Some("p".repeat(41)),
                ..UpdateMe::default()
            },
            UpdateMe {
                status: Some("busy".into()),
                ..UpdateMe::default()
            },
            UpdateMe {
                custom_status: Some("c".repeat(129)),
                ..UpdateMe::default()
            },
            UpdateMe {
                activity: Some("a".repeat(129)),
                ..UpdateMe::default()
            },
        ];
        for case in cases {
            let err = validate_patch(case.clone()).unwrap_err();
            assert_eq!(
                err.status(),
                axum::http::StatusCode::BAD_REQUEST,
                "{case:?}"
            );
            assert!(!err.message().is_empty(), "{case:?}");
        }
    }

    #[test]
    fn limits_are_inclusive() {
        let patch = UpdateMe {
            avatar_url: Some(format!("http://{}", "a".repeat(2041))),
            bio: Some("b".repeat(500)),
            pronouns: Some("p".repeat(40)),
            status: Some("dnd".into()),
            custom_status: Some("c".repeat(128)),
            activity: Some(String::new()),
        };
        let out = validate_patch(patch).unwrap();
        assert_eq!(out.status, Some(Status::Dnd));
        assert_eq!(out.activity.as_deref(), Some(""));
    }
}
