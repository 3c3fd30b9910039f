//! Operators' Back Office sessions.
//!
//! The cookie carries a random session id; only its SHA-256 (lower-case hex) is stored, so
//! the table alone signs nobody in. A session is active until it is revoked, idle for longer
//! than the caller's idle timeout (measured from `last_seen_at`), or past `expires_at`,
//! whichever comes first; the caller decides the timeouts, this module only compares.

use chrono::{DateTime, Utc};

use super::time::Stamp;
use super::{Database, Done, StorageError};

/// A stored session.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OperatorSession {
    pub id: i64,
    pub operator_id: i64,
    pub token_hash: String,
    /// The token the session's forms and unsafe requests carry.
    pub csrf_token: String,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for OperatorSession {
    // The CSRF token stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorSession")
            .field("id", &self.id)
            .field("operator_id", &self.operator_id)
            .field("created_at", &self.created_at)
            .field("last_seen_at", &self.last_seen_at)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

impl OperatorSession {
    /// Not revoked, not expired, and seen within `idle_timeout` of `now`.
    pub fn is_active(&self, now: DateTime<Utc>, idle_timeout: std::time::Duration) -> bool {
        let idle = chrono::Duration::from_std(idle_timeout).unwrap_or(chrono::Duration::MAX);
        self.revoked_at.is_none()
            && now < self.expires_at
            && self
                .last_seen_at
                .checked_add_signed(idle)
                .is_none_or(|until| now < until)
    }
}

/// What [`OperatorSessions::create`] stores.
#[derive(Clone, PartialEq, Eq)]
pub struct NewOperatorSession {
    pub operator_id: i64,
    /// SHA-256 of the session id, lower-case hex.
    pub token_hash: String,
    pub csrf_token: String,
    pub client_ip: Option<String>,
    /// Cut to 255 characters by the caller.
    pub user_agent: Option<String>,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for NewOperatorSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewOperatorSession")
            .field("operator_id", &self.operator_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, operator_id, token_hash, csrf_token, client_ip, user_agent, created_at, ",
            "last_seen_at, expires_at, revoked_at FROM operator_sessions ",
            $rest
        )
    };
}

/// The `operator_sessions` table; from [`Database::operator_sessions`].
#[derive(Debug, Clone, Copy)]
pub struct OperatorSessions<'a> {
    pub(super) db: &'a Database,
}

impl OperatorSessions<'_> {
    /// Stores a new session, seen now; `NotFound` for an unknown operator.
    pub async fn create(&self, new: &NewOperatorSession) -> Result<i64, StorageError> {
        let now = Stamp::now();
        let done = with_pool!(self.db, |pool| {
            sqlx::query(
                "INSERT INTO operator_sessions (operator_id, token_hash, csrf_token, client_ip, \
                 user_agent, created_at, last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(new.operator_id)
            .bind(&new.token_hash)
            .bind(&new.csrf_token)
            .bind(&new.client_ip)
            .bind(&new.user_agent)
            .bind(now)
            .bind(now)
            .bind(Stamp::new(new.expires_at))
            .execute(pool)
            .await
            .map(Done::from)
        })
        .map_err(|err| {
            self.db.fail_child(
                err,
                "operator session",
                format!("of operator {}", new.operator_id),
                "operator",
                format!("id {}", new.operator_id),
            )
        })?;
        Ok(done.last_id)
    }

    /// The session whose id hashes to `token_hash`, active or not.
    pub async fn find_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<OperatorSession>, StorageError> {
        with_pool!(self.db, |pool| {
            sqlx::query_as::<_, OperatorSession>(select!("WHERE token_hash = ?"))
                .bind(token_hash)
                .fetch_optional(pool)
                .await
        })
        .map_err(|err| self.db.fail(err, "operator session", "a session id hash"))
    }

    /// Records activity at `at`, unless the session is revoked.
    pub async fn touch(&self, id: i64, at: DateTime<Utc>) -> Result<(), StorageError> {
        with_pool!(self.db, |pool| {
            sqlx::query(
                "UPDATE operator_sessions SET last_seen_at = ? WHERE id = ? AND revoked_at IS NULL",
            )
            .bind(Stamp::new(at))
            .bind(id)
            .execute(pool)
            .await
            .map(|_| ())
        })
        .map_err(|err| self.db.fail(err, "operator session", format!("id {id}")))
    }

    /// Revokes session `id` (kept when it was revoked already); false when there is none.
    pub async fn revoke(&self, id: i64, at: DateTime<Utc>) -> Result<bool, StorageError> {
        let done = with_pool!(self.db, |pool| {
            sqlx::query(
                "UPDATE operator_sessions SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?",
            )
            .bind(Stamp::new(at))
            .bind(id)
            .execute(pool)
            .await
            .map(Done::from)
        })
        .map_err(|err| self.db.fail(err, "operator session", format!("id {id}")))?;
        Ok(done.rows_affected == 1)
    }

    /// Revokes every unrevoked session of an operator (disabled, password changed); how many.
    pub async fn revoke_all_of(
        &self,
        operator_id: i64,
        at: DateTime<Utc>,
    ) -> Result<u64, StorageError> {
        let done = with_pool!(self.db, |pool| {
            sqlx::query(
                "UPDATE operator_sessions SET revoked_at = ? \
                 WHERE operator_id = ? AND revoked_at IS NULL",
            )
            .bind(Stamp::new(at))
            .bind(operator_id)
            .execute(pool)
            .await
            .map(Done::from)
        })
        .map_err(|err| {
            self.db.fail(
                err,
                "operator session",
                format!("of operator {operator_id}"),
            )
        })?;
        Ok(done.rows_affected)
    }
}
