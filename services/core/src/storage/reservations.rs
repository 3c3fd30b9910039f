//! Reservations (OCPP 1.6 ReserveNow / CancelReservation). The row id is the reservationId
//! sent to the charger.
//!
//! A reservation is `Requested` until the charger answers ReserveNow (`Accepted`, `Faulted`,
//! `Occupied`, `Rejected`, `Unavailable`); an accepted one ends `Cancelled`, `Used` (a
//! transaction started on it) or `Expired`.

use chrono::{DateTime, Utc};

use super::error::is_foreign_key_violation;
use super::text_enum::storage_text_enum;
use super::time::Stamp;
use super::{Database, Done, StorageError, found_one};

storage_text_enum! {
    /// Where a reservation stands: the charger's ReserveNow answer (OCPP ReservationStatus)
    /// plus our own states before and after it.
    ReservationStatus, "reservation status" {
        /// Sent to the charger, not answered yet.
        Requested = "Requested",
        Accepted = "Accepted",
        Faulted = "Faulted",
        Occupied = "Occupied",
        Rejected = "Rejected",
        Unavailable = "Unavailable",
        Cancelled = "Cancelled",
        /// A transaction started on it.
        Used = "Used",
        /// It was accepted and its expiry passed unused.
        Expired = "Expired",
    }
}

/// A stored reservation.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Reservation {
    /// The OCPP reservationId.
    pub id: i64,
    pub charge_point_id: i64,
    /// 0 reserves whichever connector is free.
    pub connector_id: i32,
    pub id_tag: String,
    pub parent_id_tag: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub status: ReservationStatus,
    /// The transaction that used it.
    pub transaction_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What [`Reservations::create`] stores; the status starts as `Requested`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReservation {
    pub charge_point_id: i64,
    pub connector_id: i32,
    pub id_tag: String,
    pub parent_id_tag: Option<String>,
    pub expires_at: DateTime<Utc>,
}

macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, charge_point_id, connector_id, id_tag, parent_id_tag, expires_at, ",
            "status, transaction_id, created_at, updated_at FROM reservations ",
            $rest
        )
    };
}

/// The `reservations` table; from [`Database::reservations`].
#[derive(Debug, Clone, Copy)]
pub struct Reservations<'a> {
    pub(super) db: &'a Database,
}

impl Database {
    pub fn reservations(&self) -> Reservations<'_> {
        Reservations { db: self }
    }
}

impl Reservations<'_> {
    /// Stores a reservation about to be sent in ReserveNow and returns its id, the
    /// reservationId. `NotFound` when the charger does not exist.
    pub async fn create(&self, new: &NewReservation) -> Result<i64, StorageError> {
        let now = Stamp::now();
        let result = with_pool!(self.db, |pool| {
            sqlx::query(
                "INSERT INTO reservations (charge_point_id, connector_id, id_tag, parent_id_tag, \
                 expires_at, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(new.charge_point_id)
            .bind(new.connector_id)
            .bind(&new.id_tag)
            .bind(new.parent_id_tag.as_deref())
            .bind(Stamp::new(new.expires_at))
            .bind(ReservationStatus::Requested.as_str())
            .bind(now)
            .bind(now)
            .execute(pool)
            .await
            .map(Done::from)
        });
        result.map(|done| done.last_id).map_err(|err| {
            self.db.fail_child(
                err,
                "reservation",
                format!(
                    "for `{}` on connector {} of charge point id {}",
                    new.id_tag, new.connector_id, new.charge_point_id
                ),
                "charge point",
                format!("id {}", new.charge_point_id),
            )
        })
    }

    /// The reservation with this id, or `NotFound`.
    pub async fn get(&self, id: i64) -> Result<Reservation, StorageError> {
        let found = with_pool!(self.db, |pool| {
            sqlx::query_as::<_, Reservation>(select!("WHERE id = ?"))
                .bind(id)
                .fetch_optional(pool)
                .await
        })
        .map_err(|err| self.db.fail(err, "reservation", format!("id {id}")))?;
        found.ok_or_else(|| StorageError::not_found("reservation", format!("id {id}")))
    }

    /// Records the charger's answer or a cancellation. Sets any status: the caller knows
    /// which moves make sense. `NotFound` when there is no such reservation.
    pub async fn set_status(&self, id: i64, status: ReservationStatus) -> Result<(), StorageError> {
        let done = with_pool!(self.db, |pool| {
            sqlx::query("UPDATE reservations SET status = ?, updated_at = ? WHERE id = ?")
                .bind(status.as_str())
                .bind(Stamp::now())
                .bind(id)
                .execute(pool)
                .await
                .map(Done::from)
        })
        .map_err(|err| {
            self.db
                .fail(err, "reservation", format!("id {id} (status {status})"))
        })?;
        found_one(done, "reservation", id)
    }

    /// Marks an accepted reservation of this charger as used by a transaction (the
    /// reservationId of StartTransaction). Returns whether it did: false when the
    /// reservation is unknown, belongs to another charger or is not `Accepted`. A resent
    /// StartTransaction finds it already used by the same transaction and gets true again.
    /// `NotFound` when the transaction does not exist.
    pub async fn use_for_transaction(
        &self,
        id: i64,
        charge_point_id: i64,
        transaction_id: i64,
    ) -> Result<bool, StorageError> {
        let result = with_pool!(self.db, |pool| {
            sqlx::query(
                "UPDATE reservations SET status = ?, transaction_id = ?, updated_at = ? \
                 WHERE id = ? AND charge_point_id = ? \
                 AND (status = ? OR (status = ? AND transaction_id = ?))",
            )
            .bind(ReservationStatus::Used.as_str())
            .bind(transaction_id)
            .bind(Stamp::now())
            .bind(id)
            .bind(charge_point_id)
            .bind(ReservationStatus::Accepted.as_str())
            .bind(ReservationStatus::Used.as_str())
            .bind(transaction_id)
            .execute(pool)
            .await
            .map(Done::from)
        });
        match result {
            // MySQL reports matched rows, so the resend that changes nothing counts too.
            Ok(done) => Ok(done.rows_affected > 0),
            Err(err) if is_foreign_key_violation(&err) => Err(StorageError::not_found(
                "transaction",
                format!("id {transaction_id}"),
            )),
            Err(err) => Err(self.db.fail(
                err,
                "reservation",
                format!("id {id} (used by transaction id {transaction_id})"),
            )),
        }
    }

    /// A charger's accepted reservations that have not expired at `now`, by connector and
    /// expiry.
    pub async fn active_for(
        &self,
        charge_point_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<Reservation>, StorageError> {
        with_pool!(self.db, |pool| {
            sqlx::query_as::<_, Reservation>(select!(
                "WHERE charge_point_id = ? AND status = ? AND expires_at > ? \
                 ORDER BY connector_id, expires_at, id"
            ))
            .bind(charge_point_id)
            .bind(ReservationStatus::Accepted.as_str())
            .bind(Stamp::new(now))
            .fetch_all(pool)
            .await
        })
        .map_err(|err| {
            self.db.fail(
                err,
                "reservation",
                format!("active on charge point id {charge_point_id}"),
            )
        })
    }

    /// Marks every accepted reservation whose expiry is at or before `now` as `Expired`;
    /// returns how many. Reservations still `Requested` are left alone: the charger has not
    /// answered yet.
    pub async fn expire_due(&self, now: DateTime<Utc>) -> Result<u64, StorageError> {
        with_pool!(self.db, |pool| {
            sqlx::query(
                "UPDATE reservations SET status = ?, updated_at = ? \
                 WHERE status = ? AND expires_at <= ?",
            )
            .bind(ReservationStatus::Expired.as_str())
            .bind(Stamp::now())
            .bind(ReservationStatus::Accepted.as_str())
            .bind(Stamp::new(now))
            .execute(pool)
            .await
            .map(Done::from)
        })
        .map(|done| done.rows_affected)
        .map_err(|err| {
            self.db
                .fail(err, "reservation", format!("expiring at {now}"))
        })
    }
}
