//! The storage layer against real databases. Every `check_*` runs twice: on a fresh SQLite file
//! in a temporary directory and on a fresh MariaDB/MySQL database (see
//! `voltfleet_core::testing::TestMySql`; `make test` starts the server).

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;
use voltfleet_core::credentials::ApiKey;
use voltfleet_core::domain::{
    AuditOutcome, ChargePointId, ConnectorFormat, EnergyWh, IdTokenStatus, PowerType,
    RegistrationStatus, Role,
};
use voltfleet_core::storage::ChargePointFilter;
use voltfleet_core::storage::{
    BootInfo, Database, NewApiKey, NewAuditEntry, NewChargePoint, NewConnector, NewDriver,
    NewDriverSession, NewEvse, NewIdToken, NewLocation, NewMeterValue, NewOperator,
    NewOperatorSession, NewTransaction, StatusReport, StopTransaction, StorageError,
};
use voltfleet_core::testing::{TestMySql, mysql_settings, sqlite_settings};

#[macro_use]
mod common;

on_both_backends!(
    check_migrations_apply_once,
    check_ping_and_describe,
    check_locations,
    check_charge_points,
    check_evses_and_connectors,
    check_id_tokens,
    check_transactions,
    check_meter_values_come_back_in_sampling_order,
    check_timestamps_are_utc_to_the_millisecond,
    check_operators,
    check_operator_sessions,
    check_charger_search_and_dashboard_figures,
    check_ocpp_message_log_keeps_the_newest,
    check_audit_search_and_operator_roles,
    check_id_token_search_and_terms,
    check_operator_api_keys_are_listed_without_drivers_keys,
    check_api_keys,
    check_drivers_and_their_sessions,
    check_audit_log_lists_newest_first,
);

async fn migrated(db: &Database) {
    db.migrate().await.expect("migrations apply");
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("an RFC 3339 test timestamp")
        .with_timezone(&Utc)
}

fn cp_id(text: &str) -> ChargePointId {
    text.parse().expect("a valid charge point identity")
}

fn demo_location(name: &str) -> NewLocation {
    NewLocation {
        name: name.to_string(),
        address: "Calle Mayor 1".into(),
        city: "Madrid".into(),
        postal_code: "28013".into(),
        country: "ESP".parse().expect("a country"),
        latitude: 40.416775,
        longitude: -3.703790,
        time_zone: "Europe/Madrid".into(),
        opening_hours: None,
        tariff_text: None,
    }
}

async fn charge_point(db: &Database, identity: &str) -> i64 {
    db.charge_points()
        .create(&NewChargePoint {
            identity: cp_id(identity),
            location_id: None,
            ocpp_password_hash: None,
            registration_status: RegistrationStatus::Accepted,
        })
        .await
        .expect("the charge point is created")
}

#[track_caller]
fn assert_not_found(result: Result<impl std::fmt::Debug, StorageError>, entity: &str) {
    match result {
        Err(StorageError::NotFound { entity: e, key }) => {
            assert_eq!(e, entity, "NotFound names the wrong entity (key {key})")
        }
        other => panic!("expected NotFound for {entity}, got {other:?}"),
    }
}

#[track_caller]
fn assert_conflict(result: Result<impl std::fmt::Debug, StorageError>, entity: &str) {
    match result {
        Err(StorageError::Conflict { entity: e, key }) => {
            assert_eq!(e, entity, "Conflict names the wrong entity (key {key})")
        }
        other => panic!("expected Conflict for {entity}, got {other:?}"),
    }
}

#[track_caller]
fn assert_recent(at: DateTime<Utc>) {
    let age = Utc::now() - at;
    assert!(
        age >= chrono::Duration::zero() && age < chrono::Duration::minutes(5),
        "{at} is not the time of the test ({age})"
    );
}

async fn check_migrations_apply_once(db: &Database) {
    let pending = db
        .pending_migrations()
        .await
        .expect("pending migrations are listed");
    assert_eq!(
        pending,
        vec![1, 2, 3, 4, 5],
        "a fresh database lacks every migration"
    );

    let applied = db.migrate().await.expect("migrations apply");
    assert_eq!(applied, vec![1, 2, 3, 4, 5]);
    assert!(db.pending_migrations().await.expect("listed").is_empty());

    let again = db.migrate().await.expect("a second run succeeds");
    assert!(again.is_empty(), "a second run applied {again:?}");
    assert!(
        db.locations()
            .list()
            .await
            .expect("the schema exists")
            .is_empty()
    );
}

async fn check_ping_and_describe(db: &Database) {
    db.ping().await.expect("the database answers");
    let described = db.describe();
    match db.backend_name() {
        "sqlite" => assert!(
            described.starts_with("sqlite:") && described.ends_with("voltfleet.db"),
            "{described}"
        ),
        "mysql" => assert!(
            described.starts_with("mysql://127.0.0.1:3306/vf_test_"),
            "{described}"
        ),
        other => panic!("unknown backend {other}"),
    }
    assert!(!described.contains('@'), "credentials in {described}");
}

async fn check_locations(db: &Database) {
    migrated(db).await;
    let locations = db.locations();
    let id = locations
        .create(&demo_location("Demo Plaza"))
        .await
        .expect("created");
    let other = locations
        .create(&demo_location("Alameda"))
        .await
        .expect("created");
    assert_ne!(id, other);

    let stored = locations.get(id).await.expect("found by id");
    let expected = demo_location("Demo Plaza");
    assert_eq!(stored.id, id);
    assert_eq!(stored.name, expected.name);
    assert_eq!(stored.address, expected.address);
    assert_eq!(stored.city, expected.city);
    assert_eq!(stored.postal_code, expected.postal_code);
    assert_eq!(stored.country.as_str(), "ESP");
    assert_eq!(stored.latitude, expected.latitude);
    assert_eq!(stored.longitude, expected.longitude);
    assert_eq!(stored.time_zone, expected.time_zone);
    assert_recent(stored.created_at);
    assert_eq!(stored.created_at, stored.updated_at);

    let by_name = locations
        .find_by_name("demo plaza")
        .await
        .expect("looked up");
    assert_eq!(
        by_name,
        Some(stored.clone()),
        "names match in any letter case"
    );
    assert_eq!(
        locations.find_by_name("Nowhere").await.expect("looked up"),
        None
    );

    let names: Vec<_> = locations
        .list()
        .await
        .expect("listed")
        .into_iter()
        .map(|l| l.name)
        .collect();
    assert_eq!(names, ["Alameda", "Demo Plaza"]);

    assert_conflict(
        locations.create(&demo_location("DEMO PLAZA")).await,
        "location",
    );
    assert_not_found(locations.get(id + 1000).await, "location");
}

async fn check_charge_points(db: &Database) {
    migrated(db).await;
    let location = db
        .locations()
        .create(&demo_location("Demo Plaza"))
        .await
        .expect("created");
    let charge_points = db.charge_points();
    let id = charge_points
        .create(&NewChargePoint {
            identity: cp_id("DEMO-CP-1"),
            location_id: Some(location),
            ocpp_password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
            registration_status: RegistrationStatus::Pending,
        })
        .await
        .expect("created");

    let stored = charge_points.get(id).await.expect("found by id");
    assert_eq!(stored.identity, cp_id("DEMO-CP-1"));
    assert_eq!(stored.location_id, Some(location));
    assert_eq!(
        stored.ocpp_password_hash.as_deref(),
        Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA")
    );
    assert_eq!(stored.registration_status, RegistrationStatus::Pending);
    assert_eq!(
        (stored.vendor.as_deref(), stored.last_seen_at),
        (None, None)
    );
    assert_recent(stored.created_at);

    let found = charge_points
        .find_by_identity(&cp_id("DEMO-CP-1"))
        .await
        .expect("looked up");
    assert_eq!(found.as_ref().map(|cp| cp.id), Some(id));
    let other_case = charge_points
        .find_by_identity(&cp_id("demo-cp-1"))
        .await
        .expect("looked up");
    assert_eq!(
        other_case, None,
        "a charger must use its identity as registered"
    );
    assert_conflict(
        charge_points
            .create(&NewChargePoint {
                identity: cp_id("Demo-CP-1"),
                location_id: None,
                ocpp_password_hash: None,
                registration_status: RegistrationStatus::Accepted,
            })
            .await,
        "charge point",
    );
    assert_not_found(
        charge_points
            .create(&NewChargePoint {
                identity: cp_id("CP-NOWHERE"),
                location_id: Some(location + 1000),
                ocpp_password_hash: None,
                registration_status: RegistrationStatus::Accepted,
            })
            .await,
        "location",
    );

    charge_points
        .set_registration_status(id, RegistrationStatus::Accepted)
        .await
        .expect("status set");
    // Setting the same value again still finds the row.
    charge_points
        .set_registration_status(id, RegistrationStatus::Accepted)
        .await
        .expect("status set again");
    let booted_at = utc("2025-06-01T08:30:00.250Z");
    charge_points
        .record_boot(
            id,
            &BootInfo {
                vendor: "VoltVendor".into(),
                model: "VV-22".into(),
                serial_number: Some("SN-0001".into()),
                firmware_version: Some("1.4.2".into()),
                ocpp_version: Some("1.6".into()),
                ..BootInfo::default()
            },
            booted_at,
        )
        .await
        .expect("boot recorded");
    let stored = charge_points.get(id).await.expect("found");
    assert_eq!(stored.registration_status, RegistrationStatus::Accepted);
    assert_eq!(stored.vendor.as_deref(), Some("VoltVendor"));
    assert_eq!(stored.model.as_deref(), Some("VV-22"));
    assert_eq!(stored.serial_number.as_deref(), Some("SN-0001"));
    assert_eq!(stored.firmware_version.as_deref(), Some("1.4.2"));
    assert_eq!(stored.ocpp_version.as_deref(), Some("1.6"));
    assert_eq!(stored.last_seen_at, Some(booted_at));

    let heartbeat = utc("2025-06-01T08:35:00Z");
    charge_points
        .touch_last_seen(id, heartbeat)
        .await
        .expect("touched");
    assert_eq!(
        charge_points.get(id).await.expect("found").last_seen_at,
        Some(heartbeat)
    );

    let second = charge_point(db, "DEMO-CP-2").await;
    let identities: Vec<_> = charge_points
        .list()
        .await
        .expect("listed")
        .into_iter()
        .map(|cp| (cp.id, cp.identity.to_string()))
        .collect();
    assert_eq!(
        identities,
        [
            (id, "DEMO-CP-1".to_string()),
            (second, "DEMO-CP-2".to_string())
        ]
    );

    assert_not_found(charge_points.get(id + 1000).await, "charge point");
    assert_not_found(
        charge_points
            .set_registration_status(id + 1000, RegistrationStatus::Rejected)
            .await,
        "charge point",
    );
    assert_not_found(
        charge_points.touch_last_seen(id + 1000, heartbeat).await,
        "charge point",
    );

    // Over-long text is refused on both backends (SQLite by CHECK, MySQL by strict mode),
    // never silently cut.
    let too_long = BootInfo {
        vendor: "V".repeat(51),
        model: "VV-22".into(),
        serial_number: None,
        firmware_version: None,
        ocpp_version: None,
        ..BootInfo::default()
    };
    match charge_points.record_boot(id, &too_long, heartbeat).await {
        Err(StorageError::Other(message)) => assert!(message.contains("charge point"), "{message}"),
        other => panic!("expected the database to refuse a 51-character vendor, got {other:?}"),
    }
    assert_eq!(
        charge_points
            .get(id)
            .await
            .expect("found")
            .vendor
            .as_deref(),
        Some("VoltVendor")
    );
}

async fn check_evses_and_connectors(db: &Database) {
    migrated(db).await;
    let cp = charge_point(db, "CP-EVSE").await;
    let charge_points = db.charge_points();
    let second = charge_points
        .add_evse(&NewEvse {
            charge_point_id: cp,
            evse_number: 2,
        })
        .await
        .expect("EVSE 2 added");
    let first = charge_points
        .add_evse(&NewEvse {
            charge_point_id: cp,
            evse_number: 1,
        })
        .await
        .expect("EVSE 1 added");
    assert_conflict(
        charge_points
            .add_evse(&NewEvse {
                charge_point_id: cp,
                evse_number: 1,
            })
            .await,
        "EVSE",
    );
    assert_not_found(
        charge_points
            .add_evse(&NewEvse {
                charge_point_id: cp + 1000,
                evse_number: 1,
            })
            .await,
        "charge point",
    );

    let evses = charge_points.evses(cp).await.expect("listed");
    let numbers: Vec<_> = evses.iter().map(|e| (e.id, e.evse_number)).collect();
    assert_eq!(numbers, [(first, 1), (second, 2)]);
    assert!(
        evses
            .iter()
            .all(|e| e.status == "Unknown" && e.status_updated_at.is_none())
    );

    let t2 = NewConnector {
        evse_id: first,
        connector_number: 1,
        standard: "IEC_62196_T2".into(),
        format: ConnectorFormat::Socket,
        power_type: PowerType::Ac3Phase,
        max_voltage: 400,
        max_amperage: 32,
        max_power_w: Some(22_000),
    };
    let connector = charge_points
        .add_connector(&t2)
        .await
        .expect("connector added");
    let ccs = NewConnector {
        connector_number: 2,
        standard: "IEC_62196_T2_COMBO".into(),
        format: ConnectorFormat::Cable,
        power_type: PowerType::Dc,
        max_voltage: 920,
        max_amperage: 500,
        max_power_w: None,
        ..t2.clone()
    };
    charge_points
        .add_connector(&ccs)
        .await
        .expect("second connector added");
    assert_conflict(charge_points.add_connector(&t2).await, "connector");
    assert_not_found(
        charge_points
            .add_connector(&NewConnector {
                evse_id: first + 1000,
                ..t2.clone()
            })
            .await,
        "EVSE",
    );

    let connectors = charge_points.connectors(first).await.expect("listed");
    assert_eq!(connectors.len(), 2);
    let stored = &connectors[0];
    assert_eq!(stored.id, connector);
    assert_eq!(
        (
            stored.evse_id,
            stored.connector_number,
            stored.standard.as_str()
        ),
        (first, 1, "IEC_62196_T2")
    );
    assert_eq!(
        (stored.format, stored.power_type),
        (ConnectorFormat::Socket, PowerType::Ac3Phase)
    );
    assert_eq!(
        (stored.max_voltage, stored.max_amperage, stored.max_power_w),
        (400, 32, Some(22_000))
    );
    assert_eq!(
        (
            connectors[1].format,
            connectors[1].power_type,
            connectors[1].max_power_w
        ),
        (ConnectorFormat::Cable, PowerType::Dc, None)
    );
    assert!(
        charge_points
            .connectors(second)
            .await
            .expect("listed")
            .is_empty()
    );

    // StatusNotification updates a known EVSE and adds one the charger announces.
    let at = utc("2025-06-01T09:00:00.125Z");
    let report = |evse: i32, status: &str| StatusReport {
        charge_point_id: cp,
        connector_id: evse,
        status: status.into(),
        error_code: "NoError".into(),
        info: None,
        vendor_id: None,
        vendor_error_code: None,
        reported_at: Some(at),
        received_at: at,
    };
    charge_points
        .record_status(&report(1, "Charging"))
        .await
        .expect("status set");
    charge_points
        .record_status(&report(3, "Available"))
        .await
        .expect("EVSE 3 announced");
    let statuses: Vec<_> = charge_points
        .evses(cp)
        .await
        .expect("listed")
        .into_iter()
        .map(|e| (e.evse_number, e.status, e.status_updated_at))
        .collect();
    assert_eq!(
        statuses,
        [
            (1, "Charging".to_string(), Some(at)),
            (2, "Unknown".to_string(), None),
            (3, "Available".to_string(), Some(at)),
        ]
    );
    assert_not_found(
        charge_points
            .record_status(&StatusReport {
                charge_point_id: cp + 1000,
                ..report(1, "Available")
            })
            .await,
        "charge point",
    );
}

async fn check_id_tokens(db: &Database) {
    migrated(db).await;
    let tokens = db.id_tokens();
    let expires = utc("2030-01-01T00:00:00Z");
    let id = tokens
        .create(&NewIdToken {
            token: "DEMO-TAG-1".into(),
            token_type: "RFID".into(),
            status: IdTokenStatus::Accepted,
            expires_at: Some(expires),
            group_token: Some("FLEET-A".into()),
            driver_id: None,
            label: None,
        })
        .await
        .expect("created");

    let stored = tokens
        .find("demo-tag-1")
        .await
        .expect("looked up")
        .expect("found in any case");
    assert_eq!(stored.id, id);
    assert_eq!(stored.token, "DEMO-TAG-1");
    assert_eq!(stored.token_type, "RFID");
    assert_eq!(stored.status, IdTokenStatus::Accepted);
    assert_eq!(stored.expires_at, Some(expires));
    assert_eq!(stored.group_token.as_deref(), Some("FLEET-A"));
    assert_recent(stored.created_at);
    assert_eq!(
        stored.status_at(utc("2029-12-31T23:59:59Z")),
        IdTokenStatus::Accepted
    );
    assert_eq!(stored.status_at(expires), IdTokenStatus::Expired);

    tokens
        .set_status("DEMO-TAG-1", IdTokenStatus::Blocked)
        .await
        .expect("blocked");
    let blocked = tokens
        .find("DEMO-TAG-1")
        .await
        .expect("looked up")
        .expect("found");
    assert_eq!(blocked.status, IdTokenStatus::Blocked);

    assert_conflict(
        tokens
            .create(&NewIdToken {
                token: "demo-tag-1".into(),
                token_type: "RFID".into(),
                status: IdTokenStatus::Accepted,
                expires_at: None,
                group_token: None,
                driver_id: None,
                label: None,
            })
            .await,
        "ID token",
    );
    assert_eq!(tokens.find("UNKNOWN").await.expect("looked up"), None);
    assert_not_found(
        tokens.set_status("UNKNOWN", IdTokenStatus::Invalid).await,
        "ID token",
    );
}

async fn check_transactions(db: &Database) {
    migrated(db).await;
    let cp = charge_point(db, "CP-TX").await;
    let transactions = db.transactions();
    let start = NewTransaction {
        charge_point_id: cp,
        evse_number: 1,
        id_token: "DEMO-TAG-1".into(),
        meter_start_wh: EnergyWh(1_000),
        started_at: utc("2025-06-01T10:00:00Z"),
        reservation_id: None,
        start_auth_status: None,
    };
    let id = transactions.start(&start).await.expect("started");
    assert_eq!(
        transactions.start(&start).await.expect("resent start"),
        id,
        "a resent start gets the same id"
    );
    assert_conflict(
        transactions
            .start(&NewTransaction {
                meter_start_wh: EnergyWh(5),
                ..start.clone()
            })
            .await,
        "transaction",
    );
    let next = transactions
        .start(&NewTransaction {
            evse_number: 2,
            ..start.clone()
        })
        .await
        .expect("another EVSE starts at the same instant");
    assert!(next > id, "ids grow: {next} after {id}");
    assert_not_found(
        transactions
            .start(&NewTransaction {
                charge_point_id: cp + 1000,
                ..start.clone()
            })
            .await,
        "charge point",
    );

    let open = transactions.get(id).await.expect("found");
    assert_eq!((open.charge_point_id, open.evse_number), (cp, 1));
    assert_eq!(open.id_token, "DEMO-TAG-1");
    assert_eq!(open.meter_start_wh, EnergyWh(1_000));
    assert_eq!(open.started_at, start.started_at);
    assert_eq!(
        (
            open.meter_stop_wh,
            open.stopped_at,
            open.stop_reason.as_deref()
        ),
        (None, None, None)
    );
    assert_eq!(open.energy(), None);
    assert_recent(open.created_at);

    let stop = StopTransaction {
        meter_stop_wh: EnergyWh(8_500),
        stopped_at: utc("2025-06-01T11:15:30.5Z"),
        stop_reason: Some("EVDisconnected".into()),
        stop_id_token: None,
    };
    transactions.stop(id, &stop).await.expect("stopped");
    let later = StopTransaction {
        meter_stop_wh: EnergyWh(9_000),
        ..stop.clone()
    };
    transactions
        .stop(id, &later)
        .await
        .expect("a resent stop is accepted");
    let stopped = transactions.get(id).await.expect("found");
    assert_eq!(
        stopped.meter_stop_wh,
        Some(EnergyWh(8_500)),
        "the first stop wins"
    );
    assert_eq!(stopped.stopped_at, Some(stop.stopped_at));
    assert_eq!(stopped.stop_reason.as_deref(), Some("EVDisconnected"));
    assert_eq!(stopped.energy(), Some(EnergyWh(7_500)));

    assert_not_found(transactions.get(id + 1000).await, "transaction");
    assert_not_found(transactions.stop(id + 1000, &stop).await, "transaction");
}

async fn check_meter_values_come_back_in_sampling_order(db: &Database) {
    migrated(db).await;
    let cp = charge_point(db, "CP-METER").await;
    let transactions = db.transactions();
    let tx = transactions
        .start(&NewTransaction {
            charge_point_id: cp,
            evse_number: 1,
            id_token: "TAG".into(),
            meter_start_wh: EnergyWh(0),
            started_at: utc("2025-06-01T10:00:00Z"),
            reservation_id: None,
            start_auth_status: None,
        })
        .await
        .expect("started");
    let sample = |at: &str, value: f64| NewMeterValue {
        transaction_id: Some(tx),
        charge_point_id: cp,
        evse_number: 1,
        sampled_at: utc(at),
        measurand: "Energy.Active.Import.Register".into(),
        phase: None,
        unit: "Wh".into(),
        value,
        context: Some("Sample.Periodic".into()),
        location: Some("Outlet".into()),
    };
    // Out of order, with a whole second next to fractions of it (which sort wrongly as text
    // unless every timestamp has the same width).
    let batch = [
        sample("2025-06-01T10:00:01Z", 30.0),
        sample("2025-06-01T10:00:00.500Z", 20.0),
        sample("2025-06-01T10:00:00Z", 10.0),
        sample("2025-06-01T10:00:00.999Z", 25.5),
    ];
    transactions.add_meter_values(&batch).await.expect("stored");
    let main_meter = NewMeterValue {
        transaction_id: None,
        evse_number: 0,
        phase: Some("L1".into()),
        unit: "V".into(),
        measurand: "Voltage".into(),
        context: None,
        location: None,
        ..sample("2025-06-01T10:00:00.250Z", 230.1)
    };
    transactions
        .add_meter_values(&[main_meter])
        .await
        .expect("stored without a transaction");
    transactions
        .add_meter_values(&[])
        .await
        .expect("an empty batch is fine");

    let values = transactions.meter_values(tx).await.expect("listed");
    let seen: Vec<_> = values.iter().map(|v| (v.sampled_at, v.value)).collect();
    assert_eq!(
        seen,
        [
            (utc("2025-06-01T10:00:00Z"), 10.0),
            (utc("2025-06-01T10:00:00.500Z"), 20.0),
            (utc("2025-06-01T10:00:00.999Z"), 25.5),
            (utc("2025-06-01T10:00:01Z"), 30.0),
        ]
    );
    let first = &values[0];
    assert_eq!(
        (
            first.transaction_id,
            first.charge_point_id,
            first.evse_number
        ),
        (Some(tx), cp, 1)
    );
    assert_eq!(first.measurand, "Energy.Active.Import.Register");
    assert_eq!((first.phase.as_deref(), first.unit.as_str()), (None, "Wh"));
    assert_eq!(first.context.as_deref(), Some("Sample.Periodic"));
    assert_eq!(first.location.as_deref(), Some("Outlet"));

    // A batch naming a transaction that does not exist is refused whole.
    let bad = [
        sample("2025-06-01T10:00:02Z", 40.0),
        NewMeterValue {
            transaction_id: Some(tx + 1000),
            ..sample("2025-06-01T10:00:03Z", 50.0)
        },
    ];
    assert_not_found(
        transactions.add_meter_values(&bad).await,
        "charge point or transaction",
    );
    assert_eq!(
        transactions.meter_values(tx).await.expect("listed").len(),
        4,
        "nothing of the bad batch stays"
    );
}

async fn check_timestamps_are_utc_to_the_millisecond(db: &Database) {
    migrated(db).await;
    let cp = charge_point(db, "CP-TIME").await;
    // Nanoseconds are cut to milliseconds, never rounded up; the instant is the same whatever
    // offset the caller's time carried.
    let madrid = chrono::FixedOffset::east_opt(2 * 3600).expect("a valid offset");
    let started = madrid
        .with_ymd_and_hms(2025, 3, 30, 4, 59, 59)
        .single()
        .expect("a valid time")
        .with_timezone(&Utc)
        + chrono::Duration::nanoseconds(123_987_654);
    let id = db
        .transactions()
        .start(&NewTransaction {
            charge_point_id: cp,
            evse_number: 1,
            id_token: "TAG".into(),
            meter_start_wh: EnergyWh(0),
            started_at: started,
            reservation_id: None,
            start_auth_status: None,
        })
        .await
        .expect("started");
    let stored = db.transactions().get(id).await.expect("found");
    assert_eq!(stored.started_at, utc("2025-03-30T02:59:59.123Z"));
    assert_eq!(stored.started_at.timezone(), Utc);

    // Far past and far future survive too.
    for at in [
        utc("1999-12-31T23:59:59.999Z"),
        utc("2099-01-01T00:00:00.001Z"),
    ] {
        db.charge_points()
            .touch_last_seen(cp, at)
            .await
            .expect("touched");
        assert_eq!(
            db.charge_points()
                .get(cp)
                .await
                .expect("found")
                .last_seen_at,
            Some(at)
        );
    }
}

async fn check_operators(db: &Database) {
    migrated(db).await;
    let operators = db.operators();
    // A real hash is not needed to test storage; credentials.rs tests hashing.
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";
    let id = operators
        .create(&NewOperator {
            email: " Admin@Example.com ".into(),
            display_name: "Ada Admin".into(),
            password_hash: hash.into(),
            role: Role::Admin,
        })
        .await
        .expect("created");

    let stored = operators
        .find_by_email("ADMIN@example.COM")
        .await
        .expect("looked up")
        .expect("found in any case");
    assert_eq!(stored.id, id);
    assert_eq!(
        stored.email, "admin@example.com",
        "stored trimmed and lower-case"
    );
    assert_eq!(stored.display_name, "Ada Admin");
    assert_eq!(stored.password_hash, hash);
    assert_eq!(stored.role, Role::Admin);
    assert!(!stored.disabled);
    assert_recent(stored.created_at);
    assert!(
        !format!("{stored:?}").contains(hash),
        "the hash stays out of Debug"
    );
    assert_eq!(operators.get(id).await.expect("found by id"), stored);

    operators.set_disabled(id, true).await.expect("disabled");
    assert!(operators.get(id).await.expect("found").disabled);

    let viewer = operators
        .create(&NewOperator {
            email: "viewer@example.com".into(),
            display_name: "Vic Viewer".into(),
            password_hash: hash.into(),
            role: Role::Viewer,
        })
        .await
        .expect("created");
    assert_eq!(
        operators.get(viewer).await.expect("found").role,
        Role::Viewer
    );

    assert_conflict(
        operators
            .create(&NewOperator {
                email: "ADMIN@EXAMPLE.COM".into(),
                display_name: "Impostor".into(),
                password_hash: hash.into(),
                role: Role::Operator,
            })
            .await,
        "operator",
    );
    assert_eq!(
        operators
            .find_by_email("nobody@example.com")
            .await
            .expect("looked up"),
        None
    );
    assert_not_found(operators.get(id + 1000).await, "operator");
    assert_not_found(operators.set_disabled(id + 1000, true).await, "operator");
}

async fn check_api_keys(db: &Database) {
    migrated(db).await;
    let operator = db
        .operators()
        .create(&NewOperator {
            email: "ops@example.com".into(),
            display_name: "Ops".into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            role: Role::Operator,
        })
        .await
        .expect("operator created");
    let keys = db.api_keys();
    let (plain, prefix, hash) = ApiKey::generate();
    let new = NewApiKey {
        name: "reporting".into(),
        prefix: prefix.clone(),
        key_hash: hash.clone(),
        scopes: vec!["sessions:read".into(), "locations:read".into()],
        operator_id: Some(operator),
        driver_id: None,
    };
    let id = keys.create(&new).await.expect("created");

    let presented = ApiKey::parse(&plain).expect("well formed");
    let stored = keys
        .find_by_prefix(presented.prefix())
        .await
        .expect("looked up")
        .expect("found");
    assert_eq!(stored.id, id);
    assert_eq!(stored.name, "reporting");
    assert!(
        presented.matches(&stored.key_hash),
        "the presented key matches its stored hash"
    );
    assert!(stored.has_scope("sessions:read") && stored.has_scope("locations:read"));
    assert!(!stored.has_scope("sessions"));
    assert_eq!(stored.operator_id, Some(operator));
    assert_recent(stored.created_at);
    assert_eq!((stored.last_used_at, stored.revoked_at), (None, None));
    assert!(!stored.is_revoked());

    let used = utc("2025-06-01T12:00:00.042Z");
    keys.touch_last_used(id, used).await.expect("touched");
    let revoked = utc("2025-06-02T00:00:00Z");
    keys.revoke(id, revoked).await.expect("revoked");
    keys.revoke(id, utc("2025-06-03T00:00:00Z"))
        .await
        .expect("revoked again");
    let stored = keys
        .find_by_prefix(&prefix)
        .await
        .expect("looked up")
        .expect("still found");
    assert_eq!(stored.last_used_at, Some(used));
    assert_eq!(
        stored.revoked_at,
        Some(revoked),
        "the first revocation time stays"
    );
    assert!(stored.is_revoked());

    assert_conflict(keys.create(&new).await, "API key");
    let (_, other_prefix, other_hash) = ApiKey::generate();
    assert_not_found(
        keys.create(&NewApiKey {
            prefix: other_prefix.clone(),
            key_hash: other_hash.clone(),
            operator_id: Some(operator + 1000),
            ..new.clone()
        })
        .await,
        "operator or driver",
    );
    let system_key = keys
        .create(&NewApiKey {
            prefix: other_prefix,
            key_hash: other_hash,
            operator_id: None,
            scopes: vec![],
            ..new.clone()
        })
        .await
        .expect("a key without an operator");
    assert_ne!(system_key, id);
    assert_eq!(
        keys.find_by_prefix("000000000000")
            .await
            .expect("looked up"),
        None
    );
    assert_not_found(keys.revoke(id + 1000, revoked).await, "API key");
    assert_not_found(keys.touch_last_used(id + 1000, used).await, "API key");
}

async fn check_audit_log_lists_newest_first(db: &Database) {
    migrated(db).await;
    let audit = db.audit();
    let entry = |at: &str, action: &str, outcome| NewAuditEntry {
        occurred_at: utc(at),
        actor: "operator:admin@example.com".into(),
        action: action.into(),
        target: "charge_point:DEMO-CP-1".into(),
        details: json!({ "action": action, "fields": ["registration_status"], "n": 1 }),
        outcome,
    };
    // Recorded out of time order; two share an instant and then the later insert counts newer.
    audit
        .record(&entry(
            "2025-06-01T10:00:00Z",
            "second",
            AuditOutcome::Success,
        ))
        .await
        .expect("recorded");
    audit
        .record(&entry(
            "2025-06-01T09:00:00Z",
            "first",
            AuditOutcome::Denied,
        ))
        .await
        .expect("recorded");
    audit
        .record(&entry(
            "2025-06-01T11:00:00Z",
            "third",
            AuditOutcome::Failure,
        ))
        .await
        .expect("recorded");
    audit
        .record(&entry(
            "2025-06-01T11:00:00Z",
            "fourth",
            AuditOutcome::Success,
        ))
        .await
        .expect("recorded");

    let recent = audit.recent(3).await.expect("listed");
    let actions: Vec<_> = recent.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["fourth", "third", "second"]);
    let third = &recent[1];
    assert_eq!(third.occurred_at, utc("2025-06-01T11:00:00Z"));
    assert_eq!(third.actor, "operator:admin@example.com");
    assert_eq!(third.target, "charge_point:DEMO-CP-1");
    assert_eq!(third.outcome, AuditOutcome::Failure);
    assert_eq!(
        third.details.0,
        json!({ "action": "third", "fields": ["registration_status"], "n": 1 })
    );
    assert_eq!(audit.recent(100).await.expect("listed").len(), 4);
    assert!(audit.recent(0).await.expect("listed").is_empty());
}

#[tokio::test]
async fn sqlite_creates_its_directory_and_file_with_wal_and_foreign_keys() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data_dir = dir.path().join("nested").join("data");
    let db = Database::connect(&sqlite_settings(&data_dir), &data_dir)
        .await
        .expect("opens");
    let file = data_dir.join("voltfleet.db");
    assert!(file.is_file(), "{} was not created", file.display());
    assert_eq!(db.describe(), format!("sqlite:{}", file.display()));
    assert_eq!(db.backend_name(), "sqlite");
    let Database::Sqlite(pool) = &db else {
        panic!("expected SQLite, got {db:?}")
    };
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(pool)
        .await
        .expect("pragma");
    assert_eq!(mode, "wal");
    let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(pool)
        .await
        .expect("pragma");
    assert_eq!(foreign_keys, 1);
    db.close().await;
}

#[tokio::test]
async fn an_unreachable_mysql_fails_at_once_naming_where_but_not_the_password() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let mut settings = mysql_settings(&format!(
        "mysql://voltfleet:s3cret-Pa55@127.0.0.1:{port}/fleet"
    ));
    settings.acquire_timeout = Duration::from_secs(30);
    let started = Instant::now();
    let err = Database::connect(&settings, Path::new("unused"))
        .await
        .expect_err("nothing listens there");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a refused connection waited {:?}",
        started.elapsed()
    );
    assert!(err.is_unavailable(), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(message.contains("fleet"), "{message}");
    assert!(
        !message.contains("s3cret-Pa55"),
        "password leaked: {message}"
    );
    assert!(
        !format!("{err:?}").contains("s3cret-Pa55"),
        "password leaked: {err:?}"
    );
}

#[tokio::test]
async fn a_wrong_mysql_password_says_to_check_the_credentials() {
    let test_db = TestMySql::create().await.expect("a fresh MySQL database");
    let (_, server) = test_db
        .url
        .split_once('@')
        .expect("the test URL names a user");
    let url = format!("mysql://vf_no_such_user:s3cret-Pa55@{server}");
    let err = Database::connect(&mysql_settings(&url), Path::new("unused"))
        .await
        .expect_err("refused");
    test_db.drop_database().await.expect("dropped");
    assert!(err.is_unavailable(), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("user and password"), "{message}");
    assert!(message.contains(&test_db.name), "{message}");
    assert!(
        !message.contains("s3cret-Pa55"),
        "password leaked: {message}"
    );
}

async fn check_drivers_and_their_sessions(db: &Database) {
    migrated(db).await;
    let drivers = db.drivers();
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";
    let new = |email: &str| NewDriver {
        email: email.into(),
        name: "Dora Driver".into(),
        password_hash: hash.into(),
    };
    let id = drivers
        .create(&new(" Dora@Example.com "))
        .await
        .expect("created");
    let found = drivers
        .find_by_email("DORA@example.COM")
        .await
        .expect("read")
        .expect("found in any letter case");
    assert_eq!((found.id, found.email.as_str()), (id, "dora@example.com"));
    assert_conflict(drivers.create(&new("dora@EXAMPLE.com")).await, "driver");
    assert!(!format!("{found:?}").contains("argon2"), "hash in Debug");
    drivers
        .set_password_hash(id, "new-hash")
        .await
        .expect("updated");
    assert_eq!(
        drivers.get(id).await.expect("read").password_hash,
        "new-hash"
    );
    assert_not_found(drivers.get(id + 100).await, "driver");

    let session = |chain: &str, token: char| NewDriverSession {
        driver_id: id,
        chain: chain.repeat(32),
        token_hash: token.to_string().repeat(64),
        user_agent: Some("test".into()),
        expires_at: Utc::now() + chrono::Duration::days(30),
    };
    let first = drivers
        .create_session(&session("a", '1'))
        .await
        .expect("created");
    let second = drivers
        .create_session(&session("a", '2'))
        .await
        .expect("created");
    let other = drivers
        .create_session(&session("b", '3'))
        .await
        .expect("created");
    let stored = drivers
        .find_session_by_token_hash(&"1".repeat(64))
        .await
        .expect("read")
        .expect("found");
    assert!(stored.is_active(Utc::now()));
    assert!(
        drivers
            .rotate_session(first, second, Utc::now())
            .await
            .expect("rotated")
    );
    assert!(
        !drivers
            .rotate_session(first, second, Utc::now())
            .await
            .expect("no second rotation")
    );
    let rotated = drivers
        .find_session(first)
        .await
        .expect("read")
        .expect("found");
    assert_eq!(rotated.replaced_by, Some(second));
    assert!(!rotated.is_active(Utc::now()));
    assert_eq!(
        drivers
            .revoke_chain(&"a".repeat(32), Utc::now())
            .await
            .expect("revoked"),
        1
    );
    assert_eq!(
        drivers
            .revoke_other_sessions(id, other, Utc::now())
            .await
            .expect("revoked"),
        0
    );
    assert!(
        drivers
            .revoke_session(other, Utc::now())
            .await
            .expect("revoked")
    );
    assert!(
        !drivers
            .find_session(other)
            .await
            .expect("read")
            .expect("found")
            .is_active(Utc::now())
    );
    assert_not_found(
        drivers
            .create_session(&NewDriverSession {
                driver_id: id + 100,
                ..session("c", '4')
            })
            .await,
        "driver",
    );
}

async fn check_operator_sessions(db: &Database) {
    migrated(db).await;
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";
    let operator = db
        .operators()
        .create(&NewOperator {
            email: "ops@example.com".into(),
            display_name: "Olga Ops".into(),
            password_hash: hash.into(),
            role: Role::Operator,
        })
        .await
        .expect("created");
    let sessions = db.operator_sessions();
    let token_hash = "a".repeat(64);
    let expires_at = Utc::now() + chrono::Duration::hours(8);
    let new = NewOperatorSession {
        operator_id: operator,
        token_hash: token_hash.clone(),
        csrf_token: "c".repeat(64),
        client_ip: Some("192.0.2.7".into()),
        user_agent: Some("Test Browser".into()),
        expires_at,
    };
    let id = sessions.create(&new).await.expect("stored");
    assert!(
        !format!("{new:?}").contains(&"c".repeat(64)),
        "the CSRF token stays out of Debug"
    );
    let stored = sessions
        .find_by_token_hash(&token_hash)
        .await
        .expect("looked up")
        .expect("found");
    assert_eq!(stored.id, id);
    assert_eq!(stored.operator_id, operator);
    assert_eq!(stored.csrf_token, "c".repeat(64));
    assert_eq!(stored.client_ip.as_deref(), Some("192.0.2.7"));
    assert_eq!(stored.user_agent.as_deref(), Some("Test Browser"));
    assert_recent(stored.created_at);
    assert_eq!(stored.last_seen_at, stored.created_at);
    assert_eq!(stored.revoked_at, None);
    let idle = Duration::from_secs(30 * 60);
    let now = Utc::now();
    assert!(stored.is_active(now, idle));
    assert!(
        !stored.is_active(now + chrono::Duration::minutes(31), idle),
        "idle too long"
    );
    assert!(
        !stored.is_active(expires_at, Duration::from_secs(24 * 3600)),
        "past the absolute lifetime, however recent the activity"
    );

    let later = stored.last_seen_at + chrono::Duration::minutes(20);
    sessions.touch(id, later).await.expect("touched");
    let touched = sessions
        .find_by_token_hash(&token_hash)
        .await
        .expect("looked up")
        .expect("found");
    assert_eq!(touched.last_seen_at, later);
    assert!(touched.is_active(later + chrono::Duration::minutes(29), idle));

    let err = sessions
        .create(&NewOperatorSession {
            token_hash: token_hash.clone(),
            ..new.clone()
        })
        .await
        .expect_err("a session id is never stored twice");
    assert!(matches!(err, StorageError::Conflict { .. }), "{err}");
    let err = sessions
        .create(&NewOperatorSession {
            operator_id: operator + 1000,
            token_hash: "d".repeat(64),
            ..new.clone()
        })
        .await
        .expect_err("an unknown operator");
    assert!(matches!(err, StorageError::NotFound { .. }), "{err}");

    let other = sessions
        .create(&NewOperatorSession {
            token_hash: "b".repeat(64),
            ..new.clone()
        })
        .await
        .expect("a second session");
    let revoked_at = Utc::now();
    assert!(sessions.revoke(id, revoked_at).await.expect("revoked"));
    assert!(
        !sessions
            .revoke(id + 1000, revoked_at)
            .await
            .expect("no such session")
    );
    let revoked = sessions
        .find_by_token_hash(&token_hash)
        .await
        .expect("looked up")
        .expect("still there");
    assert!(revoked.revoked_at.is_some());
    assert!(!revoked.is_active(Utc::now(), idle));
    sessions
        .touch(id, Utc::now() + chrono::Duration::minutes(1))
        .await
        .expect("a touch of a revoked session changes nothing");
    assert_eq!(
        sessions
            .find_by_token_hash(&token_hash)
            .await
            .expect("looked up")
            .expect("found")
            .last_seen_at,
        later
    );
    assert_eq!(
        sessions
            .revoke_all_of(operator, Utc::now())
            .await
            .expect("revoked"),
        1,
        "only the one still active"
    );
    let second = sessions
        .find_by_token_hash(&"b".repeat(64))
        .await
        .expect("looked up")
        .expect("found");
    assert_eq!(second.id, other);
    assert!(second.revoked_at.is_some());
}

async fn check_charger_search_and_dashboard_figures(db: &Database) {
    migrated(db).await;
    let boot = |vendor: &str, model: &str| BootInfo {
        vendor: vendor.into(),
        model: model.into(),
        serial_number: None,
        firmware_version: None,
        ocpp_version: None,
        charge_box_serial_number: None,
        iccid: None,
        imsi: None,
        meter_type: None,
        meter_serial_number: None,
    };
    let charge_points = db.charge_points();
    let a = charge_point(db, "CP-A").await;
    let b = charge_point(db, "CP-B").await;
    let c = charge_point(db, "OTHER_1").await;
    let at = Utc::now();
    charge_points
        .record_boot(a, &boot("Alfen", "Eve"), at)
        .await
        .expect("booted");
    charge_points
        .record_boot(b, &boot("ABB", "Terra 50%"), at)
        .await
        .expect("booted");
    charge_points
        .set_registration_status(c, RegistrationStatus::Pending)
        .await
        .expect("parked");
    charge_points
        .record_status(&StatusReport {
            charge_point_id: b,
            connector_id: 1,
            status: "Faulted".into(),
            error_code: "GroundFailure".into(),
            info: None,
            vendor_id: None,
            vendor_error_code: None,
            reported_at: Some(at),
            received_at: at,
        })
        .await
        .expect("recorded");
    let overview = db.overview();
    let search = |text: Option<&str>, registration, status: Option<&str>| ChargePointFilter {
        text: text.map(str::to_owned),
        registration,
        status: status.map(str::to_owned),
    };
    let identities = |page: voltfleet_core::storage::ChargePointPage| {
        (
            page.items
                .into_iter()
                .map(|cp| cp.identity.to_string())
                .collect::<Vec<_>>(),
            page.total,
        )
    };
    let all = overview
        .charge_points(&ChargePointFilter::default(), 0, 2)
        .await
        .expect("listed");
    assert_eq!(identities(all), (vec!["CP-A".into(), "CP-B".into()], 3));
    let rest = overview
        .charge_points(&ChargePointFilter::default(), 2, 2)
        .await
        .expect("listed");
    assert_eq!(identities(rest), (vec!["OTHER_1".into()], 3));
    for (filter, expected) in [
        (search(Some("alf"), None, None), vec!["CP-A"]),
        (search(Some("terra"), None, None), vec!["CP-B"]),
        (search(Some("50%"), None, None), vec!["CP-B"]),
        (search(Some("%"), None, None), vec!["CP-B"]),
        (search(Some("R_"), None, None), vec!["OTHER_1"]),
        (search(Some("cp-"), None, None), vec!["CP-A", "CP-B"]),
        (
            search(None, Some(RegistrationStatus::Pending), None),
            vec!["OTHER_1"],
        ),
        (search(None, None, Some("Faulted")), vec!["CP-B"]),
        (search(Some("alf"), None, Some("Faulted")), vec![]),
    ] {
        let page = overview
            .charge_points(&filter, 0, 50)
            .await
            .expect("searched");
        let expected: Vec<String> = expected.into_iter().map(str::to_owned).collect();
        let total = expected.len() as u64;
        assert_eq!(identities(page), (expected, total), "{filter:?}");
    }
    assert_eq!(
        overview.identities().await.expect("listed"),
        ["CP-A", "CP-B", "OTHER_1"]
    );

    let transactions = db.transactions();
    let start = |evse: i32, started_at| NewTransaction {
        charge_point_id: a,
        evse_number: evse,
        id_token: "DEMO-TAG-1".into(),
        meter_start_wh: EnergyWh(1_000),
        started_at,
        reservation_id: None,
        start_auth_status: None,
    };
    let midnight = utc("2025-06-01T00:00:00Z");
    let yesterday = transactions
        .start(&start(1, utc("2025-05-31T22:00:00Z")))
        .await
        .expect("started");
    let stop = |wh: i64, stopped_at| StopTransaction {
        meter_stop_wh: EnergyWh(wh),
        stopped_at,
        stop_reason: None,
        stop_id_token: None,
    };
    transactions
        .stop(yesterday, &stop(1_500, utc("2025-05-31T23:00:00Z")))
        .await
        .expect("stopped before midnight");
    let today = transactions
        .start(&start(1, utc("2025-06-01T08:00:00Z")))
        .await
        .expect("started");
    transactions
        .stop(today, &stop(8_000, utc("2025-06-01T09:00:00Z")))
        .await
        .expect("stopped");
    let running_id = transactions
        .start(&start(2, utc("2025-06-01T10:00:00Z")))
        .await
        .expect("still running");
    let reading = |at: &str, value: f64, unit: &str, phase: Option<&str>| NewMeterValue {
        transaction_id: Some(running_id),
        charge_point_id: a,
        evse_number: 2,
        sampled_at: utc(at),
        measurand: "Energy.Active.Import.Register".into(),
        phase: phase.map(str::to_owned),
        unit: unit.into(),
        value,
        context: Some("Sample.Periodic".into()),
        location: None,
    };
    transactions
        .add_meter_values(&[
            reading("2025-06-01T10:30:00Z", 2_200.0, "Wh", None),
            reading("2025-06-01T11:00:00Z", 3.5, "kWh", None),
            reading("2025-06-01T11:00:00Z", 9_999.0, "Wh", Some("L1")),
        ])
        .await
        .expect("sampled");
    use voltfleet_core::storage::TransactionFilter;
    let listed = |filter: TransactionFilter, offset| {
        let overview = db.overview();
        async move {
            let (items, total) = overview
                .transactions(&filter, offset, 2)
                .await
                .expect("listed");
            (
                items
                    .into_iter()
                    .map(|t| (t.identity, t.evse_number, t.stopped_at.is_some()))
                    .collect::<Vec<_>>(),
                total,
            )
        }
    };
    assert_eq!(
        listed(TransactionFilter::default(), 0).await,
        (
            vec![
                ("CP-A".to_string(), 2, false),
                ("CP-A".to_string(), 1, true)
            ],
            3
        ),
        "newest first"
    );
    assert_eq!(listed(TransactionFilter::default(), 2).await.0.len(), 1);
    let running = TransactionFilter {
        active: Some(true),
        ..TransactionFilter::default()
    };
    assert_eq!(listed(running, 0).await.1, 1);
    let ended = TransactionFilter {
        active: Some(false),
        ..TransactionFilter::default()
    };
    assert_eq!(listed(ended, 0).await.1, 2);
    let other = TransactionFilter {
        charger: Some("cp-b".into()),
        ..TransactionFilter::default()
    };
    assert_eq!(listed(other, 0).await.1, 0);
    let token = TransactionFilter {
        id_token: Some("demo-tag".into()),
        charger: Some("A".into()),
        active: None,
    };
    assert_eq!(listed(token, 0).await.1, 3);
    let figures = overview.figures(midnight).await.expect("counted");
    assert_eq!(figures.chargers, 3);
    assert_eq!(figures.faulted, 1);
    assert_eq!(figures.active_transactions, 1);
    assert_eq!(
        figures.energy_wh,
        7_000 + 2_500,
        "what stopped since midnight, and the running session's 3.5 kWh register over its 1 kWh start"
    );
}

async fn check_ocpp_message_log_keeps_the_newest(db: &Database) {
    use voltfleet_core::storage::NewOcppMessage;
    migrated(db).await;
    let a = charge_point(db, "CP-LOG-A").await;
    let b = charge_point(db, "CP-LOG-B").await;
    let log = db.ocpp_messages();
    let at = utc("2025-06-01T10:00:00.250Z");
    let message = |cp: i64, n: usize| {
        NewOcppMessage::new(
            cp,
            if n.is_multiple_of(2) { "in" } else { "out" },
            "CALL",
            Some("Heartbeat"),
            Some(&format!("id-{n}")),
            &format!("[2,\"id-{n}\",\"Heartbeat\",{{}}]"),
            at,
        )
    };
    let batch: Vec<_> = (0..6)
        .map(|n| message(a, n))
        .chain((0..2).map(|n| message(b, n)))
        .collect();
    log.append(&batch).await.expect("appended");
    log.append(&[]).await.expect("nothing to append");
    assert_eq!(log.trim(a, 4).await.expect("trimmed"), 2);
    assert_eq!(log.trim(a, 4).await.expect("trimmed again"), 0);
    assert_eq!(log.trim(b, 4).await.expect("below the limit"), 0);
    let kept = log.recent(a, 10).await.expect("listed");
    let ids: Vec<_> = kept.iter().filter_map(|m| m.message_id.clone()).collect();
    assert_eq!(
        ids,
        ["id-5", "id-4", "id-3", "id-2"],
        "the newest, newest first"
    );
    assert_eq!(kept[0].direction, "out");
    assert_eq!(kept[0].at, at);
    assert_eq!(kept[0].body, "[2,\"id-5\",\"Heartbeat\",{}]");
    assert!(!kept[0].truncated);
    assert_eq!(log.recent(b, 1).await.expect("listed").len(), 1);
    let err = log
        .append(&[message(b + 1000, 0)])
        .await
        .expect_err("an unknown charger");
    assert!(matches!(err, StorageError::NotFound { .. }), "{err}");
}

async fn check_audit_search_and_operator_roles(db: &Database) {
    use voltfleet_core::storage::AuditFilter;
    migrated(db).await;
    let entry = |at: &str, actor: &str, action: &str, target: &str, outcome| NewAuditEntry {
        occurred_at: utc(at),
        actor: actor.into(),
        action: action.into(),
        target: target.into(),
        details: json!({}),
        outcome,
    };
    for e in [
        entry(
            "2025-06-01T10:00:00Z",
            "operator:ada@example.com",
            "operator.login",
            "operator:ada@example.com",
            AuditOutcome::Success,
        ),
        entry(
            "2025-06-01T10:01:00Z",
            "operator:ada@example.com",
            "charge_point.command.Reset",
            "charge_point:CP-1",
            AuditOutcome::Success,
        ),
        entry(
            "2025-06-01T10:02:00Z",
            "operator:vera@example.com",
            "access.denied",
            "/backoffice/charge-points/CP-1/commands/reset",
            AuditOutcome::Denied,
        ),
        entry(
            "2025-06-01T10:03:00Z",
            "operator:ada@example.com",
            "charge_point.command.Unlock_100%",
            "charge_point:CP-2",
            AuditOutcome::Failure,
        ),
    ] {
        db.audit().record(&e).await.expect("recorded");
    }
    let overview = db.overview();
    let actions = |found: (Vec<voltfleet_core::storage::AuditEntry>, u64)| {
        (
            found.0.into_iter().map(|e| e.action).collect::<Vec<_>>(),
            found.1,
        )
    };
    let all = overview
        .audit(&AuditFilter::default(), 0, 2)
        .await
        .expect("listed");
    assert_eq!(
        actions(all),
        (
            vec![
                "charge_point.command.Unlock_100%".to_string(),
                "access.denied".to_string()
            ],
            4
        ),
        "newest first"
    );
    let filter =
        |actor: Option<&str>, action: Option<&str>, target: Option<&str>, outcome| AuditFilter {
            actor: actor.map(str::to_owned),
            action: action.map(str::to_owned),
            target: target.map(str::to_owned),
            outcome,
        };
    for (f, expected) in [
        (
            filter(Some("vera"), None, None, None),
            vec!["access.denied"],
        ),
        (
            filter(None, Some("command"), None, None),
            vec![
                "charge_point.command.Unlock_100%",
                "charge_point.command.Reset",
            ],
        ),
        (
            filter(None, Some("100%"), None, None),
            vec!["charge_point.command.Unlock_100%"],
        ),
        (
            filter(None, None, Some("CP-1"), Some(AuditOutcome::Success)),
            vec!["charge_point.command.Reset"],
        ),
        (
            filter(Some("ada"), None, None, Some(AuditOutcome::Denied)),
            vec![],
        ),
    ] {
        let (found, total) = actions(overview.audit(&f, 0, 50).await.expect("searched"));
        assert_eq!(found, expected, "{f:?}");
        assert_eq!(total, expected.len() as u64);
    }
    let (page, _) = actions(
        overview
            .audit(&AuditFilter::default(), 3, 2)
            .await
            .expect("listed"),
    );
    assert_eq!(page, ["operator.login"]);

    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";
    for (email, role) in [
        ("zed@example.com", Role::Viewer),
        ("amy@example.com", Role::Operator),
    ] {
        db.operators()
            .create(&NewOperator {
                email: email.into(),
                display_name: email.into(),
                password_hash: hash.into(),
                role,
            })
            .await
            .expect("created");
    }
    let operators = overview.operators().await.expect("listed");
    let emails: Vec<_> = operators.iter().map(|o| o.email.as_str()).collect();
    assert_eq!(emails, ["amy@example.com", "zed@example.com"]);
    overview
        .set_operator_role(operators[1].id, Role::Admin)
        .await
        .expect("changed");
    assert_eq!(
        db.operators()
            .get(operators[1].id)
            .await
            .expect("found")
            .role,
        Role::Admin
    );
    let err = overview
        .set_operator_role(operators[1].id + 1000, Role::Admin)
        .await
        .expect_err("no such operator");
    assert!(matches!(err, StorageError::NotFound { .. }), "{err}");
}

async fn check_id_token_search_and_terms(db: &Database) {
    use voltfleet_core::storage::IdTokenFilter;
    migrated(db).await;
    for (token, label, group, status) in [
        (
            "TAG-1",
            Some("Fleet van 7"),
            Some("FLEET"),
            IdTokenStatus::Accepted,
        ),
        ("TAG-2", None, Some("FLEET"), IdTokenStatus::Blocked),
        ("card_9", Some("50% off"), None, IdTokenStatus::Accepted),
    ] {
        db.id_tokens()
            .create(&NewIdToken {
                token: token.into(),
                token_type: "RFID".into(),
                status,
                expires_at: None,
                group_token: group.map(str::to_owned),
                driver_id: None,
                label: label.map(str::to_owned),
            })
            .await
            .expect("created");
    }
    let overview = db.overview();
    let found = |text: Option<&str>, status| {
        let filter = IdTokenFilter {
            text: text.map(str::to_owned),
            status,
        };
        async move {
            let (items, total) = overview.id_tokens(&filter, 0, 50).await.expect("listed");
            assert_eq!(total, items.len() as u64);
            items.into_iter().map(|t| t.token).collect::<Vec<_>>()
        }
    };
    assert_eq!(found(None, None).await, ["card_9", "TAG-1", "TAG-2"]);
    assert_eq!(found(Some("fleet"), None).await, ["TAG-1", "TAG-2"]);
    assert_eq!(found(Some("van"), None).await, ["TAG-1"]);
    assert_eq!(found(Some("%"), None).await, ["card_9"]);
    assert_eq!(found(Some("d_"), None).await, ["card_9"]);
    assert_eq!(found(None, Some(IdTokenStatus::Blocked)).await, ["TAG-2"]);
    let (page, total) = overview
        .id_tokens(&IdTokenFilter::default(), 2, 2)
        .await
        .expect("listed");
    assert_eq!((page.len(), total), (1, 3));

    let expiry = utc("2030-01-01T00:00:00Z");
    overview
        .set_id_token_terms("tag-2", IdTokenStatus::Accepted, Some(expiry), None)
        .await
        .expect("changed, found in any case");
    let tag = db
        .id_tokens()
        .find("TAG-2")
        .await
        .expect("looked up")
        .expect("found");
    assert_eq!(
        (tag.status, tag.expires_at, tag.group_token),
        (IdTokenStatus::Accepted, Some(expiry), None)
    );
    let err = overview
        .set_id_token_terms("NOPE", IdTokenStatus::Blocked, None, None)
        .await
        .expect_err("unknown");
    assert!(matches!(err, StorageError::NotFound { .. }), "{err}");
}

async fn check_operator_api_keys_are_listed_without_drivers_keys(db: &Database) {
    migrated(db).await;
    let driver = db
        .drivers()
        .create(&NewDriver {
            email: "dora@example.com".into(),
            name: "Dora".into(),
            password_hash: "x".into(),
        })
        .await
        .expect("a driver");
    for (name, driver_id) in [
        ("partner app", None),
        ("dora's key", Some(driver)),
        ("map widget", None),
    ] {
        let (_, prefix, key_hash) = ApiKey::generate();
        db.api_keys()
            .create(&NewApiKey {
                name: name.into(),
                prefix,
                key_hash,
                scopes: vec!["locations:read".into()],
                operator_id: None,
                driver_id,
            })
            .await
            .expect("created");
    }
    let keys = db.overview().operator_api_keys().await.expect("listed");
    let names: Vec<_> = keys.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["map widget", "partner app"]);
}
