//! The relational store: MySQL/MariaDB in production, SQLite embedded.
//!
//! [`Database`] holds one pool of either kind. Repositories (`db.locations()`,
//! `db.charge_points()`, …) run the same query text on both, since both use `?` placeholders;
//! only upserts differ by dialect. Row types derive `sqlx::FromRow`, so one struct decodes from
//! either backend. Times are UTC: MySQL sessions run with `time_zone = '+00:00'` and
//! `DATETIME(3)` columns, SQLite stores fixed-width RFC 3339 text (see `time.rs`).
//!
//! Migrations are embedded per dialect from `migrations/mysql` and `migrations/sqlite`; both
//! directories hold the same versions and build the same tables.

mod error;
mod time;

/// Runs `$body` with `$pool` bound to whichever pool `$db` holds. The body is compiled once per
/// backend, so one query text and one row type serve both.
macro_rules! with_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::storage::Database::MySql($pool) => $body,
            $crate::storage::Database::Sqlite($pool) => $body,
        }
    };
}

pub mod api_keys;
pub mod audit;
pub mod charge_points;
pub mod charging_profiles;
pub mod configuration;
pub mod drivers;
pub mod id_tokens;
pub mod local_list;
pub mod locations;
pub mod ocpp_messages;
pub mod operator_sessions;
pub mod operators;
pub mod overview;
pub mod reservations;
mod text_enum;
pub mod transactions;

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::mysql::{
    MySqlConnectOptions, MySqlDatabaseError, MySqlPool, MySqlPoolOptions, MySqlQueryResult,
    MySqlSslMode,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteQueryResult,
};
use sqlx::{ConnectOptions, Connection, Executor};

use crate::config::{DatabaseSettings, DatabaseSslMode};

pub use api_keys::{ApiKeyRecord, ApiKeys, NewApiKey};
pub use audit::{Audit, AuditEntry, NewAuditEntry};
pub use charge_points::{
    BootInfo, ChargePoint, ChargePoints, Connector, Evse, NewChargePoint, NewConnector, NewEvse,
};
pub use charge_points::{StatusHistoryEntry, StatusRecorded, StatusReport};
pub use charging_profiles::{
    ChargingProfile, ChargingProfileKind, ChargingProfilePurpose, ChargingProfiles, ClearFilter,
    NewChargingProfile, ProfileInstalled, RecurrencyKind,
};
pub use configuration::{Configuration, ConfigurationEntry, StoredConfiguration};
pub use drivers::{Driver, DriverSession, Drivers, NewDriver, NewDriverSession};
pub use error::StorageError;
pub use id_tokens::{IdToken, IdTokens, NewIdToken};
pub use local_list::{LocalList, LocalListEntry, LocalListUpdate};
pub use locations::{
    EquipmentRow, Location, LocationHit, LocationSearch, Locations, NewLocation, SearchArea,
    SearchPosition,
};
pub use ocpp_messages::{NewOcppMessage, OcppMessage, OcppMessages};
pub use operator_sessions::{NewOperatorSession, OperatorSession, OperatorSessions};
pub use operators::{NewOperator, Operator, Operators};
pub use overview::{
    AuditFilter, ChargePointFilter, ChargePointPage, Figures, IdTokenFilter, Overview,
    TransactionFilter, TransactionListing,
};
pub use reservations::{NewReservation, Reservation, ReservationStatus, Reservations};
pub use transactions::{
    MeterValue, NewMeterValue, NewTransaction, StopTransaction, Transaction, Transactions,
};

use error::{is_connectivity, is_foreign_key_violation, is_unique_violation};

/// The file name of the embedded database inside `data_dir`.
pub const SQLITE_FILE_NAME: &str = "voltfleet.db";

/// How long an SQLite writer waits for another writer before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

static MYSQL_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/mysql");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");

/// A connection pool to the configured database. Cloning is cheap and shares the pool.
#[derive(Clone)]
pub enum Database {
    MySql(MySqlPool),
    Sqlite(SqlitePool),
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Database").field(&self.describe()).finish()
    }
}

impl Database {
    /// Opens the configured database: MySQL when `database.url` is set, else the SQLite file
    /// `data_dir/voltfleet.db` (created with its directory when missing).
    ///
    /// One connection is made before this returns, so a wrong host, password or database name
    /// fails here, with a message that names where it tried to connect and what to check.
    pub async fn connect(
        settings: &DatabaseSettings,
        data_dir: &Path,
    ) -> Result<Database, StorageError> {
        match &settings.url {
            Some(url) => connect_mysql(settings, url.expose_secret()).await,
            None => connect_sqlite(settings, data_dir).await,
        }
    }

    /// `"mysql"` or `"sqlite"`, for logs and metrics labels.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Database::MySql(_) => "mysql",
            Database::Sqlite(_) => "sqlite",
        }
    }

    /// Where the data lives, without credentials: `mysql://host:3306/db` or
    /// `sqlite:/path/voltfleet.db`.
    pub fn describe(&self) -> String {
        match self {
            Database::MySql(pool) => {
                let options = pool.connect_options();
                describe_mysql(&options)
            }
            Database::Sqlite(pool) => {
                format!("sqlite:{}", pool.connect_options().get_filename().display())
            }
        }
    }

    /// Applies the embedded migrations that the database lacks; returns the versions applied
    /// by this call (empty when the schema was already current). Safe to run from several
    /// processes at once: sqlx holds a database lock while migrating.
    pub async fn migrate(&self) -> Result<Vec<i64>, StorageError> {
        let before = self.applied_versions().await?;
        let result = match self {
            Database::MySql(pool) => MYSQL_MIGRATIONS.run(pool).await,
            Database::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await,
        };
        result.map_err(|err| self.migration_error(err))?;
        let after = self.applied_versions().await?;
        Ok(after.difference(&before).copied().collect())
    }

    /// The embedded migrations the database has not applied yet, oldest first. Changes nothing,
    /// so it is safe for readiness checks and `config check`.
    pub async fn pending_migrations(&self) -> Result<Vec<i64>, StorageError> {
        let applied = self.applied_versions().await?;
        Ok(self
            .migrator()
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .map(|m| m.version)
            .filter(|version| !applied.contains(version))
            .collect())
    }

    /// Checks that the database answers, within the pool's acquire timeout.
    pub async fn ping(&self) -> Result<(), StorageError> {
        let timeout = match self {
            Database::MySql(pool) => pool.options().get_acquire_timeout(),
            Database::Sqlite(pool) => pool.options().get_acquire_timeout(),
        };
        let query = async { with_pool!(self, |pool| pool.execute("SELECT 1").await.map(|_| ())) };
        match tokio::time::timeout(timeout, query).await {
            Ok(result) => result.map_err(|err| self.fail(err, "connection check", "SELECT 1")),
            Err(_) => Err(StorageError::Unavailable {
                database: self.describe(),
                reason: format!(
                    "it did not answer SELECT 1 within {timeout:?}; check the database server's load and the network"
                ),
            }),
        }
    }

    /// Closes every connection, waiting for those in use to be returned.
    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await)
    }

    pub fn locations(&self) -> Locations<'_> {
        Locations { db: self }
    }

    pub fn charge_points(&self) -> ChargePoints<'_> {
        ChargePoints { db: self }
    }

    pub fn id_tokens(&self) -> IdTokens<'_> {
        IdTokens { db: self }
    }

    pub fn transactions(&self) -> Transactions<'_> {
        Transactions { db: self }
    }

    pub fn operators(&self) -> Operators<'_> {
        Operators { db: self }
    }

    pub fn operator_sessions(&self) -> OperatorSessions<'_> {
        OperatorSessions { db: self }
    }

    pub fn drivers(&self) -> Drivers<'_> {
        Drivers { db: self }
    }

    pub fn api_keys(&self) -> ApiKeys<'_> {
        ApiKeys { db: self }
    }

    pub fn audit(&self) -> Audit<'_> {
        Audit { db: self }
    }

    fn migrator(&self) -> &'static Migrator {
        match self {
            Database::MySql(_) => &MYSQL_MIGRATIONS,
            Database::Sqlite(_) => &SQLITE_MIGRATIONS,
        }
    }

    /// Versions recorded as successfully applied; none when sqlx's table does not exist yet.
    async fn applied_versions(&self) -> Result<BTreeSet<i64>, StorageError> {
        let table_exists = match self {
            Database::MySql(pool) => {
                sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = DATABASE() AND table_name = '_sqlx_migrations'",
                )
                .fetch_one(pool)
                .await
            }
            Database::Sqlite(pool) => {
                sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) FROM sqlite_master \
                 WHERE type = 'table' AND name = '_sqlx_migrations'",
                )
                .fetch_one(pool)
                .await
            }
        }
        .map_err(|err| self.fail(err, "migration history", "_sqlx_migrations"))?;
        if table_exists == 0 {
            return Ok(BTreeSet::new());
        }
        let versions = with_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>("SELECT version FROM _sqlx_migrations WHERE success = 1")
                .fetch_all(pool)
                .await
        })
        .map_err(|err| self.fail(err, "migration history", "_sqlx_migrations"))?;
        Ok(versions.into_iter().collect())
    }

    fn migration_error(&self, err: MigrateError) -> StorageError {
        let fix = match &err {
            MigrateError::Execute(inner) | MigrateError::ExecuteMigration(inner, _)
                if is_connectivity(inner) =>
            {
                return self.fail_connectivity(inner);
            }
            MigrateError::VersionMissing(_) => {
                "the database was migrated by a newer voltfleet; run that version (or a newer one)"
            }
            MigrateError::VersionMismatch(_) => {
                "an applied migration file was edited afterwards; restore its original text and add changes as a new migration"
            }
            MigrateError::Dirty(_) => {
                "a migration failed halfway earlier; repair the schema by hand, delete that version's row from _sqlx_migrations, then run `voltfleet migrate` again"
            }
            _ => "fix the cause, then run `voltfleet migrate` again",
        };
        StorageError::Migration(format!("{err} (database {}); {fix}", self.describe()))
    }

    /// Turns a query error into a [`StorageError`] about `entity` identified by `key` (a
    /// field and value such as ``identity `CP-1` ``).
    pub(crate) fn fail(
        &self,
        err: sqlx::Error,
        entity: &'static str,
        key: impl Into<String>,
    ) -> StorageError {
        if is_unique_violation(&err) {
            return StorageError::Conflict {
                entity,
                key: key.into(),
            };
        }
        if is_connectivity(&err) || is_busy(&err) {
            return self.fail_connectivity(&err);
        }
        StorageError::Other(format!(
            "the {} database failed on {entity} {}: {err}",
            self.backend_name(),
            key.into()
        ))
    }

    /// Like [`Database::fail`] for a row that refers to a parent: a foreign-key violation means
    /// the parent does not exist, and is `NotFound` for it.
    pub(crate) fn fail_child(
        &self,
        err: sqlx::Error,
        entity: &'static str,
        key: impl Into<String>,
        parent: &'static str,
        parent_key: impl Into<String>,
    ) -> StorageError {
        if is_foreign_key_violation(&err) {
            return StorageError::not_found(parent, parent_key.into());
        }
        self.fail(err, entity, key)
    }

    fn fail_connectivity(&self, err: &sqlx::Error) -> StorageError {
        StorageError::Unavailable {
            database: self.describe(),
            reason: format!(
                "{err}; retry once it is reachable again (check the server and the network; if the pool is exhausted, raise database.max_connections)"
            ),
        }
    }
}

/// Lock contention that outlasted the wait: a retry later may succeed.
fn is_busy(err: &sqlx::Error) -> bool {
    // MySQL: lock wait timeout and deadlock (both roll back, so a retry is safe).
    if let Some(number) = mysql_error_number(err) {
        return matches!(number, 1205 | 1213);
    }
    // SQLite: SQLITE_BUSY / SQLITE_LOCKED and their extended codes.
    let code = err.as_database_error().and_then(|db| db.code());
    matches!(code.as_deref(), Some("5" | "6" | "261" | "262" | "517"))
}

/// MySQL's error number (`code()` gives only the coarser SQLSTATE).
fn mysql_error_number(err: &sqlx::Error) -> Option<u16> {
    err.as_database_error()?
        .try_downcast_ref::<MySqlDatabaseError>()
        .map(MySqlDatabaseError::number)
}

/// What a finished `INSERT`/`UPDATE`/`DELETE` reports, the same for both backends.
pub(crate) struct Done {
    pub(crate) rows_affected: u64,
    /// The id the statement generated (`AUTO_INCREMENT` / rowid).
    pub(crate) last_id: i64,
}

impl From<MySqlQueryResult> for Done {
    fn from(result: MySqlQueryResult) -> Done {
        Done {
            rows_affected: result.rows_affected(),
            // Our ids are signed BIGINTs, so the server never hands out more than i64::MAX.
            last_id: result.last_insert_id() as i64,
        }
    }
}

impl From<SqliteQueryResult> for Done {
    fn from(result: SqliteQueryResult) -> Done {
        Done {
            rows_affected: result.rows_affected(),
            last_id: result.last_insert_rowid(),
        }
    }
}

/// An `UPDATE … WHERE id = ?` must have matched its row (MySQL connections report matched,
/// not changed, rows).
pub(crate) fn found_one(done: Done, entity: &'static str, id: i64) -> Result<(), StorageError> {
    if done.rows_affected == 0 {
        Err(StorageError::not_found(entity, format!("id {id}")))
    } else {
        Ok(())
    }
}

async fn connect_sqlite(
    settings: &DatabaseSettings,
    data_dir: &Path,
) -> Result<Database, StorageError> {
    let path = data_dir.join(SQLITE_FILE_NAME);
    let unavailable = |reason: String| StorageError::Unavailable {
        database: format!("sqlite:{}", path.display()),
        reason,
    };
    tokio::fs::create_dir_all(data_dir).await.map_err(|err| {
        unavailable(format!(
            "cannot create the data directory {}: {err}; set data_dir to a directory this user may write",
            data_dir.display()
        ))
    })?;
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true)
        .busy_timeout(SQLITE_BUSY_TIMEOUT);
    let pool = SqlitePoolOptions::new()
        .max_connections(settings.max_connections)
        .min_connections(settings.min_connections)
        .acquire_timeout(settings.acquire_timeout)
        .connect_with(options)
        .await
        .map_err(|err| {
            unavailable(format!(
                "cannot open it: {err}; check that data_dir is writable and the file is an SQLite database"
            ))
        })?;
    Ok(Database::Sqlite(pool))
}

async fn connect_mysql(settings: &DatabaseSettings, url: &str) -> Result<Database, StorageError> {
    let options = mysql_options(settings, url)?;
    let target = describe_mysql(&options);
    let user = options.get_username().to_string();
    let unavailable = |reason: String| StorageError::Unavailable {
        database: target.clone(),
        reason,
    };

    // The pool retries refused connections until acquire_timeout and then reports only
    // "timed out", so a first connection made by hand gives the real cause, at once.
    let first = tokio::time::timeout(settings.acquire_timeout, options.connect()).await;
    match first {
        Ok(Ok(connection)) => {
            // Closing politely is best effort: the check has already succeeded.
            let _ = connection.close().await;
        }
        Ok(Err(err)) => {
            return Err(unavailable(format!(
                "cannot connect as user `{user}`: {err}; {}",
                mysql_connect_advice(&err)
            )));
        }
        Err(_) => {
            return Err(unavailable(format!(
                "no answer within database.acquire_timeout ({:?}); check the host and port in database.url, DNS, and that security groups let this machine reach the server",
                settings.acquire_timeout
            )));
        }
    }

    let pool = MySqlPoolOptions::new()
        .max_connections(settings.max_connections)
        .min_connections(settings.min_connections)
        .acquire_timeout(settings.acquire_timeout)
        .after_connect(|connection, _| {
            Box::pin(async move {
                // Servers without strict mode (older RDS parameter groups) silently truncate
                // over-long text; we want the error SQLite's CHECKs and MariaDB give.
                connection
                    .execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')")
                    .await
                    .map(|_| ())
            })
        })
        .connect_with(options)
        .await
        .map_err(|err| {
            unavailable(format!(
                "the connection pool could not start: {err}; {}",
                mysql_connect_advice(&err)
            ))
        })?;
    Ok(Database::MySql(pool))
}

/// Parses `database.url` and applies the TLS settings, without ever echoing the URL (it holds
/// the password).
fn mysql_options(
    settings: &DatabaseSettings,
    url: &str,
) -> Result<MySqlConnectOptions, StorageError> {
    let url = match url.strip_prefix("mariadb://") {
        Some(rest) => format!("mysql://{rest}"),
        None => url.to_string(),
    };
    let invalid = |problem: String| {
        StorageError::Other(format!(
            "database.url is not a usable MySQL URL: {problem}; write it as mysql://USER:PASSWORD@HOST:3306/DATABASE (percent-encode special characters in the password)"
        ))
    };
    if !url.starts_with("mysql://") {
        return Err(invalid(
            "it does not start with mysql:// or mariadb://".into(),
        ));
    }
    let parsed = MySqlConnectOptions::from_str(&url).map_err(|err| invalid(err.to_string()))?;
    if parsed.get_database().is_none_or(str::is_empty) {
        return Err(invalid("it names no database".into()));
    }

    let query = url.split_once('?').map_or("", |(_, query)| query);
    let url_sets_ssl_mode = query
        .split('&')
        .any(|pair| pair.starts_with("ssl-mode=") || pair.starts_with("sslmode="));
    let configured = mysql_ssl_mode(settings.ssl_mode);
    // A mode written into the URL may only make TLS stricter than database.ssl_mode.
    let ssl_mode = if url_sets_ssl_mode {
        stricter(parsed.get_ssl_mode(), configured)
    } else {
        configured
    };
    let mut options = parsed
        .ssl_mode(ssl_mode)
        // Every timestamp we store is UTC, whatever the URL or server default says.
        .timezone(Some("+00:00".to_string()));
    if let Some(ca) = &settings.ssl_ca {
        options = options.ssl_ca(ca);
    }
    Ok(options)
}

fn mysql_ssl_mode(mode: DatabaseSslMode) -> MySqlSslMode {
    match mode {
        DatabaseSslMode::Disabled => MySqlSslMode::Disabled,
        DatabaseSslMode::Preferred => MySqlSslMode::Preferred,
        DatabaseSslMode::Required => MySqlSslMode::Required,
        DatabaseSslMode::VerifyCa => MySqlSslMode::VerifyCa,
        DatabaseSslMode::VerifyIdentity => MySqlSslMode::VerifyIdentity,
    }
}

fn stricter(a: MySqlSslMode, b: MySqlSslMode) -> MySqlSslMode {
    let rank = |mode: MySqlSslMode| match mode {
        MySqlSslMode::Disabled => 0,
        MySqlSslMode::Preferred => 1,
        MySqlSslMode::Required => 2,
        MySqlSslMode::VerifyCa => 3,
        MySqlSslMode::VerifyIdentity => 4,
    };
    if rank(a) >= rank(b) { a } else { b }
}

fn describe_mysql(options: &MySqlConnectOptions) -> String {
    format!(
        "mysql://{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or_default()
    )
}

/// What to check for the usual ways a first MySQL connection fails.
fn mysql_connect_advice(err: &sqlx::Error) -> &'static str {
    match mysql_error_number(err) {
        // Access denied, with or without a password.
        Some(1045 | 1698) => "check the user and password in database.url (or the SSM parameter)",
        // No such database, or no rights on it.
        Some(1044 | 1049) => {
            "check the database name in database.url, create the database, and grant this user access to it"
        }
        _ if matches!(err, sqlx::Error::Tls(_)) => {
            "check database.ssl_mode and database.ssl_ca (the RDS global bundle for RDS)"
        }
        _ => {
            "check that the server is running, the host and port in database.url, DNS, and that security groups let this machine reach it"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn settings(url: &str, ssl_mode: DatabaseSslMode) -> DatabaseSettings {
        DatabaseSettings {
            url: Some(SecretString::from(url)),
            max_connections: 2,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(1),
            migrate_on_start: false,
            ssl_mode,
            ssl_ca: None,
        }
    }

    #[test]
    fn mariadb_urls_are_mysql_urls() {
        let url = "mariadb://u:p@db.example:3307/fleet";
        let options =
            mysql_options(&settings(url, DatabaseSslMode::Preferred), url).expect("valid URL");
        assert_eq!(describe_mysql(&options), "mysql://db.example:3307/fleet");
    }

    #[test]
    fn the_url_may_only_tighten_tls() {
        let check = |url: &str, configured, expected| {
            let options = mysql_options(&settings(url, configured), url).expect("valid URL");
            assert_eq!(
                format!("{:?}", options.get_ssl_mode()),
                format!("{expected:?}"),
                "{url}"
            );
        };
        let plain = "mysql://u@h/db";
        check(plain, DatabaseSslMode::Disabled, MySqlSslMode::Disabled);
        check(plain, DatabaseSslMode::VerifyCa, MySqlSslMode::VerifyCa);
        let loose = "mysql://u@h/db?ssl-mode=disabled";
        check(loose, DatabaseSslMode::Required, MySqlSslMode::Required);
        let strict = "mysql://u@h/db?ssl-mode=verify_identity";
        check(
            strict,
            DatabaseSslMode::Preferred,
            MySqlSslMode::VerifyIdentity,
        );
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_the_password() {
        for url in [
            "postgres://u:hunter2@h/db",
            "mysql://u:hunter2@h",
            "mysql://u:hunter2@h:notaport/db",
        ] {
            let err = mysql_options(&settings(url, DatabaseSslMode::Preferred), url)
                .expect_err("invalid URL");
            let text = err.to_string();
            assert!(text.contains("database.url"), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
    }
}
