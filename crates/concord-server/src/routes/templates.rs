//! Routes: server templates (`rest-extras.md` §4). Read-only; three built-ins are
//! seeded by the migration with random ids per install, and `POST /servers` with a
//! `template_id` creates the template's channels with the server.

use axum::extract::State;
use concord_protocol::{ErrorBody, ServerTemplate, TemplateCategory, TemplateChannel};
use concord_store::ServerTemplateRecord;
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    auth::Principal,
    error::{ApiError, ApiResult},
    state::AppState,
};

/// The template routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// The stored `template_data`.
#[derive(Debug, Deserialize)]
struct TemplateData {
    channels: Vec<TemplateChannel>,
}

/// A stored template that cannot be read (bad JSON, unknown category).
#[derive(Debug, thiserror::Error)]
#[error("server template {id} is corrupt: {why}")]
struct CorruptTemplate {
    id: uuid::Uuid,
    why: String,
}

fn view(record: ServerTemplateRecord) -> Result<ServerTemplate, CorruptTemplate> {
    let corrupt = |why: String| CorruptTemplate { id: record.id, why };
    let category = match record.category.as_str() {
        "gaming" => TemplateCategory::Gaming,
        "community" => TemplateCategory::Community,
        "study" => TemplateCategory::Study,
        "custom" => TemplateCategory::Custom,
        other => return Err(corrupt(format!("category {other:?}"))),
    };
    let data: TemplateData =
        serde_json::from_str(&record.template_data).map_err(|e| corrupt(e.to_string()))?;
    let mut channels = data.channels;
    channels.sort_by_key(|c| c.position);
    Ok(ServerTemplate {
        id: record.id,
        name: record.name,
        description: record.description,
        category,
        channels,
        is_builtin: record.is_builtin,
        created_at: record.created_at,
    })
}

/// The channels of template `id`, by position, for `POST /servers`.
///
/// # Errors
/// 400 `Template <id> not found`; 500 when the database fails or the template is
/// corrupt.
pub(crate) async fn channels_of(
    state: &AppState,
    id: uuid::Uuid,
) -> ApiResult<Vec<TemplateChannel>> {
    let record = state
        .store
        .server_template(id)
        .await?
        .ok_or_else(|| ApiError::bad_request(format!("Template {id} not found")))?;
    let template = view(record).map_err(|e| ApiError::internal(&e))?;
    Ok(template.channels)
}

#[utoipa::path(
    get,
    path = "/server-templates",
    tag = "servers",
    description = "The server templates, built-ins first, then by name. A template's id \
                   goes into `template_id` of `POST /servers`.",
    security(("bearer" = []), ("bot_token" = [])),
    responses(
        (status = 200, description = "Every template.", body = Vec<ServerTemplate>),
        (status = 401, description = "No valid credentials.", body = ErrorBody),
        (status = 500, description = "A stored template does not parse, or the database failed.", body = ErrorBody),
    ),
)]
async fn list(
    State(state): State<AppState>,
    _principal: Principal,
) -> ApiResult<axum::Json<Vec<ServerTemplate>>> {
    let records = state.store.server_templates().await?;
    let templates = records
        .into_iter()
        .map(view)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::internal(&e))?;
    Ok(axum::Json(templates))
}

#[cfg(test)]
mod tests {
    use concord_protocol::Timestamp;

    use super::*;

    fn record(category: &str, data: &str) -> ServerTemplateRecord {
        ServerTemplateRecord {
            id: uuid::Uuid::new_v4(),
            name: "T".into(),
            description: String::new(),
            category: category.into(),
            template_data: data.into(),
            is_builtin: false,
            created_at: Timestamp::now(),
        }
    }

    #[test]
    fn channels_come_by_position_and_bad_data_is_refused() {
        let t = view(record(
            "study",
            r#"{"channels":[{"name":"b","type":"voice","category":null,"position":1},
                {"name":"a","type":"text","category":"X","position":0}]}"#,
        ))
        .unwrap();
        assert_eq!(t.category, TemplateCategory::Study);
        assert_eq!(t.channels[0].name, "a");
        assert!(view(record("study", "{")).is_err());
        assert!(view(record("music", r#"{"channels":[]}"#)).is_err());
        assert!(
            view(record(
                "custom",
                r#"{"channels":[{"name":"x","type":"forum","position":0}]}"#
            ))
            .is_err()
        );
    }
}
