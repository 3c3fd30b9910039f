//! The storage the OCPP 1.6 central system needs (migration 0002), against real databases.
//! Every `check_*` runs twice: on a fresh SQLite file in a temporary directory and on a fresh
//! MariaDB/MySQL database (see `voltfleet_core::testing::TestMySql`; `make test` starts the
//! server).

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use voltfleet_core::domain::{ChargePointId, EnergyWh, RegistrationStatus};
use voltfleet_core::storage::{
    BootInfo, ChargingProfileKind, ChargingProfilePurpose, ClearFilter, ConfigurationEntry,
    Database, LocalListEntry, LocalListUpdate, NewChargePoint, NewChargingProfile, NewEvse,
    NewMeterValue, NewReservation, NewTransaction, RecurrencyKind, ReservationStatus,
    StatusRecorded, StatusReport, StopTransaction, StorageError,
};
use voltfleet_core::testing::{TestMySql, sqlite_settings};

#[macro_use]
mod common;

on_both_backends!(
    check_boot_details_and_charger_settings,
    check_security_profile_is_checked_by_the_database,
    check_status_reports_out_of_order,
    check_duplicate_status_reports,
    check_configuration_mirror,
    check_reservation_lifecycle,
    check_charging_profile_replacement,
    check_charging_profile_clear_filters,
    check_local_list_full_and_differential,
    check_transaction_lookups,
    check_duplicate_meter_values_are_ignored,
    check_bulk_insert_of_5000_meter_values,
    check_meter_values_with_a_missing_transaction,
    check_0002_applies_to_a_populated_0001_database,
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

async fn transaction(db: &Database, cp: i64, evse: i32, token: &str, at: &str) -> i64 {
    db.transactions()
        .start(&NewTransaction {
            charge_point_id: cp,
            evse_number: evse,
            id_token: token.into(),
            meter_start_wh: EnergyWh(0),
            started_at: utc(at),
            reservation_id: None,
            start_auth_status: Some("Accepted".into()),
        })
        .await
        .expect("the transaction starts")
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
fn assert_recent(at: DateTime<Utc>) {
    let age = Utc::now() - at;
    assert!(
        age >= Duration::zero() && age < Duration::minutes(5),
        "{at} is not the time of the test ({age})"
    );
}

async fn check_boot_details_and_charger_settings(db: &Database) {
    migrated(db).await;
    let cp = charge_point(db, "CP-BOOT").await;
    let charge_points = db.charge_points();

    let fresh = charge_points.get(cp).await.expect("found");
    assert_eq!(fresh.security_profile, 1, "Basic auth until set otherwise");
    assert_eq!(
        (
            fresh.status.as_deref(),
            fresh.firmware_status.as_deref(),
            fresh.diagnostics_status.as_deref(),
            fresh.local_list_version
        ),
        (None, None, None, None)
    );

    let booted_at = utc("2025-06-01T08:30:00.250Z");
    let boot = BootInfo {
        vendor: "VoltVendor".into(),
        model: "VV-22".into(),
        serial_number: Some("CPSN-1".into()),
        firmware_version: Some("1.4.2".into()),
        ocpp_version: Some("1.6".into()),
        charge_box_serial_number: Some("CBSN-1".into()),
        iccid: Some("8934071234567890123".into()),
        imsi: Some("214070123456789".into()),
        meter_type: Some("EM340".into()),
        meter_serial_number: Some("MSN-42".into()),
    };
    charge_points
        .record_boot(cp, &boot, booted_at)
        .await
        .expect("boot recorded");
    let stored = charge_points.get(cp).await.expect("found");
    assert_eq!(stored.serial_number.as_deref(), Some("CPSN-1"));
    assert_eq!(stored.charge_box_serial_number.as_deref(), Some("CBSN-1"));
    assert_eq!(stored.iccid.as_deref(), Some("8934071234567890123"));
    assert_eq!(stored.imsi.as_deref(), Some("214070123456789"));
    assert_eq!(stored.meter_type.as_deref(), Some("EM340"));
    assert_eq!(stored.meter_serial_number.as_deref(), Some("MSN-42"));
    assert_eq!(stored.last_seen_at, Some(booted_at));

    // A later boot without the optional fields clears them: they describe the charger now.
    charge_points
        .record_boot(
            cp,
            &BootInfo {
                vendor: "VoltVendor".into(),
                model: "VV-22".into(),
                ..BootInfo::default()
            },
            booted_at,
        )
        .await
        .expect("boot recorded");
    let stored = charge_points.get(cp).await.expect("found");
    assert_eq!((stored.iccid, stored.meter_type), (None, None));

    // Over-long BootNotification fields are refused on both backends, never cut.
    let too_long = BootInfo {
        iccid: Some("9".repeat(21)),
        ..boot.clone()
    };
    match charge_points.record_boot(cp, &too_long, booted_at).await {
        Err(StorageError::Other(message)) => assert!(message.contains("charge point"), "{message}"),
        other => panic!("expected the database to refuse a 21-character ICCID, got {other:?}"),
    }

    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
    charge_points
        .set_ocpp_password_hash(cp, Some(hash))
        .await
        .expect("hash set");
    assert_eq!(
        charge_points
            .get(cp)
            .await
            .expect("found")
            .ocpp_password_hash
            .as_deref(),
        Some(hash)
    );
    charge_points
        .set_ocpp_password_hash(cp, None)
        .await
        .expect("hash removed");
    assert_eq!(
        charge_points
            .get(cp)
            .await
            .expect("found")
            .ocpp_password_hash,
        None
    );

    let downloading = utc("2025-06-02T01:00:00Z");
    let installed = utc("2025-06-02T01:05:00.5Z");
    charge_points
        .record_firmware_status(cp, "Downloading", downloading)
        .await
        .expect("recorded");
    charge_points
        .record_firmware_status(cp, "Installed", installed)
        .await
        .expect("recorded");
    let uploaded = utc("2025-06-03T12:00:00Z");
    charge_points
        .record_diagnostics_status(cp, "Uploaded", uploaded)
        .await
        .expect("recorded");
    let stored = charge_points.get(cp).await.expect("found");
    assert_eq!(
        (stored.firmware_status.as_deref(), stored.firmware_status_at),
        (Some("Installed"), Some(installed))
    );
    assert_eq!(
        (
            stored.diagnostics_status.as_deref(),
            stored.diagnostics_status_at
        ),
        (Some("Uploaded"), Some(uploaded))
    );

    let missing = cp + 1000;
    assert_not_found(
        charge_points.set_security_profile(missing, 2).await,
        "charge point",
    );
    assert_not_found(
        charge_points.set_ocpp_password_hash(missing, None).await,
        "charge point",
    );
    assert_not_found(
        charge_points
            .record_firmware_status(missing, "Idle", installed)
            .await,
        "charge point",
    );
    assert_not_found(
        charge_points
            .record_diagnostics_status(missing, "Idle", uploaded)
            .await,
        "charge point",
    );
}

async fn check_security_profile_is_checked_by_the_database(db: &Database) {
    migrated(db).await;
    let cp = charge_point(db, "CP-SEC").await;
    let charge_points = db.charge_points();
    for profile in [0, 3, 2] {
        charge_points
            .set_security_profile(cp, profile)
            .await
            .expect("a valid profile is stored");
        assert_eq!(
            charge_points.get(cp).await.expect("found").security_profile,
            profile
        );
    }
    match charge_points.set_security_profile(cp, 4).await {
        Err(StorageError::Other(message)) => {
            assert!(message.contains("security profile 4"), "{message}")
        }
        other => panic!("expected the CHECK to refuse profile 4, got {other:?}"),
    }
    assert_eq!(
        charge_points.get(cp).await.expect("found").security_profile,
        2,
        "the refused value changed nothing"
    );
}

fn status(cp: i64, connector: i32, status: &str, reported_at: Option<&str>) -> StatusReport {
    StatusReport {
        charge_point_id: cp,
        connector_id: connector,
        status: status.into(),
        error_code: "NoError".into(),
        info: None,
        vendor_id: None,
        vendor_error_code: None,
        reported_at: reported_at.map(utc),
        received_at: utc("2025-06-01T12:00:00Z"),
    }
}

const APPLIED: StatusRecorded = StatusRecorded {
    current_changed: true,
    duplicate: false,
};
const HISTORY_ONLY: StatusRecorded = StatusRecorded {
    current_changed: false,
    duplicate: false,
};
const DUPLICATE: StatusRecorded = StatusRecorded {
    current_changed: false,
    duplicate: true,
};

async fn check_status_reports_out_of_order(db: &Database) {
    migrated(db).await;
    let cp = charge_point(db, "CP-STATUS").await;
    let charge_points = db.charge_points();
    charge_points
        .add_evse(&NewEvse {
            charge_point_id: cp,
            evse_number: 1,
        })
        .await
        .expect("EVSE 1 added");

    // After an outage the charger flushes its queue: the newest report arrives first.
    let faulted = StatusReport {
        error_code: "GroundFailure".into(),
        info: Some("RCD tripped".into()),
        vendor_id: Some("com.voltvendor".into()),
        vendor_error_code: Some("E-17".into()),
        ..status(cp, 1, "Faulted", Some("2025-06-01T10:05:00Z"))
    };
    assert_eq!(
        charge_points
            .record_status(&faulted)
            .await
            .expect("recorded"),
        APPLIED
    );
    let older = status(cp, 1, "Charging", Some("2025-06-01T10:00:00Z"));
    assert_eq!(
        charge_points.record_status(&older).await.expect("recorded"),
        HISTORY_ONLY,
        "an older report must not overwrite the newer status"
    );
    let evse = &charge_points.evses(cp).await.expect("listed")[0];
    assert_eq!(evse.status, "Faulted");
    assert_eq!(evse.error_code.as_deref(), Some("GroundFailure"));
    assert_eq!(evse.status_info.as_deref(), Some("RCD tripped"));
    assert_eq!(evse.status_updated_at, Some(utc("2025-06-01T10:05:00Z")));

    // A report at the same instant as the stored one is not older: the later one wins.
    let same_instant = status(cp, 1, "Unavailable", Some("2025-06-01T10:05:00Z"));
    assert_eq!(
        charge_points
            .record_status(&same_instant)
            .await
            .expect("recorded"),
        APPLIED
    );
    // Without a timestamp the report counts as of its arrival.
    let untimed = status(cp, 1, "Available", None);
    assert_eq!(
        charge_points
            .record_status(&untimed)
            .await
            .expect("recorded"),
        APPLIED
    );
    let evse = &charge_points.evses(cp).await.expect("listed")[0];
    assert_eq!(
        (
            evse.status.as_str(),
            evse.error_code.as_deref(),
            evse.status_info.as_deref()
        ),
        ("Available", Some("NoError"), None)
    );
    assert_eq!(evse.status_updated_at, Some(untimed.received_at));

    // An EVSE the charger announces is added.
    assert_eq!(
        charge_points
            .record_status(&status(cp, 2, "Preparing", Some("2025-06-01T10:01:00Z")))
            .await
            .expect("recorded"),
        APPLIED
    );
    let numbers: Vec<_> = charge_points
        .evses(cp)
        .await
        .expect("listed")
        .into_iter()
        .map(|e| (e.evse_number, e.status))
        .collect();
    assert_eq!(
        numbers,
        [(1, "Available".to_string()), (2, "Preparing".to_string())]
    );

    // Connector 0 is the charger as a whole, under the same rule.
    let whole = StatusReport {
        error_code: "PowerMeterFailure".into(),
        ..status(cp, 0, "Faulted", Some("2025-06-01T09:00:00Z"))
    };
    assert_eq!(
        charge_points.record_status(&whole).await.expect("recorded"),
        APPLIED
    );
    let earlier = status(cp, 0, "Available", Some("2025-06-01T08:00:00Z"));
    assert_eq!(
        charge_points
            .record_status(&earlier)
            .await
            .expect("recorded"),
        HISTORY_ONLY
    );
    let stored = charge_points.get(cp).await.expect("found");
    assert_eq!(stored.status.as_deref(), Some("Faulted"));
    assert_eq!(
        stored.status_error_code.as_deref(),
        Some("PowerMeterFailure")
    );
    assert_eq!(stored.status_updated_at, Some(utc("2025-06-01T09:00:00Z")));
    assert_eq!(
        charge_points.evses(cp).await.expect("listed").len(),
        2,
        "connector 0 is no EVSE"
    );

    // Every report is in the history, newest first by the time it speaks of.
    let history = charge_points
        .status_history(cp, Some(1), 10)
        .await
        .expect("listed");
    let seen: Vec<_> = history
        .iter()
        .map(|h| (h.status.as_str(), h.reported_at))
        .collect();
    assert_eq!(
        seen,
        [
            ("Available", None),
            ("Unavailable", Some(utc("2025-06-01T10:05:00Z"))),
            ("Faulted", Some(utc("2025-06-01T10:05:00Z"))),
            ("Charging", Some(utc("2025-06-01T10:00:00Z"))),
        ]
    );
    let stored_fault = &history[2];
    assert_eq!(stored_fault.charge_point_id, cp);
    assert_eq!(stored_fault.connector_id, 1);
    assert_eq!(stored_fault.error_code, "GroundFailure");
    assert_eq!(stored_fault.info.as_deref(), Some("RCD tripped"));
    assert_eq!(stored_fault.vendor_id.as_deref(), Some("com.voltvendor"));
    assert_eq!(stored_fault.vendor_error_code.as_deref(), Some("E-17"));
    assert_eq!(stored_fault.received_at, faulted.received_at);

    let all = charge_points
        .status_history(cp, None, 100)
        .await
        .expect("listed");
    assert_eq!(all.len(), 7);
    let latest_two = charge_points
        .status_history(cp, None, 2)
        .await
        .expect("listed");
    assert_eq!(
        latest_two.iter().map(|h| h.id).collect::<Vec<_>>(),
        all[..2].iter().map(|h| h.id).collect::<Vec<_>>()
    );
    assert_eq!(
        charge_points
            .status_history(cp, Some(0), 10)
            .await
            .expect("listed")
            .len(),
        2
    );

    assert_not_found(
        charge_points
            .record_status(&status(cp + 1000, 1, "Available", None))
            .await,
        "charge point",
    );
}

async fn check_duplicate_status_reports(db: &Database) {
    migrated(db).await;
    let cp = charge_point(db, "CP-DUP").await;
    let charge_points = db.charge_points();
    let report = status(cp, 1, "Charging", Some("2025-06-01T10:00:00.123Z"));
    assert_eq!(
        charge_points
            .record_status(&report)
            .await
            .expect("recorded"),
        APPLIED
    );
    // The charger missed our reply and sends it again, later.
    let resent = StatusReport {
        received_at: report.received_at + Duration::seconds(30),
        ..report.clone()
    };
    assert_eq!(
        charge_points
            .record_status(&resent)
            .await
            .expect("recorded"),
        DUPLICATE
    );
    // A resend that arrives after a newer status does not bring the old one back.
    let newer = status(cp, 1, "SuspendedEV", Some("2025-06-01T10:10:00Z"));
    assert_eq!(
        charge_points.record_status(&newer).await.expect("recorded"),
        APPLIED
    );
    assert_eq!(
        charge_points
            .record_status(&resent)
            .await
            .expect("recorded"),
        DUPLICATE
    );
    assert_eq!(
        charge_points.evses(cp).await.expect("listed")[0].status,
        "SuspendedEV"
    );
    assert_eq!(
        charge_points
            .status_history(cp, Some(1), 10)
            .await
            .expect("listed")
            .len(),
        2
    );

    // The same status at another time, or another status at the same time, is no duplicate.
    let other_time = status(cp, 1, "SuspendedEV", Some("2025-06-01T10:11:00Z"));
    let other_status = status(cp, 1, "Finishing", Some("2025-06-01T10:11:00Z"));
    assert!(
        !charge_points
            .record_status(&other_time)
            .await
            .expect("recorded")
            .duplicate
    );
    assert!(
        !charge_points
            .record_status(&other_status)
            .await
            .expect("recorded")
            .duplicate
    );

    // Reports without a timestamp cannot be told from resends, so each one is kept.
    let untimed = status(cp, 0, "Available", None);
    for _ in 0..2 {
        assert_eq!(
            charge_points
                .record_status(&untimed)
                .await
                .expect("recorded"),
            APPLIED
        );
    }
    assert_eq!(
        charge_points
            .status_history(cp, Some(0), 10)
            .await
            .expect("listed")
            .len(),
        2
    );
}

fn key(key: &str, value: Option<&str>, readonly: bool) -> ConfigurationEntry {
    ConfigurationEntry {
        key: key.into(),
        value: value.map(str::to_string),
        readonly,
    }
}

async fn check_configuration_mirror(db: &Database) {
    migrated(db).await;
    let cp = charge_point(db, "CP-CONF").await;
    let other = charge_point(db, "CP-CONF-2").await;
    let configuration = db.configuration();
    let listed = |entries: Vec<voltfleet_core::storage::StoredConfiguration>| {
        entries
            .into_iter()
            .map(|e| (e.key, e.value, e.readonly))
            .collect::<Vec<_>>()
    };
    let owned = |k: &str, v: Option<&str>, r: bool| (k.to_string(), v.map(str::to_string), r);

    configuration
        .replace_all(
            cp,
            &[
                key("MeterValueSampleInterval", Some("60"), false),
                key("HeartbeatInterval", Some("300"), false),
                key("NumberOfConnectors", Some("2"), true),
                key("AuthorizationKey", None, false),
            ],
        )
        .await
        .expect("stored");
    configuration
        .replace_all(other, &[key("HeartbeatInterval", Some("900"), false)])
        .await
        .expect("stored");
    let stored = configuration.list(cp).await.expect("listed");
    assert!(stored.iter().all(|e| e.charge_point_id == cp));
    assert_recent(stored[0].updated_at);
    assert_eq!(
        listed(stored),
        [
            owned("AuthorizationKey", None, false),
            owned("HeartbeatInterval", Some("300"), false),
            owned("MeterValueSampleInterval", Some("60"), false),
            owned("NumberOfConnectors", Some("2"), true),
        ]
    );

    // A partial answer touches only the keys it lists.
    configuration
        .upsert(
            cp,
            &[
                key("heartbeatinterval", Some("120"), false),
                key("ConnectionTimeOut", Some("30"), false),
            ],
        )
        .await
        .expect("stored");
    // An accepted ChangeConfiguration: a known key keeps its readonly flag, a new one is
    // writable.
    configuration
        .set_value(cp, "NumberOfConnectors", "3")
        .await
        .expect("set");
    configuration
        .set_value(cp, "LocalAuthListEnabled", "true")
        .await
        .expect("set");
    assert_eq!(
        listed(configuration.list(cp).await.expect("listed")),
        [
            owned("AuthorizationKey", None, false),
            owned("ConnectionTimeOut", Some("30"), false),
            owned("HeartbeatInterval", Some("120"), false),
            owned("LocalAuthListEnabled", Some("true"), false),
            owned("MeterValueSampleInterval", Some("60"), false),
            owned("NumberOfConnectors", Some("3"), true),
        ]
    );

    // A full answer removes what it does not list (keys match in any letter case).
    configuration
        .replace_all(
            cp,
            &[
                key("HEARTBEATINTERVAL", Some("600"), false),
                key("NumberOfConnectors", Some("2"), true),
            ],
        )
        .await
        .expect("stored");
    assert_eq!(
        listed(configuration.list(cp).await.expect("listed")),
        [
            owned("HeartbeatInterval", Some("600"), false),
            owned("NumberOfConnectors", Some("2"), true),
        ]
    );
    assert_eq!(
        listed(configuration.list(other).await.expect("listed")),
        [owned("HeartbeatInterval", Some("900"), false)],
        "another charger's keys stay"
    );
    configuration.replace_all(cp, &[]).await.expect("stored");
    assert!(configuration.list(cp).await.expect("listed").is_empty());

    let missing = cp + 1000;
    assert_not_found(
        configuration
            .replace_all(missing, &[key("HeartbeatInterval", Some("1"), false)])
            .await,
        "charge point",
    );
    assert_not_found(
        configuration.replace_all(missing, &[]).await,
        "charge point",
    );
    assert_not_found(
        configuration
            .upsert(missing, &[key("HeartbeatInterval", Some("1"), false)])
            .await,
        "charge point",
    );
    assert_not_found(
        configuration
            .set_value(missing, "HeartbeatInterval", "1")
            .await,
        "charge point",
    );
}

async fn check_reservation_lifecycle(db: &Database) {
    migrated(db).await;
    let cp = charge_point(db, "CP-RES").await;
    let other = charge_point(db, "CP-RES-2").await;
    let reservations = db.reservations();
    let now = utc("2025-06-01T10:00:00Z");
    let new = NewReservation {
        charge_point_id: cp,
        connector_id: 1,
        id_tag: "TAG-RES".into(),
        parent_id_tag: Some("FLEET".into()),
        expires_at: now + Duration::minutes(30),
    };
    let id = reservations.create(&new).await.expect("created");
    let stored = reservations.get(id).await.expect("found");
    assert_eq!(stored.id, id);
    assert_eq!(stored.status, ReservationStatus::Requested);
    assert_eq!(
        (
            stored.charge_point_id,
            stored.connector_id,
            stored.id_tag.as_str()
        ),
        (cp, 1, "TAG-RES")
    );
    assert_eq!(stored.parent_id_tag.as_deref(), Some("FLEET"));
    assert_eq!(stored.expires_at, new.expires_at);
    assert_eq!(stored.transaction_id, None);
    assert_recent(stored.created_at);
    assert!(
        reservations
            .active_for(cp, now)
            .await
            .expect("listed")
            .is_empty(),
        "not active until the charger accepts"
    );

    reservations
        .set_status(id, ReservationStatus::Accepted)
        .await
        .expect("accepted");
    let active = reservations.active_for(cp, now).await.expect("listed");
    assert_eq!(active.iter().map(|r| r.id).collect::<Vec<_>>(), [id]);
    assert!(
        reservations
            .active_for(other, now)
            .await
            .expect("listed")
            .is_empty()
    );
    assert!(
        reservations
            .active_for(cp, new.expires_at)
            .await
            .expect("listed")
            .is_empty(),
        "not active once its expiry is reached"
    );

    let tx = transaction(db, cp, 1, "TAG-RES", "2025-06-01T10:05:00Z").await;
    let foreign_tx = transaction(db, other, 1, "TAG-RES", "2025-06-01T10:05:00Z").await;
    assert!(
        !reservations
            .use_for_transaction(id, other, foreign_tx)
            .await
            .expect("checked"),
        "another charger cannot use it"
    );
    assert!(
        reservations
            .use_for_transaction(id, cp, tx)
            .await
            .expect("used")
    );
    assert!(
        reservations
            .use_for_transaction(id, cp, tx)
            .await
            .expect("used again"),
        "a resent StartTransaction finds it used by the same transaction"
    );
    assert!(
        !reservations
            .use_for_transaction(id, cp, foreign_tx)
            .await
            .expect("checked"),
        "a used reservation cannot be used by another transaction"
    );
    let used = reservations.get(id).await.expect("found");
    assert_eq!(
        (used.status, used.transaction_id),
        (ReservationStatus::Used, Some(tx))
    );
    assert!(
        reservations
            .active_for(cp, now)
            .await
            .expect("listed")
            .is_empty()
    );

    // Only accepted reservations can be used or expire.
    let requested = reservations.create(&new).await.expect("created");
    assert!(
        !reservations
            .use_for_transaction(requested, cp, tx)
            .await
            .expect("checked")
    );
    let due = reservations
        .create(&NewReservation {
            connector_id: 0,
            expires_at: now + Duration::minutes(5),
            ..new.clone()
        })
        .await
        .expect("created");
    let later = reservations
        .create(&NewReservation {
            connector_id: 2,
            expires_at: now + Duration::hours(2),
            ..new.clone()
        })
        .await
        .expect("created");
    for accepted in [due, later] {
        reservations
            .set_status(accepted, ReservationStatus::Accepted)
            .await
            .expect("accepted");
    }
    let active: Vec<_> = reservations
        .active_for(cp, now)
        .await
        .expect("listed")
        .into_iter()
        .map(|r| (r.connector_id, r.id))
        .collect();
    assert_eq!(active, [(0, due), (2, later)], "by connector");

    let expiry = now + Duration::minutes(5);
    assert_eq!(reservations.expire_due(expiry).await.expect("expired"), 1);
    assert_eq!(
        reservations.get(due).await.expect("found").status,
        ReservationStatus::Expired
    );
    assert_eq!(
        reservations.get(later).await.expect("found").status,
        ReservationStatus::Accepted
    );
    assert_eq!(
        reservations.get(requested).await.expect("found").status,
        ReservationStatus::Requested
    );
    assert_eq!(
        reservations.get(id).await.expect("found").status,
        ReservationStatus::Used,
        "a used reservation does not expire"
    );
    assert_eq!(
        reservations.expire_due(expiry).await.expect("expired"),
        0,
        "nothing more is due"
    );
    reservations
        .set_status(later, ReservationStatus::Cancelled)
        .await
        .expect("cancelled");
    assert!(
        reservations
            .active_for(cp, now)
            .await
            .expect("listed")
            .is_empty()
    );

    assert!(
        !reservations
            .use_for_transaction(id + 1000, cp, tx)
            .await
            .expect("checked"),
        "an unknown reservationId is not used"
    );
    let accepted = reservations.create(&new).await.expect("created");
    reservations
        .set_status(accepted, ReservationStatus::Accepted)
        .await
        .expect("accepted");
    assert_not_found(
        reservations
            .use_for_transaction(accepted, cp, tx + 1000)
            .await,
        "transaction",
    );
    assert_not_found(reservations.get(id + 1000).await, "reservation");
    assert_not_found(
        reservations
            .set_status(id + 1000, ReservationStatus::Cancelled)
            .await,
        "reservation",
    );
    assert_not_found(
        reservations
            .create(&NewReservation {
                charge_point_id: cp + 1000,
                ..new.clone()
            })
            .await,
        "charge point",
    );
    assert_eq!(
        "Cancelled".parse::<ReservationStatus>(),
        Ok(ReservationStatus::Cancelled)
    );
    assert!("cancelled".parse::<ReservationStatus>().is_err());
}

fn profile(
    cp: i64,
    profile_id: i32,
    connector: i32,
    stack_level: i32,
    purpose: ChargingProfilePurpose,
) -> NewChargingProfile {
    NewChargingProfile {
        charge_point_id: cp,
        connector_id: connector,
        charging_profile_id: profile_id,
        stack_level,
        purpose,
        kind: ChargingProfileKind::Absolute,
        recurrency: None,
        valid_from: None,
        valid_to: None,
        transaction_id: None,
        schedule: json!({
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{ "startPeriod": 0, "limit": 16.0 }]
        }),
    }
}

/// (chargingProfileId, connector, stack level, purpose) of each stored profile, in list order.
async fn profiles_of(db: &Database, cp: i64) -> Vec<(i32, i32, i32, ChargingProfilePurpose)> {
    db.charging_profiles()
        .list(cp)
        .await
        .expect("listed")
        .into_iter()
        .map(|p| {
            (
                p.charging_profile_id,
                p.connector_id,
                p.stack_level,
                p.purpose,
            )
        })
        .collect()
}

async fn check_charging_profile_replacement(db: &Database) {
    use ChargingProfilePurpose::{ChargePointMaxProfile as Max, TxDefaultProfile as Default};
    migrated(db).await;
    let cp = charge_point(db, "CP-SMART").await;
    let other = charge_point(db, "CP-SMART-2").await;
    let profiles = db.charging_profiles();

    let recurring = NewChargingProfile {
        kind: ChargingProfileKind::Recurring,
        recurrency: Some(RecurrencyKind::Daily),
        valid_from: Some(utc("2025-06-01T00:00:00Z")),
        valid_to: Some(utc("2025-12-31T23:59:59.999Z")),
        schedule: json!({
            "duration": 86400,
            "startSchedule": "2025-06-01T00:00:00Z",
            "chargingRateUnit": "W",
            "chargingSchedulePeriod": [
                { "startPeriod": 0, "limit": 11000.0, "numberPhases": 3 },
                { "startPeriod": 28800, "limit": 7400.5 }
            ],
            "minChargingRate": 1200.0
        }),
        ..profile(cp, 10, 1, 0, Default)
    };
    let first = profiles.install(&recurring).await.expect("installed");
    assert_eq!(first.replaced, 0);
    let stored = &profiles.list(cp).await.expect("listed")[0];
    assert_eq!(stored.id, first.id);
    assert_eq!(stored.charge_point_id, cp);
    assert_eq!(stored.kind, ChargingProfileKind::Recurring);
    assert_eq!(stored.recurrency, Some(RecurrencyKind::Daily));
    assert_eq!(stored.valid_from, recurring.valid_from);
    assert_eq!(stored.valid_to, recurring.valid_to);
    assert_eq!(stored.transaction_id, None);
    assert_eq!(
        stored.schedule, recurring.schedule,
        "the schedule JSON comes back as sent"
    );
    assert_recent(stored.created_at);

    profiles
        .install(&profile(cp, 11, 1, 1, Default))
        .await
        .expect("installed");
    profiles
        .install(&profile(cp, 12, 0, 0, Max))
        .await
        .expect("installed");
    // The same connector, stack level and purpose on another charger is another profile.
    profiles
        .install(&profile(other, 10, 1, 0, Default))
        .await
        .expect("installed");
    assert_eq!(
        profiles_of(db, cp).await,
        [(12, 0, 0, Max), (10, 1, 0, Default), (11, 1, 1, Default)]
    );

    // The same chargingProfileId replaces the old profile wherever it was.
    let moved = profiles
        .install(&profile(cp, 10, 2, 0, Default))
        .await
        .expect("installed");
    assert_eq!(moved.replaced, 1);
    assert_eq!(
        profiles_of(db, cp).await,
        [(12, 0, 0, Max), (11, 1, 1, Default), (10, 2, 0, Default)]
    );
    // So does the same connector, stack level and purpose under another id.
    let restacked = profiles
        .install(&profile(cp, 13, 1, 1, Default))
        .await
        .expect("installed");
    assert_eq!(restacked.replaced, 1);
    assert_eq!(
        profiles_of(db, cp).await,
        [(12, 0, 0, Max), (13, 1, 1, Default), (10, 2, 0, Default)]
    );
    // Both rules at once replace two profiles.
    let both = profiles
        .install(&profile(cp, 12, 2, 0, Default))
        .await
        .expect("installed");
    assert_eq!(both.replaced, 2);
    assert_eq!(
        profiles_of(db, cp).await,
        [(13, 1, 1, Default), (12, 2, 0, Default)]
    );
    // Another purpose at the same place and level is another profile.
    let tx = transaction(db, cp, 2, "TAG", "2025-06-01T10:00:00Z").await;
    let tx_profile = profiles
        .install(&NewChargingProfile {
            transaction_id: Some(tx),
            kind: ChargingProfileKind::Relative,
            ..profile(cp, 14, 2, 0, ChargingProfilePurpose::TxProfile)
        })
        .await
        .expect("installed");
    assert_eq!(tx_profile.replaced, 0);

    let on_two: Vec<_> = profiles
        .list_for_connector(cp, 2)
        .await
        .expect("listed")
        .into_iter()
        .map(|p| (p.charging_profile_id, p.purpose, p.transaction_id))
        .collect();
    assert_eq!(
        on_two,
        [
            (12, Default, None),
            (14, ChargingProfilePurpose::TxProfile, Some(tx))
        ]
    );
    assert!(
        profiles
            .list_for_connector(cp, 0)
            .await
            .expect("listed")
            .is_empty()
    );
    assert_eq!(profiles_of(db, other).await, [(10, 1, 0, Default)]);

    assert_not_found(
        profiles.install(&profile(cp + 1000, 1, 0, 0, Max)).await,
        "charge point",
    );
    // A negative stack level is refused by the database, and the old profile stays.
    assert!(matches!(
        profiles.install(&profile(cp, 13, 1, -1, Default)).await,
        Err(StorageError::Other(_))
    ));
    assert_eq!(profiles_of(db, cp).await.len(), 3);
}

async fn check_charging_profile_clear_filters(db: &Database) {
    use ChargingProfilePurpose::{
        ChargePointMaxProfile as Max, TxDefaultProfile as Default, TxProfile as Tx,
    };
    migrated(db).await;
    let cp = charge_point(db, "CP-CLEAR").await;
    let other = charge_point(db, "CP-CLEAR-2").await;
    let profiles = db.charging_profiles();
    let install_all = || async {
        profiles
            .clear(cp, &ClearFilter::default())
            .await
            .expect("cleared");
        for new in [
            profile(cp, 1, 0, 0, Max),
            profile(cp, 2, 0, 1, Default),
            profile(cp, 3, 1, 0, Default),
            profile(cp, 4, 1, 1, Default),
            profile(cp, 5, 1, 0, Tx),
            profile(cp, 6, 2, 1, Default),
        ] {
            profiles.install(&new).await.expect("installed");
        }
    };
    let ids = |listed: Vec<(i32, i32, i32, ChargingProfilePurpose)>| {
        listed.into_iter().map(|p| p.0).collect::<Vec<_>>()
    };
    profiles
        .install(&profile(other, 1, 1, 0, Default))
        .await
        .expect("installed");

    install_all().await;
    // An id clears that profile only, whatever else the request says.
    let by_id = ClearFilter {
        id: Some(3),
        connector_id: Some(2),
        purpose: Some(Max),
        stack_level: Some(9),
    };
    assert_eq!(profiles.clear(cp, &by_id).await.expect("cleared"), 1);
    assert_eq!(ids(profiles_of(db, cp).await), [1, 2, 4, 5, 6]);
    assert_eq!(
        profiles
            .clear(
                cp,
                &ClearFilter {
                    id: Some(99),
                    ..ClearFilter::default()
                }
            )
            .await
            .expect("cleared"),
        0
    );

    install_all().await;
    let connector_one = ClearFilter {
        connector_id: Some(1),
        ..ClearFilter::default()
    };
    assert_eq!(
        profiles.clear(cp, &connector_one).await.expect("cleared"),
        3
    );
    assert_eq!(ids(profiles_of(db, cp).await), [1, 2, 6]);

    install_all().await;
    let defaults = ClearFilter {
        purpose: Some(Default),
        ..ClearFilter::default()
    };
    assert_eq!(profiles.clear(cp, &defaults).await.expect("cleared"), 4);
    assert_eq!(ids(profiles_of(db, cp).await), [1, 5]);

    install_all().await;
    let level_one_defaults = ClearFilter {
        purpose: Some(Default),
        stack_level: Some(1),
        ..ClearFilter::default()
    };
    assert_eq!(
        profiles
            .clear(cp, &level_one_defaults)
            .await
            .expect("cleared"),
        3
    );
    assert_eq!(ids(profiles_of(db, cp).await), [1, 3, 5]);

    install_all().await;
    let all_criteria = ClearFilter {
        id: None,
        connector_id: Some(1),
        purpose: Some(Default),
        stack_level: Some(0),
    };
    assert_eq!(profiles.clear(cp, &all_criteria).await.expect("cleared"), 1);
    assert_eq!(ids(profiles_of(db, cp).await), [1, 2, 4, 5, 6]);

    install_all().await;
    assert_eq!(
        profiles
            .clear(cp, &ClearFilter::default())
            .await
            .expect("cleared"),
        6,
        "no criteria clear all of the charger's profiles"
    );
    assert!(profiles_of(db, cp).await.is_empty());
    assert_eq!(
        ids(profiles_of(db, other).await),
        [1],
        "another charger's profiles stay"
    );
}

fn entry(tag: &str, status: Option<&str>) -> LocalListEntry {
    LocalListEntry {
        id_tag: tag.into(),
        status: status.map(str::to_string),
        expiry_date: None,
        parent_id_tag: None,
    }
}

async fn check_local_list_full_and_differential(db: &Database) {
    migrated(db).await;
    let cp = charge_point(db, "CP-LIST").await;
    let other = charge_point(db, "CP-LIST-2").await;
    let list = db.local_list();
    let tags = |entries: Vec<LocalListEntry>| {
        entries
            .into_iter()
            .map(|e| (e.id_tag, e.status))
            .collect::<Vec<_>>()
    };
    let owned = |tag: &str, status: &str| (tag.to_string(), Some(status.to_string()));
    assert_eq!(list.version(cp).await.expect("read"), None);

    let expiry = utc("2026-01-01T00:00:00Z");
    list.apply(
        cp,
        1,
        LocalListUpdate::Full,
        &[
            LocalListEntry {
                expiry_date: Some(expiry),
                parent_id_tag: Some("FLEET".into()),
                ..entry("TAG-B", Some("Accepted"))
            },
            entry("TAG-A", Some("Blocked")),
            entry("TAG-C", Some("Accepted")),
            entry("TAG-NONE", None),
        ],
    )
    .await
    .expect("applied");
    list.apply(
        other,
        7,
        LocalListUpdate::Full,
        &[entry("TAG-A", Some("Accepted"))],
    )
    .await
    .expect("applied");
    let stored = list.entries(cp).await.expect("listed");
    assert_eq!(
        stored[1],
        LocalListEntry {
            expiry_date: Some(expiry),
            parent_id_tag: Some("FLEET".into()),
            ..entry("TAG-B", Some("Accepted"))
        }
    );
    assert_eq!(
        tags(stored),
        [
            owned("TAG-A", "Blocked"),
            owned("TAG-B", "Accepted"),
            owned("TAG-C", "Accepted")
        ],
        "an entry without a status is not on the list"
    );
    assert_eq!(list.version(cp).await.expect("read"), Some(1));
    assert_eq!(
        db.charge_points()
            .get(cp)
            .await
            .expect("found")
            .local_list_version,
        Some(1)
    );

    // A differential update changes and adds entries with a status and removes those without
    // (idTags match in any letter case); the rest stays.
    list.apply(
        cp,
        2,
        LocalListUpdate::Differential,
        &[
            entry("tag-a", Some("Accepted")),
            entry("TAG-C", None),
            entry("TAG-D", Some("Expired")),
            entry("TAG-UNKNOWN", None),
        ],
    )
    .await
    .expect("applied");
    assert_eq!(
        tags(list.entries(cp).await.expect("listed")),
        [
            owned("TAG-A", "Accepted"),
            owned("TAG-B", "Accepted"),
            owned("TAG-D", "Expired")
        ]
    );
    assert_eq!(list.version(cp).await.expect("read"), Some(2));

    // The last entry for a tag decides.
    list.apply(
        cp,
        3,
        LocalListUpdate::Differential,
        &[
            entry("TAG-E", Some("Accepted")),
            entry("TAG-E", None),
            entry("TAG-B", None),
            entry("tag-b", Some("Blocked")),
        ],
    )
    .await
    .expect("applied");
    let after: Vec<_> = tags(list.entries(cp).await.expect("listed"))
        .into_iter()
        .map(|(tag, status)| (tag.to_ascii_uppercase(), status))
        .collect();
    assert_eq!(
        after,
        [
            owned("TAG-A", "Accepted"),
            owned("TAG-B", "Blocked"),
            owned("TAG-D", "Expired")
        ]
    );

    // A full update replaces everything; an empty one empties the list.
    list.apply(
        cp,
        4,
        LocalListUpdate::Full,
        &[entry("TAG-Z", Some("Accepted"))],
    )
    .await
    .expect("applied");
    assert_eq!(
        tags(list.entries(cp).await.expect("listed")),
        [owned("TAG-Z", "Accepted")]
    );
    list.apply(cp, 5, LocalListUpdate::Full, &[])
        .await
        .expect("applied");
    assert!(list.entries(cp).await.expect("listed").is_empty());
    assert_eq!(list.version(cp).await.expect("read"), Some(5));
    assert_eq!(
        tags(list.entries(other).await.expect("listed")),
        [owned("TAG-A", "Accepted")],
        "another charger's list stays"
    );
    assert_eq!(list.version(other).await.expect("read"), Some(7));

    assert_not_found(
        list.apply(
            cp + 1000,
            1,
            LocalListUpdate::Full,
            &[entry("TAG-A", Some("Accepted"))],
        )
        .await,
        "charge point",
    );
    assert_not_found(list.version(cp + 1000).await, "charge point");
    // An over-long idTag is refused and the whole update with it, version included.
    assert!(matches!(
        list.apply(
            cp,
            6,
            LocalListUpdate::Full,
            &[
                entry("TAG-OK", Some("Accepted")),
                entry(&"T".repeat(21), Some("Accepted"))
            ],
        )
        .await,
        Err(StorageError::Other(_))
    ));
    assert_eq!(list.version(cp).await.expect("read"), Some(5));
    assert!(list.entries(cp).await.expect("listed").is_empty());
}

async fn check_transaction_lookups(db: &Database) {
    migrated(db).await;
    let cp = charge_point(db, "CP-TXL").await;
    let other = charge_point(db, "CP-TXL-2").await;
    let transactions = db.transactions();
    let start = NewTransaction {
        charge_point_id: cp,
        evse_number: 1,
        id_token: "Tag-1".into(),
        meter_start_wh: EnergyWh(100),
        started_at: utc("2025-06-01T10:00:00Z"),
        reservation_id: Some(42),
        start_auth_status: Some("ConcurrentTx".into()),
    };
    let first = transactions.start(&start).await.expect("started");
    let stored = transactions.get(first).await.expect("found");
    assert_eq!(stored.reservation_id, Some(42));
    assert_eq!(stored.start_auth_status.as_deref(), Some("ConcurrentTx"));
    assert_eq!(stored.stop_id_token, None);

    assert_eq!(
        transactions
            .active_on(cp, 1)
            .await
            .expect("looked up")
            .map(|t| t.id),
        Some(first)
    );
    let second = transactions
        .start(&NewTransaction {
            started_at: utc("2025-06-01T11:00:00Z"),
            reservation_id: None,
            ..start.clone()
        })
        .await
        .expect("started");
    assert_eq!(
        transactions
            .active_on(cp, 1)
            .await
            .expect("looked up")
            .map(|t| t.id),
        Some(second),
        "the latest one not stopped"
    );
    let elsewhere = transaction(db, other, 1, "TAG-1", "2025-06-01T10:30:00Z").await;
    assert_eq!(
        transactions
            .active_for_token("tag-1")
            .await
            .expect("looked up")
            .into_iter()
            .map(|t| t.id)
            .collect::<Vec<_>>(),
        [first, elsewhere, second],
        "in any letter case, oldest first"
    );

    transactions
        .stop(
            second,
            &StopTransaction {
                meter_stop_wh: EnergyWh(900),
                stopped_at: utc("2025-06-01T12:00:00Z"),
                stop_reason: Some("Local".into()),
                stop_id_token: Some("TAG-9".into()),
            },
        )
        .await
        .expect("stopped");
    assert_eq!(
        transactions
            .get(second)
            .await
            .expect("found")
            .stop_id_token
            .as_deref(),
        Some("TAG-9")
    );
    assert_eq!(
        transactions
            .active_on(cp, 1)
            .await
            .expect("looked up")
            .map(|t| t.id),
        Some(first)
    );
    assert_eq!(
        transactions.active_on(cp, 2).await.expect("looked up"),
        None
    );
    assert_eq!(
        transactions
            .active_for_token("TAG-1")
            .await
            .expect("looked up")
            .len(),
        2
    );
    assert!(
        transactions
            .active_for_token("TAG-9")
            .await
            .expect("looked up")
            .is_empty()
    );

    assert_eq!(
        transactions
            .belongs_to(first, cp)
            .await
            .expect("looked up")
            .map(|t| t.id),
        Some(first)
    );
    assert_eq!(
        transactions
            .belongs_to(first, other)
            .await
            .expect("looked up"),
        None,
        "another charger's transaction"
    );
    assert_eq!(
        transactions
            .belongs_to(first + 1000, cp)
            .await
            .expect("looked up"),
        None
    );
}

fn sample(
    cp: i64,
    tx: Option<i64>,
    at: DateTime<Utc>,
    measurand: &str,
    value: f64,
) -> NewMeterValue {
    NewMeterValue {
        transaction_id: tx,
        charge_point_id: cp,
        evse_number: 1,
        sampled_at: at,
        measurand: measurand.into(),
        phase: None,
        unit: "Wh".into(),
        value,
        context: Some("Sample.Periodic".into()),
        location: None,
    }
}

async fn check_duplicate_meter_values_are_ignored(db: &Database) {
    migrated(db).await;
    let cp = charge_point(db, "CP-MV").await;
    let tx = transaction(db, cp, 1, "TAG", "2025-06-01T10:00:00Z").await;
    let transactions = db.transactions();
    let at = utc("2025-06-01T10:01:00Z");
    let energy = sample(cp, Some(tx), at, "Energy.Active.Import.Register", 100.0);
    let phases: Vec<_> = ["L1", "L2", "L3"]
        .into_iter()
        .map(|phase| NewMeterValue {
            phase: Some(phase.into()),
            measurand: "Current.Import".into(),
            unit: "A".into(),
            ..sample(cp, Some(tx), at, "", 16.0)
        })
        .collect();
    let mut message = vec![energy.clone()];
    message.extend(phases.iter().cloned());

    transactions
        .add_meter_values(&message)
        .await
        .expect("stored");
    transactions
        .add_meter_values(&message)
        .await
        .expect("a resent MeterValues is accepted");
    let stored = transactions.meter_values(tx).await.expect("listed");
    assert_eq!(stored.len(), 4, "nothing stored twice");
    let phases_seen: Vec<_> = stored.iter().map(|v| v.phase.as_deref()).collect();
    assert_eq!(phases_seen, [None, Some("L1"), Some("L2"), Some("L3")]);
    assert_eq!(stored[0].location, None, "a missing location reads as none");
    assert_eq!(stored[0].context.as_deref(), Some("Sample.Periodic"));

    // The bulk path skips what is stored and what repeats within the call, and counts the rest.
    let next = sample(
        cp,
        Some(tx),
        at + Duration::minutes(1),
        "Energy.Active.Import.Register",
        200.0,
    );
    let inserted = transactions
        .insert_meter_values_bulk(&[
            energy.clone(),
            next.clone(),
            next.clone(),
            phases[0].clone(),
        ])
        .await
        .expect("stored");
    assert_eq!(inserted, 1);
    assert_eq!(
        transactions
            .insert_meter_values_bulk(&message)
            .await
            .expect("stored"),
        0
    );
    // The first stored copy wins over a resend with another value.
    let changed = NewMeterValue {
        value: 999.0,
        ..energy.clone()
    };
    assert_eq!(
        transactions
            .insert_meter_values_bulk(std::slice::from_ref(&changed))
            .await
            .expect("stored"),
        0
    );
    transactions
        .add_meter_values(&[changed])
        .await
        .expect("stored");
    let stored = transactions.meter_values(tx).await.expect("listed");
    assert_eq!(stored.len(), 5);
    assert_eq!(stored[0].value, 100.0);

    // An empty phase is the same as none.
    let empty_phase = NewMeterValue {
        phase: Some(String::new()),
        ..energy.clone()
    };
    assert_eq!(
        transactions
            .insert_meter_values_bulk(&[empty_phase])
            .await
            .expect("stored"),
        0
    );
    // Another context, location or EVSE at the same instant is another sample.
    let variants = [
        NewMeterValue {
            context: Some("Transaction.End".into()),
            ..energy.clone()
        },
        NewMeterValue {
            context: None,
            ..energy.clone()
        },
        NewMeterValue {
            location: Some("Outlet".into()),
            ..energy.clone()
        },
        NewMeterValue {
            evse_number: 0,
            transaction_id: None,
            ..energy.clone()
        },
    ];
    assert_eq!(
        transactions
            .insert_meter_values_bulk(&variants)
            .await
            .expect("stored"),
        4
    );
    assert_eq!(
        transactions.meter_values(tx).await.expect("listed").len(),
        8
    );
    assert_eq!(
        transactions
            .insert_meter_values_bulk(&[])
            .await
            .expect("nothing to do"),
        0
    );
}

async fn check_bulk_insert_of_5000_meter_values(db: &Database) {
    migrated(db).await;
    let cp = charge_point(db, "CP-BULK").await;
    let tx = transaction(db, cp, 1, "TAG", "2025-06-01T00:00:00Z").await;
    let transactions = db.transactions();
    let start = utc("2025-06-01T00:00:00Z");
    let values: Vec<_> = (0..5_000)
        .map(|i| {
            sample(
                cp,
                Some(tx),
                start + Duration::milliseconds(i * 1_500),
                "Energy.Active.Import.Register",
                i as f64,
            )
        })
        .collect();
    let inserted = transactions
        .insert_meter_values_bulk(&values)
        .await
        .expect("stored");
    assert_eq!(inserted, 5_000);
    let stored = transactions.meter_values(tx).await.expect("listed");
    assert_eq!(stored.len(), 5_000);
    assert!(
        stored
            .iter()
            .zip(&values)
            .all(|(s, v)| s.sampled_at == v.sampled_at && s.value == v.value),
        "every value is stored at its time"
    );

    // Resending half of it with 500 new ones stores only the new ones.
    let mut again: Vec<_> = values[2_500..].to_vec();
    again.extend((5_000..5_500).map(|i| {
        sample(
            cp,
            Some(tx),
            start + Duration::milliseconds(i * 1_500),
            "Energy.Active.Import.Register",
            i as f64,
        )
    }));
    assert_eq!(
        transactions
            .insert_meter_values_bulk(&again)
            .await
            .expect("stored"),
        500
    );
    assert_eq!(
        transactions.meter_values(tx).await.expect("listed").len(),
        5_500
    );
}

async fn check_meter_values_with_a_missing_transaction(db: &Database) {
    migrated(db).await;
    let cp = charge_point(db, "CP-MISSING").await;
    let tx = transaction(db, cp, 1, "TAG", "2025-06-01T00:00:00Z").await;
    let transactions = db.transactions();
    let start = utc("2025-06-01T00:00:00Z");
    // The bad value is in the third statement, after two that succeeded.
    let mut values: Vec<_> = (0..2_500)
        .map(|i| {
            sample(
                cp,
                Some(tx),
                start + Duration::seconds(i),
                "Energy.Active.Import.Register",
                i as f64,
            )
        })
        .collect();
    values[2_400].transaction_id = Some(tx + 1000);
    assert_not_found(
        transactions.insert_meter_values_bulk(&values).await,
        "charge point or transaction",
    );
    assert!(
        transactions
            .meter_values(tx)
            .await
            .expect("listed")
            .is_empty(),
        "nothing of the failed call stays"
    );
    assert_not_found(
        transactions.add_meter_values(&values[2_399..2_401]).await,
        "charge point or transaction",
    );
    let unknown_charger = NewMeterValue {
        charge_point_id: cp + 1000,
        transaction_id: None,
        ..values[0].clone()
    };
    assert_not_found(
        transactions
            .insert_meter_values_bulk(&[unknown_charger])
            .await,
        "charge point or transaction",
    );
    assert!(
        transactions
            .meter_values(tx)
            .await
            .expect("listed")
            .is_empty()
    );
}

/// Applies only migration 0001 (from a copy of its file, so its checksum matches).
async fn migrate_0001_only(db: &Database) {
    let dialect = db.backend_name();
    let file = "0001_charging_domain.sql";
    let dir = tempfile::tempdir().expect("a temporary directory");
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dialect)
        .join(file);
    std::fs::copy(&source, dir.path().join(file)).expect("0001 is copied");
    let migrator = sqlx::migrate::Migrator::new(dir.path())
        .await
        .expect("0001 is read");
    match db {
        Database::MySql(pool) => migrator.run(pool).await,
        Database::Sqlite(pool) => migrator.run(pool).await,
    }
    .expect("0001 applies");
}

/// Runs `statement` with its placeholders bound to the timestamps `times`, spelled as each
/// backend stores them.
async fn execute_at(db: &Database, statement: &str, times: &[&str]) {
    let result = match db {
        Database::MySql(pool) => {
            let mut query = sqlx::query(statement);
            for at in times {
                query = query.bind(utc(at).naive_utc());
            }
            query.execute(pool).await.map(|_| ())
        }
        Database::Sqlite(pool) => {
            let mut query = sqlx::query(statement);
            for at in times {
                query = query.bind(utc(at).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
            }
            query.execute(pool).await.map(|_| ())
        }
    };
    result.unwrap_or_else(|err| panic!("`{statement}` failed: {err}"));
}

async fn check_0002_applies_to_a_populated_0001_database(db: &Database) {
    migrate_0001_only(db).await;
    assert_eq!(
        db.pending_migrations().await.expect("listed"),
        [2, 3, 4, 5],
        "0002 and the later migrations are pending"
    );

    // Data as the released version wrote it.
    let cp = charge_point(db, "CP-OLD").await;
    db.charge_points()
        .add_evse(&NewEvse {
            charge_point_id: cp,
            evse_number: 1,
        })
        .await
        .expect("EVSE added");
    execute_at(
        db,
        &format!(
            "INSERT INTO transactions (id, charge_point_id, evse_number, id_token, \
             meter_start_wh, started_at, created_at) VALUES (7, {cp}, 1, 'OLD-TAG', 10, ?, ?)"
        ),
        &["2025-01-01T00:00:00Z", "2025-01-01T00:00:00Z"],
    )
    .await;
    let insert_sample = |value: f64, phase: &str, context: &str| {
        format!(
            "INSERT INTO meter_values (transaction_id, charge_point_id, evse_number, sampled_at, \
             measurand, phase, unit, value, context, location) VALUES (7, {cp}, 1, ?, \
             'Energy.Active.Import.Register', {phase}, 'Wh', {value}, {context}, NULL)"
        )
    };
    // The same sample twice (a resend before the unique key existed), and one with a phase.
    execute_at(
        db,
        &insert_sample(10.0, "NULL", "NULL"),
        &["2025-01-01T00:00:01Z"],
    )
    .await;
    execute_at(
        db,
        &insert_sample(10.0, "NULL", "NULL"),
        &["2025-01-01T00:00:01Z"],
    )
    .await;
    execute_at(
        db,
        &insert_sample(230.0, "'L1'", "'Sample.Periodic'"),
        &["2025-01-01T00:00:01Z"],
    )
    .await;

    assert_eq!(db.migrate().await.expect("0002 applies"), [2, 3, 4, 5]);
    assert!(db.pending_migrations().await.expect("listed").is_empty());

    let stored = db.charge_points().get(cp).await.expect("found");
    assert_eq!(stored.identity, cp_id("CP-OLD"));
    assert_eq!(stored.security_profile, 1);
    assert_eq!((stored.status, stored.local_list_version), (None, None));
    let evse = &db.charge_points().evses(cp).await.expect("listed")[0];
    assert_eq!(
        (evse.status.as_str(), evse.error_code.as_deref()),
        ("Unknown", None)
    );
    let old_tx = db.transactions().get(7).await.expect("found");
    assert_eq!(old_tx.id_token, "OLD-TAG");
    assert_eq!(
        (old_tx.reservation_id, old_tx.start_auth_status),
        (None, None)
    );
    let values = db.transactions().meter_values(7).await.expect("listed");
    let seen: Vec<_> = values
        .iter()
        .map(|v| {
            (
                v.value,
                v.phase.as_deref(),
                v.context.as_deref(),
                v.location.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (10.0, None, None, None),
            (230.0, Some("L1"), Some("Sample.Periodic"), None)
        ],
        "NULLs read back as none, and the resent copy is gone"
    );

    // The migrated table takes new values and ignores resends of the old ones.
    let old = NewMeterValue {
        transaction_id: Some(7),
        charge_point_id: cp,
        evse_number: 1,
        sampled_at: utc("2025-01-01T00:00:01Z"),
        measurand: "Energy.Active.Import.Register".into(),
        phase: None,
        unit: "Wh".into(),
        value: 10.0,
        context: None,
        location: None,
    };
    let new = NewMeterValue {
        sampled_at: utc("2025-01-01T00:00:02Z"),
        value: 20.0,
        ..old.clone()
    };
    assert_eq!(
        db.transactions()
            .insert_meter_values_bulk(&[old, new])
            .await
            .expect("stored"),
        1
    );
    assert_eq!(
        db.transactions()
            .meter_values(7)
            .await
            .expect("listed")
            .len(),
        3
    );
    // New rows get ids after the copied ones.
    let ids: Vec<_> = db
        .transactions()
        .meter_values(7)
        .await
        .expect("listed")
        .into_iter()
        .map(|v| v.id)
        .collect();
    assert!(ids[2] > ids[1] && ids[1] > ids[0], "{ids:?}");
    assert_eq!(
        db.migrate().await.expect("nothing to do"),
        Vec::<i64>::new()
    );
}
