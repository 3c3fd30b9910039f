//! BootNotification: the charger says what it is, and learns whether it may operate.

use chrono::Utc;
use voltfleet_core::domain::RegistrationStatus;
use voltfleet_core::ocpp::events::ChargerEvent;
use voltfleet_core::ocpp::v16::{self as ocpp, BootNotificationRequest, BootNotificationResponse};
use voltfleet_core::storage::BootInfo;

use super::stored;
use crate::Central;
use crate::rpc::CallError;
use crate::session::Charger;

pub async fn boot(
    central: &Central,
    charger: &mut Charger,
    request: BootNotificationRequest,
) -> Result<BootNotificationResponse, CallError> {
    let now = Utc::now();
    let chargers = central.ctx.db.charge_points();
    let info = BootInfo {
        vendor: request.charge_point_vendor,
        model: request.charge_point_model,
        serial_number: request.charge_point_serial_number,
        firmware_version: request.firmware_version,
        ocpp_version: Some(charger.version.number().to_owned()),
        charge_box_serial_number: request.charge_box_serial_number,
        iccid: request.iccid,
        imsi: request.imsi,
        meter_type: request.meter_type,
        meter_serial_number: request.meter_serial_number,
    };
    chargers
        .record_boot(charger.id, &info, now)
        .await
        .map_err(stored(charger, "the boot notification"))?;
    // An operator may have approved (or rejected) the charger since it connected.
    let record = chargers
        .get(charger.id)
        .await
        .map_err(stored(charger, "the boot notification"))?;
    charger.registration = record.registration_status;
    let settings = central.settings();
    let (status, interval) = match record.registration_status {
        RegistrationStatus::Accepted => (
            ocpp::RegistrationStatus::Accepted,
            settings.heartbeat_interval,
        ),
        RegistrationStatus::Pending => (
            ocpp::RegistrationStatus::Pending,
            settings.boot_retry_interval,
        ),
        RegistrationStatus::Rejected => (
            ocpp::RegistrationStatus::Rejected,
            settings.boot_retry_interval,
        ),
    };
    tracing::info!(
        charge_point = %charger.identity,
        vendor = %info.vendor,
        model = %info.model,
        firmware = info.firmware_version.as_deref().unwrap_or(""),
        registration = %record.registration_status,
        "Charger booted."
    );
    central
        .publish(ChargerEvent::Booted {
            charge_point: charger.identity.clone(),
            registration: record.registration_status.to_string(),
            at: now,
        })
        .await;
    Ok(BootNotificationResponse {
        status,
        current_time: now,
        interval: i32::try_from(interval.as_secs()).unwrap_or(i32::MAX),
    })
}
