//! Drivers' accounts and their sign-in sessions (refresh tokens), for the public API.
//!
//! Emails are stored lower-case and compared without regard to case; the caller hashes the
//! password with [`crate::credentials::hash_password`]. A session holds only the SHA-256 of its
//! refresh token. Sessions rotated from one login share a `chain`, so that presenting a rotated
//! token again can revoke every session that descends from the same login.

use chrono::{DateTime, Utc};

use super::time::Stamp;
use super::{Database, Done, StorageError};

/// A stored driver.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Driver {
    pub id: i64,
    /// Lower-case.
    pub email: String,
    pub name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for Driver {
    // The hash stays out of logs: it is what an attacker would try to crack offline.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("name", &self.name)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// What [`Drivers::create`] stores.
#[derive(Clone, PartialEq, Eq)]
pub struct NewDriver {
    pub email: String,
    pub name: String,
    /// From [`crate::credentials::hash_password`].
    pub password_hash: String,
}

impl std::fmt::Debug for NewDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewDriver")
            .field("email", &self.email)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A stored session: one refresh token.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DriverSession {
    pub id: i64,
    pub driver_id: i64,
    /// Shared by every session rotated from one login (32 hex digits).
    pub chain: String,
    /// Lower-case hex SHA-256 of the refresh token.
    pub token_hash: String,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The session this one was rotated into; itself when it was superseded before its
    /// refresh token was ever used (a rotation whose answer was lost).
    pub replaced_by: Option<i64>,
}

impl DriverSession {
    /// Whether the refresh token may be used at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

/// What [`Drivers::create_session`] stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDriverSession {
    pub driver_id: i64,
    pub chain: String,
    pub token_hash: String,
    pub user_agent: Option<String>,
    pub expires_at: DateTime<Utc>,
}

macro_rules! select_driver {
    ($rest:literal) => {
        concat!(
            "SELECT id, email, name, password_hash, created_at, updated_at FROM drivers ",
            $rest
        )
    };
}

macro_rules! select_session {
    ($rest:literal) => {
        concat!(
            "SELECT id, driver_id, chain, token_hash, user_agent, created_at, expires_at, ",
            "revoked_at, replaced_by FROM driver_sessions ",
            $rest
        )
    };
}

/// How emails are keyed: case never distinguishes two people.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The `drivers` and `driver_sessions` tables; from [`Database::drivers`].
#[derive(Debug, Clone, Copy)]
pub struct Drivers<'a> {
    pub(super) db: &'a Database,
}

impl Drivers<'_> {
    /// Stores a driver and returns the id; `Conflict` when the email is taken.
    pub async fn create(&self, new: &NewDriver) -> Result<i64, StorageError> {
        let email = normalize_email(&new.email);
        let now = Stamp::now();
        let done = with_pool!(self.db, |pool| {
            sqlx::query(
                "INSERT INTO drivers (email, name, password_hash, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(&email)
            .bind(&new.name)
            .bind(&new.password_hash)
            .bind(now)
            .bind(now)
            .execute(pool)
            .await
            .map(Done::from)
        })
        .map_err(|err| self.db.fail(err, "driver", format!("email `{email}`")))?;
        Ok(done.last_id)
    }

    /// The driver with this id, or `NotFound`.
    pub async fn get(&self, id: i64) -> Result<Driver, StorageError> {
        let found = with_pool!(self.db, |pool| {
            sqlx::query_as::<_, Driver>(select_driver!("WHERE id = ?"))
                .bind(id)
                .fetch_optional(pool)
                .await
        })
        .map_err(|err| self.db.fail(err, "driver", format!("id {id}")))?;
        found.ok_or_else(|| StorageError::not_found("driver", format!("id {id}")))
    }

    /// The driver with this email (any letter case), if there is one.
    pub async fn find_by_email(&self, email: &str) -> Result<Option<Driver>, StorageError> {
        let email = normalize_email(email);
        with_pool!(self.db, |pool| {
            sqlx::query_as::<_, Driver>(select_driver!("WHERE email = ?"))
                .bind(&email)
                .fetch_optional(pool)
                .await
        })
        .map_err(|err| self.db.fail(err, "driver", format!("email `{email}`")))
    }

    /// Replaces the driver's password hash; `NotFound` when there is no such driver.
    pub async fn set_password_hash(&self, id: i64, hash: &str) -> Result<(), StorageError> {
        let done = with_pool!(self.db, |pool| {
            sqlx::query("UPDATE drivers SET password_hash = ?, updated_at = ? WHERE id = ?")
                .bind(hash)
                .bind(Stamp::now())
                .bind(id)
                .execute(pool)
                .await
                .map(Done::from)
        })
        .map_err(|err| self.db.fail(err, "driver", format!("id {id}")))?;
        super::found_one(done, "driver", id)
    }

    /// Stores a session and returns its id; `NotFound` when the driver does not exist.
    pub async fn create_session(&self, new: &NewDriverSession) -> Result<i64, StorageError> {
        let done = with_pool!(self.db, |pool| {
            sqlx::query(
                "INSERT INTO driver_sessions (driver_id, chain, token_hash, user_agent, \
                 created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(new.driver_id)
            .bind(&new.chain)
            .bind(&new.token_hash)
            .bind(&new.user_agent)
            .bind(Stamp::now())
            .bind(Stamp::new(new.expires_at))
            .execute(pool)
            .await
            .map(Done::from)
        })
        .map_err(|err| {
            self.db.fail_child(
                err,
                "driver session",
                format!("chain `{}`", new.chain),
                "driver",
                format!("id {}", new.driver_id),
            )
        })?;
        Ok(done.last_id)
    }

    /// The session with this id, if there is one.
    pub async fn find_session(&self, id: i64) -> Result<Option<DriverSession>, StorageError> {
        with_pool!(self.db, |pool| {
            sqlx::query_as::<_, DriverSession>(select_session!("WHERE id = ?"))
                .bind(id)
                .fetch_optional(pool)
                .await
        })
        .map_err(|err| self.db.fail(err, "driver session", format!("id {id}")))
    }

    /// The session whose refresh token hashes to `token_hash`, revoked or not.
    pub async fn find_session_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<DriverSession>, StorageError> {
        with_pool!(self.db, |pool| {
            sqlx::query_as::<_, DriverSession>(select_session!("WHERE token_hash = ?"))
                .bind(token_hash)
                .fetch_optional(pool)
                .await
        })
        .map_err(|err| self.db.fail(err, "driver session", "a refresh token hash"))
    }

    /// Marks session `id` as rotated into `replacement`, only if it is still unrevoked; false
    /// when another request revoked or rotated it first (the caller treats that as reuse).
    pub async fn rotate_session(
        &self,
        id: i64,
        replacement: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        let done = with_pool!(self.db, |pool| {
            sqlx::query(
                "UPDATE driver_sessions SET revoked_at = ?, replaced_by = ? \
                 WHERE id = ? AND revoked_at IS NULL",
            )
            .bind(Stamp::new(at))
            .bind(replacement)
            .bind(id)
            .execute(pool)
            .await
            .map(Done::from)
        })
        .map_err(|err| self.db.fail(err, "driver session", format!("id {id}")))?;
        Ok(done.rows_affected == 1)
    }

    /// Replaces a rotation whose answer the client never received: `parent` was rotated into
    /// `lost`, which has not been used; `parent` now leads to `replacement`, and `lost` is
    /// revoked and leads nowhere, so presenting it later is a reuse like any other. Returns false, changing
    /// nothing, when `lost` is no longer the unused successor of `parent`.
    pub async fn reissue_rotation(
        &self,
        parent: i64,
        lost: i64,
        replacement: i64,
        at: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        let result = with_pool!(self.db, |pool| {
            async {
                let mut tx = pool.begin().await?;
                let moved = sqlx::query(
                    "UPDATE driver_sessions SET replaced_by = ? WHERE id = ? AND replaced_by = ?",
                )
                .bind(replacement)
                .bind(parent)
                .bind(lost)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                // Pointing at itself, the lost session leads nowhere: presenting it is a
                // reuse, never another lost answer.
                let superseded = sqlx::query(
                    "UPDATE driver_sessions SET revoked_at = ?, replaced_by = id \
                     WHERE id = ? AND revoked_at IS NULL AND replaced_by IS NULL",
                )
                .bind(Stamp::new(at))
                .bind(lost)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if moved == 1 && superseded == 1 {
                    tx.commit().await?;
                    Ok::<_, sqlx::Error>(true)
                } else {
                    tx.rollback().await?;
                    Ok(false)
                }
            }
            .await
        });
        result.map_err(|err| {
            self.db.fail(
                err,
                "driver session",
                format!("id {parent} (reissue of {lost})"),
            )
        })
    }

    /// Revokes one session from `at` on (revoking again keeps the first time); returns
    /// whether the session exists.
    pub async fn revoke_session(&self, id: i64, at: DateTime<Utc>) -> Result<bool, StorageError> {
        let done = with_pool!(self.db, |pool| {
            sqlx::query(
                "UPDATE driver_sessions SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?",
            )
            .bind(Stamp::new(at))
            .bind(id)
            .execute(pool)
            .await
            .map(Done::from)
        })
        .map_err(|err| self.db.fail(err, "driver session", format!("id {id}")))?;
        Ok(done.rows_affected == 1)
    }

    /// Revokes every session of a chain that is not revoked yet; returns how many.
    pub async fn revoke_chain(&self, chain: &str, at: DateTime<Utc>) -> Result<u64, StorageError> {
        let done = with_pool!(self.db, |pool| {
            sqlx::query(
                "UPDATE driver_sessions SET revoked_at = ? WHERE chain = ? AND revoked_at IS NULL",
            )
            .bind(Stamp::new(at))
            .bind(chain)
            .execute(pool)
            .await
            .map(Done::from)
        })
        .map_err(|err| {
            self.db
                .fail(err, "driver session", format!("chain `{chain}`"))
        })?;
        Ok(done.rows_affected)
    }

    /// Revokes every unrevoked session of the driver except `keep`; returns how many.
    pub async fn revoke_other_sessions(
        &self,
        driver_id: i64,
        keep: i64,
        at: DateTime<Utc>,
    ) -> Result<u64, StorageError> {
        let done = with_pool!(self.db, |pool| {
            sqlx::query(
                "UPDATE driver_sessions SET revoked_at = ? \
                 WHERE driver_id = ? AND id <> ? AND revoked_at IS NULL",
            )
            .bind(Stamp::new(at))
            .bind(driver_id)
            .bind(keep)
            .execute(pool)
            .await
            .map(Done::from)
        })
        .map_err(|err| {
            self.db
                .fail(err, "driver session", format!("driver id {driver_id}"))
        })?;
        Ok(done.rows_affected)
    }
}
