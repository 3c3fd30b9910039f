//! The WebSocket handshake at `/ocpp/{chargePointId}`: who the charger is, whether it may
//! connect, and which OCPP version it speaks. Refusals happen here, before the upgrade, with
//! an HTTP status and a body that says what to fix; each is counted and logged.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use voltfleet_core::config::UnknownChargerPolicy;
use voltfleet_core::domain::{ChargePointId, RegistrationStatus};
use voltfleet_core::storage::{ChargePoint, NewChargePoint, StorageError};

use crate::Central;
use crate::auth::{Presented, Refusal};
use crate::protocol::{self, Negotiated};
use crate::session;

/// tungstenite reads in chunks of this size; its default (128 KiB) would be most of an idle
/// charger's memory.
const READ_BUFFER: usize = 4096;

pub async fn connect(
    State(central): State<Arc<Central>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let identity = match path {
        Ok(Path(raw)) => raw.parse::<ChargePointId>().map_err(|err| err.to_string()),
        Err(rejection) => Err(format!(
            "the charger id in the path is unusable: {rejection}"
        )),
    };
    let identity = match identity {
        Ok(identity) => identity,
        Err(problem) => return refuse(&central, None, &headers, Refusal::BadIdentity(problem)),
    };
    match admit(&central, &identity, &headers, upgrade).await {
        Ok(response) => response,
        Err(refusal) => refuse(&central, Some(&identity), &headers, refusal),
    }
}

async fn admit(
    central: &Arc<Central>,
    identity: &ChargePointId,
    headers: &HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Refusal> {
    let upgrade = upgrade.map_err(|rejection| Refusal::NotWebSocket(rejection.body_text()))?;
    let settings = central.settings();
    let charger = find_or_register(central, identity).await?;
    Presented::from_headers(headers, &settings.client_cert_header)
        .authenticate(
            identity,
            charger.security_profile,
            charger.ocpp_password_hash.as_deref(),
            &central.passwords,
        )
        .await?;

    let offered = headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|value| value.to_str().ok());
    let negotiated = protocol::negotiate(offered);
    let max_message = settings.max_message_size as usize;
    let mut upgrade = upgrade
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(max_message.saturating_mul(2))
        .max_message_size(max_message)
        .max_frame_size(max_message);
    if let Some(chosen) = &negotiated {
        upgrade = upgrade.protocols([chosen.token.clone()]);
    }
    let session_central = Arc::clone(central);
    let identity = identity.clone();
    let token = central.tasks.token();
    let offered = offered.unwrap_or("nothing").to_owned();
    Ok(upgrade
        .on_failed_upgrade(|err| {
            tracing::warn!(error = %err, "A charger's WebSocket upgrade failed after the handshake.");
        })
        .on_upgrade(move |socket| async move {
            let _running = token;
            match negotiated {
                Some(Negotiated { version, .. }) => {
                    session::run(session_central, socket, charger, identity, version).await;
                }
                None => {
                    // OCPP-J: complete the handshake without a subprotocol, then close at once.
                    session_central
                        .metrics
                        .rejected_connections
                        .with_label_values(&["unsupported_protocol"])
                        .inc();
                    tracing::warn!(
                        charge_point = %identity,
                        offered = %offered,
                        "A charger offered no OCPP version spoken here; closing."
                    );
                    close_unsupported(socket).await;
                }
            }
        }))
}

async fn close_unsupported(mut socket: WebSocket) {
    let reason = format!(
        "no supported OCPP version offered; this central system speaks {}",
        protocol::supported_list()
    );
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: close_code::PROTOCOL,
            reason: reason.into(),
        })))
        .await;
}

/// The charger's record; a charger never seen before is registered or refused by
/// `ocpp.unknown_chargers`.
async fn find_or_register(
    central: &Central,
    identity: &ChargePointId,
) -> Result<ChargePoint, Refusal> {
    let chargers = central.ctx.db.charge_points();
    let unavailable = |err: StorageError| Refusal::Unavailable(err.to_string());
    if let Some(found) = chargers
        .find_by_identity(identity)
        .await
        .map_err(unavailable)?
    {
        return Ok(found);
    }
    let registration_status = match central.settings().unknown_chargers {
        UnknownChargerPolicy::Reject => return Err(Refusal::UnknownCharger),
        UnknownChargerPolicy::Pending => RegistrationStatus::Pending,
        UnknownChargerPolicy::Accept => RegistrationStatus::Accepted,
    };
    let created = chargers
        .create(&NewChargePoint {
            identity: identity.clone(),
            location_id: None,
            ocpp_password_hash: None,
            registration_status,
        })
        .await;
    match created {
        Ok(id) => {
            // Without a password yet, it can only have connected unauthenticated.
            chargers
                .set_security_profile(id, 0)
                .await
                .map_err(unavailable)?;
            tracing::info!(
                charge_point = %identity,
                registration = %registration_status,
                "Registered a charger that connected for the first time."
            );
        }
        // Two first connections at once: the other one registered it.
        Err(StorageError::Conflict { .. }) => {}
        Err(err) => return Err(unavailable(err)),
    }
    chargers
        .find_by_identity(identity)
        .await
        .map_err(unavailable)?
        .ok_or(Refusal::UnknownCharger)
}

fn refuse(
    central: &Central,
    identity: Option<&ChargePointId>,
    headers: &HeaderMap,
    refusal: Refusal,
) -> Response {
    central
        .metrics
        .rejected_connections
        .with_label_values(&[refusal.reason()])
        .inc();
    let client = headers
        .get("x-forwarded-for")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let detail = match &refusal {
        Refusal::BadIdentity(problem) | Refusal::NotWebSocket(problem) => problem.clone(),
        Refusal::CertificateMismatch(subject) => format!("certificate subject {subject}"),
        Refusal::Unavailable(problem) => problem.clone(),
        _ => String::new(),
    };
    tracing::warn!(
        charge_point = identity.map_or("", ChargePointId::as_str),
        reason = refusal.reason(),
        detail,
        client,
        "Refused a charger's connection."
    );
    let mut response = (refusal.status(), refusal.message()).into_response();
    if refusal.status() == axum::http::StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"voltfleet OCPP\", charset=\"UTF-8\""),
        );
    }
    response
}
