//! The drivers' website in a real browser against the real stack: `voltfleet up` (services,
//! proxy, the `site/` files), a real OCPP charger, and headless Chromium running
//! `tests/browser/main_flow.mjs`. The browser finds the charger, signs up and starts
//! charging; this side plays the charger — it receives RemoteStartTransaction, reports the
//! start and its meter, receives RemoteStopTransaction and reports the stop — while the
//! browser follows the session to its place in the history.

use chrono::{SecondsFormat, Utc};
use serde_json::json;
use voltfleet_e2e::browser::{self, BrowserTools};
use voltfleet_e2e::charger::{Charger, ChargerOptions};
use voltfleet_e2e::{SERVICES, Voltfleet};

const CHARGER: &str = "DEMO-CP-1";
/// The meter at the start, during the session and at the stop, in Wh.
const METER_START: i64 = 1_000;
const METER_LIVE: i64 = 4_500;
const METER_STOP: i64 = 5_200;
const POWER_W: i64 = 7_400;

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[tokio::test]
async fn a_driver_finds_a_charger_signs_up_charges_and_stops_in_the_browser() -> anyhow::Result<()>
{
    let tools = BrowserTools::find()?;
    let artefacts = browser::artefacts_dir("website")?;
    eprintln!("Screenshots: {}", artefacts.display());

    let running = Voltfleet::new(&["up"])?
        .env("VOLTFLEET__UP__SITE_DIR", browser::site_dir())
        .start(&SERVICES)
        .await?;
    running.wait_for_stdout("Press Ctrl-C to stop").await?;

    // The site is served at / with a policy that allows nothing but its own files.
    let home = reqwest::get(running.proxy_url("/")).await?;
    assert_eq!(home.status(), 200);
    let policy = home
        .headers()
        .get("content-security-policy")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(policy.starts_with("default-src 'self'"), "{policy:?}");
    assert!(home.text().await?.contains("Find a charger"));

    let url = running.proxy_url("/ocpp").replace("http://", "ws://");
    let mut charger =
        Charger::connect(ChargerOptions::new(&url, CHARGER).password("voltfleet-demo")).await?;
    let boot = charger
        .call_ok(
            "BootNotification",
            json!({"chargePointVendor": "Demo", "chargePointModel": "AC22"}),
        )
        .await?;
    assert_eq!(boot["status"], "Accepted", "{boot}");
    for connector in [1, 2] {
        charger
            .call_ok(
                "StatusNotification",
                json!({"connectorId": connector, "errorCode": "NoError", "status": "Available",
                       "timestamp": now()}),
            )
            .await?;
    }

    let mut page = tools.run(
        "main_flow.mjs",
        &[
            ("VOLTFLEET_SITE_URL", running.proxy_url("")),
            ("VOLTFLEET_ARTEFACTS", artefacts.display().to_string()),
            ("VOLTFLEET_CHARGER", CHARGER.to_owned()),
            ("EXPECT_LIVE_ENERGY", "3.50 kWh".to_owned()),
            ("EXPECT_LIVE_POWER", "7.4 kW".to_owned()),
            ("EXPECT_FINAL_ENERGY", "4.20 kWh".to_owned()),
        ],
    )?;

    // The driver pressed Start on EVSE 1: the charger is asked, with the driver's app token.
    page.step("start-pressed").await?;
    let remote_start = charger.received("RemoteStartTransaction").await?;
    assert_eq!(remote_start["connectorId"], 1, "{remote_start}");
    let id_tag = remote_start["idTag"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(id_tag.starts_with("VF"), "an app token: {remote_start}");
    let started = charger
        .call_ok(
            "StartTransaction",
            json!({"connectorId": 1, "idTag": id_tag, "meterStart": METER_START,
                   "timestamp": now()}),
        )
        .await?;
    assert_eq!(started["idTagInfo"]["status"], "Accepted", "{started}");
    let transaction = started["transactionId"].as_i64().unwrap_or_default();
    charger
        .call_ok(
            "StatusNotification",
            json!({"connectorId": 1, "errorCode": "NoError", "status": "Charging",
                   "timestamp": now()}),
        )
        .await?;
    charger
        .call_ok(
            "MeterValues",
            json!({"connectorId": 1, "transactionId": transaction, "meterValue": [{
                "timestamp": now(),
                "sampledValue": [
                    {"value": METER_LIVE.to_string(), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                    {"value": POWER_W.to_string(), "measurand": "Power.Active.Import", "unit": "W"},
                ],
            }]}),
        )
        .await?;

    // The driver saw the energy and pressed Stop: the charger is asked to stop that session.
    page.step("stop-pressed").await?;
    let remote_stop = charger.received("RemoteStopTransaction").await?;
    assert_eq!(remote_stop["transactionId"], transaction, "{remote_stop}");
    charger
        .call_ok(
            "StopTransaction",
            json!({"transactionId": transaction, "idTag": id_tag, "meterStop": METER_STOP,
                   "timestamp": now(), "reason": "Remote"}),
        )
        .await?;
    charger
        .call_ok(
            "StatusNotification",
            json!({"connectorId": 1, "errorCode": "NoError", "status": "Available",
                   "timestamp": now()}),
        )
        .await?;

    let printed = page.finish().await?;
    let screenshots = printed
        .iter()
        .filter(|line| line.starts_with("screenshot "))
        .count();
    assert!(screenshots >= 10, "{printed:?}");
    eprintln!("{screenshots} screenshots in {}", artefacts.display());

    charger.close().await?;
    let (status, stderr) = running.stop_with("TERM").await?;
    assert!(status.success(), "{stderr}");
    Ok(())
}

#[tokio::test]
async fn the_site_s_own_logic_passes_its_node_tests() -> anyhow::Result<()> {
    let tools = BrowserTools::find()?;
    let finished = tokio::time::timeout(
        browser::SCRIPT_DEADLINE,
        tokio::process::Command::new(&tools.node)
            .args(["--test", "site_modules.test.mjs"])
            .current_dir(browser::scripts_dir())
            .output(),
    )
    .await??;
    let stdout = String::from_utf8_lossy(&finished.stdout);
    assert!(
        finished.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&finished.stderr)
    );
    assert!(
        stdout.contains("# fail 0") && !stdout.contains("# pass 0"),
        "{stdout}"
    );
    Ok(())
}
