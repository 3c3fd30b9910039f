//! The charging profiles installed on each charger (OCPP 1.6 Smart Charging), kept as the
//! charger keeps them so the Back Office knows what limits apply.
//!
//! The schedule (OCPP chargingSchedule) is stored as the JSON it was sent as, and handed back
//! as a `serde_json::Value`: storage does not interpret it.

use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;
use sqlx::types::Json;

use super::text_enum::storage_text_enum;
use super::time::Stamp;
use super::{Database, Done, StorageError};

storage_text_enum! {
    /// What a profile limits (OCPP ChargingProfilePurposeType).
    ChargingProfilePurpose, "charging profile purpose" {
        /// The charger's (or connector 0's) overall limit.
        ChargePointMaxProfile = "ChargePointMaxProfile",
        /// The default for new transactions.
        TxDefaultProfile = "TxDefaultProfile",
        /// One transaction's limit.
        TxProfile = "TxProfile",
    }
}

storage_text_enum! {
    /// How a profile's schedule is anchored in time (OCPP ChargingProfileKindType).
    ChargingProfileKind, "charging profile kind" {
        Absolute = "Absolute",
        Recurring = "Recurring",
        Relative = "Relative",
    }
}

storage_text_enum! {
    /// How a recurring profile repeats (OCPP RecurrencyKindType).
    RecurrencyKind, "recurrency kind" {
        Daily = "Daily",
        Weekly = "Weekly",
    }
}

/// A stored charging profile.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ChargingProfile {
    /// Our row id (not sent to the charger).
    pub id: i64,
    pub charge_point_id: i64,
    /// 0 is the charger as a whole.
    pub connector_id: i32,
    /// The OCPP chargingProfileId.
    pub charging_profile_id: i32,
    pub stack_level: i32,
    pub purpose: ChargingProfilePurpose,
    pub kind: ChargingProfileKind,
    pub recurrency: Option<RecurrencyKind>,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_to: Option<DateTime<Utc>>,
    /// A TxProfile's transaction.
    pub transaction_id: Option<i64>,
    /// The chargingSchedule as sent.
    #[sqlx(json)]
    pub schedule: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// What [`ChargingProfiles::install`] stores: a profile the charger accepted in
/// SetChargingProfile (or that RemoteStartTransaction carried).
#[derive(Debug, Clone, PartialEq)]
pub struct NewChargingProfile {
    pub charge_point_id: i64,
    pub connector_id: i32,
    pub charging_profile_id: i32,
    pub stack_level: i32,
    pub purpose: ChargingProfilePurpose,
    pub kind: ChargingProfileKind,
    pub recurrency: Option<RecurrencyKind>,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_to: Option<DateTime<Utc>>,
    pub transaction_id: Option<i64>,
    pub schedule: serde_json::Value,
}

/// What [`ChargingProfiles::install`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileInstalled {
    /// The new row's id.
    pub id: i64,
    /// How many stored profiles it replaced (0, 1 or 2).
    pub replaced: u64,
}

/// Which profiles [`ChargingProfiles::clear`] removes (OCPP 1.6 ClearChargingProfile.req).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClearFilter {
    /// The chargingProfileId; when given, the other fields are ignored.
    pub id: Option<i32>,
    pub connector_id: Option<i32>,
    pub purpose: Option<ChargingProfilePurpose>,
    pub stack_level: Option<i32>,
}

macro_rules! select {
    ($rest:literal) => {
        concat!(
            "SELECT id, charge_point_id, connector_id, charging_profile_id, stack_level, ",
            "purpose, kind, recurrency, valid_from, valid_to, transaction_id, schedule, ",
            "created_at FROM charging_profiles ",
            $rest
        )
    };
}

/// The `charging_profiles` table; from [`Database::charging_profiles`].
#[derive(Debug, Clone, Copy)]
pub struct ChargingProfiles<'a> {
    pub(super) db: &'a Database,
}

impl Database {
    pub fn charging_profiles(&self) -> ChargingProfiles<'_> {
        ChargingProfiles { db: self }
    }
}

impl ChargingProfiles<'_> {
    /// Stores a profile the charger installed, in one database transaction with the OCPP 1.6
    /// replacement rule: a stored profile with the same chargingProfileId on that charger, or
    /// with the same connector, stack level and purpose, is removed first. `NotFound` when
    /// the charger does not exist.
    pub async fn install(
        &self,
        new: &NewChargingProfile,
    ) -> Result<ProfileInstalled, StorageError> {
        let result = with_pool!(self.db, |pool| {
            async {
                let mut tx = pool.begin().await?;
                let replaced = sqlx::query(
                    "DELETE FROM charging_profiles WHERE charge_point_id = ? \
                     AND (charging_profile_id = ? \
                     OR (connector_id = ? AND stack_level = ? AND purpose = ?))",
                )
                .bind(new.charge_point_id)
                .bind(new.charging_profile_id)
                .bind(new.connector_id)
                .bind(new.stack_level)
                .bind(new.purpose.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let done = sqlx::query(
                    "INSERT INTO charging_profiles (charge_point_id, connector_id, \
                     charging_profile_id, stack_level, purpose, kind, recurrency, valid_from, \
                     valid_to, transaction_id, schedule, created_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(new.charge_point_id)
                .bind(new.connector_id)
                .bind(new.charging_profile_id)
                .bind(new.stack_level)
                .bind(new.purpose.as_str())
                .bind(new.kind.as_str())
                .bind(new.recurrency.map(RecurrencyKind::as_str))
                .bind(Stamp::opt(new.valid_from))
                .bind(Stamp::opt(new.valid_to))
                .bind(new.transaction_id)
                .bind(Json(&new.schedule))
                .bind(Stamp::now())
                .execute(&mut *tx)
                .await
                .map(Done::from)?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(ProfileInstalled {
                    id: done.last_id,
                    replaced,
                })
            }
            .await
        });
        result.map_err(|err| {
            self.db.fail_child(
                err,
                "charging profile",
                format!(
                    "chargingProfileId {} on charge point id {}",
                    new.charging_profile_id, new.charge_point_id
                ),
                "charge point",
                format!("id {}", new.charge_point_id),
            )
        })
    }

    /// Removes what the charger cleared in ClearChargingProfile and returns how many: the
    /// profile with `filter.id` when that is given, otherwise every profile matching all the
    /// criteria given (all of the charger's when none is).
    pub async fn clear(
        &self,
        charge_point_id: i64,
        filter: &ClearFilter,
    ) -> Result<u64, StorageError> {
        let result = with_pool!(self.db, |pool| {
            let mut delete =
                QueryBuilder::new("DELETE FROM charging_profiles WHERE charge_point_id = ");
            delete.push_bind(charge_point_id);
            if let Some(id) = filter.id {
                delete.push(" AND charging_profile_id = ").push_bind(id);
            } else {
                if let Some(connector_id) = filter.connector_id {
                    delete.push(" AND connector_id = ").push_bind(connector_id);
                }
                if let Some(purpose) = filter.purpose {
                    delete.push(" AND purpose = ").push_bind(purpose.as_str());
                }
                if let Some(stack_level) = filter.stack_level {
                    delete.push(" AND stack_level = ").push_bind(stack_level);
                }
            }
            delete
                .build()
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        });
        result.map_err(|err| {
            self.db.fail(
                err,
                "charging profile",
                format!("of charge point id {charge_point_id} matching {filter:?}"),
            )
        })
    }

    /// A charger's profiles by connector, purpose and stack level.
    pub async fn list(&self, charge_point_id: i64) -> Result<Vec<ChargingProfile>, StorageError> {
        with_pool!(self.db, |pool| {
            sqlx::query_as::<_, ChargingProfile>(select!(
                "WHERE charge_point_id = ? ORDER BY connector_id, purpose, stack_level"
            ))
            .bind(charge_point_id)
            .fetch_all(pool)
            .await
        })
        .map_err(|err| {
            self.db.fail(
                err,
                "charging profile",
                format!("of charge point id {charge_point_id}"),
            )
        })
    }

    /// The profiles installed on exactly this connector (0 for the charger-wide ones, which
    /// apply to every connector too), by purpose and stack level.
    pub async fn list_for_connector(
        &self,
        charge_point_id: i64,
        connector_id: i32,
    ) -> Result<Vec<ChargingProfile>, StorageError> {
        with_pool!(self.db, |pool| {
            sqlx::query_as::<_, ChargingProfile>(select!(
                "WHERE charge_point_id = ? AND connector_id = ? ORDER BY purpose, stack_level"
            ))
            .bind(charge_point_id)
            .bind(connector_id)
            .fetch_all(pool)
            .await
        })
        .map_err(|err| {
            self.db.fail(
                err,
                "charging profile",
                format!("of connector {connector_id} on charge point id {charge_point_id}"),
            )
        })
    }
}
