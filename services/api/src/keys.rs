//! A driver's API keys, for the driver's own apps and integrations: scoped, revocable, shown
//! once and stored only as a hash. Managed with the driver's access token, never with a key,
//! so a leaked key cannot mint more.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use voltfleet_core::context::AppContext;
use voltfleet_core::credentials::ApiKey;
use voltfleet_core::storage::{ApiKeyRecord, NewApiKey, StorageError};

use crate::accounts::Authenticated;
use crate::auth::Scope;
use crate::error::{ApiError, ApiJson, FieldError, Problem};
use crate::pagination::Page;

const MAX_NAME_CHARS: usize = 100;
/// Keys one driver may hold (revoked ones do not count).
pub const MAX_KEYS_PER_DRIVER: usize = 20;

/// `POST /api/v1/api-keys`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct CreateKeyRequest {
    /// What the key is for, such as `home automation`.
    #[schema(min_length = 1, max_length = 100, example = "home automation")]
    pub name: String,
    /// Any of `locations:read`, `sessions:read`, `charging`, `cards`.
    #[schema(example = json!(["locations:read", "sessions:read"]))]
    pub scopes: Vec<String>,
}

/// A key as its owner sees it (never the key itself, except once in [`NewKeyView`]).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    pub id: i64,
    pub name: String,
    /// The public part of the key (`vfk_<prefix>_…`), to recognise it by.
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A new key: `key` is shown this once.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NewKeyView {
    #[serde(flatten)]
    pub view: KeyView,
    /// Send as `Authorization: Bearer <key>` or `X-Api-Key: <key>`. It cannot be shown again.
    pub key: String,
}

impl From<ApiKeyRecord> for KeyView {
    fn from(record: ApiKeyRecord) -> KeyView {
        KeyView {
            id: record.id,
            name: record.name,
            prefix: record.prefix,
            scopes: record
                .scopes
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            created_at: record.created_at,
            last_used_at: record.last_used_at,
            revoked_at: record.revoked_at,
        }
    }
}

/// The driver's keys, revoked ones too.
#[utoipa::path(
    get,
    path = "/api/v1/api-keys",
    tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The keys, newest first (next_cursor is always null).", body = Page<KeyView>),
        (status = 304, description = "Unchanged since the ETag in If-None-Match."),
        (status = 401, description = "No valid access token.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(ctx): State<AppContext>,
    Authenticated(grant): Authenticated,
) -> Result<ApiJson<Page<KeyView>>, ApiError> {
    let items = ctx
        .db
        .api_keys()
        .of_driver(grant.driver_id)
        .await?
        .into_iter()
        .map(KeyView::from)
        .collect();
    Ok(ApiJson(Page {
        items,
        next_cursor: None,
    }))
}

/// Make a key.
#[utoipa::path(
    post,
    path = "/api/v1/api-keys",
    tag = "accounts",
    request_body = CreateKeyRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The key, shown this once.", body = NewKeyView),
        (status = 401, description = "No valid access token.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The driver holds the most keys allowed; revoke one.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, each named in `errors`.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    State(ctx): State<AppContext>,
    Authenticated(grant): Authenticated,
    ApiJson(request): ApiJson<CreateKeyRequest>,
) -> Result<(StatusCode, ApiJson<NewKeyView>), ApiError> {
    let mut errors = Vec::new();
    let name = request.name.trim();
    if name.is_empty() {
        errors.push(FieldError::new("name", "is required"));
    } else if name.chars().count() > MAX_NAME_CHARS {
        errors.push(FieldError::new(
            "name",
            format!("is longer than {MAX_NAME_CHARS} characters"),
        ));
    } else if name.chars().any(char::is_control) {
        errors.push(FieldError::new("name", "contains control characters"));
    }
    let mut scopes = Vec::new();
    for scope in &request.scopes {
        match Scope::parse(scope.trim()) {
            Some(scope) if !scopes.contains(&scope) => scopes.push(scope),
            Some(_) => {}
            None => errors.push(FieldError::new(
                "scopes",
                format!(
                    "`{scope}` is not a scope; use locations:read, sessions:read, charging or cards"
                ),
            )),
        }
    }
    if request.scopes.is_empty() {
        errors.push(FieldError::new("scopes", "name at least one scope"));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let keys = ctx.db.api_keys();
    let held = keys
        .of_driver(grant.driver_id)
        .await?
        .iter()
        .filter(|key| !key.is_revoked())
        .count();
    if held >= MAX_KEYS_PER_DRIVER {
        return Err(ApiError::NotNow {
            kind: "too-many-keys",
            title: "Too many API keys",
            detail: format!(
                "An account may hold {MAX_KEYS_PER_DRIVER} keys; revoke one you no longer use."
            ),
        });
    }
    for _ in 0..3 {
        let (plain, prefix, key_hash) = ApiKey::generate();
        let created = keys
            .create(&NewApiKey {
                name: name.to_owned(),
                prefix: prefix.clone(),
                key_hash,
                scopes: scopes
                    .iter()
                    .map(|scope| scope.as_str().to_owned())
                    .collect(),
                operator_id: None,
                driver_id: Some(grant.driver_id),
            })
            .await;
        match created {
            Ok(_) => {
                let record = keys
                    .find_by_prefix(&prefix)
                    .await?
                    .ok_or_else(|| ApiError::Internal("the new API key vanished".into()))?;
                tracing::info!(
                    driver_id = grant.driver_id,
                    key_id = record.id,
                    "A driver made an API key."
                );
                return Ok((
                    StatusCode::CREATED,
                    ApiJson(NewKeyView {
                        view: record.into(),
                        key: plain,
                    }),
                ));
            }
            Err(StorageError::Conflict { .. }) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(ApiError::Internal(
        "three random API key prefixes were all taken".into(),
    ))
}

/// Revoke a key: it stops working at once.
#[utoipa::path(
    delete,
    path = "/api/v1/api-keys/{id}",
    tag = "accounts",
    params(("id" = i64, Path, description = "The key's id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Revoked (revoking again changes nothing)."),
        (status = 401, description = "No valid access token.", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key of the driver.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn revoke(
    State(ctx): State<AppContext>,
    Authenticated(grant): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let not_found = || ApiError::NotFound(format!("API key `{id}`"));
    let key_id = id.parse::<i64>().map_err(|_| not_found())?;
    match ctx
        .db
        .api_keys()
        .revoke_of_driver(grant.driver_id, key_id, Utc::now())
        .await
    {
        Err(StorageError::NotFound { .. }) => Err(not_found()),
        Err(other) => Err(other.into()),
        Ok(()) => {
            tracing::info!(
                driver_id = grant.driver_id,
                key_id,
                "A driver revoked an API key."
            );
            Ok(StatusCode::NO_CONTENT)
        }
    }
}
