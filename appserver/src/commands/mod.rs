//! The `voltfleet` subcommands.

mod healthcheck;
mod up;

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use voltfleet_core::config::{self, Loaded, ServiceName};
use voltfleet_core::context::AppContext;
use voltfleet_core::metrics::Metrics;
use voltfleet_core::storage::Database;
use voltfleet_core::telemetry;

use crate::startup::Application;

pub use healthcheck::{DEFAULT_TIMEOUT as HEALTHCHECK_TIMEOUT, healthcheck, parse_timeout};
pub use up::up;

/// Loads and validates the configuration; the error lists every problem.
async fn load_config(file: Option<&Path>) -> anyhow::Result<Loaded> {
    Ok(config::load(file).await?)
}

async fn load_and_init(file: Option<&Path>) -> anyhow::Result<Loaded> {
    let loaded = load_config(file).await?;
    telemetry::init(&loaded.settings.log).map_err(anyhow::Error::msg)?;
    Ok(loaded)
}

/// `voltfleet config check`: the effective configuration, one key per line with its source.
pub async fn config_check(file: Option<&Path>) -> anyhow::Result<()> {
    let loaded = load_config(file).await?;
    let width = loaded
        .effective
        .iter()
        .map(|entry| entry.key.len() + entry.shown.len() + 3)
        .max()
        .unwrap_or(0);
    let mut out = std::io::stdout().lock();
    for entry in &loaded.effective {
        let assignment = format!("{} = {}", entry.key, entry.shown);
        writeln!(out, "{assignment:width$}  # {}", entry.source)?;
    }
    writeln!(out, "# the configuration is valid")?;
    Ok(())
}

/// `voltfleet migrate`: applies pending migrations to the configured database.
pub async fn migrate(file: Option<&Path>) -> anyhow::Result<()> {
    let loaded = load_and_init(file).await?;
    let settings = &loaded.settings;
    let db = Database::connect(&settings.database, &settings.data_dir).await?;
    let applied = db
        .migrate()
        .await
        .with_context(|| format!("migrating {}", db.describe()))?;
    if applied.is_empty() {
        tracing::info!(database = %db.describe(), "The database schema is up to date; nothing to apply.");
    } else {
        tracing::info!(database = %db.describe(), versions = ?applied, "Applied database migrations.");
    }
    db.close().await;
    Ok(())
}

/// `voltfleet serve <service>...`: runs the named services until SIGTERM or Ctrl-C.
pub async fn serve(file: Option<&Path>, services: &[ServiceName]) -> anyhow::Result<()> {
    let loaded = load_and_init(file).await?;
    let ctx = AppContext::connect(loaded.settings, Metrics::new(), false).await?;
    let app = Application::bind(&ctx, services).await?;
    let shutdown = shutdown_on_signal();
    app.run_until_stopped(shutdown).await?;
    ctx.db.close().await;
    Ok(())
}

/// A token cancelled on the first SIGTERM or SIGINT (Ctrl-C).
fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let signal = wait_for_signal().await;
        tracing::info!(
            signal,
            "Stopping: no new connections; finishing requests in flight."
        );
        cancel.cancel();
    });
    token
}

async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(stream) => stream,
        Err(err) => {
            tracing::error!(error = %err, "Cannot listen for SIGTERM; only Ctrl-C will stop this process.");
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
}
