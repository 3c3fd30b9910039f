//! The operators' views across aggregates: the charger list with its search and filters, and
//! the figures of the Back Office dashboard.
//!
//! Every search value is bound; the SQL text depends only on which filters are present.

use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;

use super::api_keys::ApiKeyRecord;
use super::audit::AuditEntry;
use super::charge_points::ChargePoint;
use super::id_tokens::IdToken;
use super::operators::Operator;
use super::time::Stamp;
use super::{Database, Done, StorageError};
use crate::domain::{AuditOutcome, IdTokenStatus, RegistrationStatus, Role};

/// What the charger list is narrowed to; every part optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChargePointFilter {
    /// Part of the identity, vendor or model, in any letter case.
    pub text: Option<String>,
    pub registration: Option<RegistrationStatus>,
    /// The charger's own (connector 0) last status, or any of its EVSEs', such as `Faulted`.
    pub status: Option<String>,
}

/// A page of chargers and how many match in all.
#[derive(Debug, Clone, PartialEq)]
pub struct ChargePointPage {
    pub items: Vec<ChargePoint>,
    pub total: u64,
}

/// The dashboard's stored figures (whether chargers are connected is in the directory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Figures {
    pub chargers: u64,
    /// Chargers whose own status or one of whose EVSEs' is `Faulted`.
    pub faulted: u64,
    pub active_transactions: u64,
    /// Energy of the transactions that stopped since the given instant, in Wh.
    pub energy_wh: i64,
}

/// Read-only queries for operators; from [`Database::overview`].
#[derive(Debug, Clone, Copy)]
pub struct Overview<'a> {
    pub(super) db: &'a Database,
}

impl Database {
    pub fn overview(&self) -> Overview<'_> {
        Overview { db: self }
    }
}

/// `%`, `_` and the escape character itself match literally (the escape is `!` on both
/// backends: a backslash means different things in MySQL's and SQLite's string literals).
fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '!') {
            pattern.push('!');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

macro_rules! push_filter {
    ($query:expr, $filter:expr, $pattern:expr) => {{
        $query.push(" WHERE 1 = 1");
        if let Some(pattern) = $pattern {
            $query.push(" AND (cp.identity LIKE ");
            $query.push_bind(pattern.clone());
            $query.push(" ESCAPE '!' OR cp.vendor LIKE ");
            $query.push_bind(pattern.clone());
            $query.push(" ESCAPE '!' OR cp.model LIKE ");
            $query.push_bind(pattern.clone());
            $query.push(" ESCAPE '!')");
        }
        if let Some(registration) = $filter.registration {
            $query.push(" AND cp.registration_status = ");
            $query.push_bind(registration.as_str());
        }
        if let Some(status) = &$filter.status {
            $query.push(" AND (cp.status = ");
            $query.push_bind(status.clone());
            $query.push(
                " OR EXISTS (SELECT 1 FROM evses e WHERE e.charge_point_id = cp.id AND e.status = ",
            );
            $query.push_bind(status.clone());
            $query.push("))");
        }
    }};
}

impl Overview<'_> {
    /// The chargers matching `filter`, by identity, `limit` of them from `offset` on.
    pub async fn charge_points(
        &self,
        filter: &ChargePointFilter,
        offset: u64,
        limit: u32,
    ) -> Result<ChargePointPage, StorageError> {
        let pattern = filter
            .text
            .as_deref()
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(like_pattern);
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let (items, total) = with_pool!(self.db, |pool| {
            let mut query = QueryBuilder::new(
                "SELECT cp.id, cp.identity, cp.location_id, cp.ocpp_password_hash, \
                 cp.registration_status, cp.vendor, cp.model, cp.serial_number, \
                 cp.firmware_version, cp.ocpp_version, cp.last_seen_at, cp.created_at, \
                 cp.updated_at, cp.security_profile, cp.charge_box_serial_number, cp.iccid, \
                 cp.imsi, cp.meter_type, cp.meter_serial_number, cp.status, \
                 cp.status_error_code, cp.status_updated_at, cp.firmware_status, \
                 cp.firmware_status_at, cp.diagnostics_status, cp.diagnostics_status_at, \
                 cp.local_list_version FROM charge_points cp",
            );
            push_filter!(query, filter, &pattern);
            query.push(" ORDER BY cp.identity, cp.id LIMIT ");
            query.push_bind(i64::from(limit));
            query.push(" OFFSET ");
            query.push_bind(offset);
            let items = query.build_query_as::<ChargePoint>().fetch_all(pool).await;
            let mut count = QueryBuilder::new("SELECT COUNT(*) FROM charge_points cp");
            push_filter!(count, filter, &pattern);
            let total = count.build_query_scalar::<i64>().fetch_one(pool).await;
            (items, total)
        });
        let fail = |err| self.db.fail(err, "charge point", "search");
        Ok(ChargePointPage {
            items: items.map_err(fail)?,
            total: u64::try_from(total.map_err(fail)?).unwrap_or_default(),
        })
    }

    /// Every charger's identity, by identity.
    pub async fn identities(&self) -> Result<Vec<String>, StorageError> {
        with_pool!(self.db, |pool| {
            sqlx::query_scalar::<_, String>("SELECT identity FROM charge_points ORDER BY identity")
                .fetch_all(pool)
                .await
        })
        .map_err(|err| self.db.fail(err, "charge point", "identities"))
    }

    /// The dashboard's figures. Energy counts the transactions stopped at or after `since`,
    /// whole, and what the running ones delivered so far: the highest energy register reading
    /// (without a phase; the register only grows) above the meter at the start.
    pub async fn figures(&self, since: DateTime<Utc>) -> Result<Figures, StorageError> {
        let since = Stamp::new(since);
        let result = with_pool!(self.db, |pool| {
            sqlx::query_as::<_, (i64, i64, i64, i64, f64)>(
                "SELECT \
                 (SELECT COUNT(*) FROM charge_points), \
                 (SELECT COUNT(*) FROM charge_points cp WHERE cp.status = 'Faulted' OR EXISTS \
                   (SELECT 1 FROM evses e WHERE e.charge_point_id = cp.id AND e.status = 'Faulted')), \
                 (SELECT COUNT(*) FROM transactions WHERE stopped_at IS NULL), \
                 (SELECT CAST(COALESCE(SUM(meter_stop_wh - meter_start_wh), 0) AS SIGNED) \
                   FROM transactions WHERE stopped_at >= ? AND meter_stop_wh >= meter_start_wh), \
                 (SELECT COALESCE(SUM(reading.wh - t.meter_start_wh), 0) * 1.0 \
                   FROM transactions t JOIN \
                   (SELECT transaction_id, \
                     MAX(CASE WHEN unit = 'kWh' THEN value * 1000 ELSE value END) AS wh \
                     FROM meter_values \
                     WHERE measurand = 'Energy.Active.Import.Register' \
                     AND COALESCE(phase, '') = '' AND unit IN ('Wh', 'kWh') \
                     AND transaction_id IN (SELECT id FROM transactions WHERE stopped_at IS NULL) \
                     GROUP BY transaction_id) reading ON reading.transaction_id = t.id \
                   WHERE t.stopped_at IS NULL AND reading.wh >= t.meter_start_wh)",
            )
            .bind(since)
            .fetch_one(pool)
            .await
        })
        .map_err(|err| self.db.fail(err, "dashboard figures", "counts"))?;
        let count = |n: i64| u64::try_from(n).unwrap_or_default();
        Ok(Figures {
            chargers: count(result.0),
            faulted: count(result.1),
            active_transactions: count(result.2),
            energy_wh: result.3 + result.4.round() as i64,
        })
    }
}

/// What the audit log page is narrowed to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Part of the actor, such as an operator's email.
    pub actor: Option<String>,
    /// Part of the action, such as `command`.
    pub action: Option<String>,
    /// Part of the target, such as a charger's id.
    pub target: Option<String>,
    pub outcome: Option<AuditOutcome>,
}

macro_rules! push_audit_filter {
    ($query:expr, $patterns:expr, $outcome:expr) => {{
        $query.push(" WHERE 1 = 1");
        for (column, pattern) in $patterns {
            if let Some(pattern) = pattern {
                $query.push(" AND ");
                $query.push(column);
                $query.push(" LIKE ");
                $query.push_bind(pattern.clone());
                $query.push(" ESCAPE '!'");
            }
        }
        if let Some(outcome) = $outcome {
            $query.push(" AND outcome = ");
            $query.push_bind(outcome.as_str());
        }
    }};
}

/// Operators and their roles, for admins.
impl Overview<'_> {
    /// Every operator, by email.
    pub async fn operators(&self) -> Result<Vec<Operator>, StorageError> {
        with_pool!(self.db, |pool| {
            sqlx::query_as::<_, Operator>(
                "SELECT id, email, display_name, password_hash, role, disabled, created_at \
                 FROM operators ORDER BY email",
            )
            .fetch_all(pool)
            .await
        })
        .map_err(|err| self.db.fail(err, "operator", "list"))
    }

    /// Changes an operator's role; `NotFound` when there is no such operator.
    pub async fn set_operator_role(&self, id: i64, role: Role) -> Result<(), StorageError> {
        let done = with_pool!(self.db, |pool| {
            sqlx::query("UPDATE operators SET role = ? WHERE id = ?")
                .bind(role.as_str())
                .bind(id)
                .execute(pool)
                .await
                .map(Done::from)
        })
        .map_err(|err| self.db.fail(err, "operator", format!("id {id}")))?;
        super::found_one(done, "operator", id)
    }

    /// Audit entries matching `filter`, newest first, `limit` of them from `offset` on, and
    /// how many match in all.
    pub async fn audit(
        &self,
        filter: &AuditFilter,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<AuditEntry>, u64), StorageError> {
        let pattern = |text: &Option<String>| {
            text.as_deref()
                .map(str::trim)
                .filter(|text| !text.is_empty())
                .map(like_pattern)
        };
        let patterns = [
            ("actor", pattern(&filter.actor)),
            ("action", pattern(&filter.action)),
            ("target", pattern(&filter.target)),
        ];
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let (items, total) = with_pool!(self.db, |pool| {
            let mut query = QueryBuilder::new(
                "SELECT id, occurred_at, actor, action, target, details, outcome FROM audit_log",
            );
            push_audit_filter!(query, &patterns, filter.outcome);
            query.push(" ORDER BY occurred_at DESC, id DESC LIMIT ");
            query.push_bind(i64::from(limit));
            query.push(" OFFSET ");
            query.push_bind(offset);
            let items = query.build_query_as::<AuditEntry>().fetch_all(pool).await;
            let mut count = QueryBuilder::new("SELECT COUNT(*) FROM audit_log");
            push_audit_filter!(count, &patterns, filter.outcome);
            let total = count.build_query_scalar::<i64>().fetch_one(pool).await;
            (items, total)
        });
        let fail = |err| self.db.fail(err, "audit entry", "search");
        Ok((
            items.map_err(fail)?,
            u64::try_from(total.map_err(fail)?).unwrap_or_default(),
        ))
    }
}

/// What the transaction list is narrowed to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransactionFilter {
    /// Part of the charger's identity.
    pub charger: Option<String>,
    /// Part of the ID token.
    pub id_token: Option<String>,
    /// Only running (`true`) or only ended (`false`) ones.
    pub active: Option<bool>,
}

/// A transaction with its charger's identity, for lists.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TransactionListing {
    pub id: i64,
    pub identity: String,
    pub evse_number: i32,
    pub id_token: String,
    pub meter_start_wh: i64,
    pub meter_stop_wh: Option<i64>,
    pub started_at: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub stop_reason: Option<String>,
}

macro_rules! push_transaction_filter {
    ($query:expr, $charger:expr, $token:expr, $active:expr) => {{
        $query.push(" WHERE 1 = 1");
        if let Some(pattern) = $charger {
            $query.push(" AND cp.identity LIKE ");
            $query.push_bind(pattern.clone());
            $query.push(" ESCAPE '!'");
        }
        if let Some(pattern) = $token {
            $query.push(" AND t.id_token LIKE ");
            $query.push_bind(pattern.clone());
            $query.push(" ESCAPE '!'");
        }
        match $active {
            Some(true) => {
                $query.push(" AND t.stopped_at IS NULL");
            }
            Some(false) => {
                $query.push(" AND t.stopped_at IS NOT NULL");
            }
            None => {}
        }
    }};
}

impl Overview<'_> {
    /// Transactions matching `filter`, newest first, a page of them and how many in all.
    pub async fn transactions(
        &self,
        filter: &TransactionFilter,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<TransactionListing>, u64), StorageError> {
        let pattern = |text: &Option<String>| {
            text.as_deref()
                .map(str::trim)
                .filter(|text| !text.is_empty())
                .map(like_pattern)
        };
        let (charger, token) = (pattern(&filter.charger), pattern(&filter.id_token));
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let (items, total) = with_pool!(self.db, |pool| {
            let mut query = QueryBuilder::new(
                "SELECT t.id, cp.identity, t.evse_number, t.id_token, t.meter_start_wh, \
                 t.meter_stop_wh, t.started_at, t.stopped_at, t.stop_reason \
                 FROM transactions t JOIN charge_points cp ON cp.id = t.charge_point_id",
            );
            push_transaction_filter!(query, &charger, &token, filter.active);
            query.push(" ORDER BY t.started_at DESC, t.id DESC LIMIT ");
            query.push_bind(i64::from(limit));
            query.push(" OFFSET ");
            query.push_bind(offset);
            let items = query
                .build_query_as::<TransactionListing>()
                .fetch_all(pool)
                .await;
            let mut count = QueryBuilder::new(
                "SELECT COUNT(*) FROM transactions t JOIN charge_points cp ON cp.id = t.charge_point_id",
            );
            push_transaction_filter!(count, &charger, &token, filter.active);
            let total = count.build_query_scalar::<i64>().fetch_one(pool).await;
            (items, total)
        });
        let fail = |err| self.db.fail(err, "transaction", "search");
        Ok((
            items.map_err(fail)?,
            u64::try_from(total.map_err(fail)?).unwrap_or_default(),
        ))
    }
}

/// What the ID token list is narrowed to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdTokenFilter {
    /// Part of the token, its label or its group.
    pub text: Option<String>,
    pub status: Option<IdTokenStatus>,
}

macro_rules! push_token_filter {
    ($query:expr, $pattern:expr, $status:expr) => {{
        $query.push(" WHERE 1 = 1");
        if let Some(pattern) = $pattern {
            $query.push(" AND (token LIKE ");
            $query.push_bind(pattern.clone());
            $query.push(" ESCAPE '!' OR label LIKE ");
            $query.push_bind(pattern.clone());
            $query.push(" ESCAPE '!' OR group_token LIKE ");
            $query.push_bind(pattern.clone());
            $query.push(" ESCAPE '!')");
        }
        if let Some(status) = $status {
            $query.push(" AND status = ");
            $query.push_bind(status.as_str());
        }
    }};
}

impl Overview<'_> {
    /// ID tokens matching `filter`, by token, a page of them and how many in all.
    pub async fn id_tokens(
        &self,
        filter: &IdTokenFilter,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<IdToken>, u64), StorageError> {
        let pattern = filter
            .text
            .as_deref()
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(like_pattern);
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let (items, total) = with_pool!(self.db, |pool| {
            let mut query = QueryBuilder::new(
                "SELECT id, token, token_type, status, expires_at, group_token, created_at, \
                 driver_id, label FROM id_tokens",
            );
            push_token_filter!(query, &pattern, filter.status);
            query.push(" ORDER BY token, id LIMIT ");
            query.push_bind(i64::from(limit));
            query.push(" OFFSET ");
            query.push_bind(offset);
            let items = query.build_query_as::<IdToken>().fetch_all(pool).await;
            let mut count = QueryBuilder::new("SELECT COUNT(*) FROM id_tokens");
            push_token_filter!(count, &pattern, filter.status);
            let total = count.build_query_scalar::<i64>().fetch_one(pool).await;
            (items, total)
        });
        let fail = |err| self.db.fail(err, "ID token", "search");
        Ok((
            items.map_err(fail)?,
            u64::try_from(total.map_err(fail)?).unwrap_or_default(),
        ))
    }

    /// Sets a token's status, expiry and group at once; `NotFound` when it is not known.
    pub async fn set_id_token_terms(
        &self,
        token: &str,
        status: IdTokenStatus,
        expires_at: Option<DateTime<Utc>>,
        group_token: Option<&str>,
    ) -> Result<(), StorageError> {
        let done = with_pool!(self.db, |pool| {
            sqlx::query(
                "UPDATE id_tokens SET status = ?, expires_at = ?, group_token = ? WHERE token = ?",
            )
            .bind(status.as_str())
            .bind(Stamp::opt(expires_at))
            .bind(group_token)
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
}

impl Overview<'_> {
    /// The operators' API keys (not drivers'), newest first, revoked ones too.
    pub async fn operator_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StorageError> {
        with_pool!(self.db, |pool| {
            sqlx::query_as::<_, ApiKeyRecord>(
                "SELECT id, name, prefix, key_hash, scopes, operator_id, created_at, \
                 last_used_at, revoked_at, driver_id FROM api_keys WHERE driver_id IS NULL \
                 ORDER BY created_at DESC, id DESC",
            )
            .fetch_all(pool)
            .await
        })
        .map_err(|err| self.db.fail(err, "API key", "list"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_match_wildcards_literally() {
        assert_eq!(like_pattern("CP-1"), "%CP-1%");
        assert_eq!(like_pattern("50%_off!"), "%50!%!_off!!%");
    }
}
