//! The audit log: who did what to what, when, and how it ended. Rows are only ever added.

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use super::time::Stamp;
use super::{Database, Done, StorageError};
use crate::domain::AuditOutcome;

/// A recorded action.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    /// Such as `operator:admin@example.com`, `api_key:1a2b3c4d5e6f`, `charger:CP-1`, `system`.
    pub actor: String,
    /// Such as `charge_point.create`.
    pub action: String,
    /// What was acted on, such as `charge_point:CP-1`.
    pub target: String,
    pub details: Json<serde_json::Value>,
    #[sqlx(try_from = "String")]
    pub outcome: AuditOutcome,
}

/// What [`Audit::record`] stores.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    pub occurred_at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    /// Any JSON; never secrets.
    pub details: serde_json::Value,
    pub outcome: AuditOutcome,
}

/// The `audit_log` table; from [`Database::audit`].
#[derive(Debug, Clone, Copy)]
pub struct Audit<'a> {
    pub(super) db: &'a Database,
}

impl Audit<'_> {
    /// Appends an entry and returns its id.
    pub async fn record(&self, entry: &NewAuditEntry) -> Result<i64, StorageError> {
        let done = with_pool!(self.db, |pool| {
            sqlx::query(
                "INSERT INTO audit_log (occurred_at, actor, action, target, details, outcome) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(Stamp::new(entry.occurred_at))
            .bind(&entry.actor)
            .bind(&entry.action)
            .bind(&entry.target)
            .bind(Json(&entry.details))
            .bind(entry.outcome.as_str())
            .execute(pool)
            .await
            .map(Done::from)
        })
        .map_err(|err| {
            self.db
                .fail(err, "audit entry", format!("action `{}`", entry.action))
        })?;
        Ok(done.last_id)
    }

    /// The latest `limit` entries, newest first.
    pub async fn recent(&self, limit: u32) -> Result<Vec<AuditEntry>, StorageError> {
        with_pool!(self.db, |pool| {
            sqlx::query_as::<_, AuditEntry>(
                "SELECT id, occurred_at, actor, action, target, details, outcome FROM audit_log \
                 ORDER BY occurred_at DESC, id DESC LIMIT ?",
            )
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })
        .map_err(|err| self.db.fail(err, "audit entry", "list"))
    }
}
