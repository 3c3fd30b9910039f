//! Helpers for tests of any crate (feature `test-support`): a fresh MySQL database per test and
//! database settings for both backends.
//!
//! Tests run against a real MariaDB/MySQL server: `make test` starts one, or point
//! `VOLTFLEET_TEST_MYSQL_URL` at a server where the user may create and drop databases.

use std::path::Path;
use std::time::Duration;

use rand::RngCore;
use secrecy::SecretString;
use sqlx::mysql::MySqlConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor};

use crate::config::{DatabaseSettings, DatabaseSslMode};
use crate::storage::StorageError;

/// The environment variable naming the server tests create their databases on.
pub const TEST_MYSQL_URL_VAR: &str = "VOLTFLEET_TEST_MYSQL_URL";
/// The server `make test` starts.
pub const DEFAULT_TEST_MYSQL_URL: &str = "mysql://root@127.0.0.1:3306/test";

/// A database of its own for one test, on the test MySQL server.
#[derive(Debug, Clone)]
pub struct TestMySql {
    /// Connects to this test's database (holds credentials when the server URL does).
    pub url: String,
    /// `vf_test_` and 16 random hex digits.
    pub name: String,
}

impl TestMySql {
    /// Creates an empty database on the server named by `VOLTFLEET_TEST_MYSQL_URL` (default
    /// `mysql://root@127.0.0.1:3306/test`).
    pub async fn create() -> Result<TestMySql, StorageError> {
        let server = std::env::var(TEST_MYSQL_URL_VAR)
            .unwrap_or_else(|_| DEFAULT_TEST_MYSQL_URL.to_string());
        let mut suffix = [0u8; 8];
        rand::rng().fill_bytes(&mut suffix);
        let name = format!("vf_test_{}", hex::encode(suffix));
        let url = with_database(&server, &name)?;
        // The name is ours (letters, digits, `_`), so it needs no escaping.
        execute_on_server(
            &server,
            &format!("CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"),
        )
        .await?;
        Ok(TestMySql { url, name })
    }

    /// Settings that connect to this test's database.
    pub fn settings(&self) -> DatabaseSettings {
        mysql_settings(&self.url)
    }

    /// Removes the database and everything in it.
    pub async fn drop_database(&self) -> Result<(), StorageError> {
        execute_on_server(&self.url, &format!("DROP DATABASE IF EXISTS {}", self.name)).await
    }
}

/// Settings for the embedded SQLite database, sized for tests. The file's place is not a
/// database setting but `data_dir`, which goes to [`crate::storage::Database::connect`]; the
/// directory is taken here anyway so a test names the pair in one place.
pub fn sqlite_settings(_data_dir: &Path) -> DatabaseSettings {
    settings(None)
}

/// Settings for the MySQL database at `url`, sized for tests.
pub fn mysql_settings(url: &str) -> DatabaseSettings {
    settings(Some(SecretString::from(url)))
}

fn settings(url: Option<SecretString>) -> DatabaseSettings {
    DatabaseSettings {
        url,
        max_connections: 5,
        min_connections: 0,
        acquire_timeout: Duration::from_secs(10),
        migrate_on_start: false,
        ssl_mode: DatabaseSslMode::Preferred,
        ssl_ca: None,
    }
}

/// `server` with its database replaced by `name`, keeping credentials and parameters.
fn with_database(server: &str, name: &str) -> Result<String, StorageError> {
    let (scheme, rest) = server.split_once("://").ok_or_else(|| {
        StorageError::Other(format!(
            "{TEST_MYSQL_URL_VAR} is not a URL; set it like {DEFAULT_TEST_MYSQL_URL}"
        ))
    })?;
    let (location, query) = match rest.split_once('?') {
        Some((location, query)) => (location, Some(query)),
        None => (rest, None),
    };
    let authority = location.split_once('/').map_or(location, |(host, _)| host);
    let mut url = format!("{scheme}://{authority}/{name}");
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    Ok(url)
}

async fn execute_on_server(url: &str, statement: &str) -> Result<(), StorageError> {
    let url = match url.strip_prefix("mariadb://") {
        Some(rest) => format!("mysql://{rest}"),
        None => url.to_string(),
    };
    let options: MySqlConnectOptions = url.parse().map_err(|err| {
        StorageError::Other(format!(
            "{TEST_MYSQL_URL_VAR} is not a MySQL URL ({err}); set it like {DEFAULT_TEST_MYSQL_URL}"
        ))
    })?;
    let server = format!("mysql://{}:{}", options.get_host(), options.get_port());
    let unavailable = |reason: String| StorageError::Unavailable {
        database: server.clone(),
        reason: format!(
            "{reason}; tests need a real MariaDB/MySQL: run `make test` (it starts MariaDB), or set {TEST_MYSQL_URL_VAR} to a server where this user may create databases"
        ),
    };
    let connecting = options.connect();
    let mut connection = tokio::time::timeout(Duration::from_secs(10), connecting)
        .await
        .map_err(|_| unavailable("no answer within 10s".into()))?
        .map_err(|err| unavailable(err.to_string()))?;
    connection
        .execute(statement)
        .await
        .map_err(|err| StorageError::Other(format!("`{statement}` failed on {server}: {err}")))?;
    let _ = connection.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_is_replaced_and_the_rest_kept() {
        let cases = [
            (
                "mysql://root@127.0.0.1:3306/test",
                "mysql://root@127.0.0.1:3306/db",
            ),
            ("mysql://u:p@h", "mysql://u:p@h/db"),
            (
                "mariadb://u:p@h:1/x?ssl-mode=disabled",
                "mariadb://u:p@h:1/db?ssl-mode=disabled",
            ),
        ];
        for (server, expected) in cases {
            assert_eq!(with_database(server, "db").expect("a URL"), expected);
        }
    }
}
