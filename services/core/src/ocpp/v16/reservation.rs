//! The messages of the OCPP 1.6 Reservation profile: holding a connector for one ID tag.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Reserves a connector, or any connector of the charger on connector 0, for an ID tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReserveNowRequest {
    pub connector_id: i32,
    /// When the reservation ends.
    pub expiry_date: DateTime<Utc>,
    pub id_tag: String,
    /// Tags with this parent may use the reservation too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id_tag: Option<String>,
    /// Replaces the reservation with this id, if the charger has one.
    pub reservation_id: i64,
}

/// The answer to [`ReserveNowRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReserveNowResponse {
    pub status: ReservationStatus,
}

wire_enum! {
    /// Whether a charger made a reservation, and why not.
    ReservationStatus, "OCPP 1.6 reservation status" {
        Accepted = "Accepted",
        Faulted = "Faulted",
        /// In use, or reserved for another tag.
        Occupied = "Occupied",
        /// The charger does not take reservations.
        Rejected = "Rejected",
        Unavailable = "Unavailable",
    }
}

/// Cancels a reservation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CancelReservationRequest {
    pub reservation_id: i64,
}

/// The answer to [`CancelReservationRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CancelReservationResponse {
    pub status: CancelReservationStatus,
}

wire_enum! {
    /// Whether a reservation was cancelled.
    CancelReservationStatus, "OCPP 1.6 cancel reservation status" {
        Accepted = "Accepted",
        /// No reservation has that id.
        Rejected = "Rejected",
    }
}
