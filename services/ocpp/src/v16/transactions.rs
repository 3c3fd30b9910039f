//! Charging sessions: StartTransaction, StopTransaction and the MeterValues sampled during them.
//!
//! Chargers queue these while offline and send them again when they miss an answer, so each is
//! idempotent: a resent start gets the same transaction id back, a resent stop changes nothing,
//! and resent samples are not stored twice (see `voltfleet_core::storage::transactions`). A
//! sample names its transaction only when that transaction is this charger's, so a charger
//! cannot attach values to someone else's session.

use chrono::Utc;
use voltfleet_core::domain::EnergyWh;
use voltfleet_core::ocpp::events::ChargerEvent;
use voltfleet_core::ocpp::v16::{
    Measurand, MeterValue, MeterValuesRequest, MeterValuesResponse, StartTransactionRequest,
    StartTransactionResponse, StopTransactionRequest, StopTransactionResponse, UnitOfMeasure,
    ValueFormat,
};
use voltfleet_core::storage::{NewMeterValue, NewTransaction, StopTransaction};

use super::authorization::{Concurrency, id_tag_info};
use super::stored;
use crate::Central;
use crate::rpc::{CallError, ErrorCode};
use crate::session::Charger;

pub async fn start(
    central: &Central,
    charger: &mut Charger,
    request: StartTransactionRequest,
) -> Result<StartTransactionResponse, CallError> {
    if request.connector_id < 1 {
        return Err(CallError::new(
            ErrorCode::PropertyConstraintViolation,
            "connectorId of a transaction must be a connector number from 1",
        ));
    }
    let info = id_tag_info(
        central,
        charger,
        &request.id_tag,
        Utc::now(),
        Concurrency::OtherConnectors {
            connector_id: request.connector_id,
        },
    )
    .await
    .map_err(stored(charger, "the transaction"))?;
    let transactions = central.ctx.db.transactions();
    // OCPP gives the transaction an id even when the tag is refused: the charger then stops it.
    let transaction_id = transactions
        .start(&NewTransaction {
            charge_point_id: charger.id,
            evse_number: request.connector_id,
            id_token: request.id_tag.clone(),
            meter_start_wh: EnergyWh(request.meter_start),
            started_at: request.timestamp,
            reservation_id: request.reservation_id,
            start_auth_status: Some(info.status.as_str().to_owned()),
        })
        .await
        .map_err(stored(charger, "the transaction"))?;
    charger.transactions.remember(transaction_id);
    if let Some(reservation) = request.reservation_id {
        let used = central
            .ctx
            .db
            .reservations()
            .use_for_transaction(reservation, charger.id, transaction_id)
            .await
            .map_err(stored(charger, "the transaction"))?;
        if !used {
            tracing::info!(charge_point = %charger.identity, reservation, "A transaction named a reservation that is not this charger's accepted one.");
        }
    }
    tracing::info!(charge_point = %charger.identity, transaction_id, connector = request.connector_id, id_tag = %request.id_tag, status = %info.status, "Transaction started.");
    central
        .publish(ChargerEvent::TransactionStarted {
            charge_point: charger.identity.clone(),
            connector_id: request.connector_id,
            transaction_id,
            id_tag: request.id_tag,
            authorization: info.status.as_str().to_owned(),
            meter_start_wh: request.meter_start,
            at: request.timestamp,
        })
        .await;
    Ok(StartTransactionResponse {
        id_tag_info: info,
        transaction_id,
    })
}

pub async fn stop(
    central: &Central,
    charger: &Charger,
    request: StopTransactionRequest,
) -> Result<StopTransactionResponse, CallError> {
    let id_tag_info = match &request.id_tag {
        Some(tag) => Some(
            id_tag_info(central, charger, tag, Utc::now(), Concurrency::Ignore)
                .await
                .map_err(stored(charger, "the transaction's end"))?,
        ),
        None => None,
    };
    let transactions = central.ctx.db.transactions();
    let Some(transaction) = transactions
        .belongs_to(request.transaction_id, charger.id)
        .await
        .map_err(stored(charger, "the transaction's end"))?
    else {
        // The charger can do nothing but retry forever, so it gets its answer; the log keeps
        // what it said.
        tracing::warn!(charge_point = %charger.identity, transaction_id = request.transaction_id, meter_stop = request.meter_stop, "A charger stopped a transaction it does not have here; nothing was stored.");
        return Ok(StopTransactionResponse { id_tag_info });
    };
    if let Some(data) = &request.transaction_data {
        let rows = samples(
            charger.id,
            transaction.evse_number,
            Some(transaction.id),
            data,
        )?;
        central
            .meters
            .write(rows)
            .await
            .map_err(stored(charger, "the transaction's meter values"))?;
    }
    transactions
        .stop(
            transaction.id,
            &StopTransaction {
                meter_stop_wh: EnergyWh(request.meter_stop),
                stopped_at: request.timestamp,
                stop_reason: request.reason.map(|reason| reason.as_str().to_owned()),
                stop_id_token: request.id_tag.clone(),
            },
        )
        .await
        .map_err(stored(charger, "the transaction's end"))?;
    tracing::info!(charge_point = %charger.identity, transaction_id = transaction.id, meter_stop = request.meter_stop, "Transaction stopped.");
    central
        .publish(ChargerEvent::TransactionStopped {
            charge_point: charger.identity.clone(),
            transaction_id: transaction.id,
            meter_stop_wh: request.meter_stop,
            reason: request.reason.map(|reason| reason.as_str().to_owned()),
            at: request.timestamp,
        })
        .await;
    Ok(StopTransactionResponse { id_tag_info })
}

pub async fn meter_values(
    central: &Central,
    charger: &mut Charger,
    request: MeterValuesRequest,
) -> Result<MeterValuesResponse, CallError> {
    if request.connector_id < 0 {
        return Err(CallError::new(
            ErrorCode::PropertyConstraintViolation,
            "connectorId must be 0 (the main meter) or a connector number from 1",
        ));
    }
    let transaction_id = match request.transaction_id {
        Some(id) if charger.transactions.contains(id) => Some(id),
        Some(id) => {
            let found = central
                .ctx
                .db
                .transactions()
                .belongs_to(id, charger.id)
                .await
                .map_err(stored(charger, "the meter values"))?;
            match &found {
                Some(transaction) => charger.transactions.remember(transaction.id),
                None => {
                    tracing::warn!(charge_point = %charger.identity, transaction_id = id, "Meter values named a transaction this charger does not have; stored without it.");
                }
            }
            found.map(|transaction| transaction.id)
        }
        None => None,
    };
    let rows = samples(
        charger.id,
        request.connector_id,
        transaction_id,
        &request.meter_value,
    )?;
    let stored_rows = rows.len();
    let newest = |measurand: &str| {
        rows.iter()
            .filter(|row| row.measurand == measurand)
            .max_by_key(|row| row.sampled_at)
            .map(|row| (row.sampled_at, in_base_unit(row.value, &row.unit)))
    };
    let energy = newest(Measurand::EnergyActiveImportRegister.as_str());
    let power = newest(Measurand::PowerActiveImport.as_str());
    let at = rows.iter().map(|row| row.sampled_at).max();
    central
        .meters
        .write(rows)
        .await
        .map_err(stored(charger, "the meter values"))?;
    if let Some(at) = at {
        central
            .publish(ChargerEvent::MeterValues {
                charge_point: charger.identity.clone(),
                connector_id: request.connector_id,
                transaction_id,
                at,
                energy_wh: energy.map(|(_, value)| value),
                power_w: power.map(|(_, value)| value),
                samples: stored_rows,
            })
            .await;
    }
    Ok(MeterValuesResponse {})
}

/// The rows to store for sampled values. Signed values (opaque blobs) are not numbers and are
/// left out; a raw value that is not a finite number is refused, naming where it is.
fn samples(
    charge_point_id: i64,
    evse_number: i32,
    transaction_id: Option<i64>,
    meter_values: &[MeterValue],
) -> Result<Vec<NewMeterValue>, CallError> {
    let mut rows = Vec::new();
    for (i, meter_value) in meter_values.iter().enumerate() {
        for (j, sampled) in meter_value.sampled_value.iter().enumerate() {
            if sampled.format.unwrap_or_default() == ValueFormat::SignedData {
                continue;
            }
            let value = sampled
                .value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|value| value.is_finite())
                .ok_or_else(|| {
                    CallError::new(
                        ErrorCode::PropertyConstraintViolation,
                        format!(
                            "meterValue[{i}].sampledValue[{j}].value {:?} is not a decimal number",
                            sampled.value
                        ),
                    )
                })?;
            let measurand = sampled.measurand.unwrap_or_default();
            rows.push(NewMeterValue {
                transaction_id,
                charge_point_id,
                evse_number,
                sampled_at: meter_value.timestamp,
                measurand: measurand.as_str().to_owned(),
                phase: sampled.phase.map(|phase| phase.as_str().to_owned()),
                unit: sampled
                    .unit
                    .map_or_else(|| default_unit(measurand), UnitOfMeasure::as_str)
                    .to_owned(),
                value,
                context: Some(sampled.context.unwrap_or_default().as_str().to_owned()),
                location: sampled
                    .location
                    .map(|location| location.as_str().to_owned()),
            });
        }
    }
    Ok(rows)
}

/// The unit a measurand is read in when the charger names none.
fn default_unit(measurand: Measurand) -> &'static str {
    let name = measurand.as_str();
    if name.starts_with("Energy.Reactive") {
        "varh"
    } else if name.starts_with("Energy") {
        "Wh"
    } else if name.starts_with("Power.Reactive") {
        "var"
    } else if name.starts_with("Power.Factor") {
        ""
    } else if name.starts_with("Power") {
        "W"
    } else if name.starts_with("Current") {
        "A"
    } else if name == "Voltage" {
        "V"
    } else if name == "SoC" {
        "Percent"
    } else if name == "Temperature" {
        "Celsius"
    } else {
        ""
    }
}

/// Wh and W for the values that events carry.
fn in_base_unit(value: f64, unit: &str) -> f64 {
    match unit {
        "kWh" | "kW" => value * 1000.0,
        _ => value,
    }
}
