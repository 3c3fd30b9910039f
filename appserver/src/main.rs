//! `voltfleet`: the app-server binary. It reads the configuration, sets up telemetry and hands
//! over to the command asked for; everything else lives in the libraries it composes.

mod commands;
mod demo;
mod proxy;
mod site;
mod startup;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use voltfleet_core::config::ServiceName;

/// The voltfleet app server: Back Office, API, OCPP, OCPI and Jobs.
#[derive(Debug, Parser)]
#[command(name = "voltfleet", version, about, propagate_version = true)]
struct Cli {
    /// Configuration file (TOML). Environment variables VOLTFLEET__SECTION__KEY override it.
    #[arg(
        short,
        long,
        global = true,
        value_name = "FILE",
        env = "VOLTFLEET_CONFIG"
    )]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole stack on this machine with demo data: every service, embedded storage.
    Up,
    /// Run the named services in this process (production: one service per container).
    Serve {
        /// Services to run: api, backoffice, ocpp, ocpi, jobs.
        #[arg(required = true, value_parser = parse_service)]
        services: Vec<ServiceName>,
    },
    /// Ask services for /healthz; exit 0 only when every one checked answers 200. With no
    /// service named, checks every service listening here and fails when none is.
    Healthcheck {
        /// Services to check: api, backoffice, ocpp, ocpi, jobs (default: those listening).
        #[arg(value_parser = parse_service)]
        services: Vec<ServiceName>,
        /// How long each service may take to accept and answer, such as 3s or 500ms.
        #[arg(long, value_name = "DURATION", default_value = commands::HEALTHCHECK_TIMEOUT, value_parser = commands::parse_timeout)]
        timeout: std::time::Duration,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration with each value's source (secrets redacted); exit
    /// non-zero listing every error.
    Check,
}

fn parse_service(text: &str) -> Result<ServiceName, String> {
    text.parse()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("voltfleet")
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("voltfleet: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let config = cli.config.as_deref();
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Up => commands::up(config).await,
            Command::Serve { services } => commands::serve(config, &services).await,
            Command::Healthcheck { services, timeout } => {
                commands::healthcheck(config, &services, timeout).await
            }
            Command::Migrate => commands::migrate(config).await,
            Command::Config {
                command: ConfigCommand::Check,
            } => commands::config_check(config).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("voltfleet: {err:#}");
            ExitCode::FAILURE
        }
    }
}
