//! The public API against its own OpenAPI document: schemathesis (PyPI, in `.venv`) reads
//! `/api/v1/openapi.json` from the running `voltfleet serve api` and sends every operation
//! generated requests, valid and invalid, checking that no answer is a server error and that
//! each answer's status, content type, headers and body are the ones the document declares.
//!
//! The server runs on SQLite in a temporary directory with a token secret and without rate
//! limits (so that the fuzzing is not answered 429). Before the run the test seeds what the
//! operations read — a location with a charger of two EVSEs, a driver who is signed in, one
//! of their cards and two of their sessions — and hands schemathesis those ids as values to
//! draw from besides the ones it generates, so that the operations are exercised past their
//! 404s. The run is repeatable: deterministic generation, a bounded number of examples per
//! operation, no example database kept between runs.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use chrono::Utc;
use serde_json::{Value, json};
use voltfleet_core::domain::{
    ConnectorFormat, CountryCode, EnergyWh, PowerType, RegistrationStatus,
};
use voltfleet_core::storage::{
    Database, NewChargePoint, NewConnector, NewEvse, NewLocation, NewMeterValue, NewTransaction,
    StatusReport, StopTransaction,
};
use voltfleet_core::testing::sqlite_settings;
use voltfleet_e2e::Voltfleet;

const SECRET: &str = "a-contract-test-secret-of-more-than-32-bytes";
const EMAIL: &str = "contract@example.com";
const PASSWORD: &str = "correct horse battery";
const CHARGER: &str = "CONTRACT-CP-1";
const CARD: &str = "CONTRACT-CARD-1";
/// Test cases per operation and phase; with the debug build on 2 cores the whole run takes
/// well under a minute.
const EXAMPLES: &str = "60";
/// How long schemathesis may run before the test gives up on it.
const RUN_DEADLINE: Duration = Duration::from_secs(240);

/// The checks that hold for every operation of this API.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance,response_headers_conformance";

/// What the test seeded, for schemathesis to draw from.
struct Seeded {
    location_id: i64,
    session_ids: Vec<i64>,
}

/// `VOLTFLEET_TEST_SCHEMATHESIS`, or `.venv/bin/schemathesis` (scripts/setup.sh installs it).
fn schemathesis() -> PathBuf {
    std::env::var_os("VOLTFLEET_TEST_SCHEMATHESIS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/schemathesis"),
        PathBuf::from,
    )
}

/// A location with opening hours and a tariff, and an accepted charger at it with two EVSEs
/// (one Type 2 socket of 22 kW, one CCS cable of 50 kW), the first reported Available.
async fn seed_equipment(db: &Database) -> anyhow::Result<i64> {
    let location_id = db
        .locations()
        .create(&NewLocation {
            name: "Contract Plaza".into(),
            address: "Calle de Alcalá 1".into(),
            city: "Madrid".into(),
            postal_code: "28014".into(),
            country: "ESP".parse::<CountryCode>()?,
            latitude: 40.4183,
            longitude: -3.7022,
            time_zone: "Europe/Madrid".into(),
            opening_hours: Some(
                json!({"twentyfourseven": false, "regular_hours": [
                    {"weekday": 1, "period_begin": "08:00", "period_end": "20:00"}
                ]})
                .to_string(),
            ),
            tariff_text: Some("0.39 EUR/kWh".into()),
        })
        .await?;
    let charge_point_id = db
        .charge_points()
        .create(&NewChargePoint {
            identity: CHARGER.parse()?,
            location_id: Some(location_id),
            ocpp_password_hash: None,
            registration_status: RegistrationStatus::Accepted,
        })
        .await?;
    let plugs = [
        (
            "IEC_62196_T2",
            ConnectorFormat::Socket,
            PowerType::Ac3Phase,
            400,
            32,
            22_000,
        ),
        (
            "IEC_62196_T2_COMBO",
            ConnectorFormat::Cable,
            PowerType::Dc,
            500,
            100,
            50_000,
        ),
    ];
    for (evse_number, (standard, format, power_type, volts, amps, watts)) in (1..).zip(plugs) {
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
                standard: standard.into(),
                format,
                power_type,
                max_voltage: volts,
                max_amperage: amps,
                max_power_w: Some(watts),
            })
            .await?;
    }
    db.charge_points()
        .record_status(&StatusReport {
            charge_point_id,
            connector_id: 1,
            status: "Available".into(),
            error_code: "NoError".into(),
            info: None,
            vendor_id: None,
            vendor_error_code: None,
            reported_at: None,
            received_at: Utc::now(),
        })
        .await?;
    Ok(charge_point_id)
}

/// Two sessions charged with the driver's card: one that ended, one still running with a
/// meter reading and a power sample.
async fn seed_sessions(db: &Database, charge_point_id: i64) -> anyhow::Result<Vec<i64>> {
    let started = Utc::now() - chrono::Duration::hours(3);
    let ended = db
        .transactions()
        .start(&NewTransaction {
            charge_point_id,
            evse_number: 2,
            id_token: CARD.into(),
            meter_start_wh: EnergyWh(1_000),
            started_at: started,
            reservation_id: None,
            start_auth_status: Some("Accepted".into()),
        })
        .await?;
    db.transactions()
        .stop(
            ended,
            &StopTransaction {
                meter_stop_wh: EnergyWh(19_500),
                stopped_at: started + chrono::Duration::minutes(40),
                stop_reason: Some("EVDisconnected".into()),
                stop_id_token: None,
            },
        )
        .await?;
    let running_since = Utc::now() - chrono::Duration::minutes(10);
    let running = db
        .transactions()
        .start(&NewTransaction {
            charge_point_id,
            evse_number: 2,
            id_token: CARD.into(),
            meter_start_wh: EnergyWh(19_500),
            started_at: running_since,
            reservation_id: None,
            start_auth_status: Some("Accepted".into()),
        })
        .await?;
    let sample = |measurand: &str, unit: &str, value: f64| NewMeterValue {
        transaction_id: Some(running),
        charge_point_id,
        evse_number: 2,
        sampled_at: running_since + chrono::Duration::minutes(5),
        measurand: measurand.into(),
        phase: None,
        unit: unit.into(),
        value,
        context: Some("Sample.Periodic".into()),
        location: None,
    };
    db.transactions()
        .add_meter_values(&[
            sample("Energy.Active.Import.Register", "Wh", 23_700.0),
            sample("Power.Active.Import", "W", 48_000.0),
        ])
        .await?;
    Ok(vec![ended, running])
}

/// POSTs JSON and returns the status and the body.
async fn post(
    client: &reqwest::Client,
    url: &str,
    body: Value,
    token: Option<&str>,
) -> anyhow::Result<(u16, Value)> {
    let mut request = client.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

/// The driver signs up and logs in through the API; returns the access token.
async fn sign_in(base: &str) -> anyhow::Result<String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()?;
    let (status, body) = post(
        &client,
        &format!("{base}/accounts"),
        json!({"email": EMAIL, "password": PASSWORD, "name": "Carla Contract"}),
        None,
    )
    .await?;
    ensure!(status == 201, "sign-up answered {status}: {body}");
    let (status, body) = post(
        &client,
        &format!("{base}/auth/login"),
        json!({"email": EMAIL, "password": PASSWORD}),
        None,
    )
    .await?;
    ensure!(status == 200, "login answered {status}: {body}");
    let token = body["access_token"]
        .as_str()
        .context("no access_token in the login answer")?
        .to_owned();
    let (status, body) = post(
        &client,
        &format!("{base}/cards"),
        json!({"token": CARD, "label": "Keyring"}),
        Some(&token),
    )
    .await?;
    ensure!(status == 201, "adding the card answered {status}: {body}");
    Ok(token)
}

/// The schemathesis configuration: the seeded ids as values to draw from, half of the time,
/// for the parameters that name them.
fn configuration(seeded: &Seeded) -> String {
    let sessions = seeded
        .session_ids
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"
[dictionaries.chargers]
values = ["{CHARGER}"]
[dictionaries.evses]
values = [1, 2]
[dictionaries.cards]
values = ["{CARD}"]
[dictionaries.locations]
values = [{location}]
[dictionaries.sessions]
values = [{sessions}]
[dictionaries.near]
values = ["40.4168,-3.7038", "41.3870,2.1700"]
[dictionaries.bbox]
values = ["-3.8,40.3,-3.6,40.5", "-10,35,5,44"]
[dictionaries.flags]
values = ["true", "false"]

[parameters]
"path.identity" = {{ dictionary = "chargers", probability = 0.5 }}
"path.token" = {{ dictionary = "cards", probability = 0.5 }}
"body.charger" = {{ dictionary = "chargers", probability = 0.5 }}
"body.evse" = {{ dictionary = "evses", probability = 0.5 }}
"body.card" = {{ dictionary = "cards", probability = 0.3 }}
"query.near" = {{ dictionary = "near", probability = 0.5 }}
"query.bbox" = {{ dictionary = "bbox", probability = 0.5 }}
"query.available" = {{ dictionary = "flags", probability = 0.5 }}

[[operations]]
include-path = "/api/v1/locations/{{id}}"
parameters = {{ "path.id" = {{ dictionary = "locations", probability = 0.5 }} }}

[[operations]]
include-path-regex = "^/api/v1/sessions/\\{{id\\}}"
parameters = {{ "path.id" = {{ dictionary = "sessions", probability = 0.5 }} }}
"#,
        location = seeded.location_id,
    )
}

/// Runs `schemathesis run` against the server with `args`; fails with its report when it
/// finds a failure, and returns the report otherwise.
async fn run_schemathesis(
    dir: &Path,
    document: &str,
    token: &str,
    args: &[&str],
) -> anyhow::Result<String> {
    let program = schemathesis();
    let mut command = tokio::process::Command::new(&program);
    command
        .current_dir(dir)
        .arg("--config-file")
        .arg(dir.join("schemathesis.toml"))
        .arg("run")
        .arg(document)
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["--checks", CHECKS])
        .args(["--max-examples", EXAMPLES])
        // Derandomized, which also keeps no example database between runs; the seed fixes
        // whatever randomness remains (the order of stateful scenarios).
        .args(["--generation-deterministic", "--seed", "20261204"])
        // The security schemes are satisfied by the header above; generated credentials
        // would only ever be refused.
        .args(["--generation-with-security-parameters", "false"])
        .args(["--request-timeout", "20", "--workers", "2", "--no-color"])
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(RUN_DEADLINE, command.output())
        .await
        .context("schemathesis did not finish in time")?
        .with_context(|| {
            format!(
                "starting {} (scripts/setup.sh installs it into .venv; or set VOLTFLEET_TEST_SCHEMATHESIS)",
                program.display()
            )
        })?;
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() {
        bail!(
            "schemathesis found the API disagreeing with its OpenAPI document ({}):\n{report}",
            output.status
        );
    }
    Ok(report)
}

/// The word after `label` on a line of the report's summary, such as `19` in `Tested: 19`.
fn summary_word<'a>(report: &'a str, label: &str) -> Option<&'a str> {
    report.lines().find_map(|line| {
        line.trim()
            .strip_prefix(label)
            .and_then(|rest| rest.split_whitespace().next())
    })
}

#[tokio::test]
async fn every_operation_answers_as_the_openapi_document_says() -> anyhow::Result<()> {
    let data_dir = tempfile::tempdir()?;
    let work = tempfile::tempdir()?;
    let migrated = Voltfleet::new(&["migrate"])?
        .env("VOLTFLEET__DATA_DIR", data_dir.path())
        .output()
        .await?;
    ensure!(migrated.status.success(), "{}", migrated.stderr);
    let db = Database::connect(&sqlite_settings(data_dir.path()), data_dir.path()).await?;
    let charge_point_id = seed_equipment(&db).await?;

    let running = Voltfleet::new(&["serve", "api"])?
        .env("VOLTFLEET__DATA_DIR", data_dir.path())
        .env("VOLTFLEET__API__TOKEN_SECRET", SECRET)
        // No request limits, and login failures (most generated logins fail) far from their
        // limit, so that every request reaches its handler.
        .env("VOLTFLEET__API__RATE_LIMIT_PER_IP", "0")
        .env("VOLTFLEET__API__RATE_LIMIT_PER_USER", "0")
        .env("VOLTFLEET__API__RATE_LIMIT_PER_KEY", "0")
        .env("VOLTFLEET__API__LOGIN_FAILURES_PER_IP", "1000000")
        .env("VOLTFLEET__API__LOGIN_FAILURES_PER_ACCOUNT", "1000000")
        .start(&["api"])
        .await?;
    let base = running.url("api", "/api/v1");
    let token = sign_in(&base).await?;
    let seeded = Seeded {
        location_id: db
            .locations()
            .find_by_name("Contract Plaza")
            .await?
            .map_or(0, |l| l.id),
        session_ids: seed_sessions(&db, charge_point_id).await?,
    };
    db.close().await;
    std::fs::write(
        work.path().join("schemathesis.toml"),
        configuration(&seeded),
    )?;
    let document = format!("{base}/openapi.json");

    // Everything but logout, which ends the session whose token the run authenticates with.
    // Not excluded, for the reasons the document states: /charging/start and
    // /sessions/{id}/stop reach no charger here (none is connected), and answer the
    // documented 409 `charger-offline`.
    let report = run_schemathesis(
        work.path(),
        &document,
        &token,
        &["--exclude-path", "/api/v1/auth/logout"],
    )
    .await?;
    eprintln!("{report}");
    // "Selected: 19/20" and "Tested: 19".
    let total = summary_word(&report, "Selected:")
        .and_then(|selected| selected.split_once('/'))
        .and_then(|(_, total)| total.parse::<u64>().ok());
    let tested = summary_word(&report, "Tested:").and_then(|tested| tested.parse::<u64>().ok());
    ensure!(
        tested.is_some() && tested == total.map(|total| total.saturating_sub(1)),
        "schemathesis did not test every operation but logout:\n{report}"
    );

    // Then logout alone, with the same token, which it ends.
    let report = run_schemathesis(
        work.path(),
        &document,
        &token,
        &["--include-path", "/api/v1/auth/logout"],
    )
    .await?;
    eprintln!("{report}");
    ensure!(
        summary_word(&report, "Tested:") == Some("1"),
        "schemathesis did not test logout:\n{report}"
    );

    let (status, stderr) = running.stop_with("TERM").await?;
    ensure!(status.success(), "the API did not stop cleanly: {stderr}");
    Ok(())
}
