//! Structured logging for every voltfleet process: JSON lines when standard error is not a
//! terminal (containers, systemd, CloudWatch), readable text when it is.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::{LogFormat, LogSettings};

/// Installs the global tracing subscriber. `RUST_LOG`, when set, overrides `log.level`.
///
/// Returns an error naming the filter when `log.level` is not a valid tracing filter.
pub fn init(settings: &LogSettings) -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(from_env) if !from_env.trim().is_empty() => EnvFilter::try_new(&from_env)
            .map_err(|err| format!("RUST_LOG = {from_env:?} is not a log filter: {err}"))?,
        _ => EnvFilter::try_new(&settings.level).map_err(|err| {
            format!(
                "log.level = {:?} is not a log filter ({err}); use a level like \"info\" or \"info,voltfleet_ocpp=debug\"",
                settings.level
            )
        })?,
    };
    let json = match settings.format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_span_events(FmtSpan::NONE);
    let installed = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.try_init()
    };
    // A second init in the same process (tests) keeps the first subscriber; that is fine.
    let _ = installed;
    Ok(())
}
