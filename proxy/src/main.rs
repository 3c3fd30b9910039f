//! `voltfleet-proxy`: reads and checks the configuration, then hands the process to Pingora.
//!
//! `voltfleet-proxy -t -c FILE` only checks the file, like `nginx -t`. Signals (Pingora's):
//! SIGTERM drains gracefully, SIGINT stops at once, SIGQUIT hands the listeners to a new binary
//! started with `--upgrade`; SIGHUP (ours) reloads routes and pools. `--daemon` is for systemd's
//! `Type=forking`: the process detaches and writes `server.pid_file`, so that a new one started
//! by `ExecReload` outlives the reload and systemd follows it by that file.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use pingora::server::{ExecutionPhase, RunArgs};
use tokio::sync::broadcast::Receiver;
use voltfleet_proxy::config::ProxyConfig;
use voltfleet_proxy::server::StartMode;

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
    /// Run in the background and write the PID file (`server.pid_file`), keeping standard
    /// output and error: for systemd's Type=forking.
    #[arg(short, long)]
    daemon: bool,
    /// Stop gracefully when standard input closes: for a parent process (`voltfleet up`) whose
    /// death, even by SIGKILL, must not leave the proxy running.
    #[arg(long, conflicts_with = "daemon")]
    exit_with_stdin: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    // A daemon works in `/`: SIGHUP must find the same file that was given relative to here.
    let config_path = match std::path::absolute(&cli.config) {
        Ok(path) => path,
        Err(err) => {
            eprintln!(
                "voltfleet-proxy: cannot make {} absolute: {err}; give the configuration file as an absolute path",
                cli.config.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let config = match ProxyConfig::load(&config_path) {
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
    if let Err(problem) = check_runtime_paths(&config, &cli) {
        eprintln!("voltfleet-proxy: {problem}");
        return ExitCode::FAILURE;
    }
    if cli.exit_with_stdin {
        stop_when_stdin_closes();
    }
    let pid_file = config.server.pid_file.clone();
    let mode = StartMode {
        upgrade: cli.upgrade,
        daemon: cli.daemon,
    };
    let server = match voltfleet_proxy::server::build(config, &config_path, mode) {
        Ok(server) => server,
        Err(err) => {
            eprintln!("voltfleet-proxy: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    let phases = server.watch_execution_phase();
    server.run(RunArgs::default());
    if cli.daemon {
        return daemon_exit(&pid_file, phases);
    }
    ExitCode::SUCCESS
}

/// The directories a daemon writes its PID file into and an upgrade opens its socket in, checked
/// before Pingora uses them: it panics on a socket it cannot bind, and a daemon that cannot write
/// its PID file dies after the fork, leaving the starting command to wait out its timeout.
fn check_runtime_paths(config: &ProxyConfig, cli: &Cli) -> Result<(), String> {
    let mut needed = Vec::new();
    if cli.daemon {
        needed.push(("server.pid_file", &config.server.pid_file));
    }
    if cli.upgrade {
        needed.push(("server.upgrade_socket", &config.server.upgrade_socket));
    }
    for (key, path) in needed {
        let dir = path
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(Path::new("/"));
        if let Err(err) = rustix::fs::access(dir, rustix::fs::Access::WRITE_OK) {
            return Err(format!(
                "{key} is {}, but its directory {} cannot be written: {err}; create the directory for this user (systemd's RuntimeDirectory=voltfleet-proxy does) or set {key} to another path",
                path.display(),
                dir.display()
            ));
        }
    }
    Ok(())
}

/// How a daemon leaves. After SIGQUIT the sockets went to a new process, which names itself in
/// the PID file; when none did, the upgrade failed after the old process let go of its
/// listeners, and exiting with failure lets systemd (`Restart=on-failure`) start the proxy
/// again instead of leaving the service stopped. A daemon that stops for good removes its PID
/// file.
fn daemon_exit(pid_file: &Path, mut phases: Receiver<ExecutionPhase>) -> ExitCode {
    let mut handed_over = false;
    while let Ok(phase) = phases.try_recv() {
        handed_over |= matches!(phase, ExecutionPhase::GracefulUpgradeTransferringFds);
    }
    let own = rustix::process::getpid();
    let named = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|text| text.trim().parse::<i32>().ok())
        .and_then(rustix::process::Pid::from_raw);
    if !handed_over {
        if named == Some(own) {
            let _ = std::fs::remove_file(pid_file);
        }
        return ExitCode::SUCCESS;
    }
    match named {
        Some(pid) if pid != own && rustix::process::test_kill_process(pid).is_ok() => {
            tracing::info!(
                successor = pid.as_raw_nonzero().get(),
                "Handed over to the new process; exiting."
            );
            ExitCode::SUCCESS
        }
        _ => {
            tracing::error!(
                pid_file = %pid_file.display(),
                "Asked to hand over to a new process (SIGQUIT), but no new process names itself in the PID file; exiting with failure so that the service is started again."
            );
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
