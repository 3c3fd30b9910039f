//! Types that several OCPP 1.6 messages share: ID tag information, meter values and the
//! connector status a charger reports.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What the central system says about an ID tag (Authorize, Start- and StopTransaction, and
/// the entries of a local authorization list).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdTagInfo {
    /// After this the charger should treat the tag as expired, even in its cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_date: Option<DateTime<Utc>>,
    /// The group the tag belongs to: tags with the same parent may stop each other's
    /// transactions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id_tag: Option<String>,
    pub status: AuthorizationStatus,
}

wire_enum! {
    /// Whether an ID tag may charge.
    AuthorizationStatus, "OCPP 1.6 authorization status" {
        Accepted = "Accepted",
        Blocked = "Blocked",
        Expired = "Expired",
        Invalid = "Invalid",
        /// The tag is already in a transaction elsewhere and may not start another.
        ConcurrentTx = "ConcurrentTx",
    }
}

/// The values sampled at one instant (MeterValues' `meterValue`, StopTransaction's
/// `transactionData`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeterValue {
    pub timestamp: DateTime<Utc>,
    /// At least one in MeterValues; StopTransaction's schema allows none.
    pub sampled_value: Vec<SampledValue>,
}

/// One sampled value. An absent `context`, `format`, `measurand` or `location` has the
/// default the specification gives, which its type's [`Default`] spells out (so
/// `value.measurand.unwrap_or_default()`). `phase` has none, and neither has `unit`: the
/// specification makes it `Wh` only when the measurand is an energy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SampledValue {
    /// Text in 1.6: a decimal number for `Raw`, an opaque blob for `SignedData`.
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<ReadingContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ValueFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurand: Option<Measurand>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<UnitOfMeasure>,
}

wire_enum! {
    /// Why a value was sampled; an absent `context` means `Sample.Periodic`.
    #[derive(Default)]
    ReadingContext, "OCPP 1.6 reading context" {
        InterruptionBegin = "Interruption.Begin",
        InterruptionEnd = "Interruption.End",
        /// At a clock-aligned interval (`ClockAlignedDataInterval`).
        SampleClock = "Sample.Clock",
        /// At the transaction's sampling interval (`MeterValueSampleInterval`).
        #[default]
        SamplePeriodic = "Sample.Periodic",
        TransactionBegin = "Transaction.Begin",
        TransactionEnd = "Transaction.End",
        /// Asked for by a TriggerMessage.
        Trigger = "Trigger",
        Other = "Other",
    }
}

wire_enum! {
    /// How a sampled value's text is to be read; an absent `format` means `Raw`.
    #[derive(Default)]
    ValueFormat, "OCPP 1.6 value format" {
        /// A decimal number.
        #[default]
        Raw = "Raw",
        /// A signed, vendor-specific blob.
        SignedData = "SignedData",
    }
}

wire_enum! {
    /// What a sampled value measures; an absent `measurand` means
    /// `Energy.Active.Import.Register`. Import is energy flowing to the EV, export from it.
    #[derive(Default)]
    Measurand, "OCPP 1.6 measurand" {
        EnergyActiveExportRegister = "Energy.Active.Export.Register",
        /// The meter reading that billing uses.
        #[default]
        EnergyActiveImportRegister = "Energy.Active.Import.Register",
        EnergyReactiveExportRegister = "Energy.Reactive.Export.Register",
        EnergyReactiveImportRegister = "Energy.Reactive.Import.Register",
        EnergyActiveExportInterval = "Energy.Active.Export.Interval",
        EnergyActiveImportInterval = "Energy.Active.Import.Interval",
        EnergyReactiveExportInterval = "Energy.Reactive.Export.Interval",
        EnergyReactiveImportInterval = "Energy.Reactive.Import.Interval",
        PowerActiveExport = "Power.Active.Export",
        PowerActiveImport = "Power.Active.Import",
        /// The maximum power the charger offers the EV.
        PowerOffered = "Power.Offered",
        PowerReactiveExport = "Power.Reactive.Export",
        PowerReactiveImport = "Power.Reactive.Import",
        PowerFactor = "Power.Factor",
        CurrentImport = "Current.Import",
        CurrentExport = "Current.Export",
        CurrentOffered = "Current.Offered",
        Voltage = "Voltage",
        Frequency = "Frequency",
        Temperature = "Temperature",
        /// The EV's state of charge, in percent.
        Soc = "SoC",
        /// Fan speed.
        Rpm = "RPM",
    }
}

wire_enum! {
    /// The phase, or pair of phases, a value was measured on.
    Phase, "OCPP 1.6 phase" {
        L1 = "L1",
        L2 = "L2",
        L3 = "L3",
        /// Neutral.
        N = "N",
        L1N = "L1-N",
        L2N = "L2-N",
        L3N = "L3-N",
        L1L2 = "L1-L2",
        L2L3 = "L2-L3",
        L3L1 = "L3-L1",
    }
}

wire_enum! {
    /// Where a value was measured; an absent `location` means `Outlet`.
    #[derive(Default)]
    Location, "OCPP 1.6 measurement location" {
        Cable = "Cable",
        Ev = "EV",
        Inlet = "Inlet",
        #[default]
        Outlet = "Outlet",
        /// Inside the charger.
        Body = "Body",
    }
}

wire_enum! {
    /// The unit of a sampled value.
    UnitOfMeasure, "OCPP 1.6 unit of measure" {
        Wh = "Wh",
        KWh = "kWh",
        Varh = "varh",
        KVarh = "kvarh",
        W = "W",
        KW = "kW",
        Va = "VA",
        KVa = "kVA",
        Var = "var",
        KVar = "kvar",
        A = "A",
        V = "V",
        K = "K",
        /// The original 1.6 schemas' misspelling, which older chargers still send.
        Celcius = "Celcius",
        Celsius = "Celsius",
        Fahrenheit = "Fahrenheit",
        Percent = "Percent",
        /// Allowed in MeterValues but not in StopTransaction's `transactionData`, whose
        /// schema lacks it.
        Hertz = "Hertz",
    }
}

wire_enum! {
    /// The state of a connector, or of the whole charger on connector 0.
    ChargePointStatus, "OCPP 1.6 charge point status" {
        Available = "Available",
        /// An EV or a driver is there, but no transaction has started yet.
        Preparing = "Preparing",
        Charging = "Charging",
        /// The charger does not offer energy (smart charging, or a limit).
        SuspendedEvse = "SuspendedEVSE",
        /// The charger offers energy but the EV does not take it.
        SuspendedEv = "SuspendedEV",
        /// The transaction has stopped but the connector is not free yet.
        Finishing = "Finishing",
        Reserved = "Reserved",
        Unavailable = "Unavailable",
        Faulted = "Faulted",
    }
}

wire_enum! {
    /// The error a charger reports with a status.
    ChargePointErrorCode, "OCPP 1.6 charge point error code" {
        ConnectorLockFailure = "ConnectorLockFailure",
        EvCommunicationError = "EVCommunicationError",
        GroundFailure = "GroundFailure",
        HighTemperature = "HighTemperature",
        InternalError = "InternalError",
        /// The local list and the central system disagree about a tag.
        LocalListConflict = "LocalListConflict",
        NoError = "NoError",
        /// See the status's `vendorErrorCode` and `info`.
        OtherError = "OtherError",
        OverCurrentFailure = "OverCurrentFailure",
        PowerMeterFailure = "PowerMeterFailure",
        PowerSwitchFailure = "PowerSwitchFailure",
        ReaderFailure = "ReaderFailure",
        ResetFailure = "ResetFailure",
        UnderVoltage = "UnderVoltage",
        OverVoltage = "OverVoltage",
        WeakSignal = "WeakSignal",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::Action;
    use super::super::testing::schema_errors;

    #[test]
    fn stop_transaction_data_is_looser_than_meter_values_and_lacks_hertz() {
        let meter_values = |meter_value| json!({"connectorId": 1, "meterValue": meter_value});
        let stop = |transaction_data| {
            json!({"transactionId": 1, "meterStop": 2, "timestamp": "2026-03-02T18:05:00Z",
                   "transactionData": transaction_data})
        };
        let hertz = json!([{"timestamp": "2026-03-02T18:05:00Z",
                            "sampledValue": [{"value": "50", "unit": "Hertz"}]}]);
        let empty = json!([{"timestamp": "2026-03-02T18:05:00Z", "sampledValue": []}]);
        let meter_schema = Action::MeterValues.request_schema();
        let stop_schema = Action::StopTransaction.request_schema();

        assert!(schema_errors(meter_schema, &meter_values(hertz.clone())).is_empty());
        assert!(!schema_errors(stop_schema, &stop(hertz)).is_empty());

        assert!(!schema_errors(meter_schema, &meter_values(empty.clone())).is_empty());
        assert!(!schema_errors(meter_schema, &meter_values(json!([]))).is_empty());
        assert!(schema_errors(stop_schema, &stop(empty)).is_empty());
        assert!(schema_errors(stop_schema, &stop(json!([]))).is_empty());
    }
}
