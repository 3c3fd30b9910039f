//! The OCPP central system: chargers connect to `/ocpp/{chargePointId}` over WebSocket.
//!
//! A connection goes through [`endpoint`] (identity, subprotocol, security profile), then lives
//! in a [`session`] task that reads OCPP-J frames ([`rpc`]), validates and handles them with the
//! version's module ([`v16`]), and carries commands from the rest of the system to the charger.
//! [`registry`] knows the sessions of this node; [`node`] answers commands sent to this node
//! over the bus and closes sessions that another node has taken over; [`meter_writer`] groups
//! meter values into few database writes. Everything a charger reports is committed before
//! its CALLRESULT is sent. [`diagnostics`] is where chargers upload diagnostics files.

mod auth;
mod diagnostics;
mod endpoint;
mod message_log;
mod meter_writer;
mod metrics;
mod node;
mod protocol;
mod registry;
mod rpc;
mod session;
mod v16;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use voltfleet_core::config::OcppSettings;
use voltfleet_core::context::AppContext;
use voltfleet_core::ocpp::events::ChargerEvent;

use crate::auth::PasswordChecker;
use crate::message_log::MessageLog;
use crate::meter_writer::MeterWriter;
use crate::metrics::OcppMetrics;
use crate::registry::Registry;
use crate::v16::schemas::Schemas;

/// Meter value groups written at once, each on its own connection: while one commits, the
/// next is already on its way (more buys nothing on a single MySQL primary).
const MAX_METER_GROUPS: usize = 4;

/// Why the OCPP service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the OCPP metrics cannot be registered: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("{0}")]
    Schemas(String),
    #[error("the OCPP service cannot listen on the bus: {0}; check redis.url")]
    Bus(#[from] voltfleet_core::shared::SharedError),
    #[error(transparent)]
    Diagnostics(#[from] diagnostics::OpenError),
}

/// A started OCPP service: its routes, and the tasks to wait for when it stops.
#[derive(Debug)]
pub struct OcppService {
    central: Arc<Central>,
}

/// What every session and handler of this node shares.
#[derive(Debug)]
pub(crate) struct Central {
    pub ctx: AppContext,
    /// This node's name on the bus and in the directory.
    pub node: String,
    pub schemas: Schemas,
    pub passwords: PasswordChecker,
    pub registry: Registry,
    pub metrics: OcppMetrics,
    pub meters: MeterWriter,
    /// The recent messages of each charger, for the Back Office.
    pub messages: MessageLog,
    /// Where diagnostics uploads are stored.
    pub uploads: diagnostics::Uploads,
    /// Cancelled when the process stops: sessions close with 1001 so chargers reconnect
    /// to another node.
    pub shutdown: CancellationToken,
    pub tasks: TaskTracker,
}

impl Central {
    pub fn settings(&self) -> &OcppSettings {
        &self.ctx.settings.ocpp_protocol
    }

    /// Publishes an event for the other services; a bus failure is logged, never fatal (the
    /// database already holds what the event tells).
    pub async fn publish(&self, event: ChargerEvent) {
        let body = match serde_json::to_vec(&event) {
            Ok(body) => body,
            Err(err) => {
                tracing::error!(error = %err, "An OCPP event could not be written as JSON.");
                return;
            }
        };
        if let Err(err) = self.ctx.shared.bus.publish(event.topic(), &body).await {
            tracing::warn!(
                charge_point = %event.charge_point(),
                topic = event.topic(),
                error = %err,
                "An OCPP event could not be published."
            );
        }
    }
}

impl OcppService {
    /// Compiles the schemas, registers the metrics, opens the diagnostics store and starts
    /// answering commands on the bus.
    pub async fn start(
        ctx: &AppContext,
        shutdown: CancellationToken,
    ) -> Result<OcppService, StartError> {
        let settings = &ctx.settings.ocpp_protocol;
        let metrics = OcppMetrics::register(&ctx.metrics)?;
        let uploads = diagnostics::Uploads::open(&ctx.settings).await?;
        let tasks = TaskTracker::new();
        let meters = MeterWriter::start(
            ctx.db.clone(),
            metrics.clone(),
            settings.meter_values_batch as usize,
            // Half the pool at most, so the rest of the service always finds a connection.
            (ctx.settings.database.max_connections as usize / 2).clamp(1, MAX_METER_GROUPS),
            &tasks,
        );
        let messages = MessageLog::start(ctx.db.clone(), settings.message_log, &tasks);
        let central = Arc::new(Central {
            ctx: ctx.clone(),
            node: node_name(),
            schemas: Schemas::compile().map_err(StartError::Schemas)?,
            passwords: PasswordChecker::new(settings.max_concurrent_password_checks),
            registry: Registry::default(),
            metrics,
            meters,
            messages,
            uploads,
            shutdown,
            tasks,
        });
        node::start(&central).await?;
        tracing::info!(node = %central.node, "The OCPP central system is ready.");
        Ok(OcppService { central })
    }

    /// The routes this service answers, beyond the operational endpoints.
    pub fn routes(&self) -> Router<AppContext> {
        Router::new()
            .route("/ocpp/{charge_point_id}", get(endpoint::connect))
            .merge(diagnostics::routes(
                self.central.settings().diagnostics.max_size,
            ))
            .with_state(Arc::clone(&self.central))
    }

    /// Waits until every session has closed and every write has finished (after shutdown).
    pub async fn closed(self) {
        let tasks = self.central.tasks.clone();
        tasks.close();
        drop(self);
        tasks.wait().await;
    }
}

/// A node name that is unique in the fleet and tells people where to look: the host name and
/// process id, and a random part in case both repeat (containers often share a host name).
fn node_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "ocpp".to_owned());
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &random[..8])
}
