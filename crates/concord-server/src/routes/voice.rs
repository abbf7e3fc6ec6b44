//! Routes: voice (`rest.md` §7).

use axum::Router;

use crate::state::AppState;

/// The voice routes.
pub fn routes() -> Router<AppState> {
    Router::new()
}
