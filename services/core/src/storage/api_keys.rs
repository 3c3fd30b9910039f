//! Keys for the public API: a public prefix to find the key by, and a SHA-256 of the whole
//! key to check it with (see [`crate::credentials::ApiKey`]). The plain key is never stored.

use chrono::{DateTime, Utc};

use super::time::Stamp;
use super::{Database, Done, StorageError};

/// A stored API key.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ApiKeyRecord {
    pub id: i64,
    /// What the owner called it.
    pub name: String,
    pub prefix: String,
    /// Lower-case hex SHA-256 of the plain key.
    pub key_hash: String,
    /// Space-separated.
    pub scopes: String,
    /// The operator who made it; `None` for keys made by the system.
    pub operator_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The driver whose data the key reaches; `None` for operators' keys.
    pub driver_id: Option<i64>,
}

impl ApiKeyRecord {
    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.split_whitespace().any(|s| s == scope)
    }
}

/// What [`ApiKeys::create`] stores; prefix and hash come from
/// [`crate::credentials::ApiKey::generate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    pub name: String,
    pub prefix: String,
    pub key_hash: String,
    pub scopes: Vec<String>,
    pub operator_id: Option<i64>,
    pub driver_id: Option<i64>,
}

macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, name, prefix, key_hash, scopes, operator_id, created_at, last_used_at, ",
            "revoked_at, driver_id FROM api_keys ",
            $rest
        )
    };
}

/// The `api_keys` table; from [`Database::api_keys`].
#[derive(Debug, Clone, Copy)]
pub struct ApiKeys<'a> {
    pub(super) db: &'a Database,
}

impl ApiKeys<'_> {
    /// Stores a key and returns its id. `Conflict` when the prefix is taken (generate another
    /// key), `NotFound` when the operator does not exist.
    pub async fn create(&self, new: &NewApiKey) -> Result<i64, StorageError> {
        let scopes = new.scopes.join(" ");
        let result = with_pool!(self.db, |pool| {
            sqlx::query(
                "INSERT INTO api_keys (name, prefix, key_hash, scopes, operator_id, driver_id, \
                 created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&new.name)
            .bind(&new.prefix)
            .bind(&new.key_hash)
            .bind(&scopes)
            .bind(new.operator_id)
            .bind(new.driver_id)
            .bind(Stamp::now())
            .execute(pool)
            .await
            .map(Done::from)
        });
        result.map(|done| done.last_id).map_err(|err| {
            self.db.fail_child(
                err,
                "API key",
                format!("prefix `{}`", new.prefix),
                "operator or driver",
                format!(
                    "operator id {:?}, driver id {:?}",
                    new.operator_id, new.driver_id
                ),
            )
        })
    }

    /// The key with this prefix, revoked or not, if there is one.
    pub async fn find_by_prefix(&self, prefix: &str) -> Result<Option<ApiKeyRecord>, StorageError> {
        with_pool!(self.db, |pool| {
            sqlx::query_as::<_, ApiKeyRecord>(select!("WHERE prefix = ?"))
                .bind(prefix)
                .fetch_optional(pool)
                .await
        })
        .map_err(|err| self.db.fail(err, "API key", format!("prefix `{prefix}`")))
    }

    /// Revokes a key from `at` on; revoking again keeps the first time. `NotFound` when there
    /// is no such key.
    pub async fn revoke(&self, id: i64, at: DateTime<Utc>) -> Result<(), StorageError> {
        let done = with_pool!(self.db, |pool| {
            sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?")
                .bind(Stamp::new(at))
                .bind(id)
                .execute(pool)
                .await
                .map(Done::from)
        })
        .map_err(|err| self.db.fail(err, "API key", format!("id {id}")))?;
        super::found_one(done, "API key", id)
    }

    /// Notes that the key authenticated a request at `at`.
    pub async fn touch_last_used(&self, id: i64, at: DateTime<Utc>) -> Result<(), StorageError> {
        let done = with_pool!(self.db, |pool| {
            sqlx::query("UPDATE api_keys SET last_used_at = ? WHERE id = ?")
                .bind(Stamp::new(at))
                .bind(id)
                .execute(pool)
                .await
                .map(Done::from)
        })
        .map_err(|err| self.db.fail(err, "API key", format!("id {id}")))?;
        super::found_one(done, "API key", id)
    }

    /// A driver's keys, revoked ones too, newest first.
    pub async fn of_driver(&self, driver_id: i64) -> Result<Vec<ApiKeyRecord>, StorageError> {
        with_pool!(self.db, |pool| {
            sqlx::query_as::<_, ApiKeyRecord>(select!("WHERE driver_id = ? ORDER BY id DESC"))
                .bind(driver_id)
                .fetch_all(pool)
                .await
        })
        .map_err(|err| {
            self.db
                .fail(err, "API key", format!("of driver id {driver_id}"))
        })
    }

    /// Revokes a key only if it belongs to the driver; `NotFound` otherwise, so that another
    /// driver's key looks the same as one that does not exist.
    pub async fn revoke_of_driver(
        &self,
        driver_id: i64,
        id: i64,
        at: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let done = with_pool!(self.db, |pool| {
            sqlx::query(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) \
                 WHERE id = ? AND driver_id = ?",
            )
            .bind(Stamp::new(at))
            .bind(id)
            .bind(driver_id)
            .execute(pool)
            .await
            .map(Done::from)
        })
        .map_err(|err| self.db.fail(err, "API key", format!("id {id}")))?;
        super::found_one(done, "API key", id)
    }
}
