//! Each charger's configuration keys (OCPP 1.6 GetConfiguration / ChangeConfiguration),
//! mirrored so the Back Office can show them without asking the charger.
//!
//! Keys are CiStrings: `HeartbeatInterval` and `heartbeatinterval` are one key, stored with the
//! spelling first seen.

use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;

use super::time::Stamp;
use super::{Database, StorageError};

/// Rows per upsert statement (5 placeholders each); GetConfiguration answers hold a few
/// hundred keys at most.
const ROWS_PER_INSERT: usize = 500;

/// One key as the charger reports it (OCPP KeyValue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigurationEntry {
    pub key: String,
    /// `None` when the charger reports the key without a value.
    pub value: Option<String>,
    pub readonly: bool,
}

/// A stored key.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredConfiguration {
    pub charge_point_id: i64,
    #[sqlx(rename = "config_key")]
    pub key: String,
    pub value: Option<String>,
    pub readonly: bool,
    pub updated_at: DateTime<Utc>,
}

/// The `charge_point_configuration` table; from [`Database::configuration`].
#[derive(Debug, Clone, Copy)]
pub struct Configuration<'a> {
    pub(super) db: &'a Database,
}

impl Database {
    pub fn configuration(&self) -> Configuration<'_> {
        Configuration { db: self }
    }
}

impl Configuration<'_> {
    /// Stores a full GetConfiguration answer: the keys listed are inserted or updated, every
    /// other key of the charger is removed; one database transaction. `NotFound` when the
    /// charger does not exist.
    pub async fn replace_all(
        &self,
        charge_point_id: i64,
        entries: &[ConfigurationEntry],
    ) -> Result<(), StorageError> {
        self.store(charge_point_id, entries, true).await
    }

    /// Stores a partial GetConfiguration answer (the keys asked for): inserts or updates the
    /// keys listed and leaves the others. `NotFound` when the charger does not exist.
    pub async fn upsert(
        &self,
        charge_point_id: i64,
        entries: &[ConfigurationEntry],
    ) -> Result<(), StorageError> {
        self.store(charge_point_id, entries, false).await
    }

    /// Records a value the charger accepted in ChangeConfiguration. A key we have not seen yet
    /// is added as writable (the charger just wrote it). `NotFound` when the charger does not
    /// exist.
    pub async fn set_value(
        &self,
        charge_point_id: i64,
        key: &str,
        value: &str,
    ) -> Result<(), StorageError> {
        let upsert = match self.db {
            Database::MySql(_) => {
                "INSERT INTO charge_point_configuration (charge_point_id, config_key, value, \
                 readonly, updated_at) VALUES (?, ?, ?, FALSE, ?) \
                 ON DUPLICATE KEY UPDATE value = VALUES(value), updated_at = VALUES(updated_at)"
            }
            Database::Sqlite(_) => {
                "INSERT INTO charge_point_configuration (charge_point_id, config_key, value, \
                 readonly, updated_at) VALUES (?, ?, ?, FALSE, ?) \
                 ON CONFLICT (charge_point_id, config_key) DO UPDATE SET \
                 value = excluded.value, updated_at = excluded.updated_at"
            }
        };
        with_pool!(self.db, |pool| {
            sqlx::query(upsert)
                .bind(charge_point_id)
                .bind(key)
                .bind(value)
                .bind(Stamp::now())
                .execute(pool)
                .await
                .map(|_| ())
        })
        .map_err(|err| {
            self.db.fail_child(
                err,
                "configuration key",
                format!("`{key}` of charge point id {charge_point_id}"),
                "charge point",
                format!("id {charge_point_id}"),
            )
        })
    }

    /// A charger's keys, by key.
    pub async fn list(
        &self,
        charge_point_id: i64,
    ) -> Result<Vec<StoredConfiguration>, StorageError> {
        with_pool!(self.db, |pool| {
            sqlx::query_as::<_, StoredConfiguration>(
                "SELECT charge_point_id, config_key, value, readonly, updated_at \
                 FROM charge_point_configuration WHERE charge_point_id = ? ORDER BY config_key",
            )
            .bind(charge_point_id)
            .fetch_all(pool)
            .await
        })
        .map_err(|err| {
            self.db.fail(
                err,
                "configuration key",
                format!("of charge point id {charge_point_id}"),
            )
        })
    }

    async fn store(
        &self,
        charge_point_id: i64,
        entries: &[ConfigurationEntry],
        remove_others: bool,
    ) -> Result<(), StorageError> {
        let update = match self.db {
            Database::MySql(_) => {
                " ON DUPLICATE KEY UPDATE value = VALUES(value), readonly = VALUES(readonly), \
                 updated_at = VALUES(updated_at)"
            }
            Database::Sqlite(_) => {
                " ON CONFLICT (charge_point_id, config_key) DO UPDATE SET value = excluded.value, \
                 readonly = excluded.readonly, updated_at = excluded.updated_at"
            }
        };
        if entries.is_empty() {
            // Nothing to insert would let a missing charger pass unnoticed.
            self.db.charge_points().get(charge_point_id).await?;
        }
        let now = Stamp::now();
        let result = with_pool!(self.db, |pool| {
            async {
                let mut tx = pool.begin().await?;
                // Upsert first: a missing charger fails here, on the foreign key, rather than
                // passing unnoticed through a DELETE that matches nothing.
                for chunk in entries.chunks(ROWS_PER_INSERT) {
                    let mut insert = QueryBuilder::new(
                        "INSERT INTO charge_point_configuration (charge_point_id, config_key, \
                         value, readonly, updated_at) ",
                    );
                    insert.push_values(chunk, |mut row, entry| {
                        row.push_bind(charge_point_id)
                            .push_bind(entry.key.as_str())
                            .push_bind(entry.value.as_deref())
                            .push_bind(entry.readonly)
                            .push_bind(now);
                    });
                    insert.push(update);
                    insert.build().persistent(false).execute(&mut *tx).await?;
                }
                if remove_others {
                    // Compared under the column's collation, so a key listed in another letter
                    // case is kept.
                    let mut delete = QueryBuilder::new(
                        "DELETE FROM charge_point_configuration WHERE charge_point_id = ",
                    );
                    delete.push_bind(charge_point_id);
                    if !entries.is_empty() {
                        delete.push(" AND config_key NOT IN (");
                        let mut keys = delete.separated(", ");
                        for entry in entries {
                            keys.push_bind(entry.key.as_str());
                        }
                        delete.push(")");
                    }
                    delete.build().persistent(false).execute(&mut *tx).await?;
                }
                tx.commit().await
            }
            .await
        });
        result.map_err(|err| {
            self.db.fail_child(
                err,
                "configuration key",
                format!("of charge point id {charge_point_id}"),
                "charge point",
                format!("id {charge_point_id}"),
            )
        })
    }
}
