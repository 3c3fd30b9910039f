//! Charging sessions (OCPP transactions) and the meter values sampled during them.
//!
//! Chargers resend messages whose reply they missed, so starting and stopping are idempotent:
//! the same StartTransaction gets the same transaction id back, and a repeated stop changes
//! nothing.

use chrono::{DateTime, Utc};

use super::error::{is_foreign_key_violation, is_unique_violation};
use super::time::Stamp;
use super::{Database, Done, StorageError};
use crate::domain::EnergyWh;

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
}

/// What [`Transactions::stop`] stores (OCPP StopTransaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopTransaction {
    pub meter_stop_wh: EnergyWh,
    pub stopped_at: DateTime<Utc>,
    pub stop_reason: Option<String>,
}

/// One sampled value (OCPP SampledValue), with the charger's spelling of each field.
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

/// What [`Transactions::add_meter_values`] stores.
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
            "started_at, stopped_at, stop_reason, created_at FROM transactions ",
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
                 started_at, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(new.charge_point_id)
            .bind(new.evse_number)
            .bind(&new.id_token)
            .bind(new.meter_start_wh)
            .bind(started_at)
            .bind(Stamp::now())
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
                "UPDATE transactions SET meter_stop_wh = ?, stopped_at = ?, stop_reason = ? \
                 WHERE id = ? AND stopped_at IS NULL",
            )
            .bind(stop.meter_stop_wh)
            .bind(Stamp::new(stop.stopped_at))
            .bind(stop.stop_reason.as_deref())
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

    /// Stores a batch of sampled values (one MeterValues message) all or nothing. `NotFound`
    /// when a value names a charger or transaction that does not exist.
    pub async fn add_meter_values(&self, values: &[NewMeterValue]) -> Result<(), StorageError> {
        if values.is_empty() {
            return Ok(());
        }
        const INSERT: &str = "INSERT INTO meter_values (transaction_id, charge_point_id, \
            evse_number, sampled_at, measurand, phase, unit, value, context, location) \
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
        let result = with_pool!(self.db, |pool| {
            async {
                let mut tx = pool.begin().await?;
                for value in values {
                    sqlx::query(INSERT)
                        .bind(value.transaction_id)
                        .bind(value.charge_point_id)
                        .bind(value.evse_number)
                        .bind(Stamp::new(value.sampled_at))
                        .bind(&value.measurand)
                        .bind(value.phase.as_deref())
                        .bind(&value.unit)
                        .bind(value.value)
                        .bind(value.context.as_deref())
                        .bind(value.location.as_deref())
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await
            }
            .await
        });
        let first = &values[0];
        match result {
            Ok(()) => Ok(()),
            Err(err) if is_foreign_key_violation(&err) => Err(StorageError::not_found(
                "charge point or transaction",
                format!(
                    "charge point id {} or transaction id {}",
                    first.charge_point_id,
                    first
                        .transaction_id
                        .map_or_else(|| "(none)".to_string(), |id| id.to_string())
                ),
            )),
            Err(err) => Err(self.db.fail(
                err,
                "meter values",
                format!("of charge point id {}", first.charge_point_id),
            )),
        }
    }

    /// A transaction's meter values in the order they were sampled.
    pub async fn meter_values(&self, transaction_id: i64) -> Result<Vec<MeterValue>, StorageError> {
        with_pool!(self.db, |pool| {
            sqlx::query_as::<_, MeterValue>(
                "SELECT id, transaction_id, charge_point_id, evse_number, sampled_at, measurand, \
                 phase, unit, value, context, location FROM meter_values \
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
}
