//! StatusNotification: each connector's status, kept as history and as the current state.

use chrono::Utc;
use voltfleet_core::ocpp::events::ChargerEvent;
use voltfleet_core::ocpp::v16::{StatusNotificationRequest, StatusNotificationResponse};
use voltfleet_core::storage::StatusReport;

use super::stored;
use crate::Central;
use crate::rpc::{CallError, ErrorCode};
use crate::session::Charger;

pub async fn status_notification(
    central: &Central,
    charger: &Charger,
    request: StatusNotificationRequest,
) -> Result<StatusNotificationResponse, CallError> {
    if request.connector_id < 0 {
        return Err(CallError::new(
            ErrorCode::PropertyConstraintViolation,
            "connectorId must be 0 (the whole charger) or a connector number from 1",
        ));
    }
    let received_at = Utc::now();
    let report = StatusReport {
        charge_point_id: charger.id,
        connector_id: request.connector_id,
        status: request.status.as_str().to_owned(),
        error_code: request.error_code.as_str().to_owned(),
        info: request.info,
        vendor_id: request.vendor_id,
        vendor_error_code: request.vendor_error_code,
        reported_at: request.timestamp,
        received_at,
    };
    let recorded = central
        .ctx
        .db
        .charge_points()
        .record_status(&report)
        .await
        .map_err(stored(charger, "the status notification"))?;
    if recorded.current_changed {
        central
            .publish(ChargerEvent::StatusChanged {
                charge_point: charger.identity.clone(),
                connector_id: report.connector_id,
                status: report.status,
                error_code: report.error_code,
                at: report.reported_at.unwrap_or(received_at),
            })
            .await;
    }
    Ok(StatusNotificationResponse {})
}
