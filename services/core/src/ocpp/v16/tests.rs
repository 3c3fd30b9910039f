//! The action table, and every message and enum checked against the official schemas.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::testing::{Examples, at, schema_errors};
use super::*;

fn schema_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ocpp-schemas/1.6")
}

fn schema_file(name: &str) -> Value {
    let text = std::fs::read_to_string(schema_dir().join(format!("{name}.json")))
        .expect("the schema file is readable");
    serde_json::from_str(&text).expect("the schema is JSON")
}

#[test]
fn there_are_28_actions_in_alphabetical_order() {
    assert_eq!(Action::ALL.len(), 28);
    let names: Vec<&str> = Action::ALL.iter().map(|action| action.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(names, sorted);
}

#[test]
fn every_schema_file_belongs_to_an_action_and_every_action_embeds_both() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(schema_dir())
        .expect("the schema directory is readable")
        .map(|entry| {
            let entry = entry.expect("a directory entry");
            entry.file_name().to_string_lossy().into_owned()
        })
        .filter(|name| name.ends_with(".json"))
        .collect();
    let expected: BTreeSet<String> = Action::ALL
        .iter()
        .flat_map(|action| [format!("{action}.json"), format!("{action}Response.json")])
        .collect();
    assert_eq!(on_disk, expected);
    assert_eq!(on_disk.len(), 56);

    for action in Action::ALL {
        for (embedded, file, title) in [
            (
                action.request_schema(),
                action.to_string(),
                format!("{action}Request"),
            ),
            (
                action.response_schema(),
                format!("{action}Response"),
                format!("{action}Response"),
            ),
        ] {
            let on_disk = schema_file(&file);
            let embedded: Value = serde_json::from_str(embedded).expect("the schema is JSON");
            assert_eq!(embedded, on_disk, "{file}");
            assert_eq!(embedded["title"], title.as_str(), "{file}");
        }
    }
}

#[test]
fn actions_round_trip_through_their_spelling() {
    for action in Action::ALL {
        assert_eq!(action.as_str().parse::<Action>(), Ok(*action));
        assert_eq!(action.to_string(), action.as_str());
        assert_eq!(
            serde_json::to_value(action).expect("serializes"),
            action.as_str()
        );
    }
}

#[test]
fn actions_parse_exactly_and_refusals_name_the_value() {
    for bad in ["bootnotification", "Foo", "BootNotification ", ""] {
        let err = bad.parse::<Action>().expect_err("not an action");
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("{bad:?} is not a valid OCPP 1.6 action")),
            "{message}"
        );
        assert!(message.contains("`BootNotification`"), "{message}");
    }
    let err = "x"
        .repeat(10_000)
        .parse::<Action>()
        .expect_err("not an action");
    assert!(err.value.len() < 100, "{}", err.value);
}

#[test]
fn the_ten_charger_initiated_actions_are_sent_by_chargers() {
    let by = |sender: Sender| -> Vec<&str> {
        Action::ALL
            .iter()
            .filter(|action| action.sender() == sender)
            .map(|action| action.as_str())
            .collect()
    };
    assert_eq!(
        by(Sender::ChargePoint),
        [
            "Authorize",
            "BootNotification",
            "DiagnosticsStatusNotification",
            "FirmwareStatusNotification",
            "Heartbeat",
            "MeterValues",
            "StartTransaction",
            "StatusNotification",
            "StopTransaction",
        ]
    );
    assert_eq!(by(Sender::Either), ["DataTransfer"]);
    assert_eq!(by(Sender::CentralSystem).len(), 18);
}

fn sent_by_chargers<R: ChargePointRequest>() -> Action {
    R::ACTION
}

fn sent_by_the_central_system<R: CentralSystemRequest>() -> Action {
    R::ACTION
}

#[test]
fn the_marker_traits_follow_the_sender() {
    assert_eq!(
        sent_by_chargers::<DataTransferRequest>(),
        sent_by_the_central_system::<DataTransferRequest>()
    );
    assert_eq!(
        sent_by_chargers::<BootNotificationRequest>().sender(),
        Sender::ChargePoint
    );
    assert_eq!(
        sent_by_the_central_system::<ResetRequest>().sender(),
        Sender::CentralSystem
    );
}

/// Checks an action's request and response examples; returns the action, so that the caller
/// can tell every action was covered.
fn check_action<R>() -> Action
where
    R: Request + Examples + PartialEq,
    R::Response: Examples + PartialEq,
{
    let action = R::ACTION;
    check_payload(
        &format!("{action} request"),
        action.request_schema(),
        &R::full(),
        &R::minimal(),
    );
    check_payload(
        &format!("{action} response"),
        action.response_schema(),
        &R::Response::full(),
        &R::Response::minimal(),
    );
    action
}

fn check_payload<T>(what: &str, schema: &str, full: &T, minimal: &T)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let full_json = serde_json::to_value(full).expect("serializes");
    let minimal_json = serde_json::to_value(minimal).expect("serializes");
    for (example, json) in [(full, &full_json), (minimal, &minimal_json)] {
        let errors = schema_errors(schema, json);
        assert!(
            errors.is_empty(),
            "{what} {json} does not conform: {errors:#?}"
        );
        let back: T = serde_json::from_value(json.clone())
            .unwrap_or_else(|err| panic!("{what} {json} does not read back: {err}"));
        assert_eq!(&back, example, "{what}");
    }

    // Proves the types have every field the schema has, and that optional ones are optional.
    let schema: Value = serde_json::from_str(schema).expect("the schema is JSON");
    let mut missing = Vec::new();
    unfilled(&schema, &full_json, "", &mut missing);
    assert!(
        missing.is_empty(),
        "{what}: the full example {full_json} lacks {missing:?}"
    );
    let mut optional = Vec::new();
    optional_present(&schema, &minimal_json, "", &mut optional);
    assert!(
        optional.is_empty(),
        "{what}: the minimal example {minimal_json} has the optional {optional:?}"
    );
}

/// The properties and array items the schema declares that `instance` lacks.
fn unfilled(schema: &Value, instance: &Value, path: &str, out: &mut Vec<String>) {
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            let path = format!("{path}/{name}");
            match instance.get(name) {
                Some(value) => unfilled(property, value, &path, out),
                None => out.push(path),
            }
        }
    }
    if let Some(items) = schema.get("items") {
        match instance.as_array() {
            Some(values) if !values.is_empty() => {
                for (index, value) in values.iter().enumerate() {
                    unfilled(items, value, &format!("{path}/{index}"), out);
                }
            }
            _ => out.push(format!("{path}/0")),
        }
    }
}

/// The properties in `instance` that the schema does not require.
fn optional_present(schema: &Value, instance: &Value, path: &str, out: &mut Vec<String>) {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(object) = instance.as_object() {
        for (name, value) in object {
            let path = format!("{path}/{name}");
            if !required.contains(&name.as_str()) {
                out.push(path.clone());
            }
            if let Some(property) = schema.pointer(&format!("/properties/{name}")) {
                optional_present(property, value, &path, out);
            }
        }
    }
    if let (Some(items), Some(values)) = (schema.get("items"), instance.as_array()) {
        for (index, value) in values.iter().enumerate() {
            optional_present(items, value, &format!("{path}/{index}"), out);
        }
    }
}

#[test]
fn every_message_conforms_to_its_schema_and_round_trips() {
    let covered = [
        check_action::<AuthorizeRequest>(),
        check_action::<BootNotificationRequest>(),
        check_action::<CancelReservationRequest>(),
        check_action::<ChangeAvailabilityRequest>(),
        check_action::<ChangeConfigurationRequest>(),
        check_action::<ClearCacheRequest>(),
        check_action::<ClearChargingProfileRequest>(),
        check_action::<DataTransferRequest>(),
        check_action::<DiagnosticsStatusNotificationRequest>(),
        check_action::<FirmwareStatusNotificationRequest>(),
        check_action::<GetCompositeScheduleRequest>(),
        check_action::<GetConfigurationRequest>(),
        check_action::<GetDiagnosticsRequest>(),
        check_action::<GetLocalListVersionRequest>(),
        check_action::<HeartbeatRequest>(),
        check_action::<MeterValuesRequest>(),
        check_action::<RemoteStartTransactionRequest>(),
        check_action::<RemoteStopTransactionRequest>(),
        check_action::<ReserveNowRequest>(),
        check_action::<ResetRequest>(),
        check_action::<SendLocalListRequest>(),
        check_action::<SetChargingProfileRequest>(),
        check_action::<StartTransactionRequest>(),
        check_action::<StatusNotificationRequest>(),
        check_action::<StopTransactionRequest>(),
        check_action::<TriggerMessageRequest>(),
        check_action::<UnlockConnectorRequest>(),
        check_action::<UpdateFirmwareRequest>(),
    ];
    assert_eq!(covered.as_slice(), Action::ALL);
}

#[test]
fn empty_payloads_are_empty_objects() {
    assert_eq!(
        serde_json::to_string(&HeartbeatRequest {}).expect("serializes"),
        "{}"
    );
    assert_eq!(
        serde_json::from_str::<StatusNotificationResponse>("{}").expect("reads"),
        StatusNotificationResponse {}
    );
    assert!(serde_json::from_str::<HeartbeatRequest>(r#"{"now":true}"#).is_err());
}

/// The wire spellings of an enum, in order.
macro_rules! spellings {
    ($enum:ty) => {
        <$enum>::ALL
            .iter()
            .map(|value| value.as_str())
            .collect::<Vec<&str>>()
    };
}

#[test]
fn enums_spell_exactly_what_the_schemas_allow() {
    const SAMPLED: &str = "/items/properties/sampledValue/items/properties";
    let metered = |file: &'static str, array: &str| {
        let at = |field: &str| format!("/properties/{array}{SAMPLED}/{field}");
        let mut units = spellings!(UnitOfMeasure);
        if file == "StopTransaction" {
            // The one place the schemas disagree with each other: see UnitOfMeasure::Hertz.
            units.retain(|unit| *unit != "Hertz");
        }
        [
            (file, at("context"), spellings!(ReadingContext)),
            (file, at("format"), spellings!(ValueFormat)),
            (file, at("measurand"), spellings!(Measurand)),
            (file, at("phase"), spellings!(Phase)),
            (file, at("location"), spellings!(Location)),
            (file, at("unit"), units),
        ]
    };
    let profile = |file: &'static str, property: &str| {
        let at = |field: &str| format!("/properties/{property}/properties/{field}");
        [
            (
                file,
                at("chargingProfilePurpose"),
                spellings!(ChargingProfilePurpose),
            ),
            (
                file,
                at("chargingProfileKind"),
                spellings!(ChargingProfileKind),
            ),
            (file, at("recurrencyKind"), spellings!(RecurrencyKind)),
            (
                file,
                at("chargingSchedule/properties/chargingRateUnit"),
                spellings!(ChargingRateUnit),
            ),
        ]
    };
    let status = "/properties/status".to_string();
    let id_tag_status = "/properties/idTagInfo/properties/status".to_string();
    let mut cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "AuthorizeResponse",
            id_tag_status.clone(),
            spellings!(AuthorizationStatus),
        ),
        (
            "StartTransactionResponse",
            id_tag_status.clone(),
            spellings!(AuthorizationStatus),
        ),
        (
            "StopTransactionResponse",
            id_tag_status,
            spellings!(AuthorizationStatus),
        ),
        (
            "SendLocalList",
            "/properties/localAuthorizationList/items/properties/idTagInfo/properties/status"
                .into(),
            spellings!(AuthorizationStatus),
        ),
        (
            "BootNotificationResponse",
            status.clone(),
            spellings!(RegistrationStatus),
        ),
        (
            "CancelReservationResponse",
            status.clone(),
            spellings!(CancelReservationStatus),
        ),
        (
            "ChangeAvailability",
            "/properties/type".into(),
            spellings!(AvailabilityType),
        ),
        (
            "ChangeAvailabilityResponse",
            status.clone(),
            spellings!(AvailabilityStatus),
        ),
        (
            "ChangeConfigurationResponse",
            status.clone(),
            spellings!(ConfigurationStatus),
        ),
        (
            "ClearCacheResponse",
            status.clone(),
            spellings!(ClearCacheStatus),
        ),
        (
            "ClearChargingProfile",
            "/properties/chargingProfilePurpose".into(),
            spellings!(ChargingProfilePurpose),
        ),
        (
            "ClearChargingProfileResponse",
            status.clone(),
            spellings!(ClearChargingProfileStatus),
        ),
        (
            "DataTransferResponse",
            status.clone(),
            spellings!(DataTransferStatus),
        ),
        (
            "DiagnosticsStatusNotification",
            status.clone(),
            spellings!(DiagnosticsStatus),
        ),
        (
            "FirmwareStatusNotification",
            status.clone(),
            spellings!(FirmwareStatus),
        ),
        (
            "GetCompositeSchedule",
            "/properties/chargingRateUnit".into(),
            spellings!(ChargingRateUnit),
        ),
        (
            "GetCompositeScheduleResponse",
            status.clone(),
            spellings!(GetCompositeScheduleStatus),
        ),
        (
            "GetCompositeScheduleResponse",
            "/properties/chargingSchedule/properties/chargingRateUnit".into(),
            spellings!(ChargingRateUnit),
        ),
        (
            "RemoteStartTransactionResponse",
            status.clone(),
            spellings!(RemoteStartStopStatus),
        ),
        (
            "RemoteStopTransactionResponse",
            status.clone(),
            spellings!(RemoteStartStopStatus),
        ),
        (
            "ReserveNowResponse",
            status.clone(),
            spellings!(ReservationStatus),
        ),
        ("Reset", "/properties/type".into(), spellings!(ResetType)),
        ("ResetResponse", status.clone(), spellings!(ResetStatus)),
        (
            "SendLocalList",
            "/properties/updateType".into(),
            spellings!(UpdateType),
        ),
        (
            "SendLocalListResponse",
            status.clone(),
            spellings!(UpdateStatus),
        ),
        (
            "SetChargingProfileResponse",
            status.clone(),
            spellings!(ChargingProfileStatus),
        ),
        (
            "StatusNotification",
            "/properties/errorCode".into(),
            spellings!(ChargePointErrorCode),
        ),
        (
            "StatusNotification",
            status.clone(),
            spellings!(ChargePointStatus),
        ),
        (
            "StopTransaction",
            "/properties/reason".into(),
            spellings!(Reason),
        ),
        (
            "TriggerMessage",
            "/properties/requestedMessage".into(),
            spellings!(MessageTrigger),
        ),
        (
            "TriggerMessageResponse",
            status.clone(),
            spellings!(TriggerMessageStatus),
        ),
        ("UnlockConnectorResponse", status, spellings!(UnlockStatus)),
    ];
    cases.extend(metered("MeterValues", "meterValue"));
    cases.extend(metered("StopTransaction", "transactionData"));
    cases.extend(profile("RemoteStartTransaction", "chargingProfile"));
    cases.extend(profile("SetChargingProfile", "csChargingProfiles"));

    for (file, pointer, ours) in &cases {
        let schema = schema_file(file);
        let theirs: Vec<&str> = schema
            .pointer(&format!("{pointer}/enum"))
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("{file}.json has no enum at {pointer}"))
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(&theirs, ours, "{file}.json{pointer}");
    }

    // And no enum of any schema is left out.
    let mut in_schemas = BTreeSet::new();
    for action in Action::ALL {
        for file in [action.to_string(), format!("{action}Response")] {
            collect_enums(&schema_file(&file), &file, "", &mut in_schemas);
        }
    }
    let checked: BTreeSet<(String, String)> = cases
        .iter()
        .map(|(file, pointer, _)| (file.to_string(), pointer.clone()))
        .collect();
    assert_eq!(checked, in_schemas);
    assert_eq!(checked.len(), 52);
}

fn collect_enums(schema: &Value, file: &str, path: &str, out: &mut BTreeSet<(String, String)>) {
    let Some(object) = schema.as_object() else {
        return;
    };
    if object.contains_key("enum") {
        out.insert((file.to_string(), path.to_string()));
    }
    for (key, value) in object {
        collect_enums(value, file, &format!("{path}/{key}"), out);
    }
}

/// Every value of each enum serializes, parses and displays as its spelling, and the same
/// spelling in another case is refused.
macro_rules! check_enums {
    ($($enum:ty),+ $(,)?) => {
        $(
            for value in <$enum>::ALL {
                let text = value.as_str();
                assert_eq!(serde_json::to_value(value).expect("serializes"), text);
                assert_eq!(
                    serde_json::from_value::<$enum>(json!(text)).expect("reads"),
                    *value
                );
                assert_eq!(text.parse::<$enum>(), Ok(*value));
                assert_eq!(value.to_string(), text);

                let lower = text.to_lowercase();
                let other_case = if lower == text { text.to_uppercase() } else { lower };
                assert!(serde_json::from_value::<$enum>(json!(other_case)).is_err());
                let err = other_case.parse::<$enum>().expect_err("case matters");
                assert!(
                    err.to_string().starts_with(&format!("{other_case:?} is not a valid OCPP 1.6")),
                    "{err}"
                );
            }
        )+
    };
}

#[test]
fn enums_round_trip_and_are_case_sensitive() {
    check_enums!(
        AuthorizationStatus,
        ReadingContext,
        ValueFormat,
        Measurand,
        Phase,
        Location,
        UnitOfMeasure,
        ChargePointStatus,
        ChargePointErrorCode,
        RegistrationStatus,
        AvailabilityType,
        AvailabilityStatus,
        ConfigurationStatus,
        ClearCacheStatus,
        DataTransferStatus,
        RemoteStartStopStatus,
        ResetType,
        ResetStatus,
        Reason,
        UnlockStatus,
        FirmwareStatus,
        DiagnosticsStatus,
        UpdateType,
        UpdateStatus,
        ReservationStatus,
        CancelReservationStatus,
        ChargingProfileStatus,
        ClearChargingProfileStatus,
        GetCompositeScheduleStatus,
        ChargingProfilePurpose,
        ChargingProfileKind,
        RecurrencyKind,
        ChargingRateUnit,
        MessageTrigger,
        TriggerMessageStatus,
    );
}

#[test]
fn message_triggers_are_spelled_like_their_actions() {
    for trigger in MessageTrigger::ALL {
        let action: Action = trigger.as_str().parse().expect("an action");
        assert_eq!(action.sender(), Sender::ChargePoint, "{action}");
    }
}

/// Both serde and the schema refuse `payload` as the `T` of `schema`.
fn assert_refused<T: DeserializeOwned + Debug>(schema: &str, payload: Value) {
    assert!(
        !schema_errors(schema, &payload).is_empty(),
        "the schema accepts {payload}"
    );
    let read = serde_json::from_value::<T>(payload.clone());
    assert!(read.is_err(), "{payload} reads as {read:?}");
}

#[test]
fn unknown_fields_are_refused_at_every_level() {
    assert_refused::<BootNotificationRequest>(
        Action::BootNotification.request_schema(),
        json!({"chargePointVendor": "Alfen BV", "chargePointModel": "NG920", "colour": "red"}),
    );
    // A field of OCPP 2.0.1 (`evseId`) where 1.6 has `connectorId`.
    assert_refused::<StatusNotificationRequest>(
        Action::StatusNotification.request_schema(),
        json!({"evseId": 1, "errorCode": "NoError", "status": "Available"}),
    );
    assert_refused::<MeterValuesRequest>(
        Action::MeterValues.request_schema(),
        json!({"connectorId": 1, "meterValue": [{
            "timestamp": "2026-03-02T18:05:00Z",
            "sampledValue": [{"value": "1", "signedMeterValue": "abc"}]
        }]}),
    );
    assert_refused::<AuthorizeResponse>(
        Action::Authorize.response_schema(),
        json!({"idTagInfo": {"status": "Accepted", "groupIdToken": "X"}}),
    );
    assert_refused::<SetChargingProfileRequest>(
        Action::SetChargingProfile.request_schema(),
        json!({"connectorId": 1, "csChargingProfiles": {
            "chargingProfileId": 1, "stackLevel": 0,
            "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Relative",
            "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": 16.0, "phaseToUse": 1}
            ]}
        }}),
    );
    assert_refused::<HeartbeatRequest>(
        Action::Heartbeat.request_schema(),
        json!({"currentTime": "2026-03-02T18:05:00Z"}),
    );
}

#[test]
fn misspelled_enum_values_are_refused() {
    assert_refused::<StatusNotificationRequest>(
        Action::StatusNotification.request_schema(),
        json!({"connectorId": 1, "errorCode": "NoError", "status": "SuspendedEvse"}),
    );
    assert_refused::<StatusNotificationRequest>(
        Action::StatusNotification.request_schema(),
        json!({"connectorId": 1, "errorCode": "EvCommunicationError", "status": "Faulted"}),
    );
    for sampled in [
        json!({"value": "1", "measurand": "energy.active.import.register"}),
        json!({"value": "1", "measurand": "Energy.Active.Import"}),
        json!({"value": "1", "phase": "L1N"}),
        json!({"value": "1", "context": "Sample.periodic"}),
        json!({"value": "1", "unit": "kwh"}),
        json!({"value": "1", "location": "Ev"}),
    ] {
        assert_refused::<MeterValuesRequest>(
            Action::MeterValues.request_schema(),
            json!({"connectorId": 1, "meterValue": [{
                "timestamp": "2026-03-02T18:05:00Z", "sampledValue": [sampled]
            }]}),
        );
    }
    assert_refused::<StopTransactionRequest>(
        Action::StopTransaction.request_schema(),
        json!({"transactionId": 1, "meterStop": 2, "timestamp": "2026-03-02T18:05:00Z",
               "reason": "EvDisconnected"}),
    );
    assert_refused::<ResetRequest>(Action::Reset.request_schema(), json!({"type": "hard"}));
}

#[test]
fn times_are_read_in_any_offset_and_written_in_utc() {
    let heartbeat: HeartbeatResponse =
        serde_json::from_value(json!({"currentTime": "2026-03-02T19:50:00.5+02:00"}))
            .expect("reads");
    assert_eq!(heartbeat.current_time, at("2026-03-02T17:50:00.5Z"));
    assert_eq!(
        serde_json::to_value(&heartbeat).expect("serializes"),
        json!({"currentTime": "2026-03-02T17:50:00.500Z"})
    );
    // Chargers with a misconfigured clock send local time without an offset: neither the
    // schema nor the types take it.
    assert_refused::<HeartbeatResponse>(
        Action::Heartbeat.response_schema(),
        json!({"currentTime": "2026-03-02T17:50:00"}),
    );
}
