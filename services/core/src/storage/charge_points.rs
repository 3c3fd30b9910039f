//! Chargers (OCPP charge points / charging stations) with their EVSEs and connectors, and the
//! status reports (StatusNotification) they send for them.
//!
//! Chargers that were offline flush their queued messages, not always in order, so a status
//! report only becomes the current status when it is not older than the one stored; every
//! report goes to the history, once.

use chrono::{DateTime, Utc};

use super::error::is_unique_violation;
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
    /// 0 = no authentication, 1 = HTTP Basic auth, 2 = Basic auth over TLS, 3 = TLS client
    /// certificate. 1 until set.
    #[sqlx(try_from = "i16")]
    pub security_profile: u8,
    pub charge_box_serial_number: Option<String>,
    pub iccid: Option<String>,
    pub imsi: Option<String>,
    pub meter_type: Option<String>,
    pub meter_serial_number: Option<String>,
    /// The last status reported for connector 0 (the charger as a whole), as spelled on the
    /// wire; unset until the charger sends one.
    pub status: Option<String>,
    pub status_error_code: Option<String>,
    /// The charger's timestamp of that status (when it sent none, when we received it).
    pub status_updated_at: Option<DateTime<Utc>>,
    /// The last FirmwareStatusNotification, such as `Downloading` or `Installed`.
    pub firmware_status: Option<String>,
    pub firmware_status_at: Option<DateTime<Utc>>,
    /// The last DiagnosticsStatusNotification, such as `Uploading` or `Uploaded`.
    pub diagnostics_status: Option<String>,
    pub diagnostics_status_at: Option<DateTime<Utc>>,
    /// The listVersion of the local authorization list the charger last accepted (see
    /// [`super::LocalList`]).
    pub local_list_version: Option<i32>,
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
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BootInfo {
    pub vendor: String,
    pub model: String,
    /// chargePointSerialNumber.
    pub serial_number: Option<String>,
    pub firmware_version: Option<String>,
    pub ocpp_version: Option<String>,
    pub charge_box_serial_number: Option<String>,
    pub iccid: Option<String>,
    pub imsi: Option<String>,
    pub meter_type: Option<String>,
    pub meter_serial_number: Option<String>,
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
    /// The errorCode of that report, such as `NoError`.
    pub error_code: Option<String>,
    /// Its free-text info.
    pub status_info: Option<String>,
    /// The charger's timestamp of that status (when it sent none, when we received it).
    pub status_updated_at: Option<DateTime<Utc>>,
}

/// One StatusNotification, for [`ChargePoints::record_status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub charge_point_id: i64,
    /// 0 is the charger as a whole; 1, 2, … its EVSEs.
    pub connector_id: i32,
    /// As spelled on the wire, such as `Available`.
    pub status: String,
    /// Such as `NoError`.
    pub error_code: String,
    pub info: Option<String>,
    pub vendor_id: Option<String>,
    pub vendor_error_code: Option<String>,
    /// The charger's timestamp, when it sent one.
    pub reported_at: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
}

impl StatusReport {
    /// The moment the report speaks of: the charger's timestamp, else when it arrived.
    pub fn effective_at(&self) -> DateTime<Utc> {
        self.reported_at.unwrap_or(self.received_at)
    }
}

/// What [`ChargePoints::record_status`] did with a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRecorded {
    /// The report became the current status of its EVSE (or of the charger, for connector 0).
    /// False when the stored status is newer (a late report) or the report was a resend.
    pub current_changed: bool,
    /// The same report (charger, connector, timestamp, status and error code) was recorded
    /// before, so nothing was stored.
    pub duplicate: bool,
}

/// One stored status report.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StatusHistoryEntry {
    pub id: i64,
    pub charge_point_id: i64,
    pub connector_id: i32,
    pub status: String,
    pub error_code: String,
    pub info: Option<String>,
    pub vendor_id: Option<String>,
    pub vendor_error_code: Option<String>,
    pub reported_at: Option<DateTime<Utc>>,
    pub received_at: DateTime<Utc>,
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
            "updated_at, security_profile, charge_box_serial_number, iccid, imsi, meter_type, ",
            "meter_serial_number, status, status_error_code, status_updated_at, ",
            "firmware_status, firmware_status_at, diagnostics_status, diagnostics_status_at, ",
            "local_list_version FROM charge_points ",
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
                 firmware_version = ?, ocpp_version = ?, charge_box_serial_number = ?, \
                 iccid = ?, imsi = ?, meter_type = ?, meter_serial_number = ?, \
                 last_seen_at = ?, updated_at = ? WHERE id = ?",
            )
            .bind(&boot.vendor)
            .bind(&boot.model)
            .bind(boot.serial_number.as_deref())
            .bind(boot.firmware_version.as_deref())
            .bind(boot.ocpp_version.as_deref())
            .bind(boot.charge_box_serial_number.as_deref())
            .bind(boot.iccid.as_deref())
            .bind(boot.imsi.as_deref())
            .bind(boot.meter_type.as_deref())
            .bind(boot.meter_serial_number.as_deref())
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

    /// Sets how the charger must authenticate: 0 = none, 1 = HTTP Basic auth, 2 = Basic auth
    /// over TLS, 3 = TLS client certificate. The database refuses other values. `NotFound`
    /// when there is no such charger.
    pub async fn set_security_profile(&self, id: i64, profile: u8) -> Result<(), StorageError> {
        let done = with_pool!(self.db, |pool| {
            sqlx::query(
                "UPDATE charge_points SET security_profile = ?, updated_at = ? WHERE id = ?",
            )
            .bind(i16::from(profile))
            .bind(Stamp::now())
            .bind(id)
            .execute(pool)
            .await
            .map(Done::from)
        })
        .map_err(|err| {
            self.db.fail(
                err,
                "charge point",
                format!("id {id} (security profile {profile})"),
            )
        })?;
        found_one(done, "charge point", id)
    }

    /// Sets (or, with `None`, removes) the argon2id PHC string the charger's Basic auth
    /// password is checked against. `NotFound` when there is no such charger.
    pub async fn set_ocpp_password_hash(
        &self,
        id: i64,
        hash: Option<&str>,
    ) -> Result<(), StorageError> {
        let done = with_pool!(self.db, |pool| {
            sqlx::query(
                "UPDATE charge_points SET ocpp_password_hash = ?, updated_at = ? WHERE id = ?",
            )
            .bind(hash)
            .bind(Stamp::now())
            .bind(id)
            .execute(pool)
            .await
            .map(Done::from)
        })
        .map_err(|err| self.db.fail(err, "charge point", format!("id {id}")))?;
        found_one(done, "charge point", id)
    }

    /// Records a FirmwareStatusNotification (such as `Downloading`) received at `at`.
    /// `NotFound` when there is no such charger.
    pub async fn record_firmware_status(
        &self,
        id: i64,
        status: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        self.record_progress(
            "UPDATE charge_points SET firmware_status = ?, firmware_status_at = ? WHERE id = ?",
            id,
            status,
            at,
        )
        .await
    }

    /// Records a DiagnosticsStatusNotification (such as `Uploaded`) received at `at`.
    /// `NotFound` when there is no such charger.
    pub async fn record_diagnostics_status(
        &self,
        id: i64,
        status: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        self.record_progress(
            "UPDATE charge_points SET diagnostics_status = ?, diagnostics_status_at = ? \
             WHERE id = ?",
            id,
            status,
            at,
        )
        .await
    }

    /// Runs one of the status-and-time updates above. Like `touch_last_seen` it leaves
    /// `updated_at` alone: that is for changes to the charger's record, not its reports.
    async fn record_progress(
        &self,
        update: &'static str,
        id: i64,
        status: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let done = with_pool!(self.db, |pool| {
            sqlx::query(update)
                .bind(status)
                .bind(Stamp::new(at))
                .bind(id)
                .execute(pool)
                .await
                .map(Done::from)
        })
        .map_err(|err| {
            self.db
                .fail(err, "charge point", format!("id {id} (status `{status}`)"))
        })?;
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

    /// Records a StatusNotification: adds it to the history and, when it is not older than
    /// the stored status, makes it the current status of its EVSE (adding the EVSE when the
    /// charger announces one we did not know) or, for connector 0, of the charger. All in one
    /// database transaction. A resent report (same charger, connector, timestamp, status and
    /// error code) changes nothing and says so. `NotFound` when the charger does not exist.
    pub async fn record_status(
        &self,
        report: &StatusReport,
    ) -> Result<StatusRecorded, StorageError> {
        const INSERT_HISTORY: &str = "INSERT INTO connector_status_history (charge_point_id, \
            connector_id, status, error_code, info, vendor_id, vendor_error_code, reported_at, \
            received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
        // Only the newer report may overwrite: queued reports arrive out of order after the
        // charger was offline. Equal times overwrite, so the later-received one wins.
        const UPDATE_CHARGER: &str = "UPDATE charge_points SET status = ?, status_error_code = ?, \
            status_updated_at = ? WHERE id = ? \
            AND (status_updated_at IS NULL OR status_updated_at <= ?)";
        const UPDATE_EVSE: &str = "UPDATE evses SET status = ?, error_code = ?, status_info = ?, \
            status_updated_at = ? WHERE charge_point_id = ? AND evse_number = ? \
            AND (status_updated_at IS NULL OR status_updated_at <= ?)";
        // The EVSE row is made first (with no status time, so the update below applies), which
        // keeps the "not older" rule in one UPDATE that both backends spell alike.
        let add_evse = match self.db {
            Database::MySql(_) => {
                "INSERT INTO evses (charge_point_id, evse_number, status) VALUES (?, ?, ?) \
                 ON DUPLICATE KEY UPDATE id = id"
            }
            Database::Sqlite(_) => {
                "INSERT INTO evses (charge_point_id, evse_number, status) VALUES (?, ?, ?) \
                 ON CONFLICT (charge_point_id, evse_number) DO NOTHING"
            }
        };
        let effective_at = Stamp::new(report.effective_at());
        let result = with_pool!(self.db, |pool| {
            async {
                let mut tx = pool.begin().await?;
                // The insert comes first: it takes SQLite's write lock before anything is read.
                let inserted = sqlx::query(INSERT_HISTORY)
                    .bind(report.charge_point_id)
                    .bind(report.connector_id)
                    .bind(&report.status)
                    .bind(&report.error_code)
                    .bind(report.info.as_deref())
                    .bind(report.vendor_id.as_deref())
                    .bind(report.vendor_error_code.as_deref())
                    .bind(Stamp::opt(report.reported_at))
                    .bind(Stamp::new(report.received_at))
                    .execute(&mut *tx)
                    .await;
                // A failed statement rolls back only itself on both backends. The unique
                // violation is how a resend shows: with CLIENT_FOUND_ROWS (which sqlx sets),
                // MySQL counts an ignored duplicate as one affected row, like an insert.
                match inserted {
                    Ok(_) => {}
                    Err(err) if is_unique_violation(&err) => {
                        tx.rollback().await?;
                        return Ok(StatusRecorded {
                            current_changed: false,
                            duplicate: true,
                        });
                    }
                    Err(err) => return Err(err),
                }
                let updated = if report.connector_id == 0 {
                    sqlx::query(UPDATE_CHARGER)
                        .bind(&report.status)
                        .bind(&report.error_code)
                        .bind(effective_at)
                        .bind(report.charge_point_id)
                        .bind(effective_at)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                } else {
                    sqlx::query(add_evse)
                        .bind(report.charge_point_id)
                        .bind(report.connector_id)
                        .bind(EVSE_STATUS_UNKNOWN)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(UPDATE_EVSE)
                        .bind(&report.status)
                        .bind(&report.error_code)
                        .bind(report.info.as_deref())
                        .bind(effective_at)
                        .bind(report.charge_point_id)
                        .bind(report.connector_id)
                        .bind(effective_at)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                };
                tx.commit().await?;
                Ok(StatusRecorded {
                    current_changed: updated > 0,
                    duplicate: false,
                })
            }
            .await
        });
        result.map_err(|err| {
            self.db.fail_child(
                err,
                "status report",
                format!(
                    "status `{}` of connector {} on charge point id {}",
                    report.status, report.connector_id, report.charge_point_id
                ),
                "charge point",
                format!("id {}", report.charge_point_id),
            )
        })
    }

    /// The latest `limit` status reports of a charger, of one connector or of all, newest
    /// first by the time they speak of (the charger's timestamp, else their arrival).
    pub async fn status_history(
        &self,
        charge_point_id: i64,
        connector: Option<i32>,
        limit: u32,
    ) -> Result<Vec<StatusHistoryEntry>, StorageError> {
        macro_rules! history {
            ($filter:literal) => {
                concat!(
                    "SELECT id, charge_point_id, connector_id, status, error_code, info, ",
                    "vendor_id, vendor_error_code, reported_at, received_at ",
                    "FROM connector_status_history WHERE charge_point_id = ? ",
                    $filter,
                    "ORDER BY COALESCE(reported_at, received_at) DESC, id DESC LIMIT ?"
                )
            };
        }
        with_pool!(self.db, |pool| {
            match connector {
                Some(connector) => {
                    sqlx::query_as::<_, StatusHistoryEntry>(history!("AND connector_id = ? "))
                        .bind(charge_point_id)
                        .bind(connector)
                        .bind(i64::from(limit))
                        .fetch_all(pool)
                        .await
                }
                None => {
                    sqlx::query_as::<_, StatusHistoryEntry>(history!(""))
                        .bind(charge_point_id)
                        .bind(i64::from(limit))
                        .fetch_all(pool)
                        .await
                }
            }
        })
        .map_err(|err| {
            self.db.fail(
                err,
                "status report",
                format!("of charge point id {charge_point_id}"),
            )
        })
    }

    /// A charger's EVSEs, by number.
    pub async fn evses(&self, charge_point_id: i64) -> Result<Vec<Evse>, StorageError> {
        with_pool!(self.db, |pool| {
            sqlx::query_as::<_, Evse>(
                "SELECT id, charge_point_id, evse_number, status, error_code, status_info, \
                 status_updated_at FROM evses WHERE charge_point_id = ? ORDER BY evse_number",
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

    /// The charger's EVSEs with their connectors, as [`super::Locations::equipment`] gives
    /// them for a location; empty when the charger is not accepted.
    pub async fn equipment(
        &self,
        charge_point_id: i64,
    ) -> Result<Vec<super::locations::EquipmentRow>, StorageError> {
        use super::locations::{EQUIPMENT_ORDER, EQUIPMENT_SELECT};
        with_pool!(self.db, |pool| {
            let mut query = sqlx::QueryBuilder::new(EQUIPMENT_SELECT);
            query.push(" AND cp.id = ");
            query.push_bind(charge_point_id);
            query.push(EQUIPMENT_ORDER);
            query
                .build_query_as::<super::locations::EquipmentRow>()
                .fetch_all(pool)
                .await
        })
        .map_err(|err| {
            self.db
                .fail(err, "EVSE", format!("of charge point id {charge_point_id}"))
        })
    }
}
