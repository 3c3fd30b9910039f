//! The OCPP 1.6J central system end to end: real chargers (the `ocpp` package from PyPI)
//! connect through `voltfleet-proxy` to two `voltfleet serve ocpp` processes on MariaDB and
//! Redis; commands come from this test process over the Redis bus, as the API and the Back
//! Office send them.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use voltfleet_core::config::{BusSettings, RedisSettings};
use voltfleet_core::credentials::hash_password;
use voltfleet_core::domain::{ChargePointId, IdTokenStatus, RegistrationStatus};
use voltfleet_core::ocpp::commands::{ChargerCommands, CommandError};
use voltfleet_core::ocpp::v16::{
    Action, RemoteStartStopStatus, RemoteStartTransactionRequest, RemoteStopTransactionRequest,
    ResetRequest, ResetStatus, ResetType,
};
use voltfleet_core::shared::Shared;
use voltfleet_core::storage::{Database, NewChargePoint, NewIdToken, NewReservation};
use voltfleet_core::testing::{TestMySql, mysql_settings};
use voltfleet_e2e::charger::{Charger, ChargerOptions, Connected};
use voltfleet_e2e::proxy::ProxyProcess;
use voltfleet_e2e::{Running, Voltfleet, get};

const PASSWORD: &str = "s3cret-charger-password";
/// Short, so the timeout test is quick; the chargers here answer in milliseconds.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// MariaDB, Redis, `nodes` OCPP processes and a proxy in front of them.
struct Stack {
    database: TestMySql,
    db: Database,
    nodes: Vec<Running>,
    proxy: ProxyProcess,
    commands: ChargerCommands,
}

impl Stack {
    async fn start(nodes: usize, extra_env: &[(&str, &str)]) -> anyhow::Result<Stack> {
        let database = TestMySql::create().await?;
        let migrate = Voltfleet::new(&["migrate"])?
            .env("VOLTFLEET__DATABASE__URL", &database.url)
            .output()
            .await?;
        anyhow::ensure!(migrate.status.success(), "{}", migrate.stderr);
        let redis_url = std::env::var("VOLTFLEET_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let prefix = format!("vf-ocpp-test:{}:", database.name);
        let mut running = Vec::new();
        for _ in 0..nodes {
            let mut node = Voltfleet::new(&["serve", "ocpp"])?
                .env("VOLTFLEET__DATABASE__URL", &database.url)
                .env("VOLTFLEET__REDIS__URL", &redis_url)
                .env("VOLTFLEET__REDIS__KEY_PREFIX", &prefix)
                .env(
                    "VOLTFLEET__OCPP__CALL_TIMEOUT",
                    format!("{}s", CALL_TIMEOUT.as_secs()),
                );
            for (key, value) in extra_env {
                node = node.env(key, value);
            }
            running.push(node.start(&["ocpp"]).await?);
        }
        let peers: Vec<String> = running
            .iter()
            .map(|node| {
                let address = node.url("ocpp", "").replace("http://", "");
                format!("{{ address = \"{address}\" }}")
            })
            .collect();
        let proxy = ProxyProcess::start(&format!(
            "[[listeners]]\naddress = \"{{LISTEN}}\"\n[upstreams.ocpp]\npeers = [{}]\n[[routes]]\npath = \"/ocpp/\"\nupstream = \"ocpp\"\n",
            peers.join(", ")
        ))
        .await?;
        let db =
            Database::connect(&mysql_settings(&database.url), std::path::Path::new(".")).await?;
        let shared = Shared::connect(
            &RedisSettings {
                url: Some(redis_url.into()),
                key_prefix: prefix,
                connect_timeout: Duration::from_secs(2),
                response_timeout: Duration::from_secs(2),
                tls_ca: None,
            },
            &BusSettings {
                request_timeout: Duration::from_secs(10),
            },
        )
        .await?;
        Ok(Stack {
            database,
            db,
            nodes: running,
            proxy,
            commands: ChargerCommands::new(shared, CALL_TIMEOUT),
        })
    }

    /// Chargers connect here: through the proxy.
    fn proxy_ws(&self) -> String {
        self.proxy.ws_url("/ocpp")
    }

    /// Straight to one node, to place a charger on it.
    fn node_ws(&self, node: usize) -> String {
        self.nodes[node]
            .url("ocpp", "/ocpp")
            .replace("http://", "ws://")
    }

    async fn metrics(&self, node: usize) -> anyhow::Result<String> {
        Ok(get(&self.nodes[node].url("ocpp", "/metrics")).await?.1)
    }

    /// An accepted charger with [`PASSWORD`] (security profile 1).
    async fn charger_record(&self, identity: &str) -> anyhow::Result<i64> {
        Ok(self
            .db
            .charge_points()
            .create(&NewChargePoint {
                identity: identity.parse()?,
                location_id: None,
                ocpp_password_hash: Some(hash_password(PASSWORD)?),
                registration_status: RegistrationStatus::Accepted,
            })
            .await?)
    }

    async fn id_token(
        &self,
        token: &str,
        status: IdTokenStatus,
        expires_at: Option<DateTime<Utc>>,
        group: Option<&str>,
    ) -> anyhow::Result<()> {
        self.db
            .id_tokens()
            .create(&NewIdToken {
                token: token.to_owned(),
                token_type: "ISO14443".to_owned(),
                status,
                expires_at,
                group_token: group.map(str::to_owned),
                driver_id: None,
                label: None,
            })
            .await?;
        Ok(())
    }

    async fn connect(&self, url: &str, identity: &str) -> anyhow::Result<Charger> {
        Charger::connect(ChargerOptions::new(url, identity).password(PASSWORD)).await
    }

    /// Waits (bounded) until the fleet's directory places the charger on some node.
    async fn wait_until_reachable(&self, identity: &str) -> anyhow::Result<String> {
        let id: ChargePointId = identity.parse()?;
        for _ in 0..100 {
            if let Some(node) = self.commands.node_of(&id).await? {
                return Ok(node);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("{identity} never appeared in the directory")
    }

    async fn stop(self) -> anyhow::Result<()> {
        for node in self.nodes {
            node.stop_with("TERM").await?;
        }
        self.proxy.stop_with("TERM").await?;
        self.database.drop_database().await?;
        Ok(())
    }
}

fn boot_payload() -> Value {
    json!({
        "chargePointVendor": "Voltfleet Test", "chargePointModel": "AC22",
        "chargePointSerialNumber": "SN-0001", "firmwareVersion": "1.4.2",
        "meterType": "Eastron SDM630", "meterSerialNumber": "M-77"
    })
}

fn status(connector: i32, status: &str, at: &str) -> Value {
    json!({"connectorId": connector, "errorCode": "NoError", "status": status, "timestamp": at})
}

/// Every measurand a 1.6 meter can report, in one sample, with phases where they exist.
fn all_measurands(transaction_id: i64, at: &str, energy_wh: u32) -> Value {
    let sampled = json!([
        {"value": energy_wh.to_string(), "measurand": "Energy.Active.Import.Register", "unit": "Wh", "context": "Sample.Periodic", "location": "Outlet"},
        {"value": "0", "measurand": "Energy.Active.Export.Register", "unit": "Wh"},
        {"value": "12", "measurand": "Energy.Reactive.Import.Register", "unit": "varh"},
        {"value": "0", "measurand": "Energy.Reactive.Export.Register", "unit": "varh"},
        {"value": "450", "measurand": "Energy.Active.Import.Interval", "unit": "Wh"},
        {"value": "0", "measurand": "Energy.Active.Export.Interval", "unit": "Wh"},
        {"value": "3", "measurand": "Energy.Reactive.Import.Interval", "unit": "varh"},
        {"value": "0", "measurand": "Energy.Reactive.Export.Interval", "unit": "varh"},
        {"value": "11.04", "measurand": "Power.Active.Import", "unit": "kW"},
        {"value": "0", "measurand": "Power.Active.Export", "unit": "W"},
        {"value": "120", "measurand": "Power.Reactive.Import", "unit": "var"},
        {"value": "0", "measurand": "Power.Reactive.Export", "unit": "var"},
        {"value": "0.98", "measurand": "Power.Factor"},
        {"value": "22000", "measurand": "Power.Offered", "unit": "W"},
        {"value": "16.0", "measurand": "Current.Import", "unit": "A", "phase": "L1"},
        {"value": "16.1", "measurand": "Current.Import", "unit": "A", "phase": "L2"},
        {"value": "15.9", "measurand": "Current.Import", "unit": "A", "phase": "L3"},
        {"value": "0", "measurand": "Current.Export", "unit": "A"},
        {"value": "32", "measurand": "Current.Offered", "unit": "A"},
        {"value": "230.1", "measurand": "Voltage", "unit": "V", "phase": "L1-N"},
        {"value": "50.0", "measurand": "Frequency"},
        {"value": "31", "measurand": "Temperature", "unit": "Celsius", "location": "Body"},
        {"value": "64", "measurand": "SoC", "unit": "Percent", "location": "EV"},
        {"value": "900", "measurand": "RPM"}
    ]);
    json!({"connectorId": 1, "transactionId": transaction_id, "meterValue": [
        {"timestamp": at, "sampledValue": sampled}
    ]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_charger_boots_authorizes_charges_and_obeys_remote_start_and_stop() -> anyhow::Result<()>
{
    let stack = Stack::start(1, &[]).await?;
    let charge_point_id = stack.charger_record("CP-FLOW-1").await?;
    stack
        .id_token("TAG-OK", IdTokenStatus::Accepted, None, Some("FLEET-A"))
        .await?;
    stack
        .id_token("FLEET-A", IdTokenStatus::Accepted, None, None)
        .await?;
    stack
        .id_token("TAG-BLOCKED", IdTokenStatus::Blocked, None, None)
        .await?;
    let yesterday = Utc::now() - chrono::Duration::days(1);
    stack
        .id_token(
            "TAG-EXPIRED",
            IdTokenStatus::Accepted,
            Some(yesterday),
            None,
        )
        .await?;

    let mut charger = stack.connect(&stack.proxy_ws(), "CP-FLOW-1").await?;
    let boot = charger.call_ok("BootNotification", boot_payload()).await?;
    assert_eq!(boot["status"], "Accepted", "{boot}");
    assert_eq!(boot["interval"], 300, "{boot}");
    let record = stack.db.charge_points().get(charge_point_id).await?;
    assert_eq!(record.vendor.as_deref(), Some("Voltfleet Test"));
    assert_eq!(record.firmware_version.as_deref(), Some("1.4.2"));
    assert_eq!(record.ocpp_version.as_deref(), Some("1.6"));

    let heartbeat = charger.call_ok("Heartbeat", json!({})).await?;
    let now: DateTime<Utc> = serde_json::from_value(heartbeat["currentTime"].clone())?;
    assert!((Utc::now() - now).num_seconds().abs() < 5, "{heartbeat}");

    for (tag, expected) in [
        ("TAG-OK", "Accepted"),
        ("tag-ok", "Accepted"),
        ("TAG-BLOCKED", "Blocked"),
        ("TAG-EXPIRED", "Expired"),
        ("NO-SUCH-TAG", "Invalid"),
    ] {
        let answer = charger.call_ok("Authorize", json!({"idTag": tag})).await?;
        assert_eq!(answer["idTagInfo"]["status"], expected, "{tag}: {answer}");
    }
    let ok = charger
        .call_ok("Authorize", json!({"idTag": "TAG-OK"}))
        .await?;
    assert_eq!(ok["idTagInfo"]["parentIdTag"], "FLEET-A", "{ok}");

    charger
        .call_ok(
            "StatusNotification",
            status(1, "Available", "2026-12-01T10:00:00Z"),
        )
        .await?;
    charger
        .call_ok(
            "StatusNotification",
            status(1, "Preparing", "2026-12-01T10:00:05Z"),
        )
        .await?;
    let started = charger
        .call_ok(
            "StartTransaction",
            json!({"connectorId": 1, "idTag": "TAG-OK", "meterStart": 1000, "timestamp": "2026-12-01T10:00:10Z"}),
        )
        .await?;
    assert_eq!(started["idTagInfo"]["status"], "Accepted", "{started}");
    let transaction_id = started["transactionId"]
        .as_i64()
        .ok_or_else(|| anyhow::anyhow!("no transactionId in {started}"))?;
    charger
        .call_ok(
            "StatusNotification",
            status(1, "Charging", "2026-12-01T10:00:11Z"),
        )
        .await?;
    for minute in 1..=3u32 {
        charger
            .call_ok(
                "MeterValues",
                all_measurands(
                    transaction_id,
                    &format!("2026-12-01T10:0{minute}:10Z"),
                    1000 + minute * 180,
                ),
            )
            .await?;
    }
    // The samples are stored before the CALLRESULT: they are all there now.
    let samples = stack.db.transactions().meter_values(transaction_id).await?;
    assert_eq!(samples.len(), 3 * 24, "{samples:#?}");
    let power = samples
        .iter()
        .find(|sample| sample.measurand == "Power.Active.Import")
        .ok_or_else(|| anyhow::anyhow!("no power sample"))?;
    assert_eq!((power.unit.as_str(), power.value), ("kW", 11.04));
    let phases: Vec<_> = samples
        .iter()
        .filter_map(|sample| sample.phase.clone())
        .collect();
    assert!(phases.contains(&"L2".to_owned()) && phases.contains(&"L1-N".to_owned()));

    // The tag is in use here, so it cannot start on another charger at the same time.
    let busy = charger
        .call_ok("Authorize", json!({"idTag": "TAG-OK"}))
        .await?;
    assert_eq!(
        busy["idTagInfo"]["status"], "Accepted",
        "same charger may stop: {busy}"
    );

    let stopped = charger
        .call_ok(
            "StopTransaction",
            json!({"transactionId": transaction_id, "idTag": "TAG-OK", "meterStop": 1720,
                   "timestamp": "2026-12-01T10:04:00Z", "reason": "Local",
                   "transactionData": [{"timestamp": "2026-12-01T10:04:00Z", "sampledValue": [
                       {"value": "1720", "context": "Transaction.End"}]}]}),
        )
        .await?;
    assert_eq!(stopped["idTagInfo"]["status"], "Accepted", "{stopped}");
    let transaction = stack.db.transactions().get(transaction_id).await?;
    assert_eq!(transaction.energy().map(|energy| energy.0), Some(720));
    assert_eq!(transaction.stop_reason.as_deref(), Some("Local"));
    assert_eq!(
        stack
            .db
            .transactions()
            .meter_values(transaction_id)
            .await?
            .len(),
        3 * 24 + 1
    );

    let history = stack
        .db
        .charge_points()
        .status_history(charge_point_id, Some(1), 10)
        .await?;
    let statuses: Vec<&str> = history.iter().map(|entry| entry.status.as_str()).collect();
    assert_eq!(
        statuses,
        ["Charging", "Preparing", "Available"],
        "{history:#?}"
    );

    // Remote start and stop through the typed command interface: the charger's answer
    // comes back, and the charger's own StartTransaction follows.
    let identity: ChargePointId = "CP-FLOW-1".parse()?;
    let answer = stack
        .commands
        .send(
            &identity,
            &RemoteStartTransactionRequest {
                connector_id: Some(1),
                id_tag: "TAG-OK".to_owned(),
                charging_profile: None,
            },
        )
        .await?;
    assert_eq!(answer.status, RemoteStartStopStatus::Accepted);
    let asked = charger.received("RemoteStartTransaction").await?;
    assert_eq!(asked, json!({"connectorId": 1, "idTag": "TAG-OK"}));
    let remote = charger
        .call_ok(
            "StartTransaction",
            json!({"connectorId": 1, "idTag": "TAG-OK", "meterStart": 1720, "timestamp": "2026-12-01T11:00:00Z"}),
        )
        .await?;
    let remote_id = remote["transactionId"].as_i64().unwrap_or_default();
    assert_ne!(remote_id, transaction_id);
    charger
        .answer("RemoteStopTransaction", json!({"status": "Rejected"}))
        .await?;
    let refused = stack
        .commands
        .send(
            &identity,
            &RemoteStopTransactionRequest {
                transaction_id: remote_id,
            },
        )
        .await?;
    assert_eq!(
        refused.status,
        RemoteStartStopStatus::Rejected,
        "the charger's own answer, not an error"
    );
    assert_eq!(
        charger.received("RemoteStopTransaction").await?,
        json!({"transactionId": remote_id})
    );
    charger
        .answer("RemoteStopTransaction", json!({"status": "Accepted"}))
        .await?;
    let accepted = stack
        .commands
        .send(
            &identity,
            &RemoteStopTransactionRequest {
                transaction_id: remote_id,
            },
        )
        .await?;
    assert_eq!(accepted.status, RemoteStartStopStatus::Accepted);
    charger
        .call_ok(
            "StopTransaction",
            json!({"transactionId": remote_id, "meterStop": 1900, "timestamp": "2026-12-01T11:30:00Z", "reason": "Remote"}),
        )
        .await?;
    assert!(
        stack
            .db
            .transactions()
            .get(remote_id)
            .await?
            .stopped_at
            .is_some()
    );

    let metrics = stack.metrics(0).await?;
    assert!(
        metrics.contains(r#"voltfleet_ocpp_messages_total{action="MeterValues",direction="received",outcome="ok"} 3"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("voltfleet_ocpp_connected_chargers 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"voltfleet_ocpp_call_duration_seconds_count{action="RemoteStopTransaction",outcome="answered"} 2"#),
        "{metrics}"
    );
    charger.close().await?;
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_offline_messages_are_idempotent_and_nothing_acknowledged_is_lost()
-> anyhow::Result<()> {
    let mut stack = Stack::start(1, &[]).await?;
    let charge_point_id = stack.charger_record("CP-QUEUE-1").await?;
    stack
        .id_token("TAG-Q", IdTokenStatus::Accepted, None, None)
        .await?;
    let start = json!({"connectorId": 2, "idTag": "TAG-Q", "meterStart": 5000, "timestamp": "2026-12-01T08:00:00Z"});

    let mut charger = stack.connect(&stack.proxy_ws(), "CP-QUEUE-1").await?;
    charger.call_ok("BootNotification", boot_payload()).await?;
    let first = charger.call_ok("StartTransaction", start.clone()).await?;
    let transaction_id = first["transactionId"].as_i64().unwrap_or_default();
    let samples = all_measurands(transaction_id, "2026-12-01T08:05:00Z", 5300);
    charger.call_ok("MeterValues", samples.clone()).await?;
    // The connection drops (no close frame) before the charger saw some answers; it comes
    // back and sends its queue again, then the stop it kept while offline.
    charger.kill().await;
    let mut charger = stack.connect(&stack.proxy_ws(), "CP-QUEUE-1").await?;
    charger.call_ok("BootNotification", boot_payload()).await?;
    let again = charger.call_ok("StartTransaction", start.clone()).await?;
    assert_eq!(
        again["transactionId"], first["transactionId"],
        "a resent StartTransaction gets the same transaction"
    );
    charger.call_ok("MeterValues", samples.clone()).await?;
    let stop = json!({"transactionId": transaction_id, "meterStop": 5600, "timestamp": "2026-12-01T08:30:00Z", "reason": "EVDisconnected"});
    charger.call_ok("StopTransaction", stop.clone()).await?;
    charger.call_ok("StopTransaction", stop.clone()).await?;
    // A late MeterValues from the queue still lands on its own transaction.
    charger
        .call_ok(
            "MeterValues",
            all_measurands(transaction_id, "2026-12-01T08:20:00Z", 5500),
        )
        .await?;

    let db = stack.db.clone();
    let transactions = db.transactions();
    let mine = transactions.active_on(charge_point_id, 2).await?;
    assert!(mine.is_none(), "the transaction is stopped: {mine:?}");
    let stored = transactions.get(transaction_id).await?;
    assert_eq!(stored.meter_stop_wh.map(|wh| wh.0), Some(5600));
    assert_eq!(stored.stop_reason.as_deref(), Some("EVDisconnected"));
    let values = transactions.meter_values(transaction_id).await?;
    assert_eq!(values.len(), 2 * 24, "resent samples are not stored twice");

    // A kill -9 right after a CALLRESULT loses nothing the charger was told was accepted.
    let more = all_measurands(transaction_id, "2026-12-01T08:25:00Z", 5550);
    charger.call_ok("MeterValues", more).await?;
    let node = stack.nodes.remove(0);
    node.stop_with("KILL").await?;
    assert_eq!(
        transactions.meter_values(transaction_id).await?.len(),
        3 * 24
    );
    let (code, _) = charger.closed().await?;
    assert_ne!(
        code, 1000,
        "the connection broke, it did not close normally"
    );
    stack.stop().await
}

/// Every message the central system may send, a valid request, and what the charger's
/// default answer (tests/ocpp/charger.py) leaves behind.
fn every_csms_message(reservation_id: i64) -> Vec<(Action, Value)> {
    vec![
        (
            Action::CancelReservation,
            json!({"reservationId": reservation_id}),
        ),
        (
            Action::ChangeAvailability,
            json!({"connectorId": 1, "type": "Inoperative"}),
        ),
        (
            Action::ChangeConfiguration,
            json!({"key": "HeartbeatInterval", "value": "120"}),
        ),
        (Action::ClearCache, json!({})),
        (
            Action::DataTransfer,
            json!({"vendorId": "com.voltfleet", "messageId": "ping", "data": "hello"}),
        ),
        (Action::GetConfiguration, json!({})),
        (
            Action::RemoteStartTransaction,
            json!({"connectorId": 1, "idTag": "TAG-CMD"}),
        ),
        (
            Action::RemoteStopTransaction,
            json!({"transactionId": 12345}),
        ),
        (Action::Reset, json!({"type": "Soft"})),
        (Action::UnlockConnector, json!({"connectorId": 1})),
        (
            Action::GetDiagnostics,
            json!({"location": "s3://diagnostics/CP-B/", "retries": 2}),
        ),
        (
            Action::UpdateFirmware,
            json!({"location": "https://firmware.example/ac22-1.5.bin", "retrieveDate": "2026-12-02T02:00:00Z"}),
        ),
        (Action::GetLocalListVersion, json!({})),
        (
            Action::SendLocalList,
            json!({"listVersion": 1, "updateType": "Full", "localAuthorizationList": [
                {"idTag": "LOCAL-1", "idTagInfo": {"status": "Accepted", "expiryDate": "2027-01-01T00:00:00Z"}},
                {"idTag": "LOCAL-2", "idTagInfo": {"status": "Blocked"}}
            ]}),
        ),
        (
            Action::ReserveNow,
            json!({"connectorId": 1, "expiryDate": "2026-12-01T23:00:00Z", "idTag": "TAG-CMD", "reservationId": reservation_id}),
        ),
        (
            Action::SetChargingProfile,
            json!({"connectorId": 0, "csChargingProfiles": {
            "chargingProfileId": 11, "stackLevel": 0, "chargingProfilePurpose": "ChargePointMaxProfile",
            "chargingProfileKind": "Absolute", "chargingSchedule": {"chargingRateUnit": "A",
            "startSchedule": "2026-12-01T00:00:00Z",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 32.0}, {"startPeriod": 3600, "limit": 16.0}]}}}),
        ),
        (
            Action::GetCompositeSchedule,
            json!({"connectorId": 1, "duration": 3600, "chargingRateUnit": "A"}),
        ),
        (Action::ClearChargingProfile, json!({"id": 11})),
        (
            Action::TriggerMessage,
            json!({"requestedMessage": "StatusNotification", "connectorId": 1}),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_reach_chargers_on_either_node_and_every_csms_message_is_answered()
-> anyhow::Result<()> {
    let stack = Stack::start(2, &[]).await?;
    stack.charger_record("CP-NODE-A").await?;
    let b_id = stack.charger_record("CP-NODE-B").await?;
    let mut on_first = stack.connect(&stack.node_ws(0), "CP-NODE-A").await?;
    let mut on_second = stack.connect(&stack.node_ws(1), "CP-NODE-B").await?;
    on_first.call_ok("BootNotification", boot_payload()).await?;
    on_second
        .call_ok("BootNotification", boot_payload())
        .await?;
    let node_a = stack.wait_until_reachable("CP-NODE-A").await?;
    let node_b = stack.wait_until_reachable("CP-NODE-B").await?;
    assert_ne!(node_a, node_b, "the chargers are on different processes");

    let reservation_id = stack
        .db
        .reservations()
        .create(&NewReservation {
            charge_point_id: b_id,
            connector_id: 1,
            id_tag: "TAG-CMD".to_owned(),
            parent_id_tag: None,
            expires_at: Utc::now() + chrono::Duration::hours(2),
        })
        .await?;
    let b: ChargePointId = "CP-NODE-B".parse()?;
    // ReserveNow before CancelReservation, so the reservation is accepted then cancelled.
    let mut messages = every_csms_message(reservation_id);
    let reserve = messages
        .iter()
        .position(|(action, _)| *action == Action::ReserveNow)
        .unwrap_or_default();
    let reserve = messages.remove(reserve);
    messages.insert(0, reserve);
    let sent_by_the_central_system = Action::ALL
        .iter()
        .filter(|action| action.sender() != voltfleet_core::ocpp::v16::Sender::ChargePoint)
        .count();
    assert_eq!(
        messages.len(),
        sent_by_the_central_system,
        "every CSMS-initiated message is exercised"
    );
    for (action, payload) in &messages {
        let answer = stack
            .commands
            .send_raw(&b, *action, payload.clone())
            .await
            .map_err(|err| anyhow::anyhow!("{action}: {err}"))?;
        let received = on_second.received(action.as_str()).await?;
        assert_eq!(&received, payload, "{action} arrived as sent");
        assert!(answer.is_object(), "{action}: {answer}");
        if *action == Action::GetConfiguration {
            assert_eq!(answer["configurationKey"][1]["key"], "NumberOfConnectors");
        }
    }

    // What the answers left behind.
    let configuration = stack.db.configuration().list(b_id).await?;
    let heartbeat = configuration
        .iter()
        .find(|entry| entry.key == "HeartbeatInterval")
        .ok_or_else(|| anyhow::anyhow!("no HeartbeatInterval in {configuration:#?}"))?;
    assert_eq!(
        heartbeat.value.as_deref(),
        Some("300"),
        "GetConfiguration came after the change"
    );
    assert_eq!(configuration.len(), 3, "{configuration:#?}");
    let local = stack.db.local_list().entries(b_id).await?;
    assert_eq!(local.len(), 2, "{local:#?}");
    assert_eq!(stack.db.local_list().version(b_id).await?, Some(1));
    assert!(
        stack.db.charging_profiles().list(b_id).await?.is_empty(),
        "set, then cleared"
    );
    let reservation = stack.db.reservations().get(reservation_id).await?;
    assert_eq!(reservation.status.as_str(), "Cancelled");

    // The typed interface, and the charger's own refusal as an answer.
    on_first
        .answer("Reset", json!({"status": "Rejected"}))
        .await?;
    let reset = stack
        .commands
        .send(
            &"CP-NODE-A".parse()?,
            &ResetRequest {
                kind: ResetType::Hard,
            },
        )
        .await?;
    assert_eq!(reset.status, ResetStatus::Rejected);

    // A profile the schema allows but OCPP forbids is not sent, and says why.
    let wrong = stack
        .commands
        .send_raw(&b, Action::SetChargingProfile, json!({"connectorId": 2, "csChargingProfiles": {
            "chargingProfileId": 12, "stackLevel": 0, "chargingProfilePurpose": "ChargePointMaxProfile",
            "chargingProfileKind": "Absolute", "chargingSchedule": {"chargingRateUnit": "W",
            "chargingSchedulePeriod": [{"startPeriod": 60, "limit": 7400.0}]}}}))
        .await;
    match wrong {
        Err(CommandError::Invalid { problem, .. }) => {
            assert!(problem.contains("connectorId 0"), "{problem}");
            assert!(problem.contains("must start at 0"), "{problem}");
        }
        other => anyhow::bail!("expected Invalid, got {other:?}"),
    }
    let malformed = stack
        .commands
        .send_raw(&b, Action::Reset, json!({"type": "Gentle"}))
        .await;
    assert!(
        matches!(malformed, Err(CommandError::Invalid { .. })),
        "{malformed:?}"
    );

    // Offline, and a charger that never answers.
    let offline = stack
        .commands
        .send_raw(&"CP-NOWHERE".parse()?, Action::ClearCache, json!({}))
        .await;
    assert!(
        matches!(offline, Err(CommandError::Offline { .. })),
        "{offline:?}"
    );
    stack.charger_record("CP-SILENT").await?;
    let mut silent = Charger::connect(
        ChargerOptions::new(&stack.proxy_ws(), "CP-SILENT")
            .password(PASSWORD)
            .raw(),
    )
    .await?;
    let boot = silent
        .exchange(&format!(
            r#"[2,"b1","BootNotification",{}]"#,
            boot_payload()
        ))
        .await?;
    assert_eq!(boot[2]["status"], "Accepted", "{boot}");
    stack.wait_until_reachable("CP-SILENT").await?;
    let started = std::time::Instant::now();
    let timeout = stack
        .commands
        .send_raw(&"CP-SILENT".parse()?, Action::ClearCache, json!({}))
        .await;
    assert!(
        matches!(timeout, Err(CommandError::Timeout { .. })),
        "{timeout:?}"
    );
    assert!(started.elapsed() >= CALL_TIMEOUT - Duration::from_millis(200));
    // The charger answers with a CALLERROR: the caller hears the charger's code.
    let call = silent
        .next_matching(|event| {
            event["event"] == "frame"
                && event["text"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("ClearCache")
        })
        .await?;
    assert!(call["text"].as_str().unwrap_or_default().starts_with("[2,"));
    let commands = stack.commands.clone();
    let refused = tokio::spawn(async move {
        commands
            .send_raw(
                &"CP-SILENT".parse().expect("id"),
                Action::UnlockConnector,
                json!({"connectorId": 1}),
            )
            .await
    });
    let frame = silent
        .next_matching(|event| {
            event["event"] == "frame"
                && event["text"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("UnlockConnector")
        })
        .await?;
    let call: Value = serde_json::from_str(frame["text"].as_str().unwrap_or_default())?;
    silent
        .raw(&json!([4, call[1], "NotSupported", "no motorised lock", {}]).to_string())
        .await?;
    match refused.await? {
        Err(CommandError::Refused {
            code, description, ..
        }) => {
            assert_eq!(
                (code.as_str(), description.as_str()),
                ("NotSupported", "no motorised lock")
            );
        }
        other => anyhow::bail!("expected Refused, got {other:?}"),
    }

    // A charger that reconnects to the other node takes over: the old socket is closed and
    // commands follow it to its new node.
    let mut moved = stack.connect(&stack.node_ws(1), "CP-NODE-A").await?;
    let (code, reason) = on_first.closed().await?;
    assert_eq!(code, 1000, "{reason}");
    assert!(reason.contains("newer connection"), "{reason}");
    for _ in 0..100 {
        if stack.commands.node_of(&"CP-NODE-A".parse()?).await? == Some(node_b.clone()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    moved.call_ok("BootNotification", boot_payload()).await?;
    let answer = stack
        .commands
        .send_raw(&"CP-NODE-A".parse()?, Action::ClearCache, json!({}))
        .await?;
    assert_eq!(answer, json!({"status": "Accepted"}));
    moved.received("ClearCache").await?;

    moved.close().await?;
    on_second.close().await?;
    silent.close().await?;
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_the_right_answer_and_never_takes_a_session_down() -> anyhow::Result<()> {
    let stack = Stack::start(
        1,
        &[
            ("VOLTFLEET__OCPP__MAX_MESSAGE_SIZE", "8192"),
            ("VOLTFLEET__OCPP__RATE_LIMIT", "5"),
            ("VOLTFLEET__OCPP__RATE_BURST", "10"),
            ("VOLTFLEET__OCPP__UNKNOWN_CHARGERS", "pending"),
        ],
    )
    .await?;
    stack.charger_record("CP-BAD-1").await?;

    // The handshake: a wrong password is a 401, counted; a charger id that is too long a 400.
    match Charger::attempt(ChargerOptions::new(&stack.proxy_ws(), "CP-BAD-1").password("wrong"))
        .await?
    {
        Connected::Refused(status, _) => assert_eq!(status, 401),
        Connected::Open(..) => anyhow::bail!("a wrong password was let in"),
    }
    match Charger::attempt(ChargerOptions::new(&stack.proxy_ws(), "CP-BAD-1")).await? {
        Connected::Refused(status, _) => assert_eq!(status, 401),
        Connected::Open(..) => anyhow::bail!("no password was let in"),
    }
    let long = "X".repeat(49);
    match Charger::attempt(ChargerOptions::new(&stack.proxy_ws(), &long).password(PASSWORD)).await?
    {
        Connected::Refused(status, body) => assert_eq!(status, 400, "{body}"),
        Connected::Open(..) => anyhow::bail!("a 49-character id was let in"),
    }
    let metrics = stack.metrics(0).await?;
    assert!(
        metrics.contains(r#"voltfleet_ocpp_rejected_connections_total{reason="wrong_password"} 1"#),
        "{metrics}"
    );

    // No OCPP version in common: the handshake completes without one and the socket closes.
    let mut unsupported = Charger::connect(
        ChargerOptions::new(&stack.proxy_ws(), "CP-BAD-1")
            .password(PASSWORD)
            .protocols("ocpp1.2")
            .raw(),
    )
    .await?;
    let (code, reason) = unsupported.closed().await?;
    assert_eq!(code, 1002, "{reason}");
    assert!(reason.contains("ocpp1.6"), "{reason}");

    // An unknown charger under `pending` gets in as Pending, and may only boot.
    let mut stranger =
        Charger::connect(ChargerOptions::new(&stack.proxy_ws(), "CP-NEW-9").raw()).await?;
    let answer = stranger
        .exchange(&format!(
            r#"[2,"s1","BootNotification",{}]"#,
            boot_payload()
        ))
        .await?;
    assert_eq!(answer[2]["status"], "Pending", "{answer}");
    let answer = stranger.exchange(r#"[2,"s2","Heartbeat",{}]"#).await?;
    assert_eq!(answer[2], "SecurityError", "{answer}");
    stranger.close().await?;

    let mut raw = Charger::connect(
        ChargerOptions::new(&stack.proxy_ws(), "CP-BAD-1")
            .password(PASSWORD)
            .raw(),
    )
    .await?;
    let boot = raw
        .exchange(&format!(r#"[2,"1","BootNotification",{}]"#, boot_payload()))
        .await?;
    assert_eq!(boot[0], 3, "{boot}");
    for (frame, id, code) in [
        ("this is not JSON", "-1", "FormationViolation"),
        (r#"[2,"2","Heartbeat"]"#, "2", "FormationViolation"),
        (r#"[2,"3","FlyToTheMoon",{}]"#, "3", "NotImplemented"),
        (r#"[2,"4","Reset",{"type":"Hard"}]"#, "4", "NotSupported"),
        (
            r#"[2,"5","Authorize",{}]"#,
            "5",
            "OccurenceConstraintViolation",
        ),
        (
            r#"[2,"6","Authorize",{"idTag":42}]"#,
            "6",
            "TypeConstraintViolation",
        ),
        (
            r#"[2,"7","Authorize",{"idTag":"ABCDEFGHIJKLMNOPQRSTUVWXYZ"}]"#,
            "7",
            "PropertyConstraintViolation",
        ),
        (
            r#"[2,"8","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Exploded"}]"#,
            "8",
            "PropertyConstraintViolation",
        ),
        (
            r#"[2,"9","Heartbeat",{"extra":true}]"#,
            "9",
            "FormationViolation",
        ),
    ] {
        let answer = raw.exchange(frame).await?;
        assert_eq!(answer[0], 4, "{frame} → {answer}");
        assert_eq!(
            (answer[1].as_str(), answer[2].as_str()),
            (Some(id), Some(code)),
            "{frame} → {answer}"
        );
    }
    // The session is still up and answers properly.
    let heartbeat = raw.exchange(r#"[2,"10","Heartbeat",{}]"#).await?;
    assert_eq!(heartbeat[0], 3, "{heartbeat}");

    // A flood is slowed to the configured rate rather than dropped or fatal.
    let started = std::time::Instant::now();
    for n in 0..30 {
        raw.raw(&format!(r#"[2,"f{n}","Heartbeat",{{}}]"#)).await?;
    }
    for n in 0..30 {
        let id = format!("f{n}");
        raw.next_matching(|event| {
            event["event"] == "frame" && event["text"].as_str().unwrap_or_default().contains(&id)
        })
        .await?;
    }
    // 10 at once, then 20 more at 5 a second, less whatever the previous frames had used.
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let metrics = stack.metrics(0).await?;
    assert!(
        !metrics.contains("voltfleet_ocpp_throttled_messages_total 0"),
        "{metrics}"
    );

    // An oversized frame closes the connection with 1009; other chargers are untouched.
    raw.raw(&format!(
        r#"[2,"big","DataTransfer",{{"vendorId":"x","data":"{}"}}]"#,
        "A".repeat(9000)
    ))
    .await?;
    let (code, _) = raw.closed().await?;
    assert_eq!(code, 1009);
    let mut fine = stack.connect(&stack.proxy_ws(), "CP-BAD-1").await?;
    fine.call_ok("BootNotification", boot_payload()).await?;
    fine.close().await?;
    unsupported.close().await?;
    stack.stop().await
}

/// The schemas the central system validates with are the official ones the `ocpp` package
/// ships, equal as JSON. (The package also carries the 1.6 security extension's messages,
/// which are not part of the six profiles.)
#[test]
fn ocpp_schemas_match_the_ocpp_package() -> anyhow::Result<()> {
    let ours =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../services/core/ocpp-schemas/1.6");
    let venv_lib = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/lib");
    let python = std::fs::read_dir(&venv_lib)?
        .filter_map(Result::ok)
        .find(|entry| entry.file_name().to_string_lossy().starts_with("python"))
        .ok_or_else(|| anyhow::anyhow!("no python in {}", venv_lib.display()))?;
    let theirs = python.path().join("site-packages/ocpp/v16/schemas");
    let mut compared = 0;
    for entry in std::fs::read_dir(&ours)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !name.ends_with(".json") {
            continue;
        }
        let copied: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
        let official = std::fs::read_to_string(theirs.join(&name)).map_err(|err| {
            anyhow::anyhow!("{name} is not among the ocpp package's 1.6 schemas: {err}")
        })?;
        let official: Value = serde_json::from_str(&official)?;
        assert_eq!(copied, official, "{name} differs from the ocpp package's");
        compared += 1;
    }
    assert_eq!(
        compared, 56,
        "OCPP 1.6 has 28 actions, each with a request and a response"
    );
    Ok(())
}
