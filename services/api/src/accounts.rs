//! Drivers' accounts: sign-up, login with throttling, refresh-token rotation with reuse
//! detection, logout, password change, and who am I.
//!
//! Authentication failures all answer the same 401 problem, whether the email is unknown, the
//! password wrong or a token bad; an unknown email is still checked against a dummy argon2id
//! hash so that it takes as long as a wrong password. Failed logins are counted per account
//! and per client address in the shared counters (`ctx.shared.locks`, Redis in the fleet), and
//! a login is refused with 429 once either count reaches its limit within the window.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::Extension;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use voltfleet_core::config::ApiAccountSettings;
use voltfleet_core::context::AppContext;
use voltfleet_core::credentials::{hash_password, verify_password};
use voltfleet_core::storage::drivers::normalize_email;
use voltfleet_core::storage::{Driver, DriverSession, NewDriver, NewDriverSession, StorageError};

use crate::client::ClientAddress;
use crate::error::{ApiError, ApiJson, FieldError, Problem};
use crate::tokens::{self, AccessGrant};

/// Shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest password accepted, in bytes: argon2 reads all of it, so it is bounded.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Longest email and name, in characters (the columns' size).
const MAX_TEXT_CHARS: usize = 255;

/// Checked against when the email is unknown, so that the answer takes as long as for a
/// wrong password. Made with the same parameters as real hashes.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password("not a password anybody has").unwrap_or_default());

/// `POST /api/v1/accounts`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct SignUpRequest {
    #[schema(format = Email, max_length = 255, example = "dora@example.com")]
    pub email: String,
    /// 10 characters or more (at most 1024 bytes), not the email.
    #[schema(min_length = 10, max_length = 1024, example = "correct horse battery")]
    pub password: String,
    #[schema(min_length = 1, max_length = 255, example = "Dora Driver")]
    pub name: String,
}

/// `POST /api/v1/auth/login`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct LoginRequest {
    #[schema(min_length = 1, example = "dora@example.com")]
    pub email: String,
    #[schema(min_length = 1, max_length = 1024, example = "correct horse battery")]
    pub password: String,
}

/// `POST /api/v1/auth/refresh`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct RefreshRequest {
    #[schema(min_length = 1)]
    pub refresh_token: String,
}

/// `POST /api/v1/account/password`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct PasswordChangeRequest {
    #[schema(min_length = 1, max_length = 1024)]
    pub current_password: String,
    /// 10 characters or more (at most 1024 bytes), not the email.
    #[schema(min_length = 10, max_length = 1024)]
    pub new_password: String,
}

/// A driver as the API shows it (never the hash).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DriverView {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl From<Driver> for DriverView {
    fn from(driver: Driver) -> DriverView {
        DriverView {
            id: driver.id,
            email: driver.email,
            name: driver.name,
            created_at: driver.created_at,
        }
    }
}

/// What a login or a refresh gives.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds the access token is valid for.
    pub expires_in: u64,
    pub refresh_token: String,
}

/// The driver and session of a request's valid `Authorization: Bearer` access token.
#[derive(Debug, Clone, Copy)]
pub struct Authenticated(pub AccessGrant);

impl FromRequestParts<AppContext> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &AppContext) -> Result<Self, ApiError> {
        let secret = tokens::secret(ctx.settings.api_accounts.token_secret.as_ref())?;
        let token = bearer_token(&parts.headers).ok_or(ApiError::Unauthorized)?;
        let grant = tokens::verify_access_token(secret, token)?;
        // A revoked session (logout, password change, reuse) stops its access tokens at once.
        let session = ctx.db.drivers().find_session(grant.session_id).await?;
        match session {
            Some(session)
                if session.driver_id == grant.driver_id && session.is_active(Utc::now()) =>
            {
                Ok(Authenticated(grant))
            }
            _ => Err(ApiError::Unauthorized),
        }
    }
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// Sign-up: 201 with the new driver, 409 when the email is taken, 422 naming each bad field.
#[utoipa::path(
    post,
    path = "/api/v1/accounts",
    tag = "accounts",
    request_body = SignUpRequest,
    responses(
        (status = 201, description = "The account was created.", body = DriverView),
        (status = 400, description = "The body is not JSON.", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The email is taken; `errors` names `email`.", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not declared as JSON.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, each named in `errors`.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn sign_up(
    State(ctx): State<AppContext>,
    Extension(hashing): Extension<PasswordHashing>,
    ApiJson(request): ApiJson<SignUpRequest>,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let email = request.email.trim();
    if let Some(problem) = email_problem(email) {
        errors.push(FieldError::new("email", problem));
    }
    if let Some(problem) = password_problem(&request.password, email) {
        errors.push(FieldError::new("password", problem));
    }
    let name = request.name.trim();
    if name.is_empty() {
        errors.push(FieldError::new("name", "is required"));
    } else if name.chars().count() > MAX_TEXT_CHARS {
        errors.push(FieldError::new("name", "is longer than 255 characters"));
    } else if name.chars().any(char::is_control) {
        errors.push(FieldError::new("name", "contains control characters"));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let password_hash = hashing.hash(request.password).await?;
    let created = ctx
        .db
        .drivers()
        .create(&NewDriver {
            email: email.to_owned(),
            name: name.to_owned(),
            password_hash,
        })
        .await;
    let id = match created {
        Ok(id) => id,
        Err(StorageError::Conflict { .. }) => return Err(ApiError::EmailTaken),
        Err(other) => return Err(other.into()),
    };
    let driver = ctx.db.drivers().get(id).await?;
    tracing::info!(driver_id = id, "A driver signed up.");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, HeaderValue::from_static("/api/v1/me"))],
        ApiJson(DriverView::from(driver)),
    )
        .into_response())
}

/// Login: tokens for the right email and password; the same 401 for every failure; 429 with
/// `Retry-After` once the account or the client address has failed too often.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "accounts",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in.", body = TokenResponse),
        (status = 401, description = "Wrong email or password (the same answer for both).", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Missing fields.", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed logins; see Retry-After.", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "api.token_secret is not set.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn login(
    State(ctx): State<AppContext>,
    Extension(hashing): Extension<PasswordHashing>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<ApiJson<TokenResponse>, ApiError> {
    let mut errors = Vec::new();
    if request.email.trim().is_empty() {
        errors.push(FieldError::new("email", "is required"));
    }
    if request.password.is_empty() {
        errors.push(FieldError::new("password", "is required"));
    } else if request.password.len() > MAX_PASSWORD_BYTES {
        errors.push(FieldError::new("password", "is longer than 1024 bytes"));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let settings = &ctx.settings.api_accounts;
    let secret = tokens::secret(settings.token_secret.as_ref())?;
    let account_key = format!(
        "api:login:account:{}",
        hex::encode(Sha256::digest(normalize_email(&request.email).as_bytes()))
    );
    let ip_key = format!("api:login:ip:{client}");
    let locks = &ctx.shared.locks;
    let (account_failures, ip_failures) =
        tokio::try_join!(locks.get_counter(&account_key), locks.get_counter(&ip_key))?;
    if account_failures >= i64::from(settings.login_failures_per_account)
        || ip_failures >= i64::from(settings.login_failures_per_ip)
    {
        tracing::info!(%client, "A login was throttled after too many failures.");
        return Err(ApiError::Throttled {
            retry_after: settings.login_failure_window.as_secs().max(1),
        });
    }
    let driver = ctx.db.drivers().find_by_email(&request.email).await?;
    let stored_hash = driver
        .as_ref()
        .map_or_else(|| DUMMY_HASH.clone(), |driver| driver.password_hash.clone());
    let matches = hashing.verify(request.password, stored_hash).await?;
    let Some(driver) = driver.filter(|_| matches) else {
        let window = settings.login_failure_window;
        tokio::try_join!(
            locks.incr(&account_key, 1, window),
            locks.incr(&ip_key, 1, window)
        )?;
        return Err(ApiError::Unauthorized);
    };
    let tokens = start_session(&ctx, secret, driver.id, tokens::new_chain(), &headers).await?;
    tracing::info!(driver_id = driver.id, "A driver signed in.");
    Ok(ApiJson(tokens))
}

/// Refresh: a new pair for an active refresh token, which stops working. A token that was
/// already rotated revokes every session of its login (someone else holds a copy).
#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    tag = "accounts",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new pair; the presented refresh token stops working.", body = TokenResponse),
        (status = 401, description = "Unknown, expired, revoked or already rotated (which revokes its whole login).", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Missing fields.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn refresh(
    State(ctx): State<AppContext>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<RefreshRequest>,
) -> Result<ApiJson<TokenResponse>, ApiError> {
    if request.refresh_token.is_empty() {
        return Err(ApiError::Validation(vec![FieldError::new(
            "refresh_token",
            "is required",
        )]));
    }
    let secret = tokens::secret(ctx.settings.api_accounts.token_secret.as_ref())?;
    let drivers = ctx.db.drivers();
    let hash = tokens::hash_refresh_token(&request.refresh_token);
    let Some(session) = drivers.find_session_by_token_hash(&hash).await? else {
        return Err(ApiError::Unauthorized);
    };
    let now = Utc::now();
    if let Some(successor) = session.replaced_by {
        if let Some(response) =
            reissue_lost_rotation(&ctx, secret, &session, successor, &headers).await?
        {
            return Ok(ApiJson(response));
        }
        let revoked = drivers.revoke_chain(&session.chain, now).await?;
        tracing::warn!(
            driver_id = session.driver_id,
            session_id = session.id,
            revoked,
            "A rotated refresh token was presented again; every session of its login is revoked."
        );
        return Err(ApiError::Unauthorized);
    }
    if !session.is_active(now) {
        return Err(ApiError::Unauthorized);
    }
    let (response, new_id) = issue(
        &ctx,
        secret,
        session.driver_id,
        session.chain.clone(),
        &headers,
    )
    .await?;
    if !drivers.rotate_session(session.id, new_id, now).await? {
        // Another request rotated or revoked it between our read and now: treat as reuse.
        drivers.revoke_chain(&session.chain, now).await?;
        return Err(ApiError::Unauthorized);
    }
    Ok(ApiJson(response))
}

/// A replaced refresh token presented again within `api.refresh_reuse_grace` of its rotation,
/// while its successor is still unused, is a client that never got the rotation's answer: it
/// gets a new pair, and the lost successor is superseded. `None`: a reuse.
async fn reissue_lost_rotation(
    ctx: &AppContext,
    secret: &secrecy::SecretString,
    session: &DriverSession,
    successor: i64,
    headers: &HeaderMap,
) -> Result<Option<TokenResponse>, ApiError> {
    let now = Utc::now();
    let grace = chrono::Duration::from_std(ctx.settings.api_accounts.refresh_reuse_grace)
        .unwrap_or_default();
    let within_grace = session
        .revoked_at
        .is_some_and(|rotated| now - rotated <= grace);
    if !within_grace {
        return Ok(None);
    }
    let drivers = ctx.db.drivers();
    let unused = drivers
        .find_session(successor)
        .await?
        .is_some_and(|next| next.replaced_by.is_none() && next.is_active(now));
    if !unused {
        return Ok(None);
    }
    let (response, new_id) = issue(
        ctx,
        secret,
        session.driver_id,
        session.chain.clone(),
        headers,
    )
    .await?;
    if !drivers
        .reissue_rotation(session.id, successor, new_id, now)
        .await?
    {
        drivers.revoke_session(new_id, now).await?;
        return Ok(None);
    }
    tracing::info!(
        driver_id = session.driver_id,
        session_id = session.id,
        "A refresh token was presented again soon after its rotation, whose answer was lost; a new pair replaces the unused one."
    );
    Ok(Some(response))
}

/// Logout: the session of the access token is revoked, with its refresh token.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The session and its refresh token are revoked."),
        (status = 401, description = "No valid access token.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn logout(
    State(ctx): State<AppContext>,
    Authenticated(grant): Authenticated,
) -> Result<StatusCode, ApiError> {
    ctx.db
        .drivers()
        .revoke_session(grant.session_id, Utc::now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Password change: needs the current password; every other session is revoked.
#[utoipa::path(
    post,
    path = "/api/v1/account/password",
    tag = "accounts",
    request_body = PasswordChangeRequest,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Changed; every other session is revoked."),
        (status = 401, description = "No valid access token.", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Wrong current password or a weak new one, named in `errors`.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn change_password(
    State(ctx): State<AppContext>,
    Extension(hashing): Extension<PasswordHashing>,
    Authenticated(grant): Authenticated,
    ApiJson(request): ApiJson<PasswordChangeRequest>,
) -> Result<StatusCode, ApiError> {
    let drivers = ctx.db.drivers();
    let driver = drivers.get(grant.driver_id).await?;
    let mut errors = Vec::new();
    if request.current_password.is_empty() {
        errors.push(FieldError::new("current_password", "is required"));
    }
    if let Some(problem) = password_problem(&request.new_password, &driver.email) {
        errors.push(FieldError::new("new_password", problem));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let current = request.current_password;
    if current.len() > MAX_PASSWORD_BYTES
        || !hashing
            .verify(current, driver.password_hash.clone())
            .await?
    {
        return Err(ApiError::Validation(vec![FieldError::new(
            "current_password",
            "is not the account's password",
        )]));
    }
    let hash = hashing.hash(request.new_password).await?;
    drivers.set_password_hash(driver.id, &hash).await?;
    let revoked = drivers
        .revoke_other_sessions(driver.id, grant.session_id, Utc::now())
        .await?;
    tracing::info!(
        driver_id = driver.id,
        revoked,
        "A driver changed the password; the other sessions are revoked."
    );
    Ok(StatusCode::NO_CONTENT)
}

/// The driver of the access token.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The signed-in driver.", body = DriverView),
        (status = 401, description = "No valid access token.", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn me(
    State(ctx): State<AppContext>,
    Authenticated(grant): Authenticated,
) -> Result<ApiJson<DriverView>, ApiError> {
    let driver = ctx.db.drivers().get(grant.driver_id).await?;
    Ok(ApiJson(driver.into()))
}

async fn start_session(
    ctx: &AppContext,
    secret: &secrecy::SecretString,
    driver_id: i64,
    chain: String,
    headers: &HeaderMap,
) -> Result<TokenResponse, ApiError> {
    issue(ctx, secret, driver_id, chain, headers)
        .await
        .map(|(response, _)| response)
}

/// Stores a new session in `chain` and signs its access token; returns the pair and the
/// session's id.
async fn issue(
    ctx: &AppContext,
    secret: &secrecy::SecretString,
    driver_id: i64,
    chain: String,
    headers: &HeaderMap,
) -> Result<(TokenResponse, i64), ApiError> {
    let settings = &ctx.settings.api_accounts;
    let now = Utc::now();
    let (refresh_token, token_hash) = tokens::new_refresh_token();
    let refresh_ttl = chrono::Duration::from_std(settings.refresh_token_ttl)
        .map_err(|err| ApiError::Internal(format!("api.refresh_token_ttl is too long: {err}")))?;
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .map(|agent| agent.chars().take(MAX_TEXT_CHARS).collect::<String>());
    let session_id = ctx
        .db
        .drivers()
        .create_session(&NewDriverSession {
            driver_id,
            chain,
            token_hash,
            user_agent,
            expires_at: now + refresh_ttl,
        })
        .await?;
    let expires_in = settings.access_token_ttl.as_secs();
    let access_token = tokens::issue_access_token(
        secret,
        AccessGrant {
            driver_id,
            session_id,
        },
        now,
        i64::try_from(expires_in).unwrap_or(i64::MAX),
    )?;
    Ok((
        TokenResponse {
            access_token,
            token_type: "Bearer".to_owned(),
            expires_in,
            refresh_token,
        },
        session_id,
    ))
}

/// What is wrong with an email for sign-up, if anything.
fn email_problem(email: &str) -> Option<&'static str> {
    if email.is_empty() {
        return Some("is required");
    }
    if email.chars().count() > MAX_TEXT_CHARS {
        return Some("is longer than 255 characters");
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Some("is not an email address (no @)");
    };
    let bad_char = |c: char| c.is_whitespace() || c.is_control();
    if local.is_empty()
        || local.chars().count() > 64
        || email.chars().any(bad_char)
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains('@')
        || domain.contains("..")
    {
        return Some("is not an email address");
    }
    None
}

/// What is wrong with a new password, if anything.
fn password_problem(password: &str, email: &str) -> Option<&'static str> {
    if password.is_empty() {
        Some("is required")
    } else if password.chars().count() < MIN_PASSWORD_CHARS {
        Some("is shorter than 10 characters")
    } else if password.len() > MAX_PASSWORD_BYTES {
        Some("is longer than 1024 bytes")
    } else if !email.is_empty() && password.trim().eq_ignore_ascii_case(email.trim()) {
        Some("must not be the email address")
    } else {
        None
    }
}

/// Runs argon2id off the async workers, a bounded number at once: a flood of logins queues
/// here (and is refused after a wait) instead of taking every core from the other requests.
#[derive(Debug, Clone)]
pub struct PasswordHashing {
    permits: Arc<Semaphore>,
    wait: Duration,
}

impl PasswordHashing {
    pub fn new(settings: &ApiAccountSettings) -> PasswordHashing {
        PasswordHashing {
            permits: Arc::new(Semaphore::new(settings.password_hash_concurrency as usize)),
            wait: settings.password_hash_wait,
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = match tokio::time::timeout(self.wait, self.permits.clone().acquire_owned())
            .await
        {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) | Err(_) => {
                tracing::warn!(
                    wait = ?self.wait,
                    "Too many password checks at once; a request was turned away (api.password_hash_concurrency)."
                );
                return Err(ApiError::Unavailable(
                    "too many password checks are waiting".into(),
                ));
            }
        };
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|err| ApiError::Internal(format!("the password task failed: {err}")))
    }

    async fn hash(&self, password: String) -> Result<String, ApiError> {
        self.run(move || hash_password(&password))
            .await?
            .map_err(|err| ApiError::Internal(err.to_string()))
    }

    async fn verify(&self, password: String, hash: String) -> Result<bool, ApiError> {
        self.run(move || verify_password(&password, &hash)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_passwords_are_checked() {
        for good in ["a@b.co", "Dora.Driver+ev@example.com"] {
            assert_eq!(email_problem(good), None, "{good}");
        }
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@b",
            "a b@c.de",
            "a@.com",
            "a@b.com.",
        ] {
            assert!(email_problem(bad).is_some(), "{bad}");
        }
        assert_eq!(password_problem("long enough!", "a@b.co"), None);
        assert!(password_problem("short", "a@b.co").is_some());
        assert!(password_problem("dora@example.com", "Dora@Example.com").is_some());
        assert!(password_problem(&"x".repeat(1025), "a@b.co").is_some());
    }

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer abc"),
        );
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer_token(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer_token(&headers), None);
    }
}
