//! `voltfleet-proxy`: reads and checks the configuration, then hands the process to Pingora.
//!
//! `voltfleet-proxy -t -c FILE` only checks the file, like `nginx -t`. Signals (Pingora's):
//! SIGTERM drains gracefully, SIGINT stops at once, SIGQUIT hands the listeners to a new binary
//! started with `--upgrade`; SIGHUP (ours) reloads routes and pools.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use voltfleet_proxy::config::ProxyConfig;

/// Many short-lived allocations per request (headers, buffers, futures) spread over worker
/// threads: mimalloc handles them with less contention and CPU than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The voltfleet edge proxy.
#[derive(Debug, Parser)]
#[command(name = "voltfleet-proxy", version, about)]
struct Cli {
    /// Configuration file (TOML).
    #[arg(short, long, value_name = "FILE", env = "VOLTFLEET_PROXY_CONFIG")]
    config: PathBuf,
    /// Check the configuration file and exit.
    #[arg(short = 't', long = "test")]
    test: bool,
    /// Take over the listening sockets of a running proxy (graceful binary upgrade).
    #[arg(short, long)]
    upgrade: bool,
    /// Stop gracefully when standard input closes: for a parent process (`voltfleet up`) whose
    /// death, even by SIGKILL, must not leave the proxy running.
    #[arg(long)]
    exit_with_stdin: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let config = match ProxyConfig::load(&cli.config) {
        Ok(config) => config,
        Err(problems) => {
            eprintln!("voltfleet-proxy: {}: {problems}", cli.config.display());
            return ExitCode::FAILURE;
        }
    };
    if cli.test {
        eprintln!(
            "voltfleet-proxy: the configuration file {} is valid",
            cli.config.display()
        );
        return ExitCode::SUCCESS;
    }
    if cli.exit_with_stdin {
        stop_when_stdin_closes();
    }
    match voltfleet_proxy::server::build(config, &cli.config, cli.upgrade) {
        Ok(server) => server.run_forever(),
        Err(err) => {
            eprintln!("voltfleet-proxy: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Sends this process SIGTERM (Pingora's graceful stop) once standard input reaches its end.
fn stop_when_stdin_closes() {
    std::thread::spawn(|| {
        let mut sink = [0u8; 256];
        let mut stdin = std::io::stdin().lock();
        while let Ok(read) = std::io::Read::read(&mut stdin, &mut sink) {
            if read == 0 {
                break;
            }
        }
        tracing::info!("Standard input closed: the parent is gone; stopping.");
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::TERM);
    });
}

/// JSON lines on standard error unless it is a terminal; `RUST_LOG` sets the level.
fn init_logging() {
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Pingora's header serializer warns once that it has no zstd dictionary. Stored heads are
    // compressed without one on purpose: a dictionary would have to stay the same for as long
    // as any disk zone holds an object written with it.
    let asked_for_it = std::env::var("RUST_LOG").is_ok_and(|value| value.contains("pingora_cache"));
    if !asked_for_it && let Ok(quiet) = "pingora_cache::meta=error".parse() {
        filter = filter.add_directive(quiet);
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::io::stderr().is_terminal() {
        builder.init();
    } else {
        builder.json().flatten_event(true).init();
    }
}
