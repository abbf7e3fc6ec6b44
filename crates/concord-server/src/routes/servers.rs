//! Routes: servers (`rest.md` §7).

use axum::Router;

use crate::state::AppState;

/// The servers routes.
pub fn routes() -> Router<AppState> {
    Router::new()
}
