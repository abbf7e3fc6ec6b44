//! The conformance suite against PostgreSQL: every case in a schema of its own.
//!
//! The database comes from `CONCORD_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/concord_test`), created when missing.

use std::str::FromStr;

use sqlx::{
    ConnectOptions,
    postgres::{PgConnectOptions, PgConnection},
};

use super::PostgresStore;

/// The test database's URL.
fn url() -> String {
    std::env::var("CONCORD_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/concord_test".to_owned())
}

/// Creates the test database if it is missing (a race with another test process
/// creating it too is fine).
async fn ensure_database(url: &str) {
    let options = PgConnectOptions::from_str(url).expect("CONCORD_TEST_DATABASE_URL");
    let name = options
        .get_database()
        .expect("the test URL names a database")
        .to_owned();
    let mut conn: PgConnection = options
        .clone()
        .database("postgres")
        .connect()
        .await
        .expect("PostgreSQL answers at CONCORD_TEST_DATABASE_URL");
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut conn)
            .await
            .expect("list databases");
    if !exists {
        let create = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        // Another process may win the race: it is created either way.
        let _ = sqlx::query(sqlx::AssertSqlSafe(create))
            .execute(&mut conn)
            .await;
    }
}

/// An empty store of its own.
pub(crate) async fn fresh() -> PostgresStore {
    let url = url();
    ensure_database(&url).await;
    PostgresStore::fresh_schema(&url)
        .await
        .expect("a fresh PostgreSQL schema")
}

crate::conformance_tests!(fresh().await);
