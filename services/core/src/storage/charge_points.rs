//! Chargers (OCPP charge points / charging stations) with their EVSEs and connectors.

use chrono::{DateTime, Utc};

use super::time::Stamp;
use super::{Database, Done, StorageError, found_one};
use crate::domain::{ChargePointId, ConnectorFormat, PowerType, RegistrationStatus};

/// The status of an EVSE until its charger reports one.
pub const EVSE_STATUS_UNKNOWN: &str = "Unknown";

/// A stored charger.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ChargePoint {
    pub id: i64,
    #[sqlx(try_from = "String")]
    pub identity: ChargePointId,
    pub location_id: Option<i64>,
    /// argon2id PHC string for OCPP Basic auth.
    pub ocpp_password_hash: Option<String>,
    #[sqlx(try_from = "String")]
    pub registration_status: RegistrationStatus,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub serial_number: Option<String>,
    pub firmware_version: Option<String>,
    /// Such as `1.6` or `2.0.1`.
    pub ocpp_version: Option<String>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What [`ChargePoints::create`] stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChargePoint {
    pub identity: ChargePointId,
    pub location_id: Option<i64>,
    pub ocpp_password_hash: Option<String>,
    pub registration_status: RegistrationStatus,
}

/// What a charger tells about itself in BootNotification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootInfo {
    pub vendor: String,
    pub model: String,
    pub serial_number: Option<String>,
    pub firmware_version: Option<String>,
    pub ocpp_version: Option<String>,
}

/// One EVSE of a charger (OCPP 1.6 connectorId, OCPP 2.0.1 evseId).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Evse {
    pub id: i64,
    pub charge_point_id: i64,
    /// 1, 2, … within the charger.
    pub evse_number: i32,
    /// The last status the charger reported, as spelled on the wire.
    pub status: String,
    pub status_updated_at: Option<DateTime<Utc>>,
}

/// What [`ChargePoints::add_evse`] stores; the status starts as [`EVSE_STATUS_UNKNOWN`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvse {
    pub charge_point_id: i64,
    pub evse_number: i32,
}

/// One plug or socket of an EVSE (OCPI Connector).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Connector {
    pub id: i64,
    pub evse_id: i64,
    pub connector_number: i32,
    /// OCPI ConnectorType such as `IEC_62196_T2`.
    pub standard: String,
    #[sqlx(try_from = "String")]
    pub format: ConnectorFormat,
    #[sqlx(try_from = "String")]
    pub power_type: PowerType,
    pub max_voltage: i32,
    pub max_amperage: i32,
    pub max_power_w: Option<i32>,
}

/// What [`ChargePoints::add_connector`] stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConnector {
    pub evse_id: i64,
    pub connector_number: i32,
    pub standard: String,
    pub format: ConnectorFormat,
    pub power_type: PowerType,
    pub max_voltage: i32,
    pub max_amperage: i32,
    pub max_power_w: Option<i32>,
}

macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, identity, location_id, ocpp_password_hash, registration_status, vendor, ",
            "model, serial_number, firmware_version, ocpp_version, last_seen_at, created_at, ",
            "updated_at FROM charge_points ",
            $rest
        )
    };
}

/// The `charge_points`, `evses` and `connectors` tables; from [`Database::charge_points`].
#[derive(Debug, Clone, Copy)]
pub struct ChargePoints<'a> {
    pub(super) db: &'a Database,
}

impl ChargePoints<'_> {
    /// Registers a charger and returns its id. `Conflict` when the identity is taken (in any
    /// letter case), `NotFound` when the location does not exist.
    pub async fn create(&self, new: &NewChargePoint) -> Result<i64, StorageError> {
        let now = Stamp::now();
        let result = with_pool!(self.db, |pool| {
            sqlx::query(
                "INSERT INTO charge_points (identity, location_id, ocpp_password_hash, \
                 registration_status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(new.identity.as_str())
            .bind(new.location_id)
            .bind(new.ocpp_password_hash.as_deref())
            .bind(new.registration_status.as_str())
            .bind(now)
            .bind(now)
            .execute(pool)
            .await
            .map(Done::from)
        });
        result.map(|done| done.last_id).map_err(|err| {
            self.db.fail_child(
                err,
                "charge point",
                format!("identity `{}`", new.identity),
                "location",
                format!("id {}", new.location_id.unwrap_or_default()),
            )
        })
    }

    /// The charger with this id, or `NotFound`.
    pub async fn get(&self, id: i64) -> Result<ChargePoint, StorageError> {
        let found = with_pool!(self.db, |pool| {
            sqlx::query_as::<_, ChargePoint>(select!("WHERE id = ?"))
                .bind(id)
                .fetch_optional(pool)
                .await
        })
        .map_err(|err| self.db.fail(err, "charge point", format!("id {id}")))?;
        found.ok_or_else(|| StorageError::not_found("charge point", format!("id {id}")))
    }

    /// The charger with exactly this identity, if there is one. The unique key ignores letter
    /// case, but a charger must connect with its identity spelled as registered.
    pub async fn find_by_identity(
        &self,
        identity: &ChargePointId,
    ) -> Result<Option<ChargePoint>, StorageError> {
        let found = with_pool!(self.db, |pool| {
            sqlx::query_as::<_, ChargePoint>(select!("WHERE identity = ?"))
                .bind(identity.as_str())
                .fetch_optional(pool)
                .await
        })
        .map_err(|err| {
            self.db
                .fail(err, "charge point", format!("identity `{identity}`"))
        })?;
        Ok(found.filter(|cp| cp.identity == *identity))
    }

    /// Every charger, by identity.
    pub async fn list(&self) -> Result<Vec<ChargePoint>, StorageError> {
        with_pool!(self.db, |pool| {
            sqlx::query_as::<_, ChargePoint>(select!("ORDER BY identity, id"))
                .fetch_all(pool)
                .await
        })
        .map_err(|err| self.db.fail(err, "charge point", "list"))
    }

    /// Accepts, parks or rejects a charger; `NotFound` when there is no such charger.
    pub async fn set_registration_status(
        &self,
        id: i64,
        status: RegistrationStatus,
    ) -> Result<(), StorageError> {
        let done = with_pool!(self.db, |pool| {
            sqlx::query(
                "UPDATE charge_points SET registration_status = ?, updated_at = ? WHERE id = ?",
            )
            .bind(status.as_str())
            .bind(Stamp::now())
            .bind(id)
            .execute(pool)
            .await
            .map(Done::from)
        })
        .map_err(|err| self.db.fail(err, "charge point", format!("id {id}")))?;
        found_one(done, "charge point", id)
    }

    /// Records what the charger said in BootNotification, received at `at`.
    pub async fn record_boot(
        &self,
        id: i64,
        boot: &BootInfo,
        at: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let done = with_pool!(self.db, |pool| {
            sqlx::query(
                "UPDATE charge_points SET vendor = ?, model = ?, serial_number = ?, \
                 firmware_version = ?, ocpp_version = ?, last_seen_at = ?, updated_at = ? \
                 WHERE id = ?",
            )
            .bind(&boot.vendor)
            .bind(&boot.model)
            .bind(boot.serial_number.as_deref())
            .bind(boot.firmware_version.as_deref())
            .bind(boot.ocpp_version.as_deref())
            .bind(Stamp::new(at))
            .bind(Stamp::now())
            .bind(id)
            .execute(pool)
            .await
            .map(Done::from)
        })
        .map_err(|err| self.db.fail(err, "charge point", format!("id {id}")))?;
        found_one(done, "charge point", id)
    }

    /// Notes that the charger was heard from at `at` (any message, such as a Heartbeat).
    pub async fn touch_last_seen(&self, id: i64, at: DateTime<Utc>) -> Result<(), StorageError> {
        let done = with_pool!(self.db, |pool| {
            sqlx::query("UPDATE charge_points SET last_seen_at = ? WHERE id = ?")
                .bind(Stamp::new(at))
                .bind(id)
                .execute(pool)
                .await
                .map(Done::from)
        })
        .map_err(|err| self.db.fail(err, "charge point", format!("id {id}")))?;
        found_one(done, "charge point", id)
    }

    /// Adds an EVSE to a charger and returns its id. `Conflict` when the charger already has
    /// that EVSE number, `NotFound` when the charger does not exist.
    pub async fn add_evse(&self, new: &NewEvse) -> Result<i64, StorageError> {
        let result = with_pool!(self.db, |pool| {
            sqlx::query("INSERT INTO evses (charge_point_id, evse_number, status) VALUES (?, ?, ?)")
                .bind(new.charge_point_id)
                .bind(new.evse_number)
                .bind(EVSE_STATUS_UNKNOWN)
                .execute(pool)
                .await
                .map(Done::from)
        });
        result.map(|done| done.last_id).map_err(|err| {
            self.db.fail_child(
                err,
                "EVSE",
                format!(
                    "number {} on charge point id {}",
                    new.evse_number, new.charge_point_id
                ),
                "charge point",
                format!("id {}", new.charge_point_id),
            )
        })
    }

    /// Records a status the charger reported for one EVSE (StatusNotification), adding the
    /// EVSE when the charger announces one we did not know. `NotFound` when the charger does
    /// not exist.
    pub async fn set_evse_status(
        &self,
        charge_point_id: i64,
        evse_number: i32,
        status: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let at = Stamp::new(at);
        let result = match self.db {
            Database::MySql(pool) => sqlx::query(
                "INSERT INTO evses (charge_point_id, evse_number, status, status_updated_at) \
                 VALUES (?, ?, ?, ?) \
                 ON DUPLICATE KEY UPDATE status = VALUES(status), \
                 status_updated_at = VALUES(status_updated_at)",
            )
            .bind(charge_point_id)
            .bind(evse_number)
            .bind(status)
            .bind(at)
            .execute(pool)
            .await
            .map(Done::from),
            Database::Sqlite(pool) => sqlx::query(
                "INSERT INTO evses (charge_point_id, evse_number, status, status_updated_at) \
                 VALUES (?, ?, ?, ?) \
                 ON CONFLICT (charge_point_id, evse_number) DO UPDATE SET \
                 status = excluded.status, status_updated_at = excluded.status_updated_at",
            )
            .bind(charge_point_id)
            .bind(evse_number)
            .bind(status)
            .bind(at)
            .execute(pool)
            .await
            .map(Done::from),
        };
        result.map(|_| ()).map_err(|err| {
            self.db.fail_child(
                err,
                "EVSE",
                format!("number {evse_number} on charge point id {charge_point_id}"),
                "charge point",
                format!("id {charge_point_id}"),
            )
        })
    }

    /// A charger's EVSEs, by number.
    pub async fn evses(&self, charge_point_id: i64) -> Result<Vec<Evse>, StorageError> {
        with_pool!(self.db, |pool| {
            sqlx::query_as::<_, Evse>(
                "SELECT id, charge_point_id, evse_number, status, status_updated_at FROM evses \
                 WHERE charge_point_id = ? ORDER BY evse_number",
            )
            .bind(charge_point_id)
            .fetch_all(pool)
            .await
        })
        .map_err(|err| {
            self.db
                .fail(err, "EVSE", format!("of charge point id {charge_point_id}"))
        })
    }

    /// Adds a connector to an EVSE and returns its id. `Conflict` when the EVSE already has
    /// that connector number, `NotFound` when the EVSE does not exist.
    pub async fn add_connector(&self, new: &NewConnector) -> Result<i64, StorageError> {
        let result = with_pool!(self.db, |pool| {
            sqlx::query(
                "INSERT INTO connectors (evse_id, connector_number, standard, format, power_type, \
                 max_voltage, max_amperage, max_power_w) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(new.evse_id)
            .bind(new.connector_number)
            .bind(&new.standard)
            .bind(new.format.as_str())
            .bind(new.power_type.as_str())
            .bind(new.max_voltage)
            .bind(new.max_amperage)
            .bind(new.max_power_w)
            .execute(pool)
            .await
            .map(Done::from)
        });
        result.map(|done| done.last_id).map_err(|err| {
            self.db.fail_child(
                err,
                "connector",
                format!("number {} on EVSE id {}", new.connector_number, new.evse_id),
                "EVSE",
                format!("id {}", new.evse_id),
            )
        })
    }

    /// An EVSE's connectors, by number.
    pub async fn connectors(&self, evse_id: i64) -> Result<Vec<Connector>, StorageError> {
        with_pool!(self.db, |pool| {
            sqlx::query_as::<_, Connector>(
                "SELECT id, evse_id, connector_number, standard, format, power_type, max_voltage, \
                 max_amperage, max_power_w FROM connectors WHERE evse_id = ? \
                 ORDER BY connector_number",
            )
            .bind(evse_id)
            .fetch_all(pool)
            .await
        })
        .map_err(|err| {
            self.db
                .fail(err, "connector", format!("of EVSE id {evse_id}"))
        })
    }
}
