//! Routes: channels (`rest.md` §7).

use axum::Router;

use crate::state::AppState;

/// The channels routes.
pub fn routes() -> Router<AppState> {
    Router::new()
}
