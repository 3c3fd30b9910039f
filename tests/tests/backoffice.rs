//! The Back Office in a real browser against the real stack: `voltfleet up` (services and
//! proxy), a real OCPP 1.6 charger (the PyPI `ocpp` package), and headless Chromium running
//! `tests/browser/backoffice.mjs`. The admin signs in, finds the connected charger in the
//! list, opens it, sends Unlock connector, Reset and Get configuration and reads the
//! charger's answers; then a viewer, made in the database here, is refused a command even by
//! a request crafted in the page. Screenshots go to
//! `$CARGO_TARGET_DIR/test-artefacts/backoffice/`.

use serde_json::json;
use voltfleet_core::credentials::hash_password;
use voltfleet_core::domain::Role;
use voltfleet_core::storage::{Database, NewOperator};
use voltfleet_core::testing::sqlite_settings;
use voltfleet_e2e::browser::{self, BrowserTools};
use voltfleet_e2e::charger::{Charger, ChargerOptions};
use voltfleet_e2e::{SERVICES, Voltfleet};

const CHARGER: &str = "DEMO-CP-1";
const VIEWER: &str = "viewer@example.com";
const VIEWER_PASSWORD: &str = "viewer-password-1";
/// What the charger says it is: markup, which the pages must show as text.
const VENDOR: &str = "<script>x</script>";

#[tokio::test]
async fn an_admin_commands_a_charger_and_a_viewer_is_refused_in_the_browser() -> anyhow::Result<()>
{
    let tools = BrowserTools::find()?;
    let artefacts = browser::artefacts_dir("backoffice")?;
    eprintln!("Screenshots: {}", artefacts.display());
    let data_dir = tempfile::tempdir()?;

    let running = Voltfleet::new(&["up"])?
        .env("VOLTFLEET__DATA_DIR", data_dir.path())
        .env("VOLTFLEET__UP__SITE_DIR", browser::site_dir())
        .start(&SERVICES)
        .await?;
    running.wait_for_stdout("Press Ctrl-C to stop").await?;

    // The viewer, straight into the database `up` migrated and seeded.
    let db = Database::connect(&sqlite_settings(data_dir.path()), data_dir.path()).await?;
    db.operators()
        .create(&NewOperator {
            email: VIEWER.into(),
            display_name: "Vera Viewer".into(),
            password_hash: hash_password(VIEWER_PASSWORD)?,
            role: Role::Viewer,
        })
        .await?;
    db.close().await;

    let url = running.proxy_url("/ocpp").replace("http://", "ws://");
    let mut charger =
        Charger::connect(ChargerOptions::new(&url, CHARGER).password("voltfleet-demo")).await?;
    let boot = charger
        .call_ok(
            "BootNotification",
            json!({"chargePointVendor": VENDOR, "chargePointModel": "AC22"}),
        )
        .await?;
    assert_eq!(boot["status"], "Accepted", "{boot}");
    for connector in [1, 2] {
        charger
            .call_ok(
                "StatusNotification",
                json!({"connectorId": connector, "errorCode": "NoError", "status": "Available"}),
            )
            .await?;
    }
    // The charger's answers (the script checks the page shows them).
    charger
        .answer("UnlockConnector", json!({"status": "Unlocked"}))
        .await?;
    charger
        .answer("Reset", json!({"status": "Accepted"}))
        .await?;

    let mut page = tools.run(
        "backoffice.mjs",
        &[
            ("VOLTFLEET_BASE_URL", running.proxy_url("")),
            ("VOLTFLEET_ARTEFACTS", artefacts.display().to_string()),
            ("VOLTFLEET_CHARGER", CHARGER.to_owned()),
            ("VOLTFLEET_VENDOR", VENDOR.to_owned()),
            ("VOLTFLEET_VIEWER", VIEWER.to_owned()),
            ("VOLTFLEET_VIEWER_PASSWORD", VIEWER_PASSWORD.to_owned()),
        ],
    )?;
    // The admin has the charger's page open: a status change shows there without a reload.
    page.step("charger-page").await?;
    charger
        .call_ok(
            "StatusNotification",
            json!({"connectorId": 2, "errorCode": "NoError", "status": "Unavailable"}),
        )
        .await?;
    // A session, for the transaction page's chart.
    let now = || chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let started = charger
        .call_ok(
            "StartTransaction",
            json!({"connectorId": 1, "idTag": "DEMO-TAG-1", "meterStart": 1000, "timestamp": now()}),
        )
        .await?;
    let transaction = started["transactionId"].as_i64().unwrap_or_default();
    for (energy, power) in [(1_000, 7_400), (3_000, 7_200), (5_200, 3_600)] {
        charger
            .call_ok(
                "MeterValues",
                json!({"connectorId": 1, "transactionId": transaction, "meterValue": [{
                    "timestamp": now(),
                    "sampledValue": [
                        {"value": energy.to_string(), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                        {"value": power.to_string(), "measurand": "Power.Active.Import", "unit": "W"},
                    ],
                }]}),
            )
            .await?;
    }
    charger
        .call_ok(
            "StopTransaction",
            json!({"transactionId": transaction, "meterStop": 5200, "timestamp": now(), "reason": "Local"}),
        )
        .await?;
    let printed = page.finish().await?;

    // What the charger was asked, in the order the admin sent it.
    let unlock = charger.received("UnlockConnector").await?;
    assert_eq!(unlock["connectorId"], 1, "{unlock}");
    let reset = charger.received("Reset").await?;
    assert_eq!(reset["type"], "Hard", "{reset}");
    let configuration = charger.received("GetConfiguration").await?;
    assert!(
        configuration.get("key").is_none(),
        "all keys: {configuration}"
    );

    let screenshots = printed
        .iter()
        .filter(|line| line.starts_with("screenshot "))
        .count();
    assert!(screenshots >= 8, "{printed:?}");

    // Every action is in the audit log, the viewer's refusal included.
    let db = Database::connect(&sqlite_settings(data_dir.path()), data_dir.path()).await?;
    let audit = db.audit().recent(200).await?;
    db.close().await;
    let has = |action: &str, outcome: &str| {
        audit
            .iter()
            .any(|entry| entry.action == action && entry.outcome.as_str() == outcome)
    };
    assert!(
        has("charge_point.command.UnlockConnector", "success"),
        "{audit:?}"
    );
    assert!(has("charge_point.command.Reset", "success"), "{audit:?}");
    assert!(
        has("charge_point.command.GetConfiguration", "success"),
        "{audit:?}"
    );
    assert!(
        audit
            .iter()
            .any(|entry| entry.action == "access.denied"
                && entry.actor == format!("operator:{VIEWER}")),
        "{audit:?}"
    );

    charger.close().await?;
    let (status, stderr) = running.stop_with("TERM").await?;
    assert!(status.success(), "{stderr}");
    Ok(())
}
