//! The message of the OCPP 1.6 Remote Trigger profile: asking a charger to send one of its
//! own messages now rather than when it would.

use serde::{Deserialize, Serialize};

/// Asks the charger to send a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TriggerMessageRequest {
    pub requested_message: MessageTrigger,
    /// Only when the message is to be about one connector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_id: Option<i32>,
}

wire_enum! {
    /// The messages a TriggerMessage may ask for, spelled like their actions.
    MessageTrigger, "OCPP 1.6 message trigger" {
        BootNotification = "BootNotification",
        DiagnosticsStatusNotification = "DiagnosticsStatusNotification",
        FirmwareStatusNotification = "FirmwareStatusNotification",
        Heartbeat = "Heartbeat",
        MeterValues = "MeterValues",
        StatusNotification = "StatusNotification",
    }
}

/// The answer to [`TriggerMessageRequest`]; the message itself follows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TriggerMessageResponse {
    pub status: TriggerMessageStatus,
}

wire_enum! {
    /// Whether a charger will send the message asked for.
    TriggerMessageStatus, "OCPP 1.6 trigger message status" {
        Accepted = "Accepted",
        Rejected = "Rejected",
        NotImplemented = "NotImplemented",
    }
}
