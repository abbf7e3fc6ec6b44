#![doc = include_str!("../README.md")]

mod error;
mod model;
mod sqlite;
mod store;
// ---- invites, moderation, Go Live ----
mod outcome;
// Message search (issue 18 part B).
mod search;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

pub use error::StoreError;
pub use model::*;
pub use sqlite::SqliteStore;
pub use store::{Store, StoreResult};
// ---- invites, moderation, Go Live ----
pub use outcome::*;
// Message search (issue 18 part B).
pub use search::search_terms;
