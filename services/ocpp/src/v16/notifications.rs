//! The charger's small reports: Heartbeat, firmware and diagnostics progress, and DataTransfer.

use chrono::Utc;
use voltfleet_core::ocpp::v16::{
    DataTransferRequest, DataTransferResponse, DataTransferStatus,
    DiagnosticsStatusNotificationRequest, DiagnosticsStatusNotificationResponse,
    FirmwareStatusNotificationRequest, FirmwareStatusNotificationResponse, HeartbeatResponse,
};

use super::stored;
use crate::Central;
use crate::rpc::CallError;
use crate::session::Charger;

pub async fn heartbeat(
    central: &Central,
    charger: &Charger,
) -> Result<HeartbeatResponse, CallError> {
    let now = Utc::now();
    central
        .ctx
        .db
        .charge_points()
        .touch_last_seen(charger.id, now)
        .await
        .map_err(stored(charger, "the heartbeat"))?;
    Ok(HeartbeatResponse { current_time: now })
}

pub async fn firmware_status(
    central: &Central,
    charger: &Charger,
    request: FirmwareStatusNotificationRequest,
) -> Result<FirmwareStatusNotificationResponse, CallError> {
    central
        .ctx
        .db
        .charge_points()
        .record_firmware_status(charger.id, request.status.as_str(), Utc::now())
        .await
        .map_err(stored(charger, "the firmware status"))?;
    tracing::info!(charge_point = %charger.identity, status = %request.status, "Firmware status reported.");
    Ok(FirmwareStatusNotificationResponse {})
}

pub async fn diagnostics_status(
    central: &Central,
    charger: &Charger,
    request: DiagnosticsStatusNotificationRequest,
) -> Result<DiagnosticsStatusNotificationResponse, CallError> {
    central
        .ctx
        .db
        .charge_points()
        .record_diagnostics_status(charger.id, request.status.as_str(), Utc::now())
        .await
        .map_err(stored(charger, "the diagnostics status"))?;
    tracing::info!(charge_point = %charger.identity, status = %request.status, "Diagnostics status reported.");
    Ok(DiagnosticsStatusNotificationResponse {})
}

/// No vendor extensions are implemented, so every DataTransfer gets the answer 1.6 defines for
/// that; it is logged so that an operator can see what a charger model sends.
pub fn data_transfer(charger: &Charger, request: DataTransferRequest) -> DataTransferResponse {
    tracing::info!(
        charge_point = %charger.identity,
        vendor_id = %request.vendor_id,
        message_id = request.message_id.as_deref().unwrap_or(""),
        data_bytes = request.data.as_ref().map_or(0, String::len),
        "A charger sent a DataTransfer for a vendor extension this central system does not implement."
    );
    DataTransferResponse {
        status: DataTransferStatus::UnknownVendorId,
        data: None,
    }
}
