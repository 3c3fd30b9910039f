//! The driver's RFID cards (OCPP ID tokens): list, add, block.
//!
//! A card's number is unique across the network; adding one that is registered, whoever
//! holds it, is the same 409, so the answer never tells whose it is. Blocking is for a lost
//! card: chargers asking about it from then on are told `Blocked`.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use voltfleet_core::context::AppContext;
use voltfleet_core::domain::IdTokenStatus;
use voltfleet_core::storage::{IdToken, NewIdToken, StorageError};

use crate::auth::{Caller, Scope};
use crate::charging::APP_TOKEN_TYPE;
use crate::error::{ApiError, ApiJson, FieldError, Problem};
use crate::pagination::Page;

/// The longest card number: what OCPP 1.6 carries in an idTag.
pub const MAX_CARD_CHARS: usize = 20;
const MAX_LABEL_CHARS: usize = 100;

/// `POST /api/v1/cards`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct AddCardRequest {
    /// The number printed on the card or read from it (its UID in hex), up to 20 characters.
    #[schema(
        min_length = 1,
        max_length = 20,
        pattern = "^[A-Za-z0-9_-]+$",
        example = "04A2B3C4D5E6F7"
    )]
    pub token: String,
    #[schema(max_length = 100, example = "Keyring")]
    pub label: Option<String>,
}

/// A card of the driver.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CardView {
    pub token: String,
    pub label: Option<String>,
    /// `Accepted`, `Blocked`, `Expired` or `Invalid`.
    pub status: String,
    pub created_at: DateTime<Utc>,
}

impl CardView {
    fn new(token: IdToken) -> CardView {
        CardView {
            status: token.status_at(Utc::now()).as_str().to_owned(),
            token: token.token,
            label: token.label,
            created_at: token.created_at,
        }
    }
}

/// The driver's cards.
#[utoipa::path(
    get,
    path = "/api/v1/cards",
    tag = "cards",
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Every card of the driver (next_cursor is always null).", body = Page<CardView>),
        (status = 304, description = "Unchanged since the ETag in If-None-Match."),
        (status = 401, description = "No valid credentials.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The API key lacks the `cards` scope.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(ctx): State<AppContext>,
    caller: Caller,
) -> Result<ApiJson<Page<CardView>>, ApiError> {
    let driver_id = caller.driver_with(Scope::Cards)?;
    let items = ctx
        .db
        .id_tokens()
        .of_driver(driver_id)
        .await?
        .into_iter()
        .filter(|token| token.token_type != APP_TOKEN_TYPE)
        .map(CardView::new)
        .collect();
    Ok(ApiJson(Page {
        items,
        next_cursor: None,
    }))
}

/// Add a card.
#[utoipa::path(
    post,
    path = "/api/v1/cards",
    tag = "cards",
    request_body = AddCardRequest,
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Added; chargers accept it from now on.", body = CardView),
        (status = 401, description = "No valid credentials.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The API key lacks the `cards` scope.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The card is registered already.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, each named in `errors`.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn add(
    State(ctx): State<AppContext>,
    caller: Caller,
    ApiJson(request): ApiJson<AddCardRequest>,
) -> Result<Response, ApiError> {
    let driver_id = caller.driver_with(Scope::Cards)?;
    let mut errors = Vec::new();
    let token = request.token.trim();
    if token.is_empty() {
        errors.push(FieldError::new("token", "is required"));
    } else if token.chars().count() > MAX_CARD_CHARS {
        errors.push(FieldError::new(
            "token",
            format!("is longer than {MAX_CARD_CHARS} characters"),
        ));
    } else if !token
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        errors.push(FieldError::new(
            "token",
            "may hold only letters, digits, - and _",
        ));
    }
    let label = request
        .label
        .as_deref()
        .map(str::trim)
        .filter(|label| !label.is_empty());
    if let Some(label) = label {
        if label.chars().count() > MAX_LABEL_CHARS {
            errors.push(FieldError::new(
                "label",
                format!("is longer than {MAX_LABEL_CHARS} characters"),
            ));
        } else if label.chars().any(char::is_control) {
            errors.push(FieldError::new("label", "contains control characters"));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let tokens = ctx.db.id_tokens();
    let created = tokens
        .create(&NewIdToken {
            token: token.to_owned(),
            token_type: "RFID".into(),
            status: IdTokenStatus::Accepted,
            expires_at: None,
            group_token: None,
            driver_id: Some(driver_id),
            label: label.map(str::to_owned),
        })
        .await;
    match created {
        Ok(_) => {}
        Err(StorageError::Conflict { .. }) => {
            return Err(ApiError::Conflict {
                field: "token",
                detail: "this card is registered already".into(),
            });
        }
        Err(other) => return Err(other.into()),
    }
    let stored = tokens
        .find(token)
        .await?
        .ok_or_else(|| ApiError::Internal("the new card vanished".into()))?;
    tracing::info!(driver_id, "A driver added a card.");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, HeaderValue::from_static("/api/v1/cards"))],
        ApiJson(CardView::new(stored)),
    )
        .into_response())
}

/// Block a card (lost or stolen).
#[utoipa::path(
    post,
    path = "/api/v1/cards/{token}/block",
    tag = "cards",
    params(("token" = String, Path, description = "The card's number")),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Blocked; chargers refuse it from now on.", body = CardView),
        (status = 401, description = "No valid credentials.", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The API key lacks the `cards` scope.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such card of the driver.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn block(
    State(ctx): State<AppContext>,
    caller: Caller,
    Path(token): Path<String>,
) -> Result<ApiJson<CardView>, ApiError> {
    let driver_id = caller.driver_with(Scope::Cards)?;
    let tokens = ctx.db.id_tokens();
    let not_found = || ApiError::NotFound(format!("card `{token}`"));
    match tokens
        .set_status_of_driver(driver_id, &token, IdTokenStatus::Blocked)
        .await
    {
        Err(StorageError::NotFound { .. }) => return Err(not_found()),
        other => other?,
    }
    let stored = tokens.find(&token).await?.ok_or_else(not_found)?;
    tracing::info!(driver_id, "A driver blocked a card.");
    Ok(ApiJson(CardView::new(stored)))
}
