//! People who sign in to the Back Office, with their role.
//!
//! Emails are stored lower-case and compared without regard to case; the caller hashes the
//! password with [`crate::credentials::hash_password`] before creating an operator.

use chrono::{DateTime, Utc};

use super::time::Stamp;
use super::{Database, Done, StorageError};
use crate::domain::Role;

/// A stored operator.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Operator {
    pub id: i64,
    /// Lower-case.
    pub email: String,
    pub display_name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    /// A disabled operator cannot sign in; the row stays for the audit log.
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for Operator {
    // The hash stays out of logs: it is what an attacker would try to crack offline.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operator")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("display_name", &self.display_name)
            .field("role", &self.role)
            .field("disabled", &self.disabled)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// What [`Operators::create`] stores.
#[derive(Clone, PartialEq, Eq)]
pub struct NewOperator {
    pub email: String,
    pub display_name: String,
    /// From [`crate::credentials::hash_password`].
    pub password_hash: String,
    pub role: Role,
}

impl std::fmt::Debug for NewOperator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewOperator")
            .field("email", &self.email)
            .field("display_name", &self.display_name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, email, display_name, password_hash, role, disabled, created_at ",
            "FROM operators ",
            $rest
        )
    };
}

/// How emails are keyed: case never distinguishes two people.
fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The `operators` table; from [`Database::operators`].
#[derive(Debug, Clone, Copy)]
pub struct Operators<'a> {
    pub(super) db: &'a Database,
}

impl Operators<'_> {
    /// Stores an operator and returns the id; `Conflict` when the email is taken.
    pub async fn create(&self, new: &NewOperator) -> Result<i64, StorageError> {
        let email = normalize_email(&new.email);
        let done = with_pool!(self.db, |pool| {
            sqlx::query(
                "INSERT INTO operators (email, display_name, password_hash, role, disabled, \
                 created_at) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&email)
            .bind(&new.display_name)
            .bind(&new.password_hash)
            .bind(new.role.as_str())
            .bind(false)
            .bind(Stamp::now())
            .execute(pool)
            .await
            .map(Done::from)
        })
        .map_err(|err| self.db.fail(err, "operator", format!("email `{email}`")))?;
        Ok(done.last_id)
    }

    /// The operator with this id, or `NotFound`.
    pub async fn get(&self, id: i64) -> Result<Operator, StorageError> {
        let found = with_pool!(self.db, |pool| {
            sqlx::query_as::<_, Operator>(select!("WHERE id = ?"))
                .bind(id)
                .fetch_optional(pool)
                .await
        })
        .map_err(|err| self.db.fail(err, "operator", format!("id {id}")))?;
        found.ok_or_else(|| StorageError::not_found("operator", format!("id {id}")))
    }

    /// The operator with this email (any letter case), if there is one.
    pub async fn find_by_email(&self, email: &str) -> Result<Option<Operator>, StorageError> {
        let email = normalize_email(email);
        with_pool!(self.db, |pool| {
            sqlx::query_as::<_, Operator>(select!("WHERE email = ?"))
                .bind(&email)
                .fetch_optional(pool)
                .await
        })
        .map_err(|err| self.db.fail(err, "operator", format!("email `{email}`")))
    }

    /// Turns sign-in off or back on; `NotFound` when there is no such operator.
    pub async fn set_disabled(&self, id: i64, disabled: bool) -> Result<(), StorageError> {
        let done = with_pool!(self.db, |pool| {
            sqlx::query("UPDATE operators SET disabled = ? WHERE id = ?")
                .bind(disabled)
                .bind(id)
                .execute(pool)
                .await
                .map(Done::from)
        })
        .map_err(|err| self.db.fail(err, "operator", format!("id {id}")))?;
        super::found_one(done, "operator", id)
    }
}
