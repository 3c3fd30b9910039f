//! ID tokens drivers charge with (RFID cards, app tokens): OCPP idTag / IdToken.

use chrono::{DateTime, Utc};

use super::time::Stamp;
use super::{Database, Done, StorageError};
use crate::domain::IdTokenStatus;

/// A stored ID token.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct IdToken {
    pub id: i64,
    /// Unique, compared without regard to letter case (OCPP CiString).
    pub token: String,
    /// Such as `RFID` (OCPP IdTokenType / OCPI TokenType).
    pub token_type: String,
    #[sqlx(try_from = "String")]
    pub status: IdTokenStatus,
    pub expires_at: Option<DateTime<Utc>>,
    /// OCPP parentIdTag / groupIdToken.
    pub group_token: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The driver it belongs to; `None` for tokens operators manage.
    pub driver_id: Option<i64>,
    /// What the driver calls it.
    pub label: Option<String>,
}

impl IdToken {
    /// The status to answer with at `now`: an accepted token past its expiry is `Expired`.
    pub fn status_at(&self, now: DateTime<Utc>) -> IdTokenStatus {
        match self.expires_at {
            Some(expiry) if self.status == IdTokenStatus::Accepted && expiry <= now => {
                IdTokenStatus::Expired
            }
            _ => self.status,
        }
    }
}

/// What [`IdTokens::create`] stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIdToken {
    pub token: String,
    pub token_type: String,
    pub status: IdTokenStatus,
    pub expires_at: Option<DateTime<Utc>>,
    pub group_token: Option<String>,
    pub driver_id: Option<i64>,
    pub label: Option<String>,
}

macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, token, token_type, status, expires_at, group_token, created_at, ",
            "driver_id, label FROM id_tokens ",
            $rest
        )
    };
}

/// The `id_tokens` table; from [`Database::id_tokens`].
#[derive(Debug, Clone, Copy)]
pub struct IdTokens<'a> {
    pub(super) db: &'a Database,
}

impl IdTokens<'_> {
    /// Stores a token and returns its id; `Conflict` when it exists (in any letter case).
    pub async fn create(&self, new: &NewIdToken) -> Result<i64, StorageError> {
        let done = with_pool!(self.db, |pool| {
            sqlx::query(
                "INSERT INTO id_tokens (token, token_type, status, expires_at, group_token, \
                 created_at, driver_id, label) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&new.token)
            .bind(&new.token_type)
            .bind(new.status.as_str())
            .bind(Stamp::opt(new.expires_at))
            .bind(new.group_token.as_deref())
            .bind(Stamp::now())
            .bind(new.driver_id)
            .bind(new.label.as_deref())
            .execute(pool)
            .await
            .map(Done::from)
        })
        .map_err(|err| {
            self.db
                .fail(err, "ID token", format!("token `{}`", new.token))
        })?;
        Ok(done.last_id)
    }

    /// The token, looked up without regard to letter case, if it is known.
    pub async fn find(&self, token: &str) -> Result<Option<IdToken>, StorageError> {
        with_pool!(self.db, |pool| {
            sqlx::query_as::<_, IdToken>(select!("WHERE token = ?"))
                .bind(token)
                .fetch_optional(pool)
                .await
        })
        .map_err(|err| self.db.fail(err, "ID token", format!("token `{token}`")))
    }

    /// Blocks, unblocks or invalidates a token; `NotFound` when it is not known.
    pub async fn set_status(&self, token: &str, status: IdTokenStatus) -> Result<(), StorageError> {
        let done = with_pool!(self.db, |pool| {
            sqlx::query("UPDATE id_tokens SET status = ? WHERE token = ?")
                .bind(status.as_str())
                .bind(token)
                .execute(pool)
                .await
                .map(Done::from)
        })
        .map_err(|err| self.db.fail(err, "ID token", format!("token `{token}`")))?;
        if done.rows_affected == 0 {
            return Err(StorageError::not_found(
                "ID token",
                format!("token `{token}`"),
            ));
        }
        Ok(())
    }

    /// A driver's tokens, oldest first.
    pub async fn of_driver(&self, driver_id: i64) -> Result<Vec<IdToken>, StorageError> {
        with_pool!(self.db, |pool| {
            sqlx::query_as::<_, IdToken>(select!("WHERE driver_id = ? ORDER BY created_at, id"))
                .bind(driver_id)
                .fetch_all(pool)
                .await
        })
        .map_err(|err| {
            self.db
                .fail(err, "ID token", format!("of driver id {driver_id}"))
        })
    }

    /// Sets the status of a token only if it belongs to the driver; `NotFound` otherwise, so
    /// that another driver's token looks the same as one that does not exist.
    pub async fn set_status_of_driver(
        &self,
        driver_id: i64,
        token: &str,
        status: IdTokenStatus,
    ) -> Result<(), StorageError> {
        let done = with_pool!(self.db, |pool| {
            sqlx::query("UPDATE id_tokens SET status = ? WHERE token = ? AND driver_id = ?")
                .bind(status.as_str())
                .bind(token)
                .bind(driver_id)
                .execute(pool)
                .await
                .map(Done::from)
        })
        .map_err(|err| self.db.fail(err, "ID token", format!("token `{token}`")))?;
        if done.rows_affected == 0 {
            return Err(StorageError::not_found(
                "ID token",
                format!("token `{token}` of driver id {driver_id}"),
            ));
        }
        Ok(())
    }
}
