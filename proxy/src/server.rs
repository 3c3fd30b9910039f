//! Assembles the Pingora server from a checked configuration: one service per listener (each
//! wrapped by `listener::EdgeApp`), the admin service, the health checks, and SIGHUP reload.

use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::apps::HttpServerOptions;
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{Server, ShutdownWatch};
use pingora::services::background::{BackgroundService, background_service};
use pingora::services::listening::Service;

use crate::access_log::AccessLog;
use crate::admin::AdminApp;
use crate::cache::metrics::CacheMetrics;
use crate::cache::zones::CacheZones;
use crate::config::{ListenerConfig, ProxyConfig};
use crate::daemon::DaemonReady;
use crate::fleet::{Fleet, IpSetFollower, PurgeFollower};
use crate::listener::{EdgeApp, server_tls_config};
use crate::metrics::ProxyMetrics;
use crate::proxy::{EdgeProxy, Runtime, Shared};
use crate::security::autoblock::AutoBlock;
use crate::security::ipsets::IpSets;
use crate::security::ratelimit::RateLimiters;
use crate::security_log::{SecurityLog, Shipper};

/// How the process starts.
#[derive(Debug, Clone, Copy, Default)]
pub struct StartMode {
    /// Take over the listening sockets of a running proxy through the upgrade socket; done
    /// here, in the foreground, so that a failed takeover fails the command that asked for it.
    pub upgrade: bool,
    /// Become a daemon when `run` starts: Pingora forks twice, writes the PID file, keeps
    /// standard output and error (the journal, under systemd) and works in `/`, so every path
    /// the process reads later must be absolute. Nothing before `run` may start a thread. The
    /// process calling `run` exits once the daemon runs (`daemon::DaemonReady`).
    pub daemon: bool,
}

/// Builds the server; `run` on the result owns the process from then on. `config_path` is
/// read again on SIGHUP and must be absolute when daemonizing.
pub fn build(config: ProxyConfig, config_path: &Path, mode: StartMode) -> anyhow::Result<Server> {
    let server_conf = ServerConf {
        threads: config.server.threads,
        work_stealing: config.server.work_stealing,
        grace_period_seconds: Some(config.server.grace_period.as_secs()),
        graceful_shutdown_timeout_seconds: Some(config.server.graceful_shutdown_timeout.as_secs()),
        upgrade_sock: config.server.upgrade_socket.display().to_string(),
        pid_file: config.server.pid_file.display().to_string(),
        daemon: mode.daemon,
        // The starting process waits for `DaemonReady`, which the daemon sends once the PID
        // file names it.
        daemon_wait_for_ready: mode.daemon,
        daemon_ready_timeout_seconds: NonZeroU64::new(60),
        ..ServerConf::default()
    };
    let opt = Opt {
        upgrade: mode.upgrade,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(opt, server_conf);
    server.bootstrap();
    let shared_conf = server.configuration.clone();

    let metrics = ProxyMetrics::new();
    let (draining, draining_receiver) = tokio::sync::watch::channel(false);
    let listener_names: Vec<String> = config.listeners.iter().map(|l| l.name.clone()).collect();
    let cache_metrics = CacheMetrics::new(metrics.registry());
    let cache_zones = Arc::new(
        CacheZones::open(&config.cache_zones, &cache_metrics).context("opening the cache zones")?,
    );
    let fleet = match &config.fleet {
        Some(fleet) => Some(Arc::new(
            Fleet::new(fleet, metrics.registry()).context("setting up the fleet's Redis")?,
        )),
        None => None,
    };
    let rate_limiters = Arc::new(RateLimiters::default());
    let runtime = Runtime::new(&config, &metrics, &listener_names, &rate_limiters);
    let runtime = Arc::new(ArcSwap::from_pointee(runtime));
    let ip_sets = Arc::new(IpSets::new(&config.ip_sets.allow, &config.ip_sets.deny));
    let security_log = config
        .security_log
        .as_ref()
        .map(|log| SecurityLog::new(log, metrics.registry()));
    let shared = Shared {
        runtime: runtime.clone(),
        unrouted: metrics.route_series(&listener_names, "none"),
        metrics: metrics.clone(),
        access_log: config.server.access_log.then_some(AccessLog),
        limits: config.server.limits,
        draining: draining_receiver,
        websocket_close_spread: config.server.websocket_close_spread,
        cache_zones: cache_zones.clone(),
        ip_sets: ip_sets.clone(),
        fleet: fleet.clone(),
        auto_block: config
            .auto_block
            .map(|config| Arc::new(AutoBlock::new(config))),
        security_log: security_log.clone(),
    };

    for (index, listener) in config.listeners.iter().enumerate() {
        let tls = match &listener.tls {
            Some(tls) => Some(
                server_tls_config(tls)
                    .with_context(|| format!("setting up TLS for listener {:?}", listener.name))?,
            ),
            None => None,
        };
        let mut proxy = pingora::proxy::http_proxy(
            &shared_conf,
            EdgeProxy::new(listener.clone(), index, shared.clone()),
        );
        let mut options = HttpServerOptions::default();
        options.h2c = listener.h2c;
        proxy.server_options = Some(options);
        let app = EdgeApp::new(Arc::new(proxy), listener, tls)
            .with_connection_gauges(metrics.connection_gauges(&listener.name));
        let mut service = Service::new(format!("listener {}", listener.name), app);
        service.add_tcp(&listener.address.to_string());
        server.add_service(service);
    }

    let mut admin = Service::new(
        "admin".to_string(),
        AdminApp::new(
            runtime.clone(),
            metrics.clone(),
            cache_zones.clone(),
            config.admin.token.clone(),
            fleet.clone(),
            ip_sets.clone(),
        ),
    );
    admin.add_tcp(&config.admin.listen.to_string());
    server.add_service(admin);

    if let Some(fleet) = fleet {
        server.add_service(background_service(
            "fleet purge log",
            PurgeFollower::new(fleet.clone(), cache_zones.clone()),
        ));
        server.add_service(background_service(
            "fleet IP sets",
            IpSetFollower::new(fleet, ip_sets.clone()),
        ));
    }

    if let Some(log) = security_log {
        server.add_service(background_service(
            "security log",
            Shipper::new(log, config.server.grace_period),
        ));
    }

    if mode.daemon {
        server.add_service(background_service(
            "daemon ready",
            DaemonReady::new(rustix::process::getpid()),
        ));
    }

    server.add_service(background_service(
        "health checks and reload",
        Supervisor {
            runtime,
            config_path: config_path.to_path_buf(),
            listeners: config.listeners.clone(),
            listener_names,
            metrics,
            current: std::sync::Mutex::new(config.clone()),
            draining,
            cache_zones: cache_zones.clone(),
            ip_sets,
            rate_limiters,
        },
    ));
    Ok(server)
}

/// Runs the active health checks of the current pools and swaps in a new configuration on
/// SIGHUP. A file that fails the check is refused and the running configuration kept; a change
/// of listeners needs a restart (or `--upgrade`), since their sockets are already bound.
struct Supervisor {
    runtime: Arc<ArcSwap<Runtime>>,
    config_path: PathBuf,
    listeners: Vec<ListenerConfig>,
    /// The running listeners' names, which index each route's request counters.
    listener_names: Vec<String>,
    metrics: ProxyMetrics,
    /// The configuration the runtime was built from, with peer names resolved.
    current: std::sync::Mutex<ProxyConfig>,
    /// Tells the WebSocket tunnels that the process drains.
    draining: tokio::sync::watch::Sender<bool>,
    /// The zones opened at start: a reload cannot change them.
    cache_zones: Arc<CacheZones>,
    /// A reload replaces the configured networks and keeps those added at run time.
    ip_sets: Arc<IpSets>,
    /// A reload keeps the clients' counts of every limit it does not change.
    rate_limiters: Arc<RateLimiters>,
}

#[async_trait]
impl BackgroundService for Supervisor {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            Ok(signal) => Some(signal),
            Err(err) => {
                tracing::error!(error = %err, "Cannot listen for SIGHUP; reload is unavailable.");
                None
            }
        };
        let mut checks = HealthChecks::start(&self.runtime.load_full());
        let zones = self.cache_zones.clone();
        let mut sweeper_shutdown = shutdown.clone();
        tokio::spawn(async move {
            zones
                .sweep_until(async move {
                    let _ = sweeper_shutdown.changed().await;
                })
                .await;
        });
        loop {
            let reload = async {
                match hangup.as_mut() {
                    Some(signal) => signal.recv().await,
                    None => std::future::pending().await,
                }
            };
            let interval = self.resolve_interval();
            let resolve_again = async {
                if interval.is_zero() {
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(interval).await;
            };
            let swapped = tokio::select! {
                _ = shutdown.changed() => {
                    self.draining.send_replace(true);
                    checks.stop();
                    return;
                }
                _ = reload => self.reload(),
                () = resolve_again => self.refresh_addresses().await,
            };
            if swapped {
                checks.stop();
                checks = HealthChecks::start(&self.runtime.load_full());
            }
        }
    }
}

impl Supervisor {
    fn resolve_interval(&self) -> std::time::Duration {
        self.current
            .lock()
            .map(|config| config.server.resolve_interval)
            .unwrap_or_default()
    }

    fn runtime_for(&self, config: &ProxyConfig) -> Runtime {
        Runtime::new(
            config,
            &self.metrics,
            &self.listener_names,
            &self.rate_limiters,
        )
    }

    fn set_current(&self, config: ProxyConfig) {
        if let Ok(mut current) = self.current.lock() {
            *current = config;
        }
    }

    /// Resolves upstream names again and swaps the runtime when an address changed.
    async fn refresh_addresses(&self) -> bool {
        let Ok(current) = self.current.lock().map(|config| config.clone()) else {
            return false;
        };
        match crate::config::refresh_addresses(&current).await {
            Some(updated) => {
                self.runtime.store(Arc::new(self.runtime_for(&updated)));
                self.set_current(updated);
                true
            }
            None => false,
        }
    }

    /// Checks the file again and swaps the runtime; true when the new one is in place.
    fn reload(&self) -> bool {
        match ProxyConfig::load(&self.config_path) {
            Ok(config) => {
                let changed_zones = self.cache_zones.changed_by(&config.cache_zones);
                if !changed_zones.is_empty() {
                    tracing::error!(
                        path = %self.config_path.display(),
                        zones = ?changed_zones,
                        "The new configuration changes cache zones, which only a restart or --upgrade can do; keeping the running configuration."
                    );
                    return false;
                }
                let fleet_changed = self
                    .current
                    .lock()
                    .map(|current| current.fleet != config.fleet)
                    .unwrap_or(false);
                if fleet_changed {
                    tracing::warn!(
                        path = %self.config_path.display(),
                        "The new configuration changes [fleet]; the running link to Redis is kept until a restart or --upgrade."
                    );
                }
                let restart_only = self
                    .current
                    .lock()
                    .map(|current| {
                        let mut changed = Vec::new();
                        if current.auto_block != config.auto_block {
                            changed.push("[auto_block]");
                        }
                        if current.security_log != config.security_log {
                            changed.push("[security_log]");
                        }
                        changed
                    })
                    .unwrap_or_default();
                if !restart_only.is_empty() {
                    tracing::warn!(
                        path = %self.config_path.display(),
                        sections = ?restart_only,
                        "The new configuration changes sections that only a restart or --upgrade applies; they keep their running settings."
                    );
                }
                if listener_addresses(&config.listeners) != listener_addresses(&self.listeners) {
                    tracing::warn!(
                        path = %self.config_path.display(),
                        "The new configuration changes listeners; routes and pools were reloaded, listeners need a restart."
                    );
                }
                self.runtime.store(Arc::new(self.runtime_for(&config)));
                self.ip_sets
                    .replace_configured(&config.ip_sets.allow, &config.ip_sets.deny);
                tracing::info!(path = %self.config_path.display(), "Reloaded the configuration.");
                self.set_current(config);
                true
            }
            Err(problems) => {
                tracing::error!(
                    path = %self.config_path.display(),
                    problems = %problems,
                    "The new configuration is invalid; keeping the running one."
                );
                false
            }
        }
    }
}

fn listener_addresses(listeners: &[ListenerConfig]) -> Vec<std::net::SocketAddr> {
    listeners.iter().map(|l| l.address).collect()
}

/// The health-check tasks of one runtime's pools.
struct HealthChecks {
    stop: tokio::sync::watch::Sender<bool>,
}

impl HealthChecks {
    fn start(runtime: &Arc<Runtime>) -> HealthChecks {
        let (stop, _) = tokio::sync::watch::channel(false);
        for pool in runtime.all_pools() {
            let mut stopped = stop.subscribe();
            tokio::spawn(pool.run_health_checks(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            }));
        }
        HealthChecks { stop }
    }

    fn stop(self) {
        let _ = self.stop.send(true);
    }
}
