//! Routes: messages (`rest.md` §7).

use axum::Router;

use crate::state::AppState;

/// The messages routes.
pub fn routes() -> Router<AppState> {
    Router::new()
}
