//! The conformance suite against PostgreSQL: every case in a schema of its own.
//!
//! The database comes from `CONCORD_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/concord_test`), created when missing.

use super::PostgresStore;

/// The test database's URL.
fn url() -> String {
    std::env::var("CONCORD_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/concord_test".to_owned())
}

/// An empty store of its own.
pub(crate) async fn fresh() -> PostgresStore {
    let url = url();
    PostgresStore::create_database(&url)
        .await
        .expect("PostgreSQL answers at CONCORD_TEST_DATABASE_URL");
    PostgresStore::fresh_schema(&url)
        .await
        .expect("a fresh PostgreSQL schema")
}

crate::conformance_tests!(fresh().await);
