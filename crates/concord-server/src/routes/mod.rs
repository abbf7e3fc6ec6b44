//! HTTP routes, one module per resource group (`rest.md` §7).

use axum::Router;

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
pub mod servers;
pub mod users;
pub mod voice;

/// Routes under the per-IP rate limit (everything but health), the gateway served by
/// `gateway`.
pub fn limited(gateway: std::sync::Arc<concord_gateway::Gateway>) -> Router<AppState> {
    Router::new()
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
        .merge(gateway::routes(gateway))
}

/// Health routes: no auth, never rate-limited.
pub fn health() -> Router<AppState> {
    health::routes()
}
