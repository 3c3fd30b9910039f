//! The drivers' API beyond accounts — locations, chargers, cards, API keys, sessions — and its
//! conventions (entity tags, rate limits, CORS), against the real API server on both backends
//! (see `support`). Starting and stopping on a connected charger is in the end-to-end tests,
//! which run the OCPP service too.

mod support;

use chrono::{Duration as Span, Utc};
use reqwest::header::{
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD,
    ETAG, IF_NONE_MATCH, ORIGIN, RETRY_AFTER,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use support::{Answer, Backend, TestApp, on_both_backends, text};
use voltfleet_core::domain::{ConnectorFormat, EnergyWh, PowerType, RegistrationStatus};
use voltfleet_core::ocpp::commands::session_entry;
use voltfleet_core::storage::{
    NewChargePoint, NewConnector, NewEvse, NewLocation, NewMeterValue, NewTransaction, StatusReport,
};

/// Puerta del Sol, Madrid.
const SOL: (f64, f64) = (40.416_775, -3.703_790);

/// One EVSE with one connector.
struct Plug {
    standard: &'static str,
    power_type: PowerType,
    max_power_w: i32,
}

const TYPE_2: Plug = Plug {
    standard: "IEC_62196_T2",
    power_type: PowerType::Ac3Phase,
    max_power_w: 22_000,
};
const CCS: Plug = Plug {
    standard: "IEC_62196_T2_COMBO",
    power_type: PowerType::Dc,
    max_power_w: 150_000,
};

/// A location with one charger of these EVSEs; returns `(location id, charge point id)`.
async fn seed_site(
    app: &TestApp,
    name: &str,
    (latitude, longitude): (f64, f64),
    charger: &str,
    plugs: &[Plug],
) -> anyhow::Result<(i64, i64)> {
    let db = &app.ctx.db;
    let location_id = db
        .locations()
        .create(&NewLocation {
            name: name.into(),
            address: "Calle Mayor 1".into(),
            city: "Madrid".into(),
            postal_code: "28013".into(),
            country: "ESP".parse()?,
            latitude,
            longitude,
            time_zone: "Europe/Madrid".into(),
            opening_hours: Some(
                r#"{"twentyfourseven":false,"regular_hours":[{"weekday":1,"period_begin":"08:00","period_end":"20:00"}]}"#
                    .into(),
            ),
            tariff_text: Some("0.45 EUR/kWh".into()),
        })
        .await?;
    let charge_point_id = db
        .charge_points()
        .create(&NewChargePoint {
            identity: charger.parse()?,
            location_id: Some(location_id),
            ocpp_password_hash: None,
            registration_status: RegistrationStatus::Accepted,
        })
        .await?;
    for (number, plug) in (1..).zip(plugs) {
        let evse_id = db
            .charge_points()
            .add_evse(&NewEvse {
                charge_point_id,
                evse_number: number,
            })
            .await?;
        db.charge_points()
            .add_connector(&NewConnector {
                evse_id,
                connector_number: 1,
                standard: plug.standard.into(),
                format: ConnectorFormat::Cable,
                power_type: plug.power_type,
                max_voltage: 400,
                max_amperage: 32,
                max_power_w: Some(plug.max_power_w),
            })
            .await?;
    }
    Ok((location_id, charge_point_id))
}

/// The charger reports an EVSE's status, as the OCPP service records it.
async fn report_status(
    app: &TestApp,
    charge_point_id: i64,
    evse: i32,
    status: &str,
) -> anyhow::Result<()> {
    app.ctx
        .db
        .charge_points()
        .record_status(&StatusReport {
            charge_point_id,
            connector_id: evse,
            status: status.into(),
            error_code: "NoError".into(),
            info: None,
            vendor_id: None,
            vendor_error_code: None,
            reported_at: Some(Utc::now()),
            received_at: Utc::now(),
        })
        .await?;
    Ok(())
}

/// The charger connects to (or leaves) an OCPP node, as the directory tells.
async fn set_online(app: &TestApp, charger: &str, online: bool) -> anyhow::Result<()> {
    let entry = session_entry(&charger.parse()?);
    let directory = &app.ctx.shared.directory;
    if online {
        directory
            .claim(&entry, "ocpp-node-test", Duration::from_secs(300))
            .await?;
    } else {
        directory.release(&entry, "ocpp-node-test").await?;
    }
    Ok(())
}

fn names(answer: &Answer) -> Vec<String> {
    answer.body["items"]
        .as_array()
        .map(|items| items.iter().map(|item| text(item, "name")).collect())
        .unwrap_or_default()
}

async fn finds_locations_by_distance_and_box_with_filters(app: &TestApp) -> anyhow::Result<()> {
    // Sol, a DC site 3.3 km north-east, and Barcelona, 500 km away.
    let (sol, sol_cp) = seed_site(app, "Sol", SOL, "CP-SOL", &[TYPE_2, TYPE_2]).await?;
    seed_site(app, "Chamartin", (40.4413, -3.6780), "CP-CHAM", &[CCS]).await?;
    seed_site(app, "Barcelona", (41.3874, 2.1686), "CP-BCN", &[TYPE_2]).await?;

    let near = app
        .get("/locations?near=40.416775,-3.70379&radius_m=10000", None)
        .await?;
    assert_eq!(near.status, StatusCode::OK, "{:?}", near.body);
    assert_eq!(names(&near), ["Sol", "Chamartin"], "nearest first");
    let items = &near.body["items"];
    assert_eq!(items[0]["distance_m"], 0);
    let chamartin_m = items[1]["distance_m"].as_u64().unwrap_or_default();
    assert!(
        (3_200..=3_600).contains(&chamartin_m),
        "Chamartin is about 3.4 km from Sol, not {chamartin_m} m"
    );
    assert_eq!(items[0]["evses_total"], 2);
    assert_eq!(items[0]["max_power_w"], 22_000);
    assert_eq!(items[0]["connector_types"], json!(["IEC_62196_T2"]));
    assert_eq!(items[0]["tariff_text"], "0.45 EUR/kWh");
    assert_eq!(
        items[0]["opening_hours"]["regular_hours"][0]["period_begin"],
        "08:00"
    );
    assert_eq!(near.body["next_cursor"], Value::Null);

    let small = app
        .get("/locations?near=40.416775,-3.70379&radius_m=1000", None)
        .await?;
    assert_eq!(names(&small), ["Sol"], "Chamartin lies outside 1 km");

    let catalonia = app.get("/locations?bbox=1.5,41,2.5,42", None).await?;
    assert_eq!(names(&catalonia), ["Barcelona"]);
    assert!(catalonia.body["items"][0].get("distance_m").is_none());

    let fast = app
        .get("/locations?near=40.416775,-3.70379&min_power_kw=50", None)
        .await?;
    assert_eq!(names(&fast), ["Chamartin"]);
    let ccs = app
        .get(
            "/locations?bbox=-10,35,5,44&connector_type=IEC_62196_T2_COMBO,CHADEMO",
            None,
        )
        .await?;
    assert_eq!(names(&ccs), ["Chamartin"]);

    // Available now: the last status says Available and the charger is connected.
    let available = "/locations?near=40.416775,-3.70379&available=true";
    assert_eq!(
        names(&app.get(available, None).await?),
        Vec::<String>::new()
    );
    report_status(app, sol_cp, 1, "Available").await?;
    report_status(app, sol_cp, 2, "Charging").await?;
    assert_eq!(
        names(&app.get(available, None).await?),
        Vec::<String>::new(),
        "a charger that is not connected is not available"
    );
    set_online(app, "CP-SOL", true).await?;
    let now = app.get(available, None).await?;
    assert_eq!(names(&now), ["Sol"]);
    assert_eq!(now.body["items"][0]["evses_available"], 1);
    set_online(app, "CP-SOL", false).await?;
    assert_eq!(
        names(&app.get(available, None).await?),
        Vec::<String>::new()
    );

    let detail = app.get(&format!("/locations/{sol}"), None).await?;
    assert_eq!(detail.status, StatusCode::OK, "{:?}", detail.body);
    assert_eq!(detail.body["name"], "Sol");
    assert_eq!(detail.body["chargers"][0]["identity"], "CP-SOL");
    assert_eq!(
        detail.body["chargers"][0]["evses"][0]["status"],
        "Available"
    );
    app.get("/locations/999999", None)
        .await?
        .assert_problem(StatusCode::NOT_FOUND);
    app.get("/locations/not-a-number", None)
        .await?
        .assert_problem(StatusCode::NOT_FOUND);
    Ok(())
}

async fn pages_follow_the_cursor(app: &TestApp) -> anyhow::Result<()> {
    for (index, name) in ["A", "B", "C", "D", "E"].into_iter().enumerate() {
        let offset = index as f64 * 0.01;
        seed_site(
            app,
            name,
            (SOL.0 + offset, SOL.1),
            &format!("CP-{name}"),
            &[TYPE_2],
        )
        .await?;
    }
    let mut seen = Vec::new();
    let mut path = "/locations?near=40.416775,-3.70379&radius_m=20000&limit=2".to_owned();
    for _ in 0..5 {
        let page = app.get(&path, None).await?;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        let items = names(&page);
        assert!(items.len() <= 2);
        seen.extend(items);
        match page.body["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!(
                    "/locations?near=40.416775,-3.70379&radius_m=20000&limit=2&cursor={cursor}"
                );
            }
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["A", "B", "C", "D", "E"],
        "every location once, in order"
    );

    let bbox = app.get("/locations?bbox=-4,40,-3,41&limit=3", None).await?;
    assert_eq!(names(&bbox).len(), 3);
    let cursor = text(&bbox.body, "next_cursor");
    assert!(!cursor.is_empty());
    let rest = app
        .get(
            &format!("/locations?bbox=-4,40,-3,41&limit=3&cursor={cursor}"),
            None,
        )
        .await?;
    assert_eq!(names(&rest).len(), 2);
    assert_eq!(rest.body["next_cursor"], Value::Null);

    let forged = app.get("/locations?cursor=bm90LWEtY3Vyc29y", None).await?;
    forged.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(forged.fields(), ["cursor"]);
    Ok(())
}

async fn names_every_invalid_search_parameter(app: &TestApp) -> anyhow::Result<()> {
    for (query, fields) in [
        ("near=91,0", vec!["near"]),
        ("near=40.4", vec!["near"]),
        ("near=abc,def&radius_m=0", vec!["near", "radius_m"]),
        ("radius_m=500", vec!["radius_m"]),
        ("bbox=1,2,3", vec!["bbox"]),
        ("bbox=3,2,1,4", vec!["bbox"]),
        ("bbox=-4,40,-3,41&near=40,-3", vec!["near"]),
        ("min_power_kw=lots", vec!["min_power_kw"]),
        ("connector_type=T2;DROP TABLE", vec!["connector_type"]),
        ("available=maybe", vec!["available"]),
        ("limit=0", vec!["limit"]),
        ("limit=201&cursor=%%%", vec!["cursor", "limit"]),
    ] {
        let answer = app.get(&format!("/locations?{query}"), None).await?;
        answer.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
        let mut named = answer.fields();
        named.sort();
        assert_eq!(named, fields, "{query}: {:?}", answer.body);
    }
    let wrong_method = app.send(app.request(Method::PUT, "/locations")).await?;
    wrong_method.assert_problem(StatusCode::METHOD_NOT_ALLOWED);
    Ok(())
}

async fn chargers_answer_304_until_they_change(app: &TestApp) -> anyhow::Result<()> {
    let (_, cp) = seed_site(app, "Sol", SOL, "CP-QR-1", &[TYPE_2, CCS]).await?;
    let first = app.get("/chargers/CP-QR-1", None).await?;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!(first.body["identity"], "CP-QR-1");
    assert_eq!(first.body["location"]["name"], "Sol");
    assert_eq!(first.body["online"], false);
    assert_eq!(first.body["evses"][1]["connectors"][0]["power_type"], "DC");
    assert_eq!(first.body["evses"][0]["status"], "Unknown");
    let tag = first.header(ETAG.as_str()).unwrap_or_default().to_owned();
    assert!(tag.starts_with('"'), "a strong entity tag: {tag:?}");

    let unchanged = app
        .send(
            app.request(Method::GET, "/chargers/CP-QR-1")
                .header(IF_NONE_MATCH, &tag),
        )
        .await?;
    assert_eq!(unchanged.status, StatusCode::NOT_MODIFIED);
    assert_eq!(unchanged.body, Value::Null);
    assert_eq!(unchanged.header(ETAG.as_str()), Some(tag.as_str()));

    report_status(app, cp, 1, "Available").await?;
    set_online(app, "CP-QR-1", true).await?;
    let changed = app
        .send(
            app.request(Method::GET, "/chargers/CP-QR-1")
                .header(IF_NONE_MATCH, &tag),
        )
        .await?;
    assert_eq!(changed.status, StatusCode::OK);
    assert_ne!(changed.header(ETAG.as_str()), Some(tag.as_str()));
    assert_eq!(changed.body["online"], true);
    assert_eq!(changed.body["evses"][0]["available"], true);
    assert_eq!(changed.body["evses"][1]["available"], false);

    app.get("/chargers/NO-SUCH-CP", None)
        .await?
        .assert_problem(StatusCode::NOT_FOUND);
    Ok(())
}

async fn drivers_add_list_and_block_their_cards(app: &TestApp) -> anyhow::Result<()> {
    let dora = app.driver("dora@example.com").await?;
    let eve = app.driver("eve@example.com").await?;
    app.get("/cards", None)
        .await?
        .assert_problem(StatusCode::UNAUTHORIZED);

    let added = app
        .post(
            "/cards",
            json!({"token": "04A1B2C3D4", "label": "Blue fob"}),
            Some(&dora),
        )
        .await?;
    assert_eq!(added.status, StatusCode::CREATED, "{:?}", added.body);
    assert_eq!(added.body["status"], "Accepted");
    assert_eq!(added.body["label"], "Blue fob");
    let stored = app.ctx.db.id_tokens().find("04a1b2c3d4").await?;
    assert!(
        stored.is_some_and(|token| token.token_type == "RFID" && token.driver_id.is_some()),
        "the charger will be told to accept it"
    );

    for (body, field) in [
        (json!({"token": ""}), "token"),
        (json!({"token": "has spaces"}), "token"),
        (json!({"token": "X".repeat(21)}), "token"),
        (json!({"token": "OK-1", "label": "tab\tin"}), "label"),
    ] {
        let refused = app.post("/cards", body.clone(), Some(&dora)).await?;
        refused.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(refused.fields(), [field], "{body}");
    }
    for driver in [&dora, &eve] {
        let taken = app
            .post("/cards", json!({"token": "04a1b2c3d4"}), Some(driver))
            .await?;
        taken.assert_problem(StatusCode::CONFLICT);
    }

    let listed = app.get("/cards", Some(&dora)).await?;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed.body["items"][0]["token"], "04A1B2C3D4");
    let others = app.get("/cards", Some(&eve)).await?;
    assert_eq!(
        others.body["items"],
        json!([]),
        "Eve sees none of Dora's cards"
    );

    app.post("/cards/04A1B2C3D4/block", json!({}), Some(&eve))
        .await?
        .assert_problem(StatusCode::NOT_FOUND);
    let blocked = app
        .post("/cards/04A1B2C3D4/block", json!({}), Some(&dora))
        .await?;
    assert_eq!(blocked.status, StatusCode::OK, "{:?}", blocked.body);
    assert_eq!(blocked.body["status"], "Blocked");
    let stored = app.ctx.db.id_tokens().find("04A1B2C3D4").await?;
    assert_eq!(
        stored.map(|token| token.status.as_str().to_owned()),
        Some("Blocked".to_owned())
    );
    Ok(())
}

async fn api_keys_reach_only_their_scopes_until_revoked(app: &TestApp) -> anyhow::Result<()> {
    let dora = app.driver("dora@example.com").await?;
    let eve = app.driver("eve@example.com").await?;
    app.post("/cards", json!({"token": "DORA-CARD"}), Some(&dora))
        .await?;

    let refused = app
        .post(
            "/api-keys",
            json!({"name": "", "scopes": ["cards", "everything"]}),
            Some(&dora),
        )
        .await?;
    refused.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
    let mut fields = refused.fields();
    fields.sort();
    assert_eq!(fields, ["name", "scopes"]);

    let created = app
        .post(
            "/api-keys",
            json!({"name": "Fleet app", "scopes": ["locations:read", "cards"]}),
            Some(&dora),
        )
        .await?;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let key = text(&created.body, "key");
    let key_id = created.body["id"].as_i64().unwrap_or_default();
    assert!(key.starts_with("vfk_"), "{key}");
    let stored = app
        .ctx
        .db
        .api_keys()
        .find_by_prefix(&text(&created.body, "prefix"))
        .await?;
    assert!(
        stored.is_some_and(|record| !record.key_hash.contains(&key)),
        "only a hash of the key is stored"
    );

    let with_key = |path: &str, header: &str| {
        let request = app.request(Method::GET, path);
        if header == "x-api-key" {
            request.header("x-api-key", &key)
        } else {
            request.bearer_auth(&key)
        }
    };
    let locations = app.send(with_key("/locations", "x-api-key")).await?;
    assert_eq!(locations.status, StatusCode::OK, "{:?}", locations.body);
    let cards = app.send(with_key("/cards", "bearer")).await?;
    assert_eq!(cards.status, StatusCode::OK, "{:?}", cards.body);
    assert_eq!(cards.body["items"][0]["token"], "DORA-CARD");
    let sessions = app.send(with_key("/sessions", "x-api-key")).await?;
    sessions.assert_problem(StatusCode::FORBIDDEN);
    assert!(text(&sessions.body, "detail").contains("sessions:read"));
    let start = app
        .send(
            app.request(Method::POST, "/charging/start")
                .header("x-api-key", &key)
                .json(&json!({"charger": "CP-1", "evse": 1})),
        )
        .await?;
    start.assert_problem(StatusCode::FORBIDDEN);
    let minted = app
        .send(
            app.request(Method::POST, "/api-keys")
                .bearer_auth(&key)
                .json(&json!({"name": "child", "scopes": ["cards"]})),
        )
        .await?;
    minted.assert_problem(StatusCode::UNAUTHORIZED);

    let listed = app.get("/api-keys", Some(&dora)).await?;
    assert_eq!(listed.body["items"][0]["name"], "Fleet app");
    assert!(listed.body["items"][0].get("key").is_none());
    assert_eq!(
        app.get("/api-keys", Some(&eve)).await?.body["items"],
        json!([])
    );

    let revoke = |token: &str| {
        app.send(
            app.request(Method::DELETE, &format!("/api-keys/{key_id}"))
                .bearer_auth(token.to_owned()),
        )
    };
    revoke(&eve).await?.assert_problem(StatusCode::NOT_FOUND);
    assert_eq!(revoke(&dora).await?.status, StatusCode::NO_CONTENT);
    assert_eq!(revoke(&dora).await?.status, StatusCode::NO_CONTENT);
    let after = app.send(with_key("/locations", "x-api-key")).await?;
    after.assert_problem(StatusCode::UNAUTHORIZED);
    Ok(())
}

async fn sessions_are_the_drivers_own(app: &TestApp) -> anyhow::Result<()> {
    let (_, cp) = seed_site(app, "Sol", SOL, "CP-SESS", &[TYPE_2]).await?;
    let dora = app.driver("dora@example.com").await?;
    let eve = app.driver("eve@example.com").await?;
    app.post("/cards", json!({"token": "DORA-CARD"}), Some(&dora))
        .await?;
    let transactions = app.ctx.db.transactions();
    let started_at = Utc::now() - Span::minutes(30);
    let earlier = transactions
        .start(&NewTransaction {
            charge_point_id: cp,
            evse_number: 1,
            id_token: "dora-card".into(),
            meter_start_wh: EnergyWh(1_000),
            started_at: started_at - Span::days(1),
            reservation_id: None,
            start_auth_status: Some("Accepted".into()),
        })
        .await?;
    transactions
        .stop(
            earlier,
            &voltfleet_core::storage::StopTransaction {
                meter_stop_wh: EnergyWh(8_500),
                stopped_at: started_at - Span::days(1) + Span::hours(1),
                stop_reason: Some("EVDisconnected".into()),
                stop_id_token: None,
            },
        )
        .await?;
    let running = transactions
        .start(&NewTransaction {
            charge_point_id: cp,
            evse_number: 1,
            id_token: "DORA-CARD".into(),
            meter_start_wh: EnergyWh(8_500),
            started_at,
            reservation_id: None,
            start_auth_status: Some("Accepted".into()),
        })
        .await?;
    let sample = |measurand: &str, unit: &str, value: f64| NewMeterValue {
        transaction_id: Some(running),
        charge_point_id: cp,
        evse_number: 1,
        sampled_at: Utc::now(),
        measurand: measurand.into(),
        phase: None,
        unit: unit.into(),
        value,
        context: Some("Sample.Periodic".into()),
        location: None,
    };
    transactions
        .add_meter_values(&[
            sample("Energy.Active.Import.Register", "Wh", 12_000.0),
            sample("Power.Active.Import", "W", 7_400.0),
        ])
        .await?;

    let active = app.get("/sessions/active", Some(&dora)).await?;
    assert_eq!(active.status, StatusCode::OK, "{:?}", active.body);
    let session = &active.body["items"][0];
    assert_eq!(session["id"], running);
    assert_eq!(session["charger"], "CP-SESS");
    assert_eq!(session["location"]["name"], "Sol");
    assert_eq!(session["active"], true);
    assert_eq!(
        session["energy_wh"], 3_500,
        "energy so far: 12000 - 8500 Wh"
    );
    assert_eq!(session["power_w"], 7_400);
    let duration = session["duration_s"].as_i64().unwrap_or_default();
    assert!((1_790..=1_900).contains(&duration), "{duration} s");

    let history = app.get("/sessions?limit=1", Some(&dora)).await?;
    assert_eq!(history.body["items"][0]["id"], running, "newest first");
    let cursor = text(&history.body, "next_cursor");
    let older = app
        .get(&format!("/sessions?limit=1&cursor={cursor}"), Some(&dora))
        .await?;
    assert_eq!(older.body["items"][0]["id"], earlier);
    assert_eq!(older.body["items"][0]["energy_wh"], 7_500);
    assert_eq!(older.body["items"][0]["duration_s"], 3_600);
    assert_eq!(older.body["items"][0]["stop_reason"], "EVDisconnected");
    assert_eq!(older.body["next_cursor"], Value::Null);

    let one = app
        .get(&format!("/sessions/{earlier}"), Some(&dora))
        .await?;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.body["active"], false);

    // Eve learns nothing of Dora's sessions, not even that they exist.
    for path in [format!("/sessions/{earlier}"), "/sessions/999999".into()] {
        let answer = app.get(&path, Some(&eve)).await?;
        answer.assert_problem(StatusCode::NOT_FOUND);
        assert_eq!(
            text(&answer.body, "title"),
            text(
                &app.get("/sessions/424242", Some(&eve)).await?.body,
                "title"
            )
        );
    }
    app.post(&format!("/sessions/{running}/stop"), json!({}), Some(&eve))
        .await?
        .assert_problem(StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("/sessions", Some(&eve)).await?.body["items"],
        json!([])
    );
    assert_eq!(
        app.get("/sessions/active", Some(&eve)).await?.body["items"],
        json!([])
    );
    app.get("/sessions", None)
        .await?
        .assert_problem(StatusCode::UNAUTHORIZED);
    Ok(())
}

async fn starting_needs_a_known_connected_charger(app: &TestApp) -> anyhow::Result<()> {
    seed_site(app, "Sol", SOL, "CP-OFF", &[TYPE_2]).await?;
    let dora = app.driver("dora@example.com").await?;
    let invalid = app
        .post(
            "/charging/start",
            json!({"charger": "", "evse": 0, "card": "NOT-MINE"}),
            Some(&dora),
        )
        .await?;
    invalid.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
    let mut fields = invalid.fields();
    fields.sort();
    assert_eq!(fields, ["charger", "evse"]);

    let unknown = app
        .post(
            "/charging/start",
            json!({"charger": "NO-SUCH-CP", "evse": 1}),
            Some(&dora),
        )
        .await?;
    unknown.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unknown.fields(), ["charger"]);
    let no_evse = app
        .post(
            "/charging/start",
            json!({"charger": "CP-OFF", "evse": 7}),
            Some(&dora),
        )
        .await?;
    no_evse.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(no_evse.fields(), ["evse"]);
    let not_my_card = app
        .post(
            "/charging/start",
            json!({"charger": "CP-OFF", "evse": 1, "card": "NOT-MINE"}),
            Some(&dora),
        )
        .await?;
    not_my_card.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(not_my_card.fields(), ["card"]);

    let offline = app
        .post(
            "/charging/start",
            json!({"charger": "CP-OFF", "evse": 1}),
            Some(&dora),
        )
        .await?;
    offline.assert_problem(StatusCode::CONFLICT);
    assert!(
        text(&offline.body, "type").ends_with("charger-offline"),
        "{:?}",
        offline.body
    );
    Ok(())
}

async fn cors_admits_the_website_origin_only(app: &TestApp) -> anyhow::Result<()> {
    let preflight = |origin: &'static str| {
        app.send(
            app.request(Method::OPTIONS, "/charging/start")
                .header(ORIGIN, origin)
                .header(ACCESS_CONTROL_REQUEST_METHOD, "POST")
                .header(
                    ACCESS_CONTROL_REQUEST_HEADERS,
                    "authorization, content-type",
                ),
        )
    };
    let allowed = preflight("https://www.example.com").await?;
    assert!(allowed.status.is_success(), "{:?}", allowed.status);
    assert_eq!(
        allowed.header(ACCESS_CONTROL_ALLOW_ORIGIN.as_str()),
        Some("https://www.example.com")
    );
    let methods = allowed
        .header("access-control-allow-methods")
        .unwrap_or_default()
        .to_ascii_uppercase();
    assert!(methods.contains("POST"), "{methods}");
    let headers = allowed
        .header("access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(headers.contains("authorization"), "{headers}");

    let stranger = preflight("https://evil.example.net").await?;
    assert_eq!(stranger.header(ACCESS_CONTROL_ALLOW_ORIGIN.as_str()), None);

    let simple = app
        .send(
            app.request(Method::GET, "/locations")
                .header(ORIGIN, "https://www.example.com"),
        )
        .await?;
    assert_eq!(
        simple.header(ACCESS_CONTROL_ALLOW_ORIGIN.as_str()),
        Some("https://www.example.com")
    );
    let exposed = simple
        .header("access-control-expose-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        exposed.contains("etag") && exposed.contains("x-request-id"),
        "{exposed}"
    );
    Ok(())
}

async fn rate_limits_count_per_address_driver_and_key(app: &TestApp) -> anyhow::Result<()> {
    // Settings: 6 per address, 3 per driver, 2 per key in a day-long window. Signing up and
    // logging in are the address's first two.
    let dora = app.driver("dora@example.com").await?;
    let key = app
        .post(
            "/api-keys",
            json!({"name": "app", "scopes": ["locations:read"]}),
            Some(&dora),
        )
        .await?;
    let key = text(&key.body, "key");

    let mut remaining = Vec::new();
    for _ in 0..2 {
        let answer = app.get("/locations", Some(&dora)).await?;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.header("ratelimit-limit"), Some("3"));
        remaining.push(answer.header("ratelimit-remaining").map(str::to_owned));
    }
    assert_eq!(remaining, [Some("1".to_owned()), Some("0".to_owned())]);
    let over = app.get("/locations", Some(&dora)).await?;
    over.assert_problem(StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = over
        .header(RETRY_AFTER.as_str())
        .and_then(|value| value.parse().ok())
        .unwrap_or_default();
    assert!((1..=86_400).contains(&retry_after), "{retry_after}");

    let with_key = || {
        app.send(
            app.request(Method::GET, "/locations")
                .header("x-api-key", &key),
        )
    };
    for _ in 0..2 {
        assert_eq!(
            with_key().await?.status,
            StatusCode::OK,
            "the key has its own count"
        );
    }
    with_key()
        .await?
        .assert_problem(StatusCode::TOO_MANY_REQUESTS);

    // Made-up credentials count against the address, like no credentials.
    for attempt in 0..4 {
        let answer = app
            .send(app.request(Method::GET, "/locations").header(
                "x-api-key",
                format!("vfk_{attempt:012x}_{}", "0".repeat(64)),
            ))
            .await?;
        answer.assert_problem(StatusCode::UNAUTHORIZED);
    }
    app.get("/locations", None)
        .await?
        .assert_problem(StatusCode::TOO_MANY_REQUESTS);
    Ok(())
}

mod settings {
    //! Scenarios that need settings of their own.

    use super::*;

    const CORS: &str = "cors_origins = \"https://www.example.com, https://example.com\"";
    const LIMITS: &str = "rate_limit_window = \"1d\"\nrate_limit_per_ip = 6\n\
                          rate_limit_per_user = 3\nrate_limit_per_key = 2";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_cors() -> anyhow::Result<()> {
        let app = TestApp::spawn_with(Backend::Sqlite, CORS).await?;
        cors_admits_the_website_origin_only(&app).await?;
        app.stop().await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mariadb_cors() -> anyhow::Result<()> {
        let app = TestApp::spawn_with(Backend::MariaDb, CORS).await?;
        cors_admits_the_website_origin_only(&app).await?;
        app.stop().await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_rate_limits() -> anyhow::Result<()> {
        let app = TestApp::spawn_with(Backend::Sqlite, LIMITS).await?;
        rate_limits_count_per_address_driver_and_key(&app).await?;
        app.stop().await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mariadb_rate_limits() -> anyhow::Result<()> {
        let app = TestApp::spawn_with(Backend::MariaDb, LIMITS).await?;
        rate_limits_count_per_address_driver_and_key(&app).await?;
        app.stop().await
    }
}

on_both_backends!(
    finds_locations_by_distance_and_box_with_filters,
    pages_follow_the_cursor,
    names_every_invalid_search_parameter,
    chargers_answer_304_until_they_change,
    drivers_add_list_and_block_their_cards,
    api_keys_reach_only_their_scopes_until_revoked,
    sessions_are_the_drivers_own,
    starting_needs_a_known_connected_charger,
);
