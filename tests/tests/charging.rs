//! A driver starts and stops charging through the public API, on a real charger (the `ocpp`
//! package): the API sends RemoteStartTransaction and RemoteStopTransaction through the OCPP
//! command interface, the charger answers and reports the transaction, and the driver follows
//! the session live and in the history.
//!
//! Once as `voltfleet up` runs it — one process on SQLite with the in-process bus, charger and
//! driver both through the proxy — and once as the fleet runs it: `serve api` and `serve ocpp`
//! as two processes on MariaDB, the commands crossing Redis.

use std::time::Duration;

use anyhow::Context;
use reqwest::StatusCode;
use serde_json::{Value, json};
use voltfleet_core::credentials::hash_password;
use voltfleet_core::domain::{ConnectorFormat, CountryCode, PowerType, RegistrationStatus};
use voltfleet_core::storage::{Database, NewChargePoint, NewConnector, NewEvse, NewLocation};
use voltfleet_core::testing::{TestMySql, mysql_settings};
use voltfleet_e2e::Voltfleet;
use voltfleet_e2e::charger::{CHARGER_DEADLINE, Charger, ChargerOptions};

const DRIVER_PASSWORD: &str = "correct horse battery";
const TOKEN_SECRET: &str = "an-end-to-end-secret-of-thirty-two-bytes-or-more";

/// A driver's view of the API.
struct Driver {
    client: reqwest::Client,
    api: String,
    token: String,
}

impl Driver {
    async fn sign_up(api: &str, email: &str) -> anyhow::Result<Driver> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let created = client
            .post(format!("{api}/accounts"))
            .json(&json!({"email": email, "password": DRIVER_PASSWORD, "name": "Dora"}))
            .send()
            .await?;
        anyhow::ensure!(
            created.status() == StatusCode::CREATED,
            "sign-up: {} {}",
            created.status(),
            created.text().await?
        );
        let login: Value = client
            .post(format!("{api}/auth/login"))
            .json(&json!({"email": email, "password": DRIVER_PASSWORD}))
            .send()
            .await?
            .json()
            .await?;
        let token = login["access_token"]
            .as_str()
            .context("login answers an access token")?
            .to_owned();
        Ok(Driver {
            client,
            api: api.to_owned(),
            token,
        })
    }

    async fn get(&self, path: &str) -> anyhow::Result<(StatusCode, Value)> {
        let response = self
            .client
            .get(format!("{}{path}", self.api))
            .bearer_auth(&self.token)
            .send()
            .await?;
        Ok((response.status(), response.json().await?))
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<(StatusCode, Value)> {
        let response = self
            .client
            .post(format!("{}{path}", self.api))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        Ok((response.status(), response.json().await?))
    }

    /// Polls `path` until `done` holds for its body, for at most the charger deadline.
    async fn wait_for(&self, path: &str, done: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + CHARGER_DEADLINE;
        loop {
            let (status, body) = self.get(path).await?;
            if status == StatusCode::OK && done(&body) {
                return Ok(body);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "{path} never got there: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn status_notification(connector: u32, status: &str) -> Value {
    json!({"connectorId": connector, "errorCode": "NoError", "status": status,
           "timestamp": chrono::Utc::now().to_rfc3339()})
}

/// The whole story on one charger with two EVSEs, `charger_id`, reachable at `ocpp` with
/// `password`, and the API at `api`.
async fn a_driver_charges_and_stops(
    api: &str,
    ocpp: &str,
    charger_id: &str,
    password: &str,
) -> anyhow::Result<()> {
    let mut charger =
        Charger::connect(ChargerOptions::new(ocpp, charger_id).password(password)).await?;
    let boot = charger
        .call_ok(
            "BootNotification",
            json!({"chargePointVendor": "Voltfleet", "chargePointModel": "E2E"}),
        )
        .await?;
    assert_eq!(boot["status"], "Accepted", "{boot}");
    for connector in [1, 2] {
        charger
            .call_ok(
                "StatusNotification",
                status_notification(connector, "Available"),
            )
            .await?;
    }

    let dora = Driver::sign_up(api, "dora@example.com").await?;
    let eve = Driver::sign_up(api, "eve@example.com").await?;
    let charger_path = format!("/chargers/{charger_id}");
    let view = dora
        .wait_for(&charger_path, |body| {
            body["online"] == true && body["evses"][0]["available"] == true
        })
        .await?;
    assert_eq!(view["evses"][1]["available"], true, "{view}");

    let (status, started) = dora
        .post("/charging/start", json!({"charger": charger_id, "evse": 1}))
        .await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let id_tag = started["id_token"].as_str().unwrap_or_default().to_owned();
    assert!(id_tag.starts_with("VF") && id_tag.len() == 20, "{started}");
    let remote_start = charger.received("RemoteStartTransaction").await?;
    assert_eq!(remote_start["idTag"], id_tag.as_str(), "{remote_start}");
    assert_eq!(remote_start["connectorId"], 1, "{remote_start}");

    // The vehicle is plugged in; the charger asks and starts.
    charger
        .call_ok("StatusNotification", status_notification(1, "Preparing"))
        .await?;
    let transaction = charger
        .call_ok(
            "StartTransaction",
            json!({"connectorId": 1, "idTag": id_tag, "meterStart": 1_000,
                   "timestamp": chrono::Utc::now().to_rfc3339()}),
        )
        .await?;
    assert_eq!(
        transaction["idTagInfo"]["status"], "Accepted",
        "the driver's app token is accepted: {transaction}"
    );
    let transaction_id = transaction["transactionId"]
        .as_i64()
        .context("a transaction id")?;
    charger
        .call_ok("StatusNotification", status_notification(1, "Charging"))
        .await?;
    charger
        .call_ok(
            "MeterValues",
            json!({"connectorId": 1, "transactionId": transaction_id, "meterValue": [{
            "timestamp": chrono::Utc::now().to_rfc3339(),
            "sampledValue": [
                {"value": "4200", "measurand": "Energy.Active.Import.Register", "unit": "Wh",
                 "context": "Sample.Periodic"},
                {"value": "11000", "measurand": "Power.Active.Import", "unit": "W",
                 "context": "Sample.Periodic"}
            ]}]}),
        )
        .await?;

    let active = dora
        .wait_for("/sessions/active", |body| {
            body["items"][0]["energy_wh"] == 3_200
        })
        .await?;
    let session = &active["items"][0];
    assert_eq!(session["id"], transaction_id, "{active}");
    assert_eq!(session["charger"], charger_id);
    assert_eq!(session["evse"], 1);
    assert_eq!(session["power_w"], 11_000);
    assert_eq!(session["active"], true);

    // The EVSE in use cannot start another session; Eve sees nothing of Dora's.
    let (status, busy) = eve
        .post("/charging/start", json!({"charger": charger_id, "evse": 1}))
        .await?;
    assert_eq!(status, StatusCode::CONFLICT, "{busy}");
    assert!(
        busy["type"]
            .as_str()
            .unwrap_or_default()
            .ends_with("evse-unavailable"),
        "{busy}"
    );
    let session_path = format!("/sessions/{transaction_id}");
    assert_eq!(eve.get(&session_path).await?.0, StatusCode::NOT_FOUND);
    let (status, _) = eve.post(&format!("{session_path}/stop"), json!({})).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, stopping) = dora
        .post(&format!("{session_path}/stop"), json!({}))
        .await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{stopping}");
    let remote_stop = charger.received("RemoteStopTransaction").await?;
    assert_eq!(
        remote_stop["transactionId"], transaction_id,
        "{remote_stop}"
    );
    charger
        .call_ok(
            "StopTransaction",
            json!({"transactionId": transaction_id, "meterStop": 5_000, "reason": "Remote",
                   "timestamp": chrono::Utc::now().to_rfc3339(), "idTag": id_tag}),
        )
        .await?;
    charger
        .call_ok("StatusNotification", status_notification(1, "Available"))
        .await?;

    let history = dora
        .wait_for("/sessions", |body| body["items"][0]["active"] == false)
        .await?;
    let finished = &history["items"][0];
    assert_eq!(finished["id"], transaction_id, "{history}");
    assert_eq!(finished["energy_wh"], 4_000);
    assert_eq!(finished["stop_reason"], "Remote");
    assert_eq!(
        dora.get("/sessions/active").await?.1["items"],
        json!([]),
        "nothing runs any more"
    );
    let (status, ended) = dora
        .post(&format!("{session_path}/stop"), json!({}))
        .await?;
    assert_eq!(status, StatusCode::CONFLICT, "{ended}");

    // The charger's refusal is the driver's answer.
    charger
        .answer("RemoteStartTransaction", json!({"status": "Rejected"}))
        .await?;
    let (status, refused) = dora
        .post("/charging/start", json!({"charger": charger_id, "evse": 2}))
        .await?;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert!(
        refused["type"]
            .as_str()
            .unwrap_or_default()
            .ends_with("charger-rejected"),
        "{refused}"
    );
    charger.received("RemoteStartTransaction").await?;

    charger.close().await?;
    dora.wait_for(&charger_path, |body| body["online"] == false)
        .await?;
    let (status, offline) = dora
        .post("/charging/start", json!({"charger": charger_id, "evse": 2}))
        .await?;
    assert_eq!(status, StatusCode::CONFLICT, "{offline}");
    assert!(
        offline["type"]
            .as_str()
            .unwrap_or_default()
            .ends_with("charger-offline"),
        "{offline}"
    );
    Ok(())
}

#[tokio::test]
async fn a_driver_charges_through_the_proxy_of_voltfleet_up() -> anyhow::Result<()> {
    let running = Voltfleet::new(&["up"])?
        .env("VOLTFLEET__OCPP__CALL_TIMEOUT", "5s")
        .start(&voltfleet_e2e::SERVICES)
        .await?;
    running.wait_for_stdout("Press Ctrl-C to stop").await?;
    let api = running.proxy_url("/api/v1");
    let ocpp = running.proxy_url("/ocpp").replace("http://", "ws://");
    a_driver_charges_and_stops(&api, &ocpp, "DEMO-CP-1", "voltfleet-demo").await?;
    let (status, stderr) = running.stop_with("INT").await?;
    assert!(status.success(), "{stderr}");
    Ok(())
}

#[tokio::test]
async fn a_driver_charges_when_api_and_ocpp_are_separate_processes_on_mariadb_and_redis()
-> anyhow::Result<()> {
    const CHARGER: &str = "FLEET-CP-7";
    const PASSWORD: &str = "fleet-charger-secret";
    let database = TestMySql::create().await?;
    let migrate = Voltfleet::new(&["migrate"])?
        .env("VOLTFLEET__DATABASE__URL", &database.url)
        .output()
        .await?;
    anyhow::ensure!(migrate.status.success(), "{}", migrate.stderr);
    let db = Database::connect(&mysql_settings(&database.url), std::path::Path::new(".")).await?;
    seed_charger(&db, CHARGER, PASSWORD).await?;

    let redis_url = std::env::var("VOLTFLEET_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("vf-charging-test:{}:", database.name);
    let serve = |service: &str| {
        Voltfleet::new(&["serve", service]).map(|command| {
            command
                .env("VOLTFLEET__DATABASE__URL", &database.url)
                .env("VOLTFLEET__REDIS__URL", &redis_url)
                .env("VOLTFLEET__REDIS__KEY_PREFIX", &prefix)
                .env("VOLTFLEET__API__TOKEN_SECRET", TOKEN_SECRET)
                .env("VOLTFLEET__OCPP__CALL_TIMEOUT", "5s")
        })
    };
    let api = serve("api")?.start(&["api"]).await?;
    let ocpp = serve("ocpp")?.start(&["ocpp"]).await?;
    a_driver_charges_and_stops(
        &api.url("api", "/api/v1"),
        &ocpp.url("ocpp", "/ocpp").replace("http://", "ws://"),
        CHARGER,
        PASSWORD,
    )
    .await?;
    for process in [api, ocpp] {
        let (status, stderr) = process.stop_with("TERM").await?;
        assert!(status.success(), "{stderr}");
    }
    database.drop_database().await?;
    Ok(())
}

/// A charger with two Type 2 EVSEs at a location, as the Back Office registers one.
async fn seed_charger(db: &Database, identity: &str, password: &str) -> anyhow::Result<()> {
    let location_id = db
        .locations()
        .create(&NewLocation {
            name: "Fleet Depot".into(),
            address: "Calle de Alcalá 50".into(),
            city: "Madrid".into(),
            postal_code: "28014".into(),
            country: "ESP".parse::<CountryCode>()?,
            latitude: 40.4189,
            longitude: -3.6969,
            time_zone: "Europe/Madrid".into(),
            opening_hours: None,
            tariff_text: None,
        })
        .await?;
    let charge_point_id = db
        .charge_points()
        .create(&NewChargePoint {
            identity: identity.parse()?,
            location_id: Some(location_id),
            ocpp_password_hash: Some(hash_password(password)?),
            registration_status: RegistrationStatus::Accepted,
        })
        .await?;
    for evse_number in 1..=2 {
        let evse_id = db
            .charge_points()
            .add_evse(&NewEvse {
                charge_point_id,
                evse_number,
            })
            .await?;
        db.charge_points()
            .add_connector(&NewConnector {
                evse_id,
                connector_number: 1,
                standard: "IEC_62196_T2".into(),
                format: ConnectorFormat::Socket,
                power_type: PowerType::Ac3Phase,
                max_voltage: 400,
                max_amperage: 32,
                max_power_w: Some(22_000),
            })
            .await?;
    }
    Ok(())
}
