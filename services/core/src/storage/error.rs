//! What can go wrong in storage, split by what the caller does about it.
//!
//! `Unavailable` means "try again later" (HTTP 503, OCPP CALLERROR InternalError), `NotFound`
//! and `Conflict` are answers about the data (404, 409), `Migration` stops a process at start,
//! and `Other` is a bug or a broken database that an operator has to look at.

use sqlx::error::ErrorKind;

/// A storage operation failed. Messages name the thing and what to do, never a password.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database cannot be reached, refused the login, or no connection became free within
    /// `database.acquire_timeout`.
    #[error("the database {database} is unavailable: {reason}")]
    Unavailable {
        /// Where the database is, without credentials (see [`super::Database::describe`]).
        database: String,
        /// What failed and what to check.
        reason: String,
    },

    /// The row asked for does not exist.
    #[error("no {entity} with {key} exists; check the {entity} or create it first")]
    NotFound {
        entity: &'static str,
        /// The field and value looked for, such as ``identity `CP-1` ``.
        key: String,
    },

    /// A unique key already holds this value.
    #[error(
        "a {entity} with {key} already exists; use another value or change the existing {entity}"
    )]
    Conflict { entity: &'static str, key: String },

    /// The schema could not be brought up to date.
    #[error("the database migration failed: {0}")]
    Migration(String),

    /// Anything else: a query the database refused, a value it returned that does not parse.
    #[error("{0}")]
    Other(String),
}

impl StorageError {
    pub(crate) fn not_found(entity: &'static str, key: impl Into<String>) -> StorageError {
        StorageError::NotFound {
            entity,
            key: key.into(),
        }
    }

    /// Whether a retry later may succeed (the database was unreachable or busy).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StorageError::Unavailable { .. })
    }
}

/// Whether the error is a failed unique key.
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|db| db.kind() == ErrorKind::UniqueViolation)
}

/// Whether the error is a foreign key that points nowhere (a missing parent row).
pub(crate) fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|db| db.kind() == ErrorKind::ForeignKeyViolation)
}

/// Whether the error is about reaching the database rather than about the query.
pub(crate) fn is_connectivity(err: &sqlx::Error) -> bool {
    matches!(
        err,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_)
    )
}
