//! Whether an ID tag may charge: Authorize, and the `idTagInfo` of Start- and StopTransaction.
//!
//! A tag is `Invalid` when unknown; otherwise its stored status, `Expired` past its expiry, and
//! `Blocked` when its group (parent) tag is not itself accepted. An accepted tag already in a
//! transaction on another charger is `ConcurrentTx`: a driver cannot charge two cars on one
//! card at once.

use chrono::{DateTime, Utc};
use voltfleet_core::domain::IdTokenStatus;
use voltfleet_core::ocpp::v16::{
    AuthorizationStatus, AuthorizeRequest, AuthorizeResponse, IdTagInfo,
};
use voltfleet_core::storage::StorageError;

use super::stored;
use crate::Central;
use crate::rpc::CallError;
use crate::session::Charger;

/// OCPP 1.6 id tags are at most 20 characters; longer stored tokens (2.0.1 allows 36) are not
/// sent as a 1.6 parent tag.
const MAX_ID_TAG_LEN: usize = 20;

pub async fn authorize(
    central: &Central,
    charger: &Charger,
    request: AuthorizeRequest,
) -> Result<AuthorizeResponse, CallError> {
    let info = id_tag_info(
        central,
        charger,
        &request.id_tag,
        Utc::now(),
        Concurrency::OtherChargers,
    )
    .await
    .map_err(stored(charger, "the authorization"))?;
    tracing::info!(charge_point = %charger.identity, id_tag = %request.id_tag, status = %info.status, "Authorized an ID tag.");
    Ok(AuthorizeResponse { id_tag_info: info })
}

/// Which running transactions of the tag make it `ConcurrentTx`.
#[derive(Debug, Clone, Copy)]
pub enum Concurrency {
    /// Any on another charger (Authorize: the driver may be stopping a session here).
    OtherChargers,
    /// Any on another connector (StartTransaction: a resent start, or one the charger lost
    /// the end of, is on the same connector).
    OtherConnectors { connector_id: i32 },
    /// None (StopTransaction).
    Ignore,
}

pub async fn id_tag_info(
    central: &Central,
    charger: &Charger,
    id_tag: &str,
    now: DateTime<Utc>,
    concurrency: Concurrency,
) -> Result<IdTagInfo, StorageError> {
    let tokens = central.ctx.db.id_tokens();
    let Some(token) = tokens.find(id_tag).await? else {
        return Ok(IdTagInfo {
            expiry_date: None,
            parent_id_tag: None,
            status: AuthorizationStatus::Invalid,
        });
    };
    let mut status = match token.status_at(now) {
        IdTokenStatus::Accepted => AuthorizationStatus::Accepted,
        IdTokenStatus::Blocked => AuthorizationStatus::Blocked,
        IdTokenStatus::Expired => AuthorizationStatus::Expired,
        IdTokenStatus::Invalid => AuthorizationStatus::Invalid,
    };
    if status == AuthorizationStatus::Accepted
        && let Some(group) = &token.group_token
        && let Some(parent) = tokens.find(group).await?
        && parent.status_at(now) != IdTokenStatus::Accepted
    {
        status = AuthorizationStatus::Blocked;
    }
    if status == AuthorizationStatus::Accepted {
        let running = central
            .ctx
            .db
            .transactions()
            .active_for_token(id_tag)
            .await?;
        let concurrent = running.iter().any(|tx| match concurrency {
            Concurrency::OtherChargers => tx.charge_point_id != charger.id,
            Concurrency::OtherConnectors { connector_id } => {
                tx.charge_point_id != charger.id || tx.evse_number != connector_id
            }
            Concurrency::Ignore => false,
        });
        if concurrent {
            status = AuthorizationStatus::ConcurrentTx;
        }
    }
    Ok(IdTagInfo {
        expiry_date: token.expires_at,
        parent_id_tag: token
            .group_token
            .filter(|group| group.len() <= MAX_ID_TAG_LEN),
        status,
    })
}
