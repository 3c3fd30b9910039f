//! Test fixtures: schema checking, and a realistic example of every OCPP 1.6 payload.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::*;

/// A time in RFC 3339.
pub(super) fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("an RFC 3339 time")
}

/// Why `payload` does not conform to `schema` (one line per problem), empty when it does;
/// checked as the OCPP service checks: draft-04 with formats.
pub(super) fn schema_errors(schema: &str, payload: &Value) -> Vec<String> {
    let schema: Value = serde_json::from_str(schema).expect("the schema is JSON");
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .should_validate_formats(true)
        .build(&schema)
        .expect("the schema compiles");
    validator
        .iter_errors(payload)
        .map(|err| format!("{err} (at `{}`)", err.instance_path()))
        .collect()
}

/// Two examples of a payload: with every optional field, and with the required ones only.
pub(super) trait Examples: Sized {
    fn full() -> Self;
    fn minimal() -> Self;
}

/// For the payloads without fields.
macro_rules! empty_examples {
    ($($payload:ident),+ $(,)?) => {
        $(
            impl Examples for $payload {
                fn full() -> Self {
                    $payload {}
                }
                fn minimal() -> Self {
                    $payload {}
                }
            }
        )+
    };
}

empty_examples!(
    ClearCacheRequest,
    HeartbeatRequest,
    MeterValuesResponse,
    StatusNotificationResponse,
    UpdateFirmwareResponse,
    FirmwareStatusNotificationResponse,
    DiagnosticsStatusNotificationResponse,
    GetLocalListVersionRequest,
);

/// For the payloads whose fields are all required.
macro_rules! fixed_examples {
    ($($payload:ident => $value:expr;)+) => {
        $(
            impl Examples for $payload {
                fn full() -> Self {
                    $value
                }
                fn minimal() -> Self {
                    $value
                }
            }
        )+
    };
}

fixed_examples! {
    AuthorizeRequest => AuthorizeRequest { id_tag: "04E91C5A2B6480".into() };
    ChangeAvailabilityRequest => ChangeAvailabilityRequest {
        connector_id: 2,
        kind: AvailabilityType::Inoperative,
    };
    ChangeAvailabilityResponse => ChangeAvailabilityResponse {
        status: AvailabilityStatus::Scheduled,
    };
    ChangeConfigurationRequest => ChangeConfigurationRequest {
        key: "MeterValueSampleInterval".into(),
        value: "60".into(),
    };
    ChangeConfigurationResponse => ChangeConfigurationResponse {
        status: ConfigurationStatus::RebootRequired,
    };
    ClearCacheResponse => ClearCacheResponse { status: ClearCacheStatus::Accepted };
    RemoteStartTransactionResponse => RemoteStartTransactionResponse {
        status: RemoteStartStopStatus::Accepted,
    };
    RemoteStopTransactionRequest => RemoteStopTransactionRequest {
        transaction_id: 3_000_000_042,
    };
    RemoteStopTransactionResponse => RemoteStopTransactionResponse {
        status: RemoteStartStopStatus::Rejected,
    };
    ResetRequest => ResetRequest { kind: ResetType::Soft };
    ResetResponse => ResetResponse { status: ResetStatus::Accepted };
    UnlockConnectorRequest => UnlockConnectorRequest { connector_id: 1 };
    UnlockConnectorResponse => UnlockConnectorResponse { status: UnlockStatus::Unlocked };
    FirmwareStatusNotificationRequest => FirmwareStatusNotificationRequest {
        status: FirmwareStatus::InstallationFailed,
    };
    DiagnosticsStatusNotificationRequest => DiagnosticsStatusNotificationRequest {
        status: DiagnosticsStatus::UploadFailed,
    };
    SendLocalListResponse => SendLocalListResponse { status: UpdateStatus::VersionMismatch };
    GetLocalListVersionResponse => GetLocalListVersionResponse { list_version: 17 };
    HeartbeatResponse => HeartbeatResponse { current_time: at("2026-03-02T17:50:00Z") };
    ReserveNowResponse => ReserveNowResponse { status: ReservationStatus::Occupied };
    CancelReservationRequest => CancelReservationRequest { reservation_id: 2_147_483_648 };
    CancelReservationResponse => CancelReservationResponse {
        status: CancelReservationStatus::Accepted,
    };
    SetChargingProfileResponse => SetChargingProfileResponse {
        status: ChargingProfileStatus::Accepted,
    };
    ClearChargingProfileResponse => ClearChargingProfileResponse {
        status: ClearChargingProfileStatus::Unknown,
    };
    TriggerMessageResponse => TriggerMessageResponse {
        status: TriggerMessageStatus::NotImplemented,
    };
}

fn id_tag_info_full() -> IdTagInfo {
    IdTagInfo {
        expiry_date: Some(at("2026-12-31T23:59:59Z")),
        parent_id_tag: Some("FLEET-ACME".into()),
        status: AuthorizationStatus::Accepted,
    }
}

fn id_tag_info_minimal() -> IdTagInfo {
    IdTagInfo {
        expiry_date: None,
        parent_id_tag: None,
        status: AuthorizationStatus::Invalid,
    }
}

fn sampled_value_full() -> SampledValue {
    SampledValue {
        value: "15.9".into(),
        context: Some(ReadingContext::SamplePeriodic),
        format: Some(ValueFormat::Raw),
        measurand: Some(Measurand::CurrentImport),
        phase: Some(Phase::L2),
        location: Some(Location::Outlet),
        unit: Some(UnitOfMeasure::A),
    }
}

fn sampled_value_minimal() -> SampledValue {
    SampledValue {
        value: "12873".into(),
        context: None,
        format: None,
        measurand: None,
        phase: None,
        location: None,
        unit: None,
    }
}

fn schedule_full() -> ChargingSchedule {
    ChargingSchedule {
        duration: Some(7200),
        start_schedule: Some(at("2026-03-02T18:00:00Z")),
        charging_rate_unit: ChargingRateUnit::A,
        charging_schedule_period: vec![ChargingSchedulePeriod {
            start_period: 0,
            limit: 16.5,
            number_phases: Some(3),
        }],
        min_charging_rate: Some(6.2),
    }
}

fn schedule_minimal() -> ChargingSchedule {
    ChargingSchedule {
        duration: None,
        start_schedule: None,
        charging_rate_unit: ChargingRateUnit::W,
        charging_schedule_period: vec![ChargingSchedulePeriod {
            start_period: 0,
            limit: 11000.0,
            number_phases: None,
        }],
        min_charging_rate: None,
    }
}

fn profile_full() -> ChargingProfile {
    ChargingProfile {
        charging_profile_id: 101,
        transaction_id: Some(3_000_000_042),
        stack_level: 2,
        charging_profile_purpose: ChargingProfilePurpose::TxProfile,
        charging_profile_kind: ChargingProfileKind::Recurring,
        recurrency_kind: Some(RecurrencyKind::Daily),
        valid_from: Some(at("2026-03-01T00:00:00Z")),
        valid_to: Some(at("2026-04-01T00:00:00Z")),
        charging_schedule: schedule_full(),
    }
}

fn profile_minimal() -> ChargingProfile {
    ChargingProfile {
        charging_profile_id: 7,
        transaction_id: None,
        stack_level: 0,
        charging_profile_purpose: ChargingProfilePurpose::TxDefaultProfile,
        charging_profile_kind: ChargingProfileKind::Relative,
        recurrency_kind: None,
        valid_from: None,
        valid_to: None,
        charging_schedule: schedule_minimal(),
    }
}

impl Examples for AuthorizeResponse {
    fn full() -> Self {
        AuthorizeResponse {
            id_tag_info: id_tag_info_full(),
        }
    }
    fn minimal() -> Self {
        AuthorizeResponse {
            id_tag_info: id_tag_info_minimal(),
        }
    }
}

impl Examples for BootNotificationRequest {
    fn full() -> Self {
        BootNotificationRequest {
            charge_point_vendor: "Alfen BV".into(),
            charge_point_model: "NG920-61125".into(),
            charge_point_serial_number: Some("ACE0123456".into()),
            charge_box_serial_number: Some("ACE0123456".into()),
            firmware_version: Some("6.4.0-4220".into()),
            iccid: Some("89314404000123456789".into()),
            imsi: Some("204043123456789".into()),
            meter_type: Some("Eastron SDM630".into()),
            meter_serial_number: Some("SDM630-0042".into()),
        }
    }
    fn minimal() -> Self {
        BootNotificationRequest {
            charge_point_vendor: "Wallbox".into(),
            charge_point_model: "Pulsar Plus".into(),
            charge_point_serial_number: None,
            charge_box_serial_number: None,
            firmware_version: None,
            iccid: None,
            imsi: None,
            meter_type: None,
            meter_serial_number: None,
        }
    }
}

impl Examples for BootNotificationResponse {
    fn full() -> Self {
        BootNotificationResponse {
            status: RegistrationStatus::Accepted,
            current_time: at("2026-03-02T17:45:12.345Z"),
            interval: 300,
        }
    }
    fn minimal() -> Self {
        BootNotificationResponse {
            status: RegistrationStatus::Pending,
            current_time: at("2026-03-02T17:45:12Z"),
            interval: 60,
        }
    }
}

impl Examples for DataTransferRequest {
    fn full() -> Self {
        DataTransferRequest {
            vendor_id: "com.alfen".into(),
            message_id: Some("SetPlugAndCharge".into()),
            data: Some(r#"{"enabled":true}"#.into()),
        }
    }
    fn minimal() -> Self {
        DataTransferRequest {
            vendor_id: "com.alfen".into(),
            message_id: None,
            data: None,
        }
    }
}

impl Examples for DataTransferResponse {
    fn full() -> Self {
        DataTransferResponse {
            status: DataTransferStatus::Accepted,
            data: Some("OK".into()),
        }
    }
    fn minimal() -> Self {
        DataTransferResponse {
            status: DataTransferStatus::UnknownVendorId,
            data: None,
        }
    }
}

impl Examples for GetConfigurationRequest {
    fn full() -> Self {
        GetConfigurationRequest {
            key: Some(vec!["HeartbeatInterval".into(), "NoSuchKey".into()]),
        }
    }
    fn minimal() -> Self {
        GetConfigurationRequest { key: None }
    }
}

impl Examples for GetConfigurationResponse {
    fn full() -> Self {
        GetConfigurationResponse {
            configuration_key: Some(vec![KeyValue {
                key: "HeartbeatInterval".into(),
                readonly: false,
                value: Some("300".into()),
            }]),
            unknown_key: Some(vec!["NoSuchKey".into()]),
        }
    }
    fn minimal() -> Self {
        GetConfigurationResponse {
            configuration_key: None,
            unknown_key: None,
        }
    }
}

impl Examples for MeterValuesRequest {
    fn full() -> Self {
        MeterValuesRequest {
            connector_id: 1,
            transaction_id: Some(3_000_000_042),
            meter_value: vec![MeterValue {
                timestamp: at("2026-03-02T18:05:00Z"),
                sampled_value: vec![sampled_value_full()],
            }],
        }
    }
    fn minimal() -> Self {
        MeterValuesRequest {
            connector_id: 0,
            transaction_id: None,
            meter_value: vec![MeterValue {
                timestamp: at("2026-03-02T18:05:00Z"),
                sampled_value: vec![sampled_value_minimal()],
            }],
        }
    }
}

impl Examples for RemoteStartTransactionRequest {
    fn full() -> Self {
        RemoteStartTransactionRequest {
            connector_id: Some(2),
            id_tag: "APP-7F3A9C21".into(),
            charging_profile: Some(profile_full()),
        }
    }
    fn minimal() -> Self {
        RemoteStartTransactionRequest {
            connector_id: None,
            id_tag: "APP-7F3A9C21".into(),
            charging_profile: None,
        }
    }
}

impl Examples for StartTransactionRequest {
    fn full() -> Self {
        StartTransactionRequest {
            connector_id: 1,
            id_tag: "04E91C5A2B6480".into(),
            meter_start: 4_294_967_296,
            reservation_id: Some(2_147_483_648),
            timestamp: at("2026-03-02T18:00:03Z"),
        }
    }
    fn minimal() -> Self {
        StartTransactionRequest {
            connector_id: 1,
            id_tag: "04E91C5A2B6480".into(),
            meter_start: 0,
            reservation_id: None,
            timestamp: at("2026-03-02T18:00:03Z"),
        }
    }
}

impl Examples for StartTransactionResponse {
    fn full() -> Self {
        StartTransactionResponse {
            id_tag_info: id_tag_info_full(),
            transaction_id: 3_000_000_042,
        }
    }
    fn minimal() -> Self {
        StartTransactionResponse {
            id_tag_info: id_tag_info_minimal(),
            transaction_id: 1,
        }
    }
}

impl Examples for StatusNotificationRequest {
    fn full() -> Self {
        StatusNotificationRequest {
            connector_id: 2,
            error_code: ChargePointErrorCode::OtherError,
            info: Some("RCD tripped".into()),
            status: ChargePointStatus::Faulted,
            timestamp: Some(at("2026-03-02T18:10:00Z")),
            vendor_id: Some("com.alfen".into()),
            vendor_error_code: Some("E-0815".into()),
        }
    }
    fn minimal() -> Self {
        StatusNotificationRequest {
            connector_id: 0,
            error_code: ChargePointErrorCode::NoError,
            info: None,
            status: ChargePointStatus::Available,
            timestamp: None,
            vendor_id: None,
            vendor_error_code: None,
        }
    }
}

impl Examples for StopTransactionRequest {
    fn full() -> Self {
        StopTransactionRequest {
            id_tag: Some("04E91C5A2B6480".into()),
            meter_stop: 4_294_979_296,
            timestamp: at("2026-03-02T19:30:00Z"),
            transaction_id: 3_000_000_042,
            reason: Some(Reason::EvDisconnected),
            transaction_data: Some(vec![MeterValue {
                timestamp: at("2026-03-02T19:30:00Z"),
                sampled_value: vec![sampled_value_full()],
            }]),
        }
    }
    fn minimal() -> Self {
        StopTransactionRequest {
            id_tag: None,
            meter_stop: 12_000,
            timestamp: at("2026-03-02T19:30:00Z"),
            transaction_id: 42,
            reason: None,
            transaction_data: None,
        }
    }
}

impl Examples for StopTransactionResponse {
    fn full() -> Self {
        StopTransactionResponse {
            id_tag_info: Some(id_tag_info_full()),
        }
    }
    fn minimal() -> Self {
        StopTransactionResponse { id_tag_info: None }
    }
}

impl Examples for UpdateFirmwareRequest {
    fn full() -> Self {
        UpdateFirmwareRequest {
            location: "https://firmware.voltfleet.example/alfen/6.5.0.bin".into(),
            retries: Some(3),
            retrieve_date: at("2026-03-03T02:00:00Z"),
            retry_interval: Some(600),
        }
    }
    fn minimal() -> Self {
        UpdateFirmwareRequest {
            location: "https://firmware.voltfleet.example/alfen/6.5.0.bin".into(),
            retries: None,
            retrieve_date: at("2026-03-03T02:00:00Z"),
            retry_interval: None,
        }
    }
}

impl Examples for GetDiagnosticsRequest {
    fn full() -> Self {
        GetDiagnosticsRequest {
            location: "ftp://diagnostics.voltfleet.example/uploads/".into(),
            retries: Some(2),
            retry_interval: Some(120),
            start_time: Some(at("2026-03-01T00:00:00Z")),
            stop_time: Some(at("2026-03-02T00:00:00Z")),
        }
    }
    fn minimal() -> Self {
        GetDiagnosticsRequest {
            location: "ftp://diagnostics.voltfleet.example/uploads/".into(),
            retries: None,
            retry_interval: None,
            start_time: None,
            stop_time: None,
        }
    }
}

impl Examples for GetDiagnosticsResponse {
    fn full() -> Self {
        GetDiagnosticsResponse {
            file_name: Some("diag-ACE0123456-20260302.tar.gz".into()),
        }
    }
    fn minimal() -> Self {
        GetDiagnosticsResponse { file_name: None }
    }
}

impl Examples for SendLocalListRequest {
    fn full() -> Self {
        SendLocalListRequest {
            list_version: 18,
            local_authorization_list: Some(vec![AuthorizationData {
                id_tag: "04E91C5A2B6480".into(),
                id_tag_info: Some(id_tag_info_full()),
            }]),
            update_type: UpdateType::Differential,
        }
    }
    fn minimal() -> Self {
        SendLocalListRequest {
            list_version: 1,
            local_authorization_list: None,
            update_type: UpdateType::Full,
        }
    }
}

impl Examples for ReserveNowRequest {
    fn full() -> Self {
        ReserveNowRequest {
            connector_id: 1,
            expiry_date: at("2026-03-02T18:30:00Z"),
            id_tag: "APP-7F3A9C21".into(),
            parent_id_tag: Some("FLEET-ACME".into()),
            reservation_id: 2_147_483_648,
        }
    }
    fn minimal() -> Self {
        ReserveNowRequest {
            connector_id: 0,
            expiry_date: at("2026-03-02T18:30:00Z"),
            id_tag: "APP-7F3A9C21".into(),
            parent_id_tag: None,
            reservation_id: 5,
        }
    }
}

impl Examples for SetChargingProfileRequest {
    fn full() -> Self {
        SetChargingProfileRequest {
            connector_id: 1,
            cs_charging_profiles: profile_full(),
        }
    }
    fn minimal() -> Self {
        SetChargingProfileRequest {
            connector_id: 0,
            cs_charging_profiles: profile_minimal(),
        }
    }
}

impl Examples for ClearChargingProfileRequest {
    fn full() -> Self {
        ClearChargingProfileRequest {
            id: Some(101),
            connector_id: Some(1),
            charging_profile_purpose: Some(ChargingProfilePurpose::TxProfile),
            stack_level: Some(2),
        }
    }
    fn minimal() -> Self {
        ClearChargingProfileRequest {
            id: None,
            connector_id: None,
            charging_profile_purpose: None,
            stack_level: None,
        }
    }
}

impl Examples for GetCompositeScheduleRequest {
    fn full() -> Self {
        GetCompositeScheduleRequest {
            connector_id: 1,
            duration: 86_400,
            charging_rate_unit: Some(ChargingRateUnit::W),
        }
    }
    fn minimal() -> Self {
        GetCompositeScheduleRequest {
            connector_id: 0,
            duration: 3600,
            charging_rate_unit: None,
        }
    }
}

impl Examples for GetCompositeScheduleResponse {
    fn full() -> Self {
        GetCompositeScheduleResponse {
            status: GetCompositeScheduleStatus::Accepted,
            connector_id: Some(1),
            schedule_start: Some(at("2026-03-02T18:00:00Z")),
            charging_schedule: Some(schedule_full()),
        }
    }
    fn minimal() -> Self {
        GetCompositeScheduleResponse {
            status: GetCompositeScheduleStatus::Rejected,
            connector_id: None,
            schedule_start: None,
            charging_schedule: None,
        }
    }
}

impl Examples for TriggerMessageRequest {
    fn full() -> Self {
        TriggerMessageRequest {
            requested_message: MessageTrigger::StatusNotification,
            connector_id: Some(2),
        }
    }
    fn minimal() -> Self {
        TriggerMessageRequest {
            requested_message: MessageTrigger::Heartbeat,
            connector_id: None,
        }
    }
}
