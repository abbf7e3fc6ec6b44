//! Routes: auth (`rest.md` §7).

use axum::Router;

use crate::state::AppState;

/// The auth routes.
pub fn routes() -> Router<AppState> {
    Router::new()
}
