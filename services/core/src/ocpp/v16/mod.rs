//! OCPP 1.6 (JSON): one type per message, and the actions that name them.
//!
//! Each CALL payload is a `{Action}Request` implementing [`Request`], which names its
//! [`Action`] and the `{Action}Response` that answers it. Field names, optionality and enum
//! spellings follow the official JSON schemas (embedded here, see [`Action::request_schema`]),
//! which the OCPP service checks every payload against; these types do not repeat the schemas'
//! length limits, so a value built in code is only known to be valid once it has been checked.
//!
//! The messages are grouped by the profile that defines them; everything is re-exported here.
//! Integers are `i32`, except the ids voltfleet generates from BIGINT keys (`transactionId`,
//! `reservationId`) and the meter readings in Wh (`meterStart`, `meterStop`), which are `i64`.

use std::fmt;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::domain::UnknownValue;

/// A closed set of values with the one spelling the schemas allow, which storage and logs use
/// as well.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $kind:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
        )]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every value, in the order the schema lists them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The spelling on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::domain::UnknownValue;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                match text {
                    $( $text => Ok($name::$variant), )+
                    _ => Err($crate::domain::UnknownValue {
                        kind: $kind,
                        value: $crate::ocpp::v16::shorten(text),
                        expected: [$(concat!("`", $text, "`")),+].join(", "),
                    }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

// Named `core_profile` rather than `core` so that it does not shadow the `core` crate.
mod core_profile;
mod firmware;
mod local_auth;
mod remote_trigger;
mod reservation;
mod smart_charging;
mod types;

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

pub use core_profile::*;
pub use firmware::*;
pub use local_auth::*;
pub use remote_trigger::*;
pub use reservation::*;
pub use smart_charging::*;
pub use types::*;

/// The payload of an OCPP 1.6 CALL: its action, and the type of the CALLRESULT payload that
/// answers it.
pub trait Request:
    Serialize + DeserializeOwned + Clone + fmt::Debug + Send + Sync + 'static
{
    const ACTION: Action;
    type Response: Serialize + DeserializeOwned + Clone + fmt::Debug + Send + Sync + 'static;
}

/// A request chargers send to the central system.
pub trait ChargePointRequest: Request {}

/// A request the central system sends to chargers.
pub trait CentralSystemRequest: Request {}

/// Who may send an action's CALL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sender {
    ChargePoint,
    CentralSystem,
    /// Both sides (DataTransfer).
    Either,
}

/// Declares the actions once, so that the enum, the sender, the embedded schemas and the
/// [`Request`] impls cannot disagree.
macro_rules! actions {
    (@sent_by $request:ident, ChargePoint) => {
        impl ChargePointRequest for $request {}
    };
    (@sent_by $request:ident, CentralSystem) => {
        impl CentralSystemRequest for $request {}
    };
    (@sent_by $request:ident, Either) => {
        impl ChargePointRequest for $request {}
        impl CentralSystemRequest for $request {}
    };
    (
        $( $(#[$doc:meta])* $action:ident($request:ident => $response:ident) by $sender:ident, )+
    ) => {
        /// An OCPP 1.6 action, the name a CALL carries; spelled exactly as in the specification.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum Action {
            $( $(#[$doc])* $action, )+
        }

        impl Action {
            /// The 28 actions of the six OCPP 1.6 profiles, in alphabetical order.
            pub const ALL: &'static [Action] = &[$(Action::$action),+];

            /// The action's name on the wire, such as `BootNotification`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Action::$action => stringify!($action), )+
                }
            }

            /// Who may send this action's CALL.
            pub fn sender(self) -> Sender {
                match self {
                    $( Action::$action => Sender::$sender, )+
                }
            }

            /// The official JSON schema (draft-04) of this action's CALL payload.
            pub fn request_schema(self) -> &'static str {
                match self {
                    $( Action::$action => include_str!(concat!(
                        "../../../ocpp-schemas/1.6/", stringify!($action), ".json"
                    )), )+
                }
            }

            /// The official JSON schema (draft-04) of this action's CALLRESULT payload.
            pub fn response_schema(self) -> &'static str {
                match self {
                    $( Action::$action => include_str!(concat!(
                        "../../../ocpp-schemas/1.6/", stringify!($action), "Response.json"
                    )), )+
                }
            }
        }

        $(
            impl Request for $request {
                const ACTION: Action = Action::$action;
                type Response = $response;
            }
            actions!(@sent_by $request, $sender);
        )+
    };
}

actions! {
    /// A charger asks whether an ID token may charge.
    Authorize(AuthorizeRequest => AuthorizeResponse) by ChargePoint,
    /// A charger announces itself after (re)starting.
    BootNotification(BootNotificationRequest => BootNotificationResponse) by ChargePoint,
    CancelReservation(CancelReservationRequest => CancelReservationResponse) by CentralSystem,
    ChangeAvailability(ChangeAvailabilityRequest => ChangeAvailabilityResponse) by CentralSystem,
    ChangeConfiguration(ChangeConfigurationRequest => ChangeConfigurationResponse)
        by CentralSystem,
    /// Clears the charger's authorization cache (not the local list).
    ClearCache(ClearCacheRequest => ClearCacheResponse) by CentralSystem,
    ClearChargingProfile(ClearChargingProfileRequest => ClearChargingProfileResponse)
        by CentralSystem,
    /// Vendor-specific data, in either direction.
    DataTransfer(DataTransferRequest => DataTransferResponse) by Either,
    DiagnosticsStatusNotification(
        DiagnosticsStatusNotificationRequest => DiagnosticsStatusNotificationResponse
    ) by ChargePoint,
    FirmwareStatusNotification(
        FirmwareStatusNotificationRequest => FirmwareStatusNotificationResponse
    ) by ChargePoint,
    /// The limits a connector will apply over the coming period, all profiles combined.
    GetCompositeSchedule(GetCompositeScheduleRequest => GetCompositeScheduleResponse)
        by CentralSystem,
    GetConfiguration(GetConfigurationRequest => GetConfigurationResponse) by CentralSystem,
    /// Asks the charger to upload a diagnostics file.
    GetDiagnostics(GetDiagnosticsRequest => GetDiagnosticsResponse) by CentralSystem,
    GetLocalListVersion(GetLocalListVersionRequest => GetLocalListVersionResponse)
        by CentralSystem,
    Heartbeat(HeartbeatRequest => HeartbeatResponse) by ChargePoint,
    MeterValues(MeterValuesRequest => MeterValuesResponse) by ChargePoint,
    RemoteStartTransaction(RemoteStartTransactionRequest => RemoteStartTransactionResponse)
        by CentralSystem,
    RemoteStopTransaction(RemoteStopTransactionRequest => RemoteStopTransactionResponse)
        by CentralSystem,
    ReserveNow(ReserveNowRequest => ReserveNowResponse) by CentralSystem,
    Reset(ResetRequest => ResetResponse) by CentralSystem,
    /// Replaces or updates the charger's local authorization list.
    SendLocalList(SendLocalListRequest => SendLocalListResponse) by CentralSystem,
    SetChargingProfile(SetChargingProfileRequest => SetChargingProfileResponse) by CentralSystem,
    StartTransaction(StartTransactionRequest => StartTransactionResponse) by ChargePoint,
    StatusNotification(StatusNotificationRequest => StatusNotificationResponse) by ChargePoint,
    StopTransaction(StopTransactionRequest => StopTransactionResponse) by ChargePoint,
    /// Asks the charger to send one of its own messages now.
    TriggerMessage(TriggerMessageRequest => TriggerMessageResponse) by CentralSystem,
    UnlockConnector(UnlockConnectorRequest => UnlockConnectorResponse) by CentralSystem,
    /// Asks the charger to download and install firmware.
    UpdateFirmware(UpdateFirmwareRequest => UpdateFirmwareResponse) by CentralSystem,
}

impl FromStr for Action {
    type Err = UnknownValue;
    /// Exact and case-sensitive, as OCPP-J requires.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .iter()
            .copied()
            .find(|action| action.as_str() == text)
            .ok_or_else(|| UnknownValue {
                kind: "OCPP 1.6 action",
                value: shorten(text),
                expected: Action::ALL
                    .iter()
                    .map(|action| format!("`{action}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Keeps error messages readable when a charger sends a megabyte where a name belongs.
fn shorten(text: &str) -> String {
    const KEEP: usize = 64;
    match text.char_indices().nth(KEEP) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}
