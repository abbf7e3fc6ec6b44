#![doc = include_str!("../README.md")]

mod error;
mod model;
mod sqlite;
mod store;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

pub use error::StoreError;
pub use model::*;
pub use sqlite::SqliteStore;
pub use store::{Store, StoreResult};
