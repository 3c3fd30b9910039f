//! Every operator action in the audit log: who, what, on what, with which details and how it
//! ended — refusals included. Recording never fails the action it describes (the action
//! already happened, or was refused): a failure to record is logged as an error.

use chrono::Utc;
use voltfleet_core::context::AppContext;
use voltfleet_core::domain::AuditOutcome;
use voltfleet_core::storage::NewAuditEntry;

/// The audit actor of an operator.
pub fn actor(email: &str) -> String {
    format!("operator:{email}")
}

/// Appends one entry.
pub async fn record(
    ctx: &AppContext,
    actor: &str,
    action: &str,
    target: &str,
    details: serde_json::Value,
    outcome: AuditOutcome,
) {
    let entry = NewAuditEntry {
        occurred_at: Utc::now(),
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        details,
        outcome,
    };
    if let Err(err) = ctx.db.audit().record(&entry).await {
        tracing::error!(%err, actor, action, target, "An operator action could not be written to the audit log.");
    }
}
