//! The OCPP service as `voltfleet up` runs it: in this process, on SQLite, with the
//! in-process bus and directory. A real charger (the `ocpp` package) connects to the service
//! on a random port; commands go through `ChargerCommands` and events come off the bus.

use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;
use voltfleet_core::config::{Layers, ServiceName, Settings, Source};
use voltfleet_core::context::AppContext;
use voltfleet_core::credentials::hash_password;
use voltfleet_core::domain::{ChargePointId, RegistrationStatus};
use voltfleet_core::metrics::Metrics;
use voltfleet_core::ocpp::commands::{ChargerCommands, CommandError};
use voltfleet_core::ocpp::events::{ChargerEvent, TRANSACTION_TOPIC};
use voltfleet_core::ocpp::v16::{
    Action, GetConfigurationRequest, RemoteStartStopStatus, RemoteStopTransactionRequest,
};
use voltfleet_core::storage::NewChargePoint;
use voltfleet_e2e::charger::{Charger, ChargerOptions};
use voltfleet_ocpp::OcppService;

const PASSWORD: &str = "in-process-secret";

/// The service on 127.0.0.1 with a fresh SQLite database in `data_dir`.
async fn spawn_service(
    data_dir: &std::path::Path,
) -> anyhow::Result<(AppContext, String, CancellationToken, OcppService)> {
    let toml = format!(
        "data_dir = {:?}\n[ocpp]\ncall_timeout = \"3s\"\n",
        data_dir.display().to_string()
    );
    let layers = Layers::from_toml_str(&toml, Source::Default)?;
    let settings = Settings::from_layers(&layers)?.settings;
    let ctx = AppContext::connect(settings, Metrics::new(), true).await?;
    let shutdown = CancellationToken::new();
    let service = OcppService::start(&ctx, shutdown.clone()).await?;
    let app = voltfleet_core::http::service_app(ServiceName::Ocpp, ctx.clone(), service.routes());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}/ocpp", listener.local_addr()?);
    let stop = shutdown.clone();
    tokio::spawn(voltfleet_core::http::serve(
        ServiceName::Ocpp,
        listener,
        app,
        stop,
        Duration::from_secs(2),
    ));
    Ok((ctx, url, shutdown, service))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_and_events_work_in_one_process_on_sqlite() -> anyhow::Result<()> {
    let data_dir = tempfile::tempdir()?;
    let (ctx, url, shutdown, service) = spawn_service(data_dir.path()).await?;
    assert_eq!(ctx.db.backend_name(), "sqlite");
    assert_eq!(ctx.shared.backend_name(), "in-process");
    let identity: ChargePointId = "CP-LOCAL-1".parse()?;
    let charge_point_id = ctx
        .db
        .charge_points()
        .create(&NewChargePoint {
            identity: identity.clone(),
            location_id: None,
            ocpp_password_hash: Some(hash_password(PASSWORD)?),
            registration_status: RegistrationStatus::Accepted,
        })
        .await?;
    let mut transactions = ctx.shared.bus.subscribe(TRANSACTION_TOPIC).await?;
    let commands = ChargerCommands::new(ctx.shared.clone(), Duration::from_secs(3));

    let offline = commands
        .send(&identity, &GetConfigurationRequest { key: None })
        .await;
    assert!(
        matches!(offline, Err(CommandError::Offline { .. })),
        "{offline:?}"
    );

    let mut charger =
        Charger::connect(ChargerOptions::new(&url, identity.as_str()).password(PASSWORD)).await?;
    charger
        .call_ok(
            "BootNotification",
            json!({"chargePointVendor": "Acme", "chargePointModel": "Home 11"}),
        )
        .await?;
    let started = charger
        .call_ok(
            "StartTransaction",
            json!({"connectorId": 1, "idTag": "UNKNOWN-TAG", "meterStart": 42, "timestamp": "2026-12-01T07:00:00Z"}),
        )
        .await?;
    assert_eq!(
        started["idTagInfo"]["status"], "Invalid",
        "an unknown tag still gets its transaction, which the charger then stops"
    );
    let transaction_id = started["transactionId"].as_i64().unwrap_or_default();

    // The event comes off the bus after the database has the transaction.
    let event = tokio::time::timeout(Duration::from_secs(5), transactions.next())
        .await?
        .ok_or_else(|| anyhow::anyhow!("the bus closed"))?;
    let event: ChargerEvent = serde_json::from_slice(&event.payload)?;
    match event {
        ChargerEvent::TransactionStarted {
            charge_point,
            transaction_id: id,
            authorization,
            meter_start_wh,
            ..
        } => {
            assert_eq!(
                (charge_point, id, authorization.as_str(), meter_start_wh),
                (identity.clone(), transaction_id, "Invalid", 42)
            );
        }
        other => anyhow::bail!("expected TransactionStarted, got {other:?}"),
    }
    assert!(ctx.db.transactions().get(transaction_id).await.is_ok());

    // Commands through the in-process bus and directory.
    let configuration = commands
        .send(&identity, &GetConfigurationRequest { key: None })
        .await?;
    let keys = configuration.configuration_key.unwrap_or_default();
    assert_eq!(keys.len(), 3, "{keys:?}");
    let mirrored = ctx.db.configuration().list(charge_point_id).await?;
    assert_eq!(mirrored.len(), 3, "{mirrored:?}");
    let stop = commands
        .send(&identity, &RemoteStopTransactionRequest { transaction_id })
        .await?;
    assert_eq!(stop.status, RemoteStartStopStatus::Accepted);
    assert_eq!(
        charger.received("RemoteStopTransaction").await?,
        json!({"transactionId": transaction_id})
    );
    let unlocked = commands
        .send_raw(
            &identity,
            Action::UnlockConnector,
            json!({"connectorId": 1}),
        )
        .await?;
    assert_eq!(unlocked, json!({"status": "Unlocked"}));

    // Stopping the service closes the session with 1001, so the charger reconnects elsewhere.
    shutdown.cancel();
    let (code, reason) = charger.closed().await?;
    assert_eq!(code, 1001, "{reason}");
    tokio::time::timeout(Duration::from_secs(10), service.closed()).await?;
    Ok(())
}
