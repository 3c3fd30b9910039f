//! Each charger's local authorization list (OCPP 1.6 SendLocalList / GetLocalListVersion), as
//! the last update the charger accepted left it. The version lives in
//! `charge_points.local_list_version`.
//!
//! idTags are CiStrings: an entry in another letter case is the same entry.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;

use super::time::Stamp;
use super::{Database, StorageError};

/// Rows per upsert statement (5 placeholders each).
const ROWS_PER_INSERT: usize = 500;

/// How a SendLocalList changes the list (OCPP UpdateType).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LocalListUpdate {
    /// The entries sent are the whole list.
    Full,
    /// Entries with a status are added or updated, entries without one are removed.
    Differential,
}

/// One entry (OCPP AuthorizationData with its idTagInfo flattened).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LocalListEntry {
    pub id_tag: String,
    /// The idTagInfo status as spelled on the wire, such as `Accepted`; `None` when the entry
    /// carries no idTagInfo, which removes it.
    pub status: Option<String>,
    pub expiry_date: Option<DateTime<Utc>>,
    pub parent_id_tag: Option<String>,
}

/// The `local_list_entries` table; from [`Database::local_list`].
#[derive(Debug, Clone, Copy)]
pub struct LocalList<'a> {
    pub(super) db: &'a Database,
}

impl Database {
    pub fn local_list(&self) -> LocalList<'_> {
        LocalList { db: self }
    }
}

impl LocalList<'_> {
    /// Applies a SendLocalList the charger accepted, in one database transaction, and stores
    /// `version` as the charger's list version. `Full` replaces the whole list with the
    /// entries that carry a status; `Differential` adds or updates the entries with a status
    /// and removes those without. Either way an entry without a status ends up not on the
    /// list (OCPP requires idTagInfo in a full update, so a charger has nothing to store for
    /// one without). A later entry for the same idTag wins. `NotFound` when the charger does
    /// not exist.
    pub async fn apply(
        &self,
        charge_point_id: i64,
        version: i32,
        update: LocalListUpdate,
        entries: &[LocalListEntry],
    ) -> Result<(), StorageError> {
        // The last entry for an idTag decides, as if the entries were applied in order. Tags
        // are told apart without regard to ASCII letter case, like the key (NOCASE; MySQL's
        // collation folds more, so there a rarer pair may still meet in one upsert, whose
        // later row then wins too).
        let mut last: HashMap<String, usize> = HashMap::new();
        for (index, entry) in entries.iter().enumerate() {
            last.insert(entry.id_tag.to_ascii_lowercase(), index);
        }
        let (kept, removed): (Vec<&LocalListEntry>, Vec<&LocalListEntry>) = entries
            .iter()
            .enumerate()
            .filter(|(index, entry)| last.get(&entry.id_tag.to_ascii_lowercase()) == Some(index))
            .map(|(_, entry)| entry)
            .partition(|entry| entry.status.is_some());
        let upsert = match self.db {
            Database::MySql(_) => {
                " ON DUPLICATE KEY UPDATE status = VALUES(status), \
                 expiry_date = VALUES(expiry_date), parent_id_tag = VALUES(parent_id_tag)"
            }
            Database::Sqlite(_) => {
                " ON CONFLICT (charge_point_id, id_tag) DO UPDATE SET status = excluded.status, \
                 expiry_date = excluded.expiry_date, parent_id_tag = excluded.parent_id_tag"
            }
        };
        let result = with_pool!(self.db, |pool| {
            async {
                let mut tx = pool.begin().await?;
                // The version first: it is how a missing charger shows, and on SQLite it takes
                // the write lock before anything is read.
                let found =
                    sqlx::query("UPDATE charge_points SET local_list_version = ? WHERE id = ?")
                        .bind(version)
                        .bind(charge_point_id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                if found == 0 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                match update {
                    LocalListUpdate::Full => {
                        sqlx::query("DELETE FROM local_list_entries WHERE charge_point_id = ?")
                            .bind(charge_point_id)
                            .execute(&mut *tx)
                            .await?;
                    }
                    LocalListUpdate::Differential => {
                        for chunk in removed.chunks(ROWS_PER_INSERT) {
                            let mut delete = QueryBuilder::new(
                                "DELETE FROM local_list_entries WHERE charge_point_id = ",
                            );
                            delete.push_bind(charge_point_id).push(" AND id_tag IN (");
                            let mut tags = delete.separated(", ");
                            for entry in chunk {
                                tags.push_bind(entry.id_tag.as_str());
                            }
                            delete.push(")");
                            delete.build().persistent(false).execute(&mut *tx).await?;
                        }
                    }
                }
                for chunk in kept.chunks(ROWS_PER_INSERT) {
                    let mut insert = QueryBuilder::new(
                        "INSERT INTO local_list_entries (charge_point_id, id_tag, status, \
                         expiry_date, parent_id_tag) ",
                    );
                    insert.push_values(chunk, |mut row, entry| {
                        row.push_bind(charge_point_id)
                            .push_bind(entry.id_tag.as_str())
                            .push_bind(entry.status.as_deref())
                            .push_bind(Stamp::opt(entry.expiry_date))
                            .push_bind(entry.parent_id_tag.as_deref());
                    });
                    insert.push(upsert);
                    insert.build().persistent(false).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(true)
            }
            .await
        });
        match result {
            Ok(true) => Ok(()),
            Ok(false) => Err(StorageError::not_found(
                "charge point",
                format!("id {charge_point_id}"),
            )),
            Err(err) => Err(self.db.fail(
                err,
                "local list",
                format!("version {version} of charge point id {charge_point_id}"),
            )),
        }
    }

    /// The entries of a charger's list, by idTag.
    pub async fn entries(&self, charge_point_id: i64) -> Result<Vec<LocalListEntry>, StorageError> {
        with_pool!(self.db, |pool| {
            sqlx::query_as::<_, LocalListEntry>(
                "SELECT id_tag, status, expiry_date, parent_id_tag FROM local_list_entries \
                 WHERE charge_point_id = ? ORDER BY id_tag",
            )
            .bind(charge_point_id)
            .fetch_all(pool)
            .await
        })
        .map_err(|err| {
            self.db.fail(
                err,
                "local list",
                format!("of charge point id {charge_point_id}"),
            )
        })
    }

    /// The version of the charger's list, `None` before it accepted any. `NotFound` when the
    /// charger does not exist.
    pub async fn version(&self, charge_point_id: i64) -> Result<Option<i32>, StorageError> {
        let found = with_pool!(self.db, |pool| {
            sqlx::query_scalar::<_, Option<i32>>(
                "SELECT local_list_version FROM charge_points WHERE id = ?",
            )
            .bind(charge_point_id)
            .fetch_optional(pool)
            .await
        })
        .map_err(|err| {
            self.db.fail(
                err,
                "local list",
                format!("version of charge point id {charge_point_id}"),
            )
        })?;
        found
            .ok_or_else(|| StorageError::not_found("charge point", format!("id {charge_point_id}")))
    }
}
