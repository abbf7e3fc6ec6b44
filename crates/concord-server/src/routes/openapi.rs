//! `GET /openapi.json`: the REST API as an OpenAPI 3.1 document, and how that document
//! is put together.
//!
//! Every route of every group is registered with utoipa-axum's `routes!`, which takes
//! the path and methods from the handler's `#[utoipa::path]`: the router and the
//! document are built from the same annotations, so a route cannot exist without its
//! documentation nor the other way round. The annotations carry what is particular to a
//! handler (its body, parameters, success answer, its own refusals); the rows that come
//! from shared machinery are added here, to every operation that uses it:
//!
//! - an operation with the `bearer` or `bot_token` security requirement takes the
//!   `Principal` extractor: 401
//!   (missing, unknown or expired credentials) and 500 (the credential check reads the
//!   database);
//! - an operation with path or query parameters: 400 when one does not parse;
//! - an operation with a JSON request body (the `Json` extractor): 400 malformed JSON,
//!   413 too large, 415 not `application/json`, 422 not of the documented shape (a
//!   `multipart/form-data` body documents its own refusals);
//! - an operation under the per-IP rate limit (every route but `/health*`): 429 with
//!   `Retry-After`.

use std::sync::LazyLock;

use axum::{
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use concord_protocol::ErrorBody;
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{
        ComponentsBuilder, ContentBuilder, HeaderBuilder, InfoBuilder, OpenApi, OpenApiBuilder,
        RefOr, ResponseBuilder,
        path::{Operation, ParameterIn},
        schema::{ObjectBuilder, Ref, Type},
        security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
        tag::TagBuilder,
    },
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::AppState;

/// Name of the security scheme for access JWTs (`Authorization: Bearer <token>`).
pub const BEARER: &str = "bearer";
/// Name of the security scheme for bots' static tokens (`Authorization: Bot <token>`).
pub const BOT_TOKEN: &str = "bot_token";
/// Name of the security scheme for the metrics token (`GET /metrics` only).
pub const METRICS_TOKEN: &str = "metrics_token";

/// The route groups, in the order the document lists them, with what each holds.
const TAGS: [(&str, &str); 14] = [
    ("auth", "Registration, login and refresh-token rotation."),
    (
        "users",
        "The caller's own profile and other users' public profiles.",
    ),
    ("servers", "Servers and their members."),
    ("channels", "Channels of a server, and channel read state."),
    ("messages", "Messages of server channels."),
    (
        "dms",
        "Direct-message channels, their messages and read state.",
    ),
    ("voice", "Voice state of voice channels."),
    ("ice", "ICE (STUN/TURN) servers for WebRTC voice."),
    (
        "bots",
        "Bot management by their creators, and the bot token to JWT exchange.",
    ),
    (
        "gateway",
        "The WebSocket gateway's upgrade; the protocol itself is in docs/protocol-v2.md.",
    ),
    ("health", "Liveness and readiness; never rate-limited."),
    (
        "metrics",
        "The node's metrics in the Prometheus text format.",
    ),
    ("openapi", "This document."),
    (
        "admin",
        "Instance administration (instance admins only) and the public registration mode.",
    ),
];

/// The document, serialized once.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    // The document is built from our own types; serializing it cannot fail.
    document().to_pretty_json().unwrap_or_else(|err| {
        unreachable!("the OpenAPI document does not serialize: {err}");
    })
});

/// The route serving the document.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

/// Builds the served document now (once per process), so that the first request does
/// not pay for it. Not from [`routes()`]: building the document builds the routers.
pub fn prepare() {
    LazyLock::force(&DOCUMENT);
}

/// The OpenAPI document of every route of [`super::health()`] and [`super::limited()`],
/// built from the same route definitions as the routers.
pub fn document() -> OpenApi {
    let mut api = base();
    api.merge(super::health_api().into_openapi());
    let mut limited = super::limited_api().into_openapi();
    limited.merge(super::gateway_api().into_openapi());
    for operation in operations(&mut limited) {
        add_rate_limit(operation);
    }
    api.merge(limited);
    for operation in operations(&mut api) {
        add_shared_rows(operation);
        name_operation(operation);
    }
    api
}

/// `{tag}_{handler}` as the operation id: handler names repeat across groups (every
/// group has a `create`), the pair does not.
fn name_operation(operation: &mut Operation) {
    let tag = operation.tags.iter().flatten().next().cloned();
    if let (Some(tag), Some(id)) = (tag, operation.operation_id.as_mut()) {
        *id = format!("{tag}_{id}");
    }
}

/// Everything but the paths: info, tags, security schemes, the error body.
fn base() -> OpenApi {
    let info = InfoBuilder::new()
        .title("Concord")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Concord's REST API (Together-compatible). Every path is served both at the \
             root and under `/api` (`/api/users/@me` is `/users/@me`). Errors answer \
             with `{\"error\": \"...\"}` (schema `ErrorBody`). Authenticated routes take \
             `Authorization: Bearer <access token>` (from register, login or refresh) or \
             `Authorization: Bot <bot token>`. The real-time side is the WebSocket \
             gateway at `/ws`, described in docs/protocol-v2.md.",
        ))
        .build();
    let bearer = HttpBuilder::new()
        .scheme(HttpAuthScheme::Bearer)
        .bearer_format("JWT")
        .description(Some(
            "`Authorization: Bearer <access token>`: the 15-minute access JWT of an auth \
             response, or of `POST /bots/connect` for a bot.",
        ))
        .build();
    let bot = ApiKey::Header(ApiKeyValue::with_description(
        "Authorization",
        "`Authorization: Bot <token>`: a bot's static token, as created or regenerated.",
    ));
    let metrics = HttpBuilder::new()
        .scheme(HttpAuthScheme::Bearer)
        .description(Some(
            "`Authorization: Bearer <metrics token>`: the `[metrics] token` of the \
             configuration, for `GET /metrics` from an address not configured.",
        ))
        .build();
    let components = ComponentsBuilder::new()
        .schema(ErrorBody::name(), ErrorBody::schema())
        .security_scheme(BEARER, SecurityScheme::Http(bearer))
        .security_scheme(BOT_TOKEN, SecurityScheme::ApiKey(bot))
        .security_scheme(METRICS_TOKEN, SecurityScheme::Http(metrics))
        .build();
    let tags = TAGS
        .iter()
        .map(|(name, description)| {
            TagBuilder::new()
                .name(*name)
                .description(Some(*description))
                .build()
        })
        .collect::<Vec<_>>();
    OpenApiBuilder::new()
        .info(info)
        .components(Some(components))
        .tags(Some(tags))
        .build()
}

/// Every operation of `api`.
fn operations(api: &mut OpenApi) -> impl Iterator<Item = &mut Operation> {
    api.paths.paths.values_mut().flat_map(|item| {
        [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ]
        .into_iter()
        .filter_map(Option::as_mut)
    })
}

/// An error answer with the shared body.
fn error_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(ErrorBody::name())))
            .build(),
    )
}

/// Adds the row for `status`; where the handler's annotation already has one, its
/// description gains the shared reason.
fn add_row(operation: &mut Operation, status: &str, row: impl FnOnce() -> ResponseBuilder) {
    let shared = row().build();
    match operation.responses.responses.get_mut(status) {
        Some(RefOr::T(own)) => {
            if !own.description.contains(&shared.description) {
                own.description = format!("{} Also: {}", own.description, shared.description);
            }
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            operation
                .responses
                .responses
                .insert(status.to_owned(), RefOr::T(shared));
        }
    }
}

fn add_rate_limit(operation: &mut Operation) {
    let seconds = || {
        HeaderBuilder::new()
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0)),
            ))
            .description(Some("Seconds until a request may succeed again."))
            .build()
    };
    add_row(operation, "429", || {
        error_response("Over the per-IP rate limit (also the per-bot limit for bot tokens).")
            .header("Retry-After", seconds())
            .header("x-ratelimit-after", seconds())
    });
}

/// Whether the operation takes the `Principal` extractor, i.e. a user's or bot's
/// credential.
fn takes_principal(operation: &Operation) -> bool {
    operation.security.iter().flatten().any(|requirement| {
        serde_json::to_value(requirement)
            .ok()
            .and_then(|value| value.as_object().cloned())
            .is_some_and(|schemes| schemes.contains_key(BEARER) || schemes.contains_key(BOT_TOKEN))
    })
}

fn add_shared_rows(operation: &mut Operation) {
    if takes_principal(operation) {
        add_row(operation, "401", || {
            error_response(
                "Missing, malformed, expired or revoked credentials, or the account is disabled.",
            )
        });
        add_row(operation, "500", || {
            error_response("The database failed; the cause is logged, not sent.")
        });
    }
    let has_params = operation.parameters.iter().flatten().any(|p| {
        matches!(
            p,
            RefOr::T(p) if matches!(p.parameter_in, ParameterIn::Path | ParameterIn::Query)
        )
    });
    if has_params {
        add_row(operation, "400", || {
            error_response(
                "A path or query parameter does not parse (e.g. an id that is not a UUID).",
            )
        });
    }
    // The JSON extractor's refusals; a multipart upload documents its own.
    let json_body = operation
        .request_body
        .as_ref()
        .is_some_and(|body| match body {
            RefOr::T(body) => body.content.contains_key("application/json"),
            RefOr::Ref(_) => true,
        });
    if json_body {
        add_row(operation, "400", || {
            error_response("The body is not valid JSON, or a field breaks a rule.")
        });
        add_row(operation, "413", || {
            error_response("The body is larger than the request body limit.")
        });
        add_row(operation, "415", || {
            error_response("The body is not sent as `Content-Type: application/json`.")
        });
        add_row(operation, "422", || {
            error_response(
                "The JSON does not have the documented shape (a missing field, a wrong type).",
            )
        });
    }
}

#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "openapi",
    description = "This document: OpenAPI 3.1, generated from the handlers' own types and \
                   annotations. Also at `/api/openapi.json`.",
    responses(
        (status = 200, description = "The OpenAPI document.", content_type = "application/json", body = Object),
    ),
)]
async fn openapi_json() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        DOCUMENT.as_str(),
    )
        .into_response()
}
