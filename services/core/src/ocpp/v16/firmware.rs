//! The messages of the OCPP 1.6 Firmware Management profile: firmware updates and diagnostics
//! uploads, which the charger carries out on its own and reports on as it goes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Asks the charger to download firmware and install it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateFirmwareRequest {
    /// Where to download the firmware from (a URI).
    pub location: String,
    /// How often to try the download.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i32>,
    /// Not before this time.
    pub retrieve_date: DateTime<Utc>,
    /// Seconds between tries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_interval: Option<i32>,
}

/// The answer to [`UpdateFirmwareRequest`]; the progress comes as FirmwareStatusNotifications.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateFirmwareResponse {}

/// A charger reports the progress of a firmware update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FirmwareStatusNotificationRequest {
    pub status: FirmwareStatus,
}

wire_enum! {
    /// Where a firmware update stands.
    FirmwareStatus, "OCPP 1.6 firmware status" {
        Downloaded = "Downloaded",
        DownloadFailed = "DownloadFailed",
        Downloading = "Downloading",
        /// No update in progress; only sent when a TriggerMessage asks.
        Idle = "Idle",
        InstallationFailed = "InstallationFailed",
        Installing = "Installing",
        Installed = "Installed",
    }
}

/// The answer to [`FirmwareStatusNotificationRequest`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirmwareStatusNotificationResponse {}

/// Asks the charger to upload a diagnostics file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetDiagnosticsRequest {
    /// Where to upload the file to (a URI, usually FTP).
    pub location: String,
    /// How often to try the upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i32>,
    /// Seconds between tries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_interval: Option<i32>,
    /// The oldest logging to include.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<DateTime<Utc>>,
    /// The newest logging to include.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_time: Option<DateTime<Utc>>,
}

/// The answer to [`GetDiagnosticsRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetDiagnosticsResponse {
    /// The name the file will have; absent when there is nothing to upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
}

/// A charger reports the progress of a diagnostics upload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DiagnosticsStatusNotificationRequest {
    pub status: DiagnosticsStatus,
}

wire_enum! {
    /// Where a diagnostics upload stands.
    DiagnosticsStatus, "OCPP 1.6 diagnostics status" {
        /// No upload in progress; only sent when a TriggerMessage asks.
        Idle = "Idle",
        Uploaded = "Uploaded",
        UploadFailed = "UploadFailed",
        Uploading = "Uploading",
    }
}

/// The answer to [`DiagnosticsStatusNotificationRequest`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiagnosticsStatusNotificationResponse {}
