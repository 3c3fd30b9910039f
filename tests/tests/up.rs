//! `voltfleet up`: every service on embedded storage, the demo data, a clean stop, and a
//! restart that finds the demo data again instead of duplicating it.

use voltfleet_core::storage::Database;
use voltfleet_core::testing::sqlite_settings;
use voltfleet_e2e::{Running, SERVICES, Voltfleet, get};

async fn start_up(data_dir: &std::path::Path) -> anyhow::Result<(Running, String)> {
    let running = Voltfleet::new(&["up"])?
        .env("VOLTFLEET__DATA_DIR", data_dir)
        .start(&SERVICES)
        .await?;
    let banner = running.wait_for_stdout("Press Ctrl-C to stop").await?;
    Ok((running, banner))
}

fn api_key_in(banner: &str) -> String {
    banner
        .split_whitespace()
        .find(|word| word.starts_with("vfk_"))
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn up_serves_every_service_with_the_demo_data_and_restarts_without_duplicates()
-> anyhow::Result<()> {
    let data_dir = tempfile::tempdir()?;
    let (running, banner) = start_up(data_dir.path()).await?;
    for expected in [
        "Demo Plaza",
        "DEMO-CP-1",
        "DEMO-CP-2",
        "DEMO-TAG-1",
        "admin@example.com",
        "voltfleet-demo",
        "/ocpp/DEMO-CP-1",
        "/ocpi/versions",
        "/backoffice/",
        "/api/v1/",
    ] {
        assert!(
            banner.contains(expected),
            "{expected} is not in the banner:\n{banner}"
        );
    }
    let first_key = api_key_in(&banner);
    assert!(first_key.len() > 40, "no API key in the banner:\n{banner}");

    for service in SERVICES {
        let (status, body) = get(&running.url(service, "/healthz")).await?;
        assert_eq!((status, body.trim()), (200, "ok"), "{service} /healthz");
        let (status, body) = get(&running.url(service, "/readyz")).await?;
        assert_eq!(status, 200, "{service} /readyz: {body}");
        let readiness: serde_json::Value = serde_json::from_str(&body)?;
        assert_eq!(readiness["ready"], true, "{body}");
        assert_eq!(readiness["checks"][0]["backend"], "sqlite", "{body}");
        assert_eq!(readiness["checks"][1]["backend"], "in-process", "{body}");
        let (status, metrics) = get(&running.url(service, "/metrics")).await?;
        assert_eq!(status, 200);
        assert!(
            metrics.contains(&format!(
                "voltfleet_http_requests_total{{method=\"GET\",route=\"/readyz\",service=\"{service}\",status=\"2xx\"}} 1"
            )),
            "{service} /metrics:\n{metrics}"
        );
        assert!(metrics.contains("voltfleet_dependency_up{dependency=\"database\"} 1"));
        assert!(metrics.contains("voltfleet_process_resident_memory_bytes"));
    }
    let (status, _) = get(&running.url("api", "/no-such-page")).await?;
    assert_eq!(status, 404);

    // The proxy in front: one address for every service, each prefix to its service.
    assert!(banner.contains(&running.proxy_url("/")), "{banner}");
    let (status, readiness) = get(&running.proxy_admin_url("/readyz")).await?;
    assert_eq!(status, 200, "{readiness}");
    let readiness: serde_json::Value = serde_json::from_str(&readiness)?;
    let pools: Vec<_> = readiness["pools"]
        .as_array()
        .map(|pools| pools.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(pools, ["api", "backoffice", "ocpi", "ocpp"]);
    // The drivers' website at /, found in the source tree; every other prefix still goes to
    // its service (the longest prefix wins).
    assert!(banner.contains("Website"), "{banner}");
    let (status, home) = get(&running.proxy_url("/")).await?;
    assert_eq!(status, 200);
    assert!(home.contains("<title>Find a charger"), "{home}");
    let (status, page) = get(&running.proxy_url("/charger/?id=DEMO-CP-1")).await?;
    assert_eq!(status, 200);
    assert!(page.contains("js/charger.js"), "{page}");
    let (status, body) = get(&running.proxy_url("/nowhere")).await?;
    assert_eq!((status, body.as_str()), (404, "Not found.\n"));
    let before = get(&running.url("ocpi", "/metrics")).await?.1;
    let (status, body) = get(&running.proxy_url("/ocpi/versions")).await?;
    assert_eq!(
        status, 404,
        "the OCPI service answers (it has no routes yet): {body}"
    );
    assert!(
        !body.contains("No route"),
        "the proxy must have forwarded it: {body}"
    );
    let after = get(&running.url("ocpi", "/metrics")).await?.1;
    let unmatched = "voltfleet_http_requests_total{method=\"GET\",route=\"unmatched\",service=\"ocpi\",status=\"4xx\"}";
    assert!(
        !before.contains(unmatched) && after.contains(unmatched),
        "{after}"
    );
    let proxy_address = running.proxy_url("/");

    let (status, stderr) = running.stop_with("INT").await?;
    assert!(
        status.success(),
        "Ctrl-C must stop cleanly: {status}\n{stderr}"
    );
    assert!(stderr.contains("Stopped."), "{stderr}");
    assert!(
        get(&proxy_address).await.is_err(),
        "the proxy stops with up"
    );

    let (running, banner) = start_up(data_dir.path()).await?;
    assert_eq!(
        api_key_in(&banner),
        first_key,
        "a restart keeps the demo API key"
    );
    let (status, stderr) = running.stop_with("TERM").await?;
    assert!(status.success(), "{stderr}");
    assert!(
        !stderr.contains("Created the demo data"),
        "seeded twice:\n{stderr}"
    );

    let db = Database::connect(&sqlite_settings(data_dir.path()), data_dir.path()).await?;
    let locations = db.locations().list().await?;
    assert_eq!(
        locations.iter().filter(|l| l.name == "Demo Plaza").count(),
        1
    );
    let charge_points = db.charge_points().list().await?;
    let identities: Vec<_> = charge_points.iter().map(|c| c.identity.as_str()).collect();
    assert_eq!(identities, ["DEMO-CP-1", "DEMO-CP-2"]);
    for charge_point in &charge_points {
        assert_eq!(db.charge_points().evses(charge_point.id).await?.len(), 2);
    }
    let seeds = db.audit().recent(100).await?;
    assert_eq!(seeds.iter().filter(|e| e.action == "demo.seed").count(), 1);
    db.close().await;
    Ok(())
}

#[tokio::test]
async fn a_taken_port_stops_up_before_anything_serves() -> anyhow::Result<()> {
    let data_dir = tempfile::tempdir()?;
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = taken.local_addr()?.port();
    let finished = Voltfleet::new(&["up"])?
        .env("VOLTFLEET__DATA_DIR", data_dir.path())
        .env("VOLTFLEET__OCPI__LISTEN", format!("127.0.0.1:{port}"))
        .output()
        .await?;
    assert!(!finished.status.success());
    assert!(
        finished.stderr.contains(&format!("127.0.0.1:{port}")),
        "{}",
        finished.stderr
    );
    assert!(
        finished.stderr.contains("ocpi.listen"),
        "{}",
        finished.stderr
    );
    assert!(
        !finished.stderr.contains("Service listening."),
        "{}",
        finished.stderr
    );
    Ok(())
}

#[tokio::test]
async fn the_proxy_does_not_outlive_a_killed_up() -> anyhow::Result<()> {
    let data_dir = tempfile::tempdir()?;
    let (running, _) = start_up(data_dir.path()).await?;
    let proxy = running.proxy_admin_url("/healthz");
    assert_eq!(get(&proxy).await?.0, 200);
    let (status, _) = running.stop_with("KILL").await?;
    assert!(!status.success());
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    while get(&proxy).await.is_ok() {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "voltfleet-proxy still runs after its parent was killed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Ok(())
}

#[tokio::test]
async fn a_demo_charger_boots_and_charges_through_the_proxy_of_up() -> anyhow::Result<()> {
    use voltfleet_e2e::charger::{Charger, ChargerOptions};
    let data_dir = tempfile::tempdir()?;
    let (running, _) = start_up(data_dir.path()).await?;
    let url = running.proxy_url("/ocpp").replace("http://", "ws://");
    let mut charger =
        Charger::connect(ChargerOptions::new(&url, "DEMO-CP-1").password("voltfleet-demo")).await?;
    let boot = charger
        .call_ok(
            "BootNotification",
            serde_json::json!({"chargePointVendor": "Demo", "chargePointModel": "AC22"}),
        )
        .await?;
    assert_eq!(boot["status"], "Accepted", "{boot}");
    let authorized = charger
        .call_ok("Authorize", serde_json::json!({"idTag": "DEMO-TAG-1"}))
        .await?;
    assert_eq!(
        authorized["idTagInfo"]["status"], "Accepted",
        "{authorized}"
    );
    let started = charger
        .call_ok(
            "StartTransaction",
            serde_json::json!({"connectorId": 1, "idTag": "DEMO-TAG-1", "meterStart": 0,
                               "timestamp": "2026-12-01T09:00:00Z"}),
        )
        .await?;
    assert!(started["transactionId"].as_i64().is_some(), "{started}");
    charger.close().await?;
    let (status, _) = running.stop_with("TERM").await?;
    assert!(status.success());
    Ok(())
}
