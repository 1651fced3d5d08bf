//! Storage errors, split by who is at fault.

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing is not there (the caller's mistake or a race it must handle).
    #[error("{0} not found")]
    NotFound(String),
    /// A uniqueness conflict (a device registered twice, a room created twice, ...).
    #[error("{0} already exists")]
    Conflict(String),
    /// The database said no (our side: disk, connection, lock timeout, a bug).
    #[error("database: {0}")]
    Backend(#[from] sqlx::Error),
    /// No write turn in time (SQLite: another writer of this process held it as long as the
    /// busy timeout).
    #[error("{0}")]
    Busy(String),
    /// Migrations failed at open.
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The location is not usable (the operator's configuration).
    #[error("{0}")]
    Location(String),
}

impl StoreError {
    /// A failed insert: a unique violation is a [`StoreError::Conflict`] named by `what`.
    pub(crate) fn from_insert(e: sqlx::Error, what: impl FnOnce() -> String) -> Self {
        match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => Self::Conflict(what()),
            _ => Self::Backend(e),
        }
    }

    /// The error is a conflict.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict(_))
    }

    /// The error is a missing thing.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound(_))
    }
}
