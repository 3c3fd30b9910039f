//! Locations in the Back Office against the real server (see `support`).

mod support;

use reqwest::StatusCode;
use support::{Backend, TestApp, on_both_backends};
use voltfleet_core::domain::{ConnectorFormat, PowerType, RegistrationStatus, Role};
use voltfleet_core::storage::{NewChargePoint, NewConnector, NewEvse, NewLocation};

async fn locations_show_their_chargers(app: &TestApp) -> anyhow::Result<()> {
    app.operator("vera@example.com", Role::Viewer).await?;
    let location = app
        .ctx
        .db
        .locations()
        .create(&NewLocation {
            name: "Plaza <Mayor>".into(),
            address: "Calle Mayor 1".into(),
            city: "Madrid".into(),
            postal_code: "28013".into(),
            country: "ESP".parse()?,
            latitude: 40.4,
            longitude: -3.7,
            time_zone: "Europe/Madrid".into(),
            opening_hours: None,
            tariff_text: Some("0.39 EUR/kWh".into()),
        })
        .await?;
    let cp = app
        .ctx
        .db
        .charge_points()
        .create(&NewChargePoint {
            identity: "CP-PLAZA".parse()?,
            location_id: Some(location),
            ocpp_password_hash: None,
            registration_status: RegistrationStatus::Accepted,
        })
        .await?;
    for number in [1, 2] {
        let evse = app
            .ctx
            .db
            .charge_points()
            .add_evse(&NewEvse {
                charge_point_id: cp,
                evse_number: number,
            })
            .await?;
        app.ctx
            .db
            .charge_points()
            .add_connector(&NewConnector {
                evse_id: evse,
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
    let viewer = app.login("vera@example.com").await?;
    let list = app.get("/backoffice/locations", Some(&viewer)).await?;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("Plaza &#60;Mayor&#62;"), "{}", list.body);
    assert!(
        list.body.contains("<td>1</td>\n      <td>2</td>"),
        "one charger, two EVSEs: {}",
        list.body
    );
    let detail = app
        .get(&format!("/backoffice/locations/{location}"), Some(&viewer))
        .await?;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(
        detail
            .body
            .contains("href=\"/backoffice/charge-points/CP-PLAZA\"")
    );
    assert_eq!(
        detail.body.matches("IEC_62196_T2 AC_3_PHASE 22 kW").count(),
        2,
        "{}",
        detail.body
    );
    assert!(detail.body.contains("0.39 EUR/kWh"));
    assert!(detail.body.contains("badge off"));
    for missing in ["999999", "x"] {
        let page = app
            .get(&format!("/backoffice/locations/{missing}"), Some(&viewer))
            .await?;
        assert_eq!(page.status, StatusCode::NOT_FOUND);
    }
    Ok(())
}

on_both_backends!(locations_show_their_chargers);
