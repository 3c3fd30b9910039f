//! What chargers did, published on the bus for the other services once it is stored.
//!
//! The OCPP service publishes each event after the database holds it, on the topic of its kind
//! ([`ChargerEvent::topic`]), so a subscriber picks the kinds it cares about: the Back Office
//! dashboard takes them all, the API the transactions and meter values of its drivers. Events
//! are notifications — the database stays the record — and delivery is at most once.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::ChargePointId;

/// Connections, boots and registration changes.
pub const CONNECTION_TOPIC: &str = "ocpp.events.connection";
/// Connector status changes.
pub const STATUS_TOPIC: &str = "ocpp.events.status";
/// Transactions starting and stopping.
pub const TRANSACTION_TOPIC: &str = "ocpp.events.transaction";
/// Meter values stored.
pub const METER_TOPIC: &str = "ocpp.events.meter";

/// One thing a charger did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChargerEvent {
    Connected {
        charge_point: ChargePointId,
        node: String,
        /// The negotiated subprotocol, such as `ocpp1.6`.
        protocol: String,
        at: DateTime<Utc>,
    },
    Disconnected {
        charge_point: ChargePointId,
        node: String,
        at: DateTime<Utc>,
    },
    Booted {
        charge_point: ChargePointId,
        /// The registration status answered: `Accepted`, `Pending` or `Rejected`.
        registration: String,
        at: DateTime<Utc>,
    },
    StatusChanged {
        charge_point: ChargePointId,
        /// 0 is the charger as a whole.
        connector_id: i32,
        status: String,
        error_code: String,
        at: DateTime<Utc>,
    },
    TransactionStarted {
        charge_point: ChargePointId,
        connector_id: i32,
        transaction_id: i64,
        id_tag: String,
        /// The authorization status answered, such as `Accepted` or `Invalid`.
        authorization: String,
        meter_start_wh: i64,
        at: DateTime<Utc>,
    },
    TransactionStopped {
        charge_point: ChargePointId,
        transaction_id: i64,
        meter_stop_wh: i64,
        reason: Option<String>,
        at: DateTime<Utc>,
    },
    MeterValues {
        charge_point: ChargePointId,
        connector_id: i32,
        transaction_id: Option<i64>,
        /// Time of the newest sample in the message.
        at: DateTime<Utc>,
        /// The newest `Energy.Active.Import.Register` reading in Wh, when the message had one.
        energy_wh: Option<f64>,
        /// The newest `Power.Active.Import` reading in W, when the message had one.
        power_w: Option<f64>,
        /// Sampled values stored.
        samples: usize,
    },
}

impl ChargerEvent {
    /// The bus topic this event is published on.
    pub fn topic(&self) -> &'static str {
        match self {
            ChargerEvent::Connected { .. }
            | ChargerEvent::Disconnected { .. }
            | ChargerEvent::Booted { .. } => CONNECTION_TOPIC,
            ChargerEvent::StatusChanged { .. } => STATUS_TOPIC,
            ChargerEvent::TransactionStarted { .. } | ChargerEvent::TransactionStopped { .. } => {
                TRANSACTION_TOPIC
            }
            ChargerEvent::MeterValues { .. } => METER_TOPIC,
        }
    }

    /// The charger the event is about.
    pub fn charge_point(&self) -> &ChargePointId {
        match self {
            ChargerEvent::Connected { charge_point, .. }
            | ChargerEvent::Disconnected { charge_point, .. }
            | ChargerEvent::Booted { charge_point, .. }
            | ChargerEvent::StatusChanged { charge_point, .. }
            | ChargerEvent::TransactionStarted { charge_point, .. }
            | ChargerEvent::TransactionStopped { charge_point, .. }
            | ChargerEvent::MeterValues { charge_point, .. } => charge_point,
        }
    }
}
