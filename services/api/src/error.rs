//! The API's errors as RFC 9457 problem details (`application/problem+json`).
//!
//! A handler returns [`ApiError`]; its response carries the [`Problem`] both as the body and
//! as a response extension, and [`finish_problems`] (a middleware over every API route) fills
//! in what only the request knows — `instance` (the path) and `request_id` (the `x-request-id`
//! the HTTP runtime set) — so that a client can quote the id and an operator find the log
//! lines. [`ApiJson`] is `axum::Json` whose rejections (bad JSON, wrong content type) are
//! problems too.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use voltfleet_core::storage::StorageError;

/// The media type of problem details.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid field of a request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field's name as the client sent it, such as `email`.
    pub field: String,
    pub detail: String,
}

impl FieldError {
    pub fn new(field: &str, detail: impl Into<String>) -> FieldError {
        FieldError {
            field: field.to_owned(),
            detail: detail.into(),
        }
    }
}

/// An RFC 9457 problem details object, with this API's `request_id` and `errors` members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem (relative to the API's documentation).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// Why a request failed, as the client is told.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// One or more fields are invalid; every one is named.
    #[error("the request has {} invalid field(s)", .0.len())]
    Validation(Vec<FieldError>),
    /// The body is not JSON of the expected shape, or not JSON at all.
    #[error("the request body could not be read: {0}")]
    MalformedBody(String),
    /// The body is not declared as `application/json`.
    #[error("the request body must be sent as application/json")]
    UnsupportedMediaType,
    /// No credentials, or credentials that are wrong, expired or revoked. Deliberately says
    /// nothing about which.
    #[error("the credentials are missing, wrong, expired or revoked")]
    Unauthorized,
    /// The email is already taken.
    #[error("an account with this email already exists")]
    EmailTaken,
    /// Too many failed logins; try again after `retry_after` seconds.
    #[error("too many failed logins; try again in {retry_after} seconds")]
    Throttled { retry_after: u64 },
    #[error("no such resource: {0}")]
    NotFound(String),
    /// The path exists but not with this method.
    #[error("the method is not allowed here")]
    MethodNotAllowed,
    /// The credentials are good but do not carry the scope this route needs.
    #[error("the API key lacks the `{0}` scope")]
    MissingScope(&'static str),
    /// Too many requests in the rate-limit window.
    #[error("the rate limit of {limit} requests per {window_seconds}s is used up")]
    RateLimited {
        limit: u32,
        window_seconds: u64,
        retry_after: u64,
    },
    /// The resource exists already; `field` names what collides.
    #[error("{detail}")]
    Conflict { field: &'static str, detail: String },
    /// The request is valid but the state of things does not allow it now.
    #[error("{detail}")]
    NotNow {
        kind: &'static str,
        title: &'static str,
        detail: String,
    },
    /// The charger answered a command with a refusal.
    #[error("charger {charger} answered {status}")]
    ChargerRejected { charger: String, status: String },
    /// The charger is not connected.
    #[error("charger {0} is not connected")]
    ChargerOffline(String),
    /// The charger did not answer in time.
    #[error("{0}")]
    ChargerTimeout(String),
    /// The API is not configured to do this.
    #[error("{0}")]
    NotConfigured(&'static str),
    /// The database or Redis is unreachable; retrying later may work.
    #[error("a dependency is unavailable: {0}")]
    Unavailable(String),
    /// A bug or a broken dependency; the details are logged, not shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> ApiError {
        match err {
            StorageError::Unavailable { .. } => ApiError::Unavailable(err.to_string()),
            StorageError::NotFound { .. } => ApiError::NotFound(err.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<voltfleet_core::shared::SharedError> for ApiError {
    fn from(err: voltfleet_core::shared::SharedError) -> ApiError {
        ApiError::Unavailable(err.to_string())
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::MalformedBody(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::EmailTaken => StatusCode::CONFLICT,
            ApiError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::MissingScope(_) => StatusCode::FORBIDDEN,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Conflict { .. }
            | ApiError::NotNow { .. }
            | ApiError::ChargerRejected { .. }
            | ApiError::ChargerOffline(_) => StatusCode::CONFLICT,
            ApiError::ChargerTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::NotConfigured(_) | ApiError::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem the client sees: internals of 5xx errors stay in the log.
    pub fn problem(&self) -> Problem {
        let (kind, title, detail, errors) = match self {
            ApiError::Validation(errors) => (
                "validation-error",
                "The request has invalid fields",
                "Fix the fields named in `errors` and send the request again.".to_owned(),
                errors.clone(),
            ),
            ApiError::MalformedBody(reason) => (
                "malformed-body",
                "The request body could not be read",
                reason.clone(),
                Vec::new(),
            ),
            ApiError::UnsupportedMediaType => (
                "unsupported-media-type",
                "The request body must be JSON",
                "Send the body with `Content-Type: application/json`.".to_owned(),
                Vec::new(),
            ),
            ApiError::Unauthorized => (
                "unauthorized",
                "Authentication failed",
                "The credentials are missing, wrong, expired or revoked.".to_owned(),
                Vec::new(),
            ),
            ApiError::EmailTaken => (
                "email-taken",
                "The email is already registered",
                "Sign in with this email, or sign up with another one.".to_owned(),
                vec![FieldError::new(
                    "email",
                    "an account with this email already exists",
                )],
            ),
            ApiError::Throttled { retry_after } => (
                "too-many-attempts",
                "Too many failed logins",
                format!("Try again in {retry_after} seconds."),
                Vec::new(),
            ),
            ApiError::NotFound(_) => (
                "not-found",
                "Not found",
                "There is nothing at this address.".to_owned(),
                Vec::new(),
            ),
            ApiError::MethodNotAllowed => (
                "method-not-allowed",
                "Method not allowed",
                "This address does not answer this method; the Allow header lists the ones it does."
                    .to_owned(),
                Vec::new(),
            ),
            ApiError::MissingScope(scope) => (
                "missing-scope",
                "The credentials do not allow this",
                format!("This needs an API key with the `{scope}` scope, or a driver's access token."),
                Vec::new(),
            ),
            ApiError::RateLimited {
                limit,
                window_seconds,
                retry_after,
            } => (
                "rate-limited",
                "Too many requests",
                format!(
                    "At most {limit} requests per {window_seconds} seconds are allowed; try again in {retry_after} seconds."
                ),
                Vec::new(),
            ),
            ApiError::Conflict { field, detail } => (
                "conflict",
                "It exists already",
                detail.clone(),
                vec![FieldError::new(field, detail.clone())],
            ),
            ApiError::NotNow {
                kind,
                title,
                detail,
            } => (*kind, *title, detail.clone(), Vec::new()),
            ApiError::ChargerRejected { charger, status } => (
                "charger-rejected",
                "The charger refused",
                format!("Charger {charger} answered {status}; check its state or try another connector."),
                Vec::new(),
            ),
            ApiError::ChargerOffline(charger) => (
                "charger-offline",
                "The charger is offline",
                format!("Charger {charger} is not connected; try again once it is back online."),
                Vec::new(),
            ),
            ApiError::ChargerTimeout(detail) => (
                "charger-timeout",
                "The charger did not answer",
                detail.clone(),
                Vec::new(),
            ),
            ApiError::NotConfigured(what) => (
                "not-configured",
                "The service is not configured for this",
                (*what).to_owned(),
                Vec::new(),
            ),
            ApiError::Unavailable(_) => (
                "unavailable",
                "The service is unavailable",
                "A dependency of the service is unavailable; try again later.".to_owned(),
                Vec::new(),
            ),
            ApiError::Internal(_) => (
                "internal-error",
                "Internal error",
                "The request failed on our side; quote the request_id when reporting it."
                    .to_owned(),
                Vec::new(),
            ),
        };
        Problem {
            kind: format!("/api/v1/problems/{kind}"),
            title: title.to_owned(),
            status: self.status().as_u16(),
            detail,
            instance: None,
            request_id: None,
            errors,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status().is_server_error() {
            tracing::error!(error = %self, "The API could not answer a request.");
        }
        let mut response = problem_response(self.problem());
        if let ApiError::Throttled { retry_after } | ApiError::RateLimited { retry_after, .. } =
            self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        if matches!(self, ApiError::Unauthorized) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"voltfleet\""),
            );
        }
        response
    }
}

fn problem_response(problem: Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let mut response = (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))],
        body,
    )
        .into_response();
    response.extensions_mut().insert(problem);
    response
}

/// Completes every problem answered under the API with the request's path and id.
pub async fn finish_problems(request: Request, next: Next) -> Response {
    let instance = request.uri().path().to_owned();
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let mut response = next.run(request).await;
    let Some(mut problem) = response.extensions_mut().remove::<Problem>() else {
        return response;
    };
    problem.instance = Some(instance);
    problem.request_id = request_id;
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// The answer to a method a route does not have (axum adds the `Allow` header).
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// The answer to a path under `/api/v1` that names nothing.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no route".into())
}

/// A JSON request body; anything axum's `Json` refuses becomes a problem.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = match Bytes::from_request(request, state).await {
            Ok(bytes) => bytes,
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ApiError::MalformedBody(
                    "the body is larger than this API accepts".into(),
                ));
            }
            Err(rejection) => return Err(ApiError::MalformedBody(rejection.body_text())),
        };
        parse_json(&bytes).map(ApiJson)
    }
}

/// `application/json`, or any `+json` type, with or without parameters.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(mime) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|mime| mime.trim().to_ascii_lowercase())
    else {
        return false;
    };
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// A body of the expected shape; a value of the wrong type is a 422 naming its field (by its
/// path, such as `scopes[1]`), broken JSON a 400.
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let err = match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
        Ok(value) => {
            return deserializer.end().map(|()| value).map_err(|err| {
                ApiError::MalformedBody(format!("the body is not valid JSON: {err}"))
            });
        }
        Err(err) => err,
    };
    let path = err.path().to_string();
    let inner = err.into_inner();
    if !inner.is_data() {
        return Err(ApiError::MalformedBody(format!(
            "the body is not valid JSON: {inner}"
        )));
    }
    let message = inner.to_string();
    // serde_json ends its messages with the position, which the field name makes redundant.
    let message = message
        .rfind(" at line ")
        .map_or(message.as_str(), |at| &message[..at]);
    let field = if path == "." {
        message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
            .unwrap_or("")
            .to_owned()
    } else {
        path
    };
    if field.is_empty() {
        return Err(ApiError::MalformedBody(format!(
            "the JSON does not have the expected shape: {message}"
        )));
    }
    Err(ApiError::Validation(vec![FieldError::new(&field, message)]))
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}
