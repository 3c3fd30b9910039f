//! Asking a charger to do something, from any service on any node, and getting its answer.
//!
//! A charger's WebSocket is held by one OCPP node. That node claims the directory entry
//! [`session_entry`] for the charger and answers requests on its bus topic [`node_topic`].
//! [`ChargerCommands::send`] looks the node up, sends it the command over the bus, and the
//! node makes the CALL on the charger's socket and relays the CALLRESULT — or the reason there
//! is none — back to the caller. The same path works in one process (`voltfleet up`, the
//! in-process bus and directory) and across a fleet (Redis).
//!
//! An answer the charger gives is returned as it is, typed: a `ResetResponse` with status
//! `Rejected` is the charger's answer, not an error. Errors are for when there is no answer.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::v16::{Action, CentralSystemRequest};
use crate::domain::ChargePointId;
use crate::shared::{BusError, Shared};

/// Directory entry naming the node that holds a charger's socket.
pub fn session_entry(charge_point: &ChargePointId) -> String {
    format!("ocpp.session.{charge_point}")
}

/// The owner recorded in a charger's directory entry: the node, and which of the charger's
/// connections to that node, so an old connection can never release a newer one's entry.
pub fn session_owner(node: &str, epoch: u64) -> String {
    format!("{node}#{epoch}")
}

/// The node part of a [`session_owner`].
pub fn owner_node(owner: &str) -> &str {
    owner.rsplit_once('#').map_or(owner, |(node, _)| node)
}

/// Bus topic on which OCPP nodes announce that they now hold a charger, so that another node
/// still holding an older connection of it closes that one.
pub const CLAIMS_TOPIC: &str = "ocpp.sessions.claimed";

/// What a node announces on [`CLAIMS_TOPIC`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaim {
    pub charge_point: ChargePointId,
    /// The [`session_owner`] of the new connection.
    pub owner: String,
}

/// Bus topic on which an OCPP node answers commands for the chargers it holds.
pub fn node_topic(node: &str) -> String {
    format!("ocpp.node.{node}")
}

/// How much longer than `ocpp.call_timeout` a caller waits for the node's reply, so that the
/// node's own, more precise, timeout answer arrives first.
const BUS_MARGIN: Duration = Duration::from_secs(5);

/// A command as it travels over the bus to the node holding the charger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandRequest {
    pub charge_point: ChargePointId,
    /// The OCPP action, such as `Reset`.
    pub action: String,
    pub payload: serde_json::Value,
}

/// The node's reply to a [`CommandRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CommandReply {
    /// The charger answered with this CALLRESULT payload.
    Answered {
        payload: serde_json::Value,
    },
    Failed {
        error: CommandError,
    },
}

/// Why a command got no answer from the charger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CommandError {
    /// No node holds a connection to the charger.
    #[error("charger {charge_point} is not connected; the command can be sent once it reconnects")]
    Offline { charge_point: String },
    /// The charger did not answer in time (`ocpp.call_timeout`).
    #[error(
        "charger {charge_point} did not answer {action} within {seconds}s; it may still carry it out, so check its state before retrying"
    )]
    Timeout {
        charge_point: String,
        action: String,
        seconds: u64,
    },
    /// The charger answered with a CALLERROR.
    #[error("charger {charge_point} refused {action} with {code}: {description}")]
    Refused {
        charge_point: String,
        action: String,
        /// The OCPP error code, such as `NotSupported`.
        code: String,
        description: String,
    },
    /// The command's payload does not conform to the OCPP schema, so it was not sent.
    #[error("{action} for charger {charge_point} was not sent: {problem}")]
    Invalid {
        charge_point: String,
        action: String,
        problem: String,
    },
    /// Too many commands are already waiting for this charger (`ocpp.command_queue`).
    #[error(
        "charger {charge_point} already has {queued} commands waiting; try again when they are answered"
    )]
    Busy { charge_point: String, queued: u32 },
    /// The charger's answer does not conform to the OCPP schema.
    #[error("charger {charge_point} answered {action} with a malformed payload: {problem}")]
    BadAnswer {
        charge_point: String,
        action: String,
        problem: String,
    },
    /// The bus or the directory could not be used.
    #[error("the command for charger {charge_point} could not be delivered: {reason}")]
    Unavailable {
        charge_point: String,
        reason: String,
    },
}

/// Sends commands to chargers wherever they are connected; cheap to clone.
#[derive(Debug, Clone)]
pub struct ChargerCommands {
    shared: Shared,
    bus_timeout: Duration,
}

impl ChargerCommands {
    /// `call_timeout` is `ocpp.call_timeout`, the time a charger has to answer.
    pub fn new(shared: Shared, call_timeout: Duration) -> ChargerCommands {
        ChargerCommands {
            shared,
            bus_timeout: call_timeout + BUS_MARGIN,
        }
    }

    /// The node holding the charger's socket, if it is connected.
    pub async fn node_of(
        &self,
        charge_point: &ChargePointId,
    ) -> Result<Option<String>, CommandError> {
        let owner = self
            .shared
            .directory
            .owner(&session_entry(charge_point))
            .await
            .map_err(|err| CommandError::Unavailable {
                charge_point: charge_point.to_string(),
                reason: err.to_string(),
            })?;
        Ok(owner.map(|owner| owner_node(&owner).to_owned()))
    }

    /// Sends `request` to the charger and returns its answer.
    pub async fn send<R: CentralSystemRequest>(
        &self,
        charge_point: &ChargePointId,
        request: &R,
    ) -> Result<R::Response, CommandError> {
        let action: Action = R::ACTION;
        let unavailable = |reason: String| CommandError::Unavailable {
            charge_point: charge_point.to_string(),
            reason,
        };
        let payload = serde_json::to_value(request)
            .map_err(|err| unavailable(format!("the command cannot be written as JSON: {err}")))?;
        let payload = self.send_raw(charge_point, action, payload).await?;
        serde_json::from_value(payload).map_err(|err| CommandError::BadAnswer {
            charge_point: charge_point.to_string(),
            action: action.to_string(),
            problem: err.to_string(),
        })
    }

    /// Like [`ChargerCommands::send`] with the payload as JSON, for callers that relay a
    /// command they did not build (the Back Office's raw command form).
    pub async fn send_raw(
        &self,
        charge_point: &ChargePointId,
        action: Action,
        payload: serde_json::Value,
    ) -> Result<serde_json::Value, CommandError> {
        let offline = || CommandError::Offline {
            charge_point: charge_point.to_string(),
        };
        let unavailable = |reason: String| CommandError::Unavailable {
            charge_point: charge_point.to_string(),
            reason,
        };
        let Some(node) = self.node_of(charge_point).await? else {
            return Err(offline());
        };
        let command = CommandRequest {
            charge_point: charge_point.clone(),
            action: action.to_string(),
            payload,
        };
        let body = serde_json::to_vec(&command)
            .map_err(|err| unavailable(format!("the command cannot be written as JSON: {err}")))?;
        let reply = match self
            .shared
            .bus
            .request(&node_topic(&node), &body, Some(self.bus_timeout))
            .await
        {
            Ok(reply) => reply,
            // The node is gone (it died without releasing its entries): the charger will
            // reconnect elsewhere, and until then it is offline.
            Err(BusError::NoResponder { .. }) => return Err(offline()),
            Err(BusError::Timeout { after, .. }) => {
                return Err(CommandError::Timeout {
                    charge_point: charge_point.to_string(),
                    action: action.to_string(),
                    seconds: after.as_secs(),
                });
            }
            Err(err) => return Err(unavailable(err.to_string())),
        };
        match serde_json::from_slice::<CommandReply>(&reply) {
            Ok(CommandReply::Answered { payload }) => Ok(payload),
            Ok(CommandReply::Failed { error }) => Err(error),
            Err(err) => Err(unavailable(format!(
                "node {node} replied with something that is not a command reply: {err}"
            ))),
        }
    }
}
