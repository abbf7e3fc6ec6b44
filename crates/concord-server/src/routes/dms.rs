//! Routes: dms (`rest.md` §7).

use axum::Router;

use crate::state::AppState;

/// The dms routes.
pub fn routes() -> Router<AppState> {
    Router::new()
}
