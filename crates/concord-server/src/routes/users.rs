//! Routes: users (`rest.md` §7).

use axum::Router;

use crate::state::AppState;

/// The users routes.
pub fn routes() -> Router<AppState> {
    Router::new()
}
