//! The messages of the OCPP 1.6 Core profile, which every charger implements: booting,
//! authorizing, transactions, meter values, status, configuration and remote control.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::smart_charging::ChargingProfile;
use super::types::{ChargePointErrorCode, ChargePointStatus, IdTagInfo, MeterValue};

/// Asks whether an ID tag may charge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthorizeRequest {
    pub id_tag: String,
}

/// The answer to [`AuthorizeRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthorizeResponse {
    pub id_tag_info: IdTagInfo,
}

/// A charger announces itself after (re)starting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BootNotificationRequest {
    pub charge_point_vendor: String,
    pub charge_point_model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge_point_serial_number: Option<String>,
    /// Deprecated by the specification in favour of `chargePointSerialNumber`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge_box_serial_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware_version: Option<String>,
    /// Of the modem's SIM card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iccid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imsi: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meter_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meter_serial_number: Option<String>,
}

/// The answer to [`BootNotificationRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BootNotificationResponse {
    pub status: RegistrationStatus,
    /// The charger sets its clock to this.
    pub current_time: DateTime<Utc>,
    /// Seconds: the heartbeat interval when accepted, else how long to wait before booting
    /// again.
    pub interval: i32,
}

wire_enum! {
    /// Whether the central system accepts a charger.
    RegistrationStatus, "OCPP 1.6 registration status" {
        Accepted = "Accepted",
        /// The central system will accept it later; until then it may only be configured.
        Pending = "Pending",
        Rejected = "Rejected",
    }
}

/// Makes a connector, or the whole charger on connector 0, available or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangeAvailabilityRequest {
    pub connector_id: i32,
    /// `type` on the wire.
    #[serde(rename = "type")]
    pub kind: AvailabilityType,
}

wire_enum! {
    /// Whether a connector may be used.
    AvailabilityType, "OCPP 1.6 availability type" {
        Inoperative = "Inoperative",
        Operative = "Operative",
    }
}

/// The answer to [`ChangeAvailabilityRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangeAvailabilityResponse {
    pub status: AvailabilityStatus,
}

wire_enum! {
    /// Whether a charger will change availability.
    AvailabilityStatus, "OCPP 1.6 availability status" {
        Accepted = "Accepted",
        Rejected = "Rejected",
        /// After the transaction in progress ends.
        Scheduled = "Scheduled",
    }
}

/// Sets one configuration key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangeConfigurationRequest {
    pub key: String,
    pub value: String,
}

/// The answer to [`ChangeConfigurationRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangeConfigurationResponse {
    pub status: ConfigurationStatus,
}

wire_enum! {
    /// Whether a charger took a configuration change.
    ConfigurationStatus, "OCPP 1.6 configuration status" {
        Accepted = "Accepted",
        Rejected = "Rejected",
        /// Accepted, but only effective after a reboot.
        RebootRequired = "RebootRequired",
        /// The key is unknown to the charger.
        NotSupported = "NotSupported",
    }
}

/// Clears the charger's authorization cache (not its local list).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClearCacheRequest {}

/// The answer to [`ClearCacheRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClearCacheResponse {
    pub status: ClearCacheStatus,
}

wire_enum! {
    /// Whether the cache was cleared.
    ClearCacheStatus, "OCPP 1.6 clear cache status" {
        Accepted = "Accepted",
        Rejected = "Rejected",
    }
}

/// Vendor-specific data; either side may send it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DataTransferRequest {
    /// Identifies the vendor, preferably by a reversed DNS name.
    pub vendor_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Free text in 1.6, often JSON encoded as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

/// The answer to [`DataTransferRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DataTransferResponse {
    pub status: DataTransferStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

wire_enum! {
    /// What the receiver made of a DataTransfer.
    DataTransferStatus, "OCPP 1.6 data transfer status" {
        Accepted = "Accepted",
        Rejected = "Rejected",
        UnknownMessageId = "UnknownMessageId",
        UnknownVendorId = "UnknownVendorId",
    }
}

/// Reads configuration keys: the ones named, or all of them when `key` is absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetConfigurationRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Vec<String>>,
}

/// The answer to [`GetConfigurationRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetConfigurationResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration_key: Option<Vec<KeyValue>>,
    /// Requested keys the charger does not know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_key: Option<Vec<String>>,
}

/// One configuration key and its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyValue {
    pub key: String,
    /// `readonly` on the wire (all lower case).
    pub readonly: bool,
    /// Absent when the key has no value set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Tells the central system the charger is alive, and asks for the time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatRequest {}

/// The answer to [`HeartbeatRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeartbeatResponse {
    pub current_time: DateTime<Utc>,
}

/// Values sampled by a connector's meter, or the charger's main meter on connector 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeterValuesRequest {
    pub connector_id: i32,
    /// The transaction the values belong to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<i64>,
    /// At least one.
    pub meter_value: Vec<MeterValue>,
}

/// The answer to [`MeterValuesRequest`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeterValuesResponse {}

/// Asks the charger to start a transaction for an ID tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoteStartTransactionRequest {
    /// Absent: the charger picks the connector. Never 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_id: Option<i32>,
    pub id_tag: String,
    /// A `TxProfile` for the transaction to be started (its `transactionId` is absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charging_profile: Option<ChargingProfile>,
}

/// The answer to [`RemoteStartTransactionRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoteStartTransactionResponse {
    pub status: RemoteStartStopStatus,
}

/// Asks the charger to stop a transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoteStopTransactionRequest {
    pub transaction_id: i64,
}

/// The answer to [`RemoteStopTransactionRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoteStopTransactionResponse {
    pub status: RemoteStartStopStatus,
}

wire_enum! {
    /// Whether a charger will try a remote start or stop; the outcome comes later as a
    /// StartTransaction or StopTransaction.
    RemoteStartStopStatus, "OCPP 1.6 remote start/stop status" {
        Accepted = "Accepted",
        Rejected = "Rejected",
    }
}

/// Restarts the charger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResetRequest {
    /// `type` on the wire.
    #[serde(rename = "type")]
    pub kind: ResetType,
}

wire_enum! {
    /// How a charger restarts.
    ResetType, "OCPP 1.6 reset type" {
        /// At once, without stopping transactions gracefully.
        Hard = "Hard",
        /// After stopping transactions gracefully.
        Soft = "Soft",
    }
}

/// The answer to [`ResetRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResetResponse {
    pub status: ResetStatus,
}

wire_enum! {
    /// Whether a charger will reset.
    ResetStatus, "OCPP 1.6 reset status" {
        Accepted = "Accepted",
        Rejected = "Rejected",
    }
}

/// A charger reports a transaction it started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartTransactionRequest {
    pub connector_id: i32,
    pub id_tag: String,
    /// The meter reading in Wh at the start.
    pub meter_start: i64,
    /// The reservation this transaction ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation_id: Option<i64>,
    pub timestamp: DateTime<Utc>,
}

/// The answer to [`StartTransactionRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartTransactionResponse {
    pub id_tag_info: IdTagInfo,
    pub transaction_id: i64,
}

/// A charger reports the status of a connector, or of itself on connector 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusNotificationRequest {
    pub connector_id: i32,
    pub error_code: ChargePointErrorCode,
    /// Free text about the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<String>,
    pub status: ChargePointStatus,
    /// When the status was reached; absent means now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<DateTime<Utc>>,
    /// Whose `vendorErrorCode` this is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_error_code: Option<String>,
}

/// The answer to [`StatusNotificationRequest`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusNotificationResponse {}

/// A charger reports a transaction it stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StopTransactionRequest {
    /// The tag that stopped it, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_tag: Option<String>,
    /// The meter reading in Wh at the stop.
    pub meter_stop: i64,
    pub timestamp: DateTime<Utc>,
    pub transaction_id: i64,
    /// Absent means `Local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// Values sampled during the transaction (`StopTxnSampledData`, `StopTxnAlignedData`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_data: Option<Vec<MeterValue>>,
}

wire_enum! {
    /// Why a transaction stopped; an absent `reason` means `Local`.
    #[derive(Default)]
    Reason, "OCPP 1.6 stop reason" {
        EmergencyStop = "EmergencyStop",
        /// The cable was unplugged.
        EvDisconnected = "EVDisconnected",
        HardReset = "HardReset",
        /// The driver stopped it at the charger.
        #[default]
        Local = "Local",
        Other = "Other",
        PowerLoss = "PowerLoss",
        /// A reboot the charger started itself, such as its watchdog's.
        Reboot = "Reboot",
        /// A RemoteStopTransaction.
        Remote = "Remote",
        SoftReset = "SoftReset",
        UnlockCommand = "UnlockCommand",
        /// The central system refused the tag in the StartTransaction answer.
        DeAuthorized = "DeAuthorized",
    }
}

/// The answer to [`StopTransactionRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StopTransactionResponse {
    /// Present when the request carried an `idTag`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_tag_info: Option<IdTagInfo>,
}

/// Asks the charger to unlock a connector's cable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UnlockConnectorRequest {
    pub connector_id: i32,
}

/// The answer to [`UnlockConnectorRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UnlockConnectorResponse {
    pub status: UnlockStatus,
}

wire_enum! {
    /// Whether a connector was unlocked.
    UnlockStatus, "OCPP 1.6 unlock status" {
        Unlocked = "Unlocked",
        UnlockFailed = "UnlockFailed",
        /// The connector has no lock.
        NotSupported = "NotSupported",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::testing::{at, schema_errors};
    use super::super::types::*;
    use super::super::{Action, Request};
    use super::*;

    /// Reads `payload` as a charger sent it, after checking it as the OCPP service would.
    fn from_charger<R: Request>(payload: Value) -> R {
        let errors = schema_errors(R::ACTION.request_schema(), &payload);
        assert!(errors.is_empty(), "{errors:#?}");
        serde_json::from_value(payload).expect("reads")
    }

    fn sampled(value: &str) -> SampledValue {
        SampledValue {
            value: value.into(),
            context: None,
            format: None,
            measurand: None,
            phase: None,
            location: None,
            unit: None,
        }
    }

    #[test]
    fn reads_a_boot_notification() {
        let boot: BootNotificationRequest = from_charger(json!({
            "chargePointVendor": "ABB",
            "chargePointModel": "TAC-W22-T-RD-M-0",
            "chargePointSerialNumber": "TACW2242321G0197",
            "firmwareVersion": "v1.8.27",
            "meterType": "ABB B23"
        }));
        assert_eq!(
            boot,
            BootNotificationRequest {
                charge_point_vendor: "ABB".into(),
                charge_point_model: "TAC-W22-T-RD-M-0".into(),
                charge_point_serial_number: Some("TACW2242321G0197".into()),
                charge_box_serial_number: None,
                firmware_version: Some("v1.8.27".into()),
                iccid: None,
                imsi: None,
                meter_type: Some("ABB B23".into()),
                meter_serial_number: None,
            }
        );
    }

    #[test]
    fn reads_three_phase_meter_values() {
        let request: MeterValuesRequest = from_charger(json!({
            "connectorId": 1,
            "transactionId": 1842,
            "meterValue": [{
                "timestamp": "2026-03-02T18:15:00.000Z",
                "sampledValue": [
                    {"value": "12873.4", "context": "Sample.Periodic", "format": "Raw",
                     "measurand": "Energy.Active.Import.Register", "location": "Outlet",
                     "unit": "Wh"},
                    {"value": "10957", "context": "Sample.Periodic",
                     "measurand": "Power.Active.Import", "unit": "W"},
                    {"value": "15.87", "context": "Sample.Periodic",
                     "measurand": "Current.Import", "phase": "L1", "unit": "A"},
                    {"value": "15.91", "context": "Sample.Periodic",
                     "measurand": "Current.Import", "phase": "L2", "unit": "A"},
                    {"value": "231.6", "context": "Sample.Periodic",
                     "measurand": "Voltage", "phase": "L1-N", "unit": "V"},
                    {"value": "34", "measurand": "Temperature", "location": "Body",
                     "unit": "Celsius"},
                    {"value": "50.01", "measurand": "Frequency", "unit": "Hertz"},
                    {"value": "12873"}
                ]
            }]
        }));
        assert_eq!(request.connector_id, 1);
        assert_eq!(request.transaction_id, Some(1842));
        let [meter_value] = request.meter_value.as_slice() else {
            panic!("one meter value");
        };
        assert_eq!(meter_value.timestamp, at("2026-03-02T18:15:00Z"));
        let values = &meter_value.sampled_value;
        assert_eq!(values.len(), 8);
        assert_eq!(
            values[0],
            SampledValue {
                value: "12873.4".into(),
                context: Some(ReadingContext::SamplePeriodic),
                format: Some(ValueFormat::Raw),
                measurand: Some(Measurand::EnergyActiveImportRegister),
                phase: None,
                location: Some(Location::Outlet),
                unit: Some(UnitOfMeasure::Wh),
            }
        );
        assert_eq!(values[2].phase, Some(Phase::L1));
        assert_eq!(values[4].phase, Some(Phase::L1N));
        assert_eq!(values[4].measurand, Some(Measurand::Voltage));
        assert_eq!(values[5].location, Some(Location::Body));
        assert_eq!(values[5].unit, Some(UnitOfMeasure::Celsius));
        assert_eq!(values[6].unit, Some(UnitOfMeasure::Hertz));
        // A bare value is the energy register at the outlet, sampled periodically.
        assert_eq!(values[7], sampled("12873"));
        assert_eq!(
            values[7].measurand.unwrap_or_default(),
            Measurand::EnergyActiveImportRegister
        );
        assert_eq!(
            values[7].context.unwrap_or_default(),
            ReadingContext::SamplePeriodic
        );
        assert_eq!(values[7].location.unwrap_or_default(), Location::Outlet);
        assert_eq!(values[7].format.unwrap_or_default(), ValueFormat::Raw);
    }

    #[test]
    fn reads_a_stop_transaction_with_transaction_data() {
        let stop: StopTransactionRequest = from_charger(json!({
            "transactionId": 1842,
            "idTag": "04E91C5A2B6480",
            "timestamp": "2026-03-02T19:31:07Z",
            "meterStop": 31544,
            "reason": "EVDisconnected",
            "transactionData": [
                {"timestamp": "2026-03-02T18:00:03Z", "sampledValue": [
                    {"value": "12000", "context": "Transaction.Begin",
                     "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
                ]},
                {"timestamp": "2026-03-02T19:31:07Z", "sampledValue": [
                    {"value": "31.544", "context": "Transaction.End",
                     "measurand": "Energy.Active.Import.Register", "unit": "kWh"},
                    {"value": "80", "context": "Transaction.End", "measurand": "SoC",
                     "location": "EV", "unit": "Percent"}
                ]}
            ]
        }));
        let energy = |value: &str, context, unit| SampledValue {
            value: value.into(),
            context: Some(context),
            measurand: Some(Measurand::EnergyActiveImportRegister),
            unit: Some(unit),
            ..sampled("")
        };
        assert_eq!(
            stop,
            StopTransactionRequest {
                id_tag: Some("04E91C5A2B6480".into()),
                meter_stop: 31544,
                timestamp: at("2026-03-02T19:31:07Z"),
                transaction_id: 1842,
                reason: Some(Reason::EvDisconnected),
                transaction_data: Some(vec![
                    MeterValue {
                        timestamp: at("2026-03-02T18:00:03Z"),
                        sampled_value: vec![energy(
                            "12000",
                            ReadingContext::TransactionBegin,
                            UnitOfMeasure::Wh
                        )],
                    },
                    MeterValue {
                        timestamp: at("2026-03-02T19:31:07Z"),
                        sampled_value: vec![
                            energy("31.544", ReadingContext::TransactionEnd, UnitOfMeasure::KWh),
                            SampledValue {
                                context: Some(ReadingContext::TransactionEnd),
                                measurand: Some(Measurand::Soc),
                                location: Some(Location::Ev),
                                unit: Some(UnitOfMeasure::Percent),
                                ..sampled("80")
                            },
                        ],
                    },
                ]),
            }
        );
    }

    #[test]
    fn reads_status_notifications() {
        let status: StatusNotificationRequest = from_charger(json!({
            "connectorId": 2,
            "errorCode": "EVCommunicationError",
            "status": "SuspendedEVSE",
            "timestamp": "2026-03-02T18:20:00Z",
            "vendorErrorCode": "0x1A"
        }));
        assert_eq!(
            status,
            StatusNotificationRequest {
                connector_id: 2,
                error_code: ChargePointErrorCode::EvCommunicationError,
                info: None,
                status: ChargePointStatus::SuspendedEvse,
                timestamp: Some(at("2026-03-02T18:20:00Z")),
                vendor_id: None,
                vendor_error_code: Some("0x1A".into()),
            }
        );
        assert_eq!(status.status.as_str(), "SuspendedEVSE");
        assert_eq!(status.error_code.as_str(), "EVCommunicationError");
    }

    #[test]
    fn writes_what_the_central_system_answers() {
        let answer = StartTransactionResponse {
            id_tag_info: IdTagInfo {
                expiry_date: None,
                parent_id_tag: Some("FLEET-ACME".into()),
                status: AuthorizationStatus::ConcurrentTx,
            },
            transaction_id: 1842,
        };
        assert_eq!(
            serde_json::to_value(&answer).expect("serializes"),
            json!({
                "idTagInfo": {"parentIdTag": "FLEET-ACME", "status": "ConcurrentTx"},
                "transactionId": 1842
            })
        );
        let reset = ResetRequest {
            kind: ResetType::Hard,
        };
        assert_eq!(
            serde_json::to_value(&reset).expect("serializes"),
            json!({"type": "Hard"})
        );
        let change = ChangeAvailabilityRequest {
            connector_id: 0,
            kind: AvailabilityType::Operative,
        };
        assert_eq!(
            serde_json::to_value(&change).expect("serializes"),
            json!({"connectorId": 0, "type": "Operative"})
        );
        assert_eq!(Action::Reset.as_str(), "Reset");
    }

    #[test]
    fn reads_a_configuration_answer() {
        let payload = json!({
            "configurationKey": [
                {"key": "HeartbeatInterval", "readonly": false, "value": "300"},
                {"key": "NumberOfConnectors", "readonly": true, "value": "2"},
                {"key": "AuthorizationKey", "readonly": false}
            ],
            "unknownKey": ["LocalPreAuthorize"]
        });
        let errors = schema_errors(Action::GetConfiguration.response_schema(), &payload);
        assert!(errors.is_empty(), "{errors:#?}");
        let answer: GetConfigurationResponse = serde_json::from_value(payload).expect("reads");
        let keys = answer.configuration_key.expect("keys");
        assert_eq!(
            keys[1],
            KeyValue {
                key: "NumberOfConnectors".into(),
                readonly: true,
                value: Some("2".into()),
            }
        );
        assert_eq!(keys[2].value, None);
        assert_eq!(answer.unknown_key, Some(vec!["LocalPreAuthorize".into()]));
    }

    #[test]
    fn data_transfer_data_is_text() {
        let request: DataTransferRequest = from_charger(json!({
            "vendorId": "com.alfen",
            "messageId": "RFIDInfo",
            "data": "{\"uid\":\"04E91C5A2B6480\"}"
        }));
        assert_eq!(request.data.as_deref(), Some(r#"{"uid":"04E91C5A2B6480"}"#));
        // 1.6 has no structured data; 2.0.1 does.
        let structured = json!({"vendorId": "com.alfen", "data": {"uid": "04E9"}});
        assert!(!schema_errors(Action::DataTransfer.request_schema(), &structured).is_empty());
        assert!(serde_json::from_value::<DataTransferRequest>(structured).is_err());
    }
}
