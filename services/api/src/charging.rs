//! Charging for a driver: start on an EVSE and stop, through the OCPP command interface (the
//! answer is the charger's), and the driver's sessions — the running ones with energy so far,
//! duration and power, and the history.
//!
//! A remote start needs an ID token the central system accepts when the charger asks: the
//! driver's card when one is named, else the driver's own app token, made on first use. A
//! session is a transaction started with one of the driver's tokens, so a driver sees the
//! sessions of their cards too, and never another driver's (a session that is not theirs is
//! the same 404 as one that does not exist).

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use voltfleet_core::context::AppContext;
use voltfleet_core::domain::{AuditOutcome, ChargePointId, IdTokenStatus};
use voltfleet_core::ocpp::commands::{ChargerCommands, CommandError};
use voltfleet_core::ocpp::v16::{
    RemoteStartStopStatus, RemoteStartTransactionRequest, RemoteStopTransactionRequest,
};
use voltfleet_core::storage::{
    IdToken, MeterValue, NewAuditEntry, NewIdToken, StorageError, Transaction,
};

use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ApiJson, FieldError, Problem};
use crate::locations;
use crate::pagination::{self, Page};
use crate::query::ApiQuery;

/// The token type of the token the app starts charging with.
pub const APP_TOKEN_TYPE: &str = "APP";
/// OCPP 1.6 idTags are at most 20 characters.
const APP_TOKEN_PREFIX: &str = "VF";
const ENERGY: &str = "Energy.Active.Import.Register";
const POWER: &str = "Power.Active.Import";

/// `POST /api/v1/charging/start`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct StartRequest {
    /// The charger's id, such as `DEMO-CP-1`.
    #[schema(min_length = 1, max_length = 48, example = "DEMO-CP-1")]
    pub charger: String,
    /// The EVSE number on the charger (1, 2, …).
    #[schema(minimum = 1, maximum = 2147483647, example = 1)]
    pub evse: i64,
    /// One of the driver's cards to charge with; the driver's app token when absent.
    #[schema(min_length = 1, max_length = 20)]
    pub card: Option<String>,
}

/// The charger accepted to start.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StartAccepted {
    /// Always `Accepted`: the charger will start once the vehicle is plugged in.
    pub status: String,
    pub charger: String,
    pub evse: i64,
    /// The token the session will carry.
    pub id_token: String,
}

/// The charger accepted to stop.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StopAccepted {
    /// Always `Accepted`.
    pub status: String,
    pub session_id: i64,
}

/// Where a session ran.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SessionLocation {
    pub id: i64,
    pub name: String,
}

/// A charging session of the driver.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    pub id: i64,
    pub charger: String,
    pub evse: i32,
    pub location: Option<SessionLocation>,
    pub id_token: String,
    pub started_at: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub active: bool,
    /// Energy delivered so far (the last meter reading while it runs), in Wh.
    pub energy_wh: i64,
    /// Seconds from the start to the stop, or to now while it runs.
    pub duration_s: i64,
    /// The last power sample while it runs, in W.
    pub power_w: Option<i64>,
    /// The OCPP stop reason, such as `Remote` or `EVDisconnected`.
    pub stop_reason: Option<String>,
}

/// `GET /api/v1/sessions`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// 1 to 200 (default 50).
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Start charging on an EVSE.
#[utoipa::path(
    post,
    path = "/api/v1/charging/start",
    tag = "charging",
    request_body = StartRequest,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 202, description = "The charger accepted; the session appears in /sessions/active once it starts.", body = StartAccepted),
        (status = 401, description = "No valid credentials.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The API key lacks the `charging` scope.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The charger refused (`charger-rejected`), is offline (`charger-offline`) or busy (`charger-busy`), or the EVSE is in use, reserved or out of order (`evse-unavailable`).", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, each named in `errors`.", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The charger did not answer in time.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn start(
    State(ctx): State<AppContext>,
    caller: Caller,
    ApiJson(request): ApiJson<StartRequest>,
) -> Result<(StatusCode, ApiJson<StartAccepted>), ApiError> {
    let driver_id = caller.driver_with(Scope::Charging)?;
    let mut errors = Vec::new();
    let charger_id = match request.charger.trim().parse::<ChargePointId>() {
        Ok(id) if !request.charger.trim().is_empty() => Some(id),
        _ => {
            errors.push(FieldError::new("charger", "is not a charger id"));
            None
        }
    };
    let evse = i32::try_from(request.evse).ok().filter(|evse| *evse >= 1);
    if evse.is_none() {
        errors.push(FieldError::new("evse", "must be an EVSE number, 1 or more"));
    }
    if let Some(card) = &request.card
        && card.trim().is_empty()
    {
        errors.push(FieldError::new(
            "card",
            "is empty; leave it out to use the app",
        ));
    }
    let (Some(charger_id), Some(evse)) = (charger_id, evse) else {
        return Err(ApiError::Validation(errors));
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let charger = match locations::charger_view(&ctx, charger_id.as_str()).await {
        Err(ApiError::NotFound(_)) => {
            return Err(ApiError::Validation(vec![FieldError::new(
                "charger",
                "there is no such charger",
            )]));
        }
        other => other?,
    };
    let Some(evse_view) = charger.evses.iter().find(|view| view.evse == evse) else {
        return Err(ApiError::Validation(vec![FieldError::new(
            "evse",
            format!("charger {} has no EVSE {evse}", charger.identity),
        )]));
    };
    // Available, Preparing (plugged in first, then started from the app) and a status the
    // charger has not reported yet are for the charger to decide; these are not.
    if matches!(
        evse_view.status.as_str(),
        "Charging" | "SuspendedEV" | "SuspendedEVSE" | "Reserved" | "Unavailable" | "Faulted"
    ) {
        return Err(ApiError::NotNow {
            kind: "evse-unavailable",
            title: "The EVSE cannot start a session now",
            detail: format!(
                "EVSE {evse} of charger {} is {}; choose another EVSE or try again later.",
                charger.identity, evse_view.status
            ),
        });
    }
    let token = match &request.card {
        Some(card) => driver_card(&ctx, driver_id, card.trim()).await?,
        None => app_token(&ctx, driver_id).await?,
    };
    let commands =
        ChargerCommands::new(ctx.shared.clone(), ctx.settings.ocpp_protocol.call_timeout);
    let answer = commands
        .send(
            &charger_id,
            &RemoteStartTransactionRequest {
                connector_id: Some(evse),
                id_tag: token.token.clone(),
                charging_profile: None,
            },
        )
        .await;
    let outcome = command_outcome(answer.as_ref().map(|answer| answer.status));
    audit(
        &ctx,
        driver_id,
        "charging.start",
        &format!("charger:{charger_id}/evse:{evse}"),
        serde_json::json!({ "id_token": token.token, "answer": describe(&answer) }),
        outcome,
    )
    .await;
    match answer
        .map_err(|err| command_error(err, &charger_id))?
        .status
    {
        RemoteStartStopStatus::Accepted => {
            tracing::info!(driver_id, charger = %charger_id, evse, "A driver started charging.");
            Ok((
                StatusCode::ACCEPTED,
                ApiJson(StartAccepted {
                    status: "Accepted".into(),
                    charger: charger_id.to_string(),
                    evse: i64::from(evse),
                    id_token: token.token,
                }),
            ))
        }
        status => Err(ApiError::ChargerRejected {
            charger: charger_id.to_string(),
            status: status.as_str().to_owned(),
        }),
    }
}

/// Stop a running session of the driver.
#[utoipa::path(
    post,
    path = "/api/v1/sessions/{id}/stop",
    tag = "charging",
    params(("id" = i64, Path, description = "The session's id")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 202, description = "The charger accepted; the session ends once it reports the stop.", body = StopAccepted),
        (status = 401, description = "No valid credentials.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The API key lacks the `charging` scope.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such session of the driver.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The session has ended (`session-ended`), or the charger refused or is offline.", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "The charger did not answer in time.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn stop(
    State(ctx): State<AppContext>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, ApiJson<StopAccepted>), ApiError> {
    let driver_id = caller.driver_with(Scope::Charging)?;
    let transaction = drivers_transaction(&ctx, driver_id, &id).await?;
    if transaction.stopped_at.is_some() {
        return Err(ApiError::NotNow {
            kind: "session-ended",
            title: "The session has ended",
            detail: format!("Session {} has already stopped.", transaction.id),
        });
    }
    let charge_point = ctx
        .db
        .charge_points()
        .get(transaction.charge_point_id)
        .await?;
    let commands =
        ChargerCommands::new(ctx.shared.clone(), ctx.settings.ocpp_protocol.call_timeout);
    let answer = commands
        .send(
            &charge_point.identity,
            &RemoteStopTransactionRequest {
                transaction_id: transaction.id,
            },
        )
        .await;
    audit(
        &ctx,
        driver_id,
        "charging.stop",
        &format!("transaction:{}", transaction.id),
        serde_json::json!({ "charger": charge_point.identity.as_str(), "answer": describe(&answer) }),
        command_outcome(answer.as_ref().map(|answer| answer.status)),
    )
    .await;
    match answer
        .map_err(|err| command_error(err, &charge_point.identity))?
        .status
    {
        RemoteStartStopStatus::Accepted => Ok((
            StatusCode::ACCEPTED,
            ApiJson(StopAccepted {
                status: "Accepted".into(),
                session_id: transaction.id,
            }),
        )),
        status => Err(ApiError::ChargerRejected {
            charger: charge_point.identity.to_string(),
            status: status.as_str().to_owned(),
        }),
    }
}

/// The driver's running sessions.
#[utoipa::path(
    get,
    path = "/api/v1/sessions/active",
    tag = "charging",
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The running sessions (next_cursor is always null).", body = Page<SessionView>),
        (status = 304, description = "Unchanged since the ETag in If-None-Match."),
        (status = 401, description = "No valid credentials.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The API key lacks the `sessions:read` scope.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn active(
    State(ctx): State<AppContext>,
    caller: Caller,
) -> Result<ApiJson<Page<SessionView>>, ApiError> {
    let driver_id = caller.driver_with(Scope::SessionsRead)?;
    let transactions = ctx
        .db
        .transactions()
        .of_driver(driver_id, true, None, pagination::MAX_LIMIT)
        .await?;
    let items = session_views(&ctx, transactions).await?;
    Ok(ApiJson(Page {
        items,
        next_cursor: None,
    }))
}

/// The driver's sessions, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/sessions",
    tag = "charging",
    params(HistoryParams),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of sessions.", body = Page<SessionView>),
        (status = 304, description = "Unchanged since the ETag in If-None-Match."),
        (status = 401, description = "No valid credentials.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The API key lacks the `sessions:read` scope.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid parameters, each named in `errors`.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn history(
    State(ctx): State<AppContext>,
    caller: Caller,
    ApiQuery(params): ApiQuery<HistoryParams>,
) -> Result<ApiJson<Page<SessionView>>, ApiError> {
    let driver_id = caller.driver_with(Scope::SessionsRead)?;
    let mut errors = Vec::new();
    let limit = pagination::limit(params.limit.as_deref(), &mut errors);
    let before = pagination::decode::<i64>("sessions", params.cursor.as_deref(), &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let mut transactions = ctx
        .db
        .transactions()
        .of_driver(driver_id, false, before, limit + 1)
        .await?;
    let more = transactions.len() > limit as usize;
    transactions.truncate(limit as usize);
    let next_cursor = more
        .then(|| transactions.last())
        .flatten()
        .map(|last| pagination::encode("sessions", &last.id));
    let items = session_views(&ctx, transactions).await?;
    Ok(ApiJson(Page { items, next_cursor }))
}

/// One session of the driver.
#[utoipa::path(
    get,
    path = "/api/v1/sessions/{id}",
    tag = "charging",
    params(("id" = i64, Path, description = "The session's id")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The session.", body = SessionView),
        (status = 304, description = "Unchanged since the ETag in If-None-Match."),
        (status = 401, description = "No valid credentials.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The API key lacks the `sessions:read` scope.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such session of the driver.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn session(
    State(ctx): State<AppContext>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<ApiJson<SessionView>, ApiError> {
    let driver_id = caller.driver_with(Scope::SessionsRead)?;
    let transaction = drivers_transaction(&ctx, driver_id, &id).await?;
    let mut views = session_views(&ctx, vec![transaction]).await?;
    views
        .pop()
        .map(ApiJson)
        .ok_or_else(|| ApiError::NotFound(format!("session `{id}`")))
}

/// The transaction `id` if it was started with one of the driver's tokens; else 404.
async fn drivers_transaction(
    ctx: &AppContext,
    driver_id: i64,
    id: &str,
) -> Result<Transaction, ApiError> {
    let not_found = || ApiError::NotFound(format!("session `{id}`"));
    let id = id.parse::<i64>().map_err(|_| not_found())?;
    let transaction = match ctx.db.transactions().get(id).await {
        Err(StorageError::NotFound { .. }) => return Err(not_found()),
        other => other?,
    };
    let owner = ctx.db.id_tokens().find(&transaction.id_token).await?;
    match owner {
        Some(token) if token.driver_id == Some(driver_id) => Ok(transaction),
        _ => Err(not_found()),
    }
}

/// The driver's card `card`, which must be usable; else 422 naming `card`.
async fn driver_card(ctx: &AppContext, driver_id: i64, card: &str) -> Result<IdToken, ApiError> {
    let token = ctx
        .db
        .id_tokens()
        .find(card)
        .await?
        .filter(|token| token.driver_id == Some(driver_id));
    let Some(token) = token else {
        return Err(ApiError::Validation(vec![FieldError::new(
            "card",
            "is not one of your cards",
        )]));
    };
    let status = token.status_at(Utc::now());
    if status != IdTokenStatus::Accepted {
        return Err(ApiError::Validation(vec![FieldError::new(
            "card",
            format!("is {}; use another card", status.as_str()),
        )]));
    }
    Ok(token)
}

/// The driver's app token, made on first use.
async fn app_token(ctx: &AppContext, driver_id: i64) -> Result<IdToken, ApiError> {
    let tokens = ctx.db.id_tokens();
    if let Some(token) = tokens
        .of_driver(driver_id)
        .await?
        .into_iter()
        .find(|token| token.token_type == APP_TOKEN_TYPE)
    {
        return Ok(token);
    }
    // 18 random hex digits after the prefix: 20 characters, the most OCPP 1.6 allows.
    for _ in 0..3 {
        let token = format!(
            "{APP_TOKEN_PREFIX}{:018X}",
            rand::random::<u128>() & ((1u128 << 72) - 1)
        );
        let created = tokens
            .create(&NewIdToken {
                token: token.clone(),
                token_type: APP_TOKEN_TYPE.into(),
                status: IdTokenStatus::Accepted,
                expires_at: None,
                group_token: None,
                driver_id: Some(driver_id),
                label: Some("App".into()),
            })
            .await;
        match created {
            Ok(_) => {
                return tokens
                    .find(&token)
                    .await?
                    .ok_or_else(|| ApiError::Internal("the new app token vanished".into()));
            }
            Err(StorageError::Conflict { .. }) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(ApiError::Internal(
        "three random app tokens were all taken".into(),
    ))
}

fn command_outcome(answer: Result<RemoteStartStopStatus, &CommandError>) -> AuditOutcome {
    match answer {
        Ok(RemoteStartStopStatus::Accepted) => AuditOutcome::Success,
        Ok(_) => AuditOutcome::Denied,
        Err(_) => AuditOutcome::Failure,
    }
}

fn describe<T: std::fmt::Debug>(answer: &Result<T, CommandError>) -> String {
    match answer {
        Ok(answer) => format!("{answer:?}"),
        Err(err) => err.to_string(),
    }
}

fn command_error(err: CommandError, charger: &ChargePointId) -> ApiError {
    match err {
        CommandError::Offline { .. } => ApiError::ChargerOffline(charger.to_string()),
        CommandError::Timeout { .. } => ApiError::ChargerTimeout(err.to_string()),
        CommandError::Refused { code, .. } => ApiError::ChargerRejected {
            charger: charger.to_string(),
            status: code,
        },
        CommandError::Busy { .. } => ApiError::NotNow {
            kind: "charger-busy",
            title: "The charger is busy",
            detail: err.to_string(),
        },
        CommandError::Unavailable { .. } => ApiError::Unavailable(err.to_string()),
        CommandError::Invalid { .. } | CommandError::BadAnswer { .. } => {
            ApiError::Internal(err.to_string())
        }
    }
}

async fn audit(
    ctx: &AppContext,
    driver_id: i64,
    action: &str,
    target: &str,
    details: serde_json::Value,
    outcome: AuditOutcome,
) {
    let entry = NewAuditEntry {
        occurred_at: Utc::now(),
        actor: format!("driver:{driver_id}"),
        action: action.to_owned(),
        target: target.to_owned(),
        details,
        outcome,
    };
    if let Err(err) = ctx.db.audit().record(&entry).await {
        tracing::error!(error = %err, action, target, "Could not write the audit log entry.");
    }
}

/// Views of transactions, with their charger, location and the last samples of running ones.
async fn session_views(
    ctx: &AppContext,
    transactions: Vec<Transaction>,
) -> Result<Vec<SessionView>, ApiError> {
    let mut chargers: HashMap<i64, (String, Option<SessionLocation>)> = HashMap::new();
    let mut views = Vec::with_capacity(transactions.len());
    let now = Utc::now();
    for transaction in transactions {
        if let std::collections::hash_map::Entry::Vacant(entry) =
            chargers.entry(transaction.charge_point_id)
        {
            let charge_point = ctx
                .db
                .charge_points()
                .get(transaction.charge_point_id)
                .await?;
            let location = match charge_point.location_id {
                Some(id) => {
                    let location = ctx.db.locations().get(id).await?;
                    Some(SessionLocation {
                        id: location.id,
                        name: location.name,
                    })
                }
                None => None,
            };
            entry.insert((charge_point.identity.to_string(), location));
        }
        let (charger, location) = chargers
            .get(&transaction.charge_point_id)
            .cloned()
            .unwrap_or_default();
        let active = transaction.stopped_at.is_none();
        let (energy_wh, power_w) = if active {
            let samples = ctx.db.transactions();
            let energy = samples.latest_samples(transaction.id, ENERGY).await?;
            let power = samples.latest_samples(transaction.id, POWER).await?;
            let energy = total(&energy, "Wh", "kWh")
                .map(|reading| (reading.round() as i64 - transaction.meter_start_wh.0).max(0))
                .unwrap_or(0);
            (energy, total(&power, "W", "kW").map(|w| w.round() as i64))
        } else {
            (
                transaction
                    .energy()
                    .map(|energy| energy.0)
                    .unwrap_or(0)
                    .max(0),
                None,
            )
        };
        let end = transaction.stopped_at.unwrap_or(now);
        views.push(SessionView {
            id: transaction.id,
            charger,
            evse: transaction.evse_number,
            location,
            id_token: transaction.id_token,
            started_at: transaction.started_at,
            stopped_at: transaction.stopped_at,
            active,
            energy_wh,
            duration_s: (end - transaction.started_at).num_seconds().max(0),
            power_w,
            stop_reason: transaction.stop_reason,
        });
    }
    Ok(views)
}

/// One value from the last samples of a measurand, in `unit`: the sample without a phase
/// when there is one, else the sum of the line phases. Samples in `kilo` are scaled.
fn total(samples: &[MeterValue], unit: &str, kilo: &str) -> Option<f64> {
    let scaled = |sample: &MeterValue| {
        if sample.unit.eq_ignore_ascii_case(kilo) {
            Some(sample.value * 1000.0)
        } else if sample.unit.eq_ignore_ascii_case(unit) {
            Some(sample.value)
        } else {
            None
        }
    };
    if let Some(whole) = samples.iter().find(|sample| sample.phase.is_none()) {
        return scaled(whole);
    }
    let lines: Vec<f64> = samples
        .iter()
        .filter(|sample| {
            matches!(
                sample.phase.as_deref(),
                Some("L1" | "L2" | "L3" | "L1-N" | "L2-N" | "L3-N")
            )
        })
        .filter_map(scaled)
        .collect();
    (!lines.is_empty()).then(|| lines.iter().sum())
}
