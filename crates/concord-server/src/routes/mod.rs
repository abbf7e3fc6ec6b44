//! HTTP routes, one module per resource group (`rest.md` §7).
//!
//! Every route is registered through utoipa-axum's [`OpenApiRouter`] with `routes!`,
//! from the handler's `#[utoipa::path]`: what is routed and what `/openapi.json`
//! documents are the same by construction (see [`openapi`]). A route added with a bare
//! `Router::route` would be served undocumented; `tests/openapi.rs` refuses that.

use std::sync::Arc;

use axum::Router;
use concord_gateway::Gateway;
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

pub mod auth;
pub mod bots;
pub mod channels;
pub mod dms;
pub mod gateway;
pub mod health;
pub mod ice;
pub mod messages;
pub mod metrics;
pub mod openapi;
pub mod servers;
pub mod users;
pub mod voice;
// Roles, member roles and channel overrides (issue 12, permissions).
pub mod overrides;
pub mod roles;
// Threads, reactions, pins, polls, scheduled events (issue 12).
pub mod pins;
pub mod polls;
pub mod reactions;
pub mod server_events;
pub mod threads;
// ---- invites, moderation, Go Live ----
pub mod go_live;
pub mod invites;
pub mod moderation;
// ---- custom emojis ----
pub mod emojis;
// ---- instance admin, password reset, server templates (issue 18) ----
pub mod admin;
pub mod password_reset;
pub mod templates;
// ---- attachments, search, export (issue 18 part B) ----
pub mod attachments;
// ---- audit log, automod, webhooks, bot logs (issue 18 part C) ----
pub mod audit;
// ---- server export (issue 18 part B) ----
pub mod export;
// ---- message search (issue 18 part B) ----
pub mod automod;
pub mod search;
pub mod webhooks;

/// Routes under the per-IP rate limit (everything but health), the gateway served by
/// `gateway` within the caps on sessions per address.
pub fn limited(state: &AppState, gateway: Arc<Gateway>) -> Router<AppState> {
    openapi::prepare();
    let gateway: Router<AppState> = Router::from(gateway_api().with_state(gateway)).route_layer(
        axum::middleware::from_fn_with_state(state.clone(), gateway::cap_sessions),
    );
    Router::from(limited_api()).merge(gateway)
}

/// Health routes: no auth, never rate-limited.
pub fn health() -> Router<AppState> {
    health_api().into()
}

/// The routes of [`health`], with their documentation.
fn health_api() -> OpenApiRouter<AppState> {
    health::routes()
}

/// The routes of [`limited`] but the gateway's, with their documentation.
fn limited_api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(auth::routes())
        .merge(users::routes())
        .merge(servers::routes())
        .merge(channels::routes())
        .merge(messages::routes())
        .merge(dms::routes())
        .merge(voice::routes())
        .merge(ice::routes())
        .merge(bots::routes())
        .merge(metrics::routes())
        .merge(openapi::routes())
        // Roles, member roles and channel overrides (issue 12, permissions).
        .merge(roles::routes())
        .merge(overrides::routes())
        // Threads, reactions, pins, polls, scheduled events (issue 12).
        .merge(threads::routes())
        .merge(reactions::routes())
        .merge(pins::routes())
        .merge(polls::routes())
        .merge(server_events::routes())
        // ---- invites, moderation, Go Live ----
        .merge(invites::routes())
        .merge(moderation::routes())
        .merge(go_live::routes())
        // ---- custom emojis ----
        .merge(emojis::routes())
        // ---- instance admin, password reset, server templates (issue 18) ----
        .merge(admin::routes())
        .merge(password_reset::routes())
        .merge(templates::routes())
        // ---- attachments, search, export (issue 18 part B) ----
        .merge(attachments::routes())
        // ---- audit log, automod, webhooks, bot logs (issue 18 part C) ----
        .merge(audit::routes())
        // ---- server export (issue 18 part B) ----
        .merge(export::routes())
        // ---- message search (issue 18 part B) ----
        .merge(search::routes())
        .merge(automod::routes())
        .merge(webhooks::routes())
}

/// The gateway's upgrade route (rate-limited too), over the endpoint given as its state.
fn gateway_api() -> OpenApiRouter<Arc<Gateway>> {
    gateway::routes()
}
