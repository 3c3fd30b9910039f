//! OCPP 1.6J: every CALL a charger may send, handled with its real effect, and the effects of
//! the charger's answers to the central system's CALLs.
//!
//! [`handle_call`] is the boundary: the action must be a 1.6 action a charger may send, the
//! payload must pass the official schema, and a charger that has not been accepted may only
//! boot. Only then is the payload turned into its typed request and given to its handler; the
//! handler's answer is checked against the response schema before it leaves.

mod answers;
mod authorization;
mod boot;
mod notifications;
pub mod schemas;
mod status;
mod transactions;

use std::str::FromStr;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use voltfleet_core::domain::RegistrationStatus;
use voltfleet_core::ocpp::v16::{Action, Sender, SetChargingProfileRequest};
use voltfleet_core::storage::StorageError;

use crate::Central;
use crate::rpc::{CallError, ErrorCode};
use crate::session::Charger;
use schemas::Direction;

pub use answers::after_answer;

/// The action as a metric label: its own name, or `unknown` for anything not in 1.6.
pub fn action_label(action: &str) -> &'static str {
    Action::from_str(action).map_or("unknown", Action::as_str)
}

/// Handles one CALL from the charger; the result is the CALLRESULT payload or the CALLERROR.
pub async fn handle_call(
    central: &Central,
    charger: &mut Charger,
    action: &str,
    payload: Value,
) -> Result<Value, CallError> {
    let action = Action::from_str(action).map_err(|_| {
        CallError::new(
            ErrorCode::NotImplemented,
            format!("{action} is not an OCPP 1.6 action"),
        )
    })?;
    if action.sender() == Sender::CentralSystem {
        return Err(CallError::new(
            ErrorCode::NotSupported,
            format!("{action} is sent by the central system to chargers, not by chargers"),
        ));
    }
    central
        .schemas
        .check(action, Direction::Request, &payload)?;
    if action != Action::BootNotification && charger.registration != RegistrationStatus::Accepted {
        return Err(CallError::new(
            ErrorCode::SecurityError,
            format!(
                "the charger is {}: until the central system accepts it, only BootNotification is handled",
                charger.registration
            ),
        ));
    }
    let answer = match action {
        Action::BootNotification => answer(boot::boot(central, charger, typed(payload)?).await?),
        Action::Heartbeat => answer(notifications::heartbeat(central, charger).await?),
        Action::Authorize => {
            answer(authorization::authorize(central, charger, typed(payload)?).await?)
        }
        Action::StatusNotification => {
            answer(status::status_notification(central, charger, typed(payload)?).await?)
        }
        Action::StartTransaction => {
            answer(transactions::start(central, charger, typed(payload)?).await?)
        }
        Action::StopTransaction => {
            answer(transactions::stop(central, charger, typed(payload)?).await?)
        }
        Action::MeterValues => {
            answer(transactions::meter_values(central, charger, typed(payload)?).await?)
        }
        Action::DataTransfer => answer(notifications::data_transfer(charger, typed(payload)?)),
        Action::FirmwareStatusNotification => {
            answer(notifications::firmware_status(central, charger, typed(payload)?).await?)
        }
        Action::DiagnosticsStatusNotification => {
            answer(notifications::diagnostics_status(central, charger, typed(payload)?).await?)
        }
        other => {
            return Err(CallError::new(
                ErrorCode::NotSupported,
                format!("{other} is sent by the central system to chargers, not by chargers"),
            ));
        }
    }?;
    central
        .schemas
        .check(action, Direction::Response, &answer)
        .map_err(|error| {
            tracing::error!(charge_point = %charger.identity, %action, error = %error, "The central system built an answer that fails the OCPP schema; this is a bug.");
            CallError::internal("the central system could not build a valid answer")
        })?;
    Ok(answer)
}

/// The rules a command must follow beyond its schema, checked before it is sent so that the
/// caller hears what is wrong instead of a bare rejection from the charger.
pub fn check_command(action: Action, payload: &Value) -> Result<(), String> {
    if action == Action::SetChargingProfile {
        let request: SetChargingProfileRequest = serde_json::from_value(payload.clone())
            .map_err(|err| format!("the charging profile does not fit the message: {err}"))?;
        let problems = request.problems();
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
    }
    Ok(())
}

/// The typed request of a payload that passed its schema.
fn typed<T: DeserializeOwned>(payload: Value) -> Result<T, CallError> {
    serde_json::from_value(payload).map_err(|err| {
        CallError::new(
            ErrorCode::FormationViolation,
            format!("the payload does not fit the message: {err}"),
        )
    })
}

fn answer<T: Serialize>(response: T) -> Result<Value, CallError> {
    serde_json::to_value(response)
        .map_err(|err| CallError::internal(format!("the answer could not be written: {err}")))
}

/// A storage failure as the charger sees it: an internal error, so that it sends the message
/// again later. The details go to the log, not to the charger.
fn stored<'a>(charger: &'a Charger, what: &'static str) -> impl Fn(StorageError) -> CallError + 'a {
    move |err| {
        tracing::error!(charge_point = %charger.identity, error = %err, "Could not store {what}.");
        let description = match err {
            StorageError::Unavailable { .. } => {
                format!("the central system could not store {what} right now; send it again later")
            }
            _ => format!("the central system could not store {what}"),
        };
        CallError::internal(description)
    }
}
