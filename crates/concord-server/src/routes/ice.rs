//! Routes: ice (`rest.md` §7).

use axum::Router;

use crate::state::AppState;

/// The ice routes.
pub fn routes() -> Router<AppState> {
    Router::new()
}
