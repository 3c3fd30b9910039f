//! The context every service handler receives: settings, database, shared state and metrics,
//! connected once at start.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Settings;
use crate::metrics::Metrics;
use crate::shared::{Shared, SharedError};
use crate::storage::{Database, StorageError};

/// How long a readiness check waits for one dependency before calling it down.
const READINESS_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Handles to everything a service needs; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppContext {
    pub settings: Arc<Settings>,
    pub db: Database,
    pub shared: Shared,
    pub metrics: Metrics,
}

/// A dependency that could not be made ready at start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("the database is not usable: {0}")]
    Database(#[from] StorageError),
    #[error("Redis is not usable: {0}")]
    Redis(#[from] SharedError),
    #[error(
        "the database {database} is missing {count} migration(s) (versions {versions:?}); run `voltfleet migrate`, or set database.migrate_on_start = true"
    )]
    SchemaBehind {
        database: String,
        count: usize,
        versions: Vec<i64>,
    },
}

/// Every problem found at start, so that one run tells the operator all there is to fix.
#[derive(Debug)]
pub struct StartupErrors(pub Vec<StartupError>);

impl fmt::Display for StartupErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "voltfleet cannot start:")?;
        for error in &self.0 {
            writeln!(f, "  - {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StartupErrors {}

impl AppContext {
    /// Connects the database and Redis (both tried, every failure reported), then applies or
    /// checks migrations as `database.migrate_on_start` says (`migrate` forces applying).
    pub async fn connect(
        settings: Settings,
        metrics: Metrics,
        migrate: bool,
    ) -> Result<AppContext, StartupErrors> {
        let (db, shared) = tokio::join!(
            Database::connect(&settings.database, &settings.data_dir),
            Shared::connect(&settings.redis, &settings.bus),
        );
        let mut problems = Vec::new();
        let db = db
            .map_err(|err| problems.push(StartupError::Database(err)))
            .ok();
        let shared = shared
            .map_err(|err| problems.push(StartupError::Redis(err)))
            .ok();
        let (Some(db), Some(shared)) = (db, shared) else {
            return Err(StartupErrors(problems));
        };
        if migrate || settings.database.migrate_on_start {
            let applied = db
                .migrate()
                .await
                .map_err(|err| StartupErrors(vec![StartupError::Database(err)]))?;
            if !applied.is_empty() {
                tracing::info!(database = %db.describe(), versions = ?applied, "Applied database migrations.");
            }
        } else {
            let pending = db
                .pending_migrations()
                .await
                .map_err(|err| StartupErrors(vec![StartupError::Database(err)]))?;
            if !pending.is_empty() {
                return Err(StartupErrors(vec![StartupError::SchemaBehind {
                    database: db.describe(),
                    count: pending.len(),
                    versions: pending,
                }]));
            }
        }
        Ok(AppContext {
            settings: Arc::new(settings),
            db,
            shared,
            metrics,
        })
    }

    /// Checks every dependency now, each bounded by a short timeout, and updates
    /// `voltfleet_dependency_up`.
    pub async fn readiness(&self) -> Readiness {
        let (database, redis) = tokio::join!(
            bounded(async { self.db.ping().await.map_err(|err| err.to_string()) }),
            bounded(async { self.shared.ping().await.map_err(|err| err.to_string()) }),
        );
        let checks = vec![
            DependencyCheck {
                name: "database",
                backend: self.db.backend_name(),
                error: database.err(),
            },
            DependencyCheck {
                name: "redis",
                backend: self.shared.backend_name(),
                error: redis.err(),
            },
        ];
        for check in &checks {
            self.metrics
                .dependency_up
                .with_label_values(&[check.name])
                .set(i64::from(check.error.is_none()));
        }
        Readiness {
            ready: checks.iter().all(|check| check.error.is_none()),
            checks,
        }
    }
}

async fn bounded(check: impl Future<Output = Result<(), String>>) -> Result<(), String> {
    tokio::time::timeout(READINESS_CHECK_TIMEOUT, check)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "no answer within {}s",
                READINESS_CHECK_TIMEOUT.as_secs()
            ))
        })
}

/// The result of checking one dependency.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DependencyCheck {
    pub name: &'static str,
    pub backend: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Whether every dependency answered.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Readiness {
    pub ready: bool,
    pub checks: Vec<DependencyCheck>,
}
