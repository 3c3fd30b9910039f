//! What the central system records when a charger answers one of its CALLs: the mirror of the
//! charger's configuration, its charging profiles, its local list and its reservations follow
//! what the charger said it did, not what it was asked.
//!
//! The caller gets the charger's answer whether or not recording it worked; a failure is
//! logged, and the next GetConfiguration (or the operator) puts the mirror right.

use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde_json::Value;
use voltfleet_core::ocpp::v16::{
    Action, CancelReservationRequest, CancelReservationResponse, CancelReservationStatus,
    ChangeConfigurationRequest, ChangeConfigurationResponse, ChargingProfileStatus,
    ClearChargingProfileRequest, ClearChargingProfileResponse, ClearChargingProfileStatus,
    ConfigurationStatus, GetConfigurationRequest, GetConfigurationResponse, ReserveNowRequest,
    ReserveNowResponse, SendLocalListRequest, SendLocalListResponse, SetChargingProfileRequest,
    SetChargingProfileResponse, UpdateStatus, UpdateType,
};
use voltfleet_core::storage::{
    ClearFilter, ConfigurationEntry, LocalListEntry, LocalListUpdate, NewChargingProfile,
    ReservationStatus, StorageError,
};

use crate::Central;
use crate::session::Charger;

/// Records the effect of the charger's `answer` to the CALL `action` with `request`. Both
/// passed their schemas.
pub async fn after_answer(
    central: &Central,
    charger: &Charger,
    action: Action,
    request: &Value,
    answer: &Value,
) {
    let outcome = match action {
        Action::GetConfiguration => configuration_read(central, charger, request, answer).await,
        Action::ChangeConfiguration => {
            configuration_changed(central, charger, request, answer).await
        }
        Action::SetChargingProfile => profile_set(central, charger, request, answer).await,
        Action::ClearChargingProfile => profiles_cleared(central, charger, request, answer).await,
        Action::SendLocalList => local_list_sent(central, charger, request, answer).await,
        Action::ReserveNow => reservation_answered(central, request, answer).await,
        Action::CancelReservation => reservation_cancelled(central, request, answer).await,
        _ => Ok(()),
    };
    if let Err(problem) = outcome {
        tracing::warn!(
            charge_point = %charger.identity,
            %action,
            problem = %problem,
            "Could not record the effect of a charger's answer."
        );
    }
}

/// Why an answer's effect was not recorded.
#[derive(Debug, thiserror::Error)]
enum NotRecorded {
    #[error("the message does not fit its type: {0}")]
    Shape(#[from] serde_json::Error),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Value(String),
}

fn read<T: DeserializeOwned>(value: &Value) -> Result<T, NotRecorded> {
    Ok(serde_json::from_value(value.clone())?)
}

async fn configuration_read(
    central: &Central,
    charger: &Charger,
    request: &Value,
    answer: &Value,
) -> Result<(), NotRecorded> {
    let request: GetConfigurationRequest = read(request)?;
    let answer: GetConfigurationResponse = read(answer)?;
    let entries: Vec<ConfigurationEntry> = answer
        .configuration_key
        .unwrap_or_default()
        .into_iter()
        .map(|key| ConfigurationEntry {
            key: key.key,
            value: key.value,
            readonly: key.readonly,
        })
        .collect();
    let configuration = central.ctx.db.configuration();
    // Asked for everything, the charger listed everything: what it left out is gone.
    let asked_for_all = request.key.as_ref().is_none_or(Vec::is_empty);
    if asked_for_all {
        configuration.replace_all(charger.id, &entries).await?;
    } else {
        configuration.upsert(charger.id, &entries).await?;
    }
    Ok(())
}

async fn configuration_changed(
    central: &Central,
    charger: &Charger,
    request: &Value,
    answer: &Value,
) -> Result<(), NotRecorded> {
    let request: ChangeConfigurationRequest = read(request)?;
    let answer: ChangeConfigurationResponse = read(answer)?;
    if matches!(
        answer.status,
        ConfigurationStatus::Accepted | ConfigurationStatus::RebootRequired
    ) {
        central
            .ctx
            .db
            .configuration()
            .set_value(charger.id, &request.key, &request.value)
            .await?;
    }
    Ok(())
}

async fn profile_set(
    central: &Central,
    charger: &Charger,
    request: &Value,
    answer: &Value,
) -> Result<(), NotRecorded> {
    let request: SetChargingProfileRequest = read(request)?;
    let answer: SetChargingProfileResponse = read(answer)?;
    if answer.status != ChargingProfileStatus::Accepted {
        return Ok(());
    }
    let profile = request.cs_charging_profiles;
    let schedule = serde_json::to_value(&profile.charging_schedule)?;
    let installed = central
        .ctx
        .db
        .charging_profiles()
        .install(&NewChargingProfile {
            charge_point_id: charger.id,
            connector_id: request.connector_id,
            charging_profile_id: profile.charging_profile_id,
            stack_level: profile.stack_level,
            purpose: stored_enum(profile.charging_profile_purpose.as_str())?,
            kind: stored_enum(profile.charging_profile_kind.as_str())?,
            recurrency: profile
                .recurrency_kind
                .map(|kind| stored_enum(kind.as_str()))
                .transpose()?,
            valid_from: profile.valid_from,
            valid_to: profile.valid_to,
            transaction_id: profile.transaction_id,
            schedule,
        })
        .await?;
    tracing::info!(
        charge_point = %charger.identity,
        charging_profile_id = profile.charging_profile_id,
        replaced = installed.replaced,
        "The charger installed a charging profile."
    );
    Ok(())
}

async fn profiles_cleared(
    central: &Central,
    charger: &Charger,
    request: &Value,
    answer: &Value,
) -> Result<(), NotRecorded> {
    let request: ClearChargingProfileRequest = read(request)?;
    let answer: ClearChargingProfileResponse = read(answer)?;
    if answer.status != ClearChargingProfileStatus::Accepted {
        return Ok(());
    }
    let filter = ClearFilter {
        id: request.id,
        connector_id: request.connector_id,
        purpose: request
            .charging_profile_purpose
            .map(|purpose| stored_enum(purpose.as_str()))
            .transpose()?,
        stack_level: request.stack_level,
    };
    central
        .ctx
        .db
        .charging_profiles()
        .clear(charger.id, &filter)
        .await?;
    Ok(())
}

async fn local_list_sent(
    central: &Central,
    charger: &Charger,
    request: &Value,
    answer: &Value,
) -> Result<(), NotRecorded> {
    let request: SendLocalListRequest = read(request)?;
    let answer: SendLocalListResponse = read(answer)?;
    if answer.status != UpdateStatus::Accepted {
        return Ok(());
    }
    let update = match request.update_type {
        UpdateType::Full => LocalListUpdate::Full,
        UpdateType::Differential => LocalListUpdate::Differential,
    };
    let entries: Vec<LocalListEntry> = request
        .local_authorization_list
        .unwrap_or_default()
        .into_iter()
        .map(|entry| LocalListEntry {
            id_tag: entry.id_tag,
            status: entry
                .id_tag_info
                .as_ref()
                .map(|info| info.status.as_str().to_owned()),
            expiry_date: entry.id_tag_info.as_ref().and_then(|info| info.expiry_date),
            parent_id_tag: entry.id_tag_info.and_then(|info| info.parent_id_tag),
        })
        .collect();
    central
        .ctx
        .db
        .local_list()
        .apply(charger.id, request.list_version, update, &entries)
        .await?;
    Ok(())
}

async fn reservation_answered(
    central: &Central,
    request: &Value,
    answer: &Value,
) -> Result<(), NotRecorded> {
    let request: ReserveNowRequest = read(request)?;
    let answer: ReserveNowResponse = read(answer)?;
    let status: ReservationStatus = stored_enum(answer.status.as_str())?;
    central
        .ctx
        .db
        .reservations()
        .set_status(request.reservation_id, status)
        .await?;
    Ok(())
}

async fn reservation_cancelled(
    central: &Central,
    request: &Value,
    answer: &Value,
) -> Result<(), NotRecorded> {
    let request: CancelReservationRequest = read(request)?;
    let answer: CancelReservationResponse = read(answer)?;
    if answer.status == CancelReservationStatus::Accepted {
        central
            .ctx
            .db
            .reservations()
            .set_status(request.reservation_id, ReservationStatus::Cancelled)
            .await?;
    }
    Ok(())
}

/// The storage enum with the same spelling as the OCPP one (storage keeps OCPP's names).
fn stored_enum<T: FromStr<Err = voltfleet_core::domain::UnknownValue>>(
    text: &str,
) -> Result<T, NotRecorded> {
    T::from_str(text).map_err(|err| NotRecorded::Value(err.to_string()))
}
