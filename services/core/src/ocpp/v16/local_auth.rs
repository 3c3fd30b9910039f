//! The messages of the OCPP 1.6 Local Auth List Management profile: the list of ID tags a
//! charger authorizes by itself, without asking (when offline, or to answer faster).

use serde::{Deserialize, Serialize};

use super::types::IdTagInfo;

/// Replaces the charger's local list, or changes some of its entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendLocalListRequest {
    /// The version the list has once this is applied.
    pub list_version: i32,
    /// With `Full`, the whole list (absent or empty clears it); with `Differential`, the
    /// entries to change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_authorization_list: Option<Vec<AuthorizationData>>,
    pub update_type: UpdateType,
}

/// One entry of a local list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthorizationData {
    pub id_tag: String,
    /// Absent in a `Differential` update: remove the tag from the list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_tag_info: Option<IdTagInfo>,
}

wire_enum! {
    /// How a SendLocalList changes the list.
    UpdateType, "OCPP 1.6 update type" {
        /// Changes the entries sent, keeping the others.
        Differential = "Differential",
        /// Replaces the whole list.
        Full = "Full",
    }
}

/// The answer to [`SendLocalListRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendLocalListResponse {
    pub status: UpdateStatus,
}

wire_enum! {
    /// Whether a charger applied a SendLocalList.
    UpdateStatus, "OCPP 1.6 update status" {
        Accepted = "Accepted",
        Failed = "Failed",
        NotSupported = "NotSupported",
        /// A `Differential` update did not follow on the charger's version; send a `Full` one.
        VersionMismatch = "VersionMismatch",
    }
}

/// Asks for the version of the charger's local list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetLocalListVersionRequest {}

/// The answer to [`GetLocalListVersionRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetLocalListVersionResponse {
    /// 0 when the list is empty, -1 when the charger does not support local lists.
    pub list_version: i32,
}
