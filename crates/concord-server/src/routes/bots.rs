//! Routes: bots (`rest.md` §7).

use axum::Router;

use crate::state::AppState;

/// The bots routes.
pub fn routes() -> Router<AppState> {
    Router::new()
}
