//! Charging sessions (OCPP transactions) and the meter values sampled during them.
//!
//! Chargers resend messages whose reply they missed, so starting and stopping are idempotent:
//! the same StartTransaction gets the same transaction id back, and a repeated stop changes
//! nothing. Meter values are too: a sample is identified by charger, EVSE, time, measurand,
//! phase, location and context, and storing it again is ignored.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use sqlx::{Connection, Executor, QueryBuilder};

use super::error::{is_foreign_key_violation, is_unique_violation};
use super::time::Stamp;
use super::{Database, Done, StorageError};
use crate::domain::EnergyWh;

/// Rows per meter-value INSERT. Each row binds 10 values, so a statement holds 10,000
/// placeholders: well under MySQL's 65,535 and SQLite's 32,766, and a few hundred KB of text.
const METER_VALUE_ROWS_PER_INSERT: usize = 1_000;

/// A stored transaction; its `id` is the OCPP 1.6 transactionId.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Transaction {
    pub id: i64,
    pub charge_point_id: i64,
    pub evse_number: i32,
    /// The ID token as the charger presented it.
    pub id_token: String,
    pub meter_start_wh: EnergyWh,
    pub meter_stop_wh: Option<EnergyWh>,
    pub started_at: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
    /// OCPP stop reason such as `Local` or `EVDisconnected`.
    pub stop_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The reservationId the charger started with, as it sent it (not checked against
    /// [`super::Reservations`]).
    pub reservation_id: Option<i64>,
    /// The idTag StopTransaction named, when it named one.
    pub stop_id_token: Option<String>,
    /// The idTagInfo status StartTransaction was answered with, such as `Accepted`.
    pub start_auth_status: Option<String>,
}

impl Transaction {
    /// Energy delivered, once the transaction has stopped.
    pub fn energy(&self) -> Option<EnergyWh> {
        self.meter_stop_wh?.since(self.meter_start_wh)
    }
}

/// What [`Transactions::start`] stores (OCPP StartTransaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTransaction {
    pub charge_point_id: i64,
    pub evse_number: i32,
    pub id_token: String,
    pub meter_start_wh: EnergyWh,
    pub started_at: DateTime<Utc>,
    pub reservation_id: Option<i64>,
    /// The idTagInfo status answered, as spelled on the wire.
    pub start_auth_status: Option<String>,
}

/// What [`Transactions::stop`] stores (OCPP StopTransaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopTransaction {
    pub meter_stop_wh: EnergyWh,
    pub stopped_at: DateTime<Utc>,
    pub stop_reason: Option<String>,
    /// The idTag of whoever stopped it, when the charger sent one.
    pub stop_id_token: Option<String>,
}

/// One sampled value (OCPP SampledValue), with the charger's spelling of each field. A phase,
/// context or location the charger did not give is `None` (stored as an empty text).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct MeterValue {
    pub id: i64,
    pub transaction_id: Option<i64>,
    pub charge_point_id: i64,
    /// 0 is the charger's main meter.
    pub evse_number: i32,
    pub sampled_at: DateTime<Utc>,
    /// Such as `Energy.Active.Import.Register`.
    pub measurand: String,
    pub phase: Option<String>,
    /// Such as `Wh` or `W`.
    pub unit: String,
    pub value: f64,
    /// Such as `Sample.Periodic`.
    pub context: Option<String>,
    /// Such as `Outlet`.
    pub location: Option<String>,
}

/// What [`Transactions::add_meter_values`] and [`Transactions::insert_meter_values_bulk`] store.
/// `Some("")` for phase, context or location is the same as `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMeterValue {
    pub transaction_id: Option<i64>,
    pub charge_point_id: i64,
    pub evse_number: i32,
    pub sampled_at: DateTime<Utc>,
    pub measurand: String,
    pub phase: Option<String>,
    pub unit: String,
    pub value: f64,
    pub context: Option<String>,
    pub location: Option<String>,
}

macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, charge_point_id, evse_number, id_token, meter_start_wh, meter_stop_wh, ",
            "started_at, stopped_at, stop_reason, created_at, reservation_id, stop_id_token, ",
            "start_auth_status FROM transactions ",
            $rest
        )
    };
}

/// The `transactions` and `meter_values` tables; from [`Database::transactions`].
#[derive(Debug, Clone, Copy)]
pub struct Transactions<'a> {
    pub(super) db: &'a Database,
}

impl Transactions<'_> {
    /// Records a started transaction and returns its id. A resent start (same charger, EVSE
    /// and start time, same token and meter reading) returns the id of the first; a different
    /// start at the same instant on the same EVSE is a `Conflict`. `NotFound` when the charger
    /// does not exist.
    pub async fn start(&self, new: &NewTransaction) -> Result<i64, StorageError> {
        let started_at = Stamp::new(new.started_at);
        let result = with_pool!(self.db, |pool| {
            sqlx::query(
                "INSERT INTO transactions (charge_point_id, evse_number, id_token, meter_start_wh, \
                 started_at, created_at, reservation_id, start_auth_status) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(new.charge_point_id)
            .bind(new.evse_number)
            .bind(&new.id_token)
            .bind(new.meter_start_wh)
            .bind(started_at)
            .bind(Stamp::now())
            .bind(new.reservation_id)
            .bind(new.start_auth_status.as_deref())
            .execute(pool)
            .await
            .map(Done::from)
        });
        let key = || {
            format!(
                "start on EVSE {} of charge point id {} at {}",
                new.evse_number, new.charge_point_id, new.started_at
            )
        };
        match result {
            Ok(done) => Ok(done.last_id),
            Err(err) if is_foreign_key_violation(&err) => Err(StorageError::not_found(
                "charge point",
                format!("id {}", new.charge_point_id),
            )),
            Err(err) if is_unique_violation(&err) => {
                let existing = with_pool!(self.db, |pool| {
                    sqlx::query_as::<_, Transaction>(select!(
                        "WHERE charge_point_id = ? AND evse_number = ? AND started_at = ?"
                    ))
                    .bind(new.charge_point_id)
                    .bind(new.evse_number)
                    .bind(started_at)
                    .fetch_optional(pool)
                    .await
                })
                .map_err(|err| self.db.fail(err, "transaction", key()))?;
                match existing {
                    Some(tx)
                        if tx.id_token.eq_ignore_ascii_case(&new.id_token)
                            && tx.meter_start_wh == new.meter_start_wh =>
                    {
                        Ok(tx.id)
                    }
                    _ => Err(StorageError::Conflict {
                        entity: "transaction",
                        key: key(),
                    }),
                }
            }
            Err(err) => Err(self.db.fail(err, "transaction", key())),
        }
    }

    /// Records the end of a transaction. Stopping a stopped transaction changes nothing (the
    /// first stop wins), so resent StopTransactions are harmless. `NotFound` when there is no
    /// such transaction.
    pub async fn stop(&self, id: i64, stop: &StopTransaction) -> Result<(), StorageError> {
        let done = with_pool!(self.db, |pool| {
            sqlx::query(
                "UPDATE transactions SET meter_stop_wh = ?, stopped_at = ?, stop_reason = ?, \
                 stop_id_token = ? WHERE id = ? AND stopped_at IS NULL",
            )
            .bind(stop.meter_stop_wh)
            .bind(Stamp::new(stop.stopped_at))
            .bind(stop.stop_reason.as_deref())
            .bind(stop.stop_id_token.as_deref())
            .bind(id)
            .execute(pool)
            .await
            .map(Done::from)
        })
        .map_err(|err| self.db.fail(err, "transaction", format!("id {id}")))?;
        if done.rows_affected == 0 {
            // Either already stopped (fine) or missing (get says NotFound).
            self.get(id).await?;
        }
        Ok(())
    }

    /// The transaction with this id, or `NotFound`.
    pub async fn get(&self, id: i64) -> Result<Transaction, StorageError> {
        let found = with_pool!(self.db, |pool| {
            sqlx::query_as::<_, Transaction>(select!("WHERE id = ?"))
                .bind(id)
                .fetch_optional(pool)
                .await
        })
        .map_err(|err| self.db.fail(err, "transaction", format!("id {id}")))?;
        found.ok_or_else(|| StorageError::not_found("transaction", format!("id {id}")))
    }

    /// The transaction running on an EVSE: the latest one there that has not stopped.
    pub async fn active_on(
        &self,
        charge_point_id: i64,
        evse_number: i32,
    ) -> Result<Option<Transaction>, StorageError> {
        with_pool!(self.db, |pool| {
            sqlx::query_as::<_, Transaction>(select!(
                "WHERE charge_point_id = ? AND evse_number = ? AND stopped_at IS NULL \
                 ORDER BY started_at DESC, id DESC LIMIT 1"
            ))
            .bind(charge_point_id)
            .bind(evse_number)
            .fetch_optional(pool)
            .await
        })
        .map_err(|err| {
            self.db.fail(
                err,
                "transaction",
                format!("running on EVSE {evse_number} of charge point id {charge_point_id}"),
            )
        })
    }

    /// The transactions started with this ID token (in any letter case) that have not
    /// stopped, oldest first: more than one means the token is in use twice (ConcurrentTx).
    pub async fn active_for_token(&self, token: &str) -> Result<Vec<Transaction>, StorageError> {
        with_pool!(self.db, |pool| {
            sqlx::query_as::<_, Transaction>(select!(
                "WHERE id_token = ? AND stopped_at IS NULL ORDER BY started_at, id"
            ))
            .bind(token)
            .fetch_all(pool)
            .await
        })
        .map_err(|err| {
            self.db.fail(
                err,
                "transaction",
                format!("running with ID token `{token}`"),
            )
        })
    }

    /// The transaction with this id if it was started on this charger, else `None`: a
    /// charger's MeterValues may only be linked to its own transactions.
    pub async fn belongs_to(
        &self,
        transaction_id: i64,
        charge_point_id: i64,
    ) -> Result<Option<Transaction>, StorageError> {
        with_pool!(self.db, |pool| {
            sqlx::query_as::<_, Transaction>(select!("WHERE id = ? AND charge_point_id = ?"))
                .bind(transaction_id)
                .bind(charge_point_id)
                .fetch_optional(pool)
                .await
        })
        .map_err(|err| {
            self.db.fail(
                err,
                "transaction",
                format!("id {transaction_id} of charge point id {charge_point_id}"),
            )
        })
    }

    /// Stores a batch of sampled values (one MeterValues message, or a group of them from the
    /// OCPP meter writer) all or nothing, without counting the new rows; samples
    /// stored before (a resent message) are skipped, the first stored copy wins. `NotFound`
    /// when a value names a charger or transaction that does not exist.
    pub async fn add_meter_values(&self, values: &[NewMeterValue]) -> Result<(), StorageError> {
        self.insert_meter_values(values, false).await.map(|_| ())
    }

    /// Stores many sampled values (an import, a charger's backlog) with multi-row INSERTs of
    /// up to 1,000 rows, all in one database transaction, and returns how many were new.
    /// Samples stored before, or repeated within `values`, are skipped (the first copy wins).
    /// `NotFound`, with nothing stored, when a value names a charger or transaction that does
    /// not exist.
    pub async fn insert_meter_values_bulk(
        &self,
        values: &[NewMeterValue],
    ) -> Result<u64, StorageError> {
        self.insert_meter_values(values, true).await
    }

    /// Both of the above; counts the new rows only when `count` is set, since MySQL needs two
    /// extra queries for that.
    async fn insert_meter_values(
        &self,
        values: &[NewMeterValue],
        count: bool,
    ) -> Result<u64, StorageError> {
        if values.is_empty() {
            return Ok(0);
        }
        // Not `INSERT IGNORE` on MySQL: that would also turn a missing charger or transaction
        // (a foreign key) into a warning and drop the row.
        let (mysql, skip_duplicates) = match self.db {
            Database::MySql(_) => (true, " ON DUPLICATE KEY UPDATE id = id"),
            Database::Sqlite(_) => (false, " ON CONFLICT DO NOTHING"),
        };
        let result = with_pool!(self.db, |pool| {
            async {
                let mut connection = pool.acquire().await?;
                // sqlx connects to MySQL with CLIENT_FOUND_ROWS, so a skipped duplicate counts
                // as an affected row like an insert. New rows are counted instead as the rows
                // above the highest id of the transaction's snapshot: our own inserts are the
                // only ones a REPEATABLE READ snapshot adds (whatever the server's default
                // level), and reading MAX(id) first is what takes the snapshot.
                let mysql_count = mysql && count;
                if mysql_count {
                    connection
                        .execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                        .await?;
                }
                let mut tx = connection.begin().await?;
                let highest_before = if mysql_count {
                    sqlx::query_scalar::<_, i64>("SELECT COALESCE(MAX(id), 0) FROM meter_values")
                        .fetch_one(&mut *tx)
                        .await?
                } else {
                    0
                };
                let mut affected = 0;
                for chunk in values.chunks(METER_VALUE_ROWS_PER_INSERT) {
                    let mut insert = QueryBuilder::new(
                        "INSERT INTO meter_values (transaction_id, charge_point_id, evse_number, \
                         sampled_at, measurand, phase, unit, value, context, location) ",
                    );
                    insert.push_values(chunk, |mut row, value| {
                        row.push_bind(value.transaction_id)
                            .push_bind(value.charge_point_id)
                            .push_bind(value.evse_number)
                            .push_bind(Stamp::new(value.sampled_at))
                            .push_bind(value.measurand.as_str())
                            .push_bind(value.phase.as_deref().unwrap_or(""))
                            .push_bind(value.unit.as_str())
                            .push_bind(value.value)
                            .push_bind(value.context.as_deref().unwrap_or(""))
                            .push_bind(value.location.as_deref().unwrap_or(""));
                    });
                    insert.push(skip_duplicates);
                    // Full chunks share one statement text worth preparing once per connection;
                    // the shorter last chunk's text is used once, so it is not cached.
                    let done = insert
                        .build()
                        .persistent(chunk.len() == METER_VALUE_ROWS_PER_INSERT)
                        .execute(&mut *tx)
                        .await?;
                    affected += done.rows_affected();
                }
                let inserted = if mysql_count {
                    let new_rows = sqlx::query_scalar::<_, i64>(
                        "SELECT COUNT(*) FROM meter_values WHERE id > ?",
                    )
                    .bind(highest_before)
                    .fetch_one(&mut *tx)
                    .await?;
                    u64::try_from(new_rows).unwrap_or_default()
                } else {
                    // SQLite counts only the rows an INSERT … DO NOTHING actually added.
                    affected
                };
                tx.commit().await?;
                Ok::<u64, sqlx::Error>(inserted)
            }
            .await
        });
        result.map_err(|err| {
            if is_foreign_key_violation(&err) {
                StorageError::not_found("charge point or transaction", meter_value_parents(values))
            } else {
                self.db.fail(
                    err,
                    "meter values",
                    format!("of charge point id {}", values[0].charge_point_id),
                )
            }
        })
    }

    /// A transaction's meter values in the order they were sampled.
    pub async fn meter_values(&self, transaction_id: i64) -> Result<Vec<MeterValue>, StorageError> {
        with_pool!(self.db, |pool| {
            sqlx::query_as::<_, MeterValue>(
                "SELECT id, transaction_id, charge_point_id, evse_number, sampled_at, measurand, \
                 NULLIF(phase, '') AS phase, unit, value, NULLIF(context, '') AS context, \
                 NULLIF(location, '') AS location FROM meter_values \
                 WHERE transaction_id = ? ORDER BY sampled_at, id",
            )
            .bind(transaction_id)
            .fetch_all(pool)
            .await
        })
        .map_err(|err| {
            self.db.fail(
                err,
                "meter values",
                format!("of transaction id {transaction_id}"),
            )
        })
    }

    /// A driver's transactions (started with one of the driver's ID tokens), newest first,
    /// after the transaction `before` when given; only running ones when `active_only`.
    pub async fn of_driver(
        &self,
        driver_id: i64,
        active_only: bool,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Transaction>, StorageError> {
        with_pool!(self.db, |pool| {
            // `it.token = t.id_token`, in this order, so SQLite compares with the token
            // column's NOCASE collation, as MySQL's collation does.
            let mut query = QueryBuilder::new(
                "SELECT t.id, t.charge_point_id, t.evse_number, t.id_token, t.meter_start_wh, \
                 t.meter_stop_wh, t.started_at, t.stopped_at, t.stop_reason, t.created_at, \
                 t.reservation_id, t.stop_id_token, t.start_auth_status \
                 FROM transactions t JOIN id_tokens it ON it.token = t.id_token \
                 WHERE it.driver_id = ",
            );
            query.push_bind(driver_id);
            if active_only {
                query.push(" AND t.stopped_at IS NULL");
            }
            if let Some(before) = before {
                query.push(" AND t.id < ");
                query.push_bind(before);
            }
            query.push(" ORDER BY t.id DESC LIMIT ");
            query.push_bind(i64::from(limit));
            query.build_query_as::<Transaction>().fetch_all(pool).await
        })
        .map_err(|err| {
            self.db
                .fail(err, "transaction", format!("of driver id {driver_id}"))
        })
    }

    /// The samples of `measurand` taken last in a transaction (one per phase, or one
    /// without a phase).
    pub async fn latest_samples(
        &self,
        transaction_id: i64,
        measurand: &str,
    ) -> Result<Vec<MeterValue>, StorageError> {
        with_pool!(self.db, |pool| {
            sqlx::query_as::<_, MeterValue>(
                "SELECT id, transaction_id, charge_point_id, evse_number, sampled_at, measurand, \
                 NULLIF(phase, '') AS phase, unit, value, NULLIF(context, '') AS context, \
                 NULLIF(location, '') AS location FROM meter_values \
                 WHERE transaction_id = ? AND measurand = ? AND sampled_at = \
                 (SELECT MAX(sampled_at) FROM meter_values WHERE transaction_id = ? \
                 AND measurand = ?) ORDER BY id",
            )
            .bind(transaction_id)
            .bind(measurand)
            .bind(transaction_id)
            .bind(measurand)
            .fetch_all(pool)
            .await
        })
        .map_err(|err| {
            self.db.fail(
                err,
                "meter values",
                format!("{measurand} of transaction id {transaction_id}"),
            )
        })
    }
}

/// The chargers and transactions a batch names, for the `NotFound` that one of them is
/// missing (a multi-row INSERT does not say which row failed).
fn meter_value_parents(values: &[NewMeterValue]) -> String {
    fn listed(ids: BTreeSet<i64>) -> String {
        const SHOWN: usize = 5;
        let mut text = ids
            .iter()
            .take(SHOWN)
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        if ids.len() > SHOWN {
            text.push_str(&format!(" and {} more", ids.len() - SHOWN));
        }
        text
    }
    let chargers: BTreeSet<i64> = values.iter().map(|v| v.charge_point_id).collect();
    let transactions: BTreeSet<i64> = values.iter().filter_map(|v| v.transaction_id).collect();
    let mut key = format!("charge point id {}", listed(chargers));
    if !transactions.is_empty() {
        key.push_str(&format!(" or transaction id {}", listed(transactions)));
    }
    key
}
