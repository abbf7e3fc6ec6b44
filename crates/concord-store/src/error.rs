//! Store errors.

/// What can go wrong in a store call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A unique constraint was violated (the name of what clashed).
    #[error("already exists: {0}")]
    Conflict(String),
    /// A referenced row does not exist.
    #[error("referenced row not found")]
    NotFound,
    /// The database failed.
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// Migrations failed.
    #[error("migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// Stored data could not be decoded (corrupt or unexpected value).
    #[error("corrupt value in column {0}")]
    Corrupt(&'static str),
}

impl From<sqlx::Error> for StoreError {
    /// Classifies a driver error: unique violations become [`StoreError::Conflict`]
    /// (named by the constraint, or by the columns SQLite reports), foreign-key
    /// violations [`StoreError::NotFound`], anything else [`StoreError::Database`].
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err {
            if db.is_unique_violation() {
                let what = match db.constraint() {
                    Some(name) => name.to_owned(),
                    None => {
                        let message = db.message();
                        message
                            .split_once("failed: ")
                            .map_or(message, |(_, columns)| columns)
                            .to_owned()
                    }
                };
                return Self::Conflict(what);
            }
            if db.is_foreign_key_violation() {
                return Self::NotFound;
            }
        }
        Self::Database(err)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        Self::Migrate(err)
    }
}
