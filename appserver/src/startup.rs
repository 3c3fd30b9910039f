//! Builds the running application: binds every requested service's listener first (so a taken
//! port fails the start before anything serves), then serves them all until shutdown.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use voltfleet_core::config::ServiceName;
use voltfleet_core::context::AppContext;
use voltfleet_core::http;
use voltfleet_ocpp::OcppService;

/// Services bound to their listeners, ready to serve.
#[derive(Debug)]
pub struct Application {
    ctx: AppContext,
    bound: Vec<(ServiceName, TcpListener)>,
}

impl Application {
    /// Binds the listener of each service in `services` (duplicates are served once).
    pub async fn bind(ctx: &AppContext, services: &[ServiceName]) -> anyhow::Result<Application> {
        let mut unique = services.to_vec();
        unique.sort();
        unique.dedup();
        let mut bound = Vec::with_capacity(unique.len());
        for service in unique {
            let address = ctx.settings.service(service).listen;
            let listener = TcpListener::bind(address).await.with_context(|| {
                format!(
                    "the {service} service cannot listen on {address}; stop whatever uses that address or set {service}.listen (VOLTFLEET__{}__LISTEN)",
                    service.as_str().to_ascii_uppercase()
                )
            })?;
            bound.push((service, listener));
        }
        Ok(Application {
            ctx: ctx.clone(),
            bound,
        })
    }

    /// The address each service actually listens on (port 0 in the config picks a free one).
    pub fn addresses(&self) -> Vec<(ServiceName, SocketAddr)> {
        self.bound
            .iter()
            .filter_map(|(service, listener)| listener.local_addr().ok().map(|a| (*service, a)))
            .collect()
    }

    /// Serves every service until `shutdown` is cancelled, then drains them together.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let drain_timeout = self.ctx.settings.shutdown.drain_timeout;
        let mut servers = tokio::task::JoinSet::new();
        // Chargers' WebSockets outlive the HTTP server that upgraded them; the OCPP service is
        // waited for separately so that every session closes cleanly and every write lands.
        let mut ocpp = None;
        for (service, listener) in self.bound {
            let address = listener.local_addr()?;
            let routes = match service {
                ServiceName::Api => voltfleet_api::routes(&self.ctx),
                ServiceName::Backoffice => voltfleet_backoffice::routes(&self.ctx),
                ServiceName::Ocpp => {
                    let started = OcppService::start(&self.ctx, shutdown.clone())
                        .await
                        .context("starting the OCPP service")?;
                    let routes = started.routes();
                    ocpp = Some(started);
                    routes
                }
                ServiceName::Ocpi => voltfleet_ocpi::routes(),
                ServiceName::Jobs => voltfleet_jobs::routes(),
            };
            let app = http::service_app(service, self.ctx.clone(), routes);
            tracing::info!(service = service.as_str(), %address, "Service listening.");
            let stop = shutdown.clone();
            servers.spawn(async move {
                let result = http::serve(service, listener, app, stop, drain_timeout).await;
                (service, result)
            });
        }
        self.ctx.metrics.services_running.set(servers.len() as i64);
        let mut failure = None;
        while let Some(joined) = servers.join_next().await {
            let (service, result) = joined.context("a service task panicked")?;
            if let Err(err) = result {
                tracing::error!(service = service.as_str(), error = %err, "Service stopped with an error; stopping the others.");
                shutdown.cancel();
                failure.get_or_insert(anyhow::anyhow!("the {service} service failed: {err}"));
            }
        }
        if let Some(ocpp) = ocpp {
            shutdown.cancel();
            if tokio::time::timeout(drain_timeout, ocpp.closed())
                .await
                .is_err()
            {
                tracing::warn!(
                    drain_timeout_seconds = drain_timeout.as_secs_f64(),
                    "OCPP sessions were still closing when the drain timeout ended; stopping anyway."
                );
            }
        }
        self.ctx.metrics.services_running.set(0);
        match failure {
            Some(err) => Err(err),
            None => {
                tracing::info!("Stopped.");
                Ok(())
            }
        }
    }
}
