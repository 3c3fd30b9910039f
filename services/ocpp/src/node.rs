//! This node's part in the fleet: it answers the commands sent over the bus for the chargers
//! it holds, and closes its session of a charger that has since connected to another node.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use voltfleet_core::ocpp::commands::{
    CLAIMS_TOPIC, CommandError, CommandReply, CommandRequest, SessionClaim, node_topic, owner_node,
};
use voltfleet_core::ocpp::v16::{Action, Sender};
use voltfleet_core::shared::SharedError;

use crate::Central;
use crate::registry::Command;
use crate::v16::schemas::Direction;

/// Slack beyond `ocpp.call_timeout` before a waiting command gives up on its session (which
/// answers a timeout itself, at the deadline).
const SESSION_SLACK: Duration = Duration::from_secs(1);

/// Subscribes to this node's command topic and to the claims of other nodes.
pub async fn start(central: &Arc<Central>) -> Result<(), SharedError> {
    let bus = &central.ctx.shared.bus;
    let mut requests = bus.serve(&node_topic(&central.node)).await?;
    let mut claims = bus.subscribe(CLAIMS_TOPIC).await?;

    let commands_central = Arc::clone(central);
    central.tasks.spawn(async move {
        let central = commands_central;
        loop {
            let request = tokio::select! {
                () = central.shutdown.cancelled() => break,
                request = requests.next() => request,
            };
            let Some(request) = request else { break };
            let central = Arc::clone(&central);
            central.tasks.clone().spawn(async move {
                let reply = match handle(&central, &request.payload).await {
                    Ok(payload) => CommandReply::Answered { payload },
                    Err(error) => CommandReply::Failed { error },
                };
                let body = serde_json::to_vec(&reply).unwrap_or_default();
                if let Err(err) = request.reply(&body).await {
                    tracing::warn!(error = %err, "Could not send a command's reply over the bus.");
                }
            });
        }
    });

    let claims_central = Arc::clone(central);
    central.tasks.spawn(async move {
        let central = claims_central;
        loop {
            let message = tokio::select! {
                () = central.shutdown.cancelled() => break,
                message = claims.next() => message,
            };
            let Some(message) = message else { break };
            let Ok(claim) = serde_json::from_slice::<SessionClaim>(&message.payload) else {
                tracing::debug!("Ignored a malformed session claim on the bus.");
                continue;
            };
            if owner_node(&claim.owner) != central.node {
                central
                    .registry
                    .replaced_elsewhere(&claim.charge_point, None);
            }
        }
    });
    Ok(())
}

/// Carries one command to the charger's session and waits for the outcome.
async fn handle(central: &Central, body: &[u8]) -> Result<serde_json::Value, CommandError> {
    let request: CommandRequest =
        serde_json::from_slice(body).map_err(|err| CommandError::Unavailable {
            charge_point: String::new(),
            reason: format!("the command is not a command request: {err}"),
        })?;
    let charge_point = request.charge_point.to_string();
    let invalid = |problem: String| CommandError::Invalid {
        charge_point: charge_point.clone(),
        action: request.action.clone(),
        problem,
    };
    let action = Action::from_str(&request.action).map_err(|err| invalid(err.to_string()))?;
    if action.sender() == Sender::ChargePoint {
        return Err(invalid(format!(
            "{action} is sent by chargers, not to them"
        )));
    }
    central
        .schemas
        .check(action, Direction::Request, &request.payload)
        .map_err(|error| invalid(error.description))?;
    crate::v16::check_command(action, &request.payload).map_err(invalid)?;
    let offline = || CommandError::Offline {
        charge_point: charge_point.clone(),
    };
    let queue = central
        .registry
        .commands(&request.charge_point)
        .ok_or_else(offline)?;
    let call_timeout = central.settings().call_timeout;
    let (reply, answer) = oneshot::channel();
    let command = Command {
        action,
        payload: request.payload,
        deadline: Instant::now() + call_timeout,
        reply,
    };
    match queue.try_send(command) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(_)) => {
            return Err(CommandError::Busy {
                charge_point: charge_point.clone(),
                queued: central.settings().command_queue,
            });
        }
        Err(mpsc::error::TrySendError::Closed(_)) => return Err(offline()),
    }
    match tokio::time::timeout(call_timeout + SESSION_SLACK, answer).await {
        Ok(Ok(result)) => result,
        // The session ended without answering: the charger disconnected.
        Ok(Err(_)) => Err(offline()),
        Err(_) => Err(CommandError::Timeout {
            charge_point: charge_point.clone(),
            action: action.to_string(),
            seconds: call_timeout.as_secs(),
        }),
    }
}
