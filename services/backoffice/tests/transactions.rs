//! Transactions in the Back Office against the real server (see `support`).

mod support;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use support::{Backend, TestApp, on_both_backends};
use voltfleet_core::domain::{EnergyWh, RegistrationStatus, Role};
use voltfleet_core::storage::{NewChargePoint, NewMeterValue, NewTransaction, StopTransaction};

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("a test time")
        .with_timezone(&Utc)
}

async fn seed(app: &TestApp) -> anyhow::Result<(i64, i64)> {
    let cp = app
        .ctx
        .db
        .charge_points()
        .create(&NewChargePoint {
            identity: "CP-TX".parse()?,
            location_id: None,
            ocpp_password_hash: None,
            registration_status: RegistrationStatus::Accepted,
        })
        .await?;
    let transactions = app.ctx.db.transactions();
    let start = |evse, token: &str, at| NewTransaction {
        charge_point_id: cp,
        evse_number: evse,
        id_token: token.into(),
        meter_start_wh: EnergyWh(1_000),
        started_at: utc(at),
        reservation_id: None,
        start_auth_status: Some("Accepted".into()),
    };
    let ended = transactions
        .start(&start(1, "TAG-<b>", "2025-06-01T10:00:00Z"))
        .await?;
    let sample = |at: &str, measurand: &str, unit: &str, value: f64| NewMeterValue {
        transaction_id: Some(ended),
        charge_point_id: cp,
        evse_number: 1,
        sampled_at: utc(at),
        measurand: measurand.into(),
        phase: None,
        unit: unit.into(),
        value,
        context: Some("Sample.Periodic".into()),
        location: None,
    };
    transactions
        .add_meter_values(&[
            sample(
                "2025-06-01T10:00:00Z",
                "Energy.Active.Import.Register",
                "Wh",
                1_000.0,
            ),
            sample("2025-06-01T10:00:00Z", "Power.Active.Import", "W", 7_400.0),
            sample(
                "2025-06-01T10:30:00Z",
                "Energy.Active.Import.Register",
                "Wh",
                4_700.0,
            ),
            sample(
                "2025-06-01T11:00:00Z",
                "Energy.Active.Import.Register",
                "Wh",
                8_400.0,
            ),
        ])
        .await?;
    transactions
        .stop(
            ended,
            &StopTransaction {
                meter_stop_wh: EnergyWh(8_400),
                stopped_at: utc("2025-06-01T11:00:00Z"),
                stop_reason: Some("EVDisconnected".into()),
                stop_id_token: None,
            },
        )
        .await?;
    let running = transactions
        .start(&start(2, "TAG-2", "2025-06-01T12:00:00Z"))
        .await?;
    Ok((ended, running))
}

async fn transactions_are_listed_and_charted(app: &TestApp) -> anyhow::Result<()> {
    app.operator("vera@example.com", Role::Viewer).await?;
    app.operator("olga@example.com", Role::Operator).await?;
    let (ended, running) = seed(app).await?;
    let viewer = app.login("vera@example.com").await?;
    let list = app.get("/backoffice/transactions", Some(&viewer)).await?;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("2 transactions"), "{}", list.body);
    assert!(
        list.body.contains("TAG-&#60;b&#62;"),
        "escaped: {}",
        list.body
    );
    assert!(list.body.contains("<td>7.40</td>"), "{}", list.body);
    let first_row = list
        .body
        .find(&format!("/backoffice/transactions/{running}\""))
        .expect("listed");
    let second_row = list
        .body
        .find(&format!("/backoffice/transactions/{ended}\""))
        .expect("listed");
    assert!(first_row < second_row, "newest first");
    let filtered = app
        .get(
            "/backoffice/transactions?state=running&charger=cp-tx",
            Some(&viewer),
        )
        .await?;
    assert!(
        filtered.body.contains("1 transaction<"),
        "{}",
        filtered.body
    );
    let bad = app
        .get("/backoffice/transactions?state=paused", Some(&viewer))
        .await?;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.body
            .contains("id=\"tx-state-error\">Choose running, ended or any.")
    );

    let detail = app
        .get(&format!("/backoffice/transactions/{ended}"), Some(&viewer))
        .await?;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(
        detail
            .body
            .contains("points=\"0.0,180.0 300.0,90.0 600.0,0.0\""),
        "{}",
        detail.body
    );
    assert!(
        detail
            .body
            .contains("3 energy and 1 power samples from 10:00:00 to 11:00:00 UTC"),
        "{}",
        detail.body
    );
    assert!(detail.body.contains("7.40 kWh"));
    assert!(detail.body.contains("EVDisconnected"));
    assert!(!detail.body.contains("Stop this transaction"));

    let viewer_running = app
        .get(
            &format!("/backoffice/transactions/{running}"),
            Some(&viewer),
        )
        .await?;
    assert!(
        !viewer_running.body.contains("Stop this transaction"),
        "not for a viewer"
    );
    let operator = app.login("olga@example.com").await?;
    let operator_running = app
        .get(
            &format!("/backoffice/transactions/{running}"),
            Some(&operator),
        )
        .await?;
    assert!(operator_running.body.contains("Stop this transaction"));
    assert!(
        operator_running
            .body
            .contains("action=\"/backoffice/charge-points/CP-TX/commands/remote-stop\"")
    );
    assert!(
        operator_running
            .body
            .contains("No energy or power samples were reported.")
    );
    let stop = app
        .post(
            "/backoffice/charge-points/CP-TX/commands/remote-stop",
            &operator,
            &[("transaction_id", &running.to_string())],
        )
        .await?;
    assert!(
        stop.body.contains("charger CP-TX is not connected"),
        "{}",
        stop.body
    );

    for missing in ["999999", "abc"] {
        let page = app
            .get(
                &format!("/backoffice/transactions/{missing}"),
                Some(&viewer),
            )
            .await?;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{missing}");
    }
    app.get("/backoffice/transactions", None)
        .await?
        .assert_redirect("/backoffice/login");
    Ok(())
}

on_both_backends!(transactions_are_listed_and_charted);
